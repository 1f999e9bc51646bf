/* Loading a static riscv64 ELF, building the initial stack (argv, envp,
 * auxv) and running the hart until the program exits or faults. */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "riscv/jit.h"
#include "riscv/trap.h"
#include "riscv/loader.h"
#include "riscv/user/emu.h"
#include "util/cleanup.h"
#include "util/io.h"

#ifndef EM_RISCV
#define EM_RISCV 243
#endif

void *rv_user_ptr(struct rv_user *u, uint64_t addr, uint64_t len)
{
    if (addr < RV_USER_BASE || addr > RV_USER_END || len > RV_USER_END - addr)
        return NULL;
    return u->mem + (addr - RV_USER_BASE);
}

static uint8_t *user_place(void *ctx, uint64_t va, uint64_t len)
{
    if (va > RV_USER_MMAP_START || len > RV_USER_MMAP_START - va)
        return NULL;
    return rv_user_ptr(ctx, va, len);
}

static int load_elf(struct rv_user *u, const char *path, uint64_t *entry, uint64_t *phdr_va,
                    unsigned *phnum, vs_err *err)
{
    cleanup_free uint8_t *data = NULL;
    size_t len;
    struct rv_elf e;
    if (rv_read_file(path, "program", &data, &len, err) < 0 ||
        rv_elf_parse(&e, data, len, path, "riscv64", err) < 0)
        return -1;
    Elf64_Phdr ph;
    for (unsigned i = 0; i < e.eh.e_phnum; i++) {
        rv_elf_phdr(&e, i, &ph);
        if (ph.p_type == PT_INTERP)
            return vs_error(
                err, ENOEXEC,
                "%s: dynamically linked programs are not supported (build with -static)", path);
    }
    struct rv_elf_target t = {.by_vaddr = true,
                              .bias = e.eh.e_type == ET_DYN ? 0x40000 : 0, /* static-pie */
                              .place = user_place,
                              .ctx = u,
                              .space = "the emulated address space"};
    uint64_t end;
    if (rv_elf_load(&e, &t, path, NULL, &end, err) < 0)
        return -1;
    /* the program headers' address, for the auxiliary vector */
    *phdr_va = 0;
    size_t phsz = (size_t)e.eh.e_phnum * sizeof(Elf64_Phdr);
    for (unsigned i = 0; i < e.eh.e_phnum && !*phdr_va; i++) {
        rv_elf_phdr(&e, i, &ph);
        if (ph.p_type == PT_PHDR)
            *phdr_va = ph.p_vaddr + t.bias;
        else if (ph.p_type == PT_LOAD && ph.p_offset <= e.eh.e_phoff &&
                 e.eh.e_phoff + phsz <= ph.p_offset + ph.p_filesz)
            *phdr_va = ph.p_vaddr + t.bias + (e.eh.e_phoff - ph.p_offset);
    }
    *entry = e.eh.e_entry + t.bias;
    *phnum = e.eh.e_phnum;
    u->brk_start = u->brk_cur = ALIGN_UP(end, 4096ull);
    u->brk_limit = RV_USER_MMAP_START;
    return 0;
}

/* Push bytes onto the guest stack; returns the guest address. */
static uint64_t push(struct rv_user *u, uint64_t *sp, const void *data, size_t len)
{
    *sp -= len;
    void *dst = rv_user_ptr(u, *sp, len); /* always inside the stack area */
    if (dst && len)
        memcpy(dst, data, len);
    return *sp;
}

