"""Tier 1: virtio-pci's MSI-X on the host's /dev/kvm, driven by the project's
own freestanding driver (x86_guest/vguest.c) for the virtio-rng function.
vessel routes each vector the driver unmasks through a KVM irqfd; the guest
checks what a driver sees: the interrupt on the programmed vector, the
pending bit while masked and delivery on unmask, a message rewritten while
masked, the queue moved to another entry (whose route must survive the
other's re-routing), a device reset, no message with MSI-X disabled, and interrupts that
keep coming after a snapshot is restored in a new process (the routes are
re-derived from the restored MSI-X table)."""
import json
import re
import subprocess
import time
from pathlib import Path

import pytest

from vthelpers import HERE, vessel_bin

FLAGS = ("-m64 -O2 -ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static -mno-red-zone "
         "-mno-sse -mno-mmx -mno-80387 -mcmodel=small -fno-stack-protector "
         "-fno-asynchronous-unwind-tables -mgeneral-regs-only -Wall -Wextra -Werror "
         "-Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack "
         "-Wl,--no-warn-rwx-segments").split()


@pytest.fixture(scope="module")
def vguest(tmp_path_factory) -> Path:
    src = HERE / "x86_guest"
    out = tmp_path_factory.mktemp("vguest") / "vguest.elf"
    shared = HERE.parents[1] / "guests" / "x86"  # x86io.h, shared with the tier-1 guest
    subprocess.run(["gcc", *FLAGS, "-I", str(shared), "-T", str(src / "vguest.ld"), "-o", str(out),
                    str(src / "start.S"), str(src / "vguest.c")], check=True)
    return out


def test_msix_vectors_masking_reroute_reset(kvm, vguest):
    p = subprocess.run([str(vessel_bin()), "vm", "run", "--kernel", str(vguest), "--rng",
                        "--no-reboot", "--append", "vt=msix"], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert "VG FAIL" not in p.stdout, p.stdout
    assert re.findall(r"^VG OK (\w+)", p.stdout, re.M) == [
        "vector", "pending", "reroute", "move", "reset", "disable"], p.stdout + p.stderr
    assert "VG done" in p.stdout
    assert p.returncode == 0, p.stderr


def irq_numbers(path: Path):
    text = path.read_text(errors="replace") if path.exists() else ""
    return [int(n) for n in re.findall(r"^irq (\d+)$", text, re.M)], text


def wait_irqs(path: Path, proc, n, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        nums, text = irq_numbers(path)
        assert "VG FAIL" not in text, text
        if len(nums) >= n:
            return nums
        assert proc.poll() is None, f"vessel exited {proc.returncode}: {text}"
        time.sleep(0.05)
    raise AssertionError(f"fewer than {n} interrupts: {irq_numbers(path)[1]}")


def vessel(*args):
    p = subprocess.run([str(vessel_bin()), *map(str, args)], capture_output=True, text=True,
                       timeout=60, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr
    return p


def stop(proc, sock):
    if proc.poll() is None:
        subprocess.run([str(vessel_bin()), "vm", "stop", "--api-sock", str(sock)],
                       capture_output=True, timeout=20)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_interrupts_continue_after_restore(kvm, vguest, tmp_path):
    console, sock, snap = tmp_path / "src.log", tmp_path / "src.sock", tmp_path / "snap"
    src = subprocess.Popen([str(vessel_bin()), "vm", "run", "--kernel", str(vguest), "--rng",
                            "--append", "vt=loop", "--console", f"file:{console}",
                            "--api-sock", str(sock)], stdin=subprocess.DEVNULL,
                           stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_irqs(console, src, 3)
        assert json.loads(vessel("vm", "snapshot", "--api-sock", sock, snap).stdout)["type"]
    finally:
        stop(src, sock)
    before = irq_numbers(console)[0]

    console2, sock2 = tmp_path / "restored.log", tmp_path / "restored.sock"
    dst = subprocess.Popen([str(vessel_bin()), "vm", "restore", str(snap), "--console",
                            f"file:{console2}", "--api-sock", str(sock2)],
                           stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.PIPE)
    try:
        after = wait_irqs(console2, dst, 5)
    finally:
        stop(dst, sock2)
    # the restored guest goes on counting from where the snapshot caught it
    assert after[0] >= 2 and after[0] <= before[-1] + 1, (before, after)
    assert after == list(range(after[0], after[0] + len(after)))
