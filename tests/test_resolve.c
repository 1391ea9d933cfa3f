/*
 * test_resolve.c - names to addresses (cosync_addr_resolve) and back
 * (cosync_addr_lookup_name), and a TCP
 * connect by name (cosync_tcp_connect_host), one address at a time or
 * raced (Happy Eyeballs: cosync_tcp_connect_host_with).
 *
 * No test leaves the machine: numeric hosts, "localhost" (from
 * /etc/hosts), and names under ".test" that this program's own
 * getaddrinfo answers (it takes the place of libc's in the executable, so
 * the library calls it). Those answers are fixed lists of loopback
 * addresses, or errors, or a lookup that blocks until the test lets it
 * go, which is how the tests hold a lookup on its thread while its caller
 * is cancelled, times out, or the loop closes.
 */
/* ctest-labels: threads */
#include <arpa/inet.h>
#include <dlfcn.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "fault.h" /* cosync__fault_countdown */
#include "harness.h"
#include "fake_resolver.h"

/* ---- this program's getaddrinfo ------------------------------------------ */

static atomic_int fake_calls; /* lookups of ".test" names */
static atomic_int last_flags, last_family, last_socktype;
static char last_service[16]; /* written by the lookup, read after it */
static sem_t entered, release;

int getaddrinfo(const char *host, const char *service, const struct addrinfo *hints,
                struct addrinfo **res)
{
    if (!ends_with_test(host)) {
        atomic_store(&last_flags, hints ? hints->ai_flags : -1);
        return real_getaddrinfo(host, service, hints, res);
    }
    if (hints && (hints->ai_flags & AI_NUMERICHOST))
        return EAI_NONAME; /* as libc: not a numeric address */
    atomic_fetch_add(&fake_calls, 1);
    atomic_store(&last_flags, hints->ai_flags);
    atomic_store(&last_family, hints->ai_family);
    atomic_store(&last_socktype, hints->ai_socktype);
    snprintf(last_service, sizeof last_service, "%s", service);
    static const char *const three[] = {"127.0.0.1", "127.0.0.2", "127.0.0.3"};
    static const char *const multi[] = {"127.0.0.2", "127.0.0.1"};
    static const char *const one[] = {"127.0.0.1"};
    static const char *const stagger[] = {"127.0.0.2", "127.0.0.3", "127.0.0.1"};
    /* three IPv6 (IPv4-mapped: an AF_INET6 socket reaches them), then one IPv4 */
    static const char *const mixed[] = {"::ffff:127.0.0.3", "::ffff:127.0.0.4", "::ffff:127.0.0.7",
                                        "127.0.0.5"};
    if (strcmp(host, "three.test") == 0)
        *res = fake_list(three, 3, service);
    else if (strcmp(host, "multi.test") == 0)
        *res = fake_list(multi, 2, service);
    else if (strcmp(host, "mixed.test") == 0)
        *res = fake_list(mixed, 4, service);
    else if (strcmp(host, "stagger.test") == 0)
        *res = fake_list(stagger, 3, service);
    else if (strcmp(host, "block.test") == 0) {
        sem_post(&entered);
        while (sem_wait(&release) != 0)
            CHECK_EQ(errno, EINTR);
        *res = fake_list(one, 1, service);
    } else if (strcmp(host, "again.test") == 0)
        return EAI_AGAIN;
    else if (strcmp(host, "fail.test") == 0)
        return EAI_FAIL;
    else if (strcmp(host, "memory.test") == 0)
        return EAI_MEMORY;
    else if (strcmp(host, "service.test") == 0)
        return EAI_SERVICE;
    else if (strcmp(host, "system.test") == 0) {
        errno = EIO;
        return EAI_SYSTEM;
    } else
        return EAI_NONAME;
    return 0;
}

/* ---- this program's getnameinfo ------------------------------------------ */

static atomic_int fake_names; /* reverse lookups answered here */

/* 127.0.0.5 is "five.test"; 127.0.0.6 too, once the test lets the lookup
 * go (as block.test); 127.0.0.9 has no name. Port 80 is "http". Numbers
 * asked for, and every other address, go to libc's. */
int getnameinfo(const struct sockaddr *sa, socklen_t salen, char *host, socklen_t hostlen,
                char *serv, socklen_t servlen, int flags)
{
    const struct sockaddr_in *sin = (const struct sockaddr_in *)sa;
    uint32_t ip = sa->sa_family == AF_INET ? ntohl(sin->sin_addr.s_addr) : 0;
    bool ours = ip == 0x7f000005 || ip == 0x7f000006 || ip == 0x7f000009;
    if (!ours || (flags & NI_NUMERICHOST) || !hostlen) {
        int (*real)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t, int) =
            (int (*)(const struct sockaddr *, socklen_t, char *, socklen_t, char *, socklen_t,
                     int))dlsym(RTLD_NEXT, "getnameinfo");
        CHECK_NOTNULL(real);
        return real(sa, salen, host, hostlen, serv, servlen, flags | NI_NUMERICSERV);
    }
    atomic_fetch_add(&fake_names, 1);
    if (ip == 0x7f000006) {
        sem_post(&entered);
        while (sem_wait(&release) != 0)
            CHECK_EQ(errno, EINTR);
    }
    const char *name = ip == 0x7f000009 ? NULL : "five.test";
    if (!name && (flags & NI_NAMEREQD))
        return EAI_NONAME;
    char text[INET_ADDRSTRLEN];
    if (!name)
        name = inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text);
    if (strlen(name) + 1 > hostlen)
        return EAI_OVERFLOW;
    strcpy(host, name);
    if (servlen) {
        int port = ntohs(sin->sin_port);
        char num[8];
        snprintf(num, sizeof num, "%d", port);
        const char *sv = port == 80 && !(flags & NI_NUMERICSERV) ? "http" : num;
        if (strlen(sv) + 1 > servlen)
            return EAI_OVERFLOW;
        strcpy(serv, sv);
    }
    return 0;
}

/* ---- helpers ------------------------------------------------------------- */

static void check_ipv4(const cosync_addr *addr, const char *ip, int port)
{
    char text[COSYNC_ADDR_TEXT_MAX], want[COSYNC_ADDR_TEXT_MAX];
    CHECK_GT(cosync_addr_format(addr, text, sizeof text), 0);
    snprintf(want, sizeof want, "%s:%d", ip, port);
    CHECK_STREQ(text, want);
}

