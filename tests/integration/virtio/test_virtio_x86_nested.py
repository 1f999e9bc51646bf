"""virtio-pci (modern, MSI-X) driven by a stock Debian x86-64 kernel's own
drivers (virtio_pci, virtio_blk, virtio_net, virtio-rng as modules), booted as
L2 under vessel in the nested KVM lab (tests/nested/lab.sh). One L1 session,
two L2 boots: the first writes an ext4 file, gets a DHCP lease over --net
user, fetches a page from a server in L1 and serves one through hostfwd; the
second reads the file back from the same disk attached read-only and fails to
write it (the host then checks the image with debugfs); a third makes vsock
round trips both ways through the unix-socket bridge."""
import base64
import gzip
import os
import re
import subprocess
from pathlib import Path

import pytest

from vthelpers import HERE, ROOT, debugfs_cat, mkfs_ext4, vessel_bin

GUEST1 = r"""
mkdir -p /mnt
mount -t ext4 /dev/vda /mnt && echo written-by-x86-guest > /mnt/x86.txt && umount /mnt && echo VT-X86-BLK-OK
echo "VT-X86-RNG $(cat /sys/class/misc/hw_random/rng_current) $(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \n')"
printf '#!/bin/sh\n[ "$1" = bound ] && ifconfig $interface $ip netmask $subnet && route add default gw $router\nexit 0\n' > /tmp/dh.sh
chmod +x /tmp/dh.sh
ifconfig eth0 up
timeout 30 udhcpc -i eth0 -n -q -t 5 -s /tmp/dh.sh >/dev/null 2>&1
echo "VT-X86-ADDR $(ifconfig eth0 | sed -n 's/.*inet addr:\([0-9.]*\).*/\1/p')"
echo "VT-X86-HTTP $(wget -q -O - http://10.0.2.2:8081/index.html)"
grep virtio /proc/interrupts | sed 's/^/VT-X86-IRQ /'
echo VT-X86-LISTEN
echo hello-over-hostfwd | nc -l -p 23
echo VT-X86-SERVED
"""

GUEST3 = r"""
cat /dev/vda > /tmp/vt && chmod +x /tmp/vt
/tmp/vt guest-connect 1234 ping-from-guest
/tmp/vt guest-listen 5000
"""

GUEST2 = r"""
mkdir -p /mnt
mount -t ext4 -o ro /dev/vda /mnt && echo "VT-X86-READ $(cat /mnt/x86.txt)" && umount /mnt
if echo intruder | dd of=/dev/vda bs=512 seek=64 conv=fsync 2>/dev/null; then echo VT-X86-RO-WRITE-OK; else echo VT-X86-RO-WRITE-REFUSED; fi
"""


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


@pytest.fixture(scope="module")
def lab_out(tmp_path_factory, cache_dir):
    """One L1 session with the three L2 boots; returns (output, image after them)."""
    if not (ROOT / "tests/nested/lab.sh").exists():
        pytest.fail("tests/nested/lab.sh is missing")
    tmp = tmp_path_factory.mktemp("x86virtio")
    disk = tmp / "x86.img"
    mkfs_ext4(disk, 8)
    img64 = base64.b64encode(gzip.compress(disk.read_bytes())).decode()
    peer = tmp / "vsock_peer"
    subprocess.run(["gcc", "-static", "-O2", "-o", str(peer), str(HERE / "vsock_peer.c")],
                   check=True, capture_output=True)
    peer64 = base64.b64encode(gzip.compress(peer.read_bytes())).decode()
    vm = ("vessel vm run --kernel /guest/x86_64/vmlinuz --initrd /guest/x86_64/initrd.img "
          "--memory 256M")
    script = f"""
echo '{img64}' | base64 -d | gunzip > /tmp/d.img
mkdir -p /srv && echo page-from-l1 > /srv/index.html
httpd -p 127.0.0.1:8081 -h /srv
( for i in $(seq 60); do if echo hi | nc 127.0.0.1 2323 > /tmp/fwd.out 2>/dev/null && [ -s /tmp/fwd.out ]; then break; fi; sleep 1; done ) &
timeout 120 {vm} --disk /tmp/d.img --rng --net user,hostfwd=tcp:127.0.0.1:2323-:23 \\
    --append "console=ttyS0 quiet vessel.run={b64(GUEST1)}"
echo "VT-L1-RC1 $?"
wait
echo "VT-L1-FWD $(cat /tmp/fwd.out)"
echo "VT-L1-SUM1 $(md5sum < /tmp/d.img)"
timeout 120 {vm} --disk /tmp/d.img,ro --append "console=ttyS0 quiet vessel.run={b64(GUEST2)}"
echo "VT-L1-RC2 $?"
echo "VT-L1-SUM2 $(md5sum < /tmp/d.img)"
echo '{peer64}' | base64 -d | gunzip > /tmp/vt && chmod +x /tmp/vt
cp /tmp/vt /tmp/vt.img && dd if=/dev/zero bs=512 count=1 >> /tmp/vt.img 2>/dev/null
/tmp/vt host-serve /tmp/v.sock_1234 &
/tmp/vt host-connect /tmp/v.sock 5000 hello-from-l1 > /tmp/hc.out &
timeout 120 {vm} --vsock 3 --vsock-uds /tmp/v.sock --disk /tmp/vt.img,ro \\
    --append "console=ttyS0 quiet vessel.run={b64(GUEST3)}"
echo "VT-L1-RC3 $?"
wait
cat /tmp/hc.out
echo VT-IMG-BEGIN
gzip -c /tmp/d.img | base64
echo VT-IMG-END
"""
    sf = tmp / "lab.sh"
    sf.write_text(script)
    env = dict(os.environ, VESSEL_BIN=str(vessel_bin()), VESSEL_CACHE=str(cache_dir))
    p = subprocess.run([str(ROOT / "tests/nested/lab.sh"), "run", str(sf), "--timeout", "400"],
                       capture_output=True, text=True, timeout=500, env=env, errors="replace")
    out = p.stdout
    (Path(os.environ.get("VT_LAB_LOG", tmp / "lab.out"))).write_text(out + p.stderr)
    if p.returncode == 125:
        pytest.fail(f"the nested lab itself failed:\n{p.stderr[-3000:]}")
    m = re.search(r"VT-IMG-BEGIN\n(.*?)VT-IMG-END", out, re.S)
    back = None
    if m:
        back = tmp / "back.img"
        back.write_bytes(gzip.decompress(base64.b64decode(m.group(1))))
    shown = re.sub(r"VT-IMG-BEGIN\n.*?VT-IMG-END", "(image)", out, flags=re.S)
    return shown + "\n--- stderr ---\n" + p.stderr[-2000:], back


