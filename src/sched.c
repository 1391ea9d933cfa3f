/*
 * The scheduler: the ready queue and every switch between stacks.
 *
 * A suspending task switches straight to the next ready task; the loop's
 * own context (the thread's stack) runs only when the ready queue is empty
 * or COSYNC__BUDGET tasks have run since it last looked at its clock,
 * timers and I/O. A finishing task hands its stack directly to the next
 * task if that one has never run, so spawn + run + finish costs one switch.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "core.h" /* and <pthread.h>, for the loop's thread */

int cosync__final_status(const struct cosync__task *t, int rc)
{
    if (rc < 0)
        return rc;
    return t->cancel_count > 0 ? COSYNC_ECANCELED : 0;
}

/* ---- hooks around each switch: FP modes, sanitizers ---------------- */

/* Inlined even at -O0, as is every function whose frame spans a switch
 * (start, resume): ThreadSanitizer records each function's entry and exit
 * on the fiber current at that moment, so a frame of their own would have
 * its entry recorded on one task's fiber and its exit on another's, which
 * corrupts both (seen as false races, then a crash, in Debug builds). */
#define SWITCH_INLINE static inline __attribute__((always_inline))

/* A loop whose tasks share the thread's FP control modes, on a backend
 * whose switch always keeps each context's own: carry the modes across
 * (and MXCSR's exception flags with them; under ucontext the x87 status
 * word stays each context's own). The inline x86-64 switch just leaves
 * them alone. */
SWITCH_INLINE void fp_leave(cosync_loop *loop)
{
#if !COSYNC__CTX_HAVE_INLINE
    if (!loop->own_fp)
        cosync__fpenv_save(&loop->fpenv);
#endif
    (void)loop;
}

SWITCH_INLINE void fp_arrive(cosync_loop *loop)
{
#if !COSYNC__CTX_HAVE_INLINE
    if (!loop->own_fp)
        cosync__fpenv_write(&loop->fpenv);
#endif
    (void)loop;
}

SWITCH_INLINE void san_leave(cosync_loop *loop, void **fake_save, struct cosync__task *to)
{
    fp_leave(loop);
#if COSYNC__ASAN
    if (to)
        __sanitizer_start_switch_fiber(fake_save, to->stack->base, to->stack->size);
    else
        __sanitizer_start_switch_fiber(fake_save, loop->thread_stack, loop->thread_stack_size);
#endif
#if COSYNC__TSAN
    __tsan_switch_to_fiber(to ? to->tsan_fiber : loop->tsan_fiber, 0);
#endif
    (void)loop, (void)fake_save, (void)to;
}

SWITCH_INLINE void san_arrive(cosync_loop *loop, void *fake)
{
    fp_arrive(loop);
#if COSYNC__ASAN
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#endif
#if COSYNC__TSAN
    if (loop->tsan_zombie) {
        __tsan_destroy_fiber(loop->tsan_zombie);
        loop->tsan_zombie = NULL;
    }
#endif
    (void)loop, (void)fake;
}

SWITCH_INLINE void san_fresh_stack(struct cosync__task *t)
{
#if COSYNC__ASAN
    /* frames of the stack's previous task may still be poisoned */
    __asan_unpoison_memory_region(t->stack->base + cosync__page_size(),
                                  t->stack->size - cosync__page_size());
#endif
#if COSYNC__TSAN
    t->tsan_fiber = __tsan_create_fiber(0);
#endif
    (void)t;
}

SWITCH_INLINE void san_dying(struct cosync__task *t)
{
#if COSYNC__TSAN
    t->loop->tsan_zombie = t->tsan_fiber;
    t->tsan_fiber = NULL;
#endif
    (void)t;
}

#if COSYNC__ASAN
#define FAKE_SAVE(x) (&(x)->asan_fake)
#define FAKE(x) ((x)->asan_fake)
#else
#define FAKE_SAVE(x) NULL
#define FAKE(x) NULL
#endif

/* ---- picking the next task ------------------------------------------- */

/* How many tasks at the head of the ready queue have their stacks fetched
 * ahead of time. A crowd woken at once (an event set with thousands of
 * waiters) is cold: each stack is a page of its own, a TLB miss and then a
 * cache miss, and only fetches started several tasks early overlap with
 * useful work. */