static int build_stack(struct rv_user *u, char **argv, char **envp, uint64_t entry,
                       uint64_t phdr_va, unsigned phnum, vs_err *err)
{
    uint64_t sp = RV_USER_STACK_TOP;
    size_t argc = 0, envc = 0, total = 0;
    while (argv[argc])
        total += strlen(argv[argc++]) + 1;
    while (envp[envc])
        total += strlen(envp[envc++]) + 1;
    if (total > 1024 * 1024 || argc + envc > 65536)
        return vs_error(err, E2BIG, "argument list too long");
    uint64_t *gargv = calloc(argc + 1, 8), *genv = calloc(envc + 1, 8);
    if (!gargv || !genv) {
        free(gargv);
        free(genv);
        return vs_error(err, ENOMEM, "out of memory");
    }
    uint64_t execfn = push(u, &sp, u->exe_path, strlen(u->exe_path) + 1);
    for (size_t i = envc; i-- > 0;)
        genv[i] = push(u, &sp, envp[i], strlen(envp[i]) + 1);
    for (size_t i = argc; i-- > 0;)
        gargv[i] = push(u, &sp, argv[i], strlen(argv[i]) + 1);
    uint8_t rnd[16];
    if (getrandom(rnd, sizeof(rnd), 0) != sizeof(rnd))
        memset(rnd, 0x5a, sizeof(rnd));
    uint64_t at_random = push(u, &sp, rnd, sizeof(rnd));
    static const char platform[] = "riscv64";
    uint64_t at_platform = push(u, &sp, platform, sizeof(platform));
    sp &= ~15ull;

    uint64_t hwcap = 0;
    for (const char *c = "imafdc"; *c; c++)
        hwcap |= 1ull << (*c - 'a');
    uint64_t auxv[][2] = {
        {AT_PHDR, phdr_va},
        {AT_PHENT, sizeof(Elf64_Phdr)},
        {AT_PHNUM, phnum},
        {AT_PAGESZ, 4096},
        {AT_BASE, 0},
        {AT_FLAGS, 0},
        {AT_ENTRY, entry},
        {AT_UID, getuid()},
        {AT_EUID, geteuid()},
        {AT_GID, getgid()},
        {AT_EGID, getegid()},
        {AT_HWCAP, hwcap},
        {AT_CLKTCK, 100},
        {AT_SECURE, 0},
        {AT_RANDOM, at_random},
        {AT_EXECFN, execfn},
        {AT_PLATFORM, at_platform},
        {AT_NULL, 0},
    };
    size_t words = 1 + argc + 1 + envc + 1 + ARRAY_SIZE(auxv) * 2;
    if (words & 1)
        sp -= 8; /* keep sp 16-byte aligned at argc */
    push(u, &sp, auxv, sizeof(auxv));
    uint64_t zero = 0;
    push(u, &sp, &zero, 8);
    push(u, &sp, genv, envc * 8);
    push(u, &sp, &zero, 8);
    push(u, &sp, gargv, argc * 8);
    uint64_t argc64 = argc;
    push(u, &sp, &argc64, 8);
    free(gargv);
    free(genv);
    u->hart.x[2] = sp;
    return 0;
}

static void report_fault(struct rv_user *u, int *status)
{
    struct rv_hart *h = &u->hart;
    char desc[2048];
    rv_hart_describe(h, desc, sizeof(desc));
    const char *sig;
    int signo;
    switch (h->mcause) {
    case RV_EXC_ILLEGAL:
        sig = "SIGILL (illegal instruction)";
        signo = 4;
        break;
    case RV_EXC_BREAKPOINT:
        sig = "SIGTRAP (breakpoint)";
        signo = 5;
        break;
    case RV_EXC_INSN_MISALIGNED:
    case RV_EXC_LOAD_MISALIGNED:
    case RV_EXC_STORE_MISALIGNED:
        sig = "SIGBUS (misaligned access)";
        signo = 7;
        break;
    default:
        sig = "SIGSEGV (invalid memory access)";
        signo = 11;
        break;
    }
    fprintf(stderr, "vessel emu: program killed by %s at pc %#llx", sig,
            (unsigned long long)h->mepc);
    if (h->mcause == RV_EXC_ILLEGAL)
        fprintf(stderr, ": instruction %#llx\n", (unsigned long long)h->mtval);
    else
        fprintf(stderr, ", address %#llx\n", (unsigned long long)h->mtval);
    if (getenv("VESSEL_EMU_DUMP"))
        fprintf(stderr, "%s", desc);
    *status = 128 + signo;
}

/* A fault the program has a handler for becomes a signal; true if it was
 * delivered (the hart continues in the handler). */
static bool fault_to_signal(struct rv_user *u)
{
    struct rv_hart *h = &u->hart;
    int sig, code;
    switch (h->mcause) {
    case RV_EXC_ILLEGAL:
        sig = SIGILL;
        code = 2; /* ILL_ILLOPN */
        break;
    case RV_EXC_BREAKPOINT:
        sig = SIGTRAP;
        code = 1; /* TRAP_BRKPT */
        break;
    case RV_EXC_INSN_MISALIGNED:
    case RV_EXC_LOAD_MISALIGNED:
    case RV_EXC_STORE_MISALIGNED:
        sig = SIGBUS;
        code = 1; /* BUS_ADRALN */
        break;
    case RV_EXC_INSN_ACCESS:
    case RV_EXC_LOAD_ACCESS:
    case RV_EXC_STORE_ACCESS:
    case RV_EXC_INSN_PAGE:
    case RV_EXC_LOAD_PAGE:
    case RV_EXC_STORE_PAGE:
        sig = SIGSEGV;
        code = 1; /* SEGV_MAPERR */
        break;
    default:
        return false;
    }
    uint64_t handler = u->sigactions[sig].handler;
    if (handler == 0 || handler == 1 || (u->sigmask & (1ull << (sig - 1))))
        return false;
    /* resume the hart (the trap went to M with mtvec 0: undo it) */
    h->fatal = false;
    h->fatal_msg[0] = 0;
    rv_set_priv(h, RV_PRIV_U);
    h->mstatus &= ~(RV_MSTATUS_MPP | RV_MSTATUS_MPIE);
    rv_user_signal(u, sig, h->mepc, code, h->mcause == RV_EXC_ILLEGAL ? h->mepc : h->mtval);
    return !u->exited;
}

