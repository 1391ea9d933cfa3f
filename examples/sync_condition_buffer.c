/*
 * sync_condition_buffer.c - seed 003, "Asyncio Condition: Complex
 * Synchronization": a bounded buffer, two consumers and three producers
 * on one Condition.
 *
 *     async def consumer(condition, buffer, name):
 *         while True:
 *             async with condition:
 *                 while len(buffer) == 0:
 *                     print(f"{name} is waiting for items")
 *                     await condition.wait()
 *                 item = buffer.pop(0)
 *                 print(f"{name} consumed {item}")
 *                 condition.notify()
 *             await asyncio.sleep(1)
 *     async def producer(condition, buffer, name, max_size):   # mirror image,
 *         ...  while len(buffer) >= max_size: ... wait()        # sleeps 0.5 s
 *     ...
 *     await asyncio.sleep(10)
 *     for task in [*consumers, *producers]: task.cancel()
 *     await asyncio.gather(*consumers, *producers, return_exceptions=True)
 *
 * Times scaled by 1/50: 1 s -> 20 ms, 0.5 s -> 10 ms, 10 s -> 200 ms. Each
 * producer numbers its own items, as in the seed. A cancelled
 * cosync_cond_wait returns with the lock held, so the task releases it
 * (what `async with` does). Exits 1 if the buffer ever held more than
 * max_size items, if an item was lost or duplicated, or if any task ended
 * other than cancelled.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define MAX_SIZE 2

typedef struct {
    int producer, n;
} item;

static cosync_cond condition = COSYNC_COND_INIT;
static item buffer[MAX_SIZE + 1]; /* one spare slot, so an overflow is detected, not a crash */
static int buffer_len = 0;
static int produced = 0, consumed = 0, overflows = 0;
static int next_expected[3]; /* per producer: the next item a consumer should see */
static bool in_order = true;

static int consumer(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    for (;;) {
        int rc = cosync_cond_acquire(&condition, COSYNC_FOREVER); /* async with condition: */
        if (rc != 0)
            return rc;
        while (buffer_len == 0 && rc == 0) { /* wait until the buffer has items */
            printf("Consumer %d is waiting for items\n", id);
            rc = cosync_cond_wait(&condition, COSYNC_FOREVER);
        }
        if (rc != 0) {
            cosync_cond_release(&condition);
            return rc;
        }
        item it = buffer[0]; /* consume an item */
        for (int i = 1; i < buffer_len; i++)
            buffer[i - 1] = buffer[i];
        buffer_len--;
        consumed++;
        in_order = in_order && it.n == next_expected[it.producer]++;
        printf("Consumer %d consumed Item %d (from Producer %d)\n", id, it.n, it.producer);
        cosync_cond_notify(&condition, 1); /* notify producers that there's space */
        cosync_cond_release(&condition);

        if ((rc = cosync_sleep(COSYNC_MS(20))) != 0) /* simulate processing time */
            return rc;
    }
}

static int producer(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    int counter = 0;
    (void)result;
    for (;;) {
        int rc = cosync_cond_acquire(&condition, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        while (buffer_len >= MAX_SIZE && rc == 0) { /* wait until there's space */
            printf("Producer %d is waiting for space\n", id);
            rc = cosync_cond_wait(&condition, COSYNC_FOREVER);
        }
        if (rc != 0) {
            cosync_cond_release(&condition);
            return rc;
        }
        if (buffer_len >= MAX_SIZE)
            overflows++;
        else
            buffer[buffer_len++] = (item){id, counter};
        produced++;
        printf("Producer %d produced Item %d\n", id, counter);
        counter++;
        cosync_cond_notify(&condition, 1); /* notify consumers that there's an item */
        cosync_cond_release(&condition);

        if ((rc = cosync_sleep(COSYNC_MS(10))) != 0) /* simulate production time */
            return rc;
    }
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[5]; /* consumers 0-1, producers 0-2 */
    cosync_outcome out[5];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 2; i++)
        if ((rc = cosync_task_spawn(&tasks[i], consumer, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = cosync_task_spawn(&tasks[2 + i], producer, (void *)(intptr_t)i, NULL)) != 0)
            return rc;

    if ((rc = cosync_sleep(COSYNC_MS(200))) != 0) /* let them run for a while */
        return rc;
    for (int i = 0; i < 5; i++) /* cancel all tasks */
        cosync_task_cancel(tasks[i]);
    if ((rc = cosync_gather(tasks, 5, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 5; i++)
        if (out[i].status != COSYNC_ECANCELED)
            return out[i].status != 0 ? out[i].status : COSYNC_EINVAL;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_condition_buffer: %s\n", cosync_strerror(rc));
        return 1;
    }
    printf("produced %d, consumed %d, left in the buffer %d\n", produced, consumed, buffer_len);
    bool ok = overflows == 0 && in_order && consumed > 0 && produced == consumed + buffer_len;
    return ok ? 0 : 1;
}
