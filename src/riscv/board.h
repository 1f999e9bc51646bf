/* The riscv64 `virt`-like board: the physical memory map, shared by the
 * device tree, the loader and the board itself.
 *
 *   0x00100000  SiFive test device (poweroff 0x5555, reboot 0x7777, fail 0x3333)
 *   0x02000000  CLINT (msip, mtimecmp, mtime at 10 MHz)
 *   0x0c000000  PLIC (2 contexts per hart: M then S)
 *   0x10000000  NS16550A UART, PLIC source 10
 *   0x10001000  virtio-mmio slots, stride 0x1000, PLIC sources 1..8
 *   0x80000000  RAM
 */
#ifndef VESSEL_RISCV_BOARD_H
#define VESSEL_RISCV_BOARD_H

#include <stdint.h>
#include "vm/config.h"
#include "vm/control.h"

#define RV_TEST_BASE 0x100000ull
#define RV_TEST_SIZE 0x1000ull
#define RV_UART_BASE 0x10000000ull
#define RV_UART_SIZE 0x100ull
#define RV_UART_IRQ 10
#define RV_UART_CLOCK 3686400u
#define RV_VIRTIO_BASE 0x10001000ull
#define RV_VIRTIO_STRIDE 0x1000ull
#define RV_VIRTIO_SLOTS 8
#define RV_VIRTIO_IRQ_FIRST 1
#define RV_RAM_BASE 0x80000000ull

/* Values written to the test device's register. */
#define RV_TEST_FAIL 0x3333u
#define RV_TEST_PASS 0x5555u
#define RV_TEST_RESET 0x7777u

/* ISA and MMU the hart implements, as the device tree advertises them. */
#define RV_BOARD_ISA "rv64imafdc_zicsr_zifencei_zba_zbb_zbs"
#define RV_BOARD_MMU "riscv,sv48"

#endif
