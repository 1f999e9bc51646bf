"""Fixtures for the x86 KVM machine's tier-1 tests: the test guest built by
tests/guests/x86/build.sh (idempotent, a few hundred milliseconds)."""
import importlib.util
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
# The shared helpers, re-exported so the tests' `from conftest import ...`
# works whichever conftest module Python resolves that name to.
_spec = importlib.util.spec_from_file_location("vessel_shared_conftest",
                                               ROOT / "tests/integration/conftest.py")
_shared = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_shared)
one_error_line = _shared.one_error_line
run_vessel = _shared.run_vessel
vessel_path = _shared.vessel_path


@pytest.fixture(scope="session")
def x86_guest() -> Path:
    out = ROOT / "tests/guests/out/x86"
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh"), str(out)], check=True)
    return out / "guest.elf"


@pytest.fixture(scope="session")
def x86_guest32(x86_guest) -> Path:
    return x86_guest.parent / "guest32.elf"
