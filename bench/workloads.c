/*
 * workloads.c - the benchmark workloads of ../shared/bench/WORKLOADS.md with
 * cosync, to be timed beside the peers (Python's asyncio, Go).
 *
 * usage: workloads NAME|all [SCALE]     (NAME 'all' runs every implemented one)
 *        workloads --list               (the implemented names, one a line)
 *
 * Prints '<workload> <ops> <seconds> <ns_per_op>' (the peers' format) and
 * exits 1 on a wrong result or a failed call, 2 on a bad command line.
 *
 * Each workload runs as the main task of its own cosync_run (the default
 * options: real clock, 64 KiB stacks); only the measured part is timed,
 * with CLOCK_MONOTONIC.
 *
 * Implemented: switch, yield, spawn, sleepers; and spawn_join, our own
 * (sequential spawn + join, which has no peer in WORKLOADS.md).
 * Not yet implemented (their primitives do not exist yet; add a function
 * and a line to `workloads[]` below): lock_uncontended, lock_contended,
 * sem_limit, queue_spsc, queue_mpmc, event_fanout, condition_pc, barrier,
 * timeout_ok, rwlock.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <cosync.h>

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* What a workload hands back to main(), which prints it once the loop is
 * gone (tasks touch stdio only to report an error). */
typedef struct bench {
    double scale;     /* in */
    const char *name; /* in */
    long ops;         /* out */
    double seconds;   /* out */
} bench;

/* A status of our own for "the result is wrong"; outside cosync's codes. */
#define WRONG_RESULT (-20000)

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static long scaled(double base, double scale)
{
    return (long)(base * scale);
}

/* A cosync call failed: say which, and end the workload with its code. */
#define TRY(call)                                                                      \
    do {                                                                               \
        int try_rc_ = (call);                                                          \
        if (try_rc_ < 0) {                                                             \
            fprintf(stderr, "%s:%d: %s: %s\n", __FILE__, __LINE__, #call,              \
                    cosync_err_name(try_rc_));                                         \
            return try_rc_;                                                            \
        }                                                                              \
    } while (0)

/* The result is wrong: say what, and end the workload as failed. */
#define CHECK(cond, ...)                                                               \
    do {                                                                               \
        if (!(cond)) {                                                                 \
            fprintf(stderr, "wrong result: " __VA_ARGS__);                            \
            fputc('\n', stderr);                                                       \
            return WRONG_RESULT;                                                       \
        }                                                                              \
    } while (0)

/* Check a gather's outcomes: every task succeeded. */
static int check_outcomes(const cosync_outcome *out, long n)
{
    for (long i = 0; i < n; i++)
        if (out[i].status != 0) {
            fprintf(stderr, "task %ld ended with %s\n", i, cosync_err_name(out[i].status));
            return out[i].status < 0 ? out[i].status : WRONG_RESULT;
        }
    return 0;
}

/* ------------------------------------------------------------------------
 * switch: two tasks ping-pong through two events (A sets B's event and
 * waits on its own, clear after wake); ops = round trips.
 * ---------------------------------------------------------------------- */

typedef struct pingpong {
    cosync_event a, b;
    long n;
    long pings, pongs;
} pingpong;

static int ping(void *arg, void **result)
{
    (void)result;
    pingpong *p = arg;
    for (long i = 0; i < p->n; i++) {
        TRY(cosync_event_set(&p->b));
        TRY(cosync_event_wait(&p->a, COSYNC_FOREVER));
        TRY(cosync_event_clear(&p->a));
        p->pings++;
    }
    return 0;
}

static int pong(void *arg, void **result)
{
    (void)result;
    pingpong *p = arg;
    for (long i = 0; i < p->n; i++) {
        TRY(cosync_event_wait(&p->b, COSYNC_FOREVER));
        TRY(cosync_event_clear(&p->b));
        p->pongs++;
        TRY(cosync_event_set(&p->a));
    }
    return 0;
}

