/*
 * test_semaphore.c - cosync_sem: Semaphore and BoundedSemaphore (the cases
 * of CPython's test_locks.py SemaphoreTests are ported, named after their
 * originals), weighted acquire/release, strict FIFO under bursts,
 * cancellation and deadlines in every waiting state, misuse.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* The order in which acquisitions returned (tags). */
static int order[512];
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

/* A task that acquires (n permits; 0: cosync_sem_acquire), logs its tag,
 * and maybe holds then releases. */
typedef struct sw {
    cosync_sem *s;
    int64_t n;
    int64_t delay;    /* sleep before acquiring */
    int64_t deadline; /* of the acquire */
    bool release;     /* release after holding */
    int64_t hold;     /* sleep while holding (when releasing) */
    int checkpoint;   /* < 0: none; passed after a successful acquire */
    int tag;
    /* observed */
    int rc;
    int64_t woke_at;
    uint64_t woke_switches; /* the loop's switches when the acquire returned */
    int next_rc;            /* a yield after the acquire (failed or not), when yield_after */
    bool yield_after;
} sw;

static int sw_fn(void *arg, void **result)
{
    (void)result;
    sw *w = arg;
    if (w->delay)
        CHECK_OK(cosync_sleep(w->delay));
    w->rc = w->n ? cosync_sem_acquire_many(w->s, w->n, w->deadline)
                 : cosync_sem_acquire(w->s, w->deadline);
    w->woke_at = cosync_now();
    w->woke_switches = switches();
    if (w->rc == 0) {
        order[norder++] = w->tag;
        if (w->checkpoint >= 0)
            CHECKPOINT(w->checkpoint);
    }
    /* the next suspension: where a cancellation that came after the wait
     * ended (granted, or by its deadline) is delivered */
    if (w->yield_after)
        w->next_rc = cosync_yield();
    if (w->rc == 0 && w->release) {
        if (w->hold)
            CHECK_OK(cosync_sleep(w->hold));
        CHECK_OK(cosync_sem_release_many(w->s, w->n ? w->n : 1));
    }
    return 0;
}

static sw mk(cosync_sem *s, int64_t n, int tag)
{
    return (sw){.s = s,
                .n = n,
                .deadline = COSYNC_FOREVER,
                .checkpoint = -1,
                .tag = tag,
                .rc = 1,
                .next_rc = 1};
}

static cosync_task spawn_sw(sw *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, sw_fn, w, NULL));
    return t;
}

/* Many cases run on both kinds of semaphore: an unbounded one, and a
 * BoundedSemaphore, whose releases are checked against its bound. */
typedef enum sem_kind { UNBOUNDED, BOUNDED } sem_kind;

/* Make *@s of @kind with @n permits, of which the caller takes all but
 * @free here (to give them back later by its releases: a semaphore
 * bounded at 0 could never be released). Both kinds then hold the same
 * permits, and a bounded one is full again when all @n are back. */
static void sem_make(cosync_sem *s, sem_kind kind, int64_t n, int64_t free)
{
    if (kind == BOUNDED)
        CHECK_OK(cosync_bsem_init(s, n));
    else
        CHECK_OK(cosync_sem_init(s, n));
    if (n > free)
        CHECK_OK(cosync_sem_acquire_many(s, n - free, 0));
    CHECK_EQ(cosync_sem_value(s), free);
}

/* The parameters of a case run on both kinds. */
typedef struct sem_case {
    sem_kind kind;
    bool by_timeout; /* the waiter that leaves does so by its deadline, not a cancel */
    bool singles;    /* a burst of single releases, not one release_many */
} sem_case;

/* ========================================================================
 * Ported: CPython Lib/test/test_asyncio/test_locks.py SemaphoreTests
 * ===================================================================== */

static int initial_value_zero_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    CHECK(cosync_sem_locked(&s));
    CHECK_EQ(cosync_sem_value(&s), 0);
    return 0;
}

TEST(test_initial_value_zero)
{
    CHECK_OK(run_main(initial_value_zero_main, NULL));
}

/* test_repr: the introspection a repr shows (locked, value, waiters) */
static int repr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK(!cosync_sem_locked(&s));
    CHECK_EQ(cosync_sem_value(&s), 1);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    CHECK(cosync_sem_locked(&s));
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    sw w[2] = {mk(&s, 0, 1), mk(&s, 0, 2)};
    cosync_task t[2];
    t[0] = spawn_sw(&w[0]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    t[1] = spawn_sw(&w[1]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 2);
    CHECK_OK(cosync_sem_release_many(&s, 2));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(test_repr)
{
    CHECK_OK(run_main(repr_main, NULL));
}

static int semaphore_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK_EQ(cosync_sem_value(&s), 1);
    CHECK(!cosync_sem_locked(&s));
    return 0;
}

TEST(test_semaphore)
{
    CHECK_OK(run_main(semaphore_main, NULL));
}

TEST(test_semaphore_value)
{
    cosync_sem s = COSYNC_SEM_INIT(5);
    CHECK_ERR(cosync_sem_init(&s, -1), COSYNC_EINVAL);
    CHECK_ERR(cosync_bsem_init(&s, -1), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_init(&s, INT64_MIN), COSYNC_EINVAL);
    CHECK_EQ(cosync_sem_value(&s), 5); /* nothing changed */
}

static int acquire_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 3));
    uint64_t sw0 = switches();
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0); /* the fast path does not switch */
    CHECK(!cosync_sem_locked(&s));

    sw w[4] = {mk(&s, 0, 1), mk(&s, 0, 2), mk(&s, 0, 3), mk(&s, 0, 4)};
    cosync_task t[4];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_sw(&w[i]);
    CHECK_OK(cosync_yield());
    check_order((int[]){1}, 1);
    CHECK(cosync_sem_locked(&s));
    CHECK_EQ(cosync_sem_waiters(&s), 2);
    CHECK_EQ(cosync_sem_value(&s), 0);

    t[3] = spawn_sw(&w[3]);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_value(&s), 0); /* handed to c2 and c3 at once */
    CHECK_EQ(cosync_sem_waiters(&s), 0);

    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_value(&s), 0);
    check_order((int[]){1, 2, 3}, 3);
    CHECK(cosync_sem_locked(&s));
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    /* stricter than asyncio: exactly c2 and c3 (granted), not "any two" */
    CHECK(cosync_task_done(t[0]));
    CHECK(cosync_task_done(t[1]));
    CHECK(cosync_task_done(t[2]));
    CHECK(!cosync_task_done(t[3]));

    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_gather(t, 4, NULL, COSYNC_FOREVER));
    check_order((int[]){1, 2, 3, 4}, 4);
    return 0;
}

