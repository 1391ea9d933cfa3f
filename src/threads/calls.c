/*
 * Calls into a loop from other threads (loop.call_soon_threadsafe), and
 * the references that keep a loop waiting for them. A call made on the
 * loop's own thread while it runs is queued as a callback instead
 * (call_from_own_thread).
 *
 * A call goes into the loop's inbox under a mutex; the first call into an
 * empty inbox also writes the loop's eventfd, still under the mutex, so
 * that the loop, which takes the whole inbox under the same mutex, can
 * neither miss the wake-up nor be destroyed between the call's arrival and
 * the write. Each turn the loop looks at the inbox's flag without the
 * mutex, and takes it only when something has come.
 */
#include <unistd.h>

#include "core.h"

int cosync__inbox_init(cosync_loop *loop)
{
    int rc = pthread_mutex_init(&loop->inbox_lock, NULL);
    if (rc)
        return -rc;
    loop->inbox_head = loop->inbox_tail = NULL;
    atomic_init(&loop->inbox_full, false);
    atomic_init(&loop->refs, 0);
    return 0;
}

void cosync__inbox_destroy(cosync_loop *loop)
{
    /* the last caller may still be unlocking: take the mutex once first */
    pthread_mutex_lock(&loop->inbox_lock);
    pthread_mutex_unlock(&loop->inbox_lock);
    pthread_mutex_destroy(&loop->inbox_lock);
}

/* Wake @loop if it may be waiting in its idle step: not from its own
 * run, which looks at the inbox and its references before it waits. */
static void wake_loop(cosync_loop *loop)
{
    if (cosync__tls.loop == loop)
        return;
    uint64_t one = 1;
    /* EAGAIN: the counter is full, so the loop is woken anyway */
    ssize_t n = write(loop->evfd, &one, sizeof one);
    (void)n;
}

static void run_own_call(void *arg)
{
    cosync_call *call = arg;
    void (*fn)(void *) = call->fn;
    void *fn_arg = call->arg;
    cosync__tls.loop->own_calls--;
    fn(fn_arg); /* the record is fn's from here */
}

/* A call made on the loop's own thread while it runs goes where asyncio's
 * call_soon_threadsafe puts it, in the one queue of call_soon: behind what
 * is ready now. It holds the loop, as a call in the inbox does, so that
 * the loop's destruction runs it rather than dropping it as a callback.
 * The record is the caller's, never set up before: nothing in it is read. */
static void call_from_own_thread(cosync_loop *loop, cosync_call *call, void (*fn)(void *arg),
                                 void *arg)
{
    call->fn = fn;
    call->arg = arg;
    cosync__callback_soon_unread(loop, &call->soon, run_own_call, call);
    loop->own_calls++;
}

int cosync_loop_call_threadsafe(cosync_loop *loop, cosync_call *call, void (*fn)(void *arg),
                                void *arg)
{
    if (!loop || !call || !fn)
        return COSYNC_EINVAL;
    struct cosync__task *cur = cosync__current();
    if (cur && cosync__dense_holds(cur, call))
        return COSYNC_EINVAL;
    if (cosync__tls.loop == loop) {
        call_from_own_thread(loop, call, fn, arg);
        return 0;
    }
    call->next = NULL;
    call->fn = fn;
    call->arg = arg;
    pthread_mutex_lock(&loop->inbox_lock);
    bool was_empty = loop->inbox_head == NULL;
    if (was_empty)
        loop->inbox_head = call;
    else
        loop->inbox_tail->next = call;
    loop->inbox_tail = call;
    if (was_empty) {
        atomic_store_explicit(&loop->inbox_full, true, memory_order_release);
        wake_loop(loop);
    }
    pthread_mutex_unlock(&loop->inbox_lock);
    return 0;
}

void cosync__inbox_run(cosync_loop *loop)
{
    if (!atomic_load_explicit(&loop->inbox_full, memory_order_acquire))
        return;
    pthread_mutex_lock(&loop->inbox_lock);
    cosync_call *call = loop->inbox_head;
    loop->inbox_head = loop->inbox_tail = NULL;
    atomic_store_explicit(&loop->inbox_full, false, memory_order_release);
    pthread_mutex_unlock(&loop->inbox_lock);
    while (call) {
        cosync_call *next = call->next; /* the call may reuse its record */
        call->fn(call->arg);
        call = next;
    }
}

int cosync_loop_ref(cosync_loop *loop)
{
    if (!loop)
        return COSYNC_EINVAL;
    pthread_mutex_lock(&loop->inbox_lock); /* as unref's: a count, not a race */
    atomic_fetch_add_explicit(&loop->refs, 1, memory_order_acq_rel);
    pthread_mutex_unlock(&loop->inbox_lock);
    return 0;
}

int cosync_loop_unref(cosync_loop *loop)
{
    if (!loop)
        return COSYNC_EINVAL;
    /* under the inbox's mutex, which the loop's destruction takes once
     * before it frees anything: the last reference's wake-up cannot
     * reach a loop that is gone */
    pthread_mutex_lock(&loop->inbox_lock);
    size_t n = atomic_load_explicit(&loop->refs, memory_order_acquire);
    int rc = COSYNC_EPERM;
    if (n > 0) {
        atomic_store_explicit(&loop->refs, n - 1, memory_order_release);
        if (n == 1) /* the loop may be waiting for it: let it look again */
            wake_loop(loop);
        rc = 0;
    }
    pthread_mutex_unlock(&loop->inbox_lock);
    return rc;
}
