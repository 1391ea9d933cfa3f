/*
 * test_latch.c - cosync_latch (the seed's CountDownLatch) and
 * cosync_waitgroup (Go's sync.WaitGroup).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* A waiter on a latch or a wait group. */
typedef struct waiter {
    cosync_latch *latch; /* one of the two */
    cosync_waitgroup *wg;
    int64_t delay;
    int64_t deadline;
    int checkpoint;        /* < 0: none */
    bool may_be_destroyed; /* when it runs after its grant */
    int rc;
    int next_rc; /* of a sleep after the wait */
    int64_t woke_at;
    uint64_t woke_switches; /* the loop's switches when the wait returned */
} waiter;

static int waiter_fn(void *arg, void **result)
{
    (void)result;
    waiter *w = arg;
    if (w->delay)
        CHECK_OK(cosync_sleep(w->delay));
    w->rc = w->latch ? cosync_latch_wait(w->latch, w->deadline)
                     : cosync_waitgroup_wait(w->wg, w->deadline);
    w->woke_at = cosync_now();
    w->woke_switches = switches();
    if (w->rc == 0 && !w->may_be_destroyed) {
        if (w->latch)
            CHECK_EQ(cosync_latch_count(w->latch), 0);
        else
            CHECK_EQ(cosync_waitgroup_count(w->wg), 0);
    }
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    w->next_rc = cosync_sleep(COSYNC_MS(1));
    return 0;
}

static waiter mkw(cosync_latch *l, cosync_waitgroup *wg, int checkpoint)
{
    return (waiter){.latch = l,
                    .wg = wg,
                    .deadline = COSYNC_FOREVER,
                    .checkpoint = checkpoint,
                    .rc = 1,
                    .next_rc = 1,
                    .woke_at = -1};
}

static waiter lw(cosync_latch *l, int checkpoint)
{
    return mkw(l, NULL, checkpoint);
}

static waiter gw(cosync_waitgroup *wg, int checkpoint)
{
    return mkw(NULL, wg, checkpoint);
}

static cosync_task spawn_waiter(waiter *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, waiter_fn, w, NULL));
    return t;
}

/* ------------------------------------------------------------------------
 * Latch
 * ---------------------------------------------------------------------- */

typedef struct counter_down {
    cosync_latch *latch;
    int64_t delay;
    int rc;
} counter_down;

static int count_down_fn(void *arg, void **result)
{
    (void)result;
    counter_down *c = arg;
    CHECK_OK(cosync_sleep(c->delay));
    c->rc = cosync_latch_count_down(c->latch);
    return 0;
}

