/*
 * cosync.h - asyncio for C: cheap stackful tasks on a single-threaded loop.
 *
 * This header is the documentation. Conventions (docs/conventions.md):
 *  - actions return int: 0 (or a count) on success, a negative COSYNC_E*
 *    code on failure; predicates return bool;
 *  - every call that can block takes a final `int64_t deadline`: an absolute
 *    time on the loop's clock, COSYNC_FOREVER for none, 0 for "do not block"
 *    (COSYNC_EAGAIN instead of suspending); a passed deadline returns
 *    COSYNC_ETIMEDOUT. A call that can complete at once succeeds whatever its
 *    deadline. The exceptions: cosync_gather, cosync_gather_propagate,
 *    cosync_wait_for, cosync_task_await and cosync_taskgroup_wait cancel
 *    their unfinished tasks at the deadline, 0 included, and wait for them
 *    to finish (a suspension) before they return;
 *  - a "suspension point" may switch to other tasks; it is where a
 *    cancellation is delivered (COSYNC_ECANCELED). Code between suspension
 *    points runs atomically with respect to the loop's other tasks;
 *  - a loop and its tasks belong to one thread: nothing here is thread-safe
 *    unless its doc block says so;
 *  - a wait by a dense task (cosync_task_opts.dense) on an object in its own
 *    stack returns COSYNC_EINVAL when it would suspend (docs/stacks.md,
 *    "The rule").
 */
#ifndef COSYNC_H
#define COSYNC_H

#include "cosync/base.h"
#include "cosync/sync.h"
#include "cosync/queue.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The version of this header: major, minor, patch. */
#define COSYNC_VERSION_MAJOR 0
#define COSYNC_VERSION_MINOR 1
#define COSYNC_VERSION_PATCH 0

/** An event loop (opaque): made by cosync_loop_init, or by cosync_run for
 * the length of one run. */
typedef struct cosync_loop cosync_loop;

/* ========================================================================
 * Tasks
 * ===================================================================== */

/**
 * cosync_task - a handle to a task (asyncio.Task).
 *
 * A small value: copy it freely. The task's record lives until the task has
 * finished and has been joined (cosync_task_join, cosync_gather,
 * cosync_wait_for) or detached; after that every call with the handle
 * returns COSYNC_ESRCH instead of touching a reused record. A handle is
 * meaningful only while its loop exists.
 */
typedef struct cosync_task {
    struct cosync__task *rec; /* private */
    uint64_t id;              /* private: the record's serial when spawned; never 0 */
} cosync_task;

/** The handle that names no task. */
#define COSYNC_TASK_NONE ((cosync_task){NULL, 0})

/**
 * cosync_task_fn - the body of a task.
 * @arg:    the argument given to spawn.
 * @result: where to store the task's result value (starts as NULL).
 * Returns the task's status: 0 for success, or a negative code for failure,
 * as an exception ends an asyncio task (a positive value counts as 0).
 * Return the COSYNC_ECANCELED that a suspension point gave you to end the
 * task as cancelled.
 */
typedef int (*cosync_task_fn)(void *arg, void **result);

/** Spawn options; a NULL pointer or a zeroed struct means the defaults. */
typedef struct cosync_task_opts {
    const char *name;  /* copied (cosync_task_set_name); NULL or "": "task-<id>" */
    size_t stack_size; /* bytes of stack, guard included (usable: this less a page and
                        * 2 KiB, docs/stacks.md); 0: the loop's default */
    void *local;       /* the task's local pointer (cosync_task_get_local), as
                        * create_task(context=...); NULL: the spawner's */
    /* A dense task: it runs on one of a few stacks shared by the loop's dense
     * tasks of its stack size and, while another of them runs there, keeps
     * only the bytes of stack it uses (150-250 for a task blocked straight
     * from its body), copied out and back in: about 530 bytes a blocked task
     * in all, instead of 4.4 KiB. For crowds of shallow tasks. The rule it
     * asks of the task's code: nothing outside the task may point into its
     * stack while it is suspended (no other task or thread reads or writes
     * the task's local variables then), as the addresses then hold another
     * task's bytes. The library's own calls keep it, and a blocking call on
     * an object in the task's own stack fails at once with COSYNC_EINVAL (a
     * cancel or deadline could otherwise end the wait while the object's
     * bytes are elsewhere). A task that suspends from deep in its calls
     * copies that depth at each switch that copies it. If its saved bytes
     * must grow (it is copied out from deeper than ever before) and cannot,
     * the process ends with a message. Ignored by the ucontext backend (the
     * task gets a stack of its own). docs/stacks.md, "Dense tasks". */
    bool dense;
    /* Start the task eagerly, as asyncio 3.12's eager_task_factory and
     * 3.14's create_task(eager_start=True) do: the spawn runs it at once,
     * until it first suspends or ends, and then the caller goes on before
     * any other task runs. A task that ends in that first step is done
     * when the spawn returns (and joins without suspending). The spawn
     * stays no suspension point for the caller: a cancel that comes
     * meanwhile (from the new task) is left pending, for its next
     * suspension. Spawned other than by a task of the loop, the task is
     * queued as usual (asyncio starts a task eagerly only inside its
     * running loop). docs/tasks.md, "Eager start". */
    bool eager;
} cosync_task_opts;

/**
 * cosync_task_spawn - create a task on the current loop (asyncio.create_task).
 * @task: receives the handle; NULL to spawn it detached (fire and forget).
 * @fn:   the body; @arg its argument; @opts NULL for the defaults.
 *
 * The task is appended to the ready queue: it starts when the caller next
 * suspends, after the tasks that were already ready. With @opts->eager (or
 * the loop's eager_tasks) it starts at once instead: the spawn runs it until
 * it first suspends or ends, and the caller goes on before any other task
 * runs (see cosync_task_opts). It gets its stack when
 * it first runs and gives it back the moment it finishes; if no stack can be
 * had then, it finishes with status COSYNC_ENOMEM without running. A dense
 * task (@opts->dense) gets its place on a stack it shares then, in the same
 * way (see cosync_task_opts).
 *
 * Returns 0; COSYNC_EINVAL if @fn is NULL or @opts->stack_size is absurd;
 * COSYNC_ENOMEM if the task record cannot be allocated (nothing is created);
 * COSYNC_EPERM if called outside a task of a running loop.
 * Not a suspension point (an eager start switches to the new task and back,
 * but delivers no cancel: one that comes meanwhile stays pending). Not
 * thread-safe.
 */
int cosync_task_spawn(cosync_task *task, cosync_task_fn fn, void *arg,
                      const cosync_task_opts *opts);

/**
 * cosync_loop_spawn - create a task on @loop, from outside or inside it.
 * The same as cosync_task_spawn otherwise (use it to create a loop's first
 * task before cosync_loop_run). Returns 0; COSYNC_EINVAL if @loop or @fn
 * is NULL or @opts->stack_size is absurd; COSYNC_ENOMEM if the task record
 * cannot be allocated (nothing is created). An eager task (@opts->eager,
 * the loop's eager_tasks) starts at once only when the caller is a task of
 * @loop; otherwise it is queued. Not a suspension point (as
 * cosync_task_spawn). Not thread-safe: call it from the loop's thread.
 */
int cosync_loop_spawn(cosync_loop *loop, cosync_task *task, cosync_task_fn fn, void *arg,
                      const cosync_task_opts *opts);

/**
 * cosync_task_join - wait for a task to finish and collect it (await task).
 * @task:     the task; it must be neither detached, nor claimed by another
 *            collector, nor the caller.
 * @status:   receives the task's status (0, its failure code, or
 *            COSYNC_ECANCELED if it ended cancelled); may be NULL.
 * @result:   receives the task's result value; may be NULL.
 * @deadline: see the conventions at the top.
 *
 * On success the record is freed and @task becomes stale. If the join
 * itself fails (deadline, cancellation), the task goes on running and can
 * be joined again.
 *
 * Returns 0 once joined; COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT if
 * it has not finished in time; COSYNC_ECANCELED if the caller was
 * cancelled; COSYNC_ESRCH for a stale handle (joined already, or detached
 * and finished); COSYNC_EINVAL if the task is detached; COSYNC_EBUSY if it
 * is claimed: another task joins, gathers or waits for it (cosync_wait_for,
 * cosync_wait), or it is the main task of a running cosync_loop_run
 * (cosync_task_wait and cosync_task_await do not claim it); COSYNC_EDEADLK
 * if @task is the caller; COSYNC_EPERM outside a task or from another loop.
 * Suspension point (unless the task has already finished). Not thread-safe.
 */
int cosync_task_join(cosync_task task, int *status, void **result, int64_t deadline);

