/*
 * test_queue.c - cosync_queue: asyncio's Queue, LifoQueue and PriorityQueue.
 *
 * The cases of CPython's Lib/test/test_asyncio/test_queues.py (3.11, and the
 * shutdown tests of 3.13) are ported under their names, for every queue kind
 * where they apply; then the cases asyncio gets wrong or does not test:
 * grants kept or handed on under cancellation, strict FIFO, shutdown with
 * work in flight, allocation failure, a million items through a queue of one.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fault.h"
#include "harness.h"

static int64_t t0;
#define AT(ms) (t0 + COSYNC_MS(ms))

/* Run @fn once per queue kind (its arg is the kind). */
#define EACH_KIND(fn)                                                                              \
    do {                                                                                           \
        for (int k__ = 0; k__ < 3; k__++) {                                                        \
            CHECKPOINT_RESET();                                                                    \
            CHECK_OK(run_main(fn, (void *)(intptr_t)k__));                                         \
        }                                                                                          \
    } while (0)

/* ------------------------------------------------------------------------
 * Queues of int64_t, of any kind
 * ---------------------------------------------------------------------- */

enum { FIFO = COSYNC_QUEUE_FIFO, LIFO = COSYNC_QUEUE_LIFO, PRIO = COSYNC_QUEUE_PRIORITY };

static long cmp_calls;

static int cmp_i64(const void *a, const void *b, void *arg)
{
    CHECK(arg == &cmp_calls);
    cmp_calls++;
    int64_t x, y;
    memcpy(&x, a, sizeof x);
    memcpy(&y, b, sizeof y);
    return (x > y) - (x < y);
}

static void qinit(cosync_queue *q, int kind, size_t maxsize)
{
    switch (kind) {
    case FIFO:
        CHECK_OK(cosync_queue_init(q, sizeof(int64_t), maxsize));
        break;
    case LIFO:
        CHECK_OK(cosync_lifoqueue_init(q, sizeof(int64_t), maxsize));
        break;
    default:
        CHECK_OK(cosync_priorityqueue_init(q, sizeof(int64_t), maxsize, cmp_i64, &cmp_calls));
    }
}

static int kind_of(void *arg)
{
    return (int)(intptr_t)arg;
}

static void put_now(cosync_queue *q, int64_t v)
{
    CHECK_OK(cosync_queue_put(q, &v, 0));
}

static int64_t get_now(cosync_queue *q)
{
    int64_t v = -12345;
    CHECK_OK(cosync_queue_get(q, &v, 0));
    return v;
}

static int64_t get_wait(cosync_queue *q)
{
    int64_t v = -12345;
    CHECK_OK(cosync_queue_get(q, &v, COSYNC_FOREVER));
    return v;
}

static void put_wait(cosync_queue *q, int64_t v)
{
    CHECK_OK(cosync_queue_put(q, &v, COSYNC_FOREVER));
}

/* Nobody waits and nothing is reserved. */
static void check_idle(const cosync_queue *q)
{
    CHECK_EQ(q->getters.n, 0);
    CHECK_EQ(q->putters.n, 0);
    CHECK_EQ(q->joiners.n, 0);
    CHECK_EQ(q->reserved_items, 0);
    CHECK_EQ(q->reserved_slots, 0);
    /* and the inline paths are open again where they apply */
    bool fifo = q->kind == COSYNC_QUEUE_FIFO && !q->dead && q->gap == 0;
    CHECK_EQ(q->get_above, fifo ? 0 : SIZE_MAX);
    CHECK_EQ(q->put_below, fifo && !q->shutdown ? q->capacity : 0);
}

static void destroy_ok(cosync_queue *q)
{
    check_idle(q);
    CHECK_OK(cosync_queue_destroy(q));
}

/* One queue operation in a task of its own, with what it observed. */
enum { OP_PUT, OP_GET, OP_JOIN, OP_PUT_MANY, OP_GET_MANY };

typedef struct op {
    cosync_queue *q;
    int what;
    int64_t val;      /* OP_PUT */
    int64_t deadline; /* COSYNC_FOREVER by default */
    int checkpoint;   /* reached when the op has returned; < 0: none */
    bool yield_after; /* then yield once, and record what the yield returned */
    int64_t *items;   /* OP_PUT_MANY, OP_GET_MANY */
    size_t n;
    /* observed */
    int rc;
    int64_t got;
    int64_t at;
    int after;
    bool done;
} op;

static op mkop(cosync_queue *q, int what, int64_t val)
{
    return (op){.q = q,
                .what = what,
                .val = val,
                .deadline = COSYNC_FOREVER,
                .checkpoint = -1,
                .rc = 12345,
                .got = -1,
                .after = 12345};
}

static int op_fn(void *arg, void **result)
{
    (void)result;
    op *o = arg;
    switch (o->what) {
    case OP_PUT:
        o->rc = cosync_queue_put(o->q, &o->val, o->deadline);
        break;
    case OP_GET:
        o->rc = cosync_queue_get(o->q, &o->got, o->deadline);
        break;
    case OP_JOIN:
        o->rc = cosync_queue_join(o->q, o->deadline);
        break;
    case OP_PUT_MANY:
        o->rc = cosync_queue_put_many(o->q, o->items, o->n, o->deadline);
        break;
    default:
        o->rc = cosync_queue_get_many(o->q, o->items, o->n, o->deadline);
    }
    o->at = cosync_now();
    o->done = true;
    if (o->checkpoint >= 0)
        CHECKPOINT(o->checkpoint);
    if (o->yield_after)
        o->after = cosync_yield();
    return 0;
}

static cosync_task go(op *o)
{
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, op_fn, o, NULL));
    return t;
}

/* ------------------------------------------------------------------------
 * QueueBasicTests
 * ---------------------------------------------------------------------- */

static int empty_main(void *arg, void **result)
{
    (void)result;
    /* test_empty */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    CHECK(cosync_queue_empty(&q));
    put_wait(&q, 1);
    CHECK(!cosync_queue_empty(&q));
    CHECK_EQ(get_wait(&q), 1);
    CHECK(cosync_queue_empty(&q));
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    destroy_ok(&q);
    return 0;
}

TEST(test_empty)
{
    EACH_KIND(empty_main);
}

static int full_main(void *arg, void **result)
{
    (void)result;
    /* test_full */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    CHECK(!cosync_queue_full(&q));
    CHECK_EQ(cosync_queue_maxsize(&q), 0);
    for (int i = 0; i < 1000; i++)
        put_now(&q, i);
    CHECK(!cosync_queue_full(&q)); /* never, unbounded */
    destroy_ok(&q);

    qinit(&q, kind_of(arg), 1);
    CHECK_EQ(cosync_queue_maxsize(&q), 1);
    CHECK(!cosync_queue_full(&q));
    put_wait(&q, 1);
    CHECK(cosync_queue_full(&q));
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    destroy_ok(&q);
    return 0;
}

TEST(test_full)
{
    EACH_KIND(full_main);
}

/* The order [1, 3, 2] comes out in, per kind. */
static const int64_t order_out[3][3] = {{1, 3, 2}, {2, 3, 1}, {1, 2, 3}};

static int order_main(void *arg, void **result)
{
    (void)result;
    /* test_order of QueueBasicTests, LifoQueueTests, PriorityQueueTests */
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);
    put_wait(&q, 1);
    put_wait(&q, 3);
    put_wait(&q, 2);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(get_wait(&q), order_out[kind][i]);
    destroy_ok(&q);
    return 0;
}

TEST(test_order)
{
    EACH_KIND(order_main);
}

typedef struct maxsize_ctx {
    cosync_queue *q;
    int64_t have_been_put[3];
    int n;
} maxsize_ctx;

static int maxsize_putter(void *arg, void **result)
{
    (void)result;
    maxsize_ctx *m = arg;
    for (int i = 0; i < 3; i++) {
        put_wait(m->q, i);
        m->have_been_put[m->n++] = i;
    }
    return 0;
}

static int maxsize_main(void *arg, void **result)
{
    (void)result;
    /* test_maxsize */
    int kind = kind_of(arg);
    static const int64_t out[3][3] = {{0, 1, 2}, {1, 2, 0}, {0, 1, 2}};
    cosync_queue q;
    qinit(&q, kind, 2);
    CHECK_EQ(cosync_queue_maxsize(&q), 2);
    maxsize_ctx m = {.q = &q};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, maxsize_putter, &m, NULL));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_yield());
    /* the putter is blocked after putting two items */
    CHECK_EQ(m.n, 2);
    CHECK(cosync_queue_full(&q));
    CHECK_EQ(get_wait(&q), out[kind][0]);
    /* let the putter resume and put the last item */
    CHECK_OK(cosync_yield());
    CHECK_EQ(m.n, 3);
    CHECK_EQ(get_wait(&q), out[kind][1]);
    CHECK_EQ(get_wait(&q), out[kind][2]);
    CHECK(cosync_task_done(t));
    join_ok(t);
    destroy_ok(&q);
    return 0;
}

TEST(test_maxsize)
{
    EACH_KIND(maxsize_main);
}

/* ------------------------------------------------------------------------
 * QueueGetTests
 * ---------------------------------------------------------------------- */

static int blocking_get_main(void *arg, void **result)
{
    (void)result;
    /* test_blocking_get, test_nonblocking_get, test_nonblocking_get_exception */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    put_now(&q, 1);
    CHECK_EQ(get_wait(&q), 1);
    put_now(&q, 1);
    CHECK_EQ(get_now(&q), 1);
    int64_t v = 77;
    CHECK_ERR(cosync_queue_get(&q, &v, 0), COSYNC_EAGAIN);
    CHECK_EQ(v, 77);
    /* a deadline long passed: the same as 0, but ETIMEDOUT */
    CHECK_ERR(cosync_queue_get(&q, &v, 1), COSYNC_ETIMEDOUT);
    /* an item there: any deadline succeeds */
    put_now(&q, 5);
    CHECK_OK(cosync_queue_get(&q, &v, 1));
    CHECK_EQ(v, 5);
    destroy_ok(&q);
    return 0;
}

TEST(test_blocking_get)
{
    EACH_KIND(blocking_get_main);
}

static int get_with_putters_main(void *arg, void **result)
{
    (void)result;
    /* test_get_with_putters: a get wakes a waiting putter */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_wait(&q, 1);
    op p = mkop(&q, OP_PUT, 2);
    cosync_task t = go(&p);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 1);
    CHECK_EQ(get_wait(&q), 1);
    CHECK_EQ(q.putters.n, 0); /* granted a slot */
    join_ok(t);
    CHECK_OK(p.rc);
    CHECK_EQ(get_now(&q), 2);
    destroy_ok(&q);
    return 0;
}

TEST(test_get_with_putters)
{
    EACH_KIND(get_with_putters_main);
}

static int later_put_fn(void *arg, void **result)
{
    (void)result;
    op *o = arg;
    CHECK_OK(cosync_sleep(o->deadline));
    o->rc = cosync_queue_put(o->q, &o->val, 0);
    return 0;
}

static int blocking_get_wait_main(void *arg, void **result)
{
    (void)result;
    /* test_blocking_get_wait */
    t0 = cosync_now();
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield()); /* started */
    CHECK(!g.done);
    op later = mkop(&q, OP_PUT, 1);
    later.deadline = COSYNC_MS(10); /* the delay */
    cosync_task l;
    CHECK_OK(cosync_task_spawn(&l, later_put_fn, &later, NULL));
    join_ok(t);
    CHECK(g.done);
    CHECK_OK(g.rc);
    CHECK_EQ(g.got, 1);
    CHECK_EQ(g.at, AT(10));
    join_ok(l);
    CHECK_OK(later.rc);
    destroy_ok(&q);
    return 0;
}

TEST(test_blocking_get_wait)
{
    EACH_KIND(blocking_get_wait_main);
}

static int get_cancelled_race_main(void *arg, void **result)
{
    (void)result;
    /* test_get_cancelled_race */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    op g1 = mkop(&q, OP_GET, 0), g2 = mkop(&q, OP_GET, 0);
    cosync_task t1 = go(&g1), t2 = go(&g2);
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_cancel(t1));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t1));
    CHECK_ERR(g1.rc, COSYNC_ECANCELED);
    put_wait(&q, 'a');
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t2));
    CHECK_ERR(join_status(t1), COSYNC_ECANCELED);
    join_ok(t2);
    CHECK_OK(g2.rc);
    CHECK_EQ(g2.got, 'a');
    destroy_ok(&q);
    return 0;
}

TEST(test_get_cancelled_race)
{
    EACH_KIND(get_cancelled_race_main);
}

static int get_with_waiting_putters_main(void *arg, void **result)
{
    (void)result;
    /* test_get_with_waiting_putters */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    op a = mkop(&q, OP_PUT, 'a'), b = mkop(&q, OP_PUT, 'b');
    cosync_task ta = go(&a), tb = go(&b);
    CHECK_EQ(get_wait(&q), 'a');
    CHECK_EQ(get_wait(&q), 'b');
    join_ok(ta);
    join_ok(tb);
    CHECK_OK(a.rc);
    CHECK_OK(b.rc);
    destroy_ok(&q);
    return 0;
}

TEST(test_get_with_waiting_putters)
{
    EACH_KIND(get_with_waiting_putters_main);
}

typedef struct pc_ctx {
    cosync_queue *q;
    int n;
} pc_ctx;

static int pc_producer(void *arg, void **result)
{
    (void)result;
    pc_ctx *c = arg;
    for (int i = 0; i < c->n; i++)
        put_wait(c->q, i);
    return 0;
}

static int pc_consumer(void *arg, void **result)
{
    (void)result;
    pc_ctx *c = arg;
    for (int i = 0; i < c->n; i++)
        CHECK_EQ(get_wait(c->q), i);
    return 0;
}

static int why_are_getters_waiting_main(void *arg, void **result)
{
    (void)result;
    /* test_why_are_getters_waiting */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    pc_ctx c = {.q = &q, .n = 5};
    cosync_task t[2];
    CHECK_OK(cosync_task_spawn(&t[0], pc_producer, &c, NULL));
    CHECK_OK(cosync_task_spawn(&t[1], pc_consumer, &c, NULL));
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    destroy_ok(&q);
    return 0;
}

