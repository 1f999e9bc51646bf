"""Live migration between two hosts made on this machine (network
namespaces joined by veth): a guest moves and goes on there; every failure
leaves the source guest running as if nothing happened, with nothing left
behind; a guest dirtying memory faster than the link converges only with
auto-converge."""
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from migutil import Guest, fd_count  # noqa: E402

PORT = 4444


def source_counter(src, rv_counter, sock):
    g = Guest(src.vessel("vm", "run", "--arch", "riscv64", "--memory", "64M", "--kernel",
                         rv_counter, "--console", "stdio", "--api-sock", sock))
    g.expect(b"count 00000003", timeout=60)
    return g


def source_linux(src, rv_linux, sock, memory="256M", extra=()):
    g = Guest(src.vessel("vm", "run", "--arch", "riscv64", "--kernel", rv_linux / "vmlinuz",
                         "--initrd", rv_linux / "initrd.img", "--memory", memory, "--append",
                         "console=ttyS0", "--console", "stdio", "--api-sock", sock, *extra))
    g.expect(b"vessel-rv# ", timeout=120)
    return g


def destination(dst, *extra, port=PORT):
    g = Guest(dst.vessel("vm", "run", "--incoming", f"tcp:{dst.addr}:{port}", "--console",
                         "stdio", *extra))
    dst.wait_listening(port, g.p)
    return g


def migrate(src, sock, to, *flags, timeout=120):
    return src.run("vm", "migrate", "--api-sock", sock, "--to", to, *flags, timeout=timeout)


def ticks(g) -> int:
    """The count the guest's ticker (a tight loop in the guest) reached."""
    for _ in range(50):
        m = re.search(r"^(\d+) (\d+)\r?$", g.run("cat /ticker"), re.M)
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    raise AssertionError("the guest's ticker wrote nothing")


def counts_on(d, last):
    """The counter guest, moved, counts on at the destination from last (the
    source's final count): no restart, no jump."""
    deadline = time.monotonic() + 30
    while not d.counts() or d.counts()[-1] < last + 3:
        assert d.p.poll() is None, d.stderr()
        assert time.monotonic() < deadline, f"no counting on the destination: {d.all[-500:]}"
        d.pump(0.2)
    first = d.counts()[0]
    assert last <= first <= last + 2, f"source stopped at {last}, destination began at {first}"
    assert b"guest broken" not in d.all


def still_counting(g, before=None):
    """The counter guest keeps printing, and never restarted from 0."""
    n = len(g.counts())
    deadline = time.monotonic() + 20
    while len(g.counts()) < n + 3:
        assert g.p.poll() is None, f"the source exited {g.p.returncode}: {g.stderr()}"
        assert time.monotonic() < deadline, "the source's counter stopped"
        time.sleep(0.05)
    c = g.counts()
    assert c == sorted(c) and c[0] == 0 and c == list(range(len(c))), "the counter restarted"
    assert b"guest broken" not in g.all


def test_counter_continues_on_the_other_host(hosts, rv_counter, tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_counter(src, rv_counter, sock)
    d = destination(dst, "--api-sock", tmp_path / "dst.sock")
    try:
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}")
        assert p.returncode == 0, p.stderr
        assert "migrated: downtime" in p.stdout, p.stdout
        assert g.p.wait(timeout=20) == 0, "the source must exit 0 once the guest runs elsewhere"
        # the destination's console goes on from where the source's stopped
        counts_on(d, g.counts()[-1])
        info = json.loads(dst.run("vm", "info", "--api-sock", tmp_path / "dst.sock").stdout)
        assert info["state"] == "running" and info["arch"] == "riscv64"
    finally:
        g.kill()
        d.kill()


