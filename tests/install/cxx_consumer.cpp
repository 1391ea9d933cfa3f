// The public header compiled as C++ (test_install, when a C++ compiler is
// found): every static initialiser, and the inline fast paths of the lock,
// the semaphore and the queue, used from C++11 against the installed
// library. Exits 0 and prints "cxx: ok" when every result is as expected.
#include <cosync.h>
#include <cstdio>

static cosync_lock lock = COSYNC_LOCK_INIT;
static cosync_event event = COSYNC_EVENT_INIT;
static cosync_cond cond = COSYNC_COND_INIT;
static cosync_sem sem = COSYNC_SEM_INIT(2);
static cosync_barrier barrier = COSYNC_BARRIER_INIT(2);
static cosync_rwlock rwlock = COSYNC_RWLOCK_INIT;
static cosync_latch latch = COSYNC_LATCH_INIT(1);
static cosync_waitgroup wg = COSYNC_WAITGROUP_INIT;
static cosync_future future = COSYNC_FUTURE_INIT;
static cosync_callback callback = COSYNC_CALLBACK_INIT;
static cosync_queue queue;

static int failures;

static void expect(bool ok, const char *what)
{
    if (!ok) {
        std::fprintf(stderr, "cxx: %s: wrong\n", what);
        failures++;
    }
}

static int setter(void *, void **)
{
    int item = 42;
    expect(cosync_queue_put(&queue, &item, COSYNC_FOREVER) == 0, "put");
    expect(cosync_latch_count_down(&latch) == 0, "latch count_down");
    return cosync_event_set(&event);
}

static int main_task(void *, void **)
{
    cosync_task t;
    int status = -1, item = 0;
    expect(cosync_lock_acquire(&lock, COSYNC_FOREVER) == 0 && cosync_lock_locked(&lock), "acquire");
    expect(cosync_sem_acquire(&sem, 0) == 0 && cosync_sem_value(&sem) == 1, "sem acquire");
    expect(cosync_rwlock_try_read(&rwlock) == 0, "try_read");
    expect(cosync_task_spawn(&t, setter, nullptr, nullptr) == 0, "spawn");
    expect(cosync_event_wait(&event, COSYNC_FOREVER) == 0, "event wait");
    expect(cosync_queue_get(&queue, &item, 0) == 0 && item == 42, "get");
    expect(cosync_latch_wait(&latch, 0) == 0, "latch wait");
    expect(cosync_task_join(t, &status, nullptr, COSYNC_FOREVER) == 0 && status == 0, "join");
    expect(cosync_barrier_parties(&barrier) == 2 && cosync_waitgroup_count(&wg) == 0, "counts");
    expect(cosync_cond_waiters(&cond) == 0 && !cosync_future_done(&future), "cond, future");
    expect(cosync_callback_cancel(&callback) == COSYNC_EINVAL && !cosync_callback_pending(&callback),
           "callback");
    cosync_rwlock_read_release(&rwlock);
    cosync_sem_release(&sem);
    return cosync_lock_release(&lock);
}

int main()
{
    if (cosync_queue_init(&queue, sizeof(int), 4) != 0)
        return 1;
    int rc = cosync_run(main_task, nullptr);
    cosync_queue_destroy(&queue);
    if (rc != 0 || failures) {
        std::fprintf(stderr, "cxx: run -> %s, %d wrong\n", cosync_err_name(rc), failures);
        return 1;
    }
    std::puts("cxx: ok");
    return 0;
}
