/*
 * demo.c - a narrated tour of cosync's runtime core and its primitives;
 * `make demo` runs it.
 *
 *  1. spawn and join, with result values
 *  2. gather, where one task fails (outcomes come back in order)
 *  3. wait_for timing out a slow task, and a timeout block (asyncio.timeout)
 *  4. a TaskGroup where one child fails and its siblings are cancelled
 *  5. a Future awaited by three tasks
 *  6. an Event waking several waiters
 *  7. cancellation: cleanup that suspends, uncancel, cancel before start
 *  8. a Lock fixing a read-sleep-write race (the counter ends at 10)
 *  9. a Semaphore limiting concurrency (the peak is printed)
 * 10. a Queue: producer and consumers, task_done/join, then shutdown
 * 11. a Barrier round and the indices it hands out
 * 12. an RWLock: readers share it, a writer waits and then holds it alone
 * 13. threads: a blocking call on a pool thread while the loop goes on, and
 *     a plain thread that starts a task on the loop and waits for its
 *     result, then wakes a task through a call into the loop
 * 14. I/O: an echo server on loopback TCP, and a signal that shuts it down
 * 15. patterns: a worker pool whose jobs take tokens from a rate limiter
 * 16. a deliberate deadlock on an explicit loop, and its report
 *
 * Each line starts with the time since the start of its section, on the
 * loop's clock. The program exits with 1 if anything differs from what the
 * narration expects.
 *
 * Objects that several tasks use (futures, events, locks, queues, the task
 * group) are in static storage rather than on a task's stack: see
 * docs/stacks.md.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <cosync.h>

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#if defined(__GNUC__)
#define DEMO_PRINTF(fmt, first) __attribute__((format(printf, fmt, first)))
#else
#define DEMO_PRINTF(fmt, first)
#endif

/* ------------------------------------------------------------------------
 * Narration helpers
 * ---------------------------------------------------------------------- */

static int64_t t0;    /* start of the current section, on the loop's clock */
static int surprises; /* things that did not go as narrated */

static void section(const char *title)
{
    printf("\n== %s ==\n", title);
    t0 = cosync_now();
}

static void say(const char *fmt, ...) DEMO_PRINTF(1, 2);

static void say(const char *fmt, ...)
{
    va_list ap;
    long long ms = (long long)((cosync_now() - t0) / COSYNC_MS(1));
    printf("[%3lld ms] ", ms);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    putchar('\n');
}

static void expect(bool ok, const char *what)
{
    if (!ok) {
        printf("          !! unexpected: %s is false\n", what);
        surprises++;
    }
}

#define EXPECT(cond) expect((cond), #cond)

/* The calling task's name. */
static const char *me(void)
{
    return cosync_task_name(cosync_task_current());
}

/* Spawn options with just a name. */
static cosync_task_opts named(const char *name)
{
    cosync_task_opts o;
    memset(&o, 0, sizeof o);
    o.name = name;
    return o;
}

/* Spawn a named task on the current loop. */
static int spawn(cosync_task *t, const char *name, cosync_task_fn fn, void *arg)
{
    cosync_task_opts o = named(name);
    int rc = cosync_task_spawn(t, fn, arg, &o);
    if (rc != 0)
        printf("spawn %s: %s\n", name, cosync_strerror(rc));
    return rc;
}

/* ------------------------------------------------------------------------
 * 1. spawn and join
 * ---------------------------------------------------------------------- */

/* Nap arg * 10 ms, then return arg squared. */
static int square_after_nap(void *arg, void **result)
{
    intptr_t n = (intptr_t)arg;
    int rc = cosync_sleep(COSYNC_MS(10 * n));
    if (rc != 0)
        return rc;
    say("%s: napped %d ms, returns %d", me(), (int)(10 * n), (int)(n * n));
    *result = (void *)(n * n);
    return 0;
}

