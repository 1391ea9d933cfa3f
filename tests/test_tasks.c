/*
 * test_tasks.c - the task API: spawn, join, detach, names, queries, misuse,
 * scheduling order, scale, stack reuse and out-of-memory paths.
 *
 * Every loop uses the virtual clock; interleavings are asserted with
 * CHECKPOINT. White-box parts (fault injection) include "fault.h".
 */
/* ctest-timeout: 120 */
#include <errno.h>
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "cosync.h"
#include "context/stack.h"
#include "core.h"
#include "fault.h"

static const cosync_loop_opts vopts = {.virtual_clock = true};

/* A virtual-clock loop whose allocations go through *@a, which counts them
 * into *@c (both must outlive the loop). */
static cosync_loop *counted_loop(counting *c, cosync_allocator *a)
{
    *a = (cosync_allocator){count_realloc, c};
    cosync_loop_opts o = vopts;
    o.allocator = a;
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &o));
    return loop;
}

/* ------------------------------------------------------------------------
 * Bodies
 * ---------------------------------------------------------------------- */

static int ret_code(void *arg, void **result)
{
    *result = (void *)(uintptr_t)0xfeed;
    return (int)(intptr_t)arg;
}

static int sleep_arg_secs(void *arg, void **result)
{
    int secs = (int)(intptr_t)arg;
    CHECK_OK(cosync_sleep(COSYNC_SEC(secs)));
    *result = arg;
    return 0;
}

static int yield_then_ret(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_yield());
    return (int)(intptr_t)arg;
}

/* ------------------------------------------------------------------------
 * spawn + join: results and statuses
 * ---------------------------------------------------------------------- */

static int main_join_results(void *arg, void **result)
{
    (void)arg, (void)result;
    int x = 7;
    cosync_task a, b, c, d, e;
    CHECK_OK(cosync_task_spawn(&a, return_arg, &x, NULL));
    CHECK_OK(cosync_task_spawn(&b, ret_code, (void *)(intptr_t)-4242, NULL));
    CHECK_OK(cosync_task_spawn(&c, ret_code, (void *)(intptr_t)COSYNC_ETIMEDOUT, NULL));
    CHECK_OK(cosync_task_spawn(&d, yield_then_ret, (void *)(intptr_t)COSYNC_EBUSY, NULL));
    CHECK_OK(cosync_task_spawn(&e, yield_then_ret, (void *)(intptr_t)5, NULL));

    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_task_join(a, &status, &res, COSYNC_FOREVER));
    CHECK_EQ(status, 0);
    CHECK(res == &x);
    res = NULL;
    CHECK_OK(cosync_task_join(b, &status, &res, COSYNC_FOREVER));
    CHECK_EQ(status, -4242);
    CHECK(res == (void *)(uintptr_t)0xfeed); /* a failed task still leaves its result */
    CHECK_OK(cosync_task_join(c, &status, NULL, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_ETIMEDOUT);
    CHECK_OK(cosync_task_join(d, NULL, NULL, COSYNC_FOREVER)); /* NULL outs allowed */
    CHECK_OK(cosync_task_join(e, &status, NULL, COSYNC_FOREVER));
    CHECK_EQ(status, 0); /* a positive return counts as success */
    return 0;
}

TEST(spawn_join_results_and_statuses)
{
    run_main_ok(main_join_results, NULL);
}

/* Join order differs from finish order: finish order is by sleep length,
 * every join returns its own task's outcome. */
static int main_join_order(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    cosync_task t[3];
    int secs[3] = {3, 1, 2};
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], sleep_arg_secs, (void *)(intptr_t)secs[i], NULL));
    for (int i = 0; i < 3; i++) {
        CHECK(!cosync_task_done(t[i]));
        CHECK_ERR(cosync_task_result(t[i], NULL, NULL), COSYNC_EAGAIN);
    }
    void *res;
    int status;
    CHECK_OK(cosync_task_join(t[0], &status, &res, COSYNC_FOREVER)); /* finishes last */
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(3));
    CHECK_EQ((intptr_t)res, 3);
    /* the others finished earlier and wait to be collected */
    CHECK(cosync_task_done(t[1]));
    CHECK(cosync_task_done(t[2]));
    CHECK_OK(cosync_task_join(t[1], &status, &res, 0)); /* already done: deadline 0 is fine */
    CHECK_EQ((intptr_t)res, 1);
    CHECK_OK(cosync_task_join(t[2], &status, &res, COSYNC_FOREVER));
    CHECK_EQ((intptr_t)res, 2);
    CHECK_EQ(cosync_now() - t0, COSYNC_SEC(3));
    return 0;
}

TEST(join_order_vs_finish_order)
{
    run_main_ok(main_join_order, NULL);
}

/* cosync_task_done / cosync_task_result before and after finishing, and
 * every query on a stale handle after the join. */
static int main_done_result(void *arg, void **result)
{
    (void)arg, (void)result;
    int x;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, ret_code, (void *)(intptr_t)-77, NULL));
    CHECK(!cosync_task_done(t));
    int status = 123;
    void *res = &x;
    CHECK_ERR(cosync_task_result(t, &status, &res), COSYNC_EAGAIN);
    CHECK_EQ(status, 123); /* untouched */
    CHECK(res == &x);
    CHECK_OK(cosync_yield()); /* t runs and finishes */
    CHECK(cosync_task_done(t));
    CHECK_OK(cosync_task_result(t, &status, &res));
    CHECK_EQ(status, -77);
    CHECK(res == (void *)(uintptr_t)0xfeed);
    CHECK_OK(cosync_task_result(t, NULL, NULL)); /* looking does not collect */
    CHECK_EQ(task_records(), 2);
    CHECK_EQ(alive_tasks(), 1);
    uint64_t id = cosync_task_id(t);
    CHECK_EQ(id, 2);
    CHECK_OK(cosync_task_join(t, &status, NULL, COSYNC_FOREVER));
    CHECK_EQ(status, -77);
    CHECK_EQ(task_records(), 1);
    /* stale now */
    CHECK(!cosync_task_done(t));
    CHECK_ERR(cosync_task_result(t, &status, &res), COSYNC_ESRCH);
    CHECK_EQ(cosync_task_id(t), 0);
    CHECK_NULL(cosync_task_name(t));
    CHECK_ERR(cosync_task_set_name(t, "x"), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_detach(t), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    /* so is a handle to the free record with id 0, the id a free record
     * has (a handle zeroed but for its pointer) */
    cosync_task zeroed = {t.rec, 0};
    CHECK(!cosync_task_done(zeroed));
    CHECK_ERR(cosync_task_result(zeroed, &status, &res), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_set_name(zeroed, "x"), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_detach(zeroed), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_join(zeroed, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_EQ(task_records(), 1);
    /* the record is reused by the next spawn: the old handle stays stale */
    cosync_task u;
    CHECK_OK(cosync_task_spawn(&u, nop, NULL, NULL));
    CHECK(u.rec == t.rec);
    CHECK_EQ(cosync_task_id(u), 3);
    CHECK_EQ(cosync_task_id(t), 0);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);
    CHECK_OK(cosync_task_join(u, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(done_and_result_before_and_after)
{
    run_main_ok(main_done_result, NULL);
}

/* ------------------------------------------------------------------------
 * detach
 * ---------------------------------------------------------------------- */

static int detached_runs;

static int count_run(void *arg, void **result)
{
    (void)arg, (void)result;
    detached_runs++;
    return 0;
}

static int count_run_after_yield(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_yield());
    detached_runs++;
    return 0;
}

static int main_detach(void *arg, void **result)
{
    (void)arg, (void)result;
    detached_runs = 0;
    /* spawned with a NULL handle */
    CHECK_OK(cosync_task_spawn(NULL, count_run, NULL, NULL));
    CHECK_EQ(task_records(), 2);
    CHECK_OK(cosync_yield());
    CHECK_EQ(detached_runs, 1);
    CHECK_EQ(task_records(), 1); /* freed when it finished */
    CHECK_EQ(alive_tasks(), 1);

    /* detach a running (not yet finished) task */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, count_run_after_yield, NULL, NULL));
    CHECK_OK(cosync_yield()); /* t starts and yields */
    CHECK(!cosync_task_done(t));
    CHECK_OK(cosync_task_detach(t));
    CHECK_ERR(cosync_task_detach(t), COSYNC_EINVAL); /* detach twice, still alive */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(task_records(), 2);
    CHECK_OK(cosync_yield()); /* t finishes */
    CHECK_EQ(detached_runs, 2);
    CHECK_EQ(task_records(), 1);
    CHECK_ERR(cosync_task_detach(t), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);

    /* detach a finished task: freed at once */
    CHECK_OK(cosync_task_spawn(&t, count_run, NULL, NULL));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t));
    CHECK_EQ(task_records(), 2);
    CHECK_OK(cosync_task_detach(t));
    CHECK_EQ(task_records(), 1);
    CHECK_ERR(cosync_task_detach(t), COSYNC_ESRCH); /* detach twice, finished */
    CHECK(!cosync_task_done(t));
    CHECK_EQ(detached_runs, 3);

    /* detach a task that never started: it still runs */
    CHECK_OK(cosync_task_spawn(&t, count_run, NULL, NULL));
    CHECK_OK(cosync_task_detach(t));
    CHECK_OK(cosync_yield());
    CHECK_EQ(detached_runs, 4);
    CHECK_EQ(task_records(), 1);
    return 0;
}

TEST(detach)
{
    run_main_ok(main_detach, NULL);
}

/* ------------------------------------------------------------------------
 * names, ids, current
 * ---------------------------------------------------------------------- */

static cosync_task seen_current;

static int record_current(void *arg, void **result)
{
    (void)arg, (void)result;
    seen_current = cosync_task_current();
    return 0;
}

