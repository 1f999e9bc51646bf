"""Helpers and fixtures for the riscv64 board tests: the guest built by guest/build-riscv64.sh
(cached outside the checkout), Debian's OpenSBI and U-Boot, tiny payloads assembled
on the fly, and a console driver for interactive guests."""
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vesselpaths import vessel_path

ROOT = Path(__file__).resolve().parents[3]

RISCV_SYSROOT = Path("/usr/riscv64-linux-gnu/lib")


def riscv_linux_cc(static_libc: bool = True) -> str:
    """The riscv64 Linux cross compiler, failing early with the package to
    install: gcc-riscv64-linux-gnu only recommends its C library, so without
    libc6-dev-riscv64-cross nothing links with -static."""
    cc = shutil.which("riscv64-linux-gnu-gcc")
    if not cc:
        pytest.fail("riscv64-linux-gnu-gcc is missing (apt-get install gcc-riscv64-linux-gnu; "
                    "scripts/setup.sh does)")
    if static_libc:
        for f in ("crt1.o", "libc.a"):
            if not (RISCV_SYSROOT / f).exists():
                pytest.fail(f"the riscv64 C library is missing ({RISCV_SYSROOT / f}): "
                            "apt-get install libc6-dev-riscv64-cross (scripts/setup.sh does)")
    return cc


OPENSBI = Path("/usr/lib/riscv64-linux-gnu/opensbi/generic")
UBOOT_SMODE = Path("/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin")
CROSS = "riscv64-linux-gnu-"


def need(path: Path, package: str) -> Path:
    if not path.exists():
        sys.stderr.write(f"\n*** {path} is missing: apt-get install {package} ***\n")
        pytest.fail(f"{path} is missing (apt-get install {package}; scripts/setup.sh does)")
    return path


