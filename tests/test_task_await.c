/*
 * test_task_await.c - cosync_task_await: `await task`, a wait that
 * collects nothing and passes the caller's cancellation or deadline on to
 * the task, then waits for it in its place.
 *
 * What a cancel of the caller does in each state (waiting, pending at the
 * call, after the finish, again while it waits for the cancelled task),
 * deadlines (during the wait, already passed, 0), a task that withdraws
 * the cancellation, the place among the task's other waits, several
 * awaiters, group children, misuse, the deadlock report and the close.
 * Every loop uses the virtual clock; interleavings are asserted with
 * CHECKPOINT.
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

/* How a job behaves: it sleeps @secs seconds and returns @value (its
 * status if negative, else 0, with @value's address as its result); if it
 * is cancelled meanwhile, it cleans up for @cleanup seconds (a suspension
 * after the cancel), then ends cancelled, or, with @withdraw, withdraws
 * the cancellation and returns @value all the same. */
typedef struct job {
    int secs;
    int cleanup;
    bool withdraw;
    int value;
    int got;         /* what its sleep returned */
    int cleanup_got; /* what its clean-up's sleep returned */
} job;

static int run_target(void *arg, void **result)
{
    job *tg = arg;
    tg->got = cosync_sleep(COSYNC_SEC(tg->secs));
    if (tg->got == COSYNC_ECANCELED) {
        if (tg->cleanup)
            tg->cleanup_got = cosync_sleep(COSYNC_SEC(tg->cleanup));
        if (!tg->withdraw)
            return COSYNC_ECANCELED;
        CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    }
    *result = &tg->value;
    return tg->value < 0 ? tg->value : 0; /* a negative value is a failure */
}

/* One awaiter: what it awaits, and what it got. */
typedef struct awaiter {
    cosync_task target;
    int64_t deadline;
    bool use_wait; /* cosync_task_wait instead, for the order tests */
    int step;      /* its CHECKPOINT when the call returns; -1: none */
    int rc;
    int status;
    void *result;
    int64_t woke_at;
} awaiter;

static void awaiter_init(awaiter *a, cosync_task target, int64_t deadline, int step)
{
    *a = (awaiter){.target = target, .deadline = deadline, .step = step, .rc = 1, .status = 99};
    a->result = &a->rc; /* a value no task returns */
}

static int await_body(void *arg, void **result)
{
    (void)result;
    awaiter *a = arg;
    if (a->use_wait)
        a->rc = cosync_task_wait(a->target, &a->status, &a->result, a->deadline);
    else
        a->rc = cosync_task_await(a->target, &a->status, &a->result, a->deadline);
    a->woke_at = cosync_now();
    if (a->step >= 0)
        CHECKPOINT(a->step);
    return a->rc == COSYNC_ECANCELED ? a->rc : 0;
}

static void spawn_awaiter(cosync_task *h, awaiter *a, const char *name)
{
    CHECK_OK(cosync_task_spawn(h, await_body, a, &(cosync_task_opts){.name = name}));
}

/* @n awaiters of @x in tasks @h, with no deadline; awaiter i passes
 * CHECKPOINT(@first_step + i), or none if @first_step is -1. They begin to
 * wait when the caller next suspends: set a deadline or use_wait first. */
static void spawn_awaiters(cosync_task x, awaiter *a, cosync_task *h, int n, int first_step)
{
    for (int i = 0; i < n; i++) {
        awaiter_init(&a[i], x, COSYNC_FOREVER, first_step < 0 ? -1 : first_step + i);
        spawn_awaiter(&h[i], &a[i], "a");
    }
}

static void check_got(const awaiter *a, int rc, int status, const void *result, int64_t at)
{
    CHECK_ERR(a->rc, rc);
    CHECK_EQ(a->status, status);
    CHECK(a->result == result);
    CHECK_EQ(a->woke_at, at);
}

/* ------------------------------------------------------------------------
 * The caller's cancellation
 * ---------------------------------------------------------------------- */

/* The awaiter is cancelled at 1 s: the job is cancelled at that moment,
 * cleans up for 2 s, and the awaiter wakes when it ends, at 3 s, with
 * COSYNC_ECANCELED and the task's outcome; the task is still the
 * owner's to join. */
static int main_cancel_forwarded(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 2, .value = 7};
    cosync_task x, h;
    awaiter a;
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    awaiter_init(&a, x, COSYNC_FOREVER, -1);
    spawn_awaiter(&h, &a, "a");
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_EQ(cosync_task_cancelling(x), 0);
    CHECK_OK(cosync_task_cancel(h));
    CHECK_EQ(cosync_task_cancelling(x), 1); /* at once, inside the cancel */
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_ERR(tg.got, COSYNC_ECANCELED);
    CHECK_EQ(a.rc, 1); /* still waiting, for the clean-up */
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_EQ(cosync_task_cancelling(h), 1);
    join_expect(h, COSYNC_ECANCELED);
    check_got(&a, COSYNC_ECANCELED, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(3));
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(a_cancelled_caller_cancels_the_task_and_waits_for_its_end)
{
    run_main_ok(main_cancel_forwarded, NULL);
}

/* The job withdraws the cancellation and returns its value: the
 * awaiter still reports its own cancellation (never lost), with the value
 * in its out-parameters. */
static int main_cancel_withdrawn(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .withdraw = true, .value = 7};
    cosync_task x, h;
    awaiter a;
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    awaiter_init(&a, x, COSYNC_FOREVER, -1);
    spawn_awaiter(&h, &a, "a");
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h));
    join_expect(h, COSYNC_ECANCELED);
    check_got(&a, COSYNC_ECANCELED, 0, &tg.value, t0 + COSYNC_SEC(2));
    join_expect(x, 0);
    return 0;
}

TEST(a_task_that_withdraws_the_cancellation_still_leaves_the_caller_cancelled)
{
    run_main_ok(main_cancel_withdrawn, NULL);
}

/* A cancellation pending when the call begins (the caller cancelled
 * itself) is passed on as one that comes during the wait, as asyncio's
 * task cancels the future it awaits next when it was cancelled while
 * running: x is cancelled and waited for through its clean-up. With
 * deadline 0 the deadline comes first: x is cancelled for it, and the
 * caller's request stays pending for its next suspension. */
