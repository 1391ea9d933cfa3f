/*
 * test_lock.c - cosync_lock (asyncio.Lock): the cases of CPython's
 * test_locks.py LockTests that apply (named after their originals), then
 * the cases where real libraries had bugs: a waiter cancelled after it was
 * granted, cancelled and timed-out waiters at every place of the queue, a
 * burst of releases, deadlines, every misuse error, the seed's race demo
 * and the deadlock report.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
/* ctest-timeout: 60 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* A task that takes the lock and records what happened. */
typedef struct lw {
    cosync_lock *lock;
    int64_t delay;    /* sleep before acquiring (0: none) */
    int64_t deadline; /* of the acquire */
    int64_t hold;     /* sleep while holding (0: none) */
    bool keep;        /* do not release (the test does) */
    int checkpoint;   /* < 0: none; reached once the lock is held */
    int *result;      /* append the tag here, if set */
    int *nresult;
    int tag;
    cosync_event *park; /* wait on it after releasing, if set */
    /* observed */
    int rc;
    int hold_rc;
    int64_t got_at;
    uint64_t got_switches;
} lw;

static int lw_fn(void *arg, void **result)
{
    (void)result;
    lw *w = arg;
    if (w->delay)
        CHECK_OK(cosync_sleep(w->delay));
    w->rc = cosync_lock_acquire(w->lock, w->deadline);
    w->got_at = cosync_now();
    if (w->rc)
        return w->rc == COSYNC_ECANCELED ? COSYNC_ECANCELED : 0;
    w->got_switches = switches();
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    if (w->result)
        w->result[(*w->nresult)++] = w->tag;
    if (w->hold)
        w->hold_rc = cosync_sleep(w->hold);
    if (!w->keep)
        CHECK_OK(cosync_lock_release(w->lock));
    if (w->park)
        CHECK_OK(cosync_event_wait(w->park, COSYNC_FOREVER));
    return 0;
}

static lw mk(cosync_lock *lock, int64_t deadline, int checkpoint)
{
    return (lw){
        .lock = lock, .deadline = deadline, .checkpoint = checkpoint, .rc = 1, .hold_rc = 1};
}

static cosync_task spawn_lw(lw *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, lw_fn, w, NULL));
    return t;
}

/* ========================================================================
 * CPython LockTests
 * ===================================================================== */

static int repr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock;
    cosync_lock_init(&lock);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(&lock));
    lw w = mk(&lock, COSYNC_FOREVER, -1);
    cosync_task t = spawn_lw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    CHECK(cosync_lock_locked(&lock)); /* handed to w */
    join_ok(t);
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(test_repr)
{
    CHECK_OK(run_main(repr_main, NULL));
}

static cosync_lock static_lock = COSYNC_LOCK_INIT;

static int lock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(!cosync_lock_locked(&static_lock));
    cosync_lock zeroed;
    memset(&zeroed, 0, sizeof zeroed);
    CHECK(!cosync_lock_locked(&zeroed));
    CHECK_OK(cosync_lock_acquire(&zeroed, 0));
    CHECK(cosync_lock_locked(&zeroed));
    CHECK_OK(cosync_lock_release(&zeroed));
    CHECK_OK(cosync_lock_acquire(&static_lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(&static_lock));
    CHECK_OK(cosync_lock_release(&static_lock));
    CHECK(!cosync_lock_locked(&static_lock));
    CHECK_OK(cosync_lock_destroy(&zeroed));
    return 0;
}

TEST(test_lock)
{
    CHECK_OK(run_main(lock_main, NULL));
}

static int acquire_main(void *arg, void **result)
{
    (void)result;
    errcap *cap = arg;
    cosync_lock lock = COSYNC_LOCK_INIT;
    int res[3], nres = 0;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw w[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mk(&lock, COSYNC_FOREVER, -1);
        w[i].keep = true; /* as in Python: the test releases each time */
        w[i].result = res;
        w[i].nresult = &nres;
        w[i].tag = i + 1;
    }
    cosync_task t1 = spawn_lw(&w[0]);
    cosync_task t2 = spawn_lw(&w[1]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 0);

    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);
    CHECK_EQ(res[0], 1);

    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);

    cosync_task t3 = spawn_lw(&w[2]);

    /* The two releases below are by the test, not by the holder (t1, t2
     * finished holding it), as in Python: each is reported on stderr. */
    errcap_begin(cap);
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 2);
    CHECK_EQ(res[1], 2);

    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_yield());
    errcap_end(cap);
    CHECK_EQ(nres, 3);
    CHECK_EQ(res[2], 3);

    for (int i = 0; i < 3; i++)
        CHECK_OK(w[i].rc);
    join_ok(t1);
    join_ok(t2);
    join_ok(t3);
    return 0;
}

TEST(test_acquire)
{
    errcap cap;
    CHECK_OK(run_main(acquire_main, &cap));
    CHECK_EQ(count_lines(cap.text), DEBUG_LINES(2));
    CHECK(!DEBUG_REPORTS || strstr(cap.text, "not by its holder") != NULL);
}

