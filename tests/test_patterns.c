/*
 * test_patterns.c - the patterns layer: the rate limiter (a token bucket)
 * and the circuit breaker (include/cosync/patterns.h is the contract).
 *
 * Every loop runs on the virtual clock, so every time is exact: the tests
 * assert the virtual instant of each grant (cosync_now()) and the exact
 * interleavings (ordering checkpoints, the order of the grants). The
 * expected values are derived from the contract in the comments, not
 * copied from a run.
 *
 * Rate limiter (10, COSYNC_SEC(1), 3), the one most cases use: a token
 * every 100 ms, at most 3 kept. Breaker times are those of the seed
 * (examples/sync_circuit_breaker.c) scaled as there.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#include "core.h" /* COSYNC__DENSE_SUPPORTED; cosync__timer_armed: the limiter's own timer */

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

static const int64_t SEC = COSYNC_SEC(1);

/* The order in which acquisitions returned 0 (tags). */
static int order[64];
static int norder;

static void order_reset(void)
{
    norder = 0;
}

static void check_order(const int *want, int n)
{
    CHECK_EQ(norder, n);
    for (int i = 0; i < n; i++)
        if (order[i] != want[i])
            CHECK__FAIL("order[%d] = %d, expected %d", i, order[i], want[i]);
}

/* Whether the limiter's own timer is armed (it must be exactly while
 * somebody waits). */
static bool rl_timer_armed(const cosync_ratelimit *rl)
{
    return cosync__timer_armed(&rl->timer);
}

/* ========================================================================
 * Rate limiter helpers
 * ===================================================================== */

/* A task that takes @n tokens and records what happened. */
typedef struct rw {
    cosync_ratelimit *rl;
    int64_t n;
    int64_t deadline;
    int tag;
    int checkpoint;   /* passed when the acquire returns 0; < 0: none */
    bool yield_after; /* yield after the acquire: where a late cancel comes */
    /* observed */
    int rc;
    int64_t at; /* when the acquire returned */
    int next_rc;
} rw;

static int rw_fn(void *arg, void **result)
{
    (void)result;
    rw *w = arg;
    w->rc = cosync_ratelimit_acquire(w->rl, w->n, w->deadline);
    w->at = cosync_now();
    if (w->rc == 0) {
        CHECK_LT(norder, (int)(sizeof order / sizeof order[0]));
        order[norder++] = w->tag;
        if (w->checkpoint >= 0)
            CHECKPOINT(w->checkpoint);
    }
    if (w->yield_after)
        w->next_rc = cosync_yield();
    if (w->rc != 0)
        return w->rc;
    return w->yield_after ? w->next_rc : 0;
}

static rw mkw(cosync_ratelimit *rl, int64_t n, int tag)
{
    return (rw){.rl = rl,
                .n = n,
                .deadline = COSYNC_FOREVER,
                .tag = tag,
                .checkpoint = -1,
                .rc = 1,
                .at = -1,
                .next_rc = 1};
}

static cosync_task spawn_w(rw *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, rw_fn, w, NULL));
    return t;
}

static cosync_task spawn_w_named(rw *w, const char *name)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, rw_fn, w, &(cosync_task_opts){.name = name}));
    return t;
}

/* (10, 1 s, 3), emptied by the caller at once (the bucket starts full). */
static void init_empty_10_3(cosync_ratelimit *rl)
{
    CHECK_OK(cosync_ratelimit_init(rl, 10, SEC, 3));
    CHECK_OK(cosync_ratelimit_acquire(rl, 3, 0));
    CHECK_EQ(cosync_ratelimit_tokens(rl), 0);
}

/* ========================================================================
 * Rate limiter: init, static initialiser, misuse, destroy
 * ===================================================================== */

TEST(rl_init_validation)
{
    const int64_t span = COSYNC_RATELIMIT_MAX_SPAN; /* 2^62 */
    const int64_t bad[][3] = {
        /* a value below 1 */
        {0, SEC, 1},
        {-1, SEC, 1},
        {INT64_MIN, SEC, 1},
        {1, 0, 1},
        {1, -1, 1},
        {1, INT64_MIN, 1},
        {1, SEC, 0},
        {1, SEC, -3},
        {1, SEC, INT64_MIN},
        {0, 0, 0},
        /* burst * period above 2^62 (the product would overflow for some) */
        {1, INT64_C(1) << 31, (INT64_C(1) << 31) + 1},
        {1, 3, span / 3 + 1},
        {1, span + 1, 1},
        {1, INT64_MAX, 1},
        {1, 1, span + 1},
        {1, 1, INT64_MAX},
        {1, 2, INT64_MAX / 2},
        {INT64_MAX, INT64_MAX, INT64_MAX},
        {10, SEC, INT64_C(4611686019)}, /* 4,611,686,019 s > 2^62 ns */
    };
    cosync_ratelimit rl;
    CHECK_ERR(cosync_ratelimit_init(NULL, 1, 1, 1), COSYNC_EINVAL);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(cosync_ratelimit_init(&rl, bad[i][0], bad[i][1], bad[i][2]), COSYNC_EINVAL);
        /* left unusable: every call refuses it */
        CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_tokens(&rl), COSYNC_EINVAL);
        CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    }
    const int64_t good[][3] = {
        {1, 1, 1},
        {INT64_MAX, 1, 1},
        {INT64_MAX, span, 1},
        {1, span, 1},
        {1, 1, span},
        {1, INT64_C(1) << 31, INT64_C(1) << 31},
        {1, 3, span / 3},
        {10, SEC, INT64_C(4611686018)}, /* the doc's "4.6 billion tokens refilled each second" */
        {3, SEC, 3},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_OK(cosync_ratelimit_init(&rl, good[i][0], good[i][1], good[i][2]));
        CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
        CHECK_EQ(cosync_ratelimit_tokens(&rl), good[i][2]); /* starts full */
        CHECK(!rl_timer_armed(&rl));
        CHECK_OK(cosync_ratelimit_destroy(&rl));
    }
}

/* Full at its first use, wherever on the clock that is; invalid values
 * make every call EINVAL. */
static cosync_ratelimit static_rl = COSYNC_RATELIMIT_INIT(10, COSYNC_SEC(1), 3);
static cosync_ratelimit static_bad[] = {
    COSYNC_RATELIMIT_INIT(0, COSYNC_SEC(1), 3),
    COSYNC_RATELIMIT_INIT(10, 0, 3),
    COSYNC_RATELIMIT_INIT(10, COSYNC_SEC(1), 0),
    COSYNC_RATELIMIT_INIT(-10, COSYNC_SEC(1), 3),
    COSYNC_RATELIMIT_INIT(1, COSYNC_RATELIMIT_MAX_SPAN, 2),
};

static int static_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    CHECK_EQ(cosync_ratelimit_waiters(&static_rl), 0);
    CHECK_OK(cosync_sleep(COSYNC_SEC(5)));
    uint64_t sw0 = switches();
    CHECK_OK(cosync_ratelimit_acquire(&static_rl, 2, 0));
    CHECK_OK(cosync_ratelimit_acquire(&static_rl, 1, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0); /* full at first use: no wait */
    CHECK_EQ(cosync_ratelimit_tokens(&static_rl), 0);
    CHECK_OK(cosync_ratelimit_acquire(&static_rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(5100)); /* the next token, 100 ms after it was emptied */
    for (size_t i = 0; i < sizeof static_bad / sizeof static_bad[0]; i++) {
        cosync_ratelimit *b = &static_bad[i];
        CHECK_ERR(cosync_ratelimit_acquire(b, 1, 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_acquire(b, 1, COSYNC_FOREVER), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_acquire(b, 1, cosync_deadline_after(COSYNC_MS(5))),
                  COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_tokens(b), COSYNC_EINVAL);
        CHECK_EQ(cosync_ratelimit_waiters(b), 0);
        CHECK(!rl_timer_armed(b));
    }
    CHECK_EQ(cosync_now(), AT(5100));
    return 0;
}

TEST(rl_static_initialiser)
{
    run_main_ok(static_main, NULL);
}

static int n_range_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 3));
    uint64_t sw0 = switches();
    const int64_t bad_n[] = {0, -1, INT64_MIN, 4, INT64_MAX};
    for (size_t i = 0; i < sizeof bad_n / sizeof bad_n[0]; i++) {
        CHECK_ERR(cosync_ratelimit_acquire(&rl, bad_n[i], 0), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_acquire(&rl, bad_n[i], COSYNC_FOREVER), COSYNC_EINVAL);
        CHECK_ERR(cosync_ratelimit_acquire(&rl, bad_n[i], AT(10)), COSYNC_EINVAL);
    }
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 3); /* nothing taken */
    /* while somebody waits, still EINVAL (not EAGAIN, nor a queued wait) */
    CHECK_OK(cosync_ratelimit_acquire(&rl, 3, 0));
    rw w = mkw(&rl, 3, 1);
    cosync_task t = spawn_w(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1);
    sw0 = switches();
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 4, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 0, 0), COSYNC_EINVAL);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1);
    join_ok(t);
    CHECK_EQ(w.at, AT(300)); /* n = burst: the whole bucket, refilled */
    return 0;
}

