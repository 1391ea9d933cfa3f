/*
 * cosync/tls.h - TLS on a connection, for tasks: asyncio's ssl= of
 * open_connection and start_server, and StreamWriter.start_tls, with
 * OpenSSL doing the cryptography.
 *
 * Optional: built as the library cosync_tls when OpenSSL's development
 * files are found (Debian: libssl-dev). Include <cosync.h> first; link
 * cosync_tls and OpenSSL's libssl and libcrypto. docs/io.md ("TLS") is
 * the guide.
 *
 * A cosync_tls runs TLS over a handle the caller owns (a connected
 * socket). The program's SSL_CTX is asyncio's ssl.SSLContext: it holds the
 * certificates, the trusted roots and the verification mode, and
 * cosync_tls_init makes the connection's SSL object from it. As asyncio's
 * SSL protocol does, OpenSSL works on memory buffers and the calls here
 * move the bytes between them and the socket, waiting on the handle as
 * the socket calls do. So nothing is lost to a cancel or a deadline: a
 * read that ends so has taken no data (what came stays for the next
 * read), and a write counts in *written every byte it gave to TLS, whose
 * records the next write or shutdown sends (a write of 0 bytes is
 * writer.drain()).
 *
 * One task reads and one task writes at a time, as on a socket; the
 * handshake takes both sides, the shutdown the writing one. Renegotiation
 * (TLS 1.2) is refused, so a write never has to read, and a read never
 * waits to write: what it makes (an alert, the refusal) is sent as far as
 * the socket takes it at once, unless a write is sending.
 * Not thread-safe: a connection's calls come from tasks of one loop.
 */
#ifndef COSYNC_TLS_H
#define COSYNC_TLS_H

#ifndef COSYNC_H
#error "include <cosync.h> before <cosync/tls.h>"
#endif

#include <openssl/ssl.h>

