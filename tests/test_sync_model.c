/* ctest-timeout: 120 */
/*
 * test_sync_model.c - a randomized differential test of every
 * synchronization primitive but the queues (test_queue_model.c) against a
 * model of who holds it and who waits, in what order: the Lock, the
 * Semaphore (weighted, bounded or not), the RWLock, the Barrier, the
 * Condition, the Event, the Latch, the WaitGroup and the Future.
 *
 * Each primitive's test file pins each rule of its page in docs/ down in a
 * scripted scenario, and test_stress.c checks that exclusion and the
 * permits' count are never broken; this test checks the rules themselves in
 * the interleavings nobody scripted. Each seed picks one object: a lock, a
 * semaphore (0 to 3 permits at first) or a bounded one (1 to 4), a
 * read-write lock, a barrier of 1 to 5 parties, a condition on its own lock
 * or a shared one, an event, a latch (1 to 6 count-downs), a wait group (at
 * 1 to 4) or a future; one seed in four spawns its workers as dense tasks.
 * Its main task takes 300 to 599 steps: it spawns workers, cancels random
 * ones (half the time one in a call), takes the object itself with deadline
 * 0 and gives it back in a later step (or arrives at the barrier with
 * deadline 0; or, holding the condition's lock, notifies, and at times
 * cancels a waiter it just woke; or sets or clears the event, counts the
 * latch down, adds to the wait group, completes the future with a value, an
 * error or a cancel), aborts or resets the barrier, makes the open latch or
 * the done future again, tries each misuse the object must refuse, yields
 * and sleeps. A worker makes one to three calls: an acquire (of the lock;
 * of 1 to 3 permits; of a read or the write hold; a wait on the barrier,
 * the event, the latch, the wait group or the future) with no deadline,
 * deadline 0, or one 0 to 5 ms ahead, after which it holds what it got
 * across nothing, a yield or a sleep, and gives it back; or, one time in
 * three on an event, latch, wait group or future, a change to it. Holding
 * the condition's lock, it first waits, runs a wait_for, or changes the
 * guarded value and notifies 0 to 2 waiters or all. At the end main cancels
 * every worker still under way, collects them all, and destroys the object.
 *
 * The model is the holder (or the free permits, or the readers and the
 * writer, or the barrier's broken flag, or the event's flag, the latch's or
 * wait group's count, or the future's outcome), the queue of waiters in
 * arrival order, and the condition's own queue. It grants as the
 * documentation says: at a release, and whenever a waiter leaves the queue,
 * the head is served as far as the object allows (the lock to the first
 * waiter; permits to the first while its request fits, nobody passing it; a
 * writer once the lock is free, or every reader at the head up to the next
 * writer); the arrival that fills a barrier's round gives the waiters their
 * indices in arrival order and takes the last, and an abort or a reset
 * sends them away with COSYNC_EBROKEN; an event set, a latch's last
 * count-down, a wait group's counter reaching zero or a future's completion
 * wakes every waiter there, even if the event is cleared, the group added
 * to or the future made again before they run; a condition's wait hands the
 * lock on and queues, notify(n) wakes the first n, a waiter cancelled after
 * its notify and before it ran passes the notify on, and a woken waiter
 * takes the lock back when it runs, at once if it is free, else behind the
 * lock's waiters (uninterrupted), woken waiters running in the order they
 * woke; a deadline takes a waiter off at the exact instant, before any task
 * woken then runs, timers at one instant in the order they were armed.
 * Checked:
 *  - every call's result is predicted from the state before it: a call
 *    that finds the object free (or open) and nobody waiting succeeds
 *    without suspending, whatever its deadline and even with a
 *    cancellation pending; one that has to wait returns COSYNC_EAGAIN for
 *    deadline 0, suspends once and returns COSYNC_ECANCELED for a pending
 *    cancellation, returns COSYNC_ETIMEDOUT at once for a deadline
 *    reached, and otherwise queues (nobody barges);
 *  - a call that waited returns 0 exactly when the model granted it, and
 *    then holds what it asked for (a barrier's wait returns the index the
 *    model gave it, or COSYNC_EBROKEN); COSYNC_ETIMEDOUT exactly when its
 *    deadline came first; COSYNC_ECANCELED exactly when a cancellation
 *    came while it still waited. A cancellation that comes after the grant
 *    or the deadline leaves the result alone and is delivered at the
 *    task's next suspension;
 *  - a condition's wait returns with the lock held whatever ended it, 0
 *    exactly when it kept a notify, and COSYNC_ECANCELED when a
 *    cancellation came before it ran; a cancellation while it takes the
 *    lock back waits for the next suspension; notify returns how many it
 *    woke; wait_for returns 0 only with its value reached;
 *  - after every step of every task the object's private state agrees
 *    with the model: holder (by task id), free permits, readers, writers
 *    waiting, the barrier's arrivals and broken flag, the event's flag,
 *    the latch's and the wait group's count, the future's outcome (status,
 *    value, cancelled), the condition's tasks inside
 *    a wait, and the waiters on each queue one by one (task, request, and
 *    whether it is taking a condition's lock back); and each worker woken
 *    and not yet run has its waiter in the state the model gave it
 *    (granted, or taken off with ETIMEDOUT or ECANCELED);
 *  - misuse is refused and changes nothing: a release of a free lock, or
 *    a second release right after one that handed the lock over; a
 *    read_release with no reader, a write_release with no writer or after
 *    a hand-off; requests of 0 or fewer permits, more than a bounded
 *    semaphore can hold, a bounded release past the bound; a barrier of no
 *    parties; a wait or notify without the lock, notify(-1); a count_down
 *    of an open latch, a latch of a negative count, a wait group's add
 *    below zero or past its range; a second completion of a future, a
 *    set_error of no error or of COSYNC_EAGAIN; a destroy while held or
 *    waited on (a condition's: while a task is in a wait);
 *  - releases, notifies and the changes to a gate never suspend; at the
 *    end every worker ends with the status its cancellations give it, a
 *    worker cancelled before it ran never ran, the object is free with all
 *    its permits, it destroys, and no timer is left.
 *
 * Everything runs on the virtual clock from one PRNG stream seeded by the
 * seed alone, so a seed replays exactly: a failure names its seed, and
 * SYNC_MODEL_FIRST=<seed> SYNC_MODEL_SEEDS=1 runs that one alone.
 * SYNC_MODEL_SEEDS sets how many seeds run.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "core.h" /* a task's waiter; the objects' wait queues */

#define MAX_STEPS 600
#define MAX_WORKERS MAX_STEPS /* main spawns at most one a step */
#define MAX_CALLS 3
#define NOBODY (-2)
#define MAIN (-1)

enum kind {
    K_LOCK,
    K_SEM,
    K_BSEM,
    K_RWLOCK,
    K_BARRIER,
    K_COND,
    K_EVENT,
    K_LATCH,
    K_WAITGROUP,
    K_FUTURE,
};
#define NKINDS (K_FUTURE + 1)
static const char *const kind_names[] = {
    "lock",  "semaphore", "bounded semaphore", "rwlock", "barrier", "condition",
    "event", "latch",     "wait group",        "future"};

enum hold { HOLD_NONE, HOLD_YIELD, HOLD_SLEEP };

/* How a call goes, as predicted from the state before it. */
enum path { PATH_AT_ONCE, PATH_AGAIN, PATH_DELIVER, PATH_PASSED, PATH_BROKEN, PATH_WAIT };

/* Where a worker is, as main sees it while it runs. */
enum wstate {
    WS_FRESH,     /* not run yet */
    WS_RUNNING,   /* never seen by another task */
    WS_DELIVER,   /* suspended once in an acquire to deliver a pending cancellation */
    WS_WAITING,   /* on the object's queue */
    WS_GRANTED,   /* granted (grant_rc), not yet run */
    WS_TIMED_OUT, /* taken off by its deadline, not yet run */
    WS_CANCELLED, /* taken off by a cancellation, not yet run */
    WS_HOLDING,   /* suspended while it holds (a yield or a sleep) */
    WS_BETWEEN,   /* suspended in a yield between two calls */
    WS_DONE,
    /* in a condition's wait */
    WS_COND_WAITING,   /* on the condition's queue */
    WS_WOKEN,          /* notified, or off the queue (wake_rc), not yet run */
    WS_RELOCK,         /* woken, run, waiting to take the lock back */
    WS_RELOCK_GRANTED, /* handed the lock back, not yet run */
};

