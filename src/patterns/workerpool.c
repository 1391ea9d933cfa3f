/*
 * A worker pool: a queue of jobs and the tasks that take them, asyncio's
 * worker pattern made one object.
 *
 * Workers are spawned as submits need them and always start eagerly, so a
 * worker that exists has run: its own code keeps the counts (alive, idle,
 * busy) and frees its slot when it ends, whatever ends it. A spawn whose
 * task never ran (no stack, or cancelled by the loop's close) is seen at
 * once by its submit, which collects it. A job dropped by a cancelling
 * shutdown still ends through finish(), so the queue's join and the done
 * callback see every job once.
 */
#include <string.h>

#include "fault.h"
#include "waitq.h"

/* One worker's place: its task, and what it is doing. */
struct cosync__worker {
    cosync_workerpool *pool;
    cosync_task task;
    bool taken;   /* a worker is spawned in it */
    bool started; /* that worker has run (it stays set once it ends) */
    bool in_job;  /* running a job: a cancelling shutdown cancels it */
};

struct job {
    cosync_task_fn fn;
    void *arg;
};

static bool usable(const cosync_workerpool *wp)
{
    return wp && !wp->dead && wp->w;
}

static void finish(cosync_workerpool *wp, const struct job *j, bool ran, int status, void *result)
{
    if (!ran)
        wp->dropped++;
    else if (status < 0)
        wp->failed++;
    else
        wp->ok++;
    if (wp->opts.done)
        wp->opts.done(wp->opts.ctx, j->arg, status, result);
    (void)cosync_queue_task_done(&wp->q);
}

/* Whether the running task is one of @wp's workers. */
static bool called_by_worker(const cosync_workerpool *wp)
{
    cosync_task cur = cosync_task_current();
    for (size_t i = 0; cur.rec && i < wp->opts.workers; i++)
        if (wp->w[i].taken && wp->w[i].started && wp->w[i].task.id == cur.id)
            return true;
    return false;
}

static void worker_ended(cosync_workerpool *wp, struct cosync__worker *self)
{
    self->taken = false;
    if (--wp->alive == 0) {
        wp->loop = NULL;
        cosync__waitq_grant_all(&wp->ended, 0);
    }
}

static int work(void *arg, void **result)
{
    struct cosync__worker *self = arg;
    cosync_workerpool *wp = self->pool;
    (void)result;
    self->started = true;
    wp->alive++;
    wp->loop = cosync__current()->loop;
    for (;;) {
        struct job j;
        int rc = 0;
        /* jobs handed to workers that have not run yet were submitted
         * before the free ones behind them: let them start first */
        while (rc == 0 && wp->q.reserved_items && cosync_queue_qsize(&wp->q) > wp->q.reserved_items)
            rc = cosync_yield();
        if (rc != 0) /* the worker was cancelled */
            break;
        wp->idle++;
        rc = cosync_queue_get(&wp->q, &j, COSYNC_FOREVER);
        wp->idle--;
        if (rc != 0) /* shut down and drained, or the worker was cancelled */
            break;
        if (wp->cancelled) { /* handed to this worker before the shutdown */
            finish(wp, &j, false, COSYNC_ESHUTDOWN, NULL);
            continue;
        }
        void *res = NULL;
        (void)cosync_task_set_local(wp->opts.task.local);
        self->in_job = true;
        wp->busy++;
        int status = j.fn(j.arg, &res);
        wp->busy--;
        self->in_job = false;
        finish(wp, &j, true, status, res);
        if (cosync_task_cancelling(cosync_task_current()) > 0)
            break; /* cancelled (the loop's close) and the job took it */
    }
    worker_ended(wp, self);
    return 0;
}

static struct cosync__worker *free_slot(cosync_workerpool *wp)
{
    for (size_t i = 0; i < wp->opts.workers; i++)
        if (!wp->w[i].taken)
            return &wp->w[i];
    return NULL;
}

/* "<base>-<index>" in the 31 bytes a task keeps of its name, the base
 * cut (before a UTF-8 character that would not fit) to leave the index. */
static void name_worker(char name[32], const char *base, size_t index)
{
    char suffix[24];
    int n = snprintf(suffix, sizeof suffix, "-%zu", index);
    size_t room = 31 - (size_t)n, len = strlen(base);
    if (len > room) {
        len = room;
        while (len > 0 && ((unsigned char)base[len] & 0xC0) == 0x80)
            len--;
    }
    memcpy(name, base, len);
    memcpy(name + len, suffix, (size_t)n + 1);
}

/* One more job is coming: start a worker for it unless one is idle with
 * nothing handed to it yet, or all are alive. A failed start is an error
 * only when no worker is alive to run the job. */
static int start_worker_if_needed(cosync_workerpool *wp)
{
    if (wp->alive >= wp->opts.workers || cosync_queue_qsize(&wp->q) < wp->idle)
        return 0;
    struct cosync__worker *slot = free_slot(wp);
    *slot = (struct cosync__worker){.pool = wp, .taken = true};
    char name[32];
    name_worker(name, wp->opts.task.name, (size_t)(slot - wp->w));
    cosync_task_opts opts = wp->opts.task;
    opts.name = name;
    int rc = cosync__spawn_started(&slot->task, work, slot, &opts, &slot->started);
    if (rc != 0) {
        slot->taken = false;
        return wp->alive ? 0 : rc;
    }
    return 0;
}

