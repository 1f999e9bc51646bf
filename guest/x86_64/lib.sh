# shellcheck shell=bash
# Shell functions shared by guest/build-x86_64.sh and tests/nested/lab.sh:
# fetch and unpack Debian kernel packages (never installed on the host),
# resolve kernel modules in dependency order, copy dynamically linked
# programs with their libraries into an initramfs tree, and pack it.
# Source it from bash; it sets no shell options.

# Where slow artifacts live (the same root the test fixture `cache_dir` uses).
vessel_cache_root() {
    if [ -n "${VESSEL_CACHE:-}" ]; then
        echo "$VESSEL_CACHE"
    else
        echo "${XDG_CACHE_HOME:-${HOME:-/root}/.cache}/vessel"
    fi
}

# The default guest directory for an arch; mirrors vm_default_guest_dir() in
# src/vm/config.c so `vessel vm run` without --kernel finds what we build.
vessel_guest_dir() {
    local arch=$1
    if [ -n "${VESSEL_GUEST_DIR:-}" ]; then
        echo "$VESSEL_GUEST_DIR/$arch"
    elif [ -n "${XDG_CACHE_HOME:-}" ]; then
        echo "$XDG_CACHE_HOME/vessel/guest/$arch"
    else
        echo "${HOME:-/root}/.cache/vessel/guest/$arch"
    fi
}

guest_log() { echo "guest: $*" >&2; }
guest_die() {
    echo "guest: error: $*" >&2
    exit 1
}

# deb_resolve META -> "PACKAGE VERSION" of the concrete package a Debian
# metapackage (linux-image-cloud-amd64) depends on, using apt's candidate.
deb_resolve() {
    local meta=$1 pkg ver
    pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    if [ -z "$pkg" ] && [ "$(id -u)" -eq 0 ]; then
        apt-get update -qq >&2 || true
        pkg=$(apt-cache depends "$meta" 2>/dev/null | awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
    fi
    [ -n "$pkg" ] || return 1
    ver=$(apt-cache policy "$pkg" | awk '/Candidate:/ {print $2; exit}')
    [ -n "$ver" ] && [ "$ver" != "(none)" ] || return 1
    echo "$pkg $ver"
}

# deb_unpack PACKAGE VERSION -> prints a directory holding the unpacked
# package (cached under the vessel cache; download once, unpack once).
deb_unpack() {
    local pkg=$1 ver=$2 root dir debs deb
    root=$(vessel_cache_root)
    dir="$root/debs/${pkg}_${ver}"
    if [ -f "$dir/.unpacked" ]; then
        echo "$dir"
        return 0
    fi
    debs="$root/debs"
    mkdir -p "$debs"
    deb=$(ls "$debs/${pkg}_"*"${ver#*:}_"*.deb 2>/dev/null | head -1 || true)
    if [ -z "$deb" ]; then
        guest_log "downloading $pkg $ver"
        (cd "$debs" && apt-get download -q "$pkg=$ver" >/dev/null 2>&1) ||
            guest_die "apt-get download $pkg=$ver failed (is apt configured? try: apt-get update)"
        deb=$(ls "$debs/${pkg}_"*"${ver#*:}_"*.deb | head -1)
    fi
    local tmp="$dir.tmp$$"
    rm -rf "$tmp"
    mkdir -p "$tmp"
    dpkg-deb -x "$deb" "$tmp" || guest_die "dpkg-deb -x $deb failed"
    # Debian's kernel packages ship no modules.dep: generate it on our copy.
    local kver
    kver=$(ls "$tmp/lib/modules" 2>/dev/null | head -1)
    if [ -n "$kver" ]; then
        /sbin/depmod -b "$tmp" "$kver" || guest_die "depmod failed for $kver"
    fi
    touch "$tmp/.unpacked"
    if [ -f "$dir/.unpacked" ]; then
        rm -rf "$tmp" # another build got there first
    else
        rm -rf "$dir"
        mv "$tmp" "$dir"
    fi
    rm -f "$deb"
    echo "$dir"
}

# mods_resolve KROOT KVER NAME... -> module paths (relative to
# lib/modules/KVER) in load order: every module after the modules it needs.
# Built-in modules are skipped; a module that exists nowhere is an error.
mods_resolve() {
    local kroot=$1 kver=$2
    shift 2
    local mdir="$kroot/lib/modules/$kver"
    awk -v names="$*" -v builtin="$mdir/modules.builtin" '
        function base(p) { sub(/.*\//, "", p); sub(/\.ko(\.[a-z]+)?$/, "", p); gsub(/-/, "_", p); return p }
        function visit(m,   n, i, d) {
            if (m in seen) return
            seen[m] = 1
            n = split(deps[m], d, " ")
            # modules.dep lists the deepest dependency last: load from the end
            for (i = n; i >= 1; i--) visit(d[i])
            print m
        }
        BEGIN {
            while ((getline line < builtin) > 0) isbuiltin[base(line)] = 1
        }
        {
            m = $1; sub(/:$/, "", m)
            path[base(m)] = m
            $1 = ""; deps[m] = $0
        }
        END {
            n = split(names, want, " ")
            for (i = 1; i <= n; i++) {
                k = want[i]; gsub(/-/, "_", k)
                if (k in path) visit(path[k])
                else if (!(k in isbuiltin)) { print "missing module " want[i] > "/dev/stderr"; bad = 1 }
            }
            exit bad
        }' "$mdir/modules.dep"
}

# mods_install KROOT KVER DEST NAME... : copy the modules (and deps) into the
# initramfs tree DEST and write DEST/etc/vessel/modules (load order).
mods_install() {
    local kroot=$1 kver=$2 dest=$3
    shift 3
    local list m
    list=$(mods_resolve "$kroot" "$kver" "$@") || guest_die "module resolution failed for $kver"
    mkdir -p "$dest/etc/vessel" "$dest/lib/modules/$kver"
    : >"$dest/etc/vessel/modules"
    for m in $list; do
        mkdir -p "$dest/lib/modules/$kver/$(dirname "$m")"
        case "$m" in
        *.ko.xz) xz -dc "$kroot/lib/modules/$kver/$m" >"$dest/lib/modules/$kver/${m%.xz}" ;;
        *.ko.zst) zstd -qdc "$kroot/lib/modules/$kver/$m" >"$dest/lib/modules/$kver/${m%.zst}" ;;
        *.ko.gz) gzip -dc "$kroot/lib/modules/$kver/$m" >"$dest/lib/modules/$kver/${m%.gz}" ;;
        *) cp "$kroot/lib/modules/$kver/$m" "$dest/lib/modules/$kver/$m" ;;
        esac
        echo "/lib/modules/$kver/${m%.ko*}.ko" >>"$dest/etc/vessel/modules"
    done
}

