    .section .text.start, "ax"
    .globl _start
_start:
    la   sp, stack_top
    la   t0, trap
    csrw stvec, t0
    call hostile_main
1:  wfi
    j    1b

/* An access the board refuses (a fault delegated to S-mode) is skipped:
 * the next instruction, 2 or 4 bytes on. */
    .align 4
trap:
    addi sp, sp, -32
    sd   t0, 0(sp)
    sd   t1, 8(sp)
    csrr t0, sepc
    lhu  t1, 0(t0)
    andi t1, t1, 3
    addi t0, t0, 2
    addi t1, t1, -3
    bnez t1, 2f
    addi t0, t0, 2
2:  csrw sepc, t0
    ld   t0, 0(sp)
    ld   t1, 8(sp)
    addi sp, sp, 32
    sret

    .bss
    .align 12
    .space 16384
stack_top:
