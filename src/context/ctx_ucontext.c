/*
 * The portable fallback: POSIX ucontext. Some 40-60 times slower than the
 * assembly backends (swapcontext saves the signal mask with a system call,
 * and the mask is carried over with another),
 * so it is chosen only where no assembly backend exists or on request
 * (COSYNC_CONTEXT=ucontext).
 */
#include "context/ctx.h"

#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>

/* swapcontext and setcontext restore the signal mask saved with the
 * context they go to, but the mask is the thread's, as with the assembly
 * backends: a change a task makes (cosync_signal_init) must hold for the
 * tasks after it. So the mask in force now goes on into @to (one more
 * system call a switch, on a backend that makes one anyway). */
static void keep_signal_mask(cosync__ctx *to)
{
    pthread_sigmask(SIG_SETMASK, NULL, &to->uc.uc_sigmask);
}

void cosync__ctx_switch(cosync__ctx *from, cosync__ctx *to)
{
    keep_signal_mask(to);
    swapcontext(&from->uc, &to->uc);
}

void cosync__ctx_jump(cosync__ctx *to)
{
    keep_signal_mask(to);
    setcontext(&to->uc);
    abort(); /* setcontext returns only on failure */
}

/* makecontext passes int arguments only: split the pointers in halves. */
static void trampoline(unsigned entry_hi, unsigned entry_lo, unsigned arg_hi, unsigned arg_lo)
{
    uintptr_t entry = ((uintptr_t)entry_hi << 16 << 16) | entry_lo;
    uintptr_t arg = ((uintptr_t)arg_hi << 16 << 16) | arg_lo;
    ((cosync__ctx_entry)entry)((void *)arg);
    abort(); /* entries never return */
}

void cosync__ctx_start(cosync__ctx *from, cosync__ctx *ctx, void *top, size_t size,
                       cosync__ctx_entry entry, void *arg)
{
    uintptr_t e = (uintptr_t)entry, a = (uintptr_t)arg;
    if (getcontext(&ctx->uc) != 0)
        abort();
    ctx->uc.uc_stack.ss_sp = (char *)top - size;
    ctx->uc.uc_stack.ss_size = size;
    ctx->uc.uc_link = NULL;
    makecontext(&ctx->uc, (void (*)(void))trampoline, 4, (unsigned)(e >> 16 >> 16), (unsigned)e,
                (unsigned)(a >> 16 >> 16), (unsigned)a);
    if (from)
        swapcontext(&from->uc, &ctx->uc);
    else
        setcontext(&ctx->uc);
}
