/*
 * The runtime core's private structures: the task record, the waiter, the
 * loop. Layers: context (context/), scheduler (task.c, sched.c), time
 * (time.c), waiting (wait.c), loop (loop.c), threads (threads/).
 */
#ifndef COSYNC_CORE_H
#define COSYNC_CORE_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "context/ctx.h"
#include "context/sanitize.h"
#include "context/stack.h"
#include "cosync.h"
#include "list.h"
#include "timer.h"

#define COSYNC__NAME_MAX 32
/* Tasks dispatched before the loop looks at its clock, timers and I/O again. */
#define COSYNC__BUDGET 128

/* Who has claimed a task: no one else may join, gather, watch (cosync_wait)
 * or detach it meanwhile (cosync_task_wait is not refused). */
enum cosync__claim {
    COSYNC__CLAIM_NONE,
    COSYNC__CLAIM_COLLECT, /* a join, gather or wait_for, or the run it is the main task of */
    COSYNC__CLAIM_WATCH,   /* a cosync_wait, through `watcher` */
};

enum cosync__task_state {
    COSYNC__T_FREE,    /* a record in the free list */
    COSYNC__T_FRESH,   /* spawned, in the ready queue, never run: no stack */
    COSYNC__T_READY,   /* in the ready queue */
    COSYNC__T_RUNNING, /* the current task */
    COSYNC__T_BLOCKED, /* suspended in a wait */
    COSYNC__T_DONE,    /* finished; the record waits to be collected */
};

/*
 * A wait's life: IDLE -> WAITING -> GRANTED -> IDLE (consumed when the task
 * resumes), or WAITING -> CANCELLED -> IDLE (by cancellation or deadline).
 * Only a WAITING waiter can be granted or cancelled. A grant is kept, so a
 * cancellation that comes after it waits for the next suspension — unless
 * the wait is revocable: then the primitive takes the grant back and passes
 * it on (GRANTED -> CANCELLED). Either way nothing is lost.
 */
enum cosync__wait_state {
    COSYNC__W_IDLE,
    COSYNC__W_WAITING,
    COSYNC__W_GRANTED,
    COSYNC__W_CANCELLED,
};

typedef struct cosync__waiter_ops {
    const char *what; /* "sleep", "join", "event", ... */
    /* The wait was cancelled or timed out while WAITING: take the waiter off
     * the object (and pass on whatever the object owes it). May be NULL. */
    void (*cancel)(cosync__waiter *w);
    /* One line for the deadlock report, without the task's name. May be NULL
     * (the report then says "<what> <obj>"). */
    void (*describe)(const cosync__waiter *w, char *buf, size_t size);
    /* The wait is to end with @result (COSYNC_ECANCELED, COSYNC_ETIMEDOUT)
     * while WAITING: return true to take that in and go on waiting in
     * place instead (the waiter then stays WAITING, on the object's list,
     * shielded; a cancel that comes then is offered here again, with
     * COSYNC_ECANCELED, also once the wait has been GRANTED if the caller
     * has not run yet: return true to pass it on too and end the wait
     * with COSYNC_ECANCELED, false to leave it pending).
     * A wait that passes the cancellation on to tasks cancels all but the
     * last of them and leaves the last in *@pass_on for the caller to
     * cancel, so that a long chain of such waits is cancelled in a loop,
     * not a recursion as deep as the chain. May be NULL (the wait ends). */
    bool (*give_up)(cosync__waiter *w, int result, struct cosync__task **pass_on);
} cosync__waiter_ops;

struct cosync__task {
    /* hot: the switch path */
    cosync__ctx ctx;
    struct cosync__task *next_ready; /* ready queue, or free list */
    cosync_loop *loop;
    cosync__stack *stack;
    uint8_t state;
    /* A dense task whose bytes are not on its shared stack (dense.c), or
     * that has not run yet: beside the state, so that the switch's test for
     * a task it can resume at once reads both as one 16-bit word
     * (cosync__resumable). */
    uint8_t away;
    /* the two that joins and gathers test together, as one 16-bit word */
    bool detached;
    uint8_t claimed;     /* enum cosync__claim: who may collect or watch it */
    bool cancel_pending; /* a request to deliver at the next suspension */
    bool unguarded;      /* no guard page, or dense: check at each suspension */
    uint8_t close_marks; /* COSYNC__CLOSING, COSYNC__BORN_CLOSING, COSYNC__SCOPES */
    int8_t stack_cls;    /* COSYNC__STACK_DENSE + its class for a dense task */
    uint32_t cancel_count;
    int status;  /* once DONE */
    uint64_t id; /* 0 while free: stale handles are detected by id */
    cosync__waiter w;
    /* cold */
    cosync__timer timer;
    /* the body until it starts; while it runs marked COSYNC__SCOPES, how
     * many task groups it has open in its stack (taskgroup.c) and its
     * innermost timeout block (timeout.c); its result, and its place in
     * the order in which the loop's tasks finished (for cosync_wait), once
     * DONE */
    union {
        struct {
            cosync_task_fn fn;
            void *arg;
        };
        struct {
            size_t stack_groups;
            struct cosync__timeout_node *timeouts;
        };
        struct {
            void *result;
            uint64_t finish_seq;
        };
    };
    /* the waits for this task to finish (a join, a gather's or wait_for's
     * wait, each cosync_task_wait), newest first through their nodes: one
     * pointer, as the list is walked only at the finish (task.c) */
    cosync__node *awaits;
    union {
        /* COSYNC__CLAIM_COLLECT: the next task claimed by the same gather
         * (NULL at the last), so that a gather that gives up cancels the
         * rest without reading its caller's array, which may be on the
         * caller's stack */
        struct cosync__task *next_claimed;
        /* COSYNC__CLAIM_WATCH: the task in cosync_wait that watches it */
        struct cosync__task *watcher;
    };
    cosync_taskgroup *group;
    cosync__node group_node;
    void *local; /* cosync_task_get_local */
    char name[COSYNC__NAME_MAX];
#if COSYNC__ASAN
    void *asan_fake;
#endif
#if COSYNC__TSAN
    void *tsan_fiber;
#endif
};

