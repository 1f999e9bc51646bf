/* Entry points of the tier-1 test guest.
 *   _start64: the 64-bit Linux boot protocol entry (vessel): long mode,
 *             paging on, boot_params in %rsi.
 *   _start32: the PVH entry (vessel with an ELF32 image, QEMU): 32-bit
 *             protected mode, paging off, hvm_start_info in %ebx.
 *   trampoline: 16-bit AP start-up code, copied to 0x10000 by the BSP. */
#define STACK_SIZE 16384

    .section .note.pvh, "a"
    .balign 4
    .long 4              /* namesz */
    .long 4              /* descsz */
    .long 18             /* XEN_ELFNOTE_PHYS32_ENTRY */
    .asciz "Xen"
    .long _start32

    .section .text.entry, "ax"
    .code64
    .globl _start64
_start64:
    cli
    lea bsp_stack_top(%rip), %rsp
    mov %rsi, %rdi          /* boot_params */
    xor %esi, %esi          /* no PVH start info */
    call guest_main
1:  hlt
    jmp 1b

    .code32
    .globl _start32
_start32:
    cli
    mov %ebx, %esi          /* keep the start info */
    /* Identity map the low 4 GiB with 2 MiB pages. */
    mov $pvh_pd, %edi
    xor %eax, %eax
    mov $0x83, %eax         /* present, writable, 2 MiB */
    xor %edx, %edx
    mov $2048, %ecx
2:  mov %eax, (%edi)
    mov %edx, 4(%edi)
    add $0x200000, %eax
    adc $0, %edx
    add $8, %edi
    loop 2b
    mov $pvh_pdpt, %edi
    mov $pvh_pd, %eax
    or $3, %eax
    mov $4, %ecx
3:  mov %eax, (%edi)
    movl $0, 4(%edi)
    add $0x1000, %eax
    add $8, %edi
    loop 3b
    mov $pvh_pml4, %edi
    mov $pvh_pdpt, %eax
    or $3, %eax
    mov %eax, (%edi)
    mov $pvh_pml4, %eax
    mov %eax, %cr3
    mov %cr4, %eax
    or $0x20, %eax          /* PAE */
    mov %eax, %cr4
    mov $0xc0000080, %ecx   /* EFER.LME */
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax    /* PG | PE */
    mov %eax, %cr0
    lgdt gdt_ptr
    ljmp $0x08, $pvh_long
    .code64
pvh_long:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    lea bsp_stack_top(%rip), %rsp
    xor %edi, %edi          /* no boot_params */
    /* %esi: start info */
    call guest_main
4:  hlt
    jmp 4b

    /* AP entry in long mode, from the trampoline. */
    .globl ap_entry64
ap_entry64:
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov $1, %eax
    lock xadd %eax, ap_next(%rip)
    /* stack = ap_stacks + (index+1) * 4096 */
    inc %eax
    shl $12, %eax
    lea ap_stacks(%rip), %rsp
    add %rax, %rsp
    call ap_main
5:  hlt
    jmp 5b

    /* 16-bit AP trampoline; runs at 0x10000 (SIPI vector 0x10) with
     * CS = 0x1000, so data is addressed relative to its start. */
    .code16
    .globl trampoline_start, trampoline_end, trampoline_cr3
trampoline_start:
    cli
    mov %cs, %ax
    mov %ax, %ds
    lgdtl (tramp_gdt_ptr - trampoline_start)
    mov %cr4, %eax
    or $0x20, %eax
    mov %eax, %cr4
    movl (trampoline_cr3 - trampoline_start), %eax
    mov %eax, %cr3
    mov $0xc0000080, %ecx
    rdmsr
    or $0x100, %eax
    wrmsr
    mov %cr0, %eax
    or $0x80000001, %eax
    mov %eax, %cr0
    ljmpl $0x08, $ap_entry64
    .balign 4
trampoline_cr3:
    .long 0
tramp_gdt_ptr:
    .word gdt_end - gdt - 1
    .long gdt
trampoline_end:

    .code64
    .section .data
    .balign 16
gdt:
    .quad 0
    .quad 0x00af9b000000ffff    /* 0x08: 64-bit code */
    .quad 0x00cf93000000ffff    /* 0x10: data */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
    .globl ap_next
ap_next:
    .long 0

    .section .bss
    .balign 4096
pvh_pml4: .skip 4096
pvh_pdpt: .skip 4096
pvh_pd: .skip 4 * 4096
    .globl ap_stacks
ap_stacks: .skip 65 * 4096
bsp_stack: .skip STACK_SIZE
bsp_stack_top:
