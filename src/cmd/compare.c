/* vessel compare [--workloads LIST] [--kinds LIST] [--runs N] [--scale N]
 *                [--out DIR] [--format table|json] [--riscv64-binary PATH]
 *                [-- CMD ARGS]
 * Argument parsing only; src/compare does the work. */
#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "cmd/opt.h"
#include "compare/compare.h"
#include "util/cleanup.h"

static void compare_usage(FILE *f)
{
    fprintf(
        f,
        "usage: vessel compare [--workloads cpu,memory,syscall,disk,net,startup] [--runs N]\n"
        "                      [--kinds LIST] [--scale N] [--out DIR] [--format table|json]\n"
        "                      [--riscv64-binary PATH] [-- CMD ARGS]\n\n"
        "Runs the same workloads natively, in a container (vessel-runc), in a KVM microVM,\n"
        "in the emulated riscv64 machine (vessel vm run --arch riscv64) and under riscv64\n"
        "user-mode emulation (vessel emu), with each riscv64 accelerator, interleaved, and\n"
        "reports per kind the median time, the ratio to native, the start-up time (to the\n"
        "workload's first line) and the peak RSS. Kinds that cannot run here are listed as\n"
        "skipped, with the reason.\n"
        "  --workloads L  comma-separated (default: all)\n"
        "  --kinds L      the kinds to run, comma-separated (default: all): native, container,\n"
        "                 kvm, riscv-vm-jit, riscv-vm-interp, emu-jit, emu-interp\n"
        "  --runs N       runs per kind and workload, 1..%d (default 3)\n"
        "  --scale N      workload size, 1..1000 (default 4; 1 is quick)\n"
        "  --out DIR      compare.json, compare.png, compare.svg and the gnuplot script\n"
        "                 (default ./vessel-compare)\n"
        "  --format F     table (with terminal bars; the default) or json, on stdout\n"
        "  -- CMD ARGS    measure this command instead: natively and in the container as\n"
        "                 given (over the host's root, read-only), and in the riscv64 kinds\n"
        "                 as --riscv64-binary PATH with the same ARGS\n",
        CMP_MAX_RUNS);
}

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
    stop = 1;
}

static int fail(const char *fmt, const char *arg)
{
    fprintf(stderr, "vessel: compare: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return 2;
}

int cmd_compare(int argc, char **argv)
{
    const char *workloads = NULL, *out = "vessel-compare", *format = "table", *rv_binary = NULL,
               *kinds = NULL;
    /* `-- CMD ARGS`: the user's command, split off before the options */
    char **cmd = NULL;
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--")) {
            cmd = argv + i + 1;
            argv[i] = NULL;
            argc = i;
            break;
        }
    int runs = 3, scale = 4;
    const struct cmd_opt table[] = {
        {"workloads", 'w', CMD_OPT_STR, &workloads}, {"runs", 'n', CMD_OPT_INT, &runs},
        {"scale", 0, CMD_OPT_INT, &scale},           {"out", 'o', CMD_OPT_STR, &out},
        {"format", 'f', CMD_OPT_STR, &format},       {"riscv64-binary", 0, CMD_OPT_STR, &rv_binary},
        {"kinds", 'k', CMD_OPT_STR, &kinds},
    };
    char *pos[1];
    struct cmd_optparse p = {.verb = "compare",
                             .opts = table,
                             .nopts = ARRAY_SIZE(table),
                             .pos = pos,
                             .maxpos = 0,
                             .hint = " (see 'vessel compare --help')"};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        compare_usage(stdout);
        return 0;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (p.npos)
        return fail("unexpected argument '%s' (see 'vessel compare --help')", pos[0]);
    struct compare_opts o = {.runs = runs, .scale = scale, .out_dir = out, .progress = stderr};
    if (runs < 1 || runs > CMP_MAX_RUNS) {
        fprintf(stderr, "vessel: compare: --runs must be 1..%d\n", CMP_MAX_RUNS);
        return 2;
    }
    if (scale < 1 || scale > 1000)
        return fail("--scale must be 1..1000%s", "");
    if (!strcmp(format, "json"))
        o.json = true;
    else if (strcmp(format, "table"))
        return fail("--format: '%s' is not table or json", format);
    o.kinds = (1u << CMP_K_N) - 1;
    if (kinds && compare_parse_kinds(kinds, &o.kinds, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    o.workloads = CMP_W_BUILTIN;
    if (workloads && compare_parse_workloads(workloads, &o.workloads, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (cmd && !cmd[0])
        return fail("'--' needs a command after it%s", "");
    if (cmd && workloads)
        return fail("--workloads and '-- CMD' exclude each other (the command is the "
                    "workload)%s",
                    "");
    if (rv_binary && !cmd)
        return fail("--riscv64-binary needs '-- CMD ARGS' (the command it is a build of)%s", "");
    if (rv_binary && access(rv_binary, R_OK) < 0)
        return fail("--riscv64-binary: cannot read '%s'", rv_binary);
    if (cmd) {
        o.workloads = 1u << CMP_W_COMMAND;
        o.cmd = cmd;
        o.rv_binary = rv_binary;
        /* the riscv64 VM's init takes the arguments comma-separated on the
         * kernel command line */
        for (char **a = cmd + 1; rv_binary && *a; a++)
            if (strpbrk(*a, ", \t\n\"") || !**a)
                return fail("'%s': an argument for the riscv64 VM may not be empty or hold a "
                            "comma, a quote or white space",
                            *a);
    }
    if (!*out)
        return fail("--out is empty%s", "");
    if (mkdir(out, 0755) < 0 && errno != EEXIST)
        return fail("--out: cannot create '%s'", out);

    /* this binary runs `vessel emu`; vessel-runc beside it runs containers */
    static char self[PATH_MAX], runc[PATH_MAX + 16];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return fail("cannot find the vessel binary%s", "");
    self[n] = 0;
    char dir[PATH_MAX];
    snprintf(dir, sizeof(dir), "%s", self);
    snprintf(runc, sizeof(runc), "%s/vessel-runc", dirname(dir));
    o.vessel = self;
    o.runc = access(runc, X_OK) == 0 ? runc : NULL;

    /* Ctrl-C or SIGTERM: stop cleanly (no scratch directory or container
     * left behind); no SA_RESTART, so a wait for a run is interrupted */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    o.stop = &stop;

    struct compare_result *res = calloc(1, sizeof(*res));
    if (!res)
        return fail("out of memory%s", "");
    r = compare_run(&o, res, &err);
    if (r == 0 && compare_chart(res, &err) < 0)
        r = -1;
    char json[PATH_MAX];
    snprintf(json, sizeof(json), "%s/compare.json", out);
    if (r == 0) {
        snprintf(res->json_path, sizeof(res->json_path), "%s", json);
        r = compare_write_json(res, json, o.json ? stdout : NULL, &err);
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        free(res);
        return stop ? 130 : 1;
    }
    if (!o.json) {
        compare_print_table(stdout, res);
        compare_print_bars(stdout, res);
        printf("\n%s", json);
        if (res->png[0])
            printf(", %s, %s", res->png, res->svg);
        printf("%s%s\n", res->chart_note[0] ? "; " : "", res->chart_note);
    }
    /* a kind that could not be measured here is a skip; a run that failed
     * is an error */
    int status = 0;
    for (int k = 0; k < CMP_K_N; k++)
        for (int w = 0; w < CMP_W_N; w++)
            if ((o.workloads & (1u << w)) && res->cell[k][w].failed[0])
                status = 1;
    free(res);
    return status;
}
