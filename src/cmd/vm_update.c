/* vessel vm update --api-sock PATH [--balloon SIZE] [--balloon-stats SECONDS]
 * [--cpus N] [--disk I,size=,bw=,iops=] [--net I,bw=,iops=]: change a running VM's resources (PATCH
 * /vm) and print what it reports. For --cpus the VM only lets the guest run N vCPUs; onlining and
 * offlining them is the guest's act, which this command asks of the guest
 * agent (`set-cpus N` over the VM's vsock bridge, as qemu-ga's
 * guest-set-vcpus) when the VM has one, then waits until N run. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "cmd/opt.h"
#include "daemon/agent_client.h"
#include "util/cleanup.h"
#include "util/parse.h"
#include "vm/config.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel vm update --api-sock PATH [--balloon SIZE] "
               "[--balloon-stats SECONDS] [--cpus N] [--disk I,...] [--net I,...]\n"
               "                        [--limit-memory SIZE] [--limit-cpus N.N]\n\n"
               "  --balloon SIZE          the balloon's size: memory the guest gives back\n"
               "                          (0 gives it all back), e.g. 512M\n"
               "  --balloon-stats SECONDS how often the guest reports its memory statistics\n"
               "                          (0: never)\n"
               "  --cpus N                vCPUs the guest runs, 1..--max-cpus (riscv64); the\n"
               "                          guest agent onlines/offlines them when the VM has a\n"
               "                          vsock bridge, and the command waits for them\n"
               "  --disk I[,size=SIZE][,bw=SIZE][,bw-burst=SIZE][,iops=N][,iops-burst=N]\n"
               "                          grow disk I (raw images) and/or set its rate limit\n"
               "                          (bytes and operations per second; 0: no limit)\n"
               "  --net I[,bw=SIZE][,bw-burst=SIZE][,iops=N][,iops-burst=N]\n"
               "                          NIC I's transmit rate limit (packets for iops)\n"
               "  --limit-memory SIZE     cap the VM process's memory (its cgroup; 0: none)\n"
               "  --limit-cpus N.N        cap its CPU time, in CPUs (0: none)\n");
}

/* "I,size=..,bw=..": one element of "disks" or "nets". */
static int io_change(const char *spec, bool disk, json_t *arr, vs_err *err)
{
    const char *what = disk ? "--disk" : "--net";
    struct vs_optlist l;
    if (vs_optlist_parse(spec, &l, err) < 0)
        return vs_error_prefix(err, "%s: ", what);
    uint64_t idx = 0, size = 0;
    bool has_size = false, has_rate = false;
    struct vs_rate_config rc = {0};
    int ret = 0;
    if (l.n == 0 || l.opts[0].value || vs_parse_u64(l.opts[0].key, 0, 63, &idx, err) < 0)
        ret = vs_error(err, EINVAL, "%s: '%s' does not start with the device's index", what, spec);
    for (size_t i = 1; i < l.n && ret == 0; i++) {
        const char *k = l.opts[i].key, *v = l.opts[i].value;
        int r;
        if (disk && !strcmp(k, "size") && v) {
            ret = vs_parse_size(v, 1ULL << 20, &size, err);
            if (ret < 0)
                vs_error_prefix(err, "%s: size: ", what);
            has_size = true;
        } else if ((r = vm_rate_option(&rc, what, k, v, err)) != 0) {
            ret = r < 0 ? -1 : 0;
            has_rate = true;
        } else {
            ret = vs_error(err, EINVAL, "%s: unknown option '%s'", what, k);
        }
    }
    vs_optlist_free(&l);
    if (ret < 0)
        return -1;
    json_t *o = json_pack("{s:I}", "index", (json_int_t)idx);
    if (has_size)
        json_object_set_new(o, "size", json_integer((json_int_t)size));
    if (has_rate)
        json_object_set_new(
            o, "rate_limit",
            json_pack("{s:I, s:I, s:I, s:I}", "bytes_per_s", (json_int_t)rc.bytes_per_s,
                      "bytes_burst", (json_int_t)rc.bytes_burst, "ops_per_s",
                      (json_int_t)rc.ops_per_s, "ops_burst", (json_int_t)rc.ops_burst));
    json_array_append_new(arr, o);
    return 0;
}

