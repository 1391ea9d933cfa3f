/*
 * workloads.c - the benchmark workloads of ../shared/bench/WORKLOADS.md with
 * cosync, to be timed beside the peers (Python's asyncio, Go).
 *
 * usage: workloads [--shared-fp] [--stack-size BYTES] NAME|all [SCALE]
 *                                                 (NAME 'all' runs every one)
 *        workloads --list                          (the names, one a line)
 *
 * --shared-fp runs each workload on a loop whose tasks share the thread's
 * FP control modes (cosync_loop_opts.shared_fp_modes), and ctx_switch
 * without saving them (on x86-64; the other backends' bare switch always
 * saves them). --stack-size sets the loop's default stack size
 * (cosync_loop_opts.stack_size) instead of 64 KiB.
 *
 * Prints '<workload> <ops> <seconds> <ns_per_op>' (the peers' format) and
 * exits 1 on a wrong result or a failed call, 2 on a bad command line.
 *
 * Each workload runs as the main task of its own cosync_run_with (the
 * default options: real clock, 64 KiB stacks; or shared_fp_modes); only
 * the measured part is timed, with CLOCK_MONOTONIC.
 *
 * Every workload of WORKLOADS.md is here, and eight of our own, which
 * have no peer in WORKLOADS.md: spawn_join (sequential spawn + join),
 * spawn_join_eager (the same, each task started eagerly),
 * ctx_switch (the library's bare context switch, the floor under switch
 * and yield), fp_save (what saving a task's FP control modes costs,
 * the larger part of that floor), to_thread (a job's round trip to
 * a pool thread), and tcp_pingpong and tcp_echo (round trips over
 * loopback TCP).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <cosync.h>

#include "context/ctx.h" /* ctx_switch times the library's own switch, bare */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a workload hands back to main(), which prints it once the loop is
 * gone (tasks touch stdio only to report an error). */
typedef struct bench {
    double scale;     /* in */
    const char *name; /* in */
    long ops;         /* out */
    double seconds;   /* out */
} bench;

/* --shared-fp: tasks share the thread's FP control modes. */
static bool shared_fp;
/* --stack-size: the loop's default stack size (0: the library's). */
static size_t stack_size;
/* --dense: the workloads' tasks are dense tasks (cosync_task_opts.dense);
 * NULL, the plain spawn, otherwise. */
static const cosync_task_opts dense_task_opts = {.dense = true};
static const cosync_task_opts *task_opts;

/* A status of our own for "the result is wrong"; outside cosync's codes. */
#define WRONG_RESULT (-20000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* @base scaled down, but never to no work at all: a count that rounds to
 * 0 would leave a workload nothing to check. */
static long scaled(double base, double scale)
{
    long n = (long)(base * scale);
    return n > 0 ? n : 1;
}

/* The context switches of the running loop so far: a workload whose tasks
 * must take turns checks, outside its timed part, that they did. */
static uint64_t loop_switches(void)
{
    cosync_loop_stats st;
    return cosync_loop_get_stats(cosync_loop_current(), &st) == 0 ? st.switches : 0;
}

/* A cosync call failed: say which, and end the workload with its code. */
#define TRY(call)                                                                                  \
    do {                                                                                           \
        int try_rc_ = (call);                                                                      \
        if (try_rc_ < 0) {                                                                         \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,                          \
                    cosync_err_name(try_rc_));                                                     \
            return try_rc_;                                                                        \
        }                                                                                          \
    } while (0)

/* The result is wrong: say what, and end the workload as failed. */
#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "wrong result: " __VA_ARGS__);                                         \
            fputc('\n', stderr);                                                                   \
            return WRONG_RESULT;                                                                   \
        }                                                                                          \
    } while (0)

/* Check a gather's outcomes: every task succeeded. */
static int check_outcomes(const cosync_outcome *out, long n)
{
    for (long i = 0; i < n; i++)
        if (out[i].status != 0) {
            fprintf(stderr, "task %ld ended with %s\n", i, cosync_err_name(out[i].status));
            return out[i].status < 0 ? out[i].status : WRONG_RESULT;
        }
    return 0;
}

/* ------------------------------------------------------------------------
 * A crowd: many tasks spawned, then gathered and checked together.
 * Spawned tasks first run when the spawner next suspends, so a workload
 * that starts its clock after crowd_spawn and before crowd_gather times
 * the work, not the spawning (WORKLOADS.md: setup excluded).
 * ---------------------------------------------------------------------- */

typedef struct crowd {
    cosync_task *t;
    cosync_outcome *out;
    long n;   /* spawned and not yet collected */
    long cap; /* room in t[] and out[] */
} crowd;

static void crowd_free(crowd *c);

/* Room for @cap tasks; allocated before any clock starts. */
static int crowd_init(crowd *c, long cap)
{
    c->t = calloc((size_t)cap + 1, sizeof *c->t);
    c->out = calloc((size_t)cap + 1, sizeof *c->out);
    c->n = 0;
    c->cap = cap;
    if (!c->t || !c->out) {
        crowd_free(c);
        return COSYNC_ENOMEM;
    }
    return 0;
}

/* Spawn one more task fn(arg). On failure the crowd is cancelled,
 * collected and freed (the caller just returns the code). */
static int crowd_spawn(crowd *c, cosync_task_fn fn, void *arg)
{
    int rc = c->n < c->cap ? cosync_task_spawn(&c->t[c->n], fn, arg, task_opts) : COSYNC_ENOMEM;
    if (rc < 0) {
        fprintf(stderr, "cosync_task_spawn #%ld: %s\n", c->n, cosync_err_name(rc));
        crowd_free(c);
        return rc;
    }
    c->n++;
    return 0;
}

/* Spawn @count tasks fn(arg), the same argument for all. */
static int crowd_spawn_n(crowd *c, long count, cosync_task_fn fn, void *arg)
{
    for (long i = 0; i < count; i++) {
        int rc = crowd_spawn(c, fn, arg);
        if (rc < 0)
            return rc;
    }
    return 0;
}

