"""Snapshot, restore, revert and clones of the x86 KVM machine on /dev/kvm
(tier 1): vCPU, irqchip, PIT and device state round trip through a new
process, shown by the test guest's own serial output."""
import os
import struct
import subprocess
import time

import pytest

from snaputil import (api, continues, counts, restore_stdio, rewrite_vmstate, vessel, vessel_path,
                      wait_for, x86_guest_dir)


@pytest.fixture(scope="module")
def guest():
    return x86_guest_dir() / "guest.elf"


@pytest.fixture
def echo_snapshot(kvm, vms, guest, tmp_path):
    """An x86 guest waiting for serial input, snapshotted and stopped."""
    src = vms("src", "vm", "run", "--kernel", guest, "--append", "test=echo", "--memory",
              "256M", "--cpus", "2")
    wait_for(lambda: "echo: ready" in src.text(), what="the echo guest")
    snap = tmp_path / "snap"
    r = api("snapshot", src.sock, snap)
    assert r["type"] == "full" and r["memory_bytes"] > 0
    src.stop()
    return snap


def test_restore_continues_and_reverts(echo_snapshot):
    # the restored guest is mid-test: no boot banner, it answers its input
    for word in (b"first.", b"again."):
        rc, out, err = restore_stdio(echo_snapshot, send=word)
        assert rc == 0, err
        assert "vessel test guest" not in out
        assert word[:-1].decode().upper() in out and "echo: done" in out


def test_clones(echo_snapshot, tmp_path):
    out = tmp_path / "clones"
    p = vessel("vm", "clone", echo_snapshot, "--count", "3", "--dir", out)
    assert len(p.stdout.splitlines()) == 3
    try:
        infos = [api("info", out / f"clone-{i}" / "api.sock") for i in range(3)]
        assert all(i["state"] == "running" and i["arch"] == "x86_64" for i in infos)
        assert len({i["pid"] for i in infos}) == 3
    finally:
        for i in range(3):
            vessel("vm", "stop", "--api-sock", out / f"clone-{i}" / "api.sock", check=False)


def test_diff_snapshot_is_small(kvm, vms, guest, tmp_path):
    src = vms("src", "vm", "run", "--kernel", guest, "--append", "test=echo", "--memory", "256M")
    wait_for(lambda: "echo: ready" in src.text(), what="the echo guest")
    full = api("snapshot", src.sock, tmp_path / "full")
    time.sleep(0.2)
    diff = api("snapshot", src.sock, "--diff", tmp_path / "diff")
    src.stop()
    assert diff["type"] == "diff" and diff["memory_bytes"] < full["memory_bytes"]
    rc, out, err = restore_stdio(tmp_path / "diff", send=b"d.")
    assert rc == 0 and "D" in out and "echo: done" in out, err


def test_x86_snapshot_refused_elsewhere(echo_snapshot):
    p = vessel("vm", "restore", echo_snapshot, "--arch", "riscv64", check=False)
    assert p.returncode == 1
    assert "taken on an x86_64 machine (KVM) and cannot be restored on a riscv64" in p.stderr


def test_missing_cpu_feature_refused(echo_snapshot):
    def every_leaf7_feature(hdr, payload):
        off = struct.unpack_from("<Q", hdr, 24 + 8)[0] - 128  # CPU blob
        struct.pack_into("<I", payload, off + 16 + 4, 0xffffffff)  # leaf 7.0 ebx
    rewrite_vmstate(echo_snapshot / "vmstate", every_leaf7_feature)
    rc, out, err = restore_stdio(echo_snapshot, send=b"x.")
    assert rc == 1 and out == ""
    assert "snapshot needs CPU feature" in err and "CPUID 0x7.0 ebx" in err


@pytest.fixture
def counter_snapshot(kvm, vms, guest, tmp_path):
    """The x86 counter guest (16 MiB dirtied, 2 vCPUs), paused and snapshotted."""
    src = vms("src", "vm", "run", "--kernel", guest, "--append", "test=counter touch=16",
              "--memory", "256M", "--cpus", "2")
    src.wait_count(5)
    snap = tmp_path / "snap"
    assert api("pause", src.sock)["state"] == "paused"
    r = api("snapshot", src.sock, snap)
    assert r["memory_bytes"] >= 16 << 20
    # read the console only after vessel exited: output the guest made before
    # the pause may still sit in the console buffer until then (seen under load)
    src.stop()
    at = src.text()
    return snap, at


def test_counter_continues_and_revert_is_whole(counter_snapshot, vms):
    snap, at = counter_snapshot
    a = vms("a", "vm", "restore", snap)
    a.wait_count(5)
    continues(at, a.text())
    assert "vessel test guest" not in a.text()
    a.stop()
    # break a restored guest: 'x' resets its counter
    broken = subprocess.Popen([str(vessel_path()), "vm", "restore", str(snap), "--console",
                               "stdio"], stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        broken.stdin.write(b"x")
        broken.stdin.flush()
        seen = b""
        deadline = time.monotonic() + 20
        while b"guest broken" not in seen and time.monotonic() < deadline:
            seen += os.read(broken.stdout.fileno(), 4096)
        assert b"guest broken" in seen
    finally:
        broken.kill()
        broken.wait()
    # restore again: it is whole, and starts exactly like the first time
    b = vms("b", "vm", "restore", snap)
    b.wait_count(5)
    b.stop()
    n = min(len(counts(a.text())), len(counts(b.text())))
    assert n >= 5 and counts(a.text())[:n] == counts(b.text())[:n]
    assert "guest broken" not in b.text()


def test_counter_clones(counter_snapshot, tmp_path):
    snap, at = counter_snapshot
    out = tmp_path / "clones"
    vessel("vm", "clone", snap, "--count", "4", "--dir", out)
    try:
        for i in range(4):
            con = out / f"clone-{i}" / "console.log"
            wait_for(lambda: len(counts(con.read_text())) >= 3 if con.exists() else False,
                     what=f"clone {i} counting")
            continues(at, con.read_text())
    finally:
        for i in range(4):
            vessel("vm", "stop", "--api-sock", out / f"clone-{i}" / "api.sock", check=False)


def test_diff_snapshot_of_a_restored_vm(counter_snapshot, vms, tmp_path):
    """The first diff of a restored VM names the snapshot it came from as
    its parent; restoring that diff continues the counter from it."""
    snap, _ = counter_snapshot
    a = vms("a", "vm", "restore", snap)
    a.wait_count(5)
    assert api("pause", a.sock)["state"] == "paused"
    d = api("snapshot", a.sock, "--diff", tmp_path / "d")
    assert d["type"] == "diff"
    a.stop()
    at = a.text()
    assert os.stat(tmp_path / "d/memory").st_blocks < os.stat(snap / "memory").st_blocks / 4
    b = vms("b", "vm", "restore", tmp_path / "d")
    b.wait_count(5)
    b.stop()
    continues(at, b.text())
