"""Control API, snapshot, restore, revert, diff snapshots, clones and bad
snapshots, shown by a counter guest's own output on the emulated riscv64
machine (its state is all vessel's own, so no /dev/kvm is needed)."""
import json
import os
import struct
import subprocess
import time

import pytest

from snaputil import api, continues, counts, rewrite_vmstate, vessel, wait_for

RUN = ("vm", "run", "--arch", "riscv64", "--memory", "64M")


def run_counter(vms, rv_counter, name="src", *extra):
    vm = vms(name, *RUN, "--kernel", rv_counter, *extra)
    vm.wait_count(3)
    return vm


def snapshot_paused(vm, path, *extra):
    """Pause, snapshot (stays paused), return the console text at that moment."""
    assert api("pause", vm.sock)["state"] == "paused"
    r = api("snapshot", vm.sock, *extra, path)
    assert r["path"] == str(path)
    return r, vm.text()


def restored_counts(vms, name, snap, n=5, *extra):
    vm = vms(name, "vm", "restore", snap, *extra)
    vm.wait_count(n)
    return vm


def test_api_info_pause_resume(vms, rv_counter):
    vm = run_counter(vms, rv_counter)
    info = api("info", vm.sock)
    assert info["state"] == "running" and info["arch"] == "riscv64"
    assert info["config"]["memory"] == 64 << 20
    assert api("pause", vm.sock)["state"] == "paused"
    before = counts(vm.text())
    time.sleep(0.3)
    assert counts(vm.text()) == before, "the counter advanced while paused"
    # plain curl speaks the same API
    out = subprocess.run(["curl", "-sf", "--unix-socket", str(vm.sock), "http://localhost/vm"],
                         capture_output=True, text=True, check=True).stdout
    assert json.loads(out)["state"] == "paused"
    assert api("resume", vm.sock)["state"] == "running"
    wait_for(lambda: len(counts(vm.text())) > len(before) + 2, what="counting after resume")
    assert vm.stop() == 0


def test_restore_continues_and_reverts_identically(vms, rv_counter, tmp_path):
    src = run_counter(vms, rv_counter)
    snap = tmp_path / "snap"
    _, at_snapshot = snapshot_paused(src, snap)
    src.stop()
    # a new process continues the guest where it stopped: no reboot banner,
    # the counter goes on from the last value it printed
    a = restored_counts(vms, "restore-a", snap)
    text_a = a.text()
    assert "counter guest up" not in text_a
    continues(at_snapshot, text_a)
    # break the restored guest ('x' resets its counter)... here: restore again
    # and compare: two restores start identically
    a.stop()
    b = restored_counts(vms, "restore-b", snap)
    b.stop()
    n = min(len(counts(text_a)), len(counts(b.text())))
    assert n >= 5 and counts(text_a)[:n] == counts(b.text())[:n]
    assert sorted(os.listdir(snap)) == ["memory", "vmstate"]


def test_diff_snapshot(vms, rv_counter, tmp_path):
    src = run_counter(vms, rv_counter)
    full, diff = tmp_path / "full", tmp_path / "diff"
    r_full = api("snapshot", src.sock, full)
    assert r_full["type"] == "full"
    n0 = len(counts(src.text()))
    wait_for(lambda: len(counts(src.text())) > n0 + 3, what="more counting")
    r_diff, at_diff = snapshot_paused(src, diff, "--diff")
    assert r_diff["type"] == "diff"
    assert r_diff["memory_bytes"] <= r_full["memory_bytes"]
    # the diff holds only the dirtied pages
    assert os.stat(diff / "memory").st_blocks * 512 <= os.stat(full / "memory").st_blocks * 512
    src.stop()
    vm = restored_counts(vms, "from-diff", diff)
    vm.stop()
    continues(at_diff, vm.text())
    # a diff needs its parent
    os.rename(full, tmp_path / "moved")
    p = vessel("vm", "restore", diff, check=False)
    assert p.returncode != 0 and "full" in p.stderr