#define PREFETCH_AHEAD 8

/* Start fetching the top of a suspended task's stack: its saved frame and
 * the frames it returns through as it resumes, three lines in all. A task
 * that has not run yet has no frame (NULL or a stale address): the hint is
 * then merely wasted, so the address is computed as an integer.
 * always_inline: a function that only prefetches has no effect GCC must
 * keep, so a call to it that is not inlined is dropped as dead code. */
static inline __attribute__((always_inline)) void prefetch_frames(const struct cosync__task *t)
{
    uintptr_t frame = (uintptr_t)cosync__ctx_frame(&t->ctx);
    __builtin_prefetch((const void *)frame);
    __builtin_prefetch((const void *)(frame + 64));
    __builtin_prefetch((const void *)(frame + 128));
}

static inline __attribute__((always_inline)) void prefetch_task(const struct cosync__task *t)
{
    if (__builtin_expect(!cosync__resumable(t), 0)) {
        if (t->state == COSYNC__T_READY) { /* away: its frames are in its descriptor */
            const char *d = (const char *)t->stack;
            for (int line = 0; line < 4; line++)
                __builtin_prefetch(d + 64 * line);
        }
        return; /* or not started: no frame yet */
    }
    prefetch_frames(t);
    __builtin_prefetch(t->stack); /* given back when the task ends */
}

/* Extend the prefetched head of the ready queue by up to two tasks. A
 * hint only, but an exact one: every pop counts pf_ahead down, so pf is
 * always a task still in the queue. */
static inline void prefetch_ahead(cosync_loop *loop)
{
    for (int i = 0; i < 2 && loop->pf_ahead < PREFETCH_AHEAD; i++) {
        struct cosync__task *next = loop->pf_ahead ? loop->pf->next_ready : loop->ready_head;
        if (!next)
            return;
        prefetch_task(next);
        loop->pf = next;
        loop->pf_ahead++;
    }
}

/* A task ends without having run: cancelled before it ran, or no stack
 * could be had. Out of line, so that the paths that take the next task
 * keep their registers for the common case. */
static __attribute__((noinline)) void end_unstarted(struct cosync__task *t, int status)
{
    t->away = 0; /* a dense task's mark: it had no place yet */
    cosync__task_finished(t, status, NULL);
}

/* The next task that may run, or NULL to return to the loop. Tasks that
 * were cancelled before they ever ran are finished here, without a stack.
 * Inlined where a task finishes, which takes the next task every time;
 * called elsewhere (take_next). */
static inline __attribute__((always_inline)) struct cosync__task *
take_next_inline(cosync_loop *loop)
{
    for (;;) {
        if (loop->budget <= 0)
            return NULL;
        struct cosync__task *t = cosync__ready_pop(loop);
        if (!t)
            return NULL;
        loop->budget--;
        if (t->state != COSYNC__T_FRESH || !t->cancel_pending)
            return t;
        t->cancel_pending = false;
        end_unstarted(t, COSYNC_ECANCELED);
    }
}

static struct cosync__task *take_next(cosync_loop *loop)
{
    return take_next_inline(loop);
}

/* Put @t, just taken by take_next, back at the head of the ready queue
 * for the loop's own context, which gives it its stack or its place from
 * the thread's stack (stack_wanted) and runs it in the same turn. */
static void hand_to_loop(cosync_loop *loop, struct cosync__task *t)
{
    loop->stack_wanted = true;
    cosync__ready_push_front(loop, t);
    loop->budget++;
}

/* Give a fresh task a stack; false (and the task finished with
 * COSYNC_ENOMEM) if none can be had. */
static inline bool give_stack(cosync_loop *loop, struct cosync__task *t)
{
    t->stack = cosync__stack_get(&loop->stacks, t->stack_cls);
    if (t->stack) {
        t->unguarded = t->stack->guard == COSYNC__GUARD_NONE;
        san_fresh_stack(t);
        return true;
    }
    end_unstarted(t, COSYNC_ENOMEM);
    return false;
}

