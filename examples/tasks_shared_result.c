/*
 * tasks_shared_result.c - several tasks awaiting one task: a "single
 * flight" load that every request handler shares, as asyncio writes it.
 *
 *     config = None                          # the task loading it, once
 *
 *     async def load_config():
 *         global loads
 *         loads += 1
 *         await asyncio.sleep(0.04)
 *         return "config v7"
 *
 *     async def handler(name, patience):
 *         global config
 *         if config is None:
 *             config = asyncio.create_task(load_config())
 *         try:
 *             cfg = await asyncio.wait_for(asyncio.shield(config), patience)
 *             print(f"{name}: got {cfg}")
 *         except TimeoutError:
 *             print(f"{name}: gave up; the load goes on")
 *
 *     HANDLERS = [("a", 10), ("b", 10), ("impatient", 0.005), ("c", 10)]
 *
 *     async def main():
 *         await asyncio.gather(*(handler(n, p) for n, p in HANDLERS))
 *         await handler("late", 10)          # the load has finished
 *         print("loaded:", await config)     # collected last
 *
 * The handlers wait with cosync_task_wait, which any number of tasks may
 * call on one task without collecting it; main collects the load with
 * cosync_task_join once nobody else will wait for it (a wait begun after
 * that would find a stale handle). A wait that gives up leaves the load
 * running, as shield() does. The patient handlers' 10 s would matter only
 * on a machine that stalled that long (real clock: the load's 40 ms and
 * the impatient 5 ms are ordered by their timers whatever the machine's
 * speed). Exits 1 unless the load ran once, the patient
 * handlers got its result in the order they began to wait, and the
 * impatient one gave up.
 */
#include <cosync.h>

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

static cosync_task config;
static bool config_started;
static int loads;

/* the order the handlers got the result in, and who gave up */
static char got[64];
static int gave_up;

static int load_config(void *arg, void **result)
{
    (void)arg;
    loads++;
    int rc = cosync_sleep(COSYNC_MS(40));
    if (rc != 0)
        return rc;
    *result = "config v7";
    return 0;
}

typedef struct handler_arg {
    const char *name;
    int patience_ms;
} handler_arg;

static int handler(void *arg, void **result)
{
    (void)result;
    const handler_arg *h = arg;
    if (!config_started) {
        int rc = cosync_task_spawn(&config, load_config, NULL, &(cosync_task_opts){.name = "load"});
        if (rc != 0)
            return rc;
        config_started = true;
    }
    int status;
    void *cfg;
    int rc =
        cosync_task_wait(config, &status, &cfg, cosync_deadline_after(COSYNC_MS(h->patience_ms)));
    if (rc == COSYNC_ETIMEDOUT) {
        printf("%s: gave up; the load goes on\n", h->name);
        gave_up++;
        return 0;
    }
    if (rc != 0)
        return rc;
    if (status != 0)
        return status; /* the load failed: its error is this handler's too */
    printf("%s: got %s\n", h->name, (const char *)cfg);
    strncat(got, h->name, sizeof got - strlen(got) - 1);
    return 0;
}

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    static const handler_arg handlers[4] = {
        {"a", 10000}, {"b", 10000}, {"impatient", 5}, {"c", 10000}};
    cosync_task t[4];
    for (int i = 0; i < 4; i++) {
        int rc = cosync_task_spawn(&t[i], handler, (void *)&handlers[i], NULL);
        if (rc != 0)
            return rc;
    }
    cosync_outcome out[4];
    int rc = cosync_gather(t, 4, out, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    for (int i = 0; i < 4; i++)
        if (out[i].status != 0)
            return out[i].status;
    static const handler_arg late = {"late", 10000};
    rc = handler((void *)&late, NULL); /* finished, not collected: no suspension */
    if (rc != 0)
        return rc;
    void *cfg;
    int status;
    rc = cosync_task_join(config, &status, &cfg, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    printf("loaded: %s (%d load)\n", (const char *)cfg, loads);
    return status;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "tasks_shared_result: %s\n", cosync_strerror(rc));
        return 1;
    }
    bool ok = loads == 1 && strcmp(got, "abclate") == 0 && gave_up == 1;
    if (!ok)
        fprintf(stderr, "tasks_shared_result: loads %d, order '%s', gave up %d\n", loads, got,
                gave_up);
    return ok ? 0 : 1;
}