typedef struct worker {
    int index;
    cosync_task t;
    uint64_t id;
    bool write; /* the lock's hold, or the rwlock's write hold */
    int64_t n;  /* permits */
    int calls;
    enum hold hold;
    /* the call under way */
    int64_t dl;
    int64_t wakes; /* the end of its hold's sleep */
    long armed;    /* the order its deadline's timer was armed in */
    int grant_rc;  /* what its grant gave it: 0, or a barrier index or COSYNC_EBROKEN */
    /* a condition's wait under way */
    bool cond_open;  /* begun and not ended */
    int cond_expect; /* what a wait that does not suspend returns */
    int wake_rc;     /* what ended its wait for a notify: 0 (notified), or the error */
    long woken;      /* the order it was made ready in when it woke */
    bool delivered;  /* woken by a pending cancellation, not off the queue */
    long target;     /* wait_for: the value it waits for */
    enum wstate state;
    int incall_at; /* its index in incall[] while woken or waiting; else -1 */
    /* what main knows of it */
    bool started, done;
    bool cancelled;       /* it will end cancelled */
    bool cancelled_fresh; /* cancelled before it ran: it never will */
    bool pending;         /* a cancellation waits for its next suspension */
    bool hit;             /* cancelled while it held or yielded between calls */
} worker;

static struct model_state {
    uint64_t seed;
    uint64_t rng;
    enum kind kind;
    bool dense;
    int64_t bound; /* the bounded semaphore's */
    cosync_lock lock;
    cosync_sem sem;
    cosync_rwlock rw;
    cosync_barrier bar;
    cosync_cond cond; /* on its own lock, or on lock */
    bool own_lock;
    cosync_event ev;
    cosync_latch latch;
    cosync_waitgroup wg;
    cosync_future fut;
    uint64_t main_id;
    /* the model */
    int holder;         /* lock, rwlock writer: a worker's index, MAIN or NOBODY */
    int64_t free;       /* semaphore: free permits */
    int64_t total;      /* semaphore: the permits there are, free or held */
    int readers;        /* rwlock */
    int parties;        /* barrier */
    bool broken;        /* barrier */
    bool is_set;        /* event */
    int64_t count;      /* latch, wait group */
    bool done;          /* future */
    int outcome;        /* future: its status (0, an error, COSYNC_ECANCELED) */
    intptr_t fut_value; /* future: its value, if set_result */
    intptr_t next_value;
    int queue[MAX_WORKERS]; /* the object's waiters (the condition's lock's) */
    int qlen;
    long next_arm;
    /* condition */
    int cqueue[MAX_WORKERS]; /* waiting for a notify */
    int cqlen;
    int in_wait; /* tasks inside a wait, from its start to its return */
    long next_woken;
    long value; /* the state the condition guards */
    /* main's own hold */
    bool main_holds, main_write;
    int64_t main_n;
    /* the workers */
    int nworkers;
    int incall[MAX_WORKERS];
    int nincall;
} S;

static worker workers[MAX_WORKERS];

static struct {
    long calls, at_once, waits, granted, timeouts, cancels, kept, misuses;
    long cond_waits, notified, forwarded, relocks;
} total;

#define FAIL(fmt, ...)                                                                             \
    CHECK__FAIL("seed %llu (%s): " fmt, (unsigned long long)S.seed, kind_names[S.kind], __VA_ARGS__)

static bool is_sem(void)
{
    return S.kind == K_SEM || S.kind == K_BSEM;
}

/* Room for the few names one message prints. */
static char *name_buf(void)
{
    static char bufs[4][96];
    static int next;
    return bufs[next++ % 4];
}

static const char *who(const worker *w)
{
    if (!w)
        return "main";
    char *buf = name_buf();
    if (is_sem())
        snprintf(buf, 96, "worker %d (%lld permits)", w->index, (long long)w->n);
    else if (S.kind == K_RWLOCK)
        snprintf(buf, 96, "worker %d (%s)", w->index, w->write ? "write" : "read");
    else
        snprintf(buf, 96, "worker %d", w->index);
    return buf;
}

/* A result: an error's name, or a barrier's index. */
static const char *rc_name(int rc)
{
    if (rc < 0)
        return cosync_err_name(rc);
    char *buf = name_buf();
    snprintf(buf, 96, "%d", rc);
    return buf;
}

/* An event, a latch or a wait group: waits pass while it is open; when
 * it opens, every waiter there is woken. */
static bool is_gate(void)
{
    return S.kind == K_EVENT || S.kind == K_LATCH || S.kind == K_WAITGROUP || S.kind == K_FUTURE;
}

static bool gate_open(void)
{
    return S.kind == K_EVENT ? S.is_set : S.kind == K_FUTURE ? S.done : S.count == 0;
}

/* A lock, alone or a condition's. */
static bool is_lock(void)
{
    return S.kind == K_LOCK || S.kind == K_COND;
}

/* The lock: the condition's own, or the one it shares. */
static cosync_lock *the_lock(void)
{
    return S.kind == K_COND ? cosync_cond_lock(&S.cond) : &S.lock;
}

/* ========================================================================
 * The model
 * ===================================================================== */

/* Whether a request finds the object free for it and nobody waiting. */
static bool fits_at_once(bool write, int64_t n)
{
    if (S.qlen)
        return false;
    switch (S.kind) {
    case K_LOCK:
    case K_COND:
        return S.holder == NOBODY;
    case K_RWLOCK:
        return S.holder == NOBODY && (!write || S.readers == 0);
    default:
        return S.free >= n;
    }
}

static void take(int who_, bool write, int64_t n)
{
    if (is_sem())
        S.free -= n;
    else if (S.kind == K_RWLOCK && !write)
        S.readers++;
    else
        S.holder = who_;
}

static void incall_add(worker *w)
{
    w->incall_at = S.nincall;
    S.incall[S.nincall++] = w->index;
}

static void incall_remove(worker *w)
{
    int last = S.incall[--S.nincall];
    S.incall[w->incall_at] = last;
    workers[last].incall_at = w->incall_at;
    w->incall_at = -1;
}

static void queue_remove_at(int k)
{
    memmove(&S.queue[k], &S.queue[k + 1], (size_t)(S.qlen - k - 1) * sizeof S.queue[0]);
    S.qlen--;
}

/* Whether the head of the queue can be served now (a barrier's round is
 * served only by the arrival that completes it). */
static bool head_fits(void)
{
    const worker *h = &workers[S.queue[0]];
    switch (S.kind) {
    case K_LOCK:
    case K_COND:
        return S.holder == NOBODY;
    case K_RWLOCK:
        return S.holder == NOBODY && (!h->write || S.readers == 0);
    case K_BARRIER:
    case K_EVENT:
    case K_LATCH:
    case K_WAITGROUP:
    case K_FUTURE:
        return false; /* served all at once: end_round, open_gate */
    default:
        return h->n <= S.free;
    }
}

/* Take the head off the queue and hand it @rc (a condition's waiter
 * taking the lock back is handed it too). */
static worker *grant_head(int rc)
{
    worker *h = &workers[S.queue[0]];
    queue_remove_at(0);
    h->state = h->state == WS_RELOCK ? WS_RELOCK_GRANTED : WS_GRANTED;
    h->grant_rc = rc;
    total.granted++;
    return h;
}

/* The round is full, or broken by an abort or a reset: every task in it
 * leaves with its index in arrival order, or with COSYNC_EBROKEN. */
static void end_round(bool broken)
{
    for (int index = 0; S.qlen; index++)
        grant_head(broken ? COSYNC_EBROKEN : index);
}

/* The gate opens: every task waiting at this moment is woken, even if it
 * closes again before they run. */
static void open_gate(void)
{
    while (S.qlen)
        grant_head(0);
}

/* Serve the head of the queue as far as the object allows (a writer
 * granted ends the batch). */
static void serve(void)
{
    while (S.qlen && head_fits()) {
        worker *h = grant_head(0);
        take(h->index, h->write, h->n);
        if (!is_sem() && h->write)
            break;
    }
}

static void give_back(bool write, int64_t n)
{
    if (is_sem())
        S.free += n;
    else if (S.kind == K_RWLOCK && !write)
        S.readers--;
    else
        S.holder = NOBODY;
    serve();
}

/* @w leaves the queue (a cancellation or its deadline): those behind it
 * may be served now. */
