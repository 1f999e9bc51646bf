/* Instances: one resource model for the three machine kinds.
 *   type "container": vessel's OCI runtime (called as a library in a
 *     short-lived child of the daemon) on an overlayfs of the image's rootfs;
 *   type "vm", arch x86_64: a KVM microVM, one `vessel vm run` process;
 *   type "vm", arch riscv64: the same command on vessel's emulator.
 * The daemon records what it started (pid and its start time, control
 * socket, OCI state) and asks the host what is running, so the list is
 * right after a daemon restart and instances never depend on the daemon. */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "block/qcow2.h"
#include "daemon/agent_client.h"
#include "daemon/daemon.h"
#include "jail/jail.h"
#include "oci/container.h"
#include "oci/state.h"
#include "util/log.h"
#include "util/parse.h"
#include "util/unix_socket.h"
#include "vm/config.h"

/* The config keys an instance takes; anything else is refused. */
static const struct config_key {
    const char *key;
    bool container, vm;
    bool live_container; /* applied to a running container (else at the next start) */
} config_keys[] = {
    {"limits.cpu", true, true, true},    {"limits.memory", true, true, true},
    {"command", true, false, false},     {"boot.args", false, true, false},
    {"cluster.ha", true, false, true},   /* restarted elsewhere when its host is lost */
    {"console.tty", true, false, false}, /* its process on a terminal `vessel console` attaches to
                                          */
};

static bool key_is_live(const char *key, bool container)
{
    for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
        if (!strcmp(config_keys[i].key, key))
            return container && config_keys[i].live_container;
    return false;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int instance_validate_name(const char *name, vs_err *err)
{
    size_t n = name ? strlen(name) : 0;
    if (n == 0 || n > 63)
        return vs_error(err, EINVAL, "invalid instance name '%s': 1 to 63 characters",
                        name ? name : "");
    if (!isalpha((unsigned char)name[0]) || name[n - 1] == '-')
        return vs_error(err, EINVAL,
                        "invalid instance name '%s': it starts with a letter and does not end "
                        "with '-'",
                        name);
    for (size_t i = 0; i < n; i++)
        if (!isalnum((unsigned char)name[i]) && name[i] != '-')
            return vs_error(err, EINVAL, "invalid instance name '%s': only letters, digits and '-'",
                            name);
    return 0;
}

static const char *str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

static void inst_dir(struct daemon *d, const char *name, const char *file, char *out, size_t n)
{
    snprintf(out, n, "%s/instances/%s%s%s", d->state_dir, name, file ? "/" : "", file ? file : "");
}

static bool is_container(json_t *inst)
{
    return !strcmp(str(inst, "type"), "container");
}

/* Check one config key=value for an instance of this type. */
static int check_config(const char *type, const char *key, json_t *val, vs_err *err)
{
    const struct config_key *k = NULL;
    for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
        if (!strcmp(config_keys[i].key, key))
            k = &config_keys[i];
    bool ct = !strcmp(type, "container");
    if (!k || !(ct ? k->container : k->vm))
        return vs_error(err, EINVAL, "unknown config key '%s' for a %s", key, type);
    const char *v = json_string_value(val);
    if (!v)
        return vs_error(err, EINVAL, "config %s: the value must be a string", key);
    if (!strcmp(key, "limits.cpu")) {
        uint64_t n;
        long host = sysconf(_SC_NPROCESSORS_ONLN);
        uint64_t max = ct ? (uint64_t)(host > 0 ? host : 1) : VM_MAX_CPUS;
        if (vs_parse_u64(v, 1, max, &n, err) < 0)
            return vs_error(err, ERANGE, "config limits.cpu=%s: must be 1..%llu (%s)", v,
                            (unsigned long long)max,
                            ct ? "this host's CPUs" : "vessel's vCPU limit");
    } else if (!strcmp(key, "limits.memory")) {
        uint64_t bytes;
        uint64_t host = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
        if (vs_parse_size(v, 1 << 20, &bytes, err) < 0)
            return vs_error(err, EINVAL, "config limits.memory=%s: not a size (e.g. 256MiB)", v);
        if (bytes < (32u << 20) || bytes > host)
            return vs_error(err, ERANGE,
                            "config limits.memory=%s: must be 32MiB..%lluMiB (this host's RAM)", v,
                            (unsigned long long)(host >> 20));
    } else if ((!strcmp(key, "cluster.ha") || !strcmp(key, "console.tty")) && strcmp(v, "true") &&
               strcmp(v, "false")) {
        return vs_error(err, EINVAL, "config %s=%s: true or false", key, v);
    } else if (!strcmp(key, "command")) {
        json_t *words = json_array();
        int rc = daemon_split_command(v, words, err);
        json_decref(words);
        if (rc < 0)
            return vs_error_prefix(err, "config ");
    }
    return 0;
}

static const char *config_get(json_t *inst, const char *key)
{
    return json_string_value(json_object_get(json_object_get(inst, "config"), key));
}

/* ---- liveness ---- */

static unsigned long long recorded_start(json_t *inst)
{
    json_t *v = json_object_get(json_object_get(inst, "config"), "volatile.pid_start");
    return v ? strtoull(json_string_value(v) ? json_string_value(v) : "0", NULL, 10) : 0;
}

static bool vm_alive(json_t *inst)
{
    json_t *p = json_object_get(inst, "pid");
    pid_t pid = p ? (pid_t)json_integer_value(p) : 0;
    unsigned long long start = recorded_start(inst);
    /* without its start time a pid could be anybody's by now */
    return pid > 0 && start && oci_pid_alive(pid, start);
}

/* What runs on the host now: running, paused, stopped (or error). */
static const char *live_state(struct daemon *d, json_t *inst)
{
    const char *name = str(inst, "name");
    if (is_container(inst)) {
        struct oci_state st;
        vs_err err = {0};
        if (oci_state_load(&st, d->oci_root, name, false, &err) < 0)
            return "stopped";
        enum oci_status s = oci_state_status(&st);
        oci_state_release(&st);
        return s == OCI_RUNNING                        ? "running"
               : s == OCI_PAUSED                       ? "paused"
               : s == OCI_CREATED || s == OCI_CREATING ? "starting"
                                                       : "stopped";
    }
    if (!vm_alive(inst))
        return "stopped";
    char sock[4200];
    inst_dir(d, name, "api.sock", sock, sizeof(sock));
    json_t *resp = NULL;
    vs_err err = {0};
    if (api_client_request(sock, "GET", "/vm", NULL, &resp, &err) < 0)
        return "starting";
    const char *s = str(resp, "state");
    const char *out = s && !strcmp(s, "paused") ? "paused" : "running";
    json_decref(resp);
    return out;
}

/* Bring the record's state in line with the host; returns the record. */
static json_t *refresh(struct daemon *d, json_t *inst)
{
    const char *was = str(inst, "state");
    if (!daemon_instance_local(d, inst)) {
        cluster_annotate(d, inst); /* another host's: as its record says */
        return inst;
    }
    if (!strcmp(was, "creating") || !strcmp(was, "error"))
        return inst;
    const char *now = live_state(d, inst);
    if (strcmp(was, now)) {
        bool stopped = !strcmp(now, "stopped");
        vs_err err = {0};
        json_t *pid = json_object_get(inst, "pid");
        store_instance_set_state(d->store, str(inst, "name"), was, now,
                                 stopped || !pid ? 0 : json_integer_value(pid), &err);
        json_object_set_new(inst, "state", json_string(now));
        if (stopped)
            json_object_set_new(inst, "pid", json_null());
    }
    return inst;
}

static json_t *with_details(struct daemon *d, json_t *inst)
{
    char path[4200];
    inst_dir(d, str(inst, "name"), "console.log", path, sizeof(path));
    json_object_set_new(inst, "console_log", json_string(path));
    /* which config keys a running instance takes now, which at next start */
    json_t *when = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(inst, "config"), k, v)
    {
        if (strncmp(k, "volatile.", 9))
            json_object_set_new(
                when, k, json_string(key_is_live(k, is_container(inst)) ? "live" : "next start"));
    }
    json_object_set_new(inst, "config_applies", when);
    json_t *snaps = store_snapshot_list(d->store, str(inst, "name"), NULL), *sn,
           *names = json_array();
    size_t i;
    json_array_foreach(snaps, i, sn) json_array_append(names, json_object_get(sn, "name"));
    json_decref(snaps);
    json_object_set_new(inst, "snapshots", names);
    return inst;
}

