/*
 * Latch (a countdown latch, the seed's CountDownLatch) and WaitGroup (Go's
 * sync.WaitGroup): both are a counter whose waiters are all released when
 * it reaches zero. The counter logic is here once; the two differ only in
 * how the count may move (a latch only counts down, once; a wait group goes
 * up and down, and can be reused).
 */
#include <stddef.h>
#include <stdio.h>

#include "waitq.h"

/* Both objects start with their queue, so a waiter's obj is also a pointer
 * to it (a pointer to a struct converts to one to its first member). */
_Static_assert(offsetof(cosync_latch, q) == 0, "the latch starts with its queue");
_Static_assert(offsetof(cosync_waitgroup, q) == 0, "the wait group starts with its queue");

/* ---- the counter that opens at zero --------------------------------- */

static void counter_cancel(cosync__waiter *w)
{
    cosync__waitq_remove((cosync__waitq *)w->obj, w); /* nothing is owed to others */
}

static void counter_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const int64_t *count = (const int64_t *)w->data;
    snprintf(buf, size, "%s %p (count %lld)", w->ops->what, w->obj, (long long)*count);
}

static const cosync__waiter_ops latch_ops = {"latch", counter_cancel, counter_describe, NULL};
static const cosync__waiter_ops waitgroup_ops = {"waitgroup", counter_cancel, counter_describe,
                                                 NULL};

/* Add @delta to *@count; at zero, every waiter is released. */
static int counter_add(cosync__waitq *q, int64_t *count, int64_t delta)
{
    int64_t n;
    if (__builtin_add_overflow(*count, delta, &n))
        return delta > 0 ? COSYNC_EOVERFLOW : COSYNC_EINVAL;
    if (n < 0)
        return COSYNC_EINVAL;
    *count = n;
    if (n == 0 && !cosync__waitq_empty(q))
        cosync__waitq_grant_all(q, 0);
    return 0;
}

/* Wait until *@count is zero: at once if it is. */
static int counter_wait(cosync__waitq *q, int64_t *count, const cosync__waiter_ops *ops,
                        int64_t deadline)
{
    if (*count == 0)
        return 0;
    return cosync__waitq_wait(q, ops, q, (uintptr_t)count, deadline);
}

static int counter_destroy(cosync__waitq *q, uint8_t *dead)
{
    if (*dead)
        return COSYNC_EINVAL;
    if (!cosync__waitq_empty(q))
        return COSYNC_EBUSY;
    *dead = 1;
    return 0;
}

/* ---- Latch ---------------------------------------------------------- */

/* Neither destroyed nor made with a negative count by the static
 * initialiser (which cosync_latch_init refuses). */
static inline bool latch_usable(const cosync_latch *latch)
{
    return !latch->dead && latch->count >= 0;
}

int cosync_latch_init(cosync_latch *latch, int64_t count)
{
    if (count < 0)
        return COSYNC_EINVAL;
    *latch = (cosync_latch)COSYNC_LATCH_INIT(count);
    return 0;
}

int cosync_latch_count_down(cosync_latch *latch)
{
    if (!latch_usable(latch))
        return COSYNC_EINVAL;
    if (latch->count == 0)
        return COSYNC_EALREADY;
    return counter_add(&latch->q, &latch->count, -1);
}

int cosync_latch_wait(cosync_latch *latch, int64_t deadline)
{
    if (!latch_usable(latch))
        return COSYNC_EINVAL;
    return counter_wait(&latch->q, &latch->count, &latch_ops, deadline);
}

int64_t cosync_latch_count(const cosync_latch *latch)
{
    return latch->dead || latch->count < 0 ? COSYNC_EINVAL : latch->count;
}

int cosync_latch_destroy(cosync_latch *latch)
{
    return counter_destroy(&latch->q, &latch->dead);
}

/* ---- WaitGroup ------------------------------------------------------ */

void cosync_waitgroup_init(cosync_waitgroup *wg)
{
    *wg = (cosync_waitgroup)COSYNC_WAITGROUP_INIT;
}

int cosync_waitgroup_add(cosync_waitgroup *wg, int64_t delta)
{
    if (wg->dead)
        return COSYNC_EINVAL;
    return counter_add(&wg->q, &wg->count, delta);
}

int cosync_waitgroup_done(cosync_waitgroup *wg)
{
    return cosync_waitgroup_add(wg, -1);
}

int cosync_waitgroup_wait(cosync_waitgroup *wg, int64_t deadline)
{
    if (wg->dead)
        return COSYNC_EINVAL;
    return counter_wait(&wg->q, &wg->count, &waitgroup_ops, deadline);
}

int64_t cosync_waitgroup_count(const cosync_waitgroup *wg)
{
    return wg->dead ? COSYNC_EINVAL : wg->count;
}

int cosync_waitgroup_destroy(cosync_waitgroup *wg)
{
    return counter_destroy(&wg->q, &wg->dead);
}
