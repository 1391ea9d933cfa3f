/*
 * asyncio.as_completed: the tasks of a set in the order they finish, each
 * handed out in O(1).
 *
 * The iterator keeps one entry per task: a waiter, off any task record, on
 * the task's list of waits (its `awaits`) from init until the task
 * finishes. The finish moves the entry to the iterator's queue of finished
 * tasks (in finish order, as asyncio's done callbacks fill its queue) and
 * wakes the task waiting in cosync_as_completed_next, if one is. Nothing is
 * claimed: the tasks stay free to be joined, gathered or waited for.
 *
 * An entry's waiter: obj is its task while on the task's list, data its
 * index in the caller's array, state WAITING while on the list, GRANTED
 * while queued (its node links the queue), IDLE once handed out.
 */
#include <stdint.h>
#include <stdlib.h>

#include "core.h"
#include "fault.h"

struct cosync__as_completed {
    cosync_loop *loop; /* NULL once the loop is destroyed: nothing is linked */
    cosync__node in_loop;
    cosync_allocator alloc; /* the loop's, kept for the free */
    bool custom_alloc;
    struct cosync__task *waiting; /* in cosync_as_completed_next, or NULL */
    cosync__node *done_head;      /* finished and not handed out, through node.next */
    cosync__node *done_tail;
    size_t n;
    size_t given;  /* handed out */
    size_t linked; /* still on a task's list */
    /* init queued tasks that had finished: the first call yields once if
     * the loop has not switched since (loop->switches then) */
    bool finished_at_init;
    uint64_t switches_at_init;
    cosync__waiter entries[];
};

static void next_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const struct cosync__as_completed *ac = w->obj;
    snprintf(buf, size, "as_completed for %zu of %zu task(s) to finish", ac->linked, ac->n);
}

/* The wait in cosync_as_completed_next is on no list: the iterator points
 * to its task (ac->waiting), which clears that itself when the wait ends. */
static const cosync__waiter_ops next_ops = {"as_completed", NULL, next_describe, NULL};
/* An entry is no task's waiter: nothing cancels it, and no report lists it. */
const cosync__waiter_ops cosync__as_completed_entry_ops = {"as_completed entry", NULL, NULL, NULL};

static struct cosync__as_completed *entry_owner(cosync__waiter *e)
{
    cosync__waiter *first = e - e->data;
    return cosync__container_of(first, struct cosync__as_completed, entries);
}

/* Put @e at the end of the finished tasks not yet handed out. */
static void queue_done(struct cosync__as_completed *ac, cosync__waiter *e)
{
    e->state = COSYNC__W_GRANTED;
    e->node.next = e->node.prev = NULL;
    if (ac->done_tail)
        ac->done_tail->next = &e->node;
    else
        ac->done_head = &e->node;
    ac->done_tail = &e->node;
}

/* @e's task has finished (task.c, at the finish, after taking @e off the
 * task's list): queue it, and wake the task waiting for the next one. */
void cosync__as_completed_task_done(cosync__waiter *e)
{
    struct cosync__as_completed *ac = entry_owner(e);
    e->obj = NULL;
    queue_done(ac, e);
    ac->linked--;
    /* it may be in another wait meanwhile: the yield that delivers a
     * cancellation pending at its call */
    struct cosync__task *j = ac->waiting;
    if (j && j->w.state == COSYNC__W_WAITING && j->w.ops == &next_ops && j->w.obj == ac)
        cosync__grant(&j->w, 0);
}

/* Entries of tasks that had finished, by the order they finished. */
static int by_finish(const void *a, const void *b)
{
    const struct cosync__task *x = (*(cosync__waiter *const *)a)->obj;
    const struct cosync__task *y = (*(cosync__waiter *const *)b)->obj;
    return (x->finish_seq > y->finish_seq) - (x->finish_seq < y->finish_seq);
}

