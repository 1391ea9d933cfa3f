/*
 * test_task_wait.c - cosync_task_wait: any number of tasks awaiting one
 * task, beside its collector (`await task` in several places).
 *
 * The order in which the waits are woken (with joins and gathers among
 * them), the outcome each gets even once the record is collected and
 * reused, deadlines, cancellation in every state, detached and group
 * tasks, misuse, the deadlock report, the close, and a randomized check of
 * every outcome against the virtual clock. Every loop uses the virtual
 * clock; interleavings are asserted with CHECKPOINT.
 */
/* ctest-timeout: 120 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "cosync.h"

/* ------------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------- */

/* Sleeps @arg seconds, then fails with status -10 * @arg and result @arg. */
static int sleep_then_fail(void *arg, void **result)
{
    int secs = (int)(intptr_t)arg;
    int rc = cosync_sleep(COSYNC_SEC(secs));
    if (rc)
        return rc;
    *result = arg;
    return -10 * secs;
}

/* One waiter: what it waits for, and what it got. */
typedef struct watch {
    cosync_task target;
    int64_t deadline; /* absolute; COSYNC_FOREVER or 0 as given */
    int step;         /* its CHECKPOINT when the wait returns; -1: none */
    int rc;
    int status;
    void *result;
    int64_t woke_at;
} watch;

static void watch_init(watch *w, cosync_task target, int64_t deadline, int step)
{
    *w = (watch){.target = target, .deadline = deadline, .step = step, .rc = 1, .status = 99};
    w->result = &w->rc; /* a value no task returns */
}

static int watcher(void *arg, void **result)
{
    (void)result;
    watch *w = arg;
    w->rc = cosync_task_wait(w->target, &w->status, &w->result, w->deadline);
    w->woke_at = cosync_now();
    if (w->step >= 0)
        CHECKPOINT(w->step);
    return 0;
}

static void spawn_watcher(cosync_task *h, watch *w, const char *name)
{
    CHECK_OK(cosync_task_spawn(h, watcher, w, &(cosync_task_opts){.name = name}));
}

static void check_got(const watch *w, int status, void *result, int64_t at)
{
    CHECK_OK(w->rc);
    CHECK_EQ(w->status, status);
    CHECK(w->result == result);
    CHECK_EQ(w->woke_at, at);
}

static void check_untouched(const watch *w)
{
    CHECK_EQ(w->status, 99);
    CHECK(w->result == &w->rc);
}

/* ------------------------------------------------------------------------
 * Order and outcome
 * ---------------------------------------------------------------------- */

/* The join begins first, so it is woken first: it collects the task and
 * its record is reused by the next spawn before the three waiters run.
 * Each still gets the finished task's outcome, in the order it began to
 * wait. */
static int main_outcome_survives_collection(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h[3];
    watch w[3];
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    for (int i = 0; i < 3; i++) {
        watch_init(&w[i], x, COSYNC_FOREVER, i + 1);
        spawn_watcher(&h[i], &w[i], "w");
    }
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_task_join(x, &status, &res, COSYNC_FOREVER));
    CHECKPOINT(0);
    CHECK_EQ(status, -10);
    CHECK(res == (void *)(intptr_t)1);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(1));
    for (int i = 0; i < 3; i++)
        check_untouched(&w[i]); /* woken, not run yet */
    cosync_task u;
    CHECK_OK(cosync_task_spawn(&u, return_arg, &u, NULL));
    CHECK(u.rec == x.rec); /* the record is reused at once */
    CHECK_ERR(cosync_task_wait(x, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_OK(cosync_task_join(u, &status, &res, COSYNC_FOREVER)); /* the waiters run first */
    CHECK(res == &u);
    for (int i = 0; i < 3; i++) {
        check_got(&w[i], -10, (void *)(intptr_t)1, t0 + COSYNC_SEC(1));
        join_ok(h[i]);
    }
    CHECKPOINTS_DONE(4);
    return 0;
}

TEST(every_waiter_gets_the_outcome_after_the_record_is_collected_and_reused)
{
    run_main_ok(main_outcome_survives_collection, NULL);
}

/* Waits, a join, a gather and a wait_for on one task each take their
 * place in one order, the order they began, as asyncio runs a task's done
 * callbacks: w0, main's gather, w1, a joiner... (one collector at a time,
 * so the three kinds of collector are tried on three tasks in turn). */
typedef struct collector_arg {
    int how; /* 0 join, 1 gather, 2 wait_for */
    cosync_task target;
    int step;
} collector_arg;

static int collect_it(void *arg, void **result)
{
    (void)result;
    collector_arg *c = arg;
    int status = 1;
    void *res = NULL;
    cosync_outcome out;
    switch (c->how) {
    case 0:
        CHECK_OK(cosync_task_join(c->target, &status, &res, COSYNC_FOREVER));
        break;
    case 1:
        CHECK_OK(cosync_gather(&c->target, 1, &out, COSYNC_FOREVER));
        status = out.status;
        res = out.result;
        break;
    default:
        CHECK_OK(cosync_wait_for(c->target, &status, &res, cosync_deadline_after(COSYNC_SEC(10))));
        break;
    }
    CHECKPOINT(c->step);
    CHECK_EQ(status, -20);
    CHECK(res == (void *)(intptr_t)2);
    return 0;
}

static int main_collectors_in_order(void *arg, void **result)
{
    (void)arg, (void)result;
    int base = 0;
    for (int how = 0; how < 3; how++) {
        cosync_task x, h0, h1, hc;
        watch w0, w1;
        CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)2, NULL));
        watch_init(&w0, x, COSYNC_FOREVER, base);
        watch_init(&w1, x, COSYNC_FOREVER, base + 2);
        collector_arg c = {how, x, base + 1};
        spawn_watcher(&h0, &w0, "w0");
        CHECK_OK(cosync_task_spawn(&hc, collect_it, &c, NULL));
        spawn_watcher(&h1, &w1, "w1");
        join_ok(h0);
        join_ok(h1);
        join_ok(hc);
        CHECK_OK(w0.rc);
        CHECK_OK(w1.rc);
        CHECK_EQ(w0.status, -20);
        CHECK_EQ(w1.status, -20);
        base += 3;
    }
    CHECKPOINTS_DONE(9);
    return 0;
}

