/*
 * test_pool.c - cosync_pool, the patterns layer's resource pool: lazy
 * creation in the acquiring task, LIFO reuse, FIFO waiters without
 * barging, slots handed on after a discard or a failed create, deadlines
 * and cancellation in every waiting state, close, misuse, the seed's
 * resource-pool scenario with its invariants checked throughout, and the
 * loop's destruction with waiters and tasks creating.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 * A trace records, in order and with their virtual times (ms from the
 * loop's start), the creates begun (mk<i>) and ended (ok<i>, fail<i>),
 * the resources destroyed (end<i>), and what each task did: arrived at
 * its acquire (A?), got a resource (A=r<i>) or a code (A!ETIMEDOUT),
 * released (A-r<i>) or discarded (A~r<i>) one; "M" is the test's main.
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "trace.h"
#include "core.h"  /* COSYNC__DENSE_SUPPORTED */
#include "fault.h" /* cosync__fault_countdown */

/* A create's failure: a code of the test's own. */
#define FAIL_CODE (-20001)

/* @ms milliseconds after a fresh virtual-clock loop started */
#define AT(ms) (TRACE_T0 + COSYNC_MS(ms))

/* The trace: tr(), trace_reset(), CHECK_TRACE() (trace.h) */

/* A return code, short. */
static const char *code(int rc)
{
    if (rc == FAIL_CODE)
        return "FAIL";
    const char *name = cosync_err_name(rc);
    return strncmp(name, "COSYNC_", 7) == 0 ? name + 7 : name;
}

/* ========================================================================
 * The resources and their factory
 * ===================================================================== */

#define MAXC 512
#define RES_MAGIC 0x5EED9001u

/* A resource (a "connection"): malloc'd, so that one the pool forgets
 * leaks (and ASan says so). */
typedef struct res {
    uint32_t magic;
    int id;         /* the create that made it */
    uint64_t owner; /* who has it out (a task's id, ~0 outside a task); 0: nobody */
} res;

typedef struct factory {
    int64_t connect;    /* a create's virtual time; 0: it does not suspend */
    int64_t slow[MAXC]; /* per create: its time instead, when not 0 (< 0: no suspension) */
    int fail[MAXC];     /* per create: fail with this code after the connect */
    int started;        /* creates begun: the next one's id */
    int made, failed, live;
    uint64_t creator[MAXC]; /* the task that ran create i (0: none) */
    int sleep_rc[MAXC];     /* what create i's connect returned */
    int ended[MAXC];        /* the resources destroyed, in order */
    int nended;
} factory;

static factory F;

static void factory_reset(int64_t connect)
{
    memset(&F, 0, sizeof F);
    F.connect = connect;
}

static uint64_t me_id(void)
{
    uint64_t id = cosync_task_id(cosync_task_current());
    return id ? id : UINT64_MAX;
}

static int fcreate(void *arg, void **out)
{
    factory *f = arg;
    CHECK(f == &F);
    int id = f->started++;
    CHECK_LT(id, MAXC);
    f->creator[id] = cosync_task_id(cosync_task_current());
    tr("mk%d", id);
    int64_t d = f->slow[id] ? f->slow[id] : f->connect;
    int rc = 0;
    if (d > 0) {
        rc = cosync_sleep(d);
        f->sleep_rc[id] = rc;
    }
    if (rc == 0)
        rc = f->fail[id];
    if (rc) {
        f->failed++;
        if (rc == FAIL_CODE)
            tr("fail%d", id);
        else
            tr("fail%d:%s", id, code(rc));
        return rc;
    }
    res *r = malloc(sizeof *r);
    CHECK_NOTNULL(r);
    *r = (res){.magic = RES_MAGIC, .id = id};
    f->made++;
    f->live++;
    tr("ok%d", id);
    *out = r;
    return 0;
}

static void fdestroy(void *arg, void *p)
{
    factory *f = arg;
    CHECK(f == &F);
    res *r = p;
    CHECK_EQ(r->magic, RES_MAGIC);
    CHECK_EQ(r->owner, 0); /* nobody has it */
    tr("end%d", r->id);
    CHECK_LT(f->nended, MAXC);
    f->ended[f->nended++] = r->id;
    f->live--;
    r->magic = 0;
    free(r);
}

static const cosync_pool_ops fops = {fcreate, fdestroy};

/* Whether resource @id was destroyed. */
static bool ended(int id)
{
    for (int i = 0; i < F.nended; i++)
        if (F.ended[i] == id)
            return true;
    return false;
}

#define CHECK_STATS(p, s, i, u, w)                                                                 \
    do {                                                                                           \
        cosync_pool_stats st_;                                                                     \
        CHECK_OK(cosync_pool_get_stats(p, &st_));                                                  \
        CHECK_EQ(st_.size, s);                                                                     \
        CHECK_EQ(st_.idle, i);                                                                     \
        CHECK_EQ(st_.in_use, u);                                                                   \
        CHECK_EQ(st_.waiters, w);                                                                  \
    } while (0)

/* Take @r out (it must be nobody's). */
static void take(res *r)
{
    CHECK_NOTNULL(r);
    CHECK_EQ(r->magic, RES_MAGIC);
    CHECK_EQ(r->owner, 0);
    r->owner = me_id();
}

/* Give @r back (release, or discard): it may be destroyed meanwhile. */
static int give_back(cosync_pool *p, res *r, bool discard, const char *tag)
{
    CHECK_EQ(r->magic, RES_MAGIC);
    CHECK_EQ(r->owner, me_id());
    r->owner = 0;
    tr(discard ? "%s~r%d" : "%s-r%d", tag, r->id);
    return discard ? cosync_pool_discard(p, r) : cosync_pool_release(p, r);
}

/* An acquire of a task that traces it as @tag. */
static int acq_tag(cosync_pool *p, int64_t deadline, res **out, const char *tag)
{
    void *v = NULL;
    int rc = cosync_pool_acquire(p, &v, deadline);
    if (rc == 0) {
        *out = v;
        take(*out);
        tr("%s=r%d", tag, (*out)->id);
    } else {
        tr("%s!%s", tag, code(rc));
    }
    return rc;
}

/* The main task's (or the test's) own acquire, traced as "M". */
static int macq(cosync_pool *p, int64_t deadline, res **out)
{
    return acq_tag(p, deadline, out, "M");
}

static void mrel(cosync_pool *p, res *r)
{
    CHECK_OK(give_back(p, r, false, "M"));
}

static void mdiscard(cosync_pool *p, res *r)
{
    CHECK_OK(give_back(p, r, true, "M"));
}

/* ========================================================================
 * A client task: acquire, hold, give back
 * ===================================================================== */

typedef enum after_kind { RELEASE, DISCARD } after_kind;

typedef struct client {
    cosync_pool *p;
    const char *tag;
    int64_t delay;    /* sleep before acquiring */
    int64_t deadline; /* of the acquire */
    int64_t hold;     /* sleep while holding (0: none; COSYNC_FOREVER: until cancelled) */
    after_kind after; /* how to give it back (also when the hold is cancelled) */
    bool yield_after; /* a yield right after the acquire: where a late cancel comes */
    bool stats_after; /* the pool's stats right after the give-back */
    /* observed */
    uint64_t tid; /* its task's id */
    int rc;
    res *r;
    int64_t at; /* when the acquire returned */
    int next_rc, hold_rc, back_rc;
    cosync_pool_stats st;
} client;

static client mkc(cosync_pool *p, const char *tag)
{
    return (client){.p = p,
                    .tag = tag,
                    .deadline = COSYNC_FOREVER,
                    .rc = 1,
                    .next_rc = 1,
                    .hold_rc = 1,
                    .back_rc = 1};
}

static int client_fn(void *arg, void **result)
{
    (void)result;
    client *c = arg;
    c->tid = me_id();
    if (c->delay) {
        int rc = cosync_sleep(c->delay);
        if (rc) {
            c->rc = rc;
            tr("%s!%s", c->tag, code(rc));
            return 0;
        }
    }
    tr("%s?", c->tag);
    void *v = NULL;
    c->rc = cosync_pool_acquire(c->p, &v, c->deadline);
    c->at = cosync_now();
    if (c->rc == 0) {
        c->r = v;
        take(c->r);
        tr("%s=r%d", c->tag, c->r->id);
    } else {
        tr("%s!%s", c->tag, code(c->rc));
    }
    if (c->yield_after)
        c->next_rc = cosync_yield();
    if (c->rc != 0)
        return 0;
    if (c->hold == COSYNC_FOREVER)
        c->hold_rc = cosync_sleep_until(COSYNC_FOREVER);
    else
        c->hold_rc = c->hold ? cosync_sleep(c->hold) : 0;
    c->back_rc = give_back(c->p, c->r, c->after == DISCARD, c->tag);
    CHECK_OK(c->back_rc);
    if (c->stats_after)
        CHECK_OK(cosync_pool_get_stats(c->p, &c->st));
    return 0;
}

static cosync_task spawn_client(client *c)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, client_fn, c, &(cosync_task_opts){.name = c->tag}));
    return t;
}

/* ========================================================================
 * Init
 * ===================================================================== */

static int static_res[4];
static int static_made;
static void *static_arg_seen;

static int static_create(void *arg, void **out)
{
    static_arg_seen = arg;
    *out = &static_res[static_made++ % 4];
    return 0;
}

static int never_create(void *arg, void **out)
{
    (void)arg, (void)out;
    CHECK__FAIL("the pool called a create function it was not given");
    return COSYNC_EINVAL;
}

