/*
 * test_threads_executor.c - thread pools: cosync_executor_init/destroy,
 * cosync_executor_run and cosync_to_thread (loop.run_in_executor,
 * asyncio.to_thread), cosync_job_cancelled.
 *
 * Loops run on the virtual clock, but for the few cases where a deadline
 * must pass while a job is queued or running: the virtual clock stands
 * still while a job holds its loop, so those run on the real clock, with
 * a short deadline whose outcome does not depend on the machine's speed
 * (the loop's thread is kept from reaching the deadline until the job is
 * where the case needs it). The pools' threads are real: every outcome is
 * made certain by pthread semaphores and barriers (a job that blocks until
 * the test lets it go, or polls cosync_job_cancelled), never by a sleep.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core.h" /* COSYNC__DENSE_SUPPORTED */
#include "fault.h"
#include "harness.h"

/* ------------------------------------------------------------------------
 * Helpers
 * ---------------------------------------------------------------------- */

/* In a task on the real clock: wait for @s without blocking the loop. */
static void sem_wait_polling(sem_t *s)
{
    while (sem_trywait(s) != 0) {
        CHECK(errno == EAGAIN || errno == EINTR);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
}

/* A loop on the virtual or the real clock, whose default pool has at most
 * @threads threads (0: the default). */
static cosync_loop *make_loop(bool virtual_clock, size_t threads)
{
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.virtual_clock = virtual_clock, .executor_threads = threads}));
    return loop;
}

/* Run @fn(@arg) as the main task of @loop, check its status 0, end @loop. */
static void run_in(cosync_loop *loop, cosync_task_fn fn, void *arg)
{
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
}

/* Whether the thread @tid of this process is still there (in /proc). */
static bool thread_exists(pid_t tid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld", (long)tid);
    return access(path, F_OK) == 0;
}

/* Whether the thread @tid has gone: a joined thread leaves /proc a moment
 * after its join returns, so this looks again for a while (that decides
 * nothing: a thread still there after 10 s fails the check). */
static bool thread_gone(pid_t tid)
{
    for (int i = 0; i < 10000 && thread_exists(tid); i++)
        usleep(1000);
    return !thread_exists(tid);
}

/* ------------------------------------------------------------------------
 * A job, and a task that waits for one
 * ---------------------------------------------------------------------- */

typedef struct job {
    int status;   /* fn's return */
    void *result; /* what fn stores */
    int id;
    sem_t *started;             /* posted as fn starts */
    pthread_barrier_t *barrier; /* waited at once started */
    bool until_cancelled;       /* poll cosync_job_cancelled() until true */
    sem_t *saw_cancel;          /* posted once it saw it */
    sem_t *release;             /* waited before it ends */
    int *log, *log_n;           /* its id appended (a one-thread pool's jobs) */
    cosync_executor *destroy;   /* a pool it tries to destroy */
    /* what it saw */
    atomic_bool ran;
    pthread_t thread;
    pid_t tid;
    bool cancelled_at_start, cancelled_at_end;
    int destroy_rc;
} job;

static int job_fn(void *arg, void **result)
{
    job *j = arg;
    atomic_store(&j->ran, true);
    j->thread = pthread_self();
    j->tid = (pid_t)syscall(SYS_gettid);
    j->cancelled_at_start = cosync_job_cancelled();
    if (j->log)
        j->log[(*j->log_n)++] = j->id;
    if (j->started)
        CHECK_EQ(sem_post(j->started), 0);
    if (j->barrier) {
        int rc = pthread_barrier_wait(j->barrier);
        CHECK(rc == 0 || rc == PTHREAD_BARRIER_SERIAL_THREAD);
    }
    if (j->destroy)
        j->destroy_rc = cosync_executor_destroy(j->destroy);
    if (j->until_cancelled) {
        while (!cosync_job_cancelled())
            usleep(100);
        if (j->saw_cancel)
            CHECK_EQ(sem_post(j->saw_cancel), 0);
    }
    if (j->release)
        sem_wait_ok(j->release);
    j->cancelled_at_end = cosync_job_cancelled();
    *result = j->result;
    return j->status;
}

static job mkjob(int status, void *result)
{
    job j = {.status = status, .result = result};
    atomic_init(&j.ran, false);
    return j;
}

#define NOT_SET ((void *)&not_set_mark)
static int not_set_mark;

typedef struct caller {
    cosync_executor *ex; /* NULL: cosync_to_thread */
    job *j;
    int64_t deadline;
    int64_t timeout; /* > 0: the deadline is this from the call's start */
    long fault_k;    /* >= 0: cosync__fault_countdown for the call */
    bool then_yield; /* and record what a yield after it returns */
    int rc, next_rc;
    void *result;
} caller;

static caller mkcaller(cosync_executor *ex, job *j)
{
    return (caller){
        .ex = ex, .j = j, .deadline = COSYNC_FOREVER, .fault_k = -1, .rc = 1, .result = NOT_SET};
}

static int caller_fn(void *arg, void **result)
{
    (void)result;
    caller *c = arg;
    /* from the loop's time now, which stays the same until this task
     * suspends: the call cannot find its deadline passed already */
    if (c->timeout > 0)
        c->deadline = cosync_deadline_after(c->timeout);
    if (c->fault_k >= 0)
        cosync__fault_countdown = c->fault_k;
    if (c->ex)
        c->rc = cosync_executor_run(c->ex, job_fn, c->j, &c->result, c->deadline);
    else
        c->rc = cosync_to_thread(job_fn, c->j, &c->result, c->deadline);
    if (c->fault_k >= 0)
        cosync__fault_countdown = -1;
    if (c->then_yield)
        c->next_rc = cosync_yield();
    return 0;
}

static cosync_task spawn_caller(caller *c)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, caller_fn, c, NULL));
    return t;
}

/* ------------------------------------------------------------------------
 * Results and order
 * ---------------------------------------------------------------------- */