static int acquire_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw w = mk(&lock, COSYNC_FOREVER, -1);
    cosync_task t = spawn_lw(&w);
    CHECK_OK(cosync_yield()); /* call_soon(task.cancel): after its first step */
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    return 0;
}

TEST(test_acquire_cancel)
{
    CHECK_OK(run_main(acquire_cancel_main, NULL));
}

/* lockit(name, blocker): acquire, wait for the blocker (if any), release. */
typedef struct lockit {
    cosync_lock *lock;
    cosync_future *blocker;
    int rc;
} lockit;

static int lockit_fn(void *arg, void **result)
{
    (void)result;
    lockit *l = arg;
    l->rc = cosync_lock_acquire(l->lock, COSYNC_FOREVER);
    if (l->rc)
        return l->rc;
    if (l->blocker)
        CHECK_OK(cosync_future_wait(l->blocker, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_release(l->lock));
    return 0;
}

static int cancel_race_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_future fa = COSYNC_FUTURE_INIT;
    lockit a = {&lock, &fa, 1}, b = {&lock, NULL, 1}, c = {&lock, NULL, 1};
    cosync_task ta, tb, tc;
    CHECK_OK(cosync_task_spawn(&ta, lockit_fn, &a, &(cosync_task_opts){.name = "A"}));
    CHECK_OK(cosync_yield());
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_task_spawn(&tb, lockit_fn, &b, &(cosync_task_opts){.name = "B"}));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    CHECK_OK(cosync_task_spawn(&tc, lockit_fn, &c, &(cosync_task_opts){.name = "C"}));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(&lock), 2);

    /* the race: B is cancelled while A is woken to release */
    CHECK_OK(cosync_future_set_result(&fa, NULL));
    CHECK_OK(cosync_task_cancel(tb));
    CHECK_EQ(cosync_lock_waiters(&lock), 1); /* B's waiter is gone at once */
    CHECK_OK(cosync_yield());
    /* A released it and handed it to C (Python: unlocked, C not yet in);
     * with the hand-off it stays locked, C's, until C releases */
    CHECK(cosync_task_done(ta));
    CHECK(cosync_task_done(tb));
    CHECK(cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    join_ok(ta);
    join_expect(tb, COSYNC_ECANCELED);
    CHECK_ERR(b.rc, COSYNC_ECANCELED);
    join_ok(tc);
    CHECK_OK(c.rc);
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(test_cancel_race)
{
    CHECK_OK(run_main(cancel_race_main, NULL));
}

static int lock_count, call_count;

static int count_fn(void *arg, void **result)
{
    (void)result;
    call_count++;
    int rc = cosync_lock_acquire(arg, COSYNC_FOREVER);
    if (rc)
        return rc;
    lock_count++;
    return 0;
}

static int cancel_release_race_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* Issue 32734: cancel the first waiter, release: one lock is taken */
    cosync_lock lock = COSYNC_LOCK_INIT;
    lock_count = call_count = 0;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], count_fn, &lock, NULL));
    CHECK_OK(cosync_yield());
    /* trigger() */
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_lock_release(&lock));
    join_expect(t[0], COSYNC_ECANCELED);
    CHECK_EQ(lock_count, 1);
    CHECK_EQ(call_count, 3);
    CHECK(cosync_task_done(t[1]));
    join_ok(t[1]);
    /* clean up the task stuck on acquire */
    CHECK_OK(cosync_task_cancel(t[2]));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t[2]));
    join_expect(t[2], COSYNC_ECANCELED);
    CHECK_EQ(lock_count, 1);
    CHECK(cosync_lock_locked(&lock)); /* t[1] finished holding it */
    return 0;
}

TEST(test_cancel_release_race)
{
    CHECK_OK(run_main(cancel_release_race_main, NULL));
}

static int finished_waiter_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(&lock));
    lw b = mk(&lock, COSYNC_FOREVER, -1), c = mk(&lock, COSYNC_FOREVER, -1);
    b.keep = c.keep = true;
    cosync_task tb = spawn_lw(&b);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    /* a second waiter (not started yet); cancel the first; release */
    cosync_task tc = spawn_lw(&c);
    CHECK_OK(cosync_task_cancel(tb));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_yield());
    CHECK(cosync_lock_locked(&lock));
    CHECK(cosync_task_done(tb));
    join_expect(tb, COSYNC_ECANCELED);
    CHECK_ERR(b.rc, COSYNC_ECANCELED);
    join_ok(tc);
    CHECK_OK(c.rc);
    return 0;
}

TEST(test_finished_waiter_cancelled)
{
    CHECK_OK(run_main(finished_waiter_cancelled_main, NULL));
}

static int release_not_acquired_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_acquire(&lock, 0));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM); /* twice */
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(test_release_not_acquired)
{
    CHECK_OK(run_main(release_not_acquired_main, NULL));
    cosync_lock lock = COSYNC_LOCK_INIT; /* outside a task too */
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM);
}

static int release_no_waiters_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(test_release_no_waiters)
{
    CHECK_OK(run_main(release_no_waiters_main, NULL));
}

