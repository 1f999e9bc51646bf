/* The verbs that inspect or adjust an existing container: state, list, ps,
 * pause/resume, update, events, plus features and spec. */
#include "oci/container.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "oci/cgroup.h"
#include "oci/state.h"
#include "util/cleanup.h"

int oci_parse_signal(const char *s)
{
    static const struct {
        const char *n;
        int sig;
    } names[] = {
        {"HUP", SIGHUP},       {"INT", SIGINT},   {"QUIT", SIGQUIT},   {"ILL", SIGILL},
        {"TRAP", SIGTRAP},     {"ABRT", SIGABRT}, {"BUS", SIGBUS},     {"FPE", SIGFPE},
        {"KILL", SIGKILL},     {"USR1", SIGUSR1}, {"SEGV", SIGSEGV},   {"USR2", SIGUSR2},
        {"PIPE", SIGPIPE},     {"ALRM", SIGALRM}, {"TERM", SIGTERM},   {"CHLD", SIGCHLD},
        {"CONT", SIGCONT},     {"STOP", SIGSTOP}, {"TSTP", SIGTSTP},   {"TTIN", SIGTTIN},
        {"TTOU", SIGTTOU},     {"URG", SIGURG},   {"XCPU", SIGXCPU},   {"XFSZ", SIGXFSZ},
        {"VTALRM", SIGVTALRM}, {"PROF", SIGPROF}, {"WINCH", SIGWINCH}, {"IO", SIGIO},
        {"PWR", SIGPWR},       {"SYS", SIGSYS},
    };
    if (!s || !*s)
        return -1;
    char *end;
    long v = strtol(s, &end, 10);
    if (!*end)
        return v > 0 && v < 65 ? (int)v : -1;
    if (!strncasecmp(s, "SIG", 3))
        s += 3;
    /* RTMIN, RTMIN+3 (systemd's stop signal), RTMAX-2 */
    if (!strncasecmp(s, "RTMIN", 5) || !strncasecmp(s, "RTMAX", 5)) {
        bool min = !strncasecmp(s, "RTMIN", 5);
        long off = 0;
        if (s[5]) {
            if (s[5] != (min ? '+' : '-') || !s[6])
                return -1;
            off = strtol(s + 6, &end, 10);
            if (*end || off < 0)
                return -1;
        }
        long sig = min ? SIGRTMIN + off : SIGRTMAX - off;
        return sig >= SIGRTMIN && sig <= SIGRTMAX ? (int)sig : -1;
    }
    for (size_t i = 0; i < ARRAY_SIZE(names); i++)
        if (!strcasecmp(s, names[i].n))
            return names[i].sig;
    return -1;
}

int oci_print_state(const char *root, const char *id, FILE *out, vs_err *err)
{
    struct oci_state st;
    if (oci_state_load(&st, root, id, false, err) < 0) {
        oci_state_release(&st);
        return -1;
    }
    json_t *j = oci_state_json(&st, oci_state_status(&st));
    char *txt = json_dumps(j, JSON_INDENT(2));
    fprintf(out, "%s\n", txt);
    free(txt);
    json_decref(j);
    oci_state_release(&st);
    return 0;
}

int oci_list(const char *root, bool json, bool quiet, FILE *out, vs_err *err)
{
    DIR *d = opendir(root);
    json_t *arr = json_array();
    if (!d && errno != ENOENT) {
        json_decref(arr);
        return vs_error_errno(err, "cannot read %s", root);
    }
    if (!json && !quiet)
        fprintf(out, "%-20s %-8s %-10s %-40s %-30s %s\n", "ID", "PID", "STATUS", "BUNDLE",
                "CREATED", "OWNER");
    struct dirent *de;
    while (d && (de = readdir(d))) {
        if (de->d_name[0] == '.')
            continue;
        struct oci_state st;
        if (oci_state_load(&st, root, de->d_name, false, NULL) < 0) {
            oci_state_release(&st);
            continue;
        }
        enum oci_status s = oci_state_status(&st);
        if (json)
            json_array_append_new(arr, oci_state_json(&st, s));
        else if (quiet)
            fprintf(out, "%s\n", st.id);
        else
            fprintf(out, "%-20s %-8d %-10s %-40s %-30s %s\n", st.id,
                    s == OCI_STOPPED ? 0 : (int)st.pid, oci_status_name(s), st.bundle, st.created,
                    st.owner);
        oci_state_release(&st);
    }
    if (d)
        closedir(d);
    if (json) {
        char *txt = json_dumps(arr, JSON_COMPACT);
        fprintf(out, "%s\n", txt);
        free(txt);
    }
    json_decref(arr);
    return 0;
}

