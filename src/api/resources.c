/* PATCH /vm and the resource part of GET /vm: the balloon (virtio-balloon),
 * the disks (size, rate limit) and NICs (rate limit), found on the machine's
 * device list, and the vCPUs the guest may run. */
#include "api/resources.h"

#include <errno.h>
#include <string.h>

#include "block/disk.h"
#include "virtio/balloon.h"
#include "virtio/devices.h"
#include "vm/config_json.h"
#include "vm/limits.h"
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

/* The VM's disks and NICs by index. */
struct dev_index {
    struct virtio_dev *disk[VM_MAX_DISKS], *net[VM_MAX_NETS];
};

static int index_dev(struct virtio_dev *d, void *opaque, vs_err *err)
{
    struct dev_index *x = opaque;
    unsigned i;
    if (virtio_blk_disk(d, &i) && i < VM_MAX_DISKS)
        x->disk[i] = d;
    else if (virtio_is_net(d, &i) && i < VM_MAX_NETS)
        x->net[i] = d;
    return 0;
}

static void index_devices(struct vm_control *ctl, struct dev_index *x)
{
    memset(x, 0, sizeof(*x));
    if (ctl->devices)
        virtio_set_foreach(ctl->devices(ctl->machine), index_dev, x, NULL);
}

static void set_rate(json_t *o, const struct vs_rate_config *rc, uint64_t throttled)
{
    json_t *r = vm_rate_to_json(rc);
    json_object_set_new(o, "rate_limit", r ? r : json_null());
    json_object_set_new(o, "throttled", json_integer((json_int_t)throttled));
}

static void io_info(struct vm_control *ctl, json_t *info)
{
    struct dev_index x;
    index_devices(ctl, &x);
    json_t *disks = json_array(), *nets = json_array();
    struct vs_rate_config rc;
    uint64_t throttled;
    for (unsigned i = 0; i < VM_MAX_DISKS; i++) {
        unsigned idx;
        struct disk *dk = x.disk[i] ? virtio_blk_disk(x.disk[i], &idx) : NULL;
        if (!dk)
            continue;
        json_t *o = json_pack("{s:i, s:I, s:b}", "index", (int)i, "size", (json_int_t)dk->size,
                              "readonly", dk->readonly);
        virtio_blk_get_rate_limit(x.disk[i], &rc, &throttled);
        set_rate(o, &rc, throttled);
        json_array_append_new(disks, o);
    }
    for (unsigned i = 0; i < VM_MAX_NETS; i++) {
        if (!x.net[i])
            continue;
        json_t *o = json_pack("{s:i}", "index", (int)i);
        virtio_net_get_rate_limit(x.net[i], &rc, &throttled);
        set_rate(o, &rc, throttled);
        json_array_append_new(nets, o);
    }
    json_object_set_new(info, "disks", disks);
    json_object_set_new(info, "nets", nets);
}

