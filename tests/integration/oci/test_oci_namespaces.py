"""Joining namespaces by path, the time namespace, a foreground terminal,
seccomp user notification and the events stream."""
import array
import json
import os
import socket
import subprocess
import threading
import time

import pytest

from conftest import Bundle, become_subreaper, reap


@pytest.fixture(autouse=True, scope="module")
def subreaper():
    become_subreaper()


def test_join_namespaces_by_path(bundle, runc, state_root, rootfs, tmp_path):
    bundle.config["hostname"] = "first"
    bundle.sh("while true; do sleep 0.05; done").create()
    bundle.start()
    pid = bundle.state()["pid"]
    other = Bundle(runc, state_root, tmp_path / "b2", rootfs)
    other.config.pop("hostname", None)
    nss = other.config["linux"]["namespaces"]
    for ns in nss:
        if ns["type"] in ("network", "uts", "ipc"):
            ns["path"] = f"/proc/{pid}/ns/{ {'network': 'net'}.get(ns['type'], ns['type']) }"
    other.sh("hostname; for n in net uts ipc pid; do readlink /proc/self/ns/$n; done")
    p = other.run()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split()
    assert lines[0] == "first"  # the uts namespace of the first container
    for i, n in enumerate(("net", "uts", "ipc")):
        assert lines[1 + i] == os.readlink(f"/proc/{pid}/ns/{n}")
    assert lines[4] != os.readlink(f"/proc/{pid}/ns/pid")  # its own pid namespace
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_time_namespace_offsets(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "time"})
    bundle.config["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                             "monotonic": {"secs": 86400, "nanosecs": 0}}
    bundle.sh("cat /proc/uptime")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    inside = float(p.stdout.split()[0])
    host = float(open("/proc/uptime").read().split()[0])
    assert inside - host > 86400 * 364, (inside, host)


def test_run_foreground_terminal(bundle):
    """run with process.terminal and no console socket relays the pty."""
    bundle.config["process"]["terminal"] = True
    bundle.sh("tty; echo on-a-tty")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    assert "/dev/pts/" in p.stdout or "/dev/console" in p.stdout
    assert "on-a-tty" in p.stdout


def test_seccomp_notify_listener(bundle, tmp_path):
    """SCMP_ACT_NOTIFY: the listener gets the notify fd and the state."""
    path = tmp_path / "listener.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(20)
    got = {}

    def listen():
        conn, _ = srv.accept()
        msg, fds, _, _ = socket.recv_fds(conn, 65536, 4)
        got["msg"] = json.loads(msg.decode())
        got["fds"] = fds
        conn.close()

    t = threading.Thread(target=listen)
    t.start()
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW", "listenerPath": str(path),
        "listenerMetadata": "vessel-test",
        "syscalls": [{"names": ["mknodat", "mknod"], "action": "SCMP_ACT_NOTIFY"}]}
    bundle.sh("echo notified-container").create()
    t.join(20)
    srv.close()
    assert got.get("fds"), "no seccomp fd reached the listener"
    m = got["msg"]
    assert m["metadata"] == "vessel-test" and m["fds"] == ["seccompFd"]
    assert m["state"]["id"] == bundle.id and m["pid"] == bundle.state()["pid"]
    for fd in got["fds"]:
        os.close(fd)
    pid = bundle.state()["pid"]
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_events_stream_reports_oom(bundle):
    bundle.resources()["memory"] = {"limit": 24 << 20, "swap": 24 << 20}
    bundle.sh("sleep 1; tail /dev/zero; sleep 30").create()
    pid = bundle.state()["pid"]
    ev = subprocess.Popen([str(bundle.runc), "--root", str(bundle.root), "events",
                           "--interval", "1s", bundle.id], stdout=subprocess.PIPE, text=True)
    bundle.start()
    kinds = []
    end = time.monotonic() + 20
    while time.monotonic() < end and "oom" not in kinds:
        line = ev.stdout.readline()
        if not line:
            break
        kinds.append(json.loads(line)["type"])
    ev.kill()
    ev.wait()
    assert "stats" in kinds and "oom" in kinds, kinds
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_join_by_path_with_new_user_namespace(bundle, runc, state_root, rootfs, tmp_path):
    """A new user namespace plus a joined network namespace (a pod-style
    setup): the joined one is entered first, then the user namespace."""
    bundle.sh("while true; do sleep 0.05; done").create()
    bundle.start()
    pid = bundle.state()["pid"]
    other = Bundle(runc, state_root, tmp_path / "b2", rootfs)
    lx = other.config["linux"]
    lx["namespaces"] = [ns for ns in lx["namespaces"] if ns["type"] != "cgroup"]
    for ns in lx["namespaces"]:
        if ns["type"] == "network":
            ns["path"] = f"/proc/{pid}/ns/net"
    lx["namespaces"].append({"type": "user"})
    lx["uidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    lx["gidMappings"] = [{"containerID": 0, "hostID": 200000, "size": 65536}]
    other.config["mounts"] = [m for m in other.config["mounts"]
                              if m["destination"] not in ("/sys", "/sys/fs/cgroup")]
    other.sh("echo pid=$$; id -u; cat /proc/self/uid_map; readlink /proc/self/ns/net")
    p = other.run()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0] == "pid=1" and lines[1] == "0"
    assert lines[2].split() == ["0", "200000", "65536"]
    assert lines[3] == os.readlink(f"/proc/{pid}/ns/net")
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)
