/*
 * test_barrier.c - cosync_barrier (asyncio.Barrier): the cases of CPython's
 * test_locks.py BarrierTests are ported, named after their originals; then
 * indices after cancelled and timed-out arrivals, abort and reset with
 * waiters, deadlines in every state, misuse.
 *
 * cosync has no "draining" state: the arrival that completes a round hands
 * every task of the round its index at once, and those tasks are out of the
 * barrier before they run; the next arrival starts the next round. A reset
 * or abort therefore never takes back a passage already granted (asyncio
 * breaks the tasks still draining). The ports of asyncio's draining tests
 * keep their names and their point, with this rule; each says how.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#define _GNU_SOURCE
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))
#define N 5

/* Spawn @n tasks running @fn(@arg) and gather them (all must succeed). */
static void gather_tasks(int n, cosync_task_fn fn, void *arg)
{
    cosync_task t[16];
    CHECK_LE(n, 16);
    for (int i = 0; i < n; i++)
        CHECK_OK(cosync_task_spawn(&t[i], fn, arg, NULL));
    cosync_outcome out[16];
    CHECK_OK(cosync_gather(t, (size_t)n, out, COSYNC_FOREVER));
    for (int i = 0; i < n; i++)
        CHECK_EQ(out[i].status, 0);
}

/* Check that @idx[0..n) is a permutation of 0..n-1. */
static void check_indices(const int *idx, int n)
{
    int seen[64] = {0};
    CHECK_LE(n, 64);
    for (int i = 0; i < n; i++) {
        CHECK_GE(idx[i], 0);
        CHECK_LT(idx[i], n);
        if (seen[idx[i]]++)
            CHECK__FAIL("index %d given twice", idx[i]);
    }
}

/* A task that waits once and records what it got. */
typedef struct bw {
    cosync_barrier *b;
    int64_t delay;
    int64_t deadline;
    int checkpoint; /* < 0: none */
    bool yield_after;
    /* observed */
    int rc;
    int64_t woke_at;
    int next_rc;
} bw;

static int bw_fn(void *arg, void **result)
{
    (void)result;
    bw *w = arg;
    if (w->delay)
        CHECK_OK(cosync_sleep(w->delay));
    w->rc = cosync_barrier_wait(w->b, w->deadline);
    w->woke_at = cosync_now();
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    if (w->yield_after)
        w->next_rc = cosync_yield();
    return 0;
}

static bw mk(cosync_barrier *b)
{
    return (bw){.b = b, .deadline = COSYNC_FOREVER, .checkpoint = -1, .rc = 12345, .next_rc = 1};
}

static cosync_task spawn_bw(bw *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, bw_fn, w, NULL));
    return t;
}

/* Shared state of the ported tests (one test at a time). */
static cosync_barrier B, B2;
static int results1, results2, results3, count, rewait_n;
static int idx[64], nidx;

static void reset_state(void)
{
    results1 = results2 = results3 = count = rewait_n = nidx = 0;
}

/* Reset the state, make B a barrier of @parties, and gather @parties tasks
 * running @coro on it (all must succeed). */
static void gather_on_B(int parties, cosync_task_fn coro)
{
    reset_state();
    CHECK_OK(cosync_barrier_init(&B, parties));
    gather_tasks(parties, coro, NULL);
}

/* ========================================================================
 * Ported: CPython Lib/test/test_asyncio/test_locks.py BarrierTests
 * ===================================================================== */

