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

extern const char compare_workload_source[];
extern const size_t compare_workload_source_len;

#define CMP_CFLAGS "-static -O2 -std=gnu11"

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

/* Run cc; on failure, err carries the compiler's first error line. */
static int compile(const char *cc, const char *src, const char *out, vs_err *err)
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
        execlp(cc, cc, "-static", "-O2", "-std=gnu11", "-o", tmp, src, (char *)NULL);
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

static int cache_dir(char *dir, size_t len, vs_err *err)
{
    const char *base = getenv("VESSEL_CACHE");
    const char *home = getenv("HOME");
    uint64_t h = fnv1a(0xcbf29ce484222325ull, compare_workload_source, compare_workload_source_len);
    h = fnv1a(h, CMP_CFLAGS, sizeof(CMP_CFLAGS));
    int n = base ? snprintf(dir, len, "%s/compare/%016llx", base, (unsigned long long)h)
                 : snprintf(dir, len, "%s/.cache/vessel/compare/%016llx", home ? home : "/root",
                            (unsigned long long)h);
    if (n < 0 || (size_t)n >= len)
        return vs_error(err, ENAMETOOLONG, "compare: cache path too long");
    return mkdir_p(dir, err);
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
