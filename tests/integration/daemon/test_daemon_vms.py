"""vesseld with VMs: a riscv64 Linux VM on vessel's emulator (runs
everywhere) and an x86-64 KVM VM on the tier-1 test guest (needs /dev/kvm),
side by side with containers, through the same commands."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]


def wait_console(daemon, name, text, timeout=120):
    log = daemon.state / "instances" / name / "console.log"
    end = time.time() + timeout
    while time.time() < end:
        if log.exists() and text in log.read_text(errors="replace"):
            return
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-2000:] if log.exists() else "(no console log)"
    raise AssertionError(f"{name}: no '{text}' on the console within {timeout}s:\n{tail}")


def test_riscv64_vm_beside_containers(daemon, busybox, rv_guest_files):
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    r = daemon.cli("launch", "debian-rv", "rv1", "-c", "limits.memory=256MiB", check=True)
    assert "vm rv1: running" in r.stdout
    for n in ("ct1", "ct2"):
        daemon.cli("launch", busybox, n, "-c", "command=sleep 1000", check=True)
    wait_console(daemon, "rv1", "VESSEL-RISCV-READY")
    insts = daemon.list()
    assert sorted(insts) == ["ct1", "ct2", "rv1"]
    assert all(i["state"] == "running" for i in insts.values())
    assert insts["rv1"]["type"] == "vm" and insts["rv1"]["arch"] == "riscv64"
    vm_pid = insts["rv1"]["pid"]
    assert b"vm\0run\0--arch\0riscv64" in Path(f"/proc/{vm_pid}/cmdline").read_bytes()

    daemon.cli("pause", "rv1", check=True)
    assert daemon.list()["rv1"]["state"] == "paused"
    daemon.cli("resume", "rv1", check=True)

    # the daemon dies; the VM runs on and is found again through its socket
    daemon.kill(signal.SIGKILL)
    assert os.path.exists(f"/proc/{vm_pid}")
    daemon.start()
    insts = daemon.list()
    assert insts["rv1"]["state"] == "running" and insts["rv1"]["pid"] == vm_pid

    # a stateful snapshot of the running VM; it runs on meanwhile
    r = daemon.cli("snapshot", "rv1", check=True)
    assert r.stdout == "snapshot rv1/snap0 (with the running state)\n"
    snap = daemon.curl("GET", "/1.0/instances/rv1/snapshots/snap0")[1]
    assert snap["stateful"] == 1 and (Path(snap["path"]) / "vmstate").exists()
    assert daemon.list()["rv1"]["state"] == "running"
    # a copy of it is a clone: a VM process of its own, continuing from the state
    daemon.cli("copy", "rv1/snap0", "rv2", check=True)
    daemon.cli("start", "rv2", check=True)
    rv2 = daemon.list()["rv2"]
    assert rv2["state"] == "running" and rv2["pid"] != vm_pid
    cmd = Path(f"/proc/{rv2['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmd[1:3] == [b"vm", b"restore"] and b"--clone-index" in cmd
    daemon.cli("delete", "--force", "rv2", check=True)

    # a template from the running state: launches are clones of it, each its own
    r = daemon.cli("publish", "rv1/snap0", "--alias", "rv-tmpl", check=True)
    assert "as rv-tmpl" in r.stdout
    for n in ("t1", "t2", "t3"):
        daemon.cli("launch", "rv-tmpl", n, check=True)
    clones = daemon.list()
    idx = set()
    for n in ("t1", "t2", "t3"):
        assert clones[n]["state"] == "running" and clones[n]["arch"] == "riscv64"
        cmd = Path(f"/proc/{clones[n]['pid']}/cmdline").read_bytes().split(b"\0")
        assert cmd[1:3] == [b"vm", b"restore"]
        idx.add(cmd[cmd.index(b"--clone-index") + 1])
    assert len(idx) == 3  # own MAC and CID each
    r = daemon.cli("image", "delete", "rv-tmpl")
    assert r.returncode != 0 and "used by instance" in r.stderr
    daemon.cli("delete", "--force", "t1", "t2", "t3", check=True)
    daemon.cli("image", "delete", "rv-tmpl", check=True)

    # each can be stopped and deleted without touching the others
    daemon.cli("stop", "rv1", "--timeout", "20", check=True)
    insts = daemon.list()
    assert insts["rv1"]["state"] == "stopped" and not os.path.exists(f"/proc/{vm_pid}/cmdline") \
        or Path(f"/proc/{vm_pid}/stat").read_text().split()[2] == "Z"
    assert insts["ct1"]["state"] == insts["ct2"]["state"] == "running"
    daemon.cli("delete", "ct1", "--force", check=True)
    assert sorted(daemon.list()) == ["ct2", "rv1"]
    # restore continues from the snapshot's state (a `vm restore` process)
    daemon.cli("restore", "rv1", "snap0", check=True)
    rv1 = daemon.list()["rv1"]
    assert rv1["state"] == "running"
    cmd = Path(f"/proc/{rv1['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmd[1:3] == [b"vm", b"restore"]
    # after a stop it boots afresh
    daemon.cli("stop", "rv1", "--force", check=True)
    daemon.cli("start", "rv1", check=True)
    rv1 = daemon.list()["rv1"]
    assert rv1["state"] == "running"
    assert Path(f"/proc/{rv1['pid']}/cmdline").read_bytes().split(b"\0")[1:3] == [b"vm", b"run"]
    daemon.cli("delete", "--force", "rv1", check=True)
    assert sorted(daemon.list()) == ["ct2"]
    assert daemon.list()["ct2"]["state"] == "running"


def test_vm_that_cannot_start_leaves_nothing(daemon, tmp_path):
    bogus = tmp_path / "not-a-kernel"
    bogus.write_bytes(b"\0" * 4096)
    # x86: refused as "not a kernel" where /dev/kvm exists, for want of it elsewhere
    daemon.cli("image", "import", "--vm", "--arch", "x86_64", "--kernel", bogus, "--alias",
               "bogus", check=True)
    r = daemon.cli("launch", "bogus", "bad1")
    assert r.returncode != 0 and "the VM did not start" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert daemon.list() == {}
    assert not (daemon.state / "instances/bad1").exists()


def test_x86_kvm_vm_through_the_daemon(daemon):
    if not os.path.exists("/dev/kvm"):
        import sys
        sys.stderr.write("\n*** /dev/kvm is missing: the x86 KVM daemon test cannot run here ***\n")
        pytest.skip("/dev/kvm is missing (the riscv64 VM test covers the daemon's VM path)")
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh")], check=True, capture_output=True)
    guest = ROOT / "tests/guests/out/x86/guest.elf"
    daemon.cli("image", "import", "--vm", "--kernel", guest, "--alias", "tier1", check=True)
    daemon.cli("launch", "tier1", "x1", "-c", "boot.args=test=hang", check=True)
    wait_console(daemon, "x1", "hanging", timeout=30)
    assert daemon.list()["x1"]["state"] == "running"
    daemon.cli("delete", "--force", "x1", check=True)
    assert daemon.list() == {}


def counts_in(daemon, name):
    log = daemon.state / "instances" / name / "console.log"
    text = log.read_text(errors="replace") if log.exists() else ""
    return [int(x, 16) for x in re.findall(r"count ([0-9a-f]{8})\n", text)]


def wait_counting(daemon, name, past, timeout=30):
    """name's console shows the counter past `past`."""
    end = time.time() + timeout
    while time.time() < end:
        c = counts_in(daemon, name)
        if c and c[-1] > past:
            return c
        time.sleep(0.1)
    raise AssertionError(f"{name}: the counter did not pass {past}: {counts_in(daemon, name)[-3:]}")


