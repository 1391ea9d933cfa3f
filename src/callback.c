/*
 * Callbacks scheduled on a loop: loop.call_soon, call_later, call_at,
 * Future.add_done_callback and Task.add_done_callback.
 *
 * asyncio keeps tasks' steps and callbacks in one queue, _ready, so a
 * callback runs once everything ready before it has taken its step, and
 * before anything made ready after it. cosync's ready queue holds task
 * records only, and a suspending task switches straight to the next, so a
 * callback instead remembers the task that was last in the ready queue
 * when it was queued (its `after`) and is due once that task has been
 * dispatched. The loop counts dispatches (steps) by its budget, which it
 * already spends one a dispatch: the budget is cut so that the turn
 * reaches the loop's context exactly at the first callback's step, the
 * callbacks due run there, and the turn goes on. Nothing is added to a
 * switch, a wake-up or a yield.
 *
 * Only the first callback's step is looked for (a walk of at most a
 * turn's budget along the ready queue); the ones behind it are due with
 * it when they were queued behind the same task, or when nothing was
 * ready then. A task cannot be queued again behind itself before its
 * callback runs: the callback runs as the task's step ends.
 *
 * A timed callback waits in the loop's timer heap, and is queued when
 * its timer fires, behind the tasks the timers before it have woken. A
 * future's done callback waits on the future's list (and the loop's, for
 * the loop's destruction), and is queued when the future completes, in
 * turn with the future's waiting tasks (future.c). A task's done callback
 * is a wait on the task, on the list of its waits (task.c), so the
 * finish wakes the waits and queues the callbacks in the order they
 * began; it keeps the task's outcome, for the record may be collected
 * before it runs.
 */
#include "core.h"
#include "timer.h"

enum { CB_TIMED = 1, CB_SOON, CB_RAN, CB_CANCELLED, CB_ATTACHED, CB_ON_TASK };

static bool scheduled(int state)
{
    return state == CB_TIMED || state == CB_SOON || state == CB_ATTACHED || state == CB_ON_TASK;
}

/* The check word of a record the loop has seen: a copy, or memory never
 * handed to the loop, has another. */
static uintptr_t check_of(const cosync_callback *cb)
{
    return (uintptr_t)cb ^ (uintptr_t)0x9e3779b97f4a7c15u;
}

static int state_of(const cosync_callback *cb)
{
    return cb->check == check_of(cb) ? cb->state : 0;
}

static void set_state(cosync_callback *cb, int state)
{
    cb->state = state;
    cb->check = check_of(cb);
}

/* Whether the caller may touch @loop's callbacks: its own thread's code,
 * not a task or callback of another loop. */
static bool may_use(const cosync_loop *loop)
{
    return !cosync__tls.loop || cosync__tls.loop == loop;
}

/* ---- the queue of due callbacks -------------------------------------- */

static cosync_callback *first_due(const cosync_loop *loop)
{
    cosync__node *n = loop->cb_soon.head;
    return n ? cosync__container_of(n, cosync_callback, link) : NULL;
}

/* Queue @cb behind the task @after (NULL: ahead of every task ready now)
 * and the callbacks queued before it. */
static void queue(cosync_loop *loop, cosync_callback *cb, const struct cosync__task *after)
{
    cb->after = after;
    cb->seq = ++loop->cb_seq;
    set_state(cb, CB_SOON);
    cosync__list_push_back(&loop->cb_soon, &cb->link);
}

void cosync__callbacks_place(cosync_loop *loop, uint64_t limit)
{
    const cosync_callback *cb = first_due(loop);
    if (!cb || loop->cb_due != COSYNC__STEP_UNKNOWN)
        return;
    uint64_t now = cosync__steps_now(loop);
    if (!cb->after) {
        loop->cb_due = now;
        return;
    }
    uint64_t k = 0;
    for (const struct cosync__task *t = loop->ready_head; t && k < limit; t = t->next_ready) {
        k++;
        if (t == cb->after) {
            loop->cb_due = now + k;
            return;
        }
    }
}

/* Whether the first callback is due: its task has taken its step (the
 * ready queue is empty, or the step it was found at has come). */
