"""podman with --runtime vessel-runc: run, exec, stop and rm a container from
an image imported offline (`podman import` of a busybox rootfs tarball).

podman needs, on this host: the cgroupfs cgroup manager (no systemd), the
file events logger (no journald), and --ulimit values within the bounding
set (CAP_SYS_RESOURCE is missing, so nofile cannot exceed 20000). Storage and
run directories are private to the test."""
import os
import shutil
import subprocess
import tarfile

import pytest

ULIMITS = ["--ulimit", "nofile=20000:20000", "--ulimit", "nproc=1024:1024"]


@pytest.fixture(scope="module")
def podman(runc, rootfs, tmp_path_factory):
    if not shutil.which("podman"):
        pytest.fail("podman is not installed (scripts/setup.sh installs it)")
    d = tmp_path_factory.mktemp("podman")
    conf = d / "containers.conf"
    conf.write_text('[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n'
                    f'events_logfile_path = "{d}/events.log"\n')
    storage = d / "storage.conf"
    storage.write_text(f'[storage]\ndriver = "overlay"\ngraphroot = "{d}/storage"\n'
                       f'runroot = "{d}/run"\n')
    env = dict(os.environ, CONTAINERS_CONF=str(conf), CONTAINERS_STORAGE_CONF=str(storage),
               TMPDIR=str(d))
    base = ["podman", "--runtime", str(runc), "--cgroup-manager", "cgroupfs", "--events-backend",
            "file", "--root", f"{d}/storage", "--runroot", f"{d}/run", "--tmpdir", f"{d}/tmp"]

    def pm(*args, check=True, timeout=120):
        p = subprocess.run(base + list(args), capture_output=True, text=True, env=env,
                           timeout=timeout, stdin=subprocess.DEVNULL)
        if check and p.returncode != 0:
            raise AssertionError(f"podman {' '.join(args)} exited {p.returncode}\n"
                                 f"stdout:\n{p.stdout}\nstderr:\n{p.stderr}")
        return p

    tar = d / "busybox.tar"
    with tarfile.open(tar, "w") as t:
        t.add(str(rootfs), arcname=".")
    pm("import", str(tar), "localhost/vessel-busybox:test")
    yield pm
    pm("rm", "--all", "--force", check=False)
    pm("system", "reset", "--force", check=False)
    subprocess.run(["umount", "-R", f"{d}/storage/overlay"], capture_output=True)


def test_podman_run_exec_stop_rm(podman):
    p = podman("run", "--rm", "--network", "none", *ULIMITS, "localhost/vessel-busybox:test",
               "sh", "-c", "echo hello-from-vessel; echo pid=$$; hostname")
    assert "hello-from-vessel" in p.stdout and "pid=1" in p.stdout
    p = podman("run", "--network", "none", *ULIMITS, "localhost/vessel-busybox:test", "sh",
               "-c", "exit 7", check=False)
    assert p.returncode == 7
    podman("run", "-d", "--name", "vc1", "--network", "none", *ULIMITS,
           "localhost/vessel-busybox:test", "sh", "-c",
           "trap 'exit 0' TERM; while true; do sleep 0.1; done")
    p = podman("ps", "--format", "{{.Names}} {{.Status}}")
    assert "vc1 Up" in p.stdout
    p = podman("exec", "vc1", "sh", "-c", "echo exec-ok; cat /proc/1/cmdline | tr '\\0' ' '")
    assert "exec-ok" in p.stdout and "while true" in p.stdout
    podman("stop", "-t", "10", "vc1")
    p = podman("ps", "-a", "--format", "{{.Names}} {{.Status}}")
    assert "vc1 Exited (0)" in p.stdout, p.stdout
    podman("rm", "vc1")
    p = podman("ps", "-a", "--format", "{{.Names}}")
    assert "vc1" not in p.stdout
