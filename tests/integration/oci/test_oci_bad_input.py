"""Bad input: one clear line, a non-zero exit, and nothing half-created
(no state directory, no cgroup, no process)."""
import json
import os

import pytest

from conftest import become_subreaper, reap


def leftovers(bundle):
    found = []
    if (bundle.root / bundle.id).exists():
        found.append(str(bundle.root / bundle.id))
    for base in ("/sys/fs/cgroup/pids", "/sys/fs/cgroup/memory", "/sys/fs/cgroup/unified"):
        for dirpath, dirnames, _ in os.walk(base):
            if bundle.id in dirnames:
                found.append(os.path.join(dirpath, bundle.id))
    return found


def one_line(p):
    lines = [l for l in p.stderr.splitlines() if l.strip()]
    assert p.returncode != 0
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("vessel: "), lines[0]
    return lines[0]


def check_create_fails(bundle, needle):
    p = bundle.cmd("create", "--bundle", bundle.path, bundle.id)
    msg = one_line(p)
    assert needle in msg, msg
    assert not leftovers(bundle), leftovers(bundle)
    return msg


def test_malformed_json(bundle):
    (bundle.path / "config.json").write_text('{"ociVersion": "1.0.0", "root": ')
    check_create_fails(bundle, "invalid JSON")


def test_wrong_types(bundle):
    bundle.config["process"]["args"] = "sh"
    bundle.write()
    check_create_fails(bundle, "process.args")


def test_unknown_oci_version_major(bundle):
    bundle.config["ociVersion"] = "2.0.0"
    bundle.write()
    check_create_fails(bundle, "ociVersion '2.0.0'")


def test_missing_rootfs(bundle, tmp_path):
    bundle.config["root"]["path"] = str(tmp_path / "no-such-rootfs")
    bundle.write()
    check_create_fails(bundle, "rootfs")


def test_unknown_namespace_type(bundle):
    bundle.config["linux"]["namespaces"].append({"type": "bogus"})
    bundle.write()
    check_create_fails(bundle, "unknown namespace type 'bogus'")


def test_bad_namespace_path(bundle):
    bundle.config.pop("hostname", None)  # no uts namespace below
    bundle.config["linux"]["namespaces"] = [
        {"type": "network", "path": "/proc/self/ns/no-such"}, {"type": "mount"}, {"type": "pid"}]
    bundle.write()
    check_create_fails(bundle, "network namespace")


def test_missing_executable(bundle):
    bundle.args("/bin/does-not-exist")
    bundle.write()
    check_create_fails(bundle, "does-not-exist")


def test_unsupported_resource_is_refused_cleanly(bundle):
    bundle.resources()["hugepageLimits"] = [{"pageSize": "3MB", "limit": 1}]
    bundle.write()
    check_create_fails(bundle, "hugetlb.3MB")


def test_duplicate_container_id(bundle):
    become_subreaper()
    bundle.sh("sleep 30").create()
    pid = bundle.state()["pid"]
    p = bundle.cmd("create", "--bundle", bundle.path, bundle.id)
    assert "already exists" in one_line(p)
    # the first container is untouched
    assert bundle.state()["status"] == "created" and bundle.state()["pid"] == pid
    # a created container is not stopped: delete refuses it without --force
    assert "created" in one_line(bundle.cmd("delete", bundle.id))
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)
    assert not leftovers(bundle)


def test_delete_running_needs_force(bundle):
    become_subreaper()
    bundle.sh("sleep 30").create()
    bundle.start()
    pid = bundle.state()["pid"]
    msg = one_line(bundle.cmd("delete", bundle.id))
    assert "running" in msg and "--force" in msg
    assert bundle.state()["status"] == "running"
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)
    assert not leftovers(bundle)


@pytest.mark.parametrize("args,needle", [
    (["start", "nosuch"], "does not exist"),
    (["kill", "nosuch"], "does not exist"),
    (["delete", "nosuch"], "does not exist"),
    (["state", "../etc"], "invalid container id"),
    (["frobnicate"], "unknown command"),
    (["create"], "missing container id"),
    (["kill", "x", "SIGNOPE"], "unknown signal"),
])
def test_cli_errors(bundle, args, needle):
    assert needle in one_line(bundle.cmd(*args))


def test_start_twice(bundle):
    become_subreaper()
    bundle.sh("sleep 30").create()
    bundle.start()
    pid = bundle.state()["pid"]
    assert "running" in one_line(bundle.cmd("start", bundle.id))
    bundle.cmd("delete", "--force", bundle.id, check=True)
    reap(pid)


def test_delete_force_of_missing_is_ok(bundle):
    assert bundle.cmd("delete", "--force", "never-existed").returncode == 0


def test_racing_invocations(bundle):
    """Concurrent creates of one id: exactly one wins; concurrent deletes and
    starts serialize on the container's lock."""
    import concurrent.futures
    become_subreaper()
    bundle.sh("sleep 30").write()
    with concurrent.futures.ThreadPoolExecutor(6) as ex:
        results = list(ex.map(lambda _: bundle.cmd("create", "--bundle", bundle.path, bundle.id),
                              range(6)))
    ok = [r for r in results if r.returncode == 0]
    assert len(ok) == 1, [r.stderr for r in results]
    assert all("already exists" in r.stderr for r in results if r.returncode != 0)
    pid = bundle.state()["pid"]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        starts = list(ex.map(lambda _: bundle.cmd("start", bundle.id), range(4)))
    assert sum(r.returncode == 0 for r in starts) == 1, [r.stderr for r in starts]
    with concurrent.futures.ThreadPoolExecutor(4) as ex:
        dels = list(ex.map(lambda _: bundle.cmd("delete", "--force", bundle.id), range(4)))
    assert all(r.returncode == 0 for r in dels), [r.stderr for r in dels]
    reap(pid)
    assert not leftovers(bundle)
