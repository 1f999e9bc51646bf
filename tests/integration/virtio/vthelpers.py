"""Helpers and fixtures for the virtio integration tests: real Linux virtio drivers on the
riscv64 board. The kernel is the riscv64 guest's (guest/build-riscv64.sh,
cached); the initramfs is ours: /init is guest_init.c built static for
riscv64, which runs the task named by `vt=` on the command line and powers
off. Both are cached under the cache dir, keyed by their inputs."""
import hashlib
import os
import select
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from vesselpaths import vessel_path as vessel_bin

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
CROSS = "riscv64-linux-gnu-gcc"



def _cpio_newc(entries) -> bytes:
    """entries: (name, mode, data, rdev_major, rdev_minor)."""
    out = bytearray()
    ino = 1
    for name, mode, data, maj, mnr in entries + [("TRAILER!!!", 0, b"", 0, 0)]:
        nameb = name.encode() + b"\0"
        hdr = "070701" + "".join(f"{v:08x}" for v in (
            ino, mode, 0, 0, 1, 0, len(data), 0, 0, maj, mnr, len(nameb), 0))
        out += hdr.encode() + nameb
        out += b"\0" * (-len(out) % 4)
        out += data
        out += b"\0" * (-len(out) % 4)
        ino += 1
    return bytes(out)


@pytest.fixture(scope="session")
def vt_guest(cache_dir):
    """(vmlinuz, initrd) for the virtio test guest."""
    if not shutil.which(CROSS):
        pytest.fail(f"{CROSS} is missing (apt-get install gcc-riscv64-linux-gnu)")
    env = dict(os.environ, VESSEL_GUEST_DIR=str(cache_dir / "guest"))
    p = subprocess.run([str(ROOT / "guest/build-riscv64.sh")], env=env, capture_output=True,
                       text=True, timeout=1500)
    kernel = cache_dir / "guest/riscv64/vmlinuz"
    if p.returncode != 0:
        if not kernel.exists():
            pytest.fail(f"guest/build-riscv64.sh failed:\n{p.stdout[-3000:]}\n{p.stderr[-3000:]}")
        # only the kernel is used here: a cached one is good enough
        sys.stderr.write("\n*** guest/build-riscv64.sh failed; using the cached riscv64 kernel "
                         f"{kernel} ***\n{p.stderr[-1000:]}\n")
    src = HERE / "guest_init.c"
    key = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
    out = cache_dir / "virtio-test" / key
    initrd = out / "initrd.img"
    if not initrd.exists():
        out.mkdir(parents=True, exist_ok=True)
        init = out / "init"
        subprocess.run([CROSS, "-static", "-O2", "-o", str(init), str(src)], check=True,
                       capture_output=True)
        entries = [("dev", 0o40755, b"", 0, 0), ("dev/console", 0o20600, b"", 5, 1),
                   ("proc", 0o40755, b"", 0, 0), ("sys", 0o40755, b"", 0, 0),
                   ("mnt", 0o40755, b"", 0, 0), ("init", 0o100755, init.read_bytes(), 0, 0)]
        tmp = out / "initrd.tmp"
        tmp.write_bytes(_cpio_newc(entries))
        tmp.rename(initrd)
    return kernel, initrd


class Guest:
    """A running virtio test guest; output is collected as it arrives."""

    def __init__(self, vt_guest, task, *args, append="", wrap=()):
        kernel, initrd = vt_guest
        cmd = [*wrap, str(vessel_bin()), "vm", "run", "--arch", "riscv64", "--kernel", str(kernel),
               "--initrd", str(initrd), "--append",
               f"console=ttyS0 quiet vt={task} {append}".strip(), *map(str, args)]
        self.p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.out = b""
        self.err = b""

    def _pump(self, timeout):
        r, _, _ = select.select([self.p.stdout, self.p.stderr], [], [], timeout)
        got = False
        for f in r:
            chunk = os.read(f.fileno(), 65536)
            if chunk:
                got = True
                if f is self.p.stdout:
                    self.out += chunk
                else:
                    self.err += chunk
        return got

    def _has_line(self, needle: str) -> bool:
        """needle seen, and the line it is on complete (the UART is slow)."""
        i = self.out.find(needle.encode())
        return i >= 0 and b"\n" in self.out[i:]

    def wait_for(self, needle: str, timeout=60) -> str:
        deadline = time.monotonic() + timeout
        while not self._has_line(needle):
            left = deadline - time.monotonic()
            if left <= 0 or (not self._pump(min(left, 1.0)) and self.p.poll() is not None):
                if self._has_line(needle):
                    break
                raise AssertionError(f"{needle!r} not seen; output:\n{self.text()[-3000:]}")
        return self.text()

    def wait_any(self, needles, timeout=60) -> str:
        """Wait until one of needles appears; returns it."""
        deadline = time.monotonic() + timeout
        while True:
            for n in needles:
                if self._has_line(n):
                    return n
            left = deadline - time.monotonic()
            if left <= 0 or (not self._pump(min(left, 1.0)) and self.p.poll() is not None):
                if any(self._has_line(n) for n in needles):
                    continue
                raise AssertionError(f"none of {needles} seen; output:\n{self.text()[-3000:]}")

    def finish(self, timeout=60):
        deadline = time.monotonic() + timeout
        while self.p.poll() is None and time.monotonic() < deadline:
            self._pump(0.5)
        if self.p.poll() is None:
            self.p.kill()
            self.p.wait()
            raise AssertionError(f"guest did not power off; output:\n{self.text()[-3000:]}")
        while self._pump(0):
            pass
        return self.p.returncode

    def text(self):
        return (self.out.decode(errors="replace") + "\n--- stderr ---\n" +
                self.err.decode(errors="replace"))

    def lines(self, prefix):
        return [l[len(prefix):].strip() for l in self.out.decode(errors="replace").splitlines()
                if l.startswith(prefix)]


def run_guest(vt_guest, task, *args, append="", timeout=90):
    g = Guest(vt_guest, task, *args, append=append)
    rc = g.finish(timeout)
    return g, rc


@pytest.fixture
def guest(vt_guest):
    started = []

    def start(task, *args, append=""):
        g = Guest(vt_guest, task, *args, append=append)
        started.append(g)
        return g
    yield start
    for g in started:
        if g.p.poll() is None:
            g.p.kill()
            g.p.wait()


def mkfs_ext4(path: Path, size_mb=16):
    if not shutil.which("mkfs.ext4"):
        pytest.fail("mkfs.ext4 is missing (apt-get install e2fsprogs)")
    with open(path, "wb") as f:
        f.truncate(size_mb << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", str(path)], check=True, capture_output=True)


def debugfs_cat(image: Path, name: str) -> str:
    p = subprocess.run(["debugfs", "-R", f"cat {name}", str(image)], capture_output=True,
                       text=True)
    return p.stdout
