/*
 * asyncio.Lock on the waiting layer, with strict FIFO hand-off: release()
 * gives the lock to the first waiter at once (the lock stays locked, its
 * owner becomes the grantee), so a newcomer can never barge in between.
 * Invariant: an unlocked lock has no waiters. A waiter that leaves (cancel,
 * deadline) therefore owes nothing to the others.
 */
#include "lock.h"
#include "waitq.h"

static void lock_cancel(cosync__waiter *w)
{
    cosync_lock *lock = w->obj;
    cosync__waitq_remove(&lock->q, w);
}

static void lock_describe(const cosync__waiter *w, char *buf, size_t size)
{
    cosync_lock *lock = w->obj;
    struct cosync__task *o = lock->owner;
    unsigned long long id = lock->owner_id;
    if (lock->dead) {
        snprintf(buf, size, "lock %p (destroyed)", (void *)lock);
        return;
    }
    if (!lock->locked) {
        snprintf(buf, size, "lock %p (free)", (void *)lock);
        return;
    }
    switch (cosync__holder_state(cosync__waiter_task(w), o, lock->owner_id, lock->owner_loop)) {
    case COSYNC__HOLDER_ALIVE:
        snprintf(buf, size, "lock %p held by task '%s' (#%llu)", (void *)lock, cosync__task_name(o),
                 id);
        break;
    case COSYNC__HOLDER_FINISHED:
        snprintf(buf, size, "lock %p held by a finished task (#%llu)", (void *)lock, id);
        break;
    default:
        snprintf(buf, size, "lock %p held by a task of another loop (#%llu)", (void *)lock, id);
    }
}

static const cosync__waiter_ops lock_ops = {
    .what = "lock", .cancel = lock_cancel, .describe = lock_describe};

static inline void take(cosync_lock *lock, struct cosync__task *t)
{
    lock->locked = true;
    lock->owner = t;
    lock->owner_id = t->id;
    lock->owner_loop = t->loop->serial;
}

void cosync_lock_init(cosync_lock *lock)
{
    *lock = (cosync_lock)COSYNC_LOCK_INIT;
}

int cosync__lock_acquire_slow(cosync_lock *lock, int64_t deadline)
{
    if (__builtin_expect(lock->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(!lock->locked && lock->q.n == 0, 1)) {
        /* free and nobody waits (a free lock never has waiters): take it */
        struct cosync__task *cur = cosync__current();
        if (__builtin_expect(!cur, 0))
            return COSYNC_EPERM;
        take(lock, cur);
        return 0;
    }
    /* a release hands the lock over and grants the wait: the owner is set */
    return cosync__waitq_wait(&lock->q, &lock_ops, lock, 0, deadline);
}

int cosync__lock_acquire_shielded(cosync_lock *lock)
{
    if (lock->dead)
        return COSYNC_EINVAL; /* destroyed under a condition's wait: a misuse */
    struct cosync__task *cur = cosync__current();
    if (cur && !lock->locked) { /* free: nobody waits */
        take(lock, cur);
        return 0;
    }
    int rc = cosync__bind_loop(&lock->q.loop, &cur);
    if (rc)
        return rc;
    cosync__waiter *w = cosync__waiter_prepare(cur, &lock_ops, lock);
    w->shielded = true;
    cosync__list_push_back(&lock->q.list, &w->node);
    lock->q.n++;
    return cosync__wait(w, COSYNC_FOREVER); /* 0: nothing else can end it */
}

int cosync__lock_release_slow(cosync_lock *lock)
{
    if (__builtin_expect(lock->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(!lock->locked, 0))
        return COSYNC_EPERM;
    /* a second release before the grantee ran would hand the lock to a
     * second waiter while the first still counts on it */
    if (__builtin_expect(
            cosync__handed_over(lock->owner, lock->owner_id, lock->owner_loop, lock, &lock->q), 0))
        return COSYNC_EPERM;
#ifdef COSYNC_DEBUG
    if (__builtin_expect(!cosync__lock_held(lock), 0))
        cosync__report_foreign_release("lock", lock, "holder", lock->owner_id);
#endif
    cosync__waiter *w = cosync__waitq_head(&lock->q);
    if (w) {
        /* hand-off: the lock stays locked, and is the grantee's from now */
        take(lock, cosync__waiter_task(w));
        cosync__waitq_grant(&lock->q, w, 0);
    } else {
        lock->locked = false; /* the holder's fields stay, unread until the next take */
    }
    return 0;
}

bool cosync_lock_locked(const cosync_lock *lock)
{
    return lock->locked && !lock->dead;
}

size_t cosync_lock_waiters(const cosync_lock *lock)
{
    return lock->dead ? 0 : lock->q.n;
}

int cosync_lock_destroy(cosync_lock *lock)
{
    if (lock->dead)
        return COSYNC_EINVAL;
    if (lock->locked || lock->q.n)
        return COSYNC_EBUSY;
    lock->dead = 1;
    /* locked by nobody: the inlined fast paths take the slow ones (sync.h) */
    lock->locked = true;
    lock->owner = NULL;
    lock->owner_id = COSYNC__LOCK_DEAD_OWNER;
    return 0;
}
