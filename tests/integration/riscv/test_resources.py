"""Dynamic resources of a running riscv64 Linux guest: the balloon (inflate
lowers what the guest has and the VM process's RSS, deflate gives it back,
statistics arrive, free page reporting returns what the guest freed, the
state survives a snapshot), hart hot-plug through SBI HSM (nproc follows
`vessel vm update --cpus`), a virtio-blk disk grown live and rate-limited
(measured near the limit), and the VM process's own cgroup caps. Numbers
are printed (pytest -s) as well as checked."""
import json
import os
import re
import socket
import subprocess
import threading
import time

import pytest

from rvhelpers import vessel_cli
from vesselpaths import vessel_path

MARKER = "VESSEL-RISCV-READY"
MiB = 1 << 20


def rss(pid) -> int:
    """VmRSS of pid in bytes."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def meminfo(c) -> dict:
    out = c.command("cat /proc/meminfo")
    m = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0].endswith(":") and parts[1].isdigit():
            m[parts[0][:-1]] = int(parts[1]) * 1024
    return m


def info(sock) -> dict:
    return json.loads(vessel_cli("vm", "info", "--api-sock", sock))


def update(sock, *args, check=True):
    p = subprocess.run([str(vessel_path()), "vm", "update", "--api-sock", str(sock),
                        *map(str, args)], capture_output=True, text=True, timeout=120)
    if check:
        assert p.returncode == 0, p.stderr
    return p


def wait_for(pred, what, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}")


def boot(console, rv_guest, sock, *extra):
    c = console("--kernel", rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                "--append", "console=ttyS0", "--api-sock", sock, *extra)
    c.expect(MARKER, timeout=120)
    c.expect("vessel-rv# ")
    return c


def test_balloon_inflate_deflate_and_stats(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    # without deflate-on-oom Linux takes inflated pages out of MemTotal
    c = boot(console, rv_guest, sock, "--memory", "256M",
             "--balloon", "stats=1,deflate-on-oom=off,free-page-reporting=off")
    pid = info(sock)["pid"]
    assert "virtio_balloon" in c.command("ls /sys/bus/virtio/drivers")
    # make most of the guest's free memory resident on the host first
    assert "touched and freed" in c.command("alloc 170", timeout=120)
    b = info(sock)["balloon"]
    assert b["target_bytes"] == 0 and b["max_target_bytes"] == 240 * MiB
    st = wait_for(lambda: info(sock)["balloon"].get("stats"), "balloon statistics")
    assert st["total_memory"] > 200 * MiB and 0 < st["free_memory"] < st["total_memory"]
    assert "available_memory" in st and "minor_faults" in st
    m0, r0 = meminfo(c), rss(pid)

    t0 = time.monotonic()
    out = json.loads(update(sock, "--balloon", "128M").stdout)
    assert out["balloon"]["target_bytes"] == 128 * MiB
    wait_for(lambda: info(sock)["balloon"]["actual_bytes"] == 128 * MiB, "inflate to 128 MiB")
    inflate_s = time.monotonic() - t0
    m1, r1 = meminfo(c), rss(pid)
    print(f"\ninflate 128 MiB: {inflate_s:.2f} s; guest MemTotal {m0['MemTotal'] >> 20} -> "
          f"{m1['MemTotal'] >> 20} MiB, MemAvailable {m0['MemAvailable'] >> 20} -> "
          f"{m1['MemAvailable'] >> 20} MiB; host RSS {r0 >> 20} -> {r1 >> 20} MiB")
    assert m0["MemTotal"] - m1["MemTotal"] >= 120 * MiB
    assert m0["MemAvailable"] - m1["MemAvailable"] >= 100 * MiB
    assert r0 - r1 >= 100 * MiB, f"host RSS fell by only {(r0 - r1) >> 20} MiB"
    assert info(sock)["balloon"]["inflated_bytes"] >= 128 * MiB

    # a target the guest cannot give: refused, nothing changes
    p = update(sock, "--balloon", "1G", check=False)
    assert p.returncode == 1 and "more than the guest can give" in p.stderr, p.stderr
    assert info(sock)["balloon"]["target_bytes"] == 128 * MiB

    update(sock, "--balloon", "0")
    wait_for(lambda: info(sock)["balloon"]["actual_bytes"] == 0, "deflate to 0")
    m2 = meminfo(c)
    print(f"deflate: guest MemTotal back to {m2['MemTotal'] >> 20} MiB")
    assert m2["MemTotal"] >= m0["MemTotal"] - 1 * MiB
    # the guest uses the pages again: they come back as fresh memory
    assert "touched and freed" in c.command("alloc 150", timeout=120)
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_free_page_reporting_returns_freed_memory(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, sock, "--memory", "256M", "--balloon", "on")
    pid = info(sock)["pid"]
    time.sleep(3)  # what boot freed is reported first
    r0 = rss(pid)
    peak = [r0]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss(pid))
            time.sleep(0.02)
    th = threading.Thread(target=sample, daemon=True)
    th.start()
    rep0 = info(sock)["balloon"]["reported_bytes"]
    assert "touched and freed" in c.command("alloc 160", timeout=120)
    t0 = time.monotonic()
    # reporting runs about 2 s after pages are freed, in 4 MiB blocks
    wait_for(lambda: info(sock)["balloon"]["reported_bytes"] - rep0 >= 100 * MiB,
             "free page reports")
    # then the rest of the reports (up to 20 s): at least 90 % of the rise back
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and peak[0] - rss(pid) < 0.9 * (peak[0] - r0):
        time.sleep(0.25)
    stop.set()
    th.join()
    r1 = rss(pid)
    reported = info(sock)["balloon"]["reported_bytes"] - rep0
    back = (peak[0] - r1) / (peak[0] - r0) if peak[0] > r0 else 0
    print(f"\nfree page reporting: RSS {r0 >> 20} -> peak {peak[0] >> 20} -> {r1 >> 20} MiB "
          f"({time.monotonic() - t0:.1f} s after the free), {reported >> 20} MiB reported, "
          f"{100 * back:.0f} % of the rise returned")
    assert peak[0] - r0 >= 120 * MiB, "the guest's allocation did not reach the host"
    assert back >= 0.9, f"only {100 * back:.0f} % of the freed memory came back"
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_resources_survive_snapshot_and_restore(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    disk = tmp_path / "d.img"
    with open(disk, "wb") as f:
        f.truncate(8 * MiB)
    c = boot(console, rv_guest, sock, "--memory", "128M", "--balloon", "stats=1", "--disk",
             f"{disk},bw=1M", "--cpus", "1", "--max-cpus", "2")
    # changed live: kept by the snapshot (the config still says bw=1M, 1 hart)
    update(sock, "--disk", "0,bw=0,iops=300")
    update(sock, "--cpus", "2")  # no vsock bridge: only what the host allows
    update(sock, "--balloon", "32M")
    wait_for(lambda: info(sock)["balloon"]["actual_bytes"] == 32 * MiB, "inflate to 32 MiB")
    wait_for(lambda: info(sock)["balloon"].get("stats"), "balloon statistics")
    snap = tmp_path / "snap"
    vessel_cli("vm", "snapshot", "--api-sock", sock, snap)
    c.close()
    sock2 = tmp_path / "api2.sock"
    r = console(snap, "--api-sock", sock2, verb=("vm", "restore"))
    assert "\r\nafter\r\n" in r.command("echo after")
    i2 = info(sock2)
    assert i2["disks"][0]["rate_limit"]["ops_per_s"] == 300
    assert i2["disks"][0]["rate_limit"]["bytes_per_s"] == 0
    assert i2["vcpus"] == {"present": 2, "allowed": 2, "running": 1}
    b = i2["balloon"]
    assert b["target_bytes"] == 32 * MiB and b["actual_bytes"] == 32 * MiB
    assert b["stats"]["total_memory"] > 0
    # the statistics buffer the guest left with the device still refreshes
    age = b["stats"]["age_ms"]
    wait_for(lambda: info(sock2)["balloon"]["stats"]["age_ms"] < min(age, 1500), "fresh stats")
    update(sock2, "--balloon", "0")
    wait_for(lambda: info(sock2)["balloon"]["actual_bytes"] == 0, "deflate after restore")
    r.send("poweroff\n")
    r.expect("reboot: Power down", timeout=60)


def test_balloon_bad_requests(rv_guest, tmp_path):
    sock = tmp_path / "api.sock"
    # no balloon device: a clear error
    p = subprocess.Popen([str(vessel_path()), "vm", "run", "--arch", "riscv64", "--kernel",
                          rv_guest / "vmlinuz", "--initrd", rv_guest / "initrd.img",
                          "--console", "none", "--api-sock", sock],
                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        wait_for(lambda: sock.exists(), "the API socket", timeout=30)
        r = update(sock, "--balloon", "16M", check=False)
        assert r.returncode == 1 and "no balloon" in r.stderr, r.stderr
        r = update(sock, "--cpus", "2", check=False)
        assert r.returncode == 1 and "1..1" in r.stderr, r.stderr
        assert "balloon" not in info(sock)
    finally:
        p.kill()
        p.wait()
    # flags checked before anything starts
    for spec, msg in (("size=250M", "leaves the guest less than"), ("stats=5000", "stats"),
                      ("bogus=1", "unknown option")):
        q = subprocess.run([str(vessel_path()), "vm", "run", "--arch", "riscv64", "--memory",
                            "256M", "--balloon", spec], capture_output=True, text=True,
                           stdin=subprocess.DEVNULL)
        assert q.returncode != 0 and msg in q.stderr, q.stderr
    q = subprocess.run([str(vessel_path()), "vm", "run", "--arch", "riscv64", "--cpus", "3",
                        "--max-cpus", "2"], capture_output=True, text=True,
                       stdin=subprocess.DEVNULL)
    assert q.returncode != 0 and "max-cpus" in q.stderr, q.stderr


def test_hart_hotplug(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    uds = tmp_path / "vsock.sock"
    c = boot(console, rv_guest, sock, "--cpus", "1", "--max-cpus", "3", "--vsock", "3",
             "--vsock-uds", uds)
    assert "\r\n1\r\n" in c.command("nproc")
    assert info(sock)["vcpus"] == {"present": 3, "allowed": 1, "running": 1}
    # the guest cannot start a hart the host has not plugged
    c.command("write /sys/devices/system/cpu/cpu1/online 1")
    assert "\r\n1\r\n" in c.command("nproc")
    t0 = time.monotonic()
    out = json.loads(update(sock, "--cpus", "3").stdout)
    print(f"\n1 -> 3 harts: {time.monotonic() - t0:.2f} s (agent included)")
    assert out["vcpus"]["running"] == 3
    assert "\r\n3\r\n" in c.command("nproc")
    out = json.loads(update(sock, "--cpus", "2").stdout)
    assert out["vcpus"] == {"present": 3, "allowed": 2, "running": 2}
    assert "\r\n2\r\n" in c.command("nproc")
    p = update(sock, "--cpus", "4", check=False)
    assert p.returncode == 1 and "1..3" in p.stderr, p.stderr
    assert info(sock)["vcpus"]["allowed"] == 2
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_disk_resize_and_rate_limit(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    disk = tmp_path / "data.img"
    with open(disk, "wb") as f:
        f.truncate(32 * MiB)
    ro = tmp_path / "ro.img"
    with open(ro, "wb") as f:
        f.truncate(8 * MiB)
    c = boot(console, rv_guest, sock, "--disk", disk, "--disk", f"{ro},ro")
    assert f"\r\n{32 * MiB // 512}\r\n" in c.command("cat /sys/block/vda/size")
    out = json.loads(update(sock, "--disk", "0,size=48M").stdout)
    assert out["disks"][0]["size"] == 48 * MiB
    assert disk.stat().st_size == 48 * MiB
    # the config interrupt tells the guest; it re-reads the capacity
    wait_for(lambda: f"\r\n{48 * MiB // 512}\r\n" in c.command("cat /sys/block/vda/size"),
             "the guest to see 48 MiB")
    # refused with a clear error, nothing changed: read-only, shrinking
    p = update(sock, "--disk", "1,size=16M", check=False)
    assert p.returncode == 1 and "read-only" in p.stderr, p.stderr
    p = update(sock, "--disk", "0,size=16M", check=False)
    assert p.returncode == 1 and "only grows" in p.stderr, p.stderr
    p = update(sock, "--disk", "5,size=16M", check=False)
    assert p.returncode == 1 and "no disk with index 5" in p.stderr, p.stderr
    assert disk.stat().st_size == 48 * MiB

    def read_rate(mib, block=65536):
        t0 = time.monotonic()
        o = c.command(f"readdev /dev/vda {mib} {block}", timeout=120)
        host_s = time.monotonic() - t0
        assert f"readdev: {mib * MiB} bytes in" in o, o
        return mib * MiB / host_s, host_s

    free_rate, _ = read_rate(8)
    # 2 MiB/s with a 256 KiB burst: 6 MiB take about 3 s
    update(sock, "--disk", "0,bw=2M,bw-burst=256K")
    rate, secs = read_rate(6)
    print(f"\nvirtio-blk reads: unlimited {free_rate / MiB:.1f} MiB/s; limit 2 MiB/s -> "
          f"{rate / MiB:.2f} MiB/s ({secs:.2f} s for 6 MiB)")
    assert 0.8 * 2 * MiB <= rate <= 1.15 * 2 * MiB
    info_disk = info(sock)["disks"][0]
    assert info_disk["rate_limit"]["bytes_per_s"] == 2 * MiB and info_disk["throttled"] > 0
    # operations per second: 200 reads of 4 KiB a second
    update(sock, "--disk", "0,bw=0,iops=200,iops-burst=20")
    t0 = time.monotonic()
    c.command("readdev /dev/vda 2 4096", timeout=120)  # 512 reads
    ops = 512 / (time.monotonic() - t0)
    print(f"limit 200 ops/s -> {ops:.0f} ops/s")
    assert 160 <= ops <= 230
    # off again, live
    update(sock, "--disk", "0,iops=0")
    assert info(sock)["disks"][0]["rate_limit"] is None
    rate, _ = read_rate(4)
    assert rate > 3 * MiB
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def cgroup_file(pid, controller, name):
    """A cgroup file of pid's cgroup for controller (v1 hierarchy, else v2)."""
    for line in open(f"/proc/{pid}/cgroup"):
        _, ctls, path = line.rstrip("\n").split(":", 2)
        if controller in ctls.split(","):
            for mnt in open("/proc/self/mountinfo"):
                f = mnt.split()
                sep = f.index("-")
                if f[sep + 1] == "cgroup" and controller in f[-1].split(","):
                    root = f[3]
                    rel = path[len(root):] if root != "/" and path.startswith(root) else path
                    return f"{f[4]}{rel}/{name}"
    pytest.skip(f"no {controller} cgroup controller here")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_cgroup_caps_for_the_vm_process(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, sock, "--memory", "256M", "--limit-memory", "512M",
             "--limit-cpus", "0.25")
    pid = info(sock)["pid"]
    lim = info(sock)["limits"]
    assert lim["active"] and lim["memory"] == 512 * MiB and lim["cpus"] == 0.25
    assert f"vessel/vm-{pid}" in open(f"/proc/{pid}/cgroup").read()
    quota = cgroup_file(pid, "cpu", "cpu.cfs_quota_us")
    assert open(quota).read().strip() == "25000"
    memlim = cgroup_file(pid, "memory", "memory.limit_in_bytes")
    assert int(open(memlim).read()) == 512 * MiB
    assert lim["memory_usage"] > 16 * MiB  # guest RAM is charged to the VM's cgroup
    # a CPU-bound guest gets about a quarter of a CPU
    def busy_share():
        t0, c0 = time.monotonic(), cpu_seconds(pid)
        for _ in range(4):
            c.command("alloc 200", timeout=300)
        return (cpu_seconds(pid) - c0) / (time.monotonic() - t0)
    stat = cgroup_file(pid, "cpu", "cpu.stat")

    def throttled():
        for line in open(stat):
            if line.startswith("nr_throttled"):
                return int(line.split()[1])
        return 0
    th0 = throttled()
    share = busy_share()
    assert throttled() > th0, "the cap never throttled the VM"
    # live: lift both caps
    out = json.loads(update(sock, "--limit-cpus", "0", "--limit-memory", "0").stdout)
    assert out["limits"]["cpus"] == 0 and out["limits"]["memory"] == 0
    assert open(quota).read().strip() == "-1"
    free_share = busy_share()
    print(f"\n--limit-cpus 0.25: the VM used {share:.2f} CPUs; uncapped {free_share:.2f}")
    # the cap holds; uncapped the share depends on what else runs on the host
    assert share <= 0.32
    p = update(sock, "--limit-cpus", "1000", check=False)
    assert p.returncode == 2 and "number of CPUs" in p.stderr, p.stderr  # refused before sending
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
    # the process left its cgroup and removed it
    assert not os.path.exists(os.path.dirname(quota))


