/* asyncio.Future: a one-shot outcome that any number of tasks await. */
#include "waitq.h"

enum { PENDING, DONE, CANCELLED };

static void future_cancel(cosync__waiter *w)
{
    cosync_future *f = w->obj;
    cosync__waitq_remove(&f->q, w);
}

static void future_describe(const cosync__waiter *w, char *buf, size_t size)
{
    snprintf(buf, size, "future %p", w->obj);
}

static const cosync__waiter_ops future_ops = {"future", future_cancel, future_describe, NULL};

void cosync_future_init(cosync_future *future)
{
    *future = (cosync_future)COSYNC_FUTURE_INIT;
}

static cosync_callback *first_callback(const cosync_future *f)
{
    cosync__node *n = f->callbacks.head;
    return n ? cosync__container_of(n, cosync_callback, u.attached.node) : NULL;
}

/* Whether registration @a came before @b (the count may wrap). */
static bool before(uint32_t a, uint32_t b)
{
    return (int32_t)(a - b) < 0;
}

/* Wake the waiters and release the done callbacks in the order they came,
 * as asyncio calls a future's callbacks (an awaiting task's wake-up is one
 * of them): each goes behind what is ready. */
static void wake_all(cosync_future *f)
{
    cosync_callback *cb = first_callback(f);
    if (!cb) {
        cosync__waitq_grant_all(&f->q, 0);
        return;
    }
    for (;;) {
        cosync__waiter *w = cosync__waitq_head(&f->q);
        if (w && (!cb || before((uint32_t)w->data, cb->seq))) {
            cosync__waitq_grant(&f->q, w, 0);
        } else if (cb) {
            cosync__callback_release(cb);
            cb = first_callback(f);
        } else {
            return;
        }
    }
}

static int complete(cosync_future *f, uint8_t state, int status, void *value)
{
    if (f->state != PENDING)
        return COSYNC_EALREADY;
    f->state = state;
    f->status = status;
    f->value = value;
    wake_all(f);
    return 0;
}

int cosync_future_set_result(cosync_future *future, void *value)
{
    return complete(future, DONE, 0, value);
}

int cosync_future_set_error(cosync_future *future, int error)
{
    /* COSYNC_EAGAIN is what cosync_future_result says of a pending future */
    if (error >= 0 || error == COSYNC_EAGAIN)
        return COSYNC_EINVAL;
    return complete(future, DONE, error, NULL);
}

int cosync_future_cancel(cosync_future *future)
{
    return complete(future, CANCELLED, COSYNC_ECANCELED, NULL);
}

bool cosync_future_done(const cosync_future *future)
{
    return future->state != PENDING;
}

bool cosync_future_cancelled(const cosync_future *future)
{
    return future->state == CANCELLED;
}

int cosync_future_result(const cosync_future *future, void **value)
{
    if (future->state == PENDING)
        return COSYNC_EAGAIN;
    if (value)
        *value = future->value;
    return future->status;
}

int cosync_future_wait(cosync_future *future, int64_t deadline)
{
    if (future->state != PENDING)
        return 0;
    return cosync__waitq_wait(&future->q, &future_ops, future, ++future->seq, deadline);
}

int cosync_future_add_done_callback(cosync_future *future, cosync_callback *cb,
                                    void (*fn)(void *arg), void *arg)
{
    if (!future)
        return COSYNC_EINVAL;
    if (future->state != PENDING) /* asyncio schedules it with call_soon */
        return cosync__callback_soon(cb, fn, arg);
    return cosync__callback_attach(cb, fn, arg, &future->callbacks, ++future->seq);
}
