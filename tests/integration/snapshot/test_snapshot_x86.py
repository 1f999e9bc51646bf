"""Snapshot, restore, revert and clones of the x86 KVM machine on /dev/kvm
(tier 1): vCPU, irqchip, PIT and device state round trip through a new
process, shown by the test guest's own serial output."""
import struct
import time

import pytest

from snaputil import api, rewrite_vmstate, vessel, wait_for, x86_guest_dir, restore_stdio


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
