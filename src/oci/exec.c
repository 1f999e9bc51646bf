/* exec: a new process in a running container. A helper child joins the
 * container's cgroups and namespaces (user first), then forks the process
 * itself so it lands in the container's pid (and time) namespace; we are a
 * subreaper, so the process becomes our child when the helper exits. */
#include "oci/container.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "oci/linux.h"
#include "oci/process.h"
#include "oci/state.h"
#include "util/cleanup.h"

static const struct {
    enum oci_ns_type t;
    const char *file;
} ns_files[] = {
    {OCI_NS_USER, "user"}, {OCI_NS_CGROUP, "cgroup"}, {OCI_NS_IPC, "ipc"},   {OCI_NS_UTS, "uts"},
    {OCI_NS_NET, "net"},   {OCI_NS_PID, "pid"},       {OCI_NS_TIME, "time"}, {OCI_NS_MNT, "mnt"},
};

static int build_process(const struct oci_exec_opts *o, const struct oci_spec *s,
                         struct oci_process *p, struct oci_arena *a, json_t **holder, vs_err *err)
{
    if (o->process_file) {
        json_error_t je;
        *holder = json_load_file(o->process_file, 0, &je);
        if (!*holder)
            return vs_error(err, EINVAL, "%s: invalid JSON: %s", o->process_file, je.text);
        if (!json_is_object(*holder))
            return vs_error(err, EINVAL, "%s: expected a JSON object", o->process_file);
        if (oci_process_parse(*holder, p, a, err) < 0)
            return vs_error_prefix(err, "%s: ", o->process_file);
        if (!p->n_args)
            return vs_error(err, EINVAL, "%s: args: missing", o->process_file);
        return 0;
    }
    if (!o->args || !o->args[0])
        return vs_error(err, EINVAL, "exec needs a command (or --process FILE)");
    *p = s->process;
    p->args = (const char **)o->args;
    for (p->n_args = 0; o->args[p->n_args]; p->n_args++)
        ;
    p->terminal = o->tty;
    if (o->cwd)
        p->cwd = o->cwd;
    if (o->n_env) {
        size_t n = s->process.n_env + o->n_env;
        const char **env = oci_arena_alloc(a, (n + 1) * sizeof(char *));
        if (!env)
            return vs_error(err, ENOMEM, "out of memory");
        size_t k = 0;
        for (size_t i = 0; i < s->process.n_env; i++) {
            /* --env overrides a variable of the same name */
            const char *eq = strchr(s->process.env[i], '=');
            size_t kl = eq ? (size_t)(eq - s->process.env[i]) : strlen(s->process.env[i]);
            bool over = false;
            for (size_t j = 0; j < o->n_env; j++)
                if (!strncmp(o->env[j], s->process.env[i], kl) && o->env[j][kl] == '=')
                    over = true;
            if (!over)
                env[k++] = s->process.env[i];
        }
        for (size_t j = 0; j < o->n_env; j++)
            env[k++] = o->env[j];
        env[k] = NULL;
        p->env = env;
        p->n_env = k;
    }
    if (o->user) {
        unsigned uid, gid = 0;
        int n = sscanf(o->user, "%u:%u", &uid, &gid);
        if (n < 1)
            return vs_error(err, EINVAL, "--user '%s': expected UID[:GID]", o->user);
        p->user.uid = uid;
        p->user.gid = n == 2 ? gid : 0;
        p->user.n_additional_gids = 0;
    }
    for (size_t i = 0; i < o->n_caps; i++) {
        int c = oci_cap_from_name(o->caps[i]);
        if (c < 0)
            return vs_error(err, EINVAL, "--cap '%s': unknown capability", o->caps[i]);
        p->caps.present = true;
        uint64_t bit = 1ULL << c;
        p->caps.bounding |= bit;
        p->caps.effective |= bit;
        p->caps.permitted |= bit;
        p->caps.inheritable |= bit;
        p->caps.ambient |= bit;
    }
    if (o->no_new_privs)
        p->no_new_privileges = true;
    return 0;
}

__attribute__((noreturn)) static void exec_child(int sync, int console, const struct oci_spec *s,
                                                 const struct oci_process *p, bool userns)
{
    vs_err err = {0};
    int master = -1, slave = -1;
    if (p->terminal) {
        if (oci_pty_open(NULL, &master, &slave, &err) < 0)
            oci_sync_fail(sync, &err);
        if (oci_send_fd(console, master, "", 0) < 0) {
            vs_error_errno(&err, "cannot send the terminal");
            oci_sync_fail(sync, &err);
        }
        close(master);
        close(console);
        if (oci_process_setup_tty(slave, p, &err) < 0)
            oci_sync_fail(sync, &err);
    }
    int nfd = -1;
    bool nnp = p->no_new_privileges;
    if (s->seccomp.present && !nnp && oci_seccomp_load(&s->seccomp, false, &nfd, &err) < 0)
        oci_sync_fail(sync, &err);
    if (p->caps.present && oci_caps_drop_bounding(&p->caps, &err) < 0)
        oci_sync_fail(sync, &err);
    if (oci_process_set_identity(p, userns, &err) < 0)
        oci_sync_fail(sync, &err);
    if (p->caps.present && oci_caps_apply(&p->caps, &err) < 0)
        oci_sync_fail(sync, &err);
    if (nnp && prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        vs_error_errno(&err, "cannot set no_new_privs");
        oci_sync_fail(sync, &err);
    }
    const char *cwd = p->cwd ? p->cwd : "/";
    if (chdir(cwd) < 0) {
        vs_error_errno(&err, "cannot change to the working directory %s", cwd);
        oci_sync_fail(sync, &err);
    }
    char exe[PATH_MAX];
    if (oci_find_exec(p->args[0], p->env, exe, sizeof(exe), &err) < 0)
        oci_sync_fail(sync, &err);
    if (s->seccomp.present && nnp && oci_seccomp_load(&s->seccomp, true, &nfd, &err) < 0)
        oci_sync_fail(sync, &err);
    const char *empty[] = {NULL};
    execve(exe, (char *const *)p->args, (char *const *)(p->env ? p->env : empty));
    vs_error_errno(&err, "exec %s", exe);
    oci_sync_fail(sync, &err);
}