#ifdef __cplusplus
extern "C" {
#endif

/** TLS on a connection, embedded by the caller. Fields are private.
 * Zeroed memory is a record not in use. */
typedef struct cosync_tls {
    /* private */
    SSL *ssl;
    BIO *in;  /* bytes from the peer, for OpenSSL to read */
    BIO *out; /* bytes OpenSSL wrote, for the peer */
    cosync_io *io;
    char *stage;          /* where the socket's bytes land before they go into @in */
    unsigned long reason; /* OpenSSL's error of the failure, 0 if none */
    int failed;           /* the failure's code: every call returns it from then on */
    bool handshaken;
    bool reading;
    bool writing;
} cosync_tls;

/** The side of the connection, for cosync_tls_init. */
enum {
    COSYNC_TLS_CLIENT = 0, /* the side that connected: it begins the handshake */
    COSYNC_TLS_SERVER = 1, /* the side that accepted (start_server's ssl=) */
};

/**
 * cosync_tls_init - set up TLS over @io with the settings of @ctx, for
 * cosync_tls_handshake. Nothing is sent yet.
 * @tls:  the caller's record; zeroed or destroyed (not in use).
 * @io:   an open handle of a connected stream socket (TCP, Unix-domain);
 *        it stays the caller's, and must outlive @tls.
 * @ctx:  the program's SSL_CTX (TLS_client_method or TLS_server_method,
 *        with the side's certificate and key, the trusted roots and the
 *        verification mode). @tls takes a reference: the caller may free
 *        its own at once.
 * @side: COSYNC_TLS_CLIENT or COSYNC_TLS_SERVER.
 * @server_hostname: the client's name of the server (asyncio's
 *        server_hostname): sent as SNI and, if @ctx verifies the peer,
 *        checked against the certificate; an IP address is checked
 *        against the certificate's addresses and not sent. NULL for none
 *        (and always for a server).
 * Returns 0; COSYNC_EINVAL if @tls, @io or @ctx is NULL, @side is
 * neither, @tls is in use, a server is given a name, or @io is not a
 * stream socket; COSYNC_EBADF if
 * @io is closed; COSYNC_ETLS if OpenSSL refuses the name or cannot make
 * the connection's objects (cosync_tls_error says why); COSYNC_ENOMEM.
 * On an error nothing is left allocated and @tls is not in use.
 * Not a suspension point.
 */
int cosync_tls_init(cosync_tls *tls, cosync_io *io, SSL_CTX *ctx, int side,
                    const char *server_hostname);

/**
 * cosync_tls_handshake - run the TLS handshake (the client's begins it).
 * A cancel or a deadline stops it where it is: what has come stays, and a
 * further call goes on from there (asyncio would drop the connection;
 * close the handle to do that).
 * @deadline: absolute time on the loop's clock (asyncio's
 *        ssl_handshake_timeout), COSYNC_FOREVER, or 0 (only what can be
 *        done without waiting).
 * Returns 0 once the handshake is done (again 0 if it was); COSYNC_ECERT
 * if this side rejected the peer's certificate (SSL_get_verify_result on
 * cosync_tls_ssl says why); COSYNC_ETLS if the handshake failed otherwise,
 * the peer's alert included (a peer that rejected this side's
 * certificate); COSYNC_ECONNRESET if the connection ended in the middle;
 * COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT; COSYNC_ECANCELED;
 * COSYNC_EBUSY if another task is inside a call of @tls; COSYNC_EINVAL if
 * @tls is not in use; the handle's errors (COSYNC_EPIPE, ...). After
 * COSYNC_ECERT, COSYNC_ETLS, or an error of the connection itself
 * (COSYNC_ECONNRESET, COSYNC_EPIPE, COSYNC_EBADF, ...: any but a cancel, a
 * deadline, COSYNC_EAGAIN or a misuse), every call of @tls but the destroy
 * returns that code again, whichever call met it.
 * Suspension point (unless the handshake needs no wait). Not thread-safe.
 */
int cosync_tls_handshake(cosync_tls *tls, int64_t deadline);

/**
 * cosync_tls_read - read up to @len bytes of data (reader.read(n)),
 * waiting until some come.
 * Returns the count read (0 for @len 0, and once the peer has closed
 * TLS with its close_notify); COSYNC_ECONNRESET if the connection ended
 * without a close_notify (the data may have been cut short; an SSL_CTX
 * with SSL_OP_IGNORE_UNEXPECTED_EOF makes that an end too, returning 0);
 * COSYNC_ETLS; COSYNC_ENOTCONN before the handshake is done;
 * COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT; COSYNC_ECANCELED (no
 * data taken); COSYNC_EBUSY if another task is reading @tls (or is in its
 * handshake); COSYNC_EINVAL if @tls is not in use or @buf is
 * NULL; the handle's errors.
 * Suspension point (unless data or the end is there). Not thread-safe.
 */
ssize_t cosync_tls_read(cosync_tls *tls, void *buf, size_t len, int64_t deadline);

/**
 * cosync_tls_write - write all @len bytes (writer.write(data) and
 * await writer.drain()), in records of at most 16 KiB.
 * @written: receives the count given to TLS, whatever the return; may be
 *        NULL. Bytes counted there are in records already made: those
 *        this call could not send yet go out first with the next write
 *        or shutdown of @tls (a write of 0 bytes sends just them, as
 *        writer.drain()), and a read sends what the socket takes of them
 *        at once. So a program that goes on after a deadline or a cancel
 *        writes from @buf + *@written, and the peer receives every byte
 *        once, in order.
 * Returns 0 once all are written and sent (for @len 0: once what earlier
 * writes left is sent); COSYNC_ENOTCONN before the
 * handshake is done, or after this side's shutdown; COSYNC_EAGAIN
 * (deadline 0) / COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_EBUSY if
 * another task is writing @tls (or is in its handshake or shutdown);
 * COSYNC_EINVAL if @tls is not in use, or @buf is NULL with @len not 0;
 * COSYNC_ETLS; the handle's errors (COSYNC_EPIPE, COSYNC_ECONNRESET).
 * Suspension point (unless all can be sent at once). Not thread-safe.
 */
int cosync_tls_write(cosync_tls *tls, const void *buf, size_t len, size_t *written,
                     int64_t deadline);

/**
 * cosync_tls_shutdown - end this side of TLS: send what earlier writes
 * left, then a close_notify (the peer's reads then return 0). Writes are
 * refused after it; reads go on until the peer's close_notify. The handle
 * stays open (close it afterwards). A cancel or deadline in the middle
 * leaves the rest for a further call.
 * Returns 0 once the close_notify is sent (again 0 if it was);
 * COSYNC_ENOTCONN before the handshake is done; COSYNC_EBUSY if another
 * task is writing @tls or is in its handshake; as cosync_tls_write
 * otherwise.
 * Suspension point (unless it can be sent at once). Not thread-safe.
 */
int cosync_tls_shutdown(cosync_tls *tls, int64_t deadline);

/**
 * cosync_tls_destroy - free what @tls holds (the SSL object and its
 * buffers; unsent records are dropped). The handle stays open and the
 * caller's. A destroyed record may be set up again.
 * Returns 0; COSYNC_EINVAL if @tls is NULL; COSYNC_EBUSY (nothing
 * changes) while a task is inside a call of @tls.
 * Not a suspension point.
 */
int cosync_tls_destroy(cosync_tls *tls);

/**
 * cosync_tls_ssl - the connection's SSL object, to ask OpenSSL about it
 * (writer.get_extra_info("ssl_object")): the peer's certificate
 * (SSL_get0_peer_certificate), the version, the cipher, the ALPN
 * protocol, SSL_get_verify_result. It stays @tls's: do not read, write,
 * free or reconfigure it.
 * Returns NULL if @tls is NULL or not in use.
 * Not a suspension point.
 */
SSL *cosync_tls_ssl(const cosync_tls *tls);

/**
 * cosync_tls_error - OpenSSL's error code (ERR_get_error's packed form:
 * ERR_error_string_n, ERR_GET_REASON) of the failure that made a call of
 * @tls return COSYNC_ETLS or COSYNC_ECERT; 0 if there was none, or none
 * was given.
 * Not a suspension point.
 */
unsigned long cosync_tls_error(const cosync_tls *tls);

/**
 * cosync_tls_connect_host - connect to @host's @port and run TLS's
 * handshake there, checking the server's certificate against @host
 * (asyncio.open_connection(host, port, ssl=ctx)): cosync_tcp_connect_host,
 * cosync_tls_init with @host as the server's name, and
 * cosync_tls_handshake, with one @deadline for all.
 * @tls:  the caller's record, zeroed or destroyed.
 * @io:   receives the connection's handle.
 * @ctx:  the client's SSL_CTX (as cosync_tls_init's).
 * Returns 0: @io is open and @tls in use, both the caller's
 * (cosync_tls_shutdown, cosync_tls_destroy, then cosync_io_close). On
 * any error nothing is left open or in use: cosync_tcp_connect_host's
 * errors, cosync_tls_init's and cosync_tls_handshake's (COSYNC_ECERT,
 * COSYNC_ETLS, COSYNC_ETIMEDOUT, COSYNC_ECANCELED...); COSYNC_EINVAL for
 * a NULL argument or @tls in use.
 * Suspension point. Not thread-safe.
 */
int cosync_tls_connect_host(cosync_tls *tls, cosync_io *io, SSL_CTX *ctx, const char *host,
                            uint16_t port, int64_t deadline);

/** A handler of a TLS server: cosync_conn_fn with the connection's TLS,
 * its handshake done. It may read and write through @tls (or a stream
 * over it), and must not destroy it. */
typedef int (*cosync_tls_conn_fn)(cosync_tls *tls, const cosync_addr *peer, void *arg);

/** What cosync_tls_serve serves with, embedded by the caller; it must stay
 * in place while the server is served. */
typedef struct cosync_tls_server {
    SSL_CTX *ctx;               /* the server's SSL_CTX: its certificate and key */
    cosync_tls_conn_fn handler; /* run for each connection, after its handshake */
    void *arg;                  /* @handler's last argument */
    int64_t handshake_timeout;  /* asyncio's ssl_handshake_timeout; 0: 60 s */
    int64_t shutdown_timeout;   /* asyncio's ssl_shutdown_timeout; 0: 30 s */
} cosync_tls_server;

/**
 * cosync_tls_serve - cosync_server_serve with TLS on each connection
 * (asyncio.start_server(..., ssl=ctx) and serve_forever()): each
 * connection's task sets TLS up with @ts->ctx, runs the handshake within
 * @ts->handshake_timeout, and then calls @ts->handler. When the handler
 * returns, a close_notify is sent (within @ts->shutdown_timeout; a
 * failure there is not the handler's) and the server closes the
 * connection. A connection whose set-up or handshake fails is closed
 * without calling the handler, and counts as failed in the server's
 * stats (asyncio logs it), with the handshake's code as its task's
 * status (COSYNC_ETLS, COSYNC_ECERT for a client certificate rejected,
 * COSYNC_ETIMEDOUT...).
 * @ts: the settings; NULL, or a NULL ctx or handler, is COSYNC_EINVAL.
 * Returns as cosync_server_serve.
 * Suspension point. Not thread-safe.
 */
int cosync_tls_serve(cosync_server *srv, const cosync_tls_server *ts, const cosync_task_opts *opts,
                     int64_t deadline);

/**
 * cosync_tls_stream_init - a stream over @tls (cosync_stream_init_ops):
 * asyncio's StreamReader and StreamWriter of an ssl= connection. Its reads
 * and writes are cosync_tls_read and cosync_tls_write. Destroying the
 * stream leaves @tls as it is.
 * Returns 0; COSYNC_EINVAL if an argument is NULL or @tls is not in use;
 * COSYNC_ENOMEM.
 * Not a suspension point.
 */
int cosync_tls_stream_init(cosync_stream *s, cosync_tls *tls, size_t limit);

#ifdef __cplusplus
}
#endif

#endif /* COSYNC_TLS_H */
