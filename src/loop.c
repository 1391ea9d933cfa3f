/*
 * The loop: one turn runs the ready tasks (up to a budget), reads the
 * clock, fires due timers, and, when nothing is runnable, waits in epoll
 * for I/O, for a wake-up from another thread (eventfd) or for the next
 * timer. When nothing at all can wake a blocked task, that is a deadlock:
 * it is reported, never a silent hang.
 */
#include <limits.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "fault.h"

__thread cosync__tls_state cosync__tls __attribute__((tls_model("initial-exec")));

#define VIRTUAL_EPOCH COSYNC_SEC(1)
#define DEFAULT_STACK_CACHE 64
#define TRIM_INTERVAL COSYNC_SEC(1)
/* Busy turns (COSYNC__BUDGET tasks each) between two looks at I/O. */
#define IO_TURNS 16

/* Loops made so far, for their serials: a lock's holder is known by its
 * id and its loop's serial, as ids start again at 1 in each loop. 64 bits,
 * so that a serial never comes back (a loop a microsecond would take half
 * a million years to wrap it): no task of a live loop is ever taken for
 * one of another, and no record of a destroyed loop is ever read. */
static _Atomic uint64_t loops_made;

static uint64_t next_loop_serial(void)
{
    return atomic_fetch_add_explicit(&loops_made, 1, memory_order_relaxed) + 1;
}

/* When cached stacks are next trimmed: a second after @now, or never once
 * the clock nears its end (a virtual clock jumps to any deadline, however
 * far). */
static int64_t trim_after(int64_t now)
{
    return now < INT64_MAX - TRIM_INTERVAL ? now + TRIM_INTERVAL : INT64_MAX;
}

static void close_fds(cosync_loop *loop)
{
    if (loop->evfd >= 0)
        close(loop->evfd);
    if (loop->epfd >= 0)
        close(loop->epfd);
}

static int open_fds(cosync_loop *loop)
{
    loop->epfd = cosync__fault_hit() ? (errno = EMFILE, -1) : epoll_create1(EPOLL_CLOEXEC);
    if (loop->epfd < 0)
        return -errno;
    loop->evfd =
        cosync__fault_hit() ? (errno = EMFILE, -1) : eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->evfd < 0)
        return -errno;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
    if (cosync__fault_hit() || epoll_ctl(loop->epfd, EPOLL_CTL_ADD, loop->evfd, &ev) < 0)
        return errno ? -errno : COSYNC_ENOMEM;
    return 0;
}

int cosync_loop_init(cosync_loop **out, const cosync_loop_opts *opts)
{
    static const cosync_loop_opts defaults;
    if (!out)
        return COSYNC_EINVAL;
    *out = NULL;
    if (!opts)
        opts = &defaults;
    size_t stack_size = opts->stack_size ? opts->stack_size : cosync__stack_default_size();
    int cls = cosync__stack_class_of(stack_size);
    if (cls < 0 || stack_size < 2 * cosync__page_size())
        return COSYNC_EINVAL;
    if (opts->allocator && !opts->allocator->realloc)
        return COSYNC_EINVAL;
    if (opts->executor_threads > COSYNC_EXECUTOR_MAX_THREADS)
        return COSYNC_EINVAL;

    cosync_loop *loop = cosync__mem_alloc(opts->allocator, sizeof *loop);
    if (!loop)
        return COSYNC_ENOMEM;
    memset(loop, 0, sizeof *loop);
    loop->cb_due = COSYNC__STEP_UNKNOWN;
    if (opts->allocator) {
        loop->alloc_copy = *opts->allocator;
        loop->alloc = &loop->alloc_copy;
    }
    loop->epfd = loop->evfd = -1;
    errno = 0;
    int rc = open_fds(loop);
    if (rc == 0)
        rc = cosync__inbox_init(loop);
    if (rc) {
        close_fds(loop);
        cosync__mem_free(loop->alloc, loop);
        return rc;
    }
    loop->executor_threads = opts->executor_threads;
    loop->default_cls = (int8_t)cls;
    loop->virtual_clock = opts->virtual_clock;
    loop->own_fp = !opts->shared_fp_modes;
    loop->eager_tasks = opts->eager_tasks;
    loop->slow_spawns = loop->eager_tasks;
    loop->now = loop->virtual_clock ? VIRTUAL_EPOCH : cosync__clock_monotonic();
    loop->report = opts->report;
    loop->serial = next_loop_serial();
    loop->next_trim = trim_after(loop->now);
    cosync__stack_pool_init(&loop->stacks, loop->alloc,
                            opts->stack_cache ? opts->stack_cache : DEFAULT_STACK_CACHE);
    *out = loop;
    return 0;
}