/* Sleep in 1 ms steps until @counter reaches @want (a thread's doing),
 * for at most 10 s: the outcome does not depend on how long it takes. */
static void wait_count(atomic_int *counter, int want)
{
    for (int i = 0; i < 10000 && atomic_load(counter) < want; i++)
        CHECK_EQ(cosync_sleep(COSYNC_MS(1)), 0);
    CHECK_EQ(atomic_load(counter), want);
}

/* Sleep in 1 ms steps until the library holds @want blocks again (the
 * helper task frees an abandoned lookup's record when the lookup ends). */
static void wait_live(long want)
{
    for (int i = 0; i < 5000 && atomic_load(&cosync__mem_live) != want; i++)
        CHECK_EQ(cosync_sleep(COSYNC_MS(1)), 0);
    CHECK_EQ(atomic_load(&cosync__mem_live), want);
}

/* A lookup that ends at once, so that the loop's pool and its job records
 * exist before a test counts the blocks the library holds. */
static void warm_up(void)
{
    cosync_addr a[1];
    CHECK_EQ(cosync_addr_resolve("three.test", 1, AF_INET, a, 1, COSYNC_FOREVER), 1);
}

/* Sleep in 1 ms steps until the held lookup has begun on its thread. */
static void wait_entered(void)
{
    int i = 0;
    while (sem_trywait(&entered) != 0 && i++ < 10000)
        CHECK_EQ(cosync_sleep(COSYNC_MS(1)), 0);
    CHECK_LT(i, 10000);
}

struct resolve_call {
    const char *host;
    int64_t deadline;
    cosync_addr addrs[4];
};

static int resolve_task(void *arg, void **result)
{
    struct resolve_call *c = arg;
    (void)result;
    return cosync_addr_resolve(c->host, 8080, AF_UNSPEC, c->addrs, 4, c->deadline);
}

/* ---- tests --------------------------------------------------------------- */

TEST(numeric_hosts_convert_at_once_anywhere)
{
    cosync_addr a[2];
    /* outside any task and loop, with the try form: no lookup needed */
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 80, AF_UNSPEC, a, 2, 0), 1);
    check_ipv4(&a[0], "127.0.0.1", 80);
    CHECK(atomic_load(&last_flags) & AI_NUMERICHOST);
    CHECK_EQ(cosync_addr_resolve("::1", 443, AF_UNSPEC, a, 2, 0), 1);
    char text[COSYNC_ADDR_TEXT_MAX];
    CHECK_GT(cosync_addr_format(&a[0], text, sizeof text), 0);
    CHECK_STREQ(text, "[::1]:443");
    /* a family that does not match the numeric host */
    CHECK_EQ(cosync_addr_resolve("::1", 443, AF_INET, a, 2, 0), COSYNC_ENONAME);
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 0, AF_INET6, a, 2, 0), COSYNC_ENONAME);
    CHECK_EQ(cosync_addr_resolve("", 80, AF_UNSPEC, a, 2, 0), COSYNC_ENONAME);
}

