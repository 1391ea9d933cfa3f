/* ctest-timeout: 120 */
/*
 * test_handle_model.c - a randomized test of what every call on a task
 * handle returns, against a model of the task's life.
 *
 * test_tasks.c and test_combinators.c check each misuse in a scripted
 * scenario; this test mixes them. Each seed's main task takes random
 * steps on up to MAX_SLOTS tasks: it spawns a task (which yields one time
 * in four, blocks on an event of its own, then returns a planned status),
 * sets a task's event, yields (so that spawned tasks start and released
 * ones finish), cancels, detaches, joins and waits with deadline 0, reads
 * done, result, name and id, gathers a random list of handles with
 * deadline 0, and has a helper task join a task without a deadline (one
 * helper in eight cancels main first, through main's handle). One spawn
 * in four (of a task or a helper) starts eagerly, and one seed in five
 * runs on a loop whose tasks all do (cosync_loop_opts.eager_tasks).
 * Handles are kept after their task is collected, and the records are
 * reused by later spawns, so stale handles meet records that hold other
 * tasks.
 *
 * The model knows each task's state (not run yet, yielded, blocked,
 * finished, collected), whether it is detached or being joined, whether
 * its event was set and whether it was cancelled (before it ran, in its
 * yield, while it waited, or after its wait was granted), and so the
 * status it ends with. It also keeps the loop's ready queue: main, the
 * tasks and the helpers join it at the back when they are spawned, yield
 * or are woken (a set, a cancel, the finish of the task a join or main's
 * gather waits for), and an eager spawn puts the new task at its head with
 * main right behind it. Every step of every task and every return of main
 * to its own code must come in the queue's order, and the queue's length
 * must be the loop's count of ready tasks whenever main goes on: an eager
 * task takes its first step inside the spawn (a helper whose join does
 * not wait ends there), main goes on at once after it, ahead of the tasks
 * that were ready before, and a yield in that first step goes to the back.
 * A helper's cancel of main while main waits in its yield ends the yield
 * with COSYNC_ECANCELED; one during its eager spawn stays pending (the
 * spawn is no suspension point, nor is a gather with deadline 0 for it)
 * and ends main's next yield so; main's cancellation count is the requests
 * it has not withdrawn.
 * Checked: each call's return is the one the header documents for that
 * state (join: 0 with the predicted outcome, COSYNC_EAGAIN, COSYNC_ESRCH
 * stale, COSYNC_EINVAL detached, COSYNC_EBUSY joined by another,
 * COSYNC_EDEADLK itself; detach: 0, COSYNC_EINVAL twice, COSYNC_EBUSY,
 * COSYNC_ESRCH; cancel: 0, COSYNC_EALREADY, COSYNC_ESRCH; gather:
 * COSYNC_EINVAL and nothing collected for a list with a stale, detached,
 * joined or repeated handle, else every task collected and the unfinished
 * ones cancelled); a task cancelled before it ran never runs, and ends
 * when the scheduler reaches it; a stale
 * handle never reaches the task that now has its record; at the end every
 * task is collected or freed and no record is left.
 *
 * Everything runs on the virtual clock from PRNG streams seeded by the
 * seed alone, so a seed replays exactly: a failure names its seed and
 * step. HANDLE_SEEDS sets how many seeds run, HANDLE_FIRST the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_SLOTS 12
#define MAX_TASKS 400 /* tasks spawned in a seed, at most */
#define STEPS 300
#define MAX_HELPERS (STEPS + 1)
#define QUEUE_CAP 1024 /* more than the tasks, helpers and main together */

enum state { T_FRESH, T_YIELDED, T_BLOCKED, T_FINISHED, T_STALE };
static const char *const state_name[] = {"not run yet", "yielded", "blocked", "finished",
                                         "collected"};

/* How the task's cancellation came, for its final status. */
enum cancel_kind { C_NONE, C_BEFORE_RUN, C_IN_YIELD, C_WHILE_WAITING, C_AFTER_GRANT };

/* Who takes a turn on the loop, in the model of its ready queue: a task
 * (its number), a helper (MAX_TASKS + its number), or main. */
enum { MAIN = -1, NOBODY = -2 };

