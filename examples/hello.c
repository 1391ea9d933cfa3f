/*
 * hello.c - the README's example: a main task spawns two workers that
 * sleep and return values, joins them and prints the results.
 *
 *     cc -std=c11 hello.c $(pkg-config --cflags --libs cosync) -o hello
 */
#include <cosync.h>

#include <stdint.h>
#include <stdio.h>

/* Sleep arg * 10 ms, then return arg * 100 as the task's result value. */
static int worker(void *arg, void **result)
{
    intptr_t n = (intptr_t)arg;
    int rc = cosync_sleep(COSYNC_MS(10 * n));
    if (rc != 0)
        return rc; /* cancelled: end as cancelled */
    *result = (void *)(n * 100);
    return 0;
}

static int main_task(void *arg, void **result)
{
    cosync_task a, b;
    void *ra = NULL, *rb = NULL;
    int sa = 0, sb = 0;
    (void)arg;
    (void)result;

    cosync_task_spawn(&a, worker, (void *)1, NULL);
    cosync_task_spawn(&b, worker, (void *)2, NULL);
    cosync_task_join(a, &sa, &ra, COSYNC_FOREVER);
    cosync_task_join(b, &sb, &rb, COSYNC_FOREVER);
    printf("a: %s %ld, b: %s %ld\n", cosync_err_name(sa), (long)(intptr_t)ra, cosync_err_name(sb),
           (long)(intptr_t)rb);
    /* as every example, it checks what it got: main's status is the run's */
    if (sa != 0 || sb != 0 || (intptr_t)ra != 100 || (intptr_t)rb != 200)
        return COSYNC_EINVAL;
    return 0;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0)
        fprintf(stderr, "hello: %s\n", cosync_strerror(rc));
    return rc == 0 ? 0 : 1;
}
