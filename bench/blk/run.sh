#!/bin/bash
# Disk benchmark: fio in the same L2 guest on vessel and on QEMU microvm
# (nested lab), plus fio natively in L1 on the same backing file; prints
# MiB/s, IOPS and the vessel/QEMU and vessel/native ratios.
#
#   bench/blk/run.sh [--seconds N] [--size-mb N] [--cpus N] [--cache writeback|none|unsafe]
#
# Uses VESSEL_BIN if set, else the newest of build/ and build-test/.
set -euo pipefail
cd "$(dirname "$0")/../.."
exec nice /usr/bin/python3 bench/blk/blk.py "$@"
