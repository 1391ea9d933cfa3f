/*
 * test_loop.c - the loop: cosync_run, init/run/stop/destroy, deadlock
 * reports, cosync_loop_dump, the clock, stats, error strings, many and
 * interleaved loops.
 *
 * Loops that involve time use the virtual clock; interleavings are asserted
 * with CHECKPOINT; reports are captured with open_memstream.
 */
/* ctest-timeout: 60 */
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "cosync.h"
#include "fault.h"

static const cosync_loop_opts vopts = {.virtual_clock = true};

static int ret_code(void *arg, void **result)
{
    (void)result;
    return (int)(intptr_t)arg;
}

static int sleep_secs(void *arg, void **result)
{
    (void)result;
    return cosync_sleep(COSYNC_SEC((intptr_t)arg));
}

static int wait_event_fn(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

/* ------------------------------------------------------------------------
 * cosync_run
 * ---------------------------------------------------------------------- */

static int run_main_value(void *arg, void **result)
{
    (void)result;
    CHECK_STREQ(cosync_task_name(cosync_task_current()), "main");
    CHECK_EQ(cosync_task_id(cosync_task_current()), 1);
    CHECK_NOTNULL(cosync_loop_current());
    CHECK_OK(cosync_yield());
    return (int)(intptr_t)arg;
}

/* Each allocation (and descriptor) cosync_run needs, failing in turn: it
 * returns the error, main never runs, nothing is left open. */
static int run_main_flag(void *arg, void **result)
{
    (void)result;
    *(bool *)arg = true;
    return 0;
}

TEST(cosync_run_returns_setup_errors)
{
    int fds = count_fds();
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        bool ran = false;
        long failures = cosync__fault_failures;
        cosync__fault_countdown = k;
        int rc = cosync_run(run_main_flag, &ran);
        cosync__fault_countdown = -1;
        if (cosync__fault_failures == failures) {
            CHECK_OK(rc);
            CHECK(ran);
            break;
        }
        CHECK_LT(rc, 0);
        CHECK(!ran);
        CHECK_EQ(count_fds(), fds);
    }
    CHECK_GE(k, 4); /* the loop, its epoll and eventfd, main's record, its stack */
}

TEST(cosync_run_returns_main_status)
{
    CHECK_OK(cosync_run(run_main_value, (void *)(intptr_t)0));
    CHECK_ERR(cosync_run(run_main_value, (void *)(intptr_t)-4242), -4242);
    CHECK_ERR(cosync_run(run_main_value, (void *)(intptr_t)COSYNC_ETIMEDOUT), COSYNC_ETIMEDOUT);
    CHECK_NULL(cosync_loop_current());
}

static cosync_event leftover_ev;
static int leftover_wait_rc, leftover_cleanup_yield_rc;
static bool leftover_cleaned;

static int leftover(void *arg, void **result)
{
    (void)arg, (void)result;
    leftover_wait_rc = cosync_event_wait(&leftover_ev, COSYNC_FOREVER);
    /* clean-up that suspends */
    leftover_cleanup_yield_rc = cosync_yield();
    leftover_cleaned = true;
    return leftover_wait_rc;
}

static int main_with_leftover(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, leftover, NULL, &(cosync_task_opts){.name = "leftover"}));
    CHECK_OK(cosync_yield()); /* it starts and blocks */
    CHECK(!leftover_cleaned);
    return 0;
}

TEST(cosync_run_cancels_leftover_tasks)
{
    cosync_event_init(&leftover_ev);
    leftover_wait_rc = 1;
    leftover_cleanup_yield_rc = 1;
    leftover_cleaned = false;
    CHECK_OK(cosync_run(main_with_leftover, NULL));
    CHECK(leftover_cleaned);
    CHECK_ERR(leftover_wait_rc, COSYNC_ECANCELED);
    CHECK_OK(leftover_cleanup_yield_rc); /* edge-triggered: delivered once */
}

static int main_deadlocks(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

/* The deadlock report of one blocked task, @task ("'name' (#id)"), that
 * waits on @what at @obj; into @buf, which is returned. */
static const char *one_blocked(char *buf, size_t size, const char *task, const char *what,
                               const void *obj)
{
    snprintf(buf, size,
             "cosync: deadlock: 1 task is blocked and nothing can wake it:\n"
             "  task %s waits on %s %p\n",
             task, what, obj);
    return buf;
}

TEST(cosync_run_deadlock_reported_on_stderr)
{
    static cosync_event ev;
    cosync_event_init(&ev);
    errcap cap;
    errcap_begin(&cap);
    int rc = cosync_run(main_deadlocks, &ev);
    const char *got = errcap_end(&cap);
    CHECK_ERR(rc, COSYNC_EDEADLK);
    char want[512];
    CHECK_STREQ(got, one_blocked(want, sizeof want, "'main' (#1)", "event", &ev));
}

/* cosync_run_with: the loop is made with the options given. An hour's
 * sleep returns with the clock exactly an hour on (the virtual clock; a
 * real one would keep the test waiting until its time limit); the deadlock
 * report goes to the options' stream, not stderr. */
static int run_with_sleeps_an_hour(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t before = cosync_now();
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    CHECK_EQ(cosync_now() - before, COSYNC_SEC(3600));
    return -4242;
}

TEST(cosync_run_with_uses_the_options)
{
    CHECK_ERR(
        cosync_run_with(run_with_sleeps_an_hour, NULL, &(cosync_loop_opts){.virtual_clock = true}),
        -4242);
    static cosync_event ev;
    cosync_event_init(&ev);
    capture c;
    errcap cap;
    errcap_begin(&cap);
    int rc =
        cosync_run_with(main_deadlocks, &ev,
                        &(cosync_loop_opts){.virtual_clock = true, .report = capture_open(&c)});
    const char *on_stderr = errcap_end(&cap);
    CHECK_ERR(rc, COSYNC_EDEADLK);
    CHECK_STREQ(on_stderr, "");
    char want[512];
    CHECK_STREQ(capture_text(&c), one_blocked(want, sizeof want, "'main' (#1)", "event", &ev));
    capture_free(&c);
    CHECK_NULL(cosync_loop_current());
}

/* NULL options are the defaults; a bad option is COSYNC_EINVAL, and main
 * never runs. */
TEST(cosync_run_with_checks_the_options)
{
    bool ran = false;
    CHECK_OK(cosync_run_with(run_main_flag, &ran, NULL));
    CHECK(ran);
    ran = false;
    CHECK_ERR(cosync_run_with(run_main_flag, &ran, &(cosync_loop_opts){.stack_size = 100}),
              COSYNC_EINVAL);
    CHECK(!ran);
    CHECK_ERR(cosync_run_with(run_main_flag, &ran,
                              &(cosync_loop_opts){.allocator = &(cosync_allocator){0}}),
              COSYNC_EINVAL);
    CHECK(!ran);
}

/* ------------------------------------------------------------------------
 * explicit loops
 * ---------------------------------------------------------------------- */

static int main_result(void *arg, void **result)
{
    *result = arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    return COSYNC_EOVERFLOW;
}

TEST(explicit_loop_init_spawn_run_destroy)
{
    counting c = {0};
    cosync_allocator a = {count_realloc, &c};
    cosync_loop_opts o = vopts;
    o.allocator = &a;
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &o));
    CHECK_NOTNULL(loop);
    CHECK_NULL(cosync_loop_current()); /* not running */
    cosync_task t;
    int x;
    CHECK_OK(cosync_loop_spawn(loop, &t, main_result, &x, NULL));
    int status = 0;
    void *res = NULL;
    CHECK_OK(cosync_loop_run(loop, t, &status, &res));
    CHECK_ERR(status, COSYNC_EOVERFLOW);
    CHECK(res == &x);
    CHECK_EQ(cosync_task_id(t), 0); /* collected */
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_records, 0);
    CHECK_EQ(st.tasks_alive, 0);
    /* NULL outs */
    spawn_and_run(loop, &t, main_result, &x);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(c.live, 0);
    CHECK_OK(cosync_loop_destroy(NULL));

    /* bad options */
    CHECK_ERR(cosync_loop_init(NULL, &vopts), COSYNC_EINVAL);
    o = vopts;
    o.stack_size = 100;
    CHECK_ERR(cosync_loop_init(&loop, &o), COSYNC_EINVAL);
    CHECK_NULL(loop);
    o.stack_size = SIZE_MAX;
    CHECK_ERR(cosync_loop_init(&loop, &o), COSYNC_EINVAL);
    CHECK_NULL(loop);
    CHECK_ERR(cosync_loop_run(NULL, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINVAL);
    /* the defaults */
    CHECK_OK(cosync_loop_init(&loop, NULL));
    spawn_and_run(loop, &t, nop, NULL);
    CHECK_OK(cosync_loop_destroy(loop));
}

TEST(run_without_main_runs_every_task)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    /* nothing to run */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_loop_spawn(loop, &t[i], sleep_secs, (void *)(intptr_t)(3 - i), NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, sleep_secs, (void *)(intptr_t)5, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, ret_code, (void *)(intptr_t)-99, NULL));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 0);
    CHECK_EQ(st.tasks_records, 3); /* finished, not collected */
    CHECK_EQ(st.timers, 0);
    for (int i = 0; i < 3; i++) {
        CHECK(cosync_task_done(t[i]));
        int status = 1;
        CHECK_OK(cosync_task_result(t[i], &status, NULL));
        CHECK_EQ(status, 0);
    }
    CHECK_OK(cosync_loop_destroy(loop)); /* frees the unjoined records */
}

/* ------------------------------------------------------------------------
 * cosync_loop_stop
 * ---------------------------------------------------------------------- */

static int stopper(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(0);
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECKPOINT(1); /* stop does not suspend */
    CHECK_OK(cosync_yield());
    CHECKPOINT(3);
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    return -7;
}

