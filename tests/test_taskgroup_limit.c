/*
 * test_taskgroup_limit.c - the limit on a TaskGroup (a task limiter, Go's
 * errgroup.SetLimit): cosync_taskgroup_set_limit and cosync_taskgroup_go,
 * and cosync_taskgroup_spawn with a limit (the try form).
 *
 * Every loop runs on the virtual clock: every time below is exact, and
 * every interleaving that matters is pinned with checkpoints. AT(ms) is
 * the virtual time @ms milliseconds after the test's main task started.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

#if UNDER_ASAN
#include <sanitizer/asan_interface.h>
#endif

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* The status of a child that fails (any negative code but
 * COSYNC_ECANCELED fails the group). */
#define KID_FAILED (-7001)

/* ------------------------------------------------------------------------
 * Children: a kid sleeps for its duration, then returns its status.
 * ---------------------------------------------------------------------- */

/* The children running (their bodies started and not returned), the most
 * at once, and the order they started in. */
static struct {
    int running;
    int peak;
    int cap; /* checked at each start unless 0 */
    int started;
    int order[64];
} meter;

static void meter_reset(int cap)
{
    memset(&meter, 0, sizeof meter);
    meter.cap = cap;
}

/* Called at each kid's start and end, if set (the model's monitor). */
static void (*kid_monitor)(void);

typedef struct kid {
    int id;
    int64_t dur; /* ms of sleep; < 0: until cancelled */
    int fail;    /* the status returned after the sleep (0: success) */
    /* just before returning (after a sleep that was not cancelled): */
    cosync_event *set_at_end;    /* set it */
    cosync_task *cancel_at_end;  /* cancel the task */
    cosync_task_fn spawn_at_end; /* spawn a task (argument NULL) ... */
    const cosync_task_opts *spawn_opts;
    cosync_task *spawned; /* ... whose handle goes here */
    int cp_end;           /* pass CHECKPOINT(cp_end - 1) (0: none) */
    int *first_fail;      /* the first failure of all, if not set yet */
    /* what happened */
    bool ran;
    int sleep_rc;
    int64_t started, ended;
} kid;

static int kid_fn(void *arg, void **result)
{
    (void)result;
    kid *k = arg;
    CHECK(!k->ran);
    k->ran = true;
    k->started = cosync_now();
    if (meter.started < 64)
        meter.order[meter.started] = k->id;
    meter.started++;
    if (++meter.running > meter.peak)
        meter.peak = meter.running;
    if (meter.cap)
        CHECK_LE(meter.running, meter.cap);
    if (kid_monitor)
        kid_monitor();
    k->sleep_rc = k->dur < 0 ? cosync_sleep_until(COSYNC_FOREVER) : cosync_sleep(COSYNC_MS(k->dur));
    meter.running--;
    k->ended = cosync_now();
    if (k->sleep_rc) {
        if (kid_monitor)
            kid_monitor();
        return k->sleep_rc;
    }
    if (k->spawn_at_end)
        CHECK_OK(cosync_task_spawn(k->spawned, k->spawn_at_end, NULL, k->spawn_opts));
    if (k->set_at_end)
        CHECK_OK(cosync_event_set(k->set_at_end));
    if (k->cancel_at_end)
        CHECK_OK(cosync_task_cancel(*k->cancel_at_end));
    if (k->cp_end)
        CHECKPOINT(k->cp_end - 1);
    if (k->fail && k->first_fail && !*k->first_fail)
        *k->first_fail = k->fail;
    if (kid_monitor)
        kid_monitor();
    return k->fail;
}

/* A child that fails at once (to start eagerly). */
static int fail_at_once(void *arg, void **result)
{
    (void)arg, (void)result;
    return KID_FAILED;
}

/* ------------------------------------------------------------------------
 * Goers: tasks other than the owner that call cosync_taskgroup_go.
 * ---------------------------------------------------------------------- */

typedef struct goer {
    cosync_taskgroup *g; /* read when it goes */
    kid *k;              /* the child it asks for */
    int64_t start;       /* sleep until then first (0: no sleep) */
    int64_t deadline;    /* go's: COSYNC_FOREVER, 0, or an absolute time */
    int cp;              /* CHECKPOINT(cp - 1) on return (0: none) */
    bool then_yield;     /* yield once after the go, its result in yield_rc */
    bool null_fn;        /* ask with fn NULL (a spawn that fails: COSYNC_EINVAL) */
    /* what happened */
    bool returned;
    int rc;
    int64_t at;        /* when the go returned */
    bool suspended;    /* the go switched away */
    cosync_task child; /* the handle it filled; COSYNC_TASK_NONE if none */
    int yield_rc;
} goer;

static int goer_fn(void *arg, void **result)
{
    (void)result;
    goer *w = arg;
    if (w->start)
        CHECK_OK(cosync_sleep_until(w->start));
    w->child = COSYNC_TASK_NONE;
    uint64_t sw = switches();
    w->rc =
        cosync_taskgroup_go(w->g, &w->child, w->null_fn ? NULL : kid_fn, w->k, NULL, w->deadline);
    w->at = cosync_now();
    w->suspended = switches() != sw;
    w->returned = true;
    if (w->cp)
        CHECKPOINT(w->cp - 1);
    if (w->then_yield)
        w->yield_rc = cosync_yield();
    return 0;
}

static cosync_task spawn_goer(goer *w, const char *name)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, goer_fn, w, &(cosync_task_opts){.name = name}));
    return t;
}

/* @w's go returned @rc at AT(@at_ms), having suspended or not. */
static void check_goer(const goer *w, int rc, int64_t at_ms, bool suspended)
{
    CHECK(w->returned);
    CHECK_ERR(w->rc, rc);
    CHECK_EQ(w->at, AT(at_ms));
    CHECK_EQ(w->suspended, suspended);
    if (rc == 0) {
        CHECK_NOTNULL(w->child.rec);
    } else {
        /* nothing spawned: no handle, and its child never runs */
        CHECK_NULL(w->child.rec);
        CHECK_EQ(w->child.id, 0);
        CHECK(!w->k->ran);
    }
}

/* The line of a task waiting in cosync_taskgroup_go in a dump. */
static void slot_line(char *buf, size_t size, const char *name, uint64_t id,
                      const cosync_taskgroup *g, int running, int limit, int waiting, bool deadline)
{
    snprintf(
        buf, size,
        "  task '%s' (#%llu) waits on task group %p's slot (%d running, limit %d, %d waiting)%s\n",
        name, (unsigned long long)id, (const void *)g, running, limit, waiting,
        deadline ? " (with a deadline)" : "");
}

/* ------------------------------------------------------------------------
 * No limit: go is spawn
 * ---------------------------------------------------------------------- */

static int no_limit_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid k[8] = {{0}};
    cosync_task h[8];
    for (int i = 0; i < 8; i++)
        k[i] = (kid){.id = i, .dur = 10 * (i + 1)};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    uint64_t sw = switches();
    /* every form spawns at once, whatever its deadline */
    CHECK_OK(cosync_taskgroup_go(&g, &h[0], kid_fn, &k[0], NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_go(&g, &h[1], kid_fn, &k[1], NULL, 0));
    CHECK_OK(cosync_taskgroup_go(&g, &h[2], kid_fn, &k[2], NULL, cosync_now() - 1));
    CHECK_OK(cosync_taskgroup_spawn(&g, &h[3], kid_fn, &k[3], NULL));
    /* 0 is "no limit", as a new group has */
    CHECK_OK(cosync_taskgroup_set_limit(&g, 0));
    CHECK_OK(cosync_taskgroup_go(&g, &h[4], kid_fn, &k[4], NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_spawn(&g, &h[5], kid_fn, &k[5], NULL));
    /* a cancellation pending: not a suspension point, it stays pending */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_OK(cosync_taskgroup_go(&g, &h[6], kid_fn, &k[6], NULL, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw);
    CHECK_EQ(cosync_now(), AT(0));
    CHECK_EQ(ready_tasks(), 7); /* spawned, none started yet */
    CHECK_ERR(cosync_yield(), COSYNC_ECANCELED);
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    CHECK_EQ(meter.started, 7); /* all ran in that yield, in spawn order */
    sw = switches();
    CHECK_OK(cosync_taskgroup_go(&g, &h[7], kid_fn, &k[7], NULL, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(80));
    CHECK_EQ(meter.peak, 8);
    for (int i = 0; i < 8; i++) {
        CHECK_EQ(meter.order[i], i);
        CHECK_EQ(k[i].started, AT(0));
        CHECK_EQ(k[i].ended, AT(10 * (i + 1)));
        join_ok(h[i]);
    }
    return 0;
}

TEST(without_a_limit_go_is_spawn_and_never_waits)
{
    run_main_ok(no_limit_main, NULL);
}

/* ------------------------------------------------------------------------
 * Limit 3, ten children of known durations spawned by the owner
 * ---------------------------------------------------------------------- */

static const int64_t ten_durs[10] = {50, 30, 70, 20, 40, 10, 60, 30, 20, 50};
/* when each go returns: the slot a finishing child frees, at once */
static const int64_t ten_go_at[10] = {0, 0, 0, 30, 50, 50, 60, 70, 90, 100};
static const bool ten_waits[10] = {false, false, false, true, true, false, true, true, true, true};

static int ten_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(3);
    kid k[10] = {{0}};
    cosync_task h[10];
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 3));
    for (int i = 0; i < 10; i++) {
        k[i] = (kid){.id = i, .dur = ten_durs[i]};
        uint64_t sw = switches();
        CHECK_OK(cosync_taskgroup_go(&g, &h[i], kid_fn, &k[i], NULL, COSYNC_FOREVER));
        CHECK_EQ(cosync_now(), AT(ten_go_at[i]));
        CHECK_EQ(switches() != sw, ten_waits[i]);
        CHECK_LE(meter.running, 3);
    }
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    /* c6 ends at 120, c8 at 110, c9 at 150 */
    CHECK_EQ(cosync_now(), AT(150));
    CHECK_EQ(meter.peak, 3);
    CHECK_EQ(meter.running, 0);
    CHECK_EQ(meter.started, 10);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(meter.order[i], i); /* in go order */
        CHECK_EQ(k[i].started, AT(ten_go_at[i]));
        CHECK_EQ(k[i].ended, AT(ten_go_at[i] + ten_durs[i]));
        join_ok(h[i]);
    }
    return 0;
}

TEST(limit_3_ten_children_never_more_than_3_each_go_when_a_slot_frees)
{
    run_main_ok(ten_main, NULL);
}

/* ------------------------------------------------------------------------
 * FIFO among the owner and two other tasks, and no barging
 * ---------------------------------------------------------------------- */

