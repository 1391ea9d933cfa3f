/*
 * test_queue_model.c - a randomized differential test of cosync_queue
 * against a model of what it holds.
 *
 * test_queue.c pins each rule of docs/queues.md down in a scripted
 * scenario; this test looks for the interleavings nobody scripted. Each
 * seed picks a kind (FIFO, LIFO, priority), a bound (none, 1, 2, 5 or 40)
 * and, one seed in three, a storage allocator that fails one allocation in
 * five; one seed in four spawns its workers as dense tasks (copied stacks:
 * docs/stacks.md), which must change nothing the test sees. Its main task
 * then takes 400 to 799 steps: it spawns workers that make one to three
 * calls each (put, get, put_many, get_many or join, with no deadline,
 * deadline 0, or one a few milliseconds ahead, sometimes already reached),
 * cancels random workers, makes calls with deadline 0 itself, yields,
 * sleeps, and may shut the queue down, gracefully or not.
 * At the end it shuts the queue down, collects every worker, drains what is
 * left and settles the unfinished count.
 *
 * The model is the list of the items in the queue, in the order they went
 * in, and the unfinished count. What the queue holds changes only in the
 * task that runs (a woken putter stores, and a woken getter takes, when it
 * runs; a shutdown drops at once), and that task updates the model before
 * any other runs: so the two must agree whenever the test looks. Checked:
 *  - every item a get returns is intact and in the model, at the place its
 *    kind takes from: the last (LIFO), the first of the smallest priority,
 *    or in FIFO the front for a woken getter's first item and the first
 *    item behind the ones handed to woken getters for any other take. So
 *    nothing is lost, duplicated or reordered, and no get takes an item
 *    handed to another;
 *  - every call's result is predicted from the state before it (the items
 *    and slots free for a newcomer, the waiters already there, the
 *    shutdown, the deadline, a pending cancellation). A call that can
 *    complete does so at once, without suspending (a put that cannot grow
 *    the storage stores what fits, or fails with COSYNC_ENOMEM); one that
 *    has to wait fails at once with COSYNC_EAGAIN for deadline 0,
 *    COSYNC_ECANCELED for a pending cancellation, COSYNC_ETIMEDOUT for a
 *    deadline reached, and otherwise suspends: nobody barges;
 *  - a call that waited is served in arrival order (no putter, or getter,
 *    that came earlier is still waiting then); it times out only at its
 *    deadline; a put succeeds only before the shutdown, a get only before
 *    an immediate one, and a get fails with COSYNC_ESHUTDOWN only once the
 *    queue is empty; a join returns 0 only if the count fell to 0 meanwhile;
 *  - a cancellation does what docs/queues.md says for where the wait stood
 *    when it came (read from the task's waiter, white-box "core.h"): a call
 *    still waiting, or a get handed an item (it gives the item back), fails
 *    with COSYNC_ECANCELED; a put given a slot, or a join woken, completes;
 *    a wait that timed out stays timed out. In the last two cases the
 *    cancellation is delivered at the next suspension;
 *  - after every call and every step of main, the queue's private state
 *    agrees with the model and with the workers: its count and unfinished
 *    count; its waiters are the workers waiting, its reservations the
 *    workers woken that have not run yet; nobody waits for what is there (a
 *    getter with items free or on a drained queue, a putter with slots free
 *    or after the shutdown, a joiner with nothing unfinished); the storage
 *    holds the items and the reserved slots; and the inline paths' bounds
 *    (put_below, get_above) are exact: queue.h trusts them to keep every
 *    rule above without calling the library.
 *
 * Everything runs on the virtual clock, from PRNG streams seeded by the
 * seed alone, so a seed replays exactly: a failure names its seed, and
 * QUEUE_MODEL_FIRST=<seed> QUEUE_MODEL_SEEDS=1 runs that one alone.
 * QUEUE_MODEL_SEEDS sets how many seeds run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "core.h" /* a task's waiter: where its wait stood when a cancellation came */

/* ========================================================================
 * Parameters
 * ===================================================================== */

#define MAX_STEPS 800         /* main's steps in a seed: 400 to 799 */
#define MAX_WORKERS MAX_STEPS /* main spawns at most one a step */
#define MAX_CALLS 3           /* a worker's calls */
#define MAX_BATCH 6           /* the items of a put_many or get_many */
#define NPRIO 4
/* the items put in a seed, at most: by the workers, and by main once a step */
#define MAX_ITEMS (MAX_WORKERS * MAX_CALLS * MAX_BATCH + MAX_STEPS * MAX_BATCH)

/* ========================================================================
 * State
 * ===================================================================== */

typedef struct item {
    int64_t key;     /* a serial number times NPRIO, plus the priority */
    int64_t not_key; /* ~key: a torn or missing copy shows */
} item;

