#!/usr/bin/python3
"""vesseld vs LXD 5.0: the management daemons side by side, same machine, same run.

Both daemons run at once, each with private state (vesseld: its own state
directory and socket; LXD: its own LXD_DIR, a `dir` storage pool on a
directory made here, no network by default), both get the same busybox
rootfs as a local image, and both run the same /sbin/init in their
containers. Each daemon gives its containers a NIC on a managed bridge of
its own (vesseld --network, an LXD bridge network), with a name and a
subnet private to the run; --no-network leaves both without (a network
namespace with only lo). Rounds alternate which system goes first; the table shows
medians and the ratio vessel/LXD (below 1: vessel is faster or smaller).

Per round and system:
  single instance: launch to running, exec /bin/true (x5), snapshot and copy
  (when `vessel help` lists them), clean stop, start, stop --force, delete
  many instances: N launches in a row (total), list with N running (table
  and --format json, x5 each), the daemon's RSS with N, N deletes --force
  in a row (total), the daemon's RSS after them

No timing asserts. Every command is bounded by a timeout; everything made
here (instances, images, LXD's pool, network, its iptables rules, mounts,
processes, files) is removed at the end, also after a failure or Ctrl-C.

usage: bench/daemon/run.py [--instances N] [--runs R] [--vessel PATH]
       [--vesseld PATH] [--init sleep|busybox] [--no-network]
       [--lxd-unprivileged] [--no-lxd] [--timeout S]      (as root)
"""
import argparse
import json
import os
import re
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EXEC_REPEAT = 5
LIST_REPEAT = 5


class BenchError(Exception):
    """One line that says what failed; printed, never a traceback."""


def one_line(text: str, limit: int = 200) -> str:
    lines = [l.strip() for l in (text or "").splitlines() if l.strip()]
    # the last line is usually the error itself (LXD prints progress first)
    s = lines[-1] if lines else "no output"
    return s if len(s) <= limit else s[:limit] + "..."


def run(argv, env=None, timeout=60, input=None):
    """Run argv; return (seconds, stdout). BenchError on failure or timeout."""
    t0 = time.perf_counter()
    try:
        p = subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True,
                           stdin=None if input is not None else subprocess.DEVNULL, input=input)
    except subprocess.TimeoutExpired:
        raise BenchError(f"`{' '.join(map(str, argv))}` timed out after {timeout} s")
    except OSError as e:
        raise BenchError(f"`{argv[0]}`: {e.strerror}")
    dt = time.perf_counter() - t0
    if p.returncode != 0:
        raise BenchError(f"`{' '.join(map(str, argv))}` exited {p.returncode}: "
                         f"{one_line(p.stderr or p.stdout)}")
    return dt, p.stdout


