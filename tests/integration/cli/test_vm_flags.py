"""Bad input to `vessel vm run` gets one clear line and a non-zero exit."""
import pytest

from conftest import one_error_line, run_vessel


@pytest.fixture
def kernel_file(tmp_path):
    k = tmp_path / "bzImage"
    k.write_bytes(b"\0" * 4096)
    return k


@pytest.mark.parametrize("args,needle", [
    (["--cpus", "0"], "--cpus"),
    (["--cpus", "1000"], "--cpus"),
    (["--memory", "1M"], "too small"),
    (["--memory", "64T"], "more than the host"),
    (["--memory", "lots"], "--memory"),
    (["--frobnicate"], "--frobnicate"),
    (["--console", "telnet"], "--console"),
    (["--disk", "/nonexistent.img"], "/nonexistent.img"),
    (["--net", "bridge=br0"], "--net"),
])
def test_bad_flag(kernel_file, args, needle):
    p = run_vessel("vm", "run", "--kernel", kernel_file, *args)
    assert p.returncode != 0
    assert needle in one_error_line(p.stderr)


def test_missing_kernel(tmp_path):
    p = run_vessel("vm", "run", "--kernel", tmp_path / "nope")
    assert p.returncode != 0
    line = one_error_line(p.stderr)
    assert "nope" in line and "No such file" in line


def test_missing_initrd(kernel_file, tmp_path):
    p = run_vessel("vm", "run", "--kernel", kernel_file, "--initrd", tmp_path / "nope.img")
    assert p.returncode != 0
    assert "initrd" in one_error_line(p.stderr)


def test_unknown_command():
    p = run_vessel("teleport")
    assert p.returncode != 0
    assert "teleport" in one_error_line(p.stderr)


def test_help_lists_flags():
    p = run_vessel("vm", "run", "--help")
    assert p.returncode == 0
    for flag in ("--kernel", "--initrd", "--append", "--cpus", "--memory", "--console"):
        assert flag in p.stdout
