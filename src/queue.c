/*
 * asyncio.Queue, LifoQueue and PriorityQueue on the waiting layer, with
 * task_done/join and Python 3.13's shutdown.
 *
 * Storage: `capacity` slots of `slot_size` bytes in `buf`. FIFO is a ring
 * (head, count), LIFO a stack, PRIORITY a binary min-heap ordered by
 * (cmp, seq): each priority slot is the element rounded up to 8 bytes (so
 * that cmp gets aligned pointers) followed by the 8-byte sequence number of
 * its put, which keeps equal elements in the order they were put. The
 * storage grows by doubling (never past maxsize) through the queue's
 * allocator, and only on a put; a failed growth leaves everything as it was.
 *
 * Reservations keep grants from being lost or overtaken. A getter is woken
 * with an item reserved for it (reserved_items) and takes the front item
 * when it runs; a putter is woken with a slot reserved for it
 * (reserved_slots) and stores its item when it runs (its item lives in its
 * own memory: nothing outside a task reads its stack while it is switched
 * out). So a newcomer sees
 *     items available = count - reserved_items
 *     slots available = maxsize - count - reserved_slots (bounded)
 * and may take the fast path only when nobody of its side is waiting.
 *
 * Getters wait revocably: a getter cancelled after an item was reserved for
 * it, before it ran, gives the reservation back (to the next getter, or the
 * item stays at the front) and returns COSYNC_ECANCELED. Putters do not: a
 * putter cancelled after a slot was reserved for it completes its put and
 * returns 0; the cancellation comes at its next suspension.
 *
 * A newcomer takes the first item behind the reserved ones. Rather than
 * move the reserved items up a slot each time, the FIFO ring keeps a gap:
 * `front` items, then `gap` empty slots, then the rest. A newcomer takes
 * the item just behind the gap and widens it; the gap is closed (the front
 * items moved up, once) when the front is taken, when a put needs the room
 * and before the storage grows. So a woken getter that runs on and takes
 * item after item behind the others' reservations costs O(1) a take.
 *
 * An immediate shutdown drops every item, those reserved for woken getters
 * too, and bumps `epoch`: a woken getter that finds the epoch changed when
 * it runs returns COSYNC_ESHUTDOWN. reserved_items still counts those
 * getters until they have run (so destroy knows they are about to touch the
 * queue); the items available are then max(count - reserved_items, 0).
 */
#include <string.h>

#include "fault.h"
#include "waitq.h"

#define INITIAL_CAPACITY 16

/* ---- storage ----------------------------------------------------------- */

/* Destroyed, or never initialised (a zero-filled queue has no element
 * size): every action refuses it with COSYNC_EINVAL. */
static inline bool unusable(const cosync_queue *q)
{
    return q->dead || q->slot_size == 0;
}

static inline char *slot(const cosync_queue *q, size_t i)
{
    return q->buf + i * q->slot_size;
}

/* Elements are copied with cosync__queue_copy (queue.h): the common sizes
 * as fixed-size copies. */

static inline size_t items_available(const cosync_queue *q)
{
    return q->count > q->reserved_items ? q->count - q->reserved_items : 0;
}

static inline size_t slots_available(const cosync_queue *q)
{
    if (q->maxsize == 0)
        return SIZE_MAX;
    size_t used = q->count + q->reserved_slots;
    return used < q->maxsize ? q->maxsize - used : 0;
}

/* The ring's index @i slots after @from. */
static inline size_t ring_at(const cosync_queue *q, size_t from, size_t i)
{
    size_t at = from + i;
    return at >= q->capacity ? at - q->capacity : at;
}

/* Move the front items up to the gap: the ring holds its items in one run
 * from head again. */
static __attribute__((noinline)) void close_gap(cosync_queue *q)
{
    for (size_t k = q->front; k-- > 0;)
        cosync__queue_copy(slot(q, ring_at(q, q->head, q->gap + k)),
                           slot(q, ring_at(q, q->head, k)), q->elem_size);
    q->head = ring_at(q, q->head, q->gap);
    q->gap = q->front = 0;
}

