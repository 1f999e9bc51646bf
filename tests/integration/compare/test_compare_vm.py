"""vessel compare's riscv64 VM kinds: the default riscv64 guest (built by
guest/build-riscv64.sh) boots in vessel's emulated board, its init runs the
workload from an ext4 disk (vessel.run=), each accelerator. One run at
scale 1: slow (a Linux boot per run under emulation), so only what holds
anywhere is checked."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "riscv"))
from rvhelpers import rv_guest  # noqa: E402,F401
from vesselpaths import vessel_path  # noqa: E402

KINDS = ["native", "riscv-vm-jit", "riscv-vm-interp"]
WORKLOADS = ["cpu", "syscall", "disk", "net", "startup"]


def compare(rv_guest, tmp, *args, timeout=1200):
    env = dict(os.environ, VESSEL_GUEST_DIR=str(rv_guest.parent))
    # --out first: after "--" everything is the command
    return subprocess.run([str(vessel_path()), "compare", "--out", str(tmp), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL)


@pytest.fixture(scope="module")
def run(rv_guest, tmp_path_factory):
    out = tmp_path_factory.mktemp("compare-vm")
    p = compare(rv_guest, out, "--kinds", ",".join(KINDS), "--workloads", ",".join(WORKLOADS),
                "--runs", "1", "--scale", "1", "--format", "json")
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return json.loads(p.stdout)


def rows(doc):
    return {(r["kind"], r["workload"]): r for r in doc["results"]}


def test_every_workload_runs_in_the_riscv64_vm(run):
    r = rows(run)
    assert sorted(r) == sorted((k, w) for k in KINDS for w in WORKLOADS)
    for k in KINDS:
        for w in WORKLOADS:
            row = r[(k, w)]
            assert row["status"] == "ok", row
            assert row["median_ns"] > 0 and row["wall_ns"] >= row["startup_ns"] > 0
    for w in WORKLOADS:  # the same program computes the same, in the guest too
        assert len({r[(k, w)]["check"] for k in KINDS}) == 1, w
    # the VMM's footprint: guest memory the kernel and the workload touched
    assert r[("riscv-vm-jit", "cpu")]["peak_rss_kb"] > r[("native", "cpu")]["peak_rss_kb"]
    # the net workload's bytes reached the host's sink through virtio-net
    assert int(r[("riscv-vm-jit", "net")]["check"], 16) == 32 * 2**20


def test_emulated_machine_relations(run):
    r = rows(run)
    # CPU: emulated slower than native, interpreted slower than translated
    assert r[("riscv-vm-jit", "cpu")]["median_ns"] > r[("native", "cpu")]["median_ns"]
    assert r[("riscv-vm-interp", "cpu")]["median_ns"] > r[("riscv-vm-jit", "cpu")]["median_ns"]
    # booting Linux to the workload's first line costs more than an exec
    for k in KINDS[1:]:
        assert r[(k, "startup")]["startup_ns"] > 10 * r[("native", "startup")]["startup_ns"]


def test_user_binary_in_the_riscv64_vm(rv_guest, tmp_path):
    src = tmp_path / "hello.c"
    src.write_text('#include <stdio.h>\nint main(int c, char **v) '
                   '{ printf("hello %s\\n", v[1]); return 0; }\n')
    rv = tmp_path / "hello-riscv64"
    subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-O1", "-o", rv, src], check=True)
    p = compare(rv_guest, tmp_path / "out", "--kinds", "native,riscv-vm-jit", "--runs", "1",
                "--format", "json", "--riscv64-binary", rv, "--", "/bin/echo", "world")
    assert p.returncode == 0, p.stderr
    r = rows(json.loads(p.stdout))
    row = r[("riscv-vm-jit", "command")]
    assert row["status"] == "ok", row
    assert row["median_ns"] > 0 and row["startup_ns"] > 0  # boot to init's READY line


def test_a_failing_user_binary_fails_its_row(rv_guest, tmp_path):
    src = tmp_path / "fail.c"
    src.write_text("int main(void) { return 7; }\n")
    rv = tmp_path / "fail-riscv64"
    subprocess.run(["riscv64-linux-gnu-gcc", "-static", "-o", rv, src], check=True)
    p = compare(rv_guest, tmp_path / "out", "--kinds", "native,riscv-vm-jit", "--runs", "1",
                "--riscv64-binary", rv, "--", "/bin/true")
    assert p.returncode == 1
    assert "the program exited 7 in the guest" in p.stdout