static struct {
    cosync_taskgroup *g;
    goer a, b;
    cosync_task ta, tb;
    bool observed;
} fifo;

/* At 50 the three wait: the dump says so, each with the queue's state. */
static int fifo_observer(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(50)));
    int n;
    char *text = dump_text(&n);
    CHECK_EQ(n, 5); /* main, c0, a, b, the observer */
    char line[256];
    slot_line(line, sizeof line, "main", 1, fifo.g, 1, 1, 3, false);
    CHECK_NOTNULL(strstr(text, line));
    slot_line(line, sizeof line, "a", cosync_task_id(fifo.ta), fifo.g, 1, 1, 3, false);
    CHECK_NOTNULL(strstr(text, line));
    slot_line(line, sizeof line, "b", cosync_task_id(fifo.tb), fifo.g, 1, 1, 3, true);
    CHECK_NOTNULL(strstr(text, line));
    free(text);
    fifo.observed = true;
    return 0;
}

static int fifo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(1);
    kid k0 = {.id = 0, .dur = 100}, ka = {.id = 1, .dur = 100}, ko = {.id = 2, .dur = 100},
        kb = {.id = 3, .dur = 100};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    fifo.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0, ho;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    /* a arrives at 10, the owner at 20, b at 30 (with a deadline it meets) */
    fifo.a = (goer){.g = &g, .k = &ka, .start = AT(10), .deadline = COSYNC_FOREVER, .cp = 1};
    fifo.b = (goer){.g = &g, .k = &kb, .start = AT(30), .deadline = AT(1000), .cp = 3};
    fifo.ta = spawn_goer(&fifo.a, "a");
    fifo.tb = spawn_goer(&fifo.b, "b");
    cosync_task obs;
    CHECK_OK(cosync_task_spawn(&obs, fifo_observer, NULL, NULL));
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK_OK(cosync_taskgroup_go(&g, &ho, kid_fn, &ko, NULL, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(200));
    CHECKPOINT(1);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(400));
    CHECKPOINTS_DONE(3);
    join_ok(obs);
    CHECK(fifo.observed);
    join_ok(fifo.ta);
    join_ok(fifo.tb);
    check_goer(&fifo.a, 0, 100, true);
    check_goer(&fifo.b, 0, 300, true);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(meter.order[i], i); /* c0, a's, the owner's, b's */
    CHECK_EQ(ka.started, AT(100));
    CHECK_EQ(ko.started, AT(200));
    CHECK_EQ(kb.started, AT(300));
    CHECK_EQ(meter.peak, 1);
    join_ok(h0);
    join_ok(ho);
    join_ok(fifo.a.child);
    join_ok(fifo.b.child);
    return 0;
}

TEST(waiting_tasks_are_served_in_arrival_order_owner_or_not)
{
    run_main_ok(fifo_main, NULL);
}

/*
 * No barging: c0 finishes at 100 and its slot goes to w, waiting since 10.
 * In the same step, before w has run, a newcomer calls go: it must not
 * take that slot (spawn and go with deadline 0 say EAGAIN; go waits).
 * Variant 0: c0 wakes the newcomer (an event) just before it returns;
 * variant 1: the newcomer's timer fires at 100 too, armed after c0's.
 */
static struct {
    int variant;
    cosync_taskgroup *g;
    cosync_event ev;
    goer w;
    kid kn;
    cosync_task hn;
} nb;

static int nb_newcomer(void *arg, void **result)
{
    (void)arg, (void)result;
    if (nb.variant == 0) {
        CHECK_OK(cosync_event_wait(&nb.ev, COSYNC_FOREVER));
    } else {
        CHECK_OK(cosync_sleep_until(AT(20)));
        CHECK_OK(cosync_sleep_until(AT(100)));
    }
    CHECK_EQ(cosync_now(), AT(100));
    CHECKPOINT(1); /* after c0's end, before w has run */
    CHECK(!nb.w.returned);
    cosync_task none = COSYNC_TASK_NONE;
    kid kx = {.id = 99};
    uint64_t sw = switches();
    CHECK_ERR(cosync_taskgroup_spawn(nb.g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_ERR(cosync_taskgroup_go(nb.g, &none, kid_fn, &kx, NULL, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_taskgroup_go(nb.g, &none, kid_fn, &kx, NULL, AT(100)), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw);
    CHECK_NULL(none.rec);
    CHECK_OK(cosync_taskgroup_go(nb.g, &nb.hn, kid_fn, &nb.kn, NULL, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(150));
    CHECKPOINT(3);
    CHECK(!kx.ran);
    return 0;
}

static int nb_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(1);
    cosync_event_init(&nb.ev);
    kid k0 = {.id = 0, .dur = 100, .set_at_end = nb.variant == 0 ? &nb.ev : NULL, .cp_end = 1};
    kid kw = {.id = 1, .dur = 50};
    nb.kn = (kid){.id = 2, .dur = 50};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    nb.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    nb.w = (goer){.g = &g, .k = &kw, .start = AT(10), .deadline = COSYNC_FOREVER, .cp = 3};
    cosync_task tw = spawn_goer(&nb.w, "w");
    cosync_task tn;
    CHECK_OK(cosync_task_spawn(&tn, nb_newcomer, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(200));
    CHECKPOINTS_DONE(4);
    join_ok(tw);
    join_ok(tn);
    check_goer(&nb.w, 0, 100, true);
    CHECK_EQ(kw.started, AT(100));
    CHECK_EQ(nb.kn.started, AT(150));
    CHECK_EQ(meter.order[1], 1);
    CHECK_EQ(meter.order[2], 2);
    join_ok(h0);
    join_ok(nb.w.child);
    join_ok(nb.hn);
    return 0;
}

TEST(a_newcomer_does_not_take_a_slot_handed_to_a_waiter)
{
    for (nb.variant = 0; nb.variant < 2; nb.variant++) {
        CHECKPOINT_RESET();
        run_main_ok(nb_main, NULL);
    }
}

/* ------------------------------------------------------------------------
 * The try forms and deadlines
 * ---------------------------------------------------------------------- */

static int try_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(2);
    kid k0 = {.id = 0, .dur = 100}, k1 = {.id = 1, .dur = 200};
    kid kt[5] = {{0}};
    for (int i = 0; i < 5; i++)
        kt[i] = (kid){.id = 10 + i, .dur = i == 1 ? 300 : 10};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    cosync_task h0, h1;
    uint64_t sw = switches();
    CHECK_OK(cosync_taskgroup_spawn(&g, &h0, kid_fn, &k0, NULL)); /* a slot free */
    /* with a cancellation pending: a free slot and nobody waiting, no
     * suspension point (the cancellation stays pending) */
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    CHECK_OK(cosync_taskgroup_go(&g, &h1, kid_fn, &k1, NULL, COSYNC_FOREVER)); /* the last */
    cosync_task none = COSYNC_TASK_NONE;
    kid kx = {.id = 99};
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, 0), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw);
    /* a wait delivers it */
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, COSYNC_FOREVER), COSYNC_ECANCELED);
    CHECK_EQ(cosync_now(), AT(0));
    CHECK_EQ(cosync_task_uncancel(cosync_task_current()), 0);
    /* a deadline passed already: no wait either */
    sw = switches();
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, cosync_now() - 1),
              COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, cosync_now()), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw);
    CHECK_NULL(none.rec);

    /* t1 gives up at 50, so t2 gets c0's slot at 100; t3 gives up at 150;
     * t4's deadline is the instant c1 ends, 200: the deadline comes first
     * (the slot frees when c1 runs, after the timers), so t5 has it */
    goer t[5];
    static const int64_t deadline_ms[5] = {50, -1, 150, 200, -1};
    cosync_task tt[5];
    static const char *const names[5] = {"t1", "t2", "t3", "t4", "t5"};
    for (int i = 0; i < 5; i++) {
        t[i] = (goer){.g = &g,
                      .k = &kt[i],
                      .deadline = deadline_ms[i] < 0 ? COSYNC_FOREVER : AT(deadline_ms[i])};
        tt[i] = spawn_goer(&t[i], names[i]);
    }
    CHECK_OK(cosync_sleep_until(AT(250)));
    check_goer(&t[0], COSYNC_ETIMEDOUT, 50, true);
    check_goer(&t[1], 0, 100, true);
    check_goer(&t[2], COSYNC_ETIMEDOUT, 150, true);
    check_goer(&t[3], COSYNC_ETIMEDOUT, 200, true);
    check_goer(&t[4], 0, 200, true);
    CHECK_EQ(kt[1].started, AT(100));
    CHECK_EQ(kt[4].started, AT(200));
    CHECK_EQ(kt[4].ended, AT(210));

    /* at 250 only t2's child runs (until 400): a slot is free */
    kid k6 = {.id = 6, .dur = 10}, k7 = {.id = 7, .dur = 10};
    cosync_task h6, h7;
    sw = switches();
    CHECK_OK(cosync_taskgroup_spawn(&g, &h6, kid_fn, &k6, NULL));
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw);
    /* a finite deadline met: the slot c6 frees at 260 */
    CHECK_OK(cosync_taskgroup_go(&g, &h7, kid_fn, &k7, NULL, AT(300)));
    CHECK_EQ(cosync_now(), AT(260));
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(400));
    CHECK(!kx.ran);
    CHECK_NULL(none.rec);
    CHECK_EQ(meter.peak, 2);
    for (int i = 0; i < 5; i++) {
        join_ok(tt[i]);
        if (t[i].rc == 0)
            join_ok(t[i].child);
    }
    join_ok(h0);
    join_ok(h1);
    join_ok(h6);
    join_ok(h7);
    return 0;
}

TEST(try_forms_say_eagain_and_a_deadline_gives_up_having_spawned_nothing)
{
    run_main_ok(try_main, NULL);
}

/* ------------------------------------------------------------------------
 * Cancellation of a task waiting in go
 * ---------------------------------------------------------------------- */

static struct {
    cosync_taskgroup *g;
    goer w[5];
    cosync_task tw[5];
    bool dumped;
} cw;

static int cw_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(10)));
    CHECK_OK(cosync_task_cancel(cw.tw[0])); /* the head */
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK_OK(cosync_task_cancel(cw.tw[2])); /* one in the middle */
    CHECK_OK(cosync_sleep_until(AT(25)));
    int n;
    char *text = dump_text(&n);
    char line[256];
    for (int i = 1; i < 5; i += 2) {
        slot_line(line, sizeof line, i == 1 ? "w2" : "w4", cosync_task_id(cw.tw[i]), cw.g, 1, 1, 3,
                  false);
        CHECK_NOTNULL(strstr(text, line));
    }
    free(text);
    cw.dumped = true;
    CHECK_OK(cosync_sleep_until(AT(30)));
    CHECK_OK(cosync_task_cancel(cw.tw[4])); /* the tail */
    return 0;
}

