#!/usr/bin/python3
"""vessel-runc vs crun vs runc on one busybox bundle.

Measures, interleaved run by run (so load changes hit all runtimes alike,
and in a rotating order: each round starts with the next runtime, so none
always runs right after another's teardown, whose namespace and cgroup
cleanup the kernel finishes asynchronously):
  * `run` of a container executing /bin/true (wall time through GNU time,
    which also reports the runtime's peak RSS),
  * create + start + delete of the same container (wall time of the three
    invocations).

Fairness: crun 1.8 refuses this host's hybrid cgroup layout (a v2 mount at
/sys/fs/cgroup/unified next to the v1 controllers). So every runtime runs
inside one private mount namespace in which that v2 mount is unmounted: all
three then see the same pure-v1 layout and create the same cgroups. vessel
is additionally measured on the unmodified hybrid host for reference.

usage: bench/oci/run.py [--runs N] [--vessel PATH]   (root; re-execs itself
under unshare)
"""
import argparse
import ctypes
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def make_bundle(base: Path, runc: str) -> Path:
    b = base / "bundle"
    rootfs = b / "rootfs"
    for d in ("bin", "proc", "dev", "sys", "tmp"):
        (rootfs / d).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", rootfs / "bin/busybox")
    subprocess.run(["chroot", str(rootfs), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    subprocess.run([runc, "spec", "--bundle", str(b)], check=True)
    cfg = json.loads((b / "config.json").read_text())
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["/bin/true"]
    (b / "config.json").write_text(json.dumps(cfg))
    return b


def timed(argv, rss_file):
    """Wall time of argv, and its peak RSS. The RSS comes from GNU time: a
    child forked from this Python process would report Python's own RSS
    (the kernel keeps the pre-exec high-water mark)."""
    argv = ["/usr/bin/time", "-f", "%M", "-o", str(rss_file)] + argv
    t0 = time.perf_counter()
    pid = os.spawnv(os.P_NOWAIT, argv[0], argv)
    _, status, ru = os.wait4(pid, 0)
    dt = time.perf_counter() - t0
    rc = os.waitstatus_to_exitcode(status)
    if rc != 0:
        raise SystemExit(f"{' '.join(argv)} exited {rc}")
    # CPU time of the runtime and the container's init (GNU time's own is
    # negligible): on a loaded host wall time is mostly waiting for a CPU
    cpu = ru.ru_utime + ru.ru_stime
    return dt, int(Path(rss_file).read_text().split()[-1]), cpu  # KiB


def reap_orphans():
    while True:
        try:
            if os.waitpid(-1, os.WNOHANG)[0] == 0:
                return
        except ChildProcessError:
            return


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=int(os.environ.get("VESSEL_BENCH_RUNS", 30)))
    ap.add_argument("--vessel", default=str(ROOT / "build/src/cmd/vessel-runc"))
    ap.add_argument("--inner", action="store_true", help=argparse.SUPPRESS)
    a = ap.parse_args()
    vessel = a.vessel
    if vessel.endswith("/vessel"):
        vessel += "-runc"
    if not os.path.exists(vessel):
        for c in ("build-test", "build-oci", "build"):
            p = ROOT / c / "src/cmd/vessel-runc"
            if p.exists():
                vessel = str(p)
                break
    if os.geteuid() != 0:
        raise SystemExit("run as root")
    if not a.inner:
        # reference numbers on the hybrid host first, then the fair comparison
        os.execvp("unshare", ["unshare", "--mount", "--propagation", "private", sys.executable,
                              __file__, "--inner", "--runs", str(a.runs), "--vessel", vessel])
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER: detached inits re-parent to us
    base = Path(tempfile.mkdtemp(prefix="vessel-bench-oci-"))
    try:
        bundle = make_bundle(base, vessel)
        runtimes = {"vessel": vessel, "crun": shutil.which("crun"), "runc": shutil.which("runc")}
        runtimes = {k: v for k, v in runtimes.items() if v}
        results = {k: {"run": [], "rss": [], "lifecycle": [], "cpu": []} for k in runtimes}
        hybrid = []
        # vessel on the hybrid layout (crun refuses it)
        for i in range(a.runs):
            dt, _, _ = timed([vessel, "--root", str(base / "state-hybrid"), "run", "--bundle",
                              str(bundle), f"h{i}"], base / "rss")
            hybrid.append(dt)
        subprocess.run(["umount", "/sys/fs/cgroup/unified"], check=True)
        names = list(runtimes)
        for i in range(a.runs):
            order = names[i % len(names):] + names[:i % len(names)]
            for name, exe in ((n, runtimes[n]) for n in order):
                root = str(base / f"state-{name}")
                dt, rss, cpu = timed([exe, "--root", root, "run", "--bundle", str(bundle),
                                      f"r{i}"], base / "rss")
                results[name]["run"].append(dt)
                results[name]["rss"].append(rss)
                results[name]["cpu"].append(cpu)
                cid = f"l{i}"
                t0 = time.perf_counter()
                for argv in (["create", "--bundle", str(bundle), cid], ["start", cid],
                             ["delete", "--force", cid]):
                    # no pipes: the detached init keeps create's stdio open
                    with tempfile.TemporaryFile() as errf:
                        r = subprocess.run([exe, "--root", root] + argv,
                                           stdout=subprocess.DEVNULL, stderr=errf,
                                           stdin=subprocess.DEVNULL)
                        if r.returncode != 0:
                            errf.seek(0)
                            raise SystemExit(f"{name} {argv[0]} failed: {errf.read().decode()}")
                results[name]["lifecycle"].append(time.perf_counter() - t0)
                reap_orphans()

        def ms(v):
            return statistics.median(v) * 1000

        print(f"OCI runtime benchmark: {a.runs} runs each, interleaved, busybox-static bundle")
        print("layout: a private mount namespace without /sys/fs/cgroup/unified (pure v1), "
              "because crun 1.8 refuses this host's hybrid layout; same bundle, same cgroups")
        print(f"{'runtime':8} {'run true (ms)':>14} {'create+start+delete (ms)':>25} "
              f"{'peak RSS (MiB)':>15} {'run CPU (ms)':>13}")
        for name, r in results.items():
            print(f"{name:8} {ms(r['run']):14.2f} {ms(r['lifecycle']):25.2f} "
                  f"{max(r['rss']) / 1024:15.1f} {ms(r['cpu']):13.2f}")
        v = results["vessel"]
        for name, r in results.items():
            if name == "vessel":
                continue
            print(f"ratio {name}/vessel: run {ms(r['run']) / ms(v['run']):.2f}x, "
                  f"create+start+delete {ms(r['lifecycle']) / ms(v['lifecycle']):.2f}x, "
                  f"peak RSS {max(r['rss']) / max(v['rss']):.2f}x, "
                  f"run CPU {ms(r['cpu']) / ms(v['cpu']):.2f}x")
        print(f"vessel on the unmodified hybrid layout (v1 + v2 hierarchies): "
              f"run true {ms(hybrid):.2f} ms median")
    finally:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
