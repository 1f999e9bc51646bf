"""vessel compare: one small real run (--runs 2 --scale 2) checked for shape
and for relations that hold on any machine (not for absolute numbers), the
chart files, the labelled KVM skip and argument errors."""
import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from conftest import kvm_usable, one_error_line, run_vessel

KINDS = ["native", "container", "kvm", "emu-jit", "emu-interp"]
WORKLOADS = ["cpu", "memory", "syscall", "startup"]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    out = tmp_path_factory.mktemp("compare")
    p = run_vessel("compare", "--runs", "2", "--scale", "2", "--format", "json", "--out", out,
                   timeout=300)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    return out, doc, p


def rows(doc):
    return {(r["kind"], r["workload"]): r for r in doc["results"]}


def test_a_row_per_kind_and_workload(run):
    out, doc, _ = run
    r = rows(doc)
    assert sorted(r) == sorted((k, w) for k in KINDS for w in WORKLOADS)
    assert json.loads((out / "compare.json").read_text()) == doc
    for k in ["native", "container", "emu-jit", "emu-interp"]:
        for w in WORKLOADS:
            row = r[(k, w)]
            assert row["status"] == "ok", row
            assert row["runs"] == 2 and len(row["samples"]) == 2
            assert row["median_ns"] > 0 and row["startup_ns"] > 0 and row["wall_ns"] > 0
            assert row["wall_ns"] >= row["startup_ns"]
            assert 0 < row["peak_rss_kb"] < 4 << 20
            assert row["ops"] > 0
        assert r[(k, "memory")]["peak_rss_kb"] >= 64 * 1024  # two 32 MiB buffers, touched
    for w in WORKLOADS:
        assert r[("native", w)]["ratio"] == 1.0
    env = doc["environment"]
    assert env["cpus"] >= 1 and env["kernel"].startswith("Linux") and env["cpu"]
    assert len(env["loadavg"].split()) == 3


def test_every_kind_computes_the_same(run):
    """One source, four ways to run it: the checksums agree."""
    r = rows(run[1])
    for w in WORKLOADS:
        checks = {r[(k, w)]["check"] for k in KINDS if r[(k, w)]["status"] == "ok"}
        assert len(checks) == 1, (w, checks)


def test_robust_relations(run):
    """On the fastest of the runs, the one a busy host disturbed least."""
    r = rows(run[1])
    key = lambda w: "startup_ns" if w == "startup" else "work_ns"
    med = lambda k, w: min(x[key(w)] for x in r[(k, w)]["samples"])
    # CPU: emulation is slower than native; the interpreter by a wide margin
    assert med("emu-jit", "cpu") > med("native", "cpu")
    assert med("emu-interp", "cpu") > 3 * med("native", "cpu")
    assert med("emu-interp", "cpu") > med("emu-jit", "cpu")
    # start-up: a plain exec is first; a container and an emulator cost more
    for k in ["container", "emu-jit", "emu-interp"]:
        assert med(k, "startup") > med("native", "startup"), k
    # the emulator's footprint is larger than the bare program's
    for k in ["emu-jit", "emu-interp"]:
        assert r[(k, "cpu")]["peak_rss_kb"] > r[("native", "cpu")]["peak_rss_kb"]


def test_kvm_row_is_a_labelled_skip(run):
    doc = run[1]
    why = kvm_usable()
    kvm = next(k for k in doc["kinds"] if k["name"] == "kvm")
    assert kvm["status"] == "skipped" and kvm["reason"]
    for w in WORKLOADS:
        row = rows(doc)[("kvm", w)]
        assert row["status"] == "skipped" and row["reason"] == kvm["reason"]
        assert "median_ns" not in row
    if why:  # no usable /dev/kvm: the reason says so
        assert "/dev/kvm" in kvm["reason"]


def test_charts_exist_and_parse(run):
    out, doc, _ = run
    if not shutil.which("gnuplot"):
        pytest.fail("gnuplot is not installed (scripts/setup.sh installs gnuplot-nox)")
    png, svg = out / "compare.png", out / "compare.svg"
    assert doc["charts"] == {"png": str(png), "svg": str(svg)}
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    root = ET.parse(svg).getroot()
    assert root.tag.endswith("svg")
    text = " ".join(t for t in root.itertext())
    assert "vessel compare" in text and "kvm skipped" in text
    # one bar per measured (kind, workload): the data gnuplot drew
    lines = (out / "compare.dat").read_text().split("\n")
    assert lines[0].split() == ["#", "workload", "native", "container", "emu-jit", "emu-interp"]
    data = [l.split() for l in lines[1:] if l.strip()]
    assert [d[0] for d in data] == WORKLOADS
    assert all(len(d) == 5 and "?" not in d for d in data)


def test_progress_on_stderr(run):
    err = run[2].stderr
    assert "[1/32] " in err and "[32/32] " in err and "left)" in err


def test_table_and_terminal_bars(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    p = run_vessel("compare", "--workloads", "cpu,startup", "--runs", "1", "--scale", "1", "--out",
                   tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    assert "kvm         skipped: " in p.stdout
    assert "time relative to native (log scale" in p.stdout
    assert "memory" not in p.stdout.split("WORKLOAD")[1]
    d = json.loads((tmp_path / "compare.json").read_text())
    assert d["workloads"] == ["cpu", "startup"] and len(d["results"]) == 10


@pytest.mark.parametrize("args,needle", [
    (["--runs", "0"], "--runs"),
    (["--runs", "x"], "runs"),
    (["--scale", "0"], "--scale"),
    (["--workloads", "cpu,disk"], "unknown workload 'disk'"),
    (["--workloads", ""], "--workloads"),
    (["--format", "xml"], "--format"),
    (["--bogus"], "bogus"),
    (["extra"], "unexpected argument 'extra'"),
    (["--out", ""], "--out"),
])
def test_bad_arguments(args, needle, tmp_path):
    p = run_vessel("compare", *args, cwd=tmp_path)
    assert p.returncode != 0
    line = one_error_line(p.stderr)
    assert needle in line, line
    assert not p.stdout
    assert not (tmp_path / "vessel-compare").exists()


def test_sigterm_mid_run_leaves_nothing_behind(vessel, tmp_path):
    """SIGTERM while the container runs (the second run of the first round):
    exit 130, one error line, no scratch directory, container or cgroup left."""
    import glob
    import signal
    import subprocess
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    before = set(glob.glob("/tmp/vessel-compare-*"))
    p = subprocess.Popen([str(vessel), "compare", "--workloads", "cpu", "--runs", "2",
                          "--scale", "4", "--out", str(tmp_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in p.stderr:
        lines.append(line)
        if "[1/" in line:  # native done: the container is starting
            p.send_signal(signal.SIGTERM)
            break
    rest = p.stderr.read()
    assert p.wait(timeout=60) == 130
    assert rest.strip().splitlines()[-1] == "vessel: compare: interrupted", lines + [rest]
    assert set(glob.glob("/tmp/vessel-compare-*")) == before
    assert not glob.glob(f"/sys/fs/cgroup/**/vessel/vcmp-{p.pid}-*", recursive=True)
    # the workload, natively or as the container's /workload: gone
    assert subprocess.run(["pgrep", "-f", "workload(-native|-riscv64)? cpu 4"],
                          capture_output=True).returncode == 1