/* test_barrier: a fresh barrier is filling (not broken, nobody waiting) */
TEST(test_barrier)
{
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, N));
    CHECK(!cosync_barrier_broken(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_EQ(cosync_barrier_parties(&b), N);
}

/* test_repr: the introspection a repr shows (waiters/parties, broken), and
 * the deadlock report's description */
static int repr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, N));
    bw w[N + 4];
    cosync_task t[N + 4];
    for (int i = 0; i < 2; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 2);
    CHECK(!cosync_barrier_broken(&b));
    int ntasks;
    char *buf = dump_text(&ntasks);
    CHECK_EQ(ntasks, 3);
    char want[128];
    snprintf(want, sizeof want, "waits on barrier %p (2 of 5 arrived)\n", (void *)&b);
    CHECK_NOTNULL(strstr(buf, want));
    free(buf);
    /* the missing ones: the round is complete, nobody waits */
    for (int i = 2; i < N; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    /* a part of the next round, then reset */
    for (int i = N; i < N + 2; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 2);
    CHECK_OK(cosync_barrier_reset(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(!cosync_barrier_broken(&b));
    /* waiters again, then abort: they are broken, and so is the barrier */
    for (int i = N + 2; i < N + 4; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 2);
    CHECK_OK(cosync_barrier_abort(&b));
    CHECK(cosync_barrier_broken(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_OK(cosync_gather(t, N + 4, NULL, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_GE(w[i].rc, 0);
    for (int i = N; i < N + 4; i++)
        CHECK_ERR(w[i].rc, COSYNC_EBROKEN);
    return 0;
}

TEST(test_repr)
{
    CHECK_OK(run_main(repr_main, NULL));
}

TEST(test_barrier_parties)
{
    cosync_barrier b = COSYNC_BARRIER_INIT(3);
    CHECK_ERR(cosync_barrier_init(&b, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_barrier_init(&b, (unsigned)-4), COSYNC_EINVAL); /* above INT_MAX */
    CHECK_ERR(cosync_barrier_init(&b, (unsigned)INT_MAX + 1), COSYNC_EINVAL);
    CHECK_EQ(cosync_barrier_parties(&b), 3); /* nothing changed */
    CHECK_OK(cosync_barrier_init(&b, N));
    CHECK_EQ(cosync_barrier_parties(&b), N);
    CHECK_OK(cosync_barrier_init(&b, INT_MAX));
}

/* test_context_manager: the indices of a round are 0 .. parties-1 */
static int ctx_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
    CHECK_GE(i, 0);
    idx[nidx++] = i;
    return 0;
}

static int context_manager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(3, ctx_coro);
    CHECK_EQ(nidx, 3);
    check_indices(idx, 3);
    /* arrival order: the first to arrive gets 0, the completing one 2, and
     * the completing one runs on without suspending, so it records first */
    CHECK_EQ(idx[0], 2);
    CHECK_EQ(idx[1], 0);
    CHECK_EQ(idx[2], 1);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_context_manager)
{
    CHECK_OK(run_main(context_manager_main, NULL));
}

static int filling_one_task_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 1));
    uint64_t sw0 = switches();
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), 0);
    CHECK_EQ(cosync_barrier_wait(&b, 0), 0); /* completes: no EAGAIN */
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(!cosync_barrier_broken(&b));
    return 0;
}

TEST(test_filling_one_task)
{
    CHECK_OK(run_main(filling_one_task_main, NULL));
}

static int filling_one_task_twice_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 1));
    bw w[2] = {mk(&b), mk(&b)};
    cosync_task t1 = spawn_bw(&w[0]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    cosync_task t2 = spawn_bw(&w[1]);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t1));
    CHECK(cosync_task_done(t2));
    CHECK_EQ(w[0].rc, w[1].rc);
    CHECK_EQ(w[0].rc, 0);
    join_ok(t1);
    join_ok(t2);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(!cosync_barrier_broken(&b));
    return 0;
}

TEST(test_filling_one_task_twice)
{
    CHECK_OK(run_main(filling_one_task_twice_main, NULL));
}

static int filling_task_by_task_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 3));
    bw w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mk(&b);
        w[i].checkpoint = i == 2 ? 0 : i + 1; /* the completing one runs on */
        t[i] = spawn_bw(&w[i]);
        CHECK_OK(cosync_yield());
        CHECK_EQ(cosync_barrier_n_waiting(&b), (unsigned)(i < 2 ? i + 1 : 0));
    }
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(w[i].rc, i);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(!cosync_barrier_broken(&b));
    return 0;
}

TEST(test_filling_task_by_task)
{
    CHECK_OK(run_main(filling_task_by_task_main, NULL));
}

static int wait_twice_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    results1++;
    int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
    CHECK_GE(i, 0);
    results2++;
    idx[nidx++] = i;
    return 0;
}

static int filling_tasks_wait_twice_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, wait_twice_coro);
    CHECK_EQ(results1, N);
    CHECK_EQ(results2, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_filling_tasks_wait_twice)
{
    CHECK_OK(run_main(filling_tasks_wait_twice_main, NULL));
}

static int filling_tasks_check_return_value_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, wait_twice_coro);
    CHECK_EQ(results1, N);
    CHECK_EQ(results2, N);
    CHECK_EQ(nidx, N);
    check_indices(idx, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_filling_tasks_check_return_value)
{
    CHECK_OK(run_main(filling_tasks_check_return_value_main, NULL));
}

/* test_draining_state: asyncio reports "draining" to the tasks leaving a
 * round until the last has left. cosync has no draining state: once the
 * round is complete, every task of it sees an empty filling barrier, and a
 * task arriving then starts the next round. */
static int draining_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    if (cosync_barrier_n_waiting(&B) == 0 && !cosync_barrier_broken(&B))
        results1++;
    return 0;
}

