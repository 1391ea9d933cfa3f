/*
 * tasks_gather_propagate.c - asyncio.gather without return_exceptions:
 * check three services at once; the first failure propagates at once and
 * the caller cancels the checks still running.
 *
 *     async def check(name, delay, healthy):
 *         await asyncio.sleep(delay)
 *         if not healthy:
 *             raise ConnectionError(name)
 *         return name
 *
 *     tasks = [asyncio.create_task(check(*s)) for s in SERVICES]
 *     try:
 *         print(await asyncio.gather(*tasks))
 *     except ConnectionError as e:
 *         print("down:", e)
 *         for t in tasks:
 *             t.cancel()
 *         await asyncio.gather(*tasks, return_exceptions=True)
 *
 * Run twice: all healthy, then with the database down. Delays are tens of
 * milliseconds. Exits 1 unless the first run got every answer in order,
 * and the second learnt of the database as it failed, while the slower
 * check was still running, and cancelled it.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define SERVICE_DOWN (-1000) /* a status of our own (outside errno and the library's range) */

/* what the runs got right; checked once the loop is gone */
static int healthy_ok, down_ok;

typedef struct service {
    const char *name;
    int delay_ms;
    int healthy;
} service;

static int check(void *arg, void **result)
{
    const service *s = arg;
    int rc = cosync_sleep(COSYNC_MS(s->delay_ms));
    if (rc != 0)
        return rc; /* cancelled */
    if (!s->healthy)
        return SERVICE_DOWN; /* raise ConnectionError(name) */
    *result = (void *)s->name;
    return 0;
}

static int check_all(const service *services, int down)
{
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        int rc = cosync_task_spawn(&t[i], check, (void *)&services[i], NULL);
        if (rc != 0)
            return rc;
    }
    cosync_outcome out[3];
    size_t failed;
    int rc = cosync_gather_propagate(t, 3, out, &failed, COSYNC_FOREVER);
    if (rc == 0) {
        printf("all up: %s %s %s\n", (const char *)out[0].result, (const char *)out[1].result,
               (const char *)out[2].result);
        healthy_ok = !down;
        return 0;
    }
    if (failed == 3)
        return rc; /* this task itself was cancelled */
    printf("down: %s\n", services[failed].name);
    /* the others are still ours: cancel them and collect them */
    cosync_task rest[2];
    int n = 0, running = 0;
    for (size_t i = 0; i < 3; i++)
        if (i != failed) {
            running += !cosync_task_done(t[i]);
            cosync_task_cancel(t[i]);
            rest[n++] = t[i];
        }
    cosync_outcome rest_out[2];
    rc = cosync_gather(rest, 2, rest_out, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    int cancelled = 0;
    for (int i = 0; i < 2; i++)
        cancelled += rest_out[i].status == COSYNC_ECANCELED;
    printf("cancelled %d check(s) still running\n", cancelled);
    down_ok = down && services[failed].healthy == 0 && running == 1 && cancelled == 1;
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    static const service up[3] = {{"web", 10, 1}, {"db", 30, 1}, {"cache", 20, 1}};
    static const service db_down[3] = {{"web", 10, 1}, {"db", 30, 0}, {"cache", 60, 1}};
    int rc = check_all(up, 0);
    if (rc != 0)
        return rc;
    return check_all(db_down, 1);
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0)
        fprintf(stderr, "tasks_gather_propagate: %s\n", cosync_strerror(rc));
    return rc != 0 || !healthy_ok || !down_ok;
}
