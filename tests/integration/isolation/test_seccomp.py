"""Per-thread seccomp filters of a VM process (src/jail/seccomp_vm.c): a
thread that makes a call outside its list stops the process with a line
naming the thread and the call. The calls are made by the test-only fault
hook VESSEL_TEST_SECCOMP_PROBE (built with -Dtest_hooks=true, the default),
right after the thread installs its filter; the guest is the riscv64
counter, so no /dev/kvm is needed."""
import os
import signal
import subprocess

import pytest

from snaputil import api, counts, wait_for
from vesselpaths import vessel_path

RUN = ("vm", "run", "--arch", "riscv64", "--memory", "64M")


def run_probe(rv_counter, tmp_path, probe, *extra, timeout=30):
    env = dict(os.environ, VESSEL_TEST_SECCOMP_PROBE=probe)
    return subprocess.run([str(vessel_path()), *RUN, "--kernel", str(rv_counter),
                           "--console", f"file:{tmp_path / 'console.log'}",
                           "--api-sock", str(tmp_path / "api.sock"), *extra],
                          env=env, capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("probe,thread,call", [
    ("execve", "rv-hart0 (vcpu)", "execve"),
    ("open", "rv-hart0 (vcpu)", "openat"),      # open("/etc/shadow", O_RDWR)
    ("socket", "rv-hart0 (vcpu)", "socket"),
    ("open@io", "(io)", "openat"),              # I/O threads open read-only only
    ("socket@io", "(io)", "socket"),            # AF_PACKET: no list has it
    ("execve@api", "vessel-api (api)", "execve"),
    ("execve@main", "vessel-main (main)", "execve"),
])
def test_forbidden_call_stops_the_vm_with_a_clear_message(rv_counter, tmp_path, probe, thread,
                                                          call):
    p = run_probe(rv_counter, tmp_path, probe)
    assert p.returncode == -signal.SIGSYS, (p.returncode, p.stderr)
    line = [l for l in p.stderr.splitlines() if l.startswith("vessel: seccomp:")]
    assert line, p.stderr
    assert thread in line[0] and f"made forbidden system call {call}(" in line[0], line[0]


def test_log_mode_lets_the_call_run(rv_counter, tmp_path):
    """--seccomp=log: the call the filter would refuse runs (the kernel logs
    it), the guest keeps counting."""
    env = dict(os.environ, VESSEL_TEST_SECCOMP_PROBE="open")
    console = tmp_path / "console.log"
    sock = tmp_path / "api.sock"
    p = subprocess.Popen([str(vessel_path()), *RUN, "--kernel", str(rv_counter), "--seccomp=log",
                          "--console", f"file:{console}", "--api-sock", str(sock)], env=env,
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True)
    try:
        wait_for(lambda: len(counts(console.read_text() if console.exists() else "")) >= 3
                 or p.poll() is not None, what="count lines")
        assert p.poll() is None, p.stderr.read()
        assert api("stop", sock)
        assert p.wait(timeout=10) == 0
        assert "seccomp" not in p.stderr.read()
        # the kernel logged it: thread, call (openat: 257 on x86-64)
        d = subprocess.run(["dmesg"], capture_output=True, text=True)
        if d.returncode == 0:
            assert any(f"pid={p.pid} " in l and 'comm="rv-hart0"' in l and "syscall=257 " in l
                       for l in d.stdout.splitlines()), "no audit line for the logged call"
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_off_installs_nothing(rv_counter, tmp_path):
    p = subprocess.Popen([str(vessel_path()), *RUN, "--kernel", str(rv_counter), "--seccomp=off",
                          "--console", f"file:{tmp_path / 'c.log'}"],
                         env=dict(os.environ, VESSEL_TEST_SECCOMP_PROBE="execve"),
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: p.poll() is not None or len(counts(
            (tmp_path / "c.log").read_text() if (tmp_path / "c.log").exists() else "")) >= 3,
            what="count lines")
        # the probe's execve of /bin/true replaced the process: it exited 0
        # or it still counts; either way, not SIGSYS
        assert p.poll() in (None, 0), p.returncode
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()


def test_every_thread_is_filtered(vms, rv_counter):
    """From outside: each thread of a running VM process has its filter
    (Seccomp: 2 in /proc/PID/task/TID/status) and no_new_privs, the API
    thread too once a request was served."""
    vm = vms("src", *RUN, "--kernel", rv_counter)
    vm.wait_count(3)
    assert api("info", vm.sock)["state"] == "running"
    tasks = os.listdir(f"/proc/{vm.p.pid}/task")
    assert len(tasks) >= 4
    for tid in tasks:
        st = dict(l.split(":\t", 1)
                  for l in open(f"/proc/{vm.p.pid}/task/{tid}/status").read().splitlines()
                  if ":\t" in l)
        name = st["Name"].strip()
        assert st["Seccomp"].strip() == "2", f"thread {tid} ({name}) runs unfiltered"
        assert st["NoNewPrivs"].strip() == "1", f"thread {tid} ({name})"
    assert vm.stop() == 0
