"""Disks across snapshots: restores and clones write their own qcow2 overlay
on the snapshot's image (which stays untouched and passes `qemu-img check`),
and `vessel vm snapshot --disk` freezes a qcow2 disk into the snapshot while
the VM goes on writing a new overlay."""
import json
import subprocess

from snaputil import api, continues, counts, vessel, wait_for

RUN = ("vm", "run", "--arch", "riscv64", "--memory", "64M")


def qemu_img(*args):
    return subprocess.run(["qemu-img", *map(str, args)], capture_output=True, text=True,
                          check=True).stdout


def test_clones_get_own_overlays(vms, rv_counter, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\xab" * (4 << 20))
    src = vms("src", *RUN, "--kernel", rv_counter, "--disk", base)
    src.wait_count(2)
    snap = tmp_path / "snap"
    api("snapshot", src.sock, snap)
    src.stop()
    before = base.read_bytes()
    out = tmp_path / "clones"
    vessel("vm", "clone", snap, "--count", "2", "--dir", out)
    try:
        for i in range(2):
            ov = out / f"clone-{i}" / "disk0.qcow2"
            info = json.loads(qemu_img("info", "--output=json", ov))
            assert info["format"] == "qcow2"
            assert info["full-backing-filename"] == str(base.resolve())
            assert info["backing-filename-format"] == "raw"
            cfg = api("info", out / f"clone-{i}" / "api.sock")["config"]
            assert cfg["disks"][0]["path"] == str(ov)
    finally:
        for i in range(2):
            vessel("vm", "stop", "--api-sock", out / f"clone-{i}" / "api.sock", check=False)
    for i in range(2):
        qemu_img("check", out / f"clone-{i}" / "disk0.qcow2")
        qemu_img("compare", "-F", "raw", out / f"clone-{i}" / "disk0.qcow2", base)
    assert base.read_bytes() == before, "the snapshot's disk was written"


def test_snapshot_freezes_qcow2_disk(vms, rv_counter, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (4 << 20))
    disk = tmp_path / "vm.qcow2"
    qemu_img("create", "-q", "-f", "qcow2", "-b", base, "-F", "raw", disk)
    src = vms("src", *RUN, "--kernel", rv_counter, "--disk", disk)
    src.wait_count(2)
    snap = tmp_path / "snap"
    r = vessel("vm", "snapshot", "--api-sock", src.sock, "--disk", snap)
    snap_id = json.loads(r.stdout)["id"]
    after = tmp_path / f"vm.qcow2.after-{snap_id[:8]}.qcow2"
    # the VM now writes a new layer on top of the frozen image
    live = api("info", src.sock)["config"]["disks"][0]["path"]
    assert live == str(after)
    chain = json.loads(qemu_img("info", "--output=json", "--backing-chain", "-U", after))
    assert [c["filename"] for c in chain] == [str(after), str(disk), str(base)]
    # a second disk snapshot stacks another layer; both snapshots stay restorable
    snap2 = tmp_path / "snap2"
    vessel("vm", "snapshot", "--api-sock", src.sock, "--disk", snap2)
    n = len(counts(src.text()))
    wait_for(lambda: len(counts(src.text())) > n, what="the VM still running")
    src.stop()
    for f in (disk, after):
        qemu_img("check", f)
    for s in (snap, snap2):
        vm = vms(f"restore-{s.name}", "vm", "restore", s)
        vm.wait_count(2)
        vm.stop()


def test_raw_disk_cannot_be_frozen(vms, rv_counter, tmp_path):
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    src = vms("src", *RUN, "--kernel", rv_counter, "--disk", base)
    src.wait_count(2)
    p = vessel("vm", "snapshot", "--api-sock", src.sock, "--disk", tmp_path / "s", check=False)
    assert p.returncode == 1 and "qcow2" in p.stderr
    assert not (tmp_path / "s").exists()
    assert api("info", src.sock)["state"] == "running"
    src.stop()


def test_snapshot_of_restored_vm_keeps_its_overlay(vms, rv_counter, tmp_path):
    """A restore without --overlay-dir writes a temporary overlay, removed at
    exit, unless a snapshot of the restored VM needs it."""
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    src = vms("src", *RUN, "--kernel", rv_counter, "--disk", base)
    src.wait_count(2)
    api("snapshot", src.sock, tmp_path / "s1")
    src.stop()
    r = vms("restored", "vm", "restore", tmp_path / "s1")
    r.wait_count(2)
    overlay = api("info", r.sock)["config"]["disks"][0]["path"]
    assert overlay.startswith("/var/tmp/vessel-restore-")
    api("pause", r.sock)
    api("snapshot", r.sock, tmp_path / "s2")
    before = r.text()
    r.stop()
    try:
        again = vms("again", "vm", "restore", tmp_path / "s2")
        again.wait_count(2)
        continues(before, again.text())
        again.stop()
    finally:
        subprocess.run(["rm", "-rf", overlay.rsplit("/", 1)[0]])
