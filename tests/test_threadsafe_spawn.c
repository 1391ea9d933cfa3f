/*
 * test_threadsafe_spawn.c - tasks started on a loop from other threads
 * and waited for there (cosync_loop_spawn_threadsafe, cosync_remote_*:
 * asyncio.run_coroutine_threadsafe and its concurrent future).
 *
 * Threads that start tasks on one loop and block for their outcomes, the
 * loop held by a reference meanwhile; then, on one thread, a cancel
 * before the start, during the run, and one that comes after the task
 * has ended; the loop's destruction; misuse; and every allocation and
 * set-up failing in turn. Every loop runs on the virtual clock; no
 * outcome depends on how the threads are scheduled. `make test` runs it
 * under ThreadSanitizer too.
 */
/* ctest-timeout: 120 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* nanosleep */
#endif
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "cosync.h"
#include "fault.h" /* cosync__fault_countdown, cosync__mem_live */

static const cosync_loop_opts virtual_clock = {.virtual_clock = true};

/* Doubles its argument, after a few yields; odd arguments fail. */
static int doubles(void *arg, void **result)
{
    intptr_t x = (intptr_t)arg;
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_yield());
    if (x % 2)
        return COSYNC_EPIPE;
    *result = (void *)(2 * x);
    return 0;
}

/* ------------------------------------------------------------------------
 * Threads that start tasks and wait for them
 * ---------------------------------------------------------------------- */

enum { THREADS = 4, PER_THREAD = 200 };

typedef struct shared {
    cosync_loop *loop;
    cosync_latch threads_done;
    cosync_call done_calls[THREADS];
    atomic_int checked;
} shared;

typedef struct thread_arg {
    shared *s;
    int index;
} thread_arg;

static void count_down(void *arg)
{
    CHECK_OK(cosync_latch_count_down(arg));
}

static void *starter(void *arg)
{
    thread_arg *ta = arg;
    shared *s = ta->s;
    cosync_remote r[4];
    memset(r, 0, sizeof r); /* zeroed before the first use */
    for (int k = 0; k < PER_THREAD; k += 4) {
        /* four at a time: they run on the loop together */
        for (int j = 0; j < 4; j++) {
            intptr_t x = ta->index * 10000 + k + j;
            CHECK_OK(cosync_loop_spawn_threadsafe(s->loop, &r[j], doubles, (void *)x, NULL));
        }
        for (int j = 0; j < 4; j++) {
            intptr_t x = ta->index * 10000 + k + j;
            int status = 1;
            void *res = NULL;
            CHECK_OK(cosync_remote_wait(&r[j], &status, &res, COSYNC_FOREVER));
            CHECK(cosync_remote_done(&r[j]));
            if (x % 2) {
                CHECK_ERR(status, COSYNC_EPIPE);
            } else {
                CHECK_OK(status);
                CHECK_EQ((intptr_t)res, 2 * x);
            }
            CHECK_ERR(cosync_remote_cancel(&r[j]), COSYNC_EALREADY);
            CHECK_OK(cosync_remote_destroy(&r[j]));
            atomic_fetch_add(&s->checked, 1);
        }
    }
    CHECK_OK(cosync_loop_call_threadsafe(s->loop, &s->done_calls[ta->index], count_down,
                                         &s->threads_done));
    return NULL;
}

static int threads_main(void *arg, void **result)
{
    (void)result;
    shared *s = arg;
    s->loop = cosync_loop_current();
    CHECK_OK(cosync_latch_init(&s->threads_done, THREADS));
    CHECK_OK(cosync_loop_ref(s->loop)); /* the threads' calls are coming */
    pthread_t th[THREADS];
    thread_arg ta[THREADS];
    for (int i = 0; i < THREADS; i++) {
        ta[i] = (thread_arg){s, i};
        CHECK_EQ(pthread_create(&th[i], NULL, starter, &ta[i]), 0);
    }
    CHECK_OK(cosync_latch_wait(&s->threads_done, COSYNC_FOREVER));
    CHECK_OK(cosync_loop_unref(s->loop));
    for (int i = 0; i < THREADS; i++) /* they have made their last call */
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    return 0;
}

TEST(tasks_started_and_waited_for_from_threads)
{
    shared s = {0};
    atomic_init(&s.checked, 0);
    CHECK_OK(cosync_run_with(threads_main, &s, &virtual_clock));
    CHECK_EQ(atomic_load(&s.checked), THREADS * PER_THREAD);
}

/* ------------------------------------------------------------------------
 * Cancels
 * ---------------------------------------------------------------------- */

static bool body_ran;
static cosync_event ev;

