/* Per-thread seccomp filters of a VM process (docs/security.md).
 *
 * Each thread of a VM process says what it is for (util/thread_role.h) when
 * it starts; the hook registered here loads that role's filter on the
 * thread. The filters are compiled once, before any thread exists, into
 * plain BPF programs, so a thread's install is one seccomp(2) call that
 * cannot fail for lack of memory. A filter is inherited by the threads a
 * thread starts and stacks with theirs: a vCPU thread started by the main
 * thread runs under main + vCPU (the vCPU list is the narrower), a device
 * added through the API under API + I/O.
 *
 * Anything outside a list traps (SECCOMP_RET_TRAP): the SIGSYS handler
 * writes which thread made which call, then the process dies of SIGSYS, as
 * with SECCOMP_RET_KILL_PROCESS but with a line that says why. The trapped
 * call never runs. --seccomp=log makes the default SCMP_ACT_LOG instead:
 * the call runs and the kernel logs it (dmesg: "audit: type=1326 ...
 * comm=THREAD ... syscall=NR").
 *
 * Arguments are checked where a call is dangerous in general but needed in
 * one form: ioctl by request number, clone only for threads (CLONE_THREAD;
 * clone3, whose flags sit in memory a filter cannot read, answers ENOSYS so
 * glibc falls back to clone), socket by address family, mmap and mprotect
 * without PROT_EXEC outside the API thread (which loads libmicrohttpd on
 * its first request), openat read-only on I/O threads, tgkill only within
 * this process. */
#include "jail/seccomp_vm.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <seccomp.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <termios.h>
#include <unistd.h>

#include <linux/if_tun.h>
#include <linux/kvm.h>
#include <linux/userfaultfd.h>

#include "util/log.h"

/* ---- the lists ---------------------------------------------------------

 * Every thread: memory, locks, time, its own exit, signals within the
 * process, reading and writing fds it already holds. */
static const char *const base_calls[] = {
    "read",
    "write",
    "readv",
    "writev",
    "close",
    "futex",
    "futex_waitv",
    "restart_syscall",
    "rt_sigreturn",
    "rt_sigprocmask",
    "exit",
    "exit_group",
    "munmap",
    "madvise",
    "brk",
    "mremap",
    "clock_gettime",
    "clock_getres",
    "clock_nanosleep",
    "nanosleep",
    "gettimeofday",
    "gettid",
    "getpid",
    "sched_yield",
    "sched_getaffinity",
    "getrandom",
    "rseq",
    "set_robust_list",
    "lseek",
    "fstat",
    "newfstatat",
    "statx",
    "fcntl",
    "dup",
    "dup3",
    "sigaltstack",
    "membarrier",
    "getuid",
    "geteuid",
    "getgid",
    "getegid",
    "sysinfo", /* the balloon's statistics, glibc's memory size queries */
    "getrusage",
    /* mmap and mprotect: without PROT_EXEC, see the rules below */
};

/* vCPU / hart threads run guest code and the device registers it touches
 * (MMIO and port exits: virtio notifies write eventfds, the UART queues to
 * the console thread, interrupts go through KVM). Nothing that opens,
 * creates, connects or starts anything. */
static const char *const vcpu_calls[] = {
    /* ioctl: by request number, kvm_vcpu_ioctls and tap_ioctls */
    "pread64",
    "pwrite64", /* virtio config space backed by files (none today) */
    /* vhost-user (virtio-fs): a guest's queue setup sends the backend its
     * messages and fds over the socket the device holds and waits for the
     * reply */
    "sendmsg",
    "recvmsg",
    "sendto",
    "recvfrom",
    "poll",
    "ppoll",
    "eventfd2",
};

/* Device workers, the event loop (user networking through libslirp, the
 * vsock bridge, timers), the console threads and the signal thread: I/O on
 * the fds they were given, io_uring for disks, sockets for slirp's
 * connections (AF_INET/AF_INET6) and vsock's per-port unix sockets, and
 * read-only opens (slirp reads /etc/resolv.conf, glib /dev/urandom). */
