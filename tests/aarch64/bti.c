/*
 * bti.c - the AArch64 context switch in a program whose branch targets the
 * CPU checks (BTI): tests/aarch64/run.sh builds it with
 * -mbranch-protection=standard, links it with -z force-bti and runs it under
 * qemu, which then raises SIGILL at any indirect branch to a place that is
 * not a landing pad. Freestanding (no libc: Debian's is not built for BTI,
 * and one unmarked object would leave the program unchecked).
 *
 * Exit status 0: every start, switch and jump came where it should, in
 * order; 1-99: the step that went wrong; SIGILL: a branch target
 * exception.
 */
#include "context/ctx.h"

static cosync__ctx main_ctx, a_ctx, b_ctx;
static unsigned char a_stack[16384] __attribute__((aligned(16)));
static unsigned char b_stack[16384] __attribute__((aligned(16)));
static volatile int steps[16];
static volatile int nsteps;

static void __attribute__((noreturn)) sys_exit(long code)
{
    register long x0 __asm__("x0") = code;
    register long x8 __asm__("x8") = 93; /* exit */
    __asm__ volatile("svc 0" : "+r"(x0) : "r"(x8) : "memory");
    __builtin_unreachable();
}

static void step(int n)
{
    steps[nsteps++] = n;
}

/* B: started by A, switches back to A, then leaves for main for good. */
static void b_entry(void *arg)
{
    step((int)(long)arg); /* 3 */
    cosync__ctx_switch(&b_ctx, &a_ctx);
    step(6);
    cosync__ctx_jump(&main_ctx);
}

/* A: started by main; starts B; back in A; to main; back in A; to B. */
static void a_entry(void *arg)
{
    step((int)(long)arg); /* 2 */
    cosync__ctx_start(&a_ctx, &b_ctx, b_stack + sizeof b_stack, sizeof b_stack, b_entry,
                      (void *)3L);
    step(4);
    cosync__ctx_switch(&a_ctx, &main_ctx);
    step(5);
    cosync__ctx_switch(&a_ctx, &b_ctx);
    sys_exit(90); /* never resumed */
}

void cmain(void);
void cmain(void)
{
    step(1);
    cosync__ctx_start(&main_ctx, &a_ctx, a_stack + sizeof a_stack, sizeof a_stack, a_entry,
                      (void *)2L);
    cosync__ctx_switch(&main_ctx, &a_ctx); /* back from A's switch: on to 5 */
    step(7);
    static const int want[] = {1, 2, 3, 4, 5, 6, 7};
    if (nsteps != 7)
        sys_exit(50 + nsteps);
    for (int i = 0; i < 7; i++)
        if (steps[i] != want[i])
            sys_exit(10 + i);
    sys_exit(0);
}

/* The process starts here (no crt); a landing pad, as the kernel enters
 * through a branch the CPU checks. */
__asm__(".globl _start\n"
        "_start:\n"
        "\tbti c\n"
        "\tbl cmain\n"
        "\tb .\n");
