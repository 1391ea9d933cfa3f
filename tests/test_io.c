/*
 * test_io.c - the I/O layer: handles that wait on descriptors (cosync_io_*)
 * and sockets (cosync_sock_*, cosync_addr_*, cosync_tcp_connect).
 * Signals are in test_io_signal.c.
 *
 * Every loop runs on the virtual clock. There, a task that waits on I/O
 * with a deadline, while nothing else can run, sees the loop look at epoll
 * without waiting and then jump to the deadline: so a case that expects
 * data to arrive before a deadline uses a socketpair or a pipe, whose data
 * is in the peer's queue the moment the write returns. Over TCP and UDP
 * (loopback only, port 0) the kernel may deliver later: waits for data
 * that is coming use COSYNC_FOREVER, and finite deadlines are given only
 * where the outcome is the timeout (nothing is ever sent). No case sleeps
 * for real or asserts timing.
 *
 * White-box (core.h, fault.h): the loop's count of tasks blocked on I/O
 * (it must be back to 0 after every refused or ended wait), whether this
 * build runs dense tasks, and the fault injection of the registration.
 */
/* ctest-timeout: 120 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "core.h"  /* loop->io_waiters; COSYNC__DENSE_SUPPORTED */
#include "fault.h" /* cosync__fault_countdown, cosync__fault_failures */

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

#define READ COSYNC_IO_READ
#define WRITE COSYNC_IO_WRITE
#define FOREVER COSYNC_FOREVER

/* The directory of this run's files (Unix-domain sockets, a regular
 * file), made by main() and removed at its end. */
static char tmpdir[64];

/* An ordering log: tasks append checkpoints, the case compares at the end. */
#define LOG_MAX 256
static int log_buf[LOG_MAX];
static int log_len;

static void log_reset(void)
{
    log_len = 0;
}

static void log_add(int v)
{
    CHECK_LT(log_len, LOG_MAX);
    log_buf[log_len++] = v;
}

static void check_log(const int *want, int n)
{
    for (int i = 0; i < n && i < log_len; i++)
        if (log_buf[i] != want[i])
            CHECK__FAIL("log[%d] = %d, expected %d (log length %d)", i, log_buf[i], want[i],
                        log_len);
    CHECK_EQ(log_len, n);
}

#define CHECK_LOG(...)                                                                             \
    check_log((const int[]){__VA_ARGS__}, (int)(sizeof((const int[]){__VA_ARGS__}) / sizeof(int)))

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

static bool fd_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK);
}

static void set_nonblocking(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    CHECK_GE(fl, 0);
    CHECK_EQ(fcntl(fd, F_SETFL, fl | O_NONBLOCK), 0);
}

/* The loop's count of tasks blocked on I/O (call from a task). */
static size_t io_waiters(void)
{
    return cosync_loop_current()->io_waiters;
}

/* A socketpair: @io is the handle of one end, @peer the other end's raw
 * (non-blocking) descriptor, which the test reads and writes directly. */
typedef struct pair {
    cosync_io io;
    int fd;   /* io's descriptor, for checks after it is closed */
    int peer; /* -1 once closed */
} pair;

static void pair_open(pair *p)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(cosync_io_init(&p->io, sv[0]));
    set_nonblocking(sv[1]);
    p->fd = sv[0];
    p->peer = sv[1];
}

static void pair_close_peer(pair *p)
{
    if (p->peer >= 0)
        CHECK_EQ(close(p->peer), 0);
    p->peer = -1;
}

static void pair_close(pair *p)
{
    CHECK_OK(cosync_io_close(&p->io));
    CHECK(fd_closed(p->fd));
    pair_close_peer(p);
}

/* Write @s (all of it, at once) to the peer's end. */
static void put(pair *p, const char *s)
{
    size_t n = strlen(s);
    CHECK_EQ(write(p->peer, s, n), (ssize_t)n);
}

/* Read what the peer's end has (nothing must be missing) and compare. */
static void peer_expect(pair *p, const char *s)
{
    char buf[256];
    size_t n = strlen(s);
    CHECK_LT(n, sizeof buf);
    CHECK_EQ(read(p->peer, buf, sizeof buf), (ssize_t)n);
    CHECK_EQ(memcmp(buf, s, n), 0);
}

/* Write to the non-blocking @fd until its buffer is full; the bytes written. */
static size_t fill(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t n = write(fd, junk, sizeof junk);
        if (n < 0) {
            CHECK_EQ(errno, EAGAIN);
            return total;
        }
        total += (size_t)n;
    }
    CHECK__FAIL("the buffer of fd %d never filled", fd);
}

/* Read the non-blocking @fd until it says EAGAIN (or its end); the bytes
 * read. */
static size_t drain(int fd)
{
    static char junk[65536];
    size_t total = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t n = read(fd, junk, sizeof junk);
        if (n < 0)
            CHECK_EQ(errno, EAGAIN);
        if (n <= 0)
            return total;
        total += (size_t)n;
    }
    CHECK__FAIL("fd %d never drained", fd);
}

/* The byte at @i of the stream numbered @seed. */
static unsigned char pat(unsigned seed, size_t i)
{
    return (unsigned char)(i * 131u + (i >> 11) * 7u + seed * 37u + 1u);
}

static void fill_pattern(unsigned char *buf, size_t n, unsigned seed)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = pat(seed, i);
}

static void check_pattern(const unsigned char *buf, size_t n, unsigned seed, size_t at)
{
    for (size_t i = 0; i < n; i++)
        if (buf[i] != pat(seed, at + i))
            CHECK__FAIL("byte %zu of stream %u is %u, expected %u", at + i, seed, buf[i],
                        pat(seed, at + i));
}

static cosync_task spawn(cosync_task_fn fn, void *arg)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, fn, arg, NULL));
    return t;
}

/* Run @fn(@arg) as a task of @loop until it ends; check its status is 0. */
static void run_on(cosync_loop *loop, cosync_task_fn fn, void *arg)
{
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, fn, arg, NULL));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_OK(status);
}

/* @addr as text. */
static const char *addr_text(const cosync_addr *addr, char *buf)
{
    int n = cosync_addr_format(addr, buf, COSYNC_ADDR_TEXT_MAX);
    CHECK_GT(n, 0);
    CHECK_EQ((size_t)n, strlen(buf));
    return buf;
}

/* Listen on 127.0.0.1, a free port; its address (with the port) in *@addr. */
static void listen_local(cosync_io *l, cosync_addr *addr)
{
    CHECK_OK(cosync_addr_ip(addr, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_listen(l, addr, 0));
    CHECK_OK(cosync_sock_local_addr(l, addr));
    CHECK_GT(cosync_addr_port(addr), 0);
}

/* Receive exactly @len bytes (FOREVER). */
static void recv_exact(cosync_io *io, void *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = cosync_sock_recv(io, (char *)buf + got, len - got, FOREVER);
        CHECK_GT(n, 0);
        got += (size_t)n;
    }
}

/* Accept from @l the connection whose peer is @client's socket, passing
 * over others (a client closed before it was taken, say). */
static void accept_peer_of(cosync_io *l, cosync_io *conn, cosync_io *client)
{
    cosync_addr want, got;
    char a[COSYNC_ADDR_TEXT_MAX], b[COSYNC_ADDR_TEXT_MAX];
    CHECK_OK(cosync_sock_local_addr(client, &want));
    addr_text(&want, a);
    for (int i = 0; i < 10; i++) {
        CHECK_OK(cosync_sock_accept(l, conn, &got, FOREVER));
        if (strcmp(addr_text(&got, b), a) == 0)
            return;
        CHECK_OK(cosync_io_close(conn));
    }
    CHECK__FAIL("never accepted %s", a);
}

/* Echo what comes on @conn until its end. */
static void echo_until_eof(cosync_io *conn)
{
    char buf[4096];
    for (int i = 0; i < 1000000; i++) {
        ssize_t n = cosync_sock_recv(conn, buf, sizeof buf, FOREVER);
        CHECK_GE(n, 0);
        if (n == 0)
            return;
        size_t sent = 0;
        CHECK_OK(cosync_sock_sendall(conn, buf, (size_t)n, &sent, FOREVER));
        CHECK_EQ(sent, (size_t)n);
    }
    CHECK__FAIL("the stream never ended");
}

/* ------------------------------------------------------------------------
 * Handles: init, the descriptor, misuse
 * ---------------------------------------------------------------------- */

/* cosync_io_init makes the descriptor non-blocking and the handle's; its
 * refusals. */
TEST(init_makes_the_descriptor_non_blocking_and_the_handles)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK(!fd_nonblocking(sv[0]));
    cosync_io io, other;
    CHECK_OK(cosync_io_init(&io, sv[0]));
    CHECK(fd_nonblocking(sv[0]));
    CHECK_EQ(cosync_io_fd(&io), sv[0]);

    CHECK_ERR(cosync_io_init(NULL, sv[1]), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_init(&other, -1), COSYNC_EINVAL);
    int dead = dup(sv[1]);
    CHECK_GE(dead, 0);
    CHECK_EQ(close(dead), 0);
    CHECK_ERR(cosync_io_init(&other, dead), COSYNC_EBADF);

    CHECK_OK(cosync_io_close(&io));
    CHECK(fd_closed(sv[0]));
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_EQ(close(sv[1]), 0);
}

/* Zeroed memory is a closed handle: every call says EBADF but close,
 * which says 0 (and does not close descriptor 0, the zeroed fd field). */
