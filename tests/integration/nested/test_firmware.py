"""Tier 2: `vessel vm run --firmware bios` in the nested lab (real KVM in
L1). Debian's stock kernel from a disk built by guest/build-disk.sh: SeaBIOS
-> GRUB (from the MBR) -> the kernel and initramfs from an ext2 partition ->
the guest's init marker and its shell; the same disk under QEMU q35 with
the same SeaBIOS on the host (TCG), the cross-check that the disk, not
vessel, is right. And with a boot sector assembled here: Debian's SeaBIOS starts at the reset vector, finds the platform
through fw_cfg (QEMU's host bridge IDs, etc/e820, bootorder, the ACPI tables
through etc/table-loader), prints on COM1 through its serial console
(etc/sercon-port), reads the virtio-blk disk's boot sector and runs it: a
boot sector assembled here that prints a marker on COM1 and powers the
machine off through ACPI (vessel exits 0). A disk with no boot sector:
SeaBIOS's own message reaches the console.
"""
import base64
import gzip
import os
import select
import shutil
import time
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


ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def os_disk() -> Path:
    p = subprocess.run([str(ROOT / "guest/build-disk.sh")], capture_output=True, text=True,
                       timeout=900)
    assert p.returncode == 0, f"guest/build-disk.sh failed:\n{p.stderr[-3000:]}"
    path = subprocess.run([str(ROOT / "guest/build-disk.sh"), "--print-path"],
                          capture_output=True, text=True, check=True).stdout.strip()
    return Path(path)


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
def firmware_boots(lab_ready, mbr, os_disk):
    if not SEABIOS.exists():
        pytest.fail(f"{SEABIOS} is missing (apt-get install seabios; scripts/setup.sh does)")
    batch = lab.LabBatch()
    put_file(batch, "/tmp/bios.bin", SEABIOS.read_bytes())
    put_file(batch, "/tmp/mbr.bin", mbr)
    batch.shell("dd if=/dev/zero of=/tmp/disk.img bs=1M count=1 2>/dev/null && "
                "dd if=/tmp/mbr.bin of=/tmp/disk.img conv=notrunc 2>/dev/null && "
                "dd if=/dev/zero of=/tmp/empty.img bs=1M count=1 2>/dev/null")
    put_file(batch, "/tmp/os.img.gz", gzip.compress(os_disk.read_bytes(), 1))
    batch.shell("gunzip /tmp/os.img.gz")
    batch.boot("vessel-seabios-grub-linux",
               ["vessel", "vm", "run", "--firmware", "/tmp/bios.bin", "--memory", "256M",
                "--disk", "/tmp/os.img"],
               ["echo firmware-says-$((6*7))", "cat /proc/cmdline", "poweroff"], timeout=240)
    # the peer: QEMU q35 on L1's KVM, the same SeaBIOS and disk
    batch.boot("qemu-q35-seabios-grub-linux",
               ["qemu-system-x86_64", "-M", "q35", "-accel", "kvm", "-cpu", "host",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-reboot",
                "-serial", "stdio", "-m", "256M", "-bios", "/tmp/bios.bin",
                "-drive", "file=/tmp/os.img,if=virtio,format=raw"],
               ["echo firmware-says-$((6*7))", "poweroff"], timeout=240)
    batch.boot("vessel-seabios-mbr",
               ["env", "VESSEL_FIRMWARE_LOG=1", "vessel", "vm", "run", "--firmware",
                "/tmp/bios.bin", "--memory", "128M", "--disk", "/tmp/disk.img"], [],
               timeout=120, marker=MARKER)
    batch.boot("vessel-seabios-empty",
               ["vessel", "vm", "run", "--firmware", "/tmp/bios.bin", "--memory", "128M",
                "--no-reboot", "--disk", "/tmp/empty.img"], [], timeout=60,
               marker="No bootable device")
    return batch.run(timeout=800)


