/*
 * test_dense.c - dense tasks (cosync_task_opts.dense): tasks that share one
 * stack and keep only the bytes they use while another of them runs.
 *
 * What is checked: every frame of every task keeps its bytes across
 * suspensions while other dense tasks run on the same addresses (frames
 * filled with a per-task pattern, checked on the way back up), in the exact
 * order plain tasks would run; every kind of switch into and out of a
 * dense task (another dense task, a task with its own stack, the loop, a
 * finish, a start); the blocking calls, cancellation, deadlines; the
 * memory (one stack for the crowd); each allocation failing in turn; the
 * loop destroyed with dense tasks suspended. White-box (core.h) for
 * whether the build supports the mode: under the ucontext backend a dense
 * task has a stack of its own and everything but the stack counts holds.
 */
/* ctest-timeout: 120 */
/* ctest-labels: tsan */
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "cosync.h"
#include "core.h"
#include "fault.h"

static const cosync_task_opts dense_opts = {.dense = true};

static cosync_loop *counted_loop(counting *c, cosync_allocator *a)
{
    *a = (cosync_allocator){count_realloc, c};
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = a}));
    return loop;
}

/* Run @fn(@arg) as the main task of a loop whose allocations *@c counts;
 * check that it returned 0, that every task was collected, and that
 * nothing is left allocated once the loop is destroyed. */
static void run_counted(counting *c, cosync_task_fn fn, void *arg)
{
    cosync_allocator a;
    cosync_loop *loop = counted_loop(c, &a);
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, NULL));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
    CHECK_EQ(c->live, 0);
}

/* ------------------------------------------------------------------------
 * Frames that check their own bytes
 * ---------------------------------------------------------------------- */

typedef int (*suspend_fn)(void *arg);

static unsigned char pattern(unsigned seed, int depth, int i)
{
    return (unsigned char)(seed * 131u + (unsigned)depth * 17u + (unsigned)i * 7u + 1u);
}

/* Recurse @depth frames below this one, each holding 160 bytes of pattern
 * of @seed; at the bottom call @suspend(@arg); check each frame's bytes on
 * the way back. noinline and volatile: the frames must really be there. */
static __attribute__((noinline)) int deep(int depth, unsigned seed, suspend_fn suspend, void *arg)
{
    volatile unsigned char buf[160];
    for (int i = 0; i < (int)sizeof buf; i++)
        buf[i] = pattern(seed, depth, i);
    int rc = depth > 0 ? deep(depth - 1, seed, suspend, arg) : suspend(arg);
    for (int i = 0; i < (int)sizeof buf; i++)
        CHECK_EQ(buf[i], pattern(seed, depth, i));
    return rc;
}

/* ------------------------------------------------------------------------
 * Taking turns: the order of plain tasks, and every frame kept
 * ---------------------------------------------------------------------- */

#define LOG_MAX 4096

typedef struct turns {
    int rounds[64]; /* per task: its turns before it returns */
    int log[LOG_MAX];
    int nlog;
    int n;
    size_t stacks_seen; /* stacks in use, seen by the last task in its first turn */
} turns;

typedef struct turn_arg {
    turns *tr;
    int index;
} turn_arg;

static int take_turns(void *arg)
{
    turn_arg *ta = arg;
    turns *tr = ta->tr;
    for (int r = 0; r < tr->rounds[ta->index]; r++) {
        CHECK_LT(tr->nlog, LOG_MAX);
        tr->log[tr->nlog++] = r * 100 + ta->index;
        if (ta->index == tr->n - 1 && r == 0) /* all started, none finished */
            tr->stacks_seen = loop_stats().stacks_in_use;
        CHECK_OK(cosync_yield());
    }
    return 0;
}

static int turn_body(void *arg, void **result)
{
    turn_arg *ta = arg;
    *result = (void *)(intptr_t)(ta->index * 3);
    /* depths 0..6: 200 bytes to 1.3 KiB of frames, most beyond the saved
     * bytes' first buffer */
    return deep(ta->index % 7, (unsigned)ta->index, take_turns, ta);
}

/* The log plain round-robin would write: each round, the tasks that still
 * have a turn, in spawn order. */
static void check_round_robin(const turns *tr, int n)
{
    int k = 0;
    for (int r = 0;; r++) {
        bool any = false;
        for (int i = 0; i < n; i++) {
            if (r < tr->rounds[i]) {
                CHECK_LT(k, tr->nlog);
                CHECK_EQ(tr->log[k], r * 100 + i);
                k++;
                any = true;
            }
        }
        if (!any)
            break;
    }
    CHECK_EQ(k, tr->nlog);
}

typedef struct turns_case {
    int n;
    bool (*is_dense)(int i);
    int (*rounds)(int i);
} turns_case;

/* The stacks @n dense tasks of one size share. */
static int shared_stacks(int n)
{
    return n < COSYNC__DENSE_SLOTS ? n : COSYNC__DENSE_SLOTS;
}

static int run_turns(void *arg, void **result)
{
    (void)result;
    const turns_case *tc = arg;
    turns *tr = calloc(1, sizeof *tr);
    turn_arg ta[64];
    cosync_task t[64];
    cosync_outcome out[64];
    CHECK_NOTNULL(tr);
    CHECK_LE(tc->n, 64);
    tr->n = tc->n;
    for (int i = 0; i < tc->n; i++) {
        tr->rounds[i] = tc->rounds(i);
        ta[i] = (turn_arg){tr, i};
        cosync_task_opts o = {.dense = tc->is_dense(i)};
        CHECK_OK(cosync_task_spawn(&t[i], turn_body, &ta[i], &o));
    }
    CHECK_OK(cosync_gather(t, (size_t)tc->n, out, COSYNC_FOREVER));
    for (int i = 0; i < tc->n; i++) {
        CHECK_OK(out[i].status);
        CHECK_EQ((intptr_t)out[i].result, i * 3);
    }
    check_round_robin(tr, tc->n);
    int dense = 0;
    for (int i = 0; i < tc->n; i++)
        dense += tc->is_dense(i);
    /* main's stack, the shared ones, and those of the plain tasks */
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_EQ(tr->stacks_seen, (size_t)(1 + tc->n - dense + shared_stacks(dense)));
    else
        CHECK_EQ(tr->stacks_seen, (size_t)(1 + tc->n));
    free(tr);
    return 0;
}

static bool all_dense(int i)
{
    (void)i;
    return true;
}

static bool every_other_dense(int i)
{
    return i % 2 == 0;
}

static bool every_third_plain(int i)
{
    return i % 3 != 1;
}

static int ten_rounds(int i)
{
    (void)i;
    return 10;
}

