/*
 * test_process.c - child processes (cosync_process_*): asyncio's
 * create_subprocess_exec, Process.wait, returncode, send_signal,
 * terminate, kill and communicate.
 *
 * The children are /bin/sh, cat, sleep and true, found in PATH. Waits for
 * a child that will exit have no deadline (the child runs in real time,
 * and the loop's virtual clock would jump past a deadline while it
 * does); deadlines are given only to waits that must time out, on a child
 * that never exits by itself (sleep 1000), which is then killed. So no
 * outcome depends on the machine's speed. Each case checks that every
 * descriptor it made is closed, and that no child is left (waitpid says
 * ECHILD).
 */
/* ctest-timeout: 120 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cosync.h"
#include "core.h"  /* cosync__process_use_pidfd */
#include "fault.h" /* cosync__fault_countdown */

#define SEC COSYNC_SEC

static const cosync_process_opts piped_out = {.stdout_mode = COSYNC_PROCESS_PIPE};

/* The number of descriptors this process has open. */
static int open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    CHECK_NOTNULL(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n - 1; /* the directory's own */
}

/* No child of this process is left, exited or not. */
static void check_no_child(void)
{
    CHECK_EQ(waitpid(-1, NULL, WNOHANG), -1);
    CHECK_EQ(errno, ECHILD);
}

/* Run @fn on a fresh virtual-clock loop; check that it returned 0, that
 * the descriptors open before are the ones open after, and no child is
 * left. Run twice: with the pidfd, and by polling. */
static void run_both_ways(cosync_task_fn fn, void *arg)
{
    for (int poll = 0; poll < 2; poll++) {
        cosync__process_use_pidfd = !poll;
        int fds = open_fds();
        run_main_ok(fn, arg);
        CHECK_EQ(open_fds(), fds);
        check_no_child();
    }
    cosync__process_use_pidfd = true;
}

/* Read @io to its end into @buf (NUL-terminated); the byte count. */
static size_t read_all(cosync_io *io, char *buf, size_t size)
{
    size_t len = 0;
    for (;;) {
        CHECK_LT(len, size - 1);
        ssize_t n = cosync_io_read(io, buf + len, size - 1 - len, COSYNC_FOREVER);
        CHECK_GE(n, 0);
        if (n == 0)
            break;
        len += (size_t)n;
    }
    buf[len] = '\0';
    return len;
}

/* sh -c @script, its streams as @opts say. */
static void sh(cosync_process *p, const char *script, const cosync_process_opts *opts)
{
    char *argv[] = {"sh", "-c", (char *)script, NULL};
    CHECK_OK(cosync_process_spawn(p, "sh", argv, opts));
}

static int wait_code(cosync_process *p)
{
    int code = 12345;
    CHECK_OK(cosync_process_wait(p, &code, COSYNC_FOREVER));
    return code;
}

/* sleep 1000: a child that never exits by itself. */
static void spawn_sleeper(cosync_process *p, const cosync_process_opts *opts)
{
    char *argv[] = {"sleep", "1000", NULL};
    CHECK_OK(cosync_process_spawn(p, "sleep", argv, opts));
}

/* Wait for @p, check that it ended with @code, destroy it. */
static void end_with(cosync_process *p, int code)
{
    CHECK_EQ(wait_code(p), code);
    CHECK_OK(cosync_process_destroy(p));
}

/* Whether posix_spawn runs as a fork here, not a vfork that shares the
 * parent's memory: under valgrind. glibc then cannot report a failed exec
 * as the spawn's error: the child exits with 127 instead, as POSIX
 * allows. */
static bool spawn_is_a_fork(void)
{
    return under_valgrind();
}

/* A spawn of a program that cannot be run: @want, or where the spawn is a
 * fork, a child that exits with 127. */
static void check_exec_fails(int rc, cosync_process *p, int want)
{
    if (rc == 0 && spawn_is_a_fork()) {
        CHECK_EQ(wait_code(p), 127);
        CHECK_OK(cosync_process_destroy(p));
        return;
    }
    CHECK_ERR(rc, want);
}

/* ------------------------------------------------------------------------
 * Output, exit codes, signals
 * ---------------------------------------------------------------------- */

static int echo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    sh(&p, "printf hello; exit 3", &piped_out);
    CHECK_GT(cosync_process_pid(&p), 0);
    char buf[64];
    CHECK_EQ(read_all(&p.out, buf, sizeof buf), 5);
    CHECK_STREQ(buf, "hello");
    CHECK_EQ(wait_code(&p), 3);
    /* reaped: the same answer again, at once, and from returncode */
    int code = 0;
    CHECK_OK(cosync_process_wait(&p, &code, 0));
    CHECK_EQ(code, 3);
    code = 0;
    CHECK_OK(cosync_process_returncode(&p, &code));
    CHECK_EQ(code, 3);
    CHECK_ERR(cosync_process_send_signal(&p, SIGTERM), COSYNC_ESRCH);
    CHECK_OK(cosync_process_destroy(&p));
    return 0;
}

