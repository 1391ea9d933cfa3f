/*
 * Dense tasks: tasks that share one stack and keep, while another of them
 * runs there, only the bytes they use (copied stacks, as libaco's).
 *
 * Eviction is lazy: a dense task's bytes stay on the shared stack when it
 * suspends, and are copied out to its own buffer only when another dense
 * task of its stack class is to run there; they are copied back before it
 * next runs. No copy is made by code running on that shared stack: the
 * scheduler (sched.c) sends a switch that needs one through the loop's own
 * context, or makes it from a stack that is not the shared one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fault.h"

/* Bytes saved without growing the buffer: a task blocked straight from
 * its body uses 152-168 (docs/stacks.md), deeper ones grow it once. */
#define DENSE_FIRST_CAP 256

cosync__stack *cosync__dense_new(cosync_loop *loop, int cls)
{
    cosync__dense *d = cosync__mem_alloc(loop->alloc, sizeof *d + DENSE_FIRST_CAP);
    if (!d)
        return NULL;
    *d = (cosync__dense){.cap = DENSE_FIRST_CAP, .shared_cls = (uint8_t)cls};
    d->stack.cls = COSYNC__STACK_DENSE;
    return &d->stack;
}

/* Room for @len saved bytes, at eviction, where no error can be returned
 * to anyone: so not a fault-injection point, and out of memory here ends
 * the process, as a goroutine's stack that cannot grow does. */
static cosync__dense *grow(struct cosync__task *t, cosync__dense *d, size_t len)
{
    size_t cap = d->cap;
    while (cap < len)
        cap *= 2;
    const cosync_allocator *a = t->loop->alloc;
    size_t bytes = sizeof *d + cap;
    cosync__dense *n = a ? a->realloc(a->ud, d, bytes) : realloc(d, bytes);
    if (!n) {
        fprintf(stderr,
                "cosync: out of memory saving %zu bytes of stack of dense task '%s' (#%llu)\n", len,
                cosync__task_name(t), (unsigned long long)t->id);
        abort();
    }
    n->cap = cap;
    t->stack = &n->stack;
    return n;
}

/* Copy the bytes of @owner, suspended, off its shared stack. */
static void evict(struct cosync__task *owner)
{
    cosync__dense *d = cosync__dense_of(owner);
    char *top = cosync__stack_start(&d->stack);
    char *sp = (char *)cosync__ctx_frame(&owner->ctx);
    size_t len = (size_t)(top - sp);
    if (len > d->cap)
        d = grow(owner, d, len);
#if COSYNC__ASAN
    /* the frames' red zones are poisoned, and the bytes are only moved */
    __asan_unpoison_memory_region(sp, len);
#endif
    memcpy(d->bytes, sp, len);
    d->len = len;
    owner->away = 1;
}

bool cosync__dense_place(cosync_loop *loop, struct cosync__task *t)
{
    cosync__dense *d = cosync__dense_of(t);
    int cls = d->shared_cls;
    struct cosync__task *owner = loop->shared_owner[cls];
    cosync__stack *s = loop->shared[cls];
    if (!s) {
        s = cosync__stack_get(&loop->stacks, cls);
        if (!s)
            return false;
        loop->shared[cls] = s;
    }
    if (t->state == COSYNC__T_FRESH)
        loop->shared_users[cls]++;
    if (owner != t) {
        if (owner)
            evict(owner);
        loop->shared_owner[cls] = t;
        d = cosync__dense_of(t);
        d->stack.base = s->base;
        d->stack.size = s->size;
        d->stack.valgrind_id = s->valgrind_id;
        d->stack.guard = s->guard;
        d->stack.color = s->color;
        if (t->state != COSYNC__T_FRESH) {
#if COSYNC__ASAN
            /* the shadow describes the frames of the task evicted */
            __asan_unpoison_memory_region(s->base + cosync__page_size(),
                                          s->size - cosync__page_size());
#endif
            memcpy(cosync__stack_start(s) - d->len, d->bytes, d->len);
        }
    }
    t->away = 0;
    return true;
}

void cosync__dense_release(struct cosync__task *t)
{
    cosync_loop *loop = t->loop;
    cosync__dense *d = cosync__dense_of(t);
    int cls = d->shared_cls;
    if (loop->shared_owner[cls] == t)
        loop->shared_owner[cls] = NULL;
    if (d->stack.base && --loop->shared_users[cls] == 0) { /* it had started */
        cosync__stack_put(&loop->stacks, loop->shared[cls]);
        loop->shared[cls] = NULL;
    }
    t->stack = NULL;
    t->away = 0;
    cosync__mem_free(loop->alloc, d);
}

void cosync__dense_loop_destroy(cosync_loop *loop)
{
    for (int c = 0; c < COSYNC__STACK_CLASSES; c++) {
        if (loop->shared[c])
            cosync__stack_put(&loop->stacks, loop->shared[c]);
        loop->shared[c] = NULL;
        loop->shared_owner[c] = NULL;
    }
}
