"""Spec behaviours checked from inside the container, side by side with what
crun and runc do (issue 20): no_new_privileges with and without seccomp,
every rootfsPropagation value, a container without namespaces, hook order
and the state each hook reads, kill with each signal, start returning only
once the process runs, settings this host cannot honour refused in one line,
namespaced sysctls only, time namespace offsets rootless."""
import json
import os
import shutil
import subprocess
import time

import pytest

from conftest import become_subreaper, reap

SECCOMP = {
    "defaultAction": "SCMP_ACT_ALLOW",
    "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
    "syscalls": [{"names": ["mknod", "mknodat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1}],
}


@pytest.fixture(autouse=True, scope="module")
def subreaper():
    become_subreaper()


def wait_for(cond, timeout=10.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(0.02)
    return False


def out_dir(bundle, tmp_path):
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    bundle.add_mount("/out", typ="bind", source=str(out), options=["bind", "rw"])
    return out


def one_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode != 0, p.stdout
    assert len(lines) == 1 and lines[0].startswith("vessel: "), p.stderr
    return lines[0]


# ---- 1. no_new_privileges is what process.noNewPrivileges says ----

@pytest.mark.parametrize("nnp", [False, True])
@pytest.mark.parametrize("seccomp", [False, True])
def test_no_new_privs_follows_the_config(bundle, nnp, seccomp):
    bundle.config["process"]["noNewPrivileges"] = nnp
    if seccomp:
        bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.sh("grep NoNewPrivs /proc/self/status; grep Seccomp: /proc/self/status; "
              "mknod /dev/x c 1 3 2>/dev/null && echo mknod-ok || echo mknod-refused")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.split("\n")
    assert lines[0].split() == ["NoNewPrivs:", "1" if nnp else "0"], p.stdout
    assert lines[1].split() == ["Seccomp:", "2" if seccomp else "0"], p.stdout
    # the filter is in force either way (CAP_MKNOD is not granted: EPERM too
    # without it, so only check that the filter does not break the process)
    assert lines[2] == "mknod-refused"


def test_no_new_privs_of_exec(bundle):
    bundle.config["process"]["noNewPrivileges"] = False
    bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.sh("while true; do sleep 0.05; done").create()
    bundle.start()
    p = bundle.cmd("exec", bundle.id, "grep", "NoNewPrivs", "/proc/self/status", check=True)
    assert p.stdout.split() == ["NoNewPrivs:", "0"]
    p = bundle.cmd("exec", "--no-new-privs", bundle.id, "grep", "NoNewPrivs", "/proc/self/status",
                   check=True)
    assert p.stdout.split() == ["NoNewPrivs:", "1"]


# ---- 2. every rootfsPropagation value ----

PROPAGATION_SCRIPT = r"""
root=$(awk '$5 == "/"' /proc/self/mountinfo)
proc=$(awk '$5 == "/proc"' /proc/self/mountinfo)
echo "root: $root"
echo "proc: $proc"
t=$(mktemp -d /tmp/prop-t.XXXXXX); m=$(mktemp -d /tmp/prop-m.XXXXXX)
s=$(mktemp -d /tmp/prop-s.XXXXXX); touch $s/file
if mount --rbind / $t 2>/dev/null; then
    echo bind-of-root: ok
    mount --bind $s $m
    if [ -e $t$m/file ]; then echo propagates: yes; else echo propagates: no; fi
    umount -l $m; umount -l $t
else
    echo bind-of-root: refused
fi
rm -rf $t $m $s
"""


@pytest.mark.parametrize("prop", ["private", "rprivate", "shared", "rshared", "slave", "rslave",
                                  "unbindable", "runbindable"])
def test_rootfs_propagation(bundle, prop):
    """Run on a host whose / is shared (a private mount namespace made
    shared, as systemd hosts are), so that slave is visible as master:N."""
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing")
    cfg = bundle.config
    cfg["linux"]["rootfsPropagation"] = prop
    cfg["root"]["readonly"] = False
    for s in ("bounding", "effective", "permitted"):
        cfg["process"]["capabilities"][s].append("CAP_SYS_ADMIN")
    bundle.sh(PROPAGATION_SCRIPT).write()
    p = subprocess.run(["unshare", "--mount", "--propagation", "shared", str(bundle.runc),
                        "--root", str(bundle.root), "run", "--bundle", str(bundle.path),
                        bundle.id + "s"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    out = dict(l.split(": ", 1) for l in p.stdout.splitlines() if ": " in l)
    root_tags = out["root"].split(" - ")[0].split()[6:]
    proc_tags = out["proc"].split(" - ")[0].split()[6:]
    shared = any(t.startswith("shared:") for t in root_tags)
    slave = any(t.startswith("master:") for t in root_tags)
    base = prop.lstrip("r") if prop != "rprivate" else "private"
    if prop in ("private", "rprivate"):
        assert not shared and not slave and "unbindable" not in root_tags, out["root"]
        assert out["propagates"] == "no"
    elif base == "shared":
        assert shared, out["root"]
        assert out["propagates"] == "yes", p.stdout
    elif base == "slave":
        assert slave and not shared, out["root"]
        assert out["propagates"] == "no"
    else:
        assert "unbindable" in root_tags, out["root"]
        assert out["bind-of-root"] == "refused"
    # the r-forms reach the mounts below the root too
    if prop == "rshared":
        assert any(t.startswith("shared:") for t in proc_tags), out["proc"]
    if prop == "runbindable":
        assert "unbindable" in proc_tags, out["proc"]
    if prop in ("shared", "slave", "private"):
        assert "unbindable" not in proc_tags


# ---- 3. a container without namespaces ----

def nsless(bundle):
    cfg = bundle.config
    cfg["linux"]["namespaces"] = []
    cfg["mounts"] = []
    cfg["root"]["readonly"] = False
    cfg.pop("hostname", None)
    return bundle


def test_container_without_namespaces_runs(bundle, rootfs):
    mark = rootfs / "tmp" / f"{bundle.id}.pid"
    nsless(bundle).sh(f"echo $$ > /tmp/{bundle.id}.pid; while true; do sleep 0.05; done")
    bundle.create()
    pid = bundle.state()["pid"]
    bundle.start()
    assert wait_for(mark.exists)
    st = bundle.state()
    try:
        # the pid it reports is the process's own, in the host's namespaces
        assert st["status"] == "running" and st["pid"] == pid
        assert int(mark.read_text()) == pid
        for ns in ("pid", "net", "mnt", "uts", "ipc"):
            assert os.readlink(f"/proc/{pid}/ns/{ns}") == os.readlink(f"/proc/self/ns/{ns}")
        assert os.readlink(f"/proc/{pid}/root") == str(rootfs)
    finally:
        mark.unlink(missing_ok=True)
        bundle.cmd("delete", "--force", bundle.id, check=True)
        reap(pid)


def test_container_without_namespaces_run_exit_status(bundle):
    p = nsless(bundle).sh("echo out-$$; exit 3").run()
    assert p.returncode == 3, p.stderr
    assert p.stdout.startswith("out-") and int(p.stdout.strip()[4:]) > 1


@pytest.mark.parametrize("what,needle", [
    ("mounts", "mounts need a new 'mount' namespace"),
    ("readonly", "root.readonly needs a new 'mount' namespace"),
    ("hostname", "hostname is set but the container has no uts namespace"),
])
def test_container_without_namespaces_refuses_host_changes(bundle, what, needle):
    nsless(bundle)
    if what == "mounts":
        bundle.add_mount("/tmp")
    elif what == "readonly":
        bundle.config["root"]["readonly"] = True
    else:
        bundle.config["hostname"] = "nope"
    bundle.write()
    assert needle in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    assert not (bundle.root / bundle.id).exists()


# ---- 4. hooks: order, every poststop runs, the state on stdin ----

def test_hook_order_and_state(bundle, tmp_path):
    logdir = tmp_path / "hooklog"
    logdir.mkdir()
    log = logdir / "log"
    bundle.add_mount("/hooklog", typ="bind", source=str(logdir), options=["bind", "rw"])

    def host_hook(name, fail=False):
        return {"path": "/bin/sh", "args": [
            "sh", "-c", f"read -r s; echo \"{name} $s\" >> {log}" + ("; exit 1" if fail else "")]}

    bundle.config["hooks"] = {
        "prestart": [host_hook("prestart1"), host_hook("prestart2")],
        "createRuntime": [host_hook("createRuntime1"), host_hook("createRuntime2")],
        "createContainer": [host_hook("createContainer1")],
        # inside the container: its /bin/sh, the log through the bind mount
        "startContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", "read -r s; echo \"startContainer1 $s\" >> /hooklog/log"]}],
        "poststart": [host_hook("poststart1", fail=True), host_hook("poststart2")],
        "poststop": [host_hook("poststop1"), host_hook("poststop2", fail=True),
                     host_hook("poststop3")],
    }
    p = bundle.sh("echo process >> /hooklog/log").run()
    assert p.returncode == 0, p.stderr
    entries = [l.split(" ", 1) for l in log.read_text().splitlines()]
    names = [e[0] for e in entries]
    assert names[:6] == ["prestart1", "prestart2", "createRuntime1", "createRuntime2",
                         "createContainer1", "startContainer1"], names
    # the process and poststart run concurrently; poststop comes last
    assert sorted(names[6:9]) == ["poststart1", "poststart2", "process"], names
    assert names[9:] == ["poststop1", "poststop2", "poststop3"], names
    st = {e[0]: json.loads(e[1]) for e in entries if e[0] != "process"}
    host_pid = st["prestart1"]["pid"]
    assert host_pid > 1
    for n in ("prestart1", "prestart2", "createRuntime1", "createRuntime2"):
        assert st[n]["status"] == "created" and st[n]["pid"] == host_pid, st[n]
    # hooks in the container's namespaces see the pid the container sees
    for n in ("createContainer1", "startContainer1"):
        assert st[n]["status"] == "created" and st[n]["pid"] == 1, st[n]
    assert st["poststart2"]["status"] == "running" and st["poststart2"]["pid"] == host_pid
    for n in ("poststop1", "poststop2", "poststop3"):
        assert st[n]["status"] == "stopped" and st[n]["id"] == bundle.id
    for s in st.values():
        assert s["bundle"] == str(bundle.path) and s["ociVersion"]
    # each failure is a warning, and the lifecycle goes on
    assert "poststart hook /bin/sh exited with status 1" in p.stderr
    assert "poststop hook /bin/sh exited with status 1" in p.stderr
    assert not (bundle.root / bundle.id).exists()


def test_failing_poststop_hook_on_delete(bundle, tmp_path):
    log = tmp_path / "log"
    bundle.config["hooks"] = {"poststop": [
        {"path": "/bin/false"},
        {"path": "/bin/sh", "args": ["sh", "-c", f"cat > {log}"]}]}
    bundle.sh("true").create()
    pid = bundle.state()["pid"]
    bundle.start()
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped")
    p = bundle.cmd("delete", bundle.id)
    assert p.returncode == 0, p.stderr
    assert "poststop hook /bin/false exited with status 1" in p.stderr
    assert json.loads(log.read_text())["status"] == "stopped"
    assert not (bundle.root / bundle.id).exists()


# ---- 5. kill with each signal; start returns once the process runs ----

SIGNALS = [("TERM", 15), ("SIGINT", 2), ("HUP", 1), ("USR1", 10), ("SIGUSR2", 12),
           ("QUIT", 3), ("15", 15), ("RTMIN+3", 37), ("SIGRTMAX-1", 63)]


@pytest.mark.parametrize("name,num", SIGNALS, ids=[s[0] for s in SIGNALS])
def test_kill_with_each_signal(bundle, tmp_path, name, num):
    out = out_dir(bundle, tmp_path)
    bundle.sh(f"trap 'echo {num} > /out/sig; exit 0' {num}; echo ready > /out/ready; "
              "while true; do sleep 0.05; done").create()
    pid = bundle.state()["pid"]
    bundle.start()
    assert wait_for((out / "ready").exists)
    bundle.cmd("kill", bundle.id, name, check=True)
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped", 5), "still running after 5 s"
    assert (out / "sig").read_text().strip() == str(num)
    bundle.cmd("delete", bundle.id, check=True)


def test_kill_right_after_start(bundle):
    # the default spec's seccomp-free config plus a filter loaded last (no
    # new privileges): the init's work after the release is widest here
    bundle.config["linux"]["seccomp"] = SECCOMP
    for i in range(5):
        bundle.id = bundle.id[:11] + str(i)
        bundle.sh("sleep 30").create()
        pid = bundle.state()["pid"]
        bundle.start()
        bundle.cmd("kill", bundle.id, "KILL", check=True)
        reap(pid)
        assert wait_for(lambda: bundle.state()["status"] == "stopped", 5)
        bundle.cmd("delete", bundle.id, check=True)


def test_start_returns_once_the_process_runs(bundle, tmp_path):
    """A slow startContainer hook and a filter loaded last: when start
    returns, the init is the user's program, not the runtime any more."""
    bundle.config["linux"]["seccomp"] = SECCOMP
    bundle.config["hooks"] = {"startContainer": [
        {"path": "/bin/sh", "args": ["sh", "-c", "sleep 0.3"]}]}
    bundle.args("sleep", "30").create()
    pid = bundle.state()["pid"]
    assert bundle.state()["status"] == "created"
    runc_exe = os.path.realpath(bundle.runc)
    assert os.readlink(f"/proc/{pid}/exe") == runc_exe
    bundle.start()
    assert os.readlink(f"/proc/{pid}/exe") != runc_exe
    assert bundle.state()["status"] == "running"
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_start_reports_a_failing_start_hook(bundle):
    bundle.config["hooks"] = {"startContainer": [{"path": "/bin/false"}]}
    bundle.args("true").create()
    pid = bundle.state()["pid"]
    p = bundle.cmd("start", bundle.id)
    assert "startContainer hook /bin/false exited with status 1" in one_line(p)
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped")


# ---- 6. settings this host cannot honour are refused ----

@pytest.mark.parametrize("setting,needle", [
    ("classID", "'net_cls' cgroup controller is not mounted"),
    ("priorities", "'net_prio' cgroup controller is not mounted"),
    ("apparmor", "AppArmor is not enabled on this host"),
    ("selinux", "SELinux is not enabled on this host"),
    ("intelRdt", "Intel RDT"),
    ("scheduler", "process.scheduler is not supported"),
])
def test_unavailable_settings_are_refused(bundle, setting, needle):
    if setting in ("classID", "priorities") and (
            os.path.exists("/sys/fs/cgroup/net_cls") or os.path.exists("/sys/fs/cgroup/net_prio")):
        pytest.skip("net_cls/net_prio are mounted here: nothing to refuse")
    if setting == "apparmor" and os.path.exists("/sys/module/apparmor"):
        pytest.skip("this host has AppArmor")
    if setting == "selinux" and os.path.exists("/sys/fs/selinux/enforce"):
        pytest.skip("this host has SELinux")
    cfg = bundle.config
    if setting == "classID":
        bundle.resources()["network"] = {"classID": 1048577}
    elif setting == "priorities":
        bundle.resources()["network"] = {"priorities": [{"name": "lo", "priority": 2}]}
    elif setting == "apparmor":
        cfg["process"]["apparmorProfile"] = "docker-default"
    elif setting == "selinux":
        cfg["process"]["selinuxLabel"] = "system_u:system_r:container_t:s0"
    elif setting == "intelRdt":
        cfg["linux"]["intelRdt"] = {"closID": "x", "l3CacheSchema": "L3:0=ff"}
    else:
        cfg["process"]["scheduler"] = {"policy": "SCHED_BATCH"}
    bundle.write()
    assert needle in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    assert not (bundle.root / bundle.id).exists()
    assert not list((bundle.root).glob(bundle.id + "*"))


def test_kernel_tcp_limit_is_applied(bundle):
    if not os.path.exists("/sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes"):
        pytest.skip("no v1 memory controller with kmem.tcp here")
    bundle.resources()["memory"] = {"limit": 256 << 20, "kernelTCP": 16 << 20}
    p = bundle.sh("cat /sys/fs/cgroup/memory/memory.kmem.tcp.limit_in_bytes").run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == str(16 << 20)


# ---- 7. sysctls only where namespaced; time offsets rootless ----

@pytest.mark.parametrize("key,drop,needle", [
    ("net.ipv4.ip_forward", "network", "shares the host's network namespace"),
    ("kernel.shmmax", "ipc", "shares the host's ipc namespace"),
    ("kernel.domainname", "uts", "shares the host's uts namespace"),
    ("vm.swappiness", None, "is not namespaced"),
])
def test_sysctl_outside_the_container_namespaces_is_refused(bundle, key, drop, needle):
    lx = bundle.config["linux"]
    if drop:
        lx["namespaces"] = [n for n in lx["namespaces"] if n["type"] != drop]
    if drop == "uts":
        bundle.config.pop("hostname", None)
    lx["sysctl"] = {key: "1"}
    bundle.write()
    assert needle in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    assert not (bundle.root / bundle.id).exists()


def test_namespaced_sysctls_are_set(bundle):
    bundle.config["linux"]["sysctl"] = {"kernel.shmmax": "123456789",
                                        "fs.mqueue.msg_max": "33",
                                        "net.ipv4.ip_default_ttl": "42"}
    p = bundle.sh("cat /proc/sys/kernel/shmmax /proc/sys/fs/mqueue/msg_max "
                  "/proc/sys/net/ipv4/ip_default_ttl").run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["123456789", "33", "42"]
    host = open("/proc/sys/kernel/shmmax").read().strip()
    assert host != "123456789"


def test_time_namespace_offsets_rootless(runc, rootfs, oci_tmp):
    from test_oci_rootless import USER, as_user
    import pwd
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER], check=True)
        pw = pwd.getpwnam(USER)
    base = oci_tmp / "rootless-time"
    base.mkdir(exist_ok=True)
    os.chown(base, pw.pw_uid, pw.pw_gid)
    p = as_user(pw, [runc, "spec", "--rootless", "--bundle", base], xdg=str(base))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((base / "config.json").read_text())
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["terminal"] = False
    cfg["linux"]["namespaces"].append({"type": "time"})
    cfg["linux"]["timeOffsets"] = {"boottime": {"secs": 86400 * 365, "nanosecs": 0},
                                   "monotonic": {"secs": 86400, "nanosecs": 0}}
    cfg["process"]["args"] = ["sh", "-c", "cat /proc/uptime; id -u"]
    (base / "config.json").write_text(json.dumps(cfg))
    p = as_user(pw, [runc, "--root", base / "state", "run", "--bundle", base, "rlt"],
                xdg=str(base))
    assert p.returncode == 0, p.stderr
    inside = float(p.stdout.split()[0])
    host = float(open("/proc/uptime").read().split()[0])
    assert inside - host > 86400 * 364, (inside, host)
    assert p.stdout.split()[-1] == "0"


# ---- the rest of config.md's and runtime.md's MUSTs (docs/oci.md's table) ----

def test_process_settings_seen_inside(bundle):
    """oomScoreAdj set, umask, domainname; consoleSize without a terminal is
    ignored; unknown properties are ignored."""
    proc = bundle.config["process"]
    proc["oomScoreAdj"] = 517
    proc["user"]["umask"] = 0o027
    proc["consoleSize"] = {"height": 10, "width": 20}
    proc["vesselUnknownProperty"] = {"x": 1}
    bundle.config["vesselUnknownTopLevel"] = [1, 2]
    bundle.config["linux"]["vesselUnknownLinux"] = "y"
    bundle.config["domainname"] = "example.test"
    bundle.sh("cat /proc/self/oom_score_adj; umask; cat /proc/sys/kernel/domainname")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["517", "0027", "example.test"]


def test_oom_score_adj_unset_is_inherited(bundle):
    mine = open("/proc/self/oom_score_adj").read().strip()
    p = bundle.sh("cat /proc/self/oom_score_adj").run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == mine


def test_unknown_capability_is_a_warning(bundle):
    for s in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][s].append("CAP_VESSEL_FUTURE")
    p = bundle.sh("grep CapEff /proc/self/status").run()
    assert p.returncode == 0, p.stderr
    assert "CAP_VESSEL_FUTURE" in p.stderr and "warning" in p.stderr


