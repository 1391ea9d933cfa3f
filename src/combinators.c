/*
 * gather and wait_for: joining many tasks, or one with a deadline. When the
 * caller gives up (cancelled, deadline), the tasks it still waits for are
 * cancelled and waited for, as asyncio does, so that every task passed in
 * is collected whatever happens.
 */
#include <stddef.h>

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

static void unclaim(const cosync_task *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        tasks[i].rec->claimed = false;
}

/* Claim every task for the caller, or none (COSYNC_EINVAL). */
static int claim_all(struct cosync__task *cur, const cosync_task *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (i + COLLECT_AHEAD < n)
            prefetch_record(tasks[i + COLLECT_AHEAD].rec);
        struct cosync__task *t = cosync__task_lookup(tasks[i]);
        if (!t || t->loop != cur->loop || t == cur || t->detached || t->joiner || t->claimed) {
            unclaim(tasks, i);
            return COSYNC_EINVAL;
        }
        t->claimed = true;
    }
    return 0;
}

/* Wait for @t; if @give_up is set already, or the wait fails, cancel the
 * tasks from @t on and wait for @t without interruption. */
static int settle(struct cosync__task *cur, const cosync_task *tasks, size_t i, size_t n,
                  int64_t deadline, int give_up)
{
    struct cosync__task *t = tasks[i].rec;
    if (!give_up) {
        give_up = cosync__await_task(cur, t, deadline, false);
        if (give_up)
            for (size_t k = i; k < n; k++)
                cosync__cancel(tasks[k].rec);
    }
    if (give_up)
        cosync__await_task(cur, t, COSYNC_FOREVER, true);
    t->joiner = NULL;
    t->claimed = false;
    return give_up;
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
        give_up = settle(cur, tasks, i, n, deadline, give_up);
        cosync__collect(tasks[i].rec, out ? &out[i].status : NULL, out ? &out[i].result : NULL);
    }
    return give_up;
}

int cosync_wait_for(cosync_task task, int *status, void **result, int64_t deadline)
{
    struct cosync__task *t, *cur;
    int rc = cosync__joinable(task, &t, &cur);
    if (rc)
        return rc;
    t->claimed = true;
    rc = settle(cur, &task, 0, 1, deadline, 0);
    bool ended_cancelled = t->status == COSYNC_ECANCELED;
    cosync__collect(t, status, result);
    /* Cancelled for the deadline, the task may still finish its own way (it
     * withdrew the request, or failed otherwise): that is its outcome, as
     * asyncio.wait_for then returns its value or raises its exception. */
    if ((rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) && !ended_cancelled)
        rc = 0;
    return rc;
}
