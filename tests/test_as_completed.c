/*
 * test_as_completed.c - cosync_as_completed: tasks handed out in the order
 * they finish (`for t in asyncio.as_completed(tasks)`).
 *
 * The order (tasks finished before the init first, by their finish), the
 * times on the virtual clock, tasks joined or gathered beside the
 * iterator, deadlines, the caller's cancellation in every state, the place
 * of the iterator's wake-up among a task's waits, misuse, allocation
 * failures, the deadlock report, a loop destroyed before the iterator, and
 * a large crowd in order. Every loop uses the virtual clock.
 */
/* ctest-timeout: 120 */
#include <string.h>
#include <stdint.h>
#include <stdlib.h>

#include "fault.h"
#include "harness.h"

/* Sleeps @arg seconds, then returns @arg as its result. */
static int sleep_secs(void *arg, void **result)
{
    int rc = cosync_sleep(COSYNC_SEC((int)(intptr_t)arg));
    if (rc)
        return rc;
    *result = arg;
    return 0;
}

static void spawn_sleepers(cosync_task *t, const int *secs, size_t n)
{
    for (size_t i = 0; i < n; i++)
        CHECK_OK(cosync_task_spawn(&t[i], sleep_secs, (void *)(intptr_t)secs[i], NULL));
}

static void join_all(cosync_task *t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        join_ok(t[i]);
}

/* ------------------------------------------------------------------------
 * Order and time
 * ---------------------------------------------------------------------- */

static int main_order(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    static const int secs[] = {5, 1, 4, 2, 3};
    static const size_t want[] = {1, 3, 4, 2, 0};
    cosync_task t[5];
    spawn_sleepers(t, secs, 5);
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 5));
    size_t i;
    for (int k = 0; k < 5; k++) {
        CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
        CHECK_EQ(i, want[k]);
        CHECK_EQ(cosync_now() - t0, COSYNC_SEC(secs[i]));
        int status = 1;
        void *res = NULL;
        CHECK_OK(cosync_task_join(t[i], &status, &res, COSYNC_FOREVER)); /* done: no wait */
        CHECK_OK(status);
        CHECK_EQ((intptr_t)res, secs[i]);
        CHECK_EQ(cosync_now() - t0, COSYNC_SEC(secs[i]));
    }
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 0); /* the end */
    CHECK_EQ(cosync_as_completed_next(&it, &i, 0), 0);              /* and again */
    CHECK_OK(cosync_as_completed_destroy(&it));
    return 0;
}

TEST(tasks_come_in_the_order_they_finish_at_their_finish)
{
    run_main_ok(main_order, NULL);
}

static int main_finished_first(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {3, 2, 4, 1};
    cosync_task t[4];
    spawn_sleepers(t, secs, 4);
    CHECK_OK(cosync_yield());              /* they sleep: their timers before main's */
    CHECK_OK(cosync_sleep(COSYNC_SEC(2))); /* t[3] then t[1] have finished */
    int64_t t0 = cosync_now();
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 4));
    uint64_t sw = switches();
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 3);
    CHECK_EQ(cosync_as_completed_next(&it, &i, 0), 1); /* no wait: deadline 0 is fine */
    CHECK_EQ(i, 1);
    CHECK_EQ(switches(), sw); /* neither suspended */
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 2);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(2));
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_all(t, 4);
    return 0;
}

TEST(tasks_finished_before_the_init_come_first_in_the_order_they_finished)
{
    run_main_ok(main_finished_first, NULL);
}

/* The tasks stay free: a gather collects them while the iterator watches,
 * another task joins one before it is handed out; the indices come all
 * the same. */
static cosync_task free_t[3];

static int gather_them(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_outcome out[2];
    CHECK_OK(cosync_gather(free_t, 2, out, COSYNC_FOREVER));
    CHECK_OK(out[0].status);
    CHECK_OK(out[1].status);
    return 0;
}

