"""Landlock (src/jail/landlock.c): with --landlock=on a VM process opens
only its own files. Shown with the control API, which writes snapshots
where it is asked: beneath --landlock-rw or the API socket's directory it
may, anywhere else the kernel refuses (and the VM runs on)."""
import os
import subprocess

import pytest

from snaputil import api, counts, vessel, wait_for
from vesselpaths import vessel_path

RUN = ("vm", "run", "--arch", "riscv64", "--memory", "64M")


def landlock_abi():
    import ctypes
    libc = ctypes.CDLL(None, use_errno=True)
    # landlock_create_ruleset(NULL, 0, LANDLOCK_CREATE_RULESET_VERSION)
    v = libc.syscall(444, None, 0, 1)
    return v if v > 0 else 0


pytestmark = pytest.mark.skipif(landlock_abi() < 1, reason="the kernel has no landlock")


def test_snapshot_outside_the_vms_directories_is_refused(vms, rv_counter, tmp_path):
    allowed = tmp_path / "snaps"
    outside = tmp_path / "outside"
    allowed.mkdir()
    outside.mkdir()
    vm = vms("src", *RUN, "--kernel", rv_counter, "--landlock=on", "--landlock-rw", allowed)
    vm.wait_count(3)
    assert api("snapshot", vm.sock, allowed / "s1")["path"] == str(allowed / "s1")
    assert sorted(os.listdir(allowed / "s1")) == ["memory", "vmstate"]
    # beneath the API socket's directory (where vesseld keeps an instance's snapshots)
    api("snapshot", vm.sock, vm.dir / "s2")
    p = vessel("vm", "snapshot", "--api-sock", vm.sock, outside / "s3", check=False)
    assert p.returncode != 0 and "Permission denied" in p.stderr, p.stderr
    assert os.listdir(outside) == []
    # the VM runs on and still answers
    before = len(counts(vm.text()))
    wait_for(lambda: len(counts(vm.text())) > before + 2, what="counting after the refusal")
    assert api("info", vm.sock)["state"] == "running"
    assert vm.stop() == 0

    # a restore under landlock reads its snapshot and writes a diff next to it
    r = vms("restored", "vm", "restore", allowed / "s1", "--landlock=on", "--landlock-rw",
            allowed)
    r.wait_count(3)
    api("snapshot", r.sock, "--diff", allowed / "d1")
    assert r.stop() == 0


def probe(rv_counter, tmp_path, path, *extra):
    """VESSEL_TEST_LANDLOCK_PROBE (a test-only hook): right after the process
    restricts itself it tries to read path and logs the answer."""
    env = dict(os.environ, VESSEL_TEST_LANDLOCK_PROBE=str(path))
    log = tmp_path / f"c{len(list(tmp_path.glob('c*.log')))}.log"
    p = subprocess.Popen([str(vessel_path()), *RUN, "--kernel", str(rv_counter),
                          "--console", f"file:{log}", *extra], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_for(lambda: log.exists() and len(counts(log.read_text())) >= 1, what="the guest")
    finally:
        p.terminate()
        _, err = p.communicate(timeout=10)
    return [l for l in err.splitlines() if "landlock probe" in l]


def test_files_outside_are_refused_to_the_process(rv_counter, tmp_path):
    """Root or not, the process cannot open a host file it was not given,
    and can open its own."""
    assert probe(rv_counter, tmp_path, "/etc/passwd", "--landlock=on") == [
        "vessel: warning: landlock probe: open /etc/passwd: Permission denied"]
    assert "allowed" in probe(rv_counter, tmp_path, rv_counter, "--landlock=on")[0]
    (tmp_path / "host-file").write_text("x")
    assert "Permission denied" in probe(rv_counter, tmp_path, tmp_path / "host-file",
                                        "--landlock=on")[0]
    assert probe(rv_counter, tmp_path, "/etc/passwd") == []  # off: no landlock, no probe


def test_landlock_off_by_default_allows_any_directory(vms, rv_counter, tmp_path):
    vm = vms("src", *RUN, "--kernel", rv_counter)
    vm.wait_count(3)
    api("snapshot", vm.sock, tmp_path / "anywhere")
    assert vm.stop() == 0
