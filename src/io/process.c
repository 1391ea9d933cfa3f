/*
 * Child processes: asyncio.create_subprocess_exec and its Process.
 *
 * The child is started with posix_spawnp (glibc's uses a vfork-like clone
 * and reports a failed exec as the call's error), its exit watched through
 * a pidfd, which epoll reports readable when the child exits, and reaped
 * with waitpid. A kernel without pidfd_open (before 5.3, or a sandbox
 * that refuses it) is served by polling waitpid, backing off from 1 ms to
 * 50 ms. The child stays unreaped until a wait or a returncode sees its
 * exit, so its pid cannot be reused while the process's calls use it.
 *
 * Several tasks may wait for one child: one of them watches the pidfd,
 * the others wait on an event that is set for good at the exit, and
 * pulsed (set and cleared: every waiter then present wakes) when the
 * watcher leaves early, so that one of them takes over.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* posix_spawn_file_actions_addchdir_np, POSIX_SPAWN_SETSID */
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

extern char **environ;

enum { PROC_RUNNING = 1, PROC_EXITED, PROC_DESTROYED };

/* Tests turn it off to take the polling path on a kernel with pidfds. */
bool cosync__process_use_pidfd = true;

#define POLL_FIRST COSYNC_MS(1)
#define POLL_MAX COSYNC_MS(50)

static int pidfd_open_child(pid_t pid)
{
#ifdef SYS_pidfd_open
    if (cosync__process_use_pidfd)
        return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
#endif
    errno = ENOSYS;
    return -1;
}

/* ---- starting -------------------------------------------------------- */

/* The parent's and the child's ends of one standard stream's pipe. */
typedef struct pipe_ends {
    int parent, child;
} pipe_ends;

static void close_ends(pipe_ends *e)
{
    if (e->parent >= 0)
        close(e->parent);
    if (e->child >= 0)
        close(e->child);
    e->parent = e->child = -1;
}

/* A pipe for stream @target (0, 1, 2): the child reads stdin's, writes
 * the others'. Both ends close on exec; the spawn's dup2 gives the child
 * its end without the flag. */
static int make_pipe(pipe_ends *e, int target)
{
    int fds[2];
    if (cosync__fault_hit())
        return COSYNC_EMFILE;
    if (pipe2(fds, O_CLOEXEC) < 0)
        return -errno;
    bool child_reads = target == 0;
    e->child = child_reads ? fds[0] : fds[1];
    e->parent = child_reads ? fds[1] : fds[0];
    return 0;
}

static bool valid_mode(int mode, bool may_be_stdout)
{
    return mode == COSYNC_PROCESS_INHERIT || mode == COSYNC_PROCESS_PIPE ||
           mode == COSYNC_PROCESS_DEVNULL || (may_be_stdout && mode == COSYNC_PROCESS_STDOUT);
}

/* The file actions that give the child its three streams. */
static int add_stream(posix_spawn_file_actions_t *fa, int target, int mode, const pipe_ends *e)
{
    switch (mode) {
    case COSYNC_PROCESS_PIPE:
        return posix_spawn_file_actions_adddup2(fa, e->child, target);
    case COSYNC_PROCESS_DEVNULL:
        return posix_spawn_file_actions_addopen(fa, target, "/dev/null",
                                                target == 0 ? O_RDONLY : O_WRONLY, 0);
    case COSYNC_PROCESS_STDOUT:
        return posix_spawn_file_actions_adddup2(fa, 1, 2);
    default:
        return 0;
    }
}

static bool is_passed(int fd, const cosync_process_opts *o)
{
    for (size_t i = 0; i < o->npass_fds; i++)
        if (o->pass_fds[i] == fd)
            return true;
    return false;
}

/* Whether @fd is open and would outlive an exec. */
static bool inheritable(int fd)
{
    int flags = fcntl(fd, F_GETFD);
    return flags >= 0 && !(flags & FD_CLOEXEC);
}

/* The file actions that give the child @o->pass_fds and no other
 * descriptor above 2 (Python's close_fds=True with pass_fds), after the
 * streams' actions: a dup2 onto itself clears a passed descriptor's
 * close-on-exec flag in the child (glibc, POSIX.1-2024); the others open
 * and inheritable below the highest passed one are closed one by one,
 * and all above it at once. A descriptor that another thread opens
 * between this look and the spawn, below the highest passed one, could
 * slip through: open descriptors close-on-exec to be sure. */