static int main_tasks_stay_free(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {2, 1, 3};
    spawn_sleepers(free_t, secs, 3);
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, free_t, 3));
    cosync_task g;
    CHECK_OK(cosync_task_spawn(&g, gather_them, NULL, NULL));
    size_t i, got[3];
    for (int k = 0; k < 3; k++) {
        CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
        got[k] = i;
    }
    CHECK_EQ(got[0], 1);
    CHECK_EQ(got[1], 0);
    CHECK_EQ(got[2], 2);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_ok(g);
    CHECK_ERR(cosync_task_join(free_t[0], NULL, NULL, 0), COSYNC_ESRCH); /* gathered */
    join_ok(free_t[2]);
    return 0;
}

TEST(the_tasks_stay_free_to_be_gathered_and_joined)
{
    run_main_ok(main_tasks_stay_free, NULL);
}

/* Where the iterator's wake-up falls among a task's waits: where its init
 * came, as asyncio's done callback is added by as_completed(). */
static cosync_task place_target;
static cosync_as_completed place_it;

static int place_waiter(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_wait(place_target, NULL, NULL, COSYNC_FOREVER));
    CHECKPOINT((int)(intptr_t)arg);
    return 0;
}

static int place_consumer(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&place_it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECKPOINT(1);
    return 0;
}

static int main_place(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(&place_target, sleep_secs, (void *)1, NULL));
    cosync_task w0, c, w2;
    CHECK_OK(cosync_task_spawn(&w0, place_waiter, (void *)0, NULL));
    CHECK_OK(cosync_yield()); /* w0 waits */
    CHECK_OK(cosync_as_completed_init(&place_it, &place_target, 1));
    CHECK_OK(cosync_task_spawn(&c, place_consumer, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&w2, place_waiter, (void *)2, NULL));
    join_ok(w0);
    join_ok(c);
    join_ok(w2);
    CHECKPOINTS_DONE(3);
    CHECK_OK(cosync_as_completed_destroy(&place_it));
    join_ok(place_target);
    return 0;
}

TEST(the_wake_up_comes_in_its_place_among_the_tasks_waits)
{
    run_main_ok(main_place, NULL);
}

/* ------------------------------------------------------------------------
 * Deadlines and cancellation
 * ---------------------------------------------------------------------- */

static int main_deadline(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {3, 2};
    cosync_task t[2];
    spawn_sleepers(t, secs, 2);
    int64_t t0 = cosync_now();
    int64_t deadline = cosync_deadline_after(COSYNC_SEC(1));
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 2));
    size_t i = 99;
    CHECK_ERR(cosync_as_completed_next(&it, &i, deadline), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(1));
    CHECK_ERR(cosync_as_completed_next(&it, &i, deadline), COSYNC_ETIMEDOUT); /* passed: at once */
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(1));
    CHECK_ERR(cosync_as_completed_next(&it, &i, 0), COSYNC_EAGAIN);
    CHECK_EQ(i, 99);
    CHECK_EQ(cosync_task_done(t[0]), false); /* the tasks went on */
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 1);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(2));
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_all(t, 2);
    return 0;
}

TEST(a_deadline_ends_the_wait_and_the_tasks_go_on)
{
    run_main_ok(main_deadline, NULL);
}

/* The task's timer and the deadline's at the same instant, the task's
 * first: the deadline's wins, as in asyncio (its timeout callback runs
 * before the finish is passed on); a later call hands the task out. */
static int main_same_instant(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {1};
    cosync_task t;
    spawn_sleepers(&t, secs, 1);
    CHECK_OK(cosync_yield()); /* its timer first */
    int64_t t0 = cosync_now();
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, &t, 1));
    size_t i = 99;
    int64_t deadline = cosync_deadline_after(COSYNC_SEC(1));
    CHECK_ERR(cosync_as_completed_next(&it, &i, deadline), COSYNC_ETIMEDOUT);
    CHECK_EQ(i, 99);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(1));
    CHECK(cosync_task_done(t));
    CHECK_EQ(cosync_as_completed_next(&it, &i, deadline), 1); /* queued: no wait */
    CHECK_EQ(i, 0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, 0), 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_ok(t);
    return 0;
}

