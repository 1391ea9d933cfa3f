/*
 * test_timeout.c - cosync_timeout: asyncio.timeout() blocks.
 *
 * Every case of CPython's Lib/test/test_asyncio/test_timeouts.py that has
 * a C form (the repr and "without a task" cases have none: a block outside
 * a task is refused below), then what cosync adds: an expiry while the
 * task is ready or granted (no cancellation leaks out of the block), both
 * blocks of a nest expiring while a wait defers the cancellation, a
 * reschedule from another task, the waits a block ends (a lock's queue,
 * a condition, an awaited task's clean-up), many blocks at once, a dense
 * task's block in its own stack, a task that ends inside its blocks,
 * misuse, allocation failure and the loop's close. Every loop uses the
 * virtual clock (it starts at 1 s); interleavings are asserted with
 * CHECKPOINT.
 */
/* ctest-timeout: 120 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "cosync.h"
#include "fault.h" /* cosync__fault_countdown, cosync__mem_live */

#define MS COSYNC_MS
#define SEC COSYNC_SEC

static cosync_task self(void)
{
    return cosync_task_current();
}

static int cancelling(void)
{
    return cosync_task_cancelling(self());
}

/* ------------------------------------------------------------------------
 * The cases of test_timeouts.py
 * ---------------------------------------------------------------------- */

/* test_timeout_basic, test_waiter_cancelled: the sleep in the block gets
 * COSYNC_ECANCELED at the deadline, the leave makes it COSYNC_ETIMEDOUT. */
static int basic_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(MS(10))));
    CHECK(!cosync_timeout_expired(&tm));
    CHECK_EQ(armed_timers(), 1);
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + MS(10));
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 1);
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 0);
    CHECK_EQ(armed_timers(), 0);
    /* nothing is left pending */
    CHECK_OK(cosync_sleep(MS(1)));
    return 0;
}

TEST(timeout_basic)
{
    run_main_ok(basic_main, NULL);
}

/* test_timeout_at_basic: when() is the deadline given. */
static int at_basic_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t deadline = cosync_now() + MS(10);
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, deadline));
    CHECK_EQ(cosync_timeout_when(&tm), deadline);
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cosync_timeout_when(&tm), deadline);
    CHECK_EQ(cosync_now(), deadline);
    return 0;
}

TEST(timeout_at_basic)
{
    run_main_ok(at_basic_main, NULL);
}

/* test_nested_timeouts: two blocks with one deadline; only the outer one
 * reports the timeout, the inner one passes the cancellation through. */
static int nested_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t deadline = cosync_now() + MS(10);
    cosync_timeout outer, inner;
    CHECK_OK(cosync_timeout_enter(&outer, deadline));
    CHECK_OK(cosync_timeout_enter(&inner, deadline));
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cancelling(), 2); /* a request from each block, one delivery */
    rc = cosync_timeout_leave(&inner, rc);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cancelling(), 1);
    CHECK_ERR(cosync_timeout_leave(&outer, rc), COSYNC_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    CHECK(cosync_timeout_expired(&outer));
    CHECK(cosync_timeout_expired(&inner));
    CHECK_OK(cosync_sleep(MS(1)));
    return 0;
}

TEST(nested_timeouts)
{
    run_main_ok(nested_main, NULL);
}

/* test_timeout_not_called: a block that ends in time is left as it is. */
static int not_called_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(10))));
    CHECK_OK(cosync_sleep(MS(10)));
    CHECK_OK(cosync_timeout_leave(&tm, 0));
    CHECK(!cosync_timeout_expired(&tm));
    CHECK_GT(cosync_timeout_when(&tm), cosync_now());
    CHECK_EQ(armed_timers(), 0); /* the leave disarmed it */
    CHECK_EQ(cancelling(), 0);
    return 0;
}

TEST(timeout_not_called)
{
    run_main_ok(not_called_main, NULL);
}

/* test_timeout_disabled, test_timeout_at_disabled: no deadline, no timer. */
static int disabled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, COSYNC_FOREVER));
    CHECK_EQ(armed_timers(), 0);
    CHECK_OK(cosync_sleep(MS(10)));
    CHECK_OK(cosync_timeout_leave(&tm, 0));
    CHECK(!cosync_timeout_expired(&tm));
    CHECK_EQ(cosync_timeout_when(&tm), COSYNC_FOREVER);
    return 0;
}

TEST(timeout_disabled)
{
    run_main_ok(disabled_main, NULL);
}

/* test_timeout_zero, test_timeout_zero_sleep_zero,
 * test_timeout_in_the_past_sleep_zero: a deadline that has passed (0 and
 * a negative time included) ends the block's first suspension, a sleep or
 * a bare yield, with no time passing. */
static int zero_main(void *arg, void **result)
{
    (void)result;
    int64_t duration = *(int64_t *)arg;
    int64_t deadlines[] = {cosync_deadline_after(0), cosync_deadline_after(SEC(-11)), 0, -5,
                           cosync_now()};
    for (size_t i = 0; i < sizeof deadlines / sizeof *deadlines; i++) {
        int64_t t0 = cosync_now();
        cosync_timeout tm;
        CHECK_OK(cosync_timeout_enter(&tm, deadlines[i]));
        CHECK(cosync_timeout_expired(&tm));
        CHECK_EQ(armed_timers(), 0);
        int rc = cosync_sleep(duration);
        CHECK_ERR(rc, COSYNC_ECANCELED);
        CHECK_EQ(cosync_now(), t0);
        CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
        CHECK_EQ(cosync_timeout_when(&tm), deadlines[i]);
        CHECK_EQ(cancelling(), 0);
    }
    return 0;
}

TEST(timeout_zero)
{
    int64_t ten = SEC(10), zero = 0;
    run_main_ok(zero_main, &ten);
    run_main_ok(zero_main, &zero);
}

/* test_foreign_exception_passed: another error leaves the block as it is. */
static int foreign_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(MS(10))));
    CHECK_ERR(cosync_timeout_leave(&tm, COSYNC_EINVAL), COSYNC_EINVAL);
    CHECK(!cosync_timeout_expired(&tm));
    return 0;
}

TEST(foreign_exception_passed)
{
    run_main_ok(foreign_main, NULL);
}

/* test_foreign_exception_on_timeout: the block's clean-up after the
 * cancellation fails its own way; that error leaves the block, and the
 * request is withdrawn all the same. */
static int foreign_on_timeout_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(MS(10))));
    int rc = cosync_sleep(SEC(1));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    rc = COSYNC_EOVERFLOW; /* `finally: 1/0` */
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_EOVERFLOW);
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 0);
    return 0;
}

TEST(foreign_exception_on_timeout)
{
    run_main_ok(foreign_on_timeout_main, NULL);
}

/* test_foreign_cancel_doesnt_timeout_if_not_expired */
static int foreign_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(10))));
    CHECK_OK(cosync_task_cancel(self()));
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ECANCELED);
    CHECK(!cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 1);
    CHECK_EQ(cosync_task_uncancel(self()), 0);
    return 0;
}

TEST(foreign_cancel_doesnt_timeout_if_not_expired)
{
    run_main_ok(foreign_cancel_main, NULL);
}

/* test_outer_task_is_not_cancelled: a task that handles its block's
 * timeout ends as it returns, not cancelled. */
static int handles_timeout(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(MS(1))));
    int rc = cosync_timeout_leave(&tm, cosync_sleep(SEC(10)));
    CHECK_ERR(rc, COSYNC_ETIMEDOUT);
    return 0;
}

static int outer_not_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, handles_timeout, NULL, NULL));
    int status = 1;
    CHECK_OK(cosync_task_join(t, &status, NULL, COSYNC_FOREVER));
    CHECK_EQ(status, 0);
    return 0;
}

TEST(outer_task_is_not_cancelled)
{
    run_main_ok(outer_not_cancelled_main, NULL);
}

/* test_nested_timeouts_concurrent: the outer block expires while the inner
 * one runs; the inner passes the cancellation through, unexpired. */
static int nested_concurrent_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_timeout outer, inner;
    CHECK_OK(cosync_timeout_enter(&outer, t0 + MS(2)));
    CHECK_OK(cosync_timeout_enter(&inner, t0 + MS(100)));
    int rc = cosync_sleep(SEC(1));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + MS(2));
    rc = cosync_timeout_leave(&inner, rc);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK(!cosync_timeout_expired(&inner));
    CHECK_ERR(cosync_timeout_leave(&outer, rc), COSYNC_ETIMEDOUT);
    CHECK(cosync_timeout_expired(&outer));
    CHECK_EQ(armed_timers(), 0);
    return 0;
}

TEST(nested_timeouts_concurrent)
{
    run_main_ok(nested_concurrent_main, NULL);
}

/* test_nested_timeouts_loop_busy: both blocks expire while the task
 * cannot take the cancellation (asyncio: the loop is busy; here: the task
 * awaits a task that ignores the cancellations passed on to it); the inner
 * one passes it through, the outer one reports the timeout, and a wait
 * after the inner block would be ended by the outer one. */
static int stubborn(void *arg, void **result)
{
    (void)result;
    int64_t until = *(int64_t *)arg;
    while (cosync_now() < until)
        if (cosync_sleep_until(until) == COSYNC_ECANCELED)
            cosync_task_uncancel(self());
    return 0;
}

static int loop_busy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    int64_t until = t0 + MS(200);
    cosync_timeout outer, inner;
    CHECK_OK(cosync_timeout_enter(&outer, t0 + MS(100)));
    CHECK_OK(cosync_timeout_enter(&inner, t0 + MS(10)));
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, stubborn, &until, NULL));
    int status = 1;
    int rc = cosync_task_await(t, &status, NULL, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(status, 0);
    CHECK_EQ(cosync_now(), until);
    CHECK(cosync_timeout_expired(&inner));
    CHECK(cosync_timeout_expired(&outer));
    CHECK_EQ(cancelling(), 2);
    rc = cosync_timeout_leave(&inner, rc);
    CHECK_ERR(rc, COSYNC_ECANCELED); /* the outer block's request is outstanding */
    CHECK_ERR(cosync_timeout_leave(&outer, rc), COSYNC_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(nested_timeouts_loop_busy)
{
    run_main_ok(loop_busy_main, NULL);
}

/* test_reschedule: another task moves the block's deadline later, then
 * takes it away, then cancels the block's task: the block has not
 * expired. */
typedef struct resched {
    cosync_timeout tm;
    cosync_event entered;
    int64_t deadline1;
    int rc;
} resched;

static int resched_body(void *arg, void **result)
{
    (void)result;
    resched *r = arg;
    CHECK_OK(cosync_timeout_enter(&r->tm, r->deadline1));
    CHECK_OK(cosync_event_set(&r->entered));
    int rc = cosync_sleep(SEC(50));
    r->rc = rc;
    return cosync_timeout_leave(&r->tm, rc);
}

static int reschedule_main(void *arg, void **result)
{
    (void)arg, (void)result;
    resched r = {.entered = COSYNC_EVENT_INIT, .deadline1 = cosync_now() + SEC(10)};
    int64_t deadline2 = r.deadline1 + SEC(20);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, resched_body, &r, NULL));
    CHECK_OK(cosync_event_wait(&r.entered, COSYNC_FOREVER));
    CHECK_EQ(cosync_timeout_when(&r.tm), r.deadline1);
    CHECK_OK(cosync_timeout_reschedule(&r.tm, deadline2));
    CHECK_EQ(cosync_timeout_when(&r.tm), deadline2);
    CHECK_OK(cosync_timeout_reschedule(&r.tm, COSYNC_FOREVER));
    CHECK_EQ(cosync_timeout_when(&r.tm), COSYNC_FOREVER);
    CHECK_EQ(armed_timers(), 1);     /* the sleep's alone */
    CHECK_OK(cosync_sleep(SEC(40))); /* past both deadlines */
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(r.rc, COSYNC_ECANCELED);
    CHECK(!cosync_timeout_expired(&r.tm));
    return 0;
}