TEST(test_why_are_getters_waiting)
{
    EACH_KIND(why_are_getters_waiting_main);
}

static int cancelled_getters_main(void *arg, void **result)
{
    (void)result;
    /* test_cancelled_getters_not_being_held_in_self_getters */
    t0 = cosync_now();
    cosync_queue q;
    qinit(&q, kind_of(arg), 5);
    int64_t v;
    CHECK_ERR(cosync_queue_get(&q, &v, AT(100)), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now(), AT(100));
    CHECK_EQ(q.getters.n, 0);
    destroy_ok(&q);
    return 0;
}

TEST(test_cancelled_getters_not_being_held_in_self_getters)
{
    EACH_KIND(cancelled_getters_main);
}

/* ------------------------------------------------------------------------
 * QueuePutTests
 * ---------------------------------------------------------------------- */

static int blocking_put_main(void *arg, void **result)
{
    (void)result;
    /* test_blocking_put, test_nonblocking_put, test_nonblocking_put_exception */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    put_wait(&q, 1); /* no maxsize: won't block */
    CHECK_EQ(get_wait(&q), 1);
    put_now(&q, 1);
    CHECK_EQ(get_now(&q), 1);
    destroy_ok(&q);

    qinit(&q, kind_of(arg), 1);
    put_now(&q, 1);
    int64_t v = 2;
    CHECK_ERR(cosync_queue_put(&q, &v, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_queue_put(&q, &v, 1), COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_EQ(get_now(&q), 1);
    destroy_ok(&q);
    return 0;
}

TEST(test_blocking_put)
{
    EACH_KIND(blocking_put_main);
}

static int later_get_fn(void *arg, void **result)
{
    (void)result;
    op *o = arg;
    CHECK_OK(cosync_sleep(o->deadline));
    o->rc = cosync_queue_get(o->q, &o->got, 0);
    return 0;
}

typedef struct put_wait_ctx {
    cosync_queue *q;
    cosync_event started;
    bool finished;
    int64_t at;
} put_wait_ctx;

static int queue_put_fn(void *arg, void **result)
{
    (void)result;
    put_wait_ctx *c = arg;
    CHECK_OK(cosync_event_set(&c->started));
    put_wait(c->q, 1);
    put_wait(c->q, 2);
    c->finished = true;
    c->at = cosync_now();
    return 0;
}

static int blocking_put_wait_main(void *arg, void **result)
{
    (void)result;
    /* test_blocking_put_wait */
    t0 = cosync_now();
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_wait_ctx c = {.q = &q};
    cosync_event_init(&c.started);
    op later = mkop(&q, OP_GET, 0);
    later.deadline = COSYNC_MS(10);
    cosync_task l, p;
    CHECK_OK(cosync_task_spawn(&l, later_get_fn, &later, NULL));
    CHECK_OK(cosync_task_spawn(&p, queue_put_fn, &c, NULL));
    CHECK_OK(cosync_event_wait(&c.started, COSYNC_FOREVER));
    CHECK(!c.finished);
    join_ok(p);
    CHECK(c.finished);
    CHECK_EQ(c.at, AT(10));
    join_ok(l);
    CHECK_OK(later.rc);
    CHECK_EQ(later.got, 1);
    CHECK_EQ(get_now(&q), 2);
    destroy_ok(&q);
    return 0;
}

TEST(test_blocking_put_wait)
{
    EACH_KIND(blocking_put_wait_main);
}

static int drop_one_pending_reader_main(void *arg, void **result)
{
    (void)result;
    /* test_get_cancel_drop_one_pending_reader: the reader is cancelled after
     * the item was handed to it; the item stays at the front */
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);
    op r = mkop(&q, OP_GET, 0);
    cosync_task t = go(&r);
    CHECK_OK(cosync_yield());
    put_now(&q, 1); /* handed to r */
    put_now(&q, 2);
    CHECK_EQ(q.reserved_items, 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_EQ(q.reserved_items, 0); /* given back at once */
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(r.rc, COSYNC_ECANCELED);
    CHECK_EQ(r.got, -1);
    /* try again: if we get 2 (FIFO), 1 got dropped */
    r = mkop(&q, OP_GET, 0);
    t = go(&r);
    join_ok(t);
    CHECK_OK(r.rc);
    CHECK_EQ(r.got, kind == LIFO ? 2 : 1);
    CHECK_EQ(get_now(&q), kind == LIFO ? 1 : 2);
    CHECK(cosync_queue_empty(&q));
    destroy_ok(&q);
    return 0;
}

TEST(test_get_cancel_drop_one_pending_reader)
{
    EACH_KIND(drop_one_pending_reader_main);
}

static int drop_many_pending_readers_main(void *arg, void **result)
{
    (void)result;
    /* test_get_cancel_drop_many_pending_readers: reader1's item goes to
     * reader3 */
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);
    op r[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        r[i] = mkop(&q, OP_GET, 0);
        t[i] = go(&r[i]);
    }
    CHECK_OK(cosync_yield());
    put_now(&q, 1);
    put_now(&q, 2);
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(q.getters.n, 0); /* reader3 has reader1's item */
    CHECK_EQ(q.reserved_items, 2);
    CHECK_ERR(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(r[0].rc, COSYNC_ECANCELED);
    join_ok(t[2]);
    join_ok(t[1]);
    CHECK_OK(r[1].rc);
    CHECK_OK(r[2].rc);
    CHECK(r[1].got + r[2].got == 3 && r[1].got != r[2].got);
    if (kind != LIFO) {
        CHECK_EQ(r[1].got, 1); /* the order they were woken in */
        CHECK_EQ(r[2].got, 2);
    }
    destroy_ok(&q);
    return 0;
}

TEST(test_get_cancel_drop_many_pending_readers)
{
    EACH_KIND(drop_many_pending_readers_main);
}

static int put_cancel_drop_main(void *arg, void **result)
{
    (void)result;
    /* test_put_cancel_drop: the writer is cancelled after it was given a
     * slot: in cosync its put completes (asyncio: it raises and the test
     * puts again); either way 2 arrives once */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 1);
    op w = mkop(&q, OP_PUT, 2);
    cosync_task t = go(&w);
    CHECK_OK(cosync_yield());
    CHECK_EQ(get_now(&q), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED); /* cancelled, never delivered */
    CHECK_OK(w.rc);
    CHECK_EQ(get_now(&q), 2);
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    destroy_ok(&q);
    return 0;
}

TEST(test_put_cancel_drop)
{
    EACH_KIND(put_cancel_drop_main);
}

static int put_cancelled_main(void *arg, void **result)
{
    (void)result;
    /* test_put_cancelled */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    op p = mkop(&q, OP_PUT, 1);
    cosync_task t = go(&p);
    CHECK_EQ(get_wait(&q), 1);
    CHECK(cosync_task_done(t));
    join_ok(t);
    CHECK_OK(p.rc);
    destroy_ok(&q);
    return 0;
}

TEST(test_put_cancelled)
{
    EACH_KIND(put_cancelled_main);
}

static int put_cancelled_race_main(void *arg, void **result)
{
    (void)result;
    /* test_put_cancelled_race */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    op a = mkop(&q, OP_PUT, 'a'), b = mkop(&q, OP_PUT, 'b'), c = mkop(&q, OP_PUT, 'X');
    cosync_task ta = go(&a), tb = go(&b), tc = go(&c);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(ta));
    CHECK(!cosync_task_done(tb));
    CHECK_OK(cosync_task_cancel(tc));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(tc));
    CHECK_ERR(c.rc, COSYNC_ECANCELED);
    CHECK_EQ(get_now(&q), 'a');
    CHECK_OK(cosync_yield());
    CHECK_EQ(get_now(&q), 'b');
    join_ok(tb);
    join_ok(ta);
    CHECK_ERR(join_status(tc), COSYNC_ECANCELED);
    CHECK(cosync_queue_empty(&q));
    destroy_ok(&q);
    return 0;
}

TEST(test_put_cancelled_race)
{
    EACH_KIND(put_cancelled_race_main);
}

static int put_with_waiting_getters_main(void *arg, void **result)
{
    (void)result;
    /* test_put_with_waiting_getters */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield());
    put_wait(&q, 'a');
    join_ok(t);
    CHECK_EQ(g.got, 'a');
    destroy_ok(&q);
    return 0;
}

TEST(test_put_with_waiting_getters)
{
    EACH_KIND(put_with_waiting_getters_main);
}

static int wapw_getter(void *arg, void **result)
{
    (void)result;
    cosync_queue *q = arg;
    CHECK_OK(cosync_yield());
    size_t num = cosync_queue_qsize(q);
    for (size_t i = 0; i < num; i++)
        get_now(q);
    return 0;
}

static int why_are_putters_waiting_main(void *arg, void **result)
{
    (void)result;
    /* test_why_are_putters_waiting */
    cosync_queue q;
    qinit(&q, kind_of(arg), 2);
    cosync_task t[5];
    op p[4];
    CHECK_OK(cosync_task_spawn(&t[0], wapw_getter, &q, NULL));
    for (int i = 0; i < 4; i++) {
        p[i] = mkop(&q, OP_PUT, i);
        t[1 + i] = go(&p[i]);
    }
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 4; i++)
        CHECK_OK(p[i].rc);
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    destroy_ok(&q);
    return 0;
}

TEST(test_why_are_putters_waiting)
{
    EACH_KIND(why_are_putters_waiting_main);
}

static int cancelled_puts_main(void *arg, void **result)
{
    (void)result;
    /* test_cancelled_puts_not_being_held_in_self_putters */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 1);
    op p = mkop(&q, OP_PUT, 1);
    cosync_task t = go(&p);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(p.rc, COSYNC_ECANCELED);
    CHECK_EQ(q.putters.n, 0);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    get_now(&q);
    destroy_ok(&q);
    return 0;
}

TEST(test_cancelled_puts_not_being_held_in_self_putters)
{
    EACH_KIND(cancelled_puts_main);
}

static int cancelled_put_silence_main(void *arg, void **result)
{
    (void)result;
    /* test_cancelled_put_silence_value_error_exception: a get gives the
     * waiting putter a slot, then the putter is cancelled before it runs.
     * asyncio raises CancelledError and drops the put; cosync keeps the
     * grant: the put succeeds and the cancellation comes at the next
     * suspension. */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 1);
    op p = mkop(&q, OP_PUT, 7);
    p.yield_after = true;
    cosync_task t = go(&p);
    CHECK_OK(cosync_yield());
    CHECK_EQ(get_now(&q), 1);
    CHECK_OK(cosync_task_cancel(t));
    CHECK(cosync_queue_full(&q)); /* the slot is the putter's */
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_OK(p.rc);
    CHECK_ERR(p.after, COSYNC_ECANCELED);
    CHECK_EQ(get_now(&q), 7);
    destroy_ok(&q);
    return 0;
}

TEST(test_cancelled_put_silence_value_error_exception)
{
    EACH_KIND(cancelled_put_silence_main);
}

/* ------------------------------------------------------------------------
 * _QueueJoinTestMixin (Queue, LifoQueue, PriorityQueue)
 * ---------------------------------------------------------------------- */

static int task_done_underflow_main(void *arg, void **result)
{
    (void)result;
    /* test_task_done_underflow */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    put_now(&q, 1);
    CHECK_OK(cosync_queue_task_done(&q)); /* before the get: allowed, as in asyncio */
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_queue_join(&q, 0));
    get_now(&q);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    destroy_ok(&q);
    return 0;
}

TEST(test_task_done_underflow)
{
    EACH_KIND(task_done_underflow_main);
}

typedef struct worker_ctx {
    cosync_queue *q;
    bool running;
    int64_t accumulator;
} worker_ctx;

static int td_worker(void *arg, void **result)
{
    (void)result;
    worker_ctx *c = arg;
    while (c->running) {
        int64_t item = get_wait(c->q);
        c->accumulator += item;
        CHECK_OK(cosync_queue_task_done(c->q));
    }
    return 0;
}

static int task_done_main(void *arg, void **result)
{
    (void)result;
    /* test_task_done: two workers; join returns when all are processed */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    for (int i = 0; i < 100; i++)
        put_now(&q, i);
    worker_ctx c = {.q = &q, .running = true};
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&t[i], td_worker, &c, NULL));
    CHECK_OK(cosync_queue_join(&q, COSYNC_FOREVER));
    CHECK_EQ(c.accumulator, 4950);
    CHECK(cosync_queue_empty(&q));
    /* close the workers */
    c.running = false;
    for (int i = 0; i < 2; i++)
        put_now(&q, 0);
    CHECK_OK(cosync_gather(t, 2, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_queue_join(&q, 0));
    destroy_ok(&q);
    return 0;
}

TEST(test_task_done)
{
    EACH_KIND(task_done_main);
}

static int join_empty_queue_main(void *arg, void **result)
{
    (void)result;
    /* test_join_empty_queue: join returns at once, before anything else */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    cosync_task o;
    CHECK_OK(cosync_task_spawn(&o, checkpoint_arg, (void *)1, NULL));
    CHECKPOINT(0);
    CHECK_OK(cosync_queue_join(&q, COSYNC_FOREVER));
    CHECK_OK(cosync_queue_join(&q, COSYNC_FOREVER));
    CHECK_OK(cosync_queue_join(&q, 0));
    join_ok(o);
    CHECKPOINTS_DONE(2);
    destroy_ok(&q);
    return 0;
}

TEST(test_join_empty_queue)
{
    EACH_KIND(join_empty_queue_main);
}

/* ------------------------------------------------------------------------
 * _QueueShutdownTestMixin (Python 3.13), for the three kinds
 * ---------------------------------------------------------------------- */