TEST(test_acquire)
{
    CHECK_OK(run_main(acquire_main, NULL));
}

static int acquire_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    sw w = mk(&s, 0, 1);
    cosync_task t = spawn_sw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(cosync_sem_waiters(&s), 0); /* taken off at once */
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_value(&s), 1);
    return 0;
}

TEST(test_acquire_cancel)
{
    CHECK_OK(run_main(acquire_cancel_main, NULL));
}

static int acquire_cancel_before_awoken_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    sw w[4];
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = mk(&s, 0, i + 1);
        t[i] = spawn_sw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_task_cancel(t[1]));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t[2]));
    CHECK(!cosync_task_done(t[3]));
    check_order((int[]){3}, 1);
    CHECK_ERR(cosync_task_cancel(t[2]), COSYNC_EALREADY);
    CHECK_OK(cosync_task_cancel(t[3]));
    CHECK_OK(cosync_yield());
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_EQ(join_status(t[1]), COSYNC_ECANCELED);
    CHECK_EQ(join_status(t[2]), 0);
    CHECK_EQ(join_status(t[3]), COSYNC_ECANCELED);
    CHECK_EQ(cosync_sem_value(&s), 0); /* t3 holds the permit */
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    return 0;
}

TEST(test_acquire_cancel_before_awoken)
{
    CHECK_OK(run_main(acquire_cancel_before_awoken_main, NULL));
}

static int acquire_hang_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    sw w[2] = {mk(&s, 0, 1), mk(&s, 0, 2)};
    cosync_task t[2] = {spawn_sw(&w[0]), spawn_sw(&w[1])};
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    CHECK(cosync_sem_locked(&s));
    CHECK(cosync_task_done(t[1]));
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    join_ok(t[1]);
    CHECK_OK(w[1].rc);
    return 0;
}

TEST(test_acquire_hang)
{
    CHECK_OK(run_main(acquire_hang_main, NULL));
}

/* test_acquire_no_hang: c1 releases (the permit goes to c2) and then
 * cancels c2. asyncio throws CancelledError into c2 at its acquire; cosync
 * keeps the grant: c2's acquire succeeds, the cancellation comes at its next
 * suspension, c2 releases, and nothing hangs. */
static cosync_task nohang_t2;

static int nohang_c1(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sem_release(s));
    CHECK_OK(cosync_task_cancel(nohang_t2));
    return 0;
}

static int nohang_c2(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER)); /* granted before the cancel */
    int rc = cosync_yield();
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_sem_release(s));
    return rc;
}

static int acquire_no_hang_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], nohang_c1, &s, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], nohang_c2, &s, NULL));
    nohang_t2 = t[1];
    cosync_outcome out[2];
    CHECK_OK(cosync_gather(t, 2, out, COSYNC_FOREVER));
    CHECK_EQ(out[0].status, 0);
    CHECK_EQ(out[1].status, COSYNC_ECANCELED);
    CHECK_OK(cosync_sem_acquire(&s, cosync_deadline_after(COSYNC_SEC(1))));
    return 0;
}

TEST(test_acquire_no_hang)
{
    CHECK_OK(run_main(acquire_no_hang_main, NULL));
}

TEST(test_release_not_acquired)
{
    cosync_sem s;
    CHECK_OK(cosync_bsem_init(&s, 1));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
    CHECK_EQ(cosync_sem_value(&s), 1);
}

static int release_no_waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    CHECK(cosync_sem_locked(&s));
    uint64_t sw0 = switches();
    CHECK_OK(cosync_sem_release(&s));
    CHECK(!cosync_sem_locked(&s));
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(ready_tasks(), 0);
    return 0;
}

TEST(test_release_no_waiters)
{
    CHECK_OK(run_main(release_no_waiters_main, NULL));
}

/* test_acquire_fifo_order: each of three tasks acquires twice, holding for
 * 10 ms: the permit goes round in order. */
typedef struct fifo1 {
    cosync_sem *s;
    int tag;
    int64_t at[2];
} fifo1;

static int fifo1_fn(void *arg, void **result)
{
    (void)result;
    fifo1 *f = arg;
    for (int k = 0; k < 2; k++) {
        CHECK_OK(cosync_sem_acquire(f->s, COSYNC_FOREVER));
        order[norder++] = f->tag * 10 + k + 1;
        f->at[k] = cosync_now();
        CHECK_OK(cosync_sleep(COSYNC_MS(10)));
        CHECK_OK(cosync_sem_release(f->s));
    }
    return 0;
}

static int acquire_fifo_order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    fifo1 f[3];
    for (int i = 0; i < 3; i++) {
        f[i] = (fifo1){.s = &s, .tag = i + 1};
        CHECK_OK(cosync_taskgroup_spawn(&g, NULL, fifo1_fn, &f[i], NULL));
    }
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    check_order((int[]){11, 21, 31, 12, 22, 32}, 6);
    for (int i = 0; i < 3; i++) {
        CHECK_EQ(f[i].at[0], AT(10 * i));
        CHECK_EQ(f[i].at[1], AT(30 + 10 * i));
    }
    CHECK_EQ(cosync_sem_value(&s), 1);
    return 0;
}

TEST(test_acquire_fifo_order)
{
    CHECK_OK(run_main(acquire_fifo_order_main, NULL));
}

/* test_acquire_fifo_order_2. asyncio gives [1, 2, 3, 4]: c3 runs before c2
 * re-acquires. cosync hands c3 its permit at the release (it is c3's even
 * before c3 runs), so c2's re-acquire takes the free permit that c2 itself
 * just gave back, without suspending: [1, 2, 4, 3]. The point of the test
 * holds: c2 never takes c3's permit, and c3 was served before c2's second
 * acquire. */