static int plain_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int x, y;
    job a = mkjob(7, &x);
    void *res = NOT_SET;
    CHECK_EQ(cosync_to_thread(job_fn, &a, &res, COSYNC_FOREVER), 7);
    CHECK(res == &x);
    CHECK(atomic_load(&a.ran));
    CHECK(!pthread_equal(a.thread, pthread_self())); /* on another thread */
    /* any status, as it is; a NULL @result drops the result */
    job b = mkjob(-12345, &y);
    CHECK_EQ(cosync_to_thread(job_fn, &b, NULL, COSYNC_FOREVER), -12345);
    job c = mkjob(0, NULL);
    res = NOT_SET;
    CHECK_OK(cosync_to_thread(job_fn, &c, &res, cosync_deadline_after(COSYNC_SEC(5))));
    CHECK_NULL(res);
    CHECK(!a.cancelled_at_start && !a.cancelled_at_end);
    return 0;
}

TEST(to_thread_returns_fns_status_and_result_from_another_thread)
{
    run_main_ok(plain_main, NULL);
}

#define FIFO_JOBS 6

static int fifo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    sem_t release;
    sem_init0(&release);
    int log[FIFO_JOBS], n = 0;
    job j[FIFO_JOBS];
    caller c[FIFO_JOBS];
    cosync_task t[FIFO_JOBS];
    for (int i = 0; i < FIFO_JOBS; i++) {
        j[i] = mkjob(i, NULL);
        j[i].id = i;
        j[i].log = log;
        j[i].log_n = &n;
        c[i] = mkcaller(ex, &j[i]);
        t[i] = spawn_caller(&c[i]);
    }
    j[0].release = &release; /* the only thread is busy until every job is queued */
    CHECK_OK(cosync_yield());
    CHECK_EQ(sem_post(&release), 0);
    cosync_outcome out[FIFO_JOBS];
    CHECK_OK(cosync_gather(t, FIFO_JOBS, out, COSYNC_FOREVER));
    CHECK_EQ(n, FIFO_JOBS);
    for (int i = 0; i < FIFO_JOBS; i++) {
        CHECK_EQ(log[i], i);
        CHECK_EQ(c[i].rc, i);
        CHECK(pthread_equal(j[i].thread, j[0].thread));
    }
    CHECK_OK(cosync_executor_destroy(ex));
    sem_destroy(&release);
    return 0;
}

TEST(jobs_on_a_one_thread_pool_run_in_the_order_they_came)
{
    run_main_ok(fifo_main, NULL);
}

#define AT_ONCE 4

static int at_once_main(void *arg, void **result)
{
    (void)arg, (void)result;
    pthread_barrier_t barrier;
    CHECK_EQ(pthread_barrier_init(&barrier, NULL, AT_ONCE), 0);
    job j[AT_ONCE];
    caller c[AT_ONCE];
    cosync_task t[AT_ONCE];
    for (int i = 0; i < AT_ONCE; i++) {
        j[i] = mkjob(0, NULL);
        j[i].barrier = &barrier; /* passed only if all run at once */
        c[i] = mkcaller(NULL, &j[i]);
        t[i] = spawn_caller(&c[i]);
    }
    CHECK_OK(cosync_gather(t, AT_ONCE, NULL, COSYNC_FOREVER));
    for (int i = 0; i < AT_ONCE; i++) {
        CHECK_OK(c[i].rc);
        for (int k = 0; k < i; k++)
            CHECK(!pthread_equal(j[i].thread, j[k].thread));
    }
    pthread_barrier_destroy(&barrier);
    return 0;
}

/* The loop's default pool, with cosync_loop_opts.executor_threads. */
TEST(a_pool_of_n_threads_runs_n_jobs_at_once)
{
    run_in(make_loop(true, AT_ONCE), at_once_main, NULL);
}

typedef struct still {
    int64_t woke;
} still;

static int sleep_a_second(void *arg, void **result)
{
    (void)result;
    still *s = arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    s->woke = cosync_now();
    return 0;
}

static void post_sem_call(void *arg)
{
    CHECK_EQ(sem_post(arg), 0);
}

static int still_main(void *arg, void **result)
{
    (void)arg, (void)result;
    still s = {.woke = 0};
    int64_t t0 = cosync_now();
    cosync_task sleeper;
    CHECK_OK(cosync_task_spawn(&sleeper, sleep_a_second, &s, NULL));
    CHECK_OK(cosync_yield()); /* it sleeps: its timer is the loop's next */
    sem_t release;
    sem_init0(&release);
    job j = mkjob(2, NULL);
    j.release = &release;
    /* the job ends once the loop has nothing to do but wait for it */
    cosync_call go;
    CHECK_OK(cosync_loop_call_threadsafe(cosync_loop_current(), &go, post_sem_call, &release));
    CHECK_EQ(cosync_to_thread(job_fn, &j, NULL, COSYNC_FOREVER), 2);
    CHECK_EQ(cosync_now(), t0); /* the job took no virtual time */
    CHECK_EQ(s.woke, 0);        /* and the sleeper's timer did not fire first */
    join_ok(sleeper);
    CHECK_EQ(s.woke, t0 + COSYNC_SEC(1));
    sem_destroy(&release);
    return 0;
}

/* Under the virtual clock, a job's end comes before the next timer. */
TEST(a_job_takes_no_virtual_time)
{
    run_main_ok(still_main, NULL);
}

/* ------------------------------------------------------------------------
 * Giving up on a queued job
 * ---------------------------------------------------------------------- */

typedef struct queued_case {
    bool by_deadline; /* else a cancel */
} queued_case;

static int queued_main(void *arg, void **result)
{
    (void)result;
    queued_case *qc = arg;
    static int x;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    sem_t started, release;
    sem_init0(&started);
    sem_init0(&release);
    job busy = mkjob(0, NULL);
    busy.started = &started;
    busy.release = &release;
    caller cb = mkcaller(ex, &busy);
    job queued = mkjob(0, &x);
    caller cq = mkcaller(ex, &queued);
    if (qc->by_deadline)
        cq.timeout = COSYNC_MS(5);
    cosync_task tb = spawn_caller(&cb);
    cosync_task tq = spawn_caller(&cq);
    CHECK_OK(cosync_yield()); /* both are submitted */
    sem_wait_ok(&started);    /* the only thread runs busy: queued waits behind */
    if (!qc->by_deadline)
        CHECK_OK(cosync_task_cancel(tq));
    /* it returns at once, busy still running (a task cancelled and not
     * uncancelled ends as cancelled) */
    join_expect(tq, qc->by_deadline ? 0 : COSYNC_ECANCELED);
    CHECK_ERR(cq.rc, qc->by_deadline ? COSYNC_ETIMEDOUT : COSYNC_ECANCELED);
    CHECK_NULL(cq.result);
    CHECK(!atomic_load(&queued.ran));
    CHECK_EQ(sem_post(&release), 0);
    join_ok(tb);
    CHECK_OK(cb.rc);
    /* a job after it runs, on the same one thread: queued was taken back */
    job after = mkjob(3, NULL);
    CHECK_EQ(cosync_executor_run(ex, job_fn, &after, NULL, COSYNC_FOREVER), 3);
    CHECK(!atomic_load(&queued.ran));
    CHECK_OK(cosync_executor_destroy(ex)); /* nothing outstanding */
    sem_destroy(&started);
    sem_destroy(&release);
    return 0;
}

