#!/bin/bash
# The nested KVM lab: real Linux guests under real KVM on a machine whose own
# /dev/kvm cannot boot them (PVM, or no KVM at all).
#
# L0 (this host) runs QEMU with TCG emulating an AMD CPU with SVM:
#   qemu-system-x86_64 -accel tcg -cpu EPYC,+svm -M q35 -m 4G -smp 2
# which boots Debian's generic kernel as L1 (the unpacked vmlinux, entered
# through PVH) from an initramfs carrying busybox, kvm.ko + kvm-amd.ko (with
# their modules.dep dependencies), the vessel binary, qemu-system-x86_64 (the
# peer L2 VMM, with the firmware -M microvm needs), tests/nested/l2run, and
# the default guests built by guest/build-x86_64.sh (/guest/x86_64: cloud
# kernel, /guest/x86_64-generic: generic kernel). Inside L1, kvm_amd gives a
# real /dev/kvm, and vessel (or QEMU) boots the guest as L2.
#
#   tests/nested/lab.sh shell [VESSEL-ARGS...]
#       L1 boots, then runs `vessel vm run VESSEL-ARGS` on this terminal: you
#       land in the L2 guest's shell. Ctrl-A x quits the whole lab.
#   tests/nested/lab.sh run SCRIPT [--timeout SECONDS]
#       run the shell script SCRIPT inside L1 (busybox sh); print its output
#       (stdout+stderr) and exit with its status. 124 on timeout, 125 if the
#       lab itself failed (L1 did not finish the script, or froze: no
#       console heartbeat for $LAB_STALL s, default 120). In SCRIPT: vessel, qemu-system-x86_64 and l2run are
#       in PATH, VESSEL_GUEST_DIR=/guest, $QEMU_MICROVM holds the QEMU
#       command line prefix for a microvm L2 peer.
#   tests/nested/lab.sh boot [--timeout S] [VESSEL-ARGS...]
#       non-interactive: run `vessel vm run VESSEL-ARGS` in L1 (default: the
#       default guest with console=ttyS0 quiet), print the L2 console and
#       l2run's timing line, exit with vessel's status (debugging the VMM)
#   tests/nested/lab.sh debug      an interactive L1 shell
#   tests/nested/lab.sh prepare    only build/refresh the cached L1 pieces
#
# Environment: VESSEL_BIN (the vessel binary to carry; default: the newest of
# build/ and build-test/), VESSEL_CACHE (cache root, default ~/.cache/vessel),
# LAB_CONSOLE (file to keep L1's console log of a `run`).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
# shellcheck source=../../guest/x86_64/lib.sh
. "$ROOT/guest/x86_64/lib.sh"

LAB_CACHE="$(vessel_cache_root)/nested"
lab_log() { echo "lab: $*" >&2; }
lab_die() {
    echo "lab: error: $*" >&2
    exit 125
}

usage() {
    sed -n '2,/^set -euo/p' "$0" | grep '^#' | sed 's/^# \{0,1\}//'
    exit 2
}

find_vessel() {
    if [ -n "${VESSEL_BIN:-}" ]; then
        [ -x "$VESSEL_BIN" ] || lab_die "VESSEL_BIN=$VESSEL_BIN is not executable"
        echo "$VESSEL_BIN"
        return
    fi
    local best="" c
    for c in "$ROOT/build/src/cmd/vessel" "$ROOT/build-test/src/cmd/vessel"; do
        [ -x "$c" ] || continue
        if [ -z "$best" ] || [ "$c" -nt "$best" ]; then best=$c; fi
    done
    echo "$best"
}

# L1's kernel: Debian's generic kernel, its vmlinux (ELF with a PVH entry note)
# unpacked from the bzImage so QEMU can enter it directly, without SeaBIOS.
prepare_l1_kernel() {
    local pv pkg ver
    pv=$(deb_resolve linux-image-amd64) || {
        L1_KROOT=""
        local d
        for d in "$(vessel_cache_root)"/debs/linux-image-*-amd64_*; do
            case "$d" in *cloud*) ;; *) [ -f "$d/.unpacked" ] && L1_KROOT=$d ;; esac
        done
        [ -n "$L1_KROOT" ] || lab_die "apt cannot resolve linux-image-amd64 and nothing is cached"
        pv="cached"
    }
    if [ "$pv" != cached ]; then
        read -r pkg ver <<<"$pv"
        L1_KROOT=$(deb_unpack "$pkg" "$ver")
    fi
    L1_KVER=$(ls "$L1_KROOT/lib/modules" | head -1)
    L1_VMLINUX="$LAB_CACHE/vmlinux-$L1_KVER"
    [ -s "$L1_VMLINUX" ] && return
    mkdir -p "$LAB_CACHE"
    /usr/bin/python3 - "$L1_KROOT/boot/vmlinuz-$L1_KVER" "$L1_VMLINUX.tmp" <<'EOF' || lab_die "cannot unpack vmlinux"
