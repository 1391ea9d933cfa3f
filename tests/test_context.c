/*
 * test_context.c - white-box test of the context layer alone
 * (src/context/ctx.h and whichever backend the build links in).
 *
 * No loop, no tasks: fibers are bare cosync__ctx values on mmap'd stacks.
 *
 * The switches are not announced to AddressSanitizer (the scheduler does
 * that, not the context layer); instead a stack is unpoisoned whenever
 * frames are abandoned on it, so stale redzones cause no false reports.
 * ASan may warn once that it ignores __asan_handle_no_return: harmless.
 */
#define _GNU_SOURCE
#include <fenv.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "context/ctx.h"
#include "context/sanitize.h"

#define NOINLINE __attribute__((noinline))

/* ------------------------------------------------------------------------
 * Stacks
 * ---------------------------------------------------------------------- */

typedef struct test_stack {
    void *map;   /* the mapping, guard page included */
    size_t len;  /* its length */
    void *top;   /* highest address, 16-byte aligned */
    size_t size; /* usable bytes below top */
} test_stack;

/* Forget the redzones of frames abandoned on @s (AddressSanitizer). */
static void stack_unpoison(test_stack *s)
{
#if COSYNC__ASAN
    __asan_unpoison_memory_region((char *)s->top - s->size, s->size);
#else
    (void)s;
#endif
}

static void stack_alloc(test_stack *s, size_t size)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size = (size + page - 1) / page * page;
    s->len = size + page;
    s->map =
        mmap(NULL, s->len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    CHECK(s->map != MAP_FAILED);
    /* A guard page below the stack: an overflow faults instead of
     * scribbling. */
    CHECK_EQ(mprotect(s->map, page, PROT_NONE), 0);
    s->top = (char *)s->map + s->len;
    s->size = size;
    CHECK_EQ((uintptr_t)s->top % 16, 0);
    stack_unpoison(s);
}

static void stack_free(test_stack *s)
{
    stack_unpoison(s);
    CHECK_EQ(munmap(s->map, s->len), 0);
    memset(s, 0, sizeof *s);
}

#define STACK_SIZE (256 * 1024)

static cosync__ctx main_ctx;
static cosync__ctx fib_ctx;
static test_stack fib_stack;

/* Start fib_ctx on fib_stack, from main_ctx. */
static void start_fiber(cosync__ctx_entry entry, void *arg)
{
    cosync__ctx_start(&main_ctx, &fib_ctx, fib_stack.top, fib_stack.size, entry, arg);
}

/* ------------------------------------------------------------------------
 * (a) ping-pong: main and a fiber switch back and forth, each checking a
 * shared counter that the other advanced.
 * ---------------------------------------------------------------------- */

#define PINGPONG_ROUNDS 100000L

static volatile long pp_counter;
static volatile int pp_done;
static int pp_arg_cookie;

static void pingpong_entry(void *arg)
{
    CHECK(arg == &pp_arg_cookie);
    for (long i = 0; i < PINGPONG_ROUNDS; i++) {
        CHECK_EQ(pp_counter, 2 * i + 1);
        pp_counter = pp_counter + 1;
        if (i == PINGPONG_ROUNDS - 1)
            break;
        cosync__ctx_switch(&fib_ctx, &main_ctx);
    }
    pp_done = 1;
    cosync__ctx_jump(&main_ctx); /* finished: abandon this stack */
}

TEST(pingpong)
{
    stack_alloc(&fib_stack, STACK_SIZE);
    pp_counter = 1;
    pp_done = 0;
    start_fiber(pingpong_entry, &pp_arg_cookie);
    for (long i = 0; i < PINGPONG_ROUNDS; i++) {
        CHECK_EQ(pp_counter, 2 * i + 2);
        if (i == PINGPONG_ROUNDS - 1)
            break;
        CHECK(!pp_done);
        pp_counter = pp_counter + 1;
        cosync__ctx_switch(&main_ctx, &fib_ctx);
    }
    CHECK(pp_done);
    CHECK_EQ(pp_counter, 2 * PINGPONG_ROUNDS);
    stack_free(&fib_stack);
}

/* ------------------------------------------------------------------------
 * (b) callee-saved registers survive a switch.
 *
 * crunch() keeps ten 64-bit integers and eight doubles live across an
 * opaque call, so an optimizing compiler holds them in callee-saved
 * registers (x19-x28 and d8-d15 on AArch64; rbx, rbp, r12-r15 on x86-64,
 * the rest spilled). Main and the fiber both run it with different seeds,
 * switching inside the call, so each side's registers hold the other's
 * values while it is suspended. Each result must match a run without
 * switches.
 * ---------------------------------------------------------------------- */