cosync_loop *cosync_loop_current(void)
{
    return cosync__tls.loop;
}

int cosync_loop_stop(cosync_loop *loop)
{
    if (!loop)
        return COSYNC_EINVAL;
    /* looked at between turns; the tasks ready now still run first, as
     * loop.stop() lets the current iteration finish */
    loop->stop_requested = true;
    if (loop->running)
        cosync__cut_turn(loop);
    return 0;
}

/* ---- describing what tasks wait on ----------------------------------- */

static const char *state_name(const struct cosync__task *t)
{
    switch (t->state) {
    case COSYNC__T_FRESH:
        return "not started";
    case COSYNC__T_READY:
        return "ready";
    case COSYNC__T_RUNNING:
        return "running";
    case COSYNC__T_BLOCKED:
        return "blocked";
    case COSYNC__T_DONE:
        return "finished";
    default:
        return "free";
    }
}

void cosync__describe_wait(const struct cosync__task *t, char *buf, size_t size)
{
    const cosync__waiter *w = &t->w;
    if (w->ops && w->ops->describe)
        w->ops->describe(w, buf, size);
    else if (w->ops && w->obj)
        snprintf(buf, size, "%s %p", w->ops->what, w->obj);
    else if (w->ops)
        snprintf(buf, size, "%s", w->ops->what);
    else
        snprintf(buf, size, "nothing");
}

static void dump_task(struct cosync__task *t, FILE *out)
{
    char what[160];
    fprintf(out, "  task '%s' (#%llu) ", cosync__task_name(t), (unsigned long long)t->id);
    if (t->state == COSYNC__T_BLOCKED && t->w.state == COSYNC__W_WAITING) {
        cosync__describe_wait(t, what, sizeof what);
        fprintf(out, "waits on %s%s\n", what,
                cosync__timer_armed(&t->timer) ? " (with a deadline)" : "");
    } else {
        fprintf(out, "is %s\n", state_name(t));
    }
}

#define DUMP_MAX 200

int cosync_loop_dump(const cosync_loop *loop, FILE *out)
{
    if (!loop || !out)
        return COSYNC_EINVAL;
    /* the task a run waits for comes first: a deadlock report cut short
     * must still say what that one waits on */
    struct cosync__task *first = loop->until;
    int n = 0;
    if (first && cosync__task_alive(first)) {
        dump_task(first, out);
        n++;
    }
    cosync__for_each_record (loop, t) {
        if (t == first || !cosync__task_alive(t))
            continue;
        if (n++ < DUMP_MAX)
            dump_task(t, out);
    }
    if (n > DUMP_MAX)
        fprintf(out, "  ... and %d more\n", n - DUMP_MAX);
    return n;
}

static int by_id(const void *a, const void *b)
{
    uint64_t x = ((const cosync_task *)a)->id, y = ((const cosync_task *)b)->id;
    return (x > y) - (x < y);
}

int cosync_loop_all_tasks(cosync_loop *loop, cosync_task *tasks, size_t cap)
{
    if (!loop)
        loop = cosync_loop_current();
    if (!loop || (!tasks && cap))
        return !loop ? COSYNC_EPERM : COSYNC_EINVAL;
    size_t n = 0;
    cosync__for_each_record (loop, t) {
        if (!cosync__task_alive(t))
            continue;
        if (n < cap)
            tasks[n] = (cosync_task){t, t->id};
        n++;
    }
    if (cap)
        qsort(tasks, n < cap ? n : cap, sizeof *tasks, by_id);
    return n > INT_MAX ? INT_MAX : (int)n;
}

static void report_deadlock(cosync_loop *loop)
{
    FILE *out = loop->report ? loop->report : stderr;
    fprintf(out, "cosync: deadlock: %zu task%s blocked and nothing can wake %s:\n", loop->nalive,
            loop->nalive == 1 ? " is" : "s are", loop->nalive == 1 ? "it" : "them");
    cosync_loop_dump(loop, out);
    fflush(out);
}

/* ---- one turn -------------------------------------------------------- */

static void drain_wakeups(cosync_loop *loop)
{
    uint64_t n;
    while (read(loop->evfd, &n, sizeof n) > 0) {
    }
}

/* epoll_pwait2 failed other than by a signal: this process uses epoll_wait. */
static atomic_bool no_pwait2;

/* Wait for I/O or a thread wake-up for at most @timeout ns (-1: no limit).
 * epoll_pwait2 keeps timers precise below a millisecond. */
