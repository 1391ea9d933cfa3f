/*
 * Names to addresses: getaddrinfo(3) on a thread of the loop's default
 * pool, as asyncio's loop.getaddrinfo does.
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

struct lookup {
    struct addrinfo hints;
    cosync_event done;
    int rc;         /* a count of addresses, or an error */
    bool started;   /* the helper task has run */
    bool abandoned; /* the caller has left: the helper frees the record */
    size_t cap;
    cosync_addr *addrs; /* cap of them, after the host's name */
    char port[8];
    char host[];
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

static int lookup_on_thread(void *arg, void **result)
{
    struct lookup *l = arg;
    (void)result;
    return lookup_now(l->host, l->port, &l->hints, l->addrs, l->cap);
}

/* The helper task: waits for the thread, then hands over or cleans up. */
static int await_lookup(void *arg, void **result)
{
    struct lookup *l = arg;
    (void)result;
    l->started = true;
    /* cancelled (by the loop's close), a lookup that started is still
     * waited for: the thread is done with the record when this returns */
    l->rc = cosync_to_thread(lookup_on_thread, l, NULL, COSYNC_FOREVER);
    if (l->abandoned)
        cosync__mem_free(NULL, l);
    else
        cosync_event_set(&l->done);
    return 0;
}

/* The helper starts eagerly, so that one that could never run (no stack,
 * or cancelled by the loop's close before it starts) is seen here, and
 * not left holding the record. */
static int start_helper(struct lookup *l)
{
    cosync_task helper;
    return cosync__spawn_started(&helper, await_lookup, l, &(cosync_task_opts){.name = "resolve"},
                                 &l->started);
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
    if (deadline == 0)
        return COSYNC_EAGAIN;
    if (!cosync__current())
        return COSYNC_EPERM;
    size_t hostlen = strlen(host) + 1;
    if (cap > (SIZE_MAX - sizeof(struct lookup) - hostlen) / sizeof *addrs - 1)
        return COSYNC_EINVAL;
    size_t addrs_at = (sizeof(struct lookup) + hostlen + _Alignof(cosync_addr) - 1) /
                      _Alignof(cosync_addr) * _Alignof(cosync_addr);
    struct lookup *l = cosync__mem_alloc(NULL, addrs_at + cap * sizeof *addrs);
    if (!l)
        return COSYNC_ENOMEM;
    hints.ai_flags = AI_NUMERICSERV;
    *l = (struct lookup){.hints = hints, .done = COSYNC_EVENT_INIT, .cap = cap};
    memcpy(l->host, host, hostlen);
    memcpy(l->port, service, sizeof service);
    l->addrs = (cosync_addr *)((char *)l + addrs_at);
    if ((rc = start_helper(l)) != 0) {
        cosync__mem_free(NULL, l);
        return rc;
    }
    rc = cosync_event_wait(&l->done, deadline);
    if (rc != 0) {
        l->abandoned = true;
        return rc;
    }
    rc = l->rc;
    if (rc > 0)
        memcpy(addrs, l->addrs, (size_t)rc * sizeof *addrs);
    cosync__mem_free(NULL, l);
    return rc;
}
