/*
 * test_server.c - the stream server (cosync_server_*): asyncio.start_server,
 * Server.serve_forever, close, close_clients and wait_closed.
 *
 * Every loop but the cosync_run ones runs on the virtual clock. Descriptors
 * are real, so each case chooses connections whose timing is certain:
 *  - over loopback TCP (127.0.0.1, ::1, port 0) the kernel may deliver a
 *    connection or data later than the call that sent it returns, so every
 *    wait for something that is coming has no deadline, and no timer is
 *    armed while such a wait could let the virtual clock jump;
 *  - a Unix-domain connect (to a path in a fresh mkdtemp directory) puts
 *    the connection in the listener's queue, and a send puts the bytes in
 *    the peer's, before it returns: the cases that arm timers meanwhile
 *    (deadlines of serve and wait_closed, the pauses of an accept that
 *    fails) use those.
 * Handlers tell main what they do through counters and an event
 * (WAIT_FOR), so that main's waits have no deadline either; ordering
 * checkpoints assert the interleavings the contract fixes (a handler's
 * eager start inside the accept loop, handlers served at once, a
 * wait_closed that returns after the last handler).
 *
 * Every case runs in a process of its own (fork), so that a failing case
 * does not hide the ones after it; each checks that no descriptor is left
 * open and that every block the library allocated came back
 * (cosync__mem_live, counted in builds without a leak checker too).
 *
 * Names: "localhost" (from /etc/hosts), numeric hosts, and names under
 * ".test" that this program's own getaddrinfo answers with fixed lists of
 * loopback addresses (it takes the place of libc's in the executable, as
 * in test_resolve.c); the lookups run on the loop's pool threads.
 *
 * White-box (core.h, fault.h): the handler task's record (its stack class,
 * whether it is dense), the loop's free task records, and the fault
 * injection that fails the connection record, the handler's record block
 * or stack, and the listener's registration.
 *
 * Usage: test_server [substring]: run only the cases whose name has it.
 */
/* ctest-timeout: 120 */
/* ctest-labels: threads */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "fake_resolver.h"
#include "core.h"  /* the task record: stack_cls, dense; loop->free_recs, default_cls */
#include "fault.h" /* cosync__fault_countdown, cosync__fault_failures, cosync__mem_live */

/* CHECK_GONE(path): no file is at @path (a closed server's socket file). */
#define CHECK_GONE(path)                                                                           \
    do {                                                                                           \
        CHECK_EQ(access((path), F_OK), -1);                                                        \
        CHECK_EQ(errno, ENOENT);                                                                   \
    } while (0)

#define FOREVER COSYNC_FOREVER
#define MAXC 16 /* connections a case logs */

/* The directory of this run's Unix-domain sockets, and in it the running
 * case's own (so that a socket file a failed case left cannot be in the
 * way of another). */
static char tmpdir[64], casedir[96];
/* Whether run_case makes its loop with eager_tasks. */
static bool eager_loop;

/* ------------------------------------------------------------------------
 * Running a case
 * ---------------------------------------------------------------------- */

/* Run @fn(@arg) as the task "main" of a fresh virtual-clock loop (with
 * eager_tasks if eager_loop), from checkpoint 0; check that it returned
 * 0, that every task was collected, and that no descriptor and no block
 * of the library is left. */
static void run_case(cosync_task_fn fn, void *arg)
{
    CHECKPOINT_RESET(); /* a case may run several */
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.virtual_clock = true, .eager_tasks = eager_loop}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

static void sock_path(char *path, size_t size, const char *name)
{
    CHECK_LT(snprintf(path, size, "%s/%s.sock", casedir, name), (int)size);
}

/* Whether @fd is an open descriptor of this process. */
static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

/* Whether @fd is closed (fcntl says EBADF). */
static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* ------------------------------------------------------------------------
 * This program's getaddrinfo: names under ".test"
 * ---------------------------------------------------------------------- */

/* "three.test": 127.0.0.1, 127.0.0.2, 127.0.0.3; "twice.test": 127.0.0.1
 * twice; any other ".test" name has no address. */
int getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (!ends_with_test(host))
        return real_getaddrinfo(host, service, hints, res);
    if (hints && (hints->ai_flags & AI_NUMERICHOST))
        return EAI_NONAME; /* as libc: not a numeric address */
    static const char *const three[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
    static const char *const twice[] = {"127.0.0.1", "127.0.0.1"};
    if (strcmp(host, "three.test") == 0)
        *res = fake_list(three, 3, service);
    else if (strcmp(host, "twice.test") == 0)
        *res = fake_list(twice, 2, service);
    else
        return EAI_NONAME;
    return 0;
}

/* ------------------------------------------------------------------------
 * What the handlers log
 * ---------------------------------------------------------------------- */

/* One connection as its handler saw it. */
typedef struct conn_log {
    char peer[COSYNC_ADDR_TEXT_MAX]; /* the peer argument, as text */
    char name[COSYNC_ADDR_TEXT_MAX]; /* the handler task's name */
    void *local;                     /* its task-local pointer */
    void *arg;                       /* the arg argument */
    int64_t started_at;
    int fd;                     /* the connection's descriptor */
    uint64_t accepted_at_start; /* the server's stats when it started */
    size_t conns_at_start;
    bool dense;    /* its task is a dense one */
    int stack_cls; /* its stack class */
    int status;    /* what ended its conversation */
} conn_log;

static conn_log logs[MAXC];
static int h_started, h_ended;
static cosync_server *cur_srv; /* the server the handlers serve */
/* Set whenever a handler starts or ends (main waits on it: WAIT_FOR). */
static cosync_event progress;
/* What release_handler waits for. */
static cosync_event release;
/* The echo checkpoints: 0 (off), or the number of clients of echo_main. */
static int cp_n;
/* >= 0: the checkpoint the next handler to end passes. */
static int end_cp;
/* A handler's first step checks the calls a handler may not make. */
static bool misuse_in_handler;

static void reset_state(cosync_server *srv)
{
    memset(logs, 0, sizeof logs);
    h_started = h_ended = 0;
    cur_srv = srv;
    cosync_event_init(&progress);
    cosync_event_init(&release);
    cp_n = 0;
    end_cp = -1;
    misuse_in_handler = false;
}

static void note_progress(void)
{
    CHECK_OK(cosync_event_set(&progress));
}

/* Wait (no deadline) until @cond holds: the handlers set `progress`. */
#define WAIT_FOR(cond)                                                                             \
    do {                                                                                           \
        while (!(cond)) {                                                                          \
            CHECK_OK(cosync_event_wait(&progress, FOREVER));                                       \
            CHECK_OK(cosync_event_clear(&progress));                                               \
        }                                                                                          \
    } while (0)

static const char *addr_text(const cosync_addr *a, char *buf)
{
    CHECK_GT(cosync_addr_format(a, buf, COSYNC_ADDR_TEXT_MAX), 0);
    return buf;
}

static cosync_server_stats stats_of(const cosync_server *srv)
{
    cosync_server_stats st;
    memset(&st, 0xA5, sizeof st);
    CHECK_OK(cosync_server_get_stats(srv, &st));
    return st;
}

/* The server's stats: connections, accepted, failed, serving, open. */
#define CHECK_STATS(srv, conns, acc, fail, serving_, open_)                                        \
    do {                                                                                           \
        cosync_server_stats st_ = stats_of(srv);                                                   \
        CHECK_EQ(st_.connections, conns);                                                          \
        CHECK_EQ(st_.accepted, acc);                                                               \
        CHECK_EQ(st_.failed, fail);                                                                \
        CHECK_EQ(st_.serving, serving_);                                                           \
        CHECK_EQ(st_.open, open_);                                                                 \
    } while (0)

/* A handler that is never called (an argument for calls that must refuse). */
static int unused_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    (void)conn, (void)peer, (void)arg;
    CHECK__FAIL("unused_handler ran");
}

/* A handler's first step: log the connection; its index. */
static int note_start(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = h_started++;
    CHECK_LT(i, MAXC);
    conn_log *l = &logs[i];
    cosync_task me = cosync_task_current();
    struct cosync__task *t = me.rec;
    addr_text(peer, l->peer);
    snprintf(l->name, sizeof l->name, "%s", cosync_task_name(me));
    l->local = cosync_task_get_local();
    l->arg = arg;
    l->started_at = cosync_now();
    l->fd = cosync_io_fd(conn);
    CHECK_GE(l->fd, 0);
    cosync_server_stats st = stats_of(cur_srv);
    l->accepted_at_start = st.accepted;
    l->conns_at_start = st.connections;
    l->dense = cosync__is_dense(t);
    l->stack_cls = l->dense ? cosync__dense_class(t) : t->stack_cls;
    l->status = 12345;
    if (cp_n)
        CHECKPOINT(2 * i + 1);
    if (misuse_in_handler) {
        /* a handler is no second server, and cannot wait for its own end */
        CHECK_ERR(cosync_server_serve(cur_srv, unused_handler, NULL, NULL, FOREVER), COSYNC_EBUSY);
        CHECK_ERR(cosync_server_destroy(cur_srv), COSYNC_EBUSY);
        CHECK_ERR(cosync_server_wait_closed(cur_srv, FOREVER), COSYNC_EDEADLK);
        CHECK_ERR(cosync_server_wait_closed(cur_srv, cosync_now() + COSYNC_SEC(1)), COSYNC_EDEADLK);
        CHECK_ERR(cosync_server_wait_closed(cur_srv, 0), COSYNC_EAGAIN);
    }
    note_progress();
    return i;
}

/* A handler's last step: log how its conversation ended. */
static void note_end(int i, int status)
{
    logs[i].status = status;
    h_ended++;
    if (cp_n)
        CHECKPOINT(3 * cp_n + i);
    if (end_cp >= 0)
        CHECKPOINT(end_cp++);
    note_progress();
}

/* Echo what comes on @conn until its end: 0, or the error that ended it.
 * The one-byte message "!" closes the server first, "#" cancels every
 * handler of it (the sender's included): a client sends a message only
 * once the one before has come back, so each comes whole. */
static int echo_until_eof(cosync_io *conn, int i)
{
    char buf[256];
    bool first = true;
    for (;;) {
        ssize_t n = cosync_sock_recv(conn, buf, sizeof buf, FOREVER);
        if (n <= 0)
            return (int)n;
        if (first && cp_n)
            CHECKPOINT(2 * cp_n + (cp_n - 1 - i));
        first = false;
        if (n == 1 && buf[0] == '!')
            CHECK_OK(cosync_server_close(cur_srv));
        if (n == 1 && buf[0] == '#')
            CHECK_OK(cosync_server_close_clients(cur_srv));
        int rc = cosync_sock_sendall(conn, buf, (size_t)n, NULL, FOREVER);
        if (rc)
            return rc;
    }
}

/* The echo server's handler (asyncio's handle_echo). */
static int echo_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    int rc = echo_until_eof(conn, i);
    note_end(i, rc);
    return rc;
}

/* echo_handler that yields first: it suspends before it reads, even when
 * the client's bytes and end are there already. */
static int yield_echo_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    int rc = cosync_yield();
    if (rc == 0)
        rc = echo_until_eof(conn, i);
    note_end(i, rc);
    return rc;
}

/* A handler that waits for the event `release` (no I/O: its timing is the
 * test's), then returns what ended the wait. */
static int release_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    int rc = cosync_event_wait(&release, FOREVER);
    if (rc == 0) {
        /* its own server closed or not, it would wait for itself */
        CHECK_ERR(cosync_server_wait_closed(cur_srv, FOREVER), COSYNC_EDEADLK);
        CHECK_ERR(cosync_server_wait_closed(cur_srv, 0), COSYNC_EAGAIN);
    }
    note_end(i, rc);
    return rc;
}

/* ------------------------------------------------------------------------
 * Serving, waiting, listening, clients
 * ---------------------------------------------------------------------- */

/* A call of cosync_server_serve in a task of its own. */
typedef struct serve_call {
    cosync_server *srv;
    cosync_conn_fn handler;
    void *arg;
    const cosync_task_opts *opts;
    int64_t deadline;
    long fault_k; /* >= 0: cosync__fault_countdown is set to it just before the call */
    int rc;
    int64_t started_at, returned_at;
} serve_call;

static serve_call serve_of(cosync_server *srv, cosync_conn_fn handler)
{
    return (serve_call){
        .srv = srv, .handler = handler, .deadline = FOREVER, .fault_k = -1, .rc = 12345};
}

static int serve_task(void *arg, void **result)
{
    serve_call *sc = arg;
    (void)result;
    sc->started_at = cosync_now();
    if (sc->fault_k >= 0)
        cosync__fault_countdown = sc->fault_k;
    sc->rc = cosync_server_serve(sc->srv, sc->handler, sc->arg, sc->opts, sc->deadline);
    sc->returned_at = cosync_now();
    return sc->rc;
}

static cosync_task spawn_serve(serve_call *sc)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, serve_task, sc, &(cosync_task_opts){.name = "serve"}));
    return t;
}

/* A call of cosync_server_wait_closed in a task of its own. */
typedef struct waiter {
    cosync_server *srv;
    int64_t deadline;
    int checkpoint; /* >= 0: passed when the wait returns */
    int rc;
    int64_t returned_at;
    size_t conns_then; /* the server's connections when the wait returned */
    int ended_then;    /* h_ended then */
} waiter;

static waiter waiter_of(cosync_server *srv, int64_t deadline)
{
    return (waiter){.srv = srv, .deadline = deadline, .checkpoint = -1, .rc = 12345};
}

static int waiter_task(void *arg, void **result)
{
    waiter *w = arg;
    (void)result;
    w->rc = cosync_server_wait_closed(w->srv, w->deadline);
    w->returned_at = cosync_now();
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    w->conns_then = stats_of(w->srv).connections;
    w->ended_then = h_ended;
    return w->rc;
}

static cosync_task spawn_waiter(waiter *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, waiter_task, w, &(cosync_task_opts){.name = "waiter"}));
    return t;
}

/* Listen on 127.0.0.1 with a free port, into *@addr. */
static void listen_tcp(cosync_server *srv, cosync_addr *addr)
{
    cosync_addr any;
    CHECK_OK(cosync_addr_ip(&any, "127.0.0.1", 0));
    CHECK_OK(cosync_server_listen(srv, &any, 0));
    CHECK_OK(cosync_server_local_addr(srv, addr));
    CHECK_GT(cosync_addr_port(addr), 0);
}

/* Listen on the Unix-domain socket @path (in tmpdir). */
static void listen_unix(cosync_server *srv, cosync_addr *addr, const char *path)
{
    CHECK_OK(cosync_addr_unix(addr, path));
    CHECK_OK(cosync_server_listen(srv, addr, 0));
}

/* The start of a case on a Unix-domain server: the shared state reset
 * for @srv, a socket path named @name in @path, @srv listening there. */
