/* asyncio.Event on the waiting layer. */
#include "waitq.h"

static void event_cancel(cosync__waiter *w)
{
    cosync_event *e = w->obj;
    cosync__waitq_remove(&e->q, w);
}

static void event_describe(const cosync__waiter *w, char *buf, size_t size)
{
    snprintf(buf, size, "event %p", w->obj);
}

static const cosync__waiter_ops event_ops = {"event", event_cancel, event_describe, NULL};

void cosync_event_init(cosync_event *event)
{
    *event = (cosync_event)COSYNC_EVENT_INIT;
}

int cosync_event_set(cosync_event *event)
{
    if (event->is_set)
        return 0;
    event->is_set = true;
    /* every waiter present now is granted, even if clear() comes first */
    cosync__waitq_grant_all(&event->q, 0);
    return 0;
}

int cosync_event_clear(cosync_event *event)
{
    event->is_set = false;
    return 0;
}

bool cosync_event_is_set(const cosync_event *event)
{
    return event->is_set;
}

int cosync_event_wait(cosync_event *event, int64_t deadline)
{
    if (event->is_set)
        return 0;
    return cosync__waitq_wait(&event->q, &event_ops, event, 0, deadline);
}