static int latch_wakes_all_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { NW = 5, NC = 3 };
    t0 = cosync_now();
    cosync_latch l;
    CHECK_OK(cosync_latch_init(&l, NC));
    CHECK_EQ(cosync_latch_count(&l), NC);
    waiter w[NW];
    cosync_task t[NW];
    for (int i = 0; i < NW; i++) {
        w[i] = lw(&l, i);
        t[i] = spawn_waiter(&w[i]);
    }
    counter_down c[NC];
    cosync_task ct[NC];
    for (int i = 0; i < NC; i++) {
        c[i] = (counter_down){&l, COSYNC_MS(i + 1), 1};
        CHECK_OK(cosync_task_spawn(&ct[i], count_down_fn, &c[i], NULL));
    }
    CHECK_OK(cosync_sleep(COSYNC_US(1500)));
    CHECK_EQ(cosync_latch_count(&l), NC - 1);
    CHECK_EQ(l.q.n, NW);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(cosync_latch_count(&l), NC - 2);
    CHECK_OK(cosync_gather(ct, NC, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_gather(t, NW, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(NW);
    for (int i = 0; i < NC; i++)
        CHECK_OK(c[i].rc);
    for (int i = 0; i < NW; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, AT(3));
        CHECK_OK(w[i].next_rc);
    }
    CHECK_EQ(cosync_latch_count(&l), 0);
    /* open for good: further count-downs are EALREADY, waits return at once */
    CHECK_ERR(cosync_latch_count_down(&l), COSYNC_EALREADY);
    CHECK_EQ(cosync_latch_count(&l), 0);
    CHECK_OK(cosync_latch_wait(&l, 0));
    CHECK_OK(cosync_latch_destroy(&l));
    return 0;
}

TEST(latch_count_down_to_zero_wakes_all_waiters)
{
    CHECK_OK(run_main(latch_wakes_all_main, NULL));
}

static int latch_open_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_latch l;
    CHECK_OK(cosync_latch_init(&l, 0)); /* open from the start */
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)2, NULL));
    CHECKPOINT(0);
    /* no suspension: o does not run in between, a pending cancel stays */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_OK(cosync_latch_wait(&l, COSYNC_FOREVER));
    CHECK_OK(cosync_latch_wait(&l, 0));
    CHECK_OK(cosync_latch_wait(&l, 1));
    CHECKPOINT(1);
    CHECK_ERR(cosync_latch_count_down(&l), COSYNC_EALREADY);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    join_ok(o);
    /* opened by count-downs: the same */
    CHECK_OK(cosync_latch_init(&l, 2));
    CHECK_ERR(cosync_latch_wait(&l, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_ERR(cosync_latch_wait(&l, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_OK(cosync_latch_wait(&l, 0));
    CHECK_ERR(cosync_latch_count_down(&l), COSYNC_EALREADY);
    CHECK_EQ(cosync_latch_count(&l), 0);
    return 0;
}

TEST(latch_wait_on_open_latch_returns_at_once)
{
    CHECK_OK(run_main(latch_open_main, NULL));
    CHECKPOINTS_DONE(3);
}

static int latch_timeout_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_latch l = COSYNC_LATCH_INIT(1);
    /* head, middle and tail waiters leave by their deadline, one by cancel */
    waiter w[6];
    cosync_task t[6];
    for (int i = 0; i < 6; i++) {
        w[i] = lw(&l, -1);
        t[i] = spawn_waiter(&w[i]);
    }
    w[0].deadline = AT(2); /* head */
    w[2].deadline = AT(3); /* middle */
    w[5].deadline = AT(4); /* tail */
    CHECK_OK(cosync_yield());
    CHECK_EQ(l.q.n, 6);
    CHECK_OK(cosync_task_cancel(t[3])); /* middle, by cancel */
    CHECK_EQ(l.q.n, 5);
    CHECK_OK(cosync_sleep_until(AT(5)));
    CHECK_EQ(l.q.n, 2);
    CHECK_ERR(w[0].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[0].woke_at, AT(2));
    CHECK_ERR(w[2].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[2].woke_at, AT(3));
    CHECK_ERR(w[5].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w[5].woke_at, AT(4));
    CHECK_ERR(w[3].rc, COSYNC_ECANCELED);
    CHECK_EQ(w[3].woke_at, t0);
    CHECK_EQ(cosync_latch_count(&l), 1);
    /* the rest are woken by the count-down; one of them is cancelled after
     * its grant, before it runs: its wait succeeds, the cancel comes next */
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_EQ(l.q.n, 0);
    CHECK_OK(cosync_task_cancel(t[4]));
    cosync_outcome out[6];
    CHECK_OK(cosync_gather(t, 6, out, COSYNC_FOREVER));
    CHECK_OK(w[1].rc);
    CHECK_OK(w[1].next_rc);
    CHECK_EQ(w[1].woke_at, AT(5));
    CHECK_OK(w[4].rc);
    CHECK_EQ(w[4].woke_at, AT(5));
    CHECK_ERR(w[4].next_rc, COSYNC_ECANCELED);
    CHECK_EQ(out[4].status, COSYNC_ECANCELED);
    CHECK_EQ(out[3].status, COSYNC_ECANCELED);
    CHECK_EQ(out[1].status, 0);
    /* deadline 0 and a passed deadline on a closed latch */
    CHECK_OK(cosync_latch_init(&l, 1));
    CHECK_ERR(cosync_latch_wait(&l, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_latch_wait(&l, AT(1)), COSYNC_ETIMEDOUT);
    CHECK_EQ(l.q.n, 0);
    t0 = cosync_now();
    CHECK_ERR(cosync_latch_wait(&l, AT(7)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(7));
    CHECK_EQ(l.q.n, 0);
    return 0;
}

TEST(latch_waiters_that_time_out_or_are_cancelled_are_removed)
{
    CHECK_OK(run_main(latch_timeout_main, NULL));
}

static int latch_misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_latch l;
    CHECK_ERR(cosync_latch_init(&l, -1), COSYNC_EINVAL);
    CHECK_OK(cosync_latch_init(&l, 2));
    waiter w = lw(&l, -1);
    w.may_be_destroyed = true;
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_latch_destroy(&l), COSYNC_EBUSY);
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_OK(cosync_latch_destroy(&l)); /* the waiter was granted: no longer waits */
    join_ok(t);
    CHECK_OK(w.rc);
    /* destroyed: every call is EINVAL */
    CHECK_ERR(cosync_latch_destroy(&l), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_count_down(&l), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_wait(&l, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_wait(&l, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_count(&l), COSYNC_EINVAL);
    /* init brings it back; a closed latch without waiters can be destroyed */
    CHECK_OK(cosync_latch_init(&l, 3));
    CHECK_EQ(cosync_latch_count(&l), 3);
    CHECK_OK(cosync_latch_destroy(&l));
    return 0;
}

TEST(latch_misuse_errors)
{
    CHECK_OK(run_main(latch_misuse_main, NULL));
    /* outside a task: a closed latch cannot be waited on; an open one can */
    cosync_latch l = COSYNC_LATCH_INIT(1);
    CHECK_ERR(cosync_latch_wait(&l, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_latch_wait(&l, 0), COSYNC_EPERM);
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_OK(cosync_latch_wait(&l, COSYNC_FOREVER));
    /* a negative count from the static initialiser is refused, not waited on */
    cosync_latch bad = COSYNC_LATCH_INIT(-1);
    CHECK_ERR(cosync_latch_count_down(&bad), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_wait(&bad, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_wait(&bad, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_latch_count(&bad), COSYNC_EINVAL); /* not -1, which reads as COSYNC_EPERM */
}

static cosync_latch static_latch = COSYNC_LATCH_INIT(2);

/* The seed's example: 5 workers take 0.2 s * (id + 1), then count down;
 * the coordinator proceeds when the last is done, at 1.0 s. */
typedef struct seed_worker {
    cosync_latch *latch;
    int id;
} seed_worker;

static int seed_worker_fn(void *arg, void **result)
{
    (void)result;
    seed_worker *w = arg;
    CHECK_OK(cosync_sleep(COSYNC_MS(200) * (w->id + 1)));
    CHECK_OK(cosync_latch_count_down(w->latch));
    return 0;
}

static int seed_coordinator_fn(void *arg, void **result)
{
    (void)result;
    cosync_latch *latch = arg;
    CHECK_OK(cosync_latch_wait(latch, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    return 0;
}

static int latch_seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_latch latch;
    CHECK_OK(cosync_latch_init(&latch, 5));
    seed_worker w[5];
    cosync_task t[6];
    for (int i = 0; i < 5; i++) {
        w[i] = (seed_worker){&latch, i};
        CHECK_OK(cosync_task_spawn(&t[i], seed_worker_fn, &w[i], NULL));
    }
    CHECK_OK(cosync_task_spawn(&t[5], seed_coordinator_fn, &latch, NULL));
    CHECK_OK(cosync_gather(t, 6, NULL, COSYNC_FOREVER));
    CHECK_EQ(cosync_latch_count(&latch), 0);
    /* and the static initialiser */
    CHECK_EQ(cosync_latch_count(&static_latch), 2);
    waiter sw = lw(&static_latch, -1);
    cosync_task st = spawn_waiter(&sw);
    CHECK_OK(cosync_latch_count_down(&static_latch));
    CHECK_OK(cosync_yield());
    CHECK_EQ(sw.rc, 1);
    CHECK_OK(cosync_latch_count_down(&static_latch));
    join_ok(st);
    CHECK_OK(sw.rc);
    return 0;
}

TEST(latch_seed_example_and_static_initialiser)
{
    CHECK_OK(run_main(latch_seed_main, NULL));
}

/* ------------------------------------------------------------------------
 * WaitGroup
 * ---------------------------------------------------------------------- */

typedef struct wg_worker {
    cosync_waitgroup *wg;
    int64_t work;
} wg_worker;

static int wg_worker_fn(void *arg, void **result)
{
    (void)result;
    wg_worker *w = arg;
    CHECK_OK(cosync_sleep(w->work));
    CHECK_OK(cosync_waitgroup_done(w->wg));
    return 0;
}

static int wg_basic_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_waitgroup wg;
    cosync_waitgroup_init(&wg);
    CHECK_EQ(cosync_waitgroup_count(&wg), 0);
    /* at zero: returns at once, no suspension */
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)1, NULL));
    CHECK_OK(cosync_waitgroup_wait(&wg, COSYNC_FOREVER));
    CHECK_OK(cosync_waitgroup_wait(&wg, 0));
    CHECKPOINT(0);
    join_ok(o);
    /* Go's pattern: add before spawning, done in each worker, wait */
    wg_worker w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_waitgroup_add(&wg, 1));
        w[i] = (wg_worker){&wg, COSYNC_MS(3 - i)};
        CHECK_OK(cosync_task_spawn(&t[i], wg_worker_fn, &w[i], NULL));
    }
    CHECK_EQ(cosync_waitgroup_count(&wg), 3);
    CHECK_ERR(cosync_waitgroup_wait(&wg, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_waitgroup_wait(&wg, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(3));
    CHECK_EQ(cosync_waitgroup_count(&wg), 0);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    /* reusable: up again after reaching zero */
    CHECK_OK(cosync_waitgroup_add(&wg, 2));
    waiter gwt = gw(&wg, -1);
    cosync_task gt = spawn_waiter(&gwt);
    CHECK_OK(cosync_yield());
    CHECK_EQ(gwt.rc, 1);
    CHECK_OK(cosync_waitgroup_add(&wg, 0)); /* no change, nobody woken */
    CHECK_OK(cosync_waitgroup_done(&wg));
    CHECK_OK(cosync_yield());
    CHECK_EQ(gwt.rc, 1);
    CHECK_OK(cosync_waitgroup_add(&wg, 3));  /* more work while someone waits */
    CHECK_OK(cosync_waitgroup_add(&wg, -4)); /* a negative delta down to zero */
    CHECK_EQ(cosync_waitgroup_count(&wg), 0);
    join_ok(gt);
    CHECK_OK(gwt.rc);
    CHECK_OK(cosync_waitgroup_destroy(&wg));
    return 0;
}

TEST(waitgroup_add_done_wait_and_reuse)
{
    CHECK_OK(run_main(wg_basic_main, NULL));
    CHECKPOINTS_DONE(2);
}

static int wg_errors_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
    /* below zero: EINVAL, nothing changes (Go panics) */
    CHECK_ERR(cosync_waitgroup_done(&wg), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_add(&wg, -5), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_add(&wg, INT64_MIN), COSYNC_EINVAL);
    CHECK_EQ(cosync_waitgroup_count(&wg), 0);
    CHECK_OK(cosync_waitgroup_add(&wg, 2));
    CHECK_ERR(cosync_waitgroup_add(&wg, -3), COSYNC_EINVAL);
    CHECK_EQ(cosync_waitgroup_count(&wg), 2);
    /* overflow: EOVERFLOW, nothing changes */
    CHECK_ERR(cosync_waitgroup_add(&wg, INT64_MAX), COSYNC_EOVERFLOW);
    CHECK_EQ(cosync_waitgroup_count(&wg), 2);
    CHECK_OK(cosync_waitgroup_add(&wg, INT64_MAX - 2));
    CHECK_EQ(cosync_waitgroup_count(&wg), INT64_MAX);
    CHECK_ERR(cosync_waitgroup_add(&wg, 1), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_waitgroup_add(&wg, INT64_MIN + 1)); /* back to zero */
    CHECK_EQ(cosync_waitgroup_count(&wg), 0);
    /* destroy with waiters: EBUSY */
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    waiter w = gw(&wg, -1);
    w.may_be_destroyed = true;
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_waitgroup_destroy(&wg), COSYNC_EBUSY);
    CHECK_OK(cosync_waitgroup_done(&wg));
    CHECK_OK(cosync_waitgroup_destroy(&wg));
    join_ok(t);
    CHECK_OK(w.rc);
    /* destroyed: every call is EINVAL */
    CHECK_ERR(cosync_waitgroup_destroy(&wg), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_add(&wg, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_done(&wg), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_wait(&wg, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_waitgroup_count(&wg), COSYNC_EINVAL);
    cosync_waitgroup_init(&wg);
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    CHECK_OK(cosync_waitgroup_done(&wg));
    /* a count above zero without waiters does not keep it alive */
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    CHECK_OK(cosync_waitgroup_destroy(&wg));
    return 0;
}

TEST(waitgroup_misuse_errors)
{
    CHECK_OK(run_main(wg_errors_main, NULL));
    cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
    CHECK_OK(cosync_waitgroup_wait(&wg, COSYNC_FOREVER)); /* zero: no task needed */
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    CHECK_ERR(cosync_waitgroup_wait(&wg, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_waitgroup_wait(&wg, 0), COSYNC_EPERM);
}

static int wg_many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 100 };
    t0 = cosync_now();
    cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    static waiter w[N];
    cosync_task t[N];
    /* they wait in the reverse order of their spawning; every tenth gives
     * up at 1 ms, just before the done, and has no checkpoint */
    int k = 0;
    for (int i = N - 1; i >= 0; i--) {
        bool gives_up = i % 10 == 5;
        w[i] = gw(&wg, gives_up ? -1 : k++);
        w[i].delay = COSYNC_US(N - i);
        if (gives_up)
            w[i].deadline = AT(1);
    }
    for (int i = 0; i < N; i++)
        t[i] = spawn_waiter(&w[i]);
    CHECK_OK(cosync_sleep(COSYNC_US(N + 1)));
    CHECK_EQ(wg.q.n, N);
    CHECK_OK(cosync_sleep_until(AT(1)));
    CHECK_EQ(wg.q.n, N - N / 10);
    CHECK_OK(cosync_waitgroup_done(&wg));
    CHECK_EQ(wg.q.n, 0);
    CHECK_OK(cosync_yield()); /* every waiter runs before main again */
    CHECKPOINTS_DONE(N - N / 10);
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    for (int i = 0; i < N; i++) {
        if (i % 10 == 5) {
            CHECK_ERR(w[i].rc, COSYNC_ETIMEDOUT);
        } else {
            CHECK_OK(w[i].rc);
        }
        CHECK_EQ(w[i].woke_at, AT(1));
    }
    return 0;
}

/* A wait group's waits under cancellation: a waiter cancelled while it
 * waits leaves; one released at zero keeps its release even if the count
 * is raised again before it runs; a pending cancellation is delivered by a
 * wait that must block (after one suspension) and left pending by deadline
 * 0. */
static int wg_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
    CHECK_OK(cosync_waitgroup_add(&wg, 1));
    waiter a = gw(&wg, -1), b = gw(&wg, -1);
    b.may_be_destroyed = true; /* the count is raised again before b runs */
    cosync_task ta = spawn_waiter(&a), tb = spawn_waiter(&b);
    CHECK_OK(cosync_yield());
    CHECK_EQ(wg.q.n, 2);
    CHECK_OK(cosync_task_cancel(ta));
    CHECK_EQ(wg.q.n, 1);
    CHECK_OK(cosync_waitgroup_done(&wg));   /* releases b */
    CHECK_OK(cosync_waitgroup_add(&wg, 1)); /* before b runs */
    CHECK_ERR(join_status(ta), COSYNC_ECANCELED);
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    join_ok(tb);
    CHECK_OK(b.rc);
    CHECK_EQ(cosync_waitgroup_count(&wg), 1);
    /* a pending cancellation */
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(cosync_waitgroup_wait(&wg, 0), COSYNC_EAGAIN); /* stays pending */
    cosync_task other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)0, NULL));
    CHECK_ERR(cosync_waitgroup_wait(&wg, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECKPOINT(1); /* the wait suspended once: the ready task ran first */
    join_ok(other);
    CHECK_EQ(wg.q.n, 0);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_OK(cosync_waitgroup_done(&wg));
    CHECK_OK(cosync_waitgroup_wait(&wg, 0));
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(waitgroup_waits_under_cancellation)
{
    CHECK_OK(run_main(wg_cancel_main, NULL));
}

TEST(waitgroup_many_waiters)
{
    CHECK_OK(run_main(wg_many_main, NULL));
}

/* ------------------------------------------------------------------------
 * Cases run on both a latch and a wait group
 * ---------------------------------------------------------------------- */

typedef enum counter_kind { LATCH, WAITGROUP } counter_kind;

/* A latch or a wait group, closed until one count-down or done(). */
typedef struct counter {
    counter_kind kind;
    cosync_latch latch;
    cosync_waitgroup wg;
} counter;

static void counter_close(counter *c, counter_kind kind)
{
    c->kind = kind;
    CHECK_OK(cosync_latch_init(&c->latch, 1));
    cosync_waitgroup_init(&c->wg);
    CHECK_OK(cosync_waitgroup_add(&c->wg, 1));
}

/* Bring the count to zero: every waiter is granted. Not a suspension point. */
static void counter_open(counter *c)
{
    if (c->kind == LATCH)
        CHECK_OK(cosync_latch_count_down(&c->latch));
    else
        CHECK_OK(cosync_waitgroup_done(&c->wg));
}

static int64_t counter_count(const counter *c)
{
    return c->kind == LATCH ? cosync_latch_count(&c->latch) : cosync_waitgroup_count(&c->wg);
}

static size_t counter_waiters(const counter *c)
{
    return c->kind == LATCH ? c->latch.q.n : c->wg.q.n;
}

static waiter counter_waiter(counter *c, int checkpoint)
{
    return c->kind == LATCH ? lw(&c->latch, checkpoint) : gw(&c->wg, checkpoint);
}

typedef struct counter_case {
    counter_kind kind;
    bool by_timeout; /* the waiter that leaves does so by its deadline, not a cancel */
} counter_case;

/* Five waiters; the one at the head, in the middle or at the tail leaves
 * (cancelled, or by its deadline): the count and the others are untouched,
 * and when the count reaches zero the other four are woken, in order, in
 * one step. */
static int leave_main(void *arg, void **result)
{
    (void)result;
    const counter_case *cc = arg;
    static const int positions[3] = {0, 2, 4};
    for (int p = 0; p < 3; p++) {
        int pos = positions[p];
        t0 = cosync_now();
        CHECKPOINT_RESET();
        counter c;
        counter_close(&c, cc->kind);
        waiter w[5];
        cosync_task t[5];
        for (int i = 0, k = 0; i < 5; i++) {
            w[i] = counter_waiter(&c, i == pos ? -1 : k++);
            if (cc->by_timeout && i == pos)
                w[i].deadline = AT(5);
            t[i] = spawn_waiter(&w[i]);
        }
        CHECK_OK(cosync_yield());
        CHECK_EQ(counter_waiters(&c), 5);
        if (cc->by_timeout) {
            CHECK_OK(cosync_sleep(COSYNC_MS(4)));
            CHECK_EQ(counter_waiters(&c), 5);
            CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* its timer fired before mine */
            CHECK_ERR(w[pos].rc, COSYNC_ETIMEDOUT);
            CHECK_EQ(w[pos].woke_at, AT(5));
        } else {
            CHECK_OK(cosync_task_cancel(t[pos]));
        }
        CHECK_EQ(counter_waiters(&c), 4); /* taken off at once */
        CHECK_EQ(counter_count(&c), 1);
        int64_t opened_at = cosync_now();
        counter_open(&c);
        CHECK_EQ(counter_waiters(&c), 0);
        CHECK_OK(cosync_yield()); /* the four run, in order, before me */
        CHECKPOINT(4);
        cosync_outcome out[5];
        CHECK_OK(cosync_gather(t, 5, out, COSYNC_FOREVER));
        for (int i = 0; i < 5; i++) {
            if (i == pos)
                continue;
            CHECK_OK(w[i].rc);
            CHECK_EQ(w[i].woke_at, opened_at);
            CHECK_OK(w[i].next_rc);
            CHECK_EQ(out[i].status, 0);
        }
        if (cc->by_timeout) {
            CHECK_EQ(out[pos].status, 0);
        } else {
            CHECK_ERR(w[pos].rc, COSYNC_ECANCELED);
            CHECK_EQ(w[pos].woke_at, t0);
            CHECK_EQ(out[pos].status, COSYNC_ECANCELED);
        }
        CHECK_EQ(counter_count(&c), 0);
        CHECKPOINTS_DONE(5);
    }
    return 0;
}

TEST(latch_cancelled_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(leave_main, &(counter_case){.kind = LATCH}));
}

TEST(latch_timed_out_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(leave_main, &(counter_case){.kind = LATCH, .by_timeout = true}));
}