static int never_runs(void *arg, void **result)
{
    (void)arg, (void)result;
    body_ran = true;
    return 0;
}

static int waits_on_ev(void *arg, void **result)
{
    (void)result;
    int rc = cosync_event_wait(&ev, COSYNC_FOREVER);
    if (rc == COSYNC_ECANCELED && arg) { /* withdraws it, and keeps its value */
        CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
        *result = arg;
        return 0;
    }
    return rc;
}

/* A cancel before the loop has run the start: the task is never spawned. */
TEST(cancel_before_the_start)
{
    body_ran = false;
    cosync_loop *loop = new_loop();
    cosync_remote r = {0};
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &r, never_runs, NULL, NULL));
    CHECK_ERR(cosync_loop_spawn_threadsafe(loop, &r, never_runs, NULL, NULL), COSYNC_EBUSY);
    CHECK(!cosync_remote_done(&r));
    CHECK_ERR(cosync_remote_wait(&r, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_remote_wait(&r, NULL, NULL, cosync_now() - 1), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_remote_destroy(&r), COSYNC_EBUSY);
    CHECK_OK(cosync_remote_cancel(&r));
    CHECK_OK(cosync_remote_cancel(&r)); /* the same request */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    int status = 0;
    CHECK_OK(cosync_remote_wait(&r, &status, NULL, 0));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK(!body_ran);
    CHECK_ERR(cosync_remote_cancel(&r), COSYNC_EALREADY);
    CHECK_OK(cosync_remote_destroy(&r));
    CHECK_ERR(cosync_remote_destroy(&r), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_wait(&r, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_cancel(&r), COSYNC_EINVAL);
    CHECK(!cosync_remote_done(&r));
    end_loop(loop);
}

static cosync_remote running_r;

/* From a task of the loop (the loop's own thread may make the calls too):
 * the remote task waits on the event; a cancel reaches it through a call. */
static int cancel_running_main(void *arg, void **result)
{
    (void)result;
    CHECK_OK(
        cosync_loop_spawn_threadsafe(cosync_loop_current(), &running_r, waits_on_ev, arg, NULL));
    while (loop_stats().tasks_alive < 2) /* the start has spawned it */
        CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield()); /* it waits on the event */
    CHECK(!cosync_remote_done(&running_r));
    CHECK_ERR(cosync_remote_wait(&running_r, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_OK(cosync_remote_cancel(&running_r));
    CHECK_OK(cosync_remote_cancel(&running_r)); /* the same request, on its way */
    while (!cosync_remote_done(&running_r))
        CHECK_OK(cosync_yield());
    return 0;
}

TEST(cancel_while_it_runs)
{
    for (int keep = 0; keep < 2; keep++) {
        cosync_event_init(&ev);
        void *value = keep ? (void *)(intptr_t)42 : NULL;
        CHECK_OK(cosync_run_with(cancel_running_main, value, &virtual_clock));
        int status = 1;
        void *res = NULL;
        CHECK_OK(cosync_remote_wait(&running_r, &status, &res, COSYNC_FOREVER));
        if (keep) { /* it withdrew the request: its value is kept */
            CHECK_OK(status);
            CHECK_EQ((intptr_t)res, 42);
        } else {
            CHECK_ERR(status, COSYNC_ECANCELED);
        }
        CHECK_OK(cosync_remote_destroy(&running_r));
    }
}

static atomic_bool waiter_done, waiter_ready;
static int waiter_status;

static void *blocked_waiter(void *arg)
{
    (void)arg;
    waiter_status = 1;
    atomic_store(&waiter_ready, true);
    CHECK_OK(cosync_remote_wait(&running_r, &waiter_status, NULL, COSYNC_FOREVER));
    atomic_store(&waiter_done, true);
    return NULL;
}

static int ends_with_flag(void *arg, void **result)
{
    (void)result;
    int rc = cosync_event_wait(&ev, COSYNC_FOREVER);
    *(bool *)arg = true;
    return rc;
}

static void *canceller(void *arg)
{
    (void)arg;
    CHECK_OK(cosync_remote_cancel(&running_r));
    return NULL;
}

/* A cancel whose call is still queued when the task ends: the record is
 * done only once that call has run (the loop runs calls from other
 * threads between its turns, and main's yields keep one turn going), and
 * the task's own end stands. A thread blocked in a wait meanwhile wakes
 * then. */
static int late_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    bool body_ended = false;
    atomic_store(&waiter_done, false);
    atomic_store(&waiter_ready, false);
    CHECK_OK(cosync_loop_spawn_threadsafe(cosync_loop_current(), &running_r, ends_with_flag,
                                          &body_ended, NULL));
    while (loop_stats().tasks_alive < 2)
        CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, blocked_waiter, NULL), 0);
    while (!atomic_load(&waiter_ready))
        sched_yield();
    /* Give the thread time to block in its wait, so that the wake-up at
     * the end is what ends it. Whatever the machine's speed, the outcome
     * is the same: a thread that comes later finds the record done. */
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    /* from another thread, so that the call waits for the turn's end (one
     * made here would run in turn, ahead of the task's wake-up) */
    pthread_t cancelling;
    CHECK_EQ(pthread_create(&cancelling, NULL, canceller, NULL), 0);
    CHECK_EQ(pthread_join(cancelling, NULL), 0);
    CHECK_OK(cosync_event_set(&ev)); /* it ends first */
    while (!body_ended)
        CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield()); /* its done callback runs */
    CHECK_OK(cosync_yield());
    CHECK(!cosync_remote_done(&running_r)); /* the cancel's call is still queued */
    while (!cosync_remote_done(&running_r))
        CHECK_OK(cosync_yield());
    while (!atomic_load(&waiter_done))
        CHECK_OK(cosync_yield());
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_OK(waiter_status);
    return 0;
}

