/*
 * test_callback.c - loop callbacks: cosync_loop_call_soon, call_later,
 * call_at, the done callbacks of futures and tasks, and cosync_callback_*.
 *
 * The orderings are asyncio's, taken from runs of the same scenarios under
 * CPython 3.11 (each case names what asyncio printed): a callback runs
 * after the tasks and callbacks ready when it was scheduled, before
 * anything made ready after; timed callbacks of one instant run in the
 * order they were scheduled, before the tasks that timers of that instant
 * wake (asyncio wakes a sleeper through a callback of its own). Then
 * what C adds: a callback far behind a crowd of ready tasks (many turns),
 * a stop and an eager start among callbacks, a callback that reschedules
 * itself, cancellation in every state, misuse, the deadlock report, the
 * loop's close, and no allocation. Every loop uses the virtual clock.
 */
/* ctest-timeout: 120 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "cosync.h"
#include "core.h"  /* COSYNC__DENSE_SUPPORTED */
#include "fault.h" /* cosync__mem_live */
#include "trace.h"

#define MS COSYNC_MS

static void tr_arg(void *arg)
{
    tr("%s", (const char *)arg);
}

/* Run @fn as the main task of a fresh loop, and check the trace it left. */
static void run_traced(cosync_task_fn fn, const char *want)
{
    trace_reset();
    run_main_ok(fn, NULL);
    CHECK_TRACE(want);
}

static cosync_loop *cur_loop(void)
{
    return cosync_loop_current();
}

/* ------------------------------------------------------------------------
 * Orderings, against asyncio's
 * ---------------------------------------------------------------------- */

static cosync_callback soon_cbs[8];

static int s1_a(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("a1");
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[1], tr_arg, "cb1"));
    CHECK_OK(cosync_yield());
    tr("a2");
    return 0;
}

static int s1_b(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("b1");
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[2], tr_arg, "cb2"));
    CHECK_OK(cosync_yield());
    tr("b2");
    return 0;
}

static int s1_c(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("c1");
    CHECK_OK(cosync_yield());
    tr("c2");
    CHECK_OK(cosync_yield());
    tr("c3");
    return 0;
}

/* asyncio: "a1 b1 c1 cb0 cb1 a2 cb2 b2 c2 c3". */
static int s1_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[3];
    CHECK_OK(cosync_task_spawn(&t[0], s1_a, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], s1_b, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&t[2], s1_c, NULL, NULL));
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[0], tr_arg, "cb0"));
    CHECK(cosync_callback_pending(&soon_cbs[0]));
    CHECK_EQ(loop_stats().callbacks, 1);
    for (int i = 0; i < 3; i++)
        join_ok(t[i]);
    for (int i = 0; i < 3; i++) {
        CHECK(!cosync_callback_pending(&soon_cbs[i]));
        CHECK(!cosync_callback_cancelled(&soon_cbs[i]));
    }
    return 0;
}

TEST(call_soon_among_tasks)
{
    run_traced(s1_main, "a1@0 b1@0 c1@0 cb0@0 cb1@0 a2@0 cb2@0 b2@0 c2@0 c3@0");
}

static cosync_event s2_ev;

static void s2_cb3(void *arg)
{
    (void)arg;
    tr("cb3");
}

static void s2_cb1(void *arg)
{
    (void)arg;
    tr("cb1");
    CHECK(!cosync_task_current().rec); /* the loop's own context */
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[3], s2_cb3, NULL));
    CHECK_OK(cosync_event_set(&s2_ev));
}

static int s2_w(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("w1");
    CHECK_OK(cosync_event_wait(&s2_ev, COSYNC_FOREVER));
    tr("w2");
    return 0;
}

/* asyncio: "w1 y1 m1 y2 cb1 cb2 m2 y3 cb3 w2 m3": a callback's callback
 * and the task it wakes go behind what was ready when it ran. */
static int s2_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&s2_ev);
    cosync_task w, y;
    CHECK_OK(cosync_task_spawn(&w, s2_w, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&y, s1_c, NULL, NULL)); /* c1 c2 c3 stand for y1 y2 y3 */
    CHECK_OK(cosync_yield());
    tr("m1");
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[1], s2_cb1, NULL));
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[2], tr_arg, "cb2"));
    CHECK_OK(cosync_yield());
    tr("m2");
    join_ok(w);
    join_ok(y);
    tr("m3");
    return 0;
}

TEST(callbacks_schedule_callbacks)
{
    run_traced(s2_main, "w1@0 c1@0 m1@0 c2@0 cb1@0 cb2@0 m2@0 c3@0 cb3@0 w2@0 m3@0");
}

static int sleep_then_trace(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_sleep(MS(10)));
    tr("%s", (const char *)arg);
    return 0;
}

/* asyncio: "L0 L1 L2 s1 s2 m": timed callbacks of one instant first, in
 * the order they were scheduled, then the sleepers of that instant; a
 * cancelled one never runs. */
static int s3_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    cosync_callback l0 = COSYNC_CALLBACK_INIT, l1 = COSYNC_CALLBACK_INIT, l2 = COSYNC_CALLBACK_INIT,
                    lx = COSYNC_CALLBACK_INIT;
    cosync_task a, b;
    CHECK_OK(cosync_task_spawn(&a, sleep_then_trace, "s1", NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_loop_call_later(loop, &l1, MS(10), tr_arg, "L1"));
    CHECK_OK(cosync_task_spawn(&b, sleep_then_trace, "s2", NULL));
    CHECK_OK(cosync_loop_call_later(loop, &l2, MS(10), tr_arg, "L2"));
    CHECK_OK(cosync_loop_call_later(loop, &l0, MS(5), tr_arg, "L0"));
    CHECK_OK(cosync_loop_call_later(loop, &lx, MS(10), tr_arg, "Lx"));
    CHECK_EQ(cosync_callback_when(&l0), cosync_now() + MS(5));
    CHECK_EQ(armed_timers(), 5);
    CHECK_EQ(loop_stats().callbacks, 4);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_callback_cancel(&lx));
    CHECK_EQ(loop_stats().callbacks, 3);
    CHECK(cosync_callback_cancelled(&lx));
    CHECK_EQ(armed_timers(), 5); /* l0, l1, l2 and both sleeps */
    join_ok(a);
    join_ok(b);
    tr("m");
    CHECK_EQ(cosync_callback_when(&l1), TRACE_T0 + MS(10));
    CHECK(!cosync_callback_cancelled(&l1));
    return 0;
}

TEST(timed_callbacks_and_sleepers)
{
    run_traced(s3_main, "L0@5 L1@10 L2@10 s1@10 s2@10 m@10");
}

static cosync_callback batch_c;

static void batch_a(void *arg)
{
    (void)arg;
    tr("A");
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &batch_c, tr_arg, "C"));
}

static int batch_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_callback a = COSYNC_CALLBACK_INIT, b = COSYNC_CALLBACK_INIT;
    cosync_task x;
    CHECK_OK(cosync_loop_call_later(cur_loop(), &a, MS(10), batch_a, NULL));
    CHECK_OK(cosync_task_spawn(&x, sleep_then_trace, "X", NULL)); /* its timer is second */
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_loop_call_later(cur_loop(), &b, MS(10), tr_arg, "B"));
    join_ok(x);
    CHECK_OK(cosync_yield());
    tr("m");
    return 0;
}

/* What a timer callback queues goes behind every task the instant's
 * timers woke, even one whose timer came after the callback's
 * (docs/callbacks.md); asyncio, were its heap to keep equal times in
 * order, would print "A B C X". */
TEST(timer_callback_queues_behind_the_instants_sleepers)
{
    run_traced(batch_main, "A@10 B@10 X@10 C@10 m@10");
}

static int s4_task(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    tr("t%da", i);
    if (i == 2)
        CHECK_OK(cosync_loop_call_soon(cur_loop(), &soon_cbs[0], tr_arg, "cbX"));
    CHECK_OK(cosync_yield());
    tr("t%db", i);
    return 0;
}

