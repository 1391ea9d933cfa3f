/*
 * A file's bytes sent on a socket (asyncio's loop.sock_sendfile): with
 * sendfile(2), the kernel copying from the page cache, and waits for room
 * on the socket as any send has; where the file cannot be sent that way
 * (sendfile says EINVAL or ENOSYS: a file system without it), by reads
 * and sends through a buffer, as asyncio's fallback does.
 *
 * sendfile has no MSG_NOSIGNAL: a peer that has gone would raise SIGPIPE
 * and kill the process, so each call is made without it
 * (cosync__without_sigpipe).
 */
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

/* The most one sendfile call sends (Linux's own limit), and the size of
 * the fallback's buffer. */
#define SENDFILE_MAX 0x7ffff000
#define FALLBACK_BUF (64 * 1024)

struct transfer {
    int fd;
    off_t offset;
    size_t len;
    char *buf; /* the fallback's; NULL: sendfile */
};

struct sendfile_call {
    int out;
    struct transfer *x;
};

static ssize_t call_sendfile(void *arg)
{
    const struct sendfile_call *c = arg;
    return sendfile(c->out, c->x->fd, &c->x->offset, c->x->len);
}

static ssize_t sendfile_op(cosync_io *io, void *ctx)
{
    struct transfer *x = ctx;
    ssize_t n = cosync__without_sigpipe(call_sendfile, &(struct sendfile_call){io->fd, x});
    return n < 0 ? -errno : n;
}

/* The fallback's step: read a buffer's worth at the offset, then send
 * all of it (a partial send is finished before the next read). */
static ssize_t copy_some(cosync_io *io, struct transfer *x, int64_t deadline)
{
    size_t want = x->len < FALLBACK_BUF ? x->len : FALLBACK_BUF;
    ssize_t n;
    while ((n = pread(x->fd, x->buf, want, x->offset)) < 0 && errno == EINTR)
        ;
    if (n <= 0)
        return n < 0 ? -errno : 0;
    size_t sent = 0;
    int rc = cosync_sock_sendall(io, x->buf, (size_t)n, &sent, deadline);
    x->offset += (off_t)sent;
    return rc ? rc : n;
}

int cosync_sock_sendfile(cosync_io *io, int fd, off_t offset, size_t count, size_t *sent,
                         int64_t deadline)
{
    size_t done = 0;
    int rc = 0;
    if (!io || fd < 0 || offset < 0)
        rc = COSYNC_EINVAL;
    struct transfer x = {.fd = fd, .offset = offset};
    while (rc == 0 && (count == 0 || done < count)) {
        size_t left = count ? count - done : SENDFILE_MAX;
        x.len = left < SENDFILE_MAX ? left : SENDFILE_MAX;
        off_t before = x.offset;
        ssize_t n = x.buf ? copy_some(io, &x, deadline)
                          : cosync__io_retry(io, COSYNC_IO_WRITE, sendfile_op, &x, deadline);
        done += (size_t)(x.offset - before);
        if (n == 0)
            break; /* the end of the file */
        if ((n == -EINVAL || n == -ENOSYS) && !x.buf && done == 0) {
            /* this file cannot be sent by sendfile: copy it */
            x.buf = cosync__mem_alloc(NULL, FALLBACK_BUF);
            rc = x.buf ? 0 : COSYNC_ENOMEM;
        } else if (n < 0) {
            rc = (int)n;
        }
    }
    cosync__mem_free(NULL, x.buf);
    if (sent)
        *sent = done;
    return rc;
}
