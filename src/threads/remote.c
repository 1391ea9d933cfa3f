/*
 * Tasks started on a loop from another thread, and waited for there
 * (asyncio.run_coroutine_threadsafe and the concurrent future it returns).
 *
 * The record is the foreign thread's, under its own mutex. A call into
 * the loop (the start) spawns the task, detached, with a done callback
 * that copies the outcome into the record and wakes the thread's waits; a
 * cancel is a second call. The record says it is done only once the loop
 * holds nothing of it (no call queued, the callback run), so a wait that
 * returns leaves it free to be destroyed or reused at once.
 */
#include "core.h"
#include "fault.h"

/* The check word of a record spawn_threadsafe has set up, until its
 * destruction: a record never set up, or a copy, has another. Only the
 * calls of the record's owners write it, never the loop, so it is read
 * without the lock. */
static uintptr_t check_of(const cosync_remote *r)
{
    return (uintptr_t)r ^ (uintptr_t)0x7f4a7c159e3779b9u;
}

static bool in_use(const cosync_remote *r)
{
    return r->check == check_of(r);
}

/* ---- on the loop's thread ---------------------------------------------- */

/* Under the lock: the record is done, the loop holding nothing of it. */
static bool done_locked(const cosync_remote *r)
{
    return r->ended && !r->cancel_queued;
}

/* Under the lock: the task has ended (or never began) with @status; the
 * record is done unless a cancel call is still queued, whose run makes it
 * done. */
static void finish_locked(cosync_remote *r, int status, void *result)
{
    r->status = status;
    r->result = result;
    r->ended = true;
    if (done_locked(r))
        pthread_cond_broadcast(&r->changed);
}

static void remote_done(void *arg)
{
    cosync_remote *r = arg;
    int status = 0;
    void *result = NULL;
    cosync_callback_outcome(&r->done, &status, &result);
    pthread_mutex_lock(&r->lock);
    finish_locked(r, status, result);
    pthread_mutex_unlock(&r->lock);
}

bool cosync__is_remote_callback(const cosync_callback *cb)
{
    return cb->fn == remote_done;
}

/* The loop's destruction found that the task would never end (a deadlock
 * in its close) and dropped it: the record ends with COSYNC_EDEADLK, the
 * destruction's own report, so that a thread waiting for it wakes. The
 * loop runs nothing more, so a cancel still queued never comes. */
void cosync__remote_task_dropped(cosync_callback *cb)
{
    cosync_remote *r = cosync__container_of(cb, cosync_remote, done);
    pthread_mutex_lock(&r->lock);
    r->cancel_queued = false;
    finish_locked(r, COSYNC_EDEADLK, NULL);
    pthread_mutex_unlock(&r->lock);
}

static void remote_start(void *arg)
{
    cosync_remote *r = arg;
    /* under the lock throughout: a cancel that comes meanwhile finds the
     * task spawned, or keeps it from being spawned */
    pthread_mutex_lock(&r->lock);
    cosync_task t;
    int rc = r->cancel_requested
                 ? COSYNC_ECANCELED /* as a task cancelled before it runs */
                 : cosync_loop_spawn(r->loop, &t, r->fn, r->arg, r->has_opts ? &r->opts : NULL);
    if (rc == 0) {
        r->done = (cosync_callback)COSYNC_CALLBACK_INIT;
        /* a task just spawned, in its loop's thread: nothing to refuse */
        cosync_task_add_done_callback(t, &r->done, remote_done, r);
        cosync_task_detach(t);
        r->task = t;
        r->started = true;
    } else {
        finish_locked(r, rc, NULL);
    }
    pthread_mutex_unlock(&r->lock);
}

static void remote_cancel(void *arg)
{
    cosync_remote *r = arg;
    pthread_mutex_lock(&r->lock);
    r->cancel_queued = false;
    if (r->ended) { /* the task ended while this call was queued */
        pthread_cond_broadcast(&r->changed);
    } else {
        /* under the lock, with the record's view of the task; a task
         * that has ended, its callback still queued, is a stale handle,
         * which the cancel tells apart (COSYNC_ESRCH) */
        cosync_task_cancel(r->task);
    }
    pthread_mutex_unlock(&r->lock);
}

