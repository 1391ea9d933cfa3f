/*
 * io_tls_echo.c - an echo server over TLS, and clients that check the
 * server's certificate and what comes back. In asyncio:
 *
 *     async def echo(reader, writer):
 *         while line := await reader.readline():
 *             writer.write(line)
 *             await writer.drain()
 *         writer.close()
 *
 *     async def client(i):
 *         reader, writer = await asyncio.open_connection(
 *             'localhost', port, ssl=client_ctx)
 *         for line in LINES:
 *             writer.write(line)
 *             assert await reader.readline() == line
 *         writer.close()                          # close_notify
 *
 *     async def main():
 *         server = await asyncio.start_server(echo, 'localhost', 0,
 *                                             ssl=server_ctx)
 *         await asyncio.gather(*(client(i) for i in range(3)))
 *         server.close()
 *
 * The SSLContexts are OpenSSL SSL_CTXs. The server's certificate is made
 * here, self-signed, for the name localhost, and the clients' context
 * trusts it alone: a real program loads its certificate and its roots
 * from files (SSL_CTX_use_certificate_chain_file,
 * SSL_CTX_set_default_verify_paths). start_server(ssl=) is
 * cosync_tls_serve, which runs each connection's handshake before its
 * handler and sends the close_notify after it; open_connection(ssl=) is
 * cosync_tls_connect_host, which checks the certificate against the name
 * it connects to. The lines go through streams over TLS. Exits 1 unless
 * every line came back.
 */
#include <cosync.h>
#include <cosync/tls.h>

#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#define CLIENTS 3

static const char *const lines[] = {"hello\n", "over TLS\n", "goodbye\n"};
#define NLINES (sizeof lines / sizeof lines[0])

static cosync_server srv;
static SSL_CTX *server_ctx, *client_ctx;

/* ------------------------------------------------------------------------
 * The contexts (ssl.create_default_context and load_cert_chain)
 * ---------------------------------------------------------------------- */

/* A self-signed certificate for localhost, valid for a day. */
static X509 *make_certificate(EVP_PKEY *key)
{
    X509 *cert = X509_new();
    X509V3_CTX v3;
    if (!cert)
        return NULL;
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_gmtime_adj(X509_getm_notBefore(cert), 0);
    X509_gmtime_adj(X509_getm_notAfter(cert), 24 * 3600);
    X509_set_pubkey(cert, key);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"localhost", -1, -1,
                               0);
    X509_set_issuer_name(cert, name);
    X509V3_set_ctx(&v3, cert, cert, NULL, NULL, 0);
    X509_EXTENSION *san =
        X509V3_EXT_conf_nid(NULL, &v3, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
    if (!san || !X509_add_ext(cert, san, -1) || !X509_sign(cert, key, EVP_sha256())) {
        X509_EXTENSION_free(san);
        X509_free(cert);
        return NULL;
    }
    X509_EXTENSION_free(san);
    return cert;
}

static int make_contexts(void)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    X509 *cert = key ? make_certificate(key) : NULL;
    server_ctx = SSL_CTX_new(TLS_server_method());
    client_ctx = SSL_CTX_new(TLS_client_method());
    int ok = cert && server_ctx && client_ctx && SSL_CTX_use_certificate(server_ctx, cert) &&
             SSL_CTX_use_PrivateKey(server_ctx, key) &&
             X509_STORE_add_cert(SSL_CTX_get_cert_store(client_ctx), cert);
    if (ok) /* what create_default_context sets: the server must prove who it is */
        SSL_CTX_set_verify(client_ctx, SSL_VERIFY_PEER, NULL);
    X509_free(cert);
    EVP_PKEY_free(key);
    return ok ? 0 : -1;
}

/* ------------------------------------------------------------------------
 * The server
 * ---------------------------------------------------------------------- */

/* Echo each line until the client's close_notify (the handshake is done;
 * cosync_tls_serve sends this side's close_notify when it returns). */
static int echo(cosync_tls *tls, const cosync_addr *peer, void *arg)
{
    cosync_stream s;
    char line[256];
    ssize_t n;
    (void)peer, (void)arg;
    int rc = cosync_tls_stream_init(&s, tls, sizeof line);
    if (rc != 0)
        return rc;
    while ((n = cosync_stream_readline(&s, line, sizeof line, COSYNC_FOREVER)) > 0)
        if ((rc = cosync_stream_write(&s, line, (size_t)n, NULL, COSYNC_FOREVER)) != 0)
            break;
    cosync_stream_destroy(&s);
    return n < 0 ? (int)n : rc;
}

