/*
 * test_future_event.c - cosync_future (asyncio.Future) and cosync_event
 * (asyncio.Event; the cases of CPython's test_locks.py EventTests that
 * apply are ported).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define EFAIL1 (-1001)

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* ------------------------------------------------------------------------
 * Future
 * ---------------------------------------------------------------------- */

#define NWAITERS 100

typedef struct fwaiter {
    cosync_future *f;
    int64_t delay;    /* sleep before waiting */
    int64_t deadline; /* of the wait */
    int checkpoint;   /* < 0: none */
    /* observed */
    int rc;
    int status;
    void *value;
    int64_t woke_at;
} fwaiter;

static int fwaiter_fn(void *arg, void **result)
{
    (void)result;
    fwaiter *w = arg;
    if (w->delay)
        CHECK_OK(cosync_sleep(w->delay));
    w->rc = cosync_future_wait(w->f, w->deadline);
    w->woke_at = cosync_now();
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    w->value = (void *)0xdead;
    w->status = cosync_future_result(w->f, &w->value);
    return 0;
}

static cosync_task spawn_fwaiter(fwaiter *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, fwaiter_fn, w, NULL));
    return t;
}

static int future_many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f;
    cosync_future_init(&f);
    fwaiter w[NWAITERS];
    cosync_task t[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        /* they wait in the reverse order of their spawning */
        w[i] = (fwaiter){.f = &f,
                         .delay = COSYNC_US(NWAITERS - i),
                         .deadline = COSYNC_FOREVER,
                         .checkpoint = NWAITERS - 1 - i,
                         .rc = 1};
        t[i] = spawn_fwaiter(&w[i]);
    }
    CHECK_OK(cosync_sleep(COSYNC_US(NWAITERS + 1)));
    CHECK(!cosync_future_done(&f));
    CHECK_OK(cosync_future_set_result(&f, (void *)0x1234));
    CHECK(cosync_future_done(&f));
    CHECK(!cosync_future_cancelled(&f));
    CHECK_OK(cosync_gather(t, NWAITERS, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(NWAITERS);
    for (int i = 0; i < NWAITERS; i++) {
        CHECK_OK(w[i].rc);
        CHECK_OK(w[i].status);
        CHECK(w[i].value == (void *)0x1234);
        CHECK_EQ(w[i].woke_at, t0 + COSYNC_US(NWAITERS + 1));
    }
    void *v = NULL;
    CHECK_OK(cosync_future_result(&f, &v));
    CHECK(v == (void *)0x1234);
    CHECK_OK(cosync_future_result(&f, NULL));
    return 0;
}

TEST(future_many_waiters_woken_in_wait_order)
{
    CHECK_OK(run_main(future_many_main, NULL));
}

static int future_error_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_future f = COSYNC_FUTURE_INIT;
    /* a non-negative error is refused and changes nothing */
    CHECK_ERR(cosync_future_set_error(&f, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_future_set_error(&f, 5), COSYNC_EINVAL);
    /* the status result() gives a pending future is no failure to set */
    CHECK_ERR(cosync_future_set_error(&f, COSYNC_EAGAIN), COSYNC_EINVAL);
    CHECK(!cosync_future_done(&f));
    CHECK_ERR(cosync_future_result(&f, NULL), COSYNC_EAGAIN);

    fwaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (fwaiter){.f = &f, .deadline = COSYNC_FOREVER, .checkpoint = i, .rc = 1};
        t[i] = spawn_fwaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_future_set_error(&f, EFAIL1));
    CHECK(cosync_future_done(&f));
    CHECK(!cosync_future_cancelled(&f));
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(w[i].rc); /* the wait succeeded; the future failed */
        CHECK_ERR(w[i].status, EFAIL1);
        CHECK_NULL(w[i].value);
    }
    /* set twice: EALREADY, nothing changes */
    CHECK_ERR(cosync_future_set_result(&f, (void *)1), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_set_error(&f, -7), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_cancel(&f), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_set_error(&f, 3), COSYNC_EINVAL);
    void *v = (void *)0x99;
    CHECK_ERR(cosync_future_result(&f, &v), EFAIL1);
    CHECK_NULL(v);
    CHECK(!cosync_future_cancelled(&f));
    return 0;
}

TEST(future_set_error)
{
    CHECK_OK(run_main(future_error_main, NULL));
}

static int future_twice_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_future f;
    cosync_future_init(&f);
    CHECK_OK(cosync_future_set_result(&f, (void *)0x10));
    CHECK_ERR(cosync_future_set_result(&f, (void *)0x20), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_set_error(&f, EFAIL1), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_cancel(&f), COSYNC_EALREADY);
    void *v = NULL;
    CHECK_OK(cosync_future_result(&f, &v));
    CHECK(v == (void *)0x10);
    CHECK(!cosync_future_cancelled(&f));
    /* cosync_future_init makes it pending again */
    cosync_future_init(&f);
    CHECK(!cosync_future_done(&f));
    CHECK_ERR(cosync_future_result(&f, &v), COSYNC_EAGAIN);
    CHECK(v == (void *)0x10); /* untouched while pending */
    return 0;
}

