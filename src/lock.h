/* Internal: the Lock's shielded acquire, for Condition's re-acquire. */
#ifndef COSYNC_LOCK_H
#define COSYNC_LOCK_H

#include "core.h"

/* Whether the running task holds @lock (false outside a task). */
static inline bool cosync__lock_held(const cosync_lock *lock)
{
    return lock->locked && cosync__lock_is_mine(lock);
}

/*
 * Take @lock for the running task, waiting its turn without a deadline and
 * without being interrupted: a cancellation that comes meanwhile stays
 * pending for the task's next suspension. Returns 0 (the lock is held), or
 * COSYNC_EPERM outside a task or when the lock's waiters are on another loop.
 */
int cosync__lock_acquire_shielded(cosync_lock *lock);

#endif /* COSYNC_LOCK_H */
