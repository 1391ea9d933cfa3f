/*
 * cosync/queue.h - asyncio's Queue, LifoQueue and PriorityQueue, with
 * task_done/join and shutdown. Included by <cosync.h>.
 *
 * Elements are fixed-size values copied in and out (the element size is
 * given at init), so ints, structs or pointers all work without an
 * allocation per item. Fairness (docs/queues.md):
 *  - blocked putters are served in arrival order, and so are blocked
 *    getters; a put with deadline 0 never overtakes a blocked putter, and a
 *    get never takes an item that was handed to a woken getter (a woken
 *    putter is owed a slot, not a place: it stores its item when it runs,
 *    behind those of puts that found another free slot meanwhile);
 *  - a getter cancelled after an item was handed to it, before it ran,
 *    hands the item back (to the next getter, or to the queue's front) and
 *    reports COSYNC_ECANCELED; a putter cancelled after it was given a
 *    slot, before it ran, completes its put and reports success (the
 *    cancellation comes at its next suspension). Nothing is lost or
 *    duplicated.
 * Not thread-safe: one loop's tasks share a queue. Only put, get, their
 * _many forms and join are suspension points (when they must wait); the
 * other calls never suspend.
 */
#ifndef COSYNC_QUEUE_H
#define COSYNC_QUEUE_H

#include "cosync/base.h"

#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * cosync_cmp_fn - orders two elements of a priority queue.
 * @a, @b: the two elements (pointers into the queue's storage, or the
 *         pointer given to put: see cosync_priorityqueue_init).
 * @arg:   the cmp_arg given at init.
 * Returns < 0 if @a comes out before @b, > 0 if after, 0 if they rank
 * equal (they then come out in the order they were put).
 */
typedef int (*cosync_cmp_fn)(const void *a, const void *b, void *arg);

/** The order in which a queue hands out its items. */
enum cosync_queue_kind {
    COSYNC_QUEUE_FIFO,     /* asyncio.Queue */
    COSYNC_QUEUE_LIFO,     /* asyncio.LifoQueue */
    COSYNC_QUEUE_PRIORITY, /* asyncio.PriorityQueue: smallest first, FIFO among equals */
};

/** Options for cosync_queue_init_opts; zeroed fields take the defaults. */
typedef struct cosync_queue_opts {
    enum cosync_queue_kind kind;
    size_t elem_size;  /* bytes per element, >= 1 */
    size_t maxsize;    /* 0: unbounded (grows as needed) */
    cosync_cmp_fn cmp; /* required for COSYNC_QUEUE_PRIORITY */
    void *cmp_arg;
    const cosync_allocator *allocator; /* storage; NULL: malloc (copied) */
} cosync_queue_opts;

/** A queue. Caller-embedded; all fields are private. It needs an init
 * (its element size): zero-filled, or after cosync_queue_destroy, every
 * call that returns an int returns COSYNC_EINVAL until the next init. */
typedef struct cosync_queue {
    cosync__waitq getters;
    cosync__waitq putters;
    cosync__waitq joiners;
    char *buf;
    size_t elem_size;
    size_t slot_size;
    size_t capacity;
    size_t head;
    size_t count;
    size_t maxsize;
    size_t unfinished;
    size_t reserved_items; /* handed to woken getters that have not run */
    size_t reserved_slots; /* given to woken putters that have not run */
    size_t gap;            /* FIFO: empty slots after the first `front` items */
    size_t front;
    size_t put_below; /* the inline put may run while count < put_below (0: never) */
    size_t get_above; /* the inline get may run while count > get_above (SIZE_MAX: never) */
    uint64_t seq;
    uint64_t epoch; /* bumped by an immediate shutdown */
    cosync_cmp_fn cmp;
    void *cmp_arg;
    cosync_allocator alloc; /* a copy; realloc NULL: malloc */
    uint8_t kind;
    uint8_t shutdown;
    uint8_t dead;
} cosync_queue;

/**
 * cosync_queue_init - a FIFO queue of @elem_size-byte elements holding at
 * most @maxsize (0: unbounded). No memory is allocated until the first put.
 * Returns 0; COSYNC_EINVAL if @q is NULL, or @elem_size is 0 or above
 * SIZE_MAX / 4. Not a suspension point. Initialising a queue in use (not
 * destroyed) is undefined: it forgets its waiters and leaks its storage.
 * Not thread-safe.
 */
int cosync_queue_init(cosync_queue *q, size_t elem_size, size_t maxsize);

/**
 * cosync_lifoqueue_init - as cosync_queue_init, last in first out.
 * Returns as cosync_queue_init. Not a suspension point. Not thread-safe.
 */
int cosync_lifoqueue_init(cosync_queue *q, size_t elem_size, size_t maxsize);