static int cw_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(1);
    kid k0 = {.id = 0, .dur = 100};
    kid kw[5] = {{0}};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cw.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    static const char *const names[5] = {"w1", "w2", "w3", "w4", "w5"};
    for (int i = 0; i < 5; i++) {
        kw[i] = (kid){.id = 1 + i, .dur = 50};
        cw.w[i] = (goer){.g = &g, .k = &kw[i], .deadline = COSYNC_FOREVER};
        cw.tw[i] = spawn_goer(&cw.w[i], names[i]);
    }
    cosync_task c;
    CHECK_OK(cosync_task_spawn(&c, cw_canceller, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(200));
    join_ok(c);
    CHECK(cw.dumped);
    check_goer(&cw.w[0], COSYNC_ECANCELED, 10, true);
    check_goer(&cw.w[1], 0, 100, true);
    check_goer(&cw.w[2], COSYNC_ECANCELED, 20, true);
    check_goer(&cw.w[3], 0, 150, true);
    check_goer(&cw.w[4], COSYNC_ECANCELED, 30, true);
    CHECK_EQ(kw[1].started, AT(100));
    CHECK_EQ(kw[3].started, AT(150));
    CHECK_EQ(meter.started, 3);
    for (int i = 0; i < 5; i++) {
        /* a cancelled goer returned 0 having handled it: it ends cancelled */
        join_expect(cw.tw[i], cw.w[i].rc == 0 ? 0 : COSYNC_ECANCELED);
        if (cw.w[i].rc == 0)
            join_ok(cw.w[i].child);
    }
    join_ok(h0);
    return 0;
}

TEST(a_cancelled_wait_in_go_at_the_head_middle_or_tail_spawns_nothing)
{
    run_main_ok(cw_main, NULL);
}

/*
 * w is handed c0's slot at 100; in the same step, before w runs, x cancels
 * it: the grant stands (go returns 0, the child is spawned) and the
 * cancellation comes at w's next suspension.
 */
static struct {
    cosync_event ev;
    goer w;
    cosync_task tw;
} gc;

static int gc_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&gc.ev, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    CHECKPOINT(1);
    CHECK(!gc.w.returned); /* granted, not run */
    CHECK_OK(cosync_task_cancel(gc.tw));
    return 0;
}

static int gc_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(1);
    cosync_event_init(&gc.ev);
    kid k0 = {.id = 0, .dur = 100, .set_at_end = &gc.ev, .cp_end = 1};
    kid kw = {.id = 1, .dur = 50};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0, x;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    gc.w = (goer){.g = &g, .k = &kw, .deadline = COSYNC_FOREVER, .cp = 3, .then_yield = true};
    gc.tw = spawn_goer(&gc.w, "w");
    CHECK_OK(cosync_task_spawn(&x, gc_canceller, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(150));
    CHECKPOINTS_DONE(3);
    check_goer(&gc.w, 0, 100, true);
    CHECK_ERR(gc.w.yield_rc, COSYNC_ECANCELED);
    CHECK(kw.ran);
    CHECK_EQ(kw.started, AT(100));
    CHECK_OK(kw.sleep_rc);
    join_ok(x);
    join_expect(gc.tw, COSYNC_ECANCELED);
    join_ok(gc.w.child);
    join_ok(h0);
    return 0;
}

TEST(a_task_handed_its_slot_then_cancelled_spawns_and_gets_the_cancel_next)
{
    run_main_ok(gc_main, NULL);
}

/* ------------------------------------------------------------------------
 * A child fails while tasks wait in go
 * ---------------------------------------------------------------------- */

/*
 * The owner is in its body, itself waiting in go behind w1 and w2, when
 * c0 fails at 100: all three get COSYNC_EPERM at once, in order, c1 is
 * cancelled, and the group's wait returns the failure; the group's cancel
 * of its owner is taken back.
 */
static int fail_body_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(2);
    kid k0 = {.id = 0, .dur = 100, .fail = KID_FAILED}, k1 = {.id = 1, .dur = 1000};
    kid k2 = {.id = 2, .dur = 10}, k3 = {.id = 3, .dur = 10}, ko = {.id = 4, .dur = 10};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    cosync_task h0, h1;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_go(&g, &h1, kid_fn, &k1, NULL, COSYNC_FOREVER));
    goer w1 = {.g = &g, .k = &k2, .deadline = COSYNC_FOREVER, .cp = 1};
    goer w2 = {.g = &g, .k = &k3, .deadline = AT(500), .cp = 2};
    cosync_task t1 = spawn_goer(&w1, "w1"), t2 = spawn_goer(&w2, "w2");
    CHECK_OK(cosync_yield()); /* w1 and w2 wait first */
    cosync_task none = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &ko, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_EQ(cosync_now(), AT(100));
    CHECKPOINT(2);
    CHECK(w1.returned && w2.returned);
    CHECK(!k1.ended); /* cancelled, not run since */
    /* the group aborts: nothing more is spawned, and nothing waits */
    uint64_t sw = switches();
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &ko, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &ko, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_EQ(switches(), sw);
    CHECK_NULL(none.rec);
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 1); /* the group's */
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), KID_FAILED);
    CHECK_EQ(cosync_now(), AT(100));
    CHECK_EQ(cosync_task_cancelling(cosync_task_current()), 0); /* taken back */
    CHECK_OK(cosync_yield());
    check_goer(&w1, COSYNC_EPERM, 100, true);
    check_goer(&w2, COSYNC_EPERM, 100, true);
    CHECK(!ko.ran);
    CHECK_ERR(k1.sleep_rc, COSYNC_ECANCELED);
    CHECK_EQ(k1.ended, AT(100));
    join_expect(h0, KID_FAILED);
    join_expect(h1, COSYNC_ECANCELED);
    join_ok(t1);
    join_ok(t2);
    return 0;
}

/*
 * The owner is in cosync_taskgroup_wait. At 100, c0 ends (its slot is
 * handed to w1, which has not run yet) and, in the same step, c1 fails:
 * w2, still waiting, gets COSYNC_EPERM at once; w1 gets it when it runs
 * (its grant no longer spawns); the owner's wait, held by w1's slot,
 * returns once w1 has given it back. A go after that, on the group left,
 * is refused at once.
 */
static int fail_wait_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(2);
    kid k0 = {.id = 0, .dur = 100}, k1 = {.id = 1, .dur = 100, .fail = KID_FAILED};
    kid k2 = {.id = 2, .dur = 10}, k3 = {.id = 3, .dur = 10}, k4 = {.id = 4, .dur = 10};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    cosync_task h0, h1;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_go(&g, &h1, kid_fn, &k1, NULL, COSYNC_FOREVER));
    goer w1 = {.g = &g, .k = &k2, .deadline = COSYNC_FOREVER, .cp = 1};
    goer w2 = {.g = &g, .k = &k3, .deadline = COSYNC_FOREVER, .cp = 2};
    goer w3 = {.g = &g, .k = &k4, .start = AT(150), .deadline = COSYNC_FOREVER};
    cosync_task t1 = spawn_goer(&w1, "w1"), t2 = spawn_goer(&w2, "w2"), t3 = spawn_goer(&w3, "w3");
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), KID_FAILED);
    CHECK_EQ(cosync_now(), AT(100));
    CHECKPOINT(2);
    check_goer(&w1, COSYNC_EPERM, 100, true);
    check_goer(&w2, COSYNC_EPERM, 100, true);
    join_ok(t3);
    check_goer(&w3, COSYNC_EPERM, 150, false);
    join_ok(t1);
    join_ok(t2);
    join_ok(h0);
    join_expect(h1, KID_FAILED);
    CHECK_EQ(meter.started, 2);
    return 0;
}

TEST(a_child_failing_refuses_every_task_waiting_in_go_and_aborts_the_group)
{
    run_main_ok(fail_body_main, NULL);
    CHECKPOINTS_DONE(3);
    CHECKPOINT_RESET();
    run_main_ok(fail_wait_main, NULL);
    CHECKPOINTS_DONE(3);
}

/* ------------------------------------------------------------------------
 * The owner in cosync_taskgroup_wait while another task waits in go
 * ---------------------------------------------------------------------- */

/*
 * c0 ends at 100 and hands its slot to w: with c1 still running
 * (remain), or none (the group has only w's slot then, and the owner must
 * not go on). w spawns its child, which runs until 150; the owner's wait
 * returns only after it. Once no child is left and no slot is handed
 * out, a go is refused ("TaskGroup is finished"), even before the owner
 * has run again.
 */
static struct {
    cosync_taskgroup *g;
    cosync_event last;
    int late_rc;
    bool late_suspended;
} ow;

static int ow_late(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&ow.last, COSYNC_FOREVER));
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    uint64_t sw = switches();
    ow.late_rc = cosync_taskgroup_go(ow.g, &none, kid_fn, &kx, NULL, COSYNC_FOREVER);
    ow.late_suspended = switches() != sw;
    CHECK_NULL(none.rec);
    CHECK(!kx.ran);
    return 0;
}

static int ow_main(void *arg, void **result)
{
    /* 0: c0 the only child; 1: c1 remains; 2: as 0, but the owner enters
     * its wait at 100, after c0's end has handed its slot to w, before w
     * has run: no child left, one slot handed out */
    int variant = (int)(intptr_t)arg;
    bool remain = variant == 1;
    (void)result;
    t0 = cosync_now();
    meter_reset(remain ? 2 : 1);
    cosync_event_init(&ow.last);
    ow.late_rc = 1;
    kid k0 = {.id = 0, .dur = 100}, k1 = {.id = 1, .dur = 300};
    kid kw = {.id = 2, .dur = 50, .cp_end = 3, .set_at_end = remain ? NULL : &ow.last};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    ow.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, remain ? 2 : 1));
    cosync_task h0, h1 = COSYNC_TASK_NONE;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    if (remain)
        CHECK_OK(cosync_taskgroup_go(&g, &h1, kid_fn, &k1, NULL, COSYNC_FOREVER));
    goer w = {.g = &g, .k = &kw, .deadline = COSYNC_FOREVER, .cp = 2};
    cosync_task tw = spawn_goer(&w, "w");
    cosync_task tl;
    CHECK_OK(cosync_task_spawn(&tl, ow_late, NULL, NULL));
    CHECK_OK(cosync_yield()); /* w waits in go */
    if (variant == 2) {
        CHECK_OK(cosync_sleep_until(AT(100))); /* armed after c0's */
        CHECK(k0.ended && !w.returned);
    }
    CHECKPOINT(0);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(remain ? 300 : 150));
    CHECKPOINT(3); /* after w's return (1) and its child's end (2) */
    check_goer(&w, 0, 100, true);
    CHECK_EQ(kw.started, AT(100));
    CHECK_EQ(kw.ended, AT(150));
    if (remain) {
        CHECK_OK(cosync_event_set(&ow.last)); /* the group is left: refused too */
        join_ok(tl);
        join_ok(h1);
    } else {
        join_ok(tl);
    }
    CHECK_ERR(ow.late_rc, COSYNC_EPERM);
    CHECK(!ow.late_suspended);
    join_ok(tw);
    join_ok(w.child);
    join_ok(h0);
    return 0;
}

