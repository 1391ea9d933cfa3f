/*
 * test_timers.c - sleeping, yielding, the virtual clock, and (white-box)
 * the timer pairing heap of src/timer.h.
 *
 * Every loop runs on the virtual clock, which starts at COSYNC_SEC(1): all
 * times asserted here are exact.
 */
#define _GNU_SOURCE /* open_memstream */
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "cosync.h"
#include "list.h"
#include "timer.h"

#define EPOCH COSYNC_SEC(1) /* where the virtual clock starts */

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

/* A log of single characters, to compare interleavings as strings. */
static char g_log[256];
static size_t g_log_len;

static void log_reset(void)
{
    memset(g_log, 0, sizeof g_log);
    g_log_len = 0;
}

static void log_char(char c)
{
    CHECK_LT(g_log_len, sizeof g_log - 1);
    g_log[g_log_len++] = c;
}

static void join_all(cosync_task *tasks, size_t n)
{
    for (size_t i = 0; i < n; i++)
        join_ok(tasks[i]);
}

/* ------------------------------------------------------------------------
 * Equal deadlines fire in arm order
 * ---------------------------------------------------------------------- */

#define NSAME 16

struct same_deadline {
    int index;
    int64_t stagger; /* slept until EPOCH + stagger before arming the common deadline */
    int rank;        /* expected position in the wake-up order */
};

static int woken_order[NSAME];
static int woken_count;

static int sleep_same_body(void *arg, void **result)
{
    (void)result;
    struct same_deadline *s = arg;
    if (s->stagger)
        CHECK_OK(cosync_sleep_until(EPOCH + s->stagger));
    CHECK_OK(cosync_sleep_until(COSYNC_SEC(5)));
    CHECK_EQ(cosync_now(), COSYNC_SEC(5));
    CHECKPOINT(s->rank);
    woken_order[woken_count++] = s->index;
    return 0;
}

static int same_deadline_main(void *arg, void **result)
{
    (void)result;
    struct same_deadline *s = arg;
    cosync_task tasks[NSAME];
    for (int i = 0; i < NSAME; i++)
        CHECK_OK(cosync_task_spawn(&tasks[i], sleep_same_body, &s[i], NULL));
    join_all(tasks, NSAME);
    return 0;
}

TEST(equal_deadlines_fire_in_arm_order_spawn_order)
{
    struct same_deadline s[NSAME];
    for (int i = 0; i < NSAME; i++)
        s[i] = (struct same_deadline){.index = i, .stagger = 0, .rank = i};
    woken_count = 0;
    run_main_ok(same_deadline_main, s);
    CHECKPOINTS_DONE(NSAME);
    CHECK_EQ(woken_count, NSAME);
    for (int i = 0; i < NSAME; i++)
        CHECK_EQ(woken_order[i], i);
}

TEST(equal_deadlines_fire_in_arm_order_not_spawn_order)
{
    /* Task i arms the common deadline at EPOCH + perm[i] ns, so the arm
     * order is the order of perm, not the spawn order. */
    static const int perm[NSAME] = {7, 3, 15, 0, 11, 9, 1, 14, 4, 12, 2, 8, 13, 6, 10, 5};
    struct same_deadline s[NSAME];
    for (int i = 0; i < NSAME; i++)
        s[i] = (struct same_deadline){.index = i, .stagger = perm[i] + 1, .rank = perm[i]};
    woken_count = 0;
    run_main_ok(same_deadline_main, s);
    CHECKPOINTS_DONE(NSAME);
    CHECK_EQ(woken_count, NSAME);
    for (int i = 0; i < NSAME; i++)
        CHECK_EQ(perm[woken_order[i]], i);
}

/* Equal deadlines armed in reverse spawn order, all in the same turn (no
 * staggering in time): task i yields NSAME-1-i times before arming. */
struct rev_arm {
    int index;
};

