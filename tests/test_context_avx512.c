/*
 * test_context_avx512.c - the inlined switch in a file built for AVX-512
 * (CMake adds -mavx512f where the compiler takes it): values the compiler
 * keeps in registers across the switch survive, while the other side
 * overwrites every register the ABI lets it, xmm16-31 and k0-7 included
 * (as glibc's AVX-512 string functions do).
 *
 * Skipped (77) where it cannot run: no assembly switch on x86-64, a
 * compiler without -mavx512f, a CPU without AVX-512, or a sanitizer (the
 * bare switch here is not announced to it; test_context covers those).
 */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "check.h"
#include "context/ctx.h"
#include "context/sanitize.h"

#define SKIP 77

#if defined(COSYNC__CTX_HAVE_INLINE) && defined(__AVX512F__) && !COSYNC__SANITIZE_FIBERS

static cosync__ctx main_ctx, other_ctx;
static volatile long other_runs; /* read across switches the compiler cannot see */

/* The other side: writes all of zmm16-31 and k0-7, and runs glibc's
 * string functions, then switches back (out of line: it saves what the
 * ABI says a callee saves, no more). */
static void other(void *arg)
{
    (void)arg;
    static char a[4096], b[4096];
    for (;;) {
        __asm__ volatile("vpternlogd $0xff, %%zmm16, %%zmm16, %%zmm16\n\t"
                         "vmovdqa64 %%zmm16, %%zmm17\n\tvmovdqa64 %%zmm16, %%zmm18\n\t"
                         "vmovdqa64 %%zmm16, %%zmm19\n\tvmovdqa64 %%zmm16, %%zmm20\n\t"
                         "vmovdqa64 %%zmm16, %%zmm21\n\tvmovdqa64 %%zmm16, %%zmm22\n\t"
                         "vmovdqa64 %%zmm16, %%zmm23\n\tvmovdqa64 %%zmm16, %%zmm24\n\t"
                         "vmovdqa64 %%zmm16, %%zmm25\n\tvmovdqa64 %%zmm16, %%zmm26\n\t"
                         "vmovdqa64 %%zmm16, %%zmm27\n\tvmovdqa64 %%zmm16, %%zmm28\n\t"
                         "vmovdqa64 %%zmm16, %%zmm29\n\tvmovdqa64 %%zmm16, %%zmm30\n\t"
                         "vmovdqa64 %%zmm16, %%zmm31\n\t"
                         "kxnorw %%k0, %%k0, %%k1\n\tkmovw %%k1, %%k0\n\tkmovw %%k1, %%k2\n\t"
                         "kmovw %%k1, %%k3\n\tkmovw %%k1, %%k4\n\tkmovw %%k1, %%k5\n\t"
                         "kmovw %%k1, %%k6\n\tkmovw %%k1, %%k7"
                         :
                         :
                         : "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23",
                           "xmm24", "xmm25", "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31",
                           "k0", "k1", "k2", "k3", "k4", "k5", "k6", "k7");
        memset(a, 'x', sizeof a - 1);
        memcpy(b, a, sizeof a);
        CHECK_EQ(strlen(b), sizeof a - 1);
        other_runs++;
        cosync__ctx_switch(&other_ctx, &main_ctx);
    }
}

/* Sixteen doubles live across each switch: more than xmm0-15 hold, so a
 * compiler that took xmm16-31 for kept would put some there. */
static __attribute__((noinline)) double keep_across(volatile const double *in, int rounds)
{
    double v0 = in[0], v1 = in[1], v2 = in[2], v3 = in[3], v4 = in[4], v5 = in[5], v6 = in[6],
           v7 = in[7], v8 = in[8], v9 = in[9], v10 = in[10], v11 = in[11], v12 = in[12],
           v13 = in[13], v14 = in[14], v15 = in[15];
    double sum = 0;
    for (int i = 0; i < rounds; i++) {
        cosync__ctx_switch_inline(&main_ctx, &other_ctx, true);
        sum += v0 + 2 * v1 + 3 * v2 + 4 * v3 + 5 * v4 + 6 * v5 + 7 * v6 + 8 * v7 + 9 * v8 +
               10 * v9 + 11 * v10 + 12 * v11 + 13 * v12 + 14 * v13 + 15 * v14 + 16 * v15;
    }
    return sum;
}

int main(void)
{
    if (!__builtin_cpu_supports("avx512f")) {
        printf("skipped: this CPU has no AVX-512\n");
        return SKIP;
    }
    size_t size = 1 << 16;
    char *stack =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(stack != MAP_FAILED);
    cosync__ctx_start(&main_ctx, &other_ctx, stack + size, size, other, NULL);
    CHECK_EQ(other_runs, 1);
    volatile double in[16];
    double per_round = 0;
    for (int i = 0; i < 16; i++) {
        in[i] = i + 1;
        per_round += (i + 1) * (i + 1.0);
    }
    double sum = keep_across(in, 3);
    CHECK_EQ(other_runs, 4);
    if (sum != 3 * per_round) /* exact: small integers */
        CHECK__FAIL("sum %g across the switches, want %g", sum, 3 * per_round);
    printf("[  OK ] values kept across the switch with AVX-512 (sum %g)\n", sum);
    munmap(stack, size);
    return 0;
}

#else

int main(void)
{
    printf("skipped: no inlined x86-64 switch built for AVX-512 here, or a sanitizer\n");
    return SKIP;
}

#endif
