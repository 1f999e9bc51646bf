/* config.json parser. Every field is type-checked; an error names the JSON
 * path ("process.args[2]") so the one line a user sees says where to look. */
#include "oci/spec.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <seccomp.h>
#include <sys/capability.h>

#include "util/cleanup.h"
#include "util/io.h"

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif
#ifndef CLONE_NEWCGROUP
#define CLONE_NEWCGROUP 0x02000000
#endif

void *oci_arena_alloc(struct oci_arena *a, size_t n)
{
    if (a->n == a->cap) {
        size_t nc = a->cap ? a->cap * 2 : 32;
        void **np = realloc(a->ptrs, nc * sizeof(*np));
        if (!np)
            return NULL;
        a->ptrs = np;
        a->cap = nc;
    }
    void *p = calloc(1, n ? n : 1);
    if (p)
        a->ptrs[a->n++] = p;
    return p;
}

void oci_arena_release(struct oci_arena *a)
{
    for (size_t i = 0; i < a->n; i++)
        free(a->ptrs[i]);
    free(a->ptrs);
    a->ptrs = NULL;
    a->n = a->cap = 0;
}

static const char *ns_names[OCI_NS_COUNT] = {
    [OCI_NS_PID] = "pid",       [OCI_NS_NET] = "network", [OCI_NS_MNT] = "mount",
    [OCI_NS_IPC] = "ipc",       [OCI_NS_UTS] = "uts",     [OCI_NS_USER] = "user",
    [OCI_NS_CGROUP] = "cgroup", [OCI_NS_TIME] = "time",
};

const char *oci_ns_name(enum oci_ns_type t)
{
    return t < OCI_NS_COUNT ? ns_names[t] : "?";
}

int oci_ns_clone_flag(enum oci_ns_type t)
{
    static const int flags[OCI_NS_COUNT] = {
        [OCI_NS_PID] = CLONE_NEWPID,       [OCI_NS_NET] = CLONE_NEWNET,
        [OCI_NS_MNT] = CLONE_NEWNS,        [OCI_NS_IPC] = CLONE_NEWIPC,
        [OCI_NS_UTS] = CLONE_NEWUTS,       [OCI_NS_USER] = CLONE_NEWUSER,
        [OCI_NS_CGROUP] = CLONE_NEWCGROUP, [OCI_NS_TIME] = CLONE_NEWTIME,
    };
    return t < OCI_NS_COUNT ? flags[t] : 0;
}

int oci_cap_last(void)
{
    int n = (int)cap_max_bits();
    return n > 0 ? n - 1 : CAP_LAST_CAP;
}

int oci_cap_from_name(const char *name)
{
    char low[64];
    size_t i;
    for (i = 0; name[i] && i < sizeof(low) - 1; i++)
        low[i] = (char)tolower((unsigned char)name[i]);
    low[i] = 0;
    cap_value_t v;
    if (strncmp(low, "cap_", 4) || cap_from_name(low, &v) < 0)
        return -1;
    return (int)v;
}

const char *oci_cap_name(int cap)
{
    static char buf[64];
    char *n = cap_to_name((cap_value_t)cap);
    if (!n)
        return "?";
    snprintf(buf, sizeof(buf), "%s", n);
    cap_free(n);
    for (char *p = buf; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    return buf;
}

/* ---- typed getters; `where` is the JSON path used in messages ---- */

static json_t *get_obj(json_t *o, const char *key, const char *where, vs_err *err, int *rc)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_object(v)) {
        *rc = vs_error(err, EINVAL, "config.json: %s%s: expected an object", where, key);
        return NULL;
    }
    return v;
}

static int get_str(json_t *o, const char *key, const char *where, const char **out, vs_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return vs_error(err, EINVAL, "config.json: %s%s: expected a string", where, key);
    *out = json_string_value(v);
    return 0;
}

static int get_bool(json_t *o, const char *key, const char *where, bool *out, vs_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return vs_error(err, EINVAL, "config.json: %s%s: expected true or false", where, key);
    *out = json_is_true(v);
    return 0;
}

/* Integer in [min, max]; returns 1 when present, 0 when absent, -1 on error. */
static int get_int(json_t *o, const char *key, const char *where, int64_t min, int64_t max,
                   int64_t *out, vs_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    int64_t x;
    if (json_is_integer(v))
        x = json_integer_value(v);
    else if (json_is_real(v) && json_real_value(v) >= 9.2e18)
        x = INT64_MAX; /* 2^64-1 style "unlimited" */
    else
        return vs_error(err, EINVAL, "config.json: %s%s: expected an integer", where, key);
    if (x < min || x > max)
        return vs_error(err, ERANGE, "config.json: %s%s: %lld is out of range", where, key,
                        (long long)x);
    *out = x;
    return 1;
}

static int get_u64(json_t *o, const char *key, const char *where, uint64_t *out, vs_err *err)
{
    json_t *v = json_object_get(o, key);
    if (v && json_is_real(v) && json_real_value(v) >= 9.2e18) {
        *out = UINT64_MAX;
        return 1;
    }
    int64_t x;
    int r = get_int(o, key, where, 0, INT64_MAX, &x, err);
    if (r == 1)
        *out = (uint64_t)x;
    return r;
}

static int get_str_array(json_t *o, const char *key, const char *where, const char ***out,
                         size_t *n, struct oci_arena *a, vs_err *err)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return vs_error(err, EINVAL, "config.json: %s%s: expected an array of strings", where, key);
    size_t cnt = json_array_size(v);
    const char **arr = oci_arena_alloc(a, (cnt + 1) * sizeof(char *));
    if (!arr)
        return vs_error(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(v, i);
        if (!json_is_string(e))
            return vs_error(err, EINVAL, "config.json: %s%s[%zu]: expected a string", where, key,
                            i);
        arr[i] = json_string_value(e);
    }
    arr[cnt] = NULL;
    *out = arr;
    if (n)
        *n = cnt;
    return 0;
}

