"""vesseld with containers: launch, list, stop/start, pause, delete; the
daemon killed with SIGKILL loses nothing; bad input gets one clear line and
leaves nothing half-made."""
import json
import os
import signal
import subprocess
import threading
import time

import pytest


def wait_for(pred, timeout=10.0, what="condition"):
    end = time.time() + timeout
    while time.time() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def console(daemon, name):
    p = daemon.state / "instances" / name / "console.log"
    return p.read_text(errors="replace") if p.exists() else ""


def test_container_launch_list_stop_start_delete(daemon, busybox):
    r = daemon.cli("launch", busybox, "c1", "-c", "command=sh -c 'echo hello from c1; "
                   "ps -o pid,comm; hostname; exec sleep 1000'", check=True)
    assert "c1: running" in r.stdout
    inst = daemon.list()["c1"]
    assert inst["state"] == "running" and inst["type"] == "container"
    pid = inst["pid"]
    assert os.path.exists(f"/proc/{pid}")
    out = wait_for(lambda: "\nc1\n" in console(daemon, "c1") and console(daemon, "c1"),
                   what="the container's output")
    assert "hello from c1" in out
    # its own pid namespace: the host's processes are not there
    pids = [ln.split()[0] for ln in out.splitlines() if ln.strip() and ln.split()[0].isdigit()]
    assert "1" in pids and all(int(p) < 50 for p in pids), out
    assert "\nc1\n" in out  # hostname is the instance name
    assert daemon.cli("console", "c1", "--show-log", check=True).stdout == out
    # the table for people
    table = daemon.cli("list", check=True).stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "STATE", "TYPE"]
    assert "c1" in table and "running" in table

    # stop is clean with a timeout, then forced (sleep as pid 1 ignores SIGTERM)
    daemon.cli("stop", "c1", "--timeout", "1", check=True)
    assert daemon.list()["c1"]["state"] == "stopped"
    assert not os.path.exists(f"/proc/{pid}") or "zombie" in open(f"/proc/{pid}/status").read().lower() \
        or open(f"/proc/{pid}/stat").read().split()[2] == "Z"
    daemon.cli("start", "c1", check=True)
    assert daemon.list()["c1"]["state"] == "running"
    daemon.cli("pause", "c1", check=True)
    assert daemon.list()["c1"]["state"] == "paused"
    daemon.cli("resume", "c1", check=True)
    assert daemon.list()["c1"]["state"] == "running"

    r = daemon.cli("delete", "c1")
    assert r.returncode != 0 and "running" in r.stderr and "--force" in r.stderr
    assert "c1" in daemon.list()
    daemon.cli("delete", "--force", "c1", check=True)
    assert "c1" not in daemon.list()
    assert not (daemon.state / "instances/c1").exists()


def test_writes_stay_in_the_instance_overlay(daemon, busybox):
    daemon.cli("launch", busybox, "w1", "-c", "command=sh -c 'echo mine > /etc/hostname; "
               "exec sleep 1000'", check=True)
    daemon.cli("launch", busybox, "w2", "-c", "command=sleep 1000", check=True)
    upper = daemon.state / "instances/w1/upper/etc/hostname"
    wait_for(upper.exists, what="w1's write in its overlay")
    assert upper.read_text() == "mine\n"
    img = next((daemon.state / "images").iterdir())
    assert (img / "rootfs/etc/hostname").read_text() == "busybox\n"
    assert not (daemon.state / "instances/w2/upper/etc/hostname").exists()


