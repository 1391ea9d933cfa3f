/*
 * cosync/patterns.h - the patterns real programs build on the primitives:
 * a rate limiter (token bucket), a circuit breaker, a resource pool and a
 * worker pool. Included by <cosync.h>; docs/patterns.md is the guide.
 *
 * As the primitives: caller-embedded structs with static initialisers, a
 * final deadline on every call that can wait (0: the try form, which
 * returns COSYNC_EAGAIN), waiters served strictly in arrival order, no
 * allocation when waiting. Not thread-safe: the tasks of one loop use an
 * object.
 */
#ifndef COSYNC_PATTERNS_H
#define COSYNC_PATTERNS_H

#ifndef COSYNC_H
#error "include <cosync.h>, which includes this header"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================
 * Rate limiter: a token bucket
 * ===================================================================== */

/** A token bucket: @rate tokens come every @period, up to @burst of them
 * kept (Go's rate.Limiter, tokio's leaky bucket). Fields are private. */
typedef struct cosync_ratelimit {
    /* private */
    cosync__waitq q;
    cosync__timer timer; /* wakes the head of the queue when its tokens are there */
    int64_t rate;        /* tokens a period */
    int64_t period;      /* ns */
    int64_t burst;       /* tokens the bucket holds at most */
    int64_t credit;      /* in units of 1/rate token-periods: a token is `period` of them */
    int64_t last;        /* when credit was brought up to date; COSYNC_FOREVER: never (full) */
    uint8_t dead;
} cosync_ratelimit;

/** A static rate limiter, full at its first use. Arguments as
 * cosync_ratelimit_init's; invalid ones make every call return
 * COSYNC_EINVAL. */
#define COSYNC_RATELIMIT_INIT(rate, period, burst)                                                 \
    {                                                                                              \
        COSYNC__WAITQ_INIT, {NULL, NULL, NULL, COSYNC_FOREVER, 0, NULL}, (rate), (period),         \
            (burst), 0, COSYNC_FOREVER, 0                                                          \
    }

/** The largest @burst * @period (in tokens times nanoseconds) a limiter
 * takes: 2^62, a bucket of 4.6 billion tokens refilled each second. */
#define COSYNC_RATELIMIT_MAX_SPAN (INT64_C(1) << 62)

/**
 * cosync_ratelimit_init - a token bucket that gains @rate tokens every
 * @period nanoseconds, evenly (one each @period / @rate), and keeps at
 * most @burst; it starts full. "10 requests a second, bursts of 3" is
 * (10, COSYNC_SEC(1), 3).
 * Returns 0; COSYNC_EINVAL if a value is below 1, or @burst * @period is
 * above COSYNC_RATELIMIT_MAX_SPAN. Not a suspension point. Not thread-safe.
 */
int cosync_ratelimit_init(cosync_ratelimit *rl, int64_t rate, int64_t period, int64_t burst);

/**
 * cosync_ratelimit_acquire - take @n tokens, waiting until the bucket has
 * them (rate.Limiter.WaitN). Waiters are served in arrival order: one
 * that asks for many is not passed by later ones that ask for few, and a
 * newcomer never takes tokens while others wait. The tokens are on the
 * loop's clock (the virtual clock's too).
 * @n:        1 to the limiter's burst.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * A wait ended by a cancel or the deadline has taken nothing; a wait
 * granted before a cancel keeps its tokens (the cancel comes at the next
 * suspension).
 * Returns 0; COSYNC_EAGAIN (deadline 0) / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EINVAL if @n is out of range, or the limiter
 * is destroyed or was statically initialised with bad values; COSYNC_EPERM
 * outside a task or from another loop than the waiters' (only when it
 * cannot complete at once).
 * Suspension point (unless the tokens are there and nobody waits). Not
 * thread-safe.
 */
int cosync_ratelimit_acquire(cosync_ratelimit *rl, int64_t n, int64_t deadline);

/**
 * cosync_ratelimit_tokens - the whole tokens in the bucket now (those
 * still to be handed to waiters included: a waiter takes its tokens when
 * they are all there); COSYNC_EINVAL for a destroyed or invalid limiter.
 * Not a suspension point.
 */
int64_t cosync_ratelimit_tokens(cosync_ratelimit *rl);

/**
 * cosync_ratelimit_waiters - the tasks waiting for tokens.
 * Not a suspension point.
 */
size_t cosync_ratelimit_waiters(const cosync_ratelimit *rl);