static bool first_is_due(const cosync_loop *loop, const cosync_callback *cb)
{
    if (!cb->after || !loop->ready_head)
        return true;
    return loop->cb_due != COSYNC__STEP_UNKNOWN && cosync__steps_now(loop) >= loop->cb_due;
}

static void run_one(cosync_loop *loop, cosync_callback *cb)
{
    cosync__list_remove(&loop->cb_soon, &cb->link);
    loop->cb_due = COSYNC__STEP_UNKNOWN;
    set_state(cb, CB_RAN); /* the record is the callback's own from here */
    cb->fn(cb->arg);
}

void cosync__callbacks_run(cosync_loop *loop)
{
    cosync_callback *cb = first_due(loop);
    if (!cb || !first_is_due(loop, cb))
        return;
    /* those queued meanwhile wait: a callback that queues itself again
     * cannot keep the loop from its tasks, timers and I/O */
    uint64_t last = loop->cb_seq;
    const void *at = cb->after;
    bool all = !loop->ready_head; /* every task ahead of them has run */
    for (;;) {
        run_one(loop, cb);
        cb = first_due(loop);
        if (!cb || cb->seq > last)
            return;
        if (!all && cb->after && cb->after != at)
            return;
    }
}

bool cosync__callbacks_mid_turn(cosync_loop *loop)
{
    uint64_t now = cosync__steps_now(loop);
    if (!loop->ready_head || now >= loop->turn_end)
        return false;
    cosync__callbacks_run(loop);
    cosync__callbacks_place(loop, loop->turn_end - cosync__steps_now(loop));
    cosync__apply_budget(loop);
    return true;
}

/* ---- scheduling -------------------------------------------------------- */

/* Queue @cb behind what is ready now. From a task of @loop, the turn
 * under way must stop at its place if it is the first. */
static void queue_now(cosync_loop *loop, cosync_callback *cb)
{
    bool first = loop->cb_soon.head == NULL;
    queue(loop, cb, loop->ready_tail);
    struct cosync__task *cur = cosync__current();
    if (first && cur && cur->loop == loop) {
        cosync__callbacks_place(loop, loop->turn_end - cosync__steps_now(loop));
        cosync__apply_budget(loop);
    }
}

static void timer_fired(cosync__timer *timer)
{
    cosync_callback *cb = cosync__container_of(timer, cosync_callback, u.timer);
    cosync__list_remove(&cb->loop->cb_timed, &cb->link);
    queue(cb->loop, cb, cb->loop->cb_fire_after);
}

/* The checks every scheduling call makes: 0, or the error. */
static int may_schedule(cosync_loop *loop, const cosync_callback *cb, void (*fn)(void *))
{
    if (!loop || !cb || !fn)
        return COSYNC_EINVAL;
    if (!may_use(loop))
        return COSYNC_EPERM;
    struct cosync__task *cur = cosync__current();
    if (cur && cosync__dense_holds(cur, cb))
        return COSYNC_EINVAL; /* the loop would point into the task's stack */
    return scheduled(state_of(cb)) ? COSYNC_EBUSY : 0;
}

static void fill(cosync_callback *cb, cosync_loop *loop, void (*fn)(void *), void *arg,
                 int64_t when)
{
    cb->fn = fn;
    cb->arg = arg;
    cb->loop = loop;
    cb->when = when;
    cb->link.next = cb->link.prev = NULL;
    cosync__timer_init(&cb->u.timer, timer_fired);
}

int cosync_loop_call_soon(cosync_loop *loop, cosync_callback *cb, void (*fn)(void *arg), void *arg)
{
    int rc = may_schedule(loop, cb, fn);
    if (rc)
        return rc;
    fill(cb, loop, fn, arg, COSYNC_FOREVER);
    queue_now(loop, cb);
    return 0;
}

int cosync_loop_call_at(cosync_loop *loop, cosync_callback *cb, int64_t when, void (*fn)(void *arg),
                        void *arg)
{
    if (when == COSYNC_FOREVER)
        return COSYNC_EINVAL;
    int rc = may_schedule(loop, cb, fn);
    if (rc)
        return rc;
    fill(cb, loop, fn, arg, when);
    set_state(cb, CB_TIMED);
    cosync__list_push_back(&loop->cb_timed, &cb->link);
    cosync__timer_arm(&loop->timers, &cb->u.timer, when);
    return 0;
}

