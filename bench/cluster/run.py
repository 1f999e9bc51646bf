#!/usr/bin/python3
"""vesseld on a three-host cluster (state on etcd) vs one host (SQLite).

The hosts are network namespaces made here, joined by veth pairs to a
bridge in a fourth namespace (addresses only inside them), each with an
etcd member (one three-member etcd cluster) and a vesseld; the single host
is a vesseld with SQLite in a namespace of its own. Both get the same
busybox rootfs as a local image.

Measured, medians:
  launch to running of a container (`vessel launch`, wall), R launches
  `vessel list` (table) with N instances: the single host's N, and N over
  the three hosts (N/3 each), asked on host 1, R times
  `vessel list --format json`, the same
  a launch with --target host 2 and an exec of host 2's instance, both
  asked on host 1 (forwarded over the daemons' HTTPS), against the single
  host's local launch and exec
  `vessel move` of a running container between hosts 1 and 2 (cluster only)
  `vessel move` of a running VM between hosts 1 and 2, live (cluster only):
  the tier-1 x86 test guest on /dev/kvm (128 MiB), else the riscv64 guest
  (256 MiB) when guest/build-riscv64.sh has built it
The instances for the list rows are made with --no-start (records and
directories; the list's cost is the store and the state of each local
instance). Prints the figures and the ratio cluster/single (above 1: the
cluster is slower).

No timing asserts. Everything made here (namespaces, processes, mounts,
files) is removed at the end, also after a failure or Ctrl-C.

usage: bench/cluster/run.py [--instances N] [--runs R] [--vessel PATH]   (as root)
"""
import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUBNET = "10.232.0"


def sh(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, **kw)


def busybox_tarball(d: Path) -> Path:
    root = d / "rootfs"
    for sub in ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (root / sub).mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin/busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    out = d / "busybox.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        t.add(root, arcname=".")
    return out


