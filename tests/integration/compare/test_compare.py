"""vessel compare: one small real run (--runs 2 --scale 2, the kinds that
start in milliseconds) checked for shape and for relations that hold on any
machine (not for absolute numbers), the chart files, the KVM row (measured
where KVM can run the workload, a labelled skip where it cannot) and argument
errors. The riscv64 VM kinds and a user's command: test_compare_vm.py,
test_compare_command.py."""
import json
import os
import shutil
import xml.etree.ElementTree as ET

import pytest

from conftest import kvm_usable, one_error_line, run_vessel

KINDS = ["native", "container", "kvm", "emu-jit", "emu-interp"]
WORKLOADS = ["cpu", "memory", "syscall", "disk", "net", "startup"]
# what the user-mode emulator cannot run, and what the KVM row's bare guest has no driver for
EMU_SKIPS = {"net": "no socket system calls"}
KVM_NO_DRIVER = {"disk", "net"}


def is_pvm():
    return os.path.exists("/sys/module/kvm_pvm")


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    out = tmp_path_factory.mktemp("compare")
    p = run_vessel("compare", "--kinds", ",".join(KINDS), "--runs", "2", "--scale", "2",
                   "--format", "json", "--out", out, timeout=600)
    assert p.returncode == 0, p.stderr
    doc = json.loads(p.stdout)
    return out, doc, p


def rows(doc):
    return {(r["kind"], r["workload"]): r for r in doc["results"]}


def measured(kind, workload):
    """Whether the row must be measured on this host (else a labelled skip)."""
    if kind.startswith("emu-") and workload in EMU_SKIPS:
        return False
    if kind == "kvm":
        return not kvm_usable() and workload not in KVM_NO_DRIVER and (
            workload == "startup" or not is_pvm())
    return True


def test_a_row_per_kind_and_workload(run):
    out, doc, _ = run
    r = rows(doc)
    assert sorted(r) == sorted((k, w) for k in KINDS for w in WORKLOADS)
    assert [k["name"] for k in doc["kinds"]] == KINDS
    assert json.loads((out / "compare.json").read_text()) == doc
    for k in KINDS:
        for w in WORKLOADS:
            row = r[(k, w)]
            if not measured(k, w):
                assert row["status"] == "skipped" and row["reason"], row
                assert "median_ns" not in row
                continue
            assert row["status"] == "ok", row
            assert row["runs"] == 2 and len(row["samples"]) == 2
            assert row["median_ns"] > 0 and row["startup_ns"] > 0 and row["wall_ns"] > 0
            assert row["wall_ns"] >= row["startup_ns"]
            assert 0 < row["peak_rss_kb"] < 4 << 20
            assert row["ops"] > 0
        if measured(k, "memory"):
            assert r[(k, "memory")]["peak_rss_kb"] >= 64 * 1024  # two 32 MiB buffers, touched
    # disk: 16 MiB written and read back, 512 random 4 KiB writes and reads (scale 2)
    assert r[("native", "disk")]["ops"] == 2 * 16 * 2**20 + 2 * 512 * 4096
    assert r[("native", "net")]["ops"] == 64 * 2**20  # streamed through loopback
    for k in ["native", "container"]:
        assert int(r[(k, "net")]["check"], 16) == 64 * 2**20  # what the sink counted
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


def test_kvm_row(run):
    """Measured where /dev/kvm can run the bare guest; on PVM (a software KVM)
    only start-up, and every other cell says why; without /dev/kvm, a skip."""
    doc = run[1]
    r = rows(doc)
    why = kvm_usable()
    kvm = next(k for k in doc["kinds"] if k["name"] == "kvm")
    if why:  # no usable /dev/kvm: the reason says so
        assert kvm["status"] == "skipped" and "/dev/kvm" in kvm["reason"]
        for w in WORKLOADS:
            assert r[("kvm", w)]["status"] == "skipped"
            assert r[("kvm", w)]["reason"] == kvm["reason"]
        return
    assert kvm["status"] == "measured"
    for w in KVM_NO_DRIVER:
        assert "no virtio-blk or virtio-net driver" in r[("kvm", w)]["reason"]
    start = r[("kvm", "startup")]
    assert start["status"] == "ok"
    # boot to the first line, as the host saw it: more than a plain exec
    assert min(x["startup_ns"] for x in start["samples"]) > \
        min(x["startup_ns"] for x in r[("native", "startup")]["samples"])
    assert start["peak_rss_kb"] > 1024  # the VMM's, not the guest program's
    if is_pvm():
        for w in ["cpu", "memory", "syscall"]:
            assert r[("kvm", w)]["status"] == "skipped"
            assert "PVM" in r[("kvm", w)]["reason"]
    else:  # hardware KVM: the workload in the guest's ring 3 computes the same
        assert r[("kvm", "cpu")]["check"] == r[("native", "cpu")]["check"]


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
    assert "vessel compare" in text
    # every row not measured is named under the chart
    for k in KINDS:
        if any(not measured(k, w) for w in WORKLOADS):
            assert f"{k} skipped" in text, k
    # one bar per measured (kind, workload): the data gnuplot drew ("?" where
    # a kind measured other workloads but not this one)
    lines = (out / "compare.dat").read_text().split("\n")
    drawn = [k for k in KINDS if any(measured(k, w) for w in WORKLOADS)]
    assert lines[0].split() == ["#", "workload", *drawn]
    data = [l.split() for l in lines[1:] if l.strip()]
    assert [d[0] for d in data] == WORKLOADS
    for d in data:
        assert [v != "?" for v in d[1:]] == [measured(k, d[0]) for k in drawn], d


def test_progress_on_stderr(run):
    err = run[2].stderr
    n = 2 * sum(measured(k, w) for k in KINDS for w in WORKLOADS)
    assert f"[1/{n}] " in err and f"[{n}/{n}] " in err and "left)" in err


def test_table_and_terminal_bars(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the container row needs root")
    p = run_vessel("compare", "--workloads", "cpu,startup", "--kinds", ",".join(KINDS), "--runs",
                   "1", "--scale", "1", "--out", tmp_path, timeout=300)
    assert p.returncode == 0, p.stderr
    if kvm_usable() or is_pvm():
        assert "cpu      kvm             skipped: " in p.stdout
    assert "time relative to native (log scale" in p.stdout
    assert "\nmemory " not in p.stdout.split("WORKLOAD")[1]
    d = json.loads((tmp_path / "compare.json").read_text())
    assert d["workloads"] == ["cpu", "startup"] and len(d["results"]) == 10


@pytest.mark.parametrize("args,needle", [
    (["--runs", "0"], "--runs"),
    (["--runs", "x"], "runs"),
    (["--scale", "0"], "--scale"),
    (["--workloads", "cpu,gpu"], "unknown workload 'gpu'"),
    (["--workloads", "command"], "unknown workload 'command'"),
    (["--kinds", "native,xen"], "unknown kind 'xen'"),
    (["--kinds", ""], "--kinds"),
    (["--"], "'--' needs a command"),
    (["--workloads", "cpu", "--", "true"], "exclude each other"),
    (["--riscv64-binary", "/bin/true"], "--riscv64-binary needs '-- CMD ARGS'"),
    (["--riscv64-binary", "/nonexistent", "--", "true"], "cannot read '/nonexistent'"),
    (["--riscv64-binary", "/bin/true", "--", "true", "a,b"], "'a,b'"),
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