TEST(future_set_twice_is_ealready)
{
    CHECK_OK(run_main(future_twice_main, NULL));
}

static int future_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    fwaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (fwaiter){.f = &f, .deadline = COSYNC_FOREVER, .checkpoint = i, .rc = 1};
        t[i] = spawn_fwaiter(&w[i]);
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_OK(cosync_future_cancel(&f));
    CHECK(cosync_future_done(&f));
    CHECK(cosync_future_cancelled(&f));
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(w[i].rc); /* the wait itself was not cancelled */
        CHECK_ERR(w[i].status, COSYNC_ECANCELED);
        CHECK_NULL(w[i].value);
        CHECK_EQ(w[i].woke_at, AT(5));
    }
    CHECK_ERR(cosync_future_result(&f, NULL), COSYNC_ECANCELED);
    CHECK_ERR(cosync_future_cancel(&f), COSYNC_EALREADY);
    CHECK_ERR(cosync_future_set_result(&f, NULL), COSYNC_EALREADY);
    CHECK(cosync_future_cancelled(&f));
    /* the caller was not cancelled */
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    return 0;
}

TEST(future_cancel_wakes_waiters)
{
    CHECK_OK(run_main(future_cancel_main, NULL));
}

static int future_done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_future f = COSYNC_FUTURE_INIT;
    CHECK_OK(cosync_future_set_result(&f, (void *)7));
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)2, NULL));
    CHECKPOINT(0);
    /* complete: returns at once whatever the deadline; o does not run */
    CHECK_OK(cosync_future_wait(&f, COSYNC_FOREVER));
    CHECK_OK(cosync_future_wait(&f, 0));
    CHECK_OK(cosync_future_wait(&f, 1)); /* a deadline long passed */
    CHECKPOINT(1);
    void *v = NULL;
    CHECK_OK(cosync_future_result(&f, &v));
    CHECK(v == (void *)7);
    join_ok(o);
    return 0;
}

TEST(future_wait_on_done_future_does_not_suspend)
{
    CHECK_OK(run_main(future_done_main, NULL));
    CHECKPOINTS_DONE(3);
}

static int future_timeout_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    fwaiter w[3] = {
        {.f = &f, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1},
        {.f = &f, .deadline = AT(10), .checkpoint = 0, .rc = 1},
        {.f = &f, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_fwaiter(&w[i]);
    CHECK_OK(cosync_sleep(COSYNC_MS(20)));
    CHECKPOINTS_DONE(1);
    CHECK_ERR(w[1].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[1].woke_at, AT(10));
    CHECK_ERR(w[1].status, COSYNC_EAGAIN); /* still pending */
    CHECK_OK(cosync_task_join(t[1], NULL, NULL, 0));
    CHECK(!cosync_future_done(&f));
    /* the set wakes only the two still waiting */
    CHECK_OK(cosync_future_set_result(&f, (void *)5));
    join_ok(t[0]);
    join_ok(t[2]);
    CHECK_OK(w[0].rc);
    CHECK_OK(w[2].rc);
    CHECK(w[0].value == (void *)5);
    CHECK(w[2].value == (void *)5);
    CHECK_EQ(w[0].woke_at, AT(20));
    return 0;
}

TEST(future_wait_deadline_passes_waiter_removed)
{
    CHECK_OK(run_main(future_timeout_main, NULL));
}

static int future_cancelled_waiter_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    fwaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (fwaiter){.f = &f, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
        t[i] = spawn_fwaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t[1]));
    join_expect(t[1], COSYNC_ECANCELED); /* it returned 0 after a cancellation */
    CHECK_ERR(w[1].rc, COSYNC_ECANCELED);
    CHECK_ERR(w[1].status, COSYNC_EAGAIN);
    CHECK(!cosync_future_done(&f));
    CHECK(!cosync_future_cancelled(&f));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_future_set_result(&f, (void *)9));
    join_ok(t[0]);
    join_ok(t[2]);
    CHECK(w[0].value == (void *)9);
    CHECK(w[2].value == (void *)9);
    CHECK_EQ(w[2].woke_at, AT(1));
    return 0;
}

TEST(future_cancelled_waiter_does_not_disturb_others)
{
    CHECK_OK(run_main(future_cancelled_waiter_main, NULL));
}