static void leave_queue(worker *w, enum wstate why)
{
    int k = 0;
    while (k < S.qlen && S.queue[k] != w->index)
        k++;
    if (k == S.qlen)
        FAIL("%s: leaves a queue it is not on", who(w));
    queue_remove_at(k);
    w->state = why;
    serve();
}

/* A condition's waiter is made ready: notified (@rc 0), or taken off
 * the queue by a cancellation or its deadline. Woken tasks run, and so
 * queue for the lock, in the order they were made ready. */
static void wake(worker *w, int rc)
{
    w->state = WS_WOKEN;
    w->wake_rc = rc;
    w->woken = S.next_woken++;
}

static int cqueue_pop_head(void)
{
    int i = S.cqueue[0];
    memmove(&S.cqueue[0], &S.cqueue[1], (size_t)(S.cqlen - 1) * sizeof S.cqueue[0]);
    S.cqlen--;
    return i;
}

static void cond_leave(worker *w, int rc)
{
    int k = 0;
    while (k < S.cqlen && S.cqueue[k] != w->index)
        k++;
    if (k == S.cqlen)
        FAIL("%s: leaves a condition it does not wait on", who(w));
    memmove(&S.cqueue[k], &S.cqueue[k + 1], (size_t)(S.cqlen - k - 1) * sizeof S.cqueue[0]);
    S.cqlen--;
    wake(w, rc);
}

/* notify(n): the first @n waiters, in the order they began to wait. */
static int notify_model(int n)
{
    int woken = 0;
    for (; woken < n && S.cqlen; woken++)
        wake(&workers[cqueue_pop_head()], 0);
    total.notified += woken;
    return woken;
}

/* The first waiter whose deadline has come, on the lock's queue (a task
 * taking a condition's lock back has none) or the condition's: by
 * deadline, then in the order the timers were armed. */
static worker *first_expired(int64_t now)
{
    worker *first = NULL;
    for (int pass = 0; pass < 2; pass++) {
        const int *q = pass ? S.cqueue : S.queue;
        int len = pass ? S.cqlen : S.qlen;
        for (int k = 0; k < len; k++) {
            worker *w = &workers[q[k]];
            if ((!pass && w->state != WS_WAITING) || w->dl == COSYNC_FOREVER || w->dl > now)
                continue;
            if (!first || w->dl < first->dl || (w->dl == first->dl && w->armed < first->armed))
                first = w;
        }
    }
    return first;
}

/* The deadlines that have come: each takes its waiter off, in the order
 * the timers fire, all before any task woken at that instant runs. */
static void sync_timeouts(void)
{
    int64_t now = cosync_now();
    worker *w;
    while ((w = first_expired(now)) != NULL) {
        total.timeouts++;
        if (w->state == WS_COND_WAITING)
            cond_leave(w, COSYNC_ETIMEDOUT);
        else
            leave_queue(w, WS_TIMED_OUT);
    }
}

static worker *busy_worker(uint64_t id)
{
    for (int k = 0; k < S.nincall; k++)
        if (workers[S.incall[k]].id == id)
            return &workers[S.incall[k]];
    return NULL;
}

/* The condition's woken waiters that have run since the model last looked
 * and found the lock held: each queued behind the lock's waiters, where
 * the model puts it now. They ran, and so queued, in the order they woke,
 * and none ran before one woken earlier. */
static void sync_relocks(void)
{
    if (S.kind != K_COND)
        return;
    const cosync__node *node = the_lock()->q.list.head;
    for (int k = 0; node && k < S.qlen; k++)
        node = node->next; /* the waiters the model knows (check_queue compares them) */
    long last = -1;
    for (; node; node = node->next) {
        const cosync__waiter *x = cosync__container_of(node, cosync__waiter, node);
        worker *w = busy_worker(cosync__waiter_task(x)->id);
        if (!w || w->state != WS_WOKEN || w->woken < last)
            FAIL("task #%llu queued for the lock unforeseen (model state %d, woken %ld after %ld)",
                 (unsigned long long)cosync__waiter_task(x)->id, w ? (int)w->state : -1,
                 w ? w->woken : -1, last);
        last = w->woken;
        w->state = WS_RELOCK;
        S.queue[S.qlen++] = w->index;
        total.relocks++;
    }
    for (int k = 0; k < S.nincall; k++) {
        const worker *w = &workers[S.incall[k]];
        if (w->state == WS_WOKEN && w->woken < last)
            FAIL("%s, woken before #%ld, has not run yet", who(w), last);
    }
}

/* Called by every task as it resumes or acts, so the model is never behind
 * the library when a task looks. */
static void sync_model(void)
{
    sync_timeouts(); /* first: the lock's queue is then the model's, plus those */
    sync_relocks();
}

/* ========================================================================
 * The object's state against the model
 * ===================================================================== */

static cosync__waitq *object_queue(void)
{
    switch (S.kind) {
    case K_LOCK:
    case K_COND:
        return &the_lock()->q;
    case K_RWLOCK:
        return &S.rw.q;
    case K_BARRIER:
        return &S.bar.q;
    case K_EVENT:
        return &S.ev.q;
    case K_LATCH:
        return &S.latch.q;
    case K_WAITGROUP:
        return &S.wg.q;
    case K_FUTURE:
        return &S.fut.q;
    default:
        return &S.sem.q;
    }
}

static const cosync__waiter *waiter_of(const worker *w)
{
    return &cosync__task_lookup(w->t)->w;
}

static uint64_t holder_id(void)
{
    return S.holder == MAIN ? S.main_id : S.holder == NOBODY ? 0 : workers[S.holder].id;
}

/* The condition's waiters are the model's, in its order, and so is the
 * count of the tasks inside a wait. */
static void check_cond(const worker *w)
{
    if (cosync_cond_waiters(&S.cond) != (size_t)S.cqlen || S.cond.in_wait != (unsigned)S.in_wait)
        FAIL("%s: the condition has %zu waiters and %u in a wait, the model %d and %d", who(w),
             cosync_cond_waiters(&S.cond), (unsigned)S.cond.in_wait, S.cqlen, S.in_wait);
    int k = 0;
    for (const cosync__node *node = S.cond.q.list.head; node; node = node->next, k++) {
        const cosync__waiter *x = cosync__container_of(node, cosync__waiter, node);
        if (cosync__waiter_task(x)->id != workers[S.cqueue[k]].id)
            FAIL("%s: waiter %d of the condition is task #%llu, the model's %s", who(w), k,
                 (unsigned long long)cosync__waiter_task(x)->id, who(&workers[S.cqueue[k]]));
    }
}

