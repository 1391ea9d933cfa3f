/*
 * harness.h - the helpers cosync's test programs share: virtual-clock loops,
 * running a main task, joining, the current loop's stats, trivial task
 * bodies, capturing stderr and reports, a counting allocator, semaphores
 * for the tests with threads.
 *
 * Header-only, like check.h (which it includes): every helper is a static
 * function, unused ones cost nothing. Every check aborts (see check.h).
 */
#ifndef COSYNC_TESTS_HARNESS_H
#define COSYNC_TESTS_HARNESS_H

#include <dirent.h>
#include <errno.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "check.h"
#include "cosync.h"

#define HARNESS_UNUSED __attribute__((unused))

/** UNDER_ASAN: 1 when AddressSanitizer instruments this build (it runs slower). */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

/** UNDER_TSAN: 1 when ThreadSanitizer instruments this build (each started
 * task is a TSan fiber, and TSan allows 8,128 threads and fibers at once). */
#if defined(__SANITIZE_THREAD__)
#define UNDER_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_TSAN 1
#endif
#endif
#ifndef UNDER_TSAN
#define UNDER_TSAN 0
#endif

/* ------------------------------------------------------------------------
 * Loops and main tasks
 * ---------------------------------------------------------------------- */

/** A fresh loop on the virtual clock (it starts at COSYNC_SEC(1)). */
static HARNESS_UNUSED cosync_loop *new_loop(void)
{
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(&loop, &(cosync_loop_opts){.virtual_clock = true}));
    CHECK_NOTNULL(loop);
    return loop;
}

/** Check that every task of @loop ended and was collected and no timer is left; destroy it. */
static HARNESS_UNUSED void end_loop(cosync_loop *loop)
{
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(loop, &st));
    CHECK_EQ(st.tasks_alive, 0);
    CHECK_EQ(st.tasks_records, 0); /* every task was collected */
    CHECK_EQ(st.timers, 0);
    CHECK_EQ(st.callbacks, 0);
    CHECK_OK(cosync_loop_destroy(loop));
}