/* asyncio: "t0a t1a t2a t3a t4a t0b t1b cbX t2b t3b t4b". */
static int s4_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_task_spawn(&t[i], s4_task, (void *)(intptr_t)i, NULL));
    for (int i = 0; i < 5; i++)
        join_ok(t[i]);
    return 0;
}

TEST(call_soon_in_a_crowd)
{
    run_traced(s4_main, "t0a@0 t1a@0 t2a@0 t3a@0 t4a@0 t0b@0 t1b@0 cbX@0 t2b@0 t3b@0 t4b@0");
}

/* ------------------------------------------------------------------------
 * Far behind a crowd: the callback's place is found over many turns
 * ---------------------------------------------------------------------- */

enum { CROWD = 1000, CALLER = 700 };
static int crowd_a, crowd_b;
static bool crowd_b_done[CROWD];
static int seen_a, seen_b;
static bool seen_caller_b, seen_before_b;
static cosync_callback crowd_cb;

static void crowd_snapshot(void *arg)
{
    (void)arg;
    seen_a = crowd_a;
    seen_b = crowd_b;
    seen_caller_b = crowd_b_done[CALLER];
    seen_before_b = crowd_b_done[CALLER - 1];
}

static int crowd_task(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    crowd_a++;
    if (i == CALLER)
        CHECK_OK(cosync_loop_call_soon(cur_loop(), &crowd_cb, crowd_snapshot, NULL));
    CHECK_OK(cosync_yield());
    crowd_b++;
    crowd_b_done[i] = true;
    return 0;
}

static int crowd_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_task t[CROWD];
    for (int i = 0; i < CROWD; i++)
        CHECK_OK(cosync_task_spawn(&t[i], crowd_task, (void *)(intptr_t)i, NULL));
    for (int i = 0; i < CROWD; i++)
        join_ok(t[i]);
    return 0;
}

/* The callback runs once the tasks behind the caller have taken their
 * first step and those before it their second, and before the caller's. */
TEST(callback_behind_a_crowd)
{
    run_main_ok(crowd_main, NULL);
    CHECK_EQ(seen_a, CROWD);
    CHECK_EQ(seen_b, CALLER);
    CHECK(seen_before_b);
    CHECK(!seen_caller_b);
}

/* ------------------------------------------------------------------------
 * Outside tasks: before a run, a run without a main task, the context
 * ---------------------------------------------------------------------- */

static int trace_and_yield(void *arg, void **result)
{
    (void)result;
    tr("%s1", (const char *)arg);
    CHECK_OK(cosync_yield());
    tr("%s2", (const char *)arg);
    return 0;
}

static cosync_callback chain_cb;
static int chain_left;

static void chain_link(void *arg)
{
    (void)arg;
    tr("link%d", chain_left);
    if (--chain_left > 0)
        CHECK_OK(cosync_loop_call_later(cur_loop(), &chain_cb, MS(10), chain_link, NULL));
}

/* Scheduled before the run: behind the tasks spawned before them. A run
 * without a main task goes on while callbacks are scheduled, its virtual
 * clock jumping to each, and then ends. */
TEST(callbacks_before_a_run)
{
    trace_reset();
    cosync_loop *loop = new_loop();
    cosync_callback first = COSYNC_CALLBACK_INIT, second = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_loop_call_soon(loop, &first, tr_arg, "first"));
    CHECK_OK(cosync_loop_spawn(loop, NULL, trace_and_yield, "t", NULL));
    CHECK_OK(cosync_loop_call_soon(loop, &second, tr_arg, "second"));
    chain_left = 3;
    CHECK_OK(cosync_loop_call_later(loop, &chain_cb, MS(10), chain_link, NULL));
    CHECK_EQ(cosync_callback_when(&chain_cb), cosync_loop_now(loop) + MS(10));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_TRACE("first@0 t1@0 second@0 t2@0 link3@10 link2@20 link1@30");
    CHECK_EQ(chain_left, 0);
    end_loop(loop);

    /* a timed callback due when the run starts goes behind the tasks
     * ready then (asyncio: "A1 B1 C A2 B2") */
    trace_reset();
    loop = new_loop();
    CHECK_OK(cosync_loop_spawn(loop, NULL, trace_and_yield, "A", NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, trace_and_yield, "B", NULL));
    CHECK_OK(cosync_loop_call_at(loop, &first, 0, tr_arg, "C"));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_TRACE("A1@0 B1@0 C@0 A2@0 B2@0");
    end_loop(loop);
}

static cosync_task cb_victim;
static cosync_task cb_spawned;
static cosync_event cb_ev;

static void context_cb(void *arg)
{
    (void)arg;
    cosync_loop *loop = cur_loop();
    CHECK_NOTNULL(loop);
    CHECK(!cosync_task_current().rec);
    CHECK_ERR(cosync_sleep(MS(1)), COSYNC_EPERM);
    CHECK_ERR(cosync_yield(), COSYNC_EPERM);
    CHECK_ERR(cosync_task_spawn(NULL, nop, NULL, NULL), COSYNC_EPERM);
    CHECK_OK(cosync_loop_spawn(loop, &cb_spawned, trace_and_yield, "spawned", NULL));
    CHECK_OK(cosync_task_cancel(cb_victim));
    CHECK_OK(cosync_event_set(&cb_ev));
    tr("cb");
}

static int victim(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(MS(100));
    tr("victim%s", cosync_err_name(rc));
    return rc;
}

/* A callback runs outside any task: it cannot suspend, but may spawn,
 * cancel and wake. */
static int context_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&cb_ev);
    CHECK_OK(cosync_task_spawn(&cb_victim, victim, NULL, NULL));
    CHECK_OK(cosync_yield());
    cosync_callback cb = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_loop_call_later(cur_loop(), &cb, MS(5), context_cb, NULL));
    CHECK_OK(cosync_event_wait(&cb_ev, COSYNC_FOREVER));
    tr("main");
    join_expect(cb_victim, COSYNC_ECANCELED);
    join_ok(cb_spawned);
    return 0;
}

TEST(callback_context)
{
    run_traced(context_main, "cb@5 spawned1@5 victimCOSYNC_ECANCELED@5 main@5 spawned2@5");
}

/* ------------------------------------------------------------------------
 * Cancellation, rescheduling
 * ---------------------------------------------------------------------- */

static cosync_callback self_cb;

static void cancels_itself(void *arg)
{
    (void)arg;
    tr("self");
    CHECK(!cosync_callback_pending(&self_cb));
    CHECK_ERR(cosync_callback_cancel(&self_cb), COSYNC_EALREADY);
    CHECK(!cosync_callback_cancelled(&self_cb));
}

