/*
 * test_workerpool.c - cosync_workerpool, the patterns layer's worker pool:
 * jobs run in the order submitted by at most `workers` worker tasks,
 * spawned lazily (and eagerly started) as submits need them; the backlog
 * and its waiting submitters (deadlines, cancellation, FIFO admission);
 * join; shutdown with and without cancel, and its escalation; destroy and
 * every misuse error; allocation failures in init and in the first
 * submits; the loop's close with workers alive; eager loops and dense
 * workers; the jobs' task-local pointer and the workers' names; and a
 * seeded model of random programs with its invariants.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 * A trace records, in order and with their virtual times (ms from the
 * loop's start), the jobs started (s<i>), that caught a cancel and went
 * on (c<i>), ended (e<i>, or e<i>!CODE for a job that returned an error)
 * and dropped unrun (x<i>: the done callback with COSYNC_ESHUTDOWN), and
 * what the helper tasks that submit (S?), join (J?), shut down (D?) or
 * cancel a worker (C?) did: arrived (S1?), got a code (S1!ETIMEDOUT) or
 * succeeded (S1+, J1=, D1=); "M" is the test's main.
 *
 * The two jobs_start_in_submit_order_* cases and the model found that a
 * worker coming back for a job took one behind those handed to workers
 * that had not run yet; the two loop_close_* cases, that a worker in a job
 * when the loop closed did not end. Both are fixed. An argument runs only
 * the tests whose names contain it.
 */
/* ctest-timeout: 120 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trace.h"
#include "core.h"  /* COSYNC__DENSE_SUPPORTED */
#include "fault.h" /* cosync__fault_countdown */

/* A job's failure: a code of the test's own. */
#define FAIL_CODE (-20001)

/* @ms milliseconds after a fresh virtual-clock loop started */
#define AT(ms) (TRACE_T0 + COSYNC_MS(ms))

/* ========================================================================
 * 9. The loop configurations: plain, eager loop, dense workers (RUN_CFGS)
 * ===================================================================== */

typedef struct config {
    const char *what;
    bool eager_loop; /* cosync_loop_opts.eager_tasks */
    bool dense;      /* the workers' opts.task.dense */
} config;

static const config cfgs[] = {
    {"plain", false, false},
    {"eager loop", true, false},
    {"dense workers", false, true},
};
#define NCFG ((int)(sizeof cfgs / sizeof cfgs[0]))
static config CFG = {"plain", false, false};

static cosync_loop *cfg_loop(void)
{
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.virtual_clock = true, .eager_tasks = CFG.eager_loop}));
    CHECK_NOTNULL(loop);
    return loop;
}

/* run_main() on a loop of the current configuration. */
static int run_cfg(cosync_task_fn fn, void *arg)
{
    cosync_loop *loop = cfg_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    end_loop(loop);
    return status;
}

static void run_ok(cosync_task_fn fn, void *arg)
{
    CHECK_OK(run_cfg(fn, arg));
}

/* The tests whose names contain this (the program's argument), or all. */
static const char *only;
#define SELECTED(name) (!only || strstr(#name, only))

/* RUN(@name) if selected. */
#define RUN1(name)                                                                                 \
    do {                                                                                           \
        if (SELECTED(name))                                                                        \
            RUN(name);                                                                             \
    } while (0)

/* RUN(@name) in every configuration, if selected. */
#define RUN_CFGS(name)                                                                             \
    do {                                                                                           \
        for (int cfg_i = 0; cfg_i < NCFG && SELECTED(name); cfg_i++) {                             \
            CFG = cfgs[cfg_i];                                                                     \
            if (CFG.dense && !COSYNC__DENSE_SUPPORTED)                                             \
                continue;                                                                          \
            printf("  (%s)\n", CFG.what);                                                          \
            RUN(name);                                                                             \
        }                                                                                          \
        CFG = cfgs[0];                                                                             \
    } while (0)

/* The trace: tr(), trace_reset(), CHECK_TRACE() (trace.h) */

/* A return code, short. */
static const char *code(int rc)
{
    if (rc == FAIL_CODE)
        return "FAIL";
    const char *name = cosync_err_name(rc);
    return strncmp(name, "COSYNC_", 7) == 0 ? name + 7 : name;
}

/* ========================================================================
 * Jobs and the done callback
 * ===================================================================== */

#define MAXJ 256

typedef struct job job;

struct job {
    int id;
    int64_t sleep;        /* 0: no suspension; COSYNC_FOREVER: until cancelled */
    int status;           /* returned when the sleep ends well */
    int64_t after_cancel; /* > 0: a cancel is caught, then it sleeps this long (and returns 0) */
    int (*extra)(job *);  /* called at the start (after the trace), its code in extra_rc */
    void *extra_arg;
    void *set_local; /* set as its task-local pointer before it ends (NULL: not) */
    /* observed */
    bool started, ended;
    int sleep_rc, extra_rc, again_rc, ret;
    uint64_t tid;
    char worker[32]; /* its worker's name */
    void *local;     /* its task-local pointer at the start */
    int ndone, done_status;
    void *done_result;
    bool done_in_task;
};

typedef struct jobs {
    job j[MAXJ];
    int running, max_running, nstarted, ndone;
    int started[MAXJ]; /* ids, in the order they started */
    int done[MAXJ];    /* ids, in the order of the done callback */
} jobs;

static jobs G;

static void jobs_reset(void)
{
    memset(&G, 0, sizeof G);
    for (int i = 0; i < MAXJ; i++)
        G.j[i] = (job){.id = i, .sleep_rc = 1, .extra_rc = 1, .again_rc = 1};
    trace_reset();
}

static job *J(int i)
{
    CHECK(i >= 0 && i < MAXJ);
    return &G.j[i];
}

static int job_fn(void *arg, void **result)
{
    job *j = arg;
    CHECK(!j->started);
    j->started = true;
    G.started[G.nstarted++] = j->id;
    cosync_task me = cosync_task_current();
    j->tid = cosync_task_id(me);
    CHECK_NOTNULL(cosync_task_name(me));
    snprintf(j->worker, sizeof j->worker, "%s", cosync_task_name(me));
    j->local = cosync_task_get_local();
    if (++G.running > G.max_running)
        G.max_running = G.running;
    tr("s%d", j->id);
    if (j->extra)
        j->extra_rc = j->extra(j);
    int rc = 0;
    if (j->sleep == COSYNC_FOREVER)
        rc = cosync_sleep_until(COSYNC_FOREVER);
    else if (j->sleep)
        rc = cosync_sleep(j->sleep);
    j->sleep_rc = rc;
    if (rc == COSYNC_ECANCELED && j->after_cancel > 0) {
        tr("c%d", j->id); /* caught */
        j->again_rc = cosync_sleep(j->after_cancel);
        rc = 0;
    }
    if (j->set_local)
        CHECK_OK(cosync_task_set_local(j->set_local));
    G.running--;
    j->ret = rc ? rc : j->status;
    j->ended = true;
    if (j->ret < 0)
        tr("e%d!%s", j->id, code(j->ret));
    else
        tr("e%d", j->id);
    *result = j;
    return j->ret;
}

static void on_done(void *ctx, void *arg, int status, void *result)
{
    CHECK(ctx == &G);
    job *j = arg;
    CHECK(j == &G.j[j->id]);
    j->ndone++;
    CHECK_EQ(j->ndone, 1); /* once a job */
    j->done_status = status;
    j->done_result = result;
    j->done_in_task = cosync_task_current().rec != NULL;
    G.done[G.ndone++] = j->id;
    if (j->started) {
        CHECK(j->ended); /* after the job */
        CHECK_EQ(status, j->ret);
        CHECK(result == j);
    } else {
        CHECK_ERR(status, COSYNC_ESHUTDOWN);
        CHECK_NULL(result);
        tr("x%d", j->id);
    }
}

/* The options of most tests: the current configuration's workers, the
 * done callback. */
static cosync_workerpool_opts wopts(size_t workers, size_t backlog)
{
    return (cosync_workerpool_opts){.workers = workers,
                                    .backlog = backlog,
                                    .task = {.dense = CFG.dense},
                                    .done = on_done,
                                    .ctx = &G};
}

static void init_pool(cosync_workerpool *wp, size_t workers, size_t backlog)
{
    cosync_workerpool_opts o = wopts(workers, backlog);
    CHECK_OK(cosync_workerpool_init(wp, &o));
}

/* Submit job @id. */
static int sub(cosync_workerpool *wp, int id, int64_t deadline)
{
    return cosync_workerpool_submit(wp, job_fn, J(id), deadline);
}

static void sub_ok(cosync_workerpool *wp, int id)
{
    CHECK_OK(sub(wp, id, COSYNC_FOREVER));
}

/* A job with a sleep of @ms milliseconds (0: none; < 0: until cancelled). */
static job *jms(int id, int64_t ms)
{
    job *j = J(id);
    j->sleep = ms < 0 ? COSYNC_FOREVER : COSYNC_MS(ms);
    return j;
}

#define CHECK_WP(wp, w, i, b, q, sub, ok, fl, dr)                                                  \
    do {                                                                                           \
        cosync_workerpool_stats st_;                                                               \
        CHECK_OK(cosync_workerpool_get_stats(wp, &st_));                                           \
        CHECK_EQ(st_.workers, w);                                                                  \
        CHECK_EQ(st_.idle, i);                                                                     \
        CHECK_EQ(st_.busy, b);                                                                     \
        CHECK_EQ(st_.queued, q);                                                                   \
        CHECK_EQ(st_.submitted, sub);                                                              \
        CHECK_EQ(st_.succeeded, ok);                                                               \
        CHECK_EQ(st_.failed, fl);                                                                  \
        CHECK_EQ(st_.dropped, dr);                                                                 \
    } while (0)

static cosync_workerpool_stats wp_stats(const cosync_workerpool *wp)
{
    cosync_workerpool_stats st;
    CHECK_OK(cosync_workerpool_get_stats(wp, &st));
    return st;
}

/* Each of the jobs 0..@n-1 reached the done callback once (ran, or
 * dropped), and no other job did, nor started. */
static void check_all_done(int n)
{
    for (int i = 0; i < n; i++)
        CHECK_EQ(J(i)->ndone, 1);
    for (int i = n; i < MAXJ; i++) {
        CHECK_EQ(J(i)->ndone, 0);
        CHECK(!J(i)->started);
    }
}

/* ========================================================================
 * Helper tasks: a submitter, a joiner, a shutdown, a worker's canceller
 * ===================================================================== */

typedef struct actor {
    cosync_workerpool *wp;
    const char *tag;
    int64_t start;    /* sleep until this first (0: not) */
    int what;         /* SUBMIT, JOIN, SHUTDOWN, CANCEL_WORKER0 */
    int job;          /* SUBMIT: the job's id */
    bool cancel;      /* SHUTDOWN: cancel */
    int64_t deadline; /* of the call */
    bool yield_after; /* a yield right after the call: where a late cancel comes */
    /* observed */
    int rc, next_rc;
    int64_t at; /* when the call returned */
} actor;

enum { SUBMIT, JOIN, SHUTDOWN, CANCEL_WORKER0 };

static cosync_task task_named(const char *name);

static actor mka(cosync_workerpool *wp, const char *tag, int what)
{
    return (actor){
        .wp = wp, .tag = tag, .what = what, .deadline = COSYNC_FOREVER, .rc = 1, .next_rc = 1};
}

static int actor_fn(void *arg, void **result)
{
    (void)result;
    actor *a = arg;
    if (a->start) {
        int rc = cosync_sleep_until(a->start);
        if (rc) {
            a->rc = rc;
            tr("%s!!%s", a->tag, code(rc));
            return 0;
        }
    }
    tr("%s?", a->tag);
    switch (a->what) {
    case SUBMIT:
        a->rc = sub(a->wp, a->job, a->deadline);
        break;
    case JOIN:
        a->rc = cosync_workerpool_join(a->wp, a->deadline);
        break;
    case CANCEL_WORKER0:
        a->rc = cosync_task_cancel(task_named("worker-0"));
        break;
    default:
        a->rc = cosync_workerpool_shutdown(a->wp, a->cancel, a->deadline);
        break;
    }
    a->at = cosync_now();
    if (a->rc == 0)
        tr("%s%s", a->tag, a->what == SUBMIT ? "+" : "=");
    else
        tr("%s!%s", a->tag, code(a->rc));
    if (a->yield_after)
        a->next_rc = cosync_yield();
    return 0;
}

static cosync_task spawn_actor(actor *a)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, actor_fn, a, &(cosync_task_opts){.name = a->tag}));
    return t;
}

/* ========================================================================
 * 1. Basics: order, the limit, lazy workers, the done callback, stats
 * ===================================================================== */

/* Five jobs of 10 ms on three workers: the first three start at 0, the
 * other two at 10 on the first workers free; join returns at 20. */