static int uneven_rounds(int i)
{
    return 1 + (i * 7) % 5;
}

TEST(dense_tasks_take_turns_and_keep_every_frame)
{
    turns_case tc = {20, all_dense, ten_rounds};
    run_main_ok(run_turns, &tc);
}

/* Finishing at different rounds makes every kind of hand-over happen: a
 * dense task finishing into one that is away, into a plain one, a plain
 * one finishing into one that is away, a plain one resuming a dense one
 * from its own stack. */
TEST(dense_and_plain_tasks_mixed_finish_into_each_other)
{
    turns_case a = {31, every_other_dense, uneven_rounds};
    run_main_ok(run_turns, &a);
    turns_case b = {31, every_third_plain, uneven_rounds};
    run_main_ok(run_turns, &b);
}

/* ------------------------------------------------------------------------
 * Starts and finishes on the shared stack
 * ---------------------------------------------------------------------- */

typedef struct chain {
    int left;
    int ran;
    size_t max_stacks;
    int last_shared; /* the stack the link before ran on */
    int same_stack;  /* links that ran on the stack the one before left */
    cosync_event done;
} chain;

/* Spawn the next link (dense, detached) and finish: nothing else is
 * ready, so it is started by this one's end, on the stack this one
 * leaves, with nothing to copy. */
static int chain_link(void *arg, void **result)
{
    (void)result;
    chain *c = arg;
    c->ran++;
    size_t in_use = loop_stats().stacks_in_use;
    if (in_use > c->max_stacks)
        c->max_stacks = in_use;
    if (COSYNC__DENSE_SUPPORTED) {
        int mine = cosync__dense_of(cosync__current())->shared;
        c->same_stack += mine == c->last_shared;
        c->last_shared = mine;
    }
    if (--c->left > 0)
        CHECK_OK(cosync_task_spawn(NULL, chain_link, c, &dense_opts));
    else
        CHECK_OK(cosync_event_set(&c->done));
    return 0;
}

static int main_chain(void *arg, void **result)
{
    (void)arg, (void)result;
    chain c = {.left = 1000, .last_shared = -1, .done = COSYNC_EVENT_INIT};
    CHECK_OK(cosync_task_spawn(NULL, chain_link, &c, &dense_opts));
    CHECK_OK(cosync_event_wait(&c.done, COSYNC_FOREVER));
    CHECK_OK(cosync_yield()); /* the last link ends */
    CHECK_EQ(c.ran, 1000);
    CHECK_EQ(c.left, 0);
    CHECK_EQ(c.max_stacks, 2); /* main's and the one the links run on in turn */
    /* but the links the loop starts after each turn of COSYNC__BUDGET
     * dispatches, which are dealt a stack in turn */
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GE(c.same_stack, 999 - 999 / COSYNC__BUDGET - 1);
    else
        CHECK_EQ(c.same_stack, 0);
    CHECK_EQ(alive_tasks(), 1);
    return 0;
}

TEST(dense_tasks_start_on_the_stack_a_finishing_one_leaves)
{
    run_main_ok(main_chain, NULL);
}

static int dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t[8];
    cosync_outcome out[8];
    turns *tr = calloc(1, sizeof *tr);
    /* what the children read goes on the heap: this task's locals hold
     * another task's bytes while it is away (the rule of dense tasks) */
    turn_arg *ta = calloc(8, sizeof *ta);
    CHECK_NOTNULL(tr);
    CHECK_NOTNULL(ta);
    tr->n = 8;
    for (int i = 0; i < 8; i++) {
        tr->rounds[i] = 3 + i % 2;
        ta[i] = (turn_arg){tr, i};
        CHECK_OK(cosync_task_spawn(&t[i], turn_body, &ta[i], i % 2 ? &dense_opts : NULL));
    }
    /* the arrays are this dense task's locals: gather must not write them
     * while it is away */
    memset(out, 0xab, sizeof out);
    CHECK_OK(cosync_gather(t, 8, out, COSYNC_FOREVER));
    for (int i = 0; i < 8; i++) {
        CHECK_OK(out[i].status);
        CHECK_EQ((intptr_t)out[i].result, i * 3);
    }
    check_round_robin(tr, 8);
    free(ta);
    free(tr);
    return 0;
}

TEST(dense_main_task_gathers_into_its_own_locals)
{
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, dense_main, NULL, &dense_opts));
    int status = 1;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    CHECK_OK(status);
    end_loop(loop);
}

/* ------------------------------------------------------------------------
 * Blocking calls, cancellation and deadlines
 * ---------------------------------------------------------------------- */

typedef struct shared_objs {
    cosync_event ev;
    cosync_lock lock;
    cosync_sem sem;
    cosync_queue q;
    int counter;
    int got_sum;
} shared_objs;

/* Event, lock (held across a yield, so the others queue), semaphore,
 * a queue item received into a local, a sleep: each at the bottom of a few
 * frames of pattern. */
static int use_everything(void *arg)
{
    shared_objs *o = arg;
    CHECK_OK(cosync_event_wait(&o->ev, COSYNC_FOREVER));
    CHECK_OK(cosync_lock_acquire(&o->lock, COSYNC_FOREVER));
    int seen = o->counter;
    CHECK_OK(cosync_yield());
    o->counter = seen + 1;
    CHECK_OK(cosync_lock_release(&o->lock));
    CHECK_OK(cosync_sem_acquire(&o->sem, COSYNC_FOREVER));
    CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    CHECK_OK(cosync_sem_release(&o->sem));
    int item = -1;
    CHECK_OK(cosync_queue_get(&o->q, &item, COSYNC_FOREVER));
    CHECK_GE(item, 0);
    o->got_sum += item;
    return 0;
}

static int blocking_body(void *arg, void **result)
{
    (void)result;
    return deep(2, (unsigned)(uintptr_t)cosync_task_get_local() ^ 0x5a, use_everything, arg);
}

static int main_blocking(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 24 };
    shared_objs *o = calloc(1, sizeof *o);
    CHECK_NOTNULL(o);
    o->ev = (cosync_event)COSYNC_EVENT_INIT;
    o->lock = (cosync_lock)COSYNC_LOCK_INIT;
    CHECK_OK(cosync_sem_init(&o->sem, 3));
    CHECK_OK(cosync_queue_init(&o->q, sizeof(int), 4));
    cosync_task t[N];
    for (int i = 0; i < N; i++) {
        cosync_task_opts opt = {.dense = i % 4 != 3, .local = (void *)(uintptr_t)i};
        CHECK_OK(cosync_task_spawn(&t[i], blocking_body, o, &opt));
    }
    CHECK_OK(cosync_yield()); /* all wait on the event */
    CHECK_EQ(ready_tasks(), 0);
    CHECK_OK(cosync_event_set(&o->ev));
    int sum = 0;
    for (int i = 0; i < N; i++) {
        CHECK_OK(cosync_queue_put(&o->q, &i, COSYNC_FOREVER));
        sum += i;
    }
    cosync_outcome out[N];
    CHECK_OK(cosync_gather(t, N, out, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_OK(out[i].status);
    CHECK_EQ(o->counter, N); /* the lock excluded across its yield */
    CHECK_EQ(o->got_sum, sum);
    CHECK_OK(cosync_queue_destroy(&o->q));
    free(o);
    return 0;
}

TEST(dense_tasks_in_every_kind_of_wait)
{
    run_main_ok(main_blocking, NULL);
}

static int body_ran_flag;

static int set_ran_flag(void *arg, void **result)
{
    (void)arg, (void)result;
    body_ran_flag = 1;
    return 0;
}

typedef struct cancel_case {
    cosync_event never;
    int cleaned;
} cancel_case;

/* Blocked forever; cancelled, it cleans up with a sleep (a suspension
 * after the cancel) and checks its frames. */
static int wait_then_clean_up(void *arg)
{
    cancel_case *c = arg;
    int rc = cosync_event_wait(&c->never, COSYNC_FOREVER);
    CHECK_ERR(rc, COSYNC_ECANCELED);
    CHECK_OK(cosync_sleep(COSYNC_MS(5)));
    c->cleaned++;
    return rc;
}

static int cancellable_body(void *arg, void **result)
{
    (void)result;
    return deep(3, 7, wait_then_clean_up, arg);
}

static int main_cancel(void *arg, void **result)
{
    (void)arg, (void)result;
    cancel_case c = {.never = COSYNC_EVENT_INIT};
    cosync_task a, b, fresh, timed;
    CHECK_OK(cosync_task_spawn(&a, cancellable_body, &c, &dense_opts));
    CHECK_OK(cosync_task_spawn(&b, cancellable_body, &c, &dense_opts));
    CHECK_OK(cosync_yield()); /* both blocked; a was copied out when b started */
    CHECK_OK(cosync_task_cancel(a));
    CHECK_OK(cosync_task_cancel(b));
    join_expect(a, COSYNC_ECANCELED);
    join_expect(b, COSYNC_ECANCELED);
    CHECK_EQ(c.cleaned, 2);

    /* cancelled before it ever ran: it never runs */
    body_ran_flag = 0;
    CHECK_OK(cosync_task_spawn(&fresh, set_ran_flag, NULL, &dense_opts));
    CHECK_OK(cosync_task_cancel(fresh));
    join_expect(fresh, COSYNC_ECANCELED);
    CHECK_EQ(body_ran_flag, 0);

    /* wait_for's deadline: cancelled, cleans up, reported as a timeout */
    int64_t t0 = cosync_now();
    CHECK_OK(cosync_task_spawn(&timed, cancellable_body, &c, &dense_opts));
    CHECK_ERR(cosync_wait_for(timed, NULL, NULL, cosync_deadline_after(COSYNC_MS(10))),
              COSYNC_ETIMEDOUT);
    CHECK_EQ(cosync_now() - t0, COSYNC_MS(15));
    CHECK_EQ(c.cleaned, 3);
    return 0;
}

TEST(cancelling_dense_tasks_at_each_point)
{
    run_main_ok(main_cancel, NULL);
}

/* ------------------------------------------------------------------------
 * Memory: a crowd on one stack
 * ---------------------------------------------------------------------- */

static int wait_event(void *arg, void **result)
{
    (void)result;
    return cosync_event_wait(arg, COSYNC_FOREVER);
}

static int main_crowd(void *arg, void **result)
{
    (void)result;
    size_t n = (size_t)(uintptr_t)arg;
    cosync_event ev = COSYNC_EVENT_INIT;
    cosync_task *t = malloc(n * sizeof *t);
    CHECK_NOTNULL(t);
    for (size_t i = 0; i < n; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_event, &ev, &dense_opts));
    CHECK_OK(cosync_yield());
    cosync_loop_stats st = loop_stats();
    CHECK_EQ(st.tasks_alive, n + 1);
    CHECK_EQ(st.tasks_ready, 0);
    /* main's stack and the ones they share */
    CHECK_EQ(st.stacks_in_use, COSYNC__DENSE_SUPPORTED ? 1 + COSYNC__DENSE_SLOTS : n + 1);
    CHECK_OK(cosync_event_set(&ev));
    CHECK_OK(cosync_gather(t, n, NULL, COSYNC_FOREVER));
    CHECK_EQ(loop_stats().stacks_in_use, 1);
    free(t);
    return 0;
}

TEST(ten_thousand_blocked_dense_tasks_hold_a_few_stacks)
{
    /* ThreadSanitizer counts each task's fiber as a thread, and stops at 8,128 */
    run_main_ok(main_crowd, (void *)(uintptr_t)(UNDER_TSAN ? 4000 : 10000));
}

/* Tasks of two stack sizes share stacks of their own size. */
static int main_two_sizes(void *arg, void **result)
{
    (void)arg, (void)result;
    turns *tr = calloc(1, sizeof *tr);
    CHECK_NOTNULL(tr);
    enum { N = 12 };
    tr->n = N;
    turn_arg ta[N];
    cosync_task t[N];
    for (int i = 0; i < N; i++) {
        tr->rounds[i] = 4;
        ta[i] = (turn_arg){tr, i};
        cosync_task_opts o = {.dense = true, .stack_size = i % 2 ? (size_t)256 << 10 : 0};
        CHECK_OK(cosync_task_spawn(&t[i], turn_body, &ta[i], &o));
    }
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    check_round_robin(tr, N);
    CHECK_EQ(tr->stacks_seen, COSYNC__DENSE_SUPPORTED ? 1 + 2 * COSYNC__DENSE_SLOTS : N + 1);
    free(tr);
    return 0;
}

TEST(dense_tasks_of_two_stack_sizes_share_stacks_of_their_size)
{
    run_main_ok(main_two_sizes, NULL);
}

/* Dense tasks are dealt to COSYNC__DENSE_SLOTS stacks in turn: two on
 * different ones take turns without copying (both stay in place), a task
 * dealt the same stack as another copies it out when it runs. */
typedef struct slots {
    cosync_task t[2]; /* A and B */
    int phase;
    int shared_with_a; /* later tasks that were dealt A's stack */
} slots;

static bool is_away(cosync_task h)
{
    return ((struct cosync__task *)h.rec)->away != 0;
}

static int shared_index(cosync_task h)
{
    return cosync__dense_of((struct cosync__task *)h.rec)->shared;
}

