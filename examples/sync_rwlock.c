/*
 * sync_rwlock.c - seed 003, "Read-Write Lock": five readers and two writers
 * share one value.
 *
 *     async def reader(lock, shared_data, reader_id):
 *         for _ in range(5):
 *             async with lock.reader():
 *                 value = shared_data["value"]
 *                 print(f"Reader {reader_id} read value: {value}")
 *             await asyncio.sleep(random.uniform(0.1, 0.5))
 *     async def writer(lock, shared_data, writer_id):
 *         for i in range(3):
 *             await asyncio.sleep(random.uniform(0.5, 1.0))
 *             async with lock.writer():
 *                 new_value = writer_id * 100 + i
 *                 shared_data["value"] = new_value
 *                 print(f"Writer {writer_id} wrote value: {new_value}")
 *
 * The seed builds a writer-preferring ReadWriteLock on a Condition;
 * cosync_rwlock is one (waiters served in arrival order, so neither side
 * starves). Times scaled by 1/20 (5-25 ms and 25-50 ms) from a fixed-seed
 * xorshift. Addition: the readers and writers count who is inside; the
 * program exits 1 if a writer was ever inside with anyone else, if a value
 * read was never written, or if a read or write is missing.
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

static cosync_rwlock lock = COSYNC_RWLOCK_INIT;
static struct {
    int value;
} shared_data = {0};
static int readers_in = 0, writers_in = 0, conflicts = 0, reads = 0, writes = 0, bad_reads = 0;

static uint32_t rng = 2463534242u;

static int64_t uniform_ms(int lo_ms, int hi_ms) /* random.uniform, fixed seed */
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return COSYNC_US(lo_ms * 1000 + (int64_t)(rng % (uint32_t)((hi_ms - lo_ms) * 1000 + 1)));
}

static bool was_written(int v)
{
    return v == 0 || ((v % 100) < 3 && (v / 100 == 0 || v / 100 == 1));
}

static int reader(void *arg, void **result)
{
    int reader_id = (int)(intptr_t)arg;
    (void)result;
    for (int n = 0; n < 5; n++) {
        int rc = cosync_rwlock_read_acquire(&lock, COSYNC_FOREVER); /* async with lock.reader(): */
        if (rc != 0)
            return rc;
        readers_in++;
        conflicts += writers_in != 0;
        int value = shared_data.value;
        printf("Reader %d read value: %d\n", reader_id, value);
        reads++;
        bad_reads += !was_written(value);
        readers_in--;
        cosync_rwlock_read_release(&lock);

        if ((rc = cosync_sleep(uniform_ms(5, 25))) != 0) /* time between reads */
            return rc;
    }
    return 0;
}

static int writer(void *arg, void **result)
{
    int writer_id = (int)(intptr_t)arg;
    (void)result;
    for (int i = 0; i < 3; i++) {
        int rc = cosync_sleep(uniform_ms(25, 50)); /* preparation time */
        if (rc != 0)
            return rc;
        if ((rc = cosync_rwlock_write_acquire(&lock, COSYNC_FOREVER)) != 0) /* lock.writer() */
            return rc;
        conflicts += readers_in != 0 || writers_in != 0;
        writers_in++;
        int new_value = writer_id * 100 + i;
        shared_data.value = new_value;
        printf("Writer %d wrote value: %d\n", writer_id, new_value);
        writes++;
        writers_in--;
        cosync_rwlock_write_release(&lock);
    }
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task tasks[7]; /* readers 0-4, writers 0-1 */
    cosync_outcome out[7];
    int rc;
    (void)arg;
    (void)result;
    for (int i = 0; i < 5; i++)
        if ((rc = cosync_task_spawn(&tasks[i], reader, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    for (int i = 0; i < 2; i++)
        if ((rc = cosync_task_spawn(&tasks[5 + i], writer, (void *)(intptr_t)i, NULL)) != 0)
            return rc;
    if ((rc = cosync_gather(tasks, 7, out, COSYNC_FOREVER)) != 0)
        return rc;
    for (int i = 0; i < 7; i++)
        if (out[i].status != 0)
            return out[i].status;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "sync_rwlock: %s\n", cosync_strerror(rc));
        return 1;
    }
    printf("%d reads, %d writes, final value %d\n", reads, writes, shared_data.value);
    bool ok = conflicts == 0 && bad_reads == 0 && reads == 25 && writes == 6 &&
              (shared_data.value == 2 || shared_data.value == 102);
    return ok ? 0 : 1;
}