static void poll_io(cosync_loop *loop, int64_t timeout)
{
    struct epoll_event evs[64];
    struct timespec ts = {(time_t)(timeout / 1000000000), (long)(timeout % 1000000000)};
    int n = -1;
    bool fall_back = atomic_load_explicit(&no_pwait2, memory_order_relaxed);
    if (!fall_back) {
        n = epoll_pwait2(loop->epfd, evs, 64, timeout < 0 ? NULL : &ts, NULL);
        /* refused: ENOSYS from an old kernel, but a sandbox's filter may
         * say EPERM (or anything): fall back for good, or every idle step
         * would fail at once and the loop spin until its timer */
        fall_back = n < 0 && errno != EINTR;
        if (fall_back)
            atomic_store_explicit(&no_pwait2, true, memory_order_relaxed);
    }
    if (fall_back) {
        /* rounded up, without the overflow of adding first */
        int64_t ms = timeout < 0 ? -1 : timeout / 1000000 + (timeout % 1000000 != 0);
        n = epoll_wait(loop->epfd, evs, 64, ms > INT32_MAX ? INT32_MAX : (int)ms);
    }
    /* the tasks' handles first, then those the library watches for itself
     * (libcurl's sockets), whose callbacks run a user's code, which may
     * close and free a handle of its own whose event comes later in the
     * batch */
    bool watched[64];
    for (int i = 0; i < n; i++) {
        cosync_io *io = evs[i].data.ptr;
        watched[i] = io && io->watch;
        if (!io)
            drain_wakeups(loop);
        else if (!watched[i])
            cosync__io_event(io, evs[i].events);
    }
    for (int i = 0; i < n; i++)
        if (watched[i])
            cosync__io_event(evs[i].data.ptr, evs[i].events);
}

static void update_clock(cosync_loop *loop)
{
    if (!loop->virtual_clock)
        loop->now = cosync__clock_monotonic();
}

/* Nothing is runnable: wait for the next timer (or jump to it). Returns
 * false if nothing can ever wake anything. */
static bool idle(cosync_loop *loop)
{
    if (atomic_load_explicit(&loop->inbox_full, memory_order_acquire))
        return true; /* a call has come: the turn runs it */
    /* callbacks that callbacks queued: due now, behind nothing */
    if (loop->cb_soon.head) {
        if (loop->io_waiters)
            poll_io(loop, 0);
        return true;
    }
    int64_t next = cosync__timer_next(&loop->timers);
    bool held = cosync__loop_held(loop);
    if (next == COSYNC_FOREVER && loop->io_waiters == 0 && !held)
        return false;
    /* cached stacks beyond stack_cache go back only by a trim, which runs
     * between turns: a loop that sleeps long wakes for it (twice after a
     * burst: a trim gives back what went unused since the one before) */
    if (loop->next_trim != INT64_MAX && cosync__stack_pool_has_surplus(&loop->stacks) &&
        (next == COSYNC_FOREVER || loop->next_trim < next))
        next = loop->next_trim;
    if (loop->virtual_clock) {
        /* time stands still while other threads work for the loop: a
         * job's end, not the next timer, comes first; the wake-up (a call,
         * or the last reference dropped) is looked at by the next turn,
         * before time may move */
        if (held) {
            poll_io(loop, -1);
            return true;
        }
        if (loop->io_waiters)
            poll_io(loop, next == COSYNC_FOREVER ? -1 : 0);
        if (!loop->ready_head && next != COSYNC_FOREVER && next > loop->now)
            loop->now = next;
        return true;
    }
    int64_t timeout = -1;
    if (next != COSYNC_FOREVER)
        timeout = next > loop->now ? next - loop->now : 0;
    poll_io(loop, timeout);
    update_clock(loop);
    return true;
}

int64_t cosync_loop_now(const cosync_loop *loop)
{
    if (!loop)
        return COSYNC_EINVAL;
    return loop->virtual_clock ? loop->now : cosync__clock_monotonic();
}

static bool finished(cosync_loop *loop)
{
    if (loop->closing)
        return loop->closing_left == 0 && !cosync__loop_held(loop);
    if (loop->until)
        return loop->until->state == COSYNC__T_DONE;
    return loop->nalive == 0 && !cosync__loop_held(loop) && !cosync__callbacks_scheduled(loop);
}

/* The run's main task had finished before the run: asyncio's
 * run_until_complete of a done future still runs one iteration (the stop
 * is scheduled behind what is ready), so the tasks ready then (the due
 * timers' ones too, fired as every run starts) run, each until it next
 * suspends. */
