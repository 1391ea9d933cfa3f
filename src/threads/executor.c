/*
 * Thread pools: a task hands a blocking function to a worker thread and
 * waits for it (loop.run_in_executor, asyncio.to_thread).
 *
 * A job is a record the loop keeps (never on the caller's stack, which a
 * dense task gives up while it waits): the loop's thread fills it and
 * queues it on the pool under the pool's mutex; a worker takes it, runs
 * the function outside the mutex, and posts the job's end to the loop as
 * a call (threads/calls.c), which grants the waiting task. The job holds
 * a reference on the loop until then. A caller that gives up takes a job
 * that has not started back off the queue; one that has started runs to
 * its end, told through its cancel flag, and the caller waits for it in
 * place (a shielded wait), so the job never writes to a caller that is
 * gone.
 */
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

enum job_state { JOB_QUEUED, JOB_RUNNING, JOB_DONE };

typedef struct cosync__job {
    cosync_call done;  /* its end, posted to the loop */
    cosync__node node; /* in the pool's queue */
    struct cosync__job *next_free;
    cosync_task_fn fn;
    void *arg;
    void *local; /* the caller's task-local pointer, copied: the job's own */
    void *result;
    int status;
    uint8_t state; /* under the pool's mutex until JOB_DONE */
    atomic_bool cancelled;
    int reason; /* COSYNC_ETIMEDOUT or COSYNC_ECANCELED, once the caller gave up */
    struct cosync__task *task;
    cosync_executor *ex;
} cosync__job;

struct cosync_executor {
    pthread_mutex_t lock;
    pthread_cond_t work;
    cosync__list queue;
    size_t queued;      /* jobs in the queue */
    size_t outstanding; /* jobs queued, running, or whose end has not reached the loop */
    size_t max_threads;
    size_t threads; /* started */
    size_t idle;    /* waiting for work */
    bool stopping;
    pthread_t *tids;
};

static __thread cosync__job *running_job;

static size_t default_threads(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    if (n < 1)
        n = 1;
    return n + 4 < 32 ? (size_t)n + 4 : 32;
}

int cosync_executor_init(cosync_executor **out, size_t max_threads)
{
    if (!out)
        return COSYNC_EINVAL;
    *out = NULL;
    if (max_threads == 0)
        max_threads = default_threads();
    if (max_threads > COSYNC_EXECUTOR_MAX_THREADS)
        return COSYNC_EINVAL;
    cosync_executor *ex = cosync__mem_alloc(NULL, sizeof *ex);
    pthread_t *tids = cosync__mem_alloc(NULL, max_threads * sizeof *tids);
    if (!ex || !tids) {
        cosync__mem_free(NULL, ex);
        cosync__mem_free(NULL, tids);
        return COSYNC_ENOMEM;
    }
    *ex = (cosync_executor){.max_threads = max_threads, .tids = tids};
    int rc = pthread_mutex_init(&ex->lock, NULL);
    if (rc == 0 && (rc = pthread_cond_init(&ex->work, NULL)) != 0)
        pthread_mutex_destroy(&ex->lock);
    if (rc) {
        cosync__mem_free(NULL, tids);
        cosync__mem_free(NULL, ex);
        return -rc;
    }
    *out = ex;
    return 0;
}

static bool is_own_thread(const cosync_executor *ex)
{
    for (size_t i = 0; i < ex->threads; i++)
        if (pthread_equal(ex->tids[i], pthread_self()))
            return true;
    return false;
}

int cosync_executor_destroy(cosync_executor *ex)
{
    if (!ex)
        return 0;
    pthread_mutex_lock(&ex->lock);
    if (is_own_thread(ex)) {
        pthread_mutex_unlock(&ex->lock);
        return COSYNC_EPERM;
    }
    if (ex->outstanding || ex->stopping) {
        pthread_mutex_unlock(&ex->lock);
        return COSYNC_EBUSY;
    }
    ex->stopping = true;
    pthread_cond_broadcast(&ex->work);
    size_t threads = ex->threads;
    pthread_mutex_unlock(&ex->lock);
    for (size_t i = 0; i < threads; i++)
        pthread_join(ex->tids[i], NULL);
    pthread_cond_destroy(&ex->work);
    pthread_mutex_destroy(&ex->lock);
    cosync__mem_free(NULL, ex->tids);
    cosync__mem_free(NULL, ex);
    return 0;
}

