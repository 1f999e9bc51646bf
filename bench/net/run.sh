#!/bin/bash
# Network benchmark: iperf3 between L1 and the same L2 guest on vessel and on
# QEMU microvm (nested lab; user networking and a tap device in both, the
# VMMs taking turns ABBA); prints Mbit/s per direction and the vessel/QEMU
# ratio.
#
#   bench/net/run.sh [--seconds N] [--rounds N] [--cpus N] [--memory 512M]
#
# Uses VESSEL_BIN if set, else the newest of build/ and build-test/.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice /usr/bin/python3 bench/net/net.py "$@"