void api_resources_info(struct vm_control *ctl, json_t *info)
{
    io_info(ctl, info);
    if (ctl->limits) {
        struct vm_limits_info li;
        vm_limits_get(ctl->limits, &li);
        json_t *o =
            json_pack("{s:b, s:I, s:f, s:I}", "active", li.active, "memory", (json_int_t)li.memory,
                      "cpus", li.cpu_millis / 1000.0, "memory_usage", (json_int_t)li.memory_usage);
        if (li.cgroup[0])
            json_object_set_new(o, "cgroup", json_string(li.cgroup));
        json_object_set_new(info, "limits", o);
    }
    struct virtio_dev *b = find_balloon(ctl);
    if (b)
        json_object_set_new(info, "balloon", balloon_json(b));
    if (ctl->vcpu_counts) {
        unsigned present, allowed, running;
        ctl->vcpu_counts(ctl->machine, &present, &allowed, &running);
        json_object_set_new(info, "vcpus",
                            json_pack("{s:i, s:i, s:i}", "present", (int)present, "allowed",
                                      (int)allowed, "running", (int)running));
    }
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

/* What "disks" or "nets" asks for, checked. */
struct io_change {
    struct virtio_dev *dev;
    bool has_size, has_rate;
    uint64_t size;
    struct vs_rate_config rate;
};

static int check_io(const json_t *arr, bool disks, struct virtio_dev **devs, unsigned ndev,
                    struct io_change *out, unsigned *nout, vs_err *err)
{
    static const char *const disk_keys[] = {"index", "size", "rate_limit", NULL};
    static const char *const net_keys[] = {"index", "rate_limit", NULL};
    const char *what = disks ? "disks" : "nets";
    *nout = 0;
    if (!arr)
        return 0;
    if (!json_is_array(arr) || json_array_size(arr) > ndev)
        return vs_error(err, EINVAL, "%s: must be an array of at most %u changes", what, ndev);
    size_t i;
    json_t *e;
    json_array_foreach(arr, i, e)
    {
        if (!json_is_object(e))
            return vs_error(err, EINVAL, "%s: each change is an object", what);
        if (check_keys(e, what, disks ? disk_keys : net_keys, err) < 0)
            return -1;
        uint64_t idx;
        bool has_idx;
        if (get_uint(e, what, "index", ndev - 1, &idx, &has_idx, err) < 0)
            return -1;
        if (!has_idx || !devs[idx])
            return vs_error(err, EINVAL, "%s: no %s with index %llu", what,
                            disks ? "disk" : "network device", (unsigned long long)idx);
        struct io_change *c = &out[(*nout)++];
        memset(c, 0, sizeof(*c));
        c->dev = devs[idx];
        if (disks && get_uint(e, what, "size", INT64_MAX, &c->size, &c->has_size, err) < 0)
            return -1;
        json_t *r = json_object_get(e, "rate_limit");
        c->has_rate = r != NULL;
        if (r && vm_rate_from_json(r, what, &c->rate, err) < 0)
            return -1;
        if (c->has_size) {
            unsigned di;
            struct disk *dk = virtio_blk_disk(c->dev, &di);
            if (dk->readonly)
                return vs_error(err, EROFS, "disk %u (%s) is read-only: it cannot be resized", di,
                                dk->path);
            if (c->size < dk->size || c->size % 512)
                return vs_error(err, EINVAL,
                                "disk %u: %llu bytes: a disk only grows while the VM runs, in "
                                "multiples of 512 (it has %llu)",
                                di, (unsigned long long)c->size, (unsigned long long)dk->size);
        }
    }
    return 0;
}

static int apply_io(struct io_change *c, unsigned n, bool disks, vs_err *err)
{
    for (unsigned i = 0; i < n; i++) {
        if (c[i].has_size && virtio_blk_resize(c[i].dev, c[i].size, err) < 0)
            return -1;
        if (c[i].has_rate) {
            if (disks)
                virtio_blk_set_rate_limit(c[i].dev, &c[i].rate);
            else
                virtio_net_set_rate_limit(c[i].dev, &c[i].rate);
        }
    }
    return 0;
}

int api_resources_patch(struct vm_control *ctl, const json_t *body, vs_err *err)
{
    static const char *const keys[] = {"balloon", "cpus", "disks", "nets", "limits", NULL};
    if (!json_is_object(body))
        return vs_error(err, EINVAL, "the body must be a JSON object of resources");
    if (check_keys(body, "PATCH /vm", keys, err) < 0)
        return -1;
    uint64_t cpus;
    bool has_cpus;
    if (get_uint(body, "PATCH /vm", "cpus", 1024, &cpus, &has_cpus, err) < 0)
        return -1;
    if (has_cpus) {
        if (!ctl->set_vcpus)
            return vs_error(err, ENOTSUP,
                            "cpus: this machine cannot change its vCPUs while it runs");
        unsigned present, allowed, running;
        ctl->vcpu_counts(ctl->machine, &present, &allowed, &running);
        if (cpus < 1 || cpus > present)
            return vs_error(err, EINVAL, "cpus: %llu is not in 1..%u (the VM's --max-cpus)",
                            (unsigned long long)cpus, present);
    }
    struct dev_index x;
    index_devices(ctl, &x);
    struct io_change dc[VM_MAX_DISKS], nc[VM_MAX_NETS];
    unsigned ndc, nnc;
    if (check_io(json_object_get(body, "disks"), true, x.disk, VM_MAX_DISKS, dc, &ndc, err) < 0 ||
        check_io(json_object_get(body, "nets"), false, x.net, VM_MAX_NETS, nc, &nnc, err) < 0)
        return -1;
    static const char *const limit_keys[] = {"memory", "cpus", NULL};
    json_t *lim = json_object_get(body, "limits");
    uint64_t lim_mem = 0;
    bool has_mem = false, has_lcpu = false;
    unsigned lim_cpu = 0;
    if (lim) {
        if (!json_is_object(lim) || check_keys(lim, "limits", limit_keys, err) < 0)
            return vs_error(err, EINVAL, "limits: must be an object of \"memory\" and \"cpus\"");
        if (get_uint(lim, "limits", "memory", INT64_MAX, &lim_mem, &has_mem, err) < 0)
            return -1;
        json_t *cv = json_object_get(lim, "cpus");
        if (cv) {
            double v = json_number_value(cv);
            if (!json_is_number(cv) || v < 0 || (v > 0 && v < 0.01) || v > VM_MAX_CPUS * 4)
                return vs_error(err, EINVAL,
                                "limits: \"cpus\" must be a number in 0.01..%d (0: no cap)",
                                VM_MAX_CPUS * 4);
            lim_cpu = (unsigned)(v * 1000 + 0.5);
            has_lcpu = true;
        }
        if (!ctl->limits)
            return vs_error(err, ENOTSUP, "limits: this VM cannot take caps");
    }
    json_t *b = json_object_get(body, "balloon");
    if (b && patch_balloon(ctl, b, err) < 0)
        return -1;
    if (lim && vm_limits_set(ctl->limits, has_mem, lim_mem, has_lcpu, lim_cpu, err) < 0)
        return -1;
    if (apply_io(dc, ndc, true, err) < 0 || apply_io(nc, nnc, false, err) < 0)
        return -1;
    if (has_cpus && ctl->set_vcpus(ctl->machine, (unsigned)cpus, err) < 0)
        return -1;
    return 0;
}