TEST(a_zeroed_handle_is_closed)
{
    static cosync_io z; /* zeroed */
    bool stdin_open = fd_open(0);
    char buf[4];
    size_t w = 99;
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.1", 9));
    cosync_io conn;
    memset(&conn, 0xA5, sizeof conn);
    cosync_io conn_before = conn;

    CHECK_ERR(cosync_io_fd(&z), COSYNC_EBADF);
    CHECK_ERR(cosync_io_wait(&z, READ, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_wait(&z, READ | WRITE, FOREVER), COSYNC_EBADF);
    CHECK_ERR(cosync_io_read(&z, buf, sizeof buf, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_write(&z, "x", 1, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_write_all(&z, "x", 1, &w, FOREVER), COSYNC_EBADF);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_io_release(&z), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_bind(&z, &a), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_local_addr(&z, &a), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_peer_addr(&z, &a), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_shutdown(&z, SHUT_WR), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_accept(&z, &conn, NULL, 0), COSYNC_EBADF);
    CHECK_EQ(memcmp(&conn, &conn_before, sizeof conn), 0);
    CHECK_ERR(cosync_sock_connect(&z, &a, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_recv(&z, buf, sizeof buf, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_send(&z, "x", 1, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_sendall(&z, "x", 1, &w, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_recvfrom(&z, buf, sizeof buf, &a, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_sendto(&z, "x", 1, &a, 0), COSYNC_EBADF);
    CHECK_OK(cosync_io_close(&z));
    CHECK_OK(cosync_io_close(&z));
    CHECK_EQ(fd_open(0), stdin_open);
}

/* NULL arguments: COSYNC_EINVAL, without touching anything. */
TEST(null_arguments_are_einval)
{
    static pair p;
    pair_open(&p);
    char buf[4];
    size_t w = 99;
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.1", 9));
    cosync_io z = {0};

    CHECK_ERR(cosync_io_wait(NULL, READ, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_read(NULL, buf, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_read(&p.io, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_write(NULL, "x", 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_write(&p.io, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_write_all(NULL, "x", 1, &w, 0), COSYNC_EINVAL);
    CHECK_EQ(w, 0);
    w = 99;
    CHECK_ERR(cosync_io_write_all(&p.io, NULL, 1, &w, 0), COSYNC_EINVAL);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_io_close(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_release(NULL), COSYNC_EINVAL);

    CHECK_ERR(cosync_sock_open(NULL, AF_INET, SOCK_STREAM), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_bind(NULL, &a), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_bind(&p.io, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_listen(NULL, &a, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_listen(&z, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_listen(&z, &a, -1), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_fd(&z), COSYNC_EBADF); /* nothing opened */
    CHECK_ERR(cosync_sock_accept(NULL, &z, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_accept(&p.io, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_connect(NULL, &a, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_connect(&p.io, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tcp_connect(NULL, &a, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tcp_connect(&z, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_fd(&z), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_local_addr(NULL, &a), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_local_addr(&p.io, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_peer_addr(NULL, &a), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_peer_addr(&p.io, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_recv(&p.io, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_recv(NULL, buf, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_send(&p.io, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_send(NULL, "x", 1, 0), COSYNC_EINVAL);
    w = 99;
    CHECK_ERR(cosync_sock_sendall(&p.io, NULL, 1, &w, 0), COSYNC_EINVAL);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_sock_recvfrom(&p.io, NULL, 1, &a, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_sendto(&p.io, NULL, 1, &a, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_shutdown(NULL, SHUT_WR), COSYNC_EINVAL);

    /* nothing went to the peer, and the handle is as it was */
    CHECK_EQ(drain(p.peer), 0);
    CHECK_EQ(cosync_io_fd(&p.io), p.fd);
    /* a length of 0 needs no buffer: 0 bytes, at once */
    CHECK_EQ(cosync_io_read(&p.io, NULL, 0, 0), 0);
    CHECK_EQ(cosync_io_write(&p.io, NULL, 0, 0), 0);
    CHECK_OK(cosync_io_write_all(&p.io, NULL, 0, &w, 0));
    CHECK_EQ(w, 0);
    pair_close(&p);
}

static pair ev_pair;

static int bad_events_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &ev_pair;
    uint64_t before = switches();
    CHECK_ERR(cosync_io_wait(&p->io, 0, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_wait(&p->io, 4, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_wait(&p->io, READ | 4, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_wait(&p->io, WRITE | 0x100, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_io_wait(&p->io, -1, FOREVER), COSYNC_EINVAL);
    CHECK_EQ(switches(), before);
    CHECK_EQ(io_waiters(), 0);
    /* none of them left anything: a good wait works */
    put(p, "e");
    CHECK_EQ(cosync_io_wait(&p->io, READ, FOREVER), READ);
    char c;
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, 0), 1);
    CHECK_EQ(c, 'e');
    return 0;
}

/* Events 0 or with an unknown bit: EINVAL, at once. Outside any task:
 * EPERM for a wait (and for a read that would wait), while a read that
 * can complete at once does (it tries first). */
TEST(bad_events_are_einval_and_a_wait_outside_a_task_is_eperm)
{
    pair *p = &ev_pair;
    pair_open(p);
    CHECK_ERR(cosync_io_wait(&p->io, READ, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_io_wait(&p->io, WRITE, 0), COSYNC_EPERM);
    char buf[8];
    CHECK_ERR(cosync_io_read(&p->io, buf, sizeof buf, FOREVER), COSYNC_EPERM);
    put(p, "abc");
    CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, FOREVER), 3);
    CHECK_EQ(memcmp(buf, "abc", 3), 0);
    CHECK_EQ(cosync_io_write(&p->io, "xy", 2, FOREVER), 2);
    peer_expect(p, "xy");
    run_main_ok(bad_events_main, NULL);
    pair_close(p);
}

/* After cosync_io_close every use says EBADF, a second close says 0, and
 * the descriptor is closed. */
TEST(a_closed_handle_says_ebadf_and_closes_twice)
{
    static pair p;
    pair_open(&p);
    CHECK_OK(cosync_io_close(&p.io));
    CHECK(fd_closed(p.fd));
    CHECK_OK(cosync_io_close(&p.io));
    char buf[4];
    CHECK_ERR(cosync_io_fd(&p.io), COSYNC_EBADF);
    CHECK_ERR(cosync_io_wait(&p.io, READ, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_read(&p.io, buf, 1, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_write(&p.io, "x", 1, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_io_release(&p.io), COSYNC_EBADF);
    CHECK_OK(cosync_io_close(&p.io));
    pair_close_peer(&p);
}

static char regular_path[128];
static cosync_io regular_io;

static int regular_main(void *arg, void **result)
{
    (void)arg, (void)result;
    uint64_t before = switches();
    CHECK_ERR(cosync_io_wait(&regular_io, READ, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_io_wait(&regular_io, WRITE, 0), COSYNC_EPERM);
    CHECK_EQ(switches(), before);
    CHECK_EQ(io_waiters(), 0);
    /* a read or a write never needs a wait */
    char buf[8];
    CHECK_EQ(cosync_io_read(&regular_io, buf, sizeof buf, FOREVER), 3);
    CHECK_EQ(memcmp(buf, "abc", 3), 0);
    CHECK_EQ(cosync_io_read(&regular_io, buf, sizeof buf, FOREVER), 0); /* its end */
    CHECK_EQ(cosync_io_write(&regular_io, "de", 2, FOREVER), 2);
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_io_close(&regular_io));
    return 0;
}

/* A regular file: epoll refuses it, so a wait says EPERM; reads and
 * writes go through at once. */
TEST(a_regular_file_cannot_be_waited_on)
{
    snprintf(regular_path, sizeof regular_path, "%s/regular", tmpdir);
    int fd = open(regular_path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    CHECK_GE(fd, 0);
    CHECK_EQ(write(fd, "abc", 3), 3);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    CHECK_OK(cosync_io_init(&regular_io, fd));
    run_main_ok(regular_main, NULL);
    CHECK(fd_closed(fd));
    struct stat st;
    CHECK_EQ(stat(regular_path, &st), 0);
    CHECK_EQ(st.st_size, 5);
    CHECK_EQ(unlink(regular_path), 0);
}

/* ------------------------------------------------------------------------
 * Two loops: a handle is its first loop's until it is closed
 * ---------------------------------------------------------------------- */

static pair home_pair;

static int home_register(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_io_wait(&home_pair.io, WRITE, FOREVER), WRITE);
    return 0;
}

static int foreign_use(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &home_pair;
    char c;
    CHECK_ERR(cosync_io_wait(&p->io, READ, FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_io_wait(&p->io, WRITE, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_io_read(&p->io, &c, 1, FOREVER), COSYNC_EPERM); /* nothing to read */
    CHECK_ERR(cosync_io_close(&p->io), COSYNC_EPERM);
    CHECK_ERR(cosync_io_release(&p->io), COSYNC_EPERM);
    CHECK_EQ(io_waiters(), 0);
    /* nothing changed */
    CHECK_EQ(cosync_io_fd(&p->io), p->fd);
    CHECK(fd_open(p->fd));
    return 0;
}

static int home_use(void *arg, void **result)
{
    (void)arg, (void)result;
    put(&home_pair, "h");
    CHECK_EQ(cosync_io_wait(&home_pair.io, READ, FOREVER), READ); /* still on this loop's epoll */
    char c;
    CHECK_EQ(cosync_io_read(&home_pair.io, &c, 1, 0), 1);
    CHECK_EQ(c, 'h');
    return 0;
}

/* A task of another loop than the handle's: EPERM for a wait, a close and
 * a release, and nothing changes; the handle's own loop goes on using it. */
TEST(a_task_of_another_loop_gets_eperm)
{
    pair_open(&home_pair);
    cosync_loop *home = new_loop();
    cosync_loop *other = new_loop();
    run_on(home, home_register, NULL);
    run_on(other, foreign_use, NULL);
    run_on(home, home_use, NULL);
    end_loop(other);
    /* from outside any loop, while its loop does not run: allowed */
    pair_close(&home_pair);
    end_loop(home);
}

/* ------------------------------------------------------------------------
 * One reader and one writer at a time
 * ---------------------------------------------------------------------- */

static pair busy_pair;

static int busy_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[8];
    log_add(1);
    ssize_t n = cosync_io_read(&busy_pair.io, buf, sizeof buf, FOREVER);
    log_add(10);
    CHECK_EQ(n, 2);
    CHECK_EQ(memcmp(buf, "hi", 2), 0);
    return 0;
}

static int busy_intruder(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &busy_pair;
    char buf[8];
    log_add(2);
    uint64_t before = switches();
    CHECK_ERR(cosync_io_wait(&p->io, READ, FOREVER), COSYNC_EBUSY);
    CHECK_ERR(cosync_io_wait(&p->io, READ | WRITE, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_io_wait(&p->io, READ, cosync_deadline_after(COSYNC_SEC(1))), COSYNC_EBUSY);
    CHECK_ERR(cosync_io_read(&p->io, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
    CHECK_ERR(cosync_sock_recv(&p->io, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
    CHECK_EQ(switches(), before);
    CHECK_EQ(io_waiters(), 1); /* the reader */
    /* what the dump says the reader waits on */
    char want[64];
    snprintf(want, sizeof want, "waits on fd %d (read)", p->fd);
    int ntasks;
    char *dump = dump_text(&ntasks);
    CHECK_NOTNULL(strstr(dump, want));
    free(dump);
    /* a writer at the same time is fine */
    CHECK_EQ(cosync_io_wait(&p->io, WRITE, FOREVER), WRITE);
    log_add(3);
    CHECK_EQ(cosync_io_write(&p->io, "ok", 2, FOREVER), 2);
    put(p, "hi");
    log_add(4);
    return 0;
}

/* A second reader while one waits: EBUSY (trio's rule), for every kind
 * of wait; a writer meanwhile waits and writes. */
TEST(a_second_reader_gets_ebusy_and_a_writer_is_fine)
{
    log_reset();
    pair_open(&busy_pair);
    cosync_loop *loop = new_loop();
    cosync_task r, i;
    CHECK_OK(cosync_loop_spawn(loop, &r, busy_reader, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &i, busy_intruder, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, i, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, r, NULL, NULL));
    end_loop(loop);
    CHECK_LOG(1, 2, 3, 4, 10);
    peer_expect(&busy_pair, "ok");
    pair_close(&busy_pair);
}

static pair full_pair;

static int both_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    int rc = cosync_io_wait(&full_pair.io, READ | WRITE, FOREVER);
    log_add(5);
    CHECK_EQ(rc, READ); /* its buffer is still full: only READ */
    return 0;
}

static int both_intruder(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &full_pair;
    log_add(2);
    CHECK_ERR(cosync_io_wait(&p->io, WRITE, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_io_wait(&p->io, READ, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_io_write(&p->io, "x", 1, FOREVER), COSYNC_EBUSY); /* full: it would wait */
    CHECK_EQ(io_waiters(), 1);                                         /* counted once */
    char want[64];
    snprintf(want, sizeof want, "waits on fd %d (read or write)", p->fd);
    int ntasks;
    char *dump = dump_text(&ntasks);
    CHECK_NOTNULL(strstr(dump, want));
    free(dump);
    log_add(3);
    put(p, "r");
    log_add(4);
    return 0;
}

/* A task waiting for both directions holds both: a reader and a writer
 * get EBUSY; it is woken with the readiness that came (READ only). */
TEST(a_wait_for_both_directions_holds_both)
{
    log_reset();
    pair_open(&full_pair);
    size_t filled = fill(full_pair.fd);
    CHECK_GT(filled, 0);
    cosync_loop *loop = new_loop();
    cosync_task w, i;
    CHECK_OK(cosync_loop_spawn(loop, &w, both_waiter, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &i, both_intruder, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, i, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, w, NULL, NULL));
    end_loop(loop);
    CHECK_LOG(1, 2, 3, 4, 5);
    CHECK_EQ(drain(full_pair.peer), filled);
    pair_close(&full_pair);
}

/* ------------------------------------------------------------------------
 * Readiness
 * ---------------------------------------------------------------------- */

static pair rd_pair;

static int rd_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    int rc = cosync_io_wait(&rd_pair.io, READ, FOREVER);
    log_add(3);
    CHECK_EQ(rc, READ);
    CHECK_EQ(io_waiters(), 0);
    char c;
    CHECK_EQ(cosync_io_read(&rd_pair.io, &c, 1, 0), 1);
    CHECK_EQ(c, 'x');
    return 0;
}

static int rd_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(io_waiters(), 1);
    log_add(2);
    put(&rd_pair, "x");
    return 0;
}

static int readiness_main(void *arg, void **result)
{
    (void)arg, (void)result;
    log_reset();
    pair_open(&rd_pair);
    cosync_task w = spawn(rd_waiter, NULL);
    cosync_task x = spawn(rd_writer, NULL);
    join_ok(w);
    join_ok(x);
    CHECK_LOG(1, 2, 3);

    /* a fresh socket is writable: the first wait may take one poll */
    pair *p = &rd_pair;
    CHECK_EQ(cosync_io_wait(&p->io, WRITE, FOREVER), WRITE);
    /* taken: the next wait (not a try, which looks at the descriptor
     * itself) would wait */
    CHECK_EQ(p->io.ready & WRITE, 0);
    CHECK_EQ(cosync_io_wait(&p->io, WRITE, 0), WRITE); /* a try: writable now */
    pair_close(p);

    /* both bits in one wait, on a fresh handle with data queued */
    pair_open(p);
    put(p, "y");
    CHECK_EQ(cosync_io_wait(&p->io, READ | WRITE, FOREVER), READ | WRITE);
    CHECK_EQ(p->io.ready, 0);
    pair_close(p);

    /* both asked for, one there: that one */
    pair_open(p);
    CHECK_EQ(cosync_io_wait(&p->io, READ | WRITE, FOREVER), WRITE);
    pair_close(p);
    CHECK_EQ(io_waiters(), 0);
    return 0;
}

/* A task waits READ on a socketpair, another writes: the waiter gets
 * COSYNC_IO_READ after the write. WRITE readiness on a fresh socket; both
 * bits in one wait. */
TEST(readiness_on_a_socketpair)
{
    run_main_ok(readiness_main, NULL);
}

static pair edge_pair, edge_other;

static int edge_writer(void *arg, void **result)
{
    (void)result;
    put(arg, "y");
    return 0;
}

static int edge_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *e = &edge_pair, *g = &edge_other;
    pair_open(e);
    pair_open(g);
    CHECK_EQ(cosync_io_wait(&e->io, WRITE, FOREVER), WRITE); /* registered, WRITE taken */
    CHECK_EQ(cosync_io_wait(&g->io, WRITE, FOREVER), WRITE); /* g too, before its data */
    put(e, "x"); /* READ readiness comes while no task waits on e */
    put(g, "g");
    /* the loop looks at epoll for g's waiter: e's edge comes in too */
    CHECK_EQ(cosync_io_wait(&g->io, READ, FOREVER), READ);
    uint64_t before = switches();
    CHECK_EQ(cosync_io_wait(&e->io, READ, FOREVER), READ);   /* kept: at once */
    CHECK_EQ(cosync_io_wait(&e->io, WRITE, FOREVER), WRITE); /* the same edge said writable */
    CHECK_EQ(switches(), before);
    /* taken: the next wait waits, though the byte is still unread (a
     * try, which looks at the descriptor itself, says it is there) */
    CHECK_EQ(cosync_io_wait(&e->io, READ, 0), READ);
    int64_t deadline = cosync_deadline_after(COSYNC_SEC(1));
    CHECK_ERR(cosync_io_wait(&e->io, READ, deadline), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), deadline);
    char buf[4];
    CHECK_EQ(cosync_io_read(&e->io, buf, sizeof buf, 0), 1); /* the data was there all along */
    CHECK_EQ(buf[0], 'x');
    /* a new edge: the wait suspends until it comes */
    cosync_task w = spawn(edge_writer, e);
    before = switches();
    CHECK_EQ(cosync_io_wait(&e->io, READ, FOREVER), READ);
    CHECK_GT(switches(), before);
    join_ok(w);
    CHECK_EQ(cosync_io_read(&e->io, buf, sizeof buf, 0), 1);
    CHECK_EQ(buf[0], 'y');
    pair_close(e);
    pair_close(g);
    return 0;
}

/* Edge-triggered, as io.h says: readiness that came while nobody waited is
 * kept and taken by the next wait, which returns at once (no switch); a
 * wait after it was taken suspends. */
TEST(readiness_that_came_while_nobody_waited_is_kept_until_taken)
{
    run_main_ok(edge_main, NULL);
}

/* ------------------------------------------------------------------------
 * Deadlines
 * ---------------------------------------------------------------------- */

static pair dl_pair;

static int late_writer(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    put(&dl_pair, arg);
    return 0;
}

static int deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &dl_pair;
    pair_open(p);
    char buf[8];

    /* deadline 0: EAGAIN without suspending (the first one registers) */
    uint64_t before = switches();
    int64_t t0 = cosync_now();
    CHECK_ERR(cosync_io_wait(&p->io, READ, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_io_wait(&p->io, READ, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_io_read(&p->io, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_sock_recv(&p->io, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(io_waiters(), 0);

    /* a finite deadline, nothing written: ETIMEDOUT at that very time */
    int64_t dl = t0 + COSYNC_SEC(5);
    CHECK_ERR(cosync_io_wait(&p->io, READ, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    dl = cosync_now() + COSYNC_MS(250);
    CHECK_ERR(cosync_io_read(&p->io, buf, sizeof buf, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    CHECK_EQ(io_waiters(), 0);
    CHECK_EQ(armed_timers(), 0);

    /* a deadline that has passed: ETIMEDOUT, and time stands */
    int64_t now = cosync_now();
    CHECK_ERR(cosync_io_wait(&p->io, READ, now), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_io_wait(&p->io, READ, now - COSYNC_SEC(1)), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_io_read(&p->io, buf, sizeof buf, now - 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), now);
    CHECK_EQ(io_waiters(), 0);

    /* a write that cannot go: the same for WRITE */
    size_t filled = fill(p->fd);
    dl = cosync_now() + COSYNC_SEC(2);
    CHECK_ERR(cosync_io_write(&p->io, "w", 1, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    CHECK_EQ(drain(p->peer), filled); /* nothing more went */

    /* data written before the deadline by another task: success, then */
    t0 = cosync_now();
    cosync_task w = spawn(late_writer, "late");
    CHECK_EQ(cosync_io_wait(&p->io, READ, t0 + COSYNC_SEC(5)), READ);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    join_ok(w);
    CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, 0), 4);
    CHECK_EQ(memcmp(buf, "late", 4), 0);
    t0 = cosync_now();
    w = spawn(late_writer, "later");
    CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, t0 + COSYNC_SEC(5)), 5);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    CHECK_EQ(memcmp(buf, "later", 5), 0);
    join_ok(w);
    CHECK_EQ(armed_timers(), 0); /* the granted waits' timers are gone */
    pair_close(p);
    return 0;
}

/* Deadline 0: EAGAIN without a switch; a finite deadline with nothing
 * written: ETIMEDOUT at exactly that time; one that has passed:
 * ETIMEDOUT; data written before the deadline: success. */
TEST(deadlines)
{
    run_main_ok(deadline_main, NULL);
}

/* ------------------------------------------------------------------------
 * Cancellation
 * ---------------------------------------------------------------------- */

static pair cn_pair;
static int cn_rc;

static int cn_wait_victim(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    cn_rc = cosync_io_wait(&cn_pair.io, READ, FOREVER);
    log_add(3);
    return cn_rc;
}

static int cn_read_victim(void *arg, void **result)
{
    (void)result;
    char buf[16];
    int64_t deadline = arg ? cosync_deadline_after(COSYNC_SEC(10)) : FOREVER;
    cn_rc = (int)cosync_io_read(&cn_pair.io, buf, sizeof buf, deadline);
    return cn_rc;
}

static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &cn_pair;
    pair_open(p);
    char buf[16];

    /* blocked in cosync_io_wait */
    log_reset();
    cosync_task v = spawn(cn_wait_victim, NULL);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    log_add(2);
    CHECK_OK(cosync_task_cancel(v));
    join_expect(v, COSYNC_ECANCELED);
    CHECK_ERR(cn_rc, COSYNC_ECANCELED);
    CHECK_LOG(1, 2, 3);
    CHECK_EQ(io_waiters(), 0);
    /* the handle is free for another reader */
    put(p, "z");
    CHECK_EQ(cosync_io_wait(&p->io, READ, FOREVER), READ);
    CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, 0), 1);

    /* blocked in cosync_io_read (without, then with a deadline): the data
     * that came just before the cancel is all there for the next read */
    for (int timed = 0; timed < 2; timed++) {
        cn_rc = 12345;
        v = spawn(cn_read_victim, timed ? "timed" : NULL);
        CHECK_OK(cosync_yield());
        CHECK_EQ(io_waiters(), 1);
        put(p, "hello");
        CHECK_OK(cosync_task_cancel(v));
        join_expect(v, COSYNC_ECANCELED);
        CHECK_ERR(cn_rc, COSYNC_ECANCELED);
        CHECK_EQ(io_waiters(), 0);
        CHECK_EQ(armed_timers(), 0);
        CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, FOREVER), 5);
        CHECK_EQ(memcmp(buf, "hello", 5), 0);
    }
    pair_close(p);
    return 0;
}

/* Cancel a task blocked in cosync_io_wait or cosync_io_read: ECANCELED,
 * the handle is free for another reader (no EBUSY), no byte consumed. */
TEST(a_cancelled_wait_frees_the_handle_and_consumes_nothing)
{
    run_main_ok(cancel_main, NULL);
}

static pair late_pair;
static ssize_t late_n;
static int late_after;

static int late_cancel_reader(void *arg, void **result)
{
    (void)result;
    char buf[16];
    if (arg) {
        late_n = cosync_io_wait(&late_pair.io, READ, FOREVER);
    } else {
        late_n = cosync_io_read(&late_pair.io, buf, sizeof buf, FOREVER);
        if (late_n == 4)
            CHECK_EQ(memcmp(buf, "data", 4), 0);
    }
    late_after = cosync_yield(); /* the next suspension: the cancel comes here */
    return late_after;
}

static int late_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &late_pair;
    pair_open(p);
    for (int waits = 0; waits < 2; waits++) {
        late_n = 12345;
        late_after = 12345;
        cosync_task r = spawn(late_cancel_reader, waits ? "wait" : NULL);
        CHECK_OK(cosync_yield());
        CHECK_EQ(io_waiters(), 1);
        put(p, "data");
        /* yield until the loop's look at I/O has granted the reader: it is
         * then ready, behind this task, and has not run */
        int i;
        for (i = 0; i < 100000 && ready_tasks() == 0; i++)
            CHECK_OK(cosync_yield());
        CHECK_EQ(ready_tasks(), 1);
        CHECK_EQ(io_waiters(), 0);
        CHECK_EQ(late_n, 12345);
        CHECK_OK(cosync_task_cancel(r));
        join_expect(r, COSYNC_ECANCELED);
        CHECK_EQ(late_n, waits ? READ : 4); /* the transfer completed */
        CHECK_ERR(late_after, COSYNC_ECANCELED);
        if (waits) {
            char buf[8];
            CHECK_EQ(cosync_io_read(&p->io, buf, sizeof buf, 0), 4);
        }
        CHECK_EQ(drain(p->fd), 0);
    }
    pair_close(p);
    return 0;
}

/* A cancel that comes after the grant (the data came, the reader was made
 * ready, then cancelled before it ran): the read returns the data, the
 * wait its readiness, and the cancel comes at the next suspension. */
TEST(a_cancel_after_the_grant_lets_the_transfer_complete)
{
    run_main_ok(late_cancel_main, NULL);
}

static bool never_ran;

static int never_runs(void *arg, void **result)
{
    (void)arg, (void)result;
    never_ran = false;
    char c;
    return (int)cosync_io_read(&cn_pair.io, &c, 1, FOREVER);
}

static int cancel_early_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &cn_pair;
    pair_open(p);
    never_ran = true;
    cosync_task t = spawn(never_runs, NULL);
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    CHECK(never_ran);
    CHECK_EQ(io_waiters(), 0);
    put(p, "q");
    char c;
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, FOREVER), 1);
    CHECK_EQ(c, 'q');

    /* a cancel pending when the call begins: a read that has data
     * completes (no suspension, the cancel stays pending); deadline 0
     * leaves it pending too; the first suspension delivers it */
    cosync_task self = cosync_task_current();
    put(p, "ab");
    CHECK_OK(cosync_task_cancel(self));
    uint64_t before = switches();
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, FOREVER), 1);
    CHECK_EQ(c, 'a');
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, FOREVER), 1);
    CHECK_EQ(c, 'b');
    CHECK_ERR(cosync_io_read(&p->io, &c, 1, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);
    CHECK_EQ(cosync_task_cancelling(self), 1);
    CHECK_ERR(cosync_io_read(&p->io, &c, 1, FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(self), 0);
    CHECK_EQ(io_waiters(), 0);
    /* and nothing of that wait is left */
    put(p, "c");
    CHECK_EQ(cosync_io_wait(&p->io, READ, FOREVER), READ);
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, 0), 1);
    CHECK_EQ(c, 'c');
    pair_close(p);
    return 0;
}

/* A task cancelled before its first run never reads; a cancel pending
 * before the call: a transfer that can complete does, the first
 * suspension delivers it. */
TEST(a_cancel_before_the_first_run_or_before_the_call)
{
    run_main_ok(cancel_early_main, NULL);
}

/* ------------------------------------------------------------------------
 * Close and release while tasks wait
 * ---------------------------------------------------------------------- */

static pair cl_pair;

static int cl_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[8];
    log_add(1);
    ssize_t n = cosync_io_read(&cl_pair.io, buf, sizeof buf, FOREVER);
    CHECK_ERR(n, COSYNC_EBADF);
    log_add(5);
    return 0;
}

static int cl_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(2);
    ssize_t n = cosync_io_write(&cl_pair.io, "w", 1, cosync_deadline_after(COSYNC_SEC(10)));
    CHECK_ERR(n, COSYNC_EBADF);
    log_add(6);
    return 0;
}

static int cl_both(void *arg, void **result)
{
    (void)result;
    log_add(1);
    CHECK_ERR(cosync_io_wait(arg, READ | WRITE, FOREVER), COSYNC_EBADF);
    log_add(4);
    return 0;
}

static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &cl_pair;
    pair_open(p);
    size_t filled = fill(p->fd);
    log_reset();
    cosync_task r = spawn(cl_reader, NULL);
    cosync_task w = spawn(cl_writer, NULL);
    int64_t t0 = cosync_now();
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 2);
    log_add(3);
    CHECK_OK(cosync_io_close(&p->io));
    CHECK(fd_closed(p->fd));
    CHECK_EQ(io_waiters(), 0);
    log_add(4);
    join_ok(r);
    join_ok(w);
    CHECK_LOG(1, 2, 3, 4, 5, 6);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(armed_timers(), 0);
    CHECK_OK(cosync_io_close(&p->io));
    CHECK_ERR(cosync_io_wait(&p->io, READ, FOREVER), COSYNC_EBADF);
    CHECK_EQ(drain(p->peer), filled);
    pair_close_peer(p);

    /* one task waiting for both: woken once */
    pair_open(p);
    fill(p->fd);
    log_reset();
    cosync_task b = spawn(cl_both, &p->io);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    log_add(2);
    CHECK_OK(cosync_io_close(&p->io));
    CHECK_EQ(io_waiters(), 0);
    log_add(3);
    join_ok(b);
    CHECK_LOG(1, 2, 3, 4);
    pair_close_peer(p);
    return 0;
}

/* cosync_io_close by one task while a reader and a writer (with a
 * deadline) wait: both get EBADF, in that order, after the closer goes
 * on; the descriptor is closed; a task waiting both ways is woken once. */
TEST(a_close_ends_the_waits_with_ebadf)
{
    run_main_ok(close_main, NULL);
}

static pair rl_pair;

static int rl_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    CHECK_ERR(cosync_io_wait(&rl_pair.io, READ, FOREVER), COSYNC_EBADF);
    log_add(4);
    return 0;
}

static int release_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &rl_pair;
    pair_open(p);
    log_reset();
    cosync_task r = spawn(rl_reader, NULL);
    CHECK_OK(cosync_yield());
    log_add(2);
    int fd = cosync_io_release(&p->io);
    CHECK_EQ(fd, p->fd);
    CHECK(fd_open(fd));
    CHECK(fd_nonblocking(fd));
    CHECK_EQ(io_waiters(), 0);
    log_add(3);
    join_ok(r);
    CHECK_LOG(1, 2, 3, 4);
    CHECK_ERR(cosync_io_release(&p->io), COSYNC_EBADF);
    CHECK_ERR(cosync_io_fd(&p->io), COSYNC_EBADF);
    CHECK_OK(cosync_io_close(&p->io)); /* closed already: the descriptor is untouched */
    CHECK(fd_open(fd));
    /* off the loop's epoll: a new handle of it registers again and works */
    cosync_io again;
    CHECK_OK(cosync_io_init(&again, fd));
    put(p, "r");
    CHECK_EQ(cosync_io_wait(&again, READ, FOREVER), READ);
    char c;
    CHECK_EQ(cosync_io_read(&again, &c, 1, 0), 1);
    CHECK_EQ(c, 'r');
    CHECK_OK(cosync_io_close(&again));
    CHECK(fd_closed(fd));
    pair_close_peer(p);
    return 0;
}

/* cosync_io_release while a task waits: the waiter gets EBADF, the
 * descriptor comes back open and non-blocking, and is off the epoll. */
TEST(a_release_ends_the_waits_and_returns_the_descriptor)
{
    run_main_ok(release_main, NULL);
}

static pair out_pair;

static int out_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_io_wait(&out_pair.io, READ, FOREVER);
}

static int out_starter(void *arg, void **result)
{
    (void)result;
    *(cosync_task *)arg = spawn(out_reader, NULL);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    return 0;
}

/* A close from outside the loop while it does not run: the waiter gets
 * EBADF at the loop's next run. */
TEST(a_close_between_runs_ends_the_wait_at_the_next_run)
{
    pair_open(&out_pair);
    cosync_loop *loop = new_loop();
    cosync_task r;
    run_on(loop, out_starter, &r);
    CHECK_OK(cosync_io_close(&out_pair.io));
    CHECK(fd_closed(out_pair.fd));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, r, &status, NULL));
    CHECK_ERR(status, COSYNC_EBADF);
    end_loop(loop);
    pair_close_peer(&out_pair);
}

/* ------------------------------------------------------------------------
 * The end of a stream; writes of many bytes
 * ---------------------------------------------------------------------- */

static pair eof_pair;

static int eof_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[8];
    log_add(1);
    CHECK_EQ(cosync_io_read(&eof_pair.io, buf, sizeof buf, FOREVER), 0);
    log_add(3);
    CHECK_EQ(cosync_io_read(&eof_pair.io, buf, sizeof buf, 0), 0); /* at once */
    CHECK_EQ(cosync_sock_recv(&eof_pair.io, buf, sizeof buf, 0), 0);
    return 0;
}

static int eof_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &eof_pair;
    pair_open(p);
    log_reset();
    cosync_task r = spawn(eof_reader, NULL);
    CHECK_OK(cosync_yield());
    log_add(2);
    pair_close_peer(p);
    join_ok(r);
    CHECK_LOG(1, 2, 3);
    /* a send to the peer that has gone: EPIPE, and no SIGPIPE */
    CHECK_ERR(cosync_sock_send(&p->io, "x", 1, FOREVER), COSYNC_EPIPE);
    size_t sent = 99;
    CHECK_ERR(cosync_sock_sendall(&p->io, "xyz", 3, &sent, FOREVER), COSYNC_EPIPE);
    CHECK_EQ(sent, 0);
    CHECK_OK(cosync_io_close(&p->io));

    /* the end of the stream is readable and writable */
    pair_open(p);
    pair_close_peer(p);
    CHECK_EQ(cosync_io_wait(&p->io, READ | WRITE, FOREVER), READ | WRITE);
    CHECK_OK(cosync_io_close(&p->io));
    return 0;
}

/* cosync_io_read returns 0 at the end of the stream (the peer closed),
 * and again at once; a send then says EPIPE without killing the process. */
TEST(a_read_at_the_end_of_the_stream_returns_0)
{
    run_main_ok(eof_main, NULL);
}

static int pipe_fds[2];
static cosync_io pipe_r, pipe_w;

static int pipe_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[8];
    log_add(1);
    CHECK_EQ(cosync_io_read(&pipe_r, buf, sizeof buf, FOREVER), 3);
    log_add(3);
    CHECK_EQ(memcmp(buf, "abc", 3), 0);
    CHECK_EQ(cosync_io_read(&pipe_r, buf, sizeof buf, FOREVER), 0);
    log_add(5);
    return 0;
}

static int pipe_main(void *arg, void **result)
{
    (void)arg, (void)result;
    log_reset();
    CHECK_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    CHECK_OK(cosync_io_init(&pipe_r, pipe_fds[0]));
    CHECK_OK(cosync_io_init(&pipe_w, pipe_fds[1]));
    cosync_task r = spawn(pipe_reader, NULL);
    CHECK_OK(cosync_yield());
    log_add(2);
    CHECK_EQ(cosync_io_write(&pipe_w, "abc", 3, FOREVER), 3);
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* nothing to run: the loop looks at I/O */
    log_add(4);
    CHECK_OK(cosync_io_close(&pipe_w));
    join_ok(r);
    CHECK_LOG(1, 2, 3, 4, 5);

    /* a write to a pipe whose reader has gone: EPIPE, where the program
     * ignores SIGPIPE (write(2) raises it otherwise, as io.h says) */
    CHECK_EQ(pipe2(pipe_fds, O_CLOEXEC), 0);
    CHECK_OK(cosync_io_init(&pipe_w, pipe_fds[1]));
    CHECK_EQ(close(pipe_fds[0]), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    CHECK_EQ(sigaction(SIGPIPE, &ign, &old), 0);
    ssize_t n = cosync_io_write(&pipe_w, "x", 1, FOREVER);
    CHECK_EQ(sigaction(SIGPIPE, &old, NULL), 0);
    CHECK_ERR(n, COSYNC_EPIPE);
    CHECK_OK(cosync_io_close(&pipe_r));
    CHECK_OK(cosync_io_close(&pipe_w));
    return 0;
}

/* A pipe: a reader waits for the writer's bytes, then for its close (0). */
TEST(a_pipe_between_two_tasks)
{
    run_main_ok(pipe_main, NULL);
}

#define BIG ((size_t)4 << 20)
static unsigned char *big_out;
static pair big_pair;
static cosync_io big_peer;

static int big_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t written = 12345;
    CHECK_OK(cosync_io_write_all(&big_pair.io, big_out, BIG, &written, FOREVER));
    CHECK_EQ(written, BIG);
    CHECK_OK(cosync_sock_shutdown(&big_pair.io, SHUT_WR));
    return 0;
}

static int big_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    static unsigned char in[100000];
    static const size_t chunks[] = {1, 7, 4096, 65536, 100000, 333, 12345};
    size_t got = 0;
    int reads = 0;
    for (;;) {
        size_t want = chunks[reads % (sizeof chunks / sizeof chunks[0])];
        ssize_t n = cosync_io_read(&big_peer, in, want, FOREVER);
        CHECK_GE(n, 0);
        if (n == 0)
            break;
        CHECK_LE((size_t)n, want);
        check_pattern(in, (size_t)n, 1, got);
        got += (size_t)n;
        CHECK_LE(got, BIG);
        reads++;
    }
    CHECK_EQ(got, BIG);
    CHECK_GT(reads, 1);
    return 0;
}

static int big_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &big_pair;
    pair_open(p);
    CHECK_OK(cosync_io_init(&big_peer, p->peer));
    cosync_task r = spawn(big_reader, NULL);
    cosync_task w = spawn(big_writer, NULL);
    join_ok(w);
    join_ok(r);
    CHECK_OK(cosync_io_close(&big_peer));
    CHECK(fd_closed(p->peer));
    p->peer = -1;
    CHECK_OK(cosync_io_close(&p->io));
    return 0;
}

/* cosync_io_write_all of 4 MiB through a socketpair while a task reads in
 * chunks of many sizes: every byte arrives, in order; *written is all. */
TEST(write_all_of_many_bytes_arrives_in_order)
{
    big_out = malloc(BIG);
    CHECK_NOTNULL(big_out);
    fill_pattern(big_out, BIG, 1);
    run_main_ok(big_main, NULL);
    free(big_out);
}

static pair part_pair;
static size_t part_written;
static int part_rc;

static int part_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    part_rc = cosync_io_write_all(&part_pair.io, big_out, BIG, &part_written, FOREVER);
    return part_rc;
}

/* Read what the peer has: it must be the first @n bytes of stream 2. */
static void peer_has_prefix(pair *p, size_t n)
{
    static unsigned char in[65536];
    size_t got = 0;
    for (;;) {
        ssize_t k = read(p->peer, in, sizeof in);
        if (k < 0) {
            CHECK_EQ(errno, EAGAIN);
            break;
        }
        CHECK_GT(k, 0);
        check_pattern(in, (size_t)k, 2, got);
        got += (size_t)k;
    }
    CHECK_EQ(got, n);
}

static int partial_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &part_pair;

    /* cosync_io_write may write fewer bytes: what fits, at once */
    pair_open(p);
    uint64_t before = switches();
    ssize_t n = cosync_io_write(&p->io, big_out, BIG, FOREVER);
    CHECK_EQ(switches(), before);
    CHECK_GT(n, 0);
    CHECK_LT((size_t)n, BIG);
    peer_has_prefix(p, (size_t)n);
    pair_close(p);

    /* write_all with a deadline the peer lets pass: ETIMEDOUT at it, and
     * *written says how much went, which the peer then reads */
    pair_open(p);
    size_t written = 0;
    int64_t dl = cosync_deadline_after(COSYNC_SEC(3));
    CHECK_ERR(cosync_io_write_all(&p->io, big_out, BIG, &written, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    CHECK_GT(written, 0);
    CHECK_LT(written, BIG);
    peer_has_prefix(p, written);
    pair_close(p);

    /* the same with deadline 0: EAGAIN once the buffer is full */
    pair_open(p);
    written = 0;
    CHECK_ERR(cosync_io_write_all(&p->io, big_out, BIG, &written, 0), COSYNC_EAGAIN);
    CHECK_GT(written, 0);
    peer_has_prefix(p, written);
    pair_close(p);

    /* and cancelled while it waits */
    pair_open(p);
    part_written = 0;
    part_rc = 12345;
    cosync_task w = spawn(part_writer, NULL);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    CHECK_OK(cosync_task_cancel(w));
    join_expect(w, COSYNC_ECANCELED);
    CHECK_ERR(part_rc, COSYNC_ECANCELED);
    CHECK_GT(part_written, 0);
    CHECK_LT(part_written, BIG);
    peer_has_prefix(p, part_written);
    pair_close(p);
    return 0;
}

/* cosync_io_write writes what fits; cosync_io_write_all stopped by a
 * deadline (or deadline 0, or a cancel) says in *written how much went,
 * exactly what the peer can read. */
TEST(write_all_stopped_early_says_how_much_went)
{
    big_out = malloc(BIG);
    CHECK_NOTNULL(big_out);
    fill_pattern(big_out, BIG, 2);
    run_main_ok(partial_main, NULL);
    free(big_out);
}

/* ------------------------------------------------------------------------
 * Deadlock detection and busy loops
 * ---------------------------------------------------------------------- */

static pair nd_pair;

static int nd_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    CHECK_EQ(cosync_io_wait(&nd_pair.io, READ, FOREVER), READ);
    log_add(4);
    return 0;
}

static int nd_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(2);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    log_add(3);
    put(&nd_pair, "n");
    return 0;
}

static int no_deadlock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    log_reset();
    pair_open(&nd_pair);
    cosync_task w = spawn(nd_waiter, NULL);
    cosync_task x = spawn(nd_writer, NULL);
    join_ok(x);
    /* only the I/O waiter is left, no timer: not a deadlock */
    CHECK_EQ(armed_timers(), 0);
    join_ok(w);
    CHECK_LOG(1, 2, 3, 4);
    pair_close(&nd_pair);
    return 0;
}

/* A task waiting on I/O with no timer keeps the loop from reporting a
 * deadlock. */
TEST(a_task_waiting_on_io_is_no_deadlock)
{
    run_main_ok(no_deadlock_main, NULL);
}

static pair dd_pair;
static cosync_event dd_never;
static int dd_rc;

static int dd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_io_wait(&dd_pair.io, WRITE, FOREVER), WRITE); /* registered */
    put(&dd_pair, "d"); /* readiness comes, nobody waits for it */
    dd_rc = cosync_event_wait(&dd_never, FOREVER);
    CHECK_OK(cosync_io_close(&dd_pair.io));
    return dd_rc;
}

/* A registered handle that no task waits on does not hide a deadlock:
 * the only task blocked on an event nobody sets is reported (EDEADLK). */
TEST(a_registered_handle_nobody_waits_on_does_not_hide_a_deadlock)
{
    pair_open(&dd_pair);
    cosync_event_init(&dd_never);
    dd_rc = 12345;
    capture c;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&c, dd_main, NULL, "main", &m);
    const char *text = capture_text(&c);
    CHECK_NOTNULL(strstr(text, "deadlock"));
    CHECK_NOTNULL(strstr(text, "'main'"));
    CHECK(fd_open(dd_pair.fd));
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels main, which closes */
    CHECK_ERR(dd_rc, COSYNC_ECANCELED);
    CHECK(fd_closed(dd_pair.fd));
    capture_free(&c);
    pair_close_peer(&dd_pair);
}

#define YIELDS 100000
static pair busy_io_pair;
static long yields_done;
static long woke_at;

static int busy_yielder(void *arg, void **result)
{
    (void)arg, (void)result;
    for (long i = 0; i < YIELDS; i++) {
        yields_done = i;
        CHECK_OK(cosync_yield());
    }
    yields_done = YIELDS;
    return 0;
}

static int busy_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_io_wait(&busy_io_pair.io, READ, FOREVER), READ);
    woke_at = yields_done;
    return 0;
}

static int busy_put(void *arg, void **result)
{
    (void)arg, (void)result;
    put(&busy_io_pair, "b");
    return 0;
}

static int busy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair_open(&busy_io_pair);
    yields_done = 0;
    woke_at = -1;
    cosync_task w = spawn(busy_waiter, NULL);
    cosync_task p = spawn(busy_put, NULL);
    cosync_task y = spawn(busy_yielder, NULL);
    join_ok(w);
    join_ok(p);
    join_ok(y);
    pair_close(&busy_io_pair);
    return 0;
}

/* While a task yields without end, a waiter whose data was written by a
 * third task is still woken: the loop looks at I/O every few turns, even
 * with tasks ready (io.md: every 16 turns of up to 128 steps). */
TEST(a_busy_loop_does_not_keep_a_reader_waiting)
{
    run_main_ok(busy_main, NULL);
    CHECK_GE(woke_at, 0);
    CHECK_LT(woke_at, YIELDS - 1); /* before the yielder's last yield */
    CHECK_LE(woke_at, 2 * 16 * COSYNC__BUDGET);
}

/* ------------------------------------------------------------------------
 * The loop destroyed while handles are registered
 * ---------------------------------------------------------------------- */

static pair ld_blocked, ld_idle;
static int ld_rc;

static int ld_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    ld_rc = cosync_io_wait(&ld_blocked.io, READ, FOREVER);
    return ld_rc;
}

static int ld_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_io_wait(&ld_idle.io, WRITE, FOREVER), WRITE); /* registered, idle */
    CHECK_OK(cosync_task_spawn(NULL, ld_waiter, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    return 0;
}

static int ld_reuse(void *arg, void **result)
{
    (void)arg, (void)result;
    put(&ld_blocked, "n");
    CHECK_EQ(cosync_io_wait(&ld_blocked.io, READ, FOREVER), READ);
    char c;
    CHECK_EQ(cosync_io_read(&ld_blocked.io, &c, 1, 0), 1);
    CHECK_EQ(c, 'n');
    return 0;
}

/* cosync_loop_destroy with a task blocked on a handle: the task's wait
 * returns ECANCELED; the handles are cut loose (descriptors open), can be
 * closed afterwards, or registered with a new loop and used there. */
TEST(a_destroyed_loop_cuts_its_handles_loose)
{
    pair_open(&ld_blocked);
    pair_open(&ld_idle);
    ld_rc = 12345;
    cosync_loop *loop = new_loop();
    run_on(loop, ld_main, NULL);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(ld_rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_io_fd(&ld_blocked.io), ld_blocked.fd);
    CHECK_EQ(cosync_io_fd(&ld_idle.io), ld_idle.fd);
    CHECK(fd_open(ld_blocked.fd));
    CHECK(fd_open(ld_idle.fd));
    pair_close(&ld_idle); /* closes it */

    cosync_loop *next = new_loop();
    run_on(next, ld_reuse, NULL);
    /* registered with this one now: destroyed too, cut loose again */
    CHECK_OK(cosync_loop_destroy(next));
    CHECK_EQ(cosync_io_fd(&ld_blocked.io), ld_blocked.fd);
    CHECK(fd_open(ld_blocked.fd));
    pair_close(&ld_blocked);
}

/* ------------------------------------------------------------------------
 * Dense tasks
 * ---------------------------------------------------------------------- */

static pair dense_static;

static int dense_put(void *arg, void **result)
{
    (void)result;
    put(arg, "s");
    return 0;
}

static int dense_body(void *arg, void **result)
{
    (void)result;
    pair *own = arg; /* its peer only: the handle is in this stack */
    char buf[4];
    cosync_io mine;
    CHECK_OK(cosync_io_init(&mine, own->fd));
    if (COSYNC__DENSE_SUPPORTED) {
        uint64_t before = switches();
        CHECK_ERR(cosync_io_wait(&mine, READ, FOREVER), COSYNC_EINVAL);
        CHECK_ERR(cosync_io_wait(&mine, WRITE, cosync_deadline_after(COSYNC_SEC(1))),
                  COSYNC_EINVAL);
        CHECK_ERR(cosync_io_read(&mine, buf, sizeof buf, FOREVER), COSYNC_EINVAL);
        CHECK_EQ(switches(), before);
        CHECK_EQ(io_waiters(), 0);
        /* a read that needs no wait is fine */
        put(own, "m");
        CHECK_EQ(cosync_io_read(&mine, buf, sizeof buf, FOREVER), 1);
        CHECK_EQ(buf[0], 'm');
    }
    CHECK_OK(cosync_io_close(&mine));

    /* a static handle works */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dense_put, &dense_static, NULL));
    CHECK_EQ(cosync_io_wait(&dense_static.io, READ, FOREVER), READ);
    CHECK_EQ(cosync_io_read(&dense_static.io, buf, sizeof buf, 0), 1);
    CHECK_EQ(buf[0], 's');
    join_ok(t);

    /* and a heap one */
    cosync_io *heap = malloc(sizeof *heap);
    CHECK_NOTNULL(heap);
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(cosync_io_init(heap, sv[0]));
    CHECK_EQ(cosync_io_wait(heap, WRITE, FOREVER), WRITE);
    CHECK_EQ(write(sv[1], "h", 1), 1);
    CHECK_EQ(cosync_io_wait(heap, READ, FOREVER), READ);
    CHECK_EQ(cosync_io_read(heap, buf, sizeof buf, 0), 1);
    CHECK_OK(cosync_io_close(heap));
    CHECK_EQ(close(sv[1]), 0);
    free(heap);
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dense_body, arg, &(cosync_task_opts){.dense = true}));
    join_ok(t);
    return 0;
}

