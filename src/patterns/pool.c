/*
 * A resource pool on the waiting layer.
 *
 * A pool counts its resources in three places: idle (in `idle`), out (a
 * task has it), and being made (a task runs the create function in a slot
 * it took). A waiter is granted either a resource (result 0, the resource
 * in its waiter's data) or a slot to make one in (result SLOT): the grant
 * is made at the moment a resource comes back or a slot frees, so a
 * newcomer can never take what a waiter was handed.
 */
#include "fault.h"
#include "waitq.h"

/* A waiter's grant: make a resource in the slot taken for it. */
#define SLOT 1

static bool usable(const cosync_pool *p)
{
    return p && !p->dead && p->idle;
}

static size_t size_of(const cosync_pool *p)
{
    return p->nidle + p->in_use + p->creating;
}

static void end(cosync_pool *p, void *res)
{
    if (p->ops.destroy)
        p->ops.destroy(p->arg, res);
}

/* A slot is free: the first waiter makes a resource in it. */
static void offer_slot(cosync_pool *p)
{
    cosync__waiter *w = cosync__waitq_head(&p->q);
    if (w && size_of(p) < p->max_size) {
        p->creating++;
        cosync__waitq_grant(&p->q, w, SLOT);
    }
}

static void pool_cancel(cosync__waiter *w)
{
    cosync__waitq_remove(&((cosync_pool *)w->obj)->q, w);
}

static void pool_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_pool *p = w->obj;
    snprintf(buf, size, "pool %p (%zu of %zu out, %zu being made, %u waiting)", w->obj, p->in_use,
             p->max_size, p->creating, (unsigned)p->q.n);
}

static const cosync__waiter_ops pool_ops = {"pool", pool_cancel, pool_describe, NULL};

int cosync_pool_init(cosync_pool *pool, size_t max_size, const cosync_pool_ops *ops, void *arg)
{
    if (!pool || !ops || !ops->create || max_size == 0 || max_size > SIZE_MAX / sizeof(void *))
        return COSYNC_EINVAL;
    void **idle = cosync__mem_alloc(NULL, max_size * sizeof *idle);
    if (!idle)
        return COSYNC_ENOMEM;
    *pool = (cosync_pool){
        .q = COSYNC__WAITQ_INIT, .idle = idle, .max_size = max_size, .ops = *ops, .arg = arg};
    return 0;
}

/* Make a resource in the slot the calling task holds. */
static int create_in_slot(cosync_pool *p, void **res)
{
    void *made = NULL;
    int rc = p->ops.create(p->arg, &made);
    p->creating--;
    if (rc < 0) {
        offer_slot(p); /* the slot is free again */
        return rc;
    }
    if (p->closed) { /* closed while it was being made */
        end(p, made);
        return COSYNC_ESHUTDOWN;
    }
    p->in_use++;
    *res = made;
    return 0;
}

int cosync_pool_acquire(cosync_pool *pool, void **res, int64_t deadline)
{
    if (!usable(pool) || !res)
        return COSYNC_EINVAL;
    if (pool->closed)
        return COSYNC_ESHUTDOWN;
    if (cosync__waitq_empty(&pool->q)) {
        if (pool->nidle) {
            *res = pool->idle[--pool->nidle];
            pool->in_use++;
            return 0;
        }
        if (size_of(pool) < pool->max_size) {
            pool->creating++;
            return create_in_slot(pool, res);
        }
    }
    int rc = cosync__waitq_wait(&pool->q, &pool_ops, pool, 0, deadline);
    if (rc == SLOT)
        return create_in_slot(pool, res);
    if (rc == 0)
        *res = (void *)cosync__current()->w.data;
    return rc;
}

/* Take @res back from the task that had it out. */
static int take_back(cosync_pool *p)
{
    if (!usable(p))
        return COSYNC_EINVAL;
    if (p->in_use == 0)
        return COSYNC_EPERM;
    p->in_use--;
    return 0;
}

int cosync_pool_release(cosync_pool *pool, void *res)
{
    int rc = take_back(pool);
    if (rc)
        return rc;
    if (pool->closed) {
        end(pool, res);
        return 0;
    }
    cosync__waiter *w = cosync__waitq_head(&pool->q);
    if (w) {
        w->data = (uintptr_t)res;
        pool->in_use++;
        cosync__waitq_grant(&pool->q, w, 0);
    } else {
        pool->idle[pool->nidle++] = res;
    }
    return 0;
}

int cosync_pool_discard(cosync_pool *pool, void *res)
{
    int rc = take_back(pool);
    if (rc)
        return rc;
    end(pool, res);
    if (!pool->closed)
        offer_slot(pool);
    return 0;
}

static void end_idle(cosync_pool *p)
{
    while (p->nidle)
        end(p, p->idle[--p->nidle]);
}

int cosync_pool_close(cosync_pool *pool)
{
    if (!usable(pool))
        return COSYNC_EINVAL;
    if (pool->closed)
        return 0;
    pool->closed = true;
    cosync__waitq_grant_all(&pool->q, COSYNC_ESHUTDOWN);
    end_idle(pool);
    return 0;
}

int cosync_pool_destroy(cosync_pool *pool)
{
    if (!usable(pool))
        return COSYNC_EINVAL;
    if (pool->in_use || pool->creating || !cosync__waitq_empty(&pool->q))
        return COSYNC_EBUSY;
    end_idle(pool);
    cosync__mem_free(NULL, pool->idle);
    pool->idle = NULL;
    pool->dead = 1;
    return 0;
}

int cosync_pool_get_stats(const cosync_pool *pool, cosync_pool_stats *stats)
{
    if (!pool || !stats)
        return COSYNC_EINVAL;
    *stats = (cosync_pool_stats){
        .size = size_of(pool),
        .idle = pool->nidle,
        .in_use = pool->in_use,
        .waiters = pool->q.n,
    };
    return 0;
}