static int draining_state_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, draining_coro);
    CHECK_EQ(results1, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_draining_state)
{
    CHECK_OK(run_main(draining_state_main, NULL));
}

static int blocking_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    if (rewait_n > 0) {
        rewait_n--;
        CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    } else {
        CHECK_GE(cosync_barrier_wait(&B2, COSYNC_FOREVER), 0);
        CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    }
    return 0;
}

static int blocking_tasks_while_draining_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state();
    rewait_n = 2;
    CHECK_OK(cosync_barrier_init(&B, N));
    CHECK_OK(cosync_barrier_init(&B2, N - 2));
    gather_tasks(N, blocking_coro, NULL);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK_EQ(cosync_barrier_n_waiting(&B2), 0);
    return 0;
}

TEST(test_blocking_tasks_while_draining)
{
    CHECK_OK(run_main(blocking_tasks_while_draining_main, NULL));
}

static int cancel_one_coro(void *arg, void **result)
{
    (void)result;
    int *slot = arg;
    int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
    *slot = rc;
    if (rc < 0)
        return rc;
    results1++;
    return 0;
}

static int filling_tasks_cancel_one_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state();
    CHECK_OK(cosync_barrier_init(&B, 3));
    int got[4] = {99, 99, 99, 99};
    cosync_task t[4];
    CHECK_OK(cosync_task_spawn(&t[0], cancel_one_coro, &got[0], NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&B), 1);
    CHECK_OK(cosync_task_spawn(&t[1], cancel_one_coro, &got[1], NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&B), 2);
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_barrier_n_waiting(&B), 1); /* at once */
    CHECK_OK(cosync_yield());
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(got[0], COSYNC_ECANCELED);
    CHECK_OK(cosync_task_spawn(&t[2], cancel_one_coro, &got[2], NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&B), 2);
    CHECK_OK(cosync_task_spawn(&t[3], cancel_one_coro, &got[3], NULL));
    CHECK_OK(cosync_gather(t + 1, 3, NULL, COSYNC_FOREVER));
    CHECK_EQ(results1, 3);
    /* indices given at completion: no gap, no duplicate */
    CHECK_EQ(got[1], 0);
    CHECK_EQ(got[2], 1);
    CHECK_EQ(got[3], 2);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_filling_tasks_cancel_one)
{
    CHECK_OK(run_main(filling_tasks_cancel_one_main, NULL));
}

static int reset_barrier_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 1));
    CHECK_OK(cosync_barrier_reset(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(!cosync_barrier_broken(&b));
    CHECK_EQ(cosync_barrier_wait(&b, 0), 0);
    return 0;
}

TEST(test_reset_barrier)
{
    CHECK_OK(run_main(reset_barrier_main, NULL));
}

static int broken_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_EBROKEN);
    results1++;
    return 0;
}

static int reset_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_barrier_reset(&B));
    return 0;
}

static int reset_barrier_while_tasks_waiting_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state();
    CHECK_OK(cosync_barrier_init(&B, N));
    cosync_task t[N], r;
    for (int i = 0; i < N - 1; i++)
        CHECK_OK(cosync_task_spawn(&t[i], broken_coro, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&B), N - 1);
    CHECK_OK(cosync_task_spawn(&r, reset_fn, NULL, NULL));
    CHECK_OK(cosync_gather(t, N - 1, NULL, COSYNC_FOREVER));
    join_ok(r);
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_reset_barrier_while_tasks_waiting)
{
    CHECK_OK(run_main(reset_barrier_while_tasks_waiting_main, NULL));
}

/* test_reset_barrier_when_tasks_half_draining: asyncio's reset breaks the
 * tasks of a complete round that have not left yet. In cosync they were
 * granted their passage: the first task out (the completing arrival) resets
 * while the others have not run, and none of them is broken. */
static int half_draining_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
    if (i == COSYNC_EBROKEN) {
        results1++;
        return 0;
    }
    CHECK_GE(i, 0);
    if (++count == 1)
        CHECK_OK(cosync_barrier_reset(&B));
    return 0;
}

static int reset_half_draining_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, half_draining_coro);
    CHECK_EQ(results1, 0);
    CHECK_EQ(count, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_reset_barrier_when_tasks_half_draining)
{
    CHECK_OK(run_main(reset_half_draining_main, NULL));
}

/* test_reset_barrier_when_tasks_half_draining_half_blocking: after round 1
 * the first two tasks out wait in round 2; the third resets, which sends
 * those two back with EBROKEN; then all five wait and round 2 completes. */
#define BLOCKING (N / 2)

