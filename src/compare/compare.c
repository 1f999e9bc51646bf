/* The measurement loop of `vessel compare`: which kinds can run here (and
 * why not), the container bundles, the VMs' disks, and the interleaved
 * runs. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <dirent.h>
#include <ftw.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "compare/compare.h"
#include "compare/kinds.h"
#include "oci/container.h"
#include "riscv/jit.h"
#include "util/cleanup.h"
#include "vm/config.h"

const char *const compare_workload_names[CMP_W_N] = {"cpu", "memory",  "syscall", "disk",
                                                     "net", "startup", "command"};
const char *const compare_kind_names[CMP_K_N] = {
    "native", "container", "kvm", "riscv-vm-jit", "riscv-vm-interp", "emu-jit", "emu-interp"};

int compare_parse_workloads(const char *list, unsigned *mask, vs_err *err)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int w = 0; w < CMP_W_COMMAND; w++)
            if (strlen(compare_workload_names[w]) == n && !strncmp(p, compare_workload_names[w], n))
                found = w;
        if (found < 0)
            return vs_error(err, EINVAL,
                            "compare: unknown workload '%.*s' (cpu, memory, syscall, disk, net, "
                            "startup)",
                            (int)n, p);
        *mask |= 1u << found;
        p += n + (p[n] == ',');
    }
    if (!*mask)
        return vs_error(err, EINVAL, "compare: --workloads is empty");
    return 0;
}

int compare_parse_kinds(const char *list, unsigned *mask, vs_err *err)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int k = 0; k < CMP_K_N; k++)
            if (strlen(compare_kind_names[k]) == n && !strncmp(p, compare_kind_names[k], n))
                found = k;
        if (found < 0)
            return vs_error(err, EINVAL,
                            "compare: unknown kind '%.*s' (native, container, kvm, riscv-vm-jit, "
                            "riscv-vm-interp, emu-jit, emu-interp)",
                            (int)n, p);
        *mask |= 1u << found;
        p += n + (p[n] == ',');
    }
    if (!*mask)
        return vs_error(err, EINVAL, "compare: --kinds is empty");
    return 0;
}

/* snprintf for paths, without -Wformat-truncation's guesses: the paths here
 * are short (a mkdtemp directory and fixed names) */
static void __attribute__((format(printf, 3, 4))) pathf(char *buf, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, n, fmt, ap);
    va_end(ap);
}

static int copy_file(const char *from, const char *to, vs_err *err)
{
    cleanup_close int in = open(from, O_RDONLY | O_CLOEXEC);
    cleanup_close int out = open(to, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    if (in < 0 || out < 0)
        return vs_error_errno(err, "compare: copy %s to %s", from, to);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0)
        if (write(out, buf, (size_t)n) != n)
            return vs_error_errno(err, "compare: write %s", to);
    return n < 0 ? vs_error_errno(err, "compare: read %s", from) : 0;
}

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *ftw)
{
    remove(p);
    return 0;
}

/* A user's command runs in the container over the host's own files: rootfs
 * (empty) gets the host's top-level directories as read-only bind mounts
 * and its top-level symbolic links (/bin -> usr/bin), all but the ones the
 * spec mounts afresh. */
static int host_root_mounts(const char *rootfs, json_t *mounts, vs_err *err)
{
    DIR *d = opendir("/");
    if (!d)
        return vs_error_errno(err, "compare: opendir /");
    struct dirent *e;
    int r = 0;
    while (r == 0 && (e = readdir(d))) {
        const char *n = e->d_name;
        if (n[0] == '.' || !strcmp(n, "proc") || !strcmp(n, "sys") || !strcmp(n, "dev"))
            continue;
        char host[PATH_MAX], in[PATH_MAX], target[PATH_MAX];
        pathf(host, sizeof(host), "/%s", n);
        pathf(in, sizeof(in), "%s/%s", rootfs, n);
        struct stat st;
        if (lstat(host, &st) < 0)
            continue;
        if (S_ISLNK(st.st_mode)) {
            ssize_t l = readlink(host, target, sizeof(target) - 1);
            if (l > 0) {
                target[l] = 0;
                if (symlink(target, in) < 0 && errno != EEXIST)
                    r = vs_error_errno(err, "compare: symlink %s", in);
            }
            continue;
        }
        if (!S_ISDIR(st.st_mode))
            continue;
        if (mkdir(in, 0755) < 0 && errno != EEXIST) {
            r = vs_error_errno(err, "compare: mkdir %s", in);
            break;
        }
        json_array_append_new(mounts,
                              json_pack("{s:s, s:s, s:s, s:[ss]}", "destination", host, "type",
                                        "bind", "source", host, "options", "rbind", "ro"));
    }
    closedir(d);
    return r;
}