static const char *const io_calls[] = {
    "pread64",         "pwrite64",     "preadv",         "pwritev",
    "preadv2",         "pwritev2",     "io_uring_enter", "io_uring_register",
    "fsync",           "fdatasync",    "fallocate",      "poll",
    "ppoll",           "select",       "pselect6",       "epoll_wait",
    "epoll_pwait",     "epoll_pwait2", "epoll_ctl",      "accept",
    "accept4",         "connect",      "bind",           "listen",
    "getsockopt",      "setsockopt",   "getsockname",    "getpeername",
    "sendto",          "recvfrom",     "sendmsg",        "recvmsg",
    "sendmmsg",        "recvmmsg",     "shutdown",       "timerfd_settime",
    "timerfd_gettime", "eventfd2",     "uname",
    /* ioctl: by request number, tty_ioctls and tap_ioctls */
    /* socket: AF_UNIX, AF_INET, AF_INET6; openat: read-only; see the rules below */
};

/* The API thread and the main thread: what the I/O threads may do, plus
 * writing snapshots (directories, files, renames, sendfile between page
 * caches), restoring and hot-adding devices (new threads, io_uring rings,
 * KVM memory slots), loading libmicrohttpd (executable mappings) and, for
 * the main thread, booting again after a guest reboot (reading the kernel)
 * and tearing the machine down. */
static const char *const control_calls[] = {
    "openat", "open", "creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rmdir", "rename",
    "renameat", "renameat2", "ftruncate", "truncate", "sendfile", "copy_file_range", "splice",
    "getdents64", "readlink", "readlinkat", "access", "faccessat", "faccessat2", "stat", "lstat",
    "statfs", "fstatfs", "chmod", "fchmod", "fchmodat", "chown", "fchown", "fchownat", "umask",
    "utimensat", "flock", "syncfs", "sync_file_range", "epoll_create1", "pipe2", "socketpair",
    "io_uring_setup", "memfd_create",
    /* virtio-fs: stopping the virtiofsd it started at setup (its own
     * child; landlock's signal scope and the jail's PID namespace keep
     * any other process out of reach) */
    "kill", "waitid", "wait4", "getcwd", "sysinfo", "prctl", "rt_sigaction", "seccomp",
    "sched_setaffinity", "getrlimit", "prlimit64", "getppid", "mlock", "munlock", "msync",
    /* clone with CLONE_THREAD, tgkill, mmap/mprotect with PROT_EXEC: rules below */
};

/* KVM ioctls a vCPU thread makes: running, the register dump of a fatal
 * exit, and the interrupt routing a guest's MSI-X and virtio writes change
 * (src/x86/vcpu.c, irqchip.c). */
static const unsigned long kvm_vcpu_ioctls[] = {
    KVM_RUN,       KVM_GET_REGS,        KVM_GET_SREGS,       KVM_GET_FPU,
    KVM_GET_LAPIC, KVM_GET_MSRS,        KVM_GET_VCPU_EVENTS, KVM_GET_DEBUGREGS,
    KVM_IRQ_LINE,  KVM_SIGNAL_MSI,      KVM_SET_GSI_ROUTING, KVM_IRQFD,
    KVM_IOEVENTFD, KVM_CHECK_EXTENSION,
};

/* And the main and API threads: saving and loading every vCPU and the
 * irqchips, the clock, reboots (the vCPUs reset), memory slots and dirty
 * logs (src/x86/machine.c, vcpu.c, irqchip.c). */
static const unsigned long kvm_state_ioctls[] = {
    KVM_SET_REGS,
    KVM_SET_SREGS,
    KVM_SET_FPU,
    KVM_SET_LAPIC,
    KVM_SET_MSRS,
    KVM_SET_VCPU_EVENTS,
    KVM_SET_DEBUGREGS,
    KVM_GET_MP_STATE,
    KVM_SET_MP_STATE,
    KVM_GET_XSAVE,
    KVM_GET_XSAVE2,
    KVM_SET_XSAVE,
    KVM_GET_XCRS,
    KVM_SET_XCRS,
    KVM_GET_IRQCHIP,
    KVM_SET_IRQCHIP,
    KVM_GET_PIT2,
    KVM_SET_PIT2,
    KVM_GET_CLOCK,
    KVM_SET_CLOCK,
    KVM_GET_DIRTY_LOG,
    KVM_SET_USER_MEMORY_REGION,
    KVM_SET_CPUID2,
    KVM_GET_TSC_KHZ,
    KVM_SET_TSC_KHZ,
    KVM_KVMCLOCK_CTRL,
    /* what /dev/kvm offers (a snapshot's CPU-feature record, MSR lists) */
    KVM_GET_SUPPORTED_CPUID,
    KVM_GET_MSR_INDEX_LIST,
    KVM_GET_API_VERSION,
    KVM_GET_VCPU_MMAP_SIZE,
};

