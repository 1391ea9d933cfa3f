/*
 * test_threads.c - loops on several threads at once, each thread running
 * its own (as each thread runs its own asyncio loop). Nothing is shared
 * between the threads' tasks; what the library keeps process-wide (the
 * page size, the guard-page probe and budget, loop serials) must be safe
 * to reach from all of them. `make test` runs this file under
 * ThreadSanitizer too, in a Debug build, where every switch between a
 * task's fiber and the next must keep TSan's per-fiber records apart.
 *
 * Every loop runs on the virtual clock: times are exact, nothing sleeps.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "core.h" /* the loop's record of its thread's stack, under ASan */
#include "harness.h"

#define THREADS 4
#define LOOPS_PER_THREAD 8
#define WORKERS 24
#define ROUNDS 20

/* One loop's shared state: a counter behind a lock (read, yield, write
 * back), and a queue the workers feed and main drains. */
typedef struct world {
    cosync_lock lock;
    cosync_queue q;
    long counter;
} world;

static int worker(void *arg, void **result)
{
    world *w = arg;
    int64_t t0 = cosync_now();
    for (long i = 0; i < ROUNDS; i++) {
        CHECK_OK(cosync_lock_acquire(&w->lock, COSYNC_FOREVER));
        long seen = w->counter;
        CHECK_OK(cosync_yield()); /* others queue on the lock meanwhile */
        w->counter = seen + 1;
        CHECK_OK(cosync_lock_release(&w->lock));
        CHECK_OK(cosync_queue_put(&w->q, &i, COSYNC_FOREVER));
        CHECK_OK(cosync_sleep(COSYNC_MS(1)));
    }
    CHECK_EQ(cosync_now() - t0, ROUNDS * COSYNC_MS(1)); /* the virtual clock */
    *result = (void *)(intptr_t)ROUNDS;
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    long *sum = arg;
    world w = {.counter = 0};
    cosync_lock_init(&w.lock);
    CHECK_OK(cosync_queue_init(&w.q, sizeof(long), 8)); /* small: putters wait */
    cosync_task t[WORKERS];
    for (int i = 0; i < WORKERS; i++)
        CHECK_OK(cosync_task_spawn(&t[i], worker, &w, NULL));
    for (long n = 0; n < (long)WORKERS * ROUNDS; n++) {
        long item;
        CHECK_OK(cosync_queue_get(&w.q, &item, COSYNC_FOREVER));
        *sum += item;
    }
    cosync_outcome out[WORKERS];
    CHECK_OK(cosync_gather(t, WORKERS, out, COSYNC_FOREVER));
    for (int i = 0; i < WORKERS; i++) {
        CHECK_EQ(out[i].status, 0);
        CHECK_EQ((intptr_t)out[i].result, ROUNDS);
    }
    CHECK_EQ(w.counter, (long)WORKERS * ROUNDS); /* the lock excluded */
    CHECK_OK(cosync_queue_destroy(&w.q));
    return 0;
}

static void *thread_main(void *arg)
{
    long *sums = arg;
    const cosync_loop_opts opts = {.virtual_clock = true};
    for (int k = 0; k < LOOPS_PER_THREAD; k++) {
        sums[k] = 0;
        CHECK_OK(cosync_run_with(main_task, &sums[k], &opts));
        CHECK_NULL(cosync_loop_current());
    }
    return NULL;
}

TEST(a_loop_on_each_of_several_threads)
{
    pthread_t th[THREADS];
    long sums[THREADS][LOOPS_PER_THREAD];
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_create(&th[i], NULL, thread_main, sums[i]), 0);
    for (int i = 0; i < THREADS; i++)
        CHECK_EQ(pthread_join(th[i], NULL), 0);
    long want = (long)WORKERS * (ROUNDS * (ROUNDS - 1) / 2);
    for (int i = 0; i < THREADS; i++)
        for (int k = 0; k < LOOPS_PER_THREAD; k++)
            CHECK_EQ(sums[i][k], want);
}

