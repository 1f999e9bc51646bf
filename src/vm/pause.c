#include "vm/pause.h"

#include <errno.h>

#include "virtio/machine_glue.h"

int vm_pause(struct vm_pause *p, vs_err *err)
{
    pthread_mutex_lock(p->lock);
    if (!p->requested) {
        __atomic_store_n(&p->requested, true, __ATOMIC_SEQ_CST);
        p->hooks->kick(p->machine);
    }
    while (!p->hooks->all_parked(p->machine) && !p->hooks->stopping(p->machine))
        pthread_cond_wait(p->cond, p->lock);
    bool stopping = p->hooks->stopping(p->machine);
    if (!stopping)
        p->paused = true;
    pthread_mutex_unlock(p->lock);
    if (stopping)
        return vs_error(err, ESHUTDOWN, "the VM is shutting down");
    if (*p->devices && virtio_set_pause(*p->devices, err) < 0)
        return -1;
    return 0;
}

int vm_resume(struct vm_pause *p, vs_err *err)
{
    (void)err;
    if (*p->devices)
        virtio_set_resume(*p->devices);
    pthread_mutex_lock(p->lock);
    __atomic_store_n(&p->requested, false, __ATOMIC_SEQ_CST);
    p->paused = false;
    pthread_cond_broadcast(p->cond);
    pthread_mutex_unlock(p->lock);
    return 0;
}

bool vm_is_paused(struct vm_pause *p)
{
    pthread_mutex_lock(p->lock);
    bool paused = p->paused && p->hooks->all_parked(p->machine);
    pthread_mutex_unlock(p->lock);
    return paused;
}