def one(out, prefix):
    got = [l[len(prefix):].strip() for l in out.splitlines() if l.startswith(prefix)]
    assert len(got) == 1, f"{prefix!r}: {got}\n{out[-4000:]}"
    return got[0]


def test_x86_blk_ext4_written_by_guest_seen_by_host(lab_out):
    out, back = lab_out
    assert "VT-X86-BLK-OK" in out, out[-4000:]
    assert one(out, "VT-L1-RC1") == "0"
    assert back is not None, out[-4000:]
    assert debugfs_cat(back, "/x86.txt") == "written-by-x86-guest\n"


def test_x86_blk_readonly_reads_but_refuses_writes(lab_out):
    out, _ = lab_out
    assert one(out, "VT-X86-READ") == "written-by-x86-guest"
    assert "VT-X86-RO-WRITE-REFUSED" in out, out[-4000:]
    assert one(out, "VT-L1-RC2") == "0"
    assert one(out, "VT-L1-SUM1") == one(out, "VT-L1-SUM2")  # not a byte changed


def test_x86_hwrng(lab_out):
    out, _ = lab_out
    src, rnd = one(out, "VT-X86-RNG").split()
    assert src.startswith("virtio_rng") and len(rnd) == 32 and rnd != "0" * 32


def test_x86_msix_vectors_deliver(lab_out):
    """Stock Linux takes an MSI-X vector per queue (plus config) for blk, net
    and rng, and the interrupts arrive on them (vessel raises them through
    KVM irqfds)."""
    out, _ = lab_out
    counts = {}
    for line in out.splitlines():
        m = re.match(r"VT-X86-IRQ\s+\d+:\s+(\d+)\s+PCI-MSI\s+\S+\s+(virtio\S+)", line)
        if m:
            counts[m.group(2)] = int(m.group(1))
    assert len(counts) == 7, out[-4000:]
    # blk, net receive, rng: each queue's own vector fired
    assert counts["virtio0-req.0"] > 0 and counts["virtio1-input.0"] > 0, counts
    assert counts["virtio2-input"] > 0, counts


def test_x86_net_user_dhcp_fetch_hostfwd(lab_out):
    out, _ = lab_out
    assert one(out, "VT-X86-ADDR") == "10.0.2.15"
    assert one(out, "VT-X86-HTTP") == "page-from-l1"
    assert one(out, "VT-L1-FWD") == "hello-over-hostfwd"


def test_x86_vsock_round_trips(lab_out):
    out, _ = lab_out
    # guest -> host: the guest's connect to CID 2 port 1234 reached <uds>_1234
    assert one(out, "VT-VSOCK-RX") == "host got: ping-from-guest"
    # host -> guest: CONNECT 5000 through the uds reached the guest's listener
    assert one(out, "VT-HOST-RX") == "guest got: hello-from-l1"
    assert one(out, "VT-L1-RC3") == "0"
