/* ctest-timeout: 120 */
/*
 * test_tree_model.c - a randomized test of the calls that wait for other
 * tasks (cosync_gather, cosync_wait_for, task groups, cosync_task_join,
 * cosync_task_await, cosync_wait, cosync_as_completed,
 * cosync_gather_propagate) under cancellation and deadlines.
 *
 * test_combinators.c pins each rule down in a scripted scenario; this test
 * looks for the interleavings nobody scripted. Each seed grows a tree of
 * tasks: a node is a leaf (it sleeps and yields a few times, then succeeds
 * or fails with a status of its own) or a parent that spawns one to five
 * children and waits for them in one of eight ways: a gather (after
 * cancelling itself, one time in eight, so that a request is surely
 * pending at the call), a wait_for
 * (one child), a task group (a child in two spawned with a handle; its
 * owner may sleep, spawn a late child or cancel the group before its
 * wait, and tries a spawn once it has left), joins one by one (each with
 * a deadline and, when one passes, a cancel and a join without one), an
 * await (one child: a cancel or the deadline passed on to it, then a
 * join), a cosync_wait with a random return_when, an as_completed loop
 * until a call times out or is cancelled (these two only watch, and end
 * by cancelling the children left, one time in two, and gathering them
 * all), or a gather_propagate: its first deadline is taken before a
 * sleep of its own (one time in three), so that it may have passed and
 * children may have finished or failed by the call; after a failure the
 * children left are still its own: it calls gather_propagate again on
 * them (after cancelling some of them, one time in two), or gathers
 * them, or joins them one by one; before a call it may cancel itself, a
 * request then surely pending at the call; its body fails with the first
 * failure's status one time in two (as the exception propagates). Every
 * call that waits takes a random deadline (none, 0, or a few
 * milliseconds ahead). A node is a dense task one time in four, and
 * starts eagerly one time in four (cosync_task_opts.eager; on one seed in
 * five's loop, cosync_loop_opts.eager_tasks, every task its parent spawns
 * does): its spawn runs its first step, and an eager leaf ends in that
 * step one time in three. A chaos task cancels random nodes at random
 * times; a cancelled node returns COSYNC_ECANCELED at once, or after a
 * clean-up sleep, or withdraws the request (cosync_task_uncancel) and
 * carries on.
 *
 * Every node writes down what its body returned, its cancellation count
 * then, and when; from that the test knows the status the library must
 * report for it. Checked:
 *  - no child outlives the call that waits for it: when a gather, a
 *    wait_for, a task group's wait or a successful join returns, each of
 *    its children has finished (or was cancelled before it ever ran, and
 *    never ran);
 *  - every outcome handed out (gather's, wait_for's, await's, join's,
 *    gather_propagate's, and the joins of a group's children that have
 *    handles) is the status the child's own record predicts, and its
 *    result;
 *  - cosync_gather_propagate, with *failed < n, returns the status of
 *    the child that failed (COSYNC_ECANCELED included) first in the
 *    order they finished (a child that never ran finished when its
 *    first request came), before the call too, and that failure came
 *    before the call could give up (by its deadline, before any request
 *    for the caller during the call, and before the call if a request
 *    was surely pending), and it returns at that instant; it collects
 *    that child alone: the others' outcomes are untouched, and each of
 *    them is as done as its record says, its outcome readable with
 *    cosync_task_result, and carries only the cancellation requests
 *    noted (the call cancelled none). With *failed n: every child has
 *    finished and is collected, the call returned when the last
 *    finished, and 0 means that all succeeded, with no request for the
 *    caller before the last finished; a give-up (COSYNC_ECANCELED,
 *    COSYNC_ETIMEDOUT, COSYNC_EAGAIN as for any call) comes only with
 *    nothing failed and not all finished at the call, and no failure
 *    before the deadline (or the first request); every child that
 *    returned after the give-up was cancelled by it (or withdrew a
 *    request since the call); a request for the caller during the call
 *    makes it COSYNC_ECANCELED, and one pending at the call makes it
 *    give up at once (COSYNC_EAGAIN, the request left pending, for
 *    deadline 0). It never suspends when a child had failed, or all had
 *    finished, before the call, and with deadline 0 returns a failure or
 *    0 only without suspending;
 *  - a gather that gives up cancels every child still running as it
 *    does (at its deadline, at the first request during the call, or at
 *    once for deadline 0 or a request surely pending at the call): each
 *    child that returns after that carries the request, or withdrew it;
 *  - cosync_wait returns 0 only once its condition is met, by the
 *    deadline, with the index of the first child to finish (or to fail)
 *    in the order they finished, and times out only if it was not met
 *    before the deadline; as_completed hands each child out once, finished
 *    by the deadline, in the order they finished, and times out only if
 *    none it still held had finished before the deadline;
 *  - every return code is one the documentation allows at that point:
 *    COSYNC_EAGAIN only for deadline 0, COSYNC_ETIMEDOUT only once the
 *    deadline has come and a child was still unfinished then,
 *    COSYNC_ECANCELED only with a request behind it, 0 from a gather only
 *    if every child had finished by its deadline; a group returns the
 *    status of its first failing child if one failed (before an outside
 *    cancel, and before the deadline if it failed before the deadline),
 *    and 0 only if none failed, the deadline did not pass and nobody
 *    cancelled its owner;
 *  - cancel returns 0 for a task under way, COSYNC_EALREADY for one that
 *    finished and COSYNC_ESRCH once it is collected; a body that runs was
 *    never cancelled before it started; no ECANCELED without a request;
 *  - a node that nobody but the noted requests cancels (the root, a child
 *    joined one by one) returns with the cancellation count those requests
 *    and its withdrawals leave: in particular a group's owner, which may
 *    do work of its own before its wait, is cancelled by a child's failure
 *    during that work and the wait withdraws that request;
 *  - a group refuses new children (COSYNC_EPERM, nothing created) once a
 *    child has failed (an eager one in its spawn too) and once it has been
 *    left, and cosync_taskgroup_cancel cancels no more children than are
 *    alive; a sleep of the owner that begins after a child failed returns
 *    COSYNC_ECANCELED: the group's request waits for it, also when it
 *    came inside the owner's eager spawn of that child;
 *  - eager starts: when the spawn returns, the child has taken its first
 *    step (unless the loop's close cancelled it) and is done exactly if it
 *    returned in it; while the spawn is under way no other task starts or
 *    comes back from a wait, and no node in its first step comes back from
 *    a wait that suspended (the spawner goes on first); a cancel right
 *    after the spawn returns COSYNC_EALREADY if the child is done, else 0;
 *  - at the end: the loop ran without a deadlock, every task was collected
 *    and no timer is armed;
 *  - one seed in eight stops its loop at a random time and destroys it
 *    with the tree in flight: every task left is cancelled and cleans up
 *    under the same checks (cancellations nobody noted are allowed then),
 *    and the close must end without reporting a task stuck;
 *  - every other seed runs again with no dense task, and its nodes must
 *    return in the same order, with the same statuses, at the same
 *    virtual times: dense tasks run in the order plain ones would.
 *
 * Everything runs on the virtual clock from PRNG streams seeded by the
 * seed alone, so a seed replays exactly: a failure names its seed.
 * TREE_SEEDS sets how many seeds run, TREE_FIRST the first.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#define MAX_NODES 400
#define MAX_KIDS 5
#define MAX_DEPTH 4

enum kind {
    K_LEAF,
    K_GATHER,
    K_WAIT_FOR,
    K_GROUP,
    K_JOIN,
    K_AWAIT,
    K_WAIT,
    K_AS_COMPLETED,
    K_PROPAGATE,
    K_KINDS
};
static const char *const kind_name[] = {"leaf",  "gather",       "wait_for",
                                        "group", "join",         "await",
                                        "wait",  "as_completed", "gather_propagate"};

/* What a node does when one of its waits returns COSYNC_ECANCELED. */
enum reaction { R_RETURN, R_CLEANUP, R_ABSORB };

typedef struct node {
    int id, parent, depth;
    enum kind kind;
    enum reaction reaction;
    uint64_t rng;
    cosync_task t;
    bool has_handle; /* false: a group child the group frees */
    bool started, returned, collected;
    /* what its body returned, and its cancellation count and the time then */
    int ret_rc;
    int ret_cancelling;
    int64_t ret_time;
    uint64_t ret_seq;
    /* cancellation requests taken, and the COSYNC_ECANCELED it has seen */
    long requests, delivered;
    int expected;               /* its cancellation count as far as the requests noted tell */
    int64_t first_request;      /* the time of the first request since the call began */
    uint64_t first_request_seq; /* and the returns of nodes before it (M.seq then) */
    /* a request taken before it ever ran, and its time: it finishes then,
     * unrun (the clock does not move while a task is ready) */
    bool unrun_cancel;
    int64_t unrun_at;
    int64_t absorbed_at; /* when it last withdrew its requests */
    /* its parent's call cancels it when that call gives up (a gather, a
     * wait_for, a group); the COSYNC_ECANCELED only that explains */
    bool parent_cancels;
    long implicit;
    int kids[MAX_KIDS];
    int nkids;
    cosync_taskgroup group; /* here, not in the body's frame: a dense owner's frame moves */
    bool group_cancelled;   /* its owner called cosync_taskgroup_cancel */
    bool eager;             /* spawned to start eagerly */
    bool first_step;        /* its eager start is under way: its spawner waits for it */
    uint64_t call_switches; /* the loop's switches as its call began, in an eager start */
} node;

