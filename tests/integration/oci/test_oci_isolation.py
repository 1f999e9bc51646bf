"""What a container sees from inside: its own PID 1, no host processes or
mounts, its hostname, and the limits and restrictions the spec asks for."""
import json
import os


def test_pid1_hostname_and_hidden_host(bundle):
    bundle.config["hostname"] = "boxname"
    bundle.sh("echo pid=$$; hostname; ps -o pid,comm; echo ---; cat /proc/mounts")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "pid=1\n" in out
    assert "boxname\n" in out
    ps_part, mounts = out.split("---", 1)
    # ps lists only the container's processes: sh (PID 1) and ps itself
    pids = [l.split()[0] for l in ps_part.splitlines()[3:] if l.strip()]
    assert pids and all(int(x) < 10 for x in pids), ps_part
    # the host's mounts (this checkout, /work, the host's /sys/fs/cgroup tmpfs
    # layout) are not visible
    host_mounts = {l.split()[1] for l in open("/proc/mounts")}
    assert "/work" not in mounts and str(bundle.path) not in mounts
    assert any(m in host_mounts for m in ("/dev/shm", "/sys/fs/cgroup"))
    assert " / " in mounts


def test_exit_status_propagates(bundle):
    assert bundle.sh("exit 42").run().returncode == 42
    bundle.id += "b"
    assert bundle.sh("kill -TERM $$; sleep 1").run().returncode in (0, 143)


def test_readonly_root_refuses_writes(bundle):
    bundle.config["root"]["readonly"] = True
    p = bundle.sh("touch /newfile && echo wrote || echo refused").run()
    assert p.returncode == 0, p.stderr
    assert "refused" in p.stdout and "Read-only file system" in p.stderr


def test_writable_root_control(bundle, rootfs):
    # same check with a writable root must succeed: the test above can fail
    bundle.config["root"]["readonly"] = False
    p = bundle.sh("touch /tmp/vessel-rw-probe && echo wrote && rm /tmp/vessel-rw-probe").run()
    assert "wrote" in p.stdout, p.stderr


def test_memory_limit_kills_hog(bundle):
    bundle.resources()["memory"] = {"limit": 32 << 20, "swap": 32 << 20}
    p = bundle.sh("tail /dev/zero; echo status=$?").run(timeout=120)
    assert p.returncode == 0, p.stderr
    assert "status=137" in p.stdout  # SIGKILL from the OOM killer


def test_pids_limit_stops_fork_bomb(bundle):
    bundle.resources()["pids"] = {"limit": 16}
    # only shell builtins after the bomb: nothing else can fork any more
    bundle.sh("(i=0; while [ $i -lt 40 ]; do sleep 5 & i=$((i+1)); done); "
              "d=/sys/fs/cgroup/pids; [ -e $d/pids.max ] || d=/sys/fs/cgroup; "
              "read cur < $d/pids.current; read max < $d/pids.max; echo $cur $max")
    p = bundle.run(timeout=60)
    assert "can't fork" in p.stderr or "Resource temporarily unavailable" in p.stderr, p.stderr
    nums = p.stdout.split()
    assert nums[-1] == "16" and int(nums[-2]) <= 16, p.stdout


def test_dropped_capability_makes_call_fail(bundle):
    bundle.add_mount("/tmp")
    bundle.sh("touch /tmp/f && chown 1:1 /tmp/f && echo chown-ok")
    # the default spec keeps only AUDIT_WRITE, KILL, NET_BIND_SERVICE
    p = bundle.run()
    assert "chown-ok" not in p.stdout
    assert "Operation not permitted" in p.stderr
    # with CAP_CHOWN granted the same call works
    for s in ("bounding", "effective", "permitted"):
        bundle.config["process"]["capabilities"][s].append("CAP_CHOWN")
    bundle.id += "b"
    p = bundle.run()
    assert "chown-ok" in p.stdout, p.stderr


