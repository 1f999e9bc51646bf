/* `vessel oci VERB` / `vessel-runc VERB`: runc's command line. The global
 * options and the table of verbs; each verb is in its own file (oci_*.c). */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/commands.h"
#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "oci/state.h"
#include "util/cleanup.h"
#include "util/log.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "dev"
#endif

struct oci_globals oci_g;
static FILE *log_file;
static bool log_json;

static void report(const char *msg)
{
    cmd_print_error(msg);
    if (log_file) {
        vs_log_set_file(log_file, log_json);
        vs_err_log("%s", msg);
    }
}

int oci_cmd_fail(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(msg);
    return 1;
}

int oci_cmd_done(int rc, const vs_err *err)
{
    if (rc < 0) {
        report(err->msg);
        return 1;
    }
    return 0;
}

int oci_cmd_parse(int argc, char **argv, const struct cmd_opt *opts, size_t nopts, char **pos,
                  int maxpos, bool rest_after_id, int *npos)
{
    struct cmd_optparse p = {.verb = argv[0],
                             .opts = opts,
                             .nopts = nopts,
                             .pos = pos,
                             .maxpos = maxpos,
                             .rest_after_first = rest_after_id};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    *npos = p.npos;
    if (r == CMD_OPT_HELP)
        return oci_cmd_fail("%s: see 'vessel-runc --help' and docs/oci.md", argv[0]);
    return r < 0 ? oci_cmd_done(r, &err) : 0;
}

int oci_cmd_parse_id(int argc, char **argv, const struct cmd_opt *opts, size_t nopts, char **pos,
                     int maxpos, bool rest_after_id, int *npos)
{
    if (oci_cmd_parse(argc, argv, opts, nopts, pos, maxpos, rest_after_id, npos))
        return 1;
    if (*npos < 1)
        return oci_cmd_fail("%s: missing container id", argv[0]);
    return 0;
}

static int oci_help(int argc, char **argv);

static int oci_criu(int argc, char **argv)
{
    return oci_cmd_fail("%s: not supported: CRIU does not work on this kernel", argv[0]);
}

static const struct cmd_verb oci_verbs[] = {
    {"create", oci_cmd_create,
     "[--bundle DIR] [--console-socket S] [--pid-file F] [--secure-defaults] ID",
     "create a container, stopped before its process\n"
     "                             (--secure-defaults: hardening, docs/security.md)"},
    {"start", oci_cmd_simple, "ID", "run a created container's process"},
    {"run", oci_cmd_create, "[--bundle DIR] [-d] [--secure-defaults] ID",
     "create + start + wait (its exit status)"},
    {"state", oci_cmd_simple, "ID", "the container's state as JSON"},
    {"kill", oci_cmd_kill, "[--all] ID [SIGNAL]", "send a signal (default TERM)"},
    {"delete", oci_cmd_simple, "[--force] ID",
     "remove a stopped (or, with --force, any) container"},
    {"exec", oci_cmd_exec, "[OPTIONS] ID [COMMAND...]", "run another process in the container"},
    {"list", oci_cmd_list, "[--format table|json] [-q]", "the containers under --root"},
    {"ps", oci_cmd_ps, "[--format table|json] ID", "the container's processes"},
    {"pause", oci_cmd_simple, "ID", "freeze every process"},
    {"resume", oci_cmd_simple, "ID", "thaw them"},
    {"update", oci_cmd_update, "[OPTIONS] ID", "change resource limits"},
    {"events", oci_cmd_events, "[--stats] [--interval 5s] ID", "resource usage as JSON"},
    {"features", oci_cmd_features, "", "what this runtime supports, as JSON"},
    {"spec", oci_cmd_spec, "[--bundle DIR] [--rootless]", "write a default config.json"},
    {"checkpoint", oci_criu, "", NULL},
    {"restore", oci_criu, "", NULL},
    {"help", oci_help, "", NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel-runc [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
               "       (also: vessel oci COMMAND ...)\n\n"
               "commands:\n");
    cmd_print_verbs(f, "", oci_verbs, ARRAY_SIZE(oci_verbs));
    fprintf(f, "\nglobal options: --root DIR --log FILE --log-format text|json --debug\n"
               "                --systemd-cgroup (refused: there is no systemd driver)\n");
}

static int oci_help(int argc, char **argv)
{
    usage(stdout);
    return 0;
}

/* argv[0] is "oci" or "vessel-runc" */
int cmd_oci(int argc, char **argv)
{
    struct oci_globals *g = &oci_g;
    const struct cmd_opt gopts[] = {
        {"root", 0, CMD_OPT_STR, &g->root},
        {"log", 0, CMD_OPT_STR, &g->log},
        {"log-format", 0, CMD_OPT_STR, &g->log_format},
        {"debug", 0, CMD_OPT_FLAG, &g->debug},
        {"systemd-cgroup", 0, CMD_OPT_FLAG, &g->systemd_cgroup},
        {"rootless", 0, CMD_OPT_STR, &g->rootless},
        {"criu", 0, CMD_OPT_STR, &g->criu},
        {"version", 'v', CMD_OPT_FLAG, &g->version},
        {"help", 'h', CMD_OPT_FLAG, &g->help},
    };
    /* global options come before the verb; the verb and its arguments are
     * what is left */
    cleanup_free char **rest = calloc((size_t)argc + 1, sizeof(*rest));
    if (!rest)
        return oci_cmd_fail("out of memory");
    struct cmd_optparse p = {.verb = "vessel-runc",
                             .opts = gopts,
                             .nopts = ARRAY_SIZE(gopts),
                             .pos = rest,
                             .maxpos = argc,
                             .rest_after_first = true,
                             .single_dash_long = true};
    vs_err err = {0};
    if (cmd_opt_parse(&p, argc - 1, argv + 1, &err) < 0)
        return oci_cmd_done(-1, &err);
    if (g->version) {
        printf("vessel-runc version %s\nspec: %s\n", VESSEL_VERSION, OCI_VERSION);
        return 0;
    }
    if (g->help) {
        usage(stdout);
        return 0;
    }
    log_json = g->log_format && !strcmp(g->log_format, "json");
    if (g->log_format && strcmp(g->log_format, "json") && strcmp(g->log_format, "text"))
        return oci_cmd_fail("--log-format must be text or json");
    if (g->log) {
        log_file = fopen(g->log, "ae");
        if (!log_file)
            return oci_cmd_fail("cannot open log file %s: %s", g->log, strerror(errno));
    }
    if (g->debug) {
        vs_log_set_level(VS_LOG_DEBUG);
        if (log_file)
            vs_log_set_file(log_file, log_json);
    }
    if (g->systemd_cgroup)
        return oci_cmd_fail("--systemd-cgroup: there is no systemd on this host and vessel has "
                            "no systemd cgroup driver; drop the flag (cgroupfs is used)");
    if (!g->root)
        g->root = oci_default_root();
    if (!p.npos) {
        usage(stderr);
        return 2;
    }
    vs_debug("%s", rest[0]);
    const struct cmd_verb *v = cmd_find(oci_verbs, ARRAY_SIZE(oci_verbs), rest[0]);
    if (!v)
        return oci_cmd_fail("unknown command '%s' (see 'vessel-runc --help')", rest[0]);
    return v->run(p.npos, rest);
}
