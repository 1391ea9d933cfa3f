/*
 * asyncio.TaskGroup. The group lives in the owner's memory; children point
 * to it until they finish, which cosync_taskgroup_wait guarantees happens
 * before it returns.
 */
#include "core.h"

enum { TG_UNUSED, TG_OPEN, TG_EXITING, TG_LEFT };

static void tg_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_taskgroup *g = w->obj;
    snprintf(buf, size, "task group %p (%zu children left)", w->obj, g->live);
}

static const cosync__waiter_ops tg_ops = {"task group", NULL, tg_describe, NULL};

/* The count lives where the task's body was until it started, and is
 * read only under the mark, so a task that never opens one pays nothing. */
static void count_stack_group(struct cosync__task *t)
{
    if (t->close_marks & COSYNC__STACK_GROUP) {
        t->stack_groups++;
    } else {
        t->close_marks |= COSYNC__STACK_GROUP;
        t->stack_groups = 1;
    }
}

int cosync_taskgroup_init(cosync_taskgroup *group)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    /* the owner waits on it, and its children point to it while it is
     * away: on a dense task's stack its bytes would be elsewhere then */
    bool on_stack = cosync__stack_holds(cur, group);
    if (on_stack && cosync__is_dense(cur))
        return COSYNC_EINVAL;
    *group = (cosync_taskgroup){.loop = cur->loop,
                                .owner = cur,
                                .owner_id = cur->id,
                                .owner_cancels = cur->cancel_count,
                                .state = TG_OPEN,
                                .on_owner_stack = on_stack};
    if (on_stack)
        count_stack_group(cur);
    return 0;
}

static int abort_children(cosync_taskgroup *g)
{
    int n = 0;
    for (cosync__node *node = g->children.head; node; node = node->next)
        if (cosync__cancel(cosync__container_of(node, struct cosync__task, group_node)) == 0)
            n++;
    return n;
}

int cosync_taskgroup_spawn(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                           const cosync_task_opts *opts)
{
    struct cosync__task *cur = cosync__current();
    if (group->state != TG_OPEN && !(group->state == TG_EXITING && group->live))
        return COSYNC_EPERM;
    if (group->aborting || !cur || cur->loop != group->loop)
        return COSYNC_EPERM;
    struct cosync__task *t;
    int rc = cosync__spawn(group->loop, &t, fn, arg, opts);
    if (rc < 0)
        return rc;
    t->group = group;
    cosync__list_push_back(&group->children, &t->group_node);
    group->live++;
    if (task)
        *task = (cosync_task){t, t->id};
    else
        t->detached = true;
    if (rc)
        cosync__start_eagerly(t);
    return 0;
}

int cosync_taskgroup_cancel(cosync_taskgroup *group)
{
    return abort_children(group);
}

static bool owner_alive(const cosync_taskgroup *g)
{
    return g->owner->id == g->owner_id && g->owner->state != COSYNC__T_DONE;
}

/* Called by the scheduler when a child finishes, before the waits for the
 * child are woken (as the group's done callback, added when asyncio's
 * TaskGroup creates the child, runs before any other): a failure cancels
 * the siblings first, so that one waiting for the failed child is
 * cancelled in that wait rather than handed the failure. The child keeps
 * its group until cosync__taskgroup_wake_owner, once those waits are
 * woken. */
void cosync__taskgroup_child_done(struct cosync__task *t)
{
    cosync_taskgroup *g = t->group;
    cosync__list_remove(&g->children, &t->group_node);
    g->live--;
    if (t->status < 0 && t->status != COSYNC_ECANCELED) {
        if (!g->error)
            g->error = t->status;
        if (!g->aborting) {
            g->aborting = true;
            abort_children(g);
            if (g->state == TG_OPEN && owner_alive(g)) {
                /* interrupt the owner's body, as asyncio does; taken back in
                 * wait, if it was counted (a count at INT_MAX stays there) */
                uint32_t before = g->owner->cancel_count;
                cosync__cancel(g->owner);
                g->owner_cancel_requested = g->owner->cancel_count != before;
            }
        }
    }
}

