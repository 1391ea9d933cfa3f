/*
 * test_tls.c - TLS over a handle (cosync_tls_*, the optional library
 * cosync_tls): asyncio's ssl= of open_connection and start_server, and
 * StreamWriter.start_tls, with OpenSSL doing the cryptography.
 *
 * Each case runs a client and a server in one loop on the virtual clock,
 * on the two ends of a Unix-domain socketpair: what one side sends is in
 * the other's queue when the send returns, so the outcomes of deadlines
 * and try forms are certain. Three cases run over loopback TCP
 * (127.0.0.1, port 0), where deadlines go only to waits meant to time
 * out. No case sleeps for real or asserts timing; deadlines are checked
 * against the virtual clock exactly.
 *
 * The certificates are made at the start with OpenSSL's API (no files, no
 * openssl command): an EC P-256 key and a self-signed certificate for
 * "localhost" and 127.0.0.1, which the clients trust, and an unrelated
 * one (the same subjectAltName, another key and CN) that nobody trusts.
 *
 * The property most cases turn around: nothing is lost to a cancel or a
 * deadline. A read that ends so has taken no data (a record cut in two
 * waits for its rest), and a write counts in *written the bytes it gave to
 * TLS, whose records go out with the next call: the peer receives every
 * byte once, in order.
 *
 * Tasks run on the default stacks (64 KiB), OpenSSL's calls on them. Each
 * case checks that every task was collected, no timer is left, and no
 * descriptor and no block of the library stays behind.
 *
 * White-box (fault.h): the fault injection of the library's allocations
 * (cosync_tls_init's, cosync_tls_stream_init's), and the count of its
 * blocks. OpenSSL's own allocations go through this file's allocator
 * (CRYPTO_set_mem_functions, before OpenSSL's first), which fails each in
 * turn and counts the blocks OpenSSL holds.
 */
/* ctest-timeout: 120 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "harness.h"
#include <cosync/tls.h>
#include "fault.h" /* cosync__fault_countdown, cosync__fault_failures, cosync__mem_live */

#define FOREVER COSYNC_FOREVER
#define MIB ((size_t)1 << 20)
/* SO_SNDBUF and SO_RCVBUF of the cases where writes must wait for room. */
#define SMALL_BUF 4096

/* ------------------------------------------------------------------------
 * OpenSSL's allocations, failed in turn (CRYPTO_set_mem_functions, set
 * before OpenSSL's first allocation)
 * ---------------------------------------------------------------------- */

static long ossl_countdown = -1; /* allocations to let through before one fails; <0: none */
static long ossl_failed;         /* allocations failed so far */
static long ossl_live;           /* blocks OpenSSL holds */

static bool ossl_fail_now(void)
{
    if (ossl_countdown < 0 || ossl_countdown-- > 0)
        return false;
    ossl_failed++;
    return true;
}

static void *ossl_malloc(size_t n, const char *file, int line)
{
    (void)file, (void)line;
    void *p = ossl_fail_now() ? NULL : malloc(n);
    ossl_live += p != NULL;
    return p;
}

/* OpenSSL never asks it to free (n 0): CRYPTO_realloc does that itself */
static void *ossl_realloc(void *p, size_t n, const char *file, int line)
{
    (void)file, (void)line;
    void *q = ossl_fail_now() ? NULL : realloc(p, n);
    ossl_live += !p && q;
    return q;
}

static void ossl_free(void *p, const char *file, int line)
{
    (void)file, (void)line;
    ossl_live -= p != NULL;
    free(p);
}

/* ------------------------------------------------------------------------
 * Certificates and contexts, made once by main()
 * ---------------------------------------------------------------------- */

static EVP_PKEY *key1, *key2;
static X509 *cert1, *cert2;     /* self-signed: cert1 trusted by the clients, cert2 by nobody */
static SSL_CTX *server_ctx;     /* cert1 */
static SSL_CTX *stranger_ctx;   /* a server with cert2 */
static SSL_CTX *client_ctx;     /* verifies the peer, trusts cert1 */
static SSL_CTX *untrusting_ctx; /* verifies the peer, trusts nothing */
static SSL_CTX *eof_client_ctx; /* client_ctx's settings and SSL_OP_IGNORE_UNEXPECTED_EOF */

/* A self-signed certificate of @key: CN=@cn, subjectAltName DNS:localhost
 * and IP:127.0.0.1, valid for a day from now. */
static X509 *make_cert(EVP_PKEY *key, const char *cn, long serial)
{
    X509 *x = X509_new();
    CHECK_NOTNULL(x);
    CHECK_EQ(X509_set_version(x, X509_VERSION_3), 1);
    CHECK_EQ(ASN1_INTEGER_set(X509_get_serialNumber(x), serial), 1);
    CHECK_NOTNULL(X509_gmtime_adj(X509_getm_notBefore(x), 0));
    CHECK_NOTNULL(X509_gmtime_adj(X509_getm_notAfter(x), 24L * 60 * 60));
    CHECK_EQ(X509_set_pubkey(x, key), 1);
    X509_NAME *name = X509_get_subject_name(x);
    CHECK_EQ(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0),
        1);
    CHECK_EQ(X509_set_issuer_name(x, name), 1);
    X509V3_CTX v3;
    X509V3_set_ctx_nodb(&v3);
    X509V3_set_ctx(&v3, x, x, NULL, NULL, 0);
    X509_EXTENSION *san =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    CHECK_NOTNULL(san);
    CHECK_EQ(X509_add_ext(x, san, -1), 1);
    X509_EXTENSION_free(san);
    CHECK_GT(X509_sign(x, key, EVP_sha256()), 0);
    return x;
}

static SSL_CTX *make_server_ctx(X509 *cert, EVP_PKEY *key)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    CHECK_NOTNULL(ctx);
    CHECK_EQ(SSL_CTX_use_certificate(ctx, cert), 1);
    CHECK_EQ(SSL_CTX_use_PrivateKey(ctx, key), 1);
    CHECK_EQ(SSL_CTX_check_private_key(ctx), 1);
    return ctx;
}

/* A client's context that verifies the server, trusting @trusted (NULL:
 * nothing), with the extra @options. */
static SSL_CTX *make_client_ctx(X509 *trusted, uint64_t options)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    CHECK_NOTNULL(ctx);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    if (trusted)
        CHECK_EQ(X509_STORE_add_cert(SSL_CTX_get_cert_store(ctx), trusted), 1);
    if (options)
        SSL_CTX_set_options(ctx, options);
    return ctx;
}

static void make_certs_and_ctxs(void)
{
    key1 = EVP_EC_gen("P-256");
    key2 = EVP_EC_gen("P-256");
    CHECK_NOTNULL(key1);
    CHECK_NOTNULL(key2);
    cert1 = make_cert(key1, "localhost", 1);
    cert2 = make_cert(key2, "stranger", 2);
    server_ctx = make_server_ctx(cert1, key1);
    stranger_ctx = make_server_ctx(cert2, key2);
    client_ctx = make_client_ctx(cert1, 0);
    untrusting_ctx = make_client_ctx(NULL, 0);
    eof_client_ctx = make_client_ctx(cert1, SSL_OP_IGNORE_UNEXPECTED_EOF);
}

static void free_certs_and_ctxs(void)
{
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(stranger_ctx);
    SSL_CTX_free(client_ctx);
    SSL_CTX_free(untrusting_ctx);
    SSL_CTX_free(eof_client_ctx);
    X509_free(cert1);
    X509_free(cert2);
    EVP_PKEY_free(key1);
    EVP_PKEY_free(key2);
}

/* ------------------------------------------------------------------------
 * Running a case
 * ---------------------------------------------------------------------- */

/* run_main_ok(@fn, @arg) (a fresh virtual-clock loop, on default stacks:
 * main returned 0, every task was collected, no timer is left), and check
 * that no descriptor and no block of the library is left. */
static void run_tls(cosync_task_fn fn, void *arg)
{
    int fds = count_fds();
    long live = atomic_load(&cosync__mem_live);
    run_main_ok(fn, arg);
    CHECK_EQ(count_fds(), fds);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

/* ------------------------------------------------------------------------
 * Connections: a client and a server on a socketpair
 * ---------------------------------------------------------------------- */

typedef struct end {
    cosync_io io;
    cosync_tls tls;
} end;

typedef struct conn {
    end c; /* the client */
    end s; /* the server */
} conn;

/* Open the two handles of @k on a socketpair; with @bufsize, its ends'
 * socket buffers are made that small. The records are left as they are. */
static void sockets_open(conn *k, int bufsize)
{
    int sv[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    for (int i = 0; bufsize && i < 2; i++) {
        CHECK_EQ(setsockopt(sv[i], SOL_SOCKET, SO_SNDBUF, &bufsize, sizeof bufsize), 0);
        CHECK_EQ(setsockopt(sv[i], SOL_SOCKET, SO_RCVBUF, &bufsize, sizeof bufsize), 0);
    }
    CHECK_OK(cosync_io_init(&k->c.io, sv[0]));
    CHECK_OK(cosync_io_init(&k->s.io, sv[1]));
}

/* Set up TLS on both ends of @k (records not in use): the client with
 * @cctx and @hostname, the server with @sctx. */
static void tls_open(conn *k, SSL_CTX *cctx, SSL_CTX *sctx, const char *hostname)
{
    CHECK_OK(cosync_tls_init(&k->c.tls, &k->c.io, cctx, COSYNC_TLS_CLIENT, hostname));
    CHECK_OK(cosync_tls_init(&k->s.tls, &k->s.io, sctx, COSYNC_TLS_SERVER, NULL));
}

/* A fresh connection @k, TLS set up and not begun. */
static void conn_open(conn *k, SSL_CTX *cctx, SSL_CTX *sctx, const char *hostname, int bufsize)
{
    memset(k, 0, sizeof *k);
    sockets_open(k, bufsize);
    tls_open(k, cctx, sctx, hostname);
}

static void conn_close(conn *k)
{
    CHECK_OK(cosync_tls_destroy(&k->c.tls));
    CHECK_OK(cosync_tls_destroy(&k->s.tls));
    CHECK_OK(cosync_io_close(&k->c.io));
    CHECK_OK(cosync_io_close(&k->s.io));
}

/* A task: the handshake of the end @arg; its return is the status. */
static int handshake_task(void *arg, void **result)
{
    (void)result;
    end *e = arg;
    return cosync_tls_handshake(&e->tls, FOREVER);
}

/* Both handshakes of @k at once, the server's in a task, the client's
 * here; their returns go to *@crc and *@src. */
static void handshake_both(conn *k, int *crc, int *src)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, handshake_task, &k->s, NULL));
    *crc = cosync_tls_handshake(&k->c.tls, FOREVER);
    *src = join_status(t);
}