/* Point a default spec's bundle at rootfs (read-only) running args. */
static int write_bundle(const char *bundle, const char *rootfs, json_t *args, int w,
                        const char *data, vs_err *err)
{
    char p[PATH_MAX];
    if (mkdir(bundle, 0755) < 0) {
        json_decref(args);
        return vs_error_errno(err, "compare: mkdir %s", bundle);
    }
    if (oci_write_spec(bundle, false, err) < 0) {
        json_decref(args);
        return -1;
    }
    pathf(p, sizeof(p), "%s/config.json", bundle);
    json_error_t je;
    json_t *cfg = json_load_file(p, 0, &je);
    json_t *proc = cfg ? json_object_get(cfg, "process") : NULL;
    json_t *root = cfg ? json_object_get(cfg, "root") : NULL;
    json_t *lx = cfg ? json_object_get(cfg, "linux") : NULL;
    json_t *mounts = cfg ? json_object_get(cfg, "mounts") : NULL;
    if (!json_is_object(proc) || !json_is_object(root) || !json_is_object(lx) ||
        !json_is_array(mounts)) {
        json_decref(cfg);
        json_decref(args);
        return vs_error(err, 0, "compare: %s: not vessel's default spec", p);
    }
    json_object_set_new(root, "path", json_string(rootfs));
    json_object_set_new(root, "readonly", json_true());
    json_object_set_new(proc, "terminal", json_false());
    json_object_set_new(proc, "args", args);
    if (w == CMP_W_DISK) /* the disk file lives on the host, as natively */
        json_array_append_new(mounts,
                              json_pack("{s:s, s:s, s:s, s:[ss]}", "destination", "/data", "type",
                                        "bind", "source", data, "options", "rbind", "rw"));
    if (w == CMP_W_COMMAND && host_root_mounts(rootfs, mounts, err) < 0) {
        json_decref(cfg);
        return -1;
    }
    if (w == CMP_W_COMMAND) { /* relative paths mean what they mean natively */
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof(cwd)))
            json_object_set_new(proc, "cwd", json_string(cwd));
    }
    if (w == CMP_W_NET) {
        /* the host's network namespace (podman's --network host): a new one's
         * loopback is down, and vessel-runc does not bring it up */
        json_t *nss = json_object_get(lx, "namespaces");
        for (size_t i = json_array_size(nss); i-- > 0;)
            if (!strcmp(json_string_value(json_object_get(json_array_get(nss, i), "type")) ?: "",
                        "network"))
                json_array_remove(nss, i);
    }
    int r = json_dump_file(cfg, p, JSON_INDENT(1));
    json_decref(cfg);
    if (r < 0)
        return vs_error(err, 0, "compare: cannot write %s", p);
    return 0;
}

/* tmp/rootfs holds only the static workload; tmp/bundle-<workload> holds a
 * config.json (vessel's default spec) that runs it with its arguments. A
 * user's command runs as given over the host's own root, read-only. */
