"""The runc command line and the lifecycle: create -> start -> exec, pause,
update, events, kill, delete; no leftovers; bad input gives one clear line."""
import array
import json
import os
import signal
import socket
import subprocess
import threading
import time

import pytest

from conftest import become_subreaper, cgroup_dirs_of, reap

SLEEPER = "trap 'exit 0' TERM; while true; do sleep 0.05; done"


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def alive(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


@pytest.fixture(autouse=True, scope="module")
def subreaper():
    become_subreaper()


def test_lifecycle_states_exec_and_delete(bundle, state_root):
    bundle.sh(SLEEPER).create()
    st = bundle.state()
    assert st["status"] == "created" and st["id"] == bundle.id and st["pid"] > 0
    assert st["bundle"] == str(bundle.path)
    pid = st["pid"]
    dirs = cgroup_dirs_of(state_root, bundle.id)
    assert dirs and all(os.path.isdir(d) for d in dirs)
    bundle.start()
    assert bundle.state()["status"] == "running"
    # exec joins the container's namespaces and cgroup
    p = bundle.cmd("exec", bundle.id, "sh", "-c",
                   "for n in pid mnt uts ipc net; do readlink /proc/self/ns/$n; done; "
                   "echo pid=$$; cat /proc/self/cgroup", check=True)
    lines = p.stdout.splitlines()
    host = [os.readlink(f"/proc/{pid}/ns/{n}") for n in ("pid", "mnt", "uts", "ipc", "net")]
    assert lines[:5] == host
    assert lines[5] != "pid=1" and int(lines[5][4:]) < 100
    # list and ps
    p = bundle.cmd("list", "--format", "json", check=True)
    assert any(c["id"] == bundle.id and c["status"] == "running" for c in json.loads(p.stdout))
    p = bundle.cmd("ps", "--format", "json", bundle.id, check=True)
    assert pid in json.loads(p.stdout)
    p = bundle.cmd("ps", bundle.id, check=True)
    assert "PID" in p.stdout.splitlines()[0] and str(pid) in p.stdout
    # delete refuses a running container
    p = bundle.cmd("delete", bundle.id)
    assert p.returncode != 0
    assert "running" in p.stderr and "--force" in p.stderr and len(p.stderr.splitlines()) == 1
    # kill TERM: the trap exits; state turns stopped; delete cleans up
    bundle.cmd("kill", bundle.id, "TERM", check=True)
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped")
    bundle.cmd("delete", bundle.id, check=True)
    assert not (state_root / bundle.id).exists()
    assert not any(os.path.exists(d) for d in dirs)
    p = bundle.cmd("state", bundle.id)
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_exec_with_process_file_env_user_and_detach(bundle, tmp_path):
    bundle.sh(SLEEPER).create()
    bundle.start()
    proc = {"args": ["sh", "-c", "id -u; echo $FOO; pwd"], "env": ["FOO=bar", "PATH=/bin"],
            "cwd": "/proc", "user": {"uid": 65534, "gid": 65534}}
    f = tmp_path / "process.json"
    f.write_text(json.dumps(proc))
    p = bundle.cmd("exec", "--process", f, bundle.id, check=True)
    assert p.stdout.split() == ["65534", "bar", "/proc"]
    p = bundle.cmd("exec", "--env", "X=1", "--cwd", "/dev", "--user", "7:7", bundle.id, "sh", "-c",
                   "echo $X $(id -u) $(pwd)", check=True)
    assert p.stdout.split() == ["1", "7", "/dev"]
    # exit status of exec is the process's
    assert bundle.cmd("exec", bundle.id, "sh", "-c", "exit 5").returncode == 5
    # detached exec with a pid file
    pf = tmp_path / "exec.pid"
    bundle.cmd("exec", "--detach", "--pid-file", pf, bundle.id, "sleep", "30", check=True)
    epid = int(pf.read_text())
    assert alive(epid)
    p = bundle.cmd("ps", "--format", "json", bundle.id, check=True)
    assert epid in json.loads(p.stdout)
    init = bundle.state()["pid"]
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(init)
    reap(epid)
    assert not alive(epid)
    # exec into a missing container
    p = bundle.cmd("exec", bundle.id, "true")
    assert p.returncode != 0 and "does not exist" in p.stderr


def test_pause_freezes_and_resume_thaws(bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_mount("/out", typ="bind", source=str(out), options=["bind", "rw"])
    bundle.sh("i=0; while true; do i=$((i+1)); echo $i > /out/n; sleep 0.02; done").create()
    bundle.start()
    counter = out / "n"
    assert wait_for(lambda: counter.exists() and counter.read_text().strip() not in ("", "1"))
    bundle.cmd("pause", bundle.id, check=True)
    assert bundle.state()["status"] == "paused"
    v1 = counter.read_text()
    time.sleep(0.3)
    assert counter.read_text() == v1, "the counter moved while paused"
    p = bundle.cmd("exec", bundle.id, "true")
    assert p.returncode != 0 and "paused" in p.stderr
    bundle.cmd("resume", bundle.id, check=True)
    assert bundle.state()["status"] == "running"
    assert wait_for(lambda: counter.read_text() != v1)
    p = bundle.cmd("resume", bundle.id)
    assert p.returncode != 0 and "not paused" in p.stderr


def test_update_changes_limits_live(bundle, tmp_path):
    bundle.resources()["memory"] = {"limit": 64 << 20}
    bundle.resources()["pids"] = {"limit": 100}
    bundle.sh(SLEEPER).create()
    bundle.start()

    def limits():
        p = bundle.cmd("events", "--stats", bundle.id, check=True)
        ev = json.loads(p.stdout)
        assert ev["type"] == "stats" and ev["id"] == bundle.id
        return ev["data"]["memory"]["usage"]["limit"], ev["data"]["pids"]["limit"]

    assert limits() == (64 << 20, 100)
    bundle.cmd("update", "--memory", "48M", "--pids-limit", "50", bundle.id, check=True)
    assert limits() == (48 << 20, 50)
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 40 << 20}, "cpu": {"shares": 512}}))
    bundle.cmd("update", "-r", res, bundle.id, check=True)
    assert limits()[0] == 40 << 20
    # what the container itself sees
    p = bundle.cmd("exec", bundle.id, "sh", "-c",
                   "cat /sys/fs/cgroup/memory/memory.limit_in_bytes "
                   "/sys/fs/cgroup/cpu/cpu.shares", check=True)
    assert p.stdout.split() == [str(40 << 20), "512"]
    bundle.cmd("update", "--cpu-shares", "256", "--cpu-period", "200000", bundle.id, check=True)
    p = bundle.cmd("exec", bundle.id, "sh", "-c",
                   "cat /sys/fs/cgroup/cpu/cpu.shares /sys/fs/cgroup/cpu/cpu.cfs_period_us",
                   check=True)
    assert p.stdout.split() == ["256", "200000"]
    p = bundle.cmd("update", "--memory", "lots", bundle.id)
    assert p.returncode != 0 and len(p.stderr.splitlines()) == 1
    p = bundle.cmd("update", "--cpu-shares", "many", bundle.id)
    assert p.returncode != 0 and "--cpu-shares" in p.stderr and len(p.stderr.splitlines()) == 1