static int main_names(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task me = cosync_task_current();
    CHECK_NOTNULL(me.rec);
    CHECK_EQ(cosync_task_id(me), 1);
    CHECK_STREQ(cosync_task_name(me), "main");

    cosync_task a, b, c;
    CHECK_OK(cosync_task_spawn(&a, record_current, NULL, NULL));
    CHECK_EQ(cosync_task_id(a), 2);
    CHECK_STREQ(cosync_task_name(a), "task-2");

    char buf[64] = "worker";
    CHECK_OK(cosync_task_spawn(&b, nop, NULL, &(cosync_task_opts){.name = buf}));
    strcpy(buf, "overwritten"); /* the name was copied */
    CHECK_STREQ(cosync_task_name(b), "worker");
    CHECK_EQ(cosync_task_id(b), 3);

    const char *longname = "0123456789abcdefghijklmnopqrstuvwxyzABCDEF"; /* 42 bytes */
    CHECK_OK(cosync_task_spawn(&c, nop, NULL, &(cosync_task_opts){.name = longname}));
    CHECK_EQ(strlen(cosync_task_name(c)), 31);
    CHECK_STREQ(cosync_task_name(c), "0123456789abcdefghijklmnopqrstu");
    CHECK_STREQ(cosync_task_name(c), "0123456789abcdefghijklmnopqrstu");

    /* exactly 31 bytes fits */
    CHECK_OK(cosync_task_set_name(c, "0123456789012345678901234567890"));
    CHECK_STREQ(cosync_task_name(c), "0123456789012345678901234567890");
    CHECK_OK(cosync_task_set_name(b, "renamed"));
    CHECK_STREQ(cosync_task_name(b), "renamed");
    CHECK_OK(cosync_task_set_name(b, longname));
    CHECK_STREQ(cosync_task_name(b), "0123456789abcdefghijklmnopqrstu");
    /* a part of its own name: the copy overlaps what it replaces */
    CHECK_OK(cosync_task_set_name(b, cosync_task_name(b) + 10));
    CHECK_STREQ(cosync_task_name(b), "abcdefghijklmnopqrstu");
    CHECK_OK(cosync_task_set_name(b, "x"));
    CHECK_STREQ(cosync_task_name(b), "x");
    CHECK_ERR(cosync_task_set_name(b, NULL), COSYNC_EINVAL);
    CHECK_STREQ(cosync_task_name(b), "x");
    CHECK_OK(cosync_task_set_name(me, "main2"));
    CHECK_STREQ(cosync_task_name(cosync_task_current()), "main2");

    CHECK_OK(cosync_task_join(a, NULL, NULL, COSYNC_FOREVER));
    CHECK(seen_current.rec == a.rec);
    CHECK_EQ(seen_current.id, a.id);
    CHECK_OK(cosync_task_join(b, NULL, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_task_join(c, NULL, NULL, COSYNC_FOREVER));
    /* the current task is the same after suspending */
    CHECK(cosync_task_current().rec == me.rec);
    CHECK_EQ(cosync_task_current().id, me.id);
    return 0;
}

TEST(names_ids_current)
{
    cosync_task none = cosync_task_current();
    CHECK_NULL(none.rec);
    CHECK_EQ(none.id, 0);
    CHECK_EQ(cosync_task_id(none), 0);
    CHECK_NULL(cosync_task_name(none));
    CHECK(!cosync_task_done(COSYNC_TASK_NONE));
    CHECK_ERR(cosync_task_result(COSYNC_TASK_NONE, NULL, NULL), COSYNC_ESRCH);
    run_main_ok(main_names, NULL);
    none = cosync_task_current();
    CHECK_NULL(none.rec);
    CHECK_EQ(none.id, 0);
}

/* Names and ids of tasks spawned from outside the loop. */
TEST(names_from_loop_spawn)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    cosync_task a, b;
    CHECK_OK(cosync_loop_spawn(loop, &a, nop, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &b, nop, NULL, &(cosync_task_opts){.name = NULL}));
    CHECK_EQ(cosync_task_id(a), 1);
    CHECK_EQ(cosync_task_id(b), 2);
    CHECK_STREQ(cosync_task_name(a), "task-1");
    CHECK_STREQ(cosync_task_name(b), "task-2");
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * Task-local data (contextvars): each task's own pointer, copied at spawn
 * ---------------------------------------------------------------------- */

static int ctx_a, ctx_b, ctx_c, ctx_d;

/* What a task saw: its local pointer when it started, and after a yield
 * during which other tasks set theirs. */
typedef struct local_probe {
    void *at_start, *after_yield, *child_saw;
    void *set_to; /* set after the first look, when not NULL */
    bool spawn_child;
} local_probe;

static int record_local(void *arg, void **result)
{
    (void)result;
    local_probe *p = arg;
    p->at_start = cosync_task_get_local();
    if (p->set_to)
        CHECK_OK(cosync_task_set_local(p->set_to));
    if (p->spawn_child) {
        local_probe inner = {0};
        cosync_task t;
        CHECK_OK(cosync_task_spawn(&t, record_local, &inner, NULL));
        join_ok(t);
        p->child_saw = inner.at_start;
    }
    CHECK_OK(cosync_yield());
    p->after_yield = cosync_task_get_local();
    return 0;
}

static int main_locals(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_NULL(cosync_task_get_local()); /* spawned from outside, no option */
    CHECK_OK(cosync_task_set_local(&ctx_a));
    CHECK(cosync_task_get_local() == &ctx_a);

    local_probe p1 = {.set_to = &ctx_b, .spawn_child = true}, p2 = {0}, p3 = {0};
    cosync_task t1, t2, t3;
    CHECK_OK(cosync_task_spawn(&t1, record_local, &p1, NULL));
    CHECK_OK(cosync_task_spawn(&t2, record_local, &p2, NULL));
    /* set after t2's spawn, before it runs: t2 keeps the copy it got */
    CHECK_OK(cosync_task_set_local(&ctx_c));
    CHECK_OK(cosync_task_spawn(&t3, record_local, &p3, &(cosync_task_opts){.local = &ctx_d}));
    join_ok(t1);
    join_ok(t2);
    join_ok(t3);
    CHECK(p1.at_start == &ctx_a);    /* the spawner's at the spawn */
    CHECK(p1.after_yield == &ctx_b); /* its own set, kept across a switch */
    CHECK(p1.child_saw == &ctx_b);   /* and what its own children start with */
    CHECK(p2.at_start == &ctx_a);    /* not the spawner's later set */
    CHECK(p2.after_yield == &ctx_a); /* nor t1's, made meanwhile */
    CHECK(p3.at_start == &ctx_d);    /* opts->local, as create_task(context=) */
    CHECK(p3.after_yield == &ctx_d);
    CHECK(cosync_task_get_local() == &ctx_c); /* no child's set reached it */

    /* a task group's children inherit too */
    cosync_taskgroup g;
    local_probe p4 = {0};
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_spawn(&g, NULL, record_local, &p4, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK(p4.at_start == &ctx_c);

    /* a reused record starts from its new spawner's pointer, not the old
     * task's: t1..t3's records are free again */
    CHECK_OK(cosync_task_set_local(NULL));
    local_probe p5 = {0};
    cosync_task t5;
    CHECK_OK(cosync_task_spawn(&t5, record_local, &p5, NULL));
    join_ok(t5);
    CHECK_NULL(p5.at_start);
    return 0;
}

TEST(task_local_pointer_is_copied_at_spawn_and_set_per_task)
{
    CHECK_NULL(cosync_task_get_local()); /* outside any task */
    CHECK_ERR(cosync_task_set_local(&ctx_a), COSYNC_EPERM);
    run_main_ok(main_locals, NULL);

    /* spawned from outside: NULL, or opts->local */
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    local_probe p = {0}, q = {0};
    cosync_task a, b;
    CHECK_OK(cosync_loop_spawn(loop, &a, record_local, &p, NULL));
    CHECK_OK(cosync_loop_spawn(loop, &b, record_local, &q, &(cosync_task_opts){.local = &ctx_b}));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_NULL(p.at_start);
    CHECK(q.at_start == &ctx_b);
    CHECK(q.after_yield == &ctx_b);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * misuse
 * ---------------------------------------------------------------------- */

static int join_self_rc;

static int join_self(void *arg, void **result)
{
    (void)arg, (void)result;
    join_self_rc = cosync_task_join(cosync_task_current(), NULL, NULL, COSYNC_FOREVER);
    return 0;
}

static int second_join_rc, second_detach_rc;

static int second_joiner(void *arg, void **result)
{
    (void)result;
    CHECKPOINT(2);
    second_join_rc = cosync_task_join(*(cosync_task *)arg, NULL, NULL, COSYNC_FOREVER);
    second_detach_rc = cosync_task_detach(*(cosync_task *)arg);
    return 0;
}

static int yield_twice_cp(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(1);
    CHECK_OK(cosync_yield());
    CHECKPOINT(3);
    return COSYNC_EOVERFLOW;
}

static int main_misuse(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop_stats before = loop_stats();

    /* bad spawns create nothing */
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_task_spawn(&t, NULL, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_task_spawn(NULL, NULL, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = SIZE_MAX}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = (size_t)1 << 40}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = 1}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = 100}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_spawn(NULL, &t, nop, NULL, NULL), COSYNC_EINVAL);
    CHECK_NULL(t.rec);
    cosync_loop_stats after = loop_stats();
    CHECK_EQ(after.tasks_records, before.tasks_records);
    CHECK_EQ(after.tasks_alive, before.tasks_alive);
    CHECK_EQ(after.tasks_ready, before.tasks_ready);

    /* join self, from main and from a spawned task */
    CHECK_ERR(cosync_task_join(cosync_task_current(), NULL, NULL, COSYNC_FOREVER), COSYNC_EDEADLK);
    CHECK_OK(cosync_task_spawn(&t, join_self, NULL, NULL));
    CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
    CHECK_ERR(join_self_rc, COSYNC_EDEADLK);

    /* join twice */
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, NULL));
    CHECK_OK(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER));
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);

    /* join a detached task (alive) */
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, NULL));
    CHECK_OK(cosync_task_detach(t));
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, 0), COSYNC_EINVAL);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_ESRCH);

    /* two joiners: the second gets EBUSY; detach while joined: EBUSY */
    static cosync_task target;
    cosync_task j2;
    CHECK_OK(cosync_task_spawn(&target, yield_twice_cp, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&j2, second_joiner, &target, NULL));
    CHECKPOINT(0);
    int status = 0;
    CHECK_OK(cosync_task_join(target, &status, NULL, COSYNC_FOREVER));
    CHECKPOINT(4);
    CHECK_ERR(status, COSYNC_EOVERFLOW);
    CHECK_ERR(second_join_rc, COSYNC_EBUSY);
    CHECK_ERR(second_detach_rc, COSYNC_EBUSY);
    CHECK_OK(cosync_task_join(j2, NULL, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(5);
    return 0;
}

TEST(misuse)
{
    run_main_ok(main_misuse, NULL);
}

TEST(outside_a_task_is_eperm)
{
    CHECK_NULL(cosync_loop_current());
    cosync_task t = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_task_spawn(NULL, nop, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_task_join(COSYNC_TASK_NONE, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_yield(), COSYNC_EPERM);
    CHECK_ERR(cosync_sleep(COSYNC_SEC(1)), COSYNC_EPERM);
    CHECK_ERR(cosync_sleep(0), COSYNC_EPERM);
    CHECK_ERR(cosync_sleep_until(cosync_now() + COSYNC_SEC(1)), COSYNC_EPERM);
    CHECK_ERR(cosync_sleep_until(COSYNC_FOREVER), COSYNC_EPERM);

    /* with a loop that exists but does not run, and a valid handle */
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &vopts));
    CHECK_OK(cosync_loop_spawn(loop, &t, nop, NULL, NULL));
    CHECK_ERR(cosync_task_spawn(NULL, nop, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_yield(), COSYNC_EPERM);
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK_ERR(cosync_task_join(t, NULL, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * join with deadlines
 * ---------------------------------------------------------------------- */

static int main_join_deadlines(void *arg, void **result)
{
    (void)arg, (void)result;
    int64_t t0 = cosync_now();
    CHECK_EQ(t0, COSYNC_SEC(1));
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, sleep_arg_secs, (void *)(intptr_t)10, NULL));
    /* not started yet */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_OK(cosync_yield()); /* t starts and sleeps */
    CHECK(!cosync_task_done(t));
    /* running (blocked) task, deadline 0 */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_now(), t0);
    /* a deadline that has already passed */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, 1), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_task_join(t, NULL, NULL, cosync_now()), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0);
    /* a deadline that passes while waiting */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, cosync_deadline_after(COSYNC_SEC(1))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(1));
    CHECK(!cosync_task_done(t)); /* it goes on */
    CHECK_ERR(cosync_task_join(t, NULL, NULL, cosync_deadline_after(COSYNC_SEC(2))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(3));
    CHECK_EQ(loop_stats().timers, 1); /* only t's sleep: the join's timer is gone */
    /* still joinable: no joiner left behind (detach would say EBUSY) */
    void *res = NULL;
    int status = -1;
    CHECK_OK(cosync_task_join(t, &status, &res, cosync_deadline_after(COSYNC_SEC(100))));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(10));
    CHECK_EQ(status, 0);
    CHECK_EQ((intptr_t)res, 10);
    CHECK_EQ(loop_stats().timers, 0);

    /* a task that finishes before the deadline: the join wins, no timeout */
    CHECK_OK(cosync_task_spawn(&t, sleep_arg_secs, (void *)(intptr_t)2, NULL));
    CHECK_OK(cosync_task_join(t, &status, NULL, cosync_deadline_after(COSYNC_SEC(2) + 1)));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(12));
    return 0;
}

