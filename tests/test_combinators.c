/*
 * test_combinators.c - cosync_gather, cosync_wait_for, cosync_wait and
 * cosync_taskgroup (asyncio.gather, asyncio.wait_for, asyncio.wait,
 * asyncio.TaskGroup; the TaskGroup cases are ported from CPython's
 * Lib/test/test_asyncio/test_taskgroups.py where they apply).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fault.h"
#include "harness.h"

#define EFAIL1 (-1001)
#define EFAIL2 (-1002)
#define EFAIL3 (-1003)

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

static int64_t t0; /* the virtual time at which the current test's main started */

#define AT(ms) (t0 + COSYNC_MS(ms))

static bool stale(cosync_task t)
{
    return cosync_task_id(t) == 0 && cosync_task_join(t, NULL, NULL, 0) == COSYNC_ESRCH;
}

/* A configurable child: sleeps, then returns @rc with @res; if its sleep is
 * cancelled it cleans up (sleeping @cleanup) and ends cancelled, or, with
 * @ignore_cancel, un-cancels itself and returns @rc/@res anyway. */
typedef struct job {
    int64_t sleep;
    int rc;
    void *res;
    int64_t cleanup;
    bool ignore_cancel;
    int cancel_rc; /* status returned after a cancellation (ECANCELED by default) */
    /* observed */
    bool started;
    int sleep_rc;
    int cleanup_rc;
    int64_t woke_at;
    int64_t ended_at;
    int order; /* finishing order (1-based), see finish_seq */
} job;

static int finish_seq;

static int job_fn(void *arg, void **result)
{
    job *j = arg;
    j->started = true;
    j->sleep_rc = cosync_sleep(j->sleep);
    j->woke_at = cosync_now();
    int rc = j->rc;
    if (j->sleep_rc == COSYNC_ECANCELED) {
        if (j->cleanup)
            j->cleanup_rc = cosync_sleep(j->cleanup);
        if (j->ignore_cancel) {
            CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
        } else {
            rc = j->cancel_rc ? j->cancel_rc : COSYNC_ECANCELED;
        }
    }
    j->ended_at = cosync_now();
    j->order = ++finish_seq;
    *result = j->res;
    return rc;
}

static cosync_task spawn_job(job *j)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, job_fn, j, NULL));
    return t;
}

/* ------------------------------------------------------------------------
 * gather
 * ---------------------------------------------------------------------- */

typedef struct canceller {
    int64_t after;
    cosync_task victim;
} canceller;

static int canceller_fn(void *arg, void **result)
{
    (void)result;
    canceller *c = arg;
    CHECK_OK(cosync_sleep(c->after));
    CHECK_OK(cosync_task_cancel(c->victim));
    return 0;
}

static int gather_order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    finish_seq = 0;
    job j[5] = {
        {.sleep = COSYNC_MS(30), .res = (void *)0x10},
        {.sleep = COSYNC_MS(10), .rc = EFAIL1, .res = (void *)0x11},
        {.sleep = COSYNC_MS(20), .res = (void *)0x12},
        {.sleep = COSYNC_MS(5), .rc = EFAIL2, .res = (void *)0x13},
        {.sleep = COSYNC_MS(100), .res = (void *)0x14},
    };
    cosync_task t[5];
    for (int i = 0; i < 5; i++)
        t[i] = spawn_job(&j[i]);
    /* a third task cancels t[4] at 15 ms */
    canceller c = {COSYNC_MS(15), t[4]};
    cosync_task ct;
    CHECK_OK(cosync_task_spawn(&ct, canceller_fn, &c, NULL));

    cosync_outcome out[5];
    memset(out, 0x5a, sizeof out);
    CHECK_OK(cosync_gather(t, 5, out, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(30));

    CHECK_EQ(out[0].status, 0);
    CHECK(out[0].result == (void *)0x10);
    CHECK_EQ(out[1].status, EFAIL1);
    CHECK(out[1].result == (void *)0x11);
    CHECK_EQ(out[2].status, 0);
    CHECK(out[2].result == (void *)0x12);
    CHECK_EQ(out[3].status, EFAIL2);
    CHECK(out[3].result == (void *)0x13);
    CHECK_EQ(out[4].status, COSYNC_ECANCELED);
    /* the finishing order differed from the order of the outcomes */
    CHECK_EQ(j[3].order, 1);
    CHECK_EQ(j[1].order, 2);
    CHECK_EQ(j[4].order, 3);
    CHECK_EQ(j[2].order, 4);
    CHECK_EQ(j[0].order, 5);
    CHECK_EQ(j[4].woke_at, AT(15));
    for (int i = 0; i < 5; i++)
        CHECK(stale(t[i]));

    join_ok(ct);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(gather_results_in_order_each_with_its_status)
{
    CHECK_OK(run_main(gather_order_main, NULL));
}

static bool sentinel_ran;

static int sentinel_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    sentinel_ran = true;
    return 0;
}

static int gather_zero_main(void *arg, void **result)
{
    (void)arg, (void)result;
    sentinel_ran = false;
    cosync_task s;
    CHECK_OK(cosync_task_spawn(&s, sentinel_fn, NULL, NULL));
    CHECK_OK(cosync_gather(NULL, 0, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_gather(NULL, 0, NULL, 0));
    cosync_outcome out[1] = {{77, (void *)0x77}};
    cosync_task none[1] = {COSYNC_TASK_NONE};
    CHECK_OK(cosync_gather(none, 0, out, COSYNC_FOREVER));
    CHECK_EQ(out[0].status, 77); /* untouched */
    CHECK(!sentinel_ran);        /* no suspension */
    CHECK_OK(cosync_task_join(s, NULL, NULL, COSYNC_FOREVER));
    CHECK(sentinel_ran);
    return 0;
}

TEST(gather_of_zero_tasks)
{
    CHECK_OK(run_main(gather_zero_main, NULL));
}

static int gather_finished_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    for (intptr_t i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], return_arg, (void *)(0x100 + i), NULL));
    CHECK_OK(cosync_yield()); /* they all run and finish */
    for (int i = 0; i < 3; i++)
        CHECK(cosync_task_done(t[i]));
    sentinel_ran = false;
    cosync_task s;
    CHECK_OK(cosync_task_spawn(&s, sentinel_fn, NULL, NULL));
    uint64_t sw = switches();
    cosync_outcome out[3];
    /* a call that can complete at once succeeds whatever its deadline */
    CHECK_OK(cosync_gather(t, 3, out, 0));
    CHECK(!sentinel_ran);
    CHECK_EQ(switches(), sw);
    for (intptr_t i = 0; i < 3; i++) {
        CHECK_EQ(out[i].status, 0);
        CHECK(out[i].result == (void *)(0x100 + i));
        CHECK(stale(t[i]));
    }
    CHECK_OK(cosync_task_join(s, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(gather_of_finished_tasks_does_not_suspend)
{
    CHECK_OK(run_main(gather_finished_main, NULL));
}

/* A cancellation pending at the call: gather and wait_for over tasks that
 * have all finished complete at once, as a join of a finished task does
 * (asyncio's wait_for does not suspend either): the results come back, no
 * other task runs, and the request stays pending for the next suspension.
 * With one task still running the call suspends, and delivers it. */
static int pending_cancel_finished_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task self = cosync_task_current();
    for (int how = 0; how < 2; how++) { /* gather, wait_for */
        cosync_task t[2];
        for (intptr_t i = 0; i < 2; i++)
            CHECK_OK(cosync_task_spawn(&t[i], return_arg, (void *)(0x200 + i), NULL));
        CHECK_OK(cosync_yield()); /* they run and finish */
        sentinel_ran = false;
        cosync_task s;
        CHECK_OK(cosync_task_spawn(&s, sentinel_fn, NULL, NULL));
        CHECK_OK(cosync_task_cancel(self));
        uint64_t sw = switches();
        cosync_outcome out[2] = {{1, NULL}, {1, NULL}};
        if (how == 0) {
            CHECK_OK(cosync_gather(t, 2, out, COSYNC_FOREVER));
        } else {
            for (int i = 0; i < 2; i++)
                CHECK_OK(cosync_wait_for(t[i], &out[i].status, &out[i].result, COSYNC_FOREVER));
        }
        CHECK_EQ(switches(), sw);
        CHECK(!sentinel_ran);
        for (intptr_t i = 0; i < 2; i++) {
            CHECK_EQ(out[i].status, 0);
            CHECK(out[i].result == (void *)(0x200 + i));
            CHECK(stale(t[i]));
        }
        CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* delivered here */
        CHECK(sentinel_ran);
        CHECK_EQ(cosync_task_uncancel(self), 0);
        CHECK_OK(cosync_task_join(s, NULL, NULL, COSYNC_FOREVER));
    }

    /* the first finished, the second not: the call suspends and delivers */
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], return_arg, (void *)0x300, NULL));
    CHECK_OK(cosync_yield());
    job j = {.sleep = COSYNC_MS(100), .res = (void *)0x301};
    t[1] = spawn_job(&j);
    CHECK_OK(cosync_task_cancel(self));
    cosync_outcome out[2];
    CHECK_ERR(cosync_gather(t, 2, out, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(out[0].status, 0);
    CHECK(out[0].result == (void *)0x300);
    CHECK_EQ(out[1].status, COSYNC_ECANCELED);
    CHECK(!j.started); /* cancelled before it first ran */
    CHECK_EQ(cosync_task_uncancel(self), 0);
    CHECK_OK(cosync_yield()); /* nothing left pending */
    return 0;
}

TEST(pending_cancel_and_finished_tasks_complete_at_once)
{
    CHECK_OK(run_main(pending_cancel_finished_main, NULL));
}

static int gather_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    finish_seq = 0;
    job j[4] = {
        {.sleep = COSYNC_MS(10), .res = (void *)0xa},
        {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(5), .res = (void *)0xb},
        {.sleep = COSYNC_MS(200), .res = (void *)0xc},
        {.sleep = COSYNC_MS(20), .rc = EFAIL3, .res = (void *)0xd},
    };
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_job(&j[i]);
    cosync_outcome out[4];
    CHECK_ERR(cosync_gather(t, 4, out, AT(50)), COSYNC_ETIMEDOUT);
    /* the cancelled tasks were waited for: j[1]'s clean-up ran to its end */
    CHECK_EQ(cosync_now(), AT(55));
    CHECK_EQ(j[1].sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(j[1].woke_at, AT(50));
    CHECK_EQ(j[1].cleanup_rc, 0);
    CHECK_EQ(j[1].ended_at, AT(55));
    CHECK_EQ(j[2].sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(j[2].woke_at, AT(50));
    CHECK_EQ(out[0].status, 0);
    CHECK(out[0].result == (void *)0xa);
    CHECK_EQ(out[1].status, COSYNC_ECANCELED);
    CHECK(out[1].result == (void *)0xb);
    CHECK_EQ(out[2].status, COSYNC_ECANCELED);
    CHECK(out[2].result == (void *)0xc);
    CHECK_EQ(out[3].status, EFAIL3);
    CHECK(out[3].result == (void *)0xd);
    for (int i = 0; i < 4; i++)
        CHECK(stale(t[i]));
    CHECK_EQ(task_records(), 1);
    /* the caller itself was not cancelled */
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    return 0;
}

TEST(gather_deadline_passes_cancels_and_collects_the_rest)
{
    CHECK_OK(run_main(gather_deadline_main, NULL));
}

static int gather_deadline0_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_task done;
    CHECK_OK(cosync_task_spawn(&done, return_arg, (void *)0x1, NULL));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(done));
    job j[2] = {{.sleep = COSYNC_MS(10)}, {.sleep = COSYNC_MS(10)}};
    cosync_task t[3] = {done, spawn_job(&j[0]), spawn_job(&j[1])};
    cosync_outcome out[3];
    CHECK_ERR(cosync_gather(t, 3, out, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(out[0].status, 0);
    CHECK(out[0].result == (void *)0x1);
    /* cancelled before they ever ran */
    CHECK_EQ(out[1].status, COSYNC_ECANCELED);
    CHECK_EQ(out[2].status, COSYNC_ECANCELED);
    CHECK(!j[0].started);
    CHECK(!j[1].started);
    for (int i = 0; i < 3; i++)
        CHECK(stale(t[i]));

    /* tasks that have started and block: cancelled and waited for */
    job k = {.sleep = COSYNC_MS(10), .cleanup = COSYNC_MS(3)};
    cosync_task tk = spawn_job(&k);
    CHECK_OK(cosync_yield());
    CHECK(k.started);
    CHECK_ERR(cosync_gather(&tk, 1, out, 0), COSYNC_EAGAIN);
    CHECK_EQ(out[0].status, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), t0 + COSYNC_MS(3));
    CHECK(stale(tk));
    return 0;
}

TEST(gather_deadline_zero_on_unfinished_tasks)
{
    CHECK_OK(run_main(gather_deadline0_main, NULL));
}

static int joiner_fn(void *arg, void **result)
{
    cosync_task *t = arg;
    int st = 1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(*t, &st, &r, COSYNC_FOREVER));
    *result = r;
    return st;
}

/* The handle arrays that gather and wait refuse, built around a task a
 * that must come out of every refusal untouched. */
#define NBAD 7
typedef struct bad_sets {
    job ja, jb, jd;
    cosync_task a, b, d, j;
    cosync_task list[NBAD][3];
    size_t n[NBAD];
} bad_sets;

/* In the running task: a and b sleep 50 and 20 ms, d is detached, x is
 * stale, j joins b; @foreign is a task of another loop. */
static void bad_sets_init(bad_sets *s, cosync_task foreign)
{
    s->ja = (job){.sleep = COSYNC_MS(50), .res = (void *)0xaa};
    s->jb = (job){.sleep = COSYNC_MS(20), .res = (void *)0xbb};
    s->jd = (job){.sleep = COSYNC_MS(10)};
    s->a = spawn_job(&s->ja);
    s->b = spawn_job(&s->jb);
    s->d = spawn_job(&s->jd);
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, return_arg, NULL, NULL));
    CHECK_OK(cosync_task_join(x, NULL, NULL, COSYNC_FOREVER)); /* x is stale now */
    CHECK_OK(cosync_task_detach(s->d));
    CHECK_OK(cosync_task_spawn(&s->j, joiner_fn, &s->b, NULL));
    CHECK_OK(cosync_yield()); /* j starts joining b */
    cosync_task a = s->a, b = s->b, self = cosync_task_current();
    const cosync_task list[NBAD][3] = {
        {a, x, b},       /* a stale handle */
        {a, s->d, b},    /* a detached task */
        {a, self, b},    /* the caller itself */
        {a, a, a},       /* the same task twice */
        {a, b, a},       /* b is being joined by j */
        {b, a, a},       /* the same, b first */
        {a, foreign, b}, /* a task of another loop */
    };
    const size_t n[NBAD] = {3, 3, 3, 2, 2, 3, 3};
    memcpy(s->list, list, sizeof list);
    memcpy(s->n, n, sizeof n);
}

/* After the refusals a finishes with its result, and j's join of b was
 * left alone. */
static void bad_sets_finish(bad_sets *s)
{
    int st = -1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(s->a, &st, &r, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(50));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0xaa);
    CHECK_OK(cosync_task_join(s->j, &st, &r, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0xbb);
    CHECK(stale(s->b));
    CHECK(stale(s->d)); /* finished and freed (detached) */
}

/* Run @main with a task of another loop (for its argument), which must
 * come out of it untouched. */
static void run_beside_a_foreign_task(cosync_task_fn main)
{
    cosync_loop *other;
    CHECK_OK(cosync_loop_init(&other, NULL));
    cosync_task foreign;
    CHECK_OK(cosync_loop_spawn(other, &foreign, return_arg, NULL, NULL));
    CHECK_OK(run_main(main, &foreign));
    CHECK(!cosync_task_done(foreign));
    CHECK_OK(cosync_loop_destroy(other));
}

static int gather_misuse_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    bad_sets s;
    bad_sets_init(&s, *(const cosync_task *)arg);
    cosync_outcome out[3] = {{1, NULL}, {1, NULL}, {1, NULL}};
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_ERR(cosync_gather(s.list[i], s.n[i], out, COSYNC_FOREVER), COSYNC_EINVAL);
        CHECK_EQ(cosync_now(), t0);
        /* nothing was collected or claimed: a is still joinable */
        CHECK_ERR(cosync_task_join(s.a, NULL, NULL, 0), COSYNC_EAGAIN);
        CHECK(!cosync_task_done(s.a));
        CHECK_NE(cosync_task_id(s.a), 0);
    }
    CHECK_EQ(out[0].status, 1);
    CHECK_EQ(out[1].status, 1);
    CHECK_EQ(out[2].status, 1);
    CHECK_ERR(cosync_gather(NULL, 2, out, COSYNC_FOREVER), COSYNC_EINVAL);
    bad_sets_finish(&s);
    return 0;
}

TEST(gather_misuse_collects_nothing)
{
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_gather(&t, 1, NULL, COSYNC_FOREVER), COSYNC_EPERM); /* outside a task */
    run_beside_a_foreign_task(gather_misuse_main);
}

