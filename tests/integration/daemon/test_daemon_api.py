"""vesseld's REST API as a script sees it with curl: the OpenAPI document
and the server agree, errors are JSON with the right status, and the socket
admits only root and the vessel group."""
import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]


def documented_routes():
    doc = yaml.safe_load((ROOT / "docs/daemon-api.yaml").read_text())
    out = set()
    for path, item in doc["paths"].items():
        for method in item:
            if method in ("get", "put", "post", "delete", "patch"):
                out.add((method.upper(), re.sub(r"\{[^}]+\}", "{}", path)))
    return out


def test_openapi_document_matches_the_routes_served(daemon):
    status, info = daemon.curl("GET", "/1.0")
    assert status == 200 and info["api_version"] == "1.0" and info["schema_version"] >= 1
    served = {(r["method"], re.sub(r"\{[^}]+\}", "{}", r["path"])) for r in info["routes"]}
    documented = documented_routes()
    assert served - documented == set(), "served but not documented"
    assert documented - served == set(), "documented but not served"
    # and each one really is routed (a wrong method or path is 405/404 with JSON)
    for method, path in sorted(served):
        if path == "/1.0/events":
            continue  # a stream (test_monitor_streams_events_as_they_happen)
        url = path.replace("{}", "nosuch")
        body = {} if method in ("POST", "PUT") else None
        status, reply = daemon.curl(method, url, body)
        assert status not in (405,) and not (status == 404 and "no such route" in
                                             reply["error"]), (method, url, status, reply)


def test_errors_are_json_with_a_fitting_status(daemon, busybox):
    assert daemon.curl("GET", "/1.0/nowhere") == (404, {
        "error": "GET /1.0/nowhere: no such route (see docs/daemon-api.md)", "error_code": 404})
    status, body = daemon.curl("PATCH", "/1.0/instances")
    assert status == 405 and "method not allowed" in body["error"]
    status, body = daemon.curl("POST", "/1.0/instances", "{not json")
    assert status == 400 and "JSON object" in body["error"]
    status, body = daemon.curl("POST", "/1.0/instances", "[1,2]")
    assert status == 400
    status, body = daemon.curl("POST", "/1.0/instances", {"name": "a1"})
    assert status == 400 and '"image" is required' in body["error"]
    status, body = daemon.curl("PUT", "/1.0/instances/a1/state", {"action": "start"})
    assert status == 404 and "instance 'a1' not found" in body["error"]
    status, body = daemon.curl("POST", "/1.0/instances", {"name": "a1", "image": busybox,
                                                          "start": False})
    assert status == 201 and body["state"] == "stopped"
    status, body = daemon.curl("PUT", "/1.0/instances/a1/state", {"action": "explode"})
    assert status == 400 and "unknown action 'explode'" in body["error"]
    status, body = daemon.curl("PUT", "/1.0/instances/a1/state", {"action": "stop"})
    assert status == 409 and "stopped already" in body["error"]
    status, body = daemon.curl("POST", "/1.0/instances", {"name": "a1", "image": busybox})
    assert status == 409
    # what can be told at once is refused at once, not as a failed operation
    status, body = daemon.curl("POST", "/1.0/images", {"type": "disk"})
    assert status == 400 and "container" in body["error"]
    status, body = daemon.curl("POST", "/1.0/images", {"type": "container", "source": "/dev/zero"})
    assert status == 400 and "not a regular file" in body["error"]
    status, body = daemon.curl("POST", "/1.0/images", {"type": "container", "source": "/nope"})
    assert status == 404
    status, body = daemon.curl("POST", "/1.0/images", {"type": "container", "alias": busybox,
                                                        "source": "/etc/hostname"})
    assert status == 409 and "exists already" in body["error"]
    big = json.dumps({"name": "x" * (2 << 20)})
    status, body = daemon.curl("POST", "/1.0/instances", big)
    assert status == 413 and "too large" in body["error"]