def test_duplicate_rlimit_and_bad_annotation_are_refused(bundle):
    bundle.config["process"]["rlimits"] = [{"type": "RLIMIT_CORE", "soft": 1, "hard": 1},
                                           {"type": "RLIMIT_CORE", "soft": 2, "hard": 2}]
    bundle.write()
    assert "listed twice" in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    bundle.config["process"]["rlimits"] = []
    bundle.config["annotations"] = {"k": 1}
    bundle.write()
    assert "annotations.k" in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    assert not (bundle.root / bundle.id).exists()


def test_relative_paths(bundle, rootfs, tmp_path):
    """root.path relative to the bundle; a relative mount destination is
    relative to "/" (deprecated, still valid)."""
    (bundle.path / "rootfs").symlink_to(rootfs)
    bundle.config["root"]["path"] = "rootfs"
    bundle.config["mounts"].append({"destination": "tmp", "type": "tmpfs", "source": "tmpfs",
                                    "options": ["size=1m"]})
    p = bundle.sh("awk '$5 == \"/tmp\" {print $9}' /proc/self/mountinfo").run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "tmpfs"


def test_config_changes_after_create_do_not_matter(bundle, tmp_path):
    out = out_dir(bundle, tmp_path)
    bundle.sh("echo original > /out/who; sleep 30").create()
    pid = bundle.state()["pid"]
    bundle.sh("echo changed > /out/who; sleep 30").write()
    bundle.start()
    assert wait_for(lambda: (out / "who").exists() and (out / "who").read_text() == "original\n")
    # exec uses the config of the container too
    p = bundle.cmd("exec", bundle.id, "sh", "-c", "echo $PATH", check=True)
    assert p.stdout.strip().startswith("/usr/local/sbin")
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_state_shape_and_annotations(bundle):
    bundle.config["annotations"] = {"org.example.key": "value"}
    bundle.sh("sleep 30").create()
    st = bundle.state()
    for k in ("ociVersion", "id", "status", "pid", "bundle"):
        assert k in st, st
    assert st["status"] == "created" and st["annotations"] == {"org.example.key": "value"}
    assert os.path.isabs(st["bundle"])
    pid = st["pid"]
    # not stopped: delete refuses, kill works on a created container
    assert "created" in one_line(bundle.cmd("delete", bundle.id))
    bundle.cmd("kill", bundle.id, "KILL", check=True)
    reap(pid)
    assert wait_for(lambda: bundle.state()["status"] == "stopped")
    # a stopped container: kill is an error and changes nothing, delete works
    assert "not running" in one_line(bundle.cmd("kill", bundle.id, "TERM"))
    assert bundle.state()["status"] == "stopped"
    bundle.cmd("delete", bundle.id, check=True)
    assert "does not exist" in one_line(bundle.cmd("state", bundle.id))
    assert "does not exist" in one_line(bundle.cmd("delete", bundle.id))


def test_missing_process_is_refused(bundle):
    del bundle.config["process"]
    bundle.write()
    assert "process" in one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))


def test_hook_timeout_and_failing_create_hook_runs_poststop(bundle, tmp_path):
    log = tmp_path / "poststop.json"
    bundle.config["hooks"] = {
        "prestart": [{"path": "/bin/sleep", "args": ["sleep", "10"], "timeout": 1}],
        "poststop": [{"path": "/bin/sh", "args": ["sh", "-c", f"cat > {log}"]}]}
    bundle.write()
    t0 = time.monotonic()
    msg = one_line(bundle.cmd("create", "--bundle", bundle.path, bundle.id))
    assert "prestart hook /bin/sleep timed out after 1 s" in msg
    assert time.monotonic() - t0 < 8
    assert not (bundle.root / bundle.id).exists()
    # runtime.md: a failing create hook stops the container, which is then
    # destroyed and its poststop hooks run
    assert json.loads(log.read_text())["status"] == "stopped"