static void unix_case(cosync_server *srv, cosync_addr *addr, char *path, size_t size,
                      const char *name)
{
    reset_state(srv);
    sock_path(path, size, name);
    listen_unix(srv, addr, path);
}

/* Send @msg on @c and read exactly its echo back. */
static void client_echo(cosync_io *c, const char *msg)
{
    size_t len = strlen(msg), got = 0;
    char back[256];
    CHECK_LT(len, sizeof back);
    CHECK_OK(cosync_sock_sendall(c, msg, len, NULL, FOREVER));
    while (got < len) {
        ssize_t n = cosync_sock_recv(c, back + got, sizeof back - got, FOREVER);
        CHECK_GT(n, 0);
        got += (size_t)n;
    }
    CHECK_EQ(got, len);
    CHECK_EQ(memcmp(back, msg, len), 0);
}

/* Read @c's end: the server closed the connection (nothing more came). */
static void client_expect_eof(cosync_io *c)
{
    char b[8];
    CHECK_EQ(cosync_sock_recv(c, b, sizeof b, FOREVER), 0);
}

/* Shut down @c's sending side, read its end, close it. */
static void client_finish(cosync_io *c)
{
    CHECK_OK(cosync_sock_shutdown(c, SHUT_WR));
    client_expect_eof(c);
    CHECK_OK(cosync_io_close(c));
}

/* Read @c's end, which may come as a reset (a connection the server closed
 * with bytes unread, or never accepted), and close it. */
static void client_expect_gone(cosync_io *c)
{
    char b[8];
    ssize_t n = cosync_sock_recv(c, b, sizeof b, FOREVER);
    if (n != 0)
        CHECK_ERR(n, COSYNC_ECONNRESET);
    CHECK_OK(cosync_io_close(c));
}

/* A plain blocking Unix-domain client of @addr (its connect is queued on
 * the listener when it returns). */
static int raw_unix_client(const cosync_addr *addr)
{
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_GE(fd, 0);
    CHECK_EQ(connect(fd, &addr->u.sa, addr->len), 0);
    return fd;
}

static void raw_send(int fd, const char *s)
{
    size_t n = strlen(s);
    CHECK_EQ(send(fd, s, n, MSG_NOSIGNAL), (ssize_t)n);
}

/* What the server sent on @fd before it closed its end (into @buf, NUL
 * terminated); the server must have closed it already. */
static size_t raw_read_closed(int fd, char *buf, size_t size)
{
    size_t got = 0;
    for (;;) {
        ssize_t n = recv(fd, buf + got, size - 1 - got, MSG_DONTWAIT);
        if (n > 0) {
            got += (size_t)n;
            CHECK_LT(got, size - 1);
            continue;
        }
        if (n < 0) {
            CHECK_NE(errno, EAGAIN); /* still open */
            CHECK_EQ(errno, ECONNRESET);
        }
        break;
    }
    buf[got] = '\0';
    return got;
}

/* ------------------------------------------------------------------------
 * 1. Echo over TCP, with each kind of task options
 * ---------------------------------------------------------------------- */

typedef struct echo_case {
    const cosync_task_opts *opts; /* for the handlers */
    bool dense_serve;             /* the serve task is a dense one too */
    const char *want_name;        /* NULL: the peer's text */
    void *want_local;             /* NULL: main's (the serve task inherits it) */
} echo_case;

#define NECHO 4
static int main_local, other_local;

static int echo_main(void *arg, void **result)
{
    const echo_case *ec = arg;
    (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io cl[NECHO];
    char text[COSYNC_ADDR_TEXT_MAX], msg[64];
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    CHECK_OK(cosync_task_set_local(&main_local));
    const cosync_task_opts *o = ec->opts;
    int want_cls = o && o->stack_size ? cosync__stack_class_of(o->stack_size)
                                      : cosync_loop_current()->default_cls;
    bool want_dense = o && o->dense && COSYNC__DENSE_SUPPORTED;
    serve_call sc = serve_of(&srv, echo_handler);
    sc.opts = ec->opts;
    sc.arg = &sc;
    cosync_task s;
    if (ec->dense_serve)
        CHECK_OK(cosync_task_spawn(&s, serve_task, &sc, &(cosync_task_opts){.dense = true}));
    else
        s = spawn_serve(&sc);

    /* each client is accepted, and its handler started, while the
     * handlers before it wait for their first bytes */
    cp_n = NECHO;
    for (int i = 0; i < NECHO; i++) {
        CHECKPOINT(2 * i);
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER));
        WAIT_FOR(h_started == i + 1);
        cosync_addr mine;
        CHECK_OK(cosync_sock_local_addr(&cl[i], &mine));
        CHECK_STREQ(logs[i].peer, addr_text(&mine, text));
        CHECK_EQ(strncmp(logs[i].peer, "127.0.0.1:", 10), 0);
        CHECK_STREQ(logs[i].name, ec->want_name ? ec->want_name : logs[i].peer);
        CHECK(logs[i].local == (ec->want_local ? ec->want_local : (void *)&main_local));
        CHECK(logs[i].arg == (void *)&sc);
        CHECK_EQ(logs[i].stack_cls, want_cls);
        CHECK_EQ(logs[i].dense, want_dense);
        CHECK_EQ(h_ended, 0);
    }
    CHECK_STATS(&srv, NECHO, NECHO, 0, true, true);

    /* served in the opposite order: none waits for another */
    for (int i = NECHO - 1; i >= 0; i--) {
        snprintf(msg, sizeof msg, "client %d says %d", i, i * 7919);
        client_echo(&cl[i], msg);
    }
    /* the end of each: the handler returns, the server closes the
     * connection (the handler did not) */
    for (int i = 0; i < NECHO; i++) {
        client_finish(&cl[i]);
        CHECK_EQ(h_ended, i + 1);
        CHECK_OK(logs[i].status);
        CHECK_STATS(&srv, NECHO - 1 - i, NECHO, 0, true, true);
    }
    CHECKPOINTS_DONE(4 * NECHO);

    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(sc.rc);
    CHECK_STATS(&srv, 0, NECHO, 0, false, false);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_destroy(&srv));
    cp_n = 0;
    return 0;
}

/* NULL opts: each handler is named after its peer ("127.0.0.1:<port>"),
 * has the loop's default stack and the serve task's local pointer; every
 * client gets its echo, and its end when its handler returns. */
TEST(echo_over_tcp)
{
    run_case(echo_main, &(echo_case){0});
}

/* opts are passed: a name for every handler, a stack size, a local pointer. */
TEST(echo_over_tcp_with_a_name_a_stack_size_and_a_local)
{
    cosync_task_opts o = {.name = "conn", .stack_size = 256 << 10, .local = &other_local};
    run_case(echo_main, &(echo_case){.opts = &o, .want_name = "conn", .want_local = &other_local});
}

/* An empty name is no name: the handlers are named after their peers. */
TEST(echo_over_tcp_an_empty_name_is_the_peer)
{
    cosync_task_opts o = {.name = ""};
    run_case(echo_main, &(echo_case){.opts = &o});
}

/* Dense handlers: the connection's handle lives in the server's record,
 * not in the handler's stack, so a dense handler can wait on it. */
TEST(echo_over_tcp_with_dense_handlers)
{
    cosync_task_opts o = {.dense = true};
    run_case(echo_main, &(echo_case){.opts = &o});
}

/* Dense handlers started eagerly by a dense serve task (whose bytes are
 * copied out of the shared stack at each start). */
TEST(echo_over_tcp_dense_handlers_of_a_dense_serve_task)
{
    cosync_task_opts o = {.dense = true};
    run_case(echo_main, &(echo_case){.opts = &o, .dense_serve = true});
}

/* 14. The same, on a loop that starts every task eagerly. */
TEST(echo_over_tcp_on_an_eager_loop)
{
    eager_loop = true;
    run_case(echo_main, &(echo_case){0});
    cosync_task_opts o = {.name = "conn", .stack_size = 128 << 10, .local = &other_local};
    run_case(echo_main, &(echo_case){.opts = &o, .want_name = "conn", .want_local = &other_local});
    cosync_task_opts d = {.dense = true};
    run_case(echo_main, &(echo_case){.opts = &d});
    eager_loop = false;
}

/* ------------------------------------------------------------------------
 * 2. A handler starts eagerly, inside the accept loop
 * ---------------------------------------------------------------------- */

static int after_yield;

static int yield_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    CHECKPOINT(1 + i);
    /* it runs inside the spawn of the accept loop: the next connection,
     * waiting too, is not accepted yet */
    CHECK_EQ(logs[i].accepted_at_start, (uint64_t)i + 1);
    CHECK_EQ(logs[i].conns_at_start, (size_t)i + 1);
    CHECK_OK(cosync_yield());
    CHECKPOINT(3 + i);
    after_yield++;
    note_progress();
    char b[8];
    ssize_t n = cosync_sock_recv(conn, b, sizeof b, FOREVER);
    note_end(i, (int)n);
    return n < 0 ? (int)n : 0;
}

static int eager_start_main(void *arg, void **result)
{
    (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io cl[2];
    char path[128];
    reset_state(&srv);
    after_yield = 0;
    sock_path(path, sizeof path, "eager");
    listen_unix(&srv, &addr, path);
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER)); /* queued at once */
    serve_call sc = serve_of(&srv, yield_handler);
    sc.opts = arg;
    CHECKPOINT(0);
    cosync_task s = spawn_serve(&sc);
    /* first handler's first step, second handler's first step (the serve
     * task goes on after a handler's first suspension before any other
     * task), and only then what follows their yields */
    WAIT_FOR(after_yield == 2);
    CHECKPOINT(5);
    CHECK_STATS(&srv, 2, 2, 0, true, true);
    for (int i = 0; i < 2; i++)
        client_finish(&cl[i]);
    CHECK_EQ(h_ended, 2);
    CHECK_OK(logs[0].status);
    CHECK_OK(logs[1].status);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    CHECKPOINTS_DONE(6);
    return 0;
}

/* Two connections wait when serve begins: the first one's handler runs to
 * its first suspension before the second is accepted, then the second's,
 * then (after the serve task has gone back to its accept) what follows. */
TEST(a_handler_starts_eagerly_before_the_next_accept)
{
    run_case(eager_start_main, NULL);
}

/* The same with opts that ask for no eager start: a handler starts eagerly
 * whatever the options say. */
TEST(a_handler_starts_eagerly_whatever_the_opts)
{
    cosync_task_opts o = {.eager = false, .name = "lazy?"};
    run_case(eager_start_main, &o);
}

/* ------------------------------------------------------------------------
 * 3. The connection's end; the handler's status
 * ---------------------------------------------------------------------- */

/* Reads one byte, which says what to return; never closes the connection. */
static int status_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    char code = 0;
    CHECK_EQ(cosync_sock_recv(conn, &code, 1, FOREVER), 1);
    int st = code == 'o'   ? 0
             : code == 'i' ? -EIO
             : code == 'c' ? COSYNC_ECANCELED
             : code == 'p' ? 5
             : code == 'm' ? COSYNC_ENOMEM
             : code == 't' ? COSYNC_ETIMEDOUT
                           : 99;
    note_end(i, st);
    return st;
}

static int status_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, status_handler);
    cosync_task s = spawn_serve(&sc);
    static const char codes[] = "oicpmt";
    static const int failed[] = {0, 1, 1, 1, 2, 3};
    for (int k = 0; codes[k]; k++) {
        cosync_io c;
        CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
        WAIT_FOR(h_started == k + 1);
        CHECK_EQ(cosync_sock_send(&c, &codes[k], 1, FOREVER), 1);
        /* the handler returns without closing: the server closes it */
        client_expect_eof(&c);
        CHECK_OK(cosync_io_close(&c));
        CHECK_EQ(h_ended, k + 1);
        CHECK(fd_closed(logs[k].fd));
        CHECK_STATS(&srv, 0, (uint64_t)k + 1, failed[k], true, true);
    }
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 6, 3, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* The server closes a connection when its handler returns (the client
 * reads its end); a handler's negative status counts as a failure, but
 * for COSYNC_ECANCELED; 0 and a positive status do not. */
TEST(the_server_closes_the_connection_and_counts_failed_handlers)
{
    run_case(status_main, NULL);
}

static int sc_fd, sc_pipe[2], sc_extra;

/* Reads one byte, closes the connection itself, takes its descriptor's
 * number again (a pipe), and returns -EIO if the byte was 'e'. */
static int selfclose_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    char b = 0;
    CHECK_EQ(cosync_sock_recv(conn, &b, 1, FOREVER), 1);
    int fd = cosync_io_fd(conn);
    CHECK_OK(cosync_io_close(conn));
    CHECK(fd_closed(fd));
    CHECK_ERR(cosync_io_fd(conn), COSYNC_EBADF);
    /* a second close by the server would close what has the number now */
    CHECK_EQ(pipe2(sc_pipe, O_CLOEXEC), 0);
    sc_fd = fd;
    sc_extra = -1;
    if (sc_pipe[0] != fd && sc_pipe[1] != fd) {
        CHECK_EQ(dup3(sc_pipe[0], fd, O_CLOEXEC), fd);
        sc_extra = fd;
    }
    int st = b == 'e' ? -EIO : 0;
    note_end(i, st);
    return st;
}