static inline const cosync_allocator *allocator_of(const cosync_queue *q)
{
    return q->alloc.realloc ? &q->alloc : NULL;
}

/* Make room for @need slots in all. 0, or COSYNC_ENOMEM (nothing changed). */
static int grow(cosync_queue *q, size_t need)
{
    if (q->gap)
        close_gap(q); /* the unwrap below copies one run from head */
    size_t cap = q->capacity ? q->capacity : INITIAL_CAPACITY;
    while (cap < need) {
        if (cap > SIZE_MAX / 2)
            return COSYNC_ENOMEM;
        cap *= 2;
    }
    if (q->maxsize && cap > q->maxsize)
        cap = q->maxsize;
    if (cap > SIZE_MAX / q->slot_size)
        return COSYNC_ENOMEM;
    char *nb = cosync__mem_alloc(allocator_of(q), cap * q->slot_size);
    if (!nb)
        return COSYNC_ENOMEM;
    if (q->count) {
        if (q->kind == COSYNC_QUEUE_FIFO) {
            /* unwrap the ring: the items go to 0..count-1 */
            size_t first = q->capacity - q->head;
            if (first > q->count)
                first = q->count;
            memcpy(nb, slot(q, q->head), first * q->slot_size);
            memcpy(nb + first * q->slot_size, q->buf, (q->count - first) * q->slot_size);
        } else {
            memcpy(nb, q->buf, q->count * q->slot_size);
        }
    }
    cosync__mem_free(allocator_of(q), q->buf);
    q->buf = nb;
    q->capacity = cap;
    q->head = 0;
    return 0;
}

static inline int ensure(cosync_queue *q, size_t need)
{
    return __builtin_expect(need <= q->capacity, 1) ? 0 : grow(q, need);
}

static inline uint64_t seq_of(const cosync_queue *q, const char *s)
{
    uint64_t seq;
    memcpy(&seq, s + q->slot_size - sizeof seq, sizeof seq);
    return seq;
}

/* Whether the element @a (put with sequence number @aseq) comes out before
 * the one in slot @s. */
static inline bool before(const cosync_queue *q, const void *a, uint64_t aseq, const char *s)
{
    int c = q->cmp(a, s, q->cmp_arg);
    return c < 0 || (c == 0 && aseq < seq_of(q, s));
}

/* The priority kind's put: sift up from a hole at the end; the new element
 * is compared from the caller's memory and written once, where it belongs. */
static __attribute__((noinline)) void heap_push(cosync_queue *q, const void *item)
{
    uint64_t seq = q->seq++;
    size_t hole = q->count;
    while (hole > 0) {
        size_t parent = (hole - 1) / 2;
        if (!before(q, item, seq, slot(q, parent)))
            break;
        memcpy(slot(q, hole), slot(q, parent), q->slot_size);
        hole = parent;
    }
    char *s = slot(q, hole);
    memcpy(s, item, q->elem_size);
    memcpy(s + q->slot_size - sizeof seq, &seq, sizeof seq);
}

/* The priority kind's get: take the root, then sift the last element down
 * from a hole at the root. */
static __attribute__((noinline)) void heap_pop(cosync_queue *q, void *item)
{
    memcpy(item, slot(q, 0), q->elem_size);
    size_t n = q->count - 1;
    if (n == 0)
        return;
    const char *last = slot(q, n);
    size_t hole = 0;
    for (;;) {
        size_t c = 2 * hole + 1;
        if (c >= n)
            break;
        if (c + 1 < n && before(q, slot(q, c + 1), seq_of(q, slot(q, c + 1)), slot(q, c)))
            c++;
        if (!before(q, slot(q, c), seq_of(q, slot(q, c)), last))
            break;
        memcpy(slot(q, hole), slot(q, c), q->slot_size);
        hole = c;
    }
    if (hole != n)
        memcpy(slot(q, hole), last, q->slot_size);
}

