"""Tier 2: a stock Debian kernel as L2 under real KVM in the nested lab moves
between two vessels inside L1 while a counter runs in it: the counter goes
on from where it was, a file written before is there, the guest's clock is
right, the source exits 0."""
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "snapshot"))
from snaputil import ROOT, vessel_path  # noqa: E402


def test_stock_linux_moves_between_two_vessels_under_kvm():
    if not shutil.which("qemu-system-x86_64"):
        sys.stderr.write("\n*** SKIPPING NESTED LAB TEST: qemu-system-x86_64 is missing ***\n")
        pytest.skip("qemu-system-x86_64 is missing")
    env = dict(os.environ, VESSEL_BIN=str(vessel_path()))
    p = subprocess.run([str(ROOT / "tests/nested/lab.sh"), "run", str(HERE / "nested_migrate.sh"),
                        "--timeout", "400"], capture_output=True, text=True, timeout=600, env=env)
    out = p.stdout.replace("\r", "")
    assert p.returncode == 0 and "NESTED-MIGRATE-DONE" in out, \
        f"lab exited {p.returncode}\n{out[-3000:]}\n{p.stderr[-2000:]}"
    assert "MIGRATE-EXIT 0" in out and "SOURCE-EXIT 0" in out, out[-3000:]
    assert re.search(r"migrated: downtime [0-9.]+ ms", out), out[-3000:]
    last = int(re.search(r"SOURCE-LAST (\d+)", out).group(1))
    dest = out.split("=== destination")[1]
    ticks = [int(t) for t in re.findall(r"TICK (\d+)", dest)]
    # the destination goes on from the source's count: no restart, no big gap
    assert ticks and last <= ticks[0] <= last + 2, (last, ticks[:5])
    assert ticks == list(range(ticks[0], ticks[0] + len(ticks))), ticks
    assert "before-the-move" in dest
    guest = int(re.search(r"DATE-IN-GUEST (\d+)", out).group(1))
    l1 = int(re.search(r"DATE-IN-L1 (\d+)", out).group(1))
    assert l1 - 5 <= guest <= l1 + 1, (guest, l1)
