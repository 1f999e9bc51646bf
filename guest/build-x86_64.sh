#!/bin/bash
# Build vessel's default x86-64 guests from Debian packages only:
#
#   x86_64/          Debian's cloud kernel (linux-image-cloud-amd64): the default
#   x86_64-generic/  Debian's generic kernel (linux-image-amd64)
#
# each as vmlinuz (the package's bzImage, unpacked with dpkg-deb, never
# installed on the host) + initrd.img (gzip'd cpio: busybox-static, the
# virtio/vsock/ext4 modules in modules.dep order, guest/x86_64/init, and the
# guest agent /sbin/vessel-agent built static from src/agent, which init
# starts so `vessel exec` reaches the guest over vsock; docs/guest-agent.md).
# Output goes to $VESSEL_GUEST_DIR/<name>, else ~/.cache/vessel/guest/<name>
# (the directory `vessel vm run` without --kernel boots from). Idempotent:
# nothing is rebuilt while the package versions and these scripts are unchanged.
#
#   guest/build-x86_64.sh                      both guests
#   guest/build-x86_64.sh --flavor cloud       only one (cloud | generic)
#   guest/build-x86_64.sh --flavor cloud --out DIR --extra /usr/bin/fio \
#       --extra /usr/bin/iperf3 --file /etc/foo=/etc/foo --module loop
#                                              a variant with extra programs
#                                              (+ their ldd libraries), files
#                                              and modules, written to DIR
#   guest/build-x86_64.sh --print-dir [--flavor F]   print the output dir
#   guest/build-x86_64.sh --force              rebuild even if cached
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=x86_64/lib.sh
. "$HERE/x86_64/lib.sh"

MODULES="virtio virtio_ring virtio_pci virtio_pci_modern_dev virtio_pci_legacy_dev
  virtio_mmio virtio_blk virtio_net net_failover failover virtio_console virtio-rng
  virtio_balloon vsock vmw_vsock_virtio_transport vmw_vsock_virtio_transport_common ext4"

AGENT_SRC="$HERE/../src/agent"

flavors=""
out=""
extras=()
files=()
extra_mods=""
force=0
print_dir=0
while [ $# -gt 0 ]; do
    case "$1" in
    --flavor) flavors="$flavors $2"; shift ;;
    --out) out=$2; shift ;;
    --extra) extras+=("$2"); shift ;;
    --file) files+=("$2"); shift ;;
    --module) extra_mods="$extra_mods $2"; shift ;;
    --force) force=1 ;;
    --print-dir) print_dir=1 ;;
    -h | --help) sed -n '2,23p' "$0"; exit 0 ;;
    *) guest_die "unknown option '$1' (see --help)" ;;
    esac
    shift
done
[ -n "$flavors" ] || flavors="cloud generic"
if [ -n "$out" ] && [ "$(echo $flavors | wc -w)" -ne 1 ]; then
    guest_die "--out needs exactly one --flavor"
fi

flavor_dir() {
    if [ -n "$out" ]; then
        echo "$out"
    elif [ "$1" = cloud ]; then
        vessel_guest_dir x86_64
    else
        vessel_guest_dir x86_64-generic
    fi
}

if [ "$print_dir" = 1 ]; then
    for f in $flavors; do flavor_dir "$f"; done
    exit 0
fi

WORKDIRS=""
trap 'rm -rf $WORKDIRS' EXIT

build_one() {
    local flavor=$1 meta dir pv pkg ver kroot kver stamp work x f
    case "$flavor" in
    cloud) meta=linux-image-cloud-amd64 ;;
    generic) meta=linux-image-amd64 ;;
    *) guest_die "unknown flavor '$flavor' (cloud or generic)" ;;
    esac
    dir=$(flavor_dir "$flavor")
    if ! pv=$(deb_resolve "$meta"); then
        if [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ]; then
            guest_log "apt cannot resolve $meta; keeping the cached guest in $dir"
            return 0
        fi
        guest_die "apt cannot resolve $meta (run: apt-get update)"
    fi
    read -r pkg ver <<<"$pv"
    # The stamp names everything the output depends on.
    stamp="$pkg $ver busybox=$(dpkg-query -W -f='${Version}' busybox-static 2>/dev/null || echo ?)"
    stamp="$stamp scripts=$(cat "$HERE/build-x86_64.sh" "$HERE/x86_64/lib.sh" "$HERE/x86_64/init" | md5sum | cut -c1-16)"
    stamp="$stamp agent=$(cat "$AGENT_SRC"/*.[ch] | md5sum | cut -c1-16)"
    stamp="$stamp mods=$extra_mods"
    for x in ${extras[@]+"${extras[@]}"} ${files[@]+"${files[@]}"}; do
        stamp="$stamp $x=$(md5sum <"${x%%=*}" | cut -c1-12)"
    done
    if [ "$force" = 0 ] && [ -s "$dir/vmlinuz" ] && [ -s "$dir/initrd.img" ] &&
        [ "$(cat "$dir/.stamp" 2>/dev/null)" = "$stamp" ]; then
        guest_log "$flavor guest up to date in $dir ($pkg $ver)"
        return 0
    fi
    kroot=$(deb_unpack "$pkg" "$ver")
    kver=$(ls "$kroot/lib/modules" | head -1)
    guest_log "building the $flavor guest ($pkg $ver) in $dir"

    work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-guest.XXXXXX")
    WORKDIRS="$WORKDIRS $work"
    initramfs_busybox "$work/root"
    # shellcheck disable=SC2086
    mods_install "$kroot" "$kver" "$work/root" $MODULES $extra_mods
    for x in ${extras[@]+"${extras[@]}"}; do initramfs_add_bin "$work/root" "$x"; done
    for f in ${files[@]+"${files[@]}"}; do
        initramfs_add_file "$work/root" "${f%%=*}" "${f#*=}"
    done
    install -m 755 "$HERE/x86_64/init" "$work/root/init"
    gcc -static -Os -s -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I"$HERE/../src" \
        -o "$work/root/sbin/vessel-agent" "$AGENT_SRC/main.c" "$AGENT_SRC/session.c" \
        "$AGENT_SRC/protocol.c" "$AGENT_SRC/identity.c" || guest_die "building the guest agent (src/agent) failed"
    echo "root:x:0:0:root:/root:/bin/sh" >"$work/root/etc/passwd"
    echo "root:x:0:" >"$work/root/etc/group"

    mkdir -p "$dir"
    # unique temporary names: two builds at once must not clobber each other
    initramfs_pack "$work/root" "$dir/initrd.img.new$$" gzip
    cp "$kroot/boot/vmlinuz-$kver" "$dir/vmlinuz.new$$"
    mv "$dir/vmlinuz.new$$" "$dir/vmlinuz"
    mv "$dir/initrd.img.new$$" "$dir/initrd.img"
    echo "$kver" >"$dir/kernel-version"
    echo "$stamp" >"$dir/.stamp"
    rm -rf "$work"
    guest_log "$flavor guest: $dir/vmlinuz ($(du -h "$dir/vmlinuz" | cut -f1)), $dir/initrd.img ($(du -h "$dir/initrd.img" | cut -f1)), kernel $kver"
}

for f in $flavors; do build_one "$f"; done
