#include "vm/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysinfo.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/parse.h"

void vm_config_init(struct vm_config *c)
{
    memset(c, 0, sizeof(*c));
    c->arch = VM_ARCH_X86_64;
    c->cpus = 1;
    c->memory = 256ULL << 20;
}

void vm_config_free(struct vm_config *c)
{
    free(c->kernel);
    free(c->initrd);
    free(c->append);
    free(c->bios);
    free(c->firmware);
    free(c->console);
    free(c->vconsole);
    free(c->vsock_uds);
    free(c->api_sock);
    for (unsigned i = 0; i < c->ndisks; i++) {
        free(c->disks[i].path);
        free(c->disks[i].serial);
        free(c->disks[i].format);
    }
    for (unsigned i = 0; i < c->nshares; i++) {
        free(c->shares[i].dir);
        free(c->shares[i].tag);
    }
    for (unsigned i = 0; i < c->nnets; i++) {
        free(c->nets[i].tap);
        for (unsigned j = 0; j < c->nets[i].nhostfwd; j++)
            free(c->nets[i].hostfwd[j]);
    }
    for (unsigned i = 0; i < c->nlandlock_rw; i++)
        free(c->landlock_rw[i]);
    free(c->jail);
    vm_config_init(c);
}

const char *vm_arch_name(enum vm_arch arch)
{
    return arch == VM_ARCH_RISCV64 ? "riscv64" : "x86_64";
}

char *vm_default_guest_dir(enum vm_arch arch)
{
    const char *dir = getenv("VESSEL_GUEST_DIR");
    char *out = NULL;
    if (dir && *dir) {
        if (asprintf(&out, "%s/%s", dir, vm_arch_name(arch)) < 0)
            return NULL;
        return out;
    }
    const char *xdg = getenv("XDG_CACHE_HOME");
    const char *home = getenv("HOME");
    int r;
    if (xdg && *xdg)
        r = asprintf(&out, "%s/vessel/guest/%s", xdg, vm_arch_name(arch));
    else
        r = asprintf(&out, "%s/.cache/vessel/guest/%s", home && *home ? home : "/root",
                     vm_arch_name(arch));
    return r < 0 ? NULL : out;
}

int vm_parse_mac(const char *s, uint8_t mac[6])
{
    unsigned v[6];
    char tail;
    if (sscanf(s, "%x:%x:%x:%x:%x:%x%c", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &tail) != 6)
        return -1;
    for (int i = 0; i < 6; i++) {
        if (v[i] > 255)
            return -1;
        mac[i] = (uint8_t)v[i];
    }
    return (mac[0] & 1) ? -1 : 0; /* a multicast address cannot be a NIC's */
}