/**
 * cosync_priorityqueue_init - smallest element (by @cmp) first; equal ones
 * in the order they were put. @cmp is called with two elements (pointers
 * into the storage, 8-byte aligned, or the pointer given to put, aligned
 * as the caller's) and @cmp_arg. @maxsize: the most items it holds (0:
 * unbounded), as for cosync_queue_init. Returns 0; COSYNC_EINVAL if @q or
 * @cmp is NULL, or @elem_size is 0 (or above SIZE_MAX / 4).
 * Not a suspension point. Not thread-safe.
 */
int cosync_priorityqueue_init(cosync_queue *q, size_t elem_size, size_t maxsize, cosync_cmp_fn cmp,
                              void *cmp_arg);

/**
 * cosync_queue_init_opts - any kind, with an allocator (copied).
 * Returns 0; COSYNC_EINVAL if @q or @opts is NULL, the kind is unknown, or
 * as above. Not a suspension point. Not thread-safe.
 */
int cosync_queue_init_opts(cosync_queue *q, const cosync_queue_opts *opts);

/**
 * cosync_queue_destroy - free the storage (the items in it are dropped).
 * Returns 0; COSYNC_EBUSY if tasks wait on it, or were handed an item or a
 * slot and have not run yet (nothing changes). A task woken without one
 * (by shutdown, a timeout, a cancellation) does not touch the queue again.
 * COSYNC_EINVAL if already destroyed. After it, every call that returns
 * an int returns COSYNC_EINVAL until re-initialised; the queries of its
 * items (qsize, empty, full) read an empty queue, and maxsize and
 * is_shutdown what they read before. Not a suspension point. Not thread-safe.
 */
int cosync_queue_destroy(cosync_queue *q);

/**
 * cosync_queue_put - copy @item in (await queue.put(item)). Waits while the
 * queue is full.
 * @item: the item's bytes (the queue's item size of them). Not NULL: as
 *        for memcpy, that is undefined (the fast path does not check).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0; COSYNC_EAGAIN (deadline 0: full, or putters already waiting)
 * or COSYNC_ETIMEDOUT; COSYNC_ECANCELED; COSYNC_ESHUTDOWN once the queue is
 * shut down; COSYNC_ENOMEM if the storage cannot grow (the item is not
 * taken); COSYNC_EPERM outside a task or from another loop (only when it
 * cannot complete at once, deadline 0 included); COSYNC_EINVAL after
 * destroy.
 * Suspension point (unless there is room). Not thread-safe.
 */
static inline int cosync_queue_put(cosync_queue *q, const void *item, int64_t deadline);

/**
 * cosync_queue_get - copy the next item out into @item (await queue.get()).
 * Waits while the queue is empty.
 * @item: where the item's bytes go. Not NULL (undefined, as for put).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0; COSYNC_EAGAIN (deadline 0, and no item free: the queue is
 * empty, or its items are handed to woken getters) or COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_ESHUTDOWN once shut down and empty (or shut down
 * immediately): items handed to woken getters count until taken, and a get
 * waits for them; COSYNC_EPERM outside a task or from another loop (only
 * when it cannot complete at once, deadline 0 included); COSYNC_EINVAL
 * after destroy. Suspension point (unless an item is there). Not
 * thread-safe.
 */
static inline int cosync_queue_get(cosync_queue *q, void *item, int64_t deadline);

/**
 * cosync_queue_put_many - put up to @n items from the array @items, as many
 * as fit now; if none fits, wait (as cosync_queue_put) for room for one.
 * Room is what the queue's storage holds: if growing it fails, the items
 * that fit in what it has are put and counted (COSYNC_ENOMEM only when
 * none fits), so the rest can be put again.
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns the number put (>= 1; 0 if @n is 0; at most INT32_MAX at a
 * time), or an error of cosync_queue_put (nothing was put), which a shut
 * down queue gives even for @n 0; COSYNC_EINVAL if @items is NULL and @n
 * above 0 (nothing was put). Suspension
 * point (unless there is room). Not thread-safe.
 */
int cosync_queue_put_many(cosync_queue *q, const void *items, size_t n, int64_t deadline);

/**
 * cosync_queue_get_many - get up to @n items into the array @items, as many
 * as are there; if none is, wait (as cosync_queue_get) for one (tokio's
 * recv_many).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns the number got (>= 1; 0 if @n is 0; at most INT32_MAX at a
 * time), or an error of cosync_queue_get, which a drained queue (shut down
 * and empty) gives even for @n 0; COSYNC_EINVAL if @items is NULL and @n
 * above 0 (nothing was taken). Suspension point (unless an item is
 * there). Not thread-safe.
 */
int cosync_queue_get_many(cosync_queue *q, void *items, size_t n, int64_t deadline);

/**
 * cosync_queue_task_done - one item taken out earlier has been processed
 * (queue.task_done()). Returns 0; COSYNC_EOVERFLOW if no item is
 * unfinished: more calls than items put, less those an immediate shutdown
 * dropped (nothing changes); COSYNC_EINVAL after destroy.
 * Not a suspension point. Not thread-safe.
 */
static inline int cosync_queue_task_done(cosync_queue *q);

