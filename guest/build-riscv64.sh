#!/bin/bash
# Build vessel's riscv64 guest from Debian packages only:
#   - a Linux kernel (Image) from linux-source-6.1, tinyconfig + guest/riscv64/kernel.config,
#     cross-built with gcc-riscv64-linux-gnu;
#   - an initramfs whose /init is guest/riscv64/init.c built static for riscv64,
#     with a /dev/console node (a newc cpio written by guest/riscv64/mkcpio.py),
#     the guest agent /sbin/vessel-agent (src/agent, static; init starts it so
#     `vessel exec` works, docs/guest-agent.md) and /bin/toolbox
#     (guest/riscv64/toolbox.c: cat, echo, uname, ... for exec to run);
#   - disk.img: a small ext4 image with the same init, for root=/dev/vda boots.
# Output (cached outside the checkout, where `vessel vm run --arch riscv64`
# looks for the default guest): $VESSEL_GUEST_DIR/riscv64, else
# ${XDG_CACHE_HOME:-~/.cache}/vessel/guest/riscv64:
#   vmlinuz (the Image), initrd.img, init, vessel-agent, toolbox, disk.img
# Idempotent: each artifact is keyed by the hash of its inputs, so a rerun
# with nothing changed takes well under a second.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
SRC="$HERE/riscv64"
if [ -n "${VESSEL_GUEST_DIR:-}" ]; then OUT="$VESSEL_GUEST_DIR/riscv64"
else OUT="${XDG_CACHE_HOME:-$HOME/.cache}/vessel/guest/riscv64"; fi
JOBS="${VESSEL_JOBS:-2}"
CROSS=riscv64-linux-gnu-
TARBALL=/usr/src/linux-source-6.1.tar.xz
mkdir -p "$OUT"
# one build at a time per output directory (test runs may start this concurrently)
exec 9>"$OUT/.build.lock"
flock 9

need() {
    if ! command -v "$1" >/dev/null; then
        echo "build-riscv64: $1 is missing (apt-get install $2)" >&2
        exit 1
    fi
}
need ${CROSS}gcc gcc-riscv64-linux-gnu
# the compiler only recommends its C library; the initramfs programs are static
if [ ! -f /usr/riscv64-linux-gnu/lib/crt1.o ] || [ ! -f /usr/riscv64-linux-gnu/lib/libc.a ]; then
    echo "build-riscv64: the riscv64 C library is missing (apt-get install libc6-dev-riscv64-cross)" >&2
    exit 1
fi
need flex flex
need bison bison
need bc bc
need mke2fs e2fsprogs
if [ ! -f "$TARBALL" ]; then
    echo "build-riscv64: $TARBALL is missing (apt-get install linux-source-6.1)" >&2
    exit 1
fi

key_of() { cat "$@" | sha256sum | cut -c1-16; }

# ---- kernel ---------------------------------------------------------------
KKEY=$(key_of "$SRC/kernel.config" <(ls -l --time-style=+%s "$TARBALL" | awk '{print $5,$6}'))
KDIR="$OUT/build/linux-$KKEY"
if [ "$(cat "$OUT/.kernel-key" 2>/dev/null)" != "$KKEY" ] || [ ! -f "$OUT/vmlinuz" ]; then
    # A tree per fragment hash is kept (the two most recently used), so
    # checkouts with different fragments sharing this cache (a CI clone next
    # to a work tree) switch by copying, not by rebuilding each other away.
    if [ ! -f "$KDIR/.vessel-built" ]; then
        echo "build-riscv64: building kernel $KKEY in $KDIR (takes 3-10 minutes)"
        if [ ! -f "$KDIR/Makefile" ]; then
            rm -rf "$KDIR.tmp"
            mkdir -p "$KDIR.tmp"
            tar -xJf "$TARBALL" -C "$KDIR.tmp" --strip-components=1
            mv "$KDIR.tmp" "$KDIR"
        fi
        M=(make -C "$KDIR" ARCH=riscv CROSS_COMPILE=$CROSS -s)
        "${M[@]}" tinyconfig >/dev/null
        "$KDIR/scripts/kconfig/merge_config.sh" -m -O "$KDIR" "$KDIR/.config" \
            "$SRC/kernel.config" >/dev/null
        "${M[@]}" olddefconfig >/dev/null
        # every requested option must have survived dependency resolution
        missing=0
        while IFS= read -r line; do
            case "$line" in ''|'#'*) continue ;; esac
            if ! grep -qx -- "$line" "$KDIR/.config"; then
                echo "build-riscv64: kernel option did not stick: $line" >&2
                missing=1
            fi
        done < "$SRC/kernel.config"
        [ "$missing" = 0 ] || exit 1
        nice "${M[@]}" -j"$JOBS" Image
        touch "$KDIR/.vessel-built"
    fi
    touch "$KDIR"
    cp "$KDIR/arch/riscv/boot/Image" "$OUT/vmlinuz.tmp"
    mv "$OUT/vmlinuz.tmp" "$OUT/vmlinuz"
    echo "$KKEY" > "$OUT/.kernel-key"
    # keep the two most recently used trees
    { ls -1dt "$OUT"/build/linux-* 2>/dev/null | grep -v '\.tmp$' || true; } | tail -n +3 |
        while IFS= read -r old; do rm -rf "$old"; done
