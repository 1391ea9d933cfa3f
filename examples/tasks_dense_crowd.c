/*
 * tasks_dense_crowd.c - a crowd of blocked tasks, plain and dense.
 *
 *     async def session(i, ready, totals):
 *         await ready.wait()
 *         totals[i % 10] += i
 *
 *     ready = asyncio.Event()
 *     tasks = [asyncio.create_task(session(i, ready, totals)) for i in range(N)]
 *     await asyncio.sleep(0)            # every session is now waiting
 *     ready.set()
 *     await asyncio.gather(*tasks)
 *
 * The same crowd twice: plain tasks (a stack each: a page of it resident
 * while blocked) and dense tasks (cosync_task_opts.dense: a few shared
 * stacks, each blocked task keeping only the bytes it uses). Prints the
 * resident memory each blocked task costs in both. Exits 1 unless every
 * session woke and the totals are right (the memory is reported, not
 * checked: it depends on the build).
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define N 20000

typedef struct crowd {
    cosync_event ready;
    int64_t totals[10];
    cosync_task tasks[N];
} crowd;

typedef struct session_arg {
    crowd *c;
    int i;
} session_arg;

/* Nothing here points into a session's stack while it waits: its
 * argument and the objects it uses are on the heap (the rule of dense
 * tasks). */
static int session(void *arg, void **result)
{
    (void)result;
    session_arg *s = arg;
    int rc = cosync_event_wait(&s->c->ready, COSYNC_FOREVER);
    if (rc)
        return rc;
    s->c->totals[s->i % 10] += s->i;
    return 0;
}

static long resident_bytes(void)
{
    long pages = -1, resident = -1;
    FILE *f = fopen("/proc/self/statm", "r");
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

static int ok = 1;

static int run_crowd(void *arg, void **result)
{
    (void)result;
    bool dense = arg != NULL;
    crowd *c = calloc(1, sizeof *c);
    session_arg *args = calloc(N, sizeof *args);
    if (!c || !args) {
        free(c);
        free(args);
        return COSYNC_ENOMEM;
    }
    cosync_event_init(&c->ready);
    cosync_task_opts opts = {.dense = dense};
    long before = resident_bytes();
    for (int i = 0; i < N; i++) {
        args[i] = (session_arg){c, i};
        int rc = cosync_task_spawn(&c->tasks[i], session, &args[i], &opts);
        if (rc) {
            fprintf(stderr, "spawn: %s\n", cosync_err_name(rc));
            return rc; /* the loop's end cancels the ones spawned */
        }
    }
    cosync_yield(); /* every session is now waiting */
    long blocked = resident_bytes();
    cosync_event_set(&c->ready);
    int rc = cosync_gather(c->tasks, N, NULL, COSYNC_FOREVER);
    for (int d = 0; d < 10; d++) {
        int64_t want = 0;
        for (int i = d; i < N; i += 10)
            want += i;
        if (c->totals[d] != want)
            ok = 0;
    }
    if (rc)
        ok = 0;
    if (before >= 0 && blocked >= 0)
        printf("%5d %s tasks blocked: %6.0f bytes resident each\n", N, dense ? "dense" : "plain",
               (double)(blocked - before) / N);
    free(args);
    free(c);
    return 0;
}

int main(void)
{
    if (cosync_run(run_crowd, NULL) != 0 || cosync_run(run_crowd, (void *)1) != 0)
        ok = 0;
    puts(ok ? "every session woke, totals right" : "WRONG");
    return ok ? 0 : 1;
}