def test_four_kinds_side_by_side(kvm, daemon, busybox, rv_guest_files):
    """An x86-64 KVM VM (the tier-1 guest on /dev/kvm), a riscv64 Linux VM
    and two containers under one daemon: listed together, the x86 VM
    snapshotted with its running state, copied into a clone that counts on
    from the snapshot, restored, then stopped and deleted without touching
    the others."""
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh")], check=True, capture_output=True)
    guest = ROOT / "tests/guests/out/x86/guest.elf"
    daemon.cli("image", "import", "--vm", "--kernel", guest, "--alias", "tier1", check=True)
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    daemon.cli("launch", "tier1", "x1", "-c", "boot.args=test=counter", "-c",
               "limits.memory=128MiB", check=True)
    daemon.cli("launch", "debian-rv", "rv1", "-c", "limits.memory=256MiB", check=True)
    for n in ("ct1", "ct2"):
        daemon.cli("launch", busybox, n, "-c", "command=sleep 1000", check=True)
    wait_console(daemon, "rv1", "VESSEL-RISCV-READY")
    wait_counting(daemon, "x1", 3)
    insts = daemon.list()
    assert sorted(insts) == ["ct1", "ct2", "rv1", "x1"]
    assert all(i["state"] == "running" for i in insts.values()), insts
    assert (insts["x1"]["type"], insts["x1"]["arch"]) == ("vm", "x86_64")
    assert (insts["rv1"]["type"], insts["rv1"]["arch"]) == ("vm", "riscv64")
    assert insts["ct1"]["type"] == "container"
    table = daemon.cli("list", check=True).stdout
    for n in ("x1", "rv1", "ct1", "ct2"):
        assert n in table

    # the x86 VM's running state, snapshotted while it counts on
    before = counts_in(daemon, "x1")[-1]
    daemon.cli("snapshot", "x1", "s0", check=True)
    at_snapshot = counts_in(daemon, "x1")[-1]
    wait_counting(daemon, "x1", at_snapshot + 3)
    # its clone continues from the snapshot's count, not from 0
    daemon.cli("copy", "x1/s0", "x2", check=True)
    daemon.cli("start", "x2", check=True)
    c = wait_counting(daemon, "x2", at_snapshot + 3)
    assert before <= c[0] <= at_snapshot + 1 and c == sorted(c), (before, at_snapshot, c[:5])
    assert daemon.list()["x2"]["pid"] != daemon.list()["x1"]["pid"]
    # restore takes x1 back to the snapshot's count
    daemon.cli("restore", "x1", "s0", check=True)
    assert daemon.list()["x1"]["state"] == "running"
    # each goes without touching the others
    daemon.cli("delete", "--force", "x1", "x2", check=True)
    insts = daemon.list()
    assert sorted(insts) == ["ct1", "ct2", "rv1"]
    assert all(i["state"] == "running" for i in insts.values()), insts
    daemon.cli("delete", "--force", "rv1", "ct1", check=True)
    assert daemon.list()["ct2"]["state"] == "running"