static int context_manager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK(!cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(test_context_manager)
{
    CHECK_OK(run_main(context_manager_main, NULL));
}

/* ========================================================================
 * Beyond asyncio's tests
 * ===================================================================== */

static int fast_path_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    uint64_t sw = switches();
    for (int i = 0; i < 1000; i++) {
        CHECK_OK(cosync_lock_acquire(&lock, i % 2 ? 0 : COSYNC_FOREVER));
        CHECK_OK(cosync_lock_release(&lock));
    }
    CHECK_EQ(switches(), sw);
    CHECK_EQ(ready_tasks(), 0);
    CHECK_EQ(armed_timers(), 0);
    return 0;
}

TEST(uncontended_acquire_does_not_switch)
{
    CHECK_OK(run_main(fast_path_main, NULL));
}

static int no_barging_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw a = mk(&lock, COSYNC_FOREVER, 1);
    a.hold = COSYNC_MS(1);
    cosync_task ta = spawn_lw(&a);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_lock_release(&lock)); /* granted to a, which has not run */
    CHECKPOINT(0);
    CHECK(cosync_lock_locked(&lock));
    /* a newcomer (the releaser itself) cannot take it */
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EAGAIN);
    /* and queues behind a */
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECKPOINT(2);
    CHECK_OK(a.rc);
    CHECK_OK(a.hold_rc);
    CHECK_OK(cosync_lock_release(&lock));
    join_ok(ta);
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(newcomer_never_barges_in)
{
    CHECK_OK(run_main(no_barging_main, NULL));
}

static int granted_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* a waiter granted the lock, then cancelled before it runs, keeps it:
     * its acquire returns 0, the cancellation comes at its next suspension
     * (its hold sleep); the hand-off goes on to the next waiter */
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw a = mk(&lock, COSYNC_FOREVER, 0), b = mk(&lock, COSYNC_FOREVER, 1);
    a.hold = b.hold = COSYNC_MS(5);
    cosync_task ta = spawn_lw(&a), tb = spawn_lw(&b);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_task_cancel(ta));
    CHECK_OK(cosync_task_cancel(ta)); /* twice: still one delivery */
    CHECK(cosync_lock_locked(&lock));
    join_expect(ta, COSYNC_ECANCELED);
    CHECK_OK(a.rc);
    CHECK_ERR(a.hold_rc, COSYNC_ECANCELED);
    CHECK_EQ(a.got_at, AT(0));
    join_ok(tb);
    CHECK_OK(b.rc);
    CHECK_OK(b.hold_rc);
    CHECK_EQ(b.got_at, AT(0)); /* a's hold was cut short */
    CHECK_EQ(cosync_now(), AT(5));
    CHECK(!cosync_lock_locked(&lock));
    CHECKPOINTS_DONE(2);
    return 0;
}

TEST(granted_waiter_cancelled_before_it_runs_keeps_the_lock)
{
    CHECK_OK(run_main(granted_cancel_main, NULL));
}

/* A second release before the waiter it handed the lock to has run is
 * refused, as asyncio raises (its lock is free until that waiter runs):
 * it would hand the lock to the next waiter too, and two would hold it.
 * Also when the grantee was cancelled after the grant (it keeps it). */
static int release_during_hand_off_main(void *arg, void **result)
{
    (void)result;
    bool cancel_grantee = arg != NULL;
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw a = mk(&lock, COSYNC_FOREVER, 0), b = mk(&lock, COSYNC_FOREVER, 1);
    cosync_task ta = spawn_lw(&a), tb = spawn_lw(&b);
    CHECK_OK(cosync_yield());             /* both wait */
    CHECK_OK(cosync_lock_release(&lock)); /* handed to a */
    if (cancel_grantee)
        CHECK_OK(cosync_task_cancel(ta));
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM);
    CHECK(cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 1); /* b still waits */
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM);
    if (cancel_grantee)
        join_expect(ta, COSYNC_ECANCELED); /* it ends with the cancel never delivered */
    else
        join_ok(ta);
    CHECK_OK(a.rc);
    join_ok(tb);
    CHECK_OK(b.rc);
    CHECKPOINTS_DONE(2); /* a, then b: never both */
    CHECK(!cosync_lock_locked(&lock));
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM);
    return 0;
}

TEST(release_while_handed_to_a_waiter_is_eperm)
{
    CHECKPOINT_RESET();
    CHECK_OK(run_main(release_during_hand_off_main, NULL));
    CHECKPOINT_RESET();
    CHECK_OK(run_main(release_during_hand_off_main, (void *)1));
}

/* The same from outside the loop's run, and from a task of another loop:
 * while tasks still wait on the lock, its loop is known to be alive, so
 * the grantee's record is read and the release refused. */
static cosync_lock handed_lock;

static int hand_to_a_and_stop(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_lock_acquire(&handed_lock, COSYNC_FOREVER));
    CHECK_OK(cosync_yield()); /* the two lw tasks queue */
    CHECK_EQ(cosync_lock_waiters(&handed_lock), 2);
    CHECK_OK(cosync_loop_stop(cosync_loop_current())); /* the run ends with this turn */
    CHECK_OK(cosync_lock_release(&handed_lock));       /* handed to the first */
    return 0;
}