static const cosync_allocator *alloc_of(struct cosync__as_completed *ac)
{
    return ac->custom_alloc ? &ac->alloc : NULL;
}

/* Queue the entries of the tasks that finished before the call, in the
 * order they finished (the order asyncio leaves to a set's iteration is
 * fixed so). A task listed twice: COSYNC_EINVAL. */
static int queue_finished(struct cosync__as_completed *ac, size_t ndone)
{
    if (!ndone)
        return 0;
    cosync__waiter **done = cosync__mem_alloc(alloc_of(ac), ndone * sizeof *done);
    if (!done)
        return COSYNC_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < ac->n; i++)
        if (((struct cosync__task *)ac->entries[i].obj)->state == COSYNC__T_DONE)
            done[k++] = &ac->entries[i];
    qsort(done, ndone, sizeof *done, by_finish);
    int rc = 0;
    for (k = 1; k < ndone; k++)
        if (done[k]->obj == done[k - 1]->obj)
            rc = COSYNC_EINVAL;
    for (k = 0; !rc && k < ndone; k++) {
        done[k]->obj = NULL;
        queue_done(ac, done[k]);
    }
    cosync__mem_free(alloc_of(ac), done);
    return rc;
}

/* Whether @t's newest wait is an entry of @ac: @t is listed twice (no
 * other wait can begin while the entries are put on the lists). */
static bool listed_before(const struct cosync__as_completed *ac, const struct cosync__task *t)
{
    if (!t->awaits)
        return false;
    cosync__waiter *w = cosync__container_of(t->awaits, cosync__waiter, node);
    return w->ops == &cosync__as_completed_entry_ops && entry_owner(w) == ac;
}

/* Forget the entries still on their tasks' lists: take them off those
 * lists, unless the records go with a destroyed loop. */
static void drop_entries(struct cosync__as_completed *ac, bool records_live)
{
    for (size_t i = 0; i < ac->n; i++) {
        cosync__waiter *e = &ac->entries[i];
        if (e->state == COSYNC__W_WAITING) {
            if (records_live)
                cosync__task_await_unlink(e->obj, e);
            e->state = COSYNC__W_IDLE;
        }
    }
    ac->linked = 0;
}

/* Free @ac with the allocator it keeps (read before the block goes). */
static void free_iterator(struct cosync__as_completed *ac)
{
    cosync_allocator alloc = ac->alloc;
    cosync__mem_free(ac->custom_alloc ? &alloc : NULL, ac);
}

int cosync_as_completed_init(cosync_as_completed *it, const cosync_task *tasks, size_t n)
{
    if (!it)
        return COSYNC_EINVAL;
    it->impl = NULL; /* so that a failed init leaves one never set up */
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (n && !tasks)
        return COSYNC_EINVAL;
    cosync_loop *loop = cur->loop;
    size_t ndone = 0;
    for (size_t i = 0; i < n; i++) {
        struct cosync__task *t = cosync__task_lookup(tasks[i]);
        if (!t)
            return COSYNC_ESRCH;
        if (t->loop != loop)
            return COSYNC_EPERM;
        if (t == cur)
            return COSYNC_EDEADLK;
        ndone += t->state == COSYNC__T_DONE;
    }
    struct cosync__as_completed *ac;
    if (n > (SIZE_MAX - sizeof *ac) / sizeof ac->entries[0])
        return COSYNC_ENOMEM;
    ac = cosync__mem_alloc(loop->alloc ? &loop->alloc_copy : NULL,
                           sizeof *ac + n * sizeof ac->entries[0]);
    if (!ac)
        return COSYNC_ENOMEM;
    *ac = (struct cosync__as_completed){.loop = loop, .n = n, .custom_alloc = loop->alloc != NULL};
    if (loop->alloc)
        ac->alloc = loop->alloc_copy;
    for (size_t i = 0; i < n; i++)
        ac->entries[i] = (cosync__waiter){.ops = &cosync__as_completed_entry_ops,
                                          .obj = tasks[i].rec,
                                          .data = i,
                                          .state = COSYNC__W_IDLE};
    int rc = queue_finished(ac, ndone);
    for (size_t i = 0; !rc && i < n; i++) {
        cosync__waiter *e = &ac->entries[i];
        if (e->state != COSYNC__W_IDLE)
            continue; /* finished, queued */
        if (listed_before(ac, e->obj)) {
            rc = COSYNC_EINVAL;
            break;
        }
        cosync__task_await_link(e->obj, e);
        e->state = COSYNC__W_WAITING;
        ac->linked++;
    }
    if (rc) {
        drop_entries(ac, true);
        free_iterator(ac);
        return rc;
    }
    ac->finished_at_init = ndone > 0;
    ac->switches_at_init = loop->switches;
    cosync__list_push_back(&loop->iterators, &ac->in_loop);
    it->impl = ac;
    return 0;
}

