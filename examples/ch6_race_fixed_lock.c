/*
 * ch6_race_fixed_lock.c - seed 000, 6.1 "Fixing with asyncio.Lock".
 *
 *     lock = asyncio.Lock()
 *     async def increment():
 *         global counter
 *         async with lock:  # Prevents race conditions
 *             temp = counter
 *             await asyncio.sleep(0.1)  # Simulate processing time
 *             counter = temp + 1
 *     ...
 *     print("Final counter value:", counter)  # Always 10!
 *
 * `async with lock:` is acquire ... release. The sleep is scaled from 100 ms
 * to 10 ms: the ten increments now run one after another (100 ms in all
 * instead of 1 s). Exits 1 unless the counter is 10.
 */
#include <cosync.h>

#include <stdio.h>

static int counter = 0; /* shared resource */
static cosync_lock lock = COSYNC_LOCK_INIT;

static int increment(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_lock_acquire(&lock, COSYNC_FOREVER); /* async with lock: */
    if (rc != 0)
        return rc;
    int temp = counter;
    rc = cosync_sleep(COSYNC_MS(10)); /* simulate processing time */
    if (rc == 0)
        counter = temp + 1;
    cosync_lock_release(&lock); /* released on every path, as `async with` does */
    return rc;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[10];
    cosync_outcome out[10];
    (void)arg;
    (void)result;
    for (int i = 0; i < 10; i++) {
        int rc = cosync_task_spawn(&tasks[i], increment, NULL, NULL);
        if (rc != 0)
            return rc;
    }
    int rc = cosync_gather(tasks, 10, out, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 10; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    printf("Final counter value: %d\n", counter); /* always 10 */
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "ch6_race_fixed_lock: %s\n", cosync_strerror(rc));
        return 1;
    }
    return counter == 10 ? 0 : 1;
}
