"""bench/blk: disk throughput and IOPS of the same L2 guest on vessel and on
QEMU microvm (nested lab, one L1 session), with fio in the guest on a
virtio-blk disk backed by the same file in L1, and fio run natively in L1 on
that file. Prints MiB/s and IOPS per row and the vessel/QEMU and
vessel/native ratios.

Rows: sequential read and write (1 MiB, iodepth 16), 4 KiB random read and
write (iodepth 32); libaio, O_DIRECT in the guest (L1's file lives in RAM,
which O_DIRECT cannot open, so the native row uses buffered I/O).
"""
import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import vbench  # noqa: E402

JOBS = [("seq-read", "read", "1M", 16), ("seq-write", "write", "1M", 16),
        ("rand-read-4k", "randread", "4k", 32), ("rand-write-4k", "randwrite", "4k", 32)]


def fio_lines(tag, target, seconds, direct, size):
    lines = []
    for name, rw, bs, qd in JOBS:
        lines.append(
            f"echo \"BENCH {tag} {name} $(run fio --name={name} --filename={target} --rw={rw} "
            f"--bs={bs} --iodepth={qd} --ioengine=libaio --direct={direct} --size={size} "
            f"--runtime={seconds} --time_based --output-format=terse --terse-version=3 "
            f"| cut -d';' -f7,8,48,49)\"")
    return "\n".join(lines) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=5, help="per fio job")
    ap.add_argument("--size-mb", type=int, default=256, help="backing file size")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", default="512M")
    ap.add_argument("--cache", default="writeback", choices=["writeback", "none", "unsafe"])
    a = ap.parse_args()

    size = f"{a.size_mb - 16}M"
    guest = vbench.GUEST_PRELUDE + "TAG=$(cat /proc/cmdline | sed -n 's/.*bench.tag=\\([a-z]*\\).*/\\1/p')\n"
    guest += fio_lines("$TAG", "/dev/$DATA", a.seconds, 1, size)
    qcache = "writeback" if a.cache == "unsafe" else a.cache
    script = vbench.l1_prelude(["fio"]) + f"""
dd if=/dev/zero of=/tmp/data.img bs=1M count={a.size_mb} 2>/dev/null
{vbench.vessel_vm(a.memory, a.cpus, f"--disk /tmp/data.img,cache={a.cache} --disk /tmp/tools.img,ro",
                  guest.replace("$TAG", "vessel"))}
{vbench.qemu_vm(a.memory, a.cpus,
                f"-drive id=d0,file=/tmp/data.img,format=raw,if=none,cache={qcache} "
                "-device virtio-blk-device,drive=d0 "
                "-drive id=d1,file=/tmp/tools.img,format=raw,if=none,readonly=on "
                "-device virtio-blk-device,drive=d1", guest.replace("$TAG", "qemu"))}
{fio_lines("native", "/tmp/data.img", a.seconds, 0, size)}
"""
    out = vbench.run_lab(script, timeout=600 + 3 * len(JOBS) * a.seconds * 2)
    res = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 4 and parts[0] == "BENCH":
            f = parts[3].split(";")
            if len(f) == 4:
                rbw, riops, wbw, wiops = (float(x or 0) for x in f)
                res[(parts[1], parts[2])] = (max(rbw, wbw) / 1024, max(riops, wiops))
    if not res:
        sys.exit("no results; lab output:\n" + out[-4000:])
    print(f"\nbench/blk: nested lab, {a.cpus} vCPU, {a.memory}, cache={a.cache}, "
          f"{a.seconds}s per job, backing file {a.size_mb} MiB in L1 RAM")
    print(f"{'row':<15} {'vessel':>18} {'qemu-microvm':>18} {'native L1':>18} "
          f"{'vessel/QEMU':>12} {'vessel/native':>14}")
    for name, *_ in JOBS:
        v, q, n = (res.get((t, name)) for t in ("vessel", "qemu", "native"))

        def cell(r):
            return "-" if not r else f"{r[0]:8.1f}MiB/s {r[1]:7.0f}"
        key = 0 if name.startswith("seq") else 1
        print(f"{name:<15} {cell(v):>18} {cell(q):>18} {cell(n):>18} "
              f"{vbench.ratio(v and v[key], q and q[key]):>12} "
              f"{vbench.ratio(v and v[key], n and n[key]):>14}")


if __name__ == "__main__":
    main()
