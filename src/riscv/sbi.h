/* The built-in SBI: what the board offers S-mode when no firmware runs in
 * M-mode (`--kernel` without `--bios`), the paravirtual interface of the
 * emulated machine. The hart's ECALL from S-mode lands in rv_sbi_handle();
 * the board supplies the effects (console, timer, IPIs, hart start/stop,
 * reset) through struct rv_sbi_ops, so this file only decodes calls and
 * checks arguments. Extensions: legacy v0.1 (set_timer, console
 * putchar/getchar, clear/send IPI, remote fences, shutdown), BASE, TIME,
 * IPI, RFENCE, HSM, SRST and DBCN (SBI 2.0). */
#ifndef VESSEL_RISCV_SBI_H
#define VESSEL_RISCV_SBI_H

#include <stdbool.h>
#include <stdint.h>

struct rv_hart;

#define SBI_SUCCESS 0
#define SBI_ERR_FAILED (-1)
#define SBI_ERR_NOT_SUPPORTED (-2)
#define SBI_ERR_INVALID_PARAM (-3)
#define SBI_ERR_DENIED (-4)
#define SBI_ERR_INVALID_ADDRESS (-5)
#define SBI_ERR_ALREADY_AVAILABLE (-6)
#define SBI_ERR_ALREADY_STARTED (-7)
#define SBI_ERR_ALREADY_STOPPED (-8)

#define SBI_EXT_BASE 0x10
#define SBI_EXT_TIME 0x54494D45
#define SBI_EXT_IPI 0x735049
#define SBI_EXT_RFENCE 0x52464E43
#define SBI_EXT_HSM 0x48534D
#define SBI_EXT_SRST 0x53525354
#define SBI_EXT_DBCN 0x4442434E

#define SBI_HSM_STARTED 0
#define SBI_HSM_STOPPED 1
#define SBI_HSM_START_PENDING 2
#define SBI_HSM_STOP_PENDING 3
#define SBI_HSM_SUSPENDED 4

#define SBI_RESET_SHUTDOWN 0
#define SBI_RESET_COLD 1
#define SBI_RESET_WARM 2

#define SBI_IMPL_ID 0x7665 /* "ve": vessel's built-in SBI */
#define SBI_IMPL_VERSION 0x10000

struct rv_sbi_ops {
    void (*putchar)(void *opaque, uint8_t c);
    /* A byte of console input, or -1 if none is waiting. */
    int (*getchar)(void *opaque);
    void (*set_timer)(void *opaque, unsigned hart, uint64_t mtime);
    void (*send_ipi)(void *opaque, unsigned hart);
    void (*remote_sfence)(void *opaque, unsigned hart);
    /* FENCE.I on another hart: its translations of code are stale.
     * Optional (the interpreter fetches from memory every time). */
    void (*remote_fence_i)(void *opaque, unsigned hart);
    /* HSM: start a stopped hart at addr in S-mode with a0 = hartid,
     * a1 = arg; return an SBI error code. */
    long (*hart_start)(void *opaque, unsigned hart, uint64_t addr, uint64_t arg);
    /* Stop the calling hart once the ECALL returns; error code. */
    long (*hart_stop)(void *opaque, unsigned hart);
    long (*hart_status)(void *opaque, unsigned hart);
    /* SRST / legacy shutdown: the board stops every hart. */
    void (*system_reset)(void *opaque, uint32_t type, uint32_t reason);
    void *opaque;
};

struct rv_sbi {
    struct rv_sbi_ops ops;
    unsigned nharts;
};

void rv_sbi_init(struct rv_sbi *s, const struct rv_sbi_ops *ops, unsigned nharts);
/* Handle the ECALL in h's a7/a6/a0..a5 and write the results (a0 error,
 * a1 value; legacy calls only a0). Returns true: the ECALL is consumed. */
bool rv_sbi_handle(struct rv_sbi *s, struct rv_hart *h);

#endif
