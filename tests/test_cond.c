/*
 * test_cond.c - cosync_cond (asyncio.Condition): the cases of CPython's
 * test_locks.py ConditionTests that apply (3.11 and 3.13, named after their
 * originals), then: a notify followed at once by cancelling the notified
 * waiter, the re-acquire order across several waiters, deadlines in every
 * waiting state (a wait always returns with the lock held), every misuse
 * error, conditions sharing a lock, the seed's examples, the deadlock report.
 *
 * Where cosync is stricter than asyncio, the port says so: notify needs the
 * caller to hold the lock (asyncio only checks that it is locked). A waiter
 * notified and then cancelled before it runs forwards the notify to the
 * next waiter and returns COSYNC_ECANCELED (as asyncio 3.13); one
 * cancelled while it re-acquires the lock keeps its notify (returns 0, the
 * cancellation comes at its next suspension).
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
/* ctest-timeout: 60 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "lock.h" /* cosync__lock_held: white-box check of the holder */

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

static bool i_hold(cosync_cond *c)
{
    return cosync__lock_held(cosync_cond_lock(c));
}

static bool flag_pred(void *arg)
{
    return *(bool *)arg;
}

/* A task that takes the condition's lock, waits, and records it. */
typedef struct cw {
    cosync_cond *cond;
    int64_t deadline;
    bool *flag;     /* wait_for(*flag) instead of wait */
    bool release;   /* release after the wait (else finish holding it) */
    bool next;      /* sleep 1 ms after the wait (a suspension) */
    int checkpoint; /* < 0: none; reached when the wait has returned */
    int *res, *nres, tag;
    /* observed */
    int rc;
    int next_rc;
    bool held;
    int64_t woke_at;
    uint64_t woke_switches; /* switches() when the wait returned */
} cw;

static int cw_fn(void *arg, void **result)
{
    (void)result;
    cw *w = arg;
    CHECK_OK(cosync_cond_acquire(w->cond, COSYNC_FOREVER));
    w->rc = w->flag ? cosync_cond_wait_for(w->cond, flag_pred, w->flag, w->deadline)
                    : cosync_cond_wait(w->cond, w->deadline);
    w->woke_at = cosync_now();
    w->woke_switches = switches();
    w->held = i_hold(w->cond);
    CHECK(w->held);
    if (w->checkpoint >= 0)
        CHECKPOINT(w->checkpoint);
    if (w->rc == 0 && w->res)
        w->res[(*w->nres)++] = w->tag;
    if (w->next)
        w->next_rc = cosync_sleep(COSYNC_MS(1));
    if (w->release)
        CHECK_OK(cosync_cond_release(w->cond));
    return w->rc == COSYNC_ECANCELED ? COSYNC_ECANCELED : 0;
}

static cw mk(cosync_cond *c, int64_t deadline, bool release)
{
    return (cw){.cond = c,
                .deadline = deadline,
                .release = release,
                .checkpoint = -1,
                .rc = 1,
                .next_rc = 1};
}

static cosync_task spawn_cw(cw *w)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, cw_fn, w, NULL));
    return t;
}

/* Spawn @n waiters w[0..n) on @cond that append their tags 1..n to
 * res[*nres] when woken (and release the lock then if @release); let them
 * all wait. */
static void spawn_tagged(cosync_cond *cond, int n, bool release, cw *w, cosync_task *t, int *res,
                         int *nres)
{
    for (int i = 0; i < n; i++) {
        w[i] = mk(cond, COSYNC_FOREVER, release);
        w[i].res = res, w[i].nres = nres, w[i].tag = i + 1;
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(*nres, 0);
}

/* ========================================================================
 * CPython ConditionTests
 * ===================================================================== */

static int wait_main(void *arg, void **result)
{
    (void)result;
    errcap *cap = arg;
    cosync_cond cond;
    cosync_cond_init(&cond, NULL);
    int res[3], nres = 0;
    cw w[3];
    cosync_task t[3];
    spawn_tagged(&cond, 3, false, w, t, res, &nres); /* finish holding the lock */
    CHECK(!cosync_cond_locked(&cond));

    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 0);
    CHECK(cosync_cond_locked(&cond));

    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);
    CHECK_EQ(res[0], 1);
    CHECK(cosync_cond_locked(&cond));

    /* Python notifies while t1 (finished) holds the lock; cosync's notify
     * needs the caller to hold it: take it over (a reported release) */
    errcap_begin(cap);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_cond_acquire(&cond, 0));
    CHECK_EQ(cosync_cond_notify(&cond, 2), 2);
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);
    CHECK(cosync_cond_locked(&cond));

    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 2);
    CHECK_EQ(res[1], 2);
    CHECK(cosync_cond_locked(&cond));

    CHECK_OK(cosync_cond_release(&cond)); /* t2's: reported */
    CHECK_OK(cosync_yield());
    errcap_end(cap);
    CHECK_EQ(nres, 3);
    CHECK_EQ(res[2], 3);
    CHECK(cosync_cond_locked(&cond));
    for (int i = 0; i < 3; i++) {
        join_ok(t[i]);
        CHECK_OK(w[i].rc);
    }
    return 0;
}

TEST(test_wait)
{
    errcap cap;
    CHECK_OK(run_main(wait_main, &cap));
    CHECK_EQ(count_lines(cap.text), DEBUG_LINES(2));
}

static int wait_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    cw w = mk(&cond, COSYNC_FOREVER, false);
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    CHECK(!cosync_cond_locked(&cond));
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK(w.held);
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK(cosync_cond_locked(&cond)); /* the task finished holding it */
    return 0;
}

TEST(test_wait_cancel)
{
    CHECK_OK(run_main(wait_cancel_main, NULL));
}

static int wait_cancel_contested_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    cw w = mk(&cond, COSYNC_FOREVER, false);
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_cond_locked(&cond));
    /* notify, but contest the lock before cancelling */
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK(cosync_cond_locked(&cond));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_OK(cosync_cond_release(&cond));
    /* cancelled before it ran: the notify goes on (to nobody here) and the
     * wait ends cancelled, with the lock held */
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK(w.held);
    CHECK(cosync_cond_locked(&cond));
    return 0;
}

TEST(test_wait_cancel_contested)
{
    CHECK_OK(run_main(wait_cancel_contested_main, NULL));
}

static int wait_cancel_after_notify_main(void *arg, void **result)
{
    (void)arg, (void)result;
    /* bpo-32841 */
    cosync_cond cond = COSYNC_COND_INIT;
    cw w = mk(&cond, COSYNC_FOREVER, true);
    w.next = true;
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield()); /* start waiting */
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_yield()); /* it gets to the re-acquire */
    CHECK_EQ(cosync_lock_waiters(cosync_cond_lock(&cond)), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_OK(cosync_yield()); /* the re-acquire is not interrupted */
    CHECK_EQ(cosync_lock_waiters(cosync_cond_lock(&cond)), 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield()); /* its wait returns 0; its sleep delivers */
    CHECK_EQ(w.rc, 0);
    CHECK_EQ(w.next_rc, 1);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED); /* waiter.cancelled() */
    CHECK_OK(w.rc);
    CHECK_ERR(w.next_rc, COSYNC_ECANCELED);
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(test_wait_cancel_after_notify)
{
    CHECK_OK(run_main(wait_cancel_after_notify_main, NULL));
}

