/*
 * Context switch for x86-64 (System V ABI). See ctx.h.
 *
 * A saved context is a small frame at the saved sp, lowest address first:
 *    0  resume address
 *    8  MXCSR (4 bytes), x87 control word (2 bytes)
 *   16  rbp
 * Resuming pops the frame, reloads the FP control words and ends in
 * `jmp *resume`, never `ret`. The switch inlined into the scheduler
 * (cosync__ctx_switch_inline in ctx.h) lets the compiler save whatever
 * else is live; the out-of-line functions here push rbx and r12-r15 below
 * the frame and resume through .Lpop_callee, which restores them and
 * returns to their caller.
 */
        .text

.macro SAVE_TO_RDI
        /* save the callee-saved registers, then the frame that resumes
         * through .Lpop_callee, and store the stack pointer in *%rdi */
        pushq   %rbx
        pushq   %r12
        pushq   %r13
        pushq   %r14
        pushq   %r15
        pushq   %rbp
        subq    $8, %rsp
        stmxcsr (%rsp)
        fnstcw  4(%rsp)
        leaq    .Lpop_callee(%rip), %rax
        pushq   %rax
        movq    %rsp, (%rdi)
.endm


        .globl  cosync__ctx_switch
        .hidden cosync__ctx_switch
        .type   cosync__ctx_switch, @function
        .p2align 4
cosync__ctx_switch:                    /* rdi = from, rsi = to */
        .cfi_startproc
        SAVE_TO_RDI
        movq    (%rsi), %rsp
.Lresume:
        popq    %rcx
        ldmxcsr (%rsp)
        fldcw   4(%rsp)
        addq    $8, %rsp
        popq    %rbp
        jmp     *%rcx
.Lpop_callee:
        popq    %r15
        popq    %r14
        popq    %r13
        popq    %r12
        popq    %rbx
        ret
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
        SAVE_TO_RDI
1:
        movq    %rdx, %rsp
        movq    %r9, %rdi
        xorl    %ebp, %ebp
        leaq    cosync__ctx_root(%rip), %rax
        pushq   %rax            /* the return address that ends backtraces */
        jmp     *%r8
        .cfi_endproc
        .size   cosync__ctx_start, .-cosync__ctx_start

/*
 * The first resume of a context built by cosync__ctx_prepare (ctx.h): the
 * frame has been popped, rbp holds the argument and the entry function
 * sits at (%rsp), where cosync__ctx_root takes its place.
 */
        .globl  cosync__ctx_trampoline
        .hidden cosync__ctx_trampoline
        .type   cosync__ctx_trampoline, @function
        .p2align 4
cosync__ctx_trampoline:
        .cfi_startproc
        .cfi_undefined rip
        movq    %rbp, %rdi
        xorl    %ebp, %ebp
        movq    (%rsp), %rax
        leaq    cosync__ctx_root(%rip), %rcx
        movq    %rcx, (%rsp)
        jmp     *%rax
        .cfi_endproc
        .size   cosync__ctx_trampoline, .-cosync__ctx_trampoline

/*
 * The return address of every task's first frame. Nothing returns to it
 * (a task's entry never returns); it is there so that a debugger's
 * backtrace of a task ends at a frame whose caller is undefined, instead
 * of at a null address that it then tries to read. The unwinder looks up
 * the byte before a return address: the nop.
 */
        .globl  cosync__ctx_root
        .hidden cosync__ctx_root
        .type   cosync__ctx_task_root, @function
        .p2align 4
cosync__ctx_task_root:
        .cfi_startproc
        .cfi_undefined rip
        nop
cosync__ctx_root:
        ud2
        .cfi_endproc
        .size   cosync__ctx_task_root, .-cosync__ctx_task_root

        .section .note.GNU-stack,"",@progbits
