#!/usr/bin/python3
"""Balloon and free page reporting: vessel vs qemu-system-riscv64 -M virt on the
same riscv64 Linux guest (guest/build-riscv64.sh), in the same run.

  reclaim-s        the guest has touched all but a little of its RAM; the balloon is
                   set to take RECLAIM (1 GiB) back; seconds until the guest reports
                   it all given (vessel: `vm update --balloon`, GET /vm actual_bytes;
                   QEMU: QMP balloon / query-balloon)
  reclaim-rss-mib  how far the VMM process's RSS fell over that reclaim
  fpr-returned     free page reporting on, no target: the guest touches and frees
                   FREE (1 GiB); the share of the RSS rise that the host gets back
                   within 20 s (target: at least 90 %)
  fpr-s            seconds from the free until 90 % had come back (or the 20 s)

Both VMMs run the same kernel and initramfs with 1 hart and GUEST_MEM of RAM; runs
interleave vessel and QEMU; medians are printed with the vessel/QEMU ratio.

usage: bench/resources/balloon.py [--runs 3] [--memory 1280M] [--reclaim 1024]
                                  [--free 1024] [--vessel PATH]
"""
import argparse
import json
import os
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
PROMPT = b"vessel-rv# "


def find_vessel(arg):
    for c in (arg, os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN or --vessel)")


def guest_dir():
    d = os.environ.get("VESSEL_GUEST_DIR")
    base = Path(d) if d else Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / \
        "vessel/guest"
    g = base / "riscv64"
    if not (g / "vmlinuz").exists():
        sys.exit(f"no riscv64 guest in {g}: run guest/build-riscv64.sh")
    return g


