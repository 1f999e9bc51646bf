    .globl _start
_start:
    li   s1, 0
    la   s0, banner
    call puts
loop:
    la   s0, msg
    call puts
    mv   a1, s1
    call puthex
    li   a0, 10
    li   a7, 1
    ecall
    li   t0, 3000000
1:  addi t0, t0, -1
    bnez t0, 1b
    li   a7, 2          /* legacy console_getchar: -1 when nothing */
    ecall
    li   t1, 'x'
    bne  a0, t1, 2f
    li   s1, 0
    la   s0, broken
    call puts
2:  addi s1, s1, 1
    j    loop

puts:                   /* s0: string */
    mv   s3, ra
3:  lbu  a0, 0(s0)
    beqz a0, 4f
    li   a7, 1
    ecall
    addi s0, s0, 1
    j    3b
4:  mv   ra, s3
    ret

puthex:                 /* a1: value, 8 hex digits */
    li   s4, 28
5:  srl  a0, a1, s4
    andi a0, a0, 15
    li   t2, 10
    blt  a0, t2, 6f
    addi a0, a0, 39
6:  addi a0, a0, 48
    li   a7, 1
    ecall
    addi s4, s4, -4
    bgez s4, 5b
    ret

banner: .asciz "counter guest up\n"
msg:    .asciz "count "
broken: .asciz "guest broken: counter reset\n"
