/* vessel vm migrate (the source: start, watch, cancel a live migration
 * through the VM's control API) and vessel vm run --incoming (the
 * destination). The work is in src/migrate. */
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "cmd/opt.h"
#include "migrate/incoming.h"
#include "migrate/uri.h"
#include "util/cleanup.h"
#include "util/parse.h"

/* "20ms", "1.5ms", "2s", "500us"; a bare number is milliseconds. */
static int parse_ms(const char *s, double *out, vs_err *err)
{
    char *end;
    double v = strtod(s, &end);
    double scale = 1;
    if (end == s)
        return vs_error(err, EINVAL, "'%s' is not a duration (e.g. 20ms)", s);
    if (!strcmp(end, "s"))
        scale = 1000;
    else if (!strcmp(end, "us"))
        scale = 0.001;
    else if (*end && strcmp(end, "ms"))
        return vs_error(err, EINVAL, "'%s' is not a duration (e.g. 20ms)", s);
    *out = v * scale;
    return 0;
}

static void human(double bytes, char *buf, size_t n)
{
    const char *u[] = {"B", "KiB", "MiB", "GiB", "TiB"};
    unsigned i = 0;
    while (bytes >= 1024 && i < 4) {
        bytes /= 1024;
        i++;
    }
    snprintf(buf, n, "%.1f %s", bytes, u[i]);
}

static double jnum(json_t *j, const char *k)
{
    return json_number_value(json_object_get(j, k));
}

static void show(json_t *p, bool tty, unsigned *last_round)
{
    const char *state = json_string_value(json_object_get(p, "state"));
    unsigned round = (unsigned)jnum(p, "round");
    double sent = jnum(p, "bytes_sent"), left = jnum(p, "bytes_remaining");
    double total = jnum(p, "memory_total"), pages = jnum(p, "pages_sent");
    double frac = round == 0 ? (total > 0 ? pages * 4096 / total : 0)
                             : (sent + left > 0 ? sent / (sent + left) : 1);
    if (frac > 1)
        frac = 1;
    char s1[32], s2[32], s3[32], s4[32];
    human(sent, s1, sizeof(s1));
    human(left, s2, sizeof(s2));
    human(jnum(p, "dirty_rate"), s3, sizeof(s3));
    human(jnum(p, "bandwidth"), s4, sizeof(s4));
    char line[256];
    int throttle = (int)jnum(p, "throttle_pct");
    snprintf(line, sizeof(line),
             "%-10s round %u  %s sent, %s left  dirty %s/s  link %s/s  downtime ~%.1f ms%s",
             state ? state : "?", round, s1, s2, s3, s4, jnum(p, "expected_downtime_ms"),
             throttle ? "  throttled" : "");
    if (tty) {
        char bar[31];
        int fill = (int)lround(frac * 30);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = 0;
        fprintf(stderr, "\r\033[K[%s] %3d%% %s", bar, (int)lround(frac * 100), line);
        if (throttle)
            fprintf(stderr, " %d%%", throttle);
        fflush(stderr);
    } else if (round != *last_round) {
        fprintf(stderr, "%s\n", line);
    }
    *last_round = round;
}

static bool terminal_state(const char *s)
{
    return s && (!strcmp(s, "completed") || !strcmp(s, "failed") || !strcmp(s, "cancelled") ||
                 !strcmp(s, "unknown") || !strcmp(s, "lost") || !strcmp(s, "none"));
}

/* Poll the VM's progress until the migration ends; 0 when it completed. */
static int watch(const char *api_sock, bool quiet)
{
    bool tty = !quiet && isatty(STDERR_FILENO);
    unsigned last_round = ~0u;
    vs_err err = {0};
    for (;;) {
        json_t *p = NULL;
        if (api_client_request(api_sock, "GET", "/migrate", NULL, &p, &err) < 0) {
            if (tty)
                fprintf(stderr, "\n");
            cmd_print_error(err.msg);
            return 1;
        }
        const char *state = json_string_value(json_object_get(p, "state"));
        if (!quiet)
            show(p, tty, &last_round);
        if (terminal_state(state)) {
            if (tty)
                fprintf(stderr, "\n");
            int rc = strcmp(state, "completed") != 0;
            if (!rc) {
                char s1[32];
                human(jnum(p, "bytes_sent"), s1, sizeof(s1));
                printf("migrated: downtime %.2f ms, %s sent in %u rounds, %.0f ms in all",
                       jnum(p, "downtime_ms"), s1, (unsigned)jnum(p, "round"), jnum(p, "total_ms"));
                if (json_is_true(json_object_get(p, "postcopy")))
                    printf(", post-copy after round %u (%.0f pages fetched on demand)",
                           (unsigned)jnum(p, "round"), jnum(p, "postcopy_requests"));
                printf("\n");
            } else {
                const char *e = json_string_value(json_object_get(p, "error"));
                fprintf(stderr, "vessel: migration %s: %s\n", state, e ? e : "no migration");
            }
            json_decref(p);
            return rc;
        }
        json_decref(p);
        usleep(100 * 1000);
    }
}