/* A dense task waiting on a handle in its own stack: EINVAL, at once (a
 * transfer that needs no wait still works); its static and heap handles
 * work. */
TEST(a_dense_task_cannot_wait_on_a_handle_in_its_own_stack)
{
    static pair own;
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    own.fd = sv[0];
    own.peer = sv[1];
    pair_open(&dense_static);
    run_main_ok(dense_main, &own);
    CHECK(fd_closed(own.fd));
    pair_close_peer(&own);
    pair_close(&dense_static);
}

/* ------------------------------------------------------------------------
 * Fault injection: the registration with epoll fails
 * ---------------------------------------------------------------------- */

static pair ft_a, ft_b;

static int ft_put(void *arg, void **result)
{
    (void)result;
    put(arg, "f");
    return 0;
}

static int fault_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair_open(&ft_a);
    pair_open(&ft_b);
    char buf[8];

    /* a wait */
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    int rc = cosync_io_wait(&ft_a.io, READ, FOREVER);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(io_waiters(), 0);
    cosync_task w = spawn(ft_put, &ft_a);
    CHECK_EQ(cosync_io_wait(&ft_a.io, READ, FOREVER), READ); /* the retry registers */
    join_ok(w);
    CHECK_EQ(cosync_io_read(&ft_a.io, buf, sizeof buf, 0), 1);

    /* a receive: fails, consumes nothing; a retry works */
    cosync__fault_countdown = 0;
    ssize_t n = cosync_sock_recv(&ft_b.io, buf, sizeof buf, FOREVER);
    cosync__fault_countdown = -1;
    CHECK_ERR(n, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 2);
    CHECK_EQ(io_waiters(), 0);
    w = spawn(ft_put, &ft_b);
    CHECK_EQ(cosync_sock_recv(&ft_b.io, buf, sizeof buf, FOREVER), 1);
    CHECK_EQ(buf[0], 'f');
    join_ok(w);

    /* a connect (TCP's is under way when connect(2) returns, so it
     * registers): the socket is closed, nothing leaks; a retry works */
    cosync_io l, c, s;
    cosync_addr addr;
    listen_local(&l, &addr);
    int fds = count_fds();
    cosync__fault_countdown = 0;
    rc = cosync_tcp_connect(&c, &addr, FOREVER);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 3);
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(io_waiters(), 0);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    accept_peer_of(&l, &s, &c);
    CHECK_OK(cosync_io_close(&s));
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    pair_close(&ft_a);
    pair_close(&ft_b);
    return 0;
}