TEST(the_owners_wait_covers_a_slot_handed_to_a_task_in_go_and_its_child)
{
    for (intptr_t variant = 0; variant < 3; variant++) {
        CHECKPOINT_RESET();
        run_main_ok(ow_main, (void *)variant);
    }
}

/*
 * A go whose spawn fails once it has its slot (here fn is NULL: EINVAL,
 * found only when it spawns) passes the slot on: to w2 (variant 0), or,
 * with nobody else waiting, it lets the owner's wait end (variant 1).
 */
static int sf_main(void *arg, void **result)
{
    bool second = arg == NULL;
    (void)result;
    t0 = cosync_now();
    meter_reset(1);
    kid k0 = {.id = 0, .dur = 100}, k1 = {.id = 1, .dur = 50}, k2 = {.id = 2, .dur = 50};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    goer w1 = {.g = &g, .k = &k1, .deadline = COSYNC_FOREVER, .null_fn = true};
    goer w2 = {.g = &g, .k = &k2, .deadline = COSYNC_FOREVER};
    cosync_task t1 = spawn_goer(&w1, "w1"), t2 = COSYNC_TASK_NONE;
    if (second)
        t2 = spawn_goer(&w2, "w2");
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(second ? 150 : 100));
    check_goer(&w1, COSYNC_EINVAL, 100, true);
    join_ok(t1);
    if (second) {
        check_goer(&w2, 0, 100, true);
        CHECK_EQ(k2.started, AT(100));
        join_ok(t2);
        join_ok(w2.child);
    }
    join_ok(h0);
    /* with a slot free, the same spawn fails at once */
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task none = COSYNC_TASK_NONE;
    uint64_t sw = switches();
    CHECK_ERR(cosync_taskgroup_go(&g, &none, NULL, NULL, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_EQ(switches(), sw);
    CHECK_NULL(none.rec);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    return 0;
}

TEST(a_go_whose_spawn_fails_once_it_has_its_slot_passes_the_slot_on)
{
    run_main_ok(sf_main, NULL);
    run_main_ok(sf_main, (void *)1);
}

/* ------------------------------------------------------------------------
 * set_limit
 * ---------------------------------------------------------------------- */

/* A limit lowered below the children running holds back new ones until
 * enough of them have finished. */
static struct {
    cosync_taskgroup *g;
    int tries;
} lower;

static int lower_observer(void *arg, void **result)
{
    (void)arg, (void)result;
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    for (int at = 150; at <= 250; at += 100) {
        CHECK_OK(cosync_sleep_until(AT(at)));
        CHECK_ERR(cosync_taskgroup_spawn(lower.g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
        lower.tries++;
    }
    CHECK(!kx.ran);
    return 0;
}

static int lower_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid k[5] = {{0}};
    cosync_task h[5];
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    lower.g = &g;
    lower.tries = 0;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 4));
    for (int i = 0; i < 4; i++) {
        k[i] = (kid){.id = i, .dur = 100 * (i + 1)};
        CHECK_OK(cosync_taskgroup_spawn(&g, &h[i], kid_fn, &k[i], NULL));
    }
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    cosync_task none = COSYNC_TASK_NONE;
    kid kx = {.id = 99};
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    cosync_task obs;
    CHECK_OK(cosync_task_spawn(&obs, lower_observer, NULL, NULL));
    /* 3 left at 100, 2 at 200, 1 at 300: a slot */
    k[4] = (kid){.id = 4, .dur = 10};
    CHECK_OK(cosync_taskgroup_go(&g, &h[4], kid_fn, &k[4], NULL, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(300));
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(400));
    join_ok(obs);
    CHECK_EQ(lower.tries, 2);
    CHECK_EQ(meter.peak, 4);
    CHECK_EQ(k[4].started, AT(300));
    CHECK(!kx.ran);
    for (int i = 0; i < 5; i++)
        join_ok(h[i]);
    return 0;
}

TEST(a_lower_limit_holds_new_children_back_until_enough_finish)
{
    run_main_ok(lower_main, NULL);
}

/* A higher limit hands out the slots it frees at once, in order. */
static struct {
    cosync_taskgroup *g;
    goer w[3];
} raise_;

static int raise_raiser(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(10)));
    uint64_t sw = switches();
    CHECK_OK(cosync_taskgroup_set_limit(raise_.g, 3)); /* two slots more */
    CHECK_EQ(switches(), sw);
    CHECKPOINT(0);
    CHECK(!raise_.w[0].returned && !raise_.w[1].returned);
    /* w1 and w2 hold slots they have not used yet: c0 alone runs */
    int n;
    char *text = dump_text(&n);
    char line[256];
    /* main #1, c0 #2, w1..w3 #3..#5 */
    slot_line(line, sizeof line, "w3", 5, raise_.g, 1, 3, 1, false);
    CHECK_NOTNULL(strstr(text, line));
    CHECK_NOTNULL(strstr(text, "  task 'w1' (#3) is ready\n"));
    CHECK_NOTNULL(strstr(text, "  task 'w2' (#4) is ready\n"));
    free(text);
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK(raise_.w[0].returned && raise_.w[1].returned && !raise_.w[2].returned);
    CHECK_OK(cosync_taskgroup_set_limit(raise_.g, 10));
    CHECKPOINT(3);
    return 0;
}

static int raise_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid k0 = {.id = 0, .dur = 1000};
    kid kw[3] = {{0}};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    raise_.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0, tw[3], r;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    static const char *const names[3] = {"w1", "w2", "w3"};
    for (int i = 0; i < 3; i++) {
        kw[i] = (kid){.id = 1 + i, .dur = 100}; /* the three slots are full until 110 */
        raise_.w[i] =
            (goer){.g = &g, .k = &kw[i], .deadline = COSYNC_FOREVER, .cp = i < 2 ? 2 + i : 5};
        tw[i] = spawn_goer(&raise_.w[i], names[i]);
    }
    CHECK_OK(cosync_task_spawn(&r, raise_raiser, NULL, NULL));
    /* in its body meanwhile: set_limit is refused once it leaves the group */
    CHECK_OK(cosync_sleep_until(AT(30)));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(1000));
    CHECKPOINTS_DONE(5);
    check_goer(&raise_.w[0], 0, 10, true);
    check_goer(&raise_.w[1], 0, 10, true);
    check_goer(&raise_.w[2], 0, 20, true);
    CHECK_EQ(meter.order[1], 1);
    CHECK_EQ(meter.order[2], 2);
    CHECK_EQ(meter.order[3], 3);
    CHECK_EQ(meter.peak, 4); /* 3 from 10, 4 from 20 */
    join_ok(r);
    for (int i = 0; i < 3; i++) {
        join_ok(tw[i]);
        join_ok(raise_.w[i].child);
    }
    join_ok(h0);
    return 0;
}

TEST(a_higher_limit_hands_out_slots_to_the_waiters_at_once_in_order)
{
    /* the raiser passes 0 at 10, w1 and w2 1 and 2 at once, the raiser 3 at
     * 20, w3 4 */
    run_main_ok(raise_main, NULL);
}

/* set_limit on a group being left, or left: COSYNC_EPERM. */
static struct {
    cosync_taskgroup *g;
    int rc;
} sl_left;

static int sl_left_other(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(50)));
    sl_left.rc = cosync_taskgroup_set_limit(sl_left.g, 5);
    return 0;
}

static int sl_left_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid k0 = {.id = 0, .dur = 100};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    sl_left.g = &g;
    sl_left.rc = 1;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2)); /* the same again */
    cosync_task h0, x;
    CHECK_OK(cosync_taskgroup_spawn(&g, &h0, kid_fn, &k0, NULL));
    CHECK_OK(cosync_task_spawn(&x, sl_left_other, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    join_ok(x);
    CHECK_ERR(sl_left.rc, COSYNC_EPERM); /* being left */
    CHECK_ERR(cosync_taskgroup_set_limit(&g, 5), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_set_limit(&g, 0), COSYNC_EPERM);
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &kx, NULL, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, kid_fn, &kx, NULL), COSYNC_EPERM);
    CHECK_NULL(none.rec);
    CHECK(!kx.ran);
    join_ok(h0);
    return 0;
}

TEST(set_limit_on_a_group_being_left_or_left_is_eperm)
{
    run_main_ok(sl_left_main, NULL);
}

/* set_limit(0) releases every waiter, in order; then go never waits, and a
 * limit set again below the children running holds back new ones. */
static struct {
    cosync_taskgroup *g;
    goer w[3];
    kid kr, kr2;
    cosync_task hr, hr2;
} zero;

static int zero_releaser(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(10)));
    CHECK_OK(cosync_taskgroup_set_limit(zero.g, 0));
    CHECKPOINT(0);
    uint64_t sw = switches();
    CHECK_OK(cosync_taskgroup_go(zero.g, &zero.hr, kid_fn, &zero.kr, NULL, COSYNC_FOREVER));
    CHECK_EQ(switches(), sw);
    /* 5 alive: c0 (until 100), the releaser's and w1..w3's (until 60) */
    CHECK_OK(cosync_taskgroup_set_limit(zero.g, 2));
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_spawn(zero.g, &none, kid_fn, &kx, NULL), COSYNC_EAGAIN);
    CHECK_OK(cosync_taskgroup_go(zero.g, &zero.hr2, kid_fn, &zero.kr2, NULL, AT(70)));
    CHECK_EQ(cosync_now(), AT(60)); /* 1 left then */
    CHECKPOINT(4);
    CHECK(!kx.ran);
    return 0;
}