static struct {
    uint64_t seed;
    node n[MAX_NODES];
    int nn;
    uint64_t seq;
    bool stop;
    uint64_t chaos_rng;
    bool plain; /* the replay: no node is a dense task */
    /* one seed in eight: the chaos task stops the loop after this many of
     * its turns, and the loop is then destroyed with the tree in flight,
     * which cancels every task left (as asyncio.run's clean-up does) */
    int close_after;
    bool closing;    /* the loop was stopped: cancellations nobody noted come */
    bool destroying; /* in cosync_loop_destroy: its rounds cancel tasks spawned in them */
    bool eager_loop; /* the loop's option: every spawn by a task starts eagerly */
    /* eager starts under way (nested), and the node of the innermost: only
     * it runs, and the nodes whose first steps are under way */
    int eager_depth;
    int starting;
} M;

/* The nodes' returns in a seed's first run, in order (node, status, time):
 * its replay with plain tasks only must return the same, since dense
 * tasks run in the order plain ones would. */
static struct {
    struct {
        int id, rc;
        int64_t time;
    } at[MAX_NODES];
    int n, pos;
} trace;

typedef struct totals {
    long nodes, cancels, timeouts, canceled_calls, absorbed, failures, fresh, closes;
    long late_spawns, late_refused, group_cancels;
    long prop_failures, prop_gave_up, prop_at_once, self_cancels;
    long eager, eager_done, eager_owner_cancels;
} totals;
static totals total;

#define FAIL(fmt, ...) CHECK__FAIL("seed %llu: " fmt, (unsigned long long)M.seed, __VA_ARGS__)

/* ========================================================================
 * What the library must report for a node
 * ===================================================================== */

static int fail_code(const node *x)
{
    return -(20000 + x->id);
}

static void *result_of(const node *x)
{
    return (void *)(intptr_t)(x->id + 1);
}

static bool finished(const node *x)
{
    return x->returned || !x->started;
}

/* The status a node's collector must get: a task cancelled before it ran
 * ends COSYNC_ECANCELED; one that ran ends with its negative return, or
 * COSYNC_ECANCELED if its cancellation count was above 0 then, or 0. */
static int predicted(const node *x)
{
    if (!x->started)
        return COSYNC_ECANCELED;
    if (x->ret_rc < 0)
        return x->ret_rc;
    return x->ret_cancelling > 0 ? COSYNC_ECANCELED : 0;
}

/* It failed its own way: a status that is an error other than
 * COSYNC_ECANCELED (asyncio does not count a cancelled task as failed). */
static bool failed(const node *k)
{
    int p = predicted(k);
    return p < 0 && p != COSYNC_ECANCELED;
}

static void check_outcome(const node *parent, const node *kid, int status, void *result)
{
    if (!finished(kid))
        FAIL("node %d (%s): child %d handed over before it finished", parent->id,
             kind_name[parent->kind], kid->id);
    if (status != predicted(kid))
        FAIL("node %d (%s): child %d's status is %s, its record says %s", parent->id,
             kind_name[parent->kind], kid->id, cosync_err_name(status),
             cosync_err_name(predicted(kid)));
    void *want = kid->started ? result_of(kid) : NULL;
    if (result != want)
        FAIL("node %d: child %d's result is %p, want %p", parent->id, kid->id, result, want);
}

/* ========================================================================
 * Deadlines and cancellation
 * ===================================================================== */

static int64_t pick_deadline(node *x)
{
    uint32_t r = rnd(&x->rng, 8);
    if (r < 3)
        return COSYNC_FOREVER;
    if (r == 3)
        return 0;
    return cosync_now() + COSYNC_US(rnd(&x->rng, 3000));
}

/* A cancellation request taken for @x (cosync_task_cancel returned 0). */
static void note_request(node *x)
{
    x->requests++;
    x->expected++;
    if (x->first_request == INT64_MAX) {
        x->first_request = cosync_now();
        x->first_request_seq = M.seq;
    }
    if (!x->started && !x->unrun_cancel) {
        x->unrun_cancel = true;
        x->unrun_at = cosync_now();
    }
}

/* A call of @x that waits for children: what the checks of its result
 * need of the moment it began. */
typedef struct window {
    int64_t dl;
    long req0;        /* requests taken before it */
    bool pend0;       /* a request may have been waiting for delivery */
    bool unfinished0; /* a child was surely unfinished when it began */
} window;

static window begin_call(node *x, int64_t dl)
{
    x->first_request = INT64_MAX;
    x->first_request_seq = UINT64_MAX;
    return (window){dl, x->requests, x->requests > x->delivered, false};
}

/* Whether one of the children kids[from..to) is surely unfinished: it
 * has not returned, and it has started or nobody cancelled it (one
 * cancelled before it ran finishes when the scheduler reaches it; once
 * the loop closes, or the group was cancelled, any may have been). */
static bool unfinished(const node *x, int from, int to)
{
    bool unnoted = M.closing || x->group_cancelled; /* cancels the model did not note */
    for (int i = from; i < to; i++) {
        const node *k = &M.n[x->kids[i]];
        if (!k->returned && (k->started || (k->requests == 0 && !unnoted)))
            return true;
    }
    return false;
}

/* A wait returned COSYNC_ECANCELED: a request must be behind it. */
static void saw_cancel(node *x, const char *what)
{
    if (M.closing)
        return;
    if (x->delivered < x->requests) {
        x->delivered++;
        return;
    }
    if (!x->parent_cancels)
        FAIL("node %d: %s returned COSYNC_ECANCELED with %ld requests, all delivered", x->id, what,
             x->requests);
    x->implicit++; /* checked against the parent's result */
}

/* A call of @x (in @w) returned COSYNC_ECANCELED: a request came during
 * it or was waiting, or its parent's call gave up. */
static void call_cancelled(node *x, const window *w, const char *what)
{
    total.canceled_calls++;
    if (x->requests > w->req0 || w->pend0 || M.closing) {
        saw_cancel(x, what);
        return;
    }
    if (!x->parent_cancels)
        FAIL("node %d: %s returned COSYNC_ECANCELED, no request", x->id, what);
    x->implicit++;
}

/* A child cancelled by nobody but its parent's call: that call gave up. */
static void check_implicit(const node *x, const char *what, bool gave_up)
{
    for (int i = 0; i < x->nkids && !M.closing; i++) {
        const node *k = &M.n[x->kids[i]];
        if (k->implicit && !gave_up)
            FAIL("node %d: child %d saw a cancellation nobody asked for, and %s did not give up",
                 x->id, k->id, what);
    }
}

/* ========================================================================
 * Eager starts
 * ===================================================================== */

/* While an eager start is under way, the spawner waits at the head of the
 * ready queue: only the node it started runs (and the nodes that one
 * starts eagerly in turn), and the first suspension of each gives the turn
 * back to its spawner. So no other task may start or come back from a
 * wait, and no node in its first step comes back from a wait that
 * suspended. */
static void check_no_eager_start(const char *who)
{
    if (M.eager_depth)
        FAIL("%s ran while node %d, spawned eagerly, took its first step", who, M.starting);
}

/* A call of @x that may suspend begins (SUSPENDS). */
static void before_wait(node *x)
{
    if (M.eager_depth)
        x->call_switches = switches();
}

/* That call returned @rc. */
static int after_wait(const node *x, int rc)
{
    if (!M.eager_depth)
        return rc;
    if (!x->first_step)
        FAIL("node %d came back from a wait while node %d, spawned eagerly, took its first step",
             x->id, M.starting);
    if (switches() != x->call_switches)
        FAIL("node %d, spawned eagerly, suspended in its first step and came back before its "
             "spawner went on",
             x->id);
    return rc;
}

/* @call, a call of the node @x that may suspend, checked by the rules of
 * eager starts above. */
#define SUSPENDS(x, call) (before_wait(x), after_wait((x), (call)))

/* The node's reaction to a delivered cancellation: the status to return
 * (COSYNC_ECANCELED), or 0 to carry on. */
static int react(node *x)
{
    switch (x->reaction) {
    case R_RETURN:
        return COSYNC_ECANCELED;
    case R_CLEANUP: {
        int rc = SUSPENDS(x, cosync_sleep(COSYNC_US(1 + rnd(&x->rng, 500))));
        if (rc == COSYNC_ECANCELED)
            saw_cancel(x, "clean-up sleep");
        else
            CHECK_OK(rc);
        return COSYNC_ECANCELED;
    }
    case R_ABSORB:
        break;
    }
    cosync_task self = cosync_task_current();
    while (cosync_task_cancelling(self) > 0)
        cosync_task_uncancel(self);
    x->delivered = x->requests; /* an undelivered request is dropped at 0 */
    x->expected = 0;
    x->absorbed_at = cosync_now();
    total.absorbed++;
    return 0;
}

