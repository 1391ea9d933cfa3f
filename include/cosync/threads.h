/*
 * cosync/threads.h - the threads layer: calls into a loop from other
 * threads (loop.call_soon_threadsafe), tasks started from them
 * (asyncio.run_coroutine_threadsafe), references that keep a loop waiting
 * for them, and thread pools that run blocking functions for tasks
 * (loop.run_in_executor, asyncio.to_thread). Included by <cosync.h>;
 * docs/threads.md is the guide.
 *
 * These are the only calls of the library that other threads may make on
 * a loop: each doc block says which thread may call it.
 */
#ifndef COSYNC_THREADS_H
#define COSYNC_THREADS_H

#ifndef COSYNC_H
#error "include <cosync.h>, which includes this header"
#endif

#include <pthread.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ========================================================================
 * Calls into a loop from any thread
 * ===================================================================== */

/** A call for cosync_loop_call_threadsafe, embedded by the caller. Fields
 * are private. */
typedef struct cosync_call {
    struct cosync_call *next; /* private */
    void (*fn)(void *arg);    /* private */
    void *arg;                /* private */
    cosync_callback soon;     /* private: a call made on the loop's own thread */
} cosync_call;

/**
 * cosync_loop_call_threadsafe - run @fn(@arg) on @loop's thread
 * (loop.call_soon_threadsafe(fn, arg)).
 * @call: the caller's record of the call; it must stay valid, and not be
 *        passed again, until @fn has started (@fn may reuse or free it).
 *
 * The call runs in the loop's own context, not in a task, at the loop's
 * next turn: after the tasks ready then have taken a step, calls in the
 * order they came. A call made on the loop's own thread while it runs (in
 * a task or callback of it) takes its place as cosync_loop_call_soon's
 * does: after what is ready now, before what is made ready after it, in
 * turn with the callbacks. No task is current there, so @fn cannot suspend (a
 * blocking call returns COSYNC_EPERM), and cosync_loop_current() is @loop;
 * it may do what code outside a task
 * may: set an event or a future, release a semaphore, put into a queue
 * without waiting, spawn tasks onto the loop (cosync_loop_spawn), stop it
 * (cosync_loop_stop), or make further calls. A loop whose tasks are all
 * blocked waits for a call only while a reference keeps it
 * (cosync_loop_ref): otherwise its run may end, or report a deadlock,
 * before the call comes. Calls that come while the loop does not run wait
 * for its next run, or for its destruction, which runs them.
 *
 * Returns 0; COSYNC_EINVAL if @loop, @call or @fn is NULL, or if @call
 * lies in the stack of the dense task that makes the call (the loop would
 * read it while the task is away).
 * Not a suspension point. Thread-safe: any thread may call it, the loop's
 * own included, while the loop exists (a thread that holds a reference may
 * rely on that).
 */
int cosync_loop_call_threadsafe(cosync_loop *loop, cosync_call *call, void (*fn)(void *arg),
                                void *arg);

/**
 * cosync_loop_ref - keep @loop waiting for calls from other threads: while
 * it has references, a loop with nothing to run waits for a call (or for
 * its timers) instead of reporting a deadlock, a run without a main task
 * does not end, and cosync_loop_destroy waits before it frees the loop.
 * Take one before handing work to another thread that will call into the
 * loop, and drop it (cosync_loop_unref) after that thread's last call.
 * While the loop has a virtual clock, time does not move while it has
 * references: it waits for the other threads' calls instead of jumping to
 * its next timer (docs/threads.md).
 * Returns 0; COSYNC_EINVAL if @loop is NULL.
 * Not a suspension point. Thread-safe (any thread, while the loop exists).
 */
int cosync_loop_ref(cosync_loop *loop);

/**
 * cosync_loop_unref - drop a reference taken by cosync_loop_ref. A call
 * made before it (cosync_loop_call_threadsafe) is still run.
 * Returns 0; COSYNC_EINVAL if @loop is NULL; COSYNC_EPERM (and nothing
 * changes) if the loop has no reference. The jobs of cosync_to_thread
 * hold references of the same count: an unref without its ref while a
 * job is out takes the job's, and the loop may then be destroyed under
 * it (a misuse that cannot be detected).
 * Not a suspension point. Thread-safe (any thread, while the loop exists;
 * after the last reference is dropped, the loop may be destroyed at once).
 */
int cosync_loop_unref(cosync_loop *loop);

/* ========================================================================
 * Tasks started from any thread (asyncio.run_coroutine_threadsafe)
 * ===================================================================== */

/** A task that a thread has started on a loop, as that thread sees it:
 * the concurrent.futures.Future of asyncio.run_coroutine_threadsafe.
 * Embedded by the caller, and zeroed before its first use (static
 * storage, `= {0}`, or memset); set up by cosync_loop_spawn_threadsafe,
 * released by cosync_remote_destroy, and then ready to be set up again.
 * Fields are private. */
typedef struct cosync_remote {
    /* private */
    cosync_call start;       /* spawns the task */
    cosync_call cancel_call; /* cancels it */
    cosync_callback done;    /* the task's done callback */
    pthread_mutex_t lock;
    pthread_cond_t changed;
    cosync_loop *loop;
    cosync_task_fn fn;
    void *arg;
    cosync_task_opts opts;
    cosync_task task;
    void *result;
    int status;
    bool started; /* the start has run */
    bool has_opts;
    bool ended;            /* the task has ended (or was never spawned) */
    bool cancel_requested; /* by cosync_remote_cancel */
    bool cancel_queued;    /* the cancel call has yet to run */
    uintptr_t check;
} cosync_remote;

/**
 * cosync_loop_spawn_threadsafe - start @fn(@arg) as a task of @loop from
 * any thread (asyncio.run_coroutine_threadsafe(coro, loop)), and keep its
 * outcome in @r for the caller's thread.
 * @r:    the caller's record, zeroed or destroyed since its last use.
 *        It must stay valid, and not move, until cosync_remote_destroy
 *        has returned 0.
 * @opts: the task's options, as for cosync_loop_spawn (copied; a name
 *        must stay valid until the task has started); may be NULL.
 *
 * A call into @loop (cosync_loop_call_threadsafe) spawns the task there,
 * detached, in the order the loop's calls came; its end (its status and
 * result value, as cosync_task_join gives them) goes to @r, where
 * cosync_remote_wait, from any thread, waits for it. A spawn that fails
 * in the loop ends @r with its error as the status (COSYNC_ENOMEM). The
 * loop's destruction cancels the task as any other, and @r then ends with
 * the task's end (COSYNC_ECANCELED, unless the task withdraws the
 * request); a task that never ends, which the destruction reports as a
 * deadlock and drops, ends @r with COSYNC_EDEADLK as its status, so that
 * no thread waits for it for ever. As for any call, a loop whose tasks all
 * wait waits for it only while a reference keeps it (cosync_loop_ref).
 *
 * Returns 0; COSYNC_EINVAL if @loop, @r or @fn is NULL; COSYNC_EBUSY (and
 * nothing changes) if @r is in use; the negated errno of a failed
 * pthread_mutex_init or pthread_cond_init (COSYNC_ENOMEM).
 * Not a suspension point. Thread-safe: any thread, the loop's own
 * included, while the loop exists.
 */
int cosync_loop_spawn_threadsafe(cosync_loop *loop, cosync_remote *r, cosync_task_fn fn, void *arg,
                                 const cosync_task_opts *opts);

