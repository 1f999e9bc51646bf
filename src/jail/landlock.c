/* Landlock rules of a VM process (docs/security.md), with the raw system
 * calls: Debian 12's headers know ABI 2, the kernels it runs on offer more,
 * so the newer rights are defined here and used when the kernel has them. */
#include "jail/landlock.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <linux/landlock.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "util/cleanup.h"
#include "util/log.h"

#ifndef LANDLOCK_ACCESS_FS_TRUNCATE
#define LANDLOCK_ACCESS_FS_TRUNCATE (1ULL << 14)
#endif
#ifndef LANDLOCK_ACCESS_FS_IOCTL_DEV
#define LANDLOCK_ACCESS_FS_IOCTL_DEV (1ULL << 15)
#endif
#define SCOPE_ABSTRACT_UNIX_SOCKET (1ULL << 0)
#define SCOPE_SIGNAL (1ULL << 1)

/* struct landlock_ruleset_attr as of ABI 6 */
struct ruleset_attr {
    uint64_t handled_access_fs;
    uint64_t handled_access_net;
    uint64_t scoped;
};

#define FS_READ (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_READ_DIR)
#define FS_FILE_RW                                                                                 \
    (LANDLOCK_ACCESS_FS_READ_FILE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_TRUNCATE)
#define FS_CREATE                                                                                  \
    (FS_READ | FS_FILE_RW | LANDLOCK_ACCESS_FS_REMOVE_DIR | LANDLOCK_ACCESS_FS_REMOVE_FILE |       \
     LANDLOCK_ACCESS_FS_MAKE_DIR | LANDLOCK_ACCESS_FS_MAKE_REG | LANDLOCK_ACCESS_FS_MAKE_SOCK |    \
     LANDLOCK_ACCESS_FS_REFER)
/* what a rule on a file (not a directory) may grant */
#define FS_FILE_RIGHTS                                                                             \
    (LANDLOCK_ACCESS_FS_EXECUTE | LANDLOCK_ACCESS_FS_WRITE_FILE | LANDLOCK_ACCESS_FS_READ_FILE |   \
     LANDLOCK_ACCESS_FS_TRUNCATE | LANDLOCK_ACCESS_FS_IOCTL_DEV)

int jail_landlock_abi(void)
{
    long v = syscall(SYS_landlock_create_ruleset, NULL, 0, LANDLOCK_CREATE_RULESET_VERSION);
    return v < 0 ? 0 : (int)v;
}

struct rules {
    int fd;
    uint64_t handled;
};

/* Allow access beneath path (or on the file path); a path that does not
 * exist is skipped (it cannot be opened either). */
static int allow(struct rules *r, const char *path, uint64_t access, vs_err *err)
{
    if (!path || !*path)
        return 0;
    int fd = open(path, O_PATH | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return vs_error_errno(err, "landlock: %s", path);
    }
    struct stat st;
    if (fstat(fd, &st) == 0 && !S_ISDIR(st.st_mode))
        access &= FS_FILE_RIGHTS;
    struct landlock_path_beneath_attr pb = {.allowed_access = access & r->handled, .parent_fd = fd};
    long rc = pb.allowed_access
                  ? syscall(SYS_landlock_add_rule, r->fd, LANDLOCK_RULE_PATH_BENEATH, &pb, 0)
                  : 0;
    int e = errno;
    close(fd);
    if (rc < 0) {
        errno = e;
        return vs_error_errno(err, "landlock: a rule for %s", path);
    }
    return 0;
}

static int allow_dir_of(struct rules *r, const char *path, uint64_t access, vs_err *err)
{
    if (!path)
        return 0;
    cleanup_free char *copy = strdup(path);
    if (!copy)
        return vs_error(err, ENOMEM, "out of memory");
    return allow(r, dirname(copy), access, err);
}

/* A disk and, for qcow2, its backing files (read-only), as the block layer
 * will open them. */