static int release_from_elsewhere(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_lock_release(&handed_lock), COSYNC_EPERM);
    return 0;
}

TEST(release_while_handed_is_eperm_from_outside_the_run)
{
    for (int from_other_loop = 0; from_other_loop < 2; from_other_loop++) {
        cosync_lock_init(&handed_lock);
        cosync_loop *loop = new_loop();
        lw a = mk(&handed_lock, COSYNC_FOREVER, 0), b = mk(&handed_lock, COSYNC_FOREVER, 1);
        cosync_task m, ta, tb;
        CHECK_OK(cosync_loop_spawn(loop, &m, hand_to_a_and_stop, NULL, NULL));
        CHECK_OK(cosync_loop_spawn(loop, &ta, lw_fn, &a, NULL));
        CHECK_OK(cosync_loop_spawn(loop, &tb, lw_fn, &b, NULL));
        CHECKPOINT_RESET();
        CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
        CHECK_EQ(a.rc, 1); /* handed the lock, not run yet */
        if (from_other_loop) {
            cosync_loop *other = new_loop();
            cosync_task r;
            CHECK_OK(cosync_loop_spawn(other, &r, release_from_elsewhere, NULL, NULL));
            CHECK_OK(cosync_loop_run(other, r, NULL, NULL));
            CHECK_OK(cosync_loop_destroy(other));
        } else {
            CHECK_ERR(cosync_lock_release(&handed_lock), COSYNC_EPERM);
        }
        CHECK_EQ(cosync_lock_waiters(&handed_lock), 1); /* b still waits */
        CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
        CHECK_OK(a.rc);
        CHECK_OK(b.rc);
        CHECKPOINTS_DONE(2); /* a, then b */
        CHECK(!cosync_lock_locked(&handed_lock));
        CHECK_OK(cosync_loop_destroy(loop));
    }
}

#define NQ 5

/* Waiters 0..NQ-1 queue in order; those in @gone leave the queue (by
 * cancellation, or by a deadline at AT(5)); the others get the lock in
 * order after the holder releases at AT(10). */
typedef struct leave_case {
    bool gone[NQ];
    bool by_timeout;
} leave_case;

static int leave_main(void *arg, void **result)
{
    (void)result;
    leave_case *lc = arg;
    t0 = cosync_now();
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw w[NQ];
    cosync_task t[NQ];
    int cp = 0;
    for (int i = 0; i < NQ; i++) {
        bool gone = lc->gone[i];
        w[i] = mk(&lock, gone && lc->by_timeout ? AT(5) : AT(100), gone ? -1 : cp++);
        w[i].hold = COSYNC_MS(1);
        w[i].delay = COSYNC_US(i + 1); /* queue in index order */
        t[i] = spawn_lw(&w[i]);
    }
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(cosync_lock_waiters(&lock), NQ);
    if (!lc->by_timeout)
        for (int i = 0; i < NQ; i++)
            if (lc->gone[i])
                CHECK_OK(cosync_task_cancel(t[i]));
    CHECK_OK(cosync_sleep(COSYNC_MS(9)));
    CHECK_EQ(cosync_now(), AT(10));
    CHECK_EQ(cosync_lock_waiters(&lock), (size_t)cp);
    CHECK_OK(cosync_lock_release(&lock));
    int k = 0;
    for (int i = 0; i < NQ; i++) {
        if (lc->gone[i]) {
            if (lc->by_timeout) {
                join_ok(t[i]);
                CHECK_ERR(w[i].rc, COSYNC_ETIMEDOUT);
                CHECK_EQ(w[i].got_at, AT(5));
            } else {
                join_expect(t[i], COSYNC_ECANCELED);
                CHECK_ERR(w[i].rc, COSYNC_ECANCELED);
                CHECK_EQ(w[i].got_at, AT(1));
            }
        } else {
            join_ok(t[i]);
            CHECK_OK(w[i].rc);
            CHECK_EQ(w[i].got_at, AT(10 + k)); /* one after the other */
            k++;
        }
    }
    CHECKPOINTS_DONE(cp);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    return 0;
}

TEST(cancelled_and_timed_out_waiters_at_head_middle_and_tail)
{
    static const int places[][NQ] = {
        {1, 0, 0, 0, 0}, /* head */
        {0, 0, 1, 0, 0}, /* middle */
        {0, 0, 0, 0, 1}, /* tail */
        {1, 0, 1, 0, 1}, /* all three */
        {1, 1, 1, 1, 0}, /* all but one */
    };
    for (int by_timeout = 0; by_timeout < 2; by_timeout++)
        for (size_t p = 0; p < sizeof places / sizeof places[0]; p++) {
            leave_case lc = {.by_timeout = by_timeout};
            for (int i = 0; i < NQ; i++)
                lc.gone[i] = places[p][i];
            CHECKPOINT_RESET();
            CHECK_OK(run_main(leave_main, &lc));
        }
}

