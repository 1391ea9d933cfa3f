/*
 * sync_queue.c - seed 003, "Asyncio Queue: Producer-Consumer Patterns",
 * the basic example: three producers, two consumers, a bounded queue, and
 * a None per consumer as the stop signal.
 *
 *     async def producer(queue, producer_id):
 *         for i in range(5):
 *             item = f"P{producer_id}-{i}"
 *             await queue.put(item)
 *             print(f"Producer {producer_id} put {item}")
 *             await asyncio.sleep(random.uniform(0.1, 0.5))
 *     async def consumer(queue, consumer_id):
 *         while True:
 *             item = await queue.get()
 *             if item is None:  # None is a signal to stop
 *                 queue.task_done(); break
 *             print(f"Consumer {consumer_id} got {item}")
 *             await asyncio.sleep(random.uniform(0.2, 0.8))
 *             queue.task_done()
 *     ...
 *     queue = asyncio.Queue(maxsize=5)
 *     await asyncio.gather(*producers); await queue.join()
 *     for _ in range(len(consumers)): await queue.put(None)
 *     await asyncio.gather(*consumers)
 *
 * Items are a small struct copied into the queue; producer -1 is None.
 * Times scaled by 1/20 (5-25 ms and 10-40 ms) from a fixed-seed xorshift,
 * on the loop's virtual clock (cosync_run_with): some sleeps end at the
 * same instant, and only there do they tie as they do in asyncio, so
 * that the order of the lines is the seed's on every run.
 * Exits 1 unless each of the 15 items was consumed exactly once.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

typedef struct {
    int producer, i;
} item; /* producer == -1: None */

static cosync_queue queue;
static int seen[3][5];

static uint32_t rng = 2463534242u;

static int64_t uniform_ms(int lo_ms, int hi_ms) /* random.uniform, fixed seed */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return COSYNC_US(lo_ms * 1000 + (int64_t)(rng % (uint32_t)((hi_ms - lo_ms) * 1000 + 1)));
}

static int producer(void *arg, void **result)
{
    int producer_id = (int)(intptr_t)arg;
    (void)result;
    for (int i = 0; i < 5; i++) {
        item it = {producer_id, i};
        int rc = cosync_queue_put(&queue, &it, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        printf("Producer %d put P%d-%d\n", producer_id, producer_id, i);
        if ((rc = cosync_sleep(uniform_ms(5, 25))) != 0) /* variable production time */
            return rc;
    }
    printf("Producer %d finished\n", producer_id);
    return 0;
}

static int consumer(void *arg, void **result)
{
    int consumer_id = (int)(intptr_t)arg;
    (void)result;
    for (;;) {
        item it;
        int rc = cosync_queue_get(&queue, &it, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        if (it.producer < 0) { /* None is a signal to stop */
            printf("Consumer %d received stop signal\n", consumer_id);
            if ((rc = cosync_queue_task_done(&queue)) != 0)
                return rc; /* COSYNC_EOVERFLOW: Python's ValueError, too many calls */
            break;
        }
        printf("Consumer %d got P%d-%d\n", consumer_id, it.producer, it.i);
        seen[it.producer][it.i]++;
        if ((rc = cosync_sleep(uniform_ms(10, 40))) != 0) /* processing time */
            return rc;
        if ((rc = cosync_queue_task_done(&queue)) != 0) /* mark the item as done */
            return rc;
    }
    printf("Consumer %d finished\n", consumer_id);
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task producers[3], consumers[2];
    cosync_outcome out[3];
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_queue_init(&queue, sizeof(item), 5)) != 0) /* max size 5 */
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = cosync_task_spawn(&producers[i], producer, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    for (int i = 0; i < 2; i++)
        if ((rc = cosync_task_spawn(&consumers[i], consumer, (void *)(intptr_t)i, NULL)) != 0)
            return rc;

    if ((rc = cosync_gather(producers, 3, out, COSYNC_FOREVER)) != 0) /* producers finish */
        return rc;
    for (int i = 0; i < 3; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    if ((rc = cosync_queue_join(&queue, COSYNC_FOREVER)) != 0) /* all items processed */
        return rc;
    for (int i = 0; i < 2; i++) { /* stop signals */
        item none = {-1, 0};
        if ((rc = cosync_queue_put(&queue, &none, COSYNC_FOREVER)) != 0)
            return rc;
    }
    if ((rc = cosync_gather(consumers, 2, out, COSYNC_FOREVER)) != 0) /* consumers finish */
        return rc;
    for (int i = 0; i < 2; i++)
        if (out[i].status != 0)
            return out[i].status;
    return cosync_queue_destroy(&queue);
}

int main(void)
{
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "sync_queue: %s\n", cosync_strerror(rc));
        return 1;
    }
    for (int p = 0; p < 3; p++)
        for (int i = 0; i < 5; i++)
            if (seen[p][i] != 1) {
                fprintf(stderr, "P%d-%d consumed %d times\n", p, i, seen[p][i]);
                return 1;
            }
    return 0;
}
