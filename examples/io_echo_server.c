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
 * start_server is cosync_server_listen_host and serve_forever
 * cosync_server_serve, in a task of its own, with one handler task per
 * connection; StreamReader and StreamWriter are a cosync_stream over the
 * connection's handle, which the server closes when the handler returns.
 * The signals are blocked and handed to a signalfd (cosync_signal_init)
 * in main(), before the loop and any thread start, so that each inherits
 * the mask, where asyncio adds its handlers in the running loop. The
 * handler is a task waiting in cosync_signal_wait: on SIGINT or SIGTERM it
 * closes the server (server.close(): the serving task returns) and its
 * clients (server.close_clients(): the handlers still running are
 * cancelled), and main waits for them (server.wait_closed()).
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
#include <string.h>
#include <unistd.h>

#define CLIENTS 3
#define LINES 3
#define LINE_MAX_LEN 128
/* a client's whole conversation: a broken server fails the run, never hangs it */
#define CLIENT_TIME COSYNC_SEC(5)

/* ------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------- */

static struct server {
    cosync_server srv;
    cosync_signal signals;
    int lines_echoed;
    int ended_by_client;  /* handlers that saw their client close */
    int closed_by_server; /* handlers cancelled by the shutdown */
    cosync_event clients_gone;
} server = {.clients_gone = COSYNC_EVENT_INIT};

static cosync_addr server_addr; /* where the clients connect */

static int handle_echo(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    cosync_stream s;
    char line[LINE_MAX_LEN];
    ssize_t n;
    int rc;
    (void)peer, (void)arg;
    if ((rc = cosync_stream_init(&s, conn, sizeof line)) != 0)
        return rc;
    while ((n = cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER)) > 0) {
        if ((rc = cosync_stream_write(&s, line, (size_t)n, NULL, COSYNC_FOREVER)) != 0)
            break;
        server.lines_echoed++;
    }
    if (n < 0)
        rc = (int)n;
    /* the clean-up, however it ended; the server closes the connection
     * when this returns (writer.close()) */
    cosync_stream_destroy(&s);
    if (rc == 0 && ++server.ended_by_client == CLIENTS)
        cosync_event_set(&server.clients_gone);
    if (rc == COSYNC_ECANCELED)
        server.closed_by_server++;
    return rc;
}

/* await server.serve_forever() */
static int serve(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_server_serve(&server.srv, handle_echo, NULL, NULL, COSYNC_FOREVER);
}

/* loop.add_signal_handler(s, stop.set) for SIGINT and SIGTERM, and what
 * main does once stop is set */
