/* The workload binaries: workload.c (embedded) compiled for the host and for
 * riscv64 with Debian's compilers, cached by a hash of the source and the
 * command line, so a changed source is rebuilt and an unchanged one is not. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compare/compare.h"
#include "util/cleanup.h"

extern const char compare_workload_source[], compare_bare_start[], compare_bare_libc[],
    compare_bare_ld[];
extern const size_t compare_workload_source_len, compare_bare_start_len, compare_bare_libc_len,
    compare_bare_ld_len;

#define CMP_CFLAGS "-static -O2 -std=gnu11"
/* the KVM row's guest: freestanding, loaded at its physical addresses */
#define CMP_BARE_FLAGS                                                                             \
    "-DVESSEL_BARE", "-ffreestanding", "-fno-pic", "-fno-pie", "-no-pie", "-nostdlib",             \
        "-fno-stack-protector", "-fno-asynchronous-unwind-tables", "-Wl,--build-id=none",          \
        "-Wl,-z,max-page-size=4096", "-Wl,-z,noexecstack", "-Wl,--no-warn-rwx-segments"

/* FNV-1a, 64 bits: a cache key, not a security boundary */
static uint64_t fnv1a(uint64_t h, const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) {
        h ^= b[i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static bool in_path(const char *prog)
{
    const char *path = getenv("PATH");
    if (!path)
        path = "/usr/bin:/bin";
    while (*path) {
        size_t n = strcspn(path, ":");
        char buf[PATH_MAX];
        if (snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path, prog) < (int)sizeof(buf) &&
            access(buf, X_OK) == 0)
            return true;
        path += n + (path[n] == ':');
    }
    return false;
}

static int mkdir_p(const char *dir, vs_err *err)
{
    char buf[PATH_MAX];
    if (snprintf(buf, sizeof(buf), "%s", dir) >= (int)sizeof(buf))
        return vs_error(err, ENAMETOOLONG, "compare: cache path too long");
    for (char *p = buf + 1;; p++) {
        if (*p == '/' || !*p) {
            char c = *p;
            *p = 0;
            if (mkdir(buf, 0755) < 0 && errno != EEXIST)
                return vs_error_errno(err, "compare: mkdir %s", buf);
            *p = c;
            if (!c)
                return 0;
        }
    }
}

/* Run cc (extra: more arguments before the sources, NULL-terminated); on
 * failure, err carries the compiler's first error line. */
static int compile_with(const char *cc, const char *const *extra, const char *src, const char *out,
                        vs_err *err)
{
    char tmp[PATH_MAX + 32], log[PATH_MAX + 8];
    snprintf(tmp, sizeof(tmp), "%s.tmp.%d", out, (int)getpid());
    snprintf(log, sizeof(log), "%s.log", out);
    pid_t pid = fork();
    if (pid < 0)
        return vs_error_errno(err, "compare: fork");
    if (pid == 0) {
        int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        const char *argv[40] = {cc, "-static", "-O2", "-std=gnu11", "-o", tmp};
        size_t n = 6;
        for (; extra && *extra && n < 36; extra++)
            argv[n++] = *extra;
        argv[n++] = src;
        argv[n] = NULL;
        execvp(cc, (char *const *)argv);
        _exit(127);
    }
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && rename(tmp, out) == 0)
        return 0;
    unlink(tmp);
    char line[200] = "see ";
    cleanup_fclose FILE *f = fopen(log, "r");
    while (f && fgets(line, sizeof(line), f))
        if (strstr(line, "error"))
            break;
    line[strcspn(line, "\n")] = 0;
    return vs_error(err, 0, "compare: %s failed to build the workload: %s", cc, f ? line : log);
}

static int compile(const char *cc, const char *src, const char *out, vs_err *err)
{
    return compile_with(cc, NULL, src, out, err);
}

static int cache_dir(char *dir, size_t len, vs_err *err)
{
    const char *base = getenv("VESSEL_CACHE");
    const char *home = getenv("HOME");
    uint64_t h = fnv1a(0xcbf29ce484222325ull, compare_workload_source, compare_workload_source_len);
    h = fnv1a(h, CMP_CFLAGS, sizeof(CMP_CFLAGS));
    h = fnv1a(h, compare_bare_start, compare_bare_start_len);
    h = fnv1a(h, compare_bare_libc, compare_bare_libc_len);
    h = fnv1a(h, compare_bare_ld, compare_bare_ld_len);
    int n = base ? snprintf(dir, len, "%s/compare/%016llx", base, (unsigned long long)h)
                 : snprintf(dir, len, "%s/.cache/vessel/compare/%016llx", home ? home : "/root",
                            (unsigned long long)h);
    if (n < 0 || (size_t)n >= len)
        return vs_error(err, ENAMETOOLONG, "compare: cache path too long");
    return mkdir_p(dir, err);
}