static int gatherer_fn(void *arg, void **result)
{
    (void)result;
    cosync_task *t = arg;
    return cosync_gather(t, 1, NULL, COSYNC_FOREVER);
}

static int gather_busy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* a task claimed by a gather cannot be joined, detached, nor gathered */
    job ja = {.sleep = COSYNC_MS(10)};
    cosync_task a = spawn_job(&ja);
    cosync_task g;
    CHECK_OK(cosync_task_spawn(&g, gatherer_fn, &a, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_task_join(a, NULL, NULL, COSYNC_FOREVER), COSYNC_EBUSY);
    CHECK_ERR(cosync_task_detach(a), COSYNC_EBUSY);
    CHECK_ERR(cosync_gather(&a, 1, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait_for(a, NULL, NULL, COSYNC_FOREVER), COSYNC_EBUSY);
    join_ok(g);
    CHECK(stale(a));
    return 0;
}

TEST(gather_claimed_task_is_busy)
{
    CHECK_OK(run_main(gather_busy_main, NULL));
}

#define NMANY 10000

static int many_fn(void *arg, void **result)
{
    intptr_t i = (intptr_t)arg;
    if (i % 100 == 0)
        CHECK_OK(cosync_sleep(COSYNC_US(NMANY - i))); /* finish in reverse order */
    else if (i % 10 == 1)
        CHECK_OK(cosync_yield());
    *result = (void *)(i * 2);
    return i % 7 == 0 ? EFAIL1 : 0;
}

static int gather_many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_task *t = malloc(NMANY * sizeof *t);
    cosync_outcome *out = malloc(NMANY * sizeof *out);
    CHECK_NOTNULL(t);
    CHECK_NOTNULL(out);
    for (intptr_t i = 0; i < NMANY; i++)
        CHECK_OK(cosync_task_spawn(&t[i], many_fn, (void *)i, NULL));
    CHECK_EQ(task_records(), NMANY + 1);
    CHECK_OK(cosync_gather(t, NMANY, out, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), t0 + COSYNC_US(NMANY));
    for (intptr_t i = 0; i < NMANY; i++) {
        CHECK_EQ(out[i].status, i % 7 == 0 ? EFAIL1 : 0);
        CHECK(out[i].result == (void *)(i * 2));
    }
    CHECK(stale(t[0]));
    CHECK(stale(t[NMANY - 1]));
    CHECK_EQ(task_records(), 1);
    free(t);
    free(out);
    return 0;
}

TEST(gather_of_10000_tasks)
{
    CHECK_OK(run_main(gather_many_main, NULL));
}

/* ------------------------------------------------------------------------
 * gather_propagate: asyncio.gather without return_exceptions
 * ---------------------------------------------------------------------- */