static int make_bundles(const char *tmp, const char *workload, const struct compare_opts *o,
                        vs_err *err)
{
    char rootfs[PATH_MAX], p[PATH_MAX], data[PATH_MAX];
    pathf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
    pathf(data, sizeof(data), "%s/data", tmp);
    if (mkdir(rootfs, 0755) < 0 || mkdir(data, 0755) < 0)
        return vs_error_errno(err, "compare: mkdir %s", rootfs);
    for (const char *const *d = (const char *const[]){"proc", "dev", "sys", "tmp", "data", NULL};
         *d; d++) {
        pathf(p, sizeof(p), "%s/%s", rootfs, *d);
        if (mkdir(p, 0755) < 0)
            return vs_error_errno(err, "compare: mkdir %s", p);
    }
    pathf(p, sizeof(p), "%s/workload", rootfs);
    if (copy_file(workload, p, err) < 0)
        return -1;
    char scale[16];
    snprintf(scale, sizeof(scale), "%d", o->scale);
    for (int w = 0; w < CMP_W_N; w++) {
        if (!(o->workloads & (1u << w)))
            continue;
        char bundle[PATH_MAX];
        pathf(bundle, sizeof(bundle), "%s/bundle-%s", tmp, compare_workload_names[w]);
        json_t *args = json_array();
        if (w == CMP_W_COMMAND) {
            for (char *const *a = o->cmd; *a; a++)
                json_array_append_new(args, json_string(*a));
        } else {
            json_array_append_new(args, json_string("/workload"));
            json_array_append_new(args, json_string(compare_workload_names[w]));
            json_array_append_new(args, json_string(scale));
            if (w == CMP_W_DISK)
                json_array_append_new(args, json_string("/data/disk"));
        }
        char hostroot[PATH_MAX];
        pathf(hostroot, sizeof(hostroot), "%s/hostroot", tmp);
        if (w == CMP_W_COMMAND && mkdir(hostroot, 0755) < 0)
            return vs_error_errno(err, "compare: mkdir %s", hostroot);
        if (write_bundle(bundle, w == CMP_W_COMMAND ? hostroot : rootfs, args, w, data, err) < 0)
            return -1;
    }
    return 0;
}

/* after a run that failed or was killed: `delete --force`, so no container
 * (process, cgroup) outlives vessel compare */
static void delete_container(const struct compare_opts *o, const char *root, const char *id)
{
    const char *argv[9];
    size_t n = 0;
    if (o->runc) {
        argv[n++] = o->runc;
    } else {
        argv[n++] = o->vessel;
        argv[n++] = "oci";
    }
    const char *rest[] = {"--root", root, "delete", "--force", id, NULL};
    memcpy(argv + n, rest, sizeof(rest));
    pid_t pid = fork();
    if (pid == 0) {
        int null = open("/dev/null", O_RDWR);
        dup2(null, 1);
        dup2(null, 2);
        execv(argv[0], (char *const *)argv);
        _exit(127);
    }
    int st;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Time left: each cell's remaining runs at that cell's mean so far (the
 * interpreter's runs are not the container's), the mean of all runs for a
 * cell not yet run. */
static double seconds_left(const struct compare_result *res, uint64_t elapsed_ms, int done)
{
    double left = 0, mean_all = done ? elapsed_ms / 1000.0 / done : 0;
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++) {
            const struct compare_cell *c = &res->cell[k][w];
            if (c->skip || c->failed[0] || !(res->opts.workloads & (1u << w)))
                continue;
            double sum = 0;
            for (int i = 0; i < c->n; i++)
                sum += c->wall_ns[i] / 1e9;
            left += (res->opts.runs - c->n) * (c->n ? sum / c->n : mean_all);
        }
    return left;
}