static void check_shut(cosync_queue *q)
{
    int64_t v = 9;
    CHECK_ERR(cosync_queue_put(q, &v, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_put(q, &v, 0), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_put_many(q, &v, 1, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_get(q, &v, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_get(q, &v, 0), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_get_many(q, &v, 1, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
    /* a request for nothing is refused alike by both */
    CHECK_ERR(cosync_queue_put_many(q, &v, 0, 0), COSYNC_ESHUTDOWN);
    CHECK_ERR(cosync_queue_get_many(q, &v, 0, 0), COSYNC_ESHUTDOWN);
    CHECK_EQ(v, 9);
    CHECK(cosync_queue_is_shutdown(q));
}

static int shutdown_empty_main(void *arg, void **result)
{
    (void)result;
    /* test_shutdown_empty */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    CHECK(!cosync_queue_is_shutdown(&q));
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield()); /* the get is pending before the shutdown */
    CHECK_OK(cosync_queue_shutdown(&q, false));
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_OK(cosync_queue_join(&q, COSYNC_FOREVER));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(t));
    join_ok(t);
    CHECK_ERR(g.rc, COSYNC_ESHUTDOWN);
    check_shut(&q);
    destroy_ok(&q);
    return 0;
}

TEST(test_shutdown_empty)
{
    EACH_KIND(shutdown_empty_main);
}

static int shutdown_nonempty_main(void *arg, void **result)
{
    (void)result;
    /* test_shutdown_nonempty */
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 100);
    op j = mkop(&q, OP_JOIN, 0), p = mkop(&q, OP_PUT, 200);
    cosync_task tj = go(&j), tp = go(&p);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(tp));
    CHECK_OK(cosync_queue_shutdown(&q, false)); /* unfinished tasks: 1 -> 1 */
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(tp));
    CHECK_ERR(p.rc, COSYNC_ESHUTDOWN);
    /* get succeeds on the item left */
    CHECK_EQ(get_wait(&q), 100);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(tj));
    check_shut(&q);
    /* one unfinished task; then join succeeds */
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(tj));
    CHECK_OK(j.rc);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    join_ok(tj);
    join_ok(tp);
    destroy_ok(&q);
    return 0;
}

TEST(test_shutdown_nonempty)
{
    EACH_KIND(shutdown_nonempty_main);
}

static int shutdown_immediate_main(void *arg, void **result)
{
    (void)result;
    /* test_shutdown_immediate */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    put_now(&q, 1);
    op j = mkop(&q, OP_JOIN, 0);
    cosync_task tj = go(&j);
    CHECK_OK(cosync_yield());                  /* join is waiting */
    CHECK_OK(cosync_queue_shutdown(&q, true)); /* unfinished tasks: 1 -> 0 */
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(tj));
    CHECK_OK(j.rc);
    join_ok(tj);
    check_shut(&q);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    destroy_ok(&q);
    return 0;
}

TEST(test_shutdown_immediate)
{
    EACH_KIND(shutdown_immediate_main);
}

static int shutdown_immediate_with_unfinished_main(void *arg, void **result)
{
    (void)result;
    /* test_shutdown_immediate_with_unfinished */
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    put_now(&q, 1);
    put_now(&q, 1);
    op j = mkop(&q, OP_JOIN, 0);
    cosync_task tj = go(&j);
    CHECK_EQ(get_wait(&q), 1);
    CHECK_OK(cosync_queue_shutdown(&q, true)); /* unfinished tasks: 2 -> 1 */
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_OK(cosync_yield());
    CHECK(!cosync_task_done(tj));
    check_shut(&q);
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_yield());
    CHECK(cosync_task_done(tj));
    CHECK_OK(j.rc);
    join_ok(tj);
    destroy_ok(&q);
    return 0;
}

TEST(test_shutdown_immediate_with_unfinished)
{
    EACH_KIND(shutdown_immediate_with_unfinished_main);
}

/* ------------------------------------------------------------------------
 * Grants under cancellation and deadlines
 * ---------------------------------------------------------------------- */

static int getter_item_in_hand_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);

    /* one getter: the item stays at the front */
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield());
    put_now(&q, 7);
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN); /* it is g's */
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_ERR(g.rc, COSYNC_ECANCELED);
    CHECK_EQ(g.got, -1);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_EQ(get_now(&q), 7);

    /* two getters: the item goes to the second */
    op g1 = mkop(&q, OP_GET, 0), g2 = mkop(&q, OP_GET, 0);
    cosync_task t1 = go(&g1), t2 = go(&g2);
    CHECK_OK(cosync_yield());
    put_now(&q, 8);
    CHECK_OK(cosync_task_cancel(t1));
    CHECK_OK(cosync_task_cancel(t1)); /* twice: still one delivery */
    CHECK_ERR(join_status(t1), COSYNC_ECANCELED);
    join_ok(t2);
    CHECK_ERR(g1.rc, COSYNC_ECANCELED);
    CHECK_OK(g2.rc);
    CHECK_EQ(g2.got, 8);
    CHECK(cosync_queue_empty(&q));

    /* many: 2N getters, N items; every third woken getter is cancelled
     * before it runs. No item is lost or duplicated. */
    enum { N = 60 };
    op gs[2 * N];
    cosync_task ts[2 * N];
    for (int i = 0; i < 2 * N; i++) {
        gs[i] = mkop(&q, OP_GET, 0);
        ts[i] = go(&gs[i]);
    }
    CHECK_OK(cosync_yield());
    int64_t in_sum = 0;
    for (int i = 0; i < N; i++) {
        put_now(&q, 1000 + i);
        in_sum += 1000 + i;
    }
    CHECK_EQ(q.getters.n, N);
    CHECK_EQ(q.reserved_items, N);
    int cancelled = 0;
    for (int i = 0; i < 2 * N; i += 3) {
        CHECK_OK(cosync_task_cancel(ts[i]));
        cancelled++;
    }
    /* the items of the cancelled woken getters went to getters still
     * waiting; the cancelled waiting ones just left */
    CHECK_EQ(q.reserved_items, N);
    CHECK_EQ(q.getters.n, 2 * N - N - cancelled);
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN);
    /* release those left waiting */
    CHECK_OK(cosync_queue_shutdown(&q, false));
    int64_t out_sum = 0, out_n = 0, nshut = 0;
    bool seen[N] = {0};
    for (int i = 0; i < 2 * N; i++) {
        if (i % 3 == 0) {
            CHECK_ERR(join_status(ts[i]), COSYNC_ECANCELED);
            CHECK_ERR(gs[i].rc, COSYNC_ECANCELED);
            CHECK_EQ(gs[i].got, -1);
            continue;
        }
        join_ok(ts[i]);
        if (gs[i].rc == COSYNC_ESHUTDOWN) {
            nshut++;
            continue;
        }
        CHECK_OK(gs[i].rc);
        int64_t v = gs[i].got - 1000;
        CHECK(v >= 0 && v < N);
        CHECK(!seen[v]);
        seen[v] = true;
        if (kind == FIFO)
            CHECK_EQ(v, out_n); /* in the order the getters came */
        out_sum += gs[i].got;
        out_n++;
    }
    CHECK_EQ(out_n, N);
    CHECK_EQ(out_sum, in_sum);
    CHECK_EQ(nshut, 2 * N - N - cancelled);
    CHECK(cosync_queue_empty(&q));
    destroy_ok(&q);
    return 0;
}

TEST(getter_cancelled_with_item_in_hand)
{
    EACH_KIND(getter_item_in_hand_main);
}

static int putter_granted_cancelled_main(void *arg, void **result)
{
    (void)result;
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 1);
    op p = mkop(&q, OP_PUT, 2), p2 = mkop(&q, OP_PUT, 3);
    p.yield_after = true;
    cosync_task t = go(&p), t2 = go(&p2);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 2);
    CHECK_EQ(get_now(&q), 1); /* p gets the slot */
    CHECK_EQ(q.reserved_slots, 1);
    CHECK_OK(cosync_task_cancel(t));
    /* the slot stays p's: a newcomer cannot take it */
    CHECK_ERR(cosync_queue_put(&q, &(int64_t){9}, 0), COSYNC_EAGAIN);
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    CHECK_OK(p.rc); /* success: the item arrived */
    CHECK_ERR(p.after, COSYNC_ECANCELED);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_EQ(get_now(&q), 2);
    join_ok(t2);
    CHECK_OK(p2.rc);
    CHECK_EQ(get_now(&q), 3);
    CHECK_EQ(q.unfinished, 3);
    destroy_ok(&q);
    return 0;
}

TEST(putter_cancelled_after_slot_granted)
{
    EACH_KIND(putter_granted_cancelled_main);
}