enum op { OP_PUT, OP_PUT_MANY, OP_GET, OP_GET_MANY, OP_JOIN };
static const char *const op_names[] = {"put", "put_many", "get", "get_many", "join"};

enum side { SIDE_PUT, SIDE_GET, SIDE_JOIN, NSIDES };

enum deadline { DL_FOREVER, DL_NONE, DL_TIMED };

/* How a call goes, as predicted from the state before it. */
enum path {
    PATH_AT_ONCE,  /* it completes without suspending */
    PATH_SHUTDOWN, /* COSYNC_ESHUTDOWN at once */
    PATH_AGAIN,    /* it has to wait, deadline 0: COSYNC_EAGAIN */
    PATH_DELIVER,  /* it has to wait, a cancellation is pending: COSYNC_ECANCELED */
    PATH_PASSED,   /* it has to wait, its deadline is reached: COSYNC_ETIMEDOUT */
    PATH_WAIT,     /* it waits on the queue */
};

/* Where a call's wait stood when the first cancellation during it came. */
enum fate {
    FATE_NONE,       /* no cancellation came */
    FATE_CANCELED,   /* waiting: COSYNC_ECANCELED */
    FATE_GIVEN_BACK, /* a get handed an item: it gives it back, COSYNC_ECANCELED */
    FATE_KEPT,       /* a put given a slot, a join woken: it completes, the cancel is pending */
    FATE_TIMED_OUT,  /* the deadline came first: COSYNC_ETIMEDOUT, the cancel is pending */
};

enum shut { SHUT_NONE, SHUT_GRACEFUL, SHUT_IMMEDIATE };

/* A worker task and its call under way (main's own calls use one too). */
typedef struct worker {
    int index; /* -1: main's own call */
    cosync_task t;
    enum op op;
    size_t n; /* items a call moves, at most */
    enum deadline deadline;
    item items[MAX_BATCH];
    /* the call under way */
    int64_t dl;
    enum path path;
    long ticket; /* PATH_WAIT: its place in the arrival order of its side */
    enum fate fate;
    int busy_at; /* its index in busy[] while in a call that may suspend; else -1 */
    /* what main knows of it */
    bool started, done;
    bool cancelled;          /* it will end cancelled, whatever it returns */
    bool pending;            /* a cancellation waits for its next suspension */
    bool cancelled_fresh;    /* cancelled before it ever ran: it never will */
    bool cancelled_in_yield; /* cancelled while it yielded between calls */
} worker;

/* What the checks of a call need of the state before it. */
typedef struct before {
    size_t want; /* PATH_AT_ONCE: the items it moves */
    size_t room; /* the storage's free slots, for a put that cannot grow it */
    long alloc_failures;
    long zero_events;
    uint64_t switches;
} before;

/* One seed's queue, model and workers. */
typedef struct model_state {
    uint64_t seed;
    uint64_t rng;       /* every random choice but the allocator's */
    uint64_t alloc_rng; /* the allocator's */
    enum cosync_queue_kind kind;
    size_t maxsize;
    bool flaky; /* one allocation in five fails */
    bool dense; /* the workers are dense tasks (copied stacks) */
    long alloc_failures;
    cosync_queue q;
    /* the model (its items are in model[]) */
    size_t nitems;
    long unfinished;
    long zero_events; /* times the unfinished count fell to 0: joiners wake then */
    int64_t next_serial;
    enum shut shut;
    /* the workers (in workers[] and busy[]) */
    int nworkers;
    int nbusy;
    long next_ticket[NSIDES];
    long last_served[NSIDES];
} model_state;

static model_state S;
static int64_t model[MAX_ITEMS]; /* the keys of the items in the queue, in the order they went in */
static worker workers[MAX_WORKERS];
static worker *busy[MAX_WORKERS]; /* the workers in a call that may suspend */

/* Over all seeds, for the summary line. */
static struct {
    long calls, waits, timeouts, cancels, given_back, kept, alloc_failures;
} total;

/* ========================================================================
 * Failing
 * ===================================================================== */

static const char *const kind_names[] = {"FIFO", "LIFO", "priority"};

/* CHECK__FAIL, naming the seed: the failure replays. */
#define FAIL(fmt, ...)                                                                             \
    CHECK__FAIL("seed %llu (%s queue, maxsize %zu): " fmt, (unsigned long long)S.seed,             \
                kind_names[S.kind], S.maxsize, __VA_ARGS__)

/* Whose check failed: main's step (@w NULL), or a call of main or a worker. */
static const char *who(const worker *w)
{
    static char buf[160];
    if (!w)
        return "main";
    int len = w->index < 0 ? snprintf(buf, sizeof buf, "main: %s", op_names[w->op])
                           : snprintf(buf, sizeof buf, "worker %d: %s", w->index, op_names[w->op]);
    if (w->op == OP_PUT_MANY || w->op == OP_GET_MANY)
        len += snprintf(buf + len, sizeof buf - (size_t)len, " of %zu", w->n);
    if (w->dl == COSYNC_FOREVER)
        snprintf(buf + len, sizeof buf - (size_t)len, ", no deadline");
    else
        snprintf(buf + len, sizeof buf - (size_t)len, ", deadline %lld at %lld", (long long)w->dl,
                 (long long)cosync_now());
    return buf;
}

