#include "context/stack.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "context/sanitize.h"
#include "fault.h"

#ifndef MADV_GUARD_INSTALL
#define MADV_GUARD_INSTALL 102
#endif

#define CHUNK_BYTES ((size_t)4 << 20)
#define GUARD_BATCH 32 /* iovecs a call: 512 bytes of the caller's stack */
#define MAP_COUNT_MARGIN 4096

_Atomic size_t cosync__page;

size_t cosync__page_init(void)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    atomic_store_explicit(&cosync__page, page, memory_order_relaxed);
    return page;
}

/* How guard pages are made, probed once per process. */
enum { PROBE_UNKNOWN, PROBE_MADVISE, PROBE_NO_MADVISE };
static atomic_int guard_probe = PROBE_UNKNOWN;
/* mprotect'd guards left in the process's map budget (2 map entries each). */
static atomic_long mprotect_budget = -1;

long cosync__stack_map_budget(void)
{
    long max = 65530;
    FILE *f = fopen("/proc/sys/vm/max_map_count", "r");
    if (f) {
        if (fscanf(f, "%ld", &max) != 1)
            max = 65530;
        fclose(f);
    }
    long budget = (max - MAP_COUNT_MARGIN) / 2;
    return budget > 0 ? budget : 0;
}

static bool take_mprotect_budget(void)
{
    long b = atomic_load(&mprotect_budget);
    if (b < 0) {
        long expected = -1;
        atomic_compare_exchange_strong(&mprotect_budget, &expected, cosync__stack_map_budget());
        b = atomic_load(&mprotect_budget);
    }
    while (b > 0) {
        if (atomic_compare_exchange_weak(&mprotect_budget, &b, b - 1))
            return true;
    }
    return false;
}

int cosync__stack_test_guards = COSYNC__TEST_GUARDS_AUTO;

#ifndef MADV_GUARD_REMOVE
#define MADV_GUARD_REMOVE 103
#endif

/* Whether the guard just installed at @page really faults: reading it
 * through the kernel must fail with EFAULT. Checked once per process:
 * emulators such as qemu-user accept MADV_GUARD_INSTALL and do nothing. */
static bool guard_faults(char *page)
{
    char byte;
    struct iovec local = {&byte, 1}, remote = {page, 1};
    if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) < 0 && errno == EFAULT)
        return true;
    madvise(page, cosync__page_size(), MADV_GUARD_REMOVE);
    atomic_store_explicit(&guard_probe, PROBE_NO_MADVISE, memory_order_relaxed);
    return false;
}

static uint8_t install_guard(char *base)
{
    size_t page = cosync__page_size();
    if (cosync__stack_test_guards == COSYNC__TEST_GUARDS_NONE)
        return COSYNC__GUARD_NONE;
    int probe = atomic_load_explicit(&guard_probe, memory_order_relaxed);
    if (probe != PROBE_NO_MADVISE && cosync__stack_test_guards != COSYNC__TEST_GUARDS_MPROTECT) {
        if (madvise(base, page, MADV_GUARD_INSTALL) == 0) {
            if (probe == PROBE_MADVISE || guard_faults(base)) {
                atomic_store_explicit(&guard_probe, PROBE_MADVISE, memory_order_relaxed);
                return COSYNC__GUARD_MADVISE;
            }
        } else if (probe == PROBE_UNKNOWN) {
            atomic_store_explicit(&guard_probe, PROBE_NO_MADVISE, memory_order_relaxed);
        }
    }
    if (take_mprotect_budget()) {
        if (mprotect(base, page, PROT_NONE) == 0)
            return COSYNC__GUARD_MPROTECT;
        atomic_fetch_add(&mprotect_budget, 1);
    }
    return COSYNC__GUARD_NONE;
}

int cosync__stack_class_of(size_t size)
{
    for (int c = 0; c < COSYNC__STACK_CLASSES; c++)
        if (size <= ((size_t)1 << (COSYNC__STACK_MIN_SHIFT + c)))
            return c;
    return -1;
}

static size_t class_size(int cls)
{
    return (size_t)1 << (COSYNC__STACK_MIN_SHIFT + cls);
}

void cosync__stack_pool_init(cosync__stack_pool *pool, const cosync_allocator *alloc,
                             size_t cache_max)
{
    *pool = (cosync__stack_pool){.alloc = alloc, .cache_max = cache_max};
}

#ifndef SYS_process_madvise
#define SYS_process_madvise 440
#endif
#define PIDFD_SELF_ (-10000) /* PIDFD_SELF: this process, Linux 6.14+ */

/* Install the guard pages of all @n stacks of a new chunk with a few
 * system calls (process_madvise on ourselves) instead of one each: a
 * million stacks would otherwise cost a million madvise calls. The iovecs
 * go GUARD_BATCH at a time, because this runs on the stack of whatever
 * task needed the chunk, which may be small. False if the kernel cannot,
 * and then each stack gets its guard when it is carved. */
static bool batch_guards(char *base, size_t n, size_t size)
{
    static atomic_int unsupported;
    if (n < 2 || atomic_load_explicit(&unsupported, memory_order_relaxed))
        return false;
    int probe = atomic_load_explicit(&guard_probe, memory_order_relaxed);
    if (probe == PROBE_NO_MADVISE)
        return false;
    size_t page = cosync__page_size();
    struct iovec iov[GUARD_BATCH];
    for (size_t first = 0; first < n; first += GUARD_BATCH) {
        size_t k = n - first < GUARD_BATCH ? n - first : GUARD_BATCH;
        for (size_t i = 0; i < k; i++)
            iov[i] = (struct iovec){.iov_base = base + (first + i) * size, .iov_len = page};
        long done = syscall(SYS_process_madvise, PIDFD_SELF_, iov, k, MADV_GUARD_INSTALL, 0);
        if (done != (long)(k * page)) {
            if (done < 0)
                atomic_store_explicit(&unsupported, 1, memory_order_relaxed);
            return false; /* (guards already made are made again, harmlessly) */
        }
        if (first == 0 && probe == PROBE_UNKNOWN) {
            if (!guard_faults(base))
                return false; /* (guard_faults took the first one out; the rest do nothing) */
            atomic_store_explicit(&guard_probe, PROBE_MADVISE, memory_order_relaxed);
        }
    }
    return true;
}

