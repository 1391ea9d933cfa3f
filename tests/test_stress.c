/* ctest-timeout: 120 */
/*
 * test_stress.c - a deterministic randomized stress test of the primitives
 * under cancellation.
 *
 * For each of several fixed seeds, up to 30 worker tasks loop doing random
 * operations, with random deadlines (FOREVER, 0, a passed one, now + a few
 * microseconds), on shared objects: a Lock, a Condition on that lock guarding
 * a counter (wait and wait_for), a weighted Semaphore, an RWLock, a bounded
 * FIFO Queue and a bounded PriorityQueue of ints (put, get, put_many,
 * get_many), a Barrier (with the odd abort and reset), an Event, a
 * WaitGroup (add, done, wait), a Latch (count_down, wait; destroyed and
 * set up again once open) and a Future (completed with a value, an error
 * or a cancel; waited for; set up again once done and nobody waits),
 * interleaved with sleeps and yields; a lock holder may nest a semaphore
 * or rwlock operation (always in the order lock -> rwlock/semaphore, so that the test itself never
 * deadlocks). A "chaos" task cancels random workers at random times; half of the workers withdraw
 * the request with cosync_task_uncancel when they catch COSYNC_ECANCELED, the other half just go
 * on. Every worker follows the API contract: it releases only what it holds and gives back
 * everything it holds after any failure.
 *
 * Checked continuously:
 *  - mutual exclusion: at most one task inside the lock; a writer inside the
 *    rwlock alone; the permits held never exceed the semaphore's initial
 *    value, and held + free never exceed it either;
 *  - the condition's wait always returns with the lock held, and wait_for
 *    calls its predicate with the lock held and returns 0 only when the
 *    predicate is true;
 *  - queues: every get returns an item that was put and is still in the
 *    queue; qsize equals the items put and not yet got; the priority queue
 *    gives the smallest (FIFO among equal priorities) of the items present;
 *    the FIFO queue never passes over an item unless it was handed to some
 *    other getter in flight; get_many returns its items in order;
 *  - the wait group's and the latch's counters are what the workers made
 *    them (a done below zero is refused, a count_down of an open latch
 *    says so); the future holds the first outcome given it (a second
 *    completion is refused); a wait on any of the three succeeds at once
 *    when its counter is zero or the future done, and returns 0 only once
 *    that came while it waited; its coming while it waited wakes it,
 *    unless a cancellation or the deadline came first;
 *  - every call returns one of its documented results for its deadline
 *    (EAGAIN only for deadline 0, ETIMEDOUT only for a finite deadline and
 *    only once the clock has reached it, ECANCELED never for deadline 0,
 *    EBROKEN only from the barrier; any other code fails with its name); a
 *    call that can complete at once succeeds;
 *  - cancellation: cosync_task_cancelling() equals the requests made minus
 *    the ones withdrawn; a COSYNC_ECANCELED always has a request behind it;
 *    a request known to be pending (it came while the task waited on a call
 *    that then succeeded or timed out: a kept grant) is delivered by the
 *    next yield or sleep; uncancel to 0 drops it.
 * Checked at the end (the main task sets a stop flag, joins the chaos task,
 * cancels every worker and gathers them with a far deadline):
 *  - gather returns 0 and each worker's status is exactly what its
 *    cancellation count says (0, or COSYNC_ECANCELED);
 *  - the lock is free, the permits are all back, the rwlock is free, no
 *    object has waiters (and each destroy succeeds), no timer is armed;
 *  - the queues drain in order, and over the whole run the items put equal
 *    the items got, in number and in sum; queue_join returns at once;
 *  - every completed barrier round handed out each index exactly once;
 *  - cosync_loop_run returns 0 (no deadlock) and the loop ends clean.
 *
 * Everything runs on the virtual clock, so a seed replays exactly.
 *
 * One seed in three spawns its workers and the chaos task eagerly
 * (cosync_task_opts.eager): each takes its first step inside its spawn,
 * before main spawns the next, and must have started when its spawn
 * returns; the rest is checked as above.
 *
 * One seed in four ends otherwise: once a random part of its operations
 * is done, main stops the loop and it is destroyed with the workers in
 * flight. The close cancels every task left (noted as requests, so that
 * the clean-ups it runs are held to the same checks); it must report none
 * stuck, and leave every lock, permit and slot free and no waiter on any
 * object (each destroy succeeds).
 *
 * Every other seed runs a second time with dense tasks (copied stacks;
 * every worker and the chaos task, or every odd-numbered worker, by turns).
 * Dense tasks run in the order plain ones would, so the second run must
 * make the same calls with the same results at the same virtual times as
 * the first: each operation's (worker, result, time) is compared with the
 * plain run's, and the first one that differs fails the test.
 *
 * Set STRESS_SEEDS / STRESS_OPS in the environment to run more.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "core.h" /* whether this build has dense tasks, and their shared stacks */

/* ========================================================================
 * Parameters
 * ===================================================================== */

/* Maxima; each seed picks its own values (seed 1: the maxima, 3 parties). */
#define MAX_WORKERS 30
#define MAX_PERMITS 6
#define FIFO_MAX 6
#define PQ_MAX 10
#define MAX_PARTIES 4
#define MAX_ITEMS (1 << PRIO_SHIFT)
#define PRIO_SHIFT 20
#define ID_MASK ((1 << PRIO_SHIFT) - 1)
#define NPRIO 6

/* ========================================================================
 * Shared state
 * ===================================================================== */

/* What the test knows of a worker's cancellation requests. */
enum { PEND_CLEAR, PEND_DEFINITE, PEND_UNKNOWN };

typedef struct worker {
    int id;
    cosync_task t;
    uint64_t rng;
    bool uncanceler;  /* withdraws the requests it catches */
    uint64_t req;     /* cancellation requests taken */
    int expected;     /* cosync_task_cancelling() should be this */
    int pend;         /* PEND_*: is a request waiting for delivery? */
    uint64_t pre_req; /* at the start of the current call */
    int pre_pend;
    uint64_t first_req_seq; /* S.seq of the first request during the call, or UINT64_MAX */
    /* while in cosync_event_wait: the first set meanwhile */
    bool ev_waiting;
    uint64_t ev_set_seq; /* UINT64_MAX: none */
    int64_t ev_set_time;
    /* the same while in a wait for a counter to reach zero or for the
     * future (ZERO_*): the moment that came meanwhile */
    int zero_wait;
    uint64_t zero_seq;
    int64_t zero_time;
    /* what it holds */
    bool in_lock;
    int64_t sem_held;
    int rd_held;
    bool wr_held;
    long ops;
    bool started; /* its body began */
    bool done;    /* its body returned */
} worker;

/* Result counters for the summary. */
enum { RES_OK, RES_AGAIN, RES_TIMEDOUT, RES_CANCELED, RES_BROKEN, RES_N };

static struct {
    cosync_lock lock;
    cosync_cond cond;
    cosync_sem sem;
    cosync_rwlock rw;
    cosync_queue fifo;
    cosync_queue pq;
    cosync_barrier bar;
    cosync_event ev;
    cosync_waitgroup wg;
    cosync_latch latch;
    cosync_future fut;

    /* this seed's configuration */
    int nworkers;
    int64_t permits;
    int fifo_max, pq_max;
    int parties;
    uint32_t chaos_us; /* the chaos task sleeps up to this long between cancels */

    uint64_t seed;
    int mode;   /* MODE_*: which tasks are dense */
    bool eager; /* main spawns the workers and the chaos task eagerly */
    /* one seed in eight: main stops the loop once this many operations
     * are done, and the loop is destroyed with the workers in flight */
    long close_at;
    bool closing;

    bool stop;
    uint64_t seq; /* orders cancellation requests and event sets */
    long total_ops;
    long target_ops;
    worker w[MAX_WORKERS];
    uint64_t chaos_rng;

    /* lock / condition */
    int in_lock;
    int lock_holder; /* worker id, -1 */
    long counter, produced, consumed;

    /* semaphore */
    int64_t sem_held;
    int sem_inflight[MAX_PERMITS + 2]; /* acquire calls under way, by request */

    /* rwlock */
    int rw_readers;
    int rw_writer;           /* worker id, -1 */
    int rw_inflight_writers; /* write acquire calls under way */