static int main_pending_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tx = {.secs = 5, .cleanup = 1, .value = 4};
    job ty = {.secs = 5, .cleanup = 1, .value = 4};
    cosync_task x, y, me = cosync_task_current();
    CHECK_OK(cosync_task_spawn(&x, run_target, &tx, NULL));
    CHECK_OK(cosync_task_spawn(&y, run_target, &ty, NULL));
    CHECK_OK(cosync_yield()); /* both sleep */
    CHECK_OK(cosync_task_cancel(me));
    int status = 99;
    CHECK_ERR(cosync_task_await(x, &status, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_cancelling(x), 1);
    CHECK_OK(cosync_yield()); /* delivered once */
    CHECK_EQ(cosync_task_uncancel(me), 0);

    CHECK_OK(cosync_task_cancel(me));
    status = 99;
    CHECK_ERR(cosync_task_await(y, &status, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(2));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_cancelling(y), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* still pending */
    CHECK_EQ(cosync_task_uncancel(me), 0);
    join_expect(x, COSYNC_ECANCELED);
    join_expect(y, COSYNC_ECANCELED);
    return 0;
}

TEST(a_pending_cancellation_is_passed_on_but_not_with_deadline_0)
{
    run_main_ok(main_pending_cancel, NULL);
}

/* x finishes and grants the awaiter; d, ready before it, cancels it before
 * it runs: the awaiter keeps the outcome (a grant is never lost), x is not
 * cancelled (it has finished), and the cancellation comes at the
 * awaiter's next suspension. */
static cosync_task ga_h;
static int ga_value = -3;

static int yield_then_finish(void *arg, void **result)
{
    (void)arg;
    CHECKPOINT(0);
    CHECK_OK(cosync_yield());
    CHECKPOINT(2);
    *result = &ga_value;
    return ga_value;
}

static int yield_then_cancel_awaiter(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(1);
    CHECK_OK(cosync_yield());
    CHECKPOINT(3); /* x has finished and granted the awaiter */
    CHECK_OK(cosync_task_cancel(ga_h));
    return 0;
}

static int await_then_suspend(void *arg, void **result)
{
    (void)result;
    cosync_task *x = arg;
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_task_await(*x, &status, &res, COSYNC_FOREVER));
    CHECKPOINT(4);
    CHECK_EQ(status, ga_value);
    CHECK(res == &ga_value);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    return 0;
}

static int main_cancel_after_finish(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, d;
    CHECK_OK(cosync_task_spawn(&ga_h, await_then_suspend, &x, NULL));
    CHECK_OK(cosync_task_spawn(&x, yield_then_finish, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&d, yield_then_cancel_awaiter, NULL, NULL));
    join_ok(d);
    join_expect(ga_h, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_cancelling(x), 0);
    join_expect(x, ga_value);
    CHECKPOINTS_DONE(5);
    return 0;
}

TEST(a_caller_cancelled_after_the_finish_keeps_the_outcome)
{
    run_main_ok(main_cancel_after_finish, NULL);
}

/* A second cancel of the caller while it waits for the cancelled task is
 * passed on to the task again, as asyncio passes every cancel() on: it
 * cuts the task's clean-up short, and the call returns COSYNC_ECANCELED
 * once for both. */
static int twice_body(void *arg, void **result)
{
    (void)result;
    awaiter *a = arg;
    a->rc = cosync_task_await(a->target, &a->status, &a->result, COSYNC_FOREVER);
    a->woke_at = cosync_now();
    CHECK_OK(cosync_yield()); /* nothing more to deliver */
    return 0;
}

static int main_cancel_twice(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 2, .value = 1};
    cosync_task x, h;
    awaiter a;
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    awaiter_init(&a, x, COSYNC_FOREVER, -1);
    CHECK_OK(cosync_task_spawn(&h, twice_body, &a, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h));
    CHECK_EQ(cosync_task_cancelling(x), 2);
    CHECK_EQ(cosync_task_cancelling(h), 2);
    join_expect(h, COSYNC_ECANCELED); /* it never withdrew them */
    CHECK_ERR(tg.cleanup_got, COSYNC_ECANCELED);
    check_got(&a, COSYNC_ECANCELED, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(a_second_cancel_while_it_waits_for_the_cancelled_task_is_passed_on_too)
{
    run_main_ok(main_cancel_twice, NULL);
}

/* ------------------------------------------------------------------------
 * Deadlines
 * ---------------------------------------------------------------------- */

/* At the deadline (2 s) the task is cancelled and waited for through its
 * clean-up (1 s): COSYNC_ETIMEDOUT at 3 s. A task that withdraws the
 * cancellation gives its value and 0. One that finishes in time: 0 at its
 * finish, not cancelled. */
static int main_deadlines(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job slow = {.secs = 10, .cleanup = 1, .value = 1};
    job stubborn = {.secs = 10, .cleanup = 1, .withdraw = true, .value = 2};
    job quick = {.secs = 1, .value = 3};
    cosync_task xs[3], hs[3];
    awaiter as[3];
    job *tgs[3] = {&slow, &stubborn, &quick};
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_task_spawn(&xs[i], run_target, tgs[i], NULL));
        awaiter_init(&as[i], xs[i], t0 + COSYNC_SEC(2), -1);
        spawn_awaiter(&hs[i], &as[i], "a");
    }
    for (int i = 0; i < 3; i++)
        join_ok(hs[i]);
    check_got(&as[0], COSYNC_ETIMEDOUT, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(3));
    check_got(&as[1], 0, 0, &stubborn.value, t0 + COSYNC_SEC(3));
    check_got(&as[2], 0, 0, &quick.value, t0 + COSYNC_SEC(1));
    CHECK_EQ(cosync_task_cancelling(xs[0]), 1);
    CHECK_EQ(cosync_task_cancelling(xs[1]), 0); /* withdrawn */
    CHECK_EQ(cosync_task_cancelling(xs[2]), 0);
    join_expect(xs[0], COSYNC_ECANCELED);
    join_expect(xs[1], 0);
    join_expect(xs[2], 0);
    return 0;
}

TEST(at_the_deadline_the_task_is_cancelled_and_waited_for)
{
    run_main_ok(main_deadlines, NULL);
}

/* A deadline already passed, or 0, cancels the task and waits for it, as
 * an expiry at once (COSYNC_ETIMEDOUT, COSYNC_EAGAIN); a finished task
 * gives its outcome without either. */