static int wait_unacquired_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    uint64_t sw = switches();
    CHECK_ERR(cosync_cond_wait(&cond, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_EQ(switches(), sw);
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    return 0;
}

TEST(test_wait_unacquired)
{
    CHECK_OK(run_main(wait_unacquired_main, NULL));
}

static int wait_for_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    bool presult = false;
    int res[1], nres = 0;
    cw w = mk(&cond, COSYNC_FOREVER, true);
    w.flag = &presult, w.res = res, w.nres = &nres, w.tag = 1;
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 0);

    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 0);
    CHECK_EQ(cosync_cond_waiters(&cond), 1); /* it waits again */

    presult = true;
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);
    CHECK(cosync_task_done(t));
    join_ok(t);
    CHECK_OK(w.rc);
    return 0;
}

TEST(test_wait_for)
{
    CHECK_OK(run_main(wait_for_main, NULL));
}

static bool always(void *arg)
{
    (void)arg;
    return true;
}

static int wait_for_unacquired_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    bool no = false;
    /* the predicate can be true at once: no lock needed */
    CHECK_OK(cosync_cond_wait_for(&cond, always, NULL, COSYNC_FOREVER));
    CHECK_ERR(cosync_cond_wait_for(&cond, flag_pred, &no, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_wait_for(&cond, NULL, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    return 0;
}

TEST(test_wait_for_unacquired)
{
    CHECK_OK(run_main(wait_for_unacquired_main, NULL));
}

static int notify_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    int res[3], nres = 0;
    cw w[3];
    cosync_task t[3];
    spawn_tagged(&cond, 3, true, w, t, res, &nres);

    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 1);
    CHECK_EQ(res[0], 1);

    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_EQ(cosync_cond_notify(&cond, 2048), 1);
    CHECK_EQ(cosync_cond_notify(&cond, 1), 0);
    CHECK_EQ(cosync_cond_notify(&cond, 0), 0);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 3);
    CHECK_EQ(res[1], 2);
    CHECK_EQ(res[2], 3);
    for (int i = 0; i < 3; i++)
        join_ok(t[i]);
    return 0;
}

TEST(test_notify)
{
    CHECK_OK(run_main(notify_main, NULL));
}

static int notify_all_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    int res[2], nres = 0;
    cw w[2];
    cosync_task t[2];
    spawn_tagged(&cond, 2, true, w, t, res, &nres);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify_all(&cond), 2);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(nres, 2);
    CHECK_EQ(res[0], 1);
    CHECK_EQ(res[1], 2);
    for (int i = 0; i < 2; i++)
        join_ok(t[i]);
    return 0;
}

TEST(test_notify_all)
{
    CHECK_OK(run_main(notify_all_main, NULL));
}

static int notify_unacquired_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify_all(&cond), COSYNC_EPERM);
    return 0;
}

TEST(test_notify_unacquired)
{
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EPERM); /* outside a task */
    CHECK_OK(run_main(notify_unacquired_main, NULL));
}

TEST(test_notify_all_unacquired)
{
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK_ERR(cosync_cond_notify_all(&cond), COSYNC_EPERM);
}

static int repr_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK(!cosync_cond_locked(&cond));
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK(cosync_cond_locked(&cond));
    cw w[2] = {mk(&cond, COSYNC_FOREVER, true), mk(&cond, COSYNC_FOREVER, true)};
    cosync_task t0_ = spawn_cw(&w[0]);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    cosync_task t1_ = spawn_cw(&w[1]);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_cond_waiters(&cond), 2);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify_all(&cond), 2);
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(t0_);
    join_ok(t1_);
    return 0;
}

TEST(test_repr)
{
    CHECK_OK(run_main(repr_main, NULL));
}

static int context_manager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond;
    memset(&cond, 0, sizeof cond); /* a zeroed struct works */
    CHECK(!cosync_cond_locked(&cond));
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK(cosync_cond_locked(&cond));
    CHECK_OK(cosync_cond_release(&cond));
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(test_context_manager)
{
    CHECK_OK(run_main(context_manager_main, NULL));
}

static void explicit_f(cosync_lock *lock, cosync_cond *cond)
{
    CHECK(cosync_cond_lock(cond) == lock);
    CHECK(!cosync_lock_locked(lock));
    CHECK(!cosync_cond_locked(cond));
    CHECK_OK(cosync_cond_acquire(cond, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(lock));
    CHECK(cosync_cond_locked(cond));
    CHECK_OK(cosync_cond_release(cond));
    CHECK(!cosync_lock_locked(lock));
    CHECK(!cosync_cond_locked(cond));
    CHECK_OK(cosync_lock_acquire(lock, COSYNC_FOREVER));
    CHECK(cosync_lock_locked(lock));
    CHECK(cosync_cond_locked(cond));
    CHECK_OK(cosync_lock_release(lock));
    CHECK(!cosync_lock_locked(lock));
    CHECK(!cosync_cond_locked(cond));
}

static int explicit_lock_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond own;
    cosync_cond_init(&own, NULL);
    explicit_f(cosync_cond_lock(&own), &own);
    cosync_lock lock;
    cosync_lock_init(&lock);
    cosync_cond cond;
    cosync_cond_init(&cond, &lock);
    explicit_f(&lock, &cond);
    cosync_cond c2 = {.lock = &lock}; /* a second condition on the lock */
    explicit_f(&lock, &c2);
    return 0;
}

TEST(test_explicit_lock)
{
    CHECK_OK(run_main(explicit_lock_main, NULL));
}

/* test_ambiguous_loops: a lock or a condition bound to another loop */
static int take_and_wait(void *arg, void **result)
{
    (void)result;
    cw *w = arg;
    return cw_fn(w, NULL);
}

static int acquire_rc(void *arg, void **result)
{
    (void)result;
    cw *w = arg;
    w->rc = cosync_cond_acquire(w->cond, w->deadline);
    return 0;
}

static int acquire_cp(void *arg, void **result)
{
    (void)result;
    cw *w = arg;
    w->rc = cosync_cond_acquire(w->cond, w->deadline);
    CHECKPOINT(w->checkpoint);
    CHECK_OK(cosync_cond_release(w->cond));
    return 0;
}

static int hold_and_misuse(void *arg, void **result)
{
    (void)result;
    cw *w = arg;
    CHECK_OK(cosync_cond_acquire(w->cond, COSYNC_FOREVER)); /* free: fast path */
    w->rc = cosync_cond_wait(w->cond, COSYNC_FOREVER);
    w->next_rc = cosync_cond_notify(w->cond, 1);
    w->held = i_hold(w->cond);
    CHECK_OK(cosync_cond_release(w->cond));
    return 0;
}

static void run_until_idle(cosync_loop *loop)
{
    cosync_task s;
    spawn_and_run(loop, &s, nop, NULL);
}