static void handshake_ok(conn *k)
{
    int crc, src;
    handshake_both(k, &crc, &src);
    CHECK_OK(crc);
    CHECK_OK(src);
}

/* conn_open and both handshakes. */
static void connect_pair(conn *k, SSL_CTX *cctx, SSL_CTX *sctx, const char *hostname, int bufsize)
{
    conn_open(k, cctx, sctx, hostname, bufsize);
    handshake_ok(k);
}

/* Read exactly @n bytes from @tls into @buf (no deadline). */
static void read_exactly(cosync_tls *tls, void *buf, size_t n)
{
    size_t got = 0;
    while (got < n) {
        ssize_t r = cosync_tls_read(tls, (char *)buf + got, n - got, FOREVER);
        CHECK_GT(r, 0);
        got += (size_t)r;
    }
}

/* Read @text's bytes from @tls and check them. */
static void expect_text(cosync_tls *tls, const char *text)
{
    char buf[256];
    size_t n = strlen(text);
    CHECK_LE(n, sizeof buf);
    read_exactly(tls, buf, n);
    CHECK_EQ(memcmp(buf, text, n), 0);
}

/* Write @text on @tls (no deadline): all of it. */
static void send_text(cosync_tls *tls, const char *text)
{
    size_t w = 12345;
    CHECK_OK(cosync_tls_write(tls, text, strlen(text), &w, FOREVER));
    CHECK_EQ(w, strlen(text));
}

/* A message each way on the handshaken @k, and nothing more after it. */
static void exchange(conn *k)
{
    char extra;
    send_text(&k->c.tls, "ping from the client");
    expect_text(&k->s.tls, "ping from the client");
    send_text(&k->s.tls, "pong from the server");
    expect_text(&k->c.tls, "pong from the server");
    CHECK_ERR(cosync_tls_read(&k->s.tls, &extra, 1, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_tls_read(&k->c.tls, &extra, 1, 0), COSYNC_EAGAIN);
}

/* Every call of @tls but the destroy returns @code (a failure's, which
 * stays). */
static void check_sticky(cosync_tls *tls, int code)
{
    char buf[8];
    size_t w = 12345;
    CHECK_ERR(cosync_tls_handshake(tls, FOREVER), code);
    CHECK_ERR(cosync_tls_handshake(tls, 0), code);
    CHECK_ERR(cosync_tls_read(tls, buf, sizeof buf, 0), code);
    CHECK_ERR(cosync_tls_write(tls, "x", 1, &w, 0), code);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_tls_shutdown(tls, 0), code);
}

/* ------------------------------------------------------------------------
 * Bulk data: a known pattern, and tasks that write and read it
 * ---------------------------------------------------------------------- */

/* The byte at @i of the pattern @seed (no period that divides a record). */
static unsigned char pattern(size_t i, unsigned seed)
{
    return (unsigned char)(i * 7 + i / 251 + i / 65537 + seed * 101);
}

/* A block of @n bytes of the pattern @seed (free() it). */
static unsigned char *pattern_buf(size_t n, unsigned seed)
{
    unsigned char *p = malloc(n);
    CHECK_NOTNULL(p);
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(i, seed);
    return p;
}

/* Check that @buf holds the first @n bytes of the pattern @seed. */
static void check_pattern(const unsigned char *buf, size_t n, unsigned seed)
{
    size_t i = 0;
    while (i < n && buf[i] == pattern(i, seed))
        i++;
    CHECK_EQ(i, n); /* the index of the first wrong byte */
}

/* A transfer by a task: @len bytes written from, or read into, @buf. */
typedef struct xfer {
    cosync_tls *tls;
    unsigned char *buf;
    size_t len;
    size_t done; /* given to TLS (a write's *written), or read so far */
    int rc;      /* the write's return */
} xfer;

/* A task: one cosync_tls_write of all @len bytes; its return is the status. */
static int writer_task(void *arg, void **result)
{
    (void)result;
    xfer *x = arg;
    x->rc = cosync_tls_write(x->tls, x->buf, x->len, &x->done, FOREVER);
    return x->rc;
}

/* A task: read exactly @len bytes, in reads of sizes that vary from 1 byte
 * to more than two records. */
static int reader_task(void *arg, void **result)
{
    (void)result;
    xfer *x = arg;
    size_t piece = 1;
    while (x->done < x->len) {
        size_t want = x->len - x->done < piece ? x->len - x->done : piece;
        ssize_t n = cosync_tls_read(x->tls, x->buf + x->done, want, FOREVER);
        CHECK_GT(n, 0);
        CHECK_LE((size_t)n, want);
        x->done += (size_t)n;
        piece = (piece * 7 + 13) % 40000 + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * The cases
 * ---------------------------------------------------------------------- */

static int echo_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    conn_open(&k, client_ctx, server_ctx, "localhost", 0);
    CHECK_EQ(cosync_tls_error(&k.c.tls), 0);
    handshake_ok(&k);

    SSL *cs = cosync_tls_ssl(&k.c.tls), *ss = cosync_tls_ssl(&k.s.tls);
    CHECK_NOTNULL(cs);
    CHECK_NOTNULL(ss);
    CHECK(cs != ss);
    CHECK(SSL_is_init_finished(cs));
    CHECK(SSL_is_init_finished(ss));
    X509 *peer = SSL_get0_peer_certificate(cs);
    CHECK_NOTNULL(peer);
    CHECK_EQ(X509_cmp(peer, cert1), 0);
    CHECK_NULL(SSL_get0_peer_certificate(ss)); /* no client certificate asked for */
    CHECK_EQ(SSL_get_verify_result(cs), X509_V_OK);
    CHECK_GE(SSL_version(cs), TLS1_2_VERSION);
    CHECK_EQ(SSL_version(cs), SSL_version(ss));
    CHECK_STREQ(SSL_get_servername(ss, TLSEXT_NAMETYPE_host_name), "localhost"); /* SNI */

    /* a message there and back */
    static const char msg[] = "hello over TLS, and back";
    send_text(&k.c.tls, msg);
    char buf[sizeof msg];
    read_exactly(&k.s.tls, buf, sizeof msg - 1);
    CHECK_EQ(memcmp(buf, msg, sizeof msg - 1), 0);
    size_t w = 12345;
    CHECK_OK(cosync_tls_write(&k.s.tls, buf, sizeof msg - 1, &w, FOREVER));
    CHECK_EQ(w, sizeof msg - 1);
    expect_text(&k.c.tls, msg);

    /* a handshake done is done: 0 again, at once */
    int64_t t0 = cosync_now();
    CHECK_OK(cosync_tls_handshake(&k.c.tls, FOREVER));
    CHECK_OK(cosync_tls_handshake(&k.s.tls, FOREVER));
    CHECK_OK(cosync_tls_handshake(&k.c.tls, 0));
    CHECK_OK(cosync_tls_handshake(&k.s.tls, 0));
    CHECK_EQ(cosync_now(), t0);
    CHECK(cosync_tls_ssl(&k.c.tls) == cs);
    CHECK_EQ(cosync_tls_error(&k.c.tls), 0);
    CHECK_EQ(cosync_tls_error(&k.s.tls), 0);
    exchange(&k);
    conn_close(&k);
    return 0;
}

/* The handshake verifies the server's certificate and name, the
 * connection's SSL object tells so, and a message goes there and back;
 * handshaking again does nothing. */
TEST(handshake_and_echo)
{
    run_tls(echo_body, NULL);
}

static int megabyte_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", 0);
    unsigned char *up = pattern_buf(MIB, 1), *down = pattern_buf(MIB, 2);
    unsigned char *got_up = malloc(MIB), *got_down = malloc(MIB);
    CHECK_NOTNULL(got_up);
    CHECK_NOTNULL(got_down);
    xfer x[4] = {
        {.tls = &k.c.tls, .buf = up, .len = MIB, .rc = 12345},   /* the client writes */
        {.tls = &k.s.tls, .buf = got_up, .len = MIB},            /* the server reads */
        {.tls = &k.s.tls, .buf = down, .len = MIB, .rc = 12345}, /* the server writes */
        {.tls = &k.c.tls, .buf = got_down, .len = MIB},          /* the client reads */
    };
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(cosync_task_spawn(&t[i], i % 2 ? reader_task : writer_task, &x[i], NULL));
    cosync_outcome out[4];
    CHECK_OK(cosync_gather(t, 4, out, FOREVER));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(out[i].status);
        CHECK_EQ(x[i].done, MIB);
    }
    CHECK_OK(x[0].rc);
    CHECK_OK(x[2].rc);
    check_pattern(got_up, MIB, 1);
    check_pattern(got_down, MIB, 2);
    exchange(&k); /* nothing more came, and the connection goes on */
    free(up);
    free(down);
    free(got_up);
    free(got_down);
    conn_close(&k);
    return 0;
}

/* Each side reads in one task and writes in another, both at once, a
 * megabyte each way: every byte arrives once, in order. */
