/*
 * loop_callbacks.c - plain functions scheduled on the loop: the asyncio
 * docs' two callback examples, a watchdog, and the done callbacks of a
 * future and of fire-and-forget tasks. As asyncio writes them:
 *
 *     def hello_world(loop):                  # "Hello World with call_soon()"
 *         print('Hello World')
 *         loop.stop()
 *
 *     loop = asyncio.new_event_loop()
 *     loop.call_soon(hello_world, loop)
 *     loop.run_forever()
 *
 *     def display_date(end_time, loop):       # "Display the current date
 *         print(f"[{loop.time() - start:.1f}] tick")   #  with call_later()"
 *         if (loop.time() + 1.0) < end_time:
 *             loop.call_later(1, display_date, end_time, loop)
 *         else:
 *             loop.stop()
 *
 *     loop.call_soon(display_date, loop.time() + 5.0, loop)
 *     loop.run_forever()
 *
 *     async def work(name, seconds):          # a watchdog per job
 *         task = asyncio.current_task()
 *         dog = loop.call_later(2.0, task.cancel)
 *         try:
 *             await asyncio.sleep(seconds)
 *             print(f"[{loop.time() - start:.1f}] {name}: done")
 *         except asyncio.CancelledError:
 *             print(f"[{loop.time() - start:.1f}] {name}: cancelled by the watchdog")
 *         finally:
 *             dog.cancel()
 *
 *     loop.run_until_complete(asyncio.gather(work("quick", 1), work("stuck", 5)))
 *
 *     async def set_after(fut, delay, value):  # the docs' Future example,
 *         await asyncio.sleep(delay)           # with a done callback
 *         fut.set_result(value)
 *
 *     async def main():
 *         fut = loop.create_future()
 *         fut.add_done_callback(lambda f: print(f"[{loop.time() - start:.1f}] "
 *                                               f"done callback: {f.result()}"))
 *         loop.create_task(set_after(fut, 1, '... world'))
 *         print('hello ...')
 *         print(await fut)
 *
 *     async def fetch(i):                     # fire-and-forget tasks,
 *         await asyncio.sleep(i * 0.5)         # each reported by its
 *         if i == 2:                           # done callback
 *             raise ConnectionResetError
 *         return i * 10
 *
 *     def report(task):
 *         background_tasks.discard(task)
 *         if task.exception() is not None:
 *             print(f"[{loop.time() - start:.1f}] fetch failed: {task.exception()!r}")
 *         else:
 *             print(f"[{loop.time() - start:.1f}] fetch done: {task.result()}")
 *         if not background_tasks:
 *             all_done.set()
 *
 *     async def main():
 *         for i in range(1, 4):
 *             task = asyncio.create_task(fetch(i))
 *             background_tasks.add(task)
 *             task.add_done_callback(report)
 *         print(f"{len(background_tasks)} fetches in the background")
 *         await all_done.wait()
 *         print(f"[{loop.time() - start:.1f}] all reported")
 *
 * A callback runs in the loop's own context, not in a task: it cannot
 * suspend, but may stop the loop, schedule itself again, or cancel a task.
 * It prints what the Python program prints (times from the start of each
 * part; a failure by its code's name, where Python prints the exception),
 * on the loop's virtual clock. Exits 1 unless each part ran as
 * described.
 */
#include <cosync.h>

#include <stdio.h>

static cosync_loop *loop;
static int64_t start;

static double since_start(void)
{
    return (double)(cosync_loop_now(loop) - start) / 1e9;
}

/* ---- Hello World with call_soon() ------------------------------------ */

static void hello_world(void *arg)
{
    printf("Hello World\n");
    cosync_loop_stop(arg);
}

/* ---- Display the time with call_later() ------------------------------ */

static cosync_callback tick_cb;
static int64_t end_time;
static int ticks;

static void display_date(void *arg)
{
    (void)arg;
    printf("[%.1f] tick\n", since_start());
    ticks++;
    if (cosync_loop_now(loop) + COSYNC_SEC(1) < end_time)
        cosync_loop_call_later(loop, &tick_cb, COSYNC_SEC(1), display_date, NULL);
    else
        cosync_loop_stop(loop);
}

/* ---- A watchdog per job --------------------------------------------- */

typedef struct job {
    const char *name;
    int64_t seconds;
    cosync_task self;
    cosync_callback dog;
    int status;
} job;

static void bite(void *arg)
{
    job *j = arg;
    cosync_task_cancel(j->self);
}

static int work(void *arg, void **result)
{
    (void)result;
    job *j = arg;
    j->self = cosync_task_current();
    int rc = cosync_loop_call_later(loop, &j->dog, COSYNC_SEC(2), bite, j);
    if (rc != 0)
        return rc;
    rc = cosync_sleep(COSYNC_SEC(j->seconds));
    if (rc == 0)
        printf("[%.1f] %s: done\n", since_start(), j->name);
    else if (rc == COSYNC_ECANCELED)
        printf("[%.1f] %s: cancelled by the watchdog\n", since_start(), j->name);
    cosync_callback_cancel(&j->dog); /* COSYNC_EALREADY once it has bitten */
    return rc;
}

/* ---- A future's done callback ---------------------------------------- */

static cosync_future fut;
static cosync_callback on_done;
static int done_seen;

