"""Fixtures for the management daemon's tests: a vesseld of the test's own
(its own state directory and socket, killed at the end), the `vessel` client
pointed at it, and a busybox rootfs tarball to import."""
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest

from vesselpaths import vessel_path


def vesseld_path() -> Path:
    return vessel_path().parent / "vesseld"


class Daemon:
    def __init__(self, state: Path, sock: Path):
        self.state, self.sock, self.proc = state, sock, None
        self.env = dict(os.environ, VESSEL_SOCKET=str(sock))
        self.netns = None  # run in this network namespace (the managed-network tests)
        self.network = "none"  # no bridge on the host the tests run on

    def start(self, *extra):
        self.log = open(self.state.parent / "vesseld.log", "ab")
        prefix = ["ip", "netns", "exec", self.netns] if self.netns else []
        self.proc = subprocess.Popen([*prefix, str(vesseld_path()), "--state-dir",
                                      str(self.state), "--socket", str(self.sock), "--network",
                                      self.network, *extra],
                                     stdout=self.log, stderr=self.log)
        for _ in range(200):
            if self.sock.exists() and self.cli("list").returncode == 0:
                return self
            if self.proc.poll() is not None:
                raise AssertionError(f"vesseld exited {self.proc.returncode}: "
                                     f"{(self.state.parent / 'vesseld.log').read_text()}")
            time.sleep(0.02)
        raise AssertionError("vesseld did not start serving")

    def kill(self, sig=signal.SIGKILL):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=10)

    def cli(self, *args, timeout=60, check=False):
        p = subprocess.run([str(vessel_path()), *map(str, args)], capture_output=True,
                           text=True, timeout=timeout, env=self.env)
        if check and p.returncode != 0:
            raise AssertionError(f"vessel {' '.join(map(str, args))} exited {p.returncode}:\n"
                                 f"{p.stdout}{p.stderr}")
        return p

    def list(self):
        return {i["name"]: i for i in json.loads(self.cli("list", "--format", "json",
                                                          check=True).stdout)}

    def curl(self, method, path, body=None):
        """(status, json) over the socket with curl, as a script would."""
        args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket", str(self.sock),
                "-X", method, f"http://vessel{path}"]
        data = None
        if body is not None:
            args += ["-H", "Content-Type: application/json", "--data-binary", "@-"]
            data = body if isinstance(body, str) else json.dumps(body)
        p = subprocess.run(args, capture_output=True, text=True, timeout=60, input=data)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), json.loads(text) if text.strip() else None


@pytest.fixture
def daemon(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("the daemon tests run as root (overlay mounts, containers)")
    d = Daemon(tmp_path / "state", tmp_path / "vessel.sock").start()
    yield d
    # leave nothing running: instances first (the daemon knows them), then it
    try:
        for name in list(d.list()) if d.proc.poll() is None else []:
            d.cli("delete", "--force", name, timeout=60)
    finally:
        d.kill(signal.SIGTERM)
        kill_leftovers(tmp_path / "state")
        subprocess.run(["umount", "-R", "-l", str(tmp_path / "state")], capture_output=True)


def kill_leftovers(state: Path):
    """Whatever a failed test left running from this state directory (a VM
    process outlives its daemon by design): killed, so one failure does not
    load the machine for every test after it."""
    mark = str(state).encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if mark in f.read():
                    os.kill(int(pid), signal.SIGKILL)
        except (OSError, ProcessLookupError):
            pass


@pytest.fixture(scope="session")
def busybox_tarball(tmp_path_factory) -> Path:
    """A plain rootfs tarball: busybox-static and its applet links."""
    if not Path("/bin/busybox").exists():
        pytest.fail("busybox-static is not installed (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("busybox")
    root = d / "rootfs"
    for sub in ("bin", "sbin", "proc", "sys", "dev", "tmp", "etc", "root"):
        (root / sub).mkdir(parents=True)
    shutil.copy("/bin/busybox", root / "bin/busybox")
    subprocess.run(["chroot", str(root), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (root / "etc/hostname").write_text("busybox\n")
    out = d / "busybox.tar.gz"
    with tarfile.open(out, "w:gz") as t:
        t.add(root, arcname=".")
    return out


@pytest.fixture
def busybox(daemon, busybox_tarball):
    daemon.cli("image", "import", busybox_tarball, "--alias", "busybox", check=True)
    return "busybox"


@pytest.fixture(scope="session")
def rv_guest_files():
    cache = Path(os.environ.get("VESSEL_CACHE", Path.home() / ".cache/vessel"))
    env = dict(os.environ, VESSEL_GUEST_DIR=str(cache / "guest"))
    p = subprocess.run([str(Path(__file__).resolve().parents[3] / "guest/build-riscv64.sh")], env=env, capture_output=True,
                       text=True, timeout=1500)
    if p.returncode != 0:
        pytest.fail(f"guest/build-riscv64.sh failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    d = cache / "guest/riscv64"
    return d / "vmlinuz", d / "initrd.img"