TEST(a_megabyte_each_way_at_once)
{
    run_tls(megabyte_body, NULL);
}

/* Read a line from @s and check it is @want. */
static void expect_line(cosync_stream *s, const char *want)
{
    char line[64];
    ssize_t n = cosync_stream_readline(s, line, sizeof line, FOREVER);
    CHECK_EQ(n, (ssize_t)strlen(want));
    CHECK_EQ(memcmp(line, want, strlen(want)), 0);
}

static int lines_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static const char *const lines[] = {"one\n", "two\n", "three\n"};
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", 0);
    cosync_stream cs, ss;
    CHECK_OK(cosync_tls_stream_init(&cs, &k.c.tls, 0));
    CHECK_OK(cosync_tls_stream_init(&ss, &k.s.tls, 64));

    size_t w = 12345;
    CHECK_OK(cosync_stream_write(&cs, "one\ntwo\nthree\n", 14, &w, FOREVER));
    CHECK_EQ(w, 14);
    for (int i = 0; i < 3; i++) {
        expect_line(&ss, lines[i]);
        CHECK_OK(cosync_stream_write(&ss, lines[i], strlen(lines[i]), &w, FOREVER));
        CHECK_EQ(w, strlen(lines[i]));
    }
    for (int i = 0; i < 3; i++)
        expect_line(&cs, lines[i]);
    char line[64];
    CHECK_ERR(cosync_stream_readline(&ss, line, sizeof line, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_stream_readline(&cs, line, sizeof line, 0), COSYNC_EAGAIN);

    /* the streams go, TLS stays */
    CHECK_OK(cosync_stream_destroy(&cs));
    CHECK_OK(cosync_stream_destroy(&ss));
    CHECK_NOTNULL(cosync_tls_ssl(&k.c.tls));
    CHECK_NOTNULL(cosync_tls_ssl(&k.s.tls));
    exchange(&k);

    /* the server's close_notify is the end of a client's stream */
    CHECK_OK(cosync_tls_stream_init(&cs, &k.c.tls, 0));
    CHECK_OK(cosync_tls_shutdown(&k.s.tls, FOREVER));
    CHECK_EQ(cosync_stream_readline(&cs, line, sizeof line, FOREVER), 0);
    CHECK(cosync_stream_at_eof(&cs));
    CHECK_OK(cosync_stream_destroy(&cs));
    conn_close(&k);
    return 0;
}

/* A stream over TLS (cosync_tls_stream_init) reads lines and writes;
 * destroying it leaves TLS usable; the peer's close_notify ends it. */
TEST(lines_through_a_stream)
{
    run_tls(lines_body, NULL);
}

/* The client (@cctx, @hostname) rejects the certificate of the server
 * (@sctx): its handshake returns COSYNC_ECERT with OpenSSL's verification
 * result @verify, and from then on every call returns it. The server's
 * handshake ends with COSYNC_ETLS, the client's alert, which the library
 * sends before it returns when the socket takes it (a socketpair's does),
 * so the client's close comes after it; that stays too. */
static void rejected(SSL_CTX *cctx, SSL_CTX *sctx, const char *hostname, long verify)
{
    conn k;
    conn_open(&k, cctx, sctx, hostname, 0);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, handshake_task, &k.s, NULL));
    CHECK_ERR(cosync_tls_handshake(&k.c.tls, FOREVER), COSYNC_ECERT);
    SSL *ssl = cosync_tls_ssl(&k.c.tls);
    CHECK_NOTNULL(ssl); /* still in use, to ask why */
    CHECK_NE(SSL_get_verify_result(ssl), X509_V_OK);
    CHECK_EQ(SSL_get_verify_result(ssl), verify);
    unsigned long err = cosync_tls_error(&k.c.tls);
    CHECK_NE(err, 0);
    CHECK_EQ(ERR_GET_LIB(err), ERR_LIB_SSL);
    CHECK_EQ(ERR_GET_REASON(err), SSL_R_CERTIFICATE_VERIFY_FAILED);
    check_sticky(&k.c.tls, COSYNC_ECERT);

    CHECK_OK(cosync_io_close(&k.c.io));
    int src = join_status(t);
    CHECK_ERR(src, COSYNC_ETLS);
    CHECK_NE(cosync_tls_error(&k.s.tls), 0);
    check_sticky(&k.s.tls, src);
    check_sticky(&k.c.tls, COSYNC_ECERT); /* the handle closed changes nothing */
    CHECK_EQ(cosync_tls_error(&k.c.tls), err);
    conn_close(&k);
}

/* The client accepts the server, whose SNI is @sni (NULL: none sent). */
static void accepted(const char *hostname, const char *sni)
{
    conn k;
    connect_pair(&k, client_ctx, server_ctx, hostname, 0);
    CHECK_EQ(SSL_get_verify_result(cosync_tls_ssl(&k.c.tls)), X509_V_OK);
    CHECK_STREQ(SSL_get_servername(cosync_tls_ssl(&k.s.tls), TLSEXT_NAMETYPE_host_name), sni);
    exchange(&k);
    conn_close(&k);
}

static int rejections_body(void *arg, void **result)
{
    (void)arg, (void)result;
    /* trusting nothing, or not the server's certificate */
    rejected(untrusting_ctx, server_ctx, "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    rejected(client_ctx, stranger_ctx, "localhost", X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    rejected(client_ctx, stranger_ctx, NULL, X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT);
    /* trusted, but for another name or address */
    rejected(client_ctx, server_ctx, "example.invalid", X509_V_ERR_HOSTNAME_MISMATCH);
    rejected(client_ctx, server_ctx, "127.0.0.2", X509_V_ERR_IP_ADDRESS_MISMATCH);
    /* the certificate's name and address match; an address is not sent as SNI */
    accepted("localhost", "localhost");
    accepted("127.0.0.1", NULL);
    accepted(NULL, NULL); /* no name: the chain is checked, no name */
    return 0;
}

/* A certificate the client does not trust, or not for the name asked for,
 * is COSYNC_ECERT, which stays; the server sees the client's alert
 * (COSYNC_ETLS); a matching name or address is accepted. */
TEST(certificate_rejections)
{
    run_tls(rejections_body, NULL);
}

/* The server closes its handle without a close_notify; the client (with
 * @cctx) reads the data that came before, then @want, which stays. With
 * @reset, the server leaves unread what the client sent, which makes its
 * close a reset: the client's socket says ECONNRESET (a Unix-domain
 * socket, as TCP's RST), not the end. */
static void unexpected_eof(SSL_CTX *cctx, bool reset, int want)
{
    conn k;
    connect_pair(&k, cctx, server_ctx, "localhost", 0);
    if (reset)
        send_text(&k.c.tls, "never read");
    send_text(&k.s.tls, "last words");
    CHECK_OK(cosync_io_close(&k.s.io));
    expect_text(&k.c.tls, "last words");
    char buf[16];
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), want);
    if (want == COSYNC_ECONNRESET)
        check_sticky(&k.c.tls, COSYNC_ECONNRESET);
    else
        CHECK_EQ(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), 0);
    conn_close(&k);
}

static int close_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", 0);
    char buf[16];
    size_t w = 12345;
    /* the client's close_notify ends the server's reads, and the client's
     * writes */
    CHECK_OK(cosync_tls_shutdown(&k.c.tls, FOREVER));
    CHECK_EQ(cosync_tls_read(&k.s.tls, buf, sizeof buf, FOREVER), 0);
    CHECK_EQ(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), 0);
    CHECK_ERR(cosync_tls_write(&k.c.tls, "late", 4, &w, FOREVER), COSYNC_ENOTCONN);
    CHECK_EQ(w, 0);
    CHECK_OK(cosync_tls_shutdown(&k.c.tls, FOREVER)); /* again: done */
    CHECK_OK(cosync_tls_shutdown(&k.c.tls, 0));
    /* the other way is still open, until the server's close_notify */
    send_text(&k.s.tls, "the server's last words");
    expect_text(&k.c.tls, "the server's last words");
    CHECK_OK(cosync_tls_shutdown(&k.s.tls, FOREVER));
    CHECK_EQ(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), 0);
    CHECK_EQ(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), 0);
    CHECK_ERR(cosync_tls_write(&k.s.tls, "late", 4, &w, 0), COSYNC_ENOTCONN);
    CHECK_EQ(w, 0);
    CHECK_EQ(cosync_tls_error(&k.c.tls), 0);
    CHECK_EQ(cosync_tls_error(&k.s.tls), 0);
    conn_close(&k);

    /* an end without close_notify: a reset, or an end with
     * SSL_OP_IGNORE_UNEXPECTED_EOF in the reader's context */
    unexpected_eof(client_ctx, false, COSYNC_ECONNRESET);
    unexpected_eof(eof_client_ctx, false, 0);
    unexpected_eof(client_ctx, true, COSYNC_ECONNRESET);
    return 0;
}

/* cosync_tls_shutdown sends a close_notify (the peer reads 0, this side
 * writes no more, reads go on); an end of the connection without one is
 * COSYNC_ECONNRESET, which stays, or 0 for a context that ignores an
 * unexpected EOF; a reset (a close that left data unread) is
 * COSYNC_ECONNRESET too, and stays. */
TEST(close_notify_and_unexpected_eof)
{
    run_tls(close_body, NULL);
}

/* A task: one cosync_tls_read (no deadline) into @buf. */
typedef struct rcall {
    cosync_tls *tls;
    char buf[64];
    ssize_t n;
} rcall;

static int read_once_task(void *arg, void **result)
{
    (void)result;
    rcall *r = arg;
    r->n = cosync_tls_read(r->tls, r->buf, sizeof r->buf, FOREVER);
    return r->n < 0 ? (int)r->n : 0;
}

/* The server's reads of @k, with no whole record to read, end by a
 * deadline (at that moment exactly), a cancel and the try form. */
static void reads_that_end_early(conn *k)
{
    char buf[16];
    int64_t t0 = cosync_now();
    CHECK_ERR(cosync_tls_read(&k->s.tls, buf, sizeof buf, cosync_deadline_after(COSYNC_MS(50))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(50));

    rcall r = {.tls = &k->s.tls, .n = 12345};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, read_once_task, &r, NULL));
    CHECK_OK(cosync_yield()); /* it waits */
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(r.n, COSYNC_ECANCELED);

    CHECK_ERR(cosync_tls_read(&k->s.tls, buf, sizeof buf, 0), COSYNC_EAGAIN);
}

/* A task: move bytes from one handle to another until cancelled. */
typedef struct hop {
    cosync_io *from, *to;
} hop;

static int forward_task(void *arg, void **result)
{
    (void)result;
    hop *h = arg;
    char buf[4096];
    for (;;) {
        ssize_t n = cosync_sock_recv(h->from, buf, sizeof buf, FOREVER);
        if (n <= 0)
            return (int)n;
        int rc = cosync_sock_sendall(h->to, buf, (size_t)n, NULL, FOREVER);
        if (rc)
            return rc;
    }
}

/* A connection @k whose two handles are on two socketpairs, with the
 * handles *@rc (the client's peer) and *@rs (the server's peer) between
 * them: two tasks forward the bytes each way for the handshake, and end
 * once it is done, leaving the relay to the caller. */
static void relayed_open(conn *k, cosync_io *rc, cosync_io *rs)
{
    memset(k, 0, sizeof *k);
    int a[2], b[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, a), 0);
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, b), 0);
    CHECK_OK(cosync_io_init(&k->c.io, a[0]));
    CHECK_OK(cosync_io_init(rc, a[1]));
    CHECK_OK(cosync_io_init(rs, b[0]));
    CHECK_OK(cosync_io_init(&k->s.io, b[1]));
    tls_open(k, client_ctx, server_ctx, "localhost");
    hop up = {rc, rs}, down = {rs, rc};
    cosync_task fwd[2];
    CHECK_OK(cosync_task_spawn(&fwd[0], forward_task, &up, NULL));
    CHECK_OK(cosync_task_spawn(&fwd[1], forward_task, &down, NULL));
    handshake_ok(k);
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_task_cancel(fwd[i]));
        join_expect(fwd[i], COSYNC_ECANCELED);
    }
}

static int read_early_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", 0);
    reads_that_end_early(&k);
    send_text(&k.c.tls, "hello");
    expect_text(&k.s.tls, "hello");
    exchange(&k);
    conn_close(&k);

    /* The same with half a record come: the client's bytes go through
     * this task, which passes the record of "hello" in two parts. */
    cosync_io rc, rs;
    relayed_open(&k, &rc, &rs);
    send_text(&k.c.tls, "hello");
    unsigned char rec[256];
    ssize_t n = cosync_sock_recv(&rc, rec, sizeof rec, 0);
    CHECK_GT(n, 5); /* a record: a header, the data, its tag */
    CHECK_ERR(cosync_sock_recv(&rc, rec, sizeof rec, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_sock_sendall(&rs, rec, (size_t)n / 2, NULL, 0));
    reads_that_end_early(&k);
    CHECK_OK(cosync_sock_sendall(&rs, rec + n / 2, (size_t)(n - n / 2), NULL, 0));
    expect_text(&k.s.tls, "hello");
    CHECK_OK(cosync_io_close(&rc));
    CHECK_OK(cosync_io_close(&rs));
    conn_close(&k);
    return 0;
}

/* A record altered on the way: the reader's read is COSYNC_ETLS (OpenSSL's
 * bad record MAC), which stays, and its alert reaches the writer, whose
 * next read is COSYNC_ETLS too. */
static int corrupt_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    cosync_io rc, rs;
    relayed_open(&k, &rc, &rs);
    send_text(&k.c.tls, "a record that will not arrive as sent");
    unsigned char rec[256];
    ssize_t n = cosync_sock_recv(&rc, rec, sizeof rec, 0);
    CHECK_GT(n, 20);
    rec[n - 3] ^= 0x40; /* in the tag */
    CHECK_OK(cosync_sock_sendall(&rs, rec, (size_t)n, NULL, 0));
    char buf[64];
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, FOREVER), COSYNC_ETLS);
    unsigned long err = cosync_tls_error(&k.s.tls);
    CHECK_EQ(ERR_GET_LIB(err), ERR_LIB_SSL);
    CHECK_EQ(ERR_GET_REASON(err), SSL_R_DECRYPTION_FAILED_OR_BAD_RECORD_MAC);
    check_sticky(&k.s.tls, COSYNC_ETLS);
    /* the server's alert, on its way to the client (behind the session
     * tickets the server sent after the handshake, if the relay had not
     * passed them on yet) */
    unsigned char back[4096];
    size_t len = 0;
    while ((n = cosync_sock_recv(&rs, back + len, sizeof back - len, 0)) > 0)
        len += (size_t)n;
    CHECK_ERR(n, COSYNC_EAGAIN);
    CHECK_GT(len, 0);
    CHECK_OK(cosync_sock_sendall(&rc, back, len, NULL, 0));
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), COSYNC_ETLS);
    CHECK_EQ(ERR_GET_REASON(cosync_tls_error(&k.c.tls)), SSL_R_SSLV3_ALERT_BAD_RECORD_MAC);
    CHECK_OK(cosync_io_close(&rc));
    CHECK_OK(cosync_io_close(&rs));
    conn_close(&k);
    return 0;
}

TEST(an_altered_record_fails_the_read_and_the_peer_hears_it)
{
    run_tls(corrupt_body, NULL);
}

/* A read ended by its deadline (at that moment exactly), by a cancel or by
 * the try form takes nothing: the data sent afterwards comes whole, and so
 * does a record of which half had come. */
TEST(read_deadline_and_cancel_lose_nothing)
{
    run_tls(read_early_body, NULL);
}

enum { SERVER_TIMES_OUT, CLIENT_TIMES_OUT, CLIENT_CANCELLED };

static int handshake_resume_body(void *arg, void **result)
{
    (void)result;
    int how = (int)(intptr_t)arg;
    conn k;
    conn_open(&k, client_ctx, server_ctx, "localhost", 0);
    end *first = how == SERVER_TIMES_OUT ? &k.s : &k.c;
    end *other = first == &k.s ? &k.c : &k.s;
    if (how == CLIENT_CANCELLED) {
        cosync_task t;
        CHECK_OK(cosync_task_spawn(&t, handshake_task, first, NULL));
        CHECK_OK(cosync_yield()); /* it sends its hello and waits */
        CHECK(!cosync_task_done(t));
        CHECK_OK(cosync_task_cancel(t));
        join_expect(t, COSYNC_ECANCELED);
    } else {
        /* the other side has not begun */
        int64_t t0 = cosync_now();
        CHECK_ERR(cosync_tls_handshake(&first->tls, cosync_deadline_after(COSYNC_MS(50))),
                  COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), t0 + COSYNC_MS(50));
    }
    /* not done yet */
    char buf[8];
    size_t w = 12345;
    CHECK_ERR(cosync_tls_read(&first->tls, buf, sizeof buf, 0), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_tls_write(&first->tls, "x", 1, &w, 0), COSYNC_ENOTCONN);
    CHECK_EQ(w, 0);
    CHECK_EQ(cosync_tls_error(&first->tls), 0);

    /* the other side begins, and the first goes on from where it was */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, handshake_task, other, NULL));
    CHECK_OK(cosync_tls_handshake(&first->tls, FOREVER));
    join_ok(t);
    CHECK_EQ(X509_cmp(SSL_get0_peer_certificate(cosync_tls_ssl(&k.c.tls)), cert1), 0);
    exchange(&k);
    conn_close(&k);
    return 0;
}

/* A handshake ended by its deadline (at that moment exactly) or by a
 * cancel, the peer silent, goes on when called again once the peer
 * begins; data flows afterwards. */
TEST(handshake_deadline_then_resumes)
{
    run_tls(handshake_resume_body, (void *)(intptr_t)SERVER_TIMES_OUT);
    run_tls(handshake_resume_body, (void *)(intptr_t)CLIENT_TIMES_OUT);
    run_tls(handshake_resume_body, (void *)(intptr_t)CLIENT_CANCELLED);
}

static int cut_short_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    /* the client goes before its hello: the server's handshake sees the
     * connection end in the middle */
    conn_open(&k, client_ctx, server_ctx, "localhost", 0);
    CHECK_OK(cosync_io_close(&k.c.io));
    CHECK_ERR(cosync_tls_handshake(&k.s.tls, FOREVER), COSYNC_ECONNRESET);
    check_sticky(&k.s.tls, COSYNC_ECONNRESET);
    conn_close(&k);

    /* the server goes before the client's hello: the hello cannot be
     * sent (the handle's error) */
    conn_open(&k, client_ctx, server_ctx, "localhost", 0);
    CHECK_OK(cosync_io_close(&k.s.io));
    CHECK_ERR(cosync_tls_handshake(&k.c.tls, FOREVER), COSYNC_EPIPE);
    check_sticky(&k.c.tls, COSYNC_EPIPE); /* an error of the connection stays */
    conn_close(&k);
    return 0;
}

/* A handshake whose connection ends in the middle is COSYNC_ECONNRESET;
 * one whose hello cannot be sent has the handle's error (COSYNC_EPIPE);
 * either stays. */
TEST(a_handshake_cut_short)
{
    run_tls(cut_short_body, NULL);
}

enum { BY_DEADLINE, BY_TRY, BY_CANCEL };
#define BIG (4 * MIB)

