/*
 * test_stream.c - streams (cosync_stream_*): asyncio's StreamReader and
 * StreamWriter over a handle, with a buffer of `limit` bytes.
 *
 * The rules of test_io.c: every loop runs on the virtual clock; data that
 * must arrive before a deadline goes through a socketpair or a pipe (in
 * the peer's queue the moment the write returns); over loopback TCP every
 * wait for data that is coming is COSYNC_FOREVER, and finite deadlines are
 * given only where the outcome is the timeout. No case sleeps for real or
 * asserts timing. Orders of tasks are checked with a log.
 *
 * The property most of the cases turn around: a read ended by a cancel, a
 * deadline or an error has taken nothing, and the bytes that came stay
 * buffered for the next read (they have left the kernel: FIONREAD says 0).
 *
 * White-box (core.h, fault.h): the loop's count of tasks blocked on I/O,
 * the fault injection of the stream's one allocation, and the stream's
 * private fields where the case says so (its limit, how much is buffered).
 */
/* ctest-timeout: 120 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "core.h"  /* loop->io_waiters */
#include "fault.h" /* cosync__fault_countdown, cosync__fault_failures */

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

#define FOREVER COSYNC_FOREVER
#define SEP4 "\r\n\r\n"

/* The directory of this run's Unix-domain socket, made by main(). */
static char tmpdir[64];

/* An ordering log: tasks append checkpoints, the case compares at the end. */
#define LOG_MAX 1024
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

static bool fd_open(int fd)
{
    return fcntl(fd, F_GETFD) >= 0;
}

static bool fd_closed(int fd)
{
    return fcntl(fd, F_GETFD) < 0 && errno == EBADF;
}

/* The loop's count of tasks blocked on I/O (call from a task). */
static size_t io_waiters(void)
{
    return cosync_loop_current()->io_waiters;
}

/* The bytes the kernel holds for a read of @fd (not yet taken by anyone). */
static int kernel_queued(int fd)
{
    int n = -1;
    CHECK_EQ(ioctl(fd, FIONREAD, &n), 0);
    return n;
}

/* The bytes @s holds buffered (white-box). */
static size_t buffered(const cosync_stream *s)
{
    return s->end - s->start;
}

/* Two connected ends: @io is the one the streams read (and write), @pio
 * the peer's, whose raw descriptor @peer the test writes directly (a
 * socketpair, or a pipe: @io its reading end). */
typedef struct pair {
    cosync_io io;
    cosync_io pio;
    int fd;
    int peer;
} pair;

static void pair_open(pair *p)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(cosync_io_init(&p->io, sv[0]));
    CHECK_OK(cosync_io_init(&p->pio, sv[1]));
    p->fd = sv[0];
    p->peer = sv[1];
}

static void pipe_open(pair *p)
{
    int fds[2];
    CHECK_EQ(pipe2(fds, O_CLOEXEC), 0);
    CHECK_OK(cosync_io_init(&p->io, fds[0]));
    CHECK_OK(cosync_io_init(&p->pio, fds[1]));
    p->fd = fds[0];
    p->peer = fds[1];
}

static void pair_close_peer(pair *p)
{
    CHECK_OK(cosync_io_close(&p->pio));
}

static void pair_close(pair *p)
{
    CHECK_OK(cosync_io_close(&p->io));
    CHECK(fd_closed(p->fd));
    pair_close_peer(p);
    CHECK(fd_closed(p->peer));
}

/* Write @n bytes at @b to the peer's end, all at once. */
static void put_bytes(pair *p, const void *b, size_t n)
{
    CHECK_EQ(write(p->peer, b, n), (ssize_t)n);
}

static void put(pair *p, const char *s)
{
    put_bytes(p, s, strlen(s));
}

static void stream_open(cosync_stream *s, cosync_io *io, size_t limit)
{
    CHECK_OK(cosync_stream_init(s, io, limit));
}

/* Check that a read that returned @n gave exactly the bytes of @want. */
#define CHECK_GOT(n, got, want)                                                                    \
    do {                                                                                           \
        ssize_t got__n = (n);                                                                      \
        const char *got__want = (want);                                                            \
        size_t got__len = strlen(got__want);                                                       \
        if (got__n < 0)                                                                            \
            CHECK__FAIL("%s: returned %zd (%s), expected %zu bytes \"%s\"", #n, got__n,            \
                        cosync_err_name((int)got__n), got__len, got__want);                        \
        if ((size_t)got__n != got__len || memcmp((got), got__want, got__len) != 0)                 \
            CHECK__FAIL("%s: got %zd bytes \"%.*s\", expected %zu \"%s\"", #n, got__n,             \
                        (int)got__n, (const char *)(got), got__len, got__want);                    \
    } while (0)

/* Reads whose bytes must be @want (deadline 0 where they must be there). */
#define LINE_IS(s, want, deadline)                                                                 \
    do {                                                                                           \
        char li__buf[512];                                                                         \
        CHECK_GOT(cosync_stream_readline((s), li__buf, sizeof li__buf, (deadline)), li__buf,       \
                  (want));                                                                         \
    } while (0)

#define UNTIL_IS(s, sep, want, deadline)                                                           \
    do {                                                                                           \
        char ui__buf[512];                                                                         \
        CHECK_GOT(                                                                                 \
            cosync_stream_readuntil((s), (sep), strlen(sep), ui__buf, sizeof ui__buf, (deadline)), \
            ui__buf, (want));                                                                      \
    } while (0)

#define EXACTLY_IS(s, n, want, deadline)                                                           \
    do {                                                                                           \
        char ei__buf[512];                                                                         \
        CHECK_GOT(cosync_stream_readexactly((s), ei__buf, (n), (deadline)), ei__buf, (want));      \
    } while (0)

#define READ_IS(s, n, want, deadline)                                                              \
    do {                                                                                           \
        char ri__buf[512];                                                                         \
        CHECK_GOT(cosync_stream_read((s), ri__buf, (n), (deadline)), ri__buf, (want));             \
    } while (0)

static cosync_task spawn(cosync_task_fn fn, void *arg)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, fn, arg, NULL));
    return t;
}

/* Yield until the loop's look at I/O has granted a waiting task: it is
 * then ready (behind this task) and has not run. */
static void yield_until_granted(void)
{
    int i;
    for (i = 0; i < 100000 && ready_tasks() == 0; i++)
        CHECK_OK(cosync_yield());
    CHECK_EQ(ready_tasks(), 1);
    CHECK_EQ(io_waiters(), 0);
}

/* Write to the non-blocking @fd until its buffer is full; the bytes written. */
static size_t fill_fd(int fd)
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

/* Read what the non-blocking @fd holds (until EAGAIN or its end), check it
 * is the pattern @seed from byte 0; the count. */
static size_t drain_pattern(int fd, unsigned seed)
{
    static unsigned char buf[65536];
    size_t total = 0;
    for (int i = 0; i < 100000; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0)
            CHECK_EQ(errno, EAGAIN);
        if (n <= 0)
            return total;
        check_pattern(buf, (size_t)n, seed, total);
        total += (size_t)n;
    }
    CHECK__FAIL("fd %d never drained", fd);
}

/* FNV-1a over @n bytes, continuing @h. */
static uint64_t fnv(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= UINT64_C(0x100000001b3);
    }
    return h;
}

#define FNV_START UINT64_C(0xcbf29ce484222325)

/* ------------------------------------------------------------------------
 * init and destroy
 * ---------------------------------------------------------------------- */

/* NULL arguments: EINVAL; a closed or zeroed handle: EBADF; the stream
 * is left untouched by a refusal. */
TEST(init_refuses_null_arguments_and_closed_handles)
{
    pair p;
    pair_open(&p);
    cosync_stream s, before;
    memset(&s, 0xA5, sizeof s);
    memcpy(&before, &s, sizeof s);

    CHECK_ERR(cosync_stream_init(NULL, &p.io, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_init(&s, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_init(NULL, NULL, 16), COSYNC_EINVAL);
    static cosync_io zeroed;
    CHECK_ERR(cosync_stream_init(&s, &zeroed, 0), COSYNC_EBADF);
    cosync_io closed;
    int fd = dup(p.peer);
    CHECK_GE(fd, 0);
    CHECK_OK(cosync_io_init(&closed, fd));
    CHECK_OK(cosync_io_close(&closed));
    CHECK_ERR(cosync_stream_init(&s, &closed, 64), COSYNC_EBADF);
    CHECK_EQ(memcmp(&s, &before, sizeof s), 0);
    pair_close(&p);
}

/* The one allocation failing: ENOMEM and the stream untouched; it is the
 * only failure point init passes; a retry works. */
TEST(init_fails_cleanly_when_its_buffer_cannot_be_had)
{
    pair p;
    pair_open(&p);
    cosync_stream s, before;
    memset(&s, 0x5A, sizeof s);
    memcpy(&before, &s, sizeof s);

    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    int rc = cosync_stream_init(&s, &p.io, 128);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(memcmp(&s, &before, sizeof s), 0);

    /* one point passed, no second one */
    cosync__fault_countdown = 1;
    rc = cosync_stream_init(&s, &p.io, 128);
    long left = cosync__fault_countdown;
    cosync__fault_countdown = -1;
    CHECK_OK(rc);
    CHECK_EQ(left, 0);
    CHECK_EQ(cosync__fault_failures, failures + 1);

    put(&p, "works\n");
    LINE_IS(&s, "works\n", 0); /* there: no wait, no task needed */
    CHECK_OK(cosync_stream_destroy(&s));
    pair_close(&p);
}

static pair lim_pair;
static unsigned char lim_data[COSYNC_STREAM_LIMIT + 10];
static unsigned char lim_out[COSYNC_STREAM_LIMIT];

static int lim_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t w = 0, half = sizeof lim_data / 2;
    CHECK_OK(cosync_io_write_all(&lim_pair.pio, lim_data, half, &w, FOREVER));
    CHECK_EQ(w, half);
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* the reader waits for the rest */
    CHECK_OK(
        cosync_io_write_all(&lim_pair.pio, lim_data + half, sizeof lim_data - half, &w, FOREVER));
    CHECK_EQ(w, sizeof lim_data - half);
    return 0;
}

static int limit_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &lim_pair;
    pair_open(p);
    cosync_stream s;
    stream_open(&s, &p->io, 0);
    CHECK_EQ(s.cap, COSYNC_STREAM_LIMIT);
    uint64_t before = switches();
    CHECK_ERR(cosync_stream_readexactly(&s, lim_out, COSYNC_STREAM_LIMIT + 1, FOREVER),
              COSYNC_EINVAL);
    CHECK_EQ(switches(), before);

    /* the limit itself, coming in two writes */
    fill_pattern(lim_data, sizeof lim_data, 3);
    int64_t t0 = cosync_now();
    cosync_task w = spawn(lim_writer, NULL);
    CHECK_EQ(cosync_stream_readexactly(&s, lim_out, COSYNC_STREAM_LIMIT, FOREVER),
             COSYNC_STREAM_LIMIT);
    check_pattern(lim_out, COSYNC_STREAM_LIMIT, 3, 0);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(1)); /* it waited for the second */
    join_ok(w);
    CHECK_EQ(cosync_stream_readexactly(&s, lim_out, 10, FOREVER), 10);
    check_pattern(lim_out, 10, 3, COSYNC_STREAM_LIMIT);
    CHECK_OK(cosync_stream_destroy(&s));

    /* limit 1: only a lone newline is a line */
    stream_open(&s, &p->io, 1);
    CHECK_EQ(s.cap, 1);
    char two[2];
    CHECK_ERR(cosync_stream_readexactly(&s, two, 2, 0), COSYNC_EINVAL);
    put(p, "\nab\n");
    LINE_IS(&s, "\n", 0);
    CHECK_ERR(cosync_stream_readline(&s, two, sizeof two, 0), COSYNC_EOVERFLOW);
    READ_IS(&s, 2, "a", 0);
    READ_IS(&s, 2, "b", 0);
    LINE_IS(&s, "\n", 0);
    CHECK_OK(cosync_stream_destroy(&s));
    pair_close(p);
    return 0;
}

