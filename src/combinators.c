/*
 * gather and wait_for: joining many tasks, or one with a deadline. When the
 * caller gives up (cancelled, deadline), the tasks it still waits for are
 * cancelled at that moment, inside the cancel or the timer, as asyncio's
 * cancel() reaches the tasks a gather awaits, and then waited for, so that
 * every task passed in is collected whatever happens. And wait (asyncio's),
 * which only watches its tasks, and gather_propagate, which watches them
 * as wait does until the first fails, and gives up as gather does.
 */
#include <stddef.h>
#include <stdio.h>

#include "core.h"

/* How far ahead of the task at hand gather fetches records. The records of
 * a large crowd are cold by the time they are claimed and again when they
 * are collected, and a fetch started one task early hides little of a miss
 * to memory. */
#define COLLECT_AHEAD 16

/* Start fetching the lines of @t that claiming and collecting touch (its
 * head up to the id and status, and its result up to the group): records
 * are not line-aligned, so each stretch is fetched at both ends. A hint: a
 * handle whose record is gone (or NULL) is just an address here.
 * always_inline: GCC drops a call to a function that only prefetches. */
static inline __attribute__((always_inline)) void prefetch_record(const struct cosync__task *t)
{
    uintptr_t a = (uintptr_t)t;
    __builtin_prefetch((const void *)a, 1);
    __builtin_prefetch((const void *)(a + offsetof(struct cosync__task, id)), 1);
    __builtin_prefetch((const void *)(a + offsetof(struct cosync__task, result)), 1);
    __builtin_prefetch((const void *)(a + offsetof(struct cosync__task, group)), 1);
}

/* Collect the task @tasks[@i] into @out[@i] (@out may be NULL). */
static void collect_into(const cosync_task *tasks, size_t i, cosync_outcome *out)
{
    cosync__collect(tasks[i].rec, out ? &out[i].status : NULL, out ? &out[i].result : NULL);
}

/* Give @t back: no gather, wait_for or wait has it any more. */
static void release_claim(struct cosync__task *t)
{
    t->claimed = COSYNC__CLAIM_NONE;
    t->next_claimed = NULL;
}

static void unclaim(const cosync_task *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        release_claim(tasks[i].rec);
}

/* Claim every task for the caller, or none (COSYNC_EINVAL), and chain
 * them in order through next_claimed. */
static int claim_all(struct cosync__task *cur, const cosync_task *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i + COLLECT_AHEAD < n)
            prefetch_record(tasks[i + COLLECT_AHEAD].rec);
        struct cosync__task *t = cosync__task_lookup(tasks[i]);
        if (!t || t->loop != cur->loop || t == cur || t->detached || t->claimed) {
            unclaim(tasks, i);
            return COSYNC_EINVAL;
        }
        t->claimed = COSYNC__CLAIM_COLLECT;
        if (i)
            tasks[i - 1].rec->next_claimed = t;
    }
    return 0;
}

/* settle(), once it has given up on @t or must: @give_up says why, or is 0
 * with a cancellation pending. A cancellation delivered here is passed on
 * to @t and the rest as one that comes during the wait, without a yield
 * first that a second cancel could land on (with deadline 0 it stays
 * pending, as in any call); then @t is waited for in its place, and a
 * cancel that comes meanwhile is passed on again and turns a timeout into
 * COSYNC_ECANCELED. */
static __attribute__((noinline)) int
settle_giving_up(struct cosync__task *cur, struct cosync__task *t, int64_t deadline, int give_up)
{
    if (!give_up && t->state == COSYNC__T_DONE) {
        /* nothing to wait for: no suspension, so the request stays pending,
         * as with a join of a finished task */
        release_claim(t);
        return 0;
    }
    if (!give_up && deadline != 0) {
        cur->cancel_pending = false;
        cosync__cancel_claimed(t);
        give_up = COSYNC_ECANCELED;
    } else if (!give_up) {
        give_up = cosync__await_task(cur, t, deadline, COSYNC__AWAIT_CANCEL_REST);
    }
    if (give_up &&
        cosync__await_task(cur, t, COSYNC_FOREVER, COSYNC__AWAIT_SHIELDED) == COSYNC_ECANCELED)
        give_up = COSYNC_ECANCELED;
    release_claim(t);
    return give_up;
}