static void check_holders(const worker *w)
{
    switch (S.kind) {
    case K_COND:
        check_cond(w); /* and its lock: */
        /* fall through */
    case K_LOCK:
        if (cosync_lock_locked(the_lock()) != (S.holder != NOBODY) ||
            (S.holder != NOBODY && the_lock()->owner_id != holder_id()))
            FAIL("%s: the lock is %s by #%llu, the model says held by #%llu", who(w),
                 cosync_lock_locked(the_lock()) ? "held" : "free",
                 (unsigned long long)the_lock()->owner_id, (unsigned long long)holder_id());
        break;
    case K_RWLOCK:
        if (cosync_rwlock_readers(&S.rw) != (unsigned)S.readers ||
            cosync_rwlock_write_locked(&S.rw) != (S.holder != NOBODY) ||
            (S.holder != NOBODY && S.rw.writer_id != holder_id()))
            FAIL("%s: the rwlock has %u readers and writer #%llu (%d), the model %d and #%llu",
                 who(w), cosync_rwlock_readers(&S.rw), (unsigned long long)S.rw.writer_id,
                 cosync_rwlock_write_locked(&S.rw), S.readers, (unsigned long long)holder_id());
        break;
    case K_FUTURE: {
        void *value = NULL;
        int status = cosync_future_result(&S.fut, &value);
        int want = S.done ? S.outcome : COSYNC_EAGAIN;
        if (cosync_future_done(&S.fut) != S.done || status != want ||
            (intptr_t)value != (S.done && !S.outcome ? S.fut_value : 0) ||
            cosync_future_cancelled(&S.fut) != (S.done && S.outcome == COSYNC_ECANCELED))
            FAIL("%s: the future is %s with %s and %ld, the model %s with %s and %ld", who(w),
                 cosync_future_done(&S.fut) ? "done" : "pending", cosync_err_name(status),
                 (long)(intptr_t)value, S.done ? "done" : "pending", cosync_err_name(want),
                 (long)S.fut_value);
        break;
    }
    case K_EVENT:
    case K_LATCH:
    case K_WAITGROUP: {
        int64_t count = S.kind == K_LATCH       ? cosync_latch_count(&S.latch)
                        : S.kind == K_WAITGROUP ? cosync_waitgroup_count(&S.wg)
                                                : 0;
        if (S.kind == K_EVENT ? cosync_event_is_set(&S.ev) != S.is_set : count != S.count)
            FAIL("%s: the %s is at %lld (set %d), the model at %lld (%d)", who(w),
                 kind_names[S.kind], (long long)count, cosync_event_is_set(&S.ev),
                 (long long)S.count, S.is_set);
        break;
    }
    case K_BARRIER:
        if (cosync_barrier_n_waiting(&S.bar) != (unsigned)S.qlen ||
            cosync_barrier_broken(&S.bar) != S.broken ||
            cosync_barrier_parties(&S.bar) != (unsigned)S.parties)
            FAIL("%s: the barrier has %u of %u waiting (broken %d), the model %d of %d (%d)",
                 who(w), cosync_barrier_n_waiting(&S.bar), cosync_barrier_parties(&S.bar),
                 cosync_barrier_broken(&S.bar), S.qlen, S.parties, S.broken);
        break;
    default:
        if (cosync_sem_value(&S.sem) != S.free ||
            cosync_sem_locked(&S.sem) != (S.free == 0 || S.qlen > 0))
            FAIL("%s: the semaphore has %lld free (locked %d), the model %lld with %d waiting",
                 who(w), (long long)cosync_sem_value(&S.sem), cosync_sem_locked(&S.sem),
                 (long long)S.free, S.qlen);
        break;
    }
}

/* The waiters on the object's queue are the model's, in its order. */
static void check_queue(const worker *w)
{
    size_t waiters = is_lock()                          ? cosync_lock_waiters(the_lock())
                     : S.kind == K_RWLOCK               ? cosync_rwlock_waiters(&S.rw)
                     : S.kind == K_BARRIER || is_gate() ? object_queue()->n
                                                        : cosync_sem_waiters(&S.sem);
    if (waiters != (size_t)S.qlen)
        FAIL("%s: %zu waiters, the model has %d", who(w), waiters, S.qlen);
    int k = 0, writers = 0;
    for (const cosync__node *node = object_queue()->list.head; node; node = node->next, k++) {
        const cosync__waiter *x = cosync__container_of(node, cosync__waiter, node);
        const worker *m = &workers[S.queue[k]];
        uint64_t want_data = is_sem() ? (uint64_t)m->n : S.kind == K_RWLOCK ? m->write : 0;
        if (cosync__waiter_task(x)->id != m->id || x->state != COSYNC__W_WAITING ||
            x->shielded != (m->state == WS_RELOCK) ||
            ((is_sem() || S.kind == K_RWLOCK) && x->data != want_data))
            FAIL("%s: waiter %d of the queue is task #%llu (state %d, data %llu), the model's "
                 "%s (#%llu)",
                 who(w), k, (unsigned long long)cosync__waiter_task(x)->id, x->state,
                 (unsigned long long)x->data, who(m), (unsigned long long)m->id);
        writers += m->write;
    }
    if (S.kind == K_RWLOCK && S.rw.waiting_writers != (uint32_t)writers)
        FAIL("%s: %u writers waiting, the model has %d", who(w), S.rw.waiting_writers, writers);
}

/* Each worker woken and not yet run has its waiter as the model woke it. */
static void check_woken(const worker *w)
{
    for (int k = 0; k < S.nincall; k++) {
        const worker *x = &workers[S.incall[k]];
        const cosync__waiter *wt = waiter_of(x);
        bool ok;
        switch (x->state) {
        case WS_WAITING:
            ok = wt->state == COSYNC__W_WAITING;
            break;
        case WS_GRANTED:
            ok = wt->state == COSYNC__W_GRANTED && wt->result == x->grant_rc;
            break;
        case WS_TIMED_OUT:
        case WS_CANCELLED:
            ok = wt->state == COSYNC__W_CANCELLED &&
                 wt->result == (x->state == WS_TIMED_OUT ? COSYNC_ETIMEDOUT : COSYNC_ECANCELED);
            break;
        case WS_COND_WAITING:
            ok = wt->state == COSYNC__W_WAITING && wt->obj == &S.cond;
            break;
        case WS_WOKEN:
            if (x->wake_rc == 0)
                ok = wt->state == COSYNC__W_GRANTED && wt->result == 0;
            else /* a delivery's waiter is a yield's, until a cancel ends it */
                ok = (x->delivered && wt->state == COSYNC__W_WAITING) ||
                     (wt->state == COSYNC__W_CANCELLED && wt->result == x->wake_rc);
            break;
        case WS_RELOCK: /* on the lock's queue: check_queue */
            ok = wt->state == COSYNC__W_WAITING && wt->obj == the_lock();
            break;
        case WS_RELOCK_GRANTED:
            ok = wt->state == COSYNC__W_GRANTED && wt->obj == the_lock() && wt->result == 0;
            break;
        default:
            ok = false;
        }
        if (!ok)
            FAIL("%s: %s is in model state %d, its waiter in state %d with %s", who(w), who(x),
                 x->state, wt->state, cosync_err_name(wt->result));
    }
}

static void check_object(const worker *w)
{
    sync_model();
    check_holders(w);
    check_queue(w);
    check_woken(w);
}

/* ========================================================================
 * The calls
 * ===================================================================== */

static int call_acquire(bool write, int64_t n, int64_t dl, bool try_form)
{
    switch (S.kind) {
    case K_LOCK:
        return cosync_lock_acquire(the_lock(), dl);
    case K_COND:
        return rnd(&S.rng, 2) ? cosync_cond_acquire(&S.cond, dl)
                              : cosync_lock_acquire(the_lock(), dl);
    case K_RWLOCK:
        if (try_form)
            return write ? cosync_rwlock_try_write(&S.rw) : cosync_rwlock_try_read(&S.rw);
        return write ? cosync_rwlock_write_acquire(&S.rw, dl)
                     : cosync_rwlock_read_acquire(&S.rw, dl);
    case K_BARRIER:
        return cosync_barrier_wait(&S.bar, dl);
    case K_EVENT:
        return cosync_event_wait(&S.ev, dl);
    case K_LATCH:
        return cosync_latch_wait(&S.latch, dl);
    case K_WAITGROUP:
        return cosync_waitgroup_wait(&S.wg, dl);
    case K_FUTURE:
        return cosync_future_wait(&S.fut, dl);
    default:
        return n == 1 && rnd(&S.rng, 2) ? cosync_sem_acquire(&S.sem, dl)
                                        : cosync_sem_acquire_many(&S.sem, n, dl);
    }
}

static int call_release(bool write, int64_t n)
{
    switch (S.kind) {
    case K_LOCK:
        return cosync_lock_release(the_lock());
    case K_COND:
        return rnd(&S.rng, 2) ? cosync_cond_release(&S.cond) : cosync_lock_release(the_lock());
    case K_RWLOCK:
        return write ? cosync_rwlock_write_release(&S.rw) : cosync_rwlock_read_release(&S.rw);
    default:
        return n == 1 && rnd(&S.rng, 2) ? cosync_sem_release(&S.sem)
                                        : cosync_sem_release_many(&S.sem, n);
    }
}

/* Each call's own: no deadline, 0, or 0 to 5 ms ahead (0: reached already). */
static int64_t pick_deadline(void)
{
    uint32_t d = rnd(&S.rng, 10);
    if (d < 4)
        return COSYNC_FOREVER;
    if (d < 5)
        return 0;
    return cosync_now() + COSYNC_MS(rnd(&S.rng, 6));
}

/* A barrier's arrival does not wait when the barrier is broken, or when
 * it completes the round. */
static enum path predict_barrier(void)
{
    if (S.broken)
        return PATH_BROKEN;
    return S.qlen + 1 == S.parties ? PATH_AT_ONCE : PATH_WAIT;
}

