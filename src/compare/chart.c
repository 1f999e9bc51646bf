/* The chart: a gnuplot script and its data beside the results, run once for
 * a PNG and once for an SVG. gnuplot (Debian's gnuplot-nox) is a program, not
 * a library, so it is run like the compilers are. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "compare/compare.h"
#include "util/cleanup.h"

/* one row per workload, one column per measured kind: the ratio to native
 * ("?" where a run failed) */
static int write_data(const struct compare_result *res, const char *path, const int *kinds, int nk,
                      vs_err *err)
{
    cleanup_fclose FILE *f = fopen(path, "w");
    if (!f)
        return vs_error_errno(err, "compare: %s", path);
    fprintf(f, "# workload");
    for (int i = 0; i < nk; i++)
        fprintf(f, " %s", compare_kind_names[kinds[i]]);
    fputc('\n', f);
    for (int w = 0; w < CMP_W_N; w++) {
        if (!(res->opts.workloads & (1u << w)))
            continue;
        fprintf(f, "%s", compare_workload_names[w]);
        for (int i = 0; i < nk; i++) {
            double r = res->cell[kinds[i]][w].ratio;
            if (r > 0)
                fprintf(f, " %.6g", r);
            else
                fprintf(f, " ?");
        }
        fputc('\n', f);
    }
    return fflush(f) ? vs_error_errno(err, "compare: %s", path) : 0;
}

static void gp_string(FILE *f, const char *s)
{
    fputc('"', f);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fputc('\\', f);
        fputc(*s == '\n' ? ' ' : *s, f);
    }
    fputc('"', f);
}

