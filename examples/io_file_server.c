/*
 * io_file_server.c - a server that sends parts of a file, served on every
 * address of "localhost", and clients that connect to it by name with
 * Happy Eyeballs. In asyncio:
 *
 *     async def send_part(reader, writer):
 *         offset, count = map(int, (await reader.readline()).split())
 *         sock = writer.get_extra_info('socket')
 *         await loop.sock_sendfile(sock, the_file, offset, count)
 *         writer.close()
 *
 *     async def fetch(offset, count):
 *         reader, writer = await asyncio.open_connection(
 *             'localhost', port, happy_eyeballs_delay=0.25)
 *         writer.write(f'{offset} {count}\n'.encode())
 *         return await reader.read()            # until the server closes
 *
 *     async def main():
 *         server = await asyncio.start_server(send_part, 'localhost', 0)
 *         port = server.sockets[0].getsockname()[1]
 *         parts = await asyncio.gather(*(fetch(o, c) for o, c in PARTS))
 *         server.close()
 *         await server.wait_closed()
 *
 * start_server is cosync_server_listen_host, which listens on each of the
 * host's addresses (127.0.0.1, and ::1 where localhost has it) on one
 * port; open_connection with happy_eyeballs_delay is
 * cosync_tcp_connect_host_with; sock_sendfile is cosync_sock_sendfile,
 * the kernel copying the file's bytes to the socket. The file is a
 * temporary one of known bytes; each client checks what it got. The
 * clients run at once, so main prints what each got, in client order.
 * Exits 1 unless every part came back exactly.
 */
#define _POSIX_C_SOURCE 200809L /* mkstemp, pread */

#include <cosync.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FILE_SIZE (256 * 1024)
#define CLIENTS 3

/* Each client's part of the file: an offset and a count. */
static const struct {
    long offset, count;
} parts[CLIENTS] = {{0, 100}, {1000, 200 * 1024}, {FILE_SIZE - 64, 64}};

static int the_file = -1;
static cosync_server srv;

/* The byte at @i of the file. */
static char byte_at(long i)
{
    return (char)('a' + (i * 7 + i / 251) % 26);
}

static int make_file(void)
{
    char path[] = "/tmp/cosync-file-server-XXXXXX";
    static char content[FILE_SIZE];
    int fd = mkstemp(path);
    if (fd < 0)
        return -1;
    unlink(path); /* gone when closed */
    for (long i = 0; i < FILE_SIZE; i++)
        content[i] = byte_at(i);
    if (write(fd, content, FILE_SIZE) != FILE_SIZE) {
        close(fd);
        return -1;
    }
    return fd;
}

/* ------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------- */

/* Read "offset count\n", send that part of the file, and return: the
 * server closes the connection, which is the client's end of file. */
static int send_part(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    cosync_stream s;
    char line[64];
    long offset = 0, count = 0;
    (void)peer, (void)arg;
    int rc = cosync_stream_init(&s, conn, sizeof line);
    if (rc != 0)
        return rc;
    ssize_t n =
        cosync_stream_readline(&s, line, sizeof line - 1, cosync_deadline_after(COSYNC_SEC(5)));
    cosync_stream_destroy(&s);
    if (n <= 0)
        return n < 0 ? (int)n : COSYNC_EINVAL;
    line[n] = '\0';
    if (sscanf(line, "%ld %ld", &offset, &count) != 2 || offset < 0 || count <= 0)
        return COSYNC_EINVAL;
    size_t sent = 0;
    return cosync_sock_sendfile(conn, the_file, offset, (size_t)count, &sent,
                                cosync_deadline_after(COSYNC_SEC(5)));
}

static int serve(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_server_serve(&srv, send_part, NULL, NULL, COSYNC_FOREVER);
}

/* ------------------------------------------------------------------------
 * The clients
 * ---------------------------------------------------------------------- */

typedef struct client {
    int id;
    long got;  /* bytes received */
    bool same; /* each one the file's byte at its place */
    int rc;
} client;

static int fetch(void *arg, void **result)
{
    client *c = arg;
    cosync_io sock;
    char request[64], buf[4096];
    (void)result;
    cosync_addr where;
    cosync_server_local_addr(&srv, &where);
    const cosync_connect_opts eyeballs = {.happy_eyeballs_delay = COSYNC_MS(250)};
    int64_t deadline = cosync_deadline_after(COSYNC_SEC(5));
    c->rc = cosync_tcp_connect_host_with(&sock, "localhost", (uint16_t)cosync_addr_port(&where),
                                         &eyeballs, deadline);
    if (c->rc != 0)
        return c->rc;
    long offset = parts[c->id].offset;
    int len = snprintf(request, sizeof request, "%ld %ld\n", offset, parts[c->id].count);
    c->same = true;
    c->rc = cosync_sock_sendall(&sock, request, (size_t)len, NULL, deadline);
    ssize_t n;
    while (c->rc == 0 && (n = cosync_sock_recv(&sock, buf, sizeof buf, deadline)) != 0) {
        if (n < 0) {
            c->rc = (int)n;
            break;
        }
        for (ssize_t i = 0; i < n; i++)
            c->same &= buf[i] == byte_at(offset + c->got + i);
        c->got += n;
    }
    cosync_io_close(&sock);
    return c->rc;
}

/* ------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */

static int main_task(void *arg, void **result)
{
    cosync_task server_task, tasks[CLIENTS];
    client clients[CLIENTS];
    int rc, ok = 1;
    (void)arg, (void)result;

    /* server = await asyncio.start_server(send_part, 'localhost', 0) */
    if ((rc = cosync_server_listen_host(&srv, "localhost", 0, 0,
                                        cosync_deadline_after(COSYNC_SEC(5)))) != 0)
        return rc;
    printf("serving a %d KiB file on every address of localhost, one port\n", FILE_SIZE / 1024);
    if ((rc = cosync_task_spawn(&server_task, serve, NULL, NULL)) != 0)
        return rc;

    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){.id = i};
        if ((rc = cosync_task_spawn(&tasks[i], fetch, &clients[i], NULL)) != 0)
            return rc;
    }
    for (int i = 0; i < CLIENTS; i++) {
        cosync_task_join(tasks[i], NULL, NULL, COSYNC_FOREVER);
        client *c = &clients[i];
        bool right = c->rc == 0 && c->same && c->got == parts[i].count;
        printf("client %d: asked for %ld bytes at %ld, got %ld%s\n", i, parts[i].count,
               parts[i].offset, c->got, right ? ", each the file's" : "");
        if (!right) {
            printf("client %d: %s\n", i, c->rc ? cosync_err_name(c->rc) : "wrong bytes");
            ok = 0;
        }
    }

    /* server.close(); await server.wait_closed() */
    cosync_server_close(&srv);
    int status = -1;
    cosync_task_join(server_task, &status, NULL, COSYNC_FOREVER);
    cosync_server_wait_closed(&srv, COSYNC_FOREVER);
    cosync_server_stats st;
    cosync_server_get_stats(&srv, &st);
    printf("server: closed after %llu connections, %llu failed\n", (unsigned long long)st.accepted,
           (unsigned long long)st.failed);
    cosync_server_destroy(&srv);
    return ok && status == 0 && st.failed == 0 ? 0 : 1;
}

int main(void)
{
    if ((the_file = make_file()) < 0) {
        perror("io_file_server: the file");
        return 1;
    }
    int rc = cosync_run(main_task, NULL);
    close(the_file);
    if (rc != 0)
        fprintf(stderr, "io_file_server: %s\n", rc > 0 ? "a check failed" : cosync_err_name(rc));
    return rc == 0 ? 0 : 1;
}
