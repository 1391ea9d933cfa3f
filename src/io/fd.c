/*
 * Waiting on file descriptors: the handle (cosync_io), its registration
 * with a loop's epoll, and the waits of the tasks that read and write
 * through it.
 *
 * A handle is registered once, edge-triggered, for both directions, with
 * the handle as the event's pointer (never a task's stack: a dense task's
 * moves). The loop's idle step hands each event to cosync__io_event,
 * which keeps the readiness the event brings until a wait takes it, and
 * grants the waits it satisfies. Edge-triggered registration costs one
 * epoll_ctl per handle, not two per wait (asyncio's add_reader and
 * remove_reader), and no readiness is lost: an edge that comes while no
 * task waits is kept in `ready`.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/epoll.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

enum io_state { IO_CLOSED, IO_OPEN, IO_REGISTERED };

#define IO_BOTH (COSYNC_IO_READ | COSYNC_IO_WRITE)

void cosync__io_adopt(cosync_io *io, int fd)
{
    *io = (cosync_io){.fd = fd, .state = IO_OPEN};
}

int cosync_io_init(cosync_io *io, int fd)
{
    if (!io || fd < 0)
        return COSYNC_EINVAL;
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || (!(flags & O_NONBLOCK) && fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0))
        return -errno;
    cosync__io_adopt(io, fd);
    return 0;
}

int cosync_io_fd(const cosync_io *io)
{
    if (!io || io->state == IO_CLOSED)
        return COSYNC_EBADF;
    return io->fd;
}

/* ---- the loop's side ------------------------------------------------- */

/* Grant @t's wait on @io with the readiness it asked for that is there,
 * if any, and take that readiness. */
static void grant_if_ready(cosync_io *io, struct cosync__task *t)
{
    int got = io->ready & (int)t->w.data;
    if (!got)
        return;
    io->ready &= (uint8_t)~got;
    if (io->reader == t)
        io->reader = NULL;
    if (io->writer == t)
        io->writer = NULL;
    io->loop->io_waiters--;
    cosync__grant(&t->w, got);
}

void cosync__io_event(cosync_io *io, uint32_t events)
{
    /* released by a watch callback earlier in the same batch of events
     * (libcurl closing one socket as it works on another) */
    if (io->state != IO_REGISTERED)
        return;
    if (events & (EPOLLIN | EPOLLRDHUP | EPOLLPRI | EPOLLHUP | EPOLLERR))
        io->ready |= COSYNC_IO_READ;
    if (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))
        io->ready |= COSYNC_IO_WRITE;
    if (io->watch) {
        int ready = io->ready;
        io->ready = 0; /* level-triggered: the next event says it again */
        io->watch(io, ready | (events & EPOLLERR ? COSYNC__IO_ERROR : 0));
        return;
    }
    if (io->reader)
        grant_if_ready(io, io->reader);
    if (io->writer)
        grant_if_ready(io, io->writer);
}

void cosync__io_loop_destroy(cosync_loop *loop)
{
    /* no task waits any more: the close cancelled them all */
    cosync__node *n;
    while ((n = cosync__list_pop_front(&loop->ios)) != NULL) {
        cosync_io *io = cosync__container_of(n, cosync_io, node);
        io->state = IO_OPEN;
        io->loop = NULL;
        io->ready = 0;
        io->watch = NULL;
    }
}

/* ---- registration ---------------------------------------------------- */

/* The descriptor's readiness at this moment (poll(2)), for a try that
 * the readiness kept from epoll's edges does not answer. */
static uint8_t ready_now(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP};
    if (poll(&p, 1, 0) != 1)
        return 0;
    uint8_t ready = 0;
    if (p.revents & (POLLIN | POLLRDHUP | POLLHUP | POLLERR))
        ready |= COSYNC_IO_READ;
    if (p.revents & (POLLOUT | POLLHUP | POLLERR))
        ready |= COSYNC_IO_WRITE;
    return ready;
}

static int register_with(cosync_io *io, cosync_loop *loop)
{
    struct epoll_event ev = {
        .events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
        .data.ptr = io,
    };
    if (cosync__fault_hit())
        return COSYNC_ENOMEM;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, io->fd, &ev) < 0)
        return -errno;
    io->state = IO_REGISTERED;
    io->loop = loop;
    io->ready = 0; /* what is ready now comes as the first edge (a try asks
                    * the descriptor itself meanwhile) */
    cosync__list_push_back(&loop->ios, &io->node);
    return 0;
}