TEST(join_deadlines)
{
    run_main_ok(main_join_deadlines, NULL);
}

/* ------------------------------------------------------------------------
 * scheduling order
 * ---------------------------------------------------------------------- */

static int main_fifo(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_task_spawn(&t[i], checkpoint_arg, (void *)(intptr_t)(i + 1), NULL));
    CHECKPOINT(0); /* none has run: spawn is not a suspension point */
    /* join the last first: the others still run in spawn order */
    CHECK_OK(cosync_task_join(t[4], NULL, NULL, COSYNC_FOREVER));
    CHECKPOINT(6);
    for (int i = 0; i < 4; i++)
        CHECK_OK(cosync_task_join(t[i], NULL, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(7);
    return 0;
}

TEST(spawn_order_is_run_order)
{
    run_main_ok(main_fifo, NULL);
}

static int spawner(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(1);
    cosync_task c;
    CHECK_OK(cosync_task_spawn(&c, checkpoint_arg, (void *)(intptr_t)4, NULL));
    CHECKPOINT(2); /* c has not run */
    CHECK(!cosync_task_done(c));
    CHECK_OK(cosync_yield()); /* b (ready before c), then c run */
    CHECKPOINT(5);
    CHECK(cosync_task_done(c));
    CHECK_OK(cosync_task_join(c, NULL, NULL, 0));
    return 0;
}

static int main_spawn_from_task(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, spawner, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&b, checkpoint_arg, (void *)(intptr_t)3, NULL));
    CHECKPOINT(0);
    CHECK_OK(cosync_task_join(a, NULL, NULL, COSYNC_FOREVER));
    CHECKPOINT(6);
    CHECK_OK(cosync_task_join(b, NULL, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(7);
    return 0;
}

TEST(task_spawned_by_task_starts_when_spawner_suspends)
{
    run_main_ok(main_spawn_from_task, NULL);
}

/* ------------------------------------------------------------------------
 * scale
 * ---------------------------------------------------------------------- */

#if UNDER_TSAN
#define MANY 8000 /* each blocked task is a TSan fiber: 8,128 at most */
#else
#define MANY 100000
#endif

static cosync_event many_ev;
static long many_started, many_finished;

static int many_waiter(void *arg, void **result)
{
    (void)result;
    long idx = (long)(intptr_t)arg;
    CHECK_EQ(many_started, idx);
    many_started++;
    CHECK_OK(cosync_event_wait(&many_ev, COSYNC_FOREVER));
    CHECK_EQ(many_finished, idx); /* released in the order they waited */
    many_finished++;
    return 0;
}

static int main_many(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&many_ev);
    many_started = many_finished = 0;
    for (long i = 0; i < MANY; i++)
        CHECK_OK(cosync_task_spawn(NULL, many_waiter, (void *)(intptr_t)i,
                                   &(cosync_task_opts){.stack_size = 32 << 10}));
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.tasks_alive, MANY + 1);
    CHECK_EQ(st.tasks_records, MANY + 1);
    CHECK_EQ(st.tasks_ready, MANY);
    CHECK_EQ(st.stacks_in_use, 1);
    CHECK_OK(cosync_yield()); /* every task starts and blocks */
    CHECK_EQ(many_started, MANY);
    CHECK_EQ(many_finished, 0);
    st = loop_stats();
    CHECK_EQ(st.tasks_alive, MANY + 1);
    CHECK_EQ(st.tasks_ready, 0);
    CHECK_EQ(st.stacks_in_use, MANY + 1);
    CHECK_OK(cosync_event_set(&many_ev));
    CHECK_EQ(loop_stats().tasks_ready, MANY);
    CHECK_OK(cosync_yield()); /* all of them run before main again */
    CHECK_EQ(many_finished, MANY);
    st = loop_stats();
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_EQ(st.tasks_records, 1);
    CHECK_EQ(st.stacks_in_use, 1);
    return 0;
}

TEST(hundred_thousand_blocked_tasks)
{
    run_main_ok(main_many, NULL); /* run_main checks 0 records at the end */
}

#if UNDER_ASAN
#define SEQUENTIAL 200000
#else
#define SEQUENTIAL 1000000
#endif

static int main_sequential(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t mapped_early = 0;
    for (long i = 0; i < SEQUENTIAL; i++) {
        cosync_task t;
        CHECK_OK(cosync_task_spawn(&t, return_arg, (void *)(intptr_t)i, NULL));
        void *res = NULL;
        CHECK_OK(cosync_task_join(t, NULL, &res, COSYNC_FOREVER));
        if ((intptr_t)res != i)
            CHECK_EQ((intptr_t)res, i);
        if (i == 10)
            mapped_early = loop_stats().stacks_mapped;
    }
    cosync_loop_stats st = loop_stats();
    CHECK_LE(mapped_early, 2);
    CHECK_EQ(st.stacks_mapped, mapped_early);
    CHECK_EQ(st.stacks_in_use, 1);
    CHECK_EQ(st.tasks_records, 1);
    CHECK_EQ(cosync_task_id(cosync_task_current()), 1);
    return 0;
}

TEST(stacks_reused_by_sequential_spawns)
{
    run_main_ok(main_sequential, NULL);
}

/* ------------------------------------------------------------------------
 * per-task stack size
 * ---------------------------------------------------------------------- */

static __attribute__((noinline)) int use_big_stack(void *arg, void **result)
{
    (void)arg;
    volatile char big[512 << 10];
    for (size_t i = 0; i < sizeof big; i += 256)
        big[i] = (char)i;
    big[sizeof big - 1] = 1;
    long sum = 0;
    for (size_t i = 0; i < sizeof big; i += 4096)
        sum += big[i];
    *result = (void *)(intptr_t)(sum + big[sizeof big - 1]);
    CHECK_OK(cosync_yield()); /* suspends with the big frame live */
    big[0] = 3;
    CHECK_EQ(big[0], 3);
    return 0;
}

static int main_stack_size(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t mapped = loop_stats().stacks_mapped;
    cosync_task t;
    CHECK_OK(
        cosync_task_spawn(&t, use_big_stack, NULL, &(cosync_task_opts){.stack_size = 1 << 20}));
    CHECK_OK(cosync_yield());
    CHECK_EQ(loop_stats().stacks_mapped, mapped + 1); /* its own, bigger stack */
    CHECK_EQ(loop_stats().stacks_in_use, 2);
    join_ok(t);
    CHECK_EQ(loop_stats().stacks_in_use, 1);
    return 0;
}

TEST(per_task_stack_size)
{
    run_main_ok(main_stack_size, NULL);
    /* the same through a loop's default stack size */
    cosync_loop *loop;
    cosync_loop_opts o = vopts;
    o.stack_size = 1 << 20;
    CHECK_OK(cosync_loop_init(&loop, &o));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, use_big_stack, NULL, NULL));
    int status = -1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_EQ(status, 0);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * allocator, fault injection
 * ---------------------------------------------------------------------- */