TEST(a_task_finishing_at_the_deadlines_instant_does_not_count)
{
    run_main_ok(main_same_instant, NULL);
}

/* The first call after an init that found finished tasks yields once (a
 * pending cancel is delivered there, the tasks ready run first), unless
 * the loop has run since the init or the deadline is 0. */
static bool ticked;

static int ticker(void *arg, void **result)
{
    (void)arg, (void)result;
    ticked = true;
    CHECKPOINT(0);
    return 0;
}

static cosync_task main_task;

static int uncancel_main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_task_uncancel(main_task), 0);
    return 0;
}

static int main_first_step(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task a, tk;
    size_t i;
    cosync_as_completed it;
    main_task = cosync_task_current();
    /* the tasks ready at the first call run first */
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, NULL));
    CHECK_OK(cosync_yield()); /* a finishes */
    CHECK_OK(cosync_as_completed_init(&it, &a, 1));
    CHECK_OK(cosync_task_spawn(&tk, ticker, NULL, NULL));
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECKPOINT(1);
    CHECK_EQ(i, 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_ok(a);
    join_ok(tk);
    /* a cancel pending at the first call is delivered by its yield */
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_as_completed_init(&it, &a, 1));
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_ERR(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1); /* nothing lost */
    CHECK_EQ(i, 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_ok(a);
    /* withdrawn by another task during that yield, it is delivered all the
     * same: asyncio's first await is on a future, which the cancel has
     * cancelled (a bare yield would return 0: test_cancel.c) */
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_as_completed_init(&it, &a, 1));
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    cosync_task u;
    CHECK_OK(cosync_task_spawn(&u, uncancel_main_task, NULL, NULL));
    CHECK_ERR(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), COSYNC_ECANCELED);
    join_ok(u);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_ok(a);
    /* the loop has run since the init: no yield */
    cosync_task b;
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_as_completed_init(&it, &a, 1));
    CHECK_OK(cosync_task_spawn(&b, nop, NULL, NULL));
    CHECK_OK(cosync_yield()); /* b runs: the loop switched */
    ticked = false;
    CHECK_OK(cosync_task_spawn(&tk, ticker, NULL, NULL));
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK(!ticked);
    CHECK_OK(cosync_as_completed_destroy(&it));
    CHECKPOINT_RESET();
    join_ok(tk);
    join_ok(a);
    join_ok(b);
    /* deadline 0: no yield, and that was the first call: the next, with
     * a deadline, does not yield either */
    cosync_task two[2];
    CHECK_OK(cosync_task_spawn(&two[0], nop, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&two[1], nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_as_completed_init(&it, two, 2));
    ticked = false;
    CHECK_OK(cosync_task_spawn(&tk, ticker, NULL, NULL));
    CHECK_EQ(cosync_as_completed_next(&it, &i, 0), 1);
    CHECK_EQ(i, 0);
    CHECK(!ticked);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 1);
    CHECK(!ticked);
    CHECK_OK(cosync_as_completed_destroy(&it));
    CHECKPOINT_RESET();
    join_ok(tk);
    join_all(two, 2);
    return 0;
}

TEST(the_first_call_after_finished_tasks_yields_once)
{
    run_main_ok(main_first_step, NULL);
}

typedef struct consumer {
    cosync_as_completed *it;
    int rc;
    size_t i;
    int after; /* what the next suspension returned */
} consumer;

static int consume_one(void *arg, void **result)
{
    (void)result;
    consumer *c = arg;
    c->i = 99;
    c->rc = cosync_as_completed_next(c->it, &c->i, COSYNC_FOREVER);
    c->after = cosync_yield();
    return 0;
}