static int selfclose_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, selfclose_handler);
    cosync_task s = spawn_serve(&sc);
    static const char codes[] = "xe";
    for (int k = 0; k < 2; k++) {
        cosync_io c;
        CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
        WAIT_FOR(h_started == k + 1);
        CHECK_EQ(cosync_sock_send(&c, &codes[k], 1, FOREVER), 1);
        client_expect_eof(&c);
        CHECK_OK(cosync_io_close(&c));
        CHECK_EQ(h_ended, k + 1);
        /* the handler's return did not close its descriptor's number again */
        struct stat sb;
        CHECK(fd_open(sc_fd));
        CHECK_EQ(fstat(sc_fd, &sb), 0);
        CHECK(S_ISFIFO(sb.st_mode));
        CHECK_EQ(close(sc_pipe[0]), 0);
        CHECK_EQ(close(sc_pipe[1]), 0);
        if (sc_extra >= 0)
            CHECK_EQ(close(sc_extra), 0);
        CHECK_STATS(&srv, 0, (uint64_t)k + 1, k, true, true);
    }
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* A handler that closed its connection itself: the server does not close
 * it again (the descriptor's number, taken again meanwhile, stays open),
 * and the status still counts. */
TEST(a_handler_that_closed_its_connection_is_not_closed_twice)
{
    run_case(selfclose_main, NULL);
}

/* ------------------------------------------------------------------------
 * 4. close
 * ---------------------------------------------------------------------- */

/* close(); wait_closed(); destroy(): the wait covers the serving task
 * too, which has not yet left its accept when the close returns. */
static int close_wait_destroy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_yield()); /* the serve task waits in its accept */
    CHECK_OK(cosync_server_close(&srv));
    CHECK_STATS(&srv, 0, 0, 0, true, false); /* no connection, still serving */
    CHECK_ERR(cosync_server_wait_closed(&srv, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
    CHECK(cosync_task_done(s)); /* serve has returned */
    CHECK_OK(cosync_server_destroy(&srv));
    join_ok(s);
    CHECK_OK(sc.rc);
    return 0;
}

TEST(close_then_wait_closed_then_destroy)
{
    run_case(close_wait_destroy_main, NULL);
}

static int close_other_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr, a;
    cosync_io c1, c2;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c1, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    client_echo(&c1, "before");

    int64_t closed_at = cosync_now();
    CHECK_OK(cosync_server_close(&srv));
    CHECK_STATS(&srv, 1, 1, 0, true, false); /* the serve task has not run yet */
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);
    CHECK_OK(cosync_server_close(&srv)); /* twice: nothing */
    CHECK_ERR(cosync_server_local_addr(&srv, &a), COSYNC_EBADF);
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, FOREVER), COSYNC_EBADF);
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, 0), COSYNC_EBADF);
    join_ok(s);
    CHECK_OK(sc.rc);
    CHECK_EQ(sc.returned_at, closed_at);
    CHECK_STATS(&srv, 1, 1, 0, false, false);
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, FOREVER), COSYNC_EBADF);

    /* nobody listens on the port any more */
    CHECK_ERR(cosync_tcp_connect(&c2, &addr, FOREVER), COSYNC_ECONNREFUSED);
    /* the connection being served goes on */
    client_echo(&c1, "after the close");
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY); /* its handler runs */
    CHECK_ERR(cosync_server_wait_closed(&srv, 0), COSYNC_EAGAIN);
    client_finish(&c1);
    CHECK_OK(logs[0].status);
    CHECK_STATS(&srv, 0, 1, 0, false, false);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* close from another task: serve returns 0 at once, the port refuses new
 * connections, the connection being served goes on to its end; close
 * twice is 0; local_addr and serve say EBADF. */
TEST(close_from_another_task)
{
    run_case(close_other_main, NULL);
}

static int close_handler_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c1, c2, c3;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c1, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    CHECK_OK(cosync_tcp_connect(&c2, &addr, FOREVER));
    WAIT_FOR(h_started == 2);
    client_echo(&c1, "!"); /* the handler closes the server, then echoes */
    join_ok(s);
    CHECK_OK(sc.rc);
    CHECK_STATS(&srv, 2, 2, 0, false, false);
    CHECK_ERR(cosync_tcp_connect(&c3, &addr, FOREVER), COSYNC_ECONNREFUSED);
    client_echo(&c1, "still served");
    client_echo(&c2, "me too");
    client_finish(&c2);
    client_finish(&c1);
    CHECK_OK(logs[0].status);
    CHECK_OK(logs[1].status);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* close from inside a handler (while the serve task waits in its accept):
 * serve returns 0, the handlers go on. */
TEST(close_from_a_handler)
{
    run_case(close_handler_main, NULL);
}

/* Closes the server in its first step, before it suspends. */
static int first_step_close_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    CHECK_OK(cosync_server_close(cur_srv));
    CHECK_OK(cosync_server_close(cur_srv));
    int rc = echo_until_eof(conn, i);
    note_end(i, rc);
    return rc;
}

static int close_first_step_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io cl[2];
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "first-step");
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER));
    serve_call sc = serve_of(&srv, first_step_close_handler);
    cosync_task s = spawn_serve(&sc);
    join_ok(s); /* after the first handler's first step: no other accept */
    CHECK_OK(sc.rc);
    CHECK_EQ(h_started, 1);
    CHECK_STATS(&srv, 1, 1, 0, false, false);
    client_expect_gone(&cl[1]); /* never accepted: the listener went */
    client_echo(&cl[0], "served");
    client_finish(&cl[0]);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* A handler that closes the server in its eager first step: the accept
 * loop takes no other connection and serve returns 0. */
TEST(close_from_a_handler_first_step)
{
    run_case(close_first_step_main, NULL);
}

/* ------------------------------------------------------------------------
 * 5. wait_closed
 * ---------------------------------------------------------------------- */

static int wait_closed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "wait-closed");
    serve_call sc = serve_of(&srv, release_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    CHECK_ERR(cosync_server_wait_closed(&srv, 0), COSYNC_EAGAIN); /* open */

    int64_t t0 = cosync_now();
    waiter w1 = waiter_of(&srv, FOREVER), w2 = waiter_of(&srv, t0 + COSYNC_SEC(3)),
           w3 = waiter_of(&srv, FOREVER);
    w1.checkpoint = 1;
    cosync_task t1 = spawn_waiter(&w1), t2 = spawn_waiter(&w2), t3 = spawn_waiter(&w3);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(t1) && !cosync_task_done(t2) && !cosync_task_done(t3));

    /* what a dump says of them */
    int ntasks = 0;
    char *dump = dump_text(&ntasks);
    CHECK_EQ(ntasks, 6); /* main, serve, the handler, three waiters */
    const char *p = dump;
    int waits = 0;
    while ((p = strstr(p, "waits on server ")) != NULL) {
        waits++;
        p++;
    }
    CHECK_EQ(waits, 3);
    CHECK_NOTNULL(strstr(dump, "(open; connections: 1) (with a deadline)"));
    free(dump);

    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY); /* serving, waited for */

    /* cancelled */
    CHECK_OK(cosync_task_cancel(t3));
    join_expect(t3, COSYNC_ECANCELED);
    CHECK_ERR(w3.rc, COSYNC_ECANCELED);
    CHECK_EQ(w3.returned_at, t0);
    /* a finite deadline */
    join_expect(t2, COSYNC_ETIMEDOUT);
    CHECK_ERR(w2.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w2.returned_at, t0 + COSYNC_SEC(3));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(3));
    CHECK(!cosync_task_done(t1));

    /* closed, but a handler still runs: the wait goes on */
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK(!cosync_task_done(t1));
    CHECK_ERR(cosync_server_wait_closed(&srv, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);

    /* the last handler returns (it checks EDEADLK first): then the wait */
    end_cp = 0;
    CHECK_OK(cosync_event_set(&release));
    join_ok(t1);
    CHECKPOINTS_DONE(2);
    CHECK_OK(w1.rc);
    CHECK_EQ(w1.conns_then, 0);
    CHECK_EQ(w1.ended_then, 1);
    CHECK_OK(logs[0].status);
    client_expect_eof(&c);
    CHECK_OK(cosync_io_close(&c));

    uint64_t before = switches();
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER)); /* at once */
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_server_destroy(&srv)); /* no waiter left behind */
    CHECK_GONE(path);                      /* the close removed it */

    /* open: the wait is for the close, even once every task of the
     * server has ended (a serve with deadline 0, its handler) */
    unix_case(&srv, &addr, path, sizeof path, "wait-open");
    waiter w4 = waiter_of(&srv, FOREVER);
    cosync_task t4 = spawn_waiter(&w4);
    CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
    CHECK(!cosync_task_done(t4));
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    CHECK_ERR(cosync_server_serve(&srv, release_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(h_started, 1);
    CHECK_OK(cosync_event_set(&release));
    WAIT_FOR(h_ended == 1);
    client_expect_eof(&c);
    CHECK_OK(cosync_io_close(&c));
    CHECK_STATS(&srv, 0, 1, 0, false, true);
    CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
    CHECK(!cosync_task_done(t4));
    int64_t closed_at = cosync_now();
    CHECK_OK(cosync_server_close(&srv));
    join_ok(t4);
    CHECK_EQ(w4.returned_at, closed_at);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* wait_closed: EAGAIN for deadline 0 while open or while a handler runs;
 * ETIMEDOUT at exactly its deadline; ECANCELED; EDEADLK from the handler
 * itself; it returns after the last handler has returned, and at once (no
 * switch) when the server is closed with no connection; a wait on an open
 * server with no connection ends at its close. */
TEST(wait_closed_waits_for_the_close_and_the_last_handler)
{
    run_case(wait_closed_main, NULL);
}

static int wait_closed_eager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    misuse_in_handler = true; /* the handler's first step: EDEADLK, EBUSY... */
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    client_echo(&c, "hi");
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    client_finish(&c);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* From a handler's first step (inside the accept loop's spawn, the server
 * open): its own wait_closed is EDEADLK (EAGAIN for deadline 0), serve is
 * EBUSY, destroy is EBUSY. */
TEST(a_handler_cannot_wait_for_its_own_server)
{
    run_case(wait_closed_eager_main, NULL);
}

/* Outside any task: a numeric listen, local_addr, close and destroy work;
 * serve is EPERM; wait_closed is EPERM when it must wait, EAGAIN for
 * deadline 0, 0 once closed. */
TEST(outside_a_task)
{
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    cosync_server srv;
    cosync_addr addr, a;
    char text[COSYNC_ADDR_TEXT_MAX], want[COSYNC_ADDR_TEXT_MAX];
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_server_listen(&srv, &addr, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    snprintf(want, sizeof want, "127.0.0.1:%d", cosync_addr_port(&a));
    CHECK_STREQ(addr_text(&a, text), want);
    CHECK_ERR(cosync_server_serve(&srv, unused_handler, NULL, NULL, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_server_serve(&srv, unused_handler, NULL, NULL, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_server_wait_closed(&srv, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_server_wait_closed(&srv, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_server_close_clients(&srv));
    CHECK_STATS(&srv, 0, 0, 0, false, true);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_ERR(cosync_server_serve(&srv, unused_handler, NULL, NULL, FOREVER), COSYNC_EBADF);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

static cosync_server dl_srv;

static int deadlock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_addr addr;
    listen_tcp(&dl_srv, &addr);
    /* nobody serves it, nobody will close it */
    int rc = cosync_server_wait_closed(&dl_srv, FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED); /* the loop's close */
    CHECK_OK(cosync_server_destroy(&dl_srv));
    return rc;
}

/* A wait for a server that nothing can close is a deadlock, and the
 * report says what the task waits on. */
TEST(a_wait_for_a_server_nobody_closes_is_reported_as_a_deadlock)
{
    int fds = count_fds();
    capture c;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&c, deadlock_main, NULL, "main", &m);
    const char *text = capture_text(&c);
    CHECK_NOTNULL(strstr(text, "task 'main'"));
    CHECK_NOTNULL(strstr(text, "waits on server "));
    CHECK_NOTNULL(strstr(text, "(open; connections: 0)"));
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&c);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------
 * 6. close_clients
 * ---------------------------------------------------------------------- */

#define NCC 3

static int close_clients_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io cl[NCC + 1];
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    CHECK_OK(cosync_server_close_clients(&srv)); /* none: nothing */
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    for (int i = 0; i < NCC; i++) {
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER));
        WAIT_FOR(h_started == i + 1);
    }
    client_echo(&cl[1], "one");
    CHECK_OK(cosync_server_close_clients(&srv));
    CHECK_EQ(h_ended, 0); /* no suspension point */
    for (int i = 0; i < NCC; i++) {
        client_expect_eof(&cl[i]);
        CHECK_OK(cosync_io_close(&cl[i]));
    }
    WAIT_FOR(h_ended == NCC);
    for (int i = 0; i < NCC; i++)
        CHECK_ERR(logs[i].status, COSYNC_ECANCELED);
    CHECK_STATS(&srv, 0, NCC, 0, true, true); /* ECANCELED is no failure */

    /* still serving: a new client's handler is not cancelled */
    CHECK_OK(cosync_tcp_connect(&cl[NCC], &addr, FOREVER));
    WAIT_FOR(h_started == NCC + 1);
    client_echo(&cl[NCC], "new");
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    waiter w = waiter_of(&srv, FOREVER);
    w.checkpoint = 1;
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(t));
    /* a handler ends its own connection and the others: its own cancel
     * comes at its next suspension, after the echo */
    end_cp = 0;
    CHECK_EQ(cosync_sock_send(&cl[NCC], "#", 1, FOREVER), 1);
    join_ok(t);
    CHECKPOINTS_DONE(2);
    CHECK_OK(w.rc);
    CHECK_ERR(logs[NCC].status, COSYNC_ECANCELED);
    char back[4];
    CHECK_EQ(cosync_sock_recv(&cl[NCC], back, sizeof back, FOREVER), 1); /* the echo came first */
    CHECK_EQ(back[0], '#');
    client_expect_eof(&cl[NCC]);
    CHECK_OK(cosync_io_close(&cl[NCC]));
    CHECK_STATS(&srv, 0, NCC + 1, 0, false, false);
    CHECK_OK(cosync_server_close_clients(&srv)); /* closed, none left: nothing */
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* close_clients: every handler sees COSYNC_ECANCELED at its suspension,
 * its connection is closed, none counts as failed; the server still
 * serves; a wait_closed returns once the last cancelled handler has. */
TEST(close_clients_cancels_every_handler)
{
    run_case(close_clients_main, NULL);
}

/* ------------------------------------------------------------------------
 * 7. serve's deadline and cancel
 * ---------------------------------------------------------------------- */

static int serve_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr, a;
    cosync_io c;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    int64_t t0 = cosync_now();
    serve_call sc = serve_of(&srv, echo_handler);
    sc.deadline = t0 + COSYNC_SEC(5);
    cosync_task s = spawn_serve(&sc);
    join_expect(s, COSYNC_ETIMEDOUT);
    CHECK_ERR(sc.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(sc.returned_at, t0 + COSYNC_SEC(5));
    /* closed, as asyncio's cancelled serve_forever closes it */
    CHECK_STATS(&srv, 0, 0, 0, false, false);
    CHECK_ERR(cosync_server_local_addr(&srv, &a), COSYNC_EBADF);
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, FOREVER), COSYNC_EBADF);
    CHECK_OK(cosync_server_wait_closed(&srv, 0));
    CHECK_OK(cosync_server_destroy(&srv));

    /* a deadline that has passed: ETIMEDOUT, closed */
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    sc = serve_of(&srv, echo_handler);
    sc.deadline = cosync_now() - 1;
    s = spawn_serve(&sc);
    join_expect(s, COSYNC_ETIMEDOUT);
    CHECK_STATS(&srv, 0, 0, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));

    /* cancelled: ECANCELED, closed */
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    sc = serve_of(&srv, echo_handler);
    s = spawn_serve(&sc);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(s));
    int64_t at = cosync_now();
    CHECK_OK(cosync_task_cancel(s));
    join_expect(s, COSYNC_ECANCELED);
    CHECK_ERR(sc.rc, COSYNC_ECANCELED);
    CHECK_EQ(sc.returned_at, at);
    CHECK_STATS(&srv, 0, 0, 0, false, false);
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_OK(cosync_server_destroy(&srv));

    /* cancelled before it started: ECANCELED without a run, not closed
     * (serve was never called) */
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    sc = serve_of(&srv, echo_handler);
    if (!eager_loop) {
        s = spawn_serve(&sc);
        CHECK_OK(cosync_task_cancel(s));
        join_expect(s, COSYNC_ECANCELED);
        CHECK_EQ(sc.rc, 12345);
        CHECK_STATS(&srv, 0, 0, 0, false, true);
    }
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* serve with a deadline: ETIMEDOUT at exactly the deadline (one that has
 * passed: at once), cancelled: ECANCELED at once; either way the server
 * is closed (the port refuses connections). */