typedef struct slot_arg {
    slots *s;
    int other; /* the index of the other of A and B */
} slot_arg;

/* A or B: the other, on another stack, stays in place once it has
 * started (B has not when A first runs). */
static int slot_turns(void *arg, void **result)
{
    (void)result;
    slot_arg *a = arg;
    for (int i = 0; i < 5; i++) {
        bool fresh = a->other == 1 && i == 0 && COSYNC__DENSE_SUPPORTED;
        CHECK(is_away(a->s->t[a->other]) == fresh);
        CHECK_OK(cosync_yield());
    }
    while (a->s->phase == 0)
        CHECK_OK(cosync_yield());
    return 0;
}

/* A later task: A is copied out while it runs if and only if it was
 * dealt A's stack; B stays in place either way. */
static int slot_later(void *arg, void **result)
{
    (void)result;
    slots *s = arg;
    bool on_a = COSYNC__DENSE_SUPPORTED &&
                shared_index((cosync_task){cosync__current(), 0}) == shared_index(s->t[0]);
    CHECK(is_away(s->t[0]) == on_a);
    CHECK(!is_away(s->t[1]));
    s->shared_with_a += on_a;
    return 0;
}

static int main_slots(void *arg, void **result)
{
    (void)arg, (void)result;
    slots s = {.phase = 0};
    slot_arg a = {&s, 1}, b = {&s, 0};
    CHECK_OK(cosync_task_spawn(&s.t[0], slot_turns, &a, &dense_opts));
    CHECK_OK(cosync_task_spawn(&s.t[1], slot_turns, &b, &dense_opts));
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_yield());
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_NE(shared_index(s.t[0]), shared_index(s.t[1]));
    /* one at a time, started from this plain task: dealt in turn, so one
     * of every COSYNC__DENSE_SLOTS gets A's stack */
    for (int i = 0; i < 2 * COSYNC__DENSE_SLOTS; i++) {
        cosync_task t;
        CHECK_OK(cosync_task_spawn(&t, slot_later, &s, &dense_opts));
        join_ok(t);
    }
    CHECK_EQ(s.shared_with_a, COSYNC__DENSE_SUPPORTED ? 2 : 0);
    s.phase = 1;
    CHECK_OK(cosync_gather(s.t, 2, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(only_tasks_dealt_the_same_stack_copy_each_other_out)
{
    run_main_ok(main_slots, NULL);
}

/* A dense task that starts another whose turn would deal it the starter's
 * own stack gets the next one instead, also when that stack must first be
 * made (from the loop's context, which has no starter to avoid): the two
 * then take turns without copying each other out. */
typedef struct starter {
    cosync_task a, child;
    cosync_event setup_done, blockers_go;
} starter;

static int child_of_a(void *arg, void **result)
{
    (void)result;
    starter *st = arg;
    for (int i = 0; i < 3; i++) {
        CHECK(!is_away(st->a));
        CHECK_OK(cosync_yield());
    }
    return 0;
}

static int starter_a(void *arg, void **result)
{
    (void)result;
    starter *st = arg;
    CHECK_OK(cosync_event_wait(&st->setup_done, COSYNC_FOREVER));
    CHECK_OK(cosync_task_spawn(&st->child, child_of_a, st, &dense_opts));
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_yield());
        CHECK(!is_away(st->child));
    }
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_NE(shared_index(st->child), shared_index(st->a));
    join_ok(st->child);
    return 0;
}