static int step_spawn_join(void)
{
    static const char *const names[3] = {"square-3", "square-1", "square-2"};
    static const intptr_t args[3] = {3, 1, 2};
    cosync_task t[3];
    int rc;

    section("1. spawn and join");
    for (int i = 0; i < 3; i++)
        if ((rc = spawn(&t[i], names[i], square_after_nap, (void *)args[i])) != 0)
            return rc;
    say("main: spawned square-3, square-1, square-2; joining them in that order");

    for (int i = 0; i < 3; i++) {
        int status = -1;
        void *value = NULL;
        rc = cosync_task_join(t[i], &status, &value, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        say("main: joined %s: status %s, result %ld", names[i], cosync_err_name(status),
            (long)(intptr_t)value);
        EXPECT(status == 0 && (intptr_t)value == args[i] * args[i]);
    }
    rc = cosync_task_cancel(t[0]);
    say("main: a joined handle is stale: cancel(square-3) -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_ESRCH);
    return 0;
}

/* ------------------------------------------------------------------------
 * 2. gather with one failing task
 * ---------------------------------------------------------------------- */

struct fetch_job {
    const char *name;
    int ms;    /* how long the "request" takes */
    int fail;  /* 0, or the error it fails with */
    int bytes; /* its result */
};

static int fetch(void *arg, void **result)
{
    const struct fetch_job *job = arg;
    int rc = cosync_sleep(COSYNC_MS(job->ms));
    if (rc != 0)
        return rc;
    if (job->fail != 0) {
        say("%s: fails with %s", me(), cosync_err_name(job->fail));
        return job->fail;
    }
    say("%s: done, %d bytes", me(), job->bytes);
    *result = (void *)(intptr_t)job->bytes;
    return 0;
}

static int step_gather(void)
{
    static const struct fetch_job jobs[3] = {
        {"fetch-a", 15, 0, 1200},
        {"fetch-b", 5, COSYNC_EINVAL, 0},
        {"fetch-c", 10, 0, 800},
    };
    cosync_task t[3];
    cosync_outcome out[3];
    int rc;

    section("2. gather: one task fails, the others go on");
    for (int i = 0; i < 3; i++)
        if ((rc = spawn(&t[i], jobs[i].name, fetch, (void *)&jobs[i])) != 0)
            return rc;

    rc = cosync_gather(t, 3, out, COSYNC_FOREVER);
    say("main: gather -> %s; outcomes in the order of the tasks:", cosync_err_name(rc));
    EXPECT(rc == 0);
    for (int i = 0; i < 3; i++) {
        say("main:   %s: status %-14s result %ld", jobs[i].name, cosync_err_name(out[i].status),
            (long)(intptr_t)out[i].result);
        EXPECT(out[i].status == jobs[i].fail);
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * 3. wait_for timing out a slow task
 * ---------------------------------------------------------------------- */

static int slow_job(void *arg, void **result)
{
    int ms = (int)(intptr_t)arg;
    (void)result;
    say("%s: starts a %d ms job", me(), ms);
    int rc = cosync_sleep(COSYNC_MS(ms));
    say("%s: its sleep returned %s", me(), cosync_err_name(rc));
    return rc;
}

static int step_wait_for(void)
{
    cosync_task t;
    int status = -1;
    int rc;

    section("3. wait_for and a timeout block: budgets of 20 and 25 ms");
    if ((rc = spawn(&t, "quick", slow_job, (void *)(intptr_t)5)) != 0)
        return rc;
    rc = cosync_wait_for(t, &status, NULL, cosync_deadline_after(COSYNC_MS(20)));
    say("main: wait_for(quick) -> %s, its status %s", cosync_err_name(rc), cosync_err_name(status));
    EXPECT(rc == 0 && status == 0);

    if ((rc = spawn(&t, "slow", slow_job, (void *)(intptr_t)100)) != 0)
        return rc;
    rc = cosync_wait_for(t, &status, NULL, cosync_deadline_after(COSYNC_MS(20)));
    say("main: wait_for(slow) -> %s; slow was cancelled and collected, status %s",
        cosync_err_name(rc), cosync_err_name(status));
    EXPECT(rc == COSYNC_ETIMEDOUT && status == COSYNC_ECANCELED);

    /* asyncio.timeout(): a budget for a whole block, whose calls take no
     * deadline of their own; the third step cannot end before 30 ms */
    cosync_timeout tm;
    if ((rc = cosync_timeout_enter(&tm, cosync_deadline_after(COSYNC_MS(25)))) != 0)
        return rc;
    int steps = 0;
    while ((rc = cosync_sleep(COSYNC_MS(10))) == 0)
        steps++;
    rc = cosync_timeout_leave(&tm, rc);
    say("main: a 25 ms timeout block around 10 ms steps -> %s after %d steps", cosync_err_name(rc),
        steps);
    EXPECT(rc == COSYNC_ETIMEDOUT && steps <= 2 && cosync_timeout_expired(&tm));
    return 0;
}

/* ------------------------------------------------------------------------
 * 4. TaskGroup: one child fails, its siblings are cancelled
 * ---------------------------------------------------------------------- */

struct child_job {
    int ms;
    int fail;
};

static int checker(void *arg, void **result)
{
    const struct child_job *job = arg;
    (void)result;
    int rc = cosync_sleep(COSYNC_MS(job->ms));
    if (rc == COSYNC_ECANCELED) {
        say("%s: cancelled by the group", me());
        return rc;
    }
    if (rc != 0)
        return rc;
    if (job->fail != 0) {
        say("%s: fails with %s", me(), cosync_err_name(job->fail));
        return job->fail;
    }
    say("%s: finished", me());
    return 0;
}

static cosync_taskgroup group;

static int step_taskgroup(void)
{
    static const struct child_job jobs[3] = {{30, 0}, {10, COSYNC_EINVAL}, {60, 0}};
    static const char *const names[3] = {"checker-30ms", "checker-fails", "checker-60ms"};
    int rc;

    section("4. TaskGroup: the first failure cancels the siblings");
    if ((rc = cosync_taskgroup_init(&group)) != 0)
        return rc;
    for (int i = 0; i < 3; i++) {
        cosync_task_opts o = named(names[i]);
        if ((rc = cosync_taskgroup_spawn(&group, NULL, checker, (void *)&jobs[i], &o)) != 0)
            return rc;
    }
    say("main: three checkers spawned; leaving the group");
    rc = cosync_taskgroup_wait(&group, COSYNC_FOREVER);
    say("main: taskgroup_wait -> %s (the first failure)", cosync_err_name(rc));
    EXPECT(rc == COSYNC_EINVAL);
    return 0;
}

/* ------------------------------------------------------------------------
 * 5. a Future awaited by three tasks
 * ---------------------------------------------------------------------- */

static cosync_future answer = COSYNC_FUTURE_INIT;

static int await_answer(void *arg, void **result)
{
    void *value = NULL;
    (void)arg;
    (void)result;
    say("%s: waits for the answer", me());
    int rc = cosync_future_wait(&answer, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    int status = cosync_future_result(&answer, &value);
    say("%s: the future is done: status %s, value %ld", me(), cosync_err_name(status),
        (long)(intptr_t)value);
    return status;
}

static int step_future(void)
{
    static const char *const names[3] = {"reader-1", "reader-2", "reader-3"};
    cosync_task t[3];
    cosync_outcome out[3];
    int rc;

    section("5. Future: one result, three waiters");
    cosync_future_init(&answer);
    for (int i = 0; i < 3; i++)
        if ((rc = spawn(&t[i], names[i], await_answer, NULL)) != 0)
            return rc;
    if ((rc = cosync_sleep(COSYNC_MS(10))) != 0)
        return rc;
    say("main: set_result(42)");
    rc = cosync_future_set_result(&answer, (void *)(intptr_t)42);
    EXPECT(rc == 0);
    rc = cosync_future_set_result(&answer, (void *)(intptr_t)43);
    say("main: a second set_result -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_EALREADY);
    rc = cosync_gather(t, 3, out, COSYNC_FOREVER);
    EXPECT(rc == 0);
    for (int i = 0; i < 3; i++)
        EXPECT(out[i].status == 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * 6. an Event waking several waiters
 * ---------------------------------------------------------------------- */

static cosync_event gate = COSYNC_EVENT_INIT;

static int wait_at_gate(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_event_wait(&gate, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    say("%s: woken (the flag is %s by now)", me(), cosync_event_is_set(&gate) ? "set" : "clear");
    return 0;
}

static int step_event(void)
{
    static const char *const names[4] = {"guest-1", "guest-2", "guest-3", "guest-4"};
    cosync_task t[4];
    cosync_outcome out[4];
    int rc;

    section("6. Event: set() wakes every waiter");
    cosync_event_init(&gate);
    for (int i = 0; i < 4; i++)
        if ((rc = spawn(&t[i], names[i], wait_at_gate, NULL)) != 0)
            return rc;
    if ((rc = cosync_sleep(COSYNC_MS(10))) != 0)
        return rc;
    say("main: set() and clear() at once: every task waiting at set() still wakes");
    cosync_event_set(&gate);
    cosync_event_clear(&gate);
    rc = cosync_gather(t, 4, out, COSYNC_FOREVER);
    EXPECT(rc == 0);
    for (int i = 0; i < 4; i++)
        EXPECT(out[i].status == 0);
    rc = cosync_event_wait(&gate, 0);
    say("main: wait with deadline 0 on the cleared event -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_EAGAIN);
    return 0;
}

/* ------------------------------------------------------------------------
 * 7. cancellation
 * ---------------------------------------------------------------------- */

/* Sends a chunk every 10 ms until cancelled, then cleans up, which takes
 * another 10 ms of sleeping: the cancellation was delivered once, so the
 * cleanup's sleep is not interrupted. */
static int uploader(void *arg, void **result)
{
    int rc;
    (void)arg;
    (void)result;
    for (int chunk = 1;; chunk++) {
        if ((rc = cosync_sleep(COSYNC_MS(10))) != 0)
            break;
        say("%s: sent chunk %d", me(), chunk);
    }
    say("%s: sleep returned %s, cancelling() = %d; cleaning up", me(), cosync_err_name(rc),
        cosync_task_cancelling(cosync_task_current()));
    int cleanup = cosync_sleep(COSYNC_MS(10));
    say("%s: cleanup sleep returned %s; partial upload removed", me(), cosync_err_name(cleanup));
    return rc; /* end as cancelled */
}

/* Catches the cancellation, withdraws it and finishes normally. */
static int stubborn(void *arg, void **result)
{
    (void)arg;
    int rc = cosync_sleep(COSYNC_MS(50));
    if (rc == COSYNC_ECANCELED) {
        int left = cosync_task_uncancel(cosync_task_current());
        say("%s: cancelled; uncancel() -> %d, finishes normally", me(), left);
    }
    *result = (void *)(intptr_t)7;
    return 0;
}

static int never_runs(void *arg, void **result)
{
    (void)arg;
    (void)result;
    say("%s: this body should not have run", me());
    surprises++;
    return 0;
}

static int quick(void *arg, void **result)
{
    (void)arg;
    (void)result;
    return 0;
}

static int step_cancel(void)
{
    cosync_task t;
    int status = -1;
    void *value = NULL;
    int rc;

    section("7a. cancel: cleanup that suspends");
    if ((rc = spawn(&t, "uploader", uploader, NULL)) != 0)
        return rc;
    if ((rc = cosync_sleep(COSYNC_MS(25))) != 0)
        return rc;
    rc = cosync_task_cancel(t);
    say("main: cancel(uploader) -> %s", cosync_err_name(rc));
    rc = cosync_task_join(t, &status, NULL, COSYNC_FOREVER);
    say("main: joined uploader: status %s", cosync_err_name(status));
    EXPECT(rc == 0 && status == COSYNC_ECANCELED);

    section("7b. cancel, then uncancel");
    if ((rc = spawn(&t, "stubborn", stubborn, NULL)) != 0)
        return rc;
    if ((rc = cosync_sleep(COSYNC_MS(10))) != 0)
        return rc;
    cosync_task_cancel(t);
    rc = cosync_task_join(t, &status, &value, COSYNC_FOREVER);
    say("main: joined stubborn: status %s, result %ld", cosync_err_name(status),
        (long)(intptr_t)value);
    EXPECT(rc == 0 && status == 0 && (intptr_t)value == 7);

    section("7c. cancel before the first run, cancel after the end");
    if ((rc = spawn(&t, "never-runs", never_runs, NULL)) != 0)
        return rc;
    cosync_task_cancel(t);
    rc = cosync_task_join(t, &status, NULL, COSYNC_FOREVER);
    say("main: cancelled before it ran: its body never ran, status %s", cosync_err_name(status));
    EXPECT(rc == 0 && status == COSYNC_ECANCELED);

    if ((rc = spawn(&t, "quick", quick, NULL)) != 0)
        return rc;
    if ((rc = cosync_yield()) != 0) /* quick runs to its end */
        return rc;
    rc = cosync_task_cancel(t);
    say("main: cancel of a finished task -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_EALREADY);
    rc = cosync_task_join(t, &status, NULL, COSYNC_FOREVER);
    say("main: joined quick: status %s", cosync_err_name(status));
    EXPECT(rc == 0 && status == 0);
    return 0;
}

/* ------------------------------------------------------------------------
 * 8. a Lock fixing a race
 * ---------------------------------------------------------------------- */

static int shared_counter;
static cosync_lock counter_lock = COSYNC_LOCK_INIT;

/* Read the counter, "process" for 2 ms, write it back + 1; under the lock
 * if arg is non-NULL. */
static int bump(void *arg, void **result)
{
    bool locked = arg != NULL;
    int rc;
    (void)result;
    if (locked && (rc = cosync_lock_acquire(&counter_lock, COSYNC_FOREVER)) != 0)
        return rc;
    int temp = shared_counter;
    rc = cosync_sleep(COSYNC_MS(2));
    if (rc == 0)
        shared_counter = temp + 1;
    if (locked)
        cosync_lock_release(&counter_lock);
    return rc;
}

static int run_bumps(bool locked)
{
    cosync_task t[10];
    cosync_outcome out[10];
    int rc;
    shared_counter = 0;
    for (int i = 0; i < 10; i++)
        if ((rc = spawn(&t[i], "bump", bump, locked ? (void *)&counter_lock : NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(t, 10, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 10; i++)
        EXPECT(out[i].status == 0);
    return 0;
}

static int step_lock(void)
{
    int rc;
    section("8. Lock: ten read-sleep-write increments");
    if ((rc = run_bumps(false)) != 0)
        return rc;
    say("main: without a lock the counter is %d (every task read 0 before any wrote)",
        shared_counter);
    EXPECT(shared_counter == 1);
    if ((rc = run_bumps(true)) != 0)
        return rc;
    say("main: with the lock it is %d (the increments ran one after another)", shared_counter);
    EXPECT(shared_counter == 10);
    return 0;
}

/* ------------------------------------------------------------------------
 * 9. a Semaphore limiting concurrency
 * ---------------------------------------------------------------------- */

static cosync_sem downloads;
static int downloading, downloading_peak;

static int download(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_sem_acquire(&downloads, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    if (++downloading > downloading_peak)
        downloading_peak = downloading;
    say("%s: downloading (%d at once)", me(), downloading);
    rc = cosync_sleep(COSYNC_MS(10));
    downloading--;
    cosync_sem_release(&downloads);
    return rc;
}

static int step_semaphore(void)
{
    static const char *const names[5] = {"dl-1", "dl-2", "dl-3", "dl-4", "dl-5"};
    cosync_task t[5];
    cosync_outcome out[5];
    int rc;

    section("9. Semaphore(2): five 10 ms downloads, two at a time");
    if ((rc = cosync_sem_init(&downloads, 2)) != 0)
        return rc;
    downloading = downloading_peak = 0;
    for (int i = 0; i < 5; i++)
        if ((rc = spawn(&t[i], names[i], download, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(t, 5, out, COSYNC_FOREVER)) != 0)
        return rc;
    say("main: all done; peak concurrency %d", downloading_peak);
    EXPECT(downloading_peak == 2);
    return 0;
}

/* ------------------------------------------------------------------------
 * 10. a Queue: producer, consumers, task_done/join, shutdown
 * ---------------------------------------------------------------------- */

static cosync_queue jobs;
static int jobs_done;

static int job_consumer(void *arg, void **result)
{
    int item, rc;
    (void)arg;
    (void)result;
    while ((rc = cosync_queue_get(&jobs, &item, COSYNC_FOREVER)) == 0) {
        rc = cosync_sleep(COSYNC_MS(5));
        if (rc != 0)
            return rc;
        say("%s: job %d done", me(), item);
        jobs_done++;
        cosync_queue_task_done(&jobs);
    }
    say("%s: get -> %s, exits", me(), cosync_err_name(rc));
    return rc == COSYNC_ESHUTDOWN ? 0 : rc;
}

static int step_queue(void)
{
    cosync_task t[2];
    cosync_outcome out[2];
    int rc;

    section("10. Queue(maxsize 2): six jobs, two consumers, join, shutdown");
    if ((rc = cosync_queue_init(&jobs, sizeof(int), 2)) != 0)
        return rc;
    jobs_done = 0;
    if ((rc = spawn(&t[0], "consumer-a", job_consumer, NULL)) != 0 ||
        (rc = spawn(&t[1], "consumer-b", job_consumer, NULL)) != 0)
        return rc;
    for (int i = 1; i <= 6; i++)
        if ((rc = cosync_queue_put(&jobs, &i, COSYNC_FOREVER)) != 0)
            return rc;
    say("main: put six jobs (put waited whenever two were queued); joining");
    if ((rc = cosync_queue_join(&jobs, COSYNC_FOREVER)) != 0)
        return rc;
    say("main: join returned: %d jobs done; shutdown()", jobs_done);
    EXPECT(jobs_done == 6);
    cosync_queue_shutdown(&jobs, false);
    if ((rc = cosync_gather(t, 2, out, COSYNC_FOREVER)) != 0)
        return rc;
    EXPECT(out[0].status == 0 && out[1].status == 0);
    int one = 1;
    rc = cosync_queue_put(&jobs, &one, COSYNC_FOREVER);
    say("main: a put after shutdown -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_ESHUTDOWN);
    return cosync_queue_destroy(&jobs);
}

/* ------------------------------------------------------------------------
 * 11. a Barrier round
 * ---------------------------------------------------------------------- */

static cosync_barrier start_line = COSYNC_BARRIER_INIT(3);

static int runner(void *arg, void **result)
{
    intptr_t ms = (intptr_t)arg;
    int rc = cosync_sleep(COSYNC_MS(ms));
    if (rc != 0)
        return rc;
    say("%s: at the barrier (%u waiting before it)", me(), cosync_barrier_n_waiting(&start_line));
    int idx = cosync_barrier_wait(&start_line, COSYNC_FOREVER);
    if (idx < 0)
        return idx;
    say("%s: through, index %d", me(), idx);
    *result = (void *)(intptr_t)idx;
    return 0;
}

static int step_barrier(void)
{
    static const char *const names[3] = {"runner-0ms", "runner-10ms", "runner-5ms"};
    static const intptr_t delays[3] = {0, 10, 5};
    cosync_task t[3];
    cosync_outcome out[3];
    int rc;

    section("11. Barrier(3): indices in arrival order, the last one wakes the rest");
    for (int i = 0; i < 3; i++)
        if ((rc = spawn(&t[i], names[i], runner, (void *)delays[i])) != 0)
            return rc;
    if ((rc = cosync_gather(t, 3, out, COSYNC_FOREVER)) != 0)
        return rc;
    EXPECT(out[0].status == 0 && (intptr_t)out[0].result == 0);
    EXPECT(out[2].status == 0 && (intptr_t)out[2].result == 1);
    EXPECT(out[1].status == 0 && (intptr_t)out[1].result == 2);
    return 0;
}

/* ------------------------------------------------------------------------
 * 12. an RWLock: readers together, a writer alone, writer preference
 * ---------------------------------------------------------------------- */

static cosync_rwlock table_lock = COSYNC_RWLOCK_INIT;
static char rw_log[8];
static int rw_n;

struct rw_job {
    int delay_ms;
    bool writer;
};

static int table_user(void *arg, void **result)
{
    const struct rw_job *job = arg;
    (void)result;
    int rc = cosync_sleep(COSYNC_MS(job->delay_ms));
    if (rc != 0)
        return rc;
    say("%s: asks to %s", me(), job->writer ? "write" : "read");
    rc = job->writer ? cosync_rwlock_write_acquire(&table_lock, COSYNC_FOREVER)
                     : cosync_rwlock_read_acquire(&table_lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    say("%s: in (%u reader(s), writer %s)", me(), cosync_rwlock_readers(&table_lock),
        cosync_rwlock_write_locked(&table_lock) ? "yes" : "no");
    rw_log[rw_n++] = job->writer ? 'W' : 'R';
    rc = cosync_sleep(COSYNC_MS(10));
    if (job->writer)
        cosync_rwlock_write_release(&table_lock);
    else
        cosync_rwlock_read_release(&table_lock);
    return rc;
}

static int step_rwlock(void)
{
    static const struct rw_job jobs_rw[4] = {{0, false}, {0, false}, {2, true}, {4, false}};
    static const char *const names[4] = {"reader-1", "reader-2", "writer", "late-reader"};
    cosync_task t[4];
    cosync_outcome out[4];
    int rc;

    section("12. RWLock: two readers, then a writer, then a late reader");
    rw_n = 0;
    for (int i = 0; i < 4; i++)
        if ((rc = spawn(&t[i], names[i], table_user, (void *)&jobs_rw[i])) != 0)
            return rc;
    if ((rc = cosync_gather(t, 4, out, COSYNC_FOREVER)) != 0)
        return rc;
    rw_log[rw_n] = '\0';
    say("main: order in: %s (the late reader queued behind the waiting writer)", rw_log);
    EXPECT(rw_n == 4 && rw_log[0] == 'R' && rw_log[1] == 'R' && rw_log[2] == 'W' &&
           rw_log[3] == 'R');
    return 0;
}

/* ------------------------------------------------------------------------
 * 13. threads: a pool thread runs a blocking call; a plain thread calls in
 * ---------------------------------------------------------------------- */

static void block_for_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0) {
    }
}

/* A blocking call, as a library without an asynchronous interface makes:
 * on a task it would stop the whole loop. */
static int blocking_lookup(void *arg, void **result)
{
    block_for_ms(25);
    *result = arg;
    return 0;
}

static int ticks;
static bool lookup_done;

static int ticker(void *arg, void **result)
{
    (void)arg;
    (void)result;
    while (!lookup_done) {
        int rc = cosync_sleep(COSYNC_MS(10));
        if (rc != 0)
            return rc;
        if (!lookup_done) {
            ticks++;
            say("%s: tick %d (the loop goes on)", me(), ticks);
        }
    }
    return 0;
}

static cosync_event from_thread = COSYNC_EVENT_INIT;
static cosync_call wake_call;
static int remote_status = -1;
static void *remote_result;

/* A task the plain thread starts on the loop (run_coroutine_threadsafe). */
static int square_on_loop(void *arg, void **result)
{
    int rc = cosync_yield(); /* a task like any other: it may suspend */
    intptr_t x = (intptr_t)arg;
    *result = (void *)(x * x);
    return rc;
}

static void set_from_thread(void *arg)
{
    cosync_event_set(arg); /* on the loop's thread, outside any task */
}

static void *plain_thread(void *arg)
{
    cosync_loop *loop = arg;
    block_for_ms(10);
    cosync_remote r = {0};
    if (cosync_loop_spawn_threadsafe(loop, &r, square_on_loop, (void *)(intptr_t)12, NULL) == 0 &&
        cosync_remote_wait(&r, &remote_status, &remote_result, COSYNC_FOREVER) == 0)
        cosync_remote_destroy(&r);
    cosync_loop_call_threadsafe(loop, &wake_call, set_from_thread, &from_thread);
    cosync_loop_unref(loop); /* its last call is made */
    return NULL;
}

static int step_threads(void)
{
    static char address[] = "127.0.0.1";
    cosync_task tick;
    void *found = NULL;
    int rc;

    section("13. threads: a blocking call on a pool thread, a thread calling in");
    ticks = 0;
    lookup_done = false;
    if ((rc = spawn(&tick, "ticker", ticker, NULL)) != 0)
        return rc;
    say("%s: hands a 25 ms blocking lookup of localhost to a pool thread (to_thread)", me());
    rc = cosync_to_thread(blocking_lookup, address, &found, COSYNC_FOREVER);
    lookup_done = true;
    say("%s: the lookup is back (%s): %s", me(), rc == 0 ? "ok" : cosync_err_name(rc),
        found ? (char *)found : "-");
    EXPECT(rc == 0 && found == address);
    EXPECT(ticks >= 1);
    if ((rc = cosync_task_join(tick, NULL, NULL, COSYNC_FOREVER)) != 0)
        return rc;

    cosync_loop *loop = cosync_loop_current();
    cosync_loop_ref(loop); /* a thread will call in: no deadlock while it may */
    pthread_t th;
    if ((rc = -pthread_create(&th, NULL, plain_thread, loop)) != 0) {
        cosync_loop_unref(loop);
        return rc;
    }
    say("%s: waits for an event that a plain thread sets through a call, once the", me());
    say("%s: task the thread starts here has given it 12 squared", me());
    rc = cosync_event_wait(&from_thread, COSYNC_FOREVER);
    say("%s: woken (%s)", me(), rc == 0 ? "ok" : cosync_err_name(rc));
    EXPECT(rc == 0);
    pthread_join(th, NULL); /* it has made its call: this is quick */
    say("%s: the thread got %d from its task (status %s)", me(), (int)(intptr_t)remote_result,
        cosync_err_name(remote_status));
    EXPECT(remote_status == 0 && remote_result == (void *)144);
    return 0;
}

/* ------------------------------------------------------------------------
 * 14. I/O: an echo server, and a signal that shuts it down
 * ---------------------------------------------------------------------- */

static cosync_io listener;
static cosync_signal shutdown_signals;

/* Echo what one client sends until it shuts down its side. */
static int echo_one_client(void *arg, void **result)
{
    (void)arg;
    (void)result;
    cosync_io conn;
    int rc = cosync_sock_accept(&listener, &conn, NULL, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    say("%s: accepted a connection", me());
    char buf[64];
    ssize_t n;
    while ((n = cosync_sock_recv(&conn, buf, sizeof buf, COSYNC_FOREVER)) > 0) {
        say("%s: echoes %zd bytes", me(), n);
        if ((rc = cosync_sock_sendall(&conn, buf, (size_t)n, NULL, COSYNC_FOREVER)) != 0)
            break;
    }
    cosync_io_close(&conn);
    say("%s: the client is gone; waits for the next one", me());
    rc = cosync_sock_accept(&listener, &conn, NULL, COSYNC_FOREVER);
    say("%s: accept returned %s: closes the listener", me(), cosync_err_name(rc));
    cosync_io_close(&listener);
    if (rc != COSYNC_ECANCELED)
        return -1;
    /* a shutdown asked for: this task's own clean end (asyncio's
     * `except CancelledError: return`) */
    cosync_task_uncancel(cosync_task_current());
    return 0;
}

/* Wait for SIGTERM, then cancel the server (loop.add_signal_handler). */
static int on_sigterm(void *arg, void **result)
{
    (void)result;
    int signo = cosync_signal_wait(&shutdown_signals, COSYNC_FOREVER);
    say("%s: got %s: cancels the server", me(), signo == SIGTERM ? "SIGTERM" : "?");
    EXPECT(signo == SIGTERM);
    return cosync_task_cancel(*(cosync_task *)arg);
}

static int step_io(void)
{
    cosync_task server, watcher;
    cosync_addr addr;
    cosync_io client;
    char reply[16] = {0};
    int rc;

    section("14. I/O: an echo server on loopback TCP, and a signal that shuts it down");
    cosync_addr_ip(&addr, "127.0.0.1", 0);
    if ((rc = cosync_sock_listen(&listener, &addr, 0)) != 0)
        return rc;
    cosync_sock_local_addr(&listener, &addr); /* the port it took */
    if ((rc = cosync_signal_init(&shutdown_signals, (int[]){SIGTERM}, 1)) != 0)
        return rc;
    if ((rc = spawn(&server, "server", echo_one_client, NULL)) != 0)
        return rc;
    if ((rc = spawn(&watcher, "watcher", on_sigterm, &server)) != 0)
        return rc;
    if ((rc = cosync_tcp_connect(&client, &addr, COSYNC_FOREVER)) != 0)
        return rc;
    say("%s: connected; sends \"ping\"", me());
    cosync_sock_sendall(&client, "ping", 4, NULL, COSYNC_FOREVER);
    ssize_t n = cosync_sock_recv(&client, reply, sizeof reply - 1, COSYNC_FOREVER);
    say("%s: got back \"%s\"", me(), n > 0 ? reply : "");
    EXPECT(n == 4 && strcmp(reply, "ping") == 0);
    cosync_io_close(&client);
    cosync_sleep(COSYNC_MS(5));
    say("%s: sends itself SIGTERM", me());
    kill(getpid(), SIGTERM); /* blocked: it waits in the signalfd for the watcher */
    int status = -1;
    cosync_task_join(watcher, NULL, NULL, COSYNC_FOREVER);
    cosync_task_join(server, &status, NULL, COSYNC_FOREVER);
    say("%s: the server ended %s", me(), status == 0 ? "cleanly" : cosync_err_name(status));
    EXPECT(status == 0);
    return cosync_signal_destroy(&shutdown_signals);
}

/* ------------------------------------------------------------------------
 * The tour, on the loop of cosync_run
 * ---------------------------------------------------------------------- */

/* ------------------------------------------------------------------------
 * 15. patterns: a worker pool and a rate limiter
 * ---------------------------------------------------------------------- */

/* one request every 10 ms, two at once after a quiet spell */
static cosync_ratelimit api_rate = COSYNC_RATELIMIT_INIT(1, COSYNC_MS(10), 2);
static int requests_done;

/* A job: wait for a token, then a 5 ms request. */
static int request(void *arg, void **result)
{
    int rc = cosync_ratelimit_acquire(&api_rate, 1, COSYNC_FOREVER);
    (void)result;
    if (rc != 0)
        return rc;
    say("%s: request %d gets its token", me(), (int)(intptr_t)arg);
    return cosync_sleep(COSYNC_MS(5));
}

static void request_done(void *ctx, void *arg, int status, void *result)
{
    (void)ctx, (void)arg, (void)result;
    if (status == 0)
        requests_done++;
}

static int step_patterns(void)
{
    cosync_workerpool pool;
    int rc;

    section("15. patterns: a worker pool of 2, its jobs paced by a rate limiter (1 per 10 ms)");
    rc = cosync_workerpool_init(
        &pool, &(cosync_workerpool_opts){.workers = 2, .backlog = 2, .done = request_done});
    if (rc != 0)
        return rc;
    for (int i = 1; i <= 6; i++)
        if ((rc = cosync_workerpool_submit(&pool, request, (void *)(intptr_t)i, COSYNC_FOREVER)) !=
            0)
            return rc;
    say("main: submitted six requests (the backlog of 2 made the last wait)");
    if ((rc = cosync_workerpool_join(&pool, COSYNC_FOREVER)) != 0)
        return rc;
    say("main: join returned: %d requests done; shut the pool down", requests_done);
    EXPECT(requests_done == 6);
    EXPECT(cosync_now() - t0 >= COSYNC_MS(40)); /* tokens at 0, 0, 10, 20, 30, 40 ms */
    if ((rc = cosync_workerpool_shutdown(&pool, false, COSYNC_FOREVER)) != 0)
        return rc;
    rc = cosync_workerpool_submit(&pool, request, NULL, COSYNC_FOREVER);
    say("main: a submit after shutdown -> %s", cosync_err_name(rc));
    EXPECT(rc == COSYNC_ESHUTDOWN);
    return cosync_workerpool_destroy(&pool);
}

static int tour(void *arg, void **result)
{
    static int (*const steps[])(void) = {
        step_spawn_join, step_gather, step_wait_for, step_taskgroup, step_future,
        step_event,      step_cancel, step_lock,     step_semaphore, step_queue,
        step_barrier,    step_rwlock, step_threads,  step_io,        step_patterns,
    };
    (void)arg;
    (void)result;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        int rc = steps[i]();
        if (rc != 0) {
            printf("the tour stopped: %s\n", cosync_strerror(rc));
            return rc;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------------
 * 16. a deliberate deadlock, on an explicit loop
 * ---------------------------------------------------------------------- */

/* alice waits for bob's future before completing her own, and bob waits
 * for alice's: nothing can ever wake either of them. */
static struct standoff {
    cosync_future from_alice;
    cosync_future from_bob;
} standoff;

static int alice(void *arg, void **result)
{
    struct standoff *s = arg;
    (void)result;
    int rc = cosync_future_wait(&s->from_bob, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    cosync_future_set_result(&s->from_alice, NULL);
    return 0;
}

static int bob(void *arg, void **result)
{
    struct standoff *s = arg;
    (void)result;
    int rc = cosync_future_wait(&s->from_alice, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    cosync_future_set_result(&s->from_bob, NULL);
    return 0;
}

static int standoff_main(void *arg, void **result)
{
    cosync_task a, b;
    int rc;
    (void)result;

    section("16. deadlock: reported, not a silent hang");
    if ((rc = spawn(&a, "alice", alice, arg)) != 0)
        return rc;
    if ((rc = spawn(&b, "bob", bob, arg)) != 0)
        return rc;
    if ((rc = cosync_task_detach(b)) != 0)
        return rc;
    say("%s: joins alice, who waits for bob, who waits for alice", me());
    rc = cosync_task_join(a, NULL, NULL, COSYNC_FOREVER);
    say("%s: join returned %s", me(), cosync_err_name(rc));
    return rc;
}

static int deadlock_demo(void)
{
    cosync_loop_opts lopts;
    cosync_loop *loop = NULL;
    cosync_task main_task;
    int rc;

    memset(&lopts, 0, sizeof lopts);
    lopts.report = stdout; /* the deadlock report goes into this output */
    if ((rc = cosync_loop_init(&loop, &lopts)) != 0) {
        printf("cosync_loop_init: %s\n", cosync_strerror(rc));
        return rc;
    }
    cosync_future_init(&standoff.from_alice);
    cosync_future_init(&standoff.from_bob);

    cosync_task_opts o = named("standoff-main");
    if ((rc = cosync_loop_spawn(loop, &main_task, standoff_main, &standoff, &o)) != 0) {
        printf("cosync_loop_spawn: %s\n", cosync_strerror(rc));
        cosync_loop_destroy(loop);
        return rc;
    }

    rc = cosync_loop_run(loop, main_task, NULL, NULL);
    printf("cosync_loop_run -> %s\n", cosync_err_name(rc));
    EXPECT(rc == COSYNC_EDEADLK);

    /* Destroying the loop cancels the blocked tasks: their waits return
     * COSYNC_ECANCELED, they finish, and everything is freed. */
    printf("destroying the loop cancels the blocked tasks:\n");
    rc = cosync_loop_destroy(loop);
    printf("cosync_loop_destroy -> %s\n", cosync_err_name(rc));
    EXPECT(rc == 0);
    return 0;
}

int main(void)
{
    printf(
        "cosync %d.%d.%d: a tour of the runtime core, its primitives, threads, I/O and patterns\n",
        COSYNC_VERSION_MAJOR, COSYNC_VERSION_MINOR, COSYNC_VERSION_PATCH);

    int rc = cosync_run(tour, NULL);
    if (rc != 0) {
        printf("cosync_run -> %s\n", cosync_err_name(rc));
        return 1;
    }
    deadlock_demo();

    if (surprises != 0) {
        printf("\n%d thing(s) did not go as narrated\n", surprises);
        return 1;
    }
    printf("\nend of the tour\n");
    return 0;
}
