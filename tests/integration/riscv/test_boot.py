"""The riscv64 board end to end: Debian's OpenSBI and U-Boot, Linux from an
initramfs and from a virtio-blk disk (with OpenSBI and with the built-in SBI),
SMP, the console in both directions, and bad input. Every test runs with the
interpreter and with the translator (`vm run --accel`)."""
import shutil
import subprocess

import pytest

import json
import socket
import threading

import rvhelpers
from rvhelpers import run_rv, vessel_cli


@pytest.fixture(autouse=True, params=["interp", "jit"])
def accel(request):
    rvhelpers.ACCEL = request.param
    yield request.param
    rvhelpers.ACCEL = None

MARKER = "VESSEL-RISCV-READY"


@pytest.mark.parametrize("fw", ["fw_jump.bin", "fw_dynamic.bin", "fw_jump.elf", "fw_dynamic.elf"])
def test_opensbi_banner_and_payload(opensbi, sbi_payload, fw):
    p = run_rv("--bios", opensbi[fw], "--kernel", sbi_payload, "--cpus", "2", timeout=60)
    out = p.stdout
    assert "OpenSBI v" in out, out
    assert "Platform Name             : vessel,riscv-virt" in out
    assert "Platform HART Count       : 2" in out
    assert "Platform Console Device   : uart8250" in out
    assert "aclint-mtimer @ 10000000Hz" in out
    assert "Platform Shutdown Device  : sifive_test" in out
    assert "Domain0 Next Address      : 0x0000000080200000" in out
    assert "PAYLOAD-OK hart-started-in-S-mode" in out
    assert p.returncode == 0, p.stderr


def test_uboot_prompt_answers_version(opensbi, uboot, console):
    c = console("--bios", opensbi["fw_jump.bin"], "--kernel", uboot)
    c.expect("U-Boot 20", timeout=60)
    c.expect("Model: vessel,riscv-virt")
    c.expect("DRAM:  256 MiB")
    c.expect("Hit any key to stop autoboot")
    c.send("\n")
    c.expect("=> ", timeout=60)
    c.send("version\n")
    seen = c.expect("riscv64-linux-gnu-gcc", timeout=30)
    assert "U-Boot 20" in seen


def test_uboot_boots_linux_from_virtio_blk(opensbi, uboot, rv_guest, console, tmp_path):
    """The whole firmware chain: OpenSBI -> U-Boot, which reads Linux and its
    initramfs from an ext4 file system on virtio-blk (U-Boot's own virtio
    driver on vessel's virtio-mmio) and boots it with booti."""
    root = tmp_path / "root"
    (root / "boot").mkdir(parents=True)
    shutil.copy(rv_guest / "vmlinuz", root / "boot/Image")
    shutil.copy(rv_guest / "initrd.img", root / "boot/initrd.img")
    disk = tmp_path / "boot.img"
    subprocess.run(["mke2fs", "-q", "-t", "ext4", "-d", str(root), str(disk), "16M"],
                   check=True, capture_output=True)
    c = console("--bios", opensbi["fw_jump.bin"], "--kernel", uboot, "--disk", disk)
    c.expect("Hit any key to stop autoboot", timeout=60)
    c.send("\n")
    c.expect("=> ", timeout=60)
    for cmd in ("virtio scan",
                "ext4load virtio 0 ${kernel_addr_r} /boot/Image",
                "ext4load virtio 0 ${ramdisk_addr_r} /boot/initrd.img",
                "setenv bootargs console=ttyS0 vessel.poweroff",
                "booti ${kernel_addr_r} ${ramdisk_addr_r}:${filesize} ${fdtcontroladdr}"):
        c.send(cmd + "\n")
        seen = c.expect("=> " if not cmd.startswith("booti") else "Starting kernel", timeout=60)
        assert "Error" not in seen and "not found" not in seen, seen
    c.expect(f"{MARKER} cpus=1 root=initramfs", timeout=120)
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


LINUX_APPEND = "console=ttyS0 earlycon=sbi vessel.poweroff"


@pytest.mark.parametrize("bios", [None, "fw_dynamic.bin", "fw_jump.bin"])
def test_linux_initramfs(rv_guest, opensbi, bios):
    args = ["--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
            "--append", LINUX_APPEND]
    if bios:
        args += ["--bios", opensbi[bios]]
    p = run_rv(*args, timeout=120)
    assert f"{MARKER} cpus=1 root=initramfs" in p.stdout, p.stdout[-3000:] + p.stderr
    assert "Machine model: vessel,riscv-virt" in p.stdout
    assert "reboot: Power down" in p.stdout
    assert p.returncode == 0, p.stderr
    if not bios:
        # the built-in SBI, not firmware, was the guest's SBI implementation
        assert "OpenSBI" not in p.stdout
        assert "SBI implementation ID=0x7665" in p.stdout