static int main_starter(void *arg, void **result)
{
    (void)arg, (void)result;
    starter st = {.setup_done = COSYNC_EVENT_INIT, .blockers_go = COSYNC_EVENT_INIT};
    enum { OTHERS = COSYNC__DENSE_SLOTS - 1 };
    cosync_task nops[OTHERS], blockers[OTHERS];
    /* A is dealt the first stack and waits; three more tasks are dealt
     * the other three, so that A's is next in turn */
    CHECK_OK(cosync_task_spawn(&st.a, starter_a, &st, &dense_opts));
    CHECK_OK(cosync_yield());
    for (int i = 0; i < OTHERS; i++) {
        CHECK_OK(cosync_task_spawn(&nops[i], nop, NULL, &dense_opts));
        join_ok(nops[i]);
    }
    /* their stack went back to the cache: plain tasks take every cached
     * stack, so that the next shared stack must be made */
    for (int i = 0; i < OTHERS; i++)
        CHECK_OK(cosync_task_spawn(&blockers[i], wait_event, &st.blockers_go, NULL));
    CHECK_OK(cosync_yield());
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_NULL(cosync_loop_current()->stacks.cls[cosync_loop_current()->default_cls].hot);
    CHECK_OK(cosync_event_set(&st.setup_done));
    join_ok(st.a);
    CHECK_OK(cosync_event_set(&st.blockers_go));
    CHECK_OK(cosync_gather(blockers, OTHERS, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(a_dense_task_never_starts_another_on_its_own_stack)
{
    run_main_ok(main_starter, NULL);
}

/* A switch that needs the allocator (a block of descriptors for dense
 * tasks' first runs, a buffer to grow for a task copied out) goes through
 * the loop's context: a suspending task's stack may be nearly used up, so
 * the allocator is called on the thread's own. Checked by an allocator
 * that looks at where it is called from. */
typedef struct where_alloc {
    char *lo, *hi; /* the thread's stack */
    bool armed;
    long on_thread, elsewhere;
} where_alloc;

static void *where_realloc(void *ud, void *ptr, size_t size)
{
    where_alloc *w = ud;
    if (w->armed && !ptr && size) {
        char *here = __builtin_frame_address(0);
        if (here >= w->lo && here < w->hi)
            w->on_thread++;
        else
            w->elsewhere++;
    }
    if (size == 0) {
        free(ptr);
        return NULL;
    }
    return realloc(ptr, size);
}

typedef struct crowd_start {
    where_alloc *w;
    cancel_case cc;
} crowd_start;

static int main_where(void *arg, void **result)
{
    (void)result;
    crowd_start *cs = arg;
    enum { N = 300 }; /* more than the first block of descriptors */
    cosync_task *t = malloc(N * sizeof *t);
    CHECK_NOTNULL(t);
    for (int i = 0; i < N; i++)
        CHECK_OK(cosync_task_spawn(&t[i], cancellable_body, &cs->cc, &dense_opts));
    cs->w->armed = true;
    CHECK_OK(cosync_yield()); /* each starts, from the one before, and blocks */
    cs->w->armed = false;
    for (int i = 0; i < N; i++)
        CHECK_OK(cosync_task_cancel(t[i]));
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    CHECK_EQ(cs->cc.cleaned, N);
    free(t);
    return 0;
}

/* Run @fn(@arg) as the main task of a loop whose allocator *@w watches
 * (from the thread's stack). */
static void run_watching_where(where_alloc *w, cosync_task_fn fn, void *arg)
{
    pthread_attr_t attr;
    void *addr;
    size_t size;
    CHECK_OK(pthread_getattr_np(pthread_self(), &attr));
    CHECK_OK(pthread_attr_getstack(&attr, &addr, &size));
    pthread_attr_destroy(&attr);
    w->lo = addr;
    w->hi = (char *)addr + size;
    cosync_allocator a = {where_realloc, w};
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true, .allocator = &a}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    end_loop(loop);
}

TEST(allocations_for_dense_tasks_run_on_the_threads_stack)
{
    where_alloc w = {0};
    crowd_start cs = {&w, {.never = COSYNC_EVENT_INIT}};
    run_watching_where(&w, main_where, &cs);
    CHECK_EQ(w.elsewhere, 0);
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GE(w.on_thread, 2); /* two blocks of descriptors at least */
}

/* Yield @arg times, straight from the body. */
static int yield_from_body(void *arg, void **result)
{
    (void)result;
    for (intptr_t i = 0; i < (intptr_t)arg; i++)
        CHECK_OK(cosync_yield());
    return 0;
}

/* Yield once at each depth of @arg in turn (frames of deep()). */
typedef struct depths {
    int n;
    int at[4];
} depths;

static int yield_from_deep(void *arg)
{
    (void)arg;
    return cosync_yield();
}

static int yield_at_depths(void *arg, void **result)
{
    (void)result;
    const depths *d = arg;
    for (int i = 0; i < d->n; i++)
        CHECK_OK(deep(d->at[i], (unsigned)i, yield_from_deep, NULL));
    return 0;
}

/* The same for a new block of descriptors wanted by tasks that block
 * straight from their bodies, which a switch can otherwise start on the
 * way (the task each one's start copies out needs no bigger buffer):
 * more of them than the first block holds. */
static cosync_event shallow_ev;

static int main_shallow_crowd(void *arg, void **result)
{
    (void)result;
    where_alloc *w = arg;
    enum { N = 100 }; /* more than the first block of descriptors */
    cosync_event_init(&shallow_ev);
    cosync_task t[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_event, &shallow_ev, &dense_opts));
    w->armed = true;
    CHECK_OK(cosync_yield()); /* each starts, from the one before, and blocks */
    w->armed = false;
    CHECK_OK(cosync_event_set(&shallow_ev));
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(a_new_block_of_descriptors_is_allocated_on_the_threads_stack)
{
    where_alloc w = {0};
    run_watching_where(&w, main_shallow_crowd, &w);
    CHECK_EQ(w.elsewhere, 0);
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GE(w.on_thread, 2); /* two blocks of descriptors at least */
}

/* The same for a buffer to grow for the task copied out to make room for
 * one that is away: five dense tasks, the first and the last dealt the
 * same stack; the last yields from deep, and main's next yield resumes the
 * first, which copies the last out. */
static int main_grow_where(void *arg, void **result)
{
    (void)result;
    where_alloc *w = arg;
    depths last = {2, {6, 6}};
    cosync_task t[5];
    for (int i = 0; i < 4; i++)
        CHECK_OK(cosync_task_spawn(&t[i], yield_from_body, (void *)(intptr_t)2, &dense_opts));
    CHECK_OK(cosync_task_spawn(&t[4], yield_at_depths, &last, &dense_opts));
    CHECK_OK(cosync_yield()); /* each runs once; the last copies the first out */
    w->armed = true;
    CHECK_OK(cosync_yield()); /* the first copies the last out: its buffer grows */
    w->armed = false;
    if (COSYNC__DENSE_SUPPORTED)
        CHECK(cosync__dense_of(t[4].rec)->own_block); /* it grew */
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(a_buffer_grown_to_resume_a_task_is_allocated_on_the_threads_stack)
{
    where_alloc w = {0};
    run_watching_where(&w, main_grow_where, &w);
    CHECK_EQ(w.elsewhere, 0);
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GE(w.on_thread, 1);
}

/* A dense task may not wait on an object in its own stack (asyncio's
 * `await asyncio.Event().wait()`): while it is away, a cancel, a deadline
 * or the loop's close would take its waiter off that object, whose bytes
 * are then elsewhere and whose address holds another task's. The wait
 * ends at once with COSYNC_EINVAL, and nothing of the object is left
 * waiting; a plain task waits as usual. */
static cosync_cond outside_cond;

static int wait_on_own_locals(void *arg, void **result)
{
    (void)result;
    int *finished = arg;
    cosync_event ev = COSYNC_EVENT_INIT;
    cosync_sem sem;
    CHECK_OK(cosync_sem_init(&sem, 0));
    cosync_lock lock = COSYNC_LOCK_INIT;
    CHECK_OK(cosync_lock_acquire(&lock, COSYNC_FOREVER)); /* not a wait: free */
    uint64_t before = switches();
    CHECK_ERR(cosync_event_wait(&ev, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_event_wait(&ev, cosync_deadline_after(COSYNC_MS(5))), COSYNC_EINVAL);
    CHECK_ERR(cosync_sem_acquire(&sem, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_event_wait(&ev, 0), COSYNC_EAGAIN); /* no wait, no harm */
    CHECK_EQ(switches(), before);                        /* refused at once: no other task ran */
    CHECK_EQ(ev.q.n, 0); /* nothing of the failed waits is left queued */
    CHECK_EQ(cosync_sem_value(&sem), 0);
    /* a condition, or its lock, here: refused before the lock is let go */
    cosync_cond own = COSYNC_COND_INIT, on_lock;
    cosync_cond_init(&on_lock, &lock);
    cosync_cond_init(&outside_cond, &lock);
    CHECK_OK(cosync_cond_acquire(&own, COSYNC_FOREVER));
    CHECK_ERR(cosync_cond_wait(&own, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait(&on_lock, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK_ERR(cosync_cond_wait(&outside_cond, COSYNC_FOREVER), COSYNC_EINVAL); /* lock here */
    CHECK_EQ(switches(), before);
    CHECK_OK(cosync_cond_release(&own)); /* still held by this task */
    CHECK_OK(cosync_cond_destroy(&own));
    CHECK_OK(cosync_cond_destroy(&on_lock));
    CHECK_OK(cosync_lock_release(&lock));
    ++*finished;
    return 0;
}

/* A task group in a dense task's locals: refused when it is opened (the
 * owner's wait and the children would reach it while the task is away);
 * one outside the stack works. */
static int group_child(void *arg, void **result)
{
    (void)arg, (void)result;
    return cosync_sleep(COSYNC_MS(1));
}

static cosync_taskgroup outside_group;

static int group_in_own_locals(void *arg, void **result)
{
    (void)result;
    int *finished = arg;
    cosync_taskgroup g;
    CHECK_ERR(cosync_taskgroup_init(&g), COSYNC_EINVAL);
    CHECK_OK(cosync_taskgroup_init(&outside_group));
    CHECK_OK(cosync_taskgroup_spawn(&outside_group, NULL, group_child, NULL, NULL));
    CHECK_OK(cosync_taskgroup_wait(&outside_group, COSYNC_FOREVER));
    ++*finished;
    return 0;
}

static int main_group_in_own_locals(void *arg, void **result)
{
    (void)arg, (void)result;
    int finished = 0;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, group_in_own_locals, &finished, &dense_opts));
    join_ok(t);
    CHECK_EQ(finished, 1);
    return 0;
}

TEST(a_dense_task_cannot_open_a_task_group_in_its_own_stack)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return; /* there a dense task has its own stack */
    run_main_ok(main_group_in_own_locals, NULL);
}

static int wait_forever_on_own_event(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event ev = COSYNC_EVENT_INIT;
    return cosync_event_wait(&ev, COSYNC_FOREVER);
}

static int main_own_locals(void *arg, void **result)
{
    (void)arg, (void)result;
    int finished = 0;
    cosync_task t[COSYNC__DENSE_SLOTS + 1], plain;
    /* more than one task a stack, so that each is copied out in turn */
    for (int i = 0; i < COSYNC__DENSE_SLOTS + 1; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_on_own_locals, &finished, &dense_opts));
    CHECK_OK(cosync_task_spawn(&plain, wait_forever_on_own_event, NULL, NULL));
    CHECK_OK(cosync_gather(t, COSYNC__DENSE_SLOTS + 1, NULL, COSYNC_FOREVER));
    CHECK_EQ(finished, COSYNC__DENSE_SUPPORTED ? COSYNC__DENSE_SLOTS + 1 : 0);
    CHECK_EQ(cosync_task_done(plain), false); /* it waits, as it may */
    CHECK_OK(cosync_task_cancel(plain));
    join_expect(plain, COSYNC_ECANCELED);
    return 0;
}

TEST(a_dense_task_cannot_wait_on_an_object_in_its_own_stack)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return; /* there a dense task has its own stack, and waits */
    run_main_ok(main_own_locals, NULL);
}

/* A condition in a dense task's stack, on a lock that is not: the wait is
 * refused before the lock is let go, so a task queued on the lock does
 * not get it meanwhile. */
static cosync_lock outside_lock = COSYNC_LOCK_INIT;

static int take_outside_lock(void *arg, void **result)
{
    (void)result;
    bool *took = arg;
    CHECK_OK(cosync_lock_acquire(&outside_lock, COSYNC_FOREVER));
    *took = true;
    return cosync_lock_release(&outside_lock);
}

static int cond_here_lock_elsewhere(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_cond here;
    cosync_cond_init(&here, &outside_lock);
    CHECK_OK(cosync_lock_acquire(&outside_lock, COSYNC_FOREVER));
    static bool took;
    cosync_task queued;
    CHECK_OK(cosync_task_spawn(&queued, take_outside_lock, &took, NULL));
    CHECK_OK(cosync_yield()); /* it queues on the lock */
    CHECK_ERR(cosync_cond_wait(&here, COSYNC_FOREVER), COSYNC_EINVAL);
    CHECK(!took);
    CHECK_OK(cosync_lock_release(&outside_lock)); /* still held by this task */
    join_ok(queued);
    CHECK(took);
    return 0;
}

static int main_cond_here_lock_elsewhere(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, cond_here_lock_elsewhere, NULL, &dense_opts));
    join_ok(t);
    return 0;
}

TEST(a_dense_tasks_condition_in_its_stack_keeps_an_outside_lock)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return; /* there a dense task has its own stack, and waits */
    run_main_ok(main_cond_here_lock_elsewhere, NULL);
}