TEST(test_ambiguous_loops)
{
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_cond cond;
    cosync_cond_init(&cond, &lock);

    /* wrong loop in the condition: a task of loop a waits on it */
    cw wa = mk(&cond, COSYNC_FOREVER, true);
    cosync_task ta;
    CHECK_OK(cosync_loop_spawn(a, &ta, take_and_wait, &wa, NULL));
    run_until_idle(a);
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    CHECK(!cosync_lock_locked(&lock));
    cw wb = mk(&cond, COSYNC_FOREVER, true);
    cosync_task tb;
    spawn_and_run(b, &tb, hold_and_misuse, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);      /* wait: nothing changed */
    CHECK_ERR(wb.next_rc, COSYNC_EPERM); /* notify */
    CHECK(wb.held);

    /* wrong loop in the lock: a task of loop a holds it, another waits */
    cosync_lock_init(&lock);
    cosync_cond c2;
    cosync_cond_init(&c2, &lock);
    cw h = mk(&c2, 0, false), q = mk(&c2, COSYNC_FOREVER, false);
    cosync_task th, tq;
    CHECK_OK(cosync_loop_spawn(a, &th, acquire_rc, &h, NULL));
    CHECK_OK(cosync_loop_spawn(a, &tq, acquire_rc, &q, NULL));
    run_until_idle(a);
    CHECK_OK(h.rc);
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    cw x = mk(&c2, COSYNC_FOREVER, false);
    cosync_task tx;
    spawn_and_run(b, &tx, acquire_rc, &x);
    CHECK_ERR(x.rc, COSYNC_EPERM);

    /* clean up: hand the lock to q (release by outside code: reported),
     * then cancel the condition waiter */
    errcap cap;
    errcap_begin(&cap);
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    errcap_end(&cap);
    CHECK_EQ(count_lines(cap.text), DEBUG_LINES(2));
    CHECK_OK(cosync_task_cancel(ta));
    int st = 0;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_ERR(st, COSYNC_ECANCELED);
    CHECK_ERR(wa.rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_loop_run(a, th, NULL, NULL));
    CHECK_OK(cosync_loop_run(a, tq, NULL, NULL));
    CHECK_OK(q.rc);
    end_loop(a);
    end_loop(b);
}

/* A wait whose lock, free while it waited for its notify, was queued on by
 * tasks of another loop: it cannot queue behind them, so it ends with
 * COSYNC_EPERM and without the lock (documented misuse). */
typedef struct xloop {
    cosync_cond *cond;
    cosync_lock *lock;
    cosync_event go;
    int rc;
    bool held;
} xloop;

/* A fresh lock, a condition on it, and their xloop. */
static xloop xloop_on(cosync_cond *cond, cosync_lock *lock)
{
    cosync_lock_init(lock);
    cosync_cond_init(cond, lock);
    return (xloop){.cond = cond, .lock = lock, .go = COSYNC_EVENT_INIT, .rc = 1};
}

static int xloop_waiter(void *arg, void **result)
{
    (void)result;
    xloop *x = arg;
    CHECK_OK(cosync_cond_acquire(x->cond, COSYNC_FOREVER));
    x->rc = cosync_cond_wait(x->cond, cosync_deadline_after(COSYNC_MS(10)));
    x->held = cosync_cond_locked(x->cond);
    return 0;
}

static int xloop_lock_user(void *arg, void **result)
{
    (void)result;
    xloop *x = arg;
    CHECK_OK(cosync_lock_acquire(x->lock, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_release(x->lock));
    return 0;
}

static int xloop_holder(void *arg, void **result)
{
    (void)result;
    xloop *x = arg;
    CHECK_OK(cosync_lock_acquire(x->lock, COSYNC_FOREVER)); /* free */
    cosync_task u;
    CHECK_OK(cosync_task_spawn(&u, xloop_lock_user, x, NULL));
    CHECK_OK(cosync_yield()); /* u queues on the lock */
    CHECK_EQ(cosync_lock_waiters(x->lock), 1);
    CHECK_OK(cosync_event_wait(&x->go, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_release(x->lock));
    join_ok(u);
    return 0;
}

TEST(wait_ends_without_the_lock_another_loop_queued_on)
{
    cosync_loop *a = new_loop();
    capture cap;
    cosync_loop *b = report_loop(&cap, NULL);
    cosync_lock lock;
    cosync_cond cond;
    xloop x = xloop_on(&cond, &lock);
    cosync_task w, h;
    CHECK_OK(cosync_loop_spawn(a, &w, xloop_waiter, &x, NULL));
    run_until_idle(a); /* w waits for a notify; the lock is free */
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    CHECK(!cosync_lock_locked(&lock));
    CHECK_OK(cosync_loop_spawn(b, &h, xloop_holder, &x, NULL));
    CHECK_ERR(cosync_loop_run(b, h, NULL, NULL), COSYNC_EDEADLK); /* h waits for go */
    CHECK_OK(cosync_loop_run(a, w, NULL, NULL));                  /* w times out */
    CHECK_ERR(x.rc, COSYNC_EPERM);
    CHECK(x.held);                           /* by h, not w */
    CHECK_EQ(cosync_lock_waiters(&lock), 1); /* only b's task */
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_OK(cosync_event_set(&x.go));
    CHECK_OK(cosync_loop_run(b, h, NULL, NULL));
    CHECK(!cosync_lock_locked(&lock));
    end_loop(a);
    end_loop(b);
    capture_free(&cap);
    CHECK_OK(cosync_cond_destroy(&cond));
}

/* A holder whose lock is queued on by a task of another loop: its wait
 * and its notify are both refused (documented misuse), and the lock and
 * its waiter are left as they were. */
static int xloop_notifier(void *arg, void **result)
{
    (void)result;
    xloop *x = arg;
    CHECK_OK(cosync_lock_acquire(x->lock, COSYNC_FOREVER)); /* free */
    CHECK_OK(cosync_event_wait(&x->go, COSYNC_FOREVER));
    CHECK_ERR(cosync_cond_wait(x->cond, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify(x->cond, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify_all(x->cond), COSYNC_EPERM);
    x->held = cosync_cond_locked(x->cond);
    CHECK_EQ(cosync_lock_waiters(x->lock), 1);
    x->rc = 0;
    return 0;
}

TEST(notify_refused_while_a_task_of_another_loop_queues_on_the_lock)
{
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_lock lock;
    cosync_cond cond;
    xloop x = xloop_on(&cond, &lock);
    cosync_task h, u;
    CHECK_OK(cosync_loop_spawn(a, &h, xloop_notifier, &x, NULL));
    run_until_idle(a); /* h holds the lock and waits for go */
    CHECK_OK(cosync_loop_spawn(b, &u, xloop_lock_user, &x, NULL));
    run_until_idle(b); /* u (loop b) queues on the lock */
    CHECK_EQ(cosync_lock_waiters(&lock), 1);
    CHECK_OK(cosync_event_set(&x.go));
    CHECK_OK(cosync_loop_run(a, h, NULL, NULL));
    CHECK_OK(x.rc);
    CHECK(x.held);
    /* h finished holding the lock: hand it to u from outside (reported) */
    errcap cap;
    errcap_begin(&cap);
    CHECK_OK(cosync_lock_release(&lock));
    errcap_end(&cap);
    CHECK_EQ(count_lines(cap.text), DEBUG_LINES(1));
    CHECK_OK(cosync_loop_run(b, u, NULL, NULL));
    CHECK(!cosync_lock_locked(&lock));
    end_loop(a);
    end_loop(b);
    CHECK_OK(cosync_cond_destroy(&cond));
}

static int timeout_in_block_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_ERR(cosync_cond_wait(&cond, AT(500)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(500));
    CHECK(i_hold(&cond));
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_OK(cosync_cond_release(&cond));
    return 0;
}

TEST(test_timeout_in_block)
{
    CHECK_OK(run_main(timeout_in_block_main, NULL));
}

static int cancelled_error_wakeup_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    bool wake = false;
    cw w = mk(&cond, COSYNC_FOREVER, true);
    w.flag = &wake;
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t)); /* cancelled while waiting for the notify */
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK(w.held);
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(test_cancelled_error_wakeup)
{
    CHECK_OK(run_main(cancelled_error_wakeup_main, NULL));
}

static int cancelled_error_re_aquire_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    bool wake = false;
    cw w = mk(&cond, COSYNC_FOREVER, true);
    w.flag = &wake;
    w.next = true;
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    wake = true;
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_yield());
    /* it is re-acquiring the lock: cancel it there */
    CHECK_OK(cosync_task_cancel(t));
    CHECK_OK(cosync_cond_release(&cond));
    /* Python raises CancelledError from wait_for; cosync keeps the notify:
     * wait_for returns 0 (the predicate is true, the lock held) and the
     * cancellation comes at the next suspension */
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_OK(w.rc);
    CHECK(w.held);
    CHECK_ERR(w.next_rc, COSYNC_ECANCELED);
    return 0;
}