/* Map a chunk of stacks of class @cls; the carve pointer walks it. */
static bool map_chunk(cosync__stack_pool *pool, int cls)
{
    size_t size = class_size(cls);
    size_t n = size >= CHUNK_BYTES ? 1 : CHUNK_BYTES / size;
    cosync__stack_chunk *chunk = cosync__mem_alloc(pool->alloc, sizeof *chunk);
    if (!chunk)
        return false;
    void *p = cosync__fault_hit()
                  ? MAP_FAILED
                  : mmap(NULL, n * size, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (p == MAP_FAILED) {
        cosync__mem_free(pool->alloc, chunk);
        return false;
    }
    *chunk = (cosync__stack_chunk){.next = pool->chunks, .base = p, .size = n * size};
    pool->chunks = chunk;
    pool->cls[cls].carve = p;
    pool->cls[cls].carve_left = n;
    pool->cls[cls].carve_guarded =
        cosync__stack_test_guards == COSYNC__TEST_GUARDS_AUTO && batch_guards(p, n, size);
    return true;
}

static cosync__stack *new_stack(cosync__stack_pool *pool, int cls)
{
    cosync__stack_class *c = &pool->cls[cls];
    size_t size = class_size(cls);
    cosync__stack *s = cosync__mem_alloc(pool->alloc, sizeof *s);
    if (!s)
        return NULL;
    if (!c->carve_left && !map_chunk(pool, cls)) {
        cosync__mem_free(pool->alloc, s);
        return NULL;
    }
    *s = (cosync__stack){.base = c->carve, .size = size, .cls = (uint8_t)cls};
    c->carve += size;
    c->carve_left--;
    s->guard = c->carve_guarded ? COSYNC__GUARD_MADVISE : install_guard(s->base);
    if (s->guard != COSYNC__GUARD_NONE)
        pool->guarded++;
    s->color = (uint8_t)(pool->mapped % 32);
    s->valgrind_id = COSYNC__VALGRIND_STACK_REGISTER(s->base + cosync__page_size(), s->base + size);
    pool->mapped++;
    return s;
}

static void hot_unlink(cosync__stack_class *c, cosync__stack *s)
{
    if (s->prev)
        s->prev->next = s->next;
    else
        c->hot = s->next;
    if (s->next)
        s->next->prev = s->prev;
    else
        c->hot_tail = s->prev;
    c->nhot--;
    if (c->nhot < c->nhot_low)
        c->nhot_low = c->nhot;
}

cosync__stack *cosync__stack_get_slow(cosync__stack_pool *pool, int cls)
{
    cosync__stack_class *c = &pool->cls[cls];
    cosync__stack *s = c->cold;
    if (s) {
        c->cold = s->next;
        s->cold = false;
    } else if (!(s = new_stack(pool, cls))) {
        return NULL;
    }
    pool->in_use++;
    return s;
}

void cosync__stack_trim(cosync__stack_pool *pool)
{
    size_t page = cosync__page_size();
    for (int i = 0; i < COSYNC__STACK_CLASSES; i++) {
        cosync__stack_class *c = &pool->cls[i];
        size_t idle = c->nhot_low < c->nhot ? c->nhot_low : c->nhot;
        for (; idle > pool->cache_max; idle--) {
            cosync__stack *s = c->hot_tail;
            hot_unlink(c, s);
            /* MADV_DONTNEED keeps guard regions installed by MADV_GUARD_INSTALL. */
            madvise(s->base + page, s->size - page, MADV_DONTNEED);
            s->cold = true;
            s->next = c->cold;
            c->cold = s;
        }
        c->nhot_low = c->nhot;
    }
}

bool cosync__stack_pool_has_surplus(const cosync__stack_pool *pool)
{
    for (int i = 0; i < COSYNC__STACK_CLASSES; i++)
        if (pool->cls[i].nhot > pool->cache_max)
            return true;
    return false;
}

static void forget_stack(cosync__stack_pool *pool, cosync__stack *s)
{
    COSYNC__VALGRIND_STACK_DEREGISTER(s->valgrind_id);
    if (s->guard == COSYNC__GUARD_MPROTECT)
        atomic_fetch_add(&mprotect_budget, 1);
    cosync__mem_free(pool->alloc, s);
}

void cosync__stack_pool_destroy(cosync__stack_pool *pool)
{
    for (int i = 0; i < COSYNC__STACK_CLASSES; i++) {
        cosync__stack_class *c = &pool->cls[i];
        cosync__stack *s, *next;
        for (s = c->hot; s; s = next) {
            next = s->next;
            forget_stack(pool, s);
        }
        for (s = c->cold; s; s = next) {
            next = s->next;
            forget_stack(pool, s);
        }
        *c = (cosync__stack_class){0};
    }
    cosync__stack_chunk *chunk, *next;
    for (chunk = pool->chunks; chunk; chunk = next) {
        next = chunk->next;
        munmap(chunk->base, chunk->size);
        cosync__mem_free(pool->alloc, chunk);
    }
    pool->chunks = NULL;
    pool->mapped = pool->guarded = 0;
}