static int rev_arm_body(void *arg, void **result)
{
    (void)result;
    struct rev_arm *r = arg;
    /* all tasks yield in rounds; task i arms after round NSAME-1-i */
    for (int k = 0; k < NSAME - 1 - r->index; k++)
        CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_now(), EPOCH); /* all armed at the same virtual time */
    CHECK_OK(cosync_sleep(COSYNC_MS(3)));
    CHECK_EQ(cosync_now(), EPOCH + COSYNC_MS(3));
    CHECKPOINT(NSAME - 1 - r->index);
    return 0;
}

static int rev_arm_main(void *arg, void **result)
{
    (void)arg, (void)result;
    struct rev_arm r[NSAME];
    cosync_task tasks[NSAME];
    for (int i = 0; i < NSAME; i++) {
        r[i].index = i;
        CHECK_OK(cosync_task_spawn(&tasks[i], rev_arm_body, &r[i], NULL));
    }
    join_all(tasks, NSAME);
    return 0;
}

TEST(equal_deadlines_armed_in_one_instant_fire_in_arm_order)
{
    run_main_ok(rev_arm_main, NULL);
    CHECKPOINTS_DONE(NSAME);
}

/* ------------------------------------------------------------------------
 * Different lengths wake in deadline order, at exact times
 * ---------------------------------------------------------------------- */

#define NLEN 8
static const int64_t lengths[NLEN] = {COSYNC_MS(50), COSYNC_MS(10), COSYNC_MS(30), COSYNC_NS(1),
                                      COSYNC_SEC(2), COSYNC_MS(20), COSYNC_US(7),  COSYNC_MS(40)};
/* the rank of each length in ascending order */
static const int len_rank[NLEN] = {6, 2, 4, 0, 7, 3, 1, 5};

static int sleep_len_body(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    CHECK_EQ(cosync_now(), EPOCH);
    CHECK_OK(cosync_sleep(lengths[i]));
    CHECK_EQ(cosync_now(), EPOCH + lengths[i]);
    CHECKPOINT(len_rank[i]);
    return 0;
}

static int sleep_len_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task tasks[NLEN];
    for (int i = 0; i < NLEN; i++)
        CHECK_OK(cosync_task_spawn(&tasks[i], sleep_len_body, (void *)(intptr_t)i, NULL));
    join_all(tasks, NLEN);
    CHECK_EQ(cosync_now(), EPOCH + COSYNC_SEC(2));
    return 0;
}

TEST(different_sleeps_wake_in_deadline_order_at_exact_times)
{
    run_main_ok(sleep_len_main, NULL);
    CHECKPOINTS_DONE(NLEN);
}

/* A task that sleeps several times in a row accumulates exact times. */
static int sleep_chain_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t expect = EPOCH;
    for (int i = 1; i <= 10; i++) {
        CHECK_OK(cosync_sleep(COSYNC_MS(i)));
        expect += COSYNC_MS(i);
        CHECK_EQ(cosync_now(), expect);
    }
    CHECK_OK(cosync_sleep_until(COSYNC_SEC(100)));
    CHECK_EQ(cosync_now(), COSYNC_SEC(100));
    CHECK_EQ(armed_timers(), 0);
    return 0;
}

TEST(consecutive_sleeps_reach_exact_virtual_times)
{
    run_main_ok(sleep_chain_main, NULL);
}

/* ------------------------------------------------------------------------
 * yield ordering
 * ---------------------------------------------------------------------- */

static int abc_body(void *arg, void **result)
{
    (void)result;
    char c = (char)(intptr_t)arg;
    for (int r = 0; r < 4; r++) {
        log_char(c);
        CHECK_OK(cosync_yield());
    }
    return 0;
}

static int abc_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], abc_body, (void *)(intptr_t)('A' + i), NULL));
    join_all(t, 3);
    return 0;
}

TEST(yield_goes_behind_every_ready_task)
{
    log_reset();
    run_main_ok(abc_main, NULL);
    CHECK_STREQ(g_log, "ABCABCABCABC");
}