def test_seabios_boots_a_disk(firmware_boots):
    r = firmware_boots.results["vessel-seabios-mbr"]
    assert "SeaBIOS (version" in r.output, str(r)
    assert f"{MARKER} booted by the firmware" in r.output, str(r)
    assert r.ended and not r.timeout and r.status == 0, str(r)
    print(f"\nvessel + SeaBIOS in L2: start to the boot sector's marker {r.marker_ms} ms, "
          f"own RSS {r.own_kb} KiB")


def test_seabios_grub_debian_kernel(firmware_boots):
    """SeaBIOS -> GRUB -> Debian's kernel -> the init's shell -> poweroff."""
    r = firmware_boots.results["vessel-seabios-grub-linux"]
    assert "Booting `Debian (vessel disk)'" in r.output, str(r)
    assert lab.MARKER in r.output, str(r)
    assert "firmware-says-42" in lab.after_marker(r.output), str(r)
    assert "BOOT_IMAGE=/boot/vmlinuz console=ttyS0 quiet" in r.output, str(r)
    assert r.ended and not r.timeout and r.status == 0, str(r)
    print(f"\nvessel + SeaBIOS + GRUB in L2: start to the init marker {r.marker_ms} ms, "
          f"own RSS {r.own_kb} KiB")


def test_firmware_boot_vs_qemu_q35(firmware_boots):
    """The bench row: vessel and QEMU q35, the same SeaBIOS and disk in the
    same L1 session, time to the guest's init marker and each VMM's own RSS
    (printed; QEMU's failure is the lab's, not vessel's, and fails here)."""
    v = firmware_boots.results["vessel-seabios-grub-linux"]
    q = firmware_boots.results["qemu-q35-seabios-grub-linux"]
    assert lab.MARKER in q.output, f"QEMU q35 did not boot the disk in L1\n{q}"
    print(f"\nSeaBIOS+GRUB+Debian cloud kernel in L2, start to marker: vessel {v.marker_ms} ms, "
          f"QEMU q35 {q.marker_ms} ms ({v.marker_ms / max(q.marker_ms, 1):.2f}x); own RSS: "
          f"vessel {v.own_kb} KiB, QEMU {q.own_kb} KiB ({v.own_kb / max(q.own_kb, 1):.2f}x)")


def test_disk_boots_under_qemu_q35(os_disk, tmp_path):
    """The cross-check: QEMU q35 (TCG, on the host) with the same SeaBIOS
    boots the same disk to the guest's marker."""
    qemu = shutil.which("qemu-system-x86_64")
    if not qemu:
        pytest.fail("qemu-system-x86_64 is missing (scripts/setup.sh installs it)")
    p = subprocess.Popen([qemu, "-M", "q35", "-accel", "tcg", "-m", "256", "-bios", str(SEABIOS),
                          "-drive", f"file={os_disk},if=virtio,format=raw,snapshot=on",
                          "-display", "none", "-serial", "stdio", "-no-reboot"],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    out = b""
    deadline = time.monotonic() + 300
    try:
        while lab.MARKER.encode() not in out and time.monotonic() < deadline:
            if select.select([p.stdout], [], [], 1)[0]:
                chunk = os.read(p.stdout.fileno(), 65536)
                if not chunk:
                    break
                out += chunk
    finally:
        p.kill()
        p.wait()
    text = out.decode(errors="replace")
    assert "Booting `Debian (vessel disk)'" in text and lab.MARKER in text, text[-3000:]


def test_seabios_says_nothing_to_boot(firmware_boots):
    r = firmware_boots.results["vessel-seabios-empty"]
    assert "No bootable device" in r.output, str(r)
    # vessel says so once, SeaBIOS reboots after its wait, --no-reboot ends the VM
    assert r.output.count("the firmware found nothing to boot on the disks") == 1, str(r)
    assert r.ended and not r.timeout and r.status == 0, str(r)
