#!/usr/bin/python3
"""Tier-1 benchmark: vessel vs QEMU microvm on the same test guest
(tests/guests/x86).

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

Where it runs:
  - on this host's /dev/kvm when it can create a VM. QEMU gets
    `-cpu host,-arch-capabilities`: QEMU 7.2 writes IA32_ARCH_CAPABILITIES
    (MSR 0x10a) at vCPU init whenever the host KVM lists that MSR, whatever
    the CPU model (target/i386/kvm/kvm.c, kvm_init_msrs: only
    has_msr_arch_capabs decides), so no -cpu choice leaves the write out;
    turning the CPUID bit off makes the written value 0 (the
    arch-capabilities feature dependency), the value a KVM that checks
    writes against what it supports must accept. A KVM that refuses the
    MSR outright (the PVM software KVM: "failed to set MSR 0x10a") still
    aborts QEMU: then vessel's rows are printed with one line saying why
    QEMU's are missing (--nested compares both in the nested lab).
  - in the nested KVM lab (tests/nested/lab.sh) when the host has no
    usable /dev/kvm: L1 is Debian's kernel under QEMU TCG with AMD SVM and
    kvm_amd, and vessel and QEMU microvm run the same guest there as L2.
    l2run times each run (ms resolution; "first byte" is the guest's first
    line; the exit latency counts from that line on, so the VMM's start-up,
    slow and noisy under L1's TCG, stays out of it), and the RSS columns
    are read from /proc/PID/smaps in L1 (where nothing else maps the VMM's
    libraries, so "private" is close to own RSS). The header says so, and
    why.

usage: bench/tier1/run.py [--runs N] [--exits N] [--vessel PATH]
                          [--where auto|host|nested] [--qemu-cpu CPU]
"""
import argparse
import base64
import fcntl
import hashlib
import os
import re
import select
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
GUEST_MIB = 256
# leaves IA32_ARCH_CAPABILITIES' value 0 (see the docstring)
QEMU_CPU = "host,-arch-capabilities"
# the guest's first line (both VMMs): the nested lab's "first byte"
FIRST_LINE = "vessel test guest"


class Unavailable(Exception):
    """A VMM (or the lab) cannot run here; the message is one line why."""


def find_vessel():
    for c in (os.environ.get("VESSEL_BIN"), ROOT / "build-test/src/cmd/vessel",
              ROOT / "build/src/cmd/vessel"):
        if c and Path(c).exists():
            return str(c)
    raise Unavailable("vessel is not built (ninja -C build-test, or set VESSEL_BIN)")


def vessel_cmd(vessel, guest, append, mem=f"{GUEST_MIB}M"):
    return [vessel, "vm", "run", "--kernel", str(guest), "--memory", mem, "--append", append]


def qemu_cmd(guest, append, mem=f"{GUEST_MIB}M", cpu=QEMU_CPU, qemu="qemu-system-x86_64"):
    return [qemu, "-M", "microvm", "-accel", "kvm", "-cpu", cpu, "-m", mem,
            "-nodefaults", "-no-user-config", "-nographic", "-display", "none",
            "-serial", "stdio", "-no-reboot", "-kernel", str(guest), "-append", append]


KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01


def kvm_unusable():
    """None if /dev/kvm can create a VM, else why not (a few words)."""
    try:
        fd = os.open("/dev/kvm", os.O_RDWR | os.O_CLOEXEC)
    except FileNotFoundError:
        return "this host has no /dev/kvm"
    except OSError as e:
        return f"/dev/kvm cannot be opened ({e.strerror})"
    try:
        ver = fcntl.ioctl(fd, KVM_GET_API_VERSION, 0)
        if ver != 12:
            return f"/dev/kvm speaks KVM API version {ver}, not 12"
        os.close(fcntl.ioctl(fd, KVM_CREATE_VM, 0))
    except OSError as e:
        return f"/dev/kvm cannot create a VM ({e.strerror})"
    finally:
        os.close(fd)
    return None


