/*
 * asyncio.TaskGroup. The group lives in the owner's memory; children point
 * to it until they finish, which cosync_taskgroup_wait guarantees happens
 * before it returns.
 */
#include "waitq.h" /* and core.h */

enum { TG_UNUSED, TG_OPEN, TG_EXITING, TG_LEFT };

static void tg_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_taskgroup *g = w->obj;
    snprintf(buf, size, "task group %p (%zu children left)", w->obj, g->live);
}

static const cosync__waiter_ops tg_ops = {"task group", NULL, tg_describe, NULL};

static void count_stack_group(struct cosync__task *t)
{
    cosync__scopes_open(t);
    t->stack_groups++;
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

/* ---- the limit (cosync_taskgroup_set_limit) ------------------------- */

static bool slot_free(const cosync_taskgroup *g)
{
    return g->live + g->reserved < g->limit;
}

/* Hand the free slots to the tasks waiting in cosync_taskgroup_go, in
 * order: each is reserved for it until it spawns. */
static void hand_out_slots(cosync_taskgroup *g)
{
    cosync__waiter *w;
    while ((w = cosync__waitq_head(&g->slots)) && (g->limit == 0 || slot_free(g))) {
        g->reserved++;
        cosync__waitq_grant(&g->slots, w, 0);
    }
}

/* The group aborts: no child may be spawned any more, so the tasks
 * waiting for a slot are told at once. */
static void start_aborting(cosync_taskgroup *g)
{
    g->aborting = true;
    cosync__waitq_grant_all(&g->slots, COSYNC_EPERM);
}

static void slot_cancel(cosync__waiter *w)
{
    cosync__waitq_remove(&((cosync_taskgroup *)w->obj)->slots, w);
}

static void slot_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const cosync_taskgroup *g = w->obj;
    snprintf(buf, size, "task group %p's slot (%zu running, limit %zu, %u waiting)", w->obj,
             g->live, g->limit, (unsigned)g->slots.n);
}

static const cosync__waiter_ops slot_ops = {"task group slot", slot_cancel, slot_describe, NULL};

/* Whether the current task may spawn into @g: 0, or COSYNC_EPERM. A
 * group being left takes children while it has some, or slots handed
 * out (a task holding one counts its own). */
static int may_spawn(const cosync_taskgroup *g, const struct cosync__task *cur)
{
    if (g->state != TG_OPEN && !(g->state == TG_EXITING && (g->live || g->reserved)))
        return COSYNC_EPERM;
    if (g->aborting || !cur || cur->loop != g->loop)
        return COSYNC_EPERM;
    return 0;
}

int cosync_taskgroup_set_limit(cosync_taskgroup *group, size_t limit)
{
    if (group->state != TG_OPEN)
        return COSYNC_EPERM;
    group->limit = limit;
    hand_out_slots(group);
    return 0;
}

static int spawn_child(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                       const cosync_task_opts *opts);
static void wake_owner_if_done(cosync_taskgroup *g);

int cosync_taskgroup_go(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                        const cosync_task_opts *opts, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    int rc = may_spawn(group, cur);
    if (rc)
        return rc;
    if (group->limit == 0 || (cosync__waitq_empty(&group->slots) && slot_free(group)))
        return spawn_child(group, task, fn, arg, opts);
    rc = cosync__waitq_wait(&group->slots, &slot_ops, group, 0, deadline);
    if (rc)
        return rc;
    rc = may_spawn(group, cur);
    group->reserved--; /* the slot handed to this task: a child's now, or free */
    if (rc == 0)
        rc = spawn_child(group, task, fn, arg, opts);
    if (rc) {
        hand_out_slots(group); /* not taken: the next one's */
        wake_owner_if_done(group);
    }
    return rc;
}

int cosync_taskgroup_spawn(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                           const cosync_task_opts *opts)
{
    if (group->limit)
        return cosync_taskgroup_go(group, task, fn, arg, opts, 0);
    int rc = may_spawn(group, cosync__current());
    if (rc)
        return rc;
    return spawn_child(group, task, fn, arg, opts);
}

static int spawn_child(cosync_taskgroup *group, cosync_task *task, cosync_task_fn fn, void *arg,
                       const cosync_task_opts *opts)
{
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
            start_aborting(g);
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
    if (g->limit && !g->aborting)
        hand_out_slots(g);
}

/* The owner waiting in cosync_taskgroup_wait is woken by the last child's
 * finish, behind the waits for that child, as asyncio's owner is woken by
 * a callback that the group's done callback schedules. */
/* The owner in cosync_taskgroup_wait goes on once no child is left, nor
 * a slot handed to a task that may still spawn one. */
static void wake_owner_if_done(cosync_taskgroup *g)
{
    cosync__waiter *w = &g->owner->w;
    if (g->live == 0 && g->reserved == 0 && owner_alive(g) && w->state == COSYNC__W_WAITING &&
        w->ops == &tg_ops && w->obj == g)
        cosync__grant(w, 0);
}

void cosync__taskgroup_wake_owner(struct cosync__task *t)
{
    cosync_taskgroup *g = t->group;
    t->group = NULL;
    wake_owner_if_done(g);
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
        start_aborting(group);
        abort_children(group);
    }
    while (group->live || group->reserved) {
        cosync__waiter *w = cosync__waiter_prepare(cur, &tg_ops, group);
        w->shielded = group->aborting;
        int rc = cosync__wait(w, group->aborting ? COSYNC_FOREVER : deadline);
        if (rc && !group->aborting) {
            propagate = rc;
            start_aborting(group);
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
    if (group->on_owner_stack) {
        cur->stack_groups--;
        cosync__scopes_closed(cur);
    }
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
        if (c->w.ops == &slot_ops && cosync__stack_holds(owner, c->w.obj)) {
            /* in cosync_taskgroup_go, which must not read the group
             * again: one handed a slot returns EPERM instead; every one
             * waiting goes, so none is unlinked from the list (whose head
             * was in the frame) */
            if (c->w.state == COSYNC__W_GRANTED) {
                c->w.result = COSYNC_EPERM;
            } else if (c->w.state == COSYNC__W_WAITING) {
                c->w.node.next = c->w.node.prev = NULL;
                cosync__grant(&c->w, COSYNC_EPERM);
            }
            /* and it may be a child of the group too: on to that */
        }
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
    t->stack_groups = 0;
    size_t n = cut_loose(t);
    if (!n)
        return;
    cosync__report_task_end(t, "its task group (cosync_taskgroup_wait): %zu child%s cancelled", n,
                            n == 1 ? "" : "ren");
}
