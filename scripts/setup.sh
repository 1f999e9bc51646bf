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
  linux-source-6.1 lxd lxd-client dnsmasq-base iptables gnuplot-nox"

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
echo "setup: all packages present"