TEST(a_cancel_takes_a_queued_job_back_and_its_fn_never_runs)
{
    queued_case qc = {.by_deadline = false};
    run_main_ok(queued_main, &qc);
}

/* On the real clock: the deadline passes while the job is queued. */
TEST(a_deadline_takes_a_queued_job_back_and_its_fn_never_runs)
{
    queued_case qc = {.by_deadline = true};
    run_in(make_loop(false, 0), queued_main, &qc);
}

/* ------------------------------------------------------------------------
 * Giving up on a running job: the call waits for its end
 * ---------------------------------------------------------------------- */

static int running_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int x;
    sem_t started, saw, release;
    sem_init0(&started);
    sem_init0(&saw);
    sem_init0(&release);
    job j = mkjob(5, &x);
    j.started = &started;
    j.until_cancelled = true;
    j.saw_cancel = &saw;
    j.release = &release;
    caller c = mkcaller(NULL, &j);
    cosync_task t = spawn_caller(&c);
    CHECK_OK(cosync_yield());
    sem_wait_ok(&started); /* it runs */
    CHECK_OK(cosync_task_cancel(t));
    sem_wait_ok(&saw);               /* the job was told */
    CHECK_OK(cosync_task_cancel(t)); /* a second cancel while it waits */
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(t)); /* it still waits for the job's end */
    CHECK_EQ(c.rc, 1);
    CHECK_EQ(sem_post(&release), 0);
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK(c.result == &x); /* nothing the job made is lost */
    CHECK(!j.cancelled_at_start);
    CHECK(j.cancelled_at_end);
    sem_destroy(&started);
    sem_destroy(&saw);
    sem_destroy(&release);
    return 0;
}

TEST(a_cancel_of_a_running_job_waits_for_its_end_and_keeps_its_result)
{
    run_in(make_loop(true, 1), running_cancel_main, NULL);
}

typedef struct deadline_case {
    bool then_cancel;
} deadline_case;

static int running_deadline_main(void *arg, void **result)
{
    (void)result;
    deadline_case *dc = arg;
    static int x;
    sem_t started, saw, release;
    sem_init0(&started);
    sem_init0(&saw);
    sem_init0(&release);
    job j = mkjob(5, &x);
    j.started = &started;
    j.until_cancelled = true;
    if (dc->then_cancel) {
        j.saw_cancel = &saw;
        j.release = &release;
    }
    caller c = mkcaller(NULL, &j);
    c.timeout = COSYNC_MS(10);
    cosync_task t = spawn_caller(&c);
    CHECK_OK(cosync_yield());
    /* the loop's thread waits here until the job runs: the deadline can
     * only be looked at after */
    sem_wait_ok(&started);
    if (dc->then_cancel) {
        sem_wait_polling(&saw); /* the deadline has passed, and the job was told */
        CHECK(!cosync_task_done(t));
        CHECK_OK(cosync_task_cancel(t));
        CHECK_EQ(sem_post(&release), 0);
    }
    join_expect(t, dc->then_cancel ? COSYNC_ECANCELED : 0);
    CHECK_ERR(c.rc, dc->then_cancel ? COSYNC_ECANCELED : COSYNC_ETIMEDOUT);
    CHECK(c.result == &x);
    CHECK(!j.cancelled_at_start);
    CHECK(j.cancelled_at_end);
    sem_destroy(&started);
    sem_destroy(&saw);
    sem_destroy(&release);
    return 0;
}

/* On the real clock: the deadline passes while the job runs. */
TEST(a_deadline_passing_while_a_job_runs_waits_for_its_end_and_keeps_its_result)
{
    deadline_case dc = {.then_cancel = false};
    run_in(make_loop(false, 1), running_deadline_main, &dc);
}

TEST(a_cancel_after_the_deadline_outranks_it)
{
    deadline_case dc = {.then_cancel = true};
    run_in(make_loop(false, 1), running_deadline_main, &dc);
}

/* ------------------------------------------------------------------------
 * A job that ended and was granted before a cancel came
 * ---------------------------------------------------------------------- */

typedef struct late_cancel {
    cosync_loop *loop;
    cosync_task victim;
    cosync_call call;
    sem_t posted;
    int cancel_rc;
} late_cancel;

static void cancel_victim(void *arg)
{
    late_cancel *lc = arg;
    lc->cancel_rc = cosync_task_cancel(lc->victim);
}

/* The second job on the one thread: the first has ended and posted its
 * end; this posts the cancel of the first's caller right behind it. */
static int post_cancel_job(void *arg, void **result)
{
    (void)result;
    late_cancel *lc = arg;
    CHECK_OK(cosync_loop_call_threadsafe(lc->loop, &lc->call, cancel_victim, lc));
    CHECK_EQ(sem_post(&lc->posted), 0);
    return 0;
}

static int post_cancel_caller(void *arg, void **result)
{
    (void)result;
    return cosync_to_thread(post_cancel_job, arg, NULL, COSYNC_FOREVER);
}

