/* asyncio.Event on the waiting layer. */
#include "core.h"

static void event_cancel(cosync__waiter *w)
{
    cosync_event *e = w->obj;
    cosync__list_remove(&e->waiters, &w->node);
    if (cosync__list_empty(&e->waiters))
        e->loop = NULL;
}

static void event_describe(const cosync__waiter *w, char *buf, size_t size)
{
    snprintf(buf, size, "event %p", w->obj);
}

static const cosync__waiter_ops event_ops = {"event", event_cancel, event_describe};

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
    cosync__node *n = event->waiters.head;
    event->waiters = (cosync__list){NULL, NULL};
    event->loop = NULL;
    while (n) {
        cosync__node *next = n->next;
        n->next = n->prev = NULL;
        cosync__grant(cosync__container_of(n, cosync__waiter, node), 0);
        n = next;
    }
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
    struct cosync__task *cur;
    int rc = cosync__bind_loop(&event->loop, &cur);
    if (rc)
        return rc;
    cosync__waiter *w = cosync__waiter_prepare(cur, &event_ops, event);
    cosync__list_push_back(&event->waiters, &w->node);
    return cosync__wait(w, deadline);
}