/* The name of a call's result: a count, or an error code. */
static const char *rc_name(int rc)
{
    return rc >= 0 ? "count" : cosync_err_name(rc);
}

/* ========================================================================
 * The queue's state, as a newcomer sees it
 * ===================================================================== */

static size_t items_free(void)
{
    return S.q.count > S.q.reserved_items ? S.q.count - S.q.reserved_items : 0;
}

static size_t slots_free(void)
{
    if (S.maxsize == 0)
        return SIZE_MAX;
    size_t used = S.q.count + S.q.reserved_slots;
    return used < S.maxsize ? S.maxsize - used : 0;
}

static size_t min_size(size_t a, size_t b)
{
    return a < b ? a : b;
}

/* ========================================================================
 * The model
 * ===================================================================== */

static int priority(int64_t key)
{
    return (int)(key % NPRIO);
}

static int by_priority(const void *a, const void *b, void *arg)
{
    (void)arg;
    int x = priority(((const item *)a)->key), y = priority(((const item *)b)->key);
    return (x > y) - (x < y);
}

/* The queue's storage allocator: in a flaky seed, one allocation in five fails. */
static void *flaky_realloc(void *ud, void *ptr, size_t size)
{
    (void)ud;
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    if (S.flaky && rnd(&S.alloc_rng, 5) == 0) {
        S.alloc_failures++;
        return NULL;
    }
    return realloc(ptr, size);
}

static void model_put(const worker *w, const item *it)
{
    if (S.nitems == MAX_ITEMS)
        FAIL("%s: more than %d items in the queue", who(w), MAX_ITEMS);
    model[S.nitems++] = it->key;
    S.unfinished++;
}

/* Where in the model the next take must be. In FIFO the items handed to
 * woken getters are the front ones: a woken getter takes the front one (any
 * woken getter may run first), any other take the first one behind them. */
static size_t next_index(bool woken_first)
{
    switch (S.kind) {
    case COSYNC_QUEUE_FIFO:
        return woken_first ? 0 : S.q.reserved_items;
    case COSYNC_QUEUE_LIFO:
        return S.nitems - 1;
    default: {
        size_t best = 0; /* the first of the smallest priority */
        for (size_t i = 1; i < S.nitems; i++)
            if (priority(model[i]) < priority(model[best]))
                best = i;
        return best;
    }
    }
}

static void model_take(const worker *w, const item *it, bool woken_first)
{
    if (it->not_key != ~it->key)
        FAIL("%s: got a torn item (key %lld, check %lld)", who(w), (long long)it->key,
             (long long)it->not_key);
    size_t at = 0;
    while (at < S.nitems && model[at] != it->key)
        at++;
    if (at == S.nitems)
        FAIL("%s: got item %lld, which is not in the queue", who(w), (long long)it->key);
    size_t want = next_index(woken_first);
    if (at != want)
        FAIL("%s: got the item at %zu of %zu, expected the one at %zu", who(w), at, S.nitems, want);
    memmove(model + at, model + at + 1, (S.nitems - at - 1) * sizeof *model);
    S.nitems--;
}

/* @n items are done (at most the unfinished ones): joiners wake at 0. */
static void model_done(long n)
{
    if (n > S.unfinished)
        n = S.unfinished;
    if (n == 0)
        return;
    S.unfinished -= n;
    if (S.unfinished == 0)
        S.zero_events++;
}

/* An immediate shutdown drops every item, each counted as done. */
static void model_drop_all(void)
{
    model_done((long)S.nitems);
    S.nitems = 0;
}

/* Mark most of the @got items just taken done; join waits on for the rest. */
static void task_done_some(const worker *w, int got)
{
    for (int i = 0; i < got; i++) {
        if (rnd(&S.rng, 4) == 0)
            continue;
        int rc = cosync_queue_task_done(&S.q);
        int want = S.unfinished > 0 ? 0 : COSYNC_EOVERFLOW;
        if (rc != want)
            FAIL("%s: task_done returned %s with %ld unfinished", who(w), cosync_err_name(rc),
                 S.unfinished);
        model_done(1);
    }
}

/* ========================================================================
 * The queue's private state, against the model and the workers
 * ===================================================================== */

static const cosync__waiter *waiter_of(const worker *w)
{
    return &w->t.rec->w;
}

static bool waits_on_queue(const worker *w)
{
    const cosync__waiter *wt = waiter_of(w);
    return wt->state == COSYNC__W_WAITING && wt->obj == &S.q;
}

