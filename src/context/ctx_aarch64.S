/*
 * ctx_aarch64.S - the context switch for AArch64 (Linux, AAPCS64).
 *
 * A suspended context is a 176-byte frame on its own stack; cosync__ctx.sp
 * points at it:
 *
 *     sp +   0  x19 x20        sp +  96  d8  d9
 *     sp +  16  x21 x22        sp + 112  d10 d11
 *     sp +  32  x23 x24        sp + 128  d12 d13
 *     sp +  48  x25 x26        sp + 144  d14 d15
 *     sp +  64  x27 x28        sp + 160  fpcr, (padding)
 *     sp +  80  x29 x30
 *
 * That is everything AAPCS64 makes callee-saved: x19-x29, the low halves
 * of v8-v15, and the FPCR (rounding mode and the other FP control bits,
 * which are per thread of execution, hence per context). The FPSR (the
 * sticky status flags) is not callee-saved and is left alone. x30 (the
 * link register) is the resume address: a context resumes with `br x30`,
 * an indirect branch, never `ret`, so that the return-stack predictor is
 * not trained on a return to another stack. sp stays 16-byte aligned at
 * every instruction.
 *
 * Built with branch protection (-mbranch-protection, which defines
 * __ARM_FEATURE_BTI_DEFAULT / __ARM_FEATURE_PAC_DEFAULT), the file says so
 * in a GNU property note, or the linker would leave the whole program
 * unprotected; and then it keeps BTI's rules: each function starts with a
 * landing pad, a task's entry is reached through x16 (a `br` there takes
 * a landing pad `bti c`, which every C function has then), and a context
 * resumes with `ret`, the one indirect branch BTI lets reach the point
 * after a `bl`, which has no landing pad. Return addresses stay unsigned:
 * PAC signs them within a function's frame, and the switch touches none.
 *
 * The frame, not a register, holds the return address, so a context can
 * only be resumed once per save: cosync__ctx.sp is stale after resuming.
 */

#define FRAME_SIZE 176

#if defined(__ARM_FEATURE_BTI_DEFAULT) && __ARM_FEATURE_BTI_DEFAULT
#define LANDING_PAD bti c
#define RESUME ret
#define GNU_PROPERTY_BTI 1
#else
#define LANDING_PAD
#define RESUME br x30
#define GNU_PROPERTY_BTI 0
#endif
#if defined(__ARM_FEATURE_PAC_DEFAULT) && __ARM_FEATURE_PAC_DEFAULT
#define GNU_PROPERTY_PAC 2
#else
#define GNU_PROPERTY_PAC 0
#endif