TEST(init_validates_and_leaves_the_pool_untouched)
{
    factory_reset(0);
    cosync_pool p;
    memset(&p, 0x5A, sizeof p);
    unsigned char before[sizeof p];
    memcpy(before, &p, sizeof p);
    CHECK_ERR(cosync_pool_init(NULL, 1, &fops, &F), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_init(&p, 0, &fops, &F), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_init(&p, 1, NULL, &F), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_init(&p, 1, &(cosync_pool_ops){NULL, fdestroy}, &F), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_init(&p, 0, NULL, NULL), COSYNC_EINVAL);
    /* a size whose storage cannot even be counted: refused either way */
    int rc = cosync_pool_init(&p, SIZE_MAX, &fops, &F);
    CHECK(rc == COSYNC_EINVAL || rc == COSYNC_ENOMEM);
    CHECK(memcmp(before, &p, sizeof p) == 0);
    CHECK_EQ(F.started, 0);
}

TEST(init_makes_nothing_and_copies_the_ops)
{
    factory_reset(0);
    cosync_pool p;
    cosync_pool_ops ops = fops;
    CHECK_OK(cosync_pool_init(&p, 2, &ops, &F));
    ops.create = never_create; /* the pool has its own copy */
    ops.destroy = NULL;
    CHECK_EQ(F.started, 0); /* lazily: nothing is made at init */
    CHECK_STATS(&p, 0, 0, 0, 0);
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r)); /* outside a task, a create that does not suspend */
    CHECK_EQ(F.started, 1);
    CHECK_EQ(F.creator[0], 0);
    mrel(&p, r);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.nended, 1); /* by the copied destroy */
    CHECK_EQ(F.live, 0);
}

TEST(init_allows_a_null_destroy)
{
    static_made = 0;
    static_arg_seen = NULL;
    int token;
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &(cosync_pool_ops){static_create, NULL}, &token));
    void *a, *b;
    CHECK_OK(cosync_pool_acquire(&p, &a, 0));
    CHECK_OK(cosync_pool_acquire(&p, &b, 0));
    CHECK(static_arg_seen == &token);
    CHECK(a == &static_res[0] && b == &static_res[1]);
    CHECK_OK(cosync_pool_discard(&p, a)); /* nothing to end it with: fine */
    CHECK_OK(cosync_pool_release(&p, b));
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_close(&p)); /* idle ones "ended": nothing to call */
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(static_made, 2);
}

TEST(init_fault_injection_its_one_allocation)
{
    factory_reset(0);
    cosync_pool p;
    memset(&p, 0xA5, sizeof p);
    unsigned char before[sizeof p];
    memcpy(before, &p, sizeof p);
    long failures = cosync__fault_failures;
    cosync__fault_countdown = 0;
    int rc = cosync_pool_init(&p, 4, &fops, &F);
    cosync__fault_countdown = -1;
    CHECK_ERR(rc, COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK(memcmp(before, &p, sizeof p) == 0);
    CHECK_EQ(F.started, 0);
    /* one point to pass: the one allocation passes it, and nothing else
     * asks (the countdown is used up, nothing failed) */
    cosync__fault_countdown = 1;
    rc = cosync_pool_init(&p, 4, &fops, &F);
    long left = cosync__fault_countdown;
    cosync__fault_countdown = -1;
    CHECK_OK(rc);
    CHECK_EQ(left, 0);
    CHECK_EQ(cosync__fault_failures, failures + 1);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
}

/* ========================================================================
 * Lazy creation, LIFO reuse, stats
 * ===================================================================== */

static int lazy_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(10));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 3, &fops, &F));
    CHECK_STATS(&p, 0, 0, 0, 0);
    client a = mkc(&p, "A"), b = mkc(&p, "B");
    a.hold = COSYNC_MS(5);
    b.hold = COSYNC_MS(10);
    cosync_task ta = spawn_client(&a), tb = spawn_client(&b), other;
    CHECK_OK(cosync_task_spawn(&other, checkpoint_arg, (void *)1, NULL));
    CHECKPOINT(0);
    CHECK_OK(cosync_yield());
    /* both creates run in their acquiring tasks, and suspend: the other
     * task (and I) ran meanwhile */
    CHECKPOINT(2);
    CHECK_TRACE("A?@0 mk0@0 B?@0 mk1@0");
    CHECK_EQ(F.creator[0], a.tid);
    CHECK_EQ(F.creator[1], b.tid);
    CHECK_STATS(&p, 2, 0, 0, 0); /* being made: counted in the size */
    join_ok(other);
    CHECK_OK(cosync_sleep_until(AT(12)));
    CHECK_TRACE("A?@0 mk0@0 B?@0 mk1@0 ok0@10 A=r0@10 ok1@10 B=r1@10");
    CHECK_EQ(a.at, AT(10));
    CHECK_EQ(b.at, AT(10));
    CHECK_STATS(&p, 2, 0, 2, 0);
    CHECK_OK(cosync_sleep_until(AT(16)));
    CHECK_STATS(&p, 2, 1, 1, 0);
    join_ok(ta);
    join_ok(tb);
    CHECK_EQ(cosync_now(), AT(20));
    CHECK_TRACE("A?@0 mk0@0 B?@0 mk1@0 ok0@10 A=r0@10 ok1@10 B=r1@10 A-r0@15 B-r1@20");
    CHECK_STATS(&p, 2, 2, 0, 0);
    /* reuse: the one released last, without a create or a switch */
    trace_reset();
    uint64_t sw0 = switches();
    res *r1, *r0, *r2, *x;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r1));
    CHECK_EQ(r1->id, 1);
    CHECK_STATS(&p, 2, 1, 1, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r0));
    CHECK_EQ(r0->id, 0);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(F.started, 2);
    CHECK_STATS(&p, 2, 0, 2, 0);
    /* none idle and room: a third, made in my task */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r2));
    CHECK_EQ(r2->id, 2);
    CHECK_EQ(F.creator[2], cosync_task_id(cosync_task_current()));
    CHECK_EQ(cosync_now(), AT(30));
    CHECK_STATS(&p, 3, 0, 3, 0);
    /* full */
    sw0 = switches();
    CHECK_ERR(macq(&p, 0, &x), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw0);
    CHECK_STATS(&p, 3, 0, 3, 0);
    mrel(&p, r0);
    mrel(&p, r1);
    mrel(&p, r2);
    CHECK_STATS(&p, 3, 3, 0, 0);
    CHECK_OK(macq(&p, 0, &x));
    CHECK_EQ(x->id, 2);
    mrel(&p, x);
    CHECK_TRACE("M=r1@20 M=r0@20 mk2@20 ok2@30 M=r2@30 M!EAGAIN@30 M-r0@30 M-r1@30 M-r2@30 "
                "M=r2@30 M-r2@30");
    CHECK_EQ(F.nended, 0);
    CHECK_EQ(F.started, 3);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.nended, 3);
    CHECK(ended(0) && ended(1) && ended(2));
    CHECK_EQ(F.live, 0);
    CHECKPOINTS_DONE(3);
    return 0;
}

TEST(lazy_creation_in_the_acquiring_task_and_lifo_reuse)
{
    run_main_ok(lazy_main, NULL);
}

/* ========================================================================
 * FIFO, no barging
 * ===================================================================== */

static int fifo_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    /* arrivals: T0 and T1 at 0 (they make the two), T4 at 1, T2 at 3, T3 at 4 */
    static const int64_t delay_ms[5] = {0, 0, 3, 4, 1};
    static const char *const tags[5] = {"T0", "T1", "T2", "T3", "T4"};
    client c[5];
    cosync_task t[5];
    for (int i = 0; i < 5; i++) {
        c[i] = mkc(&p, tags[i]);
        c[i].delay = COSYNC_MS(delay_ms[i]);
        c[i].hold = COSYNC_MS(10);
        t[i] = spawn_client(&c[i]);
    }
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_STATS(&p, 2, 0, 0, 1);
    CHECK_OK(cosync_sleep_until(AT(4) + COSYNC_US(500)));
    CHECK_STATS(&p, 2, 0, 0, 3);
    CHECK_OK(cosync_sleep_until(AT(16)));
    CHECK_STATS(&p, 2, 0, 2, 1);
    CHECK_OK(cosync_sleep_until(AT(26)));
    CHECK_STATS(&p, 2, 1, 1, 0);
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    CHECK_TRACE("T0?@0 mk0@0 T1?@0 mk1@0 T4?@1 T2?@3 T3?@4 ok0@5 T0=r0@5 ok1@5 T1=r1@5 "
                "T0-r0@15 T1-r1@15 T4=r0@15 T2=r1@15 T4-r0@25 T2-r1@25 T3=r0@25 T3-r0@35");
    static const int at_ms[5] = {5, 5, 15, 25, 15};
    for (int i = 0; i < 5; i++) {
        CHECK_OK(c[i].rc);
        CHECK_EQ(c[i].at, AT(at_ms[i]));
    }
    CHECK_STATS(&p, 2, 2, 0, 0);
    CHECK_EQ(F.started, 2);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(fifo_grants_in_arrival_order_at_exact_times)
{
    run_main_ok(fifo_main, NULL);
}

/* The newcomer is the releaser itself: the resource it gave back was
 * handed to the waiter, which has not run yet. */
static int no_barging_self_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r, *x;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w = mkc(&p, "W");
    w.hold = COSYNC_MS(10);
    cosync_task tw = spawn_client(&w);
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 1, 0, 1, 1);
    mrel(&p, r);
    CHECK_STATS(&p, 1, 0, 1, 0); /* W's now */
    CHECK_EQ(w.rc, 1);           /* though it has not run */
    uint64_t sw0 = switches();
    CHECK_ERR(macq(&p, 0, &x), COSYNC_EAGAIN);
    CHECK_EQ(switches(), sw0);
    CHECK_STATS(&p, 1, 0, 1, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &x)); /* after W, in line */
    CHECK_EQ(x->id, 0);
    CHECK_EQ(cosync_now(), AT(15));
    mrel(&p, x);
    join_ok(tw);
    CHECK_TRACE("mk0@0 ok0@5 M=r0@5 W?@5 M-r0@5 M!EAGAIN@5 W=r0@5 W-r0@15 M=r0@15 M-r0@15");
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(no_barging_by_the_releaser)
{
    run_main_ok(no_barging_self_main, NULL);
}

/* The newcomer N wakes at the instant of the release (its timer armed
 * after the holder's): it arrives after the release, before the waiter
 * W has run. It waits behind W. With a discard, W was handed the slot. */
static int no_barging_main(void *arg, void **result)
{
    (void)result;
    bool discard = *(const bool *)arg;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client h = mkc(&p, "H"), w = mkc(&p, "W"), n = mkc(&p, "N");
    h.hold = COSYNC_MS(15);
    h.after = discard ? DISCARD : RELEASE;
    w.delay = COSYNC_MS(1);
    w.hold = COSYNC_MS(10);
    cosync_task t[3];
    t[0] = spawn_client(&h);
    t[1] = spawn_client(&w);
    CHECK_OK(cosync_sleep_until(AT(6))); /* H's hold timer is armed (at 5) */
    n.delay = COSYNC_MS(14);             /* N's: at 20 too, armed after H's */
    t[2] = spawn_client(&n);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    if (discard) {
        CHECK_TRACE("H?@0 mk0@0 W?@1 ok0@5 H=r0@5 H~r0@20 end0@20 N?@20 mk1@20 ok1@25 W=r1@25 "
                    "W-r1@35 N=r1@35 N-r1@35");
        CHECK_EQ(F.creator[1], w.tid);
    } else {
        CHECK_TRACE("H?@0 mk0@0 W?@1 ok0@5 H=r0@5 H-r0@20 N?@20 W=r0@20 W-r0@30 N=r0@30 N-r0@30");
    }
    CHECK_OK(w.rc);
    CHECK_OK(n.rc);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(no_barging_by_a_newcomer_between_the_release_and_the_waiter)
{
    bool discard = false;
    run_main_ok(no_barging_main, &discard);
}

TEST(no_barging_by_a_newcomer_between_the_discard_and_the_waiter)
{
    bool discard = true;
    run_main_ok(no_barging_main, &discard);
}

/* ========================================================================
 * Discard; create failures
 * ===================================================================== */

static int discard_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w = mkc(&p, "W");
    a.hold = COSYNC_MS(10);
    a.after = DISCARD;
    a.stats_after = true;
    w.delay = COSYNC_MS(1);
    cosync_task t[2] = {spawn_client(&a), spawn_client(&w)};
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_TRACE("A?@0 mk0@0 W?@1 ok0@5 A=r0@5 A~r0@15 end0@15 mk1@15 ok1@20 W=r1@20 W-r1@20");
    /* right after the discard: r0 ended, its slot W's (being made) */
    CHECK_EQ(a.st.size, 1);
    CHECK_EQ(a.st.idle, 0);
    CHECK_EQ(a.st.in_use, 0);
    CHECK_EQ(a.st.waiters, 0);
    CHECK_EQ(F.creator[1], w.tid);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_TRACE("A?@0 mk0@0 W?@1 ok0@5 A=r0@5 A~r0@15 end0@15 mk1@15 ok1@20 W=r1@20 W-r1@20 "
                "end1@20");
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(discard_destroys_and_hands_the_first_waiter_a_slot)
{
    run_main_ok(discard_main, NULL);
}

/* A discard with nobody waiting frees the slot: the next acquire makes one. */
static int discard_no_waiter_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    res *a, *b;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &a));
    CHECK_OK(macq(&p, COSYNC_FOREVER, &b));
    mrel(&p, a);
    mdiscard(&p, b);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &a)); /* the idle one */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &b)); /* a new one in the freed slot */
    mrel(&p, a);
    mrel(&p, b);
    CHECK_TRACE("mk0@0 ok0@5 M=r0@5 mk1@5 ok1@10 M=r1@10 M-r0@10 M~r1@10 end1@10 M=r0@10 mk2@10 "
                "ok2@15 M=r2@15 M-r0@15 M-r2@15");
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(discard_with_nobody_waiting_frees_the_slot)
{
    run_main_ok(discard_no_waiter_main, NULL);
}