static int main_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {2, 1};
    cosync_task t[2];
    spawn_sleepers(t, secs, 2);
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 2));
    /* cancelled while it waits: nothing handed out, the tasks go on */
    consumer c = {.it = &it};
    cosync_task h;
    CHECK_OK(cosync_task_spawn(&h, consume_one, &c, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(h));
    join_expect(h, COSYNC_ECANCELED);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK_EQ(c.i, 99);
    /* granted, then cancelled before it ran: the grant stands, the cancel
     * comes at the next suspension */
    consumer d = {.it = &it};
    CHECK_OK(cosync_task_spawn(&h, consume_one, &d, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* t[1] finishes: d is granted */
    CHECK_OK(cosync_task_cancel(h));
    join_expect(h, COSYNC_ECANCELED);
    CHECK_EQ(d.rc, 1);
    CHECK_EQ(d.i, 1);
    CHECK_ERR(d.after, COSYNC_ECANCELED);
    /* a cancel pending when a finished task is queued: handed out without
     * a suspension, the cancel stays pending */
    CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* t[0] finishes, queued */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    /* a cancel pending when nothing is queued: delivered by a yield, during
     * which a task finishes; its index waits for the next call */
    cosync_task q;
    CHECK_OK(cosync_task_spawn(&q, nop, NULL, NULL));
    cosync_as_completed it2;
    CHECK_OK(cosync_as_completed_init(&it2, &q, 1));
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_ERR(cosync_as_completed_next(&it2, &i, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK(cosync_task_done(q));
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    CHECK_EQ(ready_tasks(), 0);
    CHECK_EQ(cosync_as_completed_next(&it2, &i, 0), 1);
    CHECK_EQ(i, 0);
    CHECK_OK(cosync_as_completed_destroy(&it2));
    join_ok(q);
    /* the end; a cancel pending there stays pending too */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 0);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_all(t, 2);
    return 0;
}

TEST(the_callers_cancellation_in_each_state)
{
    run_main_ok(main_cancelled, NULL);
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

static cosync_task other_loop_task;

static int busy_waiter(void *arg, void **result)
{
    (void)result;
    size_t i;
    CHECK_EQ(cosync_as_completed_next(arg, &i, COSYNC_FOREVER), 1);
    return 0;
}

static int main_misuse(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {1, 2};
    cosync_task t[3];
    spawn_sleepers(t, secs, 2);
    cosync_as_completed it = {(void *)&secs}; /* garbage: a failed init clears it */
    size_t i;
    CHECK_ERR(cosync_as_completed_init(NULL, t, 2), COSYNC_EINVAL);
    CHECK_ERR(cosync_as_completed_init(&it, NULL, 2), COSYNC_EINVAL);
    CHECK_NULL(it.impl);
    /* listed twice, unfinished: nothing stays on the task's waits */
    t[2] = t[0];
    CHECK_ERR(cosync_as_completed_init(&it, t, 3), COSYNC_EINVAL);
    CHECK_NULL(it.impl);
    CHECK_ERR(cosync_as_completed_init(&it, &(cosync_task[]){cosync_task_current()}[0], 1),
              COSYNC_EDEADLK);
    CHECK_ERR(cosync_as_completed_init(&it, &other_loop_task, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_as_completed_next(&it, &i, 0), COSYNC_EINVAL); /* never set up */
    CHECK_ERR(cosync_as_completed_destroy(&it), COSYNC_EINVAL);
    CHECK_ERR(cosync_as_completed_destroy(NULL), COSYNC_EINVAL);

    CHECK_OK(cosync_as_completed_init(&it, t, 2));
    CHECK_ERR(cosync_as_completed_next(NULL, &i, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_as_completed_next(&it, NULL, 0), COSYNC_EINVAL);
    /* one task at a time in next; the iterator cannot go while it waits */
    cosync_task b;
    CHECK_OK(cosync_task_spawn(&b, busy_waiter, &it, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_as_completed_next(&it, &i, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_as_completed_destroy(&it), COSYNC_EBUSY);
    join_ok(b); /* t[0] finished */
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 1);
    CHECK_OK(cosync_as_completed_destroy(&it));
    CHECK_NULL(it.impl);
    CHECK_ERR(cosync_as_completed_destroy(&it), COSYNC_EINVAL); /* twice */
    CHECK_ERR(cosync_as_completed_next(&it, &i, 0), COSYNC_EINVAL);
    join_all(t, 2);
    CHECK_ERR(cosync_as_completed_init(&it, t, 1), COSYNC_ESRCH); /* collected */
    CHECK_OK(cosync_as_completed_init(&it, t, 0));                /* none: the end at once */
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 0);
    CHECK_OK(cosync_as_completed_destroy(&it));
    return 0;
}

TEST(misuse_errors)
{
    size_t i;
    cosync_as_completed it;
    memset(&it, 0x5a, sizeof it);                                    /* never set up: garbage */
    CHECK_ERR(cosync_as_completed_init(&it, NULL, 0), COSYNC_EPERM); /* outside a task */
    CHECK(it.impl == NULL); /* left as never set up, as the header says */
    CHECK_ERR(cosync_as_completed_destroy(&it), COSYNC_EINVAL);
    CHECK_ERR(cosync_as_completed_next(&it, &i, 0), COSYNC_EPERM);
    cosync_loop *other = new_loop();
    CHECK_OK(cosync_loop_spawn(other, &other_loop_task, nop, NULL, NULL));
    run_main_ok(main_misuse, NULL);
    CHECK_OK(cosync_loop_run(other, other_loop_task, NULL, NULL));
    end_loop(other);
}

/* An iterator of one loop, used from a task of another loop (the first
 * loop's run left its tasks suspended): EPERM, and nothing changes. */
static cosync_as_completed two_it;
static cosync_future two_fut;

static int two_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, wait_future_arg, &two_fut, NULL));
    CHECK_OK(cosync_as_completed_init(&two_it, &t, 1));
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&two_it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECK_OK(cosync_as_completed_destroy(&two_it));
    join_ok(t);
    return 0;
}

static int two_other(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t i;
    CHECK_ERR(cosync_as_completed_next(&two_it, &i, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_as_completed_destroy(&two_it), COSYNC_EPERM);
    CHECK_NOTNULL(two_it.impl);
    return 0;
}

TEST(another_loops_task_gets_eperm)
{
    cosync_future_init(&two_fut);
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_task m, x, o;
    CHECK_OK(cosync_loop_spawn(a, &m, two_main, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(a, &x, nop, NULL, NULL));
    CHECK_OK(cosync_loop_run(a, x, NULL, NULL)); /* main waits in next */
    spawn_and_run(b, &o, two_other, NULL);
    end_loop(b);
    CHECK_OK(cosync_future_set_result(&two_fut, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(a, m, &status, NULL));
    CHECK_OK(status);
    end_loop(a);
}

/* Finished tasks listed twice are found too. */
static int main_finished_twice(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], nop, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    t[2] = t[1];
    cosync_as_completed it = {NULL};
    CHECK_ERR(cosync_as_completed_init(&it, t, 3), COSYNC_EINVAL);
    CHECK_NULL(it.impl);
    join_all(t, 2);
    return 0;
}

TEST(a_finished_task_listed_twice_is_refused)
{
    run_main_ok(main_finished_twice, NULL);
}

/* ------------------------------------------------------------------------
 * Memory: allocation failures, destroy early, the loop destroyed first
 * ---------------------------------------------------------------------- */

typedef struct fault_case {
    long k;
    bool failed;
    counting *c;
} fault_case;

static int main_faults(void *arg, void **result)
{
    (void)result;
    fault_case *f = arg;
    static const int secs[] = {1, 3, 2};
    cosync_task t[3];
    spawn_sleepers(t, secs, 3);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sleep(COSYNC_SEC(2))); /* two finished: the sort's array too */
    long live = f->c->live, failures = cosync__fault_failures;
    cosync_as_completed it = {NULL};
    cosync__fault_countdown = f->k;
    int rc = cosync_as_completed_init(&it, t, 3);
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    if (f->failed) {
        CHECK_ERR(rc, COSYNC_ENOMEM);
        CHECK_NULL(it.impl);
        CHECK_EQ(f->c->live, live); /* nothing kept */
    } else {
        CHECK_OK(rc);
        size_t i;
        CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
        CHECK_EQ(i, 0);
        CHECK_OK(cosync_as_completed_destroy(&it));
        CHECK_EQ(f->c->live, live);
    }
    join_all(t, 3); /* nothing watches them any more */
    return 0;
}

TEST(each_allocation_of_the_init_failing_in_turn_leaves_nothing)
{
    counting c = {0, 0};
    long k;
    for (k = 0;; k++) {
        fault_case f = {.k = k, .c = &c};
        cosync_allocator a = {count_realloc, &c};
        cosync_loop *loop = NULL;
        CHECK_OK(
            cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, main_faults, &f, NULL));
        int status = 1;
        CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
        CHECK_OK(status);
        end_loop(loop);
        CHECK_EQ(c.live, 0);
        if (!f.failed)
            break;
    }
    CHECK_EQ(k, 2); /* the iterator and the sort's array */
}

/* Destroyed with tasks unfinished: they finish later, untouched. */
static int main_destroy_early(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {1, 2, 3};
    cosync_task t[3];
    spawn_sleepers(t, secs, 3);
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 3));
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_all(t, 3);
    return 0;
}

TEST(destroyed_early_the_tasks_left_finish_untouched)
{
    run_main_ok(main_destroy_early, NULL);
}

/* The loop destroyed first: its close cancels the tasks (and the task
 * waiting in next); the iterator is then only memory to free. */
static cosync_as_completed orphan_it;

static int orphan_consumer(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t i;
    return cosync_as_completed_next(&orphan_it, &i, COSYNC_FOREVER);
}

static int main_orphan(void *arg, void **result)
{
    (void)arg, (void)result;
    static const int secs[] = {5, 6};
    cosync_task t[2], c;
    spawn_sleepers(t, secs, 2);
    CHECK_OK(cosync_as_completed_init(&orphan_it, t, 2));
    CHECK_OK(cosync_task_spawn(&c, orphan_consumer, NULL, NULL));
    CHECK_OK(cosync_task_detach(c));
    return 0; /* the loop is destroyed with all three running */
}

TEST(an_iterator_outliving_its_loop_is_only_freed)
{
    counting c = {0, 0};
    cosync_allocator a = {count_realloc, &c};
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, main_orphan, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels and collects the rest */
    CHECK_EQ(c.live, 1);                 /* the iterator */
    size_t i;
    CHECK_ERR(cosync_as_completed_next(&orphan_it, &i, 0), COSYNC_EPERM);
    CHECK_OK(cosync_as_completed_destroy(&orphan_it));
    CHECK_EQ(c.live, 0);
}

/* ------------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

static cosync_future dl_fut;

static int dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], nop, NULL, &(cosync_task_opts){.name = "quick"}));
    CHECK_OK(
        cosync_task_spawn(&t[1], wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "stuck"}));
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, 2));
    size_t i;
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 0);
    CHECK_EQ(cosync_as_completed_next(&it, &i, COSYNC_FOREVER), 1);
    CHECK_EQ(i, 1);
    CHECK_OK(cosync_as_completed_destroy(&it));
    join_all(t, 2);
    return 0;
}

TEST(deadlock_report_says_how_many_tasks_are_awaited)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, dl_main, NULL, "main", &m);
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on as_completed for 1 of 2 task(s) to finish\n"
             "  task 'stuck' (#3) waits on future %p\n",
             (void *)&dl_fut);
    CHECK_STREQ(capture_text(&cap), want);
    CHECK_OK(cosync_future_set_result(&dl_fut, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * A crowd: the order of the virtual clock (equal deadlines in spawn
 * order), each handed out once
 * ---------------------------------------------------------------------- */

#define CROWD 20000

static int sleep_ms(void *arg, void **result)
{
    (void)result;
    return cosync_sleep(COSYNC_MS((int)(intptr_t)arg));
}

static int main_crowd(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task *t = malloc(CROWD * sizeof *t);
    int *ms = malloc(CROWD * sizeof *ms);
    CHECK_NOTNULL(t);
    CHECK_NOTNULL(ms);
    uint64_t seed = 42;
    for (size_t k = 0; k < CROWD; k++) {
        ms[k] = (int)rnd(&seed, 500);
        CHECK_OK(cosync_task_spawn(&t[k], sleep_ms, (void *)(intptr_t)ms[k], NULL));
    }
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, t, CROWD));
    size_t i, prev = 0, n = 0;
    int rc;
    while ((rc = cosync_as_completed_next(&it, &i, COSYNC_FOREVER)) > 0) {
        if (n > 0) /* by deadline, then spawn order */
            CHECK(ms[prev] < ms[i] || (ms[prev] == ms[i] && prev < i));
        CHECK(cosync_task_done(t[i]));
        join_ok(t[i]);
        prev = i;
        n++;
    }
    CHECK_OK(rc);
    CHECK_EQ(n, CROWD);
    CHECK_OK(cosync_as_completed_destroy(&it));
    free(t);
    free(ms);
    return 0;
}

