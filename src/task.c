/*
 * Task records and the task API: spawn, join, detach, cancel, names.
 *
 * Records come from blocks that live as long as the loop and are recycled
 * through a free list, so a stale handle can always be checked against the
 * record's id without touching freed memory.
 */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "core.h"
#include "fault.h"

#define FIRST_BLOCK 256                 /* records; later blocks double, up to: */
#define MAX_BLOCK_SHIFT 5               /* 8192 records */
#define MAP_THRESHOLD ((size_t)1 << 20) /* bytes: larger blocks are mmap'd */

struct cosync__task *cosync__task_lookup(cosync_task h)
{
    struct cosync__task *t = h.rec;
    if (!t || !h.id || t->id != h.id)
        return NULL;
    return t;
}

/* Large blocks of the default allocator are mapped directly: they come
 * zeroed, so a record needs no memset. (Transparent huge pages would cut
 * the page faults of a million records from 70,000 to 120, but with the
 * common defrag=madvise setting a fault may stall in compaction for most of
 * a second: predictable beats fast on average.) */
static cosync__record_block *map_block(size_t *bytes)
{
    size_t page = cosync__page_size();
    size_t len = (*bytes + page - 1) & ~(page - 1);
    if (cosync__fault_hit())
        return NULL;
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    *bytes = len;
    return p;
}

static __attribute__((noinline, cold)) bool grow_records(cosync_loop *loop)
{
    size_t nblocks = 0;
    cosync__record_block **tail = &loop->blocks;
    for (; *tail; tail = &(*tail)->next)
        nblocks++;
    size_t count = (size_t)FIRST_BLOCK << (nblocks < MAX_BLOCK_SHIFT ? nblocks : MAX_BLOCK_SHIFT);
    size_t bytes = sizeof(cosync__record_block) + count * sizeof(struct cosync__task);
    bool mapped = !loop->alloc && bytes >= MAP_THRESHOLD;
    cosync__record_block *b = mapped ? map_block(&bytes) : cosync__mem_alloc(loop->alloc, bytes);
    if (!b)
        return false;
    if (mapped)
        count = (bytes - sizeof *b) / sizeof(struct cosync__task);
    else
        memset(b, 0, bytes);
    b->count = count;
    b->bytes = bytes;
    b->mapped = mapped;
    /* appended, so that walking the blocks meets records in spawn order */
    b->next = NULL;
    *tail = b;
    /* pushed in reverse so that records are handed out in address order */
    for (size_t i = count; i-- > 0;) {
        struct cosync__task *t = &b->recs[i];
        t->loop = loop;
        t->timer.when = COSYNC_FOREVER;
        t->timer.fire = cosync__waiter_timer_fired;
        t->next_ready = loop->free_recs;
        loop->free_recs = t;
    }
    return true;
}

void cosync__record_block_free(cosync_loop *loop, cosync__record_block *b)
{
    if (b->mapped)
        munmap(b, b->bytes);
    else
        cosync__mem_free(loop->alloc, b);
}

void cosync__record_free(struct cosync__task *t)
{
    cosync_loop *loop = t->loop;
    t->id = 0;
    t->state = COSYNC__T_FREE;
    t->next_ready = loop->free_recs;
    loop->free_recs = t;
    loop->nrecords--;
}

/* Names go into one-line reports: a control character in one would let it
 * break a line or forge one, so it is kept as '?'; and a name cut to fit
 * is cut before a UTF-8 character, never inside one. */
static __attribute__((noinline)) void set_name(struct cosync__task *t, const char *name)
{
    size_t n = strlen(name);
    if (n >= COSYNC__NAME_MAX) {
        n = COSYNC__NAME_MAX - 1;
        /* a UTF-8 character is at most 4 bytes: back off over at most 3
         * continuation bytes (more is not UTF-8, and is cut anywhere) */
        for (int k = 0; k < 3 && ((unsigned char)name[n] & 0xC0) == 0x80; k++)
            n--;
    }
    /* forwards: @name may be part of the name it replaces, at or after its start */
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        t->name[i] = c < 0x20 || c == 0x7F ? '?' : (char)c;
    }
    t->name[n] = '\0';
}