static int container_pids(struct oci_state *st, pid_t **pids, size_t *n, vs_err *err)
{
    if (st->cgroup.n)
        return oci_cgroup_pids(&st->cgroup, pids, n, err);
    /* no cgroup (rootless without delegation): the init only */
    *pids = malloc(sizeof(pid_t));
    if (!*pids)
        return vs_error(err, ENOMEM, "out of memory");
    (*pids)[0] = st->pid;
    *n = oci_state_status(st) == OCI_STOPPED ? 0 : 1;
    return 0;
}

int oci_ps(const char *root, const char *id, bool json, char **ps_args, FILE *out, vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    pid_t *pids = NULL;
    size_t n = 0;
    if (oci_state_load(&st, root, id, false, err) < 0 || container_pids(&st, &pids, &n, err) < 0)
        goto out;
    if (json) {
        fprintf(out, "[");
        for (size_t i = 0; i < n; i++)
            fprintf(out, "%s%d", i ? "," : "", (int)pids[i]);
        fprintf(out, "]\n");
        rc = 0;
        goto out;
    }
    /* run ps(1) and keep the header plus the lines whose PID is ours */
    char cmd[4096] = "ps";
    size_t off = 2;
    if (!ps_args || !ps_args[0]) {
        snprintf(cmd + off, sizeof(cmd) - off, " -ef");
    } else {
        for (size_t i = 0; ps_args[i]; i++) {
            if (strpbrk(ps_args[i], "'\\"))
                return vs_error(err, EINVAL, "ps: unsupported characters in arguments");
            off += (size_t)snprintf(cmd + off, sizeof(cmd) - off, " '%s'", ps_args[i]);
        }
    }
    fflush(out);
    FILE *p = popen(cmd, "r");
    if (!p) {
        vs_error_errno(err, "cannot run ps");
        goto out;
    }
    char line[4096];
    int pid_col = -1;
    bool header = true;
    while (fgets(line, sizeof(line), p)) {
        char copy[4096];
        snprintf(copy, sizeof(copy), "%s", line);
        int col = 0;
        bool match = false;
        for (char *sv, *t = strtok_r(copy, " \t\n", &sv); t;
             t = strtok_r(NULL, " \t\n", &sv), col++) {
            if (header && !strcmp(t, "PID"))
                pid_col = col;
            if (!header && col == pid_col) {
                long v = strtol(t, NULL, 10);
                for (size_t i = 0; i < n; i++)
                    if (pids[i] == v)
                        match = true;
            }
        }
        if (header) {
            if (pid_col < 0) {
                pclose(p);
                vs_error(err, EINVAL, "ps: the output has no PID column");
                goto out;
            }
            fputs(line, out);
            header = false;
        } else if (match)
            fputs(line, out);
    }
    pclose(p);
    rc = 0;
out:
    free(pids);
    oci_state_release(&st);
    return rc;
}

int oci_pause(const char *root, const char *id, bool pause, vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    if (oci_state_load(&st, root, id, true, err) < 0)
        goto out;
    enum oci_status s = oci_state_status(&st);
    if (pause && s != OCI_RUNNING && s != OCI_CREATED) {
        vs_error(err, EINVAL, "container '%s' is %s, not running", id, oci_status_name(s));
        goto out;
    }
    if (!pause && s != OCI_PAUSED) {
        vs_error(err, EINVAL, "container '%s' is %s, not paused", id, oci_status_name(s));
        goto out;
    }
    if (!st.cgroup.n) {
        vs_error(err, ENOTSUP, "container '%s' has no cgroup: cannot %s it", id,
                 pause ? "pause" : "resume");
        goto out;
    }
    rc = oci_cgroup_freeze(&st.cgroup, pause, err);
out:
    oci_state_release(&st);
    return rc;
}

int oci_update(const char *root, const char *id, const struct oci_resources *r, vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    if (oci_state_load(&st, root, id, true, err) < 0)
        goto out;
    if (oci_state_status(&st) == OCI_STOPPED) {
        vs_error(err, EINVAL, "container '%s' is stopped", id);
        goto out;
    }
    if (!st.cgroup.n) {
        vs_error(err, ENOTSUP, "container '%s' has no cgroup to update", id);
        goto out;
    }
    rc = oci_cgroup_apply(&st.cgroup, r, err);
out:
    oci_state_release(&st);
    return rc;
}

