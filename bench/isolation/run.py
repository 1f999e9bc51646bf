#!/usr/bin/python3
"""Isolation overhead: the riscv64 Linux guest (guest/build-riscv64.sh) booted
by vessel with no confinement, with per-thread seccomp (the default), with
seccomp + landlock, and with seccomp + landlock + the jail (needs root).

  to-marker   process start -> the initramfs /init prints VESSEL-RISCV-READY
  to-exit     process start -> process exit after the guest's poweroff
              (vessel.poweroff), tear-down and, for the jail, its outer process
  cpu         user + system CPU seconds of the VM process(es) over that run
              (less sensitive than wall time to other work on a shared host)

Runs are interleaved (none, seccomp, ..., none, ...); medians and the ratio to
"none" are printed (the issue's target: within 2 %). Then the cost of one
system call under each thread role's filter (tests/unit/test_jail_seccomp
--bench, from the same build).

usage: bench/isolation/run.py [--runs N] [--vessel PATH]
"""
import argparse
import os
import resource
import select
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MARKER = b"VESSEL-RISCV-READY"


def find_vessel(arg):
    for c in (arg, os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN or --vessel)")


def guest_dir():
    if os.environ.get("VESSEL_GUEST_DIR"):
        return Path(os.environ["VESSEL_GUEST_DIR"]) / "riscv64"
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "vessel/guest/riscv64"


def cpu_children():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def timed(cmd, timeout=120):
    """(seconds to the marker, seconds to exit, CPU seconds)."""
    c0 = cpu_children()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL)
    out, t_mark, fd = b"", None, p.stdout.fileno()
    while True:
        left = t0 + timeout - time.monotonic()
        if left <= 0:
            p.kill()
            p.wait()
            raise RuntimeError(f"timeout: {' '.join(cmd)}\n{out[-2000:].decode(errors='replace')}")
        r, _, _ = select.select([fd], [], [], min(left, 0.5))
        if not r:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        out += chunk
        if t_mark is None and MARKER in out:
            t_mark = time.monotonic() - t0
    rc = p.wait()
    t_exit = time.monotonic() - t0
    if rc != 0 or t_mark is None:
        raise RuntimeError(f"exit {rc}: {' '.join(cmd)}\n{out[-2000:].decode(errors='replace')}")
    return t_mark, t_exit, cpu_children() - c0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vessel")
    a = ap.parse_args()
    vessel = find_vessel(a.vessel)
    g = guest_dir()
    if not (g / "vmlinuz").exists():
        sys.exit(f"no riscv64 guest in {g}: run guest/build-riscv64.sh")
    tmp = Path(tempfile.mkdtemp(prefix="vessel-bench-isolation-"))
    base = [vessel, "vm", "run", "--arch", "riscv64", "--kernel", str(g / "vmlinuz"),
            "--initrd", str(g / "initrd.img"), "--append", "console=ttyS0 vessel.poweroff",
            "--console", "stdio"]
    variants = [("none", ["--seccomp=off"]), ("seccomp", []),
                ("seccomp+landlock", ["--landlock=on"])]
    if os.geteuid() == 0:
        variants.append(("seccomp+landlock+jail", ["--landlock=on", "--jail", str(tmp / "jail")]))
    else:
        print("(not root: no jail row)")
    res = {}
    for i in range(a.runs):
        for name, extra in variants:
            res.setdefault(name, []).append(timed(base + extra))
        print(f"run {i + 1}/{a.runs} done", file=sys.stderr)
    ref = [statistics.median(x[k] for x in res["none"]) for k in (0, 1, 2)]
    print(f"riscv64 Linux boot, {a.runs} interleaved runs, medians (ratio to none)")
    print(f"{'variant':<24} {'to-marker s':>12} {'ratio':>6} {'to-exit s':>10} {'ratio':>6}"
          f" {'cpu s':>7} {'ratio':>6}")
    for name, _ in variants:
        m, e, c = (statistics.median(x[k] for x in res[name]) for k in (0, 1, 2))
        print(f"{name:<24} {m:>12.3f} {m / ref[0]:>6.3f} {e:>10.3f} {e / ref[1]:>6.3f}"
              f" {c:>7.3f} {c / ref[2]:>6.3f}")
    micro = Path(vessel).parents[2] / "tests/unit/test_jail_seccomp"
    if micro.exists():
        print(subprocess.run([str(micro), "--bench"], capture_output=True, text=True).stdout,
              end="")


if __name__ == "__main__":
    main()
