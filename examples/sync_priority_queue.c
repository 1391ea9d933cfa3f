/*
 * sync_priority_queue.c - seed 003, "Priority Queue": three workers take
 * tasks by priority; a counter breaks ties, first in first out.
 *
 *     async def put(self, item, priority=0):
 *         async with self._lock:
 *             count = self._counter    # Use counter to break ties
 *             self._counter += 1
 *             heapq.heappush(self._queue, (priority, count, item))
 *             self._not_empty.notify()
 *     ...
 *     tasks = [(3, "High priority 1"), (1, "Low priority 1"), (2, "Medium priority 1"),
 *              (3, "High priority 2"), (1, "Low priority 2"), (2, "Medium priority 2")]
 *     for priority, task_id in tasks:
 *         await queue.put((priority, task_id))
 *     await asyncio.sleep(5)
 *     for _ in range(len(workers)): await queue.put(None)
 *
 * The seed's heap-on-a-Condition is cosync_priorityqueue_init with a
 * comparator on (priority, count), the seed's tie-break made explicit
 * (cosync's priority queue also keeps equal elements FIFO by itself).
 * Deliberate difference: the seed passes the pair as `item`, so every entry
 * gets the default priority 0 and comes out FIFO, and heapq would pop the
 * smallest number ("Low") first; here the number is the priority and the
 * larger comes out first, as the task names intend. None is an entry with
 * `stop` set and the lowest priority. Times scaled by 1/20: 0.5 s of work
 * -> 25 ms, 5 s -> 100 ms. Exits 1 unless the tasks were taken in the
 * order High 1, High 2, Medium 1, Medium 2, Low 1, Low 2.
 */
#include <cosync.h>

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

typedef struct entry {
    int priority;
    uint64_t count; /* the tie-break: order of the puts */
    bool stop;      /* None */
    char task_id[24];
} entry;

static cosync_queue queue;
static uint64_t counter = 0;
static char taken[6][24]; /* the task ids, in the order they were taken */
static int ntaken = 0;

/* < 0 if a comes out first: the larger priority, then the smaller count. */
static int by_priority_then_count(const void *a, const void *b, void *arg)
{
    const entry *x = a, *y = b;
    (void)arg;
    if (x->priority != y->priority)
        return x->priority > y->priority ? -1 : 1;
    return x->count < y->count ? -1 : x->count > y->count;
}

static int put(const char *task_id, int priority, bool stop)
{
    entry e = {priority, counter++, stop, ""};
    if (task_id)
        snprintf(e.task_id, sizeof e.task_id, "%s", task_id);
    return cosync_queue_put(&queue, &e, COSYNC_FOREVER);
}

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    (void)result;
    for (;;) {
        entry e;
        int rc = cosync_queue_get(&queue, &e, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        if (e.stop) { /* None is a signal to exit */
            printf("Worker %d shutting down\n", worker_id);
            return 0;
        }
        printf("Worker %d processing task %s with priority %d\n", worker_id, e.task_id, e.priority);
        if (ntaken < 6)
            snprintf(taken[ntaken++], sizeof taken[0], "%s", e.task_id);
        if ((rc = cosync_sleep(COSYNC_MS(25))) != 0) /* simulate processing time */
            return rc;
    }
}

static int main_task(void *arg, void **result)
{
    static const struct {
        int priority;
        const char *task_id;
    } tasks[6] = {
        {3, "High priority 1"}, {1, "Low priority 1"}, {2, "Medium priority 1"},
        {3, "High priority 2"}, {1, "Low priority 2"}, {2, "Medium priority 2"},
    };
    cosync_task workers[3];
    cosync_outcome out[3];
    int rc;
    (void)arg;
    (void)result;
    rc = cosync_priorityqueue_init(&queue, sizeof(entry), 0, by_priority_then_count, NULL);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 3; i++)
        if ((rc = cosync_task_spawn(&workers[i], worker, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    for (int i = 0; i < 6; i++) /* put tasks in the queue */
        if ((rc = put(tasks[i].task_id, tasks[i].priority, false)) != 0)
            return rc;
    if ((rc = cosync_sleep(COSYNC_MS(100))) != 0) /* let workers process for a while */
        return rc;
    for (int i = 0; i < 3; i++) /* signal workers to exit */
        if ((rc = put(NULL, INT_MIN, true)) != 0)
            return rc;
    if ((rc = cosync_gather(workers, 3, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 3; i++)
        if (out[i].status != 0)
            return out[i].status;
    return cosync_queue_destroy(&queue);
}

int main(void)
{
    static const char *const expected[6] = {"High priority 1",   "High priority 2",
                                            "Medium priority 1", "Medium priority 2",
                                            "Low priority 1",    "Low priority 2"};
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_priority_queue: %s\n", cosync_strerror(rc));
        return 1;
    }
    if (ntaken != 6)
        return 1;
    for (int i = 0; i < 6; i++)
        if (strcmp(taken[i], expected[i]) != 0)
            return 1;
    return 0;
}