/**
 * cosync_ratelimit_destroy - end @rl's life: later calls return
 * COSYNC_EINVAL.
 * Returns 0; COSYNC_EBUSY while tasks wait (nothing changes);
 * COSYNC_EINVAL if destroyed already. Not a suspension point.
 */
int cosync_ratelimit_destroy(cosync_ratelimit *rl);

/* ========================================================================
 * Circuit breaker
 * ===================================================================== */

/** The states of a circuit breaker. */
typedef enum cosync_breaker_state {
    COSYNC_BREAKER_CLOSED,    /* calls go through; failures are counted */
    COSYNC_BREAKER_OPEN,      /* calls fail fast (COSYNC_EOPEN) until the reset timeout */
    COSYNC_BREAKER_HALF_OPEN, /* one trial call goes through; its outcome decides */
} cosync_breaker_state;

/** A circuit breaker: after @threshold failures in a row it opens and
 * fails calls fast; @reset_timeout later it lets one trial call through,
 * which closes it again or opens it for another @reset_timeout. Fields
 * are private. */
typedef struct cosync_breaker {
    /* private */
    int64_t threshold;
    int64_t reset_timeout;
    int64_t failures; /* in a row, while closed */
    int64_t opened_at;
    uint64_t era; /* changes with every change of state: a call's ticket */
    uint8_t state;
    bool trial; /* half-open, and the trial call is under way */
    uint8_t dead;
} cosync_breaker;

/** A static circuit breaker, closed; invalid arguments make every call
 * return COSYNC_EINVAL. */
#define COSYNC_BREAKER_INIT(threshold, reset_timeout)                                              \
    {                                                                                              \
        (threshold), (reset_timeout), 0, 0, 0, COSYNC_BREAKER_CLOSED, false, 0                     \
    }

/**
 * cosync_breaker_init - a closed breaker that opens after @threshold
 * failures in a row, and lets a trial call through @reset_timeout
 * nanoseconds (on the loop's clock) after it opened.
 * Returns 0; COSYNC_EINVAL if @threshold < 1 or @reset_timeout < 0.
 * Not a suspension point. Not thread-safe.
 */
int cosync_breaker_init(cosync_breaker *b, int64_t threshold, int64_t reset_timeout);

/**
 * cosync_breaker_enter - ask to make a call through @b. Closed: yes.
 * Open: no, until the reset timeout has passed; then the breaker is
 * half-open and this call is its trial. Half-open with the trial under
 * way: no. A call let through must be followed by cosync_breaker_leave
 * with its @ticket and outcome.
 * @ticket: receives the call's ticket.
 * Returns 0; COSYNC_EOPEN (the call must not be made: asyncio programs'
 * CircuitBreakerOpenError); COSYNC_EINVAL for a NULL argument or a
 * destroyed or invalid breaker.
 * Not a suspension point. Not thread-safe.
 */
int cosync_breaker_enter(cosync_breaker *b, uint64_t *ticket);

/**
 * cosync_breaker_leave - report the outcome of a call let through by
 * cosync_breaker_enter: @status 0 or positive is a success, negative a
 * failure, but COSYNC_ECANCELED, which says nothing of the service (as
 * asyncio's CancelledError is not an Exception): a cancelled trial lets
 * the next call be the trial. Closed: a success resets the count of
 * failures, the @threshold-th failure in a row opens the breaker. The
 * trial: a success closes it, a failure opens it again. The outcome of
 * a call that entered before the breaker last changed state is ignored
 * (a slow call that entered while closed does not decide a trial).
 * Returns 0; COSYNC_EINVAL for a destroyed or invalid breaker.
 * Not a suspension point. Not thread-safe.
 */
int cosync_breaker_leave(cosync_breaker *b, uint64_t ticket, int status);

/**
 * cosync_breaker_call - make the call @fn(@arg, @result) through @b:
 * cosync_breaker_enter, then @fn in the calling task, then
 * cosync_breaker_leave with what @fn returned. @result may be NULL (@fn
 * then writes to a slot of the call's own, dropped).
 * Returns what @fn returned; COSYNC_EOPEN without calling @fn; or
 * COSYNC_EINVAL (@fn NULL, or as cosync_breaker_enter).
 * A suspension point where @fn is one. Not thread-safe.
 */
int cosync_breaker_call(cosync_breaker *b, cosync_task_fn fn, void *arg, void **result);