TEST(waits_joins_gathers_and_wait_fors_wake_in_the_order_they_began)
{
    run_main_ok(main_collectors_in_order, NULL);
}

/* A gather or wait_for that gives up, at its deadline or cancelled,
 * cancels the task and waits on for it in the place its wait began, as
 * 3.12's wait_for (whose caller never leaves the task's done callbacks):
 * woken by the finish ahead of the waits that began after it, whether the
 * cancelled task cleans up in one step or suspends to do it. */
static int cleans_up(void *arg, void **result)
{
    (void)result;
    int rc = cosync_sleep(COSYNC_SEC(5));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    if (arg)
        CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* a clean-up that suspends */
    return rc;
}

static int cancel_arg_after_a_second(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(*(cosync_task *)arg));
    return 0;
}

static int main_give_up_in_place(void *arg, void **result)
{
    (void)result;
    bool gather = arg != NULL;
    int base = 0;
    for (int mode = 0; mode < 4; mode++) {
        bool suspends = mode & 1, by_cancel = mode & 2;
        int64_t t0 = cosync_now();
        int64_t end = t0 + COSYNC_SEC(1 + suspends);
        int64_t deadline = by_cancel ? COSYNC_FOREVER : t0 + COSYNC_SEC(1);
        int gave_up = by_cancel ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT;
        cosync_task ts[2], h[2], me = cosync_task_current(), c = COSYNC_TASK_NONE;
        watch w[2];
        if (by_cancel)
            CHECK_OK(cosync_task_spawn(&c, cancel_arg_after_a_second, &me, NULL));
        CHECK_OK(cosync_task_spawn(&ts[0], cleans_up, suspends ? &w : NULL, NULL));
        CHECK_OK(cosync_task_spawn(&ts[1], sleep_then_fail, (void *)(intptr_t)5, NULL));
        for (int i = 0; i < 2; i++) {
            watch_init(&w[i], ts[0], COSYNC_FOREVER, base + 1 + i);
            spawn_watcher(&h[i], &w[i], "w");
        }
        /* the caller's wait for ts[0] begins first, before the two waits */
        if (gather) {
            cosync_outcome out[2];
            CHECK_ERR(cosync_gather(ts, 2, out, deadline), gave_up);
            CHECK_ERR(out[0].status, COSYNC_ECANCELED);
            CHECK_ERR(out[1].status, COSYNC_ECANCELED);
        } else {
            int status = 1;
            CHECK_ERR(cosync_wait_for(ts[0], &status, NULL, deadline), gave_up);
            CHECK_ERR(status, COSYNC_ECANCELED);
        }
        CHECKPOINT(base);
        CHECK_EQ(cosync_now(), end);
        if (by_cancel) {
            CHECK_EQ(cosync_task_uncancel(me), 0);
            join_ok(c);
        }
        for (int i = 0; i < 2; i++) {
            join_ok(h[i]);
            check_got(&w[i], COSYNC_ECANCELED, NULL, end);
        }
        if (!gather)
            join_expect(ts[1], -50); /* not the wait_for's: it ran on */
        base += 3;
    }
    CHECKPOINTS_DONE(12);
    return 0;
}

TEST(a_gather_that_gives_up_waits_on_in_its_place)
{
    run_main_ok(main_give_up_in_place, &(int){1});
}

TEST(a_wait_for_that_gives_up_waits_on_in_its_place)
{
    run_main_ok(main_give_up_in_place, NULL);
}

/* cosync_wait (asyncio.wait) watches its tasks without a place in that
 * order: it is told of the finish before the waits on the list. */