typedef struct task_model {
    int no; /* its number in the seed */
    cosync_task h;
    uint64_t id;
    enum state state;
    bool detached;
    bool joined;   /* a helper task is joining it */
    bool gathered; /* main's gather has it (while main waits in it) */
    bool ran;
    bool yields; /* its body yields once before it waits */
    bool event_set;
    enum cancel_kind cancel;
    int planned; /* what its body returns when its wait succeeds */
    int waiter;  /* who waits for its finish (a helper's join, main's gather), or NOBODY */
    cosync_event ev;
    char name[16];
} task_model;

static struct {
    uint64_t seed;
    uint64_t rng;
    int step;
    task_model t[MAX_TASKS];
    int nt;
    int slot[MAX_SLOTS]; /* the task in each slot, or -1 */
    int helpers;         /* helper joins under way */
    struct {
        int target;        /* the task it joins */
        bool cancels_main; /* first, as it starts */
    } helper[MAX_HELPERS];
    int nhelpers;
    bool eager_loop; /* the loop's option: every spawn starts eagerly */
    /* main: running its own code, or (main_in_gather) in a gather that
     * waits for gather[gather_at], or in its yield, or in an eager spawn */
    bool main_running, main_in_gather, main_in_yield;
    int gather[4], gather_n, gather_at;
    /* main's cancellation by helpers: the requests it has not withdrawn,
     * one pending for its next suspension (it came during an eager spawn,
     * which is none), or one that came while it waited in its yield */
    cosync_task main;
    int main_cancels;
    bool main_cancel_pending, main_yield_cancelled;
} M;

/* The loop's ready queue as the model has it (apart from M, which each
 * seed clears: only its ends need that). */
static struct {
    int at[QUEUE_CAP];
    int head, len;
} queue;

static struct {
    long steps, spawns, joins, stale_calls, gathers, gathers_refused, cancels, detaches;
    long eager, yields, turns, main_cancels;
} total;

#define FAIL(fmt, ...)                                                                             \
    CHECK__FAIL("seed %llu, step %d: " fmt, (unsigned long long)M.seed, M.step, __VA_ARGS__)

static void *result_of(const task_model *t)
{
    return (void *)(intptr_t)(t->no + 1);
}

/* The status the task ends with. */
static int predicted(const task_model *t)
{
    switch (t->cancel) {
    case C_BEFORE_RUN:
    case C_IN_YIELD:
    case C_WHILE_WAITING:
        return COSYNC_ECANCELED;
    case C_AFTER_GRANT:
        return t->planned < 0 ? t->planned : COSYNC_ECANCELED;
    case C_NONE:
        break;
    }
    return t->planned;
}

static void check_outcome(const task_model *t, const char *what, int status, void *result)
{
    if (status != predicted(t))
        FAIL("%s of task %d: status %s, predicted %s", what, t->no, cosync_err_name(status),
             cosync_err_name(predicted(t)));
    void *want = t->ran ? result_of(t) : NULL;
    if (result != want)
        FAIL("%s of task %d: result %p, want %p", what, t->no, result, want);
}

static void expect_rc(const task_model *t, const char *what, int rc, int want)
{
    if (rc != want)
        FAIL("%s of task %d (%s%s%s): returned %s, expected %s", what, t->no, state_name[t->state],
             t->detached ? ", detached" : "", t->joined ? ", joined" : "", cosync_err_name(rc),
             cosync_err_name(want));
}

/* The handle is stale: the task was collected, or freed as detached. */
static bool stale(const task_model *t)
{
    return t->state == T_STALE;
}

/* ========================================================================
 * The ready queue
 * ===================================================================== */

static int helper_agent(int h)
{
    return MAX_TASKS + h;
}

static const char *agent_name(int a)
{
    static char buf[32];
    if (a == MAIN)
        return "main";
    if (a == NOBODY)
        return "nobody";
    if (a >= MAX_TASKS)
        snprintf(buf, sizeof buf, "helper %d", a - MAX_TASKS);
    else
        snprintf(buf, sizeof buf, "task %d", a);
    return buf;
}

static void push_back(int a)
{
    if (queue.len == QUEUE_CAP)
        FAIL("%s", "the model's ready queue is full");
    queue.at[(queue.head + queue.len++) % QUEUE_CAP] = a;
}

static void push_front(int a)
{
    if (queue.len == QUEUE_CAP)
        FAIL("%s", "the model's ready queue is full");
    queue.head = (queue.head + QUEUE_CAP - 1) % QUEUE_CAP;
    queue.at[queue.head] = a;
    queue.len++;
}

