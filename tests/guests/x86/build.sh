#!/bin/sh
# Build the tier-1 x86 test guest (tests/guests/out/x86/guest.elf and its
# ELF32 twin guest32.elf, which vessel starts through the PVH entry).
# Idempotent: rebuilds only when a source is newer than the output.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../out/x86}
mkdir -p "$out"
elf=$out/guest.elf
if [ -f "$elf" ] && [ -f "$out/guest32.elf" ]; then
    stale=0
    for f in "$here"/guest.c "$here"/guest.h "$here"/hostile.c "$here"/x86io.h "$here"/start.S "$here"/guest.ld "$here"/build.sh; do
        [ "$f" -nt "$elf" ] && stale=1
    done
    [ $stale = 0 ] && exit 0
fi
CC=${CC:-gcc}
flags="-m64 -O2 -ffreestanding -fno-pic -fno-pie -no-pie -nostdlib -static -mno-red-zone \
 -mno-sse -mno-mmx -mno-80387 -mcmodel=small -fno-stack-protector -fno-asynchronous-unwind-tables \
 -mgeneral-regs-only -Wall -Wl,--build-id=none -Wl,-z,max-page-size=4096 -Wl,-z,noexecstack -Wl,--no-warn-rwx-segments"
$CC $flags -T "$here/guest.ld" -o "$elf.tmp$$" "$here/start.S" "$here/guest.c" "$here/hostile.c"
mv "$elf.tmp$$" "$elf"
objcopy -O elf32-i386 "$elf" "$out/guest32.elf.tmp$$"
mv "$out/guest32.elf.tmp$$" "$out/guest32.elf"
