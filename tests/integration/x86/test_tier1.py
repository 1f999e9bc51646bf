"""Tier 1: vessel's x86 KVM machine runs the project's own test guest
(tests/guests/x86) and the guest reports, over COM1, what it saw."""
import os
import pty
import re
import select
import signal
import subprocess
import time

import pytest

from conftest import one_error_line, run_vessel, vessel_path


def vm(guest, *args, timeout=60, **kw):
    return run_vessel("vm", "run", "--kernel", guest, *args, timeout=timeout, **kw)


def test_hello_and_poweroff(kvm, x86_guest):
    p = vm(x86_guest)
    assert p.returncode == 0, p.stderr
    assert "64-bit entry" in p.stdout
    assert "hello from the vessel test guest" in p.stdout
    assert p.stderr == ""


def test_pvh_entry(kvm, x86_guest32):
    p = vm(x86_guest32, "--append", "test=hello")
    assert p.returncode == 0, p.stderr
    assert "pvh entry" in p.stdout
    assert "hello from the vessel test guest" in p.stdout


@pytest.mark.parametrize("mem,expect_kib", [
    ("256M", 256 * 1024 - 1024 + 639),             # RAM below the EBDA + above 1 MiB
    ("4G", 4 * 1024 * 1024 - 1024 + 639),          # split around the PCI hole
])
def test_e820(kvm, x86_guest, mem, expect_kib):
    p = vm(x86_guest, "--append", "test=e820", "--memory", mem)
    assert p.returncode == 0, p.stderr
    entries = re.findall(r"e820: ([0-9a-f]+) ([0-9a-f]+) (\d)", p.stdout)
    assert ("0", "9fc00", "1") in entries
    assert ("e0000", "20000", "2") in entries  # the ACPI tables' area is reserved
    total = int(re.search(r"ram total kib: (\d+)", p.stdout).group(1))
    assert total == expect_kib
    if mem == "4G":
        assert ("100000000", "40000000", "1") in entries


def test_cmdline_reaches_guest(kvm, x86_guest):
    p = vm(x86_guest, "--append", "test=hello extra=words")
    assert 'cmdline "test=hello extra=words"' in p.stdout


@pytest.mark.parametrize("cpus", [1, 4, 64])
def test_smp_each_cpu_reports_its_apic_id(kvm, x86_guest, cpus):
    p = vm(x86_guest, "--append", "test=smp", "--cpus", str(cpus))
    assert p.returncode == 0, p.stderr
    ids = sorted(int(x) for x in re.findall(r"cpu up: apic id (\d+)", p.stdout))
    assert ids == list(range(cpus))
    assert f"smp: {cpus} cpus up" in p.stdout


def test_port_and_mmio_exits(kvm, x86_guest):
    p = vm(x86_guest, "--append", "test=io")
    assert p.returncode == 0, p.stderr
    out = p.stdout
    assert "port 0x1234: ffffffff" in out            # unclaimed port floats high
    assert "pci 00:00.0: d578086" in out             # host bridge via 0xcf8/0xcfc
    assert "pci 00:1f.0: ffffffff" in out            # empty slot
    assert "mmio 0xd0000000: ffffffff" in out        # unclaimed MMIO
    assert "ioapic version: 11" in out               # in-kernel IOAPIC
    year = time.gmtime().tm_year
    assert f"rtc year: {year} regb 2" in out        # CMOS RTC: host time, BCD, 24 h


def test_serial_input_from_a_pipe(kvm, x86_guest):
    p = vm(x86_guest, "--append", "test=echo", input="hello world.")
    assert p.returncode == 0, p.stderr
    assert "HELLO WORLD" in p.stdout
    assert "echo: done" in p.stdout


def test_console_file_and_none(kvm, x86_guest, tmp_path):
    log = tmp_path / "console.log"
    p = vm(x86_guest, "--console", f"file:{log}")
    assert p.returncode == 0, p.stderr
    assert p.stdout == ""
    assert "hello from the vessel test guest" in log.read_text()
    p = vm(x86_guest, "--console", "none")
    assert p.returncode == 0 and p.stdout == ""


@pytest.mark.parametrize("via", ["cf9", "kbd"])
def test_reboot_with_no_reboot_exits_0(kvm, x86_guest, via):
    p = vm(x86_guest, "--append", f"test=reboot via={via}", "--no-reboot")
    assert p.returncode == 0, p.stderr
    assert p.stdout.count("vessel test guest:") == 1