/* The owner waiting in cosync_taskgroup_wait is woken by the last child's
 * finish, behind the waits for that child, as asyncio's owner is woken by
 * a callback that the group's done callback schedules. */
void cosync__taskgroup_wake_owner(struct cosync__task *t)
{
    cosync_taskgroup *g = t->group;
    t->group = NULL;
    cosync__waiter *w = &g->owner->w;
    if (g->live == 0 && owner_alive(g) && w->state == COSYNC__W_WAITING && w->ops == &tg_ops &&
        w->obj == g)
        cosync__grant(w, 0);
}

int cosync_taskgroup_wait(cosync_taskgroup *group, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur || cur != group->owner || cur->id != group->owner_id || group->state != TG_OPEN)
        return COSYNC_EPERM;
    group->state = TG_EXITING;
    int propagate = 0;
    /* Cancellations from before the group was opened are not its business
     * (the owner may have been cancelled, handled it, and opened a group
     * to clean up), nor is the one the group itself asked for. */
    uint32_t ours = group->owner_cancels + (group->owner_cancel_requested ? 1u : 0u);
    if (cur->cancel_count > ours) {
        /* the owner leaves the scope because it was cancelled; a request
         * not delivered yet is delivered by this return, and only here */
        propagate = COSYNC_ECANCELED;
        cur->cancel_pending = false;
        group->aborting = true;
        abort_children(group);
    }
    while (group->live) {
        cosync__waiter *w = cosync__waiter_prepare(cur, &tg_ops, group);
        w->shielded = group->aborting;
        int rc = cosync__wait(w, group->aborting ? COSYNC_FOREVER : deadline);
        if (rc && !group->aborting) {
            propagate = rc;
            group->aborting = true;
            abort_children(group);
        } else if (rc == COSYNC_ECANCELED && !propagate) {
            /* cancelled from outside after a failure made the group abort,
             * before its wait turned shielded: delivered after it (below) */
            propagate = COSYNC_ECANCELED;
        }
    }
    if (group->owner_cancel_requested) {
        group->owner_cancel_requested = false;
        if (cur->cancel_count == ours)
            cur->cancel_pending = false; /* the group's own request, if never delivered */
        if (cosync_task_uncancel((cosync_task){cur, cur->id}) == 0 && propagate == COSYNC_ECANCELED)
            propagate = 0;
    }
    group->state = TG_LEFT;
    if (group->on_owner_stack && --cur->stack_groups == 0)
        cur->close_marks &= (uint8_t)~COSYNC__STACK_GROUP;
    /* a child's failure is reported rather than the owner's cancellation
     * from outside, which this return would have delivered: it comes at
     * the owner's next suspension instead of being lost (3.13's TaskGroup
     * cancels its parent again before raising the errors) */
    if (group->error && propagate == COSYNC_ECANCELED)
        cur->cancel_pending = true;
    return group->error ? group->error : propagate;
}

/* Cut loose and cancel the children whose group lay in @owner's stack.
 * The group is not read: the frame it lay in has returned, and the
 * finish's own frames may already cover its bytes. Its list of children
 * need not be kept, as they all go (and a record's node is written
 * afresh when it joins a group). Only a live child points to a group. */
static size_t cut_loose(struct cosync__task *owner)
{
    size_t n = 0;
    cosync__for_each_record (owner->loop, c) {
        if (!cosync__stack_holds(owner, c->group))
            continue;
        c->group = NULL;
        cosync__cancel(c);
        n++;
    }
    return n;
}

void cosync__taskgroup_owner_ends(struct cosync__task *t)
{
    t->close_marks &= (uint8_t)~COSYNC__STACK_GROUP;
    size_t n = cut_loose(t);
    if (!n)
        return;
    FILE *out = t->loop->report ? t->loop->report : stderr;
    fprintf(out,
            "cosync: task '%s' (#%llu) ended without leaving its task group "
            "(cosync_taskgroup_wait): %zu child%s cancelled\n",
            cosync__task_name(t), (unsigned long long)t->id, n, n == 1 ? "" : "ren");
    fflush(out);
}