static int create_fails_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    /* the acquirer gets the create's own code, the slot is free again */
    F.fail[0] = FAIL_CODE;
    res *r;
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &r), FAIL_CODE);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    mrel(&p, r);
    CHECK_TRACE("mk0@0 fail0@5 M!FAIL@5 mk1@5 ok1@10 M=r1@10 M-r1@10");
    CHECK_EQ(F.nended, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(create_failure_returns_the_creates_code)
{
    run_main_ok(create_fails_main, NULL);
}

/* The first make fails while W waits behind it: W makes one. */
static int create_fails_first_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    F.fail[0] = FAIL_CODE;
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w = mkc(&p, "W");
    w.delay = COSYNC_MS(1);
    cosync_task t[2] = {spawn_client(&a), spawn_client(&w)};
    CHECK_OK(cosync_sleep_until(AT(2)));
    CHECK_STATS(&p, 1, 0, 0, 1);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_TRACE("A?@0 mk0@0 W?@1 fail0@5 A!FAIL@5 mk1@5 ok1@10 W=r1@10 W-r1@10");
    CHECK_ERR(a.rc, FAIL_CODE);
    CHECK_EQ(a.at, AT(5));
    CHECK_EQ(F.creator[1], w.tid);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(create_failure_hands_the_slot_to_the_next_waiter)
{
    run_main_ok(create_fails_first_main, NULL);
}

/* A's r0 discarded at 15; W1's make fails, W2 makes one. */
static int create_fails_after_discard_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    F.fail[1] = FAIL_CODE;
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w1 = mkc(&p, "W1"), w2 = mkc(&p, "W2");
    a.hold = COSYNC_MS(10);
    a.after = DISCARD;
    w1.delay = COSYNC_MS(1);
    w2.delay = COSYNC_MS(2);
    cosync_task t[3] = {spawn_client(&a), spawn_client(&w1), spawn_client(&w2)};
    CHECK_OK(cosync_sleep_until(AT(17)));
    CHECK_STATS(&p, 1, 0, 0, 1);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_TRACE("A?@0 mk0@0 W1?@1 W2?@2 ok0@5 A=r0@5 A~r0@15 end0@15 mk1@15 fail1@20 W1!FAIL@20 "
                "mk2@20 ok2@25 W2=r2@25 W2-r2@25");
    CHECK_EQ(F.creator[1], w1.tid);
    CHECK_EQ(F.creator[2], w2.tid);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(create_failure_after_a_discard_hands_the_slot_on)
{
    run_main_ok(create_fails_after_discard_main, NULL);
}

/* Every waiter's make fails in turn; @arg: whether the failing creates
 * take their connect time (5 ms) or fail without suspending. */
static int create_fails_for_all_main(void *arg, void **result)
{
    (void)result;
    bool instant = *(const bool *)arg;
    factory_reset(instant ? 0 : COSYNC_MS(5));
    F.slow[0] = COSYNC_MS(5);
    trace_reset();
    for (int i = 1; i <= 4; i++)
        F.fail[i] = FAIL_CODE;
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w[4];
    static const char *const tags[4] = {"W1", "W2", "W3", "W4"};
    a.hold = COSYNC_MS(10);
    a.after = DISCARD;
    cosync_task t[5];
    t[0] = spawn_client(&a);
    for (int i = 0; i < 4; i++) {
        w[i] = mkc(&p, tags[i]);
        w[i].delay = COSYNC_MS(i + 1);
        t[i + 1] = spawn_client(&w[i]);
    }
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    if (instant)
        CHECK_TRACE("A?@0 mk0@0 W1?@1 W2?@2 W3?@3 W4?@4 ok0@5 A=r0@5 A~r0@15 end0@15 mk1@15 "
                    "fail1@15 W1!FAIL@15 mk2@15 fail2@15 W2!FAIL@15 mk3@15 fail3@15 W3!FAIL@15 "
                    "mk4@15 fail4@15 W4!FAIL@15");
    else
        CHECK_TRACE("A?@0 mk0@0 W1?@1 W2?@2 W3?@3 W4?@4 ok0@5 A=r0@5 A~r0@15 end0@15 mk1@15 "
                    "fail1@20 W1!FAIL@20 mk2@20 fail2@25 W2!FAIL@25 mk3@25 fail3@30 W3!FAIL@30 "
                    "mk4@30 fail4@35 W4!FAIL@35");
    for (int i = 0; i < 4; i++) {
        CHECK_ERR(w[i].rc, FAIL_CODE);
        CHECK_EQ(w[i].at, instant ? AT(15) : AT(20 + 5 * i));
        CHECK_EQ(F.creator[i + 1], w[i].tid);
    }
    CHECK_STATS(&p, 0, 0, 0, 0);
    /* and the pool still works */
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    CHECK_EQ(r->id, 5);
    mrel(&p, r);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(create_failing_for_every_waiter_in_turn)
{
    bool instant = false;
    run_main_ok(create_fails_for_all_main, &instant);
}

TEST(create_failing_at_once_for_every_waiter_in_turn)
{
    bool instant = true;
    run_main_ok(create_fails_for_all_main, &instant);
}

/* ========================================================================
 * Deadlines
 * ===================================================================== */

static int deadlines_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    /* the try form still makes one when there is room: the create has its
     * own deadlines */
    res *r, *x;
    CHECK_OK(macq(&p, 0, &r));
    CHECK_EQ(cosync_now(), AT(5));
    mrel(&p, r);
    /* an idle one: deadline 0 takes it, without a switch */
    uint64_t sw0 = switches();
    CHECK_OK(macq(&p, 0, &r));
    /* full: 0 is EAGAIN, a passed deadline ETIMEDOUT; neither queues nor switches */
    CHECK_ERR(macq(&p, 0, &x), COSYNC_EAGAIN);
    CHECK_ERR(macq(&p, AT(4), &x), COSYNC_ETIMEDOUT);
    CHECK_ERR(macq(&p, cosync_now(), &x), COSYNC_ETIMEDOUT);
    CHECK_EQ(switches(), sw0);
    CHECK_EQ(cosync_now(), AT(5));
    CHECK_STATS(&p, 1, 0, 1, 0);
    CHECK_EQ(armed_timers(), 0);
    /* W1 times out at exactly 15 with nothing taken; W2 and W3 are served
     * as if it had never been there */
    client w1 = mkc(&p, "W1"), w2 = mkc(&p, "W2"), w3 = mkc(&p, "W3");
    w1.deadline = AT(15);
    w2.hold = COSYNC_MS(5);
    w3.deadline = AT(60);
    cosync_task t[3] = {spawn_client(&w1), spawn_client(&w2), spawn_client(&w3)};
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 1, 0, 1, 3);
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK_ERR(w1.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w1.at, AT(15));
    CHECK_STATS(&p, 1, 0, 1, 2);
    CHECK_EQ(armed_timers(), 1); /* W3's deadline */
    mrel(&p, r);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_EQ(armed_timers(), 0); /* the grant disarmed W3's */
    CHECK_OK(w2.rc);
    CHECK_EQ(w2.at, AT(20));
    CHECK_OK(w3.rc);
    CHECK_EQ(w3.at, AT(25));
    /* a deadline at the very instant of the release: the timers due at an
     * instant all fire before any task runs, so W4's wait has ended (by
     * its deadline, nothing taken) when I release, though my timer was
     * armed first; r0 goes idle */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w4 = mkc(&p, "W4");
    w4.deadline = AT(40);
    cosync_task t4 = spawn_client(&w4);
    CHECK_OK(cosync_sleep_until(AT(40))); /* armed before W4's wait */
    CHECK_STATS(&p, 1, 0, 1, 0);
    mrel(&p, r);
    CHECK_STATS(&p, 1, 1, 0, 0);
    join_ok(t4);
    CHECK_ERR(w4.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(w4.at, AT(40));
    CHECK_TRACE("mk0@0 ok0@5 M=r0@5 M-r0@5 M=r0@5 M!EAGAIN@5 M!ETIMEDOUT@5 M!ETIMEDOUT@5 W1?@5 "
                "W2?@5 W3?@5 W1!ETIMEDOUT@15 M-r0@20 W2=r0@20 W2-r0@25 W3=r0@25 W3-r0@25 "
                "M=r0@25 W4?@25 M-r0@40 W4!ETIMEDOUT@40");
    /* a waiter handed a slot before its deadline, whose create runs past
     * it: the deadline bounded the wait, not the create (which has its
     * own), and the acquire succeeds */
    trace_reset();
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w5 = mkc(&p, "W5");
    w5.deadline = AT(50);
    F.slow[1] = COSYNC_MS(20);
    cosync_task t5 = spawn_client(&w5);
    CHECK_OK(cosync_sleep_until(AT(42)));
    mdiscard(&p, r);
    join_ok(t5);
    CHECK_OK(w5.rc);
    CHECK_EQ(w5.at, AT(62));
    CHECK_TRACE("M=r0@40 W5?@40 M~r0@42 end0@42 mk1@42 ok1@62 W5=r1@62 W5-r1@62");
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_EQ(F.started, 2);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(deadlines_try_form_and_exact_timeouts)
{
    run_main_ok(deadlines_main, NULL);
}

/* One of three waiters leaves (by a cancel or its deadline) at 10: the
 * two others are served in order at 12 and 22. */
typedef struct leave_case {
    int k;
    bool by_timeout;
} leave_case;

static int leave_main(void *arg, void **result)
{
    (void)result;
    const leave_case *lc = arg;
    factory_reset(COSYNC_MS(5));
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    trace_reset();
    static const char *const tags[3] = {"W0", "W1", "W2"};
    client w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mkc(&p, tags[i]);
        w[i].hold = COSYNC_MS(10);
        if (lc->by_timeout && i == lc->k)
            w[i].deadline = AT(10);
        t[i] = spawn_client(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 1, 0, 1, 3);
    if (!lc->by_timeout) {
        CHECK_OK(cosync_sleep_until(AT(10)));
        CHECK_OK(cosync_task_cancel(t[lc->k]));
        CHECK_STATS(&p, 1, 0, 1, 2); /* taken off at once */
    }
    CHECK_OK(cosync_sleep_until(AT(12)));
    CHECK_ERR(w[lc->k].rc, lc->by_timeout ? COSYNC_ETIMEDOUT : COSYNC_ECANCELED);
    CHECK_EQ(w[lc->k].at, AT(10));
    CHECK_STATS(&p, 1, 0, 1, 2);
    mrel(&p, r);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    int rest[2], n = 0;
    for (int i = 0; i < 3; i++)
        if (i != lc->k)
            rest[n++] = i;
    char want[512];
    snprintf(want, sizeof want,
             "W0?@5 W1?@5 W2?@5 W%d!%s@10 M-r0@12 W%d=r0@12 W%d-r0@22 W%d=r0@22 W%d-r0@32", lc->k,
             lc->by_timeout ? "ETIMEDOUT" : "ECANCELED", rest[0], rest[0], rest[1], rest[1]);
    CHECK_TRACE(want);
    CHECK_EQ(w[rest[0]].at, AT(12));
    CHECK_EQ(w[rest[1]].at, AT(22));
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_EQ(F.started, 1);
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(timed_out_waiter_at_head_middle_tail)
{
    for (int k = 0; k < 3; k++)
        run_main_ok(leave_main, &(leave_case){k, true});
}

TEST(cancelled_waiter_at_head_middle_tail)
{
    for (int k = 0; k < 3; k++)
        run_main_ok(leave_main, &(leave_case){k, false});
}

/* ========================================================================
 * Cancellation after a grant, and during a create
 * ===================================================================== */

/* Handed r0 and cancelled before it ran: W keeps it, the cancel comes at
 * its next suspension. */
static int granted_then_cancelled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w = mkc(&p, "W");
    w.yield_after = true;
    cosync_task t = spawn_client(&w);
    CHECK_OK(cosync_yield());
    mrel(&p, r);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_STATS(&p, 1, 0, 1, 0);
    join_expect(t, COSYNC_ECANCELED); /* it finishes as cancelled */
    CHECK_OK(w.rc);
    CHECK_EQ(w.r->id, 0);
    CHECK_ERR(w.next_rc, COSYNC_ECANCELED);
    CHECK_TRACE("mk0@0 ok0@5 M=r0@5 W?@5 M-r0@5 W=r0@5 W-r0@5");
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(waiter_granted_a_resource_then_cancelled_keeps_it)
{
    run_main_ok(granted_then_cancelled_main, NULL);
}

/* Handed a slot and cancelled before it ran: its create's connect gets
 * the cancel, the create fails, the slot goes to W2. With a create that
 * does not suspend (@arg), W1 makes and keeps its resource, and the
 * cancel comes at its next suspension. */
static int slot_then_cancelled_main(void *arg, void **result)
{
    (void)result;
    bool instant = *(const bool *)arg;
    factory_reset(COSYNC_MS(5));
    if (instant)
        F.slow[1] = -1; /* create 1 does not suspend */
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w1 = mkc(&p, "W1"), w2 = mkc(&p, "W2");
    w1.yield_after = true;
    cosync_task t[2] = {spawn_client(&w1), spawn_client(&w2)};
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 1, 0, 1, 2);
    mdiscard(&p, r);
    CHECK_STATS(&p, 1, 0, 0, 1); /* W1's slot */
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_EQ(F.creator[1], w1.tid);
    if (instant) {
        CHECK_TRACE("mk0@0 ok0@5 M=r0@5 W1?@5 W2?@5 M~r0@5 end0@5 mk1@5 ok1@5 W1=r1@5 W1-r1@5 "
                    "W2=r1@5 W2-r1@5");
        CHECK_OK(w1.rc);
        CHECK_ERR(w1.next_rc, COSYNC_ECANCELED);
        CHECK_STATS(&p, 1, 1, 0, 0);
    } else {
        CHECK_TRACE("mk0@0 ok0@5 M=r0@5 W1?@5 W2?@5 M~r0@5 end0@5 mk1@5 fail1:ECANCELED@5 "
                    "W1!ECANCELED@5 mk2@5 ok2@10 W2=r2@10 W2-r2@10");
        CHECK_ERR(w1.rc, COSYNC_ECANCELED);
        CHECK_ERR(F.sleep_rc[1], COSYNC_ECANCELED);
        CHECK_EQ(F.creator[2], w2.tid);
        CHECK_EQ(w2.at, AT(10));
        CHECK_STATS(&p, 1, 1, 0, 0);
    }
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(waiter_granted_a_slot_then_cancelled_passes_the_slot_on)
{
    bool instant = false;
    run_main_ok(slot_then_cancelled_main, &instant);
}

TEST(waiter_granted_a_slot_then_cancelled_with_a_create_that_does_not_suspend)
{
    bool instant = true;
    run_main_ok(slot_then_cancelled_main, &instant);
}

/* A cancelled while its create sleeps: the create fails with ECANCELED,
 * so does A's acquire, and W makes one in the slot. */
static int cancel_during_create_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(10));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w = mkc(&p, "W");
    w.delay = COSYNC_MS(1);
    cosync_task t[2] = {spawn_client(&a), spawn_client(&w)};
    CHECK_OK(cosync_sleep_until(AT(3)));
    CHECK_STATS(&p, 1, 0, 0, 1);
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_OK(cosync_sleep_until(AT(4)));
    CHECK_STATS(&p, 1, 0, 0, 0); /* W's being made */
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_TRACE("A?@0 mk0@0 W?@1 fail0:ECANCELED@3 A!ECANCELED@3 mk1@3 ok1@13 W=r1@13 W-r1@13");
    CHECK_ERR(a.rc, COSYNC_ECANCELED);
    CHECK_EQ(F.creator[1], w.tid);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(cancellation_during_create)
{
    run_main_ok(cancel_during_create_main, NULL);
}

/* A cancellation pending at the acquire: an idle resource is still taken
 * (no suspension, the cancel stays pending); a create gets it at its first
 * suspension; a wait delivers it without queueing. */
static int pending_cancel_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    cosync_task me = cosync_task_current();
    res *r, *x;
    CHECK_OK(cosync_task_cancel(me));
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &r), COSYNC_ECANCELED);
    CHECK_ERR(F.sleep_rc[0], COSYNC_ECANCELED);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    mrel(&p, r);
    CHECK_OK(cosync_task_cancel(me));
    uint64_t sw0 = switches();
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r)); /* idle: taken, no suspension */
    CHECK_EQ(switches(), sw0);
    CHECK_ERR(macq(&p, 0, &x), COSYNC_EAGAIN); /* deadline 0: the cancel stays pending */
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &x), COSYNC_ECANCELED);
    CHECK_STATS(&p, 1, 0, 1, 0);
    mrel(&p, r);
    CHECK_TRACE("mk0@0 fail0:ECANCELED@0 M!ECANCELED@0 mk1@0 ok1@5 M=r1@5 M-r1@5 M=r1@5 "
                "M!EAGAIN@5 M!ECANCELED@5 M-r1@5");
    CHECK_EQ(cosync_task_uncancel(me), 1);
    CHECK_EQ(cosync_task_uncancel(me), 0);
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(pending_cancellation_at_the_acquire)
{
    run_main_ok(pending_cancel_main, NULL);
}