static int serve(void *arg, void **result)
{
    (void)result;
    return cosync_tls_serve(&srv, arg, NULL, COSYNC_FOREVER);
}

/* ------------------------------------------------------------------------
 * The clients
 * ---------------------------------------------------------------------- */

typedef struct client {
    int id;
    size_t echoed; /* lines that came back as sent */
    char version[16];
    int rc;
} client;

static int talk(client *c, cosync_tls *tls, int64_t deadline)
{
    cosync_stream s;
    char line[256];
    int rc = cosync_tls_stream_init(&s, tls, sizeof line);
    if (rc != 0)
        return rc;
    for (size_t i = 0; rc == 0 && i < NLINES; i++) {
        rc = cosync_stream_write(&s, lines[i], strlen(lines[i]), NULL, deadline);
        ssize_t n = rc ? 0 : cosync_stream_readline(&s, line, sizeof line, deadline);
        if (n < 0)
            rc = (int)n;
        else if (rc == 0 && (size_t)n == strlen(lines[i]) && memcmp(line, lines[i], (size_t)n) == 0)
            c->echoed++;
    }
    cosync_stream_destroy(&s);
    return rc;
}

static int run_client(void *arg, void **result)
{
    client *c = arg;
    cosync_io sock;
    cosync_tls tls = {0};
    cosync_addr where;
    (void)result;
    int64_t deadline = cosync_deadline_after(COSYNC_SEC(10));
    cosync_server_local_addr(&srv, &where);
    c->rc = cosync_tls_connect_host(&tls, &sock, client_ctx, "localhost",
                                    (uint16_t)cosync_addr_port(&where), deadline);
    if (c->rc != 0)
        return c->rc;
    snprintf(c->version, sizeof c->version, "%s", SSL_get_version(cosync_tls_ssl(&tls)));
    c->rc = talk(c, &tls, deadline);
    if (c->rc == 0)
        c->rc = cosync_tls_shutdown(&tls, deadline); /* writer.close() */
    cosync_tls_destroy(&tls);
    cosync_io_close(&sock);
    return c->rc;
}

/* ------------------------------------------------------------------------
 * main
 * ---------------------------------------------------------------------- */

static int main_task(void *arg, void **result)
{
    cosync_task server_task, tasks[CLIENTS];
    client clients[CLIENTS];
    cosync_tls_server tls_settings = {.ctx = server_ctx, .handler = echo};
    int rc, ok = 1;
    (void)arg, (void)result;

    /* start_server(echo, 'localhost', 0, ssl=server_ctx) */
    if ((rc = cosync_server_listen_host(&srv, "localhost", 0, 0,
                                        cosync_deadline_after(COSYNC_SEC(5)))) != 0)
        return rc;
    if ((rc = cosync_task_spawn(&server_task, serve, &tls_settings, NULL)) != 0)
        return rc;
    for (int i = 0; i < CLIENTS; i++) {
        clients[i] = (client){.id = i};
        if ((rc = cosync_task_spawn(&tasks[i], run_client, &clients[i], NULL)) != 0)
            return rc;
    }
    for (int i = 0; i < CLIENTS; i++) {
        cosync_task_join(tasks[i], NULL, NULL, COSYNC_FOREVER);
        client *c = &clients[i];
        printf("client %d: %s, %zu of %zu lines echoed\n", i,
               c->rc ? cosync_err_name(c->rc) : c->version, c->echoed, NLINES);
        ok &= c->rc == 0 && c->echoed == NLINES;
    }

    cosync_server_close(&srv);
    int status = -1;
    cosync_task_join(server_task, &status, NULL, COSYNC_FOREVER);
    cosync_server_wait_closed(&srv, COSYNC_FOREVER);
    cosync_server_stats st;
    cosync_server_get_stats(&srv, &st);
    printf("server: %llu connections, %llu failed\n", (unsigned long long)st.accepted,
           (unsigned long long)st.failed);
    cosync_server_destroy(&srv);
    return ok && status == 0 && st.failed == 0 ? 0 : 1;
}

int main(void)
{
    if (make_contexts() != 0) {
        fprintf(stderr, "io_tls_echo: OpenSSL could not make the contexts\n");
        return 1;
    }
    int rc = cosync_run(main_task, NULL);
    SSL_CTX_free(server_ctx);
    SSL_CTX_free(client_ctx);
    if (rc != 0)
        printf("main: %s\n", cosync_err_name(rc));
    return rc == 0 ? 0 : 1;
}