/* Gather every task spawned so far; *seconds = now - t0, read as soon as
 * the last one is collected; then check that each succeeded. The outcomes
 * stay in c->out (in spawn order) until the next spawn; on failure the
 * crowd is freed. */
static int crowd_gather(crowd *c, double t0, double *seconds)
{
    long n = c->n;
    int rc = cosync_gather(c->t, (size_t)n, c->out, COSYNC_FOREVER);
    *seconds = now_s() - t0;
    if (rc != COSYNC_EINVAL)
        c->n = 0; /* every task collected, whatever happened */
    if (rc < 0)
        fprintf(stderr, "cosync_gather: %s\n", cosync_err_name(rc));
    else
        rc = check_outcomes(c->out, n);
    if (rc < 0)
        crowd_free(c);
    return rc;
}

/* Free the crowd; tasks not yet collected (an early exit) are cancelled
 * and collected first. Safe to call twice. */
static void crowd_free(crowd *c)
{
    if (c->n > 0 && c->t)
        cosync_gather(c->t, (size_t)c->n, c->out, 0);
    c->n = 0;
    free(c->t);
    free(c->out);
    c->t = NULL;
    c->out = NULL;
}

/* ------------------------------------------------------------------------
 * switch: two tasks ping-pong through two events (A sets B's event and
 * waits on its own, clear after wake); ops = round trips.
 * ---------------------------------------------------------------------- */

typedef struct pingpong {
    cosync_event a, b;
    long n;
    long pings, pongs;
} pingpong;

/* One side of the ping-pong. Both tasks run this one function (the
 * starter sets the other's event first), as a symmetric ping-pong is
 * written: with two functions, each half trip would also pay for a
 * mispredicted return, the resumed task returning through another call
 * chain than the one that suspended (see docs/benchmarks.md). */
typedef struct player {
    pingpong *p;
    cosync_event *mine, *other;
    long *count;
    bool starts;
} player;

static int play(void *arg, void **result)
{
    (void)result;
    player *me = arg;
    long n = me->p->n;
    if (me->starts)
        TRY(cosync_event_set(me->other));
    for (long i = 0; i < n; i++) {
        TRY(cosync_event_wait(me->mine, COSYNC_FOREVER));
        TRY(cosync_event_clear(me->mine));
        ++*me->count;
        if (!me->starts || i + 1 < n) /* the starter's last wake ends the game */
            TRY(cosync_event_set(me->other));
    }
    return 0;
}