TEST(rl_n_out_of_range_is_einval)
{
    run_main_ok(n_range_main, NULL);
}

/* A task that, at @when, destroys the limiter (whose waiter has been
 * granted and not run yet). */
typedef struct actor {
    cosync_ratelimit *rl;
    cosync_task victim;
    int64_t when;
    int rc;
} actor;

static int destroy_at(void *arg, void **result)
{
    (void)result;
    actor *a = arg;
    CHECK_OK(cosync_sleep_until(a->when));
    CHECK_EQ(cosync_ratelimit_waiters(a->rl), 0); /* granted already */
    CHECK(!cosync_task_done(a->victim));
    a->rc = cosync_ratelimit_destroy(a->rl);
    return 0;
}

static int destroy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    rw w = mkw(&rl, 1, 1);
    cosync_task t = spawn_w(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1);
    CHECK_ERR(cosync_ratelimit_destroy(&rl), COSYNC_EBUSY);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1); /* nothing changed */
    CHECK(rl_timer_armed(&rl));
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_EQ(w.at, AT(100)); /* served as if nothing had happened */
    CHECK_OK(cosync_ratelimit_destroy(&rl));
    CHECK_ERR(cosync_ratelimit_destroy(&rl), COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, AT(500)), COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_tokens(&rl), COSYNC_EINVAL);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK_EQ(cosync_now(), AT(100));
    /* init makes it live again, full */
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    /* a waiter granted and not run yet: destroy cannot see it, and its
     * acquire still succeeds. The actor's timer is armed before the
     * limiter's (both at 200 ms): it runs first. */
    actor a = {.rl = &rl, .when = AT(200), .rc = 1};
    cosync_task ta;
    CHECK_OK(cosync_task_spawn(&ta, destroy_at, &a, NULL));
    CHECK_OK(cosync_yield()); /* the actor sleeps */
    w = mkw(&rl, 1, 2);
    t = spawn_w(&w);
    a.victim = t;
    CHECK_OK(cosync_yield()); /* w waits: its token at 200 ms */
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1);
    join_ok(ta);
    CHECK_OK(a.rc);
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_EQ(w.at, AT(200));
    CHECK_ERR(cosync_ratelimit_tokens(&rl), COSYNC_EINVAL);
    return 0;
}

TEST(rl_destroy)
{
    run_main_ok(destroy_main, NULL);
}

/* ========================================================================
 * Rate limiter: timing
 * ===================================================================== */

/* Starts full: the burst is taken at once without suspending; then a
 * token every period / rate, to the nanosecond. */
static int starts_full_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 3));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 3);
    cosync_task cp;
    CHECK_OK(cosync_task_spawn(&cp, checkpoint_arg, (void *)1, NULL));
    uint64_t sw0 = switches();
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, AT(1)));
    CHECK_EQ(switches(), sw0);
    CHECKPOINT(0); /* the ready task has not run: no suspension */
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    join_ok(cp);
    CHECKPOINTS_DONE(2);

    /* tasks asking 1 each of a fresh (full) limiter: 0, 0, 0, then one
     * each 100 ms, in the order they asked */
    cosync_ratelimit r2;
    CHECK_OK(cosync_ratelimit_init(&r2, 10, SEC, 3));
    enum { N = 7 };
    rw w[N];
    cosync_task t[N];
    for (int i = 0; i < N; i++) {
        w[i] = mkw(&r2, 1, i + 1);
        w[i].checkpoint = 2 + i;
        t[i] = spawn_w(&w[i]);
    }
    CHECK_OK(cosync_yield());
    /* the first three were served at once (each ran to its end); the
     * fourth is the head, its timer armed */
    for (int i = 0; i < 3; i++)
        CHECK(cosync_task_done(t[i]));
    CHECK_EQ(cosync_ratelimit_waiters(&r2), N - 3);
    CHECK(rl_timer_armed(&r2));
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    const int64_t want[N] = {0, 0, 0, 100, 200, 300, 400};
    for (int i = 0; i < N; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].at, AT(want[i]));
    }
    check_order((int[]){1, 2, 3, 4, 5, 6, 7}, N);
    CHECKPOINTS_DONE(2 + N);
    CHECK(!rl_timer_armed(&r2));
    CHECK_EQ(cosync_ratelimit_tokens(&r2), 0);
    return 0;
}

TEST(rl_starts_full_then_one_token_each_interval)
{
    run_main_ok(starts_full_main, NULL);
}

/* A rate that does not divide the period: 3 a second is a token each
 * 333,333,333.33 ns. The k-th token after the bucket emptied at T comes
 * at exactly T + ceil(k * 1e9 / 3) (the credit kept in thirds of a
 * nanosecond-token loses nothing), so the 3,000th at T + 1,000 s. Same
 * for 7 a second and 7,000 tokens. */
static int no_drift_main(void *arg, void **result)
{
    (void)result;
    int64_t rate = (int64_t)(intptr_t)arg;
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, rate, SEC, rate));
    CHECK_OK(cosync_ratelimit_acquire(&rl, rate, 0));
    int64_t T = cosync_now();
    for (int64_t k = 1; k <= 1000 * rate; k++) {
        CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
        int64_t want = (k * SEC + rate - 1) / rate; /* ceil */
        if (cosync_now() - T != want)
            CHECK__FAIL("token %lld of %lld/s at +%lld ns, expected +%lld", (long long)k,
                        (long long)rate, (long long)(cosync_now() - T), (long long)want);
    }
    CHECK_EQ(cosync_now(), T + COSYNC_SEC(1000));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    /* a whole bucket now takes exactly one period */
    CHECK_OK(cosync_ratelimit_acquire(&rl, rate, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + COSYNC_SEC(1001));
    if (rate == 3) {
        /* spot checks: +333,333,334, +666,666,667, +1 s */
        CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
        CHECK_EQ(cosync_now(), T + COSYNC_SEC(1001) + 333333334);
        CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
        CHECK_EQ(cosync_now(), T + COSYNC_SEC(1001) + 666666667);
        CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
        CHECK_EQ(cosync_now(), T + COSYNC_SEC(1002));
    }
    return 0;
}

TEST(rl_uneven_rate_keeps_exact_long_run_timing)
{
    run_main_ok(no_drift_main, (void *)(intptr_t)3);
    run_main_ok(no_drift_main, (void *)(intptr_t)7);
}

/* Strict FIFO: a head asking for 3 holds back a later waiter asking for 1
 * even when one token is there; a newcomer queues behind both (the try
 * form gets EAGAIN although a token is there). Grants come in arrival
 * order: A (3) at 300 ms, B (1) at 400, C (1, came at 150) at 500. */
static int fifo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    init_empty_10_3(&rl);
    rw a = mkw(&rl, 3, 1), b = mkw(&rl, 1, 2), c = mkw(&rl, 1, 3);
    cosync_task t[3];
    t[0] = spawn_w(&a);
    t[1] = spawn_w(&b);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2);
    CHECK_OK(cosync_sleep_until(AT(150)));
    /* 1.5 tokens there: tokens() counts them, nobody is served */
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2);
    CHECK(!cosync_task_done(t[1]));
    uint64_t sw0 = switches();
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN); /* no barging */
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, AT(150)), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2);
    t[2] = spawn_w(&c);
    CHECK_OK(cosync_sleep_until(AT(350)));
    check_order((int[]){1}, 1);
    CHECK_EQ(a.at, AT(300));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2);
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0); /* A took all 3 */
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_EQ(b.at, AT(400));
    CHECK_EQ(c.at, AT(500));
    check_order((int[]){1, 2, 3}, 3);
    /* a waiter of mine, with my own acquire behind it: I queue too */
    rw d = mkw(&rl, 2, 4);
    cosync_task td = spawn_w(&d);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sleep_until(AT(610))); /* 1.1 tokens there; d wants 2 */
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(800)); /* after d's (at 700) */
    join_ok(td);
    CHECK_EQ(d.at, AT(700));
    check_order((int[]){1, 2, 3, 4}, 4);
    return 0;
}

TEST(rl_fifo_large_request_not_starved_no_barging)
{
    run_main_ok(fifo_main, NULL);
}

/* tokens() before and after; the refill caps at burst after a long sleep
 * (no overflow); the extremes allowed by the span. */