TEST(stop_from_a_task_and_run_again)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, stopper, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, t, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(2);
    CHECK_NULL(cosync_loop_current());
    CHECK(!cosync_task_done(t));
    CHECK_EQ(cosync_task_id(t), 1); /* not collected */
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 1);
    int status = 0;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECKPOINT(4);
    CHECK_EQ(status, -7);
    CHECKPOINTS_DONE(5);

    /* the same with every task (no main) */
    CHECKPOINT_RESET();
    CHECK_OK(cosync_loop_spawn(loop, NULL, stopper, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(2);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECKPOINT(4);
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_records, 0);
    CHECK_ERR(cosync_loop_stop(NULL), COSYNC_EINVAL);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A stop request is for one run: one made in the turn in which main
 * finishes does not outlive that run; one made before a run lets it run a
 * turn first (asyncio's loop.stop() before run_forever); a clean-up that
 * stops the loop does not stop cosync_loop_destroy. */
static int stop_and_finish(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    return 0;
}

static int stop_in_cleanup(void *arg, void **result)
{
    (void)result;
    int *cleaned = arg;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(100)), COSYNC_ECANCELED);
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* the clean-up goes on */
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    (*cleaned)++;
    return 0;
}

TEST(stop_request_lasts_one_run)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, stop_and_finish, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL)); /* main finished: not EINTR */
    CHECK_OK(cosync_loop_spawn(loop, &t, nop, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL)); /* not stopped by the old request */
    /* before a run: one turn, then EINTR */
    CHECKPOINT_RESET();
    CHECK_OK(cosync_loop_spawn(loop, &t, stopper, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, t, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(2); /* the stopper ran its first turn (0, 1) */
    int status = 0;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECKPOINT(4);
    CHECK_EQ(status, -7);
    /* a clean-up that stops the loop, twice */
    int cleaned = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_in_cleanup, &cleaned, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &t, nop, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK_EQ(cleaned, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(cleaned, 1);
}

/* A stop ends the run once the tasks ready when it was asked for have run,
 * each until it next suspends, as loop.stop() lets the current iteration
 * finish; a task that becomes ready after it (one the stopper wakes, or
 * the stopper itself after a yield) runs in the next run. */
static cosync_event stop_ev;

static int stop_wake_and_yield(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(0);
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECK_OK(cosync_event_set(&stop_ev)); /* after the stop */
    CHECK_OK(cosync_yield());
    CHECKPOINT(4);
    return 0;
}

static int wait_stop_ev(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&stop_ev, COSYNC_FOREVER));
    CHECKPOINT(3);
    return 0;
}

static int checkpoint_task(void *arg, void **result)
{
    (void)result;
    CHECKPOINT((int)(intptr_t)arg);
    return 0;
}

static int stop_and_yield_often(void *arg, void **result)
{
    (void)result;
    int *turns = arg;
    for (int i = 0; i < 100; i++) {
        ++*turns;
        CHECK_OK(cosync_loop_stop(cosync_loop_current()));
        int rc = cosync_yield();
        if (rc)
            return rc;
    }
    return 0;
}

TEST(stop_lets_the_tasks_ready_run_first)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_event_init(&stop_ev);
    CHECKPOINT_RESET();
    /* ready in this order: the waiter blocks, the stopper stops with the
     * third task ready, wakes the waiter and yields */
    CHECK_OK(cosync_loop_spawn(loop, NULL, wait_stop_ev, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_wake_and_yield, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, checkpoint_task, (void *)1, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(2);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_ready, 2); /* the waiter, then the stopper */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECKPOINTS_DONE(5);

    /* a main task ready behind the stopper finishes in the same turn: the
     * run returns as usual */
    CHECKPOINT_RESET();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_wake_and_yield, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &m, checkpoint_task, (void *)1, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_EQ(status, 0);
    CHECKPOINT(2);
    CHECKPOINT(3); /* (the event is set already: no waiter this time) */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECKPOINTS_DONE(5);

    /* tasks that keep asking cannot keep the turn going: each stop only
     * shortens it, so the second task's stop, with the first one ready
     * again behind it, does not let the first run again */
    int turns[2] = {0, 0};
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_and_yield_often, &turns[0], NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_and_yield_often, &turns[1], NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(turns[0], 1);
    CHECK_EQ(turns[1], 1);
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(turns[0], 2);
    CHECK_EQ(turns[1], 2);
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels both in their yields */
    CHECK_EQ(turns[0], 2);
}

/* The turn a stop cuts counts the tasks that run because others finished:
 * the stopper finishes, each task ready at the stop runs on from its yield
 * and finishes, and a task that the first of them wakes (its joiner) runs
 * in the next run, not in this turn. */
static cosync_task stop_joined;

static int yield_then_checkpoint(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_yield());
    CHECKPOINT((int)(intptr_t)arg);
    return 0;
}

static int join_then_checkpoint(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_join(stop_joined, NULL, NULL, COSYNC_FOREVER));
    CHECKPOINT((int)(intptr_t)arg);
    return 0;
}

TEST(stop_turn_counts_the_tasks_that_follow_a_finish)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECKPOINT_RESET();
    /* the two yield, the joiner blocks, then the stopper stops with the
     * two ready and finishes */
    CHECK_OK(cosync_loop_spawn(loop, &stop_joined, yield_then_checkpoint, (void *)0, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, yield_then_checkpoint, (void *)1, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, join_then_checkpoint, (void *)3, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_and_finish, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(2);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECKPOINTS_DONE(4);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A stop asked for before a run lets it run one turn of the tasks ready at
 * its start, each once, as loop.stop() before run_forever() runs one
 * iteration; not a whole budget's worth of their yields. */
static int yield_a_hundred_times(void *arg, void **result)
{
    (void)result;
    int *steps = arg;
    for (int i = 0; i < 100; i++) {
        ++*steps;
        int rc = cosync_yield();
        if (rc)
            return rc;
    }
    return 0;
}

TEST(stop_before_a_run_runs_each_ready_task_once)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    int steps[2] = {0, 0};
    CHECK_OK(cosync_loop_spawn(loop, NULL, yield_a_hundred_times, &steps[0], NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, yield_a_hundred_times, &steps[1], NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(steps[0], 1);
    CHECK_EQ(steps[1], 1);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(steps[0], 100);
    CHECK_EQ(steps[1], 100);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A stop in a run after one in which a stop was asked for lets every task
 * ready at the stop run, though they are more than the dispatches left in
 * the turn: the first stop cut that run's turn, not the next run's. */
enum { STOP_CROWD = 2 * 128 }; /* twice a turn's budget (COSYNC__BUDGET) */

static int spawn_crowd_and_stop(void *arg, void **result)
{
    (void)result;
    for (int i = 0; i < STOP_CROWD; i++)
        CHECK_OK(cosync_task_spawn(NULL, bump_counter, arg, NULL));
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    return 0;
}

TEST(a_stop_in_a_later_run_still_lets_every_ready_task_run)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_and_finish, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL)); /* all finished: not EINTR */
    int ran = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, spawn_crowd_and_stop, &ran, NULL));
    /* the crowd runs in the stop's turn, and then every task has finished */
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(ran, STOP_CROWD);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* The run returns once the tasks ready when main finished have run, as
 * asyncio finishes the iteration in which main is done: a task main
 * spawned just before it returned starts, and the close then cancels it
 * where it waits (asyncio.run's "started, then cancelled"). */
static int started_then_cancelled(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(1);
    CHECK_ERR(cosync_sleep(COSYNC_SEC(1)), COSYNC_ECANCELED);
    CHECKPOINT(3);
    return 0;
}

static int spawn_and_return(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, started_then_cancelled, NULL, NULL));
    CHECKPOINT(0);
    return 0;
}

static int bg_runs[2]; /* started, cancelled */

static int bg_counted(void *arg, void **result)
{
    (void)arg, (void)result;
    bg_runs[0]++;
    if (cosync_sleep(COSYNC_SEC(1)) == COSYNC_ECANCELED)
        bg_runs[1]++;
    return 0;
}

static int spawn_counted_and_return(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, bg_counted, NULL, NULL));
    return 0;
}

TEST(run_returns_after_the_tasks_ready_when_main_finished)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECKPOINT_RESET();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, spawn_and_return, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECKPOINT(2);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_EQ(st.timers, 1);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECKPOINTS_DONE(4);

    /* the same through cosync_run_with, which runs and closes the loop */
    bg_runs[0] = bg_runs[1] = 0;
    CHECK_OK(cosync_run_with(spawn_counted_and_return, NULL, &vopts));
    CHECK_EQ(bg_runs[0], 1);
    CHECK_EQ(bg_runs[1], 1);
}

/* A main that had finished before the run: the run still takes one turn,
 * as run_until_complete of a done future runs one iteration. A timer that
 * is due fires, and the tasks ready then run once each, up to their next
 * suspension; the rest waits for the next run. The real clock, so that a
 * timer set in the first run falls due between the runs: the test waits
 * (busily, for 2 ms) until it has. */
static int sleep_a_millisecond(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    ++*(int *)arg;
    return 0;
}