/* A registration that fails (cosync__fault_hit before epoll_ctl) returns
 * its error from cosync_io_wait, cosync_sock_recv and cosync_tcp_connect,
 * leaves no waiter behind (the loop ends as usual, nothing leaks), and a
 * retry works. */
TEST(a_failed_registration_leaves_nothing_and_a_retry_works)
{
    int fds = count_fds();
    run_main_ok(fault_main, NULL);
    CHECK_EQ(count_fds(), fds);
}

#define FT_HANDLES 3
static pair ft_each[FT_HANDLES];

typedef struct ft_turn {
    long k;
    bool failed;
} ft_turn;

static int fault_turn_main(void *arg, void **result)
{
    (void)result;
    ft_turn *f = arg;
    for (int i = 0; i < FT_HANDLES; i++)
        pair_open(&ft_each[i]);
    long failures = cosync__fault_failures;
    int rc[FT_HANDLES];
    cosync__fault_countdown = f->k;
    for (int i = 0; i < FT_HANDLES; i++)
        rc[i] = cosync_io_wait(&ft_each[i].io, WRITE, 0); /* registers, ready at once */
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    CHECK_EQ(f->failed, f->k < FT_HANDLES);
    for (int i = 0; i < FT_HANDLES; i++)
        CHECK_EQ(rc[i], i == f->k ? COSYNC_ENOMEM : WRITE);
    CHECK_EQ(io_waiters(), 0);
    /* every handle works, the one that failed registering now */
    for (int i = 0; i < FT_HANDLES; i++)
        put(&ft_each[i], "t");
    for (int i = 0; i < FT_HANDLES; i++) {
        char c;
        CHECK_EQ(cosync_io_wait(&ft_each[i].io, READ, FOREVER), READ);
        CHECK_EQ(cosync_io_read(&ft_each[i].io, &c, 1, 0), 1);
        CHECK_EQ(c, 't');
    }
    for (int i = 0; i < FT_HANDLES; i++)
        pair_close(&ft_each[i]);
    return 0;
}

