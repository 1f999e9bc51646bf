/* Signals for user-mode emulation: rt_sigaction/rt_sigprocmask state,
 * signals a program sends itself (raise, abort, kill(getpid())), and
 * synchronous faults (SIGILL, SIGSEGV, SIGBUS, SIGTRAP) delivered to the
 * program's handler on a Linux riscv64 rt_sigframe, returning through a
 * trampoline that calls rt_sigreturn. Default actions terminate the program
 * (128 + signal) or ignore, as Linux does. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "riscv/hart.h"
#include "riscv/user/emu.h"

#define SA_SIGINFO_ 4u
#define SA_ONSTACK_ 0x08000000u
#define SA_RESTART_ 0x10000000u
#define SA_NODEFER_ 0x40000000u
#define SA_RESETHAND_ 0x80000000u

/* Linux riscv64 signal frame (arch/riscv/kernel/signal.c) */
struct rv_ucontext {
    uint64_t uc_flags, uc_link;
    uint64_t ss_sp;
    int32_t ss_flags, ss_pad;
    uint64_t ss_size;
    uint64_t uc_sigmask;
    uint8_t unused[120];
    uint64_t regs[32] __attribute__((aligned(16))); /* sc_regs: pc, then x1..x31 */
    uint64_t fregs[64] __attribute__((aligned(16)));
    uint32_t fcsr, reserved[3];
};

struct rv_sigframe {
    uint8_t info[128];
    struct rv_ucontext uc;
};

static bool default_ignores(int sig)
{
    return sig == SIGCHLD || sig == SIGURG || sig == SIGWINCH || sig == SIGCONT;
}

static void terminate(struct rv_user *u, int sig, const char *why)
{
    fflush(stdout);
    if (why)
        fprintf(stderr, "vessel emu: %s\n", why);
    else
        fprintf(stderr, "vessel emu: program killed by signal %d (%s)\n", sig, strsignal(sig));
    rv_user_exit_group(u, 128 + sig);
}

/* Build the frame and enter the handler. false if the frame cannot be
 * written (the program then dies of SIGSEGV, like Linux). */
static bool enter_handler(struct rv_user *u, int sig, uint64_t pc, int code, uint64_t addr)
{
    struct rv_hart *h = &u->hart;
    const struct rv_sigaction *sa = &u->sigactions[sig];
    uint64_t sp = (h->x[2] - sizeof(struct rv_sigframe)) & ~15ull;
    struct rv_sigframe *f = rv_user_ptr(u, sp, sizeof(*f));
    if (!f)
        return false;
    memset(f, 0, sizeof(*f));
    int32_t *si = (int32_t *)f->info;
    si[0] = sig;
    si[2] = code;
    memcpy(f->info + 16, &addr, 8); /* si_addr for faults */
    f->uc.uc_sigmask = u->sigmask;
    f->uc.regs[0] = pc;
    for (int i = 1; i < 32; i++)
        f->uc.regs[i] = h->x[i];
    for (int i = 0; i < 32; i++)
        f->uc.fregs[i] = h->f[i];
    f->uc.fcsr = h->fflags | (h->frm << 5);
    uint64_t block = sa->mask;
    if (!(sa->flags & SA_NODEFER_))
        block |= 1ull << (sig - 1);
    u->sigmask |= block & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
    h->x[1] = RV_USER_SIGTRAMP;
    h->x[2] = sp;
    h->x[10] = (uint64_t)sig;
    h->x[11] = sp + offsetof(struct rv_sigframe, info);
    h->x[12] = sp + offsetof(struct rv_sigframe, uc);
    h->pc = sa->handler;
    if (sa->flags & SA_RESETHAND_)
        u->sigactions[sig].handler = 0;
    return true;
}