static void print_result(void *arg)
{
    void *value = NULL;
    cosync_future_result(arg, &value);
    printf("[%.1f] done callback: %s\n", since_start(), (const char *)value);
    done_seen++;
}

static int set_after(void *arg, void **result)
{
    (void)result;
    int rc = cosync_sleep(COSYNC_SEC(1));
    return rc ? rc : cosync_future_set_result(&fut, arg);
}

static int future_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_future_init(&fut);
    int rc = cosync_future_add_done_callback(&fut, &on_done, print_result, &fut);
    if (rc == 0)
        rc = cosync_task_spawn(NULL, set_after, "... world", NULL);
    if (rc != 0)
        return rc;
    printf("hello ...\n");
    rc = cosync_future_wait(&fut, COSYNC_FOREVER);
    void *value = NULL;
    cosync_future_result(&fut, &value);
    printf("%s\n", (const char *)value);
    return rc;
}

/* ---- Background tasks reported by their done callbacks ---------------- */

/* The callback's record travels with what it reports on: the task is
 * detached (the loop frees it as it finishes), and the record keeps its
 * outcome for the callback. */
typedef struct fetch_job {
    cosync_callback done;
    int i;
} fetch_job;

static fetch_job fetches[3];
static int background_tasks; /* the set: only its size matters here */
static cosync_event all_done;
static int reports;

static int fetch(void *arg, void **result)
{
    fetch_job *f = arg;
    int rc = cosync_sleep(f->i * COSYNC_MS(500));
    if (rc != 0)
        return rc;
    if (f->i == 2)
        return COSYNC_ECONNRESET;
    *result = (void *)(intptr_t)(f->i * 10);
    return 0;
}

static void report(void *arg)
{
    fetch_job *f = arg;
    int status = 0;
    void *value = NULL;
    background_tasks--;
    cosync_callback_outcome(&f->done, &status, &value);
    if (status != 0)
        printf("[%.1f] fetch failed: %s\n", since_start(), cosync_err_name(status));
    else
        printf("[%.1f] fetch done: %d\n", since_start(), (int)(intptr_t)value);
    reports++;
    if (background_tasks == 0)
        cosync_event_set(&all_done);
}

static int background_main(void *arg, void **result)
{
    (void)arg, (void)result;
    cosync_event_init(&all_done);
    for (int i = 1; i <= 3; i++) {
        fetch_job *f = &fetches[i - 1];
        f->i = i;
        cosync_task task;
        int rc = cosync_task_spawn(&task, fetch, f, NULL);
        if (rc != 0)
            return rc;
        background_tasks++;
        rc = cosync_task_add_done_callback(task, &f->done, report, f);
        if (rc == 0)
            rc = cosync_task_detach(task);
        if (rc != 0)
            return rc;
    }
    printf("%d fetches in the background\n", background_tasks);
    int rc = cosync_event_wait(&all_done, COSYNC_FOREVER);
    printf("[%.1f] all reported\n", since_start());
    return rc;
}

static job jobs[2] = {{.name = "quick", .seconds = 1}, {.name = "stuck", .seconds = 5}};

int main(void)
{
    if (cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}) != 0)
        return 1;
    int failures = 0;

    /* each run ends at its stop; it returns 0, not COSYNC_EINTR, as
     * nothing is left to run once the callback has stopped it */
    cosync_callback hello = COSYNC_CALLBACK_INIT;
    cosync_loop_call_soon(loop, &hello, hello_world, loop);
    failures += cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL) != 0;

    start = cosync_loop_now(loop);
    end_time = start + COSYNC_SEC(5);
    cosync_loop_call_soon(loop, &tick_cb, display_date, NULL);
    failures += cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL) != 0;
    failures += ticks != 5 || cosync_loop_now(loop) - start != COSYNC_SEC(4);

    start = cosync_loop_now(loop);
    cosync_task t[2];
    for (int i = 0; i < 2; i++)
        failures += cosync_loop_spawn(loop, &t[i], work, &jobs[i], NULL) != 0;
    for (int i = 0; i < 2; i++) {
        failures += cosync_loop_run(loop, t[i], &jobs[i].status, NULL) != 0;
        failures += cosync_callback_pending(&jobs[i].dog);
    }
    failures += jobs[0].status != 0 || jobs[1].status != COSYNC_ECANCELED;
    failures += cosync_loop_now(loop) - start != COSYNC_SEC(2);

    /* the callback came to the future before the main task's wait: it
     * runs first, as in asyncio */
    start = cosync_loop_now(loop);
    cosync_task m;
    failures += cosync_loop_spawn(loop, &m, future_main, NULL, NULL) != 0;
    int status = -1;
    failures += cosync_loop_run(loop, m, &status, NULL) != 0 || status != 0 || done_seen != 1;

    /* each task's callback runs once the task has finished; the last one
     * wakes the main task */
    start = cosync_loop_now(loop);
    failures += cosync_loop_spawn(loop, &m, background_main, NULL, NULL) != 0;
    failures += cosync_loop_run(loop, m, &status, NULL) != 0 || status != 0 || reports != 3;
    failures += cosync_loop_now(loop) - start != COSYNC_MS(1500);

    failures += cosync_loop_destroy(loop) != 0;
    if (failures) {
        fprintf(stderr, "loop_callbacks: %d part(s) ran otherwise than expected\n", failures);
        return 1;
    }
    return 0;
}
