/* vessel vm restore|clone: start VMs from a snapshot. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/opt.h"
#include "snapshot/snapshot.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "vm/machine.h"

static int parse(int argc, char **argv, const struct cmd_opt *opts, size_t nopts, char **target,
                 const char *usage)
{
    char vname[32];
    snprintf(vname, sizeof(vname), "vm %s", argv[0]);
    struct cmd_optparse p = {
        .verb = vname, .opts = opts, .nopts = nopts, .pos = target, .maxpos = 1};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        printf("usage: vessel vm %s %s\n", argv[0], usage);
        return 1;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return -1;
    }
    if (!p.npos)
        *target = NULL;
    return 0;
}

static int arg_u64(const char *name, const char *s, uint64_t min, uint64_t max, uint64_t *out)
{
    vs_err err = {0};
    if (!s || vs_parse_u64(s, min, max, out, &err) == 0)
        return 0;
    fprintf(stderr, "vessel: --%s: %s\n", name, err.msg);
    return -1;
}

int cmd_vm_restore(int argc, char **argv)
{
    const char *api_sock = NULL, *console = NULL, *overlay_dir = NULL, *arch = NULL;
    const char *vsock = NULL, *clone_index = NULL, *seccomp = NULL, *landlock = NULL;
    const char *jail = NULL, *jail_uid = NULL, *jail_gid = NULL, *jail_fsize = NULL,
               *jail_net = NULL;
    struct cmd_strlist landlock_rw = {0}, nets = {0};
    const struct cmd_opt opts[] = {
        {"seccomp", 0, CMD_OPT_STR, &seccomp},
        {"landlock", 0, CMD_OPT_STR, &landlock},
        {"landlock-rw", 0, CMD_OPT_LIST, &landlock_rw},
        {"jail", 0, CMD_OPT_STR, &jail},
        {"jail-uid", 0, CMD_OPT_STR, &jail_uid},
        {"jail-gid", 0, CMD_OPT_STR, &jail_gid},
        {"jail-fsize", 0, CMD_OPT_STR, &jail_fsize},
        {"jail-net", 0, CMD_OPT_STR, &jail_net},
        {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"console", 0, CMD_OPT_STR, &console},
        {"overlay-dir", 0, CMD_OPT_STR, &overlay_dir},
        {"arch", 0, CMD_OPT_STR, &arch},
        {"vsock", 0, CMD_OPT_STR, &vsock},
        {"clone-index", 0, CMD_OPT_STR, &clone_index},
        {"net", 0, CMD_OPT_LIST, &nets},
    };
    char *target;
    int r = parse(
        argc, argv, opts, ARRAY_SIZE(opts), &target,
        "DIR [--api-sock PATH] [--console stdio|none|file:PATH|[file:PATH,]socket:PATH] "
        "[--overlay-dir DIR] "
        "[--arch x86_64|riscv64] [--vsock CID] [--clone-index N] [--net I,tap=NAME[,mac=MAC]]... "
        "[--seccomp on|off|log] [--landlock on|off] [--landlock-rw DIR] [--jail DIR "
        "[--jail-uid N] [--jail-gid N] [--jail-fsize SIZE] [--jail-net host|own]]");
    if (r)
        return r > 0 ? 0 : 2;
    struct snapshot_restore_opts o = {.api_sock = api_sock,
                                      .console = console,
                                      .overlay_dir = overlay_dir,
                                      .expect_arch = -1,
                                      .clone_index = -1};
    if (arch) {
        if (strcmp(arch, "x86_64") && strcmp(arch, "riscv64")) {
            fprintf(stderr, "vessel: --arch: '%s' is not x86_64 or riscv64\n", arch);
            return 2;
        }
        o.expect_arch = strcmp(arch, "riscv64") ? VM_ARCH_X86_64 : VM_ARCH_RISCV64;
    }
    uint64_t cid = 0, index = 0;
    if (arg_u64("vsock", vsock, 3, UINT32_MAX - 1, &cid) < 0 ||
        arg_u64("clone-index", clone_index, 0, 65535, &index) < 0)
        return 2;
    o.vsock_cid = (uint32_t)cid;
    if (nets.n > VM_MAX_NETS) {
        fprintf(stderr, "vessel: --net: at most %d\n", VM_MAX_NETS);
        return 2;
    }
    for (size_t i = 0; i < nets.n; i++) {
        vs_err nerr = {0};
        if (snapshot_parse_net_override(nets.v[i], &o.nets[o.nnets++], &nerr) < 0) {
            cmd_print_error(nerr.msg);
            return 2;
        }
    }
    if (clone_index)
        o.clone_index = (int)index;
    if (!target) {
        cmd_print_error("vm restore: a snapshot directory is required");
        return 2;
    }
    vs_err err = {0};
    enum vm_seccomp sc = VM_SECCOMP_ON;
    bool ll = false;
    if ((seccomp && vm_parse_seccomp(seccomp, &sc, &err) < 0) ||
        (landlock && vm_parse_on_off("landlock", landlock, &ll, &err) < 0)) {
        cmd_print_error(err.msg);
        return 2;
    }
    struct snapshot_restore rs;
    if (snapshot_restore_prepare(target, &o, &rs, &err) < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    /* the host's choices, not the snapshot's */
    rs.img.cfg.seccomp = sc;
    rs.img.cfg.landlock = ll;
    /* the disk overlays' directory: removed when a temporary one */
    const char *ovdir = rs.tmpdir[0] ? rs.tmpdir : overlay_dir;
    for (size_t i = 0; i <= landlock_rw.n; i++) {
        const char *d = i < landlock_rw.n ? landlock_rw.v[i] : ovdir;
        if ((d && vm_config_add_landlock_rw(&rs.img.cfg, d, &err) < 0) ||
            (i == landlock_rw.n && vm_config_set_jail(&rs.img.cfg, jail, jail_uid, jail_gid,
                                                      jail_fsize, jail_net, &err) < 0)) {
            cmd_print_error(err.msg);
            snapshot_restore_finish(&rs);
            return 1;
        }
    }
    int rc = vm_machine_restore(&rs.img.cfg, &rs.src, &err);
    snapshot_restore_finish(&rs);
    if (rc < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    return rc;
}

int cmd_vm_clone(int argc, char **argv)
{
    const char *count = NULL, *outdir = NULL;
    const struct cmd_opt opts[] = {
        {"count", 0, CMD_OPT_STR, &count},
        {"dir", 0, CMD_OPT_STR, &outdir},
    };
    char *target;
    int r = parse(argc, argv, opts, ARRAY_SIZE(opts), &target, "DIR --count N [--dir OUTDIR]");
    if (r)
        return r > 0 ? 0 : 2;
    uint64_t n = 0;
    if (arg_u64("count", count, 1, 4096, &n) < 0)
        return 2;
    if (!target || !n) {
        cmd_print_error("vm clone: DIR and --count N are required");
        return 2;
    }
    char self[PATH_MAX];
    ssize_t len = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (len <= 0) {
        cmd_print_error("vm clone: cannot find the vessel executable");
        return 1;
    }
    self[len] = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", outdir ? outdir : target);
    if (!outdir)
        strncat(dir, "-clones", sizeof(dir) - strlen(dir) - 1);
    vs_err err = {0};
    int rc = snapshot_clone(target, (unsigned)n, dir, self, &err);
    if (rc < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    return rc;
}
