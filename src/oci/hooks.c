/* OCI hooks: each runs with the container state on stdin; a timeout kills it. */
#include "oci/linux.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "util/io.h"
#include "util/log.h"

static int run_one(const char *kind, const struct oci_hook *h, const char *state, vs_err *err)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return vs_error_errno(err, "%s hook: pipe", kind);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return vs_error_errno(err, "%s hook: fork", kind);
    }
    if (pid == 0) {
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        dup2(pfd[0], 0);
        const char *argv0[] = {h->path, NULL};
        const char *envp0[] = {NULL};
        execve(h->path, (char *const *)(h->args && h->args[0] ? h->args : argv0),
               (char *const *)(h->env ? h->env : envp0));
        dprintf(2, "vessel: %s hook %s: %s\n", kind, h->path, strerror(errno));
        _exit(127);
    }
    close(pfd[0]);
    /* the hook may not read stdin at all: ignore EPIPE */
    struct sigaction sa = {.sa_handler = SIG_IGN}, old;
    sigaction(SIGPIPE, &sa, &old);
    vs_write_full(pfd[1], state, strlen(state));
    close(pfd[1]);
    sigaction(SIGPIPE, &old, NULL);
    int status;
    struct timespec start;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        pid_t r = waitpid(pid, &status, h->timeout ? WNOHANG : 0);
        if (r == pid)
            break;
        if (r < 0 && errno != EINTR)
            return vs_error_errno(err, "%s hook %s: wait", kind, h->path);
        if (h->timeout) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            if (now.tv_sec - start.tv_sec >= h->timeout) {
                kill(pid, SIGKILL);
                waitpid(pid, &status, 0);
                return vs_error(err, ETIMEDOUT, "%s hook %s timed out after %d s", kind, h->path,
                                h->timeout);
            }
            struct timespec ts = {0, 2000000};
            nanosleep(&ts, NULL);
        }
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0)
        return 0;
    if (WIFSIGNALED(status))
        return vs_error(err, EIO, "%s hook %s killed by signal %d", kind, h->path,
                        WTERMSIG(status));
    return vs_error(err, EIO, "%s hook %s exited with status %d", kind, h->path,
                    WEXITSTATUS(status));
}

int oci_hooks_run(const char *kind, const struct oci_hook *hooks, size_t n, const char *state,
                  vs_err *err)
{
    for (size_t i = 0; i < n; i++)
        if (run_one(kind, &hooks[i], state, err) < 0)
            return -1;
    return 0;
}

int oci_hooks_run_all(const char *kind, const struct oci_hook *hooks, size_t n, const char *state)
{
    int failed = 0;
    for (size_t i = 0; i < n; i++) {
        vs_err e = {0};
        if (run_one(kind, &hooks[i], state, &e) < 0) {
            vs_warn("%s", e.msg);
            failed++;
        }
    }
    return failed;
}
