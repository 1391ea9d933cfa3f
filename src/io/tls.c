/*
 * TLS on a connection (include/cosync/tls.h), built as cosync_tls when
 * OpenSSL is found.
 *
 * OpenSSL reads and writes two memory BIOs, as asyncio's SSL protocol has
 * ssl.SSLObject do: `in` holds what came from the peer, `out` what
 * OpenSSL made for it. So an OpenSSL call never waits and never leaves a
 * half-written record to be retried with the same arguments; the waiting
 * is here, on the handle, where a cancel or a deadline can end it between
 * two moves of bytes and lose none. A write flushes `out` before it gives
 * OpenSSL more, so `out` holds at most the records of one chunk beyond
 * what the socket has taken.
 *
 * OpenSSL's error queue belongs to the thread: each call clears it first
 * and empties it after reading its failure, so that one connection's error
 * never shows in another's.
 */
#include <arpa/inet.h>
#include <openssl/err.h>
#include <string.h>
#include <sys/socket.h>

#include "cosync.h"
#include "cosync/tls.h"
#include "fault.h"

/* What a write gives OpenSSL at once: one record's worth. */
#define CHUNK (16 * 1024)
/* What a read takes from the socket at once: a whole record and more. */
#define STAGE (17 * 1024)

static bool in_use(const cosync_tls *tls)
{
    return tls && tls->ssl;
}

/* ---- failures ------------------------------------------------------------ */

/* Keep @code, with OpenSSL's @reason, as the answer of every later call,
 * if it is the connection's first failure: after a fatal error the SSL
 * object may not be used again, and records may have been cut. */
static int keep(cosync_tls *tls, int code, unsigned long reason)
{
    if (!tls->failed) {
        tls->failed = code;
        tls->reason = reason;
    }
    return code;
}

/* A failure of OpenSSL's, kept with the reason it queued. */
static int fail(cosync_tls *tls, int code)
{
    unsigned long e = ERR_peek_last_error();
    ERR_clear_error();
    return keep(tls, code, e);
}

/* The code of an OpenSSL call that failed with @err (SSL_get_error). */
static int failure(cosync_tls *tls, int err)
{
    unsigned long e = ERR_peek_last_error();
    int reason = err == SSL_ERROR_SSL && ERR_GET_LIB(e) == ERR_LIB_SSL ? ERR_GET_REASON(e) : 0;
    if (reason == SSL_R_CERTIFICATE_VERIFY_FAILED)
        return fail(tls, COSYNC_ECERT);
    if (reason == SSL_R_UNEXPECTED_EOF_WHILE_READING)
        return fail(tls, COSYNC_ECONNRESET);
    return fail(tls, COSYNC_ETLS);
}

/* An error of the socket: one that breaks the connection (a reset, a
 * peer gone) is kept as a TLS failure is; a cancel, a deadline and a
 * misuse leave the connection as it was. */
static int broken(cosync_tls *tls, int rc)
{
    switch (rc) {
    case 0:
    case COSYNC_EAGAIN:
    case COSYNC_ETIMEDOUT:
    case COSYNC_ECANCELED:
    case COSYNC_EBUSY:
    case COSYNC_EPERM:
    case COSYNC_EINVAL:
        return rc;
    default:
        return keep(tls, rc, 0);
    }
}

/* ---- moving bytes ------------------------------------------------------- */

/* Receive once from the socket into `in`: 0, or the error (a cancel, a
 * deadline: nothing moved). The end of the socket is passed on to
 * OpenSSL, which then says whether it came after a close_notify. */
static int fill(cosync_tls *tls, int64_t deadline)
{
    ssize_t n = cosync_sock_recv(tls->io, tls->stage, STAGE, deadline);
    if (n < 0)
        return broken(tls, (int)n);
    if (n == 0) {
        BIO_set_mem_eof_return(tls->in, 0);
        return 0;
    }
    if (BIO_write(tls->in, tls->stage, (int)n) != (int)n) /* a memory BIO takes all, or fails */
        return fail(tls, COSYNC_ENOMEM);
    return 0;
}

/* Drop the first @n bytes of `out`, which the socket has taken. */
static void consume(BIO *out, size_t n)
{
    char sink[1024];
    while (n > 0) {
        int step = n < sizeof sink ? (int)n : (int)sizeof sink;
        BIO_read(out, sink, step);
        n -= (size_t)step;
    }
}