TEST(output_and_exit_code)
{
    run_both_ways(echo_main, NULL);
}

/* A child read through a stream, line by line (proc.stdout.readline()). */
static int stream_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    sh(&p, "echo one; echo two; echo three", &piped_out);
    cosync_stream s;
    CHECK_OK(cosync_stream_init(&s, &p.out, 256));
    const char *want[] = {"one\n", "two\n", "three\n"};
    for (int i = 0; i < 3; i++) {
        char line[32];
        ssize_t n = cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER);
        CHECK_EQ(n, (ssize_t)strlen(want[i]));
        line[n] = '\0';
        CHECK_STREQ(line, want[i]);
    }
    char rest[8];
    CHECK_EQ(cosync_stream_readline(&s, rest, sizeof rest, COSYNC_FOREVER), 0);
    CHECK_OK(cosync_stream_destroy(&s));
    end_with(&p, 0);
    return 0;
}

TEST(read_through_a_stream)
{
    run_both_ways(stream_main, NULL);
}

/* terminate, kill, a signal the child sends itself: -N. */
static int signals_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    spawn_sleeper(&p, NULL);
    CHECK_ERR(cosync_process_returncode(&p, NULL), COSYNC_EAGAIN);
    CHECK_OK(cosync_process_terminate(&p));
    CHECK_EQ(wait_code(&p), -SIGTERM);
    CHECK_ERR(cosync_process_kill(&p), COSYNC_ESRCH);
    CHECK_OK(cosync_process_destroy(&p));

    spawn_sleeper(&p, NULL);
    CHECK_ERR(cosync_process_send_signal(&p, 12345), COSYNC_EINVAL);
    CHECK_OK(cosync_process_kill(&p));
    end_with(&p, -SIGKILL);

    sh(&p, "kill -USR1 $$", NULL);
    end_with(&p, -SIGUSR1);
    return 0;
}

TEST(signals)
{
    run_both_ways(signals_main, NULL);
}

/* The child starts with no signal blocked and SIGPIPE at its default
 * action, though the parent blocks SIGTERM (as a cosync_signal does) and
 * ignores SIGPIPE: SIGTERM then ends it, and /proc says so. */
static unsigned long long proc_mask(int pid, const char *field)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", pid);
    FILE *f = fopen(path, "r");
    CHECK_NOTNULL(f);
    unsigned long long mask = ~0ULL;
    size_t flen = strlen(field);
    while (fgets(line, sizeof line, f))
        if (strncmp(line, field, flen) == 0)
            mask = strtoull(line + flen, NULL, 16);
    fclose(f);
    return mask;
}

static int clean_signals_main(void *arg, void **result)
{
    (void)arg, (void)result;
    sigset_t term, before;
    sigemptyset(&term);
    sigaddset(&term, SIGTERM);
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, &term, &before), 0);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old;
    CHECK_EQ(sigaction(SIGPIPE, &ign, &old), 0);

    cosync_process p;
    spawn_sleeper(&p, NULL);
    /* the exec may not have happened yet: the mask is set before it, and
     * the spawn returns after it (posix_spawn waits for the exec) */
    int pid = cosync_process_pid(&p);
    CHECK_EQ(proc_mask(pid, "SigBlk:"), 0);
    CHECK_EQ(proc_mask(pid, "SigIgn:") & (1ULL << (SIGPIPE - 1)), 0);
    CHECK_OK(cosync_process_terminate(&p));
    end_with(&p, -SIGTERM);

    CHECK_EQ(sigaction(SIGPIPE, &old, NULL), 0);
    CHECK_EQ(pthread_sigmask(SIG_SETMASK, &before, NULL), 0);
    return 0;
}

TEST(child_signals_reset)
{
    run_both_ways(clean_signals_main, NULL);
}

/* ------------------------------------------------------------------------
 * Streams, environment, directory, descriptors
 * ---------------------------------------------------------------------- */

