"""Fixtures for the riscv64 board tests (defined in rvhelpers.py, which the
tests also import helpers from)."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from rvhelpers import console, opensbi, rv_guest, sbi_payload, uboot, wild_jump_elf  # noqa: E402,F401