static int main_asyncio_wait_first(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, h;
    watch w;
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    watch_init(&w, x, COSYNC_FOREVER, 1);
    spawn_watcher(&h, &w, "w");
    CHECK_OK(cosync_yield()); /* w waits first */
    size_t idx = 9;
    CHECK_OK(cosync_wait(&x, 1, COSYNC_ALL_COMPLETED, &idx, COSYNC_FOREVER));
    CHECKPOINT(0);
    join_ok(h);
    CHECK_EQ(w.status, -10);
    join_expect(x, -10);
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(asyncio_wait_is_told_before_the_waits)
{
    run_main_ok(main_asyncio_wait_first, NULL);
}

/* ------------------------------------------------------------------------
 * A finished task, deadlines
 * ---------------------------------------------------------------------- */

static int main_finished_at_once(void *arg, void **result)
{
    (void)arg, (void)result;
    int x;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, return_arg, &x, NULL));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t));
    uint64_t sw = switches();
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_task_wait(t, &status, &res, COSYNC_FOREVER));
    CHECK_EQ(status, 0);
    CHECK(res == &x);
    CHECK_OK(cosync_task_wait(t, NULL, NULL, 0)); /* done: deadline 0 is fine, NULL outs too */
    CHECK_OK(cosync_task_wait(t, &status, &res, cosync_now() - 1)); /* and a past deadline */
    CHECK_EQ(switches(), sw);                                       /* no suspension */
    CHECK_EQ(task_records(), 2);                                    /* not collected */
    /* no suspension, so a pending cancellation stays pending */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_OK(cosync_task_wait(t, &status, &res, COSYNC_FOREVER));
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    join_ok(t);
    return 0;
}

TEST(a_finished_task_gives_its_outcome_at_once_without_suspending)
{
    run_main_ok(main_finished_at_once, NULL);
}

/* A task nobody joins, kept and awaited whenever needed (asyncio's task in
 * a dict): waits at any time get its outcome, until its owner detaches it,
 * which frees it. */
static int main_kept_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h[2];
    watch w[2];
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    for (int i = 0; i < 2; i++) { /* before the finish, and long after */
        watch_init(&w[i], x, COSYNC_FOREVER, -1);
        spawn_watcher(&h[i], &w[i], "w");
        CHECK_OK(cosync_sleep(COSYNC_SEC(3)));
    }
    for (int i = 0; i < 2; i++) {
        join_ok(h[i]);
        check_got(&w[i], -10, (void *)(intptr_t)1, t0 + COSYNC_SEC(i ? 3 : 1));
    }
    CHECK_OK(cosync_task_wait(x, NULL, NULL, 0)); /* and again, with deadline 0 */
    size_t records = task_records();
    CHECK_OK(cosync_task_detach(x)); /* dropped: freed at once, being done */
    CHECK_EQ(task_records(), records - 1);
    CHECK_ERR(cosync_task_wait(x, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    return 0;
}

TEST(a_task_kept_uncollected_serves_every_wait_until_it_is_detached)
{
    run_main_ok(main_kept_task, NULL);
}

static int main_deadlines(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)2, NULL));
    int status = 1;
    void *res = &status;
    uint64_t sw = switches();
    CHECK_ERR(cosync_task_wait(x, &status, &res, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_task_wait(x, &status, &res, t0), COSYNC_ETIMEDOUT); /* passed already */
    CHECK_EQ(switches(), sw);
    CHECK_ERR(cosync_task_wait(x, &status, &res, t0 + COSYNC_SEC(1)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(1));
    CHECK_EQ(status, 1); /* untouched */
    CHECK(res == &status);
    /* the task goes on, untouched */
    CHECK(!cosync_task_done(x));
    CHECK_EQ(cosync_task_cancelling(x), 0);
    CHECK_EQ(armed_timers(), 1); /* x's sleep: the wait's own timer is gone */
    /* granted before its deadline: the timer is disarmed */
    CHECK_OK(cosync_task_wait(x, &status, &res, t0 + COSYNC_SEC(3)));
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(2));
    CHECK_EQ(status, -20);
    CHECK(res == (void *)(intptr_t)2);
    CHECK_EQ(armed_timers(), 0);
    join_expect(x, -20);
    return 0;
}

TEST(a_deadline_ends_the_wait_and_leaves_the_task_alone)
{
    run_main_ok(main_deadlines, NULL);
}

/* ------------------------------------------------------------------------
 * Cancellation
 * ---------------------------------------------------------------------- */

/* Five waiters; the head and the tail are cancelled, the middle one times
 * out: the other two get the outcome, in order, and the task is not
 * touched by any of it. */
static int main_head_middle_tail(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h[5];
    watch w[5];
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)5, NULL));
    int steps[5] = {0, 3, 2, 4, 1};
    for (int i = 0; i < 5; i++) {
        watch_init(&w[i], x, i == 2 ? t0 + COSYNC_SEC(2) : COSYNC_FOREVER, steps[i]);
        spawn_watcher(&h[i], &w[i], "w");
    }
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h[0]));
    CHECK_OK(cosync_task_cancel(h[4]));
    join_expect(h[0], COSYNC_ECANCELED);
    join_expect(h[4], COSYNC_ECANCELED);
    CHECK_ERR(w[0].rc, COSYNC_ECANCELED);
    CHECK_ERR(w[4].rc, COSYNC_ECANCELED);
    CHECK_EQ(w[0].woke_at, t0 + COSYNC_SEC(1));
    check_untouched(&w[0]);
    join_ok(h[2]);
    CHECK_ERR(w[2].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[2].woke_at, t0 + COSYNC_SEC(2));
    check_untouched(&w[2]);
    CHECK_EQ(cosync_task_cancelling(x), 0);
    join_ok(h[1]);
    join_ok(h[3]);
    check_got(&w[1], -50, (void *)(intptr_t)5, t0 + COSYNC_SEC(5));
    check_got(&w[3], -50, (void *)(intptr_t)5, t0 + COSYNC_SEC(5));
    join_expect(x, -50);
    CHECKPOINTS_DONE(5);
    return 0;
}

