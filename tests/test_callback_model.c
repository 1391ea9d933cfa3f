/*
 * test_callback_model.c - loop callbacks against a model of asyncio's
 * ready queue, on random scenarios.
 *
 * asyncio keeps its tasks' steps and its callbacks in one FIFO; cosync
 * keeps callbacks apart and finds each one's place among the tasks by
 * counting dispatches (src/callback.c). This test runs the same random
 * program both ways and asserts that the two traces are equal, step for
 * step. The model is that FIFO, a few lines long; the run is the loop.
 *
 * A scenario: up to 300 tasks (more than a turn's budget of 128, so a
 * callback's place is often several turns away), each a few steps; in a
 * step a task schedules callbacks (cosync_loop_call_soon), attaches them
 * to futures (cosync_future_add_done_callback) and to tasks
 * (cosync_task_add_done_callback), schedules them 1 to 3 ms ahead
 * (cosync_loop_call_later), cancels pending ones, asks for a future to be
 * completed (by a callback), and ends the step with a yield, with a wait
 * on its own gate (an event) that a callback it schedules will open, with
 * a wait on a future, with a wait for a task spawned after it
 * (cosync_task_wait; so no cycle), or with a sleep of 1 to 3 ms.
 * Callbacks, when they run, do the same but wait. Futures still pending
 * when nothing else can run are completed by timed callbacks, in order.
 * In asyncio a future's (and a task's) awaiting tasks' wake-ups and its
 * done callbacks are one list, run in the order they came. When nothing
 * is ready the clock jumps to the next timers, and those of one instant
 * come due in the order they were armed, the callbacks ahead of the
 * sleepers: cosync's order, which asyncio's leaves open
 * (docs/callbacks.md). What each step and each run does is drawn from
 * the seed beforehand, so both sides read the same script, and a
 * difference in order shows as a difference in the traces. Seeds:
 * CALLBACK_FIRST, CALLBACK_SEEDS.
 */
/* ctest-timeout: 300 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "cosync.h"

enum {
    MAX_TASKS = 300,
    MAX_STEPS = 6,
    NCB = 48,     /* callbacks any step or run may schedule or cancel */
    NFUT = 4,     /* futures */
    MAX_RUNS = 6, /* a callback's runs that have a script; later ones do nothing */
    MAX_ACTS = 3, /* actions in a step or a run */
    MAX_TRACE = 8192,
};

typedef struct act {
    uint8_t kind; /* ACT_* */
    uint8_t cb;
    uint8_t fut;
    uint16_t task; /* ACT_TASK_ADD */
    uint8_t delay; /* ACT_LATER: in ms */
} act;

enum { ACT_NONE, ACT_SCHEDULE, ACT_CANCEL, ACT_ADD, ACT_COMPLETE, ACT_TASK_ADD, ACT_LATER };

/* how a task's step ends (its last step just ends the task) */
enum { END_YIELD, END_GATE, END_AWAIT, END_TASK, END_SLEEP };

typedef struct script {
    act acts[MAX_ACTS];
    uint8_t end;   /* END_GATE: on the task's gate, opened by its gate callback */
    uint8_t fut;   /* END_AWAIT: the future */
    uint16_t task; /* END_TASK: the task, spawned after this one */
    uint8_t delay; /* END_SLEEP: in ms */
} script;

static struct scenario {
    int ntasks;
    int steps[MAX_TASKS];
    script task[MAX_TASKS][MAX_STEPS];
    script cb[NCB][MAX_RUNS];
} S;