static int fifo2_c2(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    order[norder++] = 2;
    CHECK_OK(cosync_sem_release(s));
    CHECK_EQ(cosync_sem_waiters(s), 0); /* c3 was granted already */
    uint64_t sw0 = switches();
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0);
    order[norder++] = 4;
    return 0;
}

static int acquire_fifo_order_2_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    sw c1 = mk(&s, 0, 1), c3 = mk(&s, 0, 3);
    cosync_task t[3];
    t[0] = spawn_sw(&c1);
    CHECK_OK(cosync_task_spawn(&t[1], fifo2_c2, &s, NULL));
    t[2] = spawn_sw(&c3);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 2);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    check_order((int[]){1, 2, 4, 3}, 4);
    CHECK_EQ(cosync_sem_value(&s), 0);
    return 0;
}

TEST(test_acquire_fifo_order_2)
{
    CHECK_OK(run_main(acquire_fifo_order_2_main, NULL));
}

static int acquire_fifo_order_3_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    sw w[3] = {mk(&s, 0, 1), mk(&s, 0, 2), mk(&s, 0, 3)};
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        t[i] = spawn_sw(&w[i]);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_sem_release(&s));
    cosync_outcome out[3];
    CHECK_OK(cosync_gather(t, 3, out, COSYNC_FOREVER));
    CHECK_EQ(out[0].status, COSYNC_ECANCELED);
    check_order((int[]){2, 3}, 2);
    return 0;
}

TEST(test_acquire_fifo_order_3)
{
    CHECK_OK(run_main(acquire_fifo_order_3_main, NULL));
}

/* test_acquire_fifo_order_4 (CPython 3.13): c1 waits; c2 releases three
 * times, for c1, c2 and c3, then acquires; c3 acquires; c1, once it runs,
 * spawns c4. asyncio gives [1, 2, 3, 4]: c1's woken waiter stays in the
 * queue until c1 runs, so the semaphore reads as locked and c2 and c3
 * queue behind it. cosync hands c1 its permit at the first release and
 * takes it off the queue (docs/semaphore.md, "Fairness", the difference
 * test_acquire_fifo_order_2 shows too), so c2 and then c3 find the two
 * other permits free with nobody waiting and take them without
 * suspending, before c1 runs: [2, 3, 1, 4]. The point holds: c1 keeps the
 * permit granted to it, each of the three gets exactly one, and c4 runs
 * after c1, which spawned it. */
static cosync_task fifo4_t4;

static int fifo4_c4(void *arg, void **result)
{
    (void)arg, (void)result;
    order[norder++] = 4;
    return 0;
}

static int fifo4_c1(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    CHECK_EQ(cosync_sem_value(s), 0);
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    CHECK_EQ(cosync_sem_value(s), 0); /* c2 and c3 took the other two */
    CHECK_OK(cosync_task_spawn(&fifo4_t4, fifo4_c4, NULL, NULL));
    order[norder++] = 1;
    return 0;
}

static int fifo4_c2(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    CHECK_OK(cosync_sem_release(s)); /* to c1, which has not run yet */
    CHECK_EQ(cosync_sem_waiters(s), 0);
    CHECK_OK(cosync_sem_release(s));
    CHECK_OK(cosync_sem_release(s));
    CHECK_EQ(cosync_sem_value(s), 2); /* as in asyncio */
    CHECK(!cosync_sem_locked(s));     /* asyncio: locked, c1 still queued */
    uint64_t sw0 = switches();
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0); /* a free permit, nobody waiting */
    order[norder++] = 2;
    return 0;
}

static int fifo4_c3(void *arg, void **result)
{
    (void)result;
    cosync_sem *s = arg;
    uint64_t sw0 = switches();
    CHECK_OK(cosync_sem_acquire(s, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0);
    CHECK(cosync_sem_locked(s)); /* the last permit */
    order[norder++] = 3;
    return 0;
}

static int acquire_fifo_order_4_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], fifo4_c1, &s, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], fifo4_c2, &s, NULL));
    CHECK_OK(cosync_task_spawn(&t[2], fifo4_c3, &s, NULL));
    CHECK_OK(cosync_yield());
    /* asyncio: value 2, 3 waiters; here all three permits are out and
     * nobody waits: c1's is granted, c2 and c3 have taken theirs */
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    check_order((int[]){2, 3}, 2);
    CHECK(!cosync_task_done(t[0]));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    join_ok(fifo4_t4);
    check_order((int[]){2, 3, 1, 4}, 4);
    CHECK_EQ(cosync_sem_value(&s), 0);
    return 0;
}

TEST(test_acquire_fifo_order_4)
{
    CHECK_OK(run_main(acquire_fifo_order_4_main, NULL));
}

/* ========================================================================
 * Beyond CPython: the cases where real libraries have had bugs
 * ===================================================================== */

/* A waiter granted and then cancelled before it ran keeps its permit: its
 * acquire returns 0 and the cancellation comes at its next suspension. On a
 * bounded semaphore the kept permit still counts as held: the bound is
 * reached again only once it is given back, and a release above it is
 * refused. */
static int granted_then_cancelled_main(void *arg, void **result)
{
    (void)result;
    sem_kind kind = ((const sem_case *)arg)->kind;
    order_reset();
    cosync_sem s;
    sem_make(&s, kind, 3, 0); /* I hold the 3 permits */
    sw w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mk(&s, 0, i);
        w[i].yield_after = true;
        t[i] = spawn_sw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sem_release(&s)); /* to w0 */
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_EQ(cosync_sem_waiters(&s), 2);
    if (kind == BOUNDED) {
        /* more than the bound: refused, and the waiters are not served */
        CHECK_ERR(cosync_sem_release_many(&s, 4), COSYNC_EOVERFLOW);
        CHECK_EQ(cosync_sem_value(&s), 0);
        CHECK_EQ(cosync_sem_waiters(&s), 2);
    }
    CHECK_EQ(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_OK(w[0].rc);
    CHECK_ERR(w[0].next_rc, COSYNC_ECANCELED);
    /* w0 kept the permit (it never released): the others still wait */
    CHECK_EQ(cosync_sem_waiters(&s), 2);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_sem_release_many(&s, 2));
    join_ok(t[1]);
    join_ok(t[2]);
    check_order((int[]){0, 1, 2}, 3);
    CHECK_OK(w[1].next_rc);
    /* the three permits the waiters took, w0's included, given back for
     * them: exactly the starting value, so none was lost or made */
    CHECK_OK(cosync_sem_release_many(&s, 3));
    CHECK_EQ(cosync_sem_value(&s), 3);
    if (kind == BOUNDED) {
        /* a permit put back by the cancel would have let this through */
        CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
        CHECK_EQ(cosync_sem_value(&s), 3);
    }
    return 0;
}

