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
 * step a task schedules callbacks (cosync_loop_call_soon), cancels
 * pending ones, and ends the step with a yield, or with a wait on its own
 * gate (an event) that a callback it schedules will open. Callbacks, when
 * they run, schedule and cancel callbacks in turn. What each step and
 * each run does is drawn from the seed beforehand, so both sides read the
 * same script, and a difference in order shows as a difference in the
 * traces. Seeds: CALLBACK_FIRST, CALLBACK_SEEDS.
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
    MAX_RUNS = 6, /* a callback's runs that have a script; later ones do nothing */
    MAX_ACTS = 3, /* actions in a step or a run */
    MAX_TRACE = 8192,
};

typedef struct act {
    uint8_t kind; /* ACT_SCHEDULE, ACT_CANCEL */
    uint8_t cb;
} act;

enum { ACT_NONE, ACT_SCHEDULE, ACT_CANCEL };

typedef struct script {
    act acts[MAX_ACTS];
    bool gate; /* end the step waiting on the task's gate, opened by its gate callback */
} script;

static struct scenario {
    int ntasks;
    int steps[MAX_TASKS];
    script task[MAX_TASKS][MAX_STEPS];
    script cb[NCB][MAX_RUNS];
} S;

static void draw_script(script *sc, uint64_t *rng, bool may_gate)
{
    int n = (int)rnd(rng, MAX_ACTS + 1);
    for (int a = 0; a < n; a++) {
        sc->acts[a].kind = rnd(rng, 4) == 0 ? ACT_CANCEL : ACT_SCHEDULE;
        sc->acts[a].cb = (uint8_t)rnd(rng, NCB);
    }
    sc->gate = may_gate && rnd(rng, 5) == 0;
}

static void draw(uint64_t seed)
{
    memset(&S, 0, sizeof S);
    uint64_t rng = splitmix(seed);
    S.ntasks = 1 + (int)rnd(&rng, rnd(&rng, 4) == 0 ? MAX_TASKS : 20);
    for (int i = 0; i < S.ntasks; i++) {
        S.steps[i] = 1 + (int)rnd(&rng, MAX_STEPS);
        for (int s = 0; s < S.steps[i]; s++)
            draw_script(&S.task[i][s], &rng, s + 1 < S.steps[i]);
    }
    for (int c = 0; c < NCB; c++)
        for (int r = 0; r < MAX_RUNS; r++)
            draw_script(&S.cb[c][r], &rng, false);
}

/* ---- traces ------------------------------------------------------------ */

typedef struct trace {
    int n;
    int ev[MAX_TRACE];
} trace;

#define EV_TASK(i, s) ((i)*MAX_STEPS + (s))
#define EV_CB(c, r) (1000000 + (c)*1000 + (r))
#define EV_GATE(i) (2000000 + (i))

static void emit(trace *t, int ev)
{
    CHECK_LT(t->n, MAX_TRACE);
    t->ev[t->n++] = ev;
}

/* ---- the model: asyncio's _ready ---------------------------------------- */

/* an entry: a task's next step (0..), a callback (1000 + c) or a gate
 * callback (2000 + i) */
static int fifo[1 << 16];
static unsigned fhead, ftail;
static bool m_pending[NCB];
static int m_runs[NCB];

static void m_push(int e)
{
    CHECK_LT(ftail - fhead, (unsigned)(sizeof fifo / sizeof *fifo));
    fifo[ftail++ % (sizeof fifo / sizeof *fifo)] = e;
}

static void m_remove(int e)
{
    unsigned size = sizeof fifo / sizeof *fifo;
    for (unsigned k = fhead; k != ftail; k++)
        if (fifo[k % size] == e) {
            for (unsigned j = k; j + 1 != ftail; j++)
                fifo[j % size] = fifo[(j + 1) % size];
            ftail--;
            return;
        }
    CHECK(!"a pending callback is in the model's queue");
}

static void m_acts(const script *sc)
{
    for (int a = 0; a < MAX_ACTS; a++) {
        int c = sc->acts[a].cb;
        if (sc->acts[a].kind == ACT_SCHEDULE && !m_pending[c]) {
            m_pending[c] = true;
            m_push(1000 + c);
        } else if (sc->acts[a].kind == ACT_CANCEL && m_pending[c]) {
            m_pending[c] = false;
            m_remove(1000 + c);
        }
    }
}

static void run_model(trace *t)
{
    int step[MAX_TASKS] = {0};
    memset(m_pending, 0, sizeof m_pending);
    memset(m_runs, 0, sizeof m_runs);
    fhead = ftail = 0;
    for (int i = 0; i < S.ntasks; i++)
        m_push(i);
    unsigned size = sizeof fifo / sizeof *fifo;
    while (fhead != ftail) {
        int e = fifo[fhead++ % size];
        if (e < 1000) {
            const script *sc = &S.task[e][step[e]];
            emit(t, EV_TASK(e, step[e]));
            m_acts(sc);
            if (sc->gate)
                m_push(2000 + e); /* its gate callback, scheduled last */
            else if (++step[e] < S.steps[e])
                m_push(e);
            if (sc->gate)
                step[e]++;
        } else if (e < 2000) {
            int c = e - 1000;
            m_pending[c] = false;
            int r = m_runs[c]++;
            emit(t, EV_CB(c, r));
            if (r < MAX_RUNS)
                m_acts(&S.cb[c][r]);
        } else {
            emit(t, EV_GATE(e - 2000));
            m_push(e - 2000); /* the event's waiter is woken */
        }
    }
}

/* ---- the run ------------------------------------------------------------ */

static trace *R;
static cosync_callback cbs[NCB];
static int r_runs[NCB];
static cosync_callback gate_cbs[MAX_TASKS];
static cosync_event gates[MAX_TASKS];

static void r_callback(void *arg);

static void r_acts(const script *sc)
{
    cosync_loop *loop = cosync_loop_current();
    for (int a = 0; a < MAX_ACTS; a++) {
        int c = sc->acts[a].cb;
        if (sc->acts[a].kind == ACT_SCHEDULE && !cosync_callback_pending(&cbs[c])) {
            CHECK_OK(cosync_loop_call_soon(loop, &cbs[c], r_callback, (void *)(intptr_t)c));
        } else if (sc->acts[a].kind == ACT_CANCEL && cosync_callback_pending(&cbs[c])) {
            CHECK_OK(cosync_callback_cancel(&cbs[c]));
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
        if (sc->gate) {
            cosync_event_clear(&gates[i]);
            CHECK_OK(cosync_loop_call_soon(cosync_loop_current(), &gate_cbs[i], open_gate,
                                           (void *)(intptr_t)i));
            CHECK_OK(cosync_event_wait(&gates[i], COSYNC_FOREVER));
        } else if (s + 1 < S.steps[i]) {
            CHECK_OK(cosync_yield());
        }
    }
    return 0;
}

static int r_main(void *arg, void **result)
{
    (void)arg, (void)result;
    static cosync_task t[MAX_TASKS];
    for (int i = 0; i < S.ntasks; i++) {
        cosync_event_init(&gates[i]);
        CHECK_OK(cosync_task_spawn(&t[i], r_task, (void *)(intptr_t)i, NULL));
    }
    /* main waits for the callbacks too: asyncio's run ends with its FIFO */
    for (int i = 0; i < S.ntasks; i++)
        join_ok(t[i]);
    while (true) {
        bool any = false;
        for (int c = 0; c < NCB; c++)
            any |= cosync_callback_pending(&cbs[c]);
        if (!any)
            break;
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
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