static int write_stop_body(void *arg, void **result)
{
    (void)result;
    int how = (int)(intptr_t)arg;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", SMALL_BUF);
    unsigned char *data = pattern_buf(BIG, 3), *got = malloc(BIG);
    CHECK_NOTNULL(got);

    /* nobody reads: the write fills the socket and stops */
    size_t written = 12345;
    int64_t t0 = cosync_now();
    if (how == BY_DEADLINE) {
        CHECK_ERR(
            cosync_tls_write(&k.c.tls, data, BIG, &written, cosync_deadline_after(COSYNC_MS(10))),
            COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_now(), t0 + COSYNC_MS(10));
    } else if (how == BY_TRY) {
        CHECK_ERR(cosync_tls_write(&k.c.tls, data, BIG, &written, 0), COSYNC_EAGAIN);
        CHECK_EQ(cosync_now(), t0);
    } else {
        xfer x = {.tls = &k.c.tls, .buf = data, .len = BIG, .rc = 12345};
        cosync_task t;
        CHECK_OK(cosync_task_spawn(&t, writer_task, &x, NULL));
        CHECK_OK(cosync_sleep(COSYNC_MS(10))); /* it fills the socket and waits */
        CHECK(!cosync_task_done(t));
        CHECK_OK(cosync_task_cancel(t));
        join_expect(t, COSYNC_ECANCELED);
        CHECK_ERR(x.rc, COSYNC_ECANCELED);
        written = x.done;
    }
    CHECK_GT(written, 0);
    CHECK_LT(written, BIG);

    /* the rest, from data + written, while the server reads: exactly the
     * 4 MiB come, in order */
    xfer r = {.tls = &k.s.tls, .buf = got, .len = BIG};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, reader_task, &r, NULL));
    size_t rest = 12345;
    CHECK_OK(cosync_tls_write(&k.c.tls, data + written, BIG - written, &rest, FOREVER));
    CHECK_EQ(rest, BIG - written);
    join_ok(t);
    CHECK_EQ(r.done, BIG);
    check_pattern(got, BIG, 3);
    exchange(&k); /* and no byte more */
    free(data);
    free(got);
    conn_close(&k);
    return 0;
}

/* A write ended by its deadline, the try form or a cancel counts in
 * *written what it gave to TLS; going on from there, the peer gets every
 * byte once, in order. */
TEST(write_deadline_counts_what_went_to_tls)
{
    run_tls(write_stop_body, (void *)(intptr_t)BY_DEADLINE);
    run_tls(write_stop_body, (void *)(intptr_t)BY_TRY);
    run_tls(write_stop_body, (void *)(intptr_t)BY_CANCEL);
}

/* The bytes in @io's socket, not read yet. */
static int unread(cosync_io *io)
{
    int n = -1;
    CHECK_EQ(ioctl(cosync_io_fd(io), FIONREAD, &n), 0);
    return n;
}

/* Read from @tls into @buf (at most @cap bytes) what can be read without
 * waiting; the count. */
static size_t drain_now(cosync_tls *tls, unsigned char *buf, size_t cap)
{
    size_t got = 0;
    ssize_t n;
    while (got < cap && (n = cosync_tls_read(tls, buf + got, cap - got, 0)) > 0)
        got += (size_t)n;
    CHECK_LT(got, cap); /* the rest is still with the client */
    CHECK_ERR(cosync_tls_read(tls, buf + got, cap - got, 0), COSYNC_EAGAIN);
    return got;
}

/* A request cut short by its deadline, then drained with a write of 0
 * bytes while the server reads it; the client then only reads, and the
 * server's answer, sent once the whole request is in, comes. */
static int drain_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", SMALL_BUF);
    const size_t len = 256 * 1024;
    unsigned char *data = pattern_buf(len, 5), *got = malloc(len);
    CHECK_NOTNULL(got);
    size_t written = 12345;
    CHECK_ERR(cosync_tls_write(&k.c.tls, data, len, &written, cosync_deadline_after(COSYNC_MS(10))),
              COSYNC_ETIMEDOUT);
    CHECK_GT(written, 0);
    CHECK_LT(written, len);

    /* a read sends what the socket takes at once: the server, having taken
     * all that came (records cut in two wait in its TLS), finds more
     * bytes after the client's try of a read */
    size_t before = drain_now(&k.s.tls, got, written);
    CHECK_EQ(unread(&k.s.io), 0);
    char c;
    CHECK_ERR(cosync_tls_read(&k.c.tls, &c, 1, 0), COSYNC_EAGAIN);
    CHECK_GT(unread(&k.s.io), 0);

    /* the program sends no more of it: the request is what went to TLS */
    xfer r = {.tls = &k.s.tls, .buf = got + before, .len = written - before};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, reader_task, &r, NULL));
    size_t none = 12345;
    CHECK_OK(cosync_tls_write(&k.c.tls, NULL, 0, &none, FOREVER)); /* writer.drain() */
    CHECK_EQ(none, 0);
    join_ok(t);
    CHECK_EQ(r.done, written - before);
    check_pattern(got, written, 5);
    send_text(&k.s.tls, "whole");
    expect_text(&k.c.tls, "whole");
    exchange(&k); /* and no byte more either way */
    free(data);
    free(got);
    conn_close(&k);
    return 0;
}

/* Records a write left go out with a write of 0 bytes (writer.drain()),
 * and a read sends what the socket takes of them at once. */
TEST(a_write_of_nothing_drains_what_a_cut_write_left)
{
    run_tls(drain_body, NULL);
}

static int try_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    conn_open(&k, client_ctx, server_ctx, "localhost", 0);
    int64_t t0 = cosync_now();
    /* each step of the handshake that can be made without a wait */
    CHECK_ERR(cosync_tls_handshake(&k.c.tls, 0), COSYNC_EAGAIN); /* its hello sent */
    CHECK_ERR(cosync_tls_handshake(&k.s.tls, 0), COSYNC_EAGAIN); /* its answer sent */
    CHECK_OK(cosync_tls_handshake(&k.c.tls, 0));                 /* its finish sent */
    CHECK_OK(cosync_tls_handshake(&k.s.tls, 0));
    CHECK_EQ(cosync_now(), t0);

    char buf[16];
    size_t w = 12345;
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_tls_write(&k.c.tls, "abc", 3, &w, 0));
    CHECK_EQ(w, 3);
    CHECK_EQ(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), 3);
    CHECK_EQ(memcmp(buf, "abc", 3), 0);
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_tls_shutdown(&k.c.tls, 0));
    CHECK_EQ(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), 0);
    CHECK_EQ(cosync_now(), t0);
    conn_close(&k);
    return 0;
}

/* Deadline 0: what can be done without a wait, else COSYNC_EAGAIN; the
 * handshake goes step by step. */
TEST(try_forms)
{
    run_tls(try_body, NULL);
}

enum { READING = 1, WRITING = 2 };

/* While another task is inside a call of @tls that holds its reading side,
 * its writing side or both (@held: READING, WRITING), every call that
 * needs a side held is COSYNC_EBUSY, and so is the destroy (which changes
 * nothing). */
static void check_busy(cosync_tls *tls, int held)
{
    char buf[8];
    size_t w = 12345;
    if (held & READING) {
        CHECK_ERR(cosync_tls_read(tls, buf, sizeof buf, 0), COSYNC_EBUSY);
        CHECK_ERR(cosync_tls_read(tls, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
    }
    if (held & WRITING) {
        CHECK_ERR(cosync_tls_write(tls, "x", 1, &w, 0), COSYNC_EBUSY);
        CHECK_EQ(w, 0);
        w = 12345;
        CHECK_ERR(cosync_tls_write(tls, "x", 1, &w, FOREVER), COSYNC_EBUSY);
        CHECK_EQ(w, 0);
        CHECK_ERR(cosync_tls_shutdown(tls, FOREVER), COSYNC_EBUSY);
    }
    CHECK_ERR(cosync_tls_handshake(tls, FOREVER), COSYNC_EBUSY); /* takes both */
    CHECK_ERR(cosync_tls_handshake(tls, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_tls_destroy(tls), COSYNC_EBUSY);
    CHECK_NOTNULL(cosync_tls_ssl(tls)); /* the destroy changed nothing */
}

static int one_each_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    conn_open(&k, client_ctx, server_ctx, "localhost", SMALL_BUF);
    char buf[8];

    /* a task in the client's handshake holds both sides */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, handshake_task, &k.c, NULL));
    CHECK_OK(cosync_yield()); /* its hello sent, it waits */
    CHECK(!cosync_task_done(t));
    check_busy(&k.c.tls, READING | WRITING);
    CHECK_OK(cosync_tls_handshake(&k.s.tls, FOREVER));
    join_ok(t);

    /* a task writes the client and waits for room: a second writer, a
     * shutdown, a handshake are refused; a reader is not */
    unsigned char *data = pattern_buf(MIB, 4), *got = malloc(MIB);
    CHECK_NOTNULL(got);
    xfer x = {.tls = &k.c.tls, .buf = data, .len = MIB, .rc = 12345};
    CHECK_OK(cosync_task_spawn(&t, writer_task, &x, NULL));
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(t));
    check_busy(&k.c.tls, WRITING);
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, 0), COSYNC_EAGAIN);
    read_exactly(&k.s.tls, got, MIB);
    join_ok(t);
    CHECK_OK(x.rc);
    CHECK_EQ(x.done, MIB);
    check_pattern(got, MIB, 4);
    exchange(&k);

    /* a task reads the server: a second reader, a handshake are refused;
     * a write and the shutdown (the writing side) are not */
    rcall r = {.tls = &k.s.tls, .n = 12345};
    CHECK_OK(cosync_task_spawn(&t, read_once_task, &r, NULL));
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(t));
    check_busy(&k.s.tls, READING);
    send_text(&k.s.tls, "while a task reads");
    expect_text(&k.c.tls, "while a task reads");
    CHECK_OK(cosync_tls_shutdown(&k.s.tls, FOREVER));
    CHECK_EQ(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), 0);
    CHECK(!cosync_task_done(t));
    send_text(&k.c.tls, "to the reader");
    join_ok(t);
    CHECK_EQ(r.n, 13);
    CHECK_EQ(memcmp(r.buf, "to the reader", 13), 0);
    free(data);
    free(got);
    conn_close(&k);
    return 0;
}

