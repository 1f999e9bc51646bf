"""vessel's virtio devices driven by real Linux drivers (virtio_mmio, virtio_blk,
virtio_net, virtio_rng, virtio_console, vmw_vsock_virtio_transport) in the
riscv64 guest on the emulated board: the same device code x86 plugs into
virtio-pci."""
import hashlib
import http.server
import os
import shutil
import socket
import subprocess
import sys
import threading
import time

import pytest

from vthelpers import Guest, debugfs_cat, mkfs_ext4, run_guest, vessel_bin


def sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_blk_ext4_written_in_guest_seen_by_host_and_read_back(vt_guest, tmp_path):
    disk = tmp_path / "data.img"
    mkfs_ext4(disk)
    g, rc = run_guest(vt_guest, "blkwrite", "--disk", disk, append="vt.token=tok-4711")
    assert "VT-OK blkwrite" in g.out.decode(), g.text()
    assert rc == 0, g.text()
    # the host sees what the guest wrote and flushed
    assert debugfs_cat(disk, "/from-guest.txt") == "written by the guest tok-4711\n"
    # a second boot reads it back, the big file intact; with 2 vCPUs the
    # disk has a queue per vCPU
    g, rc = run_guest(vt_guest, "blkread", "--disk", disk, "--cpus", "2")
    assert g.lines("VT-READ") == ["written by the guest tok-4711"], g.text()
    assert g.lines("VT-BIG") == ["intact"], g.text()
    assert g.lines("VT-MQ") == ["2"], g.text()
    assert rc == 0


def test_blk_flushed_write_survives_kill_9(guest, tmp_path):
    disk = tmp_path / "flush.img"
    mkfs_ext4(disk)
    g = guest("blkflush", "--disk", disk)
    g.wait_for("VT-FLUSHED", timeout=60)
    g.p.kill()  # SIGKILL: vessel gets no chance to write anything back
    g.p.wait()
    # the metadata may still be only in the journal: replay it as a mount would
    subprocess.run(["e2fsck", "-fy", str(disk)], capture_output=True)
    assert debugfs_cat(disk, "/flushed.txt") == "flushed before the kill\n"


def test_blk_readonly_disk_refuses_writes(vt_guest, tmp_path):
    disk = tmp_path / "ro.img"
    mkfs_ext4(disk)
    g, _ = run_guest(vt_guest, "blkwrite", "--disk", disk, append="vt.token=before-ro")
    assert "VT-OK blkwrite" in g.out.decode(), g.text()
    before = sha256(disk)
    g, rc = run_guest(vt_guest, "blkro", "--disk", f"{disk},ro")
    out = g.out.decode()
    # the kernel sees a read-only disk: raw writes fail, no read-write mount
    assert len(g.lines("VT-RO write=")) == 1 and g.lines("VT-RO write=") != ["ok"], g.text()
    assert g.lines("VT-RO mount-rw=") != ["ok"] or g.lines("VT-RO create=") != ["ok"], out
    # reading still works, and not a byte of the image changed
    assert g.lines("VT-READ") == ["written by the guest before-ro"], g.text()
    assert sha256(disk) == before
    assert rc == 0


def test_hwrng_gives_random_bytes(vt_guest):
    seen = []
    for _ in range(2):
        g, rc = run_guest(vt_guest, "rng", "--rng")
        got = g.lines("VT-RNG")
        assert len(got) == 1, g.text()
        source, hexbytes = got[0].split()
        assert source.startswith("virtio_rng"), got
        assert len(hexbytes) == 64 and hexbytes != "0" * 64
        seen.append(hexbytes)
        assert rc == 0
    assert seen[0] != seen[1]