/* All succeed: all are collected, in order, when the last finishes. */
static int propagate_all_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[3] = {
        {.sleep = COSYNC_MS(30), .res = (void *)0x10},
        {.sleep = COSYNC_MS(10), .rc = 7, .res = (void *)0x11}, /* positive: success */
        {.sleep = COSYNC_MS(20), .res = (void *)0x12},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_job(&j[i]);
    cosync_outcome out[3];
    memset(out, 0x5a, sizeof out);
    size_t failed = 99;
    CHECK_OK(cosync_gather_propagate(t, 3, out, &failed, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(30));
    CHECK_EQ(failed, 3);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(out[i].status, 0);
        CHECK(out[i].result == (void *)(uintptr_t)(0x10 + i));
        CHECK(stale(t[i]));
    }
    /* none: at once, nothing to fill */
    failed = 99;
    CHECK_OK(cosync_gather_propagate(NULL, 0, NULL, &failed, COSYNC_FOREVER));
    CHECK_EQ(failed, 0);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(gather_propagate_collects_all_when_all_succeed)
{
    CHECK_OK(run_main(propagate_all_main, NULL));
}

/* The first to fail, in the order they finish, ends the wait at that
 * instant; it alone is collected, and the others run on untouched, still
 * the caller's. A task cancelled by a third task counts as failed, as
 * asyncio's gather raises its CancelledError. */
static int propagate_first_failure_main(void *arg, void **result)
{
    (void)result;
    bool by_cancel = arg != NULL;
    t0 = cosync_now();
    finish_seq = 0;
    job j[4] = {
        {.sleep = COSYNC_MS(30), .rc = EFAIL2, .res = (void *)0x10},
        {.sleep = COSYNC_MS(5), .res = (void *)0x11},
        {.sleep = COSYNC_MS(100), .rc = EFAIL1, .res = (void *)0x12},
        {.sleep = COSYNC_MS(50), .res = (void *)0x13},
    };
    if (by_cancel)
        j[2].rc = 0; /* cancelled at 15 ms by a third task */
    else
        j[2].sleep = COSYNC_MS(15); /* fails at 15 ms */
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_job(&j[i]);
    canceller c = {COSYNC_MS(15), t[2]};
    cosync_task ct = COSYNC_TASK_NONE;
    if (by_cancel)
        CHECK_OK(cosync_task_spawn(&ct, canceller_fn, &c, NULL));

    cosync_outcome out[4];
    memset(out, 0x5a, sizeof out);
    size_t failed = 99;
    CHECK_ERR(cosync_gather_propagate(t, 4, out, &failed, COSYNC_FOREVER),
              by_cancel ? COSYNC_ECANCELED : EFAIL1);
    CHECK_EQ(cosync_now(), AT(15));
    CHECK_EQ(failed, 2);
    CHECK_ERR(out[2].status, by_cancel ? COSYNC_ECANCELED : EFAIL1);
    CHECK(out[2].result == (void *)0x12);
    CHECK(stale(t[2]));
    /* the rest: untouched outcomes, not cancelled, joinable */
    CHECK_EQ(out[0].status, 0x5a5a5a5a);
    CHECK_EQ(out[1].status, 0x5a5a5a5a);
    CHECK(cosync_task_done(t[1])); /* finished, not collected */
    for (int i = 0; i < 4; i++)
        if (i != 2)
            CHECK_EQ(cosync_task_cancelling(t[i]), 0);
    int st = 1;
    CHECK_OK(cosync_task_join(t[1], &st, NULL, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    CHECK_OK(cosync_task_join(t[0], &st, NULL, COSYNC_FOREVER));
    CHECK_EQ(st, EFAIL2);
    CHECK_EQ(cosync_now(), AT(30));
    CHECK_OK(cosync_task_detach(t[3]));
    CHECK_OK(cosync_sleep(COSYNC_MS(20)));
    CHECK_EQ(j[3].ended_at, AT(50));
    CHECK_OK(j[3].sleep_rc);
    if (by_cancel)
        join_ok(ct);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(gather_propagate_returns_the_first_failure_and_leaves_the_rest)
{
    CHECK_OK(run_main(propagate_first_failure_main, NULL));      /* an error */
    CHECK_OK(run_main(propagate_first_failure_main, (void *)1)); /* cancelled by another */
}

/* Failures before the call: the first in finish order, not in the order
 * of the array; no suspension, and a pending cancellation stays pending. */
static int propagate_failed_before_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[3] = {
        {.sleep = COSYNC_MS(20), .rc = EFAIL2},
        {.sleep = COSYNC_MS(10), .rc = EFAIL1, .res = (void *)0x11},
        {.sleep = COSYNC_MS(100)},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_job(&j[i]);
    CHECK_OK(cosync_sleep(COSYNC_MS(25)));
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    uint64_t sw = switches();
    cosync_outcome out[3];
    size_t failed = 99;
    CHECK_ERR(cosync_gather_propagate(t, 3, out, &failed, COSYNC_FOREVER), EFAIL1);
    CHECK_EQ(switches(), sw);
    CHECK_EQ(failed, 1);
    CHECK(out[1].result == (void *)0x11);
    CHECK_EQ(cosync_task_cancelling(t[2]), 0);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* still pending */
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    /* all finished, all succeeded: at once too */
    int st;
    CHECK_OK(cosync_task_join(t[0], &st, NULL, COSYNC_FOREVER));
    CHECK_EQ(st, EFAIL2);
    CHECK_OK(cosync_task_join(t[2], &st, NULL, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    return 0;
}

TEST(gather_propagate_of_failed_tasks_does_not_suspend)
{
    CHECK_OK(run_main(propagate_failed_before_main, NULL));
}

/* The caller cancelled: every unfinished task is cancelled within the
 * cancel, all are waited for, however long their clean-up, and collected;
 * a second cancel reaches them again. (One that never ran never runs:
 * caller_cancelled_cancels_the_tasks_at_once.) */
typedef struct propagate_ctx {
    size_t n;
    cosync_task t[3];
    cosync_outcome out[3];
    size_t failed;
    int64_t deadline;
    int rc;
    int64_t returned_at;
    int next_rc; /* the caller's next suspension after the call */
} propagate_ctx;

static int propagate_ctx_fn(void *arg, void **result)
{
    (void)result;
    propagate_ctx *g = arg;
    g->rc = cosync_gather_propagate(g->t, g->n, g->out, &g->failed, g->deadline);
    g->returned_at = cosync_now();
    g->next_rc = cosync_yield();
    return 0;
}

static int propagate_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[2] = {
        {.sleep = COSYNC_MS(5), .res = (void *)1},
        {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(4), .res = (void *)2},
    };
    propagate_ctx g = {.n = 2, .rc = 1, .failed = 99, .deadline = COSYNC_FOREVER};
    g.t[0] = spawn_job(&j[0]);
    g.t[1] = spawn_job(&j[1]);
    cosync_task gt;
    CHECK_OK(cosync_task_spawn(&gt, propagate_ctx_fn, &g, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    CHECK_OK(cosync_task_cancel(gt));
    CHECK_EQ(cosync_task_cancelling(g.t[1]), 1); /* within the cancel */
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));        /* t[1] is in its clean-up */
    CHECK_EQ(g.rc, 1);                           /* gt still waits */
    CHECK_OK(cosync_task_cancel(gt));
    CHECK_EQ(cosync_task_cancelling(g.t[1]), 2); /* passed on again */
    join_expect(gt, COSYNC_ECANCELED);
    CHECK_ERR(g.rc, COSYNC_ECANCELED);
    CHECK_EQ(g.failed, 2);           /* n: none failed */
    CHECK_EQ(g.returned_at, AT(11)); /* t[1]'s clean-up, cut short */
    CHECK_EQ(g.out[0].status, 0);
    CHECK(g.out[0].result == (void *)1);
    CHECK_EQ(g.out[1].status, COSYNC_ECANCELED);
    CHECK(g.out[1].result == (void *)2);
    CHECK_EQ(j[1].woke_at, AT(10));
    CHECK_ERR(j[1].cleanup_rc, COSYNC_ECANCELED); /* the second cancel */
    CHECK(stale(g.t[0]) && stale(g.t[1]));
    return 0;
}

TEST(gather_propagate_caller_cancelled_cancels_waits_and_collects_all)
{
    CHECK_OK(run_main(propagate_cancelled_main, NULL));
}

/* A cancel that comes once the call has given up, after its tasks have
 * all finished but before the caller runs, joins the one it passed on:
 * the call returns one COSYNC_ECANCELED and leaves nothing pending. */
static int propagate_late_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    job j[2] = {{.sleep = COSYNC_MS(100)}, {.sleep = COSYNC_MS(100)}};
    propagate_ctx g = {.n = 2, .rc = 1, .next_rc = 1, .deadline = COSYNC_FOREVER};
    g.t[0] = spawn_job(&j[0]);
    g.t[1] = spawn_job(&j[1]);
    cosync_task gt;
    CHECK_OK(cosync_task_spawn(&gt, propagate_ctx_fn, &g, NULL));
    CHECK_OK(cosync_yield()); /* all three wait */
    CHECK_OK(cosync_task_cancel(gt));
    CHECK_OK(cosync_yield()); /* both tasks end cancelled, and wake gt */
    CHECK(cosync_task_done(g.t[0]) && cosync_task_done(g.t[1]));
    CHECK_EQ(g.rc, 1); /* gt has not run */
    CHECK_OK(cosync_task_cancel(gt));
    CHECK_EQ(cosync_task_cancelling(gt), 2);
    join_expect(gt, COSYNC_ECANCELED);
    CHECK_ERR(g.rc, COSYNC_ECANCELED);
    CHECK_OK(g.next_rc); /* nothing left pending */
    return 0;
}

TEST(gather_propagate_cancel_after_the_tasks_ended_joins_the_first)
{
    CHECK_OK(run_main(propagate_late_cancel_main, NULL));
}

/* A cancel that comes once a failure has ended the wait, before the caller
 * runs, is a cancel after a wake-up: the call returns the failure, and the
 * request waits for the caller's next suspension; the other task is not
 * cancelled. */
static int propagate_cancel_after_failure_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[2] = {{.sleep = COSYNC_MS(10), .rc = EFAIL1}, {.sleep = COSYNC_MS(50)}};
    propagate_ctx g = {.n = 2, .rc = 1, .next_rc = 1, .failed = 99, .deadline = COSYNC_FOREVER};
    g.t[0] = spawn_job(&j[0]);
    g.t[1] = spawn_job(&j[1]);
    cosync_task gt, ct;
    CHECK_OK(cosync_task_spawn(&gt, propagate_ctx_fn, &g, NULL));
    /* its timer is armed after t[0]'s: it runs after t[0]'s failure woke gt */
    canceller c = {COSYNC_MS(10), gt};
    CHECK_OK(cosync_task_spawn(&ct, canceller_fn, &c, NULL));
    join_ok(ct);
    join_expect(gt, COSYNC_ECANCELED);
    CHECK_ERR(g.rc, EFAIL1);
    CHECK_EQ(g.failed, 0);
    CHECK_EQ(g.returned_at, AT(10));
    CHECK_ERR(g.next_rc, COSYNC_ECANCELED); /* delivered there */
    CHECK_EQ(cosync_task_cancelling(g.t[1]), 0);
    join_ok(g.t[1]);
    return 0;
}

TEST(gather_propagate_cancel_after_a_failure_stays_pending)
{
    CHECK_OK(run_main(propagate_cancel_after_failure_main, NULL));
}

/* The deadline: the unfinished tasks are cancelled at that instant and
 * waited for; COSYNC_ETIMEDOUT. Deadline 0 with tasks unfinished cancels
 * and waits too (COSYNC_EAGAIN), and so does a deadline already passed,
 * which cancels before the tasks run again. */
static int propagate_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static const struct {
        int64_t deadline_ms; /* from t0; -1: deadline 0; -2: COSYNC_FOREVER */
        bool started;        /* the tasks have started before the call */
        bool cancel_pending; /* and the caller has a cancellation pending */
        int rc;
        int64_t returned_ms;
    } cases[] = {
        {20, true, false, COSYNC_ETIMEDOUT, 23},
        {-1, false, false, COSYNC_EAGAIN, 0},
        {0, false, false, COSYNC_ETIMEDOUT, 0},
        /* deadline 0 comes first: the request stays pending through the wait */
        {-1, true, true, COSYNC_EAGAIN, 3},
        /* without it, the call takes the request in and passes it on */
        {-2, true, true, COSYNC_ECANCELED, 3},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        t0 = cosync_now();
        job j[2] = {
            {.sleep = COSYNC_MS(5), .res = (void *)1},
            {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(3), .res = (void *)2},
        };
        cosync_task t[2] = {spawn_job(&j[0]), spawn_job(&j[1])};
        if (cases[c].started)
            CHECK_OK(cosync_yield()); /* both have started */
        if (cases[c].cancel_pending)
            CHECK_OK(cosync_task_cancel(cosync_task_current()));
        cosync_outcome out[2];
        size_t failed = 99;
        int64_t deadline = cases[c].deadline_ms == -2   ? COSYNC_FOREVER
                           : cases[c].deadline_ms == -1 ? 0
                                                        : AT(cases[c].deadline_ms);
        CHECK_ERR(cosync_gather_propagate(t, 2, out, &failed, deadline), cases[c].rc);
        CHECK_EQ(cosync_now(), AT(cases[c].returned_ms));
        CHECK_EQ(failed, 2);
        CHECK_ERR(out[1].status, COSYNC_ECANCELED);
        if (cases[c].cancel_pending) {
            CHECK(out[1].result == (void *)2);
            CHECK_ERR(out[0].status, COSYNC_ECANCELED);
            CHECK_EQ(j[1].woke_at, t0);
            if (deadline == 0)
                CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* still pending */
            else
                CHECK_OK(cosync_yield()); /* delivered once, by the call */
            CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
        } else if (cases[c].started) {
            CHECK(out[1].result == (void *)2);
            CHECK_EQ(out[0].status, 0);
            CHECK_EQ(j[1].woke_at, AT(20));
        } else {
            /* cancelled before either ran: neither ran its body */
            CHECK_ERR(out[0].status, COSYNC_ECANCELED);
            CHECK(!j[0].started && !j[1].started);
        }
        CHECK(stale(t[0]) && stale(t[1]));
    }
    return 0;
}

TEST(gather_propagate_deadline_cancels_waits_and_collects_all)
{
    CHECK_OK(run_main(propagate_deadline_main, NULL));
}

static int propagate_misuse_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    bad_sets s;
    bad_sets_init(&s, *(const cosync_task *)arg);
    cosync_outcome out[3] = {{1, NULL}, {1, NULL}, {1, NULL}};
    size_t failed = 99;
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_ERR(cosync_gather_propagate(s.list[i], s.n[i], out, &failed, COSYNC_FOREVER),
                  COSYNC_EINVAL);
        CHECK_EQ(cosync_now(), t0);
        CHECK_ERR(cosync_task_join(s.a, NULL, NULL, 0), COSYNC_EAGAIN); /* not claimed */
        CHECK_NE(cosync_task_id(s.a), 0);
    }
    CHECK_ERR(cosync_gather_propagate(NULL, 2, out, &failed, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(failed, 99);
    CHECK_EQ(out[0].status, 1);
    bad_sets_finish(&s);
    return 0;
}

TEST(gather_propagate_misuse_collects_nothing)
{
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_gather_propagate(&t, 1, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    run_beside_a_foreign_task(propagate_misuse_main);
}

/* What the deadlock report says of it, before and after it gave up. */
static cosync_event propagate_dl_ev;
static bool propagate_dl_linger;

static int propagate_dl_child(void *arg, void **result)
{
    (void)result;
    int rc = cosync_event_wait(arg, COSYNC_FOREVER);
    if (rc == COSYNC_ECANCELED && propagate_dl_linger) /* a clean-up only a cancel ends */
        rc = cosync_event_wait(arg, COSYNC_FOREVER);
    return rc;
}

static int propagate_dl_main(void *arg, void **result)
{
    (void)result;
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&t[i], propagate_dl_child, &propagate_dl_ev, NULL));
    CHECK_OK(cosync_yield()); /* both wait on the event */
    if (arg)
        CHECK_OK(cosync_task_cancel(cosync_task_current())); /* gives up at once */
    return cosync_gather_propagate(t, 2, NULL, NULL, COSYNC_FOREVER);
}

TEST(gather_propagate_deadlock_report)
{
    for (int given_up = 0; given_up < 2; given_up++) {
        cosync_event_init(&propagate_dl_ev);
        propagate_dl_linger = given_up;
        capture cap;
        cosync_task m;
        cosync_loop *loop =
            deadlock_loop(&cap, propagate_dl_main, (void *)(intptr_t)given_up, "main", &m);
        char want[512];
        snprintf(want, sizeof want,
                 "cosync: deadlock: 3 tasks are blocked and nothing can wake them:\n"
                 "  task 'main' (#1) waits on gather (first failure) for 2 unfinished task(s)%s\n"
                 "  task 'task-2' (#2) waits on event %p\n"
                 "  task 'task-3' (#3) waits on event %p\n",
                 given_up ? ", cancelled" : "", (void *)&propagate_dl_ev, (void *)&propagate_dl_ev);
        CHECK_STREQ(capture_text(&cap), want);
        CHECK_OK(cosync_loop_destroy(loop));
        capture_free(&cap);
    }
}
/* ------------------------------------------------------------------------
 * wait_for
 * ---------------------------------------------------------------------- */

static int wait_for_success_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j = {.sleep = COSYNC_MS(10), .res = (void *)0x42};
    cosync_task t = spawn_job(&j);
    int st = -1;
    void *r = NULL;
    CHECK_OK(cosync_wait_for(t, &st, &r, AT(20)));
    CHECK_EQ(cosync_now(), AT(10));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0x42);
    CHECK(stale(t));

    /* a failure in time: wait_for succeeds, the status says it failed */
    job f = {.sleep = COSYNC_MS(10), .rc = EFAIL2, .res = (void *)0x43};
    t = spawn_job(&f);
    CHECK_OK(cosync_wait_for(t, &st, &r, AT(30)));
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_EQ(st, EFAIL2);
    CHECK(r == (void *)0x43);
    CHECK(stale(t));

    /* no deadline; NULL outputs */
    job g = {.sleep = COSYNC_MS(1)};
    t = spawn_job(&g);
    CHECK_OK(cosync_wait_for(t, NULL, NULL, COSYNC_FOREVER));
    CHECK(stale(t));

    /* a finished task with deadline 0: succeeds at once */
    CHECK_OK(cosync_task_spawn(&t, return_arg, (void *)0x44, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_wait_for(t, &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0x44);
    return 0;
}

TEST(wait_for_success_in_time)
{
    CHECK_OK(run_main(wait_for_success_main, NULL));
}

static int wait_for_expiry_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j = {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(5), .res = (void *)0x55};
    cosync_task t = spawn_job(&j);
    int st = -1;
    void *r = NULL;
    CHECK_ERR(cosync_wait_for(t, &st, &r, AT(20)), COSYNC_ETIMEDOUT);
    /* the task was cancelled at 20 ms and its clean-up finished first */
    CHECK_EQ(j.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(j.woke_at, AT(20));
    CHECK_EQ(j.cleanup_rc, 0);
    CHECK_EQ(j.ended_at, AT(25));
    CHECK_EQ(cosync_now(), AT(25));
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK(r == (void *)0x55);
    CHECK(stale(t));
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);

    /* deadline 0 on a task that has not finished */
    job k = {.sleep = COSYNC_MS(100)};
    t = spawn_job(&k);
    CHECK_ERR(cosync_wait_for(t, &st, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK(!k.started);
    CHECK(stale(t));

    /* a deadline already passed, task started */
    job m = {.sleep = COSYNC_MS(100)};
    t = spawn_job(&m);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_wait_for(t, &st, NULL, AT(1)), COSYNC_ETIMEDOUT);
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK_EQ(m.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(25));
    CHECK(stale(t));
    return 0;
}

TEST(wait_for_expiry_cancels_and_waits)
{
    CHECK_OK(run_main(wait_for_expiry_main, NULL));
}

static int wait_for_ignored_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j = {.sleep = COSYNC_MS(100),
             .cleanup = COSYNC_MS(7),
             .ignore_cancel = true,
             .res = (void *)0x66};
    cosync_task t = spawn_job(&j);
    int st = -1;
    void *r = NULL;
    /* it withdrew the cancellation and succeeded: its value, as asyncio */
    CHECK_OK(cosync_wait_for(t, &st, &r, AT(10)));
    CHECK_EQ(cosync_now(), AT(17));
    CHECK_EQ(j.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0x66);
    CHECK(stale(t));

    /* it failed its own way after the cancellation: that failure */
    job f = {.sleep = COSYNC_MS(100), .cancel_rc = EFAIL1, .res = (void *)0x67};
    t = spawn_job(&f);
    st = -1;
    CHECK_OK(cosync_wait_for(t, &st, &r, AT(20)));
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_EQ(f.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(st, EFAIL1);
    CHECK(r == (void *)0x67);
    CHECK(stale(t));

    /* the same with deadline 0 */
    job g = {.sleep = COSYNC_MS(100), .ignore_cancel = true, .res = (void *)0x68};
    t = spawn_job(&g);
    CHECK_OK(cosync_yield()); /* started: it gets to handle the cancellation */
    st = -1;
    CHECK_OK(cosync_wait_for(t, &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0x68);
    CHECK(stale(t));
    return 0;
}

TEST(wait_for_task_that_ignores_the_cancel)
{
    CHECK_OK(run_main(wait_for_ignored_main, NULL));
}

typedef struct gather_ctx {
    cosync_task t[3];
    cosync_outcome out[3];
    int rc;
    int64_t returned_at;
} gather_ctx;

static int gather_ctx_fn(void *arg, void **result)
{
    (void)result;
    gather_ctx *g = arg;
    g->rc = cosync_gather(g->t, 3, g->out, COSYNC_FOREVER);
    g->returned_at = cosync_now();
    return g->rc;
}

static int gather_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[3] = {
        {.sleep = COSYNC_MS(5), .res = (void *)1},
        {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(4), .res = (void *)2},
        {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(2), .cancel_rc = EFAIL1},
    };
    gather_ctx g = {.rc = 1};
    for (int i = 0; i < 3; i++)
        g.t[i] = spawn_job(&j[i]);
    cosync_task gt;
    CHECK_OK(cosync_task_spawn(&gt, gather_ctx_fn, &g, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    CHECK_OK(cosync_task_cancel(gt));
    join_expect(gt, COSYNC_ECANCELED);
    CHECK_ERR(g.rc, COSYNC_ECANCELED);
    CHECK_EQ(g.returned_at, AT(14));
    CHECK_EQ(g.out[0].status, 0);
    CHECK(g.out[0].result == (void *)1);
    CHECK_EQ(g.out[1].status, COSYNC_ECANCELED);
    CHECK(g.out[1].result == (void *)2);
    CHECK_EQ(g.out[2].status, EFAIL1);
    CHECK_EQ(j[1].woke_at, AT(10));
    CHECK_EQ(j[2].woke_at, AT(10));
    for (int i = 0; i < 3; i++)
        CHECK(stale(g.t[i]));
    return 0;
}

TEST(gather_caller_cancelled_cancels_and_collects_the_rest)
{
    CHECK_OK(run_main(gather_cancelled_main, NULL));
}

/* asyncio's task.cancel() on a task awaiting gather() or wait_for()
 * cancels the awaited tasks inside the cancel() call: a task queued to
 * run before the caller gets its cancellation before it runs. */
static bool child_ran;

static int note_run(void *arg, void **result)
{
    (void)arg;
    child_ran = true;
    *result = (void *)1;
    return 0;
}

enum giver_call { GIVE_GATHER, GIVE_WAIT_FOR, GIVE_PROPAGATE };

typedef struct giver {
    enum giver_call call;
    int rc;
    int status;
} giver;

static int giver_fn(void *arg, void **result)
{
    (void)result;
    giver *g = arg;
    cosync_task kid;
    CHECK_OK(cosync_task_spawn(&kid, note_run, NULL, NULL));
    cosync_outcome out = {1, NULL};
    if (g->call == GIVE_WAIT_FOR)
        g->rc = cosync_wait_for(kid, &out.status, &out.result, COSYNC_FOREVER);
    else if (g->call == GIVE_PROPAGATE)
        g->rc = cosync_gather_propagate(&kid, 1, &out, NULL, COSYNC_FOREVER);
    else
        g->rc = cosync_gather(&kid, 1, &out, COSYNC_FOREVER);
    g->status = out.status;
    return g->rc;
}

static int cancel_reaches_main(void *arg, void **result)
{
    (void)result;
    giver g = {.call = (enum giver_call)(intptr_t)arg, .rc = 1, .status = 1};
    child_ran = false;
    cosync_task p;
    CHECK_OK(cosync_task_spawn(&p, giver_fn, &g, NULL));
    CHECK_OK(cosync_yield()); /* p spawns its child (queued) and waits for it */
    CHECK(!child_ran);
    CHECK_OK(cosync_task_cancel(p));
    join_expect(p, COSYNC_ECANCELED);
    CHECK_ERR(g.rc, COSYNC_ECANCELED);
    CHECK_ERR(g.status, COSYNC_ECANCELED);
    CHECK(!child_ran); /* cancelled before it ever ran */
    return 0;
}

TEST(caller_cancelled_cancels_the_tasks_at_once)
{
    CHECK_OK(run_main(cancel_reaches_main, (void *)GIVE_GATHER));
    CHECK_OK(run_main(cancel_reaches_main, (void *)GIVE_WAIT_FOR));
    CHECK_OK(run_main(cancel_reaches_main, (void *)GIVE_PROPAGATE));
}

/* The same at a deadline: the deadline cancels the task that waits on an
 * event at that instant, before the task that sets the event (woken by
 * its own timer at the same instant, armed earlier) runs. */
typedef struct ev_waiter {
    cosync_event *e;
    int rc;
} ev_waiter;

static int ev_wait_fn(void *arg, void **result)
{
    (void)result;
    ev_waiter *w = arg;
    w->rc = cosync_event_wait(w->e, COSYNC_FOREVER);
    return w->rc;
}

static int set_after_fn(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    return cosync_event_set(arg);
}

static int deadline_reaches_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    cosync_event e = COSYNC_EVENT_INIT;
    ev_waiter w = {&e, 1};
    cosync_task c, s;
    CHECK_OK(cosync_task_spawn(&c, ev_wait_fn, &w, NULL));
    CHECK_OK(cosync_task_spawn(&s, set_after_fn, &e, NULL));
    CHECK_OK(cosync_yield()); /* c waits on e; s arms its sleep */
    cosync_outcome out = {1, NULL};
    if (arg) {
        CHECK_ERR(cosync_wait_for(c, &out.status, NULL, AT(10)), COSYNC_ETIMEDOUT);
    } else {
        CHECK_ERR(cosync_gather(&c, 1, &out, AT(10)), COSYNC_ETIMEDOUT);
    }
    CHECK_EQ(cosync_now(), AT(10));
    CHECK_ERR(w.rc, COSYNC_ECANCELED); /* not woken by s's set */
    CHECK_ERR(out.status, COSYNC_ECANCELED);
    join_ok(s);
    CHECK(cosync_event_is_set(&e));
    return 0;
}

TEST(deadline_cancels_the_tasks_at_that_instant)
{
    CHECK_OK(run_main(deadline_reaches_main, NULL));      /* gather */
    CHECK_OK(run_main(deadline_reaches_main, (void *)1)); /* wait_for */
}

/* Two tasks that wait for each other through wait_for: the deadline of
 * one cancels the other, whose own give-up cancels the first again. The
 * cancels end (each task's second request finds one on its way), and the
 * two, each waiting for the other to finish, are a deadlock the loop
 * reports and its close drops. */
typedef struct cycle_side {
    cosync_task other;
    int64_t deadline;
    int rc;
} cycle_side;

static int cycle_fn(void *arg, void **result)
{
    (void)result;
    cycle_side *s = arg;
    CHECK_OK(cosync_yield()); /* both handles are set by now */
    s->rc = cosync_wait_for(s->other, NULL, NULL, s->deadline);
    return s->rc;
}

static int cycle_main(void *arg, void **result)
{
    (void)result;
    cycle_side *s = arg;
    t0 = cosync_now();
    s[0].deadline = AT(10);
    s[1].deadline = AT(5);
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, cycle_fn, &s[0], NULL));
    CHECK_OK(cosync_task_spawn(&b, cycle_fn, &s[1], NULL));
    s[0].other = b;
    s[1].other = a;
    cosync_event never = COSYNC_EVENT_INIT;
    return cosync_event_wait(&never, COSYNC_FOREVER);
}

TEST(wait_for_cycle_is_a_deadlock_not_an_endless_cancel)
{
    static cycle_side s[2] = {{.rc = 1}, {.rc = 1}};
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, cycle_main, s, "main", &m);
    const char *report = capture_text(&cap);
    CHECK_EQ(count_lines(report), 4); /* the title, main, a and b */
    const char *first = strstr(report, "waits on join of task");
    CHECK_NOTNULL(first);
    CHECK_NOTNULL(strstr(first + 1, "waits on join of task"));
    CHECK_EQ(s[0].rc, 1); /* neither wait has returned */
    CHECK_EQ(s[1].rc, 1);
    /* b's deadline cancelled a, whose give-up cancelled b: once each */
    CHECK_EQ(cosync_task_cancelling(s[0].other), 1);
    CHECK_EQ(cosync_task_cancelling(s[1].other), 1);
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    capture_free(&cap);
}

typedef struct waiter_ctx {
    cosync_task inner;
    int rc;
    int st;
    void *r;
    int64_t returned_at;
} waiter_ctx;

static int wait_for_fn(void *arg, void **result)
{
    (void)result;
    waiter_ctx *w = arg;
    w->rc = cosync_wait_for(w->inner, &w->st, &w->r, COSYNC_FOREVER);
    w->returned_at = cosync_now();
    return w->rc;
}