TEST(run_of_a_finished_main_takes_one_turn)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, NULL));
    cosync_task done, first;
    int woke = 0, steps = 0;
    CHECK_OK(cosync_loop_spawn(loop, &done, ret_code, (void *)(intptr_t)-77, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, sleep_a_millisecond, &woke, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &first, ret_code, (void *)(intptr_t)0, NULL));
    CHECK_OK(cosync_loop_run(loop, first, NULL, NULL)); /* one turn: all three ran */
    CHECK(cosync_task_done(done));
    CHECK_EQ(woke, 0);
    /* outside a run cosync_now() reads the clock the loop runs on */
    for (int64_t due = cosync_now() + COSYNC_MS(2); cosync_now() < due;)
        ;
    CHECK_OK(cosync_loop_spawn(loop, NULL, yield_a_hundred_times, &steps, NULL));
    int status = 0;
    CHECK_OK(cosync_loop_run(loop, done, &status, NULL));
    CHECK_EQ(status, -77);
    CHECK_EQ(woke, 1);
    CHECK_EQ(steps, 1);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(steps, 100);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A timer that came due between two runs fires at the start of the next,
 * behind the tasks already ready: asyncio's first iteration moves due
 * timers to its ready queue, so the sleeper runs after T's and M's first
 * steps and before their second. (Real clock: the run is stopped before
 * the sleep ends, and the loop's clock is watched until it has.) */
static char between_log[8];
static int between_n;
static int64_t between_due;

static int log_step_twice(void *arg, void **result)
{
    (void)result;
    char name = (char)(intptr_t)arg;
    between_log[between_n++] = name;
    CHECK_OK(cosync_yield());
    between_log[between_n++] = (char)(name + 1);
    return 0;
}

static int sleep_then_log(void *arg, void **result)
{
    (void)arg, (void)result;
    between_due = cosync_deadline_after(COSYNC_MS(5));
    CHECK_OK(cosync_sleep_until(between_due));
    between_log[between_n++] = 'S';
    return 0;
}

static int stop_at_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_loop_stop(cosync_loop_current());
}

TEST(a_timer_due_between_runs_fires_at_the_next_runs_start)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, NULL));
    between_n = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, sleep_then_log, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_at_once, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(between_n, 0); /* S sleeps */
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    /* on a machine so slow (valgrind) that S's 5 ms passed within the run,
     * the loop's look at its timers after the stop made it ready already */
    bool fired_in_run = st.tasks_ready == 1;
    while (cosync_loop_now(loop) < between_due)
        ;
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, NULL, log_step_twice, (void *)(intptr_t)'T', NULL));
    CHECK_OK(cosync_loop_spawn(loop, &m, log_step_twice, (void *)(intptr_t)'M', NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_EQ(between_n, 5);
    between_log[between_n] = '\0';
    /* T, M, the sleeper, then T's and M's second steps (the sleeper
     * first if it was ready before T and M were spawned) */
    CHECK_STREQ(between_log, fired_in_run ? "STMUN" : "TMSUN");
    CHECK_OK(cosync_loop_destroy(loop));
}

/* cosync_loop_now reads a loop's clock from outside its runs: a virtual
 * clock stands where the last run left it (cosync_now() would read the
 * machine's), a real one is CLOCK_MONOTONIC. */
static int sleep_a_second(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_SEC(1));
}

TEST(loop_now_reads_the_loops_clock_between_runs)
{
    CHECK_ERR(cosync_loop_now(NULL), COSYNC_EINVAL);
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}));
    CHECK_EQ(cosync_loop_now(loop), COSYNC_SEC(1)); /* where a virtual clock starts */
    CHECK_OK(cosync_loop_spawn(loop, NULL, sleep_a_second, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(cosync_loop_now(loop), COSYNC_SEC(2));
    CHECK_OK(cosync_loop_destroy(loop));

    CHECK_OK(cosync_loop_init(&loop, NULL));
    int64_t before = cosync_now();
    int64_t t = cosync_loop_now(loop);
    CHECK_GE(t, before);
    CHECK_LE(t, cosync_now());
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * A task that only yields still lets the loop take its turn
 * ---------------------------------------------------------------------- */

#define SPIN_YIELDS 1280 /* ten times the scheduler's budget of 128 */

static int spinner(void *arg, void **result)
{
    (void)result;
    uint64_t *loop_turns = arg;
    cosync_loop *loop = cosync_loop_current();
    cosync_loop_stats before, after;
    CHECK_OK(cosync_loop_get_stats(loop, &before));
    for (int i = 0; i < SPIN_YIELDS; i++)
        CHECK_OK(cosync_yield());
    CHECK_OK(cosync_loop_get_stats(loop, &after));
    /* with nothing else ready a yield does not switch, except to hand the
     * loop its turn (there and back) once per budget */
    *loop_turns = (after.switches - before.switches) / 2;
    return 0;
}

TEST(lone_yielder_gives_the_loop_its_turns)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    uint64_t turns = 0;
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, spinner, &turns, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK(turns >= SPIN_YIELDS / 128 - 1);
    CHECK(turns <= SPIN_YIELDS / 128 + 1);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * misuse of run
 * ---------------------------------------------------------------------- */

typedef struct inside_args {
    cosync_loop *other;
    cosync_task other_task;
} inside_args;

static int main_run_inside(void *arg, void **result)
{
    (void)result;
    inside_args *ia = arg;
    cosync_loop *me = cosync_loop_current();
    CHECK_NOTNULL(me);
    CHECK_ERR(cosync_loop_run(me, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_run(me, cosync_task_current(), NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_run(ia->other, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_run(ia->other, ia->other_task, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_destroy(me), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_destroy(ia->other), COSYNC_EPERM);
    CHECK_ERR(cosync_run(nop, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_run_with(nop, NULL, &(cosync_loop_opts){.virtual_clock = true}), COSYNC_EPERM);
    /* spawning on another loop from inside a task is allowed */
    CHECK_OK(cosync_loop_spawn(ia->other, NULL, nop, NULL, NULL));
    return 0;
}

TEST(run_from_inside_a_task_is_eperm)
{
    inside_args ia;
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECK_OK(cosync_loop_init(&ia.other, &vopts));
    CHECK_OK(cosync_loop_spawn(ia.other, &ia.other_task, nop, NULL, NULL));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, main_run_inside, &ia, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_OK(status);
    /* the other loop is intact and runs its two tasks */
    CHECK_OK(cosync_loop_run(ia.other, ia.other_task, NULL, NULL));
    CHECK_OK(cosync_loop_run(ia.other, COSYNC_TASK_NONE, NULL, NULL));
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(ia.other, &st));
    CHECK_EQ(st.tasks_records, 0);
    CHECK_OK(cosync_loop_destroy(ia.other));
    CHECK_OK(cosync_loop_destroy(loop));
}

TEST(run_with_stale_or_foreign_main)
{
    cosync_loop *a, *b;
    CHECK_OK(cosync_loop_init(&a, &vopts));
    CHECK_OK(cosync_loop_init(&b, &vopts));
    cosync_task ta, tb;
    CHECK_OK(cosync_loop_spawn(a, &ta, nop, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(b, &tb, nop, NULL, NULL));
    CHECK_ERR(cosync_loop_run(a, tb, NULL, NULL), COSYNC_EPERM); /* foreign */
    CHECK_ERR(cosync_loop_run(b, ta, NULL, NULL), COSYNC_EPERM);
    CHECK_OK(cosync_loop_run(a, ta, NULL, NULL));
    CHECK_ERR(cosync_loop_run(a, ta, NULL, NULL), COSYNC_ESRCH); /* stale */
    CHECK_ERR(cosync_loop_run(b, ta, NULL, NULL), COSYNC_ESRCH);
    /* a made-up handle with a wrong id */
    cosync_task forged = tb;
    forged.id += 1000;
    CHECK_ERR(cosync_loop_run(b, forged, NULL, NULL), COSYNC_ESRCH);
    CHECK_OK(cosync_loop_run(b, tb, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(a));
    CHECK_OK(cosync_loop_destroy(b));
}

/* The task cosync_loop_run waits on is being collected by the loop: no
 * other task may detach it or join it (as for a task with a joiner). */
static cosync_task run_main_handle;
static int helper_rc;

static int helper_detach_main(void *arg, void **result)
{
    (void)arg, (void)result;
    helper_rc = cosync_task_detach(run_main_handle);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    /* a spawn that may reuse the main task's record */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, ret_code, (void *)(intptr_t)-1234, NULL));
    CHECK_OK(cosync_yield());
    return 0;
}

static int helper_join_main(void *arg, void **result)
{
    (void)arg, (void)result;
    helper_rc = cosync_task_join(run_main_handle, NULL, NULL, COSYNC_FOREVER);
    return 0;
}

static int main_with_helper(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_spawn(NULL, (cosync_task_fn)arg, NULL, NULL));
    CHECK_OK(cosync_yield());
    return -55;
}

static void run_main_with_helper(cosync_task_fn helper, size_t records_left)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECK_OK(cosync_loop_spawn(loop, &run_main_handle, main_with_helper, (void *)helper, NULL));
    helper_rc = 1;
    int status = 0;
    CHECK_OK(cosync_loop_run(loop, run_main_handle, &status, NULL));
    CHECK_ERR(helper_rc, COSYNC_EBUSY);
    CHECK_EQ(status, -55);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_records, records_left); /* the helper's unjoined spawn, if any */
    CHECK_OK(cosync_loop_destroy(loop));
}

/* The run collects its main task: detaching it meanwhile is refused
 * (once a bug: the record was freed under the run). */
TEST(detach_main_during_run_is_ebusy)
{
    run_main_with_helper(helper_detach_main, 1);
}

/* The run collects its main task: joining it meanwhile is refused (once a
 * bug: both collected the record, which was freed twice). */
TEST(join_main_during_run_is_ebusy)
{
    run_main_with_helper(helper_join_main, 0);
}

/* ------------------------------------------------------------------------
 * destroy with live tasks
 * ---------------------------------------------------------------------- */

static cosync_event destroy_ev;
static cosync_future destroy_fut;
static int a_wait_rc, a_sleep_rc, b_wait_rc, b_fut_rc;
static bool a_done, b_done, c_ran;
static int64_t a_cleanup_time;

static int victim_a(void *arg, void **result)
{
    (void)arg, (void)result;
    a_wait_rc = cosync_event_wait(&destroy_ev, COSYNC_FOREVER);
    int64_t t0 = cosync_now();
    a_sleep_rc = cosync_sleep(COSYNC_SEC(2)); /* clean-up that suspends */
    a_cleanup_time = cosync_now() - t0;
    a_done = true;
    return a_wait_rc;
}

static int victim_b(void *arg, void **result)
{
    (void)arg, (void)result;
    b_wait_rc = cosync_sleep(COSYNC_SEC(100));
    b_fut_rc = cosync_future_wait(&destroy_fut, cosync_deadline_after(COSYNC_SEC(1)));
    b_done = true;
    return 0;
}

static int victim_c(void *arg, void **result)
{
    (void)arg, (void)result;
    c_ran = true;
    return 0;
}

static int main_leave_victims(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task a;
    CHECK_OK(cosync_task_spawn(&a, victim_a, NULL, NULL)); /* joinable, never joined */
    CHECK_OK(cosync_task_spawn(NULL, victim_b, NULL, NULL));
    CHECK_OK(cosync_yield());
    return 0;
}

TEST(destroy_cancels_live_tasks)
{
    cosync_event_init(&destroy_ev);
    cosync_future_init(&destroy_fut);
    a_wait_rc = a_sleep_rc = b_wait_rc = b_fut_rc = 1;
    a_done = b_done = c_ran = false;
    counting c = {0};
    cosync_allocator al = {count_realloc, &c};
    cosync_loop_opts o = vopts;
    o.allocator = &al;
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &o));
    cosync_task t;
    spawn_and_run(loop, &t, main_leave_victims, NULL);
    CHECK_OK(cosync_loop_spawn(loop, NULL, victim_c, NULL, NULL)); /* never started */
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 3);
    CHECK(!a_done && !b_done);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK(a_done);
    CHECK_ERR(a_wait_rc, COSYNC_ECANCELED);
    CHECK_OK(a_sleep_rc);
    CHECK_EQ(a_cleanup_time, COSYNC_SEC(2));
    CHECK(b_done);
    CHECK_ERR(b_wait_rc, COSYNC_ECANCELED);
    CHECK_ERR(b_fut_rc, COSYNC_ETIMEDOUT);
    CHECK(!c_ran);
    CHECK_EQ(c.live, 0);
}

