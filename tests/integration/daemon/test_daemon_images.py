"""Container images in the formats people have: podman's docker-archive
and OCI archive (made here with `podman import` + `podman save`, offline),
and a hand-made two-layer docker-archive whose second layer deletes files
with whiteouts. Layers apply in order; the image's command becomes the
containers' default; a corrupted blob is refused."""
import hashlib
import io
import json
import os
import subprocess
import tarfile
import time

import pytest


def podman(tmp, *args):
    base = ["podman", "--root", str(tmp / "storage"), "--runroot", str(tmp / "run"),
            "--storage-driver", "vfs", "--events-backend", "file", "--cgroup-manager",
            "cgroupfs"]
    return subprocess.run(base + [str(a) for a in args], capture_output=True, text=True,
                          timeout=120, check=True)


@pytest.fixture(scope="module")
def podman_archives(busybox_tarball, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("podman")
    podman(tmp, "import", "--change", 'CMD ["sh", "-c", "echo from-the-image; exec sleep 1000"]',
           busybox_tarball, "localhost/bb:1")
    out = {}
    for fmt in ("docker-archive", "oci-archive"):
        out[fmt] = tmp / f"bb-{fmt}.tar"
        podman(tmp, "save", "--format", fmt, "-o", out[fmt], "localhost/bb:1")
    return out


@pytest.mark.parametrize("fmt", ["docker-archive", "oci-archive"])
def test_podman_saved_images_run_their_command(daemon, podman_archives, fmt):
    daemon.cli("image", "import", podman_archives[fmt], "--alias", "bb", check=True)
    img = json.loads(daemon.cli("image", "list", "--format", "json", check=True).stdout)[0]
    assert img["properties"]["format"] == ("oci" if fmt == "oci-archive" else "docker-archive")
    assert img["properties"]["command"] == ["sh", "-c", "echo from-the-image; exec sleep 1000"]
    daemon.cli("launch", "bb", "p1", check=True)  # no command given: the image's
    for _ in range(100):
        if "from-the-image" in daemon.cli("console", "p1", "--show-log", check=True).stdout:
            break
        time.sleep(0.05)
    assert "from-the-image" in daemon.cli("console", "p1", "--show-log", check=True).stdout
    out = daemon.cli("exec", "p1", "--", "sh", "-c", "ls /bin/busybox && ps -o args",
                     check=True).stdout
    assert "/bin/busybox" in out and "sleep 1000" in out


def layer(files, whiteouts=(), opaque=()):
    """A layer tarball: files {path: bytes}, whiteout and opaque entries."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        def add(name, data=b""):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        for d in sorted({os.path.dirname(p) for p in files} | set(opaque)):
            if d:
                ti = tarfile.TarInfo(d)
                ti.type = tarfile.DIRTYPE
                ti.mode = 0o755
                t.addfile(ti)
        for d in opaque:
            add(f"{d}/.wh..wh..opq")
        for p, data in files.items():
            add(p, data)
        for p in whiteouts:
            dn, bn = os.path.split(p)
            add(os.path.join(dn, ".wh." + bn))
    return buf.getvalue()


def docker_archive(path, layers, cmd):
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "config": {"Cmd": cmd, "Env": ["PATH=/bin"]}}).encode()
    with tarfile.open(path, "w") as t:
        def add(name, data):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
        names = []
        for i, data in enumerate(layers):
            names.append(f"l{i}/layer.tar")
            add(names[-1], data)
        add("config.json", config)
        add("manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t:1"],
                                          "Layers": names}]).encode())


def test_layers_apply_in_order_with_whiteouts(daemon, busybox_tarball, tmp_path):
    base_layer = busybox_tarball.read_bytes()  # gzip'd rootfs tar as layer 0
    l1 = layer({"etc/motd": b"one\n", "data/a": b"a\n", "data/b": b"b\n", "keep/x": b"x\n"})
    l2 = layer({"etc/motd": b"two\n", "data/c": b"c\n"}, whiteouts=["keep/x"], opaque=["data"])
    arc = tmp_path / "layered.tar"
    docker_archive(arc, [base_layer, l1, l2], ["sleep", "1000"])
    daemon.cli("image", "import", arc, "--alias", "layered", check=True)
    daemon.cli("launch", "layered", "w1", check=True)
    r = daemon.cli("exec", "w1", "--", "sh", "-c", "cat /etc/motd; ls /data; ls /keep | wc -l")
    img = next((daemon.state / "images").iterdir())
    assert r.stdout == "two\nc\n0\n", (r.stdout, r.stderr, os.listdir(img / "rootfs"))


def test_corrupt_or_hostile_images_are_refused(daemon, podman_archives, tmp_path):
    # an OCI archive whose layer blob does not match its digest
    bad = tmp_path / "bad-oci.tar"
    with tarfile.open(podman_archives["oci-archive"]) as src, tarfile.open(bad, "w") as dst:
        for m in src.getmembers():
            data = src.extractfile(m).read() if m.isfile() else None
            if data and m.name.startswith("blobs/") and len(data) > 100000:
                data = data[:-10] + b"x" * 10
            if data is not None:
                m.size = len(data)
                dst.addfile(m, io.BytesIO(data))
            else:
                dst.addfile(m)
    r = daemon.cli("image", "import", bad, "--alias", "bad")
    assert r.returncode != 0 and "does not match its digest" in r.stderr, r.stderr
    # a docker-archive whose manifest points outside the archive
    evil = tmp_path / "evil.tar"
    with tarfile.open(evil, "w") as t:
        data = json.dumps([{"Config": "../../etc/passwd", "Layers": []}]).encode()
        ti = tarfile.TarInfo("manifest.json")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    r = daemon.cli("image", "import", evil, "--alias", "evil")
    assert r.returncode != 0 and "manifest.json" in r.stderr, r.stderr
    assert json.loads(daemon.cli("image", "list", "--format", "json").stdout) == []
    assert list((daemon.state / "images").iterdir()) == []


def test_layers_cannot_reach_outside_the_image(daemon, tmp_path):
    """A layer plants a symlink to a host directory; a later layer's whiteouts
    (and an opaque marker) under it must not delete the host's files, and a
    layer that is itself a symlink to a host tar is refused."""
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "secret").write_text("keep me")
    (victim / "sub" / "file").write_text("keep me too")
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        ti = tarfile.TarInfo("x")
        ti.type, ti.linkname = tarfile.SYMTYPE, str(victim)
        t.addfile(ti)
    l1 = buf.getvalue()
    l2 = layer({}, whiteouts=["x/secret"], opaque=["x/sub"])
    arc = tmp_path / "evil-whiteouts.tar"
    docker_archive(arc, [l1, l2], ["sh"])
    daemon.cli("image", "import", arc, "--alias", "evil")
    assert (victim / "secret").read_text() == "keep me"
    assert (victim / "sub" / "file").read_text() == "keep me too"
    # a layer entry that is a symlink to a tarball on the host
    host_tar = tmp_path / "host.tar"
    with tarfile.open(host_tar, "w") as t:
        data = b"stolen"
        ti = tarfile.TarInfo("stolen")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    arc2 = tmp_path / "evil-layer.tar"
    with tarfile.open(arc2, "w") as t:
        ti = tarfile.TarInfo("l.tar")
        ti.type, ti.linkname = tarfile.SYMTYPE, str(host_tar)
        t.addfile(ti)
        for name, data in (("config.json", b'{"config": {}}'),
                           ("manifest.json", json.dumps([{"Config": "config.json",
                                                          "Layers": ["l.tar"]}]).encode())):
            ti = tarfile.TarInfo(name)
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    r = daemon.cli("image", "import", arc2, "--alias", "evil2")
    assert r.returncode != 0 and "not a regular file" in r.stderr, r.stderr
    for img in (daemon.state / "images").iterdir():
        assert not (img / "rootfs" / "stolen").exists()


def test_a_disk_that_fills_during_an_import_leaves_nothing(daemon, tmp_path):
    """The image store's file system fills half-way through an import (a
    2 MiB tmpfs over it, a 6 MiB tarball): one clear line naming the full
    disk, no image listed, no partial files, and the next import that fits
    works."""
    big = tmp_path / "big.tar"
    with tarfile.open(big, "w") as t:
        for i in range(3):
            data = os.urandom(2 << 20)
            ti = tarfile.TarInfo(f"blob{i}")
            ti.size = len(data)
            t.addfile(ti, io.BytesIO(data))
    small = tmp_path / "small.tar"
    with tarfile.open(small, "w") as t:
        data = b"fits\n"
        ti = tarfile.TarInfo("etc/hello")
        ti.size = len(data)
        t.addfile(ti, io.BytesIO(data))
    images = daemon.state / "images"
    images.mkdir(exist_ok=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(images)], check=True)
    try:
        for kind in ([], ["--vm", "--kernel"]):
            r = daemon.cli("image", "import", *kind, big, "--alias", "big")
            assert r.returncode != 0, r.stdout
            lines = [l for l in r.stderr.splitlines() if l.strip()]
            assert len(lines) == 1 and "No space left on device" in lines[0], r.stderr
            assert json.loads(daemon.cli("image", "list", "--format", "json").stdout) == []
            assert list(images.iterdir()) == []
        r = daemon.cli("image", "import", small, "--alias", "small")
        assert r.returncode == 0, r.stderr
        assert [i["alias"] for i in
                json.loads(daemon.cli("image", "list", "--format", "json").stdout)] == ["small"]
    finally:
        subprocess.run(["umount", "-l", str(images)])


def test_image_aliases(daemon, busybox_tarball, tmp_path):
    """image alias create/delete/list, as lxc image alias: an alias names one
    image; launching by it works; taken, unknown and bad aliases are refused
    in one line."""
    daemon.cli("image", "import", busybox_tarball, "--alias", "bb", check=True)
    fp = json.loads(daemon.cli("image", "list", "--format", "json", check=True).stdout)[0][
        "fingerprint"]
    daemon.cli("image", "alias", "create", "busybox-latest", "bb", check=True)
    listed = daemon.cli("image", "alias", "list", check=True).stdout
    assert "busybox-latest" in listed and fp[:12] in listed and "bb " not in listed
    daemon.cli("launch", "busybox-latest", "c1", "-c", "command=sleep 1000", check=True)
    assert daemon.list()["c1"]["state"] == "running"
    for args, why in ((["create", "bad alias", fp[:12]], "invalid image alias"),
                      (["create", "x", "no-such-image"], "no-such-image"),
                      (["delete", "bb"], "bb")):
        r = daemon.cli("image", "alias", *args)
        lines = [l for l in r.stderr.splitlines() if l.strip()]
        assert r.returncode != 0 and len(lines) == 1 and why in lines[0], r.stderr
    # an alias another image holds is refused, and stays with it
    small = tmp_path / "small.tar"
    with tarfile.open(small, "w") as t:
        ti = tarfile.TarInfo("etc/hello")
        ti.size = 3
        t.addfile(ti, io.BytesIO(b"hi\n"))
    daemon.cli("image", "import", small, "--alias", "other", check=True)
    r = daemon.cli("image", "alias", "create", "other", fp[:12])
    assert r.returncode != 0 and "names image" in r.stderr, r.stderr
    assert daemon.cli("image", "alias", "list").stdout.count("other") == 1
    daemon.cli("image", "alias", "delete", "busybox-latest", check=True)
    assert json.loads(daemon.cli("image", "list", "--format", "json").stdout)[0]["alias"] is None
    r = daemon.cli("image", "alias")
    assert r.returncode == 2 and "usage" in r.stderr
    daemon.cli("delete", "--force", "c1", check=True)