static int add_descriptors(posix_spawn_file_actions_t *fa, const cosync_process_opts *o)
{
    int rc = 0, top = 2;
    for (size_t i = 0; i < o->npass_fds && !rc; i++) {
        int fd = o->pass_fds[i];
        if (fd > 2) {
            rc = posix_spawn_file_actions_adddup2(fa, fd, fd);
            top = fd > top ? fd : top;
        }
    }
    if (o->inherit_fds)
        return rc;
    for (int fd = 3; fd < top && !rc; fd++)
        if (!is_passed(fd, o) && inheritable(fd))
            rc = posix_spawn_file_actions_addclose(fa, fd);
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 34))
    if (!rc)
        rc = posix_spawn_file_actions_addclosefrom_np(fa, top + 1);
#else
    long max = sysconf(_SC_OPEN_MAX);
    for (int fd = top + 1; fd < (max > 0 && max < 65536 ? max : 65536) && !rc; fd++)
        if (inheritable(fd))
            rc = posix_spawn_file_actions_addclose(fa, fd);
#endif
    return rc;
}

/* 0, or the error for a descriptor of @o->pass_fds. */
static int check_passed(const cosync_process_opts *o)
{
    if (o->npass_fds && !o->pass_fds)
        return COSYNC_EINVAL;
    for (size_t i = 0; i < o->npass_fds; i++)
        if (o->pass_fds[i] < 0)
            return COSYNC_EINVAL;
    for (size_t i = 0; i < o->npass_fds; i++)
        if (fcntl(o->pass_fds[i], F_GETFD) < 0)
            return COSYNC_EBADF;
    return 0;
}

/* The child's signals, as Python's subprocess leaves them: none blocked
 * (the loop's thread may block those a cosync_signal takes), SIGPIPE and
 * SIGXFSZ at their default actions. */
static int set_signals(posix_spawnattr_t *attr, bool new_session)
{
    sigset_t none, dflt;
    sigemptyset(&none);
    sigemptyset(&dflt);
    sigaddset(&dflt, SIGPIPE);
    sigaddset(&dflt, SIGXFSZ);
    short flags = POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF;
    if (new_session)
        flags |= POSIX_SPAWN_SETSID;
    int rc = posix_spawnattr_setsigmask(attr, &none);
    if (!rc)
        rc = posix_spawnattr_setsigdefault(attr, &dflt);
    if (!rc)
        rc = posix_spawnattr_setflags(attr, flags);
    return rc;
}

static int start_child(pid_t *pid, const char *file, char *const argv[],
                       const cosync_process_opts *o, const pipe_ends ends[3])
{
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    if (posix_spawn_file_actions_init(&fa) != 0)
        return COSYNC_ENOMEM;
    if (posix_spawnattr_init(&attr) != 0) {
        posix_spawn_file_actions_destroy(&fa);
        return COSYNC_ENOMEM;
    }
    int modes[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
    int rc = 0;
    for (int i = 0; i < 3 && !rc; i++)
        rc = add_stream(&fa, i, modes[i], &ends[i]);
    if (!rc)
        rc = add_descriptors(&fa, o);
    if (!rc && o->cwd) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 29))
        rc = posix_spawn_file_actions_addchdir_np(&fa, o->cwd);
#else
        rc = ENOTSUP;
#endif
    }
    if (!rc)
        rc = set_signals(&attr, o->new_session);
    if (!rc)
        rc = cosync__fault_hit()
                 ? EAGAIN
                 : posix_spawnp(pid, file, &fa, &attr, argv, o->envp ? o->envp : environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    return -rc;
}

int cosync_process_spawn(cosync_process *p, const char *file, char *const argv[],
                         const cosync_process_opts *opts)
{
    static const cosync_process_opts defaults;
    const cosync_process_opts *o = opts ? opts : &defaults;
    if (!p || !file || !argv || !valid_mode(o->stdin_mode, false) ||
        !valid_mode(o->stdout_mode, false) || !valid_mode(o->stderr_mode, true))
        return COSYNC_EINVAL;
    int rc = check_passed(o);
    if (rc)
        return rc;
    pipe_ends ends[3] = {{-1, -1}, {-1, -1}, {-1, -1}};
    int modes[3] = {o->stdin_mode, o->stdout_mode, o->stderr_mode};
    for (int i = 0; i < 3 && !rc; i++)
        if (modes[i] == COSYNC_PROCESS_PIPE)
            rc = make_pipe(&ends[i], i);
    pid_t pid = -1;
    if (!rc)
        rc = start_child(&pid, file, argv, o, ends);
    if (rc) {
        for (int i = 0; i < 3; i++)
            close_ends(&ends[i]);
        return rc;
    }
    *p = (cosync_process){.pid = pid, .state = PROC_RUNNING, .changed = COSYNC_EVENT_INIT};
    cosync_io *handles[3] = {&p->in, &p->out, &p->err};
    for (int i = 0; i < 3; i++) {
        if (ends[i].child < 0)
            continue;
        close(ends[i].child);
        cosync_io_init(handles[i], ends[i].parent); /* a pipe: only O_NONBLOCK to set */
    }
    int pidfd = pidfd_open_child(pid);
    if (pidfd >= 0 && cosync_io_init(&p->pidfd, pidfd) != 0)
        close(pidfd); /* then polled */
    return 0;
}

