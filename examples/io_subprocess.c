/*
 * io_subprocess.c - child processes, as the asyncio documentation's
 * subprocess examples use them: two shell commands run at once, their
 * output collected with communicate; input fed to `sort`; and the lines
 * of a child read as it writes them.
 *
 *     async def run(cmd):
 *         proc = await asyncio.create_subprocess_shell(
 *             cmd, stdout=PIPE, stderr=PIPE)
 *         stdout, stderr = await proc.communicate()
 *         print(f"[{cmd!r} exited with {proc.returncode}]")
 *         if stdout: print(f"[stdout]\n{stdout.decode()}")
 *         if stderr: print(f"[stderr]\n{stderr.decode()}")
 *
 *     await asyncio.gather(run("echo oops >&2; exit 2"),
 *                          run("sleep 0.05; echo hello"))
 *
 *     proc = await asyncio.create_subprocess_exec("sort", stdin=PIPE, stdout=PIPE)
 *     out, _ = await proc.communicate(b"pear\napple\nfig\n")
 *
 *     proc = await asyncio.create_subprocess_exec(
 *         "sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.01; done",
 *         stdout=PIPE)
 *     while line := await proc.stdout.readline():
 *         print(line.decode(), end="")
 *     await proc.wait()
 *
 * Exits 1 unless every child's output and exit status are the expected
 * ones.
 */
#include <cosync.h>

#include <stdio.h>
#include <string.h>

static int failures;

#define EXPECT(cond)                                                                               \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "io_subprocess: %s:%d: not as expected: %s\n", __FILE__, __LINE__,     \
                    #cond);                                                                        \
            failures++;                                                                            \
        }                                                                                          \
    } while (0)

typedef struct command {
    const char *cmd;
    char out[256], err[256];
    size_t out_len, err_len;
    int code;
} command;

/* run(cmd): create_subprocess_shell, communicate, print */
static int run(void *arg, void **result)
{
    (void)result;
    command *c = arg;
    char *argv[] = {"sh", "-c", (char *)c->cmd, NULL};
    cosync_process p;
    int rc = cosync_process_spawn(&p, "sh", argv,
                                  &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE,
                                                         .stderr_mode = COSYNC_PROCESS_PIPE});
    if (rc != 0)
        return rc;
    cosync_process_output out = {c->out, sizeof c->out - 1, 0};
    cosync_process_output err = {c->err, sizeof c->err - 1, 0};
    rc = cosync_process_communicate(&p, NULL, 0, &out, &err, &c->code, COSYNC_FOREVER);
    cosync_process_destroy(&p);
    if (rc != 0)
        return rc;
    c->out_len = out.len;
    c->err_len = err.len;
    c->out[out.len < out.cap ? out.len : out.cap] = '\0';
    c->err[err.len < err.cap ? err.len : err.cap] = '\0';
    printf("['%s' exited with %d]\n", c->cmd, c->code);
    if (out.len)
        printf("[stdout]\n%s", c->out);
    if (err.len)
        printf("[stderr]\n%s", c->err);
    return 0;
}

static int two_at_once(void)
{
    static command cmds[2] = {{.cmd = "echo oops >&2; exit 2"}, {.cmd = "sleep 0.05; echo hello"}};
    cosync_task t[2];
    for (int i = 0; i < 2; i++) {
        int rc = cosync_task_spawn(&t[i], run, &cmds[i], NULL);
        if (rc != 0)
            return rc;
    }
    cosync_outcome outcomes[2];
    int rc = cosync_gather(t, 2, outcomes, COSYNC_FOREVER);
    if (rc != 0)
        return rc;
    EXPECT(outcomes[0].status == 0 && outcomes[1].status == 0);
    EXPECT(cmds[0].code == 2 && strcmp(cmds[0].err, "oops\n") == 0 && cmds[0].out_len == 0);
    EXPECT(cmds[1].code == 0 && strcmp(cmds[1].out, "hello\n") == 0 && cmds[1].err_len == 0);
    return 0;
}

static int sort_input(void)
{
    char *argv[] = {"sort", NULL};
    cosync_process p;
    int rc = cosync_process_spawn(&p, "sort", argv,
                                  &(cosync_process_opts){.stdin_mode = COSYNC_PROCESS_PIPE,
                                                         .stdout_mode = COSYNC_PROCESS_PIPE});
    if (rc != 0)
        return rc;
    static const char input[] = "pear\napple\nfig\n";
    char buf[64];
    cosync_process_output out = {buf, sizeof buf - 1, 0};
    int code = -1;
    rc = cosync_process_communicate(&p, input, strlen(input), &out, NULL, &code, COSYNC_FOREVER);
    cosync_process_destroy(&p);
    if (rc != 0)
        return rc;
    buf[out.len < out.cap ? out.len : out.cap] = '\0';
    printf("[sort]\n%s", buf);
    EXPECT(code == 0 && strcmp(buf, "apple\nfig\npear\n") == 0);
    return 0;
}

static int read_lines(void)
{
    char *argv[] = {"sh", "-c", "for i in 1 2 3; do echo tick $i; sleep 0.01; done", NULL};
    cosync_process p;
    int rc = cosync_process_spawn(&p, "sh", argv,
                                  &(cosync_process_opts){.stdout_mode = COSYNC_PROCESS_PIPE});
    if (rc != 0)
        return rc;
    cosync_stream s;
    if ((rc = cosync_stream_init(&s, &p.out, 1024)) != 0) {
        cosync_process_destroy(&p);
        return rc;
    }
    int lines = 0;
    char line[64];
    ssize_t n;
    while ((n = cosync_stream_readline(&s, line, sizeof line - 1, COSYNC_FOREVER)) > 0) {
        line[n] = '\0';
        printf("%s", line);
        char want[32];
        snprintf(want, sizeof want, "tick %d\n", ++lines);
        EXPECT(strcmp(line, want) == 0);
    }
    int code = -1;
    rc = n < 0 ? (int)n : cosync_process_wait(&p, &code, COSYNC_FOREVER);
    cosync_stream_destroy(&s);
    cosync_process_destroy(&p);
    EXPECT(lines == 3 && code == 0);
    return rc;
}

static int main_task(void *arg, void **result)
{
    (void)arg, (void)result;
    int rc = two_at_once();
    if (rc == 0)
        rc = sort_input();
    if (rc == 0)
        rc = read_lines();
    return rc;
}

int main(void)
{
    int rc = cosync_run(main_task, NULL);
    if (rc != 0) {
        fprintf(stderr, "io_subprocess: %s\n", cosync_strerror(rc));
        return 1;
    }
    return failures ? 1 : 0;
}
