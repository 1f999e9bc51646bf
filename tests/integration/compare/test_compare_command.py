"""vessel compare -- CMD ARGS: a user's own command, natively and in the
container as given, under user-mode emulation with --riscv64-binary, and
labelled skips where a kind has nothing to run (no riscv64 build; the KVM
row's bare guest, which runs no Linux program)."""
import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import run_vessel

KINDS = "native,container,kvm,emu-jit,emu-interp"


@pytest.fixture(scope="module")
def rv_true(tmp_path_factory) -> Path:
    """A static riscv64 program that exits 0 after a little work."""
    d = tmp_path_factory.mktemp("rvtrue")
    src = d / "spin.c"
    src.write_text("#include <stdlib.h>\nint main(int c, char **v) {\n"
                   "  volatile unsigned long s = 0; unsigned long n = strtoul(v[1], 0, 10);\n"
                   "  for (unsigned long i = 0; i < n; i++) s += i;\n  return 0;\n}\n")
    out = d / "spin-riscv64"
    subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-O1", "-o", out, src], check=True)
    native = d / "spin"
    subprocess.run(["gcc", "-static", "-O1", "-o", native, src], check=True)
    return out, native


def rows(doc):
    return {(r["kind"], r["workload"]): r for r in doc["results"]}


def test_command_natively_and_in_the_container(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    p = run_vessel("compare", "--kinds", KINDS, "--runs", "2", "--format", "json", "--out",
                   tmp_path, "--", "/bin/sh", "-c", "ls / >/dev/null", timeout=300, cwd=tmp_path)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    assert doc["workloads"] == ["command"]
    r = rows(doc)
    for k in ["native", "container"]:
        row = r[(k, "command")]
        assert row["status"] == "ok", row
        assert row["median_ns"] > 0 and row["runs"] == 2
        assert row["median_ns"] == row["wall_ns"]  # a command's time is its wall time
        assert row["startup_ns"] == 0  # it prints no start marker
    assert r[("native", "command")]["ratio"] == 1.0
    for k in ["emu-jit", "emu-interp"]:
        assert r[(k, "command")]["status"] == "skipped"
        assert "--riscv64-binary" in r[(k, "command")]["reason"]
    assert r[("kvm", "command")]["status"] == "skipped"
    assert r[("kvm", "command")]["reason"]


def test_a_failing_command_is_a_failed_row(tmp_path):
    p = run_vessel("compare", "--kinds", "native", "--runs", "1", "--out", tmp_path, "--",
                   "/bin/sh", "-c", "echo broken >&2; exit 3", timeout=120)
    assert p.returncode == 1
    assert "command  native          failed: " in p.stdout
    assert "exited 3: broken" in p.stdout


def test_riscv64_binary_under_emulation(tmp_path, rv_true):
    rv, native = rv_true
    p = run_vessel("compare", "--kinds", "native,emu-jit,emu-interp", "--runs", "1", "--format",
                   "json", "--out", tmp_path, "--riscv64-binary", rv, "--", native, "3000000",
                   timeout=300)
    assert p.returncode == 0, p.stderr
    r = rows(json.loads(p.stdout))
    for k in ["native", "emu-jit", "emu-interp"]:
        assert r[(k, "command")]["status"] == "ok", r[(k, "command")]
    # the interpreter runs the same loop far slower than the machine
    assert r[("emu-interp", "command")]["median_ns"] > r[("native", "command")]["median_ns"]