TEST(bad_arguments_are_refused)
{
    cosync_addr a[2];
    CHECK_EQ(cosync_addr_resolve(NULL, 80, AF_UNSPEC, a, 2, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 80, AF_UNSPEC, NULL, 2, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 80, AF_UNSPEC, a, 0, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 80, AF_UNIX, a, 2, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_resolve("127.0.0.1", 80, -1, a, 2, 0), COSYNC_EINVAL);
    cosync_io io;
    CHECK_EQ(cosync_tcp_connect_host(NULL, "127.0.0.1", 80, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_tcp_connect_host(&io, NULL, 80, 0), COSYNC_EINVAL);
}

static int name_needs_task_body(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_addr a[2];
    int calls = atomic_load(&fake_calls);
    CHECK_EQ(cosync_addr_resolve("three.test", 80, AF_UNSPEC, a, 2, 0), COSYNC_EAGAIN);
    CHECK_EQ(atomic_load(&fake_calls), calls); /* no lookup was started */
    /* a huge @cap cannot be allocated for */
    CHECK_EQ(cosync_addr_resolve("three.test", 80, AF_UNSPEC, a, SIZE_MAX / 2, COSYNC_FOREVER),
             COSYNC_EINVAL);
    return 0;
}

TEST(a_name_needs_a_task_and_a_deadline)
{
    cosync_addr a[2];
    int calls = atomic_load(&fake_calls);
    CHECK_EQ(cosync_addr_resolve("three.test", 80, AF_UNSPEC, a, 2, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_EQ(atomic_load(&fake_calls), calls);
    run_main_ok(name_needs_task_body, NULL);
}

static int localhost_body(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_addr a[8];
    int n = cosync_addr_resolve("localhost", 8080, AF_UNSPEC, a, 8, COSYNC_FOREVER);
    CHECK_GE(n, 1);
    for (int i = 0; i < n; i++) {
        CHECK(is_loopback(&a[i]));
        CHECK_EQ(cosync_addr_port(&a[i]), 8080);
    }
    n = cosync_addr_resolve("localhost", 1, AF_INET, a, 8, COSYNC_FOREVER);
    CHECK_GE(n, 1);
    for (int i = 0; i < n; i++) {
        CHECK_EQ(a[i].u.sa.sa_family, AF_INET);
        CHECK(is_loopback(&a[i]));
    }
    return 0;
}

TEST(localhost_resolves_to_loopback_on_a_thread)
{
    run_main_ok(localhost_body, NULL);
}

static int order_body(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_addr a[4];
    CHECK_EQ(cosync_addr_resolve("three.test", 8080, AF_INET, a, 2, COSYNC_FOREVER), 2);
    check_ipv4(&a[0], "127.0.0.1", 8080);
    check_ipv4(&a[1], "127.0.0.2", 8080);
    /* what the lookup was asked */
    CHECK_EQ(atomic_load(&last_family), AF_INET);
    CHECK_EQ(atomic_load(&last_socktype), SOCK_STREAM);
    CHECK(atomic_load(&last_flags) & AI_NUMERICSERV);
    CHECK(!(atomic_load(&last_flags) & AI_NUMERICHOST));
    CHECK_STREQ(last_service, "8080");
    memset(a, 0xab, sizeof a);
    CHECK_EQ(cosync_addr_resolve("three.test", 9, AF_UNSPEC, a, 4, COSYNC_FOREVER), 3);
    check_ipv4(&a[2], "127.0.0.3", 9);
    CHECK_EQ(a[3].u.storage.ss_family, 0xabab); /* untouched */
    CHECK_EQ(atomic_load(&last_family), AF_UNSPEC);
    return 0;
}

TEST(addresses_come_in_order_up_to_cap)
{
    int frees = atomic_load(&fake_frees);
    run_main_ok(order_body, NULL);
    CHECK_EQ(atomic_load(&fake_frees), frees + 2);
}

static int errors_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static const struct {
        const char *host;
        int rc;
    } cases[] = {
        {"nothing.test", COSYNC_ENONAME}, {"again.test", COSYNC_ENONAME},
        {"fail.test", COSYNC_ENONAME},    {"memory.test", COSYNC_ENOMEM},
        {"service.test", COSYNC_EINVAL},  {"system.test", -EIO},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        cosync_addr a[2];
        CHECK_EQ(cosync_addr_resolve(cases[i].host, 80, AF_UNSPEC, a, 2, COSYNC_FOREVER),
                 cases[i].rc);
        cosync_io io;
        memset(&io, 0x5a, sizeof io); /* whatever the caller's memory held */
        CHECK_EQ(cosync_tcp_connect_host(&io, cases[i].host, 80, COSYNC_FOREVER), cases[i].rc);
        CHECK_EQ(cosync_io_fd(&io), COSYNC_EBADF);
    }
    return 0;
}

TEST(resolver_errors_map_to_codes)
{
    run_main_ok(errors_body, NULL);
    CHECK_STREQ(cosync_err_name(COSYNC_ENONAME), "COSYNC_ENONAME");
}

static int cancel_body(void *arg, void **result)
{
    (void)arg, (void)result;
    warm_up();
    int frees = atomic_load(&fake_frees);
    struct resolve_call c = {.host = "block.test", .deadline = COSYNC_FOREVER};
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, resolve_task, &c, NULL), 0);
    wait_entered();
    long live = atomic_load(&cosync__mem_live);
    CHECK_EQ(cosync_task_cancel(t), 0);
    /* the caller leaves while the lookup is still held on its thread */
    join_expect(t, COSYNC_ECANCELED);
    CHECK_EQ(atomic_load(&fake_frees), frees);
    sem_post(&release);
    wait_count(&fake_frees, frees + 1);
    wait_live(live - 1); /* the helper freed the lookup's record */
    return 0;
}

/* On the real clock: the virtual clock stands still while a lookup runs
 * on its thread (docs/threads.md), so the polls' sleeps and the deadline
 * of the next test could never end. */
TEST(a_cancelled_caller_leaves_at_once_and_the_lookup_is_dropped)
{
    CHECK_EQ(cosync_run(cancel_body, NULL), 0);
}

static int deadline_body(void *arg, void **result)
{
    (void)arg, (void)result;
    warm_up();
    int frees = atomic_load(&fake_frees);
    struct resolve_call c = {.host = "block.test", .deadline = cosync_deadline_after(COSYNC_MS(1))};
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, resolve_task, &c, NULL), 0);
    /* the lookup is held until the caller has timed out */
    join_expect(t, COSYNC_ETIMEDOUT);
    wait_entered();
    long live = atomic_load(&cosync__mem_live);
    CHECK_EQ(atomic_load(&fake_frees), frees);
    sem_post(&release);
    wait_count(&fake_frees, frees + 1);
    wait_live(live - 1); /* the helper freed the lookup's record */
    return 0;
}

TEST(a_deadline_that_passes_ends_the_wait_not_the_lookup)
{
    CHECK_EQ(cosync_run(deadline_body, NULL), 0);
}

static atomic_bool main_returned;

static void *release_after_main(void *arg)
{
    (void)arg;
    struct timespec ms = {0, 1000 * 1000};
    for (int i = 0; i < 10000 && !atomic_load(&main_returned); i++)
        nanosleep(&ms, NULL);
    /* let the close begin, most of the time; the check holds either way */
    struct timespec wait = {0, 20 * 1000 * 1000};
    nanosleep(&wait, NULL);
    sem_post(&release);
    return NULL;
}

static int close_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static struct resolve_call c = {.host = "block.test", .deadline = COSYNC_FOREVER};
    CHECK_EQ(cosync_task_spawn(NULL, resolve_task, &c, NULL), 0);
    wait_entered(); /* the lookup has begun on its thread */
    atomic_store(&main_returned, true);
    return 0;
}

TEST(the_loops_close_waits_for_a_lookup_under_way)
{
    int frees = atomic_load(&fake_frees);
    pthread_t releaser;
    CHECK_EQ(pthread_create(&releaser, NULL, release_after_main, NULL), 0);
    CHECK_EQ(cosync_run(close_body, NULL), 0);
    /* the close ran until the lookup had ended and its record was freed */
    CHECK_EQ(atomic_load(&fake_frees), frees + 1);
    CHECK_EQ(pthread_join(releaser, NULL), 0);
}

struct server {
    cosync_io listener;
    int port;
};

static int accept_one(void *arg, void **result)
{
    struct server *s = arg;
    cosync_io conn;
    cosync_addr peer;
    (void)result;
    int rc = cosync_sock_accept(&s->listener, &conn, &peer, COSYNC_FOREVER);
    if (rc == 0)
        CHECK_EQ(cosync_io_close(&conn), 0);
    return rc;
}

static void listen_loopback(struct server *s)
{
    cosync_addr any;
    CHECK_EQ(cosync_addr_ip(&any, "127.0.0.1", 0), 0);
    CHECK_EQ(cosync_sock_listen(&s->listener, &any, 8), 0);
    CHECK_EQ(cosync_sock_local_addr(&s->listener, &any), 0);
    s->port = cosync_addr_port(&any);
    CHECK_GT(s->port, 0);
}