fi

# ---- init and initramfs ---------------------------------------------------
AGENT_SRC="$HERE/../src/agent"
TOOLS="cat echo env false hostname id ls pwd set-cpus sleep true tty uname"
IKEY=$(key_of "$SRC/init.c" "$SRC/mkcpio.py" "$SRC/toolbox.c" "$HERE/build-riscv64.sh" \
    "$AGENT_SRC"/*.[ch])
if [ "$(cat "$OUT/.initrd-key" 2>/dev/null)" != "$IKEY" ] || [ ! -f "$OUT/initrd.img" ] ||
   [ ! -f "$OUT/disk.img" ]; then
    echo "build-riscv64: building init and initramfs"
    mkdir -p "$OUT/build"
    ${CROSS}gcc -static -Os -Wall -o "$OUT/init" "$SRC/init.c"
    ${CROSS}gcc -static -Os -s -std=gnu11 -D_GNU_SOURCE -Wall -Wextra -I"$HERE/../src" \
        -o "$OUT/vessel-agent" "$AGENT_SRC/main.c" "$AGENT_SRC/session.c" "$AGENT_SRC/protocol.c" \
        "$AGENT_SRC/identity.c"
    ${CROSS}gcc -static -Os -s -Wall -o "$OUT/toolbox" "$SRC/toolbox.c"
    cat > "$OUT/build/initramfs.list" <<LIST
dir /dev 0755 0 0
nod /dev/console 0600 0 0 c 5 1
nod /dev/null 0666 0 0 c 1 3
dir /proc 0755 0 0
dir /sys 0755 0 0
dir /mnt 0755 0 0
dir /tmp 01777 0 0
dir /sbin 0755 0 0
dir /bin 0755 0 0
file /init $OUT/init 0755 0 0
file /sbin/vessel-agent $OUT/vessel-agent 0755 0 0
file /bin/toolbox $OUT/toolbox 0755 0 0
LIST
    for t in $TOOLS; do
        echo "slink /bin/$t toolbox 0777 0 0" >> "$OUT/build/initramfs.list"
    done
    /usr/bin/python3 "$SRC/mkcpio.py" "$OUT/build/initramfs.list" > "$OUT/initrd.img.tmp"
    mv "$OUT/initrd.img.tmp" "$OUT/initrd.img"
    # an ext4 root disk carrying the same init (and a file the test reads back)
    R="$OUT/build/rootfs"
    rm -rf "$R"; mkdir -p "$R/dev" "$R/proc" "$R/sys" "$R/mnt" "$R/tmp" "$R/sbin" "$R/bin"
    cp "$OUT/init" "$R/init"
    cp "$OUT/vessel-agent" "$R/sbin/vessel-agent"
    cp "$OUT/toolbox" "$R/bin/toolbox"
    for t in $TOOLS; do ln -s toolbox "$R/bin/$t"; done
    echo "hello from the vessel riscv64 ext4 disk" > "$R/hello.txt"
    rm -f "$OUT/disk.img.tmp"
    mke2fs -q -t ext4 -L vessel-rv -d "$R" "$OUT/disk.img.tmp" 16M
    mv "$OUT/disk.img.tmp" "$OUT/disk.img"
    echo "$IKEY" > "$OUT/.initrd-key"
fi
echo "build-riscv64: guest ready in $OUT"
ls -l "$OUT/vmlinuz" "$OUT/initrd.img" "$OUT/disk.img" | sed 's/^/  /'
