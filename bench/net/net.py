"""bench/net: TCP throughput between L1 (the VMM's host in the nested lab) and
the same L2 guest on vessel and on QEMU microvm, both with user-mode
networking (libslirp in both VMMs), measured with iperf3 in the guest:
guest -> host (upload) and host -> guest (-R, download). Prints Mbit/s per
direction and the vessel/QEMU ratio. A tap row needs a tun device in L1,
which the lab's L1 kernel does not load; run `--net tap=` by hand on a host
with KVM to compare tap throughput.
"""
import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "blk"))
import vbench  # noqa: E402

GUEST = r"""
printf '#!/bin/sh\n[ "$1" = bound ] && ifconfig $interface $ip netmask $subnet && route add default gw $router\nexit 0\n' > /tmp/dh.sh
chmod +x /tmp/dh.sh
ifconfig eth0 up
timeout 30 udhcpc -i eth0 -n -q -t 5 -s /tmp/dh.sh >/dev/null 2>&1
for dir in up down; do
  R=; [ $dir = down ] && R=-R
  echo "BENCH $TAG $dir $(run iperf3 -c 10.0.2.2 -t $SECS $R -f m | grep -E 'receiver$' | tail -1)"
done
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", default="512M")
    a = ap.parse_args()

    def guest(tag):
        return (vbench.GUEST_PRELUDE + f"TAG={tag}\nSECS={a.seconds}\n" + GUEST)
    script = vbench.l1_prelude(["iperf3"]) + f"""
run iperf3 -s -D -B 127.0.0.1
sleep 1
{vbench.vessel_vm(a.memory, a.cpus, "--net user --disk /tmp/tools.img,ro", guest("vessel"))}
{vbench.qemu_vm(a.memory, a.cpus,
                "-netdev user,id=n0 -device virtio-net-device,netdev=n0 "
                "-drive id=d1,file=/tmp/tools.img,format=raw,if=none,readonly=on "
                "-device virtio-blk-device,drive=d1", guest("qemu"))}
"""
    out = vbench.run_lab(script, timeout=600 + 4 * a.seconds * 2)
    res = {}
    for line in out.splitlines():
        m = re.match(r"BENCH (\w+) (up|down) .*?([\d.]+) Mbits/sec", line)
        if m:
            res[(m.group(1), m.group(2))] = float(m.group(3))
    if not res:
        sys.exit("no results; lab output:\n" + out[-4000:])
    print(f"\nbench/net: nested lab, user networking (libslirp) in both VMMs, {a.cpus} vCPU, "
          f"iperf3 {a.seconds}s per direction")
    print(f"{'direction':<22} {'vessel':>12} {'qemu-microvm':>14} {'vessel/QEMU':>12}")
    for d, label in (("up", "guest -> host"), ("down", "host -> guest")):
        v, q = res.get(("vessel", d)), res.get(("qemu", d))
        print(f"{label:<22} {('-' if v is None else f'{v:.0f} Mbit/s'):>12} "
              f"{('-' if q is None else f'{q:.0f} Mbit/s'):>14} {vbench.ratio(v, q):>12}")


if __name__ == "__main__":
    main()
