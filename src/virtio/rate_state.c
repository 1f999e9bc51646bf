#include "virtio/rate_state.h"

#include <errno.h>
#include <stdio.h>

void virtio_rate_save(struct state_writer *w, const char *dev, const struct vs_rate_config *c)
{
    char name[64];
    snprintf(name, sizeof(name), "%s/rate", dev);
    state_begin(w, name, 0, 1);
    state_put_u64(w, c->bytes_per_s);
    state_put_u64(w, c->bytes_burst);
    state_put_u64(w, c->ops_per_s);
    state_put_u64(w, c->ops_burst);
    state_end(w);
}

int virtio_rate_load(struct state_reader *r, const char *dev, struct vs_rate_config *c, bool *found,
                     vs_err *err)
{
    char name[64];
    snprintf(name, sizeof(name), "%s/rate", dev);
    uint32_t version;
    vs_err absent;
    *found = false;
    if (state_find(r, name, 0, &version, &absent) < 0)
        return 0;
    if (version != 1)
        return vs_error(err, EINVAL, "%s: unsupported state version %u", name, version);
    struct vs_rate_config v;
    if (state_get_u64(r, &v.bytes_per_s, err) < 0 || state_get_u64(r, &v.bytes_burst, err) < 0 ||
        state_get_u64(r, &v.ops_per_s, err) < 0 || state_get_u64(r, &v.ops_burst, err) < 0)
        return -1;
    *c = v;
    *found = true;
    return 0;
}