TEST(waitgroup_cancelled_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(leave_main, &(counter_case){.kind = WAITGROUP}));
}

TEST(waitgroup_timed_out_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(leave_main, &(counter_case){.kind = WAITGROUP, .by_timeout = true}));
}

/* A waiter granted (the count reached zero) and cancelled at once, before
 * it ran, keeps its grant: its wait returns 0 and the cancellation is
 * delivered at its next suspension; the waiter behind it is untouched. */
static int granted_then_cancelled_main(void *arg, void **result)
{
    (void)result;
    const counter_case *cc = arg;
    t0 = cosync_now();
    counter c;
    counter_close(&c, cc->kind);
    waiter a = counter_waiter(&c, 0), b = counter_waiter(&c, 1);
    cosync_task ta = spawn_waiter(&a), tb = spawn_waiter(&b);
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    CHECK_EQ(counter_waiters(&c), 2);
    counter_open(&c); /* grants both */
    CHECK_OK(cosync_task_cancel(ta));
    CHECK_EQ(a.rc, 1); /* it has not run */
    CHECK_EQ(join_status(ta), COSYNC_ECANCELED);
    CHECK_OK(a.rc);
    CHECK_EQ(a.woke_at, AT(2));
    CHECK_ERR(a.next_rc, COSYNC_ECANCELED);
    join_ok(tb);
    CHECK_OK(b.rc);
    CHECK_OK(b.next_rc);
    CHECK_EQ(counter_count(&c), 0);
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(latch_granted_then_cancelled_keeps_its_grant)
{
    CHECK_OK(run_main(granted_then_cancelled_main, &(counter_case){.kind = LATCH}));
}

TEST(waitgroup_granted_then_cancelled_keeps_its_grant)
{
    CHECK_OK(run_main(granted_then_cancelled_main, &(counter_case){.kind = WAITGROUP}));
}

/* A wait with a deadline granted before it: the grant disarms the
 * deadline's timer, the wait returns 0 at the grant. */
static int granted_before_deadline_main(void *arg, void **result)
{
    (void)result;
    const counter_case *cc = arg;
    t0 = cosync_now();
    counter c;
    counter_close(&c, cc->kind);
    waiter w = counter_waiter(&c, -1);
    w.deadline = AT(10);
    cosync_task t = spawn_waiter(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(armed_timers(), 1); /* w's deadline */
    CHECK_OK(cosync_sleep_until(AT(5)));
    CHECK_EQ(armed_timers(), 1);
    counter_open(&c);
    CHECK_EQ(armed_timers(), 0); /* before w has even run */
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_EQ(w.woke_at, AT(5));
    CHECK_OK(w.next_rc);
    CHECK_EQ(armed_timers(), 0);
    return 0;
}

TEST(latch_granted_before_its_deadline_disarms_it)
{
    CHECK_OK(run_main(granted_before_deadline_main, &(counter_case){.kind = LATCH}));
}

TEST(waitgroup_granted_before_its_deadline_disarms_it)
{
    CHECK_OK(run_main(granted_before_deadline_main, &(counter_case){.kind = WAITGROUP}));
}

/* Bound to the loop of its waiters while it has any: from another loop a
 * wait that must suspend is refused, with deadline 0 too, and nothing
 * changes; the waiter of the first loop is then served as ever, and once
 * it has gone, the other loop may use the object. */
static void bound_to_one_loop(counter_kind kind)
{
    counter c;
    counter_close(&c, kind);
    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    waiter wa = counter_waiter(&c, -1), wb = counter_waiter(&c, -1);
    cosync_task ta, tb, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, waiter_fn, &wa, NULL));
    spawn_and_run(a, &stopper, nop, NULL); /* wa now waits */
    CHECK_EQ(counter_waiters(&c), 1);
    spawn_and_run(b, &tb, waiter_fn, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    wb.deadline = 0;
    spawn_and_run(b, &tb, waiter_fn, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    CHECK_EQ(counter_waiters(&c), 1); /* b's waits were never queued */
    CHECK_EQ(counter_count(&c), 1);
    /* opening it from outside any loop serves a's waiter */
    counter_open(&c);
    int st = 1;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wa.rc);
    if (kind == WAITGROUP) {
        /* reused by a's loop: it waits and is served again */
        CHECK_OK(cosync_waitgroup_add(&c.wg, 1));
        wa.rc = 1;
        CHECK_OK(cosync_loop_spawn(a, &ta, waiter_fn, &wa, NULL));
        spawn_and_run(a, &stopper, nop, NULL);
        CHECK_EQ(counter_waiters(&c), 1);
        CHECK_OK(cosync_waitgroup_done(&c.wg));
        CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
        CHECK_OK(wa.rc);
        /* nobody waits: b may wait on it now (and, closed, gets EAGAIN) */
        CHECK_OK(cosync_waitgroup_add(&c.wg, 1));
        wb.rc = 1;
        spawn_and_run(b, &tb, waiter_fn, &wb);
        CHECK_ERR(wb.rc, COSYNC_EAGAIN); /* not EPERM: unbound */
        CHECK_OK(cosync_waitgroup_done(&c.wg));
    } else {
        /* open: a wait from either loop returns at once */
        wa.rc = wb.rc = 1;
        spawn_and_run(a, &ta, waiter_fn, &wa);
        CHECK_OK(wa.rc);
        spawn_and_run(b, &tb, waiter_fn, &wb);
        CHECK_OK(wb.rc);
    }
    end_loop(a);
    end_loop(b);
}

TEST(latch_bound_to_one_loop_while_it_has_waiters)
{
    bound_to_one_loop(LATCH);
}

TEST(waitgroup_bound_to_one_loop_while_it_has_waiters)
{
    bound_to_one_loop(WAITGROUP);
}

/* A burst: 100 waiters, the count-down that opens the latch grants them
 * all, in order, within the call (no switch); they then run in that order
 * before the task that counted down runs again, each within two scheduler
 * steps of the one before. */
static int latch_burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 100 };
    t0 = cosync_now();
    cosync_latch l = COSYNC_LATCH_INIT(1);
    static waiter w[N];
    cosync_task t[N];
    for (int i = 0; i < N; i++) {
        w[i] = lw(&l, i);
        t[i] = spawn_waiter(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(l.q.n, N);
    uint64_t sw0 = switches();
    CHECK_OK(cosync_latch_count_down(&l));
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(ready_tasks(), N);
    CHECK_EQ(l.q.n, 0);
    CHECK_OK(cosync_yield()); /* one scheduler step: all of them run */
    CHECKPOINT(N);
    CHECK_LE(w[0].woke_switches - sw0, 2);
    for (int i = 0; i < N; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, t0);
        if (i > 0)
            CHECK_LE(w[i].woke_switches - w[i - 1].woke_switches, 2);
    }
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_OK(w[i].next_rc);
    CHECKPOINTS_DONE(N + 1);
    return 0;
}

