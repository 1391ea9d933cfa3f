/*
 * Non-blocking sockets on the handles of io/fd.c: addresses, and the
 * socket calls of asyncio's loop (sock_accept, sock_connect, sock_recv,
 * sock_sendall, sock_recvfrom, sock_sendto), each a system call retried
 * around the handle's wait.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/un.h>
#include <unistd.h>

#include "core.h"

/* ---- addresses ------------------------------------------------------- */

int cosync_addr_ip(cosync_addr *addr, const char *ip, uint16_t port)
{
    if (!addr || !ip)
        return COSYNC_EINVAL;
    memset(addr, 0, sizeof *addr);
    struct sockaddr_in *v4 = (struct sockaddr_in *)&addr->u.storage;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)&addr->u.storage;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(port);
        addr->len = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(port);
        addr->len = sizeof *v6;
        return 0;
    }
    return COSYNC_EINVAL;
}

int cosync_addr_unix(cosync_addr *addr, const char *path)
{
    if (!addr || !path)
        return COSYNC_EINVAL;
    struct sockaddr_un *un = (struct sockaddr_un *)&addr->u.storage;
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof un->sun_path)
        return COSYNC_EINVAL;
    memset(addr, 0, sizeof *addr);
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n + 1);
    addr->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    return 0;
}

int cosync_addr_format(const cosync_addr *addr, char *buf, size_t size)
{
    if (!addr || !buf)
        return COSYNC_EINVAL;
    char host[INET6_ADDRSTRLEN];
    int n;
    switch (addr->u.sa.sa_family) {
    case AF_INET: {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)&addr->u.storage;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        n = snprintf(buf, size, "%s:%u", host, (unsigned)ntohs(v4->sin_port));
        break;
    }
    case AF_INET6: {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&addr->u.storage;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        n = snprintf(buf, size, "[%s]:%u", host, (unsigned)ntohs(v6->sin6_port));
        break;
    }
    case AF_UNIX: {
        const struct sockaddr_un *un = (const struct sockaddr_un *)&addr->u.storage;
        size_t off = offsetof(struct sockaddr_un, sun_path);
        /* an unnamed socket (a client's) has no path */
        int len = addr->len > off ? (int)strnlen(un->sun_path, addr->len - off) : 0;
        n = snprintf(buf, size, "unix:%.*s", len, un->sun_path);
        break;
    }
    default:
        return COSYNC_EINVAL;
    }
    if ((size_t)n >= size) {
        if (size)
            buf[0] = '\0';
        return COSYNC_EOVERFLOW;
    }
    return n;
}

int cosync_addr_port(const cosync_addr *addr)
{
    if (!addr)
        return COSYNC_EINVAL;
    if (addr->u.sa.sa_family == AF_INET)
        return ntohs(((const struct sockaddr_in *)&addr->u.storage)->sin_port);
    if (addr->u.sa.sa_family == AF_INET6)
        return ntohs(((const struct sockaddr_in6 *)&addr->u.storage)->sin6_port);
    return COSYNC_EINVAL;
}

/* ---- making sockets -------------------------------------------------- */

int cosync_sock_open(cosync_io *io, int family, int type)
{
    if (!io)
        return COSYNC_EINVAL;
    int fd = socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    cosync__io_adopt(io, fd);
    return 0;
}

static int sock_type(int fd)
{
    int type = 0;
    socklen_t len = sizeof type;
    return getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) < 0 ? -1 : type;
}

int cosync_sock_bind(cosync_io *io, const cosync_addr *addr)
{
    if (!io || !addr)
        return COSYNC_EINVAL;
    int fd = cosync_io_fd(io);
    if (fd < 0)
        return fd;
    int family = addr->u.sa.sa_family;
    if ((family == AF_INET || family == AF_INET6) && sock_type(fd) == SOCK_STREAM) {
        int one = 1;
        if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) < 0)
            return -errno;
    }
    return bind(fd, &addr->u.sa, addr->len) < 0 ? -errno : 0;
}

