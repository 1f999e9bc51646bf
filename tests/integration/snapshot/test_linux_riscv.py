"""A Linux guest (the riscv64 default guest on the emulated board) across a
snapshot: a new process continues it where it stopped: the shell answers, a
file written before the snapshot is there, its clock (uptime) goes on from
the snapshot; restoring twice gives two identical starts."""
import json
import os
import select
import struct
import subprocess
import time
from pathlib import Path

import pytest

from snaputil import ROOT, vessel, vessel_path

PROMPT = b"vessel-rv# "


@pytest.fixture(scope="module")
def rv_linux(cache_dir) -> Path:
    env = dict(os.environ, VESSEL_GUEST_DIR=str(cache_dir / "guest"))
    p = subprocess.run([str(ROOT / "guest/build-riscv64.sh")], env=env, capture_output=True,
                       text=True, timeout=1500)
    if p.returncode != 0:
        pytest.fail(f"guest/build-riscv64.sh failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return cache_dir / "guest/riscv64"


class Shell:
    def __init__(self, argv):
        self.p = subprocess.Popen([str(vessel_path()), *map(str, argv), "--console", "stdio"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE)
        self.buf = b""

    def expect(self, needle: bytes, timeout=60) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or self.p.poll() is not None:
                raise AssertionError(f"no {needle!r}; output:\n{self.buf[-2000:]!r}\n"
                                     f"{self.p.stderr.read() if self.p.poll() is not None else ''}")
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 0.2))
            if r:
                self.buf += os.read(self.p.stdout.fileno(), 65536)
        i = self.buf.index(needle) + len(needle)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def run(self, line: str) -> str:
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.expect(PROMPT)

    def kill(self):
        self.p.kill()
        self.p.wait()


def uptime(text: str) -> float:
    return float([l for l in text.splitlines() if l and l[0].isdigit()][-1].split()[0])


def test_linux_shell_file_and_clock_survive(rv_linux, tmp_path):
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--append", "console=ttyS0",
                 "--api-sock", sock])
    try:
        src.expect(PROMPT)
        src.run("write /proc/sys/kernel/hostname written-before-the-snapshot")
        before = uptime(src.run("cat /proc/uptime"))
        snap = tmp_path / "snap"
        r = json.loads(vessel("vm", "snapshot", "--api-sock", sock, snap).stdout)
        assert r["type"] == "full"
    finally:
        src.kill()
    starts = []
    for attempt in range(2):
        sh = Shell(["vm", "restore", snap])
        try:
            # no boot: the shell answers at once
            assert "written-before-the-snapshot" in sh.run("cat /proc/sys/kernel/hostname")
            up = uptime(sh.run("cat /proc/uptime"))
            assert before <= up < before + 30, (before, up)
            starts.append(sh.run("uname"))
            # break it: the next restore must not see this
            sh.run("write /proc/sys/kernel/hostname broken")
            assert "broken" in sh.run("cat /proc/sys/kernel/hostname")
        finally:
            sh.kill()
    assert starts[0] == starts[1]


