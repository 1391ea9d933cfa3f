/*
 * tasks_timeout_block.c - asyncio.timeout() blocks: three downloads, each
 * under a limit on the whole transfer and an idle limit that every chunk
 * pushes back (Timeout.reschedule). One finishes, one stalls, one is too
 * slow overall. As asyncio writes it:
 *
 *     TOTAL, IDLE = 3.0, 1.0
 *
 *     async def fetch(name, gaps):
 *         loop = asyncio.get_running_loop()
 *         received = 0
 *         try:
 *             async with asyncio.timeout(TOTAL):
 *                 async with asyncio.timeout(IDLE) as idle:
 *                     for gap in gaps:
 *                         await asyncio.sleep(gap)        # the next chunk
 *                         received += 1
 *                         idle.reschedule(loop.time() + IDLE)
 *             print(f"[{loop.time():.1f}] {name}: {received} chunks, done")
 *         except TimeoutError:
 *             why = "stalled" if idle.expired() else "too slow overall"
 *             print(f"[{loop.time():.1f}] {name}: {received} chunks, {why}")
 *             raise
 *
 *     async def main():
 *         await asyncio.gather(fetch("fast", [0.1] * 5),
 *                              fetch("stall", [0.1, 0.1, 5.0]),
 *                              fetch("slow", [0.5] * 20),
 *                              return_exceptions=True)
 *
 * Each sleep is a call that takes no deadline of its own: the blocks end
 * it, by cancelling the task, and cosync_timeout_leave turns that into
 * COSYNC_ETIMEDOUT. When the outer block expires, the inner one, which
 * has not, passes the cancellation through; when the inner one expires,
 * the outer one passes its COSYNC_ETIMEDOUT through. It prints what the
 * Python program prints (times from the start), and runs on the loop's
 * virtual clock, so the times are exact. Exits 1 unless each download
 * ended as described.
 */
#include <cosync.h>

#include <stdio.h>
#include <string.h>

#define TOTAL COSYNC_SEC(3)
#define IDLE COSYNC_SEC(1)

typedef struct download {
    const char *name;
    int64_t gap;   /* between chunks */
    int chunks;    /* sent, if nothing ends the transfer first */
    int64_t stall; /* after the second chunk, a gap this long instead; 0: none */
    int received;
    int status;
    int64_t ended; /* when, from the start */
} download;

static int64_t start;

static int fetch(void *arg, void **result)
{
    (void)result;
    download *d = arg;
    cosync_timeout total, idle;
    int rc = cosync_timeout_enter(&total, cosync_deadline_after(TOTAL));
    if (rc != 0)
        return rc;
    rc = cosync_timeout_enter(&idle, cosync_deadline_after(IDLE));
    if (rc != 0) {
        cosync_timeout_leave(&total, rc);
        return rc;
    }
    for (int i = 0; i < d->chunks && rc == 0; i++) {
        rc = cosync_sleep(d->stall && i == 2 ? d->stall : d->gap); /* the next chunk */
        if (rc == 0) {
            d->received++;
            rc = cosync_timeout_reschedule(&idle, cosync_deadline_after(IDLE));
        }
    }
    rc = cosync_timeout_leave(&idle, rc);
    rc = cosync_timeout_leave(&total, rc);

    d->ended = cosync_now() - start;
    const char *how = rc == 0                         ? "done"
                      : rc != COSYNC_ETIMEDOUT        ? cosync_strerror(rc)
                      : cosync_timeout_expired(&idle) ? "stalled"
                                                      : "too slow overall";
    printf("[%.1f] %s: %d chunks, %s\n", (double)d->ended / 1e9, d->name, d->received, how);
    return rc;
}

static download downloads[3] = {
    {"fast", COSYNC_MS(100), 5, 0, 0, 0, 0},
    {"stall", COSYNC_MS(100), 3, COSYNC_SEC(5), 0, 0, 0},
    {"slow", COSYNC_MS(500), 20, 0, 0, 0, 0},
};

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    start = cosync_now();
    cosync_task t[3];
    for (int i = 0; i < 3; i++) {
        int rc = cosync_task_spawn(&t[i], fetch, &downloads[i], NULL);
        if (rc != 0)
            return rc;
    }
    cosync_outcome out[3];
    int rc = cosync_gather(t, 3, out, COSYNC_FOREVER);
    for (int i = 0; i < 3; i++)
        downloads[i].status = out[i].status;
    return rc;
}

int main(void)
{
    int rc = cosync_run_with(main_task, NULL, &(cosync_loop_opts){.virtual_clock = true});
    if (rc != 0) {
        fprintf(stderr, "tasks_timeout_block: %s\n", cosync_strerror(rc));
        return 1;
    }
    /* fast: 5 chunks by 0.5 s; stall: 2 chunks, then nothing for 1 s after
     * the second (0.2 + 1.0); slow: 5 chunks, as the sixth is due at 3 s
     * too, and the block's timer, armed first, fires first */
    static const struct {
        int received, status;
        int64_t ended;
    } want[3] = {{5, 0, COSYNC_MS(500)},
                 {2, COSYNC_ETIMEDOUT, COSYNC_MS(1200)},
                 {5, COSYNC_ETIMEDOUT, COSYNC_SEC(3)}};
    for (int i = 0; i < 3; i++) {
        const download *d = &downloads[i];
        if (d->received != want[i].received || d->status != want[i].status ||
            d->ended != want[i].ended) {
            fprintf(stderr, "tasks_timeout_block: %s ended otherwise than expected\n", d->name);
            return 1;
        }
    }
    return 0;
}