TEST(serve_times_out_or_is_cancelled_and_closes_the_server)
{
    run_case(serve_deadline_main, NULL);
}

static int serve_ends_handlers_go_on_main(void *arg, void **result)
{
    bool cancel = arg != NULL;
    (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "serve-ends");
    int64_t t0 = cosync_now();
    serve_call sc = serve_of(&srv, release_handler);
    if (!cancel)
        sc.deadline = t0 + COSYNC_SEC(2);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    if (cancel) {
        CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
        CHECK_OK(cosync_task_cancel(s));
    }
    join_expect(s, cancel ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT);
    CHECK_EQ(sc.returned_at, t0 + COSYNC_SEC(2));
    /* the handler is not cancelled: it goes on */
    CHECK_STATS(&srv, 1, 1, 0, false, false);
    CHECK_EQ(h_ended, 0);
    waiter w = waiter_of(&srv, FOREVER);
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_sleep(COSYNC_SEC(10)));
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_event_set(&release));
    join_ok(t);
    CHECK_EQ(w.returned_at, t0 + COSYNC_SEC(12));
    CHECK_OK(logs[0].status);
    client_expect_eof(&c);
    CHECK_OK(cosync_io_close(&c));
    CHECK_STATS(&srv, 0, 1, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* serve's deadline passes while a handler runs: ETIMEDOUT, the server is
 * closed, the handler goes on (wait_closed waits for it). */
TEST(serve_times_out_while_a_handler_runs)
{
    run_case(serve_ends_handlers_go_on_main, NULL);
}

/* serve cancelled while a handler runs: ECANCELED, the same. */
TEST(serve_is_cancelled_while_a_handler_runs)
{
    run_case(serve_ends_handlers_go_on_main, "cancel");
}

static int serve_try_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io cl[3];
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "try");

    /* nobody waiting: EAGAIN at once, the server stays open */
    uint64_t before = switches();
    int64_t at = cosync_now();
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);
    CHECK_EQ(cosync_now(), at);
    CHECK_STATS(&srv, 0, 0, 0, false, true);

    /* two waiting: both handlers start (each to its first suspension),
     * then EAGAIN; the handlers go on without a serve */
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER));
    CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(h_started, 2);
    CHECK_EQ(cosync_now(), at);
    CHECK_STATS(&srv, 2, 2, 0, false, true);
    client_echo(&cl[0], "first");
    client_echo(&cl[1], "second");

    /* a serve with no deadline takes the next one */
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&cl[2], &addr, FOREVER));
    WAIT_FOR(h_started == 3);
    client_echo(&cl[2], "third");
    for (int i = 0; i < 3; i++)
        client_finish(&cl[i]);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 3, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* serve with deadline 0: EAGAIN once the waiting connections are served
 * (their handlers started), the server open; with none, at once. */
TEST(serve_with_deadline_0)
{
    run_case(serve_try_main, NULL);
}

/* ------------------------------------------------------------------------
 * 8. Misuse
 * ---------------------------------------------------------------------- */

/* Every call but listen and get_stats refuses @srv with EINVAL. */
static void check_refused(cosync_server *srv)
{
    cosync_addr a;
    CHECK_ERR(cosync_server_local_addr(srv, &a), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_local_addrs(srv, &a, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_serve(srv, unused_handler, NULL, NULL, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_serve(srv, unused_handler, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_close(srv), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_close_clients(srv), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_wait_closed(srv, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_wait_closed(srv, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_destroy(srv), COSYNC_EINVAL);
}

static int null_args_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv, zero;
    cosync_addr addr, a;
    cosync_server_stats st;
    memset(&zero, 0, sizeof zero);
    /* zero-filled: refused (get_stats, whose doc block names only NULL
     * arguments, answers zeros) */
    check_refused(&zero);
    CHECK_OK(cosync_server_get_stats(&zero, &st));
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.accepted, 0);
    CHECK_EQ(st.failed, 0);
    CHECK(!st.serving && !st.open);

    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_ERR(cosync_server_listen(NULL, &addr, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_host(NULL, "127.0.0.1", 0, 0, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen(&srv, &addr, -1), COSYNC_EINVAL);
    check_refused(&srv);
    CHECK_ERR(cosync_server_listen_host(&srv, "127.0.0.1", 0, -1, FOREVER), COSYNC_EINVAL);
    check_refused(&srv);
    memset(&srv, 0, sizeof srv);
    CHECK_ERR(cosync_server_listen(&srv, NULL, 0), COSYNC_EINVAL);
    check_refused(&srv);
    CHECK_ERR(cosync_server_local_addr(NULL, &a), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_serve(NULL, unused_handler, NULL, NULL, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_close(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_close_clients(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_wait_closed(NULL, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_wait_closed(NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_destroy(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_get_stats(NULL, &st), COSYNC_EINVAL);

    CHECK_OK(cosync_server_listen(&srv, &addr, 0));
    CHECK_ERR(cosync_server_local_addr(&srv, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_get_stats(&srv, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_serve(&srv, NULL, NULL, NULL, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_serve(&srv, NULL, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_STATS(&srv, 0, 0, 0, false, true); /* none of it changed anything */
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* NULL arguments, a negative backlog, a zero-filled server: EINVAL, and a
 * failed listen leaves the server refused by every call. */
TEST(null_arguments_and_zero_filled_servers_are_refused)
{
    run_case(null_args_main, NULL);
}

static int busy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr, a;
    cosync_io c1, c2;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, echo_handler), sc2 = serve_of(&srv, unused_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_yield()); /* it waits in its accept */
    /* a second server of it: EBUSY, from this task and from another */
    CHECK_ERR(cosync_server_serve(&srv, unused_handler, NULL, NULL, FOREVER), COSYNC_EBUSY);
    CHECK_ERR(cosync_server_serve(&srv, unused_handler, NULL, NULL, 0), COSYNC_EBUSY);
    cosync_task s2 = spawn_serve(&sc2);
    join_expect(s2, COSYNC_EBUSY);
    /* destroyed while it serves: EBUSY, nothing changes */
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);
    CHECK_STATS(&srv, 0, 0, 0, true, true);
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    CHECK_EQ(cosync_addr_port(&a), cosync_addr_port(&addr));
    /* a handler is no second server either (misuse_in_handler) */
    misuse_in_handler = true;
    CHECK_OK(cosync_tcp_connect(&c1, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    misuse_in_handler = false;
    client_echo(&c1, "served all the same");
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    /* destroyed while a handler runs: EBUSY */
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);
    client_echo(&c1, "and still");
    client_finish(&c1);
    CHECK_OK(cosync_server_destroy(&srv));

    /* destroyed while a task waits for its close: EBUSY; the wait goes on */
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    waiter w = waiter_of(&srv, FOREVER);
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_server_destroy(&srv), COSYNC_EBUSY);
    CHECK(!cosync_task_done(t));
    CHECK_STATS(&srv, 0, 0, 0, false, true);
    sc = serve_of(&srv, echo_handler);
    s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c2, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    client_echo(&c2, "works");
    client_finish(&c2);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(t);
    CHECK_OK(w.rc);
    join_ok(s);
    CHECK_OK(cosync_server_destroy(&srv));

    /* destroyed: refused by every call, until a new listen */
    check_refused(&srv);
    listen_tcp(&srv, &addr);
    CHECK_STATS(&srv, 0, 0, 0, false, true);
    sc = serve_of(&srv, echo_handler);
    s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c2, &addr, FOREVER));
    WAIT_FOR(h_started == 2);
    client_echo(&c2, "again");
    client_finish(&c2);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 1, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    check_refused(&srv);
    /* get_stats answers (its doc block names only NULL arguments): no
     * connection, not serving, not open */
    cosync_server_stats st = stats_of(&srv);
    CHECK_EQ(st.connections, 0);
    CHECK(!st.serving && !st.open);
    return 0;
}

/* A second serve of a served server: EBUSY (another task, the serving
 * task itself, a handler); destroy while it serves, while a handler runs,
 * while a task waits in wait_closed: EBUSY and nothing changes; a
 * destroyed server is refused until it listens again. */
TEST(a_busy_server_refuses_a_second_serve_and_its_destroy)
{
    run_case(busy_main, NULL);
}

static int in_use_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv, srv2;
    cosync_addr addr;
    cosync_io c;
    char path[128];
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    /* SO_REUSEADDR does not let two listeners share a port */
    CHECK_ERR(cosync_server_listen(&srv2, &addr, 0), COSYNC_EADDRINUSE);
    check_refused(&srv2);
    CHECK_ERR(cosync_server_listen_host(&srv2, "127.0.0.1", (uint16_t)cosync_addr_port(&addr), 0,
                                        FOREVER),
              COSYNC_EADDRINUSE);
    check_refused(&srv2);
    /* the first one is unharmed */
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    client_echo(&c, "unharmed");
    client_finish(&c);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_destroy(&srv));

    /* a Unix-domain path that exists */
    sock_path(path, sizeof path, "in-use");
    listen_unix(&srv, &addr, path);
    CHECK_ERR(cosync_server_listen(&srv2, &addr, 0), COSYNC_EADDRINUSE);
    check_refused(&srv2);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* A listen on an address in use: COSYNC_EADDRINUSE (TCP port, Unix
 * path), and the server is refused by every call afterwards. */
TEST(a_listen_on_an_address_in_use_is_refused)
{
    run_case(in_use_main, NULL);
}

/* ------------------------------------------------------------------------
 * 9. A Unix-domain server
 * ---------------------------------------------------------------------- */

static int unix_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr, bound;
    cosync_io cl[2], c;
    char path[128], want[160], text[COSYNC_ADDR_TEXT_MAX];
    reset_state(&srv);
    sock_path(path, sizeof path, "echo");
    snprintf(want, sizeof want, "unix:%s", path);
    listen_unix(&srv, &addr, path);
    CHECK_OK(cosync_server_local_addr(&srv, &bound));
    CHECK_STREQ(addr_text(&bound, text), want);
    CHECK_ERR(cosync_addr_port(&bound), COSYNC_EINVAL);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_tcp_connect(&cl[i], &addr, FOREVER));
        WAIT_FOR(h_started == i + 1);
        CHECK_STREQ(logs[i].peer, "unix:"); /* a client's socket has no name */
        CHECK_STREQ(logs[i].name, "unix:");
    }
    client_echo(&cl[1], "over a path");
    client_echo(&cl[0], "me too");
    for (int i = 0; i < 2; i++)
        client_finish(&cl[i]);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 2, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    /* the close removed the socket file */
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), -ENOENT);
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* A server on a Unix-domain path: echo; the handlers' peer and name are
 * "unix:"; the path is removed afterwards. */
TEST(a_unix_domain_server)
{
    run_case(unix_main, NULL);
}

/* The close removes the socket file its bind made, and no other: one
 * put in its place stays. */
static int replaced_file_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "replaced");
    CHECK_EQ(unlink(path), 0);
    int fd = open(path, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
    CHECK_GE(fd, 0);
    CHECK_EQ(close(fd), 0);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_EQ(access(path, F_OK), 0); /* not the server's: kept */
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_EQ(unlink(path), 0);
    /* nor one a second server bound after the first's file was removed */
    cosync_server other;
    listen_unix(&srv, &addr, path);
    CHECK_EQ(unlink(path), 0);
    listen_unix(&other, &addr, path);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_EQ(access(path, F_OK), 0);
    CHECK_OK(cosync_server_close(&other));
    CHECK_GONE(path);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_OK(cosync_server_destroy(&other));
    return 0;
}

TEST(the_close_removes_only_its_own_socket_file)
{
    run_case(replaced_file_main, NULL);
}

/* ------------------------------------------------------------------------
 * 10. listen_host
 * ---------------------------------------------------------------------- */

/* Serve @srv (listening on a loopback address) to one echo client. */
static void serve_one_echo(cosync_server *srv, const char *want_prefix)
{
    cosync_addr addr;
    cosync_io c;
    reset_state(srv);
    CHECK_OK(cosync_server_local_addr(srv, &addr));
    CHECK(is_loopback(&addr));
    serve_call sc = serve_of(srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    WAIT_FOR(h_started == 1);
    CHECK_EQ(strncmp(logs[0].peer, want_prefix, strlen(want_prefix)), 0);
    CHECK_STREQ(logs[0].name, logs[0].peer);
    client_echo(&c, "by name");
    client_finish(&c);
    CHECK_OK(cosync_server_close(srv));
    join_ok(s);
    CHECK_OK(cosync_server_destroy(srv));
}

static int listen_host_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr a;
    char text[COSYNC_ADDR_TEXT_MAX];

    /* numeric: no lookup, no suspension */
    uint64_t before = switches();
    CHECK_OK(cosync_server_listen_host(&srv, "127.0.0.1", 0, 0, FOREVER));
    CHECK_EQ(switches(), before);
    serve_one_echo(&srv, "127.0.0.1:");

    /* "localhost": a lookup on a thread (the virtual clock stands still) */
    CHECK_OK(cosync_server_listen_host(&srv, "localhost", 0, 0, FOREVER));
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    CHECK(is_loopback(&a));
    CHECK_GT(cosync_addr_port(&a), 0);
    serve_one_echo(&srv, a.u.sa.sa_family == AF_INET ? "127.0.0.1:" : "[::1]:");
    /* deadline 0: it would need a lookup; refused afterwards */
    CHECK_ERR(cosync_server_listen_host(&srv, "localhost", 0, 0, 0), COSYNC_EAGAIN);
    check_refused(&srv);

    /* "::1" where the machine has IPv6 loopback */
    int rc = cosync_server_listen_host(&srv, "::1", 0, 0, 0);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        printf("  (::1 skipped: it cannot be bound: %s)\n", cosync_err_name(rc));
        check_refused(&srv);
        return 0;
    }
    CHECK_OK(rc);
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    char want[COSYNC_ADDR_TEXT_MAX];
    snprintf(want, sizeof want, "[::1]:%d", cosync_addr_port(&a));
    CHECK_STREQ(addr_text(&a, text), want);
    serve_one_echo(&srv, "[::1]:");
    return 0;
}

/* listen_host: "127.0.0.1" (numeric: no suspension), "localhost" (a
 * lookup, from a task), "::1" (skipped where it cannot be bound); each
 * serves an echo, its handler named after its peer. */
TEST(listen_host_numeric_localhost_and_ipv6)
{
    run_case(listen_host_main, NULL);
}

/* Outside a task: a numeric host needs no lookup (deadline 0 too); a name
 * is EPERM, and the server is refused afterwards. */
TEST(listen_host_outside_a_task)
{
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    cosync_server srv;
    cosync_addr a;
    CHECK_OK(cosync_server_listen_host(&srv, "127.0.0.1", 0, 0, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    CHECK(is_loopback(&a));
    CHECK_GT(cosync_addr_port(&a), 0);
    CHECK_STATS(&srv, 0, 0, 0, false, true);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_ERR(cosync_server_listen_host(&srv, "localhost", 0, 0, FOREVER), COSYNC_EPERM);
    check_refused(&srv);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

/* The addresses @srv listens on, as text, joined by spaces. */
static const char *listening_on(const cosync_server *srv, char *buf, size_t size)
{
    cosync_addr a[COSYNC_SERVER_MAX_LISTENERS];
    char text[COSYNC_ADDR_TEXT_MAX];
    int n = cosync_server_local_addrs(srv, a, COSYNC_SERVER_MAX_LISTENERS);
    CHECK_GT(n, 0);
    buf[0] = '\0';
    for (int i = 0; i < n; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? " " : "", addr_text(&a[i], text));
    }
    return buf;
}

/* The address @ip with @port. */
static cosync_addr ip_port(const char *ip, int port)
{
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, ip, (uint16_t)port));
    return a;
}

static int listen_host_every_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server first, srv, again;
    cosync_addr addr;
    char buf[512], want[512];

    /* every address, in the resolver's order, on one free port */
    CHECK_OK(cosync_server_listen_host(&srv, "three.test", 0, 0, FOREVER));
    CHECK_OK(cosync_server_local_addr(&srv, &addr));
    int port = cosync_addr_port(&addr);
    CHECK_GT(port, 0);
    snprintf(want, sizeof want, "127.0.0.1:%d 127.0.0.2:%d 127.0.0.3:%d", port, port, port);
    CHECK_STREQ(listening_on(&srv, buf, sizeof buf), want);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_destroy(&srv));

    /* an address the resolver gives twice is listened on once */
    CHECK_OK(cosync_server_listen_host(&srv, "twice.test", 0, 0, FOREVER));
    CHECK_EQ(cosync_server_local_addrs(&srv, NULL, 0), 1);
    serve_one_echo(&srv, "127.0.0.1:");

    /* a port taken on one address (the second): the error, and nothing
     * left open (the first address binds again) */
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.2", 0));
    CHECK_OK(cosync_server_listen(&first, &addr, 0));
    CHECK_OK(cosync_server_local_addr(&first, &addr));
    port = cosync_addr_port(&addr);
    CHECK_ERR(cosync_server_listen_host(&srv, "three.test", (uint16_t)port, 0, FOREVER),
              COSYNC_EADDRINUSE);
    check_refused(&srv);
    addr = ip_port("127.0.0.1", port);
    CHECK_OK(cosync_server_listen(&again, &addr, 0));
    CHECK_OK(cosync_server_destroy(&again));
    CHECK_OK(cosync_server_destroy(&first));

    /* no address */
    CHECK_ERR(cosync_server_listen_host(&srv, "nothing.test", 0, 0, FOREVER), COSYNC_ENONAME);
    check_refused(&srv);
    return 0;
}

/* listen_host listens on every address of the host (asyncio binds a
 * socket for each), once each, on one port; a port taken on any of them
 * fails the call and leaves nothing open; a name without addresses is
 * COSYNC_ENONAME. */
TEST(listen_host_binds_every_address)
{
    run_case(listen_host_every_main, NULL);
}

/* ------------------------------------------------------------------------
 * 10b. Several addresses
 * ---------------------------------------------------------------------- */

/* While > 0, each bind of a socket to 127.0.0.2 with a given port fails
 * with EADDRINUSE (and counts down): a port that the first address was
 * given and another program holds on the second. */
static atomic_int binds_in_use;
/* While set, a socket of AF_INET6 cannot be made (EAFNOSUPPORT): a system
 * without IPv6. */
static atomic_bool no_ipv6;
/* IPV6_V6ONLY of the last IPv6 socket bound, as it was just before its
 * bind (the bind of a socket to one IPv6 address, ::1, sets it anyway). */
static int v6only_at_bind = -1;

/* Binds to every interface (0.0.0.0, ::) asked for: each is made on
 * loopback instead (127.0.0.1, ::1), so that no test ever listens beyond
 * this machine. */
static atomic_int wildcards_bound;

/* @sa with a wildcard address made loopback, in @copy; @sa otherwise. */
static const struct sockaddr *on_loopback(const struct sockaddr *sa, socklen_t len,
                                          struct sockaddr_storage *copy)
{
    if (len > sizeof *copy)
        return sa;
    memcpy(copy, sa, len);
    struct sockaddr_in *sin = (struct sockaddr_in *)copy;
    struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)copy;
    if (sa->sa_family == AF_INET && sin->sin_addr.s_addr == htonl(INADDR_ANY)) {
        sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    } else if (sa->sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sin6->sin6_addr)) {
        sin6->sin6_addr = in6addr_loopback;
    } else {
        return sa;
    }
    atomic_fetch_add(&wildcards_bound, 1);
    return (const struct sockaddr *)copy;
}

int bind(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "bind");
    CHECK_NOTNULL(real);
    struct sockaddr_storage copy;
    sa = on_loopback(sa, len, &copy);
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    if (sa->sa_family == AF_INET && len >= sizeof *sin && sin->sin_port != 0 &&
        sin->sin_addr.s_addr == htonl(0x7f000002) && atomic_load(&binds_in_use) > 0) {
        atomic_fetch_sub(&binds_in_use, 1);
        errno = EADDRINUSE;
        return -1;
    }
    if (sa->sa_family == AF_INET6) {
        socklen_t optlen = sizeof v6only_at_bind;
        CHECK_EQ(getsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only_at_bind, &optlen), 0);
    }
    return real(fd, sa, len);
}

