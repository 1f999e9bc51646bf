"""Fixtures for the virtio integration tests (defined in vthelpers.py, which
the tests also import helpers from)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from vthelpers import guest, vt_guest  # noqa: E402,F401