static int half_blocking_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0); /* round 1 */
    int c = ++count;
    if (c <= BLOCKING) {
        int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
        if (rc == COSYNC_EBROKEN) {
            results1++;
            rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
        } else {
            results2++;
        }
        CHECK_GE(rc, 0);
    } else {
        if (c == BLOCKING + 1)
            CHECK_OK(cosync_barrier_reset(&B));
        CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    }
    return 0;
}

static int reset_half_blocking_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, half_blocking_coro);
    CHECK_EQ(results1, BLOCKING);
    CHECK_EQ(results2, 0);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    CHECK(!cosync_barrier_broken(&B));
    return 0;
}

TEST(test_reset_barrier_when_tasks_half_draining_half_blocking)
{
    CHECK_OK(run_main(reset_half_blocking_main, NULL));
}

static int wait_again_coro1(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
    if (rc == COSYNC_EBROKEN)
        results1++;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    results2++;
    return 0;
}

static int wait_again_coro2(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    results2++;
    return 0;
}

static int reset_waiting_again_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state();
    CHECK_OK(cosync_barrier_init(&B, N));
    cosync_task t[N - 1], r, c2;
    for (int i = 0; i < N - 1; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_again_coro1, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&r, reset_fn, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_spawn(&c2, wait_again_coro2, NULL, NULL));
    CHECK_OK(cosync_gather(t, N - 1, NULL, COSYNC_FOREVER));
    join_ok(r);
    join_ok(c2);
    CHECK(!cosync_barrier_broken(&B));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    return 0;
}

TEST(test_reset_barrier_while_tasks_waiting_and_waiting_again)
{
    CHECK_OK(run_main(reset_waiting_again_main, NULL));
}

/* test_reset_barrier_while_tasks_draining: asyncio's last task out of round
 * 1 resets while the others are held back by the draining state, so nobody
 * is broken. In cosync the others are already in round 2 by then; the
 * reset that breaks nobody is the first task out's (before the others have
 * run): the same outcome follows. */
static int reset_draining_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    if (++count == 1) {
        CHECK_OK(cosync_barrier_reset(&B));
        CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    } else {
        int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
        if (rc >= 0)
            results1++;
        else
            results2++;
    }
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    results3++;
    return 0;
}

static int reset_draining_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, reset_draining_coro);
    CHECK(!cosync_barrier_broken(&B));
    CHECK_EQ(results1, N - 1);
    CHECK_EQ(results2, 0);
    CHECK_EQ(results3, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    return 0;
}

TEST(test_reset_barrier_while_tasks_draining)
{
    CHECK_OK(run_main(reset_draining_main, NULL));
}

static int abort_barrier_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 1));
    CHECK_OK(cosync_barrier_abort(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK(cosync_barrier_broken(&b));
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EBROKEN);
    return 0;
}

TEST(test_abort_barrier)
{
    CHECK_OK(run_main(abort_barrier_main, NULL));
}

/* test_abort_barrier_when_tasks_half_draining_half_blocking: asyncio's abort
 * breaks the tasks still draining (results1) and those blocked in the next
 * round (results2). In cosync a passage granted is kept: results1 stays
 * empty, and the tasks already in round 2 are broken. */
static int abort_half_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
    if (rc == COSYNC_EBROKEN) {
        results1++;
        return 0;
    }
    CHECK_GE(rc, 0);
    if (++count > BLOCKING) {
        CHECK_OK(cosync_barrier_abort(&B));
    } else {
        rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
        CHECK_ERR(rc, COSYNC_EBROKEN);
        results2++;
    }
    return 0;
}

static int abort_half_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, abort_half_coro);
    CHECK(cosync_barrier_broken(&B));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, BLOCKING);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    return 0;
}

TEST(test_abort_barrier_when_tasks_half_draining_half_blocking)
{
    CHECK_OK(run_main(abort_half_main, NULL));
}

/* test_abort_barrier_when_exception: the task with index N/2 "fails" and
 * aborts; every other task's second wait is broken. */
static int abort_exc_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
    CHECK_GE(i, 0);
    if (i == N / 2) {
        CHECK_OK(cosync_barrier_abort(&B));
        return 0;
    }
    int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
    if (rc >= 0)
        results1++;
    else if (rc == COSYNC_EBROKEN)
        results2++;
    return 0;
}

static int abort_exc_main(void *arg, void **result)
{
    (void)arg, (void)result;
    gather_on_B(N, abort_exc_coro);
    CHECK(cosync_barrier_broken(&B));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    return 0;
}

TEST(test_abort_barrier_when_exception)
{
    CHECK_OK(run_main(abort_exc_main, NULL));
}