static int wait_for_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j = {.sleep = COSYNC_MS(100), .cleanup = COSYNC_MS(5), .res = (void *)0x77};
    waiter_ctx w = {.inner = spawn_job(&j), .rc = 1, .st = 1};
    cosync_task wt;
    CHECK_OK(cosync_task_spawn(&wt, wait_for_fn, &w, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    CHECK_OK(cosync_task_cancel(wt));
    join_expect(wt, COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK_EQ(w.st, COSYNC_ECANCELED);
    CHECK(w.r == (void *)0x77);
    CHECK_EQ(j.woke_at, AT(10));
    CHECK_EQ(j.ended_at, AT(15));
    CHECK_EQ(w.returned_at, AT(15));
    CHECK(stale(w.inner));
    return 0;
}

TEST(wait_for_caller_cancelled)
{
    CHECK_OK(run_main(wait_for_cancelled_main, NULL));
}

static int wait_for_misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, return_arg, NULL, NULL));
    CHECK_OK(cosync_task_join(x, NULL, NULL, COSYNC_FOREVER));
    int st = 99;
    CHECK_ERR(cosync_wait_for(x, &st, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_ERR(cosync_wait_for(COSYNC_TASK_NONE, &st, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_ERR(cosync_wait_for(cosync_task_current(), &st, NULL, COSYNC_FOREVER), COSYNC_EDEADLK);
    job jd = {.sleep = COSYNC_MS(10)};
    cosync_task d = spawn_job(&jd);
    CHECK_OK(cosync_task_detach(d));
    CHECK_ERR(cosync_wait_for(d, &st, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    job jb = {.sleep = COSYNC_MS(20), .res = (void *)0xb};
    cosync_task b = spawn_job(&jb);
    cosync_task j;
    CHECK_OK(cosync_task_spawn(&j, joiner_fn, &b, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_wait_for(b, &st, NULL, COSYNC_FOREVER), COSYNC_EBUSY);
    CHECK_EQ(st, 99); /* not filled on argument errors */
    CHECK_EQ(cosync_now(), t0);
    /* nothing was disturbed */
    void *r = NULL;
    CHECK_OK(cosync_task_join(j, &st, &r, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0xb);
    CHECK(stale(d));
    return 0;
}

TEST(wait_for_misuse)
{
    CHECK_ERR(cosync_wait_for(COSYNC_TASK_NONE, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_OK(run_main(wait_for_misuse_main, NULL));
}

/* ------------------------------------------------------------------------
 * wait (asyncio.wait)
 * ---------------------------------------------------------------------- */

static bool cancel_requested(cosync_task t)
{
    return cosync_task_cancelling(t) != 0;
}

static int wait_first_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[3] = {
        {.sleep = COSYNC_MS(30), .res = (void *)0x30},
        {.sleep = COSYNC_MS(10), .res = (void *)0x10},
        {.sleep = COSYNC_MS(20), .rc = EFAIL1},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_job(&j[i]);
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 3, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER));
    CHECK_EQ(idx, 1);
    CHECK_EQ(cosync_now(), AT(10));
    /* nothing was collected or cancelled: the others run on */
    CHECK(cosync_task_done(t[1]));
    CHECK(!cosync_task_done(t[0]));
    CHECK(!cosync_task_done(t[2]));
    CHECK(!cancel_requested(t[0]));
    CHECK(!cancel_requested(t[2]));
    int st = 1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(t[1], &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)0x10);
    /* a failure ends a FIRST_COMPLETED wait like a success */
    cosync_task rest[2] = {t[0], t[2]};
    CHECK_OK(cosync_wait(rest, 2, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER));
    CHECK_EQ(idx, 1);
    CHECK_EQ(cosync_now(), AT(20));
    join_expect(t[2], EFAIL1);
    CHECK_OK(cosync_task_join(t[0], &st, &r, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(30));
    CHECK(r == (void *)0x30);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(wait_first_completed_returns_the_first_to_finish)
{
    CHECK_OK(run_main(wait_first_main, NULL));
}

static int return_status(void *arg, void **result)
{
    (void)result;
    return (int)(intptr_t)arg;
}

static int wait_met_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], return_arg, (void *)0x100, NULL));
    job j1 = {.sleep = COSYNC_MS(10)};
    t[1] = spawn_job(&j1);
    CHECK_OK(cosync_task_spawn(&t[2], return_status, (void *)(intptr_t)EFAIL2, NULL));
    CHECK_OK(cosync_yield()); /* t[0] and t[2] finish, t[1] sleeps */
    sentinel_ran = false;
    cosync_task s;
    CHECK_OK(cosync_task_spawn(&s, sentinel_fn, NULL, NULL));
    uint64_t sw = switches();
    size_t idx = 99;
    /* a wait whose condition holds succeeds at once, whatever its deadline */
    CHECK_OK(cosync_wait(t, 3, COSYNC_FIRST_COMPLETED, &idx, 0));
    CHECK_EQ(idx, 0);
    CHECK_OK(cosync_wait(&t[1], 2, COSYNC_FIRST_COMPLETED, &idx, 0));
    CHECK_EQ(idx, 1);
    /* the first of them to finish, not the lowest index */
    cosync_task later_first[3] = {t[2], t[1], t[0]};
    CHECK_OK(cosync_wait(later_first, 3, COSYNC_FIRST_COMPLETED, &idx, 0));
    CHECK_EQ(idx, 2);
    CHECK_OK(cosync_wait(t, 3, COSYNC_FIRST_EXCEPTION, &idx, 0));
    CHECK_EQ(idx, 2);
    CHECK_OK(cosync_wait(t, 1, COSYNC_ALL_COMPLETED, &idx, 0));
    CHECK_EQ(idx, 1);
    CHECK_OK(cosync_wait(t, 1, COSYNC_FIRST_EXCEPTION, &idx, 0));
    CHECK_EQ(idx, 1); /* all finished, none failed */
    CHECK_OK(cosync_wait(t, 3, COSYNC_FIRST_COMPLETED, NULL, COSYNC_FOREVER));
    CHECK(!sentinel_ran);
    CHECK_EQ(switches(), sw);
    /* not met: deadline 0 tries */
    idx = 99;
    CHECK_ERR(cosync_wait(t, 3, COSYNC_ALL_COMPLETED, &idx, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_wait(&t[1], 1, COSYNC_FIRST_COMPLETED, &idx, 0), COSYNC_EAGAIN);
    CHECK_EQ(idx, 99); /* untouched on error */
    CHECK_EQ(switches(), sw);
    CHECK(!sentinel_ran);
    join_ok(t[0]);
    join_ok(t[1]);
    join_expect(t[2], EFAIL2);
    join_ok(s);
    return 0;
}

TEST(wait_already_met_does_not_suspend)
{
    CHECK_OK(run_main(wait_met_main, NULL));
}

static int wait_all_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[3] = {
        {.sleep = COSYNC_MS(20), .rc = EFAIL1},
        {.sleep = COSYNC_MS(100)},
        {.sleep = COSYNC_MS(30)},
    };
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_job(&j[i]);
    canceller c = {COSYNC_MS(40), t[1]};
    cosync_task ct;
    CHECK_OK(cosync_task_spawn(&ct, canceller_fn, &c, NULL));
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 3, COSYNC_ALL_COMPLETED, &idx, COSYNC_FOREVER));
    CHECK_EQ(idx, 3);
    CHECK_EQ(cosync_now(), AT(40)); /* the cancelled one finished too */
    join_expect(t[0], EFAIL1);
    join_expect(t[1], COSYNC_ECANCELED);
    join_ok(t[2]);
    join_ok(ct);
    return 0;
}

TEST(wait_all_completed_waits_for_every_task)
{
    CHECK_OK(run_main(wait_all_main, NULL));
}

static int wait_exception_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[4] = {
        {.sleep = COSYNC_MS(10)},
        {.sleep = COSYNC_MS(100)}, /* cancelled at 5 ms: not a failure */
        {.sleep = COSYNC_MS(20), .rc = EFAIL1},
        {.sleep = COSYNC_MS(30), .rc = EFAIL2},
    };
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_job(&j[i]);
    canceller c = {COSYNC_MS(5), t[1]};
    cosync_task ct;
    CHECK_OK(cosync_task_spawn(&ct, canceller_fn, &c, NULL));
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 4, COSYNC_FIRST_EXCEPTION, &idx, COSYNC_FOREVER));
    CHECK_EQ(idx, 2);
    CHECK_EQ(cosync_now(), AT(20));
    CHECK(!cosync_task_done(t[3]));
    /* with no failure among them it waits for all */
    job k[2] = {{.sleep = COSYNC_MS(5)}, {.sleep = COSYNC_MS(15)}};
    cosync_task u[2] = {spawn_job(&k[0]), spawn_job(&k[1])};
    CHECK_OK(cosync_wait(u, 2, COSYNC_FIRST_EXCEPTION, &idx, COSYNC_FOREVER));
    CHECK_EQ(idx, 2);
    CHECK_EQ(cosync_now(), AT(35));
    join_ok(u[0]);
    join_ok(u[1]);
    join_ok(t[0]);
    join_expect(t[1], COSYNC_ECANCELED);
    join_expect(t[2], EFAIL1);
    join_expect(t[3], EFAIL2);
    join_ok(ct);
    return 0;
}

TEST(wait_first_exception_skips_cancelled_tasks)
{
    CHECK_OK(run_main(wait_exception_main, NULL));
}

static int wait_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[2] = {{.sleep = COSYNC_MS(20), .res = (void *)0x20}, {.sleep = COSYNC_MS(30)}};
    cosync_task t[2] = {spawn_job(&j[0]), spawn_job(&j[1])};
    size_t idx = 99;
    CHECK_ERR(cosync_wait(t, 2, COSYNC_FIRST_COMPLETED, &idx, AT(15)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(15));
    CHECK_EQ(idx, 99);
    CHECK_EQ(armed_timers(), 2); /* the tasks' sleeps, not the wait's deadline */
    /* unlike gather and wait_for, the tasks are left running */
    CHECK(!cancel_requested(t[0]));
    CHECK(!cancel_requested(t[1]));
    CHECK_ERR(cosync_wait(t, 2, COSYNC_ALL_COMPLETED, &idx, AT(25)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(25));
    CHECK(cosync_task_done(t[0]));
    int st = 1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(t[0], &st, &r, 0));
    CHECK(r == (void *)0x20);
    CHECK_OK(cosync_task_join(t[1], &st, &r, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    CHECK_EQ(cosync_now(), AT(30));
    CHECK_EQ(j[1].sleep_rc, 0);
    return 0;
}

TEST(wait_deadline_leaves_the_tasks_running)
{
    CHECK_OK(run_main(wait_deadline_main, NULL));
}

static int wait_same_instant_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* the task's timer and the wait's deadline fire at the same instant,
     * the task's first (armed first): the wait times out, then the task
     * finishes before the caller runs again, so it counts, as asyncio.wait
     * sorts its sets only when it resumes */
    job j[2] = {{.sleep = COSYNC_MS(15)}, {.sleep = COSYNC_MS(40)}};
    cosync_task t[2] = {spawn_job(&j[0]), spawn_job(&j[1])};
    CHECK_OK(cosync_yield()); /* they arm their sleeps */
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 2, COSYNC_FIRST_COMPLETED, &idx, AT(15)));
    CHECK_EQ(idx, 0);
    CHECK_EQ(cosync_now(), AT(15));
    /* still a timeout when what it needs is not all there */
    job k = {.sleep = COSYNC_MS(10)};
    cosync_task u[2] = {spawn_job(&k), t[1]};
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_wait(u, 2, COSYNC_ALL_COMPLETED, &idx, AT(25)), COSYNC_ETIMEDOUT);
    CHECK_EQ(idx, 0);
    CHECK(cosync_task_done(u[0]));
    join_ok(t[0]);
    join_ok(u[0]);
    join_ok(t[1]);
    return 0;
}

TEST(wait_counts_a_task_that_finished_at_the_deadline)
{
    CHECK_OK(run_main(wait_same_instant_main, NULL));
}

static int waiter_fn(void *arg, void **result)
{
    (void)result;
    cosync_task *t = arg;
    size_t idx = 99;
    int rc = cosync_wait(t, 2, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER);
    CHECK_EQ(idx, 99);
    return rc;
}

static int wait_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job j[2] = {{.sleep = COSYNC_MS(20)}, {.sleep = COSYNC_MS(30)}};
    cosync_task t[2] = {spawn_job(&j[0]), spawn_job(&j[1])};
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, waiter_fn, t, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    /* while w waits, the tasks are its own */
    CHECK_ERR(cosync_task_join(t[0], NULL, NULL, 0), COSYNC_EBUSY);
    CHECK_ERR(cosync_task_detach(t[1]), COSYNC_EBUSY);
    CHECK_ERR(cosync_gather(t, 2, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait(t, 2, COSYNC_ALL_COMPLETED, NULL, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_task_cancel(w));
    join_expect(w, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(5));
    /* the cancel stopped at the waiter: the tasks run on, free to join */
    CHECK(!cancel_requested(t[0]));
    CHECK(!cancel_requested(t[1]));
    join_ok(t[0]);
    CHECK_EQ(cosync_now(), AT(20));
    join_ok(t[1]);
    CHECK_EQ(j[0].sleep_rc, 0);
    CHECK_EQ(j[1].sleep_rc, 0);
    return 0;
}

TEST(wait_caller_cancelled_leaves_the_tasks_running)
{
    CHECK_OK(run_main(wait_cancelled_main, NULL));
}

static int yield_then_return(void *arg, void **result)
{
    CHECK_OK(cosync_yield());
    *result = arg;
    return 0;
}

static int wait_same_turn_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* both finish before the waiter runs again; b first */
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], yield_then_return, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], return_arg, NULL, NULL));
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 2, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER));
    CHECK(cosync_task_done(t[0]));
    CHECK_EQ(idx, 1); /* the first to finish, not the lowest index */
    join_ok(t[0]);
    join_ok(t[1]);
    return 0;
}

TEST(wait_first_completed_names_the_first_within_a_turn)
{
    CHECK_OK(run_main(wait_same_turn_main, NULL));
}

static int wait_as_completed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* asyncio.as_completed: handle each task as it finishes */
    int64_t ms[5] = {50, 10, 40, 20, 30};
    job j[5];
    cosync_task t[5];
    for (intptr_t i = 0; i < 5; i++) {
        j[i] = (job){.sleep = COSYNC_MS(ms[i]), .res = (void *)i};
        t[i] = spawn_job(&j[i]);
    }
    intptr_t order[5];
    size_t n = 5;
    while (n > 0) {
        size_t i;
        CHECK_OK(cosync_wait(t, n, COSYNC_FIRST_COMPLETED, &i, COSYNC_FOREVER));
        void *r = NULL;
        int st = 1;
        CHECK_OK(cosync_task_join(t[i], &st, &r, 0));
        CHECK_EQ(st, 0);
        order[5 - n] = (intptr_t)r;
        CHECK_EQ(cosync_now(), AT(ms[(intptr_t)r]));
        t[i] = t[--n];
    }
    CHECK_EQ(order[0], 1);
    CHECK_EQ(order[1], 3);
    CHECK_EQ(order[2], 4);
    CHECK_EQ(order[3], 2);
    CHECK_EQ(order[4], 0);

    /* the same with a consumer that falls behind: each handling takes
     * 25 ms, so the others finish meanwhile, in their own order */
    int64_t start = cosync_now();
    int64_t ms2[4] = {30, 20, 10, 15};
    for (intptr_t i = 0; i < 4; i++) {
        j[i] = (job){.sleep = COSYNC_MS(ms2[i]), .res = (void *)i};
        t[i] = spawn_job(&j[i]);
    }
    for (n = 4; n > 0;) {
        size_t i;
        CHECK_OK(cosync_wait(t, n, COSYNC_FIRST_COMPLETED, &i, COSYNC_FOREVER));
        void *r = NULL;
        CHECK_OK(cosync_task_join(t[i], NULL, &r, 0));
        order[4 - n] = (intptr_t)r;
        t[i] = t[--n];
        CHECK_OK(cosync_sleep(COSYNC_MS(25)));
    }
    CHECK_EQ(order[0], 2);
    CHECK_EQ(order[1], 3);
    CHECK_EQ(order[2], 1);
    CHECK_EQ(order[3], 0);
    CHECK_EQ(cosync_now(), start + COSYNC_MS(10 + 4 * 25));
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(wait_gives_asyncio_as_completed)
{
    CHECK_OK(run_main(wait_as_completed_main, NULL));
}