static int main_passed_deadlines(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job a = {.secs = 10, .cleanup = 1, .value = 1};
    job b = {.secs = 10, .value = 2};
    cosync_task xa, xb;
    CHECK_OK(cosync_task_spawn(&xa, run_target, &a, NULL));
    CHECK_OK(cosync_task_spawn(&xb, run_target, &b, NULL));
    CHECK_OK(cosync_yield()); /* both sleep */
    int status = 99;
    void *res = &status;
    CHECK_ERR(cosync_task_await(xa, &status, &res, t0 - 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(status, COSYNC_ECANCELED);
    CHECK(res == NULL);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1)); /* through the clean-up */
    status = 99;
    CHECK_ERR(cosync_task_await(xb, &status, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    /* done now: the outcome at once, whatever the deadline */
    uint64_t sw = switches();
    CHECK_OK(cosync_task_await(xb, &status, NULL, 0));
    CHECK_OK(cosync_task_await(xa, &status, NULL, t0 - 1));
    CHECK_EQ(status, COSYNC_ECANCELED);
    CHECK_EQ(switches(), sw);
    join_expect(xa, COSYNC_ECANCELED);
    join_expect(xb, COSYNC_ECANCELED);
    return 0;
}

TEST(a_deadline_already_passed_or_zero_cancels_and_waits)
{
    run_main_ok(main_passed_deadlines, NULL);
}

/* After the call has passed its deadline on, a cancel of the caller is
 * passed on too (it cuts the clean-up short), and outranks the deadline:
 * COSYNC_ECANCELED, delivered once. After it has passed a cancel on, its
 * deadline no longer counts: it waits for the whole clean-up. */
typedef struct late_arg {
    cosync_task target;
    int64_t deadline;
    int rc, status, next;
    int64_t woke_at;
} late_arg;

static int await_then_yield(void *arg, void **result)
{
    (void)result;
    late_arg *l = arg;
    l->rc = cosync_task_await(l->target, &l->status, NULL, l->deadline);
    l->woke_at = cosync_now();
    l->next = cosync_yield();
    return 0;
}

static int main_late_cancel_and_deadline(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job ta = {.secs = 10, .cleanup = 3, .value = 1};
    job tb = {.secs = 10, .cleanup = 3, .value = 1};
    cosync_task xa, xb, ha, hb;
    CHECK_OK(cosync_task_spawn(&xa, run_target, &ta, NULL));
    CHECK_OK(cosync_task_spawn(&xb, run_target, &tb, NULL));
    late_arg la = {.target = xa, .deadline = t0 + COSYNC_SEC(1), .rc = 1};
    late_arg lb = {.target = xb, .deadline = t0 + COSYNC_SEC(2), .rc = 1};
    CHECK_OK(cosync_task_spawn(&ha, await_then_yield, &la, NULL));
    CHECK_OK(cosync_task_spawn(&hb, await_then_yield, &lb, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(1500)));
    CHECK_OK(cosync_task_cancel(ha)); /* after a's deadline, during the clean-up */
    CHECK_OK(cosync_task_cancel(hb)); /* before b's deadline */
    CHECK_EQ(cosync_task_cancelling(xa), 2);
    CHECK_EQ(cosync_task_cancelling(xb), 1);
    join_expect(ha, COSYNC_ECANCELED); /* a cancelled task ends cancelled */
    join_expect(hb, COSYNC_ECANCELED);
    CHECK_ERR(la.rc, COSYNC_ECANCELED);
    CHECK_ERR(la.status, COSYNC_ECANCELED);
    CHECK_ERR(ta.cleanup_got, COSYNC_ECANCELED);
    CHECK_EQ(la.woke_at, t0 + COSYNC_MS(1500));
    CHECK_OK(la.next);
    CHECK_OK(tb.cleanup_got);
    CHECK_ERR(lb.rc, COSYNC_ECANCELED);
    CHECK_ERR(lb.status, COSYNC_ECANCELED);
    CHECK_EQ(lb.woke_at, t0 + COSYNC_MS(4500)); /* past its deadline at 2 s */
    CHECK_OK(lb.next);
    CHECK_EQ(cosync_task_cancelling(xa), 2);
    CHECK_EQ(cosync_task_cancelling(xb), 1);
    join_expect(xa, COSYNC_ECANCELED);
    join_expect(xb, COSYNC_ECANCELED);
    return 0;
}

TEST(a_cancel_after_the_deadline_is_passed_on_and_a_deadline_after_a_cancel_is_not)
{
    run_main_ok(main_late_cancel_and_deadline, NULL);
}

/* A task cancelled for the deadline that fails its own way, or (deadline
 * 0) withdraws the request: 0, with its status. */
static int fail_on_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    return -77;
}

static int main_own_way(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job stubborn = {.secs = 10, .cleanup = 1, .withdraw = true, .value = 2};
    cosync_task f, s;
    CHECK_OK(cosync_task_spawn(&f, fail_on_cancel, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&s, run_target, &stubborn, NULL));
    CHECK_OK(cosync_yield());
    int status = 99;
    CHECK_OK(cosync_task_await(f, &status, NULL, t0 + COSYNC_SEC(1)));
    CHECK_EQ(status, -77);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    void *res = NULL;
    CHECK_OK(cosync_task_await(s, &status, &res, 0));
    CHECK_OK(status);
    CHECK(res == &stubborn.value);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(2));
    join_expect(f, -77);
    join_expect(s, 0);
    return 0;
}

TEST(a_task_cancelled_for_the_deadline_that_ends_its_own_way_gives_0)
{
    run_main_ok(main_own_way, NULL);
}

/* The caller's request withdrawn while it waits for the task it passed it
 * on to: it was delivered to the call, which still reports it. */
static int main_uncancel_during(void *arg, void **result)
{
    (void)arg, (void)result;
    job tg = {.secs = 10, .cleanup = 2, .withdraw = true, .value = 7};
    cosync_task x, h;
    awaiter a;
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    awaiter_init(&a, x, COSYNC_FOREVER, -1);
    spawn_awaiter(&h, &a, "a");
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_EQ(cosync_task_uncancel(h), 0);
    join_expect(h, COSYNC_ECANCELED); /* await_body returns what it got */
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_OK(a.status);
    join_expect(x, 0);
    return 0;
}

TEST(a_request_withdrawn_during_the_wait_is_still_reported)
{
    run_main_ok(main_uncancel_during, NULL);
}

/* The awaited task cancels its own awaiter: the awaiter passes the
 * cancel back, and the task, running, gets it at its next suspension. */
static cosync_task self_h;

static int cancels_its_awaiter(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_yield()); /* the awaiter waits */
    CHECK_OK(cosync_task_cancel(self_h));
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1);
    return cosync_yield();
}