    /* queues */
    int next_id;
    uint8_t state[MAX_ITEMS]; /* 0 unused, 1 in fifo, 2 in pq, 3 got */
    uint8_t prio_of[MAX_ITEMS];
    uint32_t put_order[MAX_ITEMS];
    uint32_t fifo_seq, pq_seq;
    int fifo_present[FIFO_MAX + 1], fifo_n;
    int pq_present[PQ_MAX + 1], pq_n;
    int fifo_getters; /* tasks inside a FIFO get */
    long fifo_put_n, fifo_got_n, pq_put_n, pq_got_n;
    long long fifo_put_sum, fifo_got_sum, pq_put_sum, pq_got_sum;

    /* barrier */
    long bar_index[MAX_PARTIES];

    /* wait group and latch: their counters as the workers moved them;
     * the future: whether it is done, and its outcome */
    int64_t wg_count, latch_count;
    bool fut_done;
    int fut_status;
    void *fut_value;
    long zeros; /* times a counter reached zero with tasks waiting */

    /* summary */
    long res[RES_N];
    long cancels, uncancels, notifies, closes;
} S;

/* Which tasks of a seed are dense. */
enum { MODE_PLAIN, MODE_DENSE, MODE_MIXED };
static const char *const mode_name[] = {"plain", "dense", "mixed"};

static bool is_dense(int worker_id)
{
    return S.mode == MODE_DENSE || (S.mode == MODE_MIXED && worker_id % 2 == 1);
}

/* One operation of a worker as the trace records it. */
typedef struct step {
    int who; /* the worker's id */
    int rc;
    int64_t now;
} step;

/* The plain run's operations, in order; a dense run is compared with it
 * as it goes (pos: the next one to compare). */
static struct {
    step *steps;
    size_t n, cap, pos;
} trace;

/* Record an operation in the plain run; compare it in a dense run. */
static void trace_step(int who, int rc)
{
    step now = {who, rc, cosync_now()};
    if (S.mode == MODE_PLAIN) {
        if (trace.n == trace.cap) {
            trace.cap = trace.cap ? 2 * trace.cap : 4096;
            trace.steps = realloc(trace.steps, trace.cap * sizeof *trace.steps);
            CHECK(trace.steps != NULL);
        }
        trace.steps[trace.n++] = now;
        return;
    }
    if (trace.pos >= trace.n)
        CHECK__FAIL("seed %llu (%s): operation %zu by worker %d, after the plain run's last (%zu)",
                    (unsigned long long)S.seed, mode_name[S.mode], trace.pos, who, trace.n);
    const step *was = &trace.steps[trace.pos];
    if (was->who != who || was->rc != rc || was->now != now.now)
        CHECK__FAIL("seed %llu (%s): operation %zu was worker %d, %s at %lld in the plain run, "
                    "but is worker %d, %s at %lld",
                    (unsigned long long)S.seed, mode_name[S.mode], trace.pos, was->who,
                    cosync_err_name(was->rc), (long long)was->now, who, cosync_err_name(rc),
                    (long long)now.now);
    trace.pos++;
}

/* Totals over all seeds, for the summary line. */
static long tot_ops, tot_res[RES_N], tot_cancels, tot_uncancels, tot_items, tot_rounds, tot_closes,
    tot_zeros, tot_eager;

/* ========================================================================
 * Result checks
 * ===================================================================== */

#define A_BROKEN 1u

/* Fail unless @rc is a documented result of a blocking call with @deadline. */
static void check_code_(const char *what, int line, int rc, int64_t deadline, unsigned extra)
{
    if (rc >= 0) {
        S.res[RES_OK]++;
        return;
    }
    if (rc == COSYNC_EBROKEN && (extra & A_BROKEN)) {
        S.res[RES_BROKEN]++;
        return;
    }
    if (deadline == 0) {
        if (rc == COSYNC_EAGAIN) {
            S.res[RES_AGAIN]++;
            return;
        }
    } else if (deadline == COSYNC_FOREVER) {
        if (rc == COSYNC_ECANCELED) {
            S.res[RES_CANCELED]++;
            return;
        }
    } else {
        if (rc == COSYNC_ECANCELED) {
            S.res[RES_CANCELED]++;
            return;
        }
        if (rc == COSYNC_ETIMEDOUT) {
            if (cosync_now() < deadline)
                CHECK__FAIL("%s (line %d): COSYNC_ETIMEDOUT at %lld, before its deadline %lld",
                            what, line, (long long)cosync_now(), (long long)deadline);
            S.res[RES_TIMEDOUT]++;
            return;
        }
    }
    CHECK__FAIL("%s (line %d): returned %d (%s), not a documented result for deadline %lld", what,
                line, rc, cosync_err_name(rc), (long long)deadline);
}
#define check_code(what, rc, deadline, extra) check_code_(what, __LINE__, rc, deadline, extra)

/* ------------------------------------------------------------------------
 * Whether a call suspended: the loop's switch counter moved. A call that
 * can complete at once must succeed without a switch (fast paths do not
 * switch); a call that must wait must fail with COSYNC_EAGAIN for deadline
 * 0, without a switch, and must suspend for a deadline still ahead (or
 * COSYNC_FOREVER): no barging past the waiters. (Delivering a pending
 * cancellation yields, and a yield with nothing else ready is no switch; a
 * real wait always switches, to another task or to the loop.)
 * ---------------------------------------------------------------------- */

typedef struct expect {
    uint64_t sw0;
    size_t ready0;
    int64_t now0;
    int64_t dl;
    bool at_once;
    bool must_wait;
} expect;

static expect expect_begin(int64_t dl, bool at_once, bool must_wait)
{
    cosync_loop_stats st = loop_stats();
    return (expect){st.switches, st.tasks_ready, cosync_now(), dl, at_once, must_wait};
}

static void expect_end_(const char *what, int line, const expect *e, int rc)
{
    uint64_t sw = switches();
    if (e->at_once && (rc < 0 || sw != e->sw0))
        CHECK__FAIL("%s (line %d): could complete at once, but returned %s after %llu switches",
                    what, line, cosync_err_name(rc), (unsigned long long)(sw - e->sw0));
    if (e->must_wait) {
        if (e->dl == 0 && (rc != COSYNC_EAGAIN || sw != e->sw0))
            CHECK__FAIL("%s (line %d): had to wait, deadline 0: returned %s after %llu switches",
                        what, line, cosync_err_name(rc), (unsigned long long)(sw - e->sw0));
        /* (delivering a pending cancellation yields: with nothing else
         * ready, that is no switch) */
        if ((e->dl == COSYNC_FOREVER || e->dl > e->now0) && sw == e->sw0 &&
            !(rc == COSYNC_ECANCELED && e->ready0 == 0))
            CHECK__FAIL("%s (line %d): had to wait, but returned %s without suspending", what, line,
                        cosync_err_name(rc));
    }
}
#define expect_end(what, e, rc) expect_end_(what, __LINE__, e, rc)

/* A random deadline: FOREVER, 0 (try), passed (now), or now + up to 3 ms. */
static int64_t rand_deadline(worker *w)
{
    switch (rnd(&w->rng, 10)) {
    case 0:
    case 1:
    case 2:
        return COSYNC_FOREVER;
    case 3:
    case 4:
        return 0;
    case 5:
        return cosync_now();
    default:
        return cosync_now() + COSYNC_US(1 + rnd(&w->rng, 3000));
    }
}

/* ------------------------------------------------------------------------
 * The cancellation model. Every call of a worker that may suspend is
 * wrapped as CALL(w, suspends, expr): call_begin notes the requests taken
 * so far, call_end compares.
 *  - ECANCELED needs a request that may be pending (one from before the
 *    call, or one made during it); after it nothing is pending if that was
 *    the only one, else we cannot tell.
 *  - Another result, with a request made during the call: the task was
 *    suspended and the wait was granted (or timed out) before the request
 *    came, so the request is pending.
 *  - yield and sleep always suspend, so they deliver a pending request.
 * ---------------------------------------------------------------------- */

static void call_begin(worker *w)
{
    w->pre_req = w->req;
    w->pre_pend = w->pend;
    w->first_req_seq = UINT64_MAX;
}

static int call_end_(worker *w, int rc, bool suspends, int line)
{
    uint64_t during = w->req - w->pre_req;
    if (rc == COSYNC_ECANCELED) {
        if (w->pre_pend == PEND_CLEAR && during == 0)
            CHECK__FAIL("line %d: worker %d got COSYNC_ECANCELED with no cancellation requested",
                        line, w->id);
        CHECK_GT(w->expected, 0);
        w->pend = during + (w->pre_pend != PEND_CLEAR) <= 1 ? PEND_CLEAR : PEND_UNKNOWN;
    } else {
        if (suspends && w->pre_pend == PEND_DEFINITE)
            CHECK__FAIL("line %d: worker %d: a pending cancellation was not delivered by a "
                        "yield/sleep (it returned %s)",
                        line, w->id, cosync_err_name(rc));
        if (during > 0)
            w->pend = PEND_DEFINITE;
        else if (suspends)
            w->pend = PEND_CLEAR;
    }
    return rc;
}

#define CALL(w, suspends, expr) (call_begin(w), call_end_((w), (expr), (suspends), __LINE__))

/* A cancellation request taken for @w (by cosync_task_cancel, or by the
 * loop's close). */
static void note_request(worker *w)
{
    w->req++;
    w->expected++;
    if (w->first_req_seq == UINT64_MAX)
        w->first_req_seq = S.seq;
    S.seq++;
}

/* Request the cancellation of worker @i (chaos, and main at the end). */
static int do_cancel(int i)
{
    worker *w = &S.w[i];
    int rc = cosync_task_cancel(w->t);
    if (rc == 0) {
        note_request(w);
        S.cancels++;
    }
    return rc;
}

/* ========================================================================
 * Invariants
 * ===================================================================== */

static void check_global(void)
{
    CHECK_LE(S.in_lock, 1);
    if (S.lock_holder >= 0)
        CHECK(cosync_lock_locked(&S.lock));
    CHECK_EQ(S.in_lock, S.lock_holder >= 0);

    int64_t v = cosync_sem_value(&S.sem);
    CHECK_GE(v, 0);
    CHECK_GE(S.sem_held, 0);
    CHECK_LE(S.sem_held, S.permits);
    CHECK_LE(v + S.sem_held, S.permits);
    /* liveness: if tasks wait, the head's request (at most the largest
     * request under way) cannot be served by the free permits */
    if (cosync_sem_waiters(&S.sem) > 0) {
        int64_t largest = 0;
        for (int64_t n = 1; n <= MAX_PERMITS + 1; n++)
            if (S.sem_inflight[n] > 0)
                largest = n;
        if (v >= largest)
            CHECK__FAIL("semaphore: %zu waiting with %lld permits free (largest request %lld)",
                        cosync_sem_waiters(&S.sem), (long long)v, (long long)largest);
    }
    /* an unlocked lock has no waiters */
    if (cosync_lock_waiters(&S.lock) > 0)
        CHECK(cosync_lock_locked(&S.lock));

    CHECK_GE(S.rw_readers, 0);
    if (S.rw_writer >= 0) {
        CHECK_EQ(S.rw_readers, 0);
        CHECK(cosync_rwlock_write_locked(&S.rw));
        CHECK_EQ(cosync_rwlock_readers(&S.rw), 0);
    }
    CHECK_GE(cosync_rwlock_readers(&S.rw), S.rw_readers); /* + granted, not yet run */
    if (S.rw_readers > 0)
        CHECK(!cosync_rwlock_write_locked(&S.rw));
    /* liveness: tasks wait only behind a writer, holding or waiting */
    if (cosync_rwlock_waiters(&S.rw) > 0 && !cosync_rwlock_write_locked(&S.rw) &&
        S.rw_inflight_writers == 0)
        CHECK__FAIL("rwlock: %zu readers wait, and no writer holds or waits (%u readers hold)",
                    cosync_rwlock_waiters(&S.rw), cosync_rwlock_readers(&S.rw));

    CHECK_GE(S.counter, 0);
    CHECK_EQ(S.counter, S.produced - S.consumed);

    CHECK_LE(S.fifo_n, S.fifo_max);
    CHECK_LE(S.pq_n, S.pq_max);
    CHECK_EQ(cosync_queue_qsize(&S.fifo), S.fifo_n);
    CHECK_EQ(cosync_queue_qsize(&S.pq), S.pq_n);
    /* the inline paths' flags: never open while a newcomer could pass a
     * waiter or take an item owed to a woken getter, and open again as soon
     * as it could not */
    bool fifo_idle = !S.fifo.getters.n && !S.fifo.putters.n && !S.fifo.gap;
    CHECK_EQ(S.fifo.put_below,
             fifo_idle && !S.fifo.shutdown ? S.fifo.capacity - S.fifo.reserved_slots : 0);
    CHECK_EQ(S.fifo.get_above, fifo_idle && !S.fifo.reserved_items ? 0 : SIZE_MAX);
    CHECK_EQ(S.pq.put_below, 0);
    CHECK_EQ(S.pq.get_above, SIZE_MAX);

    CHECK_LT(cosync_barrier_n_waiting(&S.bar), S.parties);
}

/* ========================================================================
 * Pauses (inside or outside holds)
 * ===================================================================== */

/* Sleep a little or yield; 0 or COSYNC_ECANCELED. */
static int pause_now(worker *w)
{
    int rc;
    uint32_t r = rnd(&w->rng, 4);
    if (r == 0)
        rc = CALL(w, true, cosync_yield());
    else
        rc = CALL(w, true, cosync_sleep(COSYNC_US(rnd(&w->rng, 1500))));
    if (rc != 0 && rc != COSYNC_ECANCELED)
        CHECK__FAIL("sleep/yield returned %d (%s)", rc, cosync_err_name(rc));
    S.res[rc == 0 ? RES_OK : RES_CANCELED]++;
    check_global();
    return rc;
}

/* Maybe pause. */
static int maybe_pause(worker *w)
{
    return rnd(&w->rng, 2) ? pause_now(w) : 0;
}

/* ========================================================================
 * Lock and condition
 * ===================================================================== */

static void lock_enter(worker *w)
{
    CHECK_EQ(S.lock_holder, -1);
    CHECK_EQ(S.in_lock, 0);
    CHECK(cosync_lock_locked(&S.lock));
    CHECK(!w->in_lock);
    S.lock_holder = w->id;
    S.in_lock++;
    w->in_lock = true;
}

static void lock_leave(worker *w)
{
    CHECK_EQ(S.lock_holder, w->id);
    CHECK(w->in_lock);
    S.lock_holder = -1;
    S.in_lock--;
    w->in_lock = false;
}

static int lock_take(worker *w)
{
    int64_t dl = rand_deadline(w);
    bool free_now = !cosync_lock_locked(&S.lock) && cosync_lock_waiters(&S.lock) == 0;
    expect e = expect_begin(dl, free_now, !free_now);
    int rc = CALL(w, false, cosync_lock_acquire(&S.lock, dl));
    check_code("lock_acquire", rc, dl, 0);
    expect_end("lock_acquire", &e, rc);
    if (rc == 0)
        lock_enter(w);
    return rc;
}

static void lock_give(worker *w)
{
    lock_leave(w);
    CHECK_OK(cosync_lock_release(&S.lock));
}

static bool counter_positive(void *arg)
{
    (void)arg;
    /* called with the lock held, by the waiting task */
    CHECK(cosync_lock_locked(&S.lock));
    CHECK_EQ(S.lock_holder, -1);
    CHECK_EQ(S.in_lock, 0);
    return S.counter > 0;
}

static int op_sem(worker *w);
static int op_rw(worker *w);

/* Take the lock, maybe nest a semaphore or rwlock operation, release. */
static int op_lock(worker *w)
{
    int rc = lock_take(w);
    if (rc)
        return rc;
    rc = maybe_pause(w);
    if (rc == 0) {
        switch (rnd(&w->rng, 4)) {
        case 0:
            rc = op_sem(w);
            break;
        case 1:
            rc = op_rw(w);
            break;
        default:
            break;
        }
    }
    if (rc == 0)
        rc = maybe_pause(w);
    lock_give(w);
    return rc;
}