TEST(waiters_leaving_at_the_head_middle_and_tail)
{
    run_main_ok(main_head_middle_tail, NULL);
}

/* x finishes and grants w; d, ready before w, cancels w before it runs:
 * w keeps the outcome (a grant is never lost), and the cancellation comes
 * at its next suspension. */
static cosync_task gc_w;

static int yield_twice_then_cancel_w(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(1);
    CHECK_OK(cosync_yield());
    CHECKPOINT(3); /* x has finished: w is granted, behind us */
    CHECK_OK(cosync_task_cancel(gc_w));
    return 0;
}

static int yield_then_finish(void *arg, void **result)
{
    (void)arg;
    CHECKPOINT(0);
    CHECK_OK(cosync_yield());
    CHECKPOINT(2);
    *result = &gc_w;
    return -3;
}

static int waits_then_suspends(void *arg, void **result)
{
    (void)result;
    cosync_task *x = arg;
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_task_wait(*x, &status, &res, COSYNC_FOREVER));
    CHECKPOINT(4);
    CHECK_EQ(status, -3);
    CHECK(res == &gc_w);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    return 0;
}

static int main_granted_then_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, d;
    CHECK_OK(cosync_task_spawn(&gc_w, waits_then_suspends, &x, NULL));
    CHECK_OK(cosync_task_spawn(&x, yield_then_finish, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&d, yield_twice_then_cancel_w, NULL, NULL));
    join_ok(d);
    join_expect(gc_w, COSYNC_ECANCELED);
    join_expect(x, -3);
    CHECKPOINTS_DONE(5);
    return 0;
}

TEST(a_waiter_cancelled_after_the_finish_keeps_the_outcome)
{
    run_main_ok(main_granted_then_cancelled, NULL);
}

/* The task cancelled while waited for, or before it ever ran: the waits
 * end with 0 and the status COSYNC_ECANCELED (that is the task's, not the
 * wait's). */
static int main_target_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, y, hx, hy;
    watch wx, wy;
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)5, NULL));
    watch_init(&wx, x, COSYNC_FOREVER, -1);
    spawn_watcher(&hx, &wx, "wx");
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(x));
    join_ok(hx);
    check_got(&wx, COSYNC_ECANCELED, NULL, cosync_now());
    join_expect(x, COSYNC_ECANCELED);

    /* y is cancelled before it first runs; its waiter was spawned first */
    watch_init(&wy, COSYNC_TASK_NONE, COSYNC_FOREVER, -1);
    spawn_watcher(&hy, &wy, "wy");
    CHECK_OK(cosync_task_spawn(&y, nop, NULL, NULL));
    wy.target = y;
    CHECK_OK(cosync_task_cancel(y));
    join_ok(hy);
    CHECK_OK(wy.rc);
    CHECK_ERR(wy.status, COSYNC_ECANCELED);
    CHECK_NULL(wy.result);
    join_expect(y, COSYNC_ECANCELED);
    return 0;
}

TEST(a_cancelled_task_gives_its_waiters_the_status_ecanceled)
{
    run_main_ok(main_target_cancelled, NULL);
}

/* A cancellation pending when the wait begins: deadline 0 does not
 * suspend and leaves it pending; a wait that would block delivers it
 * after one suspension, and leaves the task alone. */
static int main_pending_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, me = cosync_task_current();
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    CHECK_OK(cosync_task_cancel(me));
    uint64_t sw = switches();
    int status = 7;
    CHECK_ERR(cosync_task_wait(x, &status, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw);
    CHECK_EQ(cosync_task_cancelling(me), 1);
    CHECK_ERR(cosync_task_wait(x, &status, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_GT(switches(), sw); /* x ran meanwhile (and began its sleep) */
    CHECK_EQ(status, 7);
    CHECK(!cosync_task_done(x));
    CHECK_EQ(cosync_task_cancelling(x), 0);
    CHECK_OK(cosync_yield()); /* delivered once */
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_OK(cosync_task_wait(x, &status, NULL, COSYNC_FOREVER));
    CHECK_EQ(status, -10);
    join_expect(x, -10);
    return 0;
}

TEST(a_pending_cancellation_ends_the_wait_and_leaves_the_task_alone)
{
    run_main_ok(main_pending_cancel, NULL);
}

/* A join that times out leaves the list; the join begun again afterwards
 * is behind the wait begun in between. */
static int main_join_times_out(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h[2];
    watch w[2];
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)2, NULL));
    watch_init(&w[0], x, COSYNC_FOREVER, 0);
    spawn_watcher(&h[0], &w[0], "w0");
    CHECK_OK(cosync_yield()); /* w0 waits */
    CHECK_ERR(cosync_task_join(x, NULL, NULL, t0 + COSYNC_SEC(1)), COSYNC_ETIMEDOUT);
    watch_init(&w[1], x, COSYNC_FOREVER, 1);
    spawn_watcher(&h[1], &w[1], "w1");
    CHECK_OK(cosync_yield()); /* w1 waits */
    join_expect(x, -20);
    CHECKPOINT(2);
    for (int i = 0; i < 2; i++) {
        join_ok(h[i]);
        check_got(&w[i], -20, (void *)(intptr_t)2, t0 + COSYNC_SEC(2));
    }
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(a_join_that_times_out_leaves_the_order_and_joins_again_at_the_back)
{
    run_main_ok(main_join_times_out, NULL);
}