#define CRUNCH_ROUNDS 2000

typedef void (*yield_fn)(void);

static NOINLINE void no_yield(void)
{
    __asm__ volatile("" ::: "memory");
}

static NOINLINE void main_yield(void)
{
    cosync__ctx_switch(&main_ctx, &fib_ctx);
}

static NOINLINE void fib_yield(void)
{
    cosync__ctx_switch(&fib_ctx, &main_ctx);
}

static NOINLINE uint64_t crunch(uint64_t seed, yield_fn volatile *yieldp)
{
    yield_fn yield = *yieldp;
    uint64_t a0 = seed ^ 0x9e3779b97f4a7c15u, a1 = seed * 3 + 1, a2 = seed * 5 + 2,
             a3 = seed * 7 + 3, a4 = seed * 11 + 4, a5 = seed * 13 + 5, a6 = seed * 17 + 6,
             a7 = seed * 19 + 7, a8 = seed * 23 + 8, a9 = seed * 29 + 9;
    double d0 = (double)(seed & 0xff) + 0.5, d1 = d0 * 1.25, d2 = d0 * 1.5, d3 = d0 * 1.75,
           d4 = d0 * 2.25, d5 = d0 * 2.5, d6 = d0 * 2.75, d7 = d0 * 3.25;

    for (int i = 0; i < CRUNCH_ROUNDS; i++) {
        yield();
        a0 = a0 * 6364136223846793005u + a1;
        a1 = (a1 ^ (a2 >> 7)) + a3;
        a2 = a2 * 2862933555777941757u + a4;
        a3 = (a3 << 5 | a3 >> 59) ^ a5;
        a4 = a4 + a6 * 3;
        a5 = (a5 ^ a7) * 0xff51afd7ed558ccdu;
        a6 = a6 + (a8 | 1);
        a7 = (a7 >> 3) ^ a9 ^ a0;
        a8 = a8 * 0xc4ceb9fe1a85ec53u + a1;
        a9 = a9 + a2 + (uint64_t)i;
        d0 = d0 * 0.5 + d1 * 0.25 + (double)(a0 & 0xff);
        d1 = d1 * 0.5 + d2 * 0.25 + (double)(a1 & 0xff);
        d2 = d2 * 0.5 + d3 * 0.25 + (double)(a2 & 0xff);
        d3 = d3 * 0.5 + d4 * 0.25 + (double)(a3 & 0xff);
        d4 = d4 * 0.5 + d5 * 0.25 + (double)(a4 & 0xff);
        d5 = d5 * 0.5 + d6 * 0.25 + (double)(a5 & 0xff);
        d6 = d6 * 0.5 + d7 * 0.25 + (double)(a6 & 0xff);
        d7 = d7 * 0.5 + d0 * 0.25 + (double)(a7 & 0xff);
    }

    double ds[8] = {d0, d1, d2, d3, d4, d5, d6, d7};
    uint64_t h = a0 ^ a1 ^ a2 ^ a3 ^ a4 ^ a5 ^ a6 ^ a7 ^ a8 ^ a9;
    for (int j = 0; j < 8; j++) {
        uint64_t bits;
        memcpy(&bits, &ds[j], sizeof bits);
        h = (h ^ bits) * 0x100000001b3u;
    }
    return h;
}

#define SEED_MAIN 0x0123456789abcdefu
#define SEED_FIB 0xfedcba9876543210u

static uint64_t regs_fib_result;
static volatile int regs_fib_done;

static void regs_entry(void *arg)
{
    (void)arg;
    yield_fn volatile y = fib_yield;
    regs_fib_result = crunch(SEED_FIB, &y);
    regs_fib_done = 1;
    cosync__ctx_jump(&main_ctx);
}