/* Take the lock, add to the counter, notify some waiters, release. */
static int op_cond_produce(worker *w)
{
    int rc = lock_take(w);
    if (rc)
        return rc;
    int k = 1 + (int)rnd(&w->rng, 3);
    S.counter += k;
    S.produced += k;
    size_t before = cosync_cond_waiters(&S.cond);
    int woken;
    if (rnd(&w->rng, 4) == 0) {
        woken = cosync_cond_notify_all(&S.cond);
        CHECK_EQ(woken, (long long)before);
    } else {
        int n = (int)rnd(&w->rng, 4);
        woken = cosync_cond_notify(&S.cond, n);
        CHECK_EQ(woken, (long long)((size_t)n < before ? (size_t)n : before));
    }
    CHECK_EQ(cosync_cond_waiters(&S.cond), before - (size_t)woken);
    S.notifies += woken;
    rc = maybe_pause(w);
    lock_give(w);
    return rc;
}

/* Take the lock, wait (wait_for counter > 0, or a plain wait), take one. */
static int op_cond_consume(worker *w)
{
    int rc = lock_take(w);
    if (rc)
        return rc;
    int64_t dl = rand_deadline(w);
    bool plain = rnd(&w->rng, 4) == 0;
    bool ready = S.counter > 0;
    lock_leave(w); /* the wait lets the lock go */
    expect e = expect_begin(dl, !plain && ready, plain || !ready);
    if (plain)
        rc = CALL(w, false, cosync_cond_wait(&S.cond, dl));
    else
        rc = CALL(w, false, cosync_cond_wait_for(&S.cond, counter_positive, NULL, dl));
    check_code(plain ? "cond_wait" : "cond_wait_for", rc, dl, 0);
    expect_end(plain ? "cond_wait" : "cond_wait_for", &e, rc);
    /* whatever the result, the lock is held again, by us alone */
    lock_enter(w);
    if (!plain && ready)
        CHECK_OK(rc); /* the predicate was true at once */
    if (rc == 0 && !plain)
        CHECK_GT(S.counter, 0);
    if (rc == 0 && S.counter > 0) {
        S.counter--;
        S.consumed++;
    }
    if (rc == 0)
        rc = maybe_pause(w);
    lock_give(w);
    return rc;
}

/* ========================================================================
 * Semaphore
 * ===================================================================== */

static int op_sem(worker *w)
{
    CHECK_EQ(w->sem_held, 0);
    /* 1 to 3 permits, at most all of them; now and then one more than all
     * (it waits at the head until it is cancelled or times out) */
    int64_t n = 1 + rnd(&w->rng, S.permits < 3 ? (uint32_t)S.permits : 3);
    if (rnd(&w->rng, 64) == 0)
        n = S.permits + 1;
    bool many = n > 1 || rnd(&w->rng, 2);
    int64_t dl = rand_deadline(w);
    bool at_once = cosync_sem_waiters(&S.sem) == 0 && cosync_sem_value(&S.sem) >= n;
    expect e = expect_begin(dl, at_once, !at_once);
    S.sem_inflight[n]++;
    int rc = many ? CALL(w, false, cosync_sem_acquire_many(&S.sem, n, dl))
                  : CALL(w, false, cosync_sem_acquire(&S.sem, dl));
    S.sem_inflight[n]--;
    check_code(many ? "sem_acquire_many" : "sem_acquire", rc, dl, 0);
    expect_end("sem_acquire", &e, rc);
    if (rc)
        return rc;
    w->sem_held = n;
    S.sem_held += n;
    check_global();
    rc = maybe_pause(w);
    S.sem_held -= n;
    w->sem_held = 0;
    int64_t before = cosync_sem_value(&S.sem);
    size_t waiting = cosync_sem_waiters(&S.sem);
    if (rnd(&w->rng, 2)) {
        CHECK_OK(cosync_sem_release_many(&S.sem, n));
    } else {
        for (int64_t i = 0; i < n; i++)
            CHECK_OK(cosync_sem_release(&S.sem));
    }
    if (waiting == 0)
        CHECK_EQ(cosync_sem_value(&S.sem), before + n);
    else
        CHECK_LE(cosync_sem_value(&S.sem), before + n);
    check_global();
    return rc;
}

/* ========================================================================
 * RWLock
 * ===================================================================== */

static int op_rw(worker *w)
{
    CHECK(!w->wr_held);
    CHECK_EQ(w->rd_held, 0);
    bool write = rnd(&w->rng, 3) == 0;
    int64_t dl = rand_deadline(w);
    bool try_form = dl == 0 && rnd(&w->rng, 2);
    bool nobody_waits = cosync_rwlock_waiters(&S.rw) == 0;
    bool at_once = nobody_waits && !cosync_rwlock_write_locked(&S.rw) &&
                   (!write || cosync_rwlock_readers(&S.rw) == 0);
    expect e = expect_begin(dl, at_once, !at_once);
    int rc;
    if (write) {
        S.rw_inflight_writers++;
        rc = try_form ? CALL(w, false, cosync_rwlock_try_write(&S.rw))
                      : CALL(w, false, cosync_rwlock_write_acquire(&S.rw, dl));
        S.rw_inflight_writers--;
    } else
        rc = try_form ? CALL(w, false, cosync_rwlock_try_read(&S.rw))
                      : CALL(w, false, cosync_rwlock_read_acquire(&S.rw, dl));
    check_code(write ? "rwlock_write_acquire" : "rwlock_read_acquire", rc, dl, 0);
    expect_end(write ? "rwlock_write_acquire" : "rwlock_read_acquire", &e, rc);
    if (rc)
        return rc;
    if (write) {
        CHECK_EQ(S.rw_writer, -1);
        CHECK_EQ(S.rw_readers, 0);
        S.rw_writer = w->id;
        w->wr_held = true;
    } else {
        CHECK_EQ(S.rw_writer, -1);
        S.rw_readers++;
        w->rd_held++;
    }
    check_global();
    rc = maybe_pause(w);
    if (write) {
        CHECK_EQ(S.rw_writer, w->id);
        CHECK_EQ(S.rw_readers, 0);
        S.rw_writer = -1;
        w->wr_held = false;
        CHECK_OK(cosync_rwlock_write_release(&S.rw));
    } else {
        CHECK_EQ(S.rw_writer, -1);
        S.rw_readers--;
        w->rd_held--;
        CHECK_OK(cosync_rwlock_read_release(&S.rw));
    }
    check_global();
    return rc;
}

/* ========================================================================
 * Queues
 * ===================================================================== */

static int by_prio(const void *a, const void *b, void *arg)
{
    (void)arg;
    int x = *(const int *)a >> PRIO_SHIFT, y = *(const int *)b >> PRIO_SHIFT;
    return (x > y) - (x < y);
}

static void fifo_added(int id)
{
    CHECK_EQ(S.state[id], 0);
    S.state[id] = 1;
    S.put_order[id] = S.fifo_seq++;
    CHECK_LT(S.fifo_n, S.fifo_max);
    S.fifo_present[S.fifo_n++] = id;
    S.fifo_put_n++;
    S.fifo_put_sum += id;
}

/* @id came out of the FIFO queue; @others: other getters in flight. */
static void fifo_taken(int id, int others)
{
    CHECK(id >= 0 && id < S.next_id);
    if (S.state[id] != 1)
        CHECK__FAIL("fifo get returned item %d, whose state is %d (1: in the fifo)", id,
                    S.state[id]);
    int older = 0, at = -1;
    for (int i = 0; i < S.fifo_n; i++) {
        if (S.fifo_present[i] == id)
            at = i;
        else if (S.put_order[S.fifo_present[i]] < S.put_order[id])
            older++;
    }
    CHECK_GE(at, 0);
    /* the items passed over are reserved for other getters in flight */
    if (older > others)
        CHECK__FAIL("fifo get returned item %d past %d older items, with %d other getters", id,
                    older, others);
    S.fifo_present[at] = S.fifo_present[--S.fifo_n];
    S.state[id] = 3;
    S.fifo_got_n++;
    S.fifo_got_sum += id;
    CHECK_OK(cosync_queue_task_done(&S.fifo));
}