/* Wait for @t, the first of the tasks still to collect. Cancelled or at
 * its deadline, the wait cancels @t and the rest at that moment and waits
 * on for @t in its place, returning what it gave up with once @t has
 * finished; once it has given up (@give_up), it waits for each task that
 * way (settle_giving_up). */
static inline int settle(struct cosync__task *cur, struct cosync__task *t, int64_t deadline,
                         int give_up)
{
    if (__builtin_expect(!give_up && !cur->cancel_pending, 1)) {
        give_up = cosync__await_task(cur, t, deadline, COSYNC__AWAIT_CANCEL_REST);
        if (__builtin_expect(!give_up, 1)) {
            release_claim(t);
            return 0;
        }
    }
    return settle_giving_up(cur, t, deadline, give_up);
}

int cosync_gather(const cosync_task *tasks, size_t n, cosync_outcome *out, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (n && !tasks)
        return COSYNC_EINVAL;
    int rc = claim_all(cur, tasks, n);
    if (rc)
        return rc;
    int give_up = 0;
    for (size_t i = 0; i < n; i++) {
        if (i + COLLECT_AHEAD < n)
            prefetch_record(tasks[i + COLLECT_AHEAD].rec);
        give_up = settle(cur, tasks[i].rec, deadline, give_up);
        collect_into(tasks, i, out);
    }
    return give_up;
}

int cosync_wait_for(cosync_task task, int *status, void **result, int64_t deadline)
{
    struct cosync__task *t, *cur;
    int rc = cosync__joinable(task, &t, &cur);
    if (rc)
        return rc;
    t->claimed = COSYNC__CLAIM_COLLECT;
    rc = settle(cur, t, deadline, 0);
    bool ended_cancelled = t->status == COSYNC_ECANCELED;
    cosync__collect(t, status, result);
    /* Cancelled for the deadline, the task may still finish its own way (it
     * withdrew the request, or failed otherwise): that is its outcome, as
     * asyncio.wait_for then returns its value or raises its exception. */
    if ((rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) && !ended_cancelled)
        rc = 0;
    return rc;
}

/* ---- wait: asyncio.wait ---------------------------------------------- */

/*
 * The waiter watches its tasks through their watcher field; its data holds
 * the condition (the low two bits), why a gather gave up (the next two)
 * and the tasks still running (the rest), so that a finishing task can
 * tell whether it ends the wait. Which task that was is worked out
 * afterwards from the order in which the tasks finished (finish_seq), so
 * that tasks that finished before the call, or several in one turn, are
 * reported in the same order. Nothing is allocated and nothing points
 * into the waiter's stack.
 */
#define WATCH_MODE_BITS 4
#define WATCH_MODE(data) ((int)((data)&3))
#define WATCH_REASON(data) ((int)(((data) >> 2) & 3))
#define WATCH_LEFT(data) ((size_t)((data) >> WATCH_MODE_BITS))
#define WATCH_DATA(left, reason, mode)                                                             \
    ((uintptr_t)(left) << WATCH_MODE_BITS | (uintptr_t)(reason) << 2 | (uintptr_t)(mode))

/* cosync_gather_propagate's condition, beside cosync_wait's three (1-3) */
#define GATHER_FIRST_FAILURE 0

/* Why cosync_gather_propagate gave up, and cancelled what was left; it
 * then waits for all of them (COSYNC_ALL_COMPLETED), shielded. */
enum { GAVE_UP_NOT, GAVE_UP_CANCELLED, GAVE_UP_TIMEDOUT, GAVE_UP_AGAIN };

static int gave_up_code(int reason)
{
    static const int codes[] = {0, COSYNC_ECANCELED, COSYNC_ETIMEDOUT, COSYNC_EAGAIN};
    return codes[reason];
}

static const char *return_when_name(int when)
{
    switch (when) {
    case COSYNC_FIRST_COMPLETED:
        return "first completed";
    case COSYNC_FIRST_EXCEPTION:
        return "first exception";
    default:
        return "all completed";
    }
}