static int stderr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char out[64], err[64];
    cosync_process p;
    sh(&p, "echo out; echo err >&2",
       &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE,
                              .stderr_mode = COSYNC_PROCESS_PIPE});
    read_all(&p.out, out, sizeof out);
    read_all(&p.err, err, sizeof err);
    CHECK_STREQ(out, "out\n");
    CHECK_STREQ(err, "err\n");
    end_with(&p, 0);

    /* stderr to wherever stdout goes */
    sh(&p, "echo out; echo err >&2",
       &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE,
                              .stderr_mode = COSYNC_PROCESS_STDOUT});
    CHECK_EQ(cosync_io_fd(&p.err), COSYNC_EBADF);
    read_all(&p.out, out, sizeof out);
    CHECK_STREQ(out, "out\nerr\n");
    end_with(&p, 0);

    /* stdin from /dev/null: cat ends at once; stdout to /dev/null */
    char *cat[] = {"cat", NULL};
    CHECK_OK(cosync_process_spawn(&p, "cat", cat,
                                  &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_DEVNULL,
                                                         .stdout_mode = COSYNC_PROCESS_PIPE}));
    CHECK_EQ(cosync_io_fd(&p.in), COSYNC_EBADF);
    CHECK_EQ(read_all(&p.out, out, sizeof out), 0);
    end_with(&p, 0);
    sh(&p, "echo lost", &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_DEVNULL});
    end_with(&p, 0);
    return 0;
}

TEST(stderr_stdout_devnull)
{
    run_both_ways(stderr_main, NULL);
}

static int env_cwd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char dir[] = "/tmp/cosync-process-XXXXXX";
    CHECK_NOTNULL(mkdtemp(dir));
    char *env[] = {"FOO=bar", NULL};
    cosync_process p;
    sh(&p, "printf '%s:%s' \"$FOO\" \"$(pwd)\"",
       &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE, .envp = env, .cwd = dir});
    char out[256], want[256];
    read_all(&p.out, out, sizeof out);
    snprintf(want, sizeof want, "bar:%s", dir);
    CHECK_STREQ(out, want);
    end_with(&p, 0);
    CHECK_EQ(rmdir(dir), 0);

    /* a directory that is not there: the spawn fails */
    check_exec_fails(cosync_process_spawn(&p, "sh", (char *[]){"sh", "-c", "true", NULL},
                                          &(cosync_process_opts){.cwd = "/nonexistent/cosync"}),
                     &p, COSYNC_ENOENT);

    /* a new session: the child leads its own */
    spawn_sleeper(&p, &(cosync_process_opts){.new_session = true});
    CHECK_EQ(getsid(cosync_process_pid(&p)), cosync_process_pid(&p));
    CHECK_OK(cosync_process_kill(&p));
    end_with(&p, -SIGKILL);
    return 0;
}

TEST(environment_directory_session)
{
    run_both_ways(env_cwd_main, NULL);
}

/* A set of descriptors. */
enum { MAX_FD_SEEN = 1024 };
typedef struct fd_set_ {
    bool has[MAX_FD_SEEN];
} fd_set_;

/* The descriptors above 2 that a child has, as `ls -l` shows the
 * shell's with their targets, each checked to be one this process has
 * open under the same number to the same target. */
static fd_set_ child_fds(const char *before, cosync_process_opts opts)
{
    char script[256];
    snprintf(script, sizeof script, "%sls -l /proc/$$/fd/", before);
    opts.stdout_mode = COSYNC_PROCESS_PIPE;
    opts.stdin_mode = COSYNC_PROCESS_PIPE;
    cosync_process p;
    sh(&p, script, &opts);
    cosync_stream s;
    CHECK_OK(cosync_stream_init(&s, &p.out, 4096));
    int seen = 0;
    fd_set_ got = {{0}};
    for (;;) {
        char line[512];
        ssize_t n = cosync_stream_readline(&s, line, sizeof line - 1, COSYNC_FOREVER);
        CHECK_GE(n, 0);
        if (n == 0)
            break;
        line[n] = '\0';
        line[strcspn(line, "\n")] = '\0';
        char *arrow = strstr(line, " -> ");
        if (!arrow)
            continue; /* "total 0" */
        const char *target = arrow + 4;
        char *num = arrow;
        while (num > line && num[-1] != ' ')
            num--;
        int fd = atoi(num);
        seen++;
        if (fd <= 2)
            continue;
        char path[64], mine[512];
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        ssize_t len = readlink(path, mine, sizeof mine - 1);
        if (len < 0 || (mine[len] = '\0', strcmp(mine, target) != 0) || fd >= MAX_FD_SEEN)
            CHECK__FAIL("the child has descriptor %d (%s), not one of the test's", fd, target);
        got.has[fd] = true;
    }
    CHECK_GE(seen, 3);
    CHECK_OK(cosync_stream_destroy(&s));
    end_with(&p, 0);
    return got;
}

/* The descriptors above 2 of this process that are inheritable (those the
 * test made, and any it was started with), and @extra (-1: none). */
