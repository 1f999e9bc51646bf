/* The one list of a VM process's files (landlock.h describes it). */
#include "jail/files.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "util/cleanup.h"

static const char *const system_files[] = {
    "/usr/lib",
    "/lib",
    "/lib64",
    "/usr/lib64",
    "/etc/ld.so.cache",
    "/etc/resolv.conf",
    "/etc/hosts",
    "/etc/nsswitch.conf",
    "/etc/gai.conf",
    "/dev/urandom",
    "/dev/random",
    "/dev/null",
    "/sys/devices/system/cpu",
};

static int dir_of(jail_file_fn fn, void *opaque, const char *path, enum jail_access a, vs_err *err)
{
    if (!path)
        return 0;
    cleanup_free char *copy = strdup(path);
    if (!copy)
        return vs_error(err, ENOMEM, "out of memory");
    return fn(opaque, dirname(copy), a, err);
}

/* A disk and, for qcow2, its backing files (read-only), as the block layer
 * will open them. */
static int disk(jail_file_fn fn, void *opaque, const char *path, bool writable, vs_err *err)
{
    char cur[PATH_MAX];
    snprintf(cur, sizeof(cur), "%s", path);
    for (int depth = 0; depth < 16; depth++) {
        if (fn(opaque, cur, depth == 0 && writable ? JAIL_READ_WRITE : JAIL_READ, err) < 0)
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
                return vs_error(err, ENAMETOOLONG, "backing file of %s: name too long", path);
        }
    }
    return 0;
}

static const char *file_of(const char *spec, const char *prefix)
{
    size_t n = strlen(prefix);
    return spec && !strncmp(spec, prefix, n) ? spec + n : NULL;
}

/* The serial console's "file:LOG,socket:SOCK": the log (copied into buf) and
 * the socket. */
static const char *console_file(const char *spec, char *buf, size_t n)
{
    const char *f = file_of(spec, "file:");
    const char *s = f ? strstr(f, ",socket:") : NULL;
    if (!f || !s)
        return f;
    snprintf(buf, n, "%.*s", (int)(s - f), f);
    return buf;
}

static const char *console_socket(const char *spec)
{
    const char *s = spec ? strstr(spec, "socket:") : NULL;
    return s && (s == spec || s[-1] == ',') ? s + 7 : NULL;
}

int jail_vm_files(const struct vm_config *cfg, const char *origin_dir, jail_file_fn fn,
                  void *opaque, vs_err *err)
{
    for (size_t i = 0; i < sizeof(system_files) / sizeof(system_files[0]); i++)
        if (fn(opaque, system_files[i],
               strncmp(system_files[i], "/dev/", 5) ? JAIL_SYSTEM : JAIL_DEVICE, err) < 0)
            return -1;
    if (cfg->arch == VM_ARCH_X86_64 && fn(opaque, "/dev/kvm", JAIL_DEVICE, err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nnets; i++)
        if (cfg->nets[i].kind == VM_NET_TAP && fn(opaque, "/dev/net/tun", JAIL_DEVICE, err) < 0)
            return -1;
    const char *reads[] = {cfg->kernel, cfg->initrd, cfg->bios, origin_dir};
    for (size_t i = 0; i < sizeof(reads) / sizeof(reads[0]); i++)
        if (reads[i] && fn(opaque, reads[i], JAIL_READ, err) < 0)
            return -1;
    for (unsigned i = 0; i < cfg->ndisks; i++)
        if (disk(fn, opaque, cfg->disks[i].path, !cfg->disks[i].readonly, err) < 0)
            return -1;
    /* output files: made now if missing (the console would make them), so
     * a rule can name the file rather than its directory */
    char log[PATH_MAX];
    const char *outputs[] = {console_file(cfg->console, log, sizeof(log)),
                             file_of(cfg->vconsole, "file:")};
    for (size_t i = 0; i < 2; i++) {
        if (!outputs[i])
            continue;
        int fd = open(outputs[i], O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
        if (fn(opaque, outputs[i], JAIL_READ_WRITE, err) < 0)
            return -1;
    }
    /* sockets the VM binds (a stale one is removed first) */
    if (dir_of(fn, opaque, file_of(cfg->vconsole, "socket:"), JAIL_SOCKETS, err) < 0 ||
        dir_of(fn, opaque, console_socket(cfg->console), JAIL_SOCKETS, err) < 0 ||
        dir_of(fn, opaque, cfg->vsock_uds, JAIL_SOCKETS, err) < 0)
        return -1;
    /* the API socket's directory: its socket and the snapshots a daemon
     * keeps next to it; and where snapshots may go */
    if (dir_of(fn, opaque, cfg->api_sock, JAIL_CREATE, err) < 0)
        return -1;
    for (unsigned i = 0; i < cfg->nlandlock_rw; i++)
        if (fn(opaque, cfg->landlock_rw[i], JAIL_CREATE, err) < 0)
            return -1;
    return 0;
}