/**
 * cosync_queue_join - wait until every item put has been marked done
 * (await queue.join()).
 * @deadline: absolute time, COSYNC_FOREVER, or 0 for the try form.
 * Returns 0 (at once if none is pending); COSYNC_EAGAIN / COSYNC_ETIMEDOUT;
 * COSYNC_ECANCELED; COSYNC_EPERM outside a task or from another loop (only
 * when it cannot complete at once, deadline 0 included); COSYNC_EINVAL
 * after destroy. Suspension point (unless none pending). Not thread-safe.
 */
int cosync_queue_join(cosync_queue *q, int64_t deadline);

/**
 * cosync_queue_shutdown - shut the queue down (Queue.shutdown(immediate),
 * Python 3.13): every later put fails with COSYNC_ESHUTDOWN and blocked
 * putters wake with it; gets drain what remains, then fail with it, and
 * blocked getters wake with it once nothing remains (items handed to woken
 * getters remain until taken). If @immediate, the items are dropped at
 * once (each counted as done for join), so gets fail at once too.
 * Returns 0 (a second call may make a graceful shutdown immediate);
 * COSYNC_EINVAL after destroy. Not a suspension point. Not thread-safe.
 */
int cosync_queue_shutdown(cosync_queue *q, bool immediate);

/**
 * cosync_queue_qsize - the number of items in the queue (qsize()), those
 * kept for getters that were woken and have not run yet included.
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_queue_qsize(const cosync_queue *q);

/**
 * cosync_queue_empty - whether a get would find no item to take (empty()):
 * there is none, or each is kept for a getter that was woken and has not
 * run yet (docs/queues.md, Fairness), as cosync_queue_full tells whether a
 * put would wait. So asyncio's `while not q.empty(): q.get_nowait()`
 * drains what a get can take and ends; qsize may then still count kept
 * items. Not a suspension point. Not thread-safe.
 */
bool cosync_queue_empty(const cosync_queue *q);

/**
 * cosync_queue_full - whether a put would wait (full()); never if unbounded.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_queue_full(const cosync_queue *q);

/**
 * cosync_queue_maxsize - the bound given at init (0: unbounded).
 * Not a suspension point. Not thread-safe.
 */
size_t cosync_queue_maxsize(const cosync_queue *q);

/**
 * cosync_queue_is_shutdown - whether cosync_queue_shutdown was called.
 * Not a suspension point. Not thread-safe.
 */
bool cosync_queue_is_shutdown(const cosync_queue *q);

/* The FIFO queue's fast paths, inlined: a put with room and nobody
 * waiting, a get of an item nobody else is owed. Everything else (and the
 * other kinds) goes to the library, which folds the rest of those
 * conditions into put_below and get_above. */
int cosync__queue_put_slow(cosync_queue *q, const void *item, int64_t deadline);
int cosync__queue_get_slow(cosync_queue *q, void *item, int64_t deadline);

/* The element copies of the fast paths: a constant size for the common
 * ones, so that they compile to a move. (The branches for sizes other than
 * the queue's cannot run, but the compiler may not see that: hence the
 * pragma, which keeps its bounds warnings out of callers' builds. With
 * -flto gcc drops the pragma and may warn at link time; the pointers are
 * left visible all the same, so that _FORTIFY_SOURCE still stops an item
 * smaller than the queue's elements.) */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wpragmas"
#pragma GCC diagnostic ignored "-Warray-bounds"
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wstringop-overread"
#endif
static inline void cosync__queue_copy(void *dst, const void *src, size_t n)
{
    switch (n) {
    case 4:
        memcpy(dst, src, 4);
        break;
    case 8:
        memcpy(dst, src, 8);
        break;
    case 16:
        memcpy(dst, src, 16);
        break;
    default:
        memcpy(dst, src, n);
    }
}
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif

static inline int cosync_queue_put(cosync_queue *q, const void *item, int64_t deadline)
{
    if (__builtin_expect(q->count < q->put_below, 1)) {
        size_t i = q->head + q->count;
        if (i >= q->capacity)
            i -= q->capacity;
        cosync__queue_copy(q->buf + i * q->elem_size, item, q->elem_size);
        q->count++;
        q->unfinished++;
        return 0;
    }
    return cosync__queue_put_slow(q, item, deadline);
}

static inline int cosync_queue_get(cosync_queue *q, void *item, int64_t deadline)
{
    if (__builtin_expect(q->count > q->get_above, 1)) {
        cosync__queue_copy(item, q->buf + q->head * q->elem_size, q->elem_size);
        size_t next = q->head + 1;
        q->head = next == q->capacity ? 0 : next;
        q->count--;
        return 0;
    }
    return cosync__queue_get_slow(q, item, deadline);
}

/* The last task_done (it wakes join) and the misuses take the call. */
int cosync__queue_task_done_slow(cosync_queue *q);

static inline int cosync_queue_task_done(cosync_queue *q)
{
    if (__builtin_expect(!q->dead && q->unfinished > 1, 1)) {
        q->unfinished--;
        return 0;
    }
    return cosync__queue_task_done_slow(q);
}

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_QUEUE_H */