static int head(void)
{
    return queue.len ? queue.at[queue.head] : NOBODY;
}

static void pop(void)
{
    queue.head = (queue.head + 1) % QUEUE_CAP;
    queue.len--;
}

/* The task finished: a detached one is freed then, and whoever waits for
 * it (a helper's join, main's gather) is woken. */
static void finished(task_model *t)
{
    t->state = t->detached ? T_STALE : T_FINISHED;
    if (t->waiter != NOBODY)
        push_back(t->waiter);
    t->waiter = NOBODY;
}

/* Main's gather goes on with the tasks it has not collected: true once it
 * has them all; else it waits for the next one unfinished. */
static bool gather_goes_on(void)
{
    while (M.gather_at < M.gather_n && M.t[M.gather[M.gather_at]].state == T_FINISHED)
        M.gather_at++;
    if (M.gather_at == M.gather_n)
        return true;
    M.t[M.gather[M.gather_at]].waiter = MAIN;
    return false;
}

/* What the scheduler does at the head of the queue without running
 * anyone's code: a task cancelled before it ran ends there, and main in a
 * gather collects what has finished and waits on (or goes on, its gather
 * done). */
static void settle_head(void)
{
    while (queue.len && !M.main_running) {
        int a = head();
        if (a == MAIN && M.main_in_gather) {
            pop();
            if (gather_goes_on()) {
                M.main_in_gather = false;
                M.main_running = true;
            }
        } else if (a >= 0 && a < MAX_TASKS && M.t[a].state == T_FRESH &&
                   M.t[a].cancel == C_BEFORE_RUN) {
            pop();
            finished(&M.t[a]);
        } else {
            return;
        }
    }
}

/* @a, a task or a helper, takes a step now: it must be the next in the
 * queue, and main must not be running. */
static void takes_turn(int a)
{
    settle_head();
    total.turns++;
    if (M.main_running)
        FAIL("%s runs while main should run", agent_name(a));
    if (head() != a)
        FAIL("%s runs, but %s is next in the ready queue (%d ready)", agent_name(a),
             agent_name(head()), queue.len);
    pop();
}

/* Main is back in its own code: it must be its turn, and the loop's ready
 * tasks are the model's. */
static void main_goes_on(void)
{
    settle_head();
    if (!M.main_running) {
        if (head() != MAIN || M.main_in_gather)
            FAIL("main goes on, but %s is next in the ready queue%s", agent_name(head()),
                 M.main_in_gather ? " and main's gather still waits" : "");
        pop();
        M.main_running = true;
    }
    size_t ready = ready_tasks();
    if (ready != (size_t)queue.len)
        FAIL("%zu tasks are ready, the model has %d", ready, queue.len);
    int cancelling = cosync_task_cancelling(M.main);
    if (cancelling != M.main_cancels)
        FAIL("main's cancellation count is %d, %d requests not withdrawn", cancelling,
             M.main_cancels);
}

/* Main spawns @a eagerly: @a takes its first step at once, and main is
 * next, ahead of every task that was ready before. */
static void eager_start(int a)
{
    M.main_running = false;
    push_front(MAIN);
    push_front(a);
    total.eager++;
}

/* ========================================================================
 * Tasks
 * ===================================================================== */

/* Whether @t waits on its event, off the ready queue: a set or a cancel
 * wakes it (puts it at the back). */
static bool waits_on_event(const task_model *t)
{
    return t->state == T_BLOCKED && !t->event_set && t->cancel == C_NONE;
}

/* The yield of a task that yields before its wait: to the back of the
 * queue. A cancel while it is there ends the yield (and the task) with
 * COSYNC_ECANCELED. */
static int body_yields(task_model *t)
{
    t->state = T_YIELDED;
    push_back(t->no);
    total.yields++;
    int rc = cosync_yield();
    takes_turn(t->no);
    if ((rc == COSYNC_ECANCELED) != (t->cancel == C_IN_YIELD))
        FAIL("task %d: its yield returned %s, cancel %d", t->no, cosync_err_name(rc), t->cancel);
    if (rc != COSYNC_ECANCELED)
        CHECK_OK(rc);
    return rc;
}