static int timeouts_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 1);
    put_now(&q, 1);
    /* putters: the head times out; the one behind is not disturbed */
    op p1 = mkop(&q, OP_PUT, 2), p2 = mkop(&q, OP_PUT, 3), p3 = mkop(&q, OP_PUT, 4);
    p1.deadline = AT(5);
    p3.deadline = AT(6);
    cosync_task t1 = go(&p1), t2 = go(&p2), t3 = go(&p3);
    CHECK_OK(cosync_sleep(COSYNC_MS(7)));
    CHECK_ERR(p1.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(p1.at, AT(5));
    CHECK_ERR(p3.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(p3.at, AT(6));
    CHECK_EQ(q.putters.n, 1);
    CHECK_EQ(get_now(&q), 1);
    join_ok(t2);
    CHECK_EQ(p2.at, AT(7));
    join_ok(t1);
    join_ok(t3);
    CHECK_EQ(get_now(&q), 3);
    check_idle(&q);
    /* all time out: nothing is left behind, later ops are not disturbed */
    put_now(&q, 5);
    op ps[4];
    cosync_task ts[4];
    for (int i = 0; i < 4; i++) {
        ps[i] = mkop(&q, OP_PUT, 10 + i);
        ps[i].deadline = AT(10 + i);
        ts[i] = go(&ps[i]);
    }
    CHECK_OK(cosync_gather(ts, 4, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 4; i++) {
        CHECK_ERR(ps[i].rc, COSYNC_ETIMEDOUT);
        CHECK_EQ(ps[i].at, AT(10 + i));
    }
    check_idle(&q);
    CHECK_EQ(get_now(&q), 5);
    put_now(&q, 6);
    CHECK_EQ(get_now(&q), 6);

    /* getters likewise */
    op g1 = mkop(&q, OP_GET, 0), g2 = mkop(&q, OP_GET, 0), g3 = mkop(&q, OP_GET, 0);
    g1.deadline = AT(20);
    g3.deadline = AT(21);
    t1 = go(&g1), t2 = go(&g2), t3 = go(&g3);
    CHECK_OK(cosync_sleep_until(AT(22)));
    CHECK_ERR(g1.rc, COSYNC_ETIMEDOUT);
    CHECK_ERR(g3.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(q.getters.n, 1);
    put_now(&q, 7);
    join_ok(t2);
    CHECK_EQ(g2.got, 7);
    CHECK_EQ(g2.at, AT(22));
    join_ok(t1);
    join_ok(t3);
    check_idle(&q);
    for (int i = 0; i < 4; i++) {
        ps[i] = mkop(&q, OP_GET, 0);
        ps[i].deadline = AT(30);
        ts[i] = go(&ps[i]);
    }
    CHECK_OK(cosync_gather(ts, 4, NULL, COSYNC_FOREVER));
    for (int i = 0; i < 4; i++)
        CHECK_ERR(ps[i].rc, COSYNC_ETIMEDOUT);
    check_idle(&q);
    put_now(&q, 8);
    CHECK_EQ(get_now(&q), 8);
    /* join too */
    put_now(&q, 9);
    CHECK_ERR(cosync_queue_join(&q, AT(40)), COSYNC_ETIMEDOUT);
    CHECK_ERR(cosync_queue_join(&q, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_now(), AT(40));
    check_idle(&q);
    get_now(&q);
    destroy_ok(&q);
    return 0;
}

TEST(timed_out_putters_and_getters_leave_no_waiter)
{
    EACH_KIND(timeouts_main);
}

static int fifo_putters_main(void *arg, void **result)
{
    (void)result;
    cosync_queue q;
    qinit(&q, kind_of(arg), 1);
    put_now(&q, 0);
    op p[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        p[i] = mkop(&q, OP_PUT, 3 - i); /* priorities against arrival order */
        p[i].checkpoint = i;
        t[i] = go(&p[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 3);
    CHECK(cosync_queue_full(&q));
    CHECK_EQ(get_now(&q), 0); /* the slot goes to p[0] */
    /* put_nowait does not overtake it, nor the putters still waiting */
    CHECK(cosync_queue_full(&q));
    CHECK_ERR(cosync_queue_put(&q, &(int64_t){99}, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    /* they come in arrival order */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(get_wait(&q), 3 - i);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    destroy_ok(&q);

    /* a second wait behind a waiting putter: the newcomer queues behind */
    qinit(&q, kind_of(arg), 2);
    put_now(&q, 1);
    put_now(&q, 2);
    op a = mkop(&q, OP_PUT, 3), b = mkop(&q, OP_PUT, 4);
    cosync_task ta = go(&a);
    CHECK_OK(cosync_yield());
    get_now(&q); /* a granted */
    cosync_task tb = go(&b);
    CHECK_OK(cosync_yield()); /* a runs and puts, then b waits */
    CHECK(a.done);
    CHECK(!b.done);
    get_now(&q);
    join_ok(ta);
    join_ok(tb);
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    while (!cosync_queue_empty(&q))
        get_now(&q);
    destroy_ok(&q);
    return 0;
}

TEST(strict_fifo_among_blocked_putters)
{
    EACH_KIND(fifo_putters_main);
}

/* asyncio's drain loop, `while not q.empty(): q.get_nowait()`, while a
 * getter was woken with the first item: empty() says what a get can take,
 * so the loop takes the two free items and ends (were the kept item
 * counted, it would spin on COSYNC_EAGAIN for ever). */
static int drain_loop_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield()); /* it waits */
    put_now(&q, 1);           /* kept for it */
    put_now(&q, 2);
    put_now(&q, 3);
    int64_t drained[4];
    int n = 0;
    while (!cosync_queue_empty(&q)) {
        CHECK_LT(n, 2);
        CHECK_OK(cosync_queue_get(&q, &drained[n++], 0));
    }
    CHECK_EQ(n, 2);
    CHECK_EQ(cosync_queue_qsize(&q), 1); /* the kept one */
    CHECK_ERR(cosync_queue_get(&q, &drained[2], 0), COSYNC_EAGAIN);
    join_ok(t);
    /* FIFO: the getter had the front; LIFO and priority: it takes the top
     * when it runs, which is then what the drain left */
    static const int64_t got[3] = {1, 1, 3};
    static const int64_t first[3][2] = {{2, 3}, {3, 2}, {1, 2}};
    CHECK_EQ(g.got, got[kind]);
    CHECK_EQ(drained[0], first[kind][0]);
    CHECK_EQ(drained[1], first[kind][1]);
    CHECK(cosync_queue_empty(&q));
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    destroy_ok(&q);
    return 0;
}

TEST(the_drain_loop_ends_while_an_item_is_kept_for_a_woken_getter)
{
    EACH_KIND(drain_loop_main);
}

static int fifo_getters_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    static const int64_t out[3][3] = {{1, 3, 2}, {2, 3, 1}, {1, 2, 3}};
    cosync_queue q;
    qinit(&q, kind, 0);
    op g[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        g[i] = mkop(&q, OP_GET, 0);
        g[i].checkpoint = i;
        t[i] = go(&g[i]);
    }
    CHECK_OK(cosync_yield());
    put_now(&q, 1);
    put_now(&q, 3);
    put_now(&q, 2);
    CHECK_EQ(q.reserved_items, 3);
    /* each item is handed to a woken getter: a get cannot take one */
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN);
    CHECK_ERR(cosync_queue_get_many(&q, (int64_t[4]){0}, 4, 0), COSYNC_EAGAIN);
    CHECK_EQ(cosync_queue_qsize(&q), 3);
    CHECK(cosync_queue_empty(&q)); /* as a get sees it */
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    /* served in arrival order; each takes the front when it runs */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(g[i].got, out[kind][i]);
    destroy_ok(&q);
    return 0;
}

TEST(strict_fifo_among_blocked_getters)
{
    EACH_KIND(fifo_getters_main);
}

static int join_kinds_main(void *arg, void **result)
{
    (void)result;
    t0 = cosync_now();
    cosync_queue q;
    qinit(&q, kind_of(arg), 3);
    for (int i = 0; i < 3; i++)
        put_now(&q, i);
    CHECK_EQ(q.unfinished, 3);
    op j[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        j[i] = mkop(&q, OP_JOIN, 0);
        j[i].checkpoint = i;
        t[i] = go(&j[i]);
    }
    op jt = mkop(&q, OP_JOIN, 0), jc = mkop(&q, OP_JOIN, 0);
    jt.deadline = AT(5);
    cosync_task tt = go(&jt), tc = go(&jc);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.joiners.n, 5);
    CHECK_OK(cosync_task_cancel(tc));
    CHECK_ERR(join_status(tc), COSYNC_ECANCELED);
    CHECK_ERR(jc.rc, COSYNC_ECANCELED);
    join_ok(tt);
    CHECK_ERR(jt.rc, COSYNC_ETIMEDOUT);
    CHECK_EQ(jt.at, AT(5));
    CHECK_EQ(q.joiners.n, 3);
    for (int i = 0; i < 3; i++) {
        get_now(&q);
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        CHECK_OK(cosync_queue_task_done(&q));
    }
    /* all three woken by the last task_done, in the order they came */
    CHECK_EQ(q.joiners.n, 0);
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECKPOINTS_DONE(3);
    for (int i = 0; i < 3; i++) {
        CHECK_OK(j[i].rc);
        CHECK_EQ(j[i].at, AT(8));
    }
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    destroy_ok(&q);
    return 0;
}

TEST(join_across_all_kinds)
{
    EACH_KIND(join_kinds_main);
}

/* ------------------------------------------------------------------------
 * Shutdown with work in flight
 * ---------------------------------------------------------------------- */

static int shutdown_putters_main(void *arg, void **result)
{
    (void)result;
    /* graceful: blocked putters fail; one granted a slot but not run fails
     * too; the items in the queue drain; task_done/join see only those */
    cosync_queue q;
    qinit(&q, kind_of(arg), 2);
    put_now(&q, 1);
    put_now(&q, 2);
    op p3 = mkop(&q, OP_PUT, 3), p4 = mkop(&q, OP_PUT, 4), j = mkop(&q, OP_JOIN, 0);
    cosync_task t3 = go(&p3), t4 = go(&p4), tj = go(&j);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 2);
    int64_t first = get_now(&q); /* p3 is given the slot */
    CHECK_EQ(q.reserved_slots, 1);
    CHECK_OK(cosync_queue_shutdown(&q, false));
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY); /* p3 will touch it */
    CHECK_EQ(q.putters.n, 0);
    join_ok(t3);
    join_ok(t4);
    CHECK_ERR(p3.rc, COSYNC_ESHUTDOWN);
    CHECK_ERR(p4.rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(q.reserved_slots, 0);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK(!cosync_queue_full(&q));
    int64_t second = get_wait(&q);
    CHECK_EQ(first + second, 3);
    check_shut(&q);
    CHECK_EQ(q.unfinished, 2);
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK(!j.done);
    CHECK_OK(cosync_queue_task_done(&q));
    join_ok(tj);
    CHECK_OK(j.rc);
    destroy_ok(&q);
    return 0;
}

TEST(shutdown_with_blocked_putters)
{
    EACH_KIND(shutdown_putters_main);
}

static int shutdown_getters_main(void *arg, void **result)
{
    (void)result;
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    /* graceful: a getter woken with an item keeps it; the others fail */
    op g[3];
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        g[i] = mkop(&q, OP_GET, 0);
        t[i] = go(&g[i]);
    }
    CHECK_OK(cosync_yield());
    put_now(&q, 5);
    CHECK_OK(cosync_queue_shutdown(&q, false));
    CHECK_OK(cosync_gather(t, 3, NULL, COSYNC_FOREVER));
    CHECK_OK(g[0].rc);
    CHECK_EQ(g[0].got, 5);
    CHECK_ERR(g[1].rc, COSYNC_ESHUTDOWN);
    CHECK_ERR(g[2].rc, COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_queue_task_done(&q));
    check_shut(&q);
    destroy_ok(&q);

    /* immediate: the items are dropped, those handed to woken getters too;
     * join's count settles by the number dropped */
    qinit(&q, kind_of(arg), 0);
    put_now(&q, 1);
    CHECK_EQ(get_now(&q), 1); /* taken, not done */
    op j = mkop(&q, OP_JOIN, 0);
    cosync_task tj = go(&j);
    for (int i = 0; i < 3; i++) {
        g[i] = mkop(&q, OP_GET, 0);
        t[i] = go(&g[i]);
    }
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.joiners.n, 1);
    CHECK_EQ(q.getters.n, 3);
    put_now(&q, 5);                     /* for g0 */
    put_now(&q, 6);                     /* for g1 */
    CHECK_OK(cosync_task_cancel(t[1])); /* g1's goes to g2 */
    put_now(&q, 7);
    put_now(&q, 8);
    CHECK_EQ(q.reserved_items, 2);
    get_now(&q); /* the two not handed out: taken, not done */
    get_now(&q);
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN);
    CHECK_EQ(q.unfinished, 5);
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    CHECK_OK(cosync_queue_shutdown(&q, true)); /* 2 dropped: 5 -> 3 */
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_EQ(q.unfinished, 3);
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY); /* g0 and g2 have not run */
    CHECK_OK(cosync_gather(t, 1, NULL, COSYNC_FOREVER));
    CHECK_ERR(join_status(t[1]), COSYNC_ECANCELED);
    join_ok(t[2]);
    CHECK_ERR(g[0].rc, COSYNC_ESHUTDOWN);
    CHECK_ERR(g[1].rc, COSYNC_ECANCELED);
    CHECK_ERR(g[2].rc, COSYNC_ESHUTDOWN);
    CHECK_EQ(g[0].got, -1);
    CHECK_EQ(g[2].got, -1);
    CHECK_EQ(q.reserved_items, 0);
    CHECK(!j.done);
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_queue_task_done(&q));
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    join_ok(tj);
    CHECK_OK(j.rc);
    check_shut(&q);
    destroy_ok(&q);

    /* a getter woken with an item, then the queue shut down immediately,
     * then the getter cancelled before it runs: nothing to give back */
    qinit(&q, kind_of(arg), 0);
    g[0] = mkop(&q, OP_GET, 0);
    t[0] = go(&g[0]);
    CHECK_OK(cosync_yield());
    put_now(&q, 5);
    CHECK_OK(cosync_queue_shutdown(&q, true));
    CHECK_OK(cosync_task_cancel(t[0]));
    CHECK_EQ(q.reserved_items, 0);
    CHECK_ERR(join_status(t[0]), COSYNC_ECANCELED);
    CHECK_ERR(g[0].rc, COSYNC_ECANCELED);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    destroy_ok(&q);

    /* a graceful shutdown made immediate by a second call */
    qinit(&q, kind_of(arg), 0);
    put_now(&q, 1);
    put_now(&q, 2);
    CHECK_OK(cosync_queue_shutdown(&q, false));
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    get_now(&q);
    CHECK_OK(cosync_queue_shutdown(&q, false)); /* again: no change */
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_OK(cosync_queue_shutdown(&q, true));
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_EQ(q.unfinished, 1);
    check_shut(&q);
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_join(&q, 0));
    destroy_ok(&q);
    return 0;
}

TEST(shutdown_with_blocked_getters_and_items_in_flight)
{
    EACH_KIND(shutdown_getters_main);
}

/* After a graceful shutdown a get fails only once the queue is empty: an
 * item handed to a woken getter still counts until that getter takes it,
 * since a cancellation may give it back. A get meanwhile waits, and takes
 * the item if it comes back, or fails when the last one is taken. */
static int drain_waits_main(void *arg, void **result)
{
    (void)result;
    cosync_queue q;
    for (int cancel_first = 0; cancel_first < 2; cancel_first++) {
        qinit(&q, kind_of(arg), 0);
        op a = mkop(&q, OP_GET, 0);
        cosync_task ta = go(&a);
        CHECK_OK(cosync_yield());
        put_now(&q, 7); /* handed to a, which has not run */
        CHECK_OK(cosync_queue_shutdown(&q, false));
        CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN); /* not empty */
        op b = mkop(&q, OP_GET, 0);
        cosync_task tb = go(&b);
        if (cancel_first)
            CHECK_OK(cosync_task_cancel(ta)); /* a gives the item back: b takes it */
        CHECK_OK(cosync_yield());
        CHECK_OK(cosync_yield());
        if (cancel_first) {
            CHECK_ERR(join_status(ta), COSYNC_ECANCELED);
            CHECK_ERR(a.rc, COSYNC_ECANCELED);
            join_ok(tb);
            CHECK_OK(b.rc);
            CHECK_EQ(b.got, 7);
        } else {
            join_ok(ta);
            CHECK_OK(a.rc);
            CHECK_EQ(a.got, 7);
            join_ok(tb); /* woken when a took the last item */
            CHECK_ERR(b.rc, COSYNC_ESHUTDOWN);
        }
        CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, COSYNC_FOREVER), COSYNC_ESHUTDOWN);
        CHECK_OK(cosync_queue_task_done(&q));
        CHECK_OK(cosync_queue_join(&q, 0));
        check_shut(&q);
        destroy_ok(&q);
    }
    return 0;
}

TEST(drain_after_shutdown_counts_items_handed_out)
{
    EACH_KIND(drain_waits_main);
}

/* ------------------------------------------------------------------------
 * A million items through a queue of one
 * ---------------------------------------------------------------------- */

#define MILL_PROD 4
#define MILL_CONS 4

typedef struct mill {
    cosync_queue *q;
    int64_t n;    /* items in all */
    size_t batch; /* 0: put/get; else put_many/get_many of up to this */
    int64_t sum;
    int64_t count;
} mill;

typedef struct mill_task {
    mill *m;
    int id;
} mill_task;

static int mill_producer(void *arg, void **result)
{
    (void)result;
    mill_task *mt = arg;
    mill *m = mt->m;
    int64_t per = m->n / MILL_PROD;
    int64_t lo = mt->id * per, hi = mt->id == MILL_PROD - 1 ? m->n : lo + per;
    int64_t buf[256];
    for (int64_t v = lo; v < hi;) {
        if (!m->batch) {
            put_wait(m->q, v++);
            continue;
        }
        size_t k = 0;
        while (k < m->batch && v + (int64_t)k < hi)
            buf[k] = v + (int64_t)k, k++;
        int rc = cosync_queue_put_many(m->q, buf, k, COSYNC_FOREVER);
        CHECK_GE(rc, 1);
        CHECK_LE(rc, (int)k);
        v += rc;
    }
    return 0;
}

static int mill_consumer(void *arg, void **result)
{
    (void)result;
    mill_task *mt = arg;
    mill *m = mt->m;
    int64_t per = m->n / MILL_PROD;
    int64_t last[MILL_PROD];
    for (int i = 0; i < MILL_PROD; i++)
        last[i] = -1;
    int64_t buf[256];
    for (;;) {
        int rc;
        if (m->batch) {
            rc = cosync_queue_get_many(m->q, buf, m->batch, COSYNC_FOREVER);
        } else {
            rc = cosync_queue_get(m->q, buf, COSYNC_FOREVER);
            if (rc == 0)
                rc = 1;
        }
        if (rc == COSYNC_ESHUTDOWN)
            break;
        CHECK_GE(rc, 1);
        for (int i = 0; i < rc; i++) {
            int64_t v = buf[i];
            CHECK(v >= 0 && v < m->n);
            int p = (int)(v / per);
            if (p >= MILL_PROD)
                p = MILL_PROD - 1;
            /* FIFO: each producer's items arrive in the order it put them */
            if (m->q->kind == FIFO)
                CHECK_GT(v, last[p]);
            last[p] = v;
            m->sum += v;
            m->count++;
            CHECK_OK(cosync_queue_task_done(m->q));
        }
    }
    return 0;
}