static fd_set_ inheritable_fds(int extra)
{
    fd_set_ want = {{0}};
    for (int fd = 3; fd < MAX_FD_SEEN; fd++) {
        int flags = fcntl(fd, F_GETFD);
        want.has[fd] = (flags >= 0 && !(flags & FD_CLOEXEC)) || fd == extra;
    }
    return want;
}

/* Check that the child had the descriptors @want. */
static void check_fds(fd_set_ got, fd_set_ want)
{
    for (int fd = 3; fd < MAX_FD_SEEN; fd++)
        if (got.has[fd] != want.has[fd])
            CHECK__FAIL("descriptor %d: the child %s it", fd, got.has[fd] ? "has" : "lacks");
}

static fd_set_ only(int fd)
{
    fd_set_ s = {{0}};
    if (fd >= 0)
        s.has[fd] = true;
    return s;
}

/* A pipe whose ends are inheritable (not close-on-exec). */
static void open_inheritable(int fds[2])
{
    CHECK_OK(pipe(fds));
    CHECK(!(fcntl(fds[0], F_GETFD) & FD_CLOEXEC));
}

/* By default the child has its three streams and nothing else, as with
 * asyncio's close_fds=True: none of the library's descriptors (the loop's
 * epoll and eventfd, the pidfd, the parent's pipe ends, all
 * close-on-exec), and none of the caller's that are inheritable. */
static int fds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int open_pipe[2];
    open_inheritable(open_pipe);
    check_fds(child_fds("", (cosync_process_opts){0}), only(-1));
    close(open_pipe[0]);
    close(open_pipe[1]);
    return 0;
}

TEST(no_descriptor_inherited)
{
    run_both_ways(fds_main, NULL);
}

/* pass_fds: the child keeps them under their numbers, close-on-exec in
 * the parent or not, and uses them (it writes into a passed pipe); the
 * other inheritable descriptors, below and above them, are closed; those
 * below 3 in the list are the streams'. inherit_fds (close_fds=False)
 * keeps the inheritable ones and still not the close-on-exec ones. */
static int pass_fds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int below[2], passed[2], above[2];
    open_inheritable(below);
    CHECK_OK(pipe2(passed, O_CLOEXEC));
    open_inheritable(above);
    int fds[] = {1, passed[1], below[0]};
    char echo[64];
    /* not >&N: dash takes only one digit there */
    snprintf(echo, sizeof echo, "echo through >/proc/$$/fd/%d; ", passed[1]);
    fd_set_ want = only(passed[1]);
    want.has[below[0]] = true;
    check_fds(child_fds(echo, (cosync_process_opts){.pass_fds = fds, .npass_fds = 3}), want);
    CHECK(fcntl(passed[1], F_GETFD) & FD_CLOEXEC); /* the parent's flag is its own */
    close(passed[1]);
    char buf[64];
    ssize_t n = read(passed[0], buf, sizeof buf - 1);
    CHECK_EQ(n, 8);
    buf[n] = '\0';
    CHECK_STREQ(buf, "through\n");
    close(passed[0]);

    want = inheritable_fds(-1);
    CHECK(want.has[below[0]] && want.has[above[1]]);
    check_fds(child_fds("", (cosync_process_opts){.inherit_fds = true}), want);
    CHECK_OK(pipe2(passed, O_CLOEXEC));
    check_fds(
        child_fds(
            "", (cosync_process_opts){.inherit_fds = true, .pass_fds = &passed[0], .npass_fds = 1}),
        inheritable_fds(passed[0]));
    for (int i = 0; i < 2; i++) {
        close(below[i]);
        close(passed[i]);
        close(above[i]);
    }
    return 0;
}

TEST(pass_fds_and_inherit_fds)
{
    run_both_ways(pass_fds_main, NULL);
}

/* ------------------------------------------------------------------------
 * Waiting: deadlines, cancels, many waiters
 * ---------------------------------------------------------------------- */

static int deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    spawn_sleeper(&p, NULL);
    CHECK_ERR(cosync_process_wait(&p, NULL, 0), COSYNC_EAGAIN);
    int64_t deadline = cosync_deadline_after(SEC(5));
    int code = 777;
    CHECK_ERR(cosync_process_wait(&p, &code, deadline), COSYNC_ETIMEDOUT);
    CHECK_EQ(code, 777);
    CHECK_EQ(cosync_now(), deadline);
    CHECK_ERR(cosync_process_returncode(&p, NULL), COSYNC_EAGAIN); /* still running */
    CHECK_OK(cosync_process_kill(&p));
    end_with(&p, -SIGKILL);
    return 0;
}

TEST(wait_deadline)
{
    run_both_ways(deadline_main, NULL);
}

/* Three tasks wait for one child; the one that watches is cancelled, the
 * next takes over, and both that remain see the kill's -9. */
