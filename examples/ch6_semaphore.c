/*
 * ch6_semaphore.c - seed 000, 6.3.3 "asyncio.Semaphore - Limiting
 * Concurrency".
 *
 *     semaphore = asyncio.Semaphore(2)  # Allow 2 tasks at a time
 *     async def worker(id):
 *         async with semaphore:
 *             print(f"Task {id} is working...")
 *             await asyncio.sleep(2)
 *             print(f"Task {id} is done!")
 *     ...
 *     tasks = [worker(i) for i in range(5)]
 *     await asyncio.gather(*tasks)
 *
 * The 2 s sleep is scaled to 20 ms. Addition: the workers count how many
 * are inside at once; main prints the peak and exits 1 unless it is 2.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_sem semaphore = COSYNC_SEM_INIT(2); /* allow 2 tasks at a time */
static int active = 0, peak = 0;

static int worker(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    int rc = cosync_sem_acquire(&semaphore, COSYNC_FOREVER); /* async with semaphore: */
    if (rc != 0)
        return rc;
    if (++active > peak)
        peak = active;
    printf("Task %d is working...\n", id);
    rc = cosync_sleep(COSYNC_MS(20));
    if (rc == 0)
        printf("Task %d is done!\n", id);
    active--;
    cosync_sem_release(&semaphore);
    return rc;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[5];
    cosync_outcome out[5];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 5; i++)
        if ((rc = cosync_task_spawn(&tasks[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(tasks, 5, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 5; i++)
        if (out[i].status != 0)
            return out[i].status;
    printf("at most %d tasks worked at once\n", peak);
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "ch6_semaphore: %s\n", cosync_strerror(rc));
        return 1;
    }
    return peak == 2 ? 0 : 1;
}