static int wait_misuse_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    bad_sets s;
    bad_sets_init(&s, *(const cosync_task *)arg);
    size_t idx = 99;
    for (size_t i = 0; i < NBAD; i++) {
        CHECK_ERR(cosync_wait(s.list[i], s.n[i], COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER),
                  COSYNC_EINVAL);
        CHECK_EQ(cosync_now(), t0);
        /* nothing was claimed: a is still joinable */
        CHECK_ERR(cosync_task_join(s.a, NULL, NULL, 0), COSYNC_EAGAIN);
    }
    cosync_task *a = &s.a;
    CHECK_ERR(cosync_wait(NULL, 1, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait(a, 0, COSYNC_FIRST_COMPLETED, &idx, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait(a, 1, (cosync_return_when)0, &idx, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait(a, 1, (cosync_return_when)4, &idx, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(idx, 99);
    CHECK_EQ(cosync_now(), t0);
    bad_sets_finish(&s);
    return 0;
}

TEST(wait_misuse_claims_nothing)
{
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_wait(&t, 1, COSYNC_FIRST_COMPLETED, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    run_beside_a_foreign_task(wait_misuse_main);
}

static cosync_future wait_dl_fut;

static int wait_dl_child(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_future_wait(&wait_dl_fut, COSYNC_FOREVER));
    return cosync_future_result(&wait_dl_fut, result);
}

static int wait_dl_main(void *arg, void **result)
{
    (void)result;
    cosync_return_when when = (cosync_return_when)(intptr_t)arg;
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], wait_dl_child, NULL, &(cosync_task_opts){.name = "c0"}));
    CHECK_OK(cosync_task_spawn(&t[1], wait_dl_child, NULL, &(cosync_task_opts){.name = "c1"}));
    size_t idx = 99;
    CHECK_OK(cosync_wait(t, 2, when, &idx, COSYNC_FOREVER));
    /* the first to finish, or none failed (n) */
    CHECK_EQ(idx, when == COSYNC_FIRST_COMPLETED ? 0 : 2);
    join_ok(t[0]);
    join_ok(t[1]);
    return 0;
}

/* The report of a deadlock in which main waits (on @main_waits_on) for
 * two children, each waiting on wait_dl_fut; then the future is set, and
 * the loop runs to its end. */
static void check_children_report(cosync_loop *loop, cosync_task m, capture *cap,
                                  const char *main_waits_on)
{
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 3 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on %s\n"
             "  task 'c0' (#2) waits on future %p\n"
             "  task 'c1' (#3) waits on future %p\n",
             main_waits_on, (void *)&wait_dl_fut, (void *)&wait_dl_fut);
    CHECK_STREQ(capture_text(cap), want);
    CHECK_OK(cosync_future_set_result(&wait_dl_fut, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(cap);
}

/* The report names the condition the wait is for, in each of the three. */
TEST(wait_deadlock_report)
{
    static const struct {
        cosync_return_when when;
        const char *name;
    } modes[] = {
        {COSYNC_ALL_COMPLETED, "all completed"},
        {COSYNC_FIRST_COMPLETED, "first completed"},
        {COSYNC_FIRST_EXCEPTION, "first exception"},
    };
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        cosync_future_init(&wait_dl_fut);
        capture cap;
        cosync_task m;
        cosync_loop *loop =
            deadlock_loop(&cap, wait_dl_main, (void *)(intptr_t)modes[i].when, "main", &m);
        char main_waits_on[64];
        snprintf(main_waits_on, sizeof main_waits_on, "wait (%s) for 2 unfinished task(s)",
                 modes[i].name);
        check_children_report(loop, m, &cap, main_waits_on);
    }
}

/* ------------------------------------------------------------------------
 * TaskGroup
 * ---------------------------------------------------------------------- */

static int tg_01_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job a = {.sleep = COSYNC_MS(100), .res = (void *)42};
    job b = {.sleep = COSYNC_MS(200), .res = (void *)11};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task t1, t2;
    CHECK_OK(cosync_taskgroup_spawn(&g, &t1, job_fn, &a, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &t2, job_fn, &b, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(200));
    int st = -1;
    void *r = NULL;
    CHECK_OK(cosync_task_result(t1, &st, &r));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)42);
    CHECK_OK(cosync_task_join(t1, &st, &r, 0));
    CHECK(r == (void *)42);
    CHECK_OK(cosync_task_join(t2, &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)11);
    return 0;
}

TEST(taskgroup_all_children_succeed)
{
    CHECK_OK(run_main(tg_01_main, NULL));
}

static cosync_taskgroup *tg_dl_group;

static int tg_dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    tg_dl_group = &g;
    CHECK_OK(
        cosync_taskgroup_spawn(&g, NULL, wait_dl_child, NULL, &(cosync_task_opts){.name = "c0"}));
    CHECK_OK(
        cosync_taskgroup_spawn(&g, NULL, wait_dl_child, NULL, &(cosync_task_opts){.name = "c1"}));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_future_done(&wait_dl_fut), true);
    return 0;
}

/* An owner stuck leaving its group is reported with the children left. */
TEST(taskgroup_deadlock_report)
{
    cosync_future_init(&wait_dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, tg_dl_main, NULL, "main", &m);
    char main_waits_on[64];
    snprintf(main_waits_on, sizeof main_waits_on, "task group %p (2 children left)",
             (void *)tg_dl_group);
    check_children_report(loop, m, &cap, main_waits_on);
}

static int tg_02_03_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_taskgroup_02: spawn, sleep in the body, spawn again */
    job a = {.sleep = COSYNC_MS(100), .res = (void *)42};
    job b = {.sleep = COSYNC_MS(200), .res = (void *)11};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task t1, t2;
    CHECK_OK(cosync_taskgroup_spawn(&g, &t1, job_fn, &a, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(150)));
    CHECK_OK(cosync_taskgroup_spawn(&g, &t2, job_fn, &b, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(350));
    int st = -1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(t1, &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)42);
    CHECK_OK(cosync_task_join(t2, &st, &r, 0));
    CHECK(r == (void *)11);

    /* test_taskgroup_03: a child cancelled explicitly; the rest go on */
    t0 = cosync_now();
    job c = {.sleep = COSYNC_SEC(1), .res = (void *)42};
    job d = {.sleep = COSYNC_MS(200), .res = (void *)11};
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, &t1, job_fn, &c, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(150)));
    CHECK_OK(cosync_task_cancel(t1));
    CHECK_OK(cosync_taskgroup_spawn(&g, &t2, job_fn, &d, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(350));
    CHECK_OK(cosync_task_join(t1, &st, &r, 0));
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_join(t2, &st, &r, 0));
    CHECK_EQ(st, 0);
    CHECK(r == (void *)11);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    return 0;
}

TEST(taskgroup_spawn_in_body_and_child_cancelled_explicitly)
{
    CHECK_OK(run_main(tg_02_03_main, NULL));
}

static int tg_failure_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_task self = cosync_task_current();
    /* test_cancel_children_on_child_error */
    job f[3] = {
        {.sleep = COSYNC_MS(100), .rc = EFAIL1},
        {.sleep = COSYNC_MS(100), .rc = EFAIL2},
        {.sleep = COSYNC_MS(100), .rc = EFAIL3},
    };
    job s = {.sleep = COSYNC_SEC(5), .cleanup = COSYNC_MS(5)};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task tf[3], ts;
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, &tf[i], job_fn, &f[i], NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &ts, job_fn, &s, NULL));
    /* the owner, blocked in its body, is cancelled by the first failure */
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(100));
    CHECK_EQ(cosync_task_cancelling(self), 1);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), EFAIL1);
    CHECK_EQ(cosync_now(), AT(105));
    /* the group took its cancellation back */
    CHECK_EQ(cosync_task_cancelling(self), 0);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_now(), AT(106));
    /* the sibling saw the cancellation */
    CHECK_EQ(s.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(s.woke_at, AT(100));
    CHECK_EQ(s.cleanup_rc, 0);
    int st = 0;
    CHECK_OK(cosync_task_join(tf[0], &st, NULL, 0));
    CHECK_EQ(st, EFAIL1);
    CHECK_OK(cosync_task_join(ts, &st, NULL, 0));
    CHECK_EQ(st, COSYNC_ECANCELED);
    /* the other two were already woken by their timers: each keeps its own
     * failure, not the group's cancellation */
    CHECK_OK(cosync_task_join(tf[1], &st, NULL, 0));
    CHECK_EQ(st, EFAIL2);
    CHECK_OK(cosync_task_join(tf[2], &st, NULL, 0));
    CHECK_EQ(st, EFAIL3);
    return 0;
}

TEST(taskgroup_first_failure_cancels_siblings_and_owner_body)
{
    CHECK_OK(run_main(tg_failure_main, NULL));
}

static int tg_two_failures_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_taskgroup_08: a sibling fails in its clean-up after the cancel */
    job a = {.sleep = COSYNC_MS(10), .rc = EFAIL1};
    job b = {.sleep = COSYNC_SEC(10), .cleanup = COSYNC_MS(2), .cancel_rc = EFAIL2};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task ta, tb;
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &a, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &tb, job_fn, &b, NULL));
    /* the owner goes straight to wait: it is not cancelled */
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), EFAIL1);
    CHECK_EQ(cosync_now(), AT(12));
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    int st = 0;
    CHECK_OK(cosync_task_join(tb, &st, NULL, 0));
    CHECK_EQ(st, EFAIL2);
    CHECK_OK(cosync_task_join(ta, &st, NULL, 0));
    CHECK_EQ(st, EFAIL1);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    return 0;
}

TEST(taskgroup_two_failures_first_is_returned)
{
    CHECK_OK(run_main(tg_two_failures_main, NULL));
}

typedef struct runner {
    int nchildren;
    bool sleep_in_body;
    int *num;
    int body_rc;
    int wait_rc;
    int64_t wait_returned;
} runner;

static int counting_child(void *arg, void **result)
{
    (void)result;
    int *num = arg;
    int rc = cosync_sleep(COSYNC_SEC(5));
    if (rc == COSYNC_ECANCELED)
        (*num)++;
    return rc;
}

static int runner_fn(void *arg, void **result)
{
    (void)result;
    runner *r = arg;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    for (int i = 0; i < r->nchildren; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, counting_child, r->num, NULL));
    if (r->sleep_in_body) {
        r->body_rc = cosync_sleep(COSYNC_SEC(10));
        if (r->body_rc == COSYNC_ECANCELED)
            *r->num += 10;
    }
    r->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    r->wait_returned = cosync_now();
    return r->wait_rc;
}

static int tg_owner_cancelled_main(void *arg, void **result)
{
    (void)result;
    bool sleep_in_body = arg != NULL;
    t0 = cosync_now();
    int num = 0;
    runner r = {.nchildren = 5, .sleep_in_body = sleep_in_body, .num = &num, .wait_rc = 1};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, runner_fn, &r, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK(!cosync_task_done(rt));
    CHECK_OK(cosync_task_cancel(rt));
    join_expect(rt, COSYNC_ECANCELED);
    CHECK_ERR(r.wait_rc, COSYNC_ECANCELED);
    CHECK_EQ(r.wait_returned, AT(100));
    if (sleep_in_body) {
        CHECK_ERR(r.body_rc, COSYNC_ECANCELED);
        CHECK_EQ(num, 15);
    } else {
        CHECK_EQ(num, 5);
    }
    return 0;
}

TEST(taskgroup_owner_cancelled_while_in_wait)
{
    /* test_cancellation, test_taskgroup_22 */
    CHECK_OK(run_main(tg_owner_cancelled_main, NULL));
}

TEST(taskgroup_owner_cancelled_before_wait)
{
    /* test_taskgroup_07, test_taskgroup_17 */
    CHECK_OK(run_main(tg_owner_cancelled_main, (void *)1));
}

static int tg_empty_owner_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* test_taskgroup_17 with no children at all */
    int num = 0;
    runner r = {.nchildren = 0, .sleep_in_body = true, .num = &num, .wait_rc = 1};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, runner_fn, &r, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK_OK(cosync_task_cancel(rt));
    join_expect(rt, COSYNC_ECANCELED);
    CHECK_ERR(r.wait_rc, COSYNC_ECANCELED);
    CHECK_EQ(num, 10);
    return 0;
}

TEST(taskgroup_empty_owner_cancelled_before_wait)
{
    CHECK_OK(run_main(tg_empty_owner_cancelled_main, NULL));
}

/* A task cancelled earlier, which handled it (without uncancel), opens a
 * group to clean up: the old cancellation is not the group's business. */
typedef struct tg_cleanup {
    int sleep_rc;
    int wait_rc;
    int after_rc;
    job child;
} tg_cleanup;

static int tg_cleanup_runner(void *arg, void **result)
{
    (void)result;
    tg_cleanup *x = arg;
    x->sleep_rc = cosync_sleep(COSYNC_SEC(10));
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &x->child, NULL));
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->after_rc = cosync_sleep(COSYNC_MS(1));
    return 0;
}

static int tg_after_handled_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    tg_cleanup x = {.child = {.sleep = COSYNC_MS(10)}};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, tg_cleanup_runner, &x, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_task_cancel(rt));
    join_expect(rt, COSYNC_ECANCELED); /* it never uncancelled */
    CHECK_ERR(x.sleep_rc, COSYNC_ECANCELED);
    CHECK(x.child.started);
    CHECK_OK(x.child.sleep_rc);
    CHECK_EQ(x.child.woke_at, AT(11));
    CHECK_OK(x.wait_rc);
    CHECK_OK(x.after_rc);
    return 0;
}

/* Cancelled from outside in wait, the owner cancels the children and then
 * waits for their clean-up without being interrupted: a second request
 * stays pending until the wait has returned. */
typedef struct tg_twice {
    job jobs[2];
    int wait_rc;
    int64_t wait_returned;
    int after_rc;
} tg_twice;

static int tg_twice_runner(void *arg, void **result)
{
    (void)result;
    tg_twice *x = arg;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &x->jobs[i], NULL));
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->wait_returned = cosync_now();
    x->after_rc = cosync_sleep(COSYNC_MS(1));
    return 0;
}

static int tg_twice_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    tg_twice x = {.jobs = {{.sleep = COSYNC_SEC(10), .cleanup = COSYNC_MS(20)},
                           {.sleep = COSYNC_SEC(10), .cleanup = COSYNC_MS(30)}},
                  .wait_rc = 1,
                  .after_rc = 1};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, tg_twice_runner, &x, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_OK(cosync_task_cancel(rt));
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_EQ(x.wait_rc, 1); /* still waiting for the clean-ups */
    CHECK_OK(cosync_task_cancel(rt));
    join_expect(rt, COSYNC_ECANCELED);
    CHECK_ERR(x.wait_rc, COSYNC_ECANCELED);
    CHECK_EQ(x.wait_returned, AT(35)); /* the longer clean-up, not the second request */
    CHECK_EQ(x.jobs[0].ended_at, AT(25));
    CHECK_EQ(x.jobs[1].ended_at, AT(35));
    CHECK_OK(x.jobs[0].cleanup_rc);
    CHECK_OK(x.jobs[1].cleanup_rc);
    CHECK_ERR(x.after_rc, COSYNC_ECANCELED); /* the second request, delivered now */
    return 0;
}

TEST(taskgroup_wait_for_cancelled_children_is_not_interrupted)
{
    CHECK_OK(run_main(tg_twice_main, NULL));
}

TEST(taskgroup_opened_after_a_handled_cancellation)
{
    CHECK_OK(run_main(tg_after_handled_cancel_main, NULL));
}

/* A cancellation requested while the owner runs, not yet delivered when it
 * reaches wait, is delivered once: by wait's COSYNC_ECANCELED. */
typedef struct tg_pending {
    job jobs[1];
    int nchildren;
    int wait_rc;
    int after_rc[2];
    int cancelling;
} tg_pending;

static int tg_pending_runner(void *arg, void **result)
{
    (void)result;
    tg_pending *x = arg;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    for (int i = 0; i < x->nchildren; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &x->jobs[i], NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(cosync_task_current())); /* pending: not a suspension yet */
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->after_rc[0] = cosync_sleep(COSYNC_MS(1));
    x->after_rc[1] = cosync_sleep(COSYNC_MS(1));
    x->cancelling = cosync_task_cancelling(cosync_task_current());
    return 0;
}

static int tg_pending_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int n = 0; n < 2; n++) {
        tg_pending x = {
            .jobs = {{.sleep = COSYNC_SEC(1)}}, .nchildren = n, .wait_rc = 1, .after_rc = {1, 1}};
        cosync_task rt;
        CHECK_OK(cosync_task_spawn(&rt, tg_pending_runner, &x, NULL));
        join_expect(rt, COSYNC_ECANCELED);
        CHECK_ERR(x.wait_rc, COSYNC_ECANCELED);
        CHECK_OK(x.after_rc[0]);
        CHECK_OK(x.after_rc[1]);
        CHECK_EQ(x.cancelling, 1);
    }
    return 0;
}

TEST(taskgroup_pending_cancellation_delivered_once)
{
    CHECK_OK(run_main(tg_pending_main, NULL));
}

/* A cancellation from outside and a child's failure together: the wait
 * reports the failure, and the cancellation, which its return would have
 * delivered, comes at the owner's next suspension (Python 3.13 cancels
 * the parent again before raising the group's errors), once. Whether the
 * request was still pending when the owner reached the wait, came while
 * it waited there, came after a failure had made the group abort (while
 * a sibling still cleans up), or came from the failing child itself just
 * before it failed. */
enum tg_both_when { CANCEL_PENDING, CANCEL_IN_WAIT, CANCEL_AFTER_FAILURE, CANCEL_BY_FAILING_CHILD };

typedef struct tg_both {
    enum tg_both_when when;
    cosync_task owner;
    int wait_rc, after_rc[2], cancelling;
} tg_both;

static int fail_when_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    return EFAIL1;
}

static int fail_at_1ms(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    return EFAIL1;
}

/* cancelled, it takes 5 ms to clean up */
static int slow_cleanup(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    return COSYNC_ECANCELED;
}

static int cancel_owner(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_cancel(((tg_both *)arg)->owner));
    return 0;
}

static int cancel_owner_at_2ms(void *arg, void **result)
{
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    return cancel_owner(arg, result);
}

static int cancel_owner_then_fail(void *arg, void **result)
{
    CHECK_OK(cancel_owner(arg, result));
    return EFAIL1;
}

