#!/usr/bin/python3
"""Host memory of N riscv64 VMs of one template, with and without the kernel's
same-page merging (KSM).

Each VM boots the default riscv64 guest (guest/build-riscv64.sh) to its shell
with `vessel vm run --arch riscv64 --mergeable` (guest RAM private anonymous
and MADV_MERGEABLE). With KSM off the VMs' identical pages (kernel text,
page cache of the same initramfs, ...) are stored once per VM; with KSM on
(/sys/kernel/mm/ksm/run = 1, scanning fast) the kernel merges them. After the
VMs have booted both modes wait the same settle time, then the bench reads:

  pss-total    sum of the VM processes' Pss (smaps_rollup): what they cost
               the host, shared pages divided among their users (MiB)
  rss-total    sum of their RSS (a merged page counts once per VM) (MiB)
  host-used    the host's MemTotal - MemAvailable, minus the same before the
               VMs started (MiB)
  ksm-sharing  pages_sharing: page mappings KSM saved (MiB)

Runs interleave the two modes (off, on, on, off, ...); medians and the
on/off ratio are printed. The KSM settings are restored at the end (also on
errors or Ctrl-C); KSM is switched to 2 (unmerge everything) between runs.

usage: bench/resources/run.py [--vms 10] [--runs 3] [--memory 128M] [--settle 30]
                              [--vessel PATH]
"""
import argparse
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KSM = Path("/sys/kernel/mm/ksm")
MARKER = "VESSEL-RISCV-READY"
MiB = 1 << 20


def find_vessel(arg):
    for c in (arg, os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN or --vessel)")


def ksm_read(name):
    return (KSM / name).read_text().strip()


def ksm_write(name, value):
    (KSM / name).write_text(str(value))


def meminfo():
    m = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":")
        m[k] = int(v.split()[0]) * 1024
    return m


def host_used():
    m = meminfo()
    return m["MemTotal"] - m["MemAvailable"]


def rollup(pid):
    out = {}
    for line in open(f"/proc/{pid}/smaps_rollup"):
        parts = line.split()
        if parts and parts[0] in ("Rss:", "Pss:"):
            out[parts[0][:-1]] = int(parts[1]) * 1024
    return out


def set_mode(on):
    if on:
        ksm_write("pages_to_scan", 20000)
        ksm_write("sleep_millisecs", 10)
        ksm_write("run", 1)
    else:
        ksm_write("run", 2)  # unmerge what an earlier run merged
        ksm_write("run", 0)


def start_vms(vessel, n, memory, tmp):
    procs, logs = [], []
    for i in range(n):
        log = tmp / f"vm{i}.log"
        logs.append(log)
        procs.append(subprocess.Popen(
            [vessel, "vm", "run", "--arch", "riscv64", "--mergeable", "--memory", memory,
             "--console", f"file:{log}"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE))
    deadline = time.monotonic() + 300
    for p, log in zip(procs, logs):
        while not (log.exists() and MARKER in log.read_text(errors="replace")):
            if p.poll() is not None:
                stop_vms(procs)
                sys.exit(f"a VM exited early: {p.stderr.read().decode(errors='replace')}")
            if time.monotonic() > deadline:
                stop_vms(procs)
                sys.exit("the VMs did not boot in 300 s")
            time.sleep(0.2)
    return procs


def stop_vms(procs):
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def one_run(vessel, on, args):
    set_mode(on)
    time.sleep(1)
    base = host_used()
    with tempfile.TemporaryDirectory(prefix="vessel-bench-ksm-") as d:
        procs = start_vms(vessel, args.vms, args.memory, Path(d))
        try:
            time.sleep(args.settle)
            roll = [rollup(p.pid) for p in procs]
            r = {
                "pss-total": sum(x["Pss"] for x in roll) / MiB,
                "rss-total": sum(x["Rss"] for x in roll) / MiB,
                "host-used": (host_used() - base) / MiB,
                "ksm-sharing": int(ksm_read("pages_sharing")) * 4096 / MiB,
            }
        finally:
            stop_vms(procs)
    return r


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--vms", type=int, default=10)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--memory", default="128M")
    ap.add_argument("--settle", type=float, default=30.0,
                    help="seconds after boot before measuring (both modes)")
    ap.add_argument("--vessel")
    args = ap.parse_args()
    vessel = find_vessel(args.vessel)
    if os.geteuid() != 0 or not (KSM / "run").exists():
        sys.exit("needs root and /sys/kernel/mm/ksm (CONFIG_KSM)")
    saved = {k: ksm_read(k) for k in ("run", "pages_to_scan", "sleep_millisecs")}
    results = {False: [], True: []}
    try:
        for i in range(args.runs):
            order = (False, True) if i % 2 == 0 else (True, False)
            for on in order:
                r = one_run(vessel, on, args)
                results[on].append(r)
                print(f"run {i + 1} ksm {'on ' if on else 'off'}: " +
                      ", ".join(f"{k} {v:.1f}" for k, v in r.items()), flush=True)
    finally:
        if saved["run"] == "0":
            ksm_write("run", 2)
        ksm_write("pages_to_scan", saved["pages_to_scan"])
        ksm_write("sleep_millisecs", saved["sleep_millisecs"])
        ksm_write("run", saved["run"])
    print(f"\n{args.vms} riscv64 VMs of {args.memory}, {args.runs} runs, medians (MiB):")
    print(f"{'':14}{'ksm off':>10}{'ksm on':>10}{'on/off':>8}")
    for k in ("pss-total", "rss-total", "host-used", "ksm-sharing"):
        off = statistics.median(r[k] for r in results[False])
        on = statistics.median(r[k] for r in results[True])
        ratio = f"{on / off:.2f}" if off > 0 else "-"
        print(f"{k:14}{off:10.1f}{on:10.1f}{ratio:>8}")


if __name__ == "__main__":
    main()