static int granted_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int x;
    late_cancel lc = {.loop = cosync_loop_current(), .cancel_rc = 1};
    sem_init0(&lc.posted);
    sem_t release;
    sem_init0(&release);
    job j = mkjob(5, &x);
    j.release = &release;
    caller c = mkcaller(NULL, &j);
    c.then_yield = true;
    lc.victim = spawn_caller(&c);
    cosync_task second;
    CHECK_OK(cosync_task_spawn(&second, post_cancel_caller, &lc, NULL));
    CHECK_OK(cosync_yield()); /* both jobs are queued, in that order, on the one thread */
    CHECK_EQ(sem_post(&release), 0);
    /* the loop's thread waits here: the first job's end and the cancel
     * come in the same turn's calls, in that order */
    sem_wait_ok(&lc.posted);
    join_expect(lc.victim, COSYNC_ECANCELED);
    CHECK_OK(lc.cancel_rc);
    CHECK_EQ(c.rc, 5); /* the grant is kept */
    CHECK(c.result == &x);
    CHECK(!j.cancelled_at_end);
    CHECK_ERR(c.next_rc, COSYNC_ECANCELED); /* the cancel comes at the next suspension */
    join_ok(second);
    sem_destroy(&lc.posted);
    sem_destroy(&release);
    return 0;
}

TEST(a_cancel_after_the_jobs_end_keeps_the_grant_and_comes_at_the_next_suspension)
{
    run_in(make_loop(true, 1), granted_main, NULL);
}

/* The deadline passed while the job ran; the job ended and its end was
 * granted; then, before the caller ran, a cancel came: it outranks the
 * deadline still. On the real clock. */
static int granted_after_deadline_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int x;
    late_cancel lc = {.loop = cosync_loop_current(), .cancel_rc = 1};
    sem_init0(&lc.posted);
    sem_t started, saw, release;
    sem_init0(&started);
    sem_init0(&saw);
    sem_init0(&release);
    job j = mkjob(5, &x);
    j.started = &started;
    j.until_cancelled = true;
    j.saw_cancel = &saw;
    j.release = &release;
    caller c = mkcaller(NULL, &j);
    c.timeout = COSYNC_MS(10);
    lc.victim = spawn_caller(&c);
    cosync_task second;
    CHECK_OK(cosync_task_spawn(&second, post_cancel_caller, &lc, NULL));
    CHECK_OK(cosync_yield()); /* both jobs are queued, in that order, on the one thread */
    sem_wait_ok(&started);    /* it runs: the deadline cannot take it back */
    sem_wait_polling(&saw);   /* the deadline has passed, and the job was told */
    CHECK_EQ(sem_post(&release), 0);
    sem_wait_ok(&lc.posted); /* its end, then the cancel, wait for the loop */
    join_expect(lc.victim, COSYNC_ECANCELED);
    CHECK_OK(lc.cancel_rc);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK(c.result == &x);
    CHECK(j.cancelled_at_end);
    join_ok(second);
    sem_destroy(&lc.posted);
    sem_destroy(&started);
    sem_destroy(&saw);
    sem_destroy(&release);
    return 0;
}

TEST(a_cancel_after_a_timed_out_jobs_end_outranks_the_deadline)
{
    run_in(make_loop(false, 1), granted_after_deadline_main, NULL);
}

/* ------------------------------------------------------------------------
 * Calls that submit nothing
 * ---------------------------------------------------------------------- */

static int self_cancelled_caller(void *arg, void **result)
{
    (void)result;
    caller *c = arg;
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    c->rc = cosync_to_thread(job_fn, c->j, &c->result, COSYNC_FOREVER);
    return 0;
}

typedef struct refused {
    cosync_call call;
    int rc;
    void *result;
} refused;

static void to_thread_from_a_call(void *arg)
{
    refused *r = arg;
    job j = mkjob(0, NULL);
    r->rc = cosync_to_thread(job_fn, &j, &r->result, COSYNC_FOREVER);
    CHECK(!atomic_load(&j.ran));
}

