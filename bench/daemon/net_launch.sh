#!/bin/bash
# Container launches on the managed bridge: the time of `vessel launch` with
# the network set up, N in a row, for one vessel build (run it for two
# builds to compare). vesseld runs in a network namespace made here
# (bridge vnl0, 10.98.3.0/24), so the host's network is untouched; all is
# removed at the end. No timing asserts.
#
#   sudo bench/daemon/net_launch.sh BIN_DIR [N] [ROOTFS.tar.gz]
#
# BIN_DIR holds vessel and vesseld; the rootfs defaults to a busybox-static
# one made here (as the daemon tests and bench/daemon/run.py do).
set -euo pipefail
BIN=$(cd "$1" && pwd); N=${2:-15}; TAR=${3:-}
NS=vnl-$$
D=$(mktemp -d /tmp/vnl-XXXXXX)
export VESSEL_SOCKET=$D/s.sock
DP=
cleanup() {
    set +e
    for i in $(seq 0 $((N - 1))); do "$BIN/vessel" delete --force "c$i" >/dev/null 2>&1; done
    "$BIN/vessel" delete --force warm >/dev/null 2>&1
    [ -n "$DP" ] && kill "$DP" 2>/dev/null && wait "$DP" 2>/dev/null
    [ -f "$D/state/network/dnsmasq.pid" ] && kill "$(cat "$D/state/network/dnsmasq.pid")" 2>/dev/null
    umount -R -l "$D/state" 2>/dev/null
    ip netns del "$NS" 2>/dev/null
    rm -rf "$D"
}
trap cleanup EXIT
if [ -z "$TAR" ]; then
    R=$D/rootfs; mkdir -p "$R"/{bin,sbin,proc,sys,dev,tmp,etc,root}
    cp /bin/busybox "$R/bin/busybox"; chroot "$R" /bin/busybox --install -s /bin
    TAR=$D/rootfs.tar.gz; tar -C "$R" -czf "$TAR" .
fi
ip netns add "$NS"; ip -n "$NS" link set lo up
ip netns exec "$NS" "$BIN/vesseld" --state-dir "$D/state" --socket "$D/s.sock" \
    --network vnl0:10.98.3.1/24 --vessel "$BIN/vessel" >"$D/log" 2>&1 &
DP=$!
for _ in $(seq 200); do [ -S "$D/s.sock" ] && break; sleep 0.05; done
"$BIN/vessel" image import "$TAR" --alias bb >/dev/null
"$BIN/vessel" launch bb warm -c command="sleep 1000" >/dev/null
python3 - "$BIN" "$N" <<'PY'
import statistics, subprocess, sys, time
b, n = sys.argv[1], int(sys.argv[2])
ts = []
for i in range(n):
    t = time.monotonic()
    subprocess.run([f"{b}/vessel", "launch", "bb", f"c{i}", "-c", "command=sleep 1000"],
                   check=True, capture_output=True)
    ts.append(time.monotonic() - t)
print(f"launch with network: median {statistics.median(ts) * 1000:.0f} ms, "
      f"min {min(ts) * 1000:.0f} ms, max {max(ts) * 1000:.0f} ms (n={n})")
PY