static cosync_future stuck_fut;

static int stuck(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_event_wait(&destroy_ev, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_future_wait(&stuck_fut, COSYNC_FOREVER)); /* never completes */
    CHECK(false);
    return 0;
}

static int main_leave_stuck(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, stuck, NULL, &(cosync_task_opts){.name = "stuck"}));
    CHECK_OK(cosync_yield());
    return 0;
}

TEST(destroy_drops_tasks_that_deadlock_in_cleanup)
{
    cosync_event_init(&destroy_ev);
    cosync_future_init(&stuck_fut);
    counting c = {0};
    cosync_allocator al = {count_realloc, &c};
    capture cap;
    cosync_loop *loop = report_loop(&cap, &al);
    cosync_task t;
    spawn_and_run(loop, &t, main_leave_stuck, NULL);
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    CHECK_EQ(c.live, 0);
    char want[256];
    CHECK_STREQ(capture_text(&cap),
                one_blocked(want, sizeof want, "'stuck' (#2)", "future", &stuck_fut));
    capture_free(&cap);
}

/* Tasks that a clean-up spawns during destroy run (a helper the clean-up
 * joins finishes its work), but one left running is cancelled in the next
 * round; and a clean-up that waits for a task that waits forever does not
 * deadlock the close: that task is cancelled too. */
typedef struct close_helper {
    int64_t sleep;
    cosync_event *forever; /* wait on it instead of sleeping */
    int rc;
    int64_t woke_at;
} close_helper;

static close_helper joined_h, left_h, stuck_h;
static cosync_event never_set;
static int cleaner_rc;
static int64_t close_start;

static int helper_fn(void *arg, void **result)
{
    (void)result;
    close_helper *h = arg;
    h->rc = h->forever ? cosync_event_wait(h->forever, COSYNC_FOREVER) : cosync_sleep(h->sleep);
    h->woke_at = cosync_now();
    return 0;
}

/* arg NULL: joins a short helper and leaves a long one running;
 * else: joins a helper that waits forever */
static int cleaner(void *arg, void **result)
{
    (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(100)), COSYNC_ECANCELED);
    cosync_task h;
    if (!arg) {
        CHECK_OK(cosync_task_spawn(&h, helper_fn, &joined_h, NULL));
        CHECK_OK(cosync_task_spawn(NULL, helper_fn, &left_h, NULL));
    } else {
        CHECK_OK(cosync_task_spawn(&h, helper_fn, &stuck_h, NULL));
    }
    cleaner_rc = cosync_task_join(h, NULL, NULL, COSYNC_FOREVER);
    return 0;
}

static int main_leave_cleaner(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_spawn(NULL, cleaner, arg, NULL));
    CHECK_OK(cosync_yield());
    close_start = cosync_now(); /* the close starts at this instant */
    return 0;
}

TEST(destroy_cancels_what_clean_ups_leave_running)
{
    cosync_event_init(&never_set);
    joined_h = (close_helper){.sleep = COSYNC_MS(5), .rc = 1};
    left_h = (close_helper){.sleep = COSYNC_SEC(1000), .rc = 1};
    stuck_h = (close_helper){.forever = &never_set, .rc = 1};
    for (int stuck_case = 0; stuck_case < 2; stuck_case++) {
        cleaner_rc = 1;
        capture cap;
        cosync_loop *loop = report_loop(&cap, NULL);
        cosync_task t;
        spawn_and_run(loop, &t, main_leave_cleaner, stuck_case ? &never_set : NULL);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_OK(cleaner_rc);
        if (!stuck_case) {
            CHECK_OK(joined_h.rc);
            CHECK_EQ(joined_h.woke_at, close_start + COSYNC_MS(5));
            CHECK_ERR(left_h.rc, COSYNC_ECANCELED);
            CHECK_EQ(left_h.woke_at, close_start + COSYNC_MS(5)); /* not 1000 s later */
        } else {
            CHECK_ERR(stuck_h.rc, COSYNC_ECANCELED);
            CHECK_EQ(stuck_h.woke_at, close_start);
        }
        CHECK_STREQ(capture_text(&cap), ""); /* no deadlock reported */
        capture_free(&cap);
    }
}

/* A helper that a clean-up spawns and leaves runs before the close moves
 * on: the round ends once the tasks ready when its last cancelled task
 * finished have run, so the helper starts, and finishes here. */
static int cleanup_helper_runs;

static int spawn_helper_in_cleanup(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_spawn(NULL, bump_counter, &cleanup_helper_runs, NULL));
    return rc;
}

TEST(destroy_runs_the_helpers_clean_ups_spawn)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cleanup_helper_runs = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, spawn_helper_in_cleanup, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(cleanup_helper_runs, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(cleanup_helper_runs, 1);
}

/* The first round cancels nothing that the clean-ups' own helpers spawn:
 * a helper that a clean-up joins may spawn and join a helper of its own,
 * which runs its body and hands its result back up. */
static int nested_helper_runs;

static int nested_helper(void *arg, void **result)
{
    (void)arg;
    nested_helper_runs++;
    *result = (void *)(intptr_t)7;
    return 0;
}

static int helper_joining_a_helper(void *arg, void **result)
{
    (void)arg;
    cosync_task g;
    void *value = NULL;
    int status = 1;
    CHECK_OK(cosync_task_spawn(&g, nested_helper, NULL, NULL));
    CHECK_OK(cosync_task_join(g, &status, &value, COSYNC_FOREVER));
    CHECK_OK(status);
    *result = value;
    return 0;
}

static int cleanup_joining_a_helper(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    cosync_task h;
    void *value = NULL;
    int status = 1;
    CHECK_OK(cosync_task_spawn(&h, helper_joining_a_helper, NULL, NULL));
    CHECK_OK(cosync_task_join(h, &status, &value, COSYNC_FOREVER));
    CHECK_OK(status);
    CHECK_EQ((intptr_t)value, 7);
    return rc;
}

TEST(destroy_runs_what_a_clean_ups_helper_spawns_in_the_first_round)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    nested_helper_runs = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, cleanup_joining_a_helper, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(nested_helper_runs, 1);
}

/* A clean-up that spawns a copy of itself (and returns, or yields first)
 * cannot keep the close going: the copy the first round's clean-up spawned
 * runs and is cancelled in the second round, and the copy its clean-up
 * spawns then is cancelled before it starts. */
static int respawn_started;

static int respawner(void *arg, void **result)
{
    (void)result;
    respawn_started++;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    cosync_task next;
    CHECK_OK(cosync_task_spawn(&next, respawner, arg, NULL));
    CHECK_OK(cosync_task_detach(next));
    if (arg) /* yield first: the copy starts while this clean-up runs */
        CHECK_OK(cosync_yield());
    return rc;
}

/* But a task alive before the close whose clean-up goes on into the second
 * round (it waited for a helper that only that round cancels) may still
 * use helpers there: only tasks spawned during the close are limited. */
static cosync_event never_round1;
static int late_helper_ran;

static int wait_never(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&never_round1, COSYNC_FOREVER);
}

static int cleanup_into_round_two(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    cosync_task h;
    int st = 0;
    CHECK_OK(cosync_task_spawn(&h, wait_never, NULL, NULL)); /* stuck until round 2 */
    CHECK_OK(cosync_task_join(h, &st, NULL, COSYNC_FOREVER));
    CHECK_ERR(st, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_spawn(&h, bump_counter, &late_helper_ran, NULL)); /* in round 2 */
    CHECK_OK(cosync_task_join(h, &st, NULL, COSYNC_FOREVER));
    CHECK_EQ(st, 0);
    return rc;
}

TEST(destroy_lets_a_clean_up_in_its_second_round_use_helpers)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_event_init(&never_round1);
    late_helper_ran = 0;
    CHECK_OK(cosync_loop_spawn(loop, NULL, cleanup_into_round_two, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(late_helper_ran, 1);
}

TEST(destroy_ends_though_clean_ups_respawn_themselves)
{
    for (intptr_t yield_first = 0; yield_first < 2; yield_first++) {
        cosync_loop *loop;
        CHECK_OK(cosync_loop_init(&loop, &vopts));
        respawn_started = 0;
        CHECK_OK(cosync_loop_spawn(loop, NULL, respawner, (void *)yield_first, NULL));
        CHECK_OK(cosync_loop_stop(loop));
        CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
        CHECK_EQ(respawn_started, 1);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(respawn_started, 2); /* the first copy ran; its own never did */
    }
}

/* ------------------------------------------------------------------------
 * deadlock reports
 * ---------------------------------------------------------------------- */

static cosync_future dl_fut;

static int dl_waiter(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_future_wait(&dl_fut, COSYNC_FOREVER));
    return cosync_future_result(&dl_fut, result);
}

static int dl_main(void *arg, void **result)
{
    (void)arg;
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, dl_waiter, NULL, &(cosync_task_opts){.name = "waiter"}));
    int status = 1;
    CHECK_OK(cosync_task_join(w, &status, result, COSYNC_FOREVER));
    return status;
}

TEST(deadlock_report)
{
    cosync_future_init(&dl_fut);
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, dl_main, NULL, "main", &m);
    CHECK_NULL(cosync_loop_current());
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 2 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#1) waits on join of task 'waiter' (#2)\n"
             "  task 'waiter' (#2) waits on future %p\n",
             (void *)&dl_fut);
    CHECK_STREQ(capture_text(&cap), want);
    /* the loop can run again: complete the future from outside */
    CHECK(!cosync_task_done(m));
    int x;
    CHECK_OK(cosync_future_set_result(&dl_fut, &x));
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_loop_run(loop, m, &status, &res));
    CHECK_OK(status);
    CHECK(res == &x);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_STREQ(capture_text(&cap), want); /* nothing more was reported */
    capture_free(&cap);
}

TEST(deadlock_without_main)
{
    static cosync_event ev;
    cosync_event_init(&ev);
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    CHECK_OK(cosync_loop_spawn(loop, NULL, sleep_secs, (void *)(intptr_t)3, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, wait_event_fn, &ev, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EDEADLK);
    char want[256];
    CHECK_STREQ(capture_text(&cap), one_blocked(want, sizeof want, "'task-2' (#2)", "event", &ev));
    capture_free(&cap);
    CHECK_OK(cosync_event_set(&ev));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
}

static cosync_future late_fut;

static int late_setter(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_SEC(10)));
    CHECK_OK(cosync_future_set_result(&late_fut, NULL));
    return 0;
}

static int main_blocked_with_deadline(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_future never;
    cosync_future_init(&never);
    int64_t t0 = cosync_now();
    /* only a deadline can end this wait: not a deadlock */
    CHECK_ERR(cosync_future_wait(&never, t0 + COSYNC_SEC(3600)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(3600));
    /* blocked forever, but another task has a timer: not a deadlock */
    cosync_future_init(&late_fut);
    CHECK_OK(cosync_task_spawn(NULL, late_setter, NULL, NULL));
    CHECK_OK(cosync_future_wait(&late_fut, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(3610));
    return 0;
}

TEST(blocked_with_deadline_is_not_deadlock)
{
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, main_blocked_with_deadline, NULL, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_OK(status);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_STREQ(capture_text(&cap), "");
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * cosync_loop_dump
 * ---------------------------------------------------------------------- */

static cosync_event dump_ev;
static bool dump_yielder_stop;

static int dump_timed(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&dump_ev, cosync_deadline_after(COSYNC_SEC(50)));
}

static int dump_forever(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep_until(COSYNC_FOREVER);
}

static int dump_yielder(void *arg, void **result)
{
    (void)arg, (void)result;
    while (!dump_yielder_stop)
        CHECK_OK(cosync_yield());
    return 0;
}

static int main_dump(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task blocker, sleeper, timed, forever, yielder, finisher, fresh;
    CHECK_OK(cosync_task_spawn(&blocker, wait_event_fn, &dump_ev,
                               &(cosync_task_opts){.name = "blocker"}));
    CHECK_OK(cosync_task_spawn(&sleeper, sleep_secs, (void *)(intptr_t)100,
                               &(cosync_task_opts){.name = "sleeper"}));
    CHECK_OK(cosync_task_spawn(&timed, dump_timed, NULL, &(cosync_task_opts){.name = "timed"}));
    CHECK_OK(cosync_task_spawn(&forever, dump_forever, NULL, NULL));
    CHECK_OK(
        cosync_task_spawn(&yielder, dump_yielder, NULL, &(cosync_task_opts){.name = "yielder"}));
    CHECK_OK(cosync_task_spawn(&finisher, nop, NULL, &(cosync_task_opts){.name = "finisher"}));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_spawn(&fresh, nop, NULL, &(cosync_task_opts){.name = "fresh"}));

    capture cap;
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(cosync_loop_current(), cap.f), 7);
    char want[1024];
    snprintf(want, sizeof want,
             "  task 'main' (#1) is running\n"
             "  task 'blocker' (#2) waits on event %p\n"
             "  task 'sleeper' (#3) waits on sleep (with a deadline)\n"
             "  task 'timed' (#4) waits on event %p (with a deadline)\n"
             "  task 'task-5' (#5) waits on sleep\n"
             "  task 'yielder' (#6) is ready\n"
             "  task 'fresh' (#8) is not started\n",
             (void *)&dump_ev, (void *)&dump_ev);
    CHECK_STREQ(capture_text(&cap), want);
    capture_free(&cap);
    CHECK_ERR(cosync_loop_dump(NULL, stdout), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_dump(cosync_loop_current(), NULL), COSYNC_EINVAL);

    /* wind down */
    CHECK_OK(cosync_event_set(&dump_ev));
    CHECK_OK(cosync_task_cancel(sleeper));
    CHECK_OK(cosync_task_cancel(forever));
    dump_yielder_stop = true;
    join_ok(blocker);
    join_expect(sleeper, COSYNC_ECANCELED);
    join_ok(timed);
    join_expect(forever, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_join(yielder, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_task_join(finisher, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_task_join(fresh, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(loop_dump_states)
{
    cosync_event_init(&dump_ev);
    dump_yielder_stop = false;
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, main_dump, NULL, &(cosync_task_opts){.name = "main"}));
    /* from outside, before running: one task not started */
    capture cap;
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(loop, cap.f), 1);
    CHECK_STREQ(capture_text(&cap), "  task 'main' (#1) is not started\n");
    capture_free(&cap);
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_OK(status);
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(loop, cap.f), 0);
    CHECK_STREQ(capture_text(&cap), "");
    capture_free(&cap);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A task sees itself as running in the dump however it came to run: just
 * started, resumed by another task's suspension, and resumed at once by
 * its own yield when nothing else was ready (a yield with a cancellation
 * pending, which suspends even then). */
static void check_dumped_running(const char *name)
{
    capture cap;
    capture_open(&cap);
    CHECK_GE(cosync_loop_dump(cosync_loop_current(), cap.f), 1);
    char want[96];
    snprintf(want, sizeof want, "  task '%s' (#%llu) is running\n", name,
             (unsigned long long)cosync_task_id(cosync_task_current()));
    CHECK_NOTNULL(strstr(capture_text(&cap), want));
    capture_free(&cap);
}

static int dump_self_child(void *arg, void **result)
{
    (void)arg, (void)result;
    check_dumped_running("child"); /* started by main's suspension */
    return cosync_yield();
}

static int dump_self_main(void *arg, void **result)
{
    (void)arg, (void)result;
    check_dumped_running("main"); /* started by the loop */
    cosync_task child;
    CHECK_OK(
        cosync_task_spawn(&child, dump_self_child, NULL, &(cosync_task_opts){.name = "child"}));
    CHECK_OK(cosync_yield()); /* the child starts, and its yield resumes main */
    check_dumped_running("main");
    join_ok(child);
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED); /* nothing else ready: back at once */
    check_dumped_running("main");
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    return 0;
}

TEST(loop_dump_shows_the_current_task_running_however_it_came_to_run)
{
    run_main_ok(dump_self_main, NULL);
}

/* asyncio.all_tasks(): the unfinished tasks, the caller included, in
 * spawn order, though records are reused out of order; not the finished
 * ones (joined or not); fresh and detached ones too. */
static int wait_forever(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep_until(COSYNC_FOREVER);
}

static int main_all_tasks(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task me = cosync_task_current(), a, b, c, d, got[8];
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&b, wait_forever, NULL, NULL));
    join_ok(a); /* a's record goes back to the free list */
    CHECK_OK(cosync_task_spawn(&c, wait_forever, NULL, NULL));
    CHECK(c.rec == a.rec); /* reused: spawned after b, before it in memory */
    CHECK_OK(cosync_task_spawn(&d, nop, NULL, NULL));
    cosync_task fresh;
    CHECK_OK(cosync_task_spawn(&fresh, wait_forever, NULL, NULL));
    CHECK_OK(cosync_task_detach(fresh));
    CHECK_OK(cosync_yield()); /* b, c wait; d finishes, unjoined; fresh waits */
    CHECK(cosync_task_done(d));
    cosync_task fresh2;
    CHECK_OK(cosync_task_spawn(&fresh2, nop, NULL, NULL)); /* not started */

    CHECK_EQ(cosync_loop_all_tasks(NULL, NULL, 0), 5);
    CHECK_EQ(cosync_loop_all_tasks(cosync_loop_current(), got, 8), 5);
    cosync_task want[5] = {me, b, c, fresh, fresh2};
    for (int i = 0; i < 5; i++) {
        CHECK(got[i].rec == want[i].rec);
        CHECK_EQ(got[i].id, want[i].id);
    }
    /* too little room: the count, and that many distinct live handles */
    cosync_task two[2] = {COSYNC_TASK_NONE, COSYNC_TASK_NONE};
    CHECK_EQ(cosync_loop_all_tasks(NULL, two, 2), 5);
    CHECK(two[0].id < two[1].id);
    for (int i = 0; i < 2; i++)
        CHECK(!cosync_task_done(two[i]) && cosync_task_name(two[i]) != NULL);
    CHECK_ERR(cosync_loop_all_tasks(NULL, NULL, 1), COSYNC_EINVAL);

    /* the shutdown of asyncio programs: cancel every other task, wait */
    int n = cosync_loop_all_tasks(NULL, got, 8);
    CHECK_EQ(n, 5);
    for (int i = 0; i < n; i++)
        if (got[i].id != me.id)
            CHECK_OK(cosync_task_cancel(got[i]));
    for (int i = 0; i < n; i++)
        if (got[i].id != me.id && got[i].id != fresh.id)
            CHECK_OK(cosync_task_wait(got[i], NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_yield()); /* the detached one finishes and frees itself */
    CHECK_EQ(cosync_loop_all_tasks(NULL, got, 8), 1);
    CHECK_EQ(got[0].id, me.id);
    join_expect(b, COSYNC_ECANCELED);
    join_expect(c, COSYNC_ECANCELED);
    join_ok(d);
    join_expect(fresh2, COSYNC_ECANCELED); /* cancelled before it ran */
    return 0;
}