/**
 * cosync_task_wait - wait for a task to finish without collecting it
 * (`await task` where several tasks await the same one).
 * @task:     the task; any but the caller: one that another task joins,
 *            gathers or waits for, a task group's child, a detached one
 *            (while its handle is good, that is until it finishes).
 * @status:   receives the task's status, as for cosync_task_join; may be NULL.
 * @result:   receives the task's result value; may be NULL.
 * @deadline: see the conventions at the top.
 *
 * Any number of tasks may wait for one task at once, beside its collector:
 * when it finishes, all of them (and its join, gather or wait_for, if it
 * is waiting) are woken in the order their waits began, as asyncio runs a
 * task's done callbacks (cosync_wait is told before them all), and each
 * gets the outcome as it was at the finish, so the record may be
 * collected at once: the waiters still have their copy. A wait that
 * begins after the collection finds a stale handle (COSYNC_ESRCH): collect
 * a task after the tasks that wait for it. The wait only watches: whatever
 * ends it, the task goes on, and it is still to be joined, gathered or
 * detached by its owner. A task that has already finished gives its
 * outcome at once, without a suspension, as awaiting a done task does not
 * suspend in asyncio.
 *
 * Returns 0 once the task has finished (its status may be an error: that
 * is the task's, not the wait's); COSYNC_EAGAIN (deadline 0) or
 * COSYNC_ETIMEDOUT if it has not finished in time; COSYNC_ECANCELED if the
 * caller was cancelled (the task is not: cancel it with cosync_task_cancel
 * for asyncio's `await task` behaviour); COSYNC_ESRCH for a stale handle;
 * COSYNC_EDEADLK if @task is the caller; COSYNC_EPERM outside a task or
 * from another loop. @status and @result are written only on 0.
 * Suspension point (unless the task has already finished). Not thread-safe.
 */
int cosync_task_wait(cosync_task task, int *status, void **result, int64_t deadline);

/**
 * cosync_task_await - wait for a task to finish without collecting it, and
 * pass the caller's cancellation or deadline on to it (`await task`).
 * @task, @status, @result: as for cosync_task_wait.
 * @deadline: see the conventions at the top; when it passes, the task is
 *            cancelled and waited for (`async with asyncio.timeout(t):
 *            await task`).
 *
 * cosync_task_wait, but for what ends the wait: a cancellation of the
 * caller, or the deadline, cancels the task (cosync_task_cancel) and the
 * call goes on waiting for it in its place among the task's waits, as
 * asyncio's `await task` passes its cancel() on to the task and wakes
 * when the task is done. A cancellation already pending when the call
 * begins is passed on in the same way (a task cancelled while it runs
 * cancels what it awaits next, in asyncio too), except with deadline 0,
 * which comes first and leaves it pending, as in every call. A deadline
 * already passed cancels the task at once and waits (asyncio's timeout
 * cancels one loop step later). Once the call has passed a cancellation or
 * its deadline on, each further cancel of the caller is passed on to the
 * task too (as asyncio passes every cancel() on), and makes the call
 * return COSYNC_ECANCELED even after a timeout; a deadline no longer
 * counts after a cancel (asyncio's timeout would cancel the task once
 * more).
 *
 * Returns 0 once the task has finished, in time or, cancelled for the
 * deadline, other than cancelled (it withdrew the request with
 * cosync_task_uncancel, or failed its own way: @status says which);
 * COSYNC_ETIMEDOUT (COSYNC_EAGAIN for deadline 0) if it was cancelled for
 * the deadline and ended cancelled; COSYNC_ECANCELED if the caller was
 * cancelled (whatever the task then did, and even if the caller's
 * request was withdrawn meanwhile: it was delivered to this call when it
 * came, and is never lost, where asyncio returns the value of a task that
 * withdrew it); the argument errors of cosync_task_wait. @status and @result are
 * written on 0, COSYNC_ETIMEDOUT, COSYNC_EAGAIN and COSYNC_ECANCELED,
 * always with the outcome of the finished task.
 * Suspension point (unless the task has already finished). Not thread-safe.
 */
int cosync_task_await(cosync_task task, int *status, void **result, int64_t deadline);

/**
 * cosync_task_detach - let the task free itself when it finishes.
 * Returns 0 (a finished task is freed at once); COSYNC_ESRCH for a stale
 * handle; COSYNC_EBUSY if it is claimed, as for cosync_task_join (a join,
 * gather, cosync_wait_for or cosync_wait, or a running cosync_loop_run
 * whose main task it is); COSYNC_EINVAL if it is already detached or
 * belongs to a task group. Not a suspension point. Not thread-safe.
 */
int cosync_task_detach(cosync_task task);

/**
 * cosync_task_cancel - request the cancellation of a task (Task.cancel()).
 *
 * Edge-triggered: the task's current suspension (or, if it is not
 * suspended, its next one) returns COSYNC_ECANCELED once. A task cancelled
 * before it first runs never runs its body and finishes with status
 * COSYNC_ECANCELED. A wait that had already been granted when the request
 * came (a join that completed, a woken sleeper) keeps its grant; the
 * cancellation is then delivered at the next suspension. Each request adds
 * one to cosync_task_cancelling().
 *
 * Returns 0 if the request was taken; COSYNC_EALREADY if the task has
 * finished (nothing changes); COSYNC_ESRCH for a stale handle.
 * Not a suspension point (the caller goes on; cancelling yourself delivers
 * at your next suspension). Not thread-safe.
 */
int cosync_task_cancel(cosync_task task);

/**
 * cosync_task_cancelling - the number of cancellation requests not yet
 * withdrawn by cosync_task_uncancel (Task.cancelling()).
 * Returns that count (>= 0; it stops growing at INT_MAX), or COSYNC_ESRCH
 * for a stale handle.
 * Not a suspension point. Not thread-safe.
 */
int cosync_task_cancelling(cosync_task task);

/**
 * cosync_task_uncancel - withdraw one cancellation request (Task.uncancel()).
 * When the count reaches 0, a request not yet delivered is dropped too (a
 * cosync_yield the task is away in returns 0), and the task no longer
 * finishes as cancelled.
 * Returns the remaining count (>= 0), or COSYNC_ESRCH for a stale handle.
 * Not a suspension point. Not thread-safe.
 */
int cosync_task_uncancel(cosync_task task);

/**
 * cosync_task_done - whether the task has finished (Task.done()).
 * Returns false for a stale handle. Not a suspension point. Not thread-safe.
 */
bool cosync_task_done(cosync_task task);

/**
 * cosync_task_result - look at a finished task without collecting it
 * (Task.result()). @status and @result as for cosync_task_join (may be NULL).
 * Returns 0 if the task has finished; COSYNC_EAGAIN if not yet;
 * COSYNC_ESRCH for a stale handle. Not a suspension point. Not thread-safe.
 */
int cosync_task_result(cosync_task task, int *status, void **result);

/**
 * cosync_task_current - the calling task (asyncio.current_task()), or
 * COSYNC_TASK_NONE outside a task. Not a suspension point. Thread-safe (it
 * reads only the calling thread's own state).
 */
cosync_task cosync_task_current(void);

/**
 * cosync_task_name - the task's name (Task.get_name()); "task-<id>" unless
 * one was given that is not empty. The string lives as long as the record.
 * Returns NULL for a stale handle. Not a suspension point. Not thread-safe.
 */
const char *cosync_task_name(cosync_task task);

/**
 * cosync_task_set_name - rename a task (copied, up to 31 bytes; "" gives
 * back the default name, "task-<id>"). A longer name is cut before the
 * UTF-8 character that would not fit, and each control character (below
 * 0x20, and 0x7F) is kept as '?': names go into one-line reports.
 * Returns 0; COSYNC_EINVAL if @name is NULL; COSYNC_ESRCH for a stale handle.
 * Not a suspension point. Not thread-safe.
 */
int cosync_task_set_name(cosync_task task, const char *name);

/**
 * cosync_task_id - the task's serial number on its loop (1, 2, ...), or 0
 * for a stale handle. Not a suspension point. Not thread-safe.
 */
uint64_t cosync_task_id(cosync_task task);

/**
 * cosync_task_get_local - the calling task's local pointer: task-local
 * data, as asyncio's contextvars. A task starts with the pointer its
 * spawner had at the spawn (asyncio copies the context into each new
 * task, whatever the loop the new task is spawned on), or opts->local if
 * given; tasks spawned from outside any task start with NULL (or
 * opts->local). Keep the variables in a struct and
 * point at it: the pointer is the task's own, the struct is shared.
 * In a job's function on a pool's thread (cosync_to_thread), it is a
 * copy of the caller's pointer, as asyncio.to_thread runs the function
 * in a copy of the caller's context.
 * Returns the pointer; NULL outside a task and a job. Not a suspension
 * point. Thread-safe (it reads only the calling thread's own state).
 */
void *cosync_task_get_local(void);

/**
 * cosync_task_set_local - set the calling task's local pointer to @local
 * (ContextVar.set). Only this task sees the change, and the tasks it
 * spawns from now on: its spawner and the tasks it spawned earlier keep
 * theirs, as a context copied into each task keeps its own variables.
 * In a job's function it sets the job's copy: its caller keeps its own.
 * Returns 0; COSYNC_EPERM outside a task and a job. Not a suspension
 * point. Not thread-safe (but a job's function may call it on its own
 * thread).
 */
int cosync_task_set_local(void *local);

/* ========================================================================
 * Sleeping and yielding
 * ===================================================================== */

/**
 * cosync_yield - let every other ready task run once (asyncio.sleep(0)).
 * The caller goes to the back of the ready queue.
 * Returns 0, or COSYNC_ECANCELED if the caller was cancelled.
 * Suspension point. Must be called from a task (else COSYNC_EPERM).
 * Not thread-safe.
 */