static enum side side_of(enum op op)
{
    return op == OP_JOIN ? SIDE_JOIN : op <= OP_PUT_MANY ? SIDE_PUT : SIDE_GET;
}

/* The waiters are the workers waiting on the queue; the reservations, the
 * workers woken with an item or a slot that have not run yet. */
static void check_waiters(const worker *w)
{
    unsigned waiting[NSIDES] = {0};
    size_t reserved[NSIDES] = {0};
    for (int i = 0; i < S.nbusy; i++) {
        const cosync__waiter *wt = waiter_of(busy[i]);
        if (wt->obj != &S.q)
            continue; /* delivering a pending cancellation */
        enum side side = side_of(busy[i]->op);
        if (wt->state == COSYNC__W_WAITING)
            waiting[side]++;
        else if (wt->state == COSYNC__W_GRANTED && wt->result == 0)
            reserved[side]++;
    }
    const cosync_queue *q = &S.q;
    if (q->putters.n != waiting[SIDE_PUT] || q->getters.n != waiting[SIDE_GET] ||
        q->joiners.n != waiting[SIDE_JOIN])
        FAIL("%s: %u putters, %u getters, %u joiners wait; the workers say %u, %u, %u", who(w),
             q->putters.n, q->getters.n, q->joiners.n, waiting[SIDE_PUT], waiting[SIDE_GET],
             waiting[SIDE_JOIN]);
    if (q->reserved_slots != reserved[SIDE_PUT] || q->reserved_items != reserved[SIDE_GET])
        FAIL("%s: %zu slots and %zu items reserved; the workers woken hold %zu and %zu", who(w),
             q->reserved_slots, q->reserved_items, reserved[SIDE_PUT], reserved[SIDE_GET]);
}

/* The queue's state agrees with the model, and nobody waits for nothing. */
static void check_queue(const worker *w)
{
    const cosync_queue *q = &S.q;
    if (q->count != S.nitems || (long)q->unfinished != S.unfinished)
        FAIL("%s: the queue holds %zu items, %zu unfinished; the model %zu, %ld", who(w), q->count,
             q->unfinished, S.nitems, S.unfinished);
    if (q->count + q->reserved_slots > q->capacity || (S.maxsize && q->capacity > S.maxsize))
        FAIL("%s: storage of %zu slots for %zu items and %zu reserved slots", who(w), q->capacity,
             q->count, q->reserved_slots);
    if (q->getters.n && (items_free() > 0 || (q->shutdown && q->count == 0)))
        FAIL("%s: %u getters wait with %zu items free (%zu in all, shut down: %d)", who(w),
             q->getters.n, items_free(), q->count, q->shutdown);
    if (q->putters.n && (q->shutdown || slots_free() > 0))
        FAIL("%s: %u putters wait with %zu slots free (shut down: %d)", who(w), q->putters.n,
             slots_free(), q->shutdown);
    if (q->joiners.n && q->unfinished == 0)
        FAIL("%s: %u joiners wait with nothing unfinished", who(w), q->joiners.n);
    bool idle = S.kind == COSYNC_QUEUE_FIFO && !q->getters.n && !q->putters.n && !q->gap;
    size_t put_below = idle && !q->shutdown ? q->capacity - q->reserved_slots : 0;
    size_t get_above = idle && !q->reserved_items ? 0 : SIZE_MAX;
    if (q->put_below != put_below || q->get_above != get_above)
        FAIL("%s: put_below %zu, get_above %zu; expected %zu, %zu", who(w), q->put_below,
             q->get_above, put_below, get_above);
    check_waiters(w);
}

/* ========================================================================
 * Calls
 * ===================================================================== */

static void busy_add(worker *w)
{
    w->busy_at = S.nbusy;
    busy[S.nbusy++] = w;
}

static void busy_remove(worker *w)
{
    worker *last = busy[--S.nbusy];
    busy[w->busy_at] = last;
    last->busy_at = w->busy_at;
    w->busy_at = -1;
}

static int64_t deadline_of(enum deadline d)
{
    switch (d) {
    case DL_FOREVER:
        return COSYNC_FOREVER;
    case DL_NONE:
        return 0;
    default:
        return cosync_now() + COSYNC_MS(rnd(&S.rng, 6)); /* + 0: reached already */
    }
}

static void new_items(worker *w)
{
    for (size_t i = 0; i < w->n; i++) {
        int64_t key = S.next_serial++ * NPRIO + rnd(&S.rng, NPRIO);
        w->items[i] = (item){key, ~key};
    }
}