/**
 * cosync_remote_wait - block the calling thread until the task of @r has
 * ended (future.result(timeout)), and take its outcome.
 * @status:   receives the task's status (0, its failure code, or
 *            COSYNC_ECANCELED; COSYNC_EDEADLK for a task that the loop's
 *            destruction dropped, as it would never end); may be NULL.
 * @result:   receives its result value; may be NULL.
 * @deadline: an absolute time on CLOCK_MONOTONIC, in nanoseconds (as
 *            cosync_now() and cosync_deadline_after() give it outside a
 *            loop); COSYNC_FOREVER; or 0 to look without waiting.
 *
 * Once it returns 0, the loop holds nothing of @r: it may be destroyed at
 * once. A wait that times out leaves the task running (cancel it with
 * cosync_remote_cancel), as asyncio's result(timeout) does.
 * Returns 0 once the task has ended (its status may be an error: that is
 * the task's); COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT if it has
 * not; COSYNC_EINVAL if @r is NULL or not in use; COSYNC_EPERM, except
 * with deadline 0, on a thread that is running a loop (the wait would
 * block that loop: a task there waits with cosync_to_thread).
 * Blocks the calling thread (not a suspension point). Thread-safe: any
 * number of threads may wait at once.
 */
int cosync_remote_wait(cosync_remote *r, int *status, void **result, int64_t deadline);

/**
 * cosync_remote_cancel - cancel the task of @r (future.cancel()): a call
 * into the loop cancels it (cosync_task_cancel), or, if it has not been
 * spawned yet, keeps it from starting (it then ends with
 * COSYNC_ECANCELED). The task ends as it will: a task that withdraws the
 * request and returns a value ends @r with that value, where asyncio's
 * future would stay cancelled and drop it; so nothing the task made is
 * lost. Wait for the end with cosync_remote_wait.
 * Returns 0 if the request was taken (a second one while the first is on
 * its way is the same request); COSYNC_EALREADY if the task has ended;
 * COSYNC_EINVAL if @r is NULL or not in use.
 * Not a suspension point. Thread-safe (any thread, while the loop exists).
 */
int cosync_remote_cancel(cosync_remote *r);

/**
 * cosync_remote_done - whether the task of @r has ended and its outcome
 * is in @r (future.done()). false for NULL or a record not in use.
 * Not a suspension point. Thread-safe.
 */
bool cosync_remote_done(cosync_remote *r);

/**
 * cosync_remote_destroy - release @r once its task has ended.
 * Returns 0 (@r is no longer in use: it may be freed, or set up again);
 * COSYNC_EBUSY (and nothing changes) if the task has not ended, or the
 * loop still holds @r (wait with cosync_remote_wait first); COSYNC_EINVAL
 * if @r is NULL or not in use (destroyed already).
 * Not a suspension point. Thread-safe, but no other call may use @r once
 * a destroy has returned 0.
 */
int cosync_remote_destroy(cosync_remote *r);

/* ========================================================================
 * Thread pools (concurrent.futures.ThreadPoolExecutor)
 * ===================================================================== */

/** The most threads a pool may have. */
#define COSYNC_EXECUTOR_MAX_THREADS 4096

/** A pool of worker threads (opaque): made by cosync_executor_init, or by
 * a loop for its default one on first use. */
typedef struct cosync_executor cosync_executor;

/**
 * cosync_executor_init - make a pool of at most @max_threads worker
 * threads (ThreadPoolExecutor(max_workers)); 0 for the default, as
 * asyncio's default executor has: min(32, processors + 4). Threads are
 * started as jobs need them and kept until the pool is destroyed; they
 * run with every signal blocked. The tasks of any number of loops may
 * share a pool.
 * Returns 0; COSYNC_EINVAL if @ex is NULL or @max_threads is above
 * COSYNC_EXECUTOR_MAX_THREADS; COSYNC_ENOMEM; or the negated errno of a
 * failed pthread_mutex_init or pthread_cond_init.
 * Not a suspension point. Thread-safe.
 */
int cosync_executor_init(cosync_executor **ex, size_t max_threads);