/* ========================================================================
 * Close
 * ===================================================================== */

static int close_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    client a = mkc(&p, "A"), b = mkc(&p, "B"), w[3];
    static const char *const tags[3] = {"W1", "W2", "W3"};
    a.hold = COSYNC_MS(20);
    b.hold = COSYNC_MS(40);
    b.after = DISCARD;
    b.stats_after = true;
    cosync_task t[5];
    t[0] = spawn_client(&a);
    t[1] = spawn_client(&b);
    for (int i = 0; i < 3; i++) {
        w[i] = mkc(&p, tags[i]);
        w[i].delay = COSYNC_MS(i + 1);
        t[i + 2] = spawn_client(&w[i]);
    }
    w[2].deadline = AT(100);
    CHECK_OK(cosync_sleep_until(AT(10)));
    CHECK_STATS(&p, 2, 0, 2, 3);
    CHECK_EQ(armed_timers(), 3); /* A's and B's holds, W3's deadline */
    CHECK_OK(cosync_pool_close(&p));
    CHECK_STATS(&p, 2, 0, 2, 0); /* the waiters are off, the resources out untouched */
    CHECK_EQ(F.nended, 0);
    res *x;
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &x), COSYNC_ESHUTDOWN);
    CHECK_ERR(macq(&p, 0, &x), COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_pool_close(&p)); /* twice: nothing */
    CHECK_OK(cosync_sleep_until(AT(30)));
    for (int i = 0; i < 3; i++) {
        CHECK_ERR(w[i].rc, COSYNC_ESHUTDOWN);
        CHECK_EQ(w[i].at, AT(10));
    }
    CHECK(ended(0));             /* released after the close: destroyed */
    CHECK_EQ(armed_timers(), 1); /* B's hold: W3's deadline went with its wait */
    CHECK_STATS(&p, 1, 0, 1, 0);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY); /* B's is out */
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    CHECK_TRACE("A?@0 mk0@0 B?@0 mk1@0 W1?@1 W2?@2 W3?@3 ok0@5 A=r0@5 ok1@5 B=r1@5 M!ESHUTDOWN@10 "
                "M!ESHUTDOWN@10 W1!ESHUTDOWN@10 W2!ESHUTDOWN@10 W3!ESHUTDOWN@10 A-r0@25 end0@25 "
                "B~r1@45 end1@45");
    /* the discard after the close offered no slot */
    CHECK_EQ(b.st.size, 0);
    CHECK_EQ(b.st.waiters, 0);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_EQ(F.started, 2);
    CHECK_OK(cosync_pool_close(&p));
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.nended, 2);
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(close_ends_waiters_and_destroys_resources_as_they_come_back)
{
    run_main_ok(close_main, NULL);
}

TEST(close_destroys_idle_resources_at_once)
{
    factory_reset(0);
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 3, &fops, &F));
    res *r[3];
    for (int i = 0; i < 3; i++)
        CHECK_OK(macq(&p, COSYNC_FOREVER, &r[i]));
    for (int i = 0; i < 3; i++)
        mrel(&p, r[i]);
    CHECK_STATS(&p, 3, 3, 0, 0);
    CHECK_EQ(F.nended, 0);
    CHECK_OK(cosync_pool_close(&p));
    CHECK_EQ(F.nended, 3);
    CHECK(ended(0) && ended(1) && ended(2));
    CHECK_STATS(&p, 0, 0, 0, 0);
    res *x;
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &x), COSYNC_ESHUTDOWN); /* outside a task too */
    CHECK_ERR(cosync_pool_release(&p, r[0]), COSYNC_EPERM);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.nended, 3);
    CHECK_EQ(F.live, 0);
}

/* A's create is under way at the close: it finishes, its resource is
 * destroyed, A gets ESHUTDOWN. */
static int close_during_create_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(10));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A"), w = mkc(&p, "W");
    w.delay = COSYNC_MS(1);
    cosync_task t[2] = {spawn_client(&a), spawn_client(&w)};
    CHECK_OK(cosync_sleep_until(AT(3)));
    CHECK_OK(cosync_pool_close(&p));
    CHECK_STATS(&p, 1, 0, 0, 0);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY); /* being made */
    join_ok(t[1]);
    CHECK_ERR(w.rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(w.at, AT(3));
    join_ok(t[0]);
    CHECK_ERR(a.rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(a.at, AT(10));
    CHECK_TRACE("A?@0 mk0@0 W?@1 W!ESHUTDOWN@3 ok0@10 end0@10 A!ESHUTDOWN@10");
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(close_during_a_create_destroys_what_it_makes)
{
    run_main_ok(close_during_create_main, NULL);
}

/* At the close, W1 was handed r0 and W2 a slot, neither has run: W1 keeps
 * r0 (destroyed when it comes back), W2 makes one that is destroyed at
 * once, W3 (still waiting) gets ESHUTDOWN. */
static int close_after_grants_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    res *r0, *r1;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r0));
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r1));
    trace_reset();
    static const char *const tags[3] = {"W1", "W2", "W3"};
    client w[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = mkc(&p, tags[i]);
        t[i] = spawn_client(&w[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 2, 0, 2, 3);
    mrel(&p, r0);
    mdiscard(&p, r1);
    CHECK_OK(cosync_pool_close(&p));
    CHECK_STATS(&p, 2, 0, 1, 0);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_TRACE("W1?@10 W2?@10 W3?@10 M-r0@10 M~r1@10 end1@10 W1=r0@10 W1-r0@10 end0@10 mk2@10 "
                "W3!ESHUTDOWN@10 ok2@15 end2@15 W2!ESHUTDOWN@15");
    CHECK_OK(w[0].rc);
    CHECK_ERR(w[1].rc, COSYNC_ESHUTDOWN);
    CHECK_ERR(w[2].rc, COSYNC_ESHUTDOWN);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(close_keeps_the_grants_already_made)
{
    run_main_ok(close_after_grants_main, NULL);
}

/* A create that fails after the close: A gets a code, nothing is left. */
static int close_then_create_fails_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(10));
    F.fail[0] = FAIL_CODE;
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    client a = mkc(&p, "A");
    cosync_task t = spawn_client(&a);
    CHECK_OK(cosync_sleep_until(AT(3)));
    CHECK_OK(cosync_pool_close(&p));
    join_ok(t);
    /* the contract names both: the create's failure, and the close */
    CHECK(a.rc == FAIL_CODE || a.rc == COSYNC_ESHUTDOWN);
    CHECK_EQ(a.at, AT(10));
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_EQ(F.nended, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    return 0;
}

TEST(close_then_the_create_fails)
{
    run_main_ok(close_then_create_fails_main, NULL);
}

/* ========================================================================
 * Misuse
 * ===================================================================== */

static int misuse_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    res dummy = {.magic = RES_MAGIC, .id = 99};
    /* nothing out */
    CHECK_ERR(cosync_pool_release(&p, &dummy), COSYNC_EPERM);
    CHECK_ERR(cosync_pool_discard(&p, &dummy), COSYNC_EPERM);
    CHECK_STATS(&p, 0, 0, 0, 0);
    /* being made (nothing out yet) */
    client a = mkc(&p, "A");
    a.hold = COSYNC_FOREVER;
    cosync_task ta = spawn_client(&a);
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 1, 0, 0, 0);
    CHECK_ERR(cosync_pool_release(&p, &dummy), COSYNC_EPERM);
    CHECK_ERR(cosync_pool_discard(&p, &dummy), COSYNC_EPERM);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY);
    CHECK_STATS(&p, 1, 0, 0, 0);
    /* out */
    CHECK_OK(cosync_sleep_until(AT(6)));
    CHECK_STATS(&p, 1, 0, 1, 0);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY);
    /* a release too many */
    res *r;
    void *v;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    mrel(&p, r);
    CHECK_STATS(&p, 2, 1, 1, 0);
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    CHECK_STATS(&p, 2, 0, 2, 0);
    /* waited for */
    client w = mkc(&p, "W");
    cosync_task tw = spawn_client(&w);
    CHECK_OK(cosync_yield());
    CHECK_STATS(&p, 2, 0, 2, 1);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY);
    CHECK_STATS(&p, 2, 0, 2, 1);
    /* handed to W, which has not run: out */
    mrel(&p, r);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY);
    join_ok(tw);
    CHECK_STATS(&p, 2, 1, 1, 0);
    /* a slot handed to a waiter that has not run: being made */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    client w2 = mkc(&p, "W2");
    cosync_task tw2 = spawn_client(&w2);
    CHECK_OK(cosync_yield());
    mdiscard(&p, r);
    CHECK_STATS(&p, 2, 0, 1, 0);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EBUSY);
    join_ok(tw2);
    CHECK_STATS(&p, 2, 1, 1, 0);
    /* A gives its own back; everything idle; EPERM for one more */
    CHECK_OK(cosync_task_cancel(ta));
    join_expect(ta, COSYNC_ECANCELED);
    CHECK_STATS(&p, 2, 2, 0, 0);
    int nended = F.nended;
    CHECK_ERR(cosync_pool_release(&p, &dummy), COSYNC_EPERM);
    CHECK_ERR(cosync_pool_discard(&p, &dummy), COSYNC_EPERM);
    CHECK_STATS(&p, 2, 2, 0, 0);
    CHECK_EQ(F.nended, nended);
    CHECK_TRACE("A?@0 mk0@0 ok0@5 A=r0@5 mk1@6 ok1@11 M=r1@11 M-r1@11 M=r1@11 W?@11 M-r1@11 "
                "W=r1@11 W-r1@11 M=r1@11 W2?@11 M~r1@11 end1@11 mk2@11 ok2@16 W2=r2@16 "
                "W2-r2@16 A-r0@16");
    /* destroyed: every call is EINVAL, the stats say nothing is left */
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    CHECK_ERR(cosync_pool_destroy(&p), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, &v, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, &v, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_release(&p, &dummy), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_discard(&p, &dummy), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_close(&p), COSYNC_EINVAL);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_EQ(F.started, 3); /* no create was called */
    /* init makes it live again */
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    CHECK_OK(cosync_pool_acquire(&p, &v, 0));
    take(v);
    mrel(&p, v);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(misuse_eperm_ebusy_and_calls_after_destroy)
{
    run_main_ok(misuse_main, NULL);
}