TEST(test_cancelled_error_re_aquire)
{
    CHECK_OK(run_main(cancelled_error_re_aquire_main, NULL));
}

/* test_cancelled_wakeup(_relock): consumers of a counted state */
typedef struct shared {
    cosync_cond cond;
    int state;
} shared;

static bool state_nonzero(void *arg)
{
    return ((shared *)arg)->state != 0;
}

static bool state_zero(void *arg)
{
    return ((shared *)arg)->state == 0;
}

static int consumer(void *arg, void **result)
{
    (void)result;
    shared *s = arg;
    CHECK_OK(cosync_cond_acquire(&s->cond, COSYNC_FOREVER));
    for (;;) {
        int rc = cosync_cond_wait_for(&s->cond, state_nonzero, s, COSYNC_FOREVER);
        CHECK(i_hold(&s->cond));
        if (rc || s->state < 0) {
            CHECK_OK(cosync_cond_release(&s->cond));
            return rc;
        }
        s->state -= 1;
    }
}

static int cancelled_wakeup_main(void *arg, void **result)
{
    (void)result;
    bool relock = arg != NULL;
    t0 = cosync_now();
    shared s = {COSYNC_COND_INIT, 0};
    cosync_task c[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&c[i], consumer, &s, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&s.cond, COSYNC_FOREVER));
    s.state += 1;
    CHECK_EQ(cosync_cond_notify(&s.cond, 1), 1);
    if (relock) {
        CHECK_OK(cosync_yield()); /* c[0] settles on re-acquiring the lock */
        CHECK_EQ(cosync_lock_waiters(cosync_cond_lock(&s.cond)), 1);
    }
    CHECK_OK(cosync_task_cancel(c[0]));
    /* wait for the item to be consumed: if the notify were lost to the
     * cancel, nobody would consume it */
    int rc = cosync_cond_wait_for(&s.cond, state_zero, &s, AT(10));
    CHECK(i_hold(&s.cond));
    CHECK_EQ(s.state, 0);
    /* the item was consumed (by c[1], to which c[0] forwarded the notify,
     * or by c[0] itself when it was already re-acquiring the lock); nobody
     * notifies this wait: it times out */
    CHECK_ERR(rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(10));
    s.state = -1;
    CHECK_EQ(cosync_cond_notify_all(&s.cond), 1);
    CHECK_OK(cosync_cond_release(&s.cond));
    CHECK_ERR(join_status(c[0]), COSYNC_ECANCELED);
    join_ok(c[1]);
    return 0;
}

TEST(test_cancelled_wakeup)
{
    CHECK_OK(run_main(cancelled_wakeup_main, NULL));
}

TEST(test_cancelled_wakeup_relock)
{
    CHECK_OK(run_main(cancelled_wakeup_main, (void *)1));
}

/* ========================================================================
 * Beyond asyncio's tests
 * ===================================================================== */

static int notify_then_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    cw w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mk(&cond, COSYNC_FOREVER, true);
        w[i].next = true;
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_task_cancel(t[0]));      /* at once, before it runs */
    CHECK_EQ(cosync_cond_waiters(&cond), 1); /* forwarded to t[1] */
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_ERR(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(w[0].rc, COSYNC_ECANCELED); /* its wait ended cancelled... */
    CHECK(w[0].held);
    CHECK_EQ(w[0].woke_at, AT(0));
    join_ok(t[1]); /* ...and t[1] got the notify: none was lost */
    CHECK_OK(w[1].rc);
    CHECK_OK(w[1].next_rc);
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    CHECK_EQ(w[2].rc, 1); /* still waiting */
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify_all(&cond), 1);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(t[2]);
    CHECK_OK(w[2].rc);
    return 0;
}

TEST(notify_then_cancel_the_notified_waiter_forwards_the_notify)
{
    CHECK_OK(run_main(notify_then_cancel_main, NULL));
}

/* A notify forwarded more than once. notify(1), then the notified waiter
 * and the one it forwarded to are both cancelled before either ran: the
 * notify moves on twice and reaches the third. notify(2), then the first
 * of the two is cancelled: its notify goes past the second (which keeps
 * its own) to the third. Either way as many waits return 0 as notifies
 * were given, and the fourth waiter keeps waiting. */
static int forward_twice_main(void *arg, void **result)
{
    (void)result;
    bool notify_two = arg != NULL;
    cosync_cond cond = COSYNC_COND_INIT;
    cw w[4];
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        w[i] = mk(&cond, COSYNC_FOREVER, true);
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    if (notify_two) {
        CHECK_EQ(cosync_cond_notify(&cond, 2), 2);
        CHECK_OK(cosync_task_cancel(t[0])); /* forwards to t[2] */
    } else {
        CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
        CHECK_OK(cosync_task_cancel(t[0])); /* forwards to t[1] */
        CHECK_EQ(cosync_cond_waiters(&cond), 2);
        CHECK_OK(cosync_task_cancel(t[1])); /* forwards again, to t[2] */
    }
    CHECK_EQ(cosync_cond_waiters(&cond), 1); /* t[3] */
    CHECK_OK(cosync_cond_release(&cond));
    join_expect(t[0], COSYNC_ECANCELED);
    CHECK_ERR(w[0].rc, COSYNC_ECANCELED);
    CHECK(w[0].held);
    if (notify_two) {
        join_ok(t[1]);
        CHECK_OK(w[1].rc);
    } else {
        join_expect(t[1], COSYNC_ECANCELED);
        CHECK_ERR(w[1].rc, COSYNC_ECANCELED);
    }
    CHECK(w[1].held);
    join_ok(t[2]);
    CHECK_OK(w[2].rc);
    CHECK_EQ(w[3].rc, 1); /* still waiting: no notify was duplicated */
    CHECK_EQ(cosync_cond_waiters(&cond), 1);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify_all(&cond), 1);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(t[3]);
    CHECK_OK(w[3].rc);
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(a_notify_forwarded_twice_by_cancelled_waiters_reaches_the_next)
{
    CHECK_OK(run_main(forward_twice_main, NULL));      /* notify(1), two cancelled */
    CHECK_OK(run_main(forward_twice_main, (void *)1)); /* notify(2), the first cancelled */
}