int cosync__io_watch(cosync_io *io, cosync_loop *loop, int events,
                     void (*watch)(cosync_io *io, int events))
{
    struct epoll_event ev = {.data.ptr = io};
    if (events & COSYNC_IO_READ)
        ev.events |= EPOLLIN;
    if (events & COSYNC_IO_WRITE)
        ev.events |= EPOLLOUT;
    if (cosync__fault_hit())
        return COSYNC_ENOMEM;
    int op = io->state == IO_REGISTERED ? EPOLL_CTL_MOD : EPOLL_CTL_ADD;
    if (epoll_ctl(loop->epfd, op, io->fd, &ev) < 0)
        return -errno;
    io->watch = watch;
    if (op == EPOLL_CTL_ADD) {
        io->state = IO_REGISTERED;
        io->loop = loop;
        cosync__list_push_back(&loop->ios, &io->node);
    }
    return 0;
}

/* Take @io off its loop (if it is on one) and end its waits with
 * COSYNC_EBADF. */
static void unregister(cosync_io *io)
{
    if (io->state != IO_REGISTERED)
        return;
    cosync_loop *loop = io->loop;
    /* fails only if the descriptor was closed behind the handle's back,
     * which took it off epoll already */
    (void)epoll_ctl(loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    cosync__list_remove(&loop->ios, &io->node);
    struct cosync__task *waiters[2] = {io->reader, io->writer};
    io->reader = io->writer = NULL;
    for (int i = 0; i < 2; i++) {
        struct cosync__task *t = waiters[i];
        if (t && (i == 0 || t != waiters[0])) {
            loop->io_waiters--;
            cosync__grant(&t->w, COSYNC_EBADF);
        }
    }
    io->state = IO_OPEN;
    io->loop = NULL;
}

/* ---- waiting --------------------------------------------------------- */

static void io_cancel(cosync__waiter *w)
{
    cosync_io *io = w->obj;
    struct cosync__task *t = cosync__waiter_task(w);
    if (io->reader == t)
        io->reader = NULL;
    if (io->writer == t)
        io->writer = NULL;
    t->loop->io_waiters--;
}

static void io_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_io *io = w->obj;
    static const char *const what[] = {"", "read", "write", "read or write"};
    snprintf(buf, size, "fd %d (%s)", io->fd, what[w->data & IO_BOTH]);
}

static const cosync__waiter_ops io_ops = {"io", io_cancel, io_describe, NULL};

/* Check that the running task may wait on @io (registering it on first
 * use): 0 with the task in *@curp, or the error. */
static int prepare_wait(cosync_io *io, int events, struct cosync__task **curp)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (io->state == IO_REGISTERED && io->loop != cur->loop)
        return COSYNC_EPERM;
    if (((events & COSYNC_IO_READ) && io->reader) || ((events & COSYNC_IO_WRITE) && io->writer))
        return COSYNC_EBUSY;
    /* the loop would write to it while the task is away, when its stack
     * holds another task's bytes (docs/stacks.md, "The rule") */
    if (cosync__dense_holds(cur, io))
        return COSYNC_EINVAL;
    if (io->state == IO_OPEN) {
        int rc = register_with(io, cur->loop);
        if (rc)
            return rc;
    }
    *curp = cur;
    return 0;
}

int cosync_io_wait(cosync_io *io, int events, int64_t deadline)
{
    if (!io)
        return COSYNC_EINVAL;
    if (io->state == IO_CLOSED)
        return COSYNC_EBADF;
    if (!(events & IO_BOTH) || (events & ~IO_BOTH))
        return COSYNC_EINVAL;
    struct cosync__task *cur;
    int rc = prepare_wait(io, events, &cur);
    if (rc)
        return rc;
    /* a try looks at the descriptor itself: the loop looks at epoll only
     * now and then while tasks keep it busy, and never for a handle that
     * no task waits on */
    if (deadline == 0 && !(io->ready & events))
        io->ready |= ready_now(io->fd);
    int got = io->ready & events;
    if (got) {
        io->ready &= (uint8_t)~got;
        return got;
    }
    if (events & COSYNC_IO_READ)
        io->reader = cur;
    if (events & COSYNC_IO_WRITE)
        io->writer = cur;
    cur->loop->io_waiters++;
    cosync__waiter *w = cosync__waiter_prepare(cur, &io_ops, io);
    w->data = (uintptr_t)events;
    return cosync__wait(w, deadline);
}