@pytest.fixture(scope="session")
def rv_guest(cache_dir) -> Path:
    """vmlinuz, initrd.img and disk.img for riscv64; built once, then cached."""
    env = dict(os.environ, VESSEL_GUEST_DIR=str(cache_dir / "guest"))
    p = subprocess.run([str(ROOT / "guest/build-riscv64.sh")], env=env, capture_output=True,
                       text=True, timeout=1500)
    if p.returncode != 0:
        pytest.fail(f"guest/build-riscv64.sh failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
    d = cache_dir / "guest/riscv64"
    for f in ("vmlinuz", "initrd.img", "disk.img"):
        assert (d / f).exists(), f"{d / f} was not built"
    return d


@pytest.fixture(scope="session")
def opensbi():
    return {name: need(OPENSBI / name, "opensbi")
            for name in ("fw_jump.bin", "fw_dynamic.bin", "fw_jump.elf", "fw_dynamic.elf")}


@pytest.fixture(scope="session")
def uboot() -> Path:
    return need(UBOOT_SMODE, "u-boot-qemu")


def assemble(tmp: Path, name: str, source: str, text_addr: int, raw: bool) -> Path:
    """Assemble a bare-metal RISC-V program with the Linux cross toolchain."""
    if not shutil.which(CROSS + "gcc"):
        pytest.fail("riscv64-linux-gnu-gcc is missing (apt-get install gcc-riscv64-linux-gnu)")
    src = tmp / f"{name}.S"
    src.write_text(source)
    elf = tmp / f"{name}.elf"
    subprocess.run([CROSS + "gcc", "-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d",
                    # raw: .text first in the image; ELF: headers in RAM too
                    f"-Wl,-Ttext=0x{text_addr:x}" if raw else f"-Wl,-Ttext-segment=0x{text_addr:x}",
                    "-Wl,--build-id=none", "-o", str(elf),
                    str(src)], check=True, capture_output=True)
    if not raw:
        return elf
    out = tmp / f"{name}.bin"
    subprocess.run([CROSS + "objcopy", "-O", "binary", str(elf), str(out)], check=True)
    return out


# An S-mode payload for the firmware: prints through the legacy SBI console,
# then powers off with SRST.
SBI_PAYLOAD = r"""
    .globl _start
_start:
    la   s0, msg
1:  lbu  a0, 0(s0)
    beqz a0, 2f
    li   a7, 1          /* legacy console_putchar */
    ecall
    addi s0, s0, 1
    j    1b
2:  li   a7, 0x53525354 /* SRST */
    li   a6, 0
    li   a0, 0          /* shutdown */
    li   a1, 0
    ecall
3:  wfi
    j    3b
msg: .asciz "PAYLOAD-OK hart-started-in-S-mode\n"
"""

# M-mode code that jumps to an address nothing answers at, with no trap
# handler installed (mtvec = 0).
WILD_JUMP = r"""
    .globl _start
_start:
    li   t0, 0x40000000
    li   a5, 0x1234
    jr   t0
"""


@pytest.fixture
def sbi_payload(tmp_path) -> Path:
    return assemble(tmp_path, "payload", SBI_PAYLOAD, 0x80200000, raw=True)


@pytest.fixture
def wild_jump_elf(tmp_path) -> Path:
    return assemble(tmp_path, "wild", WILD_JUMP, 0x80000000, raw=False)


def vessel_cli(*args, timeout=60):
    """Any vessel command; fails the test on a non-zero exit."""
    p = subprocess.run([str(vessel_path()), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    assert p.returncode == 0, f"vessel {' '.join(map(str, args))}: {p.stderr}"
    return p.stdout


# The emulator's accelerator for `vm run` (None: the default); test_boot.py
# runs every test with each.
ACCEL = None


def accel_args():
    return ["--accel", ACCEL] if ACCEL else []


def run_rv(*args, timeout=120):
    """`vessel vm run --arch riscv64 ARGS` with no console input."""
    cmd = [str(vessel_path()), "vm", "run", "--arch", "riscv64", *accel_args(), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, errors="replace")


class Console:
    """An interactive guest on vessel's stdio console."""

    def __init__(self, *args, verb=("vm", "run", "--arch", "riscv64")):
        extra = accel_args() if tuple(verb[:2]) == ("vm", "run") else []
        cmd = [str(vessel_path()), *verb, *extra, *map(str, args)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out = b""

    def expect(self, needle: str, timeout=60) -> str:
        """Wait for needle in the output after what was already consumed."""
        deadline = time.monotonic() + timeout
        want = needle.encode()
        while True:
            i = self.out.find(want)
            if i >= 0:
                seen = self.out[:i + len(want)]
                self.out = self.out[i + len(want):]
                return seen.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None and not self._readable(0):
                err = ""
                if self.p.poll() is not None:  # exited: its stderr can be read without blocking
                    err = self.p.stderr.read().decode(errors="replace")
                raise AssertionError(f"did not see {needle!r}; output so far:\n"
                                     f"{self.out.decode(errors='replace')[-3000:]}\n"
                                     f"exit status {self.p.poll()}, stderr:\n{err}")
            if self._readable(min(left, 0.5)):
                chunk = os.read(self.p.stdout.fileno(), 65536)
                self.out += chunk

    def _readable(self, t) -> bool:
        r, _, _ = select.select([self.p.stdout], [], [], t)
        return bool(r)

    def command(self, line: str, prompt="vessel-rv# ", timeout=60) -> str:
        """Type a command at a prompt already consumed by expect(); return
        everything up to the next prompt (the echoed line and the output)."""
        self.send(line + "\n")
        return self.expect(prompt, timeout=timeout)

    def send(self, text: str):
        self.p.stdin.write(text.encode())
        self.p.stdin.flush()

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()
        for f in (self.p.stdin, self.p.stdout, self.p.stderr):
            try:
                f.close()
            except OSError:
                pass


@pytest.fixture
def console():
    made = []

    def start(*args, **kw):
        c = Console(*args, **kw)
        made.append(c)
        return c
    yield start
    for c in made:
        c.close()