/**
 * cosync_breaker_get_state - the breaker's state now (an open one whose
 * reset timeout has passed says COSYNC_BREAKER_HALF_OPEN); COSYNC_EINVAL
 * (as an int) for a destroyed or invalid breaker.
 * Not a suspension point.
 */
int cosync_breaker_get_state(cosync_breaker *b);

/**
 * cosync_breaker_failures - the failures in a row counted while closed.
 * Not a suspension point.
 */
int64_t cosync_breaker_failures(const cosync_breaker *b);

/**
 * cosync_breaker_reset - close @b by hand, its count at 0 (outcomes of
 * calls under way are then ignored).
 * Returns 0; COSYNC_EINVAL for a destroyed or invalid breaker.
 * Not a suspension point.
 */
int cosync_breaker_reset(cosync_breaker *b);

/**
 * cosync_breaker_destroy - end @b's life: later calls return
 * COSYNC_EINVAL. Returns 0; COSYNC_EINVAL if destroyed already.
 * Not a suspension point.
 */
int cosync_breaker_destroy(cosync_breaker *b);

/* ========================================================================
 * Resource pool
 * ===================================================================== */

/** How a pool makes and ends its resources. */
typedef struct cosync_pool_ops {
    /* Make a resource (open a connection): 0 with it in *@res, or a
     * negative code. Runs in the task that acquires, and may suspend. */
    int (*create)(void *arg, void **res);
    /* End a resource (close the connection). Must not suspend: it runs in
     * cosync_pool_release, _discard, _close and _destroy. May be NULL. */
    void (*destroy)(void *arg, void *res);
} cosync_pool_ops;

/** A pool of at most max_size resources, made as tasks need them and
 * reused (asyncpg's and aiohttp's connection pools). Fields are private. */
typedef struct cosync_pool {
    /* private */
    cosync__waitq q;
    void **idle; /* max_size slots: the idle resources, the warmest last */
    size_t nidle;
    size_t in_use;
    size_t creating; /* slots taken by tasks that are making a resource */
    size_t max_size;
    cosync_pool_ops ops;
    void *arg;
    bool closed;
    uint8_t dead;
} cosync_pool;

/**
 * cosync_pool_init - a pool of at most @max_size resources, made by
 * @ops->create(@arg, ...) when a task needs one and none is idle, and
 * ended by @ops->destroy(@arg, res) (the ops are copied).
 * Returns 0; COSYNC_EINVAL if @max_size is 0 (or more pointers than
 * fit in memory) or an argument (or @ops->create) is NULL; COSYNC_ENOMEM
 * (the pool's storage for its idle resources, @max_size pointers, is the
 * one allocation).
 * Not a suspension point. Not thread-safe.
 */
int cosync_pool_init(cosync_pool *pool, size_t max_size, const cosync_pool_ops *ops, void *arg);

/**
 * cosync_pool_acquire - take a resource (async with pool.acquire()): an
 * idle one (the one released last), or, while the pool has fewer than
 * max_size, a new one made by the create function in the calling task;
 * else wait until one is released. Waiters are served in arrival order,
 * and a newcomer never takes a resource while others wait. A resource
 * discarded, or whose making failed, lets the next waiter make one.
 * @res:      receives the resource.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form; the
 *            create function has its own deadlines.
 * A wait ended by a cancel or the deadline has taken nothing; one granted
 * a resource before a cancel keeps it (the cancel comes at the next
 * suspension, which may be in the create function).
 * Returns 0; what the create function returned, if it failed (even if
 * the pool was closed meanwhile); COSYNC_EAGAIN (deadline 0: with room in
 * the pool, the try form still makes a resource, which may suspend) /
 * COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_ESHUTDOWN once the pool is
 * closed (for waiters too, and for a task whose resource was made after
 * the close: it is destroyed);
 * COSYNC_EINVAL (a NULL argument, a destroyed pool); COSYNC_EPERM outside
 * a task or from another loop than the waiters' (only when it must wait).
 * Suspension point (unless an idle resource is taken). Not thread-safe.
 */
int cosync_pool_acquire(cosync_pool *pool, void **res, int64_t deadline);

/**
 * cosync_pool_release - give back a resource taken with
 * cosync_pool_acquire: to the first waiter, or to the idle ones; once the
 * pool is closed, it is destroyed.
 * Returns 0; COSYNC_EPERM if no resource is out (a release too many);
 * COSYNC_EINVAL (NULL pool, destroyed pool).
 * Not a suspension point. Not thread-safe.
 */
int cosync_pool_release(cosync_pool *pool, void *res);