/* Host devices and terminals: the tap's offloads follow the guest's
 * feature negotiation (a vCPU write), the console's terminal is put back
 * on exit, slirp asks how much a socket holds. */
static const unsigned long tap_ioctls[] = {TUNSETOFFLOAD};
/* Post-copy migration's destination fills guest pages on demand
 * (src/migrate/postcopy.c: its fault and receive threads, and the
 * main thread that tears it down). */
static const unsigned long uffd_ioctls[] = {UFFDIO_COPY, UFFDIO_ZEROPAGE, UFFDIO_CONTINUE,
                                            UFFDIO_WAKE, UFFDIO_UNREGISTER};
static const unsigned long tty_ioctls[] = {TCGETS,     TCSETS,   TCSETSW, TCSETSF,
                                           TIOCGWINSZ, FIONREAD, FIONBIO};

/* ---- building them ------------------------------------------------------ */

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_PROG 4096

struct prog {
    struct sock_filter *insns;
    unsigned short len;
};

static struct prog g_progs[VS_THREAD_NROLES];
/* --jail: every thread takes the jail's ids (glibc's setxid broadcast) */
static bool g_jail;
static uint32_t g_jail_uid, g_jail_gid;
static bool g_ready;
static char g_names[512][24];
static __thread char t_name[40];
static __thread bool t_installed;

static int allow_names(scmp_filter_ctx ctx, const char *const *names, size_t n, vs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int nr = seccomp_syscall_resolve_name(names[i]);
        if (nr == __NR_SCMP_ERROR)
            continue; /* not on this architecture (open, stat on some) */
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, nr, 0);
        if (rc < 0)
            return vs_error(err, -rc, "seccomp: allowing %s: %s", names[i], strerror(-rc));
    }
    return 0;
}

static int allow_ioctls(scmp_filter_ctx ctx, const unsigned long *reqs, size_t n, vs_err *err)
{
    for (size_t i = 0; i < n; i++) {
        int rc = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(ioctl), 1,
                                  SCMP_A1_32(SCMP_CMP_EQ, (uint32_t)reqs[i]));
        if (rc < 0 && rc != -EEXIST)
            return vs_error(err, -rc, "seccomp: ioctl 0x%lx: %s", reqs[i], strerror(-rc));
    }
    return 0;
}

static int rule(scmp_filter_ctx ctx, int rc, const char *what, vs_err *err)
{
    if (rc < 0 && rc != -EEXIST)
        return vs_error(err, -rc, "seccomp: %s: %s", what, strerror(-rc));
    return 0;
}

