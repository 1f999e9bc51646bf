"""The jail (vessel vm run --jail DIR, src/jail/jail.c), seen from outside
through /proc/PID of the jailed VM process: its own namespaces, a root
holding only its files, a /proc with only itself, no network but
loopback, the unprivileged uid, no capabilities, its own cgroups and
limits; and the guest inside still boots, answers on its console and
snapshots."""
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

import pytest

from snaputil import api, counts, wait_for
from vesselpaths import vessel_path

RUN = ("vm", "run", "--arch", "riscv64", "--memory", "64M")
NOBODY = 65534

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="--jail needs root")


def jailed_pid(parent: int) -> int:
    """The jailed VM process: the only child of `vessel vm run --jail`."""
    def child():
        try:
            kids = open(f"/proc/{parent}/task/{parent}/children").read().split()
        except FileNotFoundError:
            return None
        return int(kids[0]) if kids else None
    return wait_for(child, what="the jailed child")


def status(pid):
    return {k: v.strip() for k, v in (l.split(":", 1) for l in
                                      open(f"/proc/{pid}/status").read().splitlines())}


def all_files(root):
    out = []
    for d, dirs, files in os.walk(root):
        rel = os.path.relpath(d, root)
        if rel in ("proc", "sys") or rel.startswith(("usr/lib", "proc/", "sys/")):
            dirs[:] = []
            continue
        out += [os.path.normpath(os.path.join("/", rel, f)) for f in files + dirs]
    return sorted(out)


def test_jailed_vm_sees_only_its_own_files_processes_and_network(vms, rv_counter, tmp_path):
    vmdir = tmp_path / "vm"
    vmdir.mkdir()
    os.chown(vmdir, NOBODY, NOBODY)  # the jailed process writes its snapshots here
    (tmp_path / "host-secret").write_text("not for the guest")
    root = tmp_path / "jail"
    vm = vms("vm", *RUN, "--kernel", rv_counter, "--jail", root)
    vm.wait_count(3)
    pid = jailed_pid(vm.p.pid)
    st = status(pid)
    # an unprivileged uid and gid, no capabilities, no_new_privs, seccomp
    assert st["Uid"].split() == [str(NOBODY)] * 4 and st["Gid"].split() == [str(NOBODY)] * 4
    assert int(st["CapEff"], 16) == 0 and int(st["CapPrm"], 16) == 0
    assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
    # pid 1 of a PID namespace of its own; its own mount, IPC, UTS, network, cgroup namespaces
    assert st["NSpid"].split()[-1] == "1"
    for ns in ("mnt", "pid", "ipc", "uts", "net", "cgroup"):
        assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
    # its root: the VM's own files at their usual paths, the libraries, nothing else
    files = all_files(f"/proc/{pid}/root")
    assert str(rv_counter) in files
    assert str(vm.console) in files and str(vm.sock) in files
    for host_file in ("/etc/passwd", "/etc/shadow", "/home", "/root/.bashrc", "/bin/sh",
                      str(tmp_path / "host-secret"), "/var", "/boot"):
        assert host_file not in files, host_file
    assert set(os.listdir(f"/proc/{pid}/root/etc")) <= {
        "ld.so.cache", "resolv.conf", "hosts", "nsswitch.conf", "gai.conf"}
    assert sorted(os.listdir(f"/proc/{pid}/root/dev")) == ["null", "random", "urandom"]
    # the host's processes are not in its /proc
    pids = [e for e in os.listdir(f"/proc/{pid}/root/proc") if e.isdigit()]
    assert pids == ["1"], pids
    # only loopback
    devs = [l.split(":")[0].strip() for l in open(f"/proc/{pid}/net/dev").read().splitlines()[2:]]
    assert devs == ["lo"], devs
    limits = open(f"/proc/{pid}/limits").read()
    assert "Max open files            4096" in limits
    assert "Max core file size        0" in limits
    cgroups = open(f"/proc/{pid}/cgroup").read()
    assert f"vessel-vm-{vm.p.pid}" in cgroups, cgroups
    assert subprocess.run(["nsenter", f"--uts=/proc/{pid}/ns/uts", "hostname"],
                          capture_output=True, text=True).stdout.strip() == "vessel-vm"
    # the guest runs on, the API answers, a snapshot is written as the jail's uid
    assert api("info", vm.sock)["state"] == "running"
    api("snapshot", vm.sock, vmdir / "snap")
    assert sorted(os.listdir(vmdir / "snap")) == ["memory", "vmstate"]
    assert os.stat(vmdir / "snap" / "vmstate").st_uid == NOBODY
    assert vm.stop() == 0
    # nothing left behind: the jail's mounts went with its namespace, its cgroups are removed
    assert os.listdir(root) == []
    assert f"vessel-vm-{vm.p.pid}" not in subprocess.run(
        ["find", "/sys/fs/cgroup", "-maxdepth", "4", "-name", f"vessel-vm-{vm.p.pid}"],
        capture_output=True, text=True).stdout


def test_jail_forwards_signals_and_seccomp_deaths(rv_counter, tmp_path):
    """SIGTERM to `vessel vm run --jail` reaches the VM inside, and a thread
    killed by seccomp inside still says which call it made."""
    p = subprocess.Popen([str(vessel_path()), *RUN, "--kernel", str(rv_counter), "--jail",
                          str(tmp_path / "j1"), "--console", f"file:{tmp_path / 'c1.log'}"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    wait_for(lambda: (tmp_path / "c1.log").exists() and
             len(counts((tmp_path / "c1.log").read_text())) >= 3, what="count lines")
    p.send_signal(signal.SIGTERM)
    assert p.wait(timeout=20) == 128 + signal.SIGTERM, p.stderr.read()
    env = dict(os.environ, VESSEL_TEST_SECCOMP_PROBE="execve")
    r = subprocess.run([str(vessel_path()), *RUN, "--kernel", str(rv_counter), "--jail",
                        str(tmp_path / "j2"), "--console", f"file:{tmp_path / 'c2.log'}"],
                       env=env, capture_output=True, text=True, timeout=30,
                       stdin=subprocess.DEVNULL)
    assert r.returncode == 128 + signal.SIGSYS, r
    assert "thread rv-hart0 (vcpu) made forbidden system call execve(" in r.stderr


def test_linux_boots_in_the_jail_and_its_console_works(rv_guest, console, tmp_path):
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0", "--jail", tmp_path / "jail", "--landlock=on")
    c.expect("VESSEL-RISCV-READY", timeout=120)
    c.expect("vessel-rv# ")
    out = c.command("echo typed-into-a-jailed-vm")
    assert "\r\ntyped-into-a-jailed-vm\r\n" in out
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def as_nobody(*argv):
    return ["setpriv", f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", *map(str, argv)]


@pytest.fixture
def user_home():
    """A directory of nobody's own that nobody can reach (pytest's are 0700)."""
    d = tempfile.mkdtemp(prefix="vessel-rootless-")
    os.chmod(d, 0o755)
    os.chown(d, NOBODY, NOBODY)
    yield Path(d)
    shutil.rmtree(d, ignore_errors=True)


def test_rootless_jail(rv_counter, user_home):
    """A user who is not root runs a jailed VM: a user namespace maps it to
    root inside, the jail is built the same way, then every capability is
    dropped (no other uid is mapped to change to)."""
    if not shutil.which("setpriv"):
        pytest.skip("setpriv (util-linux) is missing")
    home = user_home
    shutil.copy(rv_counter, home / "counter.bin")
    os.chown(home / "counter.bin", NOBODY, NOBODY)
    console, sock = home / "c.log", home / "api.sock"
    p = subprocess.Popen(as_nobody(vessel_path(), *RUN, "--kernel", home / "counter.bin",
                                   "--jail", home / "jail", "--landlock=on",
                                   "--console", f"file:{console}", "--api-sock", sock),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_for(lambda: p.poll() is not None or
                 (console.exists() and len(counts(console.read_text())) >= 3), what="counting")
        assert p.poll() is None, p.stderr.read()
        pid = jailed_pid(p.pid)
        st = status(pid)
        assert st["Uid"].split() == [str(NOBODY)] * 4  # as seen from outside
        assert int(st["CapEff"], 16) == 0 and int(st["CapBnd"], 16) == 0
        assert st["NoNewPrivs"] == "1" and st["Seccomp"] == "2"
        for ns in ("user", "mnt", "pid", "ipc", "uts", "net"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}"), ns
        assert [e for e in os.listdir(f"/proc/{pid}/root/proc") if e.isdigit()] == ["1"]
        assert "/etc/passwd" not in all_files(f"/proc/{pid}/root")
        r = subprocess.run(as_nobody(vessel_path(), "vm", "snapshot", "--api-sock", sock,
                                     home / "snap"), capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert sorted(os.listdir(home / "snap")) == ["memory", "vmstate"]
        r = subprocess.run(as_nobody(vessel_path(), "vm", "stop", "--api-sock", sock),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert p.wait(timeout=20) == 0
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_restore_in_a_jail_and_diff_snapshot(vms, rv_counter, tmp_path):
    """A snapshot restored into a jail (with landlock) runs on, and its diff
    snapshot (which reads the restored memory's origin and /proc/self/pagemap
    as the jail's uid) is written."""
    src = vms("src", *RUN, "--kernel", rv_counter)
    src.wait_count(3)
    api("snapshot", src.sock, tmp_path / "snap")
    assert src.stop() == 0
    out = tmp_path / "restored"
    out.mkdir()
    os.chown(out, NOBODY, NOBODY)
    r = vms("restored", "vm", "restore", tmp_path / "snap", "--jail", tmp_path / "jail",
            "--landlock=on", "--landlock-rw", out)
    r.wait_count(3)
    assert status(jailed_pid(r.p.pid))["Uid"].split()[0] == str(NOBODY)
    api("snapshot", r.sock, "--diff", out / "diff")
    assert sorted(os.listdir(out / "diff")) == ["memory", "vmstate"]
    assert r.stop() == 0


@pytest.fixture
def tap_netns():
    """A network namespace standing in for the host (nothing leaves it),
    with a tap at 10.99.31.1/24 for the VM."""
    ns = f"vtj{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        for cmd in (["ip", "tuntap", "add", "dev", "vtj0", "mode", "tap"],
                    ["ip", "addr", "add", "10.99.31.1/24", "dev", "vtj0"],
                    ["ip", "link", "set", "vtj0", "up"], ["ip", "link", "set", "lo", "up"]):
            subprocess.run(["ip", "netns", "exec", ns, *cmd], check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def test_tap_in_a_jail_leaves_the_host_network_behind(rv_guest, tap_netns, tmp_path):
    """--jail with --net tap=NAME: the jail opens the tap while it is still in
    the host's network namespace, then leaves it; the VM process's own
    namespace has only loopback, and the guest answers ping through the tap
    on the host's side (here a namespace of the test's own)."""
    log = tmp_path / "console.log"
    p = subprocess.Popen(["ip", "netns", "exec", tap_netns, str(vessel_path()), *RUN[:4],
                          "--memory", "256M", "--kernel", str(rv_guest / "vmlinuz"),
                          "--initrd", str(rv_guest / "initrd.img"), "--append",
                          "console=ttyS0 vessel.ip=10.99.31.2/24", "--net", "tap=vtj0",
                          "--console", f"file:{log}", "--jail", str(tmp_path / "jail"),
                          "--landlock=on"],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_for(lambda: "VESSEL-RISCV-READY" in (log.read_text(errors="replace")
                                                   if log.exists() else "")
                 or p.poll() is not None, timeout=180, what="the guest")
        assert p.poll() is None, p.stderr.read()
        pid = jailed_pid(p.pid)  # ip netns exec execs vessel
        host_ns = os.stat(f"/run/netns/{tap_netns}").st_ino
        assert os.stat(f"/proc/{pid}/ns/net").st_ino != host_ns
        devs = [l.split(":")[0].strip()
                for l in open(f"/proc/{pid}/net/dev").read().splitlines()[2:]]
        assert devs == ["lo"], devs
        # the tap is where it was, and carries the guest's traffic
        ping = subprocess.run(["ip", "netns", "exec", tap_netns, "ping", "-c", "3", "-W", "5",
                               "10.99.31.2"], capture_output=True, text=True, timeout=60)
        assert ping.returncode == 0, ping.stdout + ping.stderr
    finally:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
