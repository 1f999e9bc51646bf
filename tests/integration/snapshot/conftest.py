"""Fixtures for snapshot / restore / clone tests: a counter guest (the emulated
riscv64 board runs it at once, so these tests need no /dev/kvm) and a driver
for VM processes with a console file and an API socket (snaputil.py)."""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from snaputil import VM  # noqa: E402

CROSS = "riscv64-linux-gnu-"


@pytest.fixture(scope="session")
def rv_counter(tmp_path_factory) -> Path:
    """S-mode riscv64 payload: prints 'count %08x' forever (the counter lives
    in a register), 'x' on the console resets it ("breaks" the guest)."""
    if not shutil.which(CROSS + "gcc"):
        pytest.fail("riscv64-linux-gnu-gcc is missing (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("rvcounter")
    elf, bin_ = d / "counter.elf", d / "counter.bin"
    subprocess.run([CROSS + "gcc", "-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d",
                    "-Wl,-Ttext=0x80200000", "-Wl,--build-id=none", "-o", str(elf),
                    str(HERE / "rv_counter.S")], check=True, capture_output=True)
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