static int basics_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 3, 0);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(alive_tasks(), 1); /* no worker at init */
    for (int i = 0; i < 5; i++)
        jms(i, 10);
    J(3)->status = 7;         /* >= 0: a success */
    J(4)->status = FAIL_CODE; /* < 0: a failure */
    sub_ok(&wp, 0);
    /* a worker was spawned and started at once: it was waiting when the
     * job came, which is handed to it; it has not run since */
    CHECK_WP(&wp, 1, 1, 0, 1, 1, 0, 0, 0);
    CHECK_EQ(alive_tasks(), 2);
    CHECK_TRACE("");
    CHECK_OK(cosync_yield());
    CHECK_TRACE("s0@0");
    CHECK_WP(&wp, 1, 0, 1, 0, 1, 0, 0, 0);
    sub_ok(&wp, 1); /* none idle: a second worker */
    CHECK_WP(&wp, 2, 1, 1, 1, 2, 0, 0, 0);
    sub_ok(&wp, 2); /* the idle one has a job handed to it: a third */
    CHECK_WP(&wp, 3, 2, 1, 2, 3, 0, 0, 0);
    sub_ok(&wp, 3); /* all alive: they wait */
    sub_ok(&wp, 4);
    CHECK_WP(&wp, 3, 2, 1, 4, 5, 0, 0, 0);
    CHECK_EQ(alive_tasks(), 4);
    CHECK_TRACE("s0@0");
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_TRACE("s0@0 s1@0 s2@0 e0@10 s3@10 e1@10 s4@10 e2@10 e3@20 e4!FAIL@20");
    CHECK_WP(&wp, 3, 3, 0, 0, 5, 4, 1, 0);
    CHECK_EQ(G.max_running, 3);
    static const char *const ran_by[5] = {"worker-0", "worker-1", "worker-2", "worker-0",
                                          "worker-1"};
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(G.started[i], i);
        CHECK_EQ(G.done[i], i);
        CHECK_EQ(J(i)->ndone, 1);
        CHECK(J(i)->done_in_task);
        CHECK_STREQ(J(i)->worker, ran_by[i]);
    }
    CHECK_EQ(J(3)->done_status, 7);
    CHECK_ERR(J(4)->done_status, FAIL_CODE);
    CHECK_OK(J(0)->done_status);
    CHECK(J(4)->done_result == J(4));
    /* a worker's task is its slot's all along */
    CHECK_EQ(J(3)->tid, J(0)->tid);
    CHECK_EQ(J(4)->tid, J(1)->tid);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_WP(&wp, 0, 0, 0, 0, 5, 4, 1, 0);
    CHECK_EQ(alive_tasks(), 1);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(5);
    return 0;
}

TEST(basics_order_limit_done_and_stats)
{
    run_ok(basics_main, NULL);
}

/* Workers are spawned only when no idle one is without a job: one job,
 * one worker; a worker idle with nothing handed to it takes the next. */
static int lazy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 4, 0);
    sub_ok(&wp, 0);
    CHECK_WP(&wp, 1, 1, 0, 1, 1, 0, 0, 0);
    CHECK_OK(cosync_yield());
    CHECK_TRACE("s0@0 e0@0");
    CHECK_WP(&wp, 1, 1, 0, 0, 1, 1, 0, 0); /* idle, nothing handed to it */
    sub_ok(&wp, 1);                        /* to it */
    CHECK_WP(&wp, 1, 1, 0, 1, 2, 1, 0, 0);
    CHECK_EQ(alive_tasks(), 2);
    sub_ok(&wp, 2); /* a second */
    CHECK_WP(&wp, 2, 2, 0, 2, 3, 1, 0, 0);
    sub_ok(&wp, 3); /* a third */
    CHECK_WP(&wp, 3, 3, 0, 3, 4, 1, 0, 0);
    CHECK_OK(cosync_yield());
    CHECK_TRACE("s0@0 e0@0 s1@0 e1@0 s2@0 e2@0 s3@0 e3@0");
    CHECK_WP(&wp, 3, 3, 0, 0, 4, 4, 0, 0);
    /* three idle ones take three jobs; the fourth job spawns the fourth */
    for (int i = 4; i < 9; i++)
        jms(i, 10);
    for (int i = 4; i < 7; i++)
        sub_ok(&wp, i);
    CHECK_WP(&wp, 3, 3, 0, 3, 7, 4, 0, 0);
    sub_ok(&wp, 7);
    CHECK_WP(&wp, 4, 4, 0, 4, 8, 4, 0, 0);
    sub_ok(&wp, 8); /* all four alive: it waits */
    CHECK_WP(&wp, 4, 4, 0, 5, 9, 4, 0, 0);
    CHECK_EQ(alive_tasks(), 5);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_TRACE("s0@0 e0@0 s1@0 e1@0 s2@0 e2@0 s3@0 e3@0 s4@0 s5@0 s6@0 s7@0 e4@10 s8@10 "
                "e5@10 e6@10 e7@10 e8@20");
    CHECK_EQ(G.max_running, 4);
    /* jobs 0 and 1 on the one worker; 4 to 7 on four workers at once */
    for (int i = 0; i < 9; i++)
        CHECK_EQ(G.started[i], i);
    CHECK_STREQ(J(0)->worker, "worker-0");
    CHECK_STREQ(J(1)->worker, "worker-0");
    for (int i = 4; i < 8; i++)
        for (int k = i + 1; k < 8; k++)
            CHECK(strcmp(J(i)->worker, J(k)->worker) != 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(9);
    return 0;
}

TEST(lazy_workers_one_job_one_worker_idle_ones_reused)
{
    run_ok(lazy_main, NULL);
}

/* Two idle workers; three jobs that do not suspend, submitted in a row:
 * the first two are handed to the workers, the third waits. The first
 * worker ends its job before the second worker has run, and comes back
 * for another: jobs start in the order submitted (patterns.h: "run the
 * jobs submitted to it, in the order submitted"; docs/patterns.md: "Jobs
 * start in the order they were submitted"), so the third may not start
 * before the second. */
static int order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    CHECK_OK(cosync_yield());
    CHECK_WP(&wp, 2, 2, 0, 0, 2, 2, 0, 0);
    sub_ok(&wp, 2); /* to worker-0 */
    sub_ok(&wp, 3); /* to worker-1 */
    sub_ok(&wp, 4); /* waits */
    CHECK_WP(&wp, 2, 2, 0, 3, 5, 2, 0, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_WP(&wp, 2, 2, 0, 0, 5, 5, 0, 0);
    for (int k = 0; k < 5; k++)
        CHECK_EQ(G.started[k], k); /* the k-th to start is the k-th submitted */
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(5);
    return 0;
}

TEST(jobs_start_in_submit_order_when_a_worker_comes_back_first)
{
    run_ok(order_main, NULL);
}

/* The same with jobs that sleep: at 10, I hand job 2 to worker-1 (idle
 * since 0) and job 3 waits; worker-0, woken at that instant after me,
 * ends job 0 before worker-1 has run, and comes back for the next one. */
