/* One measured run: spawn a command (the workload natively, or vessel-runc,
 * vessel emu or vessel vm run running it), read the workload's markers from
 * its stdout and take the peak RSS the workload reports (its VmHWM), or for
 * a VM or a user's command, the peak RSS of the process vessel spawned. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare/compare.h"
#include "util/cleanup.h"

extern char **environ;

#define CMP_RUN_TIMEOUT_MS (600 * 1000)

static uint64_t clock_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* The last non-empty line of the run's stderr, for an error message. */
static void last_line(int fd, char *out, size_t len)
{
    char buf[4096];
    off_t size = lseek(fd, 0, SEEK_END);
    off_t from = size > (off_t)sizeof(buf) - 1 ? size - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    out[0] = 0;
    if (n <= 0)
        return;
    buf[n] = 0;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        buf[--n] = 0;
    char *nl = strrchr(buf, '\n');
    const char *l = nl ? nl + 1 : buf;
    size_t n2 = strnlen(l, len - 1);
    memcpy(out, l, n2);
    out[n2] = 0;
}

/* The host's time when a marker first showed up in the output */
static void note_marker(const char *out, const char *marker, uint64_t *at)
{
    if (!*at && strstr(out, marker))
        *at = clock_ns(CLOCK_MONOTONIC);
}

int compare_spawn(char *const argv[], const struct compare_spawn_how *how,
                  volatile sig_atomic_t *stop, struct compare_sample *s, vs_err *err)
{
    const char *workload = how->workload;
    uint64_t seen_start = 0, seen_ready = 0, seen_exit = 0;
    memset(s, 0, sizeof(*s));
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) < 0)
        return vs_error_errno(err, "compare: pipe");
    cleanup_close int rd = pfd[0];
    cleanup_close int efd = memfd_create("vessel-compare-stderr", MFD_CLOEXEC);
    if (efd < 0) {
        close(pfd[1]);
        return vs_error_errno(err, "compare: memfd_create");
    }
    /* posix_spawn (vfork-style): the start-up measured is the program's,
     * not the cost of copying this process's page tables */
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
    posix_spawn_file_actions_adddup2(&fa, efd, 2);
    fflush(NULL);
    uint64_t t0_real = clock_ns(CLOCK_REALTIME), t0 = clock_ns(CLOCK_MONOTONIC);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc != 0) {
        close(pfd[1]);
        errno = rc;
        return vs_error_errno(err, "compare: cannot run %s", argv[0]);
    }
    close(pfd[1]);

    char out[8192];
    size_t used = 0;
    bool timed_out = false, stopped = false;
    for (;;) {
        if (stop && *stop) {
            stopped = true;
            kill(pid, SIGKILL);
            break;
        }
        struct pollfd p = {.fd = rd, .events = POLLIN};
        int left = (int)(CMP_RUN_TIMEOUT_MS - (clock_ns(CLOCK_MONOTONIC) - t0) / 1000000);
        int r = left > 0 ? poll(&p, 1, left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            timed_out = true;
            kill(pid, SIGKILL);
            break;
        }
        ssize_t n = read(rd, out + used, sizeof(out) - 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        out[used] = 0;
        note_marker(out, "VESSEL-COMPARE-START ", &seen_start);
        note_marker(out, "VESSEL-RISCV-READY", &seen_ready);
        note_marker(out, "VESSEL-RUN-EXIT ", &seen_exit);
        if (used == sizeof(out) - 1) /* keep the tail: the result is the last line */
            memmove(out, out + sizeof(out) / 2, used -= sizeof(out) / 2);
    }
    out[used] = 0;
    int st = 0;
    struct rusage ru = {0};
    while (wait4(pid, &st, 0, &ru) < 0 && errno == EINTR)
        ;
    s->wall_ns = clock_ns(CLOCK_MONOTONIC) - t0;

    char why[300];
    last_line(efd, why, sizeof(why));
    if (stopped)
        return vs_error(err, EINTR, "compare: interrupted");
    if (timed_out)
        return vs_error(err, ETIMEDOUT, "%s timed out after %d s", argv[0],
                        CMP_RUN_TIMEOUT_MS / 1000);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return vs_error(err, 0, "%s %s %d%s%s", argv[0],
                        WIFEXITED(st) ? "exited" : "was killed by signal",
                        WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st), why[0] ? ": " : "", why);

    const char *m;
    if (how->guest_run) { /* a user's program in the riscv64 VM */
        int status = -1;
        m = strstr(out, "VESSEL-RUN-EXIT ");
        if (!m || sscanf(m, "VESSEL-RUN-EXIT %d", &status) != 1 || !seen_ready)
            return vs_error(err, 0, "%s: the guest did not run the program%s%s", argv[0],
                            strstr(out, "VESSEL-RUN-FAIL") ? ": " : "",
                            strstr(out, "VESSEL-RUN-FAIL") ? strstr(out, "VESSEL-RUN-FAIL") : "");
        if (status != 0)
            return vs_error(err, 0, "the program exited %d in the guest", status);
    }
    if (!workload) { /* a user's command: its time is the wall time */
        s->work_ns = how->guest_run ? seen_exit - seen_ready : s->wall_ns;
        s->start_ns = how->guest_run ? seen_ready - t0 : 0;
        s->ops = 1;
        s->rss_kb = ru.ru_maxrss;
        return 0;
    }
    unsigned long long start = 0, ns = 0, ops = 0, check = 0;
    long rss = 0;
    m = strstr(out, "VESSEL-COMPARE-START ");
    if (!m || sscanf(m, "VESSEL-COMPARE-START %llu", &start) != 1)
        return vs_error(err, 0, "%s printed no start marker", argv[0]);
    char want[64];
    snprintf(want, sizeof(want), "VESSEL-COMPARE-RESULT %s ", workload);
    m = strstr(out, want);
    if (!m || sscanf(m + strlen(want), "ns=%llu ops=%llu check=%llx rss_kb=%ld", &ns, &ops, &check,
                     &rss) != 4)
        return vs_error(err, 0, "%s printed no result for %s", argv[0], workload);
    /* the start marker is the workload's CLOCK_REALTIME at main(): the same
     * clock as ours in a container and under emulation (host syscalls) */
    s->start_ns = start > t0_real ? start - t0_real : 0;
    if (how->host_clock) /* a guest's clock is its own */
        s->start_ns = seen_start - t0;
    s->work_ns = ns;
    s->ops = ops;
    s->check = check;
    /* in a VM, the cost is the VMM's memory (the guest's included), not the
     * workload's own VmHWM (none in the KVM row's bare guest) */
    s->rss_kb = how->host_clock || rss < 0 ? ru.ru_maxrss : rss;
    return 0;
}
