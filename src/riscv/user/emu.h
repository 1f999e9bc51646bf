/* User-mode emulation: run a static riscv64 Linux ELF on the host, one hart
 * in U-mode, its ECALLs translated to host system calls (like
 * qemu-riscv64). The guest address space is one host mapping; guest
 * virtual addresses are offsets into it (no page tables). */
#ifndef VESSEL_RISCV_USER_EMU_H
#define VESSEL_RISCV_USER_EMU_H

#include <stdbool.h>
#include <stddef.h>
#include <pthread.h>
#include <stdint.h>

#include "riscv/hart.h"
#include "util/err.h"

/* Guest layout (within [RV_USER_BASE, RV_USER_END)). */
#define RV_USER_BASE 0x10000ull /* below: unmapped, so NULL dereferences fault */
#define RV_USER_END 0x100000000ull
#define RV_USER_MMAP_START 0x60000000ull
#define RV_USER_MMAP_END 0xf0000000ull
#define RV_USER_STACK_TOP 0xffff0000ull
#define RV_USER_SIGTRAMP 0xffff8000ull /* rt_sigreturn trampoline */

struct rv_sigaction {
    uint64_t handler, flags, mask;
};

/* A guest thread other than the first (clone with CLONE_VM|CLONE_THREAD):
 * its own hart on its own host thread, sharing the address space. */
struct rv_user_thread {
    struct rv_hart hart;
    struct rv_user *u;
    uint64_t clear_tid; /* CLONE_CHILD_CLEARTID / set_tid_address */
    int tid;
    bool exited;
    pthread_t thread;
    struct rv_user_thread *next;
};

struct rv_user {
    struct rv_hart hart; /* the first thread */
    uint8_t *mem;        /* host mapping of guest address RV_USER_BASE */
    uint64_t brk_start, brk_cur, brk_limit;
    uint8_t *mmap_used; /* one byte per page of the mmap area */
    char exe_path[4096];
    bool exited;
    int exit_status;
    bool trace_syscalls;
    struct rv_sigaction sigactions[65];
    uint64_t sigmask, sigpending; /* bit n-1 = signal n */
    pthread_mutex_t lock;         /* address space and thread list */
    struct rv_user_thread *threads;
    int next_tid;
    uint64_t main_clear_tid;
};

struct rv_user_opts {
    bool trace_syscalls; /* log each system call on stderr */
    enum rv_accel accel; /* RV_ACCEL_INTERP (0) or RV_ACCEL_JIT */
};

/* Run path with argv (argv[0] included) and envp. On normal termination
 * returns 0 and sets *status to the exit status (or 128 + signal for a
 * fatal fault, with a message on stderr describing it). -1 + err if the
 * program could not be started. */
int rv_user_run(const char *path, char **argv, char **envp, const struct rv_user_opts *opts,
                int *status, vs_err *err);

/* bare.c: run a bare-metal M-mode ELF on the test board; *status is 0 if
 * it reported pass through tohost, 1 fail, 2 out of instructions
 * (max_insns, 0 = unlimited), 3 hart stopped (message on stderr). */
int rv_bare_run(const char *path, uint64_t max_insns, enum rv_accel accel, int *status,
                vs_err *err);
/* The same program translated and interpreted in lock-step (see bare.c);
 * *status as rv_bare_run's, or 4 if the two differ (described on stderr). */
int rv_bare_diff(const char *path, uint64_t max_insns, int *status, vs_err *err);

/* signal.c */
/* Raise sig at pc. code != 0 marks a synchronous fault (si_code, with the
 * faulting address); such a signal cannot be ignored or blocked. */
void rv_user_signal(struct rv_user *u, int sig, uint64_t pc, int code, uint64_t addr);
void rv_user_deliver_pending(struct rv_user *u);
long rv_user_sigreturn(struct rv_user *u);
long rv_user_sigaction(struct rv_user *u, int sig, uint64_t act, uint64_t oact);
long rv_user_sigprocmask(struct rv_user *u, int how, uint64_t set, uint64_t oset);
void rv_user_install_trampoline(struct rv_user *u);

/* syscall.c */
bool rv_user_syscall(void *opaque, struct rv_hart *h);
/* thread.c */
long rv_user_clone(struct rv_user *u, struct rv_hart *parent, const uint64_t *a);
/* The calling thread's record, or NULL for the first thread. */
struct rv_user_thread *rv_user_thread_of(struct rv_user *u, struct rv_hart *h);
/* exit(): only this thread ends (the first thread's exit ends the process) */
void rv_user_thread_exit(struct rv_user *u, struct rv_hart *h, int status);
/* exit_group() or a fatal signal: stop every hart */
void rv_user_exit_group(struct rv_user *u, int status);
/* Host pointer for guest [addr, addr+len), or NULL if outside the space. */
void *rv_user_ptr(struct rv_user *u, uint64_t addr, uint64_t len);

#endif