@pytest.mark.parametrize("bios", [None, "fw_dynamic.bin"])
def test_linux_smp(rv_guest, opensbi, bios):
    args = ["--cpus", "3", "--kernel", rv_guest / "vmlinuz", "--initrd",
            rv_guest / "initrd.img", "--append", LINUX_APPEND]
    if bios:
        args += ["--bios", opensbi[bios]]
    p = run_rv(*args, timeout=180)
    assert "smp: Brought up 1 node, 3 CPUs" in p.stdout, p.stdout[-3000:] + p.stderr
    assert f"{MARKER} cpus=3" in p.stdout
    assert p.returncode == 0


def test_linux_console_input_and_reboot(rv_guest, console):
    """Keys typed on vessel's stdin reach the guest's shell through the UART
    (interrupt-driven via the PLIC); a guest reboot restarts the machine."""
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0")
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    out = c.command("echo typed-through-the-uart")
    assert "\r\ntyped-through-the-uart\r\n" in out  # the output line, not the echoed input
    out = c.command("uname")
    assert "Linux 6.1" in out and "riscv64" in out
    c.send("reboot\n")
    c.expect("reboot: Restarting system", timeout=60)
    c.expect(MARKER, timeout=120)  # booted a second time
    c.expect("vessel-rv# ")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_linux_sbi_console(rv_guest, console):
    """console=hvc0: the guest's console is the built-in SBI's (legacy
    putchar/getchar), in both directions."""
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=hvc0")
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    out = c.command("echo through-the-sbi-console")
    assert "\r\nthrough-the-sbi-console\r\n" in out  # the output line, not the echoed input
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_no_reboot_exits(rv_guest):
    p = run_rv("--no-reboot", "--kernel", rv_guest / "vmlinuz", "--initrd",
               rv_guest / "initrd.img", "--append", "console=ttyS0 vessel.reboot", timeout=120)
    assert MARKER in p.stdout
    assert "reboot: Restarting system" in p.stdout
    assert p.stdout.count(MARKER) == 1
    assert p.returncode == 0


@pytest.mark.parametrize("bios", [None, "fw_dynamic.bin"])
def test_linux_virtio_blk_ext4(rv_guest, opensbi, tmp_path, bios):
    disk = tmp_path / "disk.img"
    shutil.copy(rv_guest / "disk.img", disk)
    args = ["--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
            "--disk", disk, "--append", "console=ttyS0 vessel.blk vessel.poweroff"]
    if bios:
        args += ["--bios", opensbi[bios]]
    p = run_rv(*args, timeout=120)
    assert "VESSEL-BLK-OK hello from the vessel riscv64 ext4 disk" in p.stdout, \
        p.stdout[-3000:] + p.stderr
    assert p.returncode == 0


def test_linux_root_on_virtio_blk(rv_guest, tmp_path):
    disk = tmp_path / "disk.img"
    shutil.copy(rv_guest / "disk.img", disk)
    p = run_rv("--kernel", rv_guest / "vmlinuz", "--disk", disk, "--append",
               "console=ttyS0 root=/dev/vda rw rootfstype=ext4 init=/init vessel.poweroff",
               timeout=120)
    assert f"{MARKER} cpus=1 root=disk" in p.stdout, p.stdout[-3000:] + p.stderr
    assert "EXT4-fs (vda)" in p.stdout
    assert p.returncode == 0


def test_linux_virtio_rng_net_console(rv_guest, console, tmp_path):
    """The virtio devices shared with the x86 machine, on virtio-mmio."""
    vcon = tmp_path / "vcon.txt"
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0", "--rng", "--net", "user,mac=52:54:00:aa:bb:cc",
                "--virtio-console", f"file:{vcon}")
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    assert "virtio_rng.0" in c.command("cat /sys/class/misc/hw_random/rng_current")
    assert "52:54:00:aa:bb:cc" in c.command("cat /sys/class/net/eth0/address")
    # user networking: the guest reaches a host TCP server through slirp's 10.0.2.2
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    srv.settimeout(60)
    port = srv.getsockname()[1]
    got = []

    def serve():
        conn, _ = srv.accept()
        with conn:
            data = conn.recv(100)
            got.append(data)
            conn.sendall(b"host-saw-" + data)
    th = threading.Thread(target=serve, daemon=True)
    th.start()
    out = c.command(f"net 10.0.2.15 10.0.2.2 {port} tcp-from-riscv")
    assert "net reply: host-saw-tcp-from-riscv" in out
    th.join(5)
    srv.close()
    assert got == [b"tcp-from-riscv"]
    # hvc0 is the SBI console (CONFIG_HVC_RISCV_SBI); virtio-console is hvc1
    c.command("write /dev/hvc1 hello-from-the-riscv-guest")
    assert "SiFive PLIC" in c.command("cat /proc/interrupts")
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
    assert "hello-from-the-riscv-guest" in vcon.read_text()


