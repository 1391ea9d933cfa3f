/*
 * sync_semaphore.c - seed 003, "Asyncio Semaphore: Controlling
 * Concurrency", the basic example: ten workers, three at a time.
 *
 *     async def worker(semaphore, worker_id):
 *         async with semaphore:
 *             print(f"Worker {worker_id} acquired the semaphore")
 *             await asyncio.sleep(1)  # Simulate work
 *             print(f"Worker {worker_id} releasing the semaphore")
 *     ...
 *     semaphore = asyncio.Semaphore(3)  # Allow only 3 concurrent workers
 *
 * The 1 s of work is scaled to 20 ms. Addition: the peak number of workers
 * inside is printed; the program exits 1 unless it is 3.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_sem semaphore;
static int inside = 0, peak = 0;

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    (void)result;
    int rc = cosync_sem_acquire(&semaphore, COSYNC_FOREVER); /* async with semaphore: */
    if (rc != 0)
        return rc;
    if (++inside > peak)
        peak = inside;
    printf("Worker %d acquired the semaphore\n", worker_id);
    rc = cosync_sleep(COSYNC_MS(20)); /* simulate work */
    if (rc == 0)
        printf("Worker %d releasing the semaphore\n", worker_id);
    inside--;
    cosync_sem_release(&semaphore);
    return rc;
}

static int main_task(void *arg, void **result)
{
    cosync_task workers[10];
    cosync_outcome out[10];
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_sem_init(&semaphore, 3)) != 0) /* only 3 concurrent workers */
        return rc;
    for (int i = 0; i < 10; i++)
        if ((rc = cosync_task_spawn(&workers[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(workers, 10, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 10; i++)
        if (out[i].status != 0)
            return out[i].status;
    printf("at most %d workers held the semaphore at once\n", peak);
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_semaphore: %s\n", cosync_strerror(rc));
        return 1;
    }
    return peak == 3 ? 0 : 1;
}
