/*
 * ch6_producer_consumer.c - seed 000, 6.2 "Producer-Consumer Using
 * asyncio.Queue".
 *
 *     async def producer(queue):
 *         for i in range(5):
 *             await asyncio.sleep(1)  # Simulate work
 *             await queue.put(f"Task {i}")
 *             print(f"Produced: Task {i}")
 *     async def consumer(queue):
 *         while True:
 *             task = await queue.get()
 *             print(f"Consumed: {task}")
 *             queue.task_done()  # Mark task as processed
 *     ...
 *     await asyncio.sleep(6)  # Allow tasks to be produced and consumed
 *     for c in consumers:
 *         c.cancel()  # Stop consumers after processing
 *
 * The seed's seconds, on the loop's virtual clock (cosync_run_with, virtual
 * clock option): time jumps ahead whenever every task waits, so the program
 * ends at once, and the 6 s that main allows always cover the producer's
 * five 1 s sleeps, as they do in asyncio (on the real clock, scaled down
 * to milliseconds, a loaded machine could stretch the producer's sleeps
 * past main's margin). Items are fixed-size strings copied into the queue. Difference: after
 * cancelling the consumers, main gathers them (asyncio.run would cancel and wait for them anyway)
 * and checks that both ended cancelled (not on an error of their own) and
 * that all five items were consumed, in order; exits 1 otherwise.
 */
#include <cosync.h>

#include <stdio.h>
#include <string.h>

typedef struct {
    char text[16];
} item;

static cosync_queue queue;
static int consumed = 0;
static bool in_order = true;

static int producer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (int i = 0; i < 5; i++) {
        int rc = cosync_sleep(COSYNC_SEC(1)); /* simulate work */
        if (rc != 0)
            return rc;
        item it;
        snprintf(it.text, sizeof it.text, "Task %d", i);
        if ((rc = cosync_queue_put(&queue, &it, COSYNC_FOREVER)) != 0)
            return rc;
        printf("Produced: %s\n", it.text);
    }
    return 0;
}

static int consumer(void *arg, void **result)
{
    (void)arg;
    (void)result;
    for (;;) {
        item it, want;
        int rc = cosync_queue_get(&queue, &it, COSYNC_FOREVER);
        if (rc != 0)
            return rc; /* COSYNC_ECANCELED: stopped by main */
        printf("Consumed: %s\n", it.text);
        snprintf(want.text, sizeof want.text, "Task %d", consumed++);
        in_order = in_order && strcmp(it.text, want.text) == 0;
        if ((rc = cosync_queue_task_done(&queue)) != 0) /* mark task as processed */
            return rc; /* COSYNC_EOVERFLOW: Python's ValueError, too many calls */
    }
}

static int main_task(void *arg, void **result)
{
    cosync_task producers[1], consumers[2];
    cosync_outcome out[2];
    int rc;
    (void)arg;
    (void)result;
    if ((rc = cosync_queue_init(&queue, sizeof(item), 0)) != 0)
        return rc;
    if ((rc = cosync_task_spawn(&producers[0], producer, NULL, NULL)) != 0)
        return rc;
    for (int i = 0; i < 2; i++) /* 2 consumers */
        if ((rc = cosync_task_spawn(&consumers[i], consumer, NULL, NULL)) != 0)
            return rc;

    if ((rc = cosync_sleep(COSYNC_SEC(6))) != 0) /* allow items to be produced and consumed */
        return rc;
    for (int i = 0; i < 2; i++)
        cosync_task_cancel(consumers[i]); /* stop consumers after processing */

    if ((rc = cosync_gather(consumers, 2, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 2; i++)
        if (out[i].status != COSYNC_ECANCELED) /* stopped by its own error, not the cancel */
            return out[i].status;
    if ((rc = cosync_task_join(producers[0], NULL, NULL, COSYNC_FOREVER)) != 0)
        return rc;
    return cosync_queue_destroy(&queue);
}

int main(void)
{
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "ch6_producer_consumer: %s\n", cosync_strerror(rc));
        return 1;
    }
    if (consumed != 5 || !in_order) {
        fprintf(stderr, "expected Task 0..4 consumed in order, got %d item(s)%s\n", consumed,
                in_order ? "" : " out of order");
        return 1;
    }
    return 0;
}
