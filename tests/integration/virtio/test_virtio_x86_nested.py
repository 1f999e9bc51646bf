"""virtio-pci (modern, MSI-X) driven by a stock Debian x86-64 kernel's own
drivers (virtio_pci, virtio_blk, virtio_net, virtio-rng as modules), booted as
L2 under vessel in the nested KVM lab (tests/nested/lab.sh). One L1 session,
two L2 boots: the first writes an ext4 file, gets a DHCP lease over --net
user, fetches a page from a server in L1 and serves one through hostfwd; the
second reads the file back from the same disk attached read-only and fails to
write it. The host then checks the image with debugfs."""
import base64
import gzip
import os
import re
import subprocess
from pathlib import Path

import pytest

from vthelpers import ROOT, debugfs_cat, mkfs_ext4, vessel_bin

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
echo VT-X86-LISTEN
echo hello-over-hostfwd | nc -l -p 23
echo VT-X86-SERVED
"""

GUEST2 = r"""
mkdir -p /mnt
mount -t ext4 -o ro /dev/vda /mnt && echo "VT-X86-READ $(cat /mnt/x86.txt)" && umount /mnt
if echo intruder | dd of=/dev/vda bs=512 seek=64 conv=fsync 2>/dev/null; then echo VT-X86-RO-WRITE-OK; else echo VT-X86-RO-WRITE-REFUSED; fi
"""


def b64(s: str) -> str:
    return base64.b64encode(s.encode()).decode()


def test_x86_virtio_pci_with_stock_debian_kernel(tmp_path, cache_dir):
    if not (ROOT / "tests/nested/lab.sh").exists():
        pytest.fail("tests/nested/lab.sh is missing")
    disk = tmp_path / "x86.img"
    mkfs_ext4(disk, 8)
    img64 = base64.b64encode(gzip.compress(disk.read_bytes())).decode()
    vm = ("vessel vm run --kernel /guest/x86_64/vmlinuz --initrd /guest/x86_64/initrd.img "
          "--memory 256M")
    script = f"""
echo '{img64}' | base64 -d | gunzip > /tmp/d.img
mkdir -p /srv && echo page-from-l1 > /srv/index.html
httpd -p 127.0.0.1:8081 -h /srv
( for i in $(seq 60); do if echo hi | nc 127.0.0.1 2323 > /tmp/fwd.out 2>/dev/null && [ -s /tmp/fwd.out ]; then break; fi; sleep 1; done ) &
timeout 120 {vm} --disk /tmp/d.img --rng --net user,hostfwd=tcp:127.0.0.1:2323-:23 \
    --append "console=ttyS0 quiet vessel.run={b64(GUEST1)}"
echo "VT-L1-RC1 $?"
wait
echo "VT-L1-FWD $(cat /tmp/fwd.out)"
echo "VT-L1-SUM1 $(md5sum < /tmp/d.img)"
timeout 120 {vm} --disk /tmp/d.img,ro --append "console=ttyS0 quiet vessel.run={b64(GUEST2)}"
echo "VT-L1-RC2 $?"
echo "VT-L1-SUM2 $(md5sum < /tmp/d.img)"
echo VT-IMG-BEGIN
gzip -c /tmp/d.img | base64
echo VT-IMG-END
"""
    sf = tmp_path / "lab.sh"
    sf.write_text(script)
    env = dict(os.environ, VESSEL_BIN=str(vessel_bin()), VESSEL_CACHE=str(cache_dir))
    p = subprocess.run([str(ROOT / "tests/nested/lab.sh"), "run", str(sf), "--timeout", "280"],
                       capture_output=True, text=True, timeout=400, env=env, errors="replace")
    out = p.stdout
    (Path(os.environ.get("VT_LAB_LOG", tmp_path / "lab.out"))).write_text(out + p.stderr)
    shown = re.sub(r"VT-IMG-BEGIN\n.*?VT-IMG-END", "(image)", out, flags=re.S)
    if p.returncode == 125:
        pytest.fail(f"the nested lab itself failed:\n{p.stderr[-3000:]}")

    def one(prefix):
        got = [l[len(prefix):].strip() for l in out.splitlines() if l.startswith(prefix)]
        assert len(got) == 1, f"{prefix!r}: {got}\n{shown[-4000:]}\n{p.stderr[-2000:]}"
        return got[0]

    assert "VT-X86-BLK-OK" in out, shown[-4000:]
    src, rnd = one("VT-X86-RNG").split()
    assert src.startswith("virtio_rng") and len(rnd) == 32 and rnd != "0" * 32
    assert one("VT-X86-ADDR") == "10.0.2.15"
    assert one("VT-X86-HTTP") == "page-from-l1"
    assert one("VT-L1-FWD") == "hello-over-hostfwd"
    assert one("VT-L1-RC1") == "0"
    assert one("VT-X86-READ") == "written-by-x86-guest"
    assert "VT-X86-RO-WRITE-REFUSED" in out
    assert one("VT-L1-RC2") == "0"
    assert one("VT-L1-SUM1") == one("VT-L1-SUM2")  # the read-only boot changed nothing
    m = re.search(r"VT-IMG-BEGIN\n(.*?)VT-IMG-END", out, re.S)
    assert m, out[-2000:]
    back = tmp_path / "back.img"
    back.write_bytes(gzip.decompress(base64.b64decode(m.group(1))))
    assert debugfs_cat(back, "/x86.txt") == "written-by-x86-guest\n"