static int body(void *arg, void **result)
{
    task_model *t = arg;
    takes_turn(t->no);
    if (t->cancel == C_BEFORE_RUN || t->state != T_FRESH)
        FAIL("task %d runs (%s, cancel %d)", t->no, state_name[t->state], t->cancel);
    t->ran = true;
    *result = result_of(t);
    if (t->yields && body_yields(t) == COSYNC_ECANCELED) {
        finished(t);
        return COSYNC_ECANCELED;
    }
    t->state = T_BLOCKED;
    bool waits = !t->event_set; /* a set event returns at once */
    int rc = cosync_event_wait(&t->ev, COSYNC_FOREVER);
    if (waits)
        takes_turn(t->no);
    if (rc == COSYNC_ECANCELED) {
        if (t->cancel != C_WHILE_WAITING)
            FAIL("task %d: its wait returned COSYNC_ECANCELED, cancel %d", t->no, t->cancel);
    } else {
        CHECK_OK(rc);
        if (!t->event_set || t->cancel == C_WHILE_WAITING)
            FAIL("task %d: its wait returned 0, event set %d, cancel %d", t->no, t->event_set,
                 t->cancel);
        rc = t->planned;
    }
    finished(t);
    return rc;
}

/* A helper cancels main, its spawner (not while main waits in a gather,
 * which would pass the request on to the tasks it gathers): a request
 * while main waits in its yield ends the yield with COSYNC_ECANCELED; one
 * while main is in the eager spawn of this helper stays pending, for
 * main's next suspension (the spawn is none). */
static void helper_cancels_main(void)
{
    if (M.main_in_gather)
        return;
    CHECK_OK(cosync_task_cancel(M.main));
    M.main_cancels++;
    total.main_cancels++;
    if (M.main_in_yield)
        M.main_yield_cancelled = true;
    else
        M.main_cancel_pending = true;
}

/* A helper that joins a task without a deadline, as things stand when it
 * runs, and checks the outcome; one in eight cancels main first. */
static int helper(void *arg, void **result)
{
    (void)result;
    const int h = (int)(intptr_t)arg;
    takes_turn(helper_agent(h));
    if (M.helper[h].cancels_main)
        helper_cancels_main();
    task_model *t = &M.t[M.helper[h].target];
    int want = stale(t)                   ? COSYNC_ESRCH
               : t->detached              ? COSYNC_EINVAL
               : t->joined || t->gathered ? COSYNC_EBUSY
                                          : 0;
    if (want == 0)
        t->joined = true;
    /* a join that is refused, or of a finished task, returns at once */
    bool waits = want == 0 && t->state != T_FINISHED;
    if (waits)
        t->waiter = helper_agent(h);
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_join(t->h, &st, &res, COSYNC_FOREVER);
    if (waits)
        takes_turn(helper_agent(h));
    if (t->gathered && rc == COSYNC_ESRCH)
        want = rc; /* the gather collects each task as it gets to it */
    expect_rc(t, "helper's join", rc, want);
    if (rc == 0) {
        check_outcome(t, "helper's join", st, res);
        t->joined = false;
        t->state = T_STALE;
    }
    M.helpers--;
    return 0;
}

/* ========================================================================
 * Steps of main
 * ===================================================================== */

static task_model *pick(void)
{
    if (M.nt == 0)
        return NULL;
    /* mostly a task in a slot; one time in four any task of the seed */
    if (rnd(&M.rng, 4)) {
        int s = M.slot[rnd(&M.rng, MAX_SLOTS)];
        if (s >= 0)
            return &M.t[s];
    }
    return &M.t[rnd(&M.rng, (uint32_t)M.nt)];
}

/* pick(), but a few tries for a task whose handle is good and that nobody
 * else joins, so that gathers are not all refused */
static task_model *pick_good(void)
{
    task_model *t = pick();
    for (int tries = 0; t && tries < 4 && (stale(t) || t->detached || t->joined); tries++)
        t = pick();
    return t;
}

/* The options of a spawn by main, one time in four eager; *@eager: whether
 * it starts eagerly (asked for, or the loop's option). */
static cosync_task_opts spawn_opts(const char *name, bool *eager)
{
    bool asked = rnd(&M.rng, 4) == 0;
    *eager = asked || M.eager_loop;
    return (cosync_task_opts){.name = name, .eager = asked};
}

/* Main spawns @a (in the model): at the back, or eagerly. */
static void spawned(int a, bool eager)
{
    if (eager)
        eager_start(a);
    else
        push_back(a);
}