static void pq_added(int v)
{
    int id = v & ID_MASK;
    CHECK_EQ(S.state[id], 0);
    S.state[id] = 2;
    S.put_order[id] = S.pq_seq++;
    CHECK_LT(S.pq_n, S.pq_max);
    S.pq_present[S.pq_n++] = id;
    S.pq_put_n++;
    S.pq_put_sum += v;
}

/* @v came out of the priority queue: it must be the first of those present. */
static void pq_taken(int v)
{
    int id = v & ID_MASK, prio = v >> PRIO_SHIFT;
    CHECK(id >= 0 && id < S.next_id);
    if (S.state[id] != 2)
        CHECK__FAIL("pq get returned item %d, whose state is %d (2: in the pq)", id, S.state[id]);
    CHECK_EQ(prio, S.prio_of[id]);
    int at = -1;
    for (int i = 0; i < S.pq_n; i++) {
        int x = S.pq_present[i];
        if (x == id) {
            at = i;
            continue;
        }
        int px = S.prio_of[x];
        if (px < prio || (px == prio && S.put_order[x] < S.put_order[id]))
            CHECK__FAIL("pq get returned (prio %d, put #%u) while (prio %d, put #%u) is present",
                        prio, S.put_order[id], px, S.put_order[x]);
    }
    CHECK_GE(at, 0);
    S.pq_present[at] = S.pq_present[--S.pq_n];
    S.state[id] = 3;
    S.pq_got_n++;
    S.pq_got_sum += v;
    CHECK_OK(cosync_queue_task_done(&S.pq));
}

static int op_queue_put(worker *w, bool pq)
{
    cosync_queue *q = pq ? &S.pq : &S.fifo;
    int cnt = rnd(&w->rng, 4) == 0 ? 1 + (int)rnd(&w->rng, 3) : 0; /* 0: put */
    int n = cnt ? cnt : 1;
    if (S.next_id + n > MAX_ITEMS)
        return 0;
    int items[3];
    for (int i = 0; i < n; i++) {
        int id = S.next_id++;
        if (pq) {
            int prio = (int)rnd(&w->rng, NPRIO);
            S.prio_of[id] = (uint8_t)prio;
            items[i] = prio << PRIO_SHIFT | id;
        } else {
            items[i] = id;
        }
    }
    int64_t dl = rand_deadline(w);
    bool room = !cosync_queue_full(q);
    expect e = expect_begin(dl, room, !room);
    int rc = cnt ? CALL(w, false, cosync_queue_put_many(q, items, (size_t)cnt, dl))
                 : CALL(w, false, cosync_queue_put(q, &items[0], dl));
    int got = 0;
    if (cnt && rc > 0) {
        CHECK_LE(rc, cnt);
        got = rc;
        rc = 0;
    } else if (!cnt && rc == 0) {
        got = 1;
    }
    check_code(cnt ? "queue_put_many" : "queue_put", rc, dl, 0);
    expect_end(cnt ? "queue_put_many" : "queue_put", &e, rc);
    if (room)
        CHECK_GE(got, 1);
    for (int i = 0; i < got; i++) {
        if (pq)
            pq_added(items[i]);
        else
            fifo_added(items[i]);
    }
    check_global();
    return rc;
}

static int op_queue_get(worker *w, bool pq)
{
    cosync_queue *q = pq ? &S.pq : &S.fifo;
    int cnt = rnd(&w->rng, 4) == 0 ? 1 + (int)rnd(&w->rng, 3) : 0; /* 0: get */
    int items[3] = {-1, -1, -1};
    int64_t dl = rand_deadline(w);
    bool empty = cosync_queue_empty(q);
    expect e = expect_begin(dl, false, empty);
    if (!pq)
        S.fifo_getters++;
    int rc = cnt ? CALL(w, false, cosync_queue_get_many(q, items, (size_t)cnt, dl))
                 : CALL(w, false, cosync_queue_get(q, &items[0], dl));
    if (!pq)
        S.fifo_getters--;
    int got = 0;
    if (cnt && rc > 0) {
        CHECK_LE(rc, cnt);
        got = rc;
        rc = 0;
    } else if (!cnt && rc == 0) {
        got = 1;
    }
    check_code(cnt ? "queue_get_many" : "queue_get", rc, dl, 0);
    expect_end(cnt ? "queue_get_many" : "queue_get", &e, rc);
    if (empty && dl == 0)
        CHECK_EQ(got, 0);
    for (int i = 0; i < got; i++) {
        if (pq) {
            pq_taken(items[i]);
        } else {
            if (i > 0)
                CHECK_LT(S.put_order[items[i - 1]], S.put_order[items[i]]);
            fifo_taken(items[i], S.fifo_getters);
        }
    }
    check_global();
    return rc;
}

/* ========================================================================
 * Barrier and event
 * ===================================================================== */

static int op_barrier(worker *w)
{
    uint32_t r = rnd(&w->rng, 40);
    if (r == 0) {
        CHECK_OK(cosync_barrier_abort(&S.bar));
        CHECK(cosync_barrier_broken(&S.bar));
        CHECK_EQ(cosync_barrier_n_waiting(&S.bar), 0);
        return 0;
    }
    if (r < 4 || (cosync_barrier_broken(&S.bar) && r < 10)) {
        CHECK_OK(cosync_barrier_reset(&S.bar));
        CHECK(!cosync_barrier_broken(&S.bar));
        CHECK_EQ(cosync_barrier_n_waiting(&S.bar), 0);
        return 0;
    }
    int64_t dl = rand_deadline(w);
    bool broken = cosync_barrier_broken(&S.bar);
    bool completes = !broken && (int)cosync_barrier_n_waiting(&S.bar) == S.parties - 1;
    expect e = expect_begin(dl, completes, !broken && !completes);
    int rc = CALL(w, false, cosync_barrier_wait(&S.bar, dl));
    check_code("barrier_wait", rc, dl, A_BROKEN);
    if (!broken)
        expect_end("barrier_wait", &e, rc);
    if (broken)
        CHECK_ERR(rc, COSYNC_EBROKEN);
    if (completes)
        CHECK_EQ(rc, S.parties - 1);
    if (rc >= 0) {
        CHECK_LT(rc, S.parties);
        S.bar_index[rc]++;
        rc = 0;
    } else if (rc == COSYNC_EBROKEN) {
        rc = 0;
    }
    check_global();
    return rc;
}

static int op_event(worker *w)
{
    uint32_t r = rnd(&w->rng, 8);
    if (r < 2) {
        /* note it for the tasks waiting now: each must be woken */
        for (int i = 0; i < S.nworkers; i++) {
            worker *x = &S.w[i];
            if (x->ev_waiting && x->ev_set_seq == UINT64_MAX) {
                x->ev_set_seq = S.seq;
                x->ev_set_time = cosync_now();
            }
        }
        S.seq++;
        CHECK_OK(cosync_event_set(&S.ev));
        CHECK(cosync_event_is_set(&S.ev));
        return 0;
    }
    if (r < 4) {
        CHECK_OK(cosync_event_clear(&S.ev));
        CHECK(!cosync_event_is_set(&S.ev));
        return 0;
    }
    int64_t dl = rand_deadline(w);
    bool set = cosync_event_is_set(&S.ev);
    expect e = expect_begin(dl, set, !set);
    w->ev_waiting = true;
    w->ev_set_seq = UINT64_MAX;
    int rc = CALL(w, false, cosync_event_wait(&S.ev, dl));
    w->ev_waiting = false;
    check_code("event_wait", rc, dl, 0);
    expect_end("event_wait", &e, rc);
    /* a set while it waited wakes it, unless a cancellation or the
     * deadline came first */
    if (rc == COSYNC_ECANCELED && w->pre_pend == PEND_CLEAR && w->first_req_seq > w->ev_set_seq)
        CHECK__FAIL("event_wait: set (#%llu) while worker %d waited, but it returned "
                    "COSYNC_ECANCELED for a later cancellation (#%llu)",
                    (unsigned long long)w->ev_set_seq, w->id, (unsigned long long)w->first_req_seq);
    if (rc == COSYNC_ETIMEDOUT && w->ev_set_seq != UINT64_MAX && w->ev_set_time < dl)
        CHECK__FAIL("event_wait: set at %lld while worker %d waited, but it timed out at %lld",
                    (long long)w->ev_set_time, w->id, (long long)dl);
    if (set)
        CHECK_OK(rc);
    if (dl == 0 && !set)
        CHECK_ERR(rc, COSYNC_EAGAIN);
    return rc;
}