static int tokens_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 3));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 3);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 2);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 2, 0));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_sleep_until(AT(99)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_sleep_until(AT(100)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    CHECK_OK(cosync_sleep_until(AT(250)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 2); /* whole tokens: 2.5 */
    CHECK_OK(cosync_sleep_until(AT(300)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 3);
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600))); /* an hour: still 3 */
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 3);
    int64_t T = cosync_now();
    uint64_t sw0 = switches();
    CHECK_OK(cosync_ratelimit_acquire(&rl, 3, 0));
    CHECK_EQ(switches(), sw0);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER)); /* not a token more */
    CHECK_EQ(cosync_now(), T + COSYNC_MS(100));
    /* tokens() counts those a waiter is waiting for, until they are all there */
    rw w = mkw(&rl, 3, 1);
    cosync_task t = spawn_w(&w);
    CHECK_OK(cosync_sleep(COSYNC_MS(150)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 2);
    join_ok(t);
    CHECK_EQ(w.at, T + COSYNC_MS(400));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);

    /* 1e9 tokens a nanosecond, 2^62 kept */
    const int64_t span = COSYNC_RATELIMIT_MAX_SPAN;
    CHECK_OK(cosync_ratelimit_init(&rl, 1000000000, 1, span));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), span);
    CHECK_OK(cosync_ratelimit_acquire(&rl, span, 0));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_sleep(1));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1000000000);
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), span); /* capped, no overflow */
    CHECK_OK(cosync_ratelimit_acquire(&rl, span, COSYNC_FOREVER));
    T = cosync_now();
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + 1); /* 1e9 of them in 1 ns */
    /* then the whole bucket from 1e9 - 1 left: ceil((2^62 - 999,999,999) / 1e9) ns */
    CHECK_OK(cosync_ratelimit_acquire(&rl, span, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + 1 + INT64_C(4611686018));
    CHECK_OK(cosync_ratelimit_destroy(&rl));

    /* INT64_MAX tokens a nanosecond, 1 kept */
    CHECK_OK(cosync_ratelimit_init(&rl, INT64_MAX, 1, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    T = cosync_now();
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + 1);
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);
    /* INT64_MAX tokens each 2^62 ns: more than one a nanosecond */
    CHECK_OK(cosync_ratelimit_init(&rl, INT64_MAX, span, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    T = cosync_now();
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + 1);
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1);

    /* one token each 2^62 ns (146 years): an hour's wait times out having
     * taken nothing, and the wait after it ends at exactly 2^62 ns after
     * the bucket emptied */
    CHECK_OK(cosync_ratelimit_init(&rl, 1, span, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    T = cosync_now();
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, cosync_deadline_after(COSYNC_SEC(3600))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), T + COSYNC_SEC(3600));
    CHECK(!rl_timer_armed(&rl));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), T + span);
    return 0;
}

TEST(rl_tokens_and_refill_cap_and_extremes)
{
    run_main_ok(tokens_main, NULL);
}

/* The refill stops at the burst as soon as the bucket is full, not some
 * time later: emptied, then left for a second past the time it fills (a
 * bucket of 3 at 10 a second fills in 300 ms), it holds exactly 3, and
 * the next 4 tokens come at +0, +0, +0 and +100 ms. */
static cosync_ratelimit full_rl = COSYNC_RATELIMIT_INIT(10, COSYNC_SEC(1), 3);

static int refill_cap_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_ratelimit_acquire(&full_rl, 3, 0)); /* emptied */
    CHECK_EQ(cosync_ratelimit_tokens(&full_rl), 0);
    CHECK_OK(cosync_sleep(COSYNC_MS(1300)));
    CHECK_EQ(cosync_ratelimit_tokens(&full_rl), 3);
    t0 = cosync_now();
    CHECK_OK(cosync_ratelimit_acquire(&full_rl, 3, 0));
    CHECK_ERR(cosync_ratelimit_acquire(&full_rl, 1, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_ratelimit_acquire(&full_rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    return 0;
}

TEST(rl_refill_stops_at_the_burst_when_full)
{
    run_main_ok(refill_cap_main, NULL);
}

/* ========================================================================
 * Rate limiter: deadlines
 * ===================================================================== */

static int deadlines_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 3));
    uint64_t sw0 = switches();
    /* the tokens are there: every deadline succeeds at once, even passed ones */
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, t0 - 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, t0)); /* = now: passed */
    /* short: the try form is EAGAIN, a passed deadline ETIMEDOUT; neither
     * queues, arms the timer nor switches */
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, t0), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 3, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(armed_timers(), 0);
    /* a deadline before the token: ETIMEDOUT at exactly the deadline,
     * nothing taken: the token is still due at 100 ms */
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, AT(50)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(50));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(armed_timers(), 0);
    rw w1 = mkw(&rl, 1, 1);
    cosync_task t1 = spawn_w(&w1);
    join_ok(t1);
    CHECK_EQ(w1.at, AT(100));
    /* a deadline after the tokens: granted, the deadline's timer disarmed */
    CHECK_OK(cosync_ratelimit_acquire(&rl, 2, AT(900)));
    CHECK_EQ(cosync_now(), AT(300));
    CHECK_EQ(armed_timers(), 0);

    /* the head (3) times out at 450: the next (2) is re-planned, granted
     * at its own time (500: 2 tokens from 300), not at once nor later;
     * then C (1) at 600 */
    rw a = mkw(&rl, 3, 2), b = mkw(&rl, 2, 3), c = mkw(&rl, 1, 4);
    a.deadline = AT(450);
    cosync_task t[3] = {spawn_w(&a), spawn_w(&b), spawn_w(&c)};
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 3);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_ERR(a.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(a.at, AT(450));
    CHECK_OK(b.rc);
    CHECK_EQ(b.at, AT(500));
    CHECK_OK(c.rc);
    CHECK_EQ(c.at, AT(600));
    check_order((int[]){1, 3, 4}, 3);

    /* the head times out when the next one's tokens are there already:
     * it is granted in the same instant */
    a = mkw(&rl, 3, 5), b = mkw(&rl, 1, 6);
    a.deadline = AT(750); /* 1.5 tokens there */
    t[0] = spawn_w(&a);
    t[1] = spawn_w(&b);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_ERR(a.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(a.at, AT(750));
    CHECK_EQ(b.at, AT(750));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0); /* 0.5 left */
    CHECK(!rl_timer_armed(&rl));               /* nobody left: not armed for A's time */

    /* a middle waiter times out: the one behind it moves up */
    a = mkw(&rl, 1, 7), b = mkw(&rl, 1, 8), c = mkw(&rl, 1, 9);
    b.deadline = AT(820);
    t[0] = spawn_w(&a);
    t[1] = spawn_w(&b);
    t[2] = spawn_w(&c);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_EQ(a.at, AT(800));
    CHECK_ERR(b.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(b.at, AT(820));
    CHECK_EQ(c.at, AT(900));
    check_order((int[]){1, 3, 4, 6, 7, 9}, 6);
    CHECK(!rl_timer_armed(&rl));
    return 0;
}

TEST(rl_deadlines)
{
    run_main_ok(deadlines_main, NULL);
}

/* ========================================================================
 * Rate limiter: cancellation
 * ===================================================================== */

/* The head (3) is cancelled at 150 ms: B (2) is re-planned to 200 ms (its
 * own time, had A never been there), C (1) to 300. Without the cancel
 * they would have come at 300 (A), 500, 600. */
static int cancel_head_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    init_empty_10_3(&rl);
    rw a = mkw(&rl, 3, 1), b = mkw(&rl, 2, 2), c = mkw(&rl, 1, 3);
    cosync_task t[3] = {spawn_w(&a), spawn_w(&b), spawn_w(&c)};
    CHECK_OK(cosync_sleep_until(AT(150)));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 3);
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2); /* taken off at once */
    CHECK(rl_timer_armed(&rl));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1); /* A took nothing */
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(a.at, AT(150));
    join_ok(t[1]);
    join_ok(t[2]);
    CHECK_EQ(b.at, AT(200));
    CHECK_EQ(c.at, AT(300));
    check_order((int[]){2, 3}, 2);
    CHECK(!rl_timer_armed(&rl));

    /* the head cancelled when the next one's tokens are there: granted by
     * the cancel itself, in that instant (B 1 at 450; then C 1 at 500) */
    a = mkw(&rl, 3, 4), b = mkw(&rl, 1, 5), c = mkw(&rl, 1, 6);
    t[0] = spawn_w(&a);
    t[1] = spawn_w(&b);
    t[2] = spawn_w(&c);
    CHECK_OK(cosync_sleep_until(AT(450)));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1); /* B granted, C waits */
    CHECK(!cosync_task_done(t[1]));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0); /* 1.5 - 1 */
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(b.at, AT(450));
    CHECK_EQ(c.at, AT(500));
    check_order((int[]){2, 3, 5, 6}, 4);

    /* the head cancelled, the only one behind it granted at once: the
     * timer, armed for the head, is disarmed (B 1 at 600) */
    a = mkw(&rl, 3, 7), b = mkw(&rl, 1, 8);
    t[0] = spawn_w(&a);
    t[1] = spawn_w(&b);
    CHECK_OK(cosync_sleep_until(AT(600)));
    CHECK(rl_timer_armed(&rl));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(b.at, AT(600));
    check_order((int[]){2, 3, 5, 6, 8}, 5);

    /* the only waiter cancelled: the limiter's timer is disarmed */
    a = mkw(&rl, 2, 9);
    t[0] = spawn_w(&a);
    CHECK_OK(cosync_yield());
    CHECK(rl_timer_armed(&rl));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_EQ(armed_timers(), 0);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 2, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(800));
    return 0;
}

TEST(rl_cancel_head_replans_the_next)
{
    run_main_ok(cancel_head_main, NULL);
}

/* A middle and a tail waiter cancelled (at 50 ms): the others keep their
 * times, in order; a cancelled tail leaves the timer disarmed after the
 * last grant. */