static int cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    cosync_callback a = COSYNC_CALLBACK_INIT, b = COSYNC_CALLBACK_INIT, c = COSYNC_CALLBACK_INIT,
                    t1 = COSYNC_CALLBACK_INIT, t2 = COSYNC_CALLBACK_INIT;
    /* the first of the queue, whose step the turn had stopped for: the next
     * takes its place */
    CHECK_OK(cosync_task_spawn(NULL, trace_and_yield, "x", NULL));
    CHECK_OK(cosync_loop_call_soon(loop, &a, tr_arg, "a"));
    CHECK_OK(cosync_loop_call_soon(loop, &b, tr_arg, "b"));
    CHECK_OK(cosync_task_spawn(NULL, trace_and_yield, "y", NULL));
    CHECK_OK(cosync_loop_call_soon(loop, &c, tr_arg, "c"));
    CHECK(cosync_callback_pending(&a));
    CHECK_OK(cosync_callback_cancel(&a));
    CHECK(!cosync_callback_pending(&a));
    CHECK(cosync_callback_cancelled(&a));
    CHECK_ERR(cosync_callback_cancel(&a), COSYNC_EALREADY);
    CHECK_OK(cosync_callback_cancel(&c)); /* the last */
    CHECK_OK(cosync_loop_call_soon(loop, &self_cb, cancels_itself, NULL));
    CHECK_OK(cosync_yield());
    tr("m");
    CHECK_ERR(cosync_callback_cancel(&b), COSYNC_EALREADY);
    CHECK(!cosync_callback_cancelled(&b));
    /* timed: the timer goes; a cancelled record may be scheduled again */
    CHECK_OK(cosync_loop_call_later(loop, &t1, MS(10), tr_arg, "t1"));
    CHECK_OK(cosync_loop_call_later(loop, &t2, MS(10), tr_arg, "t2"));
    CHECK_EQ(armed_timers(), 2);
    CHECK_OK(cosync_callback_cancel(&t1));
    CHECK_EQ(armed_timers(), 1);
    CHECK_OK(cosync_loop_call_later(loop, &t1, MS(20), tr_arg, "t1again"));
    CHECK(!cosync_callback_cancelled(&t1));
    CHECK_OK(cosync_sleep(MS(30)));
    /* a timed callback already queued, not yet run, is cancelled there */
    CHECK_OK(cosync_loop_call_later(loop, &t2, 0, tr_arg, "never"));
    CHECK_OK(cosync_task_spawn(NULL, trace_and_yield, "z", NULL));
    CHECK_OK(cosync_sleep(0));
    CHECK(cosync_callback_pending(&t2));
    CHECK_OK(cosync_callback_cancel(&t2));
    CHECK_OK(cosync_sleep(MS(1)));
    return 0;
}

TEST(cancel_in_each_state)
{
    run_traced(cancel_main, "x1@0 b@0 y1@0 self@0 m@0 x2@0 y2@0 t2@10 t1again@20 z1@30 z2@30");
}

static cosync_callback tick_cb;
static int ticks;

static void tick(void *arg)
{
    (void)arg;
    tr("tick");
    if (++ticks < 5)
        CHECK_OK(cosync_loop_call_later(cur_loop(), &tick_cb, MS(10), tick, NULL));
}

/* A periodic timer: each run schedules the next from its own record. */
static int periodic_main(void *arg, void **result)
{
    (void)arg, (void)result;
    ticks = 0;
    CHECK_OK(cosync_loop_call_later(cur_loop(), &tick_cb, MS(10), tick, NULL));
    CHECK_OK(cosync_sleep(MS(100)));
    CHECK_EQ(ticks, 5);
    return 0;
}

TEST(periodic_timer)
{
    run_traced(periodic_main, "tick@10 tick@20 tick@30 tick@40 tick@50");
}

static cosync_callback spin_cb;
static int spins;

static void spin(void *arg)
{
    (void)arg;
    tr("cb");
    if (++spins < 4)
        CHECK_OK(cosync_loop_call_soon(cur_loop(), &spin_cb, spin, NULL));
}

/* A callback that schedules itself again goes behind the tasks ready:
 * they take turns (asyncio: "cb t cb t cb t cb t"). */
static int spin_main(void *arg, void **result)
{
    (void)arg, (void)result;
    spins = 0;
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &spin_cb, spin, NULL));
    for (int i = 0; i < 4; i++) {
        CHECK_OK(cosync_yield());
        tr("t");
    }
    return 0;
}

TEST(callback_rescheduling_itself)
{
    run_traced(spin_main, "cb@0 t@0 cb@0 t@0 cb@0 t@0 cb@0 t@0");
}

static cosync_callback chain_a_cb, chain_c_cb;
static int a_left;

static void chain_a(void *arg)
{
    tr("A%d", 4 - a_left);
    if (a_left == 3)
        CHECK_OK(cosync_loop_call_later(cur_loop(), &chain_c_cb, 0, tr_arg, "C"));
    if (--a_left > 0)
        CHECK_OK(cosync_loop_call_soon(cur_loop(), &chain_a_cb, chain_a, arg));
    else
        CHECK_OK(cosync_event_set(arg));
}

/* With nothing ready, callbacks that schedule callbacks still let the loop
 * look at its timers between them (asyncio: "A1 A2 C A3 m"), and a main
 * task that only they can wake is not deadlocked. */
static int chain_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event ev;
    cosync_event_init(&ev);
    a_left = 3;
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &chain_a_cb, chain_a, &ev));
    CHECK_OK(cosync_event_wait(&ev, COSYNC_FOREVER));
    tr("m");
    return 0;
}

TEST(callback_chain_lets_timers_in)
{
    run_traced(chain_main, "A1@0 A2@0 C@0 A3@0 m@0");
}

/* ------------------------------------------------------------------------
 * Among a stop and an eager start
 * ---------------------------------------------------------------------- */

static int stop_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_callback cb = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_task_spawn(NULL, trace_and_yield, "x", NULL));
    CHECK_OK(cosync_yield()); /* x1: x is ready again */
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &cb, tr_arg, "cb"));
    CHECK_OK(cosync_task_spawn(NULL, trace_and_yield, "y", NULL));
    CHECK_OK(cosync_loop_stop(cur_loop()));
    tr("m1");
    CHECK_OK(cosync_yield());
    tr("m2");
    return 0;
}

/* A stop ends the turn once the tasks ready at the stop have run; a
 * callback among them runs in its place. */
TEST(stop_among_callbacks)
{
    trace_reset();
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, stop_main, NULL, NULL));
    CHECK_ERR(cosync_loop_run(loop, m, NULL, NULL), COSYNC_EINTR);
    CHECK_TRACE("x1@0 m1@0 x2@0 cb@0 y1@0");
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_TRACE("x1@0 m1@0 x2@0 cb@0 y1@0 m2@0 y2@0");
    end_loop(loop);
}

enum { STOP_CROWD = 300 };
static int stop_steps, stop_cb_at, stop_cb_run;
static cosync_callback stop_cb;

static void note_place(void *arg)
{
    (void)arg;
    stop_cb_at = stop_steps;
    stop_cb_run++;
}

static int stop_crowd_task(void *arg, void **result)
{
    (void)result;
    stop_steps++;
    if (arg == NULL) {
        CHECK_OK(cosync_loop_call_soon(cur_loop(), &stop_cb, note_place, NULL));
        CHECK_OK(cosync_loop_stop(cur_loop()));
    }
    CHECK_OK(cosync_yield());
    stop_steps++;
    return 0;
}

/* A stop makes the turn as long as the ready queue, here beyond a turn's
 * budget: a callback queued behind the whole crowd still runs in its
 * place, before the stop, not in the next run. */
TEST(stop_reaches_a_far_callback)
{
    cosync_loop *loop = new_loop();
    stop_steps = stop_cb_run = 0;
    for (intptr_t i = 0; i < STOP_CROWD; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, stop_crowd_task, (void *)i, NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_EQ(stop_cb_run, 1);
    CHECK_EQ(stop_cb_at, STOP_CROWD);
    CHECK_EQ(stop_steps, STOP_CROWD);
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(stop_steps, 2 * STOP_CROWD);
    end_loop(loop);
}

static void stops(void *arg)
{
    tr("stop");
    CHECK_OK(cosync_loop_stop(arg));
}

/* A callback may stop the loop; those scheduled after it wait for the
 * next run. */
TEST(callback_stops_the_loop)
{
    trace_reset();
    cosync_loop *loop = new_loop();
    cosync_callback a = COSYNC_CALLBACK_INIT, b = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_loop_call_later(loop, &a, MS(5), stops, loop));
    CHECK_OK(cosync_loop_call_later(loop, &b, MS(7), tr_arg, "b"));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_TRACE("stop@5");
    CHECK(cosync_callback_pending(&b));
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_TRACE("stop@5 b@7");
    CHECK_EQ(cosync_loop_now(loop), TRACE_T0 + MS(7));
    end_loop(loop);
}

static int eager_child(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("e1");
    CHECK_OK(cosync_yield());
    tr("e2");
    return 0;
}

