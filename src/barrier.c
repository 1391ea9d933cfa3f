/*
 * asyncio.Barrier on the waiting layer.
 *
 * The round being filled is the wait queue: `arrived` counts its tasks
 * (always q.n). The arrival that completes the round hands every queued task
 * its index, in arrival order (0 .. parties-2; the completing arrival itself
 * gets parties-1), grants them all at once and empties the round, so the
 * next arrival starts the next round at once: there is no draining state,
 * because a granted task is out of the round before it runs. Indices are
 * given at completion, so a task that left the round (cancelled, timed out)
 * never leaves a gap or a duplicate.
 */
#include <limits.h>

#include "waitq.h"

enum { FILLING, BROKEN };

static void barrier_cancel(cosync__waiter *w)
{
    cosync_barrier *b = w->obj;
    cosync__waitq_remove(&b->q, w);
    b->arrived--; /* out of the round: the others wait for one more */
}

static void barrier_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_barrier *b = w->obj;
    snprintf(buf, size, "barrier %p (%u of %u arrived)", w->obj, (unsigned)b->arrived,
             (unsigned)b->parties);
}

static const cosync__waiter_ops barrier_ops = {"barrier", barrier_cancel, barrier_describe, NULL};

int cosync_barrier_init(cosync_barrier *barrier, unsigned parties)
{
    /* the index is returned as an int */
    if (parties == 0 || parties > INT_MAX)
        return COSYNC_EINVAL;
    *barrier = (cosync_barrier)COSYNC_BARRIER_INIT(parties);
    return 0;
}

/* The last arrival of a round: it releases the others, indices in arrival
 * order, and gets the last index itself. Out of line, so that the other
 * arrivals' path needs no saved registers. */
static __attribute__((noinline)) int complete_round(cosync_barrier *barrier)
{
    size_t waited = cosync__waitq_grant_each(&barrier->q, 0, 1);
    barrier->arrived = 0;
    return (int)waited; /* parties - 1 */
}

int cosync_barrier_wait(cosync_barrier *barrier, int64_t deadline)
{
    if (__builtin_expect(barrier->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(barrier->parties == 0 || barrier->parties > INT_MAX, 0))
        return COSYNC_EINVAL; /* a bad static initialiser */
    if (barrier->state == BROKEN)
        return COSYNC_EBROKEN;
    /* checked here, before the arrival counts: the completing arrival
     * grants the round's tasks, which must be of this loop */
    struct cosync__task *cur = cosync__current();
    if (__builtin_expect(!cur, 0) || (barrier->q.loop && barrier->q.loop != cur->loop))
        return COSYNC_EPERM;
    if (barrier->arrived + 1 == barrier->parties)
        return complete_round(barrier);
    barrier->arrived++;
    /* deadline 0, a passed deadline or a pending cancellation take the
     * arrival back through barrier_cancel */
    return cosync__waitq_wait(&barrier->q, &barrier_ops, barrier, 0, deadline);
}

/* Send every task of the round away with COSYNC_EBROKEN. */
static void break_round(cosync_barrier *b)
{
    b->arrived = 0;
    cosync__waitq_grant_all(&b->q, COSYNC_EBROKEN);
}

int cosync_barrier_abort(cosync_barrier *barrier)
{
    if (barrier->dead)
        return COSYNC_EINVAL;
    barrier->state = BROKEN;
    break_round(barrier);
    return 0;
}

int cosync_barrier_reset(cosync_barrier *barrier)
{
    if (barrier->dead)
        return COSYNC_EINVAL;
    break_round(barrier);
    barrier->state = FILLING;
    return 0;
}

bool cosync_barrier_broken(const cosync_barrier *barrier)
{
    return barrier->state == BROKEN;
}

unsigned cosync_barrier_n_waiting(const cosync_barrier *barrier)
{
    return barrier->arrived;
}

unsigned cosync_barrier_parties(const cosync_barrier *barrier)
{
    return barrier->parties;
}

int cosync_barrier_destroy(cosync_barrier *barrier)
{
    if (barrier->dead)
        return COSYNC_EINVAL;
    if (!cosync__waitq_empty(&barrier->q))
        return COSYNC_EBUSY;
    barrier->dead = 1;
    return 0;
}
