/*
 * cosync/base.h - error codes, time, and the intrusive types that the
 * caller-embedded structs of the public API are made of.
 *
 * Included by <cosync.h>; not meant to be included on its own.
 */
#ifndef COSYNC_BASE_H
#define COSYNC_BASE_H

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------
 * Error codes
 *
 * Every action returns 0 (or a count) on success and a negative code on
 * failure. On POSIX the codes are negated errno values; conditions that
 * have no errno get a code in the library's reserved range
 * [COSYNC_ERANGE_FIRST, COSYNC_ERANGE_LAST]. The mapping from asyncio's
 * exceptions is in docs/errors.md.
 * ---------------------------------------------------------------------- */

#define COSYNC_EPERM (-EPERM)         /* RuntimeError: misuse (wrong loop, no task, unheld lock) */
#define COSYNC_ESRCH (-ESRCH)         /* stale task handle: joined, or detached and finished */
#define COSYNC_EINTR (-EINTR)         /* the loop was stopped */
#define COSYNC_EAGAIN (-EAGAIN)       /* deadline 0 and the call would block (asyncio's *_nowait) */
#define COSYNC_ENOMEM (-ENOMEM)       /* out of memory (allocator or mmap failed) */
#define COSYNC_EBUSY (-EBUSY)         /* the object is in use (a task already has a joiner) */
#define COSYNC_EINVAL (-EINVAL)       /* ValueError: bad argument */
#define COSYNC_EDEADLK (-EDEADLK)     /* deadlock: nothing can ever wake the blocked tasks */
#define COSYNC_EOVERFLOW (-EOVERFLOW) /* a count would pass its limit */
#define COSYNC_EALREADY                                                                            \
    (-EALREADY) /* already done: cancelling a finished task, setting a set future */
#define COSYNC_ETIMEDOUT (-ETIMEDOUT) /* TimeoutError: the deadline passed */
#define COSYNC_ECANCELED (-ECANCELED) /* CancelledError */
#define COSYNC_ESHUTDOWN (-ESHUTDOWN) /* QueueShutDown */

/** The lowest code of the library's reserved range (codes with no errno). */
#define COSYNC_ERANGE_FIRST (-10099)
#define COSYNC_EBROKEN (-10001) /* BrokenBarrierError */
#define COSYNC_EOPEN (-10002)   /* a circuit breaker is open: the call was not made */
/** The highest code of the library's reserved range. */
#define COSYNC_ERANGE_LAST (-10000)

/**
 * cosync_strerror - a human-readable description of an error code.
 * @err: a cosync error code (negative), or 0.
 * Returns a static string; never NULL (unknown codes get "unknown error";
 * with glibc, another negated errno value, such as a socket call's
 * -ENETUNREACH, gets the system's description).
 * Not a suspension point. Thread-safe.
 */
const char *cosync_strerror(int err);

/**
 * cosync_err_name - the symbolic name of an error code ("COSYNC_ETIMEDOUT").
 * @err: a cosync error code (negative), or 0 ("0").
 * Returns a static string; never NULL ("COSYNC_E?" for unknown codes;
 * with glibc, another negated errno value gets the system's name:
 * "ENETUNREACH").
 * Not a suspension point. Thread-safe.
 */
const char *cosync_err_name(int err);

/* ------------------------------------------------------------------------
 * Time
 *
 * Times are int64_t nanoseconds on the loop's monotonic clock. A deadline
 * is an absolute time; COSYNC_FOREVER (INT64_MIN) means none, and 0 means
 * "do not block" (the call returns COSYNC_EAGAIN instead of suspending).
 * COSYNC_FOREVER is the one value that no difference of two clock readings
 * gives, so it can also stand for "no timeout" (see cosync_deadline_after).
 * ---------------------------------------------------------------------- */

/** The deadline that never passes: wait until done (or cancelled). */
#define COSYNC_FOREVER INT64_MIN
/** @x nanoseconds, as int64_t nanoseconds (the unit of every time). */
#define COSYNC_NS(x) ((int64_t)(x))
/** @x microseconds in nanoseconds. */
#define COSYNC_US(x) ((int64_t)(x)*INT64_C(1000))
/** @x milliseconds in nanoseconds. */
#define COSYNC_MS(x) ((int64_t)(x)*INT64_C(1000000))
/** @x seconds in nanoseconds. */
#define COSYNC_SEC(x) ((int64_t)(x)*INT64_C(1000000000))

/* ------------------------------------------------------------------------
 * Intrusive building blocks (private: their fields are not API)
 * ---------------------------------------------------------------------- */

/* A node of a doubly linked list that ends in NULL at both ends, so that an
 * all-zero list is a valid empty list (static initialisers stay `{0}`). */
typedef struct cosync__node {
    struct cosync__node *next;
    struct cosync__node *prev;
} cosync__node;

typedef struct cosync__list {
    cosync__node *head;
    cosync__node *tail;
} cosync__list;

/* The queue of tasks waiting on an object: FIFO, with its length, and the
 * loop the object is bound to while the queue is not empty. */
struct cosync_loop;
typedef struct cosync__waitq {
    cosync__list list;
    struct cosync_loop *loop;
    uint32_t n;
} cosync__waitq;

#define COSYNC__WAITQ_INIT                                                                         \
    {                                                                                              \
        {NULL, NULL}, NULL, 0                                                                      \
    }

/** Allocator for the library's dynamic memory (task records, queue
 * storage). Those who take one copy it: it need not outlive the call. */
typedef struct cosync_allocator {
    /* realloc-like: size 0 frees @ptr and returns NULL. */
    void *(*realloc)(void *ud, void *ptr, size_t size);
    void *ud;
} cosync_allocator;

/* The calling thread's running loop and task (and the task's id), for
 * the fast paths the headers inline. */
struct cosync__task;
typedef struct cosync__tls_state {
    struct cosync_loop *loop;
    struct cosync__task *cur;
    uint64_t cur_id;
    uint64_t loop_serial; /* the running loop's (0: none) */
    void **job_local;     /* on a pool's thread, in a job: its task-local pointer */
} cosync__tls_state;

extern __thread cosync__tls_state cosync__tls __attribute__((tls_model("initial-exec")));

/* A timer: a node of the loop's pairing heap, ordered by (when, seq) so
 * that timers with equal deadlines fire in the order they were armed. */
typedef struct cosync__timer {
    struct cosync__timer *child;
    struct cosync__timer *next; /* next sibling */
    struct cosync__timer *prev; /* previous sibling, or parent if first child */
    int64_t when;
    uint64_t seq;
    void (*fire)(struct cosync__timer *timer);
} cosync__timer;

/* A wait: a node on the list of the object waited on (its wait queue, the
 * waits on a task), with what the object needs to end it. A task's one
 * waiter lives in its record, never on its stack, so nothing outside a
 * switched-out task points into its stack; its task is the record around
 * it. A task's done callback (cosync_task_add_done_callback) is one too,
 * in the caller's callback record. The ops are private to the library. */
struct cosync__waiter_ops;
typedef struct cosync__waiter {
    cosync__node node; /* in the object's wait list */
    const struct cosync__waiter_ops *ops;
    void *obj;
    uintptr_t data; /* for the primitive: a count, an index, a pointer */
    int result;
    uint8_t state;
    bool shielded;   /* cancellation does not interrupt this wait */
    bool revocable;  /* a cancel after the grant hands it back (ops->cancel
                      * is then called in state GRANTED and must pass it on) */
    bool passing_on; /* a cancellation it passes on (give_up) is on its way
                      * down the tasks it waits for: one coming back to it
                      * through a cycle of such waits ends there */
} cosync__waiter;

#ifdef __cplusplus
}
#endif
#endif /* COSYNC_BASE_H */