TEST(all_tasks_lists_the_unfinished_tasks_in_spawn_order)
{
    CHECK_ERR(cosync_loop_all_tasks(NULL, NULL, 0), COSYNC_EPERM); /* no running loop */
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task m, got[2];
    CHECK_OK(cosync_loop_spawn(loop, &m, main_all_tasks, NULL, NULL));
    CHECK_EQ(cosync_loop_all_tasks(loop, got, 2), 1); /* from outside, before the run */
    CHECK_EQ(got[0].id, m.id);
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_EQ(cosync_loop_all_tasks(loop, got, 2), 0);
    CHECK_OK(cosync_loop_destroy(loop));
}

TEST(loop_dump_many_tasks)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    for (int i = 0; i < 250; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, nop, NULL, NULL));
    capture cap;
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(loop, cap.f), 250);
    const char *text = capture_text(&cap);
    CHECK_EQ(count_lines(text), 201);
    CHECK(strstr(text, "  task 'task-200' (#200) is not started\n") != NULL);
    CHECK(strstr(text, "task-201") == NULL);
    const char *tail = "  ... and 50 more\n";
    CHECK_STREQ(text + strlen(text) - strlen(tail), tail);
    capture_free(&cap);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));

    /* exactly as many as are listed: every one, and no "and 0 more" */
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    for (int i = 0; i < 200; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, nop, NULL, NULL));
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(loop, cap.f), 200);
    text = capture_text(&cap);
    CHECK_EQ(count_lines(text), 200);
    CHECK(strstr(text, "more") == NULL);
    capture_free(&cap);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
}

/*
 * A deadlock report cut short after 200 tasks still says what the main
 * task waits on: it comes first, however many tasks were spawned before
 * it. Here a holder takes a lock and sleeps for ever, 250 tasks spawned
 * before main queue on the lock, then main does.
 */
static cosync_lock cut_lock;

static int cut_holder(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_lock_acquire(&cut_lock, COSYNC_FOREVER));
    return cosync_sleep_until(COSYNC_FOREVER);
}

static int cut_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_lock_acquire(&cut_lock, COSYNC_FOREVER);
}

TEST(deadlock_report_cut_short_names_the_main_task_first)
{
    cosync_lock_init(&cut_lock);
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    CHECK_OK(
        cosync_loop_spawn(loop, NULL, cut_holder, NULL, &(cosync_task_opts){.name = "holder"}));
    for (int i = 0; i < 250; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, cut_waiter, NULL, NULL));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, cut_waiter, NULL, &(cosync_task_opts){.name = "main"}));
    CHECK_ERR(cosync_loop_run(loop, m, NULL, NULL), COSYNC_EDEADLK);
    const char *text = capture_text(&cap);
    char head[256];
    snprintf(head, sizeof head,
             "cosync: deadlock: 252 tasks are blocked and nothing can wake them:\n"
             "  task 'main' (#252) waits on lock %p held by task 'holder' (#1)\n"
             "  task 'holder' (#1) waits on sleep\n"
             "  task 'task-2' (#2) waits on lock %p held by task 'holder' (#1)\n",
             (void *)&cut_lock, (void *)&cut_lock);
    CHECK_EQ(strncmp(text, head, strlen(head)), 0);
    CHECK_EQ(count_lines(text), 1 + 200 + 1);
    CHECK_NULL(strstr(strstr(text, "'main'") + 1, "'main'")); /* once */
    CHECK_NOTNULL(strstr(text, "  task 'task-199' (#199) waits on lock"));
    CHECK(strstr(text, "(#200)") == NULL);
    const char *tail = "  ... and 52 more\n";
    CHECK_STREQ(text + strlen(text) - strlen(tail), tail);
    capture_free(&cap);

    /* outside a run there is no main task: the records' order alone */
    capture_open(&cap);
    CHECK_EQ(cosync_loop_dump(loop, cap.f), 252);
    text = capture_text(&cap);
    CHECK_NOTNULL(strstr(text, "  task 'holder' (#1) waits on sleep\n"));
    CHECK(strstr(text, "'main'") == NULL);
    CHECK_NOTNULL(strstr(text, "  ... and 52 more\n"));
    capture_free(&cap);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * the clock
 * ---------------------------------------------------------------------- */

static int64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static int main_clock(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(cosync_now(), COSYNC_SEC(1));
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_now(), COSYNC_SEC(1)); /* nothing idle: no time passes */
    CHECK_EQ(cosync_deadline_after(COSYNC_MS(5)), COSYNC_SEC(1) + COSYNC_MS(5));
    CHECK_EQ(cosync_deadline_after(0), COSYNC_SEC(1));
    CHECK_EQ(cosync_deadline_after(COSYNC_FOREVER), COSYNC_FOREVER);
    CHECK_EQ(cosync_deadline_after(-COSYNC_MS(5)), COSYNC_SEC(1));
    CHECK_EQ(cosync_deadline_after(INT64_MAX), INT64_MAX);
    CHECK_OK(cosync_sleep(COSYNC_SEC(2)));
    CHECK_EQ(cosync_now(), COSYNC_SEC(3));
    CHECK_OK(cosync_sleep_until(COSYNC_SEC(10)));
    CHECK_EQ(cosync_now(), COSYNC_SEC(10));
    /* the virtual clock goes to the very end of time (the loop's own
     * bookkeeping must not overflow: the UBSan build checks) */
    CHECK_OK(cosync_sleep(INT64_MAX));
    CHECK_EQ(cosync_now(), INT64_MAX);
    CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* a deadline that has passed */
    CHECK_EQ(cosync_now(), INT64_MAX);
    return 0;
}

static int64_t real_seen;

static int main_real_clock(void *arg, void **result)
{
    (void)arg, (void)result;
    real_seen = cosync_now();
    return 0;
}

TEST(clock_virtual_and_real)
{
    /* outside a loop: the monotonic clock */
    int64_t a = mono_ns();
    int64_t n = cosync_now();
    int64_t b = mono_ns();
    CHECK_LE(a, n);
    CHECK_LE(n, b);
    CHECK_EQ(cosync_deadline_after(COSYNC_FOREVER), COSYNC_FOREVER);

    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task t;
    spawn_and_run(loop, &t, main_clock, NULL);
    /* outside again: monotonic, not the loop's virtual time */
    a = mono_ns();
    n = cosync_now();
    b = mono_ns();
    CHECK_LE(a, n);
    CHECK_LE(n, b);
    CHECK_OK(cosync_loop_destroy(loop));

    /* a real-clock loop reads the monotonic clock */
    CHECK_OK(cosync_loop_init(&loop, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &t, main_real_clock, NULL, NULL));
    a = mono_ns();
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    b = mono_ns();
    CHECK_LE(a, real_seen);
    CHECK_LE(real_seen, b);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * stats
 * ---------------------------------------------------------------------- */

static int stats_sleeper(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_SEC(5));
}