static int abort_reset_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
    CHECK_GE(i, 0);
    if (i == N / 2) {
        CHECK_OK(cosync_barrier_abort(&B));
    } else {
        int rc = cosync_barrier_wait(&B, COSYNC_FOREVER);
        if (rc >= 0)
            results1++;
        else if (rc == COSYNC_EBROKEN)
            results2++;
    }
    /* synchronise, reset, synchronise again, then B works */
    i = cosync_barrier_wait(&B2, COSYNC_FOREVER);
    CHECK_GE(i, 0);
    if (i == N / 2)
        CHECK_OK(cosync_barrier_reset(&B));
    CHECK_GE(cosync_barrier_wait(&B2, COSYNC_FOREVER), 0);
    CHECK_GE(cosync_barrier_wait(&B, COSYNC_FOREVER), 0);
    results3++;
    return 0;
}

static int abort_reset_main(void *arg, void **result)
{
    (void)arg, (void)result;
    reset_state();
    CHECK_OK(cosync_barrier_init(&B, N));
    CHECK_OK(cosync_barrier_init(&B2, N));
    gather_tasks(N, abort_reset_coro, NULL);
    CHECK(!cosync_barrier_broken(&B));
    CHECK_EQ(results1, 0);
    CHECK_EQ(results2, N - 1);
    CHECK_EQ(results3, N);
    CHECK_EQ(cosync_barrier_n_waiting(&B), 0);
    return 0;
}

TEST(test_abort_barrier_when_exception_then_resetting)
{
    CHECK_OK(run_main(abort_reset_main, NULL));
}

/* ========================================================================
 * Beyond CPython
 * ===================================================================== */

/* Indices after cancelled and timed-out arrivals, over several rounds: in
 * each round of 4 parties, three tasks arrive, one is cancelled and one
 * times out (at varying positions), then three more arrive: the four that
 * pass get 0..3 in arrival order, no index twice. */
static int indices_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 4));
    for (int round = 0; round < 6; round++) {
        t0 = cosync_now();
        int cpos = round % 3;
        int tpos = (round + 1 + round / 3) % 3;
        bw w[6];
        cosync_task t[6];
        for (int i = 0; i < 3; i++) {
            w[i] = mk(&b);
            if (i == tpos)
                w[i].deadline = AT(3);
            t[i] = spawn_bw(&w[i]);
            CHECK_OK(cosync_yield());
            CHECK_EQ(cosync_barrier_n_waiting(&b), (unsigned)i + 1);
        }
        CHECK_OK(cosync_task_cancel(t[cpos]));
        CHECK_EQ(cosync_barrier_n_waiting(&b), 2);
        CHECK_OK(cosync_sleep(COSYNC_MS(3)));
        CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
        CHECK_ERR(w[cpos].rc, COSYNC_ECANCELED);
        CHECK_ERR(w[tpos].rc, COSYNC_ETIMEDOUT);
        CHECK_EQ(w[tpos].woke_at, AT(3));
        CHECK_EQ(join_status(t[cpos]), COSYNC_ECANCELED);
        join_ok(t[tpos]);
        int keep = 3 - cpos - tpos;
        for (int i = 3; i < 6; i++) {
            w[i] = mk(&b);
            t[i] = spawn_bw(&w[i]);
            CHECK_OK(cosync_yield());
        }
        CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
        join_ok(t[keep]);
        for (int i = 3; i < 6; i++)
            join_ok(t[i]);
        int got[4] = {w[keep].rc, w[3].rc, w[4].rc, w[5].rc};
        for (int k = 0; k < 4; k++)
            CHECK_EQ(got[k], k);
        check_indices(got, 4);
    }
    return 0;
}

TEST(barrier_indices_after_cancelled_and_timed_out_arrivals)
{
    CHECK_OK(run_main(indices_main, NULL));
}

/* Ten tasks, twenty rounds: every round's indices are 0..9 once each. */
#define NT 10
#define NR 20
static int rounds_idx[NR][NT];
static int rounds_n[NR];

static int rounds_coro(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int r = 0; r < NR; r++) {
        int i = cosync_barrier_wait(&B, COSYNC_FOREVER);
        CHECK_GE(i, 0);
        rounds_idx[r][rounds_n[r]++] = i;
        if (r % 3 == 0)
            CHECK_OK(cosync_yield());
    }
    return 0;
}

static int rounds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    memset(rounds_n, 0, sizeof rounds_n);
    CHECK_OK(cosync_barrier_init(&B, NT));
    gather_tasks(NT, rounds_coro, NULL);
    for (int r = 0; r < NR; r++) {
        CHECK_EQ(rounds_n[r], NT);
        check_indices(rounds_idx[r], NT);
    }
    return 0;
}