/* Push the callee-saved state onto the running stack (sp -= FRAME_SIZE). */
.macro SAVE_FRAME
    sub     sp, sp, #FRAME_SIZE
    .cfi_adjust_cfa_offset FRAME_SIZE
    stp     x19, x20, [sp, #0]
    stp     x21, x22, [sp, #16]
    stp     x23, x24, [sp, #32]
    stp     x25, x26, [sp, #48]
    stp     x27, x28, [sp, #64]
    stp     x29, x30, [sp, #80]
    .cfi_rel_offset x19, 0
    .cfi_rel_offset x20, 8
    .cfi_rel_offset x21, 16
    .cfi_rel_offset x22, 24
    .cfi_rel_offset x23, 32
    .cfi_rel_offset x24, 40
    .cfi_rel_offset x25, 48
    .cfi_rel_offset x26, 56
    .cfi_rel_offset x27, 64
    .cfi_rel_offset x28, 72
    .cfi_rel_offset x29, 80
    .cfi_rel_offset x30, 88
    stp     d8, d9, [sp, #96]
    stp     d10, d11, [sp, #112]
    stp     d12, d13, [sp, #128]
    stp     d14, d15, [sp, #144]
    mrs     x9, fpcr
    str     x9, [sp, #160]
.endm

/*
 * Pop a frame saved by SAVE_FRAME from the stack whose saved sp is in
 * \reg, and resume it. The FPCR is written only when it differs: writing
 * it can be far slower than reading it on some cores.
 */
.macro RESTORE_FRAME_AND_RESUME reg
    mov     sp, \reg
    ldr     x10, [sp, #160]
    mrs     x9, fpcr
    cmp     x9, x10
    b.eq    1f
    msr     fpcr, x10
1:
    ldp     x19, x20, [sp, #0]
    ldp     x21, x22, [sp, #16]
    ldp     x23, x24, [sp, #32]
    ldp     x25, x26, [sp, #48]
    ldp     x27, x28, [sp, #64]
    ldp     x29, x30, [sp, #80]
    ldp     d8, d9, [sp, #96]
    ldp     d10, d11, [sp, #112]
    ldp     d12, d13, [sp, #128]
    ldp     d14, d15, [sp, #144]
    add     sp, sp, #FRAME_SIZE
    RESUME
.endm

    .text

/* void cosync__ctx_switch(cosync__ctx *from [x0], cosync__ctx *to [x1]) */
    .globl  cosync__ctx_switch
    .hidden cosync__ctx_switch
    .type   cosync__ctx_switch, %function
    .p2align 4
cosync__ctx_switch:
    .cfi_startproc
    LANDING_PAD
    SAVE_FRAME
    mov     x9, sp
    str     x9, [x0]
    ldr     x9, [x1]
    /* From here on the frame at sp is @to's, with the same layout, so the
     * CFI above still describes it. */
    RESTORE_FRAME_AND_RESUME x9
    .cfi_endproc
    .size   cosync__ctx_switch, . - cosync__ctx_switch

/* void cosync__ctx_jump(cosync__ctx *to [x0]) -- noreturn */
    .globl  cosync__ctx_jump
    .hidden cosync__ctx_jump
    .type   cosync__ctx_jump, %function
    .p2align 4
cosync__ctx_jump:
    .cfi_startproc
    LANDING_PAD
    ldr     x9, [x0]
    RESTORE_FRAME_AND_RESUME x9
    .cfi_endproc
    .size   cosync__ctx_jump, . - cosync__ctx_jump

/*
 * void cosync__ctx_start(cosync__ctx *from [x0], cosync__ctx *ctx [x1],
 *                        void *top [x2], size_t size [x3],
 *                        cosync__ctx_entry entry [x4], void *arg [x5])
 *
 * With from == NULL, top may be the top of the stack this runs on: nothing
 * is written to memory on that path, sp moves to top first. @ctx and
 * @size are unused here (the ucontext backend needs them).
 */
    .globl  cosync__ctx_start
    .hidden cosync__ctx_start
    .type   cosync__ctx_start, %function
    .p2align 4
cosync__ctx_start:
    .cfi_startproc
    LANDING_PAD
    cbz     x0, 2f
    .cfi_remember_state
    SAVE_FRAME
    mov     x9, sp
    str     x9, [x0]
    .cfi_restore_state
2:
    and     x2, x2, #~15
    mov     sp, x2
    /* The new stack has no caller: end the unwinder's walk here, and in
     * the entry's frame at cosync__ctx_task_root. */
    .cfi_undefined x30
    mov     x29, #0
    adr     x30, .Lroot
    mov     x0, x5
    mov     x16, x4
    br      x16
    .cfi_endproc
    .size   cosync__ctx_start, . - cosync__ctx_start

/*
 * The return address of every task's first frame. Nothing returns to it
 * (a task's entry never returns); it is there so that a debugger's
 * backtrace of a task ends at a frame whose caller is undefined, instead
 * of at a null address. The unwinder looks up the byte before a return
 * address: the nop.
 */
    .type   cosync__ctx_task_root, %function
    .p2align 2
cosync__ctx_task_root:
    .cfi_startproc
    .cfi_undefined x30
    nop
.Lroot:
    brk     #0
    .cfi_endproc
    .size   cosync__ctx_task_root, . - cosync__ctx_task_root

    .section .note.GNU-stack, "", %progbits

#if GNU_PROPERTY_BTI || GNU_PROPERTY_PAC
/* GNU_PROPERTY_AARCH64_FEATURE_1_AND: what this object keeps to */
    .pushsection .note.gnu.property, "a"
    .balign 8
    .long   4                       /* name size */
    .long   16                      /* descriptor size */
    .long   5                       /* NT_GNU_PROPERTY_TYPE_0 */
    .asciz  "GNU"
    .long   0xc0000000              /* GNU_PROPERTY_AARCH64_FEATURE_1_AND */
    .long   4
    .long   GNU_PROPERTY_BTI | GNU_PROPERTY_PAC
    .long   0                       /* padding to 8 bytes */
    .popsection
#endif