int cosync_yield(void);

/**
 * cosync_sleep - suspend for @duration nanoseconds (asyncio.sleep()).
 * A duration <= 0 is cosync_yield(). Timers with equal deadlines fire in the
 * order they were armed.
 * Returns 0; COSYNC_ECANCELED if cancelled; COSYNC_EPERM outside a task.
 * Suspension point. Not thread-safe.
 */
int cosync_sleep(int64_t duration);

/**
 * cosync_sleep_until - suspend until the loop's clock reaches @deadline.
 * A deadline that has passed is cosync_yield(); COSYNC_FOREVER suspends
 * until cancelled. Returns as cosync_sleep. Suspension point. Not
 * thread-safe.
 */
int cosync_sleep_until(int64_t deadline);

/**
 * cosync_now - the current loop's clock, in nanoseconds.
 * Read at each turn of the loop (as libuv's uv_now), so it is cheap and the
 * same for every task that runs in one turn. With the virtual clock it moves
 * only when nothing is runnable, straight to the next timer. Outside a loop
 * it reads CLOCK_MONOTONIC (for a loop's clock between its runs, see
 * cosync_loop_now). Not a suspension point. Thread-safe (it reads only the
 * calling thread's own loop).
 */
int64_t cosync_now(void);

/**
 * cosync_loop_now - @loop's clock, from anywhere (loop.time()): where its
 * virtual clock stands (it does not move between runs), or CLOCK_MONOTONIC
 * for a loop on the real clock. For deadlines computed outside a run:
 * cosync_loop_now(loop) + timeout. Returns COSYNC_EINVAL (negative) if
 * @loop is NULL. Not a suspension point. Not thread-safe: call it from the
 * loop's thread, or while the loop does not run.
 */
int64_t cosync_loop_now(const cosync_loop *loop);

/**
 * cosync_deadline_after - the deadline @timeout nanoseconds from now:
 * cosync_now() + @timeout, saturating. A @timeout of COSYNC_FOREVER gives
 * COSYNC_FOREVER (asyncio's timeout=None); any other negative @timeout
 * gives cosync_now(), a deadline that has already passed, as asyncio
 * treats a negative timeout (a computed budget that ran out does not turn
 * into "no deadline"). Not a suspension point. Thread-safe, as cosync_now.
 */
int64_t cosync_deadline_after(int64_t timeout);

/* ========================================================================
 * Timeout blocks: asyncio.timeout()
 * ===================================================================== */

/**
 * cosync_timeout - a block of a task's code with a deadline
 * (`async with asyncio.timeout_at(when) as cm:`).
 *
 *     cosync_timeout tm;
 *     cosync_timeout_enter(&tm, cosync_deadline_after(COSYNC_SEC(10)));
 *     int rc = long_running_work();          // any number of calls
 *     rc = cosync_timeout_leave(&tm, rc);    // COSYNC_ETIMEDOUT if it expired
 *
 * When the deadline passes while the block runs, the task is cancelled
 * (cosync_task_cancel), once: the wait it is in, or its next suspension,
 * returns COSYNC_ECANCELED, and the code unwinds as it does for any
 * cancellation (it may suspend again to clean up). cosync_timeout_leave
 * then turns that COSYNC_ECANCELED into COSYNC_ETIMEDOUT and withdraws
 * the request, as asyncio's `__aexit__` turns the CancelledError into
 * TimeoutError, unless the task was also cancelled from elsewhere. Blocks
 * nest; the one whose deadline ended the wait reports the timeout, and an
 * inner block that did not expire passes the COSYNC_ECANCELED through.
 *
 * A deadline passed to a single call (the final `deadline` of every
 * blocking call) is the lighter tool: it arms no timer unless the call
 * waits, and it ends only that call, with COSYNC_ETIMEDOUT. A timeout
 * block is for code that makes many calls, or calls code that takes no
 * deadline.
 *
 * Caller-embedded, usually a local of the task. Its timer lives in a
 * small node the loop allocates at the enter, so a dense task may keep
 * the struct in its own stack too. All fields are private; the struct is
 * meaningful after cosync_timeout_enter.
 */
typedef struct cosync_timeout {
    /* private */
    struct cosync__timeout_node *node; /* while entered */
    int64_t when;
    int state;
} cosync_timeout;

/**
 * cosync_timeout_enter - start a timeout block in the calling task
 * (`asyncio.timeout_at(@deadline)`; `asyncio.timeout(d)` is
 * `cosync_deadline_after(d)`).
 * @tm:       the block's struct; it need not be initialised.
 * @deadline: an absolute time on the loop's clock, or COSYNC_FOREVER for
 *            none (asyncio's None; cosync_timeout_reschedule may set one
 *            later). A deadline that has already passed (0 included)
 *            expires the block at once: the task's next suspension
 *            returns COSYNC_ECANCELED (asyncio's timeout(0)).
 *
 * Every cosync_timeout_enter is paired with one cosync_timeout_leave, by
 * the same task, innermost block first, before the task's body returns.
 * A task that ends with blocks not left has them closed by its finish,
 * with a line on the loop's report stream (stderr by default).
 *
 * Returns 0; COSYNC_EPERM outside a task, or if @tm is a block this task
 * has entered and not left (asyncio's "already entered"); COSYNC_ENOMEM if
 * the node cannot be allocated. On failure nothing is entered.
 * Not a suspension point. Not thread-safe.
 */
int cosync_timeout_enter(cosync_timeout *tm, int64_t deadline);

/**
 * cosync_timeout_leave - end the calling task's innermost timeout block
 * (`__aexit__`), and say how the block ended.
 * @tm: that block.
 * @rc: what the block's code ended with (0, or the error it returns).
 *
 * If the block expired (its deadline passed while it was entered), the
 * leave withdraws the cancellation the expiry requested
 * (cosync_task_uncancel); a request the task had not received yet is
 * dropped, so it does not reach a later suspension.
 *
 * Returns COSYNC_ETIMEDOUT if the block expired, @rc is COSYNC_ECANCELED
 * and no other cancellation of the task is outstanding (the request
 * withdrawn was the only one made since the enter); otherwise @rc
 * unchanged: a block that expired but carried on to success returns its
 * success, as asyncio raises only when CancelledError leaves the block.
 * COSYNC_EPERM, and nothing changes, outside a task, or if @tm is not the
 * calling task's innermost entered block (left already, never entered,
 * another task's, or an inner block is still entered).
 * Not a suspension point. Not thread-safe.
 */
int cosync_timeout_leave(cosync_timeout *tm, int rc);

/**
 * cosync_timeout_reschedule - move an entered block's deadline
 * (Timeout.reschedule()), from its task or from another task of the same
 * loop (not when its task is a dense task and @tm lies in that task's
 * stack: docs/stacks.md, "The rule").
 * @deadline: as for cosync_timeout_enter: COSYNC_FOREVER disarms it; a
 *            deadline that has passed expires the block at once (its
 *            task is cancelled now).
 *
 * Returns 0; COSYNC_EPERM outside a task of the block's loop, or if the
 * block is not entered, or has expired already (asyncio: "Cannot change
 * state of expiring Timeout"); nothing changes then.
 * Not a suspension point. Not thread-safe.
 */
int cosync_timeout_reschedule(cosync_timeout *tm, int64_t deadline);

/**
 * cosync_timeout_when - the block's deadline (Timeout.when()): the last
 * one given to enter or reschedule, COSYNC_FOREVER for none.
 * Not a suspension point. Not thread-safe.
 */
int64_t cosync_timeout_when(const cosync_timeout *tm);

/**
 * cosync_timeout_expired - whether the block's deadline passed while it
 * was entered (Timeout.expired()): true from the expiry on, after the
 * leave too. A block entered or rescheduled with a deadline that had
 * already passed has expired, even if it suspends no more (asyncio fires
 * it at the next loop step, and reports it only if it suspends again).
 * Not a suspension point. Not thread-safe.
 */
bool cosync_timeout_expired(const cosync_timeout *tm);

/* ========================================================================
 * Combinators: gather, wait_for, wait
 * ===================================================================== */

/** What a finished task left: its status and its result value. */
typedef struct cosync_outcome {
    int status;
    void *result;
} cosync_outcome;

