/*
 * A rate limiter: a token bucket on the waiting layer.
 *
 * The bucket's content is kept as credit in units of 1/rate of a period:
 * a token is `period` units and the bucket gains `rate` units a
 * nanosecond, so that every quantity is an exact integer (no rounding
 * drifts over a long run) and "rate tokens a period" holds to the
 * nanosecond. The credit is brought up to date lazily, from the loop's
 * clock, when the limiter is used.
 *
 * Waiters queue in arrival order; the head is granted as soon as the
 * bucket holds its tokens, which the limiter's own timer, armed for the
 * head, says: nobody behind the head is served before it.
 */
#include "waitq.h"

static bool valid(const cosync_ratelimit *rl)
{
    return !rl->dead && rl->rate >= 1 && rl->period >= 1 && rl->burst >= 1 &&
           rl->burst <= COSYNC_RATELIMIT_MAX_SPAN / rl->period;
}

static int64_t capacity(const cosync_ratelimit *rl)
{
    return rl->burst * rl->period;
}

/* Bring the credit up to date at @now. */
static void refill(cosync_ratelimit *rl, int64_t now)
{
    int64_t cap = capacity(rl);
    if (rl->last == COSYNC_FOREVER) {
        rl->credit = cap; /* first use: full */
    } else if (now > rl->last) {
        int64_t room = cap - rl->credit;
        int64_t elapsed = now - rl->last;
        /* elapsed * rate, without overflow: at most room while elapsed is
         * at most room / rate; past that, it is full */
        rl->credit = elapsed > room / rl->rate ? cap : rl->credit + elapsed * rl->rate;
    }
    /* a clock behind the last one seen (another loop's, or the monotonic
     * clock outside any loop) starts the count afresh from now */
    rl->last = now;
}

/* Nanoseconds until the bucket holds @need units (0 if it does). */
static int64_t time_to(const cosync_ratelimit *rl, int64_t need)
{
    if (rl->credit >= need)
        return 0;
    int64_t missing = need - rl->credit;
    return missing / rl->rate + (missing % rl->rate != 0);
}

static void fire(cosync__timer *timer);

/* Grant the waiters from the head while the bucket holds their tokens;
 * then arm the timer for the head left, if any. */
static void serve(cosync_ratelimit *rl, int64_t now)
{
    cosync_loop *loop = rl->q.loop;
    if (!loop)
        return;
    refill(rl, now);
    cosync__waiter *w;
    while ((w = cosync__waitq_head(&rl->q)) && time_to(rl, (int64_t)w->data) == 0) {
        rl->credit -= (int64_t)w->data;
        cosync__waitq_grant(&rl->q, w, 0);
    }
    if (w) {
        rl->timer.fire = fire;
        cosync__timer_arm(&loop->timers, &rl->timer, now + time_to(rl, (int64_t)w->data));
    } else {
        cosync__timer_disarm(&loop->timers, &rl->timer);
    }
}

static void fire(cosync__timer *timer)
{
    cosync_ratelimit *rl = cosync__container_of(timer, cosync_ratelimit, timer);
    serve(rl, rl->q.loop->now);
}

static void rl_cancel(cosync__waiter *w)
{
    cosync_ratelimit *rl = w->obj;
    cosync_loop *loop = rl->q.loop;
    bool was_head = cosync__waitq_head(&rl->q) == w;
    if (rl->q.n == 1) /* the last: the queue forgets its loop */
        cosync__timer_disarm(&loop->timers, &rl->timer);
    cosync__waitq_remove(&rl->q, w);
    /* the head was holding the line: the next may be served, or wait
     * for another time */
    if (was_head)
        serve(rl, loop->now);
}

static void rl_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_ratelimit *rl = w->obj;
    snprintf(buf, size, "rate limiter %p (%lld a period of %lld ns, %u waiting, wants %lld)",
             w->obj, (long long)rl->rate, (long long)rl->period, (unsigned)rl->q.n,
             (long long)(int64_t)(w->data / (uintptr_t)rl->period));
}

static const cosync__waiter_ops rl_ops = {"rate limiter", rl_cancel, rl_describe, NULL};

int cosync_ratelimit_init(cosync_ratelimit *rl, int64_t rate, int64_t period, int64_t burst)
{
    if (!rl)
        return COSYNC_EINVAL;
    *rl = (cosync_ratelimit)COSYNC_RATELIMIT_INIT(rate, period, burst);
    return valid(rl) ? 0 : COSYNC_EINVAL;
}

int cosync_ratelimit_acquire(cosync_ratelimit *rl, int64_t n, int64_t deadline)
{
    if (!valid(rl) || n < 1 || n > rl->burst)
        return COSYNC_EINVAL;
#if UINTPTR_MAX < INT64_MAX
    if ((uint64_t)(n * rl->period) > UINTPTR_MAX)
        return COSYNC_EINVAL; /* does not fit in the waiter */
#endif
    int64_t need = n * rl->period;
    if (cosync__waitq_empty(&rl->q)) {
        refill(rl, cosync_now());
        if (rl->credit >= need) {
            rl->credit -= need;
            return 0;
        }
    }
    struct cosync__task *cur;
    int rc = cosync__bind_loop(&rl->q.loop, &cur);
    if (rc)
        return rc;
    cosync__waiter *w = cosync__waiter_prepare(cur, &rl_ops, rl);
    w->data = (uintptr_t)need;
    cosync__list_push_back(&rl->q.list, &w->node);
    if (++rl->q.n == 1)
        serve(rl, cur->loop->now); /* the new head: arm the timer for it */
    return cosync__wait(w, deadline);
}

int64_t cosync_ratelimit_tokens(cosync_ratelimit *rl)
{
    if (!valid(rl))
        return COSYNC_EINVAL;
    refill(rl, rl->q.loop ? rl->q.loop->now : cosync_now());
    return rl->credit / rl->period;
}

size_t cosync_ratelimit_waiters(const cosync_ratelimit *rl)
{
    return rl->q.n;
}

int cosync_ratelimit_destroy(cosync_ratelimit *rl)
{
    if (rl->dead)
        return COSYNC_EINVAL;
    if (!cosync__waitq_empty(&rl->q))
        return COSYNC_EBUSY;
    rl->dead = 1;
    return 0;
}