/* How @w's call will go, from the state now; @b gets what its checks need. */
static enum path predict(const worker *w, before *b)
{
    const cosync_queue *q = &S.q;
    *b = (before){
        .room = q->capacity - q->count - q->reserved_slots,
        .alloc_failures = S.alloc_failures,
        .zero_events = S.zero_events,
        .switches = switches(),
    };
    bool must_wait;
    switch (side_of(w->op)) {
    case SIDE_PUT:
        if (q->shutdown)
            return PATH_SHUTDOWN;
        must_wait = q->putters.n > 0 || slots_free() == 0;
        b->want = min_size(w->n, slots_free());
        break;
    case SIDE_GET:
        must_wait = q->getters.n > 0 || items_free() == 0;
        if (must_wait && q->shutdown && q->count == 0)
            return PATH_SHUTDOWN;
        b->want = min_size(w->n, items_free());
        break;
    default:
        must_wait = q->unfinished > 0;
    }
    if (!must_wait)
        return PATH_AT_ONCE;
    if (w->dl == 0)
        return PATH_AGAIN;
    if (w->pending)
        return PATH_DELIVER;
    if (w->dl != COSYNC_FOREVER && w->dl <= cosync_now())
        return PATH_PASSED;
    return PATH_WAIT;
}

/* The call; a put or get of one item returns its count, 1, on success. */
static int invoke(worker *w)
{
    int rc;
    switch (w->op) {
    case OP_PUT:
        rc = cosync_queue_put(&S.q, &w->items[0], w->dl);
        return rc == 0 ? 1 : rc;
    case OP_PUT_MANY:
        return cosync_queue_put_many(&S.q, w->items, w->n, w->dl);
    case OP_GET:
        rc = cosync_queue_get(&S.q, &w->items[0], w->dl);
        return rc == 0 ? 1 : rc;
    case OP_GET_MANY:
        return cosync_queue_get_many(&S.q, w->items, w->n, w->dl);
    default:
        return cosync_queue_join(&S.q, w->dl);
    }
}

/* What a call that completes at once returns: what fits, unless the
 * storage had to grow and could not. */
static int at_once_result(const worker *w, const before *b)
{
    if (side_of(w->op) == SIDE_PUT && b->want > b->room && S.alloc_failures != b->alloc_failures)
        return b->room ? (int)b->room : COSYNC_ENOMEM;
    return (int)b->want;
}

/* A waiter served: every waiter of its side that came earlier has been. */
static void check_served_in_order(const worker *w)
{
    enum side side = side_of(w->op);
    if (w->ticket < S.last_served[side])
        FAIL("%s: served as arrival %ld, after arrival %ld", who(w), w->ticket,
             S.last_served[side]);
    S.last_served[side] = w->ticket;
    for (int i = 0; i < S.nbusy; i++) {
        const worker *x = busy[i];
        if (side_of(x->op) == side && x->ticket < w->ticket && waits_on_queue(x))
            FAIL("%s: served as arrival %ld while worker %d, arrival %ld, still waits", who(w),
                 w->ticket, x->index, x->ticket);
    }
}

/* Why @rc cannot end @w's call, which waited on the queue; NULL if it can. */
static const char *waited_wrong(const worker *w, const before *b, int rc)
{
    switch (w->fate) {
    case FATE_NONE:
        if (rc == COSYNC_ECANCELED)
            return "cancelled, but no cancellation came";
        break;
    case FATE_CANCELED:
    case FATE_GIVEN_BACK:
        if (rc != COSYNC_ECANCELED)
            return "cancelled while waiting, or with an item handed to it, it did not fail";
        return NULL;
    case FATE_KEPT:
        if (rc < 0 && rc != COSYNC_ESHUTDOWN)
            return "cancelled after its slot or wake-up was granted, it did not complete";
        break;
    case FATE_TIMED_OUT:
        if (rc != COSYNC_ETIMEDOUT)
            return "cancelled after it timed out, it did not report the timeout";
        break;
    }
    enum side side = side_of(w->op);
    switch (rc) {
    case COSYNC_ETIMEDOUT:
        return w->dl == COSYNC_FOREVER || cosync_now() < w->dl ? "timed out before its deadline"
                                                               : NULL;
    case COSYNC_ESHUTDOWN:
        if (side == SIDE_JOIN || S.shut == SHUT_NONE)
            return "shut down, but the queue is not";
        return side == SIDE_GET && S.q.count > 0 ? "shut down with items left" : NULL;
    }
    if (rc < 0)
        return "not a documented result";
    if (side == SIDE_JOIN)
        return rc != 0 || S.zero_events == b->zero_events ? "no fall to 0 unfinished" : NULL;
    if (rc == 0 || (size_t)rc > w->n)
        return "a wrong count";
    if (side == SIDE_PUT && S.shut != SHUT_NONE)
        return "put into a shut down queue";
    if (side == SIDE_GET && S.shut == SHUT_IMMEDIATE)
        return "got from a queue shut down immediately";
    return NULL;
}

