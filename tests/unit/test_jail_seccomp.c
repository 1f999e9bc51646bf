/* The per-thread seccomp lists (src/jail/seccomp_vm.c): each case runs in a
 * forked child (a filter cannot be taken off a process), which loads a
 * role's filter, makes calls the list allows, then one it does not; the
 * child must die of SIGSYS with the reporter's line naming the thread and
 * the call. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <linux/kvm.h>

#include "jail/seccomp_vm.h"

typedef void (*body_fn)(void);

/* Runs body in a child under role's filter (for arch, in mode); returns its
 * wait status and what it wrote to stderr. */
static int run_child(enum vm_arch arch, enum vm_seccomp mode, enum vs_thread_role role,
                     body_fn body, char *errbuf, size_t errlen)
{
    int p[2];
    assert_int_equal(pipe(p), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(p[0]);
        dup2(p[1], 2);
        struct vm_config cfg;
        vm_config_init(&cfg);
        cfg.arch = arch;
        cfg.seccomp = mode;
        vs_err err = {0};
        if (jail_seccomp_prepare(&cfg, &err) < 0) {
            dprintf(2, "prepare: %s\n", err.msg);
            _exit(3);
        }
        vs_thread_role_enter(role, "test-thread");
        body();
        _exit(0);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t r;
    while (n + 1 < errlen && (r = read(p[0], errbuf + n, errlen - 1 - n)) > 0)
        n += (size_t)r;
    errbuf[n] = 0;
    close(p[0]);
    int st;
    assert_int_equal(waitpid(pid, &st, 0), pid);
    return st;
}

static void expect_killed(int st, const char *err, const char *call)
{
    if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGSYS)
        fail_msg("expected death by SIGSYS for %s, got status 0x%x, stderr: %s", call, st, err);
    char want[96];
    snprintf(want, sizeof(want), "made forbidden system call %s(", call);
    if (!strstr(err, "vessel: seccomp: thread test-thread") || !strstr(err, want))
        fail_msg("no report of %s in: %s", call, err);
}

static void expect_ok(int st, const char *err)
{
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
        fail_msg("expected a clean exit, got status 0x%x, stderr: %s", st, err);
}

/* what every thread does: memory, time, writing to an fd it holds */
static void common_work(void)
{
    void *m = mmap(NULL, 1 << 20, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        _exit(4);
    memset(m, 1, 1 << 20);
    munmap(m, 1 << 20);
    free(malloc(100000));
    struct timespec ts = {0, 1000};
    nanosleep(&ts, NULL);
    if (write(1, "", 0) < 0)
        _exit(5);
}

/* vCPU threads may read files (an x86 vCPU thread opens one while a Debian
 * kernel boots), never write or create them */
static void vcpu_open(void)
{
    common_work();
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        _exit(10);
    close(fd);
    open("/tmp/vessel-seccomp-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
}

static void vcpu_exec_mapping(void)
{
    common_work();
    mmap(NULL, 4096, PROT_READ | PROT_EXEC, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
}

static void vcpu_socket(void)
{
    common_work();
    socket(AF_UNIX, SOCK_STREAM, 0);
}

static void io_reads_then_writes(void)
{
    common_work();
    int fd = open("/etc/passwd", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        _exit(6);
    close(fd);
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0)
        _exit(7);
    close(s);
    open("/tmp/vessel-seccomp-test", O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
}

static void io_raw_socket(void)
{
    socket(AF_PACKET, SOCK_RAW, 0);
}

static void *thread_body(void *arg)
{
    return arg;
}

static void main_threads_then_fork(void)
{
    common_work();
    pthread_t t;
    if (pthread_create(&t, NULL, thread_body, NULL) != 0)
        _exit(8);
    pthread_join(t, NULL);
    fork();
}

static void main_execve(void)
{
    char *argv[] = {"/bin/true", NULL};
    execve(argv[0], argv, argv + 1);
}

static void *vcpu_thread_opens(void *arg)
{
    vs_thread_role_enter(VS_THREAD_VCPU, "test-thread");
    open("/etc/passwd", O_RDWR);
    return arg;
}

/* a vCPU thread started by the main thread: main's list and the vCPU's */
static void main_starts_vcpu(void)
{
    pthread_t t;
    if (pthread_create(&t, NULL, vcpu_thread_opens, NULL) != 0)
        _exit(8);
    pthread_join(t, NULL);
}

static void x86_vcpu_ioctls(void)
{
    int fd = 0;
    /* KVM_RUN on stdin: allowed (the kernel answers ENOTTY) */
    if (ioctl(fd, KVM_RUN, 0) == 0 || errno != ENOTTY)
        _exit(9);
    struct termios t;
    tcgetattr(fd, &t);
}

static void log_mode_lets_it_run(void)
{
    int fd = open("/etc/passwd", O_RDONLY);
    if (fd < 0)
        _exit(10);
    close(fd);
}

static void test_vcpu_list(void **state)
{
    (void)state;
    char err[4096];
    expect_killed(
        run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_VCPU, vcpu_open, err, sizeof(err)), err,
        "openat");
    expect_killed(run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_VCPU, vcpu_exec_mapping, err,
                            sizeof(err)),
                  err, "mmap");
    expect_killed(
        run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_VCPU, vcpu_socket, err, sizeof(err)),
        err, "socket");
    expect_killed(
        run_child(VM_ARCH_X86_64, VM_SECCOMP_ON, VS_THREAD_VCPU, x86_vcpu_ioctls, err, sizeof(err)),
        err, "ioctl");
}

static void test_io_list(void **state)
{
    (void)state;
    char err[4096];
    expect_killed(run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_IO, io_reads_then_writes, err,
                            sizeof(err)),
                  err, "openat");
    expect_killed(
        run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_IO, io_raw_socket, err, sizeof(err)),
        err, "socket");
}