TEST(reschedule)
{
    run_main_ok(reschedule_main, NULL);
}

/* Rescheduled earlier, it expires then; to a time that has passed, at once. */
static int reschedule_earlier_main(void *arg, void **result)
{
    (void)result;
    bool to_past = *(bool *)arg;
    resched r = {.entered = COSYNC_EVENT_INIT, .deadline1 = cosync_now() + SEC(10)};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, resched_body, &r, NULL));
    CHECK_OK(cosync_event_wait(&r.entered, COSYNC_FOREVER));
    int64_t t0 = cosync_now();
    if (to_past) {
        CHECK_OK(cosync_timeout_reschedule(&r.tm, t0 - 1));
        CHECK(cosync_timeout_expired(&r.tm)); /* at once */
        CHECK_EQ(cosync_task_cancelling(t), 1);
    } else {
        CHECK_OK(cosync_timeout_reschedule(&r.tm, t0 + SEC(2)));
        CHECK(!cosync_timeout_expired(&r.tm));
    }
    /* an expired block's deadline no longer moves */
    CHECK_OK(cosync_sleep(SEC(3)));
    CHECK(cosync_timeout_expired(&r.tm));
    CHECK_ERR(cosync_timeout_reschedule(&r.tm, t0 + SEC(100)), COSYNC_EPERM);
    CHECK_EQ(join_status(t), COSYNC_ETIMEDOUT);
    CHECK_ERR(r.rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_timeout_when(&r.tm), to_past ? t0 - 1 : t0 + SEC(2));
    return 0;
}

TEST(reschedule_earlier)
{
    bool to_past = false;
    run_main_ok(reschedule_earlier_main, &to_past);
    to_past = true;
    run_main_ok(reschedule_earlier_main, &to_past);
}

/* A block that has expired, while its task still cleans up inside it:
 * its deadline no longer moves (asyncio: "Cannot change state of
 * expiring Timeout"), and it says it has expired. */
typedef struct expiring {
    cosync_timeout tm;
    cosync_event entered;
} expiring;

static int expiring_body(void *arg, void **result)
{
    (void)result;
    expiring *e = arg;
    CHECK_OK(cosync_timeout_enter(&e->tm, cosync_deadline_after(SEC(1))));
    CHECK_OK(cosync_event_set(&e->entered));
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(SEC(5))); /* the clean-up, still inside */
    return cosync_timeout_leave(&e->tm, rc);
}

static int expiring_main(void *arg, void **result)
{
    (void)arg, (void)result;
    expiring e = {.entered = COSYNC_EVENT_INIT};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, expiring_body, &e, NULL));
    CHECK_OK(cosync_event_wait(&e.entered, COSYNC_FOREVER));
    int64_t when = cosync_timeout_when(&e.tm);
    CHECK_OK(cosync_sleep(SEC(2))); /* expired; the task cleans up */
    CHECK(cosync_timeout_expired(&e.tm));
    CHECK_ERR(cosync_timeout_reschedule(&e.tm, cosync_now() + SEC(100)), COSYNC_EPERM);
    CHECK_ERR(cosync_timeout_reschedule(&e.tm, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_EQ(cosync_timeout_when(&e.tm), when);
    CHECK_EQ(join_status(t), COSYNC_ETIMEDOUT);
    return 0;
}

TEST(expiring_block_refuses_reschedule)
{
    run_main_ok(expiring_main, NULL);
}

/* test_nested_timeout_in_finally: a block in the clean-up of an expired
 * block expires in its turn. */
static int in_finally_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_timeout outer, inner;
    CHECK_OK(cosync_timeout_enter(&outer, t0 + MS(10)));
    int rc = cosync_sleep(SEC(1));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_timeout_enter(&inner, cosync_deadline_after(MS(10))));
    int clean = cosync_sleep(SEC(10));
    CHECK_ERR(clean, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + MS(20));
    CHECK_ERR(cosync_timeout_leave(&inner, clean), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_timeout_leave(&outer, rc), COSYNC_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    return 0;
}

TEST(nested_timeout_in_finally)
{
    run_main_ok(in_finally_main, NULL);
}

/* test_timeout_after_cancellation, test_cancel_in_timeout_after_cancellation:
 * a block in the clean-up of a cancelled task; the count it started
 * with is the one it compares with. */
static int after_cancellation_main(void *arg, void **result)
{
    (void)result;
    bool cancel_inside = *(bool *)arg;
    CHECK_OK(cosync_task_cancel(self()));
    CHECK_ERR(cosync_sleep(SEC(1)), COSYNC_ECANCELED);
    CHECK_EQ(cancelling(), 1);
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(cancel_inside ? SEC(1) : 0)));
    if (cancel_inside)
        CHECK_OK(cosync_task_cancel(self()));
    int rc = cosync_sleep(SEC(2));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    rc = cosync_timeout_leave(&tm, rc);
    CHECK_ERR(rc, cancel_inside ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_timeout_expired(&tm), !cancel_inside);
    CHECK_EQ(cancelling(), cancel_inside ? 2 : 1);
    while (cosync_task_uncancel(self()) > 0) {
    }
    return 0;
}

TEST(timeout_after_cancellation)
{
    bool cancel_inside = false;
    run_main_ok(after_cancellation_main, &cancel_inside);
    cancel_inside = true;
    run_main_ok(after_cancellation_main, &cancel_inside);
}

