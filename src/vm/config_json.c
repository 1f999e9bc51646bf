#include "vm/config_json.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *cache_name(enum vm_disk_cache c)
{
    return c == VM_CACHE_NONE ? "none" : c == VM_CACHE_UNSAFE ? "unsafe" : "writeback";
}

static void set_str(json_t *o, const char *k, const char *v)
{
    if (v)
        json_object_set_new(o, k, json_string(v));
}

json_t *vm_config_to_json(const struct vm_config *c)
{
    json_t *o = json_object();
    json_object_set_new(o, "arch", json_string(vm_arch_name(c->arch)));
    set_str(o, "kernel", c->kernel);
    set_str(o, "initrd", c->initrd);
    set_str(o, "append", c->append);
    set_str(o, "bios", c->bios);
    set_str(o, "firmware", c->firmware);
    json_object_set_new(o, "cpus", json_integer(c->cpus));
    json_object_set_new(o, "memory", json_integer((json_int_t)c->memory));
    set_str(o, "console", c->console);
    json_object_set_new(o, "no_reboot", json_boolean(c->no_reboot));
    json_t *disks = json_array();
    for (unsigned i = 0; i < c->ndisks; i++) {
        const struct vm_disk_config *d = &c->disks[i];
        json_t *jd = json_object();
        set_str(jd, "path", d->path);
        json_object_set_new(jd, "readonly", json_boolean(d->readonly));
        json_object_set_new(jd, "cache", json_string(cache_name(d->cache)));
        set_str(jd, "serial", d->serial);
        set_str(jd, "format", d->format);
        if (vs_rate_config_active(&d->rate))
            json_object_set_new(jd, "rate_limit", vm_rate_to_json(&d->rate));
        json_array_append_new(disks, jd);
    }
    json_object_set_new(o, "disks", disks);
    json_t *nets = json_array();
    for (unsigned i = 0; i < c->nnets; i++) {
        const struct vm_net_config *n = &c->nets[i];
        json_t *jn = json_object();
        json_object_set_new(jn, "kind", json_string(n->kind == VM_NET_TAP ? "tap" : "user"));
        set_str(jn, "tap", n->tap);
        if (n->mac_set) {
            char mac[18];
            snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", n->mac[0], n->mac[1],
                     n->mac[2], n->mac[3], n->mac[4], n->mac[5]);
            json_object_set_new(jn, "mac", json_string(mac));
        }
        json_t *fw = json_array();
        for (unsigned j = 0; j < n->nhostfwd; j++)
            json_array_append_new(fw, json_string(n->hostfwd[j]));
        json_object_set_new(jn, "hostfwd", fw);
        if (vs_rate_config_active(&n->rate))
            json_object_set_new(jn, "rate_limit", vm_rate_to_json(&n->rate));
        json_array_append_new(nets, jn);
    }
    json_object_set_new(o, "nets", nets);
    if (c->nshares) {
        json_t *shares = json_array();
        for (unsigned i = 0; i < c->nshares; i++) {
            json_t *js = json_object();
            set_str(js, "dir", c->shares[i].dir);
            set_str(js, "tag", c->shares[i].tag);
            json_array_append_new(shares, js);
        }
        json_object_set_new(o, "shares", shares);
    }
    json_object_set_new(o, "rng", json_boolean(c->rng));
    set_str(o, "virtio_console", c->vconsole);
    json_object_set_new(o, "vsock_cid", json_integer(c->vsock_cid));
    set_str(o, "vsock_uds", c->vsock_uds);
    if (c->virtio_vendor_qemu)
        json_object_set_new(o, "virtio_vendor", json_string("qemu"));
    if (c->accel != VM_ACCEL_DEFAULT)
        json_object_set_new(o, "accel", json_string(c->accel == VM_ACCEL_JIT ? "jit" : "interp"));
    vm_config_resources_to_json(c, o);
    return o;
}

static int get_str(const json_t *o, const char *k, char **out, vs_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return vs_error(err, EINVAL, "config: '%s' is not a string", k);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? 0 : vs_error(err, ENOMEM, "out of memory");
}

static int get_u64(const json_t *o, const char *k, uint64_t min, uint64_t max, uint64_t *out,
                   vs_err *err)
{
    json_t *v = json_object_get(o, k);
    if (!v)
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || (uint64_t)json_integer_value(v) < min ||
        (uint64_t)json_integer_value(v) > max)
        return vs_error(err, EINVAL, "config: '%s' is not an integer in %llu..%llu", k,
                        (unsigned long long)min, (unsigned long long)max);
    *out = (uint64_t)json_integer_value(v);
    return 0;
}

