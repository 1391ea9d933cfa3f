/*
 * test_curl.c - the libcurl driver (cosync/curl.h): tasks perform libcurl
 * easy handles while the loop's epoll watches their sockets and its timer
 * heap keeps libcurl's timeout.
 *
 * The HTTP server is the test's own, written with cosync's sockets in the
 * same loop, on 127.0.0.1 and a port the kernel picks (nothing leaves the
 * machine): one handler task per connection, keep-alive, and paths that
 * answer ("/hello", "/big"), never answer ("/slow": the handler waits for
 * the end of the test), hang up ("/close"), or answer when the test opens
 * a gate ("/gate"). The fault-injection and deadlock cases use a second
 * server, on a thread of its own with plain blocking sockets, because
 * there the loop must hold nothing but the transfer: the fault countdown
 * counts every point of the loop (a handler's first wait registers its
 * socket, one such point), and a deadlock report needs no other waiter.
 *
 * Loops run on the real clock: libcurl's timeouts are real time. Expected
 * successes wait with no deadline; finite deadlines (30 ms) appear only
 * where the expected outcome is the timeout, and no time is measured.
 *
 * ctest-labels: threads (its servers and loops on other threads run under TSan too)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem, accept4, pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "core.h" /* the loop's count of I/O waiters */
#include "fault.h"
#include "harness.h"
#include "cosync/curl.h"

/* ------------------------------------------------------------------------
 * Bodies and easy handles
 * ---------------------------------------------------------------------- */

#define BIG_LEN ((size_t)1 << 20)
static unsigned char big_body[BIG_LEN];

static unsigned char big_byte(size_t i)
{
    return (unsigned char)((i * 131u) ^ (i >> 10));
}

/* What a write callback received. */
typedef struct body {
    unsigned char *p;
    size_t len, cap;
} body;

static void body_reset(body *b)
{
    free(b->p);
    *b = (body){0};
}

static void body_append(body *b, const void *data, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        b->p = realloc(b->p, cap);
        CHECK_NOTNULL(b->p);
        b->cap = cap;
    }
    memcpy(b->p + b->len, data, n);
    b->len += n;
}

/* CURLOPT_WRITEFUNCTION: collect into the body at @ud. */
static size_t collect(char *data, size_t size, size_t n, void *ud)
{
    body_append(ud, data, size * n);
    return size * n;
}

static void check_body_is(const body *b, const char *text)
{
    CHECK_EQ(b->len, strlen(text));
    CHECK(memcmp(b->p, text, b->len) == 0);
}

static void check_body_is_big(const body *b)
{
    CHECK_EQ(b->len, BIG_LEN);
    for (size_t i = 0; i < BIG_LEN; i++)
        if (b->p[i] != big_byte(i))
            CHECK_EQ(b->p[i], big_byte(i)); /* prints the first byte that differs */
}

#define SETOPT(easy, opt, value) CHECK_EQ(curl_easy_setopt(easy, opt, value), CURLE_OK)

static void set_url(CURL *easy, uint16_t port, const char *path)
{
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%u%s", (unsigned)port, path);
    SETOPT(easy, CURLOPT_URL, url);
}

/* An easy handle for http://127.0.0.1:@port@path whose body goes to @b. */
static CURL *new_easy(uint16_t port, const char *path, body *b)
{
    CURL *easy = curl_easy_init();
    CHECK_NOTNULL(easy);
    set_url(easy, port, path);
    SETOPT(easy, CURLOPT_PROXY, ""); /* never a proxy of the environment */
    SETOPT(easy, CURLOPT_NOSIGNAL, 1L);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, collect);
    SETOPT(easy, CURLOPT_WRITEDATA, b);
    return easy;
}

static long response_code(CURL *easy)
{
    long code = -1;
    CHECK_EQ(curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &code), CURLE_OK);
    return code;
}

/* Perform @easy with no deadline and check it got "hello" with 200. */
static void perform_hello(CURL *easy, body *b)
{
    body_reset(b);
    CURLcode code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_OK);
    CHECK_EQ(response_code(easy), 200);
    check_body_is(b, "hello");
}

/* A transfer performed by a task of its own. */
typedef struct job {
    CURL *easy;
    body b;
    int64_t deadline;
    int rc;
    CURLcode code;
    bool big; /* its path is /big (else /hello) */
} job;

static int perform_task(void *arg, void **result)
{
    (void)result;
    job *j = arg;
    j->rc = 12345;
    j->code = CURL_LAST;
    j->rc = cosync_curl_perform(j->easy, &j->code, j->deadline);
    return 0;
}

static cosync_task spawn_perform(job *j, const char *name)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, perform_task, j, &(cosync_task_opts){.name = name}));
    return t;
}

/* Run @fn(@arg) as the main task of a fresh loop on the real clock; check
 * its status 0, that every task ended and no descriptor stayed open. */
static void run_real(cosync_task_fn fn, void *arg)
{
    int fds = count_fds();
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, NULL));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 0);
    CHECK_EQ(st.tasks_records, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------
 * The server, in the loop
 * ---------------------------------------------------------------------- */

#define MAX_CONNS 512

typedef struct server {
    cosync_io listener;
    uint16_t port;
    cosync_task acceptor;
    cosync_task handlers[MAX_CONNS]; /* detached: stale once finished */
    int connections;                 /* accepted */
    int requests;                    /* read in full */
    int live;                        /* handlers not finished */
    cosync_event idle;               /* set when live drops to 0 */
    cosync_event release;            /* the /slow handlers wait for it */
    cosync_sem slow_seen;            /* a permit per /slow request read */
    cosync_event gate;               /* the /gate handlers wait for it, then answer */
    cosync_sem gate_seen;            /* a permit per /gate request read */
} server;

static server srv;

typedef struct conn {
    server *s;
    cosync_io io;
} conn;

static int send_response(cosync_io *io, const void *data, size_t len)
{
    char head[128];
    int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n", len);
    int rc = cosync_sock_sendall(io, head, (size_t)n, NULL, COSYNC_FOREVER);
    return rc ? rc : cosync_sock_sendall(io, data, len, NULL, COSYNC_FOREVER);
}

/* One connection: requests up to "\r\n\r\n", each answered by its path,
 * until the client hangs up, a path says to stop, or the task is
 * cancelled. */
static int handler(void *arg, void **result)
{
    (void)result;
    conn *c = arg;
    server *s = c->s;
    char buf[2048];
    size_t len = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            if (len == sizeof buf - 1)
                goto out;
            ssize_t n = cosync_sock_recv(&c->io, buf + len, sizeof buf - 1 - len, COSYNC_FOREVER);
            if (n <= 0)
                goto out; /* the client hung up, or the server stops */
            len += (size_t)n;
        }
        size_t used = (size_t)(end + 4 - buf);
        s->requests++;
        *end = '\0';
        char path[64] = "";
        CHECK_EQ(sscanf(buf, "GET %63s ", path), 1);
        int rc = 0;
        if (strcmp(path, "/hello") == 0) {
            rc = send_response(&c->io, "hello", 5);
        } else if (strcmp(path, "/big") == 0) {
            rc = send_response(&c->io, big_body, BIG_LEN);
        } else if (strcmp(path, "/slow") == 0) {
            CHECK_OK(cosync_sem_release(&s->slow_seen));
            (void)cosync_event_wait(&s->release, COSYNC_FOREVER);
            goto out; /* never answered */
        } else if (strcmp(path, "/close") == 0) {
            goto out;
        } else if (strcmp(path, "/gate") == 0) {
            CHECK_OK(cosync_sem_release(&s->gate_seen));
            rc = cosync_event_wait(&s->gate, COSYNC_FOREVER);
            if (rc == 0)
                rc = send_response(&c->io, "gated", 5);
        } else {
            CHECK(!"an unknown path");
        }
        if (rc)
            goto out;
        memmove(buf, buf + used, len - used);
        len -= used;
    }