static int build(scmp_filter_ctx ctx, enum vs_thread_role role, bool kvm, vs_err *err)
{
    bool control = role == VS_THREAD_MAIN || role == VS_THREAD_API;
    if (allow_names(ctx, base_calls, N(base_calls), err) < 0)
        return -1;
    /* glibc starts threads with clone3 when it can: ENOSYS sends it to clone */
    if (rule(ctx, seccomp_rule_add(ctx, SCMP_ACT_ERRNO(ENOSYS), SCMP_SYS(clone3), 0), "clone3",
             err) < 0)
        return -1;
    /* signals to this process's threads only (vCPU kicks, pthread_kill) */
    if (rule(ctx,
             seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(tgkill), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)getpid())),
             "tgkill", err) < 0)
        return -1;
    /* the SIGSYS reporter puts the default action back before it re-raises */
    if (rule(ctx,
             seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(rt_sigaction), 1,
                              SCMP_A0_32(SCMP_CMP_EQ, SIGSYS)),
             "rt_sigaction", err) < 0)
        return -1;
    if (g_jail &&
        (rule(ctx,
              seccomp_rule_add(
                  ctx, SCMP_ACT_ALLOW, SCMP_SYS(setresuid), 3, SCMP_A0_32(SCMP_CMP_EQ, g_jail_uid),
                  SCMP_A1_32(SCMP_CMP_EQ, g_jail_uid), SCMP_A2_32(SCMP_CMP_EQ, g_jail_uid)),
              "setresuid", err) ||
         rule(ctx,
              seccomp_rule_add(
                  ctx, SCMP_ACT_ALLOW, SCMP_SYS(setresgid), 3, SCMP_A0_32(SCMP_CMP_EQ, g_jail_gid),
                  SCMP_A1_32(SCMP_CMP_EQ, g_jail_gid), SCMP_A2_32(SCMP_CMP_EQ, g_jail_gid)),
              "setresgid", err) ||
         rule(ctx,
              seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(setgroups), 1,
                               SCMP_A0_32(SCMP_CMP_EQ, 0)),
              "setgroups", err)))
        return -1;
    if (control) {
        if (allow_names(ctx, control_calls, N(control_calls), err) < 0 ||
            allow_names(ctx, io_calls, N(io_calls), err) < 0)
            return -1;
        if (rule(ctx, seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 0), "mmap", err) ||
            rule(ctx, seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 0), "mprotect",
                 err) ||
            rule(ctx,
                 seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(clone), 1,
                                  SCMP_A0_64(SCMP_CMP_MASKED_EQ, CLONE_THREAD, CLONE_THREAD)),
                 "clone", err))
            return -1;
    } else {
        if (rule(ctx,
                 seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mmap), 1,
                                  SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
                 "mmap", err) ||
            rule(ctx,
                 seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(mprotect), 1,
                                  SCMP_A2_32(SCMP_CMP_MASKED_EQ, PROT_EXEC, 0)),
                 "mprotect", err))
            return -1;
    }
    if (role == VS_THREAD_IO && allow_names(ctx, io_calls, N(io_calls), err) < 0)
        return -1;
    /* read-only opens: no O_WRONLY, O_RDWR, O_CREAT or O_TRUNC. x86 vCPU
     * threads need them too: a stock Debian kernel under KVM had a vCPU
     * thread open a file while the guest booted (found in the nested lab) */
    if (role == VS_THREAD_IO || role == VS_THREAD_VCPU) {
        if (rule(ctx,
                 seccomp_rule_add(
                     ctx, SCMP_ACT_ALLOW, SCMP_SYS(openat), 1,
                     SCMP_A2_32(SCMP_CMP_MASKED_EQ, O_ACCMODE | O_CREAT | O_TRUNC | O_TMPFILE, 0)),
                 "openat", err) < 0)
            return -1;
    }
    if (role == VS_THREAD_VCPU && allow_names(ctx, vcpu_calls, N(vcpu_calls), err) < 0)
        return -1;
    if (role != VS_THREAD_VCPU) {
        static const int families[] = {AF_UNIX, AF_INET, AF_INET6};
        for (size_t i = 0; i < N(families); i++)
            if (rule(ctx,
                     seccomp_rule_add(ctx, SCMP_ACT_ALLOW, SCMP_SYS(socket), 1,
                                      SCMP_A0_32(SCMP_CMP_EQ, (uint32_t)families[i])),
                     "socket", err) < 0)
                return -1;
        /* netlink (routing, firewall) answers EAFNOSUPPORT: glibc's resolver
         * copes without it, and a VMM has no business there */
        if (rule(ctx,
                 seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EAFNOSUPPORT), SCMP_SYS(socket), 1,
                                  SCMP_A0_32(SCMP_CMP_EQ, AF_NETLINK)),
                 "socket", err) < 0)
            return -1;
        if (allow_ioctls(ctx, tty_ioctls, N(tty_ioctls), err) < 0 ||
            allow_ioctls(ctx, uffd_ioctls, N(uffd_ioctls), err) < 0)
            return -1;
    }
    if (allow_ioctls(ctx, tap_ioctls, N(tap_ioctls), err) < 0)
        return -1;
    if (kvm) {
        if (allow_ioctls(ctx, kvm_vcpu_ioctls, N(kvm_vcpu_ioctls), err) < 0)
            return -1;
        if (control && allow_ioctls(ctx, kvm_state_ioctls, N(kvm_state_ioctls), err) < 0)
            return -1;
    }
    return 0;
}