static void run_one_turn(cosync_loop *loop)
{
    loop->stop_requested = true; /* cosync__run_ready cuts the turn at once */
    cosync__run_ready(loop);
}

/* Fire the timers due. asyncio wakes a sleeper through a callback of its
 * own, which queues the task's step behind every timer callback of the
 * same instant: so the callbacks due go ahead of the tasks woken here. */
static void run_timers(cosync_loop *loop)
{
    loop->cb_fire_after = loop->ready_tail;
    cosync__timer_run(&loop->timers, loop->now);
}

/* Run until @until (or every task) has finished, the loop is stopped, or
 * a deadlock. */
static int run_loop(cosync_loop *loop)
{
    int rc = 0;
    /* timers that came due between runs fire first, behind the tasks
     * already ready, as asyncio's first iteration of a run has them */
    run_timers(loop);
    if (loop->until && finished(loop)) {
        run_one_turn(loop);
        return 0;
    }
    while (!finished(loop)) {
        cosync__run_ready(loop);
        cosync__callbacks_run(loop);
        update_clock(loop);
        run_timers(loop);
        cosync__inbox_run(loop);
        if (loop->now >= loop->next_trim && loop->next_trim != INT64_MAX) { /* MAX: never */
            cosync__stack_trim(&loop->stacks);
            loop->next_trim = trim_after(loop->now);
        }
        if (finished(loop))
            break;
        /* checked after the turn: a stop asked for before the run still
         * lets it run one turn, as asyncio's does */
        if (loop->stop_requested) {
            rc = COSYNC_EINTR;
            break;
        }
        /* a cheap look at I/O: at every turn that has nothing to run
         * (then a real wait below), and every IO_TURNS turns that have, so
         * that tasks that keep busy cannot keep I/O waiting for ever */
        if (loop->io_waiters && (!loop->ready_head || ++loop->io_turns % IO_TURNS == 0))
            poll_io(loop, 0);
        if (loop->ready_head)
            continue;
        if (!loop->ready_head && !loop->stop_requested && !idle(loop)) {
            /* the last reference went after the check above: done */
            if (finished(loop))
                break;
            if (loop->closing && loop->closing_left < loop->nalive) {
                rc = COSYNC_EAGAIN; /* stuck on tasks the close has not cancelled yet */
                break;
            }
            report_deadlock(loop);
            rc = COSYNC_EDEADLK;
            break;
        }
        run_timers(loop);
    }
    return rc;
}

/* Whether the calling thread may run @loop (see cosync_loop.owner). */
static bool on_owner_thread(const cosync_loop *loop)
{
    return !loop->owned || pthread_equal(loop->owner, pthread_self());
}

/* After a run: the loop stays the thread's while a started task is
 * suspended (each holds a stack until it finishes). */
static void update_owner(cosync_loop *loop)
{
    loop->owned = loop->stacks.in_use > 0;
    if (loop->owned)
        loop->owner = pthread_self();
}

int cosync_loop_run(cosync_loop *loop, cosync_task main, int *status, void **result)
{
    if (!loop)
        return COSYNC_EINVAL;
    if (cosync__tls.loop || loop->running || !on_owner_thread(loop))
        return COSYNC_EPERM;
    struct cosync__task *until = NULL;
    if (main.rec || main.id) {
        until = cosync__task_lookup(main);
        if (!until)
            return COSYNC_ESRCH;
        if (until->loop != loop)
            return COSYNC_EPERM;
        if (until->detached || until->claimed)
            return COSYNC_EINVAL;
    }
    loop->running = true;
    loop->until = until;
    if (until)
        until->claimed = COSYNC__CLAIM_COLLECT; /* the run collects it: no one else may */
    cosync__tls.loop = loop;
    cosync__tls.loop_serial = loop->serial;
    loop->fpenv = cosync__fpenv_read();
    cosync__sched_bind_thread(loop);
    update_clock(loop);
    int rc = run_loop(loop);
    update_owner(loop);
    cosync__tls.loop = NULL;
    cosync__tls.loop_serial = 0;
    loop->running = false;
    loop->stop_requested = false; /* a request is for one run, used or not */
    loop->until = NULL;
    if (until)
        until->claimed = COSYNC__CLAIM_NONE;
    if (rc == 0 && until)
        cosync__collect(until, status, result);
    return rc;
}

/* ---- the end --------------------------------------------------------- */

static void for_each_record(cosync_loop *loop, void (*fn)(struct cosync__task *))
{
    cosync__for_each_record (loop, t)
        fn(t);
}