static int mill_main(void *arg, void **result)
{
    (void)result;
    mill *m = arg;
    cosync_task t[MILL_PROD + MILL_CONS];
    mill_task mt[MILL_PROD + MILL_CONS];
    for (int i = 0; i < MILL_PROD + MILL_CONS; i++) {
        mt[i] = (mill_task){.m = m, .id = i < MILL_PROD ? i : i - MILL_PROD};
        CHECK_OK(cosync_task_spawn(&t[i], i < MILL_PROD ? mill_producer : mill_consumer, &mt[i],
                                   &(cosync_task_opts){.stack_size = 32 * 1024}));
    }
    CHECK_OK(cosync_gather(t, MILL_PROD, NULL, COSYNC_FOREVER));
    CHECK_OK(cosync_queue_join(m->q, COSYNC_FOREVER));
    CHECK_OK(cosync_queue_shutdown(m->q, false));
    CHECK_OK(cosync_gather(t + MILL_PROD, MILL_CONS, NULL, COSYNC_FOREVER));
    CHECK_EQ(m->count, m->n);
    CHECK_EQ(m->sum, m->n * (m->n - 1) / 2);
    destroy_ok(m->q);
    return 0;
}

TEST(million_items_through_a_queue_of_one)
{
    int64_t n = UNDER_ASAN ? 200000 : 1000000;
    for (int kind = 0; kind < 3; kind++) {
        cosync_queue q;
        qinit(&q, kind, 1);
        mill m = {.q = &q, .n = n};
        CHECK_OK(run_main(mill_main, &m));
    }
    /* in batches: a queue of 64, up to 32 at a time */
    for (int kind = 0; kind < 3; kind++) {
        cosync_queue q;
        qinit(&q, kind, 64);
        mill m = {.q = &q, .n = n, .batch = 32};
        CHECK_OK(run_main(mill_main, &m));
    }
}

/* ------------------------------------------------------------------------
 * A reference model: the order every kind must produce
 * ---------------------------------------------------------------------- */

typedef struct model {
    int kind;
    size_t esize;
    int (*cmp)(const void *, const void *, void *);
    void *cmp_arg;
    size_t n;
    unsigned char items[4096][16];
    uint64_t seqs[4096];
    uint64_t seq;
} model;

/* Models are too big for a task's stack: they are static, reset per use. */
static void model_reset(model *m, int kind, size_t esize,
                        int (*cmp)(const void *, const void *, void *), void *cmp_arg)
{
    m->kind = kind;
    m->esize = esize;
    m->cmp = cmp;
    m->cmp_arg = cmp_arg;
    m->n = 0;
    m->seq = 0;
}

static void model_put(model *m, const void *item)
{
    CHECK_LT(m->n, 4096);
    memcpy(m->items[m->n], item, m->esize);
    m->seqs[m->n++] = m->seq++;
}

static void model_get(model *m, void *item)
{
    CHECK_GT(m->n, 0);
    size_t best = 0;
    for (size_t i = 1; i < m->n; i++) {
        bool better;
        if (m->kind == FIFO)
            better = m->seqs[i] < m->seqs[best];
        else if (m->kind == LIFO)
            better = m->seqs[i] > m->seqs[best];
        else {
            int c = m->cmp(m->items[i], m->items[best], m->cmp_arg);
            better = c < 0 || (c == 0 && m->seqs[i] < m->seqs[best]);
        }
        if (better)
            best = i;
    }
    memcpy(item, m->items[best], m->esize);
    m->n--;
    memmove(m->items[best], m->items[best + 1], (m->n - best) * sizeof m->items[0]);
    memmove(&m->seqs[best], &m->seqs[best + 1], (m->n - best) * sizeof m->seqs[0]);
}

static void mput(cosync_queue *q, model *m, int64_t v)
{
    put_now(q, v);
    model_put(m, &v);
}

static void mget(cosync_queue *q, model *m)
{
    int64_t want;
    model_get(m, &want);
    CHECK_EQ(get_now(q), want);
}

/* ------------------------------------------------------------------------
 * Allocation failure while growing
 * ---------------------------------------------------------------------- */

typedef struct test_alloc {
    long calls;
    long live;
    long fail_at; /* the call that fails (1-based); 0: none */
} test_alloc;

static void *test_realloc(void *ud, void *ptr, size_t size)
{
    test_alloc *a = ud;
    if (size == 0) {
        if (ptr)
            a->live--;
        free(ptr);
        return NULL;
    }
    if (++a->calls == a->fail_at)
        return NULL;
    void *p = realloc(ptr, size);
    if (p && !ptr)
        a->live++;
    return p;
}

static int alloc_fail_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 0);
    static model m;
    model_reset(&m, kind, 8, cmp_i64, &cmp_calls);
    cosync__fault_failures = 0;

    /* the first allocation fails: nothing is taken */
    cosync__fault_countdown = 0;
    int64_t v = 1;
    CHECK_ERR(cosync_queue_put(&q, &v, COSYNC_FOREVER), COSYNC_ENOMEM);
    cosync__fault_countdown = 0; /* (one failure per setting) */
    CHECK_ERR(cosync_queue_put_many(&q, &v, 1, COSYNC_FOREVER), COSYNC_ENOMEM);
    CHECK_EQ(cosync__fault_countdown, -1);
    CHECK_EQ(cosync__fault_failures, 2);
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_EQ(q.unfinished, 0);
    CHECK_NULL(q.buf);
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    /* the caller still has its item: a retry succeeds */
    mput(&q, &m, v);

    /* fill the first storage, wrap the ring around, then fail to grow */
    for (int i = 1; i < 16; i++)
        mput(&q, &m, (i * 7) % 16 + 100);
    CHECK_EQ(q.capacity, 16);
    for (int i = 0; i < 5; i++)
        mget(&q, &m);
    for (int i = 0; i < 5; i++)
        mput(&q, &m, 200 + (i * 3) % 5);
    CHECK_EQ(q.capacity, 16);
    CHECK_EQ(cosync_queue_qsize(&q), 16);
    size_t unfinished = q.unfinished;
    cosync__fault_countdown = 0;
    v = 150;
    CHECK_ERR(cosync_queue_put(&q, &v, COSYNC_FOREVER), COSYNC_ENOMEM);
    cosync__fault_countdown = -1;
    CHECK_EQ(cosync__fault_failures, 3);
    CHECK_EQ(cosync_queue_qsize(&q), 16);
    CHECK_EQ(q.unfinished, unfinished);
    CHECK_EQ(q.capacity, 16);
    mput(&q, &m, v); /* the retry grows it */
    CHECK_EQ(q.capacity, 32);
    while (m.n)
        mget(&q, &m);

    /* put_many: as many as the storage holds when it cannot grow */
    int64_t items[40];
    for (int i = 0; i < 40; i++)
        items[i] = 300 + (i * 13) % 40;
    cosync__fault_countdown = 0;
    CHECK_EQ(cosync_queue_put_many(&q, items, 40, COSYNC_FOREVER), 32);
    cosync__fault_countdown = 0;
    CHECK_ERR(cosync_queue_put_many(&q, items + 32, 8, COSYNC_FOREVER), COSYNC_ENOMEM);
    cosync__fault_countdown = -1;
    CHECK_EQ(q.unfinished, 32 + unfinished + 1);
    CHECK_EQ(cosync_queue_put_many(&q, items + 32, 8, COSYNC_FOREVER), 8);
    for (int i = 0; i < 40; i++)
        model_put(&m, &items[i]);
    while (m.n)
        mget(&q, &m);
    destroy_ok(&q);

    /* the queue's own allocator: used for the storage, freed by destroy,
     * its failure reported the same way */
    test_alloc ta = {0};
    cosync_allocator al = {.realloc = test_realloc, .ud = &ta};
    CHECK_OK(cosync_queue_init_opts(&q, &(cosync_queue_opts){.kind = (enum cosync_queue_kind)kind,
                                                             .elem_size = 8,
                                                             .cmp = cmp_i64,
                                                             .cmp_arg = &cmp_calls,
                                                             .allocator = &al}));
    al = (cosync_allocator){0}; /* the queue keeps its own copy */
    for (int i = 0; i < 1000; i++)
        mput(&q, &m, (i * 37) % 1000);
    CHECK_EQ(ta.live, 1);
    CHECK_EQ(ta.calls, 7); /* 16, 32, ..., 1024 */
    ta.fail_at = ta.calls + 1;
    for (int i = 0; i < 24; i++)
        mput(&q, &m, 5000 + i); /* 1024 slots: no allocation */
    v = 7;
    CHECK_ERR(cosync_queue_put(&q, &v, 0), COSYNC_ENOMEM);
    CHECK_EQ(cosync_queue_qsize(&q), 1024);
    mput(&q, &m, v);
    CHECK_EQ(ta.live, 1);
    for (int i = 0; i < 500; i++)
        mget(&q, &m);
    CHECK_OK(cosync_queue_destroy(&q));
    CHECK_EQ(ta.live, 0);
    return 0;
}

TEST(allocation_failure_while_growing)
{
    EACH_KIND(alloc_fail_main);
}

static int bounded_growth_main(void *arg, void **result)
{
    (void)result;
    /* a bounded queue grows by doubling, never past its maxsize */
    cosync_queue q;
    qinit(&q, kind_of(arg), 100);
    static model m;
    model_reset(&m, kind_of(arg), 8, cmp_i64, &cmp_calls);
    CHECK_NULL(q.buf); /* nothing until the first put */
    for (int i = 0; i < 100; i++)
        mput(&q, &m, (i * 31) % 100);
    CHECK_EQ(q.capacity, 100);
    CHECK(cosync_queue_full(&q));
    CHECK_ERR(cosync_queue_put(&q, &(int64_t){1}, 0), COSYNC_EAGAIN);
    while (m.n)
        mget(&q, &m);
    destroy_ok(&q);
    return 0;
}

TEST(bounded_queue_grows_up_to_maxsize)
{
    EACH_KIND(bounded_growth_main);
}

/* put_many on a bounded queue whose storage must grow, and cannot
 * (queue.h: "as many as fit now"; the storage grows only on a put, and a
 * failed growth leaves everything as it was): it puts what the storage
 * already has room for and returns that number, or, with no room at all,
 * COSYNC_ENOMEM with nothing put. The items put are the first ones, intact
 * and in the queue's order; the caller still has the rest, and putting
 * them again succeeds. Each growth fails in turn: from nothing (16 slots),
 * of a full ring that has wrapped around (64), and of a partly filled one
 * up to the maxsize (100, not 128). */
static int put_many_growth_fault_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    static model m;
    int64_t next = 0; /* the items, numbered as they are made */
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        counting ca = {0, 0};
        cosync_allocator al = {count_realloc, &ca};
        cosync_queue q;
        CHECK_OK(
            cosync_queue_init_opts(&q, &(cosync_queue_opts){.kind = (enum cosync_queue_kind)kind,
                                                            .elem_size = sizeof(int64_t),
                                                            .maxsize = 100,
                                                            .cmp = cmp_i64,
                                                            .cmp_arg = &cmp_calls,
                                                            .allocator = &al}));
        model_reset(&m, kind, sizeof(int64_t), cmp_i64, &cmp_calls);
        long failures = cosync__fault_failures;
        /* batches put, each followed by some gets: the ring wraps around
         * before the second growth */
        static const struct {
            size_t put, get;
        } steps[] = {{10, 4}, {10, 0}, {30, 3}, {40, 0}, {20, 0}};
        cosync__fault_countdown = k;
        for (size_t s = 0; s < sizeof steps / sizeof steps[0]; s++) {
            int64_t items[64];
            size_t n = steps[s].put;
            for (size_t i = 0; i < n; i++, next++)
                items[i] = (next * 37) % 101; /* out of order, for the priority kind */
            size_t count = cosync_queue_qsize(&q), cap = q.capacity, unfinished = q.unfinished;
            size_t want = n < 100 - count ? n : 100 - count; /* bounded: what fits */
            long live = ca.live;
            long f0 = cosync__fault_failures;
            int rc = cosync_queue_put_many(&q, items, n, 0);
            size_t put = 0;
            if (cosync__fault_failures != f0) {
                /* the growth failed: nothing about the storage changed */
                CHECK_EQ(q.capacity, cap);
                CHECK_EQ(ca.live, live);
                CHECK_LT(cap - count, want);
                if (cap == count) {
                    CHECK_ERR(rc, COSYNC_ENOMEM); /* no room: nothing put */
                } else {
                    CHECK_EQ(rc, cap - count); /* what the storage held */
                    put = (size_t)rc;
                }
            } else {
                CHECK_EQ(rc, want);
                put = want;
            }
            CHECK_EQ(cosync_queue_qsize(&q), count + put);
            CHECK_EQ(q.unfinished, unfinished + put);
            for (size_t i = 0; i < put; i++)
                model_put(&m, &items[i]);
            if (put < want) {
                /* the rest, again: the storage grows this time */
                CHECK_EQ(cosync_queue_put_many(&q, items + put, want - put, 0), want - put);
                for (size_t i = put; i < want; i++)
                    model_put(&m, &items[i]);
                CHECK_GE(q.capacity, count + want);
            }
            CHECK_EQ(ca.live, 1); /* one storage, the old one freed */
            for (size_t i = 0; i < steps[s].get; i++)
                mget(&q, &m);
        }
        cosync__fault_countdown = -1;
        CHECK_EQ(q.capacity, 100); /* never past the maxsize */
        CHECK(cosync_queue_full(&q));
        /* every item once, in the queue's order (FIFO, LIFO, priority) */
        while (m.n) {
            mget(&q, &m);
            CHECK_OK(cosync_queue_task_done(&q));
        }
        destroy_ok(&q);
        CHECK_EQ(ca.live, 0);
        if (cosync__fault_failures == failures)
            break;
    }
    CHECK_EQ(k, 3); /* the growths to 16, 64 and 100 slots */
    return 0;
}

TEST(put_many_on_bounded_queue_stops_where_growth_fails)
{
    EACH_KIND(put_many_growth_fault_main);
}

/* ------------------------------------------------------------------------
 * Order: priority (FIFO among equals), LIFO; odd element sizes
 * ---------------------------------------------------------------------- */

typedef struct job {
    int prio;
    int id;
} job;

