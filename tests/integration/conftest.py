"""Shared fixtures for vessel's integration tests.

Each area keeps its own tests (and its own conftest.py for area fixtures) in a
subfolder: x86/, nested/, virtio/, oci/, riscv/, snapshot/.
"""
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from vesselpaths import vessel_path

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def vessel() -> Path:
    return vessel_path()


def run_vessel(*args, timeout=60, input=None, check=False, **kw):
    """Run the vessel binary; returns CompletedProcess with text output."""
    p = subprocess.run([str(vessel_path()), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, input=input, **kw)
    if check and p.returncode != 0:
        raise AssertionError(f"vessel {' '.join(map(str, args))} exited {p.returncode}\n"
                             f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
    return p


def kvm_usable() -> str:
    """Empty string if /dev/kvm can be opened, else the reason."""
    if not os.path.exists("/dev/kvm"):
        return "/dev/kvm does not exist"
    try:
        fd = os.open("/dev/kvm", os.O_RDWR)
        os.close(fd)
    except OSError as e:
        return f"/dev/kvm cannot be opened: {e.strerror}"
    return ""


@pytest.fixture(scope="session")
def kvm():
    """Skip -- loudly -- when /dev/kvm is unusable: such a test must never pass silently."""
    why = kvm_usable()
    if why:
        sys.stderr.write(f"\n*** SKIPPING KVM TEST: {why} ***\n")
        pytest.skip(f"KVM unavailable: {why}")


def one_error_line(stderr: str) -> str:
    """The error vessel printed; asserts it is a single 'vessel: ...' line."""
    lines = [l for l in stderr.strip().splitlines() if l.strip()]
    assert len(lines) == 1, f"expected one error line, got:\n{stderr}"
    assert lines[0].startswith("vessel"), lines[0]
    return lines[0]


@pytest.fixture(scope="session")
def cache_dir() -> Path:
    """Slow guest builds are cached outside the checkout."""
    d = Path(os.environ.get("VESSEL_CACHE", Path.home() / ".cache/vessel"))
    d.mkdir(parents=True, exist_ok=True)
    return d


# Each area's tests say `from conftest import ...` and mean their own folder's
# conftest.py, but every conftest is a module named "conftest" and Python keeps
# only one under that name. Point the name at the right one while a test module
# is imported and while its tests run.
def _point_conftest_at(config, directory: Path):
    for d in (directory, *directory.parents):
        mod = config.pluginmanager.get_plugin(str(d / "conftest.py"))
        if mod is not None:
            sys.modules["conftest"] = mod
            return
        if d == ROOT:
            return


def pytest_collectstart(collector):
    if isinstance(collector, pytest.Module):
        _point_conftest_at(collector.config, Path(collector.path).parent)


def pytest_runtest_setup(item):
    _point_conftest_at(item.config, Path(item.path).parent)