TEST(misuse_null_arguments_and_a_zeroed_pool)
{
    factory_reset(0);
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    void *v = NULL;
    cosync_pool_stats st;
    CHECK_ERR(cosync_pool_acquire(NULL, &v, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, NULL, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, NULL, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_release(NULL, v), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_discard(NULL, v), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_close(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_destroy(NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_get_stats(NULL, &st), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_get_stats(&p, NULL), COSYNC_EINVAL);
    CHECK_EQ(F.started, 0);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    /* zeroed, never initialised */
    cosync_pool z;
    memset(&z, 0, sizeof z);
    CHECK_ERR(cosync_pool_acquire(&z, &v, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&z, &v, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_release(&z, v), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_discard(&z, v), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_close(&z), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_destroy(&z), COSYNC_EINVAL);
    CHECK_STATS(&z, 0, 0, 0, 0);
}

TEST(misuse_outside_a_task)
{
    factory_reset(0);
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r, *x;
    /* room, and a create that does not suspend: made here */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    CHECK_EQ(F.creator[0], 0);
    /* full, nothing idle: it would have to wait */
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &x), COSYNC_EPERM);
    CHECK_ERR(macq(&p, 0, &x), COSYNC_EPERM);
    CHECK_ERR(macq(&p, COSYNC_SEC(5), &x), COSYNC_EPERM);
    CHECK_STATS(&p, 1, 0, 1, 0);
    mrel(&p, r);
    /* idle: taken */
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r));
    CHECK_EQ(r->id, 0);
    mrel(&p, r);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    /* a create that suspends cannot here: its failure frees the slot */
    factory_reset(COSYNC_MS(5));
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    CHECK_ERR(macq(&p, COSYNC_FOREVER, &r), COSYNC_EPERM);
    CHECK_ERR(F.sleep_rc[0], COSYNC_EPERM);
    CHECK_STATS(&p, 0, 0, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_TRACE("mk0 ok0 M=r0 M!EPERM M!EPERM M!EPERM M-r0 M=r0 M-r0 end0 mk0 fail0:EPERM M!EPERM");
    CHECK_EQ(F.live, 0);
}

/* Bound to the loop of its waiters while it has any. */
static int stopper_fn(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

TEST(misuse_a_task_of_another_loop_while_one_waits)
{
    factory_reset(0);
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    res *r;
    CHECK_OK(macq(&p, COSYNC_FOREVER, &r)); /* held outside any loop */
    cosync_loop *a = new_loop();
    cosync_loop *b = new_loop();
    client wa = mkc(&p, "WA"), wb = mkc(&p, "WB");
    cosync_task ta, tb, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, client_fn, &wa, NULL));
    spawn_and_run(a, &stopper, stopper_fn, NULL);
    CHECK_STATS(&p, 1, 0, 1, 1);
    /* b: refused while a's task waits, even with deadline 0 */
    spawn_and_run(b, &tb, client_fn, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    wb = mkc(&p, "WB");
    wb.deadline = 0;
    spawn_and_run(b, &tb, client_fn, &wb);
    CHECK_ERR(wb.rc, COSYNC_EPERM);
    CHECK_STATS(&p, 1, 0, 1, 1);
    /* a release from outside any loop serves a's task */
    mrel(&p, r);
    int st = 1;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(wa.rc);
    CHECK_STATS(&p, 1, 1, 0, 0);
    /* nobody waits now: b's task may (and times out) */
    CHECK_OK(macq(&p, 0, &r));
    wb = mkc(&p, "WB");
    wb.deadline = AT(10);
    spawn_and_run(b, &tb, client_fn, &wb);
    CHECK_ERR(wb.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(wb.at, AT(10));
    mrel(&p, r);
    CHECK_TRACE("mk0 ok0 M=r0 WA?@0 WB?@0 WB!EPERM@0 WB?@0 WB!EPERM@0 M-r0 WA=r0@0 WA-r0@0 M=r0 "
                "WB?@0 WB!ETIMEDOUT@10 M-r0");
    end_loop(a);
    end_loop(b);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK_EQ(F.live, 0);
}

/* A dense task may not wait on a pool in its own stack: refused with
 * EINVAL at once, nothing left queued. Taking an idle one or making one
 * (the create's sleep is not a wait on the pool) is fine. */
static int dense_pool_task(void *arg, void **result)
{
    (void)result;
    int *finished = arg;
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 1, &fops, &F));
    void *a, *b;
    CHECK_OK(cosync_pool_acquire(&p, &a, COSYNC_FOREVER)); /* made: a 1 ms connect */
    CHECK_OK(cosync_pool_release(&p, a));
    CHECK_OK(cosync_pool_acquire(&p, &a, COSYNC_FOREVER)); /* idle */
    uint64_t before = switches();
    CHECK_ERR(cosync_pool_acquire(&p, &b, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, &b, cosync_deadline_after(COSYNC_MS(5))), COSYNC_EINVAL);
    CHECK_ERR(cosync_pool_acquire(&p, &b, 0), COSYNC_EAGAIN); /* no wait, no harm */
    CHECK_EQ(switches(), before);
    CHECK_STATS(&p, 1, 0, 1, 0);
    CHECK_OK(cosync_pool_release(&p, a));
    CHECK_OK(cosync_pool_destroy(&p));
    ++*finished;
    return 0;
}

/* A dense task may wait on a pool outside its stack, as any task. */
static cosync_pool dense_outside;

static int dense_outside_waiter(void *arg, void **result)
{
    (void)result;
    int *finished = arg;
    void *v;
    CHECK_OK(cosync_pool_acquire(&dense_outside, &v, COSYNC_FOREVER));
    CHECK_OK(cosync_sleep(COSYNC_MS(1))); /* copied out while it holds it */
    CHECK_OK(cosync_pool_release(&dense_outside, v));
    ++*finished;
    return 0;
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    factory_reset(COSYNC_MS(1));
    int finished = 0;
    cosync_task t[4];
    const cosync_task_opts dense = {.dense = true};
    CHECK_OK(cosync_pool_init(&dense_outside, 1, &fops, &F));
    void *v;
    CHECK_OK(cosync_pool_acquire(&dense_outside, &v, COSYNC_FOREVER));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&t[i], dense_outside_waiter, &finished, &dense));
    CHECK_OK(cosync_yield());
    CHECK_STATS(&dense_outside, 1, 0, 1, 2);
    /* two more, so that each is copied out while another runs */
    for (int i = 2; i < 4; i++)
        CHECK_OK(cosync_task_spawn(&t[i], dense_pool_task, &finished, &dense));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_pool_release(&dense_outside, v));
    CHECK_OK(cosync_gather(t, 4, NULL, COSYNC_FOREVER));
    CHECK_EQ(finished, 4);
    CHECK_STATS(&dense_outside, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&dense_outside));
    CHECK_EQ(F.live, 0);
    return 0;
}

TEST(misuse_a_dense_task_waiting_on_a_pool_in_its_own_stack)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return; /* there a dense task has its own stack, and may wait */
    run_main_ok(dense_main, NULL);
}

