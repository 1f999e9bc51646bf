"""Driving VM processes for the migration tests: a guest on a stdio console
(its shell or its counter read as it prints)."""
import os
import re
import select
import subprocess
import time

PROMPT = b"vessel-rv# "


class Guest:
    """A VM process whose console is its stdout (and stdin)."""

    def __init__(self, argv, env=None):
        self.p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, env=env)
        self.buf = b""
        self.all = b""

    def pump(self, t=0.0):
        r, _, _ = select.select([self.p.stdout], [], [], t)
        if r:
            chunk = os.read(self.p.stdout.fileno(), 65536)
            self.buf += chunk
            self.all += chunk
            return bool(chunk)
        return False

    def expect(self, needle: bytes, timeout=60) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0 or (self.p.poll() is not None and not self.pump(0)):
                err = self.p.stderr.read().decode(errors="replace") if self.p.poll() is not None \
                    else ""
                raise AssertionError(f"no {needle!r}; output:\n{self.buf[-2000:]!r}\n"
                                     f"exit {self.p.poll()} {err}")
            self.pump(min(left, 0.2))
        i = self.buf.index(needle) + len(needle)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out.decode(errors="replace")

    def run(self, line: str, timeout=60) -> str:
        self.p.stdin.write(line.encode() + b"\n")
        self.p.stdin.flush()
        return self.expect(PROMPT, timeout)

    def counts(self):
        """Every 'count %08x' the counter guest printed so far."""
        while self.pump(0):
            pass
        return [int(x, 16) for x in re.findall(rb"count ([0-9a-f]{8})", self.all)]

    def stderr(self) -> str:
        return self.p.stderr.read().decode(errors="replace")

    def kill(self):
        if self.p.poll() is None:
            self.p.kill()
        self.p.wait()


def fd_count(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))