/* give_stack for a dense task: a place on a shared stack (@avoid,
 * @prefer, @may_allocate: cosync__dense_start). 1; 0 (and the task finished
 * with COSYNC_ENOMEM) if none can be had; COSYNC_EAGAIN if that would
 * allocate and @may_allocate is false. */
static __attribute__((noinline)) int give_shared_stack(cosync_loop *loop, struct cosync__task *t,
                                                       int avoid, int prefer, bool may_allocate)
{
    int rc = cosync__dense_start(loop, t, avoid, prefer, may_allocate);
    if (rc == 0) {
        t->unguarded = true; /* each suspension is checked (check_suspension) */
        san_fresh_stack(t);
        return 1;
    }
    if (rc == COSYNC_EAGAIN)
        return rc;
    end_unstarted(t, COSYNC_ENOMEM);
    return 0;
}

/* give_stack for any fresh task, from a stack no dense task runs on (the
 * fast paths know theirs is not dense) */
static inline bool give_any_stack(cosync_loop *loop, struct cosync__task *t)
{
    if (__builtin_expect(cosync__is_dense(t), 0))
        return give_shared_stack(loop, t, -1, -1, true) == 1;
    return give_stack(loop, t);
}

static void task_entry(void *arg) __attribute__((noreturn));
static void dense_task_entry(void *arg) __attribute__((noreturn));

/* A dense task starts elsewhere, so that the end of the others needs no
 * test for it. */
static inline cosync__ctx_entry entry_of(const struct cosync__task *t)
{
    return cosync__is_dense(t) ? dense_task_entry : task_entry;
}

SWITCH_INLINE void start(cosync_loop *loop, cosync__ctx *from, struct cosync__task *t,
                         cosync__ctx_entry entry)
{
    t->state = COSYNC__T_RUNNING;
    cosync__set_current(t);
    loop->switches++;
#if COSYNC__CTX_HAVE_INLINE
    /* every task starts with the FP modes the loop was run with, or with
     * shared modes the thread's current ones (the frame's are not loaded) */
    if (from) {
        cosync__ctx_prepare(&t->ctx, cosync__stack_start(t->stack), entry, t, loop->fpenv);
        cosync__ctx_switch_inline(from, &t->ctx, loop->own_fp);
        return;
    }
    if (loop->own_fp)
        cosync__fpenv_write(&loop->fpenv);
    cosync__ctx_start_inline(cosync__stack_start(t->stack), entry, t);
#else
    cosync__ctx_start(from, &t->ctx, cosync__stack_start(t->stack),
                      (size_t)(cosync__stack_start(t->stack) - cosync__stack_limit(t->stack)),
                      entry, t);
#endif
}

/* Switch from @cur to the loop's own context: the turn ends, or goes on
 * there (stack_wanted). */
SWITCH_INLINE void back_to_loop(cosync_loop *loop, struct cosync__task *cur)
{
    cosync__set_current(NULL);
    san_leave(loop, FAKE_SAVE(cur), NULL);
    loop->switches++;
    cosync__ctx_switch_inline(&cur->ctx, &loop->ctx, loop->own_fp);
}

SWITCH_INLINE void resume(cosync_loop *loop, cosync__ctx *from, struct cosync__task *t)
{
    t->state = COSYNC__T_RUNNING;
    cosync__set_current(t);
    loop->switches++;
    cosync__ctx_switch_inline(from, &t->ctx, loop->own_fp);
}

/* ---- suspension ------------------------------------------------------ */

/* @next, the head of the ready queue, is about to run. With thousands of
 * tasks their records and stacks are cold: start fetching the frames of
 * the task behind it and the record after that now, so that neither its
 * switch nor its return into its callers stalls. always_inline, as
 * prefetch_frames. */
static inline __attribute__((always_inline)) void fetch_behind(struct cosync__task *next)
{
    struct cosync__task *after = next->next_ready;
    if (after) {
        prefetch_frames(after);
        __builtin_prefetch(after->next_ready);
    }
}

/* Take @next, the head of the ready queue, to run it now. */
static inline void pop_head(cosync_loop *loop, struct cosync__task *next)
{
    (void)cosync__ready_pop(loop); /* next */
    fetch_behind(next);
    loop->budget--;
}