static int main_alloc_use(void *arg, void **result)
{
    (void)result;
    counting *c = arg;
    CHECK_GT(c->live, 0);
    cosync_task t[300];
    for (int i = 0; i < 300; i++) /* a second record block */
        CHECK_OK(cosync_task_spawn(&t[i], sleep_arg_secs, (void *)(intptr_t)(i % 3 + 1), NULL));
    for (int i = 0; i < 300; i++)
        CHECK_OK(cosync_task_join(t[i], NULL, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(custom_allocator_no_leak)
{
    counting c = {0, 0};
    cosync_allocator a;
    cosync_loop *loop = counted_loop(&c, &a);
    CHECK_EQ(c.live, 1); /* the loop itself */
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, main_alloc_use, &c, NULL));
    CHECK_EQ(c.live, 2); /* + a record block */
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK_GT(c.live, 3); /* blocks and stack descriptors stay until destroy */
    /* leave a task alive and unjoined too */
    CHECK_OK(cosync_loop_spawn(loop, &t, sleep_arg_secs, (void *)(intptr_t)5, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(c.live, 0);
    CHECK_GT(c.total, 3);

    /* an allocator without realloc is a bad option */
    cosync_allocator bad = {NULL, NULL};
    cosync_loop_opts o = vopts;
    o.allocator = &bad;
    loop = (cosync_loop *)&c;
    CHECK_ERR(cosync_loop_init(&loop, &o), COSYNC_EINVAL);
    CHECK_NULL(loop);
}

TEST(fault_loop_init)
{
    int fds = count_fds();
    counting c = {0, 0};
    cosync_allocator a = {count_realloc, &c};
    cosync_loop_opts o = vopts;
    for (int with_alloc = 0; with_alloc < 2; with_alloc++) {
        o.allocator = with_alloc ? &a : NULL;
        long k;
        for (k = 0;; k++) {
            CHECK_LT(k, 100);
            long failures = cosync__fault_failures;
            cosync_loop *loop = (cosync_loop *)&c;
            cosync__fault_countdown = k;
            int rc = cosync_loop_init(&loop, &o);
            cosync__fault_countdown = -1;
            if (cosync__fault_failures == failures) {
                CHECK_OK(rc);
                CHECK_NOTNULL(loop);
                CHECK_OK(cosync_loop_destroy(loop));
                break;
            }
            CHECK_EQ(cosync__fault_failures, failures + 1);
            CHECK_LT(rc, 0);
            CHECK_NULL(loop);
            CHECK_EQ(c.live, 0);
            CHECK_EQ(count_fds(), fds);
        }
        CHECK_GE(k, 3); /* the loop's memory, epoll, eventfd (and epoll_ctl) */
        CHECK_EQ(c.live, 0);
        CHECK_EQ(count_fds(), fds);
    }
}

TEST(fault_loop_spawn)
{
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a;
        cosync_loop *loop = counted_loop(&c, &a);
        long failures = cosync__fault_failures;
        long live = c.live;
        cosync_task t = COSYNC_TASK_NONE;
        cosync__fault_countdown = k;
        int rc = cosync_loop_spawn(loop, &t, nop, NULL, NULL);
        cosync__fault_countdown = -1;
        cosync_loop_stats st;
        CHECK_OK(cosync_loop_get_stats(loop, &st));
        bool failed = cosync__fault_failures != failures;
        if (failed) {
            CHECK_ERR(rc, COSYNC_ENOMEM);
            CHECK_EQ(c.live, live); /* nothing kept of the failed spawn */
            CHECK_NULL(t.rec);
            CHECK_EQ(st.tasks_records, 0);
            CHECK_EQ(st.tasks_alive, 0);
            CHECK_EQ(st.tasks_ready, 0);
            /* nothing to run: the loop is still usable */
            CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
            CHECK_OK(cosync_loop_spawn(loop, &t, nop, NULL, NULL));
        } else {
            CHECK_OK(rc);
            CHECK_EQ(st.tasks_records, 1);
        }
        CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(c.live, 0);
        if (!failed)
            break;
    }
    CHECK_GE(k, 1);
}

typedef struct spawn_fault {
    long k;
    int fill; /* tasks spawned first: main and they fill whole blocks of records */
    bool failed;
} spawn_fault;

static int main_spawn_fault(void *arg, void **result)
{
    (void)result;
    spawn_fault *sf = arg;
    int fill = sf->fill;
    cosync_task *t = malloc(sizeof *t * (size_t)fill);
    CHECK_NOTNULL(t);
    for (int i = 0; i < fill; i++)
        CHECK_OK(cosync_task_spawn(&t[i], nop, NULL, NULL));
    cosync_loop_stats before = loop_stats();
    CHECK_EQ(before.tasks_records, fill + 1);
    long failures = cosync__fault_failures;
    cosync_task x = COSYNC_TASK_NONE;
    cosync__fault_countdown = sf->k;
    int rc = cosync_task_spawn(&x, nop, NULL, NULL);
    cosync__fault_countdown = -1;
    sf->failed = cosync__fault_failures != failures;
    cosync_loop_stats after = loop_stats();
    if (sf->failed) {
        CHECK_ERR(rc, COSYNC_ENOMEM);
        CHECK_NULL(x.rec);
        CHECK_EQ(after.tasks_records, before.tasks_records);
        CHECK_EQ(after.tasks_alive, before.tasks_alive);
        CHECK_EQ(after.tasks_ready, before.tasks_ready);
        CHECK_OK(cosync_task_spawn(NULL, nop, NULL, NULL)); /* works again */
    } else {
        CHECK_OK(rc);
        CHECK_EQ(after.tasks_records, before.tasks_records + 1);
        CHECK_OK(cosync_task_join(x, NULL, NULL, COSYNC_FOREVER));
    }
    for (int i = 0; i < fill; i++)
        CHECK_OK(cosync_task_join(t[i], NULL, NULL, COSYNC_FOREVER));
    free(t);
    return 0;
}

/* How many tasks main spawns before the one whose record needs the first
 * block large enough to be mapped instead of allocated (the block sizes
 * depend on the record's size, which depends on the build). */
static bool has_mapped_block(void)
{
    for (cosync__record_block *b = cosync_loop_current()->blocks; b; b = b->next)
        if (b->mapped)
            return true;
    return false;
}

static int find_mapped_block_main(void *arg, void **result)
{
    (void)result;
    int *fill = arg;
    size_t cap = 1024, n = 0;
    cosync_task *t = malloc(sizeof *t * cap);
    CHECK_NOTNULL(t);
    while (!has_mapped_block()) {
        if (n == cap) {
            cap *= 2;
            t = realloc(t, sizeof *t * cap);
            CHECK_NOTNULL(t);
        }
        CHECK_OK(cosync_task_spawn(&t[n++], nop, NULL, NULL));
        CHECK_LT(n, 100000);
    }
    *fill = (int)n - 1;
    for (size_t i = 0; i < n; i++)
        CHECK_OK(cosync_task_join(t[i], NULL, NULL, COSYNC_FOREVER));
    free(t);
    return 0;
}

TEST(fault_task_spawn)
{
    /* the next spawn needs a new block: the second (allocated), and the
     * first mapped one */
    int fills[] = {255, 0};
    run_main_ok(find_mapped_block_main, &fills[1]);
    CHECK_GT(fills[1], 255);
    for (size_t f = 0; f < sizeof fills / sizeof fills[0]; f++) {
        spawn_fault sf = {.fill = fills[f]};
        for (sf.k = 0;; sf.k++) {
            CHECK_LT(sf.k, 100);
            run_main_ok(main_spawn_fault, &sf);
            if (!sf.failed)
                break;
        }
        CHECK_GE(sf.k, 1);
    }
}

static bool body_ran;

static int mark_ran(void *arg, void **result)
{
    (void)arg, (void)result;
    body_ran = true;
    return 0;
}

/* A task's first run needs a stack; on a fresh loop that takes a stack
 * descriptor and a chunk map: make each fail in turn. */
TEST(fault_stack_at_first_run)
{
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a;
        cosync_loop *loop = counted_loop(&c, &a);
        cosync_task t;
        CHECK_OK(cosync_loop_spawn(loop, &t, mark_ran, NULL, NULL));
        long live = c.live;
        long failures = cosync__fault_failures;
        body_ran = false;
        int status = 12345;
        cosync__fault_countdown = k;
        CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
        cosync__fault_countdown = -1;
        bool failed = cosync__fault_failures != failures;
        cosync_loop_stats st;
        CHECK_OK(cosync_loop_get_stats(loop, &st));
        if (failed) {
            CHECK_EQ(cosync__fault_failures, failures + 1);
            CHECK_ERR(status, COSYNC_ENOMEM);
            CHECK(!body_ran);
            CHECK_EQ(st.stacks_mapped, 0);
            CHECK_EQ(st.stacks_in_use, 0);
            CHECK_EQ(st.tasks_records, 0);
            CHECK_EQ(c.live, live); /* the stack descriptor went back */
            /* the loop works afterwards */
            CHECK_OK(cosync_loop_spawn(loop, &t, mark_ran, NULL, NULL));
            CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
            CHECK_OK(status);
            CHECK(body_ran);
        } else {
            CHECK_OK(status);
            CHECK(body_ran);
            CHECK_EQ(st.stacks_mapped, 1);
        }
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(c.live, 0);
        if (!failed)
            break;
    }
    CHECK_GE(k, 2); /* the descriptor (k = 0), the chunk map (k = 1) */
}

static int main_child_stack_fault(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    body_ran = false;
    CHECK_OK(cosync_task_spawn(&t, mark_ran, NULL, NULL));
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0; /* its stack descriptor */
    int status = 0;
    CHECK_OK(cosync_task_join(t, &status, NULL, COSYNC_FOREVER));
    cosync__fault_countdown = -1;
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_ERR(status, COSYNC_ENOMEM);
    CHECK(!body_ran);
    CHECK_EQ(loop_stats().stacks_in_use, 1);
    /* the next one gets its stack */
    CHECK_OK(cosync_task_spawn(&t, mark_ran, NULL, NULL));
    CHECK_OK(cosync_task_join(t, &status, NULL, COSYNC_FOREVER));
    CHECK_OK(status);
    CHECK(body_ran);
    return 0;
}

TEST(fault_stack_of_child_task)
{
    run_main_ok(main_child_stack_fault, NULL);
}

/* A finishing task starts the next ready one itself, from its own end (its
 * stack is still under it). If that one is fresh and of another stack
 * class, its stack is made right there; when that fails, cosync.h's
 * promise holds as anywhere else: the fresh task finishes with
 * COSYNC_ENOMEM without running, and the hand-over goes on to the next
 * task. The allocator notes which task was current when each stack
 * descriptor was made: the finishing one, for a hand-over. */
typedef struct handover_watch {
    counting c;
    uint64_t made_by[8]; /* cosync_task_current()'s id (0: the loop) per descriptor */
    int nmade;
} handover_watch;

static void *watch_descriptors(void *ud, void *ptr, size_t size)
{
    handover_watch *w = ud;
    if (!ptr && size == sizeof(cosync__stack) && w->nmade < 8)
        w->made_by[w->nmade++] = cosync_task_id(cosync_task_current());
    return count_realloc(&w->c, ptr, size);
}

typedef struct handover_fault {
    long k;
    handover_watch *w;
    bool failed;
    int failed_task; /* which of x, y, z finished with COSYNC_ENOMEM; -1: none */
} handover_fault;

static int main_handover_fault(void *arg, void **result)
{
    (void)result;
    handover_fault *hf = arg;
    handover_watch *w = hf->w;
    /* x and z on the loop's stack class, y on another: x finishes first
     * and hands over to y, which needs a stack of its class made */
    static const size_t sizes[3] = {0, 1 << 20, 0};
    int ran[3] = {0, 0, 0};
    cosync_task t[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(&t[i], bump_counter, &ran[i],
                                   &(cosync_task_opts){.stack_size = sizes[i]}));
    uint64_t x_id = cosync_task_id(t[0]);
    long live = w->c.live;
    long failures = cosync__fault_failures;
    w->nmade = 0;
    int st[3];
    cosync__fault_countdown = hf->k;
    for (int i = 0; i < 3; i++)
        st[i] = join_status(t[i]);
    cosync__fault_countdown = -1;
    hf->failed = cosync__fault_failures != failures;
    hf->failed_task = -1;
    for (int i = 0; i < 3; i++) {
        if (st[i] == COSYNC_ENOMEM) {
            CHECK_EQ(hf->failed_task, -1); /* one failure, one task without a stack */
            hf->failed_task = i;
            CHECK_EQ(ran[i], 0); /* finished without running */
        } else {
            CHECK_OK(st[i]); /* the others are not disturbed */
            CHECK_EQ(ran[i], 1);
        }
    }
    CHECK_EQ(hf->failed_task >= 0, hf->failed);
    if (hf->failed)
        CHECK_EQ(cosync__fault_failures, failures + 1);
    cosync_loop_stats s = loop_stats();
    /* every finished task's stack went back, on the failed hand-over too */
    CHECK_EQ(s.stacks_in_use, 1);
    CHECK_EQ(s.tasks_alive, 1);
    CHECK_EQ(s.tasks_records, 1);
    if (hf->failed_task == 1) {
        /* what y's stack had got (a descriptor, a chunk record) went back;
         * only x's descriptor stays, with its stack in the cache. A backend
         * that cannot start a task on the finishing one's stack (ucontext)
         * gave z a second stack of x's class meanwhile. */
        int z_own = COSYNC__CTX_CAN_START_ON_OWN_STACK ? 0 : 1;
        CHECK_EQ(w->c.live, live + 1 + z_own);
        CHECK_EQ(s.stacks_mapped, (size_t)(2 + z_own));
    }
    if (!hf->failed) {
        /* the path the failures above took: y's stack descriptor was made
         * as x finished, by x's hand-over (x's own by the loop) */
        CHECK_EQ(w->nmade, 2);
        CHECK_EQ(w->made_by[0], 0);
        CHECK_EQ(w->made_by[1], x_id);
        CHECK_EQ(w->c.live, live + 3); /* x's descriptor, y's and its chunk's record */
    } else if (hf->failed_task == 1 && w->nmade == 2) {
        CHECK_EQ(w->made_by[1], x_id); /* y's descriptor made, its chunk failed */
    }
    /* and a task of y's class gets its stack now */
    if (hf->failed) {
        ran[1] = 0;
        CHECK_OK(cosync_task_spawn(&t[1], bump_counter, &ran[1],
                                   &(cosync_task_opts){.stack_size = sizes[1]}));
        join_ok(t[1]);
        CHECK_EQ(ran[1], 1);
    }
    return 0;
}

TEST(fault_stack_of_fresh_task_handed_over_by_a_finishing_one)
{
    int y_failed = 0;
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        handover_watch w = {{0, 0}, {0}, 0};
        cosync_allocator a = {watch_descriptors, &w};
        cosync_loop_opts o = vopts;
        o.allocator = &a;
        cosync_loop *loop;
        CHECK_OK(cosync_loop_init(&loop, &o));
        handover_fault hf = {.k = k, .w = &w};
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, main_handover_fault, &hf, NULL));
        int status = 12345;
        CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
        CHECK_OK(status);
        end_loop(loop);
        CHECK_EQ(w.c.live, 0);
        y_failed += hf.failed_task == 1;
        if (!hf.failed)
            break;
    }
    /* y failed on the hand-over at each of its stack's fault points: the
     * descriptor, the chunk record, the chunk's map (k = 0 was x's) */
    CHECK_GE(y_failed, 3);
}

/* cosync_loop_destroy cancels the tasks left and runs their clean-ups; a
 * clean-up that spawns a helper and joins it may meet an allocation
 * failure there: the helper's record (the record block is full), or its
 * stack. That failure is the clean-up's to see: COSYNC_ENOMEM from the
 * spawn, or as the helper's status. The close is not disturbed: no task
 * had to be dropped, so it returns 0 (cosync.h), and it frees everything. */
enum { CLEANERS = 3 };

typedef struct cleanup_probe {
    cosync_event ev; /* never set: the tasks wait on it until the close cancels them */
    int wait_rc[CLEANERS];
    int spawn_rc[CLEANERS];
    int helper_status[CLEANERS];
    int helpers_ran;
    int cleaned;
} cleanup_probe;

typedef struct cleaner_arg {
    cleanup_probe *p;
    int i;
} cleaner_arg;