def test_capabilities_visible_in_status(bundle):
    # ambient capabilities need the inheritable set too
    caps = bundle.config["process"]["capabilities"]
    caps["inheritable"] = list(caps["ambient"])
    bundle.sh("grep -E '^Cap(Eff|Bnd|Amb)' /proc/self/status; grep NoNewPrivs /proc/self/status")
    p = bundle.run()
    caps = dict(l.split(":\t") for l in p.stdout.strip().splitlines())
    # CAP_KILL(5), CAP_NET_BIND_SERVICE(10), CAP_AUDIT_WRITE(29)
    want = (1 << 5) | (1 << 10) | (1 << 29)
    assert int(caps["CapEff"], 16) == want and int(caps["CapBnd"], 16) == want
    assert int(caps["CapAmb"], 16) == want
    assert caps["NoNewPrivs"].strip() == "1"


def test_seccomp_rule_returns_eperm(bundle):
    bundle.add_mount("/tmp")
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "architectures": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86"],
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}],
    }
    p = bundle.sh("mkdir /tmp/d && echo made; touch /tmp/f && echo touched").run()
    assert "made" not in p.stdout and "touched" in p.stdout
    assert "Operation not permitted" in p.stderr
    del bundle.config["linux"]["seccomp"]
    bundle.id += "b"
    assert "made" in bundle.run().stdout


def test_user_cwd_env_rlimits_sysctl(bundle):
    bundle.add_mount("/work")
    proc = bundle.config["process"]
    proc["user"] = {"uid": 65534, "gid": 65534, "additionalGids": [5, 7]}
    proc["cwd"] = "/work"
    proc["env"].append("VESSEL_TEST=hello")
    proc["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 512, "soft": 256}]
    bundle.config["linux"]["sysctl"] = {"net.ipv4.ip_forward": "1"}
    bundle.sh("id; pwd; echo $VESSEL_TEST; ulimit -n; ulimit -Hn; cat /proc/sys/net/ipv4/ip_forward")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert "uid=65534" in lines[0] and "gid=65534" in lines[0] and "groups=5,7" in lines[0], lines
    assert lines[1:] == ["/work", "hello", "256", "512", "1"]


def test_masked_and_readonly_paths(bundle):
    bundle.sh("cat /proc/kcore | wc -c; ls /sys/firmware | wc -l; "
              "echo 1 > /proc/sys/kernel/domainname && echo wrote-sys")
    p = bundle.run()
    out = p.stdout.split()
    assert out[0] == "0" and out[1] == "0"
    assert "wrote-sys" not in p.stdout


def test_devices_and_console_nodes(bundle):
    bundle.config["linux"]["devices"] = [
        {"path": "/dev/vessel-null", "type": "c", "major": 1, "minor": 3, "fileMode": 0o666}]
    p = bundle.sh("echo hi > /dev/vessel-null && echo dev-ok; ls /dev").run()
    assert "dev-ok" in p.stdout, p.stderr
    for n in ("null", "zero", "full", "random", "urandom", "tty", "ptmx", "fd", "pts", "shm"):
        assert n in p.stdout.split(), p.stdout


def test_hooks_run_with_state(bundle, tmp_path):
    log = tmp_path / "hooks.log"
    script = tmp_path / "hook.sh"
    script.write_text(f"#!/bin/sh\nread -r s\necho \"$1 $s\" >> {log}\n")
    script.chmod(0o755)
    hooks = {}
    for kind in ("prestart", "createRuntime", "poststart", "poststop"):
        hooks[kind] = [{"path": str(script), "args": ["hook.sh", kind]}]
    bundle.config["hooks"] = hooks
    p = bundle.sh("echo ran").run()
    assert p.returncode == 0, p.stderr
    lines = log.read_text().splitlines()
    kinds = [l.split(" ", 1)[0] for l in lines]
    assert kinds == ["prestart", "createRuntime", "poststart", "poststop"], lines
    st = json.loads(lines[0].split(" ", 1)[1])
    # runtime.md: the hooks after create's step 2 see the container created
    assert st["id"] == bundle.id and st["status"] == "created" and st["pid"] > 0
    assert json.loads(lines[3].split(" ", 1)[1])["status"] == "stopped"


def test_failing_hook_aborts_create(bundle, state_root):
    bundle.config["hooks"] = {"createRuntime": [{"path": "/bin/false"}]}
    p = bundle.run()
    assert p.returncode != 0
    assert "createRuntime hook /bin/false exited with status 1" in p.stderr
    assert not (state_root / bundle.id).exists()


def test_namespaces_differ_from_host(bundle):
    bundle.sh("for n in pid mnt uts ipc net cgroup; do readlink /proc/self/ns/$n; done")
    p = bundle.run()
    inside = p.stdout.split()
    host = [os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "mnt", "uts", "ipc", "net",
                                                          "cgroup")]
    assert len(inside) == 6 and all(a != b for a, b in zip(inside, host)), (inside, host)