/* An unguarded task has run into the lowest page of its stack. Report it
 * from the loop's own stack: the task has too little left even for the
 * dynamic linker to resolve a call to write() (it saves the whole vector
 * register file on the stack). */
static void __attribute__((noinline)) check_stack(struct cosync__task *t)
{
    /* the frame, not a local's address: with ASan's use-after-return
     * detection locals live on a heap-allocated fake stack */
    if ((char *)__builtin_frame_address(0) >= cosync__stack_limit(t->stack))
        return;
    cosync_loop *loop = t->loop;
    loop->overflowed = t;
    cosync__set_current(NULL);
    san_leave(loop, FAKE_SAVE(t), NULL);
    cosync__ctx_switch_inline(&t->ctx, &loop->ctx, loop->own_fp); /* never comes back */
}

/* At each suspension of a task whose stack has no guard page, or that is
 * dense. A dense task may not wait on an object in its own stack: while
 * it is away, a cancel, a deadline or the loop's close would take its
 * waiter off that object, where another task's bytes are; the wait ends
 * at once with COSYNC_EINVAL, without a switch (returns true then).
 * Inline: a dense task switches often. */
static inline __attribute__((always_inline)) bool check_suspension(struct cosync__task *t)
{
    if (cosync__is_dense(t)) {
        if (__builtin_expect(cosync__dense_holds(t, t->w.obj), 0) &&
            t->w.state == COSYNC__W_WAITING) {
            cosync__dense_refuse_wait(t);
            return true;
        }
        if (t->stack->guard != COSYNC__GUARD_NONE)
            return false;
    }
    check_stack(t);
    return false;
}

static void __attribute__((noreturn)) report_overflow(struct cosync__task *t)
{
    fprintf(stderr,
            "cosync: stack overflow in task '%s' (#%llu): its stack of %zu bytes has no "
            "guard page\n",
            cosync__task_name(t), (unsigned long long)t->id, t->stack->size);
    abort();
}

/* Switch from @cur to @next, taken off the ready queue, which has run
 * before and can be resumed at once; returns when @cur is resumed. */
SWITCH_INLINE void switch_to(cosync_loop *loop, struct cosync__task *cur, struct cosync__task *next)
{
    san_leave(loop, FAKE_SAVE(cur), next);
    resume(loop, &cur->ctx, next);
    san_arrive(loop, FAKE(cur));
}

static inline __attribute__((always_inline)) void switch_away(struct cosync__task *cur)
{
    cosync_loop *loop = cur->loop;
    if (__builtin_expect(cur->unguarded, 0) && check_suspension(cur))
        return;
    /* the common cases: the next ready task has run before, or it is new
     * and a cached stack is at hand */
    struct cosync__task *next = loop->ready_head;
    if (__builtin_expect(next && next != cur && loop->budget > 0, 1)) {
        if (cosync__resumable(next)) {
            pop_head(loop, next);
            switch_to(loop, cur, next);
            return;
        }
        /* fresh (a dense task, fresh or away, has no cached stack) */
        if (!next->cancel_pending && loop->stacks.cls[next->stack_cls].hot) {
            pop_head(loop, next);
            give_stack(loop, next);
            san_leave(loop, FAKE_SAVE(cur), next);
            start(loop, &cur->ctx, next, task_entry);
            san_arrive(loop, FAKE(cur));
            return;
        }
    }
    for (;;) {
        next = take_next(loop);
        if (!next) {
            back_to_loop(loop, cur);
            break;
        }
        if (next == cur) { /* a yield with nothing else ready */
            cur->state = COSYNC__T_RUNNING;
            return;
        }
        if (next->state == COSYNC__T_FRESH) {
            if (cosync__is_dense(next)) {
                int avoid = cosync__is_dense(cur) ? cosync__dense_of(cur)->shared : -1;
                int given = give_shared_stack(loop, next, avoid, -1, false);
                if (given == 0)
                    continue;
                if (given == 1) {
                    san_leave(loop, FAKE_SAVE(cur), next);
                    start(loop, &cur->ctx, next, dense_task_entry);
                    break;
                }
            }
            if (!loop->stacks.cls[next->stack_cls].hot) {
                /* a stack to make or take back (mmap, the guard calls,
                 * their buffers) is made on the loop's own stack: this
                 * task may be suspending from deep in its own; and a
                 * dense task's place is made off its shared stack */
                hand_to_loop(loop, next);
                back_to_loop(loop, cur);
                break;
            }
            if (!give_stack(loop, next))
                continue;
            san_leave(loop, FAKE_SAVE(cur), next);
            start(loop, &cur->ctx, next, task_entry);
            break;
        }
        if (__builtin_expect(next->away, 0)) {
            /* its bytes are copied back only from off their stack, and a
             * buffer to grow is allocated on the loop's stack, not from
             * deep in this task's */
            if (cosync__dense_same_stack(cur, next) || !cosync__dense_place_light(loop, next)) {
                hand_to_loop(loop, next);
                back_to_loop(loop, cur);
                break;
            }
            cosync__dense_place(loop, next);
        }
        san_leave(loop, FAKE_SAVE(cur), next);
        resume(loop, &cur->ctx, next);
        break;
    }
    san_arrive(loop, FAKE(cur));
}

