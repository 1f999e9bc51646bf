#!/bin/sh
# Install everything vessel needs to build, test and benchmark, from Debian's
# archive only. Idempotent: installs only what is missing. Run as root.
# Packages are installed without their Recommends, so everything a build,
# test, guest builder or benchmark uses is named here, even where Debian only
# recommends it (gcc-riscv64-linux-gnu only recommends its C library,
# libc6-dev-riscv64-cross). ../shared/tools/setup-gap lists what a machine has
# beyond this list.
set -eu

BUILD="meson ninja-build pkg-config gcc clang clang-format libclang-rt-14-dev
  libjansson-dev libseccomp-dev libcap-dev libfdt-dev libslirp-dev libglib2.0-dev
  liburing-dev libmicrohttpd-dev  zlib1g-dev libcmocka-dev libsqlite3-dev libarchive-dev
  libgnutls28-dev"
TEST="python3 python3-pytest python3-yaml openssl iputils-ping busybox-static cpio kmod e2fsprogs curl socat iproute2
  qemu-system-x86 qemu-system-misc qemu-system-common qemu-user qemu-utils opensbi u-boot-qemu seabios
  grub-pc-bin grub-common
  gcc-riscv64-linux-gnu libc6-dev-riscv64-cross gcc-riscv64-unknown-elf picolibc-riscv64-unknown-elf
  crun runc podman conmon containerd time uidmap fio iperf3 bc flex bison libelf-dev libssl-dev xz-utils
  linux-source-6.1 lxd lxd-client dnsmasq-base iptables gnuplot-nox etcd-server etcd-client"

missing=""
for p in $BUILD $TEST; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
if [ -n "$missing" ]; then
  echo "setup: installing:$missing"
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $missing
fi
# etcd-server's package enables and starts a host-wide etcd on 127.0.0.1:2379.
# vessel's tests start their own members (temporary data dirs, free ports,
# their own network namespaces) and a shared one would only hold ports and
# state between runs: keep the packaged service off. A cluster's etcd is
# configured by whoever runs the cluster (docs/cluster.md).
if [ -e /lib/systemd/system/etcd.service ] && command -v systemctl >/dev/null 2>&1 &&
  [ -d /run/systemd/system ]; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO systemctl disable --now etcd >/dev/null 2>&1 || true
elif [ -x /etc/init.d/etcd ] && command -v update-rc.d >/dev/null 2>&1; then
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO /etc/init.d/etcd stop >/dev/null 2>&1 || true
  $SUDO update-rc.d etcd disable >/dev/null 2>&1 || true
fi
echo "setup: all packages present"