int cosync_loop_call_later(cosync_loop *loop, cosync_callback *cb, int64_t delay,
                           void (*fn)(void *arg), void *arg)
{
    if (!loop || delay == COSYNC_FOREVER)
        return COSYNC_EINVAL;
    /* the turn's time, as a sleep's deadline takes it */
    int64_t now = cosync__tls.loop == loop ? loop->now : cosync_loop_now(loop);
    int64_t when = delay <= 0 ? now : delay > INT64_MAX - now ? INT64_MAX : now + delay;
    return cosync_loop_call_at(loop, cb, when, fn, arg);
}

/* ---- done callbacks of futures ------------------------------------------ */

/* Take @cb, attached (@state) to a future or a task, off it and off
 * @loop's list. */
static void detach(cosync_loop *loop, cosync_callback *cb, int state)
{
    if (state == CB_ON_TASK) /* its wait stays WAITING: the outcome never came */
        cosync__task_await_unlink(cb->u.wait.obj, &cb->u.wait);
    else
        cosync__list_remove(cb->u.attached.list, &cb->u.attached.node);
    cosync__list_remove(&loop->cb_attached, &cb->link);
}

int cosync__callback_attach(cosync_callback *cb, void (*fn)(void *), void *arg, cosync__list *list,
                            uint32_t seq)
{
    cosync_loop *loop = cosync__tls.loop;
    if (!loop)
        return COSYNC_EPERM;
    int rc = may_schedule(loop, cb, fn);
    if (rc)
        return rc;
    fill(cb, loop, fn, arg, COSYNC_FOREVER);
    cb->u.attached.list = list;
    cb->seq = seq;
    set_state(cb, CB_ATTACHED);
    cosync__list_push_back(list, &cb->u.attached.node);
    cosync__list_push_back(&loop->cb_attached, &cb->link);
    return 0;
}

void cosync__callback_soon_unread(cosync_loop *loop, cosync_callback *cb, void (*fn)(void *),
                                  void *arg)
{
    fill(cb, loop, fn, arg, COSYNC_FOREVER);
    queue_now(loop, cb);
}

int cosync__callback_soon(cosync_callback *cb, void (*fn)(void *), void *arg)
{
    cosync_loop *loop = cosync__tls.loop;
    if (!loop)
        return COSYNC_EPERM;
    return cosync_loop_call_soon(loop, cb, fn, arg);
}

void cosync__callback_release(cosync_callback *cb)
{
    cosync_loop *loop = cb->loop;
    detach(loop, cb, CB_ATTACHED);
    queue_now(loop, cb);
}

/* ---- done callbacks of tasks ------------------------------------------- */

const cosync__waiter_ops cosync__done_callback_ops = {"done callback", NULL, NULL, NULL};

/* Keep the task's outcome in @cb, for cosync_callback_outcome. The union
 * is free once the callback is queued: only the timer of a timed one
 * lives there. */
static void keep_outcome(cosync_callback *cb, int status, void *result)
{
    cb->u.wait = (cosync__waiter){.ops = &cosync__done_callback_ops,
                                  .data = (uintptr_t)result,
                                  .result = status,
                                  .state = COSYNC__W_GRANTED};
}

int cosync_task_add_done_callback(cosync_task task, cosync_callback *cb, void (*fn)(void *arg),
                                  void *arg)
{
    struct cosync__task *t = cosync__task_lookup(task);
    if (!t)
        return COSYNC_ESRCH;
    cosync_loop *loop = t->loop;
    int rc = may_schedule(loop, cb, fn);
    if (rc)
        return rc;
    fill(cb, loop, fn, arg, COSYNC_FOREVER);
    if (t->state == COSYNC__T_DONE) { /* asyncio schedules it with call_soon */
        queue_now(loop, cb);
        keep_outcome(cb, t->status, t->result);
        return 0;
    }
    cb->u.wait =
        (cosync__waiter){.ops = &cosync__done_callback_ops, .obj = t, .state = COSYNC__W_WAITING};
    set_state(cb, CB_ON_TASK);
    cosync__task_await_link(t, &cb->u.wait);
    cosync__list_push_back(&loop->cb_attached, &cb->link);
    return 0;
}