/* The deadlock report says what a waiter waits on. */
static cosync_pool dl_pool;
static void *dl_first;

static int dl_main(void *arg, void **result)
{
    (void)arg, (void)result;
    void *a, *b;
    CHECK_OK(cosync_pool_acquire(&dl_pool, &a, COSYNC_FOREVER));
    dl_first = a;
    CHECK_OK(cosync_pool_acquire(&dl_pool, &b, COSYNC_FOREVER)); /* given back from outside */
    CHECK(a == b);
    CHECK_OK(cosync_pool_release(&dl_pool, b));
    return 0;
}

TEST(deadlock_report_describes_the_pool)
{
    factory_reset(0);
    CHECK_OK(cosync_pool_init(&dl_pool, 1, &fops, &F));
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, dl_main, NULL, "main", &m);
    char want[512];
    snprintf(want, sizeof want,
             "cosync: deadlock: 1 task is blocked and nothing can wake it:\n"
             "  task 'main' (#1) waits on pool %p (1 of 1 out, 0 being made, 1 waiting)\n",
             (void *)&dl_pool);
    CHECK_STREQ(report.buf, want);
    CHECK_STATS(&dl_pool, 1, 0, 1, 1);
    CHECK_OK(cosync_pool_release(&dl_pool, dl_first)); /* from outside: to main */
    CHECK_STATS(&dl_pool, 1, 0, 1, 0);
    int st = 1;
    CHECK_OK(cosync_loop_run(loop, m, &st, NULL));
    CHECK_EQ(st, 0);
    CHECK_OK(cosync_loop_destroy(loop));
    capture_free(&report);
    CHECK_STATS(&dl_pool, 1, 1, 0, 0);
    CHECK_OK(cosync_pool_destroy(&dl_pool));
    CHECK_EQ(F.live, 0);
}

/* ========================================================================
 * The seed's resource-pool scenario (examples/sync_resource_pool.c)
 * ===================================================================== */

#define SEED_WORKERS 8
#define SEED_MAX 3

typedef struct seed_state {
    cosync_pool pool;
    uint32_t rng;
    int discard_every; /* every n-th use breaks its resource (0: none) */
    bool stopping;     /* the workers are being cancelled: FIFO no longer modelled */
    long uses, acquisitions, releases, discards;
    int out_now, peak_out;
    /* the waiters, as the contract says they are served: FIFO */
    int queue[SEED_WORKERS];
    int qn;
    bool granted[SEED_WORKERS];
    bool queued[SEED_WORKERS];
    uint64_t hash; /* of every acquisition (worker, resource, time) */
    cosync_task workers[SEED_WORKERS];
} seed_state;

static seed_state S;

static int64_t seed_uniform_ms(int lo_ms, int hi_ms)
{
    S.rng ^= S.rng << 13;
    S.rng ^= S.rng >> 17;
    S.rng ^= S.rng << 5;
    return COSYNC_US(lo_ms * 1000 + (int64_t)(S.rng % (uint32_t)((hi_ms - lo_ms) * 1000 + 1)));
}

static cosync_pool_stats seed_stats(void)
{
    cosync_pool_stats st;
    CHECK_OK(cosync_pool_get_stats(&S.pool, &st));
    /* never more than max out; no waiter while a resource is idle or a
     * slot is free */
    CHECK_LE(st.size, SEED_MAX);
    CHECK_LE(st.in_use, SEED_MAX);
    CHECK_LE(S.out_now, (int)st.in_use); /* in_use counts also those handed over, not taken yet */
    if (st.waiters > 0) {
        CHECK_EQ(st.idle, 0);
        CHECK_EQ(st.size, SEED_MAX);
    }
    if (!S.stopping)
        CHECK_EQ(st.waiters, S.qn);
    return st;
}

static void seed_hash(uint64_t x)
{
    S.hash = splitmix(S.hash ^ x);
}

/* The model's grant at a give-back: the first waiter is served. */
static void seed_grant_head(void)
{
    CHECK_GT(S.qn, 0);
    int head = S.queue[0];
    memmove(S.queue, S.queue + 1, (size_t)(S.qn - 1) * sizeof S.queue[0]);
    S.qn--;
    S.granted[head] = true;
}

static int seed_worker(void *arg, void **result)
{
    (void)result;
    int id = (int)(intptr_t)arg;
    int rc;
    for (;;) {
        cosync_pool_stats st = seed_stats();
        /* it waits exactly when the contract says so: others wait, or
         * nothing idle and no room */
        bool must_wait = st.waiters > 0 || (st.idle == 0 && st.size == SEED_MAX);
        if (must_wait && !S.stopping) {
            S.queue[S.qn++] = id;
            S.queued[id] = true;
        }
        void *v = NULL;
        int64_t before = cosync_now();
        rc = cosync_pool_acquire(&S.pool, &v, COSYNC_FOREVER);
        if (S.queued[id]) {
            S.queued[id] = false;
            if (!S.stopping)
                CHECK(S.granted[id]); /* served in its turn */
            S.granted[id] = false;
        } else if (rc == 0 && st.idle > 0) {
            CHECK_EQ(cosync_now(), before); /* an idle one, at once */
        } else if (rc == 0) {
            CHECK_EQ(cosync_now(), before + F.connect); /* made one, in this task */
        }
        if (rc != 0)
            break;
        res *r = v;
        take(r);
        S.acquisitions++;
        S.out_now++;
        if (S.out_now > S.peak_out)
            S.peak_out = S.out_now;
        seed_hash((uint64_t)id << 48 ^ (uint64_t)r->id << 32 ^ (uint64_t)cosync_now());
        seed_stats();
        rc = cosync_sleep(seed_uniform_ms(5, 20));
        /* finally: give it back, even when cancelled */
        bool discard = S.discard_every && ++S.uses % S.discard_every == 0;
        st = seed_stats();
        S.out_now--;
        if (st.waiters > 0 && !S.stopping)
            seed_grant_head();
        CHECK_OK(give_back(&S.pool, r, discard, "w"));
        cosync_pool_stats after = seed_stats();
        if (discard) {
            S.discards++;
            if (st.waiters > 0) { /* the slot went to the first waiter */
                CHECK_EQ(after.size, st.size);
                CHECK_EQ(after.in_use, st.in_use - 1);
                CHECK_EQ(after.waiters, st.waiters - 1);
            } else {
                CHECK_EQ(after.size, st.size - 1);
            }
        } else {
            S.releases++;
            if (st.waiters > 0) { /* straight to the first waiter */
                CHECK_EQ(after.in_use, st.in_use);
                CHECK_EQ(after.idle, 0);
                CHECK_EQ(after.waiters, st.waiters - 1);
            } else {
                CHECK_EQ(after.idle, st.idle + 1);
            }
        }
        if (rc != 0)
            break;
        if ((rc = cosync_sleep(seed_uniform_ms(1, 5))) != 0) /* pause */
            break;
    }
    return rc;
}

/* Samples the invariants every half millisecond. */
static int seed_monitor(void *arg, void **result)
{
    (void)arg, (void)result;
    for (;;) {
        seed_stats();
        int rc = cosync_sleep(COSYNC_US(500));
        if (rc)
            return rc;
    }
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task monitor;
    CHECK_OK(cosync_task_spawn(&monitor, seed_monitor, NULL, NULL));
    for (int i = 0; i < SEED_WORKERS; i++)
        CHECK_OK(cosync_task_spawn(&S.workers[i], seed_worker, (void *)(intptr_t)i, NULL));
    CHECK_OK(cosync_sleep(COSYNC_MS(150)));
    S.stopping = true;
    for (int i = 0; i < SEED_WORKERS; i++)
        CHECK_OK(cosync_task_cancel(S.workers[i]));
    CHECK_OK(cosync_task_cancel(monitor));
    cosync_outcome out[SEED_WORKERS];
    CHECK_OK(cosync_gather(S.workers, SEED_WORKERS, out, COSYNC_FOREVER));
    for (int i = 0; i < SEED_WORKERS; i++)
        CHECK_ERR(out[i].status, COSYNC_ECANCELED);
    join_expect(monitor, COSYNC_ECANCELED);
    return 0;
}

typedef struct seed_result {
    long acquisitions, discards;
    int made;
    uint64_t hash;
} seed_result;

static seed_result run_seed_scenario(int discard_every)
{
    factory_reset(COSYNC_MS(2));
    trace_off = true;
    memset(&S, 0, sizeof S);
    S.rng = 2463534242u; /* the seed's */
    S.discard_every = discard_every;
    CHECK_OK(cosync_pool_init(&S.pool, SEED_MAX, &fops, &F));
    run_main_ok(seed_main, NULL);
    trace_off = false;
    cosync_pool_stats st;
    CHECK_OK(cosync_pool_get_stats(&S.pool, &st));
    CHECK_EQ(st.in_use, 0);
    CHECK_EQ(st.waiters, 0);
    CHECK_EQ(st.size, st.idle);
    CHECK_EQ(S.out_now, 0);
    CHECK_EQ(S.acquisitions, S.releases + S.discards);
    CHECK_EQ(S.peak_out, SEED_MAX);
    CHECK_GE(S.acquisitions, 20);
    CHECK_EQ(F.live, (int)st.size);
    CHECK_EQ(F.nended, (int)S.discards);
    CHECK_EQ(F.made, (int)st.size + (int)S.discards);
    CHECK_OK(cosync_pool_destroy(&S.pool));
    CHECK_EQ(F.live, 0);
    return (seed_result){S.acquisitions, S.discards, F.made, S.hash};
}