static int count_helper(void *arg, void **result)
{
    (void)result;
    ((cleanup_probe *)arg)->helpers_ran++;
    return 0;
}

static int cleaner(void *arg, void **result)
{
    (void)result;
    cleaner_arg *a = arg;
    cleanup_probe *p = a->p;
    p->wait_rc[a->i] = cosync_event_wait(&p->ev, COSYNC_FOREVER);
    /* the clean-up: a helper on a stack of another class, joined */
    cosync_task h;
    p->spawn_rc[a->i] =
        cosync_task_spawn(&h, count_helper, p, &(cosync_task_opts){.stack_size = 512 << 10});
    if (p->spawn_rc[a->i] == 0)
        p->helper_status[a->i] = join_status(h);
    p->cleaned++;
    return p->wait_rc[a->i];
}

static int wait_event_arg(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

TEST(fault_during_destroy_in_clean_ups_that_spawn_helpers)
{
    int fds = count_fds();
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a;
        cosync_loop *loop = counted_loop(&c, &a);
        cleanup_probe p;
        memset(&p, 0, sizeof p);
        cosync_event_init(&p.ev);
        cleaner_arg args[CLEANERS];
        /* a first task, 252 waiters and the cleaners: the first record
         * block, 256 records; the first task goes when the run collects
         * it, the others start (the run ends once the tasks ready when it
         * finished have run) and wait. The waiters are not detached and
         * never joined: their records stay until the loop goes, so the
         * ones the close cancels before the cleaners free none. */
        cosync_task first, waiter;
        CHECK_OK(cosync_loop_spawn(loop, &first, nop, NULL, NULL));
        for (int i = 0; i < 252; i++)
            CHECK_OK(cosync_loop_spawn(loop, &waiter, wait_event_arg, &p.ev, NULL));
        for (int i = 0; i < CLEANERS; i++) {
            args[i] = (cleaner_arg){&p, i};
            CHECK_OK(cosync_loop_spawn(loop, NULL, cleaner, &args[i], NULL));
        }
        CHECK_OK(cosync_loop_run(loop, first, NULL, NULL));
        /* one more that never starts (the close cancels it before it runs)
         * takes the last free record: the first helper needs a new block */
        CHECK_OK(cosync_loop_spawn(loop, &waiter, wait_event_arg, &p.ev, NULL));
        CHECK_NULL(loop->free_recs);
        cosync_loop_stats st;
        CHECK_OK(cosync_loop_get_stats(loop, &st));
        CHECK_EQ(st.tasks_alive, 256);
        long total = c.total;
        long failures = cosync__fault_failures;
        cosync__fault_countdown = k;
        int rc = cosync_loop_destroy(loop);
        cosync__fault_countdown = -1;
        bool failed = cosync__fault_failures != failures;
        CHECK_OK(rc); /* no task had to be dropped */
        CHECK_EQ(c.live, 0);
        CHECK_EQ(count_fds(), fds);
        CHECK_EQ(p.cleaned, CLEANERS); /* every clean-up ran to its end */
        int enomem = 0;
        for (int i = 0; i < CLEANERS; i++) {
            CHECK_ERR(p.wait_rc[i], COSYNC_ECANCELED);
            if (p.spawn_rc[i] == COSYNC_ENOMEM) {
                enomem++;
            } else {
                CHECK_OK(p.spawn_rc[i]);
                if (p.helper_status[i] == COSYNC_ENOMEM)
                    enomem++;
                else
                    CHECK_OK(p.helper_status[i]);
            }
        }
        /* the failure reached exactly one clean-up; the other helpers ran */
        CHECK_EQ(enomem, failed ? 1 : 0);
        CHECK_EQ(p.helpers_ran, CLEANERS - enomem);
        if (!failed) {
            /* what the close allocated: the second record block, the
             * helpers' stack descriptor (they run one after another on
             * one stack) and its chunk's record; a backend that cannot
             * start a task on the finishing one's stack (ucontext) needs
             * a second descriptor in that chunk for the next helper */
            CHECK_EQ(c.total - total, 3 + (COSYNC__CTX_CAN_START_ON_OWN_STACK ? 0 : 1));
            break;
        }
        CHECK_EQ(cosync__fault_failures, failures + 1);
    }
    CHECK_GE(k, 4); /* the record block, the descriptor, the chunk record, the chunk's map */
}

/* cosync_run_with with an allocator: whichever allocation (or other fault
 * point) fails, the call returns an error cosync.h documents for it (an
 * error of cosync_loop_init or cosync_loop_spawn, or main's status:
 * COSYNC_ENOMEM, or the negated errno of a loop's fd), main does not get to
 * its end, and nothing stays allocated: the run's clean-up frees what the
 * run made, with a task left alive too. */
typedef struct run_with_probe {
    bool started, finished;
} run_with_probe;

static int sleep_long(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_SEC(100));
}

static int main_run_with_fault(void *arg, void **result)
{
    (void)result;
    run_with_probe *p = arg;
    p->started = true;
    /* a child on a stack class of its own; its failure is main's */
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = 1 << 20}));
    int st = join_status(t);
    if (st)
        return st;
    /* one left alive for the run's clean-up to cancel, if it can start */
    CHECK_OK(cosync_task_spawn(&t, sleep_long, NULL, NULL));
    CHECK_OK(cosync_yield());
    if (cosync_task_done(t))
        return join_status(t);
    p->finished = true;
    return 0;
}

TEST(fault_run_with_allocator_returns_the_error_and_frees_everything)
{
    int fds = count_fds();
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting c = {0, 0};
        cosync_allocator a = {count_realloc, &c};
        run_with_probe p = {false, false};
        long failures = cosync__fault_failures;
        cosync__fault_countdown = k;
        int rc = cosync_run_with(main_run_with_fault, &p,
                                 &(cosync_loop_opts){.virtual_clock = true, .allocator = &a});
        cosync__fault_countdown = -1;
        bool failed = cosync__fault_failures != failures;
        CHECK_EQ(c.live, 0);
        CHECK_EQ(count_fds(), fds);
        if (!failed) {
            CHECK_OK(rc);
            CHECK(p.finished);
            break;
        }
        CHECK_EQ(cosync__fault_failures, failures + 1);
        CHECK(!p.finished);
        if (rc == -EMFILE) /* the fault layer's failed epoll_create1 or eventfd */
            CHECK(!p.started);
        else
            CHECK_ERR(rc, COSYNC_ENOMEM);
    }
    /* the loop (its memory, epoll, eventfd, epoll_ctl), main's record
     * block, main's stack, the child's stack (descriptor, chunk record,
     * chunk map each), the sleeper's descriptor */
    CHECK_GE(k, 12);
}

/* ------------------------------------------------------------------------
 * Each task keeps its own FP control modes (the ABI makes them
 * callee-saved, and a suspension is a call); a new task starts with the
 * modes the loop was run with.
 * ---------------------------------------------------------------------- */

static int fp_seen_b, fp_seen_child, fp_seen_a_after;

/* How the vector unit rounds (MXCSR on x86-64, where fegetround() reads
 * only the x87 control word; FPCR on AArch64): two quotients that together
 * tell the three rounding modes used here apart. */
static volatile double fp_one = 1.0, fp_three = 3.0, fp_ten = 10.0;

typedef struct fp_sig {
    double third, tenth; /* round to nearest goes down for one, up for the other */
} fp_sig;

static fp_sig fp_rounding(void)
{
    return (fp_sig){fp_one / fp_three, fp_one / fp_ten};
}

static fp_sig fp_sig_up, fp_sig_down, fp_sig_nearest;
static bool fp_vector_ok = true; /* every task saw its own rounding */
static bool fp_vector_modelled;  /* valgrind rounds to nearest whatever MXCSR says */

/* The signatures of the three modes, read in this thread; whether the
 * vector unit's rounding can be checked at all (valgrind rounds to nearest
 * whatever MXCSR says). Leaves the thread rounding to nearest. */
static void fp_signatures_init(void)
{
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    fp_sig_up = fp_rounding();
    CHECK_EQ(fesetround(FE_DOWNWARD), 0);
    fp_sig_down = fp_rounding();
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    fp_sig_nearest = fp_rounding();
    fp_vector_modelled = !under_valgrind();
    if (fp_vector_modelled) { /* the quotients do tell the modes apart */
        CHECK(memcmp(&fp_sig_up, &fp_sig_nearest, sizeof(fp_sig)) != 0);
        CHECK(memcmp(&fp_sig_down, &fp_sig_nearest, sizeof(fp_sig)) != 0);
        CHECK(memcmp(&fp_sig_up, &fp_sig_down, sizeof(fp_sig)) != 0);
    }
}

static void check_rounding(fp_sig want)
{
    if (!fp_vector_modelled)
        return;
    fp_sig got = fp_rounding();
    if (memcmp(&got, &want, sizeof got) != 0)
        fp_vector_ok = false;
}

static int fp_child(void *arg, void **result)
{
    (void)arg, (void)result;
    fp_seen_child = fegetround();
    check_rounding(fp_sig_nearest);
    return 0;
}

static int fp_task_a(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    cosync_task child;
    CHECK_OK(cosync_task_spawn(&child, fp_child, NULL, NULL));
    CHECK_OK(cosync_yield()); /* b and the child run with their own modes */
    fp_seen_a_after = fegetround();
    check_rounding(fp_sig_up);
    CHECK_OK(cosync_task_join(child, NULL, NULL, COSYNC_FOREVER));
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    return 0;
}

static int fp_task_b(void *arg, void **result)
{
    (void)arg, (void)result;
    fp_seen_b = fegetround();
    check_rounding(fp_sig_nearest);
    CHECK_EQ(fesetround(FE_DOWNWARD), 0);
    CHECK_OK(cosync_yield());
    CHECK_EQ(fegetround(), FE_DOWNWARD);
    check_rounding(fp_sig_down);
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    return 0;
}