static void tg_both_children(tg_both *x, cosync_taskgroup *g)
{
    switch (x->when) {
    case CANCEL_PENDING:
        CHECK_OK(cosync_taskgroup_spawn(g, NULL, fail_when_cancelled, NULL, NULL));
        CHECK_OK(cosync_yield());               /* the child sleeps */
        CHECK_OK(cosync_task_cancel(x->owner)); /* pending: not a suspension yet */
        break;
    case CANCEL_IN_WAIT:
        CHECK_OK(cosync_taskgroup_spawn(g, NULL, fail_when_cancelled, NULL, NULL));
        CHECK_OK(cosync_task_spawn(NULL, cancel_owner, x, NULL)); /* runs while we wait */
        break;
    case CANCEL_AFTER_FAILURE:
        CHECK_OK(cosync_taskgroup_spawn(g, NULL, fail_at_1ms, NULL, NULL));
        CHECK_OK(cosync_taskgroup_spawn(g, NULL, slow_cleanup, NULL, NULL)); /* until 6 ms */
        CHECK_OK(cosync_task_spawn(NULL, cancel_owner_at_2ms, x, NULL));
        break;
    case CANCEL_BY_FAILING_CHILD:
        CHECK_OK(cosync_taskgroup_spawn(g, NULL, cancel_owner_then_fail, x, NULL));
        break;
    }
}

static int tg_both_runner(void *arg, void **result)
{
    (void)result;
    tg_both *x = arg;
    x->owner = cosync_task_current();
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    tg_both_children(x, &g);
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->after_rc[0] = cosync_sleep(COSYNC_MS(1));
    x->after_rc[1] = cosync_sleep(COSYNC_MS(1));
    x->cancelling = cosync_task_cancelling(cosync_task_current());
    return 0;
}

static int tg_both_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int when = CANCEL_PENDING; when <= CANCEL_BY_FAILING_CHILD; when++) {
        tg_both x = {.when = (enum tg_both_when)when, .wait_rc = 1, .after_rc = {1, 1}};
        cosync_task rt;
        CHECK_OK(cosync_task_spawn(&rt, tg_both_runner, &x, NULL));
        join_expect(rt, COSYNC_ECANCELED);
        CHECK_ERR(x.wait_rc, EFAIL1);
        CHECK_ERR(x.after_rc[0], COSYNC_ECANCELED);
        CHECK_OK(x.after_rc[1]);
        CHECK_EQ(x.cancelling, 1);
    }
    return 0;
}

TEST(taskgroup_failure_and_outside_cancel_deliver_both)
{
    CHECK_OK(run_main(tg_both_main, NULL));
}

/* A second cancel that comes while gather or wait_for waits for the task
 * it cancelled is passed on to the task again, as asyncio passes every
 * cancel() on: the task's clean-up is cancelled too, and the call returns
 * COSYNC_ECANCELED once for both. One that comes while a TaskGroup waits
 * for its cancelled children stays pending instead, for the caller's next
 * suspension (the group does not cancel its children twice). */
static int cleanup_got;

static int slow_to_finish(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED);
    cleanup_got = cosync_sleep(COSYNC_MS(5)); /* its clean-up takes a while */
    return 0;
}

typedef struct twice {
    cosync_task caller;
} twice;

static int cancel_twice(void *arg, void **result)
{
    (void)result;
    twice *x = arg;
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_task_cancel(x->caller));
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* the caller waits for the clean-up now */
    CHECK_OK(cosync_task_cancel(x->caller));
    return 0;
}

static int cancelled_twice_main(void *arg, void **result)
{
    (void)result;
    int which = (int)(intptr_t)arg;
    twice x = {.caller = cosync_task_current()};
    t0 = cosync_now();
    cleanup_got = 1;
    cosync_task c, t;
    CHECK_OK(cosync_task_spawn(&c, cancel_twice, &x, NULL));
    int rc;
    if (which == 2) {
        cosync_taskgroup g;
        CHECK_OK(cosync_taskgroup_init(&g));
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, slow_to_finish, NULL, NULL));
        rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    } else {
        CHECK_OK(cosync_task_spawn(&t, slow_to_finish, NULL, NULL));
        rc = which == 0 ? cosync_gather(&t, 1, NULL, COSYNC_FOREVER)
                        : cosync_wait_for(t, NULL, NULL, COSYNC_FOREVER);
    }
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_cancelling(x.caller), 2);
    if (which == 2) {
        CHECK_OK(cleanup_got);
        CHECK_ERR(cosync_sleep(COSYNC_MS(1)), COSYNC_ECANCELED); /* the second */
    } else {
        CHECK_ERR(cleanup_got, COSYNC_ECANCELED);  /* passed on */
        CHECK_EQ(cosync_now() - t0, COSYNC_MS(2)); /* the clean-up was cut short */
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* no further one */
    join_ok(c);
    CHECK_EQ(cosync_task_uncancel(x.caller), 1);
    CHECK_EQ(cosync_task_uncancel(x.caller), 0);
    return 0;
}

TEST(second_cancel_during_the_clean_up_wait_reaches_the_tasks_or_the_group_owner)
{
    for (int which = 0; which < 3; which++)
        CHECK_OK(run_main(cancelled_twice_main, (void *)(intptr_t)which));
}

/* The group's own request to cancel its owner (a child failed), never
 * delivered because the owner was in a wait that cannot be interrupted
 * (re-taking a condition's lock), is taken back whole: it does not fire
 * after the group, even for an owner still counting an older, handled
 * cancellation. */
typedef struct tg_own {
    cosync_cond cond;
    int wait_rc;
    int after_rc;
    int cancelling;
} tg_own;

static int tg_own_child(void *arg, void **result)
{
    (void)result;
    tg_own *x = arg;
    CHECK_OK(cosync_cond_acquire(&x->cond, COSYNC_FOREVER)); /* the owner's wait hands it over */
    CHECK_EQ(cosync_cond_notify(&x->cond, 1), 1);
    CHECK_OK(cosync_yield());                /* the owner runs and waits to re-take the lock */
    CHECK_OK(cosync_cond_release(&x->cond)); /* to the owner */
    return EFAIL1;
}

static int tg_own_runner(void *arg, void **result)
{
    (void)result;
    tg_own *x = arg;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(10)), COSYNC_ECANCELED); /* handled, never uncancelled */
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_cond_acquire(&x->cond, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, tg_own_child, x, NULL));
    CHECK_OK(cosync_cond_wait(&x->cond, COSYNC_FOREVER)); /* the failure comes while re-taking */
    CHECK_OK(cosync_cond_release(&x->cond));
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->after_rc = cosync_sleep(COSYNC_MS(1));
    x->cancelling = cosync_task_cancelling(cosync_task_current());
    return 0;
}

static int tg_own_main(void *arg, void **result)
{
    (void)arg, (void)result;
    tg_own x = {.cond = COSYNC_COND_INIT, .wait_rc = 1, .after_rc = 1};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, tg_own_runner, &x, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(rt));
    join_expect(rt, COSYNC_ECANCELED);
    CHECK_ERR(x.wait_rc, EFAIL1);
    CHECK_OK(x.after_rc);
    CHECK_EQ(x.cancelling, 1); /* the older one only */
    CHECK_OK(cosync_cond_destroy(&x.cond));
    return 0;
}

TEST(taskgroup_takes_back_its_undelivered_cancel_of_the_owner)
{
    CHECK_OK(run_main(tg_own_main, NULL));
}

typedef struct tg15 {
    int body_rc;
    int cleanup_rc;
    int64_t cleanup_woke;
    int wait_rc;
    int cancelling_after;
} tg15;

static int tg15_runner(void *arg, void **result)
{
    (void)result;
    tg15 *x = arg;
    job crash = {.sleep = COSYNC_MS(300), .rc = EFAIL1};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &crash, NULL));
    x->body_rc = cosync_sleep(COSYNC_SEC(10));
    if (x->body_rc == COSYNC_ECANCELED) {
        /* clean-up after the outside cancel, interrupted by the group */
        x->cleanup_rc = cosync_sleep(COSYNC_MS(500));
        x->cleanup_woke = cosync_now();
    }
    x->wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    x->cancelling_after = cosync_task_cancelling(cosync_task_current());
    return x->wait_rc;
}

static int tg_15_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    tg15 x = {0};
    cosync_task rt;
    CHECK_OK(cosync_task_spawn(&rt, tg15_runner, &x, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK_OK(cosync_task_cancel(rt));
    int st = 0;
    CHECK_OK(cosync_task_join(rt, &st, NULL, COSYNC_FOREVER));
    CHECK_ERR(x.body_rc, COSYNC_ECANCELED);
    CHECK_ERR(x.cleanup_rc, COSYNC_ECANCELED);
    CHECK_EQ(x.cleanup_woke, AT(300));
    /* the child's failure wins over the outside cancellation ... */
    CHECK_ERR(x.wait_rc, EFAIL1);
    CHECK_EQ(st, EFAIL1);
    /* ... and only the group's own request was taken back */
    CHECK_EQ(x.cancelling_after, 1);
    return 0;
}

TEST(taskgroup_15_failure_during_owner_cleanup)
{
    CHECK_OK(run_main(tg_15_main, NULL));
}

static int tg_13_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_taskgroup_13: the outer group's failure cancels the owner while it
     * waits on the inner group */
    job outer = {.sleep = COSYNC_MS(100), .rc = EFAIL1};
    job inner = {.sleep = COSYNC_SEC(10), .rc = EFAIL2};
    cosync_taskgroup g1, g2;
    CHECK_OK(cosync_taskgroup_init(&g1));
    CHECK_OK(cosync_taskgroup_spawn(&g1, NULL, job_fn, &outer, NULL));
    CHECK_OK(cosync_taskgroup_init(&g2));
    CHECK_OK(cosync_taskgroup_spawn(&g2, NULL, job_fn, &inner, NULL));
    CHECK_ERR(cosync_taskgroup_wait(&g2, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(100));
    CHECK_EQ(inner.sleep_rc, COSYNC_ECANCELED);
    CHECK_ERR(cosync_taskgroup_wait(&g1, COSYNC_FOREVER), EFAIL1);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    return 0;
}

TEST(taskgroup_13_nested_outer_failure)
{
    CHECK_OK(run_main(tg_13_main, NULL));
}

static int tg_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job a = {.sleep = COSYNC_SEC(1), .cleanup = COSYNC_MS(3)};
    job b = {.sleep = COSYNC_MS(10), .res = (void *)0xb};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task ta, tb;
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &a, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &tb, job_fn, &b, NULL));
    CHECK_ERR(cosync_taskgroup_wait(&g, AT(50)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(53));
    CHECK_EQ(a.woke_at, AT(50));
    int st = 0;
    CHECK_OK(cosync_task_join(ta, &st, NULL, 0));
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_join(tb, &st, NULL, 0));
    CHECK_EQ(st, 0);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);

    /* deadline 0 */
    job c = {.sleep = COSYNC_SEC(1)};
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &c, NULL));
    CHECK_ERR(cosync_taskgroup_wait(&g, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_task_join(ta, &st, NULL, 0));
    CHECK_EQ(st, COSYNC_ECANCELED);
    CHECK(!c.started);
    CHECK_EQ(cosync_now(), AT(53));
    return 0;
}

TEST(taskgroup_wait_deadline_cancels_children)
{
    CHECK_OK(run_main(tg_deadline_main, NULL));
}

typedef struct late_spawner {
    cosync_taskgroup *g;
    int spawn_rc;
} late_spawner;

static int late_spawner_fn(void *arg, void **result)
{
    (void)result;
    late_spawner *l = arg;
    int rc = cosync_sleep(COSYNC_SEC(1));
    /* cancelled by the group's abort: the group refuses new children */
    l->spawn_rc = cosync_taskgroup_spawn(l->g, NULL, return_arg, NULL, NULL);
    return rc;
}

static int tg_spawn_eperm_main(void *arg, void **result)
{
    (void)arg, (void)result;
    job f = {.sleep = COSYNC_MS(10), .rc = EFAIL1};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    late_spawner l = {&g, 1};
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &f, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, late_spawner_fn, &l, NULL));
    CHECK_ERR(cosync_sleep(COSYNC_SEC(1)), COSYNC_ECANCELED);
    /* test_taskgroup_no_create_task_after_failure */
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_spawn(&g, &t, return_arg, NULL, NULL), COSYNC_EPERM);
    CHECK_EQ(cosync_task_id(t), 0);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), EFAIL1);
    CHECK_ERR(l.spawn_rc, COSYNC_EPERM);
    CHECK_EQ(task_records(), 1); /* nothing was spawned */
    /* test_taskgroup_finished: spawn after leaving */
    CHECK_ERR(cosync_taskgroup_spawn(&g, NULL, return_arg, NULL, NULL), COSYNC_EPERM);
    CHECK_EQ(task_records(), 1);

    /* a group left cleanly refuses too */
    cosync_taskgroup h;
    CHECK_OK(cosync_taskgroup_init(&h));
    CHECK_OK(cosync_taskgroup_wait(&h, COSYNC_FOREVER));
    CHECK_ERR(cosync_taskgroup_spawn(&h, NULL, return_arg, NULL, NULL), COSYNC_EPERM);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(taskgroup_spawn_after_abort_or_leaving_is_eperm)
{
    CHECK_OK(run_main(tg_spawn_eperm_main, NULL));
}

typedef struct other_waiter {
    cosync_taskgroup *g;
    int rc;
} other_waiter;

static int other_waiter_fn(void *arg, void **result)
{
    (void)result;
    other_waiter *o = arg;
    o->rc = cosync_taskgroup_wait(o->g, COSYNC_FOREVER);
    return 0;
}

static int tg_wait_eperm_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job a = {.sleep = COSYNC_MS(10)};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &a, NULL));
    other_waiter o = {&g, 1};
    cosync_task ot;
    CHECK_OK(cosync_task_spawn(&ot, other_waiter_fn, &o, NULL));
    CHECK_OK(cosync_task_join(ot, NULL, NULL, COSYNC_FOREVER));
    CHECK_ERR(o.rc, COSYNC_EPERM);
    CHECK_EQ(cosync_now(), t0);
    /* a child is not the owner either */
    CHECK_OK(cosync_taskgroup_spawn(&g, &ot, other_waiter_fn, &o, NULL));
    o.rc = 1;
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_ERR(o.rc, COSYNC_EPERM);
    CHECK_EQ(cosync_now(), AT(10));
    CHECK_OK(cosync_task_join(ot, NULL, NULL, 0));
    /* test_taskgroup_double_enter: wait twice */
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_wait(&g, 0), COSYNC_EPERM);
    return 0;
}

TEST(taskgroup_wait_by_non_owner_or_twice_is_eperm)
{
    cosync_taskgroup g;
    CHECK_ERR(cosync_taskgroup_init(&g), COSYNC_EPERM); /* outside a task */
    CHECK_OK(run_main(tg_wait_eperm_main, NULL));
}

typedef struct root_ctx {
    cosync_taskgroup *g;
    job kids[2];
    cosync_task kt[2];
} root_ctx;

static int root_fn(void *arg, void **result)
{
    (void)result;
    root_ctx *r = arg;
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK_OK(cosync_taskgroup_spawn(r->g, &r->kt[0], job_fn, &r->kids[0], NULL));
    CHECK_OK(cosync_taskgroup_spawn(r->g, &r->kt[1], job_fn, &r->kids[1], NULL));
    return 0;
}

static int tg_24_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* test_taskgroup_24: children spawn children while the owner waits */
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    root_ctx r = {.g = &g,
                  .kids = {{.sleep = COSYNC_MS(100), .res = (void *)1},
                           {.sleep = COSYNC_MS(200), .res = (void *)2}}};
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, root_fn, &r, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(300));
    CHECK_EQ(r.kids[0].ended_at, AT(200));
    CHECK_EQ(r.kids[1].ended_at, AT(300));
    void *res = NULL;
    CHECK_OK(cosync_task_join(r.kt[0], NULL, &res, 0));
    CHECK(res == (void *)1);
    CHECK_OK(cosync_task_join(r.kt[1], NULL, &res, 0));
    CHECK(res == (void *)2);
    return 0;
}

TEST(taskgroup_children_spawn_children_during_wait)
{
    CHECK_OK(run_main(tg_24_main, NULL));
}

typedef struct hydra_ctx {
    cosync_taskgroup *g;
    int nhydras;
    int refused;
} hydra_ctx;

static int hydra_fn(void *arg, void **result)
{
    (void)result;
    hydra_ctx *h = arg;
    h->nhydras++;
    int rc = cosync_sleep(COSYNC_MS(10));
    if (rc)
        return rc;
    for (int i = 0; i < 2; i++) {
        rc = cosync_taskgroup_spawn(h->g, NULL, hydra_fn, h, NULL);
        if (rc == COSYNC_EPERM)
            h->refused++;
        else
            CHECK_OK(rc);
    }
    return 0;
}

static int hercules_fn(void *arg, void **result)
{
    (void)result;
    hydra_ctx *h = arg;
    while (h->nhydras < 10)
        CHECK_OK(cosync_sleep(COSYNC_MS(15)));
    return EFAIL1;
}

static int tg_25_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    hydra_ctx h = {.g = &g};
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, hydra_fn, &h, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, hercules_fn, &h, NULL));
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), EFAIL1);
    CHECK_GE(h.nhydras, 10);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(taskgroup_25_hydra)
{
    CHECK_OK(run_main(tg_25_main, NULL));
}