int socket(int domain, int type, int protocol)
{
    static int (*real)(int, int, int);
    if (!real)
        real = (int (*)(int, int, int))dlsym(RTLD_NEXT, "socket");
    CHECK_NOTNULL(real);
    if (domain == AF_INET6 && atomic_load(&no_ipv6)) {
        errno = EAFNOSUPPORT;
        return -1;
    }
    return real(domain, type, protocol);
}

/* A handler that notes the address its connection came in on, then
 * returns (the server closes the connection). */
static char came_in_on[MAXC][COSYNC_ADDR_TEXT_MAX];

static int local_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    cosync_addr a;
    CHECK_OK(cosync_sock_local_addr(conn, &a));
    addr_text(&a, came_in_on[i]);
    note_end(i, 0);
    return 0;
}

/* The connections waiting in @srv's listener @i's queue (a listening
 * TCP socket's TCP_INFO gives its accept queue as tcpi_unacked). */
static unsigned queued_on(const cosync_server *srv, int i)
{
    struct tcp_info ti;
    socklen_t len = sizeof ti;
    CHECK_EQ(getsockopt(srv->listeners[i].fd, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
    return ti.tcpi_unacked;
}

/* Wait until the kernel has put @n connections in the queue of listener
 * @i (a loopback connect may return before the server's side has its
 * end of the handshake). */
static void wait_queued(const cosync_server *srv, int i, unsigned n)
{
    while (queued_on(srv, i) < n)
        sched_yield();
    CHECK_EQ(queued_on(srv, i), n);
}

static int several_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_io c[3];
    char buf[512], want[512];
    cosync_addr addrs[3] = {ip_port("127.0.0.1", 0), ip_port("127.0.0.2", 0),
                            ip_port("127.0.0.3", 0)};
    reset_state(&srv);
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 3, 0));
    cosync_addr a[3];
    CHECK_EQ(cosync_server_local_addrs(&srv, a, 3), 3);
    int port = cosync_addr_port(&a[0]);
    snprintf(want, sizeof want, "127.0.0.1:%d 127.0.0.2:%d 127.0.0.3:%d", port, port, port);
    CHECK_STREQ(listening_on(&srv, buf, sizeof buf), want);
    /* fewer than there are: the first ones, and how many in all */
    cosync_addr one = {0};
    CHECK_EQ(cosync_server_local_addrs(&srv, &one, 1), 3);
    CHECK_STREQ(addr_text(&one, buf), addr_text(&a[0], want));

    /* one serve accepts on all of them, waiting on none in particular */
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_yield()); /* it waits for a connection */
    for (int i = 2; i >= 0; i--) {
        CHECK_OK(cosync_tcp_connect(&c[i], &a[i], FOREVER));
        WAIT_FOR(h_started == 3 - i);
        client_echo(&c[i], "hello");
    }
    for (int i = 0; i < 3; i++)
        client_finish(&c[i]);
    WAIT_FOR(h_ended == 3);
    CHECK_STATS(&srv, 0, 3, 0, true, true);

    /* the serve's cancel closes every listener */
    CHECK_OK(cosync_task_cancel(s));
    join_expect(s, COSYNC_ECANCELED);
    CHECK_STATS(&srv, 0, 3, 0, false, false);
    CHECK_ERR(cosync_server_local_addrs(&srv, NULL, 0), COSYNC_EBADF);
    for (int i = 0; i < 3; i++) {
        cosync_io late;
        CHECK_ERR(cosync_tcp_connect(&late, &a[i], FOREVER), COSYNC_ECONNREFUSED);
    }
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* listen_addrs: three addresses on one free port, each in local_addrs;
 * one serve serves connections on each; its cancel closes them all. */
TEST(listen_addrs_serves_every_address)
{
    run_case(several_main, NULL);
}

static int turns_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_io c[4];
    cosync_addr addrs[2] = {ip_port("127.0.0.1", 0), ip_port("127.0.0.2", 0)}, a[2];
    reset_state(&srv);
    memset(came_in_on, 0, sizeof came_in_on);
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 2, 0));
    CHECK_EQ(cosync_server_local_addrs(&srv, a, 2), 2);
    /* three connections wait on the first, one on the second */
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_tcp_connect(&c[i], &a[0], FOREVER));
    CHECK_OK(cosync_tcp_connect(&c[3], &a[1], FOREVER));
    wait_queued(&srv, 0, 3);
    wait_queued(&srv, 1, 1);
    /* deadline 0: every waiting connection, the listeners taking turns,
     * then COSYNC_EAGAIN (the server stays open) */
    CHECK_ERR(cosync_server_serve(&srv, local_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(h_started, 4);
    int port = cosync_addr_port(&a[0]);
    char want[4][COSYNC_ADDR_TEXT_MAX];
    for (int i = 0; i < 4; i++)
        snprintf(want[i], sizeof want[i], "127.0.0.%d:%d", i == 1 ? 2 : 1, port);
    for (int i = 0; i < 4; i++)
        CHECK_STREQ(came_in_on[i], want[i]);
    CHECK_STATS(&srv, 0, 4, 0, false, true);
    CHECK_ERR(cosync_server_serve(&srv, local_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    for (int i = 0; i < 4; i++)
        client_expect_gone(&c[i]);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* Connections waiting on several listeners are taken in turns (1, 2, 1,
 * 1 for three on the first and one on the second), so that a busy
 * address does not keep the others waiting. */
TEST(listeners_take_turns)
{
    run_case(turns_main, NULL);
}

static int ipv6_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addrs[2] = {ip_port("::1", 0), ip_port("127.0.0.1", 0)}, a[2];
    cosync_io c[2];
    reset_state(&srv);
    v6only_at_bind = -1;
    int rc = cosync_server_listen_addrs(&srv, addrs, 2, 0);
    if (rc == -EADDRNOTAVAIL) {
        printf("  (::1 skipped: it cannot be bound: %s)\n", cosync_err_name(rc));
        check_refused(&srv);
        return 0;
    }
    CHECK_OK(rc);
    CHECK_EQ(cosync_server_local_addrs(&srv, a, 2), 2);
    CHECK_EQ(cosync_addr_port(&a[0]), cosync_addr_port(&a[1]));
    /* an IPv6 listener of several is made IPv6-only before its bind, as
     * asyncio makes it (so that "::" and "0.0.0.0" can be listened on
     * together) */
    CHECK_EQ(v6only_at_bind, 1);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_tcp_connect(&c[i], &a[i], FOREVER));
        WAIT_FOR(h_started == i + 1);
        client_echo(&c[i], "both families");
        client_finish(&c[i]);
    }
    CHECK_EQ(strncmp(logs[0].peer, "[::1]:", 6), 0);
    CHECK_EQ(strncmp(logs[1].peer, "127.0.0.1:", 10), 0);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
    CHECK_OK(cosync_server_destroy(&srv));

    /* one alone keeps the system's default (dual-stack for "::", as
     * before) */
    v6only_at_bind = -1;
    CHECK_OK(cosync_server_listen(&srv, &addrs[0], 0));
    CHECK_EQ(v6only_at_bind, 0);
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* ::1 and 127.0.0.1 on one port, the IPv6 socket IPv6-only; a client of
 * each family is served (skipped where ::1 cannot be bound). */
TEST(listen_addrs_on_both_families)
{
    run_case(ipv6_main, NULL);
}

static int port_taken_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addrs[2] = {ip_port("127.0.0.1", 0), ip_port("127.0.0.2", 0)}, a[2];
    char buf[512], want[512];

    /* the port the first was given is taken on the second, twice: a
     * third free port serves both */
    atomic_store(&binds_in_use, 2);
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 2, 0));
    CHECK_EQ(atomic_load(&binds_in_use), 0);
    CHECK_EQ(cosync_server_local_addrs(&srv, a, 2), 2);
    int port = cosync_addr_port(&a[0]);
    snprintf(want, sizeof want, "127.0.0.1:%d 127.0.0.2:%d", port, port);
    CHECK_STREQ(listening_on(&srv, buf, sizeof buf), want);
    serve_one_echo(&srv, "127.0.0.1:");

    /* taken whatever port comes: after a bounded number of tries, the
     * error, and nothing is left open (run_case counts descriptors) */
    atomic_store(&binds_in_use, 1000);
    CHECK_ERR(cosync_server_listen_addrs(&srv, addrs, 2, 0), COSYNC_EADDRINUSE);
    int tries = 1000 - atomic_load(&binds_in_use);
    atomic_store(&binds_in_use, 0);
    CHECK_GT(tries, 2);
    CHECK_LT(tries, 100);
    check_refused(&srv);

    /* a port the caller chose is not changed: taken, it fails at once */
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 2, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &a[0]));
    port = cosync_addr_port(&a[0]);
    CHECK_OK(cosync_server_destroy(&srv));
    addrs[0] = ip_port("127.0.0.1", port);
    addrs[1] = ip_port("127.0.0.2", port);
    atomic_store(&binds_in_use, 5);
    CHECK_ERR(cosync_server_listen_addrs(&srv, addrs, 2, 0), COSYNC_EADDRINUSE);
    CHECK_EQ(atomic_load(&binds_in_use), 4);
    atomic_store(&binds_in_use, 0);
    check_refused(&srv);
    return 0;
}

