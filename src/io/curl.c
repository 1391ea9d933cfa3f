/*
 * libcurl for tasks (cosync/curl.h): each loop drives its transfers with
 * one multi handle through libcurl's socket interface. libcurl says which
 * sockets to watch (on_socket) and when to call it back (on_timer); the
 * loop's epoll watches the sockets, level-triggered, as libcurl expects
 * (io/fd.c's watched handles), and a timer of the loop's heap keeps the
 * timeout. A task in cosync_curl_perform waits with its record in the
 * driver's list; the transfer's end grants it.
 *
 * libcurl must not be called back into from its own callbacks, and a
 * callback of the user's (a write function, a close-socket function) may
 * cancel a task that performs: a transfer given up inside any libcurl
 * call is only marked, and taken off the multi handle once libcurl has
 * returned (`depth`), by a libcurl call of its own, which may give up
 * more (settle loops until none is left).
 *
 * Built apart from the core (the library cosync_curl), so that the core
 * needs only libc and pthreads: the loop knows the driver only as its
 * addon, freed at its destruction.
 */
#include <stdlib.h>

#include "core.h"
#include "cosync/curl.h"
#include "fault.h"

typedef struct transfer {
    cosync__node node; /* in the driver's list of transfers, or of given-up ones */
    CURL *easy;
    struct cosync__task *task;
    CURLcode code;
    struct transfer *next_free;
} transfer;

typedef struct driver {
    cosync_loop *loop;
    CURLM *multi;
    cosync__timer timer;
    cosync__list transfers; /* being performed */
    cosync__list given_up;  /* cancelled inside a libcurl call: to take off after it
                             * (their tasks run only after it, and free them) */
    cosync__list watches;   /* the sockets libcurl asked to watch */
    cosync__list spare;     /* watch records no socket has now */
    transfer *free;
    int depth;  /* inside a libcurl call */
    int failed; /* a watch could not be had: end the transfers (COSYNC_ENOMEM) */
} driver;

/* A socket libcurl asked to watch. Its record is never freed while the
 * driver lives, but kept for the next socket: the loop may still hold an
 * event for it, later in the batch whose callback dropped it (the handle
 * is closed then, and the event ignored; or reused, and the event a
 * spurious one, which libcurl takes in its stride). */
typedef struct watch {
    cosync_io io;
    cosync__node node; /* in the driver's watches, or its spare ones */
    driver *drv;
} watch;

static driver *driver_of(cosync_loop *loop)
{
    return loop->addon;
}

/* ---- driving libcurl -------------------------------------------------- */

static transfer *find_transfer(driver *d, CURL *easy)
{
    for (cosync__node *n = d->transfers.head; n; n = n->next) {
        transfer *t = cosync__container_of(n, transfer, node);
        if (t->easy == easy)
            return t;
    }
    return NULL;
}

/* Around every call into libcurl: its callbacks run with no task current,
 * as from the loop's own turn, whoever called (a task performing, or one
 * that cancels a transfer), so that a cosync call that would suspend there
 * returns COSYNC_EPERM instead of switching away inside libcurl; and the
 * depth says that a transfer given up meanwhile must wait for libcurl to
 * return. Returns the task to go back to. */
static struct cosync__task *enter_libcurl(driver *d)
{
    struct cosync__task *cur = cosync__current();
    if (cur)
        cosync__set_current(NULL);
    d->depth++;
    return cur;
}

static void leave_libcurl(driver *d, struct cosync__task *cur)
{
    d->depth--;
    if (cur)
        cosync__set_current(cur);
}

/* Take @easy off the multi handle, as a libcurl call like any other: its
 * callbacks (a connection closed) may give up other transfers meanwhile. */
static void remove_handle(driver *d, CURL *easy)
{
    struct cosync__task *cur = enter_libcurl(d);
    curl_multi_remove_handle(d->multi, easy);
    leave_libcurl(d, cur);
}

/* End @t's wait: its transfer is over (@rc 0, with libcurl's outcome in
 * t->code) or has failed (@rc < 0). Granted before the handle is taken
 * off: a callback of that removal that cancels @t's task then finds the
 * wait granted (the cancel comes at its next suspension), not waiting. */
static void finish(driver *d, transfer *t, int rc)
{
    cosync__list_remove(&d->transfers, &t->node);
    d->loop->io_waiters--;
    cosync__grant(&t->task->w, rc);
    remove_handle(d, t->easy);
}

