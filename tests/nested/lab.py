"""Drive the nested KVM lab (tests/nested/lab.sh) from Python.

A LabBatch collects several L2 boots (vessel or QEMU microvm, any kernel),
runs them all in ONE L1 session (L1 costs ~10 s to boot under TCG), and
parses each boot's output, timings and peak RSS from l2run's summary line.

    batch = LabBatch()
    batch.boot("cloud-1", vessel_cmd("x86_64", cpus=1), commands=["uname -r"])
    results = batch.run(timeout=600)
    r = results["cloud-1"]; r.output, r.marker_ms, r.status
"""
import os
import re
import shlex
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "tests/nested/lab.sh"

MARKER = "VESSEL-GUEST-READY"
PROMPT = "@vessel:"  # the guest shell's PS1 is \u@\h:\w\$ with hostname vessel
APPEND = "console=ttyS0 quiet"

# Guests inside L1 (see lab.sh): the cloud kernel is the default guest.
GUESTS = {"cloud": "/guest/x86_64", "generic": "/guest/x86_64-generic"}


def vessel_cmd(flavor="cloud", cpus=1, memory="256M", append=APPEND):
    g = GUESTS[flavor]
    return ["vessel", "vm", "run", "--kernel", f"{g}/vmlinuz", "--initrd", f"{g}/initrd.img",
            "--cpus", str(cpus), "--memory", memory, "--append", append]


def qemu_cmd(flavor="cloud", cpus=1, memory="256M", append=APPEND):
    """QEMU microvm as the L2 peer; $QEMU_MICROVM is set by lab.sh."""
    g = GUESTS[flavor]
    return ["$QEMU_MICROVM", "-m", memory, "-smp", str(cpus), "-kernel", f"{g}/vmlinuz",
            "-initrd", f"{g}/initrd.img", "-append", append]


@dataclass(repr=False)
class L2Result:
    name: str
    output: str = ""          # the L2 VMM's stdout+stderr (guest console), \r removed
    l1_time_before: int = 0   # L1's `date +%s` right before the boot
    marker_ms: int = -1       # time from VMM start to the marker (-1: never)
    exit_ms: int = -1         # time from VMM start to its exit
    status: int = -1          # the VMM's exit status (128+sig if killed)
    maxrss_kb: int = 0        # the VMM's peak RSS
    own_kb: int = 0           # peak RSS outside the guest RAM mapping: the VMM's own
    timeout: bool = False
    ended: bool = False       # l2run's summary line was seen
    note: str = ""            # LAB_DEFECT_NOTE when the register dump shows it

    def __repr__(self):
        return f"L2Result({self.name}, status={self.status}, marker_ms={self.marker_ms})"

    def __str__(self):
        tail = "\n".join(self.output.splitlines()[-40:])
        return (f"[{self.name}] status={self.status} marker_ms={self.marker_ms} "
                f"exit_ms={self.exit_ms} timeout={self.timeout}\n--- last output ---\n{tail}"
                + (f"\n{self.note}" if self.note else ""))


@dataclass(repr=False)
class LabRun:
    returncode: int
    output: str
    host_start: float
    host_end: float
    results: dict = field(default_factory=dict)

    def __repr__(self):
        return f"LabRun(returncode={self.returncode}, boots={list(self.results)})"


def _q(word: str) -> str:
    # $QEMU_MICROVM must expand to several words; everything else is quoted
    return word if word.startswith("$") else shlex.quote(word)


