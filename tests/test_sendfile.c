/*
 * test_sendfile.c - a file's bytes sent on a socket (cosync_sock_sendfile:
 * loop.sock_sendfile).
 *
 * Each case sends a file of known bytes on one end of a Unix-domain
 * socketpair and reads the other end, so that what arrives is certain
 * when the send returns (a socketpair's send puts the bytes in the peer's
 * queue before it returns): a reader task takes them as they come, or
 * nobody does and the send waits for room until its deadline. Every loop
 * runs on the virtual clock.
 *
 * This program's own sendfile takes the place of libc's (the library
 * calls it): it makes the system call, unless a case makes it fail as a
 * file system without sendfile does (EINVAL), which sends the bytes
 * through the fallback's buffer instead.
 */
/* ctest-timeout: 120 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* pipe2 */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "harness.h"
#include "cosync.h"
#include "fault.h" /* cosync__fault_countdown */

/* ---- this program's sendfile ---------------------------------------------- */

static atomic_bool no_sendfile; /* every call fails with EINVAL */
static atomic_int sendfile_calls;

ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
    atomic_fetch_add(&sendfile_calls, 1);
    if (atomic_load(&no_sendfile)) {
        errno = EINVAL;
        return -1;
    }
    /* the system call itself: no libc's to look up (a static build has
     * no dlsym) */
    return syscall(SYS_sendfile, out, in, offset, count);
}

/* ---- helpers ------------------------------------------------------------- */

enum { FILE_SIZE = 300 * 1024 + 123 }; /* more than a socketpair holds */

static char content[FILE_SIZE];

/* The byte at @i of the file. */
static char byte_at(size_t i)
{
    return (char)('a' + (i * 7 + i / 251) % 26);
}

/* A temporary file of FILE_SIZE known bytes, already unlinked; its
 * position at 0. */
static int make_file(void)
{
    char path[] = "/tmp/cosync-sendfile-XXXXXX";
    int fd = mkstemp(path);
    CHECK_GE(fd, 0);
    CHECK_EQ(unlink(path), 0);
    for (size_t i = 0; i < FILE_SIZE; i++)
        content[i] = byte_at(i);
    CHECK_EQ(write(fd, content, FILE_SIZE), FILE_SIZE);
    CHECK_EQ(lseek(fd, 0, SEEK_SET), 0);
    return fd;
}

typedef struct pair {
    cosync_io io; /* the sending end */
    cosync_io peer;
} pair;

static void pair_open(pair *p)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    CHECK_OK(cosync_io_init(&p->io, sv[0]));
    CHECK_OK(cosync_io_init(&p->peer, sv[1]));
}

static void pair_close(pair *p)
{
    CHECK_OK(cosync_io_close(&p->io));
    (void)cosync_io_close(&p->peer);
}

/* A reader task: takes @want bytes from the peer end into @got. */
typedef struct reader {
    pair *p;
    size_t want, got;
    char *buf;
} reader;

static int read_all(void *arg, void **result)
{
    reader *r = arg;
    (void)result;
    while (r->got < r->want) {
        ssize_t n =
            cosync_sock_recv(&r->p->peer, r->buf + r->got, r->want - r->got, COSYNC_FOREVER);
        CHECK_GT(n, 0);
        r->got += (size_t)n;
    }
    return 0;
}

/* Send @count bytes from @offset (0: to the end) while a reader takes
 * them, and check what came. */
static void send_and_check(int fd, off_t offset, size_t count, size_t want)
{
    pair p;
    pair_open(&p);
    reader r = {.p = &p, .want = want, .buf = malloc(want + 1)};
    CHECK_NOTNULL(r.buf);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, read_all, &r, NULL));
    size_t sent = 12345;
    CHECK_OK(cosync_sock_sendfile(&p.io, fd, offset, count, &sent, COSYNC_FOREVER));
    CHECK_EQ(sent, want);
    join_ok(t);
    CHECK_EQ(r.got, want);
    CHECK_EQ(memcmp(r.buf, content + offset, want), 0);
    /* nothing more came */
    char extra;
    CHECK_ERR(cosync_sock_recv(&p.peer, &extra, 1, 0), COSYNC_EAGAIN);
    free(r.buf);
    pair_close(&p);
    CHECK_EQ(lseek(fd, 0, SEEK_CUR), 0); /* the file's position is not moved */
}

/* ---- tests --------------------------------------------------------------- */

static int whole_body(void *arg, void **result)
{
    (void)result;
    atomic_store(&no_sendfile, arg != NULL);
    int fd = make_file();
    int calls = atomic_load(&sendfile_calls);
    send_and_check(fd, 0, 0, FILE_SIZE);          /* to the end */
    send_and_check(fd, 1000, 250000, 250000);     /* a part, in several calls */
    send_and_check(fd, FILE_SIZE - 10, 5000, 10); /* the file ends first */
    send_and_check(fd, 0, FILE_SIZE, FILE_SIZE);  /* exactly all */
    send_and_check(fd, FILE_SIZE, 0, 0);          /* nothing left */
    CHECK_GT(atomic_load(&sendfile_calls), calls);
    CHECK_EQ(close(fd), 0);
    atomic_store(&no_sendfile, false);
    return 0;
}

/* The whole file, a part, a count past the end, nothing: the bytes that
 * come are the file's, the count is returned, and the file's position is
 * left alone; the sender waits for room while the reader catches up. */
TEST(sends_the_files_bytes)
{
    run_main_ok(whole_body, NULL);
}

/* The same through the fallback's buffer, where sendfile cannot send the
 * file (EINVAL). */
TEST(a_file_sendfile_refuses_goes_through_a_buffer)
{
    run_main_ok(whole_body, (void *)1);
}