/**
 * cosync_gather - wait for many tasks and collect them all, in order
 * (asyncio.gather(*tasks, return_exceptions=True)).
 * @tasks: @n joinable tasks (not detached, not joined by anyone else); may be
 *         NULL only if @n is 0.
 * @out:   @n outcomes, filled in the order of @tasks; may be NULL.
 * @deadline: see the conventions at the top.
 *
 * Every task is collected (its handle becomes stale) whatever happens. If
 * the caller is cancelled, or @deadline passes, the tasks not yet finished
 * are cancelled at that moment (within cosync_task_cancel, or as the
 * deadline fires: one that has not run yet never runs), as asyncio's
 * cancel() reaches them, and waited for; their outcomes are filled. Each
 * further cancel of the caller meanwhile reaches the unfinished ones
 * again (and makes the call return COSYNC_ECANCELED). (If the task the
 * caller waited for has just finished and the caller has not run since, a
 * cancellation waits for the caller's next wait, as after any wake-up, and
 * reaches the rest then; once the call has given up, it joins the first
 * at once, and reaches the rest at once.) If every task has finished
 * already, the call returns at once without suspending, as a join of a
 * finished task does, and a cancellation pending at the call stays
 * pending.
 *
 * Returns 0 when every task has finished (look at each outcome for its
 * status); COSYNC_ECANCELED or COSYNC_ETIMEDOUT (or COSYNC_EAGAIN with
 * deadline 0) if the rest had to be cancelled; COSYNC_EINVAL if @tasks is
 * NULL and @n > 0, or if a handle is stale, detached, the caller, of
 * another loop, listed twice, or already being joined (nothing is
 * collected then; cosync_task_join tells these apart); COSYNC_EPERM
 * outside a task.
 * Suspension point. Not thread-safe.
 */
int cosync_gather(const cosync_task *tasks, size_t n, cosync_outcome *out, int64_t deadline);

/**
 * cosync_gather_propagate - wait for many tasks until all have succeeded
 * or the first fails (asyncio.gather(*tasks), return_exceptions=False).
 * @tasks:  @n joinable tasks, as for cosync_gather; may be NULL only if @n
 *          is 0.
 * @out:    @n outcomes; may be NULL. All are filled when all succeeded, or
 *          when the call gave up; after a failure, only the failed task's.
 * @failed: may be NULL; receives the index of the task whose failure
 *          ended the wait, or @n when none did. Untouched on an argument
 *          error.
 * @deadline: see the conventions at the top.
 *
 * The first task to fail, in the order the tasks finished (also before
 * the call), ends the wait; a task that ended cancelled counts as failed,
 * as asyncio's gather propagates its CancelledError. That task is
 * collected; the others are left as they are, running or not, and are
 * still the caller's to join, gather, wait for, cancel or detach (asyncio
 * leaves them running). If all finish without failing, all are collected.
 * If the caller is cancelled or @deadline passes first, the unfinished
 * tasks are cancelled at that moment (within cosync_task_cancel, or as the
 * deadline fires: one that has not run yet never runs), as asyncio's
 * gather passes its cancel() on, and waited for (shielded: each further
 * cancel is passed on to them again); then all are collected. (asyncio's
 * gather raises as soon as one of them has finished cancelled; this call
 * waits for all, so that none is left uncollected.) A cancellation pending
 * at the call, or a deadline already passed, does the same at once. If a
 * task has failed already, or all have finished, the call returns at
 * once without suspending, and a cancellation pending stays pending; so
 * does one that comes once a failure (or the last finish) has ended the
 * wait, before the caller has run again, as after any wake-up.
 *
 * Returns 0 when every task succeeded; the failed task's status (an error
 * code; COSYNC_ECANCELED for a cancelled task) with *@failed its index;
 * COSYNC_ECANCELED or COSYNC_ETIMEDOUT (COSYNC_EAGAIN with deadline 0,
 * which still cancels and waits) when the call gave up, with *@failed @n;
 * COSYNC_EINVAL if @tasks is NULL and @n > 0, or if a handle is stale,
 * detached, the caller, of another loop, listed twice, or already being
 * joined (nothing is collected then); COSYNC_EPERM outside a task.
 * Suspension point (unless a task has failed or all have finished). Not
 * thread-safe.
 */
int cosync_gather_propagate(const cosync_task *tasks, size_t n, cosync_outcome *out, size_t *failed,
                            int64_t deadline);

/**
 * cosync_wait_for - join a task with a deadline; on expiry cancel it, wait
 * for it to finish, and report the timeout (asyncio.wait_for(task, t)).
 * @task:     the task to collect; joinable, as for cosync_task_join.
 * @status, @result: as for cosync_task_join; filled whenever the task was
 * collected (on success, timeout and cancellation alike).
 * @deadline: see the conventions at the top; when it passes, the task is
 *            cancelled and collected.
 *
 * Returns 0 if the task finished in time, or if, cancelled for the
 * deadline, it still finished other than cancelled (it withdrew the
 * request with cosync_task_uncancel, or failed its own way: @status says
 * which, as asyncio.wait_for returns the value or raises the exception);
 * COSYNC_ETIMEDOUT (COSYNC_EAGAIN for deadline 0) if it had to be
 * cancelled and ended cancelled; COSYNC_ECANCELED if the caller was
 * cancelled (the task is cancelled at that moment, as by gather, and
 * collected too; each further cancel while it waits for the cancelled
 * task is passed on to it again, and a cancel after the timeout makes
 * the call return COSYNC_ECANCELED); the argument errors of
 * cosync_task_join. In every non-argument case the task has been
 * collected. A task that has finished already is collected at once,
 * without suspending (a pending cancellation stays pending).
 * Suspension point. Not thread-safe.
 */
int cosync_wait_for(cosync_task task, int *status, void **result, int64_t deadline);

/** When cosync_wait returns (asyncio's FIRST_COMPLETED, ...). */
typedef enum cosync_return_when {
    /* as soon as any task has finished */
    COSYNC_FIRST_COMPLETED = 1,
    /* as soon as any task has failed (a status that is an error other than
     * COSYNC_ECANCELED: asyncio does not count a cancelled task as an
     * exception), or when all have finished */
    COSYNC_FIRST_EXCEPTION = 2,
    /* when all have finished */
    COSYNC_ALL_COMPLETED = 3,
} cosync_return_when;

/**
 * cosync_wait - wait until some or all of @tasks have finished, without
 * collecting or cancelling any (asyncio.wait(tasks, timeout, return_when)).
 * @tasks:       @n joinable tasks (not detached, not joined by anyone else).
 * @return_when: COSYNC_FIRST_COMPLETED, COSYNC_FIRST_EXCEPTION or
 *               COSYNC_ALL_COMPLETED.
 * @index:       may be NULL; on success, set to the index in @tasks of the
 *               task that ended the wait: for COSYNC_FIRST_COMPLETED the
 *               first of them to finish, for COSYNC_FIRST_EXCEPTION the
 *               first to fail (or @n if all finished and none failed), in
 *               the order the tasks finished, even if that was before the
 *               call; @n for COSYNC_ALL_COMPLETED. Untouched on error.
 * @deadline:    see the conventions at the top.
 *
 * The tasks are only watched: they keep running when the wait ends, for
 * whatever reason, and each is still to be joined (or gathered, waited
 * for, cancelled) by the caller; cosync_task_done() tells the finished
 * ones from the pending ones, as asyncio.wait's two sets do. While the
 * wait lasts no other task can join them, and @tasks must not change.
 * For asyncio.as_completed(), see cosync_as_completed below.
 *
 * Returns 0 when the condition is met (at once, without suspending, if it
 * already is), also when the last task it needed finished at the instant
 * of the deadline, before the caller ran again; COSYNC_ETIMEDOUT when
 * @deadline passes first (COSYNC_EAGAIN with deadline 0), where
 * asyncio.wait returns with tasks still pending;
 * COSYNC_ECANCELED if the caller is cancelled; COSYNC_EINVAL if @n is 0,
 * @tasks is NULL, @return_when is not one of the three, or a handle is
 * stale, detached, the caller, of another loop, listed twice, or already
 * being joined (cosync_task_join tells these apart); COSYNC_EPERM outside
 * a task. Suspension point (unless the condition is already met). Not
 * thread-safe.
 */
int cosync_wait(const cosync_task *tasks, size_t n, cosync_return_when return_when, size_t *index,
                int64_t deadline);

/**
 * cosync_as_completed - the tasks of a set in the order they finish
 * (`for t in asyncio.as_completed(tasks)`), each handed out in O(1).
 * Caller-embedded; its memory (an entry per task) is allocated by
 * cosync_as_completed_init and freed by cosync_as_completed_destroy.
 */
typedef struct cosync_as_completed {
    struct cosync__as_completed *impl;
} cosync_as_completed;

/**
 * cosync_as_completed_init - start handing out @tasks as they finish.
 * @it:    the iterator to set up.
 * @tasks: @n handles of tasks of the caller's loop (any but the caller's
 *         own: joined by no one yet or by anyone, gathered, waited for,
 *         group children, detached while their handles are good); read
 *         during the call only. @n may be 0.
 *
 * Only watches: the tasks go on as they are, and each is still to be
 * joined, gathered or detached by its owner, at any time (also before the
 * iterator hands it out: it hands out the index all the same). Tasks that
 * have already finished are handed out first, in the order they finished.
 *
 * Returns 0; COSYNC_EINVAL if @it is NULL, @tasks is NULL with @n > 0, or
 * a task is listed twice (asyncio takes the set of them); COSYNC_ESRCH for
 * a stale handle; COSYNC_EDEADLK if the caller is among @tasks;
 * COSYNC_EPERM outside a task or for a task of another loop;
 * COSYNC_ENOMEM. On error nothing is allocated or watched, and @it is left
 * as never set up. An iterator set up again without its destroy is lost
 * (its memory and watches stay until the loop is destroyed).
 * Not a suspension point. Not thread-safe.
 */