static enum path predict(const worker *w)
{
    enum path quick = S.kind == K_BARRIER            ? predict_barrier()
                      : is_gate()                    ? (gate_open() ? PATH_AT_ONCE : PATH_WAIT)
                      : fits_at_once(w->write, w->n) ? PATH_AT_ONCE
                                                     : PATH_WAIT;
    if (quick != PATH_WAIT)
        return quick;
    if (w->dl == 0)
        return PATH_AGAIN;
    if (w->pending)
        return PATH_DELIVER;
    if (w->dl != COSYNC_FOREVER && w->dl <= cosync_now())
        return PATH_PASSED;
    return PATH_WAIT;
}

static int result_of_wait(const worker *w)
{
    switch (w->state) {
    case WS_GRANTED:
        return w->grant_rc;
    case WS_TIMED_OUT:
        return COSYNC_ETIMEDOUT;
    case WS_CANCELLED:
        return COSYNC_ECANCELED;
    default:
        FAIL("%s: resumed from its wait in model state %d", who(w), w->state);
    }
    return 1;
}

/* What a call that need not wait does to the model, and returns. */
static int at_once(int who_, bool write, int64_t n)
{
    total.at_once++;
    if (is_gate())
        return 0; /* open: it passes */
    if (S.kind != K_BARRIER) {
        take(who_, write, n);
        return 0;
    }
    end_round(false); /* the last arrival of the round */
    return S.parties - 1;
}

/* A worker's acquire (a barrier's wait), its result predicted and checked. */
static int acquire(worker *w)
{
    w->dl = pick_deadline();
    enum path path = predict(w);
    int at_once_rc[] = {0, COSYNC_EAGAIN, COSYNC_ECANCELED, COSYNC_ETIMEDOUT, COSYNC_EBROKEN};
    total.calls++;
    if (path == PATH_AT_ONCE) {
        at_once_rc[PATH_AT_ONCE] = at_once(w->index, w->write, w->n);
    } else if (path == PATH_WAIT) {
        S.queue[S.qlen++] = w->index;
        w->armed = S.next_arm++;
        w->state = WS_WAITING;
        incall_add(w);
        total.waits++;
    } else if (path == PATH_DELIVER) {
        w->state = WS_DELIVER;
    }
    uint64_t before = switches();
    int rc = call_acquire(w->write, w->n, w->dl, w->dl == 0 && rnd(&S.rng, 2));
    bool switched = switches() != before;
    sync_model();
    int want;
    if (path == PATH_WAIT) {
        want = result_of_wait(w);
        incall_remove(w);
        if (rc != want || !switched)
            FAIL("%s: returned %s (switched %d) from its wait, expected %s", who(w), rc_name(rc),
                 switched, rc_name(want));
    } else {
        want = at_once_rc[path];
        /* a delivery suspends, but switches only if another task is ready */
        if (rc != want || (switched && path != PATH_DELIVER))
            FAIL("%s: returned %s (switched %d), expected %s (path %d, deadline %lld, now %lld)",
                 who(w), rc_name(rc), switched, rc_name(want), path, (long long)w->dl,
                 (long long)cosync_now());
    }
    if (path == PATH_DELIVER || rc == COSYNC_ECANCELED)
        w->pending = false;
    w->state = WS_RUNNING;
    check_object(w);
    return rc;
}

/* Before a suspension of @w: a pending cancellation is delivered by it. */
static bool start_suspension(worker *w, enum wstate state)
{
    bool was_pending = w->pending;
    w->pending = w->hit = false;
    w->state = state;
    return was_pending;
}

/* What the suspension returned: the cancellation that was pending, or one
 * that came while it was suspended (one that came after its sleep ended
 * waits for the next). */
static void check_suspension(worker *w, bool was_pending, int rc, const char *what)
{
    int want = was_pending || w->hit ? COSYNC_ECANCELED : 0;
    if (rc != want)
        FAIL("%s: %s returned %s, expected %s", who(w), what, cosync_err_name(rc),
             cosync_err_name(want));
    w->hit = false;
    w->state = WS_RUNNING;
}

static int hold(worker *w)
{
    if (w->hold == HOLD_NONE)
        return 0; /* no suspension: a pending cancellation stays pending */
    bool was_pending = start_suspension(w, WS_HOLDING);
    int rc;
    switch (w->hold) {
    case HOLD_YIELD:
        rc = cosync_yield();
        break;
    default:
        w->wakes = cosync_deadline_after(COSYNC_MS(1 + rnd(&S.rng, 3)));
        rc = cosync_sleep_until(w->wakes);
        break;
    }
    sync_model();
    check_suspension(w, was_pending, rc, "its hold");
    return rc;
}

static void release(worker *w)
{
    give_back(w->write, w->n);
    uint64_t before = switches();
    int rc = call_release(w->write, w->n);
    if (rc || switches() != before)
        FAIL("%s: its release returned %s (switched %d)", who(w), cosync_err_name(rc),
             switches() != before);
    check_object(w);
}

static int yield_between(worker *w)
{
    bool was_pending = start_suspension(w, WS_BETWEEN);
    int rc = cosync_yield();
    sync_model();
    check_suspension(w, was_pending, rc, "a yield between its calls");
    check_object(w);
    return rc;
}

/* ========================================================================
 * A condition's waits and notifies (the lock held)
 * ===================================================================== */

/* The start of a wait (cosync_cond_wait, or a round of wait_for's loop).
 * One that cannot start returns at once and keeps the lock; otherwise the
 * lock goes to its next waiter and the task waits for a notify, or, with
 * a cancellation pending, is made ready to take COSYNC_ECANCELED. */
static void cond_wait_begin(worker *w)
{
    w->cond_open = true;
    total.cond_waits++;
    if (w->dl == 0 || (w->dl != COSYNC_FOREVER && w->dl <= cosync_now() && !w->pending)) {
        w->cond_expect = w->dl == 0 ? COSYNC_EAGAIN : COSYNC_ETIMEDOUT;
        return;
    }
    S.in_wait++;
    incall_add(w);
    give_back(true, 1); /* the lock, to its next waiter */
    w->delivered = w->pending;
    if (w->pending) {
        w->pending = false;
        wake(w, COSYNC_ECANCELED);
        return;
    }
    w->state = WS_COND_WAITING;
    w->armed = S.next_arm++;
    S.cqueue[S.cqlen++] = w->index;
}

/* A wait that began has returned: with the lock held, and what woke it. */
static void cond_wait_end(worker *w, int rc)
{
    sync_model();
    w->cond_open = false;
    int want = w->cond_expect;
    if (w->state != WS_RUNNING) {
        if (w->state == WS_WOKEN) {
            /* it ran and found the lock free: it took it at once */
            if (S.holder != NOBODY || S.qlen)
                FAIL("%s: took the lock back at once, held by %d with %d waiting", who(w), S.holder,
                     S.qlen);
            take(w->index, true, 1);
        } else if (w->state != WS_RELOCK_GRANTED) {
            FAIL("%s: returned from a condition's wait in model state %d", who(w), w->state);
        }
        want = w->wake_rc;
        S.in_wait--;
        incall_remove(w);
        w->state = WS_RUNNING;
    }
    if (rc != want)
        FAIL("%s: a condition's wait returned %s, expected %s", who(w), cosync_err_name(rc),
             cosync_err_name(want));
    check_object(w);
}

/* wait_for's predicate: called with the lock held, first and after each
 * wait that returned 0; a false one starts the next wait. */
static bool value_reached(void *arg)
{
    worker *w = arg;
    if (w->cond_open)
        cond_wait_end(w, 0);
    else
        check_object(w);
    if (S.value >= w->target)
        return true;
    cond_wait_begin(w);
    return false;
}

/* A change to the guarded state, and notify(0 to 2) or notify_all. */
static void notify(const worker *w)
{
    S.value++;
    int n = (int)rnd(&S.rng, 4);
    uint64_t before = switches();
    int rc = n == 3 ? cosync_cond_notify_all(&S.cond) : cosync_cond_notify(&S.cond, n);
    int want = notify_model(n == 3 ? S.cqlen : n);
    if (rc != want || switches() != before)
        FAIL("%s: notify(%d) returned %s (switched %d), expected %d", who(w), n, rc_name(rc),
             switches() != before, want);
    check_object(w);
}

/* A worker's use of the condition once it holds the lock: a wait, a
 * wait_for, or a notify. */
