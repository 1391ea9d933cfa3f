/*
 * copied_stacks.c - what the memory-dense mode that docs/stacks.md plans
 * would cost and save, measured with the library's own context switch
 * before the mode is built.
 *
 * usage: copied_stacks N ROUNDS
 *
 * N contexts each block at once; main then resumes them in turn, ROUNDS
 * times over, and each one blocks again as soon as it runs (a crowd of
 * tasks taking turns, as in sem_limit and event_fanout). Two ways:
 *
 *   own_stacks     each context has a 64 KiB stack of its own, as cosync's
 *                  tasks have now (every stack touched before the clock
 *                  starts: no page faults are timed);
 *   copied_stacks  all run on one shared stack; the bytes a blocked
 *                  context uses are kept in a dense array and copied back
 *                  to the same addresses before it runs, and out again
 *                  after.
 *
 * Both go through main (two switches a turn), keep each context's own FP
 * modes, and fetch the next contexts' bytes 8 turns ahead. Prints
 *
 *     own_stacks <turns> <seconds> <ns_per_turn>
 *     copied_stacks <turns> <seconds> <ns_per_turn>
 *
 * and on stderr the most bytes a blocked context used. Exits 1 if a turn
 * is missing, 2 on a bad command line, 77 where the switch keeps no stack
 * pointer to copy from (the ucontext backend) or under AddressSanitizer.
 */
#if !defined(_GNU_SOURCE)
#define _GNU_SOURCE /* MAP_ANONYMOUS, MAP_NORESERVE */
#endif

#include "context/ctx.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COPIED_UNDER_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define COPIED_UNDER_ASAN 1
#endif

#if defined(COSYNC_CTX_UCONTEXT) || defined(COPIED_UNDER_ASAN)
int main(void)
{
    /* ASan's shadow of the shared stack describes whichever context ran
     * there last, and its memcpy checks it: copies of stack bytes would
     * be reported (the planned mode copies with an uninstrumented loop) */
    fprintf(stderr, "copied_stacks: needs the assembly switch and no AddressSanitizer\n");
    return 77;
}
#else

#define STACK_SIZE ((size_t)64 << 10)
#define SLOT 384 /* room for one context's bytes in the dense array */
#define AHEAD 8  /* turns fetched ahead */

static cosync__ctx main_ctx;
static cosync__ctx *ctxs;
static long turns;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

/* A context's body: a small frame of its own, then block, for ever. */
static void body(void *arg)
{
    long me = (long)arg;
    volatile long frame[4] = {me};
    for (;;) {
        turns += 1 + frame[0] * 0;
        cosync__ctx_switch_inline(&ctxs[me], &main_ctx, true);
    }
}

static long next_of(long i, long n)
{
    return i + AHEAD < n ? i + AHEAD : i + AHEAD - n;
}

static double own_stacks(long n, long rounds)
{
    size_t bytes = (size_t)n * STACK_SIZE; /* only the top page of each is touched */
    char *stacks = mmap(NULL, bytes, PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (stacks == MAP_FAILED)
        return -1;
    for (long i = 0; i < n; i++) /* offset by cache lines, as the pool does */
        cosync__ctx_start(&main_ctx, &ctxs[i],
                          stacks + (size_t)(i + 1) * STACK_SIZE - (size_t)(i % 32) * 64, STACK_SIZE,
                          body, (void *)i);
    double t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < n; i++) {
            const char *f = cosync__ctx_frame(&ctxs[next_of(i, n)]);
            __builtin_prefetch(f);
            __builtin_prefetch(f + 64);
            __builtin_prefetch(f + 128);
            cosync__ctx_switch_inline(&main_ctx, &ctxs[i], true);
        }
    double seconds = now_s() - t0;
    munmap(stacks, bytes); /* the contexts are never resumed */
    return seconds;
}

static double copied_stacks(long n, long rounds, size_t *most)
{
    char *shared = aligned_alloc(64, STACK_SIZE);
    char *slots = aligned_alloc(64, (size_t)n * SLOT);
    uint16_t *used = calloc((size_t)n, sizeof *used);
    double seconds = -1;
    if (!shared || !slots || !used)
        goto out;
    char *top = shared + STACK_SIZE;
    *most = 0;
    for (long i = 0; i < n; i++) {
        cosync__ctx_start(&main_ctx, &ctxs[i], top, STACK_SIZE, body, (void *)i);
        size_t u = (size_t)(top - (char *)ctxs[i].sp);
        if (u > SLOT) {
            fprintf(stderr, "copied_stacks: a context uses %zu bytes, over %d\n", u, SLOT);
            goto out;
        }
        *most = u > *most ? u : *most;
        used[i] = (uint16_t)u;
        memcpy(slots + (size_t)i * SLOT, ctxs[i].sp, u);
    }
    double t0 = now_s();
    for (long r = 0; r < rounds; r++)
        for (long i = 0; i < n; i++) {
            const char *f = slots + (size_t)next_of(i, n) * SLOT;
            for (int k = 0; k < SLOT; k += 64)
                __builtin_prefetch(f + k, 1);
            char *slot = slots + (size_t)i * SLOT;
            memcpy(ctxs[i].sp, slot, used[i]);
            cosync__ctx_switch_inline(&main_ctx, &ctxs[i], true);
            used[i] = (uint16_t)(top - (char *)ctxs[i].sp);
            memcpy(slot, ctxs[i].sp, used[i]);
        }
    seconds = now_s() - t0;
out:
    free(shared);
    free(slots);
    free(used);
    return seconds;
}

static int report(const char *name, long n, long rounds, double seconds)
{
    long want = n * rounds + n; /* and each context's first run, untimed */
    if (seconds < 0) {
        fprintf(stderr, "%s: out of memory\n", name);
        return 1;
    }
    if (turns != want) {
        fprintf(stderr, "%s: %ld turns, want %ld\n", name, turns, want);
        return 1;
    }
    printf("%s %ld %.6f %.1f\n", name, n * rounds, seconds, seconds * 1e9 / (double)(n * rounds));
    return 0;
}

int main(int argc, char **argv)
{
    char *end1 = NULL, *end2 = NULL;
    long n = argc == 3 ? strtol(argv[1], &end1, 10) : 0;
    long rounds = argc == 3 ? strtol(argv[2], &end2, 10) : 0;
    if (argc != 3 || *end1 || *end2 || n <= 0 || rounds <= 0 || n > 10000000) {
        fprintf(stderr, "usage: copied_stacks N ROUNDS   (N contexts taking ROUNDS turns each)\n");
        return 2;
    }
    ctxs = calloc((size_t)n, sizeof *ctxs);
    if (!ctxs)
        return 1;
    turns = 0;
    int rc = report("own_stacks", n, rounds, own_stacks(n, rounds));
    size_t most = 0;
    turns = 0;
    rc |= report("copied_stacks", n, rounds, copied_stacks(n, rounds, &most));
    fprintf(stderr, "copied_stacks: a blocked context used at most %zu bytes of stack\n", most);
    free(ctxs);
    return rc;
}
#endif
