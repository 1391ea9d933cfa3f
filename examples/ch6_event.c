/*
 * ch6_event.c - seed 000, 6.3.1 "asyncio.Event - Task Synchronization".
 *
 *     event = asyncio.Event()
 *     async def waiter():
 *         print("Waiting for event to be set...")
 *         await event.wait()  # Wait until event is set
 *         print("Event received!")
 *     async def setter():
 *         await asyncio.sleep(2)
 *         print("Setting event!")
 *         event.set()  # Notify waiting task
 *     ...
 *     await asyncio.gather(waiter(), setter())
 *
 * The setter's 2 s sleep is scaled to 20 ms. gather(waiter(), setter())
 * becomes two spawns and cosync_gather. Exits 1 unless the waiter was woken
 * by the set.
 */
#include <cosync.h>

#include <stdio.h>

static cosync_event event = COSYNC_EVENT_INIT;
static bool received = false;

static int waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    printf("Waiting for event to be set...\n");
    int rc = cosync_event_wait(&event, COSYNC_FOREVER); /* wait until event is set */
    if (rc != 0)
        return rc;
    printf("Event received!\n");
    received = true;
    return 0;
}

static int setter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_sleep(COSYNC_MS(20));
    if (rc != 0)
        return rc;
    printf("Setting event!\n");
    return cosync_event_set(&event); /* notify waiting task */
}

static int main_task(void *arg, void **result)
{
    cosync_task t[2];
    cosync_outcome out[2];
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_task_spawn(&t[0], waiter, NULL, NULL)) != 0)
        return rc;
    if ((rc = cosync_task_spawn(&t[1], setter, NULL, NULL)) != 0)
        return rc;
    if ((rc = cosync_gather(t, 2, out, COSYNC_FOREVER)) != 0)
        return rc;
    return out[0].status != 0 ? out[0].status : out[1].status;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "ch6_event: %s\n", cosync_strerror(rc));
        return 1;
    }
    return received ? 0 : 1;
}