int compare_chart(struct compare_result *res, vs_err *err)
{
    static const char *const colours[CMP_K_N] = {"#4477aa", "#228833", "#ccbb44", "#66ccee",
                                                 "#bbbbbb", "#ee6677", "#aa3377"};
    const char *out = res->opts.out_dir;
    int kinds[CMP_K_N], nk = 0;
    double hi = 1, lo = 0.5;
    for (int k = 0; k < CMP_K_N; k++) {
        bool any = false;
        for (int w = 0; w < CMP_W_N; w++)
            if (res->cell[k][w].ratio > 0) {
                any = true;
                hi = res->cell[k][w].ratio > hi ? res->cell[k][w].ratio : hi;
                lo = res->cell[k][w].ratio / 1.5 < lo ? res->cell[k][w].ratio / 1.5 : lo;
            }
        if (any)
            kinds[nk++] = k;
    }
    if (!nk) {
        snprintf(res->chart_note, sizeof(res->chart_note), "nothing was measured");
        return 0;
    }
    char dat[PATH_MAX], gp[PATH_MAX];
    snprintf(dat, sizeof(dat), "%s/compare.dat", out);
    snprintf(gp, sizeof(gp), "%s/compare.gp", out);
    snprintf(res->png, sizeof(res->png), "%s/compare.png", out);
    snprintf(res->svg, sizeof(res->svg), "%s/compare.svg", out);
    if (write_data(res, dat, kinds, nk, err) < 0)
        return -1;

    cleanup_fclose FILE *f = fopen(gp, "w");
    if (!f)
        return vs_error_errno(err, "compare: %s", gp);
    fprintf(f, "# vessel compare: gnuplot %s draws %s and %s\n", gp, res->png, res->svg);
    fprintf(f, "set title ");
    char title[1024];
    snprintf(title, sizeof(title),
             "vessel compare: time relative to native (median of %d, log scale)\\n%s",
             res->opts.runs, res->env_title);
    fputc('"', f);
    for (const char *s = title; *s; s++) {
        if (*s == '"')
            fputc('\\', f);
        fputc(*s, f);
    }
    fprintf(f, "\" noenhanced\n");
    fprintf(f,
            "set style data histograms\nset style histogram clustered gap 1\n"
            "set style fill solid 0.9 border -1\nset boxwidth 0.9\n"
            "set logscale y\nset yrange [%g:%g]\nset ylabel \"x native (lower is faster)\"\n"
            "set grid ytics\nset key top left noenhanced\nset xtics noenhanced\n"
            "set datafile missing \"?\"\n",
            lo, hi * 3);
    int nw = 0; /* the clusters are at x = 0, 1, ... */
    for (int w = 0; w < CMP_W_N; w++)
        nw += !!(res->opts.workloads & (1u << w));
    fprintf(f, "set xrange [-0.6:%g]\n", nw - 0.4);
    /* kinds and cells that were not measured are named under the chart, one
     * line each, not dropped */
    char note[12][512];
    int nn = 0;
    for (int k = 0; k < CMP_K_N && nn < 12; k++) {
        if (!CMP_KIND_ON(res, k))
            continue;
        if (res->kind_skip[k]) {
            snprintf(note[nn++], sizeof(note[0]), "%s skipped: %s", compare_kind_names[k],
                     res->kind_skip[k]);
            continue;
        }
        /* one line per distinct reason, naming its workloads */
        const char *done[CMP_W_N];
        int nd = 0;
        for (int w0 = 0; w0 < CMP_W_N && nn < 12; w0++) {
            const char *why = res->cell[k][w0].skip;
            bool seen = false;
            for (int i = 0; i < nd; i++)
                seen |= done[i] == why;
            if (!(res->opts.workloads & (1u << w0)) || !why || seen)
                continue;
            done[nd++] = why;
            char which[256] = "";
            for (int w = w0; w < CMP_W_N; w++)
                if ((res->opts.workloads & (1u << w)) && res->cell[k][w].skip == why)
                    snprintf(which + strlen(which), sizeof(which) - strlen(which), "%s%s",
                             which[0] ? "," : "", compare_workload_names[w]);
            snprintf(note[nn++], sizeof(note[0]), "%s skipped for %s: %s", compare_kind_names[k],
                     which, why);
        }
    }
    if (nn) {
        fprintf(f, "set bmargin %d\n", 3 + nn);
        for (int i = 0; i < nn; i++) {
            fprintf(f, "set label %d ", i + 1);
            gp_string(f, note[i]);
            fprintf(f, " at screen 0.01, screen %.3f left font \",8\" noenhanced\n",
                    0.012 + 0.026 * (nn - 1 - i));
        }
    }
    fprintf(f, "plot ");
    for (int i = 0; i < nk; i++)
        fprintf(f, "%s'%s' using %d%s title \"%s\" lc rgb \"%s\"", i ? ", \\\n     " : "",
                i ? "" : dat, i + 2, i ? "" : ":xtic(1)", compare_kind_names[kinds[i]],
                colours[kinds[i]]);
    /* the ratio above each bar: bar i of a cluster of nk (gap 1) is centred
     * at x + (i - (nk - 1) / 2) / (nk + 1) */
    for (int i = 0; i < nk; i++)
        fprintf(f,
                ", \\\n     '' using ($0 + (%d - %g) / %d.0):%d:(sprintf(\"%%.1f\", column(%d))) "
                "with labels offset 0,0.7 font \",8\" notitle",
                i, (nk - 1) / 2.0, nk + 1, i + 2, i + 2);
    fputc('\n', f);
    if (fflush(f))
        return vs_error_errno(err, "compare: %s", gp);

    const char *terms[2][2] = {{"pngcairo size 1200,700 font \"sans,10\"", res->png},
                               {"svg size 1200,700 dynamic font \"sans,10\"", res->svg}};
    for (int t = 0; t < 2; t++) {
        char setup[PATH_MAX + 200];
        snprintf(setup, sizeof(setup), "set terminal %s; set output '%s'", terms[t][0],
                 terms[t][1]);
        pid_t pid = fork();
        if (pid < 0)
            return vs_error_errno(err, "compare: fork");
        if (pid == 0) {
            execlp("gnuplot", "gnuplot", "-e", setup, gp, (char *)NULL);
            _exit(errno == ENOENT ? 126 : 127);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
            ;
        if (WIFEXITED(st) && WEXITSTATUS(st) == 126) {
            res->png[0] = res->svg[0] = 0;
            snprintf(res->chart_note, sizeof(res->chart_note),
                     "no chart: gnuplot is not installed (apt-get install gnuplot-nox)");
            return 0;
        }
        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
            return vs_error(err, 0, "compare: gnuplot failed on %s", gp);
    }
    return 0;
}