/* @i: the task whose step it is, or -1 for a callback's run */
static void draw_script(script *sc, uint64_t *rng, bool may_wait, int i)
{
    static const uint8_t kinds[] = {ACT_SCHEDULE, ACT_SCHEDULE, ACT_SCHEDULE, ACT_CANCEL,
                                    ACT_ADD,      ACT_ADD,      ACT_COMPLETE, ACT_TASK_ADD,
                                    ACT_TASK_ADD, ACT_LATER,    ACT_LATER};
    int n = (int)rnd(rng, MAX_ACTS + 1);
    for (int a = 0; a < n; a++) {
        sc->acts[a].kind = kinds[rnd(rng, sizeof kinds)];
        sc->acts[a].cb = (uint8_t)rnd(rng, NCB);
        sc->acts[a].fut = (uint8_t)rnd(rng, NFUT);
        sc->acts[a].task = (uint16_t)rnd(rng, (uint32_t)S.ntasks);
        sc->acts[a].delay = (uint8_t)(1 + rnd(rng, 3));
    }
    uint32_t e = may_wait ? rnd(rng, 13) : 0;
    sc->end = e < 7    ? END_YIELD
              : e < 8  ? END_GATE
              : e < 10 ? END_AWAIT
              : e < 11 ? END_TASK
                       : END_SLEEP;
    sc->delay = (uint8_t)(1 + rnd(rng, 3));
    sc->fut = (uint8_t)rnd(rng, NFUT);
    if (sc->end == END_TASK && i + 1 < S.ntasks)
        sc->task = (uint16_t)(i + 1 + (int)rnd(rng, (uint32_t)(S.ntasks - i - 1)));
    else if (sc->end == END_TASK)
        sc->end = END_YIELD;
}

static void draw(uint64_t seed)
{
    memset(&S, 0, sizeof S);
    uint64_t rng = splitmix(seed);
    S.ntasks = 1 + (int)rnd(&rng, rnd(&rng, 4) == 0 ? MAX_TASKS : 20);
    for (int i = 0; i < S.ntasks; i++) {
        S.steps[i] = 1 + (int)rnd(&rng, MAX_STEPS);
        for (int s = 0; s < S.steps[i]; s++)
            draw_script(&S.task[i][s], &rng, s + 1 < S.steps[i], i);
    }
    for (int c = 0; c < NCB; c++)
        for (int r = 0; r < MAX_RUNS; r++)
            draw_script(&S.cb[c][r], &rng, false, -1);
}

/* ---- traces ------------------------------------------------------------ */

typedef struct trace {
    int n;
    int ev[MAX_TRACE];
} trace;

#define EV_TASK(i, s) ((i)*MAX_STEPS + (s))
#define EV_CB(c, r) (1000000 + (c)*1000 + (r))
#define EV_GATE(i) (2000000 + (i))
#define EV_COMPLETE(k) (3000000 + (k))
#define EV_FINAL(k) (4000000 + (k))

static void emit(trace *t, int ev)
{
    CHECK_LT(t->n, MAX_TRACE);
    t->ev[t->n++] = ev;
}

/* ---- the model: asyncio's _ready ---------------------------------------- */

/* an entry: a task's next step (0..), a callback (1000 + c), a gate
 * callback (2000 + i), a completer (3000 + k), a final completer (4000 + k) */
enum { FIFO_SIZE = 1 << 16, LIST_SIZE = 1024, NLISTS = NFUT + MAX_TASKS };
static int fifo[FIFO_SIZE];
static unsigned fhead, ftail;
static bool m_pending[NCB];
static int m_runs[NCB];
/* the list a pending callback is attached to, -1, or M_TIMED */
enum { M_TIMED = -2 };
static int m_on_list[NCB];
/* the timers: callbacks (1000 + c), sleepers (i), final completers
 * (4000 + k), each with its time (ms) and the order it was armed in */
enum { MAX_TIMERS = MAX_TASKS + NCB + NFUT };
static struct {
    long when, seq;
    int e;
} m_timers[MAX_TIMERS];
static int m_ntimers;
static long m_now, m_seq;

static void m_arm(long when, int e)
{
    CHECK_LT(m_ntimers, MAX_TIMERS);
    m_timers[m_ntimers].when = when;
    m_timers[m_ntimers].seq = m_seq++;
    m_timers[m_ntimers].e = e;
    m_ntimers++;
}