static void print_event(FILE *out, const char *type, const char *id, json_t *data)
{
    json_t *j = json_pack("{s:s,s:s}", "type", type, "id", id);
    if (data)
        json_object_set_new(j, "data", data);
    char *txt = json_dumps(j, JSON_COMPACT);
    fprintf(out, "%s\n", txt);
    fflush(out);
    free(txt);
    json_decref(j);
}

int oci_events(const char *root, const char *id, bool stats_once, int interval, FILE *out,
               vs_err *err)
{
    struct oci_state st;
    int rc = -1;
    if (oci_state_load(&st, root, id, false, err) < 0)
        goto out;
    if (oci_state_status(&st) == OCI_STOPPED) {
        vs_error(err, EINVAL, "container '%s' is stopped", id);
        goto out;
    }
    if (stats_once) {
        print_event(out, "stats", id, oci_cgroup_stats(&st.cgroup));
        rc = 0;
        goto out;
    }
    unsigned long long ooms = oci_cgroup_oom_kills(&st.cgroup);
    while (oci_state_status(&st) != OCI_STOPPED) {
        print_event(out, "stats", id, oci_cgroup_stats(&st.cgroup));
        for (int i = 0; i < interval * 10; i++) {
            struct timespec ts = {0, 100000000};
            nanosleep(&ts, NULL);
            unsigned long long now = oci_cgroup_oom_kills(&st.cgroup);
            if (now > ooms) {
                print_event(out, "oom", id, NULL);
                ooms = now;
            }
            if (oci_state_status(&st) == OCI_STOPPED)
                break;
        }
    }
    rc = 0;
out:
    oci_state_release(&st);
    return rc;
}

int oci_features(FILE *out, vs_err *err)
{
    json_t *caps = json_array();
    for (int i = 0; i <= oci_cap_last(); i++)
        json_array_append_new(caps, json_string(oci_cap_name(i)));
    json_t *j = json_pack(
        "{s:s,s:s,s:[s,s,s,s,s,s],s:[s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s,s],"
        "s:{s:[s,s,s,s,s,s,s,s],s:o,s:{s:b,s:b,s:b,s:b},"
        "s:{s:b,s:[s,s,s,s,s,s,s,s,s],s:[s,s],s:[s,s,s,s,s,s,s],s:[s,s,s,s,s,s]},"
        "s:{s:b},s:{s:b},s:{s:b},s:{s:b}},s:{s:s,s:s}}",
        "ociVersionMin", "1.0.0", "ociVersionMax", OCI_VERSION, "hooks", "prestart",
        "createRuntime", "createContainer", "startContainer", "poststart", "poststop",
        "mountOptions", "ro", "rw", "nosuid", "suid", "nodev", "dev", "noexec", "exec", "sync",
        "async", "dirsync", "remount", "mand", "nomand", "atime", "noatime", "relatime",
        "strictatime", "bind", "rbind", "private", "rprivate", "shared", "rshared", "slave",
        "rslave", "unbindable", "linux", "namespaces", "cgroup", "ipc", "mount", "network", "pid",
        "user", "uts", "time", "capabilities", caps, "cgroup", "v1", 1, "v2", 1, "systemd", 0,
        "systemdUser", 0, "seccomp", "enabled", 1, "actions", "SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO",
        "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG",
        "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP", "knownFlags",
        "SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "operators", "SCMP_CMP_EQ",
        "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ",
        "SCMP_CMP_NE", "archs", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64", "SCMP_ARCH_X32",
        "SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_RISCV64", "apparmor", "enabled", 0,
        "selinux", "enabled", 0, "intelRdt", "enabled", 0, "mountExtensions", "enabled", 0,
        "annotations", "io.github.vessel.cgroup-mode", oci_cgroup_mode_name(oci_cgroup_detect()),
        "io.github.vessel.checkpoint", "unsupported (CRIU does not work on this kernel)");
    if (!j)
        return vs_error(err, EINVAL, "features: internal JSON error");
    char *txt = json_dumps(j, JSON_INDENT(4));
    fprintf(out, "%s\n", txt);
    free(txt);
    json_decref(j);
    return 0;
}

int oci_write_spec(const char *bundle, bool rootless, vs_err *err)
{
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/config.json", bundle ? bundle : ".");
    if (access(path, F_OK) == 0)
        return vs_error(err, EEXIST, "%s already exists; remove it first", path);
    json_t *j = oci_spec_default(rootless, geteuid(), getegid());
    if (!j)
        return vs_error(err, EINVAL, "spec: internal JSON error");
    int r = json_dump_file(j, path, JSON_INDENT(4));
    json_decref(j);
    if (r < 0)
        return vs_error_errno(err, "cannot write %s", path);
    return 0;
}