/* Send what `out` holds, waiting for room: 0 once it is empty, or the
 * error that stopped it (what was not sent stays, for the next flush).
 * The send itself never waits: while this task waits, a read may add an
 * alert to `out`, whose buffer may then move, so the bytes are looked up
 * again after each wait. */
static int flush(cosync_tls *tls, int64_t deadline)
{
    char *data;
    long left;
    while ((left = BIO_get_mem_data(tls->out, &data)) > 0) {
        ssize_t n = cosync_sock_send(tls->io, data, (size_t)left, 0); /* no SIGPIPE */
        if (n == COSYNC_EAGAIN)
            n = cosync_io_wait(tls->io, COSYNC_IO_WRITE, deadline);
        else if (n > 0)
            consume(tls->out, (size_t)n);
        if (n < 0)
            return broken(tls, (int)n);
    }
    return 0;
}

/* After a failure, try to send the alert OpenSSL made, without waiting. */
static void flush_alert(cosync_tls *tls)
{
    (void)flush(tls, 0);
}

/* ---- set-up and end -------------------------------------------------------- */

/* Tell OpenSSL the name of the server to ask for (SNI) and to check the
 * certificate against; an IP address is checked, not sent. */
static bool set_name(SSL *ssl, const char *name)
{
    unsigned char addr[16];
    if (inet_pton(AF_INET, name, addr) == 1 || inet_pton(AF_INET6, name, addr) == 1)
        return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) == 1;
    return SSL_set_tlsext_host_name(ssl, name) == 1 && SSL_set1_host(ssl, name) == 1;
}

/* Make the SSL object and its two BIOs; false if OpenSSL cannot. */
static bool make_ssl(cosync_tls *tls, SSL_CTX *ctx, int side, const char *name)
{
    tls->ssl = SSL_new(ctx);
    if (!tls->ssl)
        return false;
    tls->in = BIO_new(BIO_s_mem());
    tls->out = BIO_new(BIO_s_mem());
    if (!tls->in || !tls->out) {
        BIO_free(tls->in);
        BIO_free(tls->out);
        return false;
    }
    /* until the socket ends, an empty `in` means "wait", not "ended" */
    BIO_set_mem_eof_return(tls->in, -1);
    SSL_set_bio(tls->ssl, tls->in, tls->out); /* the SSL object owns them now */
    SSL_set_options(tls->ssl, SSL_OP_NO_RENEGOTIATION);
    if (side == COSYNC_TLS_SERVER)
        SSL_set_accept_state(tls->ssl);
    else
        SSL_set_connect_state(tls->ssl);
    return !name || set_name(tls->ssl, name);
}

/* TLS needs a stream both ways: a stream socket. 0, or the error. */
static int stream_socket(const cosync_io *io)
{
    int fd = cosync_io_fd(io);
    if (fd < 0)
        return fd;
    int type;
    socklen_t len = sizeof type;
    if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) != 0 || type != SOCK_STREAM)
        return COSYNC_EINVAL;
    return 0;
}

int cosync_tls_init(cosync_tls *tls, cosync_io *io, SSL_CTX *ctx, int side,
                    const char *server_hostname)
{
    if (!tls || !io || !ctx || in_use(tls))
        return COSYNC_EINVAL;
    if (side != COSYNC_TLS_CLIENT && side != COSYNC_TLS_SERVER)
        return COSYNC_EINVAL;
    if (side == COSYNC_TLS_SERVER && server_hostname)
        return COSYNC_EINVAL;
    int rc = stream_socket(io);
    if (rc)
        return rc;
    char *stage = cosync__mem_alloc(NULL, STAGE);
    if (!stage)
        return COSYNC_ENOMEM;
    *tls = (cosync_tls){.io = io, .stage = stage};
    ERR_clear_error();
    if (!make_ssl(tls, ctx, side, server_hostname)) {
        unsigned long reason = ERR_peek_last_error();
        ERR_clear_error();
        SSL_free(tls->ssl); /* and the BIOs it was given */
        cosync__mem_free(NULL, stage);
        *tls = (cosync_tls){.reason = reason};
        return COSYNC_ETLS;
    }
    return 0;
}