static int wl_switch(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    pingpong p;
    memset(&p, 0, sizeof p);
    cosync_event_init(&p.a);
    cosync_event_init(&p.b);
    p.n = scaled(1e6, b->scale);

    cosync_task t[2];
    cosync_outcome out[2];
    double t0 = now_s();
    TRY(cosync_task_spawn(&t[0], ping, &p, NULL));
    TRY(cosync_task_spawn(&t[1], pong, &p, NULL));
    TRY(cosync_gather(t, 2, out, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    b->ops = p.n;
    TRY(check_outcomes(out, 2));
    CHECK(p.pings == p.n && p.pongs == p.n, "pings %ld pongs %ld, want %ld", p.pings,
          p.pongs, p.n);
    return 0;
}

/* ------------------------------------------------------------------------
 * yield: 2 tasks each cosync_yield() n times; ops = 2n.
 * ---------------------------------------------------------------------- */

typedef struct spinner {
    long n;
    long done;
} spinner;

static int spin(void *arg, void **result)
{
    (void)result;
    spinner *s = arg;
    for (long i = 0; i < s->n; i++) {
        TRY(cosync_yield());
        s->done++;
    }
    return 0;
}

static int wl_yield(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    spinner s[2] = {{n, 0}, {n, 0}};

    cosync_task t[2];
    cosync_outcome out[2];
    double t0 = now_s();
    TRY(cosync_task_spawn(&t[0], spin, &s[0], NULL));
    TRY(cosync_task_spawn(&t[1], spin, &s[1], NULL));
    TRY(cosync_gather(t, 2, out, COSYNC_FOREVER));
    b->seconds = now_s() - t0;
    b->ops = 2 * n;
    TRY(check_outcomes(out, 2));
    CHECK(s[0].done == n && s[1].done == n, "yields %ld and %ld, want %ld each",
          s[0].done, s[1].done, n);
    return 0;
}

/* ------------------------------------------------------------------------
 * spawn: create n trivial tasks (each returns its index) and gather them;
 * the time covers spawn + gather; the sum of the results is checked.
 * ---------------------------------------------------------------------- */

static int trivial(void *arg, void **result)
{
    *result = arg;
    return 0;
}

/* spawn_join (ours, not in WORKLOADS.md; no peer): spawn one trivial task
 * and join it, n times in a row: the cost of a task's whole life when its
 * stack and record are reused, as libdill's spawn benchmark measures. */
static int wl_spawn_join(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    int rc = 0;
    int64_t sum = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        cosync_task t;
        int status;
        void *res;
        TRY(cosync_task_spawn(&t, trivial, (void *)(intptr_t)i, NULL));
        TRY(cosync_task_join(t, &status, &res, COSYNC_FOREVER));
        if (status != 0)
            return WRONG_RESULT;
        sum += (int64_t)(intptr_t)res;
    }
    b->seconds = now_s() - t0;
    b->ops = n;
    if (sum != (int64_t)n * (n - 1) / 2) {
        fprintf(stderr, "wrong result: sum %" PRId64 "\n", sum);
        return WRONG_RESULT;
    }
    return rc;
}

static int wl_spawn(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e6, b->scale);
    /* The handle and outcome arrays are the caller's, allocated (and
     * touched) before the clock starts. */
    cosync_task *t = calloc((size_t)n + 1, sizeof *t);
    cosync_outcome *out = calloc((size_t)n + 1, sizeof *out);
    if (!t || !out) {
        free(t);
        free(out);
        return COSYNC_ENOMEM;
    }
    int rc = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        rc = cosync_task_spawn(&t[i], trivial, (void *)(intptr_t)i, NULL);
        if (rc < 0) {
            fprintf(stderr, "cosync_task_spawn #%ld: %s\n", i, cosync_err_name(rc));
            /* collect what was spawned, then fail */
            cosync_gather(t, (size_t)i, out, COSYNC_FOREVER);
            goto done;
        }
    }
    rc = cosync_gather(t, (size_t)n, out, COSYNC_FOREVER);
    b->seconds = now_s() - t0;
    b->ops = n;
    if (rc < 0) {
        fprintf(stderr, "cosync_gather: %s\n", cosync_err_name(rc));
        goto done;
    }
    if ((rc = check_outcomes(out, n)) < 0)
        goto done;
    int64_t sum = 0;
    for (long i = 0; i < n; i++)
        sum += (int64_t)(intptr_t)out[i].result;
    int64_t want = (int64_t)n * (n - 1) / 2;
    if (sum != want) {
        fprintf(stderr, "wrong result: sum %" PRId64 ", want %" PRId64 "\n", sum, want);
        rc = WRONG_RESULT;
    }
done:
    free(t);
    free(out);
    return rc;
}

/* ------------------------------------------------------------------------
 * sleepers: n tasks each cosync_sleep(d), d spread evenly over 0..100 ms,
 * gathered; the elapsed time is reported (the time over the ideal 100 ms
 * is the overhead), ops = tasks.
 * ---------------------------------------------------------------------- */

static int sleeper(void *arg, void **result)
{
    (void)result;
    return cosync_sleep((int64_t)(intptr_t)arg);
}

