/*
 * asyncio.Semaphore and BoundedSemaphore on the waiting layer, weighted like
 * tokio's acquire_many and Go's semaphore.Weighted.
 *
 * value counts the free permits only: a grant subtracts the waiter's request
 * at the moment it is granted, so a permit handed to a waiter that has not
 * run yet can never be taken by a newcomer. Waiters are served strictly in
 * arrival order: the head's request (w->data) is served as soon as enough
 * permits are free, and nobody behind it is served before it, so a large
 * request is never starved by small ones that came after it.
 *
 * A bounded semaphore keeps its limit in `bound`: 0 means unbounded (the
 * static initialiser), a positive value is the limit, and BOUND_ZERO stands
 * for a semaphore bounded at 0 (cosync_bsem_init(sem, 0)).
 */
#include "waitq.h"

#define BOUND_ZERO INT64_C(-1)

/* The most permits the semaphore may hold free. */
static inline int64_t sem_limit(const cosync_sem *s)
{
    if (s->bound == 0)
        return INT64_MAX;
    return s->bound == BOUND_ZERO ? 0 : s->bound;
}

/* Grant waiters from the head while the head's request can be served. */
static void sem_serve(cosync_sem *s)
{
    cosync__waiter *w;
    while ((w = cosync__waitq_head(&s->q)) && (int64_t)w->data <= s->value) {
        s->value -= (int64_t)w->data;
        cosync__waitq_grant(&s->q, w, 0);
    }
}

/* Neither destroyed nor made with a negative value by the static
 * initialiser (which cosync_sem_init refuses). */
static inline bool sem_usable(const cosync_sem *s)
{
    return !s->dead && s->value >= 0;
}

static void sem_cancel(cosync__waiter *w)
{
    cosync_sem *s = w->obj;
    bool was_head = cosync__waitq_head(&s->q) == w;
    cosync__waitq_remove(&s->q, w);
    /* the head was holding the line: those behind it may be served now */
    if (was_head)
        sem_serve(s);
}

/* A waiter behind the head also names the head's request, which is what
 * holds it back when the free permits would cover its own. */
static void sem_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_sem *s = w->obj;
    const cosync__waiter *head = cosync__waitq_head(&s->q);
    char behind[48] = "";
    if (head && head != w)
        snprintf(behind, sizeof behind, ", behind a request for %lld",
                 (long long)(int64_t)head->data);
    snprintf(buf, size, "semaphore %p (value %lld, %u waiting, wants %lld%s)", w->obj,
             (long long)s->value, (unsigned)s->q.n, (long long)(int64_t)w->data, behind);
}

static const cosync__waiter_ops sem_ops = {"semaphore", sem_cancel, sem_describe, NULL};

int cosync_sem_init(cosync_sem *sem, int64_t value)
{
    if (value < 0)
        return COSYNC_EINVAL;
    *sem = (cosync_sem)COSYNC_SEM_INIT(value);
    return 0;
}

int cosync_bsem_init(cosync_sem *sem, int64_t value)
{
    if (value < 0)
        return COSYNC_EINVAL;
    *sem = (cosync_sem)COSYNC_SEM_INIT(value);
    sem->bound = value ? value : BOUND_ZERO;
    return 0;
}

int cosync_sem_acquire_many(cosync_sem *sem, int64_t n, int64_t deadline)
{
    if (__builtin_expect(!sem_usable(sem), 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(n < 1, 0))
        return COSYNC_EINVAL;
    if (sem->bound && n > sem_limit(sem))
        return COSYNC_EINVAL; /* could never be served */
#if UINTPTR_MAX < INT64_MAX
    if ((uint64_t)n > UINTPTR_MAX)
        return COSYNC_EINVAL; /* does not fit in the waiter */
#endif
    /* fast path: nobody waits and the permits are free */
    if (cosync__waitq_empty(&sem->q) && sem->value >= n) {
        sem->value -= n;
        return 0;
    }
    return cosync__waitq_wait(&sem->q, &sem_ops, sem, (uintptr_t)n, deadline);
}

int cosync_sem_acquire(cosync_sem *sem, int64_t deadline)
{
    return cosync_sem_acquire_many(sem, 1, deadline);
}

int cosync_sem_release_many(cosync_sem *sem, int64_t n)
{
    if (__builtin_expect(!sem_usable(sem), 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(n < 1, 0))
        return COSYNC_EINVAL;
    /* value <= limit always holds, so the subtraction cannot overflow */
    if (n > sem_limit(sem) - sem->value)
        return COSYNC_EOVERFLOW;
    sem->value += n;
    sem_serve(sem);
    return 0;
}

int cosync_sem_release(cosync_sem *sem)
{
    return cosync_sem_release_many(sem, 1);
}

int64_t cosync_sem_value(const cosync_sem *sem)
{
    return sem->value;
}

bool cosync_sem_locked(const cosync_sem *sem)
{
    return sem->value == 0 || !cosync__waitq_empty(&sem->q);
}

size_t cosync_sem_waiters(const cosync_sem *sem)
{
    return sem->q.n;
}

int cosync_sem_destroy(cosync_sem *sem)
{
    if (sem->dead)
        return COSYNC_EINVAL;
    if (!cosync__waitq_empty(&sem->q))
        return COSYNC_EBUSY;
    sem->dead = 1;
    return 0;
}