static int main_cancels_its_awaiter(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x;
    awaiter a;
    CHECK_OK(cosync_task_spawn(&x, cancels_its_awaiter, NULL, NULL));
    awaiter_init(&a, x, COSYNC_FOREVER, -1);
    CHECK_OK(cosync_task_spawn(&self_h, await_body, &a, NULL));
    join_expect(self_h, COSYNC_ECANCELED);
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_ERR(a.status, COSYNC_ECANCELED);
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(a_task_that_cancels_its_own_awaiter_is_cancelled_in_turn)
{
    run_main_ok(main_cancels_its_awaiter, NULL);
}

/* ------------------------------------------------------------------------
 * The place among the waits, several awaiters
 * ---------------------------------------------------------------------- */

/* w0 (a task wait), a1 (an await), w2 (a task wait), a3 (an await) wait
 * for x in that order; a3 is cancelled, so x is cancelled, and x's clean-up
 * suspends. At x's finish they wake in the order they began, a3 last,
 * as asyncio's awaiter stays among the task's done callbacks; every one
 * sees x cancelled, and only a3 reports its own cancellation. */
static int main_keeps_its_place(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .value = 1};
    cosync_task x, h[4];
    awaiter a[4];
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    spawn_awaiters(x, a, h, 4, 0);
    for (int i = 0; i < 4; i += 2)
        a[i].use_wait = true;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h[3]));
    for (int i = 0; i < 4; i++)
        join_expect(h[i], i == 3 ? COSYNC_ECANCELED : 0);
    for (int i = 0; i < 4; i++)
        check_got(&a[i], i == 3 ? COSYNC_ECANCELED : 0, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    CHECKPOINTS_DONE(4);
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(a_cancelled_awaiter_keeps_its_place_among_the_waits)
{
    run_main_ok(main_keeps_its_place, NULL);
}

/* An awaiter whose deadline passes keeps its place too: the first of
 * three awaits times out at 1 s, x's clean-up takes 1 s, and the three
 * wake at 2 s in the order they began. */
static int main_deadline_keeps_its_place(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .value = 1};
    cosync_task x, h[3];
    awaiter a[3];
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    spawn_awaiters(x, a, h, 3, 0);
    a[0].deadline = t0 + COSYNC_SEC(1);
    for (int i = 0; i < 3; i++)
        join_ok(h[i]);
    check_got(&a[0], COSYNC_ETIMEDOUT, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    for (int i = 1; i < 3; i++)
        check_got(&a[i], 0, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    CHECKPOINTS_DONE(3);
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(an_awaiter_whose_deadline_passes_keeps_its_place)
{
    run_main_ok(main_deadline_keeps_its_place, NULL);
}

/* The owner's join is among the waits too: two awaits begin, then the
 * join; the second await is cancelled, so x is cancelled, and at x's finish
 * the three wake in the order they began, each with the outcome. */
static int main_with_a_join(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .value = 1};
    cosync_task x, h[2];
    awaiter a[2];
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    spawn_awaiters(x, a, h, 2, 0);
    CHECK_OK(cosync_yield()); /* both wait */
    CHECK_OK(cosync_task_cancel(h[1]));
    int status = 1;
    CHECK_OK(cosync_task_join(x, &status, NULL, COSYNC_FOREVER));
    CHECKPOINT(2); /* behind the two awaits, which began first */
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    join_ok(h[0]);
    join_expect(h[1], COSYNC_ECANCELED);
    check_got(&a[0], 0, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(1));
    check_got(&a[1], COSYNC_ECANCELED, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(1));
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(awaiters_and_the_join_that_collects_wake_in_the_order_they_began)
{
    run_main_ok(main_with_a_join, NULL);
}

/* Beside asyncio.wait (told first, as for every wait; it holds off
 * collectors while it watches) and a task wait: x is watched by w,
 * awaited by a0 and a1, then waited for by main; a1 is cancelled. At x's
 * finish: w, a0, a1, main; main then gathers x. */
static cosync_task mix_x;

static int watch_x(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t i = 9;
    CHECK_OK(cosync_wait(&mix_x, 1, COSYNC_FIRST_COMPLETED, &i, COSYNC_FOREVER));
    CHECKPOINT(0);
    CHECK_EQ(i, 0);
    return 0;
}

static int main_mixed(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .value = 1};
    cosync_task w, h[2];
    awaiter a[2];
    CHECK_OK(cosync_task_spawn(&mix_x, run_target, &tg, NULL));
    CHECK_OK(cosync_task_spawn(&w, watch_x, NULL, NULL));
    spawn_awaiters(mix_x, a, h, 2, 1);
    CHECK_OK(cosync_yield()); /* all wait */
    CHECK_OK(cosync_task_cancel(h[1]));
    int status = 99;
    CHECK_OK(cosync_task_wait(mix_x, &status, NULL, COSYNC_FOREVER));
    CHECKPOINT(3);
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    check_got(&a[0], 0, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(1));
    check_got(&a[1], COSYNC_ECANCELED, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(1));
    join_ok(w);
    join_ok(h[0]);
    join_expect(h[1], COSYNC_ECANCELED);
    cosync_outcome out;
    CHECK_OK(cosync_gather(&mix_x, 1, &out, COSYNC_FOREVER));
    CHECK_ERR(out.status, COSYNC_ECANCELED);
    CHECKPOINTS_DONE(4);
    return 0;
}

TEST(awaits_beside_asyncio_wait_and_a_task_wait)
{
    run_main_ok(main_mixed, NULL);
}

/* ------------------------------------------------------------------------
 * Group children, detached tasks
 * ---------------------------------------------------------------------- */

/* A task group's owner awaits a child (`r = await a` in the body of
 * `async with TaskGroup()`); another child fails at 1 s, so the group
 * cancels the children and the owner; the owner's await passes its
 * cancellation on to the child as well (asyncio counts both requests),
 * wakes when the child's clean-up ends, and leaving the group reports the
 * failure (the group takes back its request of the owner). */
static cosync_taskgroup grp;
static job grp_a = {.secs = 10, .cleanup = 1, .value = 5};
static job grp_b = {.secs = 1, .value = -5};

static int group_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task a;
    cosync_taskgroup_init(&grp);
    CHECK_OK(cosync_taskgroup_spawn(&grp, &a, run_target, &grp_a, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&grp, NULL, run_target, &grp_b, NULL));
    int status = 99;
    CHECK_ERR(cosync_task_await(a, &status, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(2));
    CHECK_EQ(cosync_task_cancelling(a), 2);
    CHECK_ERR(cosync_taskgroup_wait(&grp, COSYNC_FOREVER), -5);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    join_expect(a, COSYNC_ECANCELED);
    return 0;
}

TEST(a_group_owner_awaiting_a_child_passes_the_groups_cancel_on)
{
    run_main_ok(group_owner, NULL);
}

/* A detached task frees itself at its finish; its awaiters, woken then,
 * still get the outcome, and a cancelled one still cancels it first. */
static int main_detached(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job tg = {.secs = 10, .cleanup = 1, .value = 1};
    cosync_task x, h[2];
    awaiter a[2];
    CHECK_OK(cosync_task_spawn(&x, run_target, &tg, NULL));
    spawn_awaiters(x, a, h, 2, -1);
    CHECK_OK(cosync_task_detach(x));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(h[0]));
    join_expect(h[0], COSYNC_ECANCELED);
    join_ok(h[1]);
    check_got(&a[0], COSYNC_ECANCELED, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    check_got(&a[1], 0, COSYNC_ECANCELED, NULL, t0 + COSYNC_SEC(2));
    CHECK_ERR(cosync_task_await(x, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    return 0;
}

TEST(awaiters_of_a_detached_task)
{
    run_main_ok(main_detached, NULL);
}

/* ------------------------------------------------------------------------
 * Repeated cancels: gather, wait_for and await alike
 * ---------------------------------------------------------------------- */

enum { BY_GATHER, BY_WAIT_FOR, BY_AWAIT };

/* The caller's side: gather [x, y], wait_for(x) or await x, then one more
 * suspension to see whether anything is still pending. */
typedef struct rep {
    int how;
    cosync_task x, y, caller, helper;
    int64_t deadline;
    bool cancel_self; /* a cancel pending at the call */
    int rc, next;
    int64_t woke_at;
} rep;

static int rep_call(rep *r)
{
    switch (r->how) {
    case BY_GATHER: {
        cosync_task ts[2] = {r->x, r->y};
        return cosync_gather(ts, 2, NULL, r->deadline);
    }
    case BY_WAIT_FOR:
        return cosync_wait_for(r->x, NULL, NULL, r->deadline);
    default:
        return cosync_task_await(r->x, NULL, NULL, r->deadline);
    }
}

static int rep_caller(void *arg, void **result)
{
    (void)result;
    rep *r = arg;
    if (r->cancel_self)
        CHECK_OK(cosync_task_cancel(cosync_task_current()));
    r->rc = rep_call(r);
    r->woke_at = cosync_now();
    r->next = cosync_sleep(COSYNC_MS(1));
    return 0;
}

/* Cancels the caller once x has finished: its wait on x began before the
 * caller's, so it runs after x's finish and before the woken caller. */
static int cancel_after_x(void *arg, void **result)
{
    (void)result;
    rep *r = arg;
    CHECK_OK(cosync_task_wait(r->x, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_task_cancel(r->caller));
    return 0;
}

static int cancel_caller(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_cancel(((rep *)arg)->caller));
    return 0;
}

/* A second cancel that comes after x has finished (x withdrew the first)
 * but before the woken caller has run: it joins the first, one
 * COSYNC_ECANCELED and nothing pending after, and a gather passes it on
 * to y at once, cutting y's clean-up short, as asyncio 3.11-3.13 do. */
static int main_second_cancel_in_the_window(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int how = BY_GATHER; how <= BY_AWAIT; how++) {
        int64_t t0 = cosync_now();
        job jx = {.secs = 10, .cleanup = 1, .withdraw = true, .value = 1};
        job jy = {.secs = 10, .cleanup = 5, .value = 2};
        rep r = {.how = how, .deadline = COSYNC_FOREVER, .rc = 1, .next = 1};
        CHECK_OK(cosync_task_spawn(&r.x, run_target, &jx, NULL));
        CHECK_OK(cosync_task_spawn(&r.y, run_target, &jy, NULL));
        CHECK_OK(cosync_task_spawn(&r.helper, cancel_after_x, &r, NULL));
        CHECK_OK(cosync_yield()); /* its wait on x begins first */
        CHECK_OK(cosync_task_spawn(&r.caller, rep_caller, &r, NULL));
        CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
        CHECK_OK(cosync_task_cancel(r.caller));
        CHECK_OK(cosync_sleep(COSYNC_MS(1500)));
        CHECK_ERR(r.rc, COSYNC_ECANCELED);
        CHECK_EQ(r.woke_at, t0 + COSYNC_SEC(2));
        CHECK_EQ(cosync_task_cancelling(r.caller), 2);
        if (how == BY_GATHER) {
            CHECK_ERR(jy.cleanup_got, COSYNC_ECANCELED); /* at 2 s, not 6 */
        } else {
            CHECK_EQ(cosync_task_cancelling(r.y), 0);
            CHECK_OK(cosync_task_cancel(r.y));
            join_expect(r.y, COSYNC_ECANCELED);
        }
        join_expect(r.caller, COSYNC_ECANCELED);
        CHECK_OK(r.next); /* delivered once */
        join_ok(r.helper);
        if (how == BY_AWAIT)
            join_ok(r.x); /* withdrawn: it ended normally */
    }
    return 0;
}

TEST(a_second_cancel_after_the_task_finished_joins_the_first)
{
    run_main_ok(main_second_cancel_in_the_window, NULL);
}

/* A cancel pending at the call is passed on without a yield first, so a
 * second one from a task that runs right after reaches the tasks too
 * (their counts are 2, as in asyncio), and the call returns
 * COSYNC_ECANCELED once. */
static int main_pending_then_second(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int how = BY_GATHER; how <= BY_AWAIT; how++) {
        job jx = {.secs = 10, .cleanup = 3, .value = 1};
        job jy = {.secs = 10, .cleanup = 3, .value = 2};
        rep r = {.how = how, .deadline = COSYNC_FOREVER, .cancel_self = true, .rc = 1, .next = 1};
        CHECK_OK(cosync_task_spawn(&r.x, run_target, &jx, NULL));
        CHECK_OK(cosync_task_spawn(&r.y, run_target, &jy, NULL));
        CHECK_OK(cosync_yield()); /* both sleep */
        CHECK_OK(cosync_task_spawn(&r.caller, rep_caller, &r, NULL));
        CHECK_OK(cosync_task_spawn(&r.helper, cancel_caller, &r, NULL));
        CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
        CHECK_EQ(cosync_task_cancelling(r.x), 2);
        CHECK_EQ(cosync_task_cancelling(r.y), how == BY_GATHER ? 2 : 0);
        join_expect(r.caller, COSYNC_ECANCELED);
        CHECK_ERR(r.rc, COSYNC_ECANCELED);
        CHECK_OK(r.next);
        join_ok(r.helper);
        if (how != BY_GATHER) {
            CHECK_OK(cosync_task_cancel(r.y));
            join_expect(r.y, COSYNC_ECANCELED);
        }
        if (how == BY_AWAIT)
            join_expect(r.x, COSYNC_ECANCELED);
    }
    return 0;
}

TEST(a_cancel_pending_at_the_call_and_a_second_one_both_reach_the_tasks)
{
    run_main_ok(main_pending_then_second, NULL);
}

/* Timed out, then cancelled while it waits for the clean-up: the cancel is
 * passed on (the clean-up is cut short) and outranks the timeout. */
static int main_timeout_then_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int how = BY_GATHER; how <= BY_AWAIT; how++) {
        int64_t t0 = cosync_now();
        job jx = {.secs = 10, .cleanup = 3, .value = 1};
        job jy = {.secs = 10, .cleanup = 3, .value = 2};
        rep r = {.how = how, .deadline = t0 + COSYNC_SEC(1), .rc = 1, .next = 1};
        CHECK_OK(cosync_task_spawn(&r.x, run_target, &jx, NULL));
        CHECK_OK(cosync_task_spawn(&r.y, run_target, &jy, NULL));
        CHECK_OK(cosync_task_spawn(&r.caller, rep_caller, &r, NULL));
        CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
        CHECK_OK(cosync_task_cancel(r.caller));
        CHECK_EQ(cosync_task_cancelling(r.caller), 1);
        join_expect(r.caller, COSYNC_ECANCELED);
        CHECK_ERR(r.rc, COSYNC_ECANCELED);
        CHECK_EQ(r.woke_at, t0 + COSYNC_SEC(2));
        CHECK_ERR(jx.cleanup_got, COSYNC_ECANCELED);
        CHECK_OK(r.next);
        if (how == BY_GATHER) {
            CHECK_ERR(jy.cleanup_got, COSYNC_ECANCELED);
        } else {
            CHECK_OK(cosync_task_cancel(r.y));
            join_expect(r.y, COSYNC_ECANCELED);
        }
        if (how == BY_AWAIT) {
            CHECK_EQ(cosync_task_cancelling(r.x), 2);
            join_expect(r.x, COSYNC_ECANCELED);
        }
    }
    return 0;
}