/* dir/name holds data, written whole or not at all */
static int write_source(const char *dir, const char *name, const char *data, size_t len,
                        vs_err *err)
{
    char path[PATH_MAX], tmp[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    if (access(path, R_OK) == 0)
        return 0;
    snprintf(tmp, sizeof(tmp), "%s.%d", path, (int)getpid());
    cleanup_fclose FILE *f = fopen(tmp, "w");
    if (!f || fwrite(data, 1, len, f) != len || fflush(f) != 0)
        return vs_error_errno(err, "compare: write %s", tmp);
    if (rename(tmp, path) < 0)
        return vs_error_errno(err, "compare: rename %s", tmp);
    return 0;
}

const char *compare_build_bare_guest(char *elf, size_t len)
{
    static char why[600];
#if !defined(__x86_64__)
    return "the KVM row's guest is built for x86-64 hosts only";
#endif
    char dir[PATH_MAX - 64];
    vs_err e = {0};
    if (cache_dir(dir, sizeof(dir), &e) < 0 ||
        write_source(dir, "workload.c", compare_workload_source, compare_workload_source_len, &e) <
            0 ||
        write_source(dir, "bare_start.S", compare_bare_start, compare_bare_start_len, &e) < 0 ||
        write_source(dir, "bare_libc.c", compare_bare_libc, compare_bare_libc_len, &e) < 0 ||
        write_source(dir, "bare.ld", compare_bare_ld, compare_bare_ld_len, &e) < 0) {
        snprintf(why, sizeof(why), "%s", e.msg);
        return why;
    }
    snprintf(elf, len, "%s/workload-kvm.elf", dir);
    if (access(elf, R_OK) == 0)
        return NULL;
    char ld[PATH_MAX], start[PATH_MAX], libc[PATH_MAX], t[PATH_MAX + 8];
    snprintf(ld, sizeof(ld), "%s/bare.ld", dir);
    snprintf(t, sizeof(t), "-T%s", ld);
    snprintf(start, sizeof(start), "%s/bare_start.S", dir);
    snprintf(libc, sizeof(libc), "%s/bare_libc.c", dir);
    char src[PATH_MAX];
    snprintf(src, sizeof(src), "%s/workload.c", dir);
    const char *extra[] = {CMP_BARE_FLAGS, t, start, libc, NULL};
    if (compile_with("gcc", extra, src, elf, &e) < 0) {
        snprintf(why, sizeof(why), "%s", e.msg);
        return why;
    }
    return NULL;
}

int compare_build_workloads(char *x86, size_t x86len, char *rv, size_t rvlen, const char **rv_why,
                            vs_err *err)
{
    char dir[PATH_MAX - 64], src[PATH_MAX];
    if (cache_dir(dir, sizeof(dir), err) < 0)
        return -1;
    snprintf(src, sizeof(src), "%s/workload.c", dir);
    /* the source beside its binaries, written whole or not at all */
    if (access(src, R_OK) < 0) {
        char tmp[PATH_MAX + 32];
        snprintf(tmp, sizeof(tmp), "%s.%d", src, (int)getpid());
        cleanup_fclose FILE *f = fopen(tmp, "w");
        if (!f ||
            fwrite(compare_workload_source, 1, compare_workload_source_len, f) !=
                compare_workload_source_len ||
            fflush(f) != 0)
            return vs_error_errno(err, "compare: write %s", tmp);
        if (rename(tmp, src) < 0)
            return vs_error_errno(err, "compare: rename %s", tmp);
    }
    snprintf(x86, x86len, "%s/workload-native", dir);
    snprintf(rv, rvlen, "%s/workload-riscv64", dir);
    if (access(x86, X_OK) < 0) {
        if (!in_path("gcc"))
            return vs_error(err, 0, "compare: gcc is not installed (scripts/setup.sh)");
        if (compile("gcc", src, x86, err) < 0)
            return -1;
    }
    *rv_why = NULL;
    if (access(rv, X_OK) < 0) {
        static char why[600];
        vs_err e = {0};
        if (!in_path("riscv64-linux-gnu-gcc")) {
            *rv_why = "riscv64-linux-gnu-gcc is not installed (gcc-riscv64-linux-gnu, "
                      "libc6-dev-riscv64-cross)";
        } else if (compile("riscv64-linux-gnu-gcc", src, rv, &e) < 0) {
            snprintf(why, sizeof(why), "%s", e.msg);
            *rv_why = why;
        }
        if (*rv_why)
            rv[0] = 0;
    }
    return 0;
}