enum cosync__holder cosync__holder_state(const struct cosync__task *waiter,
                                         const struct cosync__task *t, uint64_t id, uint64_t serial)
{
    /* A record of this loop lives as long as the loop, so it is safe to
     * read; another loop's may be gone with it, and is never read. */
    if (!t || serial != waiter->loop->serial)
        return COSYNC__HOLDER_FOREIGN;
    if (t->id == id && cosync__task_alive(t))
        return COSYNC__HOLDER_ALIVE;
    return COSYNC__HOLDER_FINISHED;
}

void cosync__report_foreign_release(const char *what, const void *obj, const char *role,
                                    uint64_t owner_id)
{
    struct cosync__task *cur = cosync__current();
    fprintf(stderr, "cosync: %s %p released by %s%s%s, not by its %s (#%llu)\n", what, obj,
            cur ? "task '" : "code outside any task", cur ? cosync__task_name(cur) : "",
            cur ? "'" : "", role, (unsigned long long)owner_id);
}

const char *cosync__task_name(struct cosync__task *t)
{
    if (!t->name[0])
        snprintf(t->name, sizeof t->name, "task-%llu", (unsigned long long)t->id);
    return t->name;
}

/* The stack class that @opts asks for in @cls; COSYNC_EINVAL if none can
 * hold it. */
static __attribute__((noinline)) int opts_class(const cosync_task_opts *opts, int *cls)
{
    if (!opts->stack_size)
        return 0;
    if (opts->stack_size < 2 * cosync__page_size())
        return COSYNC_EINVAL;
    *cls = cosync__stack_class_of(opts->stack_size);
    return *cls < 0 ? COSYNC_EINVAL : 0;
}

/* Take a free record (there is one) for a new task, and queue it unless
 * it is to start eagerly. */
static inline struct cosync__task *new_task(cosync_loop *loop, cosync_task_fn fn, void *arg,
                                            int cls, bool eager)
{
    struct cosync__task *t = loop->free_recs;
    loop->free_recs = t->next_ready;
    loop->nrecords++;
    loop->nalive++;

    /* Free records keep these invariants, so spawn need not write them:
     * stack, awaits, next_claimed and group NULL, claimed none, away 0,
     * waiter idle, timer disarmed (see grow_records and the paths that end
     * a task). */
    /* four neighbouring bytes, one store (claimed is none and unguarded
     * set at the first run anyway) */
    t->detached = false;
    t->claimed = COSYNC__CLAIM_NONE;
    t->cancel_pending = false;
    t->unguarded = false;
    t->cancel_count = 0;
    t->id = ++loop->next_id;
    t->fn = fn;
    t->arg = arg;
    t->stack_cls = (int8_t)cls;
    t->name[0] = '\0';
    /* the spawner's, as asyncio copies the current context into a task */
    struct cosync__task *cur = cosync__current();
    t->local = cur ? cur->local : NULL;
    if (!eager)
        cosync__make_ready(t);
    t->state = COSYNC__T_FRESH;
    return t;
}

/* Whether a task spawned now with @opts starts eagerly: asked for (by the
 * options or the loop's), and spawned by a task of @loop, as asyncio
 * starts a task eagerly only from inside its running loop. */
static bool starts_eagerly(const cosync_loop *loop, const cosync_task_opts *opts)
{
    if (!loop->eager_tasks && !(opts && opts->eager))
        return false;
    struct cosync__task *cur = cosync__current();
    return cur && cur->loop == loop;
}

static __attribute__((noinline)) int spawn_slow(cosync_loop *loop, struct cosync__task **out,
                                                cosync_task_fn fn, void *arg,
                                                const cosync_task_opts *opts)
{
    int cls = loop->default_cls;
    if (!fn)
        return COSYNC_EINVAL;
    if (opts) {
        int rc = opts_class(opts, &cls);
        if (rc)
            return rc;
    }
    if (!loop->free_recs && !grow_records(loop))
        return COSYNC_ENOMEM;
    bool dense = opts && opts->dense && COSYNC__DENSE_SUPPORTED;
    bool eager = starts_eagerly(loop, opts);
    struct cosync__task *t =
        new_task(loop, fn, arg, dense ? COSYNC__STACK_DENSE + cls : cls, eager);
    t->away = dense; /* its place is made at its first run (dense.c) */
    if (opts && opts->name)
        set_name(t, opts->name);
    if (opts && opts->local)
        t->local = opts->local;
    /* What clean-ups spawn during a close runs, but a task spawned from
     * the second round on by a task that was itself spawned during the
     * close is cancelled before it starts, so that a clean-up that spawns
     * its own replacement cannot keep the close going round after round.
     * (The close frees every record after it, so the mark need not be
     * cleared.) */
    if (__builtin_expect(loop->closing, 0)) {
        struct cosync__task *cur = cosync__current();
        t->close_marks |= COSYNC__BORN_CLOSING;
        if (loop->close_round > 1 && cur && (cur->close_marks & COSYNC__BORN_CLOSING))
            cosync__cancel_for_close(t);
    }
    *out = t;
    return eager;
}

