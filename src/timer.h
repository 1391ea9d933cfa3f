/*
 * The time layer: the loop's clock and its timer heap.
 *
 * The heap is an intrusive pairing heap (no allocation, O(1) insert,
 * O(log n) amortised removal) ordered by (when, seq): timers with equal
 * deadlines fire in the order they were armed.
 */
#ifndef COSYNC_TIMER_H
#define COSYNC_TIMER_H

#include <stdbool.h>
#include <stdint.h>

#include "cosync/base.h"

typedef struct cosync__timer_heap {
    cosync__timer *root;
    uint64_t seq;
    size_t count;
} cosync__timer_heap;

int64_t cosync__clock_monotonic(void);

static inline bool cosync__timer_armed(const cosync__timer *t)
{
    return t->when != COSYNC_FOREVER;
}

/* A disarmed timer; arm and disarm it any number of times. */
static inline void cosync__timer_init(cosync__timer *t, void (*fire)(cosync__timer *))
{
    *t = (cosync__timer){.when = COSYNC_FOREVER, .fire = fire};
}

void cosync__timer_arm(cosync__timer_heap *h, cosync__timer *t, int64_t when);
void cosync__timer_disarm(cosync__timer_heap *h, cosync__timer *t);

/* The earliest deadline, or COSYNC_FOREVER if no timer is armed. */
static inline int64_t cosync__timer_next(const cosync__timer_heap *h)
{
    return h->root ? h->root->when : COSYNC_FOREVER;
}

/* Disarm and fire, in order, every timer due at @now. Returns how many. */
size_t cosync__timer_run(cosync__timer_heap *h, int64_t now);

#endif /* COSYNC_TIMER_H */