/* 248 bytes on LP64 with the assembly switch: a record of a power-of-two
 * size puts the same field of neighbouring records in the same cache sets
 * (spawn 136 -> 173 ns at 256 bytes, docs/design-notes.md), and every
 * byte more is paid a million times in `spawn`. The waiter has no padding
 * left: a new field costs 8 bytes. */
#if !defined(COSYNC_CTX_UCONTEXT) && UINTPTR_MAX == UINT64_MAX && !COSYNC__ASAN && !COSYNC__TSAN
_Static_assert(sizeof(struct cosync__task) == 248, "the task record changed size");
#endif

/* has task groups open in its own stack, as many as stack_groups says
 * (taskgroup.c), or timeout blocks entered (timeouts, timeout.c): its
 * finish must cut the groups' children loose and close the blocks */
#define COSYNC__SCOPES 1
#define COSYNC__BORN_CLOSING 2 /* spawned during cosync_loop_destroy */
/* cancelled by cosync_loop_destroy, not finished yet: the high bit, so
 * that the finish tests it with one compare (close_marks >= CLOSING) */
#define COSYNC__CLOSING 4

/* Whether @t is in @state with its away flag clear: one 16-bit compare
 * of the two neighbouring bytes. */
static inline bool cosync__state_word_is(const struct cosync__task *t, uint8_t state)
{
    uint16_t word;
    __builtin_memcpy(&word, &t->state, sizeof word);
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    return word == state;
#else
    return word == (uint16_t)(state << 8);
#endif
}

/* Whether the switch may resume @t straight away: it has run before and,
 * if it is a dense task, its bytes are in place. One compare, so that
 * dense tasks cost the others' switches nothing. */
static inline bool cosync__resumable(const struct cosync__task *t)
{
    return cosync__state_word_is(t, COSYNC__T_READY);
}

/* Whether @t has not run yet and is not dense (a fresh dense task is
 * "away": it has no place yet). */
static inline bool cosync__plain_fresh(const struct cosync__task *t)
{
    return cosync__state_word_is(t, COSYNC__T_FRESH);
}

/* Whether the record is a task spawned and not yet finished. */
static inline bool cosync__task_alive(const struct cosync__task *t)
{
    return t->state != COSYNC__T_FREE && t->state != COSYNC__T_DONE;
}

static inline struct cosync__task *cosync__waiter_task(const cosync__waiter *w)
{
    return cosync__container_of((cosync__waiter *)w, struct cosync__task, w);
}

typedef struct cosync__record_block {
    struct cosync__record_block *next;
    size_t count;
    size_t bytes;
    bool mapped;
    struct cosync__task recs[];
} cosync__record_block;

/* for (each record @t of @loop, free ones included, in the order they
 * were made) { ... }: two loops, so `break` leaves only the block at
 * hand; `continue` goes on to the next record. */