static void watch_describe(const cosync__waiter *w, char *buf, size_t size)
{
    if (WATCH_MODE(w->data) == GATHER_FIRST_FAILURE || WATCH_REASON(w->data))
        snprintf(buf, size, "gather (first failure) for %zu unfinished task(s)%s",
                 WATCH_LEFT(w->data), WATCH_REASON(w->data) ? ", cancelled" : "");
    else
        snprintf(buf, size, "wait (%s) for %zu unfinished task(s)",
                 return_when_name(WATCH_MODE(w->data)), WATCH_LEFT(w->data));
}

/* Cancel the unfinished tasks that @cur watches, but the last, which is
 * returned (give_up's pass_on). They are found among the loop's records:
 * the caller's array may be in its stack, and this runs while it is away
 * (in a cancel or a timer). */
static struct cosync__task *cancel_watched_but_last(struct cosync__task *cur)
{
    struct cosync__task *last = NULL;
    cosync__for_each_record (cur->loop, t) {
        if (t->claimed != COSYNC__CLAIM_WATCH || t->watcher != cur || t->state == COSYNC__T_DONE)
            continue;
        if (last)
            cosync__cancel(last);
        last = t;
    }
    return last;
}

/* cosync_wait's wait ends when it is cancelled or times out. A gather's
 * gives up instead: it cancels its unfinished tasks at that moment, as
 * asyncio's gather passes its cancel() on, and goes on waiting in place,
 * shielded, until all have finished; each further cancel is passed on.
 * give_up puts @w in that state for @reason and cancels the unfinished
 * tasks but the last, which it returns (give_up's pass_on). */
static struct cosync__task *give_up(cosync__waiter *w, int reason)
{
    w->data = WATCH_DATA(WATCH_LEFT(w->data), reason, COSYNC_ALL_COMPLETED);
    w->shielded = true;
    return cancel_watched_but_last(cosync__waiter_task(w));
}

static bool watch_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on)
{
    if (WATCH_MODE(w->data) != GATHER_FIRST_FAILURE && !WATCH_REASON(w->data))
        return false;
    *pass_on = give_up(w, result == COSYNC_ETIMEDOUT ? GAVE_UP_TIMEDOUT : GAVE_UP_CANCELLED);
    return true;
}

/* nothing to take back when the wait ends otherwise: the caller stops
 * watching its tasks itself */
const cosync__waiter_ops cosync__watch_ops = {"wait", NULL, watch_describe, watch_give_up};

/* Whether @status ends a wait for the first failure: asyncio.wait counts
 * a task as failed if it raised, and a cancelled one did not; gather
 * propagates a cancelled task's CancelledError as any exception. */
static bool ends_wait_at_failure(int when, int status)
{
    if (when == GATHER_FIRST_FAILURE)
        return status < 0;
    return when == COSYNC_FIRST_EXCEPTION && status < 0 && status != COSYNC_ECANCELED;
}

void cosync__watched_task_done(struct cosync__task *j, struct cosync__task *t)
{
    cosync__waiter *w = &j->w;
    w->data -= (uintptr_t)1 << WATCH_MODE_BITS;
    int when = WATCH_MODE(w->data);
    if (when == COSYNC_FIRST_COMPLETED || ends_wait_at_failure(when, t->status) ||
        WATCH_LEFT(w->data) == 0)
        cosync__grant(w, 0);
}

/* Claim every task for watching by @cur, or none (COSYNC_EINVAL). */
static int watch_all(struct cosync__task *cur, const cosync_task *tasks, size_t n)
{
    int rc = claim_all(cur, tasks, n);
    if (!rc)
        for (size_t i = 0; i < n; i++) {
            tasks[i].rec->claimed = COSYNC__CLAIM_WATCH;
            tasks[i].rec->watcher = cur;
        }
    return rc;
}

/* Whether the condition holds now: then *@ender is the index that ends the
 * wait (the first to finish, or to fail, or @n: see cosync_wait). *@left
 * is set to the tasks still running. */
