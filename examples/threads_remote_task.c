/*
 * threads_remote_task.c - a plain thread starts tasks on a loop and waits
 * for their results: the asyncio docs' example of
 * run_coroutine_threadsafe, with its timeout and cancel.
 *
 *     def in_thread(loop):
 *         # Submit the coroutine to a given loop, wait for the result
 *         future = asyncio.run_coroutine_threadsafe(asyncio.sleep(0.01, result=3), loop)
 *         print(f"The coroutine returned: {future.result(10)!r}")
 *
 *         future = asyncio.run_coroutine_threadsafe(asyncio.sleep(60, result=4), loop)
 *         try:
 *             result = future.result(0.05)
 *         except TimeoutError:
 *             print("The coroutine took too long, cancelling the task...")
 *             future.cancel()
 *         else:
 *             print(f"The coroutine returned: {result!r}")
 *
 *     async def main():
 *         loop = asyncio.get_running_loop()
 *         await asyncio.to_thread(in_thread, loop)
 *
 * The thread is a plain pthread here, and the main task waits for it on an
 * event that the thread's last call into the loop sets; the loop holds a
 * reference meanwhile (cosync_loop_ref), so that it waits for the thread
 * instead of reporting a deadlock. The cancel reaches the task through a
 * call into the loop; the thread then waits for the task's end, which
 * says how it ended (asyncio's future would say "cancelled" at once).
 * Real time: the loop sleeps for real. Exits 1 unless each step went as
 * described.
 */
#include <cosync.h>

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>

typedef struct sleep_job {
    int64_t delay;
    intptr_t result;
} sleep_job;

/* asyncio.sleep(delay, result=...) */
static int sleep_with_result(void *arg, void **result)
{
    sleep_job *j = arg;
    int rc = cosync_sleep(j->delay);
    if (rc == 0)
        *result = (void *)j->result;
    return rc;
}

typedef struct world {
    cosync_loop *loop;
    cosync_event thread_done;
    cosync_call done_call;
    int failures;
} world;

static void set_done(void *arg)
{
    cosync_event_set(arg);
}

static void *in_thread(void *arg)
{
    world *w = arg;
    cosync_remote r = {0};
    sleep_job quick = {COSYNC_MS(10), 3}, slow = {COSYNC_SEC(60), 4};

    void *value = NULL;
    int status = -1;
    int rc = cosync_loop_spawn_threadsafe(w->loop, &r, sleep_with_result, &quick, NULL);
    if (rc == 0)
        rc = cosync_remote_wait(&r, &status, &value, cosync_deadline_after(COSYNC_SEC(10)));
    if (rc == 0 && status == 0)
        printf("The coroutine returned: %d\n", (int)(intptr_t)value);
    w->failures += rc != 0 || status != 0 || value != (void *)3;
    if (rc == 0)
        cosync_remote_destroy(&r);

    rc = cosync_loop_spawn_threadsafe(w->loop, &r, sleep_with_result, &slow, NULL);
    if (rc == 0)
        rc = cosync_remote_wait(&r, &status, &value, cosync_deadline_after(COSYNC_MS(50)));
    if (rc == COSYNC_ETIMEDOUT) {
        printf("The coroutine took too long, cancelling the task...\n");
        cosync_remote_cancel(&r);
        rc = cosync_remote_wait(&r, &status, &value, COSYNC_FOREVER);
        printf("It ended: %s\n", cosync_err_name(status));
        w->failures += rc != 0 || status != COSYNC_ECANCELED;
    } else {
        w->failures++;
    }
    cosync_remote_destroy(&r);

    cosync_loop_call_threadsafe(w->loop, &w->done_call, set_done, &w->thread_done);
    return NULL;
}

static int amain(void *arg, void **result)
{
    (void)result;
    world *w = arg;
    w->loop = cosync_loop_current();
    cosync_event_init(&w->thread_done);
    cosync_loop_ref(w->loop); /* the thread's calls are coming */
    pthread_t th;
    if (pthread_create(&th, NULL, in_thread, w) != 0)
        return COSYNC_ENOMEM;
    int rc = cosync_event_wait(&w->thread_done, COSYNC_FOREVER);
    cosync_loop_unref(w->loop);
    pthread_join(th, NULL); /* it has made its last call */
    return rc;
}

int main(void)
{
    world w = {0};
    int rc = cosync_run(amain, &w);
    if (rc != 0 || w.failures) {
        fprintf(stderr, "threads_remote_task: %s, %d step(s) went otherwise\n", cosync_err_name(rc),
                w.failures);
        return 1;
    }
    return 0;
}
