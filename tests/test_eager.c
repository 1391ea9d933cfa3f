/*
 * test_eager.c - eager start (cosync_task_opts.eager, cosync_loop_opts.
 * eager_tasks): asyncio 3.12's eager_task_factory and 3.14's
 * create_task(eager_start=True). The spawn runs the new task until it first
 * suspends or ends; the spawner then goes on before any other task runs;
 * the spawn is no suspension point for the spawner. Exact interleavings
 * with checkpoints, on the virtual clock.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "fault.h"
#include "harness.h"

static const cosync_task_opts eager = {.eager = true};

/* ------------------------------------------------------------------------ */

static int checkpoint_yield_checkpoint(void *arg, void **result)
{
    int first = (int)(intptr_t)arg;
    CHECKPOINT(first);
    *result = (void *)(intptr_t)cosync_yield();
    CHECKPOINT(first + 3);
    return 0;
}

/*
 * The eager task's first step runs inside the spawn; after its first
 * suspension the spawner goes on at once (before the task spawned lazily
 * earlier, which was ready first), and the queue then holds the lazy task
 * before the eager one's yield, as asyncio's ready queue would.
 */
static int order_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task lazy, e;
    CHECK_OK(cosync_task_spawn(&e, nop, NULL, NULL));
    join_ok(e); /* its stack is cached: the eager start below takes it directly */
    uint64_t before = switches();
    CHECK_OK(cosync_task_spawn(&lazy, checkpoint_arg, (void *)3, NULL));
    CHECKPOINT(0);
    CHECK_OK(cosync_task_spawn(&e, checkpoint_yield_checkpoint, (void *)1, &eager));
    CHECKPOINT(2);
    CHECK_EQ(switches() - before, 2); /* to the eager task and back: no one else ran */
    CHECK(!cosync_task_done(lazy));
    CHECK(!cosync_task_done(e));
    CHECK_OK(cosync_yield()); /* the lazy task (3), then the eager one's rest (4) */
    CHECKPOINT(5);
    join_ok(lazy);
    void *r = (void *)1;
    int status = -1;
    CHECK_OK(cosync_task_join(e, &status, &r, COSYNC_FOREVER));
    CHECK_OK(status);
    CHECK_NULL(r); /* its yield returned 0 */
    return 0;
}

TEST(the_first_step_runs_inside_the_spawn_and_the_spawner_goes_on_first)
{
    run_main_ok(order_main, NULL);
    CHECKPOINTS_DONE(6);
}

/* ------------------------------------------------------------------------ */

static int return_arg_now(void *arg, void **result)
{
    CHECKPOINT(1);
    *result = arg;
    return 7 == (int)(intptr_t)arg ? COSYNC_EINVAL : 0;
}

/*
 * A task that ends in its first step is done when the spawn returns: its
 * result is there, and joining it does not suspend. A failure is its
 * status, not the spawn's.
 */
static int done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECKPOINT(0);
    CHECK_OK(cosync_task_spawn(&t, return_arg_now, (void *)42, &eager));
    CHECKPOINT(2);
    CHECK(cosync_task_done(t));
    int status = -1;
    void *r = NULL;
    CHECK_OK(cosync_task_result(t, &status, &r));
    CHECK_OK(status);
    CHECK_EQ((intptr_t)r, 42);
    uint64_t before = switches();
    CHECK_OK(cosync_task_join(t, &status, &r, COSYNC_FOREVER));
    CHECK_EQ(switches(), before);
    CHECK_EQ(task_records(), 1); /* main's own */

    CHECKPOINT_RESET();
    CHECKPOINT(0);
    CHECK_OK(cosync_task_spawn(&t, return_arg_now, (void *)7, &eager));
    CHECKPOINT(2);
    join_expect(t, COSYNC_EINVAL);
    return 0;
}

TEST(a_task_that_ends_in_its_first_step_is_done_when_the_spawn_returns)
{
    run_main_ok(done_main, NULL);
    CHECKPOINTS_DONE(3);
}

