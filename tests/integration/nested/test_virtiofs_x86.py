"""Tier 2: virtio-fs on the x86 KVM machine in the nested lab. vessel in L1
starts Debian's virtiofsd for `--share`, plugs a virtio-fs PCI function
whose queue notifications KVM hands straight to virtiofsd (ioeventfd on the
kick eventfds), and Debian's stock kernel in L2 mounts the tag: a file L1
wrote is read in the guest, one the guest writes is on L1 afterwards.

The default guest has no virtio-fs modules and L1 no virtiofsd: the test
builds a guest variant with fuse + virtiofs (guest/build-x86_64.sh --module)
and carries virtiofsd with its libraries into L1, run through their loader.
L1's root is an initramfs, where virtiofsd's namespace sandbox cannot
pivot_root: there it runs with sandbox=chroot."""
import base64
import gzip
import subprocess
from pathlib import Path

import pytest

import lab

ROOT = Path(__file__).resolve().parents[3]
VIRTIOFSD = Path("/usr/lib/qemu/virtiofsd")


def put_file(batch: lab.LabBatch, path: str, data: bytes, mode="644"):
    b64 = base64.b64encode(gzip.compress(data, 1)).decode()
    lines = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    batch.shell(f"mkdir -p $(dirname {path}) && base64 -d <<'LAB_B64_EOF' | gunzip > {path}\n"
                f"{lines}\nLAB_B64_EOF\nchmod {mode} {path}")


def libraries(binary: Path):
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        for p in parts:
            if p.startswith("/") and Path(p).exists():
                libs.append(Path(p))
    return libs


@pytest.fixture(scope="module")
def share_run(lab_ready, tmp_path_factory):
    if not VIRTIOFSD.exists():
        pytest.fail(f"{VIRTIOFSD} is missing (apt-get install qemu-system-common)")
    gdir = tmp_path_factory.mktemp("vfsguest")
    p = subprocess.run([str(ROOT / "guest/build-x86_64.sh"), "--flavor", "cloud", "--out",
                        str(gdir), "--module", "fuse", "--module", "virtiofs"],
                       capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stderr[-3000:]
    batch = lab.LabBatch()
    put_file(batch, "/tmp/vfs/initrd.img", (gdir / "initrd.img").read_bytes())
    put_file(batch, "/tmp/vfs/virtiofsd", VIRTIOFSD.read_bytes(), "755")
    loader = None
    for lib in libraries(VIRTIOFSD):
        put_file(batch, f"/tmp/vfs/lib/{lib.name}", lib.read_bytes(), "755")
        if lib.name.startswith("ld-linux"):
            loader = lib.name
    assert loader, "no dynamic loader in ldd's list"
    batch.shell("cat > /tmp/vfs/run-virtiofsd <<'EOF'\n#!/bin/sh\n"
                f"exec /tmp/vfs/lib/{loader} --library-path /tmp/vfs/lib /tmp/vfs/virtiofsd "
                "\"$@\" -o sandbox=chroot\nEOF\nchmod 755 /tmp/vfs/run-virtiofsd")
    batch.shell("mkdir -p /tmp/share && echo written-in-l1 > /tmp/share/from-l1.txt")
    batch.boot("vessel-share",
               ["env", "VESSEL_VIRTIOFSD=/tmp/vfs/run-virtiofsd", "vessel", "vm", "run",
                "--kernel", "/guest/x86_64/vmlinuz", "--initrd", "/tmp/vfs/initrd.img",
                "--memory", "256M", "--append", lab.APPEND, "--share", "/tmp/share:hostshare"],
               ["mkdir -p /mnt && mount -t virtiofs hostshare /mnt && echo mount-$((40+2))",
                "cat /mnt/from-l1.txt",
                "echo written-in-l2 > /mnt/from-l2.txt && echo wrote-$((40+2))",
                "poweroff"], timeout=120)
    batch.shell("echo \"L1-SEES: $(cat /tmp/share/from-l2.txt)\"")
    return batch.run(timeout=600)


def test_x86_guest_mounts_a_share(share_run):
    r = share_run.results["vessel-share"]
    out = lab.after_marker(r.output)
    assert "mount-42" in out, str(r)
    assert "written-in-l1" in out, str(r)
    assert "wrote-42" in out, str(r)
    assert r.ended and not r.timeout and r.status == 0, str(r)
    assert "L1-SEES: written-in-l2" in share_run.output, share_run.output[-3000:]