/* Every suspension ends here (or, for a yield, in cosync__yield_to, which
 * does the same), and every blocking call reaches this by a tail call
 * where it can (nothing to do after the wait), so that the only return
 * address between a suspended task's caller and this frame is the
 * caller's own: a task that resumes where another one suspended from a
 * different place then mispredicts one return, not one per layer. */
int cosync__suspend(struct cosync__task *cur)
{
    switch_away(cur);
    cur->w.state = COSYNC__W_IDLE;
    return cur->w.result;
}

/* cosync__suspend for a yield that has found what switch_away would look
 * for. */
int cosync__yield_to(struct cosync__task *cur, struct cosync__task *next)
{
    cosync_loop *loop = cur->loop;
    fetch_behind(next);
    cosync__ready_rotate(loop, next, cur);
    loop->budget--;
    switch_to(loop, cur, next);
    cur->w.state = COSYNC__W_IDLE;
    return cur->w.result;
}

/* The wait of an eager spawner while its new task takes its first step:
 * it is ready, right behind that task at the head of the queue, and the
 * wait is granted from the start, so that a cancel meanwhile stays
 * pending (cancel_one). */
static const cosync__waiter_ops eager_ops = {"start of a task it spawned", NULL, NULL, NULL};

void cosync__start_eagerly(struct cosync__task *t)
{
    struct cosync__task *cur = cosync__current();
    cosync_loop *loop = cur->loop;
    /* asyncio's create_task is no await */
    cosync__waiter *w = cosync__waiter_prepare(cur, &eager_ops, NULL);
    w->state = COSYNC__W_GRANTED;
    cur->state = COSYNC__T_READY;
    cosync__ready_push_front(loop, cur);
    cosync__ready_push_front(loop, t);
    /* the two dispatches are the spawner's own step: a turn that a stop
     * has cut short must not end between them */
    loop->budget += 2;
    cosync__suspend(cur);
}

/* ---- finishing ------------------------------------------------------- */

/* The end of every task: leave its stack for good. */
/* Inlined into task_entry, so that a task's life leaves no call without
 * its return behind on the return-stack predictor. */
#if COSYNC__ASAN
/* ASan's no-return hook wants its own frame (and gcc refuses noinline on
 * an inline function) */
#define EXIT_TASK static __attribute__((noinline, noreturn))
#else
#define EXIT_TASK static inline __attribute__((always_inline, noreturn))
#endif
/* The last switches of a finishing task, which never comes back. */
SWITCH_INLINE __attribute__((noreturn)) void leave_for_loop(cosync_loop *loop)
{
    cosync__set_current(NULL);
    san_leave(loop, NULL, NULL);
    loop->switches++;
    cosync__ctx_jump_inline(&loop->ctx, loop->own_fp);
}

SWITCH_INLINE __attribute__((noreturn)) void
leave_to_start(cosync_loop *loop, struct cosync__task *next, cosync__ctx_entry entry)
{
    san_leave(loop, NULL, next);
    start(loop, NULL, next, entry);
    __builtin_unreachable();
}

