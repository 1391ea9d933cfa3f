/*
 * ch6_condition.c - seed 000, 6.3.2 "asyncio.Condition - Advanced
 * Synchronization".
 *
 *     condition = asyncio.Condition()
 *     async def waiter():
 *         async with condition:
 *             await condition.wait()  # Wait until condition is met
 *             print("Condition met! Resource:", shared_resource)
 *     async def updater():
 *         global shared_resource
 *         await asyncio.sleep(2)
 *         shared_resource = 42
 *         async with condition:
 *             condition.notify_all()  # Wake up waiting tasks
 *
 * The updater's 2 s sleep is scaled to 20 ms. As in the seed, the waiter
 * has no predicate: it relies on waiting before the notify (it does: it
 * runs first). cosync_cond_wait_for(pred) is the robust form. Exits 1
 * unless the waiter saw 42.
 */
#include <cosync.h>

#include <stdio.h>

static cosync_cond condition = COSYNC_COND_INIT;
static int shared_resource = 0;
static int seen = -1;

static int waiter(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_cond_acquire(&condition, COSYNC_FOREVER); /* async with condition: */
    if (rc != 0)
        return rc;
    rc = cosync_cond_wait(&condition, COSYNC_FOREVER); /* returns with the lock held */
    if (rc == 0) {
        printf("Condition met! Resource: %d\n", shared_resource);
        seen = shared_resource;
    }
    cosync_cond_release(&condition);
    return rc;
}

static int updater(void *arg, void **result)
{
    (void)arg;
    (void)result;
    int rc = cosync_sleep(COSYNC_MS(20));
    if (rc != 0)
        return rc;
    shared_resource = 42;
    if ((rc = cosync_cond_acquire(&condition, COSYNC_FOREVER)) != 0)
        return rc;
    cosync_cond_notify_all(&condition); /* wake up waiting tasks */
    cosync_cond_release(&condition);
    return 0;
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
    if ((rc = cosync_task_spawn(&t[1], updater, NULL, NULL)) != 0)
        return rc;
    if ((rc = cosync_gather(t, 2, out, COSYNC_FOREVER)) != 0)
        return rc;
    return out[0].status != 0 ? out[0].status : out[1].status;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "ch6_condition: %s\n", cosync_strerror(rc));
        return 1;
    }
    return seen == 42 ? 0 : 1;
}
