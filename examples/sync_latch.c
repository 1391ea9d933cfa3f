/*
 * sync_latch.c - seed 003, "Counting Latch": a coordinator waits until five
 * workers have counted down.
 *
 *     async def worker(latch, worker_id):
 *         work_time = 0.2 * (worker_id + 1)
 *         print(f"Worker {worker_id} starting, will take {work_time:.1f}s")
 *         await asyncio.sleep(work_time)
 *         print(f"Worker {worker_id} completed, counting down latch")
 *         await latch.count_down()
 *     async def coordinator(latch):
 *         print("Coordinator waiting for all workers to complete")
 *         await latch.wait()
 *         print("All workers completed, coordinator proceeding")
 *
 * The seed builds CountDownLatch on a Condition; cosync_latch is one, and
 * its count_down is not a suspension point (no await). Work times scaled
 * by 1/10: 20 ms * (worker_id + 1), and printed in ms. Exits 1 unless the
 * coordinator proceeds only after all five count-downs.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_latch latch = COSYNC_LATCH_INIT(5); /* a latch for 5 workers */
static int completed = 0, completed_when_released = -1;

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    (void)result;
    int work_ms = 20 * (worker_id + 1);
    printf("Worker %d starting, will take %d ms\n", worker_id, work_ms);
    int rc = cosync_sleep(COSYNC_MS(work_ms));
    if (rc != 0)
        return rc;
    printf("Worker %d completed, counting down latch\n", worker_id);
    completed++;
    rc = cosync_latch_count_down(&latch);
    /* the seed's count_down does nothing once the count is 0: so does this */
    return rc == COSYNC_EALREADY ? 0 : rc;
}

static int coordinator(void *arg, void **result)
{
    (void)arg;
    (void)result;
    printf("Coordinator waiting for all workers to complete\n");
    int rc = cosync_latch_wait(&latch, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    completed_when_released = completed;
    printf("All workers completed, coordinator proceeding\n");
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[6]; /* *workers, coordinator_task */
    cosync_outcome out[6];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 5; i++)
        if ((rc = cosync_task_spawn(&tasks[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_task_spawn(&tasks[5], coordinator, NULL, NULL)) != 0)
        return rc;
    if ((rc = cosync_gather(tasks, 6, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 6; i++)
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_latch: %s\n", cosync_strerror(rc));
        return 1;
    }
    return completed_when_released == 5 && cosync_latch_count(&latch) == 0 ? 0 : 1;
}