/**
 * cosync_executor_destroy - stop @ex's threads (once idle) and free it
 * (executor.shutdown(wait=True)). NULL is accepted (returns 0).
 * Returns 0; COSYNC_EBUSY (and nothing changes) while a job is queued or
 * running on it, or until the end of one has reached its caller's loop
 * (the loop's thread runs that: a loop's task that waits for a job has
 * been woken when the call returns, and then the pool may go);
 * COSYNC_EPERM if called from one of its own threads.
 * Blocks the calling thread until its threads have exited (they are idle:
 * that is quick). Not a suspension point. Thread-safe, but @ex must not be
 * used, nor destroyed again, once a destroy has begun that returns 0.
 */
int cosync_executor_destroy(cosync_executor *ex);

/**
 * cosync_executor_run - run @fn(@arg, @result) on a thread of @ex and wait
 * for its end (await loop.run_in_executor(ex, fn, arg)).
 * @ex:     the pool; NULL for the loop's default one, made on first use
 *          with cosync_loop_opts.executor_threads threads at most.
 * @fn:     the blocking function: its return value is the call's; it runs
 *          on another thread, so it must not call into the loop but
 *          through cosync_loop_call_threadsafe.
 * @arg:    @fn's argument. A dense task (cosync_task_opts.dense) must not
 *          hand it anything in its own stack, which holds other tasks'
 *          bytes while it waits: @arg itself there is refused
 *          (COSYNC_EINVAL), pointers reached through it cannot be seen.
 * @result: receives what @fn stores in its second argument (NULL if @fn
 *          never ran); may be NULL (then @fn's result is dropped).
 * @deadline: see the conventions at the top of cosync.h.
 *
 * Jobs start in the order they came, as threads are free. A cancel or
 * the deadline takes a job that has not started back (@fn never runs) and
 * the call returns COSYNC_ECANCELED or COSYNC_ETIMEDOUT at once. A job
 * that has started cannot be stopped from outside: it is told
 * (cosync_job_cancelled returns true in it from then on), and the call
 * waits for its end in place, then returns COSYNC_ECANCELED or
 * COSYNC_ETIMEDOUT (a cancel outranks the deadline) with @fn's result in
 * *@result, so that nothing it made is lost (trio's to_thread.run_sync;
 * asyncio would leave the thread running and drop the result). Until the
 * job ends, the loop holds a reference (cosync_loop_ref) for it.
 *
 * Returns @fn's return value; COSYNC_ECANCELED; COSYNC_ETIMEDOUT;
 * COSYNC_EAGAIN for deadline 0 (the job is not submitted);
 * COSYNC_EPERM outside a task (or if @ex is being destroyed: a call that
 * races with the pool's destruction is a misuse); COSYNC_EINVAL if @fn is
 * NULL, or for a dense task's @arg in its own stack; COSYNC_ENOMEM if the
 * job's record cannot be had, or if no thread
 * can be started and the pool has none (with a thread, the job waits for
 * it). A task that gets COSYNC_ECANCELED and returns finishes cancelled
 * unless it uncancels, as after any suspension (docs/cancellation.md).
 * Suspension point. Not thread-safe as to the loop (call it from one of its
 * tasks); any number of loops may submit to one pool at once.
 */
int cosync_executor_run(cosync_executor *ex, cosync_task_fn fn, void *arg, void **result,
                        int64_t deadline);

/**
 * cosync_to_thread - run @fn(@arg, @result) on a thread of the loop's
 * default pool and wait for it (await asyncio.to_thread(fn, arg)): the
 * same as cosync_executor_run(NULL, @fn, @arg, @result, @deadline), with
 * its returns. Suspension point.
 */
int cosync_to_thread(cosync_task_fn fn, void *arg, void **result, int64_t deadline);

/**
 * cosync_job_cancelled - in a job's function, whether its caller has given
 * up on it (cancelled, or its deadline passed) and waits for it to end:
 * a long job polls it to stop early. false on any thread that is not
 * running a job. Not a suspension point. Thread-safe.
 */
bool cosync_job_cancelled(void);

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_THREADS_H */