/* An eager start is the spawner's own step: the callback due after b
 * still runs right after b (asyncio 3.12's eager_task_factory: b cb e2 m). */
static int eager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_callback cb = COSYNC_CALLBACK_INIT;
    cosync_task b, e;
    CHECK_OK(cosync_task_spawn(&b, trace_and_yield, "b", NULL));
    CHECK_OK(cosync_yield()); /* b1; b is ready again */
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &cb, tr_arg, "cb"));
    CHECK_OK(cosync_task_spawn(&e, eager_child, NULL, &(cosync_task_opts){.eager = true}));
    tr("m1");
    CHECK_OK(cosync_yield());
    tr("m2");
    join_ok(b);
    join_ok(e);
    return 0;
}

TEST(eager_start_among_callbacks)
{
    run_traced(eager_main, "b1@0 e1@0 m1@0 b2@0 cb@0 e2@0 m2@0");
}

/* ------------------------------------------------------------------------
 * Many callbacks, and no allocation
 * ---------------------------------------------------------------------- */

enum { MANY = 10000 };
static cosync_callback many_cbs[MANY];
static int many_next;

static void many_in_order(void *arg)
{
    CHECK_EQ((int)(intptr_t)arg, many_next);
    many_next++;
}

static int many_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    long live = atomic_load(&cosync__mem_live);
    many_next = 0;
    for (int i = 0; i < MANY / 2; i++)
        CHECK_OK(cosync_loop_call_soon(loop, &many_cbs[i], many_in_order, (void *)(intptr_t)i));
    for (int i = MANY / 2; i < MANY; i++)
        CHECK_OK(cosync_loop_call_at(loop, &many_cbs[i], cosync_now() + MS(10), many_in_order,
                                     (void *)(intptr_t)i));
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
    CHECK_OK(cosync_yield());
    CHECK_EQ(many_next, MANY / 2);
    CHECK_OK(cosync_sleep(MS(10))); /* behind the callbacks of its instant */
    CHECK_EQ(many_next, MANY);
    CHECK_EQ(atomic_load(&cosync__mem_live), live);
    return 0;
}

TEST(many_callbacks_in_order_without_allocation)
{
    run_main_ok(many_main, NULL);
}

/* ------------------------------------------------------------------------
 * Done callbacks of futures
 * ---------------------------------------------------------------------- */

static cosync_future dc_fut;

static int await_fut(void *arg, void **result)
{
    (void)result;
    tr("%sa", (const char *)arg);
    CHECK_OK(cosync_future_wait(&dc_fut, COSYNC_FOREVER));
    tr("%sb", (const char *)arg);
    return 0;
}

/* asyncio: "w1a w2a set w1b cb1 w2b cb3 m late m2": the awaiting tasks
 * and the done callbacks are woken in the order they came to the future;
 * a callback added to a done future is scheduled at once; a removed one
 * never runs. */
static int done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    cosync_future_init(&dc_fut);
    /* the count of the future's waits and callbacks wraps in between: the
     * order holds across it (a private field, set for this test alone) */
    dc_fut.seq = UINT32_MAX - 1;
    cosync_callback cb1 = COSYNC_CALLBACK_INIT, cb3 = COSYNC_CALLBACK_INIT,
                    cb4 = COSYNC_CALLBACK_INIT, late = COSYNC_CALLBACK_INIT;
    cosync_task w1, w2;
    CHECK_OK(cosync_task_spawn(&w1, await_fut, "w1", NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_future_add_done_callback(&dc_fut, &cb1, tr_arg, "cb1"));
    CHECK_OK(cosync_task_spawn(&w2, await_fut, "w2", NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_future_add_done_callback(&dc_fut, &cb3, tr_arg, "cb3"));
    CHECK_OK(cosync_future_add_done_callback(&dc_fut, &cb4, tr_arg, "cb4"));
    CHECK(cosync_callback_pending(&cb4));
    CHECK_EQ(loop_stats().callbacks, 3);
    CHECK_ERR(cosync_future_add_done_callback(&dc_fut, &cb4, tr_arg, "cb4"), COSYNC_EBUSY);
    CHECK_ERR(cosync_loop_call_soon(loop, &cb4, tr_arg, "cb4"), COSYNC_EBUSY);
    CHECK_OK(cosync_callback_cancel(&cb4)); /* fut.remove_done_callback(cb4) */
    CHECK(cosync_callback_cancelled(&cb4));
    CHECK_ERR(cosync_callback_cancel(&cb4), COSYNC_EALREADY);
    CHECK_EQ(cosync_callback_when(&cb1), COSYNC_FOREVER);
    CHECK_OK(cosync_future_set_result(&dc_fut, NULL));
    tr("set");
    CHECK(cosync_callback_pending(&cb1)); /* queued now */
    CHECK_OK(cosync_yield());
    tr("m");
    CHECK_OK(cosync_future_add_done_callback(&dc_fut, &late, tr_arg, "late"));
    CHECK_OK(cosync_yield());
    tr("m2");
    join_ok(w1);
    join_ok(w2);
    return 0;
}

TEST(future_done_callbacks)
{
    run_traced(done_main, "w1a@0 w2a@0 set@0 w1b@0 cb1@0 w2b@0 cb3@0 m@0 late@0 m2@0");
}

static cosync_callback dc_cbs[4];
static cosync_future dc_futs[3];

static void trace_outcome(void *arg)
{
    cosync_future *f = arg;
    tr("f%d:%s", (int)(f - dc_futs), cosync_err_name(cosync_future_result(f, NULL)));
}

static void cancel_future(void *arg)
{
    tr("canceller");
    CHECK_OK(cosync_future_cancel(arg));
}

static int timed_waiter(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_future_wait(&dc_futs[0], cosync_deadline_after(MS(5))), COSYNC_ETIMEDOUT);
    tr("gave up");
    return 0;
}

/* Every way a future ends releases its callbacks: a result after a waiter
 * gave up its place, an error, a cancel from another callback. */
static int ends_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    for (int i = 0; i < 3; i++)
        cosync_future_init(&dc_futs[i]);
    cosync_task w;
    CHECK_OK(cosync_task_spawn(&w, timed_waiter, NULL, NULL));
    CHECK_OK(cosync_yield());
    for (int i = 0; i < 3; i++)
        CHECK_OK(
            cosync_future_add_done_callback(&dc_futs[i], &dc_cbs[i], trace_outcome, &dc_futs[i]));
    CHECK_OK(cosync_loop_call_later(loop, &dc_cbs[3], MS(20), cancel_future, &dc_futs[2]));
    CHECK_OK(cosync_sleep(MS(10)));
    CHECK_OK(cosync_future_set_result(&dc_futs[0], NULL));
    CHECK_OK(cosync_future_set_error(&dc_futs[1], COSYNC_EPIPE));
    tr("set");
    CHECK_OK(cosync_future_wait(&dc_futs[2], COSYNC_FOREVER));
    tr("m");
    join_ok(w);
    return 0;
}

TEST(done_callbacks_as_the_future_ends)
{
    run_traced(ends_main, "gave up@5 set@10 f0:0@10 f1:COSYNC_EPIPE@10 canceller@20 "
                          "f2:COSYNC_ECANCELED@20 m@20");
}

static int attach_and_end(void *arg, void **result)
{
    (void)result;
    cosync_future *f = arg;
    CHECK_OK(cosync_future_add_done_callback(&f[0], &dc_cbs[0], trace_outcome, &f[0]));
    CHECK_OK(cosync_future_add_done_callback(&f[1], &dc_cbs[1], trace_outcome, &f[1]));
    return 0;
}

static int dense_done_local(void *arg, void **result)
{
    (void)result;
    cosync_callback mine = COSYNC_CALLBACK_INIT;
    int want = COSYNC__DENSE_SUPPORTED ? COSYNC_EINVAL : 0;
    CHECK_ERR(cosync_future_add_done_callback(arg, &mine, tr_arg, "x"), want);
    if (want == 0)
        CHECK_OK(cosync_callback_cancel(&mine));
    return 0;
}