/* ========================================================================
 * Nodes
 * ===================================================================== */

static int node_main(void *arg, void **result);

/* Make a child of @x (not spawned yet). */
static node *new_kid(node *x)
{
    node *k = &M.n[M.nn];
    *k = (node){.id = M.nn,
                .parent = x->id,
                .depth = x->depth + 1,
                .has_handle = true,
                .parent_cancels = x->kind != K_JOIN};
    k->rng = splitmix(M.seed * 1000003 + (uint64_t)k->id);
    bool leaf = k->depth >= MAX_DEPTH || M.nn + MAX_KIDS * 2 >= MAX_NODES || rnd(&k->rng, 3) == 0;
    k->kind = leaf ? K_LEAF : (enum kind)(1 + rnd(&k->rng, K_KINDS - 1));
    k->reaction = (enum reaction)rnd(&k->rng, 3);
    M.nn++;
    x->kids[x->nkids++] = k->id;
    return k;
}

/* A node is dense one time in four (not in the replay), and starts
 * eagerly one time in four (or always, on an eager loop). */
static cosync_task_opts opts_for(node *k)
{
    bool dense = rnd(&k->rng, 4) == 0; /* drawn in the replay too: the streams stay the same */
    bool eager = rnd(&k->rng, 4) == 0;
    k->eager = eager || M.eager_loop;
    return (cosync_task_opts){.dense = dense && !M.plain, .eager = eager};
}

/* After the eager spawn of @k: it has taken its first step, and it is
 * done exactly if it returned in that step; also once the loop has been
 * stopped (seed 3579 once ended the run inside the spawn, before that
 * step, and the spawn returned in the close). Spawned in the close
 * (@spawned_in_close), it may never have run: the close cancels some
 * tasks spawned during it before they run. */
static void check_first_step(const node *k, bool spawned_in_close)
{
    total.eager++;
    total.eager_done += k->returned;
    if (!k->started && !spawned_in_close)
        FAIL("node %d, spawned eagerly, has not run when its spawn returns", k->id);
    if (k->has_handle && cosync_task_done(k->t) != finished(k))
        FAIL("node %d, spawned eagerly, %s, and is %sdone when its spawn returns", k->id,
             k->returned  ? "returned"
             : k->started ? "suspended"
                          : "never ran",
             finished(k) ? "not " : "");
}

/* Spawn the node @k (a handle in k->t if it has one) with @o, in @group if
 * not NULL; the spawn's result. An eager start runs k's first step inside
 * the spawn, the spawner waiting at the head of the ready queue. */
static int spawn_node(node *k, cosync_taskgroup *group, const cosync_task_opts *o)
{
    cosync_task *h = k->has_handle ? &k->t : NULL;
    const int outer = M.starting;
    const bool in_close =
        M.destroying; /* not when it returns: a stop must not end the run inside */
    if (k->eager) {
        k->first_step = true;
        M.starting = k->id;
        M.eager_depth++;
    }
    int rc = group ? cosync_taskgroup_spawn(group, h, node_main, k, o)
                   : cosync_task_spawn(h, node_main, k, o);
    if (k->eager) {
        M.eager_depth--;
        M.starting = outer;
        k->first_step = false;
        if (rc == 0)
            check_first_step(k, in_close);
    }
    return rc;
}

/* One time in ten, a child with a handle is cancelled at once: a lazy one
 * must never run; an eager one has taken its first step and gets the
 * request where it suspended (or it has finished: COSYNC_EALREADY). */
static void maybe_cancel_at_once(node *x, node *k)
{
    if (!k->has_handle || rnd(&x->rng, 10) != 0)
        return;
    int rc = cosync_task_cancel(k->t);
    int want = k->eager && finished(k) ? COSYNC_EALREADY : 0;
    if (rc != want)
        FAIL("node %d: the cancel of its child %d (%s) just spawned returned %s", x->id, k->id,
             k->eager ? (k->returned ? "eager, returned" : "eager, suspended") : "lazy",
             cosync_err_name(rc));
    if (rc != 0)
        return;
    note_request(k);
    total.fresh += !k->started;
}

/* Spawn @n children of @x with handles (fewer if the seed's room runs out). */
static void spawn_kids(node *x, int n)
{
    for (int i = 0; i < n && M.nn < MAX_NODES; i++) {
        node *k = new_kid(x);
        cosync_task_opts o = opts_for(k);
        CHECK_OK(spawn_node(k, NULL, &o));
        maybe_cancel_at_once(x, k);
    }
}

static int leaf(node *x)
{
    /* a leaf started eagerly ends in that first step one time in three:
     * done when its spawn returns (and in a group, failing there, it
     * cancels the owner while the owner is still in the spawn) */
    int steps = x->eager && rnd(&x->rng, 3) == 0 ? 0 : 1 + (int)rnd(&x->rng, 3);
    for (int i = 0; i < steps; i++) {
        int rc =
            SUSPENDS(x, rnd(&x->rng, 4) == 0 ? cosync_yield()
                                             : cosync_sleep(COSYNC_US(1 + rnd(&x->rng, 2000))));
        if (rc == COSYNC_ECANCELED) {
            saw_cancel(x, "sleep");
            if ((rc = react(x)) != 0)
                return rc;
            continue;
        }
        CHECK_OK(rc);
    }
    return 0;
}

/* The result @rc of @what, a call of @x that waited for the children
 * kids[from..to) (in @w), once they are all finished. Allowed: EAGAIN only
 * for deadline 0, ETIMEDOUT only once the deadline came with a child
 * unfinished then, ECANCELED only with a request behind it (which it
 * delivers). Required: not 0 if a request came, or the deadline passed,
 * while a child was still to finish (@absorbed: but for a wait_for whose
 * child withdrew the deadline's cancel). */
static void check_result(node *x, const char *what, int rc, const window *w, int from, int to,
                         bool absorbed)
{
    int64_t last = INT64_MIN;
    bool fresh = false;
    for (int i = from; i < to; i++) {
        const node *k = &M.n[x->kids[i]];
        if (!k->started)
            fresh = true; /* when it finished is not known */
        else if (k->ret_time > last)
            last = k->ret_time;
    }
    bool timed = w->dl != COSYNC_FOREVER && w->dl != 0;
    switch (rc) {
    case 0:
        if (x->first_request < last)
            FAIL("node %d: %s returned 0, but a request came at %lld, a child finished at %lld",
                 x->id, what, (long long)x->first_request, (long long)last);
        if (timed && last > w->dl && !absorbed)
            FAIL("node %d: %s returned 0, deadline %lld, a child finished at %lld", x->id, what,
                 (long long)w->dl, (long long)last);
        if (w->dl == 0 && w->unfinished0 && !absorbed)
            FAIL("node %d: %s returned 0 for deadline 0 with a child unfinished", x->id, what);
        return;
    case COSYNC_EAGAIN:
        if (w->dl != 0)
            FAIL("node %d: %s returned COSYNC_EAGAIN, deadline %lld", x->id, what,
                 (long long)w->dl);
        return;
    case COSYNC_ETIMEDOUT:
        total.timeouts++;
        if (!timed || cosync_now() < w->dl || (!fresh && last < w->dl))
            FAIL("node %d: %s returned COSYNC_ETIMEDOUT at %lld, deadline %lld, the last child "
                 "finished at %lld",
                 x->id, what, (long long)cosync_now(), (long long)w->dl, (long long)last);
        return;
    case COSYNC_ECANCELED:
        call_cancelled(x, w, what);
        return;
    default:
        FAIL("node %d: %s returned %s", x->id, what, cosync_err_name(rc));
    }
}

/* A call that gave up (gather, gather_propagate) cancelled every child
 * of @x from @from on still running as it did, which came by @g (the
 * latest time it may have): one that returned after that carried the
 * request, or withdrew it. @pending: a request for @x surely pending at
 * the call (begun at @t0), which gives up there. */
static void check_cancelled_by_give_up(const node *x, const char *what, int rc, const window *w,
                                       int64_t t0, bool pending, int from)
{
    const bool timed = w->dl != COSYNC_FOREVER && w->dl != 0;
    int64_t g = INT64_MAX;
    if (w->dl == 0 || (pending && !M.closing))
        g = t0;
    if (timed && w->dl < g)
        g = w->dl > t0 ? w->dl : t0;
    if (x->requests > w->req0 && x->first_request < g)
        g = x->first_request;
    for (int i = from; i < x->nkids; i++) {
        const node *k = &M.n[x->kids[i]];
        if (k->started && k->ret_time > g && k->ret_cancelling == 0 && k->absorbed_at < t0)
            FAIL("node %d: %s gave up with %s by %lld; its child %d returned at %lld, never "
                 "cancelled",
                 x->id, what, cosync_err_name(rc), (long long)g, k->id, (long long)k->ret_time);
    }
}