/* Alone, a dense task yields to itself: nothing to copy, nothing to wait for. */
static int yield_alone(void *arg, void **result)
{
    (void)result;
    int *n = arg;
    for (int i = 0; i < 10; i++) {
        uint64_t before = switches();
        CHECK_OK(cosync_yield());
        CHECK_EQ(switches(), before); /* nothing else ready: no switch */
        ++*n;
    }
    return 0;
}

static int main_alone(void *arg, void **result)
{
    (void)arg, (void)result;
    int n = 0;
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, yield_alone, &n, &dense_opts));
    join_ok(t);
    CHECK_EQ(n, 10);
    return 0;
}

TEST(a_dense_task_alone_yields_to_itself)
{
    run_main_ok(main_alone, NULL);
}

/* Random programs: tasks dense or plain at random, each suspending many
 * times from a random depth in a random way, other tasks running on the
 * same stacks meanwhile; every frame checks its bytes. Seeded: the same
 * programs every run. */
typedef struct chaos {
    uint64_t seed;
    cosync_lock lock;
    cosync_event tick;
    int inside;
    int steps;
} chaos;

typedef struct chaos_arg {
    chaos *c;
    uint64_t rng;
    int op;
} chaos_arg;

static uint32_t next_random(uint64_t *state)
{
    *state = *state * 6364136223846793005u + 1442695040888963407u;
    return (uint32_t)(*state >> 33);
}

static int chaos_suspend(void *arg)
{
    chaos_arg *a = arg;
    chaos *c = a->c;
    switch (a->op) {
    case 0:
        return cosync_yield();
    case 1:
        return cosync_sleep(COSYNC_MS(1 + next_random(&a->rng) % 3));
    case 2: {
        int rc = cosync_lock_acquire(&c->lock, COSYNC_FOREVER);
        CHECK_OK(rc);
        CHECK_EQ(c->inside++, 0);
        CHECK_OK(cosync_yield());
        CHECK_EQ(--c->inside, 0);
        return cosync_lock_release(&c->lock);
    }
    default: {
        int rc = cosync_event_wait(&c->tick, cosync_deadline_after(COSYNC_MS(2)));
        return rc == COSYNC_ETIMEDOUT ? 0 : rc;
    }
    }
}

static int chaos_body(void *arg, void **result)
{
    (void)result;
    chaos_arg *a = arg;
    for (int i = 0; i < 40; i++) {
        a->op = (int)(next_random(&a->rng) % 4);
        int depth = (int)(next_random(&a->rng) % 8);
        CHECK_OK(deep(depth, next_random(&a->rng), chaos_suspend, a));
        a->c->steps++;
    }
    return 0;
}