static int future_eagain_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)2, NULL));
    CHECKPOINT(0);
    CHECK_ERR(cosync_future_wait(&f, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_future_wait(&f, t0), COSYNC_ETIMEDOUT); /* passed: no suspension */
    CHECK_ERR(cosync_future_result(&f, NULL), COSYNC_EAGAIN);
    CHECK_EQ(cosync_now(), t0);
    CHECKPOINT(1);
    join_ok(o);
    /* nobody is left waiting: a set wakes nothing and works */
    CHECK_OK(cosync_future_set_result(&f, NULL));
    return 0;
}

TEST(future_wait_deadline_zero_is_eagain)
{
    CHECK_OK(run_main(future_eagain_main, NULL));
    CHECKPOINTS_DONE(3);
}

static cosync_future static_future = COSYNC_FUTURE_INIT;

static int future_static_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(!cosync_future_done(&static_future));
    CHECK(!cosync_future_cancelled(&static_future));
    CHECK_ERR(cosync_future_result(&static_future, NULL), COSYNC_EAGAIN);
    fwaiter w = {.f = &static_future, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
    cosync_task t = spawn_fwaiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_future_set_result(&static_future, (void *)3));
    join_ok(t);
    CHECK(w.value == (void *)3);
    return 0;
}

TEST(future_static_initialiser)
{
    CHECK_OK(run_main(future_static_main, NULL));
}

/* A task that waits on @f (or an event) and records what it got. */
static int fwait_record(void *arg, void **result)
{
    (void)result;
    fwaiter *w = arg;
    w->rc = cosync_future_wait(w->f, w->deadline);
    return 0;
}

TEST(future_bound_to_one_loop_while_it_has_waiters)
{
    cosync_future f = COSYNC_FUTURE_INIT;
    /* outside a task */
    CHECK_ERR(cosync_future_wait(&f, COSYNC_FOREVER), COSYNC_EPERM);

    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    /* loop a: a task blocks on f; run a until another task is done */
    fwaiter wa = {.f = &f, .deadline = COSYNC_FOREVER, .rc = 1};
    cosync_task ta, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, fwait_record, &wa, NULL));
    spawn_and_run(a, &stopper, checkpoint_arg, (void *)0);
    CHECK(!cosync_task_done(ta));
    CHECK_EQ(wa.rc, 1);

    /* loop b: f is bound to a */
    fwaiter wb = {.f = &f, .deadline = COSYNC_FOREVER, .rc = 1};
    cosync_task tb;
    spawn_and_run(b, &tb, fwait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    /* deadline 0 too: the binding is checked first */
    wb.rc = 1;
    wb.deadline = 0;
    spawn_and_run(b, &tb, fwait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);

    /* a's waiter goes away (cancelled): f is free again */
    CHECK_OK(cosync_task_cancel(ta));
    int st = 0;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK_ERR(wa.rc, COSYNC_ECANCELED);

    /* now b can wait on it (with a deadline: then it is free again) */
    wb.rc = 1;
    wb.deadline = COSYNC_SEC(1) + COSYNC_MS(10); /* the virtual clock starts at 1 s */
    spawn_and_run(b, &tb, fwait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_ETIMEDOUT);

    /* and a again, until it is set */
    wa.rc = 1;
    wa.deadline = COSYNC_FOREVER;
    CHECK_OK(cosync_loop_spawn(a, &ta, fwait_record, &wa, NULL));
    spawn_and_run(a, &stopper, checkpoint_arg, (void *)1);
    wb.rc = 1;
    spawn_and_run(b, &tb, fwait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    CHECK_OK(cosync_future_set_result(&f, (void *)1)); /* from outside any loop */
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wa.rc);
    /* done: any loop's wait returns at once */
    wb.rc = 1;
    spawn_and_run(b, &tb, fwait_record, &wb);
    CHECK_OK(wb.rc);

    end_loop(a);
    end_loop(b);
    CHECKPOINTS_DONE(2);
}

/* ------------------------------------------------------------------------
 * Event (CPython test_locks.py EventTests)
 * ---------------------------------------------------------------------- */

typedef struct ewaiter {
    cosync_event *e;
    int64_t deadline;
    int checkpoint; /* < 0: none */
    int rc;
    int64_t woke_at;
    uint64_t woke_switches; /* switches() when the wait returned */
    bool set_when_woken;
} ewaiter;

static int ewaiter_fn(void *arg, void **result)
{
    (void)result;
    ewaiter *w = arg;
    w->rc = cosync_event_wait(w->e, w->deadline);
    w->woke_at = cosync_now();
    w->woke_switches = switches();
    w->set_when_woken = cosync_event_is_set(w->e);
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    return 0;
}

static cosync_task spawn_ewaiter(ewaiter *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, ewaiter_fn, w, NULL));
    return t;
}