import gzip, lzma, sys, zlib
data = open(sys.argv[1], "rb").read()
for magic, unpack in ((b"\xfd7zXZ\x00", lambda d: lzma.LZMADecompressor().decompress(d)),
                      (b"\x1f\x8b\x08\x00", lambda d: zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(d))):
    off = data.find(magic)
    while off >= 0:
        try:
            out = unpack(data[off:])
        except Exception:
            out = b""
        if out[:4] == b"\x7fELF":
            open(sys.argv[2], "wb").write(out)
            sys.exit(0)
        off = data.find(magic, off + 1)
sys.exit("no xz or gzip compressed ELF payload found in " + sys.argv[1])
EOF
    mv "$L1_VMLINUX.tmp" "$L1_VMLINUX"
}

prepare_l2run() {
    L2RUN="$LAB_CACHE/l2run-$(md5sum <"$ROOT/tests/nested/l2run.c" | cut -c1-12)"
    [ -x "$L2RUN" ] && return
    mkdir -p "$LAB_CACHE"
    gcc -static -O2 -o "$L2RUN.tmp" "$ROOT/tests/nested/l2run.c" || lab_die "cannot build l2run"
    mv "$L2RUN.tmp" "$L2RUN"
}

prepare() {
    "$ROOT/guest/build-x86_64.sh" >&2 || lab_die "guest/build-x86_64.sh failed"
    GUEST_CLOUD=$(vessel_guest_dir x86_64)
    GUEST_GENERIC=$(vessel_guest_dir x86_64-generic)
    prepare_l1_kernel
    prepare_l2run
    VESSEL=$(find_vessel)
    [ -n "$VESSEL" ] || lab_log "warning: no vessel binary (build it: meson setup build && ninja -C build); the lab carries only QEMU"
    QEMU=$(command -v qemu-system-x86_64) || lab_die "qemu-system-x86_64 is missing (scripts/setup.sh installs it)"

    local stamp f
    stamp="kernel=$L1_KVER"
    for f in "$ROOT/tests/nested/lab.sh" "$ROOT/tests/nested/l1-init" "$ROOT/guest/x86_64/lib.sh" \
        "$L2RUN" "$QEMU" "$GUEST_CLOUD/.stamp" "$GUEST_GENERIC/.stamp" ${VESSEL:+"$VESSEL"}; do
        stamp="$stamp $(basename "$f")=$(md5sum <"$f" | cut -c1-12)"
    done
    # One archive per content stamp, so labs of different vessel builds running
    # at once never overwrite each other's L1 initramfs.
    L1_INITRD="$LAB_CACHE/l1-initramfs-$(echo "$stamp" | md5sum | cut -c1-12).cpio"
    if [ -s "$L1_INITRD" ]; then
        touch "$L1_INITRD" # in use: keeps the clean-up below away from it
        return
    fi
    lab_log "building the L1 initramfs ($L1_INITRD)"
    local work
    work=$(mktemp -d "${TMPDIR:-/tmp}/vessel-lab.XXXXXX")
    initramfs_busybox "$work/root"
    # virtio_console: the `run` script's output channel (virtio-serial port);
    # tun: tap devices for bench/net's tap row
    mods_install "$L1_KROOT" "$L1_KVER" "$work/root" kvm kvm-amd virtio_pci virtio_console tun
    [ -n "$VESSEL" ] && initramfs_add_bin "$work/root" "$VESSEL" && mv "$work/root$VESSEL" "$work/root/bin/vessel"
    # libraries vessel dlopen()s on demand (the control API), which ldd cannot see
    local so
    for so in libmicrohttpd.so.12; do
        so=$(/sbin/ldconfig -p | awk -v n="$so" '!f && $1 == n && /x86-64/ {print $NF; f = 1}')
        [ -n "$so" ] && initramfs_add_bin "$work/root" "$so"
    done
    initramfs_add_bin "$work/root" "$QEMU"
    # the firmware -M microvm loads (qboot) and the option ROMs for -kernel
    for f in bios-microvm.bin qboot.rom linuxboot_dma.bin linuxboot.bin pvh.bin kvmvapic.bin; do
        [ -e "/usr/share/qemu/$f" ] && initramfs_add_file "$work/root" "/usr/share/qemu/$f"
    done
    install -D -m 755 "$L2RUN" "$work/root/bin/l2run"
    for f in vmlinuz initrd.img kernel-version; do
        install -D -m 644 "$GUEST_CLOUD/$f" "$work/root/guest/x86_64/$f"
        install -D -m 644 "$GUEST_GENERIC/$f" "$work/root/guest/x86_64-generic/$f"
    done
    install -m 755 "$ROOT/tests/nested/l1-init" "$work/root/init"
    echo "root:x:0:0:root:/root:/bin/sh" >"$work/root/etc/passwd"
    mkdir -p "$work/root/lab"
    # uncompressed: gunzip under TCG would cost L1 several seconds per boot
    # a private temporary name and an atomic rename: several labs (different
    # vessel builds) may rebuild the cache at once, and a reader must never
    # see a half-written archive
    local tmpimg
    tmpimg=$(mktemp "$L1_INITRD.XXXXXX")
    initramfs_pack "$work/root" "$tmpimg" none
    rm -rf "$work"
    mv "$tmpimg" "$L1_INITRD"
    # old archives (other builds) not used for an hour go
    find "$LAB_CACHE" -maxdepth 1 -name 'l1-initramfs*' ! -name "$(basename "$L1_INITRD")" \
        -mmin +60 -delete 2>/dev/null || true
}