def test_linux_snapshot_and_restore(rv_guest, console, tmp_path):
    """A Linux guest saved at its shell prompt continues in a new process:
    harts, CLINT (time goes on), PLIC and UART state (typed input still
    interrupts) and the virtio-blk device, all restored."""
    sock = tmp_path / "api.sock"
    disk = tmp_path / "disk.img"
    shutil.copy(rv_guest / "disk.img", disk)
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0", "--cpus", "2", "--api-sock", sock,
                "--disk", disk)
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    assert "\r\nbefore-snapshot\r\n" in c.command("echo before-snapshot")
    assert json.loads(vessel_cli("vm", "pause", "--api-sock", sock))["state"] == "paused"
    snap = tmp_path / "snap"
    vessel_cli("vm", "snapshot", "--api-sock", sock, snap)
    c.close()

    r = console(snap, verb=("vm", "restore"))
    # the prompt was printed before the snapshot: the first command runs at once
    seen = r.command("echo after-restore")
    assert "\r\nafter-restore\r\n" in seen
    assert MARKER not in seen, "the guest booted again instead of continuing"
    assert "\r\n2\r\n" in r.command("nproc")
    r.command("cat /proc/uptime")
    # virtio-blk on virtio-mmio came back too
    out = r.command("blk")
    assert "VESSEL-BLK-OK hello from the vessel riscv64 ext4 disk" in out
    r.send("poweroff\n")
    r.expect("reboot: Power down", timeout=60)
    assert r.p.wait(timeout=30) == 0


# ---- bad input ----------------------------------------------------------


def one_line(stderr):
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1, stderr
    return lines[0]


def test_non_riscv_elf_is_refused():
    p = run_rv("--kernel", "/bin/true")
    assert p.returncode != 0
    assert one_line(p.stderr) == \
        "vessel: kernel /bin/true is an x86-64 ELF, not a RISC-V ELF"


def test_non_riscv_elf_as_bios_is_refused(sbi_payload):
    p = run_rv("--bios", "/bin/true", "--kernel", sbi_payload)
    assert p.returncode != 0
    assert "bios /bin/true is an x86-64 ELF, not a RISC-V ELF" in one_line(p.stderr)


def test_firmware_bigger_than_ram(tmp_path, sbi_payload):
    fw = tmp_path / "huge-fw.bin"
    with open(fw, "wb") as f:
        f.truncate(80 << 20)
    p = run_rv("--memory", "64M", "--bios", fw, "--kernel", sbi_payload)
    assert p.returncode != 0
    line = one_line(p.stderr)
    assert f"bios {fw} (80.0 MiB at 0x80000000) does not fit in RAM (64 MiB at 0x80000000)" \
        in line


def test_initrd_bigger_than_ram(tmp_path, rv_guest):
    big = tmp_path / "big-initrd.img"
    with open(big, "wb") as f:
        f.truncate(40 << 20)
    p = run_rv("--memory", "32M", "--kernel", rv_guest / "vmlinuz", "--initrd", big)
    assert p.returncode != 0
    line = one_line(p.stderr)
    assert "initrd" in line and "does not fit in RAM" in line


def test_wild_jump_in_m_mode_stops_with_hart_state(wild_jump_elf):
    p = run_rv("--kernel", wild_jump_elf, timeout=30)
    assert p.returncode != 0
    err = p.stderr
    last = err.strip().splitlines()[-1]
    assert last.startswith("vessel: riscv64 hart 0 stopped: instruction access fault")
    assert "pc 0x40000000" in last
    assert "no M-mode trap handler" in last
    # the register dump: pc, privilege, and the registers the program set
    assert "priv M" in err
    assert "t0   0000000040000000" in err
    assert "a5   0000000000001234" in err