def test_cpu_cpuset_and_blkio_limits(bundle):
    st = os.stat("/")
    major, minor = os.major(st.st_dev), os.minor(st.st_dev)
    r = bundle.resources()
    r["cpu"] = {"shares": 256, "quota": 20000, "period": 100000, "cpus": "0", "mems": "0"}
    r["blockIO"] = {"throttleReadBpsDevice": [{"major": major, "minor": minor,
                                               "rate": 1048576}]}
    bundle.sh("cd /sys/fs/cgroup; cat cpu/cpu.shares cpu/cpu.cfs_quota_us cpu/cpu.cfs_period_us "
              "cpuset/cpuset.cpus blkio/blkio.throttle.read_bps_device")
    p = bundle.run()
    assert p.returncode == 0, p.stderr
    assert p.stdout.split() == ["256", "20000", "100000", "0", f"{major}:{minor}", "1048576"]


def test_container_side_hooks(bundle, tmp_path):
    """createContainer runs in the container's namespaces before pivot_root
    (host paths still visible); startContainer runs inside the container
    (its path is resolved in the rootfs) just before the process."""
    out = tmp_path / "out"
    out.mkdir()
    bundle.add_mount("/out", typ="bind", source=str(out), options=["bind", "rw"])
    bundle.config["hooks"] = {
        "createContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", f"hostname > {out}/create-hostname; cat > {out}/create.json"]}],
        "startContainer": [{"path": "/bin/sh", "args": [
            "sh", "-c", "cat > /out/start.json; echo $$ > /out/start-pid"]}],
    }
    bundle.config["hostname"] = "hooked"
    p = bundle.sh("echo main-ran").run()
    assert p.returncode == 0 and "main-ran" in p.stdout, p.stderr
    assert (out / "create-hostname").read_text().strip() == "hooked"
    assert json.loads((out / "create.json").read_text())["id"] == bundle.id
    assert json.loads((out / "start.json").read_text())["id"] == bundle.id
    assert int((out / "start-pid").read_text()) < 100  # a pid of the container's namespace


def test_mount_propagation_flags(bundle, rootfs, tmp_path):
    src = tmp_path / "shared-src"
    src.mkdir()
    bundle.config["linux"]["rootfsPropagation"] = "private"
    bundle.add_mount("/shared", typ="bind", source=str(src), options=["rbind", "rw", "shared"])
    # mounts are made before pivot_root, in the container's mount namespace:
    # binding <rootfs>/shared joins the peer group of the mount above, and
    # rslave then makes this one its slave
    bundle.add_mount("/slave", typ="bind", source=str(rootfs / "shared"),
                     options=["rbind", "ro", "rslave"])
    bundle.sh("grep -E ' /(shared|slave) ' /proc/self/mountinfo; touch /slave/x || echo slave-ro")
    p = bundle.run()
    lines = {l.split()[4]: l for l in p.stdout.splitlines() if l.count(" ") > 5}
    assert "shared:" in lines["/shared"], p.stdout
    assert "master:" in lines["/slave"] and " ro," in lines["/slave"], p.stdout
    assert "slave-ro" in p.stdout