def test_kill9_of_init_leaves_nothing_behind(bundle, state_root):
    # foreground run: its exit status is 128+9, and it cleans up itself
    bundle.sh(SLEEPER).write()
    proc = subprocess.Popen([str(bundle.runc), "--root", str(bundle.root), "run", "--bundle",
                             str(bundle.path), bundle.id], stdin=subprocess.DEVNULL)
    assert wait_for(lambda: (state_root / bundle.id / "state.json").exists() and
                    bundle.cmd("state", bundle.id).returncode == 0 and
                    bundle.state()["status"] == "running")
    pid = bundle.state()["pid"]
    dirs = cgroup_dirs_of(state_root, bundle.id)
    os.kill(pid, signal.SIGKILL)
    assert proc.wait(timeout=20) == 137
    assert not os.path.exists(f"/proc/{pid}"), "zombie or survivor left"
    assert not (state_root / bundle.id).exists()
    assert dirs and not any(os.path.exists(d) for d in dirs)


def test_kill9_then_delete_detached(bundle, state_root):
    bundle.sh(SLEEPER).create()
    bundle.start()
    pid = bundle.state()["pid"]
    dirs = cgroup_dirs_of(state_root, bundle.id)
    # a child process in the container, to check nothing survives
    bundle.cmd("exec", "--detach", bundle.id, "sleep", "60", check=True)
    os.kill(pid, signal.SIGKILL)
    reap(pid)  # we are the subreaper the orphaned init re-parented to
    assert wait_for(lambda: bundle.state()["status"] == "stopped")
    bundle.cmd("delete", bundle.id, check=True)
    assert not (state_root / bundle.id).exists()
    assert not any(os.path.exists(d) for d in dirs)
    assert not os.path.exists(f"/proc/{pid}")