def quiet(argv, env=None, timeout=60):
    """Best effort (cleanup): never raises."""
    try:
        return subprocess.run(argv, env=env, timeout=timeout, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
    except (subprocess.TimeoutExpired, OSError):
        return None


def rest_get(sock: Path, path: str, timeout: float) -> float:
    """One GET on a daemon's unix socket, timed without any CLI in the way."""
    t0 = time.perf_counter()
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as c:
            c.settimeout(timeout)
            c.connect(str(sock))
            c.sendall(f"GET {path} HTTP/1.1\r\nHost: bench\r\nConnection: close\r\n\r\n".encode())
            data = b""
            while True:
                b = c.recv(65536)
                if not b:
                    break
                data += b
    except OSError as e:
        raise BenchError(f"GET {path} on {sock}: {e}")
    dt = time.perf_counter() - t0
    status = data.split(b"\r\n", 1)[0].decode(errors="replace")
    if " 200 " not in status + " ":
        raise BenchError(f"GET {path} on {sock}: {status or 'no answer'}")
    return dt


def rss_kib(pid) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def procs():
    """(pid, argv list, exe path) of every process we can read."""
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
            exe = os.readlink(d / "exe")
        except OSError:
            continue
        yield int(d.name), [a.decode(errors="replace") for a in argv if a], exe


def mounts_under(path: Path):
    out = []
    try:
        for line in Path("/proc/self/mounts").read_text().splitlines():
            mp = line.split()[1].encode().decode("unicode_escape")
            if mp == str(path) or mp.startswith(str(path) + "/"):
                out.append(mp)
    except OSError:
        pass
    return sorted(out, key=len, reverse=True)


def umount_all_under(path: Path):
    for mp in mounts_under(path):
        quiet(["umount", "-l", mp], timeout=20)


# ---- the image -------------------------------------------------------------

INIT_SLEEP = """#!/bin/sh
# pid 1 of the container: stops cleanly on SIGTERM (vessel) and SIGPWR (LXD)
trap 'exit 0' TERM PWR INT
sleep 100000 &
wait
"""

INITTAB = """::sysinit:/bin/true
::respawn:/bin/sleep 100000
::shutdown:/bin/true
"""


def make_images(base: Path, init: str):
    """The same busybox rootfs as two tarballs: rootfs.tar.gz (vessel, and
    LXD's rootfs half) and meta.tar.gz (LXD's metadata.yaml)."""
    if not Path("/bin/busybox").exists():
        raise BenchError("/bin/busybox is missing (apt-get install busybox-static)")
    root = base / "rootfs"
    for sub in ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "root", "run", "var"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy("/bin/busybox", root / "bin/busybox")
    run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], timeout=30)
    (root / "etc/hostname").write_text("busybox\n")
    if init == "busybox":
        os.symlink("../bin/busybox", root / "sbin/init")
        (root / "etc/inittab").write_text(INITTAB)
    else:
        (root / "sbin/init").write_text(INIT_SLEEP)
        (root / "sbin/init").chmod(0o755)
    rootfs_tar = base / "rootfs.tar.gz"
    with tarfile.open(rootfs_tar, "w:gz") as t:
        t.add(root, arcname=".")
    meta = base / "meta"
    meta.mkdir()
    (meta / "metadata.yaml").write_text(
        f"architecture: {os.uname().machine}\ncreation_date: {int(time.time())}\n"
        "properties:\n  description: busybox (vessel bench/daemon)\n  os: busybox\n")
    meta_tar = base / "meta.tar.gz"
    with tarfile.open(meta_tar, "w:gz") as t:
        t.add(meta / "metadata.yaml", arcname="metadata.yaml")
    return rootfs_tar, meta_tar


# ---- the systems -------------------------------------------------------------

class System:
    """A daemon and its CLI. vessel's and LXD's CLIs take the same verbs."""
    name = "?"

    def __init__(self, cli, env, timeout):
        self.cli_argv, self.env, self.timeout = cli, env, timeout
        self.daemon_pid = None

    def cli(self, *args, timeout=None):
        return run(self.cli_argv + [str(a) for a in args], env=self.env,
                   timeout=timeout or self.timeout)

    def launch(self, inst):
        return self.cli("launch", "busybox", inst)[0]

    def exec_true(self, inst):
        return self.cli("exec", inst, "--", "/bin/true")[0]

    def list(self, fmt=None):
        return self.cli("list", *(["--format", fmt] if fmt else []))[0]

    def stop(self, inst, force=False):
        return self.cli("stop", inst, *(["--force"] if force else ["--timeout", "30"]))[0]

    def start(self, inst):
        return self.cli("start", inst)[0]

    def delete(self, inst, force=False):
        return self.cli("delete", inst, *(["--force"] if force else []))[0]

    def snapshot(self, inst, snap):
        return self.cli("snapshot", inst, snap)[0]

    def copy(self, src, dst):
        return self.cli("copy", src, dst)[0]

    def restore(self, inst, snap):
        return self.cli("restore", inst, snap)[0]

    def rest_list(self):
        return rest_get(self.rest_sock, self.rest_list_path, self.timeout)

    def daemon_rss(self):
        return rss_kib(self.daemon_pid) if self.daemon_pid else 0

    def helpers(self):
        """(count, RSS KiB) of per-instance host processes outside the containers."""
        return 0, 0

    def helper_what(self):
        return "helper processes"

    def instances(self):
        raise NotImplementedError

    def delete_everything(self):
        for inst in self.instances():
            quiet(self.cli_argv + ["delete", "--force", inst], env=self.env, timeout=60)