def test_x86_counter_continues_on_the_other_host(kvm, hosts, tmp_path):
    """The tier-1 x86 guest on /dev/kvm (vCPU, LAPIC/IOAPIC, PIT, kvm-clock
    state and KVM's dirty log) moves and counts on, from where it was."""
    sys.path.insert(0, str(HERE.parent / "snapshot"))
    from snaputil import x86_guest_dir
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = Guest(src.vessel("vm", "run", "--kernel", x86_guest_dir() / "guest.elf", "--append",
                         "test=counter touch=64", "--memory", "256M", "--console", "stdio",
                         "--api-sock", sock))
    d = None
    try:
        g.expect(b"count 00000003", timeout=60)
        d = destination(dst, "--api-sock", tmp_path / "dst.sock", "--arch", "x86_64")
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}")
        assert p.returncode == 0, p.stderr
        m = re.search(r"downtime ([0-9.]+) ms", p.stdout)
        assert m, p.stdout
        assert g.p.wait(timeout=20) == 0
        counts_on(d, g.counts()[-1])
        info = json.loads(dst.run("vm", "info", "--api-sock", tmp_path / "dst.sock").stdout)
        assert info["state"] == "running" and info["arch"] == "x86_64"
    finally:
        g.kill()
        if d:
            d.kill()


def test_linux_guest_moves_with_its_shell_files_and_clock(hosts, rv_linux, tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock)
    d = None
    try:
        g.run("write /proc/sys/kernel/hostname written-before-the-move")
        g.run("ticker")
        time.sleep(0.3)
        count_before = ticks(g)
        up_before = float([l for l in g.run("cat /proc/uptime").splitlines()
                           if l[:1].isdigit()][-1].split()[0])
        d = destination(dst)
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}", "--downtime-limit", "20ms")
        assert p.returncode == 0, p.stderr
        assert g.p.wait(timeout=20) == 0
        # the same shell answers on the destination, with what was written before
        assert "written-before-the-move" in d.run("cat /proc/sys/kernel/hostname")
        assert ticks(d) > count_before, "the guest's own loop did not go on"
        up_after = float([l for l in d.run("cat /proc/uptime").splitlines()
                          if l[:1].isdigit()][-1].split()[0])
        assert up_before <= up_after < up_before + 60
    finally:
        g.kill()
        if d:
            d.kill()


