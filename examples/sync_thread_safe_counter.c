/*
 * sync_thread_safe_counter.c - seed 003, "Working with Threads and
 * Processes", "Thread Safety with Asyncio": a plain thread updates a
 * counter under a threading.Lock and tells the loop's tasks through an
 * asyncio.Event, set by a call into the loop.
 *
 *     class ThreadSafeCounter:
 *         def __init__(self):
 *             self.value = 0
 *             self.lock = threading.Lock()
 *             self.event = asyncio.Event()
 *         def increment_in_thread(self, amount):
 *             with self.lock:
 *                 self.value += amount
 *             # Notify waiting asyncio tasks
 *             asyncio.run_coroutine_threadsafe(self.notify(), loop)
 *         async def wait_for_update(self):
 *             await self.event.wait()
 *             self.event.clear()
 *         async def notify(self):
 *             self.event.set()
 *
 *     async def main():
 *         counter = ThreadSafeCounter()
 *         def thread_function():
 *             for i in range(5):
 *                 time.sleep(1)
 *                 print(f"Thread incrementing counter by {i+1}")
 *                 counter.increment_in_thread(i+1)
 *         thread = threading.Thread(target=thread_function)
 *         thread.start()
 *         for _ in range(5):
 *             await counter.wait_for_update()
 *             print(f"Counter value updated to: {counter.value}")
 *         thread.join()
 *
 * The seed passes asyncio.get_event_loop() from the thread, which has no
 * loop of its own: that fails on Python 3.12+ (and only warns before); the
 * loop is the main task's, taken while it runs, as here. The notify
 * coroutine becomes a call (cosync_loop_call_threadsafe), which is what
 * run_coroutine_threadsafe schedules. The loop holds a reference while
 * the thread may call into it (cosync_loop_ref): without one, a loop whose
 * tasks all wait would report a deadlock instead of waiting for the
 * thread. thread.join(), which blocks asyncio's loop, is waited for on a
 * thread of the loop's pool (asyncio.to_thread(thread.join)). The
 * thread's 1 s sleeps are scaled to 10 ms.
 *
 * The seed waits for five wake-ups, but an event counts no sets: if the
 * thread updates the counter twice before the loop reads it once, one
 * wake-up reports both, and the seed's fifth wait never ends. Here main
 * waits until the value is 15 = 1 + 2 + 3 + 4 + 5. Exits 1 unless it is.
 */
#define _POSIX_C_SOURCE 200809L /* nanosleep */
#include <cosync.h>

#include <pthread.h>
#include <stdio.h>
#include <time.h>

typedef struct counter {
    long value;
    pthread_mutex_t lock;
    cosync_event event; /* set on the loop's thread only */
    cosync_loop *loop;
    cosync_call notify_call[5]; /* one per increment: a call's record is busy until it runs */
} counter;

static void notify(void *arg)
{
    counter *c = arg;
    cosync_event_set(&c->event);
}

static void increment_in_thread(counter *c, long amount, int i)
{
    pthread_mutex_lock(&c->lock);
    c->value += amount;
    pthread_mutex_unlock(&c->lock);
    /* Notify waiting tasks */
    cosync_loop_call_threadsafe(c->loop, &c->notify_call[i], notify, c);
}

static long read_value(counter *c)
{
    pthread_mutex_lock(&c->lock);
    long v = c->value;
    pthread_mutex_unlock(&c->lock);
    return v;
}

static int wait_for_update(counter *c)
{
    int rc = cosync_event_wait(&c->event, COSYNC_FOREVER);
    if (rc == 0)
        rc = cosync_event_clear(&c->event);
    return rc;
}

static void *thread_function(void *arg)
{
    counter *c = arg;
    for (int i = 0; i < 5; i++) {
        nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL); /* time.sleep(1), scaled */
        printf("Thread incrementing counter by %d\n", i + 1);
        fflush(stdout);
        increment_in_thread(c, i + 1, i);
    }
    cosync_loop_unref(c->loop); /* its last call is made */
    return NULL;
}

static int join_thread(void *arg, void **result)
{
    (void)result;
    return -pthread_join(*(pthread_t *)arg, NULL);
}

static int main_task(void *arg, void **result)
{
    counter *c = arg;
    (void)result;
    c->loop = cosync_loop_current();
    cosync_loop_ref(c->loop); /* the thread will call into the loop */
    pthread_t thread;
    int rc = -pthread_create(&thread, NULL, thread_function, c);
    if (rc) {
        cosync_loop_unref(c->loop);
        return rc;
    }
    /* Wait for updates from the thread, until all five are in */
    long seen = 0;
    while (seen < 15) {
        if ((rc = wait_for_update(c)) != 0)
            break;
        seen = read_value(c);
        printf("Counter value updated to: %ld\n", seen);
    }
    /* Wait for the thread to complete, without blocking the loop */
    int jrc = cosync_to_thread(join_thread, &thread, NULL, COSYNC_FOREVER);
    return rc ? rc : jrc;
}

int main(void)
{
    counter c = {.value = 0, .event = COSYNC_EVENT_INIT};
    pthread_mutex_init(&c.lock, NULL);
    int rc = cosync_run(main_task, &c);
    pthread_mutex_destroy(&c.lock);
    if (rc != 0) {
        fprintf(stderr, "sync_thread_safe_counter: %s\n", cosync_strerror(rc));
        return 1;
    }
    return c.value == 15 ? 0 : 1;
}