/* asyncio passes the tasks that had finished before as_completed() on
 * through done callbacks that run one loop step later, so the first await
 * suspends once (a pending cancel is raised there, the tasks ready then run
 * first) unless the loop has run since: here, unless it has switched tasks
 * (docs/asyncio-mapping.md: where the two differ). */
static int first_step(struct cosync__as_completed *ac, struct cosync__task *cur, int64_t deadline)
{
    ac->finished_at_init = false;
    if (deadline == 0 || cur->loop->switches != ac->switches_at_init)
        return 0;
    ac->waiting = cur; /* no second caller meanwhile */
    int rc = cosync__step(cur);
    ac->waiting = NULL;
    return rc;
}

int cosync_as_completed_next(cosync_as_completed *it, size_t *index, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (!it || !it->impl || !index)
        return COSYNC_EINVAL;
    struct cosync__as_completed *ac = it->impl;
    if (ac->loop != cur->loop)
        return COSYNC_EPERM;
    if (ac->waiting)
        return COSYNC_EBUSY;
    if (ac->finished_at_init) {
        int rc = first_step(ac, cur, deadline);
        if (rc)
            return rc;
    }
    if (!ac->done_head) {
        if (ac->given == ac->n)
            return 0;
        cosync__waiter *w = cosync__waiter_prepare(cur, &next_ops, ac);
        ac->waiting = cur;
        int rc = cosync__wait(w, deadline);
        ac->waiting = NULL;
        /* a task that finished at the deadline's instant does not count:
         * asyncio's timeout callback runs before the finish is passed on */
        if (rc)
            return rc;
    }
    cosync__node *node = ac->done_head;
    ac->done_head = node->next;
    if (!ac->done_head)
        ac->done_tail = NULL;
    node->next = NULL;
    cosync__waiter *e = cosync__container_of(node, cosync__waiter, node);
    e->state = COSYNC__W_IDLE;
    ac->given++;
    *index = (size_t)e->data;
    return 1;
}

int cosync_as_completed_destroy(cosync_as_completed *it)
{
    if (!it || !it->impl)
        return COSYNC_EINVAL;
    struct cosync__as_completed *ac = it->impl;
    if (ac->loop) {
        if (cosync__tls.loop && cosync__tls.loop != ac->loop)
            return COSYNC_EPERM;
        if (ac->waiting)
            return COSYNC_EBUSY;
        drop_entries(ac, true);
        cosync__list_remove(&ac->loop->iterators, &ac->in_loop);
    }
    free_iterator(ac); /* the loop may be gone: ac keeps its allocator */
    it->impl = NULL;
    return 0;
}

void cosync__as_completed_orphan_all(cosync_loop *loop)
{
    cosync__node *node;
    while ((node = cosync__list_pop_front(&loop->iterators))) {
        struct cosync__as_completed *ac =
            cosync__container_of(node, struct cosync__as_completed, in_loop);
        drop_entries(ac, false);
        ac->waiting = NULL;
        ac->loop = NULL;
    }
}