/* Each registration of a run failing in turn: that one reports ENOMEM,
 * the others go on, nothing leaks. */
TEST(each_registration_failing_in_turn)
{
    int fds = count_fds();
    long k;
    for (k = 0;; k++) {
        ft_turn f = {.k = k};
        run_main_ok(fault_turn_main, &f);
        CHECK_EQ(count_fds(), fds);
        if (!f.failed)
            break;
    }
    CHECK_EQ(k, FT_HANDLES);
}

/* ------------------------------------------------------------------------
 * Addresses
 * ---------------------------------------------------------------------- */

/* cosync_addr_ip takes numeric IPv4 and IPv6 only; cosync_addr_unix a
 * path that fits sun_path; cosync_addr_format writes the documented
 * text, or EOVERFLOW and an empty string when the buffer is too small. */
TEST(addresses_are_numeric_and_format_as_text)
{
    cosync_addr a;
    char buf[COSYNC_ADDR_TEXT_MAX];

    CHECK_OK(cosync_addr_ip(&a, "127.0.0.1", 8080));
    CHECK_EQ(a.u.sa.sa_family, AF_INET);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in));
    CHECK_EQ(cosync_addr_port(&a), 8080);
    CHECK_EQ(cosync_addr_format(&a, buf, sizeof buf), 14);
    CHECK_STREQ(buf, "127.0.0.1:8080");
    char small[16];
    memset(small, 'x', sizeof small);
    CHECK_ERR(cosync_addr_format(&a, small, 14), COSYNC_EOVERFLOW); /* no room for the NUL */
    CHECK_STREQ(small, "");
    CHECK_EQ(cosync_addr_format(&a, small, 15), 14);
    CHECK_STREQ(small, "127.0.0.1:8080");
    CHECK_ERR(cosync_addr_format(&a, small, 1), COSYNC_EOVERFLOW);
    CHECK_STREQ(small, "");
    small[0] = 'x';
    CHECK_ERR(cosync_addr_format(&a, small, 0), COSYNC_EOVERFLOW);
    CHECK_EQ(small[0], 'x'); /* no byte to write the empty string in */

    CHECK_OK(cosync_addr_ip(&a, "::1", 443));
    CHECK_EQ(a.u.sa.sa_family, AF_INET6);
    CHECK_EQ(a.len, sizeof(struct sockaddr_in6));
    CHECK_EQ(cosync_addr_port(&a), 443);
    CHECK_EQ(cosync_addr_format(&a, buf, sizeof buf), 9);
    CHECK_STREQ(buf, "[::1]:443");
    CHECK_OK(cosync_addr_ip(&a, "0.0.0.0", 0));
    CHECK_STREQ(addr_text(&a, buf), "0.0.0.0:0");
    CHECK_OK(cosync_addr_ip(&a, "::ffff:10.1.2.3", 65535));
    CHECK_STREQ(addr_text(&a, buf), "[::ffff:10.1.2.3]:65535");
    CHECK_OK(cosync_addr_ip(&a, "fe80:1:2:3:4:5:6:7", 65535));
    CHECK_STREQ(addr_text(&a, buf), "[fe80:1:2:3:4:5:6:7]:65535");

    /* names are not resolved */
    static const char *const bad[] = {"localhost", "example.com", "127.0.0.1 ",
                                      "",          "256.0.0.1",   "[::1]",
                                      "1.2.3",     "::1:",        "127.0.0.1:80"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK_ERR(cosync_addr_ip(&a, bad[i], 80), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_ip(NULL, "127.0.0.1", 80), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_ip(&a, NULL, 80), COSYNC_EINVAL);

    /* Unix-domain: the longest path that fits, with its text */
    char path[200], want[220];
    size_t max = sizeof(((struct sockaddr_un *)0)->sun_path) - 1;
    memset(path, 'p', max);
    path[0] = '/';
    path[max] = '\0';
    CHECK_OK(cosync_addr_unix(&a, path));
    CHECK_EQ(a.u.sa.sa_family, AF_UNIX);
    snprintf(want, sizeof want, "unix:%s", path);
    CHECK_LT(strlen(want), COSYNC_ADDR_TEXT_MAX);
    CHECK_EQ(cosync_addr_format(&a, buf, sizeof buf), (int)strlen(want));
    CHECK_STREQ(buf, want);
    CHECK_ERR(cosync_addr_port(&a), COSYNC_EINVAL);
    path[max] = 'p';
    path[max + 1] = '\0';
    CHECK_ERR(cosync_addr_unix(&a, path), COSYNC_EINVAL); /* one byte too long */
    CHECK_ERR(cosync_addr_unix(&a, ""), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_unix(&a, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_unix(NULL, "/x"), COSYNC_EINVAL);
    CHECK_OK(cosync_addr_unix(&a, "/tmp/x.sock"));
    CHECK_STREQ(addr_text(&a, buf), "unix:/tmp/x.sock");
    memset(small, 'x', sizeof small);
    CHECK_ERR(cosync_addr_format(&a, small, sizeof small), COSYNC_EOVERFLOW);
    CHECK_STREQ(small, "");

    /* an unknown family, NULLs */
    cosync_addr z;
    memset(&z, 0, sizeof z);
    CHECK_ERR(cosync_addr_format(&z, buf, sizeof buf), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_port(&z), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_format(NULL, buf, sizeof buf), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_format(&a, NULL, sizeof buf), COSYNC_EINVAL);
    CHECK_ERR(cosync_addr_port(NULL), COSYNC_EINVAL);
}

/* ------------------------------------------------------------------------
 * TCP
 * ---------------------------------------------------------------------- */

static char server_saw[COSYNC_ADDR_TEXT_MAX];

/* Accept one connection from the listener @arg, echo it to its end. */
static int echo_server_once(void *arg, void **result)
{
    (void)result;
    cosync_io conn;
    cosync_addr peer;
    CHECK_OK(cosync_sock_accept(arg, &conn, &peer, FOREVER));
    addr_text(&peer, server_saw);
    CHECK(fd_nonblocking(cosync_io_fd(&conn)));
    CHECK_EQ(fcntl(cosync_io_fd(&conn), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    echo_until_eof(&conn);
    CHECK_OK(cosync_io_close(&conn));
    return 0;
}

/* Connect to @addr, echo @n messages through the server, shut down the
 * writing side and see the server's end; the client's local address in
 * @local_text. */
static void echo_client(const cosync_addr *addr, int n, char *local_text)
{
    cosync_io c;
    cosync_addr local, peer;
    char a[COSYNC_ADDR_TEXT_MAX], b[COSYNC_ADDR_TEXT_MAX];
    CHECK_OK(cosync_tcp_connect(&c, addr, FOREVER));
    CHECK(fd_nonblocking(cosync_io_fd(&c)));
    CHECK_EQ(fcntl(cosync_io_fd(&c), F_GETFD) & FD_CLOEXEC, FD_CLOEXEC);
    CHECK_OK(cosync_sock_local_addr(&c, &local));
    addr_text(&local, local_text);
    CHECK_OK(cosync_sock_peer_addr(&c, &peer));
    CHECK_STREQ(addr_text(&peer, a), addr_text(addr, b));
    for (int i = 0; i < n; i++) {
        char msg[64], back[64];
        int len = snprintf(msg, sizeof msg, "message %d of %d", i, n);
        size_t sent = 0;
        CHECK_OK(cosync_sock_sendall(&c, msg, (size_t)len, &sent, FOREVER));
        CHECK_EQ(sent, (size_t)len);
        recv_exact(&c, back, (size_t)len);
        CHECK_EQ(memcmp(back, msg, (size_t)len), 0);
    }
    CHECK_OK(cosync_sock_shutdown(&c, SHUT_WR));
    char buf[8];
    CHECK_EQ(cosync_sock_recv(&c, buf, sizeof buf, FOREVER), 0); /* the server closed */
    CHECK_OK(cosync_io_close(&c));
}

static int tcp_echo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l;
    cosync_addr addr;
    char text[COSYNC_ADDR_TEXT_MAX], want[COSYNC_ADDR_TEXT_MAX], local[COSYNC_ADDR_TEXT_MAX];
    listen_local(&l, &addr);
    snprintf(want, sizeof want, "127.0.0.1:%d", cosync_addr_port(&addr));
    CHECK_STREQ(addr_text(&addr, text), want);
    server_saw[0] = '\0';
    cosync_task s = spawn(echo_server_once, &l);
    echo_client(&addr, 3, local);
    join_ok(s);
    CHECK_STREQ(server_saw, local); /* accept's peer is the client's socket */
    CHECK_EQ(strncmp(server_saw, "127.0.0.1:", 10), 0);
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* TCP on 127.0.0.1:0: the listener's port, a connect, accept's peer
 * address, an echo of several messages, SHUT_WR seen as the end. */
TEST(tcp_echo_on_loopback)
{
    run_main_ok(tcp_echo_main, NULL);
}

#define DUPLEX ((size_t)1 << 20)

typedef struct stream {
    cosync_io *io;
    unsigned seed;
    const unsigned char *out;
} stream;

static int stream_send(void *arg, void **result)
{
    (void)result;
    stream *s = arg;
    size_t sent = 0;
    CHECK_OK(cosync_sock_sendall(s->io, s->out, DUPLEX, &sent, FOREVER));
    CHECK_EQ(sent, DUPLEX);
    return 0;
}

static int stream_recv(void *arg, void **result)
{
    (void)result;
    stream *s = arg;
    unsigned char *in = malloc(65536);
    CHECK_NOTNULL(in);
    size_t got = 0;
    while (got < DUPLEX) {
        size_t want = DUPLEX - got < 65536 ? DUPLEX - got : 65536;
        ssize_t n = cosync_sock_recv(s->io, in, want, FOREVER);
        CHECK_GT(n, 0);
        check_pattern(in, (size_t)n, s->seed, got);
        got += (size_t)n;
    }
    free(in);
    return 0;
}

static int duplex_main(void *arg, void **result)
{
    (void)arg, (void)result;
    unsigned char *a_out = malloc(DUPLEX), *b_out = malloc(DUPLEX);
    CHECK_NOTNULL(a_out);
    CHECK_NOTNULL(b_out);
    fill_pattern(a_out, DUPLEX, 3);
    fill_pattern(b_out, DUPLEX, 4);
    cosync_io l, a, b;
    cosync_addr addr;
    listen_local(&l, &addr);
    CHECK_OK(cosync_tcp_connect(&a, &addr, FOREVER));
    accept_peer_of(&l, &b, &a);
    stream s[4] = {{&a, 3, a_out}, {&a, 4, NULL}, {&b, 4, b_out}, {&b, 3, NULL}};
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn(s[i].out ? stream_send : stream_recv, &s[i]);
    for (int i = 0; i < 4; i++)
        join_ok(t[i]);
    CHECK_EQ(io_waiters(), 0);
    CHECK_OK(cosync_io_close(&a));
    CHECK_OK(cosync_io_close(&b));
    CHECK_OK(cosync_io_close(&l));
    free(a_out);
    free(b_out);
    return 0;
}

/* 1 MiB each way at once over one TCP connection, a sender and a receiver
 * task on each side (a reader and a writer on one handle): every byte
 * arrives in order. */
TEST(tcp_both_ways_at_once)
{
    run_main_ok(duplex_main, NULL);
}

typedef struct acceptor {
    cosync_io *l;
    cosync_io conn;
    int rc;
} acceptor;

static int acceptor_task(void *arg, void **result)
{
    (void)result;
    acceptor *a = arg;
    a->rc = cosync_sock_accept(a->l, &a->conn, NULL, FOREVER);
    return a->rc;
}

static int accept_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, c;
    cosync_addr addr, peer;
    listen_local(&l, &addr);
    static cosync_io sentinel;
    memset(&sentinel, 0xA5, sizeof sentinel);
    static acceptor a;
    a.l = &l;
    a.conn = sentinel;

    /* deadline 0, nobody connecting: EAGAIN at once; @conn untouched */
    uint64_t before = switches();
    CHECK_ERR(cosync_sock_accept(&l, &a.conn, &peer, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);
    CHECK_EQ(memcmp(&a.conn, &sentinel, sizeof sentinel), 0);
    /* a finite deadline: ETIMEDOUT at it */
    int64_t dl = cosync_now() + COSYNC_SEC(3);
    CHECK_ERR(cosync_sock_accept(&l, &a.conn, &peer, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);
    CHECK_EQ(memcmp(&a.conn, &sentinel, sizeof sentinel), 0);

    /* a task blocked in accept, cancelled */
    a.rc = 12345;
    cosync_task t = spawn(acceptor_task, &a);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(memcmp(&a.conn, &sentinel, sizeof sentinel), 0);
    CHECK_EQ(io_waiters(), 0);

    /* the listener is free for another acceptor, which gets the client */
    a.rc = 12345;
    t = spawn(acceptor_task, &a);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    join_ok(t);
    CHECK_OK(a.rc);
    cosync_addr mine, theirs;
    char x[COSYNC_ADDR_TEXT_MAX], y[COSYNC_ADDR_TEXT_MAX];
    CHECK_OK(cosync_sock_local_addr(&c, &mine));
    CHECK_OK(cosync_sock_peer_addr(&a.conn, &theirs));
    CHECK_STREQ(addr_text(&theirs, x), addr_text(&mine, y));
    CHECK_OK(cosync_io_close(&a.conn));
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* cosync_sock_accept with deadline 0 and nobody connecting: EAGAIN; with
 * a finite deadline: ETIMEDOUT; cancelled while blocked: ECANCELED; @conn
 * untouched each time; the listener is then free for another acceptor. */
TEST(accept_with_deadlines_and_cancelled)
{
    run_main_ok(accept_main, NULL);
}

static int refused_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io b, c;
    cosync_addr addr;
    /* a port bound, not listening: nobody can take it meanwhile */
    CHECK_OK(cosync_sock_open(&b, AF_INET, SOCK_STREAM));
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_bind(&b, &addr));
    CHECK_OK(cosync_sock_local_addr(&b, &addr));
    int fds = count_fds();
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_EQ(COSYNC_ECONNREFUSED, -ECONNREFUSED);
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF); /* left closed */
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(io_waiters(), 0);
    /* cosync_sock_connect: the same, and the socket is the caller's to close */
    CHECK_OK(cosync_sock_open(&c, AF_INET, SOCK_STREAM));
    CHECK_ERR(cosync_sock_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_GE(cosync_io_fd(&c), 0);
    CHECK_OK(cosync_io_close(&c));
    /* the port closed (a free port, found by a bind) */
    CHECK_OK(cosync_io_close(&b));
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF);
    return 0;
}

/* A connect to a port nobody listens on: COSYNC_ECONNREFUSED, the socket
 * of cosync_tcp_connect left closed. */
TEST(a_connect_to_a_closed_port_is_refused)
{
    run_main_ok(refused_main, NULL);
}

static int connect_try_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, c, s;
    cosync_addr addr;
    listen_local(&l, &addr);
    CHECK_OK(cosync_sock_open(&c, AF_INET, SOCK_STREAM));
    uint64_t before = switches();
    /* under way (EAGAIN), or made already: the kernel may complete a
     * loopback connect before the first look at the socket */
    int rc0 = cosync_sock_connect(&c, &addr, 0);
    CHECK(rc0 == COSYNC_EAGAIN || rc0 == 0);
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_sock_connect(&c, &addr, FOREVER)); /* it went on: this waits for it */
    CHECK_OK(cosync_sock_connect(&c, &addr, 0));       /* connected: at once */
    accept_peer_of(&l, &s, &c);
    CHECK_EQ(cosync_sock_send(&c, "t", 1, FOREVER), 1);
    char ch;
    CHECK_EQ(cosync_sock_recv(&s, &ch, 1, FOREVER), 1);
    CHECK_EQ(ch, 't');
    CHECK_OK(cosync_io_close(&s));
    CHECK_OK(cosync_io_close(&c));
    /* cosync_tcp_connect with deadline 0: EAGAIN is a failure, so the
     * socket is left closed */
    int fds = count_fds();
    rc0 = cosync_tcp_connect(&c, &addr, 0);
    CHECK(rc0 == COSYNC_EAGAIN || rc0 == 0);
    if (rc0 == 0) { /* made at once: a connection to take and close */
        accept_peer_of(&l, &s, &c);
        CHECK_OK(cosync_io_close(&s));
        CHECK_OK(cosync_io_close(&c));
    }
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* cosync_sock_connect with deadline 0 while the connection is under way:
 * EAGAIN, and it goes on: a further call waits for it. */
TEST(a_connect_with_deadline_0_goes_on)
{
    run_main_ok(connect_try_main, NULL);
}

#define NCLIENTS 50
static cosync_io mc_listener, mc_conns[NCLIENTS], mc_clients[NCLIENTS];
static cosync_addr mc_addr;
static int mc_done;

static int mc_handler(void *arg, void **result)
{
    (void)result;
    echo_until_eof(arg);
    CHECK_OK(cosync_io_close(arg));
    return 0;
}

static int mc_server(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task h[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++) {
        CHECK_OK(cosync_sock_accept(&mc_listener, &mc_conns[i], NULL, FOREVER));
        h[i] = spawn(mc_handler, &mc_conns[i]);
    }
    for (int i = 0; i < NCLIENTS; i++)
        join_ok(h[i]);
    return 0;
}

static int mc_client(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    cosync_io *c = &mc_clients[id];
    char msg[64], back[64];
    int len = snprintf(msg, sizeof msg, "client %d says hello %d", id, id * 7919);
    CHECK_OK(cosync_tcp_connect(c, &mc_addr, FOREVER));
    size_t sent = 0;
    CHECK_OK(cosync_sock_sendall(c, msg, (size_t)len, &sent, FOREVER));
    CHECK_OK(cosync_sock_shutdown(c, SHUT_WR));
    size_t got = 0;
    for (;;) {
        ssize_t n = cosync_sock_recv(c, back + got, sizeof back - got, FOREVER);
        CHECK_GE(n, 0);
        if (n == 0)
            break;
        got += (size_t)n;
        CHECK_LE(got, (size_t)len);
    }
    CHECK_EQ(got, (size_t)len);
    CHECK_EQ(memcmp(back, msg, (size_t)len), 0);
    CHECK_OK(cosync_io_close(c));
    mc_done++;
    return 0;
}

static int many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    listen_local(&mc_listener, &mc_addr);
    mc_done = 0;
    cosync_task s = spawn(mc_server, NULL);
    cosync_task c[NCLIENTS];
    for (int i = 0; i < NCLIENTS; i++)
        c[i] = spawn(mc_client, (void *)(intptr_t)i);
    for (int i = 0; i < NCLIENTS; i++)
        join_ok(c[i]);
    join_ok(s);
    CHECK_EQ(mc_done, NCLIENTS);
    CHECK_EQ(io_waiters(), 0);
    CHECK_OK(cosync_io_close(&mc_listener));
    return 0;
}