/* @x cancels itself: the request is pending until its next suspension.
 * Returns whether that is known (the loop is not closing). */
static bool cancel_self(node *x)
{
    CHECK_OK(cosync_task_cancel(cosync_task_current()));
    note_request(x);
    total.self_cancels++;
    return !M.closing;
}

static int gather(node *x)
{
    spawn_kids(x, 1 + (int)rnd(&x->rng, MAX_KIDS));
    cosync_task hs[MAX_KIDS];
    cosync_outcome out[MAX_KIDS];
    for (int i = 0; i < x->nkids; i++)
        hs[i] = M.n[x->kids[i]].t;
    /* one time in eight it cancels itself first: a request surely pending
     * at the call, which gives up there */
    bool pending = rnd(&x->rng, 8) == 0 && cancel_self(x);
    window w = begin_call(x, pick_deadline(x));
    w.unfinished0 = unfinished(x, 0, x->nkids);
    const int64_t t0 = cosync_now();
    int rc = SUSPENDS(x, cosync_gather(hs, (size_t)x->nkids, out, w.dl));
    for (int i = 0; i < x->nkids; i++) {
        node *k = &M.n[x->kids[i]];
        k->collected = true;
        check_outcome(x, k, out[i].status, out[i].result);
    }
    if (rc != 0)
        check_cancelled_by_give_up(x, "gather", rc, &w, t0, pending, 0);
    check_result(x, "gather", rc, &w, 0, x->nkids, false);
    check_implicit(x, "gather", rc != 0);
    return rc == COSYNC_ECANCELED ? react(x) : 0;
}

/* One child waited for with a deadline that, as it passes (or a cancel
 * of @x), cancels the child and waits on: cosync_wait_for, which collects
 * it, or cosync_task_await (@await), which does not (a join then takes it
 * at once). */
static int one_child(node *x, bool await)
{
    const char *what = await ? "await" : "wait_for";
    spawn_kids(x, 1);
    if (x->nkids == 0) /* no room left in this seed */
        return 0;
    node *k = &M.n[x->kids[0]];
    window w = begin_call(x, pick_deadline(x));
    w.unfinished0 = unfinished(x, 0, 1);
    int st = 12345;
    void *res = (void *)&st;
    int rc = SUSPENDS(x, await ? cosync_task_await(k->t, &st, &res, w.dl)
                               : cosync_wait_for(k->t, &st, &res, w.dl));
    check_outcome(x, k, st, res);
    if ((rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) && st != COSYNC_ECANCELED)
        FAIL("node %d: %s returned %s, its child ended %s", x->id, what, cosync_err_name(rc),
             cosync_err_name(st));
    /* cancelled for the deadline, a child that withdrew the request and
     * finished its own way is reported with 0 */
    check_result(x, what, rc, &w, 0, 1, st != COSYNC_ECANCELED);
    bool dl_passed = w.dl == 0 || (w.dl != COSYNC_FOREVER && cosync_now() >= w.dl);
    check_implicit(x, what, rc != 0 || dl_passed);
    if (await) {
        int st2 = 12345;
        void *res2 = NULL;
        CHECK_OK(cosync_task_join(k->t, &st2, &res2, 0)); /* finished: no wait */
        check_outcome(x, k, st2, res2);
    }
    k->collected = true;
    return rc == COSYNC_ECANCELED ? react(x) : 0;
}

static int wait_for(node *x)
{
    return one_child(x, false);
}

static int await_one(node *x)
{
    return one_child(x, true);
}

static bool child_failed(const node *x)
{
    for (int k = 0; k < x->nkids; k++)
        if (M.n[x->kids[k]].returned && failed(&M.n[x->kids[k]]))
            return true;
    return false;
}

static int never_runs(void *arg, void **result)
{
    (void)arg, (void)result;
    FAIL("%s", "a task whose spawn was refused runs");
}

/* Spawn a child in @x's group, with a handle one time in two. A child's
 * failure closes the group to new children (then the spawn is refused and
 * nothing is created): during the owner's own work (@late), or in the
 * spawns that open the group, once an eager child failed in its first
 * step. */
static void group_spawn(node *x, bool late)
{
    if (M.nn >= MAX_NODES || x->nkids >= MAX_KIDS)
        return;
    const bool refused = child_failed(x);
    node *k = new_kid(x);
    k->has_handle = rnd(&k->rng, 2);
    cosync_task_opts o = opts_for(k);
    int rc = spawn_node(k, &x->group, &o);
    total.late_spawns += late;
    if (refused) {
        total.late_refused++;
        if (rc != COSYNC_EPERM)
            FAIL("node %d: a spawn in its group after a child failed returned %s", x->id,
                 cosync_err_name(rc));
        x->nkids--; /* never created */
        M.nn--;
        return;
    }
    CHECK_OK(rc);
    if (k->eager && k->returned && failed(k))
        total.eager_owner_cancels++; /* the owner's request waits for its next suspension */
    maybe_cancel_at_once(x, k);
}

/* A group's owner does work of its own before it waits, two times in
 * three: sleeps, a late child, or cosync_taskgroup_cancel. A child that
 * fails meanwhile cancels the owner, and the wait withdraws that request.
 * A cancellation ends the work, as an exception leaves the body of
 * `async with TaskGroup()` for its exit. Returns whether one did. */
static bool owner_works(node *x)
{
    int steps = (int)rnd(&x->rng, 4) - 1;
    for (int i = 0; i < steps; i++) {
        uint32_t r = rnd(&x->rng, 6);
        if (r == 0) {
            group_spawn(x, true);
            continue;
        }
        if (r == 1) {
            int alive = 0;
            for (int k = 0; k < x->nkids; k++)
                alive += !M.n[x->kids[k]].returned;
            int cancelled = cosync_taskgroup_cancel(&x->group);
            if (cancelled < 0 || cancelled > alive)
                FAIL("node %d: cosync_taskgroup_cancel returned %d, %d children alive", x->id,
                     cancelled, alive);
            x->group_cancelled = true;
            total.group_cancels++;
            continue;
        }
        /* a child that failed before has cancelled the owner: the sleep
         * delivers that (an eager child that failed in its spawn, or one
         * that failed once an earlier sleep was over) */
        bool group_request = child_failed(x);
        int rc = SUSPENDS(x, cosync_sleep(COSYNC_US(1 + rnd(&x->rng, 1500))));
        if (rc == 0 && group_request)
            FAIL("node %d: the group owner's sleep returned 0, a child failed before it began",
                 x->id);
        if (rc == 0)
            continue;
        CHECK_ERR(rc, COSYNC_ECANCELED);
        total.canceled_calls++;
        if (x->delivered < x->requests || !child_failed(x))
            saw_cancel(x, "the group owner's sleep"); /* else the group's own request */
        if (rnd(&x->rng, 2))
            group_spawn(x, true); /* refused if a child's failure cancelled it */
        return true;
    }
    return false;
}

static int group(node *x)
{
    CHECK_OK(cosync_taskgroup_init(&x->group));
    window w = begin_call(x, COSYNC_FOREVER); /* a request counts from here */
    int n = 1 + (int)rnd(&x->rng, MAX_KIDS);
    for (int i = 0; i < n; i++)
        group_spawn(x, false);
    bool saw = owner_works(x);
    w.dl = pick_deadline(x);
    w.unfinished0 = unfinished(x, 0, x->nkids);
    int rc = SUSPENDS(x, cosync_taskgroup_wait(&x->group, w.dl));

    /* every child has finished; the first to fail its own way, if one did */
    const node *first = NULL;
    for (int i = 0; i < x->nkids; i++) {
        node *k = &M.n[x->kids[i]];
        if (!finished(k))
            FAIL("node %d: group left with child %d unfinished", x->id, k->id);
        int p = predicted(k);
        if (p < 0 && p != COSYNC_ECANCELED && (!first || k->ret_seq < first->ret_seq))
            first = k;
        if (k->has_handle) {
            int st = 12345;
            void *res = NULL;
            CHECK_OK(cosync_task_join(k->t, &st, &res, 0));
            check_outcome(x, k, st, res);
        }
        k->collected = true;
    }
    check_implicit(x, "group wait", rc != 0 || x->group_cancelled);
    /* left: closed to new children */
    CHECK_ERR(cosync_taskgroup_spawn(&x->group, NULL, never_runs, NULL, NULL), COSYNC_EPERM);
    if (first) {
        /* its failure is the group's result, before an outside cancel,
         * and before the deadline if it came first; an outside cancel then
         * comes at the owner's next suspension */
        if (rc == first->ret_rc) {
            if (x->requests > w.req0)
                x->delivered = x->requests - 1;
            return 0;
        }
        bool before_deadline = w.dl == COSYNC_FOREVER || (w.dl != 0 && first->ret_time < w.dl);
        if (before_deadline || (rc != COSYNC_ETIMEDOUT && rc != COSYNC_EAGAIN))
            FAIL("node %d: group returned %s, its child %d failed first with %s (at %lld, "
                 "deadline %lld)",
                 x->id, cosync_err_name(rc), first->id, cosync_err_name(first->ret_rc),
                 (long long)first->ret_time, (long long)w.dl);
    }
    if (rc == COSYNC_ECANCELED && x->requests > w.req0) {
        /* a cancel from outside since the group opened: reported here even
         * if the owner's own work already saw it (then not delivered again:
         * asyncio's TaskGroup re-raises the CancelledError that left its
         * body), and delivered here if it was still pending */
        total.canceled_calls++;
        if (!saw && x->delivered < x->requests)
            x->delivered++;
        return react(x);
    }
    check_result(x, "group wait", rc, &w, 0, x->nkids, false);
    return rc == COSYNC_ECANCELED ? react(x) : 0;
}