/* Limit 0 is COSYNC_STREAM_LIMIT: a count of the limit can be read (it
 * comes in two writes), one more is EINVAL at once; limit 1 works too. */
TEST(limit_0_is_the_default_limit)
{
    run_main_ok(limit_main, NULL);
}

/* Destroy: NULL is EINVAL; a zeroed or destroyed stream says 0 again;
 * every call on one is EINVAL (at_eof false); the handle stays open and
 * usable. */
TEST(destroy_twice_and_calls_on_a_destroyed_stream)
{
    pair p;
    pair_open(&p);
    cosync_stream s, z;
    memset(&z, 0, sizeof z);
    char buf[16];
    size_t w;

    CHECK_ERR(cosync_stream_destroy(NULL), COSYNC_EINVAL);
    CHECK_OK(cosync_stream_destroy(&z));
    CHECK_OK(cosync_stream_destroy(&z));

    stream_open(&s, &p.io, 32);
    put(&p, "a\nb\n");
    LINE_IS(&s, "a\n", 0);
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_stream_destroy(&s));

    cosync_stream *each[] = {&s, &z};
    for (int i = 0; i < 2; i++) {
        cosync_stream *d = each[i];
        CHECK_ERR(cosync_stream_readuntil(d, "\n", 1, buf, sizeof buf, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_stream_readline(d, buf, sizeof buf, FOREVER), COSYNC_EINVAL);
        CHECK_ERR(cosync_stream_readexactly(d, buf, 1, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_stream_readexactly(d, buf, 0, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_stream_read(d, buf, sizeof buf, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_stream_read(d, buf, 0, 0), COSYNC_EINVAL);
        w = 99;
        CHECK_ERR(cosync_stream_write(d, "x", 1, &w, 0), COSYNC_EINVAL);
        CHECK_EQ(w, 0);
        CHECK_ERR(cosync_stream_write(d, "x", 1, NULL, 0), COSYNC_EINVAL);
        CHECK(!cosync_stream_at_eof(d));
    }
    CHECK(!cosync_stream_at_eof(NULL));
    CHECK_EQ(kernel_queued(p.peer), 0); /* nothing was written */

    /* the handle is the caller's still */
    CHECK_EQ(cosync_io_fd(&p.io), p.fd);
    CHECK(fd_open(p.fd));
    put(&p, "c");
    CHECK_EQ(cosync_io_read(&p.io, buf, sizeof buf, 0), 1);
    CHECK_EQ(buf[0], 'c');
    CHECK_EQ(cosync_io_write(&p.io, "d", 1, 0), 1);
    CHECK_EQ(read(p.peer, buf, sizeof buf), 1);
    CHECK_EQ(buf[0], 'd');
    /* and a new stream on it works */
    stream_open(&s, &p.io, 8);
    put(&p, "again\n");
    LINE_IS(&s, "again\n", 0);
    CHECK_OK(cosync_stream_destroy(&s));
    pair_close(&p);
}

static int kinds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair pp;
    cosync_stream r, w;
    size_t written;
    sigset_t pipe_set, old_mask, pending;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);

    /* a pipe: read(2) and write(2) (recv and send would say ENOTSOCK) */
    pipe_open(&pp);
    stream_open(&r, &pp.io, 32);
    stream_open(&w, &pp.pio, 32);
    CHECK(!r.socket && !w.socket);
    written = 99;
    CHECK_OK(cosync_stream_write(&w, "over a pipe\n", 12, &written, FOREVER));
    CHECK_EQ(written, 12);
    LINE_IS(&r, "over a pipe\n", 0);
    /* its reader goes: EPIPE where SIGPIPE is ignored */
    CHECK_OK(cosync_stream_destroy(&r));
    CHECK_OK(cosync_io_close(&pp.io));
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    CHECK_EQ(sigaction(SIGPIPE, &ign, &old), 0);
    written = 99;
    int rc = cosync_stream_write(&w, "x", 1, &written, FOREVER);
    CHECK_EQ(sigaction(SIGPIPE, &old, NULL), 0);
    CHECK_ERR(rc, COSYNC_EPIPE);
    CHECK_EQ(written, 0);
    /* with SIGPIPE blocked, the write raised it, as write(2) does */
    CHECK_EQ(sigprocmask(SIG_BLOCK, &pipe_set, &old_mask), 0);
    rc = cosync_stream_write(&w, "y", 1, NULL, FOREVER);
    CHECK_EQ(sigpending(&pending), 0);
    bool raised = sigismember(&pending, SIGPIPE) == 1;
    if (raised)
        CHECK_EQ(sigtimedwait(&pipe_set, NULL, &(struct timespec){0, 0}), SIGPIPE);
    CHECK_EQ(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
    CHECK_ERR(rc, COSYNC_EPIPE);
    CHECK(raised);
    CHECK_OK(cosync_stream_destroy(&w));
    pair_close_peer(&pp);

    /* a socket: send(2) with MSG_NOSIGNAL; SIGPIPE's default action is
     * on (main set it): raised, it would end the program */
    pair_open(&pp);
    stream_open(&w, &pp.io, 32);
    CHECK(w.socket);
    CHECK_OK(cosync_stream_write(&w, "hi", 2, NULL, FOREVER));
    char buf[4];
    CHECK_EQ(read(pp.peer, buf, sizeof buf), 2);
    pair_close_peer(&pp);
    written = 99;
    CHECK_ERR(cosync_stream_write(&w, "gone", 4, &written, FOREVER), COSYNC_EPIPE);
    CHECK_EQ(written, 0);
    CHECK_EQ(sigprocmask(SIG_BLOCK, &pipe_set, &old_mask), 0);
    rc = cosync_stream_write(&w, "gone", 4, NULL, FOREVER);
    CHECK_EQ(sigpending(&pending), 0);
    raised = sigismember(&pending, SIGPIPE) == 1;
    if (raised)
        CHECK_EQ(sigtimedwait(&pipe_set, NULL, &(struct timespec){0, 0}), SIGPIPE);
    CHECK_EQ(sigprocmask(SIG_SETMASK, &old_mask, NULL), 0);
    CHECK_ERR(rc, COSYNC_EPIPE);
    CHECK(!raised);
    CHECK_OK(cosync_stream_destroy(&w));
    CHECK_OK(cosync_io_close(&pp.io));
    return 0;
}

/* init tells a socket from a pipe: a pipe is read and written with
 * read(2)/write(2) (its lost reader: EPIPE where SIGPIPE is ignored, and
 * SIGPIPE raised where it is blocked), a socket never raises SIGPIPE. */
TEST(init_tells_a_socket_from_a_pipe)
{
    run_main_ok(kinds_main, NULL);
}

/* ------------------------------------------------------------------------
 * readline
 * ---------------------------------------------------------------------- */

static const char bb_text[] = "one\ntwo\n\nthree\nfour";
static const char *const bb_lines[] = {"one\n", "two\n", "\n", "three\n", "four"};
#define BB_LINES 5
static pair bb_pair;
static cosync_stream bb_stream;

static int bb_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    for (size_t i = 0; i < sizeof bb_text - 1; i++) {
        put_bytes(&bb_pair, &bb_text[i], 1);
        log_add(100 + (int)i);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
    log_add(999);
    pair_close_peer(&bb_pair); /* the end of the stream */
    return 0;
}

static int bb_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_stream *s = &bb_stream;
    for (int k = 0; k < BB_LINES; k++) {
        LINE_IS(s, bb_lines[k], FOREVER);
        log_add(k + 1);
        CHECK_EQ(cosync_stream_at_eof(s), k == BB_LINES - 1); /* "four" came with the end */
    }
    char buf[8];
    CHECK_EQ(cosync_stream_readline(s, buf, sizeof buf, FOREVER), 0);
    log_add(BB_LINES + 1);
    CHECK(cosync_stream_at_eof(s));
    uint64_t before = switches();
    CHECK_EQ(cosync_stream_readline(s, buf, sizeof buf, FOREVER), 0); /* again, at once */
    CHECK_EQ(switches(), before);
    return 0;
}

static int bb_main(void *arg, void **result)
{
    (void)arg, (void)result;
    log_reset();
    pair_open(&bb_pair);
    stream_open(&bb_stream, &bb_pair.io, 8);
    cosync_task r = spawn(bb_reader, NULL);
    cosync_task w = spawn(bb_writer, NULL);
    join_ok(r);
    join_ok(w);
    /* each line returns right after its newline is written, before the
     * next byte; the last one (no newline) at the end of the stream */
    int want[LOG_MAX], n = 0, line = 1;
    for (size_t i = 0; i < sizeof bb_text - 1; i++) {
        want[n++] = 100 + (int)i;
        if (bb_text[i] == '\n')
            want[n++] = line++;
    }
    want[n++] = 999;
    want[n++] = line++; /* "four" */
    want[n++] = line++; /* 0 */
    CHECK_EQ(line, BB_LINES + 2);
    check_log(want, n);
    CHECK_OK(cosync_stream_destroy(&bb_stream));
    CHECK_OK(cosync_io_close(&bb_pair.io));
    return 0;
}

/* Lines written one byte at a time by a task interleaved with the reader:
 * each line, the empty one too, returns right after its newline; the last
 * one without newline at the end of the stream; then 0 and at_eof. */
TEST(readline_of_lines_written_byte_by_byte)
{
    run_main_ok(bb_main, NULL);
}

static int many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 64);
    char buf[16];
    put(&p, "a\nbb\nccc\n\nd");
    uint64_t before = switches();
    LINE_IS(&s, "a\n", FOREVER); /* all there: no wait */
    CHECK_EQ(kernel_queued(p.fd), 0);
    LINE_IS(&s, "bb\n", FOREVER);
    LINE_IS(&s, "ccc\n", FOREVER);
    LINE_IS(&s, "\n", FOREVER);
    CHECK_ERR(cosync_stream_readline(&s, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK(!cosync_stream_at_eof(&s));
    CHECK_EQ(buffered(&s), 1);
    /* the end: the last line without its newline, then 0 from every read */
    pair_close_peer(&p);
    LINE_IS(&s, "d", FOREVER);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_EQ(cosync_stream_readline(&s, buf, sizeof buf, FOREVER), 0);
    CHECK_EQ(cosync_stream_readline(&s, buf, sizeof buf, 0), 0);
    CHECK_EQ(cosync_stream_readuntil(&s, SEP4, 4, buf, sizeof buf, FOREVER), 0);
    CHECK_EQ(cosync_stream_readexactly(&s, buf, 5, FOREVER), 0);
    CHECK_EQ(cosync_stream_read(&s, buf, sizeof buf, FOREVER), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&p.io));

    /* the same over a pipe (read(2), and its end is the writer's close) */
    pipe_open(&p);
    stream_open(&s, &p.io, 64);
    put(&p, "x\n\ny");
    LINE_IS(&s, "x\n", 0);
    LINE_IS(&s, "\n", 0);
    CHECK_ERR(cosync_stream_readline(&s, buf, sizeof buf, 0), COSYNC_EAGAIN);
    pair_close_peer(&p);
    LINE_IS(&s, "y", 0);
    CHECK_EQ(cosync_stream_readline(&s, buf, sizeof buf, 0), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&p.io));
    return 0;
}