static int zero_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid k0 = {.id = 0, .dur = 100};
    kid kw[3] = {{0}};
    zero.kr = (kid){.id = 4, .dur = 50};
    zero.kr2 = (kid){.id = 5, .dur = 10};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    zero.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    cosync_task h0, tw[3], r;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    static const char *const names[3] = {"w1", "w2", "w3"};
    for (int i = 0; i < 3; i++) {
        kw[i] = (kid){.id = 1 + i, .dur = 50};
        zero.w[i] = (goer){.g = &g, .k = &kw[i], .deadline = COSYNC_FOREVER, .cp = 2 + i};
        tw[i] = spawn_goer(&zero.w[i], names[i]);
    }
    CHECK_OK(cosync_task_spawn(&r, zero_releaser, NULL, NULL));
    CHECK_OK(cosync_sleep_until(AT(70))); /* in its body while the limit changes */
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    CHECKPOINTS_DONE(5);
    for (int i = 0; i < 3; i++) {
        check_goer(&zero.w[i], 0, 10, true);
        CHECK_EQ(kw[i].started, AT(10));
        join_ok(tw[i]);
        join_ok(zero.w[i].child);
    }
    CHECK_EQ(meter.peak, 5);
    CHECK_EQ(zero.kr2.started, AT(60));
    join_ok(r);
    join_ok(h0);
    join_ok(zero.hr);
    join_ok(zero.hr2);
    return 0;
}

TEST(set_limit_0_releases_every_waiter)
{
    /* the releaser passes 0, w1..w3 1..3, the releaser 4 at 60 */
    run_main_ok(zero_main, NULL);
}

/* ------------------------------------------------------------------------
 * The owner cancelled from outside while tasks wait in go
 * ---------------------------------------------------------------------- */

/*
 * Variant 0: the owner waits in cosync_taskgroup_wait; x cancels it at 50.
 * Variant 1: the owner waits in go itself, behind w1 and w2; x cancels it
 * at 50: its go says COSYNC_ECANCELED, and its wait then aborts the group.
 * Variant 2: the owner waits in cosync_taskgroup_wait; c0, ending at 100,
 * cancels it in its last step, and then hands its slot to w1, which has
 * not run when the owner aborts the group.
 * Every task waiting gets COSYNC_EPERM, the children are cancelled, and
 * the group's wait returns COSYNC_ECANCELED.
 */
static struct {
    int variant;
    cosync_task owner;
} oc;

static int oc_canceller(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_sleep_until(AT(50)));
    CHECK_OK(cosync_task_cancel(oc.owner));
    CHECKPOINT(0);
    return 0;
}

static int oc_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int v = oc.variant;
    t0 = cosync_now();
    meter_reset(2);
    oc.owner = cosync_task_current();
    kid k0 = {.id = 0, .dur = v == 2 ? 100 : 1000, .cancel_at_end = v == 2 ? &oc.owner : NULL};
    kid k1 = {.id = 1, .dur = 1000};
    kid k2 = {.id = 2, .dur = 10}, k3 = {.id = 3, .dur = 10}, ko = {.id = 4, .dur = 10};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, v == 2 ? 2 : 1));
    cosync_task h0, h1 = COSYNC_TASK_NONE;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, NULL, COSYNC_FOREVER));
    if (v == 2)
        CHECK_OK(cosync_taskgroup_go(&g, &h1, kid_fn, &k1, NULL, COSYNC_FOREVER));
    /* checkpoints: x (0, variants 0 and 1), the owner's go (1, variant
     * 1), w1, w2, the owner's wait */
    int base = v == 0 ? 1 : v == 1 ? 2 : 0;
    goer w1 = {.g = &g, .k = &k2, .deadline = COSYNC_FOREVER, .cp = base + 1};
    goer w2 = {.g = &g, .k = &k3, .deadline = COSYNC_FOREVER, .cp = base + 2};
    cosync_task t1 = spawn_goer(&w1, "w1"), t2 = spawn_goer(&w2, "w2");
    cosync_task x = COSYNC_TASK_NONE;
    if (v != 2)
        CHECK_OK(cosync_task_spawn(&x, oc_canceller, NULL, NULL));
    CHECK_OK(cosync_yield()); /* w1 and w2 wait */
    if (v == 1) {
        cosync_task none = COSYNC_TASK_NONE;
        CHECK_ERR(cosync_taskgroup_go(&g, &none, kid_fn, &ko, NULL, COSYNC_FOREVER),
                  COSYNC_ECANCELED);
        CHECK_EQ(cosync_now(), AT(50));
        CHECKPOINT(1);
        CHECK_NULL(none.rec);
        CHECK(!w1.returned && !w2.returned); /* the group goes on until its wait */
    }
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), COSYNC_ECANCELED);
    int at = v == 2 ? 100 : 50;
    CHECK_EQ(cosync_now(), AT(at));
    CHECKPOINT(base + 2);
    check_goer(&w1, COSYNC_EPERM, at, true);
    check_goer(&w2, COSYNC_EPERM, at, true);
    CHECK(!ko.ran);
    if (v == 2) {
        CHECK_OK(k0.sleep_rc);
        join_ok(h0);
        CHECK_ERR(k1.sleep_rc, COSYNC_ECANCELED);
        join_expect(h1, COSYNC_ECANCELED);
    } else {
        CHECK_ERR(k0.sleep_rc, COSYNC_ECANCELED);
        CHECK_EQ(k0.ended, AT(50));
        join_expect(h0, COSYNC_ECANCELED);
        join_ok(x);
    }
    join_ok(t1);
    join_ok(t2);
    CHECKPOINTS_DONE(base + 3);
    /* the wait delivered the cancellation: main ends cancelled */
    return COSYNC_ECANCELED;
}

TEST(the_owner_cancelled_refuses_every_task_waiting_in_go_and_wait_says_ecanceled)
{
    for (oc.variant = 0; oc.variant < 3; oc.variant++) {
        CHECKPOINT_RESET();
        CHECK_ERR(run_main(oc_main, NULL), COSYNC_ECANCELED);
    }
}

/* ------------------------------------------------------------------------
 * The owner ends without leaving a group on its own stack
 * ---------------------------------------------------------------------- */

/*
 * The owner's group (limit 2) has c0 (until 100) and c1 (until 1000); a
 * and b wait in go. At 100, c0 ends and hands its slot to a; in the same
 * step, before a runs, the owner returns without cosync_taskgroup_wait.
 * a and b must get COSYNC_EPERM without touching the group (its frame is
 * gone), c1 is cut loose and cancelled, and one line is reported.
 *
 * Between the owner's end and a's run, s runs and guards the dead group:
 *  - OE_POISON: s, on a stack of another size (not the owner's), poisons
 *    the group's bytes for AddressSanitizer until a and b have run (any
 *    read or write of them is reported); without ASan it only checks the
 *    order;
 *  - OE_SCRIBBLE: s starts on the very stack the owner left and fills 4
 *    KiB of it (the group's bytes among them, checked) with a pattern,
 *    which must be intact once a and b have run. Only the assembly
 *    backend starts a task on the stack a dying one leaves (makecontext
 *    writes at the top of a new stack): under ucontext the guard lands
 *    elsewhere, and only checks the order.
 */
enum { OE_POISON, OE_SCRIBBLE };

static struct {
    int mode;
    cosync_taskgroup *g; /* in the owner's frame */
    goer a, b;
    kid k0, k1, ka, kb;
    cosync_task s;
    bool s_done;
    bool overlapped;
} oe;

static int oe_guard(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECKPOINT(2);
    CHECK(!oe.a.returned && !oe.b.returned);
    char *gp = (char *)oe.g;
    if (oe.mode == OE_SCRIBBLE) {
        volatile unsigned char fill[4096];
        for (size_t i = 0; i < sizeof fill; i++)
            fill[i] = 0xa5;
        char *lo = (char *)fill;
        oe.overlapped = gp >= lo && gp + sizeof *oe.g <= lo + sizeof fill;
        CHECK_OK(cosync_yield()); /* a and b run */
        CHECK(oe.a.returned && oe.b.returned);
        for (size_t i = 0; i < sizeof fill; i++)
            CHECK_EQ(fill[i], 0xa5);
    } else {
        /* not on the owner's stack (which the next task of its size takes) */
        char here;
        uintptr_t h = (uintptr_t)&here, at = (uintptr_t)gp;
        CHECK(h + 65536 < at || h > at + 65536);
#if UNDER_ASAN
        __asan_poison_memory_region(oe.g, sizeof *oe.g);
#endif
        CHECK_OK(cosync_yield()); /* a and b run */
        CHECK(oe.a.returned && oe.b.returned);
#if UNDER_ASAN
        __asan_unpoison_memory_region(oe.g, sizeof *oe.g);
#endif
    }
    oe.s_done = true;
    return 0;
}

static const cosync_task_opts oe_guard_scribble = {.name = "s"};
static const cosync_task_opts oe_guard_poison = {.name = "s", .stack_size = 256 * 1024};

/* The owner's body, a frame below 1 KiB of its stack: the group lies
 * within the 4 KiB the guard fills, whatever the build's frame layout. */
static __attribute__((noinline)) int oe_owner_frame(void)
{
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    oe.g = oe.a.g = oe.b.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 2));
    CHECK_OK(cosync_taskgroup_go(&g, NULL, kid_fn, &oe.k0, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_taskgroup_go(&g, NULL, kid_fn, &oe.k1, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_yield());              /* a and b wait; c0 and c1 arm their timers */
    CHECK_OK(cosync_sleep_until(AT(100))); /* armed after c0's */
    CHECKPOINT(1);
    CHECK(!oe.a.returned); /* handed c0's slot, not run */
    return 0;              /* without cosync_taskgroup_wait */
}

static int oe_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    volatile char pad[1024];
    pad[0] = 1;
    int rc = oe_owner_frame();
    return rc + pad[0] - 1; /* pad stays live across the call: no tail call */
}

static int oe_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(2);
    oe.s_done = oe.overlapped = false;
    oe.k0 = (kid){.id = 0,
                  .dur = 100,
                  .cp_end = 1,
                  .spawn_at_end = oe_guard,
                  .spawn_opts = oe.mode == OE_SCRIBBLE ? &oe_guard_scribble : &oe_guard_poison,
                  .spawned = &oe.s};
    oe.k1 = (kid){.id = 1, .dur = 1000};
    oe.ka = (kid){.id = 2, .dur = 10};
    oe.kb = (kid){.id = 3, .dur = 10};
    oe.a = (goer){.k = &oe.ka, .deadline = COSYNC_FOREVER, .cp = 4};
    oe.b = (goer){.k = &oe.kb, .deadline = AT(500), .cp = 5};
    cosync_task o, ta, tb;
    CHECK_OK(cosync_task_spawn(&o, oe_owner, NULL, &(cosync_task_opts){.name = "owner"}));
    ta = spawn_goer(&oe.a, "a");
    tb = spawn_goer(&oe.b, "b");
    join_ok(o);
    join_ok(ta);
    join_ok(tb);
    join_ok(oe.s);
    CHECK(oe.s_done);
#if defined(COSYNC_CTX_ASM)
    if (oe.mode == OE_SCRIBBLE)
        CHECK(oe.overlapped); /* the guard did cover the group's bytes */