static void step_spawn(void)
{
    int s = (int)rnd(&M.rng, MAX_SLOTS);
    if (M.nt >= MAX_TASKS || (M.slot[s] >= 0 && !stale(&M.t[M.slot[s]])))
        return;
    task_model *t = &M.t[M.nt];
    *t = (task_model){.no = M.nt, .state = T_FRESH, .waiter = NOBODY};
    t->planned = rnd(&M.rng, 3) == 0 ? -(30000 + t->no) : 0;
    t->yields = rnd(&M.rng, 4) == 0;
    cosync_event_init(&t->ev);
    snprintf(t->name, sizeof t->name, "t%d", t->no);
    bool eager;
    cosync_task_opts o = spawn_opts(t->name, &eager);
    spawned(t->no, eager);
    CHECK_OK(cosync_task_spawn(&t->h, body, t, &o));
    if (eager) {
        /* its first step (to its yield or its wait) is taken */
        if (t->state != (t->yields ? T_YIELDED : T_BLOCKED))
            FAIL("task %d, spawned eagerly, is %s when the spawn returns", t->no,
                 state_name[t->state]);
        main_goes_on();
    }
    t->id = cosync_task_id(t->h);
    CHECK_GT(t->id, 0);
    M.slot[s] = M.nt++;
    total.spawns++;
}

/* Main withdraws every request, as it catches COSYNC_ECANCELED. */
static void main_withdraws(void)
{
    while (M.main_cancels > 0) {
        int left = cosync_task_uncancel(M.main);
        if (left != --M.main_cancels)
            FAIL("main's uncancel returned %d, %d requests left", left, M.main_cancels);
    }
}

/* Run what is ready: spawned tasks start, released ones finish. A request
 * for main pending at the yield, or one that comes during it, ends it with
 * COSYNC_ECANCELED (it still goes to the back first). */
static void step_yield(void)
{
    const bool pending = M.main_cancel_pending;
    M.main_cancel_pending = M.main_yield_cancelled = false;
    M.main_in_yield = true;
    M.main_running = false;
    push_back(MAIN);
    int rc = cosync_yield();
    M.main_in_yield = false;
    main_goes_on();
    const bool cancelled = pending || M.main_yield_cancelled;
    if (rc != (cancelled ? COSYNC_ECANCELED : 0))
        FAIL("main's yield returned %s, a request %s", cosync_err_name(rc),
             pending                  ? "pending at the yield"
             : M.main_yield_cancelled ? "during it"
                                      : "neither pending nor during it");
    if (rc == COSYNC_ECANCELED)
        main_withdraws();
}

static void step_set(task_model *t)
{
    if (t->state != T_BLOCKED && t->state != T_FRESH && t->state != T_YIELDED)
        return; /* nobody waits on it any more */
    if (waits_on_event(t))
        push_back(t->no); /* granted */
    CHECK_OK(cosync_event_set(&t->ev));
    t->event_set = true;
}

/* @t, unfinished, is cancelled for the first time: how, for its status;
 * and its wait on its event, if it is in one, ends (it is ready). */
static void cancelled(task_model *t)
{
    if (waits_on_event(t))
        push_back(t->no);
    t->cancel = t->state == T_FRESH     ? C_BEFORE_RUN
                : t->state == T_YIELDED ? C_IN_YIELD
                : t->event_set          ? C_AFTER_GRANT
                                        : C_WHILE_WAITING;
}

static void step_join(task_model *t)
{
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_join(t->h, &st, &res, 0);
    total.joins++;
    total.stale_calls += stale(t);
    int want = stale(t)                 ? COSYNC_ESRCH
               : t->detached            ? COSYNC_EINVAL
               : t->joined              ? COSYNC_EBUSY
               : t->state == T_FINISHED ? 0
                                        : COSYNC_EAGAIN;
    expect_rc(t, "join", rc, want);
    if (rc == 0) {
        check_outcome(t, "join", st, res);
        t->state = T_STALE;
    }
}

static void step_wait(task_model *t)
{
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_wait(t->h, &st, &res, 0);
    int want = stale(t) ? COSYNC_ESRCH : t->state == T_FINISHED ? 0 : COSYNC_EAGAIN;
    expect_rc(t, "wait", rc, want);
    if (rc == 0)
        check_outcome(t, "wait", st, res);
}