/* ------------------------------------------------------------------------ */

static cosync_task spawner;

static int cancel_spawner(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_cancel(spawner));
    return 0;
}

/*
 * A cancel that the eager task makes of its spawner does not end the
 * spawn (no suspension point for the spawner, as asyncio's create_task
 * is no await): it stays pending and the spawner's next suspension takes
 * it.
 */
static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    spawner = cosync_task_current();
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, cancel_spawner, NULL, &eager));
    CHECK_EQ(cosync_task_cancelling(spawner), 1);
    CHECK(cosync_task_done(t));
    join_ok(t); /* a join of a finished task does not suspend */
    CHECK_ERR(cosync_sleep(COSYNC_MS(1)), COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* delivered once */
    CHECK_EQ(cosync_task_uncancel(spawner), 0);
    return 0;
}

TEST(a_cancel_of_the_spawner_during_the_first_step_stays_pending)
{
    run_main_ok(cancel_main, NULL);
}

/* The same with a cancel the spawner already had before it spawned. */
static int pending_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_OK(cosync_task_spawn(&t, checkpoint_arg, (void *)0, &eager));
    CHECKPOINT(1);
    CHECK(cosync_task_done(t));
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    join_ok(t);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    return 0;
}

TEST(a_cancel_pending_at_the_spawn_stays_pending)
{
    run_main_ok(pending_main, NULL);
    CHECKPOINTS_DONE(2);
}

/* ------------------------------------------------------------------------ */

/* Depth @arg: passes CHECKPOINT(depth), spawns depth + 1 eagerly (up to
 * 3, which yields instead), then passes CHECKPOINT(6 - depth) and joins it
 * (3 passes CHECKPOINT(7) after its yield). */
static int nest(void *arg, void **result)
{
    (void)result;
    int depth = (int)(intptr_t)arg;
    CHECKPOINT(depth);
    if (depth == 3) {
        CHECK_OK(cosync_yield());
        CHECKPOINT(7);
        return 0;
    }
    cosync_task child;
    CHECK_OK(cosync_task_spawn(&child, nest, (void *)(intptr_t)(depth + 1), &eager));
    CHECKPOINT(6 - depth);
    join_ok(child);
    return 0;
}

/*
 * Eager starts nest: a task started eagerly that spawns eagerly runs its
 * own child's first step inside its spawn, and the spawners go on in turn,
 * innermost first, before the yield of the innermost comes back.
 */
TEST(eager_starts_nest)
{
    run_main_ok(nest, (void *)0);
    CHECKPOINTS_DONE(8);
}

/* ------------------------------------------------------------------------ */

/*
 * A stop cuts the loop's turn short, but not an eager start inside it:
 * the new task's first step and the spawner's going on are one step of
 * the spawner, as create_task's eager step is one call in asyncio (seed
 * 3579 of test_tree_model once ended the run between them).
 */
static int stop_then_spawn(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECKPOINT(0);
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECK_OK(cosync_task_spawn(&t, checkpoint_yield_checkpoint, (void *)1, &eager));
    CHECKPOINT(2);
    CHECK(!cosync_task_done(t));
    *(cosync_task *)cosync_task_get_local() = t;
    return 0;
}

TEST(a_stop_does_not_end_the_run_inside_an_eager_start)
{
    cosync_loop *loop = new_loop();
    cosync_task m, t;
    int status = -1;
    CHECK_OK(cosync_loop_spawn(loop, &m, stop_then_spawn, NULL, &(cosync_task_opts){.local = &t}));
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL)); /* main ended in the turn it stopped */
    CHECK_OK(status);
    CHECKPOINT(3);
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL)); /* the rest: CHECKPOINT(4) */
    CHECK_OK(status);
    CHECKPOINTS_DONE(5);
    end_loop(loop);
}

/* ------------------------------------------------------------------------ */