/* A task made ready during a round (by event_set, or spawned) runs after
 * the tasks already ready at that moment. */
static cosync_event g_ev;

static int round_body(void *arg, void **result)
{
    (void)result;
    char c = (char)(intptr_t)arg;
    for (int r = 0; r < 3; r++) {
        log_char(c);
        if (c == 'A' && r == 1)
            CHECK_OK(cosync_event_set(&g_ev)); /* W becomes ready behind B, C */
        if (c == 'B' && r == 1)
            CHECK_OK(cosync_task_spawn(NULL, round_body, (void *)(intptr_t)'D', NULL));
        if (c == 'D')
            return 0;
        CHECK_OK(cosync_yield());
    }
    return 0;
}

static int round_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    log_char('w');
    CHECK_OK(cosync_event_wait(&g_ev, COSYNC_FOREVER));
    log_char('W');
    return 0;
}

static int rounds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[4];
    cosync_event_init(&g_ev);
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], round_body, (void *)(intptr_t)('A' + i), NULL));
    CHECK_OK(cosync_task_spawn(&t[3], round_waiter, NULL, NULL));
    join_all(t, 4);
    return 0;
}

TEST(task_made_ready_during_a_round_runs_after_those_already_ready)
{
    log_reset();
    run_main_ok(rounds_main, NULL);
    /* round 0: A B C w(blocks); round 1: A sets -> [B C W A]; B spawns D
     * -> [C W A D B]; then W, A, D, B, C */
    CHECK_STREQ(g_log, "ABCwABCWADBC");
}

/* ------------------------------------------------------------------------
 * sleep(<= 0) and sleep_until(past) are yields
 * ---------------------------------------------------------------------- */

static int yieldish_kind;

static int yieldish(void)
{
    switch (yieldish_kind) {
    case 0:
        return cosync_sleep(-1);
    case 1:
        return cosync_sleep(INT64_MIN);
    case 2:
        return cosync_sleep(0);
    case 3:
        return cosync_sleep_until(cosync_now() - 1);
    case 4:
        return cosync_sleep_until(cosync_now());
    case 5:
        return cosync_sleep_until(1);
    default:
        return cosync_yield();
    }
}

static int yieldish_a(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int r = 0; r < 3; r++) {
        log_char('a');
        CHECK_OK(yieldish());
        CHECK_EQ(cosync_now(), EPOCH);
    }
    return 0;
}

static int yieldish_b(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int r = 0; r < 3; r++) {
        log_char('b');
        /* the other task is in the ready queue, with no timer armed */
        CHECK_EQ(armed_timers(), 0);
        CHECK_GE(ready_tasks(), 1);
        CHECK_OK(cosync_yield());
    }
    return 0;
}

static int yieldish_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], yieldish_a, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], yieldish_b, NULL, NULL));
    join_all(t, 2);
    CHECK_EQ(cosync_now(), EPOCH);
    return 0;
}

TEST(sleep_nonpositive_is_yield)
{
    for (yieldish_kind = 0; yieldish_kind <= 2; yieldish_kind++) {
        log_reset();
        run_main_ok(yieldish_main, NULL);
        CHECK_STREQ(g_log, "ababab");
    }
}

TEST(sleep_until_past_deadline_is_yield)
{
    for (yieldish_kind = 3; yieldish_kind <= 5; yieldish_kind++) {
        log_reset();
        run_main_ok(yieldish_main, NULL);
        CHECK_STREQ(g_log, "ababab");
    }
}

/* A lone task that yields, sleeps(0) or sleeps until the past gets control
 * straight back, at the same virtual time. */
static int lone_yield_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (yieldish_kind = 0; yieldish_kind <= 6; yieldish_kind++) {
        CHECK_OK(yieldish());
        CHECK_EQ(cosync_now(), EPOCH);
    }
    return 0;
}

TEST(lone_yield_returns_at_once)
{
    run_main_ok(lone_yield_main, NULL);
}