int cosync_as_completed_init(cosync_as_completed *it, const cosync_task *tasks, size_t n);

/**
 * cosync_as_completed_next - wait for the next task of @it to finish
 * (`await next(it)`; a loop of these is asyncio's `as_completed`).
 * @index:    on 1, the index in the init's @tasks of a task that has
 *            finished: the tasks come in the order they finished, each
 *            once.
 * @deadline: see the conventions at the top; one deadline passed to every
 *            call is as_completed's timeout.
 *
 * Returns 1 with *@index set; 0 once every task has been handed out (the
 * end of the loop: `while ((rc = cosync_as_completed_next(&it, &i, d)) >
 * 0)`); COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT if no task finished
 * before the deadline (one finishing at its instant does not count, as in
 * asyncio; the tasks go on, and a later call may still hand them out);
 * COSYNC_ECANCELED if the caller was cancelled (nothing is handed out, the
 * tasks go on); COSYNC_EBUSY if another task is waiting in this call on
 * @it; COSYNC_EINVAL for a NULL @it, @index, or an iterator destroyed or
 * never set up; COSYNC_EPERM outside a task or from another loop than the
 * tasks' (also once that loop is destroyed).
 * Suspension point unless a finished task is waiting to be handed out or
 * none is left (a cancellation pending at such a call stays pending); but
 * the first call after an init that found tasks finished already yields
 * once first, unless the loop has switched tasks since the init or
 * @deadline is 0 (asyncio hands those out through done callbacks one loop
 * step later; docs/asyncio-mapping.md says where the two tests differ).
 * Not thread-safe.
 */
int cosync_as_completed_next(cosync_as_completed *it, size_t *index, int64_t deadline);

/**
 * cosync_as_completed_destroy - stop watching and free @it's memory; the
 * tasks not handed out go on, untouched. Call it from a task of the
 * tasks' loop or outside every loop's run; once the loop is destroyed it
 * only frees the memory.
 * Returns 0; COSYNC_EBUSY (nothing changes) while a task waits in
 * cosync_as_completed_next on @it (also one whose wait has ended but that
 * has not run since); COSYNC_EPERM from another loop's run;
 * COSYNC_EINVAL for a NULL @it or one already destroyed.
 * Not a suspension point. Not thread-safe.
 */
int cosync_as_completed_destroy(cosync_as_completed *it);

/* ========================================================================
 * TaskGroup
 * ===================================================================== */

/**
 * cosync_taskgroup - asyncio.TaskGroup: a scope that owns its children.
 *
 *     cosync_taskgroup g;
 *     cosync_taskgroup_init(&g);
 *     cosync_taskgroup_spawn(&g, NULL, worker, &a, NULL);
 *     cosync_taskgroup_spawn(&g, NULL, worker, &b, NULL);
 *     int rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);   // leave the scope
 *
 * The first child that fails (finishes with a status other than 0 and
 * COSYNC_ECANCELED) cancels every other child and, if the owner is not yet
 * in cosync_taskgroup_wait, the owner too (as asyncio does; the group takes
 * that request back when the owner reaches cosync_taskgroup_wait).
 * Caller-embedded; all fields are private. The children reach the group,
 * and their arguments, while the owner is suspended: an owner that is a
 * dense task keeps them off its own stack (cosync_task_opts.dense).
 */
typedef struct cosync_taskgroup {
    cosync_loop *loop;
    struct cosync__task *owner;
    uint64_t owner_id;
    cosync__list children;
    size_t live;
    int error;
    uint32_t owner_cancels; /* the owner's cancellation count when it opened the group */
    uint8_t state;
    bool aborting;
    bool owner_cancel_requested;
    bool on_owner_stack; /* in the owner's stack: see cosync_taskgroup_init */
    size_t limit;        /* children running at once at most (0: no limit) */
    size_t reserved;     /* slots handed to tasks in cosync_taskgroup_go that have not spawned */
    cosync__waitq slots; /* tasks in cosync_taskgroup_go waiting for a slot */
} cosync_taskgroup;

/**
 * cosync_taskgroup_init - open a group owned by the calling task.
 * Returns 0; COSYNC_EINVAL if the group lies in the stack of the calling
 * task and that task is dense (docs/stacks.md); COSYNC_EPERM outside a
 * task. Not a suspension point. Not thread-safe.
 * Initialising a group that was not left yet (children alive, or its wait
 * not returned) is undefined: it forgets the children. The owner must
 * leave the group with cosync_taskgroup_wait on every path before the
 * group's memory goes away (the end of `async with`): children point to
 * it until they finish. An owner that ends without leaving a group that
 * lies in its own stack is caught: the group's live children are cut
 * loose from it (they finish as if spawned outside any group) and
 * cancelled, and one line says so on the loop's report stream
 * (cosync_loop_opts.report; stderr by default). A group elsewhere that is never left is not
 * detected: its memory must outlive its children.
 */
int cosync_taskgroup_init(cosync_taskgroup *group);

/**
 * cosync_taskgroup_spawn - create a child of the group.
 * @task: receives a handle to the child, or NULL. A child whose handle was
 *        taken stays joinable after the group is left (join it to free
 *        it); otherwise the group frees it when it finishes.
 * @fn, @arg, @opts: as for cosync_task_spawn.
 * Returns as cosync_task_spawn (COSYNC_EPERM outside a task), and
 * COSYNC_EPERM if the group has been left, or its owner is leaving it
 * and no child is left (asyncio's "TaskGroup is finished"), or it is
 * aborting: a child failed, or the owner, in cosync_taskgroup_wait, was
 * cancelled or saw its deadline pass; or if called from another loop
 * than the group's.
 * An eager child (@opts->eager, the loop's eager_tasks) belongs to the
 * group before its first step runs inside this call: a failure there
 * fails the group at once (the owner's cancel stays pending until its next
 * suspension). With a limit (cosync_taskgroup_set_limit), it is
 * cosync_taskgroup_go with deadline 0: COSYNC_EAGAIN when no slot is free.
 * Not a suspension point (as cosync_task_spawn). Not thread-safe.
 */
int cosync_taskgroup_spawn(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                           const cosync_task_opts *opts);

/**
 * cosync_taskgroup_set_limit - let at most @limit children of the group
 * run at once (Go's errgroup.SetLimit; 0: no limit, as a new group has):
 * cosync_taskgroup_go then waits for a slot, and cosync_taskgroup_spawn
 * returns COSYNC_EAGAIN when there is none. A limit below the children
 * running now holds back new ones until enough have finished; a higher
 * one hands the slots it frees to the tasks waiting, in order.
 * Returns 0; COSYNC_EPERM if the group has been left or is being left.
 * Not a suspension point. Not thread-safe.
 */
int cosync_taskgroup_set_limit(cosync_taskgroup *group, size_t limit);

/**
 * cosync_taskgroup_go - create a child of the group once the group's limit
 * (cosync_taskgroup_set_limit) lets one more run, waiting for a running
 * child to finish if need be (errgroup.Go with a limit; a task limiter).
 * Tasks waiting are served in arrival order, and a newcomer never takes a
 * slot while others wait. Without a limit, it is cosync_taskgroup_spawn.
 * @task, @fn, @arg, @opts: as for cosync_taskgroup_spawn.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * A wait ended by a cancel or the deadline has spawned nothing; one
 * handed its slot before a cancel spawns the child (the cancel comes at
 * the caller's next suspension).
 * Returns as cosync_taskgroup_spawn; COSYNC_EAGAIN (deadline 0) /
 * COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_EPERM also for the tasks
 * waiting when the group starts aborting (a child failed, or the owner
 * leaving it was cancelled or saw its deadline pass).
 * Suspension point (unless a slot is free and nobody waits). Not
 * thread-safe.
 */
int cosync_taskgroup_go(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                        const cosync_task_opts *opts, int64_t deadline);

/**
 * cosync_taskgroup_cancel - cancel every child still running.
 * Returns the number of children cancelled (>= 0). Not a suspension point.
 * Not thread-safe.
 */
int cosync_taskgroup_cancel(cosync_taskgroup *group);

/**
 * cosync_taskgroup_wait - leave the group: wait until every child has
 * finished. If the owner is cancelled or @deadline passes, the children are
 * cancelled and still waited for (that second wait cannot be interrupted).
 * @deadline: see the conventions at the top.
 *
 * Returns 0 if every child succeeded or was cancelled by the group; the
 * status of the first child that failed; COSYNC_ECANCELED if the owner was
 * cancelled from outside since the group was opened (a request not yet
 * delivered is delivered by this return; if a child failed too, its
 * status is returned and the cancellation comes at the owner's next
 * suspension); COSYNC_ETIMEDOUT (COSYNC_EAGAIN for deadline 0)
 * if the deadline passed; COSYNC_EPERM if the caller is not the owner or
 * the group was already left. Suspension point (unless no child is left).
 * Not thread-safe.
 */
int cosync_taskgroup_wait(cosync_taskgroup *group, int64_t deadline);

/* ========================================================================
 * Future
 * ===================================================================== */