static void m_disarm(int e)
{
    for (int x = 0; x < m_ntimers; x++)
        if (m_timers[x].e == e) {
            m_timers[x] = m_timers[--m_ntimers];
            return;
        }
    CHECK(!"a timed callback is armed");
}
static bool m_done[NFUT], m_completing[NFUT], m_task_done[MAX_TASKS];
/* the callbacks of a future (k) or a task (NFUT + i): tasks' wake-ups (i)
 * and callbacks (1000 + c) */
static int m_list[NLISTS][LIST_SIZE];
static int m_nlist[NLISTS];
static int m_step[MAX_TASKS];

static void m_push(int e)
{
    CHECK_LT(ftail - fhead, (unsigned)FIFO_SIZE);
    fifo[ftail++ % FIFO_SIZE] = e;
}

static void m_remove(int e)
{
    for (unsigned k = fhead; k != ftail; k++)
        if (fifo[k % FIFO_SIZE] == e) {
            for (unsigned j = k; j + 1 != ftail; j++)
                fifo[j % FIFO_SIZE] = fifo[(j + 1) % FIFO_SIZE];
            ftail--;
            return;
        }
    CHECK(!"a pending callback is in the model's queue");
}

static void m_list_remove(int k, int e)
{
    for (int x = 0; x < m_nlist[k]; x++)
        if (m_list[k][x] == e) {
            memmove(&m_list[k][x], &m_list[k][x + 1], (size_t)(m_nlist[k] - x - 1) * sizeof(int));
            m_nlist[k]--;
            return;
        }
    CHECK(!"an attached callback is on its future's or task's list");
}

static void m_append(int k, int e)
{
    CHECK_LT(m_nlist[k], LIST_SIZE);
    m_list[k][m_nlist[k]++] = e;
    if (e >= 1000)
        m_on_list[e - 1000] = k;
}

/* Future or task @k is done: schedule its callbacks, in order. */
static void m_release(int k)
{
    for (int x = 0; x < m_nlist[k]; x++) {
        int e = m_list[k][x];
        if (e >= 1000)
            m_on_list[e - 1000] = -1;
        m_push(e);
    }
    m_nlist[k] = 0;
}

static void m_complete(int k)
{
    m_done[k] = true;
    m_release(k);
}

/* Add callback @c to the list @k, done already if @done. */
static void m_add(int c, int k, bool done)
{
    if (m_pending[c])
        return;
    m_pending[c] = true;
    if (done)
        m_push(1000 + c);
    else
        m_append(k, 1000 + c);
}

static void m_acts(const script *sc)
{
    for (int a = 0; a < MAX_ACTS; a++) {
        int c = sc->acts[a].cb, k = sc->acts[a].fut;
        switch (sc->acts[a].kind) {
        case ACT_SCHEDULE:
            if (!m_pending[c]) {
                m_pending[c] = true;
                m_push(1000 + c);
            }
            break;
        case ACT_ADD:
            m_add(c, k, m_done[k]);
            break;
        case ACT_TASK_ADD:
            m_add(c, NFUT + sc->acts[a].task, m_task_done[sc->acts[a].task]);
            break;
        case ACT_LATER:
            if (!m_pending[c]) {
                m_pending[c] = true;
                m_on_list[c] = M_TIMED;
                m_arm(m_now + sc->acts[a].delay, 1000 + c);
            }
            break;
        case ACT_CANCEL:
            if (m_pending[c]) {
                m_pending[c] = false;
                if (m_on_list[c] >= 0)
                    m_list_remove(m_on_list[c], 1000 + c);
                else if (m_on_list[c] == M_TIMED)
                    m_disarm(1000 + c);
                else
                    m_remove(1000 + c);
                m_on_list[c] = -1;
            }
            break;
        case ACT_COMPLETE:
            if (!m_done[k] && !m_completing[k]) {
                m_completing[k] = true;
                m_push(3000 + k);
            }
            break;
        }
    }
}

