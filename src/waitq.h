/*
 * Wait queues: how every primitive keeps its waiters. A queue is FIFO; the
 * object is bound to the loop of its waiters while the queue is not empty.
 *
 * A primitive's wait is:
 *     rc = cosync__waitq_wait(&obj->q, &obj_ops, obj, data, deadline);
 * its ops->cancel (a WAITING waiter was cancelled or timed out) calls
 * cosync__waitq_remove, then passes on whatever the departure makes
 * possible; and its wake-ups are cosync__waitq_grant / _grant_all.
 */
#ifndef COSYNC_WAITQ_H
#define COSYNC_WAITQ_H

#include "core.h"

static inline bool cosync__waitq_empty(const cosync__waitq *q)
{
    return q->n == 0;
}

static inline cosync__waiter *cosync__waitq_head(const cosync__waitq *q)
{
    return q->list.head ? cosync__container_of(q->list.head, cosync__waiter, node) : NULL;
}

static inline cosync__waiter *cosync__waitq_next(const cosync__waiter *w)
{
    return w->node.next ? cosync__container_of(w->node.next, cosync__waiter, node) : NULL;
}

/* Take @w off the queue (it was on it). */
static inline void cosync__waitq_remove(cosync__waitq *q, cosync__waiter *w)
{
    cosync__list_remove(&q->list, &w->node);
    if (--q->n == 0)
        q->loop = NULL;
}

/* Take @w off the queue and hand it its wake-up. */
static inline void cosync__waitq_grant(cosync__waitq *q, cosync__waiter *w, int result)
{
    cosync__waitq_remove(q, w);
    cosync__grant(w, result);
}

/* Grant every waiter, in order, the results @first, @first + @step, ...
 * (a step of 0 gives all the same); returns how many (wait.c). */
size_t cosync__waitq_grant_each(cosync__waitq *q, int first, int step);

/* Grant every waiter @result, in order; returns how many. */
static inline size_t cosync__waitq_grant_all(cosync__waitq *q, int result)
{
    cosync__node *node = q->list.head;
    if (node && !node->next) {
        /* one waiter (two tasks handing turns through events): without
         * the loop, which keeps its state in registers it must save */
        *q = (cosync__waitq)COSYNC__WAITQ_INIT;
        node->prev = NULL;
        cosync__grant(cosync__container_of(node, cosync__waiter, node), result);
        return 1;
    }
    return cosync__waitq_grant_each(q, result, 0);
}

/*
 * Queue the calling task on @q and wait (see cosync__wait). @data is the
 * primitive's own (a count, an index). Returns COSYNC_EPERM outside a task
 * or when @q is bound to another loop; else what cosync__wait returns.
 */
static inline int cosync__waitq_wait_how(cosync__waitq *q, const cosync__waiter_ops *ops, void *obj,
                                         uintptr_t data, bool revocable, int64_t deadline)
{
    struct cosync__task *cur;
    int rc = cosync__bind_loop(&q->loop, &cur);
    if (rc)
        return rc;
    cosync__waiter *w = cosync__waiter_prepare(cur, ops, obj);
    w->data = data;
    w->revocable = revocable;
    cosync__list_push_back(&q->list, &w->node);
    q->n++;
    return cosync__wait(w, deadline);
}

static inline int cosync__waitq_wait(cosync__waitq *q, const cosync__waiter_ops *ops, void *obj,
                                     uintptr_t data, int64_t deadline)
{
    return cosync__waitq_wait_how(q, ops, obj, data, false, deadline);
}

#endif /* COSYNC_WAITQ_H */