static int refused_main(void *arg, void **result)
{
    (void)arg, (void)result;
    job j = mkjob(0, NULL);
    void *res = NOT_SET;
    CHECK_ERR(cosync_to_thread(job_fn, &j, &res, 0), COSYNC_EAGAIN);
    CHECK_NULL(res);
    res = NOT_SET;
    CHECK_ERR(cosync_to_thread(job_fn, &j, &res, cosync_now()), COSYNC_ETIMEDOUT);
    CHECK_NULL(res);
    res = NOT_SET;
    CHECK_ERR(cosync_to_thread(NULL, &j, &res, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_NULL(res);
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    CHECK_ERR(cosync_executor_run(ex, NULL, &j, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_executor_run(ex, job_fn, &j, NULL, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_executor_destroy(ex));
    /* a cancel pending before the call: delivered there */
    caller c = mkcaller(NULL, &j);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, self_cancelled_caller, &c, NULL));
    join_expect(t, COSYNC_ECANCELED);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK_NULL(c.result);
    /* outside a task, in a call on the loop's thread */
    refused r = {.rc = 1, .result = NOT_SET};
    CHECK_OK(
        cosync_loop_call_threadsafe(cosync_loop_current(), &r.call, to_thread_from_a_call, &r));
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* the call runs */
    CHECK_ERR(r.rc, COSYNC_EPERM);
    CHECK_NULL(r.result);
    /* then a job runs on the one thread of the default pool: had any of
     * the above been submitted, it would have run before */
    job after = mkjob(4, NULL);
    CHECK_EQ(cosync_to_thread(job_fn, &after, NULL, COSYNC_FOREVER), 4);
    CHECK(!atomic_load(&j.ran));
    return 0;
}

TEST(refused_calls_submit_nothing)
{
    /* outside any loop */
    job j = mkjob(0, NULL);
    void *res = NOT_SET;
    CHECK_ERR(cosync_to_thread(job_fn, &j, &res, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_NULL(res);
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    CHECK_ERR(cosync_executor_run(ex, job_fn, &j, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_OK(cosync_executor_destroy(ex));
    CHECK(!atomic_load(&j.ran));
    run_in(make_loop(true, 1), refused_main, NULL);
}

static int job_cancelled_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_job_cancelled() ? 1 : 0;
}

static int job_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(!cosync_job_cancelled()); /* in a task */
    CHECK_EQ(cosync_to_thread(job_cancelled_fn, NULL, NULL, COSYNC_FOREVER), 0);
    job j = mkjob(0, NULL);
    CHECK_OK(cosync_to_thread(job_fn, &j, NULL, cosync_deadline_after(COSYNC_SEC(10))));
    CHECK(!j.cancelled_at_start && !j.cancelled_at_end);
    return 0;
}

TEST(job_cancelled_is_false_outside_jobs_and_in_a_job_nobody_gave_up_on)
{
    CHECK(!cosync_job_cancelled());
    run_main_ok(job_cancelled_main, NULL);
    CHECK(!cosync_job_cancelled());
}

/* ------------------------------------------------------------------------
 * Pools
 * ---------------------------------------------------------------------- */

TEST(pool_arguments_are_checked)
{
    CHECK_ERR(cosync_executor_init(NULL, 1), COSYNC_EINVAL);
    cosync_executor *ex = (cosync_executor *)&not_set_mark;
    CHECK_ERR(cosync_executor_init(&ex, COSYNC_EXECUTOR_MAX_THREADS + 1), COSYNC_EINVAL);
    CHECK_NULL(ex);
    CHECK_OK(cosync_executor_init(&ex, COSYNC_EXECUTOR_MAX_THREADS));
    CHECK_OK(cosync_executor_destroy(ex));
    CHECK_OK(cosync_executor_init(&ex, 0)); /* the default */
    CHECK_OK(cosync_executor_destroy(ex));
    CHECK_OK(cosync_executor_destroy(NULL));
    cosync_loop *loop = (cosync_loop *)&not_set_mark;
    CHECK_ERR(cosync_loop_init(
                  &loop, &(cosync_loop_opts){.executor_threads = COSYNC_EXECUTOR_MAX_THREADS + 1}),
              COSYNC_EINVAL);
    CHECK_NULL(loop);
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.executor_threads = COSYNC_EXECUTOR_MAX_THREADS}));
    CHECK_OK(cosync_loop_destroy(loop));
}

static int busy_pool_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 2));
    sem_t started, release;
    sem_init0(&started);
    sem_init0(&release);
    job j = mkjob(0, NULL);
    j.started = &started;
    j.release = &release;
    caller c = mkcaller(ex, &j);
    cosync_task t = spawn_caller(&c);
    CHECK_OK(cosync_yield());
    sem_wait_ok(&started);
    CHECK_ERR(cosync_executor_destroy(ex), COSYNC_EBUSY); /* a job runs on it */
    /* refused, it changed nothing: the pool still takes jobs */
    job other = mkjob(6, NULL);
    CHECK_EQ(cosync_executor_run(ex, job_fn, &other, NULL, COSYNC_FOREVER), 6);
    CHECK_ERR(cosync_executor_destroy(ex), COSYNC_EBUSY);
    CHECK_EQ(sem_post(&release), 0);
    join_ok(t);
    CHECK_OK(c.rc);
    job last = mkjob(8, NULL);
    CHECK_EQ(cosync_executor_run(ex, job_fn, &last, NULL, COSYNC_FOREVER), 8);
    CHECK_OK(cosync_executor_destroy(ex));
    sem_destroy(&started);
    sem_destroy(&release);
    return 0;
}

TEST(a_pool_with_a_job_outstanding_refuses_to_be_destroyed_and_still_works)
{
    run_main_ok(busy_pool_main, NULL);
}

static int own_destroy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    job j = mkjob(0, NULL);
    j.destroy = ex;
    CHECK_OK(cosync_executor_run(ex, job_fn, &j, NULL, COSYNC_FOREVER));
    CHECK_ERR(j.destroy_rc, COSYNC_EPERM);
    CHECK_OK(cosync_executor_destroy(ex));
    return 0;
}

TEST(a_pool_cannot_be_destroyed_from_its_own_thread)
{
    run_main_ok(own_destroy_main, NULL);
}

/* ------------------------------------------------------------------------ */

#define SHARED_JOBS 50

typedef struct shared_pool {
    cosync_executor *ex;
    pthread_barrier_t barrier;
} shared_pool;

static int shared_main(void *arg, void **result)
{
    (void)result;
    shared_pool *sp = arg;
    job first = mkjob(0, NULL);
    first.barrier = &sp->barrier; /* passed only with the other loop's job at once */
    CHECK_OK(cosync_executor_run(sp->ex, job_fn, &first, NULL, COSYNC_FOREVER));
    static _Thread_local int x[SHARED_JOBS];
    job *j = calloc(SHARED_JOBS, sizeof *j);
    caller *c = calloc(SHARED_JOBS, sizeof *c);
    cosync_task *t = calloc(SHARED_JOBS, sizeof *t);
    CHECK(j && c && t);
    for (int i = 0; i < SHARED_JOBS; i++) {
        j[i] = mkjob(i, &x[i]);
        c[i] = mkcaller(sp->ex, &j[i]);
        t[i] = spawn_caller(&c[i]);
    }
    CHECK_OK(cosync_gather(t, SHARED_JOBS, NULL, COSYNC_FOREVER));
    for (int i = 0; i < SHARED_JOBS; i++) {
        CHECK_EQ(c[i].rc, i);
        CHECK(c[i].result == &x[i]);
    }
    free(j);
    free(c);
    free(t);
    return 0;
}

static void *shared_thread(void *arg)
{
    CHECK_OK(cosync_run_with(shared_main, arg, &(cosync_loop_opts){.virtual_clock = true}));
    return NULL;
}

TEST(a_pool_shared_by_two_loops_on_two_threads_at_once)
{
    shared_pool sp;
    CHECK_OK(cosync_executor_init(&sp.ex, 2));
    CHECK_EQ(pthread_barrier_init(&sp.barrier, NULL, 2), 0);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, shared_thread, &sp), 0);
    for (int i = 0; i < 2; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    CHECK_OK(cosync_executor_destroy(sp.ex));
    pthread_barrier_destroy(&sp.barrier);
}

/* ------------------------------------------------------------------------ */

#define DENSE 4

static pthread_barrier_t dense_barrier;
static job dense_jobs[DENSE];
static int dense_marks[DENSE];