TEST(a_crowd_comes_in_the_order_of_the_clock_each_once)
{
    run_main_ok(main_crowd, NULL);
}

/* A failed as_completed init (a task listed twice) takes back the entries
 * it had put on the tasks before it frees them. Freed memory that still
 * looks valid would hide a dangling entry, so the loop's allocator here
 * poisons what it frees. */
/* malloc with a size header; free poisons the block, then frees it, or,
 * with a non-NULL @keep, keeps it for check_and_release_quarantine */
#define QUARANTINE_MAX 4096
static unsigned char *quarantine[QUARANTINE_MAX];
static size_t quarantine_sizes[QUARANTINE_MAX], quarantined;

static void *poisoning_realloc(void *keep, void *ptr, size_t size)
{
    if (size == 0) {
        if (ptr) {
            size_t *h = (size_t *)ptr - 2;
            memset(ptr, 0xA5, h[0]);
            if (!keep) {
                free(h);
                return NULL;
            }
            CHECK_LT(quarantined, QUARANTINE_MAX);
            quarantine[quarantined] = ptr;
            quarantine_sizes[quarantined++] = h[0];
        }
        return NULL;
    }
    size_t old = ptr ? ((size_t *)ptr)[-2] : 0;
    size_t *h = malloc(size + 2 * sizeof(size_t));
    if (!h)
        return NULL;
    h[0] = size;
    if (ptr) {
        memcpy(h + 2, ptr, old < size ? old : size);
        poisoning_realloc(keep, ptr, 0);
    }
    return h + 2;
}