static int deadline_body(void *arg, void **result)
{
    (void)result;
    atomic_store(&no_sendfile, arg != NULL);
    int fd = make_file();
    pair p;
    pair_open(&p);
    /* nobody reads: what fits is sent, then the deadline */
    int64_t t0 = cosync_now();
    size_t sent = 0;
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, 0, 0, &sent, t0 + COSYNC_MS(10)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(10));
    CHECK_GT(sent, 0);
    CHECK_LT(sent, FILE_SIZE);
    /* exactly the bytes counted came, in order */
    char *buf = malloc(FILE_SIZE);
    CHECK_NOTNULL(buf);
    size_t got = 0;
    ssize_t n;
    while ((n = cosync_sock_recv(&p.peer, buf + got, FILE_SIZE - got, 0)) > 0)
        got += (size_t)n;
    CHECK_ERR(n, COSYNC_EAGAIN);
    CHECK_EQ(got, sent);
    CHECK_EQ(memcmp(buf, content, got), 0);
    /* deadline 0, the socket empty again: what fits (less than the file,
     * as above), then COSYNC_EAGAIN */
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, 0, 0, &sent, 0), COSYNC_EAGAIN);
    CHECK_GT(sent, 0);
    CHECK_LT(sent, FILE_SIZE);
    free(buf);
    pair_close(&p);
    CHECK_EQ(close(fd), 0);
    atomic_store(&no_sendfile, false);
    return 0;
}

/* A deadline that passes while the socket is full ends the send, and
 * *sent says how many bytes went (exactly those the peer has). */
TEST(a_deadline_ends_the_send_and_counts_what_went)
{
    run_main_ok(deadline_body, NULL);
    run_main_ok(deadline_body, (void *)1);
}

typedef struct send_call {
    pair *p;
    int fd;
    size_t sent;
    int rc;
} send_call;

static int send_task(void *arg, void **result)
{
    send_call *c = arg;
    (void)result;
    c->rc = cosync_sock_sendfile(&c->p->io, c->fd, 0, 0, &c->sent, COSYNC_FOREVER);
    return 0;
}

static int cancel_body(void *arg, void **result)
{
    (void)arg, (void)result;
    int fd = make_file();
    pair p;
    pair_open(&p);
    send_call c = {.p = &p, .fd = fd, .sent = 0, .rc = 12345};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, send_task, &c, NULL));
    CHECK_OK(cosync_yield()); /* it fills the socket and waits */
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK_GT(c.sent, 0);
    CHECK_LT(c.sent, FILE_SIZE);
    pair_close(&p);
    CHECK_EQ(close(fd), 0);
    return 0;
}

/* A cancel while the send waits for room ends it. */
TEST(a_cancel_ends_the_send)
{
    run_main_ok(cancel_body, NULL);
}

static int peer_gone_body(void *arg, void **result)
{
    (void)arg, (void)result;
    int fd = make_file();
    pair p;
    pair_open(&p);
    CHECK_OK(cosync_io_close(&p.peer));
    size_t sent = 12345;
    /* no SIGPIPE (it would end this process): the error */
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, 0, 0, &sent, COSYNC_FOREVER), COSYNC_EPIPE);
    CHECK_EQ(sent, 0);
    sigset_t pending;
    CHECK_EQ(sigpending(&pending), 0);
    CHECK(!sigismember(&pending, SIGPIPE));
    pair_close(&p);
    CHECK_EQ(close(fd), 0);
    return 0;
}

/* A peer that has gone is COSYNC_EPIPE, and raises no SIGPIPE. */
TEST(a_peer_that_has_gone_is_epipe_without_sigpipe)
{
    run_main_ok(peer_gone_body, NULL);
}

static int misuse_body(void *arg, void **result)
{
    (void)arg, (void)result;
    int fd = make_file();
    pair p;
    pair_open(&p);
    size_t sent = 12345;
    CHECK_ERR(cosync_sock_sendfile(NULL, fd, 0, 0, &sent, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(sent, 0);
    CHECK_ERR(cosync_sock_sendfile(&p.io, -1, 0, 0, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, -1, 0, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    /* a pipe has no offsets: sendfile refuses it, and so does the read */
    int pipefd[2];
    CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
    CHECK_EQ(write(pipefd[1], "abc", 3), 3);
    CHECK_ERR(cosync_sock_sendfile(&p.io, pipefd[0], 0, 0, &sent, COSYNC_FOREVER), -ESPIPE);
    CHECK_EQ(sent, 0);
    /* the fallback's buffer cannot be had */
    atomic_store(&no_sendfile, true);
    cosync__fault_countdown = 0;
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, 0, 0, &sent, COSYNC_FOREVER), COSYNC_ENOMEM);
    cosync__fault_countdown = -1;
    atomic_store(&no_sendfile, false);
    CHECK_EQ(sent, 0);
    /* a closed handle */
    pair_close(&p);
    CHECK_ERR(cosync_sock_sendfile(&p.io, fd, 0, 0, &sent, COSYNC_FOREVER), COSYNC_EBADF);
    CHECK_EQ(close(pipefd[0]), 0);
    CHECK_EQ(close(pipefd[1]), 0);
    CHECK_EQ(close(fd), 0);
    return 0;
}

/* Bad arguments, a pipe, a failed allocation and a closed handle each get
 * their error, with nothing sent. */
TEST(misuse_and_failures)
{
    run_main_ok(misuse_body, NULL);
}

int main(void)
{
    RUN(sends_the_files_bytes);
    RUN(a_file_sendfile_refuses_goes_through_a_buffer);
    RUN(a_deadline_ends_the_send_and_counts_what_went);
    RUN(a_cancel_ends_the_send);
    RUN(a_peer_that_has_gone_is_epipe_without_sigpipe);
    RUN(misuse_and_failures);
    return 0;
}
