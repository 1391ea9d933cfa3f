/*
 * test_backtrace.c - a debugger's backtrace of a task ends cleanly: at the
 * frame the assembly switch puts under every task's first one
 * (cosync__ctx_task_root, whose caller is undefined), not at a null return
 * address that gdb shows as "0x0000000000000000 in ?? ()" and then tries
 * to read.
 *
 * The program runs gdb on itself: the child, started with "task", stops in
 * a function called from a task started by the loop (the main task) and
 * in one started by another task (through the first-resume trampoline).
 * Skipped (77) without gdb, and with the ucontext backend, whose tasks
 * start in libc's makecontext.
 */
/* ctest-timeout: 60 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static volatile int sink;

void __attribute__((noinline)) stop_here(int n);
void __attribute__((noinline)) stop_here(int n)
{
    sink = n;
}

static int child_body(void *arg, void **result)
{
    (void)arg, (void)result;
    stop_here(2);
    return 0;
}

static int child_main(void *arg, void **result)
{
    (void)arg, (void)result;
    stop_here(1);
    cosync_task t;
    CHECK_OK(cosync_task_spawn(&t, child_body, NULL, NULL));
    join_ok(t);
    return 0;
}

/* Run gdb on this program's child mode; return its output (malloc'd). */
static HARNESS_UNUSED char *gdb_output(const char *self)
{
    char cmd[4096];
    int n = snprintf(cmd, sizeof cmd,
                     "gdb -nx -batch -ex 'set debuginfod enabled off' -ex 'break stop_here' "
                     "-ex run -ex bt -ex continue -ex bt --args '%s' task 2>&1",
                     self);
    CHECK(n > 0 && (size_t)n < sizeof cmd);
    FILE *p = popen(cmd, "r");
    CHECK(p != NULL);
    size_t cap = 1 << 16, len = 0;
    char *out = malloc(cap);
    CHECK(out != NULL);
    size_t got;
    while ((got = fread(out + len, 1, cap - 1 - len, p)) > 0)
        len += got;
    out[len] = '\0';
    pclose(p);
    return out;
}

static HARNESS_UNUSED int count(const char *text, const char *what)
{
    int n = 0;
    for (const char *s = text; (s = strstr(s, what)); s += strlen(what))
        n++;
    return n;
}

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "task") == 0)
        return run_main(child_main, NULL) == 0 ? 0 : 1;
#if !defined(COSYNC_CTX_ASM)
    puts("skipped: the ucontext backend starts tasks in makecontext");
    return 77;
#else
    if (system("gdb --version >/dev/null 2>&1") != 0) {
        puts("skipped: no gdb");
        return 77;
    }
    char *out = gdb_output(argv[0]);
    int stops = count(out, "stop_here (n=");
    if (stops == 0) { /* ptrace refused (a container, Yama), or the like */
        printf("skipped: gdb could not run the program here:\n%s", out);
        free(out);
        return 77;
    }
    /* both stops were reached, and both backtraces end at the root */
    /* (gdb may print the name Ada's way, "cosync.ctx_task_root") */
    int roots = count(out, "ctx_task_root ()");
    int nulls = count(out, "0x0000000000000000 in ?? ()");
    if (stops < 2 || roots != 2 || nulls != 0) {
        printf("gdb said:\n%s\n", out);
        CHECK_EQ(stops >= 2, true);
        CHECK_EQ(roots, 2);
        CHECK_EQ(nulls, 0);
    }
    printf("[  OK ] two task backtraces end at cosync__ctx_task_root\n");
    free(out);
    return 0;
#endif
}