static int event_wait_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_wait */
    cosync_event e;
    cosync_event_init(&e);
    CHECK(!cosync_event_is_set(&e));
    ewaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = i + 1, .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(3)));
    for (int i = 0; i < 3; i++)
        CHECK_EQ(w[i].rc, 1);
    CHECKPOINT(0);
    CHECK_OK(cosync_event_set(&e));
    CHECK(cosync_event_is_set(&e));
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(4);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, AT(3));
        CHECK(w[i].set_when_woken);
    }
    /* a waiter that comes after the set returns at once */
    ewaiter late = {.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
    cosync_task lt = spawn_ewaiter(&late);
    join_ok(lt);
    CHECK_OK(late.rc);
    return 0;
}

TEST(event_set_wakes_every_waiter)
{
    CHECK_OK(run_main(event_wait_main, NULL));
}

/* test_wait's order: a task spawned before the set, not yet run, runs
 * before the waiters the set wakes (they queue behind it), and its wait
 * returns at once. */
static int event_wait_order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event e = COSYNC_EVENT_INIT;
    ewaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 2; i++) {
        w[i] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = i + 1, .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(w[0].rc, 1);
    CHECK_EQ(w[1].rc, 1);
    w[2] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = 0, .rc = 1};
    t[2] = spawn_ewaiter(&w[2]);
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_yield());
    /* 3, 1, 2 in asyncio's numbering: the late one's wait did not
     * suspend, or it would have come after the others */
    CHECKPOINTS_DONE(3);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(w[i].rc);
        CHECK(cosync_task_done(t[i]));
    }
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(event_set_runs_a_task_queued_before_it_first)
{
    CHECK_OK(run_main(event_wait_order_main, NULL));
}

static int event_wait_on_set_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* test_wait_on_set */
    cosync_event e = COSYNC_EVENT_INIT;
    CHECK_OK(cosync_event_set(&e));
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)2, NULL));
    CHECKPOINT(0);
    CHECK_OK(cosync_event_wait(&e, COSYNC_FOREVER));
    CHECK_OK(cosync_event_wait(&e, 0));
    CHECK_OK(cosync_event_wait(&e, 1));
    CHECKPOINT(1); /* o has not run */
    join_ok(o);
    CHECKPOINTS_DONE(3);
    CHECK(cosync_event_is_set(&e));
    return 0;
}

TEST(event_wait_on_set_returns_at_once)
{
    CHECK_OK(run_main(event_wait_on_set_main, NULL));
}

static size_t event_waiters_in_dump(cosync_event *e, char **text);

static int event_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_wait_cancel, and a cancelled waiter does not block the others */
    cosync_event e = COSYNC_EVENT_INIT;
    ewaiter w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t[0]));
    join_expect(t[0], COSYNC_ECANCELED);
    CHECK_ERR(w[0].rc, COSYNC_ECANCELED);
    CHECK(!cosync_event_is_set(&e));
    char *d;
    CHECK_EQ(event_waiters_in_dump(&e, &d), 2); /* it left the event's waiters */
    free(d);
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    CHECK_OK(cosync_event_set(&e));
    join_ok(t[1]);
    join_ok(t[2]);
    CHECK_OK(w[1].rc);
    CHECK_OK(w[2].rc);
    CHECK_EQ(w[2].woke_at, AT(2));
    return 0;
}

TEST(event_cancelled_waiter_does_not_block_others)
{
    CHECK_OK(run_main(event_cancel_main, NULL));
}

static int event_clear_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* test_clear */
    cosync_event e = COSYNC_EVENT_INIT;
    CHECK(!cosync_event_is_set(&e));
    CHECK_OK(cosync_event_set(&e));
    CHECK(cosync_event_is_set(&e));
    CHECK_OK(cosync_event_clear(&e));
    CHECK(!cosync_event_is_set(&e));
    CHECK_OK(cosync_event_clear(&e));
    CHECK(!cosync_event_is_set(&e));
    /* cleared: a wait blocks again */
    CHECK_ERR(cosync_event_wait(&e, 0), COSYNC_EAGAIN);
    t0 = cosync_now();
    CHECK_ERR(cosync_event_wait(&e, AT(5)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(5));
    return 0;
}

TEST(event_clear)
{
    CHECK_OK(run_main(event_clear_main, NULL));
}

static int event_clear_with_waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_clear_with_waiters: set() wakes the waiters present even if the
     * event is cleared before they run */
    cosync_event e = COSYNC_EVENT_INIT;
    ewaiter w[2];
    cosync_task t[2];
    for (int i = 0; i < 2; i++) {
        w[i] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_event_clear(&e));
    CHECK(!cosync_event_is_set(&e));
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_event_clear(&e));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(w[i].rc);
        CHECK(!w[i].set_when_woken);
        CHECK_EQ(w[i].woke_at, t0);
    }
    /* nobody is left on the event: a new waiter blocks until the next set */
    ewaiter n = {.e = &e, .deadline = AT(5), .checkpoint = -1, .rc = 1};
    cosync_task nt = spawn_ewaiter(&n);
    join_ok(nt);
    CHECK_ERR(n.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(n.woke_at, AT(5));
    return 0;
}