static int use_condition(worker *w)
{
    uint32_t op = rnd(&S.rng, 4);
    if (op == 3) {
        notify(w);
        return 0;
    }
    w->dl = pick_deadline();
    if (op < 2) {
        cond_wait_begin(w);
        int rc = cosync_cond_wait(&S.cond, w->dl);
        cond_wait_end(w, rc);
        return rc;
    }
    w->target = S.value + 1 + (long)rnd(&S.rng, 2);
    int rc = cosync_cond_wait_for(&S.cond, value_reached, w, w->dl);
    if (w->cond_open)
        cond_wait_end(w, rc);
    else if (rc || S.value < w->target)
        FAIL("%s: wait_for returned %s with the value %ld of %ld", who(w), cosync_err_name(rc),
             S.value, w->target);
    return rc;
}

/* ========================================================================
 * An event's set and clear, a latch's count_down, a wait group's add
 * ===================================================================== */

/* One change to the gate, by a worker or main; none suspends. */
static void gate_change(const worker *w)
{
    int rc, want = 0;
    const char *what;
    bool opens = false;
    uint64_t before = switches();
    if (S.kind == K_EVENT) {
        bool set = rnd(&S.rng, 3) != 0;
        what = set ? "set" : "clear";
        rc = set ? cosync_event_set(&S.ev) : cosync_event_clear(&S.ev);
        opens = set && !S.is_set;
        S.is_set = set;
    } else if (S.kind == K_FUTURE) {
        uint32_t how = rnd(&S.rng, 3);
        intptr_t value = ++S.next_value;
        int error = -1 - (int)rnd(&S.rng, 20);
        what = how == 0 ? "set_result" : how == 1 ? "set_error" : "cancel";
        rc = how == 0   ? cosync_future_set_result(&S.fut, (void *)value)
             : how == 1 ? cosync_future_set_error(&S.fut, error)
                        : cosync_future_cancel(&S.fut);
        if (how == 1 && error == COSYNC_EAGAIN) {
            want = COSYNC_EINVAL; /* a pending future's status: refused first */
            total.misuses++;
        } else if (S.done) {
            want = COSYNC_EALREADY; /* the first outcome stays */
            total.misuses++;
        } else {
            opens = S.done = true;
            S.outcome = how == 0 ? 0 : how == 1 ? error : COSYNC_ECANCELED;
            S.fut_value = how == 0 ? value : 0;
        }
    } else if (S.kind == K_LATCH) {
        what = "count_down";
        rc = cosync_latch_count_down(&S.latch);
        if (S.count == 0) {
            want = COSYNC_EALREADY; /* open already: nothing changes */
            total.misuses++;
        } else {
            opens = --S.count == 0;
        }
    } else {
        int64_t delta = (int64_t)rnd(&S.rng, 4) - 2; /* -2 to 1 */
        what = "add";
        rc = delta == -1 && rnd(&S.rng, 2) ? cosync_waitgroup_done(&S.wg)
                                           : cosync_waitgroup_add(&S.wg, delta);
        if (S.count + delta < 0) {
            want = COSYNC_EINVAL; /* below zero: nothing changes */
            total.misuses++;
        } else {
            opens = S.count > 0 && S.count + delta == 0;
            S.count += delta;
        }
    }
    if (opens)
        open_gate();
    if (rc != want || switches() != before)
        FAIL("%s: %s returned %s (switched %d), expected %s", who(w), what, cosync_err_name(rc),
             switches() != before, cosync_err_name(want));
    check_object(w);
}

static int worker_main(void *arg, void **result)
{
    (void)result;
    worker *w = arg;
    w->started = true;
    w->state = WS_RUNNING;
    check_object(w);
    for (int c = 0; c < w->calls; c++) {
        if (is_gate() && rnd(&S.rng, 3) == 0) {
            gate_change(w);
            continue;
        }
        int rc = acquire(w);
        if (rc >= 0 && S.kind == K_COND && use_condition(w) == COSYNC_ECANCELED) {
            release(w); /* held whatever the wait returned */
            break;
        }
        if (rc >= 0) {
            rc = hold(w); /* past a barrier or a gate: its work after it */
            if (S.kind != K_BARRIER && !is_gate())
                release(w);
        }
        if (rc == COSYNC_ECANCELED)
            break;
        if (c + 1 < w->calls && rnd(&S.rng, 2) && yield_between(w))
            break;
    }
    w->state = WS_DONE;
    w->done = true;
    return 0;
}

/* ========================================================================
 * Main's steps
 * ===================================================================== */

static int64_t permits_wanted(void)
{
    int64_t most = S.kind == K_BSEM ? S.bound : 3;
    return 1 + (int64_t)rnd(&S.rng, (uint32_t)(most < 3 ? most : 3));
}

static void spawn_worker(void)
{
    worker *w = &workers[S.nworkers];
    *w = (worker){
        .index = S.nworkers,
        .write = is_lock() || (S.kind == K_RWLOCK && rnd(&S.rng, 3) == 0),
        .n = is_sem() ? permits_wanted() : 1,
        .calls = 1 + (int)rnd(&S.rng, MAX_CALLS),
        .hold = (enum hold)rnd(&S.rng, 3),
        .dl = COSYNC_FOREVER,
        .incall_at = -1,
    };
    int rc = cosync_task_spawn(&w->t, worker_main, w, &(cosync_task_opts){.dense = S.dense});
    if (rc)
        FAIL("spawn of %s returned %s", who(w), cosync_err_name(rc));
    w->id = cosync_task_id(w->t);
    S.nworkers++;
}

static void cancel_worker(worker *w)
{
    if (w->cancelled_fresh)
        return; /* it never runs */
    switch (w->state) {
    case WS_FRESH:
        w->cancelled_fresh = true;
        break;
    case WS_WAITING:
        leave_queue(w, WS_CANCELLED); /* at once, in the cancel */
        break;
    case WS_GRANTED:
    case WS_TIMED_OUT:
        w->pending = true; /* the result stands */
        total.kept += w->state == WS_GRANTED;
        break;
    case WS_HOLDING:
        /* a sleep whose end has come is over: the cancellation waits */
        if (w->hold == HOLD_SLEEP && w->wakes <= cosync_now())
            w->pending = true;
        else
            w->hit = true;
        break;
    case WS_BETWEEN:
        w->hit = true;
        break;
    case WS_COND_WAITING:
        cond_leave(w, COSYNC_ECANCELED);
        break;
    case WS_WOKEN:
        if (w->wake_rc == 0 && !w->delivered) {
            /* notified, not yet run: the notify goes to the next waiter */
            w->wake_rc = COSYNC_ECANCELED;
            total.forwarded += notify_model(1);
        } else if (w->wake_rc == COSYNC_ETIMEDOUT) {
            w->pending = true;
        } /* else a cancellation is on its way already: they do not stack up */
        break;
    case WS_RELOCK:
    case WS_RELOCK_GRANTED:
        w->pending = true; /* taking the lock back is not interrupted */
        break;
    case WS_DELIVER:
    case WS_CANCELLED:
    case WS_DONE:
        break; /* it returns COSYNC_ECANCELED anyway, or has ended */
    case WS_RUNNING:
        FAIL("%s is running while main runs", who(w));
    }
    int rc = cosync_task_cancel(w->t);
    int want = w->done ? COSYNC_EALREADY : 0;
    if (rc != want)
        FAIL("%s: cancel returned %s, expected %s", who(w), cosync_err_name(rc),
             cosync_err_name(want));
    if (!w->done) {
        w->cancelled = true;
        total.cancels++;
    }
    check_object(NULL);
}

/* Main takes the object with deadline 0, and keeps it until a later step
 * (a gate: main changes it). */
static void main_take(void)
{
    if (is_gate()) {
        gate_change(NULL);
        return;
    }
    bool write = is_lock() || (S.kind == K_RWLOCK && rnd(&S.rng, 2));
    int64_t n = is_sem() ? permits_wanted() : 1;
    bool fits = fits_at_once(write, n);
    uint64_t before = switches();
    int rc = call_acquire(write, n, 0, rnd(&S.rng, 2));
    int want = fits ? 0 : COSYNC_EAGAIN;
    if (S.kind == K_BARRIER) { /* a wait with deadline 0: main holds nothing after it */
        enum path path = predict_barrier();
        want = path == PATH_BROKEN ? COSYNC_EBROKEN
               : path == PATH_WAIT ? COSYNC_EAGAIN
                                   : at_once(MAIN, 0, 0);
        fits = false;
    }
    if (rc != want || switches() != before)
        FAIL("main: a try returned %s, expected %s", rc_name(rc), rc_name(want));
    if (fits) {
        take(MAIN, write, n);
        S.main_holds = true;
        S.main_write = write;
        S.main_n = n;
    }
    check_object(NULL);
}

