/*
 * Names to addresses and back: getaddrinfo(3) and getnameinfo(3) on a
 * thread of the loop's default pool, as asyncio's loop.getaddrinfo and
 * loop.getnameinfo do.
 *
 * getaddrinfo cannot be stopped, and a resolver may take seconds to give
 * up, so the caller does not wait for the thread itself: a helper task
 * does, in a record of its own. A caller whose deadline passes, or who is
 * cancelled, leaves at once and the helper frees the record when the
 * lookup ends (trio and asyncio abandon the thread in the same way). A
 * numeric host needs no lookup and no thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>
#include <sys/socket.h>

#include "core.h"
#include "fault.h"

/* What the caller, the helper task and the thread share, at the head of
 * each lookup's record: the caller allocates it, and whoever is last
 * frees it. */
struct job {
    cosync_event done;
    int rc;                      /* the lookup's outcome */
    bool started;                /* the helper task has run */
    bool abandoned;              /* the caller has left: the helper frees the record */
    int (*run)(struct job *job); /* the lookup, on the thread */
};

/* A lookup of a name's addresses. */
struct lookup {
    struct job job;
    struct addrinfo hints;
    size_t cap;
    cosync_addr *addrs; /* cap of them, after the host's name */
    char port[8];
    char host[];
};

/* A lookup of an address's name. */
struct reverse {
    struct job job;
    cosync_addr addr;
    int flags;
    size_t hostlen, servlen; /* the caller's, at most the sizes below */
    char host[NI_MAXHOST];
    char serv[NI_MAXSERV];
};

static int resolve_error(int gai, int err)
{
    switch (gai) {
    case EAI_MEMORY:
        return COSYNC_ENOMEM;
    case EAI_SYSTEM:
        return err ? -err : COSYNC_ENONAME;
    case EAI_BADFLAGS:
    case EAI_FAMILY:
    case EAI_SOCKTYPE:
    case EAI_SERVICE:
        return COSYNC_EINVAL;
    default: /* EAI_NONAME, EAI_NODATA, EAI_ADDRFAMILY, EAI_AGAIN, EAI_FAIL */
        return COSYNC_ENONAME;
    }
}

/* getaddrinfo into @addrs: the count stored, or an error. */
static int lookup_now(const char *host, const char *port, const struct addrinfo *hints,
                      cosync_addr *addrs, size_t cap)
{
    struct addrinfo *list = NULL;
    int gai = getaddrinfo(host, port, hints, &list);
    if (gai != 0)
        return resolve_error(gai, errno);
    int n = 0;
    for (const struct addrinfo *ai = list; ai && (size_t)n < cap && n < INT32_MAX;
         ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof addrs[n].u.storage)
            continue;
        memset(&addrs[n], 0, sizeof addrs[n]);
        memcpy(&addrs[n].u.storage, ai->ai_addr, ai->ai_addrlen);
        addrs[n].len = ai->ai_addrlen;
        n++;
    }
    freeaddrinfo(list);
    return n ? n : COSYNC_ENONAME;
}

static int run_lookup(struct job *job)
{
    struct lookup *l = (struct lookup *)job;
    return lookup_now(l->host, l->port, &l->hints, l->addrs, l->cap);
}

static int job_on_thread(void *arg, void **result)
{
    struct job *job = arg;
    (void)result;
    return job->run(job);
}

/* The helper task: waits for the thread, then hands over or cleans up. */
static int await_job(void *arg, void **result)
{
    struct job *job = arg;
    (void)result;
    job->started = true;
    /* cancelled (by the loop's close), a lookup that started is still
     * waited for: the thread is done with the record when this returns */
    job->rc = cosync_to_thread(job_on_thread, job, NULL, COSYNC_FOREVER);
    if (job->abandoned)
        cosync__mem_free(NULL, job);
    else
        cosync_event_set(&job->done);
    return 0;
}

/* Whether a lookup that needs the thread may begin: COSYNC_EAGAIN for
 * deadline 0 (it would wait), COSYNC_EPERM outside a task (nothing can
 * wait); 0. Before anything is allocated. */
static int may_look_up(int64_t deadline)
{
    if (deadline == 0)
        return COSYNC_EAGAIN;
    return cosync__current() ? 0 : COSYNC_EPERM;
}

/* Run @job on a thread, through a helper task, and wait for it. Returns
 * the lookup's outcome; or what ended the wait, and then the record is
 * the helper's to free (job->abandoned); or what kept the helper from
 * starting, the record still the caller's. The helper starts eagerly, so
 * that one that could never run (no stack, or cancelled by the loop's
 * close before it starts) is seen here, and not left holding the
 * record. */
static int run_job(struct job *job, int (*run)(struct job *), int64_t deadline)
{
    *job = (struct job){.done = COSYNC_EVENT_INIT, .run = run};
    cosync_task helper;
    int rc = cosync__spawn_started(&helper, await_job, job, &(cosync_task_opts){.name = "resolve"},
                                   &job->started);
    if (rc == 0 && (rc = cosync_event_wait(&job->done, deadline)) != 0)
        job->abandoned = true;
    return rc ? rc : job->rc;
}