static json_t *get_array(json_t *o, const char *key, const char *where, vs_err *err, int *rc)
{
    json_t *v = json_object_get(o, key);
    if (!v || json_is_null(v))
        return NULL;
    if (!json_is_array(v)) {
        *rc = vs_error(err, EINVAL, "config.json: %s%s: expected an array", where, key);
        return NULL;
    }
    return v;
}

/* Array `key` of o (*arr; NULL when it is absent) and a zeroed table for it
 * in *table: its length + 1 elements of `elem` bytes (the last one a
 * terminator), *n its length. 0, or -1 with err set. */
static int get_array_table(json_t *o, const char *key, const char *where, size_t elem, void *table,
                           size_t *n, json_t **arr, struct oci_arena *a, vs_err *err)
{
    int rc = 0;
    *n = 0;
    *arr = get_array(o, key, where, err, &rc);
    if (!*arr)
        return rc;
    void *tab = oci_arena_alloc(a, (json_array_size(*arr) + 1) * elem);
    if (!tab) {
        *arr = NULL;
        return vs_error(err, ENOMEM, "out of memory");
    }
    memcpy(table, &tab, sizeof(tab));
    *n = json_array_size(*arr);
    return 0;
}

/* The JSON path of an array element ("linux.devices[3].") into where; -1
 * with a message unless the element is an object. */
__attribute__((format(printf, 5, 6))) static int elem_where(vs_err *err, json_t *e, char *where,
                                                            size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(where, size, fmt, ap);
    va_end(ap);
    if (!json_is_object(e))
        return vs_error(err, EINVAL, "config.json: %s: expected an object", where);
    return 0;
}

/* ---- process ---- */

static const struct {
    const char *name;
    int res;
} rlimit_names[] = {
    {"RLIMIT_AS", RLIMIT_AS},
    {"RLIMIT_CORE", RLIMIT_CORE},
    {"RLIMIT_CPU", RLIMIT_CPU},
    {"RLIMIT_DATA", RLIMIT_DATA},
    {"RLIMIT_FSIZE", RLIMIT_FSIZE},
    {"RLIMIT_LOCKS", RLIMIT_LOCKS},
    {"RLIMIT_MEMLOCK", RLIMIT_MEMLOCK},
    {"RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE},
    {"RLIMIT_NICE", RLIMIT_NICE},
    {"RLIMIT_NOFILE", RLIMIT_NOFILE},
    {"RLIMIT_NPROC", RLIMIT_NPROC},
    {"RLIMIT_RSS", RLIMIT_RSS},
    {"RLIMIT_RTPRIO", RLIMIT_RTPRIO},
    {"RLIMIT_RTTIME", RLIMIT_RTTIME},
    {"RLIMIT_SIGPENDING", RLIMIT_SIGPENDING},
    {"RLIMIT_STACK", RLIMIT_STACK},
};

static int parse_cap_set(json_t *caps, const char *key, uint64_t *out, const char **unknown,
                         vs_err *err)
{
    json_t *v = json_object_get(caps, key);
    *out = 0;
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_array(v))
        return vs_error(err, EINVAL, "config.json: process.capabilities.%s: expected an array",
                        key);
    size_t i;
    json_t *e;
    json_array_foreach(v, i, e)
    {
        if (!json_is_string(e))
            return vs_error(err, EINVAL,
                            "config.json: process.capabilities.%s[%zu]: expected a string", key, i);
        int c = oci_cap_from_name(json_string_value(e));
        /* Unknown capabilities are skipped, as runc and crun do, so a
         * newer config still runs on an older kernel (create warns) */
        if (c >= 0 && c < 64)
            *out |= 1ULL << c;
        else if (!*unknown)
            *unknown = json_string_value(e);
    }
    return 0;
}

