/*
 * A writer-preferring, starvation-free read-write lock on the waiting layer.
 *
 * One FIFO queue holds readers and writers alike (w->data says which).
 * A reader takes the lock at once only if no writer holds it and nobody
 * waits, so a waiting writer blocks new readers (writer preference). When
 * the lock is released, or a waiter leaves the queue, dispatch() serves the
 * head: a writer once the lock is free; or, while no writer holds it, every
 * reader at the head up to the next writer, as one batch. So a writer waits
 * only for the readers ahead of it, and readers queued behind a writer get
 * in right after it: neither side starves.
 */
#include <stdio.h>

#include "waitq.h"

enum { WANT_READ = 0, WANT_WRITE = 1 };

/* Serve the head of the queue as far as the lock allows. */
static void dispatch(cosync_rwlock *rw)
{
    cosync__waiter *w;
    while ((w = cosync__waitq_head(&rw->q)) != NULL) {
        if (w->data == WANT_WRITE) {
            if (rw->writer || rw->readers)
                return;
            rw->waiting_writers--;
            rw->writer = cosync__waiter_task(w);
            rw->writer_id = rw->writer->id;
            rw->writer_loop = rw->writer->loop->serial;
            cosync__waitq_grant(&rw->q, w, 0);
            return;
        }
        if (rw->writer || rw->readers == UINT32_MAX)
            return;
        rw->readers++;
        cosync__waitq_grant(&rw->q, w, 0);
    }
}

/* A WAITING waiter was cancelled or timed out: it may have been what kept
 * the waiters behind it out (a writer at the head blocks the readers after
 * it), so serve the queue again. */
static void rwlock_cancel(cosync__waiter *w)
{
    cosync_rwlock *rw = w->obj;
    if (w->data == WANT_WRITE)
        rw->waiting_writers--;
    cosync__waitq_remove(&rw->q, w);
    dispatch(rw);
}

/* Whether a writer is queued ahead of @w: a reader waits behind it even
 * while only readers hold the lock (writer preference). */
static bool writer_ahead(const cosync__waiter *w)
{
    const cosync_rwlock *rw = w->obj;
    for (const cosync__waiter *x = cosync__waitq_head(&rw->q); x && x != w;
         x = cosync__waitq_next(x))
        if (x->data == WANT_WRITE)
            return true;
    return false;
}

static void rwlock_describe(const cosync__waiter *w, char *buf, size_t size)
{
    cosync_rwlock *rw = w->obj;
    /* a reader kept out by nothing but a writer queued ahead says so */
    const char *want = w->data == WANT_WRITE            ? " (wants write)"
                       : !rw->writer && writer_ahead(w) ? " (wants read, behind a waiting writer)"
                                                        : " (wants read)";
    struct cosync__task *o = rw->writer;
    unsigned long long id = rw->writer_id;
    enum cosync__holder h =
        cosync__holder_state(cosync__waiter_task(w), o, rw->writer_id, rw->writer_loop);
    if (o && h == COSYNC__HOLDER_ALIVE)
        snprintf(buf, size, "rwlock %p held by writer task '%s' (#%llu)%s", w->obj,
                 cosync__task_name(o), id, want);
    else if (o && h == COSYNC__HOLDER_FINISHED)
        snprintf(buf, size, "rwlock %p held by a finished writer task (#%llu)%s", w->obj, id, want);
    else if (o)
        snprintf(buf, size, "rwlock %p held by a writer task of another loop (#%llu)%s", w->obj, id,
                 want);
    else if (rw->readers)
        snprintf(buf, size, "rwlock %p held by %u reader%s%s", w->obj, rw->readers,
                 rw->readers == 1 ? "" : "s", want);
    else
        snprintf(buf, size, "rwlock %p (free)%s", w->obj, want);
}

static const cosync__waiter_ops rwlock_ops = {"rwlock", rwlock_cancel, rwlock_describe, NULL};

void cosync_rwlock_init(cosync_rwlock *rw)
{
    *rw = (cosync_rwlock)COSYNC_RWLOCK_INIT;
}

int cosync_rwlock_read_acquire(cosync_rwlock *rw, int64_t deadline)
{
    if (__builtin_expect(rw->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(!cosync__current(), 0))
        return COSYNC_EPERM;
    if (!rw->writer && cosync__waitq_empty(&rw->q) && rw->readers < UINT32_MAX) {
        rw->readers++;
        return 0;
    }
    return cosync__waitq_wait(&rw->q, &rwlock_ops, rw, WANT_READ, deadline);
}

int cosync_rwlock_read_release(cosync_rwlock *rw)
{
    if (__builtin_expect(rw->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(rw->readers == 0, 0))
        return COSYNC_EPERM;
    rw->readers--;
    dispatch(rw);
    return 0;
}

int cosync_rwlock_write_acquire(cosync_rwlock *rw, int64_t deadline)
{
    if (__builtin_expect(rw->dead, 0))
        return COSYNC_EINVAL;
    struct cosync__task *cur = cosync__current();
    if (__builtin_expect(!cur, 0))
        return COSYNC_EPERM;
    if (!rw->writer && !rw->readers && cosync__waitq_empty(&rw->q)) {
        rw->writer = cur;
        rw->writer_id = cur->id;
        rw->writer_loop = cur->loop->serial;
        return 0;
    }
    rw->waiting_writers++;
    int rc = cosync__waitq_wait(&rw->q, &rwlock_ops, rw, WANT_WRITE, deadline);
    if (rc == COSYNC_EPERM) /* bound to another loop: never queued */
        rw->waiting_writers--;
    return rc;
}

int cosync_rwlock_write_release(cosync_rwlock *rw)
{
    if (__builtin_expect(rw->dead, 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(!rw->writer, 0))
        return COSYNC_EPERM;
    /* handed to a waiting writer that has not run yet: see the lock's */
    if (__builtin_expect(
            cosync__handed_over(rw->writer, rw->writer_id, rw->writer_loop, rw, &rw->q), 0))
        return COSYNC_EPERM;
#ifdef COSYNC_DEBUG
    struct cosync__task *cur = cosync__current();
    if (__builtin_expect(cur != rw->writer || cur->id != rw->writer_id ||
                             cur->loop->serial != rw->writer_loop,
                         0))
        cosync__report_foreign_release("rwlock", rw, "writer", rw->writer_id);
#endif
    rw->writer = NULL;
    rw->writer_id = 0;
    rw->writer_loop = 0;
    dispatch(rw);
    return 0;
}

int cosync_rwlock_try_read(cosync_rwlock *rw)
{
    return cosync_rwlock_read_acquire(rw, 0);
}

int cosync_rwlock_try_write(cosync_rwlock *rw)
{
    return cosync_rwlock_write_acquire(rw, 0);
}

unsigned cosync_rwlock_readers(const cosync_rwlock *rw)
{
    return rw->dead ? 0 : rw->readers;
}

bool cosync_rwlock_write_locked(const cosync_rwlock *rw)
{
    return rw->writer != NULL && !rw->dead;
}

size_t cosync_rwlock_waiting_writers(const cosync_rwlock *rw)
{
    return rw->dead ? 0 : rw->waiting_writers;
}

size_t cosync_rwlock_waiters(const cosync_rwlock *rw)
{
    return rw->dead ? 0 : rw->q.n;
}

int cosync_rwlock_destroy(cosync_rwlock *rw)
{
    if (rw->dead)
        return COSYNC_EINVAL;
    if (rw->writer || rw->readers || !cosync__waitq_empty(&rw->q))
        return COSYNC_EBUSY;
    rw->dead = 1;
    return 0;
}