#define NBURST 100

static int burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    static lw w[NBURST];
    cosync_task t[NBURST];
    cosync_event park = COSYNC_EVENT_INIT;
    for (int i = 0; i < NBURST; i++) {
        w[i] = mk(&lock, COSYNC_FOREVER, i);
        w[i].park = &park; /* block, do not finish: one switch to the next */
        t[i] = spawn_lw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(&lock), NBURST);
    uint64_t sw = switches();
    CHECK_OK(cosync_lock_release(&lock));                 /* each holder then releases at once */
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER)); /* behind all of them */
    CHECKPOINTS_DONE(NBURST);
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_event_set(&park));
    CHECK_OK(cosync_gather(t, NBURST, NULL, COSYNC_FOREVER));
    /* each wake-up within two scheduler steps of the previous release */
    CHECK_LE(w[0].got_switches - sw, 2);
    for (int i = 1; i < NBURST; i++) {
        CHECK_OK(w[i].rc);
        CHECK_LE(w[i].got_switches - w[i - 1].got_switches, 2);
        CHECK_EQ(w[i].got_at, t0);
    }
    CHECK(!cosync_lock_locked(&lock));
    return 0;
}

TEST(burst_of_releases_with_many_waiters)
{
    CHECK_OK(run_main(burst_main, NULL));
}

static int deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    /* deadline 0 on a held lock, and a deadline already passed: no switch */
    uint64_t sw = switches();
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_lock_acquire(&lock, t0), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_lock_acquire(&lock, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw);
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    /* a free lock: any deadline succeeds */
    cosync_lock free_lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&free_lock, t0));
    CHECK_OK(cosync_lock_release(&free_lock));
    CHECK_OK(cosync_lock_acquire(&free_lock, 0));
    CHECK_OK(cosync_lock_release(&free_lock));
    /* waiting: one times out at AT(5), one gets it before its deadline */
    lw a = mk(&lock, AT(5), -1), b = mk(&lock, AT(20), 0);
    cosync_task ta = spawn_lw(&a), tb = spawn_lw(&b);
    CHECK_OK(cosync_sleep(COSYNC_MS(8)));
    CHECK_ERR(a.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(a.got_at, AT(5));
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    join_ok(ta);
    join_ok(tb);
    CHECK_OK(b.rc);
    CHECK_EQ(b.got_at, AT(8));
    /* released just before the deadline: the grant wins, and the timer is
     * disarmed */
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    lw c = mk(&lock, AT(12), -1);
    cosync_task tc = spawn_lw(&c);
    CHECK_OK(cosync_sleep(COSYNC_MS(3)));
    CHECK_OK(cosync_lock_release(&lock));
    join_ok(tc);
    CHECK_OK(c.rc);
    CHECK_EQ(c.got_at, AT(11));
    CHECK_EQ(armed_timers(), 0);
    CHECKPOINTS_DONE(1);
    return 0;
}

TEST(deadline_expiry_while_waiting)
{
    CHECK_OK(run_main(deadline_main, NULL));
}

static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_task me = cosync_task_current();
    lw h = mk(&lock, COSYNC_FOREVER, 0);
    h.hold = COSYNC_MS(1);
    cosync_task th = spawn_lw(&h);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EAGAIN); /* stays pending */
    /* the acquire that would wait suspends once: a ready task runs first */
    cosync_task other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)1, NULL));
    CHECK_ERR(cosync_lock_acquire(&lock, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECKPOINT(2);
    join_ok(other);
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    /* a free lock: taken at once, a pending request stays pending */
    join_ok(th);
    CHECK_OK(cosync_task_cancel(me));
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(acquire_with_a_cancellation_pending)
{
    CHECK_OK(run_main(pending_cancel_main, NULL));
}

/* ---- misuse ---------------------------------------------------------- */

static int destroy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock;
    cosync_lock_init(&lock);
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK_ERR(cosync_lock_destroy(&lock), COSYNC_EBUSY); /* held */
    CHECK(cosync_lock_locked(&lock));
    lw w = mk(&lock, COSYNC_FOREVER, -1);
    cosync_task t = spawn_lw(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_lock_destroy(&lock), COSYNC_EBUSY); /* held and waited on */
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_ERR(cosync_lock_destroy(&lock), COSYNC_EBUSY); /* handed over */
    join_ok(t);
    CHECK_OK(cosync_lock_destroy(&lock));
    /* after destroy: every call is EINVAL */
    CHECK_ERR(cosync_lock_acquire(&lock, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EINVAL);
    CHECK_ERR(cosync_lock_destroy(&lock), COSYNC_EINVAL);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
    /* init makes it usable again */
    cosync_lock_init(&lock);
    CHECK_OK(cosync_lock_acquire(&lock, 0));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_lock_destroy(&lock));
    /* held: destroy refuses and changes nothing; released, it goes, and
     * then neither acquire nor release works */
    cosync_lock_init(&lock);
    CHECK_OK(cosync_lock_acquire(&lock, 0));
    CHECK_ERR(cosync_lock_destroy(&lock), COSYNC_EBUSY);
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_lock_destroy(&lock));
    CHECK_ERR(cosync_lock_acquire(&lock, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EINVAL);
    return 0;
}

TEST(destroy_busy_and_use_after_destroy)
{
    CHECK_OK(run_main(destroy_main, NULL));
    /* outside any task, where the running task's id reads as 0 */
    cosync_lock lock;
    cosync_lock_init(&lock);
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EPERM); /* not locked */
    CHECK_OK(cosync_lock_destroy(&lock));
    CHECK_ERR(cosync_lock_release(&lock), COSYNC_EINVAL);
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EINVAL);
    CHECK(!cosync_lock_locked(&lock));
    cosync_cond cond;
    cosync_cond_init(&cond, &lock);
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EINVAL); /* its lock is gone */
}

