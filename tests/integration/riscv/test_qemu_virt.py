"""Software written for QEMU's `virt` board on vessel's riscv64 board: a
bare-metal M-mode program whose virtio-blk driver does what xv6-riscv's
virtio_disk.c does (checks the vendor ID for QEMU's "QEMU", negotiates
features without acknowledging VIRTIO_F_VERSION_1, then polls one read of
sector 0). QEMU's modern virtio-mmio accepts such a driver; so does vessel,
and `--virtio-vendor qemu` presents QEMU's vendor ID."""
import shutil
import subprocess
from pathlib import Path

import pytest

from rvhelpers import run_rv

CC = "riscv64-unknown-elf-gcc"

XV6_STYLE = r"""
#include <stdint.h>
#define R(off) ((volatile uint32_t *)(0x10001000ul + (off)))
#define UART ((volatile uint8_t *)0x10000000ul)
#define TEST ((volatile uint32_t *)0x100000ul)

static void puts_(const char *s) { while (*s) *UART = (uint8_t)*s++; }
static void hex(uint32_t v)
{
    for (int i = 28; i >= 0; i -= 4)
        *UART = "0123456789abcdef"[(v >> i) & 15];
}
static void die(const char *why, uint32_t v)
{
    puts_("XV6-VIRTIO-FAIL "); puts_(why); *UART = ' '; hex(v); *UART = '\n';
    *TEST = (2u << 16) | 0x3333;
    for (;;) ;
}

struct desc { uint64_t addr; uint32_t len; uint16_t flags, next; };
struct req { uint32_t type, reserved; uint64_t sector; };
static struct desc descs[8] __attribute__((aligned(4096)));
static struct { uint16_t flags, idx, ring[8], unused; } avail __attribute__((aligned(4096)));
static struct { uint16_t flags, idx; struct { uint32_t id, len; } ring[8]; } used
    __attribute__((aligned(4096)));
static struct req rq;
static uint8_t buf[512];
static volatile uint8_t status = 0xff;

void main_(void)
{
    if (*R(0x000) != 0x74726976 || *R(0x004) != 2 || *R(0x008) != 2)
        die("not a virtio-mmio v2 block device", *R(0x008));
    if (*R(0x00c) != 0x554d4551)
        die("vendor", *R(0x00c));
    uint32_t st = 0;
    *R(0x070) = st;
    *R(0x070) = st |= 1;          /* ACKNOWLEDGE */
    *R(0x070) = st |= 2;          /* DRIVER */
    uint32_t f = *R(0x010);       /* low 32 feature bits only, like xv6 */
    f &= ~((1u << 5) | (1u << 7) | (1u << 11) | (1u << 12) | (1u << 27) | (1u << 28) | (1u << 29));
    *R(0x020) = f;
    *R(0x070) = st |= 8;          /* FEATURES_OK, VERSION_1 not acknowledged */
    if (!(*R(0x070) & 8))
        die("FEATURES_OK refused", *R(0x070));
    *R(0x030) = 0;
    if (*R(0x044) || *R(0x034) < 8)
        die("queue 0", *R(0x034));
    *R(0x038) = 8;
    *R(0x080) = (uint32_t)(uintptr_t)descs; *R(0x084) = 0;
    *R(0x090) = (uint32_t)(uintptr_t)&avail; *R(0x094) = 0;
    *R(0x0a0) = (uint32_t)(uintptr_t)&used; *R(0x0a4) = 0;
    *R(0x044) = 1;
    *R(0x070) = st |= 4;          /* DRIVER_OK */

    rq.type = 0; rq.sector = 0;   /* VIRTIO_BLK_T_IN */
    descs[0] = (struct desc){(uintptr_t)&rq, sizeof(rq), 1, 1};
    descs[1] = (struct desc){(uintptr_t)buf, 512, 1 | 2, 2};
    descs[2] = (struct desc){(uintptr_t)&status, 1, 2, 0};
    avail.ring[avail.idx % 8] = 0;
    __sync_synchronize();
    avail.idx++;
    __sync_synchronize();
    *R(0x050) = 0;
    while (*(volatile uint16_t *)&used.idx == 0)
        ;
    if (status != 0)
        die("request status", status);
    puts_("XV6-VIRTIO-OK ");
    for (int i = 0; i < 16 && buf[i]; i++)
        *UART = buf[i];
    *UART = '\n';
    *TEST = 0x5555;
    for (;;) ;
}
"""

START = r"""
    .globl _start
_start:
    la sp, stack_top
    call main_
1:  j 1b
    .bss
    .align 4
    .space 8192
stack_top:
"""


@pytest.fixture(scope="module")
def xv6_style(tmp_path_factory):
    if not shutil.which(CC):
        pytest.fail(f"{CC} is missing (apt-get install gcc-riscv64-unknown-elf)")
    d = tmp_path_factory.mktemp("xv6")
    (d / "drv.c").write_text(XV6_STYLE)
    (d / "start.S").write_text(START)
    elf = d / "drv.elf"
    subprocess.run([CC, "-march=rv64gc", "-mabi=lp64d", "-mcmodel=medany", "-O2", "-ffreestanding",
                    "-nostdlib", "-Wl,-Ttext-segment=0x80000000", "-Wl,--build-id=none", "-o", str(elf), str(d / "start.S"),
                    str(d / "drv.c")], check=True)
    disk = d / "disk.img"
    disk.write_bytes(b"sector-zero-data" + bytes(1024 * 1024 - 16))
    return elf, disk


def test_xv6_style_driver_with_qemu_vendor(xv6_style):
    elf, disk = xv6_style
    p = run_rv("--kernel", elf, "--disk", disk, "--virtio-vendor", "qemu", "--console", "stdio",
               timeout=60)
    assert "XV6-VIRTIO-OK sector-zero-data" in p.stdout, p.stdout + p.stderr
    assert p.returncode == 0, p.stderr
    assert "refused" not in p.stderr


def test_default_vendor_is_vessels(xv6_style):
    elf, disk = xv6_style
    p = run_rv("--kernel", elf, "--disk", disk, timeout=60)
    assert "XV6-VIRTIO-FAIL vendor 4c535356" in p.stdout, p.stdout + p.stderr
    assert p.returncode != 0


def test_bad_vendor_flag():
    p = run_rv("--virtio-vendor", "acme")
    assert p.returncode != 0
    assert "--virtio-vendor" in p.stderr