/* Every block kept is still all poison: nothing wrote into it. */
static void check_and_release_quarantine(void)
{
    for (size_t k = 0; k < quarantined; k++) {
        for (size_t b = 0; b < quarantine_sizes[k]; b++)
            if (quarantine[k][b] != 0xA5)
                CHECK__FAIL("freed block %zu (%zu bytes) written at byte %zu", k,
                            quarantine_sizes[k], b);
        free((size_t *)(void *)quarantine[k] - 2);
    }
    quarantined = 0;
}

/* A loop on the virtual clock whose memory comes from @a. */
static cosync_loop *loop_allocating_from(const cosync_allocator *a)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = a}));
    return loop;
}

static int failed_init_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], sleep_ms, (void *)(intptr_t)5, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], sleep_ms, (void *)(intptr_t)5, NULL));
    t[2] = t[0]; /* listed twice, unfinished */
    cosync_as_completed it;
    CHECK_ERR(cosync_as_completed_init(&it, t, 3), COSYNC_EINVAL);
    CHECK_NULL(it.impl);
    /* the tasks finish and are joined: nothing of the failed iterator is left on them */
    join_ok(t[0]);
    join_ok(t[1]);
    return 0;
}

TEST(a_failed_as_completed_init_leaves_nothing_on_the_tasks)
{
    static const cosync_allocator poisoning = {poisoning_realloc, NULL};
    cosync_loop *loop = loop_allocating_from(&poisoning);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, failed_init_main, NULL, NULL));
    int status = -1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
}