/* The same for a gather whose cancel comes while it waits for the second
 * task's clean-up, the first being finished and collected. */
static int main_gather_timeout_then_late_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    job jx = {.secs = 10, .cleanup = 1, .value = 1};
    job jy = {.secs = 10, .cleanup = 5, .value = 2};
    rep r = {.how = BY_GATHER, .deadline = t0 + COSYNC_SEC(1), .rc = 1, .next = 1};
    CHECK_OK(cosync_task_spawn(&r.x, run_target, &jx, NULL));
    CHECK_OK(cosync_task_spawn(&r.y, run_target, &jy, NULL));
    CHECK_OK(cosync_task_spawn(&r.caller, rep_caller, &r, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(3))); /* x ended at 2 s; y cleans up until 6 s */
    CHECK_OK(cosync_task_cancel(r.caller));
    join_expect(r.caller, COSYNC_ECANCELED);
    CHECK_ERR(r.rc, COSYNC_ECANCELED);
    CHECK_EQ(r.woke_at, t0 + COSYNC_SEC(3));
    CHECK_OK(jx.cleanup_got);
    CHECK_ERR(jy.cleanup_got, COSYNC_ECANCELED);
    CHECK_OK(r.next);
    return 0;
}

TEST(a_cancel_after_a_timeout_is_passed_on_and_outranks_it)
{
    run_main_ok(main_timeout_then_cancel, NULL);
    run_main_ok(main_gather_timeout_then_late_cancel, NULL);
}