/**
 * cosync_pool_discard - give back a resource that is broken: it is
 * destroyed, and the first waiter makes a new one in its place.
 * Returns as cosync_pool_release. Not a suspension point. Not thread-safe.
 */
int cosync_pool_discard(cosync_pool *pool, void *res);

/**
 * cosync_pool_close - close @pool (pool.close()): waiters and later
 * acquires get COSYNC_ESHUTDOWN, idle resources are destroyed now and
 * those out when they are given back. Closing twice does nothing.
 * Returns 0; COSYNC_EINVAL for a NULL or destroyed pool.
 * Not a suspension point. Not thread-safe.
 */
int cosync_pool_close(cosync_pool *pool);

/**
 * cosync_pool_destroy - free @pool's storage, destroying its idle
 * resources.
 * Returns 0; COSYNC_EBUSY (nothing changes) while a resource is out or
 * being made, or a task waits; COSYNC_EINVAL for a NULL or destroyed
 * pool. Not a suspension point. Not thread-safe.
 */
int cosync_pool_destroy(cosync_pool *pool);

/** The pool's counts: resources that exist (idle, out, being made),
 * idle ones, ones out, and tasks waiting. */
typedef struct cosync_pool_stats {
    size_t size;
    size_t idle;
    size_t in_use;
    size_t waiters;
} cosync_pool_stats;

/**
 * cosync_pool_get_stats - fill @stats. Returns 0; COSYNC_EINVAL for a
 * NULL argument. Not a suspension point.
 */
int cosync_pool_get_stats(const cosync_pool *pool, cosync_pool_stats *stats);

/* ========================================================================
 * Worker pool: at most N tasks run the jobs submitted, in order
 * ===================================================================== */

/** Options for cosync_workerpool_init; zeroed fields take the defaults. */
typedef struct cosync_workerpool_opts {
    size_t workers; /* at most this many jobs run at once; >= 1 */
    size_t backlog; /* jobs that wait for a worker before a submit must wait
                     * too (asyncio.Queue's maxsize); 0: no bound */
    /* The workers' spawn options: name (copied; NULL or "": "worker"; the
     * workers are named "<name>-0" up to "<name>-<workers - 1>"),
     * stack_size, dense, local (each job starts with it as its task-local
     * pointer; not the submitter's). eager is ignored: a worker always
     * starts at once (see cosync_workerpool_submit). */
    cosync_task_opts task;
    /* Called once for every job submitted, when it has ended: with the
     * status and result it returned, or, for a job that never ran (a
     * cancelling shutdown dropped it), COSYNC_ESHUTDOWN and NULL. It runs
     * in the worker, or in the call that dropped the job, possibly outside
     * any task: it must not suspend. May be NULL. */
    void (*done)(void *ctx, void *arg, int status, void *result);
    void *ctx;
} cosync_workerpool_opts;

/** A worker pool. Caller-embedded; fields are private. It needs an init. */
typedef struct cosync_workerpool {
    /* private */
    cosync_queue q;           /* the backlog: {fn, arg} pairs */
    cosync__waitq ended;      /* shutdowns waiting for the workers to end */
    struct cosync__worker *w; /* `workers` slots, one per worker task */
    cosync_loop *loop;        /* the workers' loop while any is alive */
    cosync_workerpool_opts opts;
    size_t alive, idle, busy;
    uint64_t submitted, ok, failed, dropped;
    uint8_t shut, cancelled, dead;
} cosync_workerpool;

/**
 * cosync_workerpool_init - a pool of at most @opts->workers worker tasks
 * that run the jobs submitted to it, in the order submitted: the queue and
 * workers of asyncio's worker pattern (tasks that loop on queue.get()),
 * Go's worker pool. Workers are spawned as jobs need them, in the loop of
 * the first submit, and live until the pool is shut down. A worker that is
 * cancelled otherwise (by the loop's close) ends: at once if idle, else
 * when its job returns, unless the job withdrew the cancel
 * (cosync_task_uncancel).
 * Returns 0; COSYNC_EINVAL if @wp or @opts is NULL, or @opts->workers is 0
 * or above SIZE_MAX / 64; COSYNC_ENOMEM (nothing is kept).
 * Not a suspension point. Not thread-safe.
 */
int cosync_workerpool_init(cosync_workerpool *wp, const cosync_workerpool_opts *opts);

