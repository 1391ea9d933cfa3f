/*
 * Task stacks: mmap'd, carved from chunks, pooled per size class and reused
 * hottest-first. A stack's descriptor lives outside the stack, so a cached
 * stack can give all its pages back (MADV_DONTNEED) and nothing ever points
 * into a stack from outside.
 *
 * Guard pages: madvise(MADV_GUARD_INSTALL) where the kernel has it (Linux
 * 6.13+: no memory-map entry is used); else an mprotect'd page while the
 * process's vm.max_map_count budget allows; else none, and the scheduler
 * checks the stack pointer against the lowest page at every suspension.
 */
#ifndef COSYNC_STACK_H
#define COSYNC_STACK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cosync.h"

#define COSYNC__STACK_MIN_SHIFT 14 /* the smallest class: 16 KiB */
#define COSYNC__STACK_CLASSES 17   /* up to 1 GiB */
#define COSYNC__STACK_DEFAULT ((size_t)64 << 10)
/* A dense task (dense.c) of stack class c has class COSYNC__STACK_DENSE + c:
 * slots past the real ones that never hold a stack, so that the switch's
 * test for a cached stack sends a dense task that has not run yet down the
 * slow path, at no cost to the others. */
#define COSYNC__STACK_DENSE COSYNC__STACK_CLASSES

enum cosync__guard { COSYNC__GUARD_NONE, COSYNC__GUARD_MADVISE, COSYNC__GUARD_MPROTECT };

typedef struct cosync__stack {
    struct cosync__stack *next; /* in its class's hot or cold list */
    struct cosync__stack *prev;
    char *base;  /* lowest address; the guard (or no-go) page */
    size_t size; /* whole mapping, guard included */
    unsigned valgrind_id;
    uint8_t cls;
    uint8_t guard;
    uint8_t color; /* see cosync__stack_start */
    bool cold;     /* pages given back: untouched since */
} cosync__stack;

typedef struct cosync__stack_class {
    cosync__stack *hot; /* most recently used first */
    cosync__stack *hot_tail;
    cosync__stack *cold;
    size_t nhot;
    size_t nhot_low;    /* the fewest hot stacks since the last trim */
    char *carve;        /* the rest of the current chunk */
    size_t carve_left;  /* stacks left to carve from it */
    bool carve_guarded; /* its guard pages are installed already */
} cosync__stack_class;

typedef struct cosync__stack_chunk {
    struct cosync__stack_chunk *next;
    char *base;
    size_t size;
} cosync__stack_chunk;

typedef struct cosync__stack_pool {
    cosync__stack_class cls[2 * COSYNC__STACK_CLASSES]; /* and the dense ones, empty */
    cosync__stack_chunk *chunks;
    const cosync_allocator *alloc;
    size_t cache_max; /* hot stacks kept per class */
    size_t mapped;
    size_t in_use;
    size_t guarded;
} cosync__stack_pool;

/* Tests only: how new stacks get their guard page. NONE: none, as beyond
 * the map budget; MPROTECT: an mprotect'd page, as on kernels without
 * MADV_GUARD_INSTALL. */
enum { COSYNC__TEST_GUARDS_AUTO, COSYNC__TEST_GUARDS_NONE, COSYNC__TEST_GUARDS_MPROTECT };
extern int cosync__stack_test_guards;

/* How many mprotect'd guards the process's vm.max_map_count leaves room
 * for (two map entries each, beside a margin for everything else). */
long cosync__stack_map_budget(void);

void cosync__stack_pool_init(cosync__stack_pool *pool, const cosync_allocator *alloc,
                             size_t cache_max);
/* Unmaps every stack; all must have been put back. */
void cosync__stack_pool_destroy(cosync__stack_pool *pool);

/* The class that holds @size bytes; -1 if @size is over the largest. */
int cosync__stack_class_of(size_t size);

/* The slow path of cosync__stack_get: a cold or a new stack. */
cosync__stack *cosync__stack_get_slow(cosync__stack_pool *pool, int cls);

/* A stack of class @cls, or NULL (out of memory). The hottest cached one
 * if any; else may make system calls. */
static inline cosync__stack *cosync__stack_get(cosync__stack_pool *pool, int cls)
{
    cosync__stack_class *c = &pool->cls[cls];
    cosync__stack *s = c->hot;
    if (__builtin_expect(!s, 0))
        return cosync__stack_get_slow(pool, cls);
    c->hot = s->next;
    if (c->hot)
        c->hot->prev = NULL;
    else
        c->hot_tail = NULL;
    if (--c->nhot < c->nhot_low)
        c->nhot_low = c->nhot;
    pool->in_use++;
    return s;
}

/* Give a stack back. O(1), no system call: safe on the stack being put. */
static inline void cosync__stack_put(cosync__stack_pool *pool, cosync__stack *s)
{
    cosync__stack_class *c = &pool->cls[s->cls];
    s->prev = NULL;
    s->next = c->hot;
    if (c->hot)
        c->hot->prev = s;
    else
        c->hot_tail = s;
    c->hot = s;
    c->nhot++;
    pool->in_use--;
}

/* Return the pages of the cached stacks that no task needed since the
 * last call, beyond cache_max per class (a scavenger: bursts keep their
 * stacks warm, idle ones give them back). System calls: only from the
 * loop's own stack. */
void cosync__stack_trim(cosync__stack_pool *pool);
/* Whether some class caches more stacks than cache_max: a trim has pages
 * to give back, now or after its next interval. */
bool cosync__stack_pool_has_surplus(const cosync__stack_pool *pool);

static inline char *cosync__stack_top(const cosync__stack *s)
{
    return s->base + s->size;
}

/* Where a task starts on @s: below the top by a per-stack multiple of a
 * cache line. Stacks lie a multiple of their (power-of-two) size apart in
 * their chunk, so without this every task's hottest frames would fall in
 * the same cache sets and evict each other when thousands of tasks take
 * turns. */
static inline char *cosync__stack_start(const cosync__stack *s)
{
    return s->base + s->size - (size_t)s->color * 64;
}

/* Atomic: loops on several threads may each be the first to ask (all
 * store the same value, but plain accesses would still be a data race). */
extern _Atomic size_t cosync__page;
size_t cosync__page_init(void);
/* The page size, read once. */
static inline size_t cosync__page_size(void)
{
    size_t page = atomic_load_explicit(&cosync__page, memory_order_relaxed);
    return page ? page : cosync__page_init();
}

/* The default stack size: COSYNC__STACK_DEFAULT, or two pages where pages
 * are larger than half of it (64 KiB pages on some arm64 kernels): a guard
 * page and one to run on, rather than no default at all. */
static inline size_t cosync__stack_default_size(void)
{
    size_t two_pages = 2 * cosync__page_size();
    return two_pages > COSYNC__STACK_DEFAULT ? two_pages : COSYNC__STACK_DEFAULT;
}

/* The lowest address a task may use: above the guard or no-go page. */
static inline char *cosync__stack_limit(const cosync__stack *s)
{
    return s->base + cosync__page_size();
}

#endif /* COSYNC_STACK_H */
