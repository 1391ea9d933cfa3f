/* ctest-timeout: 120 */
/*
 * test_handle_model.c - a randomized test of what every call on a task
 * handle returns, against a model of the task's life.
 *
 * test_tasks.c and test_combinators.c check each misuse in a scripted
 * scenario; this test mixes them. Each seed's main task takes random
 * steps on up to MAX_SLOTS tasks: it spawns a task (which blocks on an
 * event of its own, then returns a planned status), sets a task's event,
 * yields (so that spawned tasks start and released ones finish), cancels,
 * detaches, joins and waits with deadline 0, reads done, result, name and
 * id, gathers a random list of handles with deadline 0, and has a helper
 * task join a task without a deadline. Handles are kept after their task
 * is collected, and the records are reused by later spawns, so stale
 * handles meet records that hold other tasks.
 *
 * The model knows each task's state (not run yet, blocked, finished,
 * collected), whether it is detached or being joined, whether its event
 * was set and whether it was cancelled (before it ran, while it waited,
 * or after its wait was granted), and so the status it ends with.
 * Checked: each call's return is the one the header documents for that
 * state (join: 0 with the predicted outcome, COSYNC_EAGAIN, COSYNC_ESRCH
 * stale, COSYNC_EINVAL detached, COSYNC_EBUSY joined by another,
 * COSYNC_EDEADLK itself; detach: 0, COSYNC_EINVAL twice, COSYNC_EBUSY,
 * COSYNC_ESRCH; cancel: 0, COSYNC_EALREADY, COSYNC_ESRCH; gather:
 * COSYNC_EINVAL and nothing collected for a list with a stale, detached,
 * joined or repeated handle, else every task collected and the unfinished
 * ones cancelled); a task cancelled before it ran never runs; a stale
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

enum state { T_FRESH, T_BLOCKED, T_FINISHED, T_STALE };
static const char *const state_name[] = {"not run yet", "blocked", "finished", "collected"};

/* How the task's cancellation came, for its final status. */
enum cancel_kind { C_NONE, C_BEFORE_RUN, C_WHILE_WAITING, C_AFTER_GRANT };

typedef struct task_model {
    int no; /* its number in the seed */
    cosync_task h;
    uint64_t id;
    enum state state;
    bool detached;
    bool joined;   /* a helper task is joining it */
    bool gathered; /* main's gather has it (while main waits in it) */
    bool ran;
    bool event_set;
    enum cancel_kind cancel;
    int planned; /* what its body returns when its wait succeeds */
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
} M;