out:
    CHECK_OK(cosync_io_close(&c->io));
    free(c);
    if (--s->live == 0)
        CHECK_OK(cosync_event_set(&s->idle));
    return 0;
}

static int acceptor(void *arg, void **result)
{
    (void)result;
    server *s = arg;
    for (;;) {
        conn *c = calloc(1, sizeof *c);
        CHECK_NOTNULL(c);
        c->s = s;
        int rc = cosync_sock_accept(&s->listener, &c->io, NULL, COSYNC_FOREVER);
        if (rc) {
            CHECK_ERR(rc, COSYNC_ECANCELED);
            free(c);
            break;
        }
        int one = 1;
        CHECK_EQ(setsockopt(cosync_io_fd(&c->io), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
        CHECK_LT(s->connections, MAX_CONNS);
        cosync_task *h = &s->handlers[s->connections++];
        s->live++;
        CHECK_OK(cosync_task_spawn(h, handler, c, &(cosync_task_opts){.name = "handler"}));
        CHECK_OK(cosync_task_detach(*h));
    }
    CHECK_OK(cosync_io_close(&s->listener));
    return 0;
}

/* Start the server @s on 127.0.0.1, a free port (from a task). */
static void server_start(server *s)
{
    memset(s, 0, sizeof *s);
    cosync_event_init(&s->idle);
    cosync_event_init(&s->release);
    cosync_event_init(&s->gate);
    CHECK_OK(cosync_sem_init(&s->slow_seen, 0));
    CHECK_OK(cosync_sem_init(&s->gate_seen, 0));
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_listen(&s->listener, &a, 0));
    CHECK_OK(cosync_sock_local_addr(&s->listener, &a));
    int port = cosync_addr_port(&a);
    CHECK_GT(port, 0);
    s->port = (uint16_t)port;
    CHECK_OK(cosync_task_spawn(&s->acceptor, acceptor, s, &(cosync_task_opts){.name = "acceptor"}));
}

/* Stop @s: answer nothing more, end every handler, wait for them. */
static void server_stop(server *s)
{
    CHECK_OK(cosync_event_set(&s->release));
    CHECK_OK(cosync_task_cancel(s->acceptor));
    CHECK_OK(cosync_task_join(s->acceptor, NULL, NULL, COSYNC_FOREVER));
    for (int i = 0; i < s->connections; i++) {
        int rc = cosync_task_cancel(s->handlers[i]);
        CHECK(rc == 0 || rc == COSYNC_ESRCH);
    }
    while (s->live > 0) {
        CHECK_OK(cosync_event_clear(&s->idle));
        CHECK_OK(cosync_event_wait(&s->idle, COSYNC_FOREVER));
    }
}

/* ------------------------------------------------------------------------
 * The server on a thread of its own (plain blocking sockets): "/hello",
 * and "/wait", answered as /hello once `go` is posted, and 20 ms later
 * (the loop is then sure to sit in epoll_wait). One connection at a time.
 * ---------------------------------------------------------------------- */

typedef struct tserver {
    int lfd;
    int stop[2]; /* a pipe: written to stop */
    uint16_t port;
    pthread_t th;
    atomic_int requests;
    sem_t go; /* "/wait" waits for it */
} tserver;

/* Wait until @fd is readable: false if the server is to stop. */
static bool tserver_poll(tserver *s, int fd)
{
    for (;;) {
        struct pollfd p[2] = {{.fd = fd, .events = POLLIN}, {.fd = s->stop[0], .events = POLLIN}};
        int n = poll(p, 2, -1);
        if (n < 0 && errno == EINTR)
            continue;
        CHECK_GT(n, 0);
        return !p[1].revents;
    }
}

static bool send_fully(int fd, const char *p, size_t len)
{
    while (len) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

static void tserver_serve(tserver *s, int fd)
{
    char buf[2048];
    size_t len = 0;
    for (;;) {
        char *end;
        while (!(end = memmem(buf, len, "\r\n\r\n", 4))) {
            if (len == sizeof buf - 1 || !tserver_poll(s, fd))
                return;
            ssize_t n = recv(fd, buf + len, sizeof buf - 1 - len, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0)
                return;
            len += (size_t)n;
        }
        size_t used = (size_t)(end + 4 - buf);
        *end = '\0';
        atomic_fetch_add(&s->requests, 1);
        if (strncmp(buf, "GET /wait ", 10) == 0) {
            sem_wait_ok(&s->go);
            nanosleep(&(struct timespec){.tv_nsec = 20 * 1000 * 1000}, NULL);
        } else {
            CHECK(strncmp(buf, "GET /hello ", 11) == 0);
        }
        static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello";
        if (!send_fully(fd, answer, sizeof answer - 1))
            return;
        memmove(buf, buf + used, len - used);
        len -= used;
    }
}

static void *tserver_main(void *arg)
{
    tserver *s = arg;
    while (tserver_poll(s, s->lfd)) {
        int fd = accept4(s->lfd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) {
            CHECK(errno == EAGAIN || errno == ECONNABORTED || errno == EINTR);
            continue;
        }
        int one = 1;
        CHECK_EQ(setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one), 0);
        tserver_serve(s, fd);
        CHECK_EQ(close(fd), 0);
    }
    return NULL;
}

/* Wait until this process has @fds descriptors open again: the server's
 * thread closes its side of a connection once it has seen the client's
 * close (a count still off after 10 s fails). */
static void wait_fds(int fds)
{
    for (int i = 0; i < 10000 && count_fds() != fds; i++)
        usleep(1000);
    CHECK_EQ(count_fds(), fds);
}

static void tserver_start(tserver *s)
{
    memset(s, 0, sizeof *s);
    atomic_init(&s->requests, 0);
    sem_init0(&s->go);
    s->lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    CHECK(s->lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(s->lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(s->lfd, 64), 0);
    socklen_t alen = sizeof a;
    CHECK_EQ(getsockname(s->lfd, (struct sockaddr *)&a, &alen), 0);
    s->port = ntohs(a.sin_port);
    CHECK_EQ(pipe2(s->stop, O_CLOEXEC), 0);
    CHECK_EQ(pthread_create(&s->th, NULL, tserver_main, s), 0);
}

static void tserver_stop(tserver *s)
{
    CHECK_EQ(write(s->stop[1], "x", 1), 1);
    CHECK_EQ(pthread_join(s->th, NULL), 0);
    CHECK_EQ(close(s->lfd), 0);
    CHECK_EQ(close(s->stop[0]), 0);
    CHECK_EQ(close(s->stop[1]), 0);
    CHECK_EQ(sem_destroy(&s->go), 0);
}

/* ------------------------------------------------------------------------
 * 1. A GET
 * ---------------------------------------------------------------------- */

static int get_hello_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    body b = {0};
    CURL *easy = new_easy(srv.port, "/hello", &b);
    perform_hello(easy, &b);
    /* a NULL result pointer is accepted */
    body_reset(&b);
    CHECK_OK(cosync_curl_perform(easy, NULL, COSYNC_FOREVER));
    check_body_is(&b, "hello");
    CHECK_EQ(response_code(easy), 200);
    CHECK_EQ(srv.requests, 2);
    CHECK_EQ(srv.connections, 1); /* the second went on the first's connection */
    curl_easy_cleanup(easy);
    body_reset(&b);
    server_stop(&srv);
    return 0;
}

TEST(a_get_returns_0_with_curle_ok_and_the_body)
{
    run_real(get_hello_main, NULL);
}

/* ------------------------------------------------------------------------
 * 2. Many transfers at once, then the same handles again
 * ---------------------------------------------------------------------- */

#define MANY 100

static void perform_many(job *jobs, int n)
{
    cosync_task tasks[MANY];
    for (int i = 0; i < n; i++) {
        body_reset(&jobs[i].b);
        jobs[i].deadline = COSYNC_FOREVER;
        tasks[i] = spawn_perform(&jobs[i], jobs[i].big ? "get-big" : "get-hello");
    }
    cosync_outcome out[MANY];
    CHECK_OK(cosync_gather(tasks, (size_t)n, out, COSYNC_FOREVER));
    for (int i = 0; i < n; i++) {
        CHECK_OK(out[i].status);
        CHECK_OK(jobs[i].rc);
        CHECK_EQ(jobs[i].code, CURLE_OK);
        CHECK_EQ(response_code(jobs[i].easy), 200);
        if (jobs[i].big)
            check_body_is_big(&jobs[i].b);
        else
            check_body_is(&jobs[i].b, "hello");
    }
}

static int many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    static job jobs[MANY];
    for (int i = 0; i < MANY; i++) {
        jobs[i] = (job){.big = i % 3 == 0};
        jobs[i].easy = new_easy(srv.port, jobs[i].big ? "/big" : "/hello", &jobs[i].b);
    }
    perform_many(jobs, MANY);
    CHECK_EQ(srv.requests, MANY);
    int first_connections = srv.connections;
    CHECK_LE(first_connections, MANY);
    /* the same handles again: libcurl reuses the connections it keeps */
    perform_many(jobs, MANY);
    CHECK_EQ(srv.requests, 2 * MANY);
    CHECK_LT(srv.connections, srv.requests);
    printf("  %d requests on %d connections (%d for the first %d)\n", srv.requests, srv.connections,
           first_connections, MANY);
    for (int i = 0; i < MANY; i++) {
        curl_easy_cleanup(jobs[i].easy);
        body_reset(&jobs[i].b);
    }
    server_stop(&srv);
    return 0;
}