static int tg_handles_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    job a = {.sleep = COSYNC_MS(10), .rc = EFAIL1, .res = (void *)0xa};
    job others[3] = {{.sleep = COSYNC_MS(1)}, {.sleep = COSYNC_MS(2)}, {.sleep = COSYNC_MS(3)}};
    CHECK_EQ(task_records(), 1);
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task ta;
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &others[i], NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &a, NULL));
    CHECK_EQ(task_records(), 5);
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_EQ(task_records(), 2); /* the handle-less children freed themselves */
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), EFAIL1);
    CHECK_EQ(task_records(), 2); /* main + ta */
    CHECK_EQ(alive_tasks(), 1);
    CHECK(cosync_task_done(ta));
    int st = 0;
    void *r = NULL;
    CHECK_OK(cosync_task_join(ta, &st, &r, 0));
    CHECK_EQ(st, EFAIL1);
    CHECK(r == (void *)0xa);
    CHECK_EQ(task_records(), 1);
    CHECK(stale(ta));
    return 0;
}

TEST(taskgroup_child_handle_stays_joinable_handleless_freed)
{
    CHECK_OK(run_main(tg_handles_main, NULL));
}

static int tg_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_EQ(cosync_taskgroup_cancel(&g), 0);
    job quick = {.sleep = COSYNC_MS(1)};
    job slow[3] = {{.sleep = COSYNC_SEC(1)}, {.sleep = COSYNC_SEC(1)}, {.sleep = COSYNC_SEC(1)}};
    cosync_task ts[3];
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &quick, NULL));
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, &ts[i], job_fn, &slow[i], NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(2))); /* quick has finished */
    CHECK_EQ(cosync_taskgroup_cancel(&g), 3);
    /* children cancelled by the group: the group succeeds */
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(2));
    for (int i = 0; i < 3; i++) {
        int st = 0;
        CHECK_EQ(slow[i].sleep_rc, COSYNC_ECANCELED);
        CHECK_OK(cosync_task_join(ts[i], &st, NULL, 0));
        CHECK_EQ(st, COSYNC_ECANCELED);
    }
    CHECK_EQ(cosync_taskgroup_cancel(&g), 0);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0);
    return 0;
}

TEST(taskgroup_cancel_returns_the_number_cancelled)
{
    CHECK_OK(run_main(tg_cancel_main, NULL));
}

static int tg_detach_main(void *arg, void **result)
{
    (void)arg, (void)result;
    job a = {.sleep = COSYNC_MS(10)};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task ta;
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &a, NULL));
    /* cosync.h, cosync_task_detach: "COSYNC_EINVAL if it is already detached
     * or belongs to a task group" */
    CHECK_ERR(cosync_task_detach(ta), COSYNC_EINVAL);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_OK(cosync_task_join(ta, NULL, NULL, 0));
    return 0;
}

/* A task group belongs to its owner's loop: a task of another loop may not
 * spawn into it. */
static cosync_taskgroup other_g;
static cosync_event other_ev;
static int other_spawn_rc;

static int wait_other_ev(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&other_ev, COSYNC_FOREVER);
}

static int other_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_taskgroup_init(&other_g));
    CHECK_OK(cosync_taskgroup_spawn(&other_g, NULL, wait_other_ev, NULL, NULL));
    return cosync_taskgroup_wait(&other_g, COSYNC_FOREVER);
}

static int other_spawner(void *arg, void **result)
{
    (void)arg, (void)result;
    other_spawn_rc = cosync_taskgroup_spawn(&other_g, NULL, nop, NULL, NULL);
    return 0;
}

TEST(taskgroup_spawn_from_another_loop_is_eperm)
{
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_event_init(&other_ev);
    cosync_task owner, stopper, t;
    CHECK_OK(cosync_loop_spawn(a, &owner, other_owner, NULL, NULL));
    spawn_and_run(a, &stopper, nop, NULL); /* the owner waits in the group */
    other_spawn_rc = 1;
    spawn_and_run(b, &t, other_spawner, NULL);
    CHECK_ERR(other_spawn_rc, COSYNC_EPERM);
    CHECK_OK(cosync_event_set(&other_ev));
    int st = 1;
    CHECK_OK(cosync_loop_run(a, owner, &st, NULL));
    CHECK_OK(st);
    end_loop(a);
    end_loop(b);
}

TEST(taskgroup_child_cannot_be_detached)
{
    CHECK_OK(run_main(tg_detach_main, NULL));
}

/* ------------------------------------------------------------------------
 * TaskGroup: allocation failures (fault injection, src/fault.h)
 * ---------------------------------------------------------------------- */

/* Run @fn(@arg) as "main" of a fresh virtual-clock loop that allocates
 * through the counting allocator @c; end_loop() it, and check that it
 * left nothing allocated. Returns main's status. */
static int run_main_counted(cosync_task_fn fn, void *arg, counting *c)
{
    cosync_allocator a = {count_realloc, c};
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    end_loop(loop);
    CHECK_EQ(c->live, 0);
    return status;
}

/* cosync_taskgroup_spawn when every task record is taken: the record
 * block must grow, and that allocation fails. cosync.h: it returns as
 * cosync_task_spawn, COSYNC_ENOMEM with nothing created. The group is not
 * disturbed: a spawn that failed is not a child that failed, so neither
 * the children already in it nor the owner are cancelled, and a retry
 * succeeds (then with the new block). */
typedef struct tg_spawn_fault {
    long k;
    int fill; /* tasks spawned first: with main and two children they fill whole blocks */
    counting *c;
    bool failed;
} tg_spawn_fault;

static int tg_spawn_fault_main(void *arg, void **result)
{
    (void)result;
    tg_spawn_fault *f = arg;
    t0 = cosync_now();
    cosync_task self = cosync_task_current();
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    job a = {.sleep = COSYNC_MS(10), .res = (void *)0xa};
    job b = {.sleep = COSYNC_MS(20), .res = (void *)0xb};
    cosync_task ta, tb;
    CHECK_OK(cosync_taskgroup_spawn(&g, &ta, job_fn, &a, NULL));
    CHECK_OK(cosync_taskgroup_spawn(&g, &tb, job_fn, &b, NULL));
    CHECK_OK(cosync_yield()); /* they are running (sleeping) when the spawn fails */
    CHECK(a.started && b.started);
    cosync_task *fill = malloc(sizeof *fill * (size_t)f->fill);
    CHECK_NOTNULL(fill);
    for (int i = 0; i < f->fill; i++)
        CHECK_OK(cosync_task_spawn(&fill[i], nop, NULL, NULL));
    cosync_loop_stats before = loop_stats();
    long live = f->c->live;
    long failures = cosync__fault_failures;
    job x = {.sleep = COSYNC_MS(5), .res = (void *)0xc};
    cosync_task tx = COSYNC_TASK_NONE;
    cosync__fault_countdown = f->k;
    int rc = cosync_taskgroup_spawn(&g, &tx, job_fn, &x, NULL);
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    if (f->failed) {
        CHECK_EQ(cosync__fault_failures, failures + 1);
        CHECK_ERR(rc, COSYNC_ENOMEM);
        CHECK_NULL(tx.rec); /* no handle: nothing was created */
        CHECK_EQ(tx.id, 0);
        CHECK_EQ(f->c->live, live);
        cosync_loop_stats after = loop_stats();
        CHECK_EQ(after.tasks_records, before.tasks_records);
        CHECK_EQ(after.tasks_alive, before.tasks_alive);
        CHECK_EQ(after.tasks_ready, before.tasks_ready);
        /* nothing cancelled: the owner, its children */
        CHECK_EQ(cosync_task_cancelling(self), 0);
        CHECK_EQ(cosync_task_cancelling(ta), 0);
        CHECK_EQ(cosync_task_cancelling(tb), 0);
        /* the group is still open to children: the retry works */
        CHECK_OK(cosync_taskgroup_spawn(&g, &tx, job_fn, &x, NULL));
    } else {
        CHECK_OK(rc);
    }
    /* the spawn that succeeded needed a new block: one more allocation */
    CHECK_EQ(f->c->live, live + 1);
    CHECK_EQ(loop_stats().tasks_records, before.tasks_records + 1);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(20)); /* the children slept their whole time */
    CHECK_EQ(cosync_task_cancelling(self), 0);
    CHECK_OK(a.sleep_rc);
    CHECK_OK(b.sleep_rc);
    CHECK_OK(x.sleep_rc);
    CHECK_EQ(x.woke_at, AT(5));
    int st = 1;
    void *r = NULL;
    CHECK_OK(cosync_task_join(ta, &st, &r, 0));
    CHECK_OK(st);
    CHECK(r == (void *)0xa);
    CHECK_OK(cosync_task_join(tb, &st, &r, 0));
    CHECK_OK(st);
    CHECK(r == (void *)0xb);
    CHECK_OK(cosync_task_join(tx, &st, &r, 0));
    CHECK_OK(st);
    CHECK(r == (void *)0xc);
    for (int i = 0; i < f->fill; i++)
        join_ok(fill[i]);
    free(fill);
    return 0;
}

TEST(taskgroup_spawn_without_memory_fails_alone_and_can_be_retried)
{
    /* the next spawn needs the second block (256 records in the first),
     * then the third (512 in the second) */
    int fills[] = {256 - 3, 256 + 512 - 3};
    for (size_t i = 0; i < sizeof fills / sizeof fills[0]; i++) {
        long k;
        for (k = 0;; k++) {
            CHECK_LT(k, 100);
            counting c = {0, 0};
            tg_spawn_fault f = {.k = k, .fill = fills[i], .c = &c};
            CHECK_OK(run_main_counted(tg_spawn_fault_main, &f, &c));
            if (!f.failed)
                break;
        }
        CHECK_GE(k, 1); /* the block */
    }
}

/* A child whose stack cannot be made when it is to start finishes with
 * COSYNC_ENOMEM without running (cosync_task_spawn's doc): for its group,
 * a child that failed. With the owner still in the group's body, cosync.h
 * promises what asyncio's TaskGroup does: the other child is cancelled,
 * the owner too (its suspension in the body returns COSYNC_ECANCELED), no
 * child can be added while the group shuts down, and
 * cosync_taskgroup_wait takes the owner's cancellation back and returns
 * the failed child's status. A new group afterwards works. */
typedef struct tg_stack_fault {
    long k;
    counting *c;
    bool failed;
    int failed_child; /* -1: none */
} tg_stack_fault;

static int tg_stack_fault_main(void *arg, void **result)
{
    (void)result;
    tg_stack_fault *f = arg;
    t0 = cosync_now();
    cosync_task self = cosync_task_current();
    /* one child on a stack class of its own (its stack takes a descriptor,
     * a chunk record and the chunk's map), one on the loop's (main's chunk
     * has room: a descriptor) */
    static const size_t sizes[2] = {256 << 10, 0};
    job j[2] = {{.sleep = COSYNC_MS(10), .res = (void *)1},
                {.sleep = COSYNC_MS(10), .res = (void *)2}};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, &t[i], job_fn, &j[i],
                                        &(cosync_task_opts){.stack_size = sizes[i]}));
    long live = f->c->live;
    long failures = cosync__fault_failures;
    cosync__fault_countdown = f->k;
    int body_rc = cosync_sleep(COSYNC_SEC(1)); /* the children start: the group is open */
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    f->failed_child = -1;
    int st[2];
    if (!f->failed) {
        CHECK_OK(body_rc);
        CHECK_EQ(cosync_now(), AT(1000));
        CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
        for (int i = 0; i < 2; i++) {
            void *r = NULL;
            CHECK_OK(cosync_task_join(t[i], &st[i], &r, 0));
            CHECK_OK(st[i]);
            CHECK(r == j[i].res);
        }
        CHECK_EQ(f->c->live, live + 3); /* the two stacks, kept in the cache */
        return 0;
    }
    CHECK_EQ(cosync__fault_failures, failures + 1);
    /* the owner's body is interrupted at once, when the child fails */
    CHECK_ERR(body_rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(0));
    CHECK_EQ(cosync_task_cancelling(self), 1);
    /* shutting down after a failure: no new child */
    CHECK_ERR(cosync_taskgroup_spawn(&g, NULL, nop, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), COSYNC_ENOMEM);
    CHECK_EQ(cosync_now(), AT(0));             /* the other child did not sleep its time */
    CHECK_EQ(cosync_task_cancelling(self), 0); /* the group took its request back */
    for (int i = 0; i < 2; i++) {
        CHECK_OK(cosync_task_join(t[i], &st[i], NULL, 0));
        if (st[i] == COSYNC_ENOMEM) {
            CHECK_EQ(f->failed_child, -1);
            f->failed_child = i;
            CHECK(!j[i].started); /* never ran */
        } else {
            /* cancelled by the group: before it started, or in its sleep */
            CHECK_ERR(st[i], COSYNC_ECANCELED);
            if (j[i].started)
                CHECK_ERR(j[i].sleep_rc, COSYNC_ECANCELED);
        }
    }
    CHECK_NE(f->failed_child, -1);
    CHECK_EQ(loop_stats().stacks_in_use, 1); /* main's: nothing held by the children */
    /* what the failed stack had got went back; the first child's stack,
     * if it was made (the second failed), stays cached */
    CHECK_EQ(f->c->live, live + (f->failed_child == 1 ? 2 : 0));

    /* a new group: both children get their stacks and run; the owner is
     * not cancelled again */
    t0 = cosync_now();
    job r[2] = {{.sleep = COSYNC_MS(10)}, {.sleep = COSYNC_MS(10)}};
    CHECK_OK(cosync_taskgroup_init(&g));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, job_fn, &r[i],
                                        &(cosync_task_opts){.stack_size = sizes[i]}));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(10));
    for (int i = 0; i < 2; i++) {
        CHECK(r[i].started);
        CHECK_OK(r[i].sleep_rc);
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(cosync_task_cancelling(self), 0);
    return 0;
}

TEST(taskgroup_child_without_a_stack_fails_the_group)
{
    int failed[2] = {0, 0};
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        tg_stack_fault f = {.k = k, .c = &c};
        CHECK_OK(run_main_counted(tg_stack_fault_main, &f, &c));
        if (!f.failed)
            break;
        failed[f.failed_child]++;
    }
    /* the first child at each of its stack's points (descriptor, chunk
     * record, chunk map), then the second (its descriptor) */
    CHECK_GE(failed[0], 3);
    CHECK_GE(failed[1], 1);
}

/* An owner that ends without leaving a group on its stack (an early
 * return on an error, say). Its children are cut loose from the group,
 * whose frame is gone, and cancelled; one line reports it. */
typedef struct {
    int rc[3];        /* each child's first return */
    bool inner;       /* open a second group inside the first, and leave it */
    bool crossed;     /* open one before the first, and leave it first */
    bool in_static;   /* the group outside the stack: not detected */
    cosync_task kept; /* the outer group's child with a handle */
} abandoned;

static int abandoned_child(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    *rc = cosync_sleep(COSYNC_MS(100));
    if (*rc == COSYNC_ECANCELED) /* a clean-up: it ends once the scribbler has filled its stack */
        CHECK_OK(cosync_sleep(COSYNC_MS(50)));
    return *rc;
}

/* Fails the group once its sleep ends. */
static int abandoned_failing(void *arg, void **result)
{
    return abandoned_child(arg, result) ? COSYNC_ECANCELED : COSYNC_EINVAL;
}

static int abandoned_quick(void *arg, void **result)
{
    (void)result;
    int *rc = arg;
    *rc = cosync_yield();
    return *rc;
}

static int abandoned_owner(void *arg, void **result)
{
    (void)result;
    abandoned *ab = arg;
    static cosync_taskgroup outside;
    cosync_taskgroup g, inner, before;
    cosync_taskgroup *outer = ab->in_static ? &outside : &g;
    if (ab->crossed) {
        CHECK_OK(cosync_taskgroup_init(&before));
        CHECK_OK(cosync_taskgroup_spawn(&before, NULL, abandoned_quick, &ab->rc[2], NULL));
    }
    CHECK_OK(cosync_taskgroup_init(outer));
    CHECK_OK(cosync_taskgroup_spawn(outer, &ab->kept, abandoned_child, &ab->rc[0], NULL));
    CHECK_OK(cosync_taskgroup_spawn(
        outer, NULL, ab->in_static ? abandoned_failing : abandoned_child, &ab->rc[1], NULL));
    if (ab->crossed) { /* left before the one opened in it */
        CHECK_OK(cosync_taskgroup_wait(&before, COSYNC_FOREVER));
        CHECK_OK(ab->rc[2]);
    }
    if (ab->inner) {
        CHECK_OK(cosync_taskgroup_init(&inner));
        CHECK_OK(cosync_taskgroup_spawn(&inner, NULL, abandoned_quick, &ab->rc[2], NULL));
        CHECK_OK(cosync_taskgroup_wait(&inner, COSYNC_FOREVER));
        CHECK_OK(ab->rc[2]);
    }
    CHECK_OK(cosync_yield()); /* the children start their sleeps */
    return COSYNC_EINVAL;     /* an early return, without cosync_taskgroup_wait(outer) */
}