/* 50 clients connect to one server that accepts in a loop and spawns a
 * handler per connection; each gets its own message back. */
TEST(many_clients_one_server)
{
    run_main_ok(many_main, NULL);
}

static int gone_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, c, s;
    cosync_addr addr;
    listen_local(&l, &addr);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    accept_peer_of(&l, &s, &c);
    CHECK_OK(cosync_io_close(&s)); /* the peer goes */
    static char buf[1024];
    ssize_t rc = 0;
    int i;
    for (i = 0; i < 100000 && rc >= 0; i++)
        rc = cosync_sock_send(&c, buf, sizeof buf, FOREVER);
    CHECK(rc == COSYNC_EPIPE || rc == COSYNC_ECONNRESET);
    size_t sent = 99;
    int rc2 = cosync_sock_sendall(&c, buf, sizeof buf, &sent, FOREVER);
    CHECK(rc2 == COSYNC_EPIPE || rc2 == COSYNC_ECONNRESET);
    CHECK_EQ(sent, 0);
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* A send to a TCP peer that has closed: EPIPE or ECONNRESET, and the
 * process does not die of SIGPIPE (its default action is on). */
TEST(a_send_to_a_peer_that_closed_fails_without_sigpipe)
{
    run_main_ok(gone_main, NULL);
}