int oci_process_parse(json_t *p, struct oci_process *out, struct oci_arena *a, vs_err *err)
{
    int rc = 0;
    memset(out, 0, sizeof(*out));
    out->present = true;
    const char *w = "process.";
    if (get_bool(p, "terminal", w, &out->terminal, err) < 0 ||
        get_str(p, "cwd", w, &out->cwd, err) < 0 ||
        get_bool(p, "noNewPrivileges", w, &out->no_new_privileges, err) < 0 ||
        get_str_array(p, "args", w, &out->args, &out->n_args, a, err) < 0 ||
        get_str_array(p, "env", w, &out->env, &out->n_env, a, err) < 0)
        return -1;
    json_t *cs = get_obj(p, "consoleSize", w, err, &rc);
    if (rc < 0)
        return -1;
    if (cs) {
        int64_t h = 0, wd = 0;
        if (get_int(cs, "height", "process.consoleSize.", 0, 65535, &h, err) < 0 ||
            get_int(cs, "width", "process.consoleSize.", 0, 65535, &wd, err) < 0)
            return -1;
        out->console_height = (unsigned)h;
        out->console_width = (unsigned)wd;
    }
    json_t *u = get_obj(p, "user", w, err, &rc);
    if (rc < 0)
        return -1;
    if (u) {
        int64_t x;
        int r;
        if ((r = get_int(u, "uid", "process.user.", 0, UINT32_MAX - 1, &x, err)) < 0)
            return -1;
        if (r)
            out->user.uid = (uint32_t)x;
        if ((r = get_int(u, "gid", "process.user.", 0, UINT32_MAX - 1, &x, err)) < 0)
            return -1;
        if (r)
            out->user.gid = (uint32_t)x;
        if ((r = get_int(u, "umask", "process.user.", 0, 0777, &x, err)) < 0)
            return -1;
        if (r) {
            out->user.has_umask = true;
            out->user.umask = (uint32_t)x;
        }
        json_t *ag, *e;
        size_t i;
        if (get_array_table(u, "additionalGids", "process.user.", sizeof(uint32_t),
                            &out->user.additional_gids, &out->user.n_additional_gids, &ag, a,
                            err) < 0)
            return -1;
        json_array_foreach(ag, i, e)
        {
            if (!json_is_integer(e) || json_integer_value(e) < 0 ||
                json_integer_value(e) >= UINT32_MAX)
                return vs_error(err, EINVAL,
                                "config.json: process.user.additionalGids[%zu]: expected a "
                                "gid",
                                i);
            out->user.additional_gids[i] = (uint32_t)json_integer_value(e);
        }
    }
    json_t *caps = get_obj(p, "capabilities", w, err, &rc);
    if (rc < 0)
        return -1;
    if (caps) {
        out->caps.present = true;
        if (parse_cap_set(caps, "bounding", &out->caps.bounding, &out->caps.unknown, err) < 0 ||
            parse_cap_set(caps, "effective", &out->caps.effective, &out->caps.unknown, err) < 0 ||
            parse_cap_set(caps, "permitted", &out->caps.permitted, &out->caps.unknown, err) < 0 ||
            parse_cap_set(caps, "inheritable", &out->caps.inheritable, &out->caps.unknown, err) <
                0 ||
            parse_cap_set(caps, "ambient", &out->caps.ambient, &out->caps.unknown, err) < 0)
            return -1;
    }
    json_t *rl, *e;
    size_t i;
    if (get_array_table(p, "rlimits", w, sizeof(*out->rlimits), &out->rlimits, &out->n_rlimits, &rl,
                        a, err) < 0)
        return -1;
    json_array_foreach(rl, i, e)
    {
        char where[64];
        const char *type = NULL;
        if (elem_where(err, e, where, sizeof(where), "process.rlimits[%zu].", i) < 0)
            return -1;
        if (get_str(e, "type", where, &type, err) < 0)
            return -1;
        if (!type)
            return vs_error(err, EINVAL, "config.json: %stype: missing", where);
        size_t k;
        for (k = 0; k < ARRAY_SIZE(rlimit_names); k++)
            if (!strcmp(rlimit_names[k].name, type))
                break;
        if (k == ARRAY_SIZE(rlimit_names))
            return vs_error(err, EINVAL, "config.json: %stype: unknown rlimit '%s'", where, type);
        out->rlimits[i].resource = rlimit_names[k].res;
        for (size_t j = 0; j < i; j++)
            if (out->rlimits[j].resource == rlimit_names[k].res)
                return vs_error(err, EINVAL, "config.json: %stype: %s is listed twice", where,
                                type);
        if (get_u64(e, "soft", where, &out->rlimits[i].soft, err) < 0 ||
            get_u64(e, "hard", where, &out->rlimits[i].hard, err) < 0)
            return -1;
    }
    int64_t oom;
    int r = get_int(p, "oomScoreAdj", w, -1000, 1000, &oom, err);
    if (r < 0)
        return -1;
    if (r) {
        out->has_oom_score_adj = true;
        out->oom_score_adj = (int)oom;
    }
    if (get_str(p, "apparmorProfile", w, &out->apparmor_profile, err) < 0 ||
        get_str(p, "selinuxLabel", w, &out->selinux_label, err) < 0)
        return -1;
    json_t *v;
    out->has_scheduler = (v = json_object_get(p, "scheduler")) && !json_is_null(v);
    out->has_io_priority = (v = json_object_get(p, "ioPriority")) && !json_is_null(v);
    out->has_personality = (v = json_object_get(p, "personality")) && !json_is_null(v);
    return 0;
}

/* ---- resources ---- */

static int parse_blkio_list(json_t *bio, const char *key, const char *which, bool weight,
                            struct oci_resources *r, struct oci_arena *a, vs_err *err)
{
    int rc = 0;
    json_t *arr = get_array(bio, key, "linux.resources.blockIO.", err, &rc);
    if (rc < 0)
        return -1;
    if (!arr)
        return 0;
    size_t n = json_array_size(arr), i;
    struct oci_blkio_dev *nd =
        oci_arena_alloc(a, (r->n_blkio_devs + n + 1) * sizeof(struct oci_blkio_dev));
    if (!nd)
        return vs_error(err, ENOMEM, "out of memory");
    if (r->n_blkio_devs)
        memcpy(nd, r->blkio_devs, r->n_blkio_devs * sizeof(*nd));
    r->blkio_devs = nd;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        char where[96];
        if (elem_where(err, e, where, sizeof(where), "linux.resources.blockIO.%s[%zu].", key, i) <
            0)
            return -1;
        struct oci_blkio_dev *d = &r->blkio_devs[r->n_blkio_devs];
        int64_t x = 0;
        if (get_int(e, "major", where, 0, INT32_MAX, &d->major, err) < 0 ||
            get_int(e, "minor", where, 0, INT32_MAX, &d->minor, err) < 0)
            return -1;
        if (weight) {
            if (get_int(e, "weight", where, 0, 65535, &x, err) < 0)
                return -1;
            d->weight = (uint16_t)x;
        } else if (get_u64(e, "rate", where, &d->rate, err) < 0)
            return -1;
        d->which = which;
        r->n_blkio_devs++;
    }
    return 0;
}