static int wl_switch(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    pingpong p;
    memset(&p, 0, sizeof p);
    cosync_event_init(&p.a);
    cosync_event_init(&p.b);
    p.n = scaled(1e6, b->scale);

    cosync_task t[2];
    cosync_outcome out[2];
    uint64_t switched = loop_switches();
    double t0 = now_s();
    player a = {&p, &p.a, &p.b, &p.pings, true}, b2 = {&p, &p.b, &p.a, &p.pongs, false};
    TRY(cosync_task_spawn(&t[0], play, &a, task_opts));
    TRY(cosync_task_spawn(&t[1], play, &b2, task_opts));
    TRY(cosync_gather(t, 2, out, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    b->ops = p.n;
    switched = loop_switches() - switched;
    TRY(check_outcomes(out, 2));
    CHECK(p.pings == p.n && p.pongs == p.n, "pings %ld pongs %ld, want %ld", p.pings, p.pongs, p.n);
    /* every wait blocked: a switch each half trip */
    CHECK(switched >= 2 * (uint64_t)p.n, "%" PRIu64 " switches for %ld round trips", switched, p.n);
    return 0;
}

/* ------------------------------------------------------------------------
 * yield: 2 tasks each cosync_yield() n times; ops = 2n.
 * ---------------------------------------------------------------------- */

typedef struct spinner {
    long n;
    long done;
} spinner;

static int spin(void *arg, void **result)
{
    (void)result;
    spinner *s = arg;
    for (long i = 0; i < s->n; i++) {
        TRY(cosync_yield());
        s->done++;
    }
    return 0;
}

static int wl_yield(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    spinner s[2] = {{n, 0}, {n, 0}};

    cosync_task t[2];
    cosync_outcome out[2];
    uint64_t switched = loop_switches();
    double t0 = now_s();
    TRY(cosync_task_spawn(&t[0], spin, &s[0], task_opts));
    TRY(cosync_task_spawn(&t[1], spin, &s[1], task_opts));
    TRY(cosync_gather(t, 2, out, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    b->ops = 2 * n;
    switched = loop_switches() - switched;
    TRY(check_outcomes(out, 2));
    CHECK(s[0].done == n && s[1].done == n, "yields %ld and %ld, want %ld each", s[0].done,
          s[1].done, n);
    /* each yield let the other task run: a switch each */
    CHECK(switched >= 2 * (uint64_t)n, "%" PRIu64 " switches for %ld yields", switched, 2 * n);
    return 0;
}

/* ------------------------------------------------------------------------
 * lock_uncontended: one task acquires and releases a free lock n times;
 * ops = pairs.
 * ---------------------------------------------------------------------- */

static int wl_lock_uncontended(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e7, b->scale);
    cosync_lock lock;
    cosync_lock_init(&lock);
    long pairs = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        TRY(cosync_lock_acquire(&lock, COSYNC_FOREVER));
        TRY(cosync_lock_release(&lock));
        pairs++;
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    CHECK(pairs == n && !cosync_lock_locked(&lock), "%ld pairs, want %ld; locked %d", pairs, n,
          (int)cosync_lock_locked(&lock));
    TRY(cosync_lock_destroy(&lock));
    return 0;
}

/* ------------------------------------------------------------------------
 * lock_contended: 100 tasks x n iterations of: acquire, read the counter,
 * cosync_yield(), write counter+1, release; the counter is checked (a lost
 * update means the lock let two in); ops = iterations.
 * ---------------------------------------------------------------------- */

typedef struct locked_counter {
    cosync_lock lock;
    long iters;
    long counter;
} locked_counter;

static int lock_worker(void *arg, void **result)
{
    (void)result;
    locked_counter *lc = arg;
    for (long i = 0; i < lc->iters; i++) {
        TRY(cosync_lock_acquire(&lc->lock, COSYNC_FOREVER));
        long v = lc->counter;
        TRY(cosync_yield());
        lc->counter = v + 1;
        TRY(cosync_lock_release(&lc->lock));
    }
    return 0;
}

static int wl_lock_contended(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long tasks = 100;
    locked_counter lc = {.iters = scaled(1e4, b->scale)};
    cosync_lock_init(&lc.lock);
    crowd c;
    TRY(crowd_init(&c, tasks));
    TRY(crowd_spawn_n(&c, tasks, lock_worker, &lc));
    TRY(crowd_gather(&c, now_s(), &b->seconds));
    crowd_free(&c);
    b->ops = tasks * lc.iters;
    CHECK(lc.counter == b->ops, "counter %ld, want %ld", lc.counter, b->ops);
    TRY(cosync_lock_destroy(&lc.lock));
    return 0;
}

/* ------------------------------------------------------------------------
 * sem_limit: 10,000 tasks share a Semaphore(100); each n times: acquire,
 * cosync_yield(), release; the peak number inside must be exactly 100
 * (as the Python peer checks); ops = acquisitions.
 * ---------------------------------------------------------------------- */

typedef struct limited {
    cosync_sem sem;
    long iters;
    long inside, peak;
} limited;

static int sem_worker(void *arg, void **result)
{
    (void)result;
    limited *l = arg;
    for (long i = 0; i < l->iters; i++) {
        TRY(cosync_sem_acquire(&l->sem, COSYNC_FOREVER));
        if (++l->inside > l->peak)
            l->peak = l->inside;
        TRY(cosync_yield());
        l->inside--;
        TRY(cosync_sem_release(&l->sem));
    }
    return 0;
}

static int wl_sem_limit(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long tasks = 10000;
    limited l = {.iters = scaled(100, b->scale)};
    TRY(cosync_sem_init(&l.sem, 100));
    crowd c;
    TRY(crowd_init(&c, tasks));
    TRY(crowd_spawn_n(&c, tasks, sem_worker, &l));
    TRY(crowd_gather(&c, now_s(), &b->seconds));
    crowd_free(&c);
    b->ops = tasks * l.iters;
    CHECK(l.peak == 100 && l.inside == 0 && cosync_sem_value(&l.sem) == 100,
          "peak %ld (want 100), inside %ld, value %" PRId64, l.peak, l.inside,
          cosync_sem_value(&l.sem));
    TRY(cosync_sem_destroy(&l.sem));
    return 0;
}

/* ------------------------------------------------------------------------
 * event_fanout: n tasks wait on one fresh event; once all are blocked the
 * main task sets it; the time from set to the last waiter collected is
 * timed; 10 rounds with fresh tasks; ops = wake-ups, the count checked.
 * ---------------------------------------------------------------------- */

typedef struct fanout {
    cosync_event ev;
    long waiting; /* waiters that reached their wait, all rounds */
    long done;
} fanout;

static int fanout_waiter(void *arg, void **result)
{
    (void)result;
    fanout *f = arg;
    f->waiting++;
    TRY(cosync_event_wait(&f->ev, COSYNC_FOREVER));
    f->done++;
    return 0;
}

static int wl_event_fanout(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long waiters = scaled(1e5, b->scale), rounds = 10;
    fanout f = {.done = 0};
    crowd c;
    TRY(crowd_init(&c, waiters));
    b->seconds = 0;
    for (long r = 0; r < rounds; r++) {
        cosync_event_init(&f.ev);
        TRY(crowd_spawn_n(&c, waiters, fanout_waiter, &f));
        TRY(cosync_yield()); /* every waiter runs once and blocks */
        /* all reached their wait, and (checked below) none came back yet */
        CHECK(f.waiting == (r + 1) * waiters, "round %ld: %ld of %ld waiters waiting at the set", r,
              f.waiting - r * waiters, waiters);
        long before = f.done;
        double t0 = now_s();
        TRY(cosync_event_set(&f.ev));
        double seconds;
        TRY(crowd_gather(&c, t0, &seconds));
        b->seconds += seconds;
        CHECK(before == r * waiters, "round %ld: %ld woken before the set", r,
              before - r * waiters);
    }
    crowd_free(&c);
    b->ops = waiters * rounds;
    CHECK(f.done == b->ops, "done %ld, want %ld", f.done, b->ops);
    return 0;
}

/* ------------------------------------------------------------------------
 * condition_pc: the seed's bounded buffer: one condition (on its own
 * lock), a ring of 64; 1 producer puts 0..n-1, 1 consumer takes and sums;
 * each waits `while full/empty: wait()` and notifies after each put/get;
 * the sum is checked; ops = items.
 * ---------------------------------------------------------------------- */

#define PC_CAP 64

typedef struct bounded {
    cosync_cond cond;
    long buf[PC_CAP];
    size_t head, count; /* ring: count items from buf[head] on */
    long n;
    int64_t sum;
} bounded;

static int pc_producer(void *arg, void **result)
{
    (void)result;
    bounded *q = arg;
    for (long i = 0; i < q->n; i++) {
        TRY(cosync_cond_acquire(&q->cond, COSYNC_FOREVER));
        while (q->count >= PC_CAP)
            TRY(cosync_cond_wait(&q->cond, COSYNC_FOREVER));
        q->buf[(q->head + q->count++) % PC_CAP] = i;
        TRY(cosync_cond_notify(&q->cond, 1));
        TRY(cosync_cond_release(&q->cond));
    }
    return 0;
}

static int pc_consumer(void *arg, void **result)
{
    (void)result;
    bounded *q = arg;
    for (long i = 0; i < q->n; i++) {
        TRY(cosync_cond_acquire(&q->cond, COSYNC_FOREVER));
        while (q->count == 0)
            TRY(cosync_cond_wait(&q->cond, COSYNC_FOREVER));
        q->sum += q->buf[q->head];
        q->head = (q->head + 1) % PC_CAP;
        q->count--;
        TRY(cosync_cond_notify(&q->cond, 1));
        TRY(cosync_cond_release(&q->cond));
    }
    return 0;
}

static int wl_condition_pc(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    bounded q = {.n = scaled(1e6, b->scale)};
    cosync_cond_init(&q.cond, NULL);
    crowd c;
    TRY(crowd_init(&c, 2));
    TRY(crowd_spawn(&c, pc_producer, &q));
    TRY(crowd_spawn(&c, pc_consumer, &q));
    TRY(crowd_gather(&c, now_s(), &b->seconds));
    crowd_free(&c);
    b->ops = q.n;
    int64_t want = (int64_t)q.n * (q.n - 1) / 2;
    CHECK(q.sum == want && q.count == 0, "sum %" PRId64 ", want %" PRId64 "; %zu left", q.sum, want,
          q.count);
    TRY(cosync_cond_destroy(&q.cond));
    return 0;
}

/* ------------------------------------------------------------------------
 * barrier: 100 tasks x n rounds of cosync_barrier_wait on a 100-party
 * barrier; the indices each round hands out must be 0..99, so their total
 * over all rounds is checked; ops = task-rounds.
 * ---------------------------------------------------------------------- */

typedef struct barrier_rounds {
    cosync_barrier barrier;
    long rounds;
    int64_t index_sum;
} barrier_rounds;

static int barrier_worker(void *arg, void **result)
{
    (void)result;
    barrier_rounds *r = arg;
    for (long i = 0; i < r->rounds; i++) {
        int index = cosync_barrier_wait(&r->barrier, COSYNC_FOREVER);
        TRY(index);
        r->index_sum += index;
    }
    return 0;
}

static int wl_barrier(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long parties = 100;
    barrier_rounds r = {.rounds = scaled(1e4, b->scale)};
    TRY(cosync_barrier_init(&r.barrier, (unsigned)parties));
    crowd c;
    TRY(crowd_init(&c, parties));
    TRY(crowd_spawn_n(&c, parties, barrier_worker, &r));
    uint64_t switched = loop_switches();
    TRY(crowd_gather(&c, now_s(), &b->seconds));
    switched = loop_switches() - switched;
    crowd_free(&c);
    b->ops = parties * r.rounds;
    int64_t want = (int64_t)r.rounds * parties * (parties - 1) / 2;
    CHECK(r.index_sum == want, "index sum %" PRId64 ", want %" PRId64, r.index_sum, want);
    /* each round, every arrival but the last blocked until the round was full */
    CHECK(switched >= (uint64_t)(r.rounds * (parties - 1)), "%" PRIu64 " switches for %ld rounds",
          switched, r.rounds);
    TRY(cosync_barrier_destroy(&r.barrier));
    return 0;
}

/* ------------------------------------------------------------------------
 * spawn: create n trivial tasks (each returns its index) and gather them;
 * the time covers spawn + gather; the sum of the results is checked.
 * ---------------------------------------------------------------------- */

static int trivial(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/* spawn_join (ours, not in WORKLOADS.md; no peer): spawn one trivial task
 * and join it, n times in a row: the cost of a task's whole life when its
 * stack and record are reused, as libdill's spawn benchmark measures. */
static int spawn_join_with(bench *b, const cosync_task_opts *opts)
{
    long n = scaled(1e6, b->scale);
    int rc = 0;
    int64_t sum = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        cosync_task t;
        int status;
        void *res;
        TRY(cosync_task_spawn(&t, trivial, (void *)(intptr_t)i, opts));
        TRY(cosync_task_join(t, &status, &res, COSYNC_FOREVER));
        CHECK(status == 0, "task %ld ended with %s", i, cosync_err_name(status));
        sum += (int64_t)(intptr_t)res;
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    if (sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "wrong result: sum %" PRId64 "\n", sum);
        return WRONG_RESULT;
    }
    return rc;
}

static int wl_spawn_join(void *arg, void **result)
{
    (void)result;
    return spawn_join_with(arg, task_opts);
}

/* spawn_join_eager (ours; no peer): the same with each task started
 * eagerly (cosync_task_opts.eager), as libdill's go() and asyncio's
 * eager_task_factory start theirs: the task ends inside its spawn, and
 * the join collects it without suspending. */
static int wl_spawn_join_eager(void *arg, void **result)
{
    (void)result;
    cosync_task_opts eager = {.eager = true, .dense = task_opts && task_opts->dense};
    return spawn_join_with(arg, &eager);
}

static int wl_spawn(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    /* The handle and outcome arrays are the caller's, allocated before the
     * clock starts; here the clock covers the spawning too. */
    crowd c;
    TRY(crowd_init(&c, n));
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        TRY(crowd_spawn(&c, trivial, (void *)(intptr_t)i));
    TRY(crowd_gather(&c, t0, &b->seconds));
    b->ops = n;
    int64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += (int64_t)(intptr_t)c.out[i].result;
    crowd_free(&c);
    int64_t want = (int64_t)n * (n - 1) / 2;
    CHECK(sum == want, "sum %" PRId64 ", want %" PRId64, sum, want);
    return 0;
}

/* ------------------------------------------------------------------------
 * ctx_switch (ours; no peer): two contexts switch to each other n times
 * with the switch the scheduler inlines, and do nothing else: what two
 * context switches cost on this machine, the floor under `switch` (two per
 * round trip) and `yield` (one per yield). ops = round trips.
 * ---------------------------------------------------------------------- */

static struct bare_pair {
    cosync__ctx task, other;
    long bounces;
} bare;

static void bouncer(void *arg)
{
    (void)arg;
    for (;;) {
        bare.bounces++;
        cosync__ctx_switch_inline(&bare.other, &bare.task, !shared_fp);
    }
}

static int wl_ctx_switch(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e7, b->scale);
    size_t size = 64 * 1024;
    char *stack = aligned_alloc(64, size);
    if (!stack)
        return COSYNC_ENOMEM;
    bare.bounces = 0;
    /* runs the bouncer up to its first switch back */
    cosync__ctx_start(&bare.task, &bare.other, stack + size, size, bouncer, NULL);
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        cosync__ctx_switch_inline(&bare.task, &bare.other, !shared_fp);
    b->seconds = now_s() - t0;
    b->ops = n;
    free(stack); /* the bouncer is never resumed */
    CHECK(bare.bounces == n + 1, "bounces %ld, want %ld", bare.bounces, n + 1);
    return 0;
}

/* ------------------------------------------------------------------------
 * fp_save (ours; no peer): the save half of a switch that keeps each
 * task's own FP control modes, alone: on x86-64 stmxcsr + fnstcw to
 * memory, on AArch64 a read of the FPCR. Every switch out of a task does
 * this once unless the loop shares the modes (--shared-fp does not change
 * it: it times the instructions, not a loop). ops = saves.
 * ---------------------------------------------------------------------- */

static int wl_fp_save(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e7, b->scale);
    uint64_t slots[8]; /* a few words, as the frames of several tasks are */
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        cosync__fpenv_save(&slots[i & 7]);
    b->seconds = now_s() - t0;
    b->ops = n;
    /* the modes saved are the running ones (x86-64: less MXCSR's
     * exception flags, which the save keeps and the read clears) */
    uint64_t want = cosync__fpenv_read();
#if defined(__x86_64__)
    uint64_t got = slots[(n - 1) & 7] & ~(uint64_t)0x3f;
#else
    uint64_t got = slots[(n - 1) & 7];
#endif
    CHECK(got == want, "saved modes %#" PRIx64 ", running %#" PRIx64, got, want);
    return 0;
}

/* ------------------------------------------------------------------------
 * sleepers: n tasks each cosync_sleep(d), d spread evenly over 0..100 ms,
 * gathered; the elapsed time is reported (the time over the ideal 100 ms
 * is the overhead), ops = tasks.
 * ---------------------------------------------------------------------- */

static int sleeper(void *arg, void **result)
{
    (void)result;
    return cosync_sleep((int64_t)(intptr_t)arg);
}

static int wl_sleepers(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e5, b->scale);
    crowd c;
    TRY(crowd_init(&c, n));
    double t0 = now_s();
    for (long i = 0; i < n; i++)
        TRY(crowd_spawn(&c, sleeper, (void *)(intptr_t)(COSYNC_MS(100) * i / n)));
    TRY(crowd_gather(&c, t0, &b->seconds));
    crowd_free(&c);
    b->ops = n;
    /* Nobody wakes before its deadline: the last sleeps ~100 ms (less the
     * age of the loop's cached clock when it armed its timer: allow 1 ms). */
    CHECK(n <= 1 || b->seconds >= 0.1 * (double)(n - 1) / (double)n - 0.001,
          "%ld sleepers done in %.6f s (< 100 ms)", n, b->seconds);
    return 0;
}