json_t *instance_list(struct daemon *d, vs_err *err)
{
    json_t *list = store_instance_list(d->store, err), *inst;
    bool stale = store_stale(d->store);
    size_t i;
    json_array_foreach(list, i, inst)
    {
        refresh(d, inst);
        if (stale) /* a cluster store without quorum: as last known */
            json_object_set_new(inst, "stale", json_true());
    }
    return list;
}

json_t *instance_info(struct daemon *d, const char *name, vs_err *err)
{
    json_t *inst = store_instance_get(d->store, name, err);
    return inst ? with_details(d, refresh(d, inst)) : NULL;
}

/* ---- containers ---- */

/* Split a command line into words as a shell would for plain words and
 * '...' / "..." quoting and backslash escapes; no expansions. */
int daemon_split_command(const char *cmd, json_t *out, vs_err *err)
{
    size_t n = strlen(cmd);
    char *word = malloc(n + 1);
    if (!word)
        return vs_error(err, ENOMEM, "out of memory");
    size_t len = 0;
    bool in_word = false;
    char quote = 0;
    for (const char *p = cmd;; p++) {
        char c = *p;
        if (!c || (!quote && (c == ' ' || c == '\t'))) {
            if (quote) {
                free(word);
                json_array_clear(out);
                return vs_error(err, EINVAL, "command: unterminated %c quote", quote);
            }
            if (in_word)
                json_array_append_new(out, json_stringn(word, len));
            in_word = false;
            len = 0;
            if (!c)
                break;
            continue;
        }
        in_word = true;
        if (quote && c == quote) {
            quote = 0;
        } else if (!quote && (c == '\'' || c == '"')) {
            quote = c;
        } else if (c == '\\' && quote != '\'' && p[1]) {
            word[len++] = *++p;
        } else {
            word[len++] = c;
        }
    }
    free(word);
    if (json_array_size(out) == 0)
        return vs_error(err, EINVAL, "command: empty");
    return 0;
}

/* The OCI bundle: config.json from the runtime's default spec, the command,
 * hostname and limits set, root on the overlay of the image's rootfs, and
 * the --secure-defaults hardening. */