TEST(a_hundred_transfers_at_once_all_complete_and_their_handles_and_connections_are_reused)
{
    run_real(many_main, NULL);
}

/* ------------------------------------------------------------------------
 * 3, 4. libcurl's failures are results, not errors
 * ---------------------------------------------------------------------- */

/* A port nothing listens on: bound, then closed. */
static uint16_t free_port(void)
{
    cosync_io io = {0};
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_open(&io, AF_INET, SOCK_STREAM));
    CHECK_OK(cosync_sock_bind(&io, &a));
    CHECK_OK(cosync_sock_local_addr(&io, &a));
    int port = cosync_addr_port(&a);
    CHECK_GT(port, 0);
    CHECK_OK(cosync_io_close(&io));
    return (uint16_t)port;
}

static int refused_main(void *arg, void **result)
{
    (void)arg, (void)result;
    body b = {0};
    CURL *easy = new_easy(free_port(), "/hello", &b);
    CURLcode code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_COULDNT_CONNECT);
    CHECK_EQ(b.len, 0);
    curl_easy_cleanup(easy);
    return 0;
}

TEST(a_refused_connection_returns_0_with_curle_couldnt_connect)
{
    run_real(refused_main, NULL);
}

static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    body b = {0};
    CURL *easy = new_easy(srv.port, "/close", &b);
    CURLcode first = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &first, COSYNC_FOREVER));
    CHECK_NE(first, CURLE_OK);
    CHECK_EQ(first, CURLE_GOT_NOTHING);
    for (int i = 0; i < 3; i++) { /* the same outcome each time */
        CURLcode code = CURL_LAST;
        CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
        CHECK_EQ(code, first);
    }
    CHECK_EQ(b.len, 0);
    /* and the handle still works */
    set_url(easy, srv.port, "/hello");
    perform_hello(easy, &b);
    curl_easy_cleanup(easy);
    body_reset(&b);
    server_stop(&srv);
    return 0;
}

TEST(a_connection_closed_without_an_answer_returns_0_with_curle_got_nothing)
{
    run_real(close_main, NULL);
}

static size_t refuse(char *data, size_t size, size_t n, void *ud)
{
    (void)data, (void)size, (void)n;
    ++*(int *)ud;
    return 0; /* libcurl ends the transfer with CURLE_WRITE_ERROR */
}

/* A write callback that refuses the data, and libcurl's own timeout
 * (CURLOPT_TIMEOUT_MS): outcomes of the transfer, returned with 0. */
static int curl_errors_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    body b = {0};
    int calls = 0;
    CURL *easy = new_easy(srv.port, "/hello", NULL);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, refuse);
    SETOPT(easy, CURLOPT_WRITEDATA, &calls);
    CURLcode code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_WRITE_ERROR);
    CHECK_EQ(calls, 1);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, collect);
    SETOPT(easy, CURLOPT_WRITEDATA, &b);
    set_url(easy, srv.port, "/slow");
    SETOPT(easy, CURLOPT_TIMEOUT_MS, 30L);
    code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_OPERATION_TIMEDOUT);
    CHECK_EQ(b.len, 0);
    SETOPT(easy, CURLOPT_TIMEOUT_MS, 0L);
    set_url(easy, srv.port, "/hello");
    perform_hello(easy, &b);
    curl_easy_cleanup(easy);
    body_reset(&b);
    server_stop(&srv);
    return 0;
}

TEST(a_refusing_callback_and_libcurls_own_timeout_are_results_too)
{
    run_real(curl_errors_main, NULL);
}

/* ------------------------------------------------------------------------
 * 5. Deadlines
 * ---------------------------------------------------------------------- */