TEST(sem_granted_then_cancelled_keeps_its_permit)
{
    CHECK_OK(run_main(granted_then_cancelled_main, &(sem_case){.kind = UNBOUNDED}));
}

TEST(bsem_granted_then_cancelled_keeps_its_permit_within_the_bound)
{
    CHECK_OK(run_main(granted_then_cancelled_main, &(sem_case){.kind = BOUNDED}));
}

/* Five waiters for one permit each; the one at @pos is cancelled (or times
 * out): the others get permits in order. */
static int head_middle_tail_main(void *arg, void **result)
{
    (void)result;
    const sem_case *c = arg;
    bool timeout = c->by_timeout;
    static const int positions[3] = {0, 2, 4};
    for (int p = 0; p < 3; p++) {
        int pos = positions[p];
        t0 = cosync_now();
        order_reset();
        cosync_sem s;
        sem_make(&s, c->kind, 4, 0); /* I hold the 4 I release */
        sw w[5];
        cosync_task t[5];
        for (int i = 0; i < 5; i++) {
            w[i] = mk(&s, 0, i);
            if (timeout && i == pos)
                w[i].deadline = AT(5);
            t[i] = spawn_sw(&w[i]);
        }
        CHECK_OK(cosync_yield());
        CHECK_EQ(cosync_sem_waiters(&s), 5);
        if (timeout) {
            CHECK_OK(cosync_sleep(COSYNC_MS(4)));
            CHECK_EQ(cosync_sem_waiters(&s), 5);
            CHECK_OK(cosync_sleep(COSYNC_MS(1)));
            CHECK(cosync_task_done(t[pos])); /* its timer fired before mine */
            CHECK_ERR(w[pos].rc, COSYNC_ETIMEDOUT);
            CHECK_EQ(w[pos].woke_at, AT(5));
        } else {
            CHECK_OK(cosync_task_cancel(t[pos]));
        }
        CHECK_EQ(cosync_sem_waiters(&s), 4);
        CHECK_EQ(cosync_sem_value(&s), 0); /* nothing was granted */
        CHECK_EQ(join_status(t[pos]), timeout ? 0 : COSYNC_ECANCELED);
        CHECK_EQ(norder, 0);
        /* one at a time: each release serves the next in order */
        int want[4], k = 0;
        for (int i = 0; i < 5; i++)
            if (i != pos)
                want[k++] = i;
        for (int r = 0; r < 4; r++) {
            CHECK_OK(cosync_sem_release(&s));
            CHECK_EQ(cosync_sem_waiters(&s), (size_t)(3 - r));
            CHECK_OK(cosync_yield());
            check_order(want, r + 1);
        }
        for (int i = 0; i < 5; i++)
            if (i != pos)
                join_ok(t[i]);
        CHECK_EQ(cosync_sem_value(&s), 0);
        CHECK_OK(cosync_sem_destroy(&s));
    }
    return 0;
}

TEST(sem_cancelled_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(head_middle_tail_main, &(sem_case){.kind = UNBOUNDED}));
}

TEST(sem_timed_out_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(head_middle_tail_main, &(sem_case){.kind = UNBOUNDED, .by_timeout = true}));
}

TEST(bsem_cancelled_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(head_middle_tail_main, &(sem_case){.kind = BOUNDED}));
}

TEST(bsem_timed_out_waiter_at_head_middle_tail)
{
    CHECK_OK(run_main(head_middle_tail_main, &(sem_case){.kind = BOUNDED, .by_timeout = true}));
}

/* Weighted: a head that wants more than is free holds the line; when it is
 * cancelled (or times out), those behind it are served at once, in order,
 * as far as the free permits go. */
static int weighted_head_leaves_main(void *arg, void **result)
{
    (void)result;
    bool timeout = arg != NULL;
    t0 = cosync_now();
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 2));
    sw w[4] = {mk(&s, 3, 0), mk(&s, 1, 1), mk(&s, 1, 2), mk(&s, 2, 3)};
    if (timeout) {
        w[0].deadline = AT(5);
        w[1].deadline = AT(5); /* the same instant: granted first, so kept */
    }
    cosync_task t[4];
    for (int i = 0; i < 4; i++)
        t[i] = spawn_sw(&w[i]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 4);
    CHECK_EQ(cosync_sem_value(&s), 2); /* free, but the head wants 3 */
    CHECK(cosync_sem_locked(&s));
    CHECK_ERR(cosync_sem_acquire(&s, 0), COSYNC_EAGAIN); /* no barging */
    if (timeout) {
        CHECK_OK(cosync_sleep(COSYNC_MS(5)));
        CHECK_ERR(w[0].rc, COSYNC_ETIMEDOUT);
        CHECK_OK(w[1].rc);
        CHECK_EQ(w[1].woke_at, AT(5));
        CHECK_EQ(w[2].woke_at, AT(5));
    } else {
        CHECK_OK(cosync_task_cancel(t[0]));
        /* within the cancel: w1 and w2 are granted, w3 (2) still waits */
        CHECK_EQ(cosync_sem_waiters(&s), 1);
        CHECK_EQ(cosync_sem_value(&s), 0);
        CHECK_OK(cosync_yield());
    }
    check_order((int[]){1, 2}, 2);
    CHECK_EQ(join_status(t[0]), timeout ? 0 : COSYNC_ECANCELED);
    CHECK_OK(cosync_sem_release_many(&s, 2));
    CHECK_OK(cosync_gather(t + 1, 3, NULL, COSYNC_FOREVER));
    check_order((int[]){1, 2, 3}, 3);
    return 0;
}