void rv_user_signal(struct rv_user *u, int sig, uint64_t pc, int code, uint64_t addr)
{
    if (sig <= 0 || sig > 64)
        return;
    const struct rv_sigaction *sa = &u->sigactions[sig];
    bool sync = code != 0; /* a fault: cannot be ignored or blocked */
    if (sa->handler == 1 /* SIG_IGN */ && !sync)
        return;
    if (sa->handler == 0 || sa->handler == 1) {
        if (!sync && default_ignores(sig))
            return;
        terminate(u, sig, NULL);
        return;
    }
    if (!sync && (u->sigmask & (1ull << (sig - 1)))) {
        u->sigpending |= 1ull << (sig - 1);
        return;
    }
    if (sync && (u->sigmask & (1ull << (sig - 1)))) {
        terminate(u, sig, NULL); /* a blocked fault kills, as on Linux */
        return;
    }
    if (!enter_handler(u, sig, pc, code, addr))
        terminate(u, SIGSEGV, "cannot write a signal frame: program killed by SIGSEGV");
}

void rv_user_deliver_pending(struct rv_user *u)
{
    uint64_t ready = u->sigpending & ~u->sigmask;
    if (!ready || u->exited)
        return;
    int sig = __builtin_ctzll(ready) + 1;
    u->sigpending &= ~(1ull << (sig - 1));
    rv_user_signal(u, sig, u->hart.pc, 0, 0);
}

long rv_user_sigreturn(struct rv_user *u)
{
    struct rv_hart *h = &u->hart;
    const struct rv_sigframe *f = rv_user_ptr(u, h->x[2], sizeof(*f));
    if (!f) {
        terminate(u, SIGSEGV, "bad signal frame: program killed by SIGSEGV");
        return 0;
    }
    for (int i = 1; i < 32; i++)
        h->x[i] = f->uc.regs[i];
    for (int i = 0; i < 32; i++)
        h->f[i] = f->uc.fregs[i];
    h->fflags = f->uc.fcsr & 0x1f;
    h->frm = (f->uc.fcsr >> 5) & 7;
    h->pc = f->uc.regs[0];
    u->sigmask = f->uc.uc_sigmask & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
    return (long)h->x[10];
}

long rv_user_sigaction(struct rv_user *u, int sig, uint64_t act, uint64_t oact)
{
    if (sig <= 0 || sig > 64 || ((sig == SIGKILL || sig == SIGSTOP) && act))
        return -22; /* EINVAL */
    struct rv_sigaction *sa = &u->sigactions[sig];
    if (oact) {
        uint64_t *o = rv_user_ptr(u, oact, 24);
        if (!o)
            return -14; /* EFAULT */
        o[0] = sa->handler;
        o[1] = sa->flags;
        o[2] = sa->mask;
    }
    if (act) {
        const uint64_t *a = rv_user_ptr(u, act, 24);
        if (!a)
            return -14;
        sa->handler = a[0];
        sa->flags = a[1];
        sa->mask = a[2];
    }
    return 0;
}

long rv_user_sigprocmask(struct rv_user *u, int how, uint64_t set, uint64_t oset)
{
    if (oset) {
        uint64_t *o = rv_user_ptr(u, oset, 8);
        if (!o)
            return -14;
        *o = u->sigmask;
    }
    if (set) {
        const uint64_t *s = rv_user_ptr(u, set, 8);
        if (!s)
            return -14;
        uint64_t v = *s & ~((1ull << (SIGKILL - 1)) | (1ull << (SIGSTOP - 1)));
        if (how == SIG_BLOCK)
            u->sigmask |= v;
        else if (how == SIG_UNBLOCK)
            u->sigmask &= ~v;
        else if (how == SIG_SETMASK)
            u->sigmask = v;
        else
            return -22;
    }
    return 0;
}

void rv_user_install_trampoline(struct rv_user *u)
{
    /* li a7, 139 (rt_sigreturn); ecall */
    static const uint32_t code[] = {0x08b00893, 0x00000073};
    memcpy(rv_user_ptr(u, RV_USER_SIGTRAMP, sizeof(code)), code, sizeof(code));
}