/* Store @item (room has been made). FIFO and LIFO slots are elem_size. */
static inline __attribute__((always_inline)) void store(cosync_queue *q, const void *item)
{
    size_t es = q->elem_size;
    if (__builtin_expect(q->kind == COSYNC_QUEUE_FIFO, 1)) {
        if (__builtin_expect(q->gap != 0, 0) && q->count + q->gap >= q->capacity)
            close_gap(q); /* the room is in the gap */
        cosync__queue_copy(q->buf + ring_at(q, q->head, q->count + q->gap) * es, item, es);
    } else if (q->kind == COSYNC_QUEUE_LIFO) {
        cosync__queue_copy(q->buf + q->count * es, item, es);
    } else {
        heap_push(q, item);
    }
    q->count++;
}

/* Take the front item into @item (there is one). */
static inline __attribute__((always_inline)) void take(cosync_queue *q, void *item)
{
    size_t es = q->elem_size;
    if (__builtin_expect(q->kind == COSYNC_QUEUE_FIFO, 1)) {
        cosync__queue_copy(item, q->buf + q->head * es, es);
        if (q->count == 1) {
            q->head = q->gap = q->front = 0; /* empty: start over */
        } else {
            q->head = ring_at(q, q->head, 1);
            if (q->gap && --q->front == 0) { /* the front is gone: skip the gap */
                q->head = ring_at(q, q->head, q->gap);
                q->gap = 0;
            }
        }
    } else if (q->kind == COSYNC_QUEUE_LIFO) {
        cosync__queue_copy(item, q->buf + (q->count - 1) * es, es);
    } else {
        heap_pop(q, item);
    }
    q->count--;
}

/* Whether the take behind the reserved items can widen the gap there (or
 * open one): the gap is not elsewhere. */
static inline bool gap_behind_reserved(const cosync_queue *q)
{
    return q->gap == 0 || q->front == q->reserved_items;
}

static inline void take_into_gap(cosync_queue *q, void *item)
{
    if (!q->gap)
        q->front = q->reserved_items;
    size_t at = ring_at(q, q->head, q->front + q->gap);
    cosync__queue_copy(item, slot(q, at), q->elem_size);
    q->gap++;
    q->count--;
}

/* Take an item that is not reserved: in a FIFO queue the reserved items
 * are the front ones, handed to woken getters that have not run yet, so a
 * newcomer takes the first item behind them, at the end of the gap (see
 * the top of this file). In the other kinds no item is set aside: a woken
 * getter takes the top when it runs, as LIFO and priority order want. */
static inline void take_behind_reserved(cosync_queue *q, void *item)
{
    if (!gap_behind_reserved(q))
        close_gap(q); /* the gap is elsewhere: start a new one */
    take_into_gap(q, item);
}

static inline __attribute__((always_inline)) void take_unreserved(cosync_queue *q, void *item)
{
    if (__builtin_expect(q->reserved_items == 0 || q->kind != COSYNC_QUEUE_FIFO, 1))
        take(q, item);
    else
        take_behind_reserved(q, item);
}

/* ---- the inline paths' bounds ----------------------------------------- */

/* Where the inline put and get (queue.h) may run: put while count <
 * put_below, get while count > get_above. Every entry point that changes
 * what they depend on ends here: a stale opening would let a newcomer
 * overtake a waiter or take an item owed to one; a stale closing only
 * sends it through the library. */
static void refresh_fast(cosync_queue *q)
{
    bool idle =
        q->kind == COSYNC_QUEUE_FIFO && !q->dead && (q->getters.n | q->putters.n | q->gap) == 0;
    /* (count + reserved_slots <= capacity <= maxsize: the slots reserved
     * for woken putters have their storage) */
    q->put_below = idle && !q->shutdown ? q->capacity - q->reserved_slots : 0;
    q->get_above = idle && q->reserved_items == 0 ? 0 : SIZE_MAX;
}

/* A waiter is about to queue, or a gap opened. */
static inline void stop_fast(cosync_queue *q)
{
    q->put_below = 0;
    q->get_above = SIZE_MAX;
}

