/* Internal: the Lock's shielded acquire, for Condition's re-acquire. */
#ifndef COSYNC_LOCK_H
#define COSYNC_LOCK_H

#include "core.h"

/* Whether the running task @cur holds @lock. */
static inline bool cosync__lock_held_by(const cosync_lock *lock, const struct cosync__task *cur)
{
    return lock->locked && cur && lock->owner == cur && lock->owner_id == cur->id &&
           lock->owner_loop == cur->loop->serial;
}

/*
 * Take @lock for the running task, waiting its turn without a deadline and
 * without being interrupted: a cancellation that comes meanwhile stays
 * pending for the task's next suspension. Returns 0 (the lock is held), or
 * COSYNC_EPERM outside a task or when the lock's waiters are on another loop.
 */
int cosync__lock_acquire_shielded(cosync_lock *lock);

#endif /* COSYNC_LOCK_H */
