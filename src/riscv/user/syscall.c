/* Linux riscv64 system calls (asm-generic numbering) translated to the
 * host. Most calls pass straight through after guest pointers are bounds-
 * checked and turned into host pointers; struct stat is converted (its
 * layout differs between asm-generic and x86_64); memory management works
 * on the emulator's own address space. One thread, no signal delivery. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysinfo.h>
#include <sys/time.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <signal.h>
#include <linux/futex.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "riscv/hart.h"
#include "riscv/user/emu.h"

enum {
    NR_getcwd = 17,
    NR_dup = 23,
    NR_dup3 = 24,
    NR_fcntl = 25,
    NR_ioctl = 29,
    NR_mkdirat = 34,
    NR_unlinkat = 35,
    NR_renameat = 38,
    NR_ftruncate = 46,
    NR_faccessat = 48,
    NR_chdir = 49,
    NR_fchmod = 52,
    NR_openat = 56,
    NR_close = 57,
    NR_pipe2 = 59,
    NR_getdents64 = 61,
    NR_lseek = 62,
    NR_read = 63,
    NR_write = 64,
    NR_readv = 65,
    NR_writev = 66,
    NR_pread64 = 67,
    NR_pwrite64 = 68,
    NR_ppoll = 73,
    NR_readlinkat = 78,
    NR_newfstatat = 79,
    NR_fstat = 80,
    NR_fsync = 82,
    NR_fdatasync = 83,
    NR_exit = 93,
    NR_exit_group = 94,
    NR_set_tid_address = 96,
    NR_futex = 98,
    NR_set_robust_list = 99,
    NR_nanosleep = 101,
    NR_clock_gettime = 113,
    NR_clock_getres = 114,
    NR_clock_nanosleep = 115,
    NR_sched_getaffinity = 123,
    NR_sched_yield = 124,
    NR_kill = 129,
    NR_tkill = 130,
    NR_tgkill = 131,
    NR_sigaltstack = 132,
    NR_rt_sigaction = 134,
    NR_rt_sigprocmask = 135,
    NR_rt_sigreturn = 139,
    NR_times = 153,
    NR_uname = 160,
    NR_getrlimit = 163,
    NR_getrusage = 165,
    NR_umask = 166,
    NR_prctl = 167,
    NR_gettimeofday = 169,
    NR_getpid = 172,
    NR_getppid = 173,
    NR_getuid = 174,
    NR_geteuid = 175,
    NR_getgid = 176,
    NR_getegid = 177,
    NR_gettid = 178,
    NR_sysinfo = 179,
    NR_brk = 214,
    NR_munmap = 215,
    NR_mremap = 216,
    NR_mmap = 222,
    NR_mprotect = 226,
    NR_madvise = 233,
    NR_riscv_hwprobe = 258,
    NR_riscv_flush_icache = 259,
    NR_prlimit64 = 261,
    NR_getrandom = 278,
    NR_statx = 291,
    NR_rseq = 293,
    NR_clone = 220,
    NR_clone3 = 435,
    NR_renameat2 = 276,
};

/* asm-generic struct stat (riscv64) */
struct rv_stat {
    uint64_t st_dev, st_ino;
    uint32_t st_mode, st_nlink, st_uid, st_gid;
    uint64_t st_rdev, pad1;
    int64_t st_size;
    int32_t st_blksize, pad2;
    int64_t st_blocks;
    int64_t st_atime_, st_atime_nsec, st_mtime_, st_mtime_nsec, st_ctime_, st_ctime_nsec;
    uint32_t unused4, unused5;
};

#define G(u, addr, len) rv_user_ptr((u), (addr), (len))

static long neg_errno(long r)
{
    return r < 0 ? -errno : r;
}

/* NUL-terminated guest string; NULL if it runs off the address space. */
static const char *gstr(struct rv_user *u, uint64_t addr)
{
    const char *p = G(u, addr, 1);
    if (!p)
        return NULL;
    size_t max = RV_USER_END - addr;
    if (max > 65536)
        max = 65536;
    if (!memchr(p, 0, max))
        return NULL;
    return p;
}

