/*
 * patterns_worker_pool.c - the example of the asyncio documentation's
 * Queue page, on a worker pool:
 *
 *     async def worker(name, queue):
 *         while True:
 *             sleep_for = await queue.get()
 *             await asyncio.sleep(sleep_for)
 *             queue.task_done()
 *             print(f'{name} has slept for {sleep_for:.2f} seconds')
 *
 *     async def main():
 *         queue = asyncio.Queue()
 *         total_sleep_time = 0
 *         for _ in range(20):
 *             sleep_for = random.uniform(0.05, 1.0)
 *             total_sleep_time += sleep_for
 *             queue.put_nowait(sleep_for)
 *         tasks = [asyncio.create_task(worker(f'worker-{i}', queue)) for i in range(3)]
 *         started_at = time.monotonic()
 *         await queue.join()
 *         total_slept_for = time.monotonic() - started_at
 *         for task in tasks:
 *             task.cancel()
 *         await asyncio.gather(*tasks, return_exceptions=True)
 *         print('====')
 *         print(f'3 workers slept in parallel for {total_slept_for:.2f} seconds')
 *         print(f'total expected sleep time: {total_sleep_time:.2f} seconds')
 *
 * The queue and the three tasks looping on it are the pool; the loop body
 * is the job. Differences: the pool prints its line from the job, before
 * task_done (the done callback runs after it); the sleeps come from a
 * seeded generator and run on the loop's virtual clock, so that the
 * program can check the time the three workers took: exactly that of
 * handing each job, in order, to the first worker free. Exits 1 if it
 * differs, or if a job was lost.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define JOBS 20
#define WORKERS 3

static uint32_t seed = 2026;

/* random.uniform(0.05, 1.0), in nanoseconds */
static int64_t uniform_sleep(void)
{
    seed = seed * 1664525u + 1013904223u;
    return COSYNC_MS(50) + (int64_t)(seed >> 8) * COSYNC_MS(950) / (1 << 24);
}

static int worker(void *arg, void **result)
{
    int64_t sleep_for = *(const int64_t *)arg;
    (void)result;
    int rc = cosync_sleep(sleep_for);
    if (rc == 0)
        printf("%s has slept for %.2f seconds\n", cosync_task_name(cosync_task_current()),
               (double)sleep_for / 1e9);
    return rc;
}

static int jobs_ended = 0;

static void count(void *ctx, void *arg, int status, void *result)
{
    (void)ctx, (void)arg, (void)result;
    if (status == 0)
        jobs_ended++;
}

/* The time WORKERS workers take over the jobs, each job going in order
 * to the first worker free. */
static int64_t expected_span(const int64_t *sleeps)
{
    int64_t free_at[WORKERS] = {0};
    int64_t span = 0;
    for (int j = 0; j < JOBS; j++) {
        int first = 0;
        for (int w = 1; w < WORKERS; w++)
            if (free_at[w] < free_at[first])
                first = w;
        free_at[first] += sleeps[j];
        if (free_at[first] > span)
            span = free_at[first];
    }
    return span;
}

static int main_task(void *arg, void **result)
{
    static int64_t sleeps[JOBS];
    (void)arg, (void)result;
    cosync_workerpool pool;
    int rc =
        cosync_workerpool_init(&pool, &(cosync_workerpool_opts){.workers = WORKERS, .done = count});
    if (rc)
        return rc;
    int64_t total_sleep_time = 0;
    for (int i = 0; i < JOBS && rc == 0; i++) {
        sleeps[i] = uniform_sleep();
        total_sleep_time += sleeps[i];
        rc = cosync_workerpool_submit(&pool, worker, &sleeps[i], 0); /* put_nowait */
    }
    int64_t started_at = cosync_now();
    if (rc == 0)
        rc = cosync_workerpool_join(&pool, COSYNC_FOREVER);
    int64_t total_slept_for = cosync_now() - started_at;
    int end = cosync_workerpool_shutdown(&pool, true, COSYNC_FOREVER); /* cancel, gather */
    if (rc == 0)
        rc = end;
    if (rc == 0)
        rc = cosync_workerpool_destroy(&pool);
    if (rc)
        return rc;
    printf("====\n");
    printf("%d workers slept in parallel for %.2f seconds\n", WORKERS,
           (double)total_slept_for / 1e9);
    printf("total expected sleep time: %.2f seconds\n", (double)total_sleep_time / 1e9);
    int64_t span = expected_span(sleeps);
    if (total_slept_for != span || jobs_ended != JOBS) {
        printf("expected %lld ns and %d jobs, took %lld ns for %d\n", (long long)span, JOBS,
               (long long)total_slept_for, jobs_ended);
        return COSYNC_EINVAL;
    }
    return 0;
}

int main(void)
{
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "patterns_worker_pool: %s\n", cosync_strerror(rc));
        return 1;
    }
    return 0;
}