/* One task reads and one writes at a time, the handshake takes both
 * sides, the shutdown the writing side (docs/io.md, "One reader and one
 * writer"): a call that needs a side another task holds is COSYNC_EBUSY,
 * and so is the destroy; a call on the other side goes on. */
TEST(one_reader_one_writer)
{
    run_tls(one_each_body, NULL);
}

/* A task that waits on the handle itself, under TLS: a misuse, which a
 * TLS read meets as the handle's COSYNC_EBUSY. */
static int raw_recv_task(void *arg, void **result)
{
    (void)result;
    char c;
    return (int)cosync_sock_recv(arg, &c, 1, FOREVER);
}

static int raw_reader_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    connect_pair(&k, client_ctx, server_ctx, "localhost", 0);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, raw_recv_task, &k.s.io, NULL));
    CHECK_OK(cosync_yield()); /* it waits on the handle */
    char buf[16];
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, FOREVER), COSYNC_EBUSY);
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    /* nothing of the connection was broken */
    exchange(&k);
    conn_close(&k);
    return 0;
}

/* The handle's COSYNC_EBUSY (another task waits on it) ends a TLS call and
 * leaves the connection as it was. */
TEST(a_task_on_the_handle_itself_is_ebusy_for_tls_and_breaks_nothing)
{
    run_tls(raw_reader_body, NULL);
}

/* A TLS 1.2 connection whose server may ask for a renegotiation (which
 * cosync refuses on both sides by default). */
static void renegotiable_pair(conn *k, SSL_CTX **cctx, SSL_CTX **sctx, int bufsize)
{
    *cctx = make_client_ctx(cert1, 0);
    *sctx = make_server_ctx(cert1, key1);
    CHECK_EQ(SSL_CTX_set_max_proto_version(*cctx, TLS1_2_VERSION), 1);
    CHECK_EQ(SSL_CTX_set_max_proto_version(*sctx, TLS1_2_VERSION), 1);
    connect_pair(k, *cctx, *sctx, "localhost", bufsize);
    CHECK_EQ(SSL_version(cosync_tls_ssl(&k->c.tls)), TLS1_2_VERSION);
    SSL *s = cosync_tls_ssl(&k->s.tls);
    CHECK_EQ(SSL_get_options(s) & SSL_OP_NO_RENEGOTIATION, SSL_OP_NO_RENEGOTIATION);
    SSL_clear_options(s, SSL_OP_NO_RENEGOTIATION);
    CHECK_EQ(SSL_renegotiate(s), 1); /* its HelloRequest goes with the next write */
}

/* TLS 1.2, where a server may ask for a new handshake: the client
 * refuses (SSL_OP_NO_RENEGOTIATION, which cosync_tls_init sets), so its
 * reads never have to write a handshake; the server, refused, fails its
 * next read with OpenSSL's reason, as OpenSSL ends a renegotiation it
 * asked for and did not get. */
static int renegotiation_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    SSL_CTX *cctx, *sctx;
    renegotiable_pair(&k, &cctx, &sctx, 0);
    send_text(&k.s.tls, "after a HelloRequest");
    expect_text(&k.c.tls, "after a HelloRequest");
    char buf[8];
    int64_t t0 = cosync_now();
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, cosync_deadline_after(COSYNC_MS(50))),
              COSYNC_ETLS);
    CHECK_EQ(cosync_now(), t0); /* the refusal was there: no wait */
    CHECK_EQ(ERR_GET_REASON(cosync_tls_error(&k.s.tls)), SSL_R_NO_RENEGOTIATION);
    conn_close(&k);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}

TEST(a_renegotiation_is_refused)
{
    run_tls(renegotiation_body, NULL);
}

/* While the client's write waits for room, its read takes a HelloRequest
 * and answers it with a refusal, which goes in behind the bytes the write
 * is sending, and out with them: the server reads the client's data whole
 * up to the refusal, then fails on the refusal itself. */
static int alert_during_write_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    SSL_CTX *cctx, *sctx;
    renegotiable_pair(&k, &cctx, &sctx, SMALL_BUF);
    const size_t len = MIB;
    unsigned char *data = pattern_buf(len, 7), *got = malloc(len);
    CHECK_NOTNULL(got);
    xfer w = {.tls = &k.c.tls, .buf = data, .len = len, .rc = 12345};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, writer_task, &w, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* the socket is full: it waits */
    CHECK(!cosync_task_done(t));
    /* room: the write sends on until the socket is full again, part of
     * the way into its bytes (the socket holds less than a record) */
    size_t n = drain_now(&k.s.tls, got, len);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK(!cosync_task_done(t));
    ssize_t r;
    send_text(&k.s.tls, "with a HelloRequest before it");
    expect_text(&k.c.tls, "with a HelloRequest before it"); /* the refusal is made */
    CHECK(!cosync_task_done(t));

    while ((r = cosync_tls_read(&k.s.tls, got + n, len - n, FOREVER)) > 0)
        n += (size_t)r;
    CHECK_ERR(r, COSYNC_ETLS);
    CHECK_EQ(ERR_GET_REASON(cosync_tls_error(&k.s.tls)), SSL_R_NO_RENEGOTIATION);
    CHECK_GT(n, 0);
    CHECK_LT(n, len);
    check_pattern(got, n, 7);
    CHECK_OK(cosync_io_close(&k.s.io)); /* the writer's end */
    join_status(t);
    CHECK(w.rc == COSYNC_EPIPE || w.rc == COSYNC_ECONNRESET);
    CHECK_OK(cosync_tls_destroy(&k.s.tls));
    CHECK_OK(cosync_tls_destroy(&k.c.tls));
    CHECK_OK(cosync_io_close(&k.c.io));
    free(data);
    free(got);
    SSL_CTX_free(cctx);
    SSL_CTX_free(sctx);
    return 0;
}

TEST(a_read_that_answers_while_a_write_waits_corrupts_nothing)
{
    run_tls(alert_during_write_body, NULL);
}

