"""vessel's virtio devices driven by real Linux drivers (virtio_mmio, virtio_blk,
virtio_net, virtio_rng, virtio_console, vmw_vsock_virtio_transport) in the
riscv64 guest on the emulated board: the same device code x86 plugs into
virtio-pci."""
import hashlib
import http.server
import socket
import threading
import time

import pytest

from vthelpers import debugfs_cat, mkfs_ext4, run_guest


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
    # a second boot reads it back, the big file intact
    g, rc = run_guest(vt_guest, "blkread", "--disk", disk)
    assert g.lines("VT-READ") == ["written by the guest tok-4711"], g.text()
    assert g.lines("VT-BIG") == ["intact"], g.text()
    assert rc == 0


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