# initramfs_add_bin DEST BIN... : copy programs into the tree at the same
# path, with every shared library ldd lists and the dynamic loader.
initramfs_add_bin() {
    local dest=$1 bin lib
    shift
    for bin in "$@"; do
        [ -e "$bin" ] || guest_die "initramfs_add_bin: $bin does not exist"
        mkdir -p "$dest$(dirname "$bin")"
        cp -L "$bin" "$dest$bin"
        # "libx.so => /path (addr)", "/lib64/ld-linux-x86-64.so.2 (addr)"
        for lib in $(ldd "$bin" 2>/dev/null | awk '/=> \// {print $3} /^\t\// {print $1}'); do
            [ -e "$dest$lib" ] && continue
            mkdir -p "$dest$(dirname "$lib")"
            cp -L "$lib" "$dest$lib"
        done
    done
}

# initramfs_add_file DEST SRC [TARGET] : copy one file (dereferenced).
initramfs_add_file() {
    local dest=$1 src=$2 target=${3:-$2}
    mkdir -p "$dest$(dirname "$target")"
    cp -L "$src" "$dest$target"
}

# initramfs_busybox DEST : a busybox-static userland (/bin/* applets).
initramfs_busybox() {
    local dest=$1 a
    mkdir -p "$dest"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp,run,root,etc,mnt}
    cp /bin/busybox "$dest/bin/busybox"
    for a in $("$dest/bin/busybox" --list); do
        [ -e "$dest/bin/$a" ] || ln -s busybox "$dest/bin/$a"
    done
    # static device nodes so output works even before devtmpfs is mounted
    # (needs root; without it the kernel's own /dev/console fallback applies)
    mknod -m 600 "$dest/dev/console" c 5 1 2>/dev/null || true
    mknod -m 666 "$dest/dev/null" c 1 3 2>/dev/null || true
}

# initramfs_pack DIR OUT [gzip|none] : a cpio newc archive, files owned by root.
initramfs_pack() {
    local dir=$1 out=$2 comp=${3:-gzip}
    (cd "$dir" && find . -mindepth 1 | LC_ALL=C sort |
        cpio -o -H newc -R 0:0 --quiet) >"$out.cpio" || guest_die "cpio failed"
    if [ "$comp" = gzip ]; then
        gzip -n -6 <"$out.cpio" >"$out.gz"
        rm -f "$out.cpio"
        mv "$out.gz" "$out"
    else
        mv "$out.cpio" "$out"
    fi
}