def reason(text, fallback):
    """The line of a failed VMM's output that says why: the first one that
    names an error, else the last one."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    for ln in lines:
        if re.search(r"\berror\b|failed|cannot|abort|assert|panic", ln, re.I):
            return ln
    return lines[-1] if lines else fallback


def status_text(rc):
    if rc < 0:
        try:
            return f"killed by {signal.Signals(-rc).name}"
        except ValueError:
            return f"killed by signal {-rc}"
    return f"exited {rc}"


# ---- on this host's /dev/kvm ----

def timed_run(cmd, timeout=120):
    """(seconds to first stdout byte, seconds to exit, output)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.monotonic()
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        first = None
        out = b""
        fd = p.stdout.fileno()
        while True:
            r, _, _ = select.select([fd], [], [], timeout)
            if not r:
                p.kill()
                p.wait()
                raise Unavailable(f"no output for {timeout} s: {shlex.join(cmd)}")
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            if first is None:
                first = time.monotonic() - t0
            out += chunk
        p.wait()
        t_exit = time.monotonic() - t0
        err.seek(0)
        stderr = err.read().decode(errors="replace")
    if p.returncode != 0:
        text = stderr + "\n" + out.decode(errors="replace")
        raise Unavailable(f"{reason(text, '')} ({Path(cmd[0]).name} {status_text(p.returncode)})")
    return first, t_exit, out


def own_rss_kib(cmd, guest_bytes):
    """Rss of the VMM minus the guest RAM mapping(s), while the guest idles."""
    with tempfile.TemporaryFile() as err:
        p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, stdin=subprocess.DEVNULL)
        try:
            out = b""
            deadline = time.monotonic() + 60
            while b"hanging" not in out and time.monotonic() < deadline and p.poll() is None:
                r, _, _ = select.select([p.stdout], [], [], 1)
                if r:
                    out += os.read(p.stdout.fileno(), 4096)
            time.sleep(0.2)
            if b"hanging" not in out or p.poll() is not None:
                err.seek(0)
                text = err.read().decode(errors="replace") + out.decode(errors="replace")
                raise Unavailable(reason(text, "the guest never reached test=hang"))
            total = guest = private = 0
            with open(f"/proc/{p.pid}/smaps") as f:
                for line in f:
                    m = re.match(r"^[0-9a-f]+-[0-9a-f]+ ", line)
                    if m:
                        a, b = line.split()[0].split("-")
                        size = int(b, 16) - int(a, 16)
                        is_guest = size == guest_bytes or "vessel-guest-ram" in line
                        continue
                    if line.startswith("Rss:"):
                        kib = int(line.split()[1])
                        total += kib
                        if is_guest:
                            guest += kib
                    elif line.startswith(("Private_Clean:", "Private_Dirty:")) and not is_guest:
                        private += int(line.split()[1])
        finally:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
    return total - guest, guest, private


def run_host(args, vessel, guest, missing):
    """Medians per VMM on this host's /dev/kvm. missing: VMM -> why it has
    no rows (filled in here when QEMU fails)."""
    vmms = {"vessel": lambda a: vessel_cmd(vessel, guest, a)}
    if "qemu" not in missing:
        vmms["qemu"] = lambda a: qemu_cmd(guest, a, cpu=args.qemu_cpu)
    res = {k: {"first": [], "exit": [], "e0": [], "eN": []} for k in vmms}

    def one(name, append, expect):
        try:
            first, t_exit, out = timed_run(vmms[name](append))
            if expect.encode() not in out:
                raise Unavailable(f"the guest did not print '{expect}' ({append})")
            return first, t_exit
        except Unavailable as e:
            if name == "vessel":
                raise Unavailable(f"vessel failed on this host's /dev/kvm: {e}")
            missing["qemu"] = f"QEMU (-cpu {args.qemu_cpu}) failed on this host's /dev/kvm: {e}"
            del vmms[name], res[name]
            return None

    for _ in range(args.runs):
        for name in list(vmms):
            r = one(name, "test=hello", "hello from the vessel test guest")
            if r is None:
                continue
            res[name]["first"].append(r[0])
            res[name]["exit"].append(r[1])
            r0 = one(name, "test=exits n=0", "exits: done")
            rN = r0 and one(name, f"test=exits n={args.exits}", "exits: done")
            if rN is None:
                continue
            res[name]["e0"].append(r0[1])
            res[name]["eN"].append(rN[1])

    med = statistics.median
    rows = {}
    for name, r in res.items():
        try:
            own, g, private = own_rss_kib(vmms[name]("test=hang"), GUEST_MIB << 20)
        except Unavailable as e:
            if name == "vessel":
                raise Unavailable(f"vessel failed on this host's /dev/kvm (test=hang): {e}")
            missing["qemu"] = f"QEMU failed on this host's /dev/kvm (test=hang): {e}"
            continue
        rows[name] = {
            "first_ms": med(r["first"]) * 1e3,
            "exit_ms": med(r["exit"]) * 1e3,
            "exit_us": (med(r["eN"]) - med(r["e0"])) / args.exits * 1e6,
            "own_rss_kib": own, "guest_rss_kib": g, "private_kib": private,
        }
    return rows