def test_every_failure_leaves_the_source_running(hosts, rv_linux, tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock)
    to = f"tcp:{dst.addr}:{PORT}"
    try:
        g.run("write /proc/sys/kernel/hostname still-the-source")
        fds = fd_count(g.p.pid)

        def source_fine():
            assert g.p.poll() is None, g.stderr()
            assert "still-the-source" in g.run("cat /proc/sys/kernel/hostname")
            assert fd_count(g.p.pid) == fds, "the failed migration left an fd behind"
            st = json.loads(src.run("vm", "info", "--api-sock", sock).stdout)
            assert st["state"] == "running"

        # nobody listening
        p = migrate(src, sock, to)
        assert p.returncode == 1 and "connecting to" in p.stderr, p.stderr
        source_fine()

        # a destination that refuses the machine (it takes x86_64 only)
        d = destination(dst, "--arch", "x86_64")
        p = migrate(src, sock, to)
        assert p.returncode == 1 and "refused" in p.stderr and "x86_64" in p.stderr, p.stderr
        assert d.p.wait(timeout=10) != 0
        source_fine()

        # the destination dies mid-stream (a capped link makes the stream last)
        d = destination(dst)
        m = subprocess.Popen(src.vessel("vm", "migrate", "--api-sock", sock, "--to", to,
                                        "--bandwidth", "4M", "--quiet"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        d.kill()
        out, err = m.communicate(timeout=60)
        assert m.returncode == 1 and "failed" in err, err
        source_fine()
        assert not dst.listening(PORT)

        # one byte changed on the way (a proxy on the destination's host)
        d = destination(dst)
        proxy = subprocess.Popen(dst.cmd(sys.executable, HERE / "flip_proxy.py", dst.addr,
                                         PORT + 1, dst.addr, PORT, 300000),
                                 stdout=subprocess.PIPE, text=True)
        assert proxy.stdout.readline().strip() == "ready"
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT + 1}")
        assert p.returncode == 1 and "corrupted" in p.stderr, p.stderr
        assert d.p.wait(timeout=10) != 0
        assert "corrupted" in d.stderr()
        proxy.kill()
        proxy.wait()
        source_fine()

        # cancelled
        d = destination(dst)
        p = migrate(src, sock, to, "--bandwidth", "2M", "--detach")
        assert p.returncode == 0, p.stderr
        time.sleep(0.8)
        p = src.run("vm", "migrate", "--api-sock", sock, "--cancel")
        assert p.returncode == 0, p.stderr
        st = json.loads(src.run("vm", "migrate", "--api-sock", sock, "--status").stdout)
        assert st["state"] == "cancelled", st
        assert d.p.wait(timeout=15) != 0
        source_fine()

        # the link cut while memory streams: TCP gives up within seconds
        d = destination(dst)
        m = subprocess.Popen(src.vessel("vm", "migrate", "--api-sock", sock, "--to", to,
                                        "--bandwidth", "2M", "--quiet"),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(1.0)
        subprocess.run(dst.cmd("ip", "link", "set", dst.dev, "down"), check=True)
        out, err = m.communicate(timeout=90)
        assert m.returncode == 1 and "failed" in err, err
        d.kill()
        subprocess.run(dst.cmd("ip", "link", "set", dst.dev, "up"), check=True)
        source_fine()

        # after all that, a migration goes through
        d = destination(dst)
        p = migrate(src, sock, to)
        assert p.returncode == 0, p.stderr
        assert g.p.wait(timeout=20) == 0
        assert "still-the-source" in d.run("cat /proc/sys/kernel/hostname")
        d.kill()
    finally:
        g.kill()


def test_a_guest_outrunning_the_link_converges_only_with_auto_converge(hosts, rv_linux,
                                                                        tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock)
    to = f"tcp:{dst.addr}:{PORT}"
    try:
        # 24 MiB rewritten over and over, faster than a 16 MiB/s link carries
        g.run("dirty 24 4000")
        time.sleep(1)
        d = destination(dst)
        p = migrate(src, sock, to, "--bandwidth", "16M", "--downtime-limit", "100ms",
                    "--detach")
        assert p.returncode == 0, p.stderr
        time.sleep(6)
        st = json.loads(src.run("vm", "migrate", "--api-sock", sock, "--status").stdout)
        assert st["state"] == "active" and st["round"] >= 2, st
        assert st["expected_downtime_ms"] > 100 and st["dirty_rate"] > st["bandwidth"] / 2, st
        assert src.run("vm", "migrate", "--api-sock", sock, "--cancel").returncode == 0
        assert d.p.wait(timeout=15) != 0

        d = destination(dst)
        p = migrate(src, sock, to, "--bandwidth", "16M", "--downtime-limit", "100ms",
                    "--auto-converge", timeout=180)
        assert p.returncode == 0, p.stderr
        assert g.p.wait(timeout=20) == 0
        assert "vessel-rv" in d.run("echo still-here")
        d.kill()
    finally:
        g.kill()


def wait_state(src, sock, want, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        st = json.loads(src.run("vm", "migrate", "--api-sock", sock, "--status").stdout)
        if st["state"] == want:
            return st
        assert st["state"] in ("setup", "active", "completing", "postcopy"), st
        assert time.monotonic() < deadline, st
        time.sleep(0.05)


def test_postcopy_moves_a_guest_outrunning_the_link(hosts, rv_linux, tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock)
    d = None
    try:
        g.run("write /proc/sys/kernel/hostname written-before-the-move")
        g.run("ticker")
        g.run("dirty 24 4000")
        time.sleep(1)
        before = ticks(g)
        d = destination(dst)
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}", "--bandwidth", "16M",
                    "--downtime-limit", "20ms", "--postcopy", timeout=180)
        assert p.returncode == 0, p.stderr
        assert "post-copy after round" in p.stdout, p.stdout
        assert g.p.wait(timeout=20) == 0
        # the guest ran on the destination before its last pages arrived,
        # and has all of them now
        assert "written-before-the-move" in d.run("cat /proc/sys/kernel/hostname")
        assert ticks(d) > before
        assert b"Oops" not in d.all and b"Unable to handle" not in d.all, d.all[-3000:]
    finally:
        g.kill()
        if d:
            d.kill()


def test_postcopy_without_its_source_says_the_guest_is_lost(hosts, rv_linux, tmp_path):
    src, dst = hosts
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock)
    d = None
    try:
        g.run("dirty 24 4000")
        time.sleep(1)
        d = destination(dst)
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}", "--bandwidth", "4M", "--postcopy",
                    "--detach")
        assert p.returncode == 0, p.stderr
        wait_state(src, sock, "postcopy", timeout=120)
        g.kill()  # the source host dies mid post-copy
        assert d.p.wait(timeout=30) != 0, "a guest with holes must not run on"
        err = d.stderr()
        assert "the guest is lost" in err, err
    finally:
        g.kill()
        if d:
            d.kill()


def make_certs(d: Path, ip: str):
    """A CA, a certificate for the destination's address signed by it, and a
    second CA that signed nothing of it."""
    def ossl(*args):
        subprocess.run(["openssl", *map(str, args)], check=True, capture_output=True)
    for ca in ("ca", "rogue"):
        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", d / f"{ca}.key", "-out", d / f"{ca}.pem", "-days", "2",
             "-subj", f"/CN=vessel test {ca}")
    ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout",
         d / "dst.key", "-out", d / "dst.csr", "-subj", "/CN=destination")
    (d / "ext").write_text(f"subjectAltName=IP:{ip}\n")
    ossl("x509", "-req", "-in", d / "dst.csr", "-CA", d / "ca.pem", "-CAkey", d / "ca.key",
         "-CAcreateserial", "-out", d / "dst.pem", "-days", "2", "-extfile", d / "ext")


def test_migration_over_tls(hosts, rv_counter, tmp_path):
    src, dst = hosts
    make_certs(tmp_path, dst.addr)
    sock = tmp_path / "src.sock"
    to = f"tcp:{dst.addr}:{PORT}"
    g = source_counter(src, rv_counter, sock)
    try:
        # a destination whose certificate the source's CA did not sign
        d = destination(dst, "--tls-cert", tmp_path / "dst.pem", "--tls-key", tmp_path / "dst.key")
        p = migrate(src, sock, to, "--tls-ca", tmp_path / "rogue.pem")
        assert p.returncode == 1 and "TLS handshake" in p.stderr, p.stderr
        assert d.p.wait(timeout=15) != 0
        still_counting(g)
        # a plain source to a TLS destination is refused too
        d = destination(dst, "--tls-cert", tmp_path / "dst.pem", "--tls-key", tmp_path / "dst.key")
        p = migrate(src, sock, to)
        assert p.returncode == 1, p.stderr
        assert d.p.wait(timeout=15) != 0
        still_counting(g)
        # pre-shared keys that differ
        (tmp_path / "a.psk").write_text("vessel:" + "11" * 32 + "\n")
        (tmp_path / "b.psk").write_text("vessel:" + "22" * 32 + "\n")
        d = destination(dst, "--tls-psk", tmp_path / "a.psk")
        p = migrate(src, sock, to, "--tls-psk", tmp_path / "b.psk")
        assert p.returncode == 1 and "TLS handshake" in p.stderr, p.stderr
        assert d.p.wait(timeout=15) != 0
        still_counting(g)
        # the right CA: the guest moves, encrypted
        d = destination(dst, "--tls-cert", tmp_path / "dst.pem", "--tls-key", tmp_path / "dst.key")
        p = migrate(src, sock, to, "--tls-ca", tmp_path / "ca.pem")
        assert p.returncode == 0, p.stderr
        assert g.p.wait(timeout=20) == 0
        counts_on(d, g.counts()[-1])
        d.kill()
    finally:
        g.kill()