int cosync__epoll_open(cosync_io *io)
{
    int ep = cosync__fault_hit() ? (errno = ENOMEM, -1) : epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0)
        return -errno;
    cosync__io_adopt(io, ep);
    return 0;
}

/* ---- transfers ------------------------------------------------------- */

ssize_t cosync__without_sigpipe(ssize_t (*call)(void *ctx), void *ctx)
{
    sigset_t pipe_only, before, pending;
    sigemptyset(&pipe_only);
    sigaddset(&pipe_only, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_only, &before);
    sigpending(&pending);
    bool was_pending = sigismember(&pending, SIGPIPE);
    ssize_t n = call(ctx);
    int saved = errno;
    if (n < 0 && saved == EPIPE && !was_pending) {
        static const struct timespec zero = {0, 0};
        while (sigtimedwait(&pipe_only, NULL, &zero) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &before, NULL);
    errno = saved;
    return n;
}

ssize_t cosync__io_retry(cosync_io *io, int event, ssize_t (*op)(cosync_io *io, void *ctx),
                         void *ctx, int64_t deadline)
{
    if (!io)
        return COSYNC_EINVAL;
    for (;;) {
        if (io->state == IO_CLOSED)
            return COSYNC_EBADF;
        ssize_t n = op(io, ctx);
        if (n >= 0)
            return n;
        if (n == -EINTR)
            continue;
        if (n != -EAGAIN && n != -EWOULDBLOCK && n != -EINPROGRESS)
            return n;
        /* not ready now, whatever an earlier edge said */
        io->ready &= (uint8_t)~event;
        int rc = cosync_io_wait(io, event, deadline);
        if (rc < 0)
            return rc;
    }
}

struct transfer {
    void *buf;
    size_t len;
};

static ssize_t read_op(cosync_io *io, void *ctx)
{
    struct transfer *x = ctx;
    ssize_t n = read(io->fd, x->buf, x->len);
    return n < 0 ? -errno : n;
}

static ssize_t write_op(cosync_io *io, void *ctx)
{
    struct transfer *x = ctx;
    ssize_t n = write(io->fd, x->buf, x->len);
    return n < 0 ? -errno : n;
}

ssize_t cosync_io_read(cosync_io *io, void *buf, size_t len, int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    return cosync__io_retry(io, COSYNC_IO_READ, read_op, &(struct transfer){buf, len}, deadline);
}

ssize_t cosync_io_write(cosync_io *io, const void *buf, size_t len, int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    return cosync__io_retry(io, COSYNC_IO_WRITE, write_op, &(struct transfer){(void *)buf, len},
                            deadline);
}

int cosync__io_write_all(cosync_io *io, const void *buf, size_t len, size_t *written,
                         ssize_t (*write_some)(cosync_io *, const void *, size_t, int64_t),
                         int64_t deadline)
{
    size_t done = 0;
    int rc = 0;
    if (!buf && len)
        rc = COSYNC_EINVAL;
    while (rc == 0 && done < len) {
        ssize_t n = write_some(io, (const char *)buf + done, len - done, deadline);
        if (n < 0)
            rc = (int)n;
        else
            done += (size_t)n;
    }
    if (written)
        *written = done;
    return rc;
}

int cosync_io_write_all(cosync_io *io, const void *buf, size_t len, size_t *written,
                        int64_t deadline)
{
    return cosync__io_write_all(io, buf, len, written, cosync_io_write, deadline);
}

/* ---- the end --------------------------------------------------------- */

/* Take @io off its loop and mark it closed; its descriptor, or an error. */
static int detach(cosync_io *io)
{
    if (!io)
        return COSYNC_EINVAL;
    if (io->state == IO_CLOSED)
        return COSYNC_EBADF;
    if (io->state == IO_REGISTERED && cosync__tls.loop && cosync__tls.loop != io->loop)
        return COSYNC_EPERM;
    unregister(io);
    int fd = io->fd;
    *io = (cosync_io){.fd = -1};
    return fd;
}

int cosync_io_close(cosync_io *io)
{
    int fd = detach(io);
    if (fd == COSYNC_EBADF)
        return 0;
    if (fd < 0)
        return fd;
    close(fd); /* an error here (EINTR, EIO) leaves nothing to retry on Linux */
    return 0;
}

int cosync_io_release(cosync_io *io)
{
    return detach(io);
}