TEST(barrier_indices_unique_over_many_rounds)
{
    CHECK_OK(run_main(rounds_main, NULL));
}

/* The completing arrival grants the whole round at once, in arrival order,
 * without switching; they run in that order right after. */
#define NBIG 100

static int big_round_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, NBIG + 1));
    bw w[NBIG];
    cosync_task t[NBIG];
    for (int i = 0; i < NBIG; i++) {
        w[i] = mk(&b);
        w[i].checkpoint = i + 1;
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), NBIG);
    uint64_t sw0 = switches();
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), NBIG);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECKPOINT(0);
    CHECK_OK(cosync_yield());
    CHECKPOINTS_DONE(NBIG + 1);
    for (int i = 0; i < NBIG; i++) {
        CHECK(cosync_task_done(t[i]));
        CHECK_EQ(w[i].rc, i);
        join_ok(t[i]);
    }
    return 0;
}

TEST(barrier_round_of_100_released_in_one_step)
{
    CHECK_OK(run_main(big_round_main, NULL));
}

/* A task granted its index and then cancelled before it ran keeps it. */
static int granted_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 3));
    bw w[3] = {mk(&b), mk(&b), mk(&b)};
    cosync_task t[3];
    for (int i = 0; i < 2; i++) {
        w[i].yield_after = true;
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    t[2] = spawn_bw(&w[2]);
    CHECK_OK(cosync_yield()); /* w2 completes the round */
    CHECK(cosync_task_done(t[2]));
    CHECK(!cosync_task_done(t[0]));
    CHECK_OK(cosync_task_cancel(t[0])); /* granted, not yet run */
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_EQ(w[0].rc, 0);
    CHECK_ERR(w[0].next_rc, COSYNC_ECANCELED);
    join_ok(t[1]);
    CHECK_EQ(w[1].rc, 1);
    CHECK_OK(w[1].next_rc);
    join_ok(t[2]);
    CHECK_EQ(w[2].rc, 2);
    CHECK(!cosync_barrier_broken(&b));
    return 0;
}

TEST(barrier_granted_then_cancelled_keeps_its_index)
{
    CHECK_OK(run_main(granted_cancelled_main, NULL));
}