/* Runs on the stack the owner left (the next task to start takes it) and
 * fills the part of it the owner's frames used while the children
 * finish: a child that still wrote to its group would write here. */
static int abandoned_scribbler(void *arg, void **result)
{
    (void)arg, (void)result;
    volatile unsigned char fill[4096];
    for (size_t i = 0; i < sizeof fill; i++)
        fill[i] = 0xa5;
    CHECK_OK(cosync_sleep(COSYNC_MS(200)));
    for (size_t i = 0; i < sizeof fill; i++)
        CHECK_EQ(fill[i], 0xa5);
    return 0;
}

static int abandoned_main(void *arg, void **result)
{
    (void)result;
    abandoned *ab = arg;
    /* a group of another owner, whose child the owner's end must leave alone */
    cosync_taskgroup mine;
    int bystander_rc = 1;
    CHECK_OK(cosync_taskgroup_init(&mine));
    CHECK_OK(cosync_taskgroup_spawn(&mine, NULL, abandoned_child, &bystander_rc, NULL));
    cosync_task owner, scribbler;
    CHECK_OK(cosync_task_spawn(&owner, abandoned_owner, ab, &(cosync_task_opts){.name = "owner"}));
    CHECK_EQ(join_status(owner), COSYNC_EINVAL);
    CHECK_OK(cosync_task_spawn(&scribbler, abandoned_scribbler, NULL, NULL));
    int want = ab->in_static ? 0 : COSYNC_ECANCELED;
    CHECK_EQ(join_status(ab->kept), want);
    join_ok(scribbler);
    CHECK_EQ(ab->rc[0], want);
    CHECK_EQ(ab->rc[1], want);
    CHECK_OK(cosync_taskgroup_wait(&mine, COSYNC_FOREVER));
    CHECK_OK(bystander_rc);
    return 0;
}

/* Run @fn(@arg) as the task "main" of a loop whose reports go to @cap;
 * check main's status against @want; return the report's text ("" for
 * none). */
static const char *run_reported(cosync_task_fn fn, void *arg, int want, capture *cap)
{
    cosync_loop *loop = report_loop(cap, NULL);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_EQ(status, want);
    end_loop(loop);
    const char *text = capture_text(cap);
    return text ? text : "";
}

TEST(taskgroup_owner_ending_without_leaving_its_group_cancels_the_children)
{
    static const char want[] = "cosync: task 'owner' (#3) ended without leaving its task group "
                               "(cosync_taskgroup_wait): 2 children cancelled\n";
    for (int order = 0; order < 3; order++) {
        /* with an inner group, left: the outer one is still found; so is
         * one opened inside another that is left first */
        abandoned ab = {.inner = order == 1, .crossed = order == 2};
        capture cap;
        CHECK_STREQ(run_reported(abandoned_main, &ab, 0, &cap), want);
        capture_free(&cap);
    }
}

/* A group whose memory outlives the owner is not its frame's: its
 * children run on, as docs/tasks.md says. The second one fails, and the
 * group's attempt to cancel its owner must not reach the task that now
 * has the owner's record (the scribbler). */
TEST(taskgroup_owner_ending_without_leaving_a_static_group_is_not_detected)
{
    abandoned ab = {.in_static = true};
    capture cap;
    CHECK_STREQ(run_reported(abandoned_main, &ab, 0, &cap), "");
    capture_free(&cap);
}

static int empty_group_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    return COSYNC_EINVAL; /* an error before the first spawn */
}

/* Nothing points to a group without children: nothing to report. */
TEST(taskgroup_owner_ending_without_leaving_an_empty_group_is_not_reported)
{
    capture cap;
    CHECK_STREQ(run_reported(empty_group_owner, NULL, COSYNC_EINVAL, &cap), "");
    capture_free(&cap);
}

/* Once gather has given up (its deadline passed) it waits for the rest,
 * shielded. A cancel that comes after one of those waits was granted and
 * before the caller ran must not cut the next wait short: it is passed on
 * to the tasks still running, and every task is waited for and collected
 * with its own outcome. */
static int64_t given_up_t0;
#define GIVEN_UP_AT(ms) (given_up_t0 + COSYNC_MS(ms))

typedef struct {
    int64_t cleanup_until; /* after its cancellation, it cleans up until then */
    int first_rc;
    int later_cancels; /* cancellations that reached it during its clean-up */
    int64_t ended_at;
} given_up_worker;

static int given_up_worker_fn(void *arg, void **result)
{
    (void)result;
    given_up_worker *w = arg;
    w->first_rc = cosync_sleep_until(GIVEN_UP_AT(1000));
    while (cosync_now() < w->cleanup_until) /* a clean-up that outlives further cancels */
        if (cosync_sleep_until(w->cleanup_until) == COSYNC_ECANCELED)
            w->later_cancels++;
    w->ended_at = cosync_now();
    return 0;
}

static cosync_task given_up_gatherer;

static int given_up_canceller_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    /* arm the final timer after the second worker armed its own for AT(30):
     * at AT(30) that worker ends first (granting the gatherer's wait), then
     * this task cancels the gatherer before it has run */
    CHECK_OK(cosync_sleep_until(GIVEN_UP_AT(25)));
    CHECK_OK(cosync_sleep_until(GIVEN_UP_AT(30)));
    CHECK(!cosync_task_done(given_up_gatherer));
    CHECK_OK(cosync_task_cancel(given_up_gatherer));
    return 0;
}

static given_up_worker given_up_ws[3];

static int given_up_gatherer_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task ts[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&ts[i], given_up_worker_fn, &given_up_ws[i], NULL));
    cosync_outcome out[3];
    memset(out, 0x55, sizeof out);
    int rc = cosync_gather(ts, 3, out, GIVEN_UP_AT(10));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    /* every task was waited for: the last one ended at AT(50) */
    CHECK_EQ(cosync_now(), GIVEN_UP_AT(50));
    for (int i = 0; i < 3; i++) {
        CHECK_ERR(given_up_ws[i].first_rc, COSYNC_ECANCELED);
        CHECK_ERR(out[i].status, COSYNC_ECANCELED);
        CHECK_GT(given_up_ws[i].ended_at, 0);
    }
    /* the late cancel was passed on to the one task still running */
    CHECK_EQ(given_up_ws[0].later_cancels, 0);
    CHECK_EQ(given_up_ws[1].later_cancels, 0);
    CHECK_EQ(given_up_ws[2].later_cancels, 1);
    return 0;
}

static int given_up_main(void *arg, void **result)
{
    (void)arg, (void)result;
    given_up_t0 = cosync_now();
    given_up_ws[0] = (given_up_worker){.cleanup_until = GIVEN_UP_AT(20)};
    given_up_ws[1] = (given_up_worker){.cleanup_until = GIVEN_UP_AT(30)};
    given_up_ws[2] = (given_up_worker){.cleanup_until = GIVEN_UP_AT(50)};
    cosync_task c;
    CHECK_OK(cosync_task_spawn(&given_up_gatherer, given_up_gatherer_fn, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&c, given_up_canceller_fn, NULL, NULL));
    join_ok(c);
    /* the gatherer itself ends normally after its call returned ECANCELED */
    CHECK_ERR(join_status(given_up_gatherer), COSYNC_ECANCELED);
    return 0;
}

TEST(gather_given_up_passes_on_a_cancel_that_comes_after_a_grant)
{
    run_main_ok(given_up_main, NULL);
}

/* The try form (deadline 0) of gather and wait_for, with a cancellation
 * pending and a task unfinished: it gives up as for a deadline (the task is
 * cancelled and collected, COSYNC_EAGAIN) and, not being a suspension,
 * leaves the caller's cancellation pending for its next suspension. */
static int try_form_sleeper(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_MS(10)); /* ECANCELED once cancelled */
}

static int try_form_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* gather */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, try_form_sleeper, NULL, NULL));
    CHECK_OK(cosync_yield());                            /* it sleeps */
    CHECK_OK(cosync_task_cancel(cosync_task_current())); /* pending */
    cosync_outcome out;
    CHECK_ERR(cosync_gather(&t, 1, &out, 0), COSYNC_EAGAIN);
    CHECK_ERR(out.status, COSYNC_ECANCELED);     /* the task was cancelled and collected */
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* ours stayed pending */
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    /* wait_for */
    CHECK_OK(cosync_task_spawn(&t, try_form_sleeper, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    int status = 0;
    CHECK_ERR(cosync_wait_for(t, &status, NULL, 0), COSYNC_EAGAIN);
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    return 0;
}

TEST(try_form_of_gather_and_wait_for_keeps_a_pending_cancel)
{
    run_main_ok(try_form_main, NULL);
}

/*
 * cosync_wait returns COSYNC_ECANCELED "if the caller is cancelled". Only
 * a deadline's end is overruled by a task that finishes before the caller
 * runs again ("also when the last task it needed finished at the instant
 * of the deadline"). The tests cancel a waiter only while its tasks run
 * on; here the one task it waits for finishes in the same turn, after the
 * cancel and before the waiter resumes. Re-checking the condition after a
 * cancellation too returns 0 and loses the cancel.
 */
static cosync_event met_wait_go;
static cosync_task met_wait_waiter;

static int met_wait_finisher(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&met_wait_go, COSYNC_FOREVER));
    return 0;
}

static int met_wait_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&met_wait_go, COSYNC_FOREVER));
    CHECK_OK(cosync_task_cancel(met_wait_waiter)); /* before the finisher runs */
    return 0;
}

static int met_wait_wait_body(void *arg, void **result)
{
    (void)result;
    cosync_task *t = arg;
    size_t index = 99;
    CHECK_ERR(cosync_wait(t, 1, COSYNC_FIRST_COMPLETED, &index, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(index, 99);
    CHECK(cosync_task_done(*t)); /* it did finish meanwhile */
    return COSYNC_ECANCELED;
}

static int met_wait_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&met_wait_go);
    cosync_task c, f;
    CHECK_OK(cosync_task_spawn(&c, met_wait_canceller, NULL, NULL)); /* woken first */
    CHECK_OK(cosync_task_spawn(&f, met_wait_finisher, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&met_wait_waiter, met_wait_wait_body, &f, NULL));
    CHECK_OK(cosync_yield()); /* all three wait */
    CHECK_EQ(ready_tasks(), 0);
    CHECK_OK(cosync_event_set(&met_wait_go));
    join_expect(met_wait_waiter, COSYNC_ECANCELED);
    join_ok(c);
    join_ok(f);
    return 0;
}

TEST(wait_cancelled_in_the_turn_its_task_finishes)
{
    run_main_ok(met_wait_main, NULL);
}

/*
 * cosync_wait returns COSYNC_EINVAL if a handle is "the caller, of another
 * loop" (cosync.h). Neither case is tested for cosync_wait: watching
 * oneself never ends, and another loop's task is never finished by this one.
 */
/* not the run's main (which the run has claimed), nor a task being joined:
 * nothing but the self check can refuse it */
static int wait_misuse_waits_for_itself(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task me = cosync_task_current();
    size_t index = 7;
    CHECK_ERR(cosync_wait(&me, 1, COSYNC_FIRST_COMPLETED, &index, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_wait(&me, 1, COSYNC_ALL_COMPLETED, &index, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(index, 7);
    return 0;
}

static int wait_self_misuse_main(void *arg, void **result)
{
    (void)result;
    cosync_task *other = arg;
    cosync_task self_waiter;
    CHECK_OK(cosync_task_spawn(&self_waiter, wait_misuse_waits_for_itself, NULL, NULL));
    CHECK_OK(cosync_yield()); /* it runs, unclaimed */
    CHECK(cosync_task_done(self_waiter));
    join_ok(self_waiter);
    size_t index = 7;
    CHECK_ERR(cosync_wait(other, 1, COSYNC_FIRST_COMPLETED, &index, 0), COSYNC_EINVAL);
    CHECK_EQ(index, 7);
    return 0;
}

TEST(wait_refuses_the_caller_and_another_loops_task)
{
    cosync_loop *l2 = new_loop();
    cosync_task other;
    CHECK_OK(cosync_loop_spawn(l2, &other, nop, NULL, NULL));
    run_main_ok(wait_self_misuse_main, &other);
    CHECK_OK(cosync_loop_run(l2, other, NULL, NULL));
    end_loop(l2);
}

int main(void)
{
    RUN(gather_results_in_order_each_with_its_status);
    RUN(gather_of_zero_tasks);
    RUN(gather_of_finished_tasks_does_not_suspend);
    RUN(pending_cancel_and_finished_tasks_complete_at_once);
    RUN(gather_deadline_passes_cancels_and_collects_the_rest);
    RUN(gather_deadline_zero_on_unfinished_tasks);
    RUN(gather_caller_cancelled_cancels_and_collects_the_rest);
    RUN(caller_cancelled_cancels_the_tasks_at_once);
    RUN(deadline_cancels_the_tasks_at_that_instant);
    RUN(wait_for_cycle_is_a_deadlock_not_an_endless_cancel);
    RUN(gather_misuse_collects_nothing);
    RUN(gather_propagate_collects_all_when_all_succeed);
    RUN(gather_propagate_returns_the_first_failure_and_leaves_the_rest);
    RUN(gather_propagate_of_failed_tasks_does_not_suspend);
    RUN(gather_propagate_caller_cancelled_cancels_waits_and_collects_all);
    RUN(gather_propagate_cancel_after_the_tasks_ended_joins_the_first);
    RUN(gather_propagate_cancel_after_a_failure_stays_pending);
    RUN(gather_propagate_deadline_cancels_waits_and_collects_all);
    RUN(gather_propagate_misuse_collects_nothing);
    RUN(gather_propagate_deadlock_report);
    RUN(gather_claimed_task_is_busy);
    RUN(gather_of_10000_tasks);
    RUN(wait_for_success_in_time);
    RUN(wait_for_expiry_cancels_and_waits);
    RUN(wait_for_task_that_ignores_the_cancel);
    RUN(wait_for_caller_cancelled);
    RUN(wait_for_misuse);
    RUN(wait_first_completed_returns_the_first_to_finish);
    RUN(wait_already_met_does_not_suspend);
    RUN(wait_all_completed_waits_for_every_task);
    RUN(wait_first_exception_skips_cancelled_tasks);
    RUN(wait_deadline_leaves_the_tasks_running);
    RUN(wait_counts_a_task_that_finished_at_the_deadline);
    RUN(wait_caller_cancelled_leaves_the_tasks_running);
    RUN(wait_first_completed_names_the_first_within_a_turn);
    RUN(wait_gives_asyncio_as_completed);
    RUN(wait_misuse_claims_nothing);
    RUN(wait_deadlock_report);
    RUN(taskgroup_all_children_succeed);
    RUN(taskgroup_deadlock_report);
    RUN(taskgroup_spawn_in_body_and_child_cancelled_explicitly);
    RUN(taskgroup_first_failure_cancels_siblings_and_owner_body);
    RUN(taskgroup_two_failures_first_is_returned);
    RUN(taskgroup_owner_cancelled_while_in_wait);
    RUN(taskgroup_owner_cancelled_before_wait);
    RUN(taskgroup_empty_owner_cancelled_before_wait);
    RUN(taskgroup_wait_for_cancelled_children_is_not_interrupted);
    RUN(taskgroup_opened_after_a_handled_cancellation);
    RUN(taskgroup_pending_cancellation_delivered_once);
    RUN(taskgroup_failure_and_outside_cancel_deliver_both);
    RUN(second_cancel_during_the_clean_up_wait_reaches_the_tasks_or_the_group_owner);
    RUN(taskgroup_takes_back_its_undelivered_cancel_of_the_owner);
    RUN(taskgroup_15_failure_during_owner_cleanup);
    RUN(taskgroup_13_nested_outer_failure);
    RUN(taskgroup_wait_deadline_cancels_children);
    RUN(taskgroup_spawn_after_abort_or_leaving_is_eperm);
    RUN(taskgroup_wait_by_non_owner_or_twice_is_eperm);
    RUN(taskgroup_children_spawn_children_during_wait);
    RUN(taskgroup_25_hydra);
    RUN(taskgroup_child_handle_stays_joinable_handleless_freed);
    RUN(taskgroup_cancel_returns_the_number_cancelled);
    RUN(taskgroup_spawn_from_another_loop_is_eperm);
    RUN(taskgroup_child_cannot_be_detached);
    RUN(taskgroup_spawn_without_memory_fails_alone_and_can_be_retried);
    RUN(taskgroup_child_without_a_stack_fails_the_group);
    RUN(taskgroup_owner_ending_without_leaving_its_group_cancels_the_children);
    RUN(taskgroup_owner_ending_without_leaving_a_static_group_is_not_detected);
    RUN(taskgroup_owner_ending_without_leaving_an_empty_group_is_not_reported);
    RUN(gather_given_up_passes_on_a_cancel_that_comes_after_a_grant);
    RUN(try_form_of_gather_and_wait_for_keeps_a_pending_cancel);
    RUN(wait_cancelled_in_the_turn_its_task_finishes);
    RUN(wait_refuses_the_caller_and_another_loops_task);
    return 0;
}