static int stats_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cosync_loop_current();
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 2); /* main, and 'other' not started */
    CHECK_EQ(st.tasks_records, 2);
    CHECK_EQ(st.tasks_ready, 1);
    CHECK_EQ(st.timers, 0);
    CHECK_EQ(st.stacks_in_use, 1);
    CHECK_GE(st.stacks_mapped, 1);
    CHECK_LE(st.stacks_guarded, st.stacks_mapped);
    CHECK_GE(st.switches, 1);
    uint64_t sw = st.switches;

    cosync_task s;
    CHECK_OK(cosync_task_spawn(&s, stats_sleeper, NULL, NULL));
    CHECK_OK(cosync_yield()); /* 'other' finishes, s starts and sleeps */
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 2);   /* main, s */
    CHECK_EQ(st.tasks_records, 3); /* + 'other', finished, unjoined */
    CHECK_EQ(st.tasks_ready, 0);
    CHECK_EQ(st.timers, 1);
    CHECK_EQ(st.stacks_in_use, 2);
    CHECK_GE(st.stacks_mapped, 2);
    CHECK_LE(st.stacks_guarded, st.stacks_mapped);
    CHECK_GT(st.switches, sw);
    CHECK_OK(cosync_task_join(s, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_EQ(st.tasks_records, 2);
    CHECK_EQ(st.timers, 0);
    CHECK_EQ(st.stacks_in_use, 1);
    return 0;
}

TEST(stats_fields)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_loop_stats st;
    memset(&st, 0xff, sizeof st);
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 0);
    CHECK_EQ(st.tasks_records, 0);
    CHECK_EQ(st.tasks_ready, 0);
    CHECK_EQ(st.timers, 0);
    CHECK_EQ(st.stacks_mapped, 0);
    CHECK_EQ(st.stacks_in_use, 0);
    CHECK_EQ(st.stacks_guarded, 0);
    CHECK_EQ(st.switches, 0);
    CHECK_ERR(cosync_loop_get_stats(NULL, &st), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_get_stats(loop, NULL), COSYNC_EINVAL);

    cosync_task m, other;
    CHECK_OK(cosync_loop_spawn(loop, &m, stats_main, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &other, nop, NULL, NULL));
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 2);
    CHECK_EQ(st.tasks_records, 2);
    CHECK_EQ(st.tasks_ready, 2);
    CHECK_EQ(st.stacks_in_use, 0); /* not started: no stack */
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 0);
    CHECK_EQ(st.tasks_records, 1); /* 'other' */
    CHECK_EQ(st.tasks_ready, 0);
    CHECK_EQ(st.stacks_in_use, 0);
    CHECK_GE(st.stacks_mapped, 2);
    CHECK_GE(st.switches, 4);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * error strings
 * ---------------------------------------------------------------------- */

TEST(error_strings)
{
    static const struct {
        int code;
        const char *name;
    } codes[] = {
        {COSYNC_EPERM, "COSYNC_EPERM"},
        {COSYNC_ESRCH, "COSYNC_ESRCH"},
        {COSYNC_EINTR, "COSYNC_EINTR"},
        {COSYNC_EAGAIN, "COSYNC_EAGAIN"},
        {COSYNC_ENOMEM, "COSYNC_ENOMEM"},
        {COSYNC_EBUSY, "COSYNC_EBUSY"},
        {COSYNC_EINVAL, "COSYNC_EINVAL"},
        {COSYNC_EDEADLK, "COSYNC_EDEADLK"},
        {COSYNC_EOVERFLOW, "COSYNC_EOVERFLOW"},
        {COSYNC_EALREADY, "COSYNC_EALREADY"},
        {COSYNC_ETIMEDOUT, "COSYNC_ETIMEDOUT"},
        {COSYNC_ECANCELED, "COSYNC_ECANCELED"},
        {COSYNC_ESHUTDOWN, "COSYNC_ESHUTDOWN"},
        {COSYNC_EBROKEN, "COSYNC_EBROKEN"},
        {COSYNC_EOPEN, "COSYNC_EOPEN"},
        {COSYNC_EBADF, "COSYNC_EBADF"},
        {COSYNC_EPIPE, "COSYNC_EPIPE"},
        {COSYNC_ECONNRESET, "COSYNC_ECONNRESET"},
        {COSYNC_ECONNREFUSED, "COSYNC_ECONNREFUSED"},
        {COSYNC_EADDRINUSE, "COSYNC_EADDRINUSE"},
        {COSYNC_EAFNOSUPPORT, "COSYNC_EAFNOSUPPORT"},
        {COSYNC_ENOTCONN, "COSYNC_ENOTCONN"},
        {COSYNC_EMFILE, "COSYNC_EMFILE"},
        {COSYNC_EMSGSIZE, "COSYNC_EMSGSIZE"},
        {COSYNC_ENONAME, "COSYNC_ENONAME"},
        {COSYNC_ETLS, "COSYNC_ETLS"},
        {COSYNC_ECERT, "COSYNC_ECERT"},
    };
    size_t n = sizeof codes / sizeof codes[0];
    for (size_t i = 0; i < n; i++) {
        CHECK_LT(codes[i].code, 0);
        CHECK_STREQ(cosync_err_name(codes[i].code), codes[i].name);
        const char *s = cosync_strerror(codes[i].code);
        CHECK_NOTNULL(s);
        CHECK_GT(strlen(s), 0);
        CHECK(strcmp(s, "unknown error") != 0);
        CHECK(strcmp(s, "success") != 0);
        for (size_t j = 0; j < i; j++) {
            CHECK_NE(codes[i].code, codes[j].code);
            CHECK(strcmp(s, cosync_strerror(codes[j].code)) != 0);
        }
    }
    CHECK(COSYNC_EBROKEN >= COSYNC_ERANGE_FIRST && COSYNC_EBROKEN <= COSYNC_ERANGE_LAST);
    CHECK(COSYNC_EOPEN >= COSYNC_ERANGE_FIRST && COSYNC_EOPEN <= COSYNC_ERANGE_LAST);
    CHECK(COSYNC_ENONAME >= COSYNC_ERANGE_FIRST && COSYNC_ENONAME <= COSYNC_ERANGE_LAST);
    CHECK(COSYNC_ETLS >= COSYNC_ERANGE_FIRST && COSYNC_ETLS <= COSYNC_ERANGE_LAST);
    CHECK(COSYNC_ECERT >= COSYNC_ERANGE_FIRST && COSYNC_ECERT <= COSYNC_ERANGE_LAST);
    CHECK_STREQ(cosync_err_name(0), "0");
    CHECK_STREQ(cosync_strerror(0), "success");
    CHECK_STREQ(cosync_strerror(COSYNC_ETIMEDOUT), "timed out");
    CHECK_STREQ(cosync_strerror(COSYNC_ECANCELED), "cancelled");
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 32))
    /* other negated errno values (the system calls' -ENFILE, say) */
    CHECK_STREQ(cosync_err_name(-ENFILE), "ENFILE");
    CHECK_STREQ(cosync_strerror(-ENFILE), "Too many open files in system");
    CHECK_STREQ(cosync_err_name(-EIO), "EIO");
#else
    CHECK_STREQ(cosync_err_name(-EIO), "COSYNC_E?");
    CHECK_STREQ(cosync_strerror(-EIO), "unknown error");
#endif
    int unknown[] = {1, 42, -9999, COSYNC_ERANGE_FIRST, COSYNC_ERANGE_LAST, INT_MIN, INT_MAX};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        CHECK_STREQ(cosync_strerror(unknown[i]), "unknown error");
        CHECK_STREQ(cosync_err_name(unknown[i]), "COSYNC_E?");
    }
}

/* ------------------------------------------------------------------------
 * many loops, interleaved loops
 * ---------------------------------------------------------------------- */

static int cycle_main(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    cosync_task t[4];
    for (int k = 0; k < 4; k++)
        CHECK_OK(cosync_task_spawn(&t[k], sleep_secs, (void *)(intptr_t)(k + i % 3), NULL));
    CHECK_OK(cosync_task_spawn(NULL, sleep_secs, (void *)(intptr_t)1000, NULL)); /* left over */
    for (int k = 0; k < 4; k++)
        CHECK_OK(cosync_task_join(t[k], NULL, NULL, COSYNC_FOREVER));
    return i;
}

TEST(many_loops_in_sequence)
{
    int fds = count_fds();
    counting c = {0};
    cosync_allocator al = {count_realloc, &c};
    cosync_loop_opts o = vopts;
    for (int i = 0; i < 100; i++) {
        o.allocator = (i & 1) ? &al : NULL;
        cosync_loop *loop;
        CHECK_OK(cosync_loop_init(&loop, &o));
        cosync_task t;
        CHECK_OK(cosync_loop_spawn(loop, &t, cycle_main, (void *)(intptr_t)-i, NULL));
        int status = 1;
        CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
        CHECK_EQ(status, -i);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(c.live, 0);
        CHECK_EQ(count_fds(), fds);
    }
}

static cosync_task a_child;
static cosync_loop *loop_a, *loop_b;
static int b_join_rc, b_join_stale_rc;

static int a_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(cosync_loop_current() == loop_a);
    CHECK_OK(cosync_task_spawn(&a_child, nop, NULL, NULL));
    CHECK_OK(cosync_yield()); /* a_child finishes, unjoined */
    CHECK_OK(cosync_loop_stop(loop_a));
    CHECKPOINT(0);
    CHECK_OK(cosync_yield());
    CHECKPOINT(3); /* after loop B ran */
    CHECK(cosync_loop_current() == loop_a);
    CHECK_EQ(cosync_now(), COSYNC_SEC(1)); /* B's time did not move A's clock */
    CHECK_OK(cosync_task_join(a_child, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

static int b_main(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK(cosync_loop_current() == loop_b);
    CHECKPOINT(2);
    b_join_rc = cosync_task_join(a_child, NULL, NULL, COSYNC_FOREVER);
    CHECK_OK(cosync_sleep(COSYNC_SEC(7)));
    CHECK_EQ(cosync_now(), COSYNC_SEC(8));
    return 0;
}

static int b_second(void *arg, void **result)
{
    (void)arg, (void)result;
    b_join_stale_rc = cosync_task_join(a_child, NULL, NULL, COSYNC_FOREVER);
    return 0;
}

TEST(two_loops_interleaved)
{
    CHECK_OK(cosync_loop_init(&loop_a, &vopts));
    CHECK_OK(cosync_loop_init(&loop_b, &vopts));
    cosync_task ma, mb, mb2;
    CHECK_OK(cosync_loop_spawn(loop_a, &ma, a_main, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop_b, &mb, b_main, NULL, NULL));
    CHECK_EQ(cosync_task_id(ma), 1); /* ids are per loop */
    CHECK_EQ(cosync_task_id(mb), 1);
    CHECK_ERR(cosync_loop_run(loop_a, ma, NULL, NULL), COSYNC_EINTR);
    CHECKPOINT(1);
    CHECK(cosync_task_done(a_child));
    CHECK_OK(cosync_loop_run(loop_b, mb, NULL, NULL));
    /* a live handle of loop A used in loop B */
    CHECK_ERR(b_join_rc, COSYNC_EPERM);
    CHECK_OK(cosync_loop_run(loop_a, ma, NULL, NULL));
    CHECKPOINTS_DONE(4);
    /* a stale handle of loop A used in loop B */
    spawn_and_run(loop_b, &mb2, b_second, NULL);
    CHECK_ERR(b_join_stale_rc, COSYNC_ESRCH);
    CHECK_OK(cosync_loop_destroy(loop_a));
    CHECK_OK(cosync_loop_destroy(loop_b));
}

/* A close round ends once the tasks that were ready when its last
 * cancelled task finished have run: a helper spawned by a clean-up gets
 * its first step in that round, and the next round cancels it at its first
 * yield instead of letting it run on. */
static const cosync_loop_opts close_round_vopts = {.virtual_clock = true};
static int close_round_helper_started, close_round_helper_steps, close_round_helper_last_rc;

static int close_round_yielding_helper(void *arg, void **result)
{
    (void)arg, (void)result;
    close_round_helper_started++;
    int rc;
    while ((rc = cosync_yield()) == 0)
        close_round_helper_steps++;
    close_round_helper_last_rc = rc;
    return 0;
}

static int close_round_spawn_yielding_helper_in_cleanup(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_spawn(NULL, close_round_yielding_helper, NULL, NULL));
    return rc;
}

TEST(destroy_round_ends_once_the_tasks_ready_at_its_last_cancelled_task_end_have_run)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &close_round_vopts));
    CHECK_OK(
        cosync_loop_spawn(loop, NULL, close_round_spawn_yielding_helper_in_cleanup, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(close_round_helper_started, 1);
    CHECK_EQ(close_round_helper_steps, 0); /* round 2 cancelled it at its first yield */
    CHECK_ERR(close_round_helper_last_rc, COSYNC_ECANCELED);
}

/* A stack of one page is all guard: the loop's default and a task's own
 * size must be at least two pages, not just more than a few bytes. */
TEST(loop_refuses_a_default_stack_of_one_page)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cosync_loop *loop = (cosync_loop *)1;
    CHECK_ERR(
        cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .stack_size = page}),
        COSYNC_EINVAL);
    CHECK_NULL(loop);
    CHECK_ERR(cosync_loop_init(
                  &loop, &(cosync_loop_opts){.virtual_clock = true, .stack_size = 2 * page - 1}),
              COSYNC_EINVAL);
    CHECK_OK(cosync_loop_init(&loop,
                              &(cosync_loop_opts){.virtual_clock = true, .stack_size = 2 * page}));
    CHECK_OK(cosync_loop_destroy(loop));
}

static int spawn_one_page_main(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    cosync_task t;
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = page}),
              COSYNC_EINVAL);
    return 0;
}

TEST(spawn_refuses_a_stack_of_one_page)
{
    run_main_ok(spawn_one_page_main, NULL);
}

/*
 * cosync_loop_run returns COSYNC_EINVAL "if @main is detached or claimed
 * (joined by a task, gathered, or waited for ...)" (cosync.h). No test runs
 * the loop with a @main that another task is joining: a task that stopped
 * the loop and then joins a child leaves the child claimed between runs.
 * Without the check the run takes the child over as its own @main, and
 * both the run and the joiner collect it.
 */
static cosync_task claimed_run_child;

static int claimed_run_child_body(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    *result = (void *)(intptr_t)42;
    return -5;
}

static int claimed_run_joiner(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(&claimed_run_child, claimed_run_child_body, NULL, NULL));
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    int st = 0;
    void *res = NULL;
    CHECK_OK(cosync_task_join(claimed_run_child, &st, &res, COSYNC_FOREVER));
    CHECK_EQ(st, -5);
    CHECK_EQ((intptr_t)res, 42);
    return -7;
}

TEST(run_of_a_task_another_task_joins_is_refused)
{
    cosync_loop *loop = new_loop();
    cosync_task j;
    CHECK_OK(cosync_loop_spawn(loop, &j, claimed_run_joiner, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, j, NULL, NULL), COSYNC_EINTR);
    /* the joiner waits in cosync_task_join(child): the child is claimed */
    CHECK(!cosync_task_done(claimed_run_child));
    int status = 0;
    CHECK_ERR(cosync_loop_run(loop, claimed_run_child, &status, NULL), COSYNC_EINVAL);
    CHECK_EQ(status, 0);
    /* nothing ran: the child is still alive, and its joiner gets it */
    CHECK(!cosync_task_done(claimed_run_child));
    CHECK_OK(cosync_loop_run(loop, j, &status, NULL));
    CHECK_EQ(status, -7);
    end_loop(loop);
}

/*
 * cosync_loop_run returns COSYNC_EINVAL "if @main is detached" (cosync.h).
 * No test runs a detached @main.
 */
static int detached_run_sleeper(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    return 0;
}

TEST(run_of_a_detached_task_is_refused)
{
    cosync_loop *loop = new_loop();
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, detached_run_sleeper, NULL, NULL));
    CHECK_OK(cosync_task_detach(t));
    CHECK_ERR(cosync_loop_run(loop, t, NULL, NULL), COSYNC_EINVAL);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    end_loop(loop);
}

/*
 * cosync_run / cosync_run_with return @main's status; the close that
 * follows (cosync_loop_destroy) may deadlock on a left-over task's
 * clean-up (COSYNC_EDEADLK, reported), but that must not hide main's own
 * failure, as asyncio.run raises main's exception and only logs what the
 * clean-up of the other tasks ran into. The tests make the close fail only
 * after a main that succeeded, where either order gives COSYNC_EDEADLK.
 */
static cosync_event main_failure_never;

/* cancelled by the close, its clean-up waits for what never comes */
static int main_failure_stuck_cleanup(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_sleep(COSYNC_SEC(100)), COSYNC_ECANCELED);
    (void)cosync_event_wait(&main_failure_never, COSYNC_FOREVER);
    return COSYNC_ECANCELED;
}

static int main_failure_failing_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&main_failure_never);
    CHECK_OK(cosync_task_spawn(NULL, main_failure_stuck_cleanup, NULL,
                               &(cosync_task_opts){.name = "stuck"}));
    CHECK_OK(cosync_yield()); /* it sleeps */
    return -5;
}

TEST(mains_failure_wins_over_a_deadlock_in_the_close)
{
    capture c;
    FILE *report = capture_open(&c);
    CHECK_ERR(cosync_run_with(main_failure_failing_main, NULL,
                              &(cosync_loop_opts){.virtual_clock = true, .report = report}),
              -5);
    /* the close did deadlock, and said so */
    CHECK(strstr(capture_text(&c), "stuck") != NULL);
    capture_free(&c);
}

int main(void)
{
    RUN(cosync_run_returns_main_status);
    RUN(cosync_run_returns_setup_errors);
    RUN(cosync_run_cancels_leftover_tasks);
    RUN(cosync_run_deadlock_reported_on_stderr);
    RUN(cosync_run_with_uses_the_options);
    RUN(cosync_run_with_checks_the_options);
    RUN(explicit_loop_init_spawn_run_destroy);
    RUN(run_without_main_runs_every_task);
    RUN(stop_from_a_task_and_run_again);
    RUN(stop_request_lasts_one_run);
    RUN(stop_lets_the_tasks_ready_run_first);
    RUN(stop_turn_counts_the_tasks_that_follow_a_finish);
    RUN(stop_before_a_run_runs_each_ready_task_once);
    RUN(a_stop_in_a_later_run_still_lets_every_ready_task_run);
    RUN(run_returns_after_the_tasks_ready_when_main_finished);
    RUN(run_of_a_finished_main_takes_one_turn);
    RUN(a_timer_due_between_runs_fires_at_the_next_runs_start);
    RUN(loop_now_reads_the_loops_clock_between_runs);
    RUN(lone_yielder_gives_the_loop_its_turns);
    RUN(run_from_inside_a_task_is_eperm);
    RUN(run_with_stale_or_foreign_main);
    RUN(detach_main_during_run_is_ebusy);
    RUN(join_main_during_run_is_ebusy);
    RUN(destroy_cancels_live_tasks);
    RUN(destroy_drops_tasks_that_deadlock_in_cleanup);
    RUN(destroy_cancels_what_clean_ups_leave_running);
    RUN(destroy_runs_the_helpers_clean_ups_spawn);
    RUN(destroy_runs_what_a_clean_ups_helper_spawns_in_the_first_round);
    RUN(destroy_ends_though_clean_ups_respawn_themselves);
    RUN(destroy_lets_a_clean_up_in_its_second_round_use_helpers);
    RUN(deadlock_report);
    RUN(deadlock_without_main);
    RUN(blocked_with_deadline_is_not_deadlock);
    RUN(loop_dump_states);
    RUN(loop_dump_shows_the_current_task_running_however_it_came_to_run);
    RUN(loop_dump_many_tasks);
    RUN(deadlock_report_cut_short_names_the_main_task_first);
    RUN(all_tasks_lists_the_unfinished_tasks_in_spawn_order);
    RUN(clock_virtual_and_real);
    RUN(stats_fields);
    RUN(error_strings);
    RUN(many_loops_in_sequence);
    RUN(two_loops_interleaved);
    RUN(destroy_round_ends_once_the_tasks_ready_at_its_last_cancelled_task_end_have_run);
    RUN(loop_refuses_a_default_stack_of_one_page);
    RUN(spawn_refuses_a_stack_of_one_page);
    RUN(run_of_a_task_another_task_joins_is_refused);
    RUN(run_of_a_detached_task_is_refused);
    RUN(mains_failure_wins_over_a_deadlock_in_the_close);
    return 0;
}