/* The common case, no options and a free record at hand, without a call. */
int cosync__spawn(cosync_loop *loop, struct cosync__task **out, cosync_task_fn fn, void *arg,
                  const cosync_task_opts *opts)
{
    if (__builtin_expect(opts || !fn || !loop->free_recs || loop->slow_spawns, 0))
        return spawn_slow(loop, out, fn, arg, opts);
    *out = new_task(loop, fn, arg, loop->default_cls, false);
    return 0;
}

static cosync_task handle_of(struct cosync__task *t)
{
    return (cosync_task){t, t->id};
}

/* The handle of a task just spawned to *@task, or, with @task NULL, the
 * task detached. */
static inline void hand_out(struct cosync__task *t, cosync_task *task)
{
    if (task)
        *task = handle_of(t);
    else
        t->detached = true;
}

/* A spawn whose task starts eagerly: its handle out first (the task may
 * look for it), then its first step. */
static __attribute__((noinline)) int start_eagerly_as(struct cosync__task *t, cosync_task *task)
{
    hand_out(t, task);
    cosync__start_eagerly(t);
    return 0;
}

int cosync_loop_spawn(cosync_loop *loop, cosync_task *task, cosync_task_fn fn, void *arg,
                      const cosync_task_opts *opts)
{
    struct cosync__task *t;
    if (!loop)
        return COSYNC_EINVAL;
    int rc = cosync__spawn(loop, &t, fn, arg, opts);
    if (__builtin_expect(rc, 0))
        return rc < 0 ? rc : start_eagerly_as(t, task);
    hand_out(t, task);
    return 0;
}

int cosync_task_spawn(cosync_task *task, cosync_task_fn fn, void *arg, const cosync_task_opts *opts)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    return cosync_loop_spawn(cur->loop, task, fn, arg, opts);
}

int cosync__spawn_started(cosync_task *task, cosync_task_fn fn, void *arg,
                          const cosync_task_opts *opts, const bool *ran)
{
    cosync_task_opts o = opts ? *opts : (cosync_task_opts){0};
    o.eager = true;
    int rc = cosync_task_spawn(task, fn, arg, &o);
    if (rc)
        return rc;
    if (*ran)
        return cosync_task_detach(*task);
    /* its body did not run: collect it, its status is the error; one
     * that has yet to end (its stack refused) ends detached, by itself */
    int status = COSYNC_ENOMEM;
    if (cosync_task_join(*task, &status, NULL, 0) != 0)
        (void)cosync_task_detach(*task);
    return status < 0 ? status : COSYNC_ENOMEM;
}

/* ---- finishing and collecting ---------------------------------------- */

static void join_cancel(cosync__waiter *w);
static void join_describe(const cosync__waiter *w, char *buf, size_t size);
static bool join_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on);
static const cosync__waiter_ops join_ops = {"join", join_cancel, join_describe, join_give_up};
static void task_wait_cancel(cosync__waiter *w);
static void task_wait_describe(const cosync__waiter *w, char *buf, size_t size);
static const cosync__waiter_ops task_wait_ops = {"task wait", task_wait_cancel, task_wait_describe,
                                                 NULL};
static bool task_await_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on);
static const cosync__waiter_ops task_await_ops = {"task await", task_wait_cancel,
                                                  task_wait_describe, task_await_give_up};