#endif
    check_goer(&oe.a, COSYNC_EPERM, 100, true);
    check_goer(&oe.b, COSYNC_EPERM, 100, true);
    CHECK_EQ(oe.k0.ended, AT(100));
    CHECK_ERR(oe.k1.sleep_rc, COSYNC_ECANCELED); /* cut loose and cancelled */
    CHECK_EQ(oe.k1.ended, AT(100));
    CHECKPOINTS_DONE(5);
    return 0;
}

TEST(the_owner_ending_without_leaving_refuses_the_tasks_in_go_untouched)
{
    for (oe.mode = OE_POISON; oe.mode <= OE_SCRIBBLE; oe.mode++) {
        CHECKPOINT_RESET();
        capture cap;
        cosync_loop *loop = report_loop(&cap, NULL);
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, oe_main, NULL, &(cosync_task_opts){.name = "main"}));
        int status = 12345;
        CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
        CHECK_OK(status);
        end_loop(loop);
        CHECK_STREQ(capture_text(&cap),
                    "cosync: task 'owner' (#2) ended without leaving its task group "
                    "(cosync_taskgroup_wait): 1 child cancelled\n");
        capture_free(&cap);
    }
}

/*
 * LIBRARY BUG (kept off with #if 0; see the comment): a child of the group
 * that waits in go on its own group when the owner ends without leaving.
 *
 * The contract (cosync_taskgroup_init): "An owner that ends without
 * leaving a group that lies in its own stack is caught: the group's live
 * children are cut loose from it (they finish as if spawned outside any
 * group) and cancelled, and one line says so". Here c0, the group's only
 * child, calls go on the group (limit 1: it waits); the owner returns.
 * What happened: cut_loose (src/taskgroup.c) found c0's waiter on the
 * group's slots, grants it COSYNC_EPERM, and `continue`s before its test
 * of c->group: c0 keeps pointing to the dead frame, is not cancelled nor
 * counted (no report line at all: n is 0). When c0 returns, the finish
 * (cosync__taskgroup_child_done, then cosync__taskgroup_wake_owner) reads
 * and writes the dead group: the list of children, live, limit, owner.
 * Under ASan the guard below (which poisons the group's bytes once the
 * owner has ended) reports a use-after-poison in child_done; without it,
 * the report line is missing and c0 ends with 0, not cancelled. The same
 * holds for a child handed a slot (GRANTED) or whose go timed out or was
 * cancelled but has not run since (CANCELLED): the `continue` skips the
 * group test for every record whose waiter is a slot wait on the frame.
 * (A bug once; fixed: no `continue` there, it falls through to the
 * c->group test.)
 */
static struct {
    cosync_taskgroup *g;
    kid kg;
    int go_rc;
    bool guarded;
} cg;

static int cg_child(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task none = COSYNC_TASK_NONE;
    /* the group's only child asks for a sibling: limit 1, it waits */
    cg.go_rc = cosync_taskgroup_go(cg.g, &none, kid_fn, &cg.kg, NULL, COSYNC_FOREVER);
    CHECK_NULL(none.rec);
    CHECK(cg.guarded);
    return 0;
}

static int cg_guard(void *arg, void **result)
{
    (void)arg, (void)result;
#if UNDER_ASAN
    __asan_poison_memory_region(cg.g, sizeof *cg.g);
#endif
    cg.guarded = true;
    CHECK_OK(cosync_sleep(COSYNC_MS(10))); /* the child runs and finishes */
#if UNDER_ASAN
    __asan_unpoison_memory_region(cg.g, sizeof *cg.g);
#endif
    return 0;
}

static int cg_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    cg.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    CHECK_OK(cosync_taskgroup_go(&g, NULL, cg_child, NULL, &(cosync_task_opts){.name = "c0"},
                                 COSYNC_FOREVER));
    CHECK_OK(cosync_yield()); /* c0 waits in go */
    /* the guard runs first after the owner's end, on a stack of its own */
    CHECK_OK(cosync_task_spawn(NULL, cg_guard, NULL, &oe_guard_poison));
    return 0; /* without cosync_taskgroup_wait */
}

static int cg_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    cg.kg = (kid){.id = 1, .dur = 10};
    cg.go_rc = 1;
    cg.guarded = false;
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, cg_owner, NULL, &(cosync_task_opts){.name = "owner"}));
    join_ok(o);
    CHECK_OK(cosync_sleep(COSYNC_MS(20)));
    CHECK_ERR(cg.go_rc, COSYNC_EPERM);
    CHECK(!cg.kg.ran);
    return 0;
}

TEST(the_owner_ending_cuts_loose_a_child_waiting_in_go_on_its_group)
{
    capture cap;
    cosync_loop *loop = report_loop(&cap, NULL);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, cg_main, NULL, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    CHECK_STREQ(capture_text(&cap),
                "cosync: task 'owner' (#2) ended without leaving its task group "
                "(cosync_taskgroup_wait): 1 child cancelled\n");
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * The loop's destruction with tasks waiting in go
 * ---------------------------------------------------------------------- */

static struct {
    bool owner_in_go;
    goer w1, w2;
    kid k0, k1, k2, ko;
    int owner_go_rc, owner_wait_rc;
    bool owner_done;
} ld;

static int ld_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    ld.w1.g = ld.w2.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    CHECK_OK(cosync_taskgroup_go(&g, NULL, kid_fn, &ld.k0, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_yield()); /* w1 and w2 wait */
    if (ld.owner_in_go)
        ld.owner_go_rc = cosync_taskgroup_go(&g, NULL, kid_fn, &ld.ko, NULL, COSYNC_FOREVER);
    ld.owner_wait_rc = cosync_taskgroup_wait(&g, COSYNC_FOREVER);
    ld.owner_done = true;
    return 0;
}

static int ld_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_task o, t1, t2;
    CHECK_OK(cosync_task_spawn(&o, ld_owner, NULL, &(cosync_task_opts){.name = "owner"}));
    t1 = spawn_goer(&ld.w1, "w1");
    t2 = spawn_goer(&ld.w2, "w2");
    (void)o, (void)t1, (void)t2;
    CHECK_OK(cosync_sleep(COSYNC_MS(10)));
    CHECK(!ld.w1.returned && !ld.w2.returned && !ld.owner_done);
    return 0; /* the rest is left to the loop's destruction */
}

TEST(the_loops_destruction_cancels_the_tasks_waiting_in_go_without_a_leak)
{
    for (int v = 0; v < 2; v++) {
        meter_reset(1);
        memset(&ld, 0, sizeof ld);
        ld.owner_in_go = v == 1;
        ld.owner_go_rc = ld.owner_wait_rc = 1;
        ld.k0 = (kid){.id = 0, .dur = -1};
        ld.k1 = (kid){.id = 1, .dur = 10};
        ld.k2 = (kid){.id = 2, .dur = 10};
        ld.ko = (kid){.id = 3, .dur = 10};
        ld.w1 = (goer){.k = &ld.k1, .deadline = COSYNC_FOREVER};
        ld.w2 = (goer){.k = &ld.k2}; /* its deadline below, on the loop's clock */
        static counting cnt;
        static const cosync_allocator al = {count_realloc, &cnt};
        cnt = (counting){0, 0};
        cosync_loop *loop = NULL;
        CHECK_OK(
            cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &al}));
        t0 = cosync_loop_now(loop);
        ld.w2.deadline = AT(100000);
        cosync_task m;
        CHECK_OK(cosync_loop_spawn(loop, &m, ld_main, NULL, &(cosync_task_opts){.name = "main"}));
        int status = 1;
        CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
        CHECK_OK(status);
        CHECK_GT(cnt.live, 0);
        CHECK_OK(cosync_loop_destroy(loop));
        CHECK_EQ(cnt.live, 0);
        CHECK(ld.owner_done);
        check_goer(&ld.w1, COSYNC_ECANCELED, 10, true);
        check_goer(&ld.w2, COSYNC_ECANCELED, 10, true);
        if (v == 1)
            CHECK_ERR(ld.owner_go_rc, COSYNC_ECANCELED);
        CHECK(!ld.ko.ran);
        CHECK_ERR(ld.owner_wait_rc, COSYNC_ECANCELED);
        CHECK_ERR(ld.k0.sleep_rc, COSYNC_ECANCELED);
    }
}

/* ------------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

static struct {
    cosync_future fut;
    cosync_taskgroup *g;
    goer w;
    kid kw, km;
} dl;

static int dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    dl.g = &g;
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    CHECK_OK(cosync_taskgroup_go(&g, NULL, wait_future_arg, &dl.fut,
                                 &(cosync_task_opts){.name = "c0"}, COSYNC_FOREVER));
    dl.w = (goer){.g = &g, .k = &dl.kw, .deadline = COSYNC_FOREVER};
    cosync_task tw = spawn_goer(&dl.w, "w");
    /* main waits first, then w: a deadlock until the future is set */
    CHECK_OK(cosync_taskgroup_go(&g, NULL, kid_fn, &dl.km, NULL, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(0));
    CHECK(!dl.w.returned);
    CHECK_OK(cosync_taskgroup_wait(&g, COSYNC_FOREVER));
    /* km until 10; then w's slot, its child until 20 (the group being
     * left, with a slot handed out) */
    CHECK_EQ(cosync_now(), AT(20));
    join_ok(tw);
    check_goer(&dl.w, 0, 10, true);
    join_ok(dl.w.child);
    return 0;
}