int oci_resources_parse(json_t *res, struct oci_resources *r, struct oci_arena *a, vs_err *err)
{
    int rc = 0, x;
    memset(r, 0, sizeof(*r));
    json_t *mem = get_obj(res, "memory", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (mem) {
        const char *w = "linux.resources.memory.";
        if ((x = get_int(mem, "limit", w, -1, INT64_MAX, &r->mem_limit, err)) < 0)
            return -1;
        r->has_mem_limit = x;
        if ((x = get_int(mem, "reservation", w, -1, INT64_MAX, &r->mem_reservation, err)) < 0)
            return -1;
        r->has_mem_reservation = x;
        if ((x = get_int(mem, "swap", w, -1, INT64_MAX, &r->mem_swap, err)) < 0)
            return -1;
        r->has_mem_swap = x;
        if ((x = get_u64(mem, "swappiness", w, &r->mem_swappiness, err)) < 0)
            return -1;
        r->has_mem_swappiness = x && r->mem_swappiness <= 100;
        if (get_bool(mem, "disableOOMKiller", w, &r->disable_oom, err) < 0)
            return -1;
        r->has_disable_oom = json_object_get(mem, "disableOOMKiller") != NULL;
        if ((x = get_int(mem, "kernel", w, -1, INT64_MAX, &r->mem_kernel, err)) < 0)
            return -1;
        r->has_mem_kernel = x;
        if ((x = get_int(mem, "kernelTCP", w, -1, INT64_MAX, &r->mem_kernel_tcp, err)) < 0)
            return -1;
        r->has_mem_kernel_tcp = x;
    }
    json_t *net = get_obj(res, "network", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (net) {
        const char *w = "linux.resources.network.";
        int64_t cid;
        if ((x = get_int(net, "classID", w, 0, UINT32_MAX, &cid, err)) < 0)
            return -1;
        r->has_net_classid = x;
        r->net_classid = (uint32_t)cid;
        json_t *pr;
        if (get_array_table(net, "priorities", w, sizeof(*r->net_prios), &r->net_prios,
                            &r->n_net_prios, &pr, a, err) < 0)
            return -1;
        size_t i;
        json_t *e;
        json_array_foreach(pr, i, e)
        {
            char where[64];
            int64_t prio = 0;
            if (elem_where(err, e, where, sizeof(where), "%spriorities[%zu].", w, i) < 0 ||
                get_str(e, "name", where, &r->net_prios[i].name, err) < 0 ||
                get_int(e, "priority", where, 0, UINT32_MAX, &prio, err) < 0)
                return -1;
            if (!r->net_prios[i].name || !*r->net_prios[i].name ||
                strpbrk(r->net_prios[i].name, " /\n"))
                return vs_error(err, EINVAL, "config.json: %sname: expected an interface name",
                                where);
            r->net_prios[i].priority = (uint32_t)prio;
        }
    }
    json_t *rdma = get_obj(res, "rdma", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    r->has_rdma = rdma && json_object_size(rdma);
    json_t *cpu = get_obj(res, "cpu", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (cpu) {
        const char *w = "linux.resources.cpu.";
        if ((x = get_u64(cpu, "shares", w, &r->cpu_shares, err)) < 0)
            return -1;
        r->has_cpu_shares = x;
        if ((x = get_int(cpu, "quota", w, -1, INT64_MAX, &r->cpu_quota, err)) < 0)
            return -1;
        r->has_cpu_quota = x;
        if ((x = get_u64(cpu, "period", w, &r->cpu_period, err)) < 0)
            return -1;
        r->has_cpu_period = x;
        if ((x = get_int(cpu, "realtimeRuntime", w, -1, INT64_MAX, &r->cpu_rt_runtime, err)) < 0)
            return -1;
        r->has_cpu_rt_runtime = x;
        if ((x = get_u64(cpu, "realtimePeriod", w, &r->cpu_rt_period, err)) < 0)
            return -1;
        r->has_cpu_rt_period = x;
        if (get_str(cpu, "cpus", w, &r->cpu_cpus, err) < 0 ||
            get_str(cpu, "mems", w, &r->cpu_mems, err) < 0)
            return -1;
    }
    json_t *pids = get_obj(res, "pids", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (pids) {
        if ((x = get_int(pids, "limit", "linux.resources.pids.", -1, INT64_MAX, &r->pids_limit,
                         err)) < 0)
            return -1;
        r->has_pids_limit = x;
    }
    json_t *bio = get_obj(res, "blockIO", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (bio) {
        int64_t wgt;
        if ((x = get_int(bio, "weight", "linux.resources.blockIO.", 0, 65535, &wgt, err)) < 0)
            return -1;
        r->has_blkio_weight = x;
        r->blkio_weight = (uint16_t)wgt;
        if (parse_blkio_list(bio, "weightDevice", "weight", true, r, a, err) < 0 ||
            parse_blkio_list(bio, "throttleReadBpsDevice", "read_bps", false, r, a, err) < 0 ||
            parse_blkio_list(bio, "throttleWriteBpsDevice", "write_bps", false, r, a, err) < 0 ||
            parse_blkio_list(bio, "throttleReadIOPSDevice", "read_iops", false, r, a, err) < 0 ||
            parse_blkio_list(bio, "throttleWriteIOPSDevice", "write_iops", false, r, a, err) < 0)
            return -1;
    }
    json_t *hp, *e;
    size_t i;
    if (get_array_table(res, "hugepageLimits", "linux.resources.", sizeof(*r->hugetlb), &r->hugetlb,
                        &r->n_hugetlb, &hp, a, err) < 0)
        return -1;
    json_array_foreach(hp, i, e)
    {
        const char *w = "linux.resources.hugepageLimits[].";
        if (!json_is_object(e) || get_str(e, "pageSize", w, &r->hugetlb[i].page_size, err) < 0 ||
            get_u64(e, "limit", w, &r->hugetlb[i].limit, err) < 0)
            return vs_error(err, EINVAL,
                            "config.json: linux.resources.hugepageLimits[%zu]: invalid", i);
        if (!r->hugetlb[i].page_size)
            return vs_error(err, EINVAL,
                            "config.json: linux.resources.hugepageLimits[%zu].pageSize: "
                            "missing",
                            i);
    }
    json_t *dev;
    if (get_array_table(res, "devices", "linux.resources.", sizeof(*r->dev_rules), &r->dev_rules,
                        &r->n_dev_rules, &dev, a, err) < 0)
        return -1;
    json_array_foreach(dev, i, e)
    {
        char where[64];
        struct oci_dev_rule *d = &r->dev_rules[i];
        const char *type = NULL;
        if (elem_where(err, e, where, sizeof(where), "linux.resources.devices[%zu].", i) < 0)
            return -1;
        d->major = d->minor = -1;
        if (get_bool(e, "allow", where, &d->allow, err) < 0 ||
            get_str(e, "type", where, &type, err) < 0 ||
            get_str(e, "access", where, &d->access, err) < 0 ||
            get_int(e, "major", where, -1, INT32_MAX, &d->major, err) < 0 ||
            get_int(e, "minor", where, -1, INT32_MAX, &d->minor, err) < 0)
            return -1;
        d->type = type ? type[0] : 'a';
        if (d->type != 'a' && d->type != 'c' && d->type != 'b')
            return vs_error(err, EINVAL, "config.json: %stype: must be a, c or b", where);
        if (d->access && strspn(d->access, "rwm") != strlen(d->access))
            return vs_error(err, EINVAL, "config.json: %saccess: must be made of r, w, m", where);
    }
    json_t *uni = get_obj(res, "unified", "linux.resources.", err, &rc);
    if (rc < 0)
        return -1;
    if (uni) {
        const char *k;
        json_t *v;
        json_object_foreach(uni, k, v)
        {
            if (!json_is_string(v) || strchr(k, '/') || k[0] == '.')
                return vs_error(err, EINVAL,
                                "config.json: linux.resources.unified.%s: expected a file name "
                                "and a string",
                                k);
        }
        r->unified = uni;
    }
    return 0;
}

/* ---- seccomp ---- */

static int seccomp_action(const char *s, uint32_t errno_ret, bool has_errno, uint32_t *out,
                          bool *notify)
{
    if (!strcmp(s, "SCMP_ACT_KILL") || !strcmp(s, "SCMP_ACT_KILL_THREAD"))
        *out = SCMP_ACT_KILL_THREAD;
    else if (!strcmp(s, "SCMP_ACT_KILL_PROCESS"))
        *out = SCMP_ACT_KILL_PROCESS;
    else if (!strcmp(s, "SCMP_ACT_TRAP"))
        *out = SCMP_ACT_TRAP;
    else if (!strcmp(s, "SCMP_ACT_ERRNO"))
        *out = SCMP_ACT_ERRNO(has_errno ? errno_ret : EPERM);
    else if (!strcmp(s, "SCMP_ACT_TRACE"))
        *out = SCMP_ACT_TRACE(has_errno ? errno_ret : EPERM);
    else if (!strcmp(s, "SCMP_ACT_ALLOW"))
        *out = SCMP_ACT_ALLOW;
    else if (!strcmp(s, "SCMP_ACT_LOG"))
        *out = SCMP_ACT_LOG;
    else if (!strcmp(s, "SCMP_ACT_NOTIFY")) {
        *out = SCMP_ACT_NOTIFY;
        *notify = true;
    } else
        return -1;
    return 0;
}

static int seccomp_op(const char *s)
{
    static const struct {
        const char *n;
        int op;
    } ops[] = {
        {"SCMP_CMP_NE", SCMP_CMP_NE},
        {"SCMP_CMP_LT", SCMP_CMP_LT},
        {"SCMP_CMP_LE", SCMP_CMP_LE},
        {"SCMP_CMP_EQ", SCMP_CMP_EQ},
        {"SCMP_CMP_GE", SCMP_CMP_GE},
        {"SCMP_CMP_GT", SCMP_CMP_GT},
        {"SCMP_CMP_MASKED_EQ", SCMP_CMP_MASKED_EQ},
    };
    for (size_t i = 0; i < ARRAY_SIZE(ops); i++)
        if (!strcmp(ops[i].n, s))
            return ops[i].op;
    return -1;
}

static int parse_seccomp(json_t *sc, struct oci_seccomp *out, struct oci_arena *a, vs_err *err)
{
    const char *w = "linux.seccomp.";
    const char *def = NULL;
    int64_t def_errno = 0;
    int has_def_errno;
    int rc = 0;
    out->present = true;
    if (get_str(sc, "defaultAction", w, &def, err) < 0 ||
        (has_def_errno = get_int(sc, "defaultErrnoRet", w, 0, 4095, &def_errno, err)) < 0 ||
        get_str_array(sc, "architectures", w, &out->archs, &out->n_archs, a, err) < 0 ||
        get_str_array(sc, "flags", w, &out->flags, &out->n_flags, a, err) < 0 ||
        get_str(sc, "listenerPath", w, &out->listener_path, err) < 0 ||
        get_str(sc, "listenerMetadata", w, &out->listener_metadata, err) < 0)
        return -1;
    if (!def)
        return vs_error(err, EINVAL, "config.json: linux.seccomp.defaultAction: missing");
    if (seccomp_action(def, (uint32_t)def_errno, has_def_errno, &out->default_action,
                       &out->uses_notify) < 0)
        return vs_error(err, EINVAL,
                        "config.json: linux.seccomp.defaultAction: unknown action '%s'", def);
    json_t *sys, *e;
    size_t i;
    if (get_array_table(sc, "syscalls", w, sizeof(*out->rules), &out->rules, &out->n_rules, &sys, a,
                        err) < 0)
        return -1;
    if (!sys)
        return 0;
    json_array_foreach(sys, i, e)
    {
        char where[64];
        struct oci_seccomp_rule *r = &out->rules[i];
        const char *act = NULL;
        int64_t eret = 0;
        int has_eret;
        if (elem_where(err, e, where, sizeof(where), "linux.seccomp.syscalls[%zu].", i) < 0)
            return -1;
        if (get_str_array(e, "names", where, &r->names, &r->n_names, a, err) < 0 ||
            get_str(e, "action", where, &act, err) < 0 ||
            (has_eret = get_int(e, "errnoRet", where, 0, 4095, &eret, err)) < 0)
            return -1;
        if (!act || !r->names)
            return vs_error(err, EINVAL, "config.json: %s: names and action are required", where);
        if (seccomp_action(act, (uint32_t)eret, has_eret, &r->action, &out->uses_notify) < 0)
            return vs_error(err, EINVAL, "config.json: %saction: unknown action '%s'", where, act);
        json_t *args = get_array(e, "args", where, err, &rc);
        if (rc < 0)
            return -1;
        if (args) {
            size_t na = json_array_size(args), j;
            json_t *ae;
            if (na > 6)
                return vs_error(err, EINVAL, "config.json: %sargs: at most 6 arguments", where);
            r->args = oci_arena_alloc(a, (na + 1) * sizeof(*r->args));
            if (!r->args)
                return vs_error(err, ENOMEM, "out of memory");
            json_array_foreach(args, j, ae)
            {
                const char *op = NULL;
                int64_t idx = 0;
                if (!json_is_object(ae) || get_int(ae, "index", where, 0, 5, &idx, err) < 0 ||
                    get_u64(ae, "value", where, &r->args[j].value, err) < 0 ||
                    get_u64(ae, "valueTwo", where, &r->args[j].value_two, err) < 0 ||
                    get_str(ae, "op", where, &op, err) < 0)
                    return vs_error(err, EINVAL, "config.json: %sargs[%zu]: invalid", where, j);
                r->args[j].index = (unsigned)idx;
                if (!op || (r->args[j].op = seccomp_op(op)) < 0)
                    return vs_error(err, EINVAL, "config.json: %sargs[%zu].op: unknown '%s'", where,
                                    j, op ? op : "");
            }
            r->n_args = na;
        }
    }
    if (out->uses_notify && !out->listener_path)
        return vs_error(err, EINVAL,
                        "config.json: linux.seccomp: SCMP_ACT_NOTIFY needs listenerPath");
    return 0;
}

/* ---- hooks, mounts, linux ---- */

static int parse_hook_list(json_t *hooks, const char *key, struct oci_hook **out, size_t *n,
                           struct oci_arena *a, vs_err *err)
{
    json_t *arr, *e;
    size_t i;
    if (get_array_table(hooks, key, "hooks.", sizeof(**out), out, n, &arr, a, err) < 0)
        return -1;
    json_array_foreach(arr, i, e)
    {
        char where[64];
        struct oci_hook *h = &(*out)[i];
        int64_t t = 0;
        if (elem_where(err, e, where, sizeof(where), "hooks.%s[%zu].", key, i) < 0)
            return -1;
        if (get_str(e, "path", where, &h->path, err) < 0 ||
            get_str_array(e, "args", where, &h->args, NULL, a, err) < 0 ||
            get_str_array(e, "env", where, &h->env, NULL, a, err) < 0 ||
            get_int(e, "timeout", where, 1, 86400, &t, err) < 0)
            return -1;
        if (!h->path || h->path[0] != '/')
            return vs_error(err, EINVAL, "config.json: %spath: must be an absolute path", where);
        h->timeout = (int)t;
    }
    return 0;
}

static int parse_id_maps(json_t *lx, const char *key, struct oci_id_map **out, size_t *n,
                         struct oci_arena *a, vs_err *err)
{
    json_t *arr, *e;
    size_t i;
    if (get_array_table(lx, key, "linux.", sizeof(**out), out, n, &arr, a, err) < 0)
        return -1;
    if (*n > 340)
        return vs_error(err, EINVAL, "config.json: linux.%s: too many entries", key);
    json_array_foreach(arr, i, e)
    {
        char where[64];
        int64_t c = -1, h = -1, s = -1;
        snprintf(where, sizeof(where), "linux.%s[%zu].", key, i);
        if (!json_is_object(e) || get_int(e, "containerID", where, 0, UINT32_MAX, &c, err) < 0 ||
            get_int(e, "hostID", where, 0, UINT32_MAX, &h, err) < 0 ||
            get_int(e, "size", where, 1, UINT32_MAX, &s, err) < 0)
            return -1;
        if (c < 0 || h < 0 || s < 0)
            return vs_error(err, EINVAL,
                            "config.json: %s: containerID, hostID and size are required", where);
        (*out)[i] = (struct oci_id_map){(uint32_t)c, (uint32_t)h, (uint32_t)s};
    }
    return 0;
}

static int parse_linux(json_t *lx, struct oci_spec *s, vs_err *err)
{
    int rc = 0;
    struct oci_arena *a = &s->arena;
    json_t *nss = get_array(lx, "namespaces", "linux.", err, &rc);
    if (rc < 0)
        return -1;
    if (nss) {
        size_t i;
        json_t *e;
        json_array_foreach(nss, i, e)
        {
            char where[64];
            const char *type = NULL, *path = NULL;
            if (elem_where(err, e, where, sizeof(where), "linux.namespaces[%zu].", i) < 0)
                return -1;
            if (get_str(e, "type", where, &type, err) < 0 ||
                get_str(e, "path", where, &path, err) < 0)
                return -1;
            if (!type)
                return vs_error(err, EINVAL, "config.json: %stype: missing", where);
            int t;
            for (t = 0; t < OCI_NS_COUNT; t++)
                if (!strcmp(type, ns_names[t]))
                    break;
            if (t == OCI_NS_COUNT)
                return vs_error(err, EINVAL, "config.json: %stype: unknown namespace type '%s'",
                                where, type);
            if (s->ns[t].present)
                return vs_error(err, EINVAL, "config.json: %stype: namespace '%s' listed twice",
                                where, type);
            if (path && path[0] != '/')
                return vs_error(err, EINVAL, "config.json: %spath: must be absolute", where);
            s->ns[t].present = true;
            s->ns[t].path = path && *path ? path : NULL;
        }
    }
    if (parse_id_maps(lx, "uidMappings", &s->uid_maps, &s->n_uid_maps, a, err) < 0 ||
        parse_id_maps(lx, "gidMappings", &s->gid_maps, &s->n_gid_maps, a, err) < 0)
        return -1;
    if ((s->n_uid_maps || s->n_gid_maps) &&
        !(s->ns[OCI_NS_USER].present && !s->ns[OCI_NS_USER].path))
        return vs_error(err, EINVAL,
                        "config.json: linux.uidMappings given without a new user namespace");
    json_t *devs, *e;
    size_t i;
    if (get_array_table(lx, "devices", "linux.", sizeof(*s->devices), &s->devices, &s->n_devices,
                        &devs, a, err) < 0)
        return -1;
    json_array_foreach(devs, i, e)
    {
        char where[64];
        const char *type = NULL;
        int64_t x;
        int r;
        struct oci_device *d = &s->devices[i];
        if (elem_where(err, e, where, sizeof(where), "linux.devices[%zu].", i) < 0)
            return -1;
        if (get_str(e, "path", where, &d->path, err) < 0 ||
            get_str(e, "type", where, &type, err) < 0 ||
            get_int(e, "major", where, 0, 0xfff, &d->major, err) < 0 ||
            get_int(e, "minor", where, 0, 0xfffff, &d->minor, err) < 0)
            return -1;
        if (!d->path || d->path[0] != '/' || !type || strlen(type) != 1 || !strchr("cbup", type[0]))
            return vs_error(err, EINVAL,
                            "config.json: %s: needs an absolute path and type c, b, u or p", where);
        d->type = type[0];
        if ((r = get_int(e, "fileMode", where, 0, 07777, &x, err)) < 0)
            return -1;
        d->has_mode = r;
        d->file_mode = (uint32_t)x;
        if ((r = get_int(e, "uid", where, 0, UINT32_MAX - 1, &x, err)) < 0)
            return -1;
        d->has_uid = r;
        d->uid = (uint32_t)x;
        if ((r = get_int(e, "gid", where, 0, UINT32_MAX - 1, &x, err)) < 0)
            return -1;
        d->has_gid = r;
        d->gid = (uint32_t)x;
    }
    if (get_str(lx, "cgroupsPath", "linux.", &s->cgroups_path, err) < 0 ||
        get_str(lx, "rootfsPropagation", "linux.", &s->rootfs_propagation, err) < 0 ||
        get_str(lx, "mountLabel", "linux.", &s->mount_label, err) < 0 ||
        get_str_array(lx, "maskedPaths", "linux.", &s->masked_paths, &s->n_masked_paths, a, err) <
            0 ||
        get_str_array(lx, "readonlyPaths", "linux.", &s->readonly_paths, &s->n_readonly_paths, a,
                      err) < 0)
        return -1;
    json_t *res = get_obj(lx, "resources", "linux.", err, &rc);
    if (rc < 0)
        return -1;
    if (res) {
        s->has_resources = true;
        if (oci_resources_parse(res, &s->resources, a, err) < 0)
            return -1;
    }
    json_t *sysctl = get_obj(lx, "sysctl", "linux.", err, &rc);
    if (rc < 0)
        return -1;
    if (sysctl) {
        size_t n = json_object_size(sysctl), i = 0;
        const char *k;
        json_t *v;
        s->sysctls = oci_arena_alloc(a, (n + 1) * sizeof(*s->sysctls));
        if (!s->sysctls)
            return vs_error(err, ENOMEM, "out of memory");
        json_object_foreach(sysctl, k, v)
        {
            if (!json_is_string(v) || strstr(k, "..") || k[0] == '/' || k[0] == '.')
                return vs_error(err, EINVAL, "config.json: linux.sysctl.%s: invalid", k);
            s->sysctls[i].key = k;
            s->sysctls[i++].value = json_string_value(v);
        }
        s->n_sysctls = i;
    }
    json_t *sc = get_obj(lx, "seccomp", "linux.", err, &rc);
    if (rc < 0)
        return -1;
    if (sc && parse_seccomp(sc, &s->seccomp, a, err) < 0)
        return -1;
    if (s->resources.n_dev_rules && s->n_devices) {
        /* devices the spec creates are allowed in the device cgroup */
        size_t n = s->resources.n_dev_rules + s->n_devices;
        struct oci_dev_rule *r = oci_arena_alloc(a, (n + 1) * sizeof(*r));
        if (!r)
            return vs_error(err, ENOMEM, "out of memory");
        memcpy(r, s->resources.dev_rules, s->resources.n_dev_rules * sizeof(*r));
        for (size_t i = 0; i < s->n_devices; i++) {
            const struct oci_device *d = &s->devices[i];
            if (d->type == 'p')
                continue;
            r[s->resources.n_dev_rules++] =
                (struct oci_dev_rule){true, d->type == 'b' ? 'b' : 'c', d->major, d->minor, "rwm"};
        }
        s->resources.dev_rules = r;
    }
    json_t *rdt = json_object_get(lx, "intelRdt");
    s->has_intel_rdt = rdt && !json_is_null(rdt);
    json_t *to = get_obj(lx, "timeOffsets", "linux.", err, &rc);
    if (rc < 0)
        return -1;
    if (to) {
        const char *clk[2] = {"monotonic", "boottime"};
        struct oci_time_offset *dst[2] = {&s->time_monotonic, &s->time_boottime};
        for (int i = 0; i < 2; i++) {
            json_t *o = get_obj(to, clk[i], "linux.timeOffsets.", err, &rc);
            if (rc < 0)
                return -1;
            if (!o)
                continue;
            int64_t ns = 0;
            dst[i]->present = true;
            if (get_int(o, "secs", "linux.timeOffsets.", INT32_MIN, INT32_MAX, &dst[i]->secs, err) <
                    0 ||
                get_int(o, "nanosecs", "linux.timeOffsets.", 0, 999999999, &ns, err) < 0)
                return -1;
            dst[i]->nanosecs = (uint32_t)ns;
        }
        if ((s->time_monotonic.present || s->time_boottime.present) &&
            !(s->ns[OCI_NS_TIME].present && !s->ns[OCI_NS_TIME].path))
            return vs_error(err, EINVAL,
                            "config.json: linux.timeOffsets given without a new time namespace");
    }
    return 0;
}

static int parse_mounts(json_t *arr, struct oci_spec *s, vs_err *err)
{
    size_t n = json_array_size(arr), i;
    json_t *e;
    s->mounts = oci_arena_alloc(&s->arena, (n + 1) * sizeof(*s->mounts));
    if (!s->mounts)
        return vs_error(err, ENOMEM, "out of memory");
    json_array_foreach(arr, i, e)
    {
        char where[64];
        struct oci_mount *m = &s->mounts[i];
        if (elem_where(err, e, where, sizeof(where), "mounts[%zu].", i) < 0)
            return -1;
        if (get_str(e, "destination", where, &m->destination, err) < 0 ||
            get_str(e, "type", where, &m->type, err) < 0 ||
            get_str(e, "source", where, &m->source, err) < 0 ||
            get_str_array(e, "options", where, &m->options, &m->n_options, &s->arena, err) < 0)
            return -1;
        /* a relative destination is relative to "/" (config.md, deprecated) */
        if (!m->destination || !*m->destination)
            return vs_error(err, EINVAL, "config.json: %sdestination: must be a path", where);
    }
    s->n_mounts = n;
    return 0;
}

static struct oci_spec *parse_spec(const char *text, size_t len, bool secure_defaults, vs_err *err);

struct oci_spec *oci_spec_parse(const char *text, size_t len, vs_err *err)
{
    return parse_spec(text, len, false, err);
}

static struct oci_spec *parse_spec(const char *text, size_t len, bool secure_defaults, vs_err *err)
{
    json_error_t jerr;
    int rc = 0;
    struct oci_spec *s = calloc(1, sizeof(*s));
    if (!s) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    s->root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!s->root) {
        vs_error(err, EINVAL, "config.json: invalid JSON at line %d column %d: %s", jerr.line,
                 jerr.column, jerr.text);
        goto fail;
    }
    json_t *r = s->root;
    if (!json_is_object(r)) {
        vs_error(err, EINVAL, "config.json: expected a JSON object at the top level");
        goto fail;
    }
    if (secure_defaults && oci_spec_secure_defaults(r, err) < 0)
        goto fail;
    if (get_str(r, "ociVersion", "", &s->oci_version, err) < 0)
        goto fail;
    if (!s->oci_version) {
        vs_error(err, EINVAL, "config.json: ociVersion: missing");
        goto fail;
    }
    /* Semantic versioning: 1.x.y is ours; another major is a different format. */
    if (strncmp(s->oci_version, "1.", 2) != 0) {
        vs_error(err, EINVAL,
                 "config.json: ociVersion '%s' is not supported (this runtime implements 1.x)",
                 s->oci_version);
        goto fail;
    }
    json_t *root = get_obj(r, "root", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (root) {
        if (get_str(root, "path", "root.", &s->root_path, err) < 0 ||
            get_bool(root, "readonly", "root.", &s->root_readonly, err) < 0)
            goto fail;
    }
    if (!s->root_path || !*s->root_path) {
        vs_error(err, EINVAL, "config.json: root.path: missing");
        goto fail;
    }
    if (get_str(r, "hostname", "", &s->hostname, err) < 0 ||
        get_str(r, "domainname", "", &s->domainname, err) < 0)
        goto fail;
    json_t *proc = get_obj(r, "process", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (proc && oci_process_parse(proc, &s->process, &s->arena, err) < 0)
        goto fail;
    json_t *mounts = get_array(r, "mounts", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (mounts && parse_mounts(mounts, s, err) < 0)
        goto fail;
    json_t *hooks = get_obj(r, "hooks", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (hooks) {
        struct oci_hooks *h = &s->hooks;
        if (parse_hook_list(hooks, "prestart", &h->prestart, &h->n_prestart, &s->arena, err) < 0 ||
            parse_hook_list(hooks, "createRuntime", &h->create_runtime, &h->n_create_runtime,
                            &s->arena, err) < 0 ||
            parse_hook_list(hooks, "createContainer", &h->create_container, &h->n_create_container,
                            &s->arena, err) < 0 ||
            parse_hook_list(hooks, "startContainer", &h->start_container, &h->n_start_container,
                            &s->arena, err) < 0 ||
            parse_hook_list(hooks, "poststart", &h->poststart, &h->n_poststart, &s->arena, err) <
                0 ||
            parse_hook_list(hooks, "poststop", &h->poststop, &h->n_poststop, &s->arena, err) < 0)
            goto fail;
    }
    s->annotations = get_obj(r, "annotations", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (s->annotations) {
        const char *k;
        json_t *v;
        json_object_foreach(s->annotations, k, v)
        {
            if (!*k || !json_is_string(v)) {
                vs_error(err, EINVAL,
                         "config.json: annotations.%s: keys must be non-empty and values strings",
                         k);
                goto fail;
            }
        }
    }
    json_t *lx = get_obj(r, "linux", "", err, &rc);
    if (rc < 0)
        goto fail;
    if (lx && parse_linux(lx, s, err) < 0)
        goto fail;
    if (s->process.present && s->process.n_args == 0) {
        vs_error(err, EINVAL, "config.json: process.args: must hold at least one argument");
        goto fail;
    }
    if (s->process.present && s->process.cwd && s->process.cwd[0] != '/') {
        vs_error(err, EINVAL, "config.json: process.cwd: must be an absolute path");
        goto fail;
    }
    return s;
fail:
    oci_spec_free(s);
    return NULL;
}

struct oci_spec *oci_spec_load(const char *path, vs_err *err)
{
    return oci_spec_load_opts(path, false, err);
}

struct oci_spec *oci_spec_load_opts(const char *path, bool secure_defaults, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        vs_error_errno(err, "cannot open %s", path);
        return NULL;
    }
    struct stat st;
    if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size > (64 << 20)) {
        vs_error(err, EINVAL, "%s: not a regular file of sane size", path);
        return NULL;
    }
    cleanup_free char *buf = malloc((size_t)st.st_size + 1);
    if (!buf) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    if (vs_read_full(fd, buf, (size_t)st.st_size) < 0) {
        vs_error_errno(err, "%s: read", path);
        return NULL;
    }
    return parse_spec(buf, (size_t)st.st_size, secure_defaults, err);
}

void oci_spec_free(struct oci_spec *s)
{
    if (!s)
        return;
    oci_arena_release(&s->arena);
    json_decref(s->root);
    free(s);
}