int cosync_process_pid(const cosync_process *p)
{
    return p ? p->pid : COSYNC_EINVAL;
}

/* 0 for a process that spawn made and destroy has not ended; else the
 * code every call gives: COSYNC_EINVAL (never spawned), COSYNC_EBADF. */
static int spawned(const cosync_process *p)
{
    if (!p || !p->state)
        return COSYNC_EINVAL;
    return p->state == PROC_DESTROYED ? COSYNC_EBADF : 0;
}

/* ---- waiting --------------------------------------------------------- */

static int returncode_of(int status)
{
    if (WIFSIGNALED(status))
        return -WTERMSIG(status);
    return WEXITSTATUS(status);
}

/* Reap the child if it has exited: true once it has (now or before). */
static bool reap(cosync_process *p)
{
    if (p->state == PROC_EXITED)
        return true;
    int status;
    pid_t r = waitpid(p->pid, &status, WNOHANG);
    if (r == 0)
        return false;
    if (r < 0) {
        /* ECHILD: someone else reaped it (a waitpid(-1) or SIGCHLD set to
         * SIG_IGN in the program); its status is lost */
        status = 255 << 8;
    }
    p->returncode = returncode_of(status);
    p->state = PROC_EXITED;
    cosync_io_close(&p->pidfd);
    cosync_event_set(&p->changed);
    return true;
}

/* The watcher's wait for the exit: the pidfd's readiness, or a poll. */
static int watch(cosync_process *p, int64_t *poll_gap, int64_t deadline)
{
    if (cosync_io_fd(&p->pidfd) >= 0) {
        int rc = cosync_io_wait(&p->pidfd, COSYNC_IO_READ, deadline);
        return rc < 0 ? rc : 0;
    }
    if (deadline == 0)
        return COSYNC_EAGAIN;
    int64_t next = cosync_deadline_after(*poll_gap);
    *poll_gap = *poll_gap * 2 > POLL_MAX ? POLL_MAX : *poll_gap * 2;
    if (deadline != COSYNC_FOREVER && deadline <= next) {
        int rc = cosync_sleep_until(deadline);
        return rc ? rc : (reap(p) ? 0 : COSYNC_ETIMEDOUT);
    }
    return cosync_sleep_until(next);
}

/* The watcher leaves without the exit: every other waiter wakes, and one
 * of them takes over. */
static void hand_over(cosync_process *p)
{
    if (p->changed.q.n > 0) {
        cosync_event_set(&p->changed);
        cosync_event_clear(&p->changed);
    }
}

int cosync_process_wait(cosync_process *p, int *returncode, int64_t deadline)
{
    int rc = spawned(p);
    if (rc)
        return rc;
    if (!cosync__current())
        return COSYNC_EPERM;
    int64_t poll_gap = POLL_FIRST;
    for (;;) {
        if (reap(p)) {
            if (returncode)
                *returncode = p->returncode;
            return 0;
        }
        if (!p->watching) {
            p->watching = true;
            rc = watch(p, &poll_gap, deadline);
            p->watching = false;
            if (rc < 0)
                hand_over(p);
        } else {
            rc = cosync_event_wait(&p->changed, deadline);
        }
        if (rc < 0 && !(rc == COSYNC_ETIMEDOUT && reap(p)))
            return rc;
    }
}

int cosync_process_returncode(cosync_process *p, int *returncode)
{
    int rc = spawned(p);
    if (rc)
        return rc;
    if (!reap(p))
        return COSYNC_EAGAIN;
    if (returncode)
        *returncode = p->returncode;
    return 0;
}

/* ---- signals --------------------------------------------------------- */

int cosync_process_send_signal(cosync_process *p, int sig)
{
    int rc = spawned(p);
    if (rc)
        return rc;
    if (p->state == PROC_EXITED)
        return COSYNC_ESRCH;
    /* unreaped, the pid is still the child's, even if it has exited */
    return kill(p->pid, sig) == 0 ? 0 : -errno;
}

int cosync_process_terminate(cosync_process *p)
{
    return cosync_process_send_signal(p, SIGTERM);
}

int cosync_process_kill(cosync_process *p)
{
    return cosync_process_send_signal(p, SIGKILL);
}

/* ---- communicate ----------------------------------------------------- */

typedef struct feed {
    cosync_io *io;
    const char *data;
    size_t len;
} feed;

struct chunk {
    int fd;
    const char *data;
    size_t len;
};