/* ---- the worker's side ---------------------------------------------- */

/* On the loop's thread: the job has ended; wake its caller. The job is
 * the pool's until here, so that a pool destroyed as soon as no job is
 * out leaves no caller that may still look at it (job_give_up). */
static void job_ended(void *arg)
{
    cosync__job *j = arg;
    cosync_executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    ex->outstanding--;
    pthread_mutex_unlock(&ex->lock);
    struct cosync__task *t = j->task;
    cosync__grant(&t->w, t->w.shielded ? j->reason : 0);
    cosync_loop_unref(t->loop);
}

static void run_job(cosync__job *j)
{
    running_job = j;
    cosync__tls.job_local = &j->local; /* cosync_task_get_local, in the job */
    j->status = j->fn(j->arg, &j->result);
    cosync__tls.job_local = NULL;
    running_job = NULL;
    cosync_executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    j->state = JOB_DONE;
    pthread_mutex_unlock(&ex->lock);
    /* the last touch of the job: the loop may free it from here on (the
     * pool stays: it is not destroyed while this thread runs) */
    cosync_loop_call_threadsafe(j->task->loop, &j->done, job_ended, j);
}

static void *worker(void *arg)
{
    cosync_executor *ex = arg;
    pthread_mutex_lock(&ex->lock);
    for (;;) {
        while (!ex->queued && !ex->stopping) {
            ex->idle++;
            pthread_cond_wait(&ex->work, &ex->lock);
            ex->idle--;
        }
        if (!ex->queued)
            break; /* stopping, and nothing left */
        cosync__job *j =
            cosync__container_of(cosync__list_pop_front(&ex->queue), cosync__job, node);
        ex->queued--;
        j->state = JOB_RUNNING;
        pthread_mutex_unlock(&ex->lock);
        run_job(j);
        pthread_mutex_lock(&ex->lock);
    }
    pthread_mutex_unlock(&ex->lock);
    return NULL;
}

/* Under the pool's mutex: a thread for the queued jobs if none is idle and
 * the pool may grow. 0, or COSYNC_ENOMEM if pthread_create fails (EAGAIN,
 * its usual failure, is a shortage of resources, and as a negated errno
 * it would read as deadline 0's COSYNC_EAGAIN). */
static int add_thread_if_needed(cosync_executor *ex)
{
    if (ex->idle >= ex->queued || ex->threads == ex->max_threads)
        return 0;
    /* the thread starts with every signal blocked: they are the loop's */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc =
        cosync__fault_hit() ? EAGAIN : pthread_create(&ex->tids[ex->threads], NULL, worker, ex);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc)
        return COSYNC_ENOMEM;
    ex->threads++;
    return 0;
}

/* ---- the caller's side ---------------------------------------------- */

static cosync__job *job_get(cosync_loop *loop)
{
    cosync__job *j = loop->free_jobs;
    if (j) {
        loop->free_jobs = j->next_free;
        return j;
    }
    return cosync__mem_alloc(loop->alloc, sizeof *j);
}

static void job_put(cosync_loop *loop, cosync__job *j)
{
    j->next_free = loop->free_jobs;
    loop->free_jobs = j;
}

/* Under the pool's mutex: take @j, queued, off the queue. */
static void unqueue(cosync_executor *ex, cosync__job *j)
{
    cosync__list_remove(&ex->queue, &j->node);
    ex->queued--;
    ex->outstanding--;
}

/* Take back a job that has not started: returns the state the job was
 * in (JOB_QUEUED: taken back). */
static uint8_t withdraw(cosync__job *j)
{
    cosync_executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    uint8_t state = j->state;
    if (state == JOB_QUEUED)
        unqueue(ex, j);
    pthread_mutex_unlock(&ex->lock);
    if (state == JOB_QUEUED)
        cosync_loop_unref(j->task->loop);
    return state;
}

/* The caller is cancelled or its deadline has passed: a job not started
 * is taken back and the wait ends; a running one is told, and the wait
 * goes on, shielded, until it ends. A further cancel outranks the
 * deadline. A job that has ended, whose end is on its way to the loop,
 * counts as granted: the wait takes its value, and a cancel comes at the
 * next suspension. */