/* Addresses of port 0 share the port the first was given: one taken on
 * another address makes the listen start again with another, a bounded
 * number of times; a port the caller gave is never changed. */
TEST(a_port_taken_on_another_address_is_tried_again)
{
    run_case(port_taken_main, NULL);
}

static int no_ipv6_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addrs[3] = {ip_port("::1", 0), ip_port("127.0.0.1", 0), ip_port("::1", 0)};
    char buf[512], want[512];
    atomic_store(&no_ipv6, true);
    /* the IPv6 addresses are passed over: one listener is left */
    int rc = cosync_server_listen_addrs(&srv, addrs, 3, 0);
    atomic_store(&no_ipv6, false);
    CHECK_OK(rc);
    CHECK_EQ(cosync_server_local_addrs(&srv, NULL, 0), 1);
    cosync_addr a;
    CHECK_OK(cosync_server_local_addr(&srv, &a));
    snprintf(want, sizeof want, "127.0.0.1:%d", cosync_addr_port(&a));
    CHECK_STREQ(listening_on(&srv, buf, sizeof buf), want);
    serve_one_echo(&srv, "127.0.0.1:");
    /* none left: the family's error */
    atomic_store(&no_ipv6, true);
    rc = cosync_server_listen_addrs(&srv, (cosync_addr[]){addrs[0], addrs[2]}, 2, 0);
    atomic_store(&no_ipv6, false);
    CHECK_ERR(rc, COSYNC_EAFNOSUPPORT);
    check_refused(&srv);
    return 0;
}

/* An address of a family the system lacks is passed over, as asyncio
 * passes over a socket it cannot create; with none left, the family's
 * error. */
TEST(an_unsupported_family_is_passed_over)
{
    run_case(no_ipv6_main, NULL);
}

static int listen_addrs_misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv, zero;
    cosync_addr unix_addr, a, addrs[COSYNC_SERVER_MAX_LISTENERS + 1];
    char path[128], buf[512], before[512];
    for (int i = 0; i <= COSYNC_SERVER_MAX_LISTENERS; i++)
        addrs[i] = ip_port("127.0.0.1", 0);
    sock_path(path, sizeof path, "several");
    CHECK_OK(cosync_addr_unix(&unix_addr, path));
    memset(&zero, 0, sizeof zero);

    /* refused, and a server that listens goes on listening */
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 1, 0));
    listening_on(&srv, before, sizeof before);
    CHECK_ERR(cosync_server_listen_addrs(NULL, addrs, 2, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_addrs(&srv, NULL, 2, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_addrs(&srv, addrs, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_addrs(&srv, addrs, COSYNC_SERVER_MAX_LISTENERS + 1, 0),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_addrs(&srv, addrs, 2, -1), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_addrs(&srv, (cosync_addr[]){addrs[0], unix_addr}, 2, 0),
              COSYNC_EINVAL);
    cosync_addr unset = {0}; /* no family */
    CHECK_ERR(cosync_server_listen_addrs(&srv, (cosync_addr[]){addrs[0], unset}, 2, 0),
              COSYNC_EINVAL);
    CHECK_GONE(path); /* nothing was bound */
    CHECK_STREQ(listening_on(&srv, buf, sizeof buf), before);
    CHECK_ERR(cosync_server_local_addrs(&srv, NULL, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_local_addrs(NULL, &a, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_local_addrs(&zero, &a, 1), COSYNC_EINVAL);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_ERR(cosync_server_local_addrs(&srv, &a, 1), COSYNC_EBADF);
    CHECK_OK(cosync_server_destroy(&srv));

    /* a Unix-domain address alone is cosync_server_listen's */
    CHECK_OK(cosync_server_listen_addrs(&srv, &unix_addr, 1, 0));
    CHECK_EQ(cosync_server_local_addrs(&srv, &a, 1), 1);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */

    /* the same address twice: the second's bind fails, and nothing is
     * left open */
    cosync_addr taken;
    CHECK_OK(cosync_server_listen_addrs(&srv, addrs, 1, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &taken));
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_ERR(cosync_server_listen_addrs(&srv, (cosync_addr[]){taken, taken}, 2, 0),
              COSYNC_EADDRINUSE);
    check_refused(&srv);

    /* the poller cannot be made (fault injection): nothing is left open */
    cosync__fault_countdown = 0;
    CHECK_ERR(
        cosync_server_listen_addrs(&srv, (cosync_addr[]){addrs[0], ip_port("127.0.0.2", 0)}, 2, 0),
        COSYNC_ENOMEM);
    cosync__fault_countdown = -1;
    check_refused(&srv);
    return 0;
}

/* listen_addrs and local_addrs refuse bad arguments, changing nothing; a
 * failure leaves nothing open. */
TEST(listen_addrs_misuse)
{
    run_case(listen_addrs_misuse_main, NULL);
}

static int every_interface_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr a[2];
    cosync_io c[2];
    char buf[512], want[512];
    int fd6 = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool ipv6 = fd6 >= 0;
    if (ipv6)
        CHECK_EQ(close(fd6), 0);
    /* NULL and "" alike: 0.0.0.0 and ::, with no lookup (so no switch) */
    for (int empty = 0; empty < 2; empty++) {
        int before = atomic_load(&wildcards_bound);
        uint64_t switches_before = switches();
        v6only_at_bind = -1;
        int rc = cosync_server_listen_host(&srv, empty ? "" : NULL, 0, 0, 0);
        CHECK_EQ(switches(), switches_before);
        CHECK_OK(rc);
        if (!ipv6) { /* :: passed over */
            printf("  (:: skipped: no IPv6 here)\n");
            CHECK_EQ(cosync_server_local_addrs(&srv, NULL, 0), 1);
            CHECK_EQ(atomic_load(&wildcards_bound), before + 1);
            CHECK_OK(cosync_server_destroy(&srv));
            continue;
        }
        /* both asked for every interface (made loopback by this program's
         * bind), :: IPv6-only so that both could bind one port */
        CHECK_EQ(atomic_load(&wildcards_bound), before + 2);
        CHECK_EQ(v6only_at_bind, 1);
        CHECK_EQ(cosync_server_local_addrs(&srv, a, 2), 2);
        int port = cosync_addr_port(&a[0]);
        snprintf(want, sizeof want, "127.0.0.1:%d [::1]:%d", port, port);
        CHECK_STREQ(listening_on(&srv, buf, sizeof buf), want);
        reset_state(&srv);
        serve_call sc = serve_of(&srv, echo_handler);
        cosync_task s = spawn_serve(&sc);
        for (int i = 0; i < 2; i++) {
            CHECK_OK(cosync_tcp_connect(&c[i], &a[i], FOREVER));
            WAIT_FOR(h_started == i + 1);
            client_echo(&c[i], "every interface");
            client_finish(&c[i]);
        }
        CHECK_OK(cosync_server_close(&srv));
        join_ok(s);
        CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
        CHECK_OK(cosync_server_destroy(&srv));
    }
    return 0;
}

/* listen_host with no host (NULL or "") listens on every interface, as
 * asyncio's host None does: 0.0.0.0 and ::, on one port. This program's
 * bind puts them on loopback, and counts them. */
TEST(listen_host_with_no_host_is_every_interface)
{
    run_case(every_interface_main, NULL);
}

static int listen_fd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr a, bound;
    char path[128];

    /* a TCP socket the caller bound, not listening yet */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_GE(fd, 0);
    a = ip_port("127.0.0.1", 0);
    CHECK_EQ(bind(fd, &a.u.sa, a.len), 0);
    CHECK_OK(cosync_server_listen_fd(&srv, fd, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &bound));
    CHECK_GT(cosync_addr_port(&bound), 0);
    CHECK_EQ(fcntl(fd, F_GETFL) & O_NONBLOCK, O_NONBLOCK);
    serve_one_echo(&srv, "127.0.0.1:");
    CHECK(fd_closed(fd)); /* the server's close closed it */

    /* one that listens already */
    fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_GE(fd, 0);
    CHECK_EQ(bind(fd, &a.u.sa, a.len), 0);
    CHECK_EQ(listen(fd, 4), 0);
    CHECK_OK(cosync_server_listen_fd(&srv, fd, 16));
    serve_one_echo(&srv, "127.0.0.1:");

    /* a Unix-domain one: the close removes its socket file */
    sock_path(path, sizeof path, "adopted");
    CHECK_OK(cosync_addr_unix(&a, path));
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK_GE(fd, 0);
    CHECK_EQ(bind(fd, &a.u.sa, a.len), 0);
    CHECK_OK(cosync_server_listen_fd(&srv, fd, 0));
    cosync_io c;
    reset_state(&srv);
    serve_call sc = serve_of(&srv, echo_handler);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_tcp_connect(&c, &a, FOREVER));
    WAIT_FOR(h_started == 1);
    client_echo(&c, "over a path");
    client_finish(&c);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_wait_closed(&srv, FOREVER));
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path);

    /* refused: nothing changes, and the descriptor stays the caller's */
    cosync_server zero;
    memset(&zero, 0, sizeof zero);
    CHECK_ERR(cosync_server_listen_fd(NULL, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_fd(&zero, -1, 0), COSYNC_EINVAL);
    int udp = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    CHECK_GE(udp, 0);
    CHECK_ERR(cosync_server_listen_fd(&zero, udp, -1), COSYNC_EINVAL);
    CHECK_ERR(cosync_server_listen_fd(&zero, udp, 0), COSYNC_EINVAL);
    check_refused(&zero);
    CHECK(fd_open(udp));
    int pipefd[2];
    CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    CHECK_ERR(cosync_server_listen_fd(&srv, pipefd[0], 0), -ENOTSOCK);
    check_refused(&srv);
    CHECK(fd_open(pipefd[0]));
    CHECK_EQ(close(pipefd[0]), 0);
    CHECK_EQ(close(pipefd[1]), 0);
    CHECK_ERR(cosync_server_listen_fd(&srv, pipefd[0], 0), COSYNC_EBADF);
    check_refused(&srv);
    CHECK_EQ(close(udp), 0);
    return 0;
}

/* listen_fd serves a socket the caller made (start_server(sock=...)):
 * bound or listening already, TCP or Unix-domain (whose file the close
 * removes); it refuses what is not a stream socket and leaves it open. */
TEST(listen_fd_serves_a_socket_the_caller_made)
{
    run_case(listen_fd_main, NULL);
}

/* ------------------------------------------------------------------------
 * 11. Accepting pauses while descriptors run out
 * ---------------------------------------------------------------------- */

static struct rlimit saved_nofile;

/* Lower the soft RLIMIT_NOFILE to the lowest free descriptor: every new
 * descriptor fails with EMFILE until unlimit_fds(). */
static void limit_fds(void)
{
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
    int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_GE(fd, 0);
    CHECK_EQ(close(fd), 0);
    struct rlimit r = saved_nofile;
    r.rlim_cur = (rlim_t)fd;
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &r), 0);
    errno = 0;
    fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    CHECK_EQ(fd, -1);
    CHECK_EQ(errno, EMFILE);
}

static void unlimit_fds(void)
{
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &saved_nofile), 0);
}

/* How a case of emfile_main ends the pauses. */
enum emfile_end { EMFILE_SERVES, EMFILE_DEADLINE, EMFILE_CANCEL, EMFILE_TRY, EMFILE_CLOSE };

static int emfile_main(void *arg, void **result)
{
    enum emfile_end how = (enum emfile_end)(intptr_t)arg;
    (void)result;
    if (under_valgrind()) {
        /* valgrind keeps RLIMIT_NOFILE itself: it closes the descriptor
         * accept4 returned and says EMFILE, so the connection is lost */
        printf("  (skipped under valgrind: it emulates RLIMIT_NOFILE)\n");
        return 0;
    }
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "emfile");
    int64_t t0 = cosync_now();

    if (how == EMFILE_TRY) {
        /* deadline 0 cannot pause: the lack of descriptors comes back,
         * and the server stays open */
        CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
        limit_fds();
        int rc = cosync_server_serve(&srv, echo_handler, NULL, NULL, 0);
        unlimit_fds();
        CHECK_ERR(rc, COSYNC_EMFILE);
        CHECK_EQ(cosync_now(), t0);
        CHECK_STATS(&srv, 0, 0, 0, false, true);
        CHECK_ERR(cosync_server_serve(&srv, echo_handler, NULL, NULL, 0), COSYNC_EAGAIN);
        CHECK_EQ(h_started, 1);
        client_echo(&c, "now");
        client_finish(&c);
        CHECK_OK(cosync_server_close(&srv));
        CHECK_OK(cosync_server_destroy(&srv));
        CHECK_GONE(path); /* the close removed it */
        return 0;
    }

    serve_call sc = serve_of(&srv, echo_handler);
    if (how == EMFILE_DEADLINE)
        sc.deadline = t0 + COSYNC_MS(1500);
    cosync_task s = spawn_serve(&sc);
    CHECK_OK(cosync_yield()); /* it waits in its accept */
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    limit_fds();

    /* the accept at t0 fails: a pause until t0 + 1 s, no return, no spin */
    CHECK_OK(cosync_sleep_until(t0 + COSYNC_MS(500)));
    CHECK_EQ(h_started, 0);
    CHECK(!cosync_task_done(s));
    CHECK_STATS(&srv, 0, 0, 0, true, true);
    CHECK_EQ(armed_timers(), 1); /* the pause */
    if (how == EMFILE_CANCEL) {
        CHECK_OK(cosync_task_cancel(s));
        join_expect(s, COSYNC_ECANCELED);
        unlimit_fds();
        CHECK_EQ(sc.returned_at, t0 + COSYNC_MS(500));
        CHECK_STATS(&srv, 0, 0, 0, false, false);
        client_expect_gone(&c);
        CHECK_OK(cosync_server_destroy(&srv));
        CHECK_GONE(path); /* the close removed it */
        return 0;
    }
    if (how == EMFILE_CLOSE) {
        /* a close ends serve_forever at once in asyncio, paused accept or
         * not: serve returns 0 now, not when the pause would have ended,
         * and so does a wait_closed (no connection is left) */
        unlimit_fds();
        waiter w = waiter_of(&srv, FOREVER);
        cosync_task t = spawn_waiter(&w);
        CHECK_OK(cosync_yield());
        CHECK_OK(cosync_server_close(&srv));
        join_ok(s);
        CHECK_OK(sc.rc);
        CHECK_EQ(sc.returned_at, t0 + COSYNC_MS(500));
        join_ok(t);
        CHECK_EQ(w.returned_at, t0 + COSYNC_MS(500));
        CHECK_STATS(&srv, 0, 0, 0, false, false);
        client_expect_gone(&c);
        CHECK_OK(cosync_server_destroy(&srv));
        CHECK_GONE(path); /* the close removed it */
        return 0;
    }
    if (how == EMFILE_DEADLINE) {
        /* tries at t0 and t0 + 1 s; the deadline ends the second pause */
        join_expect(s, COSYNC_ETIMEDOUT);
        unlimit_fds();
        CHECK_EQ(sc.returned_at, t0 + COSYNC_MS(1500));
        CHECK_EQ(h_started, 0);
        CHECK_STATS(&srv, 0, 0, 0, false, false);
        client_expect_gone(&c);
        CHECK_OK(cosync_server_destroy(&srv));
        CHECK_GONE(path); /* the close removed it */
        return 0;
    }
    uint64_t before = switches();
    CHECK_OK(cosync_sleep_until(t0 + COSYNC_MS(2500))); /* tries at t0 + 1 s, + 2 s */
    /* two tries (a switch to the serve task and back each) and main's
     * wake: 6; a pause shorter than a second would take more */
    CHECK_LE(switches() - before, 8);
    CHECK_EQ(h_started, 0);
    CHECK(!cosync_task_done(s));
    CHECK_STATS(&srv, 0, 0, 0, true, true);
    CHECK_EQ(armed_timers(), 1);
    unlimit_fds();
    /* the next try, at t0 + 3 s, takes the connection */
    WAIT_FOR(h_started == 1);
    CHECK_EQ(logs[0].started_at, t0 + COSYNC_SEC(3));
    client_echo(&c, "at last");
    client_finish(&c);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 1, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* accept4 fails with EMFILE (RLIMIT_NOFILE lowered to the lowest free
 * descriptor): serve neither returns nor spins, it tries again every
 * second exactly, and serves the connection once a descriptor is free. */
