/*
 * The waiting layer: the one mechanism behind every blocking call.
 *
 * A wait is the current task's waiter (in its record) put on an object's
 * list, plus an optional deadline on the task's own timer. It ends in
 * exactly one of three ways: the object grants it, a cancellation aborts it,
 * or the deadline does; whichever comes first wins, and a grant is never
 * taken back.
 */
#include "waitq.h" /* and core.h */

static const cosync__waiter_ops yield_ops = {"yield", NULL, NULL, NULL};
/* one step of the loop taken as a wait on a future that a cancellation
 * cancels, so that withdrawing the request later changes nothing: the
 * suspension that delivers a pending cancellation to a wait that never
 * began, and cosync__step */
static const cosync__waiter_ops step_ops = {"next step", NULL, NULL, NULL};

/* Go to the back of the ready queue; returns @result unless a cancellation
 * comes meanwhile (or, for a yield, is withdrawn meanwhile). */
static int yield_with(struct cosync__task *cur, const cosync__waiter_ops *ops, int result)
{
    cosync__waiter *w = cosync__waiter_prepare(cur, ops, NULL);
    w->result = result;
    w->state = COSYNC__W_WAITING;
    cosync__make_ready(cur);
    return cosync__suspend(cur);
}

/* A pending cancellation is delivered as asyncio delivers it: the task
 * still suspends (every other ready task runs first), then gets
 * COSYNC_ECANCELED, even if the request is withdrawn meanwhile: asyncio
 * has cancelled the future the call awaited by then. */
static int deliver_cancel(struct cosync__task *cur)
{
    cur->cancel_pending = false;
    yield_with(cur, &step_ops, COSYNC_ECANCELED);
    return COSYNC_ECANCELED;
}

int cosync__step(struct cosync__task *cur)
{
    if (cur->cancel_pending)
        return deliver_cancel(cur);
    return yield_with(cur, &step_ops, 0);
}

void cosync__yield_uncancelled(struct cosync__task *t)
{
    if (t->state == COSYNC__T_READY && t->w.ops == &yield_ops && t->w.result == COSYNC_ECANCELED)
        t->w.result = 0;
}

int cosync__wait_slow(cosync__waiter *w, int64_t deadline)
{
    struct cosync__task *t = cosync__waiter_task(w);
    cosync_loop *loop = t->loop;
    if (deadline == 0 || (t->cancel_pending && !w->shielded) ||
        (deadline != COSYNC_FOREVER && deadline <= loop->now)) {
        /* it ends before it starts: off the object's queue first */
        if (w->ops->cancel)
            w->ops->cancel(w);
        if (deadline == 0)
            return COSYNC_EAGAIN; /* not a suspension: a pending cancel stays */
        if (t->cancel_pending && !w->shielded)
            return deliver_cancel(t);
        return COSYNC_ETIMEDOUT;
    }
    w->state = COSYNC__W_WAITING;
    t->state = COSYNC__T_BLOCKED;
    if (deadline != COSYNC_FOREVER)
        cosync__timer_arm(&loop->timers, &t->timer, deadline);
    return cosync__suspend(t);
}

void cosync__grant_timed(cosync__waiter *w, int result)
{
    struct cosync__task *t = cosync__waiter_task(w);
    w->state = COSYNC__W_GRANTED;
    w->result = result;
    cosync__timer_disarm(&t->loop->timers, &t->timer);
    cosync__make_ready(t);
}

struct cosync__task *cosync__abort_wait(cosync__waiter *w, int result)
{
    struct cosync__task *t = cosync__waiter_task(w);
    cosync__wait_disarm(t);
    struct cosync__task *pass_on = NULL;
    if (w->ops->give_up && w->ops->give_up(w, result, &pass_on))
        return pass_on; /* it goes on waiting, in its place */
    w->state = COSYNC__W_CANCELLED;
    w->result = result;
    if (w->ops->cancel)
        w->ops->cancel(w);
    if (t->state == COSYNC__T_BLOCKED)
        cosync__make_ready(t);
    return NULL;
}

void cosync__waiter_timer_fired(cosync__timer *timer)
{
    struct cosync__task *t = cosync__container_of(timer, struct cosync__task, timer);
    if (t->w.state == COSYNC__W_WAITING) {
        struct cosync__task *pass_on = cosync__abort_wait(&t->w, COSYNC_ETIMEDOUT);
        if (pass_on)
            cosync__cancel(pass_on);
    }
}

/* ---- wait queues ----------------------------------------------------- */

/* Out of line: the loop keeps its state in registers that a caller of the
 * one-waiter path (cosync__waitq_grant_all) would otherwise save. */
size_t cosync__waitq_grant_each(cosync__waitq *q, int first, int step)
{
    size_t n = q->n;
    cosync__node *node = q->list.head;
    *q = (cosync__waitq)COSYNC__WAITQ_INIT;
    for (int result = first; node; result += step) {
        cosync__node *next = node->next;
        node->next = node->prev = NULL;
        cosync__grant(cosync__container_of(node, cosync__waiter, node), result);
        node = next;
    }
    return n;
}

/* ---- sleeping -------------------------------------------------------- */

static const cosync__waiter_ops sleep_ops = {"sleep", NULL, NULL, NULL};

int cosync_yield(void)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (cur->cancel_pending) {
        /* asyncio's sleep(0) is a bare yield: the request is raised when
         * the task runs again, unless uncancel() has withdrawn it */
        cur->cancel_pending = false;
        return yield_with(cur, &yield_ops, COSYNC_ECANCELED);
    }
    /* an unguarded stack takes the way with its overflow check */
    cosync_loop *loop = cur->loop;
    struct cosync__task *next = loop->ready_head;
    if (__builtin_expect(!cur->unguarded, 1)) {
        /* nothing else is ready, and the loop need not look at its clock
         * and I/O yet: going to the back of an empty queue would come
         * straight back */
        if (!next && loop->budget > 1) {
            loop->budget--;
            return 0;
        }
        if (next && loop->budget > 0 && cosync__resumable(next)) {
            cosync__waiter *w = cosync__waiter_prepare(cur, &yield_ops, NULL);
            w->state = COSYNC__W_WAITING;
            return cosync__yield_to(cur, next);
        }
    }
    return yield_with(cur, &yield_ops, 0);
}

int cosync_sleep_until(int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (deadline != COSYNC_FOREVER && deadline <= cur->loop->now)
        return cosync_yield();
    cosync__waiter *w = cosync__waiter_prepare(cur, &sleep_ops, NULL);
    int rc = cosync__wait(w, deadline);
    return rc == COSYNC_ETIMEDOUT ? 0 : rc;
}

int cosync_sleep(int64_t duration)
{
    if (duration <= 0)
        return cosync_yield();
    return cosync_sleep_until(cosync_deadline_after(duration));
}

int64_t cosync_now(void)
{
    cosync_loop *loop = cosync__tls.loop;
    return loop ? loop->now : cosync__clock_monotonic();
}

int64_t cosync_deadline_after(int64_t timeout)
{
    if (timeout == COSYNC_FOREVER)
        return COSYNC_FOREVER;
    int64_t now = cosync_now();
    /* a budget that has run out (asyncio's negative timeout): a deadline
     * that has passed, never one of the two special values */
    if (timeout <= 0)
        return now;
    return timeout > INT64_MAX - now ? INT64_MAX : now + timeout;
}