/* Outside a running loop there is no loop to run them on. A future done
 * between runs queues its callbacks for the next run; the loop's
 * destruction takes those still attached off their futures. */
TEST(done_callbacks_and_the_loop)
{
    trace_reset();
    for (int i = 0; i < 3; i++)
        cosync_future_init(&dc_futs[i]);
    CHECK_ERR(cosync_future_add_done_callback(&dc_futs[0], &dc_cbs[0], tr_arg, "x"), COSYNC_EPERM);
    CHECK_ERR(cosync_future_add_done_callback(NULL, &dc_cbs[0], tr_arg, "x"), COSYNC_EINVAL);
    cosync_loop *loop = new_loop();
    cosync_task t;
    spawn_and_run(loop, &t, attach_and_end, dc_futs);
    CHECK_OK(cosync_loop_spawn(loop, &t, dense_done_local, &dc_futs[2],
                               &(cosync_task_opts){.dense = true}));
    CHECK_OK(cosync_loop_run(loop, t, NULL, NULL));
    CHECK(cosync_callback_pending(&dc_cbs[0]));
    CHECK_OK(cosync_future_set_result(&dc_futs[0], NULL)); /* outside the run */
    CHECK_TRACE("");
    CHECK_OK(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_TRACE("f0:0@0");
    CHECK(cosync_callback_pending(&dc_cbs[1])); /* still attached */
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK(cosync_callback_cancelled(&dc_cbs[1]));
    CHECK_OK(cosync_future_set_result(&dc_futs[1], NULL)); /* touches no loop */
    CHECK(cosync_callback_cancelled(&dc_cbs[1]));          /* it was taken off */
    CHECK_TRACE("f0:0@0");
}

/* ------------------------------------------------------------------------
 * Done callbacks of tasks
 * ---------------------------------------------------------------------- */

static cosync_task tdc_child;

static int tdc_child_body(void *arg, void **result)
{
    (void)arg;
    tr("c1");
    CHECK_OK(cosync_yield());
    tr("c2");
    *result = (void *)(intptr_t)7;
    return 0;
}

static int tdc_awaiter(void *arg, void **result)
{
    (void)result;
    tr("%sa", (const char *)arg);
    int status = 1;
    CHECK_OK(cosync_task_await(tdc_child, &status, NULL, COSYNC_FOREVER));
    CHECK_OK(status);
    tr("%sb", (const char *)arg);
    return 0;
}

/* Traces the outcome its callback record kept: the callback is the first
 * member of a struct that names it. */
typedef struct named_cb {
    cosync_callback cb;
    const char *name;
} named_cb;

static void trace_task_outcome(void *arg)
{
    named_cb *n = arg;
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_callback_outcome(&n->cb, &status, &res));
    if (status == 0)
        tr("%s:%d", n->name, (int)(intptr_t)res);
    else
        tr("%s:%s", n->name, cosync_err_name(status));
}

/* asyncio: "c1 w1a m0 c2 w2a w2b m1 w1b cb1:7 cb3 m2 late m3": the tasks
 * awaiting the task and its done callbacks are woken in the order they
 * came to it; one added to a finished task is scheduled at once; a removed
 * one never runs; a wait that begins after the finish does not suspend. */
static int task_done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    named_cb cb1 = {COSYNC_CALLBACK_INIT, "cb1"}, cb3 = {COSYNC_CALLBACK_INIT, "cb3"},
             cb4 = {COSYNC_CALLBACK_INIT, "cb4"}, late = {COSYNC_CALLBACK_INIT, "late"};
    cosync_task w1, w2;
    CHECK_OK(cosync_task_spawn(&tdc_child, tdc_child_body, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&w1, tdc_awaiter, "w1", NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_add_done_callback(tdc_child, &cb1.cb, trace_task_outcome, &cb1));
    CHECK_OK(cosync_task_spawn(&w2, tdc_awaiter, "w2", NULL));
    CHECK_OK(cosync_task_add_done_callback(tdc_child, &cb3.cb, tr_arg, "cb3"));
    CHECK_OK(cosync_task_add_done_callback(tdc_child, &cb4.cb, tr_arg, "cb4"));
    CHECK_EQ(loop_stats().callbacks, 3);
    CHECK_ERR(cosync_callback_outcome(&cb4.cb, NULL, NULL), COSYNC_EAGAIN);
    CHECK_ERR(cosync_task_add_done_callback(tdc_child, &cb4.cb, tr_arg, "cb4"), COSYNC_EBUSY);
    CHECK_ERR(cosync_loop_call_soon(cur_loop(), &cb4.cb, tr_arg, "cb4"), COSYNC_EBUSY);
    CHECK_OK(cosync_callback_cancel(&cb4.cb)); /* task.remove_done_callback(cb4) */
    CHECK(cosync_callback_cancelled(&cb4.cb));
    CHECK_ERR(cosync_callback_cancel(&cb4.cb), COSYNC_EALREADY);
    CHECK_ERR(cosync_callback_outcome(&cb4.cb, NULL, NULL), COSYNC_EAGAIN);
    tr("m0");
    CHECK_OK(cosync_yield());
    tr("m1");
    CHECK(cosync_callback_pending(&cb1.cb)); /* queued by the finish */
    int status = 1;
    void *res = NULL;
    CHECK_OK(cosync_callback_outcome(&cb1.cb, &status, &res));
    CHECK_OK(status);
    CHECK_EQ((intptr_t)res, 7);
    CHECK_OK(cosync_yield());
    tr("m2");
    CHECK_OK(cosync_task_add_done_callback(tdc_child, &late.cb, trace_task_outcome, &late));
    CHECK_OK(cosync_callback_outcome(&late.cb, &status, &res)); /* kept at once */
    CHECK_OK(cosync_yield());
    tr("m3");
    CHECK(!cosync_callback_pending(&cb1.cb));
    CHECK_OK(cosync_callback_outcome(&cb1.cb, NULL, NULL)); /* still, after it ran */
    join_ok(w1);
    join_ok(w2);
    join_ok(tdc_child);
    CHECK_EQ(loop_stats().callbacks, 0);
    return 0;
}

TEST(task_done_callbacks)
{
    run_traced(task_done_main, "c1@0 w1a@0 m0@0 c2@0 w2a@0 w2b@0 m1@0 w1b@0 cb1:7@0 cb3@0 m2@0 "
                               "late:7@0 m3@0");
}

static int tdc_fails(void *arg, void **result)
{
    (void)arg, (void)result;
    tr("f");
    return COSYNC_EPIPE;
}

static int tdc_blocked(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    tr("cleanup");
    CHECK_OK(cosync_yield());
    tr("cleaned");
    return rc;
}

static named_cb self_named = {COSYNC_CALLBACK_INIT, "self"};

static int tdc_self(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_task_add_done_callback(cosync_task_current(), &self_named.cb,
                                           trace_task_outcome, &self_named));
    tr("s1");
    CHECK_OK(cosync_yield());
    tr("s2");
    *result = (void *)(intptr_t)3;
    return 0;
}

/* asyncio: "f s1 m1 a:err b:cancelled s2 cleanup m2 self:3 cleaned m3
 * c:cancelled m4": each way a task ends queues its callbacks with its
 * outcome: a failure, a cancel before it ran, a cancel whose clean-up
 * suspends, a task's callback on itself; and a detached task's callback
 * still tells its outcome after the record is gone. */