/* ------------------------------------------------------------------------
 * timeout_ok: one task, n times: acquire a free lock with a deadline 1 s
 * away (our wait_for(lock.acquire(), 1 s): the deadline is on the call),
 * then release; ops = acquisitions.
 * ---------------------------------------------------------------------- */

static int wl_timeout_ok(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    cosync_lock lock;
    cosync_lock_init(&lock);
    long acquired = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        TRY(cosync_lock_acquire(&lock, cosync_deadline_after(COSYNC_SEC(1))));
        acquired++;
        TRY(cosync_lock_release(&lock));
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    CHECK(acquired == n && !cosync_lock_locked(&lock), "%ld acquired, want %ld", acquired, n);
    TRY(cosync_lock_destroy(&lock));
    return 0;
}

/* ------------------------------------------------------------------------
 * timeout_block (ours): one task, n times: a timeout block of 1 s around
 * the acquire and release of a free lock (asyncio's `async with
 * asyncio.timeout(1): async with lock: pass`), then the leave; ops =
 * blocks. What a block costs when it does not expire: its node, its timer
 * armed and disarmed.
 * ---------------------------------------------------------------------- */

static int wl_timeout_block(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    cosync_lock lock;
    cosync_lock_init(&lock);
    long left = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        cosync_timeout tm;
        TRY(cosync_timeout_enter(&tm, cosync_deadline_after(COSYNC_SEC(1))));
        int rc = cosync_lock_acquire(&lock, COSYNC_FOREVER);
        if (rc == 0)
            rc = cosync_lock_release(&lock);
        TRY(cosync_timeout_leave(&tm, rc));
        left += !cosync_timeout_expired(&tm);
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    CHECK(left == n && !cosync_lock_locked(&lock), "%ld blocks left unexpired, want %ld", left, n);
    TRY(cosync_lock_destroy(&lock));
    return 0;
}