static int main_chaos(void *arg, void **result)
{
    (void)result;
    chaos *c = arg;
    enum { N = 48 };
    cosync_task t[N];
    chaos_arg *a = calloc(N, sizeof *a);
    CHECK_NOTNULL(a);
    uint64_t rng = c->seed;
    for (int i = 0; i < N; i++) {
        a[i] = (chaos_arg){c, c->seed * 1000 + (uint64_t)i, 0};
        cosync_task_opts o = {.dense = next_random(&rng) % 4 != 0};
        CHECK_OK(cosync_task_spawn(&t[i], chaos_body, &a[i], &o));
    }
    /* pulse the event now and then until every task is done */
    for (;;) {
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        CHECK_OK(cosync_event_set(&c->tick));
        CHECK_OK(cosync_event_clear(&c->tick));
        if (c->steps == N * 40)
            break;
    }
    cosync_outcome out[N];
    CHECK_OK(cosync_gather(t, N, out, COSYNC_FOREVER));
    for (int i = 0; i < N; i++)
        CHECK_OK(out[i].status);
    free(a);
    return 0;
}

TEST(random_programs_of_dense_and_plain_tasks_keep_every_frame)
{
    for (uint64_t seed = 1; seed <= 20; seed++) {
        chaos c = {.seed = seed, .lock = COSYNC_LOCK_INIT, .tick = COSYNC_EVENT_INIT};
        run_main_ok(main_chaos, &c);
        CHECK_EQ(c.steps, 48 * 40);
    }
}

/* ------------------------------------------------------------------------
 * Out of memory, and the loop's destruction
 * ---------------------------------------------------------------------- */

/* A dense task gets its place (descriptor, shared stack) when it first
 * runs, as a plain task gets its stack: spawning one allocates no more
 * than spawning a plain one, and one that never runs never allocates. */
typedef struct lazy {
    counting *c;
} lazy;

static int main_lazy(void *arg, void **result)
{
    (void)result;
    lazy *lz = arg;
    cosync_event ev = COSYNC_EVENT_INIT;
    cosync_task t[10], never;
    for (int i = 0; i < 10; i++) /* records enough for what follows */
        CHECK_OK(cosync_task_spawn(&t[i], wait_event, &ev, NULL));
    CHECK_OK(cosync_task_spawn(&never, wait_event, &ev, NULL));
    CHECK_OK(cosync_task_cancel(never));
    for (int i = 0; i < 10; i++)
        CHECK_OK(cosync_task_cancel(t[i]));
    join_expect(never, COSYNC_ECANCELED);
    for (int i = 0; i < 10; i++)
        join_expect(t[i], COSYNC_ECANCELED);
    long before = lz->c->total;
    CHECK_OK(cosync_task_spawn(&never, wait_event, &ev, &dense_opts));
    CHECK_OK(cosync_task_cancel(never));
    join_expect(never, COSYNC_ECANCELED); /* never ran, never allocated */
    CHECK_EQ(lz->c->total, before);
    for (int i = 0; i < 10; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_event, &ev, &dense_opts));
    CHECK_EQ(lz->c->total, before); /* the records were there already */
    CHECK_OK(cosync_yield());       /* all ten start and block */
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GT(lz->c->total, before);
    CHECK_OK(cosync_event_set(&ev));
    CHECK_OK(cosync_gather(t, 10, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(a_dense_task_allocates_at_its_first_run_not_at_its_spawn)
{
    counting c = {0, 0};
    lazy lz = {&c};
    run_counted(&c, main_lazy, &lz);
}

/* A dense task's descriptor is allocated and its shared stack made when
 * it first runs: if either cannot be had, that task ends with
 * COSYNC_ENOMEM without running (as a plain task whose stack cannot be
 * had), nothing is left allocated, and the next one starts. */
static int main_shared_stack_fault(void *arg, void **result)
{
    (void)result;
    long *k = arg;
    cosync_task a, b;
    body_ran_flag = 0;
    CHECK_OK(cosync_task_spawn(&a, set_ran_flag, NULL, &dense_opts));
    long failures = cosync__fault_failures;
    cosync__fault_countdown = *k;
    CHECK_OK(cosync_yield());
    cosync__fault_countdown = -1;
    bool failed = cosync__fault_failures != failures;
    if (failed) {
        join_expect(a, COSYNC_ENOMEM);
        CHECK_EQ(body_ran_flag, 0);
        CHECK_OK(cosync_task_spawn(&b, set_ran_flag, NULL, &dense_opts));
        join_ok(b);
    } else {
        join_ok(a);
        *k = -1;
    }
    CHECK_EQ(body_ran_flag, 1);
    return 0;
}

TEST(fault_each_allocation_at_a_dense_tasks_first_run)
{
    if (!COSYNC__DENSE_SUPPORTED)
        return;
    long k;
    for (k = 0;; k++) {
        CHECK_LT(k, 100);
        long kk = k;
        counting c = {0, 0};
        run_counted(&c, main_shared_stack_fault, &kk);
        if (kk < 0)
            break;
    }
    CHECK_GE(k, 1);
}

/* Destroyed with dense tasks blocked (one on the shared stack, the others
 * copied out, one never started): each is cancelled and cleans up, and
 * nothing is left allocated. */
static int main_leave_blocked(void *arg, void **result)
{
    (void)result;
    cancel_case *c = arg;
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_task_spawn(NULL, cancellable_body, c, &dense_opts));
    CHECK_OK(cosync_yield());
    CHECK_OK(cosync_task_spawn(NULL, set_ran_flag, NULL, &dense_opts));
    return 0;
}

TEST(destroying_a_loop_with_dense_tasks_suspended)
{
    counting c = {0, 0};
    cosync_allocator a;
    cosync_loop *loop = counted_loop(&c, &a);
    cancel_case cc = {.never = COSYNC_EVENT_INIT};
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, main_leave_blocked, &cc, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_OK(cosync_loop_destroy(loop));
    CHECK_EQ(cc.cleaned, 5);
    CHECK_EQ(c.live, 0);
}

/* A dense task cancelled before it ever ran has no place on a shared
 * stack; the record it leaves must come back clean, so that plain tasks
 * spawned next on the reused record run, suspend and resume as usual. */
static int unstarted_dense_sleeper(void *arg, void **result)
{
    (void)result;
    int *steps = arg;
    for (int i = 0; i < 3; i++) {
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
        ++*steps;
    }
    return 0;
}

static int unstarted_dense_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int round = 0; round < 4; round++) {
        cosync_task d;
        int dense_steps = 0;
        CHECK_OK(cosync_task_spawn(&d, unstarted_dense_sleeper, &dense_steps,
                                   &(cosync_task_opts){.dense = true}));
        CHECK_OK(cosync_task_cancel(d)); /* before it ever runs */
        CHECK_ERR(join_status(d), COSYNC_ECANCELED);
        CHECK_EQ(dense_steps, 0);
        /* plain tasks on the fast spawn path, on the record just freed */
        cosync_task p[2];
        int steps[2] = {0, 0};
        for (int i = 0; i < 2; i++)
            CHECK_OK(cosync_task_spawn(&p[i], unstarted_dense_sleeper, &steps[i], NULL));
        for (int i = 0; i < 2; i++) {
            join_ok(p[i]);
            CHECK_EQ(steps[i], 3);
        }
    }
    return 0;
}