TEST(sem_weighted_cancelled_head_unblocks_the_next)
{
    CHECK_OK(run_main(weighted_head_leaves_main, NULL));
}

TEST(sem_weighted_timed_out_head_unblocks_the_next_in_the_same_step)
{
    CHECK_OK(run_main(weighted_head_leaves_main, (void *)1));
}

/* A burst: 100 waiters, one release_many(100) grants them all, in order,
 * within the release (no switch); they then run in that order before the
 * releasing task runs again, each within two scheduler steps of the one
 * before. The same with 100 single releases. */
#define NBURST 100

static int burst_main(void *arg, void **result)
{
    (void)result;
    const sem_case *c = arg;
    bool singles = c->singles;
    order_reset();
    cosync_sem s;
    sem_make(&s, c->kind, NBURST, 0); /* I hold the permits I release */
    sw w[NBURST];
    cosync_task t[NBURST];
    for (int i = 0; i < NBURST; i++) {
        w[i] = mk(&s, 0, i);
        w[i].checkpoint = i;
        t[i] = spawn_sw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), NBURST);
    uint64_t sw0 = switches();
    if (singles) {
        for (int i = 0; i < NBURST; i++)
            CHECK_OK(cosync_sem_release(&s));
    } else {
        CHECK_OK(cosync_sem_release_many(&s, NBURST));
    }
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(ready_tasks(), NBURST);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_yield()); /* one scheduler step: all of them run */
    CHECKPOINT(NBURST);
    for (int i = 0; i < NBURST; i++)
        CHECK(cosync_task_done(t[i]));
    /* none waits behind the others' switches: each wake-up comes within two
     * switches of the previous one (one, or two through the loop) */
    CHECK_LE(w[0].woke_switches - sw0, 2);
    for (int i = 1; i < NBURST; i++)
        CHECK_LE(w[i].woke_switches - w[i - 1].woke_switches, 2);
    CHECK_OK(cosync_gather(t, NBURST, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(NBURST + 1);
    return 0;
}

TEST(sem_release_many_burst_grants_all_in_order_in_one_step)
{
    CHECK_OK(run_main(burst_main, &(sem_case){.kind = UNBOUNDED}));
}

TEST(sem_burst_of_single_releases_grants_all_in_order)
{
    CHECK_OK(run_main(burst_main, &(sem_case){.kind = UNBOUNDED, .singles = true}));
}

TEST(bsem_release_many_burst_grants_all_in_order_in_one_step)
{
    CHECK_OK(run_main(burst_main, &(sem_case){.kind = BOUNDED}));
}

TEST(bsem_burst_of_single_releases_grants_all_in_order)
{
    CHECK_OK(run_main(burst_main, &(sem_case){.kind = BOUNDED, .singles = true}));
}

/* Weighted: a big request at the head is not starved by small ones behind
 * it, whatever the pattern of releases. */
static int big_not_starved_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    sw big = mk(&s, 5, 100);
    sw small[10];
    cosync_task tb = spawn_sw(&big);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    cosync_task ts[10];
    for (int i = 0; i < 10; i++) {
        small[i] = mk(&s, 1, i);
        small[i].release = true; /* each gives its permit back at once */
        ts[i] = spawn_sw(&small[i]);
    }
    CHECK_OK(cosync_yield());
    /* a permit is free, but the small ones queue behind the big one */
    CHECK_EQ(cosync_sem_value(&s), 1);
    CHECK_EQ(cosync_sem_waiters(&s), 11);
    for (int r = 0; r < 3; r++) {
        CHECK_OK(cosync_sem_release(&s));
        CHECK_OK(cosync_yield());
        CHECK_EQ(norder, 0);
    }
    CHECK_EQ(cosync_sem_value(&s), 4);
    CHECK_OK(cosync_sem_release(&s)); /* 5: the big one, nobody else */
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_EQ(cosync_sem_waiters(&s), 10);
    join_ok(tb);
    check_order((int[]){100}, 1);
    CHECK_OK(cosync_sem_release_many(&s, 5)); /* the big one gives them back */
    CHECK_OK(cosync_gather(ts, 10, NULL, COSYNC_FOREVER));
    check_order((int[]){100, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, 11);
    CHECK_EQ(cosync_sem_value(&s), 5);
    return 0;
}

TEST(sem_weighted_large_request_not_starved)
{
    CHECK_OK(run_main(big_not_starved_main, NULL));
}

/* Fairness: 6 tasks loop acquire / yield / release on 2 permits; the order
 * of acquisitions is round-robin, every task gets the same share. */
typedef struct looper {
    cosync_sem *s;
    int tag;
    int rounds;
} looper;

static int looper_fn(void *arg, void **result)
{
    (void)result;
    looper *l = arg;
    for (int r = 0; r < l->rounds; r++) {
        CHECK_OK(cosync_sem_acquire(l->s, COSYNC_FOREVER));
        order[norder++] = l->tag;
        CHECK_OK(cosync_yield());
        CHECK_OK(cosync_sem_release(l->s));
    }
    return 0;
}

static int fair_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 2));
    looper l[6];
    cosync_task t[6];
    for (int i = 0; i < 6; i++) {
        l[i] = (looper){.s = &s, .tag = i, .rounds = 20};
        CHECK_OK(cosync_task_spawn(&t[i], looper_fn, &l[i], NULL));
    }
    CHECK_OK(cosync_gather(t, 6, NULL, COSYNC_FOREVER));
    CHECK_EQ(norder, 120);
    for (int i = 0; i < 120; i++)
        if (order[i] != i % 6)
            CHECK__FAIL("acquisition %d by %d, expected %d", i, order[i], i % 6);
    CHECK_EQ(cosync_sem_value(&s), 2);
    return 0;
}

TEST(sem_released_permits_go_round_in_turn)
{
    CHECK_OK(run_main(fair_main, NULL));
}

