"""Shared folders over virtio-fs on the riscv64 board: `vm run --share
DIR:TAG` starts Debian's virtiofsd and plugs a virtio-fs device (a
vhost-user frontend) into a virtio-mmio slot; the Linux guest mounts the
tag. Files cross both ways; a virtiofsd killed mid-run makes the guest's
file operations fail with EIO while vessel goes on (and says so once); a
snapshot of such a VM is refused with a clear error."""
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from rvhelpers import vessel_cli
from vesselpaths import vessel_path

VIRTIOFSD = Path(os.environ.get("VESSEL_VIRTIOFSD", "/usr/lib/qemu/virtiofsd"))
MARKER = "VESSEL-RISCV-READY"


@pytest.fixture(autouse=True)
def need_virtiofsd():
    if not VIRTIOFSD.exists():
        pytest.fail(f"{VIRTIOFSD} is missing (apt-get install qemu-system-common; "
                    "scripts/setup.sh does)")


def boot(console, rv_guest, share: Path, *extra):
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0", "--share", f"{share}:hostshare", *extra)
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    out = c.command("mount virtiofs hostshare /mnt")
    assert "mount: hostshare on /mnt ok" in out, out
    return c


def daemons_of(share: Path):
    """PIDs of the virtiofsd processes serving share (the sandbox's parent
    and its child in a pid namespace)."""
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            argv = (d / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"virtiofsd") and f"source={share}".encode() in argv:
            pids.append(int(d.name))
    return pids


def test_files_cross_both_ways(rv_guest, console, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "from-host.txt").write_text("written on the host before boot\n")
    c = boot(console, rv_guest, share)
    out = c.command("cat /mnt/from-host.txt")
    assert "written on the host before boot" in out, out
    out = c.command("write /mnt/from-guest.txt written in the guest")
    assert "write:" not in out, out
    assert (share / "from-guest.txt").read_text() == "written in the guest\n"
    # a file the host makes while the guest runs
    (share / "later.txt").write_text("written on the host at run time\n")
    assert "written on the host at run time" in c.command("cat /mnt/later.txt")
    assert "later.txt" in c.command("ls /mnt")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
    # virtiofsd went with the VM
    assert not daemons_of(share)


def test_virtiofsd_killed(rv_guest, console, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    (share / "a.txt").write_text("before the kill\n")
    (share / "b.txt").write_text("never read before the kill\n")
    c = boot(console, rv_guest, share)
    assert "before the kill" in c.command("cat /mnt/a.txt")
    pids = daemons_of(share)
    assert pids, "no virtiofsd serves the share"
    for pid in pids:
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.5)
    # what needs virtiofsd now fails with EIO, and does not hang
    out = c.command("cat /mnt/b.txt", timeout=60)
    assert "Input/output error" in out, out
    out = c.command("write /mnt/new.txt after the kill", timeout=60)
    assert "Input/output error" in out, out
    assert not (share / "new.txt").exists()
    # the VM goes on
    assert "\r\nstill-running\r\n" in c.command("echo still-running")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
    err = c.p.stderr.read().decode(errors="replace")
    assert err.count("virtio-fs share 'hostshare'") == 1, err
    assert err.count("fails every request") == 1, err


def test_snapshot_refused(rv_guest, console, tmp_path):
    share = tmp_path / "share"
    share.mkdir()
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, share, "--api-sock", sock)
    assert json.loads(vessel_cli("vm", "pause", "--api-sock", sock))["state"] == "paused"
    p = subprocess.run([str(vessel_path()), "vm", "snapshot", "--api-sock", str(sock),
                        str(tmp_path / "snap")], capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "cannot be snapshotted" in p.stderr, p.stderr
    assert not (tmp_path / "snap").exists(), "a refused snapshot left a directory behind"
    vessel_cli("vm", "resume", "--api-sock", sock)
    assert "\r\nafter-refusal\r\n" in c.command("echo after-refusal")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


@pytest.mark.parametrize("spec, message", [
    ("{tmp}/missing:tag", "No such file or directory"),
    ("{tmp}", "is not HOST_DIR:TAG"),
    ("{tmp}:" + "t" * 37, "is not 1 to 36 bytes long"),
    ("{tmp}/file:tag", "is not a directory"),
])
def test_bad_share(tmp_path, spec, message):
    (tmp_path / "file").write_text("x")
    p = subprocess.run([str(vessel_path()), "vm", "run", "--arch", "riscv64",
                        "--share", spec.format(tmp=tmp_path)],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL)
    assert p.returncode != 0
    assert message in p.stderr, p.stderr


def test_virtiofsd_that_never_starts(rv_guest, tmp_path):
    """A virtiofsd that exits at once: vessel says so (with its status) and
    does not start the VM."""
    p = subprocess.run([str(vessel_path()), "vm", "run", "--arch", "riscv64",
                        "--kernel", str(rv_guest / "vmlinuz"), "--share", f"{tmp_path}:tag"],
                       capture_output=True, text=True, timeout=30, stdin=subprocess.DEVNULL,
                       env=dict(os.environ, VESSEL_VIRTIOFSD="/bin/false"))
    assert p.returncode != 0
    assert "virtio-fs share 'tag': /bin/false exited (status 1) before it was ready" in p.stderr, \
        p.stderr
    assert not list(Path(os.environ.get("TMPDIR", "/tmp")).glob("vessel-fs-*/sock"))


def test_share_across_guest_reboot(rv_guest, console, tmp_path):
    """A guest reboot resets the device (vessel takes the rings back from
    virtiofsd) and the new kernel starts it again: the share mounts and
    works in the second boot too."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "f.txt").write_text("same file, second boot\n")
    c = boot(console, rv_guest, share)
    assert "same file, second boot" in c.command("cat /mnt/f.txt")
    c.send("reboot\n")
    c.expect("reboot: Restarting system", timeout=60)
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    assert "mount: hostshare on /mnt ok" in c.command("mount virtiofs hostshare /mnt")
    assert "same file, second boot" in c.command("cat /mnt/f.txt")
    c.command("write /mnt/g.txt after the reboot")
    assert (share / "g.txt").read_text() == "after the reboot\n"
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
    err = c.p.stderr.read().decode(errors="replace")
    assert "virtio-fs" not in err, err


def test_read_throughput(rv_guest, console, tmp_path):
    """A 16 MiB file read through the share (printed: the guest's own
    timing, under the emulator)."""
    share = tmp_path / "share"
    share.mkdir()
    (share / "big.bin").write_bytes(os.urandom(16 << 20))
    c = boot(console, rv_guest, share)
    out = c.command("read /mnt/big.bin", timeout=120)
    import re
    m = re.search(r"read: (\d+) bytes in (\d+) ms", out)
    assert m and int(m.group(1)) == 16 << 20, out
    ms = max(int(m.group(2)), 1)
    print(f"\nvirtio-fs on riscv64: 16 MiB read in {ms} ms ({(16 * 1000) / ms:.0f} MiB/s, cold)")
    out = c.command("read /mnt/big.bin", timeout=120)
    m = re.search(r"read: (\d+) bytes in (\d+) ms", out)
    print(f"again (guest page cache): {m.group(2)} ms")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
