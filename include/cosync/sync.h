/*
 * cosync/sync.h - the synchronization primitives: Lock, Condition,
 * Semaphore and BoundedSemaphore, Barrier, RWLock, Latch, WaitGroup.
 * (Event is in cosync.h.) Included by <cosync.h>.
 *
 * Common rules (docs/primitives.md):
 *  - caller-embedded; zero-initialising (or the *_INIT macro) gives a ready
 *    object, except where an _init with a count is required;
 *  - waiting never allocates; waiters are served strictly first come,
 *    first served, and a newcomer never takes what has been granted to a
 *    waiter that has not run yet;
 *  - deadline 0 is the try form (COSYNC_EAGAIN); a wait that is granted and
 *    then cancelled keeps its grant (the call succeeds) and the
 *    cancellation is delivered at the task's next suspension, except a
 *    condition's wait, which passes its notify on (cosync_cond_wait);
 *  - an object is bound to the loop of its first waiter while it has
 *    waiters: from another loop on the same thread meanwhile, COSYNC_EPERM
 *    (from another thread, a data race: nothing is thread-safe);
 *  - _init (or assigning _INIT) over an object in use (held or waited on)
 *    is undefined, as with pthreads: it forgets the waiters and holds it
 *    had. Destroy first: that refuses a busy object;
 *  - _destroy returns COSYNC_EBUSY while the object is held or waited on;
 *    after it, every action returns COSYNC_EINVAL (until re-initialised);
 *    the queries (locked, value, waiters, ...) report what was left,
 *    except the latch's and WaitGroup's counts, which return
 *    COSYNC_EINVAL.
 * None of these is thread-safe: one loop's tasks share them.
 */
#ifndef COSYNC_SYNC_H
#define COSYNC_SYNC_H

#include "cosync/base.h"