void cosync__callback_task_done(cosync__waiter *w, const struct cosync__task *t)
{
    cosync_callback *cb = cosync__container_of(w, cosync_callback, u.wait);
    cosync_loop *loop = cb->loop;
    cosync__list_remove(&loop->cb_attached, &cb->link);
    queue_now(loop, cb);
    keep_outcome(cb, t->status, t->result);
}

int cosync_callback_outcome(const cosync_callback *cb, int *status, void **result)
{
    if (!cb || !state_of(cb) || cb->u.wait.ops != &cosync__done_callback_ops)
        return COSYNC_EINVAL;
    if (cb->u.wait.state != COSYNC__W_GRANTED)
        return COSYNC_EAGAIN;
    if (status)
        *status = cb->u.wait.result;
    if (result)
        *result = (void *)cb->u.wait.data;
    return 0;
}

/* ---- the caller's record ----------------------------------------------- */

/* Whether the callback queued at @n (if any) is due at @cb's step: its
 * task may already have been dispatched, and queued again since, so its
 * step could not be looked for again. */
static bool same_place(const cosync_callback *cb, const cosync__node *n)
{
    return n && cosync__container_of(n, cosync_callback, link)->after == cb->after;
}

int cosync_callback_cancel(cosync_callback *cb)
{
    if (!cb)
        return COSYNC_EINVAL;
    int state = state_of(cb);
    if (state == CB_RAN || state == CB_CANCELLED)
        return COSYNC_EALREADY;
    if (!scheduled(state))
        return COSYNC_EINVAL;
    cosync_loop *loop = cb->loop;
    if (!may_use(loop))
        return COSYNC_EPERM;
    if (state == CB_TIMED) {
        cosync__timer_disarm(&loop->timers, &cb->u.timer);
        cosync__list_remove(&loop->cb_timed, &cb->link);
    } else if (state == CB_ATTACHED || state == CB_ON_TASK) { /* remove_done_callback() */
        detach(loop, cb, state);
    } else {
        if (first_due(loop) == cb && !same_place(cb, cb->link.next))
            loop->cb_due = COSYNC__STEP_UNKNOWN; /* the next one's step is looked for */
        cosync__list_remove(&loop->cb_soon, &cb->link);
    }
    set_state(cb, CB_CANCELLED);
    return 0;
}

bool cosync_callback_cancelled(const cosync_callback *cb)
{
    return cb && state_of(cb) == CB_CANCELLED;
}

bool cosync_callback_pending(const cosync_callback *cb)
{
    return cb && scheduled(state_of(cb));
}

int64_t cosync_callback_when(const cosync_callback *cb)
{
    return cb && state_of(cb) ? cb->when : COSYNC_FOREVER;
}

void cosync__callbacks_drop_all(cosync_loop *loop)
{
    cosync__node *n;
    while ((n = loop->cb_attached.head)) {
        cosync_callback *cb = cosync__container_of(n, cosync_callback, link);
        detach(loop, cb, state_of(cb));
        set_state(cb, CB_CANCELLED);
        /* the thread that waits for the task would wait for ever; last,
         * as the record may be freed as soon as it ends */
        if (cosync__is_remote_callback(cb))
            cosync__remote_task_dropped(cb);
    }
    while ((n = cosync__list_pop_front(&loop->cb_timed))) {
        cosync_callback *cb = cosync__container_of(n, cosync_callback, link);
        cosync__timer_disarm(&loop->timers, &cb->u.timer);
        set_state(cb, CB_CANCELLED);
    }
    while ((n = cosync__list_pop_front(&loop->cb_soon)))
        set_state(cosync__container_of(n, cosync_callback, link), CB_CANCELLED);
    loop->cb_due = COSYNC__STEP_UNKNOWN;
}
