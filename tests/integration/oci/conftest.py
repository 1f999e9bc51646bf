"""Fixtures for the OCI runtime tests: a busybox-static rootfs (built once per
session), per-test bundles, and a private --root so tests never see each
other's containers."""
import ctypes
import json
import os
import shutil
import subprocess
import tempfile
import uuid
from pathlib import Path

import pytest

BUSYBOX = "/bin/busybox"


def runc_path(vessel: Path) -> Path:
    p = vessel.parent / "vessel-runc"
    if not p.exists():
        pytest.exit(f"{p} is missing: build vessel first", returncode=2)
    return p


@pytest.fixture(scope="session")
def runc(vessel) -> Path:
    return runc_path(vessel)


def need_root():
    if os.geteuid() != 0:
        pytest.skip("the OCI runtime tests run as root (rootless is tested via a created user)")


def make_rootfs(dest: Path):
    """busybox-static rootfs: /bin/busybox plus its applet links."""
    if not os.path.exists(BUSYBOX):
        pytest.fail("busybox-static is not installed (scripts/setup.sh installs it)")
    for d in ("bin", "proc", "dev", "sys", "tmp", "etc", "out"):
        (dest / d).mkdir(parents=True, exist_ok=True)
    shutil.copy(BUSYBOX, dest / "bin/busybox")
    subprocess.run(["chroot", str(dest), "/bin/busybox", "--install", "-s", "/bin"], check=True)
    (dest / "etc/passwd").write_text("root:x:0:0:root:/:/bin/sh\nnobody:x:65534:65534::/:/bin/sh\n")
    (dest / "etc/group").write_text("root:x:0:\nnobody:x:65534:\n")


@pytest.fixture(scope="session")
def oci_tmp():
    """World-traversable scratch dir (the rootless test's user must reach it)."""
    d = Path(tempfile.mkdtemp(prefix="vessel-oci-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs(oci_tmp) -> Path:
    need_root()
    r = oci_tmp / "rootfs"
    make_rootfs(r)
    return r


@pytest.fixture(scope="session")
def state_root(oci_tmp) -> Path:
    d = oci_tmp / "state"
    d.mkdir()
    return d


def run_to_files(argv, timeout=60, input=None, **kw):
    """subprocess.run with the output collected through files, not pipes: a
    detached container (create, run -d, exec -d) keeps its stdio open, so a
    pipe would never end. Returns the CompletedProcess with stdout/stderr."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        kw.setdefault("stdout", out)
        kw.setdefault("stderr", err)
        if input is None:
            kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.run([str(a) for a in argv], text=True, timeout=timeout, input=input, **kw)
        out.seek(0)
        err.seek(0)
        p.stdout, p.stderr = out.read(), err.read()
    return p


class Bundle:
    def __init__(self, runc: Path, root: Path, path: Path, rootfs: Path):
        self.runc, self.root, self.path = runc, root, path
        path.mkdir(parents=True, exist_ok=True)
        subprocess.run([str(runc), "spec", "--bundle", str(path)], check=True)
        self.config = json.loads((path / "config.json").read_text())
        self.config["root"]["path"] = str(rootfs)
        self.config["process"]["terminal"] = False
        self.config["process"]["args"] = ["true"]
        self.id = "t" + uuid.uuid4().hex[:10]

    # config helpers
    def args(self, *a):
        self.config["process"]["args"] = list(a)
        return self

    def sh(self, script):
        return self.args("sh", "-c", script)

    def resources(self):
        return self.config["linux"].setdefault("resources", {})

    def add_mount(self, dest, typ="tmpfs", source="tmpfs", options=None):
        self.config["mounts"].append({"destination": dest, "type": typ, "source": source,
                                      "options": options or ["nosuid", "nodev", "mode=1777"]})
        return self

    def write(self):
        (self.path / "config.json").write_text(json.dumps(self.config, indent=1))

    # runtime helpers
    def cmd(self, *args, timeout=60, input=None, check=False, **kw):
        p = run_to_files([self.runc, "--root", self.root, *args], timeout=timeout, input=input,
                         **kw)
        if check and p.returncode != 0:
            raise AssertionError(f"vessel-runc {' '.join(map(str, args))} exited "
                                 f"{p.returncode}\nstdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    def run(self, timeout=60, **kw):
        self.write()
        return self.cmd("run", "--bundle", self.path, self.id, timeout=timeout, **kw)

    def create(self, check=True):
        self.write()
        # the init inherits our stdio: give it /dev/null so nothing waits on it
        return self.cmd("create", "--bundle", self.path, self.id, check=check)

    def start(self):
        return self.cmd("start", self.id, check=True)

    def state(self):
        p = self.cmd("state", self.id, check=True)
        return json.loads(p.stdout)

    def delete(self, force=True):
        return self.cmd("delete", *(["--force"] if force else []), self.id)


def leftover_cgroups(prefix):
    import glob
    return [d for d in glob.glob(f"/sys/fs/cgroup/**/vessel/{prefix}*", recursive=True)
            if os.path.isdir(d)]


@pytest.fixture
def bundle(runc, state_root, rootfs, tmp_path):
    b = Bundle(runc, state_root, tmp_path / "bundle", rootfs)
    first = b.id
    yield b
    b.cmd("delete", "--force", b.id)
    # every container a test made (ids derived from the first) is gone
    left = leftover_cgroups(first)
    assert not left, f"cgroups left behind: {left}"


def become_subreaper():
    """Orphaned container inits re-parent to us (this host's PID 1 does not
    reap), so a detached container's init can be reaped by the test."""
    libc = ctypes.CDLL(None, use_errno=True)
    PR_SET_CHILD_SUBREAPER = 36
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def reap(pid, timeout=10.0):
    """Reap pid, and any other orphan that re-parented to us meanwhile: a
    dying container init waits until every process of its pid namespace has
    been reaped, and those re-parent to us too."""
    import time
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        try:
            r, _ = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if r == pid:
            return
        if r == 0:
            time.sleep(0.01)


def cgroup_dirs_of(state_root: Path, cid: str):
    st = json.loads((state_root / cid / "state.json").read_text())
    return [h["dir"] for h in st.get("vesselCgroup", {}).get("hierarchies", [])]