/* Cancel a task alive at this round of the close (once). */
void cosync__cancel_for_close(struct cosync__task *t)
{
    if (cosync__task_alive(t) && !(t->close_marks & COSYNC__CLOSING)) {
        t->close_marks |= COSYNC__CLOSING;
        t->loop->closing_left++;
        cosync__cancel(t);
    }
}

/* A task that never finished: its stack goes back unused (its frames are
 * simply dropped, as a process exit drops a thread's). */
static void drop(struct cosync__task *t)
{
    if (t->stack && cosync__is_dense(t)) {
        cosync__dense_release(t);
    } else if (t->stack) {
        cosync__stack_put(&t->loop->stacks, t->stack);
        t->stack = NULL;
    }
#if COSYNC__TSAN
    if (t->tsan_fiber) {
        __tsan_destroy_fiber(t->tsan_fiber);
        t->tsan_fiber = NULL;
    }
#endif
}

int cosync_loop_destroy(cosync_loop *loop)
{
    if (!loop)
        return 0;
    if (loop->running || cosync__tls.loop || !on_owner_thread(loop))
        return COSYNC_EPERM;
    int rc = 0;
    if (loop->nalive || cosync__loop_held(loop)) {
        /* Each round cancels the tasks alive and runs until they have
         * finished (as asyncio.run does); tasks their clean-up spawned and
         * left running are the next round's, so none can keep the close
         * waiting without having been cancelled. */
        loop->closing = loop->slow_spawns = true;
        do {
            loop->close_round++;
            for_each_record(loop, cosync__cancel_for_close);
            do /* a clean-up may stop the loop: that stops one run, not the close */
                rc = cosync_loop_run(loop, COSYNC_TASK_NONE, NULL, NULL);
            while (rc == COSYNC_EINTR);
        } while ((loop->nalive || cosync__loop_held(loop)) && (rc == 0 || rc == COSYNC_EAGAIN));
        loop->closing = false;
        rc = rc ? COSYNC_EDEADLK : 0;
    }
    cosync__callbacks_drop_all(loop); /* loop.close() drops what was scheduled */
    cosync__as_completed_orphan_all(loop);
    if (loop->addon_destroy)
        loop->addon_destroy(loop);
    cosync__io_loop_destroy(loop);
    for_each_record(loop, drop);
    cosync__executor_loop_destroy(loop);
    cosync__inbox_destroy(loop);
    cosync__dense_loop_destroy(loop);
    cosync__stack_pool_destroy(&loop->stacks);
    close_fds(loop);
    cosync__record_block *b, *next;
    for (b = loop->blocks; b; b = next) {
        next = b->next;
        cosync__record_block_free(loop, b);
    }
    /* the loop holds its allocator: copy it out before freeing the loop */
    cosync_allocator alloc = loop->alloc_copy;
    cosync__mem_free(loop->alloc ? &alloc : NULL, loop);
    return rc;
}

int cosync_run(cosync_task_fn main, void *arg)
{
    return cosync_run_with(main, arg, NULL);
}

int cosync_run_with(cosync_task_fn main, void *arg, const cosync_loop_opts *opts)
{
    cosync_loop *loop;
    cosync_task t;
    if (cosync__tls.loop)
        return COSYNC_EPERM;
    int rc = cosync_loop_init(&loop, opts);
    if (rc)
        return rc;
    rc = cosync_loop_spawn(loop, &t, main, arg, &(cosync_task_opts){.name = "main"});
    if (rc == 0) {
        int status = 0;
        rc = cosync_loop_run(loop, t, &status, NULL);
        if (rc == 0)
            rc = status;
    }
    int drc = cosync_loop_destroy(loop);
    return rc ? rc : drc;
}

static size_t count_nodes(const cosync__list *l)
{
    size_t n = 0;
    for (const cosync__node *x = l->head; x; x = x->next)
        n++;
    return n;
}

int cosync_loop_get_stats(const cosync_loop *loop, cosync_loop_stats *stats)
{
    if (!loop || !stats)
        return COSYNC_EINVAL;
    *stats = (cosync_loop_stats){
        .tasks_ready = cosync__ready_count(loop, SIZE_MAX),
        .tasks_alive = loop->nalive,
        .tasks_records = loop->nrecords,
        .timers = loop->timers.count,
        .stacks_mapped = loop->stacks.mapped,
        .stacks_in_use = loop->stacks.in_use,
        .stacks_guarded = loop->stacks.guarded,
        .switches = loop->switches,
        .callbacks = count_nodes(&loop->cb_timed) + count_nodes(&loop->cb_soon) +
                     count_nodes(&loop->cb_attached),
    };
    return 0;
}