def test_vm_root_disk_is_an_overlay_per_instance(daemon, rv_guest_files):
    kernel, initrd = rv_guest_files
    disk = kernel.parent / "disk.img"
    base_sum = subprocess.run(["sha256sum", str(disk)], capture_output=True, text=True).stdout
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--disk", disk, "--alias", "rv-disk", check=True)
    img = json.loads(daemon.cli("image", "list", "--format", "json", check=True).stdout)[0]
    assert img["properties"]["disk_format"] == "raw"
    for n in ("d1", "d2"):
        daemon.cli("launch", "rv-disk", n, check=True)
    for n in ("d1", "d2"):
        overlay = daemon.state / "instances" / n / "disk.qcow2"
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", "-U",
                                          str(overlay)], capture_output=True, text=True,
                                         check=True).stdout)
        assert info["format"] == "qcow2"
        # named relative to the overlay, so it works in another state directory
        assert info["backing-filename"].startswith("../../images/")
        assert Path(info["full-backing-filename"]).resolve() == Path(img["path"]) / "disk.img"
        inst = daemon.list()[n]
        assert inst["config"]["volatile.disk_path"] == str(overlay)
    # a snapshot freezes the disk too; the VM goes on in a new overlay
    daemon.cli("snapshot", "d1", check=True)
    after = daemon.list()["d1"]["config"]["volatile.disk_path"]
    assert ".after-" in after and Path(after).exists()
    # a stopped VM's snapshot keeps its disk; restore brings it back, and a
    # copy of the stopped VM gets a disk of its own with the same contents
    daemon.cli("stop", "d2", "--force", check=True)
    d2_disk = daemon.list()["d2"]["config"]["volatile.disk_path"]
    daemon.cli("snapshot", "d2", "cold", check=True)
    cold = daemon.curl("GET", "/1.0/instances/d2/snapshots/cold")[1]
    assert cold["stateful"] == 0 and (Path(cold["path"]) / "disk.qcow2").exists()
    daemon.cli("restore", "d2", "cold", check=True)
    restored = daemon.list()["d2"]["config"]["volatile.disk_path"]
    assert restored != d2_disk and Path(restored).exists()
    daemon.cli("copy", "d2", "d3", check=True)
    d3 = daemon.list()["d3"]
    assert d3["config"]["volatile.disk_path"] == str(daemon.state / "instances/d3/disk.qcow2")
    daemon.cli("start", "d3", check=True)
    assert daemon.list()["d3"]["state"] == "running"
    daemon.cli("delete", "--force", "d1", "d2", "d3", check=True)
    # the image's base was never written
    assert subprocess.run(["sha256sum", str(Path(img["path"]) / "disk.img")],
                          capture_output=True, text=True).stdout.split()[0] == base_sum.split()[0]


