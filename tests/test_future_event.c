/*
 * test_future_event.c - cosync_future (asyncio.Future) and cosync_event
 * (asyncio.Event; the cases of CPython's test_locks.py EventTests that
 * apply are ported).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#include <stdint.h>
#include <stdlib.h>

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
    bool set_when_woken;
} ewaiter;

static int ewaiter_fn(void *arg, void **result)
{
    (void)result;
    ewaiter *w = arg;
    w->rc = cosync_event_wait(w->e, w->deadline);
    w->woke_at = cosync_now();
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
    RUN(event_wait_on_set_returns_at_once);
    RUN(event_cancelled_waiter_does_not_block_others);
    RUN(event_clear);
    RUN(event_clear_with_waiters);
    RUN(event_waiters_that_time_out_are_removed);
    RUN(event_set_without_waiters_and_repeated_set);
    RUN(event_static_initialiser);
    RUN(event_bound_to_one_loop_while_it_has_waiters);
    RUN(future_and_event_woken_waiter_cancelled_keeps_its_grant);
    return 0;
}