/* Detached while waited for: the waits still get the outcome, and the
 * task frees itself. */
static int main_detach_while_waited_for(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h[2];
    watch w[2];
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    for (int i = 0; i < 2; i++) {
        watch_init(&w[i], x, COSYNC_FOREVER, i);
        spawn_watcher(&h[i], &w[i], "w");
    }
    CHECK_OK(cosync_yield()); /* both wait */
    CHECK_OK(cosync_task_detach(x));
    for (int i = 0; i < 2; i++) {
        join_ok(h[i]);
        check_got(&w[i], -10, (void *)(intptr_t)1, t0 + COSYNC_SEC(1));
    }
    CHECK_EQ(task_records(), 1);
    CHECK_ERR(cosync_task_wait(x, NULL, NULL, 0), COSYNC_ESRCH);
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(a_task_detached_while_waited_for_still_gives_the_waits_its_outcome)
{
    run_main_ok(main_detach_while_waited_for, NULL);
}

/* The waits for a run's main task run before the run returns, as their
 * done callbacks run in asyncio's last iteration. */
static watch main_w;

static int sleep_a_second(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    *result = &main_w;
    return 0;
}

TEST(the_waits_for_a_runs_main_task_run_before_the_run_returns)
{
    cosync_loop *loop = new_loop();
    cosync_task m, h;
    CHECK_OK(cosync_loop_spawn(loop, &m, sleep_a_second, NULL, NULL));
    watch_init(&main_w, m, COSYNC_FOREVER, -1);
    CHECK_OK(cosync_loop_spawn(loop, &h, watcher, &main_w, NULL));
    void *res = NULL;
    CHECK_OK(cosync_loop_run(loop, m, NULL, &res));
    CHECK(res == &main_w);
    CHECK_OK(main_w.rc); /* it ran */
    CHECK_EQ(main_w.status, 0);
    CHECK(main_w.result == &main_w);
    CHECK(cosync_task_done(h));
    CHECK_OK(cosync_loop_run(loop, h, NULL, NULL));
    end_loop(loop);
}

/* ------------------------------------------------------------------------
 * Detached and group tasks
 * ---------------------------------------------------------------------- */

static int main_detached_and_group(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task x, h;
    watch w;
    CHECK_OK(cosync_task_spawn(&x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    CHECK_OK(cosync_task_detach(x));
    watch_init(&w, x, COSYNC_FOREVER, -1);
    spawn_watcher(&h, &w, "w");
    CHECK_OK(cosync_yield());
    CHECK_EQ(task_records(), 3);
    join_ok(h);
    check_got(&w, -10, (void *)(intptr_t)1, t0 + COSYNC_SEC(1));
    CHECK_EQ(task_records(), 1); /* x freed itself */
    CHECK_ERR(cosync_task_wait(x, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);

    /* a child of a group, with and without a handle kept by the group */
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task c;
    CHECK_OK(cosync_taskgroup_spawn(&g, &c, sleep_then_fail, (void *)(intptr_t)2, NULL));
    watch_init(&w, c, COSYNC_FOREVER, -1);
    spawn_watcher(&h, &w, "w");
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), -20);
    join_ok(h);
    check_got(&w, -20, (void *)(intptr_t)2, t0 + COSYNC_SEC(3));
    join_expect(c, -20);
    return 0;
}

TEST(waits_on_detached_tasks_and_group_children)
{
    run_main_ok(main_detached_and_group, NULL);
}

/* A child of a task group fails: the group cancels its siblings before
 * the waits for the child are woken (its done callback comes first in
 * asyncio), so a sibling waiting for the child is cancelled in that wait,
 * as asyncio's is, where a task outside the group gets the failure. */
static int main_group_child_fails(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task x, hs, ho;
    watch sib, out;
    CHECK_OK(cosync_taskgroup_spawn(&g, &x, sleep_then_fail, (void *)(intptr_t)1, NULL));
    watch_init(&sib, x, COSYNC_FOREVER, 0);
    watch_init(&out, x, COSYNC_FOREVER, 1);
    CHECK_OK(cosync_taskgroup_spawn(&g, &hs, watcher, &sib, NULL));
    spawn_watcher(&ho, &out, "outside");
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), -10);
    CHECKPOINT(2); /* the owner wakes behind the waits for the last child */
    CHECK_ERR(sib.rc, COSYNC_ECANCELED);
    check_untouched(&sib);
    CHECK_EQ(sib.woke_at, t0 + COSYNC_SEC(1));
    join_ok(ho);
    check_got(&out, -10, (void *)(intptr_t)1, t0 + COSYNC_SEC(1));
    join_expect(hs, COSYNC_ECANCELED);
    join_expect(x, -10);
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(a_failing_group_child_cancels_the_sibling_waiting_for_it)
{
    run_main_ok(main_group_child_fails, NULL);
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

static cosync_task other_loop_task;

static int main_misuse(void *arg, void **result)
{
    (void)arg, (void)result;
    int status = 7;
    void *res = &status;
    CHECK_ERR(cosync_task_wait(COSYNC_TASK_NONE, &status, &res, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_wait(cosync_task_current(), &status, &res, COSYNC_FOREVER),
              COSYNC_EDEADLK);
    CHECK_ERR(cosync_task_wait(other_loop_task, &status, &res, COSYNC_FOREVER), COSYNC_EPERM);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, NULL));
    join_ok(t);
    CHECK_ERR(cosync_task_wait(t, &status, &res, COSYNC_FOREVER), COSYNC_ESRCH); /* stale */
    CHECK_EQ(status, 7); /* untouched by every error */
    CHECK(res == &status);
    return 0;
}

TEST(misuse_errors)
{
    CHECK_ERR(cosync_task_wait(COSYNC_TASK_NONE, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    cosync_loop *other = new_loop();
    CHECK_OK(cosync_loop_spawn(other, &other_loop_task, nop, NULL, NULL));
    /* outside any task, even with a good handle */
    CHECK_ERR(cosync_task_wait(other_loop_task, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    run_main_ok(main_misuse, NULL);
    CHECK_OK(cosync_loop_run(other, other_loop_task, NULL, NULL));
    end_loop(other);
}

/* ------------------------------------------------------------------------
 * The deadlock report and the close
 * ---------------------------------------------------------------------- */

static cosync_future dl_fut;

static int dl_main(void *arg, void **result)
{
    (void)arg;
    cosync_task w;
    CHECK_OK(
        cosync_task_spawn(&w, wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "waiter"}));
    int status = 1;
    CHECK_OK(cosync_task_wait(w, &status, result, COSYNC_FOREVER));
    join_ok(w);
    return status;
}

TEST(deadlock_report_names_the_awaited_task)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, dl_main, NULL, "main", &m);
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on task 'waiter' (#2) to finish\n"
             "  task 'waiter' (#2) waits on future %p\n",
             (void *)&dl_fut);
    CHECK_STREQ(capture_text(&cap), want);
    int x;
    CHECK_OK(cosync_future_set_result(&dl_fut, &x));
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_loop_run(loop, m, &status, &res));
    CHECK_OK(status);
    CHECK(res == &x);
    end_loop(loop);
    capture_free(&cap);
}

/* Destroying the loop cancels the waiter and the task it waits for alike. */
static watch close_w;

static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, h;
    CHECK_OK(cosync_task_spawn(&x, wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "x"}));
    watch_init(&close_w, x, COSYNC_FOREVER, -1);
    spawn_watcher(&h, &close_w, "w");
    CHECK_OK(cosync_task_detach(h));
    return cosync_task_wait(x, NULL, NULL, COSYNC_FOREVER);
}