class _Page(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = b"page served by the host\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_net_user_dhcp_fetch_and_hostfwd(guest, tmp_path):
    srv = http.server.HTTPServer(("127.0.0.1", 0), _Page)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    fwd = free_port()
    try:
        g = guest("net", "--net", f"user,mac=52:54:00:ab:cd:ef,hostfwd=tcp:127.0.0.1:{fwd}-:8080",
                  append=f"vt.port={srv.server_port} vt.serve=8080")
        g.wait_for("VT-LISTENING 8080", timeout=60)
        assert g.lines("VT-MAC") == ["52:54:00:ab:cd:ef"], g.text()
        assert g.lines("VT-ADDR") == ["10.0.2.15"], g.text()
        # the guest fetched a page from a server on the host (10.0.2.2 is the host)
        assert g.lines("VT-HTTP") == ["page served by the host"], g.text()
        # and the host reaches a server in the guest through the port forward
        with socket.create_connection(("127.0.0.1", fwd), timeout=20) as c:
            c.sendall(b"hi\n")
            data = b""
            while True:
                chunk = c.recv(4096)
                if not chunk:
                    break
                data += chunk
        assert data == b"hello from the guest over hostfwd\n"
        g.wait_for("VT-SERVED")
        assert g.finish() == 0
    finally:
        srv.shutdown()


def test_virtio_console_socket_both_ways(guest, tmp_path):
    sock_path = tmp_path / "vcon.sock"
    g = guest("vcon", "--virtio-console", f"socket:{sock_path}")
    deadline = time.monotonic() + 20
    while not sock_path.exists():
        assert time.monotonic() < deadline and g.p.poll() is None, g.text()
        time.sleep(0.05)
    c = socket.socket(socket.AF_UNIX)
    c.connect(str(sock_path))
    c.settimeout(30)
    data = b""
    while b"\n" not in data:
        chunk = c.recv(4096)
        assert chunk, g.text()
        data += chunk
    assert data.startswith(b"VT-VCON hello from the guest"), data
    c.sendall(b"ping\n")
    g.wait_for("VT-VCON-RX", timeout=30)
    assert g.lines("VT-VCON-RX") == ["ping"], g.text()
    assert g.finish() == 0
    c.close()


def test_two_net_devices_each_with_its_mac(vt_guest):
    g, rc = run_guest(vt_guest, "netlist", "--net", "user", "--net", "user,mac=52:54:00:00:0b:02")
    assert g.lines("VT-IF") == ["eth0 52:54:00:12:34:56", "eth1 52:54:00:00:0b:02"], g.text()
    assert rc == 0


def _ns(ns, *cmd, **kw):
    return subprocess.run(["ip", "netns", "exec", ns, *map(str, cmd)], **kw)


@pytest.fixture
def tap_netns():
    """A network namespace holding tap vt0 (192.168.77.1/24); the test's vessel
    runs inside it, so nothing touches the host's own network."""
    if os.geteuid() != 0 or not shutil.which("ip") or not os.path.exists("/dev/net/tun"):
        sys.stderr.write("\n*** SKIPPING TAP TEST: needs root, iproute2 and /dev/net/tun ***\n")
        pytest.skip("tap test needs root, iproute2 and /dev/net/tun")
    ns = f"vessel-vt{os.getpid()}"
    subprocess.run(["ip", "netns", "add", ns], check=True)
    try:
        _ns(ns, "ip", "tuntap", "add", "dev", "vt0", "mode", "tap", check=True)
        _ns(ns, "ip", "addr", "add", "192.168.77.1/24", "dev", "vt0", check=True)
        _ns(ns, "ip", "link", "set", "vt0", "up", check=True)
        _ns(ns, "ip", "link", "set", "lo", "up", check=True)
        yield ns
    finally:
        subprocess.run(["ip", "netns", "del", ns])


SERVER = """
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        b = b"page served over tap\\n"
        self.send_response(200); self.send_header("Content-Length", str(len(b))); self.end_headers()
        self.wfile.write(b)
    def log_message(self, *a): pass
http.server.HTTPServer(("192.168.77.1", 8000), H).serve_forever()
"""

CLIENT = """
import socket, time
for i in range(100):
    try:
        c = socket.create_connection(("192.168.77.2", 8080), timeout=5); break
    except OSError:
        time.sleep(0.2)
c.settimeout(60)  # the emulated guest is slow on a loaded host
c.sendall(b"hi\\n"); d = b""
while True:
    x = c.recv(4096)
    if not x: break
    d += x
print(d.decode(), end="")
"""


def test_net_tap_both_ways_in_netns(vt_guest, tap_netns):
    ns = tap_netns
    kernel, initrd = vt_guest
    srv = subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-c", SERVER])
    try:
        g = Guest(vt_guest, "net", "--net", "tap=vt0",
                  append="vt.ip=192.168.77.2 vt.peer=192.168.77.1 vt.port=8000 vt.serve=8080",
                  wrap=["ip", "netns", "exec", ns])
        g.wait_for("VT-LISTENING 8080", timeout=60)
        assert g.lines("VT-HTTP") == ["page served over tap"], g.text()
        c = _ns(ns, sys.executable, "-c", CLIENT, capture_output=True, text=True, timeout=60)
        assert c.stdout == "hello from the guest over hostfwd\n", c.stderr + g.text()
        g.wait_for("VT-SERVED")
        assert g.finish() == 0
    finally:
        srv.kill()
        srv.wait()


def test_vsock_round_trip_through_uds(vt_guest, tmp_path):
    uds = tmp_path / "v.sock"
    listener = socket.socket(socket.AF_UNIX)
    listener.bind(f"{uds}_1234")
    listener.listen(1)

    def serve():
        c, _ = listener.accept()
        line = c.makefile().readline().strip()
        c.sendall(f"host got: {line}\n".encode())
        c.close()
    threading.Thread(target=serve, daemon=True).start()
    g = Guest(vt_guest, "vsock", "--vsock", "3", "--vsock-uds", uds,
              append="vt.port=1234 vt.listen=5000")
    g.wait_any(["VT-NOVSOCK", "VT-VSOCK-RX", "VT-FAIL"])
    assert g.lines("VT-VSOCK-RX") == ["host got: ping from the guest"], g.text()
    g.wait_for("VT-VSOCK-LISTENING")
    with socket.socket(socket.AF_UNIX) as c:
        c.connect(str(uds))
        c.sendall(b"CONNECT 5000\n")
        f = c.makefile("rb")
        assert f.readline().startswith(b"OK ")
        c.sendall(b"hello guest\n")
        assert f.readline() == b"guest got: hello guest\n"
        f.close()  # the fd stays open while the file object lives: the guest waits for EOF
    g.wait_for("VT-VSOCK-SERVED")
    assert g.finish() == 0


def test_snapshot_restore_keeps_virtqueues_working(guest, vt_guest, tmp_path):
    """Snapshot mid-I/O (virtio-blk and virtio-rng busy in a loop); a new
    process restored from it finishes the loop with every request served."""
    disk = tmp_path / "loop.img"
    disk.write_bytes(os.urandom(256 * 1024))
    sock = tmp_path / "api.sock"
    src = guest("ioloop", "--disk", disk, "--rng", "--api-sock", sock, "--memory", "128M")
    src.wait_for("VT-LOOP 5 ", timeout=60)
    snap = tmp_path / "snap"
    p = subprocess.run([str(vessel_bin()), "vm", "snapshot", "--api-sock", str(sock), str(snap)],
                       capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr
    src.p.kill()
    src.p.wait()
    before = [int(l.split()[0]) for l in src.lines("VT-LOOP")]
    r = subprocess.Popen([str(vessel_bin()), "vm", "restore", str(snap)],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    g = Guest.__new__(Guest)
    g.p, g.out, g.err = r, b"", b""
    try:
        g.wait_for("VT-LOOP 60 ", timeout=90)
        after = g.lines("VT-LOOP")
        assert after and all(l.endswith("ok") for l in after), g.text()
        # the restored guest went on from where the snapshot was taken
        assert int(after[0].split()[0]) >= max(before) - 1, (before, after)
    finally:
        if r.poll() is None:
            r.kill()
            r.wait()