int cosync_tls_destroy(cosync_tls *tls)
{
    if (!tls)
        return COSYNC_EINVAL;
    if (tls->reading || tls->writing)
        return COSYNC_EBUSY;
    SSL_free(tls->ssl);
    cosync__mem_free(NULL, tls->stage);
    *tls = (cosync_tls){0};
    return 0;
}

SSL *cosync_tls_ssl(const cosync_tls *tls)
{
    return in_use(tls) ? tls->ssl : NULL;
}

unsigned long cosync_tls_error(const cosync_tls *tls)
{
    return tls ? tls->reason : 0;
}

/* ---- the calls ----------------------------------------------------------- */

/* The checks of every call that uses the connection: 0, or the error. */
static int may_use(const cosync_tls *tls)
{
    if (!in_use(tls))
        return COSYNC_EINVAL;
    return tls->failed;
}

static int handshake(cosync_tls *tls, int64_t deadline)
{
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(tls->ssl);
        int err = r == 1 ? SSL_ERROR_NONE : SSL_get_error(tls->ssl, r);
        if (r != 1 && err != SSL_ERROR_WANT_READ) {
            int rc = failure(tls, err);
            flush_alert(tls);
            return rc;
        }
        int rc = flush(tls, deadline); /* this side's flight, or its last */
        if (rc)
            return rc;
        if (r == 1) {
            tls->handshaken = true;
            return 0;
        }
        rc = fill(tls, deadline);
        if (rc)
            return rc;
    }
}

int cosync_tls_handshake(cosync_tls *tls, int64_t deadline)
{
    int rc = may_use(tls);
    if (rc)
        return rc;
    if (tls->reading || tls->writing)
        return COSYNC_EBUSY;
    tls->reading = tls->writing = true;
    rc = handshake(tls, deadline);
    tls->reading = tls->writing = false;
    return rc;
}

static ssize_t read_some(cosync_tls *tls, void *buf, size_t len, int64_t deadline)
{
    for (;;) {
        size_t got;
        ERR_clear_error();
        int err = SSL_read_ex(tls->ssl, buf, len, &got) == 1 ? SSL_ERROR_NONE
                                                             : SSL_get_error(tls->ssl, 0);
        int rc = 0;
        if (err != SSL_ERROR_NONE && err != SSL_ERROR_ZERO_RETURN && err != SSL_ERROR_WANT_READ)
            rc = failure(tls, err);
        /* what reading made (an alert, a refused renegotiation) and what a
         * cut write left go out now, as far as the socket takes them;
         * while a write is sending, its sending carries them on */
        if (!tls->writing)
            (void)flush(tls, 0);
        if (err == SSL_ERROR_NONE)
            return (ssize_t)got;
        if (err == SSL_ERROR_ZERO_RETURN) /* the close_notify, now or before */
            return 0;
        if (rc)
            return rc;
        rc = fill(tls, deadline);
        if (rc)
            return rc;
    }
}

ssize_t cosync_tls_read(cosync_tls *tls, void *buf, size_t len, int64_t deadline)
{
    int rc = may_use(tls);
    if (rc)
        return rc;
    if (!buf)
        return COSYNC_EINVAL;
    if (tls->reading)
        return COSYNC_EBUSY;
    if (!tls->handshaken)
        return COSYNC_ENOTCONN;
    if (len == 0)
        return 0;
    tls->reading = true;
    ssize_t n = read_some(tls, buf, len, deadline);
    tls->reading = false;
    return n;
}

/* Give OpenSSL @len bytes (at most a chunk): memory BIOs take all. */
static int seal(cosync_tls *tls, const char *data, size_t len)
{
    size_t done;
    ERR_clear_error();
    if (SSL_write_ex(tls->ssl, data, len, &done) == 1) /* all of it: no partial writes */
        return 0;
    return failure(tls, SSL_get_error(tls->ssl, 0));
}

static int write_all(cosync_tls *tls, const char *data, size_t len, size_t *written,
                     int64_t deadline)
{
    for (;;) {
        int rc = flush(tls, deadline); /* the records made before, first */
        if (rc || *written == len)
            return rc;
        if (tls->failed) /* a read failed while this write waited */
            return tls->failed;
        size_t n = len - *written < CHUNK ? len - *written : CHUNK;
        rc = seal(tls, data + *written, n);
        if (rc)
            return rc;
        *written += n;
    }
}

