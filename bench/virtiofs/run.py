#!/usr/bin/python3
"""virtio-fs benchmark on riscv64: vessel's board vs qemu-system-riscv64 -M virt
(TCG), the same guest (guest/build-riscv64.sh) and the same Debian virtiofsd
(/usr/lib/qemu/virtiofsd, cache=auto, one in-order request queue) serving the
same directory. vessel starts virtiofsd itself (--share); for QEMU the
script starts it and QEMU connects (vhost-user-fs-device, memfd-backed RAM).

  mount-ms   `mount -t virtiofs` in the guest (FUSE_INIT round trip included)
  cold-ms    the guest's `read FILE` of a SIZE-MiB file never read before
  warm-ms    the same file again (the guest's page cache: no virtio-fs traffic)
  MiB/s      SIZE / cold

Times are the guest's own (its init's `read` command, CLOCK_MONOTONIC), so
the emulator's speed is part of every number, for both VMMs alike. Runs are
interleaved; medians and vessel/QEMU ratios (below 1: vessel is faster).

usage: bench/virtiofs/run.py [--runs N] [--size MiB] [--vessel PATH]
"""
import argparse
import os
import re
import select
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VIRTIOFSD = "/usr/lib/qemu/virtiofsd"
PROMPT = b"vessel-rv# "


class Guest:
    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT)
        self.out = b""

    def expect(self, needle: bytes, timeout=180) -> str:
        end = time.monotonic() + timeout
        while needle not in self.out:
            if time.monotonic() > end or self.p.poll() is not None:
                raise RuntimeError(f"no {needle!r}: {self.out[-2000:]!r}")
            if select.select([self.p.stdout], [], [], 0.5)[0]:
                self.out += os.read(self.p.stdout.fileno(), 65536)
        i = self.out.index(needle) + len(needle)
        seen, self.out = self.out[:i], self.out[i:]
        return seen.decode(errors="replace")

    def command(self, line: str) -> str:
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.expect(PROMPT)

    def close(self):
        self.p.kill()
        self.p.wait()


def measure(g: Guest):
    g.expect(PROMPT)
    t0 = time.monotonic()
    out = g.command("mount virtiofs bench /mnt")
    mount_ms = (time.monotonic() - t0) * 1000
    assert "ok" in out, out
    r = []
    for _ in range(2):
        m = re.search(r"read: (\d+) bytes in (\d+) ms", g.command("read /mnt/big.bin"))
        assert m, "read failed"
        r.append(int(m.group(2)))
    return mount_ms, r[0], r[1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--vessel", default=str(ROOT / "build/src/cmd/vessel"))
    a = ap.parse_args()
    d = Path(os.environ.get("VESSEL_GUEST_DIR",
                            Path.home() / ".cache/vessel/guest")) / "riscv64"
    subprocess.run([str(ROOT / "guest/build-riscv64.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    tmp = Path(tempfile.mkdtemp(prefix="vessel-bench-fs."))
    share = tmp / "share"
    share.mkdir()
    (share / "big.bin").write_bytes(os.urandom(a.size << 20))
    base = ["--kernel", str(d / "vmlinuz"), "--initrd", str(d / "initrd.img")]
    rows = {"vessel": [], "qemu": []}
    for _ in range(a.runs):
        g = Guest([a.vessel, "vm", "run", "--arch", "riscv64", "--memory", "512M", *base,
                   "--append", "console=ttyS0", "--share", f"{share}:bench"])
        try:
            rows["vessel"].append(measure(g))
        finally:
            g.close()
        sock = tmp / "vfs.sock"
        fsd = subprocess.Popen([VIRTIOFSD, f"--socket-path={sock}", "-o", f"source={share}",
                                "-o", "cache=auto", "-o", "sandbox=namespace",
                                "--thread-pool-size=0", "-o", "log_level=warn"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while not sock.exists():
            time.sleep(0.01)
        g = Guest(["qemu-system-riscv64", "-M", "virt", "-m", "512M", "-bios", "default",
                   "-kernel", str(d / "vmlinuz"), "-initrd", str(d / "initrd.img"),
                   "-append", "console=ttyS0", "-nographic",
                   "-global", "virtio-mmio.force-legacy=false",
                   "-object", "memory-backend-memfd,id=mem,size=512M,share=on",
                   "-machine", "memory-backend=mem", "-chardev", f"socket,id=c0,path={sock}",
                   "-device", "vhost-user-fs-device,chardev=c0,tag=bench"])
        try:
            rows["qemu"].append(measure(g))
        finally:
            g.close()
            fsd.kill()
            fsd.wait()
            sock.unlink(missing_ok=True)
    print(f"virtio-fs, riscv64 guest, {a.size} MiB file, {a.runs} runs, medians")
    print(f"{'':8} {'mount-ms':>9} {'cold-ms':>8} {'warm-ms':>8} {'MiB/s':>7}")
    med = {}
    for k, v in rows.items():
        med[k] = [statistics.median(x[i] for x in v) for i in range(3)]
        m = med[k]
        print(f"{k:8} {m[0]:9.0f} {m[1]:8.0f} {m[2]:8.0f} {a.size * 1000 / max(m[1], 1):7.0f}")
    print("vessel/qemu " + " ".join(f"{med['vessel'][i] / max(med['qemu'][i], 1):.2f}x"
                                    for i in range(3)))


if __name__ == "__main__":
    main()