/* @rc is what @w's call had to return, by the path predicted for it. */
static void check_result(const worker *w, const before *b, int rc)
{
    bool switched = switches() != b->switches;
    int want;
    switch (w->path) {
    case PATH_AT_ONCE:
        want = at_once_result(w, b);
        break;
    case PATH_SHUTDOWN:
        want = COSYNC_ESHUTDOWN;
        break;
    case PATH_AGAIN:
        want = COSYNC_EAGAIN;
        break;
    case PATH_PASSED:
        want = COSYNC_ETIMEDOUT;
        break;
    case PATH_DELIVER:
        if (rc != COSYNC_ECANCELED)
            FAIL("%s: returned %d (%s), its pending cancellation not delivered", who(w), rc,
                 rc_name(rc));
        return;
    default: {
        const char *wrong = switched ? waited_wrong(w, b, rc) : "had to wait, but did not suspend";
        if (wrong)
            FAIL("%s: returned %d (%s) after waiting: %s", who(w), rc, rc_name(rc), wrong);
        if (rc > 0)
            check_served_in_order(w);
        return;
    }
    }
    if (rc != want || switched)
        FAIL("%s: returned %d (%s)%s, expected %d (%s) at once", who(w), rc, rc_name(rc),
             switched ? " after suspending" : "", want, rc_name(want));
}

/* Put the items moved into the model, or take them out of it. */
static void record(const worker *w, int rc)
{
    if (rc <= 0)
        return;
    if (side_of(w->op) == SIDE_PUT) {
        for (int i = 0; i < rc; i++)
            model_put(w, &w->items[i]);
    } else if (side_of(w->op) == SIDE_GET) {
        for (int i = 0; i < rc; i++)
            model_take(w, &w->items[i], w->path == PATH_WAIT && i == 0);
        task_done_some(w, rc);
    }
}

/* Make @w's call (new items, a new deadline) and check it. */
static int do_call(worker *w)
{
    w->dl = deadline_of(w->deadline);
    if (side_of(w->op) == SIDE_PUT)
        new_items(w);
    else
        memset(w->items, 0xee, sizeof w->items); /* an item not copied out shows torn */
    before b;
    w->path = predict(w, &b);
    w->fate = FATE_NONE;
    w->ticket = w->path == PATH_WAIT ? ++S.next_ticket[side_of(w->op)] : 0;
    bool may_suspend = w->path == PATH_WAIT || w->path == PATH_DELIVER;
    if (may_suspend)
        busy_add(w);
    int rc = invoke(w);
    if (may_suspend)
        busy_remove(w);
    check_result(w, &b, rc);
    if (rc == COSYNC_ECANCELED)
        w->pending = false;
    record(w, rc);
    check_queue(w);
    total.calls++;
    total.waits += w->path == PATH_WAIT;
    total.timeouts += rc == COSYNC_ETIMEDOUT;
    return rc;
}

/* ========================================================================
 * Cancellation
 * ===================================================================== */

/* What a cancellation would do to @w's call, suspended in its wait. */
static enum fate fate_if_cancelled(const worker *w)
{
    const cosync__waiter *wt = waiter_of(w);
    switch (wt->state) {
    case COSYNC__W_WAITING:
        return FATE_CANCELED;
    case COSYNC__W_GRANTED:
        if (side_of(w->op) != SIDE_GET)
            return FATE_KEPT;
        return wt->result == 0 ? FATE_GIVEN_BACK : FATE_CANCELED; /* a get's grant is revocable */
    case COSYNC__W_CANCELLED:
        return wt->result == COSYNC_ETIMEDOUT ? FATE_TIMED_OUT : FATE_CANCELED;
    default:
        FAIL("%s: suspended in its call, its waiter in state %d", who(w), wt->state);
    }
}

static void cancel_worker(worker *w)
{
    if (w->cancelled_fresh)
        return; /* it will never run */
    bool in_call = w->busy_at >= 0;
    enum fate fate = in_call ? fate_if_cancelled(w) : FATE_NONE;
    int rc = cosync_task_cancel(w->t);
    int want = w->done ? COSYNC_EALREADY : 0;
    if (rc != want)
        FAIL("%s: cancel returned %s, expected %s", who(w), cosync_err_name(rc),
             cosync_err_name(want));
    if (w->done)
        return;
    total.cancels++;
    w->cancelled = true;
    if (!w->started) {
        w->cancelled_fresh = true;
    } else if (!in_call) {
        w->cancelled_in_yield = true;
    } else if (w->fate == FATE_NONE) {
        w->fate = fate;
        total.given_back += fate == FATE_GIVEN_BACK;
        total.kept += fate == FATE_KEPT;
    }
    if (fate == FATE_KEPT || fate == FATE_TIMED_OUT)
        w->pending = true;
}

/* A yield between two calls: it delivers a pending cancellation, or one
 * that comes meanwhile. */