static int granted_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    /* notified, then its deadline passes while it waits for the lock: the
     * wait still returns 0 (the notify is kept) once the lock is free */
    cosync_cond cond = COSYNC_COND_INIT;
    cw w = mk(&cond, AT(5), true);
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_sleep(COSYNC_MS(10))); /* holding the lock past AT(5) */
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(t);
    CHECK_OK(w.rc);
    CHECK_EQ(w.woke_at, AT(10));
    return 0;
}

TEST(notified_waiter_past_its_deadline_keeps_the_notify)
{
    CHECK_OK(run_main(granted_deadline_main, NULL));
}

#define NW 5

static int reacquire_order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    cw w[NW];
    cosync_task t[NW];
    for (int i = 0; i < NW; i++) {
        w[i] = mk(&cond, COSYNC_FOREVER, true);
        w[i].checkpoint = i + 1;
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_cond_waiters(&cond), NW);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    /* a task already queued on the lock goes first */
    cw first = mk(&cond, COSYNC_FOREVER, true);
    first.checkpoint = 0;
    cosync_task tf;
    CHECK_OK(cosync_task_spawn(&tf, acquire_cp, &first, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_lock_waiters(cosync_cond_lock(&cond)), 1);
    /* notify in two steps: 2 then the rest, in FIFO order */
    CHECK_EQ(cosync_cond_notify(&cond, 2), 2);
    CHECK_EQ(cosync_cond_notify_all(&cond), NW - 2);
    CHECK_OK(cosync_yield()); /* they all queue for the lock, in order */
    CHECK_EQ(cosync_lock_waiters(cosync_cond_lock(&cond)), NW + 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER)); /* behind all */
    CHECKPOINTS_DONE(NW + 1);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(tf);
    CHECK_OK(first.rc);
    for (int i = 0; i < NW; i++) {
        join_ok(t[i]);
        CHECK_OK(w[i].rc);
    }
    return 0;
}

TEST(reacquire_order_is_the_notify_order)
{
    CHECK_OK(run_main(reacquire_order_main, NULL));
}

/* Waiters 0..NW-1 wait in index order; the one at @pos (0, 2 or 4: head,
 * middle, tail) leaves the queue, by cancellation at AT(0) or by its
 * deadline at AT(5). Four notify(1) then wake the other four one at a time,
 * in the order they began to wait: the leaver takes no notify with it (a
 * stale queue entry would swallow one and wake nobody) and does not
 * disturb the order, and its own wait came back holding the lock. */
typedef struct leave_case {
    int pos;
    bool by_deadline;
} leave_case;

static int leave_main(void *arg, void **result)
{
    (void)result;
    const leave_case *lc = arg;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    cw w[NW];
    cosync_task t[NW];
    int cp = 0;
    for (int i = 0; i < NW; i++) {
        bool gone = i == lc->pos;
        w[i] = mk(&cond, gone && lc->by_deadline ? AT(5) : COSYNC_FOREVER, true);
        w[i].checkpoint = gone ? -1 : cp++; /* the rest wake in this order */
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield()); /* they wait in spawn order */
    CHECK_EQ(cosync_cond_waiters(&cond), NW);

    cw *g = &w[lc->pos];
    if (lc->by_deadline) {
        join_ok(t[lc->pos]);
        CHECK_ERR(g->rc, COSYNC_ETIMEDOUT);
        CHECK_EQ(g->woke_at, AT(5));
    } else {
        CHECK_OK(cosync_task_cancel(t[lc->pos]));
        join_expect(t[lc->pos], COSYNC_ECANCELED);
        CHECK_ERR(g->rc, COSYNC_ECANCELED);
        CHECK_EQ(g->woke_at, AT(0));
    }
    CHECK(g->held);                    /* its wait returned with the lock... */
    CHECK(!cosync_cond_locked(&cond)); /* ...which it then released */
    CHECK_EQ(cosync_cond_waiters(&cond), NW - 1);
    CHECKPOINTS_DONE(0); /* nobody else woke */

    /* one notify at a time, each let run before the next */
    int64_t base = cosync_now();
    for (int r = 0; r < NW - 1; r++) {
        CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
        CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
        CHECK_EQ(cosync_cond_waiters(&cond), NW - 2 - r);
        CHECK_OK(cosync_cond_release(&cond));
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        CHECKPOINTS_DONE(r + 1); /* exactly one more woke: the next in line */
    }
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    for (int i = 0, r = 0; i < NW; i++) {
        if (i == lc->pos)
            continue;
        join_ok(t[i]);
        CHECK_OK(w[i].rc);
        CHECK(w[i].held);
        CHECK_EQ(w[i].woke_at, base + COSYNC_MS(r)); /* at its own notify */
        r++;
    }
    /* nobody is left for a fifth notify */
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 0);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(cancelled_and_timed_out_waiters_at_head_middle_and_tail_lose_no_notify)
{
    for (int by_deadline = 0; by_deadline < 2; by_deadline++)
        for (int pos = 0; pos < NW; pos += 2) {
            leave_case lc = {.pos = pos, .by_deadline = by_deadline};
            CHECKPOINT_RESET();
            CHECK_OK(run_main(leave_main, &lc));
            CHECKPOINTS_DONE(NW - 1);
        }
}

/* A burst: notify_all wakes 100 waiters within the call (no switch); they
 * take the lock back and return in the order they began to wait, each
 * within two scheduler steps of the one before (the first within two of
 * the notify): the definition of burst_of_releases_with_many_waiters in
 * test_lock.c. Each releases the lock as soon as its wait returns. */
#define NBURST 100