static int measure(struct compare_result *res, const struct compare_ctx *ctx, vs_err *err)
{
    const struct compare_opts *o = &res->opts;
    int total = 0, done = 0, seq = 0;
    for (int w = 0; w < CMP_W_N; w++)
        for (int k = 0; k < CMP_K_N; k++)
            if ((o->workloads & (1u << w)) && !res->cell[k][w].skip)
                total += o->runs;
    uint64_t t_begin = now_ms();
    for (int r = 0; r < o->runs; r++) {
        for (int w = 0; w < CMP_W_N; w++) {
            if (!(o->workloads & (1u << w)))
                continue;
            /* interleaved: every kind once per round, starting with a
             * different kind each round so none always runs first */
            for (int i = 0; i < CMP_K_N; i++) {
                int k = (i + r) % CMP_K_N;
                struct compare_cell *c = &res->cell[k][w];
                if (c->skip)
                    continue;
                if (c->failed[0]) {
                    done++;
                    continue;
                }
                const char *wn = compare_workload_names[w];
                char id[64], root[PATH_MAX];
                pathf(id, sizeof(id), "vcmp-%d-%d", (int)getpid(), seq++);
                pathf(root, sizeof(root), "%s/state", ctx->tmp);
                static struct compare_argv a;
                struct compare_spawn_how how;
                compare_kind_argv(ctx, k, w, id, &a, &how);
                struct compare_sample s;
                vs_err e = {0};
                if (o->stop && *o->stop)
                    return vs_error(err, EINTR, "compare: interrupted");
                /* each run writes a fresh file or disk: none inherits the
                 * blocks another allocated */
                int rc = 0;
                if (w == CMP_W_DISK) {
                    unlink(a.disk);
                    if (CMP_KIND_IS_RVVM(k))
                        rc = compare_make_scratch(a.disk, (uint64_t)o->scale * 8 << 20, &e);
                }
                if (rc == 0)
                    rc = compare_spawn((char *const *)a.v, &how, o->stop, &s, &e);
                if (w == CMP_W_DISK)
                    unlink(a.disk);
                done++;
                if (rc < 0 && k == CMP_K_CONTAINER) /* killed or failed: leave nothing */
                    delete_container(o, root, id);
                if (rc < 0 && o->stop && *o->stop)
                    return vs_error(err, EINTR, "compare: interrupted");
                if (rc < 0) {
                    pathf(c->failed, sizeof(c->failed), "%s", e.msg);
                } else {
                    c->work_ns[c->n] = s.work_ns;
                    c->start_ns[c->n] = s.start_ns;
                    c->wall_ns[c->n] = s.wall_ns;
                    c->rss_kb[c->n] = s.rss_kb;
                    c->n++;
                    c->ops = s.ops;
                    c->check = s.check;
                }
                if (o->progress) {
                    double left = seconds_left(res, now_ms() - t_begin, done);
                    if (rc < 0)
                        fprintf(o->progress,
                                "vessel compare: [%d/%d] %s, %s, run %d/%d: failed: %s\n", done,
                                total, wn, compare_kind_names[k], r + 1, o->runs, e.msg);
                    else
                        fprintf(o->progress,
                                "vessel compare: [%d/%d] %s, %s, run %d/%d: %.3f s "
                                "(about %.0f s left)\n",
                                done, total, wn, compare_kind_names[k], r + 1, o->runs,
                                s.wall_ns / 1e9, left);
                    fflush(o->progress);
                }
            }
        }
    }
    return 0;
}

/* The default riscv64 guest (guest/build-riscv64.sh), or why it is missing */
static const char *rv_guest_missing(void)
{
    static char why[PATH_MAX + 128];
    cleanup_free char *dir = vm_default_guest_dir(VM_ARCH_RISCV64);
    char p[PATH_MAX];
    pathf(p, sizeof(p), "%s/vmlinuz", dir ? dir : "?");
    if (!dir || access(p, R_OK) < 0) {
        pathf(why, sizeof(why),
              "the default riscv64 guest is not built (guest/build-riscv64.sh; "
              "looked in %s)",
              dir ? dir : "?");
        return why;
    }
    return NULL;
}

/* Which kinds can run here, and which of their cells; every cell a kind
 * cannot run says why. */
static void decide_skips(struct compare_result *res, struct compare_ctx *ctx, const char *rv_why)
{
    const struct compare_opts *o = &res->opts;
    const char **ks = res->kind_skip;
    const char *kvm_limit = NULL;
    if (CMP_KIND_ON(res, CMP_K_KVM)) {
        ks[CMP_K_KVM] = compare_kvm_check(&kvm_limit);
        if (!ks[CMP_K_KVM])
            ks[CMP_K_KVM] = compare_build_bare_guest(ctx->bare, sizeof(ctx->bare));
    }
    if (!ks[CMP_K_KVM] && kvm_limit)
        ctx->kvm_ring0 = true;
    if (geteuid() != 0)
        ks[CMP_K_CONTAINER] = "the container row needs root (a rootful bundle)";
    bool user = o->workloads & (1u << CMP_W_COMMAND);
    if (user && !o->rv_binary) {
        ks[CMP_K_EMU_JIT] = ks[CMP_K_EMU_INTERP] = ks[CMP_K_RVVM_JIT] = ks[CMP_K_RVVM_INTERP] =
            "no riscv64 build of the command (--riscv64-binary PATH)";
    } else if (!user && rv_why) {
        ks[CMP_K_EMU_JIT] = ks[CMP_K_EMU_INTERP] = ks[CMP_K_RVVM_JIT] = ks[CMP_K_RVVM_INTERP] =
            rv_why;
    } else {
        const char *g = rv_guest_missing();
        if (g)
            ks[CMP_K_RVVM_JIT] = ks[CMP_K_RVVM_INTERP] = g;
        if (!rv_jit_available())
            ks[CMP_K_EMU_JIT] = ks[CMP_K_RVVM_JIT] =
                "the riscv64 translator does not run on this host";
    }
    if (user && !ks[CMP_K_KVM])
        ks[CMP_K_KVM] = "the KVM row's guest is a bare kernel, not Linux: a Linux program "
                        "cannot run in it";
    for (int k = 0; k < CMP_K_N; k++)
        if (!CMP_KIND_ON(res, k))
            ks[k] = "not asked for (--kinds)";
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++) {
            const char *why = ks[k];
            if (!why && k == CMP_K_KVM && (w == CMP_W_DISK || w == CMP_W_NET))
                why = "the KVM row's guest is a bare kernel with no virtio-blk or virtio-net "
                      "driver";
            if (!why && k == CMP_K_KVM && kvm_limit && w != CMP_W_STARTUP)
                why = kvm_limit;
            if (!why && (k == CMP_K_EMU_JIT || k == CMP_K_EMU_INTERP) && w == CMP_W_NET)
                why = "vessel emu (user-mode emulation) has no socket system calls";
            res->cell[k][w].skip = why;
        }
}

