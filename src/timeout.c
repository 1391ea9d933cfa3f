/*
 * asyncio.timeout(): a block of a task's code with a deadline.
 *
 * At the deadline the task is cancelled, as asyncio's timeout calls
 * task.cancel(): every wait already knows what to do with that (a shielded
 * one defers it, one that passes it on passes it on), so a block adds
 * nothing to any wait. The leave turns the COSYNC_ECANCELED into
 * COSYNC_ETIMEDOUT if no other request came meanwhile, by asyncio's rule:
 * the cancel count has fallen back to what it was at the enter.
 *
 * The timer lives in a node the loop allocates, never in the caller's
 * struct: the heap points to it while the task is away, when a dense
 * task's locals hold another task's bytes, and a task that ends without
 * leaving its block may have covered the block's frame by then. The task's
 * record keeps its innermost node, and each node the one around it.
 */
#include "core.h"
#include "fault.h"
#include "timer.h"

struct cosync__timeout_node {
    cosync__timer timer;
    struct cosync__task *task;
    struct cosync__timeout_node *outer;
    const cosync_timeout *user; /* to refuse entering it twice */
    uint32_t cancelling;        /* the task's count at the enter */
    bool expired;
    bool made_pending; /* the expiry's request waits for the next suspension */
};

enum { TM_ENTERED = 1, TM_EXPIRED, TM_EXITED };

/* Cancel the task, as the timer would: once, whatever it does now. */
static void expire(struct cosync__timeout_node *n)
{
    bool was_pending = n->task->cancel_pending;
    n->expired = true;
    cosync__cancel(n->task);
    n->made_pending = !was_pending && n->task->cancel_pending;
}

static void timer_fired(cosync__timer *timer)
{
    expire(cosync__container_of(timer, struct cosync__timeout_node, timer));
}

static void disarm(struct cosync__timeout_node *n)
{
    if (cosync__timer_armed(&n->timer))
        cosync__timer_disarm(&n->task->loop->timers, &n->timer);
}

/* Arm @n for @deadline, or expire it now if that has passed. */
static void schedule(struct cosync__timeout_node *n, int64_t deadline)
{
    cosync_loop *loop = n->task->loop;
    disarm(n);
    if (deadline == COSYNC_FOREVER)
        return;
    if (deadline <= loop->now)
        expire(n);
    else
        cosync__timer_arm(&loop->timers, &n->timer, deadline);
}

static bool entered_by(const struct cosync__task *t, const cosync_timeout *tm)
{
    if (!(t->close_marks & COSYNC__SCOPES))
        return false;
    for (const struct cosync__timeout_node *n = t->timeouts; n; n = n->outer)
        if (n->user == tm)
            return true;
    return false;
}

static void free_node(struct cosync__timeout_node *n)
{
    disarm(n);
    cosync__mem_free(n->task->loop->alloc, n);
}

int cosync_timeout_enter(cosync_timeout *tm, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur || entered_by(cur, tm))
        return COSYNC_EPERM;
    struct cosync__timeout_node *n = cosync__mem_alloc(cur->loop->alloc, sizeof *n);
    if (!n)
        return COSYNC_ENOMEM;
    *n = (struct cosync__timeout_node){
        .task = cur,
        .user = tm,
        .cancelling = cur->cancel_count,
    };
    cosync__timer_init(&n->timer, timer_fired);
    cosync__scopes_open(cur);
    n->outer = cur->timeouts;
    cur->timeouts = n;
    *tm = (cosync_timeout){.node = n, .when = deadline, .state = TM_ENTERED};
    schedule(n, deadline);
    return 0;
}

int cosync_timeout_leave(cosync_timeout *tm, int rc)
{
    struct cosync__task *cur = cosync__current();
    /* compared before it is read: @tm may be any bytes */
    if (!cur || !(cur->close_marks & COSYNC__SCOPES) || !cur->timeouts || cur->timeouts != tm->node)
        return COSYNC_EPERM;
    struct cosync__timeout_node *n = tm->node;
    cur->timeouts = n->outer;
    cosync__scopes_closed(cur);
    bool expired = n->expired;
    uint32_t cancelling = n->cancelling;
    bool made_pending = n->made_pending;
    free_node(n);
    tm->node = NULL;
    if (!expired) {
        tm->state = TM_EXITED;
        return rc;
    }
    tm->state = TM_EXPIRED;
    int left = cosync_task_uncancel((cosync_task){cur, cur->id});
    if ((uint32_t)left > cancelling)
        return rc; /* cancelled from elsewhere too: that goes on */
    /* the expiry's request, if the task never received it, must not reach
     * a suspension after the block (asyncio 3.13 drops it only when the
     * count falls to 0); one that was on its way already stays */
    if (made_pending)
        cur->cancel_pending = false;
    return rc == COSYNC_ECANCELED ? COSYNC_ETIMEDOUT : rc;
}

int cosync_timeout_reschedule(cosync_timeout *tm, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur || tm->state != TM_ENTERED || !tm->node)
        return COSYNC_EPERM;
    struct cosync__timeout_node *n = tm->node;
    if (n->user != tm || n->task->loop != cur->loop || n->expired)
        return COSYNC_EPERM;
    tm->when = deadline;
    schedule(n, deadline);
    return 0;
}

int64_t cosync_timeout_when(const cosync_timeout *tm)
{
    return tm->when;
}

bool cosync_timeout_expired(const cosync_timeout *tm)
{
    if (tm->state == TM_ENTERED)
        return tm->node && tm->node->expired;
    return tm->state == TM_EXPIRED;
}

void cosync__timeout_owner_ends(struct cosync__task *t)
{
    size_t n = 0;
    while (t->timeouts) {
        struct cosync__timeout_node *node = t->timeouts;
        t->timeouts = node->outer;
        free_node(node);
        n++;
    }
    cosync__report_task_end(t, "%zu timeout block%s (cosync_timeout_leave)", n, n == 1 ? "" : "s");
}
