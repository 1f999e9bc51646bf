#!/bin/sh
# Build the bare-metal ISA tests: tests/riscv-isa/build.sh OUTDIR [TEST...]
# Each test_*.c becomes OUTDIR/test_*.elf (riscv64-unknown-elf-gcc, no libc).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=$1
shift
mkdir -p "$out"
CC=${RV_BARE_CC:-riscv64-unknown-elf-gcc}
CFLAGS="-march=rv64gc_zba_zbb_zbs -mabi=lp64d -mcmodel=medany -O2 -g -ffreestanding -nostdlib \
  -fno-builtin -fno-tree-loop-distribute-patterns -Wall -Werror -I$here"
tests=${*:-$(cd "$here" && ls test_*.c test_*.S 2>/dev/null || true)}
for t in $tests; do
    name=${t%.*}
    $CC $CFLAGS -T "$here/link.ld" -o "$out/$name.elf.tmp" "$here/crt.S" "$here/rt.c" "$here/$t" -lgcc
    mv "$out/$name.elf.tmp" "$out/$name.elf"
done