def test_the_destination_announces_the_guest_on_its_network(hosts, rv_counter, tmp_path):
    """Over tap networking the new host's bridge must learn the guest's MAC at
    once: the destination sends RARP frames from it (QEMU's self-announce)."""
    src, dst = hosts
    mac = "52:54:00:ab:cd:ef"
    for h in (src, dst):
        subprocess.run(h.cmd("ip", "tuntap", "add", "vtap0", "mode", "tap"), check=True)
        subprocess.run(h.cmd("ip", "link", "set", "vtap0", "up"), check=True)
    sniffer = subprocess.Popen(dst.cmd(sys.executable, "-c", """
import socket, sys
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(0x8035))
s.bind(("vtap0", 0))
s.settimeout(60)
print("ready", flush=True)
f = s.recv(100)
print(f[6:12].hex(":"), f[12:14].hex(), f[20:22].hex(), flush=True)
"""), stdout=subprocess.PIPE, text=True)
    assert sniffer.stdout.readline().strip() == "ready"
    sock = tmp_path / "src.sock"
    g = Guest(src.vessel("vm", "run", "--arch", "riscv64", "--memory", "64M", "--kernel",
                         rv_counter, "--console", "stdio", "--api-sock", sock, "--net",
                         f"tap=vtap0,mac={mac}"))
    g.expect(b"count 00000003", timeout=60)
    d = destination(dst)
    try:
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}")
        assert p.returncode == 0, p.stderr
        out, _ = sniffer.communicate(timeout=30)
        src_mac, ethertype, op = out.split()
        assert (src_mac, ethertype, op) == (mac, "8035", "0003"), out
    finally:
        sniffer.kill()
        g.kill()
        d.kill()


MiB = 1 << 20


def peek(g, dev, off) -> str:
    """The text in the 4 KiB block at off of dev, read past the guest's page
    cache (O_DIRECT): what the disk holds."""
    out = g.run(f"peek {dev} {off}")
    m = re.search(r"peek: \[([^\]]*)\]", out)
    assert m, out
    return m.group(1).rstrip(".")


def migration_state(src, sock) -> dict:
    p = src.run("vm", "migrate", "--api-sock", sock, "--status")
    return json.loads(p.stdout) if p.returncode == 0 else {}