def test_nic_receive_rate_limit(rv_guest, console, tmp_path):
    """The same limit holds frames for the guest back: what it receives
    arrives at the limit's rate, and at once when the limit is lifted."""
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, sock, "--net", "user,bw=128K,bw-burst=16K")
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(120)
    port = srv.getsockname()[1]
    data = b"r" * (512 * 1024)

    def send_one():
        conn, _ = srv.accept()
        with conn:
            conn.sendall(data)

    def received():
        th = threading.Thread(target=send_one, daemon=True)
        th.start()
        out = c.command(f"netrecv 10.0.2.15 10.0.2.2 {port}", timeout=120)
        th.join(30)
        m = re.search(r"netrecv: (\d+) bytes in (\d+) ms", out)
        assert m and int(m.group(1)) == len(data), out
        return len(data) / max(int(m.group(2)), 1) * 1000

    limited = received()  # 512 KiB at 128 KiB/s: about 4 s
    assert info(sock)["nets"][0]["throttled"] > 0
    update(sock, "--net", "0,bw=0")
    free = received()
    print(f"\nvirtio-net receive: limit 128 KiB/s -> {limited / 1024:.0f} KiB/s; "
          f"unlimited {free / 1024:.0f} KiB/s")
    assert limited <= 1.2 * 128 * 1024
    assert free > 2 * limited
    srv.close()
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_nic_transmit_rate_limit(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, sock, "--net", "user,bw=512K,bw-burst=64K")
    assert info(sock)["nets"][0]["rate_limit"]["bytes_per_s"] == 512 * 1024
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    srv.settimeout(120)
    port = srv.getsockname()[1]

    def receive(kib):
        got = {}

        def serve():
            conn, _ = srv.accept()
            with conn:
                n, t0 = 0, None
                while True:
                    d = conn.recv(65536)
                    if not d:
                        break
                    if t0 is None:
                        t0 = time.monotonic()
                    n += len(d)
                got["bytes"], got["secs"] = n, time.monotonic() - t0
        th = threading.Thread(target=serve, daemon=True)
        th.start()
        out = c.command(f"netsend 10.0.2.15 10.0.2.2 {port} {kib}", timeout=120)
        th.join(30)
        assert f"netsend: {kib * 1024} bytes sent" in out, out
        assert got["bytes"] == kib * 1024
        return got["bytes"] / got["secs"]

    limited = receive(1536)  # 1.5 MiB at 512 KiB/s: about 3 s
    update(sock, "--net", "0,bw=0")
    free = receive(1536)
    print(f"\nvirtio-net transmit: limit 512 KiB/s -> {limited / 1024:.0f} KiB/s; "
          f"unlimited {free / 1024:.0f} KiB/s")
    assert 0.8 * 512 * 1024 <= limited <= 1.2 * 512 * 1024
    assert free > 2 * limited
    assert info(sock)["nets"][0]["rate_limit"] is None
    srv.close()
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0


def test_balloon_deflates_on_oom(rv_guest, console, tmp_path):
    sock = tmp_path / "api.sock"
    c = boot(console, rv_guest, sock, "--memory", "256M",
             "--balloon", "stats=0,deflate-on-oom=on,free-page-reporting=off")
    update(sock, "--balloon", "200M")
    wait_for(lambda: info(sock)["balloon"]["actual_bytes"] == 200 * MiB, "inflate to 200 MiB")
    # the guest needs more than the balloon left it: its shrinker deflates
    out = c.command("alloc 150", timeout=300)
    b = info(sock)["balloon"]
    print(f"\ndeflate-on-oom: the guest took {b['deflated_bytes'] >> 20} MiB back, "
          f"{b['actual_bytes'] >> 20} MiB still in the balloon (target {b['target_bytes'] >> 20})")
    assert "touched and freed" in out, out
    assert b["deflated_bytes"] > 0 and b["actual_bytes"] < 200 * MiB
    assert b["target_bytes"] == 200 * MiB  # the host's target stands
    c.send("poweroff\n")
    c.expect("reboot: Power down", timeout=60)
    assert c.p.wait(timeout=30) == 0