static int build_body(const char *balloon, const char *stats, const char *cpus,
                      const struct cmd_strlist *disks, const struct cmd_strlist *nets,
                      const char *lim_mem, const char *lim_cpus, json_t **out, vs_err *err)
{
    json_t *body = json_object();
    uint64_t v;
    if (lim_mem || lim_cpus) {
        json_t *l = json_object();
        json_object_set_new(body, "limits", l);
        unsigned millis;
        if (lim_mem && vs_parse_size(lim_mem, 1ULL << 20, &v, err) < 0) {
            json_decref(body);
            return vs_error_prefix(err, "--limit-memory: ");
        }
        if (lim_mem)
            json_object_set_new(l, "memory", json_integer((json_int_t)v));
        if (lim_cpus && vm_parse_cpu_limit(lim_cpus, &millis, err) < 0) {
            json_decref(body);
            return vs_error_prefix(err, "--limit-cpus: ");
        }
        if (lim_cpus)
            json_object_set_new(l, "cpus", json_real(millis / 1000.0));
    }
    for (int k = 0; k < 2; k++) {
        const struct cmd_strlist *l = k ? nets : disks;
        if (!l->n)
            continue;
        json_t *arr = json_array();
        json_object_set_new(body, k ? "nets" : "disks", arr);
        for (size_t i = 0; i < l->n; i++)
            if (io_change(l->v[i], !k, arr, err) < 0) {
                json_decref(body);
                return -1;
            }
    }
    if (cpus) {
        if (vs_parse_u64(cpus, 1, 1024, &v, err) < 0) {
            json_decref(body);
            return vs_error_prefix(err, "--cpus: ");
        }
        json_object_set_new(body, "cpus", json_integer((json_int_t)v));
    }
    if (balloon || stats) {
        json_t *b = json_object();
        json_object_set_new(body, "balloon", b);
        if (balloon) {
            if (vs_parse_size(balloon, 1ULL << 20, &v, err) < 0) {
                json_decref(body);
                return vs_error_prefix(err, "--balloon: ");
            }
            json_object_set_new(b, "target_bytes", json_integer((json_int_t)v));
        }
        if (stats) {
            if (vs_parse_u64(stats, 0, 3600, &v, err) < 0) {
                json_decref(body);
                return vs_error_prefix(err, "--balloon-stats: ");
            }
            json_object_set_new(b, "stats_interval_s", json_integer((json_int_t)v));
        }
    }
    *out = body;
    return 0;
}

static json_int_t vcpus_running(const json_t *info)
{
    return json_integer_value(json_object_get(json_object_get(info, "vcpus"), "running"));
}

/* Ask the guest agent to run `set-cpus N`, then wait (up to 30 s) until N
 * vCPUs run. resp: the PATCH reply (replaced by the last GET /vm). */
static int guest_set_cpus(const char *api_sock, unsigned n, json_t **resp, vs_err *err)
{
    const char *uds =
        json_string_value(json_object_get(json_object_get(*resp, "config"), "vsock_uds"));
    if (!uds) {
        fprintf(stderr, "vessel: vm update: the VM has no vsock bridge (--vsock CID --vsock-uds "
                        "PATH): the guest onlines or offlines its CPUs itself\n");
        return 0;
    }
    void (*old)(int) = signal(SIGPIPE, SIG_IGN);
    int st = agent_set_cpus(uds, n, STDERR_FILENO, err);
    signal(SIGPIPE, old);
    if (st < 0)
        return vs_error_prefix(err, "vm update: the guest agent: ");
    for (int i = 0; i < 300 && vcpus_running(*resp) != (json_int_t)n; i++) {
        struct timespec ts = {0, 100 * 1000 * 1000};
        nanosleep(&ts, NULL);
        json_t *info = NULL;
        if (api_client_request(api_sock, "GET", "/vm", NULL, &info, err) < 0)
            return -1;
        json_decref(*resp);
        *resp = info;
    }
    if (vcpus_running(*resp) != (json_int_t)n)
        return vs_error(err, ETIMEDOUT, "vm update: %lld vCPUs run, not %u (set-cpus exit %d)",
                        (long long)vcpus_running(*resp), n, st);
    return 0;
}

int cmd_vm_update(int argc, char **argv)
{
    const char *api_sock = NULL, *balloon = NULL, *stats = NULL, *cpus = NULL;
    const char *lim_mem = NULL, *lim_cpus = NULL;
    struct cmd_strlist disks = {0}, nets = {0};
    const struct cmd_opt opts[] = {
        {"limit-memory", 0, CMD_OPT_STR, &lim_mem}, {"limit-cpus", 0, CMD_OPT_STR, &lim_cpus},
        {"disk", 0, CMD_OPT_LIST, &disks},          {"net", 0, CMD_OPT_LIST, &nets},
        {"api-sock", 0, CMD_OPT_STR, &api_sock},    {"balloon", 0, CMD_OPT_STR, &balloon},
        {"balloon-stats", 0, CMD_OPT_STR, &stats},  {"cpus", 0, CMD_OPT_STR, &cpus},
    };
    char *pos[1];
    struct cmd_optparse p = {
        .verb = "vm update", .opts = opts, .nopts = ARRAY_SIZE(opts), .pos = pos, .maxpos = 0};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        usage(stdout);
        return 0;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (!api_sock) {
        cmd_print_error("vm update: --api-sock PATH is required");
        return 2;
    }
    json_t *body = NULL, *resp = NULL;
    if (build_body(balloon, stats, cpus, &disks, &nets, lim_mem, lim_cpus, &body, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        cmd_print_error("vm update: nothing to change (see 'vessel vm update --help')");
        return 2;
    }
    r = api_client_request(api_sock, "PATCH", "/vm", body, &resp, &err);
    if (r == 0 && cpus)
        r = guest_set_cpus(api_sock, (unsigned)json_integer_value(json_object_get(body, "cpus")),
                           &resp, &err);
    json_decref(body);
    if (r < 0) {
        json_decref(resp);
        cmd_print_error(err.msg);
        return 1;
    }
    char *s = json_dumps(resp, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(resp);
    return 0;
}
