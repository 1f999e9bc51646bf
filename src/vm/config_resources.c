/* The dynamic-resource part of the VM config: the balloon (--balloon), and
 * its checks and JSON form, kept apart from config.c so the flags of each
 * resource sit in one place. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/parse.h"
#include "vm/config.h"
#include "vm/config_json.h"

static int parse_onoff(const char *what, const char *k, const char *v, bool *out, vs_err *err)
{
    if (!v || !strcmp(v, "on") || !strcmp(v, "true") || !strcmp(v, "1"))
        *out = true;
    else if (!strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "0"))
        *out = false;
    else
        return vs_error(err, EINVAL, "%s: %s=%s is not on or off", what, k, v);
    return 0;
}

int vm_config_set_balloon(struct vm_config *c, const char *spec, vs_err *err)
{
    struct vm_balloon_config b = {
        .enabled = true, .stats_secs = 1, .deflate_on_oom = true, .free_page_reporting = true};
    if (!strcmp(spec, "off")) {
        memset(&c->balloon, 0, sizeof(c->balloon));
        return 0;
    }
    struct vs_optlist l;
    if (vs_optlist_parse(spec, &l, err) < 0)
        return vs_error_prefix(err, "--balloon: ");
    int ret = 0;
    for (size_t i = 0; i < l.n && ret == 0; i++) {
        const char *k = l.opts[i].key, *v = l.opts[i].value;
        uint64_t n;
        if (!strcmp(k, "on") && !v) {
            continue;
        } else if (!strcmp(k, "size") && v) {
            if (vs_parse_size(v, 1ULL << 20, &n, err) < 0)
                ret = vs_error_prefix(err, "--balloon: size: ");
            b.size = n;
        } else if (!strcmp(k, "stats") && v) {
            if (vs_parse_u64(v, 0, 3600, &n, err) < 0)
                ret = vs_error_prefix(err, "--balloon: stats (seconds): ");
            b.stats_secs = (unsigned)n;
        } else if (!strcmp(k, "deflate-on-oom")) {
            ret = parse_onoff("--balloon", k, v, &b.deflate_on_oom, err);
        } else if (!strcmp(k, "free-page-reporting")) {
            ret = parse_onoff("--balloon", k, v, &b.free_page_reporting, err);
        } else {
            ret = vs_error(err, EINVAL,
                           "--balloon: unknown option '%s' (size=, stats=, deflate-on-oom=, "
                           "free-page-reporting=)",
                           k);
        }
    }
    vs_optlist_free(&l);
    if (ret == 0)
        c->balloon = b;
    return ret;
}

int vm_config_validate_resources(const struct vm_config *c, vs_err *err)
{
    if (c->max_cpus && (c->max_cpus < c->cpus || c->max_cpus > VM_MAX_CPUS))
        return vs_error(err, EINVAL, "max-cpus: %u is not in %u..%d (at least --cpus)", c->max_cpus,
                        c->cpus, VM_MAX_CPUS);
    if (c->max_cpus > c->cpus && c->arch != VM_ARCH_RISCV64)
        return vs_error(err, ENOTSUP,
                        "max-cpus: vCPU hot-plug is only on riscv64 so far (x86_64 needs ACPI CPU "
                        "hotplug)");
    if (c->mergeable && c->nshares)
        return vs_error(err, EINVAL,
                        "mergeable: KSM merges only private memory, and a --share needs guest RAM "
                        "a vhost-user backend can map (a memfd): not both");
    const struct vm_balloon_config *b = &c->balloon;
    if (b->enabled) {
        uint64_t keep = c->memory / 16 > (16ULL << 20) ? c->memory / 16 : 16ULL << 20;
        if (b->size && b->size + keep > c->memory)
            return vs_error(err, EINVAL,
                            "balloon: size %llu MiB leaves the guest less than %llu MiB of its "
                            "%llu MiB",
                            (unsigned long long)(b->size >> 20), (unsigned long long)(keep >> 20),
                            (unsigned long long)(c->memory >> 20));
        if (b->stats_secs > 3600)
            return vs_error(err, EINVAL, "balloon: stats interval %u s is over 3600 s",
                            b->stats_secs);
    }
    return 0;
}

void vm_config_resources_to_json(const struct vm_config *c, json_t *o)
{
    if (c->max_cpus)
        json_object_set_new(o, "max_cpus", json_integer(c->max_cpus));
    if (c->mergeable)
        json_object_set_new(o, "mergeable", json_true());
    if (c->limit_memory || c->limit_cpu_millis)
        json_object_set_new(o, "limits",
                            json_pack("{s:I, s:i}", "memory", (json_int_t)c->limit_memory,
                                      "cpu_millis", (int)c->limit_cpu_millis));
    const struct vm_balloon_config *b = &c->balloon;
    if (b->enabled)
        json_object_set_new(o, "balloon",
                            json_pack("{s:I, s:i, s:b, s:b}", "size", (json_int_t)b->size,
                                      "stats_secs", (int)b->stats_secs, "deflate_on_oom",
                                      b->deflate_on_oom, "free_page_reporting",
                                      b->free_page_reporting));
}

int vm_config_resources_from_json(const json_t *j, struct vm_config *c, vs_err *err)
{
    json_t *mc = json_object_get(j, "max_cpus");
    if (mc && (!json_is_integer(mc) || json_integer_value(mc) < 0 ||
               json_integer_value(mc) > VM_MAX_CPUS))
        return vs_error(err, EINVAL, "config: 'max_cpus' is not an integer in 0..%d", VM_MAX_CPUS);
    c->max_cpus = (unsigned)json_integer_value(mc);
    c->mergeable = json_is_true(json_object_get(j, "mergeable"));
    json_t *lim = json_object_get(j, "limits");
    if (lim) {
        json_t *m = json_object_get(lim, "memory"), *cpu = json_object_get(lim, "cpu_millis");
        if (!json_is_object(lim) || (m && !json_is_integer(m)) || (cpu && !json_is_integer(cpu)) ||
            json_integer_value(m) < 0 || json_integer_value(cpu) < 0 ||
            json_integer_value(cpu) > VM_MAX_CPUS * 4000)
            return vs_error(err, EINVAL, "config: 'limits' is not a valid limits object");
        c->limit_memory = (uint64_t)json_integer_value(m);
        c->limit_cpu_millis = (unsigned)json_integer_value(cpu);
    }
    json_t *b = json_object_get(j, "balloon");
    if (!b || json_is_null(b))
        return 0;
    json_t *size = json_object_get(b, "size"), *secs = json_object_get(b, "stats_secs");
    if (!json_is_object(b) || (size && !json_is_integer(size)) ||
        (secs && !json_is_integer(secs)) || json_integer_value(size) < 0 ||
        json_integer_value(secs) < 0 || json_integer_value(secs) > 3600)
        return vs_error(err, EINVAL, "config: 'balloon' is not a valid balloon object");
    c->balloon = (struct vm_balloon_config){
        .enabled = true,
        .size = (uint64_t)json_integer_value(size),
        .stats_secs = (unsigned)json_integer_value(secs),
        .deflate_on_oom = json_is_true(json_object_get(b, "deflate_on_oom")),
        .free_page_reporting = json_is_true(json_object_get(b, "free_page_reporting")),
    };
    return 0;
}

int vm_rate_option(struct vs_rate_config *r, const char *what, const char *k, const char *v,
                   vs_err *err)
{
    uint64_t *field = !strcmp(k, "bw")           ? &r->bytes_per_s
                      : !strcmp(k, "bw-burst")   ? &r->bytes_burst
                      : !strcmp(k, "iops")       ? &r->ops_per_s
                      : !strcmp(k, "iops-burst") ? &r->ops_burst
                                                 : NULL;
    if (!field)
        return 0;
    if (!v)
        return vs_error(err, EINVAL, "%s: %s needs a value", what, k);
    bool bytes = field == &r->bytes_per_s || field == &r->bytes_burst;
    int rc = bytes ? vs_parse_size(v, 1, field, err) : vs_parse_u64(v, 0, 1ULL << 40, field, err);
    if (rc < 0)
        return vs_error_prefix(err, "%s: %s: ", what, k);
    return 1;
}

json_t *vm_rate_to_json(const struct vs_rate_config *r)
{
    if (!vs_rate_config_active(r))
        return NULL;
    return json_pack("{s:I, s:I, s:I, s:I}", "bytes_per_s", (json_int_t)r->bytes_per_s,
                     "bytes_burst", (json_int_t)r->bytes_burst, "ops_per_s",
                     (json_int_t)r->ops_per_s, "ops_burst", (json_int_t)r->ops_burst);
}

int vm_rate_from_json(const json_t *j, const char *what, struct vs_rate_config *r, vs_err *err)
{
    memset(r, 0, sizeof(*r));
    if (!j || json_is_null(j))
        return 0;
    static const char *const keys[] = {"bytes_per_s", "bytes_burst", "ops_per_s", "ops_burst"};
    uint64_t *fields[] = {&r->bytes_per_s, &r->bytes_burst, &r->ops_per_s, &r->ops_burst};
    if (!json_is_object(j))
        return vs_error(err, EINVAL, "%s: rate_limit must be an object", what);
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)j, k, v)
    {
        unsigned i = 0;
        while (i < 4 && strcmp(k, keys[i]))
            i++;
        if (i == 4)
            return vs_error(err, EINVAL, "%s: rate_limit: unknown key \"%s\"", what, k);
        if (!json_is_integer(v) || json_integer_value(v) < 0)
            return vs_error(err, EINVAL, "%s: rate_limit: \"%s\" must be an integer >= 0", what, k);
        *fields[i] = (uint64_t)json_integer_value(v);
    }
    return 0;
}

int vm_parse_cpu_limit(const char *s, unsigned *millis, vs_err *err)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v < 0 || (v > 0 && v < 0.01) || v > VM_MAX_CPUS * 4)
        return vs_error(err, EINVAL, "'%s' is not a number of CPUs in 0.01..%d (0: no cap)", s,
                        VM_MAX_CPUS * 4);
    *millis = (unsigned)(v * 1000 + 0.5);
    return 0;
}