/* Fairness under bursts: 8 tasks take a permit 10 times each and never
 * give one back; I release the permits in bursts of different sizes, by
 * one release_many or by as many single releases in a row. A burst serves
 * the tasks that have waited longest, in order, within the release; a
 * served task queues again behind all the others, so the permits go round:
 * acquisition i is task i % 8's, whatever the sizes of the bursts, and
 * every task gets the same share. */
#define NTAKERS 8
#define TAKER_ROUNDS 10

static int taker_fn(void *arg, void **result)
{
    (void)result;
    looper *l = arg;
    for (int r = 0; r < l->rounds; r++) {
        CHECK_OK(cosync_sem_acquire(l->s, COSYNC_FOREVER));
        order[norder++] = l->tag;
    }
    return 0;
}

static int fair_bursts_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 0));
    looper l[NTAKERS];
    cosync_task t[NTAKERS];
    for (int i = 0; i < NTAKERS; i++) {
        l[i] = (looper){.s = &s, .tag = i, .rounds = TAKER_ROUNDS};
        CHECK_OK(cosync_task_spawn(&t[i], taker_fn, &l[i], NULL));
    }
    CHECK_OK(cosync_yield());
    static const int sizes[] = {3, 8, 1, 5, 2, 7, 4, 6};
    enum { NSIZES = sizeof sizes / sizeof sizes[0], TOTAL = NTAKERS * TAKER_ROUNDS };
    int served = 0;
    for (int b = 0; served < TOTAL; b++) {
        int k = sizes[b % NSIZES];
        if (k > TOTAL - served)
            k = TOTAL - served;
        /* every task that has acquisitions left waits */
        size_t waiting = cosync_sem_waiters(&s);
        CHECK_EQ(waiting, TOTAL - served < NTAKERS ? TOTAL - served : NTAKERS);
        uint64_t sw0 = switches();
        if (b % 2) {
            for (int i = 0; i < k; i++)
                CHECK_OK(cosync_sem_release(&s));
        } else {
            CHECK_OK(cosync_sem_release_many(&s, k));
        }
        /* all k granted within the release(s), none left free */
        CHECK_EQ(switches(), sw0);
        CHECK_EQ(ready_tasks(), k);
        CHECK_EQ(cosync_sem_waiters(&s), waiting - (size_t)k);
        CHECK_EQ(cosync_sem_value(&s), 0);
        CHECK_OK(cosync_yield()); /* the k served run, and queue again */
        served += k;
        CHECK_EQ(norder, served);
    }
    CHECK_OK(cosync_gather(t, NTAKERS, NULL, COSYNC_FOREVER));
    for (int i = 0; i < TOTAL; i++)
        if (order[i] != i % NTAKERS)
            CHECK__FAIL("acquisition %d by %d, expected %d", i, order[i], i % NTAKERS);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    return 0;
}

TEST(sem_fair_under_bursts)
{
    CHECK_OK(run_main(fair_bursts_main, NULL));
}

/* BoundedSemaphore: releasing above the bound changes nothing. */
static int bounded_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_bsem_init(&s, 3));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
    CHECK_EQ(cosync_sem_value(&s), 3);
    CHECK_OK(cosync_sem_acquire_many(&s, 2, COSYNC_FOREVER));
    CHECK_EQ(cosync_sem_value(&s), 1);
    CHECK_ERR(cosync_sem_release_many(&s, 3), COSYNC_EOVERFLOW);
    CHECK_EQ(cosync_sem_value(&s), 1);
    CHECK_OK(cosync_sem_release_many(&s, 2));
    CHECK_EQ(cosync_sem_value(&s), 3);
    CHECK_ERR(cosync_sem_release_many(&s, INT64_MAX), COSYNC_EOVERFLOW);
    /* a request above the bound could never be served */
    CHECK_ERR(cosync_sem_acquire_many(&s, 4, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(cosync_sem_value(&s), 3);
    /* permits held by granted waiters count: over-release with waiters */
    CHECK_OK(cosync_sem_acquire_many(&s, 3, COSYNC_FOREVER));
    sw w = mk(&s, 2, 1);
    cosync_task t = spawn_sw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    CHECK_OK(cosync_sem_release(&s)); /* w granted: value back to 0 */
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_ERR(cosync_sem_release_many(&s, 3), COSYNC_EOVERFLOW); /* 1 + 2 held by w */
    CHECK_EQ(cosync_sem_value(&s), 1);
    join_ok(t);
    CHECK_OK(cosync_sem_release_many(&s, 2));
    CHECK_EQ(cosync_sem_value(&s), 3);
    /* bounded at 0: nothing can ever be released */
    cosync_sem z;
    CHECK_OK(cosync_bsem_init(&z, 0));
    CHECK(cosync_sem_locked(&z));
    CHECK_ERR(cosync_sem_release(&z), COSYNC_EOVERFLOW);
    CHECK_ERR(cosync_sem_acquire(&z, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_sem_value(&z), 0);
    return 0;
}

TEST(bsem_over_release_is_eoverflow_and_changes_nothing)
{
    CHECK_OK(run_main(bounded_main, NULL));
}

TEST(sem_unbounded_overflow_is_eoverflow)
{
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, INT64_MAX));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
    CHECK_EQ(cosync_sem_value(&s), INT64_MAX);
    CHECK_OK(cosync_sem_init(&s, INT64_MAX - 1));
    CHECK_ERR(cosync_sem_release_many(&s, 2), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_value(&s), INT64_MAX);
    CHECK_OK(cosync_sem_init(&s, 0));
    CHECK_OK(cosync_sem_release_many(&s, INT64_MAX));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
    /* the fast path works outside a task */
    CHECK_OK(cosync_sem_acquire_many(&s, INT64_MAX, 0));
    CHECK_EQ(cosync_sem_value(&s), 0);
}