/* @x cancels its child @k, which it has not collected yet. */
static void cancel_kid(node *x, node *k)
{
    int rc = cosync_task_cancel(k->t);
    if (rc == 0)
        note_request(k);
    else if (rc != COSYNC_EALREADY)
        FAIL("node %d: cancel of its child %d returned %s", x->id, k->id, cosync_err_name(rc));
}

/* One join of @x's child kids[@i]: 0 once collected. */
static int join_one(node *x, int i, int64_t dl)
{
    node *k = &M.n[x->kids[i]];
    window w = begin_call(x, dl);
    w.unfinished0 = unfinished(x, i, i + 1);
    int st = 12345;
    void *res = (void *)&st;
    int rc = SUSPENDS(x, cosync_task_join(k->t, &st, &res, dl));
    if (rc == 0) {
        k->collected = true;
        check_outcome(x, k, st, res);
        check_result(x, "join", rc, &w, i, i + 1, false);
        return 0;
    }
    /* the join failed: the child goes on, unless it had finished by the deadline */
    bool done_in_time = k->returned && (dl == 0 ? !w.unfinished0 : k->ret_time < dl);
    if (rc == COSYNC_ECANCELED) {
        call_cancelled(x, &w, "join");
    } else if (rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) {
        total.timeouts += rc == COSYNC_ETIMEDOUT;
        bool allowed = rc == COSYNC_EAGAIN ? dl == 0 : dl > 0 && cosync_now() >= dl;
        if (!allowed || done_in_time)
            FAIL("node %d: join of child %d returned %s at %lld, deadline %lld, child %s at %lld",
                 x->id, k->id, cosync_err_name(rc), (long long)cosync_now(), (long long)dl,
                 k->returned ? "finished" : "running", (long long)k->ret_time);
    } else {
        FAIL("node %d: join returned %s", x->id, cosync_err_name(rc));
    }
    return rc;
}

/* Join each of kids[from..) in turn, with a deadline; when one passes
 * (or the node is cancelled), cancel the child and join it without one:
 * the join that failed left it running. */
static int join_from(node *x, int from, int ret)
{
    for (int i = from; i < x->nkids; i++) {
        node *k = &M.n[x->kids[i]];
        int64_t dl = pick_deadline(x);
        int rc;
        while ((rc = join_one(x, i, dl)) != 0) {
            if (rc == COSYNC_ECANCELED && react(x) != 0)
                ret = COSYNC_ECANCELED; /* after every child is collected */
            cancel_kid(x, k);
            dl = COSYNC_FOREVER;
        }
    }
    return ret;
}

static int join_each(node *x)
{
    spawn_kids(x, 1 + (int)rnd(&x->rng, MAX_KIDS));
    return join_from(x, 0, 0);
}

/* The collection that ends the kinds that only watch their children
 * (await, wait, as_completed) and a gather_propagate's: cancel the
 * unfinished ones of kids[from..), one time in two, then gather them all.
 * @gave_up, if not NULL, is set if the gather gave up (it cancelled them). */
static int gather_from(node *x, int from, int ret, bool *gave_up)
{
    if (rnd(&x->rng, 2))
        for (int i = from; i < x->nkids; i++) {
            node *k = &M.n[x->kids[i]];
            if (!k->returned)
                cancel_kid(x, k);
        }
    int n = x->nkids - from;
    cosync_task hs[MAX_KIDS];
    cosync_outcome out[MAX_KIDS];
    memset(hs, 0, sizeof hs); /* n may be 0, which gcc's LTO warns of */
    for (int i = 0; i < n; i++)
        hs[i] = M.n[x->kids[from + i]].t;
    window w = begin_call(x, COSYNC_FOREVER);
    int rc = SUSPENDS(x, cosync_gather(hs, (size_t)n, out, COSYNC_FOREVER));
    for (int i = 0; i < n; i++) {
        node *k = &M.n[x->kids[from + i]];
        k->collected = true;
        check_outcome(x, k, out[i].status, out[i].result);
    }
    check_result(x, "gather", rc, &w, from, x->nkids, false);
    if (gave_up && rc != 0)
        *gave_up = true;
    if (rc == COSYNC_ECANCELED && react(x) != 0)
        ret = COSYNC_ECANCELED;
    return ret;
}

static int gather_rest(node *x, int ret)
{
    return gather_from(x, 0, ret, NULL);
}

/* Whether @k finished before @t (false if that is not known: it was
 * cancelled before it ran). */
static bool returned_before(const node *k, int64_t t)
{
    return k->returned && k->ret_time < t;
}

/* cosync_wait with a random return_when: it only watches. */
static int wait_some(node *x)
{
    spawn_kids(x, 1 + (int)rnd(&x->rng, MAX_KIDS));
    int n = x->nkids;
    if (n == 0)
        return 0;
    cosync_task hs[MAX_KIDS];
    for (int i = 0; i < n; i++)
        hs[i] = M.n[x->kids[i]].t;
    cosync_return_when when = (cosync_return_when)(1 + rnd(&x->rng, 3));
    window w = begin_call(x, pick_deadline(x));
    size_t index = 999;
    int rc = SUSPENDS(x, cosync_wait(hs, (size_t)n, when, &index, w.dl));
    const char *what = when == COSYNC_FIRST_COMPLETED   ? "wait (first completed)"
                       : when == COSYNC_FIRST_EXCEPTION ? "wait (first exception)"
                                                        : "wait (all completed)";
    bool all = true, timed = w.dl != COSYNC_FOREVER && w.dl != 0;
    int64_t last = INT64_MIN;
    for (int i = 0; i < n; i++) {
        const node *k = &M.n[x->kids[i]];
        all = all && finished(k);
        if (k->returned && k->ret_time > last)
            last = k->ret_time;
    }
    if (rc == 0) {
        if (when == COSYNC_ALL_COMPLETED || index == (size_t)n) {
            if (index != (size_t)n || !all || (timed && last > w.dl))
                FAIL("node %d: %s returned 0, index %zu of %d, all finished: %d, the last at %lld, "
                     "deadline %lld",
                     x->id, what, index, n, all, (long long)last, (long long)w.dl);
            if (when == COSYNC_FIRST_EXCEPTION)
                for (int i = 0; i < n; i++)
                    if (failed(&M.n[x->kids[i]]))
                        FAIL("node %d: %s found no failure, child %d failed", x->id, what,
                             x->kids[i]);
        } else {
            if (index >= (size_t)n)
                FAIL("node %d: %s returned 0, index %zu of %d", x->id, what, index, n);
            const node *k = &M.n[x->kids[index]];
            if (!finished(k) || (timed && k->returned && k->ret_time > w.dl))
                FAIL("node %d: %s handed out child %d, not finished by the deadline", x->id, what,
                     k->id);
            if (when == COSYNC_FIRST_EXCEPTION && !failed(k))
                FAIL("node %d: %s handed out child %d, which did not fail", x->id, what, k->id);
            for (int i = 0; k->started && i < n; i++) {
                const node *o = &M.n[x->kids[i]];
                bool counts = when == COSYNC_FIRST_COMPLETED || failed(o);
                if (counts && o->returned && o->ret_seq < k->ret_seq)
                    FAIL("node %d: %s handed out child %d, child %d finished before it", x->id,
                         what, k->id, o->id);
            }
        }
    } else if (rc == COSYNC_ETIMEDOUT) {
        total.timeouts++;
        bool met = true; /* by the deadline, as far as is known */
        int firsts = 0;
        for (int i = 0; i < n; i++) {
            const node *k = &M.n[x->kids[i]];
            met = met && returned_before(k, w.dl);
            firsts += returned_before(k, w.dl) && (when == COSYNC_FIRST_COMPLETED || failed(k));
        }
        if (!timed || cosync_now() < w.dl || met || (when != COSYNC_ALL_COMPLETED && firsts))
            FAIL("node %d: %s returned COSYNC_ETIMEDOUT at %lld, deadline %lld, its condition met "
                 "before",
                 x->id, what, (long long)cosync_now(), (long long)w.dl);
    } else if (rc == COSYNC_EAGAIN) {
        if (w.dl != 0)
            FAIL("node %d: %s returned COSYNC_EAGAIN, deadline %lld", x->id, what, (long long)w.dl);
    } else if (rc == COSYNC_ECANCELED) {
        call_cancelled(x, &w, what);
    } else {
        FAIL("node %d: %s returned %s", x->id, what, cosync_err_name(rc));
    }
    return gather_rest(x, rc == COSYNC_ECANCELED ? react(x) : 0);
}