/**
 * cosync_workerpool_submit - have @fn(@arg, &result) run by a worker, after
 * the jobs submitted before it. A job is a task body: its status and
 * result go to the done callback. If no worker is idle and fewer than
 * @opts->workers are alive, a worker is spawned first, and starts at once
 * (an eager start): a job waiting in the backlog can begin before this
 * returns. If the backlog is full, waits for room.
 * @deadline: for the wait for room; 0: the try form.
 * Returns 0 (the job will run, or reach the done callback as dropped);
 * COSYNC_EAGAIN / COSYNC_ETIMEDOUT (backlog full); COSYNC_ECANCELED;
 * COSYNC_ESHUTDOWN once the pool is shut down; if no worker is alive and
 * none could be started, the spawn's error (COSYNC_ENOMEM, COSYNC_EINVAL
 * for an absurd stack size); COSYNC_ENOMEM if the backlog could not grow;
 * COSYNC_EINVAL for a NULL @fn or a destroyed pool; COSYNC_EPERM outside a
 * task, or from another loop than the workers'. The job is submitted only
 * when it returns 0. Suspension point only while the backlog is full.
 * Not thread-safe.
 */
int cosync_workerpool_submit(cosync_workerpool *wp, cosync_task_fn fn, void *arg, int64_t deadline);

/**
 * cosync_workerpool_join - wait until every job submitted has ended (run,
 * or dropped): asyncio's `await queue.join()`. The pool goes on.
 * Returns 0 (at once if none is left); COSYNC_EAGAIN / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EDEADLK if called from one of the pool's jobs
 * when it would wait (it waits for itself); COSYNC_EPERM outside a task or
 * from another loop than the workers' (when it would wait); COSYNC_EINVAL
 * for a destroyed pool. Suspension point (unless nothing is left).
 * Not thread-safe.
 */
int cosync_workerpool_join(cosync_workerpool *wp, int64_t deadline);

/**
 * cosync_workerpool_shutdown - stop taking jobs, then wait until every
 * worker has ended (Executor.shutdown(wait, cancel_futures)). Later and
 * waiting submits get COSYNC_ESHUTDOWN. Without @cancel, the workers run
 * every job already submitted first. With @cancel, the jobs not yet begun
 * are dropped (done callback: COSYNC_ESHUTDOWN) and the running ones are
 * cancelled, once (a later call does not cancel them again): each sees
 * COSYNC_ECANCELED at its current or next suspension.
 * The shutdown takes effect at once and stays whatever the wait ends in;
 * call it again to wait again, or with @cancel to make it cancel.
 * @deadline: for the wait for the workers; 0: do not wait.
 * Returns 0 once no worker is alive; COSYNC_EAGAIN / COSYNC_ETIMEDOUT
 * while some are; COSYNC_ECANCELED; COSYNC_EDEADLK if called from one of
 * the pool's jobs with a deadline other than 0; COSYNC_EPERM (when it must
 * wait) outside a task or from another loop than the workers';
 * COSYNC_EINVAL for a NULL or destroyed pool. Suspension point (unless
 * @deadline is 0 or no worker is alive). Not thread-safe.
 */
int cosync_workerpool_shutdown(cosync_workerpool *wp, bool cancel, int64_t deadline);

/**
 * cosync_workerpool_destroy - free @wp's storage. Jobs still in the backlog
 * (only possible when every worker was cancelled from outside: by the
 * loop's close) are dropped, through the done callback.
 * Returns 0; COSYNC_EBUSY (nothing changes) while a worker is alive or a
 * task waits on the pool (shut it down and wait first); COSYNC_EINVAL for
 * a NULL or destroyed pool. Not a suspension point. Not thread-safe.
 */
int cosync_workerpool_destroy(cosync_workerpool *wp);

/** The pool's counts: workers alive, idle (waiting for a job) and busy
 * (in a job); jobs waiting in the backlog; jobs submitted, run with a
 * status >= 0, run with a status < 0, and dropped unrun. */
typedef struct cosync_workerpool_stats {
    size_t workers;
    size_t idle;
    size_t busy;
    size_t queued;
    uint64_t submitted;
    uint64_t succeeded;
    uint64_t failed;
    uint64_t dropped;
} cosync_workerpool_stats;

/**
 * cosync_workerpool_get_stats - fill @stats. Returns 0; COSYNC_EINVAL for
 * a NULL argument. Not a suspension point. Not thread-safe.
 */
int cosync_workerpool_get_stats(const cosync_workerpool *wp, cosync_workerpool_stats *stats);

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_PATTERNS_H */