static int cancel_middle_tail_main(void *arg, void **result)
{
    (void)result;
    int which = (int)(intptr_t)arg; /* 1: the middle, 2: the tail */
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    init_empty_10_3(&rl);
    rw w[3] = {mkw(&rl, 1, 1), mkw(&rl, 1, 2), mkw(&rl, 1, 3)};
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_w(&w[i]);
    CHECK_OK(cosync_sleep_until(AT(50)));
    CHECK_OK(cosync_task_cancel(t[which]));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 2);
    CHECK(rl_timer_armed(&rl)); /* still for the head, at 100 */
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_ERR(w[which].rc, COSYNC_ECANCELED);
    CHECK_EQ(w[which].at, AT(50));
    CHECK_EQ(w[0].at, AT(100));
    CHECK_EQ(w[which == 1 ? 2 : 1].at, AT(200));
    check_order(which == 1 ? (int[]){1, 3} : (int[]){1, 2}, 2);
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(cosync_now(), AT(200));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_sleep_until(AT(300)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1); /* the cancelled one took nothing */
    return 0;
}

TEST(rl_cancel_middle_and_tail)
{
    run_main_ok(cancel_middle_tail_main, (void *)1);
    run_main_ok(cancel_middle_tail_main, (void *)2);
}

/* A waiter granted its token and cancelled before it runs keeps it: its
 * acquire returns 0, and the cancel comes at its next suspension. The
 * canceller's timer is armed before the limiter's, both at 100 ms: the
 * limiter's fires second, so the canceller runs before the waiter. */
typedef struct canceller {
    cosync_ratelimit *rl;
    cosync_task victim;
    int64_t when;
    bool done;
} canceller;

static int cancel_at(void *arg, void **result)
{
    (void)result;
    canceller *c = arg;
    CHECK_OK(cosync_sleep_until(c->when));
    CHECKPOINT(0);
    CHECK_EQ(cosync_ratelimit_waiters(c->rl), 0); /* granted */
    CHECK(!cosync_task_done(c->victim));          /* not run yet */
    CHECK_EQ(cosync_ratelimit_tokens(c->rl), 0);  /* taken by it */
    CHECK_OK(cosync_task_cancel(c->victim));
    c->done = true;
    return 0;
}

static int granted_then_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    canceller c = {.rl = &rl, .when = AT(100)};
    cosync_task tc;
    CHECK_OK(cosync_task_spawn(&tc, cancel_at, &c, NULL));
    CHECK_OK(cosync_yield()); /* c's timer first */
    rw w = mkw(&rl, 1, 1);
    w.yield_after = true;
    w.checkpoint = 1;
    cosync_task t = spawn_w(&w);
    c.victim = t;
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 1);
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    join_ok(tc);
    CHECK(c.done);
    CHECKPOINTS_DONE(2);
    CHECK_OK(w.rc); /* the grant stands */
    CHECK_EQ(w.at, AT(100));
    CHECK_ERR(w.next_rc, COSYNC_ECANCELED); /* at the next suspension */
    check_order((int[]){1}, 1);
    /* it kept its token: the next is due at 200 */
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(200));
    return 0;
}

TEST(rl_granted_then_cancelled_keeps_its_tokens)
{
    run_main_ok(granted_then_cancelled_main, NULL);
}

/* A pending cancellation: an acquire that completes at once succeeds and
 * leaves it pending, as does the try form; one that would wait delivers
 * it after one suspension, queuing nothing and taking nothing. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN);
    cosync_task other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)0, NULL));
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECKPOINT(1); /* the other task ran meanwhile */
    CHECK_EQ(cosync_now(), t0);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(cosync_task_uncancel(me), 0);
    join_ok(other);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100)); /* the cancelled wait took nothing */
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(rl_pending_cancellation)
{
    run_main_ok(pending_cancel_main, NULL);
}

/* ========================================================================
 * Rate limiter: loops, tasks, stacks
 * ===================================================================== */

static cosync_ratelimit xl;

static int take_then_wait(void *arg, void **result)
{
    (void)result;
    rw *w = arg;
    CHECK_OK(cosync_ratelimit_acquire(&xl, 1, 0));
    w->rc = cosync_ratelimit_acquire(&xl, 1, COSYNC_FOREVER);
    w->at = cosync_now();
    return 0;
}

static int try_xl(void *arg, void **result)
{
    (void)result;
    rw *w = arg;
    w->rc = cosync_ratelimit_acquire(&xl, w->n, w->deadline);
    return 0;
}

static int stopper_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

TEST(rl_bound_to_one_loop_while_it_has_waiters)
{
    CHECK_OK(cosync_ratelimit_init(&xl, 10, SEC, 1));
    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    rw wa = mkw(&xl, 1, 0), wb = mkw(&xl, 1, 0);
    cosync_task ta, tb, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, take_then_wait, &wa, NULL));
    spawn_and_run(a, &stopper, stopper_fn, NULL);
    CHECK_EQ(cosync_ratelimit_waiters(&xl), 1);
    /* b: refused while a's task waits, whatever the deadline */
    const int64_t deadlines[] = {COSYNC_FOREVER, 0, 1, COSYNC_SEC(5)};
    for (size_t i = 0; i < sizeof deadlines / sizeof deadlines[0]; i++) {
        wb.deadline = deadlines[i];
        wb.rc = 1;
        spawn_and_run(b, &tb, try_xl, &wb);
        CHECK_ERR(wb.rc, COSYNC_EPERM);
    }
    wb.n = 2; /* out of range: EINVAL first */
    spawn_and_run(b, &tb, try_xl, &wb);
    CHECK_ERR(wb.rc, COSYNC_EINVAL);
    CHECK_EQ(cosync_ratelimit_waiters(&xl), 1);
    int st = 1;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wa.rc);
    CHECK_EQ(wa.at, COSYNC_SEC(1) + COSYNC_MS(100)); /* a's clock */
    CHECK(!rl_timer_armed(&xl));
    /* unbound again: b's try form is EAGAIN (the token went to a's task),
     * not EPERM, and b's task can wait */
    wb = mkw(&xl, 1, 0);
    wb.deadline = 0;
    spawn_and_run(b, &tb, try_xl, &wb);
    CHECK_ERR(wb.rc, COSYNC_EAGAIN);
    wb.deadline = COSYNC_FOREVER;
    spawn_and_run(b, &tb, try_xl, &wb);
    CHECK_OK(wb.rc);
    end_loop(a);
    end_loop(b);
}

/* Outside a task: the tokens there are taken at once; a call that would
 * wait is EPERM (the try form too: it cannot complete at once), and
 * leaves nothing behind. One token each 1,000 s: none comes meanwhile. */
TEST(rl_outside_a_task)
{
    cosync_ratelimit rl = COSYNC_RATELIMIT_INIT(1, COSYNC_SEC(1000), 2);
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 2);
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 2, cosync_deadline_after(COSYNC_SEC(1))), COSYNC_EPERM);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 3, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK(!rl_timer_armed(&rl));
    CHECK_NULL(rl.q.loop);
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 0);
    CHECK_OK(cosync_ratelimit_destroy(&rl));
}

/* A limiter in a dense task's own stack: a wait on it is refused with
 * EINVAL at once (no switch), leaving nothing queued and the limiter's
 * timer disarmed (it was armed for the refused head, and must not stay in
 * the loop's heap pointing into the shared stack). The tokens there are
 * still taken without a wait. The limiter, quiescent, is then copied out,
 * and a normal task waits on the copy as on any limiter. */
static cosync_ratelimit dense_copy;

static int dense_body(void *arg, void **result)
{
    (void)result;
    int *finished = arg;
    int64_t start = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER)); /* there: no wait */
    uint64_t before = switches();
    size_t timers = armed_timers();
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK(!rl_timer_armed(&rl));
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, cosync_deadline_after(COSYNC_MS(50))),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_ratelimit_acquire(&rl, 1, 0), COSYNC_EAGAIN); /* no wait, no harm */
    CHECK_EQ(switches(), before);
    CHECK_EQ(armed_timers(), timers);
    CHECK(!rl_timer_armed(&rl));
    CHECK_EQ(cosync_ratelimit_waiters(&rl), 0);
    CHECK_NULL(rl.q.loop);
    CHECK_EQ(cosync_now(), start);
    CHECK_OK(cosync_sleep(COSYNC_MS(100)));
    CHECK_EQ(cosync_ratelimit_tokens(&rl), 1); /* the refused waits took nothing */
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
    dense_copy = rl;
    ++*finished;
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int finished = 0;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dense_body, &finished, &(cosync_task_opts){.dense = true}));
    join_ok(t);
    CHECK_EQ(finished, 1);
    int64_t emptied = cosync_now(); /* the dense task took its last token now */
    CHECK_EQ(armed_timers(), 0);
    rw w = mkw(&dense_copy, 1, 1);
    cosync_task tw = spawn_w(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_ratelimit_waiters(&dense_copy), 1);
    CHECK(rl_timer_armed(&dense_copy));
    join_ok(tw);
    CHECK_EQ(w.at, emptied + COSYNC_MS(100));
    return 0;
}