TEST(event_clear_with_waiters)
{
    CHECK_OK(run_main(event_clear_with_waiters_main, NULL));
}

static int event_timeout_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_event e = COSYNC_EVENT_INIT;
    ewaiter w[3] = {
        {.e = &e, .deadline = AT(10), .checkpoint = -1, .rc = 1},
        {.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = 0, .rc = 1},
        {.e = &e, .deadline = AT(5), .checkpoint = -1, .rc = 1},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_ewaiter(&w[i]);
    CHECK_OK(cosync_sleep(COSYNC_MS(20)));
    CHECK_ERR(w[0].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[0].woke_at, AT(10));
    CHECK_ERR(w[2].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[2].woke_at, AT(5));
    CHECK_EQ(w[1].rc, 1);
    CHECK_OK(cosync_task_join(t[0], NULL, NULL, 0));
    CHECK_OK(cosync_task_join(t[2], NULL, NULL, 0));
    CHECKPOINTS_DONE(0);
    CHECK_OK(cosync_event_set(&e));
    join_ok(t[1]);
    CHECKPOINTS_DONE(1);
    CHECK_OK(w[1].rc);
    CHECK_EQ(w[1].woke_at, AT(20));
    /* deadline 0 on a clear event */
    CHECK_OK(cosync_event_clear(&e));
    CHECK_ERR(cosync_event_wait(&e, 0), COSYNC_EAGAIN);
    return 0;
}

TEST(event_waiters_that_time_out_are_removed)
{
    CHECK_OK(run_main(event_timeout_main, NULL));
}

/* Waiters 0..NQ-1 wait in index order; those in @gone leave (by
 * cancellation at AT(0), or by their deadline at AT(5)); a set at AT(10)
 * wakes the others, which return 0 in the order they began to wait: a
 * leaver at the head, in the middle or at the tail neither blocks nor
 * reorders the rest, and the set does not touch it again. */
#define NQ 5

typedef struct leave_case {
    bool gone[NQ];
    bool by_deadline;
} leave_case;

static int event_leave_main(void *arg, void **result)
{
    (void)result;
    const leave_case *lc = arg;
    t0 = cosync_now();
    cosync_event e = COSYNC_EVENT_INIT;
    ewaiter w[NQ];
    cosync_task t[NQ];
    int cp = 0;
    for (int i = 0; i < NQ; i++) {
        bool gone = lc->gone[i];
        w[i] = (ewaiter){.e = &e,
                         .deadline = gone && lc->by_deadline ? AT(5) : COSYNC_FOREVER,
                         .checkpoint = gone ? -1 : cp++,
                         .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_yield()); /* they wait in spawn order */
    if (!lc->by_deadline)
        for (int i = 0; i < NQ; i++)
            if (lc->gone[i])
                CHECK_OK(cosync_task_cancel(t[i]));
    CHECK_OK(cosync_sleep_until(AT(10)));
    for (int i = 0; i < NQ; i++) {
        if (!lc->gone[i]) {
            CHECK_EQ(w[i].rc, 1); /* still waiting */
            continue;
        }
        CHECK(cosync_task_done(t[i]));
        if (lc->by_deadline) {
            join_ok(t[i]);
            CHECK_ERR(w[i].rc, COSYNC_ETIMEDOUT);
            CHECK_EQ(w[i].woke_at, AT(5));
        } else {
            join_expect(t[i], COSYNC_ECANCELED);
            CHECK_ERR(w[i].rc, COSYNC_ECANCELED);
            CHECK_EQ(w[i].woke_at, AT(0));
        }
        CHECK(!w[i].set_when_woken);
    }
    CHECKPOINTS_DONE(0);
    CHECK_OK(cosync_event_set(&e));
    CHECK_EQ(ready_tasks(), (size_t)cp); /* the set woke the rest, and only them */
    for (int i = 0; i < NQ; i++) {
        if (lc->gone[i])
            continue;
        join_ok(t[i]);
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, AT(10));
        CHECK(w[i].set_when_woken);
    }
    return 0;
}