typedef struct waiter {
    cosync_process *p;
    int rc, code;
} waiter;

static int wait_body(void *arg, void **result)
{
    (void)result;
    waiter *w = arg;
    w->rc = cosync_process_wait(w->p, &w->code, COSYNC_FOREVER);
    return 0;
}

static int waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_process p;
    spawn_sleeper(&p, NULL);
    waiter w[3] = {{&p, 1, 0}, {&p, 1, 0}, {&p, 1, 0}};
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_body, &w[i], NULL));
    CHECK_OK(cosync_sleep(SEC(1)));
    CHECK_ERR(cosync_process_destroy(&p), COSYNC_EBUSY);
    CHECK_OK(cosync_task_cancel(t[0])); /* the first to wait watches */
    CHECK_OK(cosync_sleep(SEC(1)));
    CHECK_ERR(w[0].rc, COSYNC_ECANCELED);
    CHECK(cosync_task_done(t[0]));
    CHECK(!cosync_task_done(t[1]) && !cosync_task_done(t[2]));
    CHECK_OK(cosync_process_kill(&p));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_join(t[i], NULL, NULL, COSYNC_FOREVER));
    for (int i = 1; i < 3; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].code, -SIGKILL);
    }
    CHECK_OK(cosync_process_destroy(&p));
    return 0;
}

TEST(many_waiters_and_a_cancelled_watcher)
{
    run_both_ways(waiters_main, NULL);
}

/* Through the pidfd, a wait arms no timer: the virtual clock stands
 * still while the child runs. Polling (asked for, or where the kernel
 * has no pidfd), it moves: each poll is a sleep. */
static int no_timer_main(void *arg, void **result)
{
    (void)arg, (void)result;
    char *nap[] = {"sleep", "0.05", NULL};
    cosync_process p;
    CHECK_OK(cosync_process_spawn(&p, "sleep", nap, NULL));
    int64_t t0 = cosync_now();
    /* the kernel (or valgrind) may have no pidfd: then it polls too */
    bool has_pidfd = cosync_io_fd(&p.pidfd) >= 0;
    CHECK(!has_pidfd || cosync__process_use_pidfd);
    CHECK_EQ(wait_code(&p), 0);
    if (has_pidfd)
        CHECK_EQ(cosync_now(), t0);
    else
        CHECK_GT(cosync_now(), t0);
    CHECK_OK(cosync_process_destroy(&p));
    return 0;
}

TEST(pidfd_wait_arms_no_timer)
{
    run_both_ways(no_timer_main, NULL);
}

/* A child the program reaped behind the library's back: its status is
 * lost, and the return code is 255, as asyncio's child watchers say. */
static int stolen_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    sh(&p, "exit 4", NULL);
    int status;
    CHECK_EQ(waitpid(cosync_process_pid(&p), &status, 0), cosync_process_pid(&p));
    CHECK_EQ(WEXITSTATUS(status), 4);
    end_with(&p, 255);
    return 0;
}

TEST(child_reaped_elsewhere)
{
    run_both_ways(stolen_main, NULL);
}

/* One task waits: the process cannot be destroyed under it. */
static int one_waiter_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_process p;
    spawn_sleeper(&p, NULL);
    waiter w = {&p, 1, 0};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, wait_body, &w, NULL));
    CHECK_OK(cosync_sleep(SEC(1)));
    CHECK_ERR(cosync_process_destroy(&p), COSYNC_EBUSY);
    CHECK_ERR(cosync_process_returncode(&p, NULL), COSYNC_EAGAIN); /* nothing changed */
    CHECK_OK(cosync_process_kill(&p));
    CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(w.rc);
    CHECK_EQ(w.code, -SIGKILL);
    CHECK_OK(cosync_process_destroy(&p));
    return 0;
}

TEST(destroy_refused_while_one_task_waits)
{
    run_both_ways(one_waiter_main, NULL);
}

/* ------------------------------------------------------------------------
 * communicate
 * ---------------------------------------------------------------------- */

/* cat both ways, 1 MiB: more than a pipe holds, so the write and the
 * read must go on at once. */