/* An iterator destroyed after its loop only frees its own memory: the
 * loop's allocator here keeps what it frees, poisoned, and checks at the
 * end that nothing wrote into it. */
static cosync_as_completed late_it;

static int orphan_it_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&t[i], sleep_ms, (void *)(intptr_t)10000, NULL));
    CHECK_OK(cosync_as_completed_init(&late_it, t, 2));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_detach(t[i]));
    return 0; /* the loop is destroyed with both running and the iterator alive */
}

TEST(an_iterator_destroyed_after_its_loop_writes_nothing_into_the_loop)
{
    static const cosync_allocator quarantining = {poisoning_realloc, &quarantined};
    cosync_loop *loop = loop_allocating_from(&quarantining);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, orphan_it_main, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_OK(cosync_as_completed_destroy(&late_it));
    check_and_release_quarantine();
}

/*
 * A task listed twice is COSYNC_EINVAL. For finished tasks the duplicates
 * are found by comparing neighbours in finish order; the tests list a
 * finished task twice only among others, never as the first two (here: the
 * only two) entries in that order.
 */
static int twice_done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t));
    cosync_task twice[2] = {t, t};
    cosync_as_completed it;
    CHECK_ERR(cosync_as_completed_init(&it, twice, 2), COSYNC_EINVAL);
    join_ok(t);
    return 0;
}

