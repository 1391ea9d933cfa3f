/*
 * io_echo_server.c - the asyncio documentation's "TCP echo server using
 * streams", with the graceful shutdown that loop.add_signal_handler gives
 * it:
 *
 *     async def handle_echo(reader, writer):
 *         try:
 *             while line := await reader.readline():
 *                 writer.write(line)
 *                 await writer.drain()
 *         finally:
 *             writer.close()
 *
 *     async def main():
 *         server = await asyncio.start_server(handle_echo, '127.0.0.1', 0)
 *         stop = asyncio.Event()
 *         loop = asyncio.get_running_loop()
 *         for s in (signal.SIGINT, signal.SIGTERM):
 *             loop.add_signal_handler(s, stop.set)
 *         async with server:
 *             await stop.wait()
 *             server.close_clients()    # 3.13: cancel what is still open
 *
 *     asyncio.run(main())
 *
 * start_server is written out, as docs/io.md shows: a listening socket and
 * an acceptor task that accepts in a loop and spawns one handler task per
 * connection in a task group it owns; StreamReader.readline is a small
 * buffer over cosync_sock_recv. The signals are blocked and handed to a
 * signalfd (cosync_signal_init) in main(), before the loop and any thread
 * start, so that each inherits the mask, where asyncio adds its handlers
 * in the running loop. The handler is a task waiting in
 * cosync_signal_wait: on SIGINT or SIGTERM it cancels the acceptor, which
 * closes the listener and leaves its group, so the group cancels the
 * handlers of the connections still open; each closes its socket in its
 * clean-up. The handlers start eagerly (cosync_task_opts.eager), so each
 * owns its socket from the spawn on: a task cancelled before it first ran
 * would never run the clean-up that closes it.
 *
 * To run by itself and end, the program is its own clients: three connect,
 * send three lines each, check the echoes and close, and one more stays
 * connected until the server's shutdown closes its connection. Then the
 * program sends itself SIGTERM (kill(getpid(), SIGTERM)), where a terminal
 * or a supervisor would send it. Clients and handlers run at once, in an
 * order the kernel decides, so they print nothing themselves: main prints
 * what each client saw, in client order, and the port is not printed. Exits
 * 1 unless every line came back as sent and the shutdown closed everything.
 */
#define _POSIX_C_SOURCE 200809L /* kill */

#include <cosync.h>

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CLIENTS 3
#define LINES 3
#define LINE_MAX_LEN 128
/* a client's whole conversation: a broken server fails the run, never hangs it */
#define CLIENT_TIME COSYNC_SEC(5)

/* ------------------------------------------------------------------------
 * StreamReader.readline
 * ---------------------------------------------------------------------- */

typedef struct line_reader {
    cosync_io *sock;
    size_t len; /* bytes held in buf */
    char buf[LINE_MAX_LEN];
} line_reader;

/* Read the next line, its '\n' included, into @line (LINE_MAX_LEN bytes;
 * a longer line comes in pieces); at the end of the stream, what is left
 * without a '\n'. Returns its length, 0 at the end, or an error. */
static ssize_t read_line(line_reader *r, char *line, int64_t deadline)
{
    for (;;) {
        char *nl = memchr(r->buf, '\n', r->len);
        if (nl || r->len == sizeof r->buf) {
            size_t n = nl ? (size_t)(nl - r->buf) + 1 : r->len;
            memcpy(line, r->buf, n);
            memmove(r->buf, r->buf + n, r->len - n);
            r->len -= n;
            return (ssize_t)n;
        }
        ssize_t got = cosync_sock_recv(r->sock, r->buf + r->len, sizeof r->buf - r->len, deadline);
        if (got < 0)
            return got;
        if (got == 0) { /* the end: the rest, if any */
            size_t n = r->len;
            memcpy(line, r->buf, n);
            r->len = 0;
            return (ssize_t)n;
        }
        r->len += (size_t)got;
    }
}

/* ------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------- */

static struct server {
    cosync_addr addr;
    cosync_io listener;
    cosync_signal signals;
    cosync_task acceptor;
    int accepted;
    int lines_echoed;
    int ended_by_client;  /* handlers that saw their client close */
    int closed_by_server; /* handlers cancelled by the shutdown */
    cosync_event clients_gone;
} server = {.clients_gone = COSYNC_EVENT_INIT};

typedef struct connection {
    cosync_io sock;
} connection;

