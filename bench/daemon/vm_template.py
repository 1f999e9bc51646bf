#!/usr/bin/env python3
"""N riscv64 VMs launched from one VM template through vesseld: the time
of each launch and of all of them, and the host memory they take (the sum
of their RSS, their PSS, what is private to each, and the drop in the
host's MemAvailable). docs: bench/daemon/README.md ("VM templates").

    sudo /usr/bin/python3 bench/daemon/vm_template.py [--count 50] [--memory 256MiB]
        [--vessel build/src/cmd/vessel] [--vesseld PATH] [--guest-dir DIR] [--keep-running S]

The template is the default riscv64 guest (guest/build-riscv64.sh, under
$VESSEL_CACHE or ~/.cache/vessel) booted to its shell with its guest agent
up, then published (`vessel publish src --alias tpl`). Every clone maps the
template's memory copy-on-write from the page cache. No timing asserts;
the table goes to stdout, progress to stderr. Everything is made under
/tmp/vbt-* and removed at the end (instances, daemon, state)."""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def find_bins(args):
    if args.vessel:
        vessel = Path(args.vessel).resolve()
    elif os.environ.get("VESSEL_BIN"):
        vessel = Path(os.environ["VESSEL_BIN"]).resolve()
    else:
        vessel = next((ROOT / b / "src/cmd/vessel" for b in ("build", "build-bench", "build-test")
                       if (ROOT / b / "src/cmd/vessel").exists()), None)
    if not vessel or not vessel.exists():
        sys.exit("vm_template: no vessel binary (--vessel PATH)")
    vesseld = Path(args.vesseld).resolve() if args.vesseld else vessel.parent / "vesseld"
    return vessel, vesseld


def guest_files(args):
    if args.guest_dir:
        d = Path(args.guest_dir)
    else:
        cache = Path(os.environ.get("VESSEL_CACHE", Path.home() / ".cache/vessel"))
        env = dict(os.environ, VESSEL_GUEST_DIR=str(cache / "guest"))
        subprocess.run([str(ROOT / "guest/build-riscv64.sh")], env=env, check=True,
                       stdout=sys.stderr)
        d = cache / "guest/riscv64"
    return d / "vmlinuz", d / "initrd.img"


def memory_of(pid):
    """kB of Rss, Pss, Shared_Clean, Private_Clean + Private_Dirty."""
    out = {"rss": 0, "pss": 0, "shared": 0, "private": 0}
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            k, _, v = line.partition(":")
            n = int(v.split()[0]) if v.split() and v.split()[0].isdigit() else 0
            if k == "Rss":
                out["rss"] = n
            elif k == "Pss":
                out["pss"] = n
            elif k in ("Shared_Clean", "Shared_Dirty"):
                out["shared"] += n
            elif k in ("Private_Clean", "Private_Dirty"):
                out["private"] += n
    except OSError:
        pass
    return out