static int try_fn(void *arg, void **result)
{
    (void)result;
    lw *w = arg;
    w->rc = cosync_lock_acquire(w->lock, w->deadline);
    return 0;
}

TEST(misuse_outside_a_task_and_from_another_loop)
{
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_ERR(cosync_lock_acquire(&lock, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_lock_acquire(&lock, 0), COSYNC_EPERM);
    CHECK(!cosync_lock_locked(&lock));

    cosync_loop *a = new_loop(), *b = new_loop();
    /* loop a: h takes the lock and keeps it; w waits (binds it to a) */
    lw h = mk(&lock, COSYNC_FOREVER, -1), w = mk(&lock, COSYNC_FOREVER, -1);
    h.keep = true;
    cosync_task th, tw;
    spawn_and_run(a, &th, lw_fn, &h);
    CHECK_OK(h.rc);
    CHECK_OK(cosync_loop_spawn(a, &tw, lw_fn, &w, NULL));
    cosync_task ts;
    spawn_and_run(a, &ts, nop, NULL);
    CHECK_EQ(cosync_lock_waiters(&lock), 1);

    /* loop b: refused, with any deadline */
    int64_t dls[] = {COSYNC_FOREVER, 0, COSYNC_SEC(100)};
    for (int i = 0; i < 3; i++) {
        lw x = mk(&lock, dls[i], -1);
        cosync_task tx;
        spawn_and_run(b, &tx, try_fn, &x);
        CHECK_ERR(x.rc, COSYNC_EPERM);
    }
    CHECK_EQ(cosync_lock_waiters(&lock), 1);

    /* release (from outside any task: reported) hands it to w on loop a */
    errcap cap;
    errcap_begin(&cap);
    CHECK_OK(cosync_lock_release(&lock));
    errcap_end(&cap);
    CHECK(!DEBUG_REPORTS || strstr(cap.text, "released by code outside any task") != NULL);
    CHECK_OK(cosync_loop_run(a, tw, NULL, NULL));
    CHECK_OK(w.rc);
    CHECK(!cosync_lock_locked(&lock));
    /* free and unbound: loop b may take it now */
    lw y = mk(&lock, 0, -1);
    cosync_task ty;
    spawn_and_run(b, &ty, lw_fn, &y);
    CHECK_OK(y.rc);
    end_loop(a);
    end_loop(b);
}

/* A release by another task than the holder works and is reported. */
static int release_other_main(void *arg, void **result)
{
    (void)result;
    errcap *cap = arg;
    cosync_lock lock = COSYNC_LOCK_INIT;
    lw h = mk(&lock, COSYNC_FOREVER, -1);
    h.keep = true;
    cosync_task th;
    CHECK_OK(cosync_task_spawn(&th, lw_fn, &h, &(cosync_task_opts){.name = "holder"}));
    CHECK_OK(cosync_yield());
    CHECK(cosync_lock_locked(&lock));
    errcap_begin(&cap[0]);
    CHECK_OK(cosync_lock_release(&lock));
    errcap_end(&cap[0]);
    CHECK(!cosync_lock_locked(&lock));
    join_ok(th);
    /* the holder itself: silent */
    errcap_begin(&cap[1]);
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_release(&lock));
    errcap_end(&cap[1]);
    return 0;
}

TEST(release_by_another_task_is_reported)
{
    errcap cap[2];
    CHECK_OK(run_main(release_other_main, cap));
    CHECK_EQ(count_lines(cap[0].text), DEBUG_LINES(1));
    CHECK(!DEBUG_REPORTS ||
          strstr(cap[0].text, "released by task 'main', not by its holder (#2)") != NULL);
    CHECK_STREQ(cap[1].text, "");
}

/* ---- the seed's race demo (section 6.1) -------------------------------- */

typedef struct counter {
    int value;
    cosync_lock *lock; /* NULL: without a lock */
} counter;

static int increment(void *arg, void **result)
{
    (void)result;
    counter *c = arg;
    if (c->lock)
        CHECK_OK(cosync_lock_acquire(c->lock, COSYNC_FOREVER));
    int temp = c->value;
    CHECK_OK(cosync_sleep(COSYNC_MS(100))); /* simulate processing time */
    c->value = temp + 1;
    if (c->lock)
        CHECK_OK(cosync_lock_release(c->lock));
    return 0;
}