static int burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    static cw w[NBURST];
    cosync_task t[NBURST];
    for (int i = 0; i < NBURST; i++) {
        w[i] = mk(&cond, COSYNC_FOREVER, true);
        w[i].checkpoint = i;
        t[i] = spawn_cw(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_cond_waiters(&cond), NBURST);
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    uint64_t sw = switches();
    CHECK_EQ(cosync_cond_notify_all(&cond), NBURST);
    CHECK_EQ(switches(), sw);
    CHECK_EQ(ready_tasks(), NBURST);
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_gather(t, NBURST, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(NBURST);
    CHECK_GT(w[0].woke_switches, sw);
    CHECK_LE(w[0].woke_switches - sw, 2);
    for (int i = 0; i < NBURST; i++) {
        CHECK_OK(w[i].rc);
        CHECK_EQ(w[i].woke_at, t0);
        if (i > 0) {
            CHECK_GT(w[i].woke_switches, w[i - 1].woke_switches);
            CHECK_LE(w[i].woke_switches - w[i - 1].woke_switches, 2);
        }
    }
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(notify_all_burst_wakes_100_waiters_in_order_two_steps_apart)
{
    CHECK_OK(run_main(burst_main, NULL));
}

/* A task that takes the lock at @delay and holds it for @hold. */
typedef struct holder {
    cosync_cond *cond;
    int64_t delay, hold;
} holder;

static int holder_fn(void *arg, void **result)
{
    (void)result;
    holder *h = arg;
    CHECK_OK(cosync_sleep(h->delay));
    CHECK_OK(cosync_cond_acquire(h->cond, COSYNC_FOREVER));
    CHECK_OK(cosync_sleep(h->hold));
    CHECK_OK(cosync_cond_release(h->cond));
    return 0;
}

static char *dump(void)
{
    int ntasks;
    char *buf = dump_text(&ntasks);
    CHECK(ntasks > 0);
    return buf;
}

static int deadline_states_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    cosync_lock *lock = cosync_cond_lock(&cond);
    char want[256];

    /* deadline 0 and a passed deadline: the lock is never let go */
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    uint64_t sw = switches();
    CHECK_ERR(cosync_cond_wait(&cond, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_cond_wait(&cond, t0), COSYNC_ETIMEDOUT);
    bool no = false;
    CHECK_ERR(cosync_cond_wait_for(&cond, flag_pred, &no, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw);
    CHECK(i_hold(&cond));
    CHECK_OK(cosync_cond_release(&cond));

    /* expiry while waiting for the notify, the lock free: at the deadline */
    cw a = mk(&cond, AT(5), true);
    cosync_task ta = spawn_cw(&a);
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    char *d = dump();
    snprintf(want, sizeof want, "waits on condition %p (lock %p) (with a deadline)", (void *)&cond,
             (void *)lock);
    if (!strstr(d, want))
        CHECK_STREQ(d, want);
    free(d);
    join_ok(ta);
    CHECK_ERR(a.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(a.woke_at, AT(5));
    CHECK(a.held);

    /* expiry while the lock is busy: h takes it at AT(8) and holds it to
     * AT(15); b's deadline is AT(10); b is cancelled at AT(12) while it
     * re-acquires: the wait returns ETIMEDOUT at AT(15) with the lock held,
     * and the cancellation comes at b's next suspension */
    holder h = {&cond, COSYNC_MS(3), COSYNC_MS(7)};
    cosync_task th;
    CHECK_OK(cosync_task_spawn(&th, holder_fn, &h, &(cosync_task_opts){.name = "h"}));
    cw b = mk(&cond, AT(10), true);
    b.next = true;
    cosync_task tb;
    CHECK_OK(cosync_task_spawn(&tb, cw_fn, &b, &(cosync_task_opts){.name = "b"}));
    CHECK_OK(cosync_sleep(COSYNC_MS(7)));
    CHECK_EQ(cosync_now(), AT(12));
    CHECK_EQ(cosync_lock_waiters(lock), 1);
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    d = dump();
    snprintf(want, sizeof want, "task 'b' (#%llu) waits on lock %p held by task 'h' (#%llu)\n",
             (unsigned long long)cosync_task_id(tb), (void *)lock,
             (unsigned long long)cosync_task_id(th));
    if (!strstr(d, want))
        CHECK_STREQ(d, want);
    free(d);
    CHECK_OK(cosync_task_cancel(tb));
    CHECK_EQ(cosync_lock_waiters(lock), 1); /* not interrupted */
    CHECK_ERR(join_status(tb), COSYNC_ECANCELED);
    join_ok(th);
    CHECK_ERR(b.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(b.woke_at, AT(15));
    CHECK(b.held);
    CHECK_ERR(b.next_rc, COSYNC_ECANCELED);

    /* wait_for: one deadline for the whole, across notifies */
    cw c = mk(&cond, AT(30), true);
    c.flag = &no;
    cosync_task tc = spawn_cw(&c);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_sleep(COSYNC_MS(4)));
        CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
        CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
        CHECK_OK(cosync_cond_release(&cond));
    }
    join_ok(tc);
    CHECK_ERR(c.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(c.woke_at, AT(30));
    CHECK(!cosync_cond_locked(&cond));
    return 0;
}

TEST(deadline_expiry_in_every_waiting_state)
{
    CHECK_OK(run_main(deadline_states_main, NULL));
}

static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_cond cond = COSYNC_COND_INIT;
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_cond_acquire(&cond, COSYNC_FOREVER));
    cw other = mk(&cond, COSYNC_FOREVER, true);
    other.checkpoint = 0;
    cosync_task to;
    CHECK_OK(cosync_task_spawn(&to, acquire_cp, &other, NULL));
    CHECK_OK(cosync_yield());
    /* a request pending before the wait: deadline 0 leaves it pending (no
     * suspension, the lock kept) */
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(cosync_cond_wait(&cond, 0), COSYNC_EAGAIN);
    CHECK(i_hold(&cond));
    /* a wait delivers it, even one whose deadline has passed (the request
     * wins over the deadline): the lock goes to the waiting task meanwhile */
    CHECK_ERR(cosync_cond_wait(&cond, t0), COSYNC_ECANCELED);
    CHECKPOINT(1);
    CHECK(i_hold(&cond));
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(to);
    CHECK_OK(other.rc);
    CHECK_EQ(cosync_now(), t0);
    return 0;
}

TEST(wait_with_a_cancellation_pending)
{
    CHECK_OK(run_main(pending_cancel_main, NULL));
    CHECKPOINTS_DONE(2);
}

/* ---- misuse ---------------------------------------------------------- */

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond = COSYNC_COND_INIT;
    /* the lock held by another task */
    cw h = mk(&cond, 0, false);
    cosync_task th;
    CHECK_OK(cosync_task_spawn(&th, acquire_rc, &h, NULL));
    join_ok(th);
    CHECK_OK(h.rc);
    CHECK(cosync_cond_locked(&cond));
    CHECK_ERR(cosync_cond_wait(&cond, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify_all(&cond), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY); /* own lock held */
    errcap cap;
    errcap_begin(&cap);
    CHECK_OK(cosync_cond_release(&cond));
    errcap_end(&cap);
    CHECK_EQ(count_lines(cap.text), DEBUG_LINES(1));
    /* notify(-1) */
    CHECK_OK(cosync_cond_acquire(&cond, 0));
    CHECK_ERR(cosync_cond_notify(&cond, -1), COSYNC_EINVAL);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_ERR(cosync_cond_notify(&cond, -1), COSYNC_EINVAL);
    /* destroy while waited on */
    cw w = mk(&cond, COSYNC_FOREVER, true);
    cosync_task tw = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY);
    CHECK_OK(cosync_task_cancel(tw));
    CHECK_ERR(join_status(tw), COSYNC_ECANCELED);
    /* the own lock waited on */
    CHECK_OK(cosync_cond_acquire(&cond, 0));
    cw q = mk(&cond, COSYNC_FOREVER, true);
    cosync_task tq;
    CHECK_OK(cosync_task_spawn(&tq, acquire_rc, &q, NULL));
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY);
    CHECK_OK(cosync_cond_release(&cond));
    join_ok(tq);
    CHECK_OK(q.rc);
    errcap_begin(&cap);
    CHECK_OK(cosync_cond_release(&cond)); /* q finished holding it */
    errcap_end(&cap);
    /* destroy; then every call is EINVAL */
    CHECK_OK(cosync_cond_destroy(&cond));
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_acquire(&cond, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_release(&cond), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait(&cond, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait_for(&cond, always, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_notify_all(&cond), COSYNC_EINVAL);
    CHECK(!cosync_cond_locked(&cond));
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    /* init makes it usable again */
    cosync_cond_init(&cond, NULL);
    CHECK_OK(cosync_cond_acquire(&cond, 0));
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_OK(cosync_cond_destroy(&cond));

    /* on a shared lock: destroy leaves the lock alone, even held */
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_cond c2;
    cosync_cond_init(&c2, &lock);
    CHECK_OK(cosync_lock_acquire(&lock, 0));
    CHECK_OK(cosync_cond_destroy(&c2));
    CHECK(cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_lock_destroy(&lock));
    /* a condition on a destroyed lock */
    cosync_cond_init(&c2, &lock);
    CHECK_ERR(cosync_cond_acquire(&c2, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait(&c2, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_notify(&c2, 1), COSYNC_EINVAL);
    /* its own lock destroyed through cosync_cond_lock: destroy still ends it */
    cosync_cond_init(&c2, NULL);
    CHECK_OK(cosync_lock_destroy(cosync_cond_lock(&c2)));
    CHECK_ERR(cosync_cond_acquire(&c2, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_cond_destroy(&c2));
    CHECK_ERR(cosync_cond_destroy(&c2), COSYNC_EINVAL);
    return 0;
}

TEST(misuse_errors)
{
    CHECK_OK(run_main(misuse_main, NULL));
    /* outside a task */
    cosync_cond cond = COSYNC_COND_INIT;
    CHECK_ERR(cosync_cond_acquire(&cond, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_wait(&cond, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EPERM);
    CHECK_ERR(cosync_cond_release(&cond), COSYNC_EPERM);
    CHECK_OK(cosync_cond_destroy(&cond));
}

/* Destroy is refused while any task is inside wait, even one that is on no
 * list any more (notified, cancelled or timed out, and not yet back with
 * the lock); a shared lock destroyed under a wait makes it fail, not hang. */
typedef struct shared_waiter {
    cosync_cond *cond;
    int rc;
} shared_waiter;

static int shared_waiter_fn(void *arg, void **result)
{
    (void)result;
    shared_waiter *s = arg;
    CHECK_OK(cosync_cond_acquire(s->cond, COSYNC_FOREVER));
    s->rc = cosync_cond_wait(s->cond, COSYNC_FOREVER);
    return 0;
}

static int destroy_while_waits_return_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond cond;
    cosync_cond_init(&cond, NULL);
    /* notified, not yet back */
    cw w = mk(&cond, COSYNC_FOREVER, true);
    cosync_task t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_cond_acquire(&cond, 0));
    CHECK_EQ(cosync_cond_notify(&cond, 1), 1);
    CHECK_OK(cosync_cond_release(&cond));
    CHECK_EQ(cosync_cond_waiters(&cond), 0);
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY);
    join_ok(t);
    CHECK_OK(w.rc);
    /* cancelled, not yet back */
    w = mk(&cond, COSYNC_FOREVER, true);
    t = spawn_cw(&w);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY);
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    /* timed out, not yet back: main's timer, armed first, fires first */
    int64_t at = cosync_now() + COSYNC_MS(5);
    w = mk(&cond, at, true);
    t = spawn_cw(&w);
    CHECK_OK(cosync_sleep_until(at));
    CHECK_EQ(w.rc, 1); /* not back yet */
    CHECK_ERR(cosync_cond_destroy(&cond), COSYNC_EBUSY);
    join_ok(t);
    CHECK_ERR(w.rc, COSYNC_ETIMEDOUT);
    CHECK_OK(cosync_cond_destroy(&cond));

    /* a shared lock destroyed while a task waits on a condition on it */
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_cond c2;
    cosync_cond_init(&c2, &lock);
    shared_waiter s = {&c2, 1};
    CHECK_OK(cosync_task_spawn(&t, shared_waiter_fn, &s, NULL));
    CHECK_OK(cosync_yield());
    CHECK(!cosync_lock_locked(&lock));
    CHECK_OK(cosync_lock_destroy(&lock)); /* free, no lock waiters: it cannot tell */
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(s.rc, COSYNC_EINVAL);
    CHECK_OK(cosync_cond_destroy(&c2));
    return 0;
}

TEST(destroy_refused_until_every_wait_is_back)
{
    CHECK_OK(run_main(destroy_while_waits_return_main, NULL));
}

/* ---- the seed's examples --------------------------------------------- */

/* 6.3.2: a waiter waits for the updater's notify_all after 2 s */
typedef struct seed632 {
    cosync_cond cond;
    int shared_resource;
    int seen;
    int64_t seen_at;
} seed632;

static int seed_waiter(void *arg, void **result)
{
    (void)result;
    seed632 *s = arg;
    CHECK_OK(cosync_cond_acquire(&s->cond, COSYNC_FOREVER));
    CHECK_OK(cosync_cond_wait(&s->cond, COSYNC_FOREVER));
    s->seen = s->shared_resource;
    s->seen_at = cosync_now();
    CHECK_OK(cosync_cond_release(&s->cond));
    return 0;
}

static int seed_updater(void *arg, void **result)
{
    (void)result;
    seed632 *s = arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
    s->shared_resource = 42;
    CHECK_OK(cosync_cond_acquire(&s->cond, COSYNC_FOREVER));
    CHECK_EQ(cosync_cond_notify_all(&s->cond), 1);
    CHECK_OK(cosync_cond_release(&s->cond));
    return 0;
}

static int seed632_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    seed632 s = {COSYNC_COND_INIT, 0, 0, 0};
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], seed_waiter, &s, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], seed_updater, &s, NULL));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_EQ(s.seen, 42);
    CHECK_EQ(s.seen_at, AT(2000));
    return 0;
}