TEST(the_deadlock_report_describes_a_task_waiting_in_go)
{
    meter_reset(1);
    cosync_future_init(&dl.fut);
    dl.kw = (kid){.id = 1, .dur = 10};
    dl.km = (kid){.id = 0, .dur = 10};
    capture cap;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&cap, dl_main, NULL, "main", &m);
    char want[768], l1[256], l3[256];
    slot_line(l1, sizeof l1, "main", 1, dl.g, 1, 1, 2, false);
    slot_line(l3, sizeof l3, "w", 3, dl.g, 1, 1, 2, false);
    snprintf(want, sizeof want,
             "cosync: deadlock: 3 tasks are blocked and nothing can wake them:\n"
             "%s  task 'c0' (#2) waits on future %p\n%s",
             l1, (void *)&dl.fut, l3);
    CHECK_STREQ(capture_text(&cap), want);
    CHECK_OK(cosync_future_set_result(&dl.fut, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    capture_free(&cap);
}

/* ------------------------------------------------------------------------
 * Eager children
 * ---------------------------------------------------------------------- */

static int eager_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    const cosync_task_opts eager = {.eager = true};
    cosync_taskgroup g;
    CHECK_OK(cosync_taskgroup_init(&g));
    CHECK_OK(cosync_taskgroup_set_limit(&g, 1));
    /* a child that ends in its first step frees its slot inside go */
    int count = 0;
    cosync_task h[5];
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cosync_taskgroup_go(&g, &h[i], bump_counter, &count, &eager, COSYNC_FOREVER));
        CHECK_EQ(count, i + 1);
        CHECK(cosync_task_done(h[i]));
    }
    /* one that suspends keeps it */
    kid k0 = {.id = 0, .dur = 100};
    cosync_task h0, none = COSYNC_TASK_NONE;
    CHECK_OK(cosync_taskgroup_go(&g, &h0, kid_fn, &k0, &eager, 0));
    CHECK(k0.ran);
    CHECK_ERR(cosync_taskgroup_go(&g, &none, bump_counter, &count, &eager, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_taskgroup_spawn(&g, &none, bump_counter, &count, &eager), COSYNC_EAGAIN);
    CHECK_EQ(count, 5);
    CHECK_EQ(cosync_now(), AT(0));
    /* at 100: one failing in its first step fails the group inside go */
    CHECK_OK(cosync_taskgroup_go(&g, NULL, fail_at_once, NULL, &eager, COSYNC_FOREVER));
    CHECK_EQ(cosync_now(), AT(100));
    CHECK_ERR(cosync_taskgroup_go(&g, &none, bump_counter, &count, &eager, COSYNC_FOREVER),
              COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_wait(&g, COSYNC_FOREVER), KID_FAILED);
    CHECK_OK(cosync_yield()); /* the group's cancel of its owner, taken back */
    CHECK_EQ(count, 5);
    CHECK_NULL(none.rec);
    for (int i = 0; i < 5; i++)
        join_ok(h[i]);
    join_ok(h0);
    return 0;
}

TEST(eager_children_take_and_free_their_slots_inside_go)
{
    run_main_ok(eager_main, NULL);
}

/* ------------------------------------------------------------------------
 * Misuse: outside a task, from another loop
 * ---------------------------------------------------------------------- */

static cosync_taskgroup other_g; /* outlives its owner: never left */
static kid other_k;

static int other_owner(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_taskgroup_init(&other_g));
    CHECK_OK(cosync_taskgroup_set_limit(&other_g, 2));
    CHECK_OK(cosync_taskgroup_go(&other_g, NULL, kid_fn, &other_k, NULL, COSYNC_FOREVER));
    return 0;
}

static int other_loop_task(void *arg, void **result)
{
    (void)arg, (void)result;
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_go(&other_g, &none, kid_fn, &kx, NULL, COSYNC_FOREVER),
              COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_go(&other_g, &none, kid_fn, &kx, NULL, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_spawn(&other_g, &none, kid_fn, &kx, NULL), COSYNC_EPERM);
    CHECK_NULL(none.rec);
    CHECK_OK(cosync_yield());
    CHECK(!kx.ran);
    return 0;
}

TEST(go_outside_a_task_or_from_another_loop_is_eperm)
{
    meter_reset(0);
    other_k = (kid){.id = 0, .dur = -1};
    cosync_loop *l1 = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(l1, &m, other_owner, NULL, NULL));
    CHECK_OK(cosync_loop_run(l1, m, NULL, NULL)); /* its child runs on, asleep */
    kid kx = {.id = 99};
    cosync_task none = COSYNC_TASK_NONE;
    CHECK_ERR(cosync_taskgroup_go(&other_g, &none, kid_fn, &kx, NULL, COSYNC_FOREVER),
              COSYNC_EPERM);
    CHECK_ERR(cosync_taskgroup_spawn(&other_g, &none, kid_fn, &kx, NULL), COSYNC_EPERM);
    CHECK_NULL(none.rec);
    run_main_ok(other_loop_task, NULL);
    CHECK(!kx.ran);
    CHECK(other_k.ran);
    CHECK_OK(cosync_loop_destroy(l1)); /* cancels the child */
    CHECK_ERR(other_k.sleep_rc, COSYNC_ECANCELED);
}

/* ------------------------------------------------------------------------
 * The model: random limits, durations, deadlines, cancels and failures
 * ---------------------------------------------------------------------- */

/*
 * Per round (one seed): SM_FEEDERS tasks (the first is the owner, which
 * opens the group) each call go up to SM_GOS times, with random gaps,
 * deadlines (none, 0 or a few ms) and children (random durations, one in
 * twenty failing). A chaos task meanwhile changes the limit, cancels
 * feeders, children and (rarely) the owner. Checked:
 *  - a go that returns 0 leaves at most `limit` children alive, unless
 *    the limit was lowered (or set from 0) while it was in the call;
 *  - at every go's return and every child's start and end, at most
 *    `limit` children are alive, but after a lowering: until no go that
 *    began before it is still in its call (one handed a slot under the
 *    old limit may spend it) and the children alive have drained to the
 *    limit;
 *  - the goes that waited and returned 0 return in the order they
 *    arrived;
 *  - a go that returned 0 spawned exactly one child, which ran unless
 *    something cancelled it first; one that failed spawned nothing, and
 *    failed for a reason the model knows of (EAGAIN: deadline 0;
 *    ETIMEDOUT: at its deadline; ECANCELED: its task was cancelled;
 *    EPERM: the group aborting or being left);
 *  - the group's wait returns, with the first failure, or ECANCELED if
 *    the owner was cancelled from outside, or 0.
 */
#define SM_FEEDERS 3
#define SM_GOS 8
#define SM_CHAOS 12

typedef struct sm_go {
    kid k;
    bool called;
    int64_t deadline;
    bool try_spawn; /* deadline 0 as cosync_taskgroup_spawn */
    uint64_t seq;
    int epoch; /* the model's lowering count at the call */
    int rc;
    bool waited;
    int64_t at;
    cosync_task child;
    bool child_cancelled; /* by chaos */
} sm_go;

static struct {
    uint64_t seed;
    uint64_t rng;
    cosync_taskgroup g; /* outlives every task that uses it */
    size_t limit;
    int epoch;
    sm_go go[SM_FEEDERS][SM_GOS];
    cosync_task feeder[SM_FEEDERS];
    bool feeder_cancelled[SM_FEEDERS];
    bool owner_cancelled; /* from outside, before its wait returned */
    bool late_cancel;     /* that came in its wait at the instant the wait ended */
    int64_t owner_cancel_at;
    bool owner_cancel_in_wait;
    int after_wait; /* the owner's first suspension after its wait */
    int first_fail;
    bool owner_waiting; /* in cosync_taskgroup_wait, or past it */
    bool left;
    int wait_rc;
    uint64_t seq, last_waited_seq;
    long gos, spawned, waited, timeouts, cancels, eperms, eagains, limit_checks;
    int in_call;     /* goes in their call */
    int pending_old; /* of those, begun before the last lowering */
    bool draining;   /* since a lowering, not yet down to the limit */
    long steps_checked;
} sm;

#define SM_CHECK(cond)                                                                             \
    do {                                                                                           \
        if (!(cond))                                                                               \
            CHECK__FAIL("seed %llu: CHECK(%s)", (unsigned long long)sm.seed, #cond);               \
    } while (0)

static int sm_alive_children(void)
{
    int n = 0;
    for (int f = 0; f < SM_FEEDERS; f++)
        for (int i = 0; i < SM_GOS; i++)
            if (sm.go[f][i].called && sm.go[f][i].child.rec && !cosync_task_done(sm.go[f][i].child))
                n++;
    return n;
}

static void sm_monitor(void)
{
    if (!sm.limit || sm.pending_old)
        return;
    int alive = sm_alive_children();
    if (sm.draining) {
        if (alive <= (int)sm.limit)
            sm.draining = false;
        return;
    }
    sm.steps_checked++;
    if (alive > (int)sm.limit)
        CHECK__FAIL("seed %llu: %d children alive, limit %zu", (unsigned long long)sm.seed, alive,
                    sm.limit);
}

static void sm_check_go(int f, sm_go *o)
{
    sm.gos++;
    switch (o->rc) {
    case 0:
        sm.spawned++;
        SM_CHECK(o->child.rec != NULL);
        if (sm.limit && o->epoch == sm.epoch) {
            sm.limit_checks++;
            SM_CHECK(sm_alive_children() <= (int)sm.limit);
        }
        if (o->waited) {
            sm.waited++;
            SM_CHECK(o->seq > sm.last_waited_seq); /* FIFO */
            sm.last_waited_seq = o->seq;
        }
        return;
    case COSYNC_EAGAIN:
        sm.eagains++;
        SM_CHECK(o->deadline == 0);
        SM_CHECK(!o->waited);
        break;
    case COSYNC_ETIMEDOUT:
        sm.timeouts++;
        SM_CHECK(o->deadline != 0 && o->deadline != COSYNC_FOREVER);
        SM_CHECK(o->at == o->deadline);
        break;
    case COSYNC_ECANCELED:
        sm.cancels++;
        SM_CHECK(sm.feeder_cancelled[f] || (f == 0 && sm.first_fail));
        break;
    case COSYNC_EPERM:
        sm.eperms++;
        SM_CHECK(sm.first_fail || sm.owner_waiting);
        break;
    default:
        CHECK__FAIL("seed %llu: go returned %d (%s)", (unsigned long long)sm.seed, o->rc,
                    cosync_err_name(o->rc));
    }
    SM_CHECK(o->child.rec == NULL);
}

static int sm_feeder(void *arg, void **result)
{
    (void)result;
    int f = (int)(intptr_t)arg;
    if (f == 0) {
        CHECK_OK(cosync_taskgroup_init(&sm.g));
        sm.limit = 1 + rnd(&sm.rng, 4);
        CHECK_OK(cosync_taskgroup_set_limit(&sm.g, sm.limit));
    }
    for (int i = 0; i < SM_GOS; i++) {
        sm_go *o = &sm.go[f][i];
        int rc = cosync_sleep(COSYNC_MS(rnd(&sm.rng, 4) == 0 ? 0 : rnd(&sm.rng, 30)));
        if (rc) {
            CHECK_ERR(rc, COSYNC_ECANCELED);
            SM_CHECK(sm.feeder_cancelled[f] || (f == 0 && sm.first_fail));
            break;
        }
        uint32_t d = rnd(&sm.rng, 10);
        o->deadline = d == 0   ? 0
                      : d <= 3 ? cosync_now() + COSYNC_MS(1 + rnd(&sm.rng, 60))
                               : COSYNC_FOREVER;
        o->try_spawn = d == 0 && rnd(&sm.rng, 2);
        o->k = (kid){.id = f * SM_GOS + i,
                     .dur = rnd(&sm.rng, 80),
                     .fail = rnd(&sm.rng, 20) == 0 ? -(7100 + f * SM_GOS + i) : 0,
                     .first_fail = &sm.first_fail};
        o->called = true;
        o->seq = ++sm.seq;
        o->epoch = sm.epoch;
        o->child = COSYNC_TASK_NONE;
        uint64_t sw = switches();
        sm.in_call++;
        o->rc = o->try_spawn
                    ? cosync_taskgroup_spawn(&sm.g, &o->child, kid_fn, &o->k, NULL)
                    : cosync_taskgroup_go(&sm.g, &o->child, kid_fn, &o->k, NULL, o->deadline);
        o->waited = switches() != sw;
        o->at = cosync_now();
        sm.in_call--;
        if (o->epoch != sm.epoch && --sm.pending_old == 0)
            sm.draining = true; /* as after a lowering: judged from now on */
        sm_check_go(f, o);
        sm_monitor();
        if (o->rc == COSYNC_ECANCELED || o->rc == COSYNC_EPERM)
            break;
    }
    if (f == 0) {
        sm.owner_waiting = true;
        sm.wait_rc = cosync_taskgroup_wait(&sm.g, COSYNC_FOREVER);
        sm.left = true;
        sm.late_cancel =
            sm.owner_cancelled && sm.owner_cancel_in_wait && sm.owner_cancel_at == cosync_now();
        sm.after_wait = cosync_yield();
    }
    return 0;
}

static int sm_chaos(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int a = 0; a < SM_CHAOS; a++) {
        CHECK_OK(cosync_sleep(COSYNC_MS(1 + rnd(&sm.rng, 40))));
        uint32_t r = rnd(&sm.rng, 10);
        if (r <= 2) {
            size_t limit = rnd(&sm.rng, 6);
            int rc = cosync_taskgroup_set_limit(&sm.g, limit);
            if (sm.owner_waiting) {
                CHECK_ERR(rc, COSYNC_EPERM);
            } else {
                CHECK_OK(rc);
                if (limit && (sm.limit == 0 || limit < sm.limit)) {
                    sm.epoch++;
                    sm.pending_old = sm.in_call;
                    sm.draining = true;
                }
                sm.limit = limit;
            }
        } else if (r <= 4) {
            int f = 1 + (int)rnd(&sm.rng, SM_FEEDERS - 1);
            if (cosync_task_cancel(sm.feeder[f]) == 0)
                sm.feeder_cancelled[f] = true;
        } else if (r == 5) {
            if (rnd(&sm.rng, 3) == 0 && !sm.left && cosync_task_cancel(sm.feeder[0]) == 0) {
                sm.owner_cancel_at = cosync_now();
                sm.owner_cancel_in_wait = sm.owner_waiting;
                sm.owner_cancelled = true;
                sm.feeder_cancelled[0] = true;
            }
        } else if (r <= 8) {
            sm_go *o = &sm.go[rnd(&sm.rng, SM_FEEDERS)][rnd(&sm.rng, SM_GOS)];
            if (o->called && o->child.rec && cosync_task_cancel(o->child) == 0)
                o->child_cancelled = true;
        }
    }
    return 0;
}

