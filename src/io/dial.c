/*
 * A TCP connect by host name (asyncio.open_connection(host, port)'s
 * socket part): the host's addresses tried one at a time, or raced with
 * Happy Eyeballs (RFC 8305; asyncio's happy_eyeballs_delay and
 * interleave, trio's open_tcp_stream, Go's Dialer.FallbackDelay).
 *
 * A race is run by the calling task alone: each attempt is a socket that
 * connects without waiting, put in an epoll of the call's own (the
 * poller), and the task waits for the poller, or for the next attempt's
 * turn. No task, one small allocation (the poller's handle), and a
 * cancel or a deadline closes every attempt before the call returns.
 */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "core.h"
#include "fault.h"

/* The addresses tried by a connect by name, at most. */
#define CONNECT_TRIES 16

/* Reorder @a as RFC 8305 (section 4) and asyncio's _interleave_addrinfos
 * do: @first addresses of the first address's family, then one of each
 * family in turn (a resolver gives two families at most). */
static void interleave(cosync_addr *a, int n, int first)
{
    int own[CONNECT_TRIES], other[CONNECT_TRIES], nown = 0, nother = 0;
    for (int i = 0; i < n; i++) {
        if (a[i].u.sa.sa_family == a[0].u.sa.sa_family)
            own[nown++] = i;
        else
            other[nother++] = i;
    }
    int order[CONNECT_TRIES], k = 0, x = 0, y = 0;
    while (x < nown && x < first - 1)
        order[k++] = own[x++];
    while (x < nown || y < nother) {
        if (x < nown)
            order[k++] = own[x++];
        if (y < nother)
            order[k++] = other[y++];
    }
    cosync_addr was[CONNECT_TRIES];
    memcpy(was, a, (size_t)n * sizeof *a);
    for (int i = 0; i < n; i++)
        a[i] = was[order[i]];
}

/* One address after the other, each once the one before has failed. */
static int one_at_a_time(cosync_io *io, const cosync_addr *addrs, int n, int64_t deadline)
{
    int rc = 0;
    for (int i = 0; i < n; i++) {
        rc = cosync_tcp_connect(io, &addrs[i], deadline);
        if (rc == 0 || rc == COSYNC_ECANCELED || rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN)
            break;
    }
    return rc;
}

/* A race of connection attempts (Happy Eyeballs). */
struct race {
    /* the handle the task waits on, off its stack: the loop writes to a
     * handle while a task waits on it, and a dense task gives its stack
     * up meanwhile (the attempts are never waited on) */
    cosync_io *poller;
    cosync_io att[CONNECT_TRIES]; /* the attempts begun; open while in_flight */
    bool in_flight[CONNECT_TRIES];
    int begun, winner;
    int err;         /* the last attempt's failure */
    int64_t next_at; /* when the next attempt begins, unless one fails first */
};

/* Begin attempt @i at @addr. */
static void begin_attempt(struct race *r, const cosync_addr *addr, int64_t delay)
{
    int i = r->begun++;
    cosync_io *a = &r->att[i];
    r->next_at = cosync_deadline_after(delay);
    int rc = cosync_sock_open(a, addr->u.sa.sa_family, SOCK_STREAM);
    if (rc) {
        r->err = rc;
        return;
    }
    rc = cosync__connect_begin(a, addr);
    if (rc == -EINPROGRESS) {
        struct epoll_event ev = {.events = EPOLLOUT, .data.u32 = (uint32_t)i};
        rc = epoll_ctl(r->poller->fd, EPOLL_CTL_ADD, a->fd, &ev) < 0 ? -errno : -EINPROGRESS;
    }
    if (rc == 0 || rc == -EINPROGRESS) {
        r->in_flight[i] = true;
        if (rc == 0)
            r->winner = i;
    } else {
        (void)cosync_io_close(a);
        r->err = rc;
    }
}

