/* `vessel oci VERB` / `vessel-runc VERB`: runc's command line. Only argument
 * parsing lives here; src/oci does the work. */
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/commands.h"
#include "oci/container.h"
#include "oci/state.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/parse.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "dev"
#endif

enum opt_kind { OPT_FLAG, OPT_STR, OPT_INT, OPT_LIST };

struct opt {
    const char *name; /* long name without dashes */
    char short_name;
    enum opt_kind kind;
    void *ptr; /* bool*, const char**, int*, struct strlist* */
};

struct strlist {
    char *v[64];
    size_t n;
};

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

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int fail(const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    report(msg);
    return 1;
}

/* Parse options (anywhere before the positional arguments, or all of them
 * when stop_at_first is false); positional arguments go to pos. */
static int parse_opts(int argc, char **argv, const struct opt *opts, size_t nopts, char **pos,
                      int *npos, int maxpos, bool stop_after_id, const char *verb)
{
    *npos = 0;
    for (int i = 0; i < argc; i++) {
        char *a = argv[i];
        if (stop_after_id && *npos >= 1) {
            /* exec/ps: everything after the id belongs to the command */
            if (*npos >= maxpos)
                return fail("%s: too many arguments", verb);
            pos[(*npos)++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            for (i++; i < argc; i++) {
                if (*npos >= maxpos)
                    return fail("%s: too many arguments", verb);
                pos[(*npos)++] = argv[i];
            }
            break;
        }
        if (a[0] != '-' || !a[1]) {
            if (*npos >= maxpos)
                return fail("%s: too many arguments", verb);
            pos[(*npos)++] = a;
            continue;
        }
        const struct opt *o = NULL;
        char *val = NULL;
        if (a[1] == '-') {
            char *name = a + 2, *eq = strchr(name, '=');
            size_t nl = eq ? (size_t)(eq - name) : strlen(name);
            for (size_t k = 0; k < nopts; k++)
                if (strlen(opts[k].name) == nl && !strncmp(opts[k].name, name, nl))
                    o = &opts[k];
            if (eq)
                val = eq + 1;
        } else {
            for (size_t k = 0; k < nopts; k++)
                if (opts[k].short_name && opts[k].short_name == a[1] && !a[2])
                    o = &opts[k];
            if (!o && a[1] && a[2]) {
                /* -tf style: only flags can be combined */
                bool all = true;
                for (char *c = a + 1; *c && all; c++) {
                    bool found = false;
                    for (size_t k = 0; k < nopts; k++)
                        if (opts[k].short_name == *c && opts[k].kind == OPT_FLAG) {
                            *(bool *)opts[k].ptr = true;
                            found = true;
                        }
                    all = found;
                }
                if (all)
                    continue;
            }
        }
        if (!o) {
            if (!strcmp(a, "--help") || !strcmp(a, "-h"))
                return fail("%s: see 'vessel-runc --help' and docs/oci.md", verb);
            return fail("%s: unknown option '%s'", verb, a);
        }
        if (o->kind == OPT_FLAG) {
            if (val && strcmp(val, "true") && strcmp(val, "false"))
                return fail("%s: --%s takes no value", verb, o->name);
            *(bool *)o->ptr = !val || !strcmp(val, "true");
            continue;
        }
        if (!val) {
            if (i + 1 >= argc)
                return fail("%s: --%s needs a value", verb, o->name);
            val = argv[++i];
        }
        if (o->kind == OPT_STR)
            *(const char **)o->ptr = val;
        else if (o->kind == OPT_INT) {
            char *end;
            long v = strtol(val, &end, 10);
            if (*end || v < 0 || v > 1 << 20)
                return fail("%s: --%s: '%s' is not a valid number", verb, o->name, val);
            *(int *)o->ptr = (int)v;
        } else {
            struct strlist *l = o->ptr;
            if (l->n >= ARRAY_SIZE(l->v))
                return fail("%s: too many --%s", verb, o->name);
            l->v[l->n++] = val;
        }
    }
    return 0;
}

struct globals {
    const char *root, *log, *log_format, *rootless, *criu;
    bool debug, systemd_cgroup;
};

static int need_id(int npos, char **pos, const char *verb, const char **id)
{
    if (npos < 1)
        return fail("%s: missing container id", verb);
    *id = pos[0];
    return 0;
}

static int done(int rc, const vs_err *err)
{
    if (rc < 0) {
        report(err->msg);
        return 1;
    }
    return 0;
}

static int verb_create_run(struct globals *g, int argc, char **argv, const char *verb)
{
    const char *bundle = ".", *console = NULL, *pidfile = NULL, *notify = NULL;
    bool no_pivot = false, no_keyring = false, detach = false, keep = false, no_subreaper = false;
    int preserve = 0;
    struct opt opts[] = {
        {"bundle", 'b', OPT_STR, &bundle},
        {"console-socket", 0, OPT_STR, &console},
        {"pid-file", 0, OPT_STR, &pidfile},
        {"no-pivot", 0, OPT_FLAG, &no_pivot},
        {"no-new-keyring", 0, OPT_FLAG, &no_keyring},
        {"preserve-fds", 0, OPT_INT, &preserve},
        {"detach", 'd', OPT_FLAG, &detach},
        {"keep", 0, OPT_FLAG, &keep},
        {"notify-socket", 0, OPT_STR, &notify},
        {"no-subreaper", 0, OPT_FLAG, &no_subreaper},
    };
    char *pos[4];
    int npos;
    const char *id = NULL;
    size_t nopts = !strcmp(verb, "run") ? ARRAY_SIZE(opts) : ARRAY_SIZE(opts) - 4;
    if (parse_opts(argc, argv, opts, nopts, pos, &npos, 1, false, verb) ||
        need_id(npos, pos, verb, &id))
        return 1;
    const char *env_pf = getenv("LISTEN_FDS");
    if (env_pf && !preserve)
        preserve = atoi(env_pf);
    struct oci_create_opts o = {.root = g->root,
                                .id = id,
                                .bundle = bundle,
                                .pid_file = pidfile,
                                .console_socket = console,
                                .preserve_fds = preserve,
                                .no_pivot = no_pivot,
                                .keep = keep,
                                .detach = detach};
    vs_err err = {0};
    if (!strcmp(verb, "create"))
        return done(oci_create(&o, &err), &err);
    int status = 0;
    if (oci_run(&o, &status, &err) < 0)
        return done(-1, &err);
    return status;
}

static int verb_simple(struct globals *g, int argc, char **argv, const char *verb)
{
    char *pos[2];
    int npos;
    const char *id = NULL;
    bool force = false, all = false, stats = false;
    const char *interval = "5s";
    struct opt del_opts[] = {{"force", 'f', OPT_FLAG, &force}};
    struct opt kill_opts[] = {{"all", 'a', OPT_FLAG, &all}};
    struct opt ev_opts[] = {{"stats", 0, OPT_FLAG, &stats}, {"interval", 0, OPT_STR, &interval}};
    const struct opt *opts = NULL;
    size_t nopts = 0;
    if (!strcmp(verb, "delete")) {
        opts = del_opts;
        nopts = 1;
    } else if (!strcmp(verb, "kill")) {
        opts = kill_opts;
        nopts = 1;
    } else if (!strcmp(verb, "events")) {
        opts = ev_opts;
        nopts = 2;
    }
    if (parse_opts(argc, argv, opts, nopts, pos, &npos, !strcmp(verb, "kill") ? 2 : 1, false,
                   verb) ||
        need_id(npos, pos, verb, &id))
        return 1;
    vs_err err = {0};
    if (!strcmp(verb, "start"))
        return done(oci_start(g->root, id, &err), &err);
    if (!strcmp(verb, "state"))
        return done(oci_print_state(g->root, id, stdout, &err), &err);
    if (!strcmp(verb, "delete"))
        return done(oci_delete(g->root, id, force, &err), &err);
    if (!strcmp(verb, "pause") || !strcmp(verb, "resume"))
        return done(oci_pause(g->root, id, verb[0] == 'p', &err), &err);
    if (!strcmp(verb, "kill")) {
        int sig = oci_parse_signal(npos > 1 ? pos[1] : "TERM");
        if (sig < 0)
            return fail("kill: unknown signal '%s'", pos[1]);
        return done(oci_kill(g->root, id, sig, all, &err), &err);
    }
    /* events: --interval takes Go-style durations ("5s", "1m"; a bare number is seconds) */
    char *unit;
    double secs_f = strtod(interval, &unit);
    if (!strcmp(unit, "ms"))
        secs_f /= 1000;
    else if (!strcmp(unit, "m"))
        secs_f *= 60;
    else if (*unit && strcmp(unit, "s"))
        return fail("events: --interval '%s': use e.g. 5s, 500ms or 1m", interval);
    int secs = secs_f < 1 ? 1 : (int)secs_f;
    return done(oci_events(g->root, id, stats, secs, stdout, &err), &err);
}

static int verb_list(struct globals *g, int argc, char **argv)
{
    const char *format = "table";
    bool quiet = false;
    struct opt opts[] = {{"format", 'f', OPT_STR, &format}, {"quiet", 'q', OPT_FLAG, &quiet}};
    char *pos[1];
    int npos;
    if (parse_opts(argc, argv, opts, ARRAY_SIZE(opts), pos, &npos, 0, false, "list"))
        return 1;
    if (strcmp(format, "table") && strcmp(format, "json"))
        return fail("list: --format must be table or json");
    vs_err err = {0};
    return done(oci_list(g->root, !strcmp(format, "json"), quiet, stdout, &err), &err);
}

static int verb_ps(struct globals *g, int argc, char **argv)
{
    const char *format = "table";
    struct opt opts[] = {{"format", 'f', OPT_STR, &format}};
    char *pos[64];
    int npos;
    const char *id = NULL;
    if (parse_opts(argc, argv, opts, ARRAY_SIZE(opts), pos, &npos, 63, true, "ps") ||
        need_id(npos, pos, "ps", &id))
        return 1;
    pos[npos] = NULL;
    vs_err err = {0};
    return done(oci_ps(g->root, id, !strcmp(format, "json"), pos + 1, stdout, &err), &err);
}

static int verb_exec(struct globals *g, int argc, char **argv)
{
    const char *process = NULL, *console = NULL, *pidfile = NULL, *cwd = NULL, *user = NULL;
    const char *label = NULL, *apparmor = NULL, *cgroup = NULL;
    bool tty = false, detach = false, nnp = false;
    int preserve = 0;
    struct strlist env = {0}, caps = {0}, gids = {0};
    struct opt opts[] = {
        {"process", 'p', OPT_STR, &process},
        {"console-socket", 0, OPT_STR, &console},
        {"pid-file", 0, OPT_STR, &pidfile},
        {"cwd", 0, OPT_STR, &cwd},
        {"user", 'u', OPT_STR, &user},
        {"tty", 't', OPT_FLAG, &tty},
        {"detach", 'd', OPT_FLAG, &detach},
        {"no-new-privs", 0, OPT_FLAG, &nnp},
        {"env", 'e', OPT_LIST, &env},
        {"cap", 'c', OPT_LIST, &caps},
        {"additional-gids", 'g', OPT_LIST, &gids},
        {"preserve-fds", 0, OPT_INT, &preserve},
        {"process-label", 0, OPT_STR, &label},
        {"apparmor", 0, OPT_STR, &apparmor},
        {"cgroup", 0, OPT_STR, &cgroup},
    };
    char *pos[256];
    int npos;
    const char *id = NULL;
    if (parse_opts(argc, argv, opts, ARRAY_SIZE(opts), pos, &npos, 255, true, "exec") ||
        need_id(npos, pos, "exec", &id))
        return 1;
    pos[npos] = NULL;
    if (apparmor && *apparmor)
        return fail("exec: --apparmor: this host has no AppArmor");
    struct oci_exec_opts o = {.root = g->root,
                              .id = id,
                              .process_file = process,
                              .args = pos + 1,
                              .tty = tty,
                              .detach = detach,
                              .no_new_privs = nnp,
                              .console_socket = console,
                              .pid_file = pidfile,
                              .cwd = cwd,
                              .user = user,
                              .env = env.v,
                              .n_env = env.n,
                              .caps = caps.v,
                              .n_caps = caps.n,
                              .preserve_fds = preserve};
    vs_err err = {0};
    int status = 0;
    if (oci_exec(&o, &status, &err) < 0)
        return done(-1, &err);
    return status;
}

static int size_opt(const char *name, const char *v, bool *has, int64_t *out)
{
    if (!v)
        return 0;
    if (!strcmp(v, "-1")) {
        *has = true;
        *out = -1;
        return 0;
    }
    uint64_t x;
    vs_err e;
    if (vs_parse_size(v, 0, &x, &e) < 0 || x > INT64_MAX)
        return fail("update: --%s: %s", name, e.msg);
    *has = true;
    *out = (int64_t)x;
    return 0;
}

static int num_opt(const char *name, const char *v, bool *has, int64_t *out)
{
    if (!v)
        return 0;
    char *end;
    long long x = strtoll(v, &end, 10);
    if (*end || !*v)
        return fail("update: --%s: '%s' is not a number", name, v);
    *has = true;
    *out = x;
    return 0;
}

/* num_opt for an unsigned field, set only when the option is given */
static int unum_opt(const char *name, const char *v, bool *has, uint64_t *out)
{
    bool h = false;
    int64_t x;
    int rc = num_opt(name, v, &h, &x);
    if (!rc && h) {
        *has = true;
        *out = (uint64_t)x;
    }
    return rc;
}

static int verb_update(struct globals *g, int argc, char **argv)
{
    const char *res = NULL, *mem = NULL, *swap = NULL, *resv = NULL, *kmem = NULL, *shares = NULL,
               *period = NULL, *quota = NULL, *rtp = NULL, *rtr = NULL, *cpus = NULL, *mems = NULL,
               *pids = NULL, *blkio = NULL, *l3 = NULL, *membw = NULL;
    struct opt opts[] = {
        {"resources", 'r', OPT_STR, &res},     {"memory", 0, OPT_STR, &mem},
        {"memory-swap", 0, OPT_STR, &swap},    {"memory-reservation", 0, OPT_STR, &resv},
        {"kernel-memory", 0, OPT_STR, &kmem},  {"kernel-memory-tcp", 0, OPT_STR, &kmem},
        {"cpu-shares", 0, OPT_STR, &shares},   {"cpu-period", 0, OPT_STR, &period},
        {"cpu-quota", 0, OPT_STR, &quota},     {"cpu-rt-period", 0, OPT_STR, &rtp},
        {"cpu-rt-runtime", 0, OPT_STR, &rtr},  {"cpuset-cpus", 0, OPT_STR, &cpus},
        {"cpuset-mems", 0, OPT_STR, &mems},    {"pids-limit", 0, OPT_STR, &pids},
        {"blkio-weight", 0, OPT_STR, &blkio},  {"l3-cache-schema", 0, OPT_STR, &l3},
        {"mem-bw-schema", 0, OPT_STR, &membw},
    };
    char *pos[1];
    int npos;
    const char *id = NULL;
    if (parse_opts(argc, argv, opts, ARRAY_SIZE(opts), pos, &npos, 1, false, "update") ||
        need_id(npos, pos, "update", &id))
        return 1;
    if (l3 || membw)
        return fail("update: Intel RDT is not supported");
    struct oci_resources r;
    struct oci_arena arena = {0};
    json_t *j = NULL;
    vs_err err = {0};
    memset(&r, 0, sizeof(r));
    if (res) {
        json_error_t je;
        j = !strcmp(res, "-") ? json_loadf(stdin, 0, &je) : json_load_file(res, 0, &je);
        if (!j)
            return fail("update: %s: invalid JSON: %s", res, je.text);
        if (!json_is_object(j) || oci_resources_parse(j, &r, &arena, &err) < 0) {
            json_decref(j);
            oci_arena_release(&arena);
            return fail("update: %s: %s", res, json_is_object(j) ? err.msg : "expected an object");
        }
    }
    if (size_opt("memory", mem, &r.has_mem_limit, &r.mem_limit) ||
        size_opt("memory-swap", swap, &r.has_mem_swap, &r.mem_swap) ||
        size_opt("memory-reservation", resv, &r.has_mem_reservation, &r.mem_reservation) ||
        num_opt("cpu-quota", quota, &r.has_cpu_quota, &r.cpu_quota) ||
        num_opt("cpu-rt-runtime", rtr, &r.has_cpu_rt_runtime, &r.cpu_rt_runtime) ||
        num_opt("pids-limit", pids, &r.has_pids_limit, &r.pids_limit) ||
        unum_opt("cpu-shares", shares, &r.has_cpu_shares, &r.cpu_shares) ||
        unum_opt("cpu-period", period, &r.has_cpu_period, &r.cpu_period) ||
        unum_opt("cpu-rt-period", rtp, &r.has_cpu_rt_period, &r.cpu_rt_period))
        goto bad;
    int64_t tmp;
    bool h = false;
    if (num_opt("blkio-weight", blkio, &h, &tmp))
        goto bad;
    if (h) {
        r.has_blkio_weight = true;
        r.blkio_weight = (uint16_t)tmp;
    }
    if (cpus)
        r.cpu_cpus = cpus;
    if (mems)
        r.cpu_mems = mems;
    int rc = oci_update(g->root, id, &r, &err);
    json_decref(j);
    oci_arena_release(&arena);
    return done(rc, &err);
bad:
    json_decref(j);
    oci_arena_release(&arena);
    return 1;
}

static int verb_spec(int argc, char **argv)
{
    const char *bundle = ".";
    bool rootless = false;
    struct opt opts[] = {{"bundle", 'b', OPT_STR, &bundle}, {"rootless", 0, OPT_FLAG, &rootless}};
    char *pos[1];
    int npos;
    if (parse_opts(argc, argv, opts, ARRAY_SIZE(opts), pos, &npos, 0, false, "spec"))
        return 1;
    vs_err err = {0};
    return done(oci_write_spec(bundle, rootless, &err), &err);
}

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel-runc [GLOBAL OPTIONS] COMMAND [OPTIONS] ID\n"
               "       (also: vessel oci COMMAND ...)\n\n"
               "commands: create start run state kill delete exec list ps pause resume update\n"
               "          events features spec\n"
               "global options: --root DIR --log FILE --log-format text|json --debug\n"
               "                --systemd-cgroup (refused: there is no systemd driver)\n");
}

