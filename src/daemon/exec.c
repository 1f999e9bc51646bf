/* exec: a command in a running instance, with the caller's own stdin,
 * stdout and stderr.
 *
 * The daemon answers an exec request with a one-shot unix socket in the
 * instance's directory (root-only, like the daemon's). A child of the
 * daemon waits there for the client, receives the client's three file
 * descriptors with SCM_RIGHTS, runs the command on them (in a container
 * through the OCI library, so output streams with no copy through the
 * daemon and -t gives the command a terminal relayed to the client's; in a
 * VM through the guest agent over vsock, agent_client.c, which relays the
 * same fds), and sends back the exit status as one 32-bit integer. With record_output the daemon
 * instead runs the command on pipes and returns what it wrote (for scripts and curl). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/agent_client.h"
#include "daemon/daemon.h"
#include "oci/container.h"
#include "util/log.h"
#include "util/unix_socket.h"

#define RECORD_MAX (1024 * 1024)
#define ACCEPT_TIMEOUT_MS 30000
#define RECORD_TIMEOUT_S 600

/* argv from the request's "command" (an array of strings). */
static char **command_argv(json_t *cmd, vs_err *err)
{
    size_t n = json_array_size(cmd);
    if (!json_is_array(cmd) || n == 0 || n > 4096) {
        vs_error(err, EINVAL, "\"command\" must be a non-empty array of strings");
        return NULL;
    }
    char **argv = calloc(n + 1, sizeof(*argv));
    for (size_t i = 0; argv && i < n; i++) {
        const char *s = json_string_value(json_array_get(cmd, i));
        if (!s) {
            free(argv);
            vs_error(err, EINVAL, "\"command\" must be a non-empty array of strings");
            return NULL;
        }
        argv[i] = (char *)s;
    }
    if (!argv)
        vs_error(err, ENOMEM, "out of memory");
    return argv;
}

/* What an exec request asks for besides the command: LXD's "cwd", "user",
 * "group" and "environment". */
struct exec_req {
    char **argv;
    const char *cwd;
    bool has_user;
    uint32_t uid, gid;
    char **env; /* "K=V" entries, NULL-terminated */
    size_t n_env;
    char user[32];
};

static void exec_req_free(struct exec_req *x)
{
    free(x->argv);
    for (size_t i = 0; i < x->n_env; i++)
        free(x->env[i]);
    free(x->env);
}

static int exec_req_parse(json_t *req, struct exec_req *x, vs_err *err)
{
    memset(x, 0, sizeof(*x));
    json_t *cwd = json_object_get(req, "cwd"), *user = json_object_get(req, "user"),
           *group = json_object_get(req, "group"), *env = json_object_get(req, "environment");
    if (cwd && (!json_is_string(cwd) || json_string_value(cwd)[0] != '/'))
        return vs_error(err, EINVAL, "\"cwd\" must be an absolute path");
    x->cwd = json_string_value(cwd);
    if ((user && (!json_is_integer(user) || json_integer_value(user) < 0 ||
                  json_integer_value(user) > 0xfffffffe)) ||
        (group && (!json_is_integer(group) || json_integer_value(group) < 0 ||
                   json_integer_value(group) > 0xfffffffe)))
        return vs_error(err, EINVAL, "\"user\" and \"group\" must be numeric ids");
    if (group && !user)
        return vs_error(err, EINVAL, "\"group\" needs \"user\"");
    if (user) {
        x->has_user = true;
        x->uid = (uint32_t)json_integer_value(user);
        x->gid = group ? (uint32_t)json_integer_value(group) : 0;
        snprintf(x->user, sizeof(x->user), "%u:%u", x->uid, x->gid);
    }
    if (env && !json_is_object(env))
        return vs_error(err, EINVAL, "\"environment\" must be an object of strings");
    size_t n = json_object_size(env);
    if (n > 4096)
        return vs_error(err, EINVAL, "\"environment\": too many entries");
    x->env = calloc(n + 1, sizeof(char *));
    if (!x->env)
        return vs_error(err, ENOMEM, "out of memory");
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (!json_is_string(v) || !k[0] || strchr(k, '=') ||
            strlen(json_string_value(v)) != json_string_length(v))
            return vs_error(err, EINVAL,
                            "\"environment\": '%s' needs a name without '=' and a string value", k);
        if (asprintf(&x->env[x->n_env], "%s=%s", k, json_string_value(v)) < 0)
            return vs_error(err, ENOMEM, "out of memory");
        x->n_env++;
    }
    x->argv = command_argv(json_object_get(req, "command"), err);
    return x->argv ? 0 : -1;
}

/* In a child of the daemon: run the command in the container on fds 0..2
 * (already in place) and return its exit status. */
