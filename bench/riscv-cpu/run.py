#!/usr/bin/python3
"""riscv64 CPU benchmark: the same CPU-bound program (tests/riscv-isa/user/bench.c:
a sieve, a double-precision matrix multiply, a bitwise CRC) under vessel's
user-mode emulation (`vessel emu`) with its default accelerator (the translator,
"vessel") and with the interpreter ("interp"), under Debian's qemu-riscv64 (TCG
JIT), and natively on x86-64. Runs are interleaved (vessel, interp, qemu, native,
vessel, ...); medians, the ratios and vessel's MIPS (guest instructions retired
per second, from VESSEL_EMU_STATS) are printed. The `vessel / qemu` row is the
default accelerator's, as in earlier runs. Then the same for two programs
built from source here: a CoreMark-style set of kernels (coremark.c: list
sort/find, matrix, state machine, CRC) and an LZ77 compressor round trip
(compress.c).

usage: bench/riscv-cpu/run.py [--runs N] [--scale N] [--vessel PATH] [--only W,...]
"""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "tests/riscv-isa/user/bench.c"
HERE = Path(__file__).resolve().parent


def find_vessel(arg):
    for c in (arg, os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN or --vessel)")


def timed(cmd, env=None):
    """(wall seconds, user+sys CPU seconds, stdout, stderr): CPU time is what
    to compare on a loaded machine, wall time is what a user waits."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    out, err = p.communicate(timeout=600)
    dt = time.monotonic() - t0
    # the child was reaped by communicate(); its CPU time is in RUSAGE_CHILDREN
    if p.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({p.returncode}):\n{err}")
    return dt, out, err


def cpu_of(fn):
    before = os.times()
    r = fn()
    after = os.times()
    return r, (after.children_user - before.children_user) + (after.children_system -
                                                               before.children_system)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--scale", type=int, default=30)
    ap.add_argument("--vessel")
    ap.add_argument("--only", help="comma-separated workloads: bench,coremark,compress")
    a = ap.parse_args()
    vessel = find_vessel(a.vessel)
    tmp = Path(tempfile.mkdtemp(prefix="vessel-riscv-cpu-"))
    if not Path("/usr/riscv64-linux-gnu/lib/libc.a").exists():
        sys.exit("bench/riscv-cpu: the riscv64 C library is missing "
                 "(apt-get install libc6-dev-riscv64-cross; scripts/setup.sh does)")
    # (name, source, argument): the mixed program first (the rows earlier runs
    # compare with), then the CoreMark-style kernels and the compressor
    workloads = [("bench", SRC, str(a.scale)),
                 ("coremark", HERE / "coremark.c", str(a.scale * 20)),
                 ("compress", HERE / "compress.c", str(max(1, a.scale // 10)))]
    if a.only:
        workloads = [w for w in workloads if w[0] in a.only.split(",")]
    for wname, src, arg in workloads:
        rv, native = tmp / f"{wname}-riscv64", tmp / f"{wname}-native"
        subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-O2", "-o", str(rv), str(src)],
                       check=True)
        subprocess.run(["gcc", "-O2", "-o", str(native), str(src)], check=True)
        run_workload(wname, vessel, rv, native, arg, a.runs)


def run_workload(wname, vessel, rv, native, scale, runs):
    env = dict(os.environ, VESSEL_EMU_STATS="1")
    times = {"vessel": [], "interp": [], "qemu": [], "native": []}
    cpu = {"vessel": [], "interp": [], "qemu": [], "native": []}
    mips = {"vessel": [], "interp": []}
    outs = set()
    for _ in range(runs):
        for name, accel in (("vessel", []), ("interp", ["--accel", "interp"])):
            (dt, out, err), c = cpu_of(lambda: timed([vessel, "emu", *accel, str(rv), scale], env))
            times[name].append(dt)
            cpu[name].append(c)
            outs.add(out)
            m = re.search(r"\(([\d.]+) MIPS\)", err)
            if m:
                mips[name].append(float(m.group(1)))
        (dt, out, _), c = cpu_of(lambda: timed(["qemu-riscv64", str(rv), scale]))
        times["qemu"].append(dt)
        cpu["qemu"].append(c)
        outs.add(out)
        (dt, out, _), c = cpu_of(lambda: timed([str(native), scale]))
        times["native"].append(dt)
        cpu["native"].append(c)
        outs.add(out)
    if len(outs) != 1:
        sys.exit(f"{wname}: outputs differ: {outs}")
    med = {k: statistics.median(v) for k, v in times.items()}
    mcpu = {k: statistics.median(v) for k, v in cpu.items()}
    title = "riscv-cpu benchmark" if wname == "bench" else f"riscv-cpu {wname}"
    print(f"{title} (argument {scale}, {runs} interleaved runs, medians)")
    print(f"  output          {outs.pop().strip()}")
    print(f"  {'':<15} {'wall s':>8} {'cpu s':>8}")
    for k in ("vessel", "interp", "qemu", "native"):
        print(f"  {k:<15} {med[k]:8.3f} {mcpu[k]:8.3f}")
    for k in ("vessel", "interp"):
        if mips[k]:
            print(f"  {k + ' MIPS':<15} {statistics.median(mips[k]):8.1f} (wall clock)")
    for x, y in (("vessel", "qemu"), ("vessel", "native"), ("qemu", "native"), ("interp", "qemu"),
                 ("vessel", "interp")):
        print(f"  {x + ' / ' + y:<15} {med[x] / max(med[y], 1e-9):7.2f}x "
              f"{mcpu[x] / max(mcpu[y], 1e-9):7.2f}x")

if __name__ == "__main__":
    main()