def test_local_disks_move_with_the_guest(hosts, rv_linux, tmp_path):
    """--copy-disks: a raw disk and a qcow2 overlay (on a base image both
    hosts have, where the destination allows it) move with the memory; what
    the host wrote before boot, what
    the guest wrote before the move and what it wrote while the memory was
    still streaming are on the destination's disks, read there past the
    page cache; the overlay stays an overlay of the same base."""
    src, dst = hosts
    sdir, store = tmp_path / "source", tmp_path / "storage"
    sdir.mkdir()
    store.mkdir()
    raw, base, overlay = sdir / "data.img", tmp_path / "base.img", sdir / "system.qcow2"
    with open(raw, "wb") as f:
        f.truncate(16 * MiB)
        f.seek(4 * MiB)
        f.write(b"written-by-the-host")
    with open(base, "wb") as f:
        f.truncate(32 * MiB)
        f.seek(2 * MiB)
        f.write(b"from-the-base-image")
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", "-b", str(base), "-F", "raw",
                    str(overlay)], check=True)
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock, extra=("--disk", raw, "--disk", overlay))
    d = mig = None
    try:
        assert "poke: ok" in g.run(f"poke /dev/vda {MiB} written-before-the-move")
        assert "poke: ok" in g.run(f"poke /dev/vdb {MiB} overlay-before-the-move")
        # the source names the overlay's base, but this host decides which
        # files a guest may read: outside --storage and --allow-backing, no
        d = destination(dst, "--storage", store)
        p = migrate(src, sock, f"tcp:{dst.addr}:{PORT}", "--copy-disks")
        assert p.returncode == 1 and "outside --storage" in p.stderr, p.stderr
        assert d.p.wait(timeout=10) != 0 and list(store.iterdir()) == []
        assert "alive" in g.run("echo alive")
        d = destination(dst, "--storage", store, "--allow-backing", tmp_path)
        # a capped link keeps the memory streaming while the guest writes on
        mig = subprocess.Popen(src.vessel("vm", "migrate", "--api-sock", sock, "--to",
                                          f"tcp:{dst.addr}:{PORT}", "--copy-disks",
                                          "--bandwidth", "4M", "--quiet"),
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 30
        while migration_state(src, sock).get("state") != "active":
            assert time.monotonic() < deadline and mig.poll() is None, mig.stderr.read()
            time.sleep(0.05)
        # the disks' first pass is done once memory streams
        while migration_state(src, sock).get("disk_bytes_sent", 0) == 0:
            assert time.monotonic() < deadline and mig.poll() is None, mig.stderr.read()
            time.sleep(0.05)
        assert "poke: ok" in g.run(f"poke /dev/vda {MiB} written-during-the-move")
        assert "poke: ok" in g.run(f"poke /dev/vdb {3 * MiB} overlay-during-the-move")
        assert migration_state(src, sock).get("state") == "active", \
            "the migration ended before the guest wrote: nothing was tested"
        out, err = mig.communicate(timeout=180)
        assert mig.returncode == 0, err
        assert g.p.wait(timeout=20) == 0
        # on the destination, read from its disks
        assert peek(d, "/dev/vda", MiB) == "written-during-the-move"
        assert peek(d, "/dev/vda", 4 * MiB) == "written-by-the-host"
        assert peek(d, "/dev/vdb", MiB) == "overlay-before-the-move"
        assert peek(d, "/dev/vdb", 2 * MiB) == "from-the-base-image"
        assert peek(d, "/dev/vdb", 3 * MiB) == "overlay-during-the-move"
        # the destination's own files: raw stays raw and sparse, the overlay
        # an overlay of the same base holding only its own clusters
        moved_raw, moved_ov = store / "data.img", store / "system.qcow2"
        assert moved_raw.stat().st_size == 16 * MiB
        assert moved_raw.stat().st_blocks * 512 < 2 * MiB
        info = json.loads(subprocess.run(["qemu-img", "info", "--output=json", str(moved_ov)],
                                         capture_output=True, text=True, check=True).stdout)
        assert info["format"] == "qcow2" and info["backing-filename"] == str(base), info
        assert info["virtual-size"] == 32 * MiB and info["actual-size"] < 4 * MiB, info
        # the source's disks are as the source left them
        assert raw.read_bytes()[MiB:MiB + 23] == b"written-during-the-move"
    finally:
        if mig and mig.poll() is None:
            mig.kill()
        g.kill()
        if d:
            d.kill()


def test_moving_disks_are_refused_where_they_cannot_land(hosts, rv_linux, tmp_path):
    """A destination without --storage, or one that already has a file by
    that name, refuses before anything runs: the source goes on, the file
    there is untouched, nothing is left behind."""
    src, dst = hosts
    raw, store = tmp_path / "data.img", tmp_path / "storage"
    store.mkdir()
    with open(raw, "wb") as f:
        f.truncate(8 * MiB)
    sock = tmp_path / "src.sock"
    g = source_linux(src, rv_linux, sock, extra=("--disk", raw))
    to = f"tcp:{dst.addr}:{PORT}"
    try:
        d = destination(dst)
        p = migrate(src, sock, to, "--copy-disks")
        assert p.returncode == 1 and "--storage" in p.stderr, p.stderr
        assert d.p.wait(timeout=10) != 0
        assert "alive" in g.run("echo alive")
        (store / "data.img").write_bytes(b"precious")
        d = destination(dst, "--storage", store)
        p = migrate(src, sock, to, "--copy-disks")
        assert p.returncode == 1 and "already exists" in p.stderr, p.stderr
        assert d.p.wait(timeout=10) != 0
        assert (store / "data.img").read_bytes() == b"precious"
        assert sorted(x.name for x in store.iterdir()) == ["data.img"]
        assert g.p.poll() is None
        assert "alive" in g.run("echo alive")
        st = json.loads(src.run("vm", "info", "--api-sock", sock).stdout)
        assert st["state"] == "running"
    finally:
        g.kill()