static int order_timers_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    jms(0, 10);
    jms(1, 0);
    jms(2, 10);
    jms(3, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    /* my timer is armed before job 0's: at 10, I run first */
    CHECK_OK(cosync_sleep_until(AT(10)));
    CHECK_TRACE("s0@0 s1@0 e1@0");
    CHECK_WP(&wp, 2, 1, 1, 0, 2, 1, 0, 0);
    sub_ok(&wp, 2); /* to worker-1 */
    sub_ok(&wp, 3); /* waits */
    CHECK_WP(&wp, 2, 1, 1, 2, 4, 1, 0, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    for (int k = 0; k < 4; k++)
        CHECK_EQ(G.started[k], k);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(4);
    return 0;
}

TEST(jobs_start_in_submit_order_with_sleeping_jobs)
{
    run_ok(order_timers_main, NULL);
}

/* ========================================================================
 * 2. The backlog: waiting submitters
 * ===================================================================== */

static int backlog_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 2);
    for (int i = 0; i < 8; i++)
        jms(i, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    /* job 0 is handed to the worker, which has not run: it still counts */
    uint64_t sw0 = switches();
    CHECK_ERR(sub(&wp, 2, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw0);
    CHECK_WP(&wp, 1, 1, 0, 2, 2, 0, 0, 0);
    CHECK_OK(cosync_yield());
    CHECK_WP(&wp, 1, 0, 1, 1, 2, 0, 0, 0);
    sub_ok(&wp, 2);
    CHECK_WP(&wp, 1, 0, 1, 2, 3, 0, 0, 0);
    /* full: 0 is EAGAIN, a deadline passed ETIMEDOUT, neither switches */
    sw0 = switches();
    CHECK_ERR(sub(&wp, 3, 0), COSYNC_EAGAIN);
    CHECK_ERR(sub(&wp, 3, cosync_now()), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(armed_timers(), 1); /* job 0's sleep */
    /* a finite deadline: ETIMEDOUT at exactly that time, nothing submitted */
    CHECK_ERR(sub(&wp, 3, AT(5)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_WP(&wp, 1, 0, 1, 2, 3, 0, 0, 0);
    CHECK_EQ(G.nstarted, 1);
    /* four submitters wait in turn; S2 is cancelled, S4 times out */
    actor s[4];
    cosync_task t[4];
    static const char *const tags[4] = {"S1", "S2", "S3", "S4"};
    for (int i = 0; i < 4; i++) {
        s[i] = mka(&wp, tags[i], SUBMIT);
        s[i].start = AT(6 + i);
        s[i].job = 3 + i;
        t[i] = spawn_actor(&s[i]);
    }
    s[2].yield_after = true;
    s[3].deadline = AT(25);
    CHECK_OK(cosync_sleep_until(AT(9) + COSYNC_US(500)));
    CHECK_OK(cosync_task_cancel(t[1]));
    CHECK_WP(&wp, 1, 0, 1, 2, 3, 0, 0, 0);
    /* at 10 my timer comes after job 0's: the worker took job 1 and made
     * room for S1, which has not run: no barging, even by the try form */
    CHECK_OK(cosync_sleep_until(AT(10)));
    sw0 = switches();
    int rc = sub(&wp, 7, 0);
    tr("M!%s", code(rc));
    CHECK_ERR(rc, COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw0);
    CHECK_WP(&wp, 1, 0, 1, 1, 3, 1, 0, 0);
    /* at 20, S3 is given room; cancelled before it runs, it still submits
     * (its put completes), and the cancel comes at its next suspension */
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK_OK(cosync_task_cancel(t[2]));
    CHECK_OK(cosync_gather(t, 4, NULL, COSYNC_FOREVER));
    CHECK_OK(s[0].rc);
    CHECK_EQ(s[0].at, AT(10));
    CHECK_ERR(s[1].rc, COSYNC_ECANCELED);
    CHECK_EQ(s[1].at, AT(9) + COSYNC_US(500));
    CHECK_OK(s[2].rc);
    CHECK_EQ(s[2].at, AT(20));
    CHECK_ERR(s[2].next_rc, COSYNC_ECANCELED);
    CHECK_ERR(s[3].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(s[3].at, AT(25));
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_TRACE("s0@0 S1?@6 S2?@7 S3?@8 S4?@9 S2!ECANCELED@9.500000 e0@10 s1@10 M!EAGAIN@10 "
                "S1+@10 e1@20 s2@20 S3+@20 S4!ETIMEDOUT@25 e2@30 s3@30 e3@40 s5@40 e5@50");
    CHECK_WP(&wp, 1, 1, 0, 0, 5, 5, 0, 0);
    static const int ran[5] = {0, 1, 2, 3, 5};
    for (int k = 0; k < 5; k++)
        CHECK_EQ(G.started[k], ran[k]);
    for (int i = 0; i < 8; i++)
        CHECK_EQ(J(i)->ndone, i == 4 || i == 6 || i == 7 ? 0 : 1);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    return 0;
}

TEST(backlog_full_try_timeout_cancel_and_fifo_admission)
{
    run_ok(backlog_main, NULL);
}

/* A waiting submitter times out (or is cancelled) at the head, in the
 * middle or at the tail: the others are admitted in order as if it had
 * never been there. */
typedef struct leave_case {
    int k;
    bool by_timeout;
} leave_case;

static int leave_main(void *arg, void **result)
{
    (void)result;
    const leave_case *lc = arg;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 1);
    jms(0, 10);
    jms(1, 10);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_yield());
    sub_ok(&wp, 1); /* full */
    actor s[3];
    cosync_task t[3];
    static const char *const tags[3] = {"S0", "S1", "S2"};
    for (int i = 0; i < 3; i++) {
        jms(2 + i, 10);
        s[i] = mka(&wp, tags[i], SUBMIT);
        s[i].start = AT(1 + i);
        s[i].job = 2 + i;
        if (lc->by_timeout && i == lc->k)
            s[i].deadline = AT(5);
        t[i] = spawn_actor(&s[i]);
    }
    CHECK_OK(cosync_sleep_until(AT(4)));
    if (!lc->by_timeout) {
        CHECK_OK(cosync_sleep_until(AT(5)));
        CHECK_OK(cosync_task_cancel(t[lc->k]));
    }
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    int rest[2], n = 0;
    for (int i = 0; i < 3; i++)
        if (i != lc->k)
            rest[n++] = i;
    char want[512];
    snprintf(want, sizeof want,
             "s0@0 S0?@1 S1?@2 S2?@3 S%d!%s@5 e0@10 s1@10 S%d+@10 e1@20 s%d@20 S%d+@20 e%d@30 "
             "s%d@30 e%d@40",
             lc->k, lc->by_timeout ? "ETIMEDOUT" : "ECANCELED", rest[0], 2 + rest[0], rest[1],
             2 + rest[0], 2 + rest[1], 2 + rest[1]);
    CHECK_TRACE(want);
    CHECK_EQ(s[rest[0]].at, AT(10));
    CHECK_EQ(s[rest[1]].at, AT(20));
    CHECK_EQ(J(2 + lc->k)->ndone, 0);
    CHECK_WP(&wp, 1, 1, 0, 0, 4, 4, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    return 0;
}

TEST(waiting_submitter_leaves_at_head_middle_tail)
{
    for (int k = 0; k < 3; k++) {
        run_ok(leave_main, &(leave_case){k, true});
        run_ok(leave_main, &(leave_case){k, false});
    }
}

/* backlog 0: no bound; the try form always succeeds */
static int unbounded_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    for (int i = 0; i < 200; i++) {
        jms(i, 1 + i % 3); /* each suspends: see the order tests */
        CHECK_OK(sub(&wp, i, 0));
    }
    CHECK_WP(&wp, 2, 2, 0, 200, 200, 0, 0, 0);
    CHECK_EQ(G.nstarted, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_WP(&wp, 2, 2, 0, 0, 200, 200, 0, 0);
    CHECK_EQ(G.max_running, 2);
    for (int k = 0; k < 200; k++)
        CHECK_EQ(G.started[k], k);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(200);
    return 0;
}

TEST(backlog_zero_is_unbounded)
{
    run_ok(unbounded_main, NULL);
}

/* ========================================================================
 * 3. join
 * ===================================================================== */

/* A job that joins its own pool: with a deadline it would wait for
 * itself (EDEADLK); deadline 0 is the try form (EAGAIN). */
static int extra_join(job *j)
{
    cosync_workerpool *wp = j->extra_arg;
    CHECK_ERR(cosync_workerpool_join(wp, COSYNC_FOREVER), COSYNC_EDEADLK);
    CHECK_ERR(cosync_workerpool_join(wp, cosync_deadline_after(COSYNC_MS(5))), COSYNC_EDEADLK);
    CHECK_ERR(cosync_workerpool_join(wp, 0), COSYNC_EAGAIN);
    return 0;
}

static int join_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    /* nothing submitted: 0 at once, without a switch, whatever the deadline */
    uint64_t sw0 = switches();
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_join(&wp, 0));
    CHECK_OK(cosync_workerpool_join(&wp, cosync_now()));
    CHECK_EQ(switches(), sw0);
    jms(0, 10);
    jms(1, 30);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    CHECK_ERR(cosync_workerpool_join(&wp, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_workerpool_join(&wp, AT(5)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_EQ(G.nstarted, 2);
    /* J1 waits for all; J2 is cancelled at 8; J3 times out at 20 */
    actor j[3];
    cosync_task t[3];
    static const char *const tags[3] = {"J1", "J2", "J3"};
    for (int i = 0; i < 3; i++) {
        j[i] = mka(&wp, tags[i], JOIN);
        j[i].start = AT(6 + i);
        t[i] = spawn_actor(&j[i]);
    }
    j[2].deadline = AT(20);
    CHECK_OK(cosync_sleep_until(AT(8) + COSYNC_US(500)));
    CHECK_OK(cosync_task_cancel(t[1]));
    /* jobs submitted while they wait are waited for too: job 2 ends at 37;
     * job 3 joins its own pool */
    CHECK_OK(cosync_sleep_until(AT(12)));
    jms(2, 25);
    jms(3, 0)->extra = extra_join;
    J(3)->extra_arg = &wp;
    sub_ok(&wp, 2);
    sub_ok(&wp, 3);
    CHECK_OK(cosync_sleep_until(AT(13)));
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    tr("M=");
    CHECK_EQ(cosync_now(), AT(37));
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_OK(j[0].rc);
    CHECK_EQ(j[0].at, AT(37));
    CHECK_ERR(j[1].rc, COSYNC_ECANCELED);
    CHECK_ERR(j[2].rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(j[2].at, AT(20));
    CHECK_OK(J(3)->extra_rc);
    CHECK_TRACE("s0@0 s1@0 J1?@6 J2?@7 J3?@8 J2!ECANCELED@8.500000 e0@10 s2@12 J3!ETIMEDOUT@20 "
                "e1@30 s3@30 e3@30 e2@37 J1=@37 M=@37");
    CHECK_WP(&wp, 2, 2, 0, 0, 4, 4, 0, 0);
    /* the pool goes on */
    jms(4, 5);
    sub_ok(&wp, 4);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(42));
    CHECK_WP(&wp, 2, 2, 0, 0, 5, 5, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(5);
    return 0;
}

TEST(join_waits_for_every_job_times_out_is_cancelled_and_the_pool_goes_on)
{
    run_ok(join_main, NULL);
}

/* ========================================================================
 * 4. Shutdown without cancel: the workers drain the backlog
 * ===================================================================== */

static int drain_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 2);
    for (int i = 0; i < 6; i++)
        jms(i, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    CHECK_OK(cosync_yield());
    sub_ok(&wp, 2);
    sub_ok(&wp, 3); /* full */
    actor s1 = mka(&wp, "S1", SUBMIT), d1 = mka(&wp, "D1", SHUTDOWN);
    s1.start = AT(1);
    s1.job = 4;
    d1.start = AT(3);
    cosync_task ts = spawn_actor(&s1), td = spawn_actor(&d1);
    CHECK_OK(cosync_sleep_until(AT(2)));
    /* workers alive: deadline 0 returns EAGAIN, but the shutdown holds */
    CHECK_ERR(cosync_workerpool_shutdown(&wp, false, 0), COSYNC_EAGAIN);
    CHECK_ERR(sub(&wp, 5, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_ERR(sub(&wp, 5, 0), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_workerpool_submit(&wp, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_WP(&wp, 2, 0, 2, 2, 4, 0, 0, 0);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_OK(cosync_sleep_until(AT(4)));
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    /* a deadline: ETIMEDOUT then, still shut down; the jobs go on */
    CHECK_ERR(cosync_workerpool_shutdown(&wp, false, AT(15)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(15));
    CHECK_WP(&wp, 2, 0, 2, 0, 4, 2, 0, 0);
    CHECK_ERR(sub(&wp, 5, 0), COSYNC_ESHUTDOWN);
    /* a second call waits again: for the backlog's jobs, then the workers */
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    tr("M=");
    CHECK_EQ(cosync_now(), AT(20));
    join_ok(ts);
    join_ok(td);
    CHECK_ERR(s1.rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(s1.at, AT(2));
    CHECK_OK(d1.rc);
    CHECK_EQ(d1.at, AT(20));
    CHECK_TRACE("s0@0 s1@0 S1?@1 S1!ESHUTDOWN@2 D1?@3 e0@10 s2@10 e1@10 s3@10 e2@20 e3@20 D1=@20 "
                "M=@20");
    CHECK_WP(&wp, 0, 0, 0, 0, 4, 4, 0, 0);
    CHECK_EQ(alive_tasks(), 1);
    /* again: 0 at once, with or without cancel; join has nothing to wait for */
    uint64_t sw0 = switches();
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_ERR(sub(&wp, 5, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_EQ(switches(), sw0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(4);
    return 0;
}

TEST(shutdown_runs_the_backlog_refuses_submits_and_waits_for_the_workers)
{
    run_ok(drain_main, NULL);
}

/* A pool without workers shuts down at once, in a task and outside. */
static int shutdown_unused_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    uint64_t sw0 = switches();
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw0);
    CHECK_ERR(sub(&wp, 0, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(alive_tasks(), 1);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    return 0;
}

TEST(shutdown_with_no_worker_returns_at_once)
{
    run_ok(shutdown_unused_main, NULL);
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER)); /* outside a task */
    CHECK_ERR(sub(&wp, 0, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_workerpool_destroy(&wp));
}

/* A job that shuts its own pool down: with a deadline it would wait for
 * itself (EDEADLK), deadline 0 is EAGAIN; either way the pool is shut
 * down, the jobs already submitted still run, and the workers end. With
 * cancel (and deadline 0), the job cancels itself: its sleep gets
 * ECANCELED, and the job behind it is dropped. */
typedef struct self_case {
    int64_t deadline;
    bool cancel;
} self_case;

static self_case self_c;

static int extra_shutdown(job *j)
{
    return cosync_workerpool_shutdown(j->extra_arg, self_c.cancel, self_c.deadline);
}

static int self_shutdown_main(void *arg, void **result)
{
    (void)result;
    self_c = *(const self_case *)arg;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    jms(0, 10)->extra = extra_shutdown;
    J(0)->extra_arg = &wp;
    jms(1, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    CHECK_OK(cosync_yield());
    CHECK_ERR(J(0)->extra_rc, self_c.deadline ? COSYNC_EDEADLK : COSYNC_EAGAIN);
    CHECK_ERR(sub(&wp, 2, 0), COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    if (self_c.cancel) {
        CHECK_EQ(cosync_now(), AT(0));
        CHECK_TRACE("s0@0 x1@0 e0!ECANCELED@0");
        CHECK_WP(&wp, 0, 0, 0, 0, 2, 0, 1, 1);
    } else {
        CHECK_EQ(cosync_now(), AT(20));
        CHECK_TRACE("s0@0 e0@10 s1@10 e1@20");
        CHECK_WP(&wp, 0, 0, 0, 0, 2, 2, 0, 0);
    }
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(shutdown_from_a_job)
{
    run_ok(self_shutdown_main, &(self_case){COSYNC_FOREVER, false});
    run_ok(self_shutdown_main, &(self_case){AT(50), false});
    run_ok(self_shutdown_main, &(self_case){0, false});
    run_ok(self_shutdown_main, &(self_case){0, true});
    run_ok(self_shutdown_main, &(self_case){COSYNC_FOREVER, true});
}

/* The shutting-down task is cancelled: ECANCELED, the pool stays shut. */
static int shutdown_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    jms(0, 10);
    jms(1, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    actor d = mka(&wp, "D1", SHUTDOWN);
    d.start = AT(1);
    cosync_task td = spawn_actor(&d);
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_OK(cosync_task_cancel(td));
    join_expect(td, COSYNC_ECANCELED);
    CHECK_ERR(d.rc, COSYNC_ECANCELED);
    CHECK_ERR(sub(&wp, 2, 0), COSYNC_ESHUTDOWN);
    /* a pending cancel at the call: ECANCELED at once, still shut down */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_ERR(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(2));
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_TRACE("s0@0 D1?@1 D1!ECANCELED@2 e0@10 s1@10 e1@20");
    CHECK_WP(&wp, 0, 0, 0, 0, 2, 2, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(shutdown_cancelled_while_it_waits)
{
    run_ok(shutdown_cancelled_main, NULL);
}

/* ========================================================================
 * 5. Shutdown with cancel
 * ===================================================================== */

/* At 5: jobs 0 and 1 run, job 3 is handed to worker-2 (idle, it has not
 * run since), jobs 4 and 5 wait. The cancelling shutdown drops 4 and 5 at
 * once (in my task), job 3 when worker-2 runs (it is not run), cancels 0
 * and 1, whose status goes to the callback; J1's join returns when the
 * last has ended, then the shutdown. */
static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 3, 0);
    jms(0, 10);
    jms(1, -1);
    jms(2, 0);
    for (int i = 3; i < 6; i++)
        jms(i, 10);
    for (int i = 0; i < 3; i++)
        sub_ok(&wp, i);
    actor j1 = mka(&wp, "J1", JOIN);
    j1.start = AT(1);
    cosync_task tj = spawn_actor(&j1);
    CHECK_OK(cosync_sleep_until(AT(5)));
    for (int i = 3; i < 6; i++)
        sub_ok(&wp, i);
    CHECK_WP(&wp, 3, 1, 2, 3, 6, 1, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER));
    tr("M=");
    CHECK_EQ(cosync_now(), AT(5));
    join_ok(tj);
    CHECK_TRACE("s0@0 s1@0 s2@0 e2@0 J1?@1 x4@5 x5@5 x3@5 e0!ECANCELED@5 e1!ECANCELED@5 J1=@5 "
                "M=@5");
    CHECK_WP(&wp, 0, 0, 0, 0, 6, 1, 2, 3);
    CHECK(!J(3)->started);
    CHECK_ERR(J(0)->done_status, COSYNC_ECANCELED);
    CHECK_ERR(J(0)->sleep_rc, COSYNC_ECANCELED);
    CHECK_ERR(J(1)->done_status, COSYNC_ECANCELED);
    CHECK(J(4)->done_in_task && J(3)->done_in_task);
    CHECK_ERR(sub(&wp, 6, 0), COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(6);
    return 0;
}

TEST(shutdown_cancel_drops_what_has_not_begun_and_cancels_the_rest)
{
    run_ok(cancel_main, NULL);
}

/* A draining shutdown (D1, at 1) made cancelling (by me, at 3). */
static int escalate_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    for (int i = 0; i < 3; i++)
        jms(i, 10);
    for (int i = 0; i < 3; i++)
        sub_ok(&wp, i);
    actor d1 = mka(&wp, "D1", SHUTDOWN);
    d1.start = AT(1);
    cosync_task td = spawn_actor(&d1);
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_ERR(cosync_workerpool_shutdown(&wp, false, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_sleep_until(AT(3)));
    CHECK_WP(&wp, 1, 0, 1, 2, 3, 0, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER));
    tr("M=");
    join_ok(td);
    CHECK_TRACE("s0@0 D1?@1 x1@3 x2@3 e0!ECANCELED@3 D1=@3 M=@3");
    CHECK_WP(&wp, 0, 0, 0, 0, 3, 0, 1, 2);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(3);
    return 0;
}

TEST(shutdown_without_cancel_then_with_cancel_while_draining)
{
    run_ok(escalate_main, NULL);
}

/* Job 0 catches the cancel and sleeps 20 ms more: the shutdown waits for
 * it (ETIMEDOUT at its deadline, the pool still shut down), and a second
 * cancelling call does not cancel it again. */
static int stubborn_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    jms(0, -1)->after_cancel = COSYNC_MS(20);
    jms(1, 10);
    jms(2, 10);
    sub_ok(&wp, 0);
    sub_ok(&wp, 1);
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_ERR(cosync_workerpool_shutdown(&wp, true, AT(10)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(10));
    CHECK_WP(&wp, 1, 0, 1, 0, 2, 0, 1, 0);
    CHECK_ERR(sub(&wp, 2, 0), COSYNC_ESHUTDOWN);
    CHECK_ERR(sub(&wp, 2, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_ERR(cosync_workerpool_shutdown(&wp, true, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(22));
    CHECK_TRACE("s0@0 s1@0 c0@2 e1!ECANCELED@2 e0@22");
    CHECK_OK(J(0)->again_rc); /* cancelled once */
    CHECK_WP(&wp, 0, 0, 0, 0, 2, 1, 1, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(shutdown_cancel_waits_for_a_job_that_ignores_it)
{
    run_ok(stubborn_main, NULL);
}

/* ========================================================================
 * 6. Destroy and misuse
 * ===================================================================== */

/* EBUSY while a worker is alive or a task waits on the pool (in submit,
 * join, shutdown), and nothing changes: the pool goes on. */
static int extra_destroy(job *j)
{
    return cosync_workerpool_destroy(j->extra_arg);
}

static int destroy_busy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 1);
    for (int i = 0; i < 4; i++)
        jms(i, 10);
    J(0)->extra = extra_destroy; /* from its own job */
    J(0)->extra_arg = &wp;
    sub_ok(&wp, 0);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY); /* a worker alive */
    CHECK_OK(cosync_yield());
    sub_ok(&wp, 1); /* full */
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_WP(&wp, 1, 0, 1, 1, 2, 0, 0, 0);
    actor s1 = mka(&wp, "S1", SUBMIT), j1 = mka(&wp, "J1", JOIN), d1 = mka(&wp, "D1", SHUTDOWN);
    s1.start = AT(1);
    s1.job = 2;
    j1.start = AT(3);
    d1.start = AT(32);
    cosync_task t[3] = {spawn_actor(&s1), spawn_actor(&j1), spawn_actor(&d1)};
    CHECK_OK(cosync_sleep_until(AT(2))); /* S1 waits in submit */
    CHECK_ERR(J(0)->extra_rc, COSYNC_EBUSY);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_WP(&wp, 1, 0, 1, 1, 2, 0, 0, 0);
    CHECK_OK(cosync_sleep_until(AT(4))); /* J1 waits in join */
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_OK(cosync_sleep_until(AT(31)));
    CHECK_OK(s1.rc);
    CHECK_OK(j1.rc);
    CHECK_EQ(j1.at, AT(30));
    CHECK_WP(&wp, 1, 1, 0, 0, 3, 3, 0, 0);
    sub_ok(&wp, 3);
    CHECK_OK(cosync_sleep_until(AT(33))); /* D1 waits in shutdown */
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_OK(d1.rc);
    CHECK_EQ(d1.at, AT(41));
    CHECK_TRACE("s0@0 S1?@1 J1?@3 e0@10 s1@10 S1+@10 e1@20 s2@20 e2@30 J1=@30 s3@31 D1?@32 "
                "e3@41 D1=@41");
    CHECK_WP(&wp, 0, 0, 0, 0, 4, 4, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(4);
    /* destroyed: every call is EINVAL */
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EINVAL);
    CHECK_ERR(sub(&wp, 4, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(sub(&wp, 4, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_join(&wp, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_join(&wp, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_shutdown(&wp, true, 0), COSYNC_EINVAL);
    cosync_workerpool_stats st;
    CHECK_OK(cosync_workerpool_get_stats(&wp, &st));
    CHECK(!J(4)->started);
    /* init makes it live again */
    init_pool(&wp, 1, 0);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    jms(4, 1);
    sub_ok(&wp, 4);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(5);
    return 0;
}

TEST(destroy_is_ebusy_while_workers_live_or_tasks_wait_and_einval_after)
{
    run_ok(destroy_busy_main, NULL);
}

TEST(destroy_of_an_unused_pool)
{
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 3, 5);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER)); /* nothing to wait for */
    CHECK_OK(cosync_workerpool_destroy(&wp));
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EINVAL);
}

TEST(misuse_init_arguments)
{
    cosync_workerpool wp;
    memset(&wp, 0x5A, sizeof wp);
    unsigned char before[sizeof wp];
    memcpy(before, &wp, sizeof wp);
    cosync_workerpool_opts o = {.workers = 1};
    CHECK_ERR(cosync_workerpool_init(NULL, &o), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_init(&wp, NULL), COSYNC_EINVAL);
    o.workers = 0;
    CHECK_ERR(cosync_workerpool_init(&wp, &o), COSYNC_EINVAL);
    o.workers = SIZE_MAX / 64 + 1;
    CHECK_ERR(cosync_workerpool_init(&wp, &o), COSYNC_EINVAL);
    o.workers = SIZE_MAX;
    CHECK_ERR(cosync_workerpool_init(&wp, &o), COSYNC_EINVAL);
    if (!UNDER_ASAN) { /* (ASan aborts on a request that large) */
        o.workers = SIZE_MAX / 64;
        CHECK_ERR(cosync_workerpool_init(&wp, &o), COSYNC_ENOMEM);
    }
    CHECK(memcmp(before, &wp, sizeof wp) == 0);
    /* every option at its default: a pool of one worker, no callback */
    o = (cosync_workerpool_opts){.workers = 1};
    CHECK_OK(cosync_workerpool_init(&wp, &o));
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
}

TEST(misuse_null_arguments_and_a_zeroed_pool)
{
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    cosync_workerpool_stats st;
    CHECK_ERR(cosync_workerpool_submit(NULL, job_fn, J(0), 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_submit(&wp, NULL, J(0), 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_submit(&wp, NULL, J(0), COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_join(NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_shutdown(NULL, false, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_destroy(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_get_stats(NULL, &st), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_get_stats(&wp, NULL), COSYNC_EINVAL);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    /* zeroed, never initialised */
    cosync_workerpool z;
    memset(&z, 0, sizeof z);
    CHECK_ERR(sub(&z, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(sub(&z, 0, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_join(&z, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_shutdown(&z, true, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_workerpool_destroy(&z), COSYNC_EINVAL);
    CHECK_OK(cosync_workerpool_get_stats(&z, &st));
    CHECK_EQ(st.workers, 0);
    CHECK_EQ(st.submitted, 0);
    CHECK(!J(0)->started);
}

/* A stack size the spawn refuses: the submit returns the spawn's error. */
static int bad_stack_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    cosync_workerpool_opts o = wopts(2, 0);
    o.task.stack_size = 100;
    CHECK_OK(cosync_workerpool_init(&wp, &o));
    CHECK_ERR(sub(&wp, 0, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(sub(&wp, 0, 0), COSYNC_EINVAL);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(alive_tasks(), 1);
    CHECK_OK(cosync_yield());
    CHECK(!J(0)->started);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(0);
    return 0;
}

TEST(misuse_an_absurd_stack_size)
{
    run_ok(bad_stack_main, NULL);
}

/* Outside any task: a submit is EPERM; a join or a shutdown that would
 * wait is EPERM (the shutdown holds), deadline 0 EAGAIN; a cancelling
 * shutdown drops the backlog here, calling the callback outside a task. */
static int leave_busy_main(void *arg, void **result)
{
    (void)result;
    cosync_workerpool *wp = arg;
    jms(0, 10);
    jms(1, 10);
    sub_ok(wp, 0);
    sub_ok(wp, 1);
    return 0;
}

TEST(misuse_outside_a_task)
{
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    CHECK_ERR(sub(&wp, 0, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(sub(&wp, 0, 0), COSYNC_EPERM);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    for (int cancel = 0; cancel < 2; cancel++) {
        jobs_reset();
        init_pool(&wp, 1, 0);
        cosync_loop *loop = cfg_loop();
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, leave_busy_main, &wp, NULL));
        CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
        /* the worker is in job 0, job 1 waits */
        CHECK_TRACE("s0@0");
        CHECK_WP(&wp, 1, 0, 1, 1, 2, 0, 0, 0);
        CHECK_ERR(sub(&wp, 2, 0), COSYNC_EPERM);
        CHECK_ERR(cosync_workerpool_join(&wp, 0), COSYNC_EAGAIN);
        CHECK_ERR(cosync_workerpool_join(&wp, COSYNC_FOREVER), COSYNC_EPERM);
        if (cancel) {
            CHECK_ERR(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER), COSYNC_EPERM);
            CHECK_TRACE("s0@0 x1"); /* dropped here, outside the loop */
            CHECK(!J(1)->done_in_task);
        } else {
            CHECK_ERR(cosync_workerpool_shutdown(&wp, false, 0), COSYNC_EAGAIN);
            CHECK_ERR(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER), COSYNC_EPERM);
        }
        CHECK_ERR(sub(&wp, 2, 0), COSYNC_ESHUTDOWN); /* shut down all the same */
        CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
        /* the loop runs the rest: the worker ends */
        CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
        if (cancel) {
            CHECK_TRACE("s0@0 x1 e0!ECANCELED@0");
            CHECK_WP(&wp, 0, 0, 0, 0, 2, 0, 1, 1);
        } else {
            CHECK_TRACE("s0@0 e0@10 s1@10 e1@20");
            CHECK_WP(&wp, 0, 0, 0, 0, 2, 2, 0, 0);
        }
        CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER)); /* none alive */
        end_loop(loop);
        CHECK_OK(cosync_workerpool_destroy(&wp));
        check_all_done(2);
    }
}

/* A pool is bound to the loop of its workers while any is alive: a task
 * of another loop may not submit, nor wait in join or shutdown (which
 * holds all the same). */
typedef struct two_loops {
    cosync_workerpool *wp;
    int step;
    int rc[8];
} two_loops;

static int loop_a_task(void *arg, void **result)
{
    (void)result;
    two_loops *tl = arg;
    switch (tl->step) {
    case 0:
        jms(0, 10);
        sub_ok(tl->wp, 0);
        break;
    case 1:
        tl->rc[0] = cosync_workerpool_join(tl->wp, COSYNC_FOREVER);
        break;
    default:
        tl->rc[0] = cosync_workerpool_shutdown(tl->wp, false, COSYNC_FOREVER);
        break;
    }
    return 0;
}

static int loop_b_task(void *arg, void **result)
{
    (void)result;
    two_loops *tl = arg;
    if (tl->step == 0) {
        tl->rc[0] = sub(tl->wp, 1, COSYNC_FOREVER);
        tl->rc[1] = sub(tl->wp, 1, 0);
        tl->rc[2] = cosync_workerpool_join(tl->wp, 0);
        tl->rc[3] = cosync_workerpool_join(tl->wp, COSYNC_FOREVER);
        tl->rc[4] = cosync_workerpool_join(tl->wp, cosync_deadline_after(COSYNC_MS(1)));
        tl->rc[5] = cosync_workerpool_destroy(tl->wp);
    } else if (tl->step == 1) {
        tl->rc[0] = cosync_workerpool_join(tl->wp, COSYNC_FOREVER); /* nothing left */
        tl->rc[1] = cosync_workerpool_shutdown(tl->wp, false, COSYNC_FOREVER);
        tl->rc[2] = sub(tl->wp, 1, 0);
    } else {
        tl->rc[0] = sub(tl->wp, 1, 0);
        tl->rc[1] = cosync_workerpool_shutdown(tl->wp, false, COSYNC_FOREVER);
    }
    return 0;
}

TEST(misuse_a_task_of_another_loop_while_workers_live)
{
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    cosync_loop *a = cfg_loop(), *b = cfg_loop();
    cosync_task t;
    two_loops ta = {.wp = &wp}, tb = {.wp = &wp};
    for (int step = 0; step < 3; step++) {
        ta.step = tb.step = step;
        memset(ta.rc, 0x7f, sizeof ta.rc);
        memset(tb.rc, 0x7f, sizeof tb.rc);
        if (step < 2)
            spawn_and_run(a, &t, loop_a_task, &ta);
        spawn_and_run(b, &t, loop_b_task, &tb);
        if (step == 0) {
            CHECK_TRACE("s0@0"); /* a's worker is in job 0 */
            CHECK_ERR(tb.rc[0], COSYNC_EPERM);
            CHECK_ERR(tb.rc[1], COSYNC_EPERM);
            CHECK_ERR(tb.rc[2], COSYNC_EAGAIN);
            CHECK_ERR(tb.rc[3], COSYNC_EPERM);
            CHECK_ERR(tb.rc[4], COSYNC_EPERM);
            CHECK_ERR(tb.rc[5], COSYNC_EBUSY);
            CHECK_WP(&wp, 1, 0, 1, 0, 1, 0, 0, 0);
        } else if (step == 1) {
            CHECK_OK(ta.rc[0]); /* a's join, at 10 */
            CHECK_TRACE("s0@0 e0@10");
            CHECK_OK(tb.rc[0]);
            CHECK_ERR(tb.rc[1], COSYNC_EPERM);
            CHECK_ERR(tb.rc[2], COSYNC_ESHUTDOWN); /* it held */
            CHECK_WP(&wp, 1, 1, 0, 0, 1, 1, 0, 0);
            /* a's worker ends when a runs */
            spawn_and_run(a, &t, loop_a_task, &ta);
            CHECK_OK(ta.rc[0]);
            CHECK_WP(&wp, 0, 0, 0, 0, 1, 1, 0, 0);
        } else {
            /* no worker alive: b may wait on it */
            CHECK_ERR(tb.rc[0], COSYNC_ESHUTDOWN);
            CHECK_OK(tb.rc[1]);
        }
    }
    CHECK(!J(1)->started);
    end_loop(a);
    end_loop(b);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(1);
}

/* ========================================================================
 * 7. Allocation failures
 * ===================================================================== */

TEST(fault_init_its_one_allocation)
{
    jobs_reset();
    cosync_workerpool wp;
    memset(&wp, 0xA5, sizeof wp);
    unsigned char before[sizeof wp];
    memcpy(before, &wp, sizeof wp);
    cosync_workerpool_opts o = wopts(4, 8);
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    int rc = cosync_workerpool_init(&wp, &o);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK(memcmp(before, &wp, sizeof wp) == 0); /* nothing kept */
    /* one point to pass: the one allocation passes it, nothing else asks */
    cosync__fault_countdown = 1;
    rc = cosync_workerpool_init(&wp, &o);
    long left = cosync__fault_countdown;
    cosync__fault_countdown = -1;
    CHECK_OK(rc);
    CHECK_EQ(left, 0);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_WP(&wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&wp));
}

/* The first submit of a pool on a fresh loop: its worker's record (when
 * @fill tasks have used up the first block of records), stack, and the
 * backlog's storage. Each failure in turn: an error, nothing submitted,
 * nothing run, no callback; the next submit works. */
typedef struct first_fault {
    long k;
    int fill;
    bool failed;
    int rc;
} first_fault;

static int first_fault_main(void *arg, void **result)
{
    (void)result;
    first_fault *ff = arg;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    cosync_task *fill = malloc(sizeof *fill * (size_t)(ff->fill + 1));
    CHECK_NOTNULL(fill);
    for (int i = 0; i < ff->fill; i++)
        CHECK_OK(cosync_task_spawn(&fill[i], nop, NULL, NULL));
    jms(0, 1);
    jms(1, 1);
    long failures = cosync__fault_failures;
    cosync__fault_countdown = ff->k;
    ff->rc = sub(&wp, 0, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    ff->failed = cosync__fault_failures != failures;
    cosync_workerpool_stats st = wp_stats(&wp);
    if (ff->failed) {
        CHECK_EQ(cosync__fault_failures, failures + 1);
        CHECK_ERR(ff->rc, COSYNC_ENOMEM);
        CHECK_EQ(st.submitted, 0);
        CHECK_EQ(st.queued, 0);
        CHECK_LE(st.workers, 1); /* a worker may have started before the backlog failed */
        CHECK_EQ(st.idle, st.workers);
        CHECK_OK(cosync_sleep(COSYNC_MS(5)));
        CHECK(!J(0)->started);
        CHECK_EQ(J(0)->ndone, 0);
        /* the next one works */
        sub_ok(&wp, 1);
        CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
        CHECK(J(1)->started);
        CHECK(!J(0)->started);
        CHECK_WP(&wp, 1, 1, 0, 0, 1, 1, 0, 0);
    } else {
        CHECK_OK(ff->rc);
        CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
        CHECK_WP(&wp, 1, 1, 0, 0, 1, 1, 0, 0);
    }
    for (int i = 0; i < ff->fill; i++)
        join_ok(fill[i]);
    free(fill);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    CHECK_EQ(J(0)->ndone, ff->failed ? 0 : 1);
    CHECK_EQ(J(1)->ndone, ff->failed ? 1 : 0);
    return 0;
}

/* run @fn(@arg) as main on a loop of the current configuration with a
 * counting allocator; check that it frees everything */
static void run_counted(cosync_task_fn fn, void *arg)
{
    counting c = {0, 0};
    cosync_allocator a = {count_realloc, &c};
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true,
                                                         .eager_tasks = CFG.eager_loop,
                                                         .allocator = &a}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    CHECK_EQ(c.live, 0);
}

TEST(fault_first_submit_each_allocation_in_turn)
{
    static const int fills[2] = {0, 255};
    for (int f = 0; f < 2; f++) {
        long k;
        for (k = 0;; k++) {
            CHECK_LT(k, 100);
            first_fault ff = {.k = k, .fill = fills[f]};
            run_counted(first_fault_main, &ff);
            if (!ff.failed)
                break;
        }
        /* the worker's stack (or dense block; in an eager loop, the fill's
         * tasks have left stacks in the cache), the backlog's storage, and
         * with the fill the block of records */
        CHECK_GE(k, 2);
        printf("    fill %d: %ld allocations failed in turn\n", fills[f], k);
    }
}

/* A second worker's start fails while the first is alive: the submit
 * still succeeds (the job waits for the worker alive). The next submit
 * starts the second worker, which takes that job at once, before the
 * submit returns (an eager start). */
static int second_fault_main(void *arg, void **result)
{
    (void)result;
    first_fault *ff = arg;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 0);
    jms(0, 10);
    jms(1, 10);
    jms(2, 10);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_yield()); /* job 0 runs */
    long failures = cosync__fault_failures;
    cosync__fault_countdown = ff->k;
    ff->rc = sub(&wp, 1, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    ff->failed = cosync__fault_failures != failures;
    CHECK_OK(ff->rc);
    if (ff->failed) {
        CHECK_WP(&wp, 1, 0, 1, 1, 2, 0, 0, 0); /* no second worker; job 1 waits */
        sub_ok(&wp, 2);
        tr("M+2");
        CHECK_TRACE("s0@0 s1@0 M+2@0");
        CHECK_WP(&wp, 2, 0, 2, 1, 3, 0, 0, 0);
        CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
        CHECK_TRACE("s0@0 s1@0 M+2@0 e0@10 s2@10 e1@10 e2@20");
    } else {
        sub_ok(&wp, 2);
        CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
        CHECK_TRACE("s0@0 s1@0 e0@10 s2@10 e1@10 e2@20");
    }
    CHECK_WP(&wp, 2, 2, 0, 0, 3, 3, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(3);
    return 0;
}

TEST(fault_second_worker_the_job_waits_for_the_first)
{
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        first_fault ff = {.k = k};
        run_counted(second_fault_main, &ff);
        if (!ff.failed)
            break;
    }
    CHECK_GE(k, 1);
}

/* ========================================================================
 * 8. The loop's close with workers alive
 * ===================================================================== */

/* The pool outlives the loops it is used in. */
static cosync_workerpool close_wp;

static cosync_loop_opts close_opts(void)
{
    return (cosync_loop_opts){.virtual_clock = true, .eager_tasks = CFG.eager_loop};
}

/* Main returns with worker-0 in job 0, worker-1 idle and J1 waiting in
 * join: cosync_run's close cancels them all; the workers end. */
static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jms(0, -1);
    jms(1, 0);
    sub_ok(&close_wp, 0);
    sub_ok(&close_wp, 1);
    static actor j1;
    j1 = mka(&close_wp, "J1", JOIN);
    j1.start = AT(1);
    CHECK_OK(cosync_task_spawn(NULL, actor_fn, &j1, NULL));
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_WP(&close_wp, 2, 1, 1, 0, 2, 1, 0, 0);
    return 0;
}

TEST(loop_close_cancels_the_workers_and_they_end)
{
    jobs_reset();
    init_pool(&close_wp, 2, 1);
    cosync_loop_opts o = close_opts();
    CHECK_OK(cosync_run_with(close_main, NULL, &o));
    CHECK_TRACE("s0@0 s1@0 e1@0 J1?@1 e0!ECANCELED@2 J1!ECANCELED@2");
    CHECK_WP(&close_wp, 0, 0, 0, 0, 2, 1, 1, 0);
    CHECK_ERR(J(0)->done_status, COSYNC_ECANCELED);
    CHECK_OK(cosync_workerpool_destroy(&close_wp));
    check_all_done(2);
}

/* Main returns with worker-0 in job 0, job 1 in the backlog (full), S1
 * waiting to submit job 2: the close cancels the worker and S1. The worker
 * ends (patterns.md: "The loop's close cancels the workers like any task;
 * they end, and the pool can then be destroyed (jobs left in the backlog
 * go to the done callback as dropped)"): job 1 is left in the backlog, and
 * destroy drops it. S1 submitted nothing. */
static int close_backlog_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jms(0, -1);
    jms(1, 5);
    jms(2, 5);
    sub_ok(&close_wp, 0);
    CHECK_OK(cosync_yield());
    sub_ok(&close_wp, 1);
    static actor s1;
    s1 = mka(&close_wp, "S1", SUBMIT);
    s1.start = AT(1);
    s1.job = 2;
    CHECK_OK(cosync_task_spawn(NULL, actor_fn, &s1, NULL));
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_WP(&close_wp, 1, 0, 1, 1, 2, 0, 0, 0);
    return 0;
}

TEST(loop_close_leaves_the_backlog_to_destroy)
{
    jobs_reset();
    init_pool(&close_wp, 1, 1);
    cosync_loop_opts o = close_opts();
    CHECK_OK(cosync_run_with(close_backlog_main, NULL, &o));
    CHECK_WP(&close_wp, 0, 0, 0, 1, 2, 0, 1, 0);
    CHECK_TRACE("s0@0 S1?@1 e0!ECANCELED@2 S1!ECANCELED@2");
    CHECK(!J(1)->started);
    CHECK(!J(2)->started);
    CHECK_OK(cosync_workerpool_destroy(&close_wp));
    CHECK_TRACE("s0@0 S1?@1 e0!ECANCELED@2 S1!ECANCELED@2 x1");
    CHECK(!J(1)->done_in_task);
    CHECK_EQ(J(2)->ndone, 0);
    CHECK_EQ(J(1)->ndone, 1);
}

/* A task stops the loop, then hands job 2 to worker-0, which has not run
 * when the loop is closed: its grant is revoked, job 2 stays in the
 * backlog. Then either destroy drops it, or the pool goes on in another
 * loop: a join there waits (no worker alive: destroy is EBUSY for the
 * waiting task alone), and the next submit starts a worker that takes job
 * 2 at once, before the submit returns. */
static int stop_then_hand(void *arg, void **result)
{
    (void)result;
    cosync_workerpool *wp = arg;
    jms(0, 0);
    jms(1, 0);
    jms(2, 0);
    sub_ok(wp, 0);
    sub_ok(wp, 1);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    sub_ok(wp, 2);
    return 0;
}

static int reuse_main(void *arg, void **result)
{
    (void)result;
    cosync_workerpool *wp = arg;
    actor j1 = mka(wp, "J1", JOIN);
    j1.start = AT(1);
    cosync_task t = spawn_actor(&j1);
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_ERR(cosync_workerpool_destroy(wp), COSYNC_EBUSY);
    CHECK_WP(wp, 0, 0, 0, 1, 3, 2, 0, 0);
    jms(3, 0);
    sub_ok(wp, 3);
    tr("M+3");
    join_ok(t);
    CHECK_OK(j1.rc);
    CHECK_TRACE("s0@0 e0@0 s1@0 e1@0 J1?@1 s2@2 e2@2 M+3@2 J1=@2 s3@2 e3@2");
    CHECK_STREQ(J(2)->worker, "worker-0");
    CHECK_WP(wp, 1, 1, 0, 0, 4, 4, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(wp));
    check_all_done(4);
    return 0;
}

TEST(loop_close_with_a_job_handed_to_a_worker_that_has_not_run)
{
    for (int reuse = 0; reuse < 2; reuse++) {
        jobs_reset();
        init_pool(&close_wp, 2, 0);
        cosync_loop *loop = cfg_loop();
        CHECK_OK(cosync_loop_spawn(loop, NULL, stop_then_hand, &close_wp, NULL));
        CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
        CHECK_TRACE("s0@0 e0@0 s1@0 e1@0");
        CHECK_WP(&close_wp, 2, 2, 0, 1, 3, 2, 0, 0);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_WP(&close_wp, 0, 0, 0, 1, 3, 2, 0, 0);
        CHECK(!J(2)->started);
        CHECK_EQ(J(2)->ndone, 0);
        if (reuse) {
            run_ok(reuse_main, &close_wp);
        } else {
            CHECK_OK(cosync_workerpool_destroy(&close_wp));
            CHECK_TRACE("s0@0 e0@0 s1@0 e1@0 x2");
            CHECK(!J(2)->done_in_task);
            check_all_done(3);
        }
    }
}

/* ========================================================================
 * 10. The jobs' task-local pointer; the workers' names
 * ===================================================================== */

static int set_l, main_l, job_l;

static int local_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    CHECK_OK(cosync_task_set_local(&main_l));
    for (int with = 0; with < 2; with++) {
        cosync_workerpool wp;
        cosync_workerpool_opts o = wopts(1, 0);
        o.task.local = with ? &set_l : NULL;
        CHECK_OK(cosync_workerpool_init(&wp, &o));
        int base = 3 * with;
        for (int i = base; i < base + 3; i++) {
            jms(i, i % 2); /* some suspend */
            J(i)->set_local = &job_l;
            sub_ok(&wp, i);
        }
        CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
        for (int i = base; i < base + 3; i++)
            CHECK(J(i)->local == (with ? (void *)&set_l : NULL)); /* never mine, nor job_l */
        CHECK(cosync_task_get_local() == &main_l);
        CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
        CHECK_OK(cosync_workerpool_destroy(&wp));
    }
    check_all_done(6);
    return 0;
}

TEST(each_job_starts_with_the_pools_task_local)
{
    run_ok(local_main, NULL);
}

typedef struct names_case {
    const char *name; /* NULL: none given */
    const char *want[3];
} names_case;

static int names_main(void *arg, void **result)
{
    (void)result;
    const names_case *nc = arg;
    jobs_reset();
    char buf[64] = "";
    cosync_workerpool_opts o = wopts(3, 0);
    if (nc->name) {
        snprintf(buf, sizeof buf, "%s", nc->name);
        o.task.name = buf;
    }
    cosync_workerpool wp;
    CHECK_OK(cosync_workerpool_init(&wp, &o));
    memset(buf, 'X', sizeof buf - 1); /* the pool has its own copy */
    for (int i = 0; i < 3; i++) {
        jms(i, 1);
        sub_ok(&wp, i);
    }
    cosync_task all[8];
    CHECK_EQ(cosync_loop_all_tasks(NULL, all, 8), 4);
    CHECK_STREQ(cosync_task_name(all[0]), "main");
    for (int i = 0; i < 3; i++)
        CHECK_STREQ(cosync_task_name(all[1 + i]), nc->want[i]);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    for (int i = 0; i < 3; i++)
        CHECK_STREQ(J(i)->worker, nc->want[i]);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    return 0;
}

TEST(workers_are_named_after_their_slots)
{
    static const names_case cases[] = {
        {"pool", {"pool-0", "pool-1", "pool-2"}},
        {NULL, {"worker-0", "worker-1", "worker-2"}},
        {"", {"worker-0", "worker-1", "worker-2"}},
        /* 29 bytes: with "-0", the 31 a task's name holds */
        {"abcdefghijklmnopqrstuvwxyzABC",
         {"abcdefghijklmnopqrstuvwxyzABC-0", "abcdefghijklmnopqrstuvwxyzABC-1",
          "abcdefghijklmnopqrstuvwxyzABC-2"}},
        /* longer: the name is cut, never the slot's number */
        {"abcdefghijklmnopqrstuvwxyzABCDEFGHIJ",
         {"abcdefghijklmnopqrstuvwxyzABC-0", "abcdefghijklmnopqrstuvwxyzABC-1",
          "abcdefghijklmnopqrstuvwxyzABC-2"}},
        /* and before a UTF-8 character that would not fit whole: "é" is
         * 2 bytes, at 28 and 29 */
        {"abcdefghijklmnopqrstuvwxyzAB\xc3\xa9XYZ",
         {"abcdefghijklmnopqrstuvwxyzAB-0", "abcdefghijklmnopqrstuvwxyzAB-1",
          "abcdefghijklmnopqrstuvwxyzAB-2"}},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        run_ok(names_main, (void *)&cases[i]);
}

/* ========================================================================
 * More edges: grants and shutdown, pending cancels, the deadlock report
 * ===================================================================== */

/* S1 is given room at 10 (worker-0 took job 1), but the pool is shut down
 * before S1 runs: it gets ESHUTDOWN and submits nothing. With a cancelling
 * shutdown, job 1, just begun, is cancelled. */
static int granted_then_shut_main(void *arg, void **result)
{
    (void)result;
    bool cancel = *(const bool *)arg;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 1);
    for (int i = 0; i < 3; i++)
        jms(i, 10);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_yield());
    sub_ok(&wp, 1);
    actor s1 = mka(&wp, "S1", SUBMIT);
    s1.start = AT(1);
    s1.job = 2;
    cosync_task ts = spawn_actor(&s1);
    /* my timer is armed after job 0's: at 10, worker-0 runs first */
    CHECK_OK(cosync_sleep_until(AT(10)));
    CHECK_EQ(s1.rc, 1); /* given room, not run yet */
    CHECK_WP(&wp, 1, 0, 1, 0, 2, 1, 0, 0);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_ERR(cosync_workerpool_shutdown(&wp, cancel, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_workerpool_shutdown(&wp, cancel, COSYNC_FOREVER));
    join_ok(ts);
    CHECK_ERR(s1.rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(s1.at, AT(10));
    if (cancel) {
        CHECK_TRACE("s0@0 S1?@1 e0@10 s1@10 S1!ESHUTDOWN@10 e1!ECANCELED@10");
        CHECK_WP(&wp, 0, 0, 0, 0, 2, 1, 1, 0);
    } else {
        CHECK_TRACE("s0@0 S1?@1 e0@10 s1@10 S1!ESHUTDOWN@10 e1@20");
        CHECK_WP(&wp, 0, 0, 0, 0, 2, 2, 0, 0);
    }
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(submitter_given_room_then_shut_down_submits_nothing)
{
    bool cancel = false;
    run_ok(granted_then_shut_main, &cancel);
    cancel = true;
    run_ok(granted_then_shut_main, &cancel);
}

/* A cancel pending at a submit: one that needs no wait succeeds, also
 * when it starts a worker (the eager start does not take the cancel),
 * and the cancel stays pending; one that would wait gets it; the try form
 * leaves it pending. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 2);
    for (int i = 0; i < 5; i++)
        jms(i, 10);
    cosync_task me = cosync_task_current();
    CHECK_OK(cosync_task_cancel(me));
    sub_ok(&wp, 0); /* starts worker-0 */
    CHECK_WP(&wp, 1, 1, 0, 1, 1, 0, 0, 0);
    sub_ok(&wp, 1); /* starts worker-1 */
    CHECK_WP(&wp, 2, 2, 0, 2, 2, 0, 0, 0);
    CHECK_ERR(sub(&wp, 2, 0), COSYNC_EAGAIN); /* full: the try form */
    CHECK_ERR(sub(&wp, 2, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_ERR(cosync_workerpool_join(&wp, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(cosync_workerpool_join(&wp, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_EQ(cosync_now(), AT(0));
    CHECK_WP(&wp, 2, 0, 2, 0, 2, 0, 0, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_TRACE("s0@0 s1@0 e0@10 e1@10");
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(pending_cancel_at_submit_and_join)
{
    run_ok(pending_cancel_main, NULL);
}

/* A job submits another, and waits for room for a third: the pool's jobs
 * may use it as any task. */
static int extra_submit(job *j)
{
    cosync_workerpool *wp = j->extra_arg;
    int rc = sub(wp, j->id + 1, 0);
    if (rc == 0)
        rc = sub(wp, j->id + 2, COSYNC_FOREVER);
    return rc;
}

static int nested_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 2, 1);
    jms(0, 10)->extra = extra_submit;
    J(0)->extra_arg = &wp;
    jms(1, 10);
    jms(2, 10);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_OK(J(0)->extra_rc);
    /* job 0's first submit starts worker-1 and hands it job 1, which
     * fills the backlog: job 0 waits for room until worker-1 takes job 1,
     * so its sleep comes after job 1's */
    CHECK_TRACE("s0@0 s1@0 e1@10 s2@10 e0@10 e2@20");
    CHECK_STREQ(J(1)->worker, "worker-1");
    CHECK_WP(&wp, 2, 2, 0, 0, 3, 3, 0, 0);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(3);
    return 0;
}

TEST(jobs_submit_jobs)
{
    run_ok(nested_main, NULL);
}

/* A shutdown that waits for a job that waits forever is a deadlock: the
 * report says what the shutdown waits for. The pool then goes on. */
static cosync_workerpool dl_wp;
static cosync_event dl_ev;

static int wait_event_job(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&dl_ev, COSYNC_FOREVER);
}

static int dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_workerpool_submit(&dl_wp, wait_event_job, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_yield());
    return cosync_workerpool_shutdown(&dl_wp, false, COSYNC_FOREVER);
}

TEST(deadlock_report_describes_the_pool)
{
    jobs_reset();
    cosync_workerpool_opts o = {.workers = 1};
    CHECK_OK(cosync_workerpool_init(&dl_wp, &o));
    cosync_event_init(&dl_ev);
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, dl_main, NULL, "main", &m);
    char want[512];
    snprintf(
        want, sizeof want,
        "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
        "  task 'main' (#1) waits on workerpool %p (shut down; workers alive: 1, in a job: 1)\n"
        "  task 'worker-0' (#2) waits on event %p\n",
        (void *)&dl_wp, (void *)&dl_ev);
    CHECK_STREQ(report.buf, want);
    CHECK_OK(cosync_event_set(&dl_ev)); /* from outside: the job ends */
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
    CHECK_WP(&dl_wp, 0, 0, 0, 0, 1, 1, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&dl_wp));
}

/* A cancelling shutdown while S1 waits to submit: dropping job 1 makes
 * room, but S1 gets ESHUTDOWN all the same, and submits nothing. */
static int cancel_waiting_submitter_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 1);
    for (int i = 0; i < 3; i++)
        jms(i, 10);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_yield());
    sub_ok(&wp, 1);
    actor s1 = mka(&wp, "S1", SUBMIT);
    s1.start = AT(1);
    s1.job = 2;
    cosync_task ts = spawn_actor(&s1);
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_OK(cosync_workerpool_shutdown(&wp, true, COSYNC_FOREVER));
    tr("M=");
    join_ok(ts);
    CHECK_ERR(s1.rc, COSYNC_ESHUTDOWN);
    CHECK_TRACE("s0@0 S1?@1 x1@2 S1!ESHUTDOWN@2 e0!ECANCELED@2 M=@2");
    CHECK_WP(&wp, 0, 0, 0, 0, 2, 0, 1, 1);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
    return 0;
}

TEST(shutdown_cancel_with_a_submitter_waiting)
{
    run_ok(cancel_waiting_submitter_main, NULL);
}

/* ========================================================================
 * Workers cancelled from outside
 * ===================================================================== */

/* The handle of the live task named @name of the current loop. */
static cosync_task task_named(const char *name)
{
    cosync_task all[16];
    int n = cosync_loop_all_tasks(NULL, all, 16);
    CHECK(n > 0 && n <= 16);
    for (int i = 0; i < n; i++)
        if (strcmp(cosync_task_name(all[i]), name) == 0)
            return all[i];
    CHECK__FAIL("no task named %s", name);
    return COSYNC_TASK_NONE;
}

/* An idle worker cancelled by a task of its loop ends; with no worker
 * left, the pool is bound to no loop: a task of another loop may use it,
 * and then the first loop's tasks may not. */
typedef struct moving {
    cosync_workerpool *wp;
    int step;
    int rc;
} moving;

static int moving_task(void *arg, void **result)
{
    (void)result;
    moving *mv = arg;
    switch (mv->step) {
    case 0: /* in loop a: a worker, idle, then cancelled */
        jms(0, 0);
        sub_ok(mv->wp, 0);
        CHECK_OK(cosync_yield());
        CHECK_WP(mv->wp, 1, 1, 0, 0, 1, 1, 0, 0);
        CHECK_OK(cosync_task_cancel(task_named("worker-0")));
        CHECK_OK(cosync_yield());
        CHECK_WP(mv->wp, 0, 0, 0, 0, 1, 1, 0, 0);
        break;
    case 1: /* in loop b */
        jms(1, 5);
        mv->rc = sub(mv->wp, 1, COSYNC_FOREVER);
        break;
    case 2: /* in loop a */
        mv->rc = sub(mv->wp, 2, 0);
        break;
    default: /* in loop b */
        mv->rc = cosync_workerpool_shutdown(mv->wp, false, COSYNC_FOREVER);
        break;
    }
    return 0;
}

TEST(workers_cancelled_from_outside_end_and_the_pool_moves_to_another_loop)
{
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 0);
    cosync_loop *a = cfg_loop(), *b = cfg_loop();
    cosync_task t;
    moving mv = {.wp = &wp};
    for (mv.step = 0; mv.step < 4; mv.step++) {
        mv.rc = 1;
        spawn_and_run(mv.step % 2 ? b : a, &t, moving_task, &mv);
        if (mv.step == 1 || mv.step == 3)
            CHECK_OK(mv.rc);
        else if (mv.step == 2)
            CHECK_ERR(mv.rc, COSYNC_EPERM); /* the workers are b's now */
    }
    CHECK_TRACE("s0@0 e0@0 s1@0 e1@5");
    CHECK_WP(&wp, 0, 0, 0, 0, 2, 2, 0, 0);
    end_loop(a);
    end_loop(b);
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(2);
}

/* The only worker, handed job 1 by A1 (which fills the backlog), is
 * cancelled by C1 before it runs, while S1 waits to submit: it ends
 * without job 1, which stays in the backlog; destroy is EBUSY and drops
 * nothing (S1 waits on the pool). My next submit starts a worker, which
 * takes job 1 at once, before the submit goes on, and so makes room for
 * S1: my submit waits behind S1. A1, S1 and C1 start at 1 in that order. */
static int cancelled_handed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    jobs_reset();
    cosync_workerpool wp;
    init_pool(&wp, 1, 1);
    for (int i = 0; i < 4; i++)
        jms(i, 0);
    sub_ok(&wp, 0);
    CHECK_OK(cosync_yield());
    actor a1 = mka(&wp, "A1", SUBMIT), s1 = mka(&wp, "S1", SUBMIT),
          c1 = mka(&wp, "C1", CANCEL_WORKER0);
    a1.job = 1;
    s1.job = 2;
    a1.start = s1.start = c1.start = AT(1);
    cosync_task t[3] = {spawn_actor(&a1), spawn_actor(&s1), spawn_actor(&c1)};
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_OK(a1.rc);
    CHECK_OK(c1.rc);
    CHECK_EQ(s1.rc, 1); /* waiting */
    CHECK_WP(&wp, 0, 0, 0, 1, 2, 1, 0, 0);
    CHECK_ERR(cosync_workerpool_destroy(&wp), COSYNC_EBUSY);
    CHECK_WP(&wp, 0, 0, 0, 1, 2, 1, 0, 0);
    CHECK_EQ(J(1)->ndone, 0);
    sub_ok(&wp, 3);
    tr("M+3");
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_OK(s1.rc);
    CHECK_OK(cosync_workerpool_join(&wp, COSYNC_FOREVER));
    CHECK_TRACE("s0@0 e0@0 A1?@1 A1+@1 S1?@1 C1?@1 C1=@1 s1@2 e1@2 S1+@2 s2@2 e2@2 M+3@2 s3@2 "
                "e3@2");
    CHECK_WP(&wp, 1, 1, 0, 0, 4, 4, 0, 0);
    for (int k = 0; k < 4; k++)
        CHECK_EQ(G.started[k], k);
    CHECK_OK(cosync_workerpool_shutdown(&wp, false, COSYNC_FOREVER));
    CHECK_OK(cosync_workerpool_destroy(&wp));
    check_all_done(4);
    return 0;
}

TEST(worker_cancelled_from_outside_with_a_job_handed_to_it)
{
    run_ok(cancelled_handed_main, NULL);
}

/* ========================================================================
 * 11. A seeded model: random programs, their invariants
 * ===================================================================== */

/* Per round (one seed): a pool of 1-4 workers and a backlog of 0-4 (0:
 * none), 1-4 clients that each make 4-16 random steps: a submit (deadline
 * 0, none, or a random one; a job sleeps a random time or not at all,
 * fails one time in six, catches a cancel now and then, and one in eight
 * submits another job with the try form), a join (same deadlines) or a
 * sleep. Main cancels a random client now and then until all are done,
 * then shuts the pool down (cancelling or not; sometimes first with
 * deadline 0, sometimes made cancelling then). Checked: every submit's
 * code is one its deadline allows; a submit spawns a worker exactly when
 * none is idle without a job and fewer than `workers` are alive; the
 * counts at every step; a join's 0 means every job accepted before it has
 * ended; never more than `workers` jobs run; clients that waited for room
 * are admitted in the order they came; every job accepted reaches the done
 * callback once (ran, or dropped by a cancelling shutdown only), a
 * refused one never runs; succeeded + failed + dropped == submitted; no
 * deadlock. The k-th job to start must be the k-th accepted: rounds where
 * it is not are counted, and reported (with the first seed) after all
 * rounds ran. WP_MODEL_ROUNDS and WP_MODEL_SEED choose others. */

#define MJ 512

typedef struct mjob {
    int64_t sleep, after_cancel;
    int status;
    bool nested, from_client, waited;
    int entry, accept; /* accept: -1 if refused */
    bool started, ended;
    int ret, ndone, done_status;
    void *done_result;
} mjob;

static struct model {
    uint64_t seed, rng;
    cosync_workerpool wp;
    size_t workers, backlog;
    int nclients, nops;
    cosync_task clients[4];
    mjob j[MJ];
    int nj, entry_seq, accept_seq, nstarted, running;
    size_t spawns; /* the workers spawned, as the contract says they are */
    int accepted[MJ], started[MJ];
    int ndone, nok, nfailed, ndropped;
    bool shut, cancelling;
} M;

static struct model_totals {
    long rounds, accepted, ran, dropped, refused, joins_ok, joins_not, cancels;
    size_t spawns;
    long order_bad;
    uint64_t order_first_seed;
    char order_first[512]; /* the accept numbers of its jobs, in the order they started */
} MT;

#define MCHECK(cond)                                                                               \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK__FAIL("seed %llu: CHECK(%s)", (unsigned long long)M.seed, #cond);                \
    } while (0)

#define MCHECK_EQ(a, b)                                                                            \
    do {                                                                                           \
        long long m_a = (long long)(a), m_b = (long long)(b);                                      \
        if (m_a != m_b)                                                                            \
            CHECK__FAIL("seed %llu: CHECK_EQ(%s, %s): %lld != %lld", (unsigned long long)M.seed,   \
                        #a, #b, m_a, m_b);                                                         \
    } while (0)

#define MCHECK_RC(rc, ok)                                                                          \
    do {                                                                                           \
        if (!(ok))                                                                                 \
            CHECK__FAIL("seed %llu: %s returned %d (%s)", (unsigned long long)M.seed, #rc, (rc),   \
                        cosync_err_name(rc));                                                      \
    } while (0)

static cosync_workerpool_stats m_stats(void)
{
    cosync_workerpool_stats st;
    CHECK_OK(cosync_workerpool_get_stats(&M.wp, &st));
    MCHECK(st.workers <= M.workers);
    MCHECK(st.idle + st.busy <= st.workers);
    MCHECK(M.backlog == 0 || st.queued <= M.backlog);
    MCHECK_EQ(st.submitted, M.accept_seq);
    MCHECK_EQ(st.succeeded, M.nok);
    MCHECK_EQ(st.failed, M.nfailed);
    MCHECK_EQ(st.dropped, M.ndropped);
    MCHECK_EQ(st.succeeded + st.failed + st.dropped, M.ndone);
    MCHECK_EQ(st.busy, M.running);
    if (!M.shut) /* workers end only at the shutdown */
        MCHECK_EQ(st.workers, M.spawns);
    return st;
}

static int64_t m_deadline(int64_t span)
{
    switch (rnd(&M.rng, 4)) {
    case 0:
        return 0;
    case 3:
        return cosync_now() + (int64_t)rnd(&M.rng, (uint32_t)span + 1);
    default:
        return COSYNC_FOREVER;
    }
}

static void m_submit(bool nested);

static int m_job(void *arg, void **result)
{
    mjob *j = arg;
    int id = (int)(j - M.j);
    MCHECK(!j->started);
    MCHECK(j->accept >= 0); /* stored before it can start */
    MCHECK(!M.cancelling);  /* nothing starts after a cancelling shutdown */
    j->started = true;
    M.started[M.nstarted++] = id;
    MCHECK(++M.running <= (int)M.workers);
    m_stats();
    if (j->nested)
        m_submit(true);
    int rc = 0;
    if (j->sleep)
        rc = cosync_sleep(j->sleep);
    MCHECK_RC(rc, rc == 0 || rc == COSYNC_ECANCELED);
    if (rc == COSYNC_ECANCELED && j->after_cancel) {
        int again = cosync_sleep(j->after_cancel);
        MCHECK_RC(again, again == 0);
        rc = 0;
    }
    M.running--;
    j->ended = true;
    j->ret = rc ? rc : j->status;
    *result = j;
    return j->ret;
}

static void m_done(void *ctx, void *arg, int status, void *result)
{
    MCHECK(ctx == &M);
    mjob *j = arg;
    MCHECK(j->accept >= 0);
    MCHECK_EQ(++j->ndone, 1);
    j->done_status = status;
    j->done_result = result;
    M.ndone++;
    if (j->started) {
        MCHECK(j->ended);
        MCHECK_EQ(status, j->ret);
        MCHECK(result == j);
        if (status < 0)
            M.nfailed++;
        else
            M.nok++;
    } else {
        MCHECK(M.cancelling);
        MCHECK_EQ(status, COSYNC_ESHUTDOWN);
        MCHECK(result == NULL);
        M.ndropped++;
    }
}

static void m_submit(bool nested)
{
    if (M.nj >= MJ)
        return;
    int id = M.nj++;
    mjob *j = &M.j[id];
    *j = (mjob){.accept = -1, .from_client = !nested};
    j->sleep = rnd(&M.rng, 4) == 0 ? 0 : COSYNC_US(1 + rnd(&M.rng, 8000));
    j->status = rnd(&M.rng, 6) == 0 ? FAIL_CODE : (int)rnd(&M.rng, 3);
    j->after_cancel = rnd(&M.rng, 5) == 0 ? COSYNC_US(1 + rnd(&M.rng, 5000)) : 0;
    j->nested = !nested && rnd(&M.rng, 8) == 0;
    int64_t deadline = nested ? 0 : m_deadline(COSYNC_MS(15));
    cosync_workerpool_stats st0 = m_stats();
    /* a worker is spawned (at once, before anything else) exactly when none
     * idle is without a job and fewer than `workers` are alive */
    if (!M.shut && st0.workers < M.workers && st0.queued >= st0.idle)
        M.spawns++;
    j->entry = M.entry_seq++;
    int64_t t_in = cosync_now();
    int rc = cosync_workerpool_submit(&M.wp, m_job, j, deadline);
    j->waited = cosync_now() > t_in; /* surely queued behind a full backlog */
    if (rc == 0) {
        j->accept = M.accept_seq;
        M.accepted[M.accept_seq++] = id;
    } else {
        MT.refused++;
    }
    m_stats();
    bool finite = deadline != 0 && deadline != COSYNC_FOREVER;
    MCHECK_RC(rc, rc == 0 || (rc == COSYNC_EAGAIN && deadline == 0) ||
                      (rc == COSYNC_ETIMEDOUT && finite) ||
                      (rc == COSYNC_ECANCELED && !nested && deadline != 0) ||
                      (rc == COSYNC_ESHUTDOWN && M.shut));
}

static void m_join(void)
{
    int64_t deadline = m_deadline(COSYNC_MS(20));
    int before = M.accept_seq;
    int rc = cosync_workerpool_join(&M.wp, deadline);
    bool finite = deadline != 0 && deadline != COSYNC_FOREVER;
    MCHECK_RC(rc, rc == 0 || (rc == COSYNC_EAGAIN && deadline == 0) ||
                      (rc == COSYNC_ETIMEDOUT && finite) ||
                      (rc == COSYNC_ECANCELED && deadline != 0));
    if (rc == 0) {
        MT.joins_ok++;
        for (int k = 0; k < before; k++)
            MCHECK_EQ(M.j[M.accepted[k]].ndone, 1);
    } else {
        MT.joins_not++;
    }
    m_stats();
}

static int m_client(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int op = 0; op < M.nops; op++) {
        uint32_t r = rnd(&M.rng, 100);
        if (r < 55) {
            m_submit(false);
        } else if (r < 70) {
            m_join();
        } else {
            int rc = cosync_sleep(COSYNC_US(rnd(&M.rng, 10001)));
            MCHECK_RC(rc, rc == 0 || rc == COSYNC_ECANCELED);
        }
    }
    return 0;
}

static int m_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_workerpool_opts o = {.workers = M.workers,
                                .backlog = M.backlog,
                                .task = {.dense = CFG.dense},
                                .done = m_done,
                                .ctx = &M};
    CHECK_OK(cosync_workerpool_init(&M.wp, &o));
    for (int c = 0; c < M.nclients; c++)
        CHECK_OK(cosync_task_spawn(&M.clients[c], m_client, NULL, NULL));
    for (;;) {
        bool all = true;
        for (int c = 0; c < M.nclients; c++)
            all = all && cosync_task_done(M.clients[c]);
        if (all)
            break;
        CHECK_OK(cosync_sleep(COSYNC_US(500 + rnd(&M.rng, 8000))));
        if (rnd(&M.rng, 3) == 0) {
            int rc = cosync_task_cancel(M.clients[rnd(&M.rng, (uint32_t)M.nclients)]);
            MCHECK_RC(rc, rc == 0 || rc == COSYNC_EALREADY);
            MT.cancels += rc == 0;
        }
    }
    for (int c = 0; c < M.nclients; c++)
        CHECK_OK(cosync_task_join(M.clients[c], NULL, NULL, COSYNC_FOREVER));
    m_stats();
    bool cancel = rnd(&M.rng, 2);
    M.shut = true;
    M.cancelling = cancel;
    if (rnd(&M.rng, 2)) {
        int rc = cosync_workerpool_shutdown(&M.wp, cancel, 0);
        MCHECK_RC(rc, rc == 0 || rc == COSYNC_EAGAIN);
        if (rnd(&M.rng, 2))
            CHECK_OK(cosync_sleep(COSYNC_US(rnd(&M.rng, 5000))));
        if (!cancel && rnd(&M.rng, 2))
            M.cancelling = cancel = true; /* made cancelling */
    }
    CHECK_OK(cosync_workerpool_shutdown(&M.wp, cancel, COSYNC_FOREVER));
    cosync_workerpool_stats st = m_stats();
    MCHECK_EQ(st.workers, 0);
    MCHECK_EQ(st.queued, 0);
    MCHECK_EQ(st.submitted, M.accept_seq);
    MCHECK_EQ(st.succeeded + st.failed + st.dropped, st.submitted);
    if (!M.cancelling)
        MCHECK_EQ(st.dropped, 0);
    for (int i = 0; i < M.nj; i++) {
        mjob *j = &M.j[i];
        if (j->accept < 0) {
            MCHECK(!j->started);
            MCHECK_EQ(j->ndone, 0);
        } else {
            MCHECK_EQ(j->ndone, 1);
            MCHECK(j->started == j->ended);
        }
    }
    /* clients that waited for room are admitted in the order they came
     * (one that finds room while others have been given theirs but have
     * not run yet may get in before them, as in asyncio) */
    int last = -1;
    for (int k = 0; k < M.accept_seq; k++) {
        mjob *j = &M.j[M.accepted[k]];
        if (!j->from_client || !j->waited)
            continue;
        MCHECK(j->entry > last);
        last = j->entry;
    }
    /* the jobs that ran are the first accepted, and started in that order */
    bool bad = false;
    for (int k = 0; k < M.nstarted; k++)
        bad = bad || M.started[k] != M.accepted[k];
    if (bad && MT.order_bad++ == 0) {
        MT.order_first_seed = M.seed;
        size_t len = 0;
        for (int k = 0; k < M.nstarted && len + 16 < sizeof MT.order_first; k++)
            len += (size_t)snprintf(MT.order_first + len, sizeof MT.order_first - len, " %d",
                                    M.j[M.started[k]].accept);
    }
    MT.accepted += M.accept_seq;
    MT.spawns += M.spawns;
    MT.ran += M.nstarted;
    MT.dropped += (long)st.dropped;
    CHECK_OK(cosync_workerpool_destroy(&M.wp));
    return 0;
}

static void model_round(uint64_t seed)
{
    memset(&M, 0, sizeof M);
    M.seed = seed;
    M.rng = splitmix(seed);
    M.workers = 1 + rnd(&M.rng, 4);
    M.backlog = rnd(&M.rng, 5);
    M.nclients = 1 + (int)rnd(&M.rng, 4);
    M.nops = 4 + (int)rnd(&M.rng, 13);
    CFG = cfgs[seed % NCFG];
    if (CFG.dense && !COSYNC__DENSE_SUPPORTED)
        CFG = cfgs[0];
    cosync_loop *loop = cfg_loop();
    cosync_task m;
    int status = 0;
    int rc = cosync_loop_spawn(loop, &m, m_main, NULL, &(cosync_task_opts){.name = "main"});
    if (rc == 0)
        rc = cosync_loop_run(loop, m, &status, NULL);
    if (rc || status)
        CHECK__FAIL("seed %llu: the round ended with %d (%s), main's status %d",
                    (unsigned long long)seed, rc, cosync_err_name(rc), status);
    end_loop(loop);
    CFG = cfgs[0];
    MT.rounds++;
}

TEST(model_random_programs_keep_the_invariants)
{
    memset(&MT, 0, sizeof MT);
    long n = env_long("WP_MODEL_ROUNDS", under_valgrind() ? 500 : UNDER_ASAN ? 5000 : 20000);
    long first = env_long("WP_MODEL_SEED", 1);
    double secs = run_seeds(model_round, first, n);
    printf("    %ld rounds from seed %ld in %.2f s: %ld jobs accepted (%ld ran, %ld dropped), %ld "
           "submits refused, %zu workers spawned, %ld joins done and %ld not, %ld cancels\n",
           MT.rounds, first, secs, MT.accepted, MT.ran, MT.dropped, MT.refused, MT.spawns,
           MT.joins_ok, MT.joins_not, MT.cancels);
    if (MT.order_bad)
        CHECK__FAIL("in %ld of %ld rounds a job started before one accepted earlier; the first, "
                    "seed %llu, started its jobs in the order they were accepted in:%s",
                    MT.order_bad, MT.rounds, (unsigned long long)MT.order_first_seed,
                    MT.order_first);
}

/* ========================================================================
 * main
 * ===================================================================== */

/* A worker that the loop's close cancels before it starts (spawned in
 * the close's second round by a task spawned during the close) never
 * runs: the submit that spawned it says COSYNC_ECANCELED, the task's
 * status, and submits nothing. */
static cosync_workerpool close_wp;
static int close_submit_rc = 1;

static int submit_in_round_two(void *arg, void **result)
{
    (void)arg, (void)result;
    /* spawned during the close: it is cancelled in the next round, and
     * what it spawns from then on never starts */
    CHECK_EQ(cosync_sleep_until(COSYNC_FOREVER), COSYNC_ECANCELED);
    jms(0, 0);
    close_submit_rc = cosync_workerpool_submit(&close_wp, job_fn, J(0), COSYNC_FOREVER);
    return 0;
}

static int spawn_in_round_one(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_sleep_until(COSYNC_FOREVER), COSYNC_ECANCELED); /* the close */
    /* its clean-up spawns a task that runs in the close's next round */
    CHECK_OK(cosync_task_spawn(NULL, submit_in_round_two, NULL, NULL));
    return COSYNC_ECANCELED;
}

static int close_rounds_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, spawn_in_round_one, NULL, NULL));
    CHECK_OK(cosync_yield());
    return 0; /* the close cancels spawn_in_round_one */
}

TEST(a_worker_the_close_cancels_before_it_starts)
{
    jobs_reset();
    init_pool(&close_wp, 2, 0);
    CHECK_OK(cosync_run(close_rounds_main, NULL));
    CHECK_EQ(close_submit_rc, COSYNC_ECANCELED);
    CHECK(!J(0)->started);
    CHECK_WP(&close_wp, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_OK(cosync_workerpool_destroy(&close_wp));
}

int main(int argc, char **argv)
{
    only = argc > 1 ? argv[1] : NULL;
    RUN_CFGS(basics_order_limit_done_and_stats);
    RUN_CFGS(lazy_workers_one_job_one_worker_idle_ones_reused);
    RUN_CFGS(backlog_full_try_timeout_cancel_and_fifo_admission);
    RUN_CFGS(waiting_submitter_leaves_at_head_middle_tail);
    RUN_CFGS(backlog_zero_is_unbounded);
    RUN_CFGS(join_waits_for_every_job_times_out_is_cancelled_and_the_pool_goes_on);
    RUN_CFGS(shutdown_runs_the_backlog_refuses_submits_and_waits_for_the_workers);
    RUN_CFGS(shutdown_with_no_worker_returns_at_once);
    RUN_CFGS(shutdown_from_a_job);
    RUN_CFGS(shutdown_cancelled_while_it_waits);
    RUN_CFGS(shutdown_cancel_drops_what_has_not_begun_and_cancels_the_rest);
    RUN_CFGS(shutdown_without_cancel_then_with_cancel_while_draining);
    RUN_CFGS(shutdown_cancel_waits_for_a_job_that_ignores_it);
    RUN_CFGS(shutdown_cancel_with_a_submitter_waiting);
    RUN_CFGS(destroy_is_ebusy_while_workers_live_or_tasks_wait_and_einval_after);
    RUN1(destroy_of_an_unused_pool);
    RUN1(misuse_init_arguments);
    RUN1(misuse_null_arguments_and_a_zeroed_pool);
    RUN_CFGS(misuse_an_absurd_stack_size);
    RUN_CFGS(misuse_outside_a_task);
    RUN_CFGS(misuse_a_task_of_another_loop_while_workers_live);
    RUN1(fault_init_its_one_allocation);
    RUN_CFGS(fault_first_submit_each_allocation_in_turn);
    RUN_CFGS(fault_second_worker_the_job_waits_for_the_first);
    RUN_CFGS(loop_close_with_a_job_handed_to_a_worker_that_has_not_run);
    RUN_CFGS(workers_cancelled_from_outside_end_and_the_pool_moves_to_another_loop);
    RUN_CFGS(worker_cancelled_from_outside_with_a_job_handed_to_it);
    RUN_CFGS(each_job_starts_with_the_pools_task_local);
    RUN_CFGS(workers_are_named_after_their_slots);
    RUN_CFGS(submitter_given_room_then_shut_down_submits_nothing);
    RUN_CFGS(pending_cancel_at_submit_and_join);
    RUN_CFGS(jobs_submit_jobs);
    RUN1(deadlock_report_describes_the_pool);
    RUN1(a_worker_the_close_cancels_before_it_starts);
    /* these found the two bugs the top of the file tells of */
    RUN_CFGS(jobs_start_in_submit_order_with_sleeping_jobs);
    RUN_CFGS(jobs_start_in_submit_order_when_a_worker_comes_back_first);
    RUN1(model_random_programs_keep_the_invariants);
    RUN_CFGS(loop_close_cancels_the_workers_and_they_end);
    RUN_CFGS(loop_close_leaves_the_backlog_to_destroy);
    return 0;
}
