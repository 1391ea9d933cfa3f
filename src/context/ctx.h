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

#include <stddef.h>

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

#endif /* COSYNC_CTX_H */