TEST(accepting_pauses_a_second_while_descriptors_run_out)
{
    run_case(emfile_main, (void *)(intptr_t)EMFILE_SERVES);
}

/* The deadline ends a pause: ETIMEDOUT at exactly it, the server closed. */
TEST(a_deadline_ends_the_pause)
{
    run_case(emfile_main, (void *)(intptr_t)EMFILE_DEADLINE);
}

/* A cancel ends a pause: ECANCELED at once, the server closed. */
TEST(a_cancel_ends_the_pause)
{
    run_case(emfile_main, (void *)(intptr_t)EMFILE_CANCEL);
}

/* serve with deadline 0 cannot pause: it returns COSYNC_EMFILE, the
 * server open (the doc block says serve returns "an accept's error other
 * than the lack of descriptors or memory"). */
TEST(serve_with_deadline_0_returns_emfile)
{
    run_case(emfile_main, (void *)(intptr_t)EMFILE_TRY);
}

/* A close ends a pause: serve returns 0 at the close, as it does from its
 * accept. */
TEST(a_close_ends_the_pause_at_once)
{
    run_case(emfile_main, (void *)(intptr_t)EMFILE_CLOSE);
}

/* ------------------------------------------------------------------------
 * 12. Allocation failures
 * ---------------------------------------------------------------------- */

static int record_fault_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    char path[128];
    unix_case(&srv, &addr, path, sizeof path, "record-fault");
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER)); /* waiting when serve begins */
    serve_call sc = serve_of(&srv, echo_handler);
    sc.fault_k = 0; /* its first allocation: the connection's record */
    long failures = cosync__fault_failures;
    cosync_task s = spawn_serve(&sc);
    WAIT_FOR(h_started == 1);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(cosync__fault_countdown, -1);
    /* a pause of exactly a second, then the connection is served */
    CHECK_EQ(logs[0].started_at, sc.started_at + COSYNC_SEC(1));
    CHECK_STATS(&srv, 1, 1, 0, true, true);
    client_echo(&c, "after a second");
    client_finish(&c);
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_STATS(&srv, 0, 1, 0, false, false);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    return 0;
}

/* The connection record's allocation fails: accepting pauses a second
 * (the connection waits), then goes on. */
TEST(a_failed_record_allocation_pauses_accepting)
{
    run_case(record_fault_main, NULL);
}

/* A task that waits for the event `release`. */
static int filler(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&release, FOREVER);
}

/* One run of the fault scenario: two plain Unix-domain clients have sent
 * their bytes and their end before serve begins; the serve task sets the
 * fault countdown to @k just before its call. */
typedef struct fault_run {
    const cosync_task_opts *opts;
    long k;
    bool fill_records; /* take every free task record first */
    long hits;         /* points failed */
    int echoed;        /* clients that got their echo */
    uint64_t failed;   /* the server's count */
    int64_t took;      /* when the last handler started, after serve began */
} fault_run;

static int fault_main(void *arg, void **result)
{
    fault_run *fr = arg;
    (void)result;
    cosync_server srv;
    cosync_addr addr;
    char path[128], msg[2][16], got[64];
    int cl[2];
    unix_case(&srv, &addr, path, sizeof path, "faults");
    for (int i = 0; i < 2; i++) {
        cl[i] = raw_unix_client(&addr);
        snprintf(msg[i], sizeof msg[i], "ping %d", i);
        raw_send(cl[i], msg[i]);
        CHECK_EQ(shutdown(cl[i], SHUT_WR), 0);
    }
    serve_call sc = serve_of(&srv, yield_echo_handler);
    sc.opts = fr->opts;
    sc.fault_k = fr->k;
    int64_t t0 = cosync_now();
    long failures = cosync__fault_failures;
    cosync_task s = spawn_serve(&sc);
    int nfill = 0;
    if (fr->fill_records) {
        /* the next spawn must allocate a block of records */
        while (cosync_loop_current()->free_recs) {
            CHECK_OK(cosync_task_spawn(NULL, filler, NULL, NULL));
            nfill++;
        }
    }
    int i;
    for (i = 0; i < 1000; i++) {
        cosync_server_stats st = stats_of(&srv);
        if (st.accepted == 2 && st.connections == 0)
            break;
        CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    }
    CHECK_LT(i, 1000);
    fr->took = 0;
    for (int j = 0; j < h_started; j++)
        if (logs[j].started_at - t0 > fr->took)
            fr->took = logs[j].started_at - t0;
    cosync__fault_countdown = -1;
    fr->hits = cosync__fault_failures - failures;
    CHECK_LE(fr->hits, 1);
    CHECK_OK(cosync_event_set(&release));
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(sc.rc);
    fr->echoed = 0;
    for (int j = 0; j < 2; j++) {
        size_t n = raw_read_closed(cl[j], got, sizeof got);
        if (n) {
            CHECK_STREQ(got, msg[j]);
            fr->echoed++;
        }
        CHECK_EQ(close(cl[j]), 0);
    }
    cosync_server_stats st = stats_of(&srv);
    fr->failed = st.failed;
    CHECK_EQ(st.accepted, 2);
    CHECK_EQ(st.connections, 0);
    CHECK_EQ(st.failed + (uint64_t)fr->echoed, 2);
    CHECK_EQ(h_ended, fr->echoed);
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_GONE(path); /* the close removed it */
    if (nfill)
        CHECK_OK(cosync_yield()); /* the fillers end */
    return 0;
}

/* The handler task's spawn fails: its record block (every free record
 * taken first), or its stack (a stack class of its own, whose first stack
 * takes a new chunk: the stack's record, the chunk's record, the mapping).
 * That connection is closed (its client gets nothing) and counts as
 * failed; the next one is served; nothing leaks. */
TEST(a_failed_spawn_closes_that_connection_and_serving_goes_on)
{
    fault_run fr = {.k = 1, .fill_records = true};
    run_case(fault_main, &fr);
    CHECK_EQ(fr.hits, 1);
    CHECK_EQ(fr.echoed, 1);
    CHECK_EQ(fr.failed, 1);
    CHECK_EQ(fr.took, 0); /* no pause */
    cosync_task_opts big = {.stack_size = 256 << 10};
    for (long k = 1; k <= 3; k++) {
        fr = (fault_run){.opts = &big, .k = k};
        run_case(fault_main, &fr);
        CHECK_EQ(fr.hits, 1);
        CHECK_EQ(fr.echoed, 1);
        CHECK_EQ(fr.failed, 1);
        CHECK_EQ(fr.took, 0);
    }
}

/* Each allocation and registration of the server's path fails in turn
 * (the connection records, the handlers' stacks or dense blocks, the
 * listener's registration): whatever fails, serving goes on, every
 * connection is either served or closed and counted as failed, and no
 * block or descriptor is left. */
TEST(each_allocation_of_serving_failing_in_turn)
{
    cosync_task_opts big = {.stack_size = 512 << 10}, dense = {.dense = true};
    const cosync_task_opts *variants[] = {NULL, &big, &dense};
    for (int v = 0; v < 3; v++) {
        long k;
        int spawn_failures = 0, pauses = 0;
        for (k = 0; k < 64; k++) {
            fault_run fr = {.opts = variants[v], .k = k};
            run_case(fault_main, &fr);
            if (!fr.hits)
                break;
            spawn_failures += fr.failed > 0;
            pauses += fr.took == COSYNC_SEC(1);
            if (k == 0) { /* the first connection's record: a pause */
                CHECK_EQ(fr.echoed, 2);
                CHECK_EQ(fr.took, COSYNC_SEC(1));
            }
        }
        CHECK_LT(k, 64);
        printf("  (handler opts %d: %ld points failed in turn, %d spawns failed, %d pauses)\n", v,
               k, spawn_failures, pauses);
        CHECK_GE(pauses, 2); /* both records, at least */
        if (variants[v])     /* a stack (and a dense block) of their own */
            CHECK_GE(spawn_failures, 1);
    }
}

/* ------------------------------------------------------------------------
 * 13. The loop's close
 * ---------------------------------------------------------------------- */

#define NLC 3
static cosync_server lc_srv;
static cosync_io lc_cl[NLC];
static serve_call lc_sc;
static waiter lc_w;

static bool lc_several; /* the server listens on 127.0.0.1 and 127.0.0.2 */

static int loop_close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_addr addr[2] = {ip_port("127.0.0.1", 0), ip_port("127.0.0.2", 0)};
    reset_state(&lc_srv);
    CHECK_OK(cosync_server_listen_addrs(&lc_srv, addr, lc_several ? 2 : 1, 0));
    CHECK_EQ(cosync_server_local_addrs(&lc_srv, addr, 2), lc_several ? 2 : 1);
    lc_sc = serve_of(&lc_srv, echo_handler);
    CHECK_OK(cosync_task_spawn(NULL, serve_task, &lc_sc, NULL));
    for (int i = 0; i < NLC; i++) {
        CHECK_OK(cosync_tcp_connect(&lc_cl[i], &addr[lc_several ? i % 2 : 0], FOREVER));
        WAIT_FOR(h_started == i + 1);
    }
    client_echo(&lc_cl[1], "mid-conversation");
    lc_w = waiter_of(&lc_srv, FOREVER);
    CHECK_OK(cosync_task_spawn(NULL, waiter_task, &lc_w, NULL));
    CHECK_OK(cosync_yield());
    return 0; /* the close cancels the serve task, the handlers, the waiter */
}

/* cosync_run's close with a server serving and handlers mid-connection:
 * the serve task is cancelled (and closes the server), the handlers are
 * cancelled and their connections closed; afterwards the server has no
 * connection, destroy returns 0, nothing is left open or allocated. With
 * @several listeners, the serve task waits on their poller. */
static void loop_close_case(bool eager, bool several)
{
    lc_several = several;
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    if (eager)
        CHECK_OK(cosync_run_with(loop_close_main, NULL, &(cosync_loop_opts){.eager_tasks = true}));
    else
        CHECK_OK(cosync_run(loop_close_main, NULL));
    CHECK_ERR(lc_sc.rc, COSYNC_ECANCELED);
    CHECK_ERR(lc_w.rc, COSYNC_ECANCELED);
    CHECK_STATS(&lc_srv, 0, NLC, 0, false, false);
    CHECK_EQ(h_ended, NLC);
    for (int i = 0; i < NLC; i++)
        CHECK_ERR(logs[i].status, COSYNC_ECANCELED);
    CHECK_OK(cosync_server_destroy(&lc_srv));
    for (int i = 0; i < NLC; i++) {
        char b[8];
        CHECK_EQ(recv(cosync_io_fd(&lc_cl[i]), b, sizeof b, MSG_DONTWAIT), 0);
        CHECK_OK(cosync_io_close(&lc_cl[i]));
    }
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

TEST(the_loop_close_cancels_serving_and_the_handlers)
{
    loop_close_case(false, false);
    loop_close_case(false, true);
}

TEST(the_loop_close_cancels_serving_and_the_handlers_on_an_eager_loop)
{
    loop_close_case(true, false);
    loop_close_case(true, true);
}

/* ------------------------------------------------------------------------
 * A server belongs to the loop of its tasks
 * ---------------------------------------------------------------------- */

/* Runs @fn(@arg) as the main task of @loop (whose other tasks stay as
 * they are when it returns) and checks that it returned 0. */
static void run_on(cosync_loop *loop, cosync_task_fn fn, void *arg)
{
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, NULL));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
}

static cosync_server xl_srv;
static cosync_io xl_client;
static cosync_addr xl_addr;
static char xl_path[128];
static serve_call xl_sc;
static cosync_task xl_serve;

/* Loop A, first phase: a serve task and a handler, left waiting in A. */
static int xl_a_serving(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state(&xl_srv);
    sock_path(xl_path, sizeof xl_path, "other-loop");
    listen_unix(&xl_srv, &xl_addr, xl_path);
    xl_sc = serve_of(&xl_srv, release_handler);
    xl_serve = spawn_serve(&xl_sc);
    CHECK_OK(cosync_tcp_connect(&xl_client, &xl_addr, FOREVER));
    WAIT_FOR(h_started == 1);
    return 0;
}

/* Loop B: what would run or wait for the server here: EPERM (EBUSY for a
 * serve, as another task serves it; EAGAIN for deadline 0, which does
 * not wait). */