TEST(cancel_that_comes_after_the_end)
{
    cosync_event_init(&ev);
    CHECK_OK(cosync_run_with(late_cancel_main, NULL, &virtual_clock));
    int status = 1;
    CHECK_OK(cosync_remote_wait(&running_r, &status, NULL, 0));
    CHECK_OK(status);
    CHECK_OK(cosync_remote_destroy(&running_r));
}

/* ------------------------------------------------------------------------
 * The loop's destruction
 * ---------------------------------------------------------------------- */

static int yields_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_yield();
}

/* A task started and left waiting, and a start still queued: the
 * destruction cancels the first and runs the second's start, whose task
 * is cancelled before it runs. */
TEST(loop_destruction_ends_them)
{
    body_ran = false;
    cosync_event_init(&ev);
    cosync_loop *loop = new_loop();
    cosync_remote waiting = {0}, queued = {0};
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &waiting, waits_on_ev, NULL, NULL));
    cosync_task m;
    spawn_and_run(loop, &m, yields_once, NULL);
    CHECK(!cosync_remote_done(&waiting));
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &queued, never_runs, NULL,
                                          &(cosync_task_opts){.name = "queued"}));
    CHECK_OK(cosync_loop_destroy(loop));
    int status = 0;
    CHECK_OK(cosync_remote_wait(&waiting, &status, NULL, 0));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_OK(cosync_remote_wait(&queued, &status, NULL, 0));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK(!body_ran);
    CHECK_OK(cosync_remote_destroy(&waiting));
    CHECK_OK(cosync_remote_destroy(&queued));
}

/* Waits on the event again after a cancel: nothing ever sets it. */
static int refuses_to_end(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_event_wait(&ev, COSYNC_FOREVER), COSYNC_ECANCELED);
    body_ran = true;
    return cosync_event_wait(&ev, COSYNC_FOREVER);
}

/* Yields until the start has spawned the remote task and it waits. */
static int until_it_waits(void *arg, void **result)
{
    (void)arg, (void)result;
    while (loop_stats().tasks_alive < 2)
        CHECK_OK(cosync_yield());
    return cosync_yield();
}

/* A task that never ends, which the destruction reports as a deadlock and
 * drops: the record ends with COSYNC_EDEADLK, and a thread blocked in a
 * wait for it wakes. */
TEST(loop_destruction_drops_a_task_that_never_ends)
{
    body_ran = false;
    cosync_event_init(&ev);
    atomic_store(&waiter_done, false);
    atomic_store(&waiter_ready, false);
    FILE *report = tmpfile();
    CHECK_NOTNULL(report);
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .report = report}));
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &running_r, refuses_to_end, NULL, NULL));
    cosync_task m;
    spawn_and_run(loop, &m, until_it_waits, NULL);
    CHECK(!body_ran);
    CHECK(!cosync_remote_done(&running_r));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, blocked_waiter, NULL), 0);
    while (!atomic_load(&waiter_ready))
        sched_yield();
    /* the thread blocks in its wait first, most likely: one that comes
     * later finds the record ended, with the same outcome */
    nanosleep(&(struct timespec){0, 20000000}, NULL);
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    CHECK(body_ran);            /* it was cancelled, and waited again */
    CHECK_GT(ftell(report), 0); /* the deadlock was reported */
    fclose(report);
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK(atomic_load(&waiter_done));
    CHECK_ERR(waiter_status, COSYNC_EDEADLK);
    CHECK(cosync_remote_done(&running_r));
    void *res = (void *)1;
    int status = 0;
    CHECK_OK(cosync_remote_wait(&running_r, &status, &res, 0));
    CHECK_ERR(status, COSYNC_EDEADLK);
    CHECK(res == NULL);
    CHECK_ERR(cosync_remote_cancel(&running_r), COSYNC_EALREADY);
    CHECK_OK(cosync_remote_destroy(&running_r));
}