static int wl_sleepers(void *arg, void **result)
{
    (void)result;
    bench *b = arg;
    long n = scaled(1e5, b->scale);
    cosync_task *t = calloc((size_t)n + 1, sizeof *t);
    cosync_outcome *out = calloc((size_t)n + 1, sizeof *out);
    if (!t || !out) {
        free(t);
        free(out);
        return COSYNC_ENOMEM;
    }
    int rc = 0;
    double t0 = now_s();
    for (long i = 0; i < n; i++) {
        int64_t d = COSYNC_MS(100) * i / n;
        rc = cosync_task_spawn(&t[i], sleeper, (void *)(intptr_t)d, NULL);
        if (rc < 0) {
            fprintf(stderr, "cosync_task_spawn #%ld: %s\n", i, cosync_err_name(rc));
            cosync_gather(t, (size_t)i, out, COSYNC_FOREVER);
            goto done;
        }
    }
    rc = cosync_gather(t, (size_t)n, out, COSYNC_FOREVER);
    b->seconds = now_s() - t0;
    b->ops = n;
    if (rc < 0) {
        fprintf(stderr, "cosync_gather: %s\n", cosync_err_name(rc));
        goto done;
    }
    if ((rc = check_outcomes(out, n)) < 0)
        goto done;
    /* Nobody wakes before its deadline: the last sleeps ~100 ms (less the
     * age of the loop's cached clock when it armed its timer: allow 1 ms). */
    if (n > 1 && b->seconds < 0.1 * (double)(n - 1) / (double)n - 0.001) {
        fprintf(stderr, "wrong result: %ld sleepers done in %.6f s (< 100 ms)\n", n,
                b->seconds);
        rc = WRONG_RESULT;
    }
done:
    free(t);
    free(out);
    return rc;
}

/* ------------------------------------------------------------------------
 * The table: add a line per new workload, in WORKLOADS.md's order.
 * ---------------------------------------------------------------------- */

static const struct workload {
    const char *name;
    cosync_task_fn fn;
} workloads[] = {
    {"switch", wl_switch},
    {"yield", wl_yield},
    /* lock_uncontended, lock_contended, sem_limit, queue_spsc, queue_mpmc,
     * event_fanout, condition_pc, barrier: not yet implemented */
    {"spawn", wl_spawn},
    {"spawn_join", wl_spawn_join},
    {"sleepers", wl_sleepers},
    /* timeout_ok, rwlock: not yet implemented */
};

#define NWORKLOADS (sizeof workloads / sizeof workloads[0])

static int run_workload(const struct workload *w, double scale)
{
    bench b = {.scale = scale, .name = w->name};
    int rc = cosync_run(w->fn, &b);
    if (rc != 0) {
        if (rc != WRONG_RESULT)
            fprintf(stderr, "%s: failed: %s\n", w->name, cosync_err_name(rc));
        return 1;
    }
    if (b.ops <= 0) {
        fprintf(stderr, "%s: no work at scale %g\n", w->name, scale);
        return 1;
    }
    printf("%s %ld %.6f %.1f\n", w->name, b.ops, b.seconds, b.seconds * 1e9 / (double)b.ops);
    fflush(stdout);
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: workloads NAME|all [SCALE]\n       workloads --list\nnames:");
    for (size_t i = 0; i < NWORKLOADS; i++)
        fprintf(stderr, " %s", workloads[i].name);
    fputc('\n', stderr);
}

int main(int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[1], "--list") == 0) {
        for (size_t i = 0; i < NWORKLOADS; i++)
            printf("%s\n", workloads[i].name);
        return 0;
    }
    if (argc < 2 || argc > 3) {
        usage();
        return 2;
    }
    double scale = 1.0;
    if (argc == 3) {
        char *end;
        scale = strtod(argv[2], &end);
        if (end == argv[2] || *end != '\0' || !(scale > 0)) {
            fprintf(stderr, "bad scale '%s'\n", argv[2]);
            usage();
            return 2;
        }
    }
    bool all = strcmp(argv[1], "all") == 0;
    bool ran = false;
    for (size_t i = 0; i < NWORKLOADS; i++) {
        if (all || strcmp(argv[1], workloads[i].name) == 0) {
            ran = true;
            if (run_workload(&workloads[i], scale) != 0)
                return 1;
        }
    }
    if (!ran) {
        fprintf(stderr, "unknown workload '%s'\n", argv[1]);
        usage();
        return 2;
    }
    return 0;
}