static int on_signal(void *arg, void **result)
{
    (void)arg, (void)result;
    int signo = cosync_signal_wait(&server.signals, COSYNC_FOREVER);
    if (signo < 0)
        return signo;
    printf("got %s: stop accepting, close the connections\n",
           signo == SIGTERM ? "SIGTERM" : "SIGINT");
    cosync_server_close(&server.srv);                /* server.close() */
    return cosync_server_close_clients(&server.srv); /* server.close_clients() */
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

/* reader, writer = await asyncio.open_connection('127.0.0.1', port) */
static int open_connection(cosync_io *sock, cosync_stream *s, int64_t deadline)
{
    int rc = cosync_tcp_connect_host(sock, "127.0.0.1", (uint16_t)cosync_addr_port(&server_addr),
                                     deadline);
    if (rc == 0 && (rc = cosync_stream_init(s, sock, LINE_MAX_LEN)) != 0)
        cosync_io_close(sock);
    return rc;
}

static void close_connection(cosync_io *sock, cosync_stream *s)
{
    cosync_stream_destroy(s);
    cosync_io_close(sock);
}

/* Send one line and check that it comes back. */
static void echo_line(client *cl, cosync_stream *s, const char *msg, int64_t deadline)
{
    char back[LINE_MAX_LEN];
    size_t len = strlen(msg);
    if ((cl->rc = cosync_stream_write(s, msg, len, NULL, deadline)) != 0)
        return;
    ssize_t n = cosync_stream_readline(s, back, sizeof back, deadline);
    if (n < 0)
        cl->rc = (int)n;
    else if ((size_t)n == len && memcmp(back, msg, len) == 0)
        cl->echoed++;
    else
        cl->wrong++;
}

/* Connect, send LINES lines one at a time, check each echo, close
 * (asyncio's tcp_echo_client). */
static int echo_client(void *arg, void **result)
{
    client *cl = arg;
    cosync_io sock;
    cosync_stream s;
    int64_t deadline = cosync_deadline_after(CLIENT_TIME);
    (void)result;
    if ((cl->rc = open_connection(&sock, &s, deadline)) != 0)
        return cl->rc;
    for (int i = 0; i < LINES && cl->rc == 0; i++) {
        char msg[64];
        snprintf(msg, sizeof msg, "client %d, line %d\n", cl->id, i);
        echo_line(cl, &s, msg, deadline);
    }
    close_connection(&sock, &s);
    return cl->rc;
}

static cosync_event lingering_connected = COSYNC_EVENT_INIT;

/* A client that says hello and then stays, until the server goes. */
static int lingering_client(void *arg, void **result)
{
    client *cl = arg;
    cosync_io sock;
    cosync_stream s;
    char back[LINE_MAX_LEN];
    int64_t deadline = cosync_deadline_after(CLIENT_TIME);
    (void)result;
    if ((cl->rc = open_connection(&sock, &s, deadline)) != 0)
        return cl->rc;
    echo_line(cl, &s, "still here\n", deadline);
    cosync_event_set(&lingering_connected);
    if (cl->rc == 0) {
        ssize_t n = cosync_stream_readline(&s, back, sizeof back, deadline); /* until closed */
        if (n < 0)
            cl->rc = (int)n;
        else
            cl->eof = n == 0;
    }
    close_connection(&sock, &s);
    return cl->rc;
}

/* ------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */

static client clients[CLIENTS], lingering = {.id = CLIENTS};
static bool all_good;

static int main_task(void *arg, void **result)
{
    cosync_task serving, watcher, stay, tasks[CLIENTS];
    cosync_outcome out[CLIENTS];
    int rc, status = -1;
    (void)arg;
    (void)result;

    /* server = await asyncio.start_server(handle_echo, '127.0.0.1', 0) */
    if ((rc = cosync_server_listen_host(&server.srv, "127.0.0.1", 0, 0, COSYNC_FOREVER)) != 0)
        return rc;
    cosync_server_local_addr(&server.srv, &server_addr); /* the port it took */
    printf("serving on 127.0.0.1, a port the kernel chose\n");
    if ((rc = cosync_task_spawn(&serving, serve, NULL, NULL)) != 0 ||
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
    cosync_task_join(serving, &status, NULL, COSYNC_FOREVER); /* serve_forever returned */
    /* await server.wait_closed(): every handler has returned */
    if ((rc = cosync_server_wait_closed(&server.srv, COSYNC_FOREVER)) != 0)
        return rc;
    printf("server: listener closed, %d open connection%s closed\n", server.closed_by_server,
           server.closed_by_server == 1 ? "" : "s");
    cosync_task_join(stay, NULL, NULL, COSYNC_FOREVER);
    if (lingering.eof)
        printf("client %d: the server closed the connection\n", lingering.id);
    else
        printf("client %d: %s\n", lingering.id, cosync_err_name(lingering.rc));
    cosync_server_stats st;
    cosync_server_get_stats(&server.srv, &st);
    printf("server: shut down %s: %d connections, %d lines echoed\n",
           status == 0 ? "cleanly" : cosync_err_name(status), (int)st.accepted,
           server.lines_echoed);

    bool ok = status == 0 && lingering.eof && lingering.echoed == 1 && st.accepted == CLIENTS + 1 &&
              st.connections == 0 && server.ended_by_client == CLIENTS &&
              server.closed_by_server == 1 && server.lines_echoed == CLIENTS * LINES + 1;
    for (int i = 0; i < CLIENTS; i++)
        ok = ok && out[i].status == 0 && clients[i].echoed == LINES && clients[i].wrong == 0;
    all_good = ok && cosync_server_destroy(&server.srv) == 0;
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
