"""Helpers shared by the snapshot tests (a VM driver, API calls, snapshot surgery)."""

import json
import re
import struct
import subprocess
import time
import zlib
from pathlib import Path

import pytest

from vesselpaths import vessel_path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]



COUNT_RE = re.compile(r"count ([0-9a-f]{8})\n")


def vessel(*args, timeout=60, check=True):
    p = subprocess.run([str(vessel_path()), *map(str, args)], capture_output=True, text=True,
                       timeout=timeout, stdin=subprocess.DEVNULL)
    if check and p.returncode != 0:
        raise AssertionError(f"vessel {' '.join(map(str, args))} exited {p.returncode}\n"
                             f"{p.stdout}\n{p.stderr}")
    return p


def api(verb, sock, *args):
    p = vessel("vm", verb, "--api-sock", sock, *args)
    return json.loads(p.stdout)


def counts(text: str):
    return [int(x, 16) for x in COUNT_RE.findall(text)]


def wait_for(pred, timeout=20, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


class VM:
    """A VM process (run or restore) with its console in a file and an API socket."""

    def __init__(self, tmp: Path, name: str, argv):
        self.dir = tmp / name
        self.dir.mkdir(exist_ok=True)
        self.console = self.dir / "console.log"
        self.sock = self.dir / "api.sock"
        self.p = subprocess.Popen([str(vessel_path()), *map(str, argv), "--console",
                                   f"file:{self.console}", "--api-sock", str(self.sock)],
                                  stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True)
        wait_for(lambda: self.sock.exists() or self.p.poll() is not None, what="API socket")
        if self.p.poll() is not None:
            raise AssertionError(f"VM exited {self.p.returncode}: {self.p.stderr.read()}")

    def text(self) -> str:
        return self.console.read_text(errors="replace") if self.console.exists() else ""

    def wait_count(self, n, timeout=20):
        return wait_for(lambda: len(counts(self.text())) >= n, timeout, f"{n} count lines")

    def stop(self):
        if self.p.poll() is None:
            try:
                vessel("vm", "stop", "--api-sock", self.sock, timeout=10)
            except AssertionError:
                pass
            try:
                self.p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self.p.returncode


def rewrite_vmstate(path: Path, mutate):
    """Apply mutate(header: bytearray, payload: bytearray) and fix both CRCs, so
    only the semantic change is tested (docs/snapshot-format.md)."""
    data = bytearray(path.read_bytes())
    hdr, payload = data[:128], data[128:]
    mutate(hdr, payload)
    hdr[96:100] = struct.pack("<I", zlib.crc32(bytes(payload)))
    hdr[100:104] = b"\0\0\0\0"
    hdr[100:104] = struct.pack("<I", zlib.crc32(bytes(hdr)))
    path.write_bytes(bytes(hdr + payload))


def x86_guest_dir() -> Path:
    """The tier-1 x86 test guest (tests/guests/x86/build.sh, idempotent)."""
    out = ROOT / "tests/guests/out/x86"
    subprocess.run([str(ROOT / "tests/guests/x86/build.sh"), str(out)], check=True)
    return out


def restore_stdio(snap, *extra, send=b"", timeout=20):
    """`vessel vm restore SNAP` on a stdio console; send bytes; wait for exit."""
    p = subprocess.run([str(vessel_path()), "vm", "restore", str(snap), "--console", "stdio",
                        *map(str, extra)], input=send, capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def continues(before: str, after: str):
    """The guest's output after a restore continues the output it had printed
    when the snapshot was taken: joined, the counter goes on by one each
    line, and the restored part adds lines. (A snapshot may land in the
    middle of a line; the restored guest then finishes that line.)"""
    seq = counts(before + after)
    assert seq == list(range(seq[0], seq[0] + len(seq))), f"counter skipped or repeated: {seq}"
    assert len(seq) > len(counts(before)), "the restored guest printed no count"
