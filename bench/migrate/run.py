#!/usr/bin/python3
"""Live migration: vessel vs QEMU on the same riscv64 guest, same run.

Both VMMs run the same Linux guest (guest/build-riscv64.sh's kernel and
initramfs; QEMU's virt board with its OpenSBI, vessel's emulated board with
its SBI), both on their translator, both migrating over TCP on 127.0.0.1
with a 20 ms downtime limit (QEMU: migrate-set-parameters downtime-limit,
vessel: --downtime-limit). Each workload runs in the guest before the
migration starts:

  idle        nothing but the shell and the guest's ticker
  dirty-slow  `dirty 32 SPIN` with a long spin: a few MiB/s
  dirty-fast  `dirty 32 SPIN` with a short spin: faster than the link
              can carry at --bandwidth (both get the same cap), migrated
              with auto-converge on both
  postcopy    the same guest and cap, with post-copy on both (vessel:
              --postcopy switches after round 2; QEMU: postcopy-ram, and
              migrate-start-postcopy once its second round began)
  idle-x86    x86-64 under KVM on this host's /dev/kvm instead: the tier-1
              test guest (tests/guests/x86, `test=counter`, 256 MiB) on
              vessel and on QEMU -M microvm -accel kvm, idle but for its
              counter on the serial port (needs /dev/kvm; skipped without)

Per run: total time, downtime as each VMM reports it (vessel: its pause
until the destination's RUNNING; QEMU: query-migrate's "downtime"), bytes
on the wire (vessel: bytes_sent; QEMU: ram transferred) and rounds. Runs
alternate which VMM goes first; the table shows medians and the ratio
vessel/QEMU (below 1: vessel is faster or sends less). No assertions.

usage: bench/migrate/run.py [--runs N] [--vessel PATH] [--guest DIR]
       [--bandwidth 32M] [--workloads idle,dirty-slow,dirty-fast,postcopy,idle-x86]
"""
import argparse
import json
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PROMPT = b"vessel-rv# "
WORKLOADS = {"idle": None, "dirty-slow": "dirty 32 40000", "dirty-fast": "dirty 32 2000",
             "postcopy": "dirty 32 2000", "idle-x86": None}
X86 = ROOT / "tests/guests/out/x86"


def x86_ready():
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh"), str(X86)], check=True,
                   capture_output=True)


class Guest:
    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""

    def expect(self, needle=PROMPT, timeout=120):
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise RuntimeError(f"no {needle!r} from {self.p.args[0]}: {self.buf[-500:]!r}")
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.2))
            if r:
                self.buf += os.read(self.p.stdout.fileno(), 65536)
        i = self.buf.index(needle) + len(needle)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def run(self, line, timeout=60):
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.expect(PROMPT, timeout)

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("the destination exited before listening")
        out = subprocess.run(["ss", "-Hltn", f"sport = :{port}"], capture_output=True,
                             text=True).stdout
        if out.strip():
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


class QMP:
    def __init__(self, path):
        deadline = time.monotonic() + 30
        while True:
            try:
                self.s = socket.socket(socket.AF_UNIX)
                self.s.connect(str(path))
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)
        self.f = self.s.makefile("rwb")
        self.read()
        self.cmd("qmp_capabilities")

    def read(self):
        while True:
            msg = json.loads(self.f.readline())
            if "event" not in msg:
                return msg

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}).encode() + b"\n")
        self.f.flush()
        r = self.read()
        if "error" in r:
            raise RuntimeError(f"QMP {name}: {r['error']}")
        return r["return"]

    def close(self):
        self.s.close()


def guest_args(guest):
    return ["--kernel", str(guest / "vmlinuz"), "--initrd", str(guest / "initrd.img")]


def ready(g, workload):
    """The guest is up and running its workload."""
    if workload == "idle-x86":
        g.expect(b"count 00000010")
        time.sleep(1)
        return
    g.expect()
    g.run("ticker")
    if WORKLOADS[workload]:
        g.run(WORKLOADS[workload])
    time.sleep(2)


def goes_on(g, workload):
    """The moved guest answers on the destination."""
    if workload == "idle-x86":
        g.buf = b""
        g.expect(b"count ")
    else:
        g.run("echo moved")