static int task_ends_main(void *arg, void **result)
{
    (void)arg, (void)result;
    named_cb a = {COSYNC_CALLBACK_INIT, "a"}, b = {COSYNC_CALLBACK_INIT, "b"},
             c = {COSYNC_CALLBACK_INIT, "c"};
    cosync_task ta, tb, tc, ts;
    CHECK_OK(cosync_task_spawn(&ta, tdc_fails, NULL, NULL));
    CHECK_OK(cosync_task_add_done_callback(ta, &a.cb, trace_task_outcome, &a));
    CHECK_OK(cosync_task_detach(ta));
    CHECK_OK(cosync_task_spawn(&tb, tdc_fails, NULL, NULL));
    CHECK_OK(cosync_task_add_done_callback(tb, &b.cb, trace_task_outcome, &b));
    CHECK_OK(cosync_task_cancel(tb));
    CHECK_OK(cosync_task_spawn(&tc, tdc_blocked, NULL, NULL));
    CHECK_OK(cosync_task_add_done_callback(tc, &c.cb, trace_task_outcome, &c));
    CHECK_OK(cosync_task_spawn(&ts, tdc_self, NULL, NULL));
    CHECK_OK(cosync_yield());
    tr("m1");
    CHECK_ERR(cosync_task_result(ta, NULL, NULL), COSYNC_ESRCH); /* detached, freed */
    CHECK_OK(cosync_task_cancel(tc));
    CHECK_OK(cosync_yield());
    tr("m2");
    CHECK_OK(cosync_yield());
    tr("m3");
    CHECK_OK(cosync_yield());
    tr("m4");
    int status = 0;
    CHECK_OK(cosync_callback_outcome(&a.cb, &status, NULL));
    CHECK_ERR(status, COSYNC_EPIPE);
    join_ok(ts);
    CHECK_OK(cosync_task_join(tb, &status, NULL, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_ECANCELED);
    CHECK_OK(cosync_task_join(tc, &status, NULL, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_ECANCELED);
    return 0;
}

TEST(task_done_callbacks_as_the_task_ends)
{
    run_traced(task_ends_main, "f@0 s1@0 m1@0 a:COSYNC_EPIPE@0 b:COSYNC_ECANCELED@0 s2@0 "
                               "cleanup@0 m2@0 self:3@0 cleaned@0 m3@0 c:COSYNC_ECANCELED@0 m4@0");
}

static int tdc_fails_later(void *arg, void **result)
{
    (void)arg;
    CHECK_OK(cosync_sleep(MS(1)));
    *result = (void *)(intptr_t)5;
    return COSYNC_EPIPE;
}

static named_cb tdc_after_join = {COSYNC_CALLBACK_INIT, "cb"};

static int tdc_adds(void *arg, void **result)
{
    (void)result;
    cosync_task *t = arg;
    CHECK_OK(
        cosync_task_add_done_callback(*t, &tdc_after_join.cb, trace_task_outcome, &tdc_after_join));
    return 0;
}

static int tdc_trace_run(void *arg, void **result)
{
    (void)result;
    tr("%s", (const char *)arg);
    return 0;
}

/* A join that began before the callback was added is woken first, and
 * collects the task; its record is reused before the callback runs, which
 * still tells the outcome the finish left it. */
static int collected_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t, adder, reuse;
    CHECK_OK(cosync_task_spawn(&t, tdc_fails_later, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&adder, tdc_adds, &t, NULL));
    int status = 0;
    void *res = NULL;
    CHECK_OK(cosync_task_join(t, &status, &res, COSYNC_FOREVER));
    CHECK_ERR(status, COSYNC_EPIPE);
    tr("joined");
    CHECK(cosync_callback_pending(&tdc_after_join.cb));
    CHECK_OK(cosync_task_spawn(&reuse, tdc_trace_run, "reuse", NULL));
    CHECK(reuse.rec == t.rec); /* the freed record, taken again */
    CHECK_OK(cosync_yield());
    tr("m");
    join_ok(adder);
    join_ok(reuse);
    return 0;
}

TEST(task_done_callback_outlives_the_record)
{
    run_traced(collected_main, "joined@1 cb:COSYNC_EPIPE@1 reuse@1 m@1");
}

static named_cb tdc_taken_back = {COSYNC_CALLBACK_INIT, "n"};

static int tdc_adds_taken_back(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_add_done_callback(*(cosync_task *)arg, &tdc_taken_back.cb,
                                           trace_task_outcome, &tdc_taken_back));
    return 0;
}

/* Between the task's finish and its run, the callback is a queued one:
 * a cancel takes it back (asyncio's remove_done_callback finds the
 * task's list empty by then, and the callback runs), and it keeps the
 * outcome. The join began first, so it is woken first. */
static int taken_back_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t, adder;
    CHECK_OK(cosync_task_spawn(&t, tdc_fails_later, NULL, NULL));
    CHECK_OK(cosync_task_spawn(&adder, tdc_adds_taken_back, &t, NULL));
    int status = 0;
    CHECK_OK(cosync_task_join(t, &status, NULL, COSYNC_FOREVER));
    cosync_callback *cb = &tdc_taken_back.cb;
    CHECK(cosync_callback_pending(cb));
    CHECK_OK(cosync_callback_cancel(cb));
    CHECK(cosync_callback_cancelled(cb));
    CHECK_ERR(cosync_callback_cancel(cb), COSYNC_EALREADY);
    CHECK_OK(cosync_callback_outcome(cb, &status, NULL));
    CHECK_ERR(status, COSYNC_EPIPE);
    CHECK_OK(cosync_yield());
    tr("m");
    CHECK_EQ(loop_stats().callbacks, 0);
    join_ok(adder);
    return 0;
}

TEST(task_done_callback_taken_back_after_the_finish)
{
    run_traced(taken_back_main, "m@1");
}

/* Waits and callbacks, many of each and interleaved, on one task: woken
 * and run in the order they came, across many of the loop's turns. */
enum { TDC_MANY = 300 };
static cosync_callback tdc_many_cbs[TDC_MANY];
static cosync_event tdc_gate;

static int tdc_gated(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_event_wait(&tdc_gate, COSYNC_FOREVER);
}

static int tdc_waits_in_order(void *arg, void **result)
{
    (void)result;
    CHECK_OK(cosync_task_wait(tdc_child, NULL, NULL, COSYNC_FOREVER));
    CHECK_EQ((int)(intptr_t)arg, many_next);
    many_next++;
    return 0;
}

static int many_task_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&tdc_gate);
    CHECK_OK(cosync_task_spawn(&tdc_child, tdc_gated, NULL, NULL));
    static cosync_task waiters[TDC_MANY];
    for (int i = 0; i < TDC_MANY; i++) {
        if (i % 3 == 1) {
            long live = atomic_load(&cosync__mem_live);
            CHECK_OK(cosync_task_add_done_callback(tdc_child, &tdc_many_cbs[i], many_in_order,
                                                   (void *)(intptr_t)i));
            CHECK_EQ(atomic_load(&cosync__mem_live), live); /* no allocation */
        } else {
            CHECK_OK(cosync_task_spawn(&waiters[i], tdc_waits_in_order, (void *)(intptr_t)i,
                                       &(cosync_task_opts){.eager = true}));
        }
    }
    many_next = 0;
    CHECK_OK(cosync_event_set(&tdc_gate));
    join_ok(tdc_child);
    for (int i = 0; i < TDC_MANY; i++)
        if (i % 3 != 1)
            join_ok(waiters[i]);
    CHECK_EQ(many_next, TDC_MANY);
    return 0;
}

TEST(many_task_waits_and_callbacks_in_order)
{
    run_main_ok(many_task_main, NULL);
}

static cosync_event tdc_ev, tdc_stuck_ev;

static int tdc_stubborn(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_ERR(cosync_event_wait(&tdc_stuck_ev, COSYNC_FOREVER), COSYNC_ECANCELED);
    return cosync_event_wait(&tdc_stuck_ev, COSYNC_FOREVER); /* never ends */
}