static int connect_body(void *arg, void **result)
{
    (void)arg, (void)result;
    struct server s;
    listen_loopback(&s);
    cosync_task acceptor;
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &s, NULL), 0);
    /* multi.test is 127.0.0.2 (nobody listens: refused), then 127.0.0.1 */
    cosync_io io;
    CHECK_EQ(cosync_tcp_connect_host(&io, "multi.test", (uint16_t)s.port, COSYNC_FOREVER), 0);
    cosync_addr peer;
    CHECK_EQ(cosync_sock_peer_addr(&io, &peer), 0);
    check_ipv4(&peer, "127.0.0.1", s.port);
    join_ok(acceptor);
    CHECK_EQ(cosync_io_close(&io), 0);
    /* by name, from /etc/hosts */
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &s, NULL), 0);
    CHECK_EQ(cosync_tcp_connect_host(&io, "localhost", (uint16_t)s.port, COSYNC_FOREVER), 0);
    join_ok(acceptor);
    CHECK_EQ(cosync_io_close(&io), 0);
    /* numeric: no lookup */
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &s, NULL), 0);
    CHECK_EQ(cosync_tcp_connect_host(&io, "127.0.0.1", (uint16_t)s.port, COSYNC_FOREVER), 0);
    join_ok(acceptor);
    CHECK_EQ(cosync_io_close(&io), 0);
    /* nobody listens any more: every address refuses, the handle is closed */
    CHECK_EQ(cosync_io_close(&s.listener), 0);
    CHECK_EQ(cosync_tcp_connect_host(&io, "multi.test", (uint16_t)s.port, COSYNC_FOREVER),
             COSYNC_ECONNREFUSED);
    CHECK_EQ(cosync_io_fd(&io), COSYNC_EBADF);
    /* a name with a lookup, and the try form */
    CHECK_EQ(cosync_tcp_connect_host(&io, "multi.test", (uint16_t)s.port, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(connect_by_name_tries_each_address_in_order)
{
    run_main_ok(connect_body, NULL);
}

/* A connect to 127.0.0.2:port that never completes: a listener there
 * whose accept queue is full (Linux drops the SYNs, and the connect waits
 * for their retries), beside a listener on 127.0.0.1:port that accepts. */
struct hang {
    struct server good;
    cosync_io full;
    cosync_io fillers[16];
    int nfillers;
    cosync_io io;
    int64_t deadline;
    int rc;
};

static bool listen_full_beside(struct hang *h)
{
    listen_loopback(&h->good);
    cosync_addr at;
    CHECK_EQ(cosync_addr_ip(&at, "127.0.0.2", (uint16_t)h->good.port), 0);
    int rc = cosync_sock_listen(&h->full, &at, 1);
    if (rc == COSYNC_EADDRINUSE) { /* the port is taken on 127.0.0.2: try another */
        CHECK_EQ(cosync_io_close(&h->good.listener), 0);
        return false;
    }
    CHECK_EQ(rc, 0);
    /* fill its queue until a connect waits */
    for (h->nfillers = 0; h->nfillers < 16;) {
        cosync_io *f = &h->fillers[h->nfillers++];
        CHECK_EQ(cosync_sock_open(f, AF_INET, SOCK_STREAM), 0);
        rc = cosync_sock_connect(f, &at, 0);
        if (rc == COSYNC_EAGAIN)
            return true;
        CHECK_EQ(rc, 0);
    }
    CHECK__FAIL("a listen queue of 0 took 16 connections");
}

/* A fresh hang, tried again while the port is taken on 127.0.0.2. */
static void hang_open(struct hang *h)
{
    memset(h, 0, sizeof *h);
    for (int tries = 0; !listen_full_beside(h); tries++)
        CHECK_LT(tries, 10);
}

static void close_hang(struct hang *h)
{
    for (int i = 0; i < h->nfillers; i++)
        CHECK_EQ(cosync_io_close(&h->fillers[i]), 0);
    CHECK_EQ(cosync_io_close(&h->full), 0);
    CHECK_EQ(cosync_io_close(&h->good.listener), 0);
}

static int dial_task(void *arg, void **result)
{
    struct hang *h = arg;
    (void)result;
    h->rc = cosync_tcp_connect_host(&h->io, "multi.test", (uint16_t)h->good.port, h->deadline);
    return 0;
}

/* dial_task with Happy Eyeballs, the next attempt 10 s behind. */
static int eyeballs_dial_task(void *arg, void **result)
{
    struct hang *h = arg;
    (void)result;
    h->rc = cosync_tcp_connect_host_with(
        &h->io, "multi.test", (uint16_t)h->good.port,
        &(cosync_connect_opts){.happy_eyeballs_delay = COSYNC_SEC(10)}, h->deadline);
    return 0;
}

/* Whether the loop's report shows @name waiting for a socket to connect. */
static bool waits_on_connect(const char *name)
{
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK_NOTNULL(f);
    CHECK_GT(cosync_loop_dump(cosync_loop_current(), f), 0);
    CHECK_EQ(fclose(f), 0);
    char want[64];
    snprintf(want, sizeof want, "task '%s'", name);
    const char *line = strstr(text, want);
    bool found = line && strstr(line, "(write)") && strchr(line, '\n') > strstr(line, "(write)");
    free(text);
    return found;
}

static int hang_body(void *arg, void **result)
{
    bool *cancel = arg;
    (void)result;
    static struct hang h;
    hang_open(&h);
    h.deadline = *cancel ? COSYNC_FOREVER : cosync_deadline_after(COSYNC_MS(30));
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, dial_task, &h, &(cosync_task_opts){.name = "dialer"}), 0);
    /* until it waits on the first address, 127.0.0.2 */
    int i = 0;
    while (!waits_on_connect("dialer") && !cosync_task_done(t) && i++ < 5000)
        CHECK_EQ(cosync_sleep(COSYNC_MS(1)), 0);
    CHECK(!cosync_task_done(t));
    if (*cancel)
        CHECK_EQ(cosync_task_cancel(t), 0);
    join_expect(t, *cancel ? COSYNC_ECANCELED : 0); /* ended cancelled, as it was */
    /* not on to the next address, which would have connected */
    CHECK_EQ(h.rc, *cancel ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_io_fd(&h.io), COSYNC_EBADF);
    close_hang(&h);
    return 0;
}

TEST(a_cancel_or_a_deadline_ends_the_tries)
{
    bool cancel = true;
    CHECK_EQ(cosync_run(hang_body, &cancel), 0);
    cancel = false;
    CHECK_EQ(cosync_run(hang_body, &cancel), 0);
}