TEST(latch_burst_wakes_all_in_order_in_one_step)
{
    CHECK_OK(run_main(latch_burst_main, NULL));
}

/* ------------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

static int stuck_main(void *arg, void **result)
{
    (void)result;
    cosync_waitgroup *wg = arg;
    CHECK_OK(cosync_waitgroup_add(wg, 2));
    return cosync_waitgroup_wait(wg, COSYNC_FOREVER);
}

TEST(deadlock_report_shows_the_count)
{
    static cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, stuck_main, &wg, "main", &m);
    const char *buf = report.buf;
    char expect[128];
    snprintf(expect, sizeof expect, "task 'main' (#1) waits on waitgroup %p (count 2)\n",
             (void *)&wg);
    if (!strstr(buf, expect))
        CHECK__FAIL("the report lacks \"%s\":\n%s", expect, buf);
    CHECK_OK(cosync_waitgroup_add(&wg, -2));
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    end_loop(loop);
    capture_free(&report);
}

/* The latch's: every blocked task, what it waits on and the count left
 * (docs/latch.md), under the report's heading (docs/tasks.md). */
static cosync_latch dl_latch;

static int latch_wait_fn(void *arg, void **result)
{
    (void)result;
    return cosync_latch_wait(arg, COSYNC_FOREVER);
}