def test_signals_are_forwarded_by_run(bundle):
    bundle.sh("trap 'echo got-usr1; exit 9' USR1; echo ready; "
              "while true; do sleep 0.05; done").write()
    proc = subprocess.Popen([str(bundle.runc), "--root", str(bundle.root), "run", "--bundle",
                             str(bundle.path), bundle.id], stdout=subprocess.PIPE, text=True)
    # the trap is set once "ready" is printed (a pid-namespace init ignores
    # signals it has no handler for)
    assert proc.stdout.readline().strip() == "ready"
    proc.send_signal(signal.SIGUSR1)
    out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 9 and "got-usr1" in out


def test_run_detach_and_pid_file(bundle, tmp_path):
    pf = tmp_path / "pid"
    bundle.sh(SLEEPER).write()
    bundle.cmd("run", "--detach", "--pid-file", pf, "--bundle", bundle.path, bundle.id,
               check=True)
    st = bundle.state()
    assert st["status"] == "running" and int(pf.read_text()) == st["pid"]
    bundle.cmd("kill", bundle.id, "KILL", check=True)
    reap(st["pid"])
    bundle.cmd("delete", bundle.id, check=True)


def recv_master(path, result):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(str(path))
    srv.listen(1)
    srv.settimeout(20)
    conn, _ = srv.accept()
    _, fds, _, _ = socket.recv_fds(conn, 16, 1)
    result.append(fds[0])
    conn.close()
    srv.close()


def read_until(fd, needle, timeout=10):
    data = b""
    end = time.monotonic() + timeout
    os.set_blocking(fd, False)
    while time.monotonic() < end and needle not in data:
        try:
            data += os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.02)
        except OSError:
            break
    return data


def test_terminal_via_console_socket(bundle, tmp_path):
    sock = tmp_path / "console.sock"
    got = []
    t = threading.Thread(target=recv_master, args=(sock, got))
    t.start()
    time.sleep(0.1)
    bundle.config["process"]["terminal"] = True
    bundle.config["process"]["consoleSize"] = {"height": 33, "width": 101}
    bundle.sh("tty; stty size; echo tty-done; sleep 5").write()
    bundle.cmd("create", "--console-socket", sock, "--bundle", bundle.path, bundle.id, check=True)
    t.join(10)
    assert got, "no pty master received on the console socket"
    master = got[0]
    bundle.start()
    data = read_until(master, b"tty-done").decode()
    assert "/dev/console" in data or "/dev/pts/" in data
    assert "33 101" in data
    os.close(master)
    pid = bundle.state()["pid"]
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)
    # a detached container with a terminal and no console socket is refused
    bundle.id += "b"
    p = bundle.create(check=False)
    assert p.returncode != 0 and "console-socket" in p.stderr