/* A plain join passes nothing on: cancelled, it ends, and the task is
 * left alone; cancelled again in a later join, it ends again (the mark of
 * a cancel on its way never outlives the cancel). */
static int join_twice(void *arg, void **result)
{
    (void)result;
    cosync_task *x = arg;
    CHECK_ERR(cosync_task_join(*x, NULL, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_ERR(cosync_task_join(*x, NULL, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    return 0;
}

static int main_join_cancelled_twice(void *arg, void **result)
{
    (void)arg, (void)result;
    job jx = {.secs = 10, .value = 1};
    cosync_task x, j;
    CHECK_OK(cosync_task_spawn(&x, run_target, &jx, NULL));
    CHECK_OK(cosync_task_spawn(&j, join_twice, &x, NULL));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
        CHECK_OK(cosync_task_cancel(j));
    }
    join_expect(j, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_cancelling(x), 0);
    CHECK_OK(cosync_task_cancel(x));
    join_expect(x, COSYNC_ECANCELED);
    return 0;
}

TEST(a_join_cancelled_twice_ends_twice_and_leaves_its_task_alone)
{
    run_main_ok(main_join_cancelled_twice, NULL);
}

/* ------------------------------------------------------------------------
 * Long chains
 * ---------------------------------------------------------------------- */

/* 5,000 tasks, each awaiting the next (by cosync_task_await, wait_for or
 * gather, in turn), the last asleep; cancelling the first passes the
 * cancellation down the whole chain, on the canceller's stack, without
 * recursing once per link: each link is cancelled once, and the chain
 * unwinds from its end. */
#define CHAIN_LEN 5000
static cosync_task chain[CHAIN_LEN];

static int chain_link(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    if (i == CHAIN_LEN - 1)
        return cosync_sleep(COSYNC_SEC(100));
    int status = 99;
    int rc;
    switch (i % 3) {
    case 0:
        rc = cosync_task_await(chain[i + 1], &status, NULL, COSYNC_FOREVER);
        break;
    case 1:
        rc = cosync_wait_for(chain[i + 1], &status, NULL, COSYNC_FOREVER);
        break;
    default: {
        cosync_outcome out;
        rc = cosync_gather(&chain[i + 1], 1, &out, COSYNC_FOREVER);
        status = out.status;
        break;
    }
    }
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_ERR(status, COSYNC_ECANCELED);
    return rc;
}

static int main_chain(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    for (int i = 0; i < CHAIN_LEN; i++)
        CHECK_OK(cosync_task_spawn(&chain[i], chain_link, (void *)(intptr_t)i, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* all wait */
    CHECK_OK(cosync_task_cancel(chain[0]));
    for (int i = 0; i < CHAIN_LEN; i++)
        CHECK_EQ(cosync_task_cancelling(chain[i]), 1);
    int status = 99;
    CHECK_OK(cosync_task_wait(chain[0], &status, NULL, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    for (int i = 0; i < CHAIN_LEN; i += 3) /* awaited, not collected */
        join_expect(chain[i + 1 < CHAIN_LEN ? i + 1 : i], COSYNC_ECANCELED);
    join_expect(chain[0], COSYNC_ECANCELED);
    CHECK_EQ(alive_tasks(), 1);
    return 0;
}

TEST(cancelling_the_head_of_a_long_chain_of_awaits_reaches_its_end)
{
    run_main_ok(main_chain, NULL);
}

static cosync_future dl_fut;

/* A diamond: x gathers a and b, which both await c, which awaits d. The
 * cancel of x reaches c and d once through a and once more through b, as
 * asyncio's cancel() walks each path (its counts: x, a, b 1; c, d 2). */
static cosync_task dia[5]; /* x, a, b, c, d */

static int dia_d(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    return COSYNC_ECANCELED;
}

static int dia_await(void *arg, void **result)
{
    (void)result;
    int status = 99;
    int rc = cosync_task_await(dia[(intptr_t)arg], &status, NULL, COSYNC_FOREVER);
    CHECK_ERR(status, COSYNC_ECANCELED);
    return rc ? rc : status;
}

static int dia_x(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_gather(&dia[1], 2, NULL, COSYNC_FOREVER);
}

static int main_diamond(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(&dia[4], dia_d, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&dia[3], dia_await, (void *)4, NULL));
    CHECK_OK(cosync_task_spawn(&dia[1], dia_await, (void *)3, NULL));
    CHECK_OK(cosync_task_spawn(&dia[2], dia_await, (void *)3, NULL));
    CHECK_OK(cosync_task_spawn(&dia[0], dia_x, NULL, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_task_cancel(dia[0]));
    static const int want[5] = {1, 1, 1, 2, 2};
    for (int i = 0; i < 5; i++)
        CHECK_EQ(cosync_task_cancelling(dia[i]), want[i]);
    join_expect(dia[0], COSYNC_ECANCELED); /* gathered a and b */
    join_expect(dia[3], COSYNC_ECANCELED);
    join_expect(dia[4], COSYNC_ECANCELED);
    return 0;
}

TEST(a_cancel_reaches_a_task_once_per_path_to_it)
{
    run_main_ok(main_diamond, NULL);
}

/* A cycle closed through a gather's first task (cancelled inside the
 * gather's give-up, not at the end of the chain): x gathers a and b, and a
 * awaits x. The cancel of x ends where it comes back to x. */
static cosync_task gcy[3]; /* x, a, b */

static int gcy_a(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_task_await(gcy[0], NULL, NULL, COSYNC_FOREVER);
}

static int gcy_x(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_gather(&gcy[1], 2, NULL, COSYNC_FOREVER);
}

static int gcy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(&gcy[1], gcy_a, NULL, &(cosync_task_opts){.name = "a"}));
    CHECK_OK(
        cosync_task_spawn(&gcy[2], wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "b"}));
    CHECK_OK(cosync_task_spawn(&gcy[0], gcy_x, NULL, &(cosync_task_opts){.name = "x"}));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(gcy[0]));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(cosync_task_cancelling(gcy[i]), 1);
    /* b ends; x and a still wait for each other */
    return cosync_task_wait(gcy[0], NULL, NULL, COSYNC_FOREVER);
}

TEST(a_cycle_closed_through_a_gather_ends_the_cancel)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, gcy_main, NULL, "main", &m);
    CHECK_STREQ(capture_text(&cap),
                "cosync: deadlock: 3 tasks are blocked and nothing can wake them:\n"
                "  task 'main' (#1) waits on task 'x' (#4) to finish\n"
                "  task 'a' (#2) waits on task 'x' (#4) to finish\n"
                "  task 'x' (#4) waits on join of task 'a' (#2)\n");
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * Misuse, the deadlock report, the close
 * ---------------------------------------------------------------------- */

static cosync_task other_loop_task;

static int main_misuse(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task me = cosync_task_current();
    CHECK_ERR(cosync_task_await(me, NULL, NULL, COSYNC_FOREVER), COSYNC_EDEADLK);
    CHECK_ERR(cosync_task_await(COSYNC_TASK_NONE, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_await(other_loop_task, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, return_arg, &x, NULL));
    join_ok(x);
    CHECK_ERR(cosync_task_await(x, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH); /* collected */
    CHECK_EQ(cosync_task_cancelling(me), 0);
    return 0;
}

TEST(misuse_errors)
{
    CHECK_ERR(cosync_task_await(COSYNC_TASK_NONE, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    cosync_loop *other = new_loop();
    CHECK_OK(cosync_loop_spawn(other, &other_loop_task, nop, NULL, NULL));
    CHECK_ERR(cosync_task_await(other_loop_task, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    run_main_ok(main_misuse, NULL);
    CHECK_OK(cosync_loop_run(other, other_loop_task, NULL, NULL));
    end_loop(other);
}

static int dl_main(void *arg, void **result)
{
    (void)arg;
    cosync_task w;
    CHECK_OK(
        cosync_task_spawn(&w, wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "loader"}));
    int status = 1;
    CHECK_OK(cosync_task_await(w, &status, result, COSYNC_FOREVER));
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
             "  task 'main' (#1) waits on task 'loader' (#2) to finish\n"
             "  task 'loader' (#2) waits on future %p\n",
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

/* A awaits B and B awaits A; A is cancelled: it passes the cancel on to
 * B, whose give-up would pass it back to A: the cancel ends where the
 * cycle closes (each is cancelled once; asyncio recurses until
 * RecursionError), and the two wait for each other: a deadlock, reported.
 * The close's cancels end the same way. */
static cosync_task cyc[2];

static int await_other(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    return cosync_task_await(cyc[1 - i], NULL, NULL, COSYNC_FOREVER);
}

static int cycle_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(&cyc[0], await_other, (void *)0, &(cosync_task_opts){.name = "A"}));
    CHECK_OK(cosync_task_spawn(&cyc[1], await_other, (void *)1, &(cosync_task_opts){.name = "B"}));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(cyc[0]));
    CHECK_EQ(cosync_task_cancelling(cyc[0]), 1);
    CHECK_EQ(cosync_task_cancelling(cyc[1]), 1);
    return cosync_task_join(cyc[0], NULL, NULL, COSYNC_FOREVER);
}

TEST(a_cycle_of_awaits_cancelled_is_reported_as_a_deadlock)
{
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, cycle_main, NULL, "main", &m);
    CHECK_STREQ(capture_text(&cap),
                "cosync: deadlock: 3 tasks are blocked and nothing can wake them:\n"
                "  task 'main' (#1) waits on join of task 'A' (#2)\n"
                "  task 'A' (#2) waits on task 'B' (#3) to finish\n"
                "  task 'B' (#3) waits on task 'A' (#2) to finish\n");
    /* the close cancels them, and they still wait for each other */
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    capture_free(&cap);
}

/* Destroying the loop cancels the awaiter, which cancels the task it
 * awaits (cancelled by the close as well) and waits for it. */
static awaiter close_a;

static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task x, h;
    CHECK_OK(cosync_task_spawn(&x, wait_future_arg, &dl_fut, &(cosync_task_opts){.name = "x"}));
    awaiter_init(&close_a, x, COSYNC_FOREVER, -1);
    spawn_awaiter(&h, &close_a, "a");
    CHECK_OK(cosync_task_detach(h));
    return cosync_task_await(x, NULL, NULL, COSYNC_FOREVER);
}

TEST(destroying_the_loop_cancels_the_awaits_and_their_tasks)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, close_main, NULL, "main", &m);
    CHECK_EQ(close_a.rc, 1); /* still waiting */
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(close_a.rc, COSYNC_ECANCELED);
    CHECK_ERR(close_a.status, COSYNC_ECANCELED);
    capture_free(&cap);
}

/*
 * cosync_task_await whose deadline passed has cancelled the task and waits
 * for it; the task ends (other than cancelled), which wakes the caller;
 * before the caller runs it is cancelled. cosync.h: "each further cancel of
 * the caller is passed on to the task too ..., and makes the call return
 * COSYNC_ECANCELED even after a timeout". The tests cancel such a caller
 * only while the task is still running; this one comes between the task's
 * finish and the caller's resumption (task_await_give_up on a GRANTED
 * wait). Without it the call returns 0 (the task "ended otherwise").
 */
static cosync_event late_cancel_ended;
static cosync_task late_cancel_awaiter;

/* cancelled at the awaiter's deadline, it cleans up, then fails its own way */
static int late_cancel_worker(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_event_set(&late_cancel_ended)); /* the canceller is ready first */
    return -5;
}

