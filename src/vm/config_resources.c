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