/* After a libcurl call: take off the transfers given up meanwhile, and
 * grant those that have ended, until neither leaves more to do. */
static void settle(driver *d)
{
    for (;;) {
        cosync__node *n = cosync__list_pop_front(&d->given_up);
        if (n) {
            remove_handle(d, cosync__container_of(n, transfer, node)->easy);
            continue;
        }
        int left;
        CURLMsg *msg = curl_multi_info_read(d->multi, &left);
        if (msg) {
            transfer *t = msg->msg == CURLMSG_DONE ? find_transfer(d, msg->easy_handle) : NULL;
            if (t) {
                t->code = msg->data.result;
                finish(d, t, 0);
            }
            continue;
        }
        if (!d->failed)
            return;
        d->failed = 0;
        while (d->transfers.head)
            finish(d, cosync__container_of(d->transfers.head, transfer, node), COSYNC_ENOMEM);
    }
}

static void socket_action(driver *d, curl_socket_t s, int mask)
{
    int running;
    struct cosync__task *cur = enter_libcurl(d);
    curl_multi_socket_action(d->multi, s, mask, &running);
    leave_libcurl(d, cur);
    settle(d);
}

static void on_ready(cosync_io *io, int events)
{
    int mask = 0;
    if (events & COSYNC_IO_READ)
        mask |= CURL_CSELECT_IN;
    if (events & COSYNC_IO_WRITE)
        mask |= CURL_CSELECT_OUT;
    if (events & COSYNC__IO_ERROR)
        mask |= CURL_CSELECT_ERR;
    watch *w = cosync__container_of(io, watch, io);
    socket_action(w->drv, io->fd, mask);
}

static void drop_watch(driver *d, watch *w)
{
    cosync_io_release(&w->io); /* libcurl closes the socket */
    cosync__list_remove(&d->watches, &w->node);
    cosync__list_push_back(&d->spare, &w->node);
}

static watch *new_watch(driver *d)
{
    cosync__node *n = cosync__list_pop_front(&d->spare);
    if (n)
        return cosync__container_of(n, watch, node);
    return cosync__mem_alloc(d->loop->alloc, sizeof(watch));
}

/* libcurl's CURLMOPT_SOCKETFUNCTION. Returning -1 would kill the multi
 * handle, every transfer with it: a watch that cannot be had ends the
 * transfers instead, once libcurl has returned. */
static int on_socket(CURL *easy, curl_socket_t s, int what, void *userp, void *socketp)
{
    (void)easy;
    driver *d = userp;
    watch *w = socketp;
    if (what == CURL_POLL_REMOVE) {
        if (w) {
            curl_multi_assign(d->multi, s, NULL);
            drop_watch(d, w);
        }
        return 0;
    }
    if (!w) {
        w = new_watch(d);
        if (!w) {
            d->failed = 1;
            return 0;
        }
        cosync__io_adopt(&w->io, s);
        w->drv = d;
        cosync__list_push_back(&d->watches, &w->node);
        curl_multi_assign(d->multi, s, w);
    }
    int events =
        (what & CURL_POLL_IN ? COSYNC_IO_READ : 0) | (what & CURL_POLL_OUT ? COSYNC_IO_WRITE : 0);
    if (cosync__io_watch(&w->io, d->loop, events, on_ready) < 0) {
        curl_multi_assign(d->multi, s, NULL);
        drop_watch(d, w);
        d->failed = 1;
    }
    return 0;
}

static void timer_fired(cosync__timer *timer)
{
    driver *d = cosync__container_of(timer, driver, timer);
    socket_action(d, CURL_SOCKET_TIMEOUT, 0);
}

/* libcurl's CURLMOPT_TIMERFUNCTION: call it back in @ms (-1: never). */
static int on_timer(CURLM *multi, long ms, void *userp)
{
    (void)multi;
    driver *d = userp;
    if (ms >= 0)
        cosync__timer_arm(&d->loop->timers, &d->timer, d->loop->now + COSYNC_MS(ms));
    else
        cosync__timer_disarm(&d->loop->timers, &d->timer);
    return 0;
}

/* ---- the loop's driver ----------------------------------------------- */