/* Main gives back what it holds. A second release right after is refused
 * for the lock and the write hold: the object is free, or handed to a
 * waiter that has not run yet. */
static void main_release(void)
{
    give_back(S.main_write, S.main_n);
    S.main_holds = false;
    int rc = call_release(S.main_write, S.main_n);
    if (rc)
        FAIL("main: its release returned %s", cosync_err_name(rc));
    check_object(NULL);
    if (is_lock() || (S.kind == K_RWLOCK && S.main_write)) {
        rc = call_release(true, 1);
        if (rc != COSYNC_EPERM)
            FAIL("main: a second release returned %s", cosync_err_name(rc));
        total.misuses++;
        check_object(NULL);
    }
}

static void expect_refused(int rc, int want, const char *what)
{
    if (rc != want)
        FAIL("main: %s returned %s, expected %s", what, cosync_err_name(rc), cosync_err_name(want));
    total.misuses++;
    check_object(NULL);
}

static int destroy_object(void)
{
    int rc;
    switch (S.kind) {
    case K_COND: /* with its own lock; a shared one is destroyed apart */
        if ((rc = cosync_cond_destroy(&S.cond)) != 0 || S.own_lock)
            return rc;
        /* fall through */
    case K_LOCK:
        return cosync_lock_destroy(the_lock());
    case K_RWLOCK:
        return cosync_rwlock_destroy(&S.rw);
    case K_BARRIER:
        return cosync_barrier_destroy(&S.bar);
    case K_LATCH:
        return cosync_latch_destroy(&S.latch);
    case K_WAITGROUP:
        return cosync_waitgroup_destroy(&S.wg);
    case K_EVENT:
    case K_FUTURE:
        return 0; /* neither has a destroy */
    default:
        return cosync_sem_destroy(&S.sem);
    }
}

/* A barrier's abort or reset (the round being filled leaves with
 * COSYNC_EBROKEN), or a barrier of no parties refused. */
static void barrier_step(void)
{
    uint32_t r = rnd(&S.rng, 8);
    if (r < 4) {
        bool aborts = r == 0;
        int rc = aborts ? cosync_barrier_abort(&S.bar) : cosync_barrier_reset(&S.bar);
        if (rc)
            FAIL("main: %s returned %s", aborts ? "abort" : "reset", cosync_err_name(rc));
        end_round(true);
        S.broken = aborts;
        check_object(NULL);
        return;
    }
    cosync_barrier none = COSYNC_BARRIER_INIT(0);
    expect_refused(cosync_barrier_wait(&none, COSYNC_FOREVER), COSYNC_EINVAL,
                   "a wait on a barrier of no parties");
    expect_refused(cosync_barrier_init(&none, 0), COSYNC_EINVAL, "a barrier of no parties");
}

/* A condition's misuses (and a wait with deadline 0, which keeps the
 * lock). Its destroy does not look at a shared lock, so it is tried only
 * while a task is inside a wait. */
static void cond_misuse(void)
{
    if (S.in_wait && rnd(&S.rng, 4) == 0)
        expect_refused(cosync_cond_destroy(&S.cond), COSYNC_EBUSY, "a destroy during a wait");
    if ((S.holder != NOBODY || S.qlen) && rnd(&S.rng, 4) == 0)
        expect_refused(S.own_lock ? cosync_cond_destroy(&S.cond) : cosync_lock_destroy(the_lock()),
                       COSYNC_EBUSY, "a destroy of the lock in use");
    expect_refused(cosync_cond_notify(&S.cond, -1), COSYNC_EINVAL, "notify(-1)");
    if (S.main_holds) {
        uint64_t before = switches();
        expect_refused(cosync_cond_wait(&S.cond, 0), COSYNC_EAGAIN, "a wait with deadline 0");
        if (switches() != before)
            FAIL("main: a wait with deadline 0 switched (%d)", 1);
        return;
    }
    expect_refused(cosync_cond_wait(&S.cond, COSYNC_FOREVER), COSYNC_EPERM,
                   "a wait without the lock");
    expect_refused(cosync_cond_notify(&S.cond, 1), COSYNC_EPERM, "a notify without the lock");
    expect_refused(cosync_cond_notify_all(&S.cond), COSYNC_EPERM, "a notify_all without the lock");
    if (S.holder == NOBODY)
        expect_refused(cosync_cond_release(&S.cond), COSYNC_EPERM, "a release of a free lock");
}

/* A latch or wait group destroyed while tasks wait; an add past the
 * counter's range or below zero; a latch of a negative count, or one made
 * again once it is open and nobody waits; a set_error of no error, or a
 * done future made again. */
static void gate_misuse(void)
{
    if (S.kind == K_FUTURE) {
        if (S.done && !S.qlen) { /* a future used again, as test_stress does */
            cosync_future_init(&S.fut);
            S.done = false;
            check_object(NULL);
        } else if (!S.done) {
            expect_refused(cosync_future_set_error(&S.fut, 5), COSYNC_EINVAL,
                           "a set_error of no error");
        }
        return;
    }
    if (S.kind == K_EVENT) { /* nothing to misuse: a wait with deadline 0 */
        uint64_t before = switches();
        int rc = cosync_event_wait(&S.ev, 0), want = S.is_set ? 0 : COSYNC_EAGAIN;
        if (rc != want || switches() != before)
            FAIL("main: a wait with deadline 0 returned %s (switched %d), expected %s",
                 cosync_err_name(rc), switches() != before, cosync_err_name(want));
        check_object(NULL);
        return;
    }
    if (S.qlen && rnd(&S.rng, 2)) {
        expect_refused(destroy_object(), COSYNC_EBUSY, "a destroy while waited on");
        return;
    }
    if (S.kind == K_WAITGROUP) {
        if (S.count > 0)
            expect_refused(cosync_waitgroup_add(&S.wg, INT64_MAX), COSYNC_EOVERFLOW,
                           "an add past the counter's range");
        else
            expect_refused(cosync_waitgroup_done(&S.wg), COSYNC_EINVAL, "a done at zero");
        return;
    }
    if (S.count == 0 && !S.qlen) {
        S.count = 1 + (int64_t)rnd(&S.rng, 3);
        int rc = cosync_latch_init(&S.latch, S.count);
        if (rc)
            FAIL("main: the latch's init returned %s", cosync_err_name(rc));
        check_object(NULL);
        return;
    }
    expect_refused(cosync_latch_init(&S.latch, -1), COSYNC_EINVAL, "a latch of a negative count");
}

/* One misuse the object must refuse without changing anything, or (for a
 * semaphore) permits added by main, which needs none. */
static void misuse(void)
{
    if (S.kind == K_COND) {
        cond_misuse();
        return;
    }
    if (is_gate()) {
        gate_misuse();
        return;
    }
    bool busy = S.qlen > 0 || (!is_sem() && (S.holder != NOBODY || S.readers > 0));
    if (busy && rnd(&S.rng, 4) == 0) {
        expect_refused(destroy_object(), COSYNC_EBUSY, "a destroy while in use");
        return;
    }
    switch (S.kind) {
    case K_BARRIER:
        barrier_step();
        return;
    case K_LOCK:
        if (S.holder == NOBODY)
            expect_refused(cosync_lock_release(the_lock()), COSYNC_EPERM,
                           "a release of a free lock");
        return;
    case K_RWLOCK:
        if (S.readers == 0)
            expect_refused(cosync_rwlock_read_release(&S.rw), COSYNC_EPERM,
                           "a read_release with no reader");
        if (S.holder == NOBODY)
            expect_refused(cosync_rwlock_write_release(&S.rw), COSYNC_EPERM,
                           "a write_release with no writer");
        return;
    default:
        break;
    }
    int64_t bad = -(int64_t)rnd(&S.rng, 2); /* 0 or -1 */
    switch (rnd(&S.rng, 4)) {
    case 0:
        expect_refused(cosync_sem_acquire_many(&S.sem, bad, 0), COSYNC_EINVAL,
                       "an acquire of no permits");
        return;
    case 1:
        expect_refused(cosync_sem_release_many(&S.sem, bad), COSYNC_EINVAL,
                       "a release of no permits");
        return;
    default: {
        int64_t k = 1 + (int64_t)rnd(&S.rng, 2);
        if (S.kind == K_BSEM && rnd(&S.rng, 2)) {
            expect_refused(cosync_sem_acquire_many(&S.sem, S.bound + k, COSYNC_FOREVER),
                           COSYNC_EINVAL, "an acquire of more than the bound");
            return;
        }
        if (S.kind == K_BSEM) {
            /* a release within the bound would let a holder's own release
             * overflow later: only the refused kind here */
            k = S.bound - S.free + k;
            expect_refused(cosync_sem_release_many(&S.sem, k), COSYNC_EOVERFLOW,
                           "a release past the bound");
            return;
        }
        int rc = cosync_sem_release_many(&S.sem, k);
        if (rc)
            FAIL("main: a release of %lld more permits returned %s", (long long)k,
                 cosync_err_name(rc));
        S.total += k;
        give_back(false, k);
        check_object(NULL);
        return;
    }
    }
}