/* test_timeout_already_entered, test_timeout_double_enter,
 * test_timeout_finished, test_timeout_not_entered: a block entered twice
 * is refused and stays as it was; a left one may be entered afresh (C
 * has no separate construction); one that is not entered cannot be
 * rescheduled or left. */
static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    int64_t d = cosync_deadline_after(MS(10));
    CHECK_OK(cosync_timeout_enter(&tm, d));
    CHECK_ERR(cosync_timeout_enter(&tm, d + 1), COSYNC_EPERM);
    CHECK_EQ(cosync_timeout_when(&tm), d);
    CHECK_EQ(armed_timers(), 1);
    CHECK_OK(cosync_timeout_leave(&tm, 0));
    CHECK_ERR(cosync_timeout_leave(&tm, 0), COSYNC_EPERM);          /* left already */
    CHECK_ERR(cosync_timeout_reschedule(&tm, d + 2), COSYNC_EPERM); /* "finished" */
    CHECK_EQ(cosync_timeout_when(&tm), d);
    CHECK_EQ(armed_timers(), 0);
    /* entered afresh: a new block */
    CHECK_OK(cosync_timeout_enter(&tm, d + 3));
    CHECK_ERR(cosync_timeout_leave(&tm, cosync_sleep(SEC(1))), COSYNC_ETIMEDOUT);

    /* out of order: the outer block is not the innermost */
    cosync_timeout outer, inner;
    CHECK_OK(cosync_timeout_enter(&outer, cosync_deadline_after(SEC(5))));
    CHECK_OK(cosync_timeout_enter(&inner, cosync_deadline_after(SEC(6))));
    CHECK_ERR(cosync_timeout_leave(&outer, 0), COSYNC_EPERM);
    CHECK_EQ(armed_timers(), 2);
    CHECK_OK(cosync_timeout_leave(&inner, 0));
    CHECK_OK(cosync_timeout_leave(&outer, 0));
    CHECK_EQ(armed_timers(), 0);

    /* never entered: zeroed, and any bytes (compared, never followed) */
    cosync_timeout zero = {0}, junk;
    memset(&junk, 0x5a, sizeof junk);
    CHECK_ERR(cosync_timeout_leave(&zero, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_timeout_reschedule(&zero, 0), COSYNC_EPERM);
    CHECK(!cosync_timeout_expired(&zero));
    CHECK_ERR(cosync_timeout_leave(&junk, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_timeout_reschedule(&junk, 0), COSYNC_EPERM); /* not in the entered state */
    return 0;
}

TEST(misuse)
{
    run_main_ok(misuse_main, NULL);
    /* outside a task (test_timeout_without_task) */
    cosync_timeout tm = {0};
    CHECK_ERR(cosync_timeout_enter(&tm, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_timeout_leave(&tm, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_timeout_reschedule(&tm, 0), COSYNC_EPERM);
}

/* A block another task entered: it can be rescheduled from here (as
 * asyncio allows), but not left. */
typedef struct foreign {
    cosync_timeout tm;
    cosync_event entered, go;
} foreign;

static int foreign_body(void *arg, void **result)
{
    (void)result;
    foreign *f = arg;
    CHECK_OK(cosync_timeout_enter(&f->tm, cosync_deadline_after(SEC(5))));
    CHECK_OK(cosync_event_set(&f->entered));
    int rc = cosync_event_wait(&f->go, COSYNC_FOREVER);
    return cosync_timeout_leave(&f->tm, rc);
}

static int foreign_leave_main(void *arg, void **result)
{
    (void)arg, (void)result;
    foreign f = {.entered = COSYNC_EVENT_INIT, .go = COSYNC_EVENT_INIT};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, foreign_body, &f, NULL));
    CHECK_OK(cosync_event_wait(&f.entered, COSYNC_FOREVER));
    CHECK_ERR(cosync_timeout_leave(&f.tm, 0), COSYNC_EPERM);
    CHECK(!cosync_timeout_expired(&f.tm));
    CHECK_OK(cosync_event_set(&f.go));
    CHECK_EQ(join_status(t), 0);
    return 0;
}

TEST(leave_by_another_task)
{
    run_main_ok(foreign_leave_main, NULL);
}

/* A copy of an entered block is not that block; nor is a struct whose
 * node field happens to hold the task's argument (which the record keeps
 * where the innermost block is kept once a scope is open); a leave in a
 * task that has only a task group open (the scope mark set, no block)
 * finds nothing to leave. All refused, nothing changed. */
static int forged_main(void *arg, void **result)
{
    (void)result;
    cosync_timeout forged = {.node = arg};
    CHECK_ERR(cosync_timeout_leave(&forged, 0), COSYNC_EPERM);

    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(1))));
    cosync_timeout copy = tm;
    CHECK_ERR(cosync_timeout_reschedule(&copy, cosync_now()), COSYNC_EPERM);
    CHECK(!cosync_timeout_expired(&tm));
    CHECK_OK(cosync_timeout_leave(&tm, 0));

    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_timeout zero = {0};
    CHECK_ERR(cosync_timeout_leave(&zero, 0), COSYNC_EPERM);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    return 0;
}

TEST(forged_blocks)
{
    static char zeros[256]; /* read as a node, it would be one not expired */
    run_main_ok(forged_main, zeros);
}

/* A block another loop's task tries to reschedule: refused. The first
 * loop is stopped while its task is inside its block, the second runs,
 * then the first runs again to its end. */
typedef struct two_loops {
    cosync_timeout tm;
    int rc;
} two_loops;

static int blocked_in_block(void *arg, void **result)
{
    (void)result;
    two_loops *tl = arg;
    CHECK_OK(cosync_timeout_enter(&tl->tm, cosync_deadline_after(SEC(10))));
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    return cosync_timeout_leave(&tl->tm, cosync_sleep(SEC(100)));
}

