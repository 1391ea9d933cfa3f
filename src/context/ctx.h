/*
 * The context layer's switch: the one place that knows how a CPU saves and
 * resumes a stack. Backends, one per file, chosen at configure time:
 *   ctx_x86_64.S   (COSYNC_CTX_ASM on x86-64)
 *   ctx_aarch64.S  (COSYNC_CTX_ASM on AArch64)
 *   ctx_ucontext.c (COSYNC_CTX_UCONTEXT, the portable fallback)
 *
 * The assembly backends save only what the ABI makes callee-saved (the FP
 * control words included), keep the resume address on the saved stack and
 * end in an indirect jump, never a `ret` to another stack (which defeats the
 * return-address predictor).
 */
#ifndef COSYNC_CTX_H
#define COSYNC_CTX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if defined(COSYNC_CTX_UCONTEXT)
#include <ucontext.h>
typedef struct cosync__ctx {
    ucontext_t uc;
} cosync__ctx;
/* makecontext writes at the top of the new stack: a dying task cannot start
 * the next one on its own stack. */
#define COSYNC__CTX_CAN_START_ON_OWN_STACK 0
#else
typedef struct cosync__ctx {
    void *sp; /* the saved stack pointer; the resume frame lies at *sp */
} cosync__ctx;
#define COSYNC__CTX_CAN_START_ON_OWN_STACK 1
#endif

typedef void (*cosync__ctx_entry)(void *arg);

/* Where a saved context's frame is, for prefetching. */
static inline const void *cosync__ctx_frame(const cosync__ctx *ctx)
{
#if defined(COSYNC_CTX_UCONTEXT)
    return ctx;
#else
    return ctx->sp;
#endif
}

/*
 * The FP control modes a task starts with, as one word: on x86-64 MXCSR
 * (exception flags cleared) | x87 control word << 32, on AArch64 the FPCR.
 * The switch keeps each task's own modes; these set a new task's.
 */
static inline uint64_t cosync__fpenv_read(void)
{
#if defined(__x86_64__)
    uint32_t mxcsr;
    uint16_t cw;
    __asm__ volatile("stmxcsr %0\n\tfnstcw %1" : "=m"(mxcsr), "=m"(cw));
    return (mxcsr & ~(uint32_t)0x3f) | (uint64_t)cw << 32;
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    return fpcr;
#else
    return 0;
#endif
}

/*
 * The running FP state as the same word, MXCSR's exception flags kept: what
 * a loop whose tasks share the thread's modes carries across a switch that
 * would otherwise restore each context's own (the ucontext backend).
 * Written in place, through a pointer, as cosync__fpenv_write reads.
 */
static inline void cosync__fpenv_save(uint64_t *env)
{
#if defined(__x86_64__)
    *env = 0; /* bytes 6 and 7 */
    __asm__ volatile("stmxcsr (%1)\n\tfnstcw 4(%1)" : "+m"(*env) : "r"(env));
#elif defined(__aarch64__)
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    *env = fpcr;
#else
    *env = 0;
#endif
}

/* Load the modes stored at @env. Read in place, through a pointer: copies
 * in locals would be stack memory that AddressSanitizer poisons when their
 * scope ends, and a finishing task loads the modes for the next one that
 * starts on the very same stack. */
static inline void cosync__fpenv_write(const uint64_t *env)
{
#if defined(__x86_64__)
    /* little-endian: MXCSR in the low 4 bytes, the control word in the next 2 */
    __asm__ volatile("ldmxcsr (%0)\n\tfldcw 4(%0)" : : "r"(env), "m"(*env));
#elif defined(__aarch64__)
    /* written only when it differs, as ctx_aarch64.S does: a write can be
     * far slower than a read on some cores */
    uint64_t fpcr;
    __asm__ volatile("mrs %0, fpcr" : "=r"(fpcr));
    if (fpcr != *env)
        __asm__ volatile("msr fpcr, %0" : : "r"(*env));
#else
    (void)env;
#endif
}

/*
 * Save the running context into @from and resume @to. Returns when someone
 * switches back to @from.
 */
void cosync__ctx_switch(cosync__ctx *from, cosync__ctx *to);

/*
 * Resume @to without saving anything: the running context is abandoned
 * (a finished task).
 */
void cosync__ctx_jump(cosync__ctx *to) __attribute__((noreturn));

