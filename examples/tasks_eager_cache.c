/*
 * tasks_eager_cache.c - eager start (asyncio 3.12's eager_task_factory):
 * lookups through a cache, each a task. A hit ends inside its spawn, so its
 * answer is there at once and the caller never waits behind other tasks
 * for it; a miss suspends in its fetch and is awaited as usual.
 *
 *     cache = {}
 *
 *     async def lookup(key):
 *         if key in cache:
 *             return cache[key]              # a hit: no await at all
 *         await asyncio.sleep(0.01)          # fetch it
 *         cache[key] = key * key
 *         return cache[key]
 *
 *     async def main():
 *         asyncio.get_running_loop().set_task_factory(asyncio.eager_task_factory)
 *         for round in range(2):
 *             tasks = [asyncio.create_task(lookup(k)) for k in (3, 5, 3, 7)]
 *             at_once = sum(t.done() for t in tasks)
 *             print(await asyncio.gather(*tasks), "done at spawn:", at_once)
 *
 * The first round misses on each key (the second 3 was spawned while the
 * first was fetching), the second hits on all four. The fetch sleeps 10
 * ms. Exits 1 unless the answers are right, none of the first round and
 * all of the second were done when their spawn returned, and the second
 * round's gather did not suspend (its tasks had all ended).
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

enum { KEYS = 10 };
static long cache[KEYS]; /* 0: not cached */
static int all_ok;

static int lookup(void *arg, void **result)
{
    intptr_t key = (intptr_t)arg;
    if (cache[key] == 0) {
        int rc = cosync_sleep(COSYNC_MS(10)); /* fetch it */
        if (rc != 0)
            return rc;
        cache[key] = (long)(key * key);
    }
    *result = (void *)(intptr_t)cache[key];
    return 0;
}

/* One round: the four lookups, how many were done at spawn, and the
 * context switches the gather took; 0 or an error. */
static int round_of_lookups(int *at_once, uint64_t *switches)
{
    static const intptr_t keys[4] = {3, 5, 3, 7};
    cosync_task t[4];
    cosync_outcome out[4];
    cosync_loop_stats before, after;
    int rc = 0;
    *at_once = 0;
    for (int i = 0; rc == 0 && i < 4; i++) {
        rc = cosync_task_spawn(&t[i], lookup, (void *)keys[i], NULL);
        *at_once += rc == 0 && cosync_task_done(t[i]);
    }
    if (rc == 0)
        rc = cosync_loop_get_stats(cosync_loop_current(), &before);
    if (rc == 0)
        rc = cosync_gather(t, 4, out, COSYNC_FOREVER);
    if (rc == 0)
        rc = cosync_loop_get_stats(cosync_loop_current(), &after);
    if (rc != 0)
        return rc;
    printf("[%ld, %ld, %ld, %ld] done at spawn: %d\n", (long)(intptr_t)out[0].result,
           (long)(intptr_t)out[1].result, (long)(intptr_t)out[2].result,
           (long)(intptr_t)out[3].result, *at_once);
    for (int i = 0; i < 4; i++)
        if (out[i].status != 0 || (intptr_t)out[i].result != keys[i] * keys[i])
            return COSYNC_EINVAL;
    *switches = after.switches - before.switches;
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int first, second;
    uint64_t switches_first, switches_second;
    int rc = round_of_lookups(&first, &switches_first);
    if (rc == 0)
        rc = round_of_lookups(&second, &switches_second);
    all_ok = rc == 0 && first == 0 && second == 4 && switches_first > 0 && switches_second == 0;
    return rc;
}

int main(void)
{
    /* every task a task spawns starts eagerly: the task factory */
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.eager_tasks = true});
    if (rc != 0)
        fprintf(stderr, "tasks_eager_cache: %s\n", cosync_strerror(rc));
    return rc != 0 || !all_ok;
}