static void test_main_list(void **state)
{
    (void)state;
    char err[4096];
    expect_killed(run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_MAIN, main_threads_then_fork,
                            err, sizeof(err)),
                  err, "clone");
    expect_killed(
        run_child(VM_ARCH_X86_64, VM_SECCOMP_ON, VS_THREAD_API, main_execve, err, sizeof(err)), err,
        "execve");
    expect_killed(run_child(VM_ARCH_RISCV64, VM_SECCOMP_ON, VS_THREAD_MAIN, main_starts_vcpu, err,
                            sizeof(err)),
                  err, "openat");
}

static void test_log_and_off(void **state)
{
    (void)state;
    char err[4096];
    expect_ok(run_child(VM_ARCH_RISCV64, VM_SECCOMP_LOG, VS_THREAD_VCPU, log_mode_lets_it_run, err,
                        sizeof(err)),
              err);
    expect_ok(run_child(VM_ARCH_RISCV64, VM_SECCOMP_OFF, VS_THREAD_VCPU, log_mode_lets_it_run, err,
                        sizeof(err)),
              err);
}

/* --bench: nanoseconds per gettid() (allowed in every list) without a
 * filter and under each role's, in forked children (bench/isolation). */
static double ns_per_call(enum vs_thread_role role, bool filtered)
{
    int p[2];
    if (pipe(p) < 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(p[0]);
        if (filtered) {
            struct vm_config cfg;
            vm_config_init(&cfg);
            cfg.arch = VM_ARCH_X86_64;
            vs_err err = {0};
            if (jail_seccomp_prepare(&cfg, &err) < 0)
                _exit(1);
            vs_thread_role_enter(role, "bench");
        }
        const long n = 2000000;
        struct timespec a, b;
        double best = 1e9;
        for (int round = 0; round < 5; round++) {
            clock_gettime(CLOCK_MONOTONIC, &a);
            for (long i = 0; i < n; i++)
                syscall(SYS_gettid);
            clock_gettime(CLOCK_MONOTONIC, &b);
            double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / n;
            if (ns < best)
                best = ns;
        }
        if (write(p[1], &best, sizeof(best)) != sizeof(best))
            _exit(1);
        _exit(0);
    }
    close(p[1]);
    double v = -1;
    if (read(p[0], &v, sizeof(v)) != sizeof(v))
        v = -1;
    close(p[0]);
    waitpid(pid, NULL, 0);
    return v;
}

static int bench(void)
{
    double none = ns_per_call(VS_THREAD_MAIN, false);
    printf("syscall cost (gettid, best of 5 x 2M): no filter %.1f ns\n", none);
    for (int r = 0; r < VS_THREAD_NROLES; r++) {
        double v = ns_per_call((enum vs_thread_role)r, true);
        printf("  %-4s list (x86_64, KVM ioctls): %.1f ns (+%.1f ns)\n",
               vs_thread_role_name((enum vs_thread_role)r), v, v - none);
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc > 1 && !strcmp(argv[1], "--bench"))
        return bench();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vcpu_list),
        cmocka_unit_test(test_io_list),
        cmocka_unit_test(test_main_list),
        cmocka_unit_test(test_log_and_off),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