static int tdc_waits(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

static int tdc_set_and_join(void *arg, void **result)
{
    (void)result;
    cosync_task *t = arg;
    CHECK_OK(cosync_event_set(&tdc_ev));
    join_ok(*t);
    tr("joined");
    return 0;
}

static cosync_task tdc_foreign;

static int tdc_other_loop(void *arg, void **result)
{
    (void)result;
    cosync_callback mine = COSYNC_CALLBACK_INIT;
    CHECK_ERR(cosync_task_add_done_callback(tdc_foreign, &mine, tr_arg, "x"), COSYNC_EPERM);
    CHECK(!cosync_callback_pending(&mine));
    CHECK_ERR(cosync_callback_cancel(arg), COSYNC_EPERM);
    return 0;
}

static int tdc_dense_local(void *arg, void **result)
{
    (void)result;
    cosync_callback mine = COSYNC_CALLBACK_INIT;
    int want = COSYNC__DENSE_SUPPORTED ? COSYNC_EINVAL : 0;
    CHECK_ERR(cosync_task_add_done_callback(*(cosync_task *)arg, &mine, tr_arg, "x"), want);
    if (want == 0)
        CHECK_OK(cosync_callback_cancel(&mine));
    return 0;
}

/* From outside the loop before it runs; misuse; from a task of another
 * loop; a dense task's local record; the loop's destruction, which runs
 * the callbacks of the tasks its cancel ends and takes those of a task
 * that never ends off it. */
TEST(task_done_callbacks_and_the_loop)
{
    trace_reset();
    cosync_event_init(&tdc_ev);
    cosync_event_init(&tdc_stuck_ev);
    named_cb x = {COSYNC_CALLBACK_INIT, "x"}, y = {COSYNC_CALLBACK_INIT, "y"},
             z = {COSYNC_CALLBACK_INIT, "z"}, w = {COSYNC_CALLBACK_INIT, "w"};
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    cosync_task t, m, s, u, d;
    CHECK_OK(cosync_loop_spawn(loop, &t, tdc_waits, &tdc_ev, NULL));
    CHECK_OK(cosync_task_add_done_callback(t, &x.cb, trace_task_outcome, &x)); /* not running */
    CHECK_ERR(cosync_task_add_done_callback(t, NULL, tr_arg, "n"), COSYNC_EINVAL);
    CHECK_ERR(cosync_task_add_done_callback(t, &y.cb, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_task_add_done_callback(COSYNC_TASK_NONE, &y.cb, tr_arg, "n"), COSYNC_ESRCH);
    CHECK_ERR(cosync_task_add_done_callback(t, &x.cb, tr_arg, "n"), COSYNC_EBUSY);
    CHECK_ERR(cosync_callback_outcome(NULL, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_callback_outcome(&y.cb, NULL, NULL), COSYNC_EINVAL); /* never scheduled */
    CHECK_OK(cosync_loop_call_soon(loop, &y.cb, tr_arg, "soon"));
    CHECK_ERR(cosync_callback_outcome(&y.cb, NULL, NULL), COSYNC_EINVAL); /* not a task's */
    cosync_callback copy = x.cb;
    CHECK_ERR(cosync_callback_outcome(&copy, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_callback_cancel(&copy), COSYNC_EINVAL);
    spawn_and_run(loop, &m, tdc_set_and_join, &t);
    CHECK_TRACE("soon@0 x:0@0 joined@0");
    CHECK_ERR(cosync_task_add_done_callback(t, &y.cb, tr_arg, "n"), COSYNC_ESRCH); /* joined */
    CHECK_ERR(cosync_callback_outcome(&y.cb, NULL, NULL), COSYNC_EINVAL);

    /* a task of another loop may neither add nor take back */
    CHECK_OK(cosync_loop_spawn(loop, &s, tdc_stubborn, NULL, &(cosync_task_opts){.name = "s"}));
    CHECK_OK(cosync_task_add_done_callback(s, &z.cb, trace_task_outcome, &z));
    cosync_loop *remote = new_loop();
    tdc_foreign = s;
    cosync_task r;
    CHECK_OK(cosync_loop_spawn(remote, &r, tdc_other_loop, &z.cb, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(remote, r, &status, NULL));
    CHECK_OK(status);
    end_loop(remote);
    CHECK(cosync_callback_pending(&z.cb));

    /* a dense task's own locals */
    CHECK_OK(cosync_loop_spawn(loop, &d, tdc_dense_local, &s, &(cosync_task_opts){.dense = true}));
    CHECK_OK(cosync_loop_run(loop, d, NULL, NULL));

    /* the close: u's cancel ends it and runs w; s never ends, and z is
     * taken off it */
    CHECK_OK(cosync_loop_spawn(loop, &u, tdc_waits, &tdc_ev, NULL));
    cosync_event_clear(&tdc_ev);
    CHECK_OK(cosync_task_add_done_callback(u, &w.cb, trace_task_outcome, &w));
    CHECK_OK(cosync_task_detach(u));
    trace_reset();
    CHECK_ERR(cosync_loop_destroy(loop), COSYNC_EDEADLK);
    CHECK_TRACE("w:COSYNC_ECANCELED@0");
    CHECK(strstr(capture_text(&cap), "'s'") != NULL);
    CHECK(cosync_callback_cancelled(&z.cb));
    CHECK_ERR(cosync_callback_outcome(&z.cb, NULL, NULL), COSYNC_EAGAIN);
    CHECK_ERR(cosync_callback_cancel(&z.cb), COSYNC_EALREADY);
    CHECK(!cosync_callback_cancelled(&w.cb));
    CHECK_OK(cosync_callback_outcome(&w.cb, &status, NULL));
    CHECK_ERR(status, COSYNC_ECANCELED);
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

static cosync_loop *other_loop;
static cosync_callback busy_cb;
static int busy_runs;

static void count_busy(void *arg)
{
    (void)arg;
    busy_runs++;
}

static int on_other_loop(void *arg, void **result)
{
    (void)result;
    cosync_callback *cb = arg;
    CHECK_ERR(cosync_loop_call_soon(other_loop, &(cosync_callback){0}, count_busy, NULL),
              COSYNC_EPERM);
    CHECK_ERR(cosync_loop_call_later(other_loop, &(cosync_callback){0}, 0, count_busy, NULL),
              COSYNC_EPERM);
    CHECK_ERR(cosync_callback_cancel(cb), COSYNC_EPERM);
    return 0;
}

/* A dense task's locals are refused; where the backend gives each dense
 * task a stack of its own (ucontext), they are as any task's. */
static int dense_local(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_callback mine = COSYNC_CALLBACK_INIT;
    int want = COSYNC__DENSE_SUPPORTED ? COSYNC_EINVAL : 0;
    CHECK_ERR(cosync_loop_call_soon(cur_loop(), &mine, count_busy, NULL), want);
    CHECK_EQ(cosync_callback_pending(&mine), want == 0);
    if (want == 0)
        CHECK_OK(cosync_callback_cancel(&mine));
    CHECK_ERR(cosync_loop_call_later(cur_loop(), &mine, 0, count_busy, NULL), want);
    if (want == 0)
        CHECK_OK(cosync_callback_cancel(&mine));
    CHECK(!cosync_callback_pending(&mine));
    return 0;
}

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cur_loop();
    cosync_callback cb = COSYNC_CALLBACK_INIT;
    CHECK_ERR(cosync_loop_call_soon(NULL, &cb, count_busy, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_call_soon(loop, NULL, count_busy, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_call_soon(loop, &cb, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_call_at(loop, &cb, COSYNC_FOREVER, count_busy, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_call_later(loop, &cb, COSYNC_FOREVER, count_busy, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_loop_call_later(NULL, &cb, 0, count_busy, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_callback_cancel(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_callback_cancel(&cb), COSYNC_EINVAL); /* never scheduled */
    CHECK(!cosync_callback_cancelled(NULL));
    CHECK(!cosync_callback_pending(NULL));
    CHECK_EQ(cosync_callback_when(NULL), COSYNC_FOREVER);
    CHECK_EQ(cosync_callback_when(&cb), COSYNC_FOREVER);
    CHECK_EQ(armed_timers(), 0);

    /* scheduled twice: refused, and it runs once */
    busy_runs = 0;
    CHECK_OK(cosync_loop_call_soon(loop, &busy_cb, count_busy, NULL));
    CHECK_ERR(cosync_loop_call_soon(loop, &busy_cb, count_busy, NULL), COSYNC_EBUSY);
    CHECK_ERR(cosync_loop_call_later(loop, &busy_cb, 0, count_busy, NULL), COSYNC_EBUSY);
    CHECK_OK(cosync_yield());
    CHECK_EQ(busy_runs, 1);
    CHECK_OK(cosync_loop_call_later(loop, &busy_cb, MS(1), count_busy, NULL));
    CHECK_ERR(cosync_loop_call_at(loop, &busy_cb, 0, count_busy, NULL), COSYNC_EBUSY);
    CHECK_EQ(armed_timers(), 1);
    CHECK_EQ(cosync_callback_when(&busy_cb), cosync_now() + MS(1));

    /* a time past the clock's range is kept at its end */
    cosync_callback far = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_loop_call_later(loop, &far, INT64_MAX, count_busy, NULL));
    CHECK_EQ(cosync_callback_when(&far), INT64_MAX);
    CHECK_ERR(cosync_loop_call_later(loop, &far, 0, count_busy, NULL), COSYNC_EBUSY);
    CHECK_OK(cosync_callback_cancel(&far));

    /* a copy is not the record the loop holds */
    cosync_callback copy = busy_cb;
    CHECK(!cosync_callback_pending(&copy));
    CHECK_ERR(cosync_callback_cancel(&copy), COSYNC_EINVAL);
    CHECK_EQ(cosync_callback_when(&copy), COSYNC_FOREVER);

    /* a dense task's own locals */
    cosync_task d;
    CHECK_OK(cosync_task_spawn(&d, dense_local, NULL, &(cosync_task_opts){.dense = true}));
    join_ok(d);
    CHECK_OK(cosync_sleep(MS(2)));
    CHECK_EQ(busy_runs, 2);
    return 0;
}

TEST(misuse)
{
    run_main_ok(misuse_main, NULL);
}

/* A task of one loop cannot schedule on another, nor cancel its
 * callbacks: that is another thread's business in general (use
 * cosync_loop_call_threadsafe). */
TEST(callbacks_across_loops)
{
    cosync_loop *target = new_loop();
    cosync_callback cb = COSYNC_CALLBACK_INIT;
    busy_runs = 0;
    CHECK_OK(cosync_loop_call_later(target, &cb, MS(1), count_busy, NULL));
    other_loop = target;
    cosync_loop *remote = new_loop();
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(remote, &t, on_other_loop, &cb, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(remote, t, &status, NULL));
    CHECK_OK(status);
    end_loop(remote);
    CHECK(cosync_callback_pending(&cb)); /* still the target's */
    CHECK_OK(cosync_loop_run(target, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(busy_runs, 1);
    end_loop(target);
}

/* ------------------------------------------------------------------------
 * Deadlocks and the loop's close
 * ---------------------------------------------------------------------- */

static void set_event(void *arg)
{
    CHECK_OK(cosync_event_set(arg));
}

static int waits_for_event(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

/* A timed callback can wake the main task: no deadlock until it has run
 * and nothing else can. */
TEST(deadlock_and_callbacks)
{
    cosync_event ev;
    cosync_event_init(&ev);
    cosync_loop *loop = new_loop();
    cosync_task m;
    cosync_callback later = COSYNC_CALLBACK_INIT;
    CHECK_OK(cosync_loop_spawn(loop, &m, waits_for_event, &ev, NULL));
    CHECK_OK(cosync_loop_call_later(loop, &later, MS(50), set_event, &ev));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    CHECK_EQ(cosync_loop_now(loop), TRACE_T0 + MS(50));
    end_loop(loop);

    capture c;
    cosync_event_init(&ev);
    loop = report_loop(&c, NULL);
    CHECK_OK(cosync_loop_spawn(loop, &m, waits_for_event, &ev, &(cosync_task_opts){.name = "m"}));
    CHECK_OK(cosync_loop_call_later(loop, &later, MS(50), count_busy, NULL));
    CHECK_ERR(cosync_loop_run(loop, m, NULL, NULL), COSYNC_EDEADLK);
    CHECK_EQ(cosync_loop_now(loop), TRACE_T0 + MS(50));
    CHECK(strstr(capture_text(&c), "'m'") != NULL);
    CHECK_OK(cosync_task_cancel(m));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&c);
}

static cosync_callback close_cbs[3];

static int cleanup_schedules(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = cosync_sleep(COSYNC_SEC(100));
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_loop_call_soon(cur_loop(), &close_cbs[2], tr_arg, "during"));
    CHECK_OK(cosync_sleep(0));
    tr("cleaned");
    return rc;
}

static int sleep_1ms(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(MS(1));
}

/* The close runs the callbacks that come due while it finishes the tasks
 * (asyncio.run's clean-up runs the loop too), and cancels the others
 * (asyncio's loop.close() drops them). */
TEST(loop_close_and_callbacks)
{
    trace_reset();
    cosync_loop *loop = new_loop();
    CHECK_OK(cosync_loop_spawn(loop, NULL, cleanup_schedules, NULL, NULL));
    cosync_task m;
    spawn_and_run(loop, &m, sleep_1ms, NULL);
    CHECK_OK(cosync_loop_call_later(loop, &close_cbs[0], COSYNC_SEC(10), tr_arg, "later"));
    CHECK_OK(cosync_loop_call_soon(loop, &close_cbs[1], tr_arg, "soon"));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_TRACE("soon@1 during@1 cleaned@1");
    CHECK(cosync_callback_cancelled(&close_cbs[0]));
    CHECK_ERR(cosync_callback_cancel(&close_cbs[0]), COSYNC_EALREADY);
    CHECK(!cosync_callback_cancelled(&close_cbs[1]));
    CHECK(!cosync_callback_cancelled(&close_cbs[2]));

    /* with no task left, the close runs nothing */
    trace_reset();
    loop = new_loop();
    CHECK_OK(cosync_loop_call_soon(loop, &close_cbs[1], tr_arg, "soon"));
    CHECK_OK(cosync_loop_call_at(loop, &close_cbs[0], 0, tr_arg, "past"));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_TRACE("");
    CHECK(cosync_callback_cancelled(&close_cbs[0]));
    CHECK(cosync_callback_cancelled(&close_cbs[1]));
}

int main(void)
{
    RUN(call_soon_among_tasks);
    RUN(callbacks_schedule_callbacks);
    RUN(timed_callbacks_and_sleepers);
    RUN(timer_callback_queues_behind_the_instants_sleepers);
    RUN(call_soon_in_a_crowd);
    RUN(callback_behind_a_crowd);
    RUN(callbacks_before_a_run);
    RUN(callback_context);
    RUN(cancel_in_each_state);
    RUN(periodic_timer);
    RUN(callback_rescheduling_itself);
    RUN(callback_chain_lets_timers_in);
    RUN(stop_among_callbacks);
    RUN(stop_reaches_a_far_callback);
    RUN(callback_stops_the_loop);
    RUN(eager_start_among_callbacks);
    RUN(many_callbacks_in_order_without_allocation);
    RUN(future_done_callbacks);
    RUN(done_callbacks_as_the_future_ends);
    RUN(done_callbacks_and_the_loop);
    RUN(task_done_callbacks);
    RUN(task_done_callbacks_as_the_task_ends);
    RUN(task_done_callback_taken_back_after_the_finish);
    RUN(task_done_callback_outlives_the_record);
    RUN(many_task_waits_and_callbacks_in_order);
    RUN(task_done_callbacks_and_the_loop);
    RUN(misuse);
    RUN(callbacks_across_loops);
    RUN(deadlock_and_callbacks);
    RUN(loop_close_and_callbacks);
    return 0;
}
