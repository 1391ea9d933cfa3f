/*
 * ch6_race_condition.c - seed 000, 6.1 "Race Condition Without a Lock".
 *
 *     async def increment():
 *         global counter
 *         temp = counter
 *         await asyncio.sleep(0.1)  # Simulate processing time
 *         counter = temp + 1  # Race condition!
 *     ...
 *     tasks = [increment() for _ in range(10)]
 *     await asyncio.gather(*tasks)
 *     print("Final counter value:", counter)  # Might not be 10!
 *
 * Same sleep (100 ms). The outcome is not random: every task reads the
 * counter (0) before any of the sleeps ends, so each writes 0 + 1 and the
 * final value is 1, in asyncio as here. The program checks that: it exits 1
 * if the counter is not 1. ch6_race_fixed_lock.c is the fix.
 */
#include <cosync.h>

#include <stdio.h>

static int counter = 0; /* shared resource */

static int increment(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int temp = counter;
    int rc = cosync_sleep(COSYNC_MS(100)); /* simulate processing time */
    if (rc != 0)
        return rc;
    counter = temp + 1; /* race condition! */
    return 0;
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
    printf("Final counter value: %d\n", counter); /* not 10! */
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "ch6_race_condition: %s\n", cosync_strerror(rc));
        return 1;
    }
    if (counter != 1) {
        fprintf(stderr, "expected the lost updates to leave 1, got %d\n", counter);
        return 1;
    }
    return 0;
}