/** Run @fn(@arg) as the task "main" of a fresh virtual-clock loop, end_loop() it; main's status. */
static HARNESS_UNUSED int run_main(cosync_task_fn fn, void *arg)
{
    cosync_loop *loop = new_loop();
    cosync_task m;
    CHECK_OK(cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"}));
    int status = 12345;
    CHECK_OK(cosync_loop_run(loop, m, &status, NULL));
    end_loop(loop);
    return status;
}

/** Run @fn(@arg) as the task "main" of a fresh virtual-clock loop and, if
 * the run ended clean with main's status 0, end_loop() it and return 0;
 * else return the error (of the spawn or the run, or main's status) for
 * the caller to report with its own context (a randomized test's seed). */
static HARNESS_UNUSED int run_main_clean(cosync_task_fn fn, void *arg)
{
    cosync_loop *loop = new_loop();
    cosync_task m;
    int status = 0;
    int rc = cosync_loop_spawn(loop, &m, fn, arg, &(cosync_task_opts){.name = "main"});
    if (rc == 0)
        rc = cosync_loop_run(loop, m, &status, NULL);
    if (rc == 0 && status == 0)
        end_loop(loop);
    return rc ? rc : status;
}

/** run_main(@fn, @arg), and check that main returned 0. */
static HARNESS_UNUSED void run_main_ok(cosync_task_fn fn, void *arg)
{
    CHECK_OK(run_main(fn, arg));
}

/** Spawn @fn(@arg) on @loop as *@t, and run @loop until *@t has ended (its status unchecked). */
static HARNESS_UNUSED void spawn_and_run(cosync_loop *loop, cosync_task *t, cosync_task_fn fn,
                                         void *arg)
{
    CHECK_OK(cosync_loop_spawn(loop, t, fn, arg, NULL));
    CHECK_OK(cosync_loop_run(loop, *t, NULL, NULL));
}

/* ------------------------------------------------------------------------
 * Joining
 * ---------------------------------------------------------------------- */

/** Join @t (no deadline) and return its status. */
static HARNESS_UNUSED int join_status(cosync_task t)
{
    int st = 12345;
    CHECK_OK(cosync_task_join(t, &st, NULL, COSYNC_FOREVER));
    return st;
}

/** Join @t and check that its status is 0. */
static HARNESS_UNUSED void join_ok(cosync_task t)
{
    CHECK_OK(join_status(t));
}

/** Join @t and check that its status is @want. */
static HARNESS_UNUSED void join_expect(cosync_task t, int want)
{
    CHECK_ERR(join_status(t), want);
}

/* ------------------------------------------------------------------------
 * The current loop's stats (call from a task)
 * ---------------------------------------------------------------------- */

/** The stats of the loop running the calling task. */
static HARNESS_UNUSED cosync_loop_stats loop_stats(void)
{
    cosync_loop_stats st;
    CHECK_OK(cosync_loop_get_stats(cosync_loop_current(), &st));
    return st;
}

/** The current loop's context switches so far. */
static HARNESS_UNUSED uint64_t switches(void)
{
    return loop_stats().switches;
}

/** The current loop's armed timers. */
static HARNESS_UNUSED size_t armed_timers(void)
{
    return loop_stats().timers;
}

/** The current loop's ready (runnable, not running) tasks. */
static HARNESS_UNUSED size_t ready_tasks(void)
{
    return loop_stats().tasks_ready;
}

/** The current loop's tasks not finished yet. */
static HARNESS_UNUSED size_t alive_tasks(void)
{
    return loop_stats().tasks_alive;
}

/** The current loop's task records (tasks not collected yet). */
static HARNESS_UNUSED size_t task_records(void)
{
    return loop_stats().tasks_records;
}

/* ------------------------------------------------------------------------
 * Seeded randomized tests (test_stress.c and the model tests)
 * ---------------------------------------------------------------------- */

/** The monotonic clock in seconds: for a test's report of its own run time. */
static HARNESS_UNUSED double monotonic_seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/** Run @run_seed for the seeds @first to @first + @n - 1; the seconds taken. */
static HARNESS_UNUSED double run_seeds(void (*run_seed)(uint64_t), long first, long n)
{
    double start = monotonic_seconds();
    for (long s = first; s < first + n; s++)
        run_seed((uint64_t)s);
    return monotonic_seconds() - start;
}

#if defined(__has_include)
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define HARNESS_HAVE_VALGRIND 1
#endif
#endif

/** Whether the program runs under valgrind (it runs 20-50 times slower). */
static HARNESS_UNUSED bool under_valgrind(void)
{
#ifdef HARNESS_HAVE_VALGRIND
    return RUNNING_ON_VALGRIND != 0;
#else
    return false;
#endif
}

/** splitmix64 of @x, never 0: a seed for one rnd() stream. */
static HARNESS_UNUSED uint64_t splitmix(uint64_t x)
{
    x += UINT64_C(0x9E3779B97F4A7C15);
    x = (x ^ (x >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    x = (x ^ (x >> 27)) * UINT64_C(0x94D049BB133111EB);
    x ^= x >> 31;
    return x ? x : 1;
}

/** xorshift64* on the stream *@s: a number below @n. */
static HARNESS_UNUSED uint32_t rnd(uint64_t *s, uint32_t n)
{
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return (uint32_t)(((x * UINT64_C(0x2545F4914F6CDD1D)) >> 32) % n);
}

/** The environment variable @name as a number, or @dflt if unset or empty. */
static HARNESS_UNUSED long env_long(const char *name, long dflt)
{
    const char *s = getenv(name);
    return s && *s ? strtol(s, NULL, 0) : dflt;
}

/* ------------------------------------------------------------------------
 * Trivial task bodies
 * ---------------------------------------------------------------------- */

/** A task that does nothing and returns 0. */
static HARNESS_UNUSED int nop(void *arg, void **result)
{
    (void)arg, (void)result;
    return 0;
}

/** A task that returns 0 with @arg as its result. */
static HARNESS_UNUSED int return_arg(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/** A task that adds one to the int at @arg and returns 0. */
static HARNESS_UNUSED int bump_counter(void *arg, void **result)
{
    (void)result;
    ++*(int *)arg;
    return 0;
}

/** A task that waits for the future at @arg, then returns its status with
 * its value as the result (or what ended the wait). */
static HARNESS_UNUSED int wait_future_arg(void *arg, void **result)
{
    cosync_future *f = arg;
    int rc = cosync_future_wait(f, COSYNC_FOREVER);
    return rc ? rc : cosync_future_result(f, result);
}

/** A task that passes CHECKPOINT(@arg, an int) and returns 0. */
static HARNESS_UNUSED int checkpoint_arg(void *arg, void **result)
{
    (void)result;
    CHECKPOINT((int)(intptr_t)arg);
    return 0;
}

/* ------------------------------------------------------------------------
 * Capturing stderr (what the library reports there) and streams
 * ---------------------------------------------------------------------- */

/** What errcap_begin/errcap_end captured of stderr (its first 1023 bytes). */
typedef struct errcap {
    int saved;
    FILE *tmp;
    char text[1024];
} errcap;

/** Send stderr (fd 2) to a temporary file until errcap_end(@c). */
static HARNESS_UNUSED void errcap_begin(errcap *c)
{
    fflush(stderr);
    c->saved = dup(2);
    CHECK(c->saved >= 0);
    c->tmp = tmpfile();
    CHECK_NOTNULL(c->tmp);
    CHECK(dup2(fileno(c->tmp), 2) == 2);
}

/** Restore stderr; return the text written since errcap_begin(@c) (kept in @c->text). */
static HARNESS_UNUSED const char *errcap_end(errcap *c)
{
    fflush(stderr);
    CHECK(dup2(c->saved, 2) == 2);
    close(c->saved);
    rewind(c->tmp);
    size_t n = fread(c->text, 1, sizeof c->text - 1, c->tmp);
    c->text[n] = '\0';
    fclose(c->tmp);
    return c->text;
}

/** The number of lines (newlines) in @s. */
static HARNESS_UNUSED size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

/** A memory stream that collects a report (a loop's .report, a dump). */
typedef struct capture {
    FILE *f;
    char *buf;
    size_t len;
} capture;

/** Open the stream of @c and return it. */
static HARNESS_UNUSED FILE *capture_open(capture *c)
{
    c->buf = NULL;
    c->len = 0;
    c->f = open_memstream(&c->buf, &c->len);
    CHECK_NOTNULL(c->f);
    return c->f;
}

/** Flush the stream of @c and return its text so far (valid until more is written). */
static HARNESS_UNUSED const char *capture_text(capture *c)
{
    fflush(c->f);
    return c->buf;
}

/** Close the stream of @c and free its text. */
static HARNESS_UNUSED void capture_free(capture *c)
{
    fclose(c->f);
    c->f = NULL;
    free(c->buf);
    c->buf = NULL;
}

/** A fresh virtual-clock loop whose reports go to @c (opened here); @allocator NULL: malloc. */
static HARNESS_UNUSED cosync_loop *report_loop(capture *c, const cosync_allocator *allocator)
{
    FILE *report = capture_open(c);
    cosync_loop *loop = NULL;
    CHECK_OK(cosync_loop_init(
        &loop,
        &(cosync_loop_opts){.virtual_clock = true, .report = report, .allocator = allocator}));
    CHECK_NOTNULL(loop);
    return loop;
}

/** A report_loop() whose task @name, *@m = @fn(@arg), has run into a deadlock (EDEADLK). */
static HARNESS_UNUSED cosync_loop *deadlock_loop(capture *c, cosync_task_fn fn, void *arg,
                                                 const char *name, cosync_task *m)
{
    cosync_loop *loop = report_loop(c, NULL);
    CHECK_OK(cosync_loop_spawn(loop, m, fn, arg, &(cosync_task_opts){.name = name}));
    CHECK_ERR(cosync_loop_run(loop, *m, NULL, NULL), COSYNC_EDEADLK);
    fflush(c->f);
    return loop;
}

/** Dump the current loop into a string (free() it); the dump's task count goes to @ntasks. */
static HARNESS_UNUSED char *dump_text(int *ntasks)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    CHECK_NOTNULL(f);
    *ntasks = cosync_loop_dump(cosync_loop_current(), f);
    fclose(f);
    return buf;
}

/* ------------------------------------------------------------------------
 * Resources
 * ---------------------------------------------------------------------- */

/** The allocations of count_realloc(): live now, and made in all. */
typedef struct counting {
    long live;
    long total;
} counting;

/** A cosync_allocator function (ud: a counting) that counts allocations. */
static HARNESS_UNUSED void *count_realloc(void *ud, void *ptr, size_t size)
{
    counting *c = ud;
    if (size == 0) {
        if (ptr)
            c->live--;
        free(ptr);
        return NULL;
    }
    if (!ptr) {
        void *p = malloc(size);
        if (p) {
            c->live++;
            c->total++;
        }
        return p;
    }
    return realloc(ptr, size);
}

/** The number of open file descriptors of this process (entries of /proc/self/fd). */
static HARNESS_UNUSED int count_fds(void)
{
    int n = 0;
    DIR *d = opendir("/proc/self/fd");
    CHECK_NOTNULL(d);
    while (readdir(d))
        n++;
    closedir(d);
    return n;
}

/* ------------------------------------------------------------------------
 * Threads
 * ---------------------------------------------------------------------- */

/** Initialise @s to 0 (shared between this process's threads). */
static HARNESS_UNUSED void sem_init0(sem_t *s)
{
    CHECK_EQ(sem_init(s, 0, 0), 0);
}

/** Wait for @s, blocking the calling thread (and its loop, in a task). */
static HARNESS_UNUSED void sem_wait_ok(sem_t *s)
{
    while (sem_wait(s) != 0)
        CHECK_EQ(errno, EINTR);
}

#endif /* COSYNC_TESTS_HARNESS_H */