/*
 * Save the running context into @from (unless @from is NULL: abandon it)
 * and call @entry(@arg) on a fresh stack whose highest address is @top
 * (16-byte aligned). @entry must never return. @ctx is where the started
 * context will be saved later; the ucontext backend builds it there.
 *
 * With @from == NULL the assembly backends may be given the very stack
 * they run on (COSYNC__CTX_CAN_START_ON_OWN_STACK): they move to @top
 * before writing anything.
 */
void cosync__ctx_start(cosync__ctx *from, cosync__ctx *ctx, void *top, size_t size,
                       cosync__ctx_entry entry, void *arg);

/*
 * cosync__ctx_switch_inline: the same switch, inlined where the scheduler
 * switches tasks. Only the frame of ctx_x86_64.S (resume address, FP
 * control words, rbp) is saved; every other register the build lets the
 * compiler use is in the clobber list (AVX-512's and APX's too when the
 * file is built for them), so the compiler saves just what is live. The
 * resume point is a label in the caller's own code, so call and return addresses on the two
 * stacks stay paired and the return-stack predictor keeps working. Unless
 * the file is built without a red zone (-mno-red-zone and
 * COSYNC__NO_RED_ZONE, as CMake builds sched.c), the 128 bytes below the
 * stack pointer are skipped first: the compiler may keep data there.
 */
#if defined(COSYNC__NO_RED_ZONE)
#define COSYNC__RED_ZONE_SKIP ""
#define COSYNC__RED_ZONE_BACK ""
#else
#define COSYNC__RED_ZONE_SKIP "subq $128, %%rsp\n\t"
#define COSYNC__RED_ZONE_BACK "\n\taddq $128, %%rsp"
#endif
#if defined(COSYNC_CTX_ASM) && defined(__x86_64__)
#define COSYNC__CTX_HAVE_INLINE 1
/* The registers that only some builds let the compiler use: AVX-512's
 * xmm16-31 and mask registers, APX's r16-31. The ABI has the other context
 * change them freely (glibc's string functions do), so a compiler that may
 * use them must be told they do not survive the switch. */
#if defined(__AVX512F__)
#define COSYNC__CLOBBER_AVX512                                                                     \
    , "xmm16", "xmm17", "xmm18", "xmm19", "xmm20", "xmm21", "xmm22", "xmm23", "xmm24", "xmm25",    \
        "xmm26", "xmm27", "xmm28", "xmm29", "xmm30", "xmm31", "k0", "k1", "k2", "k3", "k4", "k5",  \
        "k6", "k7"
#else
#define COSYNC__CLOBBER_AVX512
#endif
#if defined(__APX_F__)
#define COSYNC__CLOBBER_APX                                                                        \
    , "r16", "r17", "r18", "r19", "r20", "r21", "r22", "r23", "r24", "r25", "r26", "r27", "r28",   \
        "r29", "r30", "r31"
#else
#define COSYNC__CLOBBER_APX
#endif
/*
 * @own_fp: save the running context's FP control words and load @to's
 * (each context keeps its own modes); false leaves them as they are (a
 * loop whose tasks share the thread's modes). Reading MXCSR is the costly
 * part of this switch on some CPUs (stmxcsr: about 4 ns here, little of
 * it hidden by other work; docs/benchmarks.md), so the choice is worth a
 * branch. The frame keeps its layout either way; a loop never mixes the
 * two. Nor may a context saved here with @own_fp false be resumed by
 * cosync__ctx_switch or cosync__ctx_jump on x86-64: they load the modes
 * from the frame, where this left nothing (the scheduler uses only the
 * inline forms there).
 */
static inline __attribute__((always_inline)) void
cosync__ctx_switch_inline(cosync__ctx *from, cosync__ctx *to, bool own_fp)
{
    uint64_t fp = own_fp;
    __asm__ volatile(COSYNC__RED_ZONE_SKIP "pushq %%rbp\n\t"
                                           "subq $8, %%rsp\n\t"
                                           "testq %%rdx, %%rdx\n\t"
                                           "jz 2f\n\t"
                                           "stmxcsr (%%rsp)\n\t"
                                           "fnstcw 4(%%rsp)\n"
                                           "2:\t"
                                           "leaq 1f(%%rip), %%rax\n\t"
                                           "pushq %%rax\n\t"
                                           "movq %%rsp, (%0)\n\t"
                                           "movq (%1), %%rsp\n\t"
                                           "popq %%rcx\n\t"
                                           "jz 3f\n\t" /* flags of the test above */
                                           "ldmxcsr (%%rsp)\n\t"
                                           "fldcw 4(%%rsp)\n"
                                           "3:\t"
                                           "addq $8, %%rsp\n\t"
                                           "popq %%rbp\n\t"
                                           "jmp *%%rcx\n"
                                           "1:" COSYNC__RED_ZONE_BACK
                     : "+D"(from), "+S"(to), "+d"(fp)
                     :
                     : "rax", "rbx", "rcx", "r8", "r9", "r10", "r11", "r12", "r13", "r14", "r15",
                       "memory", "cc", "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6",
                       "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15",
                       "st", "st(1)", "st(2)", "st(3)", "st(4)", "st(5)", "st(6)", "st(7)", "mm0",
                       "mm1", "mm2", "mm3", "mm4", "mm5", "mm6",
                       "mm7" COSYNC__CLOBBER_AVX512 COSYNC__CLOBBER_APX);
}