/* ---- waking ------------------------------------------------------------ */

/* Shut down (gracefully or not) and empty: no get can ever succeed again.
 * Items handed to woken getters still count until they are taken, since a
 * getter cancelled before it runs gives its item back; meanwhile a get
 * waits. */
static inline bool drained(const cosync_queue *q)
{
    return q->shutdown && q->count == 0;
}

/* Getters that wait on a drained queue wait for nothing. */
static void release_drained(cosync_queue *q)
{
    if (drained(q))
        cosync__waitq_grant_all(&q->getters, COSYNC_ESHUTDOWN);
}

/* Reserve an item for each waiting getter, in order, while there are some. */
static __attribute__((noinline)) void wake_getters(cosync_queue *q)
{
    cosync__waiter *w;
    while (items_available(q) > 0 && (w = cosync__waitq_head(&q->getters))) {
        q->reserved_items++;
        cosync__waitq_grant(&q->getters, w, 0);
    }
}

/* Reserve a slot for each waiting putter, in order, while there are some. */
static __attribute__((noinline)) void wake_putters(cosync_queue *q)
{
    cosync__waiter *w;
    while (slots_available(q) > 0 && (w = cosync__waitq_head(&q->putters))) {
        /* a putter stores when it runs: make its room now (in practice the
         * storage is already at maxsize when putters wait) */
        if (ensure(q, q->count + q->reserved_slots + 1))
            break;
        q->reserved_slots++;
        cosync__waitq_grant(&q->putters, w, 0);
    }
}

static void get_cancel(cosync__waiter *w)
{
    cosync_queue *q = w->obj;
    if (w->state == COSYNC__W_GRANTED) {
        /* revoked: the getter was cancelled after it was woken, before it
         * ran; its reserved item goes to the next getter, or stays at the
         * front. A shutdown grant reserved nothing, so nothing holds the
         * queue alive: it may be destroyed already, and is not touched. */
        if (w->result != 0)
            return;
        q->reserved_items--;
        wake_getters(q);
    } else {
        cosync__waitq_remove(&q->getters, w);
    }
    refresh_fast(q);
}

static void put_cancel(cosync__waiter *w)
{
    cosync_queue *q = w->obj;
    cosync__waitq_remove(&q->putters, w);
    wake_putters(q);
    refresh_fast(q);
}

static void join_cancel(cosync__waiter *w)
{
    cosync_queue *q = w->obj;
    cosync__waitq_remove(&q->joiners, w);
}

static void get_describe(const cosync__waiter *w, char *buf, size_t size)
{
    snprintf(buf, size, "queue %p (empty, getting)", w->obj);
}

static void put_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_queue *q = w->obj;
    snprintf(buf, size, "queue %p (full, %zu of %zu, putting)", w->obj, q->count, q->maxsize);
}

static void join_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_queue *q = w->obj;
    snprintf(buf, size, "queue %p (join, %zu unfinished)", w->obj, q->unfinished);
}

static const cosync__waiter_ops get_ops = {"queue get", get_cancel, get_describe, NULL};
static const cosync__waiter_ops put_ops = {"queue put", put_cancel, put_describe, NULL};
static const cosync__waiter_ops join_ops = {"queue join", join_cancel, join_describe, NULL};

/* The queue's three wait queues bind it to one loop together: a task of
 * another loop may not wait on any of them while one has waiters. */
static int check_loop(const cosync_queue *q)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    const cosync__waitq *qs[3] = {&q->getters, &q->putters, &q->joiners};
    for (int i = 0; i < 3; i++)
        if (qs[i]->loop && qs[i]->loop != cur->loop)
            return COSYNC_EPERM;
    return 0;
}

/* ---- life -------------------------------------------------------------- */

