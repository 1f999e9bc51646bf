"""The managed network: a bridge with NAT and dnsmasq, made by a vesseld
that runs in a network namespace this test creates (so nothing is added
to the host's own network), and containers on it that reach each other."""
import contextlib
import json
import os
import signal
import subprocess
import uuid

import pytest


@pytest.fixture
def netns():
    name = f"vtest-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "del", name], capture_output=True)


@contextlib.contextmanager
def daemon_in(daemon, netns, network):
    """The test's daemon restarted inside netns with a managed network; at
    the end its instances, its dnsmasq and it go, and it comes back plain."""
    daemon.kill(signal.SIGTERM)
    daemon.netns, daemon.network = netns, network
    daemon.start()
    try:
        yield
    finally:
        for n in list(daemon.list()):
            daemon.cli("delete", "--force", n)
        daemon.kill(signal.SIGTERM)
        pidfile = daemon.state / "network/dnsmasq.pid"
        if pidfile.exists():
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ProcessLookupError, ValueError):
                pass
        daemon.netns, daemon.network = None, "none"
        daemon.start()


def test_containers_on_the_managed_bridge_reach_each_other(daemon, busybox, netns):
    with daemon_in(daemon, netns, "vbr0:10.99.7.1/24"):
        # the bridge, its gateway address, NAT and dnsmasq, inside the namespace only
        link = subprocess.run(["ip", "-n", netns, "-j", "addr", "show", "vbr0"],
                              capture_output=True, text=True, check=True).stdout
        addrs = [a["local"] for i in json.loads(link) for a in i["addr_info"]]
        assert "10.99.7.1" in addrs
        assert not os.path.exists("/sys/class/net/vbr0")  # not on the host
        nat = subprocess.run(["ip", "netns", "exec", netns, "iptables", "-t", "nat", "-S",
                              "POSTROUTING"], capture_output=True, text=True).stdout
        assert "10.99.7.0/24" in nat and "MASQUERADE" in nat
        pid = int((daemon.state / "network/dnsmasq.pid").read_text())
        assert os.path.exists(f"/proc/{pid}")

        daemon.cli("launch", busybox, "srv", "-c",
                   "command=sh -c 'while true; do echo hello-from-srv | nc -l -p 7777; done'",
                   check=True)
        daemon.cli("launch", busybox, "cli", "-c", "command=sleep 1000", check=True)
        insts = daemon.list()
        ips = {n: insts[n]["config"]["volatile.ipv4"] for n in ("srv", "cli")}
        assert all(ip.startswith("10.99.7.") for ip in ips.values())
        assert ips["srv"] != ips["cli"]
        table = daemon.cli("list", check=True).stdout
        assert "IPV4" in table.splitlines()[0] and ips["srv"] in table
        # one container reaches the other by its address, and the gateway
        out = daemon.cli("exec", "cli", "--", "sh", "-c",
                         f"ip -4 addr show eth0; nc {ips['srv']} 7777 </dev/null; "
                         "ping -c1 -W2 10.99.7.1 >/dev/null 2>&1; echo ping=$?",
                         timeout=30, check=True).stdout
        assert f"inet {ips['cli']}/24" in out and "hello-from-srv" in out
        # addresses survive a restart of the instance and are freed on delete
        daemon.cli("restart", "srv", "--force", check=True)
        assert daemon.list()["srv"]["config"]["volatile.ipv4"] == ips["srv"]
        daemon.cli("delete", "--force", "srv", check=True)
        daemon.cli("launch", busybox, "srv2", "-c", "command=sleep 1000", check=True)
        assert daemon.list()["srv2"]["config"]["volatile.ipv4"] == ips["srv"]


def test_a_bad_network_spec_is_refused(daemon):
    daemon.kill(signal.SIGTERM)
    daemon.network = "vbr0:10.99.7.1"
    with pytest.raises(AssertionError, match="prefix"):
        daemon.start()
    daemon.network = "none"
    daemon.start()


