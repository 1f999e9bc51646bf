/* The kernel of the KVM row's guest: just enough to run the workload in
 * ring 3 on vessel's x86 machine. vessel enters _start64 in long mode with
 * boot_params in %rsi. It loads its own GDT and page tables (the low 4 GiB
 * identity-mapped with 2 MiB user pages, all static data), enables SSE and
 * SYSCALL, and drops to ring 3 at _ustart (bare_libc.c). Its system calls
 * are write (to COM1), getppid (0), exit (reboot through 0xcf9, which
 * `vessel vm run --no-reboot` turns into exit status 0) and ENOSYS.
 *
 * Why ring 3: on a software KVM (PVM) guest kernel-mode code is emulated
 * instruction by instruction while user mode runs natively, and on hardware
 * KVM both run natively; the workload, like a program in a Linux guest, is
 * user code, and its system calls cross into the guest kernel. The kernel is
 * kept to a few hundred instructions so its own cost stays out of the way. */
    .section .text.entry, "ax"
    .code64
    .globl _start64
_start64:
    cli
    mov %rsi, %r15                  /* boot_params */
    lgdt gdt_ptr(%rip)
    mov $0x10, %eax
    mov %eax, %ds
    mov %eax, %es
    mov %eax, %ss
    mov %eax, %fs
    mov %eax, %gs
    lea 1f(%rip), %rax
    push $0x08
    push %rax
    lretq
1:  lea pml4(%rip), %rax
    mov %rax, %cr3
    mov %cr0, %rax                  /* SSE: EM and TS off, MP on */
    and $~0xc, %rax
    or $0x2, %rax
    mov %rax, %cr0
    mov %cr4, %rax                  /* OSFXSR | OSXMMEXCPT */
    or $0x600, %rax
    mov %rax, %cr4
    mov $0xc0000080, %ecx           /* EFER.SCE */
    rdmsr
    or $1, %eax
    wrmsr
    mov $0xc0000081, %ecx           /* STAR: kernel CS 0x08; sysret base 0x10 */
    xor %eax, %eax
    mov $0x00100008, %edx
    wrmsr
    mov $0xc0000082, %ecx           /* LSTAR */
    lea syscall_entry(%rip), %rax
    mov %rax, %rdx
    shr $32, %rdx
    wrmsr
    mov $0xc0000084, %ecx           /* FMASK: IF, TF, DF, AC off in the kernel */
    mov $0x47700, %eax
    xor %edx, %edx
    wrmsr
    lea user_stack_top(%rip), %rsp
    mov %r15, %rdi
    call bare_wants_ring0           /* "ring=0" on the command line */
    test %eax, %eax
    jz 1f
    mov %r15, %rdi
    mov $1, %esi
    call _ustart                    /* never returns */
1:  mov %r15, %rdi
    xor %esi, %esi
    sub $8, %rsp                    /* as if called: rsp + 8 16-byte aligned (SSE spills) */
    lea _ustart(%rip), %rcx
    mov $0x2, %r11                  /* user RFLAGS: interrupts stay off */
    sysretq

/* SYSCALL from ring 3. rax: number; rdi, rsi, rdx: arguments; rcx, r11:
 * the return RIP and RFLAGS */
syscall_entry:
    mov %rsp, user_rsp(%rip)
    lea kernel_stack_top(%rip), %rsp
    push %rcx
    push %r11
    call dispatch
    pop %r11
    pop %rcx
    mov user_rsp(%rip), %rsp
    sysretq

/* long bare_kcall(nr, a, b, c): a system call as a function call, for the
 * workload run in ring 0 (ring=0) */
    .globl bare_kcall
bare_kcall:
    mov %rdi, %rax
    mov %rsi, %rdi
    mov %rdx, %rsi
    mov %rcx, %rdx
    jmp dispatch

dispatch:
    cmp $1, %rax
    je sys_write
    cmp $110, %rax
    je sys_getppid
    cmp $60, %rax
    je sys_exit
    cmp $231, %rax
    je sys_exit
    mov $-38, %rax                  /* ENOSYS */
    jmp sys_return
sys_write:
    mov %rdx, %r8                   /* bytes left */
    mov %rdx, %r9                   /* the count, returned */
    mov $0x3f8, %dx                 /* COM1: vessel's UART sends at once */
2:  test %r8, %r8
    jz 3f
    lodsb
    outb %al, %dx
    dec %r8
    jmp 2b
3:  mov %r9, %rax
    jmp sys_return
sys_getppid:
    xor %eax, %eax
sys_return:
    ret
sys_exit:
    mov $0xcf9, %dx
    mov $0x06, %al
    outb %al, %dx
4:  hlt
    jmp 4b

    .section .data
    .balign 16
gdt:
    .quad 0
    .quad 0x00af9b000000ffff        /* 0x08: kernel code, 64-bit */
    .quad 0x00cf93000000ffff        /* 0x10: kernel data */
    .quad 0x00cff3000000ffff        /* 0x18: user data (DPL 3) */
    .quad 0x00affb000000ffff        /* 0x20: user code, 64-bit (DPL 3) */
gdt_end:
gdt_ptr:
    .word gdt_end - gdt - 1
    .quad gdt
user_rsp:
    .quad 0

    /* present, writable, user; PD entries are 2 MiB pages */
    .balign 4096
pml4:
    .quad pdpt + 0x7
    .fill 511, 8, 0
pdpt:
    .quad pd + 0x7, pd + 0x1007, pd + 0x2007, pd + 0x3007
    .fill 508, 8, 0
pd:
    .set page, 0
    .rept 2048
    .quad (page << 21) | 0x87
    .set page, page + 1
    .endr

    .section .bss
    .balign 4096
kernel_stack: .skip 8192
kernel_stack_top:
user_stack: .skip 65536
user_stack_top:
    .section .note.GNU-stack, "", @progbits
