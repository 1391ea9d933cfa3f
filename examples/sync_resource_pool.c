/*
 * sync_resource_pool.c - seed 003, "Real-World Example: Resource Pool with
 * Maximum Usage": a Condition guards a pool of 5 resources, at most 3 in
 * use, shared by 8 workers.
 *
 *     async def acquire(self):
 *         async with self.condition:
 *             while (not self.resources or len(self.in_use) >= self.max_concurrent):
 *                 print(f"Waiting for resource (available: ..., in use: ...)")
 *                 await self.condition.wait()
 *             resource = self.resources.pop()
 *             self.in_use.add(resource)
 *     async def release(self, resource):
 *         async with self.condition:
 *             self.resources.append(resource); self.in_use.remove(resource)
 *             self.condition.notify()
 *     async def worker(pool, worker_id):   # acquire; use 0.5-2 s; release;
 *         ...                              # pause 0.1-0.5 s; until cancelled
 *     await asyncio.sleep(15); cancel the workers; gather(return_exceptions)
 *
 * Times scaled by 1/100: uses of 5-20 ms, pauses of 1-5 ms, 150 ms of run.
 * random.uniform is a fixed-seed xorshift, so the durations do not change
 * from run to run, and on the loop's virtual clock (cosync_run_with) the
 * interleaving does not either: where durations add up to the same
 * instant they tie as in asyncio, not as the real clock's jitter falls.
 * The
 * release in the worker's `finally` is not interrupted by the cancellation
 * that ended the use: cancellation is delivered once, as in asyncio.
 * Exits 1 if more than 3 resources were ever in use, a resource was handed
 * out twice, or a worker ended other than cancelled.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define NRESOURCES 5
#define MAX_CONCURRENT 3
#define NWORKERS 8

static struct resource_pool {
    int resources[NRESOURCES]; /* available, used as a stack like list.pop() */
    int navailable;
    bool in_use[NRESOURCES];
    int nin_use;
    cosync_cond condition;
} pool = {{0, 1, 2, 3, 4}, NRESOURCES, {false}, 0, COSYNC_COND_INIT};

static int peak_in_use = 0, acquisitions = 0, double_use = 0;

static uint32_t rng = 2463534242u;

/* random.uniform(lo_ms, hi_ms), in nanoseconds, from a fixed seed */
static int64_t uniform_ms(int lo_ms, int hi_ms)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return COSYNC_US(lo_ms * 1000 + (int64_t)(rng % (uint32_t)((hi_ms - lo_ms) * 1000 + 1)));
}

/* Returns the resource (>= 0) or an error code. */
static int pool_acquire(void)
{
    int rc = cosync_cond_acquire(&pool.condition, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    while (pool.navailable == 0 || pool.nin_use >= MAX_CONCURRENT) {
        printf("Waiting for resource (available: %d, in use: %d)\n", pool.navailable, pool.nin_use);
        if ((rc = cosync_cond_wait(&pool.condition, COSYNC_FOREVER)) != 0) {
            cosync_cond_release(&pool.condition);
            return rc;
        }
    }
    int resource = pool.resources[--pool.navailable];
    if (pool.in_use[resource])
        double_use++;
    pool.in_use[resource] = true;
    if (++pool.nin_use > peak_in_use)
        peak_in_use = pool.nin_use;
    acquisitions++;
    printf("Acquired resource %d (available: %d, in use: %d)\n", resource, pool.navailable,
           pool.nin_use);
    cosync_cond_release(&pool.condition);
    return resource;
}

static int pool_release(int resource)
{
    int rc = cosync_cond_acquire(&pool.condition, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    pool.resources[pool.navailable++] = resource; /* return the resource to the pool */
    pool.in_use[resource] = false;
    pool.nin_use--;
    printf("Released resource %d (available: %d, in use: %d)\n", resource, pool.navailable,
           pool.nin_use);
    cosync_cond_notify(&pool.condition, 1); /* notify waiters */
    cosync_cond_release(&pool.condition);
    return 0;
}

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    int rc;
    (void)result;
    for (;;) {
        int resource = pool_acquire();
        if (resource < 0) {
            rc = resource;
            break;
        }
        printf("Worker %d using resource %d\n", worker_id, resource);
        rc = cosync_sleep(uniform_ms(5, 20));
        int rc2 = pool_release(resource); /* finally: always release the resource */
        if (rc == 0)
            rc = rc2;
        if (rc != 0)
            break;
        if ((rc = cosync_sleep(uniform_ms(1, 5))) != 0) /* pause before acquiring again */
            break;
    }
    if (rc == COSYNC_ECANCELED)
        printf("Worker %d was cancelled\n", worker_id);
    return rc;
}

static int main_task(void *arg, void **result)
{
    cosync_task workers[NWORKERS];
    cosync_outcome out[NWORKERS];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < NWORKERS; i++) /* 8 workers, more than resources */
        if ((rc = cosync_task_spawn(&workers[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_sleep(COSYNC_MS(150))) != 0) /* let them run for a while */
        return rc;
    for (int i = 0; i < NWORKERS; i++)
        cosync_task_cancel(workers[i]);
    if ((rc = cosync_gather(workers, NWORKERS, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < NWORKERS; i++)
        if (out[i].status != COSYNC_ECANCELED)
            return out[i].status != 0 ? out[i].status : COSYNC_EINVAL;
    return 0;
}

int main(void)
{
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "sync_resource_pool: %s\n", cosync_strerror(rc));
        return 1;
    }
    printf("%d acquisitions; at most %d resources in use at once; %d left in use\n", acquisitions,
           peak_in_use, pool.nin_use);
    bool ok = acquisitions > 0 && peak_in_use <= MAX_CONCURRENT && double_use == 0 &&
              pool.nin_use == 0 && pool.navailable == NRESOURCES;
    return ok ? 0 : 1;
}