static int reschedules_foreign(void *arg, void **result)
{
    (void)result;
    two_loops *tl = arg;
    tl->rc = cosync_timeout_reschedule(&tl->tm, cosync_now());
    return 0;
}

TEST(reschedule_from_another_loop)
{
    two_loops tl = {.rc = 1};
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_task ta, tb;
    CHECK_OK(cosync_loop_spawn(a, &ta, blocked_in_block, &tl, NULL));
    CHECK_ERR(cosync_loop_run(a, ta, NULL, NULL), COSYNC_EINTR);
    CHECK_OK(cosync_loop_spawn(b, &tb, reschedules_foreign, &tl, NULL));
    CHECK_OK(cosync_loop_run(b, tb, NULL, NULL));
    CHECK_ERR(tl.rc, COSYNC_EPERM);
    CHECK_EQ(cosync_timeout_when(&tl.tm), cosync_loop_now(a) + SEC(10));
    end_loop(b);
    int status = 0;
    CHECK_OK(cosync_loop_run(a, ta, &status, NULL));
    CHECK_EQ(status, COSYNC_ETIMEDOUT); /* at its own deadline */
    end_loop(a);
}

/* A request already on its way when a block expires at once (the two
 * merge into one delivery) is not dropped by the leave of a block that
 * never suspended: the next suspension still gets it. */
static int pending_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_cancel(self()));
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_now()));
    CHECK_EQ(cancelling(), 2);
    CHECK_OK(cosync_timeout_leave(&tm, 0));
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(self()), 0);
    return 0;
}

TEST(pending_cancel_survives_block)
{
    run_main_ok(pending_main, NULL);
}

/* Blocks and task groups in one task, each inside the other: leaving one
 * kind leaves the other kind's bookkeeping alone, and a task that ends
 * inside both has both closed and reported. */
static int sleeps_long(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(SEC(1000));
}

static int groups_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    cosync_taskgroup g;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(5))));
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, nop, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_OK(cosync_timeout_leave(&tm, 0));

    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(1))));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, nop, NULL, NULL));
    CHECK_ERR(cosync_timeout_leave(&tm, cosync_sleep(SEC(2))), COSYNC_ETIMEDOUT);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));

    /* a group's wait that the block's expiry ends: the children are
     * cancelled and waited for, as in `async with timeout(): async with
     * TaskGroup()` */
    int64_t t0 = cosync_now();
    CHECK_OK(cosync_timeout_enter(&tm, t0 + SEC(1)));
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, sleeps_long, NULL, NULL));
    int rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + SEC(1));
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
    CHECK_EQ(cancelling(), 0);
    return 0;
}

static int leaves_both_open(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(5))));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, sleeps_long, NULL, NULL));
    CHECK_OK(cosync_yield());
    return 0;
}

TEST(blocks_and_task_groups)
{
    run_main_ok(groups_main, NULL);

    long live = atomic_load(&cosync__mem_live);
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    cosync_task t;
    CHECK_OK(
        cosync_loop_spawn(loop, &t, leaves_both_open, NULL, &(cosync_task_opts){.name = "both"}));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    const char *text = capture_text(&cap);
    CHECK(strstr(text, "'both' (#1) ended without leaving 1 timeout block") != NULL);
    CHECK(strstr(text, "'both' (#1) ended without leaving its task group") != NULL);
    CHECK_EQ(count_lines(text), 2);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&cap);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

/* ------------------------------------------------------------------------
 * Expiry in each state of the task
 * ---------------------------------------------------------------------- */

/* The block expires after its task's wait was granted, before the task
 * runs (another task sets the event, then moves the block's deadline to
 * now): the grant is kept (the wait returns 0), and if the block then
 * ends without suspending, the request it never received is withdrawn
 * with it: no COSYNC_ECANCELED reaches a suspension after the block. If
 * it suspends once more inside, that suspension gets the cancellation.
 * The same in the clean-up of a cancelled task, whose count stays 1 after
 * the leave (asyncio 3.13 would let the undelivered request through). */
typedef struct granted {
    cosync_event ev;
    cosync_timeout tm;
    bool suspend_again;
    bool in_cleanup;
    int wait_rc, again_rc, leave_rc, after_rc;
    bool expired;
} granted;

static int granted_body(void *arg, void **result)
{
    (void)result;
    granted *g = arg;
    int before = 0;
    if (g->in_cleanup) {
        CHECK_OK(cosync_task_cancel(self()));
        CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
        before = 1;
    }
    CHECK_OK(cosync_timeout_enter(&g->tm, cosync_deadline_after(SEC(100))));
    g->wait_rc = cosync_event_wait(&g->ev, COSYNC_FOREVER);
    CHECKPOINT(1);
    int rc = g->wait_rc;
    if (g->suspend_again)
        rc = g->again_rc = cosync_yield();
    g->expired = cosync_timeout_expired(&g->tm);
    g->leave_rc = cosync_timeout_leave(&g->tm, rc);
    CHECK_EQ(cancelling(), before);
    g->after_rc = cosync_sleep(SEC(1));
    if (before)
        CHECK_EQ(cosync_task_uncancel(self()), 0);
    return 0;
}

static int granted_main(void *arg, void **result)
{
    (void)result;
    int how = *(int *)arg;
    granted g = {.ev = COSYNC_EVENT_INIT, .suspend_again = how & 1, .in_cleanup = how & 2};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, granted_body, &g, NULL));
    CHECK_OK(cosync_sleep(SEC(1)));
    CHECK_OK(cosync_event_set(&g.ev));
    CHECK_OK(cosync_timeout_reschedule(&g.tm, cosync_now()));
    CHECKPOINT(0);
    CHECK_EQ(join_status(t), 0);
    CHECKPOINTS_DONE(2);
    CHECK_OK(g.wait_rc);
    CHECK(g.expired);
    if (g.suspend_again) {
        CHECK_ERR(g.again_rc, COSYNC_ECANCELED);
        CHECK_ERR(g.leave_rc, COSYNC_ETIMEDOUT);
    } else {
        CHECK_OK(g.leave_rc);
    }
    CHECK_OK(g.after_rc);
    return 0;
}