TEST(the_same_finished_task_listed_as_the_only_two_is_refused)
{
    run_main_ok(twice_done_main, NULL);
}

int main(void)
{
    RUN(tasks_come_in_the_order_they_finish_at_their_finish);
    RUN(tasks_finished_before_the_init_come_first_in_the_order_they_finished);
    RUN(the_tasks_stay_free_to_be_gathered_and_joined);
    RUN(the_wake_up_comes_in_its_place_among_the_tasks_waits);
    RUN(a_deadline_ends_the_wait_and_the_tasks_go_on);
    RUN(a_task_finishing_at_the_deadlines_instant_does_not_count);
    RUN(the_first_call_after_finished_tasks_yields_once);
    RUN(the_callers_cancellation_in_each_state);
    RUN(misuse_errors);
    RUN(another_loops_task_gets_eperm);
    RUN(a_finished_task_listed_twice_is_refused);
    RUN(each_allocation_of_the_init_failing_in_turn_leaves_nothing);
    RUN(destroyed_early_the_tasks_left_finish_untouched);
    RUN(an_iterator_outliving_its_loop_is_only_freed);
    RUN(deadlock_report_says_how_many_tasks_are_awaited);
    RUN(a_crowd_comes_in_the_order_of_the_clock_each_once);
    RUN(a_failed_as_completed_init_leaves_nothing_on_the_tasks);
    RUN(an_iterator_destroyed_after_its_loop_writes_nothing_into_the_loop);
    RUN(the_same_finished_task_listed_as_the_only_two_is_refused);
    return 0;
}