# ---- in the nested lab's L1 ----

RSS_AWK = r"""
/^[0-9a-f]+-[0-9a-f]+ / { g = index($0, "vessel-guest-ram") > 0; next }
$1 == "Size:" { if ($2 == gkib) g = 1; next }
$1 == "Rss:" { t += $2; if (g) gr += $2; next }
($1 == "Private_Clean:" || $1 == "Private_Dirty:") && !g { p += $2 }
END { print t - gr, gr, p }
"""


def rss_step(name, cmd):
    """L1 shell lines: start cmd with test=hang, wait for the guest to idle,
    print 'TIER1-RSS name own guest private' (KiB) from its smaps."""
    argv = shlex.join(cmd)
    out = f"/tmp/rss.{name}"
    return "\n".join([
        f"{argv} </dev/null >{out} 2>&1 &",
        "pid=$!",
        "i=0",
        f"while [ $i -lt 60 ] && kill -0 $pid 2>/dev/null && ! grep -q hanging {out}; do "
        "sleep 1; i=$((i + 1)); done",
        "sleep 1",
        f"if grep -q hanging {out} && kill -0 $pid 2>/dev/null; then",
        f"  echo \"TIER1-RSS {name} $(awk -v gkib={GUEST_MIB * 1024} '{RSS_AWK}' /proc/$pid/smaps)\"",
        "else",
        f"  echo \"TIER1-RSS-FAILED {name}\"; sed 's/^/TIER1-RSS-OUT /' {out} | tail -20",
        "fi",
        "kill $pid 2>/dev/null; sleep 1; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null",
    ])


def lab_failure(run):
    """One line: why a lab session ended without results (lab.sh's own
    message, with the first telling line of the L1 console it quotes)."""
    lines = run.output.splitlines()
    picks = [i for i, ln in enumerate(lines)
             if ln.startswith("lab: ") and not ln.startswith("lab: L1's console log")]
    if not picks:
        return f"lab.sh exited {run.returncode}"
    i = next((i for i in picks if re.search(r"error|timeout|stopped|ended", lines[i])),
             picks[-1])
    line = lines[i]
    if line.endswith("console:"):
        line = re.sub(r"[;.]?\s*L1 console:$", "", line)
        detail = reason("\n".join(lines[i + 1:i + 60]), "")
        if detail:
            line += f": {detail}"
    return line