TEST(expiry_after_grant)
{
    for (int how = 0; how < 4; how++) { /* suspends again: 1; in a clean-up: 2 */
        CHECKPOINT_RESET();
        run_main_ok(granted_main, &how);
    }
}

/* The block expires while its task is away in a yield (ready, not
 * blocked; another task moves the deadline to now): the yield returns
 * COSYNC_ECANCELED. */
typedef struct yielder {
    cosync_timeout tm;
    int rc;
    long yields;
} yielder;

static int yield_body(void *arg, void **result)
{
    (void)result;
    yielder *y = arg;
    CHECK_OK(cosync_timeout_enter(&y->tm, cosync_deadline_after(SEC(1))));
    int rc;
    while ((rc = cosync_yield()) == 0)
        y->yields++;
    y->rc = cosync_timeout_leave(&y->tm, rc);
    return 0;
}

static int yield_main(void *arg, void **result)
{
    (void)arg, (void)result;
    yielder y = {0};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, yield_body, &y, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_yield());
    CHECK_EQ(y.yields, 2); /* its first run entered the block */
    CHECK_OK(cosync_timeout_reschedule(&y.tm, cosync_now()));
    CHECK_EQ(join_status(t), 0);
    CHECK_ERR(y.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(y.yields, 2);
    return 0;
}

TEST(expiry_while_ready)
{
    run_main_ok(yield_main, NULL);
}

/* Cancelled from elsewhere and expired before it runs again: one
 * COSYNC_ECANCELED, which the leave passes through (the other request is
 * outstanding), and the task ends cancelled. */
static int both_body(void *arg, void **result)
{
    (void)result;
    int64_t at = *(int64_t *)arg;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, at));
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cancelling(), 2);
    rc = cosync_timeout_leave(&tm, rc);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK(cosync_timeout_expired(&tm));
    CHECK_EQ(cancelling(), 1);
    return rc;
}

static int both_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t at = cosync_now() + SEC(1);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, both_body, &at, NULL));
    /* armed before its block (it has not run yet): this sleep ends first,
     * and the cancel below comes before it runs again */
    CHECK_OK(cosync_sleep_until(at));
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    return 0;
}

TEST(expiry_and_cancel_together)
{
    run_main_ok(both_main, NULL);
}

/* ------------------------------------------------------------------------
 * The waits a block ends
 * ---------------------------------------------------------------------- */

/* A lock's queue: the waiter whose block expires leaves the queue, and
 * the lock goes to the next one. */
typedef struct lockers {
    cosync_lock lock;
    int rc[3];
    int order[3];
    int n;
} lockers;

typedef struct locker {
    lockers *ls;
    int i;
    int64_t at; /* the block's deadline; COSYNC_FOREVER: no block */
} locker;

static int locker_body(void *arg, void **result)
{
    (void)result;
    locker *l = arg;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, l->at));
    int rc = cosync_lock_acquire(&l->ls->lock, COSYNC_FOREVER);
    if (rc == 0) {
        l->ls->order[l->ls->n++] = l->i;
        CHECK_OK(cosync_lock_release(&l->ls->lock));
    }
    l->ls->rc[l->i] = cosync_timeout_leave(&tm, rc);
    return 0;
}

static int lock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    lockers ls = {.lock = COSYNC_LOCK_INIT};
    int64_t t0 = cosync_now();
    locker l[3] = {{&ls, 0, COSYNC_FOREVER}, {&ls, 1, t0 + SEC(1)}, {&ls, 2, COSYNC_FOREVER}};
    CHECK_OK(cosync_lock_acquire(&ls.lock, COSYNC_FOREVER));
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], locker_body, &l[i], NULL));
    CHECK_OK(cosync_sleep(SEC(2)));
    CHECK_EQ(cosync_lock_waiters(&ls.lock), 2); /* the middle one left */
    CHECK_OK(cosync_lock_release(&ls.lock));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(join_status(t[i]), 0);
    CHECK_OK(ls.rc[0]);
    CHECK_ERR(ls.rc[1], COSYNC_ETIMEDOUT);
    CHECK_OK(ls.rc[2]);
    CHECK_EQ(ls.n, 2);
    CHECK_EQ(ls.order[0], 0);
    CHECK_EQ(ls.order[1], 2);
    return 0;
}

TEST(expiry_in_lock_queue)
{
    run_main_ok(lock_main, NULL);
}

/* A condition: the wait ends with the lock held, whatever ended it; here
 * the block's expiry, while another task holds the lock for a while. */
typedef struct condcase {
    cosync_lock lock;
    cosync_cond cond;
    int64_t at;
    int rc;
    bool held;
    int64_t back;
} condcase;

static int cond_body(void *arg, void **result)
{
    (void)result;
    condcase *c = arg;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, c->at));
    CHECK_OK(cosync_lock_acquire(&c->lock, COSYNC_FOREVER));
    int rc = cosync_cond_wait(&c->cond, COSYNC_FOREVER);
    c->held = cosync_lock_locked(&c->lock);
    c->back = cosync_now();
    CHECK_OK(cosync_lock_release(&c->lock));
    c->rc = cosync_timeout_leave(&tm, rc);
    return 0;
}

static int cond_main(void *arg, void **result)
{
    (void)arg, (void)result;
    condcase c = {.lock = COSYNC_LOCK_INIT};
    cosync_cond_init(&c.cond, &c.lock);
    int64_t t0 = cosync_now();
    c.at = t0 + SEC(1);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, cond_body, &c, NULL));
    CHECK_OK(cosync_yield()); /* it waits on the condition */
    CHECK_OK(cosync_lock_acquire(&c.lock, COSYNC_FOREVER));
    CHECK_OK(cosync_sleep(SEC(3))); /* holding the lock past the deadline */
    CHECK_OK(cosync_lock_release(&c.lock));
    CHECK_EQ(join_status(t), 0);
    CHECK_ERR(c.rc, COSYNC_ETIMEDOUT);
    CHECK(c.held);
    CHECK_EQ(c.back, t0 + SEC(3));
    return 0;
}

TEST(expiry_in_condition_wait)
{
    run_main_ok(cond_main, NULL);
}

/* An awaited task: the expiry is passed on to it, and the block waits for
 * its clean-up, as `async with timeout(t): await task` does. */
static int cleanup_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(SEC(1))); /* the clean-up */
    return rc;
}

static int await_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, cleanup_task, NULL, NULL));
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, t0 + SEC(2)));
    int status = 0;
    int rc = cosync_task_await(t, &status, NULL, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + SEC(3));
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
    CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(expiry_passed_to_awaited_task)
{
    run_main_ok(await_main, NULL);
}

/* A block's expiry against a call's own deadline: whichever comes first
 * ends the call; the call's own reports COSYNC_ETIMEDOUT and leaves the
 * block unexpired. */
static int own_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event ev = COSYNC_EVENT_INIT;
    int64_t t0 = cosync_now();
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, t0 + SEC(2)));
    CHECK_ERR(cosync_event_wait(&ev, t0 + SEC(1)), COSYNC_ETIMEDOUT);
    CHECK(!cosync_timeout_expired(&tm));
    int rc = cosync_event_wait(&ev, t0 + SEC(3));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + SEC(2));
    CHECK_ERR(cosync_timeout_leave(&tm, rc), COSYNC_ETIMEDOUT);
    return 0;
}

TEST(block_and_call_deadlines)
{
    run_main_ok(own_deadline_main, NULL);
}

/* ------------------------------------------------------------------------
 * Many blocks, dense tasks, the end of a task, the loop's close
 * ---------------------------------------------------------------------- */

/* 1,000 tasks, each in a block whose deadline is one of ten instants:
 * each expires at its own, and at one instant in the order entered. */
#define CROWD 1000
typedef struct crowd {
    int64_t t0;
    int order[CROWD];
    int n;
} crowd;

typedef struct member {
    crowd *c;
    int i;
} member;

static int member_body(void *arg, void **result)
{
    (void)result;
    member *m = arg;
    int64_t at = m->c->t0 + MS(1 + m->i % 10);
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, at));
    int rc = cosync_sleep(SEC(1));
    CHECK_EQ(cosync_now(), at);
    m->c->order[m->c->n++] = m->i;
    return cosync_timeout_leave(&tm, rc) == COSYNC_ETIMEDOUT ? 0 : -1;
}

static int crowd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static crowd c;
    static member m[CROWD];
    static cosync_task t[CROWD];
    static cosync_outcome out[CROWD];
    c = (crowd){.t0 = cosync_now()};
    for (int i = 0; i < CROWD; i++) {
        m[i] = (member){&c, i};
        CHECK_OK(cosync_task_spawn(&t[i], member_body, &m[i], NULL));
    }
    CHECK_OK(cosync_gather(t, CROWD, out, COSYNC_FOREVER));
    for (int i = 0; i < CROWD; i++)
        CHECK_EQ(out[i].status, 0);
    CHECK_EQ(c.n, CROWD);
    for (int k = 0; k < CROWD; k++) /* by instant, then by entry */
        CHECK_EQ(c.order[k], (k % 100) * 10 + k / 100);
    return 0;
}

TEST(many_blocks)
{
    run_main_ok(crowd_main, NULL);
}

/* Dense tasks keep their blocks in their own stacks: the blocks expire
 * while the tasks are away and other dense tasks run on the same stack. */
static int dense_body(void *arg, void **result)
{
    (void)result;
    int64_t at = *(int64_t *)arg;
    cosync_timeout tm;
    char pattern[512];
    memset(pattern, (int)(at & 0x7f), sizeof pattern);
    CHECK_OK(cosync_timeout_enter(&tm, at));
    int rc = cosync_sleep(SEC(10));
    CHECK_EQ(cosync_now(), at);
    for (size_t i = 0; i < sizeof pattern; i++)
        CHECK_EQ(pattern[i], (char)(at & 0x7f));
    CHECK(cosync_timeout_expired(&tm));
    return cosync_timeout_leave(&tm, rc) == COSYNC_ETIMEDOUT ? 0 : -1;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 64 };
    int64_t at[N];
    cosync_task t[N];
    cosync_outcome out[N];
    int64_t t0 = cosync_now();
    for (int i = 0; i < N; i++) {
        at[i] = t0 + MS(1 + (i * 7) % N);
        CHECK_OK(cosync_task_spawn(&t[i], dense_body, &at[i], &(cosync_task_opts){.dense = true}));
    }
    CHECK_OK(cosync_gather(t, N, out, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_EQ(out[i].status, 0);
    return 0;
}

TEST(dense_tasks)
{
    run_main_ok(dense_main, NULL);
}

/* A task that ends inside its blocks (entered in a function that returned
 * without leaving): its finish closes them, disarms their timers, frees
 * their nodes and says so on the report stream. One of them expires
 * first, after the frame it was entered in has gone. */
static void enter_and_forget(int64_t first, int64_t second)
{
    cosync_timeout a, b;
    CHECK_OK(cosync_timeout_enter(&a, first));
    CHECK_OK(cosync_timeout_enter(&b, second));
}

static int forgets(void *arg, void **result)
{
    (void)arg, (void)result;
    enter_and_forget(cosync_deadline_after(SEC(1)), cosync_deadline_after(SEC(100)));
    char scribble[256];
    memset(scribble, 0xa5, sizeof scribble); /* over the frames they were in */
    CHECK_EQ(armed_timers(), 2);
    int rc = cosync_sleep(SEC(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(scribble[0], (char)0xa5);
    return 0;
}

static int enter_leave_arg(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(1))));
    return cosync_timeout_leave(&tm, cosync_yield());
}

