/*
 * Context switch for x86-64 (System V ABI). See ctx.h.
 *
 * Saved frame, lowest address first (the saved sp points at it):
 *   0  resume address        8  MXCSR (4 bytes)     12  x87 control word
 *  16  r15  24 r14  32 r13  40 r12  48 rbx  56 rbp
 * The resume address is the caller's return address, popped off before the
 * registers are pushed; resuming ends in `jmp *%rcx`, never `ret`, so the
 * return-stack predictor is not poisoned by a return to another stack.
 */
        .text

        .globl  cosync__ctx_switch
        .hidden cosync__ctx_switch
        .type   cosync__ctx_switch, @function
        .p2align 4
cosync__ctx_switch:                    /* rdi = from, rsi = to */
        .cfi_startproc
        popq    %rax
        .cfi_adjust_cfa_offset -8
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $16, %rsp
        stmxcsr 8(%rsp)
        fnstcw  12(%rsp)
        movq    %rax, (%rsp)
        movq    %rsp, (%rdi)
        movq    (%rsi), %rsp
.Lresume:
        movq    (%rsp), %rcx
        ldmxcsr 8(%rsp)
        fldcw   12(%rsp)
        addq    $16, %rsp
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        popq    %rbp
        jmp     *%rcx
        .cfi_endproc
        .size   cosync__ctx_switch, .-cosync__ctx_switch

        .globl  cosync__ctx_jump
        .hidden cosync__ctx_jump
        .type   cosync__ctx_jump, @function
        .p2align 4
cosync__ctx_jump:                      /* rdi = to */
        .cfi_startproc
        movq    (%rdi), %rsp
        jmp     .Lresume
        .cfi_endproc
        .size   cosync__ctx_jump, .-cosync__ctx_jump

        .globl  cosync__ctx_start
        .hidden cosync__ctx_start
        .type   cosync__ctx_start, @function
        .p2align 4
cosync__ctx_start:      /* rdi = from, rsi = ctx, rdx = top, rcx = size, r8 = entry, r9 = arg */
        .cfi_startproc
        testq   %rdi, %rdi
        jz      1f
        popq    %rax
        .cfi_adjust_cfa_offset -8
        pushq   %rbp
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        subq    $16, %rsp
        stmxcsr 8(%rsp)
        fnstcw  12(%rsp)
        movq    %rax, (%rsp)
        movq    %rsp, (%rdi)
1:
        movq    %rdx, %rsp
        movq    %r9, %rdi
        xorl    %ebp, %ebp
        pushq   $0              /* a null return address ends backtraces */
        jmp     *%r8
        .cfi_endproc
        .size   cosync__ctx_start, .-cosync__ctx_start

        .section .note.GNU-stack,"",@progbits
