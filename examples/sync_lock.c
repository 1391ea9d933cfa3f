/*
 * sync_lock.c - seed 003, "Asyncio Lock: Mutual Exclusion", the basic
 * example: three tasks compete for one lock.
 *
 *     async def protected_resource(lock, task_name):
 *         print(f"{task_name} wants to access the resource")
 *         async with lock:
 *             print(f"{task_name} has acquired the lock")
 *             await asyncio.sleep(1)  # Simulate work with the resource
 *             print(f"{task_name} is releasing the lock")
 *         print(f"{task_name} released the lock")
 *
 * The 1 s of work is scaled to 20 ms. Addition: each task checks that
 * nobody else holds the resource while it does, and main checks that the
 * tasks got the lock in the order they asked for it (cosync's locks are
 * FIFO, as asyncio's are); exits 1 otherwise.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_lock lock = COSYNC_LOCK_INIT; /* a shared lock */
static int holders = 0;                     /* tasks inside the critical section */
static int order[3], served = 0;
static bool exclusive = true;

static int protected_resource(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    printf("Task %d wants to access the resource\n", id);
    int rc = cosync_lock_acquire(&lock, COSYNC_FOREVER); /* async with lock: */
    if (rc != 0)
        return rc;
    printf("Task %d has acquired the lock\n", id);
    exclusive = exclusive && ++holders == 1;
    order[served++] = id;
    rc = cosync_sleep(COSYNC_MS(20)); /* simulate work with the resource */
    if (rc == 0)
        printf("Task %d is releasing the lock\n", id);
    holders--;
    cosync_lock_release(&lock);
    if (rc == 0)
        printf("Task %d released the lock\n", id);
    return rc;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[3];
    cosync_outcome out[3];
    int rc;
    (void)arg;
    (void)result;
    /* three tasks that will compete for the lock */
    for (int i = 0; i < 3; i++)
        if ((rc = cosync_task_spawn(&tasks[i], protected_resource, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(tasks, 3, out, COSYNC_FOREVER)) != 0) /* wait for all tasks */
        return rc;
    for (int i = 0; i < 3; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_lock: %s\n", cosync_strerror(rc));
        return 1;
    }
    bool ok = exclusive && served == 3;
    for (int i = 0; i < served; i++)
        ok = ok && order[i] == i;
    return ok ? 0 : 1;
}