static int cmp_job(const void *a, const void *b, void *arg)
{
    (void)arg;
    const job *x = a, *y = b; /* aligned: the storage keeps 8-byte slots */
    return (x->prio > y->prio) - (x->prio < y->prio);
}

/* A 13-byte element ordered by its first byte. */
static int cmp_first_byte(const void *a, const void *b, void *arg)
{
    (void)arg;
    return *(const unsigned char *)a - *(const unsigned char *)b;
}

static uint64_t rng = 88172645463325252u;

static uint64_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static int priority_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    CHECK_OK(cosync_priorityqueue_init(&q, sizeof(job), 0, cmp_job, NULL));
    static const job in[] = {{2, 0}, {1, 1}, {2, 2}, {1, 3}, {0, 4}, {2, 5}, {1, 6}, {0, 7}};
    static const int out[] = {4, 7, 1, 3, 6, 0, 2, 5};
    for (size_t i = 0; i < 8; i++)
        CHECK_OK(cosync_queue_put(&q, &in[i], 0));
    for (size_t i = 0; i < 8; i++) {
        job j;
        CHECK_OK(cosync_queue_get(&q, &j, 0));
        CHECK_EQ(j.id, out[i]);
    }
    /* random puts and gets against the model, few priorities: many ties */
    static model m;
    model_reset(&m, PRIO, sizeof(job), cmp_job, NULL);
    int id = 0;
    for (int step = 0; step < 6000; step++) {
        if (m.n < 3000 && (m.n == 0 || next_rand() % 3 != 0)) {
            job j = {(int)(next_rand() % 8), id++};
            CHECK_OK(cosync_queue_put(&q, &j, 0));
            model_put(&m, &j);
        } else {
            job want, got;
            model_get(&m, &want);
            CHECK_OK(cosync_queue_get(&q, &got, 0));
            CHECK_EQ(got.prio, want.prio);
            CHECK_EQ(got.id, want.id);
        }
    }
    while (m.n) {
        job want, got;
        model_get(&m, &want);
        CHECK_OK(cosync_queue_get(&q, &got, 0));
        CHECK_EQ(got.id, want.id);
    }
    destroy_ok(&q);

    /* an element size that is not a multiple of 8 */
    CHECK_OK(cosync_priorityqueue_init(&q, 13, 50, cmp_first_byte, NULL));
    CHECK_EQ(q.slot_size, 24);
    static model m2;
    model_reset(&m2, PRIO, 13, cmp_first_byte, NULL);
    for (int step = 0; step < 3000; step++) {
        unsigned char e[13];
        if (m2.n < 50 && (m2.n == 0 || next_rand() % 2)) {
            for (int i = 0; i < 13; i++)
                e[i] = (unsigned char)(i == 0 ? next_rand() % 5 : (uint64_t)(step + i));
            CHECK_OK(cosync_queue_put(&q, e, 0));
            model_put(&m2, e);
        } else {
            unsigned char want[13];
            model_get(&m2, want);
            CHECK_OK(cosync_queue_get(&q, e, 0));
            CHECK(memcmp(e, want, 13) == 0);
        }
    }
    while (m2.n) {
        unsigned char e[13], want[13];
        model_get(&m2, want);
        CHECK_OK(cosync_queue_get(&q, e, 0));
        CHECK(memcmp(e, want, 13) == 0);
    }
    destroy_ok(&q);
    return 0;
}

TEST(priority_order_and_fifo_among_equals)
{
    CHECK_OK(run_main(priority_main, NULL));
}

static int lifo_fifo_order_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    if (kind == PRIO)
        return 0;
    cosync_queue q;
    qinit(&q, kind, 0);
    for (int i = 1; i <= 5; i++)
        put_now(&q, i);
    for (int i = 1; i <= 5; i++)
        CHECK_EQ(get_now(&q), kind == LIFO ? 6 - i : i);
    put_now(&q, 1);
    put_now(&q, 2);
    CHECK_EQ(get_now(&q), kind == LIFO ? 2 : 1);
    put_now(&q, 3);
    CHECK_EQ(get_now(&q), kind == LIFO ? 3 : 2);
    CHECK_EQ(get_now(&q), kind == LIFO ? 1 : 3);
    destroy_ok(&q);

    /* 3-byte elements, bounded, through growth and (FIFO) ring wrap-around */
    if (kind == LIFO)
        CHECK_OK(cosync_lifoqueue_init(&q, 3, 40));
    else
        CHECK_OK(cosync_queue_init(&q, 3, 40));
    CHECK_EQ(q.slot_size, 3);
    static model m;
    model_reset(&m, kind, 3, NULL, NULL);
    for (int step = 0; step < 5000; step++) {
        unsigned char e[3];
        if (m.n < 40 && (m.n == 0 || next_rand() % 2)) {
            e[0] = (unsigned char)step, e[1] = (unsigned char)(step >> 8), e[2] = 0x5a;
            CHECK_OK(cosync_queue_put(&q, e, 0));
            model_put(&m, e);
        } else {
            unsigned char want[3];
            model_get(&m, want);
            CHECK_OK(cosync_queue_get(&q, e, 0));
            CHECK(memcmp(e, want, 3) == 0);
        }
    }
    destroy_ok(&q);
    return 0;
}

TEST(lifo_order)
{
    EACH_KIND(lifo_fifo_order_main);
}

/* ------------------------------------------------------------------------
 * Batches
 * ---------------------------------------------------------------------- */

typedef struct batch_putter {
    cosync_queue *q;
    int64_t *items;
    size_t n;
    int calls[8];
    int ncalls;
} batch_putter;

static int batch_putter_fn(void *arg, void **result)
{
    (void)result;
    batch_putter *b = arg;
    size_t done = 0;
    while (done < b->n) {
        int rc = cosync_queue_put_many(b->q, b->items + done, b->n - done, COSYNC_FOREVER);
        CHECK_GE(rc, 1);
        b->calls[b->ncalls++] = rc;
        done += (size_t)rc;
    }
    return 0;
}

static int batch_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 4);
    int64_t items[10], got[10];
    for (int i = 0; i < 10; i++)
        items[i] = i;
    CHECK_EQ(cosync_queue_put_many(&q, items, 0, 0), 0);
    CHECK_EQ(cosync_queue_get_many(&q, got, 0, 0), 0);
    CHECK_EQ(cosync_queue_put_many(&q, items, 10, 0), 4); /* what fits */
    CHECK_EQ(q.unfinished, 4);
    CHECK_ERR(cosync_queue_put_many(&q, items + 4, 6, 0), COSYNC_EAGAIN);
    batch_putter b = {.q = &q, .items = items + 4, .n = 6};
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, batch_putter_fn, &b, NULL));
    CHECK_OK(cosync_yield());
    CHECK_EQ(q.putters.n, 1);
    CHECK_EQ(cosync_queue_get_many(&q, got, 3, 0), 3);
    if (kind != LIFO) {
        CHECK_EQ(got[0], 0);
        CHECK_EQ(got[2], 2);
    }
    CHECK_EQ(q.reserved_slots, 1); /* the putter's */
    CHECK_OK(cosync_yield());
    /* woken for one slot, it put that one and two more */
    CHECK_EQ(b.ncalls, 1);
    CHECK_EQ(b.calls[0], 3);
    CHECK_EQ(cosync_queue_qsize(&q), 4);
    CHECK_EQ(q.putters.n, 1); /* waiting with the last 3 */
    int n = cosync_queue_get_many(&q, got, 10, COSYNC_FOREVER);
    CHECK_EQ(n, 4);
    if (kind == FIFO)
        for (int i = 0; i < 4; i++)
            CHECK_EQ(got[i], 3 + i);
    join_ok(t);
    CHECK_EQ(b.ncalls, 2);
    CHECK_EQ(b.calls[1], 3);
    CHECK_EQ(cosync_queue_get_many(&q, got, 10, 0), 3);
    if (kind == FIFO)
        for (int i = 0; i < 3; i++)
            CHECK_EQ(got[i], 7 + i);
    CHECK_ERR(cosync_queue_get_many(&q, got, 10, 0), COSYNC_EAGAIN);
    CHECK_EQ(q.unfinished, 10);
    destroy_ok(&q);

    /* a getter woken by a batch takes its item and the ones left */
    qinit(&q, kind, 0);
    op g = mkop(&q, OP_GET_MANY, 0);
    int64_t gbuf[5];
    g.items = gbuf, g.n = 5;
    t = go(&g);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_queue_put_many(&q, items, 10, COSYNC_FOREVER), 10);
    join_ok(t);
    CHECK_EQ(g.rc, 5);
    if (kind == FIFO)
        for (int i = 0; i < 5; i++)
            CHECK_EQ(gbuf[i], i);
    CHECK_EQ(cosync_queue_qsize(&q), 5);
    CHECK_EQ(cosync_queue_get_many(&q, got, 10, 0), 5);

    /* two getters woken by one batch: each is handed one; the first takes
     * its own and the one left over (behind the second's), nobody takes the
     * second's */
    op g1 = mkop(&q, OP_GET_MANY, 0), g2 = mkop(&q, OP_GET_MANY, 0);
    int64_t b1[5], b2[5];
    g1.items = b1, g1.n = 5, g2.items = b2, g2.n = 5;
    cosync_task t1 = go(&g1), t2 = go(&g2);
    CHECK_OK(cosync_yield());
    CHECK_EQ(cosync_queue_put_many(&q, items, 3, 0), 3);
    CHECK_EQ(q.reserved_items, 2);
    join_ok(t1);
    join_ok(t2);
    CHECK_EQ(g1.rc, 2);
    CHECK_EQ(g2.rc, 1);
    if (kind == FIFO) {
        CHECK_EQ(b1[0], 0);
        CHECK_EQ(b1[1], 2);
        CHECK_EQ(b2[0], 1);
    }
    CHECK(cosync_queue_empty(&q));
    destroy_ok(&q);
    return 0;
}

TEST(batch_put_and_get)
{
    EACH_KIND(batch_main);
}

/* ------------------------------------------------------------------------
 * Misuse
 * ---------------------------------------------------------------------- */

TEST(bad_arguments)
{
    cosync_queue q;
    memset(&q, 0x5a, sizeof q);
    CHECK_ERR(cosync_queue_init(&q, 0, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_lifoqueue_init(&q, 0, 5), COSYNC_EINVAL);
    CHECK_ERR(cosync_priorityqueue_init(&q, 0, 0, cmp_i64, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_priorityqueue_init(&q, 8, 0, NULL, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_init_opts(&q, NULL), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_init_opts(&q, &(cosync_queue_opts){.elem_size = 0}), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_init_opts(
                  &q, &(cosync_queue_opts){.kind = COSYNC_QUEUE_PRIORITY, .elem_size = 8}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_init_opts(
                  &q, &(cosync_queue_opts){.kind = (enum cosync_queue_kind)7, .elem_size = 8}),
              COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_init(&q, SIZE_MAX, 0), COSYNC_EINVAL);
    /* init resets every field, whatever was there */
    CHECK_OK(cosync_queue_init_opts(&q, &(cosync_queue_opts){.elem_size = 8}));
    check_idle(&q);
    CHECK_NULL(q.buf);
    CHECK_EQ(q.count, 0);
    CHECK_EQ(q.unfinished, 0);
    CHECK(!cosync_queue_is_shutdown(&q));
    CHECK(cosync_queue_empty(&q));
    /* usable outside any task while nothing must wait */
    put_now(&q, 42);
    CHECK_EQ(q.unfinished, 1);
    CHECK_EQ(get_now(&q), 42);
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_join(&q, COSYNC_FOREVER));
    /* but a wait needs a task */
    int64_t v;
    CHECK_ERR(cosync_queue_get(&q, &v, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_queue_get(&q, &v, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_queue_get_many(&q, &v, 1, COSYNC_FOREVER), COSYNC_EPERM);
    put_now(&q, 1);
    CHECK_ERR(cosync_queue_join(&q, COSYNC_FOREVER), COSYNC_EPERM);
    check_idle(&q);
    CHECK_OK(cosync_queue_destroy(&q));

    qinit(&q, FIFO, 1);
    put_now(&q, 1);
    CHECK_ERR(cosync_queue_put(&q, &v, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_queue_put_many(&q, &v, 1, COSYNC_FOREVER), COSYNC_EPERM);
    destroy_ok(&q);

    /* no array to move items through: refused before anything moves */
    qinit(&q, FIFO, 2);
    CHECK_ERR(cosync_queue_put_many(&q, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_EQ(q.unfinished, 0);
    CHECK_EQ(cosync_queue_put_many(&q, NULL, 0, 0), 0);
    put_now(&q, 7);
    CHECK_ERR(cosync_queue_get_many(&q, NULL, 1, 0), COSYNC_EINVAL);
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_EQ(cosync_queue_get_many(&q, NULL, 0, 0), 0);
    CHECK_EQ(get_now(&q), 7);
    destroy_ok(&q);
}

static int task_done_too_often_main(void *arg, void **result)
{
    (void)result;
    cosync_queue q;
    qinit(&q, kind_of(arg), 0);
    int64_t items[3] = {1, 2, 3};
    CHECK_EQ(cosync_queue_put_many(&q, items, 3, 0), 3);
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_queue_task_done(&q));
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    CHECK_EQ(q.unfinished, 0); /* nothing changed */
    CHECK_EQ(cosync_queue_qsize(&q), 3);
    destroy_ok(&q); /* the items are dropped */
    return 0;
}

TEST(task_done_too_often)
{
    EACH_KIND(task_done_too_often_main);
}

static void check_dead(cosync_queue *q)
{
    int64_t v = 3;
    CHECK_ERR(cosync_queue_put(q, &v, 0), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_put(q, &v, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_get(q, &v, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_put_many(q, &v, 1, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_get_many(q, &v, 1, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_task_done(q), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_join(q, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_shutdown(q, true), COSYNC_EINVAL);
    CHECK_ERR(cosync_queue_destroy(q), COSYNC_EINVAL);
    CHECK_EQ(cosync_queue_qsize(q), 0);
    CHECK_EQ(v, 3);
}

static int destroy_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 1);
    /* busy while a getter waits, or a woken getter has not run */
    op g = mkop(&q, OP_GET, 0);
    cosync_task t = go(&g);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY);
    put_now(&q, 1);
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY);
    join_ok(t);
    /* while a putter waits, or a woken putter has not run */
    put_now(&q, 1);
    op p = mkop(&q, OP_PUT, 2);
    t = go(&p);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY);
    get_now(&q);
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY);
    join_ok(t);
    /* while a joiner waits */
    op j = mkop(&q, OP_JOIN, 0);
    t = go(&j);
    CHECK_OK(cosync_yield());
    CHECK_ERR(cosync_queue_destroy(&q), COSYNC_EBUSY);
    CHECK_OK(cosync_task_cancel(t));
    CHECK_ERR(join_status(t), COSYNC_ECANCELED);
    /* nothing changed by the refusals */
    CHECK_EQ(cosync_queue_qsize(&q), 1);
    CHECK_EQ(q.unfinished, 3);
    /* then it goes, with its item */
    CHECK_OK(cosync_queue_destroy(&q));
    check_dead(&q);
    /* a new init brings it back */
    qinit(&q, kind, 0);
    put_now(&q, 5);
    CHECK_EQ(get_now(&q), 5);
    CHECK_OK(cosync_queue_destroy(&q));
    check_dead(&q);
    return 0;
}

TEST(destroy_busy_and_use_after_destroy)
{
    EACH_KIND(destroy_main);
}

/* A queue needs its element size, so zero-filling does not make one (the
 * other primitives' zero state is ready): every action refuses it as it
 * refuses a destroyed queue, instead of dividing by the element size or
 * waiting forever, and an init then makes it usable. */
static int zero_filled_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    memset(&q, 0, sizeof q);
    check_dead(&q);
    CHECK(cosync_queue_empty(&q));
    CHECK(!cosync_queue_full(&q));
    qinit(&q, FIFO, 0);
    put_now(&q, 7);
    CHECK_EQ(get_now(&q), 7);
    destroy_ok(&q);
    return 0;
}

TEST(zero_filled_queue_is_refused)
{
    CHECK_OK(run_main(zero_filled_main, NULL));
}

/* A task woken without an item or a slot (by shutdown, a timeout or a
 * cancellation) holds nothing that keeps the queue alive: the queue may be
 * destroyed, its memory reused, before the task runs, and the task must
 * not touch it then. The memory is poisoned after destroy and checked once
 * the woken task has run. */
enum { WOKEN_BY_SHUTDOWN, WOKEN_BY_CANCEL, WOKEN_BY_TIMEOUT, WOKEN_BY_SHUTDOWN_THEN_CANCELLED };

static void check_untouched(const unsigned char *mem, size_t size)
{
    for (size_t i = 0; i < size; i++)
        CHECK_EQ(mem[i], 0x5a);
}

static int woken_task_leaves_destroyed_queue_main(void *arg, void **result)
{
    (void)result;
    int how = (int)(intptr_t)arg;
    for (int what = OP_PUT; what <= OP_GET; what++) {
        cosync_queue *q = malloc(sizeof *q);
        CHECK(q != NULL);
        qinit(q, COSYNC_QUEUE_FIFO, 1);
        if (what == OP_PUT)
            put_now(q, 1); /* full: the putter waits */
        op o = mkop(q, what, 2);
        if (how == WOKEN_BY_TIMEOUT)
            o.deadline = cosync_now() + COSYNC_MS(1);
        cosync_task t = go(&o);
        if (how == WOKEN_BY_TIMEOUT) {
            /* this task's timer, armed before the waiter's, fires first */
            CHECK_OK(cosync_sleep_until(o.deadline));
            CHECK_EQ(cosync_queue_qsize(q), what == OP_PUT ? 1 : 0);
        } else {
            CHECK_OK(cosync_yield());
            CHECK(!o.done);
        }
        switch (how) {
        case WOKEN_BY_SHUTDOWN:
            CHECK_OK(cosync_queue_shutdown(q, false));
            break;
        case WOKEN_BY_CANCEL:
            CHECK_OK(cosync_task_cancel(t));
            break;
        case WOKEN_BY_TIMEOUT:
            break;
        default:
            CHECK_OK(cosync_queue_shutdown(q, false));
            CHECK_OK(cosync_task_cancel(t));
        }
        CHECK(!o.done);
        if (what == OP_PUT)
            CHECK_EQ(get_now(q), 1); /* (a graceful shutdown lets gets drain) */
        CHECK_OK(cosync_queue_destroy(q));
        memset(q, 0x5a, sizeof *q);
        int st = join_status(t);
        CHECK(o.done);
        CHECK(o.rc == COSYNC_ESHUTDOWN || o.rc == COSYNC_ECANCELED || o.rc == COSYNC_ETIMEDOUT);
        CHECK(st == 0 || st == COSYNC_ECANCELED);
        check_untouched((const unsigned char *)q, sizeof *q);
        free(q);
    }
    return 0;
}

TEST(woken_task_never_touches_a_destroyed_queue)
{
    for (intptr_t how = WOKEN_BY_SHUTDOWN; how <= WOKEN_BY_SHUTDOWN_THEN_CANCELLED; how++)
        CHECK_OK(run_main(woken_task_leaves_destroyed_queue_main, (void *)how));
}

static int other_loop_task(void *arg, void **result)
{
    (void)result;
    op *o = arg;
    cosync_queue *q = o->q;
    int64_t v = 5;
    o->rc = cosync_queue_get(q, &v, COSYNC_FOREVER);
    CHECK_ERR(cosync_queue_get(q, &v, 0), COSYNC_EPERM);
    CHECK_ERR(cosync_queue_get_many(q, &v, 1, COSYNC_FOREVER), COSYNC_EPERM);
    CHECK_ERR(cosync_queue_join(q, COSYNC_FOREVER), COSYNC_EPERM);
    return 0;
}

static int other_loop_putter(void *arg, void **result)
{
    (void)result;
    op *o = arg;
    o->rc = cosync_queue_put(o->q, &o->val, COSYNC_FOREVER);
    CHECK_ERR(cosync_queue_put_many(o->q, &o->val, 1, 0), COSYNC_EPERM);
    return 0;
}

TEST(bound_to_one_loop_while_tasks_wait)
{
    cosync_loop *a = new_loop(), *b = new_loop();
    cosync_queue q;
    qinit(&q, FIFO, 1);
    put_now(&q, 1); /* full; unfinished 1 */
    /* loop a: a putter waits */
    op pa = mkop(&q, OP_PUT, 2);
    cosync_task ta, stopper;
    CHECK_OK(cosync_loop_spawn(a, &ta, op_fn, &pa, NULL));
    CHECKPOINT(0);
    spawn_and_run(a, &stopper, checkpoint_arg, (void *)1);
    CHECK_EQ(q.putters.n, 1);
    /* loop b: waiting on any side of it is refused */
    op pb = mkop(&q, OP_PUT, 3);
    cosync_task tb;
    spawn_and_run(b, &tb, other_loop_putter, &pb);
    CHECK_ERR(pb.rc, COSYNC_EPERM);
    int64_t v = get_now(&q); /* from outside: a's putter is given the slot */
    CHECK_EQ(v, 1);
    CHECK_OK(cosync_loop_run(a, ta, NULL, NULL));
    CHECK_OK(pa.rc);
    CHECK_EQ(get_now(&q), 2); /* empty now */
    /* a getter of a waits; b's getter is refused */
    op ga = mkop(&q, OP_GET, 0);
    CHECK_OK(cosync_loop_spawn(a, &ta, op_fn, &ga, NULL));
    spawn_and_run(a, &stopper, checkpoint_arg, (void *)2);
    op gb = mkop(&q, OP_GET, 0);
    spawn_and_run(b, &tb, other_loop_task, &gb);
    CHECK_ERR(gb.rc, COSYNC_EPERM);
    /* a's getter goes away: the queue is free for b */
    CHECK_OK(cosync_task_cancel(ta));
    int st;
    CHECK_OK(cosync_loop_run(a, ta, &st, NULL));
    CHECK_ERR(st, COSYNC_ECANCELED);
    check_idle(&q);
    gb = mkop(&q, OP_GET, 0);
    gb.deadline = 0;
    spawn_and_run(b, &tb, op_fn, &gb);
    CHECK_ERR(gb.rc, COSYNC_EAGAIN);
    destroy_ok(&q);
    end_loop(a);
    end_loop(b);
    CHECKPOINTS_DONE(3);
}

/* ------------------------------------------------------------------------
 * The deadlock report
 * ---------------------------------------------------------------------- */

typedef struct dl_ctx {
    cosync_queue *full, *empty, *join;
} dl_ctx;

static int dl_main(void *arg, void **result)
{
    (void)result;
    dl_ctx *c = arg;
    static op p, g;
    p = mkop(c->full, OP_PUT, 2);
    g = mkop(c->empty, OP_GET, 0);
    cosync_task tp, tg;
    CHECK_OK(cosync_task_spawn(&tp, op_fn, &p, &(cosync_task_opts){.name = "p"}));
    CHECK_OK(cosync_task_spawn(&tg, op_fn, &g, &(cosync_task_opts){.name = "g"}));
    int rc = cosync_queue_join(c->join, COSYNC_FOREVER);
    cosync_task_join(tp, NULL, NULL, COSYNC_FOREVER);
    cosync_task_join(tg, NULL, NULL, COSYNC_FOREVER);
    return rc;
}

TEST(deadlock_report_describes_the_queue)
{
    cosync_queue full, empty, join;
    qinit(&full, FIFO, 1);
    qinit(&empty, LIFO, 0);
    qinit(&join, PRIO, 3);
    put_now(&full, 1);
    put_now(&join, 1);
    get_now(&join);
    dl_ctx c = {&full, &empty, &join};
    capture report;
    cosync_task m;
    cosync_loop *loop = deadlock_loop(&report, dl_main, &c, "main", &m);
    const char *buf = report.buf;
    char want[256];
    snprintf(want, sizeof want, "task 'main' (#1) waits on queue %p (join, 1 unfinished)\n",
             (void *)&join);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    snprintf(want, sizeof want, "task 'p' (#2) waits on queue %p (full, 1 of 1, putting)\n",
             (void *)&full);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    snprintf(want, sizeof want, "task 'g' (#3) waits on queue %p (empty, getting)\n",
             (void *)&empty);
    if (!strstr(buf, want))
        CHECK_STREQ(buf, want);
    CHECK_OK(cosync_loop_destroy(loop)); /* cancels them all */
    capture_free(&report);
    CHECK_OK(cosync_queue_task_done(&join));
    CHECK_EQ(get_now(&full), 1);
    destroy_ok(&full);
    destroy_ok(&empty);
    destroy_ok(&join);
}

/* ------------------------------------------------------------------------
 * The seed's producer-consumer (asyncio.Queue, section 6.2)
 * ---------------------------------------------------------------------- */

typedef struct seed_ctx {
    cosync_queue queue;
    int consumed[5];
    int nconsumed;
    int64_t at[5];
} seed_ctx;

static int seed_producer(void *arg, void **result)
{
    (void)result;
    seed_ctx *c = arg;
    for (int i = 0; i < 5; i++) {
        CHECK_OK(cosync_sleep(COSYNC_SEC(1))); /* simulate work */
        CHECK_OK(cosync_queue_put(&c->queue, &i, COSYNC_FOREVER));
    }
    return 0;
}

static int seed_consumer(void *arg, void **result)
{
    (void)result;
    seed_ctx *c = arg;
    for (;;) {
        int task;
        int rc = cosync_queue_get(&c->queue, &task, COSYNC_FOREVER);
        if (rc)
            return rc; /* cancelled */
        c->at[c->nconsumed] = cosync_now();
        c->consumed[c->nconsumed++] = task;
        CHECK_OK(cosync_queue_task_done(&c->queue));
    }
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    t0 = cosync_now();
    seed_ctx c;
    CHECK_OK(cosync_queue_init(&c.queue, sizeof(int), 0));
    c.nconsumed = 0;
    cosync_task p, cons[2];
    CHECK_OK(cosync_task_spawn(&p, seed_producer, &c, NULL));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&cons[i], seed_consumer, &c, NULL));
    CHECK_OK(cosync_sleep(COSYNC_SEC(6)));
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_cancel(cons[i]));
    CHECK_ERR(cosync_gather(cons, 2, NULL, COSYNC_FOREVER), 0);
    join_ok(p);
    CHECK_EQ(c.nconsumed, 5);
    for (int i = 0; i < 5; i++) {
        CHECK_EQ(c.consumed[i], i);
        CHECK_EQ(c.at[i], AT(1000 * (i + 1)));
    }
    CHECK_OK(cosync_queue_join(&c.queue, 0));
    CHECK_OK(cosync_queue_destroy(&c.queue));
    return 0;
}

TEST(seed_producer_consumer)
{
    CHECK_OK(run_main(seed_main, NULL));
}

/* An item handed to a woken getter is never taken by another: in a FIFO
 * queue a newcomer takes the first item behind those set aside, and the
 * woken getters get theirs, in order. */
static int handed_getter(void *arg, void **result)
{
    int v = -1;
    CHECK_OK(cosync_queue_get(arg, &v, COSYNC_FOREVER));
    *result = (void *)(intptr_t)v;
    return 0;
}

static int handed_item_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    CHECK_OK(cosync_queue_init(&q, sizeof(int), 0));
    cosync_task g[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&g[i], handed_getter, &q, NULL));
    CHECK_OK(cosync_yield()); /* both wait */
    for (int v = 1; v <= 4; v++)
        CHECK_OK(cosync_queue_put(&q, &v, 0)); /* 1 and 2 go to g[0], g[1] */
    int v = 0;
    CHECK_OK(cosync_queue_get(&q, &v, 0)); /* a newcomer, before they run */
    CHECK_EQ(v, 3);
    CHECK_EQ(cosync_queue_qsize(&q), 3);
    void *r0, *r1;
    CHECK_OK(cosync_task_join(g[0], NULL, &r0, COSYNC_FOREVER));
    CHECK_OK(cosync_task_join(g[1], NULL, &r1, COSYNC_FOREVER));
    CHECK_EQ((intptr_t)r0, 1);
    CHECK_EQ((intptr_t)r1, 2);
    CHECK_OK(cosync_queue_get(&q, &v, 0));
    CHECK_EQ(v, 4);
    CHECK_OK(cosync_queue_destroy(&q));
    return 0;
}