static int communicate_main(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t n = 1 << 20;
    char *in = malloc(n), *got = malloc(n);
    CHECK_NOTNULL(in);
    CHECK_NOTNULL(got);
    for (size_t i = 0; i < n; i++)
        in[i] = (char)(i * 7 + i / 251);
    char *cat[] = {"cat", NULL};
    cosync_process p;
    CHECK_OK(cosync_process_spawn(&p, "cat", cat,
                                  &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_PIPE,
                                                         .stdout_mode = COSYNC_PROCESS_PIPE,
                                                         .stderr_mode = COSYNC_PROCESS_PIPE}));
    cosync_process_output out = {got, n, 0}, err = {NULL, 0, 99};
    int code = 1;
    CHECK_OK(cosync_process_communicate(&p, in, n, &out, &err, &code, COSYNC_FOREVER));
    CHECK_EQ(code, 0);
    CHECK_EQ(out.len, n);
    CHECK_EQ(err.len, 0);
    CHECK(memcmp(in, got, n) == 0);
    CHECK_EQ(cosync_io_fd(&p.in), COSYNC_EBADF); /* closed, as asyncio closes stdin */
    CHECK_OK(cosync_process_destroy(&p));

    /* more than the buffer holds: counted, the rest dropped */
    char small[4];
    sh(&p, "printf abcdef; printf xyz >&2",
       &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE,
                              .stderr_mode = COSYNC_PROCESS_PIPE});
    out = (cosync_process_output){small, 3, 0};
    CHECK_OK(cosync_process_communicate(&p, NULL, 0, &out, NULL, &code, COSYNC_FOREVER));
    CHECK_EQ(out.len, 6);
    CHECK(memcmp(small, "abc", 3) == 0);
    CHECK_OK(cosync_process_destroy(&p));

    /* a child that reads nothing: the 1 MiB write's EPIPE is dropped, and
     * no SIGPIPE kills the test */
    char *truth[] = {"true", NULL};
    CHECK_OK(cosync_process_spawn(&p, "true", truth,
                                  &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_PIPE}));
    CHECK_OK(cosync_process_communicate(&p, in, n, NULL, NULL, &code, COSYNC_FOREVER));
    CHECK_EQ(code, 0);
    CHECK_OK(cosync_process_destroy(&p));
    free(in);
    free(got);
    return 0;
}

TEST(communicate)
{
    run_both_ways(communicate_main, NULL);
}

/* communicate(p) with no input or buffers, no deadline. */
static int communicate_body(void *arg, void **result)
{
    (void)result;
    cosync_process *p = arg;
    return cosync_process_communicate(p, NULL, 0, NULL, NULL, NULL, COSYNC_FOREVER);
}

/* A deadline or a cancel ends communicate and leaves the child running. */
static int communicate_ends_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_process p;
    sh(&p, "exec sleep 1000", &piped_out);
    int64_t deadline = cosync_deadline_after(SEC(3));
    CHECK_ERR(cosync_process_communicate(&p, NULL, 0, NULL, NULL, NULL, deadline),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), deadline);
    CHECK_ERR(cosync_process_communicate(&p, NULL, 0, NULL, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);

    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, communicate_body, &p, NULL));
    CHECK_OK(cosync_sleep(SEC(1)));
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(cosync_process_returncode(&p, NULL), COSYNC_EAGAIN);
    CHECK_OK(cosync_process_kill(&p));
    int code = 0;
    CHECK_OK(cosync_process_communicate(&p, NULL, 0, NULL, NULL, &code, COSYNC_FOREVER));
    CHECK_EQ(code, -SIGKILL);
    CHECK_OK(cosync_process_communicate(&p, NULL, 0, NULL, NULL, &code, 0)); /* all done */
    CHECK_OK(cosync_process_destroy(&p));

    /* input for a child whose stdin is not a pipe is dropped, as asyncio
     * drops it */
    sh(&p, "exit 5", &piped_out);
    CHECK_OK(cosync_process_communicate(&p, "abc", 3, NULL, NULL, &code, COSYNC_FOREVER));
    CHECK_EQ(code, 5);
    CHECK_OK(cosync_process_destroy(&p));

    /* no pipes, but running: deadline 0 cannot complete */
    spawn_sleeper(&p, NULL);
    CHECK_ERR(cosync_process_communicate(&p, NULL, 0, NULL, NULL, &code, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_process_destroy(&p));
    return 0;
}

TEST(communicate_deadline_and_cancel)
{
    run_both_ways(communicate_ends_main, NULL);
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_process p;
    sh(&p, "true", NULL);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, communicate_body, &p, &(cosync_task_opts){.dense = true}));
    /* under the ucontext backend a dense task has a stack of its own */
    CHECK_EQ(join_status(t), COSYNC__DENSE_SUPPORTED ? COSYNC_EINVAL : 0);
    end_with(&p, 0);
    return 0;
}

TEST(communicate_refused_to_a_dense_task)
{
    run_main_ok(dense_main, NULL);
    check_no_child();
}

/* ------------------------------------------------------------------------
 * The end, misuse, failures
 * ---------------------------------------------------------------------- */