/* abort and reset with waiters; a broken barrier; reset makes it usable. */
static int abort_reset_waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 3));
    bw w[3] = {mk(&b), mk(&b), mk(&b)};
    w[1].deadline = AT(100);
    cosync_task t[3];
    for (int i = 0; i < 2; i++)
        t[i] = spawn_bw(&w[i]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 2);
    CHECK_EQ(armed_timers(), 1);
    CHECK_OK(cosync_barrier_abort(&b));
    CHECK(cosync_barrier_broken(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_EQ(armed_timers(), 0); /* the broken wait's deadline is disarmed */
    join_ok(t[0]);
    join_ok(t[1]);
    CHECK_ERR(w[0].rc, COSYNC_EBROKEN);
    CHECK_ERR(w[1].rc, COSYNC_EBROKEN);
    CHECK_EQ(cosync_now(), t0);
    /* broken: every wait returns at once, whatever its deadline */
    uint64_t sw0 = switches();
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EBROKEN);
    CHECK_ERR(cosync_barrier_wait(&b, 0), COSYNC_EBROKEN);
    CHECK_EQ(switches(), sw0);
    CHECK_OK(cosync_barrier_abort(&b)); /* again: harmless */
    CHECK(cosync_barrier_broken(&b));
    /* reset: usable again */
    CHECK_OK(cosync_barrier_reset(&b));
    CHECK(!cosync_barrier_broken(&b));
    for (int i = 0; i < 2; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), 2);
    join_ok(t[0]);
    join_ok(t[1]);
    CHECK_EQ(w[0].rc, 0);
    CHECK_EQ(w[1].rc, 1);
    /* reset with waiters: EBROKEN to them, the barrier is not broken */
    for (int i = 0; i < 2; i++) {
        w[i] = mk(&b);
        t[i] = spawn_bw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_barrier_reset(&b));
    CHECK(!cosync_barrier_broken(&b));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    /* a new round fills from zero at once */
    w[2] = mk(&b);
    t[2] = spawn_bw(&w[2]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    join_ok(t[0]);
    join_ok(t[1]);
    CHECK_ERR(w[0].rc, COSYNC_EBROKEN);
    CHECK_ERR(w[1].rc, COSYNC_EBROKEN);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    CHECK_OK(cosync_barrier_abort(&b)); /* and abort sends w2 away */
    join_ok(t[2]);
    CHECK_ERR(w[2].rc, COSYNC_EBROKEN);
    /* released by an abort, then cancelled before it runs: the abort's
     * outcome stands, the cancellation comes at the next suspension */
    CHECK_OK(cosync_barrier_reset(&b));
    w[0] = mk(&b);
    w[0].yield_after = true;
    t[0] = spawn_bw(&w[0]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    CHECK_OK(cosync_barrier_abort(&b));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_ERR(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(w[0].rc, COSYNC_EBROKEN);
    CHECK_ERR(w[0].next_rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_barrier_destroy(&b));
    return 0;
}

TEST(barrier_abort_and_reset_with_waiters)
{
    CHECK_OK(run_main(abort_reset_waiters_main, NULL));
}

/* Deadlines in every state of an arrival. */
static int deadlines_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 2));
    uint64_t sw0 = switches();
    /* would wait: deadline 0 is EAGAIN, a passed one ETIMEDOUT; neither is
     * counted, neither switches */
    CHECK_ERR(cosync_barrier_wait(&b, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_barrier_wait(&b, t0), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_barrier_wait(&b, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_EQ(switches(), sw0);
    /* WAITING: times out at the exact deadline, and leaves the round */
    CHECK_ERR(cosync_barrier_wait(&b, AT(5)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_EQ(armed_timers(), 0);
    /* completing: succeeds whatever the deadline (0 included) */
    bw w = mk(&b);
    w.deadline = AT(50);
    cosync_task t = spawn_bw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(armed_timers(), 1);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(cosync_barrier_wait(&b, 0), 1);
    CHECK_EQ(armed_timers(), 0); /* GRANTED: w's deadline is disarmed */
    join_ok(t);
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(w.woke_at, AT(6));
    w = mk(&b);
    t = spawn_bw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_wait(&b, t0), 1); /* a passed deadline too */
    join_ok(t);
    /* the deadline and the completing arrival at the same instant: the
     * deadline passes first (the round is not full when it does), the late
     * one waits for the next arrival */
    bw a = mk(&b), c = mk(&b);
    a.deadline = AT(10);
    c.delay = AT(10) - cosync_now();
    cosync_task ta = spawn_bw(&a), tc = spawn_bw(&c);
    CHECK_OK(cosync_sleep(AT(10) - cosync_now()));
    CHECK_OK(cosync_yield());
    CHECK_ERR(a.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(a.woke_at, AT(10));
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), 1);
    join_ok(ta);
    join_ok(tc);
    CHECK_EQ(c.rc, 0);
    return 0;
}

TEST(barrier_deadline_expiry_in_every_state)
{
    CHECK_OK(run_main(deadlines_main, NULL));
}

/* A pending cancellation: an arrival that would wait delivers it and is not
 * counted; the completing arrival succeeds and leaves it pending. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 2));
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    bw w = mk(&b);
    cosync_task t = spawn_bw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(me));
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), 1);
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    join_ok(t);
    CHECK_EQ(w.rc, 0);
    while (cosync_task_uncancel(me) > 0)
        ;
    return 0;
}

TEST(barrier_pending_cancellation)
{
    CHECK_OK(run_main(pending_cancel_main, NULL));
}

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_barrier b;
    CHECK_OK(cosync_barrier_init(&b, 2));
    bw w = mk(&b);
    cosync_task t = spawn_bw(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_barrier_destroy(&b), COSYNC_EBUSY);
    CHECK_EQ(cosync_barrier_wait(&b, COSYNC_FOREVER), 1); /* still usable */
    join_ok(t);
    CHECK_OK(cosync_barrier_destroy(&b));
    CHECK_ERR(cosync_barrier_destroy(&b), COSYNC_EINVAL);
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_barrier_wait(&b, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_barrier_abort(&b), COSYNC_EINVAL);
    CHECK_ERR(cosync_barrier_reset(&b), COSYNC_EINVAL);
    CHECK(!cosync_barrier_broken(&b));
    CHECK_OK(cosync_barrier_init(&b, 1));
    CHECK_EQ(cosync_barrier_wait(&b, 0), 0);
    /* a static initialiser with 0 parties */
    cosync_barrier z = COSYNC_BARRIER_INIT(0);
    CHECK_ERR(cosync_barrier_wait(&z, COSYNC_FOREVER), COSYNC_EINVAL);
    return 0;
}

TEST(barrier_misuse_errors)
{
    CHECK_OK(run_main(misuse_main, NULL));
}

TEST(barrier_outside_a_task)
{
    cosync_barrier b = COSYNC_BARRIER_INIT(1);
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_barrier_wait(&b, 0), COSYNC_EPERM);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    CHECK_OK(cosync_barrier_abort(&b));
    /* a broken barrier answers without suspending, so wherever from */
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EBROKEN);
    CHECK_OK(cosync_barrier_reset(&b));
    CHECK_ERR(cosync_barrier_wait(&b, COSYNC_FOREVER), COSYNC_EPERM);
}