/* ------------------------------------------------------------------------
 * A loop changing threads
 * ---------------------------------------------------------------------- */

static cosync_event gate;
static int woke;

static int wait_at_gate(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_wait(&gate, COSYNC_FOREVER));
    woke++;
    return 0;
}

/* Leaves three tasks suspended on the gate, then stops the run. */
static int stop_with_waiters(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int i = 0; i < 3; i++)
        CHECK_OK(cosync_task_spawn(NULL, wait_at_gate, NULL, NULL));
    CHECK_OK(cosync_yield()); /* they queue on the gate */
    CHECK_OK(cosync_loop_stop(cosync_loop_current()));
    return 0;
}

static int open_gate(void *arg, void **result)
{
    (void)arg, (void)result;
    CHECK_OK(cosync_event_set(&gate));
    return 0;
}

typedef struct mover {
    cosync_loop *loop;
    pthread_barrier_t *step;
} mover;

static void *run_then_finish(void *arg)
{
    mover *m = arg;
    CHECK_EQ(cosync_loop_run(m->loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EINTR);
    pthread_barrier_wait(m->step); /* 1: the other thread may now try */
    pthread_barrier_wait(m->step); /* 2: it has tried */
    CHECK_OK(cosync_loop_spawn(m->loop, NULL, open_gate, NULL, NULL));
    CHECK_OK(cosync_loop_run(m->loop, COSYNC_TASK_NONE, NULL, NULL));
    CHECK_EQ(woke, 3);
    CHECK_OK(cosync_loop_destroy(m->loop));
    return NULL;
}

/* A suspended task's frames may hold the addresses of the thread that ran
 * it (gcc keeps the thread pointer in a register across calls on
 * AArch64), so its loop refuses to run or close anywhere else. */
TEST(a_loop_with_suspended_tasks_runs_only_on_their_thread)
{
    cosync_event_init(&gate);
    woke = 0;
    pthread_barrier_t step;
    CHECK_EQ(pthread_barrier_init(&step, NULL, 2), 0);
    mover m = {NULL, &step};
    CHECK_OK(cosync_loop_init(&m.loop, &(cosync_loop_opts){.virtual_clock = true}));
    CHECK_OK(cosync_loop_spawn(m.loop, NULL, stop_with_waiters, NULL, NULL));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, run_then_finish, &m), 0);
    pthread_barrier_wait(&step);
    cosync_loop_stats before, after;
    CHECK_OK(cosync_loop_get_stats(m.loop, &before));
    CHECK_EQ(before.tasks_alive, 3);
    CHECK_ERR(cosync_loop_run(m.loop, COSYNC_TASK_NONE, NULL, NULL), COSYNC_EPERM);
    CHECK_ERR(cosync_loop_destroy(m.loop), COSYNC_EPERM);
    CHECK_OK(cosync_loop_get_stats(m.loop, &after));
    CHECK_EQ(after.tasks_alive, 3); /* refused: nothing ran or was cancelled */
    CHECK_EQ(after.switches, before.switches);
    CHECK_EQ(woke, 0);
    pthread_barrier_wait(&step);
    CHECK_EQ(pthread_join(th, NULL), 0);
    pthread_barrier_destroy(&step);
}

static int ping_pong(void *arg, void **result)
{
    (void)result;
    int *count = arg;
    for (int i = 0; i < 50; i++) {
        CHECK_OK(cosync_yield());
        ++*count;
    }
    return 0;
}

static int two_players(void *arg, void **result)
{
    (void)result;
    int *count = arg;
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        CHECK_OK(cosync_task_spawn(&t[i], ping_pong, count, NULL));
    cosync_outcome out[2];
    CHECK_OK(cosync_gather(t, 2, out, COSYNC_FOREVER));
    return 0;
}

static void *run_players(void *arg)
{
    cosync_loop *loop = arg;
    int count = 0;
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, two_players, &count, NULL));
    CHECK_OK(cosync_loop_run(loop, m, NULL, NULL));
    CHECK_EQ(count, 100);
