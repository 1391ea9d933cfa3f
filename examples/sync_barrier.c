/*
 * sync_barrier.c - seed 003, "Asyncio Barrier: Coordinated Start": five
 * workers prepare for different times, then wait for each other.
 *
 *     async def worker(barrier, worker_id):
 *         print(f"Worker {worker_id} starting")
 *         await asyncio.sleep(worker_id * 0.2)
 *         print(f"Worker {worker_id} ready, waiting at barrier")
 *         generation = await barrier.wait()
 *         print(f"Worker {worker_id} passed barrier (generation {generation})")
 *         await asyncio.sleep(0.5)
 *         print(f"Worker {worker_id} completed")
 *     ...
 *     barrier = Barrier(5)
 *
 * The seed builds its Barrier on a Condition; this uses cosync_barrier
 * (asyncio.Barrier, Python 3.11). Difference: the seed's wait() returns the
 * generation (1 for every worker here); cosync_barrier_wait returns the
 * task's index in the round, in arrival order, so it is printed instead.
 * Times scaled by 1/10: worker_id * 20 ms, then 50 ms. Exits 1 unless each
 * worker got the index of its arrival (worker i arrives i-th) and nobody
 * passed before all five had arrived.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_barrier barrier = COSYNC_BARRIER_INIT(5); /* a barrier for 5 workers */
static int arrived = 0, indices[5], early = 0;

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    (void)result;
    printf("Worker %d starting\n", worker_id);
    int rc = cosync_sleep(COSYNC_MS(20) * worker_id); /* different preparation times */
    if (rc != 0)
        return rc;
    printf("Worker %d ready, waiting at barrier\n", worker_id);
    arrived++;

    int idx = cosync_barrier_wait(&barrier, COSYNC_FOREVER); /* wait at the barrier */
    if (idx < 0)
        return idx; /* COSYNC_ECANCELED, COSYNC_EBROKEN */
    if (arrived != 5)
        early++;
    indices[worker_id] = idx;
    printf("Worker %d passed barrier (index %d)\n", worker_id, idx);

    if ((rc = cosync_sleep(COSYNC_MS(50))) != 0) /* continue with synchronized work */
        return rc;
    printf("Worker %d completed\n", worker_id);
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task workers[5];
    cosync_outcome out[5];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 5; i++)
        if ((rc = cosync_task_spawn(&workers[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(workers, 5, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 5; i++)
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_barrier: %s\n", cosync_strerror(rc));
        return 1;
    }
    bool ok = early == 0;
    for (int i = 0; i < 5; i++)
        ok = ok && indices[i] == i;
    return ok ? 0 : 1;
}