/* ========================================================================
 * Wait group and latch
 * ===================================================================== */

enum { ZERO_NONE, ZERO_WAITGROUP, ZERO_LATCH, ZERO_FUTURE };
static const char *const zero_wait_name[] = {"", "waitgroup_wait", "latch_wait", "future_wait"};

/* What a wait of @kind waits for has come (a counter reached zero, the
 * future is done): note it for the tasks waiting on it now. */
static void zero_came(int kind)
{
    for (int i = 0; i < S.nworkers; i++) {
        worker *x = &S.w[i];
        if (x->zero_wait == kind && x->zero_seq == UINT64_MAX) {
            x->zero_seq = S.seq;
            x->zero_time = cosync_now();
            S.zeros++;
        }
    }
    S.seq++;
}

static bool zero_now(int kind)
{
    return kind == ZERO_WAITGROUP ? S.wg_count == 0
           : kind == ZERO_LATCH   ? S.latch_count == 0
                                  : S.fut_done;
}

static int zero_call(int kind, int64_t dl)
{
    return kind == ZERO_WAITGROUP ? cosync_waitgroup_wait(&S.wg, dl)
           : kind == ZERO_LATCH   ? cosync_latch_wait(&S.latch, dl)
                                  : cosync_future_wait(&S.fut, dl);
}

/* A wait of @kind, checked as the event's wait is: it succeeds at once
 * when what it waits for is there; its coming while the task waited wakes
 * it, unless a cancellation or the deadline came first; it returns 0 only
 * if it came. */
static int wait_zero(worker *w, int kind)
{
    const char *what = zero_wait_name[kind];
    int64_t dl = rand_deadline(w);
    bool zero = zero_now(kind);
    expect e = expect_begin(dl, zero, !zero);
    w->zero_wait = kind;
    w->zero_seq = UINT64_MAX;
    int rc = CALL(w, false, zero_call(kind, dl));
    w->zero_wait = ZERO_NONE;
    bool woke = w->zero_seq != UINT64_MAX;
    check_code(what, rc, dl, 0);
    expect_end(what, &e, rc);
    if (rc == COSYNC_ECANCELED && w->pre_pend == PEND_CLEAR && woke &&
        w->first_req_seq > w->zero_seq)
        CHECK__FAIL("%s: what it waits for came (#%llu) while worker %d waited, but it "
                    "returned COSYNC_ECANCELED for a later cancellation (#%llu)",
                    what, (unsigned long long)w->zero_seq, w->id,
                    (unsigned long long)w->first_req_seq);
    if (rc == COSYNC_ETIMEDOUT && woke && w->zero_time < dl)
        CHECK__FAIL("%s: what it waits for came at %lld while worker %d waited, but it timed "
                    "out at %lld",
                    what, (long long)w->zero_time, w->id, (long long)dl);
    if (rc == 0 && !zero && !woke)
        CHECK__FAIL("%s: worker %d woken, but what it waits for never came", what, w->id);
    if (zero)
        CHECK_OK(rc);
    return rc;
}

/* A count-down returned @rc: refused with @refused at zero (nothing
 * changes), else one less, and at zero the waiters of @kind are due. */
static void counted_down(int rc, int64_t *count, int refused, int kind)
{
    if (*count == 0) {
        CHECK_ERR(rc, refused);
        return;
    }
    CHECK_OK(rc);
    if (--*count == 0)
        zero_came(kind);
}

/* Go's WaitGroup: add, done (never below zero: that is refused and
 * changes nothing), wait. */
static int op_waitgroup(worker *w)
{
    uint32_t r = rnd(&w->rng, 10);
    if (r < 3) {
        int64_t d = 1 + rnd(&w->rng, 3);
        CHECK_OK(cosync_waitgroup_add(&S.wg, d));
        S.wg_count += d;
    } else if (r < 6) {
        counted_down(cosync_waitgroup_done(&S.wg), &S.wg_count, COSYNC_EINVAL, ZERO_WAITGROUP);
    } else if (r == 6) {
        CHECK_ERR(cosync_waitgroup_add(&S.wg, -(S.wg_count + 1)), COSYNC_EINVAL);
    } else {
        return wait_zero(w, ZERO_WAITGROUP);
    }
    CHECK_EQ(cosync_waitgroup_count(&S.wg), S.wg_count);
    return 0;
}

/* The latch: count_down (COSYNC_EALREADY once open), wait; an open latch
 * nobody waits on is destroyed and set up again for another round. */
static int op_latch(worker *w)
{
    uint32_t r = rnd(&w->rng, 10);
    if (r < 4) {
        counted_down(cosync_latch_count_down(&S.latch), &S.latch_count, COSYNC_EALREADY,
                     ZERO_LATCH);
    } else if (r == 4 && S.latch_count == 0) {
        int rc = cosync_latch_destroy(&S.latch);
        if (rc == 0) {
            S.latch_count = 1 + rnd(&w->rng, (uint32_t)S.nworkers);
            CHECK_OK(cosync_latch_init(&S.latch, S.latch_count));
        } else {
            CHECK_ERR(rc, COSYNC_EBUSY); /* a woken waiter has not run yet */
        }
    } else if (r >= 5) {
        return wait_zero(w, ZERO_LATCH);
    }
    CHECK_EQ(cosync_latch_count(&S.latch), S.latch_count);
    return 0;
}

/* Whether a worker is in a wait of @kind (or woken from it and not run). */
static bool anyone_waits(int kind)
{
    for (int i = 0; i < S.nworkers; i++)
        if (S.w[i].zero_wait == kind)
            return true;
    return false;
}

/* The future: completed once (with a value, an error or a cancel; a second
 * completion is refused and changes nothing), read, waited for; once done
 * and nobody is in a wait for it, set up again for another round. */
static int op_future(worker *w)
{
    uint32_t r = rnd(&w->rng, 10);
    if (r < 3) {
        int status = r == 0 ? 0 : r == 1 ? -(40000 + (int)rnd(&w->rng, 100)) : COSYNC_ECANCELED;
        void *value = status == 0 ? (void *)(uintptr_t)(1 + S.seq) : NULL;
        int rc = status == 0                  ? cosync_future_set_result(&S.fut, value)
                 : status == COSYNC_ECANCELED ? cosync_future_cancel(&S.fut)
                                              : cosync_future_set_error(&S.fut, status);
        if (S.fut_done) {
            CHECK_ERR(rc, COSYNC_EALREADY);
        } else {
            CHECK_OK(rc);
            S.fut_done = true;
            S.fut_status = status;
            S.fut_value = value;
            zero_came(ZERO_FUTURE);
        }
    } else if (r == 3 && S.fut_done && !anyone_waits(ZERO_FUTURE)) {
        cosync_future_init(&S.fut);
        S.fut_done = false;
    } else if (r >= 6) {
        int rc = wait_zero(w, ZERO_FUTURE);
        if (rc != 0)
            return rc;
    }
    CHECK_EQ(cosync_future_done(&S.fut), S.fut_done);
    CHECK_EQ(cosync_future_cancelled(&S.fut), S.fut_done && S.fut_status == COSYNC_ECANCELED);
    void *value = (void *)&w;
    int st = cosync_future_result(&S.fut, &value);
    CHECK_EQ(st, S.fut_done ? S.fut_status : COSYNC_EAGAIN);
    if (S.fut_done && value != S.fut_value)
        CHECK__FAIL("future_result: value %p, set %p", value, S.fut_value);
    return 0;
}

/* ========================================================================
 * Tasks
 * ===================================================================== */

static int do_op(worker *w)
{
    switch (rnd(&w->rng, 19)) {
    case 0:
    case 1:
        return op_lock(w);
    case 2:
        return op_cond_produce(w);
    case 3:
        return op_cond_consume(w);
    case 4:
    case 5:
        return op_sem(w);
    case 6:
    case 7:
        return op_rw(w);
    case 8:
        return op_queue_put(w, false);
    case 9:
        return op_queue_get(w, false);
    case 10:
        return op_queue_put(w, true);
    case 11:
        return op_queue_get(w, true);
    case 12:
        return op_barrier(w);
    case 13:
        return op_event(w);
    case 14:
        return op_waitgroup(w);
    case 15:
        return op_latch(w);
    case 16:
        return op_future(w);
    default:
        return pause_now(w);
    }
}