static int container_write_bundle(struct daemon *d, json_t *inst, json_t *img, vs_err *err)
{
    const char *name = str(inst, "name");
    json_t *spec = oci_spec_default(false, 0, 0);
    if (!spec)
        return vs_error(err, ENOMEM, "out of memory");
    json_t *proc = json_object_get(spec, "process");
    const char *tty = config_get(inst, "console.tty");
    json_object_set_new(proc, "terminal", json_boolean(tty && !strcmp(tty, "true")));
    json_t *args = json_array();
    const char *cmd = config_get(inst, "command");
    if (!cmd)
        cmd = config_get(inst, "volatile.image_command");
    if (daemon_split_command(cmd ? cmd : "/bin/sh", args, err) < 0) {
        json_decref(args);
        json_decref(spec);
        return -1;
    }
    json_object_set_new(proc, "args", args);
    json_object_set_new(spec, "hostname", json_string(name));
    /* cgroups of this daemon's own (v1 hierarchies are host-wide: two
     * daemons' instances of one name must not share, or kill, a cgroup) */
    unsigned h = 2166136261u;
    for (const char *p = d->state_dir; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    char cgpath[128];
    snprintf(cgpath, sizeof(cgpath), "/vesseld-%08x/%s", h, name);
    json_object_set_new(json_object_get(spec, "linux"), "cgroupsPath", json_string(cgpath));
    /* the image's environment and working directory */
    json_t *props = json_object_get(img, "properties");
    json_t *img_env = json_object_get(props, "env");
    if (json_is_array(img_env) && json_array_size(img_env))
        json_object_set(proc, "env", img_env);
    const char *cwd = str(props, "workdir");
    if (cwd && cwd[0] == '/')
        json_object_set_new(proc, "cwd", json_string(cwd));
    json_object_set_new(json_object_get(spec, "root"), "readonly", json_false());
    json_t *res = json_object_get(json_object_get(spec, "linux"), "resources");
    const char *mem = config_get(inst, "limits.memory");
    uint64_t bytes;
    if (mem && vs_parse_size(mem, 1 << 20, &bytes, NULL) == 0)
        json_object_set_new(res, "memory", json_pack("{s:I}", "limit", (json_int_t)bytes));
    const char *cpu = config_get(inst, "limits.cpu");
    if (cpu)
        json_object_set_new(res, "cpu",
                            json_pack("{s:I, s:I}", "quota", (json_int_t)atoi(cpu) * 100000,
                                      "period", (json_int_t)100000));
    /* vessel-runc --secure-defaults' hardening (docs/security.md): here
     * the default seccomp profile, the rest the default spec has already */
    if (oci_spec_secure_defaults(spec, err) < 0) {
        json_decref(spec);
        return vs_error_prefix(err, "instance %s: ", name);
    }
    char path[4200];
    inst_dir(d, name, "config.json", path, sizeof(path));
    int rc = json_dump_file(spec, path, JSON_INDENT(2));
    json_decref(spec);
    return rc < 0 ? vs_error(err, EIO, "%s: cannot write the container's config", path) : 0;
}

static int container_mount(struct daemon *d, json_t *inst, json_t *img, vs_err *err)
{
    const char *name = str(inst, "name");
    char root[4200], upper[4200], work[4200], opts[13000];
    inst_dir(d, name, "rootfs", root, sizeof(root));
    inst_dir(d, name, "upper", upper, sizeof(upper));
    inst_dir(d, name, "work", work, sizeof(work));
    snprintf(opts, sizeof(opts), "lowerdir=%s/rootfs,upperdir=%s,workdir=%s", str(img, "path"),
             upper, work);
    umount2(root, MNT_DETACH); /* a mount left from before is replaced */
    if (mount("overlay", root, "overlay", 0, opts) < 0)
        return vs_error_errno(err, "instance %s: overlay mount", name);
    return 0;
}

static int container_start(struct daemon *d, json_t *inst, json_t *img, vs_err *err)
{
    const char *name = str(inst, "name");
    vs_err ignored = {0};
    oci_delete(d->oci_root, name, true, &ignored); /* the previous run's state */
    if (container_mount(d, inst, img, err) < 0 || container_write_bundle(d, inst, img, err) < 0)
        return -1;
    char bundle[4200], log[4200];
    inst_dir(d, name, NULL, bundle, sizeof(bundle));
    inst_dir(d, name, "console.log", log, sizeof(log));
    /* The runtime runs in a child: it changes process-wide things (signal
     * masks, cwd, rlimits) the daemon must not inherit, and its container
     * init then belongs to no daemon thread. Its error comes back on a pipe. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return vs_error_errno(err, "pipe");
    pid_t child = fork();
    if (child < 0) {
        close(p[0]);
        close(p[1]);
        return vs_error_errno(err, "fork");
    }
    if (child == 0) {
        close(p[0]);
        setsid();
        /* the container starts from a clean process: default signals, no
         * daemon fds but its stdio and the error pipe (fd 3) */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        signal(SIGPIPE, SIG_DFL);
        int null = open("/dev/null", O_RDONLY);
        int out = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (null >= 0)
            dup2(null, 0);
        if (out >= 0) {
            dup2(out, 1);
            dup2(out, 2);
        }
        if (dup2(p[1], 3) == 3) {
            p[1] = 3;
            close_range(4, ~0U, 0);
        }
        vs_err e = {0};
        struct oci_create_opts o = {.root = d->oci_root, .id = name, .bundle = bundle};
        /* with a terminal: a keeper process holds its master (console.c) */
        const char *tty = config_get(inst, "console.tty");
        char ocisock[4200], csock[4200];
        inst_dir(d, name, "oci-console.sock", ocisock, sizeof(ocisock));
        inst_dir(d, name, "console.sock", csock, sizeof(csock));
        unlink(csock);
        int rc = 0;
        if (tty && !strcmp(tty, "true")) {
            int l = vs_unix_listen(ocisock, 1, &e);
            rc = l < 0 ? -1 : console_keeper_start(l, log, csock, &e);
            if (l >= 0)
                close(l);
            o.console_socket = ocisock;
        }
        if (rc == 0)
            rc = oci_create(&o, &e);
        unlink(ocisock);
        /* the init waits in its namespaces: give it its network first */
        struct oci_state created;
        if (rc == 0 && d->net.enabled &&
            (rc = oci_state_load(&created, d->oci_root, name, false, &e)) == 0) {
            rc = network_container_attach(d, inst, created.pid, &e);
            oci_state_release(&created);
        }
        if (rc == 0)
            rc = oci_start(d->oci_root, name, &e);
        if (rc < 0 && write(p[1], e.msg, strlen(e.msg)) < 0)
            _exit(2);
        _exit(rc < 0 ? 1 : 0);
    }
    close(p[1]);
    char msg[sizeof(err->msg)] = "";
    ssize_t n = read(p[0], msg, sizeof(msg) - 1);
    close(p[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        return vs_error(err, EIO, "instance %s: %s", name,
                        n > 0 ? msg : "the container runtime failed");
    struct oci_state st;
    if (oci_state_load(&st, d->oci_root, name, false, err) == 0) {
        json_object_set_new(inst, "pid", json_integer(st.pid));
        oci_state_release(&st);
    }
    return 0;
}

static bool container_wait_gone(struct daemon *d, const char *name, int timeout_ms)
{
    for (int t = 0;; t += 20) {
        struct oci_state st;
        vs_err err = {0};
        if (oci_state_load(&st, d->oci_root, name, false, &err) < 0)
            return true;
        bool alive = oci_pid_alive(st.pid, st.start_time);
        oci_state_release(&st);
        if (!alive)
            return true;
        if (t >= timeout_ms)
            return false;
        sleep_ms(20);
    }
}

static int container_stop(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err)
{
    const char *name = str(inst, "name");
    vs_err e = {0};
    if (!force) {
        oci_pause(d->oci_root, name, false, &e); /* a paused one cannot handle SIGTERM */
        if (oci_kill(d->oci_root, name, SIGTERM, false, &e) == 0 &&
            container_wait_gone(d, name, timeout * 1000))
            goto gone;
    }
    oci_kill(d->oci_root, name, SIGKILL, true, &e);
    if (!container_wait_gone(d, name, 10000))
        return vs_error(err, EIO, "instance %s: the container did not die", name);
gone:
    oci_delete(d->oci_root, name, true, &e);
    char root[4200];
    inst_dir(d, name, "rootfs", root, sizeof(root));
    umount2(root, MNT_DETACH);
    return 0;
}

/* ---- VMs ---- */

static int vm_spawn(struct daemon *d, json_t *inst, const char *const *argv, const char *sock,
                    const char *vmmlog, vs_err *err);
static int vm_spawn_process(json_t *inst, const char *const *argv, const char *vmmlog, vs_err *err);

void instance_note_disk(json_t *inst, json_t *vm_info)
{
    json_t *disk = json_array_get(json_object_get(json_object_get(vm_info, "config"), "disks"), 0);
    const char *path = json_string_value(json_object_get(disk, "path"));
    if (path)
        json_object_set_new(json_object_get(inst, "config"), "volatile.disk_path",
                            json_string(path));
}

static int vm_stop(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err);

/* A clone on the managed network resumes with its source's MAC, address and
 * hostname inside the guest: the guest agent gives it its own
 * (vessel-agent --set-identity), before anything else talks to it. */
static int vm_clone_identity(struct daemon *d, json_t *inst, vs_err *err)
{
    const char *name = str(inst, "name");
    char uds[4200], ip[64], gw[32], log[4200];
    if (instance_vsock_uds(d, name, uds, sizeof(uds)) < 0)
        return vs_error(err, ENAMETOOLONG, "instance %s: the vsock socket path is too long", name);
    network_gateway(d, gw, sizeof(gw));
    snprintf(ip, sizeof(ip), "%s/%d,%s", config_get(inst, "volatile.ipv4"), d->net.prefix, gw);
    char *argv[] = {"/sbin/vessel-agent",
                    "--set-identity",
                    "--mac",
                    (char *)config_get(inst, "volatile.hwaddr"),
                    "--ip",
                    ip,
                    "--hostname",
                    (char *)name,
                    NULL};
    /* what it says goes to the VMM's log */
    inst_dir(d, name, "vmm.log", log, sizeof(log));
    int null = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int out = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
    int status = null < 0 || out < 0 ? vs_error_errno(err, "%s", log)
                                     : agent_client_run(uds, argv, false, null, out, out, err);
    if (null >= 0)
        close(null);
    if (out >= 0)
        close(out);
    if (status < 0)
        return vs_error_prefix(err, "instance %s: giving the clone its own address: ", name);
    if (status != 0)
        return vs_error(err, EIO,
                        "instance %s: giving the clone its own address failed (status %d; its "
                        "vmm.log says why)",
                        name, status);
    return 0;
}

/* Every VM the daemon starts is confined (docs/security.md): landlocked to
 * its own files, the instance directory being the one place it may create
 * any (snapshots, a frozen disk's next overlay, its sockets), and, unless
 * the daemon runs with --vm-jail=off, in a jail of its own (namespaces, a
 * root holding only its files, uid and gid nobody once set up). The
 * instance directory then belongs to nobody, for those files; its parent
 * (root's, 0700 or not) is what keeps other users out. */
static int vm_isolation_args(struct daemon *d, json_t *inst, const char **argv, int n, char *jail,
                             size_t jn, vs_err *err)
{
    const char *name = str(inst, "name");
    argv[n++] = "--landlock=on";
    if (d->cfg.no_vm_jail)
        return n;
    char dir[4200];
    inst_dir(d, name, NULL, dir, sizeof(dir));
    inst_dir(d, name, "jail", jail, jn);
    if (chown(dir, JAIL_DEFAULT_ID, JAIL_DEFAULT_ID) < 0)
        return vs_error_errno(err, "instance %s: %s", name, dir);
    argv[n++] = "--jail";
    argv[n++] = jail;
    /* in a cluster a VM may move live to another host: its migration stream
     * leaves from its own process, through the host's network */
    if (d->cluster) {
        argv[n++] = "--jail-net";
        argv[n++] = "host";
    }
    return n;
}

static int vm_start(struct daemon *d, json_t *inst, json_t *img, vs_err *err)
{
    const char *name = str(inst, "name");
    char sock[4200], log[4200], vmmlog[4200], kernel[4200], initrd[4200], console[8600];
    char overlay[4200], jail[4200];
    inst_dir(d, name, NULL, overlay, sizeof(overlay));
    inst_dir(d, name, "api.sock", sock, sizeof(sock));
    inst_dir(d, name, "console.log", log, sizeof(log));
    inst_dir(d, name, "vmm.log", vmmlog, sizeof(vmmlog));
    json_t *props = json_object_get(img, "properties");
    snprintf(kernel, sizeof(kernel), "%s/%s", str(img, "path"), str(props, "kernel"));
    snprintf(initrd, sizeof(initrd), "%s/%s", str(img, "path"),
             str(props, "initrd") ? str(props, "initrd") : "");
    /* the serial console: its log, and a socket `vessel console` attaches to
     * (where the path fits a unix socket address) */
    char csock[4200];
    inst_dir(d, name, "console.sock", csock, sizeof(csock));
    if (strlen(csock) < sizeof(((struct sockaddr_un *)0)->sun_path))
        snprintf(console, sizeof(console), "file:%s,socket:%s", log, csock);
    else
        snprintf(console, sizeof(console), "file:%s", log);
    /* virtio-vsock for the guest agent (exec); a CID of its own, and no
     * vsock where the socket path would be too long */
    char vsock[4200], cid[16] = "";
    uint32_t vcid;
    vs_err verr = {0};
    if (instance_vsock(d, inst, vsock, sizeof(vsock), &vcid, &verr) == 0)
        snprintf(cid, sizeof(cid), "%u", vcid);
    const char *argv[40];
    int n = 0;
    argv[n++] = d->vessel_bin;
    argv[n++] = "vm";
    /* a stateful snapshot to continue from (restore, copy) or a fresh boot */
    const char *from = config_get(inst, "volatile.restore_from");
    if (from) {
        /* the instance's own snapshot names its own tap: make it again. A
         * clone's names its source's: it gets a tap and MAC of its own
         * (--net), and its own address inside the guest once it runs */
        const char *clone = config_get(inst, "volatile.clone_index");
        char rtap[16] = "", netov[96] = "";
        if (!clone && network_vm_tap(d, inst, rtap, err) < 0)
            return -1;
        if (clone && d->net.enabled && instance_snapshot_has_net(from)) {
            if (!cid[0] || !instance_snapshot_has_vsock(from))
                return vs_error(err, EINVAL,
                                "instance %s: a clone on the managed network needs the guest "
                                "agent (vsock) to take its own address",
                                name);
            if (network_vm_tap(d, inst, rtap, err) < 0)
                return -1;
            snprintf(netov, sizeof(netov), "0,tap=%s,mac=%s", rtap,
                     config_get(inst, "volatile.hwaddr"));
        }
        argv[n++] = "restore";
        argv[n++] = from;
        argv[n++] = "--arch";
        argv[n++] = str(inst, "arch");
        argv[n++] = "--console";
        argv[n++] = console;
        argv[n++] = "--api-sock";
        argv[n++] = sock;
        if (config_get(inst, "volatile.clone_index")) {
            argv[n++] = "--clone-index";
            argv[n++] = config_get(inst, "volatile.clone_index");
            if (cid[0] && instance_snapshot_has_vsock(from)) {
                argv[n++] = "--vsock";
                argv[n++] = cid;
            }
            if (netov[0]) {
                argv[n++] = "--net";
                argv[n++] = netov;
            }
        }
        /* the restored disks' fresh overlays stay with the instance */
        argv[n++] = "--overlay-dir";
        argv[n++] = overlay;
        if ((n = vm_isolation_args(d, inst, argv, n, jail, sizeof(jail), err)) < 0)
            return -1;
        argv[n] = NULL;
        if (vm_spawn(d, inst, argv, sock, vmmlog, err) < 0)
            return -1;
        if (netov[0] && vm_clone_identity(d, inst, err) < 0) {
            vs_err e = {0};
            vm_stop(d, inst, true, 0, &e);
            return -1;
        }
        return 0;
    }
    argv[n++] = "run";
    argv[n++] = "--arch";
    argv[n++] = str(inst, "arch");
    argv[n++] = "--kernel";
    argv[n++] = kernel;
    if (str(props, "initrd")) {
        argv[n++] = "--initrd";
        argv[n++] = initrd;
    }
    argv[n++] = "--console";
    argv[n++] = console;
    argv[n++] = "--api-sock";
    argv[n++] = sock;
    if (config_get(inst, "limits.cpu")) {
        argv[n++] = "--cpus";
        argv[n++] = config_get(inst, "limits.cpu");
    }
    /* riscv64 harts are hot-pluggable: as many present as the host has CPUs
     * (or limits.cpu, if more), so limits.cpu can change live */
    char maxc[24];
    if (!strcmp(str(inst, "arch"), "riscv64")) {
        long host = sysconf(_SC_NPROCESSORS_ONLN);
        long want = config_get(inst, "limits.cpu") ? atol(config_get(inst, "limits.cpu")) : 1;
        long m = host > want ? host : want;
        snprintf(maxc, sizeof(maxc), "%ld", m > VM_MAX_CPUS ? VM_MAX_CPUS : m);
        argv[n++] = "--max-cpus";
        argv[n++] = maxc;
    }
    if (config_get(inst, "limits.memory")) {
        argv[n++] = "--memory";
        argv[n++] = config_get(inst, "limits.memory");
    }
    /* a root disk: the instance's own qcow2 overlay on the image's base */
    char disk[4400];
    if (str(props, "disk")) {
        char base[4300], overlay[4300], images[4300];
        snprintf(base, sizeof(base), "%s/%s", str(img, "path"), str(props, "disk"));
        /* named relative to the overlay (../../images/FP/DISK) where it is
         * the daemon's own image: the overlay then works in any state
         * directory, so the VM moves to another host with its disk */
        snprintf(images, sizeof(images), "%s/images/", d->state_dir);
        if (!strncmp(base, images, strlen(images)))
            snprintf(base, sizeof(base), "../../images/%s/%s", str(img, "path") + strlen(images),
                     str(props, "disk"));
        inst_dir(d, name, "disk.qcow2", overlay, sizeof(overlay));
        /* the overlay the VM last wrote to (a disk snapshot moves it on) */
        const char *last = config_get(inst, "volatile.disk_path");
        if (last && access(last, F_OK) == 0)
            snprintf(overlay, sizeof(overlay), "%s", last);
        else if (access(overlay, F_OK) < 0 &&
                 qcow2_create(overlay, 0, base, str(props, "disk_format"), err) < 0)
            return vs_error_prefix(err, "instance %s: ", name);
        snprintf(disk, sizeof(disk), "%s,format=qcow2", overlay);
        argv[n++] = "--disk";
        argv[n++] = disk;
    }
    /* on the managed network: a tap on the bridge, the instance's MAC, and
     * its address for the guest as vessel.ip=ADDR/PREFIX,GATEWAY */
    char tap[16] = "", net[96], append[4300];
    if (network_vm_tap(d, inst, tap, err) < 0)
        return -1;
    const char *args = config_get(inst, "boot.args");
    if (tap[0]) {
        char gw[32];
        network_gateway(d, gw, sizeof(gw));
        snprintf(net, sizeof(net), "tap=%s,mac=%s", tap, config_get(inst, "volatile.hwaddr"));
        argv[n++] = "--net";
        argv[n++] = net;
        snprintf(append, sizeof(append), "%s%svessel.ip=%s/%d,%s", args ? args : "",
                 args ? " " : "", config_get(inst, "volatile.ipv4"), d->net.prefix, gw);
        args = append;
    }
    if (args) {
        argv[n++] = "--append";
        argv[n++] = args;
    }
    if (cid[0]) {
        argv[n++] = "--vsock";
        argv[n++] = cid;
        argv[n++] = "--vsock-uds";
        argv[n++] = vsock;
    }
    if ((n = vm_isolation_args(d, inst, argv, n, jail, sizeof(jail), err)) < 0)
        return -1;
    argv[n] = NULL;
    return vm_spawn(d, inst, argv, sock, vmmlog, err);
}

/* Start argv as a VM process of its own: its pid and start time go into
 * inst ("pid", volatile.pid_start). */
static int vm_spawn_process(json_t *inst, const char *const *argv, const char *vmmlog, vs_err *err)
{
    const char *name = str(inst, "name");
    /* Double fork: the VM process is nobody's child in the daemon, so it
     * outlives the daemon and the daemon never has to reap it. */
    int p[2];
    if (pipe2(p, O_CLOEXEC) < 0)
        return vs_error_errno(err, "pipe");
    pid_t child = fork();
    if (child < 0) {
        close(p[0]);
        close(p[1]);
        return vs_error_errno(err, "fork");
    }
    if (child == 0) {
        setsid();
        pid_t vm = fork();
        if (vm == 0) {
            int null = open("/dev/null", O_RDWR);
            int out = open(vmmlog, O_WRONLY | O_CREAT | O_TRUNC, 0600);
            if (null >= 0)
                dup2(null, 0);
            if (out >= 0) {
                dup2(out, 1);
                dup2(out, 2);
            }
            sigset_t none;
            sigemptyset(&none);
            sigprocmask(SIG_SETMASK, &none, NULL);
            signal(SIGPIPE, SIG_DFL);
            close_range(3, ~0U, 0); /* no daemon fd reaches the VM */
            execv(argv[0], (char **)argv);
            dprintf(2, "vesseld: cannot run %s: %s\n", argv[0], strerror(errno));
            _exit(127);
        }
        if (write(p[1], &vm, sizeof(vm)) != sizeof(vm))
            _exit(1);
        _exit(vm < 0);
    }
    close(p[1]);
    pid_t vm = -1;
    if (read(p[0], &vm, sizeof(vm)) != sizeof(vm))
        vm = -1;
    close(p[0]);
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    if (vm <= 0)
        return vs_error(err, EIO, "instance %s: cannot start the VM process", name);
    unsigned long long start = 0;
    for (int i = 0; i < 50 && !start; i++) {
        start = oci_proc_start_time(vm);
        if (!start)
            sleep_ms(2);
    }
    char startbuf[32];
    snprintf(startbuf, sizeof(startbuf), "%llu", start);
    json_object_set_new(inst, "pid", json_integer(vm));
    json_object_set_new(json_object_get(inst, "config"), "volatile.pid_start",
                        json_string(startbuf));
    return 0;
}

/* Start argv (a `vessel vm run|restore`) as a VM process of its own and
 * wait until its control API answers. */
static int vm_spawn(struct daemon *d, json_t *inst, const char *const *argv, const char *sock,
                    const char *vmmlog, vs_err *err)
{
    unlink(sock);
    if (vm_spawn_process(inst, argv, vmmlog, err) < 0)
        return -1;
    const char *name = str(inst, "name");
    pid_t vm = (pid_t)json_integer_value(json_object_get(inst, "pid"));
    unsigned long long start = recorded_start(inst);
    /* recorded before waiting: a daemon that dies now finds this VM again
     * instead of starting a second one on the same disk */
    json_object_set_new(inst, "state", json_string("starting"));
    vs_err rec = {0};
    store_instance_update(d->store, inst, &rec);
    /* running once its control API answers; a VMM that fails exits first */
    for (int t = 0; t < 10000; t += 10) {
        json_t *resp = NULL;
        vs_err e = {0};
        if (api_client_request(sock, "GET", "/vm", NULL, &resp, &e) == 0) {
            instance_note_disk(inst, resp);
            json_decref(resp);
            return 0;
        }
        if (!oci_pid_alive(vm, start))
            break;
        sleep_ms(10);
    }
    kill(vm, SIGKILL);
    /* the VMM's own one-line error is the reason */
    char line[400] = "";
    FILE *f = fopen(vmmlog, "r");
    if (f) {
        char buf[400];
        while (fgets(buf, sizeof(buf), f))
            if (buf[0] != '\n')
                snprintf(line, sizeof(line), "%s", buf);
        fclose(f);
    }
    line[strcspn(line, "\n")] = 0;
    return vs_error(err, EIO, "instance %s: the VM did not start: %s", name,
                    line[0] ? line : "no output");
}

static int vm_wait_gone(json_t *inst, int timeout_ms)
{
    for (int t = 0; vm_alive(inst); t += 20) {
        if (t >= timeout_ms)
            return -1;
        sleep_ms(20);
    }
    return 0;
}

static int vm_stop(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err)
{
    char sock[4200];
    inst_dir(d, str(inst, "name"), "api.sock", sock, sizeof(sock));
    if (!force) {
        json_t *resp = NULL;
        vs_err e = {0};
        api_client_request(sock, "PUT", "/vm/resume", NULL, &resp, &e);
        json_decref(resp);
        resp = NULL;
        if (api_client_request(sock, "PUT", "/vm/stop", NULL, &resp, &e) == 0) {
            json_decref(resp);
            if (vm_wait_gone(inst, timeout * 1000) == 0)
                return 0;
        }
    }
    if (vm_alive(inst))
        kill((pid_t)json_integer_value(json_object_get(inst, "pid")), SIGKILL);
    if (vm_wait_gone(inst, 10000) < 0)
        return vs_error(err, EIO, "instance %s: the VM process did not die", str(inst, "name"));
    unlink(sock);
    return 0;
}

/* ---- life cycle ---- */

static int start_locked(struct daemon *d, json_t *inst, vs_err *err)
{
    json_t *img = store_image_get(d->store, str(inst, "image"), err);
    if (!img)
        return vs_error_prefix(err, "instance %s: ", str(inst, "name"));
    /* an address on the managed network, kept for the instance's life */
    int rc = network_assign(d, inst, err);
    if (rc == 0)
        rc = is_container(inst) ? container_start(d, inst, img, err) : vm_start(d, inst, img, err);
    json_decref(img);
    json_object_set_new(inst, "state", json_string(rc == 0 ? "running" : "stopped"));
    if (rc < 0)
        json_object_set_new(inst, "pid", json_null());
    daemon_event(d, "instance", rc == 0 ? "started" : "start-failed", str(inst, "name"),
                 rc == 0 ? json_pack("{s:O}", "pid", json_object_get(inst, "pid"))
                         : json_pack("{s:s}", "error", err->msg));
    vs_err e = {0};
    store_instance_update(d->store, inst, &e);
    return rc;
}

static int stop_locked(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err)
{
    int rc = is_container(inst) ? container_stop(d, inst, force, timeout, err)
                                : vm_stop(d, inst, force, timeout, err);
    if (rc == 0) {
        json_object_set_new(inst, "state", json_string("stopped"));
        json_object_set_new(inst, "pid", json_null());
        /* a VM restored from a stateful snapshot boots afresh after a stop */
        json_object_del(json_object_get(inst, "config"), "volatile.restore_from");
        daemon_event(d, "instance", "stopped", str(inst, "name"),
                     json_pack("{s:b}", "forced", force));
        vs_err e = {0};
        store_instance_update(d->store, inst, &e);
    }
    return rc;
}

static int pause_locked(struct daemon *d, json_t *inst, bool pause, vs_err *err)
{
    const char *name = str(inst, "name");
    if (is_container(inst)) {
        if (oci_pause(d->oci_root, name, pause, err) < 0)
            return -1;
    } else {
        char sock[4200];
        inst_dir(d, name, "api.sock", sock, sizeof(sock));
        json_t *resp = NULL;
        if (api_client_request(sock, "PUT", pause ? "/vm/pause" : "/vm/resume", NULL, &resp, err) <
            0)
            return vs_error_prefix(err, "instance %s: ", name);
        json_decref(resp);
    }
    json_object_set_new(inst, "state", json_string(pause ? "paused" : "running"));
    daemon_event(d, "instance", pause ? "paused" : "resumed", name, NULL);
    return store_instance_update(d->store, inst, err);
}

json_t *instance_create(struct daemon *d, json_t *req, vs_err *err)
{
    const char *name = str(req, "name"), *image = str(req, "image");
    const char *type = str(req, "type"), *arch = str(req, "arch");
    if (instance_validate_name(name, err) < 0)
        return NULL;
    if (!image) {
        vs_error(err, EINVAL, "\"image\" is required");
        return NULL;
    }
    if (type && strcmp(type, "vm") && strcmp(type, "container")) {
        vs_error(err, EINVAL, "\"type\" must be \"vm\" or \"container\", not '%s'", type);
        return NULL;
    }
    json_t *img = store_image_get(d->store, image, err);
    if (!img)
        return NULL;
    if (strcmp(str(img, "state"), "ready")) {
        vs_error(err, EBUSY, "image '%s' is still being imported", image);
        json_decref(img);
        return NULL;
    }
    const char *itype = str(img, "type"), *iarch = str(img, "arch");
    if (type && strcmp(type, itype)) {
        vs_error(err, EINVAL, "image '%s' is a %s image, not a %s image", image, itype, type);
        json_decref(img);
        return NULL;
    }
    if (arch && strcmp(arch, iarch)) {
        vs_error(err, EINVAL, "image '%s' is for %s, not %s", image, iarch, arch);
        json_decref(img);
        return NULL;
    }
    json_t *cfg = json_object_get(req, "config");
    if (cfg && !json_is_object(cfg)) {
        vs_error(err, EINVAL, "\"config\" must be an object of key: value strings");
        json_decref(img);
        return NULL;
    }
    json_t *config = json_object();
    const char *k;
    json_t *v;
    json_object_foreach(cfg, k, v)
    {
        if (check_config(itype, k, v, err) < 0) {
            json_decref(config);
            json_decref(img);
            return NULL;
        }
        json_object_set(config, k, v);
    }
    json_t *cmd = json_object_get(json_object_get(img, "properties"), "command");
    if (json_is_array(cmd) && json_array_size(cmd)) {
        /* the image's default command, kept apart from the user's setting */
        /* quoted so that daemon_split_command gives back the same words */
        size_t cap = 16, n = 0, i;
        json_t *a;
        json_array_foreach(cmd, i, a) cap +=
            4 * strlen(json_string_value(a) ? json_string_value(a) : "") + 3;
        char *buf = malloc(cap);
        json_array_foreach(cmd, i, a)
        {
            const char *w = json_string_value(a);
            if (!buf)
                break;
            if (i)
                buf[n++] = ' ';
            buf[n++] = '\'';
            for (; w && *w; w++) {
                if (*w == '\'') {
                    memcpy(buf + n, "'\\''", 4);
                    n += 4;
                } else {
                    buf[n++] = *w;
                }
            }
            buf[n++] = '\'';
        }
        if (buf)
            buf[n] = 0;
        json_object_set_new(config, "volatile.image_command", json_string(buf ? buf : ""));
        free(buf);
    }
    /* a VM template: the instance starts as a clone of its saved state */
    const char *tstate =
        json_string_value(json_object_get(json_object_get(img, "properties"), "state"));
    if (tstate) {
        char from[4300], idx[16];
        snprintf(from, sizeof(from), "%s/%s", str(img, "path"), tstate);
        snprintf(idx, sizeof(idx), "%d", instance_next_clone_index(d));
        json_object_set_new(config, "volatile.restore_from", json_string(from));
        json_object_set_new(config, "volatile.clone_index", json_string(idx));
    }
    if (!daemon_claim(d, name, err)) {
        json_decref(config);
        json_decref(img);
        return NULL;
    }
    json_t *inst = json_pack("{s:s, s:s, s:s, s:s, s:s, s:n, s:o, s:I, s:s}", "name", name, "type",
                             itype, "arch", iarch, "image", str(img, "fingerprint"), "state",
                             "creating", "pid", "config", config, "created_at",
                             (json_int_t)daemon_now_ms(), "location", daemon_location(d));
    json_decref(img);
    char dir[4200];
    inst_dir(d, name, NULL, dir, sizeof(dir));
    /* the image is checked again and the record made under the lock that
     * image deletion takes, so no instance lands on a deleted image */
    pthread_mutex_lock(&d->alloc_lock);
    json_t *still = store_image_get(d->store, str(inst, "image"), err);
    int rc = still ? store_instance_insert(d->store, inst, err) : -1;
    json_decref(still);
    pthread_mutex_unlock(&d->alloc_lock);
    if (rc == 0) {
        /* from here on, a failure removes everything made so far */
        rc = mkdir(dir, 0700);
        if (rc < 0 && errno == EEXIST) {
            daemon_rm_rf(dir); /* left by a create cut off before its record existed */
            rc = mkdir(dir, 0700);
        }
        if (rc < 0)
            vs_error_errno(err, "%s", dir);
        const char *sub[] = {"rootfs", "upper", "work"};
        for (size_t i = 0; rc == 0 && is_container(inst) && i < 3; i++) {
            char p[4300];
            snprintf(p, sizeof(p), "%s/%s", dir, sub[i]);
            if ((rc = mkdir(p, 0755)) < 0)
                vs_error_errno(err, "%s", p);
        }
        if (rc == 0) {
            json_object_set_new(inst, "state", json_string("stopped"));
            rc = store_instance_update(d->store, inst, err);
        }
        if (rc == 0)
            daemon_event(
                d, "instance", "created", name,
                json_pack("{s:s, s:s}", "type", str(inst, "type"), "arch", str(inst, "arch")));
        json_t *start = json_object_get(req, "start");
        if (rc == 0 && (!start || json_is_true(start)))
            rc = start_locked(d, inst, err);
        if (rc < 0) {
            vs_err e = {0};
            if (is_container(inst)) {
                char root[4300];
                snprintf(root, sizeof(root), "%s/rootfs", dir);
                oci_delete(d->oci_root, name, true, &e);
                umount2(root, MNT_DETACH);
            }
            daemon_rm_rf(dir);
            network_release(d, name);
            store_instance_delete(d->store, name, &e);
        }
    }
    daemon_release(d, name);
    if (rc < 0) {
        json_decref(inst);
        return NULL;
    }
    return with_details(d, inst);
}

int instance_change_state(struct daemon *d, const char *name, const char *action, bool force,
                          int timeout, vs_err *err)
{
    static const char *const actions[] = {"start", "stop", "restart", "pause", "resume"};
    bool known = false;
    for (size_t i = 0; i < sizeof(actions) / sizeof(actions[0]); i++)
        known |= !strcmp(action, actions[i]);
    if (!known)
        return vs_error(err, EINVAL, "unknown action '%s' (start, stop, restart, pause, resume)",
                        action);
    json_t *inst = store_instance_get(d->store, name, err);
    if (!inst)
        return -1;
    if (!daemon_claim(d, name, err)) {
        json_decref(inst);
        return -1;
    }
    refresh(d, inst);
    const char *state = str(inst, "state");
    bool running =
        !strcmp(state, "running") || !strcmp(state, "paused") || !strcmp(state, "starting");
    int rc = 0;
    if (!strcmp(action, "start")) {
        rc = running ? vs_error(err, EEXIST, "instance %s is %s already", name, state)
                     : start_locked(d, inst, err);
    } else if (!strcmp(action, "stop")) {
        rc = running ? stop_locked(d, inst, force, timeout, err)
                     : vs_error(err, EEXIST, "instance %s is stopped already", name);
    } else if (!strcmp(action, "restart")) {
        if (running)
            rc = stop_locked(d, inst, force, timeout, err);
        if (rc == 0)
            rc = start_locked(d, inst, err);
    } else {
        bool pause = !strcmp(action, "pause");
        if (!running)
            rc = vs_error(err, EEXIST, "instance %s is stopped", name);
        else if (pause == !strcmp(state, "paused"))
            rc = vs_error(err, EEXIST, "instance %s is %s already", name, state);
        else
            rc = pause_locked(d, inst, pause, err);
    }
    daemon_release(d, name);
    json_decref(inst);
    return rc;
}

/* Another instance that runs from files in this one's directory (a copy
 * restored from its state, a disk overlay on its frozen disk) keeps it. */
static int dependents_check(struct daemon *d, const char *name, vs_err *err)
{
    char dir[4200];
    inst_dir(d, name, NULL, dir, sizeof(dir));
    size_t n = strlen(dir);
    json_t *list = store_instance_list(d->store, NULL), *other;
    size_t i;
    int rc = 0;
    json_array_foreach(list, i, other)
    {
        if (!strcmp(str(other, "name"), name))
            continue;
        static const char *const keys[] = {"volatile.restore_from", "volatile.disk_path"};
        for (size_t k = 0; k < 2 && rc == 0; k++) {
            const char *v = config_get(other, keys[k]);
            if (v && !strncmp(v, dir, n) && v[n] == '/')
                rc = vs_error(err, EBUSY,
                              "instance %s is used by instance %s (made from its "
                              "state or disk): delete that first",
                              name, str(other, "name"));
        }
    }
    json_decref(list);
    return rc;
}

int instance_delete(struct daemon *d, const char *name, bool force, vs_err *err)
{
    json_t *inst = store_instance_get(d->store, name, err);
    if (!inst)
        return -1;
    if (!daemon_claim(d, name, err)) {
        json_decref(inst);
        return -1;
    }
    refresh(d, inst);
    const char *state = str(inst, "state");
    int rc = dependents_check(d, name, err);
    if (rc == 0 && strcmp(state, "stopped") && strcmp(state, "error") &&
        strcmp(state, "creating")) {
        if (!force)
            rc = vs_error(err, EBUSY, "instance %s is %s: stop it first, or delete --force", name,
                          state);
        else
            rc = stop_locked(d, inst, true, 0, err);
    }
    if (rc == 0) {
        char dir[4200], root[4300];
        inst_dir(d, name, NULL, dir, sizeof(dir));
        if (is_container(inst)) {
            vs_err e = {0};
            oci_delete(d->oci_root, name, true, &e);
            snprintf(root, sizeof(root), "%s/rootfs", dir);
            umount2(root, MNT_DETACH);
        }
        /* the record goes first: a crash after it leaves only a directory,
         * which the next create of that name replaces */
        rc = store_instance_delete(d->store, name, err);
        if (rc == 0) {
            daemon_rm_rf(dir);
            network_release(d, name);
            daemon_event(d, "instance", "deleted", name, NULL);
        }
    }
    daemon_release(d, name);
    json_decref(inst);
    return rc;
}

static bool instance_known(struct daemon *d, const char *name)
{
    vs_err e = {0};
    json_t *inst = store_instance_get(d->store, name, &e);
    json_decref(inst);
    /* a store that cannot answer (etcd unreachable) knows nothing away */
    return inst != NULL || e.code != ENOENT;
}

void instance_reconcile(struct daemon *d)
{
    vs_err err = {0};
    json_t *list = store_instance_list(d->store, &err), *inst;
    size_t i;
    json_array_foreach(list, i, inst)
    {
        const char *name = str(inst, "name");
        if (!daemon_instance_local(d, inst))
            continue; /* another host's */
        if (!strcmp(str(inst, "state"), "creating")) {
            /* a create cut off half-way is rolled back */
            vs_info("instance %s: its creation was cut off; removing it", name);
            char dir[4200], root[4300];
            inst_dir(d, name, NULL, dir, sizeof(dir));
            snprintf(root, sizeof(root), "%s/rootfs", dir);
            vs_err e = {0};
            oci_delete(d->oci_root, name, true, &e);
            umount2(root, MNT_DETACH);
            daemon_rm_rf(dir);
            store_instance_delete(d->store, name, &e);
            continue;
        }
        refresh(d, inst);
    }
    json_decref(list);
    /* directories no record names: a delete cut off after its record went */
    daemon_sweep_dir(d, "instances", instance_known);
}

/* For snapshot.c: the life-cycle steps, with the instance already claimed. */
int instance_start_claimed(struct daemon *d, json_t *inst, vs_err *err)
{
    return start_locked(d, inst, err);
}

int instance_stop_claimed(struct daemon *d, json_t *inst, bool force, int timeout, vs_err *err)
{
    return stop_locked(d, inst, force, timeout, err);
}

const char *instance_refresh_state(struct daemon *d, json_t *inst)
{
    return str(refresh(d, inst), "state");
}

void instance_path(struct daemon *d, const char *name, const char *file, char *out, size_t n)
{
    inst_dir(d, name, file, out, n);
}

int instance_pause_claimed(struct daemon *d, json_t *inst, bool pause, vs_err *err)
{
    return pause_locked(d, inst, pause, err);
}

/* limits.cpu of a running riscv64 VM, live: the harts through its control
 * API, then the guest agent onlines them (as `vessel vm update --cpus`). */
static int vm_apply_cpus(struct daemon *d, json_t *inst, vs_err *err)
{
    const char *name = str(inst, "name");
    char sock[4200], uds[4200];
    inst_dir(d, name, "api.sock", sock, sizeof(sock));
    long n = atol(config_get(inst, "limits.cpu") ? config_get(inst, "limits.cpu") : "1");
    json_t *body = json_pack("{s:i}", "cpus", (int)n), *resp = NULL;
    int rc = api_client_request(sock, "PATCH", "/vm", body, &resp, err);
    json_decref(body);
    json_decref(resp);
    if (rc < 0)
        return -1;
    if (instance_vsock_uds(d, name, uds, sizeof(uds)) < 0)
        return vs_error(err, ENOTSUP, "VM %s has no guest agent to online its CPUs", name);
    int st = agent_set_cpus(uds, (unsigned)n, -1, err);
    if (st < 0)
        return vs_error_prefix(err, "the guest agent: ");
    if (st != 0)
        return vs_error(err, EIO, "the guest's set-cpus %ld exited %d", n, st);
    return 0;
}

/* Apply limits to a running container's cgroups (oci update). */
static int container_apply_limits(struct daemon *d, json_t *inst, vs_err *err)
{
    struct oci_resources r;
    memset(&r, 0, sizeof(r));
    const char *mem = config_get(inst, "limits.memory"), *cpu = config_get(inst, "limits.cpu");
    uint64_t bytes;
    if (mem && vs_parse_size(mem, 1 << 20, &bytes, err) == 0) {
        r.has_mem_limit = true;
        r.mem_limit = (int64_t)bytes;
    }
    if (cpu) {
        r.has_cpu_quota = r.has_cpu_period = true;
        r.cpu_quota = (int64_t)atoi(cpu) * 100000;
        r.cpu_period = 100000;
    }
    if (!r.has_mem_limit && !r.has_cpu_quota)
        return 0;
    return oci_update(d->oci_root, str(inst, "name"), &r, err);
}

json_t *instance_config_set(struct daemon *d, const char *name, json_t *changes, vs_err *err)
{
    if (!json_is_object(changes)) {
        vs_error(err, EINVAL, "the body must be an object of key: value (null unsets)");
        return NULL;
    }
    json_t *inst = store_instance_get(d->store, name, err);
    if (!inst)
        return NULL;
    json_t *out = NULL;
    if (!daemon_claim(d, name, err))
        goto done;
    const char *k;
    json_t *v;
    json_object_foreach(changes, k, v)
    {
        if (!strncmp(k, "volatile.", 9)) {
            vs_error(err, EINVAL, "config %s: volatile keys are the daemon's own", k);
            goto release;
        }
        if (!json_is_null(v) && check_config(str(inst, "type"), k, v, err) < 0)
            goto release;
    }
    json_t *config = json_object_get(inst, "config");
    json_object_foreach(changes, k, v)
    {
        if (json_is_null(v))
            json_object_del(config, k);
        else
            json_object_set(config, k, v);
    }
    /* record first: what was asked holds at the next start even if the
     * live change fails */
    if (store_instance_update(d->store, inst, err) < 0)
        goto release;
    json_t *applied = json_object();
    const char *state = str(refresh(d, inst), "state");
    bool running = !strcmp(state, "running") || !strcmp(state, "paused");
    bool live_needed = false, vm_cpus = false;
    json_object_foreach(changes, k, v)
    {
        bool live = running && key_is_live(k, is_container(inst));
        /* a riscv64 VM's harts come and go while it runs */
        if (running && !is_container(inst) && !strcmp(k, "limits.cpu") && !json_is_null(v) &&
            !strcmp(str(inst, "arch"), "riscv64"))
            live = vm_cpus = true;
        live_needed |= live && is_container(inst);
        json_object_set_new(applied, k, json_string(live ? "live" : "next start"));
    }
    if (vm_cpus && vm_apply_cpus(d, inst, err) < 0) {
        json_decref(applied);
        vs_error_prefix(err, "saved for the next start, but not applied now: ");
        goto release;
    }
    if (live_needed && container_apply_limits(d, inst, err) < 0) {
        json_decref(applied);
        vs_error_prefix(err, "saved for the next start, but not applied now: ");
        goto release;
    }
    out = with_details(d, json_incref(inst));
    json_object_set_new(out, "applied", applied);
    daemon_event(d, "instance", "config-updated", name, json_incref(changes));
release:
    daemon_release(d, name);
done:
    json_decref(inst);
    return out;
}

/* ---- a VM arriving by live migration (cluster_move_vm.c) ---- */

/* Something listens on TCP port in this network namespace. */
static bool tcp_listening(unsigned port)
{
    static const char *const tables[] = {"/proc/net/tcp", "/proc/net/tcp6"};
    for (size_t i = 0; i < 2; i++) {
        FILE *f = fopen(tables[i], "r");
        char line[512];
        bool found = false;
        while (f && !found && fgets(line, sizeof(line), f)) {
            unsigned p = 0, st = 0;
            /* "  0: 0100007F:115C 00000000:0000 0A ..." */
            char *colon = strchr(line, ':');
            colon = colon ? strchr(colon + 1, ':') : NULL;
            if (colon && sscanf(colon + 1, "%x %*s %x", &p, &st) == 2 && p == port && st == 0x0A)
                found = true;
        }
        if (f)
            fclose(f);
        if (found)
            return true;
    }
    return false;
}

/* A port nothing uses on addr now (the VM binds it a moment later). */
static int free_port(const char *addr, unsigned *port, vs_err *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (getaddrinfo(addr, "0", &hints, &ai) != 0)
        return vs_error(err, EINVAL, "this host's cluster address %s is not an address", addr);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int rc = fd >= 0 && bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
                     getsockname(fd, (struct sockaddr *)&ss, &len) == 0
                 ? 0
                 : vs_error_errno(err, "a port on %s", addr);
    if (rc == 0)
        *port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                               : ((struct sockaddr_in *)&ss)->sin_port);
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    return rc;
}

json_t *instance_incoming(struct daemon *d, const char *name, const char *addr, vs_err *err)
{
    if (instance_validate_name(name, err) < 0)
        return NULL;
    char dir[4200], sock[4200], log[4200], csock[4200], vmmlog[4200], console[8600], uds[4200];
    inst_dir(d, name, NULL, dir, sizeof(dir));
    struct stat st;
    if (lstat(dir, &st) == 0) {
        vs_error(err, EEXIST, "instance %s has files on this host already", name);
        return NULL;
    }
    unsigned port = 0;
    if (free_port(addr, &port, err) < 0)
        return NULL;
    if (mkdir(dir, 0700) < 0) {
        vs_error_errno(err, "%s", dir);
        return NULL;
    }
    inst_dir(d, name, "api.sock", sock, sizeof(sock));
    inst_dir(d, name, "console.log", log, sizeof(log));
    inst_dir(d, name, "console.sock", csock, sizeof(csock));
    inst_dir(d, name, "vmm.log", vmmlog, sizeof(vmmlog));
    if (strlen(csock) < sizeof(((struct sockaddr_un *)0)->sun_path))
        snprintf(console, sizeof(console), "file:%s,socket:%s", log, csock);
    else
        snprintf(console, sizeof(console), "file:%s", log);
    char uri[600];
    snprintf(uri, sizeof(uri), strchr(addr, ':') ? "tcp:[%s]:%u" : "tcp:%s:%u", addr, port);
    const char *argv[20];
    int n = 0;
    argv[n++] = d->vessel_bin;
    argv[n++] = "vm";
    argv[n++] = "run";
    argv[n++] = "--incoming";
    argv[n++] = uri;
    argv[n++] = "--api-sock";
    argv[n++] = sock;
    argv[n++] = "--console";
    argv[n++] = console;
    argv[n++] = "--storage"; /* local disks arrive here (--copy-disks) */
    argv[n++] = dir;
    char images[4300];
    snprintf(images, sizeof(images), "%s/images", d->state_dir);
    argv[n++] = "--allow-backing"; /* their overlays' bases: this daemon's images */
    argv[n++] = images;
    if (instance_vsock_uds(d, name, uds, sizeof(uds)) == 0) {
        argv[n++] = "--vsock-uds";
        argv[n++] = uds;
    }
    argv[n] = NULL;
    json_t *inst = json_pack("{s:s, s:{}}", "name", name, "config");
    if (vm_spawn_process(inst, argv, vmmlog, err) < 0) {
        json_decref(inst);
        daemon_rm_rf(dir);
        return NULL;
    }
    pid_t vm = (pid_t)json_integer_value(json_object_get(inst, "pid"));
    unsigned long long start = recorded_start(inst);
    for (int t = 0; !tcp_listening(port); t += 10) {
        if (t > 10000 || !oci_pid_alive(vm, start)) {
            kill(vm, SIGKILL);
            vs_error(err, EIO, "instance %s: the incoming VM did not listen on %s", name, uri);
            json_decref(inst);
            daemon_rm_rf(dir);
            return NULL;
        }
        sleep_ms(10);
    }
    json_t *out = json_pack("{s:s, s:i, s:s}", "uri", uri, "pid", (int)vm, "pid_start",
                            config_get(inst, "volatile.pid_start"));
    json_decref(inst);
    return out;
}

int instance_incoming_drop(struct daemon *d, const char *name, pid_t pid, unsigned long long start,
                           vs_err *err)
{
    if (instance_validate_name(name, err) < 0)
        return -1;
    json_t *inst = store_instance_get(d->store, name, NULL);
    bool mine = inst && daemon_instance_local(d, inst);
    json_decref(inst);
    if (mine)
        return vs_error(err, EBUSY, "instance %s runs on this host: nothing to drop", name);
    char dir[4200], cmd[8192];
    inst_dir(d, name, NULL, dir, sizeof(dir));
    /* only the VM process started for it (its command line names the directory) */
    snprintf(cmd, sizeof(cmd), "/proc/%d/cmdline", (int)pid);
    int fd = pid > 0 && start && oci_pid_alive(pid, start) ? open(cmd, O_RDONLY | O_CLOEXEC) : -1;
    if (fd >= 0) {
        ssize_t r = read(fd, cmd, sizeof(cmd) - 1);
        close(fd);
        for (ssize_t i = 0; i < r; i++)
            if (!cmd[i])
                cmd[i] = ' ';
        if (r > 0 && (cmd[r] = 0, strstr(cmd, "--incoming")) && strstr(cmd, dir)) {
            kill(pid, SIGKILL);
            for (int t = 0; t < 5000 && oci_pid_alive(pid, start); t += 10)
                sleep_ms(10);
        }
    }
    daemon_rm_rf(dir);
    return 0;
}
