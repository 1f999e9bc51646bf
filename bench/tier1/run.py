#!/usr/bin/python3
"""Tier-1 benchmark: vessel vs QEMU microvm on the same test guest
(tests/guests/x86), directly on /dev/kvm.

  create-to-first-byte  process start -> first byte on the serial console
                        (VM creation, kernel load, first guest instructions)
  time-to-exit          process start -> exit after the guest's ACPI poweroff
  exit latency          (time for N port writes - time for 0) / N: one
                        guest I/O exit handled in user space and back
  own RSS               the VMM's resident memory minus the guest RAM mapping
                        (sampled while the guest idles); "private" counts only
                        pages not shared with other processes (no shared
                        library text)

Runs are interleaved (vessel, qemu, vessel, ...), >= 5 each; medians and the
vessel/QEMU ratio are printed.

usage: bench/tier1/run.py [--runs N] [--exits N] [--vessel PATH]
"""
import argparse
import os
import re
import select
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_vessel():
    for c in (os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN)")


def vessel_cmd(vessel, guest, append, mem="256M"):
    return [vessel, "vm", "run", "--kernel", str(guest), "--memory", mem, "--append", append]


def qemu_cmd(guest, append, mem="256M"):
    return ["qemu-system-x86_64", "-M", "microvm", "-accel", "kvm", "-cpu", "host", "-m", mem,
            "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", str(guest), "-append", append]


def timed_run(cmd, timeout=120):
    """(seconds to first stdout byte, seconds to exit, output)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    first = None
    out = b""
    fd = p.stdout.fileno()
    while True:
        r, _, _ = select.select([fd], [], [], timeout)
        if not r:
            p.kill()
            raise RuntimeError(f"timeout: {' '.join(cmd)}")
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        if first is None:
            first = time.monotonic() - t0
        out += chunk
    p.wait()
    t_exit = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {p.returncode}: {out[-300:]!r}")
    return first, t_exit, out


def own_rss_kib(cmd, guest_bytes):
    """Rss of the VMM minus the guest RAM mapping(s), while the guest idles."""
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                         stdin=subprocess.DEVNULL)
    out = b""
    deadline = time.monotonic() + 60
    while b"hanging" not in out and time.monotonic() < deadline:
        r, _, _ = select.select([p.stdout], [], [], 1)
        if r:
            out += os.read(p.stdout.fileno(), 4096)
    time.sleep(0.2)
    total = guest = private = 0
    size = None
    with open(f"/proc/{p.pid}/smaps") as f:
        for line in f:
            m = re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line)
            if m:
                a, b = line.split()[0].split("-")
                size = int(b, 16) - int(a, 16)
                name = line.split()[-1] if len(line.split()) >= 6 else ""
                is_guest = size == guest_bytes or "vessel-guest-ram" in name
                continue
            if line.startswith("Rss:"):
                kib = int(line.split()[1])
                total += kib
                if is_guest:
                    guest += kib
            elif line.startswith(("Private_Clean:", "Private_Dirty:")) and not is_guest:
                private += int(line.split()[1])
    p.send_signal(signal.SIGTERM)
    try:
        p.wait(timeout=10)
    except subprocess.TimeoutExpired:
        p.kill()
    return total - guest, guest, private


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--exits", type=int, default=20000)
    ap.add_argument("--vessel", default=None)
    args = ap.parse_args()
    vessel = args.vessel or find_vessel()
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh")], check=True)
    guest = ROOT / "tests/guests/out/x86/guest.elf"
    have_qemu = subprocess.run(["sh", "-c", "command -v qemu-system-x86_64"],
                               capture_output=True).returncode == 0

    vmms = {"vessel": lambda a: vessel_cmd(vessel, guest, a)}
    if have_qemu:
        vmms["qemu"] = lambda a: qemu_cmd(guest, a)
    res = {k: {"first": [], "exit": [], "e0": [], "eN": []} for k in vmms}
    for _ in range(args.runs):
        for name, mk in vmms.items():
            first, t_exit, out = timed_run(mk("test=hello"))
            assert b"hello from the vessel test guest" in out, out
            res[name]["first"].append(first)
            res[name]["exit"].append(t_exit)
            _, e0, _ = timed_run(mk("test=exits n=0"))
            _, eN, out = timed_run(mk(f"test=exits n={args.exits}"))
            assert b"exits: done" in out
            res[name]["e0"].append(e0)
            res[name]["eN"].append(eN)

    med = statistics.median
    rows = {}
    for name, r in res.items():
        rows[name] = {
            "first_ms": med(r["first"]) * 1e3,
            "exit_ms": med(r["exit"]) * 1e3,
            "exit_us": (med(r["eN"]) - med(r["e0"])) / args.exits * 1e6,
        }
        own, g, private = own_rss_kib(vmms[name]("test=hang"), 256 << 20)
        rows[name]["own_rss_kib"] = own
        rows[name]["guest_rss_kib"] = g
        rows[name]["private_kib"] = private

    print(f"tier-1 x86 benchmark: {args.runs} interleaved runs each, medians; "
          f"exit latency over {args.exits} port writes")
    print(f"{'':8} {'first byte':>12} {'to exit':>10} {'per exit':>10} {'own RSS':>10} "
          f"{'private':>10}")
    for name, r in rows.items():
        print(f"{name:8} {r['first_ms']:10.1f}ms {r['exit_ms']:8.1f}ms {r['exit_us']:8.2f}us "
              f"{r['own_rss_kib'] / 1024:8.2f}MiB {r['private_kib'] / 1024:7.2f}MiB")
    if "qemu" in rows:
        v, q = rows["vessel"], rows["qemu"]
        print(f"ratio vessel/qemu: first byte {v['first_ms'] / q['first_ms']:.2f}, "
              f"to exit {v['exit_ms'] / q['exit_ms']:.2f}, "
              f"per exit {v['exit_us'] / q['exit_us']:.2f}, "
              f"own RSS {v['own_rss_kib'] / max(q['own_rss_kib'], 1):.2f}, "
              f"private {v['private_kib'] / max(q['private_kib'], 1):.2f}")
    else:
        print("qemu-system-x86_64 not installed: vessel only")


if __name__ == "__main__":
    main()
