/*
 * test_threads_stress.c - the threads layer under load, on the real clock:
 * loops on several threads at once, their tasks running jobs on a pool
 * they share and on each loop's default pool, with deadlines of random
 * length and a task that cancels them at random times; other threads
 * calling into the loops while they hold references, and dropping them
 * as the loops end. Real threads make the interleavings differ from run
 * to run, so what is checked holds in every one of them:
 *
 *  - every call returns the job's value, COSYNC_ECANCELED or
 *    COSYNC_ETIMEDOUT, and nothing else;
 *  - a job's function never runs on after its caller has returned (a
 *    started job is waited for);
 *  - the result comes back exactly when the function ran: NULL if the job
 *    was taken back before it started, the function's result otherwise,
 *    also when the caller gave up (nothing a job made is lost);
 *  - a job's value is the call's only if nobody gave up on it first;
 *  - every call into a loop runs once, and every loop ends clean.
 *
 * `make test` runs it under ThreadSanitizer too (its name holds
 * "thread"). The rounds are bounded; THREADS_STRESS_ROUNDS sets them.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <unistd.h>

#include "harness.h"

#define LOOPS 3
#define JOBBERS 24
#define CALLERS 2
#define CALLS 4
#define VALUE 42

static cosync_executor *shared_pool;

typedef struct job {
    long us; /* how long it runs unless told to stop */
    atomic_bool started, finished, saw_cancel;
    long mark; /* its result points here */
} job;

static int job_fn(void *arg, void **result)
{
    job *j = arg;
    atomic_store(&j->started, true);
    for (long t = 0; t < j->us; t += 20) {
        if (cosync_job_cancelled()) {
            atomic_store(&j->saw_cancel, true);
            break;
        }
        usleep(20);
    }
    *result = &j->mark;
    atomic_store(&j->finished, true);
    return VALUE;
}

typedef struct world {
    uint64_t seed;
    job jobs[JOBBERS];
    cosync_task tasks[JOBBERS];
    atomic_int calls_ran;
    cosync_loop *loop;
    cosync_call calls[CALLERS][CALLS];
    int outcomes[3]; /* value, cancelled, timed out */
} world;

typedef struct jobber_arg {
    world *w;
    int i;
} jobber_arg;

static int jobber(void *arg, void **result)
{
    (void)result;
    jobber_arg *a = arg;
    world *w = a->w;
    job *j = &w->jobs[a->i];
    uint64_t s = w->seed ^ (uint64_t)a->i * 0x9e3779b97f4a7c15u;
    uint32_t kind = rnd(&s, 3);
    int64_t deadline =
        kind == 0 ? COSYNC_FOREVER : cosync_deadline_after(COSYNC_US(20 + rnd(&s, 300)));
    void *res = (void *)&w->seed; /* neither NULL nor the job's */
    cosync_executor *ex = (a->i & 1) ? shared_pool : NULL;
    int rc = cosync_executor_run(ex, job_fn, j, &res, deadline);
    bool started = atomic_load(&j->started);
    CHECK_EQ(atomic_load(&j->finished), started); /* never left running */
    CHECK(res == (started ? (void *)&j->mark : NULL));
    if (rc == VALUE) {
        CHECK(started);
        CHECK(!atomic_load(&j->saw_cancel)); /* nobody gave up on it */
        w->outcomes[0]++;
    } else if (rc == COSYNC_ECANCELED) {
        w->outcomes[1]++;
    } else {
        CHECK_ERR(rc, COSYNC_ETIMEDOUT);
        CHECK(kind != 0);
        w->outcomes[2]++;
    }
    return 0;
}

static int canceller(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    uint64_t s = w->seed * 31 + 7;
    for (int k = 0; k < JOBBERS / 2; k++) {
        CHECK_OK(cosync_sleep(COSYNC_US(rnd(&s, 150))));
        int i = (int)rnd(&s, JOBBERS);
        int rc = cosync_task_cancel(w->tasks[i]);
        /* finished, or finished and collected by main's gather */
        CHECK(rc == 0 || rc == COSYNC_EALREADY || rc == COSYNC_ESRCH);
    }
    return 0;
}