TEST(event_cancelled_and_timed_out_waiters_at_head_middle_and_tail)
{
    static const int places[][NQ] = {
        {1, 0, 0, 0, 0}, /* head */
        {0, 0, 1, 0, 0}, /* middle */
        {0, 0, 0, 0, 1}, /* tail */
        {1, 0, 1, 0, 1}, /* all three */
    };
    for (int by_deadline = 0; by_deadline < 2; by_deadline++)
        for (size_t p = 0; p < sizeof places / sizeof places[0]; p++) {
            leave_case lc = {.by_deadline = by_deadline};
            int stay = NQ;
            for (int i = 0; i < NQ; i++) {
                lc.gone[i] = places[p][i];
                stay -= places[p][i];
            }
            CHECKPOINT_RESET();
            CHECK_OK(run_main(event_leave_main, &lc));
            CHECKPOINTS_DONE(stay); /* in wait order */
        }
}

/* A burst: a set with 100 waiters wakes them all within the call (no
 * switch); they return in the order they began to wait, each within two
 * scheduler steps of the one before (the first within two of the set): the
 * definition of burst_of_releases_with_many_waiters in test_lock.c. */
static int event_burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_event e = COSYNC_EVENT_INIT;
    static ewaiter w[NWAITERS];
    cosync_task t[NWAITERS];
    for (int i = 0; i < NWAITERS; i++) {
        w[i] = (ewaiter){.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = i, .rc = 1};
        t[i] = spawn_ewaiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(ready_tasks(), 0); /* all waiting */
    uint64_t sw = switches();
    CHECK_OK(cosync_event_set(&e));
    CHECK_EQ(switches(), sw);
    CHECK_EQ(ready_tasks(), NWAITERS);
    CHECK_OK(cosync_gather(t, NWAITERS, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(NWAITERS);
    CHECK_GT(w[0].woke_switches, sw);
    CHECK_LE(w[0].woke_switches - sw, 2);
    for (int i = 0; i < NWAITERS; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, t0);
        if (i > 0) {
            CHECK_GT(w[i].woke_switches, w[i - 1].woke_switches);
            CHECK_LE(w[i].woke_switches - w[i - 1].woke_switches, 2);
        }
    }
    return 0;
}

TEST(event_set_burst_wakes_100_waiters_in_order_two_steps_apart)
{
    CHECK_OK(run_main(event_burst_main, NULL));
}

/* test_repr: asyncio's repr shows [unset]/[set] and waiters:N. cosync has
 * is_set, and the loop dump (the text of the deadlock report) shows each
 * task waiting on the event, with " (with a deadline)" if it has one; a
 * waiter the set has woken is no longer waiting on it. */
static size_t count_substr(const char *s, const char *sub)
{
    size_t n = 0;
    for (const char *p = strstr(s, sub); p; p = strstr(p + 1, sub))
        n++;
    return n;
}

static size_t event_waiters_in_dump(cosync_event *e, char **text)
{
    int ntasks;
    *text = dump_text(&ntasks);
    CHECK_GT(ntasks, 0);
    char want[64];
    snprintf(want, sizeof want, "waits on event %p", (void *)e);
    return count_substr(*text, want);
}

static int event_repr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_event e = COSYNC_EVENT_INIT;
    char *d;
    CHECK(!cosync_event_is_set(&e));
    CHECK_EQ(event_waiters_in_dump(&e, &d), 0);
    free(d);

    ewaiter w[2] = {
        {.e = &e, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1},
        {.e = &e, .deadline = AT(10), .checkpoint = -1, .rc = 1},
    };
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], ewaiter_fn, &w[0], &(cosync_task_opts){.name = "w0"}));
    CHECK_OK(cosync_task_spawn(&t[1], ewaiter_fn, &w[1], &(cosync_task_opts){.name = "w1"}));
    CHECK_OK(cosync_yield());
    CHECK(!cosync_event_is_set(&e));
    CHECK_EQ(event_waiters_in_dump(&e, &d), 2);
    char want[160];
    snprintf(want, sizeof want, "  task 'w0' (#%llu) waits on event %p\n",
             (unsigned long long)cosync_task_id(t[0]), (void *)&e);
    if (!strstr(d, want))
        CHECK_STREQ(d, want);
    snprintf(want, sizeof want, "  task 'w1' (#%llu) waits on event %p (with a deadline)\n",
             (unsigned long long)cosync_task_id(t[1]), (void *)&e);
    if (!strstr(d, want))
        CHECK_STREQ(d, want);
    free(d);

    CHECK_OK(cosync_event_set(&e));
    CHECK(cosync_event_is_set(&e));
    CHECK_EQ(event_waiters_in_dump(&e, &d), 0); /* woken, not run yet */
    snprintf(want, sizeof want, "  task 'w0' (#%llu) is ready\n",
             (unsigned long long)cosync_task_id(t[0]));
    if (!strstr(d, want))
        CHECK_STREQ(d, want);
    free(d);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_OK(w[0].rc);
    CHECK_OK(w[1].rc);
    return 0;
}

TEST(event_state_and_waiters_show_in_the_dump)
{
    CHECK_OK(run_main(event_repr_main, NULL));
}