# QEMU for L1. TCG emulates AMD SVM with nested paging; L1 must be q35
# (microvm hangs calibrating the TSC). The EPYC features TCG lacks are turned
# off explicitly, which silences QEMU's warning for each.
L1_CPU="EPYC,+svm,-rdseed,-sha-ni,-fxsr-opt,-misalignsse,-3dnowprefetch,-osvw,-topoext,-nrip-save,-xsavec"
l1_qemu() {
    local append=$1
    shift
    nice -n "${LAB_NICE:-5}" qemu-system-x86_64 -accel tcg,thread=multi -cpu "$L1_CPU" -M q35 \
        -m "${LAB_MEMORY:-4G}" -smp "${LAB_CPUS:-2}" \
        -nodefaults -no-user-config -display none -no-reboot -rtc base=utc \
        -kernel "$L1_VMLINUX" -initrd "$INITRD" \
        -append "console=ttyS0 quiet mitigations=off rdinit=/init $append" "$@"
}

# QEMU microvm as the L2 peer VMM inside L1 (used by scripts that `run`).
QEMU_MICROVM='qemu-system-x86_64 -M microvm,acpi=on,rtc=on -accel kvm -cpu host -nodefaults -no-user-config -display none -no-reboot -serial stdio'

cmd=${1:-}
[ $# -gt 0 ] && shift
case "$cmd" in
prepare)
    prepare
    lab_log "ready: L1 kernel $L1_VMLINUX, initramfs $L1_INITRD ($(du -h "$L1_INITRD" | cut -f1)), vessel ${VESSEL:-none}"
    ;;
shell | debug)
    prepare
    INITRD=$L1_INITRD
    lab_log "booting L1 (QEMU TCG with nested SVM; ~10 s), then the guest under vessel as L2; Ctrl-A x quits"
    args=$(printf '%s' "$*" | base64 -w0)
    mode=$cmd
    l1_qemu "lab.mode=$mode lab.args=$args" -serial mon:stdio
    ;;
