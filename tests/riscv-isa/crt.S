/* Runtime of the bare-metal ISA tests: entry, M- and S-mode trap entry
 * points that save all registers and call handle_mtrap()/handle_strap() in
 * rt.c, and run_in_mode() which calls a function in U- or S-mode and comes
 * back to M-mode when it returns (through an ECALL with a7 = RT_RETURN). */
#define RT_RETURN 0x5e7
#define FRAME 288 /* 32 regs + epc, cause, tval, status */

    .section .text.init
    .globl _start
_start:
    la      sp, _stack_top
    la      t0, mtrap_entry
    csrw    mtvec, t0
    li      t0, (1 << 13)       /* FS = initial */
    csrs    mstatus, t0
    csrwi   fcsr, 0
    call    main
    call    rt_exit
1:  j       1b

    .text
    .macro SAVE_REGS
    addi    sp, sp, -FRAME
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    sd      x\n, (\n*8)(sp)
    .endr
    addi    t0, sp, FRAME
    sd      t0, 16(sp)          /* the interrupted sp */
    .endm

    .macro RESTORE_REGS
    .irp n,1,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24,25,26,27,28,29,30,31
    ld      x\n, (\n*8)(sp)
    .endr
    ld      sp, 16(sp)
    .endm

    .align 4
    .globl mtrap_entry
mtrap_entry:
    /* ECALL with a7 = RT_RETURN from a run_in_mode() function: go back */
    csrw    mscratch, t0
    csrr    t0, mcause
    addi    t0, t0, -8
    srli    t0, t0, 2
    bnez    t0, 1f              /* not an ecall (causes 8, 9, 11) */
    li      t0, RT_RETURN
    bne     a7, t0, 1f
    la      t0, rt_saved_sp
    ld      sp, 0(t0)
    ld      ra, 0(sp)
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11
    ld      s\n, (8+\n*8)(sp)
    .endr
    addi    sp, sp, 112
    ret
1:  csrr    t0, mscratch
    SAVE_REGS
    csrr    t0, mepc
    sd      t0, 256(sp)
    csrr    t0, mcause
    sd      t0, 264(sp)
    csrr    t0, mtval
    sd      t0, 272(sp)
    csrr    t0, mstatus
    sd      t0, 280(sp)
    mv      a0, sp
    call    handle_mtrap
    ld      t0, 256(sp)
    csrw    mepc, t0
    RESTORE_REGS
    mret

    .align 4
    .globl strap_entry
strap_entry:
    /* a run_in_mode(U) function returning while ECALL from U is delegated */
    csrw    sscratch, t0
    csrr    t0, scause
    addi    t0, t0, -8
    bnez    t0, 1f
    li      t0, RT_RETURN
    bne     a7, t0, 1f
    ecall
1:  csrr    t0, sscratch
    SAVE_REGS
    csrr    t0, sepc
    sd      t0, 256(sp)
    csrr    t0, scause
    sd      t0, 264(sp)
    csrr    t0, stval
    sd      t0, 272(sp)
    csrr    t0, sstatus
    sd      t0, 280(sp)
    mv      a0, sp
    call    handle_strap
    ld      t0, 256(sp)
    csrw    sepc, t0
    RESTORE_REGS
    sret

    /* uint64_t run_in_mode(unsigned mode, uint64_t (*fn)(uint64_t), uint64_t arg) */
    .globl run_in_mode
run_in_mode:
    addi    sp, sp, -112
    sd      ra, 0(sp)
    .irp n,0,1,2,3,4,5,6,7,8,9,10,11
    sd      s\n, (8+\n*8)(sp)
    .endr
    la      t0, rt_saved_sp
    sd      sp, 0(t0)
    li      t0, (3 << 11)
    csrc    mstatus, t0
    slli    a0, a0, 11
    csrs    mstatus, a0
    csrw    mepc, a1
    mv      a0, a2
    la      ra, rt_return_stub
    mret

    .globl rt_return_stub
rt_return_stub:
    li      a7, RT_RETURN
    ecall
1:  j       1b

    .data
    .align 3
    .globl rt_saved_sp
rt_saved_sp: .dword 0

    .section .tohost, "aw", @progbits
    .align 6
    .globl tohost
tohost: .dword 0
    .align 6
    .globl fromhost
fromhost: .dword 0