TEST(fp_modes_are_per_task)
{
    cosync_loop *loop;
    cosync_loop_opts opts = {.virtual_clock = true};
    fp_signatures_init();
    CHECK_OK(cosync_loop_init(&loop, &opts));
    CHECK_OK(cosync_loop_spawn(loop, NULL, fp_task_a, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, fp_task_b, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(fp_seen_b, FE_TONEAREST);
    CHECK_EQ(fp_seen_child, FE_TONEAREST);
    CHECK_EQ(fp_seen_a_after, FE_UPWARD);
    CHECK(fp_vector_ok);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    check_rounding(fp_sig_nearest);
    CHECK(fp_vector_ok);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* ------------------------------------------------------------------------
 * With shared_fp_modes the tasks share the thread's FP control modes, as
 * asyncio's tasks do: a mode set before a suspension is what the next task
 * runs with (a new one too), until some task sets another; the thread
 * keeps the last one after the run.
 * ---------------------------------------------------------------------- */

typedef struct fp_step {
    const char *who;
    int round; /* fegetround() */
    bool vector_ok;
} fp_step;

static fp_step fp_steps[8];
static int fp_nsteps;

/* Record what this task runs with, and that the vector unit rounds
 * (MXCSR on x86-64) the way fegetround() says. */
static void fp_note(const char *who)
{
    int round = fegetround();
    bool ok = true;
    if (fp_vector_modelled) {
        fp_sig want = round == FE_UPWARD     ? fp_sig_up
                      : round == FE_DOWNWARD ? fp_sig_down
                                             : fp_sig_nearest;
        fp_sig got = fp_rounding();
        ok = memcmp(&got, &want, sizeof got) == 0;
    }
    if (fp_nsteps < (int)(sizeof fp_steps / sizeof fp_steps[0]))
        fp_steps[fp_nsteps++] = (fp_step){who, round, ok};
}

static int shared_fp_child(void *arg, void **result)
{
    (void)arg, (void)result;
    fp_note("child");
    return 0;
}

static int shared_fp_a(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    cosync_task child;
    CHECK_OK(cosync_task_spawn(&child, shared_fp_child, NULL, NULL));
    CHECK_OK(cosync_yield()); /* b, then the child, run */
    fp_note("a");
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    CHECK_OK(cosync_task_join(child, NULL, NULL, COSYNC_FOREVER));
    return 0;
}

static int shared_fp_b(void *arg, void **result)
{
    (void)arg, (void)result;
    fp_note("b");
    CHECK_EQ(fesetround(FE_DOWNWARD), 0);
    CHECK_OK(cosync_yield());
    fp_note("b");
    return 0;
}

TEST(fp_modes_shared_by_option)
{
    fp_signatures_init();
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop,
                              &(cosync_loop_opts){.virtual_clock = true, .shared_fp_modes = true}));
    CHECK_OK(cosync_loop_spawn(loop, NULL, shared_fp_a, NULL, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, shared_fp_b, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    /* a sets upward and yields; b sees it, sets downward and yields; the
     * new child and then a see downward; a sets nearest, which b sees */
    static const struct {
        const char *who;
        int round;
    } want[] = {{"b", FE_UPWARD}, {"child", FE_DOWNWARD}, {"a", FE_DOWNWARD}, {"b", FE_TONEAREST}};
    CHECK_EQ(fp_nsteps, 4);
    for (int i = 0; i < 4; i++) {
        CHECK_STREQ(fp_steps[i].who, want[i].who);
        CHECK_EQ(fp_steps[i].round, want[i].round);
        CHECK(fp_steps[i].vector_ok);
    }
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* The last mode set is the thread's after the run. */
static int shared_fp_leave_upward(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_yield());
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    return 0;
}

TEST(fp_modes_shared_stay_after_run)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop,
                              &(cosync_loop_opts){.virtual_clock = true, .shared_fp_modes = true}));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, shared_fp_leave_upward, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    int after = fegetround();
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    CHECK_EQ(after, FE_UPWARD);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* A task that sets a mode and finishes starts the next new task on its own
 * stack (no switch): that task runs with the mode too. */
static int fp_heir_round = -1;

static int shared_fp_heir(void *arg, void **result)
{
    (void)arg, (void)result;
    fp_heir_round = fegetround();
    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    return 0;
}

static int shared_fp_set_and_finish(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_task_spawn(NULL, shared_fp_heir, NULL, NULL));
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    return 0;
}

TEST(fp_modes_shared_with_a_task_started_by_a_finishing_one)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop,
                              &(cosync_loop_opts){.virtual_clock = true, .shared_fp_modes = true}));
    CHECK_OK(cosync_loop_spawn(loop, NULL, shared_fp_set_and_finish, NULL, NULL));
    uint64_t switches_before;
    {
        cosync_loop_stats st;
        CHECK_OK(cosync_loop_get_stats(loop, &st));
        switches_before = st.switches;
    }
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(fp_heir_round, FE_UPWARD);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    /* into the first task, from it to the heir without the loop, back */
    CHECK_EQ(st.switches - switches_before, 3);
    CHECK_OK(cosync_loop_destroy(loop));
}

/* Shared modes share MXCSR's exception flags too: a flag a task raises is
 * still raised when it resumes (here no other task clears it). */
static bool fp_flag_before, fp_flag_after;

static int fp_idle_task(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

static volatile double fp_zero = 0.0;

static int fp_raise_and_yield(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_EQ(feclearexcept(FE_ALL_EXCEPT), 0);
    volatile double inf = fp_one / fp_zero;
    (void)inf;
    fp_flag_before = fetestexcept(FE_DIVBYZERO) != 0;
    CHECK_OK(cosync_task_spawn(NULL, fp_idle_task, NULL, NULL));
    CHECK_OK(cosync_yield()); /* the idle task runs */
    fp_flag_after = fetestexcept(FE_DIVBYZERO) != 0;
    CHECK_EQ(feclearexcept(FE_ALL_EXCEPT), 0);
    return 0;
}

TEST(fp_modes_shared_keep_exception_flags)
{
    if (under_valgrind())
        return; /* valgrind does not model the flags */
    for (int shared = 0; shared <= 1; shared++) {
        cosync_loop *loop;
        CHECK_OK(cosync_loop_init(
            &loop, &(cosync_loop_opts){.virtual_clock = true, .shared_fp_modes = shared}));
        fp_flag_before = fp_flag_after = false;
        CHECK_OK(cosync_loop_spawn(loop, NULL, fp_raise_and_yield, NULL, NULL));
        CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
        CHECK(fp_flag_before);
        CHECK(fp_flag_after);
        CHECK_OK(cosync_loop_destroy(loop));
    }
}

/* ------------------------------------------------------------------------
 * Stack overflow is caught, never silent: with a guard page the overflow
 * faults at once; without one (beyond the map budget) the check at the
 * next suspension aborts with a message. Each runs in a child process.
 * ---------------------------------------------------------------------- */

static volatile int overflow_sink;

typedef struct deep {
    char *top;   /* an address near the top of the task's stack */
    size_t want; /* how far below it to suspend */
} deep;

/* Recurse with 512-byte frames until @d->want bytes below the top; suspend
 * there. (Measured by addresses, so whatever the frames' real size.) */
static int recurse(deep *d)
{
    volatile char frame[512];
    frame[0] = 1;
    if ((size_t)(d->top - (char *)frame) >= d->want)
        return cosync_yield() == 0 ? frame[0] : -1;
    int r = recurse(d);
    overflow_sink += frame[0];
    return r + frame[511];
}

static int overflow_body(void *arg, void **result)
{
    (void)result;
    char here;
    deep d = {&here, (size_t)(intptr_t)arg};
    return recurse(&d) >= 0 ? 0 : 1;
}

static cosync_event never;

/* Takes the first stack of the chunk and keeps it: the deep task then gets
 * the next one, which has mapped memory (this stack's top) right below it,
 * so only a guard page can make its overflow fault. */
static int holder(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&never, COSYNC_FOREVER);
}

/* How the deep task of overflow_in_child runs: on a stack of its own; as
 * a dense task, on its shared stack; started on the stack that a task
 * spawned before it leaves as it finishes. */
enum { DEEP_PLAIN, DEEP_DENSE, DEEP_ON_A_FINISHED_TASKS_STACK };

/* Run a task that suspends @depth bytes deep on a 16 KiB stack (a 4 KiB
 * guard or no-go page, and 10 to 12 KiB to use, as its start is offset by
 * up to 2 KiB; see docs/stacks.md) in a child, run as @how says, with
 * guard pages made as @guards says; return the child's wait status (exit
 * 0: the task finished and the stacks had the guards asked for), and what
 * it wrote to stderr in @err (@size bytes, NUL-terminated). */
static int overflow_in_child(size_t depth, int guards, int how, char *err, size_t size)
{
    int fds[2];
    CHECK_EQ(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        close(fds[0]);
        dup2(fds[1], 2);
        cosync__stack_test_guards = guards;
        cosync_loop *loop;
        if (cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}))
            _exit(3);
        cosync_task t;
        cosync_task_opts o = {.name = "deep", .stack_size = 16 << 10, .dense = how == DEEP_DENSE};
        cosync_task_opts ho = {.name = "holder", .stack_size = 16 << 10};
        cosync_task_opts fo = {.name = "first", .stack_size = 16 << 10};
        if (cosync_loop_spawn(loop, NULL, holder, NULL, &ho) ||
            (how == DEEP_ON_A_FINISHED_TASKS_STACK &&
             cosync_loop_spawn(loop, NULL, nop, NULL, &fo)) ||
            cosync_loop_spawn(loop, &t, overflow_body, (void *)(intptr_t)depth, &o))
            _exit(4);
        int status = -1;
        cosync_loop_run(loop, t, &status, NULL);
        cosync_loop_stats st;
        if (cosync_loop_get_stats(loop, &st) != 0)
            _exit(7);
        bool guarded =
            guards == COSYNC__TEST_GUARDS_NONE ? st.stacks_guarded == 0 : st.stacks_guarded == 2;
        _exit(status != 0 ? 5 : !guarded ? 6 : 0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n + 1 < size && (got = read(fds[0], err + n, size - 1 - n)) > 0)
        n += (size_t)got;
    err[n] = '\0';
    close(fds[0]);
    int ws;
    CHECK_EQ(waitpid(pid, &ws, 0), pid);
    return ws;
}

/* A task that needs a stack when none is cached makes the pool map a new
 * chunk and install its guard pages, on the stack of the task that is
 * switching away: that must fit in a small stack. 300 tasks on 16 KiB
 * stacks (a chunk holds 256), each started from the previous one's
 * suspension, so the 257th is mapped on a small stack. */
static cosync_event chunk_ev;
static int chunk_started;

static int chunk_child(void *arg, void **result)
{
    (void)arg, (void)result;
    chunk_started++;
    return cosync_event_wait(&chunk_ev, COSYNC_FOREVER);
}

static int chunk_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&chunk_ev);
    chunk_started = 0;
    for (int i = 0; i < 300; i++)
        CHECK_OK(cosync_task_spawn(NULL, chunk_child, NULL,
                                   &(cosync_task_opts){.stack_size = 16 << 10}));
    CHECK_OK(cosync_yield());
    CHECK_EQ(chunk_started, 300);
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(cosync_loop_current(), &st));
    CHECK_GE(st.stacks_mapped, 301);
    CHECK_OK(cosync_event_set(&chunk_ev));
    CHECK_OK(cosync_yield()); /* they finish */
    return 0;
}

/* The stack cache: after a burst, the stacks stay mapped and hot for the
 * next one; stacks no task needed for a whole trim interval (1 s of loop
 * time), beyond stack_cache of them, give their pages back; and a later
 * burst reuses them all without mapping any. */
enum { BURST = 10, KEEP = 2 };

static int sleep_1ms(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_MS(1));
}

static void burst(void)
{
    cosync_task t[BURST];
    for (int i = 0; i < BURST; i++)
        CHECK_OK(cosync_task_spawn(&t[i], sleep_1ms, NULL, NULL));
    CHECK_OK(cosync_gather(t, BURST, NULL, COSYNC_FOREVER));
}

static bool page_resident(const char *page)
{
    unsigned char v = 0;
    CHECK_EQ(mincore((void *)(uintptr_t)page, cosync__page_size(), &v), 0);
    return v & 1;
}

static int stack_cache_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cosync_loop_current();
    const cosync__stack_class *c = &loop->stacks.cls[loop->default_cls];
    burst();
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.stacks_mapped, BURST + 1);
    CHECK_EQ(st.stacks_in_use, 1);
    CHECK_EQ(c->nhot, BURST);
    /* a trim runs at the end of the first loop turn a second on: the first
     * still sees the burst's use, the second gives back all but KEEP */
    CHECK_OK(cosync_sleep(COSYNC_MS(1100)));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(c->nhot, BURST);
    CHECK_OK(cosync_sleep(COSYNC_MS(1100)));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_EQ(c->nhot, KEEP);
    size_t cold = 0;
    for (const cosync__stack *s = c->cold; s; s = s->next) {
        CHECK(s->cold);
        CHECK(!page_resident(cosync__stack_top(s) - cosync__page_size()));
        cold++;
    }
    CHECK_EQ(cold, BURST - KEEP);
    for (const cosync__stack *s = c->hot; s; s = s->next)
        CHECK(page_resident(cosync__stack_top(s) - cosync__page_size()));
    /* the next burst maps nothing new */
    burst();
    st = loop_stats();
    CHECK_EQ(st.stacks_mapped, BURST + 1);
    CHECK_EQ(c->nhot, BURST);
    CHECK_NULL(c->cold);
    return 0;
}