static int latch_stuck_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_latch_count_down(&dl_latch)); /* 3 -> 2 */
    cosync_task t;
    CHECK_OK(
        cosync_task_spawn(&t, latch_wait_fn, &dl_latch, &(cosync_task_opts){.name = "waiter"}));
    CHECK_OK(cosync_latch_wait(&dl_latch, COSYNC_FOREVER));
    join_ok(t);
    return 0;
}

TEST(latch_deadlock_report_shows_the_count)
{
    CHECK_OK(cosync_latch_init(&dl_latch, 3));
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, latch_stuck_main, NULL, "main", &m);
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on latch %p (count 2)\n"
             "  task 'waiter' (#2) waits on latch %p (count 2)\n",
             (void *)&dl_latch, (void *)&dl_latch);
    CHECK_STREQ(report.buf, want);
    CHECK_OK(cosync_latch_count_down(&dl_latch)); /* from outside: not yet open */
    CHECK_OK(cosync_latch_count_down(&dl_latch)); /* open: both served */
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    end_loop(loop);
    capture_free(&report);
}

int main(void)
{
    RUN(latch_count_down_to_zero_wakes_all_waiters);
    RUN(latch_wait_on_open_latch_returns_at_once);
    RUN(latch_waiters_that_time_out_or_are_cancelled_are_removed);
    RUN(latch_misuse_errors);
    RUN(latch_seed_example_and_static_initialiser);
    RUN(waitgroup_add_done_wait_and_reuse);
    RUN(waitgroup_misuse_errors);
    RUN(waitgroup_waits_under_cancellation);
    RUN(waitgroup_many_waiters);
    RUN(latch_cancelled_waiter_at_head_middle_tail);
    RUN(latch_timed_out_waiter_at_head_middle_tail);
    RUN(waitgroup_cancelled_waiter_at_head_middle_tail);
    RUN(waitgroup_timed_out_waiter_at_head_middle_tail);
    RUN(latch_granted_then_cancelled_keeps_its_grant);
    RUN(waitgroup_granted_then_cancelled_keeps_its_grant);
    RUN(latch_granted_before_its_deadline_disarms_it);
    RUN(waitgroup_granted_before_its_deadline_disarms_it);
    RUN(latch_bound_to_one_loop_while_it_has_waiters);
    RUN(waitgroup_bound_to_one_loop_while_it_has_waiters);
    RUN(latch_burst_wakes_all_in_order_in_one_step);
    RUN(deadlock_report_shows_the_count);
    RUN(latch_deadlock_report_shows_the_count);
    return 0;
}
