/*
 * sync_task_limiter.c - seed 003, "Task Limiting and Load Balancing": a
 * bounded queue of pending work (backpressure) and a semaphore on how much
 * runs at once.
 *
 *     async def worker(self, worker_id):
 *         try:
 *             while True:
 *                 coro = await self.pending.get()
 *                 async with self.semaphore:
 *                     print(f"Worker {worker_id} executing task")
 *                     await coro
 *                 self.pending.task_done()
 *         except asyncio.CancelledError:
 *             print(f"Worker {worker_id} cancelled")
 *             raise
 *     ...
 *     limiter = TaskLimiter(max_concurrent=3, max_pending=5)
 *     await limiter.start(num_workers=2)
 *     for i in range(10):
 *         await limiter.add_task(sample_task(i)); print(f"Added task {i} to limiter")
 *     await limiter.join(); await limiter.shutdown()
 *
 * A coroutine object is a job {function, argument} copied into the queue;
 * `await coro` is calling the function from the worker's task (it may
 * suspend: the task has its own stack). Durations are random.uniform(0.5,
 * 2.0) s scaled by 1/50 (10-40 ms) from a fixed-seed xorshift. As in the
 * seed, two workers never reach the semaphore's limit of three. Exits 1
 * unless all ten tasks completed and both workers ended cancelled.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

typedef struct job {
    int (*fn)(int arg); /* the coroutine function ... */
    int arg;            /* ... and its argument */
} job;

static struct task_limiter {
    cosync_sem semaphore;
    cosync_queue pending;
    cosync_task workers[2];
    int nworkers;
} limiter;

static int completed = 0;
static uint32_t rng = 2463534242u;

static int64_t uniform_ms(int lo_ms, int hi_ms) /* random.uniform, fixed seed */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return COSYNC_US(lo_ms * 1000 + (int64_t)(rng % (uint32_t)((hi_ms - lo_ms) * 1000 + 1)));
}

static int sample_task(int task_id)
{
    int64_t duration = uniform_ms(10, 40);
    printf("Task %d running (will take %.1f ms)\n", task_id, (double)duration / 1e6);
    int rc = cosync_sleep(duration);
    if (rc != 0)
        return rc;
    printf("Task %d completed\n", task_id);
    completed++;
    return 0;
}

static int limiter_init(int max_concurrent, size_t max_pending)
{
    int rc = cosync_sem_init(&limiter.semaphore, max_concurrent);
    return rc != 0 ? rc : cosync_queue_init(&limiter.pending, sizeof(job), max_pending);
}

static int limiter_add_task(job j)
{
    return cosync_queue_put(&limiter.pending, &j, COSYNC_FOREVER); /* waits while full */
}

static int limiter_worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    int rc;
    (void)result;
    for (;;) {
        job coro;
        if ((rc = cosync_queue_get(&limiter.pending, &coro, COSYNC_FOREVER)) != 0)
            break;
        if ((rc = cosync_sem_acquire(&limiter.semaphore, COSYNC_FOREVER)) != 0)
            break;
        printf("Worker %d executing task\n", worker_id);
        rc = coro.fn(coro.arg); /* await coro */
        cosync_sem_release(&limiter.semaphore);
        if (rc != 0)
            break;
        if ((rc = cosync_queue_task_done(&limiter.pending)) != 0) /* mark as done */
            break; /* COSYNC_EOVERFLOW: Python's ValueError ends the worker too */
    }
    if (rc == COSYNC_ECANCELED)
        printf("Worker %d cancelled\n", worker_id);
    return rc;
}

static int limiter_start(int num_workers)
{
    limiter.nworkers = num_workers;
    for (int i = 0; i < num_workers; i++) {
        int rc = cosync_task_spawn(&limiter.workers[i], limiter_worker, (void *)(intptr_t)i, NULL);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int limiter_shutdown(void)
{
    cosync_outcome out[2];
    for (int i = 0; i < limiter.nworkers; i++) /* cancel all workers */
        cosync_task_cancel(limiter.workers[i]);
    /* wait for cancellation to complete (return_exceptions=True) */
    int rc = cosync_gather(limiter.workers, (size_t)limiter.nworkers, out, COSYNC_FOREVER);
    for (int i = 0; i < limiter.nworkers && rc == 0; i++)
        if (out[i].status != COSYNC_ECANCELED)
            rc = out[i].status != 0 ? out[i].status : COSYNC_EINVAL;
    return rc;
}

static int main_task(void *arg, void **result)
{
    int rc;
    (void)arg;
    (void)result;
    if ((rc = limiter_init(3, 5)) != 0) /* max_concurrent=3, max_pending=5 */
        return rc;
    if ((rc = limiter_start(2)) != 0) /* num_workers=2 */
        return rc;
    for (int i = 0; i < 10; i++) {
        if ((rc = limiter_add_task((job){sample_task, i})) != 0)
            return rc;
        printf("Added task %d to limiter\n", i);
    }
    printf("Waiting for all tasks to complete\n");
    if ((rc = cosync_queue_join(&limiter.pending, COSYNC_FOREVER)) != 0)
        return rc;
    if ((rc = limiter_shutdown()) != 0)
        return rc;
    printf("All tasks completed, limiter shut down\n");
    return cosync_queue_destroy(&limiter.pending);
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_task_limiter: %s\n", cosync_strerror(rc));
        return 1;
    }
    return completed == 10 ? 0 : 1;
}