TEST(rl_dense_task_cannot_wait_on_a_limiter_in_its_own_stack)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return; /* there a dense task has its own stack */
    run_main_ok(dense_main, NULL);
}

/* The loop destroyed while tasks wait: they are cancelled, the limiter is
 * left with no waiter, unbound and its timer disarmed, nothing taken and
 * nothing allocated left; another loop then uses it. */
static cosync_ratelimit dl_rl;

static int dl_reuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now(); /* the new loop starts at 1 s, as the old one stayed */
    CHECK_EQ(cosync_ratelimit_tokens(&dl_rl), 0);
    CHECK_OK(cosync_ratelimit_acquire(&dl_rl, 1, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    return 0;
}

TEST(rl_loop_destroyed_with_waiters)
{
    CHECK_OK(cosync_ratelimit_init(&dl_rl, 10, SEC, 1));
    counting cnt = {0, 0};
    cosync_allocator alloc = {count_realloc, &cnt};
    cosync_loop *loop = NULL;
    CHECK_OK(
        cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &alloc}));
    rw w[4];
    cosync_task t[4], stopper;
    for (int i = 0; i < 4; i++) {
        w[i] = mkw(&dl_rl, 1, i + 1);
        CHECK_OK(cosync_loop_spawn(loop, &t[i], rw_fn, &w[i], NULL));
    }
    spawn_and_run(loop, &stopper, stopper_fn, NULL);
    CHECK_OK(w[0].rc); /* the one token */
    CHECK_EQ(cosync_ratelimit_waiters(&dl_rl), 3);
    CHECK(rl_timer_armed(&dl_rl));
    CHECK_GT(cnt.live, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    for (int i = 1; i < 4; i++) {
        CHECK_ERR(w[i].rc, COSYNC_ECANCELED);
        CHECK_EQ(w[i].at, COSYNC_SEC(1));
    }
    CHECK_EQ(cosync_ratelimit_waiters(&dl_rl), 0);
    CHECK(!rl_timer_armed(&dl_rl));
    CHECK_NULL(dl_rl.q.loop);
    CHECK_EQ(cnt.live, 0);
    run_main_ok(dl_reuse_main, NULL);
}

/* A task waiting for tokens is no deadlock: the limiter's timer will wake
 * it. The only blocked task waits on the limiter (main joins it, or main
 * itself), and the run ends with 0 once it is granted, reporting nothing. */
static int nd_main(void *arg, void **result)
{
    (void)result;
    bool via_child = arg != NULL;
    t0 = cosync_now();
    cosync_ratelimit rl;
    CHECK_OK(cosync_ratelimit_init(&rl, 10, SEC, 1));
    CHECK_OK(cosync_ratelimit_acquire(&rl, 1, 0));
    if (via_child) {
        rw w = mkw(&rl, 1, 1);
        cosync_task t = spawn_w(&w);
        join_ok(t);
        CHECK_EQ(w.at, AT(100));
    } else {
        CHECK_OK(cosync_ratelimit_acquire(&rl, 1, COSYNC_FOREVER));
        CHECK_EQ(cosync_now(), AT(100));
    }
    return 0;
}

TEST(rl_waiting_for_tokens_is_not_a_deadlock)
{
    for (int via_child = 0; via_child < 2; via_child++) {
        capture report;
        cosync_loop *loop = report_loop(&report, NULL);
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, nd_main, via_child ? (void *)1 : NULL,
                                   &(cosync_task_opts){.name = "main"}));
        int st = 1;
        CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
        CHECK_EQ(st, 0);
        const char *text = capture_text(&report);
        CHECK(text == NULL || text[0] == '\0');
        end_loop(loop);
        capture_free(&report);
    }
}

/* The dump says what a waiter waits for. */
static int describe_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_ratelimit rl;
    init_empty_10_3(&rl);
    rw a = mkw(&rl, 3, 1), b = mkw(&rl, 1, 2);
    b.deadline = AT(1000);
    cosync_task t[2] = {spawn_w_named(&a, "big"), spawn_w_named(&b, "small")};
    CHECK_OK(cosync_yield());
    int n = 0;
    char *text = dump_text(&n);
    CHECK_EQ(n, 3);
    char want[256];
    snprintf(want, sizeof want,
             "  task 'big' (#2) waits on rate limiter %p (10 a period of 1000000000 ns, 2 "
             "waiting, wants 3)\n",
             (void *)&rl);
    if (!strstr(text, want))
        CHECK__FAIL("dump:\n%s\nlacks:\n%s", text, want);
    snprintf(want, sizeof want,
             "  task 'small' (#3) waits on rate limiter %p (10 a period of 1000000000 ns, 2 "
             "waiting, wants 1) (with a deadline)\n",
             (void *)&rl);
    if (!strstr(text, want))
        CHECK__FAIL("dump:\n%s\nlacks:\n%s", text, want);
    free(text);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_EQ(a.at, AT(300));
    CHECK_EQ(b.at, AT(400));
    return 0;
}

TEST(rl_dump_describes_the_wait)
{
    run_main_ok(describe_main, NULL);
}

/* ========================================================================
 * Circuit breaker helpers
 * ===================================================================== */

/* A service: counts its calls, may pass a checkpoint and sleep, then
 * writes @value as its result and returns @status. */
typedef struct svc {
    int64_t sleep;
    int status;
    void *value;
    int checkpoint; /* < 0: none */
    int calls;
} svc;

static int svc_fn(void *arg, void **result)
{
    svc *s = arg;
    s->calls++;
    if (s->checkpoint >= 0)
        CHECKPOINT(s->checkpoint);
    if (s->sleep) {
        int rc = cosync_sleep(s->sleep);
        if (rc)
            return rc;
    }
    *result = s->value;
    return s->status;
}

static svc mks(int64_t sleep, int status)
{
    return (svc){.sleep = sleep, .status = status, .checkpoint = -1};
}

/* A task that, after @delay, makes a call through @b and records it. */
typedef struct caller {
    cosync_breaker *b;
    svc *s;
    int64_t delay;
    int checkpoint; /* passed when the call returns; < 0: none */
    int rc;
    void *res;
    int64_t at;
} caller;

static int caller_fn(void *arg, void **result)
{
    (void)result;
    caller *c = arg;
    if (c->delay)
        CHECK_OK(cosync_sleep(c->delay));
    c->res = (void *)&c->res; /* a sentinel: untouched unless the service runs */
    c->rc = cosync_breaker_call(c->b, svc_fn, c->s, &c->res);
    c->at = cosync_now();
    if (c->checkpoint >= 0)
        CHECKPOINT(c->checkpoint);
    return 0;
}

static caller mkc(cosync_breaker *b, svc *s, int64_t delay, int checkpoint)
{
    return (caller){.b = b, .s = s, .delay = delay, .checkpoint = checkpoint, .rc = 1, .at = -1};
}

static cosync_task spawn_c(caller *c)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, caller_fn, c, NULL));
    return t;
}

enum { FAIL = -20001 }; /* a service's own error (outside cosync's codes) */

/* One call by hand: enter, then leave with @status. */
static void call_now(cosync_breaker *b, int status)
{
    uint64_t ticket;
    CHECK_OK(cosync_breaker_enter(b, &ticket));
    CHECK_OK(cosync_breaker_leave(b, ticket, status));
}

/* ========================================================================
 * Circuit breaker: init, static initialiser, misuse
 * ===================================================================== */

static cosync_breaker static_br = COSYNC_BREAKER_INIT(2, COSYNC_MS(10));
static cosync_breaker static_br_bad[] = {
    COSYNC_BREAKER_INIT(0, COSYNC_MS(10)),
    COSYNC_BREAKER_INIT(-1, COSYNC_MS(10)),
    COSYNC_BREAKER_INIT(2, -1),
    COSYNC_BREAKER_INIT(INT64_MIN, INT64_MIN),
};

/* Every call of an unusable breaker is EINVAL, and its service is never
 * called. */