/* Task @i runs from its current step until it suspends or ends. */
static void m_task(trace *t, int i)
{
    for (;;) {
        int s = m_step[i]++;
        const script *sc = &S.task[i][s];
        emit(t, EV_TASK(i, s));
        m_acts(sc);
        if (s + 1 == S.steps[i]) {
            m_task_done[i] = true;
            m_release(NFUT + i);
            return;
        }
        if (sc->end == END_YIELD) {
            m_push(i);
            return;
        }
        if (sc->end == END_GATE) {
            m_push(2000 + i); /* its gate callback, scheduled last */
            return;
        }
        if (sc->end == END_SLEEP) {
            m_arm(m_now + sc->delay, i);
            return;
        }
        if (sc->end == END_TASK) {
            if (!m_task_done[sc->task]) { /* a done task's wait returns at once */
                m_append(NFUT + sc->task, i);
                return;
            }
            continue;
        }
        if (!m_done[sc->fut]) { /* a done future's wait returns at once */
            m_append(sc->fut, i);
            return;
        }
    }
}

/* Nothing is ready: the clock jumps to the next timers, and those of
 * that instant come due in the order they were armed: the callbacks
 * first, then the sleepers they woke (cosync's order, docs/callbacks.md:
 * a timer callback runs ahead of the instant's sleepers, and what it
 * queues goes behind them). false if no timer is left. */
static bool m_fire_timers(void)
{
    if (m_ntimers == 0)
        return false;
    long when = m_timers[0].when;
    for (int x = 1; x < m_ntimers; x++)
        if (m_timers[x].when < when)
            when = m_timers[x].when;
    m_now = when;
    for (int pass = 0; pass < 2; pass++) { /* callbacks, then sleepers */
        for (;;) {
            int best = -1;
            for (int x = 0; x < m_ntimers; x++)
                if (m_timers[x].when == when && (m_timers[x].e >= 1000) == (pass == 0) &&
                    (best < 0 || m_timers[x].seq < m_timers[best].seq))
                    best = x;
            if (best < 0)
                break;
            int e = m_timers[best].e;
            m_timers[best] = m_timers[--m_ntimers];
            if (e >= 1000 && e < 2000)
                m_on_list[e - 1000] = -1;
            m_push(e);
        }
    }
    return true;
}

static void run_model(trace *t)
{
    memset(m_step, 0, sizeof m_step);
    memset(m_pending, 0, sizeof m_pending);
    memset(m_runs, 0, sizeof m_runs);
    memset(m_done, 0, sizeof m_done);
    memset(m_task_done, 0, sizeof m_task_done);
    memset(m_completing, 0, sizeof m_completing);
    memset(m_nlist, 0, sizeof m_nlist);
    for (int c = 0; c < NCB; c++)
        m_on_list[c] = -1;
    fhead = ftail = 0;
    m_ntimers = 0;
    m_now = m_seq = 0;
    for (int k = 0; k < NFUT; k++) /* main arms them first */
        m_arm(1000000, 4000 + k);
    for (int i = 0; i < S.ntasks; i++)
        m_push(i);
    for (;;) {
        if (fhead == ftail && !m_fire_timers())
            return;
        int e = fifo[fhead++ % FIFO_SIZE];
        if (e < 1000) {
            m_task(t, e);
        } else if (e < 2000) {
            int c = e - 1000;
            m_pending[c] = false;
            int r = m_runs[c]++;
            emit(t, EV_CB(c, r));
            if (r < MAX_RUNS)
                m_acts(&S.cb[c][r]);
        } else if (e < 3000) {
            emit(t, EV_GATE(e - 2000));
            m_push(e - 2000); /* the event's waiter is woken */
        } else if (e < 4000) {
            int k = e - 3000;
            m_completing[k] = false;
            emit(t, EV_COMPLETE(k));
            if (!m_done[k])
                m_complete(k);
        } else if (!m_done[e - 4000]) {
            emit(t, EV_FINAL(e - 4000));
            m_complete(e - 4000);
        }
    }
}