static void ends_inside_its_blocks(bool dense)
{
    long live = atomic_load(&cosync__mem_live);
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, forgets, NULL,
                               &(cosync_task_opts){.name = "forgetful", .dense = dense}));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_EQ(status, COSYNC_ECANCELED); /* it was cancelled, and never withdrew it */
    CHECK_STREQ(capture_text(&cap), "cosync: task 'forgetful' (#1) ended without leaving 2 timeout "
                                    "blocks (cosync_timeout_leave)\n");
    /* its record, reused, starts with no scope: a block entered and left
     * there leaves nothing for the finish to close (the body's argument
     * lies where the innermost block is kept) */
    static char arg[256];
    cosync_task next;
    CHECK_OK(
        cosync_loop_spawn(loop, &next, enter_leave_arg, arg, &(cosync_task_opts){.dense = dense}));
    CHECK_OK(cosync_loop_run(loop, next, &status, NULL));
    CHECK_OK(status);
    CHECK_EQ(count_lines(capture_text(&cap)), 1);
    end_loop(loop); /* no timer left */
    capture_free(&cap);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

TEST(task_ends_inside_its_blocks)
{
    ends_inside_its_blocks(false);
    ends_inside_its_blocks(true); /* a dense task's end takes another path */
}

/* The loop's close cancels a task in a block; it leaves the block on its
 * way out, and nothing is left. */
static int closing_body(void *arg, void **result)
{
    (void)result;
    int *got = arg;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(100))));
    int rc = cosync_sleep(SEC(1000));
    got[0] = rc;
    got[1] = cosync_timeout_leave(&tm, rc);
    return got[1];
}

static int closing_main(void *arg, void **result)
{
    (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, closing_body, arg, NULL));
    CHECK_OK(cosync_task_detach(t));
    CHECK_OK(cosync_yield());
    return 0;
}

TEST(loop_close_inside_a_block)
{
    long live = atomic_load(&cosync__mem_live);
    int got[2] = {1, 1};
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, closing_main, got, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(got[0], COSYNC_ECANCELED);
    CHECK_ERR(got[1], COSYNC_ECANCELED); /* not expired: the close's cancel passes */
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

/* A task blocked for ever in a block with a deadline is not a deadlock:
 * the virtual clock goes to the deadline. Without one it is, and the
 * report says so. */
static int forever_in_block(void *arg, void **result)
{
    (void)result;
    int64_t deadline = *(int64_t *)arg;
    cosync_event never = COSYNC_EVENT_INIT;
    cosync_timeout tm;
    CHECK_OK(cosync_timeout_enter(&tm, deadline));
    return cosync_timeout_leave(&tm, cosync_event_wait(&never, COSYNC_FOREVER));
}

TEST(deadlock_and_blocks)
{
    cosync_loop *loop = new_loop();
    int64_t deadline = cosync_loop_now(loop) + SEC(30);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, forever_in_block, &deadline, NULL));
    int status = 0;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_EQ(status, COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_loop_now(loop), deadline);
    end_loop(loop);

    capture cap;
    int64_t forever = COSYNC_FOREVER;
    loop = deadlock_loop(&cap, forever_in_block, &forever, "stuck", &m);
    CHECK(strstr(capture_text(&cap), "'stuck'") != NULL);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&cap);
}

/* Every allocation the enter makes, failing: COSYNC_ENOMEM, nothing
 * entered, nothing armed, nothing leaked. */
static int enomem_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_timeout tm;
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    int rc = cosync_timeout_enter(&tm, cosync_deadline_after(SEC(1)));
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_EQ(armed_timers(), 0);
    CHECK_ERR(cosync_timeout_leave(&tm, 0), COSYNC_EPERM);
    /* and the next one works */
    CHECK_OK(cosync_timeout_enter(&tm, cosync_deadline_after(SEC(1))));
    CHECK_ERR(cosync_timeout_leave(&tm, cosync_sleep(SEC(2))), COSYNC_ETIMEDOUT);
    return 0;
}

TEST(allocation_fails)
{
    long live = atomic_load(&cosync__mem_live);
    run_main_ok(enomem_main, NULL);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

int main(void)
{
    RUN(timeout_basic);
    RUN(timeout_at_basic);
    RUN(nested_timeouts);
    RUN(timeout_not_called);
    RUN(timeout_disabled);
    RUN(timeout_zero);
    RUN(foreign_exception_passed);
    RUN(foreign_exception_on_timeout);
    RUN(foreign_cancel_doesnt_timeout_if_not_expired);
    RUN(outer_task_is_not_cancelled);
    RUN(nested_timeouts_concurrent);
    RUN(nested_timeouts_loop_busy);
    RUN(reschedule);
    RUN(reschedule_earlier);
    RUN(expiring_block_refuses_reschedule);
    RUN(nested_timeout_in_finally);
    RUN(timeout_after_cancellation);
    RUN(misuse);
    RUN(leave_by_another_task);
    RUN(forged_blocks);
    RUN(reschedule_from_another_loop);
    RUN(pending_cancel_survives_block);
    RUN(blocks_and_task_groups);
    RUN(expiry_after_grant);
    RUN(expiry_while_ready);
    RUN(expiry_and_cancel_together);
    RUN(expiry_in_lock_queue);
    RUN(expiry_in_condition_wait);
    RUN(expiry_passed_to_awaited_task);
    RUN(block_and_call_deadlines);
    RUN(many_blocks);
    RUN(dense_tasks);
    RUN(task_ends_inside_its_blocks);
    RUN(loop_close_inside_a_block);
    RUN(deadlock_and_blocks);
    RUN(allocation_fails);
    return 0;
}