int oci_exec(const struct oci_exec_opts *o, int *exit_status, vs_err *err)
{
    struct oci_state st;
    struct oci_spec *s = NULL;
    struct oci_arena arena = {0};
    json_t *holder = NULL;
    struct oci_process p;
    int rc = -1;
    /* our ends; the helper never returns, so its copies need no cleanup */
    cleanup_close int sync_parent = -1, sync_child = -1, console = -1, console_peer = -1,
                      master = -1;
    int nsfd[ARRAY_SIZE(ns_files)];
    for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++)
        nsfd[i] = -1;
    if (oci_state_load(&st, o->root, o->id, false, err) < 0)
        goto out;
    enum oci_status status = oci_state_status(&st);
    if (status != OCI_RUNNING && status != OCI_CREATED) {
        vs_error(err, EINVAL, "cannot exec in container '%s': it is %s", o->id,
                 oci_status_name(status));
        goto out;
    }
    char path[PATH_MAX + 64];
    snprintf(path, sizeof(path), "%s/config.json", st.dir);
    if (!(s = oci_spec_load(path, err)))
        goto out;
    if (build_process(o, s, &p, &arena, &holder, err) < 0)
        goto out;
    if (p.terminal && !o->console_socket && o->detach) {
        vs_error(err, EINVAL, "exec -t with --detach needs --console-socket");
        goto out;
    }
    /* namespaces of the container that differ from ours */
    for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++) {
        char a[64], b[64];
        struct stat sa, sb;
        snprintf(a, sizeof(a), "/proc/%d/ns/%s", (int)st.pid, ns_files[i].file);
        snprintf(b, sizeof(b), "/proc/self/ns/%s", ns_files[i].file);
        if (stat(a, &sa) < 0)
            continue;
        if (stat(b, &sb) == 0 && sa.st_ino == sb.st_ino && sa.st_dev == sb.st_dev)
            continue;
        nsfd[i] = open(a, O_RDONLY | O_CLOEXEC);
        if (nsfd[i] < 0) {
            vs_error_errno(err, "cannot open %s", a);
            goto out;
        }
    }
    /* the pid must still be the container's init after we opened its ns */
    if (!oci_pid_alive(st.pid, st.start_time)) {
        vs_error(err, ESRCH, "container '%s' stopped", o->id);
        goto out;
    }
    if (p.terminal && oci_console_open(o->console_socket, &console, &console_peer, err) < 0)
        goto out;
    if (oci_sync_pair(&sync_parent, &sync_child, err) < 0)
        goto out;
    prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
    if (!o->detach)
        oci_block_forwarded_signals();
    fflush(NULL);
    pid_t helper = fork();
    if (helper < 0) {
        vs_error_errno(err, "fork");
        goto out;
    }
    if (helper == 0) {
        vs_err e = {0};
        oci_unblock_all_signals();
        close(sync_parent);
        if (console_peer >= 0)
            close(console_peer);
        oci_child_keep_fds(o->preserve_fds);
        if (st.cgroup.n && oci_cgroup_enter(&st.cgroup, getpid(), &e) < 0)
            oci_sync_fail(sync_child, &e);
        for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++) {
            if (nsfd[i] < 0)
                continue;
            if (setns(nsfd[i], 0) < 0) {
                vs_error_errno(&e, "cannot join the container's %s namespace", ns_files[i].file);
                oci_sync_fail(sync_child, &e);
            }
            close(nsfd[i]);
        }
        pid_t child = fork();
        if (child < 0) {
            vs_error_errno(&e, "fork");
            oci_sync_fail(sync_child, &e);
        }
        if (child == 0)
            exec_child(sync_child, console, s, &p, st.userns);
        oci_sync_send(sync_child, OCI_SYNC_PID, child, NULL);
        _exit(0);
    }
    close(steal_fd(sync_child));
    if (console_peer >= 0)
        close(steal_fd(console));
    pid_t child = -1;
    struct oci_sync_msg m;
    while (oci_sync_recv(sync_parent, &m) == 0) {
        if (m.passed_fd >= 0)
            close(m.passed_fd);
        if (m.type == OCI_SYNC_PID)
            child = m.value;
        else if (m.type == OCI_SYNC_ERROR) {
            vs_error(err, m.value, "%s", m.msg);
            waitpid(helper, NULL, 0);
            if (child > 0)
                waitpid(child, NULL, 0);
            goto out;
        }
    }
    waitpid(helper, NULL, 0);
    if (child <= 0) {
        vs_error(err, EIO, "exec: the helper process failed");
        goto out;
    }
    if (console_peer >= 0 && (master = oci_recv_fd(console_peer, NULL, 0)) < 0) {
        vs_error(err, EIO, "exec: did not receive the terminal");
        goto out;
    }
    if (o->pid_file && oci_write_pid_file(o->pid_file, child, err) < 0)
        goto out;
    rc = 0;
    if (o->detach)
        *exit_status = 0;
    else
        *exit_status = oci_wait_forward(child, master);
out:
    for (size_t i = 0; i < ARRAY_SIZE(ns_files); i++)
        if (nsfd[i] >= 0)
            close(nsfd[i]);
    json_decref(holder);
    oci_arena_release(&arena);
    oci_spec_free(s);
    oci_state_release(&st);
    return rc;
}
