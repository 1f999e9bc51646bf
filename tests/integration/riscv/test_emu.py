"""`vessel emu`: static riscv64 Linux programs (tests/riscv-isa/user/*.c, built with
riscv64-linux-gnu-gcc -static) print the same under vessel's user-mode emulation as
under Debian's qemu-riscv64, and faults end the program the way a signal would. Every
test runs on both accelerators (the translator and the interpreter)."""
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rvhelpers import riscv_linux_cc, vessel_path  # the riscv tests' shared helpers

ROOT = Path(__file__).resolve().parents[3]

SRC = ROOT / "tests/riscv-isa/user"
CC = "riscv64-linux-gnu-gcc"
QEMU = "qemu-riscv64"


def tool(name: str, package: str) -> str:
    path = shutil.which(name)
    if not path:
        sys.stderr.write(f"\n*** {name} is missing: apt-get install {package} ***\n")
        pytest.fail(f"{name} is missing (apt-get install {package}; scripts/setup.sh does)")
    return path


@pytest.fixture(scope="session")
def progs() -> dict:
    """Every program in tests/riscv-isa/user, built once per source version."""
    cc = riscv_linux_cc()
    cache_dir = Path(os.environ.get("VESSEL_CACHE", Path.home() / ".cache/vessel"))
    out = {}
    for src in sorted(SRC.glob("*.c")):
        digest = hashlib.sha256(src.read_bytes()).hexdigest()[:16]
        exe = cache_dir / "riscv-emu" / f"{src.stem}-{digest}"
        if not exe.exists():
            exe.parent.mkdir(parents=True, exist_ok=True)
            tmp = exe.with_suffix(".tmp")
            subprocess.run([cc, "-static", "-O2", "-pthread", "-o", str(tmp), str(src), "-lm"],
                           check=True)
            tmp.rename(exe)
        out[src.stem] = exe
    return out


ACCEL = "jit"


@pytest.fixture(autouse=True, params=["jit", "interp"])
def accel(request):
    """every test on both accelerators (`vessel emu --accel`)"""
    global ACCEL
    ACCEL = request.param
    yield request.param
    ACCEL = "jit"


def run(cmd, **kw):
    env = dict(os.environ, VESSEL_TEST_VAR="value with spaces")
    cmd = [str(c) for c in cmd]
    if cmd[0] == str(vessel_path()) and cmd[1:2] == ["emu"]:
        cmd[2:2] = ["--accel", ACCEL]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60, env=env, **kw)


def both(prog, *args, **kw):
    """(vessel result, qemu result) for the same program and arguments."""
    qemu = tool(QEMU, "qemu-user")
    v = run([vessel_path(), "emu", prog, *args], **kw)
    q = run([qemu, prog, *args], **kw)
    return v, q


@pytest.mark.parametrize("name,args", [
    ("hello", ["5", "two words", ""]),
    ("mallocs", []),
    ("floats", []),
    ("timecheck", []),
])
def test_same_output_as_qemu(progs, name, args):
    v, q = both(progs[name], *args)
    assert v.returncode == q.returncode, v.stderr
    assert v.stdout == q.stdout
    assert v.stdout.strip(), "the program printed nothing"


def test_hello_details(progs):
    v = run([vessel_path(), "emu", progs["hello"], "3", "x y"])
    assert v.returncode == 3
    assert "argv[2]=x y" in v.stdout
    assert "VESSEL_TEST_VAR=value with spaces" in v.stdout
    assert v.stderr == "to stderr\n"


def test_file_io_same_as_qemu(progs, tmp_path):
    outs = []
    for runner in ([vessel_path(), "emu"], [tool(QEMU, "qemu-user")]):
        d = tmp_path / f"d{len(outs)}"
        d.mkdir()
        p = run([*runner, progs["fileio"], d])
        assert p.returncode == 0, p.stderr
        outs.append(p.stdout)
        assert list(d.iterdir()) == [], "the program's files were not removed"
    assert outs[0] == outs[1]
    assert "lines 1000" in outs[0] and "entry renamed.txt" in outs[0]


def test_sigill(progs):
    v, q = both(progs["sigill"])
    assert v.returncode == 128 + 4 and q.returncode == -4  # qemu dies of the signal itself
    assert v.stdout == "before\n"
    assert "SIGILL" in v.stderr and "illegal instruction" in v.stderr
    assert "0xffffffff" in v.stderr


def test_segv(progs):
    v, q = both(progs["segv"])
    assert v.returncode == 128 + 11 and q.returncode == -11
    assert "SIGSEGV" in v.stderr and "address 0x8" in v.stderr


def test_not_riscv_elf():
    v = run([vessel_path(), "emu", "/bin/true"])
    assert v.returncode != 0
    assert v.stderr.startswith("vessel: ") and "not a riscv64 ELF" in v.stderr
    assert len(v.stderr.strip().splitlines()) == 1


def test_not_elf(tmp_path):
    f = tmp_path / "script.sh"
    f.write_text("#!/bin/sh\necho hi\n")
    v = run([vessel_path(), "emu", f])
    assert v.returncode != 0 and "not an ELF file" in v.stderr


def test_missing_program(tmp_path):
    v = run([vessel_path(), "emu", tmp_path / "nope"])
    assert v.returncode != 0 and "No such file" in v.stderr


def test_dynamic_program_rejected(tmp_path):
    cc = riscv_linux_cc()
    src = tmp_path / "dyn.c"
    src.write_text("int main(void) { return 0; }\n")
    exe = tmp_path / "dyn"
    subprocess.run([cc, "-o", str(exe), str(src)], check=True)
    v = run([vessel_path(), "emu", exe])
    assert v.returncode != 0 and "-static" in v.stderr


def test_signals_same_as_qemu(progs):
    """handlers for raise/kill, SIGSEGV recovery, SIGILL skipping through the
    saved context, masks, SIG_IGN, SA_RESETHAND, then abort()"""
    v, q = both(progs["signals"])
    assert v.stdout == q.stdout
    assert "recovered from SIGSEGV" in v.stdout and "continued after SIGILL" in v.stdout
    assert v.returncode == 128 + 6 and q.returncode == -6
    assert "signal 6" in v.stderr


def test_threads_same_as_qemu(progs):
    """pthreads: clone, futex-based mutex/condvar, atomics, TLS, gettid (three
    runs, so a race has more than one chance to show)"""
    for _ in range(3):
        v, q = both(progs["threads"])
        assert v.returncode == 0 == q.returncode, v.stderr
        assert v.stdout == q.stdout
        assert "counter 80000 atomic 160000" in v.stdout and "distinct tids 1" in v.stdout


def test_thread_exit_ends_program(progs):
    """exit() in a thread ends the program while main is blocked in a futex"""
    v, q = both(progs["threadexit"])
    assert v.returncode == 7 == q.returncode
    assert v.stdout == q.stdout == "worker exits the program\n"