int cmd_vm_migrate(int argc, char **argv)
{
    const char *api_sock = NULL, *to = NULL, *downtime = NULL, *bandwidth = NULL;
    bool auto_converge = false, postcopy = false, cancel = false, status = false, detach = false;
    bool quiet = false, copy_disks = false;
    const char *tls_psk = NULL, *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    const char *tls_host = NULL;
    const struct cmd_opt opts[] = {
        {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"to", 0, CMD_OPT_STR, &to},
        {"tls-psk", 0, CMD_OPT_STR, &tls_psk},
        {"tls-ca", 0, CMD_OPT_STR, &tls_ca},
        {"tls-cert", 0, CMD_OPT_STR, &tls_cert},
        {"tls-key", 0, CMD_OPT_STR, &tls_key},
        {"tls-hostname", 0, CMD_OPT_STR, &tls_host},
        {"downtime-limit", 0, CMD_OPT_STR, &downtime},
        {"bandwidth", 0, CMD_OPT_STR, &bandwidth},
        {"auto-converge", 0, CMD_OPT_FLAG, &auto_converge},
        {"postcopy", 0, CMD_OPT_FLAG, &postcopy},
        {"copy-disks", 0, CMD_OPT_FLAG, &copy_disks},
        {"cancel", 0, CMD_OPT_FLAG, &cancel},
        {"status", 0, CMD_OPT_FLAG, &status},
        {"detach", 'd', CMD_OPT_FLAG, &detach},
        {"quiet", 'q', CMD_OPT_FLAG, &quiet},
    };
    struct cmd_optparse p = {.verb = "vm migrate", .opts = opts, .nopts = ARRAY_SIZE(opts)};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        printf(
            "usage: vessel vm migrate --api-sock PATH --to tcp:HOST:PORT|unix:PATH\n"
            "           [--downtime-limit 20ms] [--bandwidth RATE] [--auto-converge] [--postcopy]\n"
            "           [--copy-disks]\n"
            "           [--tls-psk FILE | --tls-ca CA [--tls-cert CERT --tls-key KEY]\n"
            "            [--tls-hostname NAME]] [--detach] [--quiet]\n"
            "       vessel vm migrate --api-sock PATH --status|--cancel\n\n"
            "The destination waits with: vessel vm run --incoming tcp:ADDR:PORT\n"
            "--copy-disks moves the writable disks with the memory (the destination\n"
            "creates them in its --storage DIR); without it they are shared storage.\n");
        return 0;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (!api_sock) {
        cmd_print_error("vm migrate: --api-sock PATH is required");
        return 2;
    }
    json_t *resp = NULL;
    if (cancel) {
        if (api_client_request(api_sock, "PUT", "/migrate/cancel", NULL, &resp, &err) < 0) {
            cmd_print_error(err.msg);
            return 1;
        }
        json_decref(resp);
        return watch(api_sock, true) == 0 ? 1 : 0; /* cancelled (or finished first) */
    }
    if (status) {
        if (api_client_request(api_sock, "GET", "/migrate", NULL, &resp, &err) < 0) {
            cmd_print_error(err.msg);
            return 1;
        }
        char *s = json_dumps(resp, JSON_INDENT(2) | JSON_SORT_KEYS);
        printf("%s\n", s ? s : "{}");
        free(s);
        json_decref(resp);
        return 0;
    }
    if (!to) {
        cmd_print_error("vm migrate: --to tcp:HOST:PORT or unix:PATH is required");
        return 2;
    }
    if (mig_uri_check(to, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    json_t *body = json_pack("{s:s, s:b, s:b, s:b}", "uri", to, "auto_converge", auto_converge,
                             "postcopy", postcopy, "copy_disks", copy_disks);
    if (downtime) {
        double ms = 0;
        if (parse_ms(downtime, &ms, &err) < 0) {
            json_decref(body);
            cmd_print_error(err.msg);
            return 2;
        }
        json_object_set_new(body, "downtime_limit_ms", json_real(ms));
    }
    if (bandwidth)
        json_object_set_new(body, "bandwidth", json_string(bandwidth));
    if (tls_psk || tls_ca || tls_cert || tls_key || tls_host) {
        /* the VM process opens the files: absolute paths */
        json_t *tls = json_object();
        const char *names[] = {"psk_file", "ca", "cert", "key"};
        const char *flags[] = {"psk", "ca", "cert", "key"};
        const char *vals[] = {tls_psk, tls_ca, tls_cert, tls_key};
        for (int i = 0; i < 4; i++) {
            if (!vals[i])
                continue;
            char *abs = realpath(vals[i], NULL);
            if (!abs) {
                fprintf(stderr, "vessel: --tls-%s %s: %s\n", flags[i], vals[i], strerror(errno));
                json_decref(tls);
                json_decref(body);
                return 2;
            }
            json_object_set_new(tls, names[i], json_string(abs));
            free(abs);
        }
        if (tls_host)
            json_object_set_new(tls, "hostname", json_string(tls_host));
        json_object_set_new(body, "tls", tls);
    }
    r = api_client_request(api_sock, "PUT", "/migrate", body, &resp, &err);
    json_decref(body);
    if (r < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    json_decref(resp);
    if (detach)
        return 0;
    return watch(api_sock, quiet);
}

int cmd_vm_incoming(int argc, char **argv)
{
    const char *uri = NULL, *api_sock = NULL, *console = NULL, *arch = NULL, *storage = NULL;
    const char *vsock_uds = NULL;
    struct cmd_strlist nets = {0}, allow_backing = {0};
    const char *tls_psk = NULL, *tls_ca = NULL, *tls_cert = NULL, *tls_key = NULL;
    const struct cmd_opt opts[] = {
        {"incoming", 0, CMD_OPT_STR, &uri},    {"tls-psk", 0, CMD_OPT_STR, &tls_psk},
        {"storage", 0, CMD_OPT_STR, &storage}, {"vsock-uds", 0, CMD_OPT_STR, &vsock_uds},
        {"net", 0, CMD_OPT_LIST, &nets},       {"allow-backing", 0, CMD_OPT_LIST, &allow_backing},
        {"tls-ca", 0, CMD_OPT_STR, &tls_ca},   {"tls-cert", 0, CMD_OPT_STR, &tls_cert},
        {"tls-key", 0, CMD_OPT_STR, &tls_key}, {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"console", 0, CMD_OPT_STR, &console}, {"arch", 0, CMD_OPT_STR, &arch},
    };
    struct cmd_optparse p = {
        .verb = "vm run --incoming",
        .opts = opts,
        .nopts = ARRAY_SIZE(opts),
        .hint = " (with --incoming the configuration comes from the source; "
                "only --api-sock, --console, --arch, --storage, --vsock-uds, --net I,tap=NAME "
                "and --tls-* apply)"};
    vs_err err = {0};
    if (cmd_opt_parse(&p, argc - 1, argv + 1, &err) != 0) {
        cmd_print_error(err.msg[0] ? err.msg : "vm run --incoming: --help comes alone");
        return 2;
    }
    if (mig_uri_check(uri, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (console && strcmp(console, "stdio") && strcmp(console, "none") &&
        strncmp(console, "file:", 5) && strncmp(console, "socket:", 7)) {
        fprintf(
            stderr,
            "vessel: --console: '%s' is not stdio, none, file:PATH or [file:PATH,]socket:PATH\n",
            console);
        return 2;
    }
    struct snapshot_net_override ov[VM_MAX_NETS];
    unsigned nov = 0;
    for (size_t i = 0; i < nets.n; i++) {
        vs_err nerr = {0};
        if (nov == VM_MAX_NETS || snapshot_parse_net_override(nets.v[i], &ov[nov], &nerr) < 0) {
            cmd_print_error(nerr.msg[0] ? nerr.msg : "vm run --incoming: too many --net");
            return 2;
        }
        if (ov[nov++].mac_set) {
            cmd_print_error("vm run --incoming: --net ...,mac=: a VM keeps its MAC when it moves "
                            "(only tap=NAME applies)");
            return 2;
        }
    }
    char *storage_abs = NULL;
    if (storage) {
        struct stat st;
        int e = stat(storage, &st) < 0                     ? errno
                : !S_ISDIR(st.st_mode)                     ? ENOTDIR
                : !(storage_abs = realpath(storage, NULL)) ? errno
                                                           : 0;
        if (e) {
            fprintf(stderr, "vessel: --storage %s: %s\n", storage, strerror(e));
            return 2;
        }
    }
    struct mig_incoming_opts o = {
        .uri = uri,
        .storage = storage_abs,
        .vsock_uds = vsock_uds,
        .allow_backing = (const char *const *)allow_backing.v,
        .nallow_backing = (unsigned)allow_backing.n,
        .nets = ov,
        .nnets = nov,
        .api_sock = api_sock,
        .console = console,
        .expect_arch = -1,
        .tls = {.psk_file = tls_psk, .ca = tls_ca, .cert = tls_cert, .key = tls_key}};
    if (tls_psk && (tls_ca || tls_cert)) {
        cmd_print_error("vm run --incoming: --tls-psk or certificates, not both");
        return 2;
    }
    if ((tls_ca || tls_key) && !tls_cert) {
        cmd_print_error(
            "vm run --incoming: TLS with certificates needs --tls-cert (and --tls-key)");
        return 2;
    }
    if (arch) {
        if (strcmp(arch, "x86_64") && strcmp(arch, "riscv64")) {
            fprintf(stderr, "vessel: --arch: '%s' is not x86_64 or riscv64\n", arch);
            return 2;
        }
        o.expect_arch = strcmp(arch, "riscv64") ? VM_ARCH_X86_64 : VM_ARCH_RISCV64;
    }
    int status = mig_incoming_run(&o, &err);
    free(storage_abs);
    if (status < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    return status;
}
