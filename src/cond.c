/*
 * asyncio.Condition on the waiting layer, on its own Lock or a shared one.
 *
 * wait() releases the lock (handing it to the next lock waiter), queues on
 * the condition and waits for a notify; then it re-acquires the lock with a
 * shielded wait, so that it always returns with the lock held. notify(n)
 * grants up to n waiters in FIFO order; they become ready in that order and
 * so queue for the lock in that order. A notify is never lost: a waiter
 * cancelled after its notify, before it ran, forwards the notify to the
 * next waiter (as asyncio 3.13 does) and its wait returns COSYNC_ECANCELED
 * (with the lock held, as always).
 */
#include "lock.h"
#include "waitq.h"

static inline cosync_lock *lock_of(cosync_cond *cond)
{
    return cond->lock ? cond->lock : &cond->own_lock;
}

static void cond_cancel(cosync__waiter *w)
{
    cosync_cond *cond = w->obj;
    if (w->state == COSYNC__W_GRANTED) {
        /* notified, then cancelled before it ran: the notify moves on */
        cosync__waiter *next = cosync__waitq_head(&cond->q);
        if (next)
            cosync__waitq_grant(&cond->q, next, 0);
        return;
    }
    cosync__waitq_remove(&cond->q, w);
}

static void cond_describe(const cosync__waiter *w, char *buf, size_t size)
{
    cosync_cond *cond = w->obj;
    snprintf(buf, size, "condition %p (lock %p)", (void *)cond, (void *)lock_of(cond));
}

static const cosync__waiter_ops cond_ops = {
    .what = "condition", .cancel = cond_cancel, .describe = cond_describe};

void cosync_cond_init(cosync_cond *cond, cosync_lock *lock)
{
    *cond = (cosync_cond)COSYNC_COND_INIT;
    cond->lock = lock;
}

cosync_lock *cosync_cond_lock(cosync_cond *cond)
{
    return lock_of(cond);
}

bool cosync_cond_locked(const cosync_cond *cond)
{
    return !cond->dead && cosync_lock_locked(cond->lock ? cond->lock : &cond->own_lock);
}

/* The running task, if it holds the condition's lock and the condition is
 * usable from its loop; else the error. */
static int check_holder(cosync_cond *cond, struct cosync__task **curp)
{
    cosync_lock *lock = lock_of(cond);
    if (cond->dead || lock->dead)
        return COSYNC_EINVAL;
    if (!cosync__lock_held(lock))
        return COSYNC_EPERM;
    struct cosync__task *cur = cosync__current();
    if ((cond->q.loop && cond->q.loop != cur->loop) || (lock->q.loop && lock->q.loop != cur->loop))
        return COSYNC_EPERM;
    *curp = cur;
    return 0;
}

int cosync_cond_wait(cosync_cond *cond, int64_t deadline)
{
    struct cosync__task *cur;
    int rc = check_holder(cond, &cur);
    if (rc)
        return rc;
    /* A wait that cannot start (deadline 0 or passed) is not a suspension
     * and never lets go of the lock. A pending cancellation is delivered as
     * every wait delivers it: after the other ready tasks have run (they
     * may take the lock meanwhile), then the lock is re-acquired. */
    if (deadline == 0)
        return COSYNC_EAGAIN;
    if (deadline != COSYNC_FOREVER && deadline <= cur->loop->now && !cur->cancel_pending)
        return COSYNC_ETIMEDOUT;
    cosync_lock *lock = lock_of(cond);
    /* refused before the lock is let go, rather than by the wait (a dense
     * task's wait on its own stack), which would return without it */
    if (cosync__dense_holds(cur, cond) || cosync__dense_holds(cur, lock))
        return COSYNC_EINVAL;
    /* from here until it returns, the wait uses the condition (and its
     * lock) even when it is on no list: notified, or timed out, it has
     * yet to run and take the lock again */
    cond->in_wait++;
    cosync_lock_release(lock); /* to the next lock waiter, if any */
    rc = cosync__waitq_wait_how(&cond->q, &cond_ops, cond, 0, true, deadline);
    int relock = cosync__lock_acquire_shielded(lock);
    cond->in_wait--;
    return relock ? relock : rc;
}

int cosync_cond_wait_for(cosync_cond *cond, cosync_pred_fn pred, void *arg, int64_t deadline)
{
    if (cond->dead || !pred)
        return COSYNC_EINVAL;
    while (!pred(arg)) {
        int rc = cosync_cond_wait(cond, deadline);
        if (rc)
            return rc;
    }
    return 0;
}

int cosync__cond_notify_slow(cosync_cond *cond, int n)
{
    if (n < 0)
        return COSYNC_EINVAL;
    struct cosync__task *cur;
    int rc = check_holder(cond, &cur);
    if (rc)
        return rc;
    int woken = 0;
    cosync__waiter *w;
    while (woken < n && (w = cosync__waitq_head(&cond->q))) {
        cosync__waitq_grant(&cond->q, w, 0);
        woken++;
    }
    return woken;
}

int cosync_cond_notify_all(cosync_cond *cond)
{
    return cosync_cond_notify(cond, INT32_MAX);
}

size_t cosync_cond_waiters(const cosync_cond *cond)
{
    return cond->dead ? 0 : cond->q.n;
}

int cosync_cond_destroy(cosync_cond *cond)
{
    if (cond->dead)
        return COSYNC_EINVAL;
    if (cond->in_wait)
        return COSYNC_EBUSY;
    if (!cond->lock && !cond->own_lock.dead) { /* (destroyed through cosync_cond_lock) */
        int rc = cosync_lock_destroy(&cond->own_lock);
        if (rc)
            return rc;
    }
    cond->dead = 1;
    return 0;
}