static int run_in_container(struct daemon *d, const char *name, struct exec_req *x, bool tty)
{
    struct oci_exec_opts o = {.root = d->oci_root,
                              .id = name,
                              .args = x->argv,
                              .tty = tty,
                              .cwd = x->cwd,
                              .user = x->has_user ? x->user : NULL,
                              .env = x->env,
                              .n_env = x->n_env};
    int status = 0;
    vs_err err = {0};
    if (oci_exec(&o, &status, &err) < 0) {
        dprintf(2, "vessel exec: %s\n", err.msg);
        return 126;
    }
    return status;
}

/* In a child of the daemon: the same through the VM's guest agent. */
static int run_in_vm(struct daemon *d, const char *name, struct exec_req *x, bool tty)
{
    char uds[4200];
    vs_err err = {0};
    /* a reader that goes away shows as SIGPIPE in the guest, not here */
    signal(SIGPIPE, SIG_IGN);
    int status = -1;
    if (instance_vsock_uds(d, name, uds, sizeof(uds)) < 0)
        vs_error(&err, ENAMETOOLONG, "the VM's vsock socket path is too long");
    else {
        struct agent_exec_opts o = {.cwd = x->cwd,
                                    .has_user = x->has_user,
                                    .uid = x->uid,
                                    .gid = x->gid,
                                    .add_env = x->n_env > 0,
                                    .envp = x->env};
        status = agent_client_run_ex(uds, x->argv, &o, tty, 0, 1, 2, &err);
    }
    if (status < 0) {
        dprintf(2, "vessel exec: %s: %s\n", name, err.msg);
        return 126;
    }
    return status;
}

static int run_command(struct daemon *d, const char *name, bool vm, struct exec_req *x, bool tty)
{
    return vm ? run_in_vm(d, name, x, tty) : run_in_container(d, name, x, tty);
}

static void child_setup(void)
{
    setsid();
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
}

/* Receive the client's stdin, stdout and stderr. */
static int recv_fds(int sock, int fds[3], bool *tty)
{
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    if (recvmsg(sock, &m, MSG_CMSG_CLOEXEC) != 1)
        return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(3 * sizeof(int)))
        return -1;
    memcpy(fds, CMSG_DATA(c), 3 * sizeof(int));
    *tty = byte == 't';
    return 0;
}

static void serve_one(struct daemon *d, const char *name, bool vm, struct exec_req *x,
                      bool tty_allowed, int listener, const char *path)
{
    struct pollfd p = {.fd = listener, .events = POLLIN};
    int ready = poll(&p, 1, ACCEPT_TIMEOUT_MS);
    int conn = ready == 1 ? accept4(listener, NULL, NULL, SOCK_CLOEXEC) : -1;
    close(listener);
    unlink(path);
    int fds[3];
    bool tty = false;
    if (conn < 0 || recv_fds(conn, fds, &tty) < 0)
        _exit(1);
    for (int i = 0; i < 3; i++) {
        dup2(fds[i], i);
        close(fds[i]);
    }
    int32_t status = run_command(d, name, vm, x, tty && tty_allowed);
    if (write(conn, &status, sizeof(status)) != sizeof(status))
        _exit(1);
    _exit(0);
}

/* Run argv on pipes and collect up to RECORD_MAX of each stream. */
static json_t *record(struct daemon *d, const char *name, bool vm, struct exec_req *x, vs_err *err)
{
    int out[2], errp[2];
    if (pipe2(out, O_CLOEXEC) < 0)
        return vs_error_errno(err, "pipe"), NULL;
    if (pipe2(errp, O_CLOEXEC) < 0) {
        close(out[0]);
        close(out[1]);
        return vs_error_errno(err, "pipe"), NULL;
    }
    pid_t child = fork();
    if (child == 0) {
        child_setup();
        int null = open("/dev/null", O_RDONLY);
        dup2(null, 0);
        dup2(out[1], 1);
        dup2(errp[1], 2);
        _exit(run_command(d, name, vm, x, false));
    }
    close(out[1]);
    close(errp[1]);
    if (child < 0) {
        close(out[0]);
        close(errp[0]);
        return vs_error_errno(err, "fork"), NULL;
    }
    char *buf[2] = {malloc(RECORD_MAX), malloc(RECORD_MAX)};
    size_t len[2] = {0, 0};
    struct pollfd p[2] = {{.fd = out[0], .events = POLLIN}, {.fd = errp[0], .events = POLLIN}};
    int open_n = 2;
    /* a command that keeps its output open forever does not hold the
     * request forever: RECORD_TIMEOUT_S, then it is killed */
    long long deadline = daemon_now_ms() + RECORD_TIMEOUT_S * 1000LL;
    bool timed_out = false;
    while (open_n > 0 && buf[0] && buf[1]) {
        long long left = deadline - daemon_now_ms();
        int r = left > 0 ? poll(p, 2, (int)(left > 1000 ? 1000 : left)) : 0;
        if (r < 0 && errno != EINTR)
            break;
        if (r == 0 && daemon_now_ms() >= deadline) {
            timed_out = true;
            kill(-child, SIGKILL); /* the runner's session: it and what it started */
            kill(child, SIGKILL);
            break;
        }
        for (int i = 0; i < 2; i++) {
            if (p[i].fd < 0 || !p[i].revents)
                continue;
            char tmp[16384];
            ssize_t n = read(p[i].fd, tmp, sizeof(tmp));
            if (n <= 0) {
                close(p[i].fd);
                p[i].fd = -1;
                open_n--;
                continue;
            }
            size_t take = (size_t)n < RECORD_MAX - len[i] ? (size_t)n : RECORD_MAX - len[i];
            memcpy(buf[i] + len[i], tmp, take);
            len[i] += take;
        }
    }
    for (int i = 0; i < 2; i++)
        if (p[i].fd >= 0)
            close(p[i].fd);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR)
        ;
    json_t *r = NULL;
    if (timed_out) {
        vs_error(err, ETIMEDOUT,
                 "the command ran longer than %d s (use exec without "
                 "record_output for long commands)",
                 RECORD_TIMEOUT_S);
    } else if (buf[0] && buf[1])
        r = json_pack("{s:i, s:s%, s:s%}", "exit_code",
                      WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status), "stdout",
                      buf[0], len[0], "stderr", buf[1], len[1]);
    if (!r && !timed_out)
        vs_error(err, ENOMEM, "out of memory (or output that is not UTF-8)");
    free(buf[0]);
    free(buf[1]);
    return r;
}

