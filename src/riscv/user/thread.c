/* Guest threads for user-mode emulation: clone(CLONE_VM | CLONE_THREAD)
 * starts another hart on its own host thread. The harts share the guest
 * address space (host memory), so LR/SC, AMOs and futexes (passed to the
 * host's futex on the same addresses) work across them unchanged. */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "riscv/trap.h"
#include "riscv/user/emu.h"

#ifndef CLONE_VM
#define CLONE_VM 0x00000100
#endif

struct rv_user_thread *rv_user_thread_of(struct rv_user *u, struct rv_hart *h)
{
    if (h == &u->hart)
        return NULL;
    return (struct rv_user_thread *)((char *)h - offsetof(struct rv_user_thread, hart));
}

static void clear_child_tid(struct rv_user *u, uint64_t addr)
{
    uint32_t *p = addr ? rv_user_ptr(u, addr, 4) : NULL;
    if (!p)
        return;
    __atomic_store_n(p, 0, __ATOMIC_SEQ_CST);
    syscall(SYS_futex, p, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

void rv_user_exit_group(struct rv_user *u, int status)
{
    pthread_mutex_lock(&u->lock);
    if (!u->exited) {
        u->exited = true;
        u->exit_status = status;
    }
    for (struct rv_user_thread *t = u->threads; t; t = t->next)
        rv_hart_request_stop(&t->hart);
    pthread_mutex_unlock(&u->lock);
    rv_hart_request_stop(&u->hart);
}

void rv_user_thread_exit(struct rv_user *u, struct rv_hart *h, int status)
{
    struct rv_user_thread *t = rv_user_thread_of(u, h);
    if (!t) {
        rv_user_exit_group(u, status);
        return;
    }
    t->exited = true;
    rv_hart_request_stop(h);
}

static void *thread_main(void *arg)
{
    struct rv_user_thread *t = arg;
    struct rv_user *u = t->u;
    for (;;) {
        enum rv_stop why = rv_hart_run(&t->hart, UINT64_MAX / 2);
        if (t->exited || __atomic_load_n(&u->exited, __ATOMIC_ACQUIRE))
            break;
        if (why == RV_STOP_FATAL) {
            char desc[256];
            snprintf(desc, sizeof(desc), "%s", t->hart.fatal_msg);
            fflush(stdout);
            fprintf(stderr, "vessel emu: thread %d killed the program: %s\n", t->tid, desc);
            rv_user_exit_group(u, 128 + (t->hart.mcause == RV_EXC_ILLEGAL ? 4 : 11));
            break;
        }
    }
    clear_child_tid(u, t->clear_tid);
    return NULL;
}

long rv_user_clone(struct rv_user *u, struct rv_hart *parent, const uint64_t *a)
{
    uint64_t flags = a[0], stack = a[1], ptid = a[2], tls = a[3], ctid = a[4];
    if (!(flags & CLONE_VM) || !(flags & CLONE_THREAD))
        return -ENOSYS; /* fork/vfork: not supported */
    struct rv_user_thread *t = calloc(1, sizeof(*t));
    if (!t)
        return -ENOMEM;
    pthread_mutex_lock(&u->lock);
    t->tid = u->next_tid++;
    unsigned hartid = (unsigned)(t->tid - getpid());
    pthread_mutex_unlock(&u->lock);
    t->u = u;
    rv_hart_init(&t->hart, hartid, &parent->bus);
    struct rv_hart *h = &t->hart;
    /* the same accelerator as the parent (the translator falls back to
     * the interpreter if it cannot get its buffers) */
    if (parent->jit && rv_hart_set_accel(h, RV_ACCEL_JIT, NULL) < 0)
        rv_hart_set_accel(h, RV_ACCEL_INTERP, NULL);
    memcpy(h->x, parent->x, sizeof(h->x));
    memcpy(h->f, parent->f, sizeof(h->f));
    h->fflags = parent->fflags;
    h->frm = parent->frm;
    h->pmp_count = 0;
    h->mcounteren = h->scounteren = 7;
    h->mstatus = parent->mstatus;
    h->mtvec = 0;
    h->pc = parent->pc + 4; /* after the ECALL */
    h->x[10] = 0;           /* the child sees 0 */
    if (stack)
        h->x[2] = stack;
    if (flags & CLONE_SETTLS)
        h->x[4] = tls;
    rv_set_priv(h, RV_PRIV_U);
    if (flags & CLONE_PARENT_SETTID) {
        int32_t *p = rv_user_ptr(u, ptid, 4);
        if (p)
            *p = t->tid;
    }
    if (flags & CLONE_CHILD_SETTID) {
        int32_t *p = rv_user_ptr(u, ctid, 4);
        if (p)
            *p = t->tid;
    }
    if (flags & CLONE_CHILD_CLEARTID)
        t->clear_tid = ctid;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_mutex_lock(&u->lock);
    t->next = u->threads;
    u->threads = t;
    int e = pthread_create(&t->thread, &attr, thread_main, t);
    if (e) {
        u->threads = t->next;
        pthread_mutex_unlock(&u->lock);
        pthread_attr_destroy(&attr);
        rv_hart_destroy(h);
        free(t);
        return -e;
    }
    pthread_mutex_unlock(&u->lock);
    pthread_attr_destroy(&attr);
    return t->tid;
}
