#!/usr/bin/python3
"""riscv64 boot benchmark: vessel's emulated board vs qemu-system-riscv64 -M virt
(TCG) on the same guest (guest/build-riscv64.sh: Linux 6.1 Image + initramfs).

  linux-to-marker   process start -> the initramfs /init prints VESSEL-RISCV-READY
                    (firmware, kernel boot, unpacking the initramfs, exec of init)
  linux-to-exit     process start -> process exit after the guest's poweroff
  uboot-prompt      process start -> Debian's S-mode U-Boot prints its "=> " prompt
                    (under OpenSBI fw_jump; autoboot is cut short with a key)
  linux-max-rss     peak resident memory of the process over the Linux boot (MiB;
                    guest RAM is 256 MiB, touched only as the guest uses it)
  vessel MIPS       guest instructions retired per second of hart-thread CPU time
                    over the Linux boot (VESSEL_RISCV_STATS)

Variants: vessel with Debian's OpenSBI (fw_dynamic, like QEMU's default firmware),
vessel with its built-in SBI (no firmware), both with the default accelerator (the
translator on x86-64, as in earlier runs of these rows), the built-in SBI again with
the interpreter (`--accel interp`, "vessel+sbi/interp"), and QEMU with its bundled
OpenSBI.
Runs are interleaved (vessel, qemu, vessel, ...); medians and vessel/QEMU ratios
are printed (a ratio below 1 means vessel is faster).

usage: bench/riscv-boot/run.py [--runs N] [--cpus N] [--vessel PATH]
"""
import argparse
import os
import re
import select
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
OPENSBI = "/usr/lib/riscv64-linux-gnu/opensbi/generic/"
UBOOT = "/usr/lib/u-boot/qemu-riscv64_smode/u-boot.bin"
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


def timed(cmd, marker, keys=None, timeout=120):
    """(seconds to marker, seconds to exit or None, output). If keys is set it
    is sent once `keys[0]` appears, and the process is killed at the marker."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                         stdin=subprocess.PIPE if keys else subprocess.DEVNULL)
    out = b""
    t_mark = None
    sent = False
    fd = p.stdout.fileno()
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
        if keys and not sent and keys[0] in out:
            p.stdin.write(keys[1])
            p.stdin.flush()
            sent = True
        if t_mark is None and marker in (out.split(keys[0], 1)[1] if keys and sent else out):
            t_mark = time.monotonic() - t0
            if keys:
                p.kill()
                break
    _, _, ru = os.wait4(p.pid, 0)  # like p.wait(), plus the child's peak RSS
    p.returncode = 0
    for f in (p.stdout, p.stdin):
        if f:
            f.close()
    t_exit = time.monotonic() - t0
    if t_mark is None:
        raise RuntimeError(f"no marker from {' '.join(cmd)}\n{out[-2000:].decode(errors='replace')}")
    timed.last_rss_mib = ru.ru_maxrss / 1024
    return t_mark, (None if keys else t_exit), out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--vessel")
    a = ap.parse_args()
    vessel = find_vessel(a.vessel)
    g = guest_dir()
    if not (g / "vmlinuz").exists():
        sys.exit(f"{g}/vmlinuz is missing: run guest/build-riscv64.sh")
    kernel, initrd = str(g / "vmlinuz"), str(g / "initrd.img")
    append = "console=ttyS0 vessel.poweroff"
    cpus = str(a.cpus)

    linux = {
        "vessel+opensbi": [vessel, "vm", "run", "--arch", "riscv64", "--memory", "256M",
                           "--cpus", cpus, "--bios", OPENSBI + "fw_dynamic.bin",
                           "--kernel", kernel, "--initrd", initrd, "--append", append],
        "vessel+sbi": [vessel, "vm", "run", "--arch", "riscv64", "--memory", "256M",
                       "--cpus", cpus, "--kernel", kernel, "--initrd", initrd,
                       "--append", append],
        "vessel+sbi/interp": [vessel, "vm", "run", "--arch", "riscv64", "--memory", "256M",
                              "--accel", "interp", "--cpus", cpus, "--kernel", kernel,
                              "--initrd", initrd, "--append", append],
        "qemu": ["qemu-system-riscv64", "-M", "virt", "-m", "256M", "-smp", cpus, "-nographic",
                 "-no-reboot", "-bios", "default", "-kernel", kernel, "-initrd", initrd,
                 "-append", append],
    }
    uboot = {
        "vessel+opensbi": [vessel, "vm", "run", "--arch", "riscv64", "--memory", "256M",
                           "--bios", OPENSBI + "fw_jump.bin", "--kernel", UBOOT],
        "qemu": ["qemu-system-riscv64", "-M", "virt", "-m", "256M", "-nographic",
                 "-bios", OPENSBI + "fw_jump.bin", "-kernel", UBOOT],
    }
    res = {}
    mips = {}
    os.environ["VESSEL_RISCV_STATS"] = "1"
    for i in range(a.runs):
        for name, cmd in linux.items():
            m, e, _out = timed(cmd, MARKER)
            res.setdefault(("linux-to-marker", name), []).append(m)
            res.setdefault(("linux-to-exit", name), []).append(e)
            res.setdefault(("linux-max-rss", name), []).append(timed.last_rss_mib)
            m = re.search(rb"riscv64 stats: total: (\d+) instructions in ([\d.]+) s CPU", _out)
            if m:
                mips.setdefault(name, []).append(int(m[1]) / float(m[2]) / 1e6)
        for name, cmd in uboot.items():
            m, _, _ = timed(cmd, b"=> ", keys=(b"autoboot", b"\n"))
            res.setdefault(("uboot-prompt", name), []).append(m)
        print(f"run {i + 1}/{a.runs} done", file=sys.stderr)

    print(f"riscv64 boot, {a.runs} interleaved runs each, --cpus {a.cpus}, medians "
          "(seconds; RSS in MiB)")
    print(f"{'metric':18} {'variant':18} {'median':>8} {'min':>8} {'max':>8} {'vs qemu':>8}")
    for metric in ("linux-to-marker", "linux-to-exit", "uboot-prompt", "linux-max-rss"):
        q = statistics.median(res[(metric, "qemu")])
        for (m, name), v in res.items():
            if m != metric:
                continue
            med = statistics.median(v)
            print(f"{metric:18} {name:18} {med:8.3f} {min(v):8.3f} {max(v):8.3f} "
                  f"{med / q:7.2f}x")
    for name, v in mips.items():
        print(f"{'linux-boot-MIPS':18} {name:18} {statistics.median(v):8.0f} {min(v):8.0f} "
              f"{max(v):8.0f}")


if __name__ == "__main__":
    main()