static int late_cancel_await_body(void *arg, void **result)
{
    (void)result;
    cosync_task *w = arg;
    int st = 0;
    CHECK_ERR(cosync_task_await(*w, &st, NULL, cosync_deadline_after(COSYNC_SEC(1))),
              COSYNC_ECANCELED);
    CHECK_EQ(st, -5);
    return 0;
}

static int late_cancel_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&late_cancel_ended, COSYNC_FOREVER));
    /* the worker has finished; the awaiter is woken but has not run */
    CHECK_OK(cosync_task_cancel(late_cancel_awaiter));
    return 0;
}

static int late_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&late_cancel_ended);
    cosync_task w, c;
    CHECK_OK(cosync_task_spawn(&w, late_cancel_worker, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&c, late_cancel_canceller, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&late_cancel_awaiter, late_cancel_await_body, &w, NULL));
    join_expect(late_cancel_awaiter, COSYNC_ECANCELED); /* still cancelling at its end */
    join_ok(c);
    join_expect(w, -5);
    return 0;
}

TEST(cancel_between_the_tasks_end_and_the_awaiters_resumption)
{
    run_main_ok(late_cancel_main, NULL);
}

int main(void)
{
    RUN(a_cancelled_caller_cancels_the_task_and_waits_for_its_end);
    RUN(a_task_that_withdraws_the_cancellation_still_leaves_the_caller_cancelled);
    RUN(a_pending_cancellation_is_passed_on_but_not_with_deadline_0);
    RUN(a_caller_cancelled_after_the_finish_keeps_the_outcome);
    RUN(a_second_cancel_while_it_waits_for_the_cancelled_task_is_passed_on_too);
    RUN(at_the_deadline_the_task_is_cancelled_and_waited_for);
    RUN(a_deadline_already_passed_or_zero_cancels_and_waits);
    RUN(a_cancel_after_the_deadline_is_passed_on_and_a_deadline_after_a_cancel_is_not);
    RUN(a_task_cancelled_for_the_deadline_that_ends_its_own_way_gives_0);
    RUN(a_request_withdrawn_during_the_wait_is_still_reported);
    RUN(a_task_that_cancels_its_own_awaiter_is_cancelled_in_turn);
    RUN(a_cancelled_awaiter_keeps_its_place_among_the_waits);
    RUN(an_awaiter_whose_deadline_passes_keeps_its_place);
    RUN(awaiters_and_the_join_that_collects_wake_in_the_order_they_began);
    RUN(awaits_beside_asyncio_wait_and_a_task_wait);
    RUN(a_group_owner_awaiting_a_child_passes_the_groups_cancel_on);
    RUN(awaiters_of_a_detached_task);
    RUN(a_second_cancel_after_the_task_finished_joins_the_first);
    RUN(a_cancel_pending_at_the_call_and_a_second_one_both_reach_the_tasks);
    RUN(a_cancel_after_a_timeout_is_passed_on_and_outranks_it);
    RUN(a_join_cancelled_twice_ends_twice_and_leaves_its_task_alone);
    RUN(cancelling_the_head_of_a_long_chain_of_awaits_reaches_its_end);
    RUN(a_cancel_reaches_a_task_once_per_path_to_it);
    RUN(a_cycle_closed_through_a_gather_ends_the_cancel);
    RUN(misuse_errors);
    RUN(deadlock_report_names_the_awaited_task);
    RUN(a_cycle_of_awaits_cancelled_is_reported_as_a_deadlock);
    RUN(destroying_the_loop_cancels_the_awaits_and_their_tasks);
    RUN(cancel_between_the_tasks_end_and_the_awaiters_resumption);
    return 0;
}