def test_clones(vms, rv_counter, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    src = run_counter(vms, rv_counter, "src", "--net", f"user,hostfwd=tcp:127.0.0.1:{port}-:23",
                      "--vsock", "7", "--vsock-uds", tmp_path / "vsock.sock")
    snap = tmp_path / "snap"
    _, at_snapshot = snapshot_paused(src, snap)
    # the source (paused) keeps its host port: the clones leave hostfwd out
    out = tmp_path / "clones"
    p = vessel("vm", "clone", snap, "--count", "3", "--dir", out)
    src.stop()
    lines = p.stdout.strip().splitlines()
    assert len(lines) == 3
    macs, cids = [], []
    try:
        for i in range(3):
            con = out / f"clone-{i}" / "console.log"
            wait_for(lambda: len(counts(con.read_text())) >= 3 if con.exists() else False,
                     what=f"clone {i} counting")
            continues(at_snapshot, con.read_text())
            info = api("info", out / f"clone-{i}" / "api.sock")
            assert info["state"] == "running"
            macs.append(info["config"]["nets"][0]["mac"])
            assert info["config"]["nets"][0]["hostfwd"] == []
            cids.append(info["config"]["vsock_cid"])
    finally:
        for i in range(3):
            vessel("vm", "stop", "--api-sock", out / f"clone-{i}" / "api.sock", check=False)
    pids = [int((out / f"clone-{i}" / "pid").read_text()) for i in range(3)]
    assert len(set(pids)) == 3
    assert len(set(macs)) == 3, f"clones share a MAC: {macs}"
    assert len(set(cids)) == 3 and 7 not in cids, f"vsock CIDs: {cids}"


def test_failed_snapshot_leaves_vm_running(vms, rv_counter, tmp_path):
    src = run_counter(vms, rv_counter)
    (tmp_path / "exists").mkdir()
    p = vessel("vm", "snapshot", "--api-sock", src.sock, tmp_path / "exists", check=False)
    assert p.returncode == 1 and "already exists" in p.stderr
    p = vessel("vm", "snapshot", "--api-sock", src.sock, "/proc/vessel-no/such", check=False)
    assert p.returncode == 1
    p = vessel("vm", "snapshot", "--api-sock", src.sock, "--diff", tmp_path / "d", check=False)
    assert p.returncode == 1 and "full snapshot" in p.stderr
    assert api("info", src.sock)["state"] == "running"
    n = len(counts(src.text()))
    wait_for(lambda: len(counts(src.text())) > n + 2, what="the VM still counting")
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".")], "temp dir left behind"
    assert not (tmp_path / "d").exists()
    src.stop()


@pytest.fixture
def good_snapshot(vms, rv_counter, tmp_path):
    disk = tmp_path / "disk.raw"
    disk.write_bytes(b"\0" * (1 << 20))
    src = run_counter(vms, rv_counter, "src", "--disk", disk)
    snap = tmp_path / "snap"
    snapshot_paused(src, snap)
    src.stop()
    return snap, disk


def refused(snap, *extra):
    p = vessel("vm", "restore", snap, "--console", f"file:{snap}.console", *extra, check=False)
    assert p.returncode == 1, p.stderr
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert len(lines) == 1 and lines[0].startswith("vessel: "), p.stderr
    # refused before any vCPU ran: the guest printed nothing
    con = snap.parent / f"{snap.name}.console"
    assert not con.exists() or con.read_text() == ""
    return lines[0]


def test_bad_snapshots_refused(good_snapshot):
    snap, disk = good_snapshot
    state = snap / "vmstate"
    good = state.read_bytes()

    assert "cannot be restored on an x86_64 machine" in refused(snap, "--arch", "x86_64")

    state.write_bytes(good[:-50])
    assert "truncated" in refused(snap)

    bad = bytearray(good)
    bad[-20] ^= 0xff
    state.write_bytes(bytes(bad))
    assert "CRC mismatch" in refused(snap)

    state.write_bytes(good)
    rewrite_vmstate(state, lambda h, p: h.__setitem__(slice(8, 12), struct.pack("<I", 99)))
    assert "version 99 is newer" in refused(snap)

    state.write_bytes(good)
    os.truncate(snap / "memory", 4096)
    assert "memory file" in refused(snap)
    os.truncate(snap / "memory", 64 << 20)

    with open(disk, "r+b") as f:
        f.write(b"changed")
    assert "changed since the snapshot" in refused(snap)


def test_api_library_loads_on_first_use(vms, rv_counter, tmp_path):
    """The API socket is up at once, but libmicrohttpd (and its TLS
    dependencies) is only mapped once a client connects: a restore does not
    load it on its way to running, a VM nobody asks does not carry it."""
    src = run_counter(vms, rv_counter)
    snap = tmp_path / "snap"
    snapshot_paused(src, snap)
    src.stop()
    vm = restored_counts(vms, "restored", snap)
    maps = f"/proc/{vm.p.pid}/maps"
    assert vm.sock.exists() and "libmicrohttpd" not in open(maps).read()
    assert api("info", vm.sock)["state"] == "running"
    assert "libmicrohttpd" in open(maps).read()
    vm.stop()