/* Deadlines in every state of a wait. */
static int deadlines_main(void *arg, void **result)
{
    (void)result;
    sem_kind kind = ((const sem_case *)arg)->kind;
    t0 = cosync_now();
    order_reset();
    cosync_sem s;
    sem_make(&s, kind, 3, 1); /* I hold the other 2 */
    uint64_t sw0 = switches();
    /* free: succeeds whatever the deadline, without switching */
    CHECK_OK(cosync_sem_acquire(&s, 0));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_OK(cosync_sem_acquire(&s, t0 - 1)); /* long passed */
    /* would block: deadline 0 is EAGAIN, a passed one ETIMEDOUT; neither
     * queues nor switches */
    CHECK_ERR(cosync_sem_acquire(&s, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_sem_acquire(&s, t0), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_sem_acquire_many(&s, 3, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_now(), t0);
    /* WAITING: times out at the exact deadline */
    CHECK_ERR(cosync_sem_acquire(&s, AT(5)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_EQ(armed_timers(), 0);
    /* GRANTED before the deadline: the grant disarms it */
    sw w = mk(&s, 0, 1);
    w.deadline = AT(10);
    w.yield_after = true;
    cosync_task t = spawn_sw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(armed_timers(), 1);
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(armed_timers(), 0);
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_EQ(w.woke_at, AT(7));
    CHECK_OK(w.next_rc);
    /* CANCELLED by its deadline, then a cancel request: the acquire's
     * ETIMEDOUT stands, the request is delivered at the next suspension */
    w = mk(&s, 0, 2);
    w.deadline = AT(9);
    w.yield_after = true;
    t = spawn_sw(&w);
    /* my timer is armed before w's wait: both fire at AT(9), I run first,
     * w's wait has already ended (CANCELLED by its deadline) */
    CHECK_OK(cosync_sleep(COSYNC_MS(2)));
    CHECK_EQ(w.rc, 1);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ETIMEDOUT);      /* the deadline's outcome stands */
    CHECK_ERR(w.next_rc, COSYNC_ECANCELED); /* the request, delivered */
    CHECK_EQ(cosync_now(), AT(9));
    CHECK_EQ(cosync_sem_value(&s), 0); /* w (tag 1) kept its permit */
    /* the waits that timed out (mine, w2's) took nothing: w1's permit and
     * the 2 I hold are all that is out; given back, they make the start's 3 */
    CHECK_OK(cosync_sem_release_many(&s, 3));
    CHECK_EQ(cosync_sem_value(&s), 3);
    if (kind == BOUNDED) {
        CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
        CHECK_EQ(cosync_sem_value(&s), 3);
    }
    return 0;
}

TEST(sem_deadline_expiry_in_every_state)
{
    CHECK_OK(run_main(deadlines_main, &(sem_case){.kind = UNBOUNDED}));
}

TEST(bsem_deadline_expiry_in_every_state)
{
    CHECK_OK(run_main(deadlines_main, &(sem_case){.kind = BOUNDED}));
}

/* A pending cancellation: a call that completes at once succeeds and leaves
 * it pending; a call that would block delivers it without queueing. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 1));
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER));
    /* the acquire that would wait suspends once: a ready task runs first */
    cosync_task other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)0, NULL));
    CHECK_ERR(cosync_sem_acquire(&s, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECKPOINT(1);
    join_ok(other);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_EQ(cosync_sem_value(&s), 0);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(sem_pending_cancellation)
{
    CHECK_OK(run_main(pending_cancel_main, NULL));
}

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_sem s;
    CHECK_OK(cosync_sem_init(&s, 2));
    CHECK_ERR(cosync_sem_acquire_many(&s, 0, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire_many(&s, -1, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire_many(&s, INT64_MIN, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release_many(&s, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release_many(&s, -5), COSYNC_EINVAL);
    CHECK_EQ(cosync_sem_value(&s), 2);
    /* destroy while tasks wait */
    CHECK_OK(cosync_sem_acquire_many(&s, 2, 0));
    sw w = mk(&s, 0, 1);
    cosync_task t = spawn_sw(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_sem_destroy(&s), COSYNC_EBUSY);
    CHECK_OK(cosync_sem_release(&s)); /* still usable */
    join_ok(t);
    CHECK_OK(w.rc);
    /* destroy, then every call is EINVAL */
    CHECK_OK(cosync_sem_destroy(&s));
    CHECK_ERR(cosync_sem_destroy(&s), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire(&s, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire(&s, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire_many(&s, 1, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release_many(&s, 1), COSYNC_EINVAL);
    /* init makes it live again */
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK_OK(cosync_sem_acquire(&s, 0));
    CHECK_OK(cosync_sem_destroy(&s));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EINVAL);
    CHECK_OK(cosync_bsem_init(&s, 1));
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_sem_destroy(&s));
    CHECK_ERR(cosync_sem_acquire(&s, 0), COSYNC_EINVAL);
    /* permits out, even granted to a waiter that has not run: destroy
     * cannot see them; that acquire still succeeds, and the releases that
     * come after get EINVAL */
    CHECK_OK(cosync_sem_init(&s, 1));
    CHECK_OK(cosync_sem_acquire(&s, 0));
    sw g = mk(&s, 0, 2);
    cosync_task tg = spawn_sw(&g);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    CHECK_OK(cosync_sem_release(&s)); /* to g, which has not run */
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_OK(cosync_sem_destroy(&s));
    join_ok(tg);
    CHECK_OK(g.rc);
    CHECK_ERR(cosync_sem_release(&s), COSYNC_EINVAL);
    return 0;
}

TEST(sem_misuse_errors)
{
    CHECK_OK(run_main(misuse_main, NULL));
}

TEST(sem_outside_a_task)
{
    cosync_sem s = COSYNC_SEM_INIT(1);
    CHECK_OK(cosync_sem_acquire(&s, COSYNC_FOREVER)); /* free: no wait needed */
    CHECK_ERR(cosync_sem_acquire(&s, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_sem_acquire(&s, 0), COSYNC_EPERM);
    CHECK_EQ(cosync_sem_waiters(&s), 0);
    CHECK_OK(cosync_sem_release(&s));
    CHECK_EQ(cosync_sem_value(&s), 1);
    /* a negative value from the static initialiser is refused and kept */
    cosync_sem bad = COSYNC_SEM_INIT(-1);
    CHECK_ERR(cosync_sem_acquire(&bad, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire(&bad, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release(&bad), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_release_many(&bad, INT64_MAX), COSYNC_EINVAL);
    CHECK_EQ(cosync_sem_value(&bad), -1);
}

static cosync_sem static_sem = COSYNC_SEM_INIT(1);

static int static_main(void *arg, void **result)
{
    (void)arg, (void)result;
    order_reset();
    CHECK(!cosync_sem_locked(&static_sem));
    CHECK_OK(cosync_sem_acquire(&static_sem, COSYNC_FOREVER));
    sw w = mk(&static_sem, 0, 1);
    cosync_task t = spawn_sw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_sem_waiters(&static_sem), 1);
    CHECK_OK(cosync_sem_release(&static_sem));
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_OK(cosync_sem_release(&static_sem));
    CHECK_OK(cosync_sem_release(&static_sem)); /* unbounded: above the start */
    CHECK_EQ(cosync_sem_value(&static_sem), 2);
    return 0;
}

TEST(sem_static_initialiser)
{
    CHECK_OK(run_main(static_main, NULL));
}

static int srecord(void *arg, void **result)
{
    (void)result;
    sw *w = arg;
    w->rc = cosync_sem_acquire_many(w->s, w->n, w->deadline);
    return 0;
}

static int stopper_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

TEST(sem_bound_to_one_loop_while_it_has_waiters)
{
    cosync_sem s = COSYNC_SEM_INIT(0);
    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    sw wa = mk(&s, 1, 0), wb = mk(&s, 1, 0);
    cosync_task ta, tb, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, srecord, &wa, NULL));
    spawn_and_run(a, &stopper, stopper_fn, NULL);
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    /* b: refused while a's task waits, even with deadline 0 */
    spawn_and_run(b, &tb, srecord, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    wb.deadline = 0;
    spawn_and_run(b, &tb, srecord, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    CHECK_EQ(cosync_sem_waiters(&s), 1);
    /* a release from outside any loop serves a's task */
    CHECK_OK(cosync_sem_release(&s));
    int st = 1;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wa.rc);
    /* free again: b can wait on it (and time out) */
    wb.deadline = COSYNC_SEC(1) + COSYNC_MS(10);
    wb.rc = 1;
    spawn_and_run(b, &tb, srecord, &wb);
    CHECK_ERR(wb.rc, COSYNC_ETIMEDOUT);
    /* and a's waiter cancelled frees it too */
    wa.rc = 1;
    CHECK_OK(cosync_loop_spawn(a, &ta, srecord, &wa, NULL));
    spawn_and_run(a, &stopper, stopper_fn, NULL);
    CHECK_OK(cosync_task_cancel(ta));
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_ERR(wa.rc, COSYNC_ECANCELED);
    wb.deadline = 0;
    spawn_and_run(b, &tb, srecord, &wb);
    CHECK_ERR(wb.rc, COSYNC_EAGAIN); /* not EPERM: unbound */
    end_loop(a);
    end_loop(b);
}

/* The deadlock report says what each task waits for. */
static cosync_sem dl_sem;

static int dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    sw w = mk(&dl_sem, 3, 0);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, sw_fn, &w, &(cosync_task_opts){.name = "big"}));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_sem_acquire_many(&dl_sem, 1, COSYNC_FOREVER));
    join_ok(t);
    CHECK_OK(w.rc);
    return 0;
}

TEST(sem_deadlock_report_describes_the_wait)
{
    CHECK_OK(cosync_sem_init(&dl_sem, 1));
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, dl_main, NULL, "main", &m);
    const char *buf = report.buf;
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on semaphore %p (value 1, 2 waiting, wants 1, behind a "
             "request for 3)\n"
             "  task 'big' (#2) waits on semaphore %p (value 1, 2 waiting, wants 3)\n",
             (void *)&dl_sem, (void *)&dl_sem);
    CHECK_STREQ(buf, want);
    CHECK_OK(cosync_sem_release_many(&dl_sem, 3)); /* from outside: both served */
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
}

int main(void)
{
    /* CPython SemaphoreTests */
    RUN(test_initial_value_zero);
    RUN(test_repr);
    RUN(test_semaphore);
    RUN(test_semaphore_value);
    RUN(test_acquire);
    RUN(test_acquire_cancel);
    RUN(test_acquire_cancel_before_awoken);
    RUN(test_acquire_hang);
    RUN(test_acquire_no_hang);
    RUN(test_release_not_acquired);
    RUN(test_release_no_waiters);
    RUN(test_acquire_fifo_order);
    RUN(test_acquire_fifo_order_2);
    RUN(test_acquire_fifo_order_3);
    RUN(test_acquire_fifo_order_4);
    /* beyond */
    RUN(sem_granted_then_cancelled_keeps_its_permit);
    RUN(sem_cancelled_waiter_at_head_middle_tail);
    RUN(sem_timed_out_waiter_at_head_middle_tail);
    RUN(sem_weighted_cancelled_head_unblocks_the_next);
    RUN(sem_weighted_timed_out_head_unblocks_the_next_in_the_same_step);
    RUN(sem_release_many_burst_grants_all_in_order_in_one_step);
    RUN(sem_burst_of_single_releases_grants_all_in_order);
    RUN(sem_weighted_large_request_not_starved);
    RUN(sem_released_permits_go_round_in_turn);
    RUN(sem_fair_under_bursts);
    RUN(bsem_over_release_is_eoverflow_and_changes_nothing);
    RUN(sem_unbounded_overflow_is_eoverflow);
    RUN(sem_deadline_expiry_in_every_state);
    /* the same cases on a BoundedSemaphore */
    RUN(bsem_granted_then_cancelled_keeps_its_permit_within_the_bound);
    RUN(bsem_cancelled_waiter_at_head_middle_tail);
    RUN(bsem_timed_out_waiter_at_head_middle_tail);
    RUN(bsem_release_many_burst_grants_all_in_order_in_one_step);
    RUN(bsem_burst_of_single_releases_grants_all_in_order);
    RUN(bsem_deadline_expiry_in_every_state);
    RUN(sem_pending_cancellation);
    RUN(sem_misuse_errors);
    RUN(sem_outside_a_task);
    RUN(sem_static_initialiser);
    RUN(sem_bound_to_one_loop_while_it_has_waiters);
    RUN(sem_deadlock_report_describes_the_wait);
    return 0;
}