static int compile(enum vs_thread_role role, bool kvm, bool log, struct prog *out, vs_err *err)
{
    scmp_filter_ctx ctx = seccomp_init(log ? SCMP_ACT_LOG : SCMP_ACT_TRAP);
    if (!ctx)
        return vs_error(err, ENOMEM, "seccomp: cannot create a filter");
    int fd = -1, ret = -1;
    /* another architecture's calls (int 0x80 on x86-64) end the process */
    seccomp_attr_set(ctx, SCMP_FLTATR_ACT_BADARCH, SCMP_ACT_KILL_PROCESS);
    seccomp_attr_set(ctx, SCMP_FLTATR_CTL_OPTIMIZE, 2); /* a binary tree, not a list */
    if (build(ctx, role, kvm, err) < 0)
        goto out;
    fd = memfd_create("vessel-seccomp", MFD_CLOEXEC);
    if (fd < 0) {
        vs_error_errno(err, "seccomp: memfd_create");
        goto out;
    }
    int rc = seccomp_export_bpf(ctx, fd);
    if (rc < 0) {
        vs_error(err, -rc, "seccomp: compiling the %s list: %s", vs_thread_role_name(role),
                 strerror(-rc));
        goto out;
    }
    off_t len = lseek(fd, 0, SEEK_END);
    if (len <= 0 || len % sizeof(struct sock_filter) ||
        len / sizeof(struct sock_filter) > MAX_PROG) {
        vs_error(err, EINVAL, "seccomp: the %s list compiled to %lld bytes",
                 vs_thread_role_name(role), (long long)len);
        goto out;
    }
    free(out->insns);
    out->insns = malloc((size_t)len);
    if (!out->insns || pread(fd, out->insns, (size_t)len, 0) != len) {
        vs_error(err, EIO, "seccomp: reading the compiled %s list", vs_thread_role_name(role));
        goto out;
    }
    out->len = (unsigned short)(len / sizeof(struct sock_filter));
    ret = 0;
out:
    if (fd >= 0)
        close(fd);
    seccomp_release(ctx);
    return ret;
}

/* ---- the reporter ------------------------------------------------------ */

static size_t put(char *buf, size_t at, size_t cap, const char *s)
{
    while (*s && at + 1 < cap)
        buf[at++] = *s++;
    return at;
}

static size_t put_num(char *buf, size_t at, size_t cap, long v)
{
    char tmp[24];
    int n = 0;
    unsigned long u = v < 0 ? (unsigned long)-v : (unsigned long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u && n < (int)sizeof(tmp));
    if (v < 0 && at + 1 < cap)
        buf[at++] = '-';
    while (n && at + 1 < cap)
        buf[at++] = tmp[--n];
    return at;
}

/* Async-signal-safe: raw write(2), names looked up before any filter. */
static void sigsys_reporter(int sig, siginfo_t *si, void *uc)
{
    (void)uc;
    char msg[200];
    size_t n = put(msg, 0, sizeof(msg), "vessel: seccomp: thread ");
    n = put(msg, n, sizeof(msg), t_name[0] ? t_name : "?");
    n = put(msg, n, sizeof(msg), " made forbidden system call ");
    int nr = si->si_syscall;
    n = put(msg, n, sizeof(msg),
            nr >= 0 && nr < (int)N(g_names) && g_names[nr][0] ? g_names[nr] : "syscall");
    n = put(msg, n, sizeof(msg), "(");
    n = put_num(msg, n, sizeof(msg), nr);
    n = put(msg, n, sizeof(msg), "); the VM process is stopped\n");
    ssize_t w = syscall(SYS_write, 2, msg, n);
    (void)w;
    /* die of SIGSYS, as SECCOMP_RET_KILL_PROCESS would, with its default
     * action once it is unblocked; the first process of a PID namespace
     * (--jail) ignores it, and exits instead */
    struct sigaction dfl = {.sa_handler = SIG_DFL};
    sigaction(sig, &dfl, NULL);
    syscall(SYS_tgkill, getpid(), syscall(SYS_gettid), sig);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, sig);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
    syscall(SYS_exit_group, 128 + sig);
}