int cosync__sock_listen(cosync_io *io, const cosync_addr *addr, int backlog, bool v6only)
{
    if (!io || !addr || backlog < 0)
        return COSYNC_EINVAL;
    int rc = cosync_sock_open(io, addr->u.sa.sa_family, SOCK_STREAM);
    if (rc)
        return rc;
    if (v6only && addr->u.sa.sa_family == AF_INET6 &&
        setsockopt(io->fd, IPPROTO_IPV6, IPV6_V6ONLY, &(int){1}, sizeof(int)) < 0)
        rc = -errno;
    if (rc == 0)
        rc = cosync_sock_bind(io, addr);
    if (rc == 0 && listen(io->fd, backlog ? backlog : SOMAXCONN) < 0)
        rc = -errno;
    if (rc)
        cosync_io_close(io);
    return rc;
}

int cosync_sock_listen(cosync_io *io, const cosync_addr *addr, int backlog)
{
    return cosync__sock_listen(io, addr, backlog, false);
}

/* One of the socket's two addresses, through getsockname or getpeername. */
static int sock_name(const cosync_io *io, cosync_addr *addr,
                     int (*get)(int, struct sockaddr *, socklen_t *))
{
    if (!io || !addr)
        return COSYNC_EINVAL;
    int fd = cosync_io_fd(io);
    if (fd < 0)
        return fd;
    memset(addr, 0, sizeof *addr);
    addr->len = sizeof addr->u.storage;
    return get(fd, &addr->u.sa, &addr->len) < 0 ? -errno : 0;
}

int cosync_sock_local_addr(const cosync_io *io, cosync_addr *addr)
{
    return sock_name(io, addr, getsockname);
}

int cosync_sock_peer_addr(const cosync_io *io, cosync_addr *addr)
{
    return sock_name(io, addr, getpeername);
}

int cosync_sock_shutdown(cosync_io *io, int how)
{
    if (!io)
        return COSYNC_EINVAL;
    int fd = cosync_io_fd(io);
    if (fd < 0)
        return fd;
    return shutdown(fd, how) < 0 ? -errno : 0;
}

/* ---- accept and connect ---------------------------------------------- */

struct accept_ctx {
    cosync_addr *peer;
    int fd;
};

static ssize_t accept_op(cosync_io *io, void *ctx)
{
    struct accept_ctx *a = ctx;
    cosync_addr local;
    cosync_addr *peer = a->peer ? a->peer : &local;
    for (;;) {
        memset(peer, 0, sizeof *peer);
        peer->len = sizeof peer->u.storage;
        a->fd = accept4(io->fd, &peer->u.sa, &peer->len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (a->fd >= 0)
            return 0;
        /* a connection that was reset while queued: take the next one */
        if (errno != ECONNABORTED)
            return -errno;
    }
}

int cosync_sock_accept(cosync_io *listener, cosync_io *conn, cosync_addr *peer, int64_t deadline)
{
    if (!listener || !conn)
        return COSYNC_EINVAL;
    struct accept_ctx a = {.peer = peer, .fd = -1};
    ssize_t rc = cosync__io_retry(listener, COSYNC_IO_READ, accept_op, &a, deadline);
    if (rc < 0)
        return (int)rc;
    cosync__io_adopt(conn, a.fd);
    return 0;
}

int cosync__sock_accept_now(cosync_io *listener, cosync_io *conn, cosync_addr *peer)
{
    if (listener->state == 0)
        return COSYNC_EBADF;
    struct accept_ctx a = {.peer = peer, .fd = -1};
    ssize_t rc;
    while ((rc = accept_op(listener, &a)) == -EINTR)
        ;
    if (rc < 0)
        return (int)rc;
    cosync__io_adopt(conn, a.fd);
    return 0;
}

/* connect_op's EAGAIN, which is no "wait and try again" (a code of no
 * errno, so that the retry does not take it for one) */
#define QUEUE_FULL (COSYNC_ERANGE_FIRST - 1)

struct connect_ctx {
    const cosync_addr *addr;
    bool started;
};

/* The connection's outcome once the socket is writable: 0, the error it
 * failed with, or -EINPROGRESS while it is still under way. */
static ssize_t connect_outcome(int fd)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        return -errno;
    if (err)
        return -err;
    cosync_addr peer = {.len = sizeof peer.u.storage};
    if (getpeername(fd, &peer.u.sa, &peer.len) == 0)
        return 0;
    return errno == ENOTCONN ? -EINPROGRESS : -errno;
}

int cosync__connect_begin(cosync_io *io, const cosync_addr *addr)
{
    return connect(io->fd, &addr->u.sa, addr->len) == 0 ? 0 : -errno;
}