static int deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    body b = {0};
    CURL *easy = new_easy(srv.port, "/slow", &b);
    CURLcode code = CURL_LAST;
    CHECK_ERR(cosync_curl_perform(easy, &code, cosync_deadline_after(COSYNC_MS(30))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(code, CURL_LAST); /* written only on 0 */
    /* the handle is the caller's again */
    set_url(easy, srv.port, "/hello");
    perform_hello(easy, &b);
    curl_easy_cleanup(easy);
    body_reset(&b);
    server_stop(&srv);
    return 0;
}

/* Deadline 0 (COSYNC_EAGAIN at once), and a deadline that has passed
 * (COSYNC_ETIMEDOUT at once), on a loop that has no driver yet and on
 * one that has: nothing is sent. */
static int deadline0_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    body b = {0};
    CURL *easy = new_easy(srv.port, "/hello", &b);
    CURLcode code = CURL_LAST;
    CHECK_ERR(cosync_curl_perform(easy, &code, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_curl_perform(easy, &code, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(code, CURL_LAST);
    perform_hello(easy, &b);
    CHECK_EQ(srv.requests, 1); /* the last alone */
    body_reset(&b);
    CHECK_ERR(cosync_curl_perform(easy, &code, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_curl_perform(easy, &code, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(code, CURL_LAST);
    perform_hello(easy, &b);
    CHECK_EQ(srv.requests, 2);
    CHECK_EQ(srv.connections, 1);
    curl_easy_cleanup(easy);
    body_reset(&b);
    server_stop(&srv);
    return 0;
}

TEST(a_deadline_stops_the_transfer_and_leaves_the_handle_usable)
{
    run_real(deadline_main, NULL);
    run_real(deadline0_main, NULL);
}

/* ------------------------------------------------------------------------
 * 6. Cancellation
 * ---------------------------------------------------------------------- */

static int self_cancelled_perform(void *arg, void **result)
{
    (void)result;
    job *j = arg;
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    return perform_task(j, NULL);
}

static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    job j = {.deadline = COSYNC_FOREVER};
    j.easy = new_easy(srv.port, "/slow", &j.b);

    /* a cancel pending when perform is called: nothing is sent */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, self_cancelled_perform, &j, NULL));
    join_expect(t, COSYNC_ECANCELED); /* it ends cancelled, whatever it returns */
    CHECK_ERR(j.rc, COSYNC_ECANCELED);
    CHECK_EQ(j.code, CURL_LAST);
    set_url(j.easy, srv.port, "/hello");
    perform_hello(j.easy, &j.b);
    CHECK_EQ(srv.requests, 1); /* the /hello alone */

    /* cancelled once the server has the request */
    set_url(j.easy, srv.port, "/slow");
    t = spawn_perform(&j, "getter");
    CHECK_OK(cosync_sem_acquire(&srv.slow_seen, COSYNC_FOREVER));
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED); /* it ends cancelled, whatever it returns */
    CHECK_ERR(j.rc, COSYNC_ECANCELED);
    CHECK_EQ(j.code, CURL_LAST);
    set_url(j.easy, srv.port, "/hello");
    perform_hello(j.easy, &j.b);

    /* cancelled before libcurl has started it (the task has just suspended) */
    set_url(j.easy, srv.port, "/slow");
    t = spawn_perform(&j, "getter");
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED); /* it ends cancelled, whatever it returns */
    CHECK_ERR(j.rc, COSYNC_ECANCELED);
    set_url(j.easy, srv.port, "/hello");
    perform_hello(j.easy, &j.b);

    curl_easy_cleanup(j.easy);
    body_reset(&j.b);
    server_stop(&srv);
    return 0;
}

TEST(a_cancel_stops_the_transfer_and_leaves_the_handle_usable)
{
    run_real(cancel_main, NULL);
}

/* ------------------------------------------------------------------------
 * 7. A callback that cancels another performing task
 * ---------------------------------------------------------------------- */

typedef struct canceller {
    body b;
    cosync_task victim;
    int calls;
    int cancel_rc;
} canceller;

static size_t cancel_other(char *data, size_t size, size_t n, void *ud)
{
    canceller *c = ud;
    CHECK(cosync_task_current().rec == NULL); /* outside any task */
    if (c->calls++ == 0)
        c->cancel_rc = cosync_task_cancel(c->victim);
    body_append(&c->b, data, size * n);
    return size * n;
}

static int callback_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    job slow = {.deadline = COSYNC_FOREVER};
    slow.easy = new_easy(srv.port, "/slow", &slow.b);
    cosync_task victim = spawn_perform(&slow, "victim");
    CHECK_OK(cosync_sem_acquire(&srv.slow_seen, COSYNC_FOREVER));

    canceller c = {.victim = victim, .cancel_rc = 12345};
    CURL *easy = new_easy(srv.port, "/big", NULL);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, cancel_other);
    SETOPT(easy, CURLOPT_WRITEDATA, &c);
    CURLcode code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_OK);
    CHECK_OK(c.cancel_rc);
    CHECK_GT(c.calls, 1);
    check_body_is_big(&c.b);
    join_expect(victim, COSYNC_ECANCELED);
    CHECK_ERR(slow.rc, COSYNC_ECANCELED);
    CHECK_EQ(slow.code, CURL_LAST);
    /* both handles work again */
    set_url(slow.easy, srv.port, "/hello");
    perform_hello(slow.easy, &slow.b);
    body_reset(&c.b);
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_OK);
    check_body_is_big(&c.b);

    /* a callback that cancels its own task: the transfer is given up, the
     * task gets COSYNC_ECANCELED */
    set_url(easy, srv.port, "/hello");
    body_reset(&c.b);
    c.calls = 0;
    c.cancel_rc = 12345;
    job self = {.easy = easy, .deadline = COSYNC_FOREVER};
    cosync_task t = spawn_perform(&self, "self");
    c.victim = t;
    join_expect(t, COSYNC_ECANCELED);
    CHECK_OK(c.cancel_rc);
    CHECK_ERR(self.rc, COSYNC_ECANCELED);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, collect);
    SETOPT(easy, CURLOPT_WRITEDATA, &c.b);
    perform_hello(easy, &c.b);

    curl_easy_cleanup(easy);
    curl_easy_cleanup(slow.easy);
    body_reset(&c.b);
    body_reset(&slow.b);
    server_stop(&srv);
    return 0;
}

TEST(a_write_callback_may_cancel_another_performing_task)
{
    run_real(callback_cancel_main, NULL);
}

/* The same, when the other transfer's answer has come too: both sockets
 * are in one batch of epoll events, and the first one's callback cancels
 * the other, whose connection libcurl closes before the loop reaches the
 * other's event in the batch (its watch must still be there to ignore
 * it: at 36bc962 this was a use after free, which ASan reports). */

typedef struct pair {
    body b[2];
    cosync_task t[2];
    int first;
    int cancel_rc;
} pair;

typedef struct side {
    pair *p;
    int me;
} side;

static size_t cancel_the_other(char *data, size_t size, size_t n, void *ud)
{
    side *sd = ud;
    pair *p = sd->p;
    if (p->first < 0) {
        p->first = sd->me;
        p->cancel_rc = cosync_task_cancel(p->t[1 - sd->me]);
    }
    body_append(&p->b[sd->me], data, size * n);
    return size * n;
}