/*
 * cosync__ctx_jump_inline: cosync__ctx_jump without the call. A call that
 * never returns leaves its return address on the return-stack predictor,
 * and the resumed context's next `ret` is then mispredicted (with every one
 * above it: two per spawn + join, about 14 ns here).
 */
static inline __attribute__((always_inline, noreturn)) void cosync__ctx_jump_inline(cosync__ctx *to,
                                                                                    bool own_fp)
{
    __asm__ volatile("movq (%0), %%rsp\n\t"
                     "popq %%rcx\n\t"
                     "testl %1, %1\n\t"
                     "jz 2f\n\t"
                     "ldmxcsr (%%rsp)\n\t"
                     "fldcw 4(%%rsp)\n"
                     "2:\t"
                     "addq $8, %%rsp\n\t"
                     "popq %%rbp\n\t"
                     "jmp *%%rcx"
                     :
                     : "r"(to), "r"((uint32_t)own_fp)
                     : "rcx", "memory");
    __builtin_unreachable();
}

/*
 * cosync__ctx_start_inline: abandon the running context and call
 * @entry(@arg) on the stack whose highest address is @top, as
 * cosync__ctx_start(NULL, ...) does, but without a call (see above). The
 * caller sets the FP control words first. @top may be the very stack this
 * runs on: nothing is written before the stack pointer has moved there.
 */
static inline __attribute__((always_inline, noreturn)) void
cosync__ctx_start_inline(void *top, cosync__ctx_entry entry, void *arg)
{
    __asm__ volatile("movq %0, %%rsp\n\t"
                     "xorl %%ebp, %%ebp\n\t"
                     "leaq cosync__ctx_root(%%rip), %%rcx\n\t"
                     "pushq %%rcx\n\t" /* the return address that ends backtraces */
                     "jmp *%1"
                     :
                     : "r"(top), "a"(entry), "D"(arg) /* entry not in rbp, zeroed first */
                     : "rcx", "memory");
    __builtin_unreachable();
}

void cosync__ctx_trampoline(void);
/* What a task's first frame returns to, for debuggers (ctx_x86_64.S). */
void cosync__ctx_root(void);

/*
 * cosync__ctx_prepare: build on a fresh stack the frame that the first
 * cosync__ctx_switch_inline to @ctx resumes: it calls @entry(@arg) (which
 * never returns) through cosync__ctx_trampoline, with the FP control words
 * @fpenv. Starting a task this way, rather than with cosync__ctx_start,
 * keeps its starter's return addresses paired.
 */
static inline void cosync__ctx_prepare(cosync__ctx *ctx, void *top, cosync__ctx_entry entry,
                                       void *arg, uint64_t fpenv)
{
    uint64_t *sp = (uint64_t *)top - 4;
    sp[0] = (uint64_t)(uintptr_t)cosync__ctx_trampoline;
    sp[1] = fpenv;
    sp[2] = (uint64_t)(uintptr_t)arg;   /* rbp, the trampoline's argument */
    sp[3] = (uint64_t)(uintptr_t)entry; /* becomes cosync__ctx_root */
    ctx->sp = sp;
}
#else
#define COSYNC__CTX_HAVE_INLINE 0
/* The other backends always keep each context's own modes: the scheduler
 * makes a loop with shared modes share them around the switch. */
#define cosync__ctx_switch_inline(from, to, own_fp) cosync__ctx_switch(from, to)
#define cosync__ctx_jump_inline(to, own_fp) cosync__ctx_jump(to)
#endif

#endif /* COSYNC_CTX_H */