def vessel_cli():
    from conftest import vessel_path  # this folder's conftest
    return vessel_path()


def vessel(daemon, *args, **kw):
    """The CLI with a stdin of the test's (input=..., else empty): exec hands
    its own stdin, stdout and stderr to the command."""
    kw.setdefault("input", "")
    return subprocess.run([str(vessel_cli()), *map(str, args)], capture_output=True, text=True,
                          timeout=kw.pop("timeout", 120), env=daemon.env, **kw)


def test_exec_in_a_riscv64_vm(daemon, rv_guest_files):
    """`vessel exec` on a VM: the guest agent over virtio-vsock runs the command
    with the CLI's own stdin, stdout and stderr and returns its exit status."""
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    daemon.cli("launch", "debian-rv", "rv", "-c", "limits.memory=256MiB", check=True)
    cid = int(daemon.list()["rv"]["config"]["volatile.vsock_cid"])
    assert cid >= 3
    # no wait for the console: exec waits for the agent while the guest boots
    r = vessel(daemon, "exec", "rv", "--", "uname", "-m")
    assert (r.returncode, r.stdout, r.stderr) == (0, "riscv64\n", "")

    # stdin through cat, past vsock's 256 KiB credit window
    text = "".join(f"line {i} through the guest\n" for i in range(12000))
    r = vessel(daemon, "exec", "rv", "--", "cat", input=text)
    assert r.returncode == 0 and r.stderr == ""
    assert r.stdout == text

    # a failing command: its status comes back, its stderr stays on stderr
    r = vessel(daemon, "exec", "rv", "--", "cat", "/no/such/file")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == "cat: /no/such/file: No such file or directory\n"
    r = vessel(daemon, "exec", "rv", "--", "/no/such/program")
    assert r.returncode == 127 and "vessel-agent: /no/such/program:" in r.stderr
    r = vessel(daemon, "exec", "rv", "--", "false")
    assert (r.returncode, r.stdout, r.stderr) == (1, "", "")

    # -t: a terminal in the guest, relayed to the caller's
    import pty
    mfd, sfd = pty.openpty()
    p = subprocess.Popen([str(vessel_cli()), "exec", "rv", "-t", "--", "tty"],
                         stdin=sfd, stdout=sfd, stderr=sfd, env=daemon.env)
    os.close(sfd)
    out = b""
    while True:
        try:
            chunk = os.read(mfd, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    assert p.wait(timeout=60) == 0, out
    os.close(mfd)
    assert b"/dev/pts/" in out

    # scripts: record_output over the API
    code, body = daemon.curl("POST", "/1.0/instances/rv/exec",
                             {"command": ["uname", "-s", "-m"], "record_output": True})
    assert code == 200
    assert (body["exit_code"], body["stdout"], body["stderr"]) == (0, "Linux riscv64\n", "")

    # a stopped VM: exec says so and runs nothing
    daemon.cli("stop", "rv", "--force", check=True)
    r = vessel(daemon, "exec", "rv", "--", "true")
    assert r.returncode != 0 and "running" in r.stderr
    # a restart keeps the VM's CID
    daemon.cli("start", "rv", check=True)
    assert int(daemon.list()["rv"]["config"]["volatile.vsock_cid"]) == cid
    r = vessel(daemon, "exec", "rv", "--", "echo", "again")
    assert (r.returncode, r.stdout) == (0, "again\n")
    daemon.cli("delete", "--force", "rv", check=True)


def test_exec_in_a_clone_of_a_running_riscv64_vm(daemon, rv_guest_files):
    """A copy of a running VM is a clone of its state with a CID of its own;
    the agent that was listening answers in the clone, on the clone's socket."""
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    daemon.cli("launch", "debian-rv", "rv", "-c", "limits.memory=256MiB", check=True)
    r = vessel(daemon, "exec", "rv", "--", "true")  # the agent listens
    assert r.returncode == 0, r.stderr
    cid = int(daemon.list()["rv"]["config"]["volatile.vsock_cid"])
    daemon.cli("copy", "rv", "rv2", check=True)
    daemon.cli("start", "rv2", check=True)
    rv2 = daemon.list()["rv2"]
    cid2 = int(rv2["config"]["volatile.vsock_cid"])
    assert cid2 >= 3 and cid2 != cid
    cmd = Path(f"/proc/{rv2['pid']}/cmdline").read_bytes().split(b"\0")
    assert cmd[2] == b"restore" and cmd[cmd.index(b"--vsock") + 1] == str(cid2).encode()
    r = vessel(daemon, "exec", "rv2", "--", "echo", "from the clone")
    assert (r.returncode, r.stdout, r.stderr) == (0, "from the clone\n", "")
    daemon.cli("delete", "--force", "rv", "rv2", check=True)


def test_riscv64_vm_cpus_change_live(daemon, rv_guest_files):
    """limits.cpu of a running riscv64 VM changes live (its harts through the
    VM's API, onlined by the guest agent), as LXD's limits.cpu does; beyond
    the VM holds it is kept for the next start, said in one line."""
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    daemon.cli("launch", "debian-rv", "rc", "-c", "limits.memory=256MiB", "-c", "limits.cpu=1",
               check=True)
    online = ["exec", "rc", "--", "cat", "/sys/devices/system/cpu/online"]
    assert vessel(daemon, *online).stdout == "0\n"  # waits for the agent
    r = daemon.cli("config", "set", "rc", "limits.cpu=2", check=True)
    assert "applied now" in r.stdout, r.stdout
    assert vessel(daemon, *online).stdout == "0-1\n"
    r = daemon.cli("config", "set", "rc", "limits.cpu=1", check=True)
    assert "applied now" in r.stdout
    assert vessel(daemon, *online).stdout == "0\n"
    # more than the VM holds: kept for the next start, and said so in one line
    r = daemon.cli("config", "set", "rc", "limits.cpu=64")
    lines = [l for l in r.stderr.splitlines() if l.strip()]
    assert r.returncode != 0 and len(lines) == 1 and "next start" in lines[0], r.stderr
    assert daemon.list()["rc"]["config"]["limits.cpu"] == "64"
    assert vessel(daemon, *online).stdout == "0\n"
    r = daemon.cli("config", "set", "rc", "limits.cpu=999")
    assert r.returncode != 0 and "limits.cpu" in r.stderr
    daemon.cli("delete", "--force", "rc", check=True)


def jailed_vm_process(pid: int) -> int:
    """The VM process of a jailed `vessel vm run|restore` (pid): the outer
    process's one child, pid 1 of its own PID namespace."""
    kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    assert len(kids) == 1, kids
    return int(kids[0])


def status(pid: int) -> dict:
    out = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        k, _, v = line.partition(":")
        out[k] = v.split()
    return out


@pytest.mark.parametrize("jail", ["on", "off"])
def test_daemon_vms_are_confined(tmp_path, rv_guest_files, monkeypatch, jail):
    """Every VM the daemon starts is landlocked to its own files and, unless
    the daemon runs with --vm-jail=off, jailed: seen from outside its VM
    process runs as nobody, without capabilities, under seccomp, in
    namespaces of its own with a root holding only its files; from inside
    (VESSEL_TEST_LANDLOCK_PROBE, a test-only hook) a host file outside its
    instance directory cannot be opened. A snapshot, a copy (whose state the
    source VM writes) and its restore still work."""
    if os.geteuid() != 0:
        pytest.skip("the daemon tests run as root")
    from conftest import Daemon
    secret = tmp_path / "host-secret"
    secret.write_text("not for guests\n")
    monkeypatch.setenv("VESSEL_TEST_LANDLOCK_PROBE", str(secret))
    d = Daemon(tmp_path / "state", tmp_path / "vessel.sock").start("--vm-jail", jail)
    try:
        kernel, initrd = rv_guest_files
        d.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
              initrd, "--alias", "debian-rv", check=True)
        d.cli("launch", "debian-rv", "rv", "-c", "limits.memory=256MiB", check=True)
        inst = d.list()["rv"]
        cmd = Path(f"/proc/{inst['pid']}/cmdline").read_bytes().split(b"\0")
        assert b"--landlock=on" in cmd
        vmmlog = d.state / "instances/rv/vmm.log"
        # the probe runs once the process is restricted: refused (in a jail
        # the file is not even there)
        line = [l for l in vmmlog.read_text().splitlines() if "landlock probe" in l]
        assert line == [f"vessel: warning: landlock probe: open {secret}: " +
                        ("No such file or directory" if jail == "on" else "Permission denied")]
        if jail == "on":
            assert b"--jail" in cmd
            vm = jailed_vm_process(inst["pid"])
            st = status(vm)
            assert st["Uid"] == ["65534"] * 4 and st["Gid"] == ["65534"] * 4
            assert st["CapEff"] == ["0000000000000000"] and st["CapPrm"] == ["0000000000000000"]
            assert st["NoNewPrivs"] == ["1"] and st["Seccomp"] == ["2"]
            for ns in ("mnt", "pid", "ipc", "uts"):
                assert os.readlink(f"/proc/{vm}/ns/{ns}") != os.readlink(f"/proc/self/ns/{ns}")
            root = Path(f"/proc/{vm}/root")
            assert not (root / "etc/passwd").exists() and not (root / str(tmp_path)[1:] /
                                                                "host-secret").exists()
            assert (root / str(d.state / "instances/rv")[1:] / "api.sock").exists()
        else:
            assert b"--jail" not in cmd
            st = status(inst["pid"])
            assert st["Seccomp"] == ["2"]
        # exec, a snapshot, a copy of the running VM (its state written by
        # the source, under landlock beneath its own directory) and a restore
        r = d.cli("exec", "rv", "--", "echo", "confined", timeout=180)
        assert (r.returncode, r.stdout) == (0, "confined\n"), r.stderr
        d.cli("snapshot", "rv", "s1", check=True, timeout=120)
        d.cli("copy", "rv", "rv2", check=True, timeout=120)
        d.cli("start", "rv2", check=True, timeout=120)
        r = d.cli("exec", "rv2", "--", "echo", "copied", timeout=180)
        assert (r.returncode, r.stdout) == (0, "copied\n"), r.stderr
        d.cli("restore", "rv", "s1", check=True, timeout=120)
        assert d.list()["rv"]["state"] == "running"
        r = d.cli("exec", "rv", "--", "echo", "restored", timeout=180)
        assert (r.returncode, r.stdout) == (0, "restored\n"), r.stderr
        assert not list((d.state / "instances/rv").glob(".snapshot-*"))
    finally:
        for name in list(d.list()) if d.proc.poll() is None else []:
            d.cli("delete", "--force", name, timeout=60)
        d.kill(signal.SIGTERM)
        subprocess.run(["umount", "-R", "-l", str(tmp_path / "state")], capture_output=True)
