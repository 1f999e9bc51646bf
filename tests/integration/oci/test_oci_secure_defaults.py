"""vessel-runc create|run --secure-defaults (src/oci/secure_defaults.c): a
config that asks for no hardening gets a default seccomp profile (what
Docker's and podman's withhold: namespaces, mount, keyrings, bpf, ptrace,
...), no_new_privs, capabilities cut down to Docker's default set and
runc's masked and read-only paths; exec into such a container gets the
same; without the flag the config is taken as it is."""

CAPS = ["CAP_CHOWN", "CAP_KILL", "CAP_SYS_ADMIN", "CAP_NET_ADMIN", "CAP_SYS_PTRACE"]
PROBE = ("grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; "
         "unshare -U true && echo unshared; "
         "mount -t tmpfs none /tmp && echo mounted; "
         "head -c 5 /proc/timer_list | grep -q Timer && echo timers; "
         "echo boxed > /proc/sys/kernel/hostname && echo procsys; true")


def bare(bundle):
    """A config with every capability above, no_new_privs off, no seccomp,
    no masked or read-only paths."""
    caps = bundle.config["process"]["capabilities"]
    for s in ("bounding", "effective", "permitted"):
        caps[s] = list(CAPS)
    caps.pop("ambient", None)
    bundle.config["process"]["noNewPrivileges"] = False
    lx = bundle.config["linux"]
    for k in ("seccomp", "maskedPaths", "readonlyPaths"):
        lx.pop(k, None)
    bundle.config["root"]["readonly"] = False
    return bundle


def status(out):
    return dict(l.split(":\t") for l in out.splitlines() if ":\t" in l)


def bit(*caps):
    nums = {"CAP_CHOWN": 0, "CAP_KILL": 5, "CAP_NET_ADMIN": 12, "CAP_SYS_PTRACE": 19,
            "CAP_SYS_ADMIN": 21}
    return sum(1 << nums[c] for c in caps)


def test_without_the_flag_the_config_is_taken_as_it_is(bundle):
    bare(bundle).sh(PROBE)
    p = bundle.run()
    st = status(p.stdout)
    assert int(st["CapEff"], 16) == bit(*CAPS), p.stdout + p.stderr
    assert st["NoNewPrivs"].strip() == "0" and st["Seccomp"].strip() == "0"
    for done in ("unshared", "mounted", "timers", "procsys"):
        assert done in p.stdout, (done, p.stdout, p.stderr)


def test_secure_defaults_harden_a_bare_config(bundle):
    bare(bundle).sh(PROBE)
    bundle.write()
    p = bundle.cmd("run", "--secure-defaults", "--bundle", bundle.path, bundle.id)
    st = status(p.stdout)
    # only Docker's default capabilities survive; no_new_privs; a filter
    assert int(st["CapEff"], 16) == bit("CAP_CHOWN", "CAP_KILL"), p.stdout + p.stderr
    assert st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2"
    # a user namespace (no capability needed) is refused by the profile;
    # mount by both; /proc/timer_list masked, /proc/sys read-only
    for done in ("unshared", "mounted", "timers", "procsys"):
        assert done not in p.stdout, (done, p.stdout, p.stderr)
    assert "unshare: unshare(0x10000000): Operation not permitted" in p.stderr, p.stderr


def test_secure_defaults_keep_the_configs_own_seccomp_and_reach_exec(bundle):
    bare(bundle)
    bundle.config["linux"]["seccomp"] = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO",
                      "errnoRet": 1}]}
    bundle.args("sleep", "30")
    bundle.write()
    bundle.cmd("create", "--secure-defaults", "--bundle", bundle.path, bundle.id, check=True)
    bundle.start()
    p = bundle.cmd("exec", bundle.id, "sh", "-c", "grep -E '^(NoNewPrivs|Seccomp):' "
                   "/proc/self/status; mkdir /tmp/d && echo made; unshare -U true && echo us")
    st = status(p.stdout)
    assert st["NoNewPrivs"].strip() == "1" and st["Seccomp"].strip() == "2", p.stdout + p.stderr
    # the config's own profile, not the default one: mkdir refused, unshare not
    assert "made" not in p.stdout and "us" in p.stdout.split()
