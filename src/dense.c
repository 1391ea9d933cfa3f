/*
 * Dense tasks: tasks that share a few stacks and keep, while another of
 * them runs on theirs, only the bytes they use (copied stacks, as
 * libaco's).
 *
 * A dense task is dealt one of COSYNC__DENSE_SLOTS shared stacks of its
 * size when it first runs, and gets its descriptor (its bounds, and the
 * buffer its bytes go to) then. Eviction is lazy: its bytes stay on the
 * shared stack when it suspends, and are copied out only when another
 * task dealt the same stack is to run there; they are copied back before
 * it next runs. No copy is made by code running on the stack it copies
 * to: the scheduler (sched.c) sends such a switch through the loop's own
 * context.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"
#include "fault.h"

/* With the descriptor's 56 bytes the first buffer makes 248 bytes a
 * descriptor, which keeps neighbours in a block off each other's cache
 * sets (a multiple of a power of two would not). */
#if UINTPTR_MAX == UINT64_MAX
_Static_assert(sizeof(cosync__dense) + COSYNC__DENSE_FIRST_CAP == 248,
               "a dense task's descriptor grew");
#endif

/* Descriptors come in blocks, as task records do, and go back to the
 * loop's free list, not to the allocator: a crowd that comes and goes
 * (a hundred thousand tasks woken and finished, then as many new ones)
 * would otherwise spend a quarter of its time in malloc and free. A block
 * holds FIRST_BLOCK descriptors, the next ones twice as many, up to
 * FIRST_BLOCK << MAX_BLOCK_SHIFT. One that has grown is allocated on its
 * own, and freed when its task ends. */
#define DENSE_SIZE (sizeof(cosync__dense) + COSYNC__DENSE_FIRST_CAP)
#define FIRST_BLOCK 64
#define MAX_BLOCK_SHIFT 6

struct cosync__dense_block {
    struct cosync__dense_block *next;
    _Alignas(16) unsigned char descs[];
};

static void push_free(cosync_loop *loop, cosync__dense *d)
{
    d->stack.next = (cosync__stack *)loop->dense_free;
    loop->dense_free = d;
}

static __attribute__((noinline, cold)) bool grow_descs(cosync_loop *loop)
{
    unsigned nblocks = 0;
    for (struct cosync__dense_block *b = loop->dense_blocks; b; b = b->next)
        nblocks++;
    size_t count = (size_t)FIRST_BLOCK << (nblocks < MAX_BLOCK_SHIFT ? nblocks : MAX_BLOCK_SHIFT);
    struct cosync__dense_block *b = cosync__mem_alloc(loop->alloc, sizeof *b + count * DENSE_SIZE);
    if (!b)
        return false;
    b->next = loop->dense_blocks;
    loop->dense_blocks = b;
    for (size_t i = count; i-- > 0;) /* handed out in address order */
        push_free(loop, (cosync__dense *)(void *)(b->descs + i * DENSE_SIZE));
    return true;
}

/* A descriptor for a dense task about to start (NULL if out of memory). */
static cosync__dense *dense_get(cosync_loop *loop)
{
    if (!loop->dense_free && !grow_descs(loop))
        return NULL;
    cosync__dense *d = loop->dense_free;
    loop->dense_free = (cosync__dense *)d->stack.next;
    return d;
}

/* Room for @len saved bytes, at eviction, where no error can be returned
 * to anyone: so not a fault-injection point, and out of memory here ends
 * the process, as a goroutine's stack that cannot grow does. */
static cosync__dense *grow(struct cosync__task *t, cosync__dense *d, size_t len)
{
    /* just what it needs, in whole cache lines: a task goes deeper than
     * ever before rarely, and each byte is held while it is away */
    size_t cap = (len + 63) & ~(size_t)63;
    const cosync_allocator *a = t->loop->alloc;
    size_t bytes = sizeof *d + cap;
    cosync__dense *n = a ? a->realloc(a->ud, NULL, bytes) : malloc(bytes);
    if (!n) {
        fprintf(stderr,
                "cosync: out of memory saving %zu bytes of stack of dense task '%s' (#%llu)\n", len,
                cosync__task_name(t), (unsigned long long)t->id);
        abort();
    }
    *n = *d; /* its bytes are copied afresh */
    cosync__dense_free(t->loop, d);
    n->cap = (uint32_t)cap;
    n->own_block = true;
    t->stack = &n->stack;
    return n;
}

/* The bytes @owner, suspended on its shared stack, would be copied out. */
static size_t saved_len(const struct cosync__task *owner)
{
    const cosync__dense *d = cosync__dense_of(owner);
    return (size_t)(cosync__stack_start(&d->stack) - (const char *)cosync__ctx_frame(&owner->ctx));
}

/* Whether copying @owner out needs no allocation (its buffer holds it). */
static bool evicts_in_place(const struct cosync__task *owner)
{
    return saved_len(owner) <= cosync__dense_of(owner)->cap;
}

bool cosync__dense_place_light(const cosync_loop *loop, const struct cosync__task *t)
{
    const struct cosync__task *owner = loop->shared[cosync__dense_of(t)->shared].owner;
    return !owner || owner == t || evicts_in_place(owner);
}

