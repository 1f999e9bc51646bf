#!/usr/bin/python3
"""Disk rate limiters, measured against what was set: vessel (`--disk
PATH,bw=,iops=`, token buckets) and qemu-system-riscv64 -M virt (`-drive
...,throttling.bps-read=,throttling.iops-read=`) on the same riscv64 guest and the
same raw image, in the same run.

The guest reads its disk with O_DIRECT (no page cache: `readdev` in the test
guest's init) for about 6 seconds' worth at each limit, in 64 KiB reads for
bandwidth limits and 4 KiB reads for operation limits; the host times the
command. Each row shows measured/set (1.00 is exact; a burst the limiter
allows up front shows as a little over 1). Runs interleave vessel and QEMU;
medians are printed.

usage: bench/resources/ratelimit.py [--runs 3] [--vessel PATH]
"""
import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from balloon import Guest, find_vessel, guest_dir  # noqa: E402

MiB = 1 << 20
LIMITS = [("bw", 2 * MiB), ("bw", 8 * MiB), ("iops", 100), ("iops", 400)]


def vessel_cmd(vessel, g, disk, kind, value):
    opt = f"bw={value}" if kind == "bw" else f"iops={value}"
    return [vessel, "vm", "run", "--arch", "riscv64", "--memory", "256M", "--kernel",
            str(g / "vmlinuz"), "--initrd", str(g / "initrd.img"), "--append", "console=ttyS0",
            "--disk", f"{disk},{opt}"]


def qemu_cmd(g, disk, kind, value):
    opt = f"throttling.bps-read={value}" if kind == "bw" else f"throttling.iops-read={value}"
    return ["qemu-system-riscv64", "-M", "virt", "-m", "256M", "-smp", "1", "-nographic",
            "-bios", "default", "-kernel", str(g / "vmlinuz"), "-initrd", str(g / "initrd.img"),
            "-append", "console=ttyS0", "-drive", f"file={disk},if=none,id=d0,format=raw,{opt}",
            "-device", "virtio-blk-device,drive=d0"]


def measure(cmd, kind, value):
    guest = Guest(cmd)
    try:
        if kind == "bw":
            mib, block = max(1, 6 * value // MiB), 65536
        else:
            mib, block = max(1, 6 * value * 4096 // MiB), 4096
        t0 = time.monotonic()
        out = guest.command(f"readdev /dev/vda {mib} {block}")
        secs = time.monotonic() - t0
        if f"readdev: {mib * MiB} bytes" not in out:
            raise RuntimeError(f"readdev failed: {out}")
        got = mib * MiB / secs if kind == "bw" else mib * MiB / block / secs
        return got / value
    finally:
        guest.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vessel")
    args = ap.parse_args()
    vessel = find_vessel(args.vessel)
    g = guest_dir()
    res = {(k, v, who): [] for k, v in LIMITS for who in ("vessel", "qemu")}
    with tempfile.TemporaryDirectory(prefix="vessel-bench-rate-") as d:
        disk = Path(d) / "disk.img"
        with open(disk, "wb") as f:
            f.truncate(64 * MiB)
        for i in range(args.runs):
            for kind, value in LIMITS:
                order = ("vessel", "qemu") if i % 2 == 0 else ("qemu", "vessel")
                for who in order:
                    cmd = (vessel_cmd(vessel, g, disk, kind, value) if who == "vessel"
                           else qemu_cmd(g, disk, kind, value))
                    r = measure(cmd, kind, value)
                    res[(kind, value, who)].append(r)
                    print(f"run {i + 1} {who:6} {kind}={value}: measured/set {r:.3f}", flush=True)
    print(f"\nriscv64 guest, O_DIRECT reads of a raw image, {args.runs} runs, medians of "
          "measured/set:")
    print(f"{'limit':18}{'vessel':>10}{'qemu':>10}")
    for kind, value in LIMITS:
        name = f"{value // MiB} MiB/s" if kind == "bw" else f"{value} reads/s"
        v = statistics.median(res[(kind, value, "vessel")])
        q = statistics.median(res[(kind, value, "qemu")])
        print(f"{name:18}{v:10.3f}{q:10.3f}")


if __name__ == "__main__":
    main()