static void check_unusable(cosync_breaker *b)
{
    svc s = mks(0, 0);
    uint64_t ticket = 77;
    void *res = &res;
    CHECK_ERR(cosync_breaker_enter(b, &ticket), COSYNC_EINVAL);
    CHECK_EQ(ticket, 77);
    CHECK_ERR(cosync_breaker_leave(b, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_leave(b, 0, FAIL), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_call(b, svc_fn, &s, &res), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_call(b, svc_fn, &s, NULL), COSYNC_EINVAL);
    CHECK_EQ(s.calls, 0);
    CHECK(res == &res);
    CHECK_ERR(cosync_breaker_get_state(b), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_reset(b), COSYNC_EINVAL);
}

TEST(br_init_validation_and_static_initialiser)
{
    cosync_breaker b;
    CHECK_ERR(cosync_breaker_init(NULL, 1, 0), COSYNC_EINVAL);
    const int64_t bad[][2] = {{0, 0}, {-1, 0}, {INT64_MIN, 0}, {1, -1}, {1, INT64_MIN}, {0, -1}};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        CHECK_ERR(cosync_breaker_init(&b, bad[i][0], bad[i][1]), COSYNC_EINVAL);
        check_unusable(&b);
    }
    const int64_t good[][2] = {{1, 0}, {1, 1}, {INT64_MAX, INT64_MAX}, {3, COSYNC_SEC(5)}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        CHECK_OK(cosync_breaker_init(&b, good[i][0], good[i][1]));
        CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
        CHECK_EQ(cosync_breaker_failures(&b), 0);
    }
    /* NULL arguments */
    svc s = mks(0, 0);
    uint64_t ticket;
    CHECK_ERR(cosync_breaker_enter(&b, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_enter(NULL, &ticket), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_leave(NULL, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_call(&b, NULL, &s, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_call(NULL, svc_fn, &s, NULL), COSYNC_EINVAL);
    CHECK_EQ(s.calls, 0);
    CHECK_ERR(cosync_breaker_get_state(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_reset(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_breaker_destroy(NULL), COSYNC_EINVAL);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED); /* nothing changed */
    /* the static initialiser: closed, usable at once */
    CHECK_EQ(cosync_breaker_get_state(&static_br), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_breaker_failures(&static_br), 0);
    call_now(&static_br, FAIL);
    CHECK_EQ(cosync_breaker_failures(&static_br), 1);
    call_now(&static_br, 0);
    CHECK_EQ(cosync_breaker_failures(&static_br), 0);
    CHECK_EQ(cosync_breaker_call(&static_br, svc_fn, &s, NULL), 0);
    CHECK_EQ(s.calls, 1);
    for (size_t i = 0; i < sizeof static_br_bad / sizeof static_br_bad[0]; i++)
        check_unusable(&static_br_bad[i]);
}

TEST(br_destroyed_is_einval)
{
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 2, COSYNC_SEC(5)));
    call_now(&b, FAIL);
    uint64_t ticket;
    CHECK_OK(cosync_breaker_enter(&b, &ticket)); /* a call under way */
    CHECK_OK(cosync_breaker_destroy(&b));
    CHECK_ERR(cosync_breaker_destroy(&b), COSYNC_EINVAL);
    check_unusable(&b);
    CHECK_ERR(cosync_breaker_leave(&b, ticket, FAIL), COSYNC_EINVAL);
    /* init makes it live again, closed */
    CHECK_OK(cosync_breaker_init(&b, 2, COSYNC_SEC(5)));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_OK(cosync_breaker_destroy(&b));
    check_unusable(&b);
}

/* ========================================================================
 * Circuit breaker: states
 * ===================================================================== */

/* Closed: a success resets the count; @threshold failures in a row open
 * it. Open: EOPEN, and cosync_breaker_call does not call the service;
 * exactly reset_timeout after it opened it is half-open. */
static int closed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 3, COSYNC_MS(50)));
    call_now(&b, 0);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_failures(&b), 2);
    call_now(&b, 0); /* resets */
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    call_now(&b, 7); /* positive: a success */
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    call_now(&b, COSYNC_ETIMEDOUT); /* any negative code but ECANCELED: a failure */
    call_now(&b, -1);
    CHECK_EQ(cosync_breaker_failures(&b), 2);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    /* the third in a row, through cosync_breaker_call, 10 ms later */
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    svc s = mks(0, FAIL);
    CHECK_ERR(cosync_breaker_call(&b, svc_fn, &s, NULL), FAIL);
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN); /* opened at 10 ms */
    /* open: fail fast, the service is not called */
    uint64_t ticket = 99;
    CHECK_ERR(cosync_breaker_enter(&b, &ticket), COSYNC_EOPEN);
    CHECK_EQ(ticket, 99);
    svc ok = mks(0, 0);
    ok.value = &ok;
    void *res = NULL;
    CHECK_ERR(cosync_breaker_call(&b, svc_fn, &ok, &res), COSYNC_EOPEN);
    CHECK_EQ(ok.calls, 0);
    CHECK_NULL(res);
    CHECK_OK(cosync_sleep_until(AT(60) - 1));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_ERR(cosync_breaker_call(&b, svc_fn, &ok, &res), COSYNC_EOPEN);
    CHECK_EQ(ok.calls, 0);
    CHECK_OK(cosync_sleep_until(AT(60)));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_breaker_call(&b, svc_fn, &ok, &res)); /* the trial, a success */
    CHECK_EQ(ok.calls, 1);
    CHECK(res == &ok);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    return 0;
}

TEST(br_closed_counts_failures_in_a_row_then_opens)
{
    run_main_ok(closed_main, NULL);
}

/* Half-open: the first enter is the trial, others EOPEN while it is under
 * way; its success closes; its failure re-opens for a full reset_timeout
 * from the failure's time. */
static int half_open_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 2, COSYNC_MS(50)));
    call_now(&b, FAIL);
    call_now(&b, FAIL); /* opens at 0 */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(50) - 1));
    uint64_t trial, other;
    CHECK_ERR(cosync_breaker_enter(&b, &trial), COSYNC_EOPEN);
    CHECK_OK(cosync_sleep_until(AT(50)));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_sleep(COSYNC_MS(100))); /* however long the trial takes */
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_OK(cosync_breaker_leave(&b, trial, 0));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_OK(cosync_breaker_enter(&b, &other)); /* closed: calls go through */
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_OK(cosync_breaker_leave(&b, other, 0));
    CHECK_OK(cosync_breaker_leave(&b, trial, 0));

    /* open at 150 ms again; the trial at 200 fails at 207: open until 257 */
    CHECK_EQ(cosync_now(), AT(150));
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    CHECK_OK(cosync_sleep_until(AT(200)));
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_OK(cosync_sleep_until(AT(207)));
    CHECK_OK(cosync_breaker_leave(&b, trial, -1)); /* -1: a failure too */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_OK(cosync_sleep_until(AT(257) - 1));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_ERR(cosync_breaker_enter(&b, &trial), COSYNC_EOPEN);
    CHECK_OK(cosync_sleep_until(AT(257)));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_OK(cosync_breaker_leave(&b, trial, 1)); /* positive: a success */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    /* a failure after closing counts from 0 */
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_failures(&b), 1);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    return 0;
}

TEST(br_half_open_trial)
{
    run_main_ok(half_open_main, NULL);
}

/* ECANCELED as an outcome says nothing of the service: while closed it
 * neither counts nor resets; a cancelled trial lets the next call be the
 * trial, also when a task making the trial through cosync_breaker_call is
 * cancelled. */
static int cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 3, COSYNC_MS(20)));
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    call_now(&b, COSYNC_ECANCELED);
    CHECK_EQ(cosync_breaker_failures(&b), 2);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    call_now(&b, FAIL); /* the third failure in a row: the cancelled call was no success */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(20)));
    uint64_t trial, other;
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_OK(cosync_breaker_leave(&b, trial, COSYNC_ECANCELED));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_breaker_enter(&b, &trial)); /* the next call is the trial */
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_OK(cosync_breaker_leave(&b, trial, FAIL));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN); /* from 20 ms */

    /* through tasks: A makes the trial at 40 (its service takes 100 ms), B
     * is rejected at 45, A is cancelled at 50; the next call, at 50, is
     * the trial */
    svc slow = mks(COSYNC_MS(100), 0);
    svc quick = mks(0, 0);
    caller a = mkc(&b, &slow, COSYNC_MS(20), -1);
    caller c = mkc(&b, &quick, COSYNC_MS(25), -1);
    cosync_task ta = spawn_c(&a), tc = spawn_c(&c);
    CHECK_OK(cosync_sleep_until(AT(50)));
    CHECK_EQ(slow.calls, 1);
    CHECK_ERR(c.rc, COSYNC_EOPEN);
    CHECK_EQ(c.at, AT(45));
    CHECK_EQ(quick.calls, 0);
    CHECK_OK(cosync_task_cancel(ta));
    join_expect(ta, COSYNC_ECANCELED); /* cancelled: it returned 0, not uncancelled */
    join_ok(tc);
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(a.at, AT(50));
    CHECK(a.res == (void *)&a.res); /* the service wrote nothing */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_OK(cosync_breaker_call(&b, svc_fn, &quick, NULL));
    CHECK_EQ(quick.calls, 1);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    return 0;
}

TEST(br_cancelled_outcome_is_neutral)
{
    run_main_ok(cancelled_main, NULL);
}

/* Stale tickets: the outcome of a call that entered before the breaker
 * last changed state is ignored. */