/* Many lines in one write: each readline takes one, without a switch;
 * a last line without newline waits (EAGAIN with deadline 0), then is
 * returned at the end; then 0 from every kind of read; over a pipe too. */
TEST(readline_of_many_lines_in_one_write)
{
    run_main_ok(many_main, NULL);
}

static int overflow_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 16);
    char buf[64];

    /* exactly the limit fits; from a fresh buffer, and after a short line
     * (the rest then moves to the front of the buffer to make room) */
    put(&p, "0123456789abcde\n");
    LINE_IS(&s, "0123456789abcde\n", 0);
    put(&p, "ab\n0123456789ABCDE\n");
    LINE_IS(&s, "ab\n", 0);
    CHECK_EQ(s.end, 16);
    LINE_IS(&s, "0123456789ABCDE\n", 0);

    /* one byte more: EOVERFLOW, at once (no wait, whatever the deadline),
     * nothing taken; cosync_stream_read drains it */
    put(&p, "0123456789abcdef\n");
    uint64_t before = switches();
    CHECK_ERR(cosync_stream_readline(&s, buf, sizeof buf, 0), COSYNC_EOVERFLOW);
    CHECK_ERR(cosync_stream_readline(&s, buf, sizeof buf, FOREVER), COSYNC_EOVERFLOW);
    CHECK_ERR(cosync_stream_readuntil(&s, SEP4, 4, buf, sizeof buf, FOREVER), COSYNC_EOVERFLOW);
    CHECK_EQ(switches(), before);
    CHECK_EQ(buffered(&s), 16);
    CHECK_EQ(kernel_queued(p.fd), 1); /* the newline */
    CHECK(!cosync_stream_at_eof(&s));
    READ_IS(&s, sizeof buf, "0123456789abcdef", 0);
    LINE_IS(&s, "\n", 0);

    /* @size smaller than the line: EOVERFLOW, nothing taken; a big
     * enough buffer then gets it (exactly its size is enough) */
    put(&p, "hello\nworld\n");
    CHECK_ERR(cosync_stream_readline(&s, buf, 5, 0), COSYNC_EOVERFLOW);
    CHECK_ERR(cosync_stream_readline(&s, buf, 1, FOREVER), COSYNC_EOVERFLOW);
    CHECK_EQ(buffered(&s), 12);
    CHECK_EQ(cosync_stream_readline(&s, buf, 6, 0), 6);
    CHECK_EQ(memcmp(buf, "hello\n", 6), 0);
    CHECK_ERR(cosync_stream_readuntil(&s, "ld", 2, buf, 4, 0), COSYNC_EOVERFLOW);
    UNTIL_IS(&s, "ld", "world", 0);
    LINE_IS(&s, "\n", 0);

    /* a line too long that ends with the stream: EOVERFLOW while it fills
     * the buffer; the rest of it after a read made room, at the end */
    put(&p, "0123456789abcdefXYZ");
    pair_close_peer(&p);
    CHECK_ERR(cosync_stream_readline(&s, buf, sizeof buf, 0), COSYNC_EOVERFLOW);
    READ_IS(&s, 100, "0123456789abcdef", 0);
    /* at the end, what is left larger than @size: EOVERFLOW too */
    CHECK_ERR(cosync_stream_readline(&s, buf, 2, 0), COSYNC_EOVERFLOW);
    CHECK(!cosync_stream_at_eof(&s));
    CHECK_EQ(cosync_stream_readline(&s, buf, 3, 0), 3); /* exactly @size fits */
    CHECK_EQ(memcmp(buf, "XYZ", 3), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_EQ(cosync_stream_readline(&s, buf, 2, 0), 0);
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&p.io));
    return 0;
}

/* A line of exactly the limit fits; one byte longer is EOVERFLOW with
 * nothing taken (cosync_stream_read drains it); an @size smaller than the
 * line: EOVERFLOW, nothing taken, and a bigger buffer gets it. */
TEST(readline_limit_and_size_overflow)
{
    run_main_ok(overflow_main, NULL);
}

/* ------------------------------------------------------------------------
 * readuntil
 * ---------------------------------------------------------------------- */

static const char req_text[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\nBODY";
#define REQ_HEAD (sizeof req_text - 1 - 4) /* up to and with "\r\n\r\n" */

static int split_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 64);
    char head[REQ_HEAD + 1];
    memcpy(head, req_text, REQ_HEAD);
    head[REQ_HEAD] = '\0';
    size_t total = sizeof req_text - 1;
    /* in two writes, split at every byte: the separator is whole only
     * with the second one if the split is inside it or before it */
    for (size_t k = 1; k < total; k++) {
        put_bytes(&p, req_text, k);
        if (k < REQ_HEAD) {
            char buf[64];
            CHECK_ERR(cosync_stream_readuntil(&s, SEP4, 4, buf, sizeof buf, 0), COSYNC_EAGAIN);
            CHECK_EQ(buffered(&s), k);
        }
        put_bytes(&p, req_text + k, total - k);
        UNTIL_IS(&s, SEP4, head, 0);
        READ_IS(&s, 64, "BODY", 0);
        CHECK_EQ(buffered(&s), 0);
    }
    /* in three writes: every pair of split points */
    for (size_t a = 1; a < REQ_HEAD; a++) {
        for (size_t b = a + 1; b <= REQ_HEAD; b++) {
            char buf[64];
            put_bytes(&p, req_text, a);
            CHECK_ERR(cosync_stream_readuntil(&s, SEP4, 4, buf, sizeof buf, 0), COSYNC_EAGAIN);
            put_bytes(&p, req_text + a, b - a);
            if (b < REQ_HEAD)
                CHECK_ERR(cosync_stream_readuntil(&s, SEP4, 4, buf, sizeof buf, 0), COSYNC_EAGAIN);
            put_bytes(&p, req_text + b, total - b);
            UNTIL_IS(&s, SEP4, head, 0);
            READ_IS(&s, 64, "BODY", 0);
        }
    }
    CHECK_EQ(kernel_queued(p.fd), 0);
    CHECK_OK(cosync_stream_destroy(&s));
    pair_close(&p);
    return 0;
}

/* readuntil("\r\n\r\n") with the message split in two writes at every
 * byte, and in three at every pair of points: the separator is found
 * exactly when its last byte has come. */
TEST(readuntil_a_separator_split_at_every_boundary)
{
    run_main_ok(split_main, NULL);
}

/* The bytes of a message, a separator look-alike in it, one at a time. */
static const char ob_text[] = "a\r\n\rb\r\r\n\r\r\n\r\nrest";
#define OB_HEAD 13 /* through the first whole "\r\n\r\n" */
static pair ob_pair;
static cosync_stream ob_stream;

