/*
 * Streams: asyncio's StreamReader over a handle, with its buffer of a
 * fixed size (the limit). Every read first makes sure the bytes it will
 * return are all buffered, and only then takes them: a read ended by a
 * cancel, a deadline or an error has taken nothing, and the next read
 * finds what came meanwhile.
 */
#include <string.h>
#include <sys/socket.h>

#include "core.h"
#include "fault.h"

/* Make *@s @init with a buffer of @limit bytes (0: the default); @s is
 * left as it was if the buffer cannot be had. */
static int set_up(cosync_stream *s, cosync_stream init, size_t limit)
{
    if (limit == 0)
        limit = COSYNC_STREAM_LIMIT;
    char *buf = cosync__mem_alloc(NULL, limit);
    if (!buf)
        return COSYNC_ENOMEM;
    *s = init;
    s->buf = buf;
    s->cap = limit;
    return 0;
}

int cosync_stream_init(cosync_stream *s, cosync_io *io, size_t limit)
{
    if (!s || !io)
        return COSYNC_EINVAL;
    int fd = cosync_io_fd(io);
    if (fd < 0)
        return fd;
    int type;
    socklen_t len = sizeof type;
    bool socket = getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0;
    return set_up(s, (cosync_stream){.io = io, .socket = socket}, limit);
}

int cosync_stream_init_ops(cosync_stream *s, const cosync_stream_ops *ops, void *ctx, size_t limit)
{
    if (!s || !ops || !ops->read || !ops->write)
        return COSYNC_EINVAL;
    return set_up(s, (cosync_stream){.ops = ops, .ctx = ctx}, limit);
}

/* Read once from the stream's transport into @buf. */
static ssize_t transport_read(cosync_stream *s, void *buf, size_t len, int64_t deadline)
{
    if (s->ops)
        return s->ops->read(s->ctx, buf, len, deadline);
    if (s->socket)
        return cosync_sock_recv(s->io, buf, len, deadline);
    return cosync_io_read(s->io, buf, len, deadline);
}

static size_t buffered(const cosync_stream *s)
{
    return s->end - s->start;
}

/* Read once more from the handle into the buffer's free end (moving what
 * is buffered to its start first, if that makes room): the count read, 0
 * at the end of the stream, or an error. The buffer must not be full. */
static ssize_t fill(cosync_stream *s, int64_t deadline)
{
    if (s->end == s->cap) {
        memmove(s->buf, s->buf + s->start, buffered(s));
        s->end -= s->start;
        s->start = 0;
    }
    ssize_t n = transport_read(s, s->buf + s->end, s->cap - s->end, deadline);
    if (n > 0)
        s->end += (size_t)n;
    else if (n == 0)
        s->eof = true;
    return n;
}

/* Take @n buffered bytes into @out. */
static size_t take(cosync_stream *s, void *out, size_t n)
{
    if (n == 0)
        return 0;
    memcpy(out, s->buf + s->start, n);
    s->start += n;
    if (s->start == s->end)
        s->start = s->end = 0;
    return n;
}

static bool usable(const cosync_stream *s)
{
    return s && s->buf;
}

/* One task reads a stream at a time, whether it waits or not: a read that
 * completed from the buffer while another waits in fill() would move the
 * bytes under it (asyncio: "read() called while another coroutine is
 * already waiting"; trio: BusyResourceError). 0, or the error. */
static int begin_read(cosync_stream *s, const void *out)
{
    if (!usable(s) || !out)
        return COSYNC_EINVAL;
    if (s->reading)
        return COSYNC_EBUSY;
    s->reading = true;
    return 0;
}

static ssize_t end_read(cosync_stream *s, ssize_t rc)
{
    s->reading = false;
    return rc;
}

static ssize_t readuntil(cosync_stream *s, const void *sep, size_t seplen, void *out, size_t size,
                         int64_t deadline)
{
    size_t looked = 0; /* bytes known to hold no whole separator start */
    for (;;) {
        const char *from = s->buf + s->start;
        size_t have = buffered(s);
        for (size_t i = looked; i + seplen <= have; i++) {
            if (memcmp(from + i, sep, seplen) == 0) {
                size_t n = i + seplen;
                return n > size ? COSYNC_EOVERFLOW : (ssize_t)take(s, out, n);
            }
        }
        looked = have >= seplen ? have - seplen + 1 : 0;
        if (s->eof) /* what is left, without the separator */
            return have > size ? COSYNC_EOVERFLOW : (ssize_t)take(s, out, have);
        if (have == s->cap)
            return COSYNC_EOVERFLOW; /* the line does not fit the limit */
        ssize_t n = fill(s, deadline);
        if (n < 0)
            return n;
    }
}

ssize_t cosync_stream_readuntil(cosync_stream *s, const void *sep, size_t seplen, void *out,
                                size_t size, int64_t deadline)
{
    if (!sep || seplen == 0)
        return COSYNC_EINVAL;
    int rc = begin_read(s, out);
    if (rc)
        return rc;
    return end_read(s, readuntil(s, sep, seplen, out, size, deadline));
}

ssize_t cosync_stream_readline(cosync_stream *s, void *out, size_t size, int64_t deadline)
{
    return cosync_stream_readuntil(s, "\n", 1, out, size, deadline);
}

static ssize_t readexactly(cosync_stream *s, void *out, size_t n, int64_t deadline)
{
    while (buffered(s) < n && !s->eof) {
        ssize_t got = fill(s, deadline);
        if (got < 0)
            return got;
    }
    return (ssize_t)take(s, out, buffered(s) < n ? buffered(s) : n);
}

ssize_t cosync_stream_readexactly(cosync_stream *s, void *out, size_t n, int64_t deadline)
{
    int rc = begin_read(s, out);
    if (rc)
        return rc;
    return end_read(s, n > s->cap ? COSYNC_EINVAL : readexactly(s, out, n, deadline));
}

static ssize_t read_some(cosync_stream *s, void *out, size_t n, int64_t deadline)
{
    if (n == 0)
        return 0;
    if (buffered(s) == 0 && !s->eof) {
        ssize_t got = fill(s, deadline);
        if (got < 0)
            return got;
    }
    return (ssize_t)take(s, out, buffered(s) < n ? buffered(s) : n);
}

ssize_t cosync_stream_read(cosync_stream *s, void *out, size_t n, int64_t deadline)
{
    int rc = begin_read(s, out);
    if (rc)
        return rc;
    return end_read(s, read_some(s, out, n, deadline));
}

bool cosync_stream_at_eof(const cosync_stream *s)
{
    return s && s->eof && buffered(s) == 0;
}

int cosync_stream_write(cosync_stream *s, const void *data, size_t len, size_t *written,
                        int64_t deadline)
{
    if (!usable(s)) {
        if (written)
            *written = 0;
        return COSYNC_EINVAL;
    }
    if (s->ops)
        return s->ops->write(s->ctx, data, len, written, deadline);
    if (s->socket)
        return cosync_sock_sendall(s->io, data, len, written, deadline);
    return cosync_io_write_all(s->io, data, len, written, deadline);
}

int cosync_stream_destroy(cosync_stream *s)
{
    if (!s)
        return COSYNC_EINVAL;
    if (s->reading)
        return COSYNC_EBUSY;
    cosync__mem_free(NULL, s->buf);
    *s = (cosync_stream){0};
    return 0;
}
