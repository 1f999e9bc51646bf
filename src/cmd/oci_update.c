/* vessel-runc update [OPTIONS] ID: resource limits from flags or a
 * resources JSON (-r FILE, - for stdin) */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "oci/state.h"
#include "util/cleanup.h"
#include "util/parse.h"

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
        return oci_cmd_fail("update: --%s: %s", name, e.msg);
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
        return oci_cmd_fail("update: --%s: '%s' is not a number", name, v);
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

int oci_cmd_update(int argc, char **argv)
{
    const char *res = NULL, *mem = NULL, *swap = NULL, *resv = NULL, *kmem = NULL, *shares = NULL,
               *period = NULL, *quota = NULL, *rtp = NULL, *rtr = NULL, *cpus = NULL, *mems = NULL,
               *pids = NULL, *blkio = NULL, *l3 = NULL, *membw = NULL;
    const struct cmd_opt opts[] = {
        {"resources", 'r', CMD_OPT_STR, &res},     {"memory", 0, CMD_OPT_STR, &mem},
        {"memory-swap", 0, CMD_OPT_STR, &swap},    {"memory-reservation", 0, CMD_OPT_STR, &resv},
        {"kernel-memory", 0, CMD_OPT_STR, &kmem},  {"kernel-memory-tcp", 0, CMD_OPT_STR, &kmem},
        {"cpu-shares", 0, CMD_OPT_STR, &shares},   {"cpu-period", 0, CMD_OPT_STR, &period},
        {"cpu-quota", 0, CMD_OPT_STR, &quota},     {"cpu-rt-period", 0, CMD_OPT_STR, &rtp},
        {"cpu-rt-runtime", 0, CMD_OPT_STR, &rtr},  {"cpuset-cpus", 0, CMD_OPT_STR, &cpus},
        {"cpuset-mems", 0, CMD_OPT_STR, &mems},    {"pids-limit", 0, CMD_OPT_STR, &pids},
        {"blkio-weight", 0, CMD_OPT_STR, &blkio},  {"l3-cache-schema", 0, CMD_OPT_STR, &l3},
        {"mem-bw-schema", 0, CMD_OPT_STR, &membw},
    };
    char *pos[1];
    int npos;
    const char *id = NULL;
    if (oci_cmd_parse_id(argc, argv, opts, ARRAY_SIZE(opts), pos, 1, false, &npos))
        return 1;
    id = pos[0];
    if (l3 || membw)
        return oci_cmd_fail("update: Intel RDT is not supported");
    struct oci_resources r;
    struct oci_arena arena = {0};
    json_t *j = NULL;
    vs_err err = {0};
    memset(&r, 0, sizeof(r));
    if (res) {
        json_error_t je;
        j = !strcmp(res, "-") ? json_loadf(stdin, 0, &je) : json_load_file(res, 0, &je);
        if (!j)
            return oci_cmd_fail("update: %s: invalid JSON: %s", res, je.text);
        if (!json_is_object(j) || oci_resources_parse(j, &r, &arena, &err) < 0) {
            json_decref(j);
            oci_arena_release(&arena);
            return oci_cmd_fail("update: %s: %s", res,
                                json_is_object(j) ? err.msg : "expected an object");
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
    int rc = oci_update(oci_g.root, id, &r, &err);
    json_decref(j);
    oci_arena_release(&arena);
    return oci_cmd_done(rc, &err);
bad:
    json_decref(j);
    oci_arena_release(&arena);
    return 1;
}
