"""The x86 KVM machine under its seccomp lists (src/jail/seccomp_vm.c:
KVM_RUN and the interrupt ioctls on vCPU threads): the tier-1 test guest
runs its tests with the filters on, and a vCPU thread that opens a file is
stopped with the message. Skipped, loudly, without a usable /dev/kvm."""
import os
import signal
import subprocess

import pytest

from snaputil import x86_guest_dir
from vesselpaths import vessel_path


@pytest.fixture(scope="module")
def tier1():
    return x86_guest_dir() / "guest.elf"


def run(guest, *args, env=None):
    return subprocess.run([str(vessel_path()), "vm", "run", "--kernel", str(guest), *args],
                          capture_output=True, text=True, timeout=60, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("test", ["hello", "smp"])
def test_tier1_guest_under_seccomp(kvm, tier1, test):
    p = run(tier1, "--append", f"test={test}", "--cpus", "2")
    assert p.returncode == 0, p.stderr
    assert "seccomp" not in p.stderr


def test_vcpu_thread_that_opens_a_file_is_stopped(kvm, tier1):
    env = dict(os.environ, VESSEL_TEST_SECCOMP_PROBE="open")
    p = run(tier1, "--append", "test=hello", env=env)
    assert p.returncode == -signal.SIGSYS, p
    assert "thread vcpu0 (vcpu) made forbidden system call openat(" in p.stderr