static void step_cancel(task_model *t)
{
    int rc = cosync_task_cancel(t->h);
    int want = stale(t) ? COSYNC_ESRCH : t->state == T_FINISHED ? COSYNC_EALREADY : 0;
    expect_rc(t, "cancel", rc, want);
    if (rc != 0 || t->cancel != C_NONE)
        return;
    total.cancels++;
    cancelled(t);
}

static void step_detach(task_model *t)
{
    int rc = cosync_task_detach(t->h);
    int want = stale(t) ? COSYNC_ESRCH : t->joined ? COSYNC_EBUSY : t->detached ? COSYNC_EINVAL : 0;
    expect_rc(t, "detach", rc, want);
    if (rc != 0)
        return;
    total.detaches++;
    t->detached = true;
    if (t->state == T_FINISHED)
        t->state = T_STALE; /* freed at once */
}

static void step_look(task_model *t)
{
    bool done = cosync_task_done(t->h);
    if (done != (t->state == T_FINISHED))
        FAIL("done of task %d (%s) is %d", t->no, state_name[t->state], done);
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_result(t->h, &st, &res);
    expect_rc(t, "result", rc,
              stale(t)                 ? COSYNC_ESRCH
              : t->state == T_FINISHED ? 0
                                       : COSYNC_EAGAIN);
    if (rc == 0)
        check_outcome(t, "result", st, res);
    const char *name = cosync_task_name(t->h);
    uint64_t id = cosync_task_id(t->h);
    if (stale(t) ? name != NULL || id != 0 : !name || strcmp(name, t->name) != 0 || id != t->id)
        FAIL("task %d (%s): name %s, id %llu (its own: %s, %llu)", t->no, state_name[t->state],
             name ? name : "NULL", (unsigned long long)id, t->name, (unsigned long long)t->id);
    if (!stale(t) && rnd(&M.rng, 4) == 0) {
        snprintf(t->name, sizeof t->name, "r%d.%d", t->no, M.step);
        CHECK_OK(cosync_task_set_name(t->h, t->name));
    } else if (stale(t)) {
        expect_rc(t, "set_name", cosync_task_set_name(t->h, "x"), COSYNC_ESRCH);
    }
}

static void step_helper(task_model *t)
{
    const int h = M.nhelpers++;
    M.helper[h].target = t->no;
    M.helper[h].cancels_main = rnd(&M.rng, 8) == 0;
    M.helpers++;
    bool eager;
    cosync_task_opts o = spawn_opts(NULL, &eager);
    spawned(helper_agent(h), eager);
    CHECK_OK(cosync_task_spawn(NULL, helper, (void *)(intptr_t)h, &o));
    if (eager)
        main_goes_on(); /* its first step taken: it ended, or waits in its join */
}

/* Main's gather of @ts (@n, a good list, some unfinished) begins: it
 * cancels the unfinished ones in order (the ones that wait on their
 * event are woken), and waits for each in turn. */
static void main_gathers(task_model *const *ts, int n)
{
    for (int i = 0; i < n; i++) {
        if (ts[i]->state != T_FINISHED && ts[i]->cancel == C_NONE)
            cancelled(ts[i]);
        M.gather[i] = ts[i]->no;
    }
    M.gather_n = n;
    M.gather_at = 0;
    M.main_running = false;
    M.main_in_gather = true;
    if (gather_goes_on())
        FAIL("%s", "main's gather found every task finished");
}

/* A gather of a random list with deadline 0: refused as a whole for a
 * stale, detached, joined or repeated handle; else the unfinished tasks
 * are cancelled and every task is collected. A request pending for main
 * stays pending (deadline 0 delivers none). */