static bool job_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on)
{
    (void)pass_on;
    cosync__job *j = w->obj;
    if (w->state == COSYNC__W_GRANTED || w->shielded) {
        /* gave up already (the job may have ended since) */
        j->reason = COSYNC_ECANCELED;
        if (w->state == COSYNC__W_GRANTED)
            w->result = COSYNC_ECANCELED;
        return true;
    }
    switch (withdraw(j)) {
    case JOB_QUEUED:
        return false;
    case JOB_DONE:
        if (result == COSYNC_ECANCELED)
            cosync__waiter_task(w)->cancel_pending = true;
        return true;
    default:
        j->reason = result;
        atomic_store_explicit(&j->cancelled, true, memory_order_relaxed);
        w->shielded = true;
        return true;
    }
}

static void job_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync__job *j = w->obj;
    snprintf(buf, size, "job on executor %p", (void *)j->ex);
}

static const cosync__waiter_ops job_ops = {"job", NULL, job_describe, job_give_up};

/* The loop's default pool, made on first use. */
static int default_pool(cosync_loop *loop, cosync_executor **ex)
{
    if (!loop->executor) {
        int rc = cosync_executor_init(&loop->executor, loop->executor_threads);
        if (rc)
            return rc;
    }
    *ex = loop->executor;
    return 0;
}

/* Queue @j on its pool; 0, or an error with nothing queued. */
static int submit(cosync__job *j)
{
    cosync_executor *ex = j->ex;
    pthread_mutex_lock(&ex->lock);
    if (ex->stopping) {
        pthread_mutex_unlock(&ex->lock);
        return COSYNC_EPERM;
    }
    j->state = JOB_QUEUED;
    cosync__list_push_back(&ex->queue, &j->node);
    ex->queued++;
    ex->outstanding++;
    int rc = add_thread_if_needed(ex);
    if (rc && ex->threads == 0) {
        unqueue(ex, j); /* no thread to run it */
    } else {
        rc = 0;
        pthread_cond_signal(&ex->work);
    }
    pthread_mutex_unlock(&ex->lock);
    return rc;
}

int cosync_executor_run(cosync_executor *ex, cosync_task_fn fn, void *arg, void **result,
                        int64_t deadline)
{
    if (result)
        *result = NULL;
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (!fn)
        return COSYNC_EINVAL;
    if (deadline == 0)
        return COSYNC_EAGAIN;
    cosync_loop *loop = cur->loop;
    if (cur->cancel_pending)
        return cosync__step(cur); /* delivered at this suspension, as a wait's */
    if (deadline != COSYNC_FOREVER && deadline <= loop->now)
        return COSYNC_ETIMEDOUT;
    /* the job runs while the task is away, when its stack holds another
     * task's bytes (docs/stacks.md, "The rule") */
    if (cosync__dense_holds(cur, arg))
        return COSYNC_EINVAL;
    int rc = ex ? 0 : default_pool(loop, &ex);
    if (rc)
        return rc;
    cosync__job *j = job_get(loop);
    if (!j)
        return COSYNC_ENOMEM;
    *j = (cosync__job){.fn = fn, .arg = arg, .local = cur->local, .task = cur, .ex = ex};
    atomic_init(&j->cancelled, false);
    cosync_loop_ref(loop);
    rc = submit(j);
    if (rc) {
        cosync_loop_unref(loop);
        job_put(loop, j);
        return rc;
    }
    cosync__waiter *w = cosync__waiter_prepare(cur, &job_ops, j);
    rc = cosync__wait(w, deadline);
    if (j->state == JOB_DONE) { /* it ran: its result is the caller's, whatever ended the wait */
        if (result)
            *result = j->result;
        if (rc == 0)
            rc = j->status;
    }
    cur->w.shielded = false;
    job_put(loop, j);
    return rc;
}

int cosync_to_thread(cosync_task_fn fn, void *arg, void **result, int64_t deadline)
{
    return cosync_executor_run(NULL, fn, arg, result, deadline);
}

bool cosync_job_cancelled(void)
{
    cosync__job *j = running_job;
    return j && atomic_load_explicit(&j->cancelled, memory_order_relaxed);
}

void cosync__executor_loop_destroy(cosync_loop *loop)
{
    /* nothing is outstanding: every job held the loop until its end */
    cosync_executor_destroy(loop->executor);
    loop->executor = NULL;
    while (loop->free_jobs) {
        cosync__job *j = loop->free_jobs;
        loop->free_jobs = j->next_free;
        cosync__mem_free(loop->alloc, j);
    }
}