static int stale_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 2, COSYNC_MS(50)));
    /* a slow call enters while closed; two others fail: open at 0 */
    uint64_t slow, slow2, trial, other;
    CHECK_OK(cosync_breaker_enter(&b, &slow));
    CHECK_OK(cosync_breaker_enter(&b, &slow2));
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(50)));
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    /* the slow call fails now: it does not decide the trial */
    CHECK_OK(cosync_breaker_leave(&b, slow, FAIL));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN); /* the trial is still under way */
    /* nor does a stale success close it */
    CHECK_OK(cosync_breaker_leave(&b, slow2, 0));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN);
    CHECK_OK(cosync_breaker_leave(&b, trial, 0));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);

    /* closed calls under way when it opens: those beyond the threshold are
     * stale, and do not move the opening time (half-open at 101 + 50) */
    CHECK_OK(cosync_sleep_until(AT(100)));
    uint64_t c[4];
    for (int i = 0; i < 4; i++)
        CHECK_OK(cosync_breaker_enter(&b, &c[i]));
    CHECK_OK(cosync_breaker_leave(&b, c[0], FAIL));
    CHECK_OK(cosync_sleep_until(AT(101)));
    CHECK_OK(cosync_breaker_leave(&b, c[1], FAIL)); /* opens at 101 */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(110)));
    CHECK_OK(cosync_breaker_leave(&b, c[2], FAIL));
    CHECK_OK(cosync_breaker_leave(&b, c[3], 0)); /* nor does a success close it */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(151) - 1));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(151)));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);

    /* reset closes by hand and makes the calls under way stale: the trial's
     * failure, and two closed calls' failures, decide nothing */
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_OK(cosync_breaker_reset(&b));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_OK(cosync_breaker_leave(&b, trial, FAIL));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_OK(cosync_breaker_enter(&b, &c[0]));
    CHECK_OK(cosync_breaker_enter(&b, &c[1]));
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_failures(&b), 1);
    CHECK_OK(cosync_breaker_reset(&b));
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_OK(cosync_breaker_leave(&b, c[0], FAIL));
    CHECK_OK(cosync_breaker_leave(&b, c[1], FAIL));
    CHECK_EQ(cosync_breaker_failures(&b), 0);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    /* reset of an open breaker: closed at once */
    call_now(&b, FAIL);
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_breaker_reset(&b));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_OK(cosync_breaker_enter(&b, &other));
    CHECK_OK(cosync_breaker_leave(&b, other, 0));
    return 0;
}

TEST(br_stale_tickets_and_reset)
{
    run_main_ok(stale_main, NULL);
}

/* cosync_breaker_call with services that sleep while other tasks make
 * calls: the trial rule holds across tasks; the result passes through. */
static int across_tasks_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 1, COSYNC_MS(20)));
    svc fail = mks(0, FAIL);
    CHECK_ERR(cosync_breaker_call(&b, svc_fn, &fail, NULL), FAIL); /* open at 0 */
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_OPEN);

    /* A: the trial at 20 (its service: checkpoint 0, 10 ms, a success);
     * B at 25: rejected (1); A returns at 30 (2), closed; C at 35 goes
     * through (3) */
    int xa = 0, xc = 0;
    svc sa = mks(COSYNC_MS(10), 0), sb = mks(0, 0), sc = mks(0, 5);
    sa.value = &xa;
    sa.checkpoint = 0;
    sc.value = &xc;
    caller a = mkc(&b, &sa, COSYNC_MS(20), 2), bb = mkc(&b, &sb, COSYNC_MS(25), 1),
           c = mkc(&b, &sc, COSYNC_MS(35), 3);
    cosync_task t[3] = {spawn_c(&a), spawn_c(&bb), spawn_c(&c)};
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(4);
    CHECK_OK(a.rc);
    CHECK_EQ(a.at, AT(30));
    CHECK(a.res == &xa);
    CHECK_ERR(bb.rc, COSYNC_EOPEN);
    CHECK_EQ(bb.at, AT(25));
    CHECK_EQ(sb.calls, 0);
    CHECK(bb.res == (void *)&bb.res); /* untouched */
    CHECK_EQ(c.rc, 5);                /* what the service returned */
    CHECK(c.res == &xc);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);

    /* the trial fails across tasks: open at 35 (main); D's trial at 55
     * fails at 65 (re-open until 85); E at 60 and F at 75 rejected; G at
     * 85 is the trial, a success */
    CHECK_EQ(cosync_now(), AT(35));
    CHECK_ERR(cosync_breaker_call(&b, svc_fn, &fail, NULL), FAIL);
    CHECKPOINT_RESET();
    svc sd = mks(COSYNC_MS(10), FAIL), se = mks(0, 0), sf = mks(0, 0), sg = mks(0, 0);
    caller d = mkc(&b, &sd, COSYNC_MS(20), 1), e = mkc(&b, &se, COSYNC_MS(25), 0),
           f = mkc(&b, &sf, COSYNC_MS(40), 2), g = mkc(&b, &sg, COSYNC_MS(50), 3);
    cosync_task u[4] = {spawn_c(&d), spawn_c(&e), spawn_c(&f), spawn_c(&g)};
    CHECK_OK(cosync_gather(u, 4, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(4);
    CHECK_ERR(d.rc, FAIL);
    CHECK_EQ(d.at, AT(65));
    CHECK_ERR(e.rc, COSYNC_EOPEN);
    CHECK_ERR(f.rc, COSYNC_EOPEN);
    CHECK_EQ(f.at, AT(75));
    CHECK_OK(g.rc);
    CHECK_EQ(g.at, AT(85));
    CHECK_EQ(se.calls + sf.calls, 0);
    CHECK_EQ(sd.calls + sg.calls, 2);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);

    /* a slow call of a task entered while closed fails after the breaker
     * opened and went half-open: it decides nothing */
    cosync_breaker b2;
    CHECK_OK(cosync_breaker_init(&b2, 2, COSYNC_MS(20)));
    svc slow_fail = mks(COSYNC_MS(40), FAIL), slow_ok = mks(COSYNC_MS(30), 0);
    caller s1 = mkc(&b2, &slow_fail, 0, -1); /* enters at 85, fails at 125 */
    caller tr = mkc(&b2, &slow_ok, COSYNC_MS(20), -1);
    cosync_task v[2] = {spawn_c(&s1), spawn_c(&tr)};
    CHECK_OK(cosync_yield());
    call_now(&b2, FAIL);
    call_now(&b2, FAIL); /* open at 85; the trial enters at 105, ends at 135 */
    CHECK_OK(cosync_sleep_until(AT(130)));
    CHECK_ERR(s1.rc, FAIL);
    CHECK_EQ(s1.at, AT(125));
    CHECK_EQ(cosync_breaker_get_state(&b2), COSYNC_BREAKER_HALF_OPEN);
    uint64_t ticket;
    CHECK_ERR(cosync_breaker_enter(&b2, &ticket), COSYNC_EOPEN);
    CHECK_OK(cosync_gather(v, 2, NULL, COSYNC_FOREVER));
    CHECK_OK(tr.rc);
    CHECK_EQ(tr.at, AT(135));
    CHECK_EQ(cosync_breaker_get_state(&b2), COSYNC_BREAKER_CLOSED);

    /* the result: passed through, or NULL accepted (the service writes to
     * a slot of the call's own) */
    int x = 0;
    svc sv = mks(COSYNC_MS(1), 0);
    sv.value = &x;
    void *res = NULL;
    CHECK_OK(cosync_breaker_call(&b2, svc_fn, &sv, &res));
    CHECK(res == &x);
    CHECK_OK(cosync_breaker_call(&b2, svc_fn, &sv, NULL));
    sv.status = FAIL;
    res = NULL;
    CHECK_ERR(cosync_breaker_call(&b2, svc_fn, &sv, &res), FAIL);
    CHECK(res == &x); /* what the service wrote, failure or not */
    CHECK_ERR(cosync_breaker_call(&b2, svc_fn, &sv, NULL), FAIL);
    CHECK_EQ(sv.calls, 4);
    CHECK_EQ(cosync_breaker_get_state(&b2), COSYNC_BREAKER_OPEN);
    return 0;
}

TEST(br_call_with_a_suspending_service_across_tasks)
{
    run_main_ok(across_tasks_main, NULL);
}

/* reset_timeout 0: half-open as soon as it opens. */
static int zero_timeout_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_breaker b;
    CHECK_OK(cosync_breaker_init(&b, 1, 0));
    int64_t start = cosync_now();
    call_now(&b, FAIL);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    uint64_t trial, other;
    CHECK_OK(cosync_breaker_enter(&b, &trial));
    CHECK_ERR(cosync_breaker_enter(&b, &other), COSYNC_EOPEN); /* one trial at a time */
    CHECK_OK(cosync_breaker_leave(&b, trial, FAIL));
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_HALF_OPEN);
    svc s = mks(0, 0);
    CHECK_OK(cosync_breaker_call(&b, svc_fn, &s, NULL));
    CHECK_EQ(s.calls, 1);
    CHECK_EQ(cosync_breaker_get_state(&b), COSYNC_BREAKER_CLOSED);
    CHECK_EQ(cosync_now(), start); /* all in one instant */
    return 0;
}

TEST(br_reset_timeout_zero)
{
    run_main_ok(zero_timeout_main, NULL);
}

/* A breaker opened on one clock and used on another that is behind it
 * (the monotonic clock outside any loop, then a loop's virtual clock, which
 * starts at 1 s) counts its reset timeout afresh from the first look on
 * the new clock, rather than staying open until that clock passes the
 * first (a bug once: about the machine's uptime). */
static cosync_breaker clock_breaker = COSYNC_BREAKER_INIT(1, COSYNC_MS(100));

static int fail_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return -1;
}

static int breaker_clock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    CHECK_EQ(cosync_breaker_get_state(&clock_breaker), COSYNC_BREAKER_OPEN); /* rebased here */
    CHECK_OK(cosync_sleep_until(AT(99)));
    CHECK_EQ(cosync_breaker_get_state(&clock_breaker), COSYNC_BREAKER_OPEN);
    CHECK_OK(cosync_sleep_until(AT(100)));
    CHECK_EQ(cosync_breaker_get_state(&clock_breaker), COSYNC_BREAKER_HALF_OPEN);
    return 0;
}