/* destroy kills a child still running and reaps it. */
static int destroy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    spawn_sleeper(&p, &piped_out);
    int pid = cosync_process_pid(&p);
    CHECK_OK(cosync_process_destroy(&p));
    CHECK_EQ(kill(pid, 0), -1);
    CHECK_EQ(errno, ESRCH);
    CHECK_ERR(cosync_process_destroy(&p), COSYNC_EBADF);
    CHECK_ERR(cosync_process_wait(&p, NULL, COSYNC_FOREVER), COSYNC_EBADF);
    CHECK_ERR(cosync_process_returncode(&p, NULL), COSYNC_EBADF);
    CHECK_ERR(cosync_process_kill(&p), COSYNC_EBADF);
    CHECK_ERR(cosync_process_communicate(&p, NULL, 0, NULL, NULL, NULL, COSYNC_FOREVER),
              COSYNC_EBADF);
    return 0;
}

TEST(destroy_kills_and_reaps)
{
    run_both_ways(destroy_main, NULL);
}

/* Programs that cannot be run: not found, not executable. */
static int exec_failures_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_process p;
    char *missing[] = {"cosync-no-such-program", NULL};
    check_exec_fails(cosync_process_spawn(&p, "cosync-no-such-program", missing, NULL), &p,
                     COSYNC_ENOENT);
    char *devnull[] = {"/dev/null", NULL};
    check_exec_fails(cosync_process_spawn(&p, "/dev/null", devnull, NULL), &p, COSYNC_EACCES);
    return 0;
}

/* A process outlives the loop its waits were bound to: after the loop's
 * destroy, its destroy (outside any loop) kills and reaps the child and
 * closes everything, and a wait in a new loop works. */
static cosync_process outlives;

static int wait_a_while(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_process_wait(&outlives, NULL, cosync_deadline_after(SEC(1))),
              COSYNC_ETIMEDOUT);
    return 0;
}

static int kill_and_wait(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_process_kill(&outlives));
    CHECK_EQ(wait_code(&outlives), -SIGKILL);
    return 0;
}

static void outlive_loop(bool wait_in_a_new_loop)
{
    int fds = open_fds();
    spawn_sleeper(&outlives, &piped_out);
    int pid = cosync_process_pid(&outlives);
    run_main_ok(wait_a_while, NULL); /* the loop is destroyed there */
    if (wait_in_a_new_loop)
        run_main_ok(kill_and_wait, NULL);
    CHECK_OK(cosync_process_destroy(&outlives));
    CHECK_EQ(kill(pid, 0), -1);
    CHECK_EQ(errno, ESRCH);
    CHECK_EQ(open_fds(), fds);
    check_no_child();
}

TEST(process_outlives_its_loop)
{
    for (int poll = 0; poll < 2; poll++) {
        cosync__process_use_pidfd = !poll;
        outlive_loop(false);
        outlive_loop(true);
    }
    cosync__process_use_pidfd = true;
}

