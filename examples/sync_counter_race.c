/*
 * sync_counter_race.c - seed 003, "When Synchronization Is Needed in
 * Asyncio": UnsafeCounter against SafeCounter, five tasks incrementing
 * each a hundred times.
 *
 *     async def increment(self):            # UnsafeCounter
 *         current = self.value
 *         await asyncio.sleep(0.01)  # Simulate I/O
 *         self.value = current + 1
 *     async def increment(self):            # SafeCounter
 *         async with self.lock:
 *             ...same three lines...
 *     ...
 *     print(f"Unsafe counter final value: {unsafe.value} (expected: 500)")
 *     print(f"Safe counter final value: {safe.value} (expected: 500)")
 *
 * The 10 ms sleep is scaled to 200 us: the safe counter's 500 increments
 * run one after another (5 s in the seed, about 0.1 s here). The unsafe
 * result is not random: the five tasks read, sleep until the same deadline
 * and write in the same turn of the loop, so each round of five adds 1 and
 * the value is 100. Exits 1 unless unsafe is 100 and safe is 500.
 */
#include <cosync.h>

#include <stdio.h>

typedef struct counter {
    int value;
    cosync_lock lock;
    bool safe;
} counter;

static counter unsafe = {0, COSYNC_LOCK_INIT, false};
static counter safe = {0, COSYNC_LOCK_INIT, true};

static int counter_increment(counter *c)
{
    int rc;
    if (c->safe && (rc = cosync_lock_acquire(&c->lock, COSYNC_FOREVER)) != 0)
        return rc;
    int current = c->value;            /* not atomic if it spans an await point */
    rc = cosync_sleep(COSYNC_US(200)); /* simulate I/O */
    if (rc == 0)
        c->value = current + 1;
    if (c->safe)
        cosync_lock_release(&c->lock);
    return rc;
}

static int increment_counter(void *arg, void **result)
{
    counter *c = arg;
    (void)result;
    for (int i = 0; i < 100; i++) {
        int rc = counter_increment(c);
        if (rc != 0)
            return rc;
    }
    return 0;
}

static int run_five(counter *c)
{
    cosync_task tasks[5];
    cosync_outcome out[5];
    int rc;
    for (int i = 0; i < 5; i++)
        if ((rc = cosync_task_spawn(&tasks[i], increment_counter, c, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(tasks, 5, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 5; i++)
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

static int main_task(void *arg, void **result)
{
    int rc;
    (void)arg;
    (void)result;
    if ((rc = run_five(&unsafe)) != 0) /* test unsafe counter */
        return rc;
    printf("Unsafe counter final value: %d (expected: 500)\n", unsafe.value);
    if ((rc = run_five(&safe)) != 0) /* test safe counter */
        return rc;
    printf("Safe counter final value: %d (expected: 500)\n", safe.value);
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_counter_race: %s\n", cosync_strerror(rc));
        return 1;
    }
    return unsafe.value == 100 && safe.value == 500 ? 0 : 1;
}