static int misuse_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    memset(&k, 0, sizeof k);
    sockets_open(&k, 0);
    cosync_tls z, t;
    memset(&z, 0, sizeof z);
    memset(&t, 0, sizeof t);
    cosync_io closed;
    memset(&closed, 0, sizeof closed);
    char buf[8];
    size_t w;

    /* cosync_tls_init's refusals: the record is left not in use */
    CHECK_ERR(cosync_tls_init(NULL, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, NULL, client_ctx, COSYNC_TLS_CLIENT, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, &k.c.io, NULL, COSYNC_TLS_CLIENT, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, &k.c.io, client_ctx, 7, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, &k.c.io, client_ctx, -1, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, &k.s.io, server_ctx, COSYNC_TLS_SERVER, "localhost"),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_init(&t, &closed, client_ctx, COSYNC_TLS_CLIENT, NULL), COSYNC_EBADF);
    /* TLS needs a stream both ways: a datagram socket is refused */
    int dg[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, dg), 0);
    cosync_io dgio;
    CHECK_OK(cosync_io_init(&dgio, dg[0]));
    CHECK_ERR(cosync_tls_init(&t, &dgio, client_ctx, COSYNC_TLS_CLIENT, NULL), COSYNC_EINVAL);
    CHECK_OK(cosync_io_close(&dgio));
    CHECK_EQ(close(dg[1]), 0);
    CHECK_NULL(cosync_tls_ssl(&t));
    CHECK_ERR(cosync_tls_handshake(&t, 0), COSYNC_EINVAL);
    /* a name OpenSSL refuses to send (SNI holds at most 255 bytes) */
    char longname[301];
    memset(longname, 'a', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    long held = ossl_live;
    CHECK_ERR(cosync_tls_init(&t, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, longname), COSYNC_ETLS);
    CHECK_EQ(ossl_live, held); /* the SSL object and its buffers went back */
    CHECK_NE(cosync_tls_error(&t), 0);
    CHECK_NULL(cosync_tls_ssl(&t));
    CHECK_ERR(cosync_tls_handshake(&t, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_tls_init(&t, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, NULL)); /* not in use */
    CHECK_OK(cosync_tls_destroy(&t));

    /* a record not in use (zeroed) */
    w = 12345;
    CHECK_ERR(cosync_tls_read(&z, buf, sizeof buf, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_write(&z, "x", 1, &w, 0), COSYNC_EINVAL);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_tls_handshake(&z, FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_shutdown(&z, FOREVER), COSYNC_EINVAL);
    CHECK_NULL(cosync_tls_ssl(&z));
    CHECK_NULL(cosync_tls_ssl(NULL));
    CHECK_EQ(cosync_tls_error(&z), 0);
    cosync_stream s;
    CHECK_ERR(cosync_tls_stream_init(&s, &z, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_destroy(NULL), COSYNC_EINVAL);
    CHECK_OK(cosync_tls_destroy(&z));

    /* records in use, before the handshake */
    tls_open(&k, client_ctx, server_ctx, "localhost");
    SSL *ssl = cosync_tls_ssl(&k.c.tls);
    CHECK_NOTNULL(ssl);
    CHECK_ERR(cosync_tls_init(&k.c.tls, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, NULL),
              COSYNC_EINVAL);
    CHECK(cosync_tls_ssl(&k.c.tls) == ssl); /* nothing changed */
    w = 12345;
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, FOREVER), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_tls_read(&k.s.tls, buf, sizeof buf, 0), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_tls_write(&k.c.tls, "x", 1, &w, FOREVER), COSYNC_ENOTCONN);
    CHECK_EQ(w, 0);
    CHECK_ERR(cosync_tls_shutdown(&k.c.tls, FOREVER), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_tls_shutdown(&k.s.tls, 0), COSYNC_ENOTCONN);
    CHECK_ERR(cosync_tls_stream_init(NULL, &k.c.tls, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_stream_init(&s, NULL, 0), COSYNC_EINVAL);

    /* after it */
    handshake_ok(&k);
    CHECK_ERR(cosync_tls_read(&k.c.tls, NULL, 5, FOREVER), COSYNC_EINVAL);
    CHECK_EQ(cosync_tls_read(&k.c.tls, buf, 0, FOREVER), 0);
    w = 12345;
    CHECK_ERR(cosync_tls_write(&k.c.tls, NULL, 5, &w, FOREVER), COSYNC_EINVAL);
    CHECK_EQ(w, 0);
    w = 12345;
    CHECK_OK(cosync_tls_write(&k.c.tls, NULL, 0, &w, FOREVER));
    CHECK_EQ(w, 0);
    CHECK_OK(cosync_tls_write(&k.c.tls, "x", 0, NULL, FOREVER));
    exchange(&k);

    /* destroyed, twice, then set up again (on a fresh pair) */
    CHECK_OK(cosync_tls_destroy(&k.c.tls));
    CHECK_OK(cosync_tls_destroy(&k.c.tls));
    CHECK_NULL(cosync_tls_ssl(&k.c.tls));
    CHECK_ERR(cosync_tls_read(&k.c.tls, buf, sizeof buf, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_stream_init(&s, &k.c.tls, 0), COSYNC_EINVAL);
    conn_close(&k);
    sockets_open(&k, 0);
    tls_open(&k, client_ctx, server_ctx, "localhost");
    handshake_ok(&k);
    exchange(&k);
    conn_close(&k);
    return 0;
}

/* Every refusal of a bad argument, a record not in use or in use, a closed
 * handle or one that is not a stream socket, a name OpenSSL will not
 * take, a handshake not done; destroying twice; setting up again. */
TEST(misuse)
{
    run_tls(misuse_body, NULL);
}

#define TCP_MSG "over real TCP"

typedef struct tcp_server {
    cosync_io listener;
    cosync_io io;
    cosync_tls tls;
} tcp_server;

/* A task: accept one connection, handshake, echo a message, read the
 * client's close_notify, answer it. */
static int tcp_server_task(void *arg, void **result)
{
    (void)result;
    tcp_server *srv = arg;
    CHECK_OK(cosync_sock_accept(&srv->listener, &srv->io, NULL, FOREVER));
    memset(&srv->tls, 0, sizeof srv->tls);
    CHECK_OK(cosync_tls_init(&srv->tls, &srv->io, server_ctx, COSYNC_TLS_SERVER, NULL));
    CHECK_OK(cosync_tls_handshake(&srv->tls, FOREVER));
    char buf[64];
    read_exactly(&srv->tls, buf, strlen(TCP_MSG));
    CHECK_EQ(memcmp(buf, TCP_MSG, strlen(TCP_MSG)), 0);
    size_t w = 12345;
    CHECK_OK(cosync_tls_write(&srv->tls, buf, strlen(TCP_MSG), &w, FOREVER));
    CHECK_EQ(w, strlen(TCP_MSG));
    CHECK_EQ(cosync_tls_read(&srv->tls, buf, sizeof buf, FOREVER), 0);
    CHECK_OK(cosync_tls_shutdown(&srv->tls, FOREVER));
    CHECK_OK(cosync_tls_destroy(&srv->tls));
    CHECK_OK(cosync_io_close(&srv->io));
    return 0;
}

static int tcp_body(void *arg, void **result)
{
    (void)arg, (void)result;
    tcp_server srv;
    memset(&srv, 0, sizeof srv);
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_sock_listen(&srv.listener, &addr, 1));
    CHECK_OK(cosync_sock_local_addr(&srv.listener, &addr));
    CHECK_GT(cosync_addr_port(&addr), 0);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, tcp_server_task, &srv, NULL));

    cosync_io io;
    cosync_tls tls;
    memset(&tls, 0, sizeof tls);
    CHECK_OK(cosync_tcp_connect(&io, &addr, FOREVER));
    CHECK_OK(cosync_tls_init(&tls, &io, client_ctx, COSYNC_TLS_CLIENT, "localhost"));
    CHECK_OK(cosync_tls_handshake(&tls, FOREVER));
    CHECK_EQ(X509_cmp(SSL_get0_peer_certificate(cosync_tls_ssl(&tls)), cert1), 0);
    send_text(&tls, TCP_MSG);
    expect_text(&tls, TCP_MSG);
    CHECK_OK(cosync_tls_shutdown(&tls, FOREVER));
    char buf[8];
    CHECK_EQ(cosync_tls_read(&tls, buf, sizeof buf, FOREVER), 0); /* the server's close_notify */
    join_ok(t);
    CHECK_OK(cosync_tls_destroy(&tls));
    CHECK_OK(cosync_io_close(&io));
    CHECK_OK(cosync_io_close(&srv.listener));
    return 0;
}

/* Over a real TCP connection on 127.0.0.1: a handshake checking the name
 * "localhost", a message there and back, both sides' close_notify. */
TEST(a_tcp_connection_on_loopback)
{
    run_tls(tcp_body, NULL);
}

/* The handler of a served connection: echo until the client's
 * close_notify. */
static int echo_handler(cosync_tls *tls, const cosync_addr *peer, void *arg)
{
    (void)peer;
    char buf[256];
    ssize_t n;
    ++*(int *)arg;
    while ((n = cosync_tls_read(tls, buf, sizeof buf, FOREVER)) > 0) {
        int rc = cosync_tls_write(tls, buf, (size_t)n, NULL, FOREVER);
        if (rc)
            return rc;
    }
    return (int)n;
}

typedef struct served {
    cosync_server srv;
    cosync_tls_server ts;
} served;

static int serve_task(void *arg, void **result)
{
    (void)result;
    served *sv = arg;
    return cosync_tls_serve(&sv->srv, &sv->ts, NULL, FOREVER);
}

static int tls_serve_body(void *arg, void **result)
{
    (void)arg, (void)result;
    int handled = 0;
    served sv = {.ts = {.ctx = server_ctx,
                        .handler = echo_handler,
                        .arg = &handled,
                        .handshake_timeout = COSYNC_SEC(5)}};
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_server_listen(&sv.srv, &addr, 0));
    CHECK_OK(cosync_server_local_addr(&sv.srv, &addr));
    uint16_t port = (uint16_t)cosync_addr_port(&addr);
    cosync_task server;
    CHECK_OK(cosync_task_spawn(&server, serve_task, &sv, NULL));

    /* open_connection(ssl=): the name checked is the host's, an address here */
    cosync_tls tls = {0};
    cosync_io io;
    CHECK_OK(cosync_tls_connect_host(&tls, &io, client_ctx, "127.0.0.1", port, FOREVER));
    send_text(&tls, "served over TLS");
    expect_text(&tls, "served over TLS");
    CHECK_OK(cosync_tls_shutdown(&tls, FOREVER));
    char buf[8];
    CHECK_EQ(cosync_tls_read(&tls, buf, sizeof buf, FOREVER),
             0); /* the server's, after its handler */
    CHECK_OK(cosync_tls_destroy(&tls));
    CHECK_OK(cosync_io_close(&io));
    CHECK_EQ(handled, 1);

    /* a client that rejects the server: nothing left open or in use; the
     * server's handshake fails (the client's alert), its handler never runs */
    CHECK_ERR(cosync_tls_connect_host(&tls, &io, untrusting_ctx, "127.0.0.1", port, FOREVER),
              COSYNC_ECERT);
    CHECK_NULL(cosync_tls_ssl(&tls));
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);

    /* the name checked is the one connected to: "127.1" reaches 127.0.0.1
     * (getaddrinfo takes inet_aton's forms), but as a name it is not the
     * certificate's */
    CHECK_ERR(cosync_tls_connect_host(&tls, &io, client_ctx, "127.1", port, FOREVER), COSYNC_ECERT);
    CHECK_NULL(cosync_tls_ssl(&tls));

    /* a client that never begins: the handshake's time runs out, on the
     * virtual clock, and the server closes the connection */
    CHECK_OK(cosync_tcp_connect(&io, &addr, FOREVER));
    int64_t t0 = cosync_now();
    CHECK_EQ(cosync_sock_recv(&io, buf, sizeof buf, FOREVER), 0);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(5));
    CHECK_OK(cosync_io_close(&io));

    CHECK_OK(cosync_server_close(&sv.srv));
    join_ok(server);
    CHECK_OK(cosync_server_wait_closed(&sv.srv, FOREVER));
    cosync_server_stats st;
    CHECK_OK(cosync_server_get_stats(&sv.srv, &st));
    CHECK_EQ(st.accepted, 4);
    CHECK_EQ(st.failed, 3); /* the rejected handshakes and the one timed out */
    CHECK_EQ(handled, 1);
    CHECK_OK(cosync_server_destroy(&sv.srv));
    return 0;
}

/* start_server(ssl=) and open_connection(ssl=): a served connection runs
 * its handshake before its handler and sends a close_notify after it; a
 * handshake that fails or runs out of time closes the connection without
 * the handler, and counts as failed. */
TEST(a_tls_server_and_its_clients)
{
    run_tls(tls_serve_body, NULL);
}