/* ------------------------------------------------------------------------
 * Misuse and failures
 * ---------------------------------------------------------------------- */

TEST(misuse)
{
    cosync_loop *loop = new_loop();
    cosync_remote r = {0};
    CHECK_ERR(cosync_loop_spawn_threadsafe(NULL, &r, doubles, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_spawn_threadsafe(loop, NULL, doubles, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_spawn_threadsafe(loop, &r, NULL, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_wait(NULL, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_wait(&r, NULL, NULL, 0), COSYNC_EINVAL); /* never set up */
    CHECK_ERR(cosync_remote_cancel(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_cancel(&r), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_destroy(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_remote_destroy(&r), COSYNC_EINVAL);
    CHECK(!cosync_remote_done(NULL));
    CHECK(!cosync_remote_done(&r));
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &r, doubles, (void *)(intptr_t)4, NULL));
    cosync_remote copy = r; /* not the record the loop was given */
    CHECK_ERR(cosync_remote_wait(&copy, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    void *res = NULL;
    CHECK_OK(cosync_remote_wait(&r, NULL, &res, COSYNC_FOREVER));
    CHECK_EQ((intptr_t)res, 8);
    CHECK_OK(cosync_remote_destroy(&r));
    /* set up again once destroyed, as new */
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &r, doubles, (void *)(intptr_t)5, NULL));
    CHECK(!cosync_remote_done(&r));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    int status = 0;
    CHECK_OK(cosync_remote_wait(&r, &status, NULL, cosync_now() - 1)); /* done: no wait */
    CHECK_ERR(status, COSYNC_EPIPE);
    CHECK_OK(cosync_remote_destroy(&r));
    CHECK_OK(cosync_loop_spawn_threadsafe(loop, &r, doubles, (void *)(intptr_t)6, NULL));
    CHECK_OK(cosync_remote_cancel(&r)); /* not the last one's end */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_OK(cosync_remote_wait(&r, &status, NULL, 0));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_OK(cosync_remote_destroy(&r));
    end_loop(loop);
}

/* Each point that can fail, in turn: the record's set-up (its condition
 * variable), and in the loop the task's spawn and its stack. A failure in
 * the set-up leaves the record unused; one in the loop ends it with the
 * error as its status. Nothing leaks. */
TEST(failures_in_turn)
{
    long live = atomic_load(&cosync__mem_live);
    int failed_setup = 0, failed_in_loop = 0;
    for (long k = 0;; k++) {
        cosync_loop *loop = new_loop();
        cosync_remote r = {0};
        long before = cosync__fault_failures;
        cosync__fault_countdown = k;
        int rc = cosync_loop_spawn_threadsafe(loop, &r, doubles, (void *)(intptr_t)2, NULL);
        if (rc) {
            cosync__fault_countdown = -1;
            CHECK_ERR(rc, COSYNC_ENOMEM);
            CHECK_ERR(cosync_remote_destroy(&r), COSYNC_EINVAL);
            failed_setup++;
            end_loop(loop);
            continue;
        }
        CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
        cosync__fault_countdown = -1;
        int status = 1;
        void *res = NULL;
        CHECK_OK(cosync_remote_wait(&r, &status, &res, 0));
        CHECK_OK(cosync_remote_destroy(&r));
        end_loop(loop);
        if (cosync__fault_failures == before) {
            CHECK_OK(status);
            CHECK_EQ((intptr_t)res, 4);
            break;
        }
        CHECK_ERR(status, COSYNC_ENOMEM);
        failed_in_loop++;
    }
    CHECK_EQ(failed_setup, 1);
    CHECK_GE(failed_in_loop, 1);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
}

int main(void)
{
    RUN(tasks_started_and_waited_for_from_threads);
    RUN(cancel_before_the_start);
    RUN(cancel_while_it_runs);
    RUN(cancel_that_comes_after_the_end);
    RUN(loop_destruction_ends_them);
    RUN(loop_destruction_drops_a_task_that_never_ends);
    RUN(misuse);
    RUN(failures_in_turn);
    return 0;
}