TEST(destroying_the_loop_cancels_the_waits)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, close_main, NULL, "main", &m);
    CHECK_EQ(close_w.rc, 1); /* still waiting */
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(close_w.rc, COSYNC_ECANCELED);
    check_untouched(&close_w);
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * Randomized: every outcome agrees with the clock
 * ---------------------------------------------------------------------- */

#define R_TARGETS 4
#define R_WAITERS 12

typedef struct r_target {
    cosync_task h;
    int secs;          /* it sleeps this long, then fails with -10 * secs */
    int64_t cancel_at; /* 0: never */
    int64_t finished_at;
    /* its collector, if it has one (else main joins it at the end): a
     * task that begins to join it at join_at */
    bool collector;
    cosync_task ch;
    int64_t join_at;
    uint64_t join_began_seq, collected_seq; /* 0: not yet */
    int64_t join_began;
    int status; /* its outcome, from whoever collected it */
    void *result;
} r_target;

typedef struct r_waiter {
    cosync_task h;
    int target;
    int64_t start;     /* it begins to wait at this time (after a sleep) */
    int64_t deadline;  /* COSYNC_FOREVER, 0, or absolute */
    int64_t cancel_at; /* 0: never */
    int64_t began;     /* when the wait began; and the order it began in: */
    uint64_t began_seq;
    uint64_t woke_seq;
    int rc;
    int status;
    void *result;
    int64_t woke_at;
} r_waiter;

typedef struct r_world {
    r_target t[R_TARGETS];
    r_waiter w[R_WAITERS];
    uint64_t seq;
} r_world;

static r_world *rw;

static int r_target_body(void *arg, void **result)
{
    r_target *t = arg;
    int rc = cosync_sleep(COSYNC_SEC(t->secs));
    t->finished_at = cosync_now();
    if (rc)
        return rc;
    *result = t;
    return -10 * t->secs;
}