int compare_run(const struct compare_opts *o, struct compare_result *res, vs_err *err)
{
    memset(res, 0, sizeof(*res));
    res->opts = *o;
    compare_environment(res);

    static struct compare_ctx ctx;
    memset(&ctx, 0, sizeof(ctx));
    ctx.o = &res->opts;
    snprintf(ctx.scale, sizeof(ctx.scale), "%d", o->scale);
    const char *rv_why = NULL;
    bool user = o->workloads & (1u << CMP_W_COMMAND);
    if (o->progress)
        fprintf(o->progress,
                "vessel compare: building the workloads (cached after the first run)\n");
    if (compare_build_workloads(ctx.x86, sizeof(ctx.x86), ctx.rv, sizeof(ctx.rv), &rv_why, err) < 0)
        return -1;
    decide_skips(res, &ctx, rv_why);

    snprintf(ctx.tmp, sizeof(ctx.tmp), "/tmp/vessel-compare-XXXXXX");
    if (!mkdtemp(ctx.tmp))
        return vs_error_errno(err, "compare: mkdtemp");
    int r = 0;
    if (!res->kind_skip[CMP_K_CONTAINER])
        r = make_bundles(ctx.tmp, ctx.x86, o, err);
    if (r == 0 && !res->kind_skip[CMP_K_KVM])
        ctx.vm.tsc_khz = compare_tsc_khz();
    /* the riscv64 VM's program disk: an ext4 image the guest's init runs
     * /run from; made once per compare, a labelled skip if it cannot be */
    for (int k = CMP_K_RVVM_JIT; r == 0 && k <= CMP_K_RVVM_INTERP; k++) {
        if (res->kind_skip[k] || ctx.rv_disk[0])
            continue;
        vs_err e = {0};
        pathf(ctx.rv_disk, sizeof(ctx.rv_disk), "%s/riscv64-run.img", ctx.tmp);
        pathf(ctx.rv_user_disk, sizeof(ctx.rv_user_disk), "%s/riscv64-user.img", ctx.tmp);
        if (compare_make_run_disk(user ? ctx.rv_user_disk : ctx.rv_disk,
                                  user ? o->rv_binary : ctx.rv, &e) < 0) {
            static char why[300];
            pathf(why, sizeof(why), "%s", e.msg);
            res->kind_skip[CMP_K_RVVM_JIT] = res->kind_skip[CMP_K_RVVM_INTERP] = why;
            for (int w = 0; w < CMP_W_N; w++)
                res->cell[CMP_K_RVVM_JIT][w].skip = res->cell[CMP_K_RVVM_INTERP][w].skip = why;
        }
    }
    if (r == 0 && (o->workloads & (1u << CMP_W_NET)) &&
        (!res->kind_skip[CMP_K_RVVM_JIT] || !res->kind_skip[CMP_K_RVVM_INTERP]))
        r = compare_start_sink(&ctx.vm.sink_port, err);
    if (r == 0)
        r = measure(res, &ctx, err);
    nftw(ctx.tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (r < 0)
        return -1;
    compare_summarize(res);
    return 0;
}