static int ob_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    for (size_t i = 0; i < sizeof ob_text - 1; i++) {
        put_bytes(&ob_pair, &ob_text[i], 1);
        log_add(100 + (int)i);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
    return 0;
}

static int ob_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char want[OB_HEAD + 1];
    memcpy(want, ob_text, OB_HEAD);
    want[OB_HEAD] = '\0';
    UNTIL_IS(&ob_stream, SEP4, want, FOREVER);
    log_add(1);
    EXACTLY_IS(&ob_stream, 4, "rest", FOREVER);
    log_add(2);
    return 0;
}

static int ob_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(strstr(ob_text, SEP4) == ob_text + OB_HEAD - 4);
    log_reset();
    pair_open(&ob_pair);
    stream_open(&ob_stream, &ob_pair.io, 16);
    cosync_task r = spawn(ob_reader, NULL);
    cosync_task w = spawn(ob_writer, NULL);
    join_ok(r);
    join_ok(w);
    int want[LOG_MAX], n = 0;
    for (int i = 0; i < (int)sizeof ob_text - 1; i++) {
        want[n++] = 100 + i;
        if (i == OB_HEAD - 1)
            want[n++] = 1;
    }
    want[n++] = 2;
    check_log(want, n);
    CHECK_OK(cosync_stream_destroy(&ob_stream));
    pair_close(&ob_pair);
    return 0;
}

/* A reader task waits in readuntil("\r\n\r\n") while a writer sends one
 * byte at a time, look-alikes of the separator ("\r\n\r" then "b") first:
 * it returns right after the separator's last byte, not before. */
TEST(readuntil_with_the_separator_arriving_byte_by_byte)
{
    run_main_ok(ob_main, NULL);
}