static ssize_t connect_op(cosync_io *io, void *ctx)
{
    struct connect_ctx *c = ctx;
    if (c->started)
        return connect_outcome(io->fd);
    c->started = true;
    int rc = cosync__connect_begin(io, c->addr);
    if (rc == -EISCONN)
        return 0;
    /* EALREADY: a connect with deadline 0 began it */
    if (rc == -EALREADY)
        return -EINPROGRESS;
    /* a Unix-domain listener's queue is full: nothing was begun, and no
     * readiness will say when there is room (Go and tokio report it) */
    return rc == -EAGAIN ? QUEUE_FULL : rc;
}

int cosync__connect_outcome(const cosync_io *io)
{
    return (int)connect_outcome(io->fd);
}

int cosync_sock_connect(cosync_io *io, const cosync_addr *addr, int64_t deadline)
{
    if (!io || !addr)
        return COSYNC_EINVAL;
    struct connect_ctx c = {.addr = addr};
    int rc = (int)cosync__io_retry(io, COSYNC_IO_WRITE, connect_op, &c, deadline);
    return rc == QUEUE_FULL ? COSYNC_EAGAIN : rc;
}

int cosync_tcp_connect(cosync_io *io, const cosync_addr *addr, int64_t deadline)
{
    if (!io || !addr)
        return COSYNC_EINVAL;
    int rc = cosync_sock_open(io, addr->u.sa.sa_family, SOCK_STREAM);
    if (rc)
        return rc;
    rc = cosync_sock_connect(io, addr, deadline);
    if (rc)
        cosync_io_close(io);
    return rc;
}

/* ---- data ------------------------------------------------------------ */

struct msg_ctx {
    void *buf;
    size_t len;
    cosync_addr *addr; /* recvfrom's sender, sendto's destination */
};

static ssize_t recv_op(cosync_io *io, void *ctx)
{
    struct msg_ctx *m = ctx;
    ssize_t n;
    if (m->addr) {
        memset(m->addr, 0, sizeof *m->addr);
        m->addr->len = sizeof m->addr->u.storage;
        n = recvfrom(io->fd, m->buf, m->len, 0, &m->addr->u.sa, &m->addr->len);
    } else {
        n = recv(io->fd, m->buf, m->len, 0);
    }
    return n < 0 ? -errno : n;
}

static ssize_t send_op(cosync_io *io, void *ctx)
{
    struct msg_ctx *m = ctx;
    const struct sockaddr *to = m->addr ? &m->addr->u.sa : NULL;
    socklen_t len = m->addr ? m->addr->len : 0;
    ssize_t n = sendto(io->fd, m->buf, m->len, MSG_NOSIGNAL, to, len);
    return n < 0 ? -errno : n;
}

ssize_t cosync_sock_recv(cosync_io *io, void *buf, size_t len, int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    if (len == 0) { /* recv(2) of nothing says EAGAIN on an empty stream */
        if (!io)
            return COSYNC_EINVAL;
        return cosync_io_fd(io) < 0 ? COSYNC_EBADF : 0;
    }
    struct msg_ctx m = {buf, len, NULL};
    return cosync__io_retry(io, COSYNC_IO_READ, recv_op, &m, deadline);
}

ssize_t cosync_sock_send(cosync_io *io, const void *buf, size_t len, int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    struct msg_ctx m = {(void *)buf, len, NULL};
    return cosync__io_retry(io, COSYNC_IO_WRITE, send_op, &m, deadline);
}

int cosync_sock_sendall(cosync_io *io, const void *buf, size_t len, size_t *sent, int64_t deadline)
{
    return cosync__io_write_all(io, buf, len, sent, cosync_sock_send, deadline);
}

ssize_t cosync_sock_recvfrom(cosync_io *io, void *buf, size_t len, cosync_addr *from,
                             int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    cosync_addr ignored;
    struct msg_ctx m = {buf, len, from ? from : &ignored};
    return cosync__io_retry(io, COSYNC_IO_READ, recv_op, &m, deadline);
}

ssize_t cosync_sock_sendto(cosync_io *io, const void *buf, size_t len, const cosync_addr *to,
                           int64_t deadline)
{
    if (!buf && len)
        return COSYNC_EINVAL;
    struct msg_ctx m = {(void *)buf, len, (cosync_addr *)to};
    return cosync__io_retry(io, COSYNC_IO_WRITE, send_op, &m, deadline);
}