static int sm_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    meter_reset(0);
    kid_monitor = sm_monitor;
    for (int f = 0; f < SM_FEEDERS; f++)
        CHECK_OK(cosync_task_spawn(&sm.feeder[f], sm_feeder, (void *)(intptr_t)f, NULL));
    cosync_task chaos;
    CHECK_OK(cosync_task_spawn(&chaos, sm_chaos, NULL, NULL));
    for (int f = 0; f < SM_FEEDERS; f++) {
        int st = join_status(sm.feeder[f]);
        SM_CHECK(st == 0 || (st == COSYNC_ECANCELED && sm.feeder_cancelled[f]) ||
                 (f == 0 && st == COSYNC_ECANCELED));
    }
    join_ok(chaos);
    kid_monitor = NULL;
    SM_CHECK(sm.left);
    /* The wait returns the first failure (a cancellation from outside then
     * comes at the owner's next suspension), or COSYNC_ECANCELED for a
     * cancellation from outside (delivered by that return), or 0. A
     * cancellation that comes once the last finish has granted the wait,
     * before the owner has run, leaves that grant alone, as for every wait
     * (cosync_task_cancel), and comes at the next suspension. */
    int want = sm.first_fail ? sm.first_fail : sm.owner_cancelled ? COSYNC_ECANCELED : 0;
    int want_after = sm.owner_cancelled && sm.first_fail ? COSYNC_ECANCELED : 0;
    if (!sm.first_fail && sm.late_cancel && sm.wait_rc == 0) {
        want = 0;
        want_after = COSYNC_ECANCELED;
    }
    if (sm.wait_rc != want || sm.after_wait != want_after)
        CHECK__FAIL("seed %llu: the group's wait returned %d (%s), then a yield %d (%s); the "
                    "model says %d (%s), then %d (%s)",
                    (unsigned long long)sm.seed, sm.wait_rc, cosync_err_name(sm.wait_rc),
                    sm.after_wait, cosync_err_name(sm.after_wait), want, cosync_err_name(want),
                    want_after, cosync_err_name(want_after));
    bool aborted = sm.first_fail || sm.owner_cancelled;
    for (int f = 0; f < SM_FEEDERS; f++) {
        for (int i = 0; i < SM_GOS; i++) {
            sm_go *o = &sm.go[f][i];
            if (!o->called)
                continue;
            if (o->rc) {
                SM_CHECK(!o->k.ran);
                SM_CHECK(o->child.rec == NULL);
                continue;
            }
            int st = join_status(o->child);
            bool cancellable = o->child_cancelled || aborted;
            if (!o->k.ran) {
                SM_CHECK(st == COSYNC_ECANCELED && cancellable);
            } else if (o->k.sleep_rc) {
                SM_CHECK(o->k.sleep_rc == COSYNC_ECANCELED && cancellable);
                SM_CHECK(st == COSYNC_ECANCELED);
            } else if (o->k.fail) {
                SM_CHECK(st == o->k.fail);
            } else {
                SM_CHECK(st == 0 || (st == COSYNC_ECANCELED && cancellable));
            }
        }
    }
    return 0;
}

static struct {
    long rounds, gos, spawned, waited, timeouts, cancels, eperms, eagains, failed, owner_cancels,
        late_cancels, limit_checks, steps_checked;
} sm_total;

static void sm_round(uint64_t seed)
{
    memset(&sm, 0, sizeof sm);
    sm.seed = seed;
    sm.rng = splitmix(seed);
    int rc = run_main_clean(sm_main, NULL);
    if (rc)
        CHECK__FAIL("seed %llu: the round ended with %d (%s)", (unsigned long long)seed, rc,
                    cosync_err_name(rc));
    sm_total.rounds++;
    sm_total.gos += sm.gos;
    sm_total.spawned += sm.spawned;
    sm_total.waited += sm.waited;
    sm_total.timeouts += sm.timeouts;
    sm_total.cancels += sm.cancels;
    sm_total.eperms += sm.eperms;
    sm_total.eagains += sm.eagains;
    sm_total.failed += sm.first_fail != 0;
    sm_total.owner_cancels += sm.owner_cancelled;
    sm_total.late_cancels += sm.late_cancel && sm.wait_rc == 0;
    sm_total.limit_checks += sm.limit_checks;
    sm_total.steps_checked += sm.steps_checked;
}

TEST(model_random_limits_durations_cancels_and_failures)
{
    /* TGL_ROUNDS and TGL_SEED choose others (150,000 from seed 1,000,000:
     * 11 s in a release build) */
    long n = env_long("TGL_ROUNDS", under_valgrind() ? 2000 : UNDER_ASAN ? 5000 : 20000);
    long first = env_long("TGL_SEED", 1);
    double secs = run_seeds(sm_round, first, n);
    printf("  %ld rounds from seed %ld in %.2f s: %ld steps checked against the limit; %ld goes, "
           "%ld spawned (%ld after a wait, %ld checked against the limit), "
           "%ld timed out, %ld cancelled, %ld EPERM, %ld EAGAIN; %ld groups failed, %ld owners "
           "cancelled (%ld as their wait ended)\n",
           sm_total.rounds, first, secs, sm_total.steps_checked, sm_total.gos, sm_total.spawned,
           sm_total.waited, sm_total.limit_checks, sm_total.timeouts, sm_total.cancels,
           sm_total.eperms, sm_total.eagains, sm_total.failed, sm_total.owner_cancels,
           sm_total.late_cancels);
    /* every outcome was reached */
    CHECK_GT(sm_total.waited, 0);
    CHECK_GT(sm_total.limit_checks, sm_total.spawned / 2);
    CHECK_GT(sm_total.steps_checked, sm_total.spawned);
    CHECK_GT(sm_total.timeouts, 0);
    CHECK_GT(sm_total.cancels, 0);
    CHECK_GT(sm_total.eperms, 0);
    CHECK_GT(sm_total.eagains, 0);
    CHECK_GT(sm_total.failed, 0);
    CHECK_GT(sm_total.owner_cancels, 0);
}

int main(void)
{
    RUN(without_a_limit_go_is_spawn_and_never_waits);
    RUN(limit_3_ten_children_never_more_than_3_each_go_when_a_slot_frees);
    RUN(waiting_tasks_are_served_in_arrival_order_owner_or_not);
    RUN(a_newcomer_does_not_take_a_slot_handed_to_a_waiter);
    RUN(try_forms_say_eagain_and_a_deadline_gives_up_having_spawned_nothing);
    RUN(a_cancelled_wait_in_go_at_the_head_middle_or_tail_spawns_nothing);
    RUN(a_task_handed_its_slot_then_cancelled_spawns_and_gets_the_cancel_next);
    RUN(a_child_failing_refuses_every_task_waiting_in_go_and_aborts_the_group);
    RUN(the_owners_wait_covers_a_slot_handed_to_a_task_in_go_and_its_child);
    RUN(a_go_whose_spawn_fails_once_it_has_its_slot_passes_the_slot_on);
    RUN(a_lower_limit_holds_new_children_back_until_enough_finish);
    RUN(a_higher_limit_hands_out_slots_to_the_waiters_at_once_in_order);
    RUN(set_limit_on_a_group_being_left_or_left_is_eperm);
    RUN(set_limit_0_releases_every_waiter);
    RUN(the_owner_cancelled_refuses_every_task_waiting_in_go_and_wait_says_ecanceled);
    RUN(the_owner_ending_without_leaving_refuses_the_tasks_in_go_untouched);
    RUN(the_owner_ending_cuts_loose_a_child_waiting_in_go_on_its_group);
    RUN(the_loops_destruction_cancels_the_tasks_waiting_in_go_without_a_leak);
    RUN(the_deadlock_report_describes_a_task_waiting_in_go);
    RUN(eager_children_take_and_free_their_slots_inside_go);
    RUN(go_outside_a_task_or_from_another_loop_is_eperm);
    RUN(model_random_limits_durations_cancels_and_failures);
    return 0;
}
