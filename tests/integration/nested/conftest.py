"""Fixtures for tier 2: stock Debian kernels as L2 guests in the nested KVM lab.

The lab (tests/nested/lab.sh) runs L1 under QEMU TCG with nested SVM, so it
needs no /dev/kvm on the host; it needs qemu-system-x86_64 and Debian's
kernel packages (scripts/setup.sh, apt). All L2 boots of a test session share
ONE L1 session (see the `lab_boots` fixture) to keep CI time down.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests/nested"))

import lab  # noqa: E402


def guest_kernel_version(flavor: str) -> str:
    d = subprocess.run([str(ROOT / "guest/build-x86_64.sh"), "--print-dir", "--flavor", flavor],
                       capture_output=True, text=True, check=True).stdout.strip()
    return (Path(d) / "kernel-version").read_text().strip()


@pytest.fixture(scope="session")
def lab_ready():
    """Build the guests and the L1 pieces (cached); skip loudly without QEMU."""
    if not shutil.which("qemu-system-x86_64"):
        sys.stderr.write("\n*** SKIPPING NESTED LAB TEST: qemu-system-x86_64 is missing "
                         "(scripts/setup.sh installs it) ***\n")
        pytest.skip("qemu-system-x86_64 is missing")
    p = subprocess.run([str(lab.LAB), "prepare"], capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, f"lab.sh prepare failed:\n{p.stderr}"
    return {f: guest_kernel_version(f) for f in ("cloud", "generic")}