#define cosync__for_each_record(loop, t)                                                           \
    for (cosync__record_block *t##_block = (loop)->blocks; t##_block; t##_block = t##_block->next) \
        for (struct cosync__task *t = t##_block->recs, *t##_end = t + t##_block->count;            \
             t < t##_end; t++)

/* The dense tasks of a stack class are dealt in turn, as they first run,
 * to this many shared stacks: a switch between two that are on different
 * ones goes straight from one to the other (only a task on the stack a
 * copy goes to cannot make it), and two that take turns on different
 * ones copy nothing. */
#define COSYNC__DENSE_SLOTS 4

/* A stack that dense tasks share (dense.c): held while any of them has
 * started and not finished (`users`), with the bytes of `owner` on it. */
typedef struct cosync__shared_stack {
    cosync__stack *stack;
    struct cosync__task *owner;
    size_t users;
} cosync__shared_stack;

struct cosync_loop {
    /* hot */
    struct cosync__task *ready_head;
    struct cosync__task *ready_tail;
    /* the first pf_ahead tasks of the ready queue have had their stacks
     * prefetched (sched.c); pf is the last of them */
    struct cosync__task *pf;
    uint32_t pf_ahead;
    int budget;
    int64_t now;
    /* steps: the dispatches of ready tasks so far, kept in whole turns
     * (steps, plus what the budget has used since it was last set, of
     * turn_budget); the turn under way ends at step turn_end. The budget
     * is the steps left until then, or until the first due callback. */
    uint64_t steps;
    uint64_t turn_end;
    int turn_budget;
    int64_t next_trim; /* when cached stacks no task needed are given back */
    uint64_t switches;
    cosync__ctx ctx; /* the loop's own context: the thread's stack */
    uint64_t fpenv;  /* the FP control modes new tasks start with */
    bool own_fp;     /* each task keeps its own FP modes (not shared_fp_modes) */
    cosync__timer_heap timers;
    cosync__stack_pool stacks;
    int8_t default_cls;
    bool virtual_clock;
    bool running;
    bool stop_requested;
    bool turn_cut;        /* this turn ends once the tasks ready at a stop have run */
    bool stack_wanted;    /* a task came back to the loop for a fresh one's new stack */
    bool eager_tasks;     /* every spawn by one of its tasks starts eagerly (the option) */
    bool slow_spawns;     /* closing or eager_tasks: the one test that sends spawns the slow way */
    bool closing;         /* in cosync_loop_destroy: runs end when closing_left is 0 */
    unsigned close_round; /* of cosync_loop_destroy: 1, 2, ... */
    size_t closing_left;  /* tasks with `closing` set */
    /* records */
    cosync__record_block *blocks;
    struct cosync__task *free_recs;
    size_t nrecords; /* in use */
    size_t nalive;   /* spawned and not finished */
    uint64_t next_id;
    uint64_t finished;          /* tasks finished so far: the last finish_seq */
    uint64_t serial;            /* from a process-wide count of loops: never 0, never reused */
    struct cosync__task *until; /* run until this one finishes */
    cosync__list iterators;     /* the live cosync_as_completed */
    /* callbacks (callback.c): those waiting for their time, and those
     * due, in order, each once the task last in the ready queue when it
     * was queued has taken its step; cb_due is the step at which the
     * first is due, COSYNC__STEP_UNKNOWN until found */
    cosync__list cb_timed;
    cosync__list cb_soon;
    cosync__list cb_attached; /* to futures and tasks not done yet */
    uint64_t cb_seq;          /* of the last one queued */
    /* the ready queue's last task before the timers due now fired: their
     * callbacks go behind it, ahead of the tasks those timers woke */
    const struct cosync__task *cb_fire_after;
    uint64_t cb_due;
    /* dense tasks (dense.c): the stacks they share, COSYNC__DENSE_SLOTS
     * per stack class, and the count that deals new ones out to them */
    cosync__shared_stack shared[COSYNC__STACK_CLASSES * COSYNC__DENSE_SLOTS];
    uint8_t dense_dealt[COSYNC__STACK_CLASSES];
    /* dense tasks' descriptors, in blocks, and those free (through
     * stack.next), as records are (dense.c) */
    struct cosync__dense_block *dense_blocks;
    struct cosync__dense *dense_free;
    struct cosync__task *overflowed; /* ran out of its (unguarded) stack */
    const cosync_allocator *alloc;
    cosync_allocator alloc_copy;
    FILE *report;
    /* the idle step */
    int epfd;
    int evfd;
    size_t io_waiters; /* tasks that only I/O or another thread can wake */
    cosync__list ios;  /* the handles registered with epfd (io/fd.c) */
    /* a layer built apart from the core (io/curl.c) keeps its state for
     * the loop here, and frees it at the loop's destruction, once its
     * tasks have finished and before the handles are cut loose */
    void *addon;
    void (*addon_destroy)(cosync_loop *loop);
    unsigned io_turns; /* busy turns, counted while tasks wait on I/O */
    /* calls from other threads (threads/calls.c): the inbox, under its
     * lock, and its flag, which the loop reads without the lock each turn */
    pthread_mutex_t inbox_lock;
    cosync_call *inbox_head;
    cosync_call *inbox_tail;
    atomic_bool inbox_full;
    atomic_size_t refs; /* cosync_loop_ref, and the jobs out on threads */
    size_t own_calls;   /* calls made on the loop's thread, queued as callbacks */
    /* the default pool (threads/executor.c), made on first use */
    cosync_executor *executor;
    size_t executor_threads;
    struct cosync__job *free_jobs;
    /* While tasks that have started are suspended, the loop is the
     * thread's that ran them: their frames may hold that thread's
     * addresses (compiled code keeps the thread pointer, and what it
     * found through it, in registers across a call), so only that thread
     * may run or destroy the loop. */
    pthread_t owner;
    bool owned;
#if COSYNC__ASAN
    const void *thread_stack;
    size_t thread_stack_size;
    void *asan_fake;
#endif
#if COSYNC__TSAN
    void *tsan_fiber;
    void *tsan_zombie;
#endif
};

/* The thread's running loop and task: cosync__tls (base.h). Set the
 * running task only through this, which keeps its id beside it. */
static inline void cosync__set_current(struct cosync__task *t)
{
    cosync__tls.cur = t;
    cosync__tls.cur_id = t ? t->id : 0;
}

static inline struct cosync__task *cosync__current(void)
{
    return cosync__tls.cur;
}

/* --- records (task.c) --- */
/* How a lock's remembered holder @t, with its @id and its loop's @serial,
 * stands as seen from @waiter, a task waiting for that lock: still
 * running, finished (its record may be collected and reused by now), or a
 * task of another loop, which may be gone with its memory: @t is then
 * never read. */
enum cosync__holder { COSYNC__HOLDER_ALIVE, COSYNC__HOLDER_FINISHED, COSYNC__HOLDER_FOREIGN };
enum cosync__holder cosync__holder_state(const struct cosync__task *waiter,
                                         const struct cosync__task *t, uint64_t id,
                                         uint64_t serial);
/* Whether @t, remembered with its @id and its loop's @serial as the holder
 * of @obj, was handed @obj by a release and has not run since: in asyncio's
 * terms @obj is free until it runs, so a further release has nothing to
 * release. @q is @obj's wait queue. A record is read only where its loop is
 * known to be alive: it is the loop running now, or the one @q is bound to
 * (the loop of the tasks still waiting). Without either (no task waits
 * any more, and the release comes from outside that loop's run) it cannot
 * tell, and lets the release go ahead. Inlined: every contended release
 * asks. */
static inline bool cosync__handed_over(const struct cosync__task *t, uint64_t id, uint64_t serial,
                                       const void *obj, const cosync__waitq *q)
{
    if (!t || serial == 0)
        return false;
    if (serial != cosync__tls.loop_serial && !(q->loop && q->loop->serial == serial))
        return false;
    return t->id == id && t->w.state == COSYNC__W_GRANTED && t->w.obj == obj;
}
struct cosync__task *cosync__task_lookup(cosync_task h);
/* Make a task: 0, and it is queued; 1, and it is not, for it starts
 * eagerly (cosync__start_eagerly once the caller has set it up); or a
 * negative error code, and nothing is made. */
int cosync__spawn(cosync_loop *loop, struct cosync__task **out, cosync_task_fn fn, void *arg,
                  const cosync_task_opts *opts);
/* Spawn @fn(@arg) detached and start it at once (an eager start), for a
 * task that owns what @arg points to and must release it whatever ends
 * it: its body sets *@ran first thing (@ran must outlive the spawn). A
 * task that ends without running its body (no stack; cancelled by the
 * loop's close before it starts) cannot: it is collected here (or
 * detached, if it has yet to end), and its status returned. Returns 0 once the body has run (the
 * handle, written to *@task before the body runs, is then detached); else that status or the
 * spawn's error (COSYNC_ENOMEM, COSYNC_EINVAL, COSYNC_EPERM). */
int cosync__spawn_started(cosync_task *task, cosync_task_fn fn, void *arg,
                          const cosync_task_opts *opts, const bool *ran);
void cosync__record_free(struct cosync__task *t);
void cosync__record_block_free(cosync_loop *loop, cosync__record_block *b);
/* Take a finished task's outcome and free its record. */
void cosync__collect(struct cosync__task *t, int *status, void **result);
int cosync__cancel(struct cosync__task *t);
/* Record a task's end (it ran or not), wake every wait for it (its
 * collector's, cosync_wait's, cosync_task_wait's), free it if detached. */
void cosync__task_finished(struct cosync__task *t, int status, void *result);
/* Check that the task @h may be joined (or waited for by wait_for) by the
 * current task: 0 with the two in *@out and *@curp, or the error
 * (COSYNC_EPERM, COSYNC_ESRCH, COSYNC_EDEADLK, COSYNC_EINVAL for a detached
 * task, COSYNC_EBUSY if another will collect or watch it). */
int cosync__joinable(cosync_task h, struct cosync__task **out, struct cosync__task **curp);
/* How cosync__await_task waits: a join, which leaves @t alone whatever
 * ends the wait; a gather's or wait_for's, which, cancelled or at its
 * deadline, cancels @t and the tasks claimed after it at that moment, as
 * asyncio's cancel() reaches the tasks a gather or wait_for awaits, and
 * goes on waiting for @t in its place (returning, at @t's finish, the
 * COSYNC_ECANCELED or COSYNC_ETIMEDOUT it gave up with); or one that has
 * given up already, which cancellation does not interrupt: each cancel
 * is passed on to @t and the rest again, and makes it return
 * COSYNC_ECANCELED. The last two are its states once it has given up. */
enum cosync__await {
    COSYNC__AWAIT_JOIN,
    COSYNC__AWAIT_CANCEL_REST,
    COSYNC__AWAIT_SHIELDED,
    COSYNC__AWAIT_GAVE_UP_CANCELLED,
    COSYNC__AWAIT_GAVE_UP_TIMEDOUT,
};
/* Cancel @first and the tasks claimed after it by the same gather. */
void cosync__cancel_claimed(struct cosync__task *first);
/* Wait for @t to finish on behalf of @cur, which will collect it. */
int cosync__await_task(struct cosync__task *cur, struct cosync__task *t, int64_t deadline,
                       enum cosync__await how);
/* A child of a task group has finished (taskgroup.c): the group's part,
 * before the waits for the child are woken, then the owner's wake-up. */
void cosync__taskgroup_child_done(struct cosync__task *t);
void cosync__taskgroup_wake_owner(struct cosync__task *t);
/* @t, with task groups open in its stack, ends while that stack is still
 * its own: cut loose and cancel the children of the groups it left open. */
void cosync__taskgroup_owner_ends(struct cosync__task *t);
/* @t, with timeout blocks entered, ends: close them (timeout.c). */
void cosync__timeout_owner_ends(struct cosync__task *t);
/* Report on the loop's stream that @t ended without leaving what @fmt
 * says (task.c): "cosync: task 'name' (#id) ended without leaving ...". */
void cosync__report_task_end(struct cosync__task *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The scope fields live where the body was until it started (it has
 * started: only a running task opens a scope), and are read only under
 * the mark, so a task that never opens one pays nothing. */
static inline void cosync__scopes_open(struct cosync__task *t)
{
    if (!(t->close_marks & COSYNC__SCOPES)) {
        t->close_marks |= COSYNC__SCOPES;
        t->stack_groups = 0;
        t->timeouts = NULL;
    }
}
static inline void cosync__scopes_closed(struct cosync__task *t)
{
    if (t->stack_groups == 0 && !t->timeouts)
        t->close_marks &= (uint8_t)~COSYNC__SCOPES;
}
/* cosync_wait (combinators.c): a task that @j watches has finished; grant
 * @j's wait if that meets its condition. */
extern const cosync__waiter_ops cosync__watch_ops;
void cosync__watched_task_done(struct cosync__task *j, struct cosync__task *t);
/* cosync_as_completed (as_completed.c): an entry is a waiter outside any
 * record on its task's list of waits; the finish hands it here. Orphaning
 * at the loop's destruction forgets the lists the entries were on. */
extern const cosync__waiter_ops cosync__as_completed_entry_ops;
void cosync__as_completed_task_done(cosync__waiter *e);
void cosync__as_completed_orphan_all(cosync_loop *loop);
/* A task's list of waits (task.c), for waits that are not a task's own. */
void cosync__task_await_link(struct cosync__task *t, cosync__waiter *w);
void cosync__task_await_unlink(struct cosync__task *t, cosync__waiter *w);
/* Debug builds (COSYNC_DEBUG): say on stderr that the running task (or
 * code outside any task) released the @what at @obj, which its @role, task
 * #@owner_id, holds. */
void cosync__report_foreign_release(const char *what, const void *obj, const char *role,
                                    uint64_t owner_id);

/* --- dense tasks (dense.c) --- */
/* A dense task's stack, from its first run to its finish: where it runs
 * (a copy of its shared stack's descriptor, so that the code that reads a
 * task's bounds needs no second case) and its bytes while it is away from
 * there. t->stack points here. */
typedef struct cosync__dense {
    cosync__stack stack; /* first: t->stack is &dense->stack; cls the task's */
    uint32_t len;        /* bytes saved in `bytes` while away */
    uint32_t cap;        /* (a stack class is at most 1 GiB) */
    uint16_t shared;     /* its index in loop->shared */
    bool own_block;      /* grown: allocated apart from the loop's blocks */
    unsigned char bytes[];
} cosync__dense;

/* Bytes a descriptor saves without growing its buffer: enough, in an
 * optimised build, for a task blocked straight from its body, which uses
 * 150-220 (docs/stacks.md). */
#define COSYNC__DENSE_FIRST_CAP 192

static inline cosync__dense *cosync__dense_of(const struct cosync__task *t)
{
    return cosync__container_of(t->stack, cosync__dense, stack);
}
static inline bool cosync__is_dense(const struct cosync__task *t)
{
    return t->stack_cls >= COSYNC__STACK_DENSE;
}
/* Whether @p lies in the stack @t runs on now (its shared one, if it is
 * dense), @t running or ending. */
static inline bool cosync__stack_holds(const struct cosync__task *t, const void *p)
{
    return (uintptr_t)p - (uintptr_t)t->stack->base < t->stack->size;
}
/* Whether @p lies in the stack @t runs on now, @t being a dense task: an
 * object there moves while @t is away, so nothing may wait on it. */
static inline bool cosync__dense_holds(const struct cosync__task *t, const void *p)
{
    return cosync__is_dense(t) && cosync__stack_holds(t, p);
}
/* The stack class of a dense task's shared stack. */
static inline int cosync__dense_class(const struct cosync__task *t)
{
    return t->stack_cls - COSYNC__STACK_DENSE;
}
/* Whether the bytes of @next, a dense task that has run, go on the stack
 * @cur runs on: then code running on @cur's stack cannot put them there. */
static inline bool cosync__dense_same_stack(const struct cosync__task *cur,
                                            const struct cosync__task *next)
{
    return cosync__is_dense(cur) && cosync__dense_of(cur)->shared == cosync__dense_of(next)->shared;
}
/* Whether this build can run dense tasks (the ucontext backend cannot:
 * its saved context is not a stack pointer to the frame). */
#define COSYNC__DENSE_SUPPORTED COSYNC__CTX_CAN_START_ON_OWN_STACK
/* Start @t, a fresh dense task (the switch to it follows): give it its
 * descriptor and a shared stack of its size, copying out the task whose
 * bytes are there. The stack is the one at index @prefer of
 * loop->shared if that is of its size (a finishing dense task's, where
 * nothing is to be copied out), else the next one dealt in turn, but not
 * the one at index @avoid (the running dense task's); -1 for neither. 0;
 * COSYNC_EAGAIN if @may_allocate is false and that would take a system
 * call or the allocator (a stack to map, a block of descriptors, a
 * buffer to grow for the task copied out): a task suspending from deep in
 * its stack must not, and the loop does it on its own; COSYNC_ENOMEM.
 * Nothing changes but the turn of the dealing unless it returns 0. */
int cosync__dense_start(cosync_loop *loop, struct cosync__task *t, int avoid, int prefer,
                        bool may_allocate);
/* Put the bytes of @t, a dense task that is away, back on its shared
 * stack, first copying out those of the task there. Runs on any stack but
 * that one. */
void cosync__dense_place(cosync_loop *loop, struct cosync__task *t);
/* Whether cosync__dense_place(@loop, @t) would copy out no task whose
 * buffer must first grow (so it calls no allocator). */
bool cosync__dense_place_light(const cosync_loop *loop, const struct cosync__task *t);
/* @t, a dense task that has run, is finishing: give back its descriptor,
 * and its shared stack if no other task dealt it is unfinished (a
 * finishing task goes on running on it until its last switch, as on a
 * stack of its own). */
void cosync__dense_release(struct cosync__task *t);
/* Give back a dense task's descriptor: to the loop's free list, or to the
 * allocator if it grew. */
void cosync__dense_free(cosync_loop *loop, cosync__dense *d);
/* @t, a dense task, is suspending in a wait on an object that lies in its
 * own stack (check_suspension, sched.c): end the wait at once with
 * COSYNC_EINVAL, and @t goes on running without a switch (while it is
 * away, ending the wait from outside would write to that object, where
 * another task's bytes are). */
void cosync__dense_refuse_wait(struct cosync__task *t);
/* At the loop's destruction, after the tasks' records are dropped. */
void cosync__dense_loop_destroy(cosync_loop *loop);

/* --- scheduler (sched.c) --- */
static inline void cosync__make_ready(struct cosync__task *t)
{
    cosync_loop *loop = t->loop;
    t->state = COSYNC__T_READY;
    t->next_ready = NULL;
    if (loop->ready_tail)
        loop->ready_tail->next_ready = t;
    else
        loop->ready_head = t;
    loop->ready_tail = t;
}

static inline struct cosync__task *cosync__ready_pop(cosync_loop *loop)
{
    struct cosync__task *t = loop->ready_head;
    if (t) {
        loop->ready_head = t->next_ready;
        if (!loop->ready_head)
            loop->ready_tail = NULL;
        if (loop->pf_ahead)
            loop->pf_ahead--;
    }
    return t;
}

/* Put @t at the head of the ready queue (its state is the caller's). */
static inline void cosync__ready_push_front(cosync_loop *loop, struct cosync__task *t)
{
    t->next_ready = loop->ready_head;
    loop->ready_head = t;
    if (!loop->ready_tail)
        loop->ready_tail = t;
    if (loop->pf_ahead) /* the prefetched head now starts one earlier */
        loop->pf_ahead++;
}

/* Take @head, the ready queue's head, off it and put @t, running, at its
 * back, in one pass: what a yield does (the queue ends as it would with
 * @t pushed first). */
static inline void cosync__ready_rotate(cosync_loop *loop, struct cosync__task *head,
                                        struct cosync__task *t)
{
    struct cosync__task *after = head->next_ready;
    t->state = COSYNC__T_READY;
    t->next_ready = NULL;
    if (after) {
        loop->ready_head = after;
        loop->ready_tail->next_ready = t;
    } else {
        loop->ready_head = t;
    }
    loop->ready_tail = t;
    if (loop->pf_ahead)
        loop->pf_ahead--;
}

/* The tasks in the ready queue, counted up to @limit. */
static inline size_t cosync__ready_count(const cosync_loop *loop, size_t limit)
{
    size_t n = 0;
    for (const struct cosync__task *t = loop->ready_head; t && n < limit; t = t->next_ready)
        n++;
    return n;
}

/* Run @t, just spawned (and not queued) by the current task, until it
 * first suspends or ends; then the current task goes on, before any other
 * task runs (asyncio's eager start). Not a suspension point for the
 * caller: a cancel that comes meanwhile stays pending. */
void cosync__start_eagerly(struct cosync__task *t);
/* Switch away from the current task, which has put itself where it will be
 * found again (a wait list, the ready queue). Returns when it is resumed:
 * its waiter, now idle, and the waiter's result. */
int cosync__suspend(struct cosync__task *cur);
/* The way a yield takes when @next, the head of the ready queue, can be
 * resumed at once, the budget allows it and @cur's stack is guarded (no
 * check at suspension): @cur, its waiter prepared, goes to the back of the
 * queue and @next runs, with none of the cases cosync__suspend looks for.
 * A call apart, so that a yield that does not switch saves no registers. */
int cosync__yield_to(struct cosync__task *cur, struct cosync__task *next) __attribute__((noinline));
/* At the start of each run: the switches back to the loop go to the
 * calling thread's stack (and fiber, for the sanitizers), which may not be
 * the previous run's. */
void cosync__sched_bind_thread(cosync_loop *loop);
/* Run ready tasks until the queue is empty or the budget is spent. */
void cosync__run_ready(cosync_loop *loop);
/* End the turn under way once the tasks ready now have run, each until it
 * next suspends; a task that becomes ready after that waits for the next
 * turn. */
void cosync__cut_turn(cosync_loop *loop);
/* The steps taken so far (cosync_loop.steps). */
static inline uint64_t cosync__steps_now(const cosync_loop *loop)
{
    return loop->steps + (uint64_t)(int64_t)(loop->turn_budget - loop->budget);
}
/* Set the budget from the turn's end and the first due callback's step. */
void cosync__apply_budget(cosync_loop *loop);
/* Whether a task finishing with @rc ends as cancelled. */
int cosync__final_status(const struct cosync__task *t, int rc);

/* --- waiting (wait.c) --- */
/* Prepare the current task's waiter for a wait on @obj. */
static inline cosync__waiter *cosync__waiter_prepare(struct cosync__task *cur,
                                                     const cosync__waiter_ops *ops, void *obj)
{
    cosync__waiter *w = &cur->w;
    w->ops = ops;
    w->obj = obj;
    w->data = 0;
    w->result = 0;
    w->shielded = false;
    w->revocable = false;
    return w;
}
/* Suspend until @w is granted, cancelled or its deadline passes. @w must
 * already be on the object's list; every way out but a grant takes it off
 * (through ops->cancel). Returns the grant's result, COSYNC_ECANCELED,
 * COSYNC_ETIMEDOUT, or COSYNC_EAGAIN for deadline 0. */
int cosync__wait_slow(cosync__waiter *w, int64_t deadline);
static inline int cosync__wait(cosync__waiter *w, int64_t deadline)
{
    struct cosync__task *t = cosync__waiter_task(w);
    if (__builtin_expect(deadline != COSYNC_FOREVER || t->cancel_pending, 0))
        return cosync__wait_slow(w, deadline);
    w->state = COSYNC__W_WAITING;
    t->state = COSYNC__T_BLOCKED;
    return cosync__suspend(t);
}

/* A wait has ended some other way than by its own timer: stop the timer. */
static inline void cosync__wait_disarm(struct cosync__task *t)
{
    if (__builtin_expect(cosync__timer_armed(&t->timer), 0))
        cosync__timer_disarm(&t->loop->timers, &t->timer);
}

/* cosync__grant for a wait whose deadline timer is armed (wait.c). */
void cosync__grant_timed(cosync__waiter *w, int result);
/* Hand @w its wake-up: the object has already taken it off its list. The
 * timed case is a call apart, so that the common one makes none and its
 * callers need not save registers around it. */
static inline void cosync__grant(cosync__waiter *w, int result)
{
    struct cosync__task *t = cosync__waiter_task(w);
    if (__builtin_expect(cosync__timer_armed(&t->timer), 0)) {
        cosync__grant_timed(w, result);
        return;
    }
    w->state = COSYNC__W_GRANTED;
    w->result = result;
    cosync__make_ready(t);
}
/* End a WAITING wait with @result (COSYNC_ECANCELED, COSYNC_ETIMEDOUT), or
 * let it give up in place: returns NULL, or the task the giving-up wait
 * passes the cancellation on to, which the caller must cancel. */
struct cosync__task *cosync__abort_wait(cosync__waiter *w, int result);
/* Every cancellation request of @t has been withdrawn: a yield it has not
 * come back from yet returns 0 (asyncio 3.13's uncancel() clears the
 * request a bare yield was to raise). */
void cosync__yield_uncancelled(struct cosync__task *t);
/* Let every other ready task run once, as a wait for asyncio's next loop
 * step (a callback's future): COSYNC_ECANCELED if a cancellation is
 * pending or comes meanwhile, even if it is withdrawn before @cur runs. */
int cosync__step(struct cosync__task *cur);
void cosync__waiter_timer_fired(cosync__timer *timer);
/* The running task, checked against an object's loop: an object is bound
 * to the loop of its first waiter, and free again whenever it has none.
 * COSYNC_EPERM outside a task or from another loop. */
static inline int cosync__bind_loop(cosync_loop **obj_loop, struct cosync__task **curp)
{
    struct cosync__task *cur = cosync__current();
    if (__builtin_expect(!cur, 0))
        return COSYNC_EPERM;
    if (__builtin_expect(*obj_loop != cur->loop, 0)) {
        if (*obj_loop)
            return COSYNC_EPERM;
        *obj_loop = cur->loop;
    }
    *curp = cur;
    return 0;
}

/* --- threads (threads/) --- */
/* The inbox of calls from other threads: made with the loop (0, or a
 * negated errno), and freed after its last call has run. */
int cosync__inbox_init(cosync_loop *loop);
void cosync__inbox_destroy(cosync_loop *loop);
/* Run the calls that have come, in order (loop's thread, outside tasks). */
void cosync__inbox_run(cosync_loop *loop);
/* Whether another thread may still call in: a reference, or a call that
 * has come and not run yet. */
static inline bool cosync__loop_held(cosync_loop *loop)
{
    return atomic_load_explicit(&loop->refs, memory_order_acquire) > 0 ||
           atomic_load_explicit(&loop->inbox_full, memory_order_acquire) || loop->own_calls > 0;
}
/* At the loop's destruction, once nothing holds it: its default pool and
 * the job records it kept. */
void cosync__executor_loop_destroy(cosync_loop *loop);

/* --- io (io/) --- */
/* Whether a process's exit is watched through a pidfd (process.c); tests
 * clear it to take the polling path. */
extern bool cosync__process_use_pidfd;
/* epoll reported @events for @io: keep its readiness, grant the waits it
 * satisfies. */
void cosync__io_event(cosync_io *io, uint32_t events);
/* Register @io (opened, not waited on by tasks) with @loop's epoll,
 * level-triggered for @events (COSYNC_IO_READ, COSYNC_IO_WRITE), or change
 * the events it is registered for: each event then calls @watch on the
 * loop's thread, outside any task, with the readiness (and
 * COSYNC__IO_ERROR for an error). cosync_io_release takes it off. */
#define COSYNC__IO_ERROR 4
int cosync__io_watch(cosync_io *io, cosync_loop *loop, int events,
                     void (*watch)(cosync_io *io, int events));
/* Make @io the handle of @fd, known to be non-blocking already. */
void cosync__io_adopt(cosync_io *io, int fd);
/* Make @io the handle of a new epoll of the caller's own (a server's
 * listeners, a connect race's attempts), which a task waits on as on any
 * handle. Returns 0, or epoll_create1's negated errno (a fault point:
 * COSYNC_ENOMEM). */
int cosync__epoll_open(cosync_io *io);
/* @call(@ctx), a write that has no MSG_NOSIGNAL (to a pipe; sendfile),
 * with SIGPIPE blocked in the calling thread, and the one the call raised
 * taken before the mask is restored (as libcurl and OpenSSL do it; one
 * already pending is left alone). Returns what @call did, errno kept. */
ssize_t cosync__without_sigpipe(ssize_t (*call)(void *ctx), void *ctx);
/* cosync_sock_listen, the socket IPv6-only (IPV6_V6ONLY) if @v6only and
 * @addr is IPv6. */
int cosync__sock_listen(cosync_io *io, const cosync_addr *addr, int backlog, bool v6only);
/* Take a connection that waits on @listener, if there is one, without
 * waiting (and without registering @listener with a loop): as
 * cosync_sock_accept, or -EAGAIN. */
int cosync__sock_accept_now(cosync_io *listener, cosync_io *conn, cosync_addr *peer);
/* Begin connecting @io's socket to @addr without waiting: 0 (connected),
 * -EINPROGRESS, or connect's negated errno. */
int cosync__connect_begin(cosync_io *io, const cosync_addr *addr);
/* How a connect begun on @io stands: 0 (connected), -EINPROGRESS, or its
 * error. */
int cosync__connect_outcome(const cosync_io *io);
/* At the loop's destruction: cut its handles loose (no task waits). */
void cosync__io_loop_destroy(cosync_loop *loop);
/* Run @op on @io until it does not say EAGAIN (-EAGAIN, -EINPROGRESS),
 * waiting for @event between tries: @op's count, or the error. */
ssize_t cosync__io_retry(cosync_io *io, int event, ssize_t (*op)(cosync_io *io, void *ctx),
                         void *ctx, int64_t deadline);
/* Write all of @buf through @write_some (cosync_io_write_all). */
int cosync__io_write_all(cosync_io *io, const void *buf, size_t len, size_t *written,
                         ssize_t (*write_some)(cosync_io *, const void *, size_t, int64_t),
                         int64_t deadline);

/* --- callbacks (callback.c) --- */
#define COSYNC__STEP_UNKNOWN UINT64_MAX
/* Find the step at which the first due callback is due, if the ready
 * queue's first @limit tasks tell it (a turn's start, or a cut). */
void cosync__callbacks_place(cosync_loop *loop, uint64_t limit);
/* Run the callbacks due now, each in order, in the loop's context: those
 * queued before the call (one queued meanwhile waits for the next). */
void cosync__callbacks_run(cosync_loop *loop);
/* In a turn whose budget has run out before its end: run the callbacks
 * due and set the budget for the rest of the turn. False if the turn is
 * over. */
bool cosync__callbacks_mid_turn(cosync_loop *loop);
static inline bool cosync__callbacks_scheduled(const cosync_loop *loop)
{
    return loop->cb_soon.head || loop->cb_timed.head;
}
/* At the loop's destruction: cancel the callbacks still scheduled. */
void cosync__callbacks_drop_all(cosync_loop *loop);
/* Attach @cb to @list (a future's), to be released on the calling
 * thread's running loop; @seq orders it among the future's waits. 0, or
 * what scheduling it would return (COSYNC_EPERM outside a loop). */
int cosync__callback_attach(cosync_callback *cb, void (*fn)(void *), void *arg, cosync__list *list,
                            uint32_t seq);
/* cosync_loop_call_soon on the calling thread's running loop. */
int cosync__callback_soon(cosync_callback *cb, void (*fn)(void *), void *arg);
/* Queue @cb, a record that may be memory never written (a cosync_call's),
 * as cosync_loop_call_soon would on the calling thread's running @loop:
 * its state is not read, so a record queued twice is not caught. */
void cosync__callback_soon_unread(cosync_loop *loop, cosync_callback *cb, void (*fn)(void *),
                                  void *arg);
/* The future of attached @cb is done: queue it behind what is ready. */
void cosync__callback_release(cosync_callback *cb);
/* The ops of a task's done callback, a wait on the task's list. */
extern const cosync__waiter_ops cosync__done_callback_ops;
/* @t has finished: queue the done callback whose wait @w is behind what
 * is ready, with @t's outcome. */
void cosync__callback_task_done(cosync__waiter *w, const struct cosync__task *t);

/* --- tasks started from other threads (threads/remote.c) --- */
/* @cb is a remote record's done callback. */
bool cosync__is_remote_callback(const cosync_callback *cb);
/* The loop's destruction has dropped the task of the remote record whose
 * done callback @cb is, taken off: the record ends. */
void cosync__remote_task_dropped(cosync_callback *cb);

/* --- loop (loop.c) --- */
/* Cancel @t for the round of the close under way (once): the round waits
 * for it to finish. */
void cosync__cancel_for_close(struct cosync__task *t);
void cosync__describe_wait(const struct cosync__task *t, char *buf, size_t size);
const char *cosync__task_name(struct cosync__task *t);

#endif /* COSYNC_CORE_H */
