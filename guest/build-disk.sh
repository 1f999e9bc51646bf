#!/bin/bash
# A bootable x86-64 disk image from Debian packages only, for booting
# through firmware (vessel vm run --firmware bios --disk disk.img):
#
#   an MBR partition table with one bootable Linux partition at 1 MiB (ext2,
#   /boot/vmlinuz + /boot/initrd.img of the default guest that
#   guest/build-x86_64.sh builds: Debian's stock kernel, busybox init that
#   prints VESSEL-GUEST-READY), and GRUB for BIOS (Debian's grub-pc-bin):
#   its boot.img in the MBR and a core.img (biosdisk, part_msdos, ext2,
#   linux, serial, normal) in the gap before the partition, with
#   /boot/grub/grub.cfg booting the kernel on the serial console at once.
#
# No loop devices, no mounts, no root: mke2fs -d fills the file system and
# the MBR and core.img are written the way grub-bios-setup would. Output:
# $VESSEL_GUEST_DIR/x86_64-disk/disk.img, else ~/.cache/vessel/guest/...;
# rebuilt only when its inputs change.
#
#   guest/build-disk.sh [--flavor cloud|generic] [--print-path]
#
# EFI (an EFI system partition with GRUB for x86_64-efi) is not built yet.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
flavor=cloud
print_path=0
while [ $# -gt 0 ]; do
    case "$1" in
    --flavor) flavor=$2; shift ;;
    --print-path) print_path=1 ;;
    -h | --help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "build-disk: unknown option '$1' (see --help)" >&2; exit 2 ;;
    esac
    shift
done
GRUB=/usr/lib/grub/i386-pc
base=${VESSEL_GUEST_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/vessel/guest}
OUT="$base/x86_64-disk"
[ "$flavor" = cloud ] || OUT="$base/x86_64-disk-$flavor"
if [ "$print_path" = 1 ]; then echo "$OUT/disk.img"; exit 0; fi

for f in "$GRUB/boot.img" "$GRUB/kernel.img" /usr/bin/grub-mkimage /usr/sbin/mke2fs; do
    [ -e "$f" ] || { echo "build-disk: $f is missing (apt-get install grub-pc-bin grub-common e2fsprogs; scripts/setup.sh does)" >&2; exit 1; }
done
GUEST=$("$HERE/build-x86_64.sh" --print-dir --flavor "$flavor")
"$HERE/build-x86_64.sh" --flavor "$flavor" >&2
mkdir -p "$OUT"
key=$(cat "$0" "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GRUB/kernel.img" | sha256sum | cut -c1-16)
if [ -s "$OUT/disk.img" ] && [ "$(cat "$OUT/.key" 2>/dev/null)" = "$key" ]; then
    echo "build-disk: $OUT/disk.img is up to date" >&2
    exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-disk.XXXXXX")
trap 'rm -rf "$work"' EXIT

# the file system: the kernel, the initramfs, GRUB's configuration
mkdir -p "$work/root/boot/grub"
cp "$GUEST/vmlinuz" "$work/root/boot/vmlinuz"
cp "$GUEST/initrd.img" "$work/root/boot/initrd.img"
cat >"$work/root/boot/grub/grub.cfg" <<'CFG'
serial --unit=0 --speed=115200
terminal_input serial
terminal_output serial
set timeout=0
menuentry 'Debian (vessel disk)' {
    linux /boot/vmlinuz console=ttyS0 quiet
    initrd /boot/initrd.img
}
CFG
kib=$(du -sk "$work/root" | cut -f1)
fs_mib=$(( kib / 1024 + 8 ))
mke2fs -q -F -t ext2 -L vessel-boot -d "$work/root" "$work/fs.img" "${fs_mib}M"

# GRUB's core image, everything it needs built in (no module directory on
# the file system), finding its configuration on the first partition
grub-mkimage -O i386-pc -o "$work/core.img" -p '(hd0,msdos1)/boot/grub' \
    biosdisk part_msdos ext2 normal linux serial terminal echo test boot configfile
core_bytes=$(stat -c %s "$work/core.img")
core_sectors=$(( (core_bytes + 511) / 512 ))
[ "$core_sectors" -lt 2047 ] || { echo "build-disk: core.img ($core_bytes bytes) does not fit before 1 MiB" >&2; exit 1; }

# the disk: MBR, core.img from sector 1, the partition from sector 2048
part_sectors=$(( fs_mib * 2048 ))
total_mib=$(( fs_mib + 1 ))
rm -f "$work/disk.img"
truncate -s "${total_mib}M" "$work/disk.img"
/usr/bin/python3 - "$work/disk.img" "$GRUB/boot.img" "$work/core.img" "$part_sectors" <<'PY'
import struct, sys
disk, boot_img, core_img, part_sectors = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
mbr = bytearray(open(boot_img, "rb").read()[:512])
# boot.img: the LBA of core.img's first sector (GRUB_BOOT_MACHINE_KERNEL_SECTOR)
struct.pack_into("<Q", mbr, 0x5c, 1)
# one bootable Linux partition from LBA 2048 (CHS fields: the LBA-only marker)
mbr[446:510] = bytes(64)
struct.pack_into("<B3sB3sII", mbr, 446, 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff", 2048,
                 part_sectors)
mbr[510:512] = b"\x55\xaa"
core = bytearray(open(core_img, "rb").read())
core += bytes((-len(core)) % 512)
# diskboot.img's block list, at the end of core.img's first sector: the rest
# of core.img from LBA 2, loaded at segment 0x820 (as grub-bios-setup writes)
struct.pack_into("<QHH", core, 512 - 12, 2, len(core) // 512 - 1, 0x820)
with open(disk, "r+b") as f:
    f.write(mbr)
    f.seek(512)
    f.write(core)
PY
dd if="$work/fs.img" of="$work/disk.img" bs=1M seek=1 conv=notrunc status=none
mv "$work/disk.img" "$OUT/disk.img"
echo "$key" >"$OUT/.key"
echo "build-disk: $OUT/disk.img (${total_mib} MiB: GRUB for BIOS, $(cat "$GUEST/kernel-version"))" >&2