static void check_holds_nothing(const worker *w)
{
    CHECK(!w->in_lock);
    CHECK_EQ(w->sem_held, 0);
    CHECK_EQ(w->rd_held, 0);
    CHECK(!w->wr_held);
    CHECK(S.lock_holder != w->id);
    CHECK(S.rw_writer != w->id);
}

static int worker_fn(void *arg, void **result)
{
    (void)result;
    worker *w = arg;
    w->started = true;
    cosync_task self = cosync_task_current();
    CHECK_EQ(self.id, w->t.id); /* handed out before an eager start */
    while (!S.stop && !S.closing) {
        CHECK_EQ(cosync_task_cancelling(self), w->expected);
        check_holds_nothing(w);
        int rc = do_op(w);
        trace_step(w->id, rc);
        check_holds_nothing(w);
        check_global();
        w->ops++;
        S.total_ops++;
        if (rc == COSYNC_ECANCELED && w->uncanceler && !S.stop) {
            while (w->expected > 0) {
                int left = cosync_task_uncancel(self);
                w->expected--;
                S.uncancels++;
                CHECK_EQ(left, w->expected);
            }
            w->pend = PEND_CLEAR; /* the count is 0: an undelivered request is dropped */
            CHECK_EQ(cosync_task_cancelling(self), 0);
        }
    }
    w->done = true;
    return 0;
}

static int chaos_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    while (!S.stop) {
        int rc = cosync_sleep(COSYNC_US(rnd(&S.chaos_rng, S.chaos_us)));
        if (rc == COSYNC_ECANCELED && S.closing)
            break; /* the close */
        CHECK_OK(rc);
        if (S.stop || S.closing)
            break;
        int k = rnd(&S.chaos_rng, 8) == 0 ? 2 + (int)rnd(&S.chaos_rng, 3) : 1;
        for (int i = 0; i < k; i++) {
            int victim = (int)rnd(&S.chaos_rng, S.nworkers);
            CHECK_OK(do_cancel(victim)); /* no worker ends before the stop */
        }
        check_global();
    }
    return 0;
}

/* The dense tasks really share stacks: the tasks with a stack of their
 * own (main, and the plain ones), and at most the shared stacks besides. */
static void check_stacks(void)
{
    if (!COSYNC__DENSE_SUPPORTED) /* a dense task has a stack of its own */
        return;
    size_t n = (size_t)S.nworkers;
    size_t own = S.mode == MODE_PLAIN   ? n + 2            /* main, chaos, workers */
                 : S.mode == MODE_DENSE ? 1                /* main */
                                        : 2 + (n + 1) / 2; /* and the even workers */
    size_t in_use = loop_stats().stacks_in_use;
    CHECK_GE(in_use, own);
    CHECK_LE(in_use, own + (S.mode == MODE_PLAIN ? 0 : COSYNC__DENSE_SLOTS));
}

/* The lock free, the permits all back, the rwlock free, no waiter on any
 * object: what the workers leave once they have all ended. */
static void check_everything_back(void)
{
    CHECK(!cosync_lock_locked(&S.lock));
    CHECK_EQ(cosync_lock_waiters(&S.lock), 0);
    CHECK_EQ(cosync_cond_waiters(&S.cond), 0);
    CHECK_EQ(S.sem_held, 0);
    CHECK_EQ(cosync_sem_value(&S.sem), S.permits);
    CHECK_EQ(cosync_sem_waiters(&S.sem), 0);
    CHECK_EQ(cosync_rwlock_readers(&S.rw), 0);
    CHECK(!cosync_rwlock_write_locked(&S.rw));
    CHECK_EQ(cosync_rwlock_waiters(&S.rw), 0);
    CHECK_EQ(cosync_barrier_n_waiting(&S.bar), 0);
}

/* Each destroy succeeds: nothing holds or waits on the objects. */
static void destroy_objects(void)
{
    CHECK_OK(cosync_cond_destroy(&S.cond));
    CHECK_OK(cosync_lock_destroy(&S.lock));
    CHECK_OK(cosync_sem_destroy(&S.sem));
    CHECK_OK(cosync_rwlock_destroy(&S.rw));
    CHECK_OK(cosync_queue_destroy(&S.fifo));
    CHECK_OK(cosync_queue_destroy(&S.pq));
    CHECK_OK(cosync_barrier_destroy(&S.bar));
    CHECK_OK(cosync_waitgroup_destroy(&S.wg));
    CHECK_OK(cosync_latch_destroy(&S.latch));
}

static int stress_main(void *arg, void **result)
{
    (void)result;
    uint64_t seed = *(const uint64_t *)arg;

    cosync_lock_init(&S.lock);
    cosync_cond_init(&S.cond, &S.lock);
    CHECK_OK(cosync_sem_init(&S.sem, S.permits));
    cosync_rwlock_init(&S.rw);
    CHECK_OK(cosync_queue_init(&S.fifo, sizeof(int), (size_t)S.fifo_max));
    CHECK_OK(cosync_priorityqueue_init(&S.pq, sizeof(int), (size_t)S.pq_max, by_prio, NULL));
    CHECK_OK(cosync_barrier_init(&S.bar, (unsigned)S.parties));
    cosync_event_init(&S.ev);
    cosync_waitgroup_init(&S.wg);
    S.latch_count = S.parties;
    CHECK_OK(cosync_latch_init(&S.latch, S.latch_count));
    cosync_future_init(&S.fut);
    S.lock_holder = -1;
    S.rw_writer = -1;
    S.chaos_rng = splitmix(seed * 1000 + 999);

    cosync_task tasks[MAX_WORKERS];
    for (int i = 0; i < S.nworkers; i++) {
        worker *w = &S.w[i];
        w->id = i;
        w->rng = splitmix(seed * 1000 + (uint64_t)i);
        w->uncanceler = i % 2 == 0;
        char name[32];
        snprintf(name, sizeof name, "worker-%d", i);
        CHECK_OK(cosync_task_spawn(
            &w->t, worker_fn, w,
            &(cosync_task_opts){.name = name, .dense = is_dense(i), .eager = S.eager}));
        if (S.eager && !w->started)
            CHECK__FAIL("seed %llu: worker %d, spawned eagerly, has not started when its spawn "
                        "returns",
                        (unsigned long long)seed, i);
        tasks[i] = w->t;
    }
    cosync_task chaos;
    CHECK_OK(cosync_task_spawn(
        &chaos, chaos_fn, NULL,
        &(cosync_task_opts){.name = "chaos", .dense = S.mode == MODE_DENSE, .eager = S.eager}));

    while (S.total_ops < S.target_ops) {
        int rc = cosync_sleep(COSYNC_MS(1));
        if (rc == COSYNC_ECANCELED && S.closing)
            return 0; /* the close cancels main too */
        CHECK_OK(rc);
        check_global();
        check_stacks();
        if (S.close_at && S.total_ops >= S.close_at && !S.closing) {
            S.closing = true; /* the workers end after their operation under way */
            CHECK_OK(cosync_loop_stop(cosync_loop_current()));
        }
    }

    /* Stop: the chaos task first, then cancel and gather every worker. */
    S.stop = true;
    CHECK_OK(join_status(chaos));
    for (int i = 0; i < S.nworkers; i++) {
        int rc = do_cancel(i);
        if (rc != 0 && rc != COSYNC_EALREADY)
            CHECK__FAIL("cancel of worker %d returned %s", i, cosync_err_name(rc));
    }
    cosync_outcome out[MAX_WORKERS];
    CHECK_OK(cosync_gather(tasks, (size_t)S.nworkers, out, cosync_now() + COSYNC_SEC(3600)));
    for (int i = 0; i < S.nworkers; i++) {
        int want = S.w[i].expected > 0 ? COSYNC_ECANCELED : 0;
        if (out[i].status != want)
            CHECK__FAIL("seed %llu: worker %d finished with %s, expected %s (cancelling %d)",
                        (unsigned long long)seed, i, cosync_err_name(out[i].status),
                        cosync_err_name(want), S.w[i].expected);
        CHECK_ERR(cosync_task_cancel(tasks[i]), COSYNC_ESRCH); /* collected */
        check_holds_nothing(&S.w[i]);
    }

    /* Everything is back. */
    check_global();
    check_everything_back();
    CHECK_EQ(S.counter, S.produced - S.consumed);

    /* Every completed round of the barrier gave each index once. */
    for (int k = 0; k < S.parties; k++)
        if (S.bar_index[k] != S.bar_index[S.parties - 1])
            CHECK__FAIL("barrier: index %d given %ld times, index %d %ld times", k, S.bar_index[k],
                        S.parties - 1, S.bar_index[S.parties - 1]);

    /* Drain the queues, in order. */
    int v;
    long last = -1;
    int rc;
    while ((rc = cosync_queue_get(&S.fifo, &v, 0)) == 0) {
        CHECK_GT((long)S.put_order[v], last);
        last = S.put_order[v];
        fifo_taken(v, 0);
    }
    CHECK_ERR(rc, COSYNC_EAGAIN);
    int lastp = -1;
    long lasto = -1;
    while ((rc = cosync_queue_get(&S.pq, &v, 0)) == 0) {
        int p = v >> PRIO_SHIFT, id = v & ID_MASK;
        CHECK(p > lastp || (p == lastp && (long)S.put_order[id] > lasto));
        lastp = p;
        lasto = S.put_order[id];
        pq_taken(v);
    }
    CHECK_ERR(rc, COSYNC_EAGAIN);
    CHECK_EQ(S.fifo_n, 0);
    CHECK_EQ(S.pq_n, 0);
    CHECK_EQ(S.fifo_put_n, S.fifo_got_n);
    CHECK_EQ(S.fifo_put_sum, S.fifo_got_sum);
    CHECK_EQ(S.pq_put_n, S.pq_got_n);
    CHECK_EQ(S.pq_put_sum, S.pq_got_sum);
    for (int id = 0; id < S.next_id; id++)
        CHECK(S.state[id] == 0 || S.state[id] == 3);
    CHECK_OK(cosync_queue_join(&S.fifo, 0));
    CHECK_OK(cosync_queue_join(&S.pq, 0));

    /* Only main is left, and no timer. */
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_EQ(st.tasks_records, 1);
    CHECK_EQ(st.timers, 0);

    destroy_objects();
    return 0;
}