/* ------------------------------------------------------------------------
 * call_soon (ours): 100 callbacks, each scheduling itself again with
 * cosync_loop_call_soon until n have run in all, while the main task waits
 * on an event the last one sets; ops = callbacks run. What a callback
 * costs: its queueing, its place behind what is ready, its run in the
 * loop's context. The callbacks count their own runs, which are checked.
 * ---------------------------------------------------------------------- */

enum { CHAINS = 100 };

typedef struct chains {
    cosync_callback cb[CHAINS];
    long runs[CHAINS];
    long left; /* callbacks still to run */
    cosync_event done;
    cosync_loop *loop;
} chains;

static chains *the_chains;

static void chain_step(void *arg)
{
    long i = (long)(intptr_t)arg;
    chains *c = the_chains;
    c->runs[i]++;
    if (--c->left == 0)
        cosync_event_set(&c->done);
    else if (c->left >= CHAINS)
        cosync_loop_call_soon(c->loop, &c->cb[i], chain_step, arg);
}

static int wl_call_soon(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    if (n < CHAINS)
        n = CHAINS;
    static chains c;
    memset(&c, 0, sizeof c);
    c.left = n;
    c.loop = cosync_loop_current();
    cosync_event_init(&c.done);
    the_chains = &c;
    double t0 = now_s();
    for (long i = 0; i < CHAINS; i++)
        TRY(cosync_loop_call_soon(c.loop, &c.cb[i], chain_step, (void *)(intptr_t)i));
    TRY(cosync_event_wait(&c.done, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    b->ops = n;
    long total = 0;
    for (long i = 0; i < CHAINS; i++)
        total += c.runs[i];
    CHECK(total == n && c.runs[0] >= n / CHAINS, "%ld callbacks ran, want %ld", total, n);
    return 0;
}

/* ------------------------------------------------------------------------
 * rwlock: 64 readers x n read sections and 4 writers x n/10 write sections
 * on one (writer-preferring) cosync_rwlock, each section a cosync_yield();
 * writers do a read-yield-write of a counter, which is checked, and
 * readers check that no writer holds the lock; ops = sections.
 * ---------------------------------------------------------------------- */

typedef struct rwshared {
    cosync_rwlock rw;
    long r_iters, w_iters;
    long value;
} rwshared;

static int rw_reader(void *arg, void **result)
{
    (void)result;
    rwshared *s = arg;
    for (long i = 0; i < s->r_iters; i++) {
        TRY(cosync_rwlock_read_acquire(&s->rw, COSYNC_FOREVER));
        TRY(cosync_yield());
        CHECK(!cosync_rwlock_write_locked(&s->rw), "a writer inside a read section");
        TRY(cosync_rwlock_read_release(&s->rw));
    }
    return 0;
}

static int rw_writer(void *arg, void **result)
{
    (void)result;
    rwshared *s = arg;
    for (long i = 0; i < s->w_iters; i++) {
        TRY(cosync_rwlock_write_acquire(&s->rw, COSYNC_FOREVER));
        long v = s->value;
        TRY(cosync_yield());
        s->value = v + 1;
        TRY(cosync_rwlock_write_release(&s->rw));
    }
    return 0;
}

static int wl_rwlock(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long readers = 64, writers = 4;
    rwshared s = {.r_iters = scaled(1e4, b->scale), .w_iters = scaled(1e3, b->scale)};
    cosync_rwlock_init(&s.rw);
    crowd c;
    TRY(crowd_init(&c, readers + writers));
    TRY(crowd_spawn_n(&c, readers, rw_reader, &s));
    TRY(crowd_spawn_n(&c, writers, rw_writer, &s));
    TRY(crowd_gather(&c, now_s(), &b->seconds));
    crowd_free(&c);
    b->ops = readers * s.r_iters + writers * s.w_iters;
    CHECK(s.value == writers * s.w_iters, "value %ld, want %ld", s.value, writers * s.w_iters);
    TRY(cosync_rwlock_destroy(&s.rw));
    return 0;
}

/* ------------------------------------------------------------------------
 * queue_spsc: Queue(maxsize=128); one producer puts the ints 0..n-1, one
 * consumer gets them and sums; ops = items.
 * ---------------------------------------------------------------------- */

typedef struct spsc {
    cosync_queue q;
    long n;
    int64_t sum;
    int64_t misorder; /* nonzero once an item came out of order */
} spsc;

static int spsc_producer(void *arg, void **result)
{
    (void)result;
    spsc *s = arg;
    for (long i = 0; i < s->n; i++) {
        int64_t v = i;
        TRY(cosync_queue_put(&s->q, &v, COSYNC_FOREVER));
    }
    return 0;
}

static int spsc_consumer(void *arg, void **result)
{
    (void)result;
    spsc *s = arg;
    for (long i = 0; i < s->n; i++) {
        int64_t v;
        TRY(cosync_queue_get(&s->q, &v, COSYNC_FOREVER));
        s->sum += v;
        s->misorder |= v ^ i;
    }
    return 0;
}

static int wl_queue_spsc(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    spsc s = {.n = scaled(2e6, b->scale)};
    TRY(cosync_queue_init(&s.q, sizeof(int64_t), 128));
    crowd c;
    TRY(crowd_init(&c, 2));
    double t0 = now_s();
    TRY(crowd_spawn(&c, spsc_producer, &s));
    TRY(crowd_spawn(&c, spsc_consumer, &s));
    TRY(crowd_gather(&c, t0, &b->seconds));
    crowd_free(&c);
    b->ops = s.n;
    int64_t want = (int64_t)s.n * (s.n - 1) / 2;
    CHECK(s.sum == want, "sum %" PRId64 ", want %" PRId64, s.sum, want);
    CHECK(s.misorder == 0, "items came out of the order they were put in");
    TRY(cosync_queue_destroy(&s.q));
    return 0;
}

/* ------------------------------------------------------------------------
 * queue_mpmc: Queue(maxsize=1024); 4 producers x n ints, 4 consumers
 * calling task_done per item; main awaits join(), then stops the
 * consumers; the sum is checked; ops = items.
 * ---------------------------------------------------------------------- */

typedef struct mpmc {
    cosync_queue q;
    long per;
    int64_t sum;
} mpmc;

typedef struct mpmc_producer_arg {
    mpmc *m;
    long k;
} mpmc_producer_arg;

static int mpmc_producer(void *arg, void **result)
{
    (void)result;
    mpmc_producer_arg *p = arg;
    for (long i = 0; i < p->m->per; i++) {
        int64_t v = p->k * p->m->per + i;
        TRY(cosync_queue_put(&p->m->q, &v, COSYNC_FOREVER));
    }
    return 0;
}

static int mpmc_consumer(void *arg, void **result)
{
    (void)result;
    mpmc *m = arg;
    for (;;) {
        int64_t v;
        int rc = cosync_queue_get(&m->q, &v, COSYNC_FOREVER);
        if (rc == COSYNC_ECANCELED)
            return rc; /* stopped by main, as the peers cancel theirs */
        TRY(rc);
        m->sum += v;
        TRY(cosync_queue_task_done(&m->q));
    }
}

static int wl_queue_mpmc(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    mpmc m = {.per = scaled(5e5, b->scale)};
    mpmc_producer_arg pa[4];
    TRY(cosync_queue_init(&m.q, sizeof(int64_t), 1024));
    cosync_task consumers[4];
    crowd c;
    TRY(crowd_init(&c, 4));
    double t0 = now_s();
    for (int k = 0; k < 4; k++)
        TRY(cosync_task_spawn(&consumers[k], mpmc_consumer, &m, task_opts));
    for (int k = 0; k < 4; k++) {
        pa[k] = (mpmc_producer_arg){&m, k};
        TRY(crowd_spawn(&c, mpmc_producer, &pa[k]));
    }
    double ignored;
    TRY(crowd_gather(&c, t0, &ignored));
    TRY(cosync_queue_join(&m.q, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    crowd_free(&c);
    for (int k = 0; k < 4; k++)
        TRY(cosync_task_cancel(consumers[k]));
    cosync_outcome out[4];
    TRY(cosync_gather(consumers, 4, out, COSYNC_FOREVER));
    for (int k = 0; k < 4; k++)
        CHECK(out[k].status == COSYNC_ECANCELED, "consumer %d ended with %s", k,
              cosync_err_name(out[k].status));
    long n = 4 * m.per;
    b->ops = n;
    int64_t want = (int64_t)n * (n - 1) / 2;
    CHECK(m.sum == want, "sum %" PRId64 ", want %" PRId64, m.sum, want);
    TRY(cosync_queue_destroy(&m.q));
    return 0;
}

/* ------------------------------------------------------------------------
 * to_thread (ours; no peer in WORKLOADS.md, asyncio's by hand:
 * bench/peers/to_thread.py): one task hands n trivial jobs, one after the
 * other, to the loop's default pool (asyncio.to_thread) and checks their
 * results: a job's round trip, two hand-overs between threads. The
 * pool's thread is started before the clock.
 * ---------------------------------------------------------------------- */

static int job_return_arg(void *arg, void **result)
{
    *result = arg;
    return 0;
}

static int wl_to_thread(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(2e4, b->scale);
    void *r = NULL;
    TRY(cosync_to_thread(job_return_arg, NULL, &r, COSYNC_FOREVER));
    int64_t sum = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        TRY(cosync_to_thread(job_return_arg, (void *)(intptr_t)i, &r, COSYNC_FOREVER));
        sum += (int64_t)(intptr_t)r;
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    int64_t want = (int64_t)n * (n - 1) / 2;
    CHECK(sum == want, "sum %" PRId64 ", want %" PRId64, sum, want);
    return 0;
}

/* ------------------------------------------------------------------------
 * tcp_pingpong and tcp_echo (ours; no peer in WORKLOADS.md, asyncio's and
 * Go's by hand: bench/peers/tcp.py, bench/peers/tcp.go): clients send
 * MSG bytes over loopback TCP, a handler task per connection reads them
 * and sends them back, and the client reads the echo; ops are round
 * trips. tcp_pingpong: one connection, 100,000 round trips (latency: a
 * wake-up by epoll each way). tcp_echo: 100 connections at once, 1,000
 * round trips each (the loop serving many sockets). Connecting is not
 * timed; every byte echoed is checked.
 * ---------------------------------------------------------------------- */

#define MSG 64

/* Read exactly @len bytes: 0, or an error (COSYNC_EPIPE at an early end). */
static int recv_exactly(cosync_io *io, char *buf, size_t len)
{
    for (size_t got = 0; got < len;) {
        ssize_t n = cosync_sock_recv(io, buf + got, len - got, COSYNC_FOREVER);
        if (n <= 0)
            return n < 0 ? (int)n : COSYNC_EPIPE;
        got += (size_t)n;
    }
    return 0;
}

typedef struct tcp_bench {
    cosync_io listener;
    cosync_addr addr;
    long conns;
    long rounds; /* per connection */
    long echoed; /* round trips checked, over all clients */
} tcp_bench;

static int echo_handler(void *arg, void **result)
{
    (void)result;
    cosync_io *conn = arg;
    char buf[MSG];
    int rc;
    while ((rc = recv_exactly(conn, buf, MSG)) == 0)
        if ((rc = cosync_sock_sendall(conn, buf, MSG, NULL, COSYNC_FOREVER)) != 0)
            break;
    cosync_io_close(conn);
    free(conn);
    return rc == COSYNC_EPIPE ? 0 : rc; /* the client closed: done */
}

static int echo_server(void *arg, void **result)
{
    (void)result;
    tcp_bench *t = arg;
    for (long i = 0; i < t->conns; i++) {
        cosync_io *conn = malloc(sizeof *conn);
        if (!conn)
            return COSYNC_ENOMEM;
        int rc = cosync_sock_accept(&t->listener, conn, NULL, COSYNC_FOREVER);
        if (rc == 0)
            rc = cosync_task_spawn(NULL, echo_handler, conn, task_opts);
        if (rc) {
            free(conn);
            return rc;
        }
    }
    return 0;
}

typedef struct tcp_client {
    tcp_bench *t;
    cosync_io io;
    long id;
    cosync_event *go;
} tcp_client;

static int echo_client(void *arg, void **result)
{
    (void)result;
    tcp_client *c = arg;
    char out[MSG], in[MSG];
    TRY(cosync_event_wait(c->go, COSYNC_FOREVER));
    for (long r = 0; r < c->t->rounds; r++) {
        snprintf(out, sizeof out, "%ld:%ld", c->id, r);
        TRY(cosync_sock_sendall(&c->io, out, MSG, NULL, COSYNC_FOREVER));
        TRY(recv_exactly(&c->io, in, MSG));
        CHECK(memcmp(in, out, MSG) == 0, "connection %ld, round %ld: a wrong echo", c->id, r);
        c->t->echoed++;
    }
    return cosync_io_close(&c->io);
}

static int run_tcp(bench *b, long conns, long rounds)
{
    tcp_bench t = {.conns = conns, .rounds = rounds};
    TRY(cosync_addr_ip(&t.addr, "127.0.0.1", 0));
    TRY(cosync_sock_listen(&t.listener, &t.addr, (int)conns));
    TRY(cosync_sock_local_addr(&t.listener, &t.addr));
    cosync_task server;
    TRY(cosync_task_spawn(&server, echo_server, &t, NULL));
    tcp_client *c = calloc((size_t)conns, sizeof *c);
    cosync_task *ts = calloc((size_t)conns, sizeof *ts);
    cosync_outcome *out = calloc((size_t)conns, sizeof *out);
    CHECK(c && ts && out, "out of memory");
    cosync_event go = COSYNC_EVENT_INIT;
    for (long i = 0; i < conns; i++) {
        c[i] = (tcp_client){.t = &t, .id = i, .go = &go};
        TRY(cosync_tcp_connect(&c[i].io, &t.addr, COSYNC_FOREVER));
        TRY(cosync_task_spawn(&ts[i], echo_client, &c[i], task_opts));
    }
    TRY(cosync_task_join(server, NULL, NULL, COSYNC_FOREVER));
    double t0 = now_s();
    TRY(cosync_event_set(&go));
    TRY(cosync_gather(ts, (size_t)conns, out, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    int rc = check_outcomes(out, conns);
    free(c);
    free(ts);
    free(out);
    cosync_io_close(&t.listener);
    if (rc)
        return rc;
    b->ops = conns * rounds;
    CHECK(t.echoed == b->ops, "%ld round trips checked, want %ld", t.echoed, b->ops);
    /* the handlers end once they see their clients' ends */
    while (cosync_loop_all_tasks(NULL, NULL, 0) > 1)
        TRY(cosync_yield());
    return 0;
}

static int wl_tcp_pingpong(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    return run_tcp(b, 1, scaled(1e5, b->scale));
}

static int wl_tcp_echo(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    return run_tcp(b, 100, scaled(1e3, b->scale));
}

/* ------------------------------------------------------------------------
 * The table: add a line per new workload, in WORKLOADS.md's order.
 * ---------------------------------------------------------------------- */

static const struct workload {
    const char *name;
    cosync_task_fn fn;
} workloads[] = {
    {"switch", wl_switch},
    {"yield", wl_yield},
    {"lock_uncontended", wl_lock_uncontended},
    {"lock_contended", wl_lock_contended},
    {"sem_limit", wl_sem_limit},
    {"queue_spsc", wl_queue_spsc},
    {"queue_mpmc", wl_queue_mpmc},
    {"event_fanout", wl_event_fanout},
    {"condition_pc", wl_condition_pc},
    {"barrier", wl_barrier},
    {"spawn", wl_spawn},
    {"spawn_join", wl_spawn_join},
    {"spawn_join_eager", wl_spawn_join_eager},
    {"ctx_switch", wl_ctx_switch},
    {"fp_save", wl_fp_save},
    {"sleepers", wl_sleepers},
    {"timeout_ok", wl_timeout_ok},
    {"timeout_block", wl_timeout_block},
    {"call_soon", wl_call_soon},
    {"rwlock", wl_rwlock},
    {"to_thread", wl_to_thread},
    {"tcp_pingpong", wl_tcp_pingpong},
    {"tcp_echo", wl_tcp_echo},
};

#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static int run_workload(const struct workload *w, double scale)
{
    bench b = {.scale = scale, .name = w->name};
    int rc = cosync_run_with(
        w->fn, &b, &(cosync_loop_opts){.shared_fp_modes = shared_fp, .stack_size = stack_size});
    if (rc != 0) {
        if (rc != WRONG_RESULT)
            fprintf(stderr, "%s: failed: %s\n", w->name, cosync_err_name(rc));
        return 1;
    }
    if (b.ops <= 0) {
        fprintf(stderr, "%s: no work at scale %g\n", w->name, scale);
        return 1;
    }
    printf("%s %ld %.6f %.1f\n", w->name, b.ops, b.seconds, b.seconds * 1e9 / (double)b.ops);
    fflush(stdout);
    return 0;
}

static void usage(void)
{
    fprintf(stderr,
            "usage: workloads [--shared-fp] [--dense] [--stack-size BYTES] NAME|all [SCALE]\n"
            "       workloads --list\nnames:");
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    for (;;) {
        if (argc >= 2 && strcmp(argv[1], "--shared-fp") == 0) {
            shared_fp = true;
        } else if (argc >= 2 && strcmp(argv[1], "--dense") == 0) {
            task_opts = &dense_task_opts;
        } else if (argc >= 3 && strcmp(argv[1], "--stack-size") == 0) {
            char *end;
            unsigned long long v = strtoull(argv[2], &end, 10);
            if (argv[2][0] == '-' || end == argv[2] || *end != '\0' || v == 0) {
                fprintf(stderr, "bad stack size '%s'\n", argv[2]);
                usage();
                return 2;
            }
            stack_size = (size_t)v;
            argv++;
            argc--;
        } else {
            break;
        }
        argv++;
        argc--;
    }
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NWORKLOADS; i++)
            printf("%s\n", workloads[i].name);
        return 0;
    }
    if (argc < 2 || argc > 3) {
        usage();
        return 2;
    }
    double scale = 1.0;
    if (argc == 3) {
        char *end;
        scale = strtod(argv[2], &end);
        if (end == argv[2] || *end != '\0' || !(scale > 0)) {
            fprintf(stderr, "bad scale '%s'\n", argv[2]);
            usage();
            return 2;
        }
    }
    bool all = strcmp(argv[1], "all") == 0;
    bool ran = false;
    for (size_t i = 0; i < NWORKLOADS; i++) {
        if (all || strcmp(argv[1], workloads[i].name) == 0) {
            ran = true;
            if (run_workload(&workloads[i], scale) != 0)
                return 1;
        }
    }
    if (!ran) {
        fprintf(stderr, "unknown workload '%s'\n", argv[1]);
        usage();
        return 2;
    }
    return 0;
}