static void driver_destroy(cosync_loop *loop)
{
    driver *d = driver_of(loop);
    /* no task performs any more: the loop's close cancelled them all */
    enter_libcurl(d);             /* for good: the loop's own context, no task */
    curl_multi_cleanup(d->multi); /* closes the cached connections */
    while (d->watches.head)
        drop_watch(d, cosync__container_of(d->watches.head, watch, node));
    cosync__node *n;
    while ((n = cosync__list_pop_front(&d->spare)) != NULL)
        cosync__mem_free(loop->alloc, cosync__container_of(n, watch, node));
    cosync__timer_disarm(&loop->timers, &d->timer);
    while (d->free) {
        transfer *t = d->free;
        d->free = t->next_free;
        cosync__mem_free(loop->alloc, t);
    }
    cosync__mem_free(loop->alloc, d);
    loop->addon = NULL;
    loop->addon_destroy = NULL;
}

static int driver_get(cosync_loop *loop, driver **out)
{
    if (loop->addon_destroy == driver_destroy) {
        *out = driver_of(loop);
        return 0;
    }
    if (loop->addon) /* another addon has the slot */
        return COSYNC_EPERM;
    driver *d = cosync__mem_alloc(loop->alloc, sizeof *d);
    if (!d)
        return COSYNC_ENOMEM;
    *d = (driver){.loop = loop};
    cosync__timer_init(&d->timer, timer_fired);
    d->multi = cosync__fault_hit() ? NULL : curl_multi_init();
    if (!d->multi) {
        cosync__mem_free(loop->alloc, d);
        return COSYNC_ENOMEM;
    }
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETFUNCTION, on_socket);
    curl_multi_setopt(d->multi, CURLMOPT_SOCKETDATA, d);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERFUNCTION, on_timer);
    curl_multi_setopt(d->multi, CURLMOPT_TIMERDATA, d);
    loop->addon = d;
    loop->addon_destroy = driver_destroy;
    *out = d;
    return 0;
}

/* ---- performing ------------------------------------------------------- */

static transfer *transfer_get(driver *d)
{
    transfer *t = d->free;
    if (t) {
        d->free = t->next_free;
        return t;
    }
    return cosync__mem_alloc(d->loop->alloc, sizeof *t);
}

static void transfer_put(driver *d, transfer *t)
{
    t->next_free = d->free;
    d->free = t;
}

/* The wait was cancelled or timed out: take the transfer off (after the
 * libcurl call under way, if any). */
static void transfer_cancel(cosync__waiter *w)
{
    transfer *t = w->obj;
    driver *d = driver_of(t->task->loop);
    cosync__list_remove(&d->transfers, &t->node);
    d->loop->io_waiters--;
    if (d->depth) { /* its task runs only after that call: the record stays */
        cosync__list_push_back(&d->given_up, &t->node);
        return;
    }
    remove_handle(d, t->easy);
    settle(d);
}

static void transfer_describe(const cosync__waiter *w, char *buf, size_t size)
{
    const transfer *t = w->obj;
    char *url = NULL;
    curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url);
    snprintf(buf, size, "curl transfer %s", url ? url : "?");
}

static const cosync__waiter_ops transfer_ops = {"curl", transfer_cancel, transfer_describe, NULL};

int cosync_curl_perform(CURL *easy, CURLcode *result, int64_t deadline)
{
    struct cosync__task *cur = cosync__current();
    if (!cur)
        return COSYNC_EPERM;
    if (!easy)
        return COSYNC_EINVAL;
    if (deadline == 0)
        return COSYNC_EAGAIN;
    cosync_loop *loop = cur->loop;
    driver *d;
    int rc = driver_get(loop, &d);
    if (rc)
        return rc;
    transfer *t = transfer_get(d);
    if (!t)
        return COSYNC_ENOMEM;
    *t = (transfer){.easy = easy, .task = cur, .code = CURLE_OK};
    CURLMcode mc = CURLM_OUT_OF_MEMORY;
    if (!cosync__fault_hit()) {
        struct cosync__task *self = enter_libcurl(d);
        mc = curl_multi_add_handle(d->multi, easy);
        leave_libcurl(d, self);
        settle(d);
    }
    if (mc != CURLM_OK) {
        transfer_put(d, t);
        return mc == CURLM_ADDED_ALREADY ? COSYNC_EBUSY : COSYNC_ENOMEM;
    }
    cosync__list_push_back(&d->transfers, &t->node);
    loop->io_waiters++;
    cosync__waiter *w = cosync__waiter_prepare(cur, &transfer_ops, t);
    rc = cosync__wait(w, deadline);
    if (rc == 0 && result)
        *result = t->code;
    transfer_put(d, t);
    return rc;
}
