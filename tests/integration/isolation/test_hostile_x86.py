"""A hostile x86 guest on /dev/kvm (the tier-1 test guest's test=hostile,
tests/guests/x86/hostile.c): garbage on every I/O port, COM1 flooded, every
PCI config register, MMIO across the PCI hole and beyond RAM, every
register of every virtio-pci BAR, then malformed virtqueues on every queue
of virtio-blk, -net, -rng, -console and -vsock at full rate (loops, 4 GiB
chains, rings and tables outside RAM, garbage indirect tables, bogus MSI-X
messages for an interrupt storm). With the isolation layers on, the VMM
refuses each (a warning, the device marked broken until reset), stays
bounded, exits 0 when the guest powers off, and an x86 VM beside it counts
on undisturbed. Skipped, loudly, without a usable /dev/kvm.

The VM runs in a network namespace of its own (`unshare -n`): the garbage
frames virtio-net sends reach slirp there, and nothing leaves the host."""
import resource
import shutil
import subprocess
import time

import pytest

from snaputil import counts, x86_guest_dir
from vesselpaths import vessel_path


@pytest.fixture(scope="module")
def tier1():
    return x86_guest_dir() / "guest.elf"


@pytest.mark.parametrize("layers", [[], ["--landlock=on", "--jail", "JAIL"]],
                         ids=["seccomp", "seccomp+landlock+jail"])
def test_hostile_x86_guest_is_refused_and_contained(kvm, tier1, vms, tmp_path, layers):
    if not shutil.which("unshare"):
        pytest.fail("unshare (util-linux) is missing")
    neighbour = vms("neighbour", "vm", "run", "--kernel", tier1, "--memory", "64M",
                    "--append", "test=counter")
    neighbour.wait_count(3, timeout=60)
    disk = tmp_path / "disk.img"
    disk.write_bytes(b"\0" * (16 << 20))
    console = tmp_path / "hostile.log"
    layers = [str(tmp_path / "jail") if a == "JAIL" else a for a in layers]
    before = len(counts(neighbour.text()))
    p = subprocess.run(["unshare", "-n", str(vessel_path()), "vm", "run", "--kernel", str(tier1),
                        "--memory", "256M", "--append", "test=hostile mem=256",
                        "--disk", f"{disk},format=raw", "--rng", "--net", "user",
                        "--virtio-console", f"file:{tmp_path / 'vc.out'}",
                        "--vsock", "5", "--vsock-uds", str(tmp_path / "vsock"),
                        "--console", f"file:{console}", "--no-reboot", *layers],
                       capture_output=True, text=True, timeout=300, stdin=subprocess.DEVNULL)
    out = console.read_text(errors="replace")
    # each phase ran to its end: the VMM neither died nor hung on any
    for phase in ("PORTS", "UART", "PCI", "MMIO", "BARS", "DONE"):
        assert f"HOSTILE-{phase}" in out, (phase, p.returncode, p.stderr[-2000:], out[-2000:])
    # the five virtio functions were found and attacked
    assert out.count("virtio device ") == 5, out[:2000]
    assert p.returncode == 0, p.stderr[-2000:]
    assert "seccomp" not in p.stderr
    # each malformation was refused as a driver error, not followed
    for dev in ("virtio-blk0", "virtio-net0", "virtio-rng0", "virtio-console0", "virtio-vsock0"):
        assert f"{dev}: guest driver error" in p.stderr, (dev, p.stderr[-3000:])
    # every line is a warning: no crash report, no register dump
    bad = [l for l in p.stderr.splitlines() if l and not l.startswith("vessel: warning: ")]
    assert not bad, bad[:20]
    # bounded: the log (one warning per refusal, not per request) and the
    # peak RSS of any child so far (the neighbour included), KiB
    assert len(p.stderr) < 256 * 1024
    assert resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss < 512 * 1024
    # the VM beside it counted on all along
    time.sleep(0.5)
    assert len(counts(neighbour.text())) > before
    assert neighbour.stop() == 0