/* ---- the waits on a task ----------------------------------------------
 * Every wait for one task to finish (a join, a gather's or wait_for's wait
 * for it, a cosync_task_wait, an as_completed's entry, a done callback)
 * is on the task's list from the moment it starts until the finish grants
 * it or it ends otherwise (its ops->cancel, or cosync_callback_cancel,
 * takes it off), so every waiter on the list is WAITING. The list is a
 * single pointer in the record, newest first: a node's next is the wait
 * that began before it, its prev the one after. */

static inline void await_link(struct cosync__task *t, cosync__waiter *w)
{
    cosync__node *n = &w->node;
    n->prev = NULL;
    n->next = t->awaits;
    if (n->next)
        n->next->prev = n;
    t->awaits = n;
}

static void await_unlink(struct cosync__task *t, cosync__waiter *w)
{
    cosync__node *n = &w->node;
    if (n->prev)
        n->prev->next = n->next;
    else
        t->awaits = n->next;
    if (n->next)
        n->next->prev = n->prev;
    n->next = n->prev = NULL;
}

void cosync__task_await_link(struct cosync__task *t, cosync__waiter *w)
{
    await_link(t, w);
}

void cosync__task_await_unlink(struct cosync__task *t, cosync__waiter *w)
{
    await_unlink(t, w);
}

/* A task wait's grant carries the outcome, because the record may be
 * collected and reused before the waiter runs: the result in data, the
 * status (0 or negative) in obj, as an integer. The waiter is off the list
 * by then, so it needs the task no more; and obj then holds no object's
 * address, so a check that compares a granted waiter's obj with an
 * object (cosync__handed_over) cannot mistake it for one. A task await
 * that gave up (shielded since) is granted the reason it gave up with. */
static void grant_outcome(cosync__waiter *w, const struct cosync__task *t)
{
    w->data = (uintptr_t)t->result;
    w->obj = (void *)(intptr_t)t->status;
    cosync__grant(w, w->shielded ? w->result : 0);
}

/* The task has finished: wake every wait for it, in the order they began,
 * as asyncio runs a finished task's done callbacks in the order they were
 * added. */
static __attribute__((noinline)) void wake_awaits(struct cosync__task *t)
{
    cosync__node *n = t->awaits;
    t->awaits = NULL;
    while (n->next)
        n = n->next;
    while (n) {
        cosync__node *newer = n->prev;
        cosync__waiter *w = cosync__container_of(n, cosync__waiter, node);
        n->next = n->prev = NULL;
        if (w->ops == &join_ops)
            cosync__grant(w, 0);
        else if (w->ops == &cosync__as_completed_entry_ops)
            cosync__as_completed_task_done(w);
        else if (w->ops == &cosync__done_callback_ops)
            cosync__callback_task_done(w, t);
        else
            grant_outcome(w, t);
        n = newer;
    }
}

/* A task cancelled by cosync_loop_destroy has finished: the round of the
 * close may end. Out of line, so that the finish tests the mark with one
 * compare and nothing more. */
static __attribute__((noinline)) void closing_task_finished(struct cosync__task *t)
{
    t->close_marks &= (uint8_t)~COSYNC__CLOSING;
    if (--t->loop->closing_left == 0)
        cosync__cut_turn(t->loop);
}

/* Called once per task, when it finishes (ran or not). May free @t. */
void cosync__task_finished(struct cosync__task *t, int status, void *result)
{
    cosync_loop *loop = t->loop;
    t->state = COSYNC__T_DONE;
    t->status = status;
    t->result = result;
    t->finish_seq = ++loop->finished;
    loop->nalive--;
    if (t->group)
        cosync__taskgroup_child_done(t);
    if (__builtin_expect(t->claimed == COSYNC__CLAIM_WATCH, 0)) {
        struct cosync__task *j = t->watcher;
        if (j->w.state == COSYNC__W_WAITING && j->w.ops == &cosync__watch_ops)
            cosync__watched_task_done(j, t);
    }
    cosync__node *first = t->awaits;
    if (first) {
        /* the common case, one join, without the walk */
        cosync__waiter *w = cosync__container_of(first, cosync__waiter, node);
        if (__builtin_expect(!first->next && w->ops == &join_ops, 1)) {
            t->awaits = NULL;
            cosync__grant(w, 0);
        } else {
            wake_awaits(t);
        }
    }
    /* The run's main task, or the last task of a round of the close: the
     * run returns once the tasks ready now have run, the waits for this
     * one just woken among them, as asyncio finishes the iteration in
     * which run_until_complete's future is done, with the done callbacks
     * queued behind the one that stops the loop. */
    if (t == loop->until)
        cosync__cut_turn(loop);
    if (__builtin_expect(t->close_marks >= COSYNC__CLOSING, 0))
        closing_task_finished(t);
    if (t->group)
        cosync__taskgroup_wake_owner(t);
    if (t->detached)
        cosync__record_free(t);
}