TEST(callee_saved)
{
    yield_fn volatile y = no_yield;
    uint64_t want_main = crunch(SEED_MAIN, &y);
    uint64_t want_fib = crunch(SEED_FIB, &y);
    CHECK(want_main != want_fib);

    stack_alloc(&fib_stack, STACK_SIZE);
    regs_fib_done = 0;
    /* The fiber runs up to its first yield, then main and the fiber
     * alternate: each main_yield resumes the fiber, each fib_yield main. */
    start_fiber(regs_entry, NULL);
    y = main_yield;
    uint64_t got_main = crunch(SEED_MAIN, &y);
    /* The fiber's yield k is resumed by main's yield k: main's last one
     * let the fiber finish, and it jumped back into main's last yield. */
    CHECK(regs_fib_done);
    CHECK(got_main == want_main);
    CHECK(regs_fib_result == want_fib);
    stack_free(&fib_stack);
}

/* ------------------------------------------------------------------------
 * (c) FP control words: each context keeps its own rounding mode.
 * ---------------------------------------------------------------------- */

static volatile double fp_one = 1.0, fp_three = 3.0;

/* 1/3 rounded to nearest is below 1/3; rounded upward it is one ulp
 * higher. Checks the hardware state actually used by arithmetic, not only
 * what fegetround() reads. */
static NOINLINE uint64_t third_bits(void)
{
    double q = fp_one / fp_three;
    uint64_t bits;
    memcpy(&bits, &q, sizeof bits);
    return bits;
}

#define THIRD_NEAREST UINT64_C(0x3fd5555555555555)
#define THIRD_UP UINT64_C(0x3fd5555555555556)

static volatile int fp_stage;

static void fp_entry(void *arg)
{
    (void)arg;
    CHECK_EQ(fegetround(), FE_TONEAREST); /* inherited at start */
    CHECK_EQ(fesetround(FE_UPWARD), 0);
    CHECK_EQ(fegetround(), FE_UPWARD);
    CHECK(third_bits() == THIRD_UP);
    fp_stage = 1;
    cosync__ctx_switch(&fib_ctx, &main_ctx);

    /* Main runs FE_DOWNWARD now; this fiber must still round upward. */
    CHECK_EQ(fp_stage, 2);
    CHECK_EQ(fegetround(), FE_UPWARD);
    CHECK(third_bits() == THIRD_UP);
    fp_stage = 3;
    cosync__ctx_switch(&fib_ctx, &main_ctx);

    CHECK_EQ(fp_stage, 4);
    CHECK_EQ(fegetround(), FE_UPWARD);
    CHECK(third_bits() == THIRD_UP);
    fp_stage = 5;
    cosync__ctx_jump(&main_ctx);
}

TEST(fp_control)
{
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK(third_bits() == THIRD_NEAREST);
    stack_alloc(&fib_stack, STACK_SIZE);
    fp_stage = 0;
    start_fiber(fp_entry, NULL);

    CHECK_EQ(fp_stage, 1);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK(third_bits() == THIRD_NEAREST);

    CHECK_EQ(fesetround(FE_DOWNWARD), 0);
    fp_stage = 2;
    cosync__ctx_switch(&main_ctx, &fib_ctx);
    CHECK_EQ(fp_stage, 3);
    CHECK_EQ(fegetround(), FE_DOWNWARD);
    CHECK(third_bits() == THIRD_NEAREST); /* downward == nearest for 1/3 */

    CHECK_EQ(fesetround(FE_TONEAREST), 0);
    fp_stage = 4;
    cosync__ctx_switch(&main_ctx, &fib_ctx); /* the fiber ends with a jump */
    CHECK_EQ(fp_stage, 5);
    CHECK_EQ(fegetround(), FE_TONEAREST);
    CHECK(third_bits() == THIRD_NEAREST);
    stack_free(&fib_stack);
}

/* ------------------------------------------------------------------------
 * (d) cosync__ctx_start(NULL, ...) on the running fiber's own stack: a
 * fiber "dies" by starting the next entry at the top of its own stack,
 * 1,000 times in a row; the stack must not grow.
 * ---------------------------------------------------------------------- */

#if COSYNC__CTX_CAN_START_ON_OWN_STACK

#define REBIRTHS 1000L

static volatile long rb_generation;
static uintptr_t rb_first_frame;

static NOINLINE void scribble_stack(void)
{
    /* Use some stack, so that a start that did not move to the top would
     * leave garbage where the next generation's frame goes. */
    volatile char junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (char)0xa5;
}