def test_reboot_boots_again(kvm, x86_guest):
    proc = subprocess.Popen([str(vessel_path()), "vm", "run", "--kernel", str(x86_guest),
                             "--append", "test=reboot"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    out = b""
    deadline = time.time() + 30
    while out.count(b"vessel test guest:") < 3 and time.time() < deadline:
        r, _, _ = select.select([proc.stdout], [], [], 1)
        if r:
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                break
            out += chunk
    proc.send_signal(signal.SIGTERM)
    proc.wait(timeout=10)
    assert out.count(b"vessel test guest:") >= 3
    assert proc.returncode == 128 + signal.SIGTERM


def test_reboot_resets_every_vcpu(kvm, x86_guest):
    """Three boots in one VM: the APs take INIT/SIPI again after each reset."""
    p = vm(x86_guest, "--append", "test=reboot-smp", "--cpus", "4")
    assert p.returncode == 0, p.stderr
    assert [int(b) for b in re.findall(r"^boot (\d+)", p.stdout, re.M)] == [1, 2, 3]
    assert p.stdout.count("smp: 4 cpus up") == 3


def test_triple_fault_exits_nonzero_with_registers(kvm, x86_guest):
    p = vm(x86_guest, "--append", "test=triple")
    assert p.returncode != 0
    assert "triple fault next" in p.stdout
    assert "triple fault (KVM_EXIT_SHUTDOWN)" in p.stderr
    assert re.search(r"rip=[0-9a-f]{16}", p.stderr)
    assert "cr3=0000000000009000" in p.stderr


def test_ctrl_a_x_quits_from_a_terminal(kvm, x86_guest):
    pid, fd = pty.fork()
    if pid == 0:
        os.execv(str(vessel_path()), ["vessel", "vm", "run", "--kernel", str(x86_guest),
                                      "--append", "test=hang"])
    out = b""
    deadline = time.time() + 30
    while b"hanging" not in out and time.time() < deadline:
        r, _, _ = select.select([fd], [], [], 1)
        if r:
            out += os.read(fd, 4096)
    assert b"hanging" in out
    os.write(fd, b"\x01x")
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def test_sigterm_stops_the_vm(kvm, x86_guest):
    proc = subprocess.Popen([str(vessel_path()), "vm", "run", "--kernel", str(x86_guest),
                             "--append", "test=hang"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = proc.stdout.readline() + proc.stdout.readline()
    assert b"hanging" in line
    proc.terminate()
    assert proc.wait(timeout=10) == 128 + signal.SIGTERM


# ---- bad input: one clear line, non-zero, nothing started ----

def test_not_a_kernel(kvm, tmp_path):
    k = tmp_path / "junk"
    k.write_bytes(b"\x7fELF" + b"\0" * 60)
    p = run_vessel("vm", "run", "--kernel", k)
    assert p.returncode != 0
    assert "junk" in one_error_line(p.stderr)
    k.write_bytes(b"MZ" + b"\0" * 8192)
    p = run_vessel("vm", "run", "--kernel", k)
    assert "not a bzImage" in one_error_line(p.stderr)


def test_old_bzimage_refused(kvm, tmp_path):
    img = bytearray(8192)
    img[0x1f1] = 4
    img[0x1fe:0x200] = b"\x55\xaa"
    img[0x202:0x206] = b"HdrS"
    img[0x206:0x208] = (0x0204).to_bytes(2, "little")
    k = tmp_path / "old"
    k.write_bytes(bytes(img))
    p = run_vessel("vm", "run", "--kernel", k)
    assert p.returncode != 0
    assert "too old" in one_error_line(p.stderr)


def test_initrd_too_big(kvm, x86_guest, tmp_path):
    big = tmp_path / "initrd"
    with open(big, "wb") as f:
        f.truncate(300 << 20)
    p = run_vessel("vm", "run", "--kernel", x86_guest, "--initrd", big, "--memory", "256M")
    assert p.returncode != 0
    assert "do not fit" in one_error_line(p.stderr)
    assert p.stdout == ""


def test_no_dev_kvm(x86_guest):
    if os.geteuid() != 0:
        pytest.skip("needs root to hide /dev/kvm in a mount namespace")
    script = 'mount -t tmpfs none /dev && exec "$0" vm run --kernel "$1"'
    p = subprocess.run(["unshare", "-m", "sh", "-c", script, str(vessel_path()),
                        str(x86_guest)], capture_output=True, text=True, timeout=30)
    if "vessel" not in p.stderr:
        pytest.skip(f"cannot make a mount namespace here: {p.stderr.strip()}")
    assert p.returncode != 0
    assert "/dev/kvm" in one_error_line(p.stderr)
    assert "No such file" in p.stderr


def test_dev_kvm_permission_denied(kvm, x86_guest, tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root to drop privileges")
    if os.stat("/dev/kvm").st_mode & 0o006:
        pytest.skip("/dev/kvm is world-accessible here: nobody may open it")
    p = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        str(vessel_path()), "vm", "run", "--kernel", str(x86_guest)],
                       capture_output=True, text=True, timeout=30)
    if "Permission denied" in p.stderr and "/dev/kvm" not in p.stderr:
        pytest.skip("nobody cannot read the build tree")
    assert p.returncode != 0
    assert "Permission denied" in one_error_line(p.stderr)


def _read_until(pipe, done, deadline) -> bytes:
    """What a running vessel writes to pipe until done(bytes so far), EOF or the deadline."""
    got = b""
    while not done(got) and time.time() < deadline:
        r, _, _ = select.select([pipe], [], [], 1.0)
        if r:
            chunk = os.read(pipe.fileno(), 4096)
            if not chunk:
                break
            got += chunk
    return got


def _own_rss_kib(pid):
    """RSS outside the process's largest mapping (the guest RAM), and the
    mappings other than that one that hold transparent huge pages."""
    maps, cur = [], None
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            m = re.match(r"^([0-9a-f]+)-([0-9a-f]+) ", line)
            if m:
                cur = {"size": int(m.group(2), 16) - int(m.group(1), 16), "head": line.strip()}
                maps.append(cur)
                continue
            m = re.match(r"^(Rss|AnonHugePages):\s+(\d+) kB", line)
            if m and cur is not None:
                cur[m.group(1)] = int(m.group(2))
    ram = max(maps, key=lambda x: x["size"])
    rest = [x for x in maps if x is not ram]
    return sum(x.get("Rss", 0) for x in rest), [x["head"] for x in rest if x.get("AnonHugePages")]


def test_vmm_own_memory_stays_under_5_mib(kvm, x86_guest):
    """The VMM's own resident memory (everything but guest RAM) with 2 vCPUs
    running stays under 5 MiB (issue #2's target), and none of it sits in
    transparent huge pages: on a THP=always host an 8 MiB thread stack
    would take a 2 MiB page per thread. (Each thread also costs its static
    TLS, zeroed at thread start: keep large buffers out of __thread.)"""
    p = subprocess.Popen([str(vessel_path()), "vm", "run", "--kernel", str(x86_guest), "--cpus",
                          "2", "--memory", "256M", "--append", "test=echo"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        out = _read_until(p.stdout, lambda b: b"echo: ready" in b, deadline)
        assert b"echo: ready" in out, out.decode(errors="replace")
        own_kib, huge = _own_rss_kib(p.pid)
        p.stdin.write(b".")
        p.stdin.flush()
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == 0
    assert not huge, f"VMM memory in huge pages: {huge}"
    assert own_kib < 5 * 1024, f"the VMM's own RSS is {own_kib} KiB"


def test_sigusr1_prints_every_vcpus_registers_and_keeps_running(kvm, x86_guest):
    """SIGUSR1 makes every vCPU print its registers on stderr (where a guest
    that hangs without a word is stuck); the VM keeps running."""
    p = subprocess.Popen([str(vessel_path()), "vm", "run", "--kernel", str(x86_guest), "--cpus",
                          "2", "--append", "test=echo"],
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.time() + 30
        out = _read_until(p.stdout, lambda b: b"echo: ready" in b, deadline)
        assert b"echo: ready" in out, out.decode(errors="replace")
        p.send_signal(signal.SIGUSR1)
        err = _read_until(p.stderr, lambda b: b.count(b"registers:") >= 2, deadline)
        p.stdin.write(b"ok.")
        p.stdin.flush()
        rest, err2 = p.communicate(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    err = (err + err2).decode(errors="replace")
    assert "vCPU 0 registers:" in err and "vCPU 1 registers:" in err, err
    assert re.search(r"rip=[0-9a-f]{16}", err), err
    assert p.returncode == 0, err
    assert b"OK" in out + rest and b"echo: done" in out + rest