static int batch_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    pair p = {.first = -1, .cancel_rc = 12345};
    side sides[2] = {{&p, 0}, {&p, 1}};
    job j[2];
    for (int i = 0; i < 2; i++) {
        j[i] = (job){.deadline = COSYNC_FOREVER};
        j[i].easy = new_easy(srv.port, "/gate", NULL);
        SETOPT(j[i].easy, CURLOPT_WRITEFUNCTION, cancel_the_other);
        SETOPT(j[i].easy, CURLOPT_WRITEDATA, &sides[i]);
        p.t[i] = spawn_perform(&j[i], "gated");
    }
    CHECK_OK(cosync_sem_acquire_many(&srv.gate_seen, 2, COSYNC_FOREVER));
    CHECK_OK(cosync_event_set(&srv.gate));
    CHECK_OK(cosync_yield()); /* both handlers answer */
    /* the loop's thread stops a moment, so that both answers are there
     * when it next polls: one batch of epoll events holds both sockets */
    nanosleep(&(struct timespec){.tv_nsec = 10 * 1000 * 1000}, NULL);
    int st0 = join_status(p.t[0]), st1 = join_status(p.t[1]);
    CHECK(p.first == 0 || p.first == 1);
    int w = p.first, l = 1 - p.first;
    CHECK_OK(p.cancel_rc);
    CHECK_OK(w == 0 ? st0 : st1);
    CHECK_ERR(l == 0 ? st0 : st1, COSYNC_ECANCELED);
    CHECK_OK(j[w].rc);
    CHECK_EQ(j[w].code, CURLE_OK);
    check_body_is(&p.b[w], "gated");
    CHECK_ERR(j[l].rc, COSYNC_ECANCELED);
    for (int i = 0; i < 2; i++) {
        SETOPT(j[i].easy, CURLOPT_WRITEFUNCTION, collect);
        SETOPT(j[i].easy, CURLOPT_WRITEDATA, &j[i].b);
        set_url(j[i].easy, srv.port, "/hello");
        perform_hello(j[i].easy, &j[i].b);
        curl_easy_cleanup(j[i].easy);
        body_reset(&j[i].b);
        body_reset(&p.b[i]);
    }
    server_stop(&srv);
    return 0;
}

TEST(a_callback_may_cancel_a_transfer_whose_answer_is_in_the_same_batch_of_events)
{
    run_real(batch_main, NULL);
}

/* ------------------------------------------------------------------------
 * 8. Misuse
 * ---------------------------------------------------------------------- */

typedef struct blocker {
    body b;
    CURL *other;
    int calls;
    int sleep_rc, yield_rc, perform_rc, event_rc;
} blocker;

static size_t block_in_callback(char *data, size_t size, size_t n, void *ud)
{
    blocker *k = ud;
    if (k->calls++ == 0) {
        k->sleep_rc = cosync_sleep(COSYNC_MS(1));
        k->yield_rc = cosync_yield();
        k->perform_rc = cosync_curl_perform(k->other, NULL, COSYNC_FOREVER);
        cosync_event never;
        cosync_event_init(&never);
        k->event_rc = cosync_event_wait(&never, COSYNC_FOREVER);
    }
    body_append(&k->b, data, size * n);
    return size * n;
}

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    CHECK_ERR(cosync_curl_perform(NULL, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_curl_perform(NULL, NULL, 0), COSYNC_EINVAL);

    /* the same handle performed by two tasks at once */
    job a = {.deadline = COSYNC_FOREVER};
    a.easy = new_easy(srv.port, "/hello", &a.b);
    job b = {.easy = a.easy, .deadline = COSYNC_FOREVER};
    cosync_task ta = spawn_perform(&a, "first");
    cosync_task tb = spawn_perform(&b, "second");
    join_ok(tb); /* it returns at once */
    CHECK_ERR(b.rc, COSYNC_EBUSY);
    CHECK_EQ(b.code, CURL_LAST);
    join_ok(ta);
    CHECK_OK(a.rc);
    CHECK_EQ(a.code, CURLE_OK);
    check_body_is(&a.b, "hello");
    CHECK_EQ(srv.requests, 1);

    /* blocking calls in a callback, which runs outside any task */
    blocker k = {.other = a.easy, .sleep_rc = 1, .yield_rc = 1, .perform_rc = 1, .event_rc = 1};
    CURL *easy = new_easy(srv.port, "/hello", NULL);
    SETOPT(easy, CURLOPT_WRITEFUNCTION, block_in_callback);
    SETOPT(easy, CURLOPT_WRITEDATA, &k);
    CURLcode code = CURL_LAST;
    CHECK_OK(cosync_curl_perform(easy, &code, COSYNC_FOREVER));
    CHECK_EQ(code, CURLE_OK);
    check_body_is(&k.b, "hello");
    CHECK_ERR(k.sleep_rc, COSYNC_EPERM);
    CHECK_ERR(k.yield_rc, COSYNC_EPERM);
    CHECK_ERR(k.perform_rc, COSYNC_EPERM);
    CHECK_ERR(k.event_rc, COSYNC_EPERM);
    /* the handle the callback tried was left alone */
    perform_hello(a.easy, &a.b);

    curl_easy_cleanup(easy);
    curl_easy_cleanup(a.easy);
    body_reset(&a.b);
    body_reset(&k.b);
    server_stop(&srv);
    return 0;
}