/* Look at the attempts the poller says have an outcome. */
static void collect(struct race *r)
{
    struct epoll_event evs[CONNECT_TRIES];
    int n = epoll_wait(r->poller->fd, evs, CONNECT_TRIES, 0);
    for (int k = 0; k < n && r->winner < 0; k++) {
        int i = (int)evs[k].data.u32;
        int rc = cosync__connect_outcome(&r->att[i]);
        if (rc == 0) {
            r->winner = i;
        } else if (rc != -EINPROGRESS) { /* failed: the next one begins now */
            (void)cosync_io_close(&r->att[i]);
            r->in_flight[i] = false;
            r->err = rc;
            r->next_at = cosync_now();
        }
    }
}

/* Whether an attempt is still connecting (while no attempt has won). */
static bool racing(const struct race *r)
{
    for (int i = 0; i < r->begun; i++)
        if (r->in_flight[i])
            return true;
    return false;
}

static int open_poller(cosync_io **poller)
{
    if (!(*poller = cosync__mem_alloc(NULL, sizeof **poller)))
        return COSYNC_ENOMEM;
    int rc = cosync__epoll_open(*poller);
    if (rc) {
        cosync__mem_free(NULL, *poller);
        *poller = NULL;
    }
    return rc;
}

static void close_poller(cosync_io *poller)
{
    if (poller) {
        (void)cosync_io_close(poller);
        cosync__mem_free(NULL, poller);
    }
}

/* Race the attempts: each begins when the one before has had @delay, or
 * has failed; the first to connect wins, the others are closed. */
static int race(cosync_io *io, const cosync_addr *addrs, int n, int64_t delay, int64_t deadline)
{
    struct race r = {.winner = -1};
    int rc = open_poller(&r.poller);
    while (rc == 0 && r.winner < 0) {
        bool live = racing(&r);
        if (r.begun < n && (!live || cosync_now() >= r.next_at)) {
            begin_attempt(&r, &addrs[r.begun], delay);
            continue;
        }
        if (!live) {
            rc = r.err; /* every one has failed */
            break;
        }
        bool turn_first = deadline == COSYNC_FOREVER || r.next_at < deadline;
        int64_t until = r.begun < n && turn_first ? r.next_at : deadline;
        rc = cosync_io_wait(r.poller, COSYNC_IO_READ, until);
        if (rc == COSYNC_ETIMEDOUT && until != deadline)
            rc = 0; /* the next attempt's turn */
        if (rc >= 0) {
            rc = 0;
            collect(&r);
        }
    }
    for (int i = 0; i < r.begun; i++)
        if (r.in_flight[i] && i != r.winner)
            (void)cosync_io_close(&r.att[i]);
    close_poller(r.poller);
    if (r.winner < 0)
        return rc;
    cosync__io_adopt(io, cosync_io_release(&r.att[r.winner]));
    return 0;
}

int cosync_tcp_connect_host_with(cosync_io *io, const char *host, uint16_t port,
                                 const cosync_connect_opts *opts, int64_t deadline)
{
    cosync_connect_opts o = opts ? *opts : (cosync_connect_opts){0};
    if (!io || o.happy_eyeballs_delay < 0 || o.interleave < COSYNC_CONNECT_NO_INTERLEAVE)
        return COSYNC_EINVAL;
    *io = (cosync_io){0}; /* closed, until an address connects */
    cosync_addr addrs[CONNECT_TRIES];
    int n = cosync_addr_resolve(host, port, AF_UNSPEC, addrs, CONNECT_TRIES, deadline);
    if (n <= 0)
        return n < 0 ? n : COSYNC_ENONAME;
    int first = o.interleave ? o.interleave : o.happy_eyeballs_delay > 0;
    if (first > 0)
        interleave(addrs, n, first);
    if (o.happy_eyeballs_delay > 0)
        return race(io, addrs, n, o.happy_eyeballs_delay, deadline);
    return one_at_a_time(io, addrs, n, deadline);
}

int cosync_tcp_connect_host(cosync_io *io, const char *host, uint16_t port, int64_t deadline)
{
    return cosync_tcp_connect_host_with(io, host, port, NULL, deadline);
}