static int r_collector(void *arg, void **result)
{
    (void)result;
    r_target *t = arg;
    CHECK_OK(cosync_sleep_until(t->join_at));
    t->join_began = cosync_now();
    t->join_began_seq = ++rw->seq;
    CHECK_OK(cosync_task_join(t->h, &t->status, &t->result, COSYNC_FOREVER));
    t->collected_seq = ++rw->seq;
    return 0;
}

static int r_waiter_body(void *arg, void **result)
{
    (void)result;
    r_waiter *w = arg;
    int rc = cosync_sleep_until(w->start);
    if (rc)
        return rc; /* cancelled before it began: rc stays 1 */
    w->began = cosync_now();
    w->began_seq = ++rw->seq;
    w->rc = cosync_task_wait(rw->t[w->target].h, &w->status, &w->result, w->deadline);
    w->woke_at = cosync_now();
    w->woke_seq = ++rw->seq;
    return 0;
}

typedef struct r_cancel {
    cosync_task h;
    int64_t at;
} r_cancel;

static int r_canceller(void *arg, void **result)
{
    (void)result;
    r_cancel *c = arg;
    CHECK_OK(cosync_sleep_until(c->at));
    int rc = cosync_task_cancel(c->h);
    /* finished, or a target its collector has collected already */
    CHECK(rc == 0 || rc == COSYNC_EALREADY || rc == COSYNC_ESRCH);
    return 0;
}

/* One wait that suspended on a target: when it began and when it woke, in
 * the order of every such event. */
typedef struct r_wake {
    uint64_t began_seq, woke_seq;
} r_wake;

/* Every two waits that suspended on one task woke in the order they began. */
static void check_wake_order(const r_wake *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        for (size_t j = 0; j < n; j++)
            if (v[i].began_seq < v[j].began_seq)
                CHECK_LT(v[i].woke_seq, v[j].woke_seq);
}

static void r_check_waiter(const r_world *W, const r_waiter *w)
{
    const r_target *t = &W->t[w->target];
    int64_t fin = t->finished_at;
    if (w->rc == COSYNC_ESRCH) {
        /* only a wait that began once the task was collected */
        CHECK(t->collector);
        CHECK_NE(t->collected_seq, 0);
        CHECK_LT(t->collected_seq, w->began_seq);
        return;
    }
    if (t->collector && t->collected_seq)
        CHECK_LT(w->began_seq, t->collected_seq);
    switch (w->rc) {
    case 0:
        CHECK_EQ(w->status, t->status);
        CHECK(w->result == t->result);
        CHECK_EQ(w->woke_at, fin > w->began ? fin : w->began);
        break;
    case COSYNC_EAGAIN:
        CHECK_EQ(w->deadline, 0);
        CHECK_GE(fin, w->began);
        CHECK_EQ(w->woke_at, w->began);
        break;
    case COSYNC_ETIMEDOUT:
        CHECK_NE(w->deadline, COSYNC_FOREVER);
        CHECK_EQ(w->woke_at, w->deadline > w->began ? w->deadline : w->began);
        CHECK_GE(fin, w->woke_at);
        break;
    case COSYNC_ECANCELED:
        CHECK_NE(w->cancel_at, 0);
        CHECK_EQ(w->woke_at, w->cancel_at);
        CHECK_GE(fin, w->woke_at);
        break;
    default:
        CHECK_ERR(w->rc, 0); /* no other code: fails, naming it */
    }
}