def test_socket_admits_only_root_and_the_vessel_group(daemon):
    st = os.stat(daemon.sock)
    assert st.st_mode & 0o777 == 0o660
    # a user outside the group is refused by the socket's permissions
    r = subprocess.run(["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                        "curl", "-s", "--unix-socket", str(daemon.sock), "http://vessel/1.0"],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "vesseld" not in r.stdout


def test_a_second_daemon_on_the_same_socket_is_refused(daemon, tmp_path):
    from conftest import vesseld_path
    r = subprocess.run([str(vesseld_path()), "--state-dir", str(tmp_path / "other"), "--socket",
                        str(daemon.sock), "--network", "none"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode != 0 and "another vesseld is serving it" in r.stderr
    assert daemon.cli("list").returncode == 0


def test_monitor_streams_events_as_they_happen(daemon, busybox):
    from conftest import vessel_path
    mon = subprocess.Popen([str(vessel_path()), "monitor", "--format", "json", "--type",
                            "instance,snapshot"], stdout=subprocess.PIPE, text=True,
                           env=daemon.env)
    try:
        time.sleep(0.3)
        daemon.cli("launch", busybox, "m1", "-c", "command=sleep 1000", check=True)
        daemon.cli("snapshot", "m1", check=True)
        daemon.cli("delete", "--force", "m1", check=True)
        seen = []
        while len(seen) < 5:
            line = mon.stdout.readline()
            assert line, "the event stream ended"
            seen.append(json.loads(line))
    finally:
        mon.kill()
        mon.wait()
    got = [(e["type"], e["action"], e["target"]) for e in seen
           if e["action"] not in ("paused", "resumed")]
    assert got == [("instance", "created", "m1"), ("instance", "started", "m1"),
                   ("snapshot", "created", "m1/snap0"), ("instance", "stopped", "m1"),
                   ("instance", "deleted", "m1")][:len(got)]
    assert all(e["type"] != "operation" for e in seen)
    assert [e["seq"] for e in seen] == sorted(e["seq"] for e in seen)


def make_cert(d, name):
    key, crt = d / f"{name}.key", d / f"{name}.crt"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key), "-out",
                    str(crt), "-days", "2", "-subj", f"/CN={name}"], check=True,
                   capture_output=True)
    return crt, key


def free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_https_serves_only_enrolled_client_certificates(daemon, tmp_path):
    daemon.kill(signal.SIGTERM)
    port = free_port()
    daemon.start("--https", f"127.0.0.1:{port}")
    good, bad = make_cert(tmp_path, "enrolled"), make_cert(tmp_path, "stranger")
    r = daemon.cli("trust", "add", good[0], check=True)
    fp = r.stdout.split()[1]
    assert daemon.cli("trust", "list", check=True).stdout.split() == [fp]

    def https(cert, path="/1.0/instances"):
        args = ["curl", "-sk", "-o", "-", "-w", "\n%{http_code}", f"https://127.0.0.1:{port}{path}"]
        if cert:
            args += ["--cert", str(cert[0]), "--key", str(cert[1])]
        p = subprocess.run(args, capture_output=True, text=True, timeout=30)
        text, _, code = p.stdout.rpartition("\n")
        return int(code), json.loads(text)

    assert https(good) == (200, [])
    status, body = https(bad)
    assert status == 403 and "not trusted" in body["error"]
    status, body = https(None)
    assert status == 403 and "not trusted" in body["error"]
    status, body = https(good, "/1.0/certificates")
    assert status == 403 and "unix socket only" in body["error"]
    # the server's certificate is made once and kept
    crt = (daemon.state / "server.crt").read_text()
    daemon.cli("trust", "remove", fp, check=True)
    status, _ = https(good)
    assert status == 403
    daemon.kill(signal.SIGTERM)
    daemon.start("--https", f"127.0.0.1:{port}")
    assert (daemon.state / "server.crt").read_text() == crt
    r = daemon.cli("trust", "add", tmp_path / "enrolled.key")
    assert r.returncode != 0 and "PEM certificate" in r.stderr