def test_a_riscv64_vm_and_a_container_on_one_bridge(daemon, busybox, netns, rv_guest_files):
    """A VM gets a tap on the bridge and its address through vessel.ip=; it
    and a container answer on their addresses inside the namespace."""
    kernel, initrd = rv_guest_files
    with daemon_in(daemon, netns, "vbr1:10.99.8.1/24"):
        daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
                   initrd, "--alias", "rv", check=True)
        daemon.cli("launch", "rv", "vm1", check=True)
        daemon.cli("launch", busybox, "ct1", "-c", "command=sleep 1000", check=True)
        insts = daemon.list()
        vm_ip = insts["vm1"]["config"]["volatile.ipv4"]
        ct_ip = insts["ct1"]["config"]["volatile.ipv4"]
        # the VM's side, seen from inside it through the agent
        out = daemon.cli("exec", "vm1", "--", "cat", "/proc/net/route", timeout=120,
                         check=True).stdout
        assert "eth0" in out
        for ip in (vm_ip, ct_ip):
            p = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "5", ip],
                               capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (ip, p.stdout, p.stderr)
        table = daemon.cli("list", check=True).stdout
        assert vm_ip in table and ct_ip in table


def test_copies_and_template_clones_of_a_riscv64_vm_on_the_bridge(daemon, netns, rv_guest_files):
    """A copy of a running VM and a VM launched from a VM template resume
    from their source's state, which names the source's tap: each gets a tap
    and MAC of its own (vm restore --net) and, through the guest agent, its
    own address and hostname; all answer ping on their own addresses while
    the source runs on."""
    kernel, initrd = rv_guest_files
    with daemon_in(daemon, netns, "vbr2:10.99.9.1/24"):
        daemon.cli("image", "import", "--vm", "--arch", "riscv64", "--kernel", kernel, "--initrd",
                   initrd, "--alias", "rv", check=True)
        daemon.cli("launch", "rv", "src", "-c", "limits.memory=256MiB", check=True)
        # the guest agent is up (the copy resumes with it running)
        daemon.cli("exec", "src", "--", "true", timeout=120, check=True)
        daemon.cli("copy", "src", "cp1", check=True, timeout=120)
        daemon.cli("start", "cp1", check=True, timeout=120)
        daemon.cli("publish", "src", "--alias", "rv-tpl", check=True, timeout=120)
        daemon.cli("launch", "rv-tpl", "tp1", check=True, timeout=120)
        daemon.cli("launch", "rv-tpl", "tp2", check=True, timeout=120)
        insts = daemon.list()
        names = ("src", "cp1", "tp1", "tp2")
        assert all(insts[n]["state"] == "running" for n in names)
        ips = {n: insts[n]["config"]["volatile.ipv4"] for n in names}
        macs = {n: insts[n]["config"]["volatile.hwaddr"] for n in names}
        assert len(set(ips.values())) == 4 and len(set(macs.values())) == 4
        # each on a tap of its own on the bridge
        taps = subprocess.run(["ip", "-n", netns, "-j", "link", "show", "master", "vbr2"],
                              capture_output=True, text=True, check=True).stdout
        assert len([i for i in json.loads(taps) if i["ifname"].startswith("vt")]) == 4
        for n in names:
            p = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "2", "-W", "5",
                                ips[n]], capture_output=True, text=True, timeout=60)
            assert p.returncode == 0, (n, ips[n], p.stdout, p.stderr)
            # the answer came from this instance's MAC, not its source's
            neigh = subprocess.run(["ip", "-n", netns, "-j", "neigh", "show", ips[n]],
                                   capture_output=True, text=True, check=True).stdout
            assert [e.get("lladdr") for e in json.loads(neigh)] == [macs[n]], (n, neigh)
            # inside: its own MAC, and a clone its own hostname (the riscv64
            # guest's init sets none: the source has the kernel's)
            out = daemon.cli("exec", n, "--", "cat", "/sys/class/net/eth0/address",
                             check=True, timeout=60).stdout
            assert out.strip() == macs[n]
            if n != "src":
                assert daemon.cli("exec", n, "--", "hostname", check=True).stdout.strip() == n
        # the source ran on throughout, and a copy stopped and started boots afresh on its
        # own address (vessel.ip=)
        assert daemon.list()["src"]["state"] == "running"
        daemon.cli("stop", "--force", "tp1", check=True)
        daemon.cli("start", "tp1", check=True, timeout=120)
        daemon.cli("exec", "tp1", "--", "true", timeout=120, check=True)
        p = subprocess.run(["ip", "netns", "exec", netns, "ping", "-c", "1", "-W", "5",
                            ips["tp1"]], capture_output=True, text=True, timeout=60)
        assert p.returncode == 0, (p.stdout, p.stderr)