#if COSYNC__ASAN
    /* the run switched back to this thread's stack: ASan, told another
     * thread's, reports nothing at once but misreads this thread's stack
     * later (white-box, as nothing else shows it; TSan's fiber records
     * cannot be told apart this way) */
    const char *frame = __builtin_frame_address(0);
    const char *base = loop->thread_stack;
    CHECK(base <= frame && frame < base + loop->thread_stack_size);
#endif
    return NULL;
}

static jmp_buf unwound;

static volatile int unwind_sink;

static void jump_back(void)
{
    longjmp(unwound, 1);
}

/* called through a volatile pointer: gcc would otherwise see that the
 * recursion below never returns, and refuse it as infinite */
static void (*volatile jump_back_ptr)(void) = jump_back;

static __attribute__((noinline)) void unwind_from_depth(int n)
{
    volatile char frame[256];
    frame[n % 256] = (char)n;
    unwind_sink += frame[n % 256];
    if (n == 0)
        jump_back_ptr();
    else
        unwind_from_depth(n - 1);
}

/* With every task finished, the loop is free to move: each run switches
 * with its own thread's stack and (under the sanitizers) its own fiber
 * records, not those of the thread that ran it first, which has exited. */
TEST(a_loop_with_no_suspended_task_moves_between_threads)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}));
    for (int i = 0; i < 2; i++) {
        pthread_t th;
        CHECK_EQ(pthread_create(&th, NULL, run_players, loop), 0);
        CHECK_EQ(pthread_join(th, NULL), 0);
    }
    run_players(loop); /* and on this thread */
    CHECK_OK(cosync_loop_destroy(loop));
    /* ASan checks a longjmp against the stack it was told this thread has */
    if (!setjmp(unwound))
        unwind_from_depth(20);
}

/* cosync_loop_destroy on another thread while the loop runs its first run
 * (no task was left suspended, so the loop has no owner thread yet) is
 * refused with COSYNC_EPERM and changes nothing. The two threads take turns
 * through an atomic, so the check itself does not race. */
static atomic_int foreign_destroy_phase; /* 1: the loop runs; 2: the other thread has tried */
static int foreign_destroy_rc;

static int foreign_destroy_spinner(void *arg, void **result)
{
    (void)arg, (void)result;
    atomic_store(&foreign_destroy_phase, 1);
    while (atomic_load(&foreign_destroy_phase) != 2)
        CHECK_OK(cosync_yield());
    return 0;
}

static void *foreign_destroy_try_destroy(void *arg)
{
    cosync_loop *loop = arg;
    while (atomic_load(&foreign_destroy_phase) != 1)
        sched_yield();
    foreign_destroy_rc = cosync_loop_destroy(loop);
    atomic_store(&foreign_destroy_phase, 2);
    return NULL;
}

TEST(destroy_on_another_thread_while_the_loop_runs_is_refused)
{
    cosync_loop *loop;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}));
    cosync_task t;
    CHECK_OK(cosync_loop_spawn(loop, &t, foreign_destroy_spinner, NULL, NULL));
    pthread_t th;
    CHECK_EQ(pthread_create(&th, NULL, foreign_destroy_try_destroy, loop), 0);
    int status = -1;
    CHECK_OK(cosync_loop_run(loop, t, &status, NULL));
    CHECK_EQ(pthread_join(th, NULL), 0);
    CHECK_ERR(foreign_destroy_rc, COSYNC_EPERM);
    CHECK_OK(status);
    end_loop(loop);
}

int main(void)
{
    RUN(a_loop_on_each_of_several_threads);
    RUN(a_loop_with_suspended_tasks_runs_only_on_their_thread);
    RUN(a_loop_with_no_suspended_task_moves_between_threads);
    RUN(destroy_on_another_thread_while_the_loop_runs_is_refused);
    return 0;
}
