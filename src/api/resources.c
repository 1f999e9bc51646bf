/* PATCH /vm and the resource part of GET /vm: the balloon (virtio-balloon),
 * found on the machine's device list. */
#include "api/resources.h"

#include <errno.h>
#include <string.h>

#include "virtio/balloon.h"
#include "virtio/machine_glue.h"
#include "virtio/virtio.h"

static int pick_balloon(struct virtio_dev *d, void *opaque, vs_err *err)
{
    if (!virtio_is_balloon(d))
        return 0;
    *(struct virtio_dev **)opaque = d;
    return 0;
}

static struct virtio_dev *find_balloon(struct vm_control *ctl)
{
    struct virtio_dev *b = NULL;
    if (ctl->devices)
        virtio_set_foreach(ctl->devices(ctl->machine), pick_balloon, &b, NULL);
    return b;
}

static json_t *balloon_json(struct virtio_dev *d)
{
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(d, &bi);
    json_t *j = json_pack(
        "{s:I, s:I, s:I, s:i, s:b, s:b, s:I, s:I, s:I, s:I}", "target_bytes",
        (json_int_t)bi.target_bytes, "actual_bytes", (json_int_t)bi.actual_bytes,
        "max_target_bytes", (json_int_t)bi.max_target_bytes, "stats_interval_s",
        (int)bi.stats_interval_s, "deflate_on_oom", bi.deflate_on_oom, "free_page_reporting",
        bi.free_page_reporting, "inflated_bytes", (json_int_t)bi.inflated_bytes, "deflated_bytes",
        (json_int_t)bi.deflated_bytes, "reported_bytes", (json_int_t)bi.reported_bytes,
        "refused_pages", (json_int_t)bi.refused_pages);
    if (bi.stats_valid) {
        json_t *st = json_object();
        for (unsigned t = 0; t < VIRTIO_BALLOON_S_NR; t++)
            if (bi.stats.valid & (1u << t))
                json_object_set_new(st, balloon_stat_name(t),
                                    json_integer((json_int_t)bi.stats.val[t]));
        json_object_set_new(st, "age_ms", json_integer((json_int_t)bi.stats_age_ms));
        json_object_set_new(j, "stats", st);
    }
    return j;
}

void api_resources_info(struct vm_control *ctl, json_t *info)
{
    struct virtio_dev *b = find_balloon(ctl);
    if (b)
        json_object_set_new(info, "balloon", balloon_json(b));
}

/* An integer member in [0, max], or absent (*present false). */
static int get_uint(const json_t *o, const char *where, const char *k, uint64_t max, uint64_t *out,
                    bool *present, vs_err *err)
{
    json_t *v = json_object_get(o, k);
    *present = v != NULL;
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) > max)
        return vs_error(err, EINVAL, "%s: \"%s\" must be an integer in 0..%llu", where, k,
                        (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

static int check_keys(const json_t *o, const char *where, const char *const *known, vs_err *err)
{
    const char *k;
    json_t *v;
    json_object_foreach((json_t *)o, k, v)
    {
        bool ok = false;
        for (unsigned i = 0; known[i] && !ok; i++)
            ok = !strcmp(k, known[i]);
        if (!ok)
            return vs_error(err, EINVAL, "%s: unknown key \"%s\"", where, k);
    }
    return 0;
}

static int patch_balloon(struct vm_control *ctl, const json_t *b, vs_err *err)
{
    static const char *const keys[] = {"target_bytes", "stats_interval_s", NULL};
    if (!json_is_object(b))
        return vs_error(err, EINVAL, "balloon: must be an object");
    if (check_keys(b, "balloon", keys, err) < 0)
        return -1;
    uint64_t target = 0, secs = 0;
    bool has_target, has_secs;
    if (get_uint(b, "balloon", "target_bytes", INT64_MAX, &target, &has_target, err) < 0 ||
        get_uint(b, "balloon", "stats_interval_s", 3600, &secs, &has_secs, err) < 0)
        return -1;
    struct virtio_dev *d = find_balloon(ctl);
    if (!d)
        return vs_error(err, ENODEV, "balloon: the VM has no balloon (start it with --balloon)");
    struct virtio_balloon_info bi;
    virtio_balloon_get_info(d, &bi);
    if (has_target && target > bi.max_target_bytes)
        return vs_error(
            err, EINVAL, "balloon: %llu MiB is more than the guest can give (at most %llu MiB)",
            (unsigned long long)(target >> 20), (unsigned long long)(bi.max_target_bytes >> 20));
    if (has_secs && virtio_balloon_set_stats_interval(d, (unsigned)secs, err) < 0)
        return -1;
    if (has_target && virtio_balloon_set_target(d, target, err) < 0)
        return -1;
    return 0;
}

int api_resources_patch(struct vm_control *ctl, const json_t *body, vs_err *err)
{
    static const char *const keys[] = {"balloon", NULL};
    if (!json_is_object(body))
        return vs_error(err, EINVAL, "the body must be a JSON object of resources");
    if (check_keys(body, "PATCH /vm", keys, err) < 0)
        return -1;
    json_t *b = json_object_get(body, "balloon");
    if (b && patch_balloon(ctl, b, err) < 0)
        return -1;
    return 0;
}