int vm_config_add_disk(struct vm_config *c, const char *spec, vs_err *err)
{
    if (c->ndisks == VM_MAX_DISKS)
        return vs_error(err, E2BIG, "--disk: at most %d disks", VM_MAX_DISKS);
    struct vs_optlist l;
    if (vs_optlist_parse(spec, &l, err) < 0)
        return vs_error_prefix(err, "--disk: ");
    struct vm_disk_config d = {0};
    int ret = 0;
    for (size_t i = 0; i < l.n && ret == 0; i++) {
        const char *k = l.opts[i].key, *v = l.opts[i].value;
        if (i == 0 && !v) {
            d.path = strdup(k);
        } else if (!strcmp(k, "path") && v) {
            free(d.path);
            d.path = strdup(v);
        } else if (!strcmp(k, "ro") && !v) {
            d.readonly = true;
        } else if (!strcmp(k, "readonly") || !strcmp(k, "ro")) {
            d.readonly = v && (!strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"));
        } else if (!strcmp(k, "cache") && v) {
            if (!strcmp(v, "writeback"))
                d.cache = VM_CACHE_WRITEBACK;
            else if (!strcmp(v, "none") || !strcmp(v, "direct"))
                d.cache = VM_CACHE_NONE;
            else if (!strcmp(v, "unsafe"))
                d.cache = VM_CACHE_UNSAFE;
            else
                ret = vs_error(err, EINVAL,
                               "--disk: unknown cache mode '%s' (writeback, none, unsafe)", v);
        } else if (!strcmp(k, "serial") && v) {
            if (strlen(v) > 20)
                ret = vs_error(err, EINVAL, "--disk: serial '%s' is longer than 20 bytes", v);
            else
                d.serial = strdup(v);
        } else if (!strcmp(k, "format") && v) {
            if (strcmp(v, "raw") && strcmp(v, "qcow2"))
                ret = vs_error(err, EINVAL, "--disk: unknown format '%s' (raw, qcow2)", v);
            else
                d.format = strdup(v);
        } else if ((ret = vm_rate_option(&d.rate, "--disk", k, v, err)) != 0) {
            ret = ret < 0 ? -1 : 0;
        } else {
            ret = vs_error(err, EINVAL, "--disk: unknown option '%s'", k);
        }
    }
    vs_optlist_free(&l);
    if (ret == 0 && !d.path)
        ret = vs_error(err, EINVAL, "--disk: no image path in '%s'", spec);
    if (ret == 0 && access(d.path, d.readonly ? R_OK : R_OK | W_OK) < 0)
        ret = vs_error_errno(err, "--disk: %s", d.path);
    if (ret < 0) {
        free(d.path);
        free(d.serial);
        free(d.format);
        return -1;
    }
    c->disks[c->ndisks++] = d;
    return 0;
}

int vm_config_add_net(struct vm_config *c, const char *spec, vs_err *err)
{
    if (c->nnets == VM_MAX_NETS)
        return vs_error(err, E2BIG, "--net: at most %d network devices", VM_MAX_NETS);
    struct vs_optlist l;
    if (vs_optlist_parse(spec, &l, err) < 0)
        return vs_error_prefix(err, "--net: ");
    struct vm_net_config n = {.kind = VM_NET_USER};
    bool kind_set = false;
    int ret = 0;
    for (size_t i = 0; i < l.n && ret == 0; i++) {
        const char *k = l.opts[i].key, *v = l.opts[i].value;
        if (!strcmp(k, "user") && !v) {
            n.kind = VM_NET_USER;
            kind_set = true;
        } else if (!strcmp(k, "tap") && v && *v) {
            n.kind = VM_NET_TAP;
            free(n.tap);
            n.tap = strdup(v);
            kind_set = true;
        } else if (!strcmp(k, "mac") && v) {
            if (vm_parse_mac(v, n.mac) < 0)
                ret = vs_error(err, EINVAL, "--net: '%s' is not a unicast MAC address", v);
            n.mac_set = true;
        } else if (!strcmp(k, "hostfwd") && v) {
            if (n.nhostfwd == VM_MAX_HOSTFWD)
                ret = vs_error(err, E2BIG, "--net: at most %d hostfwd rules", VM_MAX_HOSTFWD);
            else
                n.hostfwd[n.nhostfwd++] = strdup(v);
        } else if ((ret = vm_rate_option(&n.rate, "--net", k, v, err)) != 0) {
            ret = ret < 0 ? -1 : 0;
        } else {
            ret = vs_error(err, EINVAL, "--net: unknown option '%s'", k);
        }
    }
    vs_optlist_free(&l);
    if (ret == 0 && !kind_set)
        ret = vs_error(err, EINVAL, "--net: say 'user' or 'tap=NAME' in '%s'", spec);
    if (ret == 0 && n.kind == VM_NET_TAP && n.nhostfwd)
        ret = vs_error(err, EINVAL, "--net: hostfwd needs user networking, not tap");
    if (ret < 0) {
        free(n.tap);
        for (unsigned j = 0; j < n.nhostfwd; j++)
            free(n.hostfwd[j]);
        return -1;
    }
    c->nets[c->nnets++] = n;
    return 0;
}

const char *vm_virtiofsd_path(void)
{
    const char *p = getenv("VESSEL_VIRTIOFSD");
    return p && *p ? p : "/usr/lib/qemu/virtiofsd";
}

int vm_config_add_share(struct vm_config *c, const char *spec, vs_err *err)
{
    if (c->nshares == VM_MAX_SHARES)
        return vs_error(err, E2BIG, "--share: at most %d shared directories", VM_MAX_SHARES);
    const char *colon = strrchr(spec, ':');
    if (!colon || colon == spec || !colon[1])
        return vs_error(err, EINVAL, "--share: '%s' is not HOST_DIR:TAG", spec);
    cleanup_free char *dir = strndup(spec, (size_t)(colon - spec));
    if (!dir)
        return vs_error(err, ENOMEM, "out of memory");
    char *abs = realpath(dir, NULL);
    if (!abs)
        return vs_error_errno(err, "--share: %s", dir);
    struct vm_share_config sh = {.dir = abs, .tag = strdup(colon + 1)};
    if (!sh.tag) {
        free(abs);
        return vs_error(err, ENOMEM, "out of memory");
    }
    c->shares[c->nshares++] = sh;
    return 0;
}

static int check_file(const char *what, const char *path, vs_err *err)
{
    struct stat st;
    if (stat(path, &st) < 0)
        return vs_error_errno(err, "%s %s", what, path);
    if (!S_ISREG(st.st_mode))
        return vs_error(err, EINVAL, "%s %s is not a regular file", what, path);
    if (access(path, R_OK) < 0)
        return vs_error_errno(err, "%s %s", what, path);
    return 0;
}

int vm_parse_seccomp(const char *s, enum vm_seccomp *out, vs_err *err)
{
    if (!strcmp(s, "on"))
        *out = VM_SECCOMP_ON;
    else if (!strcmp(s, "off"))
        *out = VM_SECCOMP_OFF;
    else if (!strcmp(s, "log"))
        *out = VM_SECCOMP_LOG;
    else
        return vs_error(err, EINVAL, "--seccomp: '%s' is not on, off or log", s);
    return 0;
}

int vm_parse_on_off(const char *flag, const char *s, bool *out, vs_err *err)
{
    if (strcmp(s, "on") && strcmp(s, "off"))
        return vs_error(err, EINVAL, "--%s: '%s' is not on or off", flag, s);
    *out = !strcmp(s, "on");
    return 0;
}

int vm_config_add_landlock_rw(struct vm_config *c, const char *dir, vs_err *err)
{
    if (c->nlandlock_rw >= VM_MAX_LANDLOCK_RW)
        return vs_error(err, E2BIG, "--landlock-rw: at most %d directories", VM_MAX_LANDLOCK_RW);
    c->landlock_rw[c->nlandlock_rw] = strdup(dir);
    if (!c->landlock_rw[c->nlandlock_rw])
        return vs_error(err, ENOMEM, "out of memory");
    c->nlandlock_rw++;
    return 0;
}

int vm_config_set_jail(struct vm_config *c, const char *dir, const char *uid, const char *gid,
                       const char *fsize, const char *net, vs_err *err)
{
    if (!dir) {
        if (uid || gid || fsize || net)
            return vs_error(err, EINVAL,
                            "--jail-uid, --jail-gid, --jail-fsize and --jail-net need --jail");
        return 0;
    }
    if (net && strcmp(net, "host") && strcmp(net, "own"))
        return vs_error(err, EINVAL, "--jail-net: '%s' is not host or own", net);
    c->jail_host_net = net && !strcmp(net, "host");
    uint64_t v;
    c->jail_uid = c->jail_gid = 65534;
    if (uid) {
        if (vs_parse_u64(uid, 1, UINT32_MAX - 1, &v, err) < 0)
            return vs_error_prefix(err, "--jail-uid (not root): ");
        c->jail_uid = (uint32_t)v;
    }
    if (gid) {
        if (vs_parse_u64(gid, 1, UINT32_MAX - 1, &v, err) < 0)
            return vs_error_prefix(err, "--jail-gid (not root): ");
        c->jail_gid = (uint32_t)v;
    }
    if (fsize && vs_parse_size(fsize, 1 << 20, &c->jail_fsize, err) < 0)
        return vs_error_prefix(err, "--jail-fsize: ");
    free(c->jail);
    c->jail = strdup(dir);
    return c->jail ? 0 : vs_error(err, ENOMEM, "out of memory");
}

int vm_config_validate(const struct vm_config *c, vs_err *err)
{
    if (c->cpus < 1 || c->cpus > VM_MAX_CPUS)
        return vs_error(err, EINVAL, "cpus: %u is not in 1..%d", c->cpus, VM_MAX_CPUS);
    bool rv = c->arch == VM_ARCH_RISCV64;
    uint64_t min = rv ? VM_MIN_MEMORY_RISCV64 : VM_MIN_MEMORY_X86_64;
    uint64_t max = rv ? VM_MAX_MEMORY_RISCV64 : VM_MAX_MEMORY_X86_64;
    if (c->memory < min)
        return vs_error(err, EINVAL, "memory: %llu KiB is too small for %s (at least %llu MiB)",
                        (unsigned long long)(c->memory >> 10), vm_arch_name(c->arch),
                        (unsigned long long)(min >> 20));
    struct sysinfo si;
    if (sysinfo(&si) == 0) {
        uint64_t host = (uint64_t)si.totalram * si.mem_unit;
        if (c->memory > host)
            return vs_error(err, EINVAL, "memory: %llu MiB is more than the host has (%llu MiB)",
                            (unsigned long long)(c->memory >> 20),
                            (unsigned long long)(host >> 20));
    }
    if (c->memory > max)
        return vs_error(err, EINVAL, "memory: %llu MiB is more than a %s VM can have (%llu MiB)",
                        (unsigned long long)(c->memory >> 20), vm_arch_name(c->arch),
                        (unsigned long long)(max >> 20));
    if (c->memory % VM_MEMORY_ALIGN)
        return vs_error(err, EINVAL, "memory: must be a multiple of 2 MiB");
    if (c->vsock_cid && (c->vsock_cid < 3 || c->vsock_cid == UINT32_MAX))
        return vs_error(err, EINVAL, "vsock: guest CID %u is reserved", c->vsock_cid);
    if (c->console && strcmp(c->console, "stdio") && strcmp(c->console, "none") &&
        strncmp(c->console, "file:", 5) && strncmp(c->console, "socket:", 7))
        return vs_error(err, EINVAL,
                        "console: '%s' is not stdio, none, file:PATH or [file:PATH,]socket:PATH",
                        c->console);
    if (c->seccomp != VM_SECCOMP_ON && c->seccomp != VM_SECCOMP_OFF && c->seccomp != VM_SECCOMP_LOG)
        return vs_error(err, EINVAL, "seccomp: mode %d is not on, off or log", (int)c->seccomp);
    if (c->ndisks > VM_MAX_DISKS || c->nnets > VM_MAX_NETS)
        return vs_error(err, E2BIG, "at most %d disks and %d network devices", VM_MAX_DISKS,
                        VM_MAX_NETS);
    if (c->firmware && c->arch != VM_ARCH_X86_64)
        return vs_error(err, EINVAL, "firmware: only for x86_64 (riscv64 takes --bios)");
    if (c->firmware && (c->kernel || c->initrd))
        return vs_error(err, EINVAL,
                        "firmware: boots from the disks; --kernel and --initrd are not for it");
    if (c->nshares > VM_MAX_SHARES)
        return vs_error(err, E2BIG, "share: at most %d shared directories", VM_MAX_SHARES);
    for (unsigned i = 0; i < c->nshares; i++) {
        const struct vm_share_config *s = &c->shares[i];
        if (!s->dir || s->dir[0] != '/')
            return vs_error(err, EINVAL, "share: directory '%s' is not an absolute path",
                            s->dir ? s->dir : "");
        size_t n = s->tag ? strlen(s->tag) : 0;
        if (n < 1 || n > VM_SHARE_TAG_MAX)
            return vs_error(err, EINVAL, "share: tag '%s' is not 1 to %d bytes long",
                            s->tag ? s->tag : "", VM_SHARE_TAG_MAX);
        for (unsigned j = 0; j < i; j++)
            if (!strcmp(c->shares[j].tag, s->tag))
                return vs_error(err, EINVAL, "share: tag '%s' is used twice", s->tag);
    }
    return vm_config_validate_resources(c, err);
}

static enum vm_mem_backend mem_backend(const struct vm_config *c)
{
    /* a vhost-user backend (virtiofsd) maps guest RAM by its fd */
    if (c->arch == VM_ARCH_RISCV64 || c->nshares)
        return VM_MEM_MEMFD;
    /* A VM with a control API may be snapshotted: a memfd lets the snapshot
     * copy pages without faulting them in. Otherwise huge pages boot faster. */
    const char *e = getenv("VESSEL_X86_THP");
    if (e && *e)
        return *e == '1' ? VM_MEM_THP : VM_MEM_MEMFD;
    return c->api_sock ? VM_MEM_MEMFD : VM_MEM_THP;
}

/* --firmware bios|uefi|PATH into an image path. */
static int resolve_firmware(struct vm_config *c, vs_err *err)
{
    if (!strcmp(c->firmware, "uefi"))
        return vs_error(err, ENOTSUP,
                        "firmware: uefi (OVMF) is not supported yet; --firmware bios or a "
                        "SeaBIOS-compatible image");
    if (!strcmp(c->firmware, "bios")) {
        free(c->firmware);
        c->firmware = NULL;
        /* the 128 KiB build: all of it fits the legacy BIOS area, which is
         * where vessel puts it (bios-256k.bin wants its lower half there
         * too, as i440FX/Q35 shadowing gives it) */
        const char *names[] = {"bios.bin", "bios-256k.bin"};
        for (size_t i = 0; i < ARRAY_SIZE(names) && !c->firmware; i++) {
            char *p;
            if (asprintf(&p, "%s/%s", VM_SEABIOS_DIR, names[i]) < 0)
                return vs_error(err, ENOMEM, "out of memory");
            if (access(p, R_OK) == 0)
                c->firmware = p;
            else
                free(p);
        }
        if (!c->firmware)
            return vs_error(err, ENOENT,
                            "firmware: no SeaBIOS in %s (apt-get install seabios; "
                            "scripts/setup.sh does)",
                            VM_SEABIOS_DIR);
    }
    if (check_file("firmware", c->firmware, err) < 0)
        return -1;
    struct stat st;
    if (stat(c->firmware, &st) == 0 &&
        (st.st_size < 65536 || st.st_size > (16 << 20) || st.st_size % 4096))
        return vs_error(err, EINVAL,
                        "firmware %s: %lld bytes is not a BIOS image (64 KiB to 16 MiB, "
                        "whole pages)",
                        c->firmware, (long long)st.st_size);
    return 0;
}

int vm_config_resolve_boot(struct vm_config *c, vs_err *err)
{
    if (c->firmware) {
        if (resolve_firmware(c, err) < 0)
            return -1;
    } else if (!c->kernel) {
        /* No --kernel: boot the default guest built by guest/build-*.sh. */
        cleanup_free char *dir = vm_default_guest_dir(c->arch);
        if (!dir)
            return vs_error(err, ENOMEM, "out of memory");
        if (asprintf(&c->kernel, "%s/vmlinuz", dir) < 0)
            return vs_error(err, ENOMEM, "out of memory");
        if (!c->initrd && asprintf(&c->initrd, "%s/initrd.img", dir) < 0)
            return vs_error(err, ENOMEM, "out of memory");
        c->default_guest = true;
        if (access(c->kernel, R_OK) < 0)
            return vs_error(err, ENOENT,
                            "no --kernel given and the default guest %s is missing "
                            "(build it with guest/build-%s.sh)",
                            c->kernel, vm_arch_name(c->arch));
    }
    if (c->kernel && check_file("kernel", c->kernel, err) < 0)
        return -1;
    if (c->initrd && check_file("initrd", c->initrd, err) < 0)
        return -1;
    if (c->bios && check_file("bios", c->bios, err) < 0)
        return -1;
    for (unsigned i = 0; i < c->nshares; i++) {
        struct stat st;
        if (stat(c->shares[i].dir, &st) < 0)
            return vs_error_errno(err, "share %s", c->shares[i].dir);
        if (!S_ISDIR(st.st_mode))
            return vs_error(err, ENOTDIR, "share %s is not a directory", c->shares[i].dir);
    }
    if (c->nshares && access(vm_virtiofsd_path(), X_OK) < 0)
        return vs_error_errno(err,
                              "shares need virtiofsd (%s; apt-get install qemu-system-common, or "
                              "set VESSEL_VIRTIOFSD)",
                              vm_virtiofsd_path());
    if (!c->console)
        c->console = strdup("stdio");
    c->mem_backend = mem_backend(c);
    return 0;
}
