#!/bin/bash
# One command from a fresh Debian 12 machine to a shell in the default
# microVM: install what is missing, build vessel, build the default guest
# (Debian's cloud kernel + a busybox initramfs, cached outside the checkout)
# and boot it with the serial console on this terminal (Ctrl-A x quits).
#
# On hardware KVM the guest boots directly. Where /dev/kvm cannot boot a stock
# Linux kernel (PVM, a software KVM, or no KVM at all), the guest boots inside
# the nested KVM lab (tests/nested/lab.sh), and this script says so.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -eq 0 ]; then scripts/setup.sh; else sudo scripts/setup.sh; fi
[ -f build/build.ninja ] || meson setup build >/dev/null
ninja -C build
guest/build-x86_64.sh

# The management daemon: started once, in the background, and left running
# (instances outlive it; `vessel list` and the other instance verbs talk to it).
SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
if ! $SUDO build/src/cmd/vessel list >/dev/null 2>&1; then
    $SUDO mkdir -p /var/log/vessel
    $SUDO sh -c "nohup '$PWD/build/src/cmd/vesseld' >>/var/log/vessel/vesseld.log 2>&1 &"
    for _ in $(seq 50); do $SUDO build/src/cmd/vessel list >/dev/null 2>&1 && break; sleep 0.1; done
fi
echo "quickstart: vesseld is running (/run/vessel/vessel.sock, log /var/log/vessel/vesseld.log):"
$SUDO build/src/cmd/vessel list
echo "quickstart: try 'build/src/cmd/vessel image import --default' and 'vessel launch', or see README.md"

if grep -qwE 'vmx|svm' /proc/cpuinfo && [ ! -d /sys/module/kvm_pvm ] && [ -w /dev/kvm ]; then
    exec build/src/cmd/vessel vm run "$@"
fi
echo "quickstart: /dev/kvm here cannot boot a stock Linux kernel (no hardware virtualization;"
echo "quickstart: $( [ -d /sys/module/kvm_pvm ] && echo 'it is PVM, a software KVM' || echo 'no usable KVM')),"
echo "quickstart: so vessel boots the guest inside the nested KVM lab (L1 under QEMU TCG with SVM)."
VESSEL_BIN="$PWD/build/src/cmd/vessel" exec tests/nested/lab.sh shell "$@"