static int sep_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 32);
    char buf[32];

    /* the separator at the very start */
    put(&p, SEP4 "X");
    UNTIL_IS(&s, SEP4, SEP4, 0);
    READ_IS(&s, sizeof buf, "X", 0);

    /* overlapping prefixes, whole and in every split */
    static const char *const splits[][2] = {
        {"aaab", ""}, {"a", "aab"}, {"aa", "ab"}, {"aaa", "b"}, {"aaaa", "b"}};
    static const char *const wants[] = {"aaab", "aaab", "aaab", "aaab", "aaaab"};
    for (int i = 0; i < 5; i++) {
        put(&p, splits[i][0]);
        if (*splits[i][1]) {
            CHECK_ERR(cosync_stream_readuntil(&s, "aab", 3, buf, sizeof buf, 0), COSYNC_EAGAIN);
            put(&p, splits[i][1]);
        }
        UNTIL_IS(&s, "aab", wants[i], 0);
    }
    put(&p, "abababac|");
    UNTIL_IS(&s, "ababac", "abababac", 0);
    READ_IS(&s, sizeof buf, "|", 0);
    /* the same bytes, another separator: the first match wins */
    put(&p, "xyxyxy");
    UNTIL_IS(&s, "yx", "xyx", 0);
    UNTIL_IS(&s, "y", "y", 0);
    UNTIL_IS(&s, "xy", "xy", 0);

    /* refusals: at once, nothing taken */
    put(&p, "keep\n");
    uint64_t before = switches();
    CHECK_ERR(cosync_stream_readuntil(&s, "\n", 0, buf, sizeof buf, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readuntil(&s, NULL, 1, buf, sizeof buf, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readuntil(&s, NULL, 0, buf, sizeof buf, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readuntil(&s, "\n", 1, NULL, 8, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readuntil(NULL, "\n", 1, buf, sizeof buf, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readline(NULL, buf, sizeof buf, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readline(&s, NULL, 8, 0), COSYNC_EINVAL);
    CHECK_EQ(switches(), before);
    CHECK_EQ(kernel_queued(p.fd), 5);
    LINE_IS(&s, "keep\n", 0);
    CHECK_OK(cosync_stream_destroy(&s));
    pair_close(&p);
    return 0;
}

/* readuntil: a separator at the very start; overlapping prefixes ("aab"
 * in "aaab", split every way; "ababac" in "abababac"); seplen 0, a NULL
 * separator or buffer: EINVAL at once, nothing taken. */
TEST(readuntil_separator_at_start_overlaps_and_refusals)
{
    run_main_ok(sep_main, NULL);
}

/* ------------------------------------------------------------------------
 * readexactly and read
 * ---------------------------------------------------------------------- */

static pair ex_pair;
static cosync_stream ex_stream;

static int ex_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    static const char *const pieces[] = {"abc", "def", "ghi", "jkl"};
    for (int i = 0; i < 4; i++) {
        put(&ex_pair, pieces[i]);
        log_add(10 + i);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
    return 0;
}

static int ex_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    EXACTLY_IS(&ex_stream, 10, "abcdefghij", FOREVER);
    log_add(1);
    return 0;
}

static int exactly_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &ex_pair;
    pair_open(p);
    cosync_stream *s = &ex_stream;
    stream_open(s, &p->io, 16);
    char buf[32];

    /* n bytes in pieces: returns after the piece that completes them */
    log_reset();
    cosync_task r = spawn(ex_reader, NULL);
    cosync_task w = spawn(ex_writer, NULL);
    join_ok(r);
    join_ok(w);
    CHECK_LOG(10, 11, 12, 13, 1);
    EXACTLY_IS(s, 2, "kl", 0);

    /* n = 0: 0 at once, nothing there, any deadline (a NULL buffer: see
     * bug_a_null_buffer_with_count_0 below) */
    uint64_t before = switches();
    CHECK_EQ(cosync_stream_readexactly(s, buf, 0, FOREVER), 0);
    /* n above the limit, or a NULL buffer: EINVAL at once */
    put(p, "0123456789abcdefXYZW");
    CHECK_ERR(cosync_stream_readexactly(s, buf, 17, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readexactly(s, buf, SIZE_MAX, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readexactly(s, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_readexactly(NULL, buf, 1, 0), COSYNC_EINVAL);
    CHECK_EQ(switches(), before);
    CHECK_EQ(kernel_queued(p->fd), 20); /* nothing read */
    /* n = the limit */
    EXACTLY_IS(s, 16, "0123456789abcdef", 0);
    EXACTLY_IS(s, 4, "XYZW", 0);
    /* n = the limit after a short read: the rest moves to the front */
    put(p, "xyz0123456789ABCDEF");
    EXACTLY_IS(s, 3, "xyz", 0);
    EXACTLY_IS(s, 16, "0123456789ABCDEF", 0);
    CHECK_EQ(switches(), before);

    /* the end of the stream with fewer: those (partial), then 0 */
    put(p, "abcde");
    CHECK_ERR(cosync_stream_readexactly(s, buf, 8, 0), COSYNC_EAGAIN);
    pair_close_peer(p);
    EXACTLY_IS(s, 8, "abcde", FOREVER);
    CHECK(cosync_stream_at_eof(s));
    CHECK_EQ(cosync_stream_readexactly(s, buf, 8, FOREVER), 0);
    CHECK_EQ(cosync_stream_readexactly(s, buf, 0, FOREVER), 0);
    CHECK_OK(cosync_stream_destroy(s));
    CHECK_OK(cosync_io_close(&p->io));

    /* at the end with more than n buffered: n, then the rest */
    pair_open(p);
    stream_open(s, &p->io, 16);
    put(p, "abcdefgh");
    pair_close_peer(p);
    EXACTLY_IS(s, 3, "abc", FOREVER);
    EXACTLY_IS(s, 3, "def", FOREVER);
    EXACTLY_IS(s, 3, "gh", FOREVER);
    CHECK_EQ(cosync_stream_readexactly(s, buf, 3, FOREVER), 0);
    CHECK_OK(cosync_stream_destroy(s));
    CHECK_OK(cosync_io_close(&p->io));
    return 0;
}

/* readexactly: n bytes in pieces (it returns with the piece that
 * completes them); n = 0; n = the limit; above it EINVAL; at the end of
 * the stream the fewer bytes left, then 0. */
TEST(readexactly_pieces_bounds_and_the_end)
{
    run_main_ok(exactly_main, NULL);
}

static int read_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 16);
    char buf[64];

    /* buffered bytes first, alone, without a read(2) (and so without a
     * suspension): what came meanwhile stays in the kernel */
    put(&p, "abc\nde");
    LINE_IS(&s, "abc\n", 0);
    put(&p, "fg");
    uint64_t before = switches();
    READ_IS(&s, sizeof buf, "de", FOREVER);
    CHECK_EQ(kernel_queued(p.fd), 2);
    READ_IS(&s, 1, "f", FOREVER); /* nothing buffered: one read(2), "fg" */
    put(&p, "hi");
    READ_IS(&s, sizeof buf, "g", FOREVER);
    CHECK_EQ(kernel_queued(p.fd), 2);
    READ_IS(&s, sizeof buf, "hi", FOREVER);
    CHECK_ERR(cosync_stream_read(&s, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), before);

    /* one read's worth: at most the buffer's room */
    static const char forty[] = "0123456789abcdefghijklmnopqrstuvwxyzABCD";
    put(&p, forty);
    READ_IS(&s, sizeof buf, "0123456789abcdef", 0);
    READ_IS(&s, 5, "ghijk", 0);
    CHECK_EQ(kernel_queued(p.fd), 8);
    READ_IS(&s, sizeof buf, "lmnopqrstuv", 0); /* the 11 buffered, not more */
    READ_IS(&s, sizeof buf, "wxyzABCD", 0);

    /* n = 0: 0 at once, whatever is buffered, and nothing taken */
    CHECK_EQ(cosync_stream_read(&s, buf, 0, FOREVER), 0);
    put(&p, "xy\nz");
    LINE_IS(&s, "xy\n", 0);
    CHECK_EQ(cosync_stream_read(&s, buf, 0, FOREVER), 0);
    CHECK_EQ(buffered(&s), 1);
    CHECK_ERR(cosync_stream_read(&s, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_read(NULL, buf, 1, 0), COSYNC_EINVAL);
    CHECK_EQ(switches(), before);
    /* the end: what is buffered, then 0 */
    pair_close_peer(&p);
    READ_IS(&s, sizeof buf, "z", FOREVER);
    CHECK(!cosync_stream_at_eof(&s)); /* the end is not known yet */
    CHECK_EQ(cosync_stream_read(&s, buf, sizeof buf, FOREVER), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_EQ(cosync_stream_read(&s, buf, sizeof buf, 0), 0);
    CHECK_EQ(cosync_stream_read(&s, buf, 0, 0), 0);
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&p.io));
    return 0;
}

/* read: what is buffered first, without a read(2) or a suspension; with
 * nothing buffered, one read's worth (at most the limit); n = 0 gives 0;
 * 0 at the end of the stream. */
TEST(read_takes_what_is_buffered_first)
{
    run_main_ok(read_main, NULL);
}

/* ------------------------------------------------------------------------
 * Cancellation, deadlines, errors: nothing is lost
 * ---------------------------------------------------------------------- */

enum kind { K_LINE, K_UNTIL, K_EXACTLY };

/* A read whose bytes arrive in four pieces (only all four complete it),
 * the last one followed by @after. */
typedef struct op {
    const char *name;
    enum kind kind;
    size_t n; /* readexactly's count */
    const char *piece[4];
    const char *want;
    const char *after;
} op;

static const op ops[] = {
    {"readline", K_LINE, 0, {"ha", "lf a ", "lin", "e\n"}, "half a line\n", "next"},
    {"readuntil", K_UNTIL, 0, {"GET /", "\r\n", "\r", "\n"}, "GET /\r\n\r\n", "body"},
    {"readexactly", K_EXACTLY, 8, {"12", "345", "67", "8"}, "12345678", "9"},
};
#define NOPS ((int)(sizeof ops / sizeof ops[0]))

static ssize_t op_run(cosync_stream *s, const op *o, char *buf, size_t size, int64_t deadline)
{
    switch (o->kind) {
    case K_LINE:
        return cosync_stream_readline(s, buf, size, deadline);
    case K_UNTIL:
        return cosync_stream_readuntil(s, SEP4, 4, buf, size, deadline);
    case K_EXACTLY:
        CHECK_LE(o->n, size);
        return cosync_stream_readexactly(s, buf, o->n, deadline);
    }
    CHECK__FAIL("op kind %d", (int)o->kind);
}

static pair cn_pair;
static cosync_stream cn_stream;
static const op *cn_op;
static ssize_t cn_rc;
static char cn_buf[64];
static int cn_after;

/* Run cn_op (FOREVER, or with a deadline far off if @arg); store what it
 * returned; then suspend once more (where a cancel after a grant comes). */
static int cn_victim(void *arg, void **result)
{
    (void)result;
    int64_t deadline = arg ? cosync_deadline_after(COSYNC_SEC(100)) : FOREVER;
    cn_rc = op_run(&cn_stream, cn_op, cn_buf, sizeof cn_buf, deadline);
    if (cn_rc < 0)
        return (int)cn_rc;
    cn_after = cosync_yield();
    return cn_after;
}

static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &cn_pair;
    cosync_stream *s = &cn_stream;
    char buf[64];
    for (int k = 0; k < NOPS; k++) {
        const op *o = cn_op = &ops[k];
        size_t sofar = 0;
        pair_open(p);
        stream_open(s, &p->io, 32);

        /* deadline 0: EAGAIN without suspending, time stands */
        put(p, o->piece[0]);
        sofar += strlen(o->piece[0]);
        uint64_t before = switches();
        int64_t t0 = cosync_now();
        CHECK_ERR(op_run(s, o, buf, sizeof buf, 0), COSYNC_EAGAIN);
        CHECK_EQ(switches(), before);
        CHECK_EQ(cosync_now(), t0);
        CHECK_EQ(buffered(s), sofar);
        CHECK_EQ(kernel_queued(p->fd), 0);
        CHECK_EQ(io_waiters(), 0);

        /* a deadline: ETIMEDOUT at exactly that time */
        put(p, o->piece[1]);
        sofar += strlen(o->piece[1]);
        int64_t dl = t0 + COSYNC_SEC(5);
        CHECK_ERR(op_run(s, o, buf, sizeof buf, dl), COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), dl);
        CHECK_EQ(buffered(s), sofar);
        CHECK_EQ(io_waiters(), 0);
        CHECK_EQ(armed_timers(), 0);
        /* one that has passed: ETIMEDOUT, and time stands */
        CHECK_ERR(op_run(s, o, buf, sizeof buf, dl - 1), COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), dl);
        CHECK_EQ(buffered(s), sofar);

        /* a task waiting with part of it buffered, cancelled (without,
         * then with a deadline; the second time a piece comes first, not
         * yet looked at by the loop) */
        for (int timed = 0; timed < 2; timed++) {
            cn_rc = 12345;
            if (timed) {
                put(p, o->piece[2]);
                sofar += strlen(o->piece[2]);
            }
            cosync_task v = spawn(cn_victim, timed ? "timed" : NULL);
            CHECK_OK(cosync_yield());
            CHECK_EQ(io_waiters(), 1);
            CHECK_EQ(buffered(s), sofar);
            CHECK_OK(cosync_task_cancel(v));
            join_expect(v, COSYNC_ECANCELED);
            CHECK_ERR(cn_rc, COSYNC_ECANCELED);
            CHECK_EQ(io_waiters(), 0);
            CHECK_EQ(armed_timers(), 0);
            CHECK_EQ(buffered(s), sofar);
        }
        CHECK_EQ(cosync_now(), dl);

        /* nothing was lost: the rest completes it */
        char last[64];
        snprintf(last, sizeof last, "%s%s", o->piece[3], o->after);
        put(p, last);
        CHECK_GOT(op_run(s, o, buf, sizeof buf, 0), buf, o->want);
        READ_IS(s, sizeof buf, o->after, 0);
        CHECK_OK(cosync_stream_destroy(s));
        pair_close(p);
    }
    return 0;
}

/* readline, readuntil and readexactly with part of their bytes buffered:
 * deadline 0 is EAGAIN without a suspension; a deadline ETIMEDOUT at
 * exactly it; a waiting task cancelled ECANCELED; after each, nothing is
 * lost: the next read returns the whole once the rest has come. */
TEST(a_read_ended_by_a_deadline_or_a_cancel_loses_nothing)
{
    run_main_ok(cancel_main, NULL);
}

static int late_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &cn_pair;
    cosync_stream *s = &cn_stream;
    char buf[64];
    for (int k = 0; k < NOPS; k++) {
        const op *o = cn_op = &ops[k];
        pair_open(p);
        stream_open(s, &p->io, 32);

        /* the grant brings the rest: the read completes, the cancel comes
         * at the next suspension */
        put(p, o->piece[0]);
        cn_rc = 12345;
        cn_after = 12345;
        cosync_task v = spawn(cn_victim, NULL);
        CHECK_OK(cosync_yield());
        CHECK_EQ(io_waiters(), 1);
        char rest[64];
        snprintf(rest, sizeof rest, "%s%s%s%s", o->piece[1], o->piece[2], o->piece[3], o->after);
        put(p, rest);
        yield_until_granted();
        CHECK_EQ(cn_rc, 12345); /* not run yet */
        CHECK_OK(cosync_task_cancel(v));
        join_expect(v, COSYNC_ECANCELED);
        CHECK_GOT(cn_rc, cn_buf, o->want);
        CHECK_ERR(cn_after, COSYNC_ECANCELED);
        READ_IS(s, sizeof buf, o->after, 0);

        /* the grant brings a part only: the read waits again, and the
         * cancel ends it there; what came is buffered */
        put(p, o->piece[0]);
        cn_rc = 12345;
        cn_after = 12345;
        v = spawn(cn_victim, "timed");
        CHECK_OK(cosync_yield());
        CHECK_EQ(io_waiters(), 1);
        put(p, o->piece[1]);
        yield_until_granted();
        CHECK_OK(cosync_task_cancel(v));
        join_expect(v, COSYNC_ECANCELED);
        CHECK_ERR(cn_rc, COSYNC_ECANCELED);
        CHECK_EQ(cn_after, 12345);
        CHECK_EQ(buffered(s), strlen(o->piece[0]) + strlen(o->piece[1]));
        CHECK_EQ(kernel_queued(p->fd), 0);
        CHECK_EQ(armed_timers(), 0);
        snprintf(rest, sizeof rest, "%s%s", o->piece[2], o->piece[3]);
        put(p, rest);
        CHECK_GOT(op_run(s, o, buf, sizeof buf, 0), buf, o->want);
        CHECK_OK(cosync_stream_destroy(s));
        pair_close(p);
    }
    return 0;
}

/* A cancel that comes after the grant, before the reader runs: if the
 * bytes that came complete the read, it returns them and the cancel comes
 * at the next suspension; if not, the read waits again and the cancel
 * ends it there, with what came buffered. */
TEST(a_cancel_after_the_grant_of_a_buffered_read)
{
    run_main_ok(late_main, NULL);
}

static pair gr_pair;
static cosync_stream gr_stream;
static ssize_t gr_n;
static char gr_buf[16];
static int gr_after;

static int gr_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    gr_n = cosync_stream_read(&gr_stream, gr_buf, sizeof gr_buf, FOREVER);
    gr_after = cosync_yield();
    return gr_after;
}

