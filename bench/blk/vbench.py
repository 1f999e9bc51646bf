"""Shared pieces of bench/blk and bench/net: carry Debian's own fio/iperf3 (with
the libraries ldd lists and the loader) into the nested lab, run the same L2
guest under vessel and under QEMU microvm in ONE L1 session, and collect the
lines the guest prints.

The payload travels base64-encoded inside the L1 script; in L1 it becomes a
tar file that is attached to L2 as a read-only raw disk (`tar -xf /dev/vdX`).
"""
import base64
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
KERNEL = "/guest/x86_64/vmlinuz"
INITRD = "/guest/x86_64/initrd.img"


def payload(binaries) -> str:
    """base64 of a gzip'd tar: the binaries, their libraries, the loader."""
    files = {}
    for b in binaries:
        path = shutil.which(b)
        if not path:
            sys.exit(f"{b} is not installed on the host (apt-get install {b})")
        files[Path(path).name] = path
        out = subprocess.run(["ldd", path], capture_output=True, text=True, check=True).stdout
        for line in out.splitlines():
            m = re.search(r"=>\s+(\S+)", line) or re.match(r"\s*(/\S+ld-linux\S*)", line)
            if m and os.path.exists(m.group(1)):
                files[Path(m.group(1)).name] = m.group(1)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", compresslevel=6) as t:
        for name, path in sorted(files.items()):
            t.add(os.path.realpath(path), arcname=name)
    return base64.b64encode(buf.getvalue()).decode()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


# Run inside L2 first: the tools disk is the read-only one; unpack it to /tmp/f.
GUEST_PRELUDE = r"""
for d in vda vdb vdc; do
  [ -b /dev/$d ] || continue
  if [ "$(cat /sys/block/$d/ro)" = 1 ]; then TOOLS=$d; else DATA=$d; fi
done
mkdir -p /tmp/f && tar -xf /dev/$TOOLS -C /tmp/f
run() { /tmp/f/ld-linux-x86-64.so.2 --library-path /tmp/f "/tmp/f/$@"; }
"""

def l1_prelude(binaries) -> str:
    """L1 script start: unpack the payload (a here-document) to /tmp/tools.img
    (a tar, later L2's tools disk) and /tmp/f (for native runs in L1)."""
    data = payload(binaries)
    lines = "\n".join(data[i:i + 76] for i in range(0, len(data), 76))
    return ("base64 -d <<'PAYLOAD_EOF' | gunzip > /tmp/tools.img\n" + lines +
            "\nPAYLOAD_EOF\n" + _L1_UNPACK)


_L1_UNPACK = r"""
dd if=/dev/zero bs=10240 count=1 >> /tmp/tools.img 2>/dev/null
mkdir -p /tmp/f && tar -xf /tmp/tools.img -C /tmp/f
run() { /tmp/f/ld-linux-x86-64.so.2 --library-path /tmp/f "/tmp/f/$@"; }
ifconfig lo 127.0.0.1 up 2>/dev/null
"""


def vessel_vm(memory, cpus, extra, guest_script):
    return (f"vessel vm run --kernel {KERNEL} --initrd {INITRD} --memory {memory} --cpus {cpus} "
            f"{extra} --append \"console=ttyS0 quiet vessel.run={b64(guest_script)}\"")


def qemu_vm(memory, cpus, extra, guest_script):
    return (f"$QEMU_MICROVM -m {memory} -smp {cpus} -kernel {KERNEL} -initrd {INITRD} {extra} "
            f"-append \"console=ttyS0 quiet vessel.run={b64(guest_script)}\"")


def run_lab(script: str, timeout: int) -> str:
    """Run script in L1; returns its output."""
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"vessel-bench-{os.getpid()}.sh"
    tmp.write_text(script)
    try:
        p = subprocess.run([str(ROOT / "tests/nested/lab.sh"), "run", str(tmp), "--timeout",
                            str(timeout)], capture_output=True, text=True, errors="replace",
                           timeout=timeout + 300)
    finally:
        tmp.unlink()
    log = os.environ.get("BENCH_LOG")
    if log:
        Path(log).write_text(p.stdout + "\n--- stderr ---\n" + p.stderr)
    if p.returncode == 125:
        sys.exit(f"the nested lab failed:\n{p.stderr[-3000:]}")
    return p.stdout


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"