/*
 * The handle is out before the first step: a task started eagerly finds
 * its own handle where the spawn writes it. A detached one that ends in
 * that step is freed at its end, as any detached task is.
 */
static int find_own_handle(void *arg, void **result)
{
    (void)result;
    cosync_task *where = arg;
    CHECK(where->rec == cosync_task_current().rec);
    CHECK_EQ(where->id, cosync_task_current().id);
    return 0;
}

static int handle_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t = {0};
    CHECK_OK(cosync_task_spawn(&t, find_own_handle, &t, &eager));
    join_ok(t);
    int count = 0;
    CHECK_OK(cosync_task_spawn(NULL, bump_counter, &count, &eager));
    CHECK_EQ(count, 1);
    CHECK_EQ(task_records(), 1); /* main's own: the detached one is gone */
    CHECK_EQ(alive_tasks(), 1);
    return 0;
}

TEST(the_handle_is_out_before_the_first_step_and_a_detached_task_is_freed)
{
    run_main_ok(handle_main, NULL);
}

/* ------------------------------------------------------------------------ */

static bool body_ran;

static int mark_ran(void *arg, void **result)
{
    (void)arg, (void)result;
    body_ran = true;
    return 0;
}

/*
 * No stack for the eager task: it ends with COSYNC_ENOMEM without running,
 * as a lazily started one does, and the spawn itself succeeds.
 */
static int no_stack_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    body_ran = false;
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0; /* the record is at hand: the stack's descriptor fails */
    CHECK_OK(cosync_task_spawn(&t, mark_ran, NULL, &eager));
    cosync__fault_countdown = -1;
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK(cosync_task_done(t));
    CHECK(!body_ran);
    join_expect(t, COSYNC_ENOMEM);
    CHECK_OK(cosync_task_spawn(&t, mark_ran, NULL, &eager));
    CHECK(body_ran);
    join_ok(t);
    return 0;
}

TEST(an_eager_task_without_a_stack_ends_with_enomem)
{
    run_main_ok(no_stack_main, NULL);
}

/* ------------------------------------------------------------------------ */

/*
 * Spawned from outside a task (before the run), an eager task is queued as
 * usual: asyncio starts a task eagerly only inside its running loop.
 */
TEST(spawned_outside_a_task_it_is_queued)
{
    cosync_loop *loop = new_loop();
    cosync_task t;
    body_ran = false;
    CHECK_OK(cosync_loop_spawn(loop, &t, mark_ran, NULL, &eager));
    CHECK(!body_ran);
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK(body_ran);
    end_loop(loop);
}

/*
 * From a task of one loop, an eager task spawned on another loop (which
 * is not running: one thread runs one loop at a time) is queued there, and
 * runs when that loop runs.
 */
static int other_loop_main(void *arg, void **result)
{
    (void)result;
    cosync_loop *other = arg;
    cosync_task t;
    body_ran = false;
    CHECK_OK(cosync_loop_spawn(other, &t, mark_ran, NULL, &eager));
    CHECK(!body_ran);
    CHECK_OK(cosync_yield());
    CHECK(!body_ran);
    *(cosync_task *)cosync_task_get_local() = t;
    return 0;
}

TEST(spawned_on_another_loop_it_is_queued_there)
{
    cosync_loop *loop = new_loop(), *other = new_loop();
    cosync_task m, t;
    CHECK_OK(cosync_loop_spawn(loop, &m, other_loop_main, other,
                               &(cosync_task_opts){.eager = true, .local = &t}));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK(!body_ran);
    CHECK_OK(cosync_loop_run(other, t, NULL, NULL));
    CHECK(body_ran);
    end_loop(other);
    end_loop(loop);
}

/* ------------------------------------------------------------------------ */

/* While the new task takes its first step, its spawner is ready (not
 * running, not blocked): what cosync_loop_dump says of it. */