static int ipv6_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l = {0};
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "::1", 0));
    int rc = cosync_sock_listen(&l, &addr, 0);
    if (rc == -EADDRNOTAVAIL || rc == -EAFNOSUPPORT) {
        printf("  (skipped: ::1 cannot be bound: %s)\n", cosync_err_name(rc));
        CHECK_ERR(cosync_io_fd(&l), COSYNC_EBADF);
        return 0;
    }
    CHECK_OK(rc);
    CHECK_OK(cosync_sock_local_addr(&l, &addr));
    char text[COSYNC_ADDR_TEXT_MAX], want[COSYNC_ADDR_TEXT_MAX], local[COSYNC_ADDR_TEXT_MAX];
    snprintf(want, sizeof want, "[::1]:%d", cosync_addr_port(&addr));
    CHECK_GT(cosync_addr_port(&addr), 0);
    CHECK_STREQ(addr_text(&addr, text), want);
    server_saw[0] = '\0';
    cosync_task s = spawn(echo_server_once, &l);
    echo_client(&addr, 2, local);
    join_ok(s);
    CHECK_STREQ(server_saw, local);
    CHECK_EQ(strncmp(server_saw, "[::1]:", 6), 0);
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* The same echo over IPv6 on ::1 (skipped where ::1 cannot be bound). */
TEST(tcp_echo_on_ipv6_loopback)
{
    run_main_ok(ipv6_main, NULL);
}

static int unix_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char path[128], want[160], text[COSYNC_ADDR_TEXT_MAX], local[COSYNC_ADDR_TEXT_MAX];
    snprintf(path, sizeof path, "%s/echo.sock", tmpdir);
    snprintf(want, sizeof want, "unix:%s", path);
    cosync_addr addr, bound;
    CHECK_OK(cosync_addr_unix(&addr, path));
    cosync_io l, l2 = {0};
    CHECK_OK(cosync_sock_listen(&l, &addr, 0));
    CHECK_OK(cosync_sock_local_addr(&l, &bound));
    CHECK_STREQ(addr_text(&bound, text), want);
    CHECK_ERR(cosync_addr_port(&bound), COSYNC_EINVAL);
    /* the path is taken */
    int fds = count_fds();
    CHECK_ERR(cosync_sock_listen(&l2, &addr, 0), COSYNC_EADDRINUSE);
    CHECK_ERR(cosync_io_fd(&l2), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);

    server_saw[0] = '\0';
    cosync_task s = spawn(echo_server_once, &l);
    echo_client(&addr, 3, local); /* checks the client's peer: the path */
    join_ok(s);
    CHECK_STREQ(local, "unix:"); /* a client's socket has no name */
    CHECK_STREQ(server_saw, "unix:");
    CHECK_OK(cosync_io_close(&l));
    /* the socket file is left, nobody listens: refused; no file: ENOENT */
    fds = count_fds();
    cosync_io c;
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), COSYNC_ECONNREFUSED);
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF);
    CHECK_EQ(unlink(path), 0);
    CHECK_ERR(cosync_tcp_connect(&c, &addr, FOREVER), -ENOENT);
    CHECK_ERR(cosync_io_fd(&c), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    return 0;
}

/* Unix-domain stream sockets: cosync_addr_unix, cosync_sock_listen,
 * cosync_tcp_connect (a stream socket of the address's family), and the
 * texts "unix:<path>" and "unix:" (an unnamed client). */
TEST(unix_domain_stream_echo)
{
    run_main_ok(unix_main, NULL);
}

static int udp_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io u1, u2;
    cosync_addr any, a1, a2, from;
    char t1[COSYNC_ADDR_TEXT_MAX], tf[COSYNC_ADDR_TEXT_MAX];
    char buf[128];
    CHECK_OK(cosync_addr_ip(&any, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_open(&u1, AF_INET, SOCK_DGRAM));
    CHECK_OK(cosync_sock_bind(&u1, &any));
    CHECK_OK(cosync_sock_local_addr(&u1, &a1));
    CHECK_OK(cosync_sock_open(&u2, AF_INET, SOCK_DGRAM));
    CHECK_OK(cosync_sock_bind(&u2, &any));
    CHECK_OK(cosync_sock_local_addr(&u2, &a2));
    CHECK_GT(cosync_addr_port(&a1), 0);
    CHECK_NE(cosync_addr_port(&a1), cosync_addr_port(&a2));

    /* nothing sent: deadline 0, and a finite one, run out */
    CHECK_ERR(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, 0), COSYNC_EAGAIN);
    int64_t dl = cosync_now() + COSYNC_SEC(1);
    CHECK_ERR(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, dl), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), dl);

    /* a datagram and its sender */
    CHECK_EQ(cosync_sock_sendto(&u1, "ping", 4, &a2, FOREVER), 4);
    CHECK_EQ(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, FOREVER), 4);
    CHECK_EQ(memcmp(buf, "ping", 4), 0);
    CHECK_STREQ(addr_text(&from, tf), addr_text(&a1, t1));
    CHECK_EQ(cosync_sock_sendto(&u2, "pong", 4, &from, FOREVER), 4);
    CHECK_EQ(cosync_sock_recvfrom(&u1, buf, sizeof buf, NULL, FOREVER), 4);
    CHECK_EQ(memcmp(buf, "pong", 4), 0);

    /* one longer than the buffer: cut to the buffer, the rest dropped */
    unsigned char longer[100];
    fill_pattern(longer, sizeof longer, 5);
    CHECK_EQ(cosync_sock_sendto(&u1, longer, sizeof longer, &a2, FOREVER), 100);
    CHECK_EQ(cosync_sock_sendto(&u1, "end", 3, &a2, FOREVER), 3);
    CHECK_EQ(cosync_sock_recvfrom(&u2, buf, 10, &from, FOREVER), 10);
    check_pattern((unsigned char *)buf, 10, 5, 0);
    CHECK_EQ(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, FOREVER), 3);
    CHECK_EQ(memcmp(buf, "end", 3), 0);
    /* an empty datagram */
    CHECK_EQ(cosync_sock_sendto(&u1, buf, 0, &a2, FOREVER), 0);
    CHECK_EQ(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, FOREVER), 0);
    CHECK_STREQ(addr_text(&from, tf), t1);

    /* no destination, not connected: sendto(2)'s error */
    CHECK_ERR(cosync_sock_sendto(&u1, "x", 1, NULL, FOREVER), -EDESTADDRREQ);
    /* connected: NULL sends to the peer */
    CHECK_OK(cosync_sock_connect(&u1, &a2, FOREVER));
    CHECK_EQ(cosync_sock_sendto(&u1, "c", 1, NULL, FOREVER), 1);
    CHECK_EQ(cosync_sock_send(&u1, "d", 1, FOREVER), 1);
    CHECK_EQ(cosync_sock_recvfrom(&u2, buf, sizeof buf, &from, FOREVER), 1);
    CHECK_EQ(buf[0], 'c');
    CHECK_STREQ(addr_text(&from, tf), t1);
    CHECK_EQ(cosync_sock_recv(&u2, buf, sizeof buf, FOREVER), 1);
    CHECK_EQ(buf[0], 'd');
    CHECK_EQ(io_waiters(), 0);
    CHECK_OK(cosync_io_close(&u1));
    CHECK_OK(cosync_io_close(&u2));
    return 0;
}

/* UDP on 127.0.0.1:0: sendto and recvfrom with the sender's address, a
 * datagram cut to the buffer, an empty one, a connected socket. */
TEST(udp_datagrams)
{
    run_main_ok(udp_main, NULL);
}

static int sock_misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io io = {0}, l, c, s;
    cosync_addr addr, zero;
    memset(&zero, 0, sizeof zero);
    int fds = count_fds();
    CHECK_ERR(cosync_sock_open(&io, 12345, SOCK_STREAM), -EAFNOSUPPORT);
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_ERR(cosync_sock_listen(&io, &zero, 0), -EAFNOSUPPORT);
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_ERR(cosync_tcp_connect(&io, &zero, FOREVER), -EAFNOSUPPORT);
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);

    /* a port taken: EADDRINUSE, and the handle left closed */
    listen_local(&l, &addr);
    fds = count_fds();
    CHECK_ERR(cosync_sock_listen(&io, &addr, 0), COSYNC_EADDRINUSE);
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    /* a listener has no peer; nor has a socket never connected */
    CHECK_ERR(cosync_sock_peer_addr(&l, &addr), COSYNC_ENOTCONN);
    CHECK_OK(cosync_sock_open(&c, AF_INET, SOCK_STREAM));
    CHECK_ERR(cosync_sock_peer_addr(&c, &addr), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_sock_shutdown(&c, SHUT_WR), COSYNC_ENOTCONN);
    CHECK_OK(cosync_io_close(&c));
    /* a length of 0 */
    CHECK_OK(cosync_sock_local_addr(&l, &addr));
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    accept_peer_of(&l, &s, &c);
    char buf[4];
    CHECK_EQ(cosync_sock_send(&c, buf, 0, FOREVER), 0);
    /* with bytes queued (one segment: both arrive together), a receive of
     * 0 bytes returns 0 and takes none (with none queued, see
     * a_recv_of_0_bytes_returns_0_at_once_over_tcp, below) */
    CHECK_EQ(cosync_sock_send(&s, "xy", 2, FOREVER), 2);
    CHECK_EQ(cosync_sock_recv(&c, buf, 1, FOREVER), 1);
    CHECK_EQ(buf[0], 'x');
    CHECK_EQ(cosync_sock_recv(&c, buf, 0, FOREVER), 0);
    CHECK_EQ(cosync_sock_recv(&c, buf, sizeof buf, 0), 1);
    CHECK_EQ(buf[0], 'y');
    CHECK_OK(cosync_io_close(&s));
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* Socket calls with a bad family, a taken port, no peer, length 0. */
TEST(socket_misuse)
{
    run_main_ok(sock_misuse_main, NULL);
}