def test_network_after_restore(rv_linux, tmp_path):
    """--net user works in the restored VM: a new TCP connection from the
    guest reaches a host server through the restored virtio-net device."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]

    def serve():
        while True:
            try:
                c, _ = srv.accept()
            except OSError:
                return
            c.sendall(b"echo:" + c.recv(100))
            c.close()
    threading.Thread(target=serve, daemon=True).start()
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--net", "user", "--append",
                 "console=ttyS0", "--api-sock", sock])
    try:
        src.expect(PROMPT)
        assert "net reply: echo:before" in src.run(f"net 10.0.2.15 10.0.2.2 {port} before")
        vessel("vm", "snapshot", "--api-sock", sock, tmp_path / "snap")
    finally:
        src.kill()
    sh = Shell(["vm", "restore", tmp_path / "snap"])
    try:
        assert "net reply: echo:after" in sh.run(f"net 10.0.2.15 10.0.2.2 {port} after")
    finally:
        sh.kill()
        srv.close()


def test_guest_writes_qcow2_overlay(rv_linux, tmp_path):
    """A Linux guest writes its disk (a qcow2 overlay made by qemu-img on a raw
    base) through virtio-blk; qemu-img accepts the result and sees the data,
    the base stays untouched; a restore writes into its own new overlay."""
    base = tmp_path / "base.raw"
    base.write_bytes(b"\0" * (1 << 20))
    disk = tmp_path / "disk.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(disk)], check=True)
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--disk", disk, "--append",
                 "console=ttyS0", "--api-sock", sock])
    try:
        src.expect(PROMPT)
        src.run("write /dev/vda written-by-the-guest")
        vessel("vm", "snapshot", "--api-sock", sock, tmp_path / "snap")
    finally:
        src.kill()

    def head(img):
        raw = tmp_path / "head.raw"
        subprocess.run(["qemu-img", "convert", "-U", "-O", "raw", str(img), str(raw)], check=True)
        return raw.read_bytes()[:64].decode(errors="replace")
    subprocess.run(["qemu-img", "check", "-q", str(disk)], check=True)
    assert "written-by-the-guest" in head(disk)
    assert base.read_bytes() == b"\0" * (1 << 20)
    ov = tmp_path / "restore-overlays"
    sh = Shell(["vm", "restore", tmp_path / "snap", "--overlay-dir", ov])
    try:
        sh.run("write /dev/vda after-the-restore")
    finally:
        sh.kill()
    subprocess.run(["qemu-img", "check", "-q", str(ov / "disk0.qcow2")], check=True)
    assert "after-the-restore" in head(ov / "disk0.qcow2")
    assert "written-by-the-guest" in head(disk), "the snapshot's disk was written"


# ---- open TCP connections over --net user across a restore -----------------
#
# The host sockets behind a guest's connections belong to the VM process that
# opened them; a restored VM is a new process, so its guest's connections
# cannot go on (libslirp's own state does not carry them either). What the
# tests show: the source's connections survive the snapshot itself, the host
# end sees EOF when the source goes away, and the restored guest's socket is
# reset promptly (ECONNRESET) even while the guest just waits to receive —
# never a guest hanging on a connection nobody remembers. New connections work.

GUEST_WAIT = 60  # the guest's own recv timeout: "tcp: timeout" means it hung


def tcp_fd(text: str, what: str) -> int:
    for line in text.splitlines():
        if line.startswith(f"tcp: {what} fd "):
            return int(line.split()[-1])
    raise AssertionError(f"no 'tcp: {what} fd' in {text!r}")


def recv_until_eof(conn, timeout=20) -> bytes:
    """Everything the peer sends until EOF (or a reset); fails on a hang."""
    import socket
    conn.settimeout(timeout)
    got = b""
    try:
        while True:
            b = conn.recv(4096)
            if not b:
                return got
            got += b
    except ConnectionResetError:
        return got
    except socket.timeout:
        raise AssertionError(f"the host end saw neither EOF nor a reset (got {got!r})")


def restored_guest_sees_reset(snap, run_after=None):
    """Restore SNAP, whose guest is blocked in `tcp recv FD GUEST_WAIT`: the
    restored guest's recv must end with a reset, not a timeout."""
    sh = Shell(["vm", "restore", snap])
    try:
        out = sh.expect(PROMPT, timeout=GUEST_WAIT + 60)
        assert "tcp: timeout" not in out, f"the restored guest hung on its connection: {out!r}"
        assert "tcp: error: Connection reset by peer" in out, out
        if run_after:
            run_after(sh)
    finally:
        sh.kill()


def snapshot_while_guest_receives(src, fd, api_sock, snap, host_end):
    """Snapshot while the guest waits in recv on fd; the source's connection
    goes on after its snapshot (host_end's data reaches the guest)."""
    src.p.stdin.write(f"tcp recv {fd} {GUEST_WAIT}\n".encode())
    src.p.stdin.flush()
    time.sleep(0.5)
    vessel("vm", "snapshot", "--api-sock", api_sock, snap)
    host_end.sendall(b"after-the-snapshot")
    assert "tcp recv: after-the-snapshot" in src.expect(PROMPT)


def test_guest_to_host_connection_is_reset_after_restore(rv_linux, tmp_path):
    import socket
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    srv.settimeout(60)
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--net", "user", "--append",
                 "console=ttyS0", "--api-sock", sock])
    try:
        src.expect(PROMPT)
        src.run("tcp up 10.0.2.15")
        fd = tcp_fd(src.run(f"tcp connect 10.0.2.2 {port}"), "connected")
        conn, _ = srv.accept()
        src.run(f"tcp send {fd} ping")
        conn.settimeout(20)
        assert conn.recv(100) == b"ping"
        snapshot_while_guest_receives(src, fd, sock, tmp_path / "snap", conn)
    finally:
        src.kill()
    # the host end: EOF once the source VM is gone
    assert recv_until_eof(conn) == b""
    conn.close()

    def new_connection_works(sh):
        fd2 = tcp_fd(sh.run(f"tcp connect 10.0.2.2 {port}"), "connected")
        c2, _ = srv.accept()
        c2.sendall(b"fresh")
        assert "tcp recv: fresh" in sh.run(f"tcp recv {fd2} 20")
        c2.close()
    try:
        restored_guest_sees_reset(tmp_path / "snap", new_connection_works)
    finally:
        srv.close()