static long put_stat(struct rv_user *u, uint64_t addr, const struct stat *st)
{
    struct rv_stat *g = G(u, addr, sizeof(*g));
    if (!g)
        return -EFAULT;
    memset(g, 0, sizeof(*g));
    g->st_dev = st->st_dev;
    g->st_ino = st->st_ino;
    g->st_mode = st->st_mode;
    g->st_nlink = (uint32_t)st->st_nlink;
    g->st_uid = st->st_uid;
    g->st_gid = st->st_gid;
    g->st_rdev = st->st_rdev;
    g->st_size = st->st_size;
    g->st_blksize = (int32_t)st->st_blksize;
    g->st_blocks = st->st_blocks;
    g->st_atime_ = st->st_atim.tv_sec;
    g->st_atime_nsec = st->st_atim.tv_nsec;
    g->st_mtime_ = st->st_mtim.tv_sec;
    g->st_mtime_nsec = st->st_mtim.tv_nsec;
    g->st_ctime_ = st->st_ctim.tv_sec;
    g->st_ctime_nsec = st->st_ctim.tv_nsec;
    return 0;
}

static long do_iov(struct rv_user *u, int fd, uint64_t iov_addr, uint64_t cnt, bool write)
{
    if (cnt > 1024)
        return -EINVAL;
    const uint64_t *giov = G(u, iov_addr, cnt * 16);
    if (!giov && cnt)
        return -EFAULT;
    struct iovec iov[1024];
    for (uint64_t i = 0; i < cnt; i++) {
        uint64_t base = giov[2 * i], len = giov[2 * i + 1];
        void *p = len ? G(u, base, len) : NULL;
        if (len && !p)
            return -EFAULT;
        iov[i].iov_base = p;
        iov[i].iov_len = len;
    }
    return neg_errno(write ? writev(fd, iov, (int)cnt) : readv(fd, iov, (int)cnt));
}

static uint64_t mmap_alloc(struct rv_user *u, uint64_t len)
{
    uint64_t pages = len >> 12, total = (RV_USER_MMAP_END - RV_USER_MMAP_START) >> 12;
    /* first fit from the top, like Linux's top-down allocator */
    uint64_t run = 0;
    for (uint64_t i = total; i-- > 0;) {
        if (u->mmap_used[i]) {
            run = 0;
            continue;
        }
        if (++run == pages) {
            memset(u->mmap_used + i, 1, pages);
            return RV_USER_MMAP_START + (i << 12);
        }
    }
    return 0;
}

static void mmap_mark(struct rv_user *u, uint64_t addr, uint64_t len, uint8_t v)
{
    uint64_t lo = addr < RV_USER_MMAP_START ? RV_USER_MMAP_START : addr;
    uint64_t hi = addr + len > RV_USER_MMAP_END ? RV_USER_MMAP_END : addr + len;
    if (lo < hi)
        memset(u->mmap_used + ((lo - RV_USER_MMAP_START) >> 12), v, (hi - lo) >> 12);
}

static void zero_range(struct rv_user *u, uint64_t addr, uint64_t len)
{
    void *p = G(u, addr, len);
    if (p && len)
        madvise(p, len, MADV_DONTNEED); /* private anonymous: reads back as zero */
}

static long do_mmap(struct rv_user *u, uint64_t addr, uint64_t len, int prot, int flags, int fd,
                    uint64_t off)
{
    if (!len || (off & 4095))
        return -EINVAL;
    len = (len + 4095) & ~4095ull;
    if (len > RV_USER_MMAP_END - RV_USER_MMAP_START)
        return -ENOMEM;
    uint64_t va;
    if (flags & MAP_FIXED) {
        if ((addr & 4095) || !G(u, addr, len))
            return -EINVAL;
        va = addr;
        mmap_mark(u, va, len, 1);
    } else {
        va = mmap_alloc(u, len);
        if (!va)
            return -ENOMEM;
    }
    zero_range(u, va, len);
    if (!(flags & MAP_ANONYMOUS)) {
        uint8_t *p = G(u, va, len);
        uint64_t done = 0;
        while (done < len) {
            ssize_t n = pread(fd, p + done, len - done, (off_t)(off + done));
            if (n < 0) {
                long e = -errno;
                if (!(flags & MAP_FIXED))
                    mmap_mark(u, va, len, 0);
                return e;
            }
            if (n == 0)
                break;
            done += (uint64_t)n;
        }
    }
    return (long)va;
}

static long do_brk(struct rv_user *u, uint64_t want)
{
    if (want < u->brk_start || want > u->brk_limit)
        return (long)u->brk_cur;
    uint64_t old_top = (u->brk_cur + 4095) & ~4095ull, new_top = (want + 4095) & ~4095ull;
    if (new_top < old_top)
        zero_range(u, new_top, old_top - new_top);
    u->brk_cur = want;
    return (long)want;
}