/* ------------------------------------------------------------------------
 * Library bugs these tests found, fixed since
 * ---------------------------------------------------------------------- */

/* Was a bug: cosync_sock_connect (and cosync_tcp_connect) of a Unix-domain
 * stream socket to a listener whose backlog is full never connects, even
 * once the listener has accepted and there is room: connect(2) says
 * EAGAIN (the queue is full; nothing has started), connect_op
 * (src/io/socket.c) has already set `started`, cosync__io_retry waits for
 * WRITE, the socket is writable at once, and from then on connect_op only
 * asks getsockopt/getpeername (ENOTCONN -> "under way") and never calls
 * connect(2) again, while no further edge ever comes: with FOREVER the
 * task waits for ever (and, being an I/O waiter, hides any deadlock);
 * with a deadline it times out. io.h: "connect @io's socket to @addr,
 * waiting for the connection to be made ... connect(2)'s negated errno". */
static cosync_addr ub_addr;
static cosync_io ub_clients[3], ub_conns[3];
static int ub_rc[3];

static int ub_client(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    ub_rc[i] = cosync_tcp_connect(&ub_clients[i], &ub_addr, cosync_deadline_after(COSYNC_SEC(60)));
    return 0;
}

static int ub_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char path[128];
    snprintf(path, sizeof path, "%s/backlog.sock", tmpdir);
    CHECK_OK(cosync_addr_unix(&ub_addr, path));
    cosync_io l;
    CHECK_OK(cosync_sock_listen(&l, &ub_addr, 1)); /* room for 2 queued connections */
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn(ub_client, (void *)(intptr_t)i);
    CHECK_OK(cosync_yield()); /* 0 and 1 connect at once; 2 finds the queue full */
    CHECK_OK(cosync_sock_accept(&l, &ub_conns[0], NULL, FOREVER));
    CHECK_OK(cosync_sock_accept(&l, &ub_conns[1], NULL, FOREVER));
    for (int i = 0; i < 3; i++)
        join_ok(t[i]);
    CHECK_OK(ub_rc[0]);
    CHECK_OK(ub_rc[1]);
    /* either it connected once there was room, or it said connect(2)'s
     * EAGAIN at once: not a wait for something that never comes */
    CHECK(ub_rc[2] == 0 || ub_rc[2] == COSYNC_EAGAIN);
    if (ub_rc[2] == 0) {
        CHECK_OK(cosync_sock_accept(&l, &ub_conns[2], NULL, FOREVER));
        CHECK_OK(cosync_io_close(&ub_conns[2]));
        CHECK_OK(cosync_io_close(&ub_clients[2]));
    }
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_io_close(&ub_conns[i]));
        CHECK_OK(cosync_io_close(&ub_clients[i]));
    }
    CHECK_OK(cosync_io_close(&l));
    CHECK_EQ(unlink(path), 0);
    return 0;
}

TEST(a_unix_connect_to_a_full_backlog_connects_once_there_is_room)
{
    run_main_ok(ub_main, NULL);
}

/* Was a bug: cosync_sock_recv with @len 0 on a TCP socket with nothing queued
 * waits for data (for ever with FOREVER; ETIMEDOUT here) instead of
 * returning 0: io.h says "Returns the count received (0 when the peer has
 * shut down its side, or for @len 0)". recv(2) of 0 bytes on TCP says
 * EAGAIN when the queue is empty (its low-water mark is at least 1 byte),
 * and cosync__io_retry then waits for READ (src/io/socket.c, recv_op /
 * cosync_sock_recv). read(2) of 0 bytes returns 0 at once, so
 * cosync_io_read is not affected. */
static int recv0_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, c, s;
    cosync_addr addr;
    listen_local(&l, &addr);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    accept_peer_of(&l, &s, &c);
    char buf[4];
    CHECK_EQ(cosync_io_read(&c, buf, 0, FOREVER), 0); /* passes */
    uint64_t before = switches();
    /* nothing is ever sent: a finite deadline, so that the bug fails the
     * check instead of hanging */
    CHECK_EQ(cosync_sock_recv(&c, buf, 0, cosync_deadline_after(COSYNC_SEC(1))), 0);
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_io_close(&s));
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

TEST(a_recv_of_0_bytes_returns_0_at_once_over_tcp)
{
    run_main_ok(recv0_main, NULL);
}

/* Was a bug (minor, the virtual clock only): a task that polls a handle with
 * deadline 0 (and sleeps between tries) never sees readiness that came
 * while no task was blocked on I/O: idle() in src/loop.c looks at epoll
 * under the virtual clock only `if (loop->io_waiters)`, and run_loop's
 * busy look too, so the edge stays in the kernel. Under the real clock the
 * idle step always polls, and the second try says READ. io.h: "a wait
 * returns at once with the readiness that came since the last wait took
 * it"; io.md: "Under the virtual clock, a loop with nothing to run looks
 * at I/O without waiting and then moves its clock to the next timer". */
static pair try_pair;

static int try_poll_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &try_pair;
    pair_open(p);
    CHECK_EQ(cosync_io_wait(&p->io, WRITE, FOREVER), WRITE); /* registered */
    put(p, "t");
    int rc = COSYNC_EAGAIN, tries;
    for (tries = 0; tries < 10 && rc == COSYNC_EAGAIN; tries++) {
        rc = cosync_io_wait(&p->io, READ, 0);
        if (rc == COSYNC_EAGAIN)
            CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* nothing to run: the loop idles */
    }
    CHECK_EQ(rc, READ);
    pair_close(p);
    return 0;
}

TEST(a_try_wait_sees_readiness_after_the_loop_idled)
{
    run_main_ok(try_poll_main, NULL);
}

/* A task that polls with the try form (deadline 0) between yields, while
 * the loop stays busy and no task waits on I/O, sees readiness that came
 * after its first try: a try looks at the descriptor itself (a bug once:
 * it read the bits the loop keeps, which the loop refreshes only while a
 * task waits on I/O or when it idles, so the tries never saw it). */
static pair busy_try_pair;

static int busy_try_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &busy_try_pair;
    pair_open(p);
    CHECK_ERR(cosync_io_wait(&p->io, READ, 0), COSYNC_EAGAIN); /* registered, nothing yet */
    put(p, "x");
    uint64_t before = switches();
    /* at once: the data is in the socket's queue */
    CHECK_EQ(cosync_io_wait(&p->io, READ, 0), READ);
    CHECK_EQ(switches(), before);
    char c;
    CHECK_EQ(cosync_io_read(&p->io, &c, 1, 0), 1);
    CHECK_ERR(cosync_io_wait(&p->io, READ, 0), COSYNC_EAGAIN); /* read: nothing left */
    pair_close(p);
    return 0;
}

TEST(a_try_sees_readiness_while_the_loop_is_busy)
{
    run_main_ok(busy_try_main, NULL);
}

/* A listener set up again on the port of one whose accepted connection
 * the server closed first (that connection's end is in TIME_WAIT on the
 * port): cosync_sock_listen sets SO_REUSEADDR, as asyncio's servers do,
 * so the bind succeeds. */
static int reuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, c, s;
    cosync_addr addr;
    listen_local(&l, &addr);
    CHECK_OK(cosync_tcp_connect(&c, &addr, FOREVER));
    accept_peer_of(&l, &s, &c);
    CHECK_OK(cosync_io_close(&s)); /* the server's side closes first: TIME_WAIT there */
    char ch;
    CHECK_EQ(cosync_sock_recv(&c, &ch, 1, FOREVER), 0);
    CHECK_OK(cosync_io_close(&c));
    CHECK_OK(cosync_io_close(&l));
    CHECK_OK(cosync_sock_listen(&l, &addr, 0)); /* the same port again */
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

TEST(a_listener_binds_again_to_a_port_in_time_wait)
{
    run_main_ok(reuse_main, NULL);
}

/* A connect still under way when a second call comes (connect(2) says
 * EALREADY) waits for it like the first: here a listener whose queue is
 * full drops the SYN, so the connection stays under way, and the second
 * call, with a deadline, times out at it. */
static int already_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l, fill[3], c;
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_listen(&l, &addr, 1));
    CHECK_OK(cosync_sock_local_addr(&l, &addr));
    int made = 0;
    for (int i = 0; i < 3; i++) /* fill the queue: made at once, or left under way */
        made += cosync_tcp_connect(&fill[i], &addr, 0) == 0;
    CHECK_GT(made, 0);
    CHECK_OK(cosync_sock_open(&c, AF_INET, SOCK_STREAM));
    /* under way: Linux drops a SYN while the listener's queue is full */
    CHECK_ERR(cosync_sock_connect(&c, &addr, 0), COSYNC_EAGAIN);
    int64_t deadline = cosync_deadline_after(COSYNC_MS(50));
    CHECK_ERR(cosync_sock_connect(&c, &addr, deadline), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), deadline);
    CHECK_OK(cosync_io_close(&c));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_io_close(&fill[i]));
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

TEST(a_second_connect_while_one_is_under_way_waits_for_it)
{
    run_main_ok(already_main, NULL);
}

/* ------------------------------------------------------------------------ */

int main(void)
{
    /* SIGPIPE's default action (death), whatever the parent left: a send
     * that raised it would end this program */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    CHECK_EQ(sigaction(SIGPIPE, &dfl, NULL), 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cosync-test-io-XXXXXX");
    CHECK_NOTNULL(mkdtemp(tmpdir));
    int fds = count_fds();

    RUN(init_makes_the_descriptor_non_blocking_and_the_handles);
    RUN(a_zeroed_handle_is_closed);
    RUN(null_arguments_are_einval);
    RUN(bad_events_are_einval_and_a_wait_outside_a_task_is_eperm);
    RUN(a_closed_handle_says_ebadf_and_closes_twice);
    RUN(a_regular_file_cannot_be_waited_on);
    RUN(a_task_of_another_loop_gets_eperm);
    RUN(a_second_reader_gets_ebusy_and_a_writer_is_fine);
    RUN(a_wait_for_both_directions_holds_both);
    RUN(readiness_on_a_socketpair);
    RUN(readiness_that_came_while_nobody_waited_is_kept_until_taken);
    RUN(deadlines);
    RUN(a_cancelled_wait_frees_the_handle_and_consumes_nothing);
    RUN(a_cancel_after_the_grant_lets_the_transfer_complete);
    RUN(a_cancel_before_the_first_run_or_before_the_call);
    RUN(a_close_ends_the_waits_with_ebadf);
    RUN(a_release_ends_the_waits_and_returns_the_descriptor);
    RUN(a_close_between_runs_ends_the_wait_at_the_next_run);
    RUN(a_read_at_the_end_of_the_stream_returns_0);
    RUN(a_pipe_between_two_tasks);
    RUN(write_all_of_many_bytes_arrives_in_order);
    RUN(write_all_stopped_early_says_how_much_went);
    RUN(a_task_waiting_on_io_is_no_deadlock);
    RUN(a_registered_handle_nobody_waits_on_does_not_hide_a_deadlock);
    RUN(a_busy_loop_does_not_keep_a_reader_waiting);
    RUN(a_destroyed_loop_cuts_its_handles_loose);
    RUN(a_dense_task_cannot_wait_on_a_handle_in_its_own_stack);
    RUN(a_failed_registration_leaves_nothing_and_a_retry_works);
    RUN(each_registration_failing_in_turn);
    RUN(addresses_are_numeric_and_format_as_text);
    RUN(tcp_echo_on_loopback);
    RUN(tcp_both_ways_at_once);
    RUN(accept_with_deadlines_and_cancelled);
    RUN(a_connect_to_a_closed_port_is_refused);
    RUN(a_connect_with_deadline_0_goes_on);
    RUN(many_clients_one_server);
    RUN(a_send_to_a_peer_that_closed_fails_without_sigpipe);
    RUN(tcp_echo_on_ipv6_loopback);
    RUN(unix_domain_stream_echo);
    RUN(udp_datagrams);
    RUN(socket_misuse);
    RUN(a_unix_connect_to_a_full_backlog_connects_once_there_is_room);
    RUN(a_recv_of_0_bytes_returns_0_at_once_over_tcp);
    RUN(a_try_wait_sees_readiness_after_the_loop_idled);
    RUN(a_try_sees_readiness_while_the_loop_is_busy);
    RUN(a_listener_binds_again_to_a_port_in_time_wait);
    RUN(a_second_connect_while_one_is_under_way_waits_for_it);

    CHECK_EQ(count_fds(), fds); /* no descriptor left open by any case */
    CHECK_EQ(rmdir(tmpdir), 0);
    return 0;
}