/* ---- Happy Eyeballs -------------------------------------------------------- */

/* The addresses this program's connects went to, while logging. */
static bool log_connects;
static char connects[64][COSYNC_ADDR_TEXT_MAX];
static int nconnects;

int connect(int fd, const struct sockaddr *sa, socklen_t len)
{
    static int (*real)(int, const struct sockaddr *, socklen_t);
    if (!real)
        real = (int (*)(int, const struct sockaddr *, socklen_t))dlsym(RTLD_NEXT, "connect");
    CHECK_NOTNULL(real);
    if (log_connects && nconnects < 64) {
        cosync_addr a = {.len = len};
        memcpy(&a.u.storage, sa, len);
        CHECK_GT(cosync_addr_format(&a, connects[nconnects++], COSYNC_ADDR_TEXT_MAX), 0);
    }
    return real(fd, sa, len);
}

static void start_log(void)
{
    nconnects = 0;
    log_connects = true;
}

/* The addresses connected to since start_log, joined by spaces. */
static const char *logged(char *buf, size_t size)
{
    log_connects = false;
    buf[0] = '\0';
    for (int i = 0; i < nconnects; i++) {
        size_t len = strlen(buf);
        snprintf(buf + len, size - len, "%s%s", i ? " " : "", connects[i]);
    }
    return buf;
}

static const cosync_connect_opts eyeballs_250ms = {.happy_eyeballs_delay = COSYNC_MS(250)};

static int eyeballs_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static struct hang h;
    hang_open(&h);
    int fds = count_fds();
    char buf[256], want[256];
    cosync_addr peer;
    cosync_task acceptor;
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &h.good, NULL), 0);

    /* 127.0.0.2 never answers: 127.0.0.1 begins 250 ms later, and wins */
    int64_t t0 = cosync_now();
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&h.io, "multi.test", (uint16_t)h.good.port,
                                          &eyeballs_250ms, COSYNC_FOREVER),
             0);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(250));
    snprintf(want, sizeof want, "127.0.0.2:%d 127.0.0.1:%d", h.good.port, h.good.port);
    CHECK_STREQ(logged(buf, sizeof buf), want);
    CHECK_EQ(cosync_sock_peer_addr(&h.io, &peer), 0);
    check_ipv4(&peer, "127.0.0.1", h.good.port);
    join_ok(acceptor);
    CHECK_EQ(count_fds(), fds + 1); /* the connection; the loser and the poller are closed */
    CHECK_EQ(cosync_io_close(&h.io), 0);

    /* stagger.test: 127.0.0.2 never answers; 127.0.0.3, begun 250 ms
     * later, is refused, which begins 127.0.0.1 at once (not 250 ms
     * after 127.0.0.3), while 127.0.0.2 still waits */
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &h.good, NULL), 0);
    t0 = cosync_now();
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&h.io, "stagger.test", (uint16_t)h.good.port,
                                          &eyeballs_250ms, COSYNC_FOREVER),
             0);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(250));
    snprintf(want, sizeof want, "127.0.0.2:%d 127.0.0.3:%d 127.0.0.1:%d", h.good.port, h.good.port,
             h.good.port);
    CHECK_STREQ(logged(buf, sizeof buf), want);
    join_ok(acceptor);
    CHECK_EQ(count_fds(), fds + 1);
    CHECK_EQ(cosync_io_close(&h.io), 0);

    /* a deadline before the delay: the first alone, and nothing left open */
    t0 = cosync_now();
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&h.io, "multi.test", (uint16_t)h.good.port,
                                          &eyeballs_250ms, t0 + COSYNC_MS(100)),
             COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(100));
    snprintf(want, sizeof want, "127.0.0.2:%d", h.good.port);
    CHECK_STREQ(logged(buf, sizeof buf), want);
    CHECK_EQ(cosync_io_fd(&h.io), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);

    /* deadline 0: the first attempt cannot connect at once */
    CHECK_EQ(
        cosync_tcp_connect_host_with(&h.io, "127.0.0.2", (uint16_t)h.good.port, &eyeballs_250ms, 0),
        COSYNC_EAGAIN);
    CHECK_EQ(count_fds(), fds);
    close_hang(&h);
    return 0;
}

/* With a delay, an address that does not answer has that long before the
 * next one begins beside it; the first to connect wins, and the other
 * attempts are closed. */
TEST(happy_eyeballs_begins_the_next_address_after_the_delay)
{
    run_main_ok(eyeballs_body, NULL);
}

static int eyeballs_cancel_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static struct hang h;
    hang_open(&h);
    int fds = count_fds();
    /* a long delay: the dialer waits on 127.0.0.2 alone when cancelled */
    h.deadline = COSYNC_FOREVER;
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, eyeballs_dial_task, &h, &(cosync_task_opts){.name = "dialer"}),
             0);
    int64_t t0 = cosync_now();
    CHECK_EQ(cosync_sleep(COSYNC_MS(100)), 0);
    CHECK(!cosync_task_done(t));
    CHECK_EQ(cosync_task_cancel(t), 0);
    join_expect(t, COSYNC_ECANCELED); /* ended cancelled, as it was */
    CHECK_EQ(h.rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(100));
    CHECK_EQ(cosync_io_fd(&h.io), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    close_hang(&h);
    return 0;
}

/* A cancel while the attempts race ends them all at once. */
TEST(a_cancel_ends_the_race)
{
    run_main_ok(eyeballs_cancel_body, NULL);
}

static int refused_body(void *arg, void **result)
{
    (void)arg, (void)result;
    struct server s;
    listen_loopback(&s);
    int fds = count_fds();
    char buf[256], want[256];
    cosync_task acceptor;
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &s, NULL), 0);
    /* nobody on 127.0.0.2: its refusal begins 127.0.0.1 at once, long
     * before the delay */
    const cosync_connect_opts long_delay = {.happy_eyeballs_delay = COSYNC_SEC(10)};
    int64_t t0 = cosync_now();
    cosync_io io;
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "multi.test", (uint16_t)s.port, &long_delay,
                                          COSYNC_FOREVER),
             0);
    CHECK_EQ(cosync_now(), t0);
    snprintf(want, sizeof want, "127.0.0.2:%d 127.0.0.1:%d", s.port, s.port);
    CHECK_STREQ(logged(buf, sizeof buf), want);
    join_ok(acceptor);
    CHECK_EQ(cosync_io_close(&io), 0);
    /* nobody anywhere: the last attempt's error, and nothing left open */
    CHECK_EQ(cosync_io_close(&s.listener), 0);
    fds--;
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "multi.test", (uint16_t)s.port, &long_delay,
                                          COSYNC_FOREVER),
             COSYNC_ECONNREFUSED);
    CHECK_STREQ(logged(buf, sizeof buf), want);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(cosync_io_fd(&io), COSYNC_EBADF);
    CHECK_EQ(count_fds(), fds);
    return 0;
}