static int granted_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &gr_pair;
    pair_open(p);
    stream_open(&gr_stream, &p->io, 16);
    gr_n = 12345;
    gr_after = 12345;
    cosync_task r = spawn(gr_reader, NULL);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    put(p, "data");
    yield_until_granted();
    CHECK_EQ(gr_n, 12345);
    CHECK_OK(cosync_task_cancel(r));
    join_expect(r, COSYNC_ECANCELED);
    CHECK_GOT(gr_n, gr_buf, "data");
    CHECK_ERR(gr_after, COSYNC_ECANCELED);
    CHECK_EQ(buffered(&gr_stream), 0);
    CHECK_EQ(kernel_queued(p->fd), 0);

    /* and one cancelled while it waits: ECANCELED, nothing taken */
    gr_n = 12345;
    r = spawn(gr_reader, NULL);
    CHECK_OK(cosync_yield());
    put(p, "more");
    CHECK_OK(cosync_task_cancel(r));
    join_expect(r, COSYNC_ECANCELED);
    CHECK_ERR(gr_n, COSYNC_ECANCELED);
    READ_IS(&gr_stream, 16, "more", 0);
    CHECK_OK(cosync_stream_destroy(&gr_stream));
    pair_close(p);
    return 0;
}

/* A cosync_stream_read granted and then cancelled before it runs returns
 * its data; the cancel comes at the next suspension. One cancelled while
 * it waits: ECANCELED, and the bytes are there for the next read. */
TEST(a_read_granted_then_cancelled_returns_its_data)
{
    run_main_ok(granted_main, NULL);
}

static pair ebadf_pair;
static cosync_stream ebadf_stream;
static ssize_t ebadf_rc;

static int ebadf_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[32];
    ebadf_rc = cosync_stream_readline(&ebadf_stream, buf, sizeof buf, FOREVER);
    return 0;
}

static int errors_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &ebadf_pair;
    pair_open(p);
    cosync_stream *s = &ebadf_stream;
    stream_open(s, &p->io, 16);
    char buf[32];

    /* the handle closed under a waiting reader: EBADF, and the bytes that
     * came stay buffered: a read takes them without the handle */
    put(p, "part");
    ebadf_rc = 12345;
    cosync_task r = spawn(ebadf_reader, NULL);
    CHECK_OK(cosync_yield());
    CHECK_EQ(io_waiters(), 1);
    CHECK_OK(cosync_io_close(&p->io));
    join_ok(r);
    CHECK_ERR(ebadf_rc, COSYNC_EBADF);
    CHECK_EQ(buffered(s), 4);
    CHECK_ERR(cosync_stream_readline(s, buf, sizeof buf, 0), COSYNC_EBADF);
    CHECK_ERR(cosync_stream_readexactly(s, buf, 5, FOREVER), COSYNC_EBADF);
    EXACTLY_IS(s, 2, "pa", FOREVER); /* buffered: no read of the handle */
    READ_IS(s, sizeof buf, "rt", FOREVER);
    CHECK_ERR(cosync_stream_read(s, buf, sizeof buf, FOREVER), COSYNC_EBADF);
    CHECK_ERR(cosync_stream_write(s, "x", 1, NULL, FOREVER), COSYNC_EBADF);
    CHECK(!cosync_stream_at_eof(s));
    CHECK_OK(cosync_stream_destroy(s));
    pair_close_peer(p);
    return 0;
}

/* An error of the handle's read (EBADF: closed under a waiting reader)
 * ends the read and takes nothing: the buffered bytes can still be read. */
TEST(a_handle_error_ends_a_read_and_takes_nothing)
{
    run_main_ok(errors_main, NULL);
}

/* ------------------------------------------------------------------------
 * Two readers
 * ---------------------------------------------------------------------- */

static pair two_pair;
static cosync_stream two_stream;

static int two_first(void *arg, void **result)
{
    (void)arg, (void)result;
    log_add(1);
    LINE_IS(&two_stream, "abcd\n", FOREVER);
    log_add(4);
    return 0;
}