SWITCH_INLINE __attribute__((noreturn)) void leave_for(cosync_loop *loop, struct cosync__task *next)
{
    san_leave(loop, NULL, next);
    next->state = COSYNC__T_RUNNING;
    cosync__set_current(next);
    loop->switches++;
    cosync__ctx_jump_inline(&next->ctx, loop->own_fp);
}

/* The task ends with scopes still open in it: close them before its
 * record turns into its result. */
static __attribute__((noinline)) void scopes_end(struct cosync__task *t)
{
    if (t->timeouts)
        cosync__timeout_owner_ends(t);
    if (t->stack_groups)
        cosync__taskgroup_owner_ends(t);
    t->close_marks &= (uint8_t)~COSYNC__SCOPES;
}

/* The end of a dense task: the shared stack it leaves is free at once, so
 * a fresh dense task of its size starts there without a copy; one that is away is
 * copied back from here, or, if its bytes go on this very stack, from
 * the loop's context. Out of line: the common end keeps its frame small. */
static __attribute__((noinline, noreturn)) void exit_dense_task(struct cosync__task *t, int status,
                                                                void *result)
{
    if (__builtin_expect(t->close_marks & COSYNC__SCOPES, 0))
        scopes_end(t); /* timeout blocks: a dense task keeps no task group in its stack */
    cosync_loop *loop = t->loop;
    uint16_t mine = cosync__dense_of(t)->shared;
    cosync__dense_release(t); /* its stack is free: the next one may start there */
    san_dying(t);
    cosync__task_finished(t, status, result); /* may free t */
    for (;;) {
        struct cosync__task *next = take_next(loop);
        prefetch_ahead(loop);
        if (!next)
            leave_for_loop(loop);
        if (next->state == COSYNC__T_FRESH) {
            if (cosync__is_dense(next) ? give_shared_stack(loop, next, -1, mine, true) != 1
                                       : !give_stack(loop, next))
                continue;
            leave_to_start(loop, next, entry_of(next));
        }
        if (next->away) {
            if (cosync__dense_of(next)->shared == mine) {
                hand_to_loop(loop, next);
                leave_for_loop(loop);
            }
            cosync__dense_place(loop, next);
        }
        leave_for(loop, next);
    }
}

EXIT_TASK void exit_task(struct cosync__task *t, int status, void *result)
{
    if (__builtin_expect(t->close_marks & COSYNC__SCOPES, 0))
        scopes_end(t);
    cosync_loop *loop = t->loop;
    cosync__stack *stack = t->stack;
    t->stack = NULL;
    san_dying(t);
    cosync__task_finished(t, status, result); /* may free t */
    for (;;) {
        struct cosync__task *next = take_next_inline(loop);
        prefetch_ahead(loop);
        if (!next) {
            cosync__stack_put(&loop->stacks, stack);
            leave_for_loop(loop);
        }
        if (cosync__plain_fresh(next)) {
            if (COSYNC__CTX_CAN_START_ON_OWN_STACK && next->stack_cls == stack->cls) {
                next->stack = stack; /* start it on this very stack */
                next->unguarded = stack->guard == COSYNC__GUARD_NONE;
                san_fresh_stack(next);
                leave_to_start(loop, next, task_entry);
            }
            if (!give_stack(loop, next))
                continue;
            cosync__stack_put(&loop->stacks, stack);
            leave_to_start(loop, next, task_entry);
        }
        if (__builtin_expect(!cosync__resumable(next), 0)) { /* dense: fresh or away */
            if (next->state == COSYNC__T_FRESH) {
                if (give_shared_stack(loop, next, -1, -1, true) != 1)
                    continue;
                cosync__stack_put(&loop->stacks, stack);
                leave_to_start(loop, next, dense_task_entry);
            }
            cosync__dense_place(loop, next); /* from this stack, not the shared one */
        }
        cosync__stack_put(&loop->stacks, stack);
        leave_for(loop, next);
    }
}

/* A task's arrival on its new stack, and its body: inlined into both
 * entries, as the rest of a task's life is. */
SWITCH_INLINE int run_body(struct cosync__task *t, void **result)
{
    san_arrive(t->loop, NULL);
#if !COSYNC__CTX_HAVE_INLINE
    /* the modes the inline start puts in the frame; shared ones came with
     * san_arrive */
    if (t->loop->own_fp)
        cosync__fpenv_write(&t->loop->fpenv);
#endif
    return t->fn(t->arg, result);
}