/**
 * cosync_future - a one-shot result, set once, awaited by any number of
 * tasks (asyncio.Future). Caller-embedded; zero-initialise it or use
 * COSYNC_FUTURE_INIT; all fields are private.
 */
typedef struct cosync_future {
    cosync__waitq q;
    cosync__list callbacks; /* done callbacks (cosync_future_add_done_callback) */
    void *value;
    int status;
    uint32_t seq; /* waits and callbacks so far: the order they are woken in */
    uint8_t state;
} cosync_future;

/** A static initialiser: a pending future, as cosync_future_init. */
#define COSYNC_FUTURE_INIT                                                                         \
    {                                                                                              \
        COSYNC__WAITQ_INIT, {NULL, NULL}, NULL, 0, 0, 0                                            \
    }

/**
 * cosync_future_init - make @future pending. Not a suspension point.
 * Undefined while tasks wait on @future, or done callbacks are attached to
 * it (cosync_future_add_done_callback): it forgets them. Not thread-safe.
 */
void cosync_future_init(cosync_future *future);

/**
 * cosync_future_set_result - complete the future with @value (set_result),
 * wake every waiter and queue every done callback, in the order they came.
 * Returns 0, or COSYNC_EALREADY if it was already done (nothing changes).
 * Not a suspension point. Not thread-safe.
 */
int cosync_future_set_result(cosync_future *future, void *value);

/**
 * cosync_future_set_error - complete the future with a failure
 * (set_exception). @error must be negative and not COSYNC_EAGAIN, which
 * cosync_future_result returns for a pending future (else COSYNC_EINVAL).
 * Returns 0, COSYNC_EINVAL, or COSYNC_EALREADY. Not a suspension point.
 * Not thread-safe.
 */
int cosync_future_set_error(cosync_future *future, int error);

/**
 * cosync_future_cancel - complete the future as cancelled (Future.cancel()).
 * Returns 0, or COSYNC_EALREADY if it was already done. Not a suspension point.
 * Not thread-safe.
 */
int cosync_future_cancel(cosync_future *future);

/**
 * cosync_future_done - whether the future is complete.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_future_done(const cosync_future *future);

/**
 * cosync_future_cancelled - whether the future was completed by cancel.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_future_cancelled(const cosync_future *future);

/**
 * cosync_future_result - the outcome of a complete future (Future.result()).
 * @value: receives the value (NULL unless set_result); may be NULL.
 * Returns the future's status: 0, the error given to set_error, or
 * COSYNC_ECANCELED if it was cancelled; COSYNC_EAGAIN if still pending.
 * Not a suspension point. Not thread-safe.
 */
int cosync_future_result(const cosync_future *future, void **value);

/**
 * cosync_future_wait - wait until the future is complete (await future).
 * @deadline: see the conventions at the top.
 * Read the outcome with cosync_future_result; this call reports only on
 * the wait itself, so a cancelled wait and a cancelled future stay apart.
 * Returns 0 once complete; COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED if the caller was cancelled; COSYNC_EPERM outside a
 * task or from another loop than the future's waiters (only when it
 * cannot complete at once, deadline 0 included). Suspension point (unless
 * already complete). Not thread-safe.
 */
int cosync_future_wait(cosync_future *future, int64_t deadline);

/* ========================================================================
 * Event
 * ===================================================================== */

/**
 * cosync_event - asyncio.Event: a flag that tasks wait to be set.
 * set() wakes every task waiting at that moment, even if the event is
 * cleared again before they run. Caller-embedded; zero-initialise it or use
 * COSYNC_EVENT_INIT; all fields are private.
 */
typedef struct cosync_event {
    cosync__waitq q;
    bool is_set;
} cosync_event;

/** A static initialiser: a clear event, as cosync_event_init. */
#define COSYNC_EVENT_INIT                                                                          \
    {                                                                                              \
        COSYNC__WAITQ_INIT, false                                                                  \
    }

/**
 * cosync_event_init - make @event clear with no waiters.
 * Not a suspension point. Undefined while tasks wait on @event: it forgets
 * them (cosync_event_clear is the call that keeps them). Not thread-safe.
 */
void cosync_event_init(cosync_event *event);

/**
 * cosync_event_set - set the flag and wake every waiter (Event.set()).
 * Returns 0. Not a suspension point. Not thread-safe.
 */
int cosync_event_set(cosync_event *event);

/**
 * cosync_event_clear - clear the flag (Event.clear()). Returns 0.
 * Not a suspension point. Not thread-safe.
 */
int cosync_event_clear(cosync_event *event);

/**
 * cosync_event_is_set - whether the flag is set (Event.is_set()).
 * Not a suspension point. Not thread-safe.
 */
bool cosync_event_is_set(const cosync_event *event);

/**
 * cosync_event_wait - wait until the flag is set (Event.wait()).
 * @deadline: see the conventions at the top.
 * Returns 0 at once if it is set, else once a set() wakes the caller;
 * COSYNC_EAGAIN (deadline 0) or COSYNC_ETIMEDOUT; COSYNC_ECANCELED;
 * COSYNC_EPERM outside a task or from another loop than the waiters' (only
 * when it cannot complete at once, deadline 0 included). Suspension point
 * (unless set). Not thread-safe.
 */
int cosync_event_wait(cosync_event *event, int64_t deadline);

/* ========================================================================
 * The loop
 * ===================================================================== */

/** Loop options; a NULL pointer or a zeroed struct means the defaults. */
typedef struct cosync_loop_opts {
    bool virtual_clock;                /* time moves only when idle, to the next timer (tests) */
    size_t stack_size;                 /* default task stack, guard included; 0: 64 KiB
                                        * (two pages if pages are larger than 32 KiB) */
    size_t stack_cache;                /* free stacks kept resident; 0: 64 */
    FILE *report;                      /* where the deadlock report goes; NULL: stderr */
    const cosync_allocator *allocator; /* NULL: malloc */
    /* Tasks share the thread's floating-point control modes (rounding,
     * flush-to-zero, exception masks: MXCSR and the x87 control word on
     * x86-64, FPCR on AArch64), as asyncio's tasks and goroutines do: a
     * mode one task sets is what every task runs with until some task sets
     * another, and what the thread has after the run. false (the default):
     * each task keeps its own modes across its suspensions, as the ABI
     * makes them callee-saved, and starts with the modes the loop was run
     * with. Sharing spares each switch the save and restore of the modes:
     * with the x86-64 assembly backend on the machine of
     * docs/benchmarks.md, about 4 ns a bare switch but 1-2 ns a yield or
     * an event round trip, where other work hides most of it; elsewhere it
     * changes the semantics only. */
    bool shared_fp_modes;
    /* Every task that a task of this loop spawns starts eagerly, as with
     * cosync_task_opts.eager (loop.set_task_factory(
     * asyncio.eager_task_factory)). */
    bool eager_tasks;
    /* The most threads of the loop's default pool (cosync_to_thread); 0:
     * min(32, processors + 4), as asyncio's default executor. */
    size_t executor_threads;
} cosync_loop_opts;

/**
 * cosync_loop_init - create a loop (asyncio.new_event_loop()).
 * @loop: receives the loop. @opts: NULL for the defaults.
 * The virtual clock starts at COSYNC_SEC(1), so that no deadline computed
 * from it is ever 0.
 * Returns 0; COSYNC_EINVAL if @loop is NULL or for a bad option;
 * COSYNC_ENOMEM; or the negated errno of a failed epoll_create1, eventfd
 * or epoll_ctl (nothing is left allocated).
 * Not a suspension point. Thread-safe: threads may each make loops of their
 * own at once. The loop belongs to the thread that runs it: a call on it
 * from another thread while it runs is a data race (but for the calls of
 * cosync/threads.h that say they are thread-safe), and it may move to
 * another thread only between runs while none of its tasks is suspended
 * mid-body (see cosync_loop_run).
 */
int cosync_loop_init(cosync_loop **loop, const cosync_loop_opts *opts);

/**
 * cosync_loop_run - run the loop (loop.run_until_complete(main)).
 * @main:   run until this task finishes, then join it into @status and
 *          @result (both may be NULL); COSYNC_TASK_NONE to run until no
 *          task is left, no callback is scheduled (cosync_loop_call_soon)
 *          and no other thread holds the loop (cosync_loop_ref). The run returns once the tasks
 * that were ready when @main finished have run, each until it next suspends (run_until_complete
 * runs one asyncio iteration more, in which the tasks made ready meanwhile take a step too): a task
 * @main spawned just before it returned has started (unless a stop earlier in the same turn had
 * already ended it there). A @main that finished in an earlier run still gets one turn: the timers
 * due fire and the tasks ready run until they next suspend (run_until_complete of a done task runs
 * one iteration).
 *
 * Returns 0 when done; COSYNC_EINTR if cosync_loop_stop was called;
 * COSYNC_EDEADLK if @main (or, without @main, some task) is blocked and
 * nothing can ever wake any task: each blocked task's name and what it
 * waits on are written to the report stream first, as cosync_loop_dump
 * writes them (@main first; 200 at most); COSYNC_ESRCH if @main
 * is stale; COSYNC_EINVAL if @loop is NULL, or if @main is detached or
 * claimed (joined by a task, gathered, or waited for by cosync_wait_for or
 * cosync_wait); COSYNC_EPERM if @main belongs to another loop, if @loop is
 * already running, or if called from a task or while the thread already
 * runs a loop; COSYNC_EPERM also on any thread but the one that ran the last run
 * while a task that run left suspended mid-body is alive (its frames may
 * hold that thread's addresses: docs/conventions.md). The loop can be run
 * again after any of these.
 * Blocks the thread. Not a suspension point: it runs the loop; called from
 * a task it returns COSYNC_EPERM. Not thread-safe: the loop belongs to the
 * thread that runs it (see cosync_loop_init); other threads may run loops
 * of their own meanwhile.
 */