/* ---- the run ------------------------------------------------------------ */

static trace *R;
static cosync_callback cbs[NCB];
static int r_runs[NCB];
static cosync_callback gate_cbs[MAX_TASKS];
static cosync_event gates[MAX_TASKS];
static cosync_future futs[NFUT];
static cosync_callback completers[NFUT], finals[NFUT];
static cosync_task tasks[MAX_TASKS];

static void r_callback(void *arg);

static void r_complete(void *arg)
{
    int k = (int)(intptr_t)arg;
    emit(R, EV_COMPLETE(k));
    if (!cosync_future_done(&futs[k]))
        CHECK_OK(cosync_future_set_result(&futs[k], NULL));
}

static void r_final(void *arg)
{
    int k = (int)(intptr_t)arg;
    if (!cosync_future_done(&futs[k])) {
        emit(R, EV_FINAL(k));
        CHECK_OK(cosync_future_set_result(&futs[k], NULL));
    }
}

static void r_acts(const script *sc)
{
    cosync_loop *loop = cosync_loop_current();
    for (int a = 0; a < MAX_ACTS; a++) {
        int c = sc->acts[a].cb, k = sc->acts[a].fut;
        void *carg = (void *)(intptr_t)c;
        switch (sc->acts[a].kind) {
        case ACT_SCHEDULE:
            if (!cosync_callback_pending(&cbs[c]))
                CHECK_OK(cosync_loop_call_soon(loop, &cbs[c], r_callback, carg));
            break;
        case ACT_ADD:
            if (!cosync_callback_pending(&cbs[c]))
                CHECK_OK(cosync_future_add_done_callback(&futs[k], &cbs[c], r_callback, carg));
            break;
        case ACT_TASK_ADD:
            if (!cosync_callback_pending(&cbs[c]))
                CHECK_OK(cosync_task_add_done_callback(tasks[sc->acts[a].task], &cbs[c], r_callback,
                                                       carg));
            break;
        case ACT_LATER:
            if (!cosync_callback_pending(&cbs[c]))
                CHECK_OK(cosync_loop_call_later(loop, &cbs[c], COSYNC_MS(sc->acts[a].delay),
                                                r_callback, carg));
            break;
        case ACT_CANCEL:
            if (cosync_callback_pending(&cbs[c]))
                CHECK_OK(cosync_callback_cancel(&cbs[c]));
            break;
        case ACT_COMPLETE:
            if (!cosync_future_done(&futs[k]) && !cosync_callback_pending(&completers[k]))
                CHECK_OK(
                    cosync_loop_call_soon(loop, &completers[k], r_complete, (void *)(intptr_t)k));
            break;
        }
    }
}

static void r_callback(void *arg)
{
    int c = (int)(intptr_t)arg;
    int r = r_runs[c]++;
    emit(R, EV_CB(c, r));
    if (r < MAX_RUNS)
        r_acts(&S.cb[c][r]);
}

static void open_gate(void *arg)
{
    int i = (int)(intptr_t)arg;
    emit(R, EV_GATE(i));
    CHECK_OK(cosync_event_set(&gates[i]));
}

static int r_task(void *arg, void **result)
{
    (void)result;
    int i = (int)(intptr_t)arg;
    for (int s = 0; s < S.steps[i]; s++) {
        const script *sc = &S.task[i][s];
        emit(R, EV_TASK(i, s));
        r_acts(sc);
        if (s + 1 == S.steps[i])
            break;
        if (sc->end == END_YIELD) {
            CHECK_OK(cosync_yield());
        } else if (sc->end == END_GATE) {
            cosync_event_clear(&gates[i]);
            CHECK_OK(cosync_loop_call_soon(cosync_loop_current(), &gate_cbs[i], open_gate,
                                           (void *)(intptr_t)i));
            CHECK_OK(cosync_event_wait(&gates[i], COSYNC_FOREVER));
        } else if (sc->end == END_TASK) {
            CHECK_OK(cosync_task_wait(tasks[sc->task], NULL, NULL, COSYNC_FOREVER));
        } else if (sc->end == END_SLEEP) {
            CHECK_OK(cosync_sleep(COSYNC_MS(sc->delay)));
        } else {
            CHECK_OK(cosync_future_wait(&futs[sc->fut], COSYNC_FOREVER));
        }
    }
    return 0;
}

