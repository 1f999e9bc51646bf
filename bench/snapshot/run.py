#!/usr/bin/python3
"""Snapshot benchmark: vessel vs QEMU on the tier-1 x86 test guest
(tests/guests/x86) on /dev/kvm, for a 256 MiB and a 2 GiB guest.

  snapshot time     vessel: `vessel vm snapshot` wall time (and the guest's
                    pause reported by the API); it includes fsync of the
                    files ("durable"), "written" leaves that part out. QEMU:
                    QMP `migrate exec:cat>FILE` (max-bandwidth unthrottled)
                    until query-migrate says completed ("written": in the
                    page cache), then fsync of the file ("durable"); its
                    downtime is the guest's pause
  snapshot size     bytes allocated on disk (apparent size in brackets);
                    vessel full and diff (diff: pages dirtied since the full)
  restore latency   process start -> running: vessel's API socket is up (the
                    machine starts it right before the vCPUs), QEMU's QMP
                    query-status says "running"; and process start -> first
                    guest output: a byte is sent to the restored guest's
                    serial port and its echo timed (vessel `vm restore DIR`,
                    QEMU `-incoming exec:cat FILE`). On PVM the guest's first
                    instructions after a restore are slow for both VMMs.
  50 clones         `vessel vm clone DIR --count 50` wall time (returns when
                    every clone serves its API), then the clones' total
                    memory: sum of PSS, and the host's used-memory delta
                    (MemTotal - MemAvailable)

The guest is `test=counter touch=N`: it dirties N MiB (default half its RAM),
then prints a counter line every few milliseconds (the first line after a
restore marks "first output"). Guests without the counter test fall back to
`test=echo` (an echoed byte marks it).
Runs of the latency are interleaved vessel/QEMU, medians printed with ratios.

usage: bench/snapshot/run.py [--sizes 256M,2G] [--runs N] [--clones N] [--touch MiB]
"""
import argparse
import json
import os
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def find_vessel():
    for c in (os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    sys.exit("vessel is not built (set VESSEL_BIN)")


VESSEL = find_vessel()
QEMU = shutil.which("qemu-system-x86_64")


def guest():
    out = ROOT / "tests/guests/out/x86"
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh"), str(out)], check=True)
    has_counter = "\"counter\"" in (ROOT / "tests/guests/x86/guest.c").read_text()
    return out, has_counter


def wait_file(path, needle, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and needle in path.read_text(errors="replace"):
            return
        time.sleep(0.01)
    raise RuntimeError(f"{needle!r} did not appear in {path}")


def du(path):
    """(allocated, apparent) bytes of a file or directory."""
    files = [path] if path.is_file() else [p for p in path.rglob("*") if p.is_file()]
    return (sum(os.stat(f).st_blocks * 512 for f in files),
            sum(os.stat(f).st_size for f in files))


def mib(n):
    return f"{n / 2**20:.1f} MiB"


def mem_used():
    info = {}
    for line in open("/proc/meminfo"):
        k, v = line.split(":")
        info[k] = int(v.split()[0]) * 1024
    return info["MemTotal"] - info["MemAvailable"]


def pss(pid):
    try:
        for line in open(f"/proc/{pid}/smaps_rollup"):
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def first_output(cmd, timeout=30):
    """Start cmd with the serial console on stdio; time until its first byte
    (the counter guest prints a line every few milliseconds)."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    r, _, _ = select.select([p.stdout], [], [], timeout)
    got = os.read(p.stdout.fileno(), 4096) if r else b""
    dt = time.monotonic() - t0
    p.kill()
    p.wait()
    if not got:
        raise RuntimeError(f"no output from {cmd[0]}")
    return dt * 1000


def first_echo(cmd, timeout=30):
    """Start cmd with the serial console on stdio and time until the guest
    echoes 'a' as 'A'. The byte is re-sent every millisecond: a VMM may drop
    input that arrives before the restored UART is live."""
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    out = b""
    dt = None
    while time.monotonic() - t0 < timeout:
        try:
            p.stdin.write(b"a")
            p.stdin.flush()
        except BrokenPipeError:
            break
        r, _, _ = select.select([p.stdout], [], [], 0.001)
        if r:
            chunk = os.read(p.stdout.fileno(), 65536)
            if not chunk:
                break
            out += chunk
            if b"A" in out:
                dt = time.monotonic() - t0
                break
    p.kill()
    p.wait()
    if dt is None:
        raise RuntimeError(f"no echo from {cmd[0]}: {out[-300:]!r}")
    return dt * 1000


# ---- vessel ----

def vessel_api(verb, sock, *args):
    p = subprocess.run([VESSEL, "vm", verb, "--api-sock", str(sock), *map(str, args)],
                       capture_output=True, text=True, check=True)
    return json.loads(p.stdout)


def vessel_side(gdir, append, size, work, nclones):
    res = {}
    run = work / "vessel-run"
    run.mkdir()
    log, sock = run / "console.log", run / "api.sock"
    src = subprocess.Popen([VESSEL, "vm", "run", "--kernel", str(gdir / "guest.elf"), "--append",
                            append, "--memory", size, "--console", f"file:{log}", "--api-sock",
                            str(sock)], stdin=subprocess.DEVNULL)
    wait_file(log, "echo: ready" if "echo" in append else "count ", timeout=600)
    full, diff = work / "vessel-full", work / "vessel-diff"
    t0 = time.monotonic()
    r = vessel_api("snapshot", sock, full)
    res["snapshot_ms"] = (time.monotonic() - t0) * 1000
    res["pause_ms"] = r["pause_ms"]
    res["server_ms"] = r["total_ms"]
    res["sync_ms"] = r.get("sync_ms", 0.0)
    res["full_size"] = du(full)
    time.sleep(1)
    t0 = time.monotonic()
    r = vessel_api("snapshot", sock, "--diff", diff)
    res["diff_ms"] = (time.monotonic() - t0) * 1000
    res["diff_pause_ms"] = r["pause_ms"]
    res["diff_size"] = du(diff)
    vessel_api("stop", sock)
    src.wait()
    return res, full


def vessel_restore_ms(snap, counter):
    cmd = [VESSEL, "vm", "restore", str(snap), "--console", "stdio"]
    return first_output(cmd) if counter else first_echo(cmd)


def vessel_running_ms(snap, work):
    """Process start -> the restored VM serves its API, which the machine
    starts right before its vCPUs."""
    sock = work / "restore.sock"
    t0 = time.monotonic()
    p = subprocess.Popen([VESSEL, "vm", "restore", str(snap), "--console", "none", "--api-sock",
                          str(sock)], stdin=subprocess.DEVNULL)
    while not sock.exists() and p.poll() is None:
        time.sleep(0.0002)
    dt = (time.monotonic() - t0) * 1000
    p.kill()
    p.wait()
    sock.unlink(missing_ok=True)
    return dt


def qemu_running_ms(gdir, append, size, file, work):
    """Process start -> QMP query-status says running after -incoming."""
    qmp = work / "qmp-in.sock"
    t0 = time.monotonic()
    p = subprocess.Popen(qemu_args(gdir, append, size) +
                         ["-serial", "null", "-incoming", f"exec:cat {file}", "-qmp",
                          f"unix:{qmp},server=on,wait=off"], stdin=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    q = QMP(qmp)
    while q.cmd("query-status")["return"].get("status") != "running":
        time.sleep(0.0005)
    dt = (time.monotonic() - t0) * 1000
    p.kill()
    p.wait()
    qmp.unlink(missing_ok=True)
    return dt


def vessel_clones(snap, work, n):
    out = work / "clones"
    base = mem_used()
    t0 = time.monotonic()
    p = subprocess.run([VESSEL, "vm", "clone", str(snap), "--count", str(n), "--dir", str(out)],
                       capture_output=True, text=True)
    dt = (time.monotonic() - t0) * 1000
    if p.returncode != 0:
        raise RuntimeError(p.stderr)
    time.sleep(0.5)  # let every clone settle into its guest
    pids = [int((out / f"clone-{i}" / "pid").read_text()) for i in range(n)]
    total_pss = sum(pss(pid) for pid in pids)
    used = mem_used() - base
    for i in range(n):
        subprocess.run([VESSEL, "vm", "stop", "--api-sock", str(out / f"clone-{i}" / "api.sock")],
                       capture_output=True)
    for pid in pids:
        for _ in range(200):
            if not os.path.exists(f"/proc/{pid}"):
                break
            time.sleep(0.01)
    shutil.rmtree(out, ignore_errors=True)
    return dt, total_pss, used


# ---- QEMU ----

class QMP:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX)
        for _ in range(500):
            try:
                self.s.connect(str(path))
                break
            except OSError:
                time.sleep(0.01)
        self.f = self.s.makefile("rw")
        self.f.readline()
        self.cmd("qmp_capabilities")

    def cmd(self, name, **args):
        self.f.write(json.dumps({"execute": name, "arguments": args}) + "\n")
        self.f.flush()
        while True:
            r = json.loads(self.f.readline())
            if "return" in r or "error" in r:
                return r


def qemu_args(gdir, append, size):
    return [QEMU, "-accel", "kvm", "-M", "microvm", "-m", size, "-nodefaults", "-display",
            "none", "-kernel", str(gdir / "guest32.elf"), "-append", append]


def qemu_side(gdir, append, size, work):
    res = {}
    log, qmp = work / "qemu.log", work / "qmp.sock"
    file = work / "qemu.migration"
    p = subprocess.Popen(qemu_args(gdir, append, size) + ["-serial", f"file:{log}", "-qmp",
                                                          f"unix:{qmp},server=on,wait=off"],
                         stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_file(log, "echo: ready" if "echo" in append else "count ", timeout=600)
    q = QMP(qmp)
    # QEMU throttles migration to 128 MiB/s by default (max-bandwidth); a
    # save to a file is not throttled by anyone who wants it fast
    q.cmd("migrate-set-parameters", **{"max-bandwidth": 1 << 40})
    t0 = time.monotonic()
    q.cmd("migrate", uri=f"exec:cat > {file}")
    while True:
        m = q.cmd("query-migrate")["return"]
        st = m.get("status")
        if st in ("completed", "failed"):
            break
        time.sleep(0.002)
    res["snapshot_ms"] = (time.monotonic() - t0) * 1000
    if st != "completed":
        raise RuntimeError("QEMU migration failed")
    res["downtime_ms"] = m.get("downtime", float("nan"))
    # vessel's snapshot time includes making its files durable; QEMU's
    # stream only reached the page cache: time its fsync too
    t1 = time.monotonic()
    fd = os.open(file, os.O_RDONLY)
    os.fsync(fd)
    os.close(fd)
    res["sync_ms"] = (time.monotonic() - t1) * 1000
    res["size"] = du(file)
    p.kill()
    p.wait()
    return res, file


def qemu_restore_ms(gdir, append, size, file, counter):
    cmd = qemu_args(gdir, append, size) + ["-serial", "stdio", "-incoming", f"exec:cat {file}"]
    return first_output(cmd) if counter else first_echo(cmd)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", default="256M,2G")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--clones", type=int, default=50)
    ap.add_argument("--touch", type=int, default=-1,
                    help="MiB the counter guest dirties first (default: half its memory)")
    a = ap.parse_args()
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        sys.exit("bench/snapshot needs /dev/kvm")
    gdir, counter = guest()
    print(f"guest: tests/guests/x86; vessel {VESSEL}; {QEMU or 'no QEMU'}")
    for size in a.sizes.split(","):
        mbytes = int(size[:-1]) << (10 if size[-1] in "Gg" else 0)
        touch = a.touch if a.touch >= 0 else mbytes // 2
        append = f"test=counter touch={touch}" if counter else "test=echo"
        work = Path(tempfile.mkdtemp(prefix="vessel-bench-snap-", dir="/var/tmp"))
        try:
            v, vsnap = vessel_side(gdir, append, size, work, a.clones)
            q, qfile = qemu_side(gdir, append, size, work) if QEMU else (None, None)
            vr, qr, vrun, qrun = [], [], [], []
            for _ in range(a.runs):
                vrun.append(vessel_running_ms(vsnap, work))
                vr.append(vessel_restore_ms(vsnap, counter))
                if q:
                    qrun.append(qemu_running_ms(gdir, append, size, qfile, work))
                    qr.append(qemu_restore_ms(gdir, append, size, qfile, counter))
            cl_ms, cl_pss, cl_used = vessel_clones(vsnap, work, a.clones)
            vrm = statistics.median(vr)
            print(f"\n== {size} guest, '{append}' ==")
            # written: the files are in the page cache; durable: fsynced
            v_written = v["snapshot_ms"] - v["sync_ms"]
            v_durable = v["snapshot_ms"]
            print(f"snapshot time     vessel {v_written:8.1f} ms written, {v_durable:.1f} ms "
                  f"durable (in the VM {v['server_ms']:.1f} ms, of it fsync "
                  f"{v['sync_ms']:.1f} ms; guest paused {v['pause_ms']:.1f} ms)", end="")
            if q:
                q_durable = q["snapshot_ms"] + q["sync_ms"]
                print(f"   QEMU {q['snapshot_ms']:8.1f} ms written, {q_durable:.1f} ms durable "
                      f"(guest paused {q['downtime_ms']:.1f} ms)   QEMU/vessel written "
                      f"{q['snapshot_ms'] / v_written:.1f}x, durable {q_durable / v_durable:.1f}x")
            else:
                print()
            print(f"diff snapshot     vessel {v['diff_ms']:8.1f} ms "
                  f"(guest paused {v['diff_pause_ms']:.1f} ms; pages dirtied in the 1 s since "
                  f"the full one)")
            print(f"snapshot size     vessel full {mib(v['full_size'][0])} "
                  f"[{mib(v['full_size'][1])}], diff {mib(v['diff_size'][0])}", end="")
            if q:
                print(f"   QEMU {mib(q['size'][0])}")
            else:
                print()
            vrun_m = statistics.median(vrun)
            print(f"restore->running  vessel {vrun_m:8.1f} ms (median of {len(vrun)})", end="")
            if q:
                qrun_m = statistics.median(qrun)
                print(f"   QEMU {qrun_m:8.1f} ms   QEMU/vessel {qrun_m / vrun_m:.1f}x")
            else:
                print()
            print(f"restore->output   vessel {vrm:8.1f} ms (median of {len(vr)})", end="")
            if q:
                qrm = statistics.median(qr)
                print(f"   QEMU {qrm:8.1f} ms   QEMU/vessel {qrm / vrm:.1f}x")
            else:
                print()
            print(f"{a.clones} clones         {cl_ms:8.1f} ms to all running; memory: "
                  f"sum PSS {mib(cl_pss)}, host used +{mib(cl_used)}")
            if mbytes == 256:
                def ok(c):
                    return "met" if c else "MISSED"
                print(f"targets (256 MiB): restore to running < 10 ms: {ok(vrun_m < 10)}; "
                      f">= 10x faster than QEMU's restore: "
                      f"{ok(bool(q) and statistics.median(qr) / vrm >= 10)}; "
                      f"{a.clones} clones < 2 s: {ok(cl_ms < 2000)}, < 3 GiB: "
                      f"{ok(max(cl_pss, cl_used) < 3 * 2**30)}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