def test_sigkill_of_the_daemon_loses_nothing(daemon, busybox):
    for n in ("k1", "k2"):
        daemon.cli("launch", busybox, n, "-c", "command=sleep 1000", check=True)
    daemon.cli("launch", busybox, "k3", "--no-start", check=True)
    before = daemon.list()
    daemon.kill(signal.SIGKILL)
    # the instances do not depend on the daemon
    for n in ("k1", "k2"):
        assert os.path.exists(f"/proc/{before[n]['pid']}")
    daemon.start()
    after = daemon.list()
    assert sorted(after) == ["k1", "k2", "k3"]  # none lost, none twice
    for n in ("k1", "k2"):
        assert after[n]["state"] == "running" and after[n]["pid"] == before[n]["pid"]
    assert after["k3"]["state"] == "stopped"
    # and they are still managed
    daemon.cli("stop", "k1", "--force", check=True)
    assert daemon.list()["k1"]["state"] == "stopped"
    # a container that died while the daemon was away is seen as stopped
    daemon.kill(signal.SIGKILL)
    os.kill(after["k2"]["pid"], signal.SIGKILL)
    time.sleep(0.2)
    daemon.start()
    assert daemon.list()["k2"]["state"] == "stopped"


def test_import_cut_off_by_sigkill_is_rolled_back(daemon, busybox_tarball, tmp_path):
    """An import from a source that is still being written is in flight when
    the daemon dies; after the restart there is no image and no partial
    directory, and the operation says it was cut off."""
    fifo = tmp_path / "slow.tar.gz"
    os.mkfifo(fifo)
    data = busybox_tarball.read_bytes()
    r = daemon.curl("POST", "/1.0/images", {"type": "container", "source": str(fifo),
                                             "alias": "half"})
    assert r[0] == 202, r
    op = r[1]["id"]
    with open(fifo, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(0.5)
        assert daemon.curl("GET", f"/1.0/operations/{op}")[1]["status"] == "running"
        assert any(p.name.startswith("importing-") for p in (daemon.state / "images").iterdir())
        daemon.kill(signal.SIGKILL)
    daemon.start()
    assert daemon.curl("GET", "/1.0/images")[1] == []
    assert list((daemon.state / "images").iterdir()) == []
    status, rec = daemon.curl("GET", f"/1.0/operations/{op}")
    assert status == 200 and rec["status"] == "failure" and "restart" in rec["error"]


def test_second_request_on_a_busy_instance_gets_409(daemon, busybox):
    daemon.cli("launch", busybox, "b1", "-c", "command=sleep 1000", check=True)
    # a clean stop waits for its timeout (sleep as pid 1 ignores SIGTERM)
    t = threading.Thread(target=lambda: daemon.cli("stop", "b1", "--timeout", "3"))
    t.start()
    time.sleep(0.5)
    status, body = daemon.curl("PUT", "/1.0/instances/b1/state", {"action": "pause"})
    t.join()
    assert status == 409 and "busy" in body["error"], body
    assert daemon.list()["b1"]["state"] == "stopped"


@pytest.mark.parametrize("args,message", [
    (["launch", "nosuchimage", "x1"], "image 'nosuchimage' not found"),
    (["launch", "busybox", "1bad"], "invalid instance name '1bad'"),
    (["launch", "busybox", "bad_name"], "invalid instance name 'bad_name'"),
    (["launch", "busybox", "x1", "-c", "limits.bogus=1"], "unknown config key 'limits.bogus'"),
    (["launch", "busybox", "x1", "-c", "limits.memory=lots"], "limits.memory=lots"),
    (["launch", "busybox", "x1", "-c", "limits.memory=100T"], "this host's RAM"),
    (["launch", "busybox", "x1", "-c", "limits.cpu=4096"], "limits.cpu=4096"),
    (["launch", "busybox", "x1", "-c", "boot.args=quiet"], "unknown config key 'boot.args'"),
    (["launch", "busybox", "x1", "-c", "command=sh -c 'unterminated"], "unterminated"),
    (["launch", "busybox", "x1", "--vm"], "is a container image, not a vm image"),
    (["info", "ghost"], "instance 'ghost' not found"),
    (["start", "ghost"], "instance 'ghost' not found"),
])
def test_bad_input_one_line_and_nothing_made(daemon, busybox, args, message):
    r = daemon.cli(*args)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], r.stderr
    assert daemon.list() == {}
    assert list((daemon.state / "instances").iterdir()) == []


