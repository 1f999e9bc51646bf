/* How each kind runs one workload: the command line vessel compare spawns
 * (the program itself, vessel-runc, vessel vm run or vessel emu) and how
 * the runner reads what comes back. */
#include <stdio.h>
#include <string.h>

#include "compare/kinds.h"

static void add(struct compare_argv *a, const char *s)
{
    if (a->n < CMP_ARGV_MAX - 1)
        a->v[a->n++] = s;
    a->v[a->n] = NULL;
}

/* the workload's own arguments: NAME SCALE [PATH or ADDR:PORT] */
static void workload_args(struct compare_argv *a, const struct compare_ctx *c, int w,
                          const char *disk, const char *target)
{
    add(a, compare_workload_names[w]);
    add(a, c->scale);
    if (w == CMP_W_DISK)
        add(a, disk);
    if (w == CMP_W_NET && target)
        add(a, target);
}

int compare_kind_argv(const struct compare_ctx *c, int k, int w, const char *id,
                      struct compare_argv *a, struct compare_spawn_how *how)
{
    const struct compare_opts *o = c->o;
    bool user = w == CMP_W_COMMAND;
    memset(a, 0, sizeof(*a));
    memset(how, 0, sizeof(*how));
    how->workload = user ? NULL : compare_workload_names[w];
    how->host_clock = CMP_KIND_IS_VM(k) && !user;
    snprintf(a->disk, sizeof(a->disk), "%s/disk-%s", c->tmp, compare_kind_names[k]);
    switch (k) {
    case CMP_K_NATIVE:
        if (user) {
            for (char *const *p = o->cmd; *p; p++)
                add(a, *p);
            return 0;
        }
        add(a, c->x86);
        workload_args(a, c, w, a->disk, NULL);
        return 0;
    case CMP_K_CONTAINER:
        if (o->runc) {
            add(a, o->runc);
        } else {
            add(a, o->vessel);
            add(a, "oci");
        }
        snprintf(a->buf[0], sizeof(a->buf[0]), "%s/state", c->tmp);
        snprintf(a->buf[1], sizeof(a->buf[1]), "%s/bundle-%s", c->tmp, compare_workload_names[w]);
        add(a, "--root");
        add(a, a->buf[0]);
        add(a, "run");
        add(a, "--bundle");
        add(a, a->buf[1]);
        add(a, id);
        /* the bundle's config.json holds the arguments; the disk file is
         * the host's tmp/data/disk, /data/disk inside */
        snprintf(a->disk, sizeof(a->disk), "%s/data/disk", c->tmp);
        return 0;
    case CMP_K_KVM:
        add(a, o->vessel);
        add(a, "vm");
        add(a, "run");
        add(a, "--kernel");
        add(a, c->bare);
        add(a, "--memory");
        add(a, "256M");
        add(a, "--no-reboot");
        add(a, "--console");
        add(a, "stdio");
        add(a, "--append");
        snprintf(a->buf[0], sizeof(a->buf[0]), "%stsc_khz=%lu -- %s %s",
                 c->kvm_ring0 ? "ring=0 " : "", c->vm.tsc_khz, compare_workload_names[w], c->scale);
        add(a, a->buf[0]);
        return 0;
    case CMP_K_RVVM_JIT:
    case CMP_K_RVVM_INTERP:
        add(a, o->vessel);
        add(a, "vm");
        add(a, "run");
        add(a, "--arch");
        add(a, "riscv64");
        add(a, "--accel");
        add(a, k == CMP_K_RVVM_JIT ? "jit" : "interp");
        add(a, "--memory");
        add(a, "512M");
        add(a, "--no-reboot");
        add(a, "--console");
        add(a, "stdio");
        snprintf(a->buf[1], sizeof(a->buf[1]), "%s,ro", user ? c->rv_user_disk : c->rv_disk);
        add(a, "--disk");
        add(a, a->buf[1]);
        if (w == CMP_W_DISK) {
            /* O_DIRECT on the host too (cache=none), as the workload's own
             * O_DIRECT natively: both skip a page cache */
            snprintf(a->buf[2], sizeof(a->buf[2]), "%s,cache=none", a->disk);
            add(a, "--disk");
            add(a, a->buf[2]);
        }
        if (w == CMP_W_NET) {
            add(a, "--net");
            add(a, "user");
        }
        /* init runs /mnt/run from /dev/vda with these arguments, then powers
         * off (guest/riscv64/init.c); user networking's gateway 10.0.2.2 is
         * the host's loopback, where the sink listens */
        char args[512] = "";
        if (user) {
            for (char *const *p = o->cmd + 1; *p; p++)
                snprintf(args + strlen(args), sizeof(args) - strlen(args), "%s%s",
                         p == o->cmd + 1 ? "" : ",", *p);
        } else {
            snprintf(args, sizeof(args), "%s,%s%s%s", compare_workload_names[w], c->scale,
                     w == CMP_W_DISK ? ",/dev/vdb" : "", w == CMP_W_NET ? "," : "");
            if (w == CMP_W_NET)
                snprintf(args + strlen(args), sizeof(args) - strlen(args), "10.0.2.2:%d",
                         c->vm.sink_port);
        }
        snprintf(a->buf[0], sizeof(a->buf[0]), "console=ttyS0 quiet%s vessel.run=%s",
                 w == CMP_W_NET ? " vessel.ip=10.0.2.15/24,10.0.2.2" : "", args);
        add(a, "--append");
        add(a, a->buf[0]);
        how->guest_run = user;
        return 0;
    case CMP_K_EMU_JIT:
    case CMP_K_EMU_INTERP:
        add(a, o->vessel);
        add(a, "emu");
        add(a, "--accel");
        add(a, k == CMP_K_EMU_JIT ? "jit" : "interp");
        if (user) {
            add(a, o->rv_binary);
            for (char *const *p = o->cmd + 1; *p; p++)
                add(a, *p);
            return 0;
        }
        add(a, c->rv);
        workload_args(a, c, w, a->disk, NULL);
        return 0;
    }
    return -1;
}
