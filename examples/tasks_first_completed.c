/*
 * tasks_first_completed.c - asyncio.wait(return_when=FIRST_COMPLETED) and
 * as_completed: ask three mirrors for the same file, take the first answer,
 * cancel the rest; then fetch four files and handle each as it arrives.
 *
 *     async def fetch(mirror, delay):
 *         await asyncio.sleep(delay)
 *         return f"file from {mirror}"
 *
 *     tasks = [asyncio.create_task(fetch(m, d)) for m, d in MIRRORS]
 *     done, pending = await asyncio.wait(tasks, timeout=1,
 *                                        return_when=FIRST_COMPLETED)
 *     print(done.pop().result())
 *     for t in pending:
 *         t.cancel()
 *     await asyncio.gather(*pending, return_exceptions=True)
 *
 *     for t in asyncio.as_completed([fetch(...) for ...]):
 *         print(await t)
 *
 * Delays are tens of milliseconds. Exits 1 unless the fastest mirror won,
 * the others ended cancelled, and the files came in the order they were
 * ready.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

/* what the run got right; checked once the loop is gone (a positive
 * return from a task body would count as success) */
static int race_ok, order_ok;

typedef struct mirror {
    const char *name;
    int delay_ms;
} mirror;

static int fetch(void *arg, void **result)
{
    const mirror *m = arg;
    int rc = cosync_sleep(COSYNC_MS(m->delay_ms));
    if (rc != 0)
        return rc; /* cancelled: the caller took another answer */
    *result = (void *)m->name;
    return 0;
}

/* done, pending = await asyncio.wait(tasks, FIRST_COMPLETED), then cancel
 * and collect the pending ones. */
static int race(void)
{
    static const mirror mirrors[3] = {{"eu", 40}, {"us", 15}, {"asia", 70}};
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        int rc = cosync_task_spawn(&t[i], fetch, (void *)&mirrors[i], NULL);
        if (rc != 0)
            return rc;
    }
    size_t first;
    int rc =
        cosync_wait(t, 3, COSYNC_FIRST_COMPLETED, &first, cosync_deadline_after(COSYNC_SEC(1)));
    if (rc != 0)
        return rc;
    for (int i = 0; i < 3; i++)
        if (!cosync_task_done(t[i]))
            cosync_task_cancel(t[i]); /* pending */
    cosync_outcome out[3];
    rc = cosync_gather(t, 3, out, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    printf("first answer: %s (mirror %zu)\n", (const char *)out[first].result, first);
    int cancelled = 0;
    for (int i = 0; i < 3; i++)
        cancelled += out[i].status == COSYNC_ECANCELED;
    printf("cancelled the other %d\n", cancelled);
    race_ok = first == 1 && out[1].status == 0 && cancelled == 2;
    return 0;
}

/* for t in asyncio.as_completed(tasks): handle(await t) */
static int as_completed(void)
{
    static const mirror files[4] = {{"a.txt", 30}, {"b.txt", 10}, {"c.txt", 40}, {"d.txt", 20}};
    static const char *const expected[4] = {"b.txt", "d.txt", "a.txt", "c.txt"};
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        int rc = cosync_task_spawn(&t[i], fetch, (void *)&files[i], NULL);
        if (rc != 0)
            return rc;
    }
    cosync_as_completed it;
    int rc = cosync_as_completed_init(&it, t, 4);
    if (rc != 0)
        return rc;
    order_ok = 1;
    size_t i = 0, k = 0;
    while ((rc = cosync_as_completed_next(&it, &i, COSYNC_FOREVER)) > 0) {
        int status;
        void *name;
        rc = cosync_task_join(t[i], &status, &name, 0); /* finished: no wait */
        if (rc != 0 || status != 0) {
            rc = rc != 0 ? rc : status;
            break;
        }
        printf("got %s\n", (const char *)name);
        order_ok &= name == (void *)expected[k++];
    }
    order_ok &= k == 4;
    cosync_as_completed_destroy(&it);
    return rc; /* 0 at the end of the loop */
}

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = race();
    return rc != 0 ? rc : as_completed();
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0)
        fprintf(stderr, "tasks_first_completed: %s\n", cosync_strerror(rc));
    return rc != 0 || !race_ok || !order_ok;
}