TEST(seed_resource_pool_scenario_keeps_its_invariants)
{
    seed_result a = run_seed_scenario(0);
    CHECK_EQ(a.discards, 0);
    CHECK_EQ(a.made, SEED_MAX);
    seed_result b = run_seed_scenario(0); /* the same, to the acquisition */
    CHECK_EQ(a.acquisitions, b.acquisitions);
    CHECK_EQ(a.hash, b.hash);
    printf("    %ld acquisitions, at most %d out\n", a.acquisitions, SEED_MAX);
}

TEST(seed_resource_pool_scenario_with_broken_resources)
{
    seed_result a = run_seed_scenario(4);
    CHECK_GT(a.discards, 0);
    seed_result b = run_seed_scenario(4);
    CHECK_EQ(a.acquisitions, b.acquisitions);
    CHECK_EQ(a.hash, b.hash);
    printf("    %ld acquisitions, %ld discarded, %d made\n", a.acquisitions, a.discards, a.made);
}

/* ========================================================================
 * The loop's destruction
 * ===================================================================== */

/* At 17: H holds r0, W1 makes r2 in the slot D's discard (at 15) freed,
 * W2 and W3 wait. The loop's destruction cancels them all: H's hold ends
 * and it releases, W1's create fails, the waits end; nothing leaks. */
TEST(loop_destruction_with_waiters_and_tasks_creating)
{
    factory_reset(COSYNC_MS(5));
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 2, &fops, &F));
    cosync_loop *loop = new_loop();
    client h = mkc(&p, "H"), d = mkc(&p, "D"), w1 = mkc(&p, "W1"), w2 = mkc(&p, "W2"),
           w3 = mkc(&p, "W3");
    h.hold = COSYNC_FOREVER;
    d.hold = COSYNC_MS(10);
    d.after = DISCARD;
    w1.delay = COSYNC_MS(1);
    w2.delay = COSYNC_MS(2);
    w3.delay = COSYNC_MS(3);
    client *all[5] = {&h, &d, &w1, &w2, &w3};
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, client_fn, all[i], NULL));
    cosync_task stop;
    CHECK_OK(cosync_loop_spawn(loop, &stop, stopper_fn, NULL, NULL));
    CHECK_OK(cosync_loop_run(loop, stop, NULL, NULL));
    /* run to 17 */
    client s = mkc(&p, "S");
    s.delay = COSYNC_MS(17);
    s.deadline = 0; /* it arrives, and would wait: EAGAIN */
    CHECK_OK(cosync_loop_spawn(loop, &stop, client_fn, &s, NULL));
    CHECK_OK(cosync_loop_run(loop, stop, NULL, NULL));
    CHECK_ERR(s.rc, COSYNC_EAGAIN);
    CHECK_TRACE("H?@0 mk0@0 D?@0 mk1@0 W1?@1 W2?@2 W3?@3 ok0@5 H=r0@5 ok1@5 D=r1@5 D~r1@15 "
                "end1@15 mk2@15 S?@17 S!EAGAIN@17");
    CHECK_STATS(&p, 2, 0, 1, 2);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(h.hold_rc, COSYNC_ECANCELED);
    CHECK_OK(h.back_rc);
    CHECK_ERR(w1.rc, COSYNC_ECANCELED);
    CHECK_ERR(F.sleep_rc[2], COSYNC_ECANCELED);
    CHECK_ERR(w2.rc, COSYNC_ECANCELED);
    CHECK_ERR(w3.rc, COSYNC_ECANCELED);
    CHECK_STATS(&p, 1, 1, 0, 0);
    CHECK_EQ(F.live, 1);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK(ended(0));
    CHECK_EQ(F.live, 0);
}

/* D stops the run, then hands r1 to W1 and r3's slot to W2: neither has
 * run when the loop is destroyed (they became ready after the stop). C
 * makes one (slowly), W3 waits. The destruction cancels them all: W1
 * keeps r1 (its acquire succeeded) and gives it back when its hold is
 * cancelled, W2's and C's creates get the cancel; nothing leaks. */
static int stop_and_hand_over(void *arg, void **result)
{
    (void)result;
    cosync_pool *p = arg;
    res *a, *b;
    CHECK_OK(acq_tag(p, COSYNC_FOREVER, &a, "D"));
    CHECK_OK(acq_tag(p, COSYNC_FOREVER, &b, "D"));
    CHECK_OK(cosync_sleep_until(AT(20)));
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    CHECK_OK(give_back(p, a, false, "D"));
    CHECK_OK(give_back(p, b, true, "D"));
    return 0;
}

TEST(loop_destruction_with_grants_not_yet_run)
{
    factory_reset(COSYNC_MS(5));
    F.slow[2] = COSYNC_MS(100);
    trace_reset();
    cosync_pool p;
    CHECK_OK(cosync_pool_init(&p, 4, &fops, &F));
    cosync_loop *loop = new_loop();
    client h = mkc(&p, "H"), c = mkc(&p, "C"), w1 = mkc(&p, "W1"), w2 = mkc(&p, "W2"),
           w3 = mkc(&p, "W3");
    h.hold = w1.hold = COSYNC_FOREVER;
    w1.delay = COSYNC_MS(6);
    w2.delay = COSYNC_MS(7);
    w3.delay = COSYNC_MS(8);
    CHECK_OK(cosync_loop_spawn(loop, NULL, client_fn, &h, NULL));
    CHECK_OK(cosync_loop_spawn(loop, NULL, stop_and_hand_over, &p, NULL));
    client *rest[4] = {&c, &w1, &w2, &w3};
    for (int i = 0; i < 4; i++)
        CHECK_OK(cosync_loop_spawn(loop, NULL, client_fn, rest[i], NULL));
    CHECK_ERR(cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    CHECK_TRACE("H?@0 mk0@0 mk1@0 C?@0 mk2@0 ok0@5 H=r0@5 ok1@5 D=r1@5 mk3@5 W1?@6 W2?@7 W3?@8 "
                "ok3@10 D=r3@10 D-r1@20 D~r3@20 end3@20");
    CHECK_EQ(w1.rc, 1); /* handed r1, not run yet */
    CHECK_EQ(w2.rc, 1); /* handed a slot, not run yet */
    CHECK_STATS(&p, 4, 0, 2, 1);
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_ERR(h.hold_rc, COSYNC_ECANCELED);
    CHECK_OK(h.back_rc);
    CHECK_OK(w1.rc);
    CHECK_EQ(w1.r->id, 1);
    CHECK_ERR(w1.hold_rc, COSYNC_ECANCELED);
    CHECK_OK(w1.back_rc);
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK_ERR(F.sleep_rc[2], COSYNC_ECANCELED);
    CHECK_ERR(w2.rc, COSYNC_ECANCELED);
    CHECK_EQ(F.creator[4], w2.tid);
    CHECK_ERR(F.sleep_rc[4], COSYNC_ECANCELED);
    CHECK_ERR(w3.rc, COSYNC_ECANCELED);
    CHECK_EQ(F.started, 5);
    CHECK_STATS(&p, 2, 2, 0, 0);
    CHECK_OK(cosync_pool_destroy(&p));
    CHECK(ended(0) && ended(1) && ended(3));
    CHECK_EQ(F.live, 0);
}

int main(void)
{
    /* init */
    RUN(init_validates_and_leaves_the_pool_untouched);
    RUN(init_makes_nothing_and_copies_the_ops);
    RUN(init_allows_a_null_destroy);
    RUN(init_fault_injection_its_one_allocation);
    /* making, reuse, order */
    RUN(lazy_creation_in_the_acquiring_task_and_lifo_reuse);
    RUN(fifo_grants_in_arrival_order_at_exact_times);
    RUN(no_barging_by_the_releaser);
    RUN(no_barging_by_a_newcomer_between_the_release_and_the_waiter);
    RUN(no_barging_by_a_newcomer_between_the_discard_and_the_waiter);
    /* discard, failures */
    RUN(discard_destroys_and_hands_the_first_waiter_a_slot);
    RUN(discard_with_nobody_waiting_frees_the_slot);
    RUN(create_failure_returns_the_creates_code);
    RUN(create_failure_hands_the_slot_to_the_next_waiter);
    RUN(create_failure_after_a_discard_hands_the_slot_on);
    RUN(create_failing_for_every_waiter_in_turn);
    RUN(create_failing_at_once_for_every_waiter_in_turn);
    /* deadlines, cancellation */
    RUN(deadlines_try_form_and_exact_timeouts);
    RUN(timed_out_waiter_at_head_middle_tail);
    RUN(cancelled_waiter_at_head_middle_tail);
    RUN(waiter_granted_a_resource_then_cancelled_keeps_it);
    RUN(waiter_granted_a_slot_then_cancelled_passes_the_slot_on);
    RUN(waiter_granted_a_slot_then_cancelled_with_a_create_that_does_not_suspend);
    RUN(cancellation_during_create);
    RUN(pending_cancellation_at_the_acquire);
    /* close */
    RUN(close_ends_waiters_and_destroys_resources_as_they_come_back);
    RUN(close_destroys_idle_resources_at_once);
    RUN(close_during_a_create_destroys_what_it_makes);
    RUN(close_keeps_the_grants_already_made);
    RUN(close_then_the_create_fails);
    /* misuse */
    RUN(misuse_eperm_ebusy_and_calls_after_destroy);
    RUN(misuse_null_arguments_and_a_zeroed_pool);
    RUN(misuse_outside_a_task);
    RUN(misuse_a_task_of_another_loop_while_one_waits);
    RUN(misuse_a_dense_task_waiting_on_a_pool_in_its_own_stack);
    RUN(deadlock_report_describes_the_pool);
    /* the seed, and the loop's end */
    RUN(seed_resource_pool_scenario_keeps_its_invariants);
    RUN(seed_resource_pool_scenario_with_broken_resources);
    RUN(loop_destruction_with_waiters_and_tasks_creating);
    RUN(loop_destruction_with_grants_not_yet_run);
    return 0;
}
