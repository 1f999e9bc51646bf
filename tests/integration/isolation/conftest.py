"""Fixtures for the isolation tests (seccomp, landlock, the jail): the
riscv64 counter guest and VM driver of the snapshot tests, and the board
tests' helpers, so these need no /dev/kvm."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "snapshot"))
sys.path.insert(0, str(HERE.parent / "riscv"))
from rvhelpers import console, rv_guest, sbi_payload  # noqa: E402,F401
from snaputil import VM  # noqa: E402

CROSS = "riscv64-linux-gnu-"


@pytest.fixture(scope="session")
def rv_counter(tmp_path_factory) -> Path:
    """The snapshot tests' S-mode counter guest: 'count %08x' forever."""
    if not shutil.which(CROSS + "gcc"):
        pytest.fail("riscv64-linux-gnu-gcc is missing (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("rvcounter")
    elf, bin_ = d / "counter.elf", d / "counter.bin"
    subprocess.run([CROSS + "gcc", "-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d",
                    "-Wl,-Ttext=0x80200000", "-Wl,--build-id=none", "-o", str(elf),
                    str(HERE.parent / "snapshot/rv_counter.S")], check=True, capture_output=True)
    subprocess.run([CROSS + "objcopy", "-O", "binary", str(elf), str(bin_)], check=True)
    return bin_


@pytest.fixture
def vms(tmp_path):
    made = []

    def start(name, *argv):
        vm = VM(tmp_path, name, argv)
        made.append(vm)
        return vm
    yield start
    for vm in made:
        if vm.p.poll() is None:
            vm.p.kill()
            vm.p.wait()
