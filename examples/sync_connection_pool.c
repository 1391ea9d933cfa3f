/*
 * sync_connection_pool.c - seed 003, "Real-World Example: Connection Pool":
 * a pool of connections guarded by a Lock, with one Event per waiting task.
 *
 *     async def acquire(self):
 *         async with self.lock:
 *             while not self.available:
 *                 release_event = asyncio.Event()
 *                 self._waiting.append(release_event)
 *                 self.lock.release()           # Release the lock while waiting
 *                 try:
 *                     await release_event.wait()
 *                 finally:
 *                     await self.lock.acquire() # Reacquire the lock
 *             conn = self.available.pop()
 *             return conn
 *     async def release(self, conn):
 *         async with self.lock:
 *             self.available.append(conn)
 *             if self._waiting:
 *                 waiter = self._waiting.pop(0)
 *                 waiter.set()
 *
 * Differences: the database is simulated, as the brief allows: connecting
 * is a 5 ms sleep and a connection is a number (the seed calls
 * asyncpg.connect). The seed never initialises self._waiting; here it is a
 * FIFO of events. The events live in static storage, one per client,
 * rather than on the waiting task's stack (docs/tasks.md, "Where objects
 * live"). The seed has no main(); this one runs five clients on a pool of
 * two connections (a 10 ms "query" each) and exits 1 if more than two
 * connections were ever out at once or a client did not finish.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

#define MAX_CONNECTIONS 2
#define CLIENTS 5

static struct pool {
    int available[MAX_CONNECTIONS]; /* a stack, as the seed's list with pop() */
    int navailable;
    cosync_event *waiting[CLIENTS]; /* FIFO of the waiters' events */
    int nwaiting;
    cosync_lock lock;
} pool = {.lock = COSYNC_LOCK_INIT};

static cosync_event release_events[CLIENTS];
static int out_now = 0, out_peak = 0, finished = 0;

static int pool_initialize(void)
{
    int rc = cosync_lock_acquire(&pool.lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    for (int i = 0; i < MAX_CONNECTIONS && rc == 0; i++) {
        rc = cosync_sleep(COSYNC_MS(5)); /* conn = await asyncpg.connect(...) */
        if (rc == 0)
            pool.available[pool.navailable++] = 100 + i;
    }
    cosync_lock_release(&pool.lock);
    return rc;
}

/* Returns a connection (>= 0) or an error code. */
static int pool_acquire(int client)
{
    int rc = cosync_lock_acquire(&pool.lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    while (pool.navailable == 0) {
        /* no connections available, wait for one to be released */
        cosync_event *release_event = &release_events[client];
        cosync_event_init(release_event);
        pool.waiting[pool.nwaiting++] = release_event;
        cosync_lock_release(&pool.lock); /* release the lock while waiting */
        rc = cosync_event_wait(release_event, COSYNC_FOREVER);
        int rc2 = cosync_lock_acquire(&pool.lock, COSYNC_FOREVER); /* reacquire the lock */
        if (rc2 != 0)
            return rc2; /* could not get the lock back: nothing to release */
        if (rc != 0) {
            cosync_lock_release(&pool.lock);
            return rc;
        }
    }
    int conn = pool.available[--pool.navailable];
    cosync_lock_release(&pool.lock);
    return conn;
}

static int pool_release(int conn)
{
    int rc = cosync_lock_acquire(&pool.lock, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    pool.available[pool.navailable++] = conn;
    if (pool.nwaiting > 0) { /* if anyone is waiting, notify them */
        cosync_event *waiter = pool.waiting[0];
        for (int i = 1; i < pool.nwaiting; i++)
            pool.waiting[i - 1] = pool.waiting[i];
        pool.nwaiting--;
        cosync_event_set(waiter);
    }
    cosync_lock_release(&pool.lock);
    return 0;
}

static int client(void *arg, void **result)
{
    int id = (int)(intptr_t)arg;
    (void)result;
    int conn = pool_acquire(id);
    if (conn < 0)
        return conn;
    if (++out_now > out_peak)
        out_peak = out_now;
    printf("Client %d got connection %d\n", id, conn);
    int rc = cosync_sleep(COSYNC_MS(10)); /* the query */
    /* try: query / finally: release(conn): it goes back even if the query failed */
    out_now--;
    int rc2 = pool_release(conn);
    if (rc2 == 0) /* said once it is back (cancelled at the pool's lock, it is not) */
        printf("Client %d returns connection %d\n", id, conn);
    if (rc == 0 && rc2 == 0)
        finished++;
    return rc != 0 ? rc : rc2;
}

static int main_task(void *arg, void **result)
{
    cosync_task clients[CLIENTS];
    cosync_outcome out[CLIENTS];
    int rc;
    (void)arg;
    (void)result;
    if ((rc = pool_initialize()) != 0)
        return rc;
    printf("Pool ready with %d connections\n", pool.navailable);
    for (int i = 0; i < CLIENTS; i++)
        if ((rc = cosync_task_spawn(&clients[i], client, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(clients, CLIENTS, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < CLIENTS; i++) /* gather without return_exceptions raises an error */
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_connection_pool: %s\n", cosync_strerror(rc));
        return 1;
    }
    printf("%d clients served; at most %d connections out at once\n", finished, out_peak);
    return finished == CLIENTS && out_peak <= MAX_CONNECTIONS ? 0 : 1;
}
