"""bench/net: TCP throughput between L1 (the VMM's host in the nested lab) and
the same L2 guest on vessel and on QEMU microvm, measured with iperf3 in the
guest: guest -> host (upload) and host -> guest (-R, download), over two
NICs at once:

  user  user-mode networking (libslirp in both VMMs), to 10.0.2.2 (L1's
        127.0.0.1);
  tap   a tap device in L1 (tap0, 10.0.3.1/24; the guest is 10.0.3.2) with
        the virtio-net header and offloads: vessel `--net tap=tap0`, QEMU
        `-netdev tap,vnet_hdr=on`. Skipped when L1 has no /dev/net/tun.

The host is shared and L1 runs under TCG, so one run of each VMM varies by
tens of percent and the first L2 of a session pays for warming L1 up. The
VMMs therefore take turns, ABBA (vessel, QEMU, QEMU, vessel with the default
--rounds 2), and each row is the mean over a VMM's runs; the single runs are
printed too.
"""
import argparse
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "blk"))
import vbench  # noqa: E402

USER_MAC, TAP_MAC = "52:54:00:00:01:01", "52:54:00:00:01:02"

# $TAG and $SECS are set before this; interfaces are found by MAC (the VMMs
# enumerate their devices in different orders); the tap NIC is there only
# when L1 could make tap0.
GUEST = r"""
ifname() { for i in /sys/class/net/*; do [ "$(cat $i/address)" = "$1" ] && basename $i; done; }
U=$(ifname USER_MAC)
printf '#!/bin/sh\n[ "$1" = bound ] && ifconfig $interface $ip netmask $subnet && route add default gw $router\nexit 0\n' > /tmp/dh.sh
chmod +x /tmp/dh.sh
ifconfig $U up
timeout 30 udhcpc -i $U -n -q -t 5 -s /tmp/dh.sh >/dev/null 2>&1
bench() {
  for dir in up down; do
    R=; [ $dir = down ] && R=-R
    # bounded: a stuck run is reported, it does not eat the whole session
    r=$(timeout $((SECS + 40)) /tmp/f/ld-linux-x86-64.so.2 --library-path /tmp/f /tmp/f/iperf3 \
        -c $2 -t $SECS $R -f m | grep -E 'receiver$' | tail -1)
    echo "BENCH $TAG $1 $dir ${r:-failed}"
  done
}
bench user 10.0.2.2
T=$(ifname TAP_MAC)
if [ -n "$T" ]; then
  ifconfig $T 10.0.3.2 netmask 255.255.255.0 up
  bench tap 10.0.3.1
fi
""".replace("USER_MAC", USER_MAC).replace("TAP_MAC", TAP_MAC)

L1_SETUP = r"""
run iperf3 -s -D -B 127.0.0.1
TAP=0
if [ -c /dev/net/tun ] && tunctl -t tap0 >/dev/null && ifconfig tap0 10.0.3.1 netmask 255.255.255.0 up; then
  TAP=1
  run iperf3 -s -D -B 10.0.3.1
else
  echo "BENCH-NOTE no tap: L1 has no /dev/net/tun"
fi
sleep 1
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2,
                    help="runs per VMM, in ABBA order (vessel first on odd rounds)")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", default="512M")
    a = ap.parse_args()

    def guest(tag):
        return vbench.GUEST_PRELUDE + f"TAG={tag}\nSECS={a.seconds}\n" + GUEST

    def vm(kind):
        if kind == "vessel":
            nets = f"--net user,mac={USER_MAC} $VTAP"
            return vbench.vessel_vm(a.memory, a.cpus, f"{nets} --disk /tmp/tools.img,ro",
                                    guest("vessel"))
        nets = (f"-netdev user,id=n0 -device virtio-net-device,netdev=n0,mac={USER_MAC} $QTAP "
                "-drive id=d1,file=/tmp/tools.img,format=raw,if=none,readonly=on "
                "-device virtio-blk-device,drive=d1")
        return vbench.qemu_vm(a.memory, a.cpus, nets, guest("qemu"))

    order = []
    for r in range(a.rounds):
        order += ["vessel", "qemu"] if r % 2 == 0 else ["qemu", "vessel"]
    limit = 120 + 4 * (a.seconds + 40)
    runs = "\n".join(f"timeout {limit} {vm(k)}" for k in order)
    script = vbench.l1_prelude(["iperf3"]) + L1_SETUP + f"""
VTAP=; QTAP=
if [ $TAP = 1 ]; then
  VTAP="--net tap=tap0,mac={TAP_MAC}"
  QTAP="-netdev tap,id=n1,ifname=tap0,script=no,downscript=no,vnet_hdr=on -device virtio-net-device,netdev=n1,mac={TAP_MAC}"
fi
"""
    script += runs + "\n"
    out = vbench.run_lab(script, timeout=600 + len(order) * (60 + 4 * (a.seconds + 5)))
    res, failed = {}, []
    for line in out.splitlines():
        f = re.match(r"BENCH (\w+) (user|tap) (up|down) failed", line)
        if f:
            failed.append(" ".join(f.groups()))
        m = re.match(r"BENCH (\w+) (user|tap) (up|down) .*?([\d.]+) Mbits/sec", line)
        if m:
            res.setdefault((m.group(1), m.group(2), m.group(3)), []).append(float(m.group(4)))
    if not res:
        sys.exit("no results; lab output:\n" + out[-4000:])
    print(f"\nbench/net: nested lab, {a.cpus} vCPU, iperf3 {a.seconds}s per direction, "
          f"{a.rounds} runs per VMM in ABBA order (mean; single runs in brackets)")
    if failed:
        print(f"runs that did not finish (left out of the means): {', '.join(failed)}")
    if "BENCH-NOTE no tap" in out:
        print("tap: not measured (L1 has no /dev/net/tun)")
    print(f"{'network / direction':<24} {'vessel':>12} {'qemu-microvm':>14} {'vessel/QEMU':>12}")

    def mean(xs):
        return sum(xs) / len(xs) if xs else None

    for net in ("user", "tap"):
        for d, label in (("up", "guest -> host"), ("down", "host -> guest")):
            v, q = res.get(("vessel", net, d), []), res.get(("qemu", net, d), [])
            if not v and not q:
                continue
            mv, mq = mean(v), mean(q)
            print(f"{net + ' ' + label:<24} {('-' if mv is None else f'{mv:.0f} Mbit/s'):>12} "
                  f"{('-' if mq is None else f'{mq:.0f} Mbit/s'):>14} {vbench.ratio(mv, mq):>12}"
                  f"   [{' '.join(f'{x:.0f}' for x in v)} | {' '.join(f'{x:.0f}' for x in q)}]")


if __name__ == "__main__":
    main()