static int yield_between(worker *w)
{
    bool pending = w->pending;
    w->cancelled_in_yield = false;
    int rc = cosync_yield();
    int want = pending || w->cancelled_in_yield ? COSYNC_ECANCELED : 0;
    if (rc != want)
        FAIL("worker %d: yield returned %s, expected %s", w->index, cosync_err_name(rc),
             cosync_err_name(want));
    w->pending = false;
    return rc;
}

/* ========================================================================
 * Tasks
 * ===================================================================== */

static int worker_main(void *arg, void **result)
{
    (void)result;
    worker *w = arg;
    w->started = true;
    int calls = 1 + (int)rnd(&S.rng, MAX_CALLS);
    for (int i = 0; i < calls; i++) {
        int rc = do_call(w);
        if (rc == COSYNC_ECANCELED || rc == COSYNC_ESHUTDOWN || w->op == OP_JOIN)
            break;
        if (rnd(&S.rng, 2) && yield_between(w) == COSYNC_ECANCELED)
            break;
    }
    w->done = true;
    return 0;
}

static size_t batch_of(enum op op)
{
    return op == OP_PUT_MANY || op == OP_GET_MANY ? 1 + rnd(&S.rng, MAX_BATCH) : 1;
}

static void spawn_worker(void)
{
    uint32_t o = rnd(&S.rng, 100);
    enum op op = o < 30   ? OP_PUT
                 : o < 45 ? OP_PUT_MANY
                 : o < 75 ? OP_GET
                 : o < 95 ? OP_GET_MANY
                          : OP_JOIN;
    size_t n = batch_of(op);
    uint32_t d = rnd(&S.rng, 10);
    worker *w = &workers[S.nworkers];
    *w = (worker){
        .index = S.nworkers,
        .op = op,
        .n = n,
        .deadline = d < 4   ? DL_FOREVER
                    : d < 5 ? DL_NONE
                            : DL_TIMED,
        .busy_at = -1,
    };
    int rc = cosync_task_spawn(&w->t, worker_main, w, &(cosync_task_opts){.dense = S.dense});
    if (rc)
        FAIL("%s: spawn returned %s", who(w), cosync_err_name(rc));
    S.nworkers++;
}

/* A put or get (of one or many) by main itself, deadline 0. */
static void main_call(void)
{
    bool put = rnd(&S.rng, 2);
    bool many = rnd(&S.rng, 3) == 0;
    enum op op = put ? (many ? OP_PUT_MANY : OP_PUT) : (many ? OP_GET_MANY : OP_GET);
    worker w = {.index = -1, .op = op, .n = batch_of(op), .deadline = DL_NONE, .busy_at = -1};
    do_call(&w);
}

static void shut_down(bool immediate)
{
    int rc = cosync_queue_shutdown(&S.q, immediate);
    if (rc)
        FAIL("main: shutdown returned %s", cosync_err_name(rc));
    if (immediate) {
        model_drop_all();
        S.shut = SHUT_IMMEDIATE;
    } else if (S.shut == SHUT_NONE) {
        S.shut = SHUT_GRACEFUL;
    }
    check_queue(NULL);
}

static void step(void)
{
    uint32_t a = rnd(&S.rng, 100);
    int rc = 0;
    if (a < 45)
        spawn_worker();
    else if (a < 60 && S.nworkers)
        cancel_worker(&workers[rnd(&S.rng, (uint32_t)S.nworkers)]);
    else if (a < 75)
        main_call();
    else if (a < 88)
        rc = cosync_yield();
    else
        rc = cosync_sleep(COSYNC_MS(rnd(&S.rng, 3)));
    if (rc)
        FAIL("main: a yield or sleep returned %s", cosync_err_name(rc));
}

/* Join @w: it ended cancelled if it was ever cancelled, and ran unless it
 * was cancelled before it could. */
static void collect(const worker *w)
{
    int status = 12345;
    int rc = cosync_task_join(w->t, &status, NULL, COSYNC_FOREVER);
    int want = w->cancelled ? COSYNC_ECANCELED : 0;
    if (rc || status != want || w->started == w->cancelled_fresh || w->done == w->cancelled_fresh)
        FAIL("worker %d: join returned %s, status %s (expected %s), started %d, done %d", w->index,
             cosync_err_name(rc), cosync_err_name(status), cosync_err_name(want), w->started,
             w->done);
}

/* Shut the queue down, collect every worker, drain what is left, settle
 * the unfinished count. */
static void finish(void)
{
    shut_down(rnd(&S.rng, 2));
    for (int i = 0; i < S.nworkers; i++)
        if (workers[i].op == OP_JOIN && !workers[i].done)
            cancel_worker(&workers[i]); /* items left unfinished: it could wait for ever */
    for (int i = 0; i < S.nworkers; i++)
        collect(&workers[i]);
    check_queue(NULL);

    worker drain = {.index = -1, .op = OP_GET, .n = 1, .deadline = DL_NONE, .busy_at = -1};
    int rc = do_call(&drain);
    while (rc > 0)
        rc = do_call(&drain);
    if (rc != COSYNC_ESHUTDOWN || S.nitems)
        FAIL("main: the drain ended with %s, %zu items in the model", cosync_err_name(rc),
             S.nitems);
    while (S.unfinished > 0) {
        if ((rc = cosync_queue_task_done(&S.q)) != 0)
            FAIL("main: task_done returned %s with %ld unfinished", cosync_err_name(rc),
                 S.unfinished);
        model_done(1);
    }
    if ((rc = cosync_queue_task_done(&S.q)) != COSYNC_EOVERFLOW)
        FAIL("main: task_done returned %s with nothing unfinished", cosync_err_name(rc));
    if ((rc = cosync_queue_join(&S.q, 0)) != 0)
        FAIL("main: join returned %s with nothing unfinished", cosync_err_name(rc));
    if ((rc = cosync_queue_destroy(&S.q)) != 0)
        FAIL("main: destroy returned %s", cosync_err_name(rc));
    /* only main is left, and no timer */
    cosync_loop_stats st = loop_stats();
    if (st.tasks_alive != 1 || st.tasks_records != 1 || st.timers != 0)
        FAIL("main: %zu tasks alive, %zu records, %zu timers left", st.tasks_alive,
             st.tasks_records, st.timers);
}

/* A worker holds a stack of its own from its first run to its end; dense
 * ones share at most the loop's shared stacks (main has its own). */
static void check_stacks(void)
{
    size_t running = 0;
    for (int i = 0; i < S.nworkers; i++)
        running += workers[i].started && !workers[i].done;
    size_t in_use = loop_stats().stacks_in_use;
    if (S.dense && COSYNC__DENSE_SUPPORTED) {
        if (in_use > 1 + COSYNC__DENSE_SLOTS || (running > 0 && in_use < 2))
            FAIL("%zu stacks in use with %zu dense workers under way", in_use, running);
    } else if (in_use != 1 + running) {
        FAIL("%zu stacks in use with %zu workers under way", in_use, running);
    }
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    int steps = MAX_STEPS / 2 + (int)rnd(&S.rng, MAX_STEPS / 2);
    int shutdown_at = rnd(&S.rng, 3) ? (int)rnd(&S.rng, (uint32_t)steps) : -1;
    for (int s = 0; s < steps; s++) {
        if (s == shutdown_at)
            shut_down(rnd(&S.rng, 2));
        step();
        check_queue(NULL);
        check_stacks();
    }
    finish();
    return 0;
}

static void run_seed(uint64_t seed)
{
    static const size_t bounds[] = {0, 1, 2, 5, 40};
    S = (model_state){.seed = seed, .rng = splitmix(seed), .alloc_rng = splitmix(~seed)};
    S.kind = (enum cosync_queue_kind)rnd(&S.rng, 3);
    S.maxsize = bounds[rnd(&S.rng, 5)];
    S.flaky = rnd(&S.rng, 3) == 0;
    S.dense = seed % 4 == 0; /* not from the stream: the seeds before it stay as they were */
    int rc = cosync_queue_init_opts(
        &S.q, &(cosync_queue_opts){.kind = S.kind,
                                   .elem_size = sizeof(item),
                                   .maxsize = S.maxsize,
                                   .cmp = by_priority,
                                   .allocator = &(cosync_allocator){.realloc = flaky_realloc}});
    if (rc)
        FAIL("init returned %s", cosync_err_name(rc));

    if ((rc = run_main_clean(seed_main, NULL)) != 0)
        FAIL("the loop's run, or main, returned %s", cosync_err_name(rc));
    total.alloc_failures += S.alloc_failures;
}

/* ========================================================================
 * main
 * ===================================================================== */

static long first_seed = 1;
static long nseeds = 4000;

TEST(test_queue_model_seeds)
{
    double secs = run_seeds(run_seed, first_seed, nseeds);
    printf("  seeds %ld to %ld: %ld calls (%ld waited, %ld timed out), %ld cancels (%ld items "
           "given back, %ld puts or joins kept), %ld failed allocations, %.2f s\n",
           first_seed, first_seed + nseeds - 1, total.calls, total.waits, total.timeouts,
           total.cancels, total.given_back, total.kept, total.alloc_failures, secs);
}

int main(void)
{
    /* about 1 s as it is, 3 s under ASan, 2 s under valgrind */
    if (UNDER_ASAN)
        nseeds = 2000;
    if (under_valgrind())
        nseeds = 500;
    nseeds = env_long("QUEUE_MODEL_SEEDS", nseeds);
    first_seed = env_long("QUEUE_MODEL_FIRST", first_seed);
    RUN(test_queue_model_seeds);
    return 0;
}
