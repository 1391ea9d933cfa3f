/*
 * sync_worker_pool_shutdown.c - seed 003, "Real-World Example: Worker Pool
 * with Event-Based Shutdown".
 *
 *     while not self.shutdown_event.is_set():
 *         try:
 *             task = await asyncio.wait_for(self.queue.get(), timeout=0.5)
 *             if not self.shutdown_event.is_set():
 *                 print(f"Worker {worker_id} processing task: {task}")
 *                 await asyncio.sleep(0.5)  # Simulate work
 *                 self.queue.task_done()
 *             else:
 *                 await self.queue.put(task)  # Put the task back
 *                 break
 *         except asyncio.TimeoutError:
 *             if self.shutdown_event.is_set():
 *                 break
 *     ...
 *     pool = WorkerPool(3); await pool.start()
 *     for i in range(10): await pool.add_task(f"Task {i}")
 *     await asyncio.sleep(2)
 *     await pool.shutdown()   # shutdown_event.set(); gather(*workers)
 *
 * Times scaled by 1/20: the 0.5 s get timeout and 0.5 s of work become
 * 25 ms, main's 2 s becomes 100 ms. wait_for(queue.get(), t) is a get with
 * a deadline (COSYNC_ETIMEDOUT is TimeoutError). So a worker that finds an
 * item takes it without suspending, and prints "processing" right after
 * "started"; Python 3.11's wait_for wraps the get in a new task, which
 * suspends once, so there all three workers print "started" first (3.12
 * prints this program's order). The seed's second main,
 * with SIGINT/SIGTERM handlers, is left out: examples/io_echo_server.c
 * shows that pattern (a task in cosync_signal_wait starts the shutdown).
 * Exits 1 unless all ten tasks were processed and every worker ended.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

typedef struct {
    char text[16];
} job;

static struct worker_pool {
    int num_workers;
    cosync_queue queue;
    cosync_event shutdown_event;
    cosync_task workers[3];
} pool = {.num_workers = 3, .shutdown_event = COSYNC_EVENT_INIT};

static int processed = 0;

static int worker(void *arg, void **result)
{
    int worker_id = (int)(intptr_t)arg;
    (void)result;
    printf("Worker %d started\n", worker_id);
    while (!cosync_event_is_set(&pool.shutdown_event)) {
        job task;
        /* try to get a task with a timeout */
        int rc = cosync_queue_get(&pool.queue, &task, cosync_deadline_after(COSYNC_MS(25)));
        if (rc == COSYNC_ETIMEDOUT) {
            if (cosync_event_is_set(&pool.shutdown_event)) /* should we shut down? */
                break;
            continue;
        }
        if (rc != 0)
            return rc;
        if (!cosync_event_is_set(&pool.shutdown_event)) {
            printf("Worker %d processing task: %s\n", worker_id, task.text);
            if ((rc = cosync_sleep(COSYNC_MS(25))) != 0) /* simulate work */
                return rc;
            processed++;
            if ((rc = cosync_queue_task_done(&pool.queue)) != 0)
                return rc; /* COSYNC_EOVERFLOW: Python's ValueError, too many calls */
        } else {
            /* put the task back if shutting down */
            if ((rc = cosync_queue_put(&pool.queue, &task, COSYNC_FOREVER)) != 0)
                return rc;
            break;
        }
    }
    printf("Worker %d shutting down\n", worker_id);
    return 0;
}

static int pool_start(void)
{
    int rc = cosync_queue_init(&pool.queue, sizeof(job), 0);
    for (int i = 0; i < pool.num_workers && rc == 0; i++)
        rc = cosync_task_spawn(&pool.workers[i], worker, (void *)(intptr_t)i, NULL);
    return rc;
}

static int pool_add_task(const job *task)
{
    return cosync_queue_put(&pool.queue, task, COSYNC_FOREVER);
}

static int pool_shutdown(void)
{
    cosync_outcome out[3];
    printf("Shutting down worker pool\n");
    cosync_event_set(&pool.shutdown_event); /* signal all workers to shut down */
    int rc = cosync_gather(pool.workers, (size_t)pool.num_workers, out, COSYNC_FOREVER);
    for (int i = 0; i < pool.num_workers && rc == 0; i++)
        rc = out[i].status;
    printf("Worker pool shut down complete\n");
    return rc;
}

static int main_task(void *arg, void **result)
{
    int rc;
    (void)arg;
    (void)result;
    if ((rc = pool_start()) != 0)
        return rc;
    for (int i = 0; i < 10; i++) { /* add some tasks */
        job task;
        snprintf(task.text, sizeof task.text, "Task %d", i);
        if ((rc = pool_add_task(&task)) != 0)
            return rc;
    }
    if ((rc = cosync_sleep(COSYNC_MS(100))) != 0) /* run for a bit */
        return rc;
    if ((rc = pool_shutdown()) != 0) /* shut down cleanly */
        return rc;
    return cosync_queue_destroy(&pool.queue);
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_worker_pool_shutdown: %s\n", cosync_strerror(rc));
        return 1;
    }
    return processed == 10 ? 0 : 1;
}