int rv_user_run(const char *path, char **argv, char **envp, const struct rv_user_opts *opts,
                int *status, vs_err *err)
{
    struct rv_user *u = calloc(1, sizeof(*u));
    if (!u)
        return vs_error(err, ENOMEM, "out of memory");
    int rc = -1;
    size_t space = RV_USER_END - RV_USER_BASE;
    u->mem = mmap(NULL, space, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                  -1, 0);
    if (u->mem == MAP_FAILED) {
        u->mem = NULL;
        vs_error_errno(err, "reserving the guest address space");
        goto out;
    }
    u->mmap_used = calloc((RV_USER_MMAP_END - RV_USER_MMAP_START) >> 12, 1);
    if (!u->mmap_used) {
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    if (!realpath(path, u->exe_path))
        snprintf(u->exe_path, sizeof(u->exe_path), "%s", path);
    u->trace_syscalls = opts && opts->trace_syscalls;
    pthread_mutex_init(&u->lock, NULL);
    u->next_tid = getpid() + 1;

    struct rv_bus bus = {
        .ram = u->mem,
        .ram_base = RV_USER_BASE,
        .ram_size = space,
        .ecall = rv_user_syscall,
        .opaque = u,
    };
    struct rv_hart *h = &u->hart;
    rv_hart_init(h, 0, &bus);
    if (rv_hart_set_accel(h, opts ? opts->accel : RV_ACCEL_INTERP, err) < 0)
        goto out_hart;
    uint64_t entry = 0, phdr_va = 0;
    unsigned phnum = 0;
    if (load_elf(u, path, &entry, &phdr_va, &phnum, err) < 0 ||
        build_stack(u, argv, envp, entry, phdr_va, phnum, err) < 0)
        goto out_hart;

    /* U-mode, no PMP, no paging; FP on; user counters readable */
    h->pmp_count = 0;
    h->mcounteren = h->scounteren = 7;
    h->mstatus |= 1ull << 13; /* FS = Initial */
    h->mtvec = 0;             /* any trap out of U-mode ends the run */
    h->pc = entry;
    h->x[10] = 0;
    rv_user_install_trampoline(u);
    rv_set_priv(h, RV_PRIV_U);

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        enum rv_stop why = rv_hart_run(h, UINT64_MAX / 2);
        if (u->exited) {
            *status = u->exit_status;
            break;
        }
        if (why == RV_STOP_FATAL && fault_to_signal(u))
            continue;
        if (why == RV_STOP_FATAL) {
            report_fault(u, status);
            break;
        }
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (getenv("VESSEL_EMU_STATS")) {
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        fprintf(stderr, "vessel emu: %llu instructions in %.3f s (%.1f MIPS)\n",
                (unsigned long long)h->minstret, secs,
                secs > 0 ? (double)h->minstret / secs / 1e6 : 0.0);
        if (h->jit) {
            struct rv_jit_stats js;
            rv_jit_get_stats(h, &js);
            fprintf(stderr,
                    "vessel emu: jit: %llu blocks translated, %llu chained, %llu flushes, "
                    "%llu pages invalidated, %llu instructions interpreted\n",
                    (unsigned long long)js.blocks, (unsigned long long)js.chained,
                    (unsigned long long)js.flushes, (unsigned long long)js.invalidations,
                    (unsigned long long)js.fallback);
        }
    }
    rc = 0;
out_hart:
    if (u->threads) {
        /* other guest threads may still be running (or blocked in a futex)
         * until the process exits: stop them and leave their memory alone */
        rv_user_exit_group(u, u->exit_status);
        return rc;
    }
    rv_hart_destroy(h);
out:
    if (u->mem)
        munmap(u->mem, space);
    free(u->mmap_used);
    free(u);
    return rc;
}