/* cosync_as_completed: take the children in the order they finish, until
 * one call times out or is cancelled. */
static int as_completed(node *x)
{
    spawn_kids(x, 1 + (int)rnd(&x->rng, MAX_KIDS));
    int n = x->nkids;
    cosync_task hs[MAX_KIDS];
    for (int i = 0; i < n; i++)
        hs[i] = M.n[x->kids[i]].t;
    cosync_as_completed it;
    CHECK_OK(cosync_as_completed_init(&it, hs, (size_t)n));
    bool handed[MAX_KIDS] = {false};
    uint64_t last_seq = 0;
    int ret = 0, got = 0;
    for (;;) {
        window w = begin_call(x, pick_deadline(x));
        size_t index = 999;
        int rc = SUSPENDS(x, cosync_as_completed_next(&it, &index, w.dl));
        if (rc == 0) {
            if (got != n)
                FAIL("node %d: as_completed ended after %d of %d", x->id, got, n);
            break;
        }
        if (rc == 1) {
            if (index >= (size_t)n || handed[index])
                FAIL("node %d: as_completed handed out index %zu (of %d) %s", x->id, index, n,
                     index < (size_t)n ? "twice" : "");
            const node *k = &M.n[x->kids[index]];
            handed[index] = true;
            got++;
            bool timed = w.dl != COSYNC_FOREVER && w.dl != 0;
            if (!finished(k) || (timed && k->returned && k->ret_time > w.dl))
                FAIL("node %d: as_completed handed out child %d, unfinished by the deadline", x->id,
                     k->id);
            if (k->started) {
                if (k->ret_seq < last_seq)
                    FAIL("node %d: as_completed handed out child %d out of the order they finished",
                         x->id, k->id);
                last_seq = k->ret_seq;
            }
            continue;
        }
        if (rc == COSYNC_ECANCELED) {
            call_cancelled(x, &w, "as_completed");
            ret = react(x);
        } else if (rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) {
            bool allowed = rc == COSYNC_EAGAIN ? w.dl == 0 : w.dl > 0 && cosync_now() >= w.dl;
            for (int i = 0; i < n; i++)
                if (!handed[i] && returned_before(&M.n[x->kids[i]], w.dl) && w.dl != 0)
                    allowed = false;
            if (!allowed)
                FAIL("node %d: as_completed returned %s, deadline %lld, a child finished before",
                     x->id, cosync_err_name(rc), (long long)w.dl);
            total.timeouts += rc == COSYNC_ETIMEDOUT;
        } else {
            FAIL("node %d: as_completed returned %s", x->id, cosync_err_name(rc));
        }
        break;
    }
    CHECK_OK(cosync_as_completed_destroy(&it));
    return gather_rest(x, ret);
}

/* ========================================================================
 * gather_propagate: the first failure, or all, or a give-up
 * ===================================================================== */

/* When @k finished, if that is known: a child that ran, when it returned;
 * one that never ran, when the first request noted came. */
static bool finish_known(const node *k, int64_t *t)
{
    if (k->started ? !k->returned : !k->unrun_cancel)
        return false;
    *t = k->started ? k->ret_time : k->unrun_at;
    return true;
}

/* Whether @o surely finished before @k: by the order of their returns if
 * both ran, else by the clock. */
static bool finished_before(const node *o, const node *k)
{
    if (o->started && k->started)
        return o->returned && k->returned && o->ret_seq < k->ret_seq;
    int64_t to, tk;
    return finish_known(o, &to) && finish_known(k, &tk) && to < tk;
}

/* Whether @k surely finished before a call that began at @t0, after
 * @seq0 returns. */
static bool finished_by_call(const node *k, uint64_t seq0, int64_t t0)
{
    if (k->started)
        return k->returned && k->ret_seq <= seq0;
    return k->unrun_cancel && k->unrun_at < t0;
}

/* Whether @k surely finished before the first request taken for @x since
 * its call began. */
static bool finished_before_request(const node *k, const node *x)
{
    if (k->started)
        return k->returned && k->ret_seq <= x->first_request_seq;
    return k->unrun_cancel && k->unrun_at < x->first_request;
}

/* Whether @k is known to have failed (COSYNC_ECANCELED included, as for
 * gather_propagate) before @t. */
static bool failed_before_time(const node *k, int64_t t)
{
    int64_t tk;
    return finish_known(k, &tk) && tk < t && predicted(k) < 0;
}

/* After @x's gather_propagate returned the failure of @k, its other child
 * @o: not collected, not cancelled by the call, as done as its record says,
 * and its outcome readable without collecting it. */
static void check_left(const node *x, const node *k, const node *o)
{
    bool done = cosync_task_done(o->t);
    bool want = o->started ? o->returned : o->unrun_cancel && o->unrun_at < cosync_now();
    bool may = o->started ? o->returned : o->unrun_cancel || M.closing;
    if (done ? !may : want)
        FAIL("node %d: gather_propagate returned child %d's failure, and its child %d (%s) is %s",
             x->id, k->id, o->id, o->started ? (o->returned ? "returned" : "running") : "unrun",
             done ? "done" : "not done");
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_result(o->t, &st, &res);
    if (rc != (done ? 0 : COSYNC_EAGAIN))
        FAIL("node %d: cosync_task_result of child %d, left by gather_propagate, returned %s",
             x->id, o->id, cosync_err_name(rc));
    if (done)
        check_outcome(x, o, st, res);
    /* only the requests noted (and its withdrawals) count: a group's owner
     * may also carry the request of its failing child for a while */
    int c = cosync_task_cancelling(o->t);
    bool exact = !(o->started && o->kind == K_GROUP);
    if (!M.closing && (exact ? c != o->expected : c < o->expected))
        FAIL("node %d: gather_propagate returned child %d's failure; child %d's cancellation count "
             "is %d, %d requests noted and not withdrawn",
             x->id, k->id, o->id, c, o->expected);
}

/* One cosync_gather_propagate of @x's children kids[from..), with the
 * deadline @dl (taken before the node's sleep, it may have passed by the
 * call). @pending: a request for @x is surely pending (it came once an
 * earlier call had returned a failure, and @x has not suspended since).
 * Returns the call's result, and in *@pos the position in kids of the
 * child whose failure it returned (moved to kids[from], and collected),
 * or -1 if it collected them all. */
