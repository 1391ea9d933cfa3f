#include "fault.h"

#include <stdlib.h>

long cosync__fault_countdown = -1;
long cosync__fault_failures = 0;

void *cosync__mem_alloc(const cosync_allocator *a, size_t size)
{
    if (cosync__fault_hit())
        return NULL;
    return a ? a->realloc(a->ud, NULL, size) : malloc(size);
}

void cosync__mem_free(const cosync_allocator *a, void *p)
{
    if (!p)
        return;
    if (a)
        a->realloc(a->ud, p, 0);
    else
        free(p);
}
