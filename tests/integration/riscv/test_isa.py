"""The bare-metal ISA test suite (tests/riscv-isa/test_*.c, built with
riscv64-unknown-elf-gcc) on vessel's hart: each program reports pass/fail through
the HTIF tohost word (`vessel emu --bare`). Plus the harness itself: a failing
check is reported with its line, and an M-mode fault with no trap handler stops
the hart with a clear message and the register state."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rvhelpers import vessel_path  # the riscv tests' shared helpers

ROOT = Path(__file__).resolve().parents[3]
SRC = ROOT / "tests/riscv-isa"
CC = "riscv64-unknown-elf-gcc"
TESTS = sorted(p.stem for p in SRC.glob("test_*.c"))


def need_cc():
    if not shutil.which(CC):
        sys.stderr.write(f"\n*** {CC} is missing: apt-get install gcc-riscv64-unknown-elf ***\n")
        pytest.fail(f"{CC} is missing (apt-get install gcc-riscv64-unknown-elf)")


@pytest.fixture(scope="session")
def isa_dir() -> Path:
    """All ISA tests built once per version of their sources (cached)."""
    need_cc()
    h = hashlib.sha256()
    for p in sorted(SRC.glob("*")):
        if p.is_file():
            h.update(p.name.encode() + p.read_bytes())
    cache = Path(os.environ.get("VESSEL_CACHE", Path.home() / ".cache/vessel"))
    out = cache / "riscv-isa" / h.hexdigest()[:16]
    if not all((out / f"{t}.elf").exists() for t in TESTS):
        subprocess.run([str(SRC / "build.sh"), str(out)], check=True, timeout=600)
    return out


def run_bare(elf, max_insns=500_000_000, accel="jit"):
    return subprocess.run([str(vessel_path()), "emu", "--bare", "--accel", accel, "--max-insns",
                           str(max_insns), str(elf)], capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("accel", ["jit", "interp"])
@pytest.mark.parametrize("name", TESTS)
def test_isa(isa_dir, name, accel):
    p = run_bare(isa_dir / f"{name}.elf", accel=accel)
    assert p.returncode == 0, f"{name} failed (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"


@pytest.mark.parametrize("name", TESTS)
def test_isa_lockstep(isa_dir, name):
    """the translator and the interpreter agree after every block and on memory"""
    p = subprocess.run([str(vessel_path()), "emu", "--bare", "--accel", "diff", "--max-insns",
                        "500000000", str(isa_dir / f"{name}.elf")], capture_output=True, text=True,
                       timeout=300)
    assert p.returncode == 0, f"{name} (exit {p.returncode}):\n{p.stdout}\n{p.stderr}"


def test_lockstep_needs_bare(isa_dir):
    p = subprocess.run([str(vessel_path()), "emu", "--accel", "diff", str(isa_dir / "test_rv64i.elf")],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode == 2 and "--bare" in p.stderr


def build_one(tmp_path, name, source):
    need_cc()
    (tmp_path / "src").mkdir(exist_ok=True)
    for f in ("crt.S", "rt.c", "rt.h", "link.ld", "ops.h", "build.sh"):
        shutil.copy(SRC / f, tmp_path / "src" / f)
    (tmp_path / "src" / f"{name}.c").write_text(source)
    subprocess.run([str(tmp_path / "src/build.sh"), str(tmp_path / "out"), f"{name}.c"],
                   check=True, timeout=120)
    return tmp_path / "out" / f"{name}.elf"


def test_failing_check_is_reported(tmp_path):
    elf = build_one(tmp_path, "test_fails", '#include "rt.h"\n'
                    "int main(void)\n{\n    CHECK_EQ(last_trap.count + 1, 2);\n    return 0;\n}\n")
    p = run_bare(elf)
    assert p.returncode == 1
    assert "FAILED with code 4" in p.stderr  # the line of the CHECK
    assert "mismatch: 0x0000000000000001 != 0x0000000000000002" in p.stdout


def test_m_mode_fault_without_handler_stops(tmp_path):
    need_cc()
    src = tmp_path / "wild.S"
    src.write_text(".globl _start\n_start:\n    csrw mtvec, zero\n    li t0, 0x40000000\n"
                   "    li a5, 0x1234\n    jr t0\n"
                   ".data\n.align 3\n.globl tohost\ntohost: .dword 0\n")
    elf = tmp_path / "wild.elf"
    subprocess.run([CC, "-nostdlib", "-march=rv64gc", "-mabi=lp64d", "-T", str(SRC / "link.ld"),
                    "-o", str(elf), str(src)], check=True)
    p = run_bare(elf)
    assert p.returncode == 3
    assert "instruction access fault" in p.stderr
    assert "pc 0x40000000" in p.stderr and "mtvec = 0" in p.stderr
    assert "a5   0000000000001234" in p.stderr  # the register dump


def test_runaway_program_is_stopped(tmp_path):
    elf = build_one(tmp_path, "test_spins", '#include "rt.h"\n'
                    "int main(void)\n{\n    for (;;)\n        __asm__ volatile(\"\");\n}\n")
    p = run_bare(elf, max_insns=2_000_000)
    assert p.returncode == 2 and "did not finish" in p.stderr


def test_no_tohost_symbol(tmp_path):
    need_cc()
    src = tmp_path / "x.S"
    src.write_text(".globl _start\n_start:\n    j _start\n")
    elf = tmp_path / "x.elf"
    subprocess.run([CC, "-nostdlib", "-T", str(SRC / "link.ld"), "-o", str(elf), str(src)],
                   check=True)
    p = run_bare(elf)
    assert p.returncode != 0 and "tohost" in p.stderr