static int dense_caller(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;
    void *res = NULL; /* on the task's own (shared) stack: written after the wait */
    int rc = cosync_to_thread(job_fn, &dense_jobs[i], &res, COSYNC_FOREVER);
    CHECK_EQ(rc, i);
    CHECK(res == &dense_marks[i]);
    *result = res;
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(pthread_barrier_init(&dense_barrier, NULL, DENSE), 0);
    cosync_task t[DENSE];
    for (int i = 0; i < DENSE; i++) {
        dense_jobs[i] = mkjob(i, &dense_marks[i]);
        dense_jobs[i].barrier = &dense_barrier; /* all four wait at once */
        CHECK_OK(cosync_task_spawn(&t[i], dense_caller, (void *)(intptr_t)i,
                                   &(cosync_task_opts){.dense = true}));
    }
    cosync_outcome out[DENSE];
    CHECK_OK(cosync_gather(t, DENSE, out, COSYNC_FOREVER));
    for (int i = 0; i < DENSE; i++) {
        CHECK_OK(out[i].status);
        CHECK(out[i].result == &dense_marks[i]);
    }
    pthread_barrier_destroy(&dense_barrier);
    return 0;
}

TEST(dense_tasks_can_wait_for_jobs)
{
    run_in(make_loop(true, DENSE), dense_main, NULL);
}

static int dense_own_stack_caller(void *arg, void **result)
{
    (void)arg;
    job mine = mkjob(1, NULL); /* in this dense task's own stack */
    void *res = NOT_SET;
    if (COSYNC__DENSE_SUPPORTED) {
        CHECK_ERR(cosync_to_thread(job_fn, &mine, &res, COSYNC_FOREVER), COSYNC_EINVAL);
        CHECK_NULL(res);
        CHECK(!atomic_load(&mine.ran)); /* nothing was queued */
    } else {                            /* the ucontext backend runs dense tasks as plain ones */
        CHECK_EQ(cosync_to_thread(job_fn, &mine, &res, COSYNC_FOREVER), 1);
    }
    job *heap = malloc(sizeof *heap);
    CHECK_NOTNULL(heap);
    *heap = mkjob(2, NULL);
    CHECK_EQ(cosync_to_thread(job_fn, heap, &res, COSYNC_FOREVER), 2); /* elsewhere: fine */
    free(heap);
    *result = res;
    return 0;
}

/* A dense task's stack holds other tasks' bytes while it waits: a job's
 * argument there is refused. */
TEST(a_dense_tasks_job_argument_in_its_own_stack_is_refused)
{
    cosync_loop *loop = make_loop(true, 1);
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, dense_own_stack_caller, NULL,
                               &(cosync_task_opts){.dense = true}));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
}

/* ------------------------------------------------------------------------
 * The loop's destruction and the default pool
 * ---------------------------------------------------------------------- */

typedef struct closing {
    sem_t started;
    job j;
    caller c;
} closing;

static int closing_main(void *arg, void **result)
{
    (void)result;
    closing *cl = arg;
    CHECK_OK(cosync_task_spawn(NULL, caller_fn, &cl->c, NULL));
    CHECK_OK(cosync_yield());
    sem_wait_ok(&cl->started); /* its job runs; main ends, the run returns */
    return 0;
}

TEST(the_loops_destruction_cancels_a_task_waiting_on_a_running_job_and_waits)
{
    static int x;
    closing cl;
    sem_init0(&cl.started);
    cl.j = mkjob(5, &x);
    cl.j.started = &cl.started;
    cl.j.until_cancelled = true;
    cl.c = mkcaller(NULL, &cl.j);
    cosync_loop *loop = make_loop(true, 2);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, closing_main, &cl, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_EQ(cl.c.rc, 1);           /* it still waits */
    CHECK(thread_exists(cl.j.tid)); /* the default pool's thread */
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(cl.c.rc, COSYNC_ECANCELED);
    CHECK(cl.c.result == &x);
    CHECK(cl.j.cancelled_at_end);
    CHECK(thread_gone(cl.j.tid)); /* the default pool went with the loop */
    sem_destroy(&cl.started);
}

/* ------------------------------------------------------------------------
 * Fault injection
 * ---------------------------------------------------------------------- */

typedef struct fault_case {
    long k;
    bool failed;
    int rc;
} fault_case;

static int fault_main(void *arg, void **result)
{
    (void)result;
    fault_case *f = arg;
    static int x;
    job j = mkjob(3, &x);
    void *res = NOT_SET;
    long failures = cosync__fault_failures;
    cosync__fault_countdown = f->k;
    f->rc = cosync_to_thread(job_fn, &j, &res, COSYNC_FOREVER);
    cosync__fault_countdown = -1;
    f->failed = cosync__fault_failures != failures;
    if (f->failed) {
        CHECK_EQ(cosync__fault_failures, failures + 1);
        CHECK_ERR(f->rc, COSYNC_ENOMEM);
        CHECK_NULL(res);
        CHECK(!atomic_load(&j.ran));
    } else {
        CHECK_EQ(f->rc, 3);
        CHECK(res == &x);
    }
    /* the next call succeeds */
    job next = mkjob(4, &x);
    res = NOT_SET;
    CHECK_EQ(cosync_to_thread(job_fn, &next, &res, COSYNC_FOREVER), 4);
    CHECK(res == &x);
    return 0;
}

/* Each point of a loop's first cosync_to_thread that can fail (the pool's
 * two allocations, the job's record, the thread's start) fails in turn. */
TEST(each_failure_point_of_a_first_to_thread_returns_an_error_and_leaks_nothing)
{
    int enomem = 0;
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a = {count_realloc, &c};
        cosync_loop *loop = NULL;
        CHECK_OK(cosync_loop_init(
            &loop,
            &(cosync_loop_opts){.virtual_clock = true, .allocator = &a, .executor_threads = 2}));
        fault_case f = {.k = k};
        run_in(loop, fault_main, &f);
        CHECK_EQ(c.live, 0); /* the job's records are the loop's */
        if (!f.failed)
            break;
        enomem += f.rc == COSYNC_ENOMEM;
    }
    CHECK_EQ(k, 4);
    CHECK_EQ(enomem, 4); /* a thread that cannot start is COSYNC_ENOMEM too */
}

TEST(each_failure_point_of_executor_init_returns_enomem)
{
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        cosync_executor *ex = (cosync_executor *)&not_set_mark;
        long failures = cosync__fault_failures;
        cosync__fault_countdown = k;
        int rc = cosync_executor_init(&ex, 3);
        cosync__fault_countdown = -1;
        if (cosync__fault_failures == failures) {
            CHECK_OK(rc);
            CHECK_OK(cosync_executor_destroy(ex));
            break;
        }
        CHECK_ERR(rc, COSYNC_ENOMEM);
        CHECK_NULL(ex);
    }
    CHECK_EQ(k, 2);
}