def run_vessel(a, guest, workload, tmp):
    sock = tmp / "v-src.sock"
    port = free_port()
    x86 = workload == "idle-x86"
    machine = ["--kernel", str(X86 / "guest.elf"), "--append", "test=counter"] if x86 else \
        ["--arch", "riscv64", *guest_args(guest), "--append", "console=ttyS0"]
    src = Guest([a.vessel, "vm", "run", *machine, "--memory", "256M", "--console", "stdio",
                 "--api-sock", str(sock)])
    dst = None
    try:
        ready(src, workload)
        dst = Guest([a.vessel, "vm", "run", "--incoming", f"tcp:127.0.0.1:{port}", "--console",
                     "stdio"])
        wait_port(port, dst.p)
        flags = ["--downtime-limit", "20ms", "--quiet"]
        if workload == "dirty-fast":
            flags += ["--bandwidth", a.bandwidth, "--auto-converge"]
        if workload == "postcopy":
            flags += ["--bandwidth", a.bandwidth, "--postcopy"]
        t0 = time.monotonic()
        p = subprocess.run([a.vessel, "vm", "migrate", "--api-sock", str(sock), "--to",
                            f"tcp:127.0.0.1:{port}", "--detach", *flags], capture_output=True,
                           text=True, timeout=60)
        if p.returncode:
            raise RuntimeError(p.stderr)
        st = {}
        while True:
            q = subprocess.run([a.vessel, "vm", "migrate", "--api-sock", str(sock), "--status"],
                               capture_output=True, text=True, timeout=30)
            if q.returncode == 0:
                st = json.loads(q.stdout)
            if st.get("state") in ("completed", "failed", "cancelled", "unknown") or \
                    src.p.poll() is not None:
                break
            if time.monotonic() - t0 > a.timeout:
                raise RuntimeError("vessel migration did not finish")
            time.sleep(0.05)
        total = time.monotonic() - t0
        if st.get("state") != "completed":
            raise RuntimeError(f"vessel migration: {st}")
        goes_on(dst, workload)
        print(f"  vessel downtime parts: {st.get('downtime_parts')}", flush=True)
        return {"total_ms": st["total_ms"], "downtime_ms": st["downtime_ms"],
                "bytes": st["bytes_sent"], "rounds": st["round"], "wall_ms": total * 1e3}
    finally:
        src.kill()
        if dst:
            dst.kill()


def run_qemu(a, guest, workload, tmp):
    port = free_port()
    x86 = workload == "idle-x86"
    if x86:
        base = ["qemu-system-x86_64", "-accel", "kvm", "-M", "microvm", "-m", "256M",
                "-nodefaults", "-display", "none", "-monitor", "none", "-serial", "stdio",
                "-kernel", str(X86 / "guest32.elf"), "-append", "test=counter"]
    else:
        base = [a.qemu, "-M", "virt", "-m", "256M", "-nographic", "-monitor", "none", "-serial",
                "stdio", *["-kernel", str(guest / "vmlinuz"), "-initrd",
                           str(guest / "initrd.img")], "-append", "console=ttyS0"]
    sq, dq = tmp / "q-src.qmp", tmp / "q-dst.qmp"
    src = Guest(base + ["-qmp", f"unix:{sq},server=on,wait=off"])
    dst = qs = qd = None
    try:
        ready(src, workload)
        dst = Guest(base + ["-qmp", f"unix:{dq},server=on,wait=off", "-incoming",
                            f"tcp:127.0.0.1:{port}"])
        wait_port(port, dst.p)
        qs = QMP(sq)
        params = {"downtime-limit": 20}
        if workload in ("dirty-fast", "postcopy"):
            params["max-bandwidth"] = parse_size(a.bandwidth)
            cap = "auto-converge" if workload == "dirty-fast" else "postcopy-ram"
            caps = [{"capability": cap, "state": True}]
            qs.cmd("migrate-set-capabilities", capabilities=caps)
            if workload == "postcopy":
                QMP(dq).cmd("migrate-set-capabilities", capabilities=caps)
        else:
            params["max-bandwidth"] = 1 << 40
        qs.cmd("migrate-set-parameters", **params)
        t0 = time.monotonic()
        qs.cmd("migrate", uri=f"tcp:127.0.0.1:{port}")
        started_postcopy = False
        while True:
            st = qs.cmd("query-migrate")
            if workload == "postcopy" and not started_postcopy and \
                    st.get("ram", {}).get("dirty-sync-count", 0) >= 2:
                qs.cmd("migrate-start-postcopy")
                started_postcopy = True
            if st.get("status") in ("completed", "failed", "cancelled"):
                break
            if time.monotonic() - t0 > a.timeout:
                qs.cmd("migrate_cancel")
                raise RuntimeError("QEMU migration did not finish")
            time.sleep(0.05)
        total = time.monotonic() - t0
        if st["status"] != "completed":
            raise RuntimeError(f"QEMU migration: {st}")
        goes_on(dst, workload)
        ram = st.get("ram", {})
        return {"total_ms": st.get("total-time", total * 1e3), "downtime_ms": st.get("downtime"),
                "bytes": ram.get("transferred"), "rounds": ram.get("dirty-sync-count"),
                "wall_ms": total * 1e3}
    finally:
        if qs:
            qs.close()
        src.kill()
        if dst:
            dst.kill()