def run_nested(args, vessel, guest, missing):
    """The same runs inside the nested lab's L1, in one L1 session."""
    if subprocess.run(["sh", "-c", "command -v qemu-system-x86_64"],
                      capture_output=True).returncode != 0:
        raise Unavailable("the nested lab needs qemu-system-x86_64 for L1, and it is not "
                          "installed (scripts/setup.sh installs it)")
    sys.path.insert(0, str(ROOT / "tests/nested"))
    import lab  # noqa: E402

    os.environ["VESSEL_BIN"] = vessel  # the binary lab.sh carries into L1
    g = "/tmp/tier1-guest.elf"
    data = guest.read_bytes()
    b64 = base64.encodebytes(data).decode()
    md5 = hashlib.md5(data).hexdigest()
    vmms = {"vessel": lambda a: vessel_cmd("vessel", g, a),
            "qemu": lambda a: qemu_cmd(g, a, cpu=args.qemu_cpu)}
    batch = lab.LabBatch()
    # the tier-1 guest is not in the cached L1 initramfs: it rides in the script
    batch.shell(f"base64 -d > {g} <<'TIER1_GUEST_EOF'\n{b64}TIER1_GUEST_EOF\n"
                f"echo \"TIER1-GUEST $(md5sum < {g} | cut -d' ' -f1)\"")
    tests = {"hello": "test=hello", "e0": "test=exits n=0", "eN": f"test=exits n={args.exits}"}
    for i in range(args.runs):
        for name, mk in vmms.items():
            for t, append in tests.items():
                batch.boot(f"{name}-{i}-{t}", mk(append), timeout=args.timeout,
                           marker=FIRST_LINE)
    for name, mk in vmms.items():
        batch.shell(rss_step(name, mk("test=hang")))
    total = args.runs * len(vmms) * len(tests) * args.timeout + 2 * 80 + 300
    try:
        run = batch.run(timeout=total)
    except subprocess.TimeoutExpired:
        raise Unavailable(f"the nested lab did not finish within {total} s") from None
    if f"TIER1-GUEST {md5}" not in run.output:
        if not any(r.ended for r in run.results.values()):
            raise Unavailable(f"the nested lab did not run: {lab_failure(run)}")
        raise Unavailable("the tier-1 guest did not arrive intact in L1 (md5 differs)")

    expect = {"hello": "hello from the vessel test guest", "e0": "exits: done",
              "eN": "exits: done"}
    rows = {}
    for name in vmms:
        r = {t: [] for t in tests}
        failed = None
        for i in range(args.runs):
            for t in tests:
                b = run.results[f"{name}-{i}-{t}"]
                if (not b.ended or b.timeout or b.status != 0 or b.marker_ms < 0
                        or expect[t] not in b.output):
                    if not b.ended:
                        why = f"the lab ended before this run ({lab_failure(run)})"
                    elif b.timeout:
                        why = f"no exit within {args.timeout} s"
                    else:
                        why = reason(b.output, f"exited {b.status}")
                    failed = f"{why} ({tests[t]}, status {b.status})"
                    break
                r[t].append(b)
            if failed:
                break
        if failed:
            if name == "vessel":
                raise Unavailable(f"vessel failed in the nested lab's L1: {failed}")
            missing[name] = f"QEMU (-cpu {args.qemu_cpu}) failed in the nested lab's L1: {failed}"
            continue
        m = re.search(rf"^TIER1-RSS {name} (-?\d+) (\d+) (\d+)$", run.output, re.M)
        if not m:
            out = "\n".join(re.findall(r"^TIER1-RSS-OUT (.*)$", run.output, re.M))
            why = f"no RSS sample for {name} (test=hang): {reason(out, 'no output')}"
            if name == "vessel":
                raise Unavailable(f"vessel failed in the nested lab's L1: {why}")
            missing[name] = f"QEMU failed in the nested lab's L1: {why}"
            continue
        med = statistics.median
        rows[name] = {
            "first_ms": med(b.marker_ms for b in r["hello"]),
            "exit_ms": med(b.exit_ms for b in r["hello"]),
            # from the guest's first line on: the VMM's start-up, slow and
            # noisy under L1's TCG, stays out of the difference
            "exit_us": (med(b.exit_ms - b.marker_ms for b in r["eN"])
                        - med(b.exit_ms - b.marker_ms for b in r["e0"])) * 1e3 / args.exits,
            "own_rss_kib": int(m.group(1)), "guest_rss_kib": int(m.group(2)),
            "private_kib": int(m.group(3)),
        }
    return rows


