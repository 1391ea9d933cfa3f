/*
 * memory.c - the resident memory of blocked tasks.
 *
 * usage: memory [--dense] N
 *
 * Spawns N tasks (dense tasks with --dense: cosync_task_opts.dense) that
 * each block on one cosync_event, measures the resident
 * set before spawning and once all N are blocked, then sets the event and
 * gathers them all. Prints
 *
 *     blocked_tasks <N> <seconds_to_spawn_and_block> <bytes_per_task>
 *
 * where bytes_per_task = (rss_blocked - rss_before) / N (resident pages from
 * /proc/self/statm times the page size), and a human line with VmHWM on
 * stderr. Exits 1 if a call fails or a task is missing. The peers' versions
 * are peers/memory.py (asyncio) and peers/memory.go (goroutines).
 *
 * The array of N handles is the caller's: it is allocated and touched
 * before the first measurement (the peers do the same with their lists).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* clock_gettime */
#endif

#include <cosync.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

typedef struct mem {
    long n;
    const cosync_task_opts *opts; /* --dense: dense tasks */
    cosync_event ev;
    long blocked;            /* tasks that reached the wait */
    long blocked_at_reading; /* of them, when the memory was read: all */
    long woken;              /* tasks that came back from it */
    cosync_task *tasks;
    cosync_outcome *out;
    /* results */
    double seconds;
    long rss_before, rss_blocked; /* bytes */
    long hwm_blocked;             /* bytes */
    cosync_loop_stats stats;
} mem;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* Resident bytes: the second field of /proc/self/statm, in pages. */
static long rss_bytes(void)
{
    long size = 0, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &size, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

/* The peak resident set: VmHWM of /proc/self/status, in bytes. */
static long hwm_bytes(void)
{
    char line[256];
    long kib = -1;
    FILE *f = fopen("/proc/self/status", "r");
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib < 0 ? -1 : kib * 1024;
}

static int waiter(void *arg, void **result)
{
    (void)result;
    mem *m = arg;
    m->blocked++;
    int rc = cosync_event_wait(&m->ev, COSYNC_FOREVER);
    if (rc == 0)
        m->woken++;
    return rc;
}

static int run(void *arg, void **result)
{
    (void)result;
    mem *m = arg;
    cosync_event_init(&m->ev);

    m->rss_before = rss_bytes();
    double t0 = now_s();
    long spawned = 0;
    int rc = 0;
    for (; spawned < m->n; spawned++) {
        rc = cosync_task_spawn(&m->tasks[spawned], waiter, m, m->opts);
        if (rc < 0)
            break;
    }
    /* The spawned tasks are ready; yielding lets each run once, up to its
     * wait, before this task comes back. */
    int yrc = cosync_yield();
    m->seconds = now_s() - t0;
    m->rss_blocked = rss_bytes();
    m->hwm_blocked = hwm_bytes();
    m->blocked_at_reading = m->blocked;
    cosync_loop_get_stats(cosync_loop_current(), &m->stats);

    if (rc < 0) /* reported by main(), once the spawned ones are collected */
        fprintf(stderr, "cosync_task_spawn #%ld: %s\n", spawned, cosync_err_name(rc));
    if (yrc < 0) {
        fprintf(stderr, "cosync_yield: %s\n", cosync_err_name(yrc));
        rc = yrc;
    }

    cosync_event_set(&m->ev);
    int grc = cosync_gather(m->tasks, (size_t)spawned, m->out, COSYNC_FOREVER);
    if (grc < 0) {
        fprintf(stderr, "cosync_gather: %s\n", cosync_err_name(grc));
        return grc;
    }
    for (long i = 0; i < spawned; i++)
        if (m->out[i].status != 0) {
            fprintf(stderr, "task %ld ended with %s\n", i, cosync_err_name(m->out[i].status));
            return m->out[i].status < 0 ? m->out[i].status : COSYNC_EINVAL;
        }
    return rc;
}

int main(int argc, char **argv)
{
    static const cosync_task_opts dense = {.dense = true};
    bool is_dense = argc == 3 && strcmp(argv[1], "--dense") == 0;
    if (is_dense) {
        argv++;
        argc--;
    }
    char *end = NULL;
    long n = argc == 2 ? strtol(argv[1], &end, 10) : 0;
    if (argc != 2 || *end != '\0' || n <= 0) {
        fprintf(stderr, "usage: memory [--dense] N   (N tasks blocked on one event)\n");
        return 2;
    }
    mem m;
    memset(&m, 0, sizeof m);
    m.n = n;
    m.opts = is_dense ? &dense : NULL;
    m.tasks = calloc((size_t)n, sizeof *m.tasks);
    m.out = calloc((size_t)n, sizeof *m.out);
    if (!m.tasks || !m.out) {
        fprintf(stderr, "memory: out of memory for %ld handles\n", n);
        return 1;
    }
    /* touch the arrays, so that they are resident before the baseline */
    memset(m.tasks, 0, (size_t)n * sizeof *m.tasks);
    memset(m.out, 0xff, (size_t)n * sizeof *m.out);

    int rc = cosync_run(run, &m);
    if (rc != 0) {
        fprintf(stderr, "memory: failed: %s\n", cosync_err_name(rc));
        return 1;
    }
    if (m.blocked != n || m.woken != n || m.blocked_at_reading != n) {
        fprintf(
            stderr,
            "memory: wrong result: %ld blocked (%ld when memory was read), %ld woken, want %ld\n",
            m.blocked, m.blocked_at_reading, m.woken, n);
        return 1;
    }
    if (m.rss_before < 0 || m.rss_blocked < 0) {
        fprintf(stderr, "memory: cannot read /proc/self/statm\n");
        return 1;
    }
    double per_task = (double)(m.rss_blocked - m.rss_before) / (double)n;
    printf("blocked_tasks %ld %.6f %.1f\n", n, m.seconds, per_task);
    fflush(stdout);
    fprintf(stderr,
            "cosync%s: %ld blocked tasks: rss %.1f MiB -> %.1f MiB (VmHWM %.1f MiB), "
            "%.0f bytes (%.2f KiB) per task; spawn+block %.3f s; "
            "stacks mapped %zu, in use %zu, guarded %zu\n",
            is_dense ? " (dense)" : "", n, m.rss_before / 1048576.0, m.rss_blocked / 1048576.0,
            m.hwm_blocked / 1048576.0, per_task, per_task / 1024.0, m.seconds,
            m.stats.stacks_mapped, m.stats.stacks_in_use, m.stats.stacks_guarded);
    free(m.tasks);
    free(m.out);
    return 0;
}