int cosync_tls_write(cosync_tls *tls, const void *buf, size_t len, size_t *written,
                     int64_t deadline)
{
    size_t none;
    if (!written)
        written = &none;
    *written = 0;
    int rc = may_use(tls);
    if (rc)
        return rc;
    if (!buf && len)
        return COSYNC_EINVAL;
    if (tls->writing)
        return COSYNC_EBUSY;
    if (!tls->handshaken || (SSL_get_shutdown(tls->ssl) & SSL_SENT_SHUTDOWN))
        return COSYNC_ENOTCONN;
    tls->writing = true;
    rc = write_all(tls, buf, len, written, deadline);
    tls->writing = false;
    return rc;
}

int cosync_tls_shutdown(cosync_tls *tls, int64_t deadline)
{
    int rc = may_use(tls);
    if (rc)
        return rc;
    if (tls->writing)
        return COSYNC_EBUSY;
    if (!tls->handshaken)
        return COSYNC_ENOTCONN;
    tls->writing = true;
    if (!(SSL_get_shutdown(tls->ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        /* 0 or 1: the close_notify is made (the peer's is read by reads) */
        if (SSL_shutdown(tls->ssl) < 0)
            rc = failure(tls, SSL_get_error(tls->ssl, 0));
    }
    if (rc == 0)
        rc = flush(tls, deadline);
    tls->writing = false;
    return rc;
}

/* ---- open_connection and start_server ------------------------------------- */

int cosync_tls_connect_host(cosync_tls *tls, cosync_io *io, SSL_CTX *ctx, const char *host,
                            uint16_t port, int64_t deadline)
{
    if (!tls || !io || !ctx || !host || in_use(tls))
        return COSYNC_EINVAL;
    int rc = cosync_tcp_connect_host(io, host, port, deadline);
    if (rc)
        return rc;
    rc = cosync_tls_init(tls, io, ctx, COSYNC_TLS_CLIENT, host);
    if (rc == 0) {
        rc = cosync_tls_handshake(tls, deadline);
        if (rc)
            cosync_tls_destroy(tls);
    }
    if (rc)
        cosync_io_close(io);
    return rc;
}

static int64_t after_or(int64_t timeout, int64_t otherwise)
{
    return cosync_deadline_after(timeout ? timeout : otherwise);
}

/* A connection of cosync_tls_serve: the handshake, the handler, the
 * close_notify. */
static int serve_tls(cosync_io *conn, const cosync_addr *peer, void *arg)
{
    const cosync_tls_server *ts = arg;
    cosync_tls tls = {0};
    int rc = cosync_tls_init(&tls, conn, ts->ctx, COSYNC_TLS_SERVER, NULL);
    if (rc)
        return rc;
    rc = cosync_tls_handshake(&tls, after_or(ts->handshake_timeout, COSYNC_SEC(60)));
    if (rc == 0) {
        rc = ts->handler(&tls, peer, ts->arg);
        (void)cosync_tls_shutdown(&tls, after_or(ts->shutdown_timeout, COSYNC_SEC(30)));
    }
    cosync_tls_destroy(&tls);
    return rc;
}

int cosync_tls_serve(cosync_server *srv, const cosync_tls_server *ts, const cosync_task_opts *opts,
                     int64_t deadline)
{
    if (!ts || !ts->ctx || !ts->handler)
        return COSYNC_EINVAL;
    return cosync_server_serve(srv, serve_tls, (void *)ts, opts, deadline);
}

/* ---- streams ----------------------------------------------------------------- */

static ssize_t stream_read(void *ctx, void *buf, size_t len, int64_t deadline)
{
    return cosync_tls_read(ctx, buf, len, deadline);
}

static int stream_write(void *ctx, const void *buf, size_t len, size_t *written, int64_t deadline)
{
    return cosync_tls_write(ctx, buf, len, written, deadline);
}

static const cosync_stream_ops tls_stream_ops = {stream_read, stream_write};

int cosync_tls_stream_init(cosync_stream *s, cosync_tls *tls, size_t limit)
{
    if (!s || !in_use(tls))
        return COSYNC_EINVAL;
    return cosync_stream_init_ops(s, &tls_stream_ops, tls, limit);
}