class LabBatch:
    def __init__(self):
        # where L1's VMRUN lives: recognises the lab defect in a failed boot's
        # register dump (see parse())
        self.head = ["set +e", "echo L1-DATE $(date +%s)",
                     "echo L1-SVM-RUN $(grep -w __svm_vcpu_run /proc/kallsyms | cut -d' ' -f1)"]
        self.steps = []  # (name or None, [shell lines])
        self.names = []

    def shell(self, text: str):
        """Raw shell lines to run in L1 at this point of the batch."""
        self.steps.append((None, [text]))

    def boot(self, name, cmd, commands=None, timeout=120, marker=MARKER):
        """One L2 boot. commands: lines typed into the guest shell, one per
        prompt after the marker (end with a poweroff to make the VMM exit)."""
        assert re.fullmatch(r"[A-Za-z0-9_.-]+", name), name
        self.names.append(name)
        inp = f"/tmp/in.{name}"
        lines = "\n".join(commands or []) + "\n"
        argv = " ".join(_q(w) for w in cmd)
        self.steps.append((name, [
            f"cat > {inp} <<'LAB_INPUT_EOF'\n{lines}LAB_INPUT_EOF",
            f"echo \"=== L2-BEGIN {name} $(date +%s) ===\"",
            f"l2run -m {shlex.quote(marker)} -p {shlex.quote(PROMPT)} -i {inp} "
            f"-t {int(timeout)} -- {argv} 2>&1",
            f"echo \"=== L2-END {name} ===\"",
        ]))

    def script(self, only=None) -> str:
        lines = list(self.head)
        for name, step in self.steps:
            if only is None or name is None or name in only:
                lines += step
        return "\n".join(lines) + "\nexit 0\n"

    def run(self, timeout=600, console_log=None, retry=True) -> LabRun:
        """Run every boot in one L1 session. If L1 itself fails (froze, or
        the time ran out) before some boots finished, those boots get one more
        chance in a fresh L1 session, and the retry is reported on stderr."""
        run = self._run_once(timeout, console_log, None)
        missing = [n for n in self.names if not run.results[n].ended]
        if retry and missing and run.returncode in (124, 125):
            import sys
            sys.stderr.write(f"\n*** lab: L1 failed (status {run.returncode}) before "
                             f"{', '.join(missing)} finished; retrying them in a fresh L1 ***\n")
            again = self._run_once(timeout, console_log, set(missing))
            for n in missing:
                run.results[n] = again.results[n]
            run.output += "\n[retry]\n" + again.output
            run.returncode = again.returncode
            run.host_end = again.host_end
        return run

    def _run_once(self, timeout, console_log, only) -> LabRun:
        with tempfile.NamedTemporaryFile("w", suffix=".sh", delete=False) as f:
            f.write(self.script(only))
            path = f.name
        env = dict(os.environ)
        if console_log:
            env["LAB_CONSOLE"] = str(console_log)
        start = time.time()
        try:
            p = subprocess.run([str(LAB), "run", path, "--timeout", str(int(timeout))],
                               capture_output=True, text=True, errors="replace", env=env,
                               timeout=timeout + 120)
        finally:
            os.unlink(path)
        run = LabRun(p.returncode, p.stdout + ("\n[lab stderr]\n" + p.stderr if p.stderr else ""),
                     start, time.time())
        if os.environ.get("LAB_OUTPUT"):  # keep the raw output (of every session) for debugging
            with open(os.environ["LAB_OUTPUT"], "a") as log:
                log.write(f"\n##### lab session, status {p.returncode}\n{run.output}")
        run.results = parse(p.stdout)
        for n in (self.names if only is None else only):
            run.results.setdefault(n, L2Result(n, output="(this boot never ran: the lab "
                                                         "ended early)\n" + run.output[-3000:]))
        return run


_SUMMARY = re.compile(r"L2RUN marker_ms=(-?\d+) exit_ms=(-?\d+) status=(-?\d+) "
                      r"maxrss_kb=(\d+) own_kb=(-?\d+) timeout=(\d)")


# A vCPU whose saved state is L1's own at its VMRUN instruction (rip in L1's
# kvm_amd __svm_vcpu_run, cr3 L1's): L0's SVM emulation (QEMU TCG) wrote the
# host state into the L2 guest's VMCB. Not the L2 VMM's doing; seen under
# vessel and QEMU microvm alike (docs/nested-lab.md, "L0 loses L2's state").
LAB_DEFECT_NOTE = ("NOTE: a vCPU's registers are L1's own at its VMRUN instruction "
                   "(L1 kvm_amd __svm_vcpu_run): the lab's L0 (QEMU TCG SVM) lost the "
                   "L2 guest's state; see docs/nested-lab.md")


def _svm_run_defect(output: str, svm_run: int) -> bool:
    for m in re.finditer(r"\brip=([0-9a-f]{16})\b", output):
        if svm_run <= int(m.group(1), 16) < svm_run + 0x400:
            return True
    return False


def parse(output: str) -> dict:
    results = {}
    cur = None
    buf = []
    svm_run = 0
    m = re.search(r"^L1-SVM-RUN ([0-9a-f]{16})$", output.replace("\r", ""), re.M)
    if m:
        svm_run = int(m.group(1), 16)
    for line in output.replace("\r", "").split("\n"):
        m = re.match(r"=== L2-BEGIN (\S+) (\d+) ===$", line)
        if m:
            cur = L2Result(m.group(1), l1_time_before=int(m.group(2)))
            buf = []
            continue
        if cur is None:
            continue
        m = re.match(r"=== L2-END (\S+) ===$", line)
        if m and m.group(1) == cur.name:
            cur.output = "\n".join(buf)
            results[cur.name] = cur
            cur = None
            continue
        s = _SUMMARY.search(line)
        if s:
            cur.marker_ms, cur.exit_ms, cur.status, cur.maxrss_kb, cur.own_kb = \
                map(int, s.groups()[:5])
            cur.timeout = s.group(6) == "1"
            cur.ended = True
            before = line[:s.start()]
            if before.strip():
                buf.append(before)
            continue
        buf.append(line)
    if cur is not None:  # the lab ended in the middle of a boot
        cur.output = "\n".join(buf)
        results[cur.name] = cur
    for r in results.values():
        if svm_run and _svm_run_defect(r.output, svm_run):
            r.note = LAB_DEFECT_NOTE
    return results


def after_marker(output: str, marker=MARKER) -> str:
    i = output.find(marker)
    return output[i:] if i >= 0 else ""