int cosync_queue_init_opts(cosync_queue *q, const cosync_queue_opts *opts)
{
    if (!q || !opts || opts->elem_size == 0 || opts->elem_size > SIZE_MAX / 4)
        return COSYNC_EINVAL;
    size_t slot_size = opts->elem_size;
    switch (opts->kind) {
    case COSYNC_QUEUE_FIFO:
    case COSYNC_QUEUE_LIFO:
        break;
    case COSYNC_QUEUE_PRIORITY:
        if (!opts->cmp)
            return COSYNC_EINVAL;
        slot_size = ((slot_size + 7) & ~(size_t)7) + sizeof(uint64_t);
        break;
    default:
        return COSYNC_EINVAL;
    }
    *q = (cosync_queue){
        .getters = COSYNC__WAITQ_INIT,
        .putters = COSYNC__WAITQ_INIT,
        .joiners = COSYNC__WAITQ_INIT,
        .elem_size = opts->elem_size,
        .slot_size = slot_size,
        .maxsize = opts->maxsize,
        .cmp = opts->cmp,
        .cmp_arg = opts->cmp_arg,
        .alloc = opts->allocator ? *opts->allocator : (cosync_allocator){NULL, NULL},
        .kind = (uint8_t)opts->kind,
    };
    refresh_fast(q);
    return 0;
}

int cosync_queue_init(cosync_queue *q, size_t elem_size, size_t maxsize)
{
    return cosync_queue_init_opts(q, &(cosync_queue_opts){.kind = COSYNC_QUEUE_FIFO,
                                                          .elem_size = elem_size,
                                                          .maxsize = maxsize});
}

int cosync_lifoqueue_init(cosync_queue *q, size_t elem_size, size_t maxsize)
{
    return cosync_queue_init_opts(q, &(cosync_queue_opts){.kind = COSYNC_QUEUE_LIFO,
                                                          .elem_size = elem_size,
                                                          .maxsize = maxsize});
}

int cosync_priorityqueue_init(cosync_queue *q, size_t elem_size, size_t maxsize, cosync_cmp_fn cmp,
                              void *cmp_arg)
{
    return cosync_queue_init_opts(q, &(cosync_queue_opts){.kind = COSYNC_QUEUE_PRIORITY,
                                                          .elem_size = elem_size,
                                                          .maxsize = maxsize,
                                                          .cmp = cmp,
                                                          .cmp_arg = cmp_arg});
}

int cosync_queue_destroy(cosync_queue *q)
{
    if (unusable(q))
        return COSYNC_EINVAL;
    /* waiting tasks, and woken ones handed an item or a slot, will touch it */
    if (q->getters.n || q->putters.n || q->joiners.n || q->reserved_items || q->reserved_slots)
        return COSYNC_EBUSY;
    cosync__mem_free(allocator_of(q), q->buf);
    q->buf = NULL;
    q->capacity = q->count = q->head = q->unfinished = q->gap = q->front = 0;
    q->dead = 1;
    stop_fast(q);
    return 0;
}

/* ---- put --------------------------------------------------------------- */

/* The fast path of put_many: store as many of the @n items as fit now (at
 * least one), or nothing and COSYNC_ENOMEM. */
static int store_many(cosync_queue *q, const char *items, size_t n)
{
    size_t k = slots_available(q);
    if (k > n)
        k = n;
    if (ensure(q, q->count + q->reserved_slots + k)) {
        /* fill what the storage holds now, or fail */
        size_t room = q->capacity - q->count - q->reserved_slots;
        if (room == 0)
            return COSYNC_ENOMEM;
        k = room < k ? room : k;
    }
    for (size_t i = 0; i < k; i++)
        store(q, items + i * q->elem_size);
    q->unfinished += k;
    wake_getters(q);
    return (int)k;
}