static int handle_echo(void *arg, void **result)
{
    connection *c = arg;
    line_reader reader = {.sock = &c->sock};
    char line[LINE_MAX_LEN];
    ssize_t n;
    int rc = 0;
    (void)result;
    while ((n = read_line(&reader, line, COSYNC_FOREVER)) > 0) {
        if ((rc = cosync_sock_sendall(&c->sock, line, (size_t)n, NULL, COSYNC_FOREVER)) != 0)
            break;
        server.lines_echoed++;
    }
    if (n < 0)
        rc = (int)n;
    /* the clean-up, however it ended (writer.close()) */
    cosync_io_close(&c->sock);
    free(c);
    if (rc == 0 && ++server.ended_by_client == CLIENTS)
        cosync_event_set(&server.clients_gone);
    if (rc == COSYNC_ECANCELED)
        server.closed_by_server++;
    return rc;
}

static int accept_loop(void *arg, void **result)
{
    cosync_taskgroup handlers;
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_taskgroup_init(&handlers)) != 0)
        return rc;
    for (;;) {
        connection *c = malloc(sizeof *c);
        if (!c) {
            rc = COSYNC_ENOMEM;
            break;
        }
        if ((rc = cosync_sock_accept(&server.listener, &c->sock, NULL, COSYNC_FOREVER)) != 0) {
            free(c);
            break; /* COSYNC_ECANCELED: the shutdown */
        }
        server.accepted++;
        rc = cosync_taskgroup_spawn(&handlers, NULL, handle_echo, c,
                                    &(cosync_task_opts){.eager = true});
        if (rc != 0) {
            cosync_io_close(&c->sock);
            free(c);
            break;
        }
    }
    /* stop accepting (server.close()) */
    cosync_io_close(&server.listener);
    /* leave the group: the acceptor was cancelled, so the group cancels
     * the handlers still running and waits until each has closed its
     * socket (server.close_clients(), then `async with server` ends) */
    int group = cosync_taskgroup_wait(&handlers, COSYNC_FOREVER);
    printf("server: listener closed, %d open connection%s closed\n", server.closed_by_server,
           server.closed_by_server == 1 ? "" : "s");
    if (rc == COSYNC_ECANCELED && group == COSYNC_ECANCELED) {
        /* the shutdown asked for is this task's clean end */
        cosync_task_uncancel(cosync_task_current());
        return 0;
    }
    return rc ? rc : group;
}

/* loop.add_signal_handler(s, stop.set) for SIGINT and SIGTERM */
static int on_signal(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int signo = cosync_signal_wait(&server.signals, COSYNC_FOREVER);
    if (signo < 0)
        return signo;
    printf("got %s: stop accepting, close the connections\n",
           signo == SIGTERM ? "SIGTERM" : "SIGINT");
    return cosync_task_cancel(server.acceptor);
}

/* ------------------------------------------------------------------------
 * The clients
 * ---------------------------------------------------------------------- */

typedef struct client {
    int id;
    int echoed; /* lines that came back as sent */
    int wrong;  /* lines that came back otherwise */
    int rc;
    int eof; /* the lingering client: 1 if the server closed its connection */
} client;

/* Connect, send LINES lines one at a time, check each echo, close
 * (asyncio's tcp_echo_client). */
static int echo_client(void *arg, void **result)
{
    client *cl = arg;
    cosync_io sock;
    int64_t deadline = cosync_deadline_after(CLIENT_TIME);
    (void)result;
    if ((cl->rc = cosync_tcp_connect(&sock, &server.addr, deadline)) != 0)
        return cl->rc;
    line_reader reader = {.sock = &sock};
    for (int i = 0; i < LINES && cl->rc == 0; i++) {
        char msg[64], back[LINE_MAX_LEN];
        int len = snprintf(msg, sizeof msg, "client %d, line %d\n", cl->id, i);
        if ((cl->rc = cosync_sock_sendall(&sock, msg, (size_t)len, NULL, deadline)) != 0)
            break;
        ssize_t n = read_line(&reader, back, deadline);
        if (n < 0)
            cl->rc = (int)n;
        else if (n == len && memcmp(back, msg, (size_t)len) == 0)
            cl->echoed++;
        else
            cl->wrong++;
    }
    cosync_io_close(&sock);
    return cl->rc;
}

static cosync_event lingering_connected = COSYNC_EVENT_INIT;