static bool condition_met(const cosync_task *tasks, size_t n, int when, size_t *ender, size_t *left)
{
    size_t first_done = n, first_failed = n;
    *left = 0;
    for (size_t i = 0; i < n; i++) {
        const struct cosync__task *t = tasks[i].rec;
        if (t->state != COSYNC__T_DONE) {
            ++*left;
            continue;
        }
        if (first_done == n || t->finish_seq < tasks[first_done].rec->finish_seq)
            first_done = i;
        if (ends_wait_at_failure(when, t->status) &&
            (first_failed == n || t->finish_seq < tasks[first_failed].rec->finish_seq))
            first_failed = i;
    }
    switch (when) {
    case COSYNC_FIRST_COMPLETED:
        *ender = first_done;
        return first_done < n;
    case COSYNC_FIRST_EXCEPTION:
    case GATHER_FIRST_FAILURE:
        *ender = first_failed;
        return first_failed < n || *left == 0;
    default:
        *ender = n;
        return *left == 0;
    }
}

int cosync_wait(const cosync_task *tasks, size_t n, cosync_return_when return_when, size_t *index,
                int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (!n || !tasks || return_when < COSYNC_FIRST_COMPLETED || return_when > COSYNC_ALL_COMPLETED)
        return COSYNC_EINVAL;
    int rc = watch_all(cur, tasks, n);
    if (rc)
        return rc;
    size_t ender, left;
    if (!condition_met(tasks, n, return_when, &ender, &left)) {
        cosync__waiter *w = cosync__waiter_prepare(cur, &cosync__watch_ops, NULL);
        w->data = WATCH_DATA(left, GAVE_UP_NOT, return_when);
        rc = cosync__wait(w, deadline);
        /* as asyncio.wait, which sorts the tasks into done and pending
         * once it runs again: a task that finished at the instant of the
         * deadline, before the caller ran, counts */
        if (rc != COSYNC_ECANCELED && condition_met(tasks, n, return_when, &ender, &left))
            rc = 0;
    }
    unclaim(tasks, n);
    if (!rc && index)
        *index = ender;
    return rc;
}

/* ---- gather_propagate: asyncio.gather without return_exceptions ------- */

/* Wait until a task fails or all have finished (0), or give up: cancel
 * those left at once, wait for all of them, and return why. A cancel
 * pending at the call, or a deadline passed, gives up before waiting,
 * without a yield (deadline 0 leaves the cancel pending, as any call). */
static int gather_wait(struct cosync__task *cur, size_t left, int64_t deadline)
{
    cosync__waiter *w = cosync__waiter_prepare(cur, &cosync__watch_ops, NULL);
    int reason = GAVE_UP_NOT;
    if (deadline == 0) {
        reason = GAVE_UP_AGAIN;
    } else if (cur->cancel_pending) {
        cur->cancel_pending = false;
        reason = GAVE_UP_CANCELLED;
    } else if (deadline != COSYNC_FOREVER && deadline <= cur->loop->now) {
        reason = GAVE_UP_TIMEDOUT;
    }
    w->data = WATCH_DATA(left, GAVE_UP_NOT, GATHER_FIRST_FAILURE);
    if (reason) {
        struct cosync__task *last = give_up(w, reason);
        if (last)
            cosync__cancel(last);
        deadline = COSYNC_FOREVER;
    }
    int rc = cosync__wait(w, deadline);
    if (rc == 0 && WATCH_REASON(w->data))
        rc = gave_up_code(WATCH_REASON(w->data));
    return rc;
}

int cosync_gather_propagate(const cosync_task *tasks, size_t n, cosync_outcome *out, size_t *failed,
                            int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (n && !tasks)
        return COSYNC_EINVAL;
    int rc = watch_all(cur, tasks, n);
    if (rc)
        return rc;
    size_t ender, left;
    if (!condition_met(tasks, n, GATHER_FIRST_FAILURE, &ender, &left)) {
        rc = gather_wait(cur, left, deadline);
        if (rc == 0)
            condition_met(tasks, n, GATHER_FIRST_FAILURE, &ender, &left);
    }
    unclaim(tasks, n);
    if (rc == 0 && ender < n) {
        /* the others are left as they are: still the caller's */
        rc = tasks[ender].rec->status;
        collect_into(tasks, ender, out);
        if (failed)
            *failed = ender;
        return rc;
    }
    for (size_t i = 0; i < n; i++)
        collect_into(tasks, i, out);
    if (failed)
        *failed = n;
    return rc;
}