def cpu_ticks(pids):
    total = 0
    for p in pids:
        try:
            f = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(f[11]) + int(f[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total


def mem_available_kib():
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1])
    return 0


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--count", type=int, default=50)
    ap.add_argument("--memory", default="256MiB", help="the template VM's limits.memory")
    ap.add_argument("--vessel")
    ap.add_argument("--vesseld")
    ap.add_argument("--guest-dir")
    ap.add_argument("--boot", type=int, default=5,
                    help="also boot this many VMs afresh from the image, for comparison")
    ap.add_argument("--settle", type=float, default=5.0,
                    help="seconds to let the clones run before memory is read")
    args = ap.parse_args()
    vessel, vesseld = find_bins(args)
    kernel, initrd = guest_files(args)
    base = Path(tempfile.mkdtemp(prefix="vbt-", dir="/tmp"))
    state, sock = base / "state", base / "vessel.sock"
    env = dict(os.environ, VESSEL_SOCKET=str(sock))
    dlog = open(base / "vesseld.log", "wb")
    daemon = subprocess.Popen([str(vesseld), "--state-dir", str(state), "--socket", str(sock),
                               "--network", "none", "--vessel", str(vessel)],
                              stdout=dlog, stderr=dlog)

    def cli(*a, timeout=300):
        p = subprocess.run([str(vessel), *map(str, a)], capture_output=True, text=True,
                           env=env, timeout=timeout)
        if p.returncode:
            raise RuntimeError(f"vessel {' '.join(map(str, a))}: {p.stdout}{p.stderr}")
        return p.stdout

    names = []
    try:
        for _ in range(500):
            if sock.exists():
                break
            time.sleep(0.02)
        cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
            initrd, "--alias", "rv")
        log("vm_template: booting the template's source VM")
        cli("launch", "rv", "src", "-c", f"limits.memory={args.memory}")
        names.append("src")
        cli("exec", "src", "--", "true")  # booted, agent up
        t = time.monotonic()
        cli("publish", "src", "--alias", "tpl")
        publish_s = time.monotonic() - t
        cli("delete", "--force", "src")
        names.remove("src")
        tpl = json.loads(cli("image", "list", "--format", "json"))
        tpl_bytes = next((i.get("size", 0) for i in tpl if i.get("alias") == "tpl"), 0)
        avail0 = mem_available_kib()
        times = []
        t_all = time.monotonic()
        for i in range(args.count):
            n = f"c{i}"
            t = time.monotonic()
            cli("launch", "tpl", n)
            times.append(time.monotonic() - t)
            names.append(n)
            if (i + 1) % 10 == 0:
                log(f"vm_template: {i + 1} launched")
        total_s = time.monotonic() - t_all
        # each clone answers through its guest agent (it really runs)
        t = time.monotonic()
        cli("exec", names[-1], "--", "true")
        exec_s = time.monotonic() - t
        insts = json.loads(cli("list", "--format", "json"))
        pids = [i["pid"] for i in insts if i.get("pid")]
        # the CPU the idle clones take (their guests' timer ticks), over the settle time
        cpu0, t0 = cpu_ticks(pids), time.monotonic()
        time.sleep(args.settle)
        cpu_pct = (cpu_ticks(pids) - cpu0) / os.sysconf("SC_CLK_TCK") / (time.monotonic() - t0) * 100
        mem = [memory_of(p) for p in pids]
        avail1 = mem_available_kib()
        running = sum(1 for i in insts if i["state"] == "running")
        daemon_rss = memory_of(daemon.pid)["rss"]
        load = os.getloadavg()[0]
        mib = lambda k: k / 1024  # noqa: E731
        rss = sum(m["rss"] for m in mem)
        pss = sum(m["pss"] for m in mem)
        priv = sum(m["private"] for m in mem)
        print(f"riscv64 VMs from one template: {args.count} launched, {running} running; "
              f"guest RAM {args.memory} each; template state {tpl_bytes / 2**20:.0f} MiB on disk")
        print(f"{'what':44} {'value':>12}")
        rows = [
            ("publish (template from a running VM)", f"{publish_s:.2f} s"),
            (f"{args.count} launches in a row, total", f"{total_s:.2f} s"),
            ("one launch, median", f"{statistics.median(times) * 1000:.0f} ms"),
            ("one launch, min / max",
             f"{min(times) * 1000:.0f}/{max(times) * 1000:.0f} ms"),
            ("first exec into the last clone", f"{exec_s * 1000:.0f} ms"),
            ("sum of the VM processes' RSS", f"{mib(rss):.0f} MiB"),
            ("sum of their PSS", f"{mib(pss):.0f} MiB"),
            ("private to them (sum)", f"{mib(priv):.0f} MiB"),
            ("per VM: RSS / PSS / private",
             f"{mib(rss) / max(len(mem), 1):.1f}/{mib(pss) / max(len(mem), 1):.1f}/"
             f"{mib(priv) / max(len(mem), 1):.1f} MiB"),
            ("host MemAvailable drop", f"{mib(avail0 - avail1):.0f} MiB"),
            ("vesseld RSS", f"{mib(daemon_rss):.1f} MiB"),
            ("CPU of the idle clones (sum; 100% = 1 core)", f"{cpu_pct:.0f} %"),
            ("load average (1 min) with them running", f"{load:.2f}"),
        ]
        for n in list(names):
            cli("delete", "--force", n)
            names.remove(n)
        if args.boot:
            # the same guest booted afresh: time to a running guest agent, and memory
            boot_times = []
            for i in range(args.boot):
                n = f"b{i}"
                t = time.monotonic()
                cli("launch", "rv", n, "-c", f"limits.memory={args.memory}")
                names.append(n)
                cli("exec", n, "--", "true")
                boot_times.append(time.monotonic() - t)
            time.sleep(args.settle)
            insts = json.loads(cli("list", "--format", "json"))
            bmem = [memory_of(i["pid"]) for i in insts if i.get("pid")]
            k = max(len(bmem), 1)
            rows += [
                (f"booted afresh ({args.boot}): launch to agent, median",
                 f"{statistics.median(boot_times) * 1000:.0f} ms"),
                ("booted afresh: per VM RSS / PSS / private",
                 f"{mib(sum(m['rss'] for m in bmem)) / k:.1f}/"
                 f"{mib(sum(m['pss'] for m in bmem)) / k:.1f}/"
                 f"{mib(sum(m['private'] for m in bmem)) / k:.1f} MiB"),
            ]
        for k, v in rows:
            print(f"{k:44} {v:>12}")
    finally:
        log("vm_template: cleaning up")
        for n in names:
            subprocess.run([str(vessel), "delete", "--force", n], env=env, capture_output=True,
                           timeout=120)
        daemon.send_signal(signal.SIGTERM)
        try:
            daemon.wait(timeout=20)
        except subprocess.TimeoutExpired:
            daemon.kill()
        subprocess.run(["umount", "-R", "-l", str(state)], capture_output=True)
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