int cosync_loop_run(cosync_loop *loop, cosync_task main, int *status, void **result);

/**
 * cosync_loop_stop - make cosync_loop_run return COSYNC_EINTR at the end of
 * the current turn (loop.stop()), unless the run's main task has finished,
 * in that turn or before the run (the run then returns as usual). The turn
 * ends once the tasks that were ready when stop was called have run, each
 * until it next suspends; a task that becomes ready after the call (the
 * caller itself after a yield, or a task it wakes) runs in the next run.
 * loop.stop() lets asyncio's current iteration finish, which holds only
 * the tasks that were ready when it began: a task made ready earlier in
 * the same cosync turn, which asyncio leaves for the next run, runs here
 * (docs/asyncio-mapping.md). Called while the loop is not running, the
 * next run stops after its first turn, which runs the tasks ready at its
 * start, each until it next suspends (loop.stop() before run_forever()).
 * A request lasts one run.
 * Returns 0; COSYNC_EINVAL if @loop is NULL. Not a suspension point.
 * Not thread-safe: call it from the loop's thread (from another thread,
 * make it a call: cosync_loop_call_threadsafe).
 */
int cosync_loop_stop(cosync_loop *loop);

/**
 * cosync_loop_destroy - close the loop (loop.close(), after asyncio.run's
 * clean-up): every task still alive is cancelled and the loop runs until
 * they have finished; then every record and stack is freed and @loop is
 * invalid. Tasks their clean-ups spawn run (a round ends once the tasks
 * ready when its last cancelled task finished have run, so they start),
 * and those still alive when the cancelled ones have finished (or that
 * these wait for when nothing else can happen) are cancelled in turn,
 * round after round: no task that blocks keeps the close waiting without
 * having been cancelled (one that keeps running or sleeping in turn, never
 * idle, is not found stuck and keeps it waiting, as in asyncio). From the
 * second round on, a task spawned by a task that was itself spawned during
 * the close is cancelled before it starts, so a clean-up that spawns its
 * own replacement cannot keep the close going
 * (such a second-generation clean-up cannot use helper tasks: they never
 * run, and a task group of them reports success). Tasks that deadlock in
 * their clean-up are reported and dropped without running further; the
 * objects they waited on or held must be initialised again before reuse.
 * While other threads hold the loop (cosync_loop_ref), the close waits for
 * them, and runs the calls they make (cosync_loop_call_threadsafe); the
 * loop's default pool (cosync_to_thread) is destroyed last.
 * Returns 0, COSYNC_EDEADLK if some tasks had to be dropped, COSYNC_EPERM
 * (and nothing changes) if called while the loop runs, or on another thread
 * than the one whose run left tasks suspended mid-body (as for
 * cosync_loop_run). NULL is accepted (returns 0).
 * Not a suspension point: it runs the loop and blocks the thread; called
 * from a task (or while the thread runs any loop) it returns COSYNC_EPERM.
 * Not thread-safe: destroy the loop on the thread it belongs to (see
 * cosync_loop_init).
 */
int cosync_loop_destroy(cosync_loop *loop);

/**
 * cosync_run - asyncio.run(main(arg)): create a loop with the defaults, run
 * @main to completion, cancel whatever tasks are left, destroy the loop.
 * @arg: @main's argument. The main task is named "main".
 * Returns @main's status; COSYNC_EDEADLK on deadlock (reported on stderr);
 * COSYNC_EINTR if a task stopped the loop (cosync_loop_stop) before @main
 * finished; or an error from cosync_loop_init / cosync_loop_spawn.
 * Blocks the thread; COSYNC_EPERM if the thread already runs a loop.
 * Not a suspension point: it runs a loop of its own; called from a task it
 * returns COSYNC_EPERM. Thread-safe: the loop is the call's own and belongs
 * to the calling thread; threads may each run one at once.
 */
int cosync_run(cosync_task_fn main, void *arg);

/**
 * cosync_run_with - cosync_run on a loop made with @opts (NULL: the
 * defaults), as asyncio.run(main(), loop_factory=...) is: the same steps
 * and returns, and COSYNC_EINVAL for a bad option. The deadlock report
 * goes to @opts->report if set.
 * @main: the main task's body; @arg: its argument (as for cosync_run).
 * Not a suspension point: it runs the loop and blocks the thread; called
 * from a task it returns COSYNC_EPERM. Thread-safe, as cosync_run.
 */
int cosync_run_with(cosync_task_fn main, void *arg, const cosync_loop_opts *opts);

/**
 * cosync_loop_current - the loop the calling thread is running, or NULL.
 * Not a suspension point. Thread-safe (it reads only the calling thread's
 * own state).
 */
cosync_loop *cosync_loop_current(void);

/** A snapshot of a loop's counters (for tests and introspection). */
typedef struct cosync_loop_stats {
    size_t tasks_alive;    /* spawned and not yet finished */
    size_t tasks_records;  /* records in use (alive, or finished and unjoined) */
    size_t tasks_ready;    /* in the ready queue */
    size_t timers;         /* armed timers */
    size_t stacks_mapped;  /* stacks that exist (in use or cached) */
    size_t stacks_in_use;  /* stacks held by tasks */
    size_t stacks_guarded; /* stacks with a guard page */
    uint64_t switches;     /* context switches so far */
    size_t callbacks;      /* scheduled and not started (cosync_loop_call_soon), or
                              attached to futures or tasks (add_done_callback) */
} cosync_loop_stats;

/**
 * cosync_loop_get_stats - fill @stats. Returns 0, or COSYNC_EINVAL for NULL
 * arguments. Not a suspension point. Not thread-safe: call it from the
 * loop's thread, or while the loop does not run.
 */
int cosync_loop_get_stats(const cosync_loop *loop, cosync_loop_stats *stats);

/**
 * cosync_loop_all_tasks - the tasks of a loop that have not finished
 * (asyncio.all_tasks()), the caller included.
 * @loop:  the loop; NULL for the current one (the caller's).
 * @tasks: receives up to @cap handles, in the order the tasks were spawned;
 *         may be NULL if @cap is 0 (to count them).
 *
 * A snapshot: spawned tasks that have not yet run are in it; finished
 * ones, even if not yet joined, are not. If there are more than @cap,
 * which @cap of them are written is unspecified: call again with room for
 * the count returned. A typical use is a shutdown that cancels every
 * other task and waits for each (cosync_task_cancel, cosync_task_wait).
 *
 * Returns the number of unfinished tasks (it may exceed @cap; at most
 * INT_MAX); COSYNC_EPERM if @loop is NULL outside a running loop;
 * COSYNC_EINVAL if @tasks is NULL and @cap is not 0. Not a suspension
 * point. Not thread-safe: call it from the loop's thread, or while the
 * loop does not run.
 */
int cosync_loop_all_tasks(cosync_loop *loop, cosync_task *tasks, size_t cap);

/**
 * cosync_loop_dump - write the live tasks of @loop, each with its state and
 * what it waits on, one per line, to @out (the deadlock report's format):
 * during cosync_loop_run, the task it runs for first, then the others in
 * the order of their records; the first 200, then a line
 * "  ... and N more".
 * Returns the number of live tasks (written or not), or COSYNC_EINVAL.
 * Not a suspension point. Not thread-safe: call it from the loop's thread,
 * or while the loop does not run.
 */
int cosync_loop_dump(const cosync_loop *loop, FILE *out);

/* ========================================================================
 * Loop callbacks (loop.call_soon, call_later, call_at)
 * ===================================================================== */

/** A callback scheduled on a loop (asyncio's Handle and TimerHandle),
 * embedded by the caller. Zero-initialise it before its first use (static
 * storage, COSYNC_CALLBACK_INIT, or memset); from then on the calls keep
 * it. Fields are private. */
typedef struct cosync_callback {
    union {
        cosync__timer timer; /* call_at, call_later */
        struct {
            cosync__node node;  /* on the future's list */
            cosync__list *list; /* that list */
        } attached;             /* cosync_future_add_done_callback */
        cosync__waiter wait;    /* cosync_task_add_done_callback */
    } u;                        /* private */
    cosync__node link;          /* private */
    void (*fn)(void *arg);      /* private */
    void *arg;                  /* private */
    cosync_loop *loop;          /* private */
    const void *after;          /* private */
    uint64_t seq;               /* private */
    int64_t when;               /* private */
    uintptr_t check;            /* private */
    int state;                  /* private */
} cosync_callback;