/* Run @fn as the main task of a virtual-clock loop that caches KEEP
 * stacks per class. */
static void run_keeping_stacks(cosync_task_fn fn)
{
    cosync_loop *loop;
    CHECK_OK(
        cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .stack_cache = KEEP}));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, fn, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
}

TEST(stack_cache_keeps_what_it_should_and_gives_back_the_rest)
{
    run_keeping_stacks(stack_cache_main);
}

/* A loop that sleeps long after a burst still gives the surplus back: it
 * wakes for the trims (two: the first sees the burst's use) instead of
 * keeping the burst's stacks resident for the whole sleep. */
static int sleep_after_burst_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cosync_loop_current();
    const cosync__stack_class *c = &loop->stacks.cls[loop->default_cls];
    burst();
    CHECK_EQ(c->nhot, BURST);
    int64_t t0 = cosync_now();
    CHECK_OK(cosync_sleep(COSYNC_SEC(3600)));
    CHECK_EQ(cosync_now(), t0 + COSYNC_SEC(3600)); /* the sleep itself is unchanged */
    CHECK_EQ(c->nhot, KEEP);
    for (const cosync__stack *s = c->cold; s; s = s->next)
        CHECK(!page_resident(cosync__stack_top(s) - cosync__page_size()));
    return 0;
}

TEST(a_sleeping_loop_still_gives_back_cached_stacks)
{
    run_keeping_stacks(sleep_after_burst_main);
}

/* A trim gives back only the stacks that no task needed since the trim
 * before: a second burst between two trims keeps all its stacks hot
 * through the next trim, though they lay idle at both; the trim after
 * that, with no use in between, gives back all but KEEP. */
static int burst_between_trims_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cosync_loop_current();
    const cosync__stack_class *c = &loop->stacks.cls[loop->default_cls];
    burst();
    CHECK_OK(cosync_sleep(COSYNC_MS(1100))); /* a trim: it sees the first burst's use */
    CHECK_EQ(c->nhot, BURST);
    /* a second burst takes the BURST stacks again */
    burst();
    CHECK_OK(cosync_sleep(COSYNC_MS(1100))); /* a trim: it sees this one's */
    CHECK_EQ(c->nhot, BURST);
    CHECK_NULL(c->cold);
    CHECK_OK(cosync_sleep(COSYNC_MS(1100))); /* a trim after none was used */
    CHECK_EQ(c->nhot, KEEP);
    return 0;
}

TEST(stacks_used_between_two_trims_stay_cached_through_the_second)
{
    run_keeping_stacks(burst_between_trims_main);
}

/* A stack for a fresh task is made on the loop's own stack, never on the
 * stack of the task that suspends and hands over to it: that task may be
 * deep in its own, and mapping a stack (mmap, the guard calls and their
 * buffers) takes kilobytes. The allocator sees each stack's descriptor
 * made with no task running: main and a yielding task each hand over to a
 * fresh task of a size no cached stack has. */
typedef struct stack_watch {
    counting c;
    long made, made_in_a_task;
} stack_watch;

static void *watch_stack_allocs(void *ud, void *ptr, size_t size)
{
    stack_watch *w = ud;
    if (!ptr && size == sizeof(cosync__stack)) {
        w->made++;
        if (cosync_task_current().rec)
            w->made_in_a_task++;
    }
    return count_realloc(&w->c, ptr, size);
}

static int yield_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_yield();
}

static int hand_over_to_fresh_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], yield_once, NULL, NULL)); /* no cached stack yet */
    CHECK_OK(
        cosync_task_spawn(&t[1], yield_once, NULL, &(cosync_task_opts){.stack_size = 256 << 10}));
    CHECK_OK(
        cosync_task_spawn(&t[2], yield_once, NULL, &(cosync_task_opts){.stack_size = 1 << 20}));
    CHECK_OK(cosync_yield()); /* each hands over to the next, fresh one */
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(a_new_stack_is_made_on_the_loops_stack)
{
    stack_watch w = {{0, 0}, 0, 0};
    cosync_allocator a = {watch_stack_allocs, &w};
    CHECK_OK(cosync_run_with(hand_over_to_fresh_main, NULL,
                             &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
    CHECK_EQ(w.made, 4); /* main's and the three tasks' */
    CHECK_EQ(w.made_in_a_task, 0);
    CHECK_EQ(w.c.live, 0);
}

TEST(new_stack_chunk_mapped_from_a_small_stack)
{
    CHECK_OK(run_main(chunk_main, NULL));
}

TEST(stack_overflow_is_caught)
{
    /* ASan's own stack checks would report it first; TSan handles the
     * SIGSEGV itself and ends the process another way */
    if (UNDER_ASAN || UNDER_TSAN)
        return;
    /* a task 8 KiB deep on the same small stack runs fine, with or
     * without a guard page */
    int ws;
    char err[512];
    for (int mode = 0; mode < 3; mode++) {
        ws = overflow_in_child(8 << 10, mode, DEEP_PLAIN, err, sizeof err);
        CHECK(WIFEXITED(ws));
        CHECK_EQ(WEXITSTATUS(ws), 0);
        CHECK_STREQ(err, "");
    }
    /* with a guard page (installed either way), going past 12 KiB: SIGSEGV
     * at once */
    ws = overflow_in_child(20 << 10, COSYNC__TEST_GUARDS_AUTO, DEEP_PLAIN, err, sizeof err);
    CHECK(WIFSIGNALED(ws));
    CHECK_EQ(WTERMSIG(ws), SIGSEGV);
    ws = overflow_in_child(20 << 10, COSYNC__TEST_GUARDS_MPROTECT, DEEP_PLAIN, err, sizeof err);
    CHECK(WIFSIGNALED(ws));
    CHECK_EQ(WTERMSIG(ws), SIGSEGV);
    /* without one, suspending 13 KiB deep (in the stack's lowest page):
     * the suspension's check aborts, with a message */
    ws = overflow_in_child(13 << 10, COSYNC__TEST_GUARDS_NONE, DEEP_PLAIN, err, sizeof err);
    CHECK(WIFSIGNALED(ws));
    CHECK_EQ(WTERMSIG(ws), SIGABRT);
    CHECK_NOTNULL(strstr(err, "cosync: stack overflow in task 'deep' (#2)"));
}

/* Without a guard page, the check at each suspension covers a task
 * however it came to its stack: a dense task on the stack it shares, and
 * a task started on the stack that a finishing one leaves it. */
TEST(stack_overflow_without_a_guard_is_caught_on_a_shared_or_handed_on_stack)
{
    if (UNDER_ASAN || UNDER_TSAN) /* as stack_overflow_is_caught */
        return;
    char err[512];
    int ws = overflow_in_child(13 << 10, COSYNC__TEST_GUARDS_NONE, DEEP_DENSE, err, sizeof err);
    CHECK(WIFSIGNALED(ws));
    CHECK_EQ(WTERMSIG(ws), SIGABRT);
    CHECK_NOTNULL(strstr(err, "cosync: stack overflow in task 'deep' (#2)"));
    ws = overflow_in_child(13 << 10, COSYNC__TEST_GUARDS_NONE, DEEP_ON_A_FINISHED_TASKS_STACK, err,
                           sizeof err);
    CHECK(WIFSIGNALED(ws));
    CHECK_EQ(WTERMSIG(ws), SIGABRT);
    CHECK_NOTNULL(strstr(err, "cosync: stack overflow in task 'deep' (#3)"));
}

/* The test mode COSYNC__TEST_GUARDS_MPROTECT really makes each new stack's
 * guard an mprotect'd page, even on a kernel that has MADV_GUARD_INSTALL:
 * stack_overflow_is_caught relies on it to cover the guards of kernels
 * without it. */
static int guard_kind_main(void *arg, void **result)
{
    (void)result;
    *(uint8_t *)arg = cosync_task_current().rec->stack->guard;
    return 0;
}

TEST(the_mprotect_test_mode_makes_mprotected_guards)
{
    uint8_t guard = COSYNC__GUARD_NONE;
    cosync__stack_test_guards = COSYNC__TEST_GUARDS_MPROTECT;
    int status = run_main(guard_kind_main, &guard);
    cosync__stack_test_guards = COSYNC__TEST_GUARDS_AUTO;
    CHECK_OK(status);
    CHECK_EQ(guard, COSYNC__GUARD_MPROTECT);
}

/* A stack too big to share a chunk with others (4 MiB and more: a chunk
 * of its own) gets its guard page as well, made for it alone rather than
 * with a chunk's batch. */
static int big_stack_guarded_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, yield_once, NULL, &(cosync_task_opts){.stack_size = 4 << 20}));
    CHECK_OK(cosync_yield()); /* it starts, on a new 4 MiB stack */
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.stacks_in_use, 2);
    CHECK_EQ(st.stacks_mapped, 2);
    CHECK_EQ(st.stacks_guarded, 2);
    join_ok(t);
    return 0;
}

TEST(a_stack_of_a_chunk_of_its_own_is_guarded)
{
    run_main_ok(big_stack_guarded_main, NULL);
}

/* The largest stack class is 1 GiB: a task may ask for exactly that, and
 * one byte more is absurd. (The task is cancelled before it runs: the size
 * is accepted at the spawn, and a gigabyte of address space need not be
 * mapped to show it.) */
static int largest_stack_main(void *arg, void **result)
{
    (void)arg, (void)result;
    size_t gib = (size_t)1 << 30;
    cosync_task t;
    CHECK_ERR(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = gib + 1}),
              COSYNC_EINVAL);
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.stack_size = gib}));
    CHECK_OK(cosync_task_cancel(t));
    join_expect(t, COSYNC_ECANCELED);
    return 0;
}

TEST(a_stack_of_one_gib_is_the_largest_accepted)
{
    run_main_ok(largest_stack_main, NULL);
}

/* Each mprotect'd guard page costs the process two of its vm.max_map_count
 * map entries, so such guards are made only within a budget the whole
 * process shares, and a stack unmapped with its loop gives its share back.
 * A child makes loops of GUARDED_CROWD stacks in the mprotect test mode,
 * one after the other, until it has made more guarded stacks than the
 * whole budget: the last loop's stacks are still all guarded. */
enum { GUARDED_CROWD = 1000 };
static cosync_event crowd_ev;

/* 0 if every stack of a crowd of GUARDED_CROWD tasks (and main's) had a
 * guard page, else -1 (a failure: a positive status counts as 0) */
static int guarded_crowd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&crowd_ev);
    for (int i = 0; i < GUARDED_CROWD; i++)
        CHECK_OK(cosync_task_spawn(NULL, wait_event_arg, &crowd_ev,
                                   &(cosync_task_opts){.stack_size = 16 << 10}));
    CHECK_OK(cosync_yield()); /* all started, each on a stack of its own */
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.stacks_in_use, GUARDED_CROWD + 1);
    int all_guarded = st.stacks_guarded == st.stacks_in_use;
    CHECK_OK(cosync_event_set(&crowd_ev));
    CHECK_OK(cosync_yield()); /* they finish */
    return all_guarded ? 0 : -1;
}

TEST(destroyed_loops_give_back_their_share_of_the_mprotect_budget)
{
    /* some 32,000 tasks: minutes under valgrind, or with each a TSan fiber */
    if (UNDER_TSAN || under_valgrind())
        return;
    long budget = cosync__stack_map_budget();
    if (budget <= 0 || budget > 100000) /* a large one would make too long a test */
        return;
    long rounds = budget / (GUARDED_CROWD + 1) + 2;
    fflush(NULL);
    pid_t pid = fork();
    CHECK(pid >= 0);
    if (pid == 0) {
        cosync__stack_test_guards = COSYNC__TEST_GUARDS_MPROTECT;
        for (long r = 0; r < rounds; r++)
            if (cosync_run_with(guarded_crowd_main, NULL, &vopts) != 0)
                _exit(2);
        _exit(0);
    }
    int ws;
    CHECK_EQ(waitpid(pid, &ws, 0), pid);
    CHECK(WIFEXITED(ws));
    CHECK_EQ(WEXITSTATUS(ws), 0);
}

