/* What `vessel compare` found: medians and ratios, the environment, the
 * table, the terminal bars and the JSON. */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include "compare/compare.h"
#include "util/cleanup.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median_u64(const uint64_t *v, int n)
{
    double d[CMP_MAX_RUNS];
    for (int i = 0; i < n; i++)
        d[i] = (double)v[i];
    qsort(d, (size_t)n, sizeof(d[0]), cmp_double);
    return n % 2 ? d[n / 2] : (d[n / 2 - 1] + d[n / 2]) / 2;
}

static bool cell_ok(const struct compare_cell *c)
{
    return !c->skip && !c->failed[0] && c->n > 0;
}

void compare_summarize(struct compare_result *res)
{
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++) {
            struct compare_cell *c = &res->cell[k][w];
            if (!cell_ok(c))
                continue;
            c->median_start_ns = median_u64(c->start_ns, c->n);
            c->median_wall_ns = median_u64(c->wall_ns, c->n);
            c->median_ns = w == CMP_W_STARTUP ? c->median_start_ns : median_u64(c->work_ns, c->n);
            c->peak_rss_kb = 0;
            for (int i = 0; i < c->n; i++)
                c->peak_rss_kb = c->rss_kb[i] > c->peak_rss_kb ? c->rss_kb[i] : c->peak_rss_kb;
        }
    for (int w = 0; w < CMP_W_N; w++) {
        const struct compare_cell *nat = &res->cell[CMP_K_NATIVE][w];
        for (int k = 0; k < CMP_K_N; k++) {
            struct compare_cell *c = &res->cell[k][w];
            c->ratio = cell_ok(c) && cell_ok(nat) && nat->median_ns > 0
                           ? c->median_ns / nat->median_ns
                           : 0;
        }
    }
}

static void read_line_field(const char *path, const char *key, char *out, size_t len)
{
    cleanup_fclose FILE *f = fopen(path, "r");
    char line[512];
    size_t kl = strlen(key);
    while (f && fgets(line, sizeof(line), f)) {
        if (strncmp(line, key, kl))
            continue;
        char *v = line + kl;
        v += strspn(v, " \t:=\"");
        v[strcspn(v, "\"\n")] = 0;
        snprintf(out, len, "%s", v);
        return;
    }
}