static int r_main(void *arg, void **result)
{
    (void)result;
    uint64_t *seed = arg;
    int64_t t0 = cosync_now();
    r_world *W = rw;
    for (int i = 0; i < R_TARGETS; i++) {
        r_target *t = &W->t[i];
        t->secs = 1 + (int)rnd(seed, 5);
        t->cancel_at = rnd(seed, 4) == 0 ? t0 + COSYNC_SEC(rnd(seed, 6)) : 0;
        CHECK_OK(cosync_task_spawn(&t->h, r_target_body, t, NULL));
        t->collector = rnd(seed, 2) == 0;
        if (t->collector) {
            t->join_at = t0 + COSYNC_SEC(rnd(seed, 6));
            CHECK_OK(cosync_task_spawn(&t->ch, r_collector, t, NULL));
        }
    }
    for (int i = 0; i < R_WAITERS; i++) {
        r_waiter *w = &W->w[i];
        w->target = (int)rnd(seed, R_TARGETS);
        w->start = t0 + COSYNC_SEC(rnd(seed, 4));
        uint32_t d = rnd(seed, 4);
        w->deadline = d == 0 ? 0 : d == 1 ? w->start + COSYNC_SEC(rnd(seed, 6)) : COSYNC_FOREVER;
        w->cancel_at = rnd(seed, 4) == 0 ? t0 + COSYNC_SEC(rnd(seed, 7)) : 0;
        w->rc = 1;
        CHECK_OK(cosync_task_spawn(&w->h, r_waiter_body, w, NULL));
    }
    r_cancel cancels[R_TARGETS + R_WAITERS];
    cosync_task ch[R_TARGETS + R_WAITERS];
    size_t nc = 0;
    for (int i = 0; i < R_TARGETS; i++)
        if (W->t[i].cancel_at)
            cancels[nc++] = (r_cancel){W->t[i].h, W->t[i].cancel_at};
    for (int i = 0; i < R_WAITERS; i++)
        if (W->w[i].cancel_at)
            cancels[nc++] = (r_cancel){W->w[i].h, W->w[i].cancel_at};
    for (size_t i = 0; i < nc; i++)
        CHECK_OK(cosync_task_spawn(&ch[i], r_canceller, &cancels[i], NULL));
    /* the cancellers first, so that each finds its waiter's record (done
     * or not); then the waiters, the collectors, and the targets left */
    CHECK_OK(cosync_gather(ch, nc, NULL, COSYNC_FOREVER));
    for (int i = 0; i < R_WAITERS; i++) {
        r_waiter *w = &W->w[i];
        int st = 1;
        CHECK_OK(cosync_task_join(w->h, &st, NULL, COSYNC_FOREVER));
        /* a waiter ends cancelled if the request came before it ended */
        if (!w->cancel_at || w->cancel_at < w->woke_at)
            CHECK_EQ(st, w->cancel_at ? COSYNC_ECANCELED : 0);
        else if (w->rc != 1 && w->cancel_at > w->woke_at)
            CHECK_EQ(st, 0); /* it had ended */
        else if (w->rc == 1 || w->rc == COSYNC_ECANCELED)
            CHECK_ERR(st, COSYNC_ECANCELED);
        else
            CHECK(st == 0 || st == COSYNC_ECANCELED); /* the same instant: either */
    }
    for (int i = 0; i < R_TARGETS; i++) {
        r_target *t = &W->t[i];
        if (t->collector)
            join_ok(t->ch);
        else
            CHECK_OK(cosync_task_join(t->h, &t->status, &t->result, COSYNC_FOREVER));
        /* cancelled if it finished before its sleep ended (a cancel at
         * that very instant comes after the sleep's own timer) */
        CHECK_EQ(t->status,
                 t->finished_at < t0 + COSYNC_SEC(t->secs) ? COSYNC_ECANCELED : -10 * t->secs);
    }

    for (int i = 0; i < R_WAITERS; i++)
        if (W->w[i].rc != 1) /* else cancelled in its first sleep */
            r_check_waiter(W, &W->w[i]);
    /* per target, the waits that suspended (began before the finish, and
     * woke with the outcome), its collector's join among them */
    for (int k = 0; k < R_TARGETS; k++) {
        const r_target *t = &W->t[k];
        r_wake v[R_WAITERS + 1];
        size_t n = 0;
        for (int i = 0; i < R_WAITERS; i++) {
            const r_waiter *w = &W->w[i];
            if (w->target == k && w->rc == 0 && w->began < t->finished_at)
                v[n++] = (r_wake){w->began_seq, w->woke_seq};
        }
        if (t->collector && t->join_began < t->finished_at)
            v[n++] = (r_wake){t->join_began_seq, t->collected_seq};
        check_wake_order(v, n);
    }
    return 0;
}

TEST(random_waits_agree_with_the_clock_and_the_order)
{
    long rounds = env_long("COSYNC_TEST_ROUNDS", under_valgrind() ? 30 : 400);
    static r_world world;
    for (long r = 0; r < rounds; r++) {
        memset(&world, 0, sizeof world);
        rw = &world;
        uint64_t seed = splitmix((uint64_t)r + 1);
        run_main_ok(r_main, &seed);
    }
}

int main(void)
{
    RUN(every_waiter_gets_the_outcome_after_the_record_is_collected_and_reused);
    RUN(waits_joins_gathers_and_wait_fors_wake_in_the_order_they_began);
    RUN(a_gather_that_gives_up_waits_on_in_its_place);
    RUN(a_wait_for_that_gives_up_waits_on_in_its_place);
    RUN(asyncio_wait_is_told_before_the_waits);
    RUN(a_finished_task_gives_its_outcome_at_once_without_suspending);
    RUN(a_task_kept_uncollected_serves_every_wait_until_it_is_detached);
    RUN(a_deadline_ends_the_wait_and_leaves_the_task_alone);
    RUN(waiters_leaving_at_the_head_middle_and_tail);
    RUN(a_waiter_cancelled_after_the_finish_keeps_the_outcome);
    RUN(a_cancelled_task_gives_its_waiters_the_status_ecanceled);
    RUN(a_pending_cancellation_ends_the_wait_and_leaves_the_task_alone);
    RUN(a_join_that_times_out_leaves_the_order_and_joins_again_at_the_back);
    RUN(a_task_detached_while_waited_for_still_gives_the_waits_its_outcome);
    RUN(the_waits_for_a_runs_main_task_run_before_the_run_returns);
    RUN(waits_on_detached_tasks_and_group_children);
    RUN(a_failing_group_child_cancels_the_sibling_waiting_for_it);
    RUN(misuse_errors);
    RUN(deadlock_report_names_the_awaited_task);
    RUN(destroying_the_loop_cancels_the_waits);
    RUN(random_waits_agree_with_the_clock_and_the_order);
    return 0;
}