def parse_size(s):
    m = re.fullmatch(r"(\d+)([KMG]?)", s)
    return int(m.group(1)) << {"": 0, "K": 10, "M": 20, "G": 30}[m.group(2)]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--vessel", default=os.environ.get("VESSEL_BIN",
                                                       str(ROOT / "build/src/cmd/vessel")))
    ap.add_argument("--qemu", default="qemu-system-riscv64")
    ap.add_argument("--guest", default=os.environ.get(
        "VESSEL_GUEST_DIR", str(Path.home() / ".cache/vessel/guest")) + "/riscv64")
    ap.add_argument("--bandwidth", default="32M")
    ap.add_argument("--workloads", default="idle,dirty-slow,dirty-fast,postcopy,idle-x86")
    ap.add_argument("--timeout", type=float, default=180)
    a = ap.parse_args()
    guest = Path(a.guest)
    if "idle-x86" in a.workloads.split(","):
        if not os.access("/dev/kvm", os.R_OK | os.W_OK):
            print("idle-x86: skipped: /dev/kvm is not usable here", file=sys.stderr)
            a.workloads = ",".join(w for w in a.workloads.split(",") if w != "idle-x86")
        else:
            x86_ready()
    results = {}
    with tempfile.TemporaryDirectory(prefix="vessel-bench-migrate-") as t:
        tmp = Path(t)
        for w in a.workloads.split(","):
            for i in range(a.runs):
                order = [("vessel", run_vessel), ("qemu", run_qemu)]
                if i % 2:
                    order.reverse()
                for name, fn in order:
                    try:
                        r = fn(a, guest, w, tmp)
                    except Exception as e:  # a failed run is reported, not fatal
                        print(f"{w} {name} run {i}: {e}", file=sys.stderr)
                        continue
                    results.setdefault((w, name), []).append(r)
                    print(f"{w:11} {name:7} run {i}: total {r['total_ms']:8.1f} ms  downtime "
                          f"{r['downtime_ms']:7.2f} ms  {r['bytes'] / 1048576:7.1f} MiB  "
                          f"rounds {r['rounds']}", flush=True)
    print("\nmedians (vessel/QEMU: below 1 means vessel is faster or sends less)")
    print(f"{'workload':11} {'metric':12} {'vessel':>10} {'QEMU':>10} {'ratio':>7}")
    for w in a.workloads.split(","):
        for metric, unit, scale in (("total_ms", "ms", 1), ("downtime_ms", "ms", 1),
                                    ("bytes", "MiB", 1 / 1048576)):
            v = [r[metric] for r in results.get((w, "vessel"), []) if r[metric] is not None]
            q = [r[metric] for r in results.get((w, "qemu"), []) if r[metric] is not None]
            if not v or not q:
                print(f"{w:11} {metric:12} {'-':>10} {'-':>10}")
                continue
            mv, mq = statistics.median(v) * scale, statistics.median(q) * scale
            print(f"{w:11} {metric:12} {mv:10.2f} {mq:10.2f} {mv / mq if mq else 0:7.2f}  {unit}")


main()
