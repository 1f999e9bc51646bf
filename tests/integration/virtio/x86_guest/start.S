/* Entry and interrupt stubs of the tier-1 virtio-pci test guest (vguest.c):
 * vessel enters _start64 in long mode with paging on (identity map of the
 * low 4 GiB) and boot_params in %rsi. */
    .section .text.entry, "ax"
    .code64
    .globl _start64
_start64:
    cli
    lea stack_top(%rip), %rsp
    mov %rsi, %rdi
    call vguest_main
1:  hlt
    jmp 1b

/* One stub per MSI vector the guest programs; each pushes its number. */
    .macro STUB v
    .globl isr_\v
isr_\v:
    push $\v
    jmp isr_common
    .endm
    STUB 0x40
    STUB 0x41
    STUB 0x42
    STUB 0x43

isr_common:
    push %rax
    push %rcx
    push %rdx
    push %rsi
    push %rdi
    push %r8
    push %r9
    push %r10
    push %r11
    mov 72(%rsp), %rdi
    sub $8, %rsp            /* 16-byte alignment for the call */
    call on_irq
    add $8, %rsp
    pop %r11
    pop %r10
    pop %r9
    pop %r8
    pop %rdi
    pop %rsi
    pop %rdx
    pop %rcx
    pop %rax
    add $8, %rsp
    iretq

    .section .bss
    .balign 16
    .space 16384
stack_top:
    .section .note.GNU-stack, "", @progbits