def test_exec_tty_via_console_socket(bundle, tmp_path):
    bundle.sh(SLEEPER).create()
    bundle.start()
    sock = tmp_path / "exec.sock"
    got = []
    t = threading.Thread(target=recv_master, args=(sock, got))
    t.start()
    time.sleep(0.1)
    p = bundle.cmd("exec", "-t", "--detach", "--console-socket", sock, bundle.id, "sh", "-c",
                   "tty; echo exec-tty-done; sleep 2", check=True)
    t.join(10)
    assert got
    data = read_until(got[0], b"exec-tty-done").decode()
    assert "/dev/pts/" in data
    os.close(got[0])


def test_features_spec_and_version(runc, tmp_path):
    p = subprocess.run([str(runc), "features"], capture_output=True, text=True, check=True)
    f = json.loads(p.stdout)
    assert f["ociVersionMax"].startswith("1.")
    assert "user" in f["linux"]["namespaces"] and "CAP_SYS_ADMIN" in f["linux"]["capabilities"]
    assert f["linux"]["cgroup"]["systemd"] is False
    p = subprocess.run([str(runc), "spec", "--rootless", "--bundle", str(tmp_path)],
                       capture_output=True, text=True, check=True)
    cfg = json.loads((tmp_path / "config.json").read_text())
    assert {"type": "user"} in cfg["linux"]["namespaces"]
    assert cfg["linux"]["uidMappings"][0]["hostID"] == os.geteuid()
    p = subprocess.run([str(runc), "spec", "--bundle", str(tmp_path)], capture_output=True,
                       text=True)
    assert p.returncode != 0 and "already exists" in p.stderr
    p = subprocess.run([str(runc), "--version"], capture_output=True, text=True, check=True)
    assert "vessel-runc" in p.stdout


def test_systemd_cgroup_and_checkpoint_refused(runc):
    p = subprocess.run([str(runc), "--systemd-cgroup", "list"], capture_output=True, text=True)
    assert p.returncode != 0 and "systemd" in p.stderr and len(p.stderr.splitlines()) == 1
    p = subprocess.run([str(runc), "checkpoint", "x"], capture_output=True, text=True)
    assert p.returncode != 0 and "CRIU" in p.stderr


def test_log_file_json(bundle, tmp_path):
    log = tmp_path / "log.json"
    p = subprocess.run([str(bundle.runc), "--root", str(bundle.root), "--log", str(log),
                        "--log-format", "json", "state", "nosuch"], capture_output=True,
                       text=True)
    assert p.returncode != 0
    entry = json.loads(log.read_text().splitlines()[-1])
    assert entry["level"] == "error" and "does not exist" in entry["msg"]
    # --debug adds debug records to the same log
    subprocess.run([str(bundle.runc), "--root", str(bundle.root), "--debug", "--log", str(log),
                    "--log-format", "json", "list"], capture_output=True, text=True, check=True)
    levels = [json.loads(l)["level"] for l in log.read_text().splitlines()]
    assert "debug" in levels


def test_oci_alias_of_vessel(vessel, bundle):
    bundle.sh("echo via-vessel-oci").write()
    p = subprocess.run([str(vessel), "oci", "--root", str(bundle.root), "run", "--bundle",
                        str(bundle.path), bundle.id], capture_output=True, text=True, timeout=30)
    assert p.returncode == 0 and "via-vessel-oci" in p.stdout, p.stderr


def test_run_keep_no_pivot_and_kill_all(bundle, state_root):
    bundle.sh("exit 4").write()
    p = bundle.cmd("run", "--keep", "--no-pivot", "--bundle", bundle.path, bundle.id)
    assert p.returncode == 4, p.stderr
    assert bundle.state()["status"] == "stopped"  # kept for inspection
    bundle.cmd("delete", bundle.id, check=True)
    assert not (state_root / bundle.id).exists()
    # kill --all signals every process of the container's cgroup
    bundle.sh("sleep 60 & sleep 60 & wait").create()
    bundle.start()
    pid = bundle.state()["pid"]
    assert wait_for(lambda: len(json.loads(
        bundle.cmd("ps", "--format", "json", bundle.id).stdout)) == 3)
    bundle.cmd("kill", "--all", bundle.id, "KILL", check=True)
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped")
    bundle.cmd("delete", bundle.id, check=True)