/* Destroy the loop of a seed whose main stopped it, the workers in
 * flight: the close cancels every task still alive (noted here as
 * requests, as do_cancel notes them, so that the clean-ups it runs keep
 * to the same model and checks), and must report none stuck. Then every
 * lock, permit and slot is back, as the workers' clean-ups leave them. */
static void close_in_flight(cosync_loop *loop, int rc)
{
    if (rc != COSYNC_EINTR)
        CHECK__FAIL("seed %llu: cosync_loop_run returned %s after the stop",
                    (unsigned long long)S.seed, cosync_err_name(rc));
    for (int i = 0; i < S.nworkers; i++)
        if (!S.w[i].done)
            note_request(&S.w[i]);
    S.closes++;
    if ((rc = cosync_loop_destroy(loop)) != 0)
        CHECK__FAIL("seed %llu: cosync_loop_destroy returned %s", (unsigned long long)S.seed,
                    cosync_err_name(rc));
    for (int i = 0; i < S.nworkers; i++)
        CHECK(S.w[i].done);
    CHECK_EQ(S.in_lock, 0);
    check_everything_back();
    CHECK_EQ(cosync_queue_qsize(&S.fifo), (size_t)S.fifo_n);
    CHECK_EQ(cosync_queue_qsize(&S.pq), (size_t)S.pq_n);
    destroy_objects();
}

/* Run one seed on a fresh virtual-clock loop, its tasks dense as @mode
 * says (a dense run compares itself with the plain run just before). */
static void run_seed(uint64_t seed, long ops, int mode)
{
    memset(&S, 0, sizeof S);
    S.seed = seed;
    S.mode = mode;
    S.target_ops = ops;
    S.eager = seed % 3 == 0;
    if (seed % 8 == 4 || seed % 8 == 6) /* replayed with dense tasks, and mixed */
        S.close_at = ops / 4 + (long)(splitmix(seed ^ 0xC105E) % (uint64_t)(ops / 2 + 1));
    if (mode == MODE_PLAIN)
        trace.n = 0;
    trace.pos = 0;
    if (seed == 1) {
        S.nworkers = MAX_WORKERS;
        S.permits = 5;
        S.fifo_max = FIFO_MAX;
        S.pq_max = PQ_MAX;
        S.parties = 3;
        S.chaos_us = 800;
    } else {
        uint64_t r = splitmix(seed * 7919);
        S.nworkers = 2 + (int)rnd(&r, MAX_WORKERS - 1);
        S.permits = 1 + rnd(&r, MAX_PERMITS);
        S.fifo_max = 1 + (int)rnd(&r, FIFO_MAX);
        S.pq_max = 1 + (int)rnd(&r, PQ_MAX);
        S.parties = 2 + (int)rnd(&r, MAX_PARTIES - 1);
        if (S.parties > S.nworkers)
            S.parties = S.nworkers;
        S.chaos_us = 50 + rnd(&r, 2000);
    }
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, stress_main, &seed, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    int rc = cosync_loop_run(loop, m, &status, NULL);
    if (S.closing) {
        close_in_flight(loop, rc);
    } else {
        if (rc != 0)
            CHECK__FAIL("seed %llu: cosync_loop_run returned %s", (unsigned long long)seed,
                        cosync_err_name(rc));
        CHECK_OK(status);
        end_loop(loop);
    }
    if (mode != MODE_PLAIN && trace.pos != trace.n)
        CHECK__FAIL("seed %llu (%s): %zu operations, the plain run made %zu",
                    (unsigned long long)seed, mode_name[mode], trace.pos, trace.n);

    if (mode != MODE_PLAIN)
        return; /* the same operations again: counted once */
    tot_ops += S.total_ops;
    for (int i = 0; i < RES_N; i++)
        tot_res[i] += S.res[i];
    tot_cancels += S.cancels;
    tot_uncancels += S.uncancels;
    tot_items += S.fifo_got_n + S.pq_got_n;
    tot_rounds += S.bar_index[S.parties - 1];
    tot_closes += S.closes;
    tot_zeros += S.zeros;
    tot_eager += S.eager;
}

static int nseeds = 40;
static long nops = 25000; /* operations per seed, all workers together */

TEST(test_stress_seeds)
{
    double start = monotonic_seconds();
    int replays = 0;
    for (int s = 1; s <= nseeds; s++) {
        run_seed((uint64_t)s, nops, MODE_PLAIN);
        if (s % 2 == 0) {
            run_seed((uint64_t)s, nops, s % 4 == 0 ? MODE_DENSE : MODE_MIXED);
            replays++;
        }
    }
    free(trace.steps);
    double secs = monotonic_seconds() - start;
    printf(
        "  %d seeds (2 to %d workers): %ld ops (ok %ld, eagain %ld, etimedout %ld, ecanceled %ld, "
        "ebroken %ld), %ld cancels, %ld uncancels, %ld queue items, %ld barrier rounds, "
        "%ld waiters woken at a counter's zero or the future's outcome, %ld loops destroyed in "
        "flight, %ld seeds with eager spawns, %d seeds replayed "
        "with dense tasks, the same, %.2f s\n",
        nseeds, MAX_WORKERS, tot_ops, tot_res[RES_OK], tot_res[RES_AGAIN], tot_res[RES_TIMEDOUT],
        tot_res[RES_CANCELED], tot_res[RES_BROKEN], tot_cancels, tot_uncancels, tot_items,
        tot_rounds, tot_zeros, tot_closes, tot_eager, replays, secs);
}

int main(void)
{
    /* about 0.4 s as it is, 0.6 s under ASan, 9 s under valgrind */
    if (UNDER_ASAN)
        nops = 15000;
    if (under_valgrind())
        nseeds = 20;
    nseeds = (int)env_long("STRESS_SEEDS", nseeds);
    nops = env_long("STRESS_OPS", nops);
    RUN(test_stress_seeds);
    return 0;
}