/* Hand a finished task's outcome to a caller's (optional) out-parameters. */
static void outcome_to(int *status, void **result, int st, void *res)
{
    if (status)
        *status = st;
    if (result)
        *result = res;
}

void cosync__collect(struct cosync__task *t, int *status, void **result)
{
    outcome_to(status, result, t->status, t->result);
    cosync__record_free(t);
}

/* ---- join ------------------------------------------------------------ */

/* Cancel the tasks claimed by one gather from @first on, but the last,
 * which is returned (give_up's pass_on). */
static struct cosync__task *cancel_all_but_last(struct cosync__task *first)
{
    struct cosync__task *t = first;
    for (; t->next_claimed; t = t->next_claimed)
        cosync__cancel(t);
    return t;
}

void cosync__cancel_claimed(struct cosync__task *first)
{
    cosync__cancel(cancel_all_but_last(first));
}

/* A join leaves its task alone (it only leaves the task's list); a gather
 * or wait_for whose wait ends before it began (a cancellation pending, a
 * deadline passed) cancels the rest. */
static void join_cancel(cosync__waiter *w)
{
    await_unlink(w->obj, w);
    if (w->data == COSYNC__AWAIT_CANCEL_REST)
        cosync__cancel_claimed(w->obj);
}

/* A gather or wait_for that gives up while it waits cancels the task and
 * the rest, and goes on waiting for the task where it was: as 3.12's
 * wait_for, whose caller never leaves the task's done callbacks, it is
 * woken by the finish in the place its wait began. Each further cancel of
 * the caller (the wait is shielded by then) is passed on to them again,
 * as asyncio passes every cancel() on to the futures a task awaits. */
static bool join_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on)
{
    switch (w->data) {
    case COSYNC__AWAIT_CANCEL_REST:
        w->data = result == COSYNC_ETIMEDOUT ? COSYNC__AWAIT_GAVE_UP_TIMEDOUT
                                             : COSYNC__AWAIT_GAVE_UP_CANCELLED;
        w->shielded = true;
        break;
    case COSYNC__AWAIT_SHIELDED:
    case COSYNC__AWAIT_GAVE_UP_TIMEDOUT:
    case COSYNC__AWAIT_GAVE_UP_CANCELLED:
        w->data = COSYNC__AWAIT_GAVE_UP_CANCELLED; /* a cancel outranks the deadline */
        break;
    default:
        return false; /* a join leaves its task alone */
    }
    *pass_on = cancel_all_but_last(w->obj);
    return true;
}

static void join_describe(const cosync__waiter *w, char *buf, size_t size)
{
    struct cosync__task *t = w->obj;
    snprintf(buf, size, "join of task '%s' (#%llu)", cosync__task_name(t),
             (unsigned long long)t->id);
}

/* Check that the current task may wait for the task @h: 0 with the two in
 * *@out and *@curp, or COSYNC_EPERM, COSYNC_ESRCH, COSYNC_EDEADLK. */
static inline __attribute__((always_inline)) int awaitable(cosync_task h, struct cosync__task **out,
                                                           struct cosync__task **curp)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    struct cosync__task *t = cosync__task_lookup(h);
    if (!t)
        return COSYNC_ESRCH;
    if (t->loop != cur->loop)
        return COSYNC_EPERM;
    if (t == cur)
        return COSYNC_EDEADLK;
    *out = t;
    *curp = cur;
    return 0;
}

int cosync__joinable(cosync_task h, struct cosync__task **out, struct cosync__task **curp)
{
    int rc = awaitable(h, out, curp);
    if (rc)
        return rc;
    if ((*out)->detached)
        return COSYNC_EINVAL;
    if ((*out)->claimed)
        return COSYNC_EBUSY;
    return 0;
}

/* Wait for @t (claimed by @cur) to finish. Inlined into the join. */
static inline int await_task(struct cosync__task *cur, struct cosync__task *t, int64_t deadline,
                             enum cosync__await how)
{
    if (t->state == COSYNC__T_DONE)
        return 0;
    cosync__waiter *w = cosync__waiter_prepare(cur, &join_ops, t);
    w->data = how;
    w->shielded = how == COSYNC__AWAIT_SHIELDED;
    await_link(t, w);
    return cosync__wait(w, deadline);
}

int cosync__await_task(struct cosync__task *cur, struct cosync__task *t, int64_t deadline,
                       enum cosync__await how)
{
    if (t->state == COSYNC__T_DONE)
        return 0;
    int rc = await_task(cur, t, deadline, how);
    /* granted (the task finished), but after giving up on it in place */
    if (rc == 0 && cur->w.data == COSYNC__AWAIT_GAVE_UP_TIMEDOUT)
        return COSYNC_ETIMEDOUT;
    if (rc == 0 && cur->w.data == COSYNC__AWAIT_GAVE_UP_CANCELLED)
        return COSYNC_ECANCELED;
    return rc;
}

int cosync_task_join(cosync_task task, int *status, void **result, int64_t deadline)
{
    struct cosync__task *t, *cur;
    int rc = cosync__joinable(task, &t, &cur);
    if (rc)
        return rc;
    t->claimed = COSYNC__CLAIM_COLLECT;
    rc = await_task(cur, t, deadline, COSYNC__AWAIT_JOIN);
    t->claimed = COSYNC__CLAIM_NONE;
    if (rc)
        return rc;
    cosync__collect(t, status, result);
    return 0;
}

/* ---- task wait: any number of tasks awaiting one ---------------------- */

static void task_wait_cancel(cosync__waiter *w)
{
    await_unlink(w->obj, w);
}

static void task_wait_describe(const cosync__waiter *w, char *buf, size_t size)
{
    struct cosync__task *t = w->obj;
    snprintf(buf, size, "task '%s' (#%llu) to finish", cosync__task_name(t),
             (unsigned long long)t->id);
}

/* Wait for @t (not done) on its list, with task wait's or task await's
 * @ops; @shielded for a wait that nothing but the finish ends, which is
 * then granted @why. */
static int watch_task(struct cosync__task *cur, struct cosync__task *t,
                      const cosync__waiter_ops *ops, int64_t deadline, bool shielded, int why)
{
    cosync__waiter *w = cosync__waiter_prepare(cur, ops, t);
    w->shielded = shielded;
    w->result = why;
    await_link(t, w);
    return cosync__wait(w, deadline);
}

/* The outcome that a granted task wait or await carries (grant_outcome). */
static void granted_outcome(const cosync__waiter *w, int *status, void **result)
{
    outcome_to(status, result, (int)(intptr_t)w->obj, (void *)w->data);
}

/* The start of a wait for @h that collects nothing: 0 with the task in
 * *@out and the caller in *@curp if the task has yet to finish; 1 if it
 * has finished, its outcome given to @status and @result at once (no
 * suspension, as awaiting a done task in asyncio); or the error. */
static int watchable(cosync_task h, struct cosync__task **out, struct cosync__task **curp,
                     int *status, void **result)
{
    int rc = awaitable(h, out, curp);
    if (rc)
        return rc;
    if ((*out)->state != COSYNC__T_DONE)
        return 0;
    outcome_to(status, result, (*out)->status, (*out)->result);
    return 1;
}

int cosync_task_wait(cosync_task task, int *status, void **result, int64_t deadline)
{
    struct cosync__task *t, *cur;
    int rc = watchable(task, &t, &cur, status, result);
    if (rc)
        return rc < 0 ? rc : 0;
    rc = watch_task(cur, t, &task_wait_ops, deadline, false, 0);
    if (rc)
        return rc; /* only a grant returns 0, with the outcome in the waiter */
    granted_outcome(&cur->w, status, result);
    return 0;
}

/* ---- task await: a wait that passes its cancellation on --------------- */

/* Cancelled or at its deadline, a task await cancels the task and goes on
 * waiting for it where it was, as asyncio's awaiter stays among the task's
 * done callbacks when its cancel() reaches the task; each further cancel
 * (the wait is shielded by then) is passed on again, and outranks the
 * deadline. */
static bool task_await_give_up(cosync__waiter *w, int result, struct cosync__task **pass_on)
{
    if (w->state == COSYNC__W_GRANTED) {
        /* gave up, and the task has finished since: obj holds its status
         * now, and nothing is left to pass on */
        w->result = COSYNC_ECANCELED;
        return true;
    }
    w->shielded = true;
    w->result = result;
    *pass_on = w->obj;
    return true;
}

/* Give up on @t before the wait has begun (for @why): cancel it and wait
 * for it as if the wait had given up at once. */
static int cancel_and_watch(struct cosync__task *cur, struct cosync__task *t, int why)
{
    cosync__cancel(t);
    return watch_task(cur, t, &task_await_ops, COSYNC_FOREVER, true, why);
}

int cosync_task_await(cosync_task task, int *status, void **result, int64_t deadline)
{
    struct cosync__task *t, *cur;
    int rc = watchable(task, &t, &cur, status, result);
    if (rc)
        return rc < 0 ? rc : 0;
    if (cur->cancel_pending && deadline != 0) {
        /* delivered here, so passed on as one that comes during the wait:
         * a task cancelled while it runs cancels the future it awaits
         * next (asyncio's Task.__step), and so does cosync_wait_for */
        cur->cancel_pending = false;
        rc = cancel_and_watch(cur, t, COSYNC_ECANCELED);
    } else {
        rc = watch_task(cur, t, &task_await_ops, deadline, false, 0);
        if ((rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) && !cur->w.shielded)
            rc = cancel_and_watch(cur, t, rc); /* the deadline had passed at the call */
    }
    if (!cur->w.shielded) {
        if (rc == 0)
            granted_outcome(&cur->w, status, result);
        return rc;
    }
    /* gave up, and the task has finished since */
    int st = (int)(intptr_t)cur->w.obj;
    granted_outcome(&cur->w, status, result);
    if (rc != COSYNC_ECANCELED && st != COSYNC_ECANCELED)
        return 0; /* cancelled for the deadline, it ended otherwise */
    return rc;
}

int cosync_task_detach(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    if (!t)
        return COSYNC_ESRCH;
    if (t->claimed)
        return COSYNC_EBUSY;
    if (t->detached || t->group)
        return COSYNC_EINVAL;
    t->detached = true;
    if (t->state == COSYNC__T_DONE)
        cosync__record_free(t);
    return 0;
}

void cosync__report_task_end(struct cosync__task *t, const char *fmt, ...)
{
    FILE *out = t->loop->report ? t->loop->report : stderr;
    fprintf(out, "cosync: task '%s' (#%llu) ended without leaving ", cosync__task_name(t),
            (unsigned long long)t->id);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(out, fmt, ap);
    va_end(ap);
    fputc('\n', out);
    fflush(out);
}

/* ---- cancellation ---------------------------------------------------- */

/* Cancel @t; returns the task its wait passes the cancellation on to, if
 * it gives up in place (cosync__abort_wait), for the caller to cancel. */
static struct cosync__task *cancel_one(struct cosync__task *t)
{
    cosync__waiter *w = &t->w;
    if (w->passing_on)
        return NULL; /* come back through a cycle of waits: asyncio recurses without end */
    /* saturates: cosync_task_cancelling returns it as a non-negative int */
    if (t->cancel_count < INT_MAX)
        t->cancel_count++;
    struct cosync__task *pass_on = NULL;
    if (w->state == COSYNC__W_GRANTED && w->shielded && w->ops->give_up) {
        /* It gave up, and the task it waited for has finished since, but
         * it has not run yet: this cancel joins the one it passed on (one
         * COSYNC_ECANCELED, as asyncio raises one CancelledError) and goes
         * on to the tasks still running (a gather's rest). It is in the
         * ready queue, so it is marked only for the nested call. */
        w->passing_on = true;
        if (w->ops->give_up(w, COSYNC_ECANCELED, &pass_on) && pass_on)
            cosync__cancel(pass_on);
        w->passing_on = false;
        return NULL;
    }
    if (w->state == COSYNC__W_WAITING && w->ops->give_up) {
        /* marked before the hook, which may cancel other tasks first */
        w->passing_on = true;
        if (!w->shielded)
            pass_on = cosync__abort_wait(w, COSYNC_ECANCELED);
        else if (!w->ops->give_up(w, COSYNC_ECANCELED, &pass_on))
            t->cancel_pending = true; /* a wait that passes nothing on */
        w->passing_on = pass_on != NULL;
        return pass_on; /* if it gave up already, this cancel goes where the first went */
    }
    if (w->state == COSYNC__W_WAITING && !w->shielded) {
        cosync__abort_wait(w, COSYNC_ECANCELED);
    } else if (w->state == COSYNC__W_GRANTED && w->revocable && !w->shielded) {
        w->ops->cancel(w); /* hands the grant back; the task is already ready */
        w->state = COSYNC__W_CANCELLED;
        w->result = COSYNC_ECANCELED;
    } else if (w->state == COSYNC__W_CANCELLED && w->result == COSYNC_ECANCELED) {
        /* a cancellation is already on its way: requests do not stack up */
    } else {
        t->cancel_pending = true;
    }
    return NULL;
}