static bool any_pending(void)
{
    for (int c = 0; c < NCB; c++)
        if (cosync_callback_pending(&cbs[c]))
            return true;
    for (int k = 0; k < NFUT; k++)
        if (cosync_callback_pending(&finals[k]) || cosync_callback_pending(&completers[k]))
            return true;
    return false;
}

static int r_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_loop *loop = cosync_loop_current();
    for (int k = 0; k < NFUT; k++) {
        cosync_future_init(&futs[k]);
        /* when nothing else can run: the clock jumps to them */
        CHECK_OK(cosync_loop_call_later(loop, &finals[k], COSYNC_SEC(1000), r_final,
                                        (void *)(intptr_t)k));
    }
    for (int i = 0; i < S.ntasks; i++) {
        cosync_event_init(&gates[i]);
        CHECK_OK(cosync_task_spawn(&tasks[i], r_task, (void *)(intptr_t)i, NULL));
    }
    /* main waits for the callbacks too: asyncio's run ends with its FIFO.
     * It collects the tasks only then, for callbacks are added to them
     * after they have finished; and it waits for them by sleeping: a join
     * would be one of the waits on their lists, which the model lacks. */
    CHECK_OK(cosync_sleep(COSYNC_SEC(1001)));
    while (any_pending())
        CHECK_OK(cosync_sleep(COSYNC_SEC(1)));
    for (int i = 0; i < S.ntasks; i++) {
        CHECK(cosync_task_done(tasks[i]));
        join_ok(tasks[i]);
    }
    return 0;
}

static trace model_trace, run_trace;
static long total_events, total_cbs, total_tasks;

static void run_seed(uint64_t seed)
{
    draw(seed);
    model_trace.n = run_trace.n = 0;
    run_model(&model_trace);
    memset(r_runs, 0, sizeof r_runs);
    memset(cbs, 0, sizeof cbs);
    memset(completers, 0, sizeof completers);
    R = &run_trace;
    run_main_ok(r_main, NULL);
    for (int k = 0; k < model_trace.n && k < run_trace.n; k++)
        if (model_trace.ev[k] != run_trace.ev[k]) {
            fprintf(stderr, "seed %llu: event %d of %d: asyncio's model has %d, cosync %d\n",
                    (unsigned long long)seed, k, model_trace.n, model_trace.ev[k], run_trace.ev[k]);
            CHECK_EQ(run_trace.ev[k], model_trace.ev[k]);
        }
    CHECK_EQ(run_trace.n, model_trace.n);
    total_events += model_trace.n;
    total_tasks += S.ntasks;
    for (int c = 0; c < NCB; c++)
        total_cbs += r_runs[c];
}

static long first_seed = 1;
static long nseeds = 3000;

TEST(callback_model_seeds)
{
    double secs = run_seeds(run_seed, first_seed, nseeds);
    printf("  seeds %ld to %ld: %ld tasks, %ld callback runs, %ld events compared, %.2f s\n",
           first_seed, first_seed + nseeds - 1, total_tasks, total_cbs, total_events, secs);
}

int main(void)
{
    if (under_valgrind())
        nseeds = 200;
    first_seed = env_long("CALLBACK_FIRST", first_seed);
    nseeds = env_long("CALLBACK_SEEDS", nseeds);
    RUN(callback_model_seeds);
    return 0;
}
