"""`vessel exec --cwd DIR --user UID[:GID] --env NAME=VALUE` (LXD's cwd,
user, group and environment) for a container and for a riscv64 VM through
the guest agent; the API takes the same as JSON and refuses bad values."""
from test_daemon_vms import vessel


def check_options(daemon, name, shell):
    # the working directory, the user and an added variable
    r = vessel(daemon, "exec", name, "--cwd", "/tmp", "--user", "1000:1001", "--env", "GREETING=hi there",
               "--env", "SECOND=2", "--", *shell("pwd; id; env"))
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "/tmp"
    assert "uid=1000" in lines[1] and "gid=1001" in lines[1]
    assert "GREETING=hi there" in lines and "SECOND=2" in lines
    # the default environment stays, and an entry given replaces its own
    assert any(line.startswith("PATH=") for line in lines)
    r = vessel(daemon, "exec", name, "--env", "HOME=/elsewhere", "--", "env")
    assert r.returncode == 0 and "HOME=/elsewhere" in r.stdout.splitlines()
    assert "HOME=/root" not in r.stdout.splitlines()
    # --user UID alone: group 0; flags also before the name, --flag=value too
    r = vessel(daemon, "exec", "--user=7", name, "--", "id")
    assert r.returncode == 0 and "uid=7" in r.stdout and "gid=0" in r.stdout
    # without options: root in /
    r = vessel(daemon, "exec", name, "--", *shell("pwd; id"))
    assert r.stdout.splitlines()[0] == "/" and "uid=0" in r.stdout
    # a directory that is not there: the command does not run
    r = vessel(daemon, "exec", name, "--cwd", "/no/such/dir", "--", "echo", "ran")
    assert r.returncode != 0 and "ran" not in r.stdout
    # the same through the API, recorded
    code, body = daemon.curl("POST", f"/1.0/instances/{name}/exec",
                             {"command": ["pwd"], "cwd": "/proc", "user": 5, "group": 6,
                              "environment": {"A": "b"}, "record_output": True})
    assert code == 200 and body["exit_code"] == 0 and body["stdout"] == "/proc\n"
    # bad values: one line, nothing run
    for bad in ({"cwd": "relative"}, {"user": "root"}, {"user": -1}, {"group": 3},
                {"environment": ["A=b"]}, {"environment": {"A=B": "c"}},
                {"environment": {"A": 1}}):
        code, body = daemon.curl("POST", f"/1.0/instances/{name}/exec",
                                 {"command": ["true"], "record_output": True, **bad})
        assert code == 400, (bad, code, body)
    for flags in (["--user", "root"], ["--user", "1:x"], ["--env", "NOVALUE"], ["--env", "=v"]):
        r = vessel(daemon, "exec", name, *flags, "--", "true")
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (flags, r.stderr)


def test_exec_options_in_a_container(daemon, busybox):
    daemon.cli("launch", busybox, "c1", "-c", "command=sleep 1000", check=True)
    check_options(daemon, "c1", lambda script: ["sh", "-c", script])


def test_exec_options_in_a_riscv64_vm(daemon, rv_guest_files):
    kernel, initrd = rv_guest_files
    daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
               initrd, "--alias", "debian-rv", check=True)
    daemon.cli("launch", "debian-rv", "rv", "-c", "limits.memory=256MiB", check=True)

    # the riscv64 guest has no shell for exec: one program (toolbox) per call
    r = vessel(daemon, "exec", "rv", "--cwd", "/tmp", "--user", "1000:1001", "--env",
               "GREETING=hi there", "--", "pwd")
    assert (r.returncode, r.stdout) == (0, "/tmp\n"), r.stderr
    r = vessel(daemon, "exec", "rv", "--user", "1000:1001", "--", "id")
    assert r.stdout == "uid=1000 gid=1001\n"
    r = vessel(daemon, "exec", "rv", "--env", "GREETING=hi there", "--env", "HOME=/elsewhere",
               "--", "env")
    env = r.stdout.splitlines()
    assert "GREETING=hi there" in env and "HOME=/elsewhere" in env and "HOME=/root" not in env
    assert any(line.startswith("PATH=") for line in env)
    r = vessel(daemon, "exec", "rv", "--user=7", "--", "id")
    assert r.stdout == "uid=7 gid=0\n"
    r = vessel(daemon, "exec", "rv", "--", "pwd")
    assert r.stdout == "/\n"
    r = vessel(daemon, "exec", "rv", "--cwd", "/no/such/dir", "--", "echo", "ran")
    assert r.returncode == 126 and "ran" not in r.stdout and "/no/such/dir" in r.stderr
    code, body = daemon.curl("POST", "/1.0/instances/rv/exec",
                             {"command": ["pwd"], "cwd": "/proc", "user": 5, "group": 6,
                              "environment": {"A": "b"}, "record_output": True})
    assert code == 200 and body["exit_code"] == 0 and body["stdout"] == "/proc\n"
    code, body = daemon.curl("POST", "/1.0/instances/rv/exec",
                             {"command": ["true"], "record_output": True, "cwd": "tmp"})
    assert code == 400
