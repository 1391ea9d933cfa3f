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
#include <stdint.h>
#include <string.h>

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

int main(void)
{
    RUN(a_loop_on_each_of_several_threads);
    return 0;
}