#ifdef __cplusplus
extern "C" {
#endif

struct cosync_loop;
struct cosync__task;

/* ========================================================================
 * Lock (asyncio.Lock)
 * ===================================================================== */

/** A mutual-exclusion lock with FIFO hand-off. Fields are private. */
typedef struct cosync_lock {
    cosync__waitq q;
    /* the holder, known by its id and loop (its record is for reports
     * and hand-offs); read only while locked (a release leaves them stale) */
    struct cosync__task *owner; /* a hand-off sets it to the grantee */
    uint64_t owner_id;
    bool locked;
    uint8_t dead;        /* set by destroy */
    uint64_t owner_loop; /* the holder's loop's serial */
} cosync_lock;

/** A static initialiser: an unlocked lock, as cosync_lock_init. */
#define COSYNC_LOCK_INIT                                                                           \
    {                                                                                              \
        COSYNC__WAITQ_INIT, NULL, 0, false, 0, 0                                                   \
    }

/**
 * cosync_lock_init - an unlocked lock.
 * Not a suspension point. Not thread-safe.
 */
void cosync_lock_init(cosync_lock *lock);

/**
 * cosync_lock_acquire - take the lock (await lock.acquire()).
 * If it is free and nobody waits, takes it at once; else waits its turn.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0 (the caller holds the lock); COSYNC_EAGAIN (deadline 0) or
 * COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_EPERM outside a task (even
 * for a free lock) or from another loop; COSYNC_EINVAL after destroy.
 * Suspension point (unless the lock is free). Not thread-safe.
 */
static inline int cosync_lock_acquire(cosync_lock *lock, int64_t deadline);

/**
 * cosync_lock_release - release the lock (lock.release()). The first
 * waiter, if any, is handed the lock at once.
 * Returns 0; COSYNC_EPERM if the lock is not locked, or if a release has
 * just handed it to a waiter that has not run yet (asyncio's lock is free
 * until then, and its release raises; nothing changes: found out during
 * a run of the lock's loop, or while other tasks still wait on it);
 * COSYNC_EINVAL after destroy. A release by another task than the holder is allowed, as
 * in asyncio; debug builds (COSYNC_DEBUG) report it on stderr.
 * Not a suspension point. Not thread-safe.
 */
static inline int cosync_lock_release(cosync_lock *lock);

/**
 * cosync_lock_locked - whether the lock is held (lock.locked()).
 * Not a suspension point. Not thread-safe.
 */
bool cosync_lock_locked(const cosync_lock *lock);

/**
 * cosync_lock_waiters - the number of tasks waiting for the lock.
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_lock_waiters(const cosync_lock *lock);

/**
 * cosync_lock_destroy - end the lock's life.
 * Returns 0; COSYNC_EBUSY if it is locked or has waiters (nothing changes);
 * COSYNC_EINVAL if already destroyed. The lock cannot see the conditions
 * built on it: destroying it while a task is inside cosync_cond_wait on one
 * of them is a misuse; that wait, when it ends (by its deadline or a
 * cancellation: no notify can come any more), returns COSYNC_EINVAL
 * without the lock rather than trying to take a dead lock. Not a
 * suspension point. Not thread-safe.
 */
int cosync_lock_destroy(cosync_lock *lock);

/* The lock's fast paths, inlined: a free lock is taken, and a lock its
 * holder releases with nobody waiting is dropped, without a call. */
int cosync__lock_acquire_slow(cosync_lock *lock, int64_t deadline);
int cosync__lock_release_slow(cosync_lock *lock);

/* A free lock never has waiters, and a destroyed one reads as locked by
 * nobody (owner_id COSYNC__LOCK_DEAD_OWNER, which no task has), so the
 * fast paths need not test for either. */
#define COSYNC__LOCK_DEAD_OWNER UINT64_MAX

/* Whether the running task holds the (locked) @lock: its id and its
 * loop, since ids start again at 1 in each loop; the pair names one task
 * of the process (the record is not compared: a record is reused only by
 * a task with another id or in another loop). Outside a task cur_id is 0,
 * which no holder has. */
static inline bool cosync__lock_is_mine(const cosync_lock *lock)
{
    return lock->owner_id == cosync__tls.cur_id && lock->owner_loop == cosync__tls.loop_serial;
}

static inline int cosync_lock_acquire(cosync_lock *lock, int64_t deadline)
{
    struct cosync__task *cur = cosync__tls.cur;
    if (__builtin_expect(!lock->locked && cur, 1)) {
        lock->locked = true;
        lock->owner = cur;
        lock->owner_id = cosync__tls.cur_id;
        lock->owner_loop = cosync__tls.loop_serial;
        return 0;
    }
    return cosync__lock_acquire_slow(lock, deadline);
}

static inline int cosync_lock_release(cosync_lock *lock)
{
    if (__builtin_expect(lock->locked && lock->q.n == 0 && cosync__lock_is_mine(lock), 1)) {
        lock->locked = false; /* one store: the holder's fields are read only while locked */
        return 0;
    }
    return cosync__lock_release_slow(lock);
}

/* ========================================================================
 * Condition (asyncio.Condition)
 * ===================================================================== */

/**
 * A condition variable on a Lock: its own (lock == NULL at init, or a
 * zeroed struct) or a shared one, so that several conditions can share a
 * lock. Fields are private.
 */
typedef struct cosync_cond {
    cosync__waitq q;
    cosync_lock *lock; /* NULL: own_lock */
    cosync_lock own_lock;
    uint32_t in_wait; /* tasks inside cosync_cond_wait, notified or not */
    uint8_t dead;
} cosync_cond;

/** A static initialiser: a condition on its own lock, as
 * cosync_cond_init(cond, NULL). */
#define COSYNC_COND_INIT                                                                           \
    {                                                                                              \
        COSYNC__WAITQ_INIT, NULL, COSYNC_LOCK_INIT, 0, 0                                           \
    }

/**
 * cosync_cond_init - a condition on @lock, or on its own lock if NULL.
 * Not a suspension point. Not thread-safe.
 */
void cosync_cond_init(cosync_cond *cond, cosync_lock *lock);

/**
 * cosync_cond_lock - the lock the condition uses.
 * Not a suspension point. Not thread-safe.
 */
cosync_lock *cosync_cond_lock(cosync_cond *cond);

/**
 * cosync_cond_acquire - cosync_lock_acquire on the condition's lock.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns as cosync_lock_acquire, and COSYNC_EINVAL after destroy.
 * Suspension point (unless the lock is free). Not thread-safe.
 */
static inline int cosync_cond_acquire(cosync_cond *cond, int64_t deadline);

/**
 * cosync_cond_release - cosync_lock_release on the condition's lock.
 * Returns as cosync_lock_release, and COSYNC_EINVAL after destroy.
 * Not a suspension point. Not thread-safe.
 */
static inline int cosync_cond_release(cosync_cond *cond);

/**
 * cosync_cond_locked - whether the condition's lock is held.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_cond_locked(const cosync_cond *cond);

/**
 * cosync_cond_wait - release the lock, wait for a notify, re-acquire the
 * lock (Condition.wait()). Always returns with the lock held, whatever
 * ended the wait; re-acquiring cannot be interrupted (a cancellation that
 * comes meanwhile is delivered at the next suspension).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0 once notified; COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED, also when the cancellation came after a notify and
 * before this task ran: the notify then goes to the next waiter, as in
 * asyncio; COSYNC_EPERM if the caller does not hold the lock, or outside a
 * task, or if tasks of another loop wait on the condition or its lock;
 * COSYNC_EINVAL after destroy, if its lock has been destroyed, or if the
 * condition or its lock lies in the stack of the calling dense task
 * (docs/stacks.md; on these, nothing changes). Two misuses end a wait without the lock: a shared
 * lock destroyed while the wait lasts (COSYNC_EINVAL), and a lock that
 * tasks of another loop queued on meanwhile, which this task cannot queue
 * behind (COSYNC_EPERM; docs/condition.md).
 * Suspension point, except when it returns at once, keeping the lock:
 * COSYNC_EAGAIN, COSYNC_ETIMEDOUT for a deadline already passed (with no
 * cancellation pending), and the errors on which nothing changes.
 * Not thread-safe.
 */
int cosync_cond_wait(cosync_cond *cond, int64_t deadline);

/**
 * cosync_pred_fn - a predicate for cosync_cond_wait_for, called with the
 * lock held (at its first call, if the caller held it: see
 * cosync_cond_wait_for).
 * @arg: the @arg given to cosync_cond_wait_for.
 * Returns true once the condition the caller waits for holds.
 */
typedef bool (*cosync_pred_fn)(void *arg);

/**
 * cosync_cond_wait_for - wait until @pred(@arg) is true
 * (Condition.wait_for()): checks it first, then after each notify.
 * Returns 0 when it is true (with the lock held, if the caller held it: a
 * predicate true at once is not a wait, so the lock is not checked, as in
 * asyncio); the errors of cosync_cond_wait (lock held, except for
 * COSYNC_EPERM/COSYNC_EINVAL); COSYNC_EINVAL if @pred is NULL (nothing
 * changes). @deadline: absolute time, COSYNC_FOREVER, or 0 for the try
 * form; it bounds the whole wait. Suspension point (unless @pred is true
 * at once, or a wait returns at once as cosync_cond_wait's can).
 * Not thread-safe.
 */
int cosync_cond_wait_for(cosync_cond *cond, cosync_pred_fn pred, void *arg, int64_t deadline);

/**
 * cosync_cond_notify - wake up to @n waiters, first come first served
 * (Condition.notify(n)); each then re-acquires the lock in turn.
 * Returns the number woken (>= 0); COSYNC_EPERM if the caller does not hold
 * the lock, or if tasks of another loop wait on the condition or its lock;
 * COSYNC_EINVAL if @n < 0, or after destroy (of the condition or its
 * lock). Not a suspension point. Not thread-safe.
 */
static inline int cosync_cond_notify(cosync_cond *cond, int n);

/**
 * cosync_cond_notify_all - wake every waiter (Condition.notify_all()).
 * Returns the number woken (>= 0), or an error of cosync_cond_notify.
 * Not a suspension point. Not thread-safe.
 */
int cosync_cond_notify_all(cosync_cond *cond);

/**
 * cosync_cond_waiters - the number of tasks waiting for a notify.
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_cond_waiters(const cosync_cond *cond);

/**
 * cosync_cond_destroy - end the condition's life (and its own lock's).
 * Returns 0; COSYNC_EBUSY (nothing changes) while a task is inside
 * cosync_cond_wait, waiting for a notify or notified and not yet back,
 * or while its own lock is locked or has waiters; COSYNC_EINVAL if already
 * destroyed. A shared lock is left alone (so is its own lock if that was
 * destroyed through cosync_cond_lock). Not a suspension point.
 * Not thread-safe.
 */
int cosync_cond_destroy(cosync_cond *cond);

/* The condition's fast paths, inlined: its lock's, and a notify by the
 * holder when nobody waits. */
int cosync__cond_notify_slow(cosync_cond *cond, int n);

static inline int cosync_cond_acquire(cosync_cond *cond, int64_t deadline)
{
    if (__builtin_expect(cond->dead, 0))
        return COSYNC_EINVAL;
    return cosync_lock_acquire(cond->lock ? cond->lock : &cond->own_lock, deadline);
}

static inline int cosync_cond_release(cosync_cond *cond)
{
    if (__builtin_expect(cond->dead, 0))
        return COSYNC_EINVAL;
    return cosync_lock_release(cond->lock ? cond->lock : &cond->own_lock);
}

static inline int cosync_cond_notify(cosync_cond *cond, int n)
{
    const cosync_lock *lock = cond->lock ? cond->lock : &cond->own_lock;
    /* nobody waits on the condition, and whoever waits on its lock is of
     * this loop (for another's, the slow path says COSYNC_EPERM) */
    if (__builtin_expect(cond->q.n == 0 && n >= 0 && !cond->dead && lock->locked &&
                             cosync__lock_is_mine(lock) &&
                             (!lock->q.loop || lock->q.loop == cosync__tls.loop),
                         1))
        return 0;
    return cosync__cond_notify_slow(cond, n);
}

/* ========================================================================
 * Semaphore and BoundedSemaphore (asyncio.Semaphore, BoundedSemaphore;
 * weighted like tokio's acquire_many and Go's semaphore.Weighted)
 * ===================================================================== */

/** A counting semaphore; bounded if made by cosync_bsem_init. Private. */
typedef struct cosync_sem {
    cosync__waitq q;
    int64_t value;
    int64_t bound; /* 0: unbounded */
    uint8_t dead;
} cosync_sem;

/** A static (unbounded) semaphore of @value permits; with a negative @value
 * (which cosync_sem_init refuses) every acquire and release returns
 * COSYNC_EINVAL. */
#define COSYNC_SEM_INIT(value)                                                                     \
    {                                                                                              \
        COSYNC__WAITQ_INIT, (value), 0, 0                                                          \
    }

/**
 * cosync_sem_init - a semaphore with @value permits.
 * Returns 0, or COSYNC_EINVAL if @value < 0. Not a suspension point.
 * Not thread-safe.
 */
int cosync_sem_init(cosync_sem *sem, int64_t value);

/**
 * cosync_bsem_init - a bounded semaphore: releasing above @value is an
 * error (asyncio.BoundedSemaphore). Returns 0, or COSYNC_EINVAL if
 * @value < 0. Not a suspension point. Not thread-safe.
 */
int cosync_bsem_init(cosync_sem *sem, int64_t value);

/**
 * cosync_sem_acquire - take one permit (await sem.acquire()).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0; COSYNC_EAGAIN / COSYNC_ETIMEDOUT; COSYNC_ECANCELED;
 * COSYNC_EPERM outside a task or from another loop (only when it cannot
 * complete at once, deadline 0 included); COSYNC_EINVAL after destroy, or
 * for a semaphore bounded at 0 (cosync_bsem_init(sem, 0): no permit can
 * ever be had). Suspension point (unless a permit is free and nobody
 * waits). Not thread-safe.
 */
int cosync_sem_acquire(cosync_sem *sem, int64_t deadline);

/**
 * cosync_sem_acquire_many - take @n permits at once, all or none. Waiters
 * are served in order, so a large request is never starved by small ones
 * that came after it.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns as cosync_sem_acquire, and COSYNC_EINVAL if @n < 1 or @n exceeds
 * a bounded semaphore's bound (or, where pointers have 32 bits, exceeds
 * UINTPTR_MAX: a waiter keeps its count in one).
 * Suspension point (unless @n permits are free and nobody waits). Not
 * thread-safe.
 */
int cosync_sem_acquire_many(cosync_sem *sem, int64_t n, int64_t deadline);

/**
 * cosync_sem_release - give back one permit (sem.release()); waiters that
 * can now be served are handed their permits at once, in order.
 * Returns 0; COSYNC_EOVERFLOW if a bounded semaphore would go above its
 * bound, or any semaphore above INT64_MAX (nothing changes);
 * COSYNC_EINVAL after destroy.
 * Not a suspension point. Not thread-safe.
 */
int cosync_sem_release(cosync_sem *sem);

/**
 * cosync_sem_release_many - give back @n permits (@n >= 1, else EINVAL).
 * Returns as cosync_sem_release. Not a suspension point. Not thread-safe.
 */
int cosync_sem_release_many(cosync_sem *sem, int64_t n);

/**
 * cosync_sem_value - the permits free now.
 * Not a suspension point. Not thread-safe.
 */
int64_t cosync_sem_value(const cosync_sem *sem);

/**
 * cosync_sem_locked - whether an acquire would have to wait
 * (Semaphore.locked()): no permit free, or tasks already waiting.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_sem_locked(const cosync_sem *sem);

/**
 * cosync_sem_waiters - the number of tasks waiting.
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_sem_waiters(const cosync_sem *sem);

/**
 * cosync_sem_destroy - end the semaphore's use. Returns 0; COSYNC_EBUSY
 * while tasks wait (nothing changes); COSYNC_EINVAL if already destroyed.
 * Not a suspension point. Not thread-safe.
 */
int cosync_sem_destroy(cosync_sem *sem);

/* ========================================================================
 * Barrier (asyncio.Barrier)
 * ===================================================================== */

/** A barrier for a fixed number of parties, reusable round after round. */
typedef struct cosync_barrier {
    cosync__waitq q;
    uint32_t parties;
    uint32_t arrived; /* in the round being filled */
    uint8_t state;
    uint8_t dead;
} cosync_barrier;

/** A static initialiser for @parties tasks; a wait on one made with 0 or
 * above INT_MAX parties returns COSYNC_EINVAL. */
#define COSYNC_BARRIER_INIT(parties)                                                               \
    {                                                                                              \
        COSYNC__WAITQ_INIT, (parties), 0, 0, 0                                                     \
    }

/**
 * cosync_barrier_init - a barrier for @parties tasks.
 * Returns 0, or COSYNC_EINVAL if @parties is 0 or above INT_MAX.
 * Not a suspension point. Not thread-safe.
 */
int cosync_barrier_init(cosync_barrier *barrier, unsigned parties);

/**
 * cosync_barrier_wait - arrive and wait until @parties tasks have arrived
 * in this round (Barrier.wait()).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns this task's index in the round (0 .. parties-1, unique within the
 * round, the last arrival gets parties-1); COSYNC_EBROKEN if the barrier
 * is broken or is aborted or reset while the task waits;
 * COSYNC_EAGAIN (deadline 0, when the round is not full with this arrival)
 * or COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_EPERM outside a task (even
 * for the arrival that completes the round; a broken barrier says
 * COSYNC_EBROKEN first) or from another loop;
 * COSYNC_EINVAL after destroy, or for a bad COSYNC_BARRIER_INIT. A task
 * whose wait is cancelled or times out while the round fills is taken out
 * of the round: the barrier is not broken, the others wait for one more
 * arrival, and indices are given when the round is full, so no two tasks
 * of a round get the same one.
 * Suspension point (except for the arrival that completes the round).
 * Not thread-safe.
 */
int cosync_barrier_wait(cosync_barrier *barrier, int64_t deadline);

/**
 * cosync_barrier_abort - break the barrier (Barrier.abort()): waiters and
 * later arrivals get COSYNC_EBROKEN until cosync_barrier_reset.
 * Returns 0, or COSYNC_EINVAL after destroy. Not a suspension point. Not
 * thread-safe.
 */
int cosync_barrier_abort(cosync_barrier *barrier);

/**
 * cosync_barrier_reset - return to the empty state (Barrier.reset()):
 * tasks waiting now get COSYNC_EBROKEN; a broken barrier works again.
 * Returns 0, or COSYNC_EINVAL after destroy. Not a suspension point. Not
 * thread-safe.
 */
int cosync_barrier_reset(cosync_barrier *barrier);

/**
 * cosync_barrier_broken - whether the barrier is broken.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_barrier_broken(const cosync_barrier *barrier);

/**
 * cosync_barrier_n_waiting - tasks waiting in the round being filled.
 * Not a suspension point. Not thread-safe.
 */
unsigned cosync_barrier_n_waiting(const cosync_barrier *barrier);

/**
 * cosync_barrier_parties - the number of parties.
 * Not a suspension point. Not thread-safe.
 */
unsigned cosync_barrier_parties(const cosync_barrier *barrier);

/**
 * cosync_barrier_destroy - end the barrier's use. Returns 0; COSYNC_EBUSY
 * while tasks wait (nothing changes); COSYNC_EINVAL if already destroyed.
 * Not a suspension point. Not thread-safe.
 */
int cosync_barrier_destroy(cosync_barrier *barrier);

/* ========================================================================
 * RWLock: writer-preferring read-write lock
 * ===================================================================== */

/**
 * Many readers or one writer. Writer-preferring: once a writer waits, new
 * readers queue behind it; waiters are served in arrival order, readers
 * that queue next to each other together, so neither side starves.
 */
typedef struct cosync_rwlock {
    cosync__waitq q;
    struct cosync__task *writer; /* the holding writer */
    uint64_t writer_id;
    uint32_t readers; /* holding readers */
    uint32_t waiting_writers;
    uint8_t dead;
    uint64_t writer_loop; /* the writer's loop's serial */
} cosync_rwlock;

/** A static initialiser: a free read-write lock, as cosync_rwlock_init. */
#define COSYNC_RWLOCK_INIT                                                                         \
    {                                                                                              \
        COSYNC__WAITQ_INIT, NULL, 0, 0, 0, 0, 0                                                    \
    }

/**
 * cosync_rwlock_init - a free read-write lock.
 * Not a suspension point. Not thread-safe.
 */
void cosync_rwlock_init(cosync_rwlock *rw);

/**
 * cosync_rwlock_read_acquire - take a read hold.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns as cosync_lock_acquire. Suspension point (unless no writer holds
 * or waits). Not thread-safe.
 */
int cosync_rwlock_read_acquire(cosync_rwlock *rw, int64_t deadline);

/**
 * cosync_rwlock_read_release - drop a read hold. Returns 0, COSYNC_EPERM if
 * no reader holds it, COSYNC_EINVAL after destroy. Not a suspension point.
 * Read holds are a count, not tied to tasks (as Go's RWMutex.RUnlock): a
 * release by a task that holds no read, while others do, is taken as one
 * of theirs, and a writer may then get in while they still read. It cannot
 * be detected; pair each release with its acquire. Not thread-safe.
 */
int cosync_rwlock_read_release(cosync_rwlock *rw);

/**
 * cosync_rwlock_write_acquire - take the write hold.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns as cosync_lock_acquire. Suspension point (unless the lock is
 * free). Not thread-safe.
 */
int cosync_rwlock_write_acquire(cosync_rwlock *rw, int64_t deadline);

/**
 * cosync_rwlock_write_release - drop the write hold. Returns 0, COSYNC_EPERM
 * if no writer holds it or a release has just handed it to a writer that
 * has not run yet (nothing changes; found out as for cosync_lock_release),
 * COSYNC_EINVAL after destroy. Not a
 * suspension point. Not thread-safe.
 */
int cosync_rwlock_write_release(cosync_rwlock *rw);

/**
 * cosync_rwlock_try_read - cosync_rwlock_read_acquire with deadline 0.
 * Returns 0 (a read hold is taken); COSYNC_EAGAIN if it would have to
 * wait; COSYNC_EPERM outside a task or from another loop; COSYNC_EINVAL
 * after destroy. Not a suspension point. Not thread-safe.
 */
int cosync_rwlock_try_read(cosync_rwlock *rw);

/**
 * cosync_rwlock_try_write - cosync_rwlock_write_acquire with deadline 0.
 * Returns 0 (the write hold is taken); COSYNC_EAGAIN if it would have to
 * wait; COSYNC_EPERM outside a task or from another loop; COSYNC_EINVAL
 * after destroy. Not a suspension point. Not thread-safe.
 */
int cosync_rwlock_try_write(cosync_rwlock *rw);

/**
 * cosync_rwlock_readers - the number of read holds.
 * Not a suspension point. Not thread-safe.
 */
unsigned cosync_rwlock_readers(const cosync_rwlock *rw);

/**
 * cosync_rwlock_write_locked - whether a writer holds the lock.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_rwlock_write_locked(const cosync_rwlock *rw);

/**
 * cosync_rwlock_waiters - the number of tasks waiting.
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_rwlock_waiters(const cosync_rwlock *rw);

/**
 * cosync_rwlock_waiting_writers - how many of those waiters want to write
 * (once one does, new readers queue too: the rest want to read).
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_rwlock_waiting_writers(const cosync_rwlock *rw);

/**
 * cosync_rwlock_destroy - end the lock's use. Returns 0; COSYNC_EBUSY
 * while held or waited on (nothing changes); COSYNC_EINVAL if already
 * destroyed. Not a suspension point. Not thread-safe.
 */
int cosync_rwlock_destroy(cosync_rwlock *rw);

/* ========================================================================
 * Latch (a countdown latch) and WaitGroup (Go's sync.WaitGroup)
 * ===================================================================== */

/** Opens once its count reaches zero; stays open. Fields are private. */
typedef struct cosync_latch {
    cosync__waitq q;
    int64_t count;
    uint8_t dead;
} cosync_latch;

/** A static latch for @count count-downs; with a negative @count (which
 * cosync_latch_init refuses) count_down and wait return COSYNC_EINVAL. */
#define COSYNC_LATCH_INIT(count)                                                                   \
    {                                                                                              \
        COSYNC__WAITQ_INIT, (count), 0                                                             \
    }

/**
 * cosync_latch_init - a latch closed for @count count-downs.
 * Returns 0, or COSYNC_EINVAL if @count < 0. Not a suspension point.
 * Not thread-safe.
 */
int cosync_latch_init(cosync_latch *latch, int64_t count);

/**
 * cosync_latch_count_down - one less to wait for; at zero every waiter is
 * woken. Returns 0; COSYNC_EALREADY if the latch is already open (nothing
 * changes); COSYNC_EINVAL after destroy. Not a suspension point.
 * Not thread-safe.
 */
int cosync_latch_count_down(cosync_latch *latch);

/**
 * cosync_latch_wait - wait until the count is zero.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0 (at once if open); COSYNC_EAGAIN / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EPERM outside a task or from another loop (only
 * when it cannot complete at once, deadline 0 included); COSYNC_EINVAL
 * after destroy. Suspension point (unless open). Not thread-safe.
 */
int cosync_latch_wait(cosync_latch *latch, int64_t deadline);

/**
 * cosync_latch_count - the count-downs still awaited; COSYNC_EINVAL after
 * destroy, or for a latch made by COSYNC_LATCH_INIT with a negative count.
 * Not a suspension point. Not thread-safe.
 */
int64_t cosync_latch_count(const cosync_latch *latch);

/**
 * cosync_latch_destroy - end the latch's use (its count need not be 0).
 * Returns 0; COSYNC_EBUSY while tasks wait (nothing changes);
 * COSYNC_EINVAL if already destroyed. Not a suspension point.
 * Not thread-safe.
 */
int cosync_latch_destroy(cosync_latch *latch);

/** A counter of outstanding work; wait() returns when it is zero. */
typedef struct cosync_waitgroup {
    cosync__waitq q;
    int64_t count;
    uint8_t dead;
} cosync_waitgroup;

/** A static initialiser: a wait group at zero, as cosync_waitgroup_init. */
#define COSYNC_WAITGROUP_INIT                                                                      \
    {                                                                                              \
        COSYNC__WAITQ_INIT, 0, 0                                                                   \
    }

/**
 * cosync_waitgroup_init - a wait group at zero.
 * Not a suspension point. Not thread-safe.
 */
void cosync_waitgroup_init(cosync_waitgroup *wg);

/**
 * cosync_waitgroup_add - add @delta (may be negative) to the counter; when
 * it reaches zero every waiter is woken. Returns 0; COSYNC_EINVAL if the
 * counter would go below zero (nothing changes; Go panics) or after
 * destroy; COSYNC_EOVERFLOW if it would overflow. Not a suspension point.
 * Not thread-safe.
 */
int cosync_waitgroup_add(cosync_waitgroup *wg, int64_t delta);

/**
 * cosync_waitgroup_done - cosync_waitgroup_add(wg, -1).
 * Returns as cosync_waitgroup_add (COSYNC_EINVAL if the counter is 0).
 * Not a suspension point. Not thread-safe.
 */
int cosync_waitgroup_done(cosync_waitgroup *wg);

/**
 * cosync_waitgroup_wait - wait until the counter is zero.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns as cosync_latch_wait. Suspension point (unless zero). Not
 * thread-safe.
 */
int cosync_waitgroup_wait(cosync_waitgroup *wg, int64_t deadline);

/**
 * cosync_waitgroup_count - the counter; COSYNC_EINVAL after destroy.
 * Not a suspension point. Not thread-safe.
 */
int64_t cosync_waitgroup_count(const cosync_waitgroup *wg);

/**
 * cosync_waitgroup_destroy - end the WaitGroup's use (its counter need
 * not be 0). Returns 0; COSYNC_EBUSY while tasks wait (nothing changes);
 * COSYNC_EINVAL if already destroyed. Not a suspension point.
 * Not thread-safe.
 */
int cosync_waitgroup_destroy(cosync_waitgroup *wg);

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_SYNC_H */