TEST(misuse_is_refused)
{
    /* outside a task */
    body b = {0};
    CURL *easy = new_easy(9, "/hello", &b);
    CHECK_ERR(cosync_curl_perform(easy, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_curl_perform(easy, NULL, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_curl_perform(NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    curl_easy_cleanup(easy);
    run_real(misuse_main, NULL);
}

/* ------------------------------------------------------------------------
 * 9. The loop's end while a transfer is under way
 * ---------------------------------------------------------------------- */

static job end_job;

/* Start a /slow transfer in a task and return once the server has it. */
static void start_slow_transfer(void)
{
    server_start(&srv);
    end_job = (job){.deadline = COSYNC_FOREVER};
    end_job.easy = new_easy(srv.port, "/slow", &end_job.b);
    CHECK_OK(cosync_task_spawn(NULL, perform_task, &end_job, &(cosync_task_opts){.name = "left"}));
    CHECK_OK(cosync_sem_acquire(&srv.slow_seen, COSYNC_FOREVER));
}

static int main_that_returns(void *arg, void **result)
{
    (void)arg, (void)result;
    start_slow_transfer();
    return 0; /* the transfer, the server, its handlers are left running */
}

static int main_that_stops(void *arg, void **result)
{
    (void)arg, (void)result;
    start_slow_transfer();
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    cosync_event never;
    cosync_event_init(&never);
    return cosync_event_wait(&never, COSYNC_FOREVER); /* cancelled by the close */
}

static void check_end_job(void)
{
    CHECK_ERR(end_job.rc, COSYNC_ECANCELED);
    CHECK_EQ(end_job.code, CURL_LAST);
    curl_easy_cleanup(end_job.easy);
    body_reset(&end_job.b);
}

TEST(the_loops_end_cancels_a_transfer_under_way)
{
    int fds = count_fds();
    /* asyncio.run: main returns, the rest is cancelled */
    CHECK_OK(cosync_run(main_that_returns, NULL));
    check_end_job();
    CHECK_EQ(count_fds(), fds);

    /* a loop stopped mid-transfer, then destroyed */
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, NULL));
    cosync_task m;
    CHECK_OK(
        cosync_loop_spawn(loop, &m, main_that_stops, NULL, &(cosync_task_opts){.name = "main"}));
    CHECK_ERR(cosync_loop_run(loop, m, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(end_job.rc, 12345); /* still under way */
    CHECK_OK(cosync_loop_destroy(loop));
    check_end_job();
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------
 * 10. Fault injection
 * ---------------------------------------------------------------------- */

typedef struct fault_case {
    long k;
    uint16_t port;
    bool failed;
    int rc;
} fault_case;

static int fault_main(void *arg, void **result)
{
    (void)result;
    fault_case *f = arg;
    body b = {0};
    CURL *easy = new_easy(f->port, "/hello", &b);
    CURLcode code = CURL_LAST;
    long failures = cosync__fault_failures;
    cosync__fault_countdown = f->k;
    f->rc = cosync_curl_perform(easy, &code, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    if (f->failed) {
        CHECK_EQ(cosync__fault_failures, failures + 1);
        CHECK_ERR(f->rc, COSYNC_ENOMEM);
        CHECK_EQ(code, CURL_LAST);
    } else {
        CHECK_OK(f->rc);
        CHECK_EQ(code, CURLE_OK);
        check_body_is(&b, "hello");
    }
    /* the next perform succeeds */
    perform_hello(easy, &b);
    curl_easy_cleanup(easy);
    body_reset(&b);
    return 0;
}

/* Each point of a loop's first perform that can fail (the driver, its
 * multi handle, the transfer's record, the add_handle, the socket's watch
 * and its epoll registration in libcurl's socket callback, and any later
 * change of the watch) fails in turn. */
TEST(each_failure_point_of_a_first_perform_returns_enomem_and_leaks_nothing)
{
    tserver ts;
    tserver_start(&ts);
    int fds = count_fds();
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a = {count_realloc, &c};
        cosync_loop *loop = NULL;
        CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.allocator = &a}));
        fault_case f = {.k = k, .port = ts.port, .rc = 12345};
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, fault_main, &f, &(cosync_task_opts){.name = "main"}));
        int status = 12345;
        CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
        CHECK_OK(status);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(c.live, 0);
        wait_fds(fds);
        if (!f.failed)
            break;
    }
    /* at least the six points named above failed, one per run */
    CHECK_GE(k, 6);
    printf("  %ld points failed in turn\n", k);
    tserver_stop(&ts);
}

/* ------------------------------------------------------------------------
 * 11. No deadlock report while a transfer waits; the dump
 * ---------------------------------------------------------------------- */

/* Let the server answer "/wait" once it has the request and libcurl has
 * no timer armed (its 200 ms one of the connection has fired): from then
 * on the loop has no timer, no other task, and only the transfer to wait
 * for, which only the loop's count of I/O waiters keeps from being taken
 * for a deadlock. */
static int release_when_no_timer(void *arg, void **result)
{
    (void)result;
    tserver *ts = arg;
    for (int i = 0;; i++) {
        CHECK_LT(i, 10000); /* 10 s */
        if (atomic_load(&ts->requests) == 1 && armed_timers() == 0)
            break;
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
    CHECK_EQ(sem_post(&ts->go), 0);
    return 0;
}

static int wait_main(void *arg, void **result)
{
    (void)result;
    tserver *ts = arg;
    body b = {0};
    CURL *easy = new_easy(ts->port, "/wait", &b);
    cosync_task helper;
    CHECK_OK(cosync_task_spawn(&helper, release_when_no_timer, ts, NULL));
    perform_hello(easy, &b);
    join_ok(helper);
    curl_easy_cleanup(easy);
    body_reset(&b);
    return 0;
}

TEST(a_task_waiting_in_a_transfer_is_no_deadlock)
{
    tserver ts;
    tserver_start(&ts);
    capture cap;
    FILE *report = capture_open(&cap);
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.report = report}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, wait_main, &ts, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_STREQ(capture_text(&cap), "");
    capture_free(&cap);
    CHECK_EQ(atomic_load(&ts.requests), 1);
    tserver_stop(&ts);
}

static int dump_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    job j = {.deadline = COSYNC_FOREVER};
    j.easy = new_easy(srv.port, "/slow", &j.b);
    cosync_task t = spawn_perform(&j, "fetcher");
    CHECK_OK(cosync_sem_acquire(&srv.slow_seen, COSYNC_FOREVER));
    static char text[8192];
    memset(text, 0, sizeof text);
    FILE *f = fmemopen(text, sizeof text - 1, "w");
    CHECK_NOTNULL(f);
    CHECK_GE(cosync_loop_dump(cosync_loop_current(), f), 4); /* main, fetcher, acceptor, handler */
    CHECK_EQ(fclose(f), 0);
    char want[128];
    snprintf(want, sizeof want, "curl transfer http://127.0.0.1:%u/slow", (unsigned)srv.port);
    char *line = strstr(text, "fetcher");
    CHECK_NOTNULL(line);
    char *eol = strchr(line, '\n');
    CHECK_NOTNULL(eol);
    *eol = '\0';
    if (!strstr(line, want))
        CHECK_STREQ(line, want); /* prints the line */
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED); /* it ends cancelled, whatever it returns */
    CHECK_ERR(j.rc, COSYNC_ECANCELED);
    curl_easy_cleanup(j.easy);
    body_reset(&j.b);
    server_stop(&srv);
    return 0;
}

TEST(the_dump_shows_a_transfer_and_its_url)
{
    run_real(dump_main, NULL);
}

/* ------------------------------------------------------------------------
 * Loops on two threads, each with its own driver
 * ---------------------------------------------------------------------- */

#define PER_THREAD 30

typedef struct loop_thread {
    pthread_t th;
    int rc;
    server s;
    job jobs[PER_THREAD];
} loop_thread;

static int thread_loop_main(void *arg, void **result)
{
    (void)result;
    loop_thread *lt = arg;
    server_start(&lt->s);
    for (int i = 0; i < PER_THREAD; i++) {
        lt->jobs[i] = (job){.big = i % 5 == 0};
        lt->jobs[i].easy =
            new_easy(lt->s.port, lt->jobs[i].big ? "/big" : "/hello", &lt->jobs[i].b);
    }
    perform_many(lt->jobs, PER_THREAD);
    perform_many(lt->jobs, PER_THREAD);
    CHECK_EQ(lt->s.requests, 2 * PER_THREAD);
    for (int i = 0; i < PER_THREAD; i++) {
        curl_easy_cleanup(lt->jobs[i].easy);
        body_reset(&lt->jobs[i].b);
    }
    server_stop(&lt->s);
    return 0;
}

static void *loop_thread_fn(void *arg)
{
    loop_thread *lt = arg;
    lt->rc = cosync_run(thread_loop_main, lt);
    return NULL;
}

TEST(loops_on_two_threads_perform_at_once)
{
    loop_thread *lts = calloc(2, sizeof *lts);
    CHECK_NOTNULL(lts);
    for (int i = 0; i < 2; i++) {
        lts[i].rc = 12345;
        CHECK_EQ(pthread_create(&lts[i].th, NULL, loop_thread_fn, &lts[i]), 0);
    }
    for (int i = 0; i < 2; i++) {
        CHECK_EQ(pthread_join(lts[i].th, NULL), 0);
        CHECK_OK(lts[i].rc);
    }
    free(lts);
}