def free_port() -> int:
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_hostfwd_connection_is_reset_after_restore(rv_linux, tmp_path):
    import socket
    hport = free_port()
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--net",
                 f"user,hostfwd=tcp:127.0.0.1:{hport}-:7000", "--append", "console=ttyS0",
                 "--api-sock", sock])
    try:
        src.expect(PROMPT)
        src.run("tcp up 10.0.2.15")
        lfd = tcp_fd(src.run("tcp listen 7000"), "listening")
        cli = socket.create_connection(("127.0.0.1", hport), timeout=20)
        afd = tcp_fd(src.run(f"tcp accept {lfd}"), "accepted")
        cli.sendall(b"hello")
        assert "tcp recv: hello" in src.run(f"tcp recv {afd} 20")
        src.run(f"tcp send {afd} world")
        assert cli.recv(100) == b"world"
        snapshot_while_guest_receives(src, afd, sock, tmp_path / "snap", cli)
    finally:
        src.kill()
    assert recv_until_eof(cli) == b""
    cli.close()

    def new_connection_works(sh):
        c2 = socket.create_connection(("127.0.0.1", hport), timeout=20)
        fd2 = tcp_fd(sh.run(f"tcp accept {lfd}"), "accepted")
        c2.sendall(b"fresh")
        assert "tcp recv: fresh" in sh.run(f"tcp recv {fd2} 20")
        c2.close()
    restored_guest_sees_reset(tmp_path / "snap", new_connection_works)


def test_diff_snapshot_of_a_restored_vm(rv_linux, tmp_path):
    """A restored VM's first diff snapshot needs no full one: its parent is
    the snapshot it was restored from (pages written since the restore),
    the next diff chains on it; restoring each diff gives the guest as it
    was at that diff."""
    sock = tmp_path / "api.sock"
    src = Shell(["vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz", "--initrd",
                 rv_linux / "initrd.img", "--memory", "256M", "--append", "console=ttyS0",
                 "--api-sock", sock])
    try:
        src.expect(PROMPT)
        src.run("write /proc/sys/kernel/hostname at-the-full-snapshot")
        vessel("vm", "snapshot", "--api-sock", sock, tmp_path / "full")
    finally:
        src.kill()
    sock2 = tmp_path / "api2.sock"
    a = Shell(["vm", "restore", tmp_path / "full", "--api-sock", sock2])
    try:
        a.run("write /proc/sys/kernel/hostname at-the-first-diff")
        info = json.loads(vessel("vm", "info", "--api-sock", sock2).stdout)
        assert info["last_snapshot"]["path"] == str(tmp_path / "full")
        assert info["last_snapshot"]["diff_possible"]
        d1 = json.loads(vessel("vm", "snapshot", "--api-sock", sock2, "--diff",
                               tmp_path / "d1").stdout)
        assert d1["type"] == "diff"
        a.run("write /proc/sys/kernel/hostname at-the-second-diff")
        d2 = json.loads(vessel("vm", "snapshot", "--api-sock", sock2, "--diff",
                               tmp_path / "d2").stdout)
        assert d2["type"] == "diff"
    finally:
        a.kill()
    full_bytes = os.stat(tmp_path / "full/memory").st_blocks * 512
    d1_bytes = os.stat(tmp_path / "d1/memory").st_blocks * 512
    print(f"full {full_bytes >> 10} KiB, first diff after the restore {d1_bytes >> 10} KiB")
    assert 0 < d1_bytes < full_bytes / 4, (d1_bytes, full_bytes)
    raw = (tmp_path / "d2/vmstate").read_bytes()  # blob 0 is the manifest
    off, length = struct.unpack_from("<Q", raw, 24)[0], struct.unpack_from("<Q", raw, 56)[0]
    man = json.loads(raw[off:off + length])
    assert man["parent"]["path"] == str(tmp_path / "d1")
    for snap, want in (("d1", "at-the-first-diff"), ("d2", "at-the-second-diff")):
        sh = Shell(["vm", "restore", tmp_path / snap])
        try:
            assert want in sh.run("cat /proc/sys/kernel/hostname")
        finally:
            sh.kill()