static cosync_barrier static_barrier = COSYNC_BARRIER_INIT(2);

static int static_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_barrier_parties(&static_barrier), 2);
    CHECK(!cosync_barrier_broken(&static_barrier));
    bw w = mk(&static_barrier);
    cosync_task t = spawn_bw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_barrier_wait(&static_barrier, COSYNC_FOREVER), 1);
    join_ok(t);
    CHECK_EQ(w.rc, 0);
    return 0;
}

TEST(barrier_static_initialiser)
{
    CHECK_OK(run_main(static_main, NULL));
}

static int brecord(void *arg, void **result)
{
    (void)result;
    bw *w = arg;
    w->rc = cosync_barrier_wait(w->b, w->deadline);
    return 0;
}

static int stopper_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

TEST(barrier_bound_to_one_loop_while_it_has_waiters)
{
    cosync_barrier b = COSYNC_BARRIER_INIT(2);
    cosync_loop *la = new_loop();
    cosync_loop *lb = new_loop();
    bw wa = mk(&b), wb = mk(&b);
    cosync_task ta, tb, stopper;
    CHECK_OK(cosync_loop_spawn(la, &ta, brecord, &wa, NULL));
    spawn_and_run(la, &stopper, stopper_fn, NULL);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    /* from lb: even the completing arrival is refused, and not counted */
    spawn_and_run(lb, &tb, brecord, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 1);
    /* abort from outside any loop sends la's task away: unbound */
    CHECK_OK(cosync_barrier_abort(&b));
    int st = 1;
    CHECK_OK(cosync_loop_run(la, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_ERR(wa.rc, COSYNC_EBROKEN);
    CHECK_OK(cosync_barrier_reset(&b));
    /* lb binds it now: la is refused */
    wb.rc = 12345;
    CHECK_OK(cosync_loop_spawn(lb, &tb, brecord, &wb, NULL));
    spawn_and_run(lb, &stopper, stopper_fn, NULL);
    wa.rc = 12345;
    wa.deadline = 0;
    spawn_and_run(la, &ta, brecord, &wa);
    CHECK_ERR(wa.rc, COSYNC_EPERM);
    /* lb's waiter cancelled: free again */
    CHECK_OK(cosync_task_cancel(tb));
    CHECK_OK(cosync_loop_run(lb, tb, &st, NULL));
    CHECK_ERR(wb.rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_barrier_n_waiting(&b), 0);
    spawn_and_run(la, &ta, brecord, &wa);
    CHECK_ERR(wa.rc, COSYNC_EAGAIN);
    end_loop(la);
    end_loop(lb);
}

int main(void)
{
    /* CPython BarrierTests */
    RUN(test_barrier);
    RUN(test_repr);
    RUN(test_barrier_parties);
    RUN(test_context_manager);
    RUN(test_filling_one_task);
    RUN(test_filling_one_task_twice);
    RUN(test_filling_task_by_task);
    RUN(test_filling_tasks_wait_twice);
    RUN(test_filling_tasks_check_return_value);
    RUN(test_draining_state);
    RUN(test_blocking_tasks_while_draining);
    RUN(test_filling_tasks_cancel_one);
    RUN(test_reset_barrier);
    RUN(test_reset_barrier_while_tasks_waiting);
    RUN(test_reset_barrier_when_tasks_half_draining);
    RUN(test_reset_barrier_when_tasks_half_draining_half_blocking);
    RUN(test_reset_barrier_while_tasks_waiting_and_waiting_again);
    RUN(test_reset_barrier_while_tasks_draining);
    RUN(test_abort_barrier);
    RUN(test_abort_barrier_when_tasks_half_draining_half_blocking);
    RUN(test_abort_barrier_when_exception);
    RUN(test_abort_barrier_when_exception_then_resetting);
    /* beyond */
    RUN(barrier_indices_after_cancelled_and_timed_out_arrivals);
    RUN(barrier_indices_unique_over_many_rounds);
    RUN(barrier_round_of_100_released_in_one_step);
    RUN(barrier_granted_then_cancelled_keeps_its_index);
    RUN(barrier_abort_and_reset_with_waiters);
    RUN(barrier_deadline_expiry_in_every_state);
    RUN(barrier_pending_cancellation);
    RUN(barrier_misuse_errors);
    RUN(barrier_outside_a_task);
    RUN(barrier_static_initialiser);
    RUN(barrier_bound_to_one_loop_while_it_has_waiters);
    return 0;
}