static int propagate_round(node *x, int from, int64_t dl, bool pending, int *pos)
{
    const char *what = "gather_propagate";
    int n = x->nkids - from;
    cosync_task hs[MAX_KIDS];
    cosync_outcome out[MAX_KIDS];
    for (int i = 0; i < n; i++) {
        hs[i] = M.n[x->kids[from + i]].t;
        out[i] = (cosync_outcome){12345, &out[i]}; /* untouched */
    }
    window w = begin_call(x, dl);
    w.unfinished0 = unfinished(x, from, x->nkids);
    const int64_t t0 = cosync_now();
    const uint64_t seq0 = M.seq, sw0 = switches();
    const bool timed = dl != COSYNC_FOREVER && dl != 0;
    /* what the call finds at once: a failure, or all finished */
    bool failed0 = false, all0 = true;
    for (int i = 0; i < n; i++) {
        const node *k = &M.n[x->kids[from + i]];
        if (!finished_by_call(k, seq0, t0))
            all0 = false;
        else if (predicted(k) < 0)
            failed0 = true;
    }
    size_t failed = 999;
    int rc = SUSPENDS(x, cosync_gather_propagate(hs, (size_t)n, out, &failed, dl));
    const bool suspended = switches() != sw0;
    const int64_t now = cosync_now();
    if ((failed0 || all0) && suspended)
        FAIL("node %d: %s suspended, %s before the call", x->id, what,
             failed0 ? "a child had failed" : "every child had finished");
    total.prop_at_once += !suspended;

    if (failed < (size_t)n) {
        /* a failure: the first in the order they finished, before the
         * call gave up; only it is collected */
        const int p = from + (int)failed;
        node *k = &M.n[x->kids[p]];
        k->collected = true;
        check_outcome(x, k, out[failed].status, out[failed].result);
        if (rc >= 0 || rc != out[failed].status)
            FAIL("node %d: %s returned %s with *failed %zu, child %d, which ended %s", x->id, what,
                 cosync_err_name(rc), failed, k->id, cosync_err_name(out[failed].status));
        for (int i = 0; i < n; i++) {
            const node *o = &M.n[x->kids[from + i]];
            if (o == k)
                continue;
            if (out[i].status != 12345 || out[i].result != &out[i])
                FAIL("node %d: %s returned child %d's failure and filled child %d's outcome", x->id,
                     what, k->id, o->id);
            if (finished_before(o, k) && predicted(o) < 0)
                FAIL("node %d: %s returned child %d's failure (%s), child %d failed before it (%s)",
                     x->id, what, k->id, cosync_err_name(rc), o->id, cosync_err_name(predicted(o)));
            check_left(x, k, o);
        }
        int64_t tk;
        if (finish_known(k, &tk)) {
            bool by_call = k->started ? k->ret_seq <= seq0 : tk <= t0;
            if (timed && tk > dl && !by_call)
                FAIL("node %d: %s returned child %d's failure at %lld, deadline %lld", x->id, what,
                     k->id, (long long)tk, (long long)dl);
            if (now != (tk > t0 ? tk : t0))
                FAIL("node %d: %s returned at %lld, called at %lld, child %d failed at %lld", x->id,
                     what, (long long)now, (long long)t0, k->id, (long long)tk);
        }
        if ((dl == 0 || pending) && suspended)
            FAIL("node %d: %s %s waited for child %d's failure", x->id, what,
                 dl == 0 ? "with deadline 0" : "called with a request pending", k->id);
        if (!M.closing && x->requests > w.req0 && !finished_before_request(k, x) &&
            (k->started || k->unrun_at > x->first_request))
            FAIL("node %d: %s returned child %d's failure, a request for the caller came before "
                 "(at %lld)",
                 x->id, what, k->id, (long long)x->first_request);
        total.prop_failures++;
        x->kids[p] = x->kids[from];
        x->kids[from] = k->id;
        *pos = from;
        return rc;
    }

    /* all collected: all succeeded, or it gave up */
    *pos = -1;
    if (failed != (size_t)n)
        FAIL("node %d: %s returned %s with *failed %zu, of %d", x->id, what, cosync_err_name(rc),
             failed, n);
    int64_t end = t0;
    bool all_known = true;
    for (int i = 0; i < n; i++) {
        node *k = &M.n[x->kids[from + i]];
        k->collected = true;
        check_outcome(x, k, out[i].status, out[i].result);
        int64_t tk;
        if (!finish_known(k, &tk))
            all_known = false;
        else if (tk > end)
            end = tk;
    }
    if (all_known && now != end)
        FAIL("node %d: %s returned %s at %lld, called at %lld, the last child finished at %lld",
             x->id, what, cosync_err_name(rc), (long long)now, (long long)t0, (long long)end);
    if (rc == 0) {
        for (int i = 0; i < n; i++) {
            const node *k = &M.n[x->kids[from + i]];
            if (predicted(k) != 0)
                FAIL("node %d: %s returned 0, child %d ended %s", x->id, what, k->id,
                     cosync_err_name(predicted(k)));
            if (!M.closing && x->requests > w.req0 && !finished_before_request(k, x))
                FAIL("node %d: %s returned 0, a request for the caller came (at %lld) before "
                     "child %d finished",
                     x->id, what, (long long)x->first_request, k->id);
            if (timed && k->ret_time > dl && k->ret_seq > seq0)
                FAIL("node %d: %s returned 0, deadline %lld, child %d finished at %lld", x->id,
                     what, (long long)dl, k->id, (long long)k->ret_time);
        }
        if ((dl == 0 || pending) && suspended)
            FAIL("node %d: %s %s returned 0 after a wait", x->id, what,
                 dl == 0 ? "with deadline 0" : "called with a request pending");
        return 0;
    }

    /* gave up: nothing had failed and not all had finished at the call,
     * nothing failed before the give-up, and a request during the call
     * makes it COSYNC_ECANCELED */
    total.prop_gave_up++;
    if (failed0 || all0)
        FAIL("node %d: %s gave up with %s, %s before the call", x->id, what, cosync_err_name(rc),
             failed0 ? "a child had failed" : "every child had finished");
    if ((rc == COSYNC_ETIMEDOUT || rc == COSYNC_EAGAIN) && x->requests > w.req0)
        FAIL("node %d: %s returned %s, a request for the caller came during it (at %lld)", x->id,
             what, cosync_err_name(rc), (long long)x->first_request);
    /* a request pending at the call: it gives up at once, or with deadline
     * 0 leaves the request pending (COSYNC_EAGAIN, unless the caller is
     * cancelled during the call) */
    bool again = dl == 0 && x->requests == w.req0;
    if (pending && !M.closing && rc != (again ? COSYNC_EAGAIN : COSYNC_ECANCELED) &&
        !(again && rc == COSYNC_ECANCELED && x->parent_cancels))
        FAIL("node %d: %s returned %s with a request pending at the call, deadline %lld", x->id,
             what, cosync_err_name(rc), (long long)dl);
    /* by the deadline; by the first request too, if nothing else may have
     * cancelled the caller */
    bool by_request = rc == COSYNC_ECANCELED && !x->parent_cancels && !M.closing && !w.pend0 &&
                      x->requests > w.req0;
    for (int i = 0; i < n && (rc == COSYNC_ETIMEDOUT || by_request); i++) {
        const node *k = &M.n[x->kids[from + i]];
        bool before = dl == COSYNC_FOREVER || (timed && failed_before_time(k, dl));
        if (rc == COSYNC_ECANCELED)
            before = before && finished_before_request(k, x) && predicted(k) < 0;
        if (before)
            FAIL("node %d: %s gave up with %s (deadline %lld, first request at %lld), its child "
                 "%d had failed before with %s",
                 x->id, what, cosync_err_name(rc), (long long)dl, (long long)x->first_request,
                 k->id, cosync_err_name(predicted(k)));
    }
    check_cancelled_by_give_up(x, what, rc, &w, t0, pending, from);
    check_result(x, what, rc, &w, from, x->nkids, false);
    return rc;
}

/* asyncio.gather(*children) without return_exceptions: the first failure
 * propagates and leaves the rest running, the node's to handle: it
 * cancels some and propagates again, or gathers them, or joins them. */
static int gather_propagate(node *x)
{
    spawn_kids(x, 1 + (int)rnd(&x->rng, MAX_KIDS));
    bool gave_up = false;
    /* its first deadline is taken first: one time in three it sleeps
     * before the call (children finish, or fail, meanwhile), and the
     * deadline may pass */
    int64_t dl = pick_deadline(x);
    if (rnd(&x->rng, 3) == 0) {
        int rc = SUSPENDS(x, cosync_sleep(COSYNC_US(1 + rnd(&x->rng, 1500))));
        if (rc == COSYNC_ECANCELED) {
            saw_cancel(x, "sleep");
            if ((rc = react(x)) != 0) {
                rc = gather_from(x, 0, rc, &gave_up);
                check_implicit(x, "gather", gave_up);
                return rc;
            }
        } else {
            CHECK_OK(rc);
        }
    }
    int from = 0, ret = 0, first_failure = 0;
    bool pending = false;
    if (rnd(&x->rng, 8) == 0)
        pending = cancel_self(x);
    for (;;) {
        int pos;
        long req0 = x->requests;
        int rc = propagate_round(x, from, dl, pending, &pos);
        if (pos < 0) {
            gave_up = gave_up || rc != 0;
            if (rc == COSYNC_ECANCELED && react(x) != 0)
                ret = COSYNC_ECANCELED;
            break;
        }
        if (!first_failure)
            first_failure = rc;
        /* a request that came once the failure had ended the wait waits
         * for the node's next suspension */
        pending = (pending || x->requests > req0) && !M.closing;
        if (++from == x->nkids)
            break;
        /* the rest is still the node's; it may decide to give up on them */
        if (rnd(&x->rng, 4) == 0)
            pending = cancel_self(x) || pending;
        uint32_t r = rnd(&x->rng, 4);
        if (r == 1)
            for (int i = from; i < x->nkids; i++)
                if (!M.n[x->kids[i]].returned && rnd(&x->rng, 2))
                    cancel_kid(x, &M.n[x->kids[i]]);
        if (r < 2) {
            dl = pick_deadline(x);
            continue; /* gather_propagate again */
        }
        ret = r == 2 ? gather_from(x, from, ret, &gave_up) : join_from(x, from, ret);
        break;
    }
    check_implicit(x, "gather_propagate", gave_up);
    /* the failure propagates out of the node, one time in two */
    if (ret == 0 && first_failure != COSYNC_ECANCELED && rnd(&x->rng, 2))
        ret = first_failure;
    return ret;
}

/* What each kind of node does (the order of enum kind). */
static int (*const body_of[K_KINDS])(node *x) = {
    leaf, gather, wait_for, group, join_each, await_one, wait_some, as_completed, gather_propagate,
};

static void trace_return(const node *x)
{
    if (!M.plain) {
        trace.at[trace.n].id = x->id;
        trace.at[trace.n].rc = x->ret_rc;
        trace.at[trace.n++].time = x->ret_time;
        return;
    }
    if (trace.pos >= trace.n)
        FAIL("(plain replay) node %d returned after the first run's last return", x->id);
    const int k = trace.pos++;
    if (trace.at[k].id != x->id || trace.at[k].rc != x->ret_rc || trace.at[k].time != x->ret_time)
        FAIL("(plain replay) return %d was node %d, %s at %lld in the first run, but is node %d, "
             "%s at %lld",
             k, trace.at[k].id, cosync_err_name(trace.at[k].rc), (long long)trace.at[k].time, x->id,
             cosync_err_name(x->ret_rc), (long long)x->ret_time);
}