static void task_entry(void *arg)
{
    struct cosync__task *t = arg;
    void *result = NULL;
    int rc = run_body(t, &result);
    exit_task(t, cosync__final_status(t, rc), result);
}

static void dense_task_entry(void *arg)
{
    struct cosync__task *t = arg;
    void *result = NULL;
    int rc = run_body(t, &result);
    exit_dense_task(t, cosync__final_status(t, rc), result);
}

/* ---- the loop's side ------------------------------------------------- */

/* The budget counts dispatches, so a budget of exactly the tasks ready now
 * runs them and no other. A second cut in the same turn only shortens it,
 * so a task that asks again and again cannot keep the turn going. */
void cosync__cut_turn(cosync_loop *loop)
{
    /* after a first cut only a shorter count matters: count no further */
    uint64_t now = cosync__steps_now(loop);
    size_t n = cosync__ready_count(loop, loop->turn_cut ? (size_t)(loop->turn_end - now) : INT_MAX);
    loop->turn_end = now + n;
    loop->turn_cut = true;
    if (loop->cb_soon.head) /* the turn may now reach a callback's place */
        cosync__callbacks_place(loop, n);
    cosync__apply_budget(loop);
}

void cosync__apply_budget(cosync_loop *loop)
{
    uint64_t now = cosync__steps_now(loop);
    uint64_t end = loop->turn_end;
    if (loop->cb_due < end) /* a callback is due before the turn's end */
        end = loop->cb_due > now ? loop->cb_due : now;
    loop->steps = now;
    loop->turn_budget = loop->budget = (int)(end > now ? end - now : 0);
}

void cosync__sched_bind_thread(cosync_loop *loop)
{
#if COSYNC__ASAN
    pthread_attr_t attr;
    void *addr = NULL;
    size_t size = 0;
    if (pthread_getattr_np(pthread_self(), &attr) == 0) {
        pthread_attr_getstack(&attr, &addr, &size);
        pthread_attr_destroy(&attr);
    }
    loop->thread_stack = addr;
    loop->thread_stack_size = size;
#endif
#if COSYNC__TSAN
    loop->tsan_fiber = __tsan_get_current_fiber();
#endif
    (void)loop;
}

/* A turn's budget has run out, or its queue: the callbacks due may let it
 * go on (a callback takes its step among the tasks', as in asyncio's
 * _ready). False if the turn is over. */
static bool turn_goes_on(cosync_loop *loop)
{
    return __builtin_expect(loop->cb_soon.head != NULL, 0) && cosync__callbacks_mid_turn(loop);
}

void cosync__run_ready(cosync_loop *loop)
{
    loop->turn_end = cosync__steps_now(loop) + COSYNC__BUDGET;
    loop->turn_cut = false;
    if (loop->cb_soon.head)
        cosync__callbacks_place(loop, COSYNC__BUDGET);
    cosync__apply_budget(loop);
    if (loop->stop_requested) /* asked for before the run: one turn of what is ready */
        cosync__cut_turn(loop);
    for (;;) {
        struct cosync__task *next = take_next(loop);
        prefetch_ahead(loop);
        if (!next) {
            if (turn_goes_on(loop))
                continue;
            return;
        }
        if (next->state == COSYNC__T_FRESH) {
            if (!give_any_stack(loop, next))
                continue;
            san_leave(loop, FAKE_SAVE(loop), next);
            start(loop, &loop->ctx, next, entry_of(next));
        } else {
            if (__builtin_expect(next->away, 0))
                cosync__dense_place(loop, next);
            san_leave(loop, FAKE_SAVE(loop), next);
            resume(loop, &loop->ctx, next);
        }
        san_arrive(loop, FAKE(loop));
        if (__builtin_expect(loop->overflowed != NULL, 0))
            report_overflow(loop->overflowed);
        if (!loop->stack_wanted) {
            if (turn_goes_on(loop))
                continue;
            return;
        }
        loop->stack_wanted = false; /* the same turn goes on from here */
    }
}