TEST(seed_condition_waiter_and_updater)
{
    CHECK_OK(run_main(seed632_main, NULL));
}

/* The seed's bounded buffer and priority queue: conditions that share one
 * lock (not_empty, not_full), producers and consumers. */
#define CAP 2
#define NPROD 3
#define NITEMS 5

typedef struct buffer {
    cosync_lock lock;
    cosync_cond not_empty, not_full;
    int items[CAP];
    int head, count;
    int consumed[NPROD * NITEMS];
    int nconsumed;
} buffer;

static bool has_item(void *arg)
{
    return ((buffer *)arg)->count > 0;
}

static bool has_space(void *arg)
{
    return ((buffer *)arg)->count < CAP;
}

typedef struct prod {
    buffer *b;
    int id;
} prod;

static int producer(void *arg, void **result)
{
    (void)result;
    prod *p = arg;
    buffer *b = p->b;
    for (int i = 0; i < NITEMS; i++) {
        CHECK_OK(cosync_lock_acquire(&b->lock, COSYNC_FOREVER));
        CHECK_OK(cosync_cond_wait_for(&b->not_full, has_space, b, COSYNC_FOREVER));
        b->items[(b->head + b->count++) % CAP] = p->id * 100 + i;
        CHECK_GE(cosync_cond_notify(&b->not_empty, 1), 0);
        CHECK_OK(cosync_lock_release(&b->lock));
        CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    }
    return 0;
}