/* Wait for a slot; then store @items[0] and as many more as fit. */
static __attribute__((noinline)) int put_wait(cosync_queue *q, const char *items, size_t n,
                                              int64_t deadline)
{
    int rc = check_loop(q);
    if (rc)
        return rc;
    stop_fast(q);
    rc = cosync__waitq_wait(&q->putters, &put_ops, q, 0, deadline);
    /* Not granted (or shut down while waiting): nothing was reserved for
     * us, so nothing kept the queue from being destroyed meanwhile. Whoever
     * ended the wait has set the inline bounds; touch nothing. */
    if (rc)
        return rc;
    /* a slot was reserved for us (its storage too) */
    q->reserved_slots--;
    if (q->shutdown) {
        refresh_fast(q);
        return COSYNC_ESHUTDOWN;
    }
    store(q, items);
    q->unfinished++;
    size_t k = 1;
    if (n > 1 && cosync__waitq_empty(&q->putters)) {
        size_t more = slots_available(q);
        if (more > n - 1)
            more = n - 1;
        size_t room = q->capacity - q->count - q->reserved_slots;
        if (more > room && ensure(q, q->count + q->reserved_slots + more))
            more = room; /* no growth: what fits now */
        for (size_t i = 0; i < more; i++)
            store(q, items + (1 + i) * q->elem_size);
        q->unfinished += more;
        k += more;
    }
    wake_getters(q);
    refresh_fast(q);
    return (int)k;
}

int cosync__queue_put_slow(cosync_queue *q, const void *item, int64_t deadline)
{
    if (__builtin_expect(unusable(q) | q->shutdown, 0))
        return unusable(q) ? COSYNC_EINVAL : COSYNC_ESHUTDOWN;
    if (__builtin_expect(q->putters.n == 0 && slots_available(q) > 0, 1)) {
        if (__builtin_expect(ensure(q, q->count + q->reserved_slots + 1), 0))
            return COSYNC_ENOMEM;
        store(q, item);
        q->unfinished++;
        if (q->getters.n)
            wake_getters(q);
        refresh_fast(q);
        return 0;
    }
    int rc = put_wait(q, item, 1, deadline);
    return rc < 0 ? rc : 0;
}

int cosync_queue_put_many(cosync_queue *q, const void *items, size_t n, int64_t deadline)
{
    if (unusable(q) || (!items && n))
        return COSYNC_EINVAL;
    if (q->shutdown)
        return COSYNC_ESHUTDOWN;
    if (n == 0)
        return 0;
    if (n > INT32_MAX)
        n = INT32_MAX;
    if (q->putters.n == 0 && slots_available(q) > 0) {
        int rc = store_many(q, items, n);
        refresh_fast(q);
        return rc;
    }
    return put_wait(q, items, n, deadline);
}

/* ---- get --------------------------------------------------------------- */

static int take_many(cosync_queue *q, char *items, size_t n)
{
    size_t k = items_available(q);
    if (k > n)
        k = n;
    for (size_t i = 0; i < k; i++)
        take_unreserved(q, items + i * q->elem_size);
    wake_putters(q);
    return (int)k;
}

/* Wait for an item; then take it and as many more as are there. */
static __attribute__((noinline)) int get_wait(cosync_queue *q, char *items, size_t n,
                                              int64_t deadline)
{
    int rc = check_loop(q);
    if (rc)
        return rc;
    stop_fast(q);
    uint64_t epoch = q->epoch;
    rc = cosync__waitq_wait_how(&q->getters, &get_ops, q, 0, true, deadline);
    /* nothing reserved (a revoked grant was handed back): as in put_wait,
     * the queue may be gone, and the bounds are set */
    if (rc)
        return rc;
    q->reserved_items--;
    if (q->epoch != epoch) {
        refresh_fast(q);
        return COSYNC_ESHUTDOWN; /* dropped by an immediate shutdown */
    }
    take(q, items);
    size_t k = 1;
    if (n > 1 && cosync__waitq_empty(&q->getters)) {
        size_t more = items_available(q);
        if (more > n - 1)
            more = n - 1;
        for (size_t i = 0; i < more; i++)
            take_unreserved(q, items + (1 + i) * q->elem_size);
        k += more;
    }
    wake_putters(q);
    release_drained(q);
    refresh_fast(q);
    return (int)k;
}

static __attribute__((noinline)) int get_slower(cosync_queue *q, void *item, int64_t deadline);

/* A getter that runs on while woken getters hold reservations (it took
 * its own and comes back for more) takes behind them, item after item:
 * that case is this leaf, without a call or a saved register. */
