/* Placeholder implementation so the board can link; the interpreter follows. */
#include <string.h>
#include <stdio.h>

#include "riscv/hart.h"

void rv_hart_init(struct rv_hart *h, unsigned hartid, const struct rv_bus *bus)
{
    memset(h, 0, sizeof(*h));
    h->hartid = hartid;
    h->bus = *bus;
    pthread_mutex_init(&h->wait_lock, NULL);
    pthread_cond_init(&h->wait_cond, NULL);
}

void rv_hart_destroy(struct rv_hart *h)
{
    pthread_mutex_destroy(&h->wait_lock);
    pthread_cond_destroy(&h->wait_cond);
}

void rv_hart_reset(struct rv_hart *h, uint64_t pc)
{
    h->pc = pc;
    h->priv = RV_PRIV_M;
    h->x[10] = h->hartid;
}

enum rv_stop rv_hart_run(struct rv_hart *h, uint64_t max_insns)
{
    snprintf(h->fatal_msg, sizeof(h->fatal_msg), "interpreter not implemented yet");
    return RV_STOP_FATAL;
}

void rv_hart_set_irq(struct rv_hart *h, uint64_t mip_bit, bool level)
{
    if (level)
        __atomic_fetch_or(&h->mip, mip_bit, __ATOMIC_SEQ_CST);
    else
        __atomic_fetch_and(&h->mip, ~mip_bit, __ATOMIC_SEQ_CST);
}

void rv_hart_request_stop(struct rv_hart *h)
{
    __atomic_store_n(&h->stop_request, 1, __ATOMIC_SEQ_CST);
}

void rv_hart_flush_tlb(struct rv_hart *h)
{
    __atomic_store_n(&h->flush_request, 1, __ATOMIC_SEQ_CST);
}

bool rv_hart_wait(struct rv_hart *h, int64_t timeout_ns)
{
    return false;
}

void rv_hart_wake(struct rv_hart *h) {}

uint64_t rv_hart_timer_deadline(struct rv_hart *h)
{
    return UINT64_MAX;
}

bool rv_hart_irq_pending(struct rv_hart *h)
{
    return false;
}

void rv_hart_raise(struct rv_hart *h, uint64_t cause, uint64_t tval) {}

int rv_hart_phys_read(struct rv_hart *h, uint64_t pa, void *buf, size_t len)
{
    return -1;
}

int rv_hart_phys_write(struct rv_hart *h, uint64_t pa, const void *buf, size_t len)
{
    return -1;
}

int rv_hart_virt_read(struct rv_hart *h, uint64_t va, void *buf, size_t len)
{
    return -1;
}

int rv_hart_virt_write(struct rv_hart *h, uint64_t va, const void *buf, size_t len)
{
    return -1;
}

int rv_hart_save(struct rv_hart *h, struct state_writer *w)
{
    return 0;
}

int rv_hart_load(struct rv_hart *h, struct state_reader *r, vs_err *err)
{
    return 0;
}

void rv_hart_describe(struct rv_hart *h, char *buf, size_t len)
{
    snprintf(buf, len, "%s", h->fatal_msg);
}