static int event_no_waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event e;
    cosync_event_init(&e);
    uint64_t sw = switches();
    /* set with nobody waiting; repeated set is harmless */
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_event_set(&e));
        CHECK(cosync_event_is_set(&e));
    }
    CHECK_EQ(switches(), sw);
    CHECK_EQ(ready_tasks(), 0);
    CHECK_OK(cosync_event_wait(&e, COSYNC_FOREVER));
    CHECK_OK(cosync_event_clear(&e));
    CHECK(!cosync_event_is_set(&e));
    return 0;
}

TEST(event_set_without_waiters_and_repeated_set)
{
    CHECK_OK(run_main(event_no_waiters_main, NULL));
}

static cosync_event static_event = COSYNC_EVENT_INIT;

static int event_static_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(!cosync_event_is_set(&static_event));
    ewaiter w = {.e = &static_event, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 1};
    cosync_task t = spawn_ewaiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(w.rc, 1);
    CHECK_OK(cosync_event_set(&static_event));
    join_ok(t);
    CHECK_OK(w.rc);
    return 0;
}

TEST(event_static_initialiser)
{
    CHECK_OK(run_main(event_static_main, NULL));
}

static int ewait_record(void *arg, void **result)
{
    (void)result;
    ewaiter *w = arg;
    w->rc = cosync_event_wait(w->e, w->deadline);
    return 0;
}

TEST(event_bound_to_one_loop_while_it_has_waiters)
{
    cosync_event e = COSYNC_EVENT_INIT;
    CHECK_ERR(cosync_event_wait(&e, COSYNC_FOREVER), COSYNC_EPERM); /* outside a task */

    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    ewaiter wa = {.e = &e, .deadline = COSYNC_FOREVER, .rc = 1};
    cosync_task ta, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, ewait_record, &wa, NULL));
    spawn_and_run(a, &stopper, checkpoint_arg, (void *)0);
    CHECK(!cosync_task_done(ta));

    ewaiter wb = {.e = &e, .deadline = COSYNC_FOREVER, .rc = 1};
    cosync_task tb;
    spawn_and_run(b, &tb, ewait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);

    /* a's waiter is cancelled: e is free again */
    CHECK_OK(cosync_task_cancel(ta));
    int st = 0;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_ERR(wa.rc, COSYNC_ECANCELED);

    /* b binds it now, and a is refused while b waits */
    wb.rc = 1;
    CHECK_OK(cosync_loop_spawn(b, &tb, ewait_record, &wb, NULL));
    spawn_and_run(b, &stopper, checkpoint_arg, (void *)1);
    wa.rc = 1;
    spawn_and_run(a, &ta, ewait_record, &wa);
    CHECK_ERR(wa.rc, COSYNC_EPERM);
    /* set from outside: b's waiter wakes, and e is free (and set) */
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_loop_run(b, tb, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wb.rc);
    wa.rc = 1;
    spawn_and_run(a, &ta, ewait_record, &wa);
    CHECK_OK(wa.rc);
    /* cleared again, a waits (with a deadline) and binds it only meanwhile */
    CHECK_OK(cosync_event_clear(&e));
    wa.rc = 1;
    wa.deadline = COSYNC_SEC(1) + COSYNC_MS(10);
    spawn_and_run(a, &ta, ewait_record, &wa);
    CHECK_ERR(wa.rc, COSYNC_ETIMEDOUT);
    wb.rc = 1;
    wb.deadline = 0;
    spawn_and_run(b, &tb, ewait_record, &wb);
    CHECK_ERR(wb.rc, COSYNC_EAGAIN); /* not EPERM: unbound */

    end_loop(a);
    end_loop(b);
    CHECKPOINTS_DONE(2);
}

/* A wait granted before a cancellation keeps its grant; the cancellation
 * is delivered at the next suspension (DESIGN.md section 3). */
typedef struct granted {
    cosync_future *f;
    cosync_event *e;
    int wait_rc;
    int next_rc;
} granted;

static int granted_fn(void *arg, void **result)
{
    (void)result;
    granted *g = arg;
    g->wait_rc =
        g->f ? cosync_future_wait(g->f, COSYNC_FOREVER) : cosync_event_wait(g->e, COSYNC_FOREVER);
    g->next_rc = cosync_sleep(COSYNC_MS(1));
    return 0;
}