static ssize_t write_chunk(void *arg)
{
    const struct chunk *c = arg;
    return write(c->fd, c->data, c->len);
}

static int feed_stdin(void *arg, void **result)
{
    (void)result;
    feed *f = arg;
    int fd = cosync_io_fd(f->io);
    size_t done = 0;
    int rc = 0;
    while (done < f->len) {
        struct chunk c = {fd, f->data + done, f->len - done};
        ssize_t n = cosync__without_sigpipe(write_chunk, &c);
        if (n >= 0) {
            done += (size_t)n;
            continue;
        }
        if (errno == EPIPE)
            break; /* the child stopped reading: asyncio drops BrokenPipeError too */
        if (errno == EINTR)
            continue;
        if (errno != EAGAIN) {
            rc = -errno;
            break;
        }
        rc = cosync_io_wait(f->io, COSYNC_IO_WRITE, COSYNC_FOREVER);
        if (rc < 0)
            break;
        rc = 0;
    }
    cosync_io_close(f->io);
    return rc;
}

typedef struct drain {
    cosync_io *io;
    cosync_process_output *out;
} drain;

static int drain_stream(void *arg, void **result)
{
    (void)result;
    drain *d = arg;
    char scratch[4096];
    for (;;) {
        cosync_process_output *o = d->out;
        bool keep = o && o->len < o->cap;
        char *to = keep ? o->buf + o->len : scratch;
        size_t room = keep ? o->cap - o->len : sizeof scratch;
        ssize_t n = cosync_io_read(d->io, to, room, COSYNC_FOREVER);
        if (n < 0)
            return (int)n;
        if (n == 0)
            return cosync_io_close(d->io); /* at its end: closed, as asyncio's */
        if (o)
            o->len += (size_t)n;
    }
}

int cosync_process_communicate(cosync_process *p, const void *input, size_t input_len,
                               cosync_process_output *out, cosync_process_output *err,
                               int *returncode, int64_t deadline)
{
    if ((input_len && !input) || (out && out->cap && !out->buf) || (err && err->cap && !err->buf))
        return COSYNC_EINVAL;
    int rc = spawned(p);
    if (rc)
        return rc;
    if (out)
        out->len = 0;
    if (err)
        err->len = 0;
    bool piped =
        cosync_io_fd(&p->in) >= 0 || cosync_io_fd(&p->out) >= 0 || cosync_io_fd(&p->err) >= 0;
    if (deadline == 0) {
        /* it can complete at once only with nothing to move */
        if (piped || !reap(p))
            return COSYNC_EAGAIN;
        if (returncode)
            *returncode = p->returncode;
        return 0;
    }
    cosync_timeout tm;
    rc = cosync_timeout_enter(&tm, deadline);
    if (rc)
        return rc;
    feed f = {&p->in, input, input_len};
    drain d_out = {&p->out, out}, d_err = {&p->err, err};
    cosync_taskgroup g;
    rc = cosync_taskgroup_init(&g);
    if (rc) {
        cosync_timeout_leave(&tm, 0);
        return rc;
    }
    if (cosync_io_fd(&p->in) >= 0)
        rc = cosync_taskgroup_spawn(&g, NULL, feed_stdin, &f, NULL);
    if (!rc && cosync_io_fd(&p->out) >= 0)
        rc = cosync_taskgroup_spawn(&g, NULL, drain_stream, &d_out, NULL);
    if (!rc && cosync_io_fd(&p->err) >= 0)
        rc = cosync_taskgroup_spawn(&g, NULL, drain_stream, &d_err, NULL);
    if (rc)
        cosync_taskgroup_cancel(&g);
    int waited = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    if (!rc)
        rc = waited;
    if (!rc)
        rc = cosync_process_wait(p, returncode, COSYNC_FOREVER);
    return cosync_timeout_leave(&tm, rc);
}

/* ---- the end --------------------------------------------------------- */

static bool waited_on(const cosync_process *p)
{
    const cosync_io *ios[4] = {&p->in, &p->out, &p->err, &p->pidfd};
    for (int i = 0; i < 4; i++)
        if (ios[i]->reader || ios[i]->writer)
            return true;
    return p->watching || p->changed.q.n > 0;
}

int cosync_process_destroy(cosync_process *p)
{
    int rc = spawned(p);
    if (rc)
        return rc;
    if (waited_on(p))
        return COSYNC_EBUSY;
    cosync_io_close(&p->in);
    cosync_io_close(&p->out);
    cosync_io_close(&p->err);
    if (!reap(p)) {
        kill(p->pid, SIGKILL);
        int status;
        while (waitpid(p->pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    cosync_io_close(&p->pidfd);
    p->state = PROC_DESTROYED;
    return 0;
}