static void count_call(void *arg)
{
    world *w = arg;
    atomic_fetch_add(&w->calls_ran, 1);
}

typedef struct caller_arg {
    world *w;
    int c;
} caller_arg;

static void *caller_thread(void *arg)
{
    caller_arg *a = arg;
    uint64_t s = a->w->seed + (uint64_t)a->c;
    for (int k = 0; k < CALLS; k++) {
        usleep(rnd(&s, 200));
        CHECK_OK(cosync_loop_call_threadsafe(a->w->loop, &a->w->calls[a->c][k], count_call, a->w));
    }
    CHECK_OK(cosync_loop_unref(a->w->loop));
    return NULL;
}

static int join_caller(void *arg, void **result)
{
    (void)result;
    return -pthread_join(*(pthread_t *)arg, NULL);
}

static int world_main(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->loop = cosync_loop_current();
    pthread_t callers[CALLERS];
    caller_arg cargs[CALLERS];
    for (int c = 0; c < CALLERS; c++) {
        CHECK_OK(cosync_loop_ref(w->loop));
        cargs[c] = (caller_arg){w, c};
        CHECK_EQ(pthread_create(&callers[c], NULL, caller_thread, &cargs[c]), 0);
    }
    jobber_arg jargs[JOBBERS];
    uint64_t s = w->seed;
    for (int i = 0; i < JOBBERS; i++) {
        w->jobs[i] = (job){.us = (long)rnd(&s, 400)};
        jargs[i] = (jobber_arg){w, i};
        CHECK_OK(cosync_task_spawn(&w->tasks[i], jobber, &jargs[i], NULL));
    }
    cosync_task can;
    CHECK_OK(cosync_task_spawn(&can, canceller, w, NULL));
    cosync_outcome out[JOBBERS];
    CHECK_OK(cosync_gather(w->tasks, JOBBERS, out, COSYNC_FOREVER));
    for (int i = 0; i < JOBBERS; i++) /* a jobber that was cancelled ends cancelled */
        CHECK(out[i].status == 0 || out[i].status == COSYNC_ECANCELED);
    join_ok(can);
    /* the callers may still be calling: the loop's end waits for them */
    for (int c = 0; c < CALLERS; c++)
        CHECK_OK(cosync_to_thread(join_caller, &callers[c], NULL, COSYNC_FOREVER));
    return 0;
}

static void *loop_thread(void *arg)
{
    world *w = arg;
    CHECK_OK(cosync_run(world_main, w));
    CHECK_EQ(atomic_load(&w->calls_ran), CALLERS * CALLS); /* each call ran once */
    return NULL;
}

TEST(loops_on_threads_share_a_pool_under_cancels_deadlines_and_calls)
{
    long rounds = env_long("THREADS_STRESS_ROUNDS", under_valgrind() ? 2 : 40);
    CHECK_OK(cosync_executor_init(&shared_pool, 3));
    int outcomes[3] = {0, 0, 0};
    for (long r = 0; r < rounds; r++) {
        static world worlds[LOOPS];
        pthread_t th[LOOPS];
        for (int l = 0; l < LOOPS; l++) {
            worlds[l] = (world){.seed = splitmix((uint64_t)(r * LOOPS + l + 1))};
            CHECK_EQ(pthread_create(&th[l], NULL, loop_thread, &worlds[l]), 0);
        }
        for (int l = 0; l < LOOPS; l++) {
            CHECK_EQ(pthread_join(th[l], NULL), 0);
            for (int k = 0; k < 3; k++)
                outcomes[k] += worlds[l].outcomes[k];
        }
    }
    CHECK_OK(cosync_executor_destroy(shared_pool));
    fprintf(stderr, "calls: %d with the job's value, %d cancelled, %d timed out\n", outcomes[0],
            outcomes[1], outcomes[2]);
    /* the mix reached both kinds of outcome (how many of each depends on
     * the machine's speed: under ThreadSanitizer few cancels land while a
     * job is out) */
    if (rounds >= 10) {
        CHECK_GT(outcomes[0], 0);
        CHECK_GT(outcomes[1] + outcomes[2], 0);
    }
}

int main(void)
{
    RUN(loops_on_threads_share_a_pool_under_cancels_deadlines_and_calls);
    return 0;
}