/* Destroying a loop unmaps its stacks: the address space goes back with
 * it, not only the pages. */
static int frame_address_main(void *arg, void **result)
{
    (void)result;
    *(char **)arg = __builtin_frame_address(0); /* on its stack, even under ASan */
    return 0;
}

TEST(a_destroyed_loops_stacks_are_unmapped)
{
    char *frame = NULL;
    run_main_ok(frame_address_main, &frame);
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    void *at = (void *)((uintptr_t)frame & ~(uintptr_t)(page - 1));
    unsigned char v;
    errno = 0;
    CHECK_EQ(mincore(at, page, &v), -1);
    CHECK_EQ(errno, ENOMEM);
}

/*
 * cosync_taskgroup_wait returns COSYNC_EPERM "if the caller is not the
 * owner". The owner is known by record and id; the tests only call it from
 * another live task (a different record). An owner that ended without
 * leaving its (empty) group, whose record a new task then reuses, must not
 * be taken for the owner: the id tells them apart.
 */
static cosync_taskgroup reused_owner_g; /* outlives its owner */

static int reused_owner_opens_and_leaves_not(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_taskgroup_init(&reused_owner_g)); /* no child; never waited */
    return 0;
}

static int reused_owner_tries_to_leave(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_taskgroup_wait(&reused_owner_g, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_wait(&reused_owner_g, COSYNC_FOREVER), COSYNC_EPERM);
    return 0;
}

static int reused_owner_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, reused_owner_opens_and_leaves_not, NULL, NULL));
    join_ok(a); /* its record is free again */
    CHECK_OK(cosync_task_spawn(&b, reused_owner_tries_to_leave, NULL, NULL));
    CHECK(b.rec == a.rec); /* the same record, another task */
    CHECK_NE(b.id, a.id);
    join_ok(b);
    return 0;
}

TEST(taskgroup_wait_from_a_task_reusing_the_owners_record)
{
    run_main_ok(reused_owner_main, NULL);
}

/*
 * A group whose owner waits in cosync_taskgroup_wait accepts
 * new children only while some are still alive (asyncio's create_task:
 * "TaskGroup ... is finished" once exiting with no task left). Between the
 * last child's finish and the owner's resumption the group is still
 * EXITING, with none alive: a spawn then must fail with COSYNC_EPERM, or
 * the owner leaves the group with a child it never waits for. The tests
 * spawn into an exiting group only while a child is alive.
 */
static cosync_taskgroup late_spawn_g;
static cosync_event late_spawn_last_ends;
static int late_spawn_late_rc = 1;

static int late_spawn_child(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    CHECK_OK(cosync_event_set(&late_spawn_last_ends)); /* the latecomer runs before the owner */
    return 0;
}

static int late_spawn_latecomer(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&late_spawn_last_ends, COSYNC_FOREVER));
    late_spawn_late_rc = cosync_taskgroup_spawn(&late_spawn_g, NULL, nop, NULL, NULL);
    return 0;
}

static int late_spawn_owner_body(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_taskgroup_init(&late_spawn_g));
    CHECK_OK(cosync_taskgroup_spawn(&late_spawn_g, NULL, late_spawn_child, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&late_spawn_g, COSYNC_FOREVER));
    CHECK_ERR(late_spawn_late_rc, COSYNC_EPERM);
    return 0;
}

static int late_spawn_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&late_spawn_last_ends);
    cosync_task l, o;
    CHECK_OK(cosync_task_spawn(&l, late_spawn_latecomer, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&o, late_spawn_owner_body, NULL, NULL));
    join_ok(o);
    join_ok(l);
    CHECK_ERR(late_spawn_late_rc, COSYNC_EPERM);
    return 0;
}

TEST(spawn_into_a_group_whose_last_child_ended_is_refused)
{
    run_main_ok(late_spawn_main, NULL);
}

/*
 * A task's name is copied "up to 31 bytes" (cosync_task_set_name).
 * main_names checks 42 bytes and exactly 31, not the boundary of exactly
 * 32: with the truncation test off by one, a 32-byte name is kept whole and
 * its terminating NUL is written one byte past the record's name array.
 */
static int name32_main(void *arg, void **result)
{
    (void)arg, (void)result;
    const char *name32 = "0123456789abcdef0123456789ABCDEF"; /* 32 bytes */
    CHECK_EQ(strlen(name32), 32);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.name = name32}));
    CHECK_EQ(strlen(cosync_task_name(t)), 31);
    CHECK_STREQ(cosync_task_name(t), "0123456789abcdef0123456789ABCDE");
    CHECK_OK(cosync_task_set_name(t, "x"));
    CHECK_OK(cosync_task_set_name(t, name32));
    CHECK_STREQ(cosync_task_name(t), "0123456789abcdef0123456789ABCDE");
    join_ok(t);
    return 0;
}

TEST(a_name_of_32_bytes_is_cut_to_31)
{
    run_main_ok(name32_main, NULL);
}

/*
 * A name cut to 31 bytes is cut before a UTF-8 character that would not
 * fit, never inside one; and a control character is kept as '?', so that
 * a name cannot break a report's line or forge one.
 */
static int utf8_name_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    /* 29 ASCII bytes, then "é" (2 bytes) ends at byte 31 exactly: kept */
    const char *fits = "abcdefghijklmnopqrstuvwxyzABC\xC3\xA9";
    CHECK_OK(cosync_task_spawn(&t, nop, NULL, &(cosync_task_opts){.name = fits}));
    CHECK_STREQ(cosync_task_name(t), fits);
    /* 30 ASCII bytes, then "é": its second byte would be the 32nd */
    CHECK_OK(cosync_task_set_name(t, "abcdefghijklmnopqrstuvwxyzABCD\xC3\xA9"));
    CHECK_STREQ(cosync_task_name(t), "abcdefghijklmnopqrstuvwxyzABCD");
    /* 28 ASCII bytes, then a 4-byte character that ends at byte 32 */
    CHECK_OK(cosync_task_set_name(t, "abcdefghijklmnopqrstuvwxyzAB\xF0\x9F\x98\x80"));
    CHECK_STREQ(cosync_task_name(t), "abcdefghijklmnopqrstuvwxyzAB");
    /* 27 ASCII bytes, then the same character, which ends at byte 31 */
    CHECK_OK(cosync_task_set_name(t, "abcdefghijklmnopqrstuvwxyzA\xF0\x9F\x98\x80xyz"));
    CHECK_STREQ(cosync_task_name(t), "abcdefghijklmnopqrstuvwxyzA\xF0\x9F\x98\x80");
    /* not UTF-8: a run of continuation bytes is cut, at most 3 bytes early */
    char junk[41];
    memset(junk, '\x80', 40);
    junk[40] = '\0';
    CHECK_OK(cosync_task_set_name(t, junk));
    CHECK_EQ(strlen(cosync_task_name(t)), 28);

    CHECK_OK(cosync_task_set_name(t, "a\nb\rc\td\x1b[0m\x7F\x01"));
    CHECK_STREQ(cosync_task_name(t), "a?b?c?d?[0m??");
    /* and in a report: one line, the name as kept */
    CHECK_OK(cosync_task_set_name(t, "x\n  task 'forged' (#9) is ready"));
    int n;
    char *text = dump_text(&n);
    CHECK_EQ(n, 2);
    CHECK_EQ(count_lines(text), 2);
    CHECK_NOTNULL(strstr(text, "  task 'x?  task 'forged' (#9) is ready' (#2) is not started\n"));
    free(text);
    join_ok(t);
    return 0;
}

TEST(a_name_is_cut_between_characters_and_keeps_no_control_character)
{
    run_main_ok(utf8_name_main, NULL);
}

/*
 * A task spawned without a name is called "task-<id>", also when its record
 * is one a named task used before (records are reused once collected).
 * main_names never spawns an unnamed task into a reused record, so a spawn
 * that keeps the old name passes.
 */
static int reused_name_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, nop, NULL, &(cosync_task_opts){.name = "alpha"}));
    join_ok(a);
    CHECK_OK(cosync_task_spawn(&b, nop, NULL, NULL));
    CHECK(b.rec == a.rec); /* the record was reused */
    char want[32];
    snprintf(want, sizeof want, "task-%llu", (unsigned long long)cosync_task_id(b));
    CHECK_STREQ(cosync_task_name(b), want);
    join_ok(b);
    return 0;
}

TEST(an_unnamed_task_in_a_reused_record_gets_the_default_name)
{
    run_main_ok(reused_name_main, NULL);
}

int main(void)
{
    RUN(spawn_join_results_and_statuses);
    RUN(join_order_vs_finish_order);
    RUN(done_and_result_before_and_after);
    RUN(detach);
    RUN(names_ids_current);
    RUN(names_from_loop_spawn);
    RUN(task_local_pointer_is_copied_at_spawn_and_set_per_task);
    RUN(misuse);
    RUN(outside_a_task_is_eperm);
    RUN(join_deadlines);
    RUN(spawn_order_is_run_order);
    RUN(task_spawned_by_task_starts_when_spawner_suspends);
    RUN(hundred_thousand_blocked_tasks);
    RUN(stacks_reused_by_sequential_spawns);
    RUN(per_task_stack_size);
    RUN(custom_allocator_no_leak);
    RUN(fault_loop_init);
    RUN(fault_loop_spawn);
    RUN(fault_task_spawn);
    RUN(fault_stack_at_first_run);
    RUN(fault_stack_of_child_task);
    RUN(fault_stack_of_fresh_task_handed_over_by_a_finishing_one);
    RUN(fault_during_destroy_in_clean_ups_that_spawn_helpers);
    RUN(fault_run_with_allocator_returns_the_error_and_frees_everything);
    RUN(fp_modes_are_per_task);
    RUN(fp_modes_shared_by_option);
    RUN(fp_modes_shared_stay_after_run);
    RUN(fp_modes_shared_with_a_task_started_by_a_finishing_one);
    RUN(fp_modes_shared_keep_exception_flags);
    RUN(stack_cache_keeps_what_it_should_and_gives_back_the_rest);
    RUN(a_sleeping_loop_still_gives_back_cached_stacks);
    RUN(stacks_used_between_two_trims_stay_cached_through_the_second);
    RUN(a_new_stack_is_made_on_the_loops_stack);
    RUN(new_stack_chunk_mapped_from_a_small_stack);
    RUN(stack_overflow_is_caught);
    RUN(stack_overflow_without_a_guard_is_caught_on_a_shared_or_handed_on_stack);
    RUN(the_mprotect_test_mode_makes_mprotected_guards);
    RUN(a_stack_of_a_chunk_of_its_own_is_guarded);
    RUN(a_stack_of_one_gib_is_the_largest_accepted);
    RUN(destroyed_loops_give_back_their_share_of_the_mprotect_budget);
    RUN(a_destroyed_loops_stacks_are_unmapped);
    RUN(taskgroup_wait_from_a_task_reusing_the_owners_record);
    RUN(spawn_into_a_group_whose_last_child_ended_is_refused);
    RUN(a_name_of_32_bytes_is_cut_to_31);
    RUN(a_name_is_cut_between_characters_and_keeps_no_control_character);
    RUN(an_unnamed_task_in_a_reused_record_gets_the_default_name);
    return 0;
}
