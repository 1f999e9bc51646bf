"""Rootless: an unprivileged user runs a container in its own user namespace
(single-id mapping: this host has no /etc/subuid entries)."""
import json
import os
import pwd
import shutil
import subprocess

import pytest

USER = "vesseltest"


@pytest.fixture(scope="module")
def user():
    if os.geteuid() != 0:
        pytest.skip("creating the test user needs root")
    try:
        pw = pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/bin/sh", USER], check=True)
        pw = pwd.getpwnam(USER)
    return pw


def as_user(pw, args, **kw):
    env = {"PATH": "/usr/bin:/bin", "HOME": "/tmp", "XDG_RUNTIME_DIR": kw.pop("xdg")}
    if "stdout" not in kw:
        kw["capture_output"] = True
    return subprocess.run(["setpriv", f"--reuid={pw.pw_uid}", f"--regid={pw.pw_gid}",
                           "--clear-groups", "--"] + [str(a) for a in args], env=env,
                          text=True, timeout=60, **kw)


def test_rootless_run(runc, rootfs, oci_tmp, user):
    base = oci_tmp / "rootless"
    base.mkdir(exist_ok=True)
    bundle, xdg = base / "bundle", base / "xdg"
    for d in (bundle, xdg):
        d.mkdir(exist_ok=True)
        os.chown(d, user.pw_uid, user.pw_gid)
    p = as_user(user, [runc, "spec", "--rootless", "--bundle", bundle], xdg=str(xdg))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((bundle / "config.json").read_text())
    assert cfg["linux"]["uidMappings"] == [{"containerID": 0, "hostID": user.pw_uid, "size": 1}]
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["terminal"] = False
    cfg["hostname"] = "rootless-box"
    cfg["process"]["args"] = ["sh", "-c",
                              "id -u; cat /proc/self/uid_map; echo pid=$$; hostname; "
                              "touch /x 2>/dev/null || echo ro-root"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    p = as_user(user, [runc, "run", "--bundle", bundle, "rl1"], xdg=str(xdg))
    assert p.returncode == 0, p.stderr
    lines = p.stdout.splitlines()
    assert lines[0] == "0"  # root inside ...
    assert lines[1].split() == ["0", str(user.pw_uid), "1"]  # ... which is the user outside
    assert lines[2:] == ["pid=1", "rootless-box", "ro-root"], lines
    # the state lives in the user's runtime dir, and is gone after run
    assert (xdg / "vessel-runc").is_dir() and not (xdg / "vessel-runc" / "rl1").exists()
    # a rootless container still gets an exit status, and a lifecycle
    cfg["process"]["args"] = ["sh", "-c", "exit 3"]
    (bundle / "config.json").write_text(json.dumps(cfg))
    p = as_user(user, [runc, "run", "--bundle", bundle, "rl2"], xdg=str(xdg))
    assert p.returncode == 3, p.stderr


def test_rootless_needs_user_namespace(runc, rootfs, oci_tmp, user):
    base = oci_tmp / "rootless2"
    base.mkdir(exist_ok=True)
    os.chown(base, user.pw_uid, user.pw_gid)
    subprocess.run([str(runc), "spec", "--bundle", str(base)], check=True)
    cfg = json.loads((base / "config.json").read_text())
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["terminal"] = False
    (base / "config.json").write_text(json.dumps(cfg))
    os.chown(base / "config.json", user.pw_uid, user.pw_gid)
    p = as_user(user, [runc, "run", "--bundle", base, "rl3"], xdg=str(base))
    assert p.returncode != 0
    assert "user namespace" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    shutil.rmtree(base, ignore_errors=True)


def test_rootless_lifecycle_and_exec(runc, rootfs, oci_tmp, user):
    from conftest import become_subreaper, reap
    become_subreaper()
    base = oci_tmp / "rootless3"
    base.mkdir(exist_ok=True)
    os.chown(base, user.pw_uid, user.pw_gid)
    p = as_user(user, [runc, "spec", "--rootless", "--bundle", base], xdg=str(base))
    assert p.returncode == 0, p.stderr
    cfg = json.loads((base / "config.json").read_text())
    cfg["root"]["path"] = str(rootfs)
    cfg["process"]["terminal"] = False
    cfg["process"]["args"] = ["sh", "-c", "while true; do sleep 0.05; done"]
    (base / "config.json").write_text(json.dumps(cfg))
    r = ["--root", base / "state"]
    p = as_user(user, [runc, *r, "create", "--bundle", base, "rl4"], xdg=str(base),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert p.returncode == 0
    assert as_user(user, [runc, *r, "start", "rl4"], xdg=str(base)).returncode == 0
    st = json.loads(as_user(user, [runc, *r, "state", "rl4"], xdg=str(base)).stdout)
    assert st["status"] == "running" and st["owner"] == USER
    p = as_user(user, [runc, *r, "exec", "rl4", "sh", "-c",
                       "id -u; readlink /proc/self/ns/user; readlink /proc/1/ns/user"],
                xdg=str(base))
    assert p.returncode == 0, p.stderr
    uid, ns_self, ns_init = p.stdout.split()
    assert uid == "0" and ns_self == ns_init
    assert ns_self == os.readlink(f"/proc/{st['pid']}/ns/user")
    p = as_user(user, [runc, *r, "pause", "rl4"], xdg=str(base))
    assert p.returncode != 0 and "no cgroup" in p.stderr
    assert as_user(user, [runc, *r, "delete", "--force", "rl4"], xdg=str(base)).returncode == 0
    reap(st["pid"])
    assert not (base / "state" / "rl4").exists()
