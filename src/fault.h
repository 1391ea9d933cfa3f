/*
 * Fault injection and the library's allocator.
 *
 * Every allocation and every system call that can fail on a path the tests
 * exercise asks cosync__fault_hit() first, so a test can make the n-th such
 * point fail (neco's and SQLite's technique) and check that the error comes
 * back and nothing leaks.
 */
#ifndef COSYNC_FAULT_H
#define COSYNC_FAULT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

#include "cosync.h"

/* Points still to pass before one fails; negative: injection off.
 * Tests set it; the library only counts it down. */
extern long cosync__fault_countdown;
/* Points failed so far (for tests that check a failure really happened). */
extern long cosync__fault_failures;
/* Blocks from cosync__mem_alloc not yet given to cosync__mem_free: tests
 * check that what a scenario allocates comes back, in builds without a
 * leak checker too. */
extern atomic_long cosync__mem_live;

static inline bool cosync__fault_hit(void)
{
    if (__builtin_expect(cosync__fault_countdown < 0, 1))
        return false;
    if (cosync__fault_countdown-- > 0)
        return false;
    cosync__fault_failures++;
    return true;
}

void *cosync__mem_alloc(const cosync_allocator *a, size_t size);
void cosync__mem_free(const cosync_allocator *a, void *p);

#endif /* COSYNC_FAULT_H */
