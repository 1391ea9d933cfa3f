/*
 * sync_event.c - seed 003, "Asyncio Event: Signaling Between Tasks", the
 * basic example: three waiters and one setter.
 *
 *     async def waiter(event, name):
 *         print(f"{name} is waiting for the event")
 *         await event.wait()
 *         print(f"{name} was notified, event is set!")
 *     async def setter(event):
 *         print("Setter: Sleeping for 2 seconds before setting the event")
 *         await asyncio.sleep(2)
 *         print("Setter: Setting the event now")
 *         event.set()
 *     ...
 *     await asyncio.gather(setter_task, *waiters)
 *
 * The setter's 2 s sleep is scaled to 20 ms (and its message says so).
 * Exits 1 unless all three waiters were notified.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_event event = COSYNC_EVENT_INIT; /* a shared event */
static int notified = 0;

static int waiter(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    printf("Waiter %d is waiting for the event\n", id);
    int rc = cosync_event_wait(&event, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    printf("Waiter %d was notified, event is set!\n", id);
    notified++;
    return 0;
}

static int setter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    printf("Setter: Sleeping for 20 ms before setting the event\n");
    int rc = cosync_sleep(COSYNC_MS(20));
    if (rc != 0)
        return rc;
    printf("Setter: Setting the event now\n");
    return cosync_event_set(&event);
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[4]; /* setter_task, *waiters: gather's order */
    cosync_outcome out[4];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 3; i++)
        if ((rc = cosync_task_spawn(&tasks[1 + i], waiter, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_task_spawn(&tasks[0], setter, NULL, NULL)) != 0)
        return rc;
    if ((rc = cosync_gather(tasks, 4, out, COSYNC_FOREVER)) != 0) /* wait for all tasks */
        return rc;
    for (int i = 0; i < 4; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_event: %s\n", cosync_strerror(rc));
        return 1;
    }
    return notified == 3 ? 0 : 1;
}
