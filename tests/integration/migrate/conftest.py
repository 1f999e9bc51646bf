"""Fixtures for live-migration tests: two "hosts" made on this machine (two
network namespaces joined by a veth pair, with addresses only inside them),
and VM processes started in either."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "snapshot"))
sys.path.insert(0, str(HERE.parent))
from snaputil import vessel_path  # noqa: E402

ROOT = HERE.parents[2]
CROSS = "riscv64-linux-gnu-"


class Host:
    def __init__(self, ns: str, addr: str):
        self.ns, self.addr = ns, addr

    def cmd(self, *args):
        return ["ip", "netns", "exec", self.ns, *map(str, args)]

    def vessel(self, *args):
        return self.cmd(str(vessel_path()), *args)

    def run(self, *args, timeout=60):
        return subprocess.run(self.vessel(*args), capture_output=True, text=True,
                              timeout=timeout, stdin=subprocess.DEVNULL)

    def listening(self, port: int) -> bool:
        p = subprocess.run(self.cmd("ss", "-Hltn", f"sport = :{port}"), capture_output=True,
                           text=True)
        return bool(p.stdout.strip())

    def wait_listening(self, port: int, proc=None, timeout=20):
        deadline = time.monotonic() + timeout
        while not self.listening(port):
            if proc is not None and proc.poll() is not None:
                raise AssertionError(f"the destination exited {proc.returncode} before "
                                     f"listening: {proc.stderr.read()}")
            assert time.monotonic() < deadline, f"nothing listens on {self.addr}:{port}"
            time.sleep(0.05)


@pytest.fixture
def hosts():
    """(source, destination): namespaces vmA/vmB joined by veth, 10.231.0.1 and .2."""
    tag = f"{os.getpid() % 100000}"
    a, b = f"vmigA{tag}", f"vmigB{tag}"
    subprocess.run(["ip", "netns", "add", a], check=True)
    subprocess.run(["ip", "netns", "add", b], check=True)
    try:
        subprocess.run(["ip", "link", "add", f"vmA{tag}", "netns", a, "type", "veth", "peer",
                        "name", f"vmB{tag}", "netns", b], check=True)
        for ns, dev, ip in ((a, f"vmA{tag}", "10.231.0.1/24"), (b, f"vmB{tag}", "10.231.0.2/24")):
            subprocess.run(["ip", "-n", ns, "addr", "add", ip, "dev", dev], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", dev, "up"], check=True)
            subprocess.run(["ip", "-n", ns, "link", "set", "lo", "up"], check=True)
        src, dst = Host(a, "10.231.0.1"), Host(b, "10.231.0.2")
        src.dev, dst.dev = f"vmA{tag}", f"vmB{tag}"
        yield src, dst
    finally:
        for ns in (a, b):
            subprocess.run(["ip", "netns", "pids", ns], capture_output=True)
            pids = subprocess.run(["ip", "netns", "pids", ns], capture_output=True,
                                  text=True).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except (ProcessLookupError, ValueError):
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True)


@pytest.fixture(scope="session")
def rv_counter(tmp_path_factory) -> Path:
    """The snapshot tests' counter guest: prints 'count %08x' forever."""
    d = tmp_path_factory.mktemp("rvcounter")
    elf, bin_ = d / "counter.elf", d / "counter.bin"
    subprocess.run([CROSS + "gcc", "-nostdlib", "-static", "-march=rv64gc", "-mabi=lp64d",
                    "-Wl,-Ttext=0x80200000", "-Wl,--build-id=none", "-o", str(elf),
                    str(HERE.parent / "snapshot/rv_counter.S")], check=True, capture_output=True)
    subprocess.run([CROSS + "objcopy", "-O", "binary", str(elf), str(bin_)], check=True)
    return bin_


@pytest.fixture(scope="session")
def rv_linux(cache_dir) -> Path:
    env = dict(os.environ, VESSEL_GUEST_DIR=str(cache_dir / "guest"))
    p = subprocess.run([str(ROOT / "guest/build-riscv64.sh")], env=env, capture_output=True,
                       text=True, timeout=1500)
    if p.returncode != 0:
        pytest.fail(f"guest/build-riscv64.sh failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    return cache_dir / "guest/riscv64"
