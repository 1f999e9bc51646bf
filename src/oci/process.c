#include "oci/process.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "oci/linux.h"
#include "util/cleanup.h"
#include "util/io.h"

void oci_child_keep_fds(int n)
{
    syscall(SYS_close_range, 3 + n, ~0U, CLOSE_RANGE_CLOEXEC);
    for (int i = 3; i < 3 + n; i++)
        fcntl(i, F_SETFD, 0);
}

int oci_sync_pair(int *parent, int *child, vs_err *err)
{
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) < 0)
        return vs_error_errno(err, "socketpair");
    *parent = sv[0];
    *child = sv[1];
    return 0;
}

int oci_sync_send(int fd, int type, int value, const char *msg)
{
    struct oci_sync_msg m = {.type = type, .value = value};
    if (msg)
        snprintf(m.msg, sizeof(m.msg), "%s", msg);
    ssize_t r;
    do
        r = send(fd, &m, sizeof(m), MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    return r == (ssize_t)sizeof(m) ? 0 : -1;
}

int oci_sync_recv(int fd, struct oci_sync_msg *m)
{
    if (oci_recv_with_fd(fd, m, sizeof(*m), &m->passed_fd) != (ssize_t)sizeof(*m))
        return -1;
    m->msg[sizeof(m->msg) - 1] = 0;
    return 0;
}

void oci_sync_fail(int fd, const vs_err *err)
{
    oci_sync_send(fd, OCI_SYNC_ERROR, err->code, err->msg);
    _exit(1);
}

int oci_process_set_identity(const struct oci_process *p, bool userns, vs_err *err)
{
    for (size_t i = 0; i < p->n_rlimits; i++) {
        struct rlimit rl = {
            .rlim_cur = p->rlimits[i].soft == UINT64_MAX ? RLIM_INFINITY : p->rlimits[i].soft,
            .rlim_max = p->rlimits[i].hard == UINT64_MAX ? RLIM_INFINITY : p->rlimits[i].hard};
        if (setrlimit(p->rlimits[i].resource, &rl) < 0)
            return vs_error_errno(err,
                                  "cannot set rlimit %d to %llu:%llu (raising a hard limit needs "
                                  "CAP_SYS_RESOURCE)",
                                  p->rlimits[i].resource, (unsigned long long)p->rlimits[i].soft,
                                  (unsigned long long)p->rlimits[i].hard);
    }
    if (p->has_oom_score_adj) {
        cleanup_close int fd = open("/proc/self/oom_score_adj", O_WRONLY | O_CLOEXEC);
        char b[16];
        int n = snprintf(b, sizeof(b), "%d", p->oom_score_adj);
        if (fd < 0 || write(fd, b, (size_t)n) < 0)
            return vs_error_errno(err, "cannot set oom_score_adj");
    }
    if (p->user.n_additional_gids || !userns) {
        gid_t g[256];
        size_t n = MIN(p->user.n_additional_gids, ARRAY_SIZE(g));
        for (size_t i = 0; i < n; i++)
            g[i] = p->user.additional_gids[i];
        if (setgroups(n, g) < 0)
            return vs_error_errno(err, "cannot set additional groups");
    }
    if (setresgid(p->user.gid, p->user.gid, p->user.gid) < 0)
        return vs_error_errno(err, "cannot set gid %u", p->user.gid);
    /* keep the permitted set across setuid; capabilities are set after */
    prctl(PR_SET_KEEPCAPS, 1, 0, 0, 0);
    if (setresuid(p->user.uid, p->user.uid, p->user.uid) < 0)
        return vs_error_errno(err, "cannot set uid %u", p->user.uid);
    prctl(PR_SET_KEEPCAPS, 0, 0, 0, 0);
    if (p->user.has_umask)
        umask(p->user.umask);
    return 0;
}

int oci_process_setup_tty(int slave, const struct oci_process *p, vs_err *err)
{
    if (setsid() < 0)
        return vs_error_errno(err, "setsid");
    if (ioctl(slave, TIOCSCTTY, 0) < 0)
        return vs_error_errno(err, "cannot make the terminal the controlling tty");
    if (p->console_height && p->console_width) {
        struct winsize ws = {.ws_row = (unsigned short)p->console_height,
                             .ws_col = (unsigned short)p->console_width};
        ioctl(slave, TIOCSWINSZ, &ws);
    }
    for (int i = 0; i < 3; i++)
        if (dup2(slave, i) < 0)
            return vs_error_errno(err, "dup2 terminal");
    if (slave > 2)
        close(slave);
    return 0;
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

static void copy_winsize(int from, int to)
{
    struct winsize ws;
    if (ioctl(from, TIOCGWINSZ, &ws) == 0)
        ioctl(to, TIOCSWINSZ, &ws);
}

static bool pump(int from, int to)
{
    char buf[8192];
    ssize_t r = read(from, buf, sizeof(buf));
    if (r <= 0)
        return false;
    vs_write_full(to, buf, (size_t)r); /* a reader that is gone drops the output */
    return true;
}

static const int fwd[] = {SIGHUP,  SIGINT,   SIGQUIT, SIGTERM, SIGUSR1, SIGUSR2, SIGALRM,
                          SIGCONT, SIGWINCH, SIGTSTP, SIGTTIN, SIGTTOU, SIGPIPE};

void oci_block_forwarded_signals(void)
{
    sigset_t set;
    sigemptyset(&set);
    for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
        sigaddset(&set, fwd[i]);
    sigprocmask(SIG_BLOCK, &set, NULL);
}

void oci_unblock_all_signals(void)
{
    /* Every signal at its default action too: a runtime started with some
     * ignored (nohup, a shell's background job) would otherwise pass
     * SIG_IGN on through execve, and a shell in the container cannot even
     * trap a signal ignored when it started. */
    for (int sig = 1; sig < NSIG; sig++)
        if (sig != SIGKILL && sig != SIGSTOP)
            signal(sig, SIG_DFL);
    sigset_t set;
    sigemptyset(&set);
    sigprocmask(SIG_SETMASK, &set, NULL);
}

int oci_wait_forward(pid_t pid, int master)
{
    sigset_t set, old;
    sigemptyset(&set);
    for (size_t i = 0; i < ARRAY_SIZE(fwd); i++)
        sigaddset(&set, fwd[i]);
    sigaddset(&set, SIGCHLD);
    sigprocmask(SIG_BLOCK, &set, &old);
    int sfd = signalfd(-1, &set, SFD_CLOEXEC);
    struct termios saved;
    bool raw = false;
    if (master >= 0 && isatty(0) && tcgetattr(0, &saved) == 0) {
        struct termios t = saved;
        cfmakeraw(&t);
        raw = tcsetattr(0, TCSANOW, &t) == 0;
        copy_winsize(0, master);
    }
    int result = -1;
    bool stdin_open = master >= 0;
    for (;;) {
        int status;
        pid_t r;
        while ((r = waitpid(-1, &status, WNOHANG)) > 0)
            if (r == pid)
                result = status_code(status);
        if (r < 0 && errno == ECHILD && result < 0)
            result = 255; /* someone else reaped it */
        if (result >= 0)
            break;
        struct pollfd p[3] = {{.fd = sfd, .events = POLLIN},
                              {.fd = stdin_open ? 0 : -1, .events = POLLIN},
                              {.fd = master, .events = POLLIN}};
        if (poll(p, 3, -1) < 0 && errno != EINTR)
            break;
        if (p[0].revents & POLLIN) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof(si)) == sizeof(si) && si.ssi_signo != SIGCHLD) {
                if (si.ssi_signo == SIGWINCH && master >= 0)
                    copy_winsize(0, master);
                else
                    kill(pid, (int)si.ssi_signo);
            }
        }
        if (p[1].revents & (POLLIN | POLLHUP) && !pump(0, master))
            stdin_open = false;
        if (p[2].revents & (POLLIN | POLLHUP) && !pump(master, 1))
            master = -1;
    }
    /* drain what the process printed last */
    if (master >= 0) {
        fcntl(master, F_SETFL, O_NONBLOCK);
        while (pump(master, 1))
            ;
    }
    if (raw)
        tcsetattr(0, TCSANOW, &saved);
    close(sfd);
    sigprocmask(SIG_SETMASK, &old, NULL);
    return result;
}

int oci_write_pid_file(const char *path, pid_t pid, vs_err *err)
{
    char tmp[4096];
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    cleanup_close int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        return vs_error_errno(err, "cannot write pid file %s", path);
    char b[32];
    int n = snprintf(b, sizeof(b), "%d", (int)pid);
    if (write(fd, b, (size_t)n) != n || rename(tmp, path) < 0)
        return vs_error_errno(err, "cannot write pid file %s", path);
    return 0;
}
