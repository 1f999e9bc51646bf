"""A hostile guest (guest/hostile.c, S-mode on the emulated riscv64 board):
pseudo-random writes to every virtio-mmio and UART register, then
malformed virtqueues on virtio-blk (descriptor loops, 4 GiB lengths,
addresses outside RAM, garbage indirect tables, avail indices far ahead)
at full rate. With every isolation layer on, the VMM refuses each with a
warning, stays bounded, exits cleanly when the guest powers off, and a VM
beside it counts on undisturbed."""
import resource
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from snaputil import counts
from vesselpaths import vessel_path

HERE = Path(__file__).resolve().parent
CROSS = "riscv64-linux-gnu-"


@pytest.fixture(scope="session")
def hostile(tmp_path_factory) -> Path:
    if not shutil.which(CROSS + "gcc"):
        pytest.fail("riscv64-linux-gnu-gcc is missing (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("hostile")
    elf, bin_ = d / "hostile.elf", d / "hostile.bin"
    subprocess.run([CROSS + "gcc", "-nostdlib", "-static", "-ffreestanding", "-fno-pic",
                    "-mcmodel=medany", "-march=rv64gc", "-mabi=lp64d", "-O2",
                    "-Wl,-Ttext=0x80200000", "-Wl,--build-id=none", "-o", str(elf),
                    str(HERE / "guest/start.S"), str(HERE / "guest/hostile.c")],
                   check=True, capture_output=True)
    subprocess.run([CROSS + "objcopy", "-O", "binary", str(elf), str(bin_)], check=True)
    return bin_


@pytest.mark.parametrize("layers", [[], ["--landlock=on", "--jail", "JAIL"]],
                         ids=["seccomp", "seccomp+landlock+jail"])
def test_hostile_guest_is_refused_and_contained(hostile, vms, rv_counter, tmp_path, layers):
    neighbour = vms("neighbour", "vm", "run", "--arch", "riscv64", "--memory", "64M",
                    "--kernel", rv_counter)
    neighbour.wait_count(3)
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (16 << 20))
    console = tmp_path / "hostile.log"
    layers = [str(tmp_path / "jail") if a == "JAIL" else a for a in layers]
    before = len(counts(neighbour.text()))
    t0 = time.monotonic()
    p = subprocess.run([str(vessel_path()), "vm", "run", "--arch", "riscv64", "--memory", "64M",
                        "--kernel", str(hostile), "--disk", f"{disk},format=raw", "--rng",
                        "--console", f"file:{console}", *layers],
                       capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    took = time.monotonic() - t0
    out = console.read_text(errors="replace")
    assert "HOSTILE-DONE" in out, (p.returncode, p.stderr[-2000:], out[-2000:])
    assert p.returncode == 0, p.stderr[-2000:]
    assert "seccomp" not in p.stderr
    # each malformation was refused, as a driver error, not followed
    assert "guest driver error" in p.stderr
    assert took < 60
    # bounded: the peak RSS of any child so far (the neighbour included), KiB
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 512 * 1024
    # the VM beside it counted on all along
    time.sleep(0.5)
    assert len(counts(neighbour.text())) > before
    assert neighbour.stop() == 0