#ifdef VESSEL_TEST_HOOKS
/* VESSEL_TEST_SECCOMP_PROBE=CALL[@ROLE] (tests only): right after a thread
 * of ROLE (default vcpu) installs its filter, it makes CALL, one of execve,
 * open (/etc/shadow) or socket (AF_INET), none of which any list allows
 * there. */
static void test_probe(enum vs_thread_role role)
{
    const char *p = getenv("VESSEL_TEST_SECCOMP_PROBE");
    if (!p || !*p)
        return;
    char call[32];
    snprintf(call, sizeof(call), "%s", p);
    const char *want = "vcpu";
    char *at = strchr(call, '@');
    if (at) {
        *at = 0;
        want = strchr(p, '@') + 1;
    }
    if (strcmp(want, vs_thread_role_name(role)))
        return;
    if (!strcmp(call, "execve")) {
        char *argv[] = {"/bin/true", NULL};
        execve(argv[0], argv, argv + 1);
    } else if (!strcmp(call, "open")) {
        int fd = open("/etc/shadow", O_RDWR | O_CLOEXEC);
        if (fd >= 0)
            close(fd);
    } else if (!strcmp(call, "socket")) {
        int fd = socket(AF_PACKET, SOCK_RAW, 0);
        if (fd >= 0)
            close(fd);
    }
}
#endif

/* ---- installing -------------------------------------------------------- */

void jail_seccomp_enter(enum vs_thread_role role, const char *name)
{
    if (!g_ready || role >= VS_THREAD_NROLES || t_installed)
        return;
    char self[16] = "";
    if (!name) {
        prctl(PR_GET_NAME, self, 0, 0, 0);
        name = self;
    }
    snprintf(t_name, sizeof(t_name), "%s (%s)", name, vs_thread_role_name(role));
    /* the kernel resets a blocked SIGSYS to its default before delivering
     * it, and the reporter would not run (the console threads block all) */
    sigset_t sys;
    sigemptyset(&sys);
    sigaddset(&sys, SIGSYS);
    pthread_sigmask(SIG_UNBLOCK, &sys, NULL);
    struct sock_fprog fp = {.len = g_progs[role].len, .filter = g_progs[role].insns};
    if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fp) < 0) {
        /* fail closed: a thread must not run guest-facing code unfiltered */
        char msg[160];
        int n = snprintf(msg, sizeof(msg),
                         "vessel: seccomp: cannot install the %s filter on thread %s: %s\n",
                         vs_thread_role_name(role), name, strerror(errno));
        ssize_t w = write(2, msg, n > 0 ? (size_t)n : 0);
        (void)w;
        _exit(1);
    }
    t_installed = true;
#ifdef VESSEL_TEST_HOOKS
    test_probe(role);
#endif
}

static void hook(enum vs_thread_role role, const char *name)
{
    jail_seccomp_enter(role, name);
}

int jail_seccomp_prepare(const struct vm_config *cfg, vs_err *err)
{
    if (cfg->seccomp == VM_SECCOMP_OFF)
        return 0;
    bool kvm = cfg->arch == VM_ARCH_X86_64;
    g_jail = cfg->jail != NULL;
    g_jail_uid = cfg->jail_uid;
    g_jail_gid = cfg->jail_gid;
    for (int r = 0; r < VS_THREAD_NROLES; r++)
        if (compile((enum vs_thread_role)r, kvm, cfg->seccomp == VM_SECCOMP_LOG, &g_progs[r], err) <
            0)
            return -1;
    for (int nr = 0; nr < (int)N(g_names); nr++) {
        char *s = seccomp_syscall_resolve_num_arch(SCMP_ARCH_NATIVE, nr);
        if (s) {
            snprintf(g_names[nr], sizeof(g_names[nr]), "%s", s);
            free(s);
        }
    }
    struct sigaction sa = {.sa_sigaction = sigsys_reporter, .sa_flags = SA_SIGINFO};
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSYS, &sa, NULL) < 0)
        return vs_error_errno(err, "seccomp: SIGSYS handler");
    /* needed to load a filter without CAP_SYS_ADMIN; every thread started
     * from here on inherits it */
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
        return vs_error_errno(err, "seccomp: no_new_privs");
    g_ready = true;
    vs_thread_role_set_hook(hook);
    return 0;
}

void jail_seccomp_finish(void)
{
    vs_thread_role_set_hook(NULL);
}