/* ---- on any thread ----------------------------------------------------- */

static int init_sync(cosync_remote *r)
{
    pthread_condattr_t attr;
    int rc = pthread_condattr_init(&attr);
    if (rc)
        return -rc;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    if (!rc)
        rc = cosync__fault_hit() ? ENOMEM : pthread_cond_init(&r->changed, &attr);
    pthread_condattr_destroy(&attr);
    if (rc)
        return -rc;
    rc = pthread_mutex_init(&r->lock, NULL);
    if (rc) {
        pthread_cond_destroy(&r->changed);
        return -rc;
    }
    return 0;
}

int cosync_loop_spawn_threadsafe(cosync_loop *loop, cosync_remote *r, cosync_task_fn fn, void *arg,
                                 const cosync_task_opts *opts)
{
    if (!loop || !r || !fn)
        return COSYNC_EINVAL;
    if (in_use(r))
        return COSYNC_EBUSY;
    int rc = init_sync(r);
    if (rc)
        return rc;
    r->loop = loop;
    r->fn = fn;
    r->arg = arg;
    r->has_opts = opts != NULL;
    if (opts)
        r->opts = *opts;
    r->status = 0;
    r->result = NULL;
    r->started = r->ended = r->cancel_requested = r->cancel_queued = false;
    r->check = check_of(r);
    cosync_loop_call_threadsafe(loop, &r->start, remote_start, r);
    return 0;
}

int cosync_remote_cancel(cosync_remote *r)
{
    if (!r || !in_use(r))
        return COSYNC_EINVAL;
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    if (r->ended) {
        rc = COSYNC_EALREADY;
    } else if (!r->started) {
        r->cancel_requested = true; /* the start sees it */
    } else if (!r->cancel_queued) {
        r->cancel_queued = true;
        cosync_loop_call_threadsafe(r->loop, &r->cancel_call, remote_cancel, r);
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

static bool is_done(cosync_remote *r)
{
    pthread_mutex_lock(&r->lock);
    bool done = done_locked(r);
    pthread_mutex_unlock(&r->lock);
    return done;
}

bool cosync_remote_done(cosync_remote *r)
{
    return r && in_use(r) && is_done(r);
}

static struct timespec timespec_of(int64_t ns)
{
    return (struct timespec){.tv_sec = ns / 1000000000, .tv_nsec = ns % 1000000000};
}

int cosync_remote_wait(cosync_remote *r, int *status, void **result, int64_t deadline)
{
    if (!r || !in_use(r))
        return COSYNC_EINVAL;
    if (cosync__tls.loop && deadline != 0)
        return COSYNC_EPERM; /* it would block a loop's thread */
    pthread_mutex_lock(&r->lock);
    int rc = 0;
    while (!done_locked(r) && !rc) {
        if (deadline == 0) {
            rc = COSYNC_EAGAIN;
        } else if (deadline == COSYNC_FOREVER) {
            pthread_cond_wait(&r->changed, &r->lock);
        } else {
            struct timespec ts = timespec_of(deadline < 0 ? 0 : deadline);
            if (pthread_cond_timedwait(&r->changed, &r->lock, &ts) == ETIMEDOUT && !done_locked(r))
                rc = COSYNC_ETIMEDOUT;
        }
    }
    if (rc == 0) {
        if (status)
            *status = r->status;
        if (result)
            *result = r->result;
    }
    pthread_mutex_unlock(&r->lock);
    return rc;
}

int cosync_remote_destroy(cosync_remote *r)
{
    if (!r || !in_use(r))
        return COSYNC_EINVAL;
    if (!is_done(r))
        return COSYNC_EBUSY;
    /* the loop's last unlock came before the lock was taken above */
    pthread_mutex_destroy(&r->lock);
    pthread_cond_destroy(&r->changed);
    r->check = 0;
    return 0;
}