/** A static initialiser: a record no call has scheduled. */
#define COSYNC_CALLBACK_INIT                                                                       \
    {                                                                                              \
        {{NULL, NULL, NULL, 0, 0, NULL}}, {NULL, NULL}, NULL, NULL, NULL, NULL, 0, 0, 0, 0         \
    }

/**
 * cosync_loop_call_soon - run @fn(@arg) on @loop as soon as the tasks
 * ready now have taken their step (loop.call_soon(fn, arg)).
 * @cb: the caller's record of the call; it must stay valid, and not move,
 *      until @fn has started or the call is cancelled (@fn may reuse,
 *      reschedule or free it). It may not be in the caller's own stack
 *      if the caller is a dense task.
 *
 * The callback takes its place behind the tasks in the ready queue, as
 * asyncio's does in its _ready: the tasks ready at the call, and the
 * callbacks scheduled before it, run first; a task made ready after the
 * call (the caller itself, if it yields) runs after it. Callbacks run in
 * the loop's own context, not in a task: @fn cannot suspend (a blocking
 * call returns COSYNC_EPERM), cosync_loop_current() is @loop, and it may
 * do what code outside a task may: set an event or a future, release a
 * semaphore, put into a queue without waiting, cancel a task, spawn tasks
 * (cosync_loop_spawn), schedule or cancel callbacks, stop the loop. A
 * run without a main task (cosync_loop_run with COSYNC_TASK_NONE) goes on
 * while callbacks are scheduled; cosync_loop_destroy runs those that come
 * due while it finishes the tasks, and cancels the rest.
 *
 * Returns 0; COSYNC_EINVAL if @loop, @cb or @fn is NULL, or @cb lies in
 * the calling dense task's stack; COSYNC_EBUSY (and nothing changes) if
 * @cb is scheduled and has not started; COSYNC_EPERM if called from a
 * task or callback of another loop.
 * Not a suspension point. Not thread-safe: call it from the loop's thread
 * (from another thread, use cosync_loop_call_threadsafe).
 */
int cosync_loop_call_soon(cosync_loop *loop, cosync_callback *cb, void (*fn)(void *arg), void *arg);

/**
 * cosync_loop_call_at - run @fn(@arg) on @loop at time @when
 * (loop.call_at(when, fn, arg)): once the loop's clock reaches @when, the
 * callback is queued as cosync_loop_call_soon queues one, behind the
 * tasks ready then. Callbacks and timed waits with the same @when come due
 * in the order they were scheduled; a @when that has passed is due at the
 * loop's next look at its timers. With a virtual clock, time jumps to
 * @when when nothing else can run, as for a sleep.
 * @cb: as for cosync_loop_call_soon.
 *
 * Returns 0; COSYNC_EINVAL if @loop, @cb or @fn is NULL, @when is
 * COSYNC_FOREVER, or @cb lies in the calling dense task's stack;
 * COSYNC_EBUSY (and nothing changes) if @cb is scheduled and has not
 * started; COSYNC_EPERM if called from a task or callback of another loop.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int cosync_loop_call_at(cosync_loop *loop, cosync_callback *cb, int64_t when, void (*fn)(void *arg),
                        void *arg);

/**
 * cosync_loop_call_later - cosync_loop_call_at @delay nanoseconds from
 * now (loop.call_later(delay, fn, arg)): from the time of the loop's
 * current turn when called on the loop's thread while it runs, as a sleep
 * of @delay started there would end (so the two come due in the order
 * they were scheduled), else from cosync_loop_now(@loop). A @delay of 0 or
 * less is due at once, at the loop's next look at its timers; a time past
 * the clock's range is kept at its end.
 * Returns and thread-safety as cosync_loop_call_at (COSYNC_EINVAL also
 * for a @delay of COSYNC_FOREVER). Not a suspension point.
 */
int cosync_loop_call_later(cosync_loop *loop, cosync_callback *cb, int64_t delay,
                           void (*fn)(void *arg), void *arg);

/**
 * cosync_future_add_done_callback - run @fn(@arg) once @future is done
 * (Future.add_done_callback): when it completes (a result, an error or a
 * cancel), the callback is queued as cosync_loop_call_soon queues one, on
 * the loop the caller runs on now; if it is done already, at once.
 * @future's waiting tasks and its done callbacks are woken and queued in
 * the order they came to it, as asyncio schedules a future's callbacks (an
 * awaiting task's wake-up is one of them). Take one back with
 * cosync_callback_cancel (fut.remove_done_callback()). The future must
 * stay valid while callbacks are attached to it: the loop's destruction
 * cancels them, and takes them off it.
 * @cb: as for cosync_loop_call_soon.
 *
 * Returns 0; COSYNC_EINVAL if @future, @cb or @fn is NULL, or @cb lies in
 * the calling dense task's stack; COSYNC_EBUSY (and nothing changes) if
 * @cb is scheduled and has not started; COSYNC_EPERM outside a running
 * loop (a task or a callback).
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int cosync_future_add_done_callback(cosync_future *future, cosync_callback *cb,
                                    void (*fn)(void *arg), void *arg);

/**
 * cosync_task_add_done_callback - run @fn(@arg) once @task has finished
 * (Task.add_done_callback): when it finishes (its body returns, or it
 * ends cancelled, before it ran too), the callback is queued as
 * cosync_loop_call_soon queues one, on the task's loop; if it has
 * finished already, at once. The waits for @task (a join, a gather,
 * cosync_task_wait, cosync_task_await, ...) are woken and its done
 * callbacks queued in the order they began, as asyncio schedules a task's
 * done callbacks (an awaiting task's wake-up is one of them). @cb keeps
 * the task's outcome from the finish on (cosync_callback_outcome, the
 * callback's task.result()), so the callback needs the task no more: the
 * task may be detached, or collected before the callback runs. Take one
 * back with cosync_callback_cancel (task.remove_done_callback()). A
 * callback keeps nothing alive: a task the loop's destruction cancels
 * queues its callbacks as it finishes, and they run if they come due
 * while the destruction finishes the tasks (cosync_loop_call_soon).
 * @task: any task of the loop, but for a stale handle.
 * @cb:   as for cosync_loop_call_soon.
 *
 * Returns 0; COSYNC_ESRCH for a stale handle (collected, or detached and
 * finished); COSYNC_EINVAL if @cb or @fn is NULL, or @cb lies in the
 * calling dense task's stack; COSYNC_EBUSY (and nothing changes) if @cb
 * is scheduled and has not started; COSYNC_EPERM if called from a task or
 * callback of another loop than @task's.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int cosync_task_add_done_callback(cosync_task task, cosync_callback *cb, void (*fn)(void *arg),
                                  void *arg);

/**
 * cosync_callback_outcome - the outcome of the task whose done callback
 * @cb is, as the finish left it in @cb (task.result() in the callback,
 * which asyncio passes the task).
 * @status: receives the task's status, as cosync_task_join gives it (0,
 *          its failure code, or COSYNC_ECANCELED); may be NULL.
 * @result: receives its result value; may be NULL.
 *
 * Returns 0 once the task has finished: while the callback is queued, in
 * @fn, and after it until @cb is scheduled anew; COSYNC_EAGAIN if the task
 * has not finished, or the callback was taken back before it did;
 * COSYNC_EINVAL if @cb is NULL or was not last scheduled by
 * cosync_task_add_done_callback. @status and @result are written only on 0.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int cosync_callback_outcome(const cosync_callback *cb, int *status, void **result);

/**
 * cosync_callback_cancel - take back a scheduled callback before it starts
 * (Handle.cancel()), or a done callback from its future or task
 * (remove_done_callback()): it will not run, and @cb is the caller's
 * again at once (it may be freed or scheduled anew).
 * Returns 0 if the call was scheduled and is now cancelled;
 * COSYNC_EALREADY (nothing changes) if it has started (a callback may
 * call it on itself) or was cancelled already, by this call or by the
 * loop's destruction; COSYNC_EINVAL if @cb is NULL or was never
 * scheduled (or was moved since); COSYNC_EPERM if called from a task or
 * callback of another loop than @cb's.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int cosync_callback_cancel(cosync_callback *cb);

/**
 * cosync_callback_cancelled - whether @cb was cancelled, by
 * cosync_callback_cancel or by its loop's destruction (Handle.cancelled()).
 * False for NULL, a callback never scheduled, a pending one, one that ran.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
bool cosync_callback_cancelled(const cosync_callback *cb);

/**
 * cosync_callback_pending - whether @cb is scheduled and has not started
 * (its record is still the loop's). False for NULL.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
bool cosync_callback_pending(const cosync_callback *cb);

/**
 * cosync_callback_when - the time @cb was last scheduled for with
 * cosync_loop_call_at or cosync_loop_call_later (TimerHandle.when()),
 * whatever happened to it since; COSYNC_FOREVER for a callback scheduled
 * with cosync_loop_call_soon, never scheduled, or NULL.
 * Not a suspension point. Not thread-safe (as cosync_loop_call_soon).
 */
int64_t cosync_callback_when(const cosync_callback *cb);

#ifdef __cplusplus
}
#endif

#include "cosync/threads.h"
#include "cosync/io.h"
#include "cosync/patterns.h"

#endif /* COSYNC_H */