static int dump_spawner(void *arg, void **result)
{
    (void)arg, (void)result;
    char buf[512] = "";
    FILE *f = fmemopen(buf, sizeof buf - 1, "w");
    CHECK_NOTNULL(f);
    CHECK_EQ(cosync_loop_dump(cosync_loop_current(), f), 2);
    fclose(f);
    CHECK(strstr(buf, "task 'main' (#1) is ready\n") != NULL);
    CHECK(strstr(buf, "is running\n") != NULL); /* this one */
    return 0;
}

static int dump_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dump_spawner, NULL, &eager));
    join_ok(t);
    return 0;
}

TEST(the_spawner_is_ready_during_the_first_step)
{
    run_main_ok(dump_main, NULL);
}

/* ------------------------------------------------------------------------ */

static int sleep_ms_arg(void *arg, void **result)
{
    (void)result;
    return cosync_sleep(COSYNC_MS((intptr_t)arg));
}

static int fail_at_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return COSYNC_EINVAL;
}

/*
 * In a TaskGroup, an eager child that fails in its first step fails the
 * group there: the owner's body is cancelled at its next suspension (not
 * inside the spawn), the siblings are cancelled, and the wait reports the
 * failure, as asyncio 3.12's TaskGroup does with an eager task that is
 * done at create_task.
 */
static int group_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    cosync_task sibling, failing;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, &sibling, sleep_ms_arg, (void *)100, &eager));
    CHECK_OK(cosync_taskgroup_spawn(&g, &failing, fail_at_once, NULL, &eager));
    CHECK(cosync_task_done(failing));
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1);
    CHECK_ERR(cosync_sleep(COSYNC_MS(1)), COSYNC_ECANCELED);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(join_status(sibling), COSYNC_ECANCELED);
    join_expect(failing, COSYNC_EINVAL);
    return 0;
}

TEST(an_eager_child_that_fails_at_once_fails_its_group)
{
    run_main_ok(group_main, NULL);
}

/*
 * A child in its eager first step already belongs to its group: a sibling
 * it spawns eagerly then, failing at once, cancels it too (asyncio adds
 * the child to the group only after its step, and leaves it running:
 * docs/asyncio-mapping.md).
 */
static cosync_taskgroup *sibling_group;
static int child_cancelling = -1, child_yield_rc = 1;

static int spawn_failing_sibling(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_taskgroup_spawn(sibling_group, NULL, fail_at_once, NULL, &eager));
    child_cancelling = cosync_task_cancelling(cosync_task_current());
    child_yield_rc = cosync_yield();
    return child_yield_rc;
}

static int sibling_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    sibling_group = &g;
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, spawn_failing_sibling, NULL, &eager));
    CHECK_EQ(child_cancelling, 1);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(child_yield_rc, COSYNC_ECANCELED);
    return 0;
}

TEST(a_sibling_failing_during_a_childs_first_step_cancels_that_child)
{
    run_main_ok(sibling_main, NULL);
}

/* ------------------------------------------------------------------------ */

/*
 * In a loop's close: a clean-up spawned during the first round that, when
 * the second round cancels it, spawns a task eagerly: that task is
 * cancelled at its spawn (the close's rule for a spawn by a task born in
 * the close, from the second round on), so its body never runs, the spawn
 * still returns 0 and the task is done, cancelled, when it returns.
 */
static int close_body_runs, close_spawn_rc = 1, close_status = 1;
static bool close_done_at_spawn;

static int close_count_body(void *arg, void **result)
{
    (void)arg, (void)result;
    close_body_runs++;
    return 0;
}

static int close_second_cleanup(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100)); /* cancelled by round 2 */
    cosync_task t;
    close_spawn_rc = cosync_task_spawn(&t, close_count_body, NULL, &eager);
    close_done_at_spawn = cosync_task_done(t);
    close_status = join_status(t);
    return rc;
}

static int close_first_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100)); /* cancelled by round 1 */
    /* eagerly too: a task born in round 1 runs (its first step here) */
    CHECK_OK(cosync_task_spawn(NULL, close_second_cleanup, NULL, &eager));
    return rc;
}