void compare_environment(struct compare_result *res)
{
    snprintf(res->cpu, sizeof(res->cpu), "unknown CPU");
    read_line_field("/proc/cpuinfo", "model name", res->cpu, sizeof(res->cpu));
    struct utsname u;
    if (uname(&u) == 0)
        snprintf(res->kernel, sizeof(res->kernel), "Linux %.60s %.20s", u.release, u.machine);
    snprintf(res->os, sizeof(res->os), "Linux");
    read_line_field("/etc/os-release", "PRETTY_NAME", res->os, sizeof(res->os));
    res->ncpus = (int)sysconf(_SC_NPROCESSORS_ONLN);
    /* a busy host makes noisy numbers: say how busy it was */
    cleanup_fclose FILE *la = fopen("/proc/loadavg", "r");
    double l1, l5, l15;
    if (la && fscanf(la, "%lf %lf %lf", &l1, &l5, &l15) == 3)
        snprintf(res->loadavg, sizeof(res->loadavg), "%.2f %.2f %.2f", l1, l5, l15);
    snprintf(res->env_title, sizeof(res->env_title), "%.200s, %d cores, %.100s, %.100s", res->cpu,
             res->ncpus, res->kernel, res->os);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(res->date, sizeof(res->date), "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void fmt_time(char *b, size_t n, double ns)
{
    if (ns >= 1e9)
        snprintf(b, n, "%.2f s", ns / 1e9);
    else if (ns >= 1e6)
        snprintf(b, n, "%.1f ms", ns / 1e6);
    else
        snprintf(b, n, "%.0f us", ns / 1e3);
}

/* the workload's throughput in its own unit */
static void fmt_rate(char *b, size_t n, int w, const struct compare_cell *c)
{
    double ns = c->median_ns;
    switch (w) {
    case CMP_W_CPU:
        snprintf(b, n, "%.0f it/s", c->ops / (ns / 1e9));
        break;
    case CMP_W_MEMORY:
        snprintf(b, n, "%.2f GB/s", c->ops / ns);
        break;
    case CMP_W_SYSCALL:
        snprintf(b, n, "%.2f us/call", ns / 1e3 / (double)c->ops);
        break;
    case CMP_W_DISK:
    case CMP_W_NET:
        snprintf(b, n, "%.0f MB/s", c->ops / (ns / 1e3));
        break;
    default:
        snprintf(b, n, "-");
    }
}

void compare_print_table(FILE *f, const struct compare_result *res)
{
    fprintf(f, "%s\n%d run(s) per kind and workload, interleaved; scale %d; load average %s\n\n",
            res->env_title, res->opts.runs, res->opts.scale,
            res->loadavg[0] ? res->loadavg : "unknown");
    fprintf(f, "%-8s %-15s %10s %9s %14s %10s %10s\n", "WORKLOAD", "KIND", "MEDIAN", "VS NATIVE",
            "RATE", "START-UP", "PEAK RSS");
    for (int w = 0; w < CMP_W_N; w++) {
        if (!(res->opts.workloads & (1u << w)))
            continue;
        for (int k = 0; k < CMP_K_N; k++) {
            if (!CMP_KIND_ON(res, k))
                continue;
            const struct compare_cell *c = &res->cell[k][w];
            const char *wn = compare_workload_names[w], *kn = compare_kind_names[k];
            if (c->skip) {
                fprintf(f, "%-8s %-15s skipped: %s\n", wn, kn, c->skip);
                continue;
            }
            if (!cell_ok(c)) {
                fprintf(f, "%-8s %-15s failed: %s\n", wn, kn, c->failed);
                continue;
            }
            char med[32], rate[32], st[32], ratio[32];
            fmt_time(med, sizeof(med), c->median_ns);
            fmt_rate(rate, sizeof(rate), w, c);
            fmt_time(st, sizeof(st), c->median_start_ns);
            if (w == CMP_W_COMMAND && c->median_start_ns == 0) /* no marker to see */
                snprintf(st, sizeof(st), "-");
            snprintf(ratio, sizeof(ratio), c->ratio > 0 ? "%.2fx" : "-", c->ratio);
            fprintf(f, "%-8s %-15s %10s %9s %14s %10s %7.1f MiB\n", wn, kn, med, ratio, rate, st,
                    c->peak_rss_kb / 1024.0);
        }
    }
    fprintf(f, "\nMEDIAN: the workload's own timing of its kernel (start-up: spawn to the "
               "workload's first line;\na command: its wall time); START-UP: spawn to the "
               "workload's first line (VMs: as the host saw it\non the console), median; PEAK "
               "RSS: the process running the workload (the emulator for emu-*,\nthe VMM, guest "
               "memory included, for VMs).\n");
}

void compare_print_bars(FILE *f, const struct compare_result *res)
{
    const char *lang = getenv("LC_ALL");
    if (!lang || !*lang)
        lang = getenv("LC_CTYPE");
    if (!lang || !*lang)
        lang = getenv("LANG");
    bool utf8 = lang && (strstr(lang, "UTF-8") || strstr(lang, "utf8"));
    double lo = 1, hi = 1;
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++) {
            double r = res->cell[k][w].ratio;
            if (r > 0) {
                lo = r < lo ? r : lo;
                hi = r > hi ? r : hi;
            }
        }
    lo /= 2; /* native's bar is never empty */
    const int width = 40;
    fprintf(f, "\ntime relative to native (log scale; shorter is faster)\n");
    for (int w = 0; w < CMP_W_N; w++) {
        if (!(res->opts.workloads & (1u << w)))
            continue;
        fprintf(f, "%s\n", compare_workload_names[w]);
        for (int k = 0; k < CMP_K_N; k++) {
            if (!CMP_KIND_ON(res, k))
                continue;
            const struct compare_cell *c = &res->cell[k][w];
            fprintf(f, "  %-15s ", compare_kind_names[k]);
            if (c->ratio <= 0) {
                fprintf(f, "(%s)\n",
                        c->skip        ? "skipped"
                        : c->failed[0] ? "failed"
                                       : "no native row to compare with");
                continue;
            }
            int n = (int)lround(width * log(c->ratio / lo) / log(hi / lo));
            n = n < 1 ? 1 : n;
            for (int i = 0; i < n; i++)
                fputs(utf8 ? "\u2588" : "#", f);
            fprintf(f, " %.2fx\n", c->ratio);
        }
    }
}

int compare_write_json(const struct compare_result *res, const char *path, FILE *also, vs_err *err)
{
    json_t *env = json_pack("{s:s, s:i, s:s, s:s, s:s, s:s, s:s}", "cpu", res->cpu, "cpus",
                            res->ncpus, "kernel", res->kernel, "os", res->os, "title",
                            res->env_title, "date", res->date, "loadavg", res->loadavg);
    json_t *kinds = json_array(), *rows = json_array(), *wls = json_array();
    for (int k = 0; k < CMP_K_N; k++) {
        if (!CMP_KIND_ON(res, k))
            continue;
        json_t *o = json_pack("{s:s, s:s}", "name", compare_kind_names[k], "status",
                              res->kind_skip[k] ? "skipped" : "measured");
        if (res->kind_skip[k])
            json_object_set_new(o, "reason", json_string(res->kind_skip[k]));
        json_array_append_new(kinds, o);
    }
    for (int w = 0; w < CMP_W_N; w++) {
        if (!(res->opts.workloads & (1u << w)))
            continue;
        json_array_append_new(wls, json_string(compare_workload_names[w]));
        for (int k = 0; k < CMP_K_N; k++) {
            if (!CMP_KIND_ON(res, k))
                continue;
            const struct compare_cell *c = &res->cell[k][w];
            json_t *row = json_pack("{s:s, s:s}", "workload", compare_workload_names[w], "kind",
                                    compare_kind_names[k]);
            if (c->skip) {
                json_object_set_new(row, "status", json_string("skipped"));
                json_object_set_new(row, "reason", json_string(c->skip));
            } else if (!cell_ok(c)) {
                json_object_set_new(row, "status", json_string("failed"));
                json_object_set_new(row, "reason", json_string(c->failed));
            } else {
                /* a 64-bit checksum: hex, JSON numbers stop being exact at 2^53 */
                char check[24];
                snprintf(check, sizeof(check), "%llx", (unsigned long long)c->check);
                json_t *samples = json_array();
                for (int i = 0; i < c->n; i++)
                    json_array_append_new(
                        samples,
                        json_pack("{s:I, s:I, s:I, s:I}", "work_ns", (json_int_t)c->work_ns[i],
                                  "startup_ns", (json_int_t)c->start_ns[i], "wall_ns",
                                  (json_int_t)c->wall_ns[i], "rss_kb", (json_int_t)c->rss_kb[i]));
                json_object_update_new(
                    row, json_pack("{s:s, s:i, s:f, s:f, s:f, s:f, s:I, s:I, s:s, s:o}", "status",
                                   "ok", "runs", c->n, "median_ns", c->median_ns, "ratio", c->ratio,
                                   "startup_ns", c->median_start_ns, "wall_ns", c->median_wall_ns,
                                   "peak_rss_kb", (json_int_t)c->peak_rss_kb, "ops",
                                   (json_int_t)c->ops, "check", check, "samples", samples));
            }
            json_array_append_new(rows, row);
        }
    }
    json_t *doc =
        json_pack("{s:o, s:i, s:i, s:o, s:o, s:o}", "environment", env, "runs", res->opts.runs,
                  "scale", res->opts.scale, "workloads", wls, "kinds", kinds, "results", rows);
    json_t *charts = json_object();
    if (res->png[0])
        json_object_set_new(charts, "png", json_string(res->png));
    if (res->svg[0])
        json_object_set_new(charts, "svg", json_string(res->svg));
    if (res->chart_note[0])
        json_object_set_new(charts, "note", json_string(res->chart_note));
    json_object_set_new(doc, "charts", charts);
    int r = json_dump_file(doc, path, JSON_INDENT(2));
    if (r == 0 && also) {
        json_dumpf(doc, also, JSON_INDENT(2));
        fputc('\n', also);
    }
    json_decref(doc);
    return r < 0 ? vs_error(err, 0, "compare: cannot write %s", path) : 0;
}
