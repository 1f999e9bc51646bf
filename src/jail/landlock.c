/* Landlock rules of a VM process (docs/security.md), with the raw system
 * calls: Debian 12's headers know ABI 2, the kernels it runs on offer more,
 * so the newer rights are defined here and used when the kernel has them. */
#include "jail/landlock.h"

#include <errno.h>
#include <fcntl.h>
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

#include "jail/files.h"
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

static int rule_for(void *opaque, const char *path, enum jail_access a, vs_err *err)
{
    static const uint64_t rights[] = {
        [JAIL_SYSTEM] = FS_READ | LANDLOCK_ACCESS_FS_EXECUTE,
        [JAIL_READ] = FS_READ,
        [JAIL_READ_WRITE] = FS_FILE_RW,
        [JAIL_DEVICE] = FS_FILE_RW | LANDLOCK_ACCESS_FS_IOCTL_DEV,
        [JAIL_SOCKETS] = LANDLOCK_ACCESS_FS_MAKE_SOCK | LANDLOCK_ACCESS_FS_REMOVE_FILE,
        [JAIL_CREATE] = FS_CREATE,
    };
    return allow(opaque, path, rights[a], err);
}

static int add_rules(struct rules *r, const struct vm_config *cfg, const char *origin_dir,
                     vs_err *err)
{
    /* this process's own /proc entries (readlink of its fds) */
    if (allow(r, "/proc/self", FS_READ, err) < 0)
        return -1;
    return jail_vm_files(cfg, origin_dir, rule_for, r, err);
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