/* ------------------------------------------------------------------------
 * sleep_until(COSYNC_FOREVER)
 * ---------------------------------------------------------------------- */

static cosync_task g_forever;

static int forever_body(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(0);
    int rc = cosync_sleep_until(COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECKPOINT(2);
    CHECK_EQ(cosync_now(), EPOCH + COSYNC_SEC(1000));
    return rc;
}

static int forever_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    /* the forever sleeper arms no timer: only ours is armed */
    CHECK_EQ(armed_timers(), 0);
    CHECK_OK(cosync_sleep(COSYNC_SEC(1000)));
    CHECK_EQ(armed_timers(), 0);
    CHECKPOINT(1);
    CHECK_OK(cosync_task_cancel(g_forever));
    return 0;
}

static int forever_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task c;
    int status = 0;
    CHECK_OK(cosync_task_spawn(&g_forever, forever_body, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&c, forever_canceller, NULL, NULL));
    CHECK_OK(cosync_task_join(g_forever, &status, NULL, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_join(c, &status, NULL, COSYNC_FOREVER));
    CHECK_OK(status);
    return 0;
}

TEST(sleep_until_forever_blocks_until_cancelled)
{
    run_main_ok(forever_main, NULL);
    CHECKPOINTS_DONE(3);
}

static bool forever_alone_ended;

static int forever_alone(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep_until(COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED); /* only loop_destroy's cancellation ends it */
    forever_alone_ended = true;
    return rc;
}

TEST(sleep_until_forever_alone_is_a_deadlock_not_a_wakeup)
{
    forever_alone_ended = false;
    capture report;
    cosync_task t;
    cosync_loop *loop = deadlock_loop(&report, forever_alone, NULL, NULL, &t);
    CHECK(!forever_alone_ended);
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK(forever_alone_ended);
    const char *buf = capture_text(&report);
    CHECK_NOTNULL(buf);
    CHECK(strstr(buf, "sleep") != NULL);
    capture_free(&report);
}

/* ------------------------------------------------------------------------
 * cosync_deadline_after
 * ---------------------------------------------------------------------- */

static int deadline_after_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t now = cosync_now();
    CHECK_EQ(now, EPOCH);
    CHECK_EQ(cosync_deadline_after(0), now);
    CHECK_EQ(cosync_deadline_after(1), now + 1);
    CHECK_EQ(cosync_deadline_after(COSYNC_SEC(3)), now + COSYNC_SEC(3));
    CHECK_EQ(cosync_deadline_after(COSYNC_FOREVER), COSYNC_FOREVER);
    /* a budget that ran out is a deadline that has passed, not "none" */
    CHECK_EQ(cosync_deadline_after(-1), now);
    CHECK_EQ(cosync_deadline_after(-COSYNC_SEC(5)), now);
    CHECK_EQ(cosync_deadline_after(INT64_MIN + 1), now);
    CHECK_EQ(cosync_deadline_after(INT64_MAX), INT64_MAX);
    CHECK_EQ(cosync_deadline_after(INT64_MAX - now), INT64_MAX);
    CHECK_EQ(cosync_deadline_after(INT64_MAX - now + 1), INT64_MAX);
    CHECK_EQ(cosync_deadline_after(INT64_MAX - now - 1), INT64_MAX - 1);
    /* so a wait on such a budget times out (at once; asyncio's
     * wait_for(..., -0.003) one loop step later), and one that can
     * complete still does */
    cosync_event e = COSYNC_EVENT_INIT;
    CHECK_ERR(cosync_event_wait(&e, cosync_deadline_after(-COSYNC_MS(3))), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), now);
    /* also a budget overrun by exactly 1 ns, which -1 as "forever" took
     * for no deadline */
    int64_t end = now + COSYNC_MS(1);
    CHECK_OK(cosync_sleep(COSYNC_MS(1) + 1));
    CHECK_ERR(cosync_event_wait(&e, cosync_deadline_after(end - cosync_now())), COSYNC_ETIMEDOUT);
    now = cosync_now();
    CHECK_OK(cosync_event_set(&e));
    CHECK_OK(cosync_event_wait(&e, cosync_deadline_after(-COSYNC_MS(3))));
    /* it follows the clock */
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    CHECK_EQ(cosync_deadline_after(COSYNC_MS(1)), now + COSYNC_MS(6));
    CHECK_EQ(cosync_deadline_after(INT64_MAX - 1), INT64_MAX);
    return 0;
}