static int tls_serve_misuse_body(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_server srv;
    cosync_addr addr;
    CHECK_OK(cosync_addr_ip(&addr, "127.0.0.1", 0));
    CHECK_OK(cosync_server_listen(&srv, &addr, 0));
    CHECK_OK(cosync_server_local_addr(&srv, &addr));
    cosync_tls_server no_ctx = {.handler = echo_handler}, no_handler = {.ctx = server_ctx};
    CHECK_ERR(cosync_tls_serve(&srv, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_serve(&srv, &no_ctx, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_serve(&srv, &no_handler, NULL, 0), COSYNC_EINVAL);

    cosync_tls tls = {0}, busy = {0};
    cosync_io io, other;
    CHECK_ERR(cosync_tls_connect_host(NULL, &io, client_ctx, "127.0.0.1", 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_connect_host(&tls, NULL, client_ctx, "127.0.0.1", 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_connect_host(&tls, &io, NULL, "127.0.0.1", 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_tls_connect_host(&tls, &io, client_ctx, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_tcp_connect(&other, &addr, FOREVER));
    CHECK_OK(cosync_tls_init(&busy, &other, client_ctx, COSYNC_TLS_CLIENT, NULL));
    CHECK_ERR(cosync_tls_connect_host(&busy, &io, client_ctx, "127.0.0.1", 1, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_tls_destroy(&busy));
    CHECK_OK(cosync_io_close(&other));

    /* nobody listens: the connect's error, nothing left open */
    uint16_t port = (uint16_t)cosync_addr_port(&addr);
    CHECK_OK(cosync_server_close(&srv));
    CHECK_OK(cosync_server_destroy(&srv));
    CHECK_ERR(cosync_tls_connect_host(&tls, &io, client_ctx, "127.0.0.1", port, FOREVER),
              COSYNC_ECONNREFUSED);
    CHECK_NULL(cosync_tls_ssl(&tls));
    CHECK_ERR(cosync_io_fd(&io), COSYNC_EBADF);
    return 0;
}

/* cosync_tls_serve without its settings, and cosync_tls_connect_host
 * without its arguments or with a record in use, are refused; a refused
 * connection leaves nothing. */
TEST(tls_serve_and_connect_refuse_what_they_cannot_use)
{
    run_tls(tls_serve_misuse_body, NULL);
}

static int alloc_body(void *arg, void **result)
{
    (void)arg, (void)result;
    conn k;
    memset(&k, 0, sizeof k);
    sockets_open(&k, 0);
    long live = atomic_load(&cosync__mem_live);
    long failures = cosync__fault_failures;
    /* each of init's fault points failing in turn, until one passes them all */
    int failed = 0;
    for (;;) {
        cosync__fault_countdown = failed;
        int rc = cosync_tls_init(&k.c.tls, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, "localhost");
        cosync__fault_countdown = -1;
        if (cosync__fault_failures == failures) {
            CHECK_OK(rc);
            break;
        }
        CHECK_EQ(cosync__fault_failures, failures + 1);
        failures++;
        CHECK_ERR(rc, COSYNC_ENOMEM);
        CHECK_NULL(cosync_tls_ssl(&k.c.tls)); /* not in use */
        CHECK_ERR(cosync_tls_handshake(&k.c.tls, 0), COSYNC_EINVAL);
        CHECK_EQ(atomic_load(&cosync__mem_live), live); /* nothing left */
        CHECK_LT(++failed, 100);
    }
    CHECK_GE(failed, 1); /* the injection reached init */
    CHECK_OK(cosync_tls_init(&k.s.tls, &k.s.io, server_ctx, COSYNC_TLS_SERVER, NULL));
    handshake_ok(&k);

    /* the stream's buffer */
    cosync_stream s;
    cosync__fault_countdown = 0;
    int rc = cosync_tls_stream_init(&s, &k.c.tls, 0);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_OK(cosync_tls_stream_init(&s, &k.c.tls, 0));
    CHECK_OK(cosync_stream_destroy(&s));
    exchange(&k);
    conn_close(&k);
    return 0;
}

/* An allocation that fails in cosync_tls_init is COSYNC_ENOMEM, with
 * nothing left and the record not in use (the next init works); one in
 * cosync_tls_stream_init is COSYNC_ENOMEM too. */
TEST(allocation_failures)
{
    run_tls(alloc_body, NULL);
}

/* One side of a connection while OpenSSL's allocations fail: the
 * handshake, a message out and the other side's in, the shutdown and the
 * other side's. A side that fails closes its handle, so that the other
 * one's waits end too. */
typedef struct side {
    end *e;
    const char *out, *in;
    int rc;
} side;

/* The codes an OpenSSL allocation that fails may lead to, on this side
 * or, through the alert or the close, on the other. */
static bool allowed_failure(int rc)
{
    return rc == COSYNC_ETLS || rc == COSYNC_ECERT || rc == COSYNC_ENOMEM ||
           rc == COSYNC_ECONNRESET || rc == COSYNC_EPIPE;
}

static int side_task(void *arg, void **result)
{
    (void)result;
    side *sd = arg;
    char buf[32];
    size_t w;
    int rc = cosync_tls_handshake(&sd->e->tls, FOREVER);
    if (rc == 0)
        rc = cosync_tls_write(&sd->e->tls, sd->out, strlen(sd->out), &w, FOREVER);
    size_t got = 0, want = strlen(sd->in);
    while (rc == 0 && got < want) {
        ssize_t n = cosync_tls_read(&sd->e->tls, buf + got, want - got, FOREVER);
        if (n <= 0)
            rc = n == 0 ? COSYNC_ECONNRESET : (int)n;
        else
            got += (size_t)n;
    }
    if (rc == 0) {
        CHECK_EQ(memcmp(buf, sd->in, want), 0);
        rc = cosync_tls_shutdown(&sd->e->tls, FOREVER);
    }
    /* a shutdown that says 0 sent the close_notify: the peer's read ends
     * with 0, never with a wait for ever (which the loop would report) */
    if (rc == 0) {
        ssize_t n = cosync_tls_read(&sd->e->tls, buf, sizeof buf, FOREVER);
        rc = n > 0 ? COSYNC_EINVAL : (int)n;
    }
    if (rc != 0)
        CHECK_OK(cosync_io_close(&sd->e->io));
    sd->rc = rc;
    return 0;
}

/* Everything from the set-up to the end with OpenSSL's allocation number
 * @n failing (none if there are fewer); true if one failed. */
static bool run_with_failed_allocation(long n)
{
    conn k;
    memset(&k, 0, sizeof k);
    sockets_open(&k, 0);
    long before = ossl_failed;
    ossl_countdown = n;
    int crc = cosync_tls_init(&k.c.tls, &k.c.io, client_ctx, COSYNC_TLS_CLIENT, "localhost");
    int src = cosync_tls_init(&k.s.tls, &k.s.io, server_ctx, COSYNC_TLS_SERVER, NULL);
    if (crc == 0 && src == 0) {
        side c = {&k.c, "from the client", "from the server", 1};
        side s = {&k.s, "from the server", "from the client", 1};
        cosync_task tc, ts;
        CHECK_OK(cosync_task_spawn(&tc, side_task, &c, NULL));
        CHECK_OK(cosync_task_spawn(&ts, side_task, &s, NULL));
        join_ok(tc);
        join_ok(ts);
        crc = c.rc;
        src = s.rc;
    }
    ossl_countdown = -1;
    bool failed = ossl_failed > before;
    if (!failed) {
        CHECK_OK(crc);
        CHECK_OK(src);
    }
    CHECK(crc == 0 || allowed_failure(crc));
    CHECK(src == 0 || allowed_failure(src));
    CHECK_OK(cosync_tls_destroy(&k.c.tls));
    CHECK_OK(cosync_tls_destroy(&k.s.tls));
    CHECK_OK(cosync_io_close(&k.c.io));
    CHECK_OK(cosync_io_close(&k.s.io));
    return failed;
}

static int openssl_alloc_body(void *arg, void **result)
{
    (void)arg, (void)result;
    /* under valgrind, every 17th (each takes a whole handshake there) */
    long n = 0, step = under_valgrind() ? 17 : 1;
    while (run_with_failed_allocation(n)) {
        n += step;
        CHECK_LT(n, 20000);
    }
    CHECK_GT(n, 1000); /* a handshake's allocations, each failed in turn */
    return 0;
}

/* Each allocation OpenSSL makes for a connection, from the set-up to a
 * message each way, fails in turn: every call ends with a code (the
 * failing side's COSYNC_ETLS or COSYNC_ENOMEM; the other side's alert or
 * end), nothing crashes, and nothing of the library's or the socket's is
 * left; leaks of OpenSSL's memory show in the sanitizer and valgrind runs. */
TEST(each_openssl_allocation_failing_in_turn)
{
    run_tls(openssl_alloc_body, NULL);
}

int main(void)
{
    /* before OpenSSL allocates anything */
    CHECK_EQ(CRYPTO_set_mem_functions(ossl_malloc, ossl_realloc, ossl_free), 1);
    make_certs_and_ctxs();
    RUN(handshake_and_echo);
    RUN(a_megabyte_each_way_at_once);
    RUN(lines_through_a_stream);
    RUN(certificate_rejections);
    RUN(close_notify_and_unexpected_eof);
    RUN(read_deadline_and_cancel_lose_nothing);
    RUN(an_altered_record_fails_the_read_and_the_peer_hears_it);
    RUN(handshake_deadline_then_resumes);
    RUN(a_handshake_cut_short);
    RUN(write_deadline_counts_what_went_to_tls);
    RUN(a_write_of_nothing_drains_what_a_cut_write_left);
    RUN(try_forms);
    RUN(one_reader_one_writer);
    RUN(a_renegotiation_is_refused);
    RUN(a_read_that_answers_while_a_write_waits_corrupts_nothing);
    RUN(misuse);
    RUN(a_task_on_the_handle_itself_is_ebusy_for_tls_and_breaks_nothing);
    RUN(a_tcp_connection_on_loopback);
    RUN(a_tls_server_and_its_clients);
    RUN(tls_serve_and_connect_refuse_what_they_cannot_use);
    RUN(allocation_failures);
    RUN(each_openssl_allocation_failing_in_turn);
    free_certs_and_ctxs();
    return 0;
}