/* ------------------------------------------------------------------------
 * A callback that libcurl calls from inside curl_multi_remove_handle
 * cancels another performing task (a bug once: the driver counted its
 * depth in libcurl only around curl_multi_socket_action, so the second
 * remove was made from inside the first, and libcurl refused it with
 * CURLM_RECURSIVE_API_CALL: the handle stayed on the multi handle, and
 * its next perform returned COSYNC_EBUSY). cosync/curl.h and docs/io.md:
 * callbacks may cancel a task, and after a cancel "@easy is the caller's
 * again, to perform again or to clean up". Two such callbacks:
 * CURLOPT_CLOSESOCKETFUNCTION, as a cancelled transfer's connection is
 * closed, and a CURLOPT_DEBUGFUNCTION with CURLOPT_VERBOSE.
 * ---------------------------------------------------------------------- */

typedef struct closer {
    cosync_task victim;
    bool armed;
    int cancel_rc;
} closer;

static int close_and_cancel(void *clientp, curl_socket_t item)
{
    closer *c = clientp;
    if (c->armed) {
        c->armed = false;
        c->cancel_rc = cosync_task_cancel(c->victim);
    }
    return close(item);
}

static int closesocket_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    closer cl = {.cancel_rc = 12345};
    job b = {.deadline = COSYNC_FOREVER}, d = {.deadline = COSYNC_FOREVER};
    b.easy = new_easy(srv.port, "/slow", &b.b);
    SETOPT(b.easy, CURLOPT_CLOSESOCKETFUNCTION, close_and_cancel);
    SETOPT(b.easy, CURLOPT_CLOSESOCKETDATA, &cl);
    d.easy = new_easy(srv.port, "/slow", &d.b);
    cosync_task tb = spawn_perform(&b, "b");
    cosync_task td = spawn_perform(&d, "d");
    CHECK_OK(cosync_sem_acquire_many(&srv.slow_seen, 2, COSYNC_FOREVER));
    cl.victim = td;
    cl.armed = true;
    CHECK_OK(cosync_task_cancel(tb)); /* B's connection closes: the callback cancels D */
    join_expect(tb, COSYNC_ECANCELED);
    CHECK(!cl.armed);
    CHECK_OK(cl.cancel_rc);
    join_expect(td, COSYNC_ECANCELED);
    CHECK_ERR(d.rc, COSYNC_ECANCELED);
    /* D's handle is the caller's again */
    set_url(d.easy, srv.port, "/hello");
    perform_hello(d.easy, &d.b);
    curl_easy_cleanup(b.easy);
    curl_easy_cleanup(d.easy);
    body_reset(&b.b);
    body_reset(&d.b);
    server_stop(&srv);
    return 0;
}

TEST(a_closesocket_callback_may_cancel_another_performing_task)
{
    run_real(closesocket_main, NULL);
}

/* A callback that a task's cancel makes libcurl call (the cancelled
 * transfer's connection closes inside curl_multi_remove_handle) runs with
 * no task current, as every callback does: a cosync call there that would
 * suspend returns COSYNC_EPERM rather than switching away inside libcurl,
 * where another task's call into libcurl would be refused (a bug once: it
 * ran in the cancelling task, and slept). */
typedef struct in_callback {
    bool called;
    bool no_task;
    int sleep_rc;
} in_callback;

static int close_and_sleep(void *clientp, curl_socket_t item)
{
    in_callback *c = clientp;
    cosync_task cur = cosync_task_current();
    c->called = true;
    c->no_task = cur.rec == NULL;
    c->sleep_rc = cosync_sleep(COSYNC_MS(5));
    return close(item);
}

static int callback_no_task_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    in_callback cb = {.sleep_rc = 12345};
    job b = {.deadline = COSYNC_FOREVER}, o = {.deadline = COSYNC_FOREVER};
    b.easy = new_easy(srv.port, "/slow", &b.b);
    SETOPT(b.easy, CURLOPT_CLOSESOCKETFUNCTION, close_and_sleep);
    SETOPT(b.easy, CURLOPT_CLOSESOCKETDATA, &cb);
    o.easy = new_easy(srv.port, "/hello", &o.b);
    cosync_task tb = spawn_perform(&b, "b");
    CHECK_OK(cosync_sem_acquire(&srv.slow_seen, COSYNC_FOREVER));
    cosync_task to = spawn_perform(&o, "other"); /* ready while the cancel runs */
    CHECK_OK(cosync_task_cancel(tb));            /* the connection closes in here */
    CHECK(cb.called);
    CHECK(cb.no_task);
    CHECK_ERR(cb.sleep_rc, COSYNC_EPERM);
    join_expect(tb, COSYNC_ECANCELED);
    join_ok(to);
    CHECK_OK(o.rc);
    CHECK_EQ(o.code, CURLE_OK);
    check_body_is(&o.b, "hello");
    curl_easy_cleanup(b.easy);
    curl_easy_cleanup(o.easy);
    body_reset(&b.b);
    body_reset(&o.b);
    server_stop(&srv);
    return 0;
}

TEST(a_callback_of_a_cancel_runs_with_no_task_current)
{
    run_real(callback_no_task_main, NULL);
}

/* A transfer ended by the driver (a watch that cannot be had: fault
 * injection) is granted before its handle comes off the multi handle: a
 * close-socket callback of that removal that cancels the transfer's own
 * task finds the wait granted, so the cancel waits for the next
 * suspension (a bug once: the wait was still waiting, the cancel took the
 * transfer off a list it was no longer on, the loop's count of I/O
 * waiters went below zero, and the task was made ready twice). */
static size_t io_waiters(void)
{
    return cosync_loop_current()->io_waiters;
}

typedef struct self_canceller {
    cosync_task victim;
    int calls;
} self_canceller;

static int close_and_cancel_self(void *clientp, curl_socket_t item)
{
    self_canceller *c = clientp;
    c->calls++;
    cosync_task_cancel(c->victim);
    return close(item);
}