/* Copy the bytes of @owner, suspended, off its shared stack. */
static void evict(struct cosync__task *owner)
{
    cosync__dense *d = cosync__dense_of(owner);
    size_t len = saved_len(owner);
    char *sp = cosync__stack_start(&d->stack) - len;
    if (len > d->cap)
        d = grow(owner, d, len);
#if COSYNC__ASAN
    /* the frames' red zones are poisoned, and the bytes are only moved */
    __asan_unpoison_memory_region(sp, len);
#endif
    memcpy(d->bytes, sp, len);
    d->len = (uint32_t)len;
    owner->away = 1;
}

/* Put @t's bytes (none yet, if it is fresh) on its shared stack, first
 * copying out those of the task there. */
static void take_place(struct cosync__task *t, cosync__shared_stack *sh)
{
    if (sh->owner == t)
        return;
    if (sh->owner)
        evict(sh->owner);
    sh->owner = t;
    cosync__stack *s = sh->stack;
    cosync__dense *d = cosync__dense_of(t);
    d->stack.base = s->base;
    d->stack.size = s->size;
    d->stack.valgrind_id = s->valgrind_id;
    d->stack.guard = s->guard;
    d->stack.color = s->color;
    if (t->state != COSYNC__T_FRESH) {
#if COSYNC__ASAN
        /* the shadow describes the frames of the task evicted */
        __asan_unpoison_memory_region(s->base + cosync__page_size(), s->size - cosync__page_size());
#endif
        char *to = cosync__stack_start(s) - d->len;
        COSYNC__VALGRIND_MAKE_ADDRESSABLE(to, d->len);
        memcpy(to, d->bytes, d->len);
    }
}

void cosync__dense_place(cosync_loop *loop, struct cosync__task *t)
{
    take_place(t, &loop->shared[cosync__dense_of(t)->shared]);
    t->away = 0;
}

int cosync__dense_start(cosync_loop *loop, struct cosync__task *t, int avoid, int prefer,
                        bool may_allocate)
{
    int cls = cosync__dense_class(t);
    unsigned base = (unsigned)cls * COSYNC__DENSE_SLOTS;
    bool dealt = !(prefer >= 0 && (unsigned)prefer / COSYNC__DENSE_SLOTS == (unsigned)cls);
    unsigned k = dealt ? loop->dense_dealt[cls] % COSYNC__DENSE_SLOTS : (unsigned)prefer - base;
    if (dealt && (int)(base + k) == avoid) {
        /* not the stack the caller runs on; kept if this start is retried
         * from the loop, which has no caller to avoid */
        k = (k + 1) % COSYNC__DENSE_SLOTS;
        loop->dense_dealt[cls] = (uint8_t)k;
    }
    cosync__shared_stack *sh = &loop->shared[base + k];
    if (!may_allocate && ((!sh->stack && !loop->stacks.cls[cls].hot) || !loop->dense_free ||
                          (sh->owner && !evicts_in_place(sh->owner))))
        return COSYNC_EAGAIN; /* a cached stack is taken without a call; the
                               * rest waits for the loop's context */
    cosync__dense *d = dense_get(loop);
    if (!d)
        return COSYNC_ENOMEM;
    *d = (cosync__dense){.cap = COSYNC__DENSE_FIRST_CAP, .shared = (uint16_t)(base + k)};
    if (!sh->stack) {
        sh->stack = cosync__stack_get(&loop->stacks, cls);
        if (!sh->stack) {
            cosync__dense_free(loop, d);
            return COSYNC_ENOMEM;
        }
    }
    d->stack.cls = (uint8_t)t->stack_cls;
    t->stack = &d->stack;
    if (dealt)
        loop->dense_dealt[cls] = (uint8_t)(k + 1);
    sh->users++;
    take_place(t, sh);
    t->away = 0;
    return 0;
}

void cosync__dense_release(struct cosync__task *t)
{
    cosync_loop *loop = t->loop;
    cosync__dense *d = cosync__dense_of(t);
    cosync__shared_stack *sh = &loop->shared[d->shared];
    if (sh->owner == t)
        sh->owner = NULL;
    if (--sh->users == 0) {
        cosync__stack_put(&loop->stacks, sh->stack);
        sh->stack = NULL;
    }
    t->stack = NULL;
    t->away = 0;
    cosync__dense_free(loop, d);
}

void cosync__dense_free(cosync_loop *loop, cosync__dense *d)
{
    if (d->own_block) {
        const cosync_allocator *a = loop->alloc;
        if (a)
            a->realloc(a->ud, d, 0);
        else
            free(d);
    } else {
        push_free(loop, d);
    }
}

void cosync__dense_loop_destroy(cosync_loop *loop)
{
    for (size_t i = 0; i < sizeof loop->shared / sizeof loop->shared[0]; i++) {
        if (loop->shared[i].stack)
            cosync__stack_put(&loop->stacks, loop->shared[i].stack);
        loop->shared[i] = (cosync__shared_stack){0};
    }
    while (loop->dense_blocks) {
        struct cosync__dense_block *b = loop->dense_blocks;
        loop->dense_blocks = b->next;
        cosync__mem_free(loop->alloc, b);
    }
    loop->dense_free = NULL;
}

void cosync__dense_refuse_wait(struct cosync__task *t)
{
    t->state = COSYNC__T_RUNNING; /* it goes on at once: not made ready */
    struct cosync__task *pass_on = cosync__abort_wait(&t->w, COSYNC_EINVAL);
    if (pass_on) /* not for a primitive's wait; a task's never lies on a stack */
        cosync__cancel(pass_on);
}