static long do_readlinkat(struct rv_user *u, int dirfd, uint64_t path_addr, uint64_t buf,
                          uint64_t len)
{
    const char *path = gstr(u, path_addr);
    char *b = G(u, buf, len);
    if (!path || (!b && len))
        return -EFAULT;
    if (!strcmp(path, "/proc/self/exe")) {
        size_t n = strlen(u->exe_path);
        if (n > len)
            n = len;
        memcpy(b, u->exe_path, n);
        return (long)n;
    }
    return neg_errno(readlinkat(dirfd, path, b, len));
}

static long do_ioctl(struct rv_user *u, int fd, uint64_t req, uint64_t arg)
{
    switch (req) {
    case TCGETS: {
        void *p = G(u, arg, 36); /* struct termios (kernel, asm-generic) */
        if (!p)
            return -EFAULT;
        return neg_errno(ioctl(fd, TCGETS, p));
    }
    case TIOCGWINSZ: {
        void *p = G(u, arg, sizeof(struct winsize));
        if (!p)
            return -EFAULT;
        return neg_errno(ioctl(fd, TIOCGWINSZ, p));
    }
    case TIOCGPGRP: {
        void *p = G(u, arg, sizeof(pid_t));
        if (!p)
            return -EFAULT;
        return neg_errno(ioctl(fd, TIOCGPGRP, p));
    }
    case FIONREAD: {
        void *p = G(u, arg, sizeof(int));
        if (!p)
            return -EFAULT;
        return neg_errno(ioctl(fd, FIONREAD, p));
    }
    }
    return -ENOTTY;
}