/* A client that says hello and then stays, until the server goes. */
static int lingering_client(void *arg, void **result)
{
    client *cl = arg;
    cosync_io sock;
    char back[LINE_MAX_LEN];
    static const char hello[] = "still here\n";
    int64_t deadline = cosync_deadline_after(CLIENT_TIME);
    (void)result;
    if ((cl->rc = cosync_tcp_connect(&sock, &server.addr, deadline)) != 0)
        return cl->rc;
    line_reader reader = {.sock = &sock};
    cl->rc = cosync_sock_sendall(&sock, hello, sizeof hello - 1, NULL, deadline);
    ssize_t n = cl->rc ? 0 : read_line(&reader, back, deadline);
    if (n < 0)
        cl->rc = (int)n;
    else if (n == (ssize_t)sizeof hello - 1 && memcmp(back, hello, sizeof hello - 1) == 0)
        cl->echoed++;
    else
        cl->wrong++;
    cosync_event_set(&lingering_connected);
    if (cl->rc == 0) {
        n = read_line(&reader, back, deadline); /* until the server closes it */
        if (n < 0)
            cl->rc = (int)n;
        else
            cl->eof = n == 0;
    }
    cosync_io_close(&sock);
    return cl->rc;
}

/* ------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */

static client clients[CLIENTS], lingering = {.id = CLIENTS};
static bool all_good;

static int main_task(void *arg, void **result)
{
    cosync_task watcher, stay, tasks[CLIENTS];
    cosync_outcome out[CLIENTS];
    int rc, status = -1;
    (void)arg;
    (void)result;

    cosync_addr_ip(&server.addr, "127.0.0.1", 0);
    if ((rc = cosync_sock_listen(&server.listener, &server.addr, 0)) != 0)
        return rc;
    cosync_sock_local_addr(&server.listener, &server.addr); /* the port it took */
    printf("serving on 127.0.0.1, a port the kernel chose\n");
    if ((rc = cosync_task_spawn(&server.acceptor, accept_loop, NULL, NULL)) != 0 ||
        (rc = cosync_task_spawn(&watcher, on_signal, NULL, NULL)) != 0)
        return rc;

    if ((rc = cosync_task_spawn(&stay, lingering_client, &lingering, NULL)) != 0)
        return rc;
    cosync_event_wait(&lingering_connected, cosync_deadline_after(CLIENT_TIME));
    printf("client %d: %s\n", lingering.id,
           lingering.echoed ? "connected, said hello, and stays" : "could not say hello");

    for (int i = 0; i < CLIENTS; i++) {
        clients[i].id = i;
        if ((rc = cosync_task_spawn(&tasks[i], echo_client, &clients[i], NULL)) != 0)
            return rc;
    }
    if ((rc = cosync_gather(tasks, CLIENTS, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < CLIENTS; i++) {
        printf("client %d: %d of %d lines echoed back", i, clients[i].echoed, LINES);
        if (out[i].status != 0)
            printf(" (%s)", cosync_err_name(out[i].status));
        printf("\n");
    }
    /* the handlers see their clients close: wait for the last of them */
    if (cosync_event_wait(&server.clients_gone, cosync_deadline_after(CLIENT_TIME)) == 0)
        printf("server: %d connections closed by their clients\n", server.ended_by_client);

    printf("main: sends itself SIGTERM\n");
    kill(getpid(), SIGTERM); /* blocked: it waits in the signalfd */
    cosync_task_join(watcher, NULL, NULL, COSYNC_FOREVER);
    cosync_task_join(server.acceptor, &status, NULL, COSYNC_FOREVER);
    cosync_task_join(stay, NULL, NULL, COSYNC_FOREVER);
    if (lingering.eof)
        printf("client %d: the server closed the connection\n", lingering.id);
    else
        printf("client %d: %s\n", lingering.id, cosync_err_name(lingering.rc));
    printf("server: shut down %s: %d connections, %d lines echoed\n",
           status == 0 ? "cleanly" : cosync_err_name(status), server.accepted, server.lines_echoed);

    bool ok = status == 0 && lingering.eof && lingering.echoed == 1 &&
              server.accepted == CLIENTS + 1 && server.ended_by_client == CLIENTS &&
              server.closed_by_server == 1 && server.lines_echoed == CLIENTS * LINES + 1;
    for (int i = 0; i < CLIENTS; i++)
        ok = ok && out[i].status == 0 && clients[i].echoed == LINES && clients[i].wrong == 0;
    all_good = ok;
    return 0;
}

int main(void)
{
    /* SIGINT and SIGTERM go to the set's signalfd from here on: blocked
     * before the loop and any thread start, so that all of them inherit
     * the mask and none takes the signal's default action */
    int rc = cosync_signal_init(&server.signals, (int[]){SIGINT, SIGTERM}, 2);
    if (rc == 0)
        rc = cosync_run(main_task, NULL);
    /* loop.remove_signal_handler: after the run, whose loop has let the
     * set go (0 for a set never made) */
    int destroyed = cosync_signal_destroy(&server.signals);
    if (rc == 0)
        rc = destroyed;
    if (rc != 0) {
        fprintf(stderr, "io_echo_server: %s\n", cosync_strerror(rc));
        return 1;
    }
    return all_good ? 0 : 1;
}