def print_table(rows, header, missing):
    print(header)
    print(f"{'':8} {'first byte':>12} {'to exit':>10} {'per exit':>10} {'own RSS':>10} "
          f"{'private':>10}")
    for name, r in rows.items():
        print(f"{name:8} {r['first_ms']:10.1f}ms {r['exit_ms']:8.1f}ms {r['exit_us']:8.2f}us "
              f"{r['own_rss_kib'] / 1024:8.2f}MiB {r['private_kib'] / 1024:7.2f}MiB")
    if "qemu" in rows:
        v, q = rows["vessel"], rows["qemu"]
        print(f"ratio vessel/qemu: first byte {v['first_ms'] / max(q['first_ms'], 1e-9):.2f}, "
              f"to exit {v['exit_ms'] / max(q['exit_ms'], 1e-9):.2f}, "
              f"per exit {v['exit_us'] / q['exit_us'] if q['exit_us'] > 0 else float('nan'):.2f}, "
              f"own RSS {v['own_rss_kib'] / max(q['own_rss_kib'], 1):.2f}, "
              f"private {v['private_kib'] / max(q['private_kib'], 1):.2f}")
    else:
        print(f"no qemu rows: {missing.get('qemu', 'unknown reason')}")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--exits", type=int, default=20000)
    ap.add_argument("--vessel", default=None)
    ap.add_argument("--where", choices=("auto", "host", "nested"), default="auto",
                    help="auto: this host's /dev/kvm if it can create a VM, else the "
                         "nested lab")
    ap.add_argument("--nested", dest="where", action="store_const", const="nested",
                    help="same as --where nested")
    ap.add_argument("--qemu-cpu", default=QEMU_CPU, help=f"QEMU's -cpu (default {QEMU_CPU})")
    ap.add_argument("--timeout", type=int, default=60,
                    help="nested lab: seconds per VMM run (default 60)")
    args = ap.parse_args()
    if args.runs < 1 or args.exits < 1:
        ap.error("--runs and --exits must be at least 1")

    vessel = str(Path(args.vessel).resolve()) if args.vessel else find_vessel()
    if not os.access(vessel, os.X_OK):
        raise Unavailable(f"vessel binary {vessel} is not executable")
    build = subprocess.run([str(ROOT / "tests/guests/x86/build.sh")], capture_output=True,
                           text=True)
    if build.returncode != 0:
        raise Unavailable("tests/guests/x86/build.sh failed: "
                          + reason(build.stderr + build.stdout, f"status {build.returncode}"))
    guest = ROOT / "tests/guests/out/x86/guest.elf"

    missing = {}
    why_not_host = kvm_unusable()
    where = args.where
    if where == "auto":
        where = "nested" if why_not_host else "host"
    common = (f"{args.runs} interleaved runs each, medians; exit latency over "
              f"{args.exits} port writes")
    if where == "host":
        if why_not_host:
            raise Unavailable(f"cannot run on this host: {why_not_host}; "
                              "--where nested runs in the nested lab")
        if subprocess.run(["sh", "-c", "command -v qemu-system-x86_64"],
                          capture_output=True).returncode != 0:
            missing["qemu"] = "qemu-system-x86_64 not installed: vessel only"
        rows = run_host(args, vessel, guest, missing)
        header = f"tier-1 x86 benchmark on this host's /dev/kvm: {common}"
        if "failed" in missing.get("qemu", ""):
            missing["qemu"] += " (--nested compares both in the nested lab)"
    else:
        why = why_not_host or "--where nested was asked for"
        sys.stderr.write(f"bench/tier1: {why}: running in the nested KVM lab "
                         "(booting L1 under QEMU TCG takes a while)\n")
        rows = run_nested(args, vessel, guest, missing)
        header = (f"tier-1 x86 benchmark in the nested lab's L1 (nested KVM: Debian kernel "
                  f"under QEMU TCG with AMD SVM, kvm_amd), because {why}: {common}; "
                  f"times to ms in L1, first byte = the guest's first line")
    print_table(rows, header, missing)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Unavailable as e:
        print(f"bench/tier1: {e}", file=sys.stderr)
        sys.exit(1)
    except KeyboardInterrupt:
        print("bench/tier1: interrupted", file=sys.stderr)
        sys.exit(130)
    except Exception as e:  # one line, not a traceback (TIER1_DEBUG=1 shows it)
        if os.environ.get("TIER1_DEBUG"):
            raise
        print(f"bench/tier1: internal error: {type(e).__name__}: {e} "
              "(TIER1_DEBUG=1 for the traceback)", file=sys.stderr)
        sys.exit(1)