class Vessel(System):
    name = "vessel"

    def __init__(self, vessel, vesseld, base: Path, timeout, bridge: bool):
        self.bridge = f"vbv{os.getpid() % 100000}" if bridge else None
        self.cidr = None
        self.network_note = ""
        self.dir = base / "vessel"
        self.dir.mkdir()
        self.sock = self.dir / "vessel.sock"
        self.state = self.dir / "state"
        super().__init__([str(vessel)], dict(os.environ, VESSEL_SOCKET=str(self.sock)),
                         timeout)
        self.vessel, self.vesseld = Path(vessel).resolve(), Path(vesseld).resolve()
        self.rest_sock, self.rest_list_path = self.sock, "/1.0/instances"
        self.proc = None
        self.verbs = set()

    def start_daemon(self):
        argv = [str(self.vesseld), "--state-dir", str(self.state), "--socket", str(self.sock),
                "--vessel", str(self.vessel)]
        # a vesseld with a managed network makes vessel0:10.87.0.1/24 (bridge, NAT,
        # dnsmasq) in the host's namespace unless told otherwise, and leaves it
        # there: the bench asks for no network, or for a bridge of its own
        usage = quiet([str(self.vesseld), "--help"], timeout=10)
        has_network = usage is not None and "--network" in (usage.stdout + usage.stderr)
        if has_network:
            if self.bridge:
                self.cidr = free_subnet(214)
                argv += ["--network", f"{self.bridge}:{self.cidr}"]
            else:
                argv += ["--network", "none"]
        elif self.bridge:
            self.network_note = "vesseld has no --network in this build: no bridge for vessel"
            self.bridge = None
        self.log = open(self.dir / "vesseld.log", "ab")
        self.proc = subprocess.Popen(argv,
                                     stdout=self.log, stderr=self.log, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        self.daemon_pid = self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"vesseld exited {self.proc.returncode}: "
                                 f"{one_line((self.dir / 'vesseld.log').read_text())}")
            if self.sock.exists() and quiet(self.cli_argv + ["list"], env=self.env,
                                            timeout=10).returncode == 0:
                break
            time.sleep(0.02)
        else:
            raise BenchError("vesseld did not answer on its socket within 30 s")
        if self.bridge and "no managed network" in (self.dir / "vesseld.log").read_text():
            self.network_note = f"vesseld could not make its bridge {self.bridge}: " + \
                one_line((self.dir / "vesseld.log").read_text())
        _, out = run([str(self.vessel), "help"], timeout=10)
        self.verbs = {l.split()[0] for l in out.splitlines() if l.startswith("  ") and l.split()}

    def import_image(self, rootfs_tar, meta_tar):
        self.cli("image", "import", rootfs_tar, "--alias", "busybox", timeout=120)

    def instances(self):
        try:
            return [i["name"] for i in json.loads(self.cli("list", "--format", "json")[1])]
        except (BenchError, ValueError, KeyError, TypeError):
            return []

    def helper_what(self):
        return "processes (vessel/vesseld besides the daemon" + \
            (", the bridge's dnsmasq)" if self.bridge else ")")

    def helpers(self):
        # a VMM or shim per instance would be a vessel/vesseld process other than the daemon
        n = rss = 0
        for pid, argv, exe in procs():
            if (pid != self.daemon_pid and exe in (str(self.vessel), str(self.vesseld))) or \
                    (self.bridge and "dnsmasq" in exe and any(str(self.state) in a for a in argv)):
                n, rss = n + 1, rss + rss_kib(pid)
        return n, rss

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.delete_everything()
            quiet(self.cli_argv + ["image", "delete", "busybox"], env=self.env, timeout=30)
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        if self.bridge:
            self.remove_network()
        umount_all_under(self.dir)

    def remove_network(self):
        """What vesseld's managed network leaves behind on purpose (it outlives
        the daemon, as instances do): its dnsmasq, the bridge, the NAT rule."""
        for pid, argv, exe in procs():
            if "dnsmasq" in exe and any(str(self.state) in a for a in argv):
                try:
                    os.kill(pid, signal.SIGTERM)
                except OSError:
                    pass
        if Path(f"/sys/class/net/{self.bridge}").exists():
            quiet(["ip", "link", "del", self.bridge], timeout=20)
        if self.cidr:
            sub = subnet_of(self.cidr)
            for _ in range(10):  # once per start that added it
                p = quiet(["iptables", "-t", "nat", "-D", "POSTROUTING", "-s", sub, "!", "-d",
                           sub, "-j", "MASQUERADE"], timeout=20)
                if not p or p.returncode != 0:
                    break