/* An attempt that fails begins the next one at once; when every one has
 * failed, the last one's error comes back. */
TEST(a_failed_attempt_begins_the_next_at_once)
{
    run_main_ok(refused_body, NULL);
}

/* Whether this system can make IPv6 sockets. */
static bool have_ipv6(void)
{
    int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    close(fd);
    return true;
}

/* The order mixed.test's addresses are tried in with @opts, every one
 * refused (nobody listens at @port). */
static const char *order_with(const cosync_connect_opts *opts, int port, char *buf, size_t size)
{
    cosync_io io;
    start_log();
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "mixed.test", (uint16_t)port, opts, COSYNC_FOREVER),
             COSYNC_ECONNREFUSED);
    return logged(buf, size);
}

static int interleave_body(void *arg, void **result)
{
    (void)arg, (void)result;
    if (!have_ipv6()) {
        printf("  (skipped: no IPv6 sockets here)\n");
        return 0;
    }
    struct server s;
    listen_loopback(&s);
    CHECK_EQ(cosync_io_close(&s.listener), 0); /* a port nobody listens on */
    int p = s.port;
    char buf[512], want[512];
    const char *v6[3] = {"[::ffff:127.0.0.3]", "[::ffff:127.0.0.4]", "[::ffff:127.0.0.7]"};
    const char *v4 = "127.0.0.5";
    const int64_t delay = COSYNC_SEC(1);

    /* asyncio's default: the resolver's order */
    snprintf(want, sizeof want, "%s:%d %s:%d %s:%d %s:%d", v6[0], p, v6[1], p, v6[2], p, v4, p);
    CHECK_STREQ(order_with(NULL, p, buf, sizeof buf), want);
    CHECK_STREQ(order_with(&(cosync_connect_opts){.happy_eyeballs_delay = delay,
                                                  .interleave = COSYNC_CONNECT_NO_INTERLEAVE},
                           p, buf, sizeof buf),
                want);
    /* a delay interleaves the families, one of the first family first */
    snprintf(want, sizeof want, "%s:%d %s:%d %s:%d %s:%d", v6[0], p, v4, p, v6[1], p, v6[2], p);
    CHECK_STREQ(
        order_with(&(cosync_connect_opts){.happy_eyeballs_delay = delay}, p, buf, sizeof buf),
        want);
    CHECK_STREQ(order_with(&(cosync_connect_opts){.interleave = 1}, p, buf, sizeof buf), want);
    /* two of the first family first */
    snprintf(want, sizeof want, "%s:%d %s:%d %s:%d %s:%d", v6[0], p, v6[1], p, v4, p, v6[2], p);
    CHECK_STREQ(order_with(&(cosync_connect_opts){.interleave = 2}, p, buf, sizeof buf), want);
    return 0;
}

/* interleave reorders the addresses as RFC 8305 and asyncio do: the
 * families alternate, the given count of the first family first; the
 * default is the resolver's order without Happy Eyeballs, and one of the
 * first family with it. */
TEST(interleave_alternates_the_families)
{
    run_main_ok(interleave_body, NULL);
}

static int eyeballs_misuse_body(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_io io;
    int fds = count_fds();
    CHECK_EQ(cosync_tcp_connect_host_with(NULL, "127.0.0.1", 1, &eyeballs_250ms, COSYNC_FOREVER),
             COSYNC_EINVAL);
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "127.0.0.1", 1,
                                          &(cosync_connect_opts){.happy_eyeballs_delay = -1},
                                          COSYNC_FOREVER),
             COSYNC_EINVAL);
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "127.0.0.1", 1,
                                          &(cosync_connect_opts){.interleave = -2}, COSYNC_FOREVER),
             COSYNC_EINVAL);
    CHECK_EQ(cosync_tcp_connect_host_with(&io, "nothing.test", 1, &eyeballs_250ms, COSYNC_FOREVER),
             COSYNC_ENONAME);
    /* each fault point failing in turn (fault injection): the poller's
     * handle, its epoll (neither begins an attempt), then the poller's
     * registration with the loop once the attempt has begun; each
     * returns COSYNC_ENOMEM, the handle closed, nothing left open or
     * allocated. Without a fault, the port nobody listens on refuses. */
    char buf[64], want[64];
    struct server s;
    listen_loopback(&s);
    CHECK_EQ(cosync_io_close(&s.listener), 0); /* a port nobody listens on */
    snprintf(want, sizeof want, "127.0.0.1:%d", s.port);
    long live = atomic_load(&cosync__mem_live);
    int k = 0;
    for (;; k++) {
        CHECK_LT(k, 16);
        long failures = cosync__fault_failures;
        start_log();
        cosync__fault_countdown = k;
        int rc = cosync_tcp_connect_host_with(&io, "127.0.0.1", (uint16_t)s.port, &eyeballs_250ms,
                                              COSYNC_FOREVER);
        cosync__fault_countdown = -1;
        const char *attempts = logged(buf, sizeof buf);
        CHECK_EQ(cosync_io_fd(&io), COSYNC_EBADF);
        CHECK_EQ(count_fds(), fds);
        CHECK_EQ(atomic_load(&cosync__mem_live), live);
        if (cosync__fault_failures == failures) {
            CHECK_EQ(rc, COSYNC_ECONNREFUSED);
            break;
        }
        CHECK_EQ(rc, COSYNC_ENOMEM);
        CHECK_STREQ(attempts, k < 2 ? "" : want);
    }
    CHECK_EQ(k, 3);
    CHECK_EQ(count_fds(), fds);
    return 0;
}

struct dense_dial {
    int port;
    int rc;
};