TEST(dense_task_cancelled_before_it_starts_leaves_a_clean_record)
{
    run_main_ok(unstarted_dense_main, NULL);
}

/* ------------------------------------------------------------------------
 * Buffers and blocks of descriptors
 * ---------------------------------------------------------------------- */

/* A task copied out from deeper than ever before grows its buffer, and
 * only then: copied out again from no deeper, it allocates nothing; and
 * the buffer it outgrows later is freed. Five dense tasks take turns, the
 * first and the last dealt the same stack: the first yields three times
 * from one depth, then from a deeper one, and the last copies it out each
 * time. */
static int main_growth(void *arg, void **result)
{
    (void)result;
    counting *c = arg;
    depths first = {4, {3, 3, 3, 6}};
    cosync_task t[5];
    CHECK_OK(cosync_task_spawn(&t[0], yield_at_depths, &first, &dense_opts));
    for (int i = 1; i < 5; i++)
        CHECK_OK(cosync_task_spawn(&t[i], yield_from_body, (void *)(intptr_t)4, &dense_opts));
    CHECK_OK(cosync_yield()); /* each runs once: the first grows its buffer */
    CHECK_OK(cosync_yield()); /* (and the last may grow its own, copied out in turn) */
    long made = c->total;
    CHECK_OK(cosync_yield()); /* both copied out again from where they were */
    CHECK_EQ(c->total, made);
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER)); /* the first grows again */
    if (COSYNC__DENSE_SUPPORTED)
        CHECK_GT(c->total, made);
    return 0;
}

TEST(a_buffer_grows_only_when_it_must_and_what_it_outgrows_is_freed)
{
    counting c = {0, 0};
    run_counted(&c, main_growth, &c);
}

/* The default buffer holds the bytes of a task blocked straight from its
 * body (docs/stacks.md): copying such tasks out and back allocates
 * nothing. Five dense tasks take turns, the first and the last dealt the
 * same stack. Only where their bytes fit the first buffer, as in an
 * optimized build: without optimization the frames are larger. */
static int main_shallow_turns(void *arg, void **result)
{
    (void)result;
    counting *c = arg;
    cosync_task t[5];
    for (int i = 0; i < 5; i++)
        CHECK_OK(cosync_task_spawn(&t[i], yield_from_body, (void *)(intptr_t)3, &dense_opts));
    CHECK_OK(cosync_yield()); /* each starts: the last copies the first out */
    bool fits =
        COSYNC__DENSE_SUPPORTED && cosync__dense_of(t[0].rec)->len <= COSYNC__DENSE_FIRST_CAP;
    long made = c->total;
    CHECK_OK(cosync_yield()); /* the first copies the last out, and the last the first */
    if (fits) {
        CHECK_EQ(c->total, made);
        for (int i = 0; i < 5; i++)
            CHECK(!cosync__dense_of(t[i].rec)->own_block);
    }
    CHECK_OK(cosync_gather(t, 5, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(tasks_blocked_from_their_bodies_are_copied_out_without_allocating)
{
    counting c = {0, 0};
    run_counted(&c, main_shallow_turns, &c);
}

/* More dense tasks running at once than a block of descriptors holds:
 * the loop holds several blocks, and frees every one when it is
 * destroyed. */
static int main_blocks(void *arg, void **result)
{
    (void)arg, (void)result;
    enum { N = 200 }; /* blocks of 64, 128, then 256 descriptors */
    cosync_event_init(&shallow_ev);
    cosync_task t[N];
    for (int i = 0; i < N; i++)
        CHECK_OK(cosync_task_spawn(&t[i], wait_event, &shallow_ev, &dense_opts));
    CHECK_OK(cosync_yield()); /* all started */
    CHECK_OK(cosync_event_set(&shallow_ev));
    CHECK_OK(cosync_gather(t, N, NULL, COSYNC_FOREVER));
    return 0;
}

TEST(every_block_of_descriptors_is_freed_with_the_loop)
{
    counting c = {0, 0};
    run_counted(&c, main_blocks, NULL);
}

int main(void)
{
    RUN(dense_tasks_take_turns_and_keep_every_frame);
    RUN(dense_and_plain_tasks_mixed_finish_into_each_other);
    RUN(dense_tasks_start_on_the_stack_a_finishing_one_leaves);
    RUN(dense_main_task_gathers_into_its_own_locals);
    RUN(dense_tasks_in_every_kind_of_wait);
    RUN(cancelling_dense_tasks_at_each_point);
    RUN(ten_thousand_blocked_dense_tasks_hold_a_few_stacks);
    RUN(dense_tasks_of_two_stack_sizes_share_stacks_of_their_size);
    RUN(only_tasks_dealt_the_same_stack_copy_each_other_out);
    RUN(a_dense_task_never_starts_another_on_its_own_stack);
    RUN(allocations_for_dense_tasks_run_on_the_threads_stack);
    RUN(a_new_block_of_descriptors_is_allocated_on_the_threads_stack);
    RUN(a_buffer_grown_to_resume_a_task_is_allocated_on_the_threads_stack);
    RUN(a_dense_task_cannot_wait_on_an_object_in_its_own_stack);
    RUN(a_dense_tasks_condition_in_its_stack_keeps_an_outside_lock);
    RUN(a_dense_task_cannot_open_a_task_group_in_its_own_stack);
    RUN(a_dense_task_alone_yields_to_itself);
    RUN(random_programs_of_dense_and_plain_tasks_keep_every_frame);
    RUN(a_dense_task_allocates_at_its_first_run_not_at_its_spawn);
    RUN(fault_each_allocation_at_a_dense_tasks_first_run);
    RUN(destroying_a_loop_with_dense_tasks_suspended);
    RUN(dense_task_cancelled_before_it_starts_leaves_a_clean_record);
    RUN(a_buffer_grows_only_when_it_must_and_what_it_outgrows_is_freed);
    RUN(tasks_blocked_from_their_bodies_are_copied_out_without_allocating);
    RUN(every_block_of_descriptors_is_freed_with_the_loop);
    return 0;
}
