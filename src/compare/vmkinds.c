/* What the VM kinds of `vessel compare` need from the host: whether and how
 * far KVM can run the workload here, the TSC rate the KVM row's bare guest
 * keeps time with, the riscv64 VM's disks (the program on ext4, a scratch
 * disk for the disk workload) and the host's TCP sink for the net workload. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare/compare.h"
#include "util/cleanup.h"

const char *compare_kvm_check(const char **limit)
{
    *limit = NULL;
#if !defined(__x86_64__)
    return "the KVM row's guest is built for x86-64 hosts only";
#else
    if (access("/dev/kvm", F_OK) < 0)
        return "/dev/kvm does not exist on this host";
    if (access("/dev/kvm", R_OK | W_OK) < 0)
        return "/dev/kvm cannot be opened";
    /* PVM, a software KVM (the kvm_pvm module): it emulates a guest's
     * kernel-mode code instruction by instruction and cannot take a
     * non-PVM guest from ring 3 back into its kernel (SYSCALL and INT
     * triple-fault, I/O from ring 3 faults), so the workload cannot run as
     * guest user code with its output reaching the host. Only start-up runs:
     * the whole workload in the guest's kernel, a few hundred emulated
     * instructions. Measured in docs/compare.md. */
    if (access("/sys/module/kvm_pvm", F_OK) == 0)
        *limit = "this host's /dev/kvm is PVM (a software KVM): a guest's ring 3 cannot reach "
                 "its kernel, and kernel-mode code is emulated, so only start-up is measured";
    return NULL;
#endif
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_RAW, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

unsigned long compare_tsc_khz(void)
{
#if defined(__x86_64__)
    /* against the host's clock over 50 ms; the guest's TSC runs at the
     * host's rate (vessel sets no other) */
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t c0 = (uint64_t)hi << 32 | lo, t0 = mono_ns();
    struct timespec d = {0, 50 * 1000 * 1000};
    while (nanosleep(&d, &d) < 0 && errno == EINTR)
        ;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t c1 = (uint64_t)hi << 32 | lo, t1 = mono_ns();
    return (unsigned long)((c1 - c0) * 1000000u / (t1 - t0));
#else
    return 0;
#endif
}

static int run_quiet(const char *const argv[], vs_err *err)
{
    pid_t pid = fork();
    if (pid < 0)
        return vs_error_errno(err, "compare: fork");
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        return vs_error(
            err, 0, "compare: %s failed (exit %d)%s", argv[0], WIFEXITED(st) ? WEXITSTATUS(st) : -1,
            WIFEXITED(st) && WEXITSTATUS(st) == 127 ? ": not installed (e2fsprogs)" : "");
    return 0;
}

static int copy_to(const char *from, const char *to, vs_err *err)
{
    cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC);
    cleanup_close int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (in < 0 || out < 0)
        return vs_error_errno(err, "compare: copy %s", from);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return vs_error_errno(err, "compare: write %s", to);
    return n < 0 ? vs_error_errno(err, "compare: read %s", from) : 0;
}

int compare_make_run_disk(const char *img, const char *binary, vs_err *err)
{
    struct stat st;
    if (stat(binary, &st) < 0)
        return vs_error_errno(err, "compare: %s", binary);
    char dir[PATH_MAX], run[PATH_MAX + 8];
    if (snprintf(dir, sizeof(dir), "%s.d", img) >= (int)sizeof(dir))
        return vs_error(err, ENAMETOOLONG, "compare: path too long");
    snprintf(run, sizeof(run), "%s/run", dir);
    if (mkdir(dir, 0755) < 0 && errno != EEXIST)
        return vs_error_errno(err, "compare: mkdir %s", dir);
    if (copy_to(binary, run, err) < 0)
        return -1;
    /* room for the program and the file system's own blocks */
    char size[32];
    snprintf(size, sizeof(size), "%lluk", (unsigned long long)st.st_size / 1024 * 2 + 4096);
    const char *argv[] = {"mke2fs", "-q", "-F", "-t", "ext4", "-d", dir, img, size, NULL};
    int r = run_quiet(argv, err);
    unlink(run);
    rmdir(dir);
    return r;
}

int compare_make_scratch(const char *path, uint64_t bytes, vs_err *err)
{
    cleanup_close int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || ftruncate(fd, (off_t)bytes) < 0)
        return vs_error_errno(err, "compare: scratch disk %s", path);
    return 0;
}

static void *sink_thread(void *arg)
{
    int lfd = (int)(intptr_t)arg;
    static char buf[65536];
    for (;;) {
        int c = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (c < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return NULL;
        }
        uint64_t total = 0;
        ssize_t n;
        while ((n = read(c, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
            if (n > 0)
                total += (uint64_t)n;
        if (write(c, &total, 8) != 8) {
            /* the workload then reports the failure */
        }
        close(c);
    }
}

int compare_start_sink(int *port, vs_err *err)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sin = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sin);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 4) < 0 ||
        getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
        if (lfd >= 0)
            close(lfd);
        return vs_error_errno(err, "compare: the TCP sink");
    }
    pthread_t t;
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int r = pthread_create(&t, &a, sink_thread, (void *)(intptr_t)lfd);
    pthread_attr_destroy(&a);
    if (r) {
        close(lfd);
        errno = r;
        return vs_error_errno(err, "compare: the TCP sink's thread");
    }
    *port = ntohs(sin.sin_port);
    return 0;
}