int cosync__cancel(struct cosync__task *t)
{
    if (t->state == COSYNC__T_DONE)
        return COSYNC_EALREADY;
    /* Down a chain of waits that pass it on (a task awaiting a task
     * awaiting a task...), in a loop: the stack does not grow with it.
     * Each task that passed it on stays marked until the chain's end (a
     * blocked task: its next_ready is free to list them), so that a
     * cycle ends where it closes; a task that a later, separate path
     * reaches passes it on again, as asyncio's cancel() walks each path. */
    struct cosync__task *marked = NULL;
    for (struct cosync__task *next = t; next && next->state != COSYNC__T_DONE;) {
        struct cosync__task *cur = next;
        next = cancel_one(cur);
        if (next) {
            cur->next_ready = marked;
            marked = cur;
        }
    }
    while (marked) {
        struct cosync__task *m = marked;
        marked = m->next_ready;
        m->next_ready = NULL;
        m->w.passing_on = false;
    }
    return 0;
}

int cosync_task_cancel(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    return t ? cosync__cancel(t) : COSYNC_ESRCH;
}

int cosync_task_cancelling(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    return t ? (int)t->cancel_count : COSYNC_ESRCH;
}

int cosync_task_uncancel(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    if (!t)
        return COSYNC_ESRCH;
    if (t->cancel_count > 0 && --t->cancel_count == 0) {
        t->cancel_pending = false;
        cosync__yield_uncancelled(t);
    }
    return (int)t->cancel_count;
}

/* ---- queries --------------------------------------------------------- */

bool cosync_task_done(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    return t && t->state == COSYNC__T_DONE;
}

int cosync_task_result(cosync_task task, int *status, void **result)
{
    struct cosync__task *t = cosync__task_lookup(task);
    if (!t)
        return COSYNC_ESRCH;
    if (t->state != COSYNC__T_DONE)
        return COSYNC_EAGAIN;
    outcome_to(status, result, t->status, t->result);
    return 0;
}

cosync_task cosync_task_current(void)
{
    struct cosync__task *cur = cosync__current();
    return cur ? handle_of(cur) : COSYNC_TASK_NONE;
}

const char *cosync_task_name(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    return t ? cosync__task_name(t) : NULL;
}

int cosync_task_set_name(cosync_task task, const char *name)
{
    struct cosync__task *t = cosync__task_lookup(task);
    if (!t)
        return COSYNC_ESRCH;
    if (!name)
        return COSYNC_EINVAL;
    set_name(t, name);
    return 0;
}

uint64_t cosync_task_id(cosync_task task)
{
    struct cosync__task *t = cosync__task_lookup(task);
    return t ? t->id : 0;
}

void *cosync_task_get_local(void)
{
    struct cosync__task *cur = cosync__current();
    if (cur)
        return cur->local;
    void **job = cosync__tls.job_local; /* a pool thread's job (threads/executor.c) */
    return job ? *job : NULL;
}

int cosync_task_set_local(void *local)
{
    struct cosync__task *cur = cosync__current();
    void **job = cur ? &cur->local : cosync__tls.job_local;
    if (!job)
        return COSYNC_EPERM;
    *job = local;
    return 0;
}