static int granted_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    cosync_event e = COSYNC_EVENT_INIT;
    granted g[4] = {{.f = &f}, {.f = &f}, {.e = &e}, {.e = &e}};
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        g[i].wait_rc = g[i].next_rc = 1;
        CHECK_OK(cosync_task_spawn(&t[i], granted_fn, &g[i], NULL));
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_future_set_result(&f, NULL));
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_task_cancel(t[2]));
    cosync_outcome out[4];
    CHECK_OK(cosync_gather(t, 4, out, COSYNC_FOREVER));
    for (int i = 0; i < 4; i++)
        CHECK_OK(g[i].wait_rc);
    CHECK_ERR(g[0].next_rc, COSYNC_ECANCELED);
    CHECK_ERR(g[2].next_rc, COSYNC_ECANCELED);
    CHECK_OK(g[1].next_rc);
    CHECK_OK(g[3].next_rc);
    CHECK_EQ(out[0].status, COSYNC_ECANCELED);
    CHECK_EQ(out[1].status, 0);
    CHECK_EQ(out[2].status, COSYNC_ECANCELED);
    CHECK_EQ(out[3].status, 0);
    CHECK_EQ(cosync_now(), AT(1));
    return 0;
}

TEST(future_and_event_woken_waiter_cancelled_keeps_its_grant)
{
    CHECK_OK(run_main(granted_main, NULL));
}

/* A wait with a finite deadline granted before it: the grant disarms the
 * deadline's timer at once, before the waiter has even run (a timer left
 * armed would fire later into a task that is no longer waiting), and the
 * wait returns 0 at the grant's time. Two waiters, deadlines AT(10) and
 * AT(20), granted at AT(5). */
static int granted_before_deadline_main(void *arg, void **result)
{
    (void)result;
    bool future = arg != NULL;
    t0 = cosync_now();
    cosync_future f = COSYNC_FUTURE_INIT;
    cosync_event e = COSYNC_EVENT_INIT;
    fwaiter fw[2];
    ewaiter ew[2];
    cosync_task t[2];
    for (int i = 0; i < 2; i++) {
        int64_t deadline = AT(10 * (i + 1));
        if (future) {
            fw[i] = (fwaiter){.f = &f, .deadline = deadline, .checkpoint = -1, .rc = 1};
            t[i] = spawn_fwaiter(&fw[i]);
        } else {
            ew[i] = (ewaiter){.e = &e, .deadline = deadline, .checkpoint = -1, .rc = 1};
            t[i] = spawn_ewaiter(&ew[i]);
        }
    }
    CHECK_OK(cosync_sleep_until(AT(5)));
    CHECK_EQ(armed_timers(), 2); /* both still waiting, with their deadlines */
    if (future)
        CHECK_OK(cosync_future_set_result(&f, (void *)0x77));
    else
        CHECK_OK(cosync_event_set(&e));
    CHECK_EQ(armed_timers(), 0);
    CHECK_EQ(ready_tasks(), 2);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 2; i++) {
        CHECK_OK(future ? fw[i].rc : ew[i].rc);
        CHECK_EQ(future ? fw[i].woke_at : ew[i].woke_at, AT(5));
        if (future) {
            CHECK_OK(fw[i].status);
            CHECK(fw[i].value == (void *)0x77);
        }
    }
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_EQ(armed_timers(), 0);
    return 0;
}

TEST(future_and_event_wait_granted_before_its_deadline_returns_0_and_disarms_it)
{
    CHECK_OK(run_main(granted_before_deadline_main, NULL));      /* event */
    CHECK_OK(run_main(granted_before_deadline_main, (void *)1)); /* future */
}

int main(void)
{
    RUN(future_many_waiters_woken_in_wait_order);
    RUN(future_set_error);
    RUN(future_set_twice_is_ealready);
    RUN(future_cancel_wakes_waiters);
    RUN(future_wait_on_done_future_does_not_suspend);
    RUN(future_wait_deadline_passes_waiter_removed);
    RUN(future_cancelled_waiter_does_not_disturb_others);
    RUN(future_wait_deadline_zero_is_eagain);
    RUN(future_static_initialiser);
    RUN(future_bound_to_one_loop_while_it_has_waiters);
    RUN(event_set_wakes_every_waiter);
    RUN(event_set_runs_a_task_queued_before_it_first);
    RUN(event_wait_on_set_returns_at_once);
    RUN(event_cancelled_waiter_does_not_block_others);
    RUN(event_clear);
    RUN(event_clear_with_waiters);
    RUN(event_waiters_that_time_out_are_removed);
    RUN(event_cancelled_and_timed_out_waiters_at_head_middle_and_tail);
    RUN(event_set_burst_wakes_100_waiters_in_order_two_steps_apart);
    RUN(event_state_and_waiters_show_in_the_dump);
    RUN(event_set_without_waiters_and_repeated_set);
    RUN(event_static_initialiser);
    RUN(event_bound_to_one_loop_while_it_has_waiters);
    RUN(future_and_event_woken_waiter_cancelled_keeps_its_grant);
    RUN(future_and_event_wait_granted_before_its_deadline_returns_0_and_disarms_it);
    return 0;
}