class Node:
    """A network namespace with a vesseld (and maybe an etcd member)."""

    def __init__(self, name, ns, d: Path, vessel: Path):
        self.name, self.ns, self.dir, self.vessel = name, ns, d, vessel
        self.dir.mkdir(parents=True)
        self.sock = d / "vessel.sock"
        self.env = dict(os.environ, VESSEL_SOCKET=str(self.sock))
        self.procs = []

    def spawn(self, *args, log):
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, *map(str, args)],
                             stdout=open(self.dir / log, "ab"), stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def start_daemon(self):
        self.daemon = self.spawn(self.vessel.parent / "vesseld", "--state-dir",
                                 self.dir / "state", "--socket", self.sock, "--network", "none",
                                 log="vesseld.log")
        for _ in range(500):
            if self.sock.exists() and self.cli("list").returncode == 0:
                return
            time.sleep(0.02)
        raise SystemExit(f"{self.name}: vesseld did not start ({self.dir / 'vesseld.log'})")

    def cli(self, *args, check=False, timeout=120):
        p = subprocess.run([str(self.vessel), *map(str, args)], capture_output=True, text=True,
                           env=self.env, timeout=timeout)
        if check and p.returncode:
            raise SystemExit(f"{self.name}: vessel {' '.join(map(str, args))}: "
                             f"{(p.stderr or p.stdout).strip()}")
        return p

    def timed(self, *args):
        t = time.perf_counter()
        self.cli(*args, check=True)
        return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--instances", type=int, default=300)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--vessel", type=Path, default=ROOT / "build/src/cmd/vessel")
    a = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root (network namespaces, containers)")
    etcd = shutil.which("etcd")
    if not etcd:
        raise SystemExit("etcd is not installed (scripts/setup.sh installs etcd-server)")
    tmp = Path(tempfile.mkdtemp(prefix="vessel-bench-cluster-"))
    tag = uuid.uuid4().hex[:6]
    namespaces, nodes = [], []
    try:
        def netns(name):
            sh("ip", "netns", "add", name, check=True)
            namespaces.append(name)
            sh("ip", "-n", name, "link", "set", "lo", "up", check=True)
            return name
        br = netns(f"vbc-{tag}-br")
        sh("ip", "-n", br, "link", "add", "br0", "type", "bridge", check=True)
        sh("ip", "-n", br, "link", "set", "br0", "up", check=True)
        hosts = []
        for i in (1, 2, 3):
            ns = netns(f"vbc-{tag}-{i}")
            sh("ip", "-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", f"p{i}",
               "netns", br, check=True)
            sh("ip", "-n", br, "link", "set", f"p{i}", "master", "br0", "up", check=True)
            sh("ip", "-n", ns, "addr", "add", f"{SUBNET}.{i}/24", "dev", "eth0", check=True)
            sh("ip", "-n", ns, "link", "set", "eth0", "up", check=True)
            h = Node(f"h{i}", ns, tmp / f"h{i}", a.vessel)
            h.addr = f"{SUBNET}.{i}"
            hosts.append(h)
            nodes.append(h)
        single = Node("single", netns(f"vbc-{tag}-s"), tmp / "single", a.vessel)
        nodes.append(single)
        peers = ",".join(f"h{i}=http://{SUBNET}.{i}:2380" for i in (1, 2, 3))
        for h in hosts:
            h.spawn(etcd, "--name", h.name, "--data-dir", h.dir / "etcd",
                    "--listen-client-urls", f"http://{h.addr}:2379",
                    "--advertise-client-urls", f"http://{h.addr}:2379",
                    "--listen-peer-urls", f"http://{h.addr}:2380",
                    "--initial-advertise-peer-urls", f"http://{h.addr}:2380",
                    "--initial-cluster", peers, "--heartbeat-interval", "200",
                    "--election-timeout", "2000", log="etcd.log")
        for _ in range(300):
            if all('"health":"true"' in sh("ip", "netns", "exec", h.ns, "curl", "-s", "-m", "2",
                                             f"http://{h.addr}:2379/health").stdout
                   for h in hosts):
                break
            time.sleep(0.2)
        else:
            raise SystemExit("etcd did not become healthy")
        for n in nodes:
            n.start_daemon()
        for h in hosts:
            eps = ",".join(f"{o.addr}:2379" for o in [h] + [o for o in hosts if o is not h])
            verb = ["init", "--etcd", eps] if h is hosts[0] else ["join", eps]
            h.cli("cluster", *verb, "--name", h.name, "--address", h.addr, check=True)
        tarball = busybox_tarball(tmp / "img")
        for n in nodes:
            n.cli("image", "import", tarball, "--alias", "busybox", check=True)

        rows = []

        def compare(what, fs, fc):
            s = statistics.median(fs)
            c = statistics.median(fc)
            rows.append((what, s, c))

        # launch to running, interleaved
        ls, lc = [], []
        for r in range(a.runs):
            ls.append(single.timed("launch", "busybox", f"l{r}", "-c", "command=sleep 100000"))
            lc.append(hosts[0].timed("launch", "busybox", f"l{r}", "-c", "command=sleep 100000"))
        compare("launch to running (container)", ls, lc)
        dl_s, dl_c = [], []
        for r in range(a.runs):
            dl_s.append(single.timed("delete", "--force", f"l{r}"))
            dl_c.append(hosts[0].timed("delete", "--force", f"l{r}"))
        compare("delete --force (running container)", dl_s, dl_c)

        # across hosts: a launch placed on host 2 and an exec of host 2's
        # instance, both asked on host 1 (the request goes to host 2's daemon)
        lt, ex_s, ex_c = [], [], []
        for r in range(a.runs):
            lt.append(hosts[0].timed("launch", "busybox", f"t{r}", "--target", "h2", "-c",
                                     "command=sleep 100000"))
        single.cli("launch", "busybox", "ex", "-c", "command=sleep 100000", check=True)
        hosts[1].cli("launch", "busybox", "ex", "-c", "command=sleep 100000", check=True)
        for r in range(a.runs):
            ex_s.append(single.timed("exec", "ex", "--", "/bin/true"))
            ex_c.append(hosts[0].timed("exec", "ex", "--", "/bin/true"))
        compare("launch --target another host (cluster)", ls, lt)
        compare("exec /bin/true (cluster: on another host)", ex_s, ex_c)
        single.cli("delete", "--force", "ex", check=True)
        hosts[1].cli("delete", "--force", "ex", check=True)
        for r in range(a.runs):
            hosts[1].cli("delete", "--force", f"t{r}", check=True)

        # a running container moved back and forth between hosts 1 and 2
        # (a command that ends on SIGTERM, so the stop is clean and short)
        hosts[0].cli("launch", "busybox", "mv", "-c",
                     "command=sh -c 'trap \"exit 0\" TERM; while true; do sleep 0.2; done'",
                     check=True)
        moves = []
        for r in range(a.runs):
            moves.append(hosts[0].timed("move", "mv", "--target", "h2" if r % 2 == 0 else "h1"))
        owner = hosts[1] if a.runs % 2 else hosts[0]
        owner.cli("delete", "--force", "mv", check=True)

        # a running VM moved back and forth, live
        vm_moves, vm_what = [], None
        rv = Path(os.environ.get("VESSEL_GUEST_DIR", Path.home() / ".cache/vessel/guest"))
        rv = rv / "riscv64"
        if os.access("/dev/kvm", os.R_OK | os.W_OK):
            sh(ROOT / "tests/guests/x86/build.sh", check=True)
            hosts[0].cli("image", "import", "--vm", "--kernel",
                         ROOT / "tests/guests/out/x86/guest.elf", "--alias", "vmimg", check=True)
            hosts[0].cli("launch", "vmimg", "vm", "-c", "boot.args=test=counter", "-c",
                         "limits.memory=128MiB", check=True)
            vm_what = "x86 tier-1 guest, 128 MiB, KVM"
        elif (rv / "vmlinuz").exists():
            hosts[0].cli("image", "import", "--vm", "--arch", "riscv64", "--kernel",
                         rv / "vmlinuz", "--initrd", rv / "initrd.img", "--alias", "vmimg",
                         check=True)
            hosts[0].cli("launch", "vmimg", "vm", "-c", "limits.memory=256MiB", check=True)
            time.sleep(5)
            vm_what = "riscv64 Linux, 256 MiB, emulated"
        if vm_what:
            time.sleep(1)
            for r in range(a.runs):
                vm_moves.append(hosts[0].timed("move", "vm", "--target",
                                               "h2" if r % 2 == 0 else "h1"))
            hosts[0].cli("delete", "--force", "vm", check=True)

        # N instances: all on the single host; N/3 on each cluster host
        t = time.perf_counter()
        for k in range(a.instances):
            single.cli("launch", "busybox", f"i{k}", "--no-start", check=True)
        t_single = time.perf_counter() - t
        t = time.perf_counter()
        for k in range(a.instances):
            hosts[k % 3].cli("launch", "busybox", f"i{k}", "--no-start", check=True)
        t_cluster = time.perf_counter() - t
        rows.append((f"{a.instances} launches --no-start in a row (total)", t_single, t_cluster))
        got = json.loads(hosts[0].cli("list", "--format", "json", check=True).stdout)
        assert len(got) == a.instances, len(got)
        for fmt in (("list",), ("list", "--format", "json")):
            fs, fc = [], []
            for _ in range(a.runs):
                fs.append(single.timed(*fmt))
                fc.append(hosts[0].timed(*fmt))
            compare(f"vessel {' '.join(fmt)} ({a.instances} instances)", fs, fc)

        print(f"\nvesseld: 3-host cluster (etcd 3.4, 3 members) vs single host (SQLite); "
              f"medians of {a.runs}\n")
        print(f"{'':44}  {'single':>9}  {'cluster':>9}  {'cluster/single':>14}")
        for what, s, c in rows:
            print(f"{what:44}  {s * 1000:7.1f}ms  {c * 1000:7.1f}ms  {c / s:13.2f}x")
        print(f"{'move of a running container (cluster only)':44}  {'-':>9}  "
              f"{statistics.median(moves) * 1000:7.1f}ms")
        if vm_moves:
            print(f"{'live move of a running VM (cluster only)':44}  {'-':>9}  "
                  f"{statistics.median(vm_moves) * 1000:7.1f}ms  ({vm_what})")
        else:
            print("live move of a running VM: skipped (no /dev/kvm and no riscv64 guest built)")
    finally:
        for n in nodes:
            root = n.dir / "state/containers"
            runc = a.vessel.parent / "vessel-runc"
            for c in (root.iterdir() if root.exists() else []):
                sh(runc, "--root", root, "delete", "--force", c.name)
        for n in nodes:
            for p in reversed(n.procs):
                if p.poll() is None:
                    p.send_signal(signal.SIGTERM)
                    try:
                        p.wait(timeout=10)
                    except subprocess.TimeoutExpired:
                        p.kill()
            sh("umount", "-R", "-l", n.dir / "state")
        for ns in namespaces:
            sh("ip", "netns", "del", ns)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
