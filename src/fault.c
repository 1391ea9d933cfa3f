#include "fault.h"

#include <stdlib.h>

long cosync__fault_countdown = -1;
long cosync__fault_failures = 0;
atomic_long cosync__mem_live = 0;

void *cosync__mem_alloc(const cosync_allocator *a, size_t size)
{
    if (cosync__fault_hit())
        return NULL;
    void *p = a ? a->realloc(a->ud, NULL, size) : malloc(size);
    if (p)
        atomic_fetch_add_explicit(&cosync__mem_live, 1, memory_order_relaxed);
    return p;
}

void cosync__mem_free(const cosync_allocator *a, void *p)
{
    if (!p)
        return;
    atomic_fetch_sub_explicit(&cosync__mem_live, 1, memory_order_relaxed);
    if (a)
        a->realloc(a->ud, p, 0);
    else
        free(p);
}