static bool is_numeric(const char *host)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, host, buf) == 1 || inet_pton(AF_INET6, host, buf) == 1;
}

static bool valid_family(int family)
{
    return family == AF_UNSPEC || family == AF_INET || family == AF_INET6;
}

int cosync_addr_resolve(const char *host, uint16_t port, int family, cosync_addr *addrs, size_t cap,
                        int64_t deadline)
{
    if (!host || !addrs || cap == 0 || !valid_family(family))
        return COSYNC_EINVAL;
    struct addrinfo hints = {.ai_family = family, .ai_socktype = SOCK_STREAM};
    char service[8];
    snprintf(service, sizeof service, "%u", (unsigned)port);
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    int rc = lookup_now(host, service, &hints, addrs, cap);
    if (rc != COSYNC_ENONAME || !*host || is_numeric(host))
        return rc; /* a numeric host (of another family, if no address), or bad arguments */
    if ((rc = may_look_up(deadline)) != 0)
        return rc;
    size_t hostlen = strlen(host) + 1;
    if (cap > (SIZE_MAX - sizeof(struct lookup) - hostlen) / sizeof *addrs - 1)
        return COSYNC_EINVAL;
    size_t addrs_at = (sizeof(struct lookup) + hostlen + _Alignof(cosync_addr) - 1) /
                      _Alignof(cosync_addr) * _Alignof(cosync_addr);
    struct lookup *l = cosync__mem_alloc(NULL, addrs_at + cap * sizeof *addrs);
    if (!l)
        return COSYNC_ENOMEM;
    hints.ai_flags = AI_NUMERICSERV;
    *l = (struct lookup){.hints = hints, .cap = cap};
    memcpy(l->host, host, hostlen);
    memcpy(l->port, service, sizeof service);
    l->addrs = (cosync_addr *)((char *)l + addrs_at);
    rc = run_job(&l->job, run_lookup, deadline);
    if (l->job.abandoned)
        return rc;
    if (rc > 0)
        memcpy(addrs, l->addrs, (size_t)rc * sizeof *addrs);
    cosync__mem_free(NULL, l);
    return rc;
}

/* ---- an address's name ------------------------------------------------ */

static int name_error(int gai, int err)
{
    return gai == EAI_OVERFLOW ? COSYNC_EOVERFLOW : resolve_error(gai, err);
}

static int reverse_now(const cosync_addr *addr, char *host, size_t hostlen, char *serv,
                       size_t servlen, int flags)
{
    int gai = getnameinfo(&addr->u.sa, addr->len, host, (socklen_t)hostlen, serv,
                          (socklen_t)servlen, flags);
    return gai ? name_error(gai, errno) : 0;
}

static int run_reverse(struct job *job)
{
    struct reverse *r = (struct reverse *)job;
    return reverse_now(&r->addr, r->hostlen ? r->host : NULL, r->hostlen,
                       r->servlen ? r->serv : NULL, r->servlen, r->flags);
}

/* Whether getnameinfo can answer without a lookup: each part asked for
 * is asked for as a number. */
static bool numeric_only(size_t hostlen, size_t servlen, int flags)
{
    return (!hostlen || (flags & NI_NUMERICHOST)) && (!servlen || (flags & NI_NUMERICSERV));
}

static size_t at_most(size_t n, size_t max)
{
    return n < max ? n : max;
}

static void ask(struct reverse *r, const cosync_addr *addr, size_t hostlen, size_t servlen,
                int flags)
{
    r->addr = *addr;
    r->flags = flags;
    r->hostlen = at_most(hostlen, sizeof r->host);
    r->servlen = at_most(servlen, sizeof r->serv);
}

/* The answer in @r to the caller's buffers (it fits: getnameinfo had
 * their sizes, or less). */
static void answer(const struct reverse *r, char *host, char *serv)
{
    if (r->hostlen)
        memcpy(host, r->host, strlen(r->host) + 1);
    if (r->servlen)
        memcpy(serv, r->serv, strlen(r->serv) + 1);
}

int cosync_addr_lookup_name(const cosync_addr *addr, char *host, size_t hostlen, char *serv,
                            size_t servlen, int flags, int64_t deadline)
{
    if (!addr || (!host && hostlen) || (!serv && servlen) || (!hostlen && !servlen) ||
        addr->len > sizeof addr->u.storage)
        return COSYNC_EINVAL;
    if (numeric_only(hostlen, servlen, flags)) {
        struct reverse now;
        ask(&now, addr, hostlen, servlen, flags);
        int rc = run_reverse(&now.job);
        if (rc == 0)
            answer(&now, host, serv);
        return rc;
    }
    int rc = may_look_up(deadline);
    if (rc)
        return rc;
    struct reverse *r = cosync__mem_alloc(NULL, sizeof *r);
    if (!r)
        return COSYNC_ENOMEM;
    ask(r, addr, hostlen, servlen, flags);
    rc = run_job(&r->job, run_reverse, deadline);
    if (r->job.abandoned)
        return rc;
    if (rc == 0)
        answer(r, host, serv);
    cosync__mem_free(NULL, r);
    return rc;
}