static int node_main(void *arg, void **result)
{
    node *x = arg;
    if (M.eager_depth && x->id != M.starting)
        FAIL("node %d started while node %d, spawned eagerly, took its first step", x->id,
             M.starting);
    if (x->started || x->returned)
        FAIL("node %d ran twice", x->id);
    if (x->requests > 0)
        FAIL("node %d runs, cancelled %ld times before it ran", x->id, x->requests);
    x->started = true;
    total.nodes++;
    int rc = body_of[x->kind](x);
    if (rc == 0 && rnd(&x->rng, 4) == 0) {
        rc = fail_code(x);
        total.failures++;
    }
    x->ret_rc = rc;
    x->ret_cancelling = cosync_task_cancelling(cosync_task_current());
    /* the count is known where nobody but the noted requests cancels */
    if (!x->parent_cancels && !M.closing && x->ret_cancelling != x->expected)
        FAIL("node %d (%s) returns with a cancellation count of %d, %d requests noted and not "
             "withdrawn",
             x->id, kind_name[x->kind], x->ret_cancelling, x->expected);
    x->ret_time = cosync_now();
    x->ret_seq = ++M.seq;
    x->returned = true;
    trace_return(x);
    *result = result_of(x);
    return rc;
}

/* ========================================================================
 * The chaos task, main, seeds
 * ===================================================================== */

static int chaos_main(void *arg, void **result)
{
    (void)arg, (void)result;
    for (int turn = 1; !M.stop; turn++) {
        int rc = cosync_sleep(COSYNC_US(rnd(&M.chaos_rng, 700)));
        check_no_eager_start("the chaos task");
        CHECK_OK(rc);
        if (M.stop)
            break;
        if (turn == M.close_after) {
            M.closing = true;
            CHECK_OK(cosync_loop_stop(cosync_loop_current()));
            break;
        }
        /* the newest node (it may not have run yet) one time in four, else
         * any node not collected yet (a few tries) */
        node *x = &M.n[M.nn - 1];
        for (int tries = 0; tries < 4 && rnd(&M.chaos_rng, 4); tries++) {
            x = &M.n[rnd(&M.chaos_rng, (uint32_t)M.nn)];
            if (!x->collected)
                break;
        }
        if (!x->has_handle)
            continue;
        rc = cosync_task_cancel(x->t);
        int want = x->collected ? COSYNC_ESRCH : x->returned ? COSYNC_EALREADY : 0;
        if (!x->started && !x->collected && rc == COSYNC_EALREADY)
            want = rc; /* cancelled before it ran: finished, or about to be */
        enum kind pk = M.n[x->parent].kind;
        bool gathered = pk == K_GATHER || pk == K_WAIT || pk == K_AS_COMPLETED || pk == K_PROPAGATE;
        if (x->id > 0 && gathered && finished(x) && rc == COSYNC_ESRCH)
            want = rc; /* a gather collects each task in turn, as it gets to it */
        if (rc != want)
            FAIL("cancel of node %d (child of %d, a %s; %s%s%s) returned %s, expected %s", x->id,
                 x->parent, kind_name[M.n[x->parent].kind], x->started ? "started" : "not started",
                 x->returned ? ", returned" : "", x->collected ? ", collected" : "",
                 cosync_err_name(rc), cosync_err_name(want));
        if (rc == 0) {
            note_request(x);
            total.cancels++;
            total.fresh += !x->started;
        }
    }
    return 0;
}

static int seed_main(void *arg, void **result)
{
    (void)arg, (void)result;
    node *root = &M.n[0];
    *root = (node){.id = 0, .has_handle = true};
    root->rng = splitmix(M.seed * 1000003);
    root->kind = (enum kind)(1 + rnd(&root->rng, K_KINDS - 1));
    root->reaction = (enum reaction)rnd(&root->rng, 3);
    root->eager = M.eager_loop;
    M.nn = 1;
    M.chaos_rng = splitmix(~M.seed);
    CHECK_OK(spawn_node(root, NULL, &(cosync_task_opts){.name = "root"}));
    cosync_task chaos;
    CHECK_OK(cosync_task_spawn(&chaos, chaos_main, NULL, &(cosync_task_opts){.name = "chaos"}));
    int st = 12345;
    void *res = NULL;
    int rc = cosync_task_join(root->t, &st, &res, COSYNC_FOREVER);
    check_no_eager_start("main");
    if (rc == COSYNC_ECANCELED && M.closing)
        return 0; /* the close cancels main too; it frees what is left */
    CHECK_OK(rc);
    root->collected = true;
    check_outcome(root, root, st, res);
    M.stop = true;
    join_ok(chaos); /* it sees the flag after its sleep */
    for (int i = 0; i < M.nn; i++)
        if (!M.n[i].collected || !finished(&M.n[i]))
            FAIL("node %d was left %s", i, finished(&M.n[i]) ? "uncollected" : "running");
    cosync_loop_stats s = loop_stats();
    CHECK_EQ(s.tasks_alive, 1);
    CHECK_EQ(s.tasks_records, 1);
    CHECK_EQ(s.timers, 0);
    return 0;
}

/* The loop of a seed that stopped it: destroy it with the tree in flight.
 * Every task is cancelled, runs its clean-up (whose checks hold as
 * always) and finishes; nothing may be reported stuck. */
static void close_in_flight(cosync_loop *loop, int rc, int status)
{
    if (rc == 0 && status == 0) /* main finished in the turn that stopped */
        return end_loop(loop);
    if (rc != COSYNC_EINTR)
        FAIL("cosync_loop_run returned %s after the stop", cosync_err_name(rc));
    total.closes++;
    M.destroying = true;
    rc = cosync_loop_destroy(loop);
    if (rc != 0)
        FAIL("cosync_loop_destroy returned %s", cosync_err_name(rc));
}

static void run_seed(uint64_t seed, bool plain)
{
    memset(&M, 0, sizeof M);
    M.seed = seed;
    M.plain = plain;
    M.close_after = seed % 8 == 3 ? 1 + (int)(splitmix(seed ^ 0xC105E) % 6) : 0;
    M.eager_loop = seed % 5 == 2;
    M.starting = -1;
    if (!plain)
        trace.n = 0;
    trace.pos = 0;
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop, &(cosync_loop_opts){.virtual_clock = true, .eager_tasks = M.eager_loop}));
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, seed_main, NULL, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    int rc = cosync_loop_run(loop, m, &status, NULL);
    if (M.closing)
        close_in_flight(loop, rc, status);
    else if (rc != 0 || status != 0)
        FAIL("cosync_loop_run returned %s, main %s", cosync_err_name(rc), cosync_err_name(status));
    else
        end_loop(loop);
    if (plain && trace.pos != trace.n)
        FAIL("(plain replay) %d returns, the first run had %d", trace.pos, trace.n);
}

static long first_seed = 1;
static long nseeds = 2000;

TEST(test_tree_model_seeds)
{
    double start = monotonic_seconds();
    long replays = 0;
    for (long s = first_seed; s < first_seed + nseeds; s++) {
        run_seed((uint64_t)s, false);
        if (s % 2 == 0) { /* again with plain tasks only; counted once */
            totals counted = total;
            run_seed((uint64_t)s, true);
            total = counted;
            replays++;
        }
    }
    double secs = monotonic_seconds() - start;
    printf("  seeds %ld to %ld: %ld nodes ran (%ld failed), %ld cancels by the chaos task, %ld "
           "tasks cancelled before they ran, %ld calls cancelled, %ld timed out, %ld withdrawals, "
           "%ld loops destroyed in flight, %ld late spawns in a group (%ld spawns refused after "
           "a failure), %ld group cancels, %ld failures propagated and %ld give-ups by a "
           "gather_propagate (%ld calls that did not wait), %ld self-cancels before a gather, "
           "%ld eager starts (%ld done in the spawn, %ld failed there and cancelled their group's "
           "owner); %ld seeds replayed with plain tasks only, the same; %.2f s\n",
           first_seed, first_seed + nseeds - 1, total.nodes, total.failures, total.cancels,
           total.fresh, total.canceled_calls, total.timeouts, total.absorbed, total.closes,
           total.late_spawns, total.late_refused, total.group_cancels, total.prop_failures,
           total.prop_gave_up, total.prop_at_once, total.self_cancels, total.eager,
           total.eager_done, total.eager_owner_cancels, replays, secs);
}

int main(void)
{
    if (under_valgrind())
        nseeds = 200;
    first_seed = env_long("TREE_FIRST", first_seed);
    nseeds = env_long("TREE_SEEDS", nseeds);
    RUN(test_tree_model_seeds);
    return 0;
}