static void step_gather(void)
{
    int n = 1 + (int)rnd(&M.rng, 4);
    cosync_task hs[4];
    task_model *ts[4];
    bool bad = false, unfinished = false;
    bool careful = rnd(&M.rng, 4) != 0;
    for (int i = 0; i < n; i++) {
        ts[i] = careful ? pick_good() : pick();
        if (!ts[i])
            return;
        hs[i] = ts[i]->h;
        bad = bad || stale(ts[i]) || ts[i]->detached || ts[i]->joined;
        for (int j = 0; j < i; j++)
            bad = bad || ts[j] == ts[i];
        unfinished = unfinished || ts[i]->state != T_FINISHED;
    }
    cosync_outcome out[4];
    total.gathers++;
    for (int i = 0; !bad && i < n; i++)
        ts[i]->gathered = true;
    if (!bad && unfinished)
        main_gathers(ts, n);
    int rc = cosync_gather(hs, (size_t)n, out, 0);
    for (int i = 0; i < n; i++)
        ts[i]->gathered = false;
    if (bad) {
        total.gathers_refused++;
        if (rc != COSYNC_EINVAL)
            FAIL("gather of a list with a bad handle returned %s", cosync_err_name(rc));
        return;
    }
    if (unfinished)
        main_goes_on(); /* it waited for the tasks it cancelled */
    if (rc != (unfinished ? COSYNC_EAGAIN : 0))
        FAIL("gather returned %s, %s", cosync_err_name(rc),
             unfinished ? "a task was unfinished" : "all had finished");
    for (int i = 0; i < n; i++) {
        check_outcome(ts[i], "gather", out[i].status, out[i].result);
        ts[i]->state = T_STALE;
    }
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int s = 0; s < MAX_SLOTS; s++)
        M.slot[s] = -1;
    cosync_task self = cosync_task_current();
    M.main = self;
    M.main_running = true;
    for (M.step = 0; M.step < STEPS; M.step++) {
        total.steps++;
        uint32_t r = rnd(&M.rng, 100);
        task_model *t = r < 20 ? NULL : pick();
        if (r < 20)
            step_spawn();
        else if (!t || r < 35)
            step_yield();
        else if (r < 47)
            step_set(t);
        else if (r < 57)
            step_join(t);
        else if (r < 62)
            step_wait(t);
        else if (r < 70)
            step_cancel(t);
        else if (r < 76)
            step_detach(t);
        else if (r < 86)
            step_look(t);
        else if (r < 90)
            step_helper(t);
        else if (r < 97)
            step_gather();
        else
            CHECK_ERR(cosync_task_join(self, NULL, NULL, 0), COSYNC_EDEADLK);
    }
    /* the end: release every task, let them finish, collect what is left */
    for (int i = 0; i < M.nt; i++)
        step_set(&M.t[i]);
    while (M.helpers > 0 || ready_tasks() > 0)
        step_yield();
    if (queue.len != 0)
        FAIL("nothing is ready, the model has %d ready, %s first", queue.len, agent_name(head()));
    for (int i = 0; i < M.nt; i++) {
        task_model *t = &M.t[i];
        if (t->state == T_FINISHED)
            step_join(t);
        if (t->state != T_STALE)
            FAIL("task %d left %s", t->no, state_name[t->state]);
    }
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.tasks_alive, 1);
    CHECK_EQ(st.tasks_records, 1);
    return 0;
}

static void run_seed(uint64_t seed)
{
    memset(&M, 0, sizeof M);
    queue.head = queue.len = 0;
    M.seed = seed;
    M.rng = splitmix(seed);
    M.eager_loop = seed % 5 == 0;
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.virtual_clock = true, .eager_tasks = M.eager_loop}));
    cosync_task m;
    /* spawned before the run, main is queued even on an eager loop */
    CHECK_OK(cosync_loop_spawn(loop, &m, seed_main, NULL, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    int rc = cosync_loop_run(loop, m, &status, NULL);
    if (rc != 0 || status != 0)
        FAIL("the loop's run returned %s, main %s", cosync_err_name(rc), cosync_err_name(status));
    end_loop(loop);
}

static long first_seed = 1;
static long nseeds = 1500;

TEST(test_handle_model_seeds)
{
    double secs = run_seeds(run_seed, first_seed, nseeds);
    printf("  seeds %ld to %ld: %ld steps, %ld spawns, %ld eager starts (of tasks and "
           "helpers), %ld joins (%ld on stale handles), %ld gathers (%ld refused), %ld cancels, "
           "%ld detaches, %ld yields by tasks, %ld turns of tasks in the queue's order, %ld "
           "cancels of main by helpers, %.2f s\n",
           first_seed, first_seed + nseeds - 1, total.steps, total.spawns, total.eager, total.joins,
           total.stale_calls, total.gathers, total.gathers_refused, total.cancels, total.detaches,
           total.yields, total.turns, total.main_cancels, secs);
}

int main(void)
{
    if (under_valgrind())
        nseeds = 150;
    first_seed = env_long("HANDLE_FIRST", first_seed);
    nseeds = env_long("HANDLE_SEEDS", nseeds);
    RUN(test_handle_model_seeds);
    return 0;
}