def test_duplicate_name_refused(daemon, busybox):
    daemon.cli("launch", busybox, "d1", "--no-start", check=True)
    r = daemon.cli("launch", busybox, "d1")
    assert r.returncode != 0 and "instance 'd1' already exists" in r.stderr
    assert list(daemon.list()) == ["d1"]


def test_bad_tarballs_leave_no_image(daemon, busybox_tarball, tmp_path):
    data = busybox_tarball.read_bytes()
    trunc = tmp_path / "trunc.tar.gz"
    trunc.write_bytes(data[: len(data) // 3])
    junk = tmp_path / "junk.tar"
    junk.write_bytes(os.urandom(50000))
    for path in (trunc, junk, tmp_path / "missing.tar"):
        r = daemon.cli("image", "import", path, "--alias", "bad")
        assert r.returncode != 0, r
        assert len(r.stderr.strip().splitlines()) == 1 and str(path) in r.stderr, r.stderr
    assert json.loads(daemon.cli("image", "list", "--format", "json").stdout) == []
    assert list((daemon.state / "images").iterdir()) == []
    daemon.cli("image", "import", busybox_tarball, "--alias", "bb", check=True)
    r = daemon.cli("image", "import", busybox_tarball, "--alias", "bb")
    assert r.returncode != 0 and "alias 'bb' exists already" in r.stderr
    r = daemon.cli("image", "import", busybox_tarball)
    assert r.returncode != 0 and "imported already" in r.stderr


def test_image_in_use_is_kept(daemon, busybox):
    daemon.cli("launch", busybox, "u1", "--no-start", check=True)
    r = daemon.cli("image", "delete", busybox)
    assert r.returncode != 0 and "used by instance 'u1'" in r.stderr
    daemon.cli("delete", "u1", check=True)
    daemon.cli("image", "delete", busybox, check=True)
    assert json.loads(daemon.cli("image", "list", "--format", "json").stdout) == []


def test_daemon_not_running_says_how_to_start_it(tmp_path):
    from conftest import vessel_path  # this folder's conftest
    env = dict(os.environ, VESSEL_SOCKET=str(tmp_path / "none.sock"))
    r = subprocess.run([str(vessel_path()), "list"], capture_output=True, text=True, env=env)
    assert r.returncode != 0
    assert len(r.stderr.strip().splitlines()) == 1
    assert "cannot reach vesseld" in r.stderr and "vesseld" in r.stderr


def test_list_formats(daemon, busybox):
    daemon.cli("launch", busybox, "f1", "--no-start", check=True)
    csv = daemon.cli("list", "--format", "csv", check=True).stdout.splitlines()
    assert csv[0].startswith("name,state,type") and csv[1].startswith("f1,stopped,container")
    yaml = daemon.cli("list", "--format", "yaml", check=True).stdout
    assert '- name: "f1"' in yaml and 'state: "stopped"' in yaml
    r = daemon.cli("list", "--format", "xml")
    assert r.returncode != 0 and "unknown --format 'xml'" in r.stderr


def test_exec_streams_stdio_and_returns_the_exit_status(daemon, busybox):
    daemon.cli("launch", busybox, "e1", "-c", "command=sleep 1000", check=True)
    p = subprocess.run([str(daemon_vessel()), "exec", "e1", "--", "sh", "-c",
                        "read line; echo got:$line; echo oops >&2; ps -o pid,comm; exit 7"],
                       input="hello\n", capture_output=True, text=True, env=daemon.env,
                       timeout=60)
    assert p.returncode == 7
    assert p.stdout.startswith("got:hello\n") and p.stderr == "oops\n"
    # inside the container's pid namespace: its init is pid 1, nothing of the host
    pids = [int(ln.split()[0]) for ln in p.stdout.splitlines()[2:] if ln.split()]
    assert 1 in pids and max(pids) < 20, p.stdout
    # the same through the API for scripts
    status, body = daemon.curl("POST", "/1.0/instances/e1/exec",
                               {"command": ["sh", "-c", "echo hi; exit 5"],
                                "record_output": True})
    assert status == 200 and body == {"exit_code": 5, "stdout": "hi\n", "stderr": ""}
    r = daemon.cli("exec", "e1", "--", "/no/such/program")
    assert r.returncode != 0
    # the --secure-defaults hardening (docs/security.md): a seccomp filter
    # that refuses a user namespace, no_new_privs
    r = daemon.cli("exec", "e1", "--", "sh", "-c", "grep -E '^(Seccomp|NoNewPrivs):' "
                   "/proc/self/status; unshare -U true && echo unshared")
    assert r.stdout.split() == ["NoNewPrivs:", "1", "Seccomp:", "2"], r.stdout + r.stderr
    assert "Operation not permitted" in r.stderr
    status, body = daemon.curl("POST", "/1.0/instances/e1/exec", {"command": "true"})
    assert status == 400 and "array of strings" in body["error"]
    daemon.cli("stop", "e1", "--force", check=True)
    r = daemon.cli("exec", "e1", "--", "true")
    assert r.returncode != 0 and "exec needs it running" in r.stderr


def daemon_vessel():
    from conftest import vessel_path  # this folder's conftest
    return vessel_path()


def sh(daemon, name, script, check=True):
    return daemon.cli("exec", name, "--", "sh", "-c", script, check=check)


def test_snapshot_restore_copy_publish(daemon, busybox):
    daemon.cli("launch", busybox, "s1", "-c", "command=sleep 1000", check=True)
    sh(daemon, "s1", "echo v1 > /root/f")
    assert daemon.cli("snapshot", "s1", check=True).stdout == "snapshot s1/snap0\n"
    daemon.cli("snapshot", "s1", "named", check=True)
    sh(daemon, "s1", "echo v2 > /root/f; touch /root/later")
    info = json.loads(daemon.cli("info", "s1", check=True).stdout)
    assert info["snapshots"] == ["snap0", "named"]

    # restore: the files are the snapshot's, the instance runs again
    daemon.cli("restore", "s1", "snap0", check=True)
    assert daemon.list()["s1"]["state"] == "running"
    assert sh(daemon, "s1", "cat /root/f; ls /root").stdout == "v1\nf\n"

    # copy of a snapshot: its own name, hostname and overlay; stopped until started
    daemon.cli("copy", "s1/named", "s2", check=True)
    assert daemon.list()["s2"]["state"] == "stopped"
    daemon.cli("start", "s2", check=True)
    assert sh(daemon, "s2", "cat /root/f; hostname").stdout == "v1\ns2\n"
    sh(daemon, "s2", "echo only-s2 > /root/f")
    assert sh(daemon, "s1", "cat /root/f").stdout == "v1\n"
    # copy of a running instance
    daemon.cli("copy", "s2", "s3", check=True)
    daemon.cli("start", "s3", check=True)
    assert sh(daemon, "s3", "cat /root/f").stdout == "only-s2\n"

    # publish: the container becomes an image others launch from
    r = daemon.cli("publish", "s2", "--alias", "tmpl", check=True)
    assert "published from s2 as tmpl" in r.stdout
    imgs = {i["alias"]: i for i in json.loads(daemon.cli("image", "list", "--format", "json",
                                                         check=True).stdout)}
    assert imgs["tmpl"]["properties"]["parent"] == imgs["busybox"]["fingerprint"]
    daemon.cli("launch", "tmpl", "s4", "-c", "command=sleep 1000", check=True)
    assert sh(daemon, "s4", "cat /root/f").stdout == "only-s2\n"
    daemon.cli("publish", "s1/snap0", "--alias", "tmpl0", check=True)
    daemon.cli("launch", "tmpl0", "s5", "-c", "command=sleep 1000", check=True)
    assert sh(daemon, "s5", "cat /root/f").stdout == "v1\n"

    # snapshots are deleted one by one, or with their instance
    daemon.cli("delete", "s1/named", check=True)
    assert json.loads(daemon.cli("info", "s1", check=True).stdout)["snapshots"] == ["snap0"]
    r = daemon.cli("restore", "s1", "named")
    assert r.returncode != 0 and "snapshot 's1/named' not found" in r.stderr
    r = daemon.cli("copy", "s1", "s2")
    assert r.returncode != 0 and "instance 's2' already exists" in r.stderr
    r = daemon.cli("snapshot", "s1", "snap0")
    assert r.returncode != 0 and "has a snapshot 'snap0' already" in r.stderr
    daemon.cli("delete", "--force", "s1", check=True)
    assert not (daemon.state / "instances/s1").exists()
    status, _ = daemon.curl("GET", "/1.0/instances/s1/snapshots/snap0")
    assert status == 404


def memory_limit_of(pid):
    """The memory cgroup limit of pid (v1 or v2 hierarchy)."""
    for line in open(f"/proc/{pid}/cgroup").read().splitlines():
        _, ctrls, path = line.split(":", 2)
        if "memory" in ctrls.split(","):
            return int(open(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes").read())
        if ctrls == "" and os.path.exists(f"/sys/fs/cgroup{path}/memory.max"):
            v = open(f"/sys/fs/cgroup{path}/memory.max").read().strip()
            return None if v == "max" else int(v)
    return None


def test_config_set_is_live_for_a_running_container(daemon, busybox):
    daemon.cli("launch", busybox, "l1", "-c", "command=sleep 1000", "-c",
               "limits.memory=256MiB", check=True)
    pid = daemon.list()["l1"]["pid"]
    assert memory_limit_of(pid) == 256 << 20
    r = daemon.cli("config", "set", "l1", "limits.memory=128MiB", "command=sleep 2000",
                   check=True)
    assert "limits.memory: applied now" in r.stdout
    assert "command: applies at the next start" in r.stdout
    assert memory_limit_of(pid) == 128 << 20
    assert daemon.cli("config", "get", "l1", "limits.memory", check=True).stdout == "128MiB\n"
    show = daemon.cli("config", "show", "l1", check=True).stdout
    assert "limits.memory=128MiB\t(live)" in show and "command=sleep 2000\t(next start)" in show
    daemon.cli("restart", "l1", "--force", check=True)
    assert "sleep 2000" in sh(daemon, "l1", "ps -o args").stdout
    daemon.cli("config", "unset", "l1", "command", check=True)
    assert "command" not in json.loads(daemon.cli("info", "l1", check=True).stdout)["config"]
    for bad, msg in (("limits.memory=1", "limits.memory=1"), ("nope=1", "unknown config key"),
                     ("volatile.pid_start=1", "daemon's own")):
        r = daemon.cli("config", "set", "l1", bad)
        assert r.returncode != 0 and msg in r.stderr, r.stderr


def test_cancel_an_import_leaves_nothing(daemon, busybox_tarball, tmp_path):
    fifo = tmp_path / "slow.tar.gz"
    os.mkfifo(fifo)
    data = busybox_tarball.read_bytes()
    status, op = daemon.curl("POST", "/1.0/images", {"type": "container", "source": str(fifo),
                                                      "alias": "never"})
    assert status == 202
    with open(fifo, "wb") as f:
        f.write(data[: len(data) // 2])
        f.flush()
        time.sleep(0.3)
        r = daemon.cli("operation", "cancel", op["id"], check=True)
        assert "cancelling" in r.stdout
        try:
            f.write(data[len(data) // 2:])  # the next read sees the cancel
        except BrokenPipeError:
            pass
    end = daemon.curl("GET", f"/1.0/operations/{op['id']}/wait?timeout=30")[1]
    assert end["status"] == "cancelled" and "cancelled" in end["error"], end
    assert daemon.curl("GET", "/1.0/images")[1] == []
    assert list((daemon.state / "images").iterdir()) == []
    status, body = daemon.curl("DELETE", f"/1.0/operations/{op['id']}")
    assert status == 409 and "has ended" in body["error"]