static int finish_then_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* a listener that never accepts: connections complete in its queue,
     * requests go out, no answer comes; and no point of fault injection of
     * the loop's own, as a server in the loop would have */
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    CHECK(lfd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK_EQ(listen(lfd, 64), 0);
    socklen_t alen = sizeof a;
    CHECK_EQ(getsockname(lfd, (struct sockaddr *)&a, &alen), 0);
    uint16_t port = ntohs(a.sin_port);
    self_canceller sc = {.calls = 0};
    job v = {.deadline = COSYNC_FOREVER}, o = {.deadline = COSYNC_FOREVER};
    v.easy = new_easy(port, "/x", &v.b);
    SETOPT(v.easy, CURLOPT_CLOSESOCKETFUNCTION, close_and_cancel_self);
    SETOPT(v.easy, CURLOPT_CLOSESOCKETDATA, &sc);
    o.easy = new_easy(port, "/y", &o.b);
    SETOPT(o.easy, CURLOPT_FORBID_REUSE, 1L);
    bool reached = false;
    for (long k = 0; k < 8 && !reached; k++) {
        /* the victim connects and waits for its answer */
        sc.calls = 0;
        v.deadline = cosync_deadline_after(COSYNC_MS(500));
        sc.victim = spawn_perform(&v, "victim");
        CHECK_OK(cosync_sleep(COSYNC_MS(50)));
        /* another transfer's points fail in turn: one in its socket's
         * watch makes the driver end every transfer, the victim's too,
         * whose connection closes as its handle comes off */
        o.deadline = cosync_deadline_after(COSYNC_MS(50));
        cosync_task ot = spawn_perform(&o, "other");
        long failures = cosync__fault_failures;
        cosync__fault_countdown = k;
        int ost = join_status(ot);
        int vst = join_status(sc.victim);
        cosync__fault_countdown = -1;
        CHECK_EQ(io_waiters(), 0);
        (void)ost;
        if (cosync__fault_failures == failures)
            continue;
        if (v.rc == COSYNC_ENOMEM) { /* ended by the driver */
            reached = true;
            CHECK_GT(sc.calls, 0);
            CHECK_ERR(vst, COSYNC_ECANCELED); /* the cancel came after the grant */
        }
    }
    CHECK(reached);
    curl_easy_cleanup(v.easy);
    curl_easy_cleanup(o.easy);
    body_reset(&v.b);
    body_reset(&o.b);
    CHECK_EQ(close(lfd), 0);
    return 0;
}

TEST(a_transfer_the_driver_ends_is_granted_before_its_removal)
{
    run_real(finish_then_cancel_main, NULL);
}

/* The loop counts a task that performs among those only I/O can wake,
 * exactly while it waits: back to 0 after a transfer that ends, and after
 * one that is cancelled (served by a thread, so that no task of the loop
 * waits on I/O but the performers). */
static tserver count_server;

static int io_count_main(void *arg, void **result)
{
    (void)arg, (void)result;
    tserver *ts = &count_server;
    job j = {.deadline = COSYNC_FOREVER};
    j.easy = new_easy(ts->port, "/hello", &j.b);
    CHECK_EQ(io_waiters(), 0);
    cosync_task t = spawn_perform(&j, "getter");
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1); /* it waits */
    join_ok(t);
    CHECK_OK(j.rc);
    CHECK_EQ(io_waiters(), 0);
    set_url(j.easy, ts->port, "/wait"); /* answered only once the test says so */
    t = spawn_perform(&j, "waiter");
    while (atomic_load(&ts->requests) < 2)
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(io_waiters(), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(io_waiters(), 0); /* at the cancel */
    join_expect(t, COSYNC_ECANCELED);
    CHECK_EQ(sem_post(&ts->go), 0); /* the server's answer goes nowhere */
    curl_easy_cleanup(j.easy);
    body_reset(&j.b);
    return 0;
}

TEST(the_count_of_io_waiters_follows_a_transfer)
{
    tserver_start(&count_server);
    int fds = count_fds();
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, NULL));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, io_count_main, NULL, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    CHECK_OK(cosync_loop_destroy(loop));
    wait_fds(fds); /* the server's thread closes its side in its own time */
    tserver_stop(&count_server);
}

static int debug_and_cancel(CURL *easy, curl_infotype type, char *data, size_t size, void *userp)
{
    (void)easy, (void)type, (void)data, (void)size;
    closer *c = userp;
    if (c->armed) {
        c->armed = false;
        c->cancel_rc = cosync_task_cancel(c->victim);
    }
    return 0;
}

/* The same with a debug callback, which libcurl calls as it closes the
 * cancelled transfer's connection inside curl_multi_remove_handle. */
static int debug_main(void *arg, void **result)
{
    (void)arg, (void)result;
    server_start(&srv);
    closer cl = {.cancel_rc = 12345};
    job b = {.deadline = COSYNC_FOREVER}, d = {.deadline = COSYNC_FOREVER};
    b.easy = new_easy(srv.port, "/slow", &b.b);
    SETOPT(b.easy, CURLOPT_VERBOSE, 1L);
    SETOPT(b.easy, CURLOPT_DEBUGFUNCTION, debug_and_cancel);
    SETOPT(b.easy, CURLOPT_DEBUGDATA, &cl);
    d.easy = new_easy(srv.port, "/slow", &d.b);
    cosync_task tb = spawn_perform(&b, "b");
    cosync_task td = spawn_perform(&d, "d");
    CHECK_OK(cosync_sem_acquire_many(&srv.slow_seen, 2, COSYNC_FOREVER));
    cl.victim = td;
    cl.armed = true; /* the next debug message of B's: as it is taken off */
    CHECK_OK(cosync_task_cancel(tb));
    join_expect(tb, COSYNC_ECANCELED);
    CHECK(!cl.armed);
    CHECK_OK(cl.cancel_rc);
    join_expect(td, COSYNC_ECANCELED);
    CHECK_ERR(d.rc, COSYNC_ECANCELED);
    set_url(d.easy, srv.port, "/hello");
    perform_hello(d.easy, &d.b);
    curl_easy_cleanup(b.easy);
    curl_easy_cleanup(d.easy);
    body_reset(&b.b);
    body_reset(&d.b);
    server_stop(&srv);
    return 0;
}

TEST(a_debug_callback_may_cancel_another_performing_task)
{
    run_real(debug_main, NULL);
}

int main(void)
{
    for (size_t i = 0; i < BIG_LEN; i++)
        big_body[i] = big_byte(i);
    CHECK_EQ(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
    RUN(a_get_returns_0_with_curle_ok_and_the_body);
    RUN(a_hundred_transfers_at_once_all_complete_and_their_handles_and_connections_are_reused);
    RUN(a_refused_connection_returns_0_with_curle_couldnt_connect);
    RUN(a_connection_closed_without_an_answer_returns_0_with_curle_got_nothing);
    RUN(a_refusing_callback_and_libcurls_own_timeout_are_results_too);
    RUN(a_deadline_stops_the_transfer_and_leaves_the_handle_usable);
    RUN(a_cancel_stops_the_transfer_and_leaves_the_handle_usable);
    RUN(a_write_callback_may_cancel_another_performing_task);
    RUN(a_callback_may_cancel_a_transfer_whose_answer_is_in_the_same_batch_of_events);
    RUN(misuse_is_refused);
    RUN(the_loops_end_cancels_a_transfer_under_way);
    RUN(each_failure_point_of_a_first_perform_returns_enomem_and_leaks_nothing);
    RUN(a_task_waiting_in_a_transfer_is_no_deadlock);
    RUN(the_dump_shows_a_transfer_and_its_url);
    RUN(loops_on_two_threads_perform_at_once);
    RUN(a_debug_callback_may_cancel_another_performing_task);
    RUN(a_closesocket_callback_may_cancel_another_performing_task);
    RUN(a_callback_of_a_cancel_runs_with_no_task_current);
    RUN(a_transfer_the_driver_ends_is_granted_before_its_removal);
    RUN(the_count_of_io_waiters_follows_a_transfer);
    curl_global_cleanup();
    return 0;
}