static int two_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &two_pair;
    pair_open(p);
    cosync_stream *s = &two_stream;
    stream_open(s, &p->io, 16);
    char buf[16];
    for (int half = 0; half < 2; half++) {
        log_reset();
        if (half)
            put(p, "ab");
        cosync_task r = spawn(two_first, NULL);
        CHECK_OK(cosync_yield());
        log_add(2);
        CHECK_EQ(io_waiters(), 1);
        size_t had = buffered(s);
        CHECK_EQ(had, half ? 2 : 0);
        /* the second reader's wait: EBUSY at once, whatever the kind of
         * read and the deadline, and it takes nothing */
        uint64_t before = switches();
        CHECK_ERR(cosync_stream_readline(s, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
        CHECK_ERR(cosync_stream_readline(s, buf, sizeof buf, 0), COSYNC_EBUSY);
        CHECK_ERR(cosync_stream_readuntil(s, "d", 1, buf, sizeof buf,
                                          cosync_deadline_after(COSYNC_SEC(1))),
                  COSYNC_EBUSY);
        CHECK_ERR(cosync_stream_readexactly(s, buf, 3, FOREVER), COSYNC_EBUSY);
        /* (with "ab" buffered, read returns it without a wait, as it
         * should: and that corrupts the first reader's read, see
         * bug_a_second_reader_that_does_not_wait_corrupts_the_first) */
        if (!half)
            CHECK_ERR(cosync_stream_read(s, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
        CHECK_EQ(switches(), before);
        CHECK_EQ(buffered(s), had);
        CHECK_EQ(io_waiters(), 1);
        CHECK_EQ(armed_timers(), 0);
        /* a write meanwhile is fine */
        CHECK_OK(cosync_stream_write(s, "w", 1, NULL, FOREVER));
        CHECK_EQ(read(p->peer, buf, sizeof buf), 1);
        put(p, half ? "cd\n" : "abcd\n");
        log_add(3);
        join_ok(r);
        CHECK_LOG(1, 2, 3, 4);
    }
    CHECK_OK(cosync_stream_destroy(s));
    pair_close(p);
    return 0;
}

/* Two tasks reading one stream: while the first waits (with nothing or
 * half a line buffered), the second one's wait gets COSYNC_EBUSY from the
 * handle, at once, and takes nothing; the first then gets its line. */
TEST(a_second_reader_gets_ebusy_and_takes_nothing)
{
    run_main_ok(two_main, NULL);
}

/*
 * A second reader whose read would complete without waiting on the
 * handle, while a first reader waits inside a read of the same stream,
 * gets COSYNC_EBUSY and takes nothing (a bug once: it took the buffered
 * bytes, and the first reader's recv(2), aimed at the buffer's end as it
 * was before, then returned bytes the second had taken and lost bytes
 * that came). asyncio refuses the second reader too (RuntimeError: "read()
 * called while another coroutine is already waiting for incoming data"),
 * trio says BusyResourceError.
 *
 * Here: A waits in readline with "ab" buffered; B's cosync_stream_read
 * is refused; "cd\n" comes and the stream ends: A gets "abcd\n".
 */
static pair bug_pair;
static cosync_stream bug_stream;
static char bug_buf[32];
static ssize_t bug_n;

static int bug_first(void *arg, void **result)
{
    (void)arg, (void)result;
    bug_n = cosync_stream_readline(&bug_stream, bug_buf, sizeof bug_buf, FOREVER);
    return 0;
}

static int bug_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &bug_pair;
    pair_open(p);
    cosync_stream *s = &bug_stream;
    stream_open(s, &p->io, 16);
    put(p, "ab");
    cosync_task a = spawn(bug_first, NULL);
    CHECK_OK(cosync_yield()); /* A buffered "ab", waits to recv at buf + 2 */
    CHECK_EQ(io_waiters(), 1);
    char b[16];
    uint64_t before = switches();
    CHECK_ERR(cosync_stream_read(s, b, sizeof b, 0), COSYNC_EBUSY); /* B: refused */
    CHECK_ERR(cosync_stream_destroy(s), COSYNC_EBUSY);              /* A is inside a read */
    CHECK_EQ(switches(), before);
    put(p, "cd\n");
    pair_close_peer(p);
    join_ok(a);
    CHECK_GOT(bug_n, bug_buf, "abcd\n");
    CHECK_OK(cosync_stream_destroy(s));
    CHECK_OK(cosync_io_close(&p->io));
    return 0;
}

TEST(a_second_reader_is_refused_even_when_it_would_not_wait)
{
    run_main_ok(bug_main, NULL);
}

/*
 * A NULL buffer is COSYNC_EINVAL, even with a count or size of 0, as
 * io.h says for every read (a bug once: readexactly(s, NULL, 0), and
 * readuntil(s, sep, seplen, NULL, 0) at the end of the stream, reached
 * memcpy(NULL, ..., 0), undefined behaviour, and returned 0).
 */
TEST(a_null_buffer_is_einval_even_for_a_count_of_0)
{
    pair p;
    pair_open(&p);
    cosync_stream s;
    stream_open(&s, &p.io, 16);
    CHECK_ERR(cosync_stream_readexactly(&s, NULL, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_read(&s, NULL, 0, 0), COSYNC_EINVAL);
    pair_close_peer(&p);
    CHECK_ERR(cosync_stream_readuntil(&s, "\n", 1, NULL, 0, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&p.io));
}

/* ------------------------------------------------------------------------
 * The buffer over a long run
 * ---------------------------------------------------------------------- */

#define LR_LIMIT 64
static pair lr_pair;
static cosync_stream lr_in, lr_out;
static long lr_lines;
static uint64_t lr_sent_sum, lr_got_sum;
static long lr_compactions;

/* The length of line @i, its newline included: 1 to LR_LIMIT. */
static size_t lr_len(long i)
{
    uint64_t r = splitmix((uint64_t)i);
    /* every length, the limit and 1 (an empty line) often */
    switch (r % 8) {
    case 0:
        return LR_LIMIT;
    case 1:
        return 1;
    default:
        return 1 + (size_t)((r >> 8) % LR_LIMIT);
    }
}

static void lr_line(long i, char *out, size_t len)
{
    CHECK(len >= 1 && len <= LR_LIMIT);
    for (size_t j = 0; j + 1 < len; j++)
        out[j] = (char)('!' + (unsigned)((unsigned long)i * 7u + j * 13u) % 90u);
    out[len - 1] = '\n';
}

static int lr_writer(void *arg, void **result)
{
    (void)arg, (void)result;
    static char chunk[8192];
    size_t used = 0;
    uint64_t sum = FNV_START;
    for (long i = 0; i < lr_lines; i++) {
        size_t len = lr_len(i);
        if (used + len > sizeof chunk) {
            size_t w = 0;
            CHECK_OK(cosync_stream_write(&lr_out, chunk, used, &w, FOREVER));
            CHECK_EQ(w, used);
            used = 0;
        }
        lr_line(i, chunk + used, len);
        sum = fnv(sum, chunk + used, len);
        used += len;
    }
    CHECK_OK(cosync_stream_write(&lr_out, chunk, used, NULL, FOREVER));
    CHECK_OK(cosync_sock_shutdown(&lr_pair.pio, SHUT_WR));
    lr_sent_sum = sum;
    return 0;
}

static int lr_reader(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_stream *s = &lr_in;
    char got[LR_LIMIT], want[LR_LIMIT];
    uint64_t sum = FNV_START;
    for (long i = 0; i < lr_lines; i++) {
        size_t len = lr_len(i);
        /* a full buffer holding only part of this line, not at its front:
         * the fill that readline or readexactly makes moves it there
         * (read takes the part first, which empties the buffer) */
        if (i % 3 != 2 && s->end == s->cap && s->start > 0 && s->end - s->start < len)
            lr_compactions++;
        ssize_t n;
        switch (i % 3) {
        case 0:
            n = cosync_stream_readline(s, got, sizeof got, FOREVER);
            break;
        case 1:
            n = cosync_stream_readexactly(s, got, len, FOREVER);
            break;
        default: /* by pieces of what read gives */
            n = 0;
            while ((size_t)n < len) {
                ssize_t k = cosync_stream_read(s, got + n, len - (size_t)n, FOREVER);
                CHECK_GT(k, 0);
                n += k;
            }
            break;
        }
        lr_line(i, want, len);
        if (n != (ssize_t)len || memcmp(got, want, len) != 0)
            CHECK__FAIL("line %ld: got %zd bytes \"%.*s\", expected %zu \"%.*s\"", i, n,
                        n > 0 ? (int)n : 0, got, len, (int)len, want);
        sum = fnv(sum, got, len);
    }
    char buf[8];
    CHECK_EQ(cosync_stream_readline(s, buf, sizeof buf, FOREVER), 0);
    CHECK(cosync_stream_at_eof(s));
    lr_got_sum = sum;
    return 0;
}

static int long_run_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &lr_pair;
    pair_open(p);
    stream_open(&lr_in, &p->io, LR_LIMIT);
    stream_open(&lr_out, &p->pio, 16); /* its limit does not bound a write */
    lr_compactions = 0;
    lr_sent_sum = 1;
    lr_got_sum = 2;
    cosync_task r = spawn(lr_reader, NULL);
    cosync_task w = spawn(lr_writer, NULL);
    join_ok(r);
    join_ok(w);
    CHECK_EQ(lr_got_sum, lr_sent_sum);
    printf("  (%ld lines, the buffered part of one moved to the front %ld times)\n", lr_lines,
           lr_compactions);
    CHECK_GT(lr_compactions, lr_lines / 100);
    CHECK_OK(cosync_stream_destroy(&lr_in));
    CHECK_OK(cosync_stream_destroy(&lr_out));
    pair_close(p);
    return 0;
}

/* 100,000 lines of every length from 1 to the limit (64), written in
 * chunks by a task through a stream, read through a stream of limit 64 by
 * readline, readexactly and pieces of read in turn: all arrive intact and
 * in order (each line checked, and a checksum of all), while what is
 * buffered is moved to the front of the buffer many times. */
TEST(a_long_run_through_a_small_buffer)
{
    lr_lines = 100000;
    run_main_ok(long_run_main, NULL);
}

/* ------------------------------------------------------------------------
 * write
 * ---------------------------------------------------------------------- */

#define WR_BIG ((size_t)1 << 20)
static unsigned char *wr_data;
static pair wr_pair;

/* Read WR_BIG bytes from the handle @arg, checking the pattern. */
static int wr_drainer(void *arg, void **result)
{
    (void)result;
    static unsigned char buf[65536];
    size_t got = 0;
    while (got < WR_BIG) {
        ssize_t n = cosync_io_read(arg, buf, sizeof buf, FOREVER);
        CHECK_GT(n, 0);
        check_pattern(buf, (size_t)n, 5, got);
        got += (size_t)n;
    }
    return 0;
}

static int write_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pair *p = &wr_pair;
    cosync_stream s;
    size_t w;
    wr_data = malloc(WR_BIG);
    CHECK_NOTNULL(wr_data);
    fill_pattern(wr_data, WR_BIG, 5);

    for (int over_pipe = 0; over_pipe < 2; over_pipe++) {
        /* the stream writes @out (raw: @out_fd), the other end is read
         * through @in (raw: @in_fd) */
        cosync_io *out, *in;
        int out_fd, in_fd;
        if (over_pipe) {
            pipe_open(p);
            out = &p->pio, out_fd = p->peer;
            in = &p->io, in_fd = p->fd;
        } else {
            pair_open(p);
            out = &p->io, out_fd = p->fd;
            in = &p->pio, in_fd = p->peer;
        }
        stream_open(&s, out, 16); /* its limit does not bound a write */
        CHECK_EQ(s.socket, !over_pipe);

        /* all bytes delivered while a task reads them; *written says all */
        cosync_task d = spawn(wr_drainer, in);
        w = 99;
        CHECK_OK(cosync_stream_write(&s, wr_data, WR_BIG, &w, FOREVER));
        CHECK_EQ(w, WR_BIG);
        join_ok(d);
        /* NULL written is accepted */
        CHECK_OK(cosync_stream_write(&s, "abc", 3, NULL, FOREVER));
        char buf[8];
        CHECK_EQ(read(in_fd, buf, sizeof buf), 3);
        CHECK_EQ(memcmp(buf, "abc", 3), 0);
        /* nothing to write: 0 at once; NULL data: EINVAL */
        w = 99;
        CHECK_OK(cosync_stream_write(&s, NULL, 0, &w, 0));
        CHECK_EQ(w, 0);
        w = 99;
        CHECK_ERR(cosync_stream_write(&s, NULL, 1, &w, FOREVER), COSYNC_EINVAL);
        CHECK_EQ(w, 0);
        CHECK_EQ(kernel_queued(in_fd), 0);

        /* nobody reads: a finite deadline ends it with ETIMEDOUT at that
         * time, and *written is what the other end can then read */
        int64_t dl = cosync_now() + COSYNC_SEC(2);
        w = 99;
        CHECK_ERR(cosync_stream_write(&s, wr_data, WR_BIG, &w, dl), COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), dl);
        CHECK_GT(w, 0);
        CHECK_LT(w, WR_BIG);
        CHECK_EQ(drain_pattern(in_fd, 5), w);
        CHECK_EQ(io_waiters(), 0);
        CHECK_EQ(armed_timers(), 0);
        /* on a full buffer: the same with NULL written; deadline 0 says
         * EAGAIN without a suspension */
        size_t filled = fill_fd(out_fd);
        CHECK_GT(filled, 0);
        dl = cosync_now() + COSYNC_MS(10);
        CHECK_ERR(cosync_stream_write(&s, "x", 1, NULL, dl), COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), dl);
        uint64_t before = switches();
        w = 99;
        CHECK_ERR(cosync_stream_write(&s, "x", 1, &w, 0), COSYNC_EAGAIN);
        CHECK_EQ(w, 0);
        CHECK_EQ(switches(), before);
        size_t drained = 0;
        for (int i = 0; i < 100000; i++) {
            static char junk[65536];
            ssize_t n = read(in_fd, junk, sizeof junk);
            if (n <= 0) {
                CHECK(n < 0 && errno == EAGAIN);
                break;
            }
            drained += (size_t)n;
        }
        CHECK_EQ(drained, filled);
        CHECK_OK(cosync_stream_destroy(&s));
        pair_close(p);
    }
    free(wr_data);
    return 0;
}

/* write: all bytes delivered (socket and pipe), *written set, NULL
 * accepted; with nobody reading, a finite deadline gives ETIMEDOUT at
 * exactly it, with *written what the peer can then read; deadline 0 on a
 * full buffer: EAGAIN without a suspension. */
TEST(write_delivers_all_or_says_how_much_went)
{
    run_main_ok(write_main, NULL);
}

/* ------------------------------------------------------------------------
 * Echo: the asyncio docs' stream client and server
 * ---------------------------------------------------------------------- */

#define ECHO_LIMIT 256
static long echo_served;

/* Accept one connection from the listener @arg; echo each line (the last
 * one without newline too) until the end; close. */
static int echo_server(void *arg, void **result)
{
    (void)result;
    cosync_io conn;
    CHECK_OK(cosync_sock_accept(arg, &conn, NULL, FOREVER));
    cosync_stream s;
    stream_open(&s, &conn, ECHO_LIMIT);
    char line[ECHO_LIMIT];
    for (int i = 0; i < 10000; i++) {
        ssize_t n = cosync_stream_readline(&s, line, sizeof line, FOREVER);
        CHECK_GE(n, 0);
        if (n == 0) {
            CHECK(cosync_stream_at_eof(&s));
            CHECK_OK(cosync_stream_destroy(&s));
            CHECK_OK(cosync_io_close(&conn));
            return 0;
        }
        size_t w = 0;
        CHECK_OK(cosync_stream_write(&s, line, (size_t)n, &w, FOREVER));
        CHECK_EQ(w, (size_t)n);
        echo_served++;
    }
    CHECK__FAIL("the stream never ended");
}