run)
    [ $# -ge 1 ] || usage
    script=$1
    shift
    timeout_s=900
    while [ $# -gt 0 ]; do
        case "$1" in
        --timeout) timeout_s=$2; shift ;;
        *) usage ;;
        esac
        shift
    done
    [ -r "$script" ] || lab_die "cannot read $script"
    prepare
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/vessel-lab-run.XXXXXX")
    [ -n "${LAB_KEEP:-}" ] || trap 'rm -rf "$tmp"' EXIT
    # The script rides in a second cpio archive appended to the cached one
    # (the kernel unpacks concatenated archives in order).
    mkdir -p "$tmp/extra/lab"
    {
        echo "QEMU_MICROVM='$QEMU_MICROVM'"
        echo "export QEMU_MICROVM"
        cat "$script"
    } >"$tmp/extra/lab/script.sh"
    (cd "$tmp/extra" && find lab | cpio -o -H newc -R 0:0 --quiet) >"$tmp/extra.cpio"
    cat "$L1_INITRD" "$tmp/extra.cpio" >"$tmp/initrd"
    INITRD="$tmp/initrd"
    : >"$tmp/out"
    : >"$tmp/console"
    # The script's output goes through a virtio-serial port: an 8250 under
    # TCG was seen to stall its transmitter for good, which froze the script.
    l1_qemu 'lab.mode=run' -serial "file:$tmp/console" \
        -device virtio-serial-pci,id=vser -chardev "file,id=labout,path=$tmp/out" \
        -device virtserialport,bus=vser.0,chardev=labout,name=lab.out \
        </dev/null >"$tmp/qemu.log" 2>&1 &
    qpid=$!
    # $qpid is the subshell running l1_qemu; QEMU is its child. Stop both, also
    # when this script is stopped (a test's timeout): L1 must not live on.
    kill_l1() { pkill "-$1" -P "$qpid" 2>/dev/null || true; kill "-$1" "$qpid" 2>/dev/null || true; }
    trap 'kill_l1 KILL; [ -n "${LAB_KEEP:-}" ] || rm -rf "$tmp"; true' EXIT
    trap 'exit 143' TERM INT HUP
    # Watchdog: the whole run's time limit, and L1's liveness (its init
    # writes a heartbeat to the console every 10 s): a frozen L1 is killed
    # after LAB_STALL seconds instead of eating the whole time limit.
    # Count the heartbeats themselves, not console growth: a locked-up L1
    # kernel keeps printing soft-lockup and RCU-stall reports for ever.
    rc=0
    start=$SECONDS
    last_beats=-1
    last_change=$SECONDS
    while kill -0 "$qpid" 2>/dev/null; do
        sleep 2
        beats=$(grep -c -e 'lab-heartbeat' -e 'LAB-L1-READY' "$tmp/console" 2>/dev/null || true)
        if [ "${beats:-0}" != "$last_beats" ]; then
            last_beats=${beats:-0}
            last_change=$SECONDS
        fi
        if [ $((SECONDS - start)) -ge "$timeout_s" ]; then
            rc=124
        elif [ $((SECONDS - last_change)) -ge "${LAB_STALL:-120}" ]; then
            rc=126
        else
            continue
        fi
        kill_l1 TERM
        sleep 2
        kill_l1 KILL
        break
    done
    wait "$qpid" 2>/dev/null || true
    [ -n "${LAB_CONSOLE:-}" ] && cp "$tmp/console" "$LAB_CONSOLE"
    # a failed lab's L1 console is kept for the post-mortem
    if ! tr -d '\r' <"$tmp/out" | grep -q '^LAB-SCRIPT-EXIT [0-9]*$'; then
        cp "$tmp/console" "$LAB_CACHE/failed-l1-console.log" 2>/dev/null || true
        lab_log "L1's console log: $LAB_CACHE/failed-l1-console.log"
    fi
    tr -d '\r' <"$tmp/out" | sed -e '0,/^LAB-SCRIPT-BEGIN$/d' -e '/^LAB-SCRIPT-EXIT [0-9]*$/d'
    status=$(tr -d '\r' <"$tmp/out" | sed -n 's/^LAB-SCRIPT-EXIT \([0-9]*\)$/\1/p' | tail -1)
    if [ -n "$status" ]; then
        exit "$status"
    fi
    if [ "$rc" = 124 ]; then
        lab_log "timeout: the lab run took more than ${timeout_s}s"
        exit 124
    fi
    if [ "$rc" = 126 ]; then
        lab_log "L1 stopped responding (no console heartbeat for ${LAB_STALL:-120}s); killed it. L1 console:"
        tail -20 "$tmp/console" >&2 || true
        exit 125
    fi
    lab_log "L1 ended without the script's exit marker (qemu status $rc); L1 console:"
    tail -40 "$tmp/console" >&2 || true
    cat "$tmp/qemu.log" >&2 || true
    exit 125
    ;;
boot)
    timeout_s=120
    if [ "${1:-}" = --timeout ]; then
        timeout_s=$2
        shift 2
    fi
    [ $# -gt 0 ] || set -- --append "console=ttyS0 quiet"
    tmp=$(mktemp -d "${TMPDIR:-/tmp}/vessel-lab-boot.XXXXXX")
    trap 'rm -rf "$tmp"' EXIT
    {
        printf 'l2run -m VESSEL-GUEST-READY -t %d -- vessel vm run' "$timeout_s"
        for a in "$@"; do printf " '%s'" "${a//\'/\'\\\'\'}"; done
        echo
    } >"$tmp/script.sh"
    rc=0
    "$0" run "$tmp/script.sh" --timeout $((timeout_s + 120)) || rc=$?
    exit $rc
    ;;
*) usage ;;
esac