def rss(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


class Guest:
    """A VMM process with the guest's shell on its stdio."""

    def __init__(self, cmd):
        self.p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL)
        self.buf = b""
        self.wait_for(PROMPT, 180)

    def wait_for(self, needle, timeout):
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise RuntimeError(f"no {needle!r}: {self.buf[-500:]!r}")
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.5))
            if r:
                self.buf += os.read(self.p.stdout.fileno(), 65536)
        i = self.buf.index(needle) + len(needle)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def command(self, line, timeout=300):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.wait_for(PROMPT, timeout)

    def close(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


class VesselVM:
    def __init__(self, vessel, g, memory, tmp, reporting):
        self.sock = str(tmp / "api.sock")
        self.vessel = vessel
        opts = "stats=0,deflate-on-oom=off,free-page-reporting=" + ("on" if reporting else "off")
        self.g = Guest([vessel, "vm", "run", "--arch", "riscv64", "--memory", memory,
                        "--kernel", str(g / "vmlinuz"), "--initrd", str(g / "initrd.img"),
                        "--append", "console=ttyS0", "--api-sock", self.sock,
                        "--balloon", opts])
        self.pid = self.g.p.pid

    def api(self, *args):
        out = subprocess.run([self.vessel, "vm", *args, "--api-sock", self.sock],
                             capture_output=True, text=True, check=True).stdout
        return json.loads(out)

    def set_balloon(self, nbytes):
        self.api("update", "--balloon", f"{nbytes // 1024}K")

    def balloon_actual(self):
        return self.api("info")["balloon"]["actual_bytes"]


class QemuVM:
    def __init__(self, g, memory, tmp, reporting):
        self.qmp_path = str(tmp / "qmp.sock")
        self.mem = parse_size(memory)
        dev = "virtio-balloon-device,free-page-reporting=" + ("on" if reporting else "off")
        self.g = Guest(["qemu-system-riscv64", "-M", "virt", "-m", memory, "-smp", "1",
                        "-nographic", "-bios", "default", "-kernel", str(g / "vmlinuz"),
                        "-initrd", str(g / "initrd.img"), "-append", "console=ttyS0",
                        "-device", dev, "-qmp", f"unix:{self.qmp_path},server=on,wait=off"])
        self.pid = self.g.p.pid
        self.qmp = socket.socket(socket.AF_UNIX)
        self.qmp.connect(self.qmp_path)
        self.qf = self.qmp.makefile("rw")
        self.qf.readline()
        self.call("qmp_capabilities")

    def call(self, cmd, **args):
        self.qf.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
        self.qf.flush()
        while True:
            r = json.loads(self.qf.readline())
            if "return" in r or "error" in r:
                if "error" in r:
                    raise RuntimeError(r["error"])
                return r["return"]

    def set_balloon(self, nbytes):
        self.call("balloon", value=self.mem - nbytes)  # QEMU takes the guest's new size

    def balloon_actual(self):
        return self.mem - self.call("query-balloon")["actual"]


def parse_size(s):
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(s[:-1]) * units[s[-1]] if s[-1] in units else int(s)


def reclaim(make, args):
    vm = make(False)
    try:
        # fill the guest's RAM once so the host holds it
        vm.g.command(f"alloc {parse_size(args.memory) // MiB - 160}")
        r0 = rss(vm.pid)
        t0 = time.monotonic()
        vm.set_balloon(args.reclaim * MiB)
        while vm.balloon_actual() < args.reclaim * MiB:
            if time.monotonic() - t0 > 120:
                raise RuntimeError("the balloon did not reach its target in 120 s")
            time.sleep(0.02)
        secs = time.monotonic() - t0
        return {"reclaim-s": secs, "reclaim-rss-mib": (r0 - rss(vm.pid)) / MiB}
    finally:
        vm.g.close()


def reporting(make, args):
    vm = make(True)
    try:
        time.sleep(3)  # what boot freed is reported first
        r0 = rss(vm.pid)
        vm.g.command(f"alloc {args.free}")
        t_free = time.monotonic()
        peak, back_s = rss(vm.pid), None
        while time.monotonic() - t_free < 20:
            now = rss(vm.pid)
            peak = max(peak, now)
            if back_s is None and peak > r0 and (peak - now) >= 0.9 * (peak - r0):
                back_s = time.monotonic() - t_free
            time.sleep(0.05)
        r1 = rss(vm.pid)
        returned = (peak - r1) / (peak - r0) if peak > r0 else 0.0
        return {"fpr-returned": returned, "fpr-s": back_s if back_s is not None else 20.0}
    finally:
        vm.g.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory", default="1280M")
    ap.add_argument("--reclaim", type=int, default=1024, help="MiB")
    ap.add_argument("--free", type=int, default=1024, help="MiB")
    ap.add_argument("--vessel")
    args = ap.parse_args()
    vessel = find_vessel(args.vessel)
    g = guest_dir()
    res = {"vessel": [], "qemu": []}
    with tempfile.TemporaryDirectory(prefix="vessel-bench-balloon-") as d:
        tmp = Path(d)
        makers = {
            "vessel": lambda rep: VesselVM(vessel, g, args.memory, tmp, rep),
            "qemu": lambda rep: QemuVM(g, args.memory, tmp, rep),
        }
        for i in range(args.runs):
            for name in (("vessel", "qemu") if i % 2 == 0 else ("qemu", "vessel")):
                r = reclaim(makers[name], args)
                r.update(reporting(makers[name], args))
                res[name].append(r)
                print(f"run {i + 1} {name:6}: " + ", ".join(f"{k} {v:.2f}" for k, v in r.items()),
                      flush=True)
    print(f"\nriscv64 guest, {args.memory} RAM, reclaim {args.reclaim} MiB, free {args.free} MiB,"
          f" {args.runs} runs, medians:")
    print(f"{'':16}{'vessel':>10}{'qemu':>10}{'v/q':>8}")
    for k in ("reclaim-s", "reclaim-rss-mib", "fpr-returned", "fpr-s"):
        v = statistics.median(r[k] for r in res["vessel"])
        q = statistics.median(r[k] for r in res["qemu"])
        print(f"{k:16}{v:10.2f}{q:10.2f}{(v / q if q else 0):8.2f}")


if __name__ == "__main__":
    main()