static int race_main(void *arg, void **result)
{
    (void)result;
    bool with_lock = arg != NULL;
    t0 = cosync_now();
    cosync_lock lock = COSYNC_LOCK_INIT;
    counter c = {0, with_lock ? &lock : NULL};
    cosync_task t[10];
    for (int i = 0; i < 10; i++)
        CHECK_OK(cosync_task_spawn(&t[i], increment, &c, NULL));
    CHECK_OK(cosync_gather(t, 10, NULL, COSYNC_FOREVER));
    if (with_lock) {
        CHECK_EQ(c.value, 10);
        CHECK_EQ(cosync_now(), AT(1000)); /* one after the other */
    } else {
        CHECK_EQ(c.value, 1); /* every task read 0 */
        CHECK_EQ(cosync_now(), AT(100));
    }
    return 0;
}

TEST(seed_race_condition_demo)
{
    CHECK_OK(run_main(race_main, NULL));
    CHECK_OK(run_main(race_main, (void *)1));
}

/* ---- the deadlock report --------------------------------------------- */

static cosync_event never;

static int hold_forever(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_lock_acquire(arg, COSYNC_FOREVER));
    int rc = cosync_event_wait(&never, COSYNC_FOREVER);
    CHECK_OK(cosync_lock_release(arg));
    return rc;
}

static int deadlock_main(void *arg, void **result)
{
    (void)result;
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, hold_forever, arg, &(cosync_task_opts){.name = "x"}));
    CHECK_OK(cosync_yield());
    int rc = cosync_lock_acquire(arg, COSYNC_FOREVER);
    if (rc == 0)
        CHECK_OK(cosync_lock_release(arg));
    int st;
    cosync_task_join(x, &st, NULL, COSYNC_FOREVER);
    return rc;
}

TEST(deadlock_report_names_the_holder)
{
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_event_init(&never);
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, deadlock_main, &lock, "main", &m);
    const char *buf = report.buf;
    char want[256];
    snprintf(want, sizeof want, "task 'main' (#1) waits on lock %p held by task 'x' (#2)\n",
             (void *)&lock);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    snprintf(want, sizeof want, "task 'x' (#2) waits on event %p\n", (void *)&never);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    /* destroy cancels both: x releases, main gets the lock and finishes */
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_EQ(cosync_lock_waiters(&lock), 0);
}

/* A holder that finished without releasing is reported as finished as soon
 * as it finishes, not only once its record has been collected. */
static int take_and_finish(void *arg, void **result)
{
    (void)result;
    return cosync_lock_acquire(arg, COSYNC_FOREVER);
}

static int finished_holder_main(void *arg, void **result)
{
    (void)result;
    cosync_task x;
    CHECK_OK(cosync_task_spawn(&x, take_and_finish, arg, &(cosync_task_opts){.name = "x"}));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(x)); /* holding the lock, not collected */
    return cosync_lock_acquire(arg, COSYNC_FOREVER);
}

/* The same once the holder was collected and its record went to the task
 * that then waits for the lock. */
static int reused_record_main(void *arg, void **result)
{
    (void)result;
    cosync_task x, y;
    CHECK_OK(cosync_task_spawn(&x, take_and_finish, arg, &(cosync_task_opts){.name = "x"}));
    CHECK_OK(cosync_task_join(x, NULL, NULL, COSYNC_FOREVER)); /* its record is free */
    CHECK_OK(cosync_task_spawn(&y, take_and_finish, arg, &(cosync_task_opts){.name = "y"}));
    CHECK(y.rec == x.rec); /* the record x had */
    return cosync_task_join(y, NULL, NULL, COSYNC_FOREVER);
}

/* Run @fn(@arg) as the task "main" of a loop until it deadlocks; its
 * report must have the line "task <who> waits on lock <@lock> held by
 * <@holder>" and not mention @absent (if given); then close the loop,
 * which cancels the waits. */
static void expect_lock_report(cosync_task_fn fn, void *arg, const char *who,
                               const cosync_lock *lock, const char *holder, const char *absent)
{
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, fn, arg, "main", &m);
    char want[256];
    snprintf(want, sizeof want, "task %s waits on lock %p held by %s\n", who, (const void *)lock,
             holder);
    if (!strstr(report.buf, want))
        CHECK_STREQ(report.buf, want);
    if (absent)
        CHECK(strstr(report.buf, absent) == NULL);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
    CHECK_EQ(cosync_lock_waiters(lock), 0);
}

TEST(deadlock_report_says_the_holder_finished)
{
    cosync_lock lock = COSYNC_LOCK_INIT;
    /* x is not among the blocked */
    expect_lock_report(finished_holder_main, &lock, "'main' (#1)", &lock, "a finished task (#2)",
                       "task 'x'");
    CHECK(cosync_lock_locked(&lock));
    cosync_lock_init(&lock);
    expect_lock_report(reused_record_main, &lock, "'y' (#3)", &lock, "a finished task (#2)", NULL);
}

/* A lock left held by a task of a loop that is gone, then waited on from a
 * new loop, whose main task has the same number and may have the same
 * record address: the report says so without reading the holder's record,
 * which went with its loop (ASan would see that read). */
static cosync_lock orphaned;

static int acquire_orphaned(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_lock_acquire(&orphaned, COSYNC_FOREVER);
}

/* A task waiting for a lock it holds itself (asyncio's Lock deadlocks so
 * too): the report names it as the holder. */
static int acquire_twice(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_lock_acquire(arg, COSYNC_FOREVER));
    return cosync_lock_acquire(arg, COSYNC_FOREVER);
}

TEST(deadlock_report_names_a_task_waiting_for_its_own_lock)
{
    cosync_lock lock = COSYNC_LOCK_INIT;
    expect_lock_report(acquire_twice, &lock, "'main' (#1)", &lock, "task 'main' (#1)", NULL);
}

TEST(deadlock_report_names_a_holder_whose_loop_is_gone)
{
    cosync_lock_init(&orphaned);
    CHECK_OK(cosync_run(acquire_orphaned, NULL)); /* main ends holding it */
    CHECK(cosync_lock_locked(&orphaned));
    expect_lock_report(acquire_orphaned, NULL, "'main' (#1)", &orphaned,
                       "a task of another loop (#1)", NULL);
}

/* A later loop's task with the holder's record and number is not the
 * holder: a pooling allocator (a freed block goes to the next request of
 * its size) puts loop B's main in the record loop A's main had, and both
 * are #1. Only the loop serial tells them apart. */
typedef struct pooled {
    struct pooled *next;
    size_t size;
    max_align_t align[]; /* the block */
} pooled;

static pooled *pool_free;

static void *pool_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (ptr) { /* only frees come with a pointer here */
        pooled *b = (pooled *)((char *)ptr - offsetof(pooled, align));
        CHECK_EQ(size, 0);
        b->next = pool_free;
        pool_free = b;
        return NULL;
    }
    for (pooled **p = &pool_free; *p; p = &(*p)->next)
        if ((*p)->size == size) {
            pooled *b = *p;
            *p = b->next;
            return b->align;
        }
    pooled *b = malloc(sizeof *b + size);
    CHECK_NOTNULL(b);
    b->size = size;
    return b->align;
}

static int not_the_holder(void *arg, void **result)
{
    (void)result;
    cosync_cond *c = arg;
    cosync_task me = cosync_task_current();
    CHECK(me.rec == orphaned.owner);      /* the record A's main had */
    CHECK_EQ(me.id, orphaned.owner_id);   /* and its number */
    CHECK(cosync_lock_locked(&orphaned)); /* held by A's main still */
    CHECK_ERR(cosync_cond_notify(c, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_wait(c, 0), COSYNC_EPERM);
    return 0;
}

TEST(a_later_loops_task_in_the_holders_record_is_not_the_holder)
{
    cosync_allocator pool = {pool_realloc, NULL};
    cosync_loop_opts opts = {.virtual_clock = true, .allocator = &pool};
    cosync_lock_init(&orphaned);
    CHECK_OK(cosync_run_with(acquire_orphaned, NULL, &opts)); /* main ends holding it */
    cosync_cond c;
    cosync_cond_init(&c, &orphaned);
    CHECK_OK(cosync_run_with(not_the_holder, &c, &opts));
    while (pool_free) {
        pooled *b = pool_free;
        pool_free = b->next;
        free(b);
    }
}

int main(void)
{
    RUN(test_repr);
    RUN(test_lock);
    RUN(test_acquire);
    RUN(test_acquire_cancel);
    RUN(test_cancel_race);
    RUN(test_cancel_release_race);
    RUN(test_finished_waiter_cancelled);
    RUN(test_release_not_acquired);
    RUN(test_release_no_waiters);
    RUN(test_context_manager);
    RUN(uncontended_acquire_does_not_switch);
    RUN(newcomer_never_barges_in);
    RUN(granted_waiter_cancelled_before_it_runs_keeps_the_lock);
    RUN(release_while_handed_to_a_waiter_is_eperm);
    RUN(release_while_handed_is_eperm_from_outside_the_run);
    RUN(cancelled_and_timed_out_waiters_at_head_middle_and_tail);
    RUN(burst_of_releases_with_many_waiters);
    RUN(deadline_expiry_while_waiting);
    RUN(acquire_with_a_cancellation_pending);
    RUN(destroy_busy_and_use_after_destroy);
    RUN(misuse_outside_a_task_and_from_another_loop);
    RUN(release_by_another_task_is_reported);
    RUN(seed_race_condition_demo);
    RUN(deadlock_report_names_the_holder);
    RUN(deadlock_report_says_the_holder_finished);
    RUN(deadlock_report_names_a_task_waiting_for_its_own_lock);
    RUN(deadlock_report_names_a_holder_whose_loop_is_gone);
    RUN(a_later_loops_task_in_the_holders_record_is_not_the_holder);
    return 0;
}
