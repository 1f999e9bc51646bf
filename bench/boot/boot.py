"""bench/boot: vessel vs QEMU microvm booting the same L2 guest in the nested lab.

In ONE L1 session, each VMM boots the same kernel + initrd (default: Debian's
cloud kernel, the default guest) to the init marker and powers off right after
it (vessel.noshell), N times each, interleaved (vessel, qemu, vessel, ...).
l2run (tests/nested/l2run.c) times each boot from the VMM's start to the
marker and to its exit, and reports the VMM's peak RSS (wait4 ru_maxrss).
"""
import argparse
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests/nested"))
import lab  # noqa: E402


def median(xs):
    return statistics.median(xs) if xs else None


def fmt_ms(v):
    return "-" if v is None else f"{v / 1000:.2f} s"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--flavor", choices=sorted(lab.GUESTS), default="cloud")
    ap.add_argument("--cpus", type=int, default=1)
    ap.add_argument("--memory", default="256M")
    ap.add_argument("--timeout", type=int, default=120, help="per boot, seconds")
    ap.add_argument("--raw", action="store_true", help="also print every boot")
    a = ap.parse_args()

    append = lab.APPEND + " vessel.noshell"
    vmms = {
        "vessel": lab.vessel_cmd(a.flavor, a.cpus, a.memory, append),
        "qemu-microvm": lab.qemu_cmd(a.flavor, a.cpus, a.memory, append),
    }
    batch = lab.LabBatch()
    for i in range(a.runs):
        for vmm, cmd in vmms.items():
            batch.boot(f"{vmm}-{i}", cmd, timeout=a.timeout)
    total = a.runs * len(vmms) * a.timeout + 120
    run = batch.run(timeout=total)

    rows = {}
    for vmm in vmms:
        rs = [run.results[f"{vmm}-{i}"] for i in range(a.runs)]
        ok = [r for r in rs if r.marker_ms >= 0 and r.status == 0 and not r.timeout]
        rows[vmm] = {
            "ok": len(ok),
            "marker": median([r.marker_ms for r in ok]),
            "exit": median([r.exit_ms for r in ok]),
            "rss": max([r.maxrss_kb for r in ok], default=None),
            "own": max([r.own_kb for r in ok], default=None),
            "fail": next((r for r in rs if r not in ok), None),
        }
        if a.raw:
            for r in rs:
                print(f"{r.name}: marker_ms={r.marker_ms} exit_ms={r.exit_ms} status={r.status} "
                      f"maxrss_kb={r.maxrss_kb} own_kb={r.own_kb} timeout={r.timeout}")

    print(f"\nbench/boot: {a.flavor} kernel, {a.cpus} vCPU, {a.memory}, "
          f"{a.runs} runs each, interleaved, in one nested-lab L1 session (L2 on nested KVM)")
    print(f"{'VMM':<14} {'ok':>5} {'to marker':>11} {'to exit':>11} {'peak RSS':>10} "
          f"{'own RSS':>10}")
    for vmm, row in rows.items():
        rss = "-" if row["rss"] is None else f"{row['rss'] / 1024:.1f} MiB"
        own = "-" if row["own"] is None else f"{row['own'] / 1024:.1f} MiB"
        print(f"{vmm:<14} {row['ok']:>2}/{a.runs:<2} {fmt_ms(row['marker']):>11} "
              f"{fmt_ms(row['exit']):>11} {rss:>10} {own:>10}")
    v, q = rows["vessel"], rows["qemu-microvm"]
    if v["marker"] and q["marker"]:
        print(f"{'vessel/QEMU':<14} {'':>5} {v['marker'] / q['marker']:>11.2f} "
              f"{v['exit'] / q['exit']:>11.2f} {v['rss'] / q['rss']:>10.2f} "
              f"{v['own'] / max(q['own'], 1):>10.2f}")
    else:
        print("vessel/QEMU    no ratio: a VMM never booted successfully")
    print("(times: medians from VMM start; peak RSS: the largest of the runs, guest pages "
          "touched included;\n own RSS: the largest RSS outside the guest-RAM mapping, sampled "
          "every 100 ms: the VMM's own memory)")
    for vmm, row in rows.items():
        if row["fail"] is not None:
            print(f"\nfirst failed {vmm} boot:\n{row['fail']}")
    return 0 if all(r["ok"] == a.runs for r in rows.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