static void reborn_entry(void *arg)
{
    long gen = (long)(intptr_t)arg;
    uintptr_t frame = (uintptr_t)__builtin_frame_address(0);

    CHECK_EQ(gen, rb_generation);
    CHECK(frame < (uintptr_t)fib_stack.top);
    CHECK((uintptr_t)fib_stack.top - frame < 1024);
    if (gen == 0)
        rb_first_frame = frame;
    else
        CHECK(frame == rb_first_frame); /* no growth */

    cosync__ctx_switch(&fib_ctx, &main_ctx);

    /* Resumed: die by starting the next generation on this very stack. */
    scribble_stack();
    rb_generation = gen + 1;
    stack_unpoison(&fib_stack);
    cosync__ctx_start(NULL, &fib_ctx, fib_stack.top, fib_stack.size, reborn_entry,
                      (void *)(intptr_t)(gen + 1));
    abort(); /* not reached */
}

TEST(start_on_own_stack)
{
    stack_alloc(&fib_stack, STACK_SIZE);
    rb_generation = 0;
    start_fiber(reborn_entry, (void *)(intptr_t)0);
    for (long i = 1; i <= REBIRTHS; i++) {
        cosync__ctx_switch(&main_ctx, &fib_ctx);
        CHECK_EQ(rb_generation, i);
    }
    stack_free(&fib_stack);
}

#endif /* COSYNC__CTX_CAN_START_ON_OWN_STACK */

/* ------------------------------------------------------------------------
 * (e) stack alignment at entry: sp is 16-byte aligned at a function's first
 * instruction on AArch64 and 8 mod 16 on x86-64 (as after a call); in both
 * cases the frame pointer ends up 16-byte aligned.
 * ---------------------------------------------------------------------- */

typedef double v2d __attribute__((vector_size(16)));

static volatile int align_done;

static NOINLINE void aligned_locals(void)
{
    _Alignas(16) unsigned char buf[32];
    volatile long double ld = 1.5L;
    volatile v2d v = {1.0, 2.0}; /* movaps on x86-64: faults if misaligned */
    char text[64];

    CHECK_EQ((uintptr_t)buf % 16, 0);
    CHECK_EQ((uintptr_t)&ld % _Alignof(long double), 0);
    CHECK_EQ((uintptr_t)&v % 16, 0);
    memset(buf, 0x5a, sizeof buf);
    CHECK_EQ(buf[31], 0x5a);
    v = v + v;
    CHECK(v[0] == 2.0 && v[1] == 4.0);
    ld = ld * 3;
    /* glibc's printf uses aligned SSE stores on x86-64. */
    snprintf(text, sizeof text, "%.2Lf %.3f", (long double)ld, 0.125);
    CHECK(strcmp(text, "4.50 0.125") == 0);
}

static void align_entry(void *arg)
{
    (void)arg;
    CHECK_EQ((uintptr_t)__builtin_frame_address(0) % 16, 0);
    aligned_locals();
    cosync__ctx_switch(&fib_ctx, &main_ctx);
    /* And after a resume. */
    CHECK_EQ((uintptr_t)__builtin_frame_address(0) % 16, 0);
    aligned_locals();
    align_done = 1;
    cosync__ctx_jump(&main_ctx);
}

#if COSYNC__CTX_CAN_START_ON_OWN_STACK
static void reborn_align_entry(void *arg)
{
    (void)arg;
    CHECK_EQ((uintptr_t)__builtin_frame_address(0) % 16, 0);
    aligned_locals();
    align_done = 1;
    cosync__ctx_jump(&main_ctx);
}

static void align_die_entry(void *arg)
{
    (void)arg;
    /* Restart on this stack from an odd depth. */
    volatile char pad[40];
    pad[0] = 1;
    (void)pad[0];
    stack_unpoison(&fib_stack);
    cosync__ctx_start(NULL, &fib_ctx, fib_stack.top, fib_stack.size, reborn_align_entry, NULL);
    abort();
}
#endif

TEST(alignment)
{
    stack_alloc(&fib_stack, STACK_SIZE);
    align_done = 0;
    start_fiber(align_entry, NULL);
    CHECK(!align_done);
    cosync__ctx_switch(&main_ctx, &fib_ctx);
    CHECK(align_done);

#if COSYNC__CTX_CAN_START_ON_OWN_STACK
    align_done = 0;
    start_fiber(align_die_entry, NULL);
    CHECK(align_done);
#endif
    stack_free(&fib_stack);
}

int main(void)
{
    RUN(pingpong);
    RUN(callee_saved);
    RUN(fp_control);
#if COSYNC__CTX_CAN_START_ON_OWN_STACK
    RUN(start_on_own_stack);
#endif
    RUN(alignment);
    return 0;
}