static void echo_client(const cosync_addr *addr)
{
    cosync_io c;
    CHECK_OK(cosync_tcp_connect(&c, addr, FOREVER));
    cosync_stream s;
    stream_open(&s, &c, ECHO_LIMIT);
    static const char *const msgs[] = {"Hello World!\n", "\n", "a somewhat longer line, 42\n"};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_stream_write(&s, msgs[i], strlen(msgs[i]), NULL, FOREVER));
        LINE_IS(&s, msgs[i], FOREVER);
    }
    /* a line of exactly the limit */
    static char longest[ECHO_LIMIT + 1];
    memset(longest, 'L', ECHO_LIMIT - 1);
    longest[ECHO_LIMIT - 1] = '\n';
    CHECK_OK(cosync_stream_write(&s, longest, ECHO_LIMIT, NULL, FOREVER));
    char buf[ECHO_LIMIT];
    CHECK_EQ(cosync_stream_readline(&s, buf, sizeof buf, FOREVER), ECHO_LIMIT);
    CHECK_EQ(memcmp(buf, longest, ECHO_LIMIT), 0);
    /* three lines in one write, read back by line */
    CHECK_OK(cosync_stream_write(&s, "x\nyy\nzzz\n", 9, NULL, FOREVER));
    LINE_IS(&s, "x\n", FOREVER);
    LINE_IS(&s, "yy\n", FOREVER);
    LINE_IS(&s, "zzz\n", FOREVER);
    /* a last line without newline, then the end (writer.write_eof()): the
     * server echoes it at its end, and closes */
    CHECK_OK(cosync_stream_write(&s, "tail", 4, NULL, FOREVER));
    CHECK_OK(cosync_sock_shutdown(&c, SHUT_WR));
    LINE_IS(&s, "tail", FOREVER);
    CHECK_EQ(cosync_stream_readline(&s, buf, sizeof buf, FOREVER), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_OK(cosync_stream_destroy(&s));
    CHECK_OK(cosync_io_close(&c));
}

static int tcp_echo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io l;
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_listen(&l, &addr, 0));
    CHECK_OK(cosync_sock_local_addr(&l, &addr));
    echo_served = 0;
    cosync_task srv = spawn(echo_server, &l);
    echo_client(&addr);
    join_ok(srv);
    CHECK_EQ(echo_served, 3 + 1 + 3 + 1);
    CHECK_OK(cosync_io_close(&l));
    return 0;
}

/* The echo client and server of asyncio's streams docs, a cosync_stream
 * on each side, over loopback TCP: lines back one by one, the limit's
 * length, three in one write, a last one without newline after
 * write_eof, then 0 from the server's close. */
TEST(tcp_echo_with_streams_on_both_sides)
{
    int fds = count_fds();
    run_main_ok(tcp_echo_main, NULL);
    CHECK_EQ(count_fds(), fds);
}

static int unix_echo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char path[128];
    snprintf(path, sizeof path, "%s/stream.sock", tmpdir);
    cosync_addr addr;
    CHECK_OK(cosync_addr_unix(&addr, path));
    cosync_io l;
    CHECK_OK(cosync_sock_listen(&l, &addr, 0));
    echo_served = 0;
    cosync_task srv = spawn(echo_server, &l);
    echo_client(&addr);
    join_ok(srv);
    CHECK_EQ(echo_served, 8);
    CHECK_OK(cosync_io_close(&l));
    CHECK_EQ(unlink(path), 0);
    return 0;
}

/* The same echo over a Unix-domain stream socket. */
TEST(unix_domain_echo_with_streams)
{
    int fds = count_fds();
    run_main_ok(unix_echo_main, NULL);
    CHECK_EQ(count_fds(), fds);
}

/* ------------------------------------------------------------------------ */

/* ------------------------------------------------------------------------
 * A transport of the program's own (cosync_stream_init_ops)
 * ---------------------------------------------------------------------- */

/* Reads hand out the pieces in turn (NULL: the end), once failing with
 * @fail_at's error; writes append to @out. */
typedef struct script {
    const char *const *pieces;
    size_t next, reads;
    size_t fail_at; /* the read (counted from 1) that fails, 0: none */
    char out[64];
    size_t outlen;
} script;

static ssize_t script_read(void *ctx, void *buf, size_t len, int64_t deadline)
{
    script *sc = ctx;
    (void)deadline;
    if (++sc->reads == sc->fail_at)
        return COSYNC_ECONNRESET;
    const char *piece = sc->pieces[sc->next];
    if (!piece)
        return 0;
    size_t n = strlen(piece);
    CHECK_LE(n, len); /* the stream asks for room enough here */
    memcpy(buf, piece, n);
    sc->next++;
    return (ssize_t)n;
}

static int script_write(void *ctx, const void *buf, size_t len, size_t *written, int64_t deadline)
{
    script *sc = ctx;
    (void)deadline;
    size_t n = len < sizeof sc->out - sc->outlen ? len : sizeof sc->out - sc->outlen;
    memcpy(sc->out + sc->outlen, buf, n);
    sc->outlen += n;
    *written = n;
    return n == len ? 0 : COSYNC_EPIPE;
}

static const cosync_stream_ops script_ops = {script_read, script_write};

static int transport_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static const char *const pieces[] = {"one\ntw", "o\nthr", "ee", NULL};
    script sc = {.pieces = pieces, .fail_at = 3};
    cosync_stream s;
    char line[16];
    CHECK_OK(cosync_stream_init_ops(&s, &script_ops, &sc, 32));
    CHECK_EQ(cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER), 4);
    CHECK_EQ(memcmp(line, "one\n", 4), 0);
    CHECK_EQ(cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER), 4);
    CHECK_EQ(memcmp(line, "two\n", 4), 0);
    /* the transport's error ends the read, which takes nothing */
    CHECK_ERR(cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER), COSYNC_ECONNRESET);
    CHECK_EQ(cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER), 5);
    CHECK_EQ(memcmp(line, "three", 5), 0); /* the end, without a newline */
    CHECK_EQ(cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER), 0);
    CHECK(cosync_stream_at_eof(&s));
    CHECK_EQ(sc.reads, 5);
    /* writes go to the transport, which says how much it took */
    size_t w = 12345;
    CHECK_OK(cosync_stream_write(&s, "hello ", 6, &w, COSYNC_FOREVER));
    CHECK_EQ(w, 6);
    char big[100];
    memset(big, 'x', sizeof big);
    CHECK_ERR(cosync_stream_write(&s, big, sizeof big, &w, COSYNC_FOREVER), COSYNC_EPIPE);
    CHECK_EQ(w, sizeof sc.out - 6);
    CHECK_EQ(memcmp(sc.out, "hello x", 7), 0);
    CHECK_OK(cosync_stream_destroy(&s));
    return 0;
}

/* A stream over the program's transport reads lines across its pieces,
 * passes on its error without taking anything, ends with its end, and
 * writes through it. */
TEST(a_stream_over_a_transport_of_the_programs_own)
{
    run_main_ok(transport_main, NULL);
}

/* NULL arguments or functions: EINVAL; the buffer failing: ENOMEM; the
 * stream untouched either way. */
TEST(init_ops_refuses_what_it_cannot_use)
{
    script sc = {0};
    cosync_stream s, before;
    memset(&s, 0xA5, sizeof s);
    memcpy(&before, &s, sizeof s);
    const cosync_stream_ops no_read = {NULL, script_write}, no_write = {script_read, NULL};
    CHECK_ERR(cosync_stream_init_ops(NULL, &script_ops, &sc, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_init_ops(&s, NULL, &sc, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_init_ops(&s, &no_read, &sc, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_stream_init_ops(&s, &no_write, &sc, 0), COSYNC_EINVAL);
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    CHECK_ERR(cosync_stream_init_ops(&s, &script_ops, &sc, 0), COSYNC_ENOMEM);
    cosync__fault_countdown = -1;
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(memcmp(&s, &before, sizeof s), 0);
    CHECK_OK(cosync_stream_init_ops(&s, &script_ops, &sc, 0));
    CHECK_OK(cosync_stream_destroy(&s));
}

int main(void)
{
    /* SIGPIPE's default action (death), whatever the parent left: a send
     * that raised it would end this program */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    CHECK_EQ(sigaction(SIGPIPE, &dfl, NULL), 0);
    snprintf(tmpdir, sizeof tmpdir, "/tmp/cosync-test-stream-XXXXXX");
    CHECK_NOTNULL(mkdtemp(tmpdir));
    int fds = count_fds();

    RUN(init_refuses_null_arguments_and_closed_handles);
    RUN(init_fails_cleanly_when_its_buffer_cannot_be_had);
    RUN(limit_0_is_the_default_limit);
    RUN(destroy_twice_and_calls_on_a_destroyed_stream);
    RUN(init_tells_a_socket_from_a_pipe);
    RUN(readline_of_lines_written_byte_by_byte);
    RUN(readline_of_many_lines_in_one_write);
    RUN(readline_limit_and_size_overflow);
    RUN(readuntil_a_separator_split_at_every_boundary);
    RUN(readuntil_with_the_separator_arriving_byte_by_byte);
    RUN(readuntil_separator_at_start_overlaps_and_refusals);
    RUN(readexactly_pieces_bounds_and_the_end);
    RUN(read_takes_what_is_buffered_first);
    RUN(a_read_ended_by_a_deadline_or_a_cancel_loses_nothing);
    RUN(a_cancel_after_the_grant_of_a_buffered_read);
    RUN(a_read_granted_then_cancelled_returns_its_data);
    RUN(a_handle_error_ends_a_read_and_takes_nothing);
    RUN(a_second_reader_gets_ebusy_and_takes_nothing);
    RUN(a_second_reader_is_refused_even_when_it_would_not_wait);
    RUN(a_null_buffer_is_einval_even_for_a_count_of_0);
    RUN(a_long_run_through_a_small_buffer);
    RUN(write_delivers_all_or_says_how_much_went);
    RUN(tcp_echo_with_streams_on_both_sides);
    RUN(unix_domain_echo_with_streams);
    RUN(a_stream_over_a_transport_of_the_programs_own);
    RUN(init_ops_refuses_what_it_cannot_use);

    CHECK_EQ(count_fds(), fds); /* no descriptor left open by any case */
    CHECK_EQ(rmdir(tmpdir), 0);
    return 0;
}
