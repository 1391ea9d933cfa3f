/*
 * sync_rate_limit.c - seed 003, "Real-World Example: Rate-Limited HTTP
 * Client": at most 5 requests per period (a sliding window kept under a
 * Lock) and at most 3 requests in flight (a Semaphore).
 *
 *     async def _wait_for_rate_limit(self):
 *         async with self.rate_lock:
 *             now = time.time()
 *             self.request_times = [t for t in self.request_times if now - t <= self.time_period]
 *             if len(self.request_times) >= self.rate_limit:
 *                 oldest = min(self.request_times)
 *                 sleep_time = self.time_period - (now - oldest)
 *                 if sleep_time > 0:
 *                     print(f"Rate limit reached, waiting {sleep_time:.2f}s")
 *                     await asyncio.sleep(sleep_time)
 *             self.request_times.append(time.time())
 *     async def get(self, url, **kwargs):
 *         await self._wait_for_rate_limit()
 *         async with self.concurrency_semaphore:
 *             print(f"Requesting {url}")
 *             ...  # aiohttp GET
 *     ...
 *     client = RateLimitedClient(max_concurrent=3, rate_limit=5, time_period=1.0)
 *     urls = [f"https://httpbin.org/delay/{i*0.2}" for i in range(1, 11)]
 *
 * No network: a request to httpbin.org/delay/d is a sleep of d, which is
 * what that server does. Times scaled by 1/10: the period is 100 ms and
 * the delays 20-200 ms. time.time() is cosync_now(). Exits 1 unless all
 * ten requests completed with never more than three in flight.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define NURLS 10

static struct rate_limited_client {
    cosync_sem concurrency_semaphore;
    int rate_limit;
    int64_t time_period;
    int64_t request_times[NURLS];
    int nrequest_times;
    cosync_lock rate_lock;
} client;

static int in_flight = 0, peak_in_flight = 0, completed = 0;

static int wait_for_rate_limit(void)
{
    int rc = cosync_lock_acquire(&client.rate_lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    int64_t now = cosync_now();
    int kept = 0; /* remove request timestamps outside the time window */
    for (int i = 0; i < client.nrequest_times; i++)
        if (now - client.request_times[i] <= client.time_period)
            client.request_times[kept++] = client.request_times[i];
    client.nrequest_times = kept;
    if (client.nrequest_times >= client.rate_limit) {
        int64_t oldest = client.request_times[0]; /* kept in time order */
        int64_t sleep_time = client.time_period - (now - oldest);
        if (sleep_time > 0) {
            printf("Rate limit reached, waiting %.0f ms\n", (double)sleep_time / 1e6);
            if ((rc = cosync_sleep(sleep_time)) != 0) {
                cosync_lock_release(&client.rate_lock);
                return rc;
            }
        }
    }
    client.request_times[client.nrequest_times++] = cosync_now(); /* record this request */
    cosync_lock_release(&client.rate_lock);
    return 0;
}

static int client_get(void *arg, void **result)
{
    int i = (int)(intptr_t)arg;
    int rc = wait_for_rate_limit();
    if (rc != 0)
        return rc;
    if ((rc = cosync_sem_acquire(&client.concurrency_semaphore, COSYNC_FOREVER)) != 0)
        return rc;
    if (++in_flight > peak_in_flight)
        peak_in_flight = in_flight;
    printf("Requesting https://httpbin.org/delay/%.1f\n", i * 0.2);
    rc = cosync_sleep(COSYNC_MS(20) * i); /* the server delays i*0.2 s (scaled) */
    in_flight--;
    cosync_sem_release(&client.concurrency_semaphore);
    if (rc != 0)
        return rc;
    completed++;
    *result = (void *)(intptr_t)i; /* the "response" */
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[NURLS];
    cosync_outcome out[NURLS];
    int rc;
    (void)arg;
    (void)result;
    /* max 3 concurrent requests, 5 requests per period */
    if ((rc = cosync_sem_init(&client.concurrency_semaphore, 3)) != 0)
        return rc;
    client.rate_limit = 5;
    client.time_period = COSYNC_MS(100);
    cosync_lock_init(&client.rate_lock);

    for (int i = 1; i <= NURLS; i++) /* fetch all URLs concurrently */
        if ((rc = cosync_task_spawn(&tasks[i - 1], client_get, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(tasks, NURLS, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < NURLS; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    printf("Completed %d requests\n", NURLS); /* len(results): one per task */
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_rate_limit: %s\n", cosync_strerror(rc));
        return 1;
    }
    return completed == NURLS && peak_in_flight <= 3 ? 0 : 1;
}
