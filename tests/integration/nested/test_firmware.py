"""Tier 2: `vessel vm run --firmware bios` in the nested lab (real KVM in
L1). Debian's SeaBIOS starts at the reset vector, finds the platform
through fw_cfg (QEMU's host bridge IDs, etc/e820, bootorder, the ACPI tables
through etc/table-loader), prints on COM1 through its serial console
(etc/sercon-port), reads the virtio-blk disk's boot sector and runs it: a
boot sector assembled here that prints a marker on COM1 and powers the
machine off through ACPI (vessel exits 0). A disk with no boot sector:
SeaBIOS's own message reaches the console.
"""
import base64
import shutil
import subprocess
from pathlib import Path

import pytest

import lab

SEABIOS = Path("/usr/share/seabios/bios.bin")
MARKER = "VESSEL-MBR-OK"

# Real mode at 0:7c00: the marker out of COM1, then SLP_TYP=5|SLP_EN into
# vessel's PM1a control port.
MBR = r"""
    .code16
    .globl _start
_start:
    cli
    xor  %ax, %ax
    mov  %ax, %ds
    mov  $0x3f8, %dx
    mov  $msg, %si
1:  lodsb
    test %al, %al
    jz   2f
    out  %al, (%dx)
    jmp  1b
2:  mov  $0x604, %dx
    mov  $0x3400, %ax
    out  %ax, (%dx)
3:  hlt
    jmp  3b
msg: .asciz "\r\nVESSEL-MBR-OK booted by the firmware\r\n"
    .org 510
    .byte 0x55, 0xaa
"""


@pytest.fixture(scope="module")
def mbr(tmp_path_factory) -> bytes:
    if not shutil.which("as"):
        pytest.fail("GNU as is missing (binutils)")
    d = tmp_path_factory.mktemp("mbr")
    (d / "mbr.S").write_text(MBR)
    subprocess.run(["as", "--32", "-o", str(d / "mbr.o"), str(d / "mbr.S")], check=True)
    subprocess.run(["ld", "-m", "elf_i386", "-Ttext=0x7c00", "--oformat=binary", "-o",
                    str(d / "mbr.bin"), str(d / "mbr.o")], check=True)
    data = (d / "mbr.bin").read_bytes()
    assert len(data) == 512 and data[510:] == b"\x55\xaa"
    return data


def put_file(batch: lab.LabBatch, path: str, data: bytes):
    b64 = base64.b64encode(data).decode()
    lines = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    batch.shell(f"base64 -d > {path} <<'LAB_B64_EOF'\n{lines}\nLAB_B64_EOF")


@pytest.fixture(scope="module")
def firmware_boots(lab_ready, mbr):
    if not SEABIOS.exists():
        pytest.fail(f"{SEABIOS} is missing (apt-get install seabios; scripts/setup.sh does)")
    batch = lab.LabBatch()
    put_file(batch, "/tmp/bios.bin", SEABIOS.read_bytes())
    put_file(batch, "/tmp/mbr.bin", mbr)
    batch.shell("dd if=/dev/zero of=/tmp/disk.img bs=1M count=1 2>/dev/null && "
                "dd if=/tmp/mbr.bin of=/tmp/disk.img conv=notrunc 2>/dev/null && "
                "dd if=/dev/zero of=/tmp/empty.img bs=1M count=1 2>/dev/null")
    batch.boot("vessel-seabios-mbr",
               ["env", "VESSEL_FIRMWARE_LOG=1", "vessel", "vm", "run", "--firmware",
                "/tmp/bios.bin", "--memory", "128M", "--disk", "/tmp/disk.img"], [],
               timeout=120, marker=MARKER)
    batch.boot("vessel-seabios-empty",
               ["vessel", "vm", "run", "--firmware", "/tmp/bios.bin", "--memory", "128M",
                "--disk", "/tmp/empty.img"], [], timeout=40, marker="No bootable device")
    return batch.run(timeout=500)


def test_seabios_boots_a_disk(firmware_boots):
    r = firmware_boots.results["vessel-seabios-mbr"]
    assert "SeaBIOS (version" in r.output, str(r)
    assert f"{MARKER} booted by the firmware" in r.output, str(r)
    assert r.ended and not r.timeout and r.status == 0, str(r)
    print(f"\nvessel + SeaBIOS in L2: start to the boot sector's marker {r.marker_ms} ms, "
          f"own RSS {r.own_kb} KiB")


def test_seabios_says_nothing_to_boot(firmware_boots):
    r = firmware_boots.results["vessel-seabios-empty"]
    assert "No bootable device" in r.output, str(r)