TEST(an_eager_spawn_cancelled_by_the_close_never_runs)
{
    cosync_loop *loop = new_loop();
    CHECK_OK(cosync_loop_spawn(loop, NULL, close_first_task, NULL, NULL));
    CHECK_OK(cosync_loop_stop(loop));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_OK(close_spawn_rc);
    CHECK(close_done_at_spawn);
    CHECK_ERR(close_status, COSYNC_ECANCELED);
    CHECK_EQ(close_body_runs, 0);
}

/* ------------------------------------------------------------------------ */

/*
 * The loop's option: every task a task spawns starts eagerly (main itself,
 * spawned before the run, is queued). Gathered, the children that ended
 * at once are collected without a switch.
 */
static int loop_option_main(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 50 };
    cosync_task ts[N];
    cosync_outcome out[N];
    int count = 0;
    for (int i = 0; i < N; i++) {
        CHECK_OK(cosync_task_spawn(&ts[i], bump_counter, &count, NULL));
        CHECK_EQ(count, i + 1);
    }
    uint64_t before = switches();
    CHECK_OK(cosync_gather(ts, N, out, COSYNC_FOREVER));
    CHECK_EQ(switches(), before);
    for (int i = 0; i < N; i++)
        CHECK_OK(out[i].status);
    return 0;
}

TEST(the_loop_option_starts_every_spawn_eagerly)
{
    cosync_loop *loop = NULL;
    CHECK_OK(
        cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .eager_tasks = true}));
    cosync_task m;
    int status = -1;
    CHECK_OK(cosync_loop_spawn(loop, &m, loop_option_main, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
}

/* ------------------------------------------------------------------------ */

static int dense_step(void *arg, void **result)
{
    (void)result;
    int *count = arg;
    ++*count;
    CHECK_OK(cosync_yield());
    ++*count;
    return 0;
}

static int dense_spawner(void *arg, void **result)
{
    (void)result;
    int *count = arg;
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, dense_step, count,
                               &(cosync_task_opts){.eager = true, .dense = true}));
    CHECK_EQ(*count, 1);
    CHECK_OK(cosync_task_spawn(&b, dense_step, count,
                               &(cosync_task_opts){.eager = true, .dense = true}));
    CHECK_EQ(*count, 2);
    join_ok(a);
    join_ok(b);
    CHECK_EQ(*count, 4);
    return 0;
}

/* Dense tasks start eagerly too, from a dense spawner and from a plain one. */
static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int count = 0;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, dense_spawner, &count, &(cosync_task_opts){.dense = true}));
    join_ok(t);
    count = 0;
    CHECK_OK(dense_spawner(&count, NULL));
    return 0;
}

TEST(dense_tasks_start_eagerly)
{
    run_main_ok(dense_main, NULL);
}

int main(void)
{
    RUN(the_first_step_runs_inside_the_spawn_and_the_spawner_goes_on_first);
    RUN(a_task_that_ends_in_its_first_step_is_done_when_the_spawn_returns);
    RUN(a_cancel_of_the_spawner_during_the_first_step_stays_pending);
    RUN(a_cancel_pending_at_the_spawn_stays_pending);
    RUN(eager_starts_nest);
    RUN(a_stop_does_not_end_the_run_inside_an_eager_start);
    RUN(the_handle_is_out_before_the_first_step_and_a_detached_task_is_freed);
    RUN(an_eager_task_without_a_stack_ends_with_enomem);
    RUN(spawned_outside_a_task_it_is_queued);
    RUN(spawned_on_another_loop_it_is_queued_there);
    RUN(the_spawner_is_ready_during_the_first_step);
    RUN(an_eager_child_that_fails_at_once_fails_its_group);
    RUN(a_sibling_failing_during_a_childs_first_step_cancels_that_child);
    RUN(an_eager_spawn_cancelled_by_the_close_never_runs);
    RUN(the_loop_option_starts_every_spawn_eagerly);
    RUN(dense_tasks_start_eagerly);
    return 0;
}