static int dense_dial_task(void *arg, void **result)
{
    struct dense_dial *d = arg;
    (void)result;
    cosync_io io; /* not waited on here: the race's own handles are off this stack */
    d->rc = cosync_tcp_connect_host_with(&io, "multi.test", (uint16_t)d->port, &eyeballs_250ms,
                                         COSYNC_FOREVER);
    if (d->rc == 0)
        CHECK_EQ(cosync_io_close(&io), 0);
    return 0;
}

static int dense_eyeballs_body(void *arg, void **result)
{
    (void)arg, (void)result;
    static struct hang h;
    hang_open(&h);
    int fds = count_fds();
    cosync_task acceptor, t;
    CHECK_EQ(cosync_task_spawn(&acceptor, accept_one, &h.good, NULL), 0);
    struct dense_dial d = {.port = h.good.port, .rc = 12345};
    CHECK_EQ(cosync_task_spawn(&t, dense_dial_task, &d, &(cosync_task_opts){.dense = true}), 0);
    int64_t t0 = cosync_now();
    join_ok(t);
    CHECK_EQ(d.rc, 0);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(250));
    join_ok(acceptor);
    CHECK_EQ(count_fds(), fds);
    close_hang(&h);
    return 0;
}

/* A dense task races too: the race waits on nothing in the task's stack
 * (a dense task gives its stack up while it waits). */
TEST(a_dense_task_races)
{
    run_main_ok(dense_eyeballs_body, NULL);
}

/* Bad options are refused; a failed set-up leaves nothing open. */
TEST(connect_opts_misuse)
{
    run_main_ok(eyeballs_misuse_body, NULL);
}

/* ---- an address's name ---------------------------------------------------- */