/* A call that would wait on @wp from the running task. */
static int check_waiter(const cosync_workerpool *wp)
{
    struct cosync__task *cur = cosync__current();
    if (!cur || (wp->loop && wp->loop != cur->loop))
        return COSYNC_EPERM;
    return called_by_worker(wp) ? COSYNC_EDEADLK : 0;
}

int cosync_workerpool_init(cosync_workerpool *wp, const cosync_workerpool_opts *opts)
{
    if (!wp || !opts || opts->workers == 0 || opts->workers > SIZE_MAX / 64)
        return COSYNC_EINVAL;
    const char *name = opts->task.name && *opts->task.name ? opts->task.name : "worker";
    size_t slots = opts->workers * sizeof(struct cosync__worker);
    struct cosync__worker *w = cosync__mem_alloc(NULL, slots + strlen(name) + 1);
    if (!w)
        return COSYNC_ENOMEM;
    *wp = (cosync_workerpool){.ended = COSYNC__WAITQ_INIT, .w = w, .opts = *opts};
    int rc = cosync_queue_init(&wp->q, sizeof(struct job), opts->backlog);
    if (rc) {
        cosync__mem_free(NULL, w);
        wp->w = NULL;
        return rc;
    }
    for (size_t i = 0; i < opts->workers; i++)
        w[i] = (struct cosync__worker){.pool = wp};
    wp->opts.task.name = strcpy((char *)w + slots, name);
    return 0;
}

int cosync_workerpool_submit(cosync_workerpool *wp, cosync_task_fn fn, void *arg, int64_t deadline)
{
    if (!usable(wp) || !fn)
        return COSYNC_EINVAL;
    if (wp->shut)
        return COSYNC_ESHUTDOWN;
    struct cosync__task *cur = cosync__current();
    if (!cur || (wp->loop && wp->loop != cur->loop))
        return COSYNC_EPERM;
    int rc = start_worker_if_needed(wp);
    if (rc == 0)
        rc = cosync_queue_put(&wp->q, &(struct job){fn, arg}, deadline);
    if (rc == 0)
        wp->submitted++;
    return rc;
}

int cosync_workerpool_join(cosync_workerpool *wp, int64_t deadline)
{
    if (!usable(wp))
        return COSYNC_EINVAL;
    int rc = cosync_queue_join(&wp->q, 0);
    if (rc != COSYNC_EAGAIN && rc != COSYNC_EPERM)
        return rc;
    if (deadline == 0)
        return COSYNC_EAGAIN;
    return (rc = check_waiter(wp)) ? rc : cosync_queue_join(&wp->q, deadline);
}

/* Drop every job no worker has been handed, and cancel the running ones. */
static void cancel_jobs(cosync_workerpool *wp)
{
    struct job j;
    while (cosync_queue_get(&wp->q, &j, 0) == 0) /* never one handed to a worker */
        finish(wp, &j, false, COSYNC_ESHUTDOWN, NULL);
    for (size_t i = 0; i < wp->opts.workers; i++)
        if (wp->w[i].in_job)
            (void)cosync_task_cancel(wp->w[i].task);
}

static void ended_cancel(cosync__waiter *w)
{
    cosync__waitq_remove(&((cosync_workerpool *)w->obj)->ended, w);
}

static void ended_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_workerpool *wp = w->obj;
    snprintf(buf, size, "workerpool %p (shut down; workers alive: %zu, in a job: %zu)", w->obj,
             wp->alive, wp->busy);
}

static const cosync__waiter_ops ended_ops = {"workerpool", ended_cancel, ended_describe, NULL};

int cosync_workerpool_shutdown(cosync_workerpool *wp, bool cancel, int64_t deadline)
{
    if (!usable(wp))
        return COSYNC_EINVAL;
    wp->shut = 1;
    if (cancel && !wp->cancelled) {
        wp->cancelled = 1;
        cancel_jobs(wp);
    }
    (void)cosync_queue_shutdown(&wp->q, false);
    if (wp->alive == 0)
        return 0;
    if (deadline == 0)
        return COSYNC_EAGAIN;
    int rc = check_waiter(wp);
    return rc ? rc : cosync__waitq_wait(&wp->ended, &ended_ops, wp, 0, deadline);
}

int cosync_workerpool_destroy(cosync_workerpool *wp)
{
    if (!usable(wp))
        return COSYNC_EINVAL;
    /* checked before anything is dropped, so EBUSY changes nothing */
    if (wp->alive || !cosync__waitq_empty(&wp->ended) || wp->q.putters.n || wp->q.joiners.n ||
        wp->q.reserved_slots)
        return COSYNC_EBUSY;
    struct job j;
    while (cosync_queue_get(&wp->q, &j, 0) == 0)
        finish(wp, &j, false, COSYNC_ESHUTDOWN, NULL);
    int rc = cosync_queue_destroy(&wp->q);
    if (rc)
        return rc;
    cosync__mem_free(NULL, wp->w);
    wp->w = NULL;
    wp->dead = 1;
    return 0;
}

int cosync_workerpool_get_stats(const cosync_workerpool *wp, cosync_workerpool_stats *stats)
{
    if (!wp || !stats)
        return COSYNC_EINVAL;
    *stats = (cosync_workerpool_stats){
        .workers = wp->alive,
        .idle = wp->idle,
        .busy = wp->busy,
        .queued = cosync_queue_qsize(&wp->q),
        .submitted = wp->submitted,
        .succeeded = wp->ok,
        .failed = wp->failed,
        .dropped = wp->dropped,
    };
    return 0;
}
