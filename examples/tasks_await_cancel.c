/*
 * tasks_await_cancel.c - `await task` passes a cancellation on: request
 * handlers await backend jobs; a handler whose client goes away, or whose
 * time runs out, cancels the job it awaits, and a job shared by two
 * handlers is cancelled for both. As asyncio writes it:
 *
 *     async def backend(name, secs):
 *         try:
 *             await asyncio.sleep(secs)
 *             return f"{name} result"
 *         except asyncio.CancelledError:
 *             print(f"{name}: cancelled, cleaning up")
 *             await asyncio.sleep(0.01)
 *             print(f"{name}: cleaned up")
 *             raise
 *
 *     async def handler(name, job, timeout):
 *         try:
 *             async with asyncio.timeout(timeout):
 *                 r = await job
 *             print(f"{name}: got {r}")
 *         except TimeoutError:
 *             print(f"{name}: timed out")
 *         except asyncio.CancelledError:
 *             print(f"{name}: cancelled")
 *             raise
 *
 *     async def main():
 *         fast = asyncio.create_task(backend("fast", 0.02), name="fast")
 *         slow = asyncio.create_task(backend("slow", 10), name="slow")
 *         shared = asyncio.create_task(backend("shared", 10), name="shared")
 *         hs = [asyncio.create_task(handler("h1", fast, 1)),
 *               asyncio.create_task(handler("h2", slow, 0.05)),
 *               asyncio.create_task(handler("h3", shared, 10)),
 *               asyncio.create_task(handler("h4", shared, 10))]
 *         await asyncio.sleep(0.03)
 *         print("main: h3's client went away")
 *         hs[2].cancel()
 *         await asyncio.gather(*hs, return_exceptions=True)
 *         for t in (fast, slow, shared):
 *             print(f"{t.get_name()}: " +
 *                   ("cancelled" if t.cancelled() else t.result()))
 *
 * cosync_task_await is that `await job`: cancelled (h3) or at its deadline
 * (h2), it cancels the job and waits for the job's clean-up to end. h4,
 * which awaits the same job, sees it end cancelled, as its `await` raises
 * CancelledError in asyncio. (cosync_task_wait would leave the job running:
 * asyncio's `await shield(job)`.) main collects the jobs at the end. It
 * prints what the Python program prints on 3.11, 3.12 and 3.13, and runs
 * on the loop's virtual clock, so the order never depends on the
 * machine's speed. Exits 1 unless each handler and job ended as above.
 */
#include <cosync.h>

#include <stdio.h>
#include <string.h>

typedef struct job {
    const char *name;
    int ms;
    char result[32];
} job;

typedef struct handler_arg {
    const char *name;
    cosync_task *job;
    int timeout_ms;
} handler_arg;

static int backend(void *arg, void **result)
{
    job *j = arg;
    int rc = cosync_sleep(COSYNC_MS(j->ms));
    if (rc == COSYNC_ECANCELED) {
        printf("%s: cancelled, cleaning up\n", j->name);
        cosync_sleep(COSYNC_MS(10));
        printf("%s: cleaned up\n", j->name);
        return COSYNC_ECANCELED;
    }
    if (rc != 0)
        return rc;
    snprintf(j->result, sizeof j->result, "%s result", j->name);
    *result = j->result;
    return 0;
}

static int handler(void *arg, void **result)
{
    (void)result;
    const handler_arg *h = arg;
    int status = 0;
    void *r = NULL;
    int rc =
        cosync_task_await(*h->job, &status, &r, cosync_deadline_after(COSYNC_MS(h->timeout_ms)));
    if (rc == COSYNC_ETIMEDOUT) {
        printf("%s: timed out\n", h->name);
        return 0;
    }
    /* its own cancellation, or the job's: `await job` raises CancelledError */
    if (rc == COSYNC_ECANCELED || (rc == 0 && status == COSYNC_ECANCELED)) {
        printf("%s: cancelled\n", h->name);
        return COSYNC_ECANCELED;
    }
    if (rc != 0 || status != 0)
        return rc ? rc : status;
    printf("%s: got %s\n", h->name, (const char *)r);
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)result;
    int *ended = arg; /* each handler's and job's status, in order */
    static job jobs[3] = {{"fast", 20, ""}, {"slow", 10000, ""}, {"shared", 10000, ""}};
    cosync_task jt[3], ht[4];
    for (int i = 0; i < 3; i++) {
        int rc =
            cosync_task_spawn(&jt[i], backend, &jobs[i], &(cosync_task_opts){.name = jobs[i].name});
        if (rc != 0)
            return rc;
    }
    const handler_arg hs[4] = {
        {"h1", &jt[0], 1000}, {"h2", &jt[1], 50}, {"h3", &jt[2], 10000}, {"h4", &jt[2], 10000}};
    for (int i = 0; i < 4; i++) {
        int rc = cosync_task_spawn(&ht[i], handler, (void *)&hs[i], NULL);
        if (rc != 0)
            return rc;
    }
    int rc = cosync_sleep(COSYNC_MS(30));
    if (rc != 0)
        return rc;
    printf("main: h3's client went away\n");
    cosync_task_cancel(ht[2]);
    cosync_outcome out[4];
    rc = cosync_gather(ht, 4, out, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 4; i++)
        ended[i] = out[i].status;
    for (int i = 0; i < 3; i++) {
        int status;
        void *r;
        rc = cosync_task_join(jt[i], &status, &r, COSYNC_FOREVER);
        if (rc != 0)
            return rc;
        printf("%s: %s\n", jobs[i].name,
               status == COSYNC_ECANCELED ? "cancelled" : (const char *)r);
        ended[4 + i] = status;
    }
    return 0;
}

int main(void)
{
    int ended[7];
    int rc = cosync_run_with(main_task, ended, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "tasks_await_cancel: %s\n", cosync_strerror(rc));
        return 1;
    }
    static const int want[7] = {
        0, 0, COSYNC_ECANCELED, COSYNC_ECANCELED, 0, COSYNC_ECANCELED, COSYNC_ECANCELED};
    if (memcmp(ended, want, sizeof want) != 0) {
        fprintf(stderr, "tasks_await_cancel: a handler or job ended otherwise than expected\n");
        return 1;
    }
    return 0;
}