TEST(br_opened_outside_a_loop_then_used_in_a_virtual_one)
{
    /* outside any loop: the monotonic clock, far ahead of a virtual one */
    CHECK_ERR(cosync_breaker_call(&clock_breaker, fail_once, NULL, NULL), -1);
    CHECK_EQ(cosync_breaker_get_state(&clock_breaker), COSYNC_BREAKER_OPEN);
    run_main_ok(breaker_clock_main, NULL);
}

/* ========================================================================
 * The seed's scenario (examples/sync_circuit_breaker.c), deterministic
 * ===================================================================== */

/*
 * The seed: threshold 3, reset timeout 50 ms (5 s scaled by 1/100), 20
 * calls in a row, each followed by a 10 ms pause; the service takes 1 ms
 * and fails at random. Here its outcomes are fixed, in the order it is
 * called (a rejected call does not reach it):
 *
 *     service call  k:  0  1  2  3  4  5  6  7  8  9 10 11
 *     outcome:          S  F  F  S  F  F  F  F  S  F  S  S
 *
 * A call that reaches the service takes 1 ms, a rejected one none; then
 * the 10 ms pause. So call i starts at s(i+1) = s(i) + 11 ms, or + 10 ms
 * if rejected. A failure is reported (and opens the breaker) when the
 * service returns, 1 ms after the call started. From the contract:
 *
 *   call  start  breaker before       service  outcome  after
 *     0     0    closed, 0 failures     S (k0)   ok       closed 0
 *     1    11    closed 0               F (k1)   failed   closed 1
 *     2    22    closed 1               F (k2)   failed   closed 2
 *     3    33    closed 2               S (k3)   ok       closed 0  (a success resets)
 *     4    44    closed 0               F (k4)   failed   closed 1
 *     5    55    closed 1               F (k5)   failed   closed 2
 *     6    66    closed 2               F (k6)   failed   open at 67 (3rd in a row)
 *     7    77    open, 10 ms of 50      -        rejected
 *     8    87    open, 20               -        rejected
 *     9    97    open, 30               -        rejected
 *    10   107    open, 40               -        rejected
 *    11   117    50 >= 50: half-open    F (k7)   failed   open at 118 (trial failed)
 *    12   128    open, 10               -        rejected
 *    13   138    open, 20               -        rejected
 *    14   148    open, 30               -        rejected
 *    15   158    open, 40               -        rejected
 *    16   168    50: half-open          S (k8)   ok       closed 0 (trial succeeded)
 *    17   179    closed 0               F (k9)   failed   closed 1
 *    18   190    closed 1               S (k10)  ok       closed 0
 *    19   201    closed 0               S (k11)  ok       closed 0
 *
 * 5 ok, 7 failed, 8 rejected; the service called 12 times. Calls 11 and
 * 16 fall exactly reset_timeout after the opening failure, thanks to the
 * 1 ms service time: the boundary is inclusive ("after exactly
 * reset_timeout it is half-open"). (The seed's own breaker, which resets
 * its count only when a trial succeeds, would open after call 4.)
 */
enum { NCALLS = 20 };
static const bool seed_fails[] = {false, true, true,  false, true,  true,
                                  true,  true, false, true,  false, false};
static int seed_calls;

static int unreliable_service(void *arg, void **result)
{
    (void)arg;
    int rc = cosync_sleep(COSYNC_MS(1));
    if (rc != 0)
        return rc;
    CHECK_LT(seed_calls, (int)(sizeof seed_fails / sizeof seed_fails[0]));
    bool fail = seed_fails[seed_calls++];
    *result = fail ? NULL : (void *)"Service response";
    return fail ? FAIL : 0;
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    seed_calls = 0;
    static cosync_breaker breaker = COSYNC_BREAKER_INIT(3, COSYNC_MS(50));
    char outcomes[NCALLS + 1] = {0};
    int64_t start[NCALLS];
    int state[NCALLS];
    for (int i = 0; i < NCALLS; i++) {
        start[i] = cosync_now() - t0;
        void *res = NULL;
        int rc = cosync_breaker_call(&breaker, unreliable_service, NULL, &res);
        if (rc == 0) {
            CHECK_STREQ(res, "Service response");
            outcomes[i] = 'o';
        } else if (rc == FAIL) {
            outcomes[i] = 'f';
        } else if (rc == COSYNC_EOPEN) {
            CHECK_NULL(res);
            outcomes[i] = 'r';
        } else {
            CHECK__FAIL("call %d: %s", i, cosync_err_name(rc));
        }
        state[i] = cosync_breaker_get_state(&breaker);
        CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    }
    CHECK_STREQ(outcomes, "offofffrrrrfrrrrofoo");
    static const int64_t want_start[NCALLS] = {0,   11,  22,  33,  44,  55,  66,  77,  87,  97,
                                               107, 117, 128, 138, 148, 158, 168, 179, 190, 201};
    for (int i = 0; i < NCALLS; i++)
        if (start[i] != COSYNC_MS(want_start[i]))
            CHECK__FAIL("call %d started at %lld ns, expected %lld ms", i, (long long)start[i],
                        (long long)want_start[i]);
    enum { C = COSYNC_BREAKER_CLOSED, O = COSYNC_BREAKER_OPEN };
    static const int want_state[NCALLS] = {C, C, C, C, C, C, O, O, O, O,
                                           O, O, O, O, O, O, C, C, C, C};
    for (int i = 0; i < NCALLS; i++)
        CHECK_EQ(state[i], want_state[i]);
    CHECK_EQ(seed_calls, 12);
    CHECK_EQ(cosync_breaker_failures(&breaker), 0);
    return 0;
}

TEST(br_seed_scenario)
{
    run_main_ok(seed_main, NULL);
}

/*
 * A limiter first used outside any loop takes cosync_now() there, the
 * monotonic clock (the machine's uptime), as its `last`; used afterwards
 * in a virtual-clock loop (which starts at 1 s), refill() adds nothing
 * while now < last (ratelimit.c, refill: `else if (now > rl->last)` and
 * `if (rl->last == COSYNC_FOREVER || now > rl->last) rl->last = now;`),
 * so the next token, due 100 ms after the bucket emptied, comes only once
 * the virtual clock passes the uptime: this wait times out at +10 s. The
 * same happens to a limiter used by one virtual loop and then by another
 * whose clock is behind (a defect once). A clock behind `last` now
 * starts the count afresh (adding nothing): the wait takes its 100 ms.
 */
static cosync_ratelimit clock_rl = COSYNC_RATELIMIT_INIT(10, COSYNC_SEC(1), 1);

static int clock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    CHECK_OK(cosync_ratelimit_acquire(&clock_rl, 1, 0));
    CHECK_OK(cosync_ratelimit_acquire(&clock_rl, 1, AT(10000)));
    CHECK_EQ(cosync_now(), AT(100));
    return 0;
}

TEST(rl_used_outside_a_loop_then_in_a_virtual_one)
{
    CHECK_EQ(cosync_ratelimit_tokens(&clock_rl), 1); /* outside any loop */
    run_main_ok(clock_main, NULL);
}

int main(void)
{
    /* rate limiter */
    RUN(rl_init_validation);
    RUN(rl_static_initialiser);
    RUN(rl_n_out_of_range_is_einval);
    RUN(rl_destroy);
    RUN(rl_starts_full_then_one_token_each_interval);
    RUN(rl_uneven_rate_keeps_exact_long_run_timing);
    RUN(rl_fifo_large_request_not_starved_no_barging);
    RUN(rl_tokens_and_refill_cap_and_extremes);
    RUN(rl_refill_stops_at_the_burst_when_full);
    RUN(rl_deadlines);
    RUN(rl_cancel_head_replans_the_next);
    RUN(rl_cancel_middle_and_tail);
    RUN(rl_granted_then_cancelled_keeps_its_tokens);
    RUN(rl_pending_cancellation);
    RUN(rl_bound_to_one_loop_while_it_has_waiters);
    RUN(rl_outside_a_task);
    RUN(rl_dense_task_cannot_wait_on_a_limiter_in_its_own_stack);
    RUN(rl_loop_destroyed_with_waiters);
    RUN(rl_waiting_for_tokens_is_not_a_deadlock);
    RUN(rl_dump_describes_the_wait);
    /* circuit breaker */
    RUN(br_init_validation_and_static_initialiser);
    RUN(br_destroyed_is_einval);
    RUN(br_closed_counts_failures_in_a_row_then_opens);
    RUN(br_half_open_trial);
    RUN(br_cancelled_outcome_is_neutral);
    RUN(br_stale_tickets_and_reset);
    RUN(br_call_with_a_suspending_service_across_tasks);
    RUN(br_reset_timeout_zero);
    RUN(br_opened_outside_a_loop_then_used_in_a_virtual_one);
    RUN(br_seed_scenario);
    RUN(rl_used_outside_a_loop_then_in_a_virtual_one);
    return 0;
}