static int second_thread_fault_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 2));
    sem_t started, release;
    sem_init0(&started);
    sem_init0(&release);
    job busy = mkjob(0, NULL);
    busy.started = &started;
    busy.release = &release;
    caller cb = mkcaller(ex, &busy);
    cosync_task tb = spawn_caller(&cb);
    CHECK_OK(cosync_yield());
    sem_wait_ok(&started); /* the pool's one thread is busy */
    long failures = cosync__fault_failures;
    job j = mkjob(9, NULL);
    caller c = mkcaller(ex, &j);
    c.fault_k = 1; /* the job's record passes, the second thread's start fails */
    cosync_task t = spawn_caller(&c);
    CHECK_OK(cosync_yield()); /* it is submitted */
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK(!cosync_task_done(t)); /* queued for the thread the pool has */
    CHECK(!atomic_load(&j.ran));
    CHECK_EQ(sem_post(&release), 0);
    join_ok(tb);
    join_ok(t);
    CHECK_EQ(c.rc, 9);
    CHECK(pthread_equal(j.thread, busy.thread));
    CHECK_OK(cosync_executor_destroy(ex));
    sem_destroy(&started);
    sem_destroy(&release);
    return 0;
}

/* A thread that cannot start when the pool has one: the job waits for it. */
TEST(a_failed_thread_start_queues_the_job_for_the_pools_thread)
{
    run_main_ok(second_thread_fault_main, NULL);
}

/* ------------------------------------------------------------------------
 * The pool's threads and the loop's records
 * ---------------------------------------------------------------------- */

static int read_signal_mask(void *arg, void **result)
{
    (void)result;
    sigset_t *mask = arg;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, mask), 0);
    return 0;
}

static int signal_mask_main(void *arg, void **result)
{
    (void)arg, (void)result;
    sigset_t mine, theirs;
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &mine), 0);
    CHECK(!sigismember(&mine, SIGINT)); /* the test's thread takes signals */
    CHECK_OK(cosync_to_thread(read_signal_mask, &theirs, NULL, COSYNC_FOREVER));
    CHECK(sigismember(&theirs, SIGINT));
    CHECK(sigismember(&theirs, SIGTERM));
    CHECK(sigismember(&theirs, SIGCHLD));
    CHECK(sigismember(&theirs, SIGUSR1));
    CHECK_EQ(pthread_sigmask(SIG_BLOCK, NULL, &mine), 0);
    CHECK(!sigismember(&mine, SIGINT)); /* the loop's thread's mask is back as it was */
    return 0;
}

/* A pool's threads leave every signal to the loops' threads. */
TEST(a_pools_threads_run_with_every_signal_blocked)
{
    run_main_ok(signal_mask_main, NULL);
}

static int reuse_main(void *arg, void **result)
{
    (void)result;
    counting *c = arg;
    static int x;
    job first = mkjob(1, &x);
    CHECK_EQ(cosync_to_thread(job_fn, &first, NULL, COSYNC_FOREVER), 1);
    long made = c->total;
    for (int i = 0; i < 50; i++) {
        job j = mkjob(2, &x);
        CHECK_EQ(cosync_to_thread(job_fn, &j, NULL, COSYNC_FOREVER), 2);
    }
    CHECK_EQ(c->total, made); /* one job at a time: its record comes back each time */
    return 0;
}

/* The loop keeps its job records for the next jobs, and frees them with
 * itself. */
TEST(job_records_are_reused_and_freed_with_the_loop)
{
    counting c = {0, 0};
    cosync_allocator a = {count_realloc, &c};
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
    run_in(loop, reuse_main, &c);
    CHECK_EQ(c.live, 0);
}

/* ------------------------------------------------------------------------
 * A job that has ended, whose end has not reached the loop yet
 * ---------------------------------------------------------------------- */

/* A job that posts @done as it starts: queued behind another on a
 * one-thread pool, it shows that the other has ended and its end has
 * been posted to the loop (the thread posts it before it takes the next
 * job). */
typedef struct fence {
    cosync_executor *ex;
    sem_t done;
    int rc;
} fence;

static int post_fence(void *arg, void **result)
{
    (void)result;
    CHECK_EQ(sem_post(arg), 0);
    return 0;
}

static int fence_caller(void *arg, void **result)
{
    (void)result;
    fence *f = arg;
    f->rc = cosync_executor_run(f->ex, post_fence, &f->done, NULL, COSYNC_FOREVER);
    return 0;
}

typedef struct ended_case {
    bool by_cancel; /* else the deadline, on the real clock */
} ended_case;

/* The caller's deadline passes, or a cancel comes, after its job has
 * ended but before the loop has taken the job's end: the job's value is
 * the call's (a grant on its way is a grant), and a cancel comes at the
 * next suspension. */
static int ended_main(void *arg, void **result)
{
    (void)result;
    ended_case *ec = arg;
    static int x;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    job j = mkjob(5, &x);
    caller c = mkcaller(ex, &j);
    c.then_yield = true;
    if (!ec->by_cancel)
        c.timeout = COSYNC_MS(2);
    cosync_task t = spawn_caller(&c);
    fence f = {.ex = ex, .rc = 1};
    CHECK_EQ(sem_init(&f.done, 0, 0), 0);
    cosync_task ft;
    CHECK_OK(cosync_task_spawn(&ft, fence_caller, &f, NULL));
    CHECK_OK(cosync_yield()); /* both jobs are queued, in that order */
    sem_wait_ok(&f.done);     /* the loop's thread waits: the first job has ended */
    if (ec->by_cancel) {
        CHECK_OK(cosync_task_cancel(t));
    } else {
        int64_t past = c.deadline;
        while (cosync_loop_now(cosync_loop_current()) <= past)
            ; /* the loop's thread stays here until the deadline has passed */
    }
    /* the turn ends: the deadline fires first, then the jobs' ends come */
    if (ec->by_cancel)
        join_expect(t, COSYNC_ECANCELED);
    else
        join_ok(t);
    CHECK_EQ(c.rc, 5);
    CHECK(c.result == &x);
    CHECK(!j.cancelled_at_end);
    if (ec->by_cancel)
        CHECK_ERR(c.next_rc, COSYNC_ECANCELED);
    else
        CHECK_OK(c.next_rc);
    join_ok(ft);
    CHECK_OK(f.rc);
    sem_destroy(&f.done);
    CHECK_OK(cosync_executor_destroy(ex));
    return 0;
}

