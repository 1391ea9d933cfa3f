/*
 * sync_circuit_breaker.c - seed 003, "Circuit Breaker Pattern": after three
 * failures the breaker opens and fails calls fast; after the reset timeout
 * one trial call (half-open) decides whether it closes again.
 *
 *     async def execute(self, coro):
 *         async with self.lock:
 *             if self.state == "open":
 *                 if current_time - self.last_failure_time >= self.reset_timeout:
 *                     self.state = "half-open"
 *             if self.state == "open":
 *                 raise CircuitBreakerOpenError("Circuit is open, call rejected")
 *         try:
 *             result = await coro
 *             ...  # half-open -> closed
 *         except Exception as e:
 *             ...  # count; closed -> open at the threshold; half-open -> open
 *             raise
 *     ...
 *     breaker = CircuitBreaker(failure_threshold=3, reset_timeout=5)
 *     for i in range(20): ... await asyncio.sleep(1)
 *
 * Exceptions are this program's own error codes (outside cosync's range).
 * time.time() is cosync_now(). Times scaled by 1/100: the service takes
 * 1 ms, calls are 10 ms apart, the reset timeout is 50 ms. random.random()
 * is a fixed-seed xorshift, so the same calls fail on every run. Exits 1
 * unless every call is accounted for and the breaker opened at least once.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

enum { SERVICE_FAILED = -20001, CIRCUIT_OPEN = -20002 }; /* RuntimeError, CircuitBreakerOpenError */
enum state { CLOSED, OPEN, HALF_OPEN };

static struct circuit_breaker {
    int failure_count;
    int failure_threshold;
    int64_t reset_timeout;
    enum state state;
    int64_t last_failure_time;
    cosync_lock lock;
} breaker;

static uint32_t rng = 2463534242u;

static double random_unit(void) /* random.random(), fixed seed */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return (double)rng / 4294967296.0;
}

/* unreliable_service(fail_rate=0.7): returns 0 or SERVICE_FAILED. */
static int unreliable_service(void)
{
    int rc = cosync_sleep(COSYNC_MS(1));
    if (rc != 0)
        return rc;
    return random_unit() < 0.7 ? SERVICE_FAILED : 0; /* randomly fail */
}

static int breaker_execute(int (*coro)(void))
{
    int rc = cosync_lock_acquire(&breaker.lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    int64_t current_time = cosync_now();
    if (breaker.state == OPEN &&
        current_time - breaker.last_failure_time >= breaker.reset_timeout) {
        printf("Circuit breaker: half-open\n");
        breaker.state = HALF_OPEN;
    }
    bool open = breaker.state == OPEN;
    cosync_lock_release(&breaker.lock);
    if (open)
        return CIRCUIT_OPEN; /* call rejected */

    int result = coro();
    if (result == COSYNC_ECANCELED)
        return result;
    if ((rc = cosync_lock_acquire(&breaker.lock, COSYNC_FOREVER)) != 0)
        return rc;
    if (result == 0) {
        if (breaker.state == HALF_OPEN) {
            printf("Circuit breaker: closed after success\n");
            breaker.state = CLOSED;
            breaker.failure_count = 0;
        }
    } else {
        breaker.failure_count++;
        breaker.last_failure_time = cosync_now();
        if (breaker.state == CLOSED && breaker.failure_count >= breaker.failure_threshold) {
            printf("Circuit breaker: opened after %d failures\n", breaker.failure_count);
            breaker.state = OPEN;
        } else if (breaker.state == HALF_OPEN) {
            printf("Circuit breaker: reopened after test failure\n");
            breaker.state = OPEN;
        }
    }
    cosync_lock_release(&breaker.lock);
    return result; /* re-raise the original exception */
}

static int successes = 0, errors = 0, fast_fails = 0;

static int main_task(void *arg, void **result)
{
    (void)arg;
    (void)result;
    /* failure_threshold=3, reset_timeout=5 (s) -> 50 ms */
    breaker = (struct circuit_breaker){0, 3, COSYNC_MS(50), CLOSED, 0, COSYNC_LOCK_INIT};
    for (int i = 0; i < 20; i++) {
        int rc = breaker_execute(unreliable_service);
        if (rc == 0) {
            printf("Call %d: Success, result = Service response\n", i);
            successes++;
        } else if (rc == CIRCUIT_OPEN) {
            printf("Call %d: Circuit open, fast failing\n", i);
            fast_fails++;
        } else if (rc == SERVICE_FAILED) {
            printf("Call %d: Service error: Service failed\n", i);
            errors++;
        } else {
            return rc;
        }
        if ((rc = cosync_sleep(COSYNC_MS(10))) != 0) /* pause between calls */
            return rc;
    }
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_circuit_breaker: %s\n", cosync_strerror(rc));
        return 1;
    }
    printf("%d successes, %d service errors, %d fast failures\n", successes, errors, fast_fails);
    return successes + errors + fast_fails == 20 && fast_fails > 0 ? 0 : 1;
}