TEST(deadline_after_forever_passed_and_saturates)
{
    run_main_ok(deadline_after_main, NULL);
    /* outside a loop it reads CLOCK_MONOTONIC, and still saturates */
    CHECK_EQ(cosync_deadline_after(COSYNC_FOREVER), COSYNC_FOREVER);
    CHECK_EQ(cosync_deadline_after(INT64_MAX), INT64_MAX);
    struct timespec before, after;
    CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &before), 0);
    int64_t d = cosync_deadline_after(0);
    CHECK_EQ(clock_gettime(CLOCK_MONOTONIC, &after), 0);
    CHECK_GE(d, (int64_t)before.tv_sec * 1000000000 + before.tv_nsec);
    CHECK_LE(d, (int64_t)after.tv_sec * 1000000000 + after.tv_nsec);
}

/* ------------------------------------------------------------------------
 * The virtual clock moves only when nothing is runnable
 * ---------------------------------------------------------------------- */

#define SPINS 1000
static int spins_done;

static int spinner(void *arg, void **result)
{
    (void)arg, (void)result;
    for (spins_done = 0; spins_done < SPINS; spins_done++) {
        CHECK_EQ(cosync_now(), EPOCH);
        CHECK_OK(cosync_yield());
    }
    CHECK_EQ(cosync_now(), EPOCH);
    CHECKPOINT(0);
    return 0;
}

static int short_sleeper(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_NS(1)));
    /* woken only once the spinner stopped being runnable */
    CHECKPOINT(1);
    CHECK_EQ(spins_done, SPINS);
    CHECK_EQ(cosync_now(), EPOCH + 1);
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    /* nothing else runnable: straight to the next timer */
    CHECK_EQ(cosync_now(), EPOCH + 1 + COSYNC_SEC(3600));
    CHECKPOINT(2);
    return 0;
}

static int spin_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], short_sleeper, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], spinner, NULL, NULL));
    join_all(t, 2);
    return 0;
}

TEST(virtual_clock_does_not_move_while_a_task_is_runnable)
{
    run_main_ok(spin_main, NULL);
    CHECKPOINTS_DONE(3);
}

/* ------------------------------------------------------------------------
 * The pairing heap, directly
 * ---------------------------------------------------------------------- */

#define NHEAP 10000

struct htimer {
    cosync__timer timer;
    int index;
    bool expect_armed;
    int64_t when;
    uint64_t order; /* our own arm sequence */
};

static struct htimer ht[NHEAP];
static int fired[NHEAP + 16];
static size_t nfired;
static int64_t run_now;

static void htimer_fire(cosync__timer *t)
{
    struct htimer *h = cosync__container_of(t, struct htimer, timer);
    CHECK(!cosync__timer_armed(t));
    CHECK_LE(h->when, run_now);
    CHECK_LT(nfired, NHEAP);
    fired[nfired++] = h->index;
}