static int names_body(void *arg, void **result)
{
    (void)arg, (void)result;
    char host[NI_MAXHOST], serv[NI_MAXSERV];
    cosync_addr a, none, v6;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.5", 80));
    CHECK_OK(cosync_addr_ip(&none, "127.0.0.9", 8080));
    CHECK_OK(cosync_addr_ip(&v6, "::1", 443));
    int calls = atomic_load(&fake_names);

    /* numbers only: at once, with no thread and no switch, deadline 0 too */
    uint64_t before = switches();
    CHECK_OK(cosync_addr_lookup_name(&a, host, sizeof host, serv, sizeof serv,
                                     NI_NUMERICHOST | NI_NUMERICSERV, 0));
    CHECK_STREQ(host, "127.0.0.5");
    CHECK_STREQ(serv, "80");
    CHECK_OK(cosync_addr_lookup_name(&v6, host, sizeof host, NULL, 0, NI_NUMERICHOST, 0));
    CHECK_STREQ(host, "::1");
    CHECK_OK(cosync_addr_lookup_name(&a, NULL, 0, serv, sizeof serv, NI_NUMERICSERV, 0));
    CHECK_STREQ(serv, "80");
    CHECK_EQ(switches(), before);
    CHECK_EQ(atomic_load(&fake_names), calls);

    /* a name: looked up on a thread */
    CHECK_OK(cosync_addr_lookup_name(&a, host, sizeof host, serv, sizeof serv, 0, COSYNC_FOREVER));
    CHECK_STREQ(host, "five.test");
    CHECK_STREQ(serv, "http");
    CHECK_EQ(atomic_load(&fake_names), calls + 1);
    CHECK_OK(cosync_addr_lookup_name(&a, host, sizeof host, NULL, 0, 0, COSYNC_FOREVER));
    CHECK_STREQ(host, "five.test");
    /* deadline 0: it would need a lookup */
    CHECK_EQ(cosync_addr_lookup_name(&a, host, sizeof host, NULL, 0, 0, 0), COSYNC_EAGAIN);

    /* no name: the address as text, or, with NI_NAMEREQD, COSYNC_ENONAME */
    CHECK_OK(cosync_addr_lookup_name(&none, host, sizeof host, serv, sizeof serv, NI_NUMERICSERV,
                                     COSYNC_FOREVER));
    CHECK_STREQ(host, "127.0.0.9");
    CHECK_STREQ(serv, "8080");
    strcpy(host, "untouched");
    CHECK_EQ(
        cosync_addr_lookup_name(&none, host, sizeof host, NULL, 0, NI_NAMEREQD, COSYNC_FOREVER),
        COSYNC_ENONAME);
    CHECK_STREQ(host, "untouched");

    /* a buffer too small: COSYNC_EOVERFLOW, and nothing written */
    char small[5] = "abcd";
    CHECK_EQ(cosync_addr_lookup_name(&a, small, sizeof small, NULL, 0, 0, COSYNC_FOREVER),
             COSYNC_EOVERFLOW);
    CHECK_STREQ(small, "abcd");
    CHECK_EQ(cosync_addr_lookup_name(&a, small, sizeof small, NULL, 0, NI_NUMERICHOST, 0),
             COSYNC_EOVERFLOW);
    CHECK_STREQ(small, "abcd");

    /* misuse */
    CHECK_EQ(cosync_addr_lookup_name(NULL, host, sizeof host, NULL, 0, 0, COSYNC_FOREVER),
             COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_lookup_name(&a, NULL, 1, NULL, 0, 0, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_lookup_name(&a, host, sizeof host, NULL, 1, 0, COSYNC_FOREVER),
             COSYNC_EINVAL);
    CHECK_EQ(cosync_addr_lookup_name(&a, NULL, 0, NULL, 0, 0, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(atomic_load(&fake_names), calls + 5); /* the five lookups above */
    return 0;
}

/* lookup_name (loop.getnameinfo): numbers at once, names on a thread; no
 * name, a buffer too small, misuse. */
TEST(an_address_has_a_name_looked_up_on_a_thread)
{
    run_main_ok(names_body, NULL);
}

/* Outside a task: numbers are answered, a lookup is COSYNC_EPERM. */
TEST(an_address_name_outside_a_task)
{
    char host[NI_MAXHOST];
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.5", 80));
    CHECK_OK(cosync_addr_lookup_name(&a, host, sizeof host, NULL, 0, NI_NUMERICHOST, 0));
    CHECK_STREQ(host, "127.0.0.5");
    CHECK_EQ(cosync_addr_lookup_name(&a, host, sizeof host, NULL, 0, 0, COSYNC_FOREVER),
             COSYNC_EPERM);
}

struct name_call {
    int64_t deadline;
    char host[NI_MAXHOST];
};

static int name_task(void *arg, void **result)
{
    struct name_call *c = arg;
    (void)result;
    cosync_addr six;
    CHECK_OK(cosync_addr_ip(&six, "127.0.0.6", 80));
    return cosync_addr_lookup_name(&six, c->host, sizeof c->host, NULL, 0, 0, c->deadline);
}

static int name_cancel_body(void *arg, void **result)
{
    bool cancel = arg != NULL;
    (void)result;
    warm_up();
    struct name_call c = {.deadline =
                              cancel ? COSYNC_FOREVER : cosync_deadline_after(COSYNC_MS(1))};
    strcpy(c.host, "untouched");
    int calls = atomic_load(&fake_names);
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, name_task, &c, NULL), 0);
    if (cancel) {
        wait_entered();
        CHECK_EQ(cosync_task_cancel(t), 0);
    }
    /* the caller leaves while the lookup is still held on its thread */
    join_expect(t, cancel ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT);
    if (!cancel)
        wait_entered();
    long live = atomic_load(&cosync__mem_live);
    CHECK_STREQ(c.host, "untouched");
    sem_post(&release);
    wait_count(&fake_names, calls + 1);
    wait_live(live - 1); /* the helper freed the lookup's record */
    CHECK_STREQ(c.host, "untouched");
    return 0;
}

/* A cancel or a deadline ends the wait at once; the lookup ends on its
 * thread, its answer dropped, and its record freed. On the real clock,
 * as the resolver's cases. */
TEST(a_cancelled_or_late_name_lookup_is_dropped)
{
    CHECK_EQ(cosync_run(name_cancel_body, (void *)1), 0);
    CHECK_EQ(cosync_run(name_cancel_body, NULL), 0);
}

static int name_fault_body(void *arg, void **result)
{
    long *io = arg;
    (void)result;
    char host[NI_MAXHOST];
    cosync_addr a;
    CHECK_OK(cosync_addr_ip(&a, "127.0.0.5", 80));
    long failures = cosync__fault_failures;
    cosync__fault_countdown = *io;
    int rc = cosync_addr_lookup_name(&a, host, sizeof host, NULL, 0, 0, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    if (cosync__fault_failures != failures) {
        CHECK_LT(rc, 0);
        *io = rc;
    } else {
        CHECK_OK(rc);
        CHECK_STREQ(host, "five.test");
        *io = 0;
    }
    return 0;
}

TEST(each_allocation_of_a_name_lookup_failing_in_turn_loses_nothing)
{
    int failures = 0;
    for (long i = 0;; i++) {
        CHECK_LT(i, 64);
        long io = i;
        run_main_ok(name_fault_body, &io);
        if (io == 0)
            break;
        CHECK_EQ(io, COSYNC_ENOMEM);
        failures++;
    }
    CHECK_GE(failures, 2); /* the record and the helper task at least */
}

static int dense_body(void *arg, void **result)
{
    (void)arg, (void)result;
    char host[16];
    snprintf(host, sizeof host, "%s", "three.test");
    cosync_addr a[3];
    CHECK_EQ(cosync_addr_resolve(host, 7, AF_INET, a, 3, COSYNC_FOREVER), 3);
    check_ipv4(&a[2], "127.0.0.3", 7);
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_EQ(cosync_task_spawn(&t, dense_body, NULL, &(cosync_task_opts){.dense = true}), 0);
    join_ok(t);
    return 0;
}

TEST(a_dense_task_resolves_into_its_own_stack)
{
    run_main_ok(dense_main, NULL);
}

/* Resolve with the @*arg-th fault point failing; *@arg becomes the error
 * that came back, or 0 if nothing failed. */
static int fault_body(void *arg, void **result)
{
    long *io = arg;
    (void)result;
    cosync_addr a[3];
    long failures = cosync__fault_failures;
    cosync__fault_countdown = *io;
    int n = cosync_addr_resolve("three.test", 80, AF_INET, a, 3, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    if (cosync__fault_failures != failures) {
        CHECK_LT(n, 0);
        *io = n;
    } else {
        CHECK_EQ(n, 3);
        check_ipv4(&a[0], "127.0.0.1", 80);
        *io = 0;
    }
    return 0;
}

TEST(each_allocation_failing_in_turn_loses_nothing)
{
    int failures = 0;
    for (long i = 0;; i++) {
        CHECK_LT(i, 64);
        long io = i;
        run_main_ok(fault_body, &io);
        if (io == 0)
            break; /* nothing left to fail */
        CHECK_EQ(io, COSYNC_ENOMEM);
        failures++;
    }
    CHECK_GE(failures, 2); /* the record and the helper task at least */
}

int main(void)
{
    CHECK_EQ(sem_init(&entered, 0, 0), 0);
    CHECK_EQ(sem_init(&release, 0, 0), 0);
    RUN(numeric_hosts_convert_at_once_anywhere);
    RUN(bad_arguments_are_refused);
    RUN(a_name_needs_a_task_and_a_deadline);
    RUN(localhost_resolves_to_loopback_on_a_thread);
    RUN(addresses_come_in_order_up_to_cap);
    RUN(resolver_errors_map_to_codes);
    RUN(a_cancelled_caller_leaves_at_once_and_the_lookup_is_dropped);
    RUN(a_deadline_that_passes_ends_the_wait_not_the_lookup);
    RUN(the_loops_close_waits_for_a_lookup_under_way);
    RUN(connect_by_name_tries_each_address_in_order);
    RUN(a_cancel_or_a_deadline_ends_the_tries);
    RUN(happy_eyeballs_begins_the_next_address_after_the_delay);
    RUN(a_cancel_ends_the_race);
    RUN(a_failed_attempt_begins_the_next_at_once);
    RUN(interleave_alternates_the_families);
    RUN(a_dense_task_races);
    RUN(connect_opts_misuse);
    RUN(an_address_has_a_name_looked_up_on_a_thread);
    RUN(an_address_name_outside_a_task);
    RUN(a_cancelled_or_late_name_lookup_is_dropped);
    RUN(each_allocation_of_a_name_lookup_failing_in_turn_loses_nothing);
    RUN(a_dense_task_resolves_into_its_own_stack);
    RUN(each_allocation_failing_in_turn_loses_nothing);
    return 0;
}