int cmd_oci(int argc, char **argv)
{
    struct globals g = {0};
    struct opt gopts[] = {
        {"root", 0, OPT_STR, &g.root},
        {"log", 0, OPT_STR, &g.log},
        {"log-format", 0, OPT_STR, &g.log_format},
        {"debug", 0, OPT_FLAG, &g.debug},
        {"systemd-cgroup", 0, OPT_FLAG, &g.systemd_cgroup},
        {"rootless", 0, OPT_STR, &g.rootless},
        {"criu", 0, OPT_STR, &g.criu},
    };
    int i = 1;
    /* global options come before the verb */
    for (; i < argc && argv[i][0] == '-'; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--version") || !strcmp(a, "-v")) {
            printf("vessel-runc version %s\nspec: %s\n", VESSEL_VERSION, OCI_VERSION);
            return 0;
        }
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        }
        const struct opt *o = NULL;
        const char *name = a + (a[1] == '-' ? 2 : 1), *eq = strchr(name, '=');
        size_t nl = eq ? (size_t)(eq - name) : strlen(name);
        for (size_t k = 0; k < ARRAY_SIZE(gopts); k++)
            if (strlen(gopts[k].name) == nl && !strncmp(gopts[k].name, name, nl))
                o = &gopts[k];
        if (!o)
            return fail("unknown global option '%s'", a);
        if (o->kind == OPT_FLAG)
            *(bool *)o->ptr = true;
        else if (eq)
            *(const char **)o->ptr = eq + 1;
        else if (i + 1 < argc)
            *(const char **)o->ptr = argv[++i];
        else
            return fail("--%s needs a value", o->name);
    }
    log_json = g.log_format && !strcmp(g.log_format, "json");
    if (g.log_format && strcmp(g.log_format, "json") && strcmp(g.log_format, "text"))
        return fail("--log-format must be text or json");
    if (g.log) {
        log_file = fopen(g.log, "ae");
        if (!log_file)
            return fail("cannot open log file %s: %s", g.log, strerror(errno));
    }
    if (g.debug) {
        vs_log_set_level(VS_LOG_DEBUG);
        if (log_file)
            vs_log_set_file(log_file, log_json);
    }
    if (g.systemd_cgroup)
        return fail("--systemd-cgroup: there is no systemd on this host and vessel has no "
                    "systemd cgroup driver; drop the flag (cgroupfs is used)");
    if (!g.root)
        g.root = oci_default_root();
    if (i >= argc) {
        usage(stderr);
        return 2;
    }
    const char *verb = argv[i];
    int vargc = argc - i - 1;
    char **vargv = argv + i + 1;
    vs_debug("%s", verb);
    if (!strcmp(verb, "create") || !strcmp(verb, "run"))
        return verb_create_run(&g, vargc, vargv, verb);
    if (!strcmp(verb, "start") || !strcmp(verb, "state") || !strcmp(verb, "delete") ||
        !strcmp(verb, "kill") || !strcmp(verb, "pause") || !strcmp(verb, "resume") ||
        !strcmp(verb, "events"))
        return verb_simple(&g, vargc, vargv, verb);
    if (!strcmp(verb, "exec"))
        return verb_exec(&g, vargc, vargv);
    if (!strcmp(verb, "list"))
        return verb_list(&g, vargc, vargv);
    if (!strcmp(verb, "ps"))
        return verb_ps(&g, vargc, vargv);
    if (!strcmp(verb, "update"))
        return verb_update(&g, vargc, vargv);
    if (!strcmp(verb, "spec"))
        return verb_spec(vargc, vargv);
    if (!strcmp(verb, "features")) {
        vs_err err = {0};
        return done(oci_features(stdout, &err), &err);
    }
    if (!strcmp(verb, "checkpoint") || !strcmp(verb, "restore"))
        return fail("%s: not supported: CRIU does not work on this kernel", verb);
    if (!strcmp(verb, "help")) {
        usage(stdout);
        return 0;
    }
    return fail("unknown command '%s' (see 'vessel-runc --help')", verb);
}