int cosync__queue_get_slow(cosync_queue *q, void *item, int64_t deadline)
{
    if (__builtin_expect((q->getters.n | q->putters.n) == 0 && !q->dead &&
                             q->kind == COSYNC_QUEUE_FIFO && q->reserved_items > 0 &&
                             q->count > q->reserved_items && gap_behind_reserved(q),
                         1)) {
        take_into_gap(q, item);
        stop_fast(q);
        return 0;
    }
    return get_slower(q, item, deadline);
}

static int get_slower(cosync_queue *q, void *item, int64_t deadline)
{
    if (__builtin_expect(unusable(q), 0))
        return COSYNC_EINVAL;
    if (__builtin_expect(q->getters.n == 0 && items_available(q) > 0, 1)) {
        take_unreserved(q, item);
        if (q->putters.n)
            wake_putters(q);
        refresh_fast(q);
        return 0;
    }
    if (drained(q))
        return COSYNC_ESHUTDOWN;
    int rc = get_wait(q, item, 1, deadline);
    return rc < 0 ? rc : 0;
}

int cosync_queue_get_many(cosync_queue *q, void *items, size_t n, int64_t deadline)
{
    if (unusable(q) || (!items && n))
        return COSYNC_EINVAL;
    if (n == 0) /* a drained queue says so even to a request for nothing, as put_many does */
        return drained(q) ? COSYNC_ESHUTDOWN : 0;
    if (n > INT32_MAX)
        n = INT32_MAX;
    if (q->getters.n == 0 && items_available(q) > 0) {
        int rc = take_many(q, items, n);
        refresh_fast(q);
        return rc;
    }
    if (drained(q))
        return COSYNC_ESHUTDOWN;
    return get_wait(q, items, n, deadline);
}

/* ---- task_done, join, shutdown ----------------------------------------- */

int cosync__queue_task_done_slow(cosync_queue *q)
{
    if (unusable(q))
        return COSYNC_EINVAL;
    if (q->unfinished == 0)
        return COSYNC_EOVERFLOW;
    if (--q->unfinished == 0)
        cosync__waitq_grant_all(&q->joiners, 0);
    return 0;
}

int cosync_queue_join(cosync_queue *q, int64_t deadline)
{
    if (unusable(q))
        return COSYNC_EINVAL;
    if (q->unfinished == 0)
        return 0;
    int rc = check_loop(q);
    if (rc)
        return rc;
    return cosync__waitq_wait(&q->joiners, &join_ops, q, 0, deadline);
}

int cosync_queue_shutdown(cosync_queue *q, bool immediate)
{
    if (unusable(q))
        return COSYNC_EINVAL;
    q->shutdown = 1;
    if (immediate) {
        /* drop every item, those reserved for woken getters too: they see
         * the epoch change when they run */
        size_t dropped = q->count;
        q->count = 0;
        q->head = q->gap = q->front = 0;
        q->epoch++;
        if (dropped) {
            q->unfinished -= dropped < q->unfinished ? dropped : q->unfinished;
            if (q->unfinished == 0)
                cosync__waitq_grant_all(&q->joiners, 0);
        }
    }
    /* getters still waiting get what is left, or wait for the items
     * handed out to be taken or given back */
    wake_getters(q);
    release_drained(q);
    cosync__waitq_grant_all(&q->putters, COSYNC_ESHUTDOWN);
    refresh_fast(q);
    return 0;
}

/* ---- queries ----------------------------------------------------------- */

size_t cosync_queue_qsize(const cosync_queue *q)
{
    return q->count;
}

bool cosync_queue_empty(const cosync_queue *q)
{
    return items_available(q) == 0;
}

bool cosync_queue_full(const cosync_queue *q)
{
    return q->maxsize && (q->putters.n || slots_available(q) == 0);
}

size_t cosync_queue_maxsize(const cosync_queue *q)
{
    return q->maxsize;
}

bool cosync_queue_is_shutdown(const cosync_queue *q)
{
    return q->shutdown;
}