TEST(a_cancel_after_the_job_ended_but_before_its_end_came_keeps_the_value)
{
    ended_case ec = {.by_cancel = true};
    run_in(make_loop(true, 0), ended_main, &ec);
}

TEST(a_deadline_after_the_job_ended_but_before_its_end_came_keeps_the_value)
{
    ended_case ec = {.by_cancel = false};
    run_in(make_loop(false, 0), ended_main, &ec);
}

/* A pool whose last job has ended may be destroyed only once that end
 * has reached the job's caller: before, the caller may still give up on
 * the job, and that looks at the pool. */
static int destroy_after_end_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int x;
    cosync_executor *ex;
    CHECK_OK(cosync_executor_init(&ex, 1));
    job j = mkjob(6, &x);
    sem_t started;
    sem_init0(&started);
    j.started = &started;
    caller c = mkcaller(ex, &j);
    c.then_yield = true;
    cosync_task t = spawn_caller(&c);
    CHECK_OK(cosync_yield()); /* queued */
    sem_wait_ok(&started);
    /* keep trying, in the same turns as the job's end: the destroy works
     * only once the caller has been woken */
    int tries = 0;
    while (cosync_executor_destroy(ex) == COSYNC_EBUSY) {
        CHECK_LT(++tries, 100000000);
        CHECK_OK(cosync_yield());
    }
    CHECK_OK(cosync_task_cancel(t)); /* too late to give up: the job's value stays */
    join_expect(t, COSYNC_ECANCELED);
    CHECK_EQ(c.rc, 6);
    CHECK(c.result == &x);
    CHECK_ERR(c.next_rc, COSYNC_ECANCELED);
    sem_destroy(&started);
    return 0;
}

TEST(a_pool_is_destroyed_only_once_its_last_jobs_end_has_reached_the_caller)
{
    run_in(make_loop(true, 0), destroy_after_end_main, NULL);
}

/* ------------------------------------------------------------------------
 * Task-local data in a job (CPython's test_to_thread_contextvars)
 * ---------------------------------------------------------------------- */

static int local_job(void *arg, void **result)
{
    int *other = arg;
    *result = cosync_task_get_local();      /* the caller's, copied */
    CHECK_OK(cosync_task_set_local(other)); /* the job's copy only */
    CHECK(cosync_task_get_local() == other);
    return 0;
}

static int local_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static int mine, other;
    CHECK_OK(cosync_task_set_local(&mine));
    void *seen = NULL;
    CHECK_OK(cosync_to_thread(local_job, &other, &seen, COSYNC_FOREVER));
    CHECK(seen == &mine);                    /* the job saw the caller's */
    CHECK(cosync_task_get_local() == &mine); /* its set stayed its own */
    return 0;
}

static void *no_job_thread(void *arg)
{
    (void)arg;
    CHECK_NULL(cosync_task_get_local());
    CHECK_ERR(cosync_task_set_local(NULL), COSYNC_EPERM);
    return NULL;
}

/* asyncio.to_thread runs the function in a copy of the caller's context:
 * a job sees its caller's task-local pointer, and setting it changes the
 * job's copy only. A thread that runs no job has none. */
TEST(a_job_sees_a_copy_of_its_callers_task_local_pointer)
{
    run_main_ok(local_main, NULL);
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, no_job_thread, NULL), 0);
    CHECK_EQ(pthread_join(th, NULL), 0);
}

int main(void)
{
    RUN(to_thread_returns_fns_status_and_result_from_another_thread);
    RUN(jobs_on_a_one_thread_pool_run_in_the_order_they_came);
    RUN(a_pool_of_n_threads_runs_n_jobs_at_once);
    RUN(a_job_takes_no_virtual_time);
    RUN(a_cancel_takes_a_queued_job_back_and_its_fn_never_runs);
    RUN(a_deadline_takes_a_queued_job_back_and_its_fn_never_runs);
    RUN(a_cancel_of_a_running_job_waits_for_its_end_and_keeps_its_result);
    RUN(a_deadline_passing_while_a_job_runs_waits_for_its_end_and_keeps_its_result);
    RUN(a_cancel_after_the_deadline_outranks_it);
    RUN(a_cancel_after_the_jobs_end_keeps_the_grant_and_comes_at_the_next_suspension);
    RUN(a_cancel_after_a_timed_out_jobs_end_outranks_the_deadline);
    RUN(refused_calls_submit_nothing);
    RUN(job_cancelled_is_false_outside_jobs_and_in_a_job_nobody_gave_up_on);
    RUN(pool_arguments_are_checked);
    RUN(a_pool_with_a_job_outstanding_refuses_to_be_destroyed_and_still_works);
    RUN(a_pool_cannot_be_destroyed_from_its_own_thread);
    RUN(a_pool_shared_by_two_loops_on_two_threads_at_once);
    RUN(dense_tasks_can_wait_for_jobs);
    RUN(a_dense_tasks_job_argument_in_its_own_stack_is_refused);
    RUN(the_loops_destruction_cancels_a_task_waiting_on_a_running_job_and_waits);
    RUN(each_failure_point_of_a_first_to_thread_returns_an_error_and_leaks_nothing);
    RUN(each_failure_point_of_executor_init_returns_enomem);
    RUN(a_failed_thread_start_queues_the_job_for_the_pools_thread);
    RUN(a_pools_threads_run_with_every_signal_blocked);
    RUN(job_records_are_reused_and_freed_with_the_loop);
    RUN(a_job_sees_a_copy_of_its_callers_task_local_pointer);
    RUN(a_cancel_after_the_job_ended_but_before_its_end_came_keeps_the_value);
    RUN(a_deadline_after_the_job_ended_but_before_its_end_came_keeps_the_value);
    RUN(a_pool_is_destroyed_only_once_its_last_jobs_end_has_reached_the_caller);
    return 0;
}