int vm_config_from_json(const json_t *j, struct vm_config *c, vs_err *err)
{
    if (!json_is_object(j))
        return vs_error(err, EINVAL, "config: not a JSON object");
    const char *arch = json_string_value(json_object_get(j, "arch"));
    if (!arch || (strcmp(arch, "x86_64") && strcmp(arch, "riscv64")))
        return vs_error(err, EINVAL, "config: unknown arch");
    c->arch = strcmp(arch, "riscv64") ? VM_ARCH_X86_64 : VM_ARCH_RISCV64;
    uint64_t v = c->cpus;
    if (get_str(j, "kernel", &c->kernel, err) < 0 || get_str(j, "initrd", &c->initrd, err) < 0 ||
        get_str(j, "append", &c->append, err) < 0 || get_str(j, "bios", &c->bios, err) < 0 ||
        get_str(j, "firmware", &c->firmware, err) < 0 ||
        get_str(j, "console", &c->console, err) < 0 ||
        get_str(j, "virtio_console", &c->vconsole, err) < 0 ||
        get_str(j, "vsock_uds", &c->vsock_uds, err) < 0 ||
        get_u64(j, "cpus", 1, VM_MAX_CPUS, &v, err) < 0)
        return -1;
    c->cpus = (unsigned)v;
    if (get_u64(j, "memory", 0, UINT64_MAX, &c->memory, err) < 0)
        return -1;
    v = c->vsock_cid;
    if (get_u64(j, "vsock_cid", 0, UINT32_MAX, &v, err) < 0)
        return -1;
    c->vsock_cid = (uint32_t)v;
    c->no_reboot = json_is_true(json_object_get(j, "no_reboot"));
    c->rng = json_is_true(json_object_get(j, "rng"));
    const char *vendor = json_string_value(json_object_get(j, "virtio_vendor"));
    if (vendor && strcmp(vendor, "qemu") && strcmp(vendor, "vessel"))
        return vs_error(err, EINVAL, "config: unknown virtio_vendor '%s'", vendor);
    c->virtio_vendor_qemu = vendor && !strcmp(vendor, "qemu");
    const char *accel = json_string_value(json_object_get(j, "accel"));
    if (accel && strcmp(accel, "jit") && strcmp(accel, "interp"))
        return vs_error(err, EINVAL, "config: unknown accel '%s'", accel);
    c->accel = !accel ? VM_ACCEL_DEFAULT : !strcmp(accel, "jit") ? VM_ACCEL_JIT : VM_ACCEL_INTERP;
    json_t *disks = json_object_get(j, "disks");
    if (disks && (!json_is_array(disks) || json_array_size(disks) > VM_MAX_DISKS))
        return vs_error(err, EINVAL, "config: 'disks' is not an array of at most %d", VM_MAX_DISKS);
    size_t i;
    json_t *e;
    json_array_foreach(disks, i, e)
    {
        struct vm_disk_config *d = &c->disks[c->ndisks++];
        memset(d, 0, sizeof(*d));
        if (get_str(e, "path", &d->path, err) < 0 || get_str(e, "serial", &d->serial, err) < 0 ||
            get_str(e, "format", &d->format, err) < 0)
            return -1;
        if (!d->path)
            return vs_error(err, EINVAL, "config: disk %zu has no path", i);
        d->readonly = json_is_true(json_object_get(e, "readonly"));
        const char *cache = json_string_value(json_object_get(e, "cache"));
        d->cache = cache && !strcmp(cache, "none")     ? VM_CACHE_NONE
                   : cache && !strcmp(cache, "unsafe") ? VM_CACHE_UNSAFE
                                                       : VM_CACHE_WRITEBACK;
        if (vm_rate_from_json(json_object_get(e, "rate_limit"), "config: disk", &d->rate, err) < 0)
            return -1;
    }
    json_t *nets = json_object_get(j, "nets");
    if (nets && (!json_is_array(nets) || json_array_size(nets) > VM_MAX_NETS))
        return vs_error(err, EINVAL, "config: 'nets' is not an array of at most %d", VM_MAX_NETS);
    json_array_foreach(nets, i, e)
    {
        struct vm_net_config *n = &c->nets[c->nnets++];
        memset(n, 0, sizeof(*n));
        const char *kind = json_string_value(json_object_get(e, "kind"));
        n->kind = kind && !strcmp(kind, "tap") ? VM_NET_TAP : VM_NET_USER;
        if (get_str(e, "tap", &n->tap, err) < 0)
            return -1;
        const char *mac = json_string_value(json_object_get(e, "mac"));
        if (mac) {
            if (vm_parse_mac(mac, n->mac) < 0)
                return vs_error(err, EINVAL, "config: bad MAC '%s'", mac);
            n->mac_set = true;
        }
        json_t *fw = json_object_get(e, "hostfwd");
        size_t k;
        json_t *f;
        json_array_foreach(fw, k, f)
        {
            if (!json_is_string(f) || n->nhostfwd >= VM_MAX_HOSTFWD)
                return vs_error(err, EINVAL, "config: bad hostfwd list");
            n->hostfwd[n->nhostfwd++] = strdup(json_string_value(f));
        }
        if (vm_rate_from_json(json_object_get(e, "rate_limit"), "config: net", &n->rate, err) < 0)
            return -1;
    }
    if (vm_config_resources_from_json(j, c, err) < 0)
        return -1;
    json_t *shares = json_object_get(j, "shares");
    if (shares && (!json_is_array(shares) || json_array_size(shares) > VM_MAX_SHARES))
        return vs_error(err, EINVAL, "config: 'shares' is not an array of at most %d",
                        VM_MAX_SHARES);
    json_array_foreach(shares, i, e)
    {
        struct vm_share_config *s = &c->shares[c->nshares++];
        memset(s, 0, sizeof(*s));
        if (get_str(e, "dir", &s->dir, err) < 0 || get_str(e, "tag", &s->tag, err) < 0)
            return -1;
    }
    /* the same limits as flags (vm_config_validate) */
    if (vm_config_validate(c, err) < 0)
        return vs_error_prefix(err, "config: ");
    return 0;
}