/* The one-shot socket sits next to the daemon's own (a directory its
 * users reach) and belongs to the caller alone. Over HTTPS there is no
 * local caller to hand fds over. */
int daemon_oneshot_listen(struct daemon *d, json_t *req, const char *kind, char *path, size_t n,
                          vs_err *err)
{
    json_t *uid = json_object_get(req, "caller_uid"), *gid = json_object_get(req, "caller_gid");
    if (!uid)
        return vs_error(err, EINVAL,
                        "%s with the caller's own stdin/stdout needs the local socket%s", kind,
                        strcmp(kind, "exec") ? "" : "; over HTTPS use \"record_output\": true");
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s", d->socket_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = 0;
    else
        snprintf(dir, sizeof(dir), ".");
    static unsigned counter;
    snprintf(path, n, "%s/%s-%d-%u.sock", dir, kind, getpid(),
             __atomic_add_fetch(&counter, 1, __ATOMIC_RELAXED));
    int listener = vs_unix_listen(path, 1, err);
    if (listener < 0)
        return -1;
    if (chmod(path, 0600) < 0 ||
        chown(path, (uid_t)json_integer_value(uid), (gid_t)json_integer_value(gid)) < 0) {
        vs_error_errno(err, "%s", path);
        close(listener);
        unlink(path);
        return -1;
    }
    return listener;
}

json_t *instance_exec(struct daemon *d, const char *name, json_t *req, vs_err *err)
{
    json_t *inst = instance_info(d, name, err);
    if (!inst)
        return NULL;
    json_t *out = NULL;
    struct exec_req x = {0};
    const char *type = json_string_value(json_object_get(inst, "type"));
    const char *state = json_string_value(json_object_get(inst, "state"));
    bool vm = strcmp(type, "container") != 0;
    if (strcmp(state, "running")) {
        vs_error(err, EBUSY, "instance %s is %s: exec needs it running", name, state);
        goto out;
    }
    char uds[4200];
    struct stat st;
    if (vm && instance_vsock_uds(d, name, uds, sizeof(uds)) < 0) {
        vs_error(err, EINVAL,
                 "instance %s: its directory's path is too long for the vsock socket exec needs",
                 name);
        goto out;
    }
    if (vm && stat(uds, &st) < 0) {
        /* started by a vesseld from before the guest agent */
        vs_error(err, EBUSY, "instance %s runs without the vsock device exec needs: restart it",
                 name);
        goto out;
    }
    if (exec_req_parse(req, &x, err) < 0)
        goto out;
    if (json_is_true(json_object_get(req, "record_output"))) {
        out = record(d, name, vm, &x, err);
        goto out;
    }
    char path[4300];
    int listener = daemon_oneshot_listen(d, req, "exec", path, sizeof(path), err);
    if (listener < 0)
        goto out;
    pid_t child = fork();
    if (child == 0) {
        child_setup();
        /* a grandchild serves, so the daemon has nothing to reap later */
        pid_t g = fork();
        if (g == 0)
            serve_one(d, name, vm, &x, true, listener, path);
        _exit(g < 0);
    }
    close(listener);
    if (child < 0) {
        unlink(path);
        vs_error_errno(err, "fork");
        goto out;
    }
    while (waitpid(child, NULL, 0) < 0 && errno == EINTR)
        ;
    out = json_pack("{s:s}", "socket", path);
out:
    exec_req_free(&x);
    json_decref(inst);
    return out;
}