static uint64_t rng_state;
static uint64_t rng(void)
{
    /* xorshift64* */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static int cmp_expected(const void *a, const void *b)
{
    const struct htimer *x = &ht[*(const int *)a], *y = &ht[*(const int *)b];
    if (x->when != y->when)
        return x->when < y->when ? -1 : 1;
    return x->order < y->order ? -1 : x->order > y->order ? 1 : 0;
}

static int64_t model_min(void)
{
    int64_t m = COSYNC_FOREVER;
    for (int i = 0; i < NHEAP; i++)
        if (ht[i].expect_armed && (m == COSYNC_FOREVER || ht[i].when < m))
            m = ht[i].when;
    return m;
}

TEST(pairing_heap_random_arm_disarm_rearm_run)
{
    cosync__timer_heap heap = {0};
    uint64_t order = 0;
    size_t armed = 0;
    rng_state = UINT64_C(0x9E3779B97F4A7C15);
    CHECK_EQ(cosync__timer_next(&heap), COSYNC_FOREVER);
    CHECK_EQ(cosync__timer_run(&heap, INT64_MAX), 0);

    for (int i = 0; i < NHEAP; i++) {
        ht[i].index = i;
        cosync__timer_init(&ht[i].timer, htimer_fire);
        CHECK(!cosync__timer_armed(&ht[i].timer));
        /* few distinct deadlines: many duplicates */
        int64_t when = 1000 + (int64_t)(rng() % 400);
        cosync__timer_arm(&heap, &ht[i].timer, when);
        ht[i].when = when;
        ht[i].order = order++;
        ht[i].expect_armed = true;
        armed++;
        CHECK(cosync__timer_armed(&ht[i].timer));
    }
    CHECK_EQ(heap.count, armed);
    CHECK_EQ(cosync__timer_next(&heap), model_min());

    /* disarm a random third */
    for (int k = 0; k < NHEAP / 3; k++) {
        int i = (int)(rng() % NHEAP);
        if (ht[i].expect_armed) {
            ht[i].expect_armed = false;
            armed--;
        }
        cosync__timer_disarm(&heap, &ht[i].timer); /* disarming twice is harmless */
        CHECK(!cosync__timer_armed(&ht[i].timer));
        if (k % 500 == 0)
            CHECK_EQ(cosync__timer_next(&heap), model_min());
    }
    CHECK_EQ(heap.count, armed);
    CHECK_EQ(cosync__timer_next(&heap), model_min());

    /* re-arm some: disarmed ones, and armed ones (arm moves an armed timer) */
    for (int k = 0; k < NHEAP / 5; k++) {
        int i = (int)(rng() % NHEAP);
        int64_t when = 1000 + (int64_t)(rng() % 450);
        if (!ht[i].expect_armed)
            armed++;
        cosync__timer_arm(&heap, &ht[i].timer, when);
        ht[i].when = when;
        ht[i].order = order++;
        ht[i].expect_armed = true;
    }
    CHECK_EQ(heap.count, armed);
    CHECK_EQ(cosync__timer_next(&heap), model_min());

    /* the expected firing order: by (when, arm order) */
    static int expected[NHEAP];
    size_t nexp = 0;
    for (int i = 0; i < NHEAP; i++)
        if (ht[i].expect_armed)
            expected[nexp++] = i;
    CHECK_EQ(nexp, armed);
    qsort(expected, nexp, sizeof expected[0], cmp_expected);

    /* run in steps of increasing time: each step fires exactly the due ones */
    nfired = 0;
    size_t total = 0;
    for (run_now = 1000 - 1; run_now < 1500; run_now += 37) {
        size_t before = nfired;
        size_t n = cosync__timer_run(&heap, run_now);
        CHECK_EQ(n, nfired - before);
        total += n;
        int64_t next = cosync__timer_next(&heap);
        CHECK(next == COSYNC_FOREVER || next > run_now);
        CHECK_EQ(heap.count, armed - total);
    }
    CHECK_EQ(nfired, nexp);
    CHECK_EQ(heap.count, 0);
    CHECK_EQ(cosync__timer_next(&heap), COSYNC_FOREVER);
    for (size_t k = 0; k < nexp; k++)
        CHECK_EQ(fired[k], expected[k]);
    for (int i = 0; i < NHEAP; i++)
        CHECK(!cosync__timer_armed(&ht[i].timer));
}

/* Timers armed by a callback at a time <= now fire in the same run; later
 * ones do not; a due timer disarmed by a callback does not fire. */
static cosync__timer_heap cb_heap;
static struct htimer cb[6];
static int rearm_self_left;

static void cb_fire(cosync__timer *t)
{
    struct htimer *h = cosync__container_of(t, struct htimer, timer);
    CHECK_LT(nfired, NHEAP);
    fired[nfired++] = h->index;
    switch (h->index) {
    case 0:
        cosync__timer_arm(&cb_heap, &cb[3].timer, 100); /* == now: fires this run */
        cosync__timer_arm(&cb_heap, &cb[4].timer, 5);   /* in the past: fires this run, first */
        cosync__timer_arm(&cb_heap, &cb[5].timer, 101); /* later: not this run */
        cosync__timer_disarm(&cb_heap, &cb[2].timer);   /* due, but withdrawn */
        break;
    case 1:
        if (rearm_self_left-- > 0)
            cosync__timer_arm(&cb_heap, t, 100); /* again, behind the others at 100 */
        break;
    default:
        break;
    }
}

TEST(timers_armed_by_a_callback_at_or_before_now_fire_in_the_same_run)
{
    cb_heap = (cosync__timer_heap){0};
    for (int i = 0; i < 6; i++) {
        cb[i].index = i;
        cosync__timer_init(&cb[i].timer, cb_fire);
    }
    cosync__timer_arm(&cb_heap, &cb[0].timer, 50);
    cosync__timer_arm(&cb_heap, &cb[1].timer, 100);
    cosync__timer_arm(&cb_heap, &cb[2].timer, 100);
    rearm_self_left = 2;
    nfired = 0;
    size_t n = cosync__timer_run(&cb_heap, 100);
    /* 0@50; then 4@5 (armed in the past) comes first; then 1@100 (seq 1);
     * 3@100 (armed by 0); 1 again (re-armed by itself, twice) */
    static const int want[] = {0, 4, 1, 3, 1, 1};
    CHECK_EQ(n, sizeof want / sizeof want[0]);
    CHECK_EQ(nfired, n);
    for (size_t k = 0; k < n; k++)
        CHECK_EQ(fired[k], want[k]);
    CHECK(!cosync__timer_armed(&cb[2].timer));
    CHECK(cosync__timer_armed(&cb[5].timer));
    CHECK_EQ(cb_heap.count, 1);
    CHECK_EQ(cosync__timer_next(&cb_heap), 101);
    CHECK_EQ(cosync__timer_run(&cb_heap, 100), 0);
    CHECK_EQ(cosync__timer_run(&cb_heap, 101), 1);
    CHECK_EQ(fired[nfired - 1], 5);
    CHECK_EQ(cb_heap.count, 0);
}

int main(void)
{
    RUN(equal_deadlines_fire_in_arm_order_spawn_order);
    RUN(equal_deadlines_fire_in_arm_order_not_spawn_order);
    RUN(equal_deadlines_armed_in_one_instant_fire_in_arm_order);
    RUN(different_sleeps_wake_in_deadline_order_at_exact_times);
    RUN(consecutive_sleeps_reach_exact_virtual_times);
    RUN(yield_goes_behind_every_ready_task);
    RUN(task_made_ready_during_a_round_runs_after_those_already_ready);
    RUN(sleep_nonpositive_is_yield);
    RUN(sleep_until_past_deadline_is_yield);
    RUN(lone_yield_returns_at_once);
    RUN(sleep_until_forever_blocks_until_cancelled);
    RUN(sleep_until_forever_alone_is_a_deadlock_not_a_wakeup);
    RUN(deadline_after_forever_passed_and_saturates);
    RUN(virtual_clock_does_not_move_while_a_task_is_runnable);
    RUN(pairing_heap_random_arm_disarm_rearm_run);
    RUN(timers_armed_by_a_callback_at_or_before_now_fire_in_the_same_run);
    return 0;
}