static int xl_b_refused(void *arg, void **result)
{
    size_t conns = (size_t)(uintptr_t)arg;
    (void)result;
    cosync_addr a;
    bool serving = stats_of(&xl_srv).serving;
    CHECK_ERR(cosync_server_serve(&xl_srv, unused_handler, NULL, NULL, FOREVER),
              serving ? COSYNC_EBUSY : COSYNC_EPERM);
    CHECK_ERR(cosync_server_serve(&xl_srv, unused_handler, NULL, NULL, 0),
              serving ? COSYNC_EBUSY : COSYNC_EPERM);
    CHECK_ERR(cosync_server_wait_closed(&xl_srv, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_server_wait_closed(&xl_srv, cosync_now() + COSYNC_SEC(1)), COSYNC_EPERM);
    CHECK_ERR(cosync_server_wait_closed(&xl_srv, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_server_destroy(&xl_srv), COSYNC_EBUSY);
    CHECK_OK(cosync_server_local_addr(&xl_srv, &a));
    CHECK_EQ(stats_of(&xl_srv).connections, conns);
    return 0;
}

/* Loop A: the handler ends (the serve task, if @arg, goes on). */
static int xl_a_handler_ends(void *arg, void **result)
{
    bool serving = arg != NULL;
    (void)result;
    CHECK_OK(cosync_event_set(&release));
    WAIT_FOR(h_ended == 1);
    CHECK_OK(logs[0].status);
    client_expect_eof(&xl_client);
    CHECK_OK(cosync_io_close(&xl_client));
    CHECK_STATS(&xl_srv, 0, 1, 0, serving, true);
    return 0;
}

/* Loop A: the serve task ends with the close; a serve with deadline 0
 * leaves a handler (of a new listen) in A. */
static int xl_a_again(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_server_close(&xl_srv));
    join_ok(xl_serve);
    CHECK_OK(xl_sc.rc);
    CHECK_OK(cosync_server_wait_closed(&xl_srv, FOREVER));
    CHECK_OK(cosync_server_destroy(&xl_srv));
    CHECK_GONE(xl_path); /* the close removed it */
    reset_state(&xl_srv);
    listen_unix(&xl_srv, &xl_addr, xl_path);
    CHECK_OK(cosync_tcp_connect(&xl_client, &xl_addr, FOREVER));
    CHECK_ERR(cosync_server_serve(&xl_srv, release_handler, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(h_started, 1);
    CHECK_STATS(&xl_srv, 1, 1, 0, false, true);
    return 0;
}

/* Loop B, once none of the server's tasks lives: it may wait for it. */
static int xl_b_free(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t dl = cosync_now() + COSYNC_SEC(1);
    CHECK_ERR(cosync_server_wait_closed(&xl_srv, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    return 0;
}

/* Loop A: the end. */
static int xl_a_end(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_server_close(&xl_srv));
    CHECK_OK(cosync_server_wait_closed(&xl_srv, FOREVER));
    CHECK_OK(cosync_server_destroy(&xl_srv));
    CHECK_GONE(xl_path); /* the close removed it */
    return 0;
}

/* A server belongs to the loop of its tasks while any of them lives (its
 * serve task, or a handler): a task of another loop may not serve it or
 * wait for it (COSYNC_EPERM; EAGAIN for deadline 0, which does not wait),
 * also once the handlers have ended while the serve task lives; once none
 * lives, it may wait for it. */
TEST(a_server_belongs_to_the_loop_of_its_tasks)
{
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    cosync_loop *a = new_loop(), *b = new_loop();
    run_on(a, xl_a_serving, NULL);
    run_on(b, xl_b_refused, (void *)(uintptr_t)1);
    run_on(a, xl_a_handler_ends, "serving");
    run_on(b, xl_b_refused, (void *)(uintptr_t)0);
    run_on(a, xl_a_again, NULL);
    run_on(b, xl_b_refused, (void *)(uintptr_t)1);
    run_on(a, xl_a_handler_ends, NULL);
    run_on(b, xl_b_free, NULL);
    run_on(a, xl_a_end, NULL);
    end_loop(b);
    end_loop(a);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

static int xc_serve_rc;
static int xc_close_rc;

static int xc_serve(void *arg, void **result)
{
    (void)arg, (void)result;
    xc_serve_rc = cosync_server_serve(&xl_srv, unused_handler, NULL, NULL, FOREVER);
    return 0;
}

/* Loop A: a serve task left in its accept (the listener registered in A;
 * with @arg, two listeners and their poller). */
static int xc_a_start(void *arg, void **result)
{
    (void)result;
    cosync_addr any[2];
    reset_state(&xl_srv);
    CHECK_OK(cosync_addr_ip(&any[0], "127.0.0.1", 0));
    CHECK_OK(cosync_addr_ip(&any[1], "127.0.0.2", 0));
    CHECK_OK(cosync_server_listen_addrs(&xl_srv, any, arg ? 2 : 1, 0));
    CHECK_EQ(cosync_server_local_addrs(&xl_srv, NULL, 0), arg ? 2 : 1);
    CHECK_OK(cosync_server_local_addr(&xl_srv, &xl_addr));
    xc_serve_rc = 12345;
    CHECK_OK(cosync_task_spawn(NULL, xc_serve, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_STATS(&xl_srv, 0, 0, 0, true, true);
    return 0;
}

/* Loop B: close it. */
static int xc_b(void *arg, void **result)
{
    (void)arg, (void)result;
    xc_close_rc = cosync_server_close(&xl_srv);
    return 0;
}

/* Loop A: close it (when B could not), and see serve return. */
static int xc_a_end(void *arg, void **result)
{
    (void)arg, (void)result;
    if (xc_close_rc == COSYNC_EPERM)
        CHECK_OK(cosync_server_close(&xl_srv));
    CHECK_OK(cosync_yield());
    CHECK_OK(xc_serve_rc);
    CHECK_OK(cosync_server_destroy(&xl_srv));
    return 0;
}

/* A close from a task of another loop than the one that serves is
 * refused (COSYNC_EPERM, as cosync_io_close refuses a handle of another
 * loop), and nothing changes: not a close that says 0, marks the server
 * closed, and leaves its listening socket open (nothing would ever close
 * it) with the serve task blocked in its accept. The same with two
 * listeners, the serve task waiting on their poller. */
TEST(a_close_from_another_loop_refuses_or_closes)
{
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    for (uintptr_t several = 0; several < 2; several++) {
        cosync_loop *a = new_loop(), *b = new_loop();
        run_on(a, xc_a_start, (void *)several);
        run_on(b, xc_b, NULL);
        /* refused, as the doc block says */
        CHECK_EQ(xc_close_rc, COSYNC_EPERM);
        CHECK_STATS(&xl_srv, 0, 0, 0, true, true); /* nothing changed */
        CHECK_EQ(cosync_server_local_addrs(&xl_srv, NULL, 0), several ? 2 : 1);
        run_on(a, xc_a_end, NULL);
        end_loop(b);
        end_loop(a);
    }
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

/* ------------------------------------------------------------------------
 * 14. The other cases on an eager loop
 * ---------------------------------------------------------------------- */

/* close, wait_closed, close_clients, serve's deadlines and deadline 0,
 * misuse, a Unix-domain server and the lack of descriptors, on a loop that
 * starts every task eagerly (main's spawns of the serve task, waiters and
 * clients run at once). */
TEST(the_server_on_an_eager_loop)
{
    eager_loop = true;
    run_case(close_other_main, NULL);
    run_case(close_handler_main, NULL);
    run_case(close_first_step_main, NULL);
    run_case(wait_closed_main, NULL);
    run_case(wait_closed_eager_main, NULL);
    run_case(close_clients_main, NULL);
    run_case(serve_deadline_main, NULL);
    run_case(serve_ends_handlers_go_on_main, NULL);
    run_case(serve_ends_handlers_go_on_main, "cancel");
    run_case(serve_try_main, NULL);
    run_case(busy_main, NULL);
    run_case(unix_main, NULL);
    run_case(emfile_main, (void *)(intptr_t)EMFILE_SERVES);
    run_case(emfile_main, (void *)(intptr_t)EMFILE_DEADLINE);
    run_case(emfile_main, (void *)(intptr_t)EMFILE_CANCEL);
    eager_loop = false;
}

/* ------------------------------------------------------------------------
 * A handler that ends in its first step
 * ---------------------------------------------------------------------- */

static int at_once_status;

/* Returns at once, without a suspension: the status at_once_status says. */
static int at_once_handler(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    int i = note_start(conn, peer, arg);
    int st = at_once_status;
    note_end(i, st);
    return st;
}

static int at_once_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    cosync_io c;
    reset_state(&srv);
    listen_tcp(&srv, &addr);
    serve_call sc = serve_of(&srv, at_once_handler);
    cosync_task s = spawn_serve(&sc);
    static const int statuses[] = {0, -EIO, COSYNC_ECANCELED, 0};
    static const int failed[] = {0, 1, 1, 1};
    for (int k = 0; k < 4; k++) {
        at_once_status = statuses[k];
        CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
        WAIT_FOR(h_ended == k + 1);
        CHECK_EQ(logs[k].status, statuses[k]);
        client_expect_eof(&c);
        CHECK_OK(cosync_io_close(&c));
        CHECK_STATS(&srv, 0, (uint64_t)k + 1, failed[k], true, true);
    }
    CHECK_OK(cosync_server_close(&srv));
    join_ok(s);
    CHECK_OK(cosync_server_destroy(&srv));
    return 0;
}

/* A handler that returns without ever suspending (its whole run is the
 * eager first step inside the accept loop's spawn): the connection is
 * closed, the status counted, the task collected, nothing read after the
 * connection's record is freed. */
TEST(a_handler_that_returns_at_once)
{
    run_case(at_once_main, NULL);
}

/* ------------------------------------------------------------------------ */

static int tests_failed, ncases;
static const char *only; /* argv[1]: run the cases whose name has it */

/* Run @fn in a child process, so that a failed check (abort) ends that
 * case alone; the parent reports it and goes on. */
static void run_isolated(void (*fn)(void), const char *name)
{
    if (only && !strstr(name, only))
        return;
    printf("[ RUN ] %s\n", name);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    CHECK_GE(pid, 0);
    if (pid == 0) {
        snprintf(casedir, sizeof casedir, "%s/case-%d", tmpdir, ++ncases);
        CHECK_EQ(mkdir(casedir, 0700), 0);
        CHECKPOINT_RESET();
        fn();
        CHECK_EQ(rmdir(casedir), 0); /* every socket file removed */
        fflush(stdout);
        exit(0);
    }
    ncases++;
    int st = 0;
    CHECK_EQ(waitpid(pid, &st, 0), pid);
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0) {
        printf("[  OK ] %s\n", name);
    } else {
        if (WIFSIGNALED(st))
            printf("[FAIL ] %s (signal %d)\n", name, WTERMSIG(st));
        else
            printf("[FAIL ] %s (exit status %d)\n", name, WEXITSTATUS(st));
        tests_failed++;
    }
    fflush(stdout);
}

#define RUN_CASE(name) run_isolated(name, #name)

/* Remove what failed cases left in tmpdir (their directories), then
 * tmpdir. */
static void remove_tmpdir(void)
{
    DIR *d = opendir(tmpdir);
    CHECK_NOTNULL(d);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        char dir[sizeof tmpdir + 256], path[sizeof tmpdir + 512];
        snprintf(dir, sizeof dir, "%s/%s", tmpdir, e->d_name);
        DIR *cd = opendir(dir);
        CHECK_NOTNULL(cd);
        struct dirent *f;
        while ((f = readdir(cd)) != NULL) {
            if (strcmp(f->d_name, ".") == 0 || strcmp(f->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", dir, f->d_name);
            CHECK_EQ(unlink(path), 0);
        }
        closedir(cd);
        CHECK_EQ(rmdir(dir), 0);
    }
    closedir(d);
    CHECK_EQ(rmdir(tmpdir), 0);
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    /* SIGPIPE's default action (death), whatever the parent left: a send
     * that raised it would end the case */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    CHECK_EQ(sigaction(SIGPIPE, &dfl, NULL), 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cosync-test-server-XXXXXX");
    CHECK_NOTNULL(mkdtemp(tmpdir));
    int fds = count_fds();

    RUN_CASE(close_then_wait_closed_then_destroy);
    RUN_CASE(echo_over_tcp);
    RUN_CASE(echo_over_tcp_with_a_name_a_stack_size_and_a_local);
    RUN_CASE(echo_over_tcp_an_empty_name_is_the_peer);
    RUN_CASE(echo_over_tcp_with_dense_handlers);
    RUN_CASE(echo_over_tcp_dense_handlers_of_a_dense_serve_task);
    RUN_CASE(echo_over_tcp_on_an_eager_loop);
    RUN_CASE(a_handler_starts_eagerly_before_the_next_accept);
    RUN_CASE(a_handler_starts_eagerly_whatever_the_opts);
    RUN_CASE(the_server_closes_the_connection_and_counts_failed_handlers);
    RUN_CASE(a_handler_that_closed_its_connection_is_not_closed_twice);
    RUN_CASE(close_from_another_task);
    RUN_CASE(close_from_a_handler);
    RUN_CASE(close_from_a_handler_first_step);
    RUN_CASE(wait_closed_waits_for_the_close_and_the_last_handler);
    RUN_CASE(a_handler_cannot_wait_for_its_own_server);
    RUN_CASE(outside_a_task);
    RUN_CASE(a_wait_for_a_server_nobody_closes_is_reported_as_a_deadlock);
    RUN_CASE(close_clients_cancels_every_handler);
    RUN_CASE(serve_times_out_or_is_cancelled_and_closes_the_server);
    RUN_CASE(serve_times_out_while_a_handler_runs);
    RUN_CASE(serve_is_cancelled_while_a_handler_runs);
    RUN_CASE(serve_with_deadline_0);
    RUN_CASE(null_arguments_and_zero_filled_servers_are_refused);
    RUN_CASE(a_busy_server_refuses_a_second_serve_and_its_destroy);
    RUN_CASE(a_listen_on_an_address_in_use_is_refused);
    RUN_CASE(a_unix_domain_server);
    RUN_CASE(the_close_removes_only_its_own_socket_file);
    RUN_CASE(listen_host_numeric_localhost_and_ipv6);
    RUN_CASE(listen_host_outside_a_task);
    RUN_CASE(listen_host_binds_every_address);
    RUN_CASE(listen_addrs_serves_every_address);
    RUN_CASE(listeners_take_turns);
    RUN_CASE(listen_addrs_on_both_families);
    RUN_CASE(a_port_taken_on_another_address_is_tried_again);
    RUN_CASE(an_unsupported_family_is_passed_over);
    RUN_CASE(listen_addrs_misuse);
    RUN_CASE(listen_fd_serves_a_socket_the_caller_made);
    RUN_CASE(listen_host_with_no_host_is_every_interface);
    RUN_CASE(accepting_pauses_a_second_while_descriptors_run_out);
    RUN_CASE(a_deadline_ends_the_pause);
    RUN_CASE(a_cancel_ends_the_pause);
    RUN_CASE(serve_with_deadline_0_returns_emfile);
    RUN_CASE(a_close_ends_the_pause_at_once);
    RUN_CASE(a_failed_record_allocation_pauses_accepting);
    RUN_CASE(a_failed_spawn_closes_that_connection_and_serving_goes_on);
    RUN_CASE(each_allocation_of_serving_failing_in_turn);
    RUN_CASE(the_loop_close_cancels_serving_and_the_handlers);
    RUN_CASE(the_loop_close_cancels_serving_and_the_handlers_on_an_eager_loop);
    RUN_CASE(the_server_on_an_eager_loop);
    RUN_CASE(a_server_belongs_to_the_loop_of_its_tasks);
    RUN_CASE(a_close_from_another_loop_refuses_or_closes);
    RUN_CASE(a_handler_that_returns_at_once);

    CHECK_EQ(count_fds(), fds);
    remove_tmpdir();
    if (tests_failed) {
        printf("%d case(s) failed\n", tests_failed);
        return 1;
    }
    return 0;
}
