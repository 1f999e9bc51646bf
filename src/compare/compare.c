/* The measurement loop of `vessel compare`: which kinds can run here (and
 * why not), the container bundle, and the interleaved runs. */
#define _XOPEN_SOURCE 700
#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
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
#include "oci/container.h"
#include "riscv/jit.h"
#include "util/cleanup.h"

const char *const compare_workload_names[CMP_W_N] = {"cpu", "memory", "syscall", "startup"};
const char *const compare_kind_names[CMP_K_N] = {"native", "container", "kvm", "emu-jit",
                                                 "emu-interp"};

int compare_parse_workloads(const char *list, unsigned *mask, vs_err *err)
{
    *mask = 0;
    const char *p = list;
    while (*p) {
        size_t n = strcspn(p, ",");
        int found = -1;
        for (int w = 0; w < CMP_W_N; w++)
            if (strlen(compare_workload_names[w]) == n && !strncmp(p, compare_workload_names[w], n))
                found = w;
        if (found < 0)
            return vs_error(err, EINVAL,
                            "compare: unknown workload '%.*s' (cpu, memory, syscall, startup)",
                            (int)n, p);
        *mask |= 1u << found;
        p += n + (p[n] == ',');
    }
    if (!*mask)
        return vs_error(err, EINVAL, "compare: --workloads is empty");
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

/* tmp/rootfs holds only the static workload; tmp/bundle-<workload> holds a
 * config.json (vessel's default spec) that runs it with its arguments. */
static int make_bundles(const char *tmp, const char *workload, const struct compare_opts *o,
                        vs_err *err)
{
    char rootfs[PATH_MAX], p[PATH_MAX];
    pathf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
    if (mkdir(rootfs, 0755) < 0)
        return vs_error_errno(err, "compare: mkdir %s", rootfs);
    for (const char *const *d = (const char *const[]){"proc", "dev", "sys", "tmp", NULL}; *d; d++) {
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
        if (mkdir(bundle, 0755) < 0)
            return vs_error_errno(err, "compare: mkdir %s", bundle);
        if (oci_write_spec(bundle, false, err) < 0)
            return -1;
        pathf(p, sizeof(p), "%s/config.json", bundle);
        json_error_t je;
        json_t *cfg = json_load_file(p, 0, &je);
        json_t *proc = cfg ? json_object_get(cfg, "process") : NULL;
        json_t *root = cfg ? json_object_get(cfg, "root") : NULL;
        if (!json_is_object(proc) || !json_is_object(root)) {
            json_decref(cfg);
            return vs_error(err, 0, "compare: %s: not vessel's default spec", p);
        }
        json_object_set_new(root, "path", json_string(rootfs));
        json_object_set_new(root, "readonly", json_true());
        json_object_set_new(proc, "terminal", json_false());
        json_object_set_new(proc, "args",
                            json_pack("[sss]", "/workload", compare_workload_names[w], scale));
        int r = json_dump_file(cfg, p, JSON_INDENT(1));
        json_decref(cfg);
        if (r < 0)
            return vs_error(err, 0, "compare: cannot write %s", p);
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

static const char *kvm_skip(void)
{
    if (access("/dev/kvm", F_OK) < 0)
        return "/dev/kvm does not exist on this host";
    if (access("/dev/kvm", R_OK | W_OK) < 0)
        return "/dev/kvm cannot be opened";
    return "running the workloads in a KVM microVM guest is not implemented yet";
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

static int measure(struct compare_result *res, const char *tmp, const char *x86, const char *rv,
                   vs_err *err)
{
    const struct compare_opts *o = &res->opts;
    char scale[16];
    snprintf(scale, sizeof(scale), "%d", o->scale);
    int total = 0, done = 0, seq = 0;
    for (int w = 0; w < CMP_W_N; w++)
        for (int k = 0; k < CMP_K_N; k++)
            if ((o->workloads & (1u << w)) && !res->kind_skip[k])
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
                char id[64], root[PATH_MAX], bundle[PATH_MAX];
                pathf(id, sizeof(id), "vcmp-%d-%d", (int)getpid(), seq++);
                pathf(root, sizeof(root), "%s/state", tmp);
                pathf(bundle, sizeof(bundle), "%s/bundle-%s", tmp, wn);
                const char *argv[12] = {0};
                size_t n = 0;
                switch (k) {
                case CMP_K_NATIVE:
                    argv[n++] = x86;
                    break;
                case CMP_K_CONTAINER:
                    if (o->runc) {
                        argv[n++] = o->runc;
                    } else {
                        argv[n++] = o->vessel;
                        argv[n++] = "oci";
                    }
                    argv[n++] = "--root";
                    argv[n++] = root;
                    argv[n++] = "run";
                    argv[n++] = "--bundle";
                    argv[n++] = bundle;
                    argv[n++] = id;
                    break;
                case CMP_K_EMU_JIT:
                case CMP_K_EMU_INTERP:
                    argv[n++] = o->vessel;
                    argv[n++] = "emu";
                    argv[n++] = "--accel";
                    argv[n++] = k == CMP_K_EMU_JIT ? "jit" : "interp";
                    argv[n++] = rv;
                    break;
                }
                if (k != CMP_K_CONTAINER) {
                    argv[n++] = wn;
                    argv[n++] = scale;
                }
                struct compare_sample s;
                vs_err e = {0};
                if (o->stop && *o->stop)
                    return vs_error(err, EINTR, "compare: interrupted");
                int rc = compare_spawn((char *const *)argv, wn, o->stop, &s, &e);
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

int compare_run(const struct compare_opts *o, struct compare_result *res, vs_err *err)
{
    memset(res, 0, sizeof(*res));
    res->opts = *o;
    compare_environment(res);

    char x86[PATH_MAX], rv[PATH_MAX];
    const char *rv_why = NULL;
    if (o->progress)
        fprintf(o->progress,
                "vessel compare: building the workloads (cached after the first run)\n");
    if (compare_build_workloads(x86, sizeof(x86), rv, sizeof(rv), &rv_why, err) < 0)
        return -1;

    res->kind_skip[CMP_K_KVM] = kvm_skip();
    if (geteuid() != 0)
        res->kind_skip[CMP_K_CONTAINER] = "the container row needs root (a rootful bundle)";
    if (rv_why)
        res->kind_skip[CMP_K_EMU_JIT] = res->kind_skip[CMP_K_EMU_INTERP] = rv_why;
    else if (!rv_jit_available())
        res->kind_skip[CMP_K_EMU_JIT] = "the riscv64 translator does not run on this host";

    char tmp[] = "/tmp/vessel-compare-XXXXXX";
    if (!mkdtemp(tmp))
        return vs_error_errno(err, "compare: mkdtemp");
    int r = 0;
    if (!res->kind_skip[CMP_K_CONTAINER])
        r = make_bundles(tmp, x86, o, err);
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++)
            res->cell[k][w].skip = res->kind_skip[k];
    if (r == 0)
        r = measure(res, tmp, x86, rv, err);
    nftw(tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
    if (r < 0)
        return -1;
    compare_summarize(res);
    return 0;
}