static int allow_disk(struct rules *r, const char *path, bool writable, vs_err *err)
{
    char cur[PATH_MAX];
    snprintf(cur, sizeof(cur), "%s", path);
    for (int depth = 0; depth < 16; depth++) {
        if (allow(r, cur, depth == 0 && writable ? FS_FILE_RW : FS_READ, err) < 0)
            return -1;
        int fd = open(cur, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
            return 0; /* the block layer reports it */
        static uint8_t buf[65536];
        ssize_t n = pread(fd, buf, sizeof(buf), 0);
        struct stat st;
        int sr = fstat(fd, &st);
        close(fd);
        struct qcow2_header h;
        vs_err ignore = {0};
        if (n <= 0 || sr < 0 || !qcow2_probe(buf, (size_t)n) ||
            qcow2_header_parse(buf, (size_t)n, (uint64_t)st.st_size, &h, &ignore) < 0 ||
            !h.backing_file[0])
            return 0;
        if (h.backing_file[0] == '/') {
            snprintf(cur, sizeof(cur), "%s", h.backing_file);
        } else {
            char dir[PATH_MAX];
            snprintf(dir, sizeof(dir), "%s", cur);
            char *d = dirname(dir);
            if ((size_t)snprintf(cur, sizeof(cur), "%s/%s", d, h.backing_file) >= sizeof(cur))
                return vs_error(err, ENAMETOOLONG, "landlock: backing file of %s", path);
        }
    }
    return 0;
}

static const char *file_of(const char *spec, const char *prefix)
{
    size_t n = strlen(prefix);
    return spec && !strncmp(spec, prefix, n) ? spec + n : NULL;
}

static int add_rules(struct rules *r, const struct vm_config *cfg, const char *origin_dir,
                     vs_err *err)
{
    static const char *const system_read[] = {
        "/usr/lib",         "/lib",
        "/lib64",           "/usr/lib64",
        "/etc/ld.so.cache", "/etc/resolv.conf",
        "/etc/hosts",       "/etc/nsswitch.conf",
        "/etc/gai.conf",    "/dev/urandom",
        "/dev/random",      "/sys/devices/system/cpu",
        "/proc/self",       "/usr/share/zoneinfo",
    };
    for (size_t i = 0; i < sizeof(system_read) / sizeof(system_read[0]); i++)
        if (allow(r, system_read[i], FS_READ | LANDLOCK_ACCESS_FS_EXECUTE, err) < 0)
            return -1;
    if (allow(r, "/dev/null", FS_FILE_RW, err) < 0)
        return -1;
    if (cfg->arch == VM_ARCH_X86_64 &&
        allow(r, "/dev/kvm", FS_FILE_RW | LANDLOCK_ACCESS_FS_IOCTL_DEV, err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].kind == VM_NET_TAP &&
            allow(r, "/dev/net/tun", FS_FILE_RW | LANDLOCK_ACCESS_FS_IOCTL_DEV, err) < 0)
            return -1;
    if (allow(r, cfg->kernel, FS_READ, err) < 0 || allow(r, cfg->initrd, FS_READ, err) < 0 ||
        allow(r, cfg->bios, FS_READ, err) < 0 || allow(r, origin_dir, FS_READ, err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        if (allow_disk(r, cfg->disks[i].path, !cfg->disks[i].readonly, err) < 0)
            return -1;
    /* output files: made now if missing (the console would make them), so
     * the rule can name the file rather than its directory */
    const char *outputs[] = {file_of(cfg->console, "file:"), file_of(cfg->vconsole, "file:")};
    for (size_t i = 0; i < 2; i++) {
        if (!outputs[i])
            continue;
        int fd = open(outputs[i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
        if (allow(r, outputs[i], FS_FILE_RW, err) < 0)
            return -1;
    }
    /* sockets the VM binds (a stale one is removed first) */
    const uint64_t sock = LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE;
    if (allow_dir_of(r, file_of(cfg->vconsole, "socket:"), sock, err) < 0 ||
        allow_dir_of(r, cfg->vsock_uds, sock, err) < 0)
        return -1;
    /* the API socket's directory: its socket and the snapshots a daemon
     * keeps next to it */
    if (allow_dir_of(r, cfg->api_sock, FS_CREATE, err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nlandlock_rw; i++)
        if (allow(r, cfg->landlock_rw[i], FS_CREATE, err) < 0)
            return -1;
    return 0;
}

int jail_landlock_apply(const struct vm_config *cfg, const char *origin_dir, vs_err *err)
{
    if (!cfg->landlock)
        return 0;
    int abi = jail_landlock_abi();
    if (abi < 1)
        return vs_error(err, ENOSYS,
                        "--landlock=on: this kernel has no landlock (CONFIG_SECURITY_LANDLOCK, "
                        "lsm=landlock)");
    struct ruleset_attr attr = {0};
    attr.handled_access_fs = (LANDLOCK_ACCESS_FS_MAKE_SYM << 1) - 1; /* ABI 1 */
    if (abi >= 2)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_REFER;
    if (abi >= 3)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_TRUNCATE;
    if (abi >= 5)
        attr.handled_access_fs |= LANDLOCK_ACCESS_FS_IOCTL_DEV;
    size_t size = sizeof(uint64_t);
    if (abi >= 6) {
        /* no signals to processes outside this one, no abstract unix sockets
         * of other processes (slirp and vsock use none) */
        attr.scoped = SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL;
        size = sizeof(attr);
    }
    struct rules r = {.handled = attr.handled_access_fs};
    r.fd = (int)syscall(SYS_landlock_create_ruleset, &attr, size, 0);
    if (r.fd < 0)
        return vs_error_errno(err, "landlock: create_ruleset (ABI %d)", abi);
    int ret = -1;
    if (add_rules(&r, cfg, origin_dir, err) < 0)
        goto out;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) {
        vs_error_errno(err, "landlock: no_new_privs");
        goto out;
    }
    if (syscall(SYS_landlock_restrict_self, r.fd, 0) < 0) {
        vs_error_errno(err, "landlock: restrict_self");
        goto out;
    }
    vs_debug("landlock: ABI %d, the VM process is restricted to its own files", abi);
#ifdef VESSEL_TEST_HOOKS
    /* VESSEL_TEST_LANDLOCK_PROBE=PATH (tests only): try to read PATH now */
    const char *probe = getenv("VESSEL_TEST_LANDLOCK_PROBE");
    if (probe && *probe) {
        int fd = open(probe, O_RDONLY | O_CLOEXEC);
        vs_warn("landlock probe: open %s: %s", probe, fd >= 0 ? "allowed" : strerror(errno));
        if (fd >= 0)
            close(fd);
    }
#endif
    ret = 0;
out:
    close(r.fd);
    return ret;
}