TEST(handed_item_is_never_taken_by_a_newcomer)
{
    CHECK_OK(run_main(handed_item_main, NULL));
}

/* A woken putter is owed a slot, not a place: it stores its item when it
 * runs, so a newcomer's put that found another free slot meanwhile (even
 * with deadline 0) comes out first, as in asyncio; the woken putter still
 * stores its own, into the slot kept for it. */
static int woken_putter_place_main(void *arg, void **result)
{
    (void)result;
    int kind = kind_of(arg);
    cosync_queue q;
    qinit(&q, kind, 2);
    put_now(&q, 1);
    put_now(&q, 2);
    op p = mkop(&q, OP_PUT, 3);
    cosync_task t = go(&p);
    CHECK_OK(cosync_yield()); /* p waits for room */
    CHECK_EQ(q.putters.n, 1);
    CHECK_EQ(get_now(&q), kind == LIFO ? 2 : 1); /* wakes p with a slot kept */
    CHECK_EQ(q.reserved_slots, 1);
    CHECK_EQ(get_now(&q), kind == LIFO ? 1 : 2); /* another slot, free */
    put_now(&q, 4);                              /* a newcomer */
    CHECK(!p.done);
    CHECK_ERR(cosync_queue_put(&q, &(int64_t){5}, 0), COSYNC_EAGAIN); /* the kept slot is p's */
    join_ok(t);
    CHECK_OK(p.rc);
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    /* FIFO: the newcomer's first; LIFO: p's, stored last, on top; the
     * priority queue by value */
    CHECK_EQ(get_now(&q), kind == FIFO ? 4 : 3);
    CHECK_EQ(get_now(&q), kind == FIFO ? 3 : 4);
    destroy_ok(&q);
    return 0;
}

TEST(woken_putter_keeps_its_slot_not_its_place)
{
    EACH_KIND(woken_putter_place_main);
}

/* ------------------------------------------------------------------------
 * Takes behind woken getters: the FIFO ring's gap (queue.c). The items
 * reserved for woken getters stay theirs, newcomers take the items behind
 * them in order, and a put that needs the gap's room, a growth, and a
 * revoked reservation all keep that order.
 * ---------------------------------------------------------------------- */

/* Two getters are woken with 1 and 2 reserved; returns their tasks. */
static void two_woken_getters(cosync_queue *q, op *g1, op *g2, cosync_task *t1, cosync_task *t2)
{
    *g1 = mkop(q, OP_GET, 0);
    *g2 = mkop(q, OP_GET, 0);
    *t1 = go(g1);
    *t2 = go(g2);
    CHECK_OK(cosync_yield());
    CHECK_EQ(q->getters.n, 2);
    put_now(q, 1);
    put_now(q, 2);
    CHECK_EQ(q->reserved_items, 2);
}

static int gap_bounded_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    qinit(&q, FIFO, 4);
    op g1, g2;
    cosync_task t1, t2;
    two_woken_getters(&q, &g1, &g2, &t1, &t2);
    put_now(&q, 3);
    put_now(&q, 4);
    CHECK_ERR(cosync_queue_put(&q, &(int64_t){99}, 0), COSYNC_EAGAIN); /* full */
    CHECK_EQ(get_now(&q), 3); /* behind the two reserved items */
    CHECK_EQ(q.gap, 1);
    put_now(&q, 5); /* the ring is physically full: the gap closes */
    CHECK_EQ(q.gap, 0);
    CHECK_EQ(get_now(&q), 4);
    CHECK_EQ(get_now(&q), 5);
    CHECK_EQ(q.gap, 2);
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN); /* 1 and 2 are taken */
    put_now(&q, 6);
    put_now(&q, 7);
    CHECK_EQ(cosync_queue_qsize(&q), 4);
    join_ok(t1);
    join_ok(t2);
    CHECK_EQ(g1.got, 1);
    CHECK_EQ(g2.got, 2);
    CHECK_EQ(q.gap, 0);
    CHECK_EQ(get_now(&q), 6);
    CHECK_EQ(get_now(&q), 7);
    destroy_ok(&q);
    return 0;
}

static int gap_growth_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    qinit(&q, FIFO, 0);
    op g1, g2;
    cosync_task t1, t2;
    two_woken_getters(&q, &g1, &g2, &t1, &t2);
    for (int64_t v = 3; v <= 16; v++)
        put_now(&q, v);
    size_t cap = q.capacity;
    CHECK_EQ(cap, 16);
    CHECK_EQ(get_now(&q), 3);
    CHECK_EQ(get_now(&q), 4);
    CHECK_EQ(q.gap, 2);
    /* more than the ring holds: it grows, with the gap closed first */
    int64_t more[6] = {17, 18, 19, 20, 21, 22};
    CHECK_EQ(cosync_queue_put_many(&q, more, 6, 0), 6);
    CHECK(q.capacity > cap);
    CHECK_EQ(q.gap, 0);
    CHECK_EQ(get_now(&q), 5);
    join_ok(t1);
    join_ok(t2);
    CHECK_EQ(g1.got, 1);
    CHECK_EQ(g2.got, 2);
    for (int64_t v = 6; v <= 22; v++)
        CHECK_EQ(get_now(&q), v);
    CHECK(cosync_queue_empty(&q));
    destroy_ok(&q);
    return 0;
}

/* An unbounded queue with two woken getters (1 and 2 reserved) and 3, 4
 * behind them, of which a newcomer has taken 3. */
static void gap_after_one_take(cosync_queue *q, op *g1, op *g2, cosync_task *t1, cosync_task *t2)
{
    qinit(q, FIFO, 0);
    two_woken_getters(q, g1, g2, t1, t2);
    put_now(q, 3);
    put_now(q, 4);
    CHECK_EQ(get_now(q), 3);
}

static int gap_revoked_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    op g1, g2;
    cosync_task t1, t2;
    gap_after_one_take(&q, &g1, &g2, &t1, &t2);
    CHECK_EQ(q.gap, 1);
    /* g1 is cancelled before it runs: one reservation is handed back, and
     * g2 will take the front item */
    CHECK_OK(cosync_task_cancel(t1));
    CHECK_EQ(q.reserved_items, 1);
    CHECK_EQ(get_now(&q), 2);
    CHECK_EQ(get_now(&q), 4);
    CHECK_ERR(cosync_queue_get(&q, &(int64_t){0}, 0), COSYNC_EAGAIN);
    CHECK_ERR(join_status(t1), COSYNC_ECANCELED);
    CHECK_EQ(g1.got, -1);
    join_ok(t2);
    CHECK_EQ(g2.got, 1);
    CHECK(cosync_queue_empty(&q));
    CHECK_EQ(q.gap, 0);
    destroy_ok(&q);
    return 0;
}

static int gap_shutdown_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    op g1, g2;
    cosync_task t1, t2;
    gap_after_one_take(&q, &g1, &g2, &t1, &t2);
    CHECK_OK(cosync_queue_shutdown(&q, true)); /* drops 1, 2 and 4 */
    CHECK_EQ(q.gap, 0);
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    join_ok(t1);
    join_ok(t2);
    CHECK_ERR(g1.rc, COSYNC_ESHUTDOWN);
    CHECK_ERR(g2.rc, COSYNC_ESHUTDOWN);
    CHECK_OK(cosync_queue_destroy(&q));
    return 0;
}

TEST(takes_behind_woken_getters_keep_fifo_order)
{
    CHECK_OK(run_main(gap_bounded_main, NULL));
    CHECK_OK(run_main(gap_growth_main, NULL));
    CHECK_OK(run_main(gap_revoked_main, NULL));
    CHECK_OK(run_main(gap_shutdown_main, NULL));
}

/* put_many and get_many of 0 items return 0 at once whatever the queue
 * holds: no wait on a full queue (or an empty one), not even with a
 * deadline. */
static int none_moved_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    CHECK_OK(cosync_queue_init(&q, sizeof(int64_t), 2));
    int64_t items[2] = {1, 2}, got[2];
    CHECK_EQ(cosync_queue_put_many(&q, items, 2, 0), 2);
    CHECK(cosync_queue_full(&q));
    /* nothing to put: no wait, nothing put, on a full queue */
    CHECK_EQ(cosync_queue_put_many(&q, items, 0, 0), 0);
    uint64_t sw = switches();
    CHECK_EQ(cosync_queue_put_many(&q, items, 0, cosync_deadline_after(COSYNC_MS(5))), 0);
    CHECK_EQ(switches(), sw); /* not a suspension */
    CHECK_EQ(cosync_queue_qsize(&q), 2);
    /* and nothing to get from an empty one */
    CHECK_EQ(cosync_queue_get_many(&q, got, 2, 0), 2);
    CHECK_EQ(cosync_queue_get_many(&q, got, 0, 0), 0);
    CHECK_EQ(cosync_queue_get_many(&q, got, 0, cosync_deadline_after(COSYNC_MS(5))), 0);
    CHECK_EQ(switches(), sw);
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_destroy(&q));
    return 0;
}

TEST(put_many_and_get_many_of_nothing_never_wait)
{
    run_main_ok(none_moved_main, NULL);
}

/*
 * An immediate shutdown takes the dropped items off the unfinished count,
 * but never below 0 (Python 3.13: "if self._unfinished_tasks > 0:
 * self._unfinished_tasks -= 1" per item). The count can be below the
 * queue's size: task_done may be called for items still queued (asyncio
 * allows it). The tests only drop items whose count is still unfinished;
 * without the clamp the count wraps to a huge value, so join waits forever
 * and task_done no longer reports COSYNC_EOVERFLOW.
 */
static int early_done_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_queue q;
    CHECK_OK(cosync_queue_init(&q, sizeof(int64_t), 0));
    int64_t v = 1;
    CHECK_OK(cosync_queue_put(&q, &v, 0));
    CHECK_OK(cosync_queue_put(&q, &v, 0));
    CHECK_OK(cosync_queue_put(&q, &v, 0));
    /* two marked done while all three are still queued */
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_task_done(&q));
    CHECK_OK(cosync_queue_shutdown(&q, true)); /* drops 3, unfinished 1 -> 0 */
    CHECK_EQ(cosync_queue_qsize(&q), 0);
    CHECK_OK(cosync_queue_join(&q, 0));
    CHECK_ERR(cosync_queue_task_done(&q), COSYNC_EOVERFLOW);
    CHECK_OK(cosync_queue_destroy(&q));
    return 0;
}

TEST(immediate_shutdown_never_takes_unfinished_below_zero)
{
    run_main_ok(early_done_main, NULL);
}

int main(void)
{
    RUN(handed_item_is_never_taken_by_a_newcomer);
    RUN(woken_putter_keeps_its_slot_not_its_place);
    /* QueueBasicTests */
    RUN(test_empty);
    RUN(test_full);
    RUN(test_order);
    RUN(test_maxsize);
    /* QueueGetTests */
    RUN(test_blocking_get);
    RUN(test_get_with_putters);
    RUN(test_blocking_get_wait);
    RUN(test_get_cancelled_race);
    RUN(test_get_with_waiting_putters);
    RUN(test_why_are_getters_waiting);
    RUN(test_cancelled_getters_not_being_held_in_self_getters);
    /* QueuePutTests */
    RUN(test_blocking_put);
    RUN(test_blocking_put_wait);
    RUN(test_get_cancel_drop_one_pending_reader);
    RUN(test_get_cancel_drop_many_pending_readers);
    RUN(test_put_cancel_drop);
    RUN(test_put_cancelled);
    RUN(test_put_cancelled_race);
    RUN(test_put_with_waiting_getters);
    RUN(test_why_are_putters_waiting);
    RUN(test_cancelled_puts_not_being_held_in_self_putters);
    RUN(test_cancelled_put_silence_value_error_exception);
    /* _QueueJoinTestMixin */
    RUN(test_task_done_underflow);
    RUN(test_task_done);
    RUN(test_join_empty_queue);
    /* _QueueShutdownTestMixin */
    RUN(test_shutdown_empty);
    RUN(test_shutdown_nonempty);
    RUN(test_shutdown_immediate);
    RUN(test_shutdown_immediate_with_unfinished);
    /* beyond asyncio's tests */
    RUN(getter_cancelled_with_item_in_hand);
    RUN(putter_cancelled_after_slot_granted);
    RUN(timed_out_putters_and_getters_leave_no_waiter);
    RUN(strict_fifo_among_blocked_putters);
    RUN(the_drain_loop_ends_while_an_item_is_kept_for_a_woken_getter);
    RUN(strict_fifo_among_blocked_getters);
    RUN(join_across_all_kinds);
    RUN(shutdown_with_blocked_putters);
    RUN(shutdown_with_blocked_getters_and_items_in_flight);
    RUN(drain_after_shutdown_counts_items_handed_out);
    RUN(allocation_failure_while_growing);
    RUN(bounded_queue_grows_up_to_maxsize);
    RUN(put_many_on_bounded_queue_stops_where_growth_fails);
    RUN(priority_order_and_fifo_among_equals);
    RUN(lifo_order);
    RUN(batch_put_and_get);
    RUN(takes_behind_woken_getters_keep_fifo_order);
    RUN(bad_arguments);
    RUN(task_done_too_often);
    RUN(destroy_busy_and_use_after_destroy);
    RUN(zero_filled_queue_is_refused);
    RUN(woken_task_never_touches_a_destroyed_queue);
    RUN(bound_to_one_loop_while_tasks_wait);
    RUN(deadlock_report_describes_the_queue);
    RUN(seed_producer_consumer);
    RUN(million_items_through_a_queue_of_one);
    RUN(put_many_and_get_many_of_nothing_never_wait);
    RUN(immediate_shutdown_never_takes_unfinished_below_zero);
    return 0;
}