class Lxd(System):
    name = "LXD"

    def __init__(self, base: Path, timeout, bridge: bool, privileged: bool):
        self.dir = base / "lxd"
        self.dir.mkdir()
        self.lxd_dir = self.dir / "var"
        self.lxd_dir.mkdir()
        (self.dir / "conf").mkdir()
        self.pool_src = self.dir / "pool"
        self.pool_src.mkdir()
        # one name per run, short enough for an interface name
        self.net = f"vbd{os.getpid() % 100000}" if bridge else None
        self.privileged = privileged
        env = dict(os.environ, LXD_DIR=str(self.lxd_dir), LXD_CONF=str(self.dir / "conf"))
        super().__init__(["lxc"], env, timeout)
        self.proc = None
        self.version = "?"
        # what `lxc list` asks for: every instance with its state
        self.rest_sock, self.rest_list_path = self.lxd_dir / "unix.socket", \
            "/1.0/instances?recursion=2"

    def start_daemon(self):
        for tool in ("lxd", "lxc"):
            if not shutil.which(tool):
                raise BenchError(f"`{tool}` is not installed (apt-get install lxd)")
        self.log = open(self.dir / "lxd.out", "ab")
        self.proc = subprocess.Popen(["lxd", "--group", "root", "--logfile",
                                      str(self.dir / "lxd.log")],
                                     env=self.env, stdout=self.log, stderr=self.log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        self.daemon_pid = self.proc.pid
        try:
            run(["lxd", "waitready", "--timeout", "60"], env=self.env, timeout=70)
        except BenchError as e:
            tail = (self.dir / "lxd.out").read_text(errors="replace")
            raise BenchError(f"lxd did not become ready: "
                             f"{one_line(tail) if tail.strip() else e}")
        self.version = run(["lxd", "--version"], env=self.env, timeout=10)[1].strip()
        root_dev = {"path": "/", "pool": "bench", "type": "disk"}
        devices = {"root": root_dev}
        networks = []
        if self.net:
            networks = [{"name": self.net, "type": "bridge",
                         "config": {"ipv4.address": free_subnet(213), "ipv4.nat": "true",
                                    "ipv6.address": "none"}}]
            devices["eth0"] = {"name": "eth0", "network": self.net, "type": "nic"}
        profile_config = {"security.privileged": "true"} if self.privileged else {}
        preseed = {"config": {"images.auto_update_interval": "0"},
                   "storage_pools": [{"name": "bench", "driver": "dir",
                                      "config": {"source": str(self.pool_src)}}],
                   "networks": networks,
                   "profiles": [{"name": "default", "config": profile_config,
                                 "devices": devices}]}
        # JSON is YAML
        run(["lxd", "init", "--preseed"], env=self.env, timeout=120, input=json.dumps(preseed))

    def import_image(self, rootfs_tar, meta_tar):
        self.cli("image", "import", meta_tar, rootfs_tar, "--alias", "busybox", timeout=120)

    def instances(self):
        try:
            out = self.cli("list", "--format", "csv", "-c", "n")[1]
            return [l.strip() for l in out.splitlines() if l.strip()]
        except BenchError:
            return []

    def monitors(self):
        prefix = f"[lxc monitor] {self.lxd_dir}/containers "
        return [pid for pid, argv, _ in procs() if argv and argv[0].startswith(prefix)]

    def helper_what(self):
        return "processes ([lxc monitor] per container" + \
            (", the bridge's dnsmasq)" if self.net else ")")

    def helpers(self):
        pids = self.monitors()
        if self.net:  # the bridge's dnsmasq serves the instances too
            pids += [pid for pid, argv, _ in procs() if argv and argv[0].endswith("dnsmasq")
                     and f"--interface={self.net}" in argv]
        return len(pids), sum(rss_kib(p) for p in pids)

    def cleanup(self):
        if self.proc and self.proc.poll() is None:
            self.delete_everything()
            for argv in (["image", "delete", "busybox"],
                         ["profile", "device", "remove", "default", "root"],
                         ["profile", "device", "remove", "default", "eth0"] if self.net else None,
                         ["network", "delete", self.net] if self.net else None,
                         ["storage", "delete", "bench"]):
                if argv:
                    quiet(self.cli_argv + argv, env=self.env, timeout=60)
            quiet(["lxd", "shutdown", "--timeout", "30"], env=self.env, timeout=40)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        # a monitor left by an instance that would not die
        for pid in self.monitors():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        remove_lxd_iptables()
        umount_all_under(self.dir)


def free_subnet(second: int) -> str:
    """A 10.<second>.y.1/24 that no route on this host covers (rather than
    LXD's `auto`, which probes)."""
    routes = run(["ip", "-4", "route", "show", "table", "all"], timeout=10)[1]
    used = set(re.findall(r"\b10\.(\d+)\.(\d+)\.", routes))
    for y in range(200, 255):
        if (str(second), str(y)) not in used:
            return f"10.{second}.{y}.1/24"
    raise BenchError(f"no free 10.{second}.y.0/24 subnet for a bridge")


def subnet_of(cidr: str) -> str:
    """10.214.200.1/24 -> 10.214.200.0/24"""
    addr, prefix = cidr.split("/")
    return ".".join(addr.split(".")[:3] + ["0"]) + "/" + prefix


def remove_lxd_iptables():
    """LXD (xtables backend, no `nft` here) adds rules per bridge on every start
    and leaves them when the network is deleted. Remove the ones made for this
    bench's bridges (vbd<digits>, also from an earlier run that was killed)."""
    mark = re.compile(r'generated for LXD network vbd\d+"?(\s|$)')
    for tool in ("iptables", "ip6tables"):
        if not shutil.which(tool):
            continue
        for table in ("filter", "nat", "mangle", "raw"):
            p = quiet([tool, "-t", table, "-S"], timeout=20)
            if not p or p.returncode != 0:
                continue
            for line in p.stdout.splitlines():
                if line.startswith("-A ") and mark.search(line):
                    quiet([tool, "-t", table, "-D"] + shlex.split(line)[1:], timeout=20)


# ---- measuring ---------------------------------------------------------------

ROWS = [  # key, label, unit
    ("launch", "launch to running", "ms"),
    ("exec", "exec /bin/true", "ms"),
    ("snapshot", "snapshot (running)", "ms"),
    ("copy", "copy (running source)", "ms"),
    ("restore", "restore (running)", "ms"),
    ("stop", "stop (clean)", "ms"),
    ("start", "start (stopped)", "ms"),
    ("stop_force", "stop --force", "ms"),
    ("delete", "delete (stopped)", "ms"),
    ("batch_launch", "N launches in a row, total", "s"),
    ("list", "list, N running", "ms"),
    ("list_json", "list --format json, N running", "ms"),
    ("rest_list", "REST GET instances+state, N running", "ms"),
    ("batch_delete", "N delete --force in a row, total", "s"),
    ("rss_idle", "daemon RSS idle (image imported)", "MiB"),
    ("rss_n", "daemon RSS with N running", "MiB"),
    ("helpers_n", "per-instance helpers with N: RSS sum", "MiB"),
    ("rss_after", "daemon RSS after deleting N", "MiB"),
]


OPTIONAL = ("snapshot", "copy", "restore")  # measured when `vessel help` lists them


class Results:
    def __init__(self):
        self.samples = {}   # (system, key) -> [values]
        self.errors = {}    # (system, key) -> first error line
        self.notes = {}     # (system, key) -> text

    def add(self, sysname, key, v):
        self.samples.setdefault((sysname, key), []).append(v)

    def fail(self, sysname, key, msg):
        self.errors.setdefault((sysname, key), msg)

    def median(self, sysname, key):
        v = self.samples.get((sysname, key))
        return statistics.median(v) if v else None


def measure(res: Results, s: System, key, fn, *args):
    """Time one step; a failure is recorded for its row and re-raised."""
    try:
        v = fn(*args)
    except BenchError as e:
        res.fail(s.name, key, str(e))
        raise
    res.add(s.name, key, v)
    return v


def single_round(res: Results, s: System, r: int, optional):
    inst = f"bs{r}"
    try:
        measure(res, s, "launch", s.launch, inst)
    except BenchError:
        quiet(s.cli_argv + ["delete", "--force", inst], env=s.env, timeout=60)
        return
    try:
        for _ in range(EXEC_REPEAT):
            measure(res, s, "exec", s.exec_true, inst)
    except BenchError:
        pass
    snap = False
    if "snapshot" in optional:
        try:
            measure(res, s, "snapshot", s.snapshot, inst, "snap0")
            snap = True
        except BenchError:
            pass
    if "copy" in optional:
        try:
            measure(res, s, "copy", s.copy, inst, inst + "c")
        except BenchError:
            pass
        quiet(s.cli_argv + ["delete", "--force", inst + "c"], env=s.env, timeout=60)
    if "restore" in optional and snap:
        try:
            measure(res, s, "restore", s.restore, inst, "snap0")
        except BenchError:
            pass
    try:
        measure(res, s, "stop", s.stop, inst)
        measure(res, s, "start", s.start, inst)
        measure(res, s, "stop_force", s.stop, inst, True)
        measure(res, s, "delete", s.delete, inst)
    except BenchError:
        quiet(s.cli_argv + ["delete", "--force", inst], env=s.env, timeout=60)


def batch_round(res: Results, s: System, r: int, n: int):
    names = [f"bn{r}x{i}" for i in range(n)]
    made = []
    t0 = time.perf_counter()
    try:
        for inst in names:
            s.launch(inst)
            made.append(inst)
        res.add(s.name, "batch_launch", time.perf_counter() - t0)
    except BenchError as e:
        res.fail(s.name, "batch_launch", f"after {len(made)} of {n}: {e}")
    if len(made) == n:
        try:
            for _ in range(LIST_REPEAT):
                measure(res, s, "list", s.list)
            for _ in range(LIST_REPEAT):
                measure(res, s, "list_json", s.list, "json")
            for _ in range(LIST_REPEAT):
                measure(res, s, "rest_list", s.rest_list)
        except BenchError:
            pass
        res.add(s.name, "rss_n", s.daemon_rss())
        count, rss = s.helpers()
        res.add(s.name, "helpers_n", rss)
        res.notes[(s.name, "helpers_n")] = f"{count} {s.helper_what()}"
    t0 = time.perf_counter()
    try:
        for inst in made:
            s.delete(inst, force=True)
        res.add(s.name, "batch_delete", time.perf_counter() - t0)
    except BenchError as e:
        res.fail(s.name, "batch_delete", str(e))
        for inst in made:
            quiet(s.cli_argv + ["delete", "--force", inst], env=s.env, timeout=60)
    res.add(s.name, "rss_after", s.daemon_rss())


# ---- the table -----------------------------------------------------------------

def fmt(v, unit):
    if v is None:
        return "-"
    if unit == "ms":
        return f"{v * 1000:.1f}"
    if unit == "s":
        return f"{v:.2f}"
    return f"{v / 1024:.1f}"  # KiB -> MiB


def print_table(res: Results, systems, n, optional, lxd_why):
    names = [s.name for s in systems]
    w = 42
    print(f"{'':{w}} {'vessel':>10} {'LXD':>10} {'vessel/LXD':>11}")
    for key, label, unit in ROWS:
        lab = re.sub(r'\bN\b', str(n), label) + f" ({unit})"
        if key in OPTIONAL and key not in optional:
            print(f"{lab:{w}} not yet: `vessel {key}` does not exist in this build")
            continue
        v = res.median("vessel", key)
        l = res.median("LXD", key) if "LXD" in names else None
        ratio = "-"
        if v is not None and l:
            ratio = f"{v / l:.3f}" if v / l < 0.1 else f"{v / l:.2f}"
        print(f"{lab:{w}} {fmt(v, unit):>10} {fmt(l, unit):>10} {ratio:>11}")
    for (sysname, key), msg in sorted(res.errors.items()):
        print(f"  {sysname} {key} failed: {msg}")
    for (sysname, key), note in sorted(res.notes.items()):
        if key == "helpers_n":
            print(f"  {sysname} helpers with {n} running: {note}")
    if lxd_why:
        print(f"LXD rows missing: {lxd_why}")


def find_vessel(arg):
    if arg:
        return Path(arg)
    env = os.environ.get("VESSEL_BIN")
    if env:
        return Path(env)
    for c in ("build", "build-bench", "build-test"):
        p = ROOT / c / "src/cmd/vessel"
        if p.exists() and (p.parent / "vesseld").exists():
            return p
    raise BenchError("vessel is not built (meson setup build && ninja -C build), "
                     "or pass --vessel PATH")


def main():
    ap = argparse.ArgumentParser(description="vesseld vs LXD 5.0 on the same busybox rootfs")
    ap.add_argument("--instances", type=int, default=50, help="N for the many-instance rows")
    ap.add_argument("--runs", type=int, default=5, help="rounds per system (interleaved)")
    ap.add_argument("--vessel", help="the vessel CLI (default: build*/src/cmd/vessel)")
    ap.add_argument("--vesseld", help="the daemon (default: beside --vessel)")
    ap.add_argument("--init", choices=("sleep", "busybox"), default="sleep",
                    help="/sbin/init in the rootfs: a shell script that sleeps and exits on "
                         "SIGTERM/SIGPWR (default), or busybox init with an inittab")
    ap.add_argument("--no-network", action="store_true",
                    help="no bridge and no NIC for either daemon's containers "
                         "(default: each daemon's own managed bridge)")
    ap.add_argument("--lxd-unprivileged", action="store_true",
                    help="LXD's default user-namespaced containers (vessel's are privileged)")
    ap.add_argument("--no-lxd", action="store_true", help="vessel's rows only")
    ap.add_argument("--timeout", type=int, default=120, help="bound on any one command (s)")
    a = ap.parse_args()
    bridge = not a.no_network
    if os.geteuid() != 0:
        print("bench/daemon: run as root (overlay mounts, containers, LXD)")
        return 2
    if a.instances < 1 or a.runs < 1:
        print("bench/daemon: --instances and --runs must be at least 1")
        return 2

    def on_term(signo, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_term)

    base = Path(tempfile.mkdtemp(prefix="vbd-", dir="/tmp"))
    systems, lxd_why, vessel, optional, forward0 = [], "", None, [], None
    res = Results()
    status = 0
    try:
        vessel_bin = find_vessel(a.vessel)
        vesseld_bin = Path(a.vesseld) if a.vesseld else vessel_bin.parent / "vesseld"
        for p in (vessel_bin, vesseld_bin):
            if not os.access(p, os.X_OK):
                raise BenchError(f"{p} is not an executable")
        rootfs_tar, meta_tar = make_images(base, a.init)
        if bridge:  # both daemons and LXD turn IPv4 forwarding on
            forward0 = Path("/proc/sys/net/ipv4/ip_forward").read_text().strip()
        vessel = Vessel(vessel_bin, vesseld_bin, base, a.timeout, bridge)
        systems.append(vessel)
        vessel.start_daemon()
        vessel.import_image(rootfs_tar, meta_tar)
        if a.no_lxd:
            lxd_why = "--no-lxd"
        else:
            lxd = Lxd(base, a.timeout, bridge, not a.lxd_unprivileged)
            systems.append(lxd)
            try:
                lxd.start_daemon()
                lxd.import_image(rootfs_tar, meta_tar)
            except BenchError as e:
                lxd_why = str(e)
                systems.remove(lxd)
                lxd.cleanup()
        optional = [v for v in OPTIONAL if v in vessel.verbs]
        time.sleep(2)  # let both settle after the import before the idle RSS
        for s in systems:
            res.add(s.name, "rss_idle", s.daemon_rss())
        load0 = os.getloadavg()[0]
        t_start = time.monotonic()
        for r in range(a.runs):
            order = systems if r % 2 == 0 else systems[::-1]
            for s in order:
                single_round(res, s, r, optional)
            for s in order:
                batch_round(res, s, r, a.instances)
            sys.stderr.write(f"round {r + 1}/{a.runs} done ({time.monotonic() - t_start:.0f} s)\n")
        load1 = os.getloadavg()[0]

        commit = quiet(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"])
        print(f"vesseld vs LXD {systems[-1].version if len(systems) > 1 else '(absent)'}: "
              f"{a.runs} rounds, interleaved, medians; N={a.instances}")
        print(f"vessel: {vessel_bin} (main at {commit.stdout.strip() if commit else '?'}); "
              f"container /sbin/init: "
              f"{'busybox init + inittab' if a.init == 'busybox' else 'sh script: trap TERM/PWR, sleep'}")
        if bridge:
            print(f"vessel: bridge {vessel.bridge} {vessel.cidr}" if vessel.bridge
                  else f"vessel: {vessel.network_note}")
            if vessel.bridge and vessel.network_note:
                print(f"vessel: {vessel.network_note}")
        else:
            print("vessel: --network none (no bridge; containers get a netns with lo only)")
        print(f"LXD: private LXD_DIR, dir pool, "
              f"{'bridge ' + systems[-1].net if bridge and len(systems) > 1 else 'no network'}, "
              f"{'unprivileged' if a.lxd_unprivileged else 'security.privileged=true'}; "
              f"load average {load0:.1f} -> {load1:.1f} on {os.cpu_count()} CPUs")
        print_table(res, systems, a.instances, optional, lxd_why)
    except BenchError as e:
        print(f"bench/daemon: {e}")
        if res.samples:
            print_table(res, systems, a.instances, optional, lxd_why)
        status = 1
    except KeyboardInterrupt:
        print("bench/daemon: interrupted; cleaning up")
        status = 130
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        for s in reversed(systems):
            s.cleanup()
        if forward0 is not None:
            try:
                if Path("/proc/sys/net/ipv4/ip_forward").read_text().strip() != forward0:
                    Path("/proc/sys/net/ipv4/ip_forward").write_text(forward0)
            except OSError:
                pass
        left = mounts_under(base)
        if left:
            print(f"bench/daemon: still mounted, not removing {base}: {left[0]}")
        else:
            shutil.rmtree(base, ignore_errors=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
