#!/bin/bash
# Boot benchmark in the nested KVM lab: vessel vs QEMU microvm, same L2
# kernel + initrd, >= 5 runs each interleaved in one L1 session; prints medians
# of time-to-marker and time-to-exit, their vessel/QEMU ratio and peak RSS.
#
#   bench/boot/run.sh [--runs N] [--flavor cloud|generic] [--cpus N] [--memory 256M] [--raw]
#
# Uses VESSEL_BIN if set, else the newest of build/ and build-test/.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec /usr/bin/python3 bench/boot/boot.py "$@"
