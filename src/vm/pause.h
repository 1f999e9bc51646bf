/* One pause/resume protocol for every machine (as kvmtool's kvm__pause):
 * pause asks every vCPU to park at an instruction boundary, waits until all
 * have (or the machine is stopping: ESHUTDOWN), then quiesces the virtio
 * devices; resume undoes it in reverse. The machine keeps its own lock and
 * condition variable and says through hooks how its vCPUs are kicked and
 * counted; its vCPU threads park while vm_pause_requested() is true and
 * broadcast cond when they do. */
#ifndef VESSEL_VM_PAUSE_H
#define VESSEL_VM_PAUSE_H

#include <pthread.h>
#include <stdbool.h>
#include "util/err.h"

struct virtio_set;

struct vm_pause_hooks {
    /* All three are called with *lock held. */
    void (*kick)(void *machine);       /* make every running vCPU reach its park point */
    bool (*all_parked)(void *machine); /* every vCPU parked (or not running at all) */
    bool (*stopping)(void *machine);   /* the machine is on its way out (or rebooting) */
};

struct vm_pause {
    pthread_mutex_t *lock;
    pthread_cond_t *cond;
    const struct vm_pause_hooks *hooks;
    void *machine;
    struct virtio_set **devices; /* the machine's (may point at NULL) */
    bool requested;              /* read by vCPU threads: vm_pause_requested */
    bool paused;                 /* under *lock */
};

static inline bool vm_pause_requested(const struct vm_pause *p)
{
    return __atomic_load_n(&p->requested, __ATOMIC_SEQ_CST);
}

/* Idempotent. -1 with ESHUTDOWN when the machine stops meanwhile. */
int vm_pause(struct vm_pause *p, vs_err *err);
int vm_resume(struct vm_pause *p, vs_err *err);
bool vm_is_paused(struct vm_pause *p);

#endif