static int consumer_fn(void *arg, void **result)
{
    (void)result;
    buffer *b = arg;
    for (;;) {
        CHECK_OK(cosync_cond_acquire(&b->not_empty, COSYNC_FOREVER));
        int rc = cosync_cond_wait_for(&b->not_empty, has_item, b, COSYNC_FOREVER);
        if (rc) {
            CHECK_OK(cosync_cond_release(&b->not_empty));
            return rc;
        }
        b->consumed[b->nconsumed++] = b->items[b->head];
        b->head = (b->head + 1) % CAP;
        b->count--;
        CHECK_GE(cosync_cond_notify(&b->not_full, 1), 0);
        CHECK_OK(cosync_cond_release(&b->not_empty));
        rc = cosync_sleep(COSYNC_MS(10)); /* cancelled here, or in the wait */
        if (rc)
            return rc;
    }
}

static int buffer_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static buffer b;
    memset(&b, 0, sizeof b);
    cosync_lock_init(&b.lock);
    cosync_cond_init(&b.not_empty, &b.lock);
    cosync_cond_init(&b.not_full, &b.lock);
    prod p[NPROD];
    cosync_task tp[NPROD], tc[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&tc[i], consumer_fn, &b, NULL));
    for (int i = 0; i < NPROD; i++) {
        p[i] = (prod){&b, i + 1};
        CHECK_OK(cosync_task_spawn(&tp[i], producer, &p[i], NULL));
    }
    CHECK_OK(cosync_gather(tp, NPROD, NULL, COSYNC_FOREVER));
    while (b.nconsumed < NPROD * NITEMS)
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    cosync_outcome out[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_cancel(tc[i]));
    CHECK_OK(cosync_gather(tc, 2, out, COSYNC_FOREVER));
    for (int i = 0; i < 2; i++)
        CHECK_ERR(out[i].status, COSYNC_ECANCELED);
    /* every item once; each producer's items in order */
    int next[NPROD + 1] = {0};
    for (int k = 0; k < NPROD * NITEMS; k++) {
        int id = b.consumed[k] / 100, i = b.consumed[k] % 100;
        CHECK_EQ(i, next[id]);
        next[id]++;
    }
    for (int id = 1; id <= NPROD; id++)
        CHECK_EQ(next[id], NITEMS);
    CHECK(!cosync_lock_locked(&b.lock));
    CHECK_OK(cosync_cond_destroy(&b.not_empty));
    CHECK_OK(cosync_cond_destroy(&b.not_full));
    CHECK_OK(cosync_lock_destroy(&b.lock));
    return 0;
}

TEST(seed_bounded_buffer_two_conditions_on_one_lock)
{
    CHECK_OK(run_main(buffer_main, NULL));
}

/* ---- the deadlock report --------------------------------------------- */

TEST(deadlock_report_names_the_condition)
{
    cosync_cond cond = COSYNC_COND_INIT;
    cw w = mk(&cond, COSYNC_FOREVER, true);
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, cw_fn, &w, "w", &m);
    const char *buf = report.buf;
    char want[256];
    snprintf(want, sizeof want, "task 'w' (#1) waits on condition %p (lock %p)\n", (void *)&cond,
             (void *)&cond.own_lock);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels w: it re-acquires, releases */
    capture_free(&report);
    CHECK_ERR(w.rc, COSYNC_ECANCELED);
    CHECK(!cosync_cond_locked(&cond));
}

/* A condition destroyed on a shared lock that is still alive refuses every
 * call with COSYNC_EINVAL, and says it is not locked, as one on its own
 * lock does (misuse_errors): the live lock must not let calls through. */
static int dead_cond_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_lock lock = COSYNC_LOCK_INIT;
    cosync_cond cond;
    cosync_cond_init(&cond, &lock);
    CHECK_OK(cosync_cond_destroy(&cond));
    /* the shared lock is alive and free: only the condition is dead */
    CHECK_ERR(cosync_cond_acquire(&cond, 0), COSYNC_EINVAL);
    CHECK(!cosync_lock_locked(&lock)); /* and the call took nothing */
    CHECK_ERR(cosync_cond_acquire(&cond, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK(!cosync_lock_locked(&lock));
    /* held through the lock itself: the dead condition still refuses */
    CHECK_OK(cosync_lock_acquire(&lock, 0));
    CHECK(!cosync_cond_locked(&cond)); /* as after the destroy of one on its own lock */
    CHECK_ERR(cosync_cond_notify(&cond, 1), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_notify_all(&cond), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait(&cond, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_release(&cond), COSYNC_EINVAL);
    CHECK(cosync_lock_locked(&lock)); /* the release through the dead condition did nothing */
    CHECK_OK(cosync_lock_release(&lock));
    CHECK_OK(cosync_lock_destroy(&lock));
    return 0;
}

TEST(destroyed_condition_on_a_shared_lock_refuses_every_call)
{
    run_main_ok(dead_cond_main, NULL);
}

int main(void)
{
    RUN(test_wait);
    RUN(test_wait_cancel);
    RUN(test_wait_cancel_contested);
    RUN(test_wait_cancel_after_notify);
    RUN(test_wait_unacquired);
    RUN(test_wait_for);
    RUN(test_wait_for_unacquired);
    RUN(test_notify);
    RUN(test_notify_all);
    RUN(test_notify_unacquired);
    RUN(test_notify_all_unacquired);
    RUN(test_repr);
    RUN(test_context_manager);
    RUN(test_explicit_lock);
    RUN(test_ambiguous_loops);
    RUN(wait_ends_without_the_lock_another_loop_queued_on);
    RUN(notify_refused_while_a_task_of_another_loop_queues_on_the_lock);
    RUN(test_timeout_in_block);
    RUN(test_cancelled_error_wakeup);
    RUN(test_cancelled_error_re_aquire);
    RUN(test_cancelled_wakeup);
    RUN(test_cancelled_wakeup_relock);
    RUN(notify_then_cancel_the_notified_waiter_forwards_the_notify);
    RUN(a_notify_forwarded_twice_by_cancelled_waiters_reaches_the_next);
    RUN(notified_waiter_past_its_deadline_keeps_the_notify);
    RUN(reacquire_order_is_the_notify_order);
    RUN(cancelled_and_timed_out_waiters_at_head_middle_and_tail_lose_no_notify);
    RUN(notify_all_burst_wakes_100_waiters_in_order_two_steps_apart);
    RUN(deadline_expiry_in_every_waiting_state);
    RUN(wait_with_a_cancellation_pending);
    RUN(misuse_errors);
    RUN(destroy_refused_until_every_wait_is_back);
    RUN(seed_condition_waiter_and_updater);
    RUN(seed_bounded_buffer_two_conditions_on_one_lock);
    RUN(deadlock_report_names_the_condition);
    RUN(destroyed_condition_on_a_shared_lock_refuses_every_call);
    return 0;
}