static struct {
    long steps, spawns, joins, stale_calls, gathers, gathers_refused, cancels, detaches;
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

/* The task finished: a detached one is freed then. */
static void finished(task_model *t)
{
    t->state = t->detached ? T_STALE : T_FINISHED;
}

/* ========================================================================
 * Tasks
 * ===================================================================== */

static int body(void *arg, void **result)
{
    task_model *t = arg;
    if (t->cancel == C_BEFORE_RUN || t->state != T_FRESH)
        FAIL("task %d runs (%s, cancel %d)", t->no, state_name[t->state], t->cancel);
    t->ran = true;
    t->state = T_BLOCKED;
    *result = result_of(t);
    int rc = cosync_event_wait(&t->ev, COSYNC_FOREVER);
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

/* A helper that joins a task without a deadline, as things stand when it
 * runs, and checks the outcome. */
static int helper(void *arg, void **result)
{
    (void)result;
    task_model *t = arg;
    int want = stale(t)                   ? COSYNC_ESRCH
               : t->detached              ? COSYNC_EINVAL
               : t->joined || t->gathered ? COSYNC_EBUSY
                                          : 0;
    if (want == 0)
        t->joined = true;
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_join(t->h, &st, &res, COSYNC_FOREVER);
    if (t->gathered && rc == COSYNC_ESRCH)
        want = rc; /* the gather collects each task as it gets to it */
    if (t->state == T_FRESH && t->cancel == C_BEFORE_RUN && t->detached && rc == COSYNC_ESRCH)
        want = rc; /* ended (and freed) by the scheduler ahead of this helper */
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

static void step_spawn(void)
{
    int s = (int)rnd(&M.rng, MAX_SLOTS);
    if (M.nt >= MAX_TASKS || (M.slot[s] >= 0 && !stale(&M.t[M.slot[s]])))
        return;
    task_model *t = &M.t[M.nt];
    *t = (task_model){.no = M.nt, .state = T_FRESH};
    t->planned = rnd(&M.rng, 3) == 0 ? -(30000 + t->no) : 0;
    cosync_event_init(&t->ev);
    snprintf(t->name, sizeof t->name, "t%d", t->no);
    CHECK_OK(cosync_task_spawn(&t->h, body, t, &(cosync_task_opts){.name = t->name}));
    t->id = cosync_task_id(t->h);
    CHECK_GT(t->id, 0);
    M.slot[s] = M.nt++;
    total.spawns++;
}

/* Main has suspended: every task ready before it has run, and a task
 * cancelled before it ran has been ended by the scheduler on the way. */
static void after_suspension(void)
{
    for (int i = 0; i < M.nt; i++)
        if (M.t[i].state == T_FRESH && M.t[i].cancel == C_BEFORE_RUN)
            finished(&M.t[i]);
}

/* Run what is ready: spawned tasks start, released ones finish. */
static void step_yield(void)
{
    CHECK_OK(cosync_yield());
    after_suspension();
}

static void step_set(task_model *t)
{
    if (t->state != T_BLOCKED && t->state != T_FRESH)
        return; /* nobody waits on it any more */
    CHECK_OK(cosync_event_set(&t->ev));
    t->event_set = true;
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
    if (t->state == T_FRESH)
        t->cancel = C_BEFORE_RUN;
    else
        t->cancel = t->event_set ? C_AFTER_GRANT : C_WHILE_WAITING;
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
    M.helpers++;
    CHECK_OK(cosync_task_spawn(NULL, helper, t, NULL));
}

/* A gather of a random list with deadline 0: refused as a whole for a
 * stale, detached, joined or repeated handle; else the unfinished tasks
 * are cancelled and every task is collected. */
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
    /* what the cancellation of the unfinished ones will make of them */
    for (int i = 0; !bad && i < n; i++)
        if (ts[i]->state != T_FINISHED && ts[i]->cancel == C_NONE)
            ts[i]->cancel = ts[i]->state == T_FRESH ? C_BEFORE_RUN
                            : ts[i]->event_set      ? C_AFTER_GRANT
                                                    : C_WHILE_WAITING;
    cosync_outcome out[4];
    total.gathers++;
    for (int i = 0; !bad && i < n; i++)
        ts[i]->gathered = true;
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
        after_suspension(); /* it waited for the tasks it cancelled */
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
        if (M.t[i].state == T_FRESH || M.t[i].state == T_BLOCKED)
            step_set(&M.t[i]);
    while (M.helpers > 0 || loop_stats().tasks_ready > 0)
        step_yield();
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
    M.seed = seed;
    M.rng = splitmix(seed);
    int rc = run_main_clean(seed_main, NULL);
    if (rc != 0)
        FAIL("the loop's run, or main, returned %s", cosync_err_name(rc));
}

static long first_seed = 1;
static long nseeds = 1500;

TEST(test_handle_model_seeds)
{
    double secs = run_seeds(run_seed, first_seed, nseeds);
    printf("  seeds %ld to %ld: %ld steps, %ld spawns, %ld joins (%ld on stale handles), %ld "
           "gathers (%ld refused), %ld cancels, %ld detaches, %.2f s\n",
           first_seed, first_seed + nseeds - 1, total.steps, total.spawns, total.joins,
           total.stale_calls, total.gathers, total.gathers_refused, total.cancels, total.detaches,
           secs);
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