/* Main notifies, and at times cancels at once a waiter the notify woke:
 * the notify must go on to the next waiter. */
static void notify_and_cancel(void)
{
    long first = S.next_woken;
    notify(NULL);
    if (S.next_woken == first || rnd(&S.rng, 2))
        return;
    long pick = first + (long)rnd(&S.rng, (uint32_t)(S.next_woken - first));
    for (int k = 0; k < S.nincall; k++)
        if (workers[S.incall[k]].state == WS_WOKEN && workers[S.incall[k]].woken == pick) {
            cancel_worker(&workers[S.incall[k]]);
            return;
        }
    FAIL("main: the waiter woken %ld is not woken", pick);
}

static void step(void)
{
    uint32_t a = rnd(&S.rng, 100);
    int rc = 0;
    if (a < 40)
        spawn_worker();
    else if (a < 52 && S.nincall && rnd(&S.rng, 2)) /* one in a call: waiting, or woken */
        cancel_worker(&workers[S.incall[rnd(&S.rng, (uint32_t)S.nincall)]]);
    else if (a < 52 && S.nworkers)
        cancel_worker(&workers[rnd(&S.rng, (uint32_t)S.nworkers)]);
    else if (a < 62 && S.kind == K_COND && S.main_holds && rnd(&S.rng, 2))
        notify_and_cancel();
    else if (a < 62)
        S.main_holds ? main_release() : main_take();
    else if (a < 68)
        misuse();
    else if (a < 80)
        rc = cosync_yield();
    else
        rc = cosync_sleep(COSYNC_MS(rnd(&S.rng, 4)));
    if (rc)
        FAIL("main: a yield or sleep returned %s", cosync_err_name(rc));
    check_object(NULL);
}

/* Join @w: it ended cancelled if it was ever cancelled, and ran unless it
 * was cancelled before it could. */
static void collect(const worker *w)
{
    int status = 12345;
    int rc = cosync_task_join(w->t, &status, NULL, COSYNC_FOREVER);
    int want = w->cancelled ? COSYNC_ECANCELED : 0;
    if (rc || status != want || w->started == w->cancelled_fresh || w->done == w->cancelled_fresh)
        FAIL("%s: join returned %s, status %s (expected %s), started %d, done %d", who(w),
             cosync_err_name(rc), cosync_err_name(status), cosync_err_name(want), w->started,
             w->done);
    check_object(NULL);
}

static void finish(void)
{
    if (S.main_holds)
        main_release();
    for (int i = 0; i < S.nworkers; i++)
        if (!workers[i].done)
            cancel_worker(&workers[i]);
    for (int i = 0; i < S.nworkers; i++)
        collect(&workers[i]);
    if (S.qlen || S.holder != NOBODY || S.readers || S.free != S.total)
        FAIL("the end: %d waiting, holder %d, %d readers, %lld of %lld permits free", S.qlen,
             S.holder, S.readers, (long long)S.free, (long long)S.total);
    int rc = destroy_object();
    if (rc)
        FAIL("destroy returned %s", cosync_err_name(rc));
    if (S.kind != K_EVENT && S.kind != K_FUTURE &&
        (rc = call_acquire(true, 1, 0, false)) != COSYNC_EINVAL)
        FAIL("an acquire after destroy returned %s", cosync_err_name(rc));
    if (S.kind == K_COND && (rc = cosync_cond_notify(&S.cond, 1)) != COSYNC_EINVAL)
        FAIL("a notify after destroy returned %s", cosync_err_name(rc));
    cosync_loop_stats st = loop_stats();
    if (st.tasks_alive != 1 || st.tasks_records != 1 || st.timers != 0)
        FAIL("the end: %zu tasks alive, %zu records, %zu timers left", st.tasks_alive,
             st.tasks_records, st.timers);
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    S.main_id = cosync_task_id(cosync_task_current());
    int steps = MAX_STEPS / 2 + (int)rnd(&S.rng, MAX_STEPS / 2);
    for (int s = 0; s < steps; s++)
        step();
    finish();
    return 0;
}

static void run_seed(uint64_t seed)
{
    S = (struct model_state){.seed = seed, .rng = splitmix(seed), .holder = NOBODY};
    S.kind = (enum kind)rnd(&S.rng, NKINDS);
    S.dense = seed % 4 == 0;
    int rc = 0;
    switch (S.kind) {
    case K_LOCK:
        cosync_lock_init(&S.lock);
        break;
    case K_RWLOCK:
        cosync_rwlock_init(&S.rw);
        break;
    case K_SEM:
        S.total = S.free = rnd(&S.rng, 4);
        rc = cosync_sem_init(&S.sem, S.free);
        break;
    case K_BSEM:
        S.bound = S.total = S.free = 1 + rnd(&S.rng, 4);
        rc = cosync_bsem_init(&S.sem, S.bound);
        break;
    case K_COND:
        S.own_lock = rnd(&S.rng, 2);
        cosync_lock_init(&S.lock);
        cosync_cond_init(&S.cond, S.own_lock ? NULL : &S.lock);
        break;
    case K_BARRIER:
        S.parties = 1 + (int)rnd(&S.rng, 5);
        rc = cosync_barrier_init(&S.bar, (unsigned)S.parties);
        break;
    case K_EVENT:
        cosync_event_init(&S.ev);
        break;
    case K_FUTURE:
        cosync_future_init(&S.fut);
        break;
    case K_LATCH:
        S.count = 1 + (int64_t)rnd(&S.rng, 6);
        rc = cosync_latch_init(&S.latch, S.count);
        break;
    case K_WAITGROUP:
        S.count = 1 + (int64_t)rnd(&S.rng, 4);
        cosync_waitgroup_init(&S.wg);
        rc = cosync_waitgroup_add(&S.wg, S.count);
        break;
    }
    if (rc)
        FAIL("init returned %s", cosync_err_name(rc));

    if ((rc = run_main_clean(seed_main, NULL)) != 0)
        FAIL("the loop's run, or main, returned %s", cosync_err_name(rc));
}

/* ========================================================================
 * main
 * ===================================================================== */

static long first_seed = 1;
static long nseeds = 3000;

TEST(test_sync_model_seeds)
{
    double secs = run_seeds(run_seed, first_seed, nseeds);
    printf("  seeds %ld to %ld: %ld calls (%ld at once, %ld waited: %ld granted, %ld timed out), "
           "%ld cancels (%ld grants kept), %ld misuses refused; condition: %ld waits, %ld "
           "notified, %ld notifies passed on, %ld waited to take the lock back; %.2f s\n",
           first_seed, first_seed + nseeds - 1, total.calls, total.at_once, total.waits,
           total.granted, total.timeouts, total.cancels, total.kept, total.misuses,
           total.cond_waits, total.notified, total.forwarded, total.relocks, secs);
    CHECK_GT(total.granted, 0);
    CHECK_GT(total.timeouts, 0);
    CHECK_GT(total.kept, 0);
    CHECK_GT(total.forwarded, 0);
    CHECK_GT(total.relocks, 0);
}

int main(void)
{
    if (UNDER_ASAN)
        nseeds = 1500;
    if (under_valgrind())
        nseeds = 300;
    nseeds = env_long("SYNC_MODEL_SEEDS", nseeds);
    first_seed = env_long("SYNC_MODEL_FIRST", first_seed);
    RUN(test_sync_model_seeds);
    return 0;
}