static long dispatch(struct rv_user *u, struct rv_hart *h, uint64_t nr, const uint64_t *a)
{
    int dfd = (int)a[0];
    switch (nr) {
    case NR_read: {
        void *p = G(u, a[1], a[2]);
        if (!p && a[2])
            return -EFAULT;
        return neg_errno(read(dfd, p, a[2]));
    }
    case NR_write: {
        void *p = G(u, a[1], a[2]);
        if (!p && a[2])
            return -EFAULT;
        return neg_errno(write(dfd, p, a[2]));
    }
    case NR_pread64:
    case NR_pwrite64: {
        void *p = G(u, a[1], a[2]);
        if (!p && a[2])
            return -EFAULT;
        return neg_errno(nr == NR_pread64 ? pread(dfd, p, a[2], (off_t)a[3])
                                          : pwrite(dfd, p, a[2], (off_t)a[3]));
    }
    case NR_readv:
    case NR_writev:
        return do_iov(u, dfd, a[1], a[2], nr == NR_writev);
    case NR_openat: {
        const char *path = gstr(u, a[1]);
        if (!path)
            return -EFAULT;
        return neg_errno(openat(dfd, path, (int)a[2], (mode_t)a[3]));
    }
    case NR_close:
        return neg_errno(close(dfd));
    case NR_lseek:
        return neg_errno(lseek(dfd, (off_t)a[1], (int)a[2]));
    case NR_dup:
        return neg_errno(dup(dfd));
    case NR_dup3:
        return neg_errno(dup3(dfd, (int)a[1], (int)a[2]));
    case NR_fcntl:
        switch ((int)a[1]) {
        case F_GETFD:
        case F_SETFD:
        case F_GETFL:
        case F_SETFL:
        case F_DUPFD:
        case F_DUPFD_CLOEXEC:
            return neg_errno(fcntl(dfd, (int)a[1], (long)a[2]));
        }
        return -EINVAL;
    case NR_ioctl:
        return do_ioctl(u, dfd, a[1], a[2]);
    case NR_fstat: {
        struct stat st;
        if (fstat(dfd, &st) < 0)
            return -errno;
        return put_stat(u, a[1], &st);
    }
    case NR_newfstatat: {
        const char *path = gstr(u, a[1]);
        struct stat st;
        if (!path)
            return -EFAULT;
        if (fstatat(dfd, path, &st, (int)a[3]) < 0)
            return -errno;
        return put_stat(u, a[2], &st);
    }
    case NR_statx: {
        const char *path = gstr(u, a[1]);
        void *p = G(u, a[4], sizeof(struct statx));
        if (!path || !p)
            return -EFAULT;
        return neg_errno(statx(dfd, path, (int)a[2], (unsigned)a[3], p));
    }
    case NR_getdents64: {
        void *p = G(u, a[1], a[2]);
        if (!p)
            return -EFAULT;
        return neg_errno(syscall(SYS_getdents64, dfd, p, a[2]));
    }
    case NR_readlinkat:
        return do_readlinkat(u, dfd, a[1], a[2], a[3]);
    case NR_faccessat: {
        const char *path = gstr(u, a[1]);
        if (!path)
            return -EFAULT;
        return neg_errno(faccessat(dfd, path, (int)a[2], 0));
    }
    case NR_getcwd: {
        char *p = G(u, a[0], a[1]);
        if (!p)
            return -EFAULT;
        if (!getcwd(p, a[1]))
            return -errno;
        return (long)strlen(p) + 1;
    }
    case NR_chdir: {
        const char *path = gstr(u, a[0]);
        if (!path)
            return -EFAULT;
        return neg_errno(chdir(path));
    }
    case NR_mkdirat: {
        const char *path = gstr(u, a[1]);
        if (!path)
            return -EFAULT;
        return neg_errno(mkdirat(dfd, path, (mode_t)a[2]));
    }
    case NR_unlinkat: {
        const char *path = gstr(u, a[1]);
        if (!path)
            return -EFAULT;
        return neg_errno(unlinkat(dfd, path, (int)a[2]));
    }
    case NR_renameat:
    case NR_renameat2: {
        const char *from = gstr(u, a[1]), *to = gstr(u, a[3]);
        if (!from || !to)
            return -EFAULT;
        return neg_errno(
            renameat2(dfd, from, (int)a[2], to, nr == NR_renameat2 ? (unsigned)a[4] : 0));
    }
    case NR_ftruncate:
        return neg_errno(ftruncate(dfd, (off_t)a[1]));
    case NR_fsync:
        return neg_errno(fsync(dfd));
    case NR_fdatasync:
        return neg_errno(fdatasync(dfd));
    case NR_fchmod:
        return neg_errno(fchmod(dfd, (mode_t)a[1]));
    case NR_pipe2: {
        int *p = G(u, a[0], 8);
        if (!p)
            return -EFAULT;
        return neg_errno(pipe2(p, (int)a[1]));
    }
    case NR_ppoll: {
        /* struct pollfd and timespec have the same layout; the signal mask
         * is not applied (no asynchronous signals are delivered anyway) */
        if (a[1] > 4096)
            return -EINVAL;
        struct pollfd *fds = a[1] ? G(u, a[0], a[1] * sizeof(struct pollfd)) : NULL;
        const struct timespec *ts = a[2] ? G(u, a[2], sizeof(*ts)) : NULL;
        if ((a[1] && !fds) || (a[2] && !ts))
            return -EFAULT;
        return neg_errno(ppoll(fds, (nfds_t)a[1], ts, NULL));
    }
    case NR_exit:
        rv_user_thread_exit(u, h, (int)(a[0] & 0xff));
        return 0;
    case NR_exit_group:
        rv_user_exit_group(u, (int)(a[0] & 0xff));
        return 0;
    case NR_clone:
        return rv_user_clone(u, h, a);
    case NR_clone3:
        return -ENOSYS; /* glibc falls back to clone */
    case NR_set_tid_address: {
        struct rv_user_thread *t = rv_user_thread_of(u, h);
        if (t)
            t->clear_tid = a[0];
        else
            u->main_clear_tid = a[0];
        return t ? t->tid : getpid();
    }
    case NR_gettid: {
        struct rv_user_thread *t = rv_user_thread_of(u, h);
        return t ? t->tid : getpid();
    }
    case NR_getpid:
        return getpid();
    case NR_getppid:
        return getppid();
    case NR_getuid:
        return getuid();
    case NR_geteuid:
        return geteuid();
    case NR_getgid:
        return getgid();
    case NR_getegid:
        return getegid();
    case NR_rt_sigaction:
        return rv_user_sigaction(u, (int)a[0], a[1], a[2]);
    case NR_rt_sigreturn:
        return rv_user_sigreturn(u);
    case NR_riscv_flush_icache:
    case NR_mprotect:
        /* code was written or changed protection: drop translations */
        rv_hart_code_changed(h);
        return 0;
    case NR_set_robust_list:
    case NR_sigaltstack:
    case NR_madvise:
    case NR_sched_yield:
        return 0;
    case NR_rt_sigprocmask:
        return rv_user_sigprocmask(u, (int)a[0], a[1], a[2]);
    case NR_prctl:
        return -EINVAL;
    case NR_rseq:
    case NR_riscv_hwprobe:
    case NR_mremap:
        return -ENOSYS;
    case NR_futex: {
        /* guest memory is host memory: the host futex works across threads */
        int op = (int)a[1], cmd = op & ~(FUTEX_PRIVATE_FLAG | FUTEX_CLOCK_REALTIME);
        uint32_t *p = G(u, a[0], 4), *p2 = NULL;
        if (!p || (a[0] & 3))
            return -EFAULT;
        const struct timespec *ts = NULL;
        if (cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) {
            if (a[3] && !(ts = G(u, a[3], sizeof(*ts))))
                return -EFAULT;
        }
        if (cmd == FUTEX_REQUEUE || cmd == FUTEX_CMP_REQUEUE || cmd == FUTEX_WAKE_OP) {
            if (!(p2 = G(u, a[4], 4)))
                return -EFAULT;
            /* for these, the timeout argument is a count (val2) */
            return neg_errno(syscall(SYS_futex, p, op, (uint32_t)a[2], (void *)(uintptr_t)a[3], p2,
                                     (uint32_t)a[5]));
        }
        if (cmd != FUTEX_WAIT && cmd != FUTEX_WAKE && cmd != FUTEX_WAIT_BITSET &&
            cmd != FUTEX_WAKE_BITSET)
            return -ENOSYS;
        if ((cmd == FUTEX_WAIT || cmd == FUTEX_WAIT_BITSET) && !ts) {
            /* an unbounded wait sleeps in slices, so exit_group() from
             * another thread can end the program (spurious wakeups are
             * allowed by the futex contract) */
            for (;;) {
                struct timespec slice;
                if (cmd == FUTEX_WAIT) {
                    slice = (struct timespec){0, 100000000};
                } else {
                    clock_gettime(op & FUTEX_CLOCK_REALTIME ? CLOCK_REALTIME : CLOCK_MONOTONIC,
                                  &slice);
                    slice.tv_nsec += 100000000;
                    if (slice.tv_nsec >= 1000000000) {
                        slice.tv_sec++;
                        slice.tv_nsec -= 1000000000;
                    }
                }
                long r = syscall(SYS_futex, p, op, (uint32_t)a[2], &slice, NULL, (uint32_t)a[5]);
                if (r == 0 || (r < 0 && errno != ETIMEDOUT))
                    return neg_errno(r);
                if (__atomic_load_n(&u->exited, __ATOMIC_ACQUIRE))
                    return -EINTR;
            }
        }
        return neg_errno(syscall(SYS_futex, p, op, (uint32_t)a[2], ts, NULL, (uint32_t)a[5]));
    }
    case NR_kill:
    case NR_tkill:
    case NR_tgkill: {
        int sig = (int)(nr == NR_tgkill ? a[2] : a[1]);
        pid_t target = (pid_t)(nr == NR_tgkill ? a[1] : a[0]);
        if (sig < 0 || sig > 64)
            return -EINVAL;
        if (nr == NR_kill && target != getpid() && target != 0 && target != -1)
            return neg_errno(kill(target, sig)); /* another process */
        if (sig == 0)
            return 0;
        /* to ourselves: delivered when the system call returns */
        u->sigpending |= 1ull << (sig - 1);
        return 0;
    }
    case NR_uname: {
        struct utsname *p = G(u, a[0], sizeof(struct utsname));
        if (!p)
            return -EFAULT;
        if (uname(p) < 0)
            return -errno;
        snprintf(p->machine, sizeof(p->machine), "riscv64");
        return 0;
    }
    case NR_clock_gettime: {
        struct timespec *p = G(u, a[1], sizeof(*p));
        if (!p)
            return -EFAULT;
        return neg_errno(clock_gettime((clockid_t)a[0], p));
    }
    case NR_clock_getres: {
        struct timespec *p = a[1] ? G(u, a[1], sizeof(*p)) : NULL;
        if (a[1] && !p)
            return -EFAULT;
        return neg_errno(clock_getres((clockid_t)a[0], p));
    }
    case NR_gettimeofday: {
        struct timeval *p = a[0] ? G(u, a[0], sizeof(*p)) : NULL;
        if (a[0] && !p)
            return -EFAULT;
        return neg_errno(syscall(SYS_gettimeofday, p, NULL));
    }
    case NR_nanosleep: {
        const struct timespec *req = G(u, a[0], sizeof(*req));
        struct timespec *rem = a[1] ? G(u, a[1], sizeof(*rem)) : NULL;
        if (!req)
            return -EFAULT;
        return neg_errno(nanosleep(req, rem));
    }
    case NR_clock_nanosleep: {
        const struct timespec *req = G(u, a[2], sizeof(*req));
        struct timespec *rem = a[3] ? G(u, a[3], sizeof(*rem)) : NULL;
        if (!req)
            return -EFAULT;
        return -clock_nanosleep((clockid_t)a[0], (int)a[1], req, rem);
    }
    case NR_times: {
        void *p = a[0] ? G(u, a[0], 32) : NULL;
        return neg_errno(syscall(SYS_times, p));
    }
    case NR_getrlimit: {
        void *p = G(u, a[1], 16);
        if (!p)
            return -EFAULT;
        return neg_errno(getrlimit((int)a[0], p));
    }
    case NR_prlimit64: {
        const void *n = a[2] ? G(u, a[2], 16) : NULL;
        void *o = a[3] ? G(u, a[3], 16) : NULL;
        if ((a[2] && !n) || (a[3] && !o))
            return -EFAULT;
        if (n) /* the emulator's own limits stay as they are */
            return o ? neg_errno(prlimit((pid_t)a[0], (int)a[1], NULL, o)) : 0;
        return neg_errno(prlimit((pid_t)a[0], (int)a[1], NULL, o));
    }
    case NR_getrusage: {
        void *p = G(u, a[1], sizeof(struct rusage));
        if (!p)
            return -EFAULT;
        return neg_errno(getrusage((int)a[0], p));
    }
    case NR_sysinfo: {
        void *p = G(u, a[0], sizeof(struct sysinfo));
        if (!p)
            return -EFAULT;
        return neg_errno(sysinfo(p));
    }
    case NR_umask:
        return umask((mode_t)a[0]);
    case NR_sched_getaffinity: {
        uint8_t *p = G(u, a[2], a[1]);
        if (!p || a[1] < 8)
            return -EINVAL;
        memset(p, 0, a[1]);
        p[0] = 1; /* one CPU: the emulated hart */
        return 8;
    }
    case NR_getrandom: {
        void *p = G(u, a[0], a[1]);
        if (!p && a[1])
            return -EFAULT;
        return neg_errno(getrandom(p, a[1], (unsigned)a[2]));
    }
    case NR_brk: {
        pthread_mutex_lock(&u->lock);
        long r = do_brk(u, a[0]);
        pthread_mutex_unlock(&u->lock);
        return r;
    }
    case NR_mmap: {
        pthread_mutex_lock(&u->lock);
        long r = do_mmap(u, a[0], a[1], (int)a[2], (int)a[3], (int)a[4], a[5]);
        pthread_mutex_unlock(&u->lock);
        if (a[3] & MAP_FIXED) /* may replace translated code */
            rv_hart_code_changed(h);
        return r;
    }
    case NR_munmap: {
        if ((a[0] & 4095) || !a[1])
            return -EINVAL;
        uint64_t len = (a[1] + 4095) & ~4095ull;
        if (!G(u, a[0], len))
            return -EINVAL;
        pthread_mutex_lock(&u->lock);
        zero_range(u, a[0], len);
        mmap_mark(u, a[0], len, 0);
        pthread_mutex_unlock(&u->lock);
        rv_hart_code_changed(h);
        return 0;
    }
    }
    return -ENOSYS;
}

bool rv_user_syscall(void *opaque, struct rv_hart *h)
{
    struct rv_user *u = opaque;
    if (h->priv != RV_PRIV_U)
        return false;
    uint64_t nr = h->x[17];
    uint64_t args[6] = {h->x[10], h->x[11], h->x[12], h->x[13], h->x[14], h->x[15]};
    long r = dispatch(u, h, nr, args);
    if (nr == NR_rt_sigreturn) {
        /* registers and pc come from the frame; pc must not advance */
        return true;
    }
    if (u->trace_syscalls)
        fprintf(stderr, "vessel emu: syscall %llu(%#llx, %#llx, %#llx) = %ld\n",
                (unsigned long long)nr, (unsigned long long)args[0], (unsigned long long)args[1],
                (unsigned long long)args[2], r);
    h->x[10] = (uint64_t)r;
    if (u->sigpending && h == &u->hart) {
        h->pc += 4; /* deliver after the ECALL: the handler returns past it */
        uint64_t pc = h->pc;
        rv_user_deliver_pending(u);
        if (h->pc == pc && !u->exited)
            h->pc -= 4; /* nothing delivered: the hart advances pc itself */
    }
    return true;
}
