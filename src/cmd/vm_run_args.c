/* `vessel vm run` flags into a struct vm_config; the library checks and
 * completes it (vm_config_validate, vm_config_resolve_boot). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/opt.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "vm/config.h"

static int set_str(char **field, const char *v)
{
    if (!v)
        return 0;
    free(*field);
    *field = strdup(v);
    return *field ? 0 : -1;
}

int cmd_vm_run_args(struct vm_config *c, int argc, char **argv, vs_err *err)
{
    const char *kernel = NULL, *initrd = NULL, *append = NULL, *bios = NULL, *cpus = NULL;
    const char *memory = NULL, *console = NULL, *vconsole = NULL, *vsock = NULL;
    const char *vsock_uds = NULL, *api_sock = NULL, *arch = NULL, *vendor = NULL;
    const char *accel = NULL, *balloon = NULL, *max_cpus = NULL, *limit_mem = NULL;
    const char *limit_cpus = NULL, *firmware = NULL;
    const char *seccomp = NULL, *landlock = NULL, *jail = NULL, *jail_uid = NULL;
    const char *jail_gid = NULL, *jail_fsize = NULL, *jail_net = NULL;
    struct cmd_strlist disks = {0}, nets = {0}, shares = {0}, landlock_rw = {0};
    const struct cmd_opt opts[] = {
        {"kernel", 0, CMD_OPT_STR, &kernel},
        {"initrd", 0, CMD_OPT_STR, &initrd},
        {"append", 0, CMD_OPT_STR, &append},
        {"cpus", 0, CMD_OPT_STR, &cpus},
        {"memory", 0, CMD_OPT_STR, &memory},
        {"console", 0, CMD_OPT_STR, &console},
        {"no-reboot", 0, CMD_OPT_FLAG, &c->no_reboot},
        {"disk", 0, CMD_OPT_LIST, &disks},
        {"net", 0, CMD_OPT_LIST, &nets},
        {"rng", 0, CMD_OPT_FLAG, &c->rng},
        {"virtio-console", 0, CMD_OPT_STR, &vconsole},
        {"vsock", 0, CMD_OPT_STR, &vsock},
        {"vsock-uds", 0, CMD_OPT_STR, &vsock_uds},
        {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"arch", 0, CMD_OPT_STR, &arch},
        {"bios", 0, CMD_OPT_STR, &bios},
        {"virtio-vendor", 0, CMD_OPT_STR, &vendor},
        {"accel", 0, CMD_OPT_STR, &accel},
        {"balloon", 0, CMD_OPT_STR, &balloon},
        {"max-cpus", 0, CMD_OPT_STR, &max_cpus},
        {"mergeable", 0, CMD_OPT_FLAG, &c->mergeable},
        {"limit-memory", 0, CMD_OPT_STR, &limit_mem},
        {"limit-cpus", 0, CMD_OPT_STR, &limit_cpus},
        {"share", 0, CMD_OPT_LIST, &shares},
        {"firmware", 0, CMD_OPT_STR, &firmware},
        {"seccomp", 0, CMD_OPT_STR, &seccomp},
        {"landlock", 0, CMD_OPT_STR, &landlock},
        {"landlock-rw", 0, CMD_OPT_LIST, &landlock_rw},
        {"jail", 0, CMD_OPT_STR, &jail},
        {"jail-uid", 0, CMD_OPT_STR, &jail_uid},
        {"jail-gid", 0, CMD_OPT_STR, &jail_gid},
        {"jail-fsize", 0, CMD_OPT_STR, &jail_fsize},
        {"jail-net", 0, CMD_OPT_STR, &jail_net},
    };
    char *pos[1];
    struct cmd_optparse p = {.verb = "vm run",
                             .opts = opts,
                             .nopts = ARRAY_SIZE(opts),
                             .pos = pos,
                             .maxpos = 0,
                             .hint = " (see 'vessel vm run --help')"};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, err);
    if (r == CMD_OPT_HELP)
        return vs_error(err, EINVAL, "vm run: --help comes alone");
    if (r < 0)
        return -1;
    uint64_t v;
    if (cpus) {
        if (vs_parse_u64(cpus, 1, VM_MAX_CPUS, &v, err) < 0)
            return vs_error_prefix(err, "--cpus: ");
        c->cpus = (unsigned)v;
    }
    if (memory) {
        if (vs_parse_size(memory, 1ULL << 20, &v, err) < 0)
            return vs_error_prefix(err, "--memory: ");
        c->memory = v;
    }
    if (console && strcmp(console, "stdio") && strcmp(console, "none") &&
        strncmp(console, "file:", 5) && strncmp(console, "socket:", 7))
        return vs_error(err, EINVAL,
                        "--console: '%s' is not stdio, none, file:PATH or [file:PATH,]socket:PATH",
                        console);
    if (vsock) {
        /* CIDs 0-2 are reserved (hypervisor, local, host) */
        if (vs_parse_u64(vsock, 3, 0xfffffffe, &v, err) < 0)
            return vs_error_prefix(err, "--vsock: guest CID: ");
        c->vsock_cid = (uint32_t)v;
    }
    if (arch) {
        if (!strcmp(arch, "x86_64") || !strcmp(arch, "x86-64") || !strcmp(arch, "amd64"))
            c->arch = VM_ARCH_X86_64;
        else if (!strcmp(arch, "riscv64"))
            c->arch = VM_ARCH_RISCV64;
        else
            return vs_error(err, EINVAL, "--arch: unknown architecture '%s' (x86_64, riscv64)",
                            arch);
    }
    if (vendor) {
        if (strcmp(vendor, "qemu") && strcmp(vendor, "vessel"))
            return vs_error(err, EINVAL, "--virtio-vendor: '%s' is not vessel or qemu", vendor);
        c->virtio_vendor_qemu = !strcmp(vendor, "qemu");
    }
    if (accel) {
        if (strcmp(accel, "jit") && strcmp(accel, "interp"))
            return vs_error(err, EINVAL, "--accel: '%s' is not jit or interp", accel);
        if (c->arch != VM_ARCH_RISCV64)
            return vs_error(err, EINVAL, "--accel: only for --arch riscv64 (x86_64 runs on KVM)");
        c->accel = !strcmp(accel, "jit") ? VM_ACCEL_JIT : VM_ACCEL_INTERP;
    }
    if (balloon && vm_config_set_balloon(c, balloon, err) < 0)
        return -1;
    if (limit_mem && vs_parse_size(limit_mem, 1ULL << 20, &c->limit_memory, err) < 0)
        return vs_error_prefix(err, "--limit-memory: ");
    if (limit_cpus && vm_parse_cpu_limit(limit_cpus, &c->limit_cpu_millis, err) < 0)
        return vs_error_prefix(err, "--limit-cpus: ");
    if (max_cpus) {
        if (vs_parse_u64(max_cpus, 1, VM_MAX_CPUS, &v, err) < 0)
            return vs_error_prefix(err, "--max-cpus: ");
        c->max_cpus = (unsigned)v;
    }
    if (seccomp && vm_parse_seccomp(seccomp, &c->seccomp, err) < 0)
        return -1;
    if (landlock && vm_parse_on_off("landlock", landlock, &c->landlock, err) < 0)
        return -1;
    for (size_t i = 0; i < landlock_rw.n; i++)
        if (vm_config_add_landlock_rw(c, landlock_rw.v[i], err) < 0)
            return -1;
    if (vm_config_set_jail(c, jail, jail_uid, jail_gid, jail_fsize, jail_net, err) < 0)
        return -1;
    for (size_t i = 0; i < disks.n; i++)
        if (vm_config_add_disk(c, disks.v[i], err) < 0)
            return -1;
    for (size_t i = 0; i < nets.n; i++)
        if (vm_config_add_net(c, nets.v[i], err) < 0)
            return -1;
    for (size_t i = 0; i < shares.n; i++)
        if (vm_config_add_share(c, shares.v[i], err) < 0)
            return -1;
    if (set_str(&c->kernel, kernel) || set_str(&c->initrd, initrd) || set_str(&c->append, append) ||
        set_str(&c->bios, bios) || set_str(&c->firmware, firmware) ||
        set_str(&c->console, console) || set_str(&c->vconsole, vconsole) ||
        set_str(&c->vsock_uds, vsock_uds) || set_str(&c->api_sock, api_sock))
        return vs_error(err, ENOMEM, "out of memory");
    if (vm_config_validate(c, err) < 0)
        return -1;
    return vm_config_resolve_boot(c, err);
}