TEST(misuse)
{
    int fds = open_fds();
    cosync_process p, zero = {0};
    char *argv[] = {"true", NULL};
    CHECK_ERR(cosync_process_spawn(NULL, "true", argv, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_spawn(&p, NULL, argv, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_spawn(&p, "true", NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_spawn(&p, "true", argv,
                                   &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_STDOUT}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_process_spawn(&p, "true", argv,
                                   &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_STDOUT}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_process_spawn(&p, "true", argv, &(cosync_process_opts){.stderr_mode = 9}),
              COSYNC_EINVAL);
    /* pass_fds: a negative descriptor, a count without a list, and one
     * that is not open, with the pipes asked for: none is made */
    int closed = dup(0);
    CHECK_GE(closed, 0);
    close(closed);
    const int bad[][2] = {{0, -1}, {0, closed}};
    const cosync_process_opts piped = {.stdin_mode = COSYNC_PROCESS_PIPE,
                                       .stdout_mode = COSYNC_PROCESS_PIPE};
    cosync_process_opts o = piped;
    o.pass_fds = bad[0], o.npass_fds = 2;
    CHECK_ERR(cosync_process_spawn(&p, "true", argv, &o), COSYNC_EINVAL);
    o.pass_fds = NULL, o.npass_fds = 1;
    CHECK_ERR(cosync_process_spawn(&p, "true", argv, &o), COSYNC_EINVAL);
    o.pass_fds = bad[1], o.npass_fds = 2;
    CHECK_ERR(cosync_process_spawn(&p, "true", argv, &o), COSYNC_EBADF);
    o.inherit_fds = true;
    CHECK_ERR(cosync_process_spawn(&p, "true", argv, &o), COSYNC_EBADF);
    o.pass_fds = NULL, o.npass_fds = 0; /* no list: no count either */
    CHECK_OK(cosync_process_spawn(&p, "true", argv, &o));
    CHECK_OK(cosync_process_destroy(&p));
    run_main_ok(exec_failures_main, NULL);
    CHECK_EQ(open_fds(), fds);
    check_no_child();
    /* a zeroed struct was never spawned */
    CHECK_ERR(cosync_process_wait(&zero, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_returncode(&zero, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_kill(&zero), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_destroy(&zero), COSYNC_EINVAL);
    CHECK_ERR(cosync_process_communicate(&zero, NULL, 0, NULL, NULL, NULL, 0), COSYNC_EINVAL);
    /* a wait outside a task, even for a child that has exited (waited
     * for here without reaping it) */
    CHECK_OK(cosync_process_spawn(&p, "true", argv, NULL));
    siginfo_t info;
    CHECK_EQ(waitid(P_PID, (id_t)cosync_process_pid(&p), &info, WEXITED | WNOWAIT), 0);
    CHECK_ERR(cosync_process_wait(&p, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_OK(cosync_process_destroy(&p));
    check_no_child();
    CHECK_EQ(open_fds(), fds);
}

/* Each fault point of a spawn with three pipes failing in turn: an error,
 * nothing left open, no child. */
TEST(spawn_failures)
{
    int fds = open_fds();
    char *argv[] = {"true", NULL};
    const cosync_process_opts all = {.stdin_mode = COSYNC_PROCESS_PIPE,
                                     .stdout_mode = COSYNC_PROCESS_PIPE,
                                     .stderr_mode = COSYNC_PROCESS_PIPE};
    int failed = 0;
    for (long k = 0;; k++) {
        long before = cosync__fault_failures;
        cosync__fault_countdown = k;
        cosync_process p;
        int rc = cosync_process_spawn(&p, "true", argv, &all);
        cosync__fault_countdown = -1;
        if (cosync__fault_failures == before) {
            CHECK_OK(rc);
            CHECK_OK(cosync_process_destroy(&p));
            break;
        }
        CHECK(rc == COSYNC_EMFILE || rc == COSYNC_EAGAIN);
        CHECK_EQ(open_fds(), fds);
        check_no_child();
        failed++;
    }
    CHECK_EQ(failed, 4); /* three pipes and the spawn */
    check_no_child();
    CHECK_EQ(open_fds(), fds);
}

/* Each allocation communicate makes (its timeout block's node, the
 * records of its tasks) failing in turn: COSYNC_ENOMEM, nothing leaked;
 * the child is killed by the destroy. */
static int communicate_enomem_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int failed = 0;
    for (long k = 0;; k++) {
        char *cat[] = {"cat", NULL};
        cosync_process p;
        CHECK_OK(cosync_process_spawn(&p, "cat", cat,
                                      &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_PIPE,
                                                             .stdout_mode = COSYNC_PROCESS_PIPE,
                                                             .stderr_mode = COSYNC_PROCESS_PIPE}));
        long before = cosync__fault_failures;
        char buf[8];
        cosync_process_output out = {buf, sizeof buf, 0};
        cosync__fault_countdown = k;
        int rc = cosync_process_communicate(&p, "abc", 3, &out, NULL, NULL, COSYNC_FOREVER);
        cosync__fault_countdown = -1;
        CHECK_OK(cosync_process_destroy(&p));
        if (cosync__fault_failures == before) {
            CHECK_OK(rc);
            CHECK_EQ(out.len, 3);
            break;
        }
        CHECK_ERR(rc, COSYNC_ENOMEM);
        failed++;
    }
    CHECK_GE(failed, 1);
    return 0;
}

TEST(communicate_allocation_failures)
{
    long live = atomic_load(&cosync__mem_live);
    int fds = open_fds();
    run_main_ok(communicate_enomem_main, NULL);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
    CHECK_EQ(open_fds(), fds);
    check_no_child();
}

int main(void)
{
    signal(SIGPIPE, SIG_DFL); /* a SIGPIPE would end the test */
    RUN(output_and_exit_code);
    RUN(read_through_a_stream);
    RUN(signals);
    RUN(child_signals_reset);
    RUN(stderr_stdout_devnull);
    RUN(environment_directory_session);
    RUN(no_descriptor_inherited);
    RUN(pass_fds_and_inherit_fds);
    RUN(wait_deadline);
    RUN(many_waiters_and_a_cancelled_watcher);
    RUN(pidfd_wait_arms_no_timer);
    RUN(child_reaped_elsewhere);
    RUN(destroy_refused_while_one_task_waits);
    RUN(communicate);
    RUN(communicate_deadline_and_cancel);
    RUN(communicate_refused_to_a_dense_task);
    RUN(destroy_kills_and_reaps);
    RUN(process_outlives_its_loop);
    RUN(misuse);
    RUN(spawn_failures);
    RUN(communicate_allocation_failures);
    return 0;
}
