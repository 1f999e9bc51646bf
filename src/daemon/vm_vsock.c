/* A VM instance's vsock identity: the guest CID it boots with and the unix
 * socket its virtio-vsock bridge listens on (<instance dir>/vsock.sock),
 * through which exec reaches the guest agent (agent_client.c).
 *
 * The CID is kept in the instance's config as "volatile.vsock_cid" and is
 * unique among the host's instances: a copy arrives with its source's
 * config, so a CID an older instance holds is replaced by a free one. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"

#define FIRST_CID 3u /* 0..2: hypervisor, local, host */
#define CID_KEY "volatile.vsock_cid"
/* virtio/vsock.c keeps room for a "_PORT" suffix after the path */
#define UDS_MAX (sizeof(((struct sockaddr_un *)0)->sun_path) - 12)

static pthread_mutex_t cid_lock = PTHREAD_MUTEX_INITIALIZER;

static uint32_t cid_of(json_t *inst)
{
    const char *v = json_string_value(json_object_get(json_object_get(inst, "config"), CID_KEY));
    char *end;
    unsigned long c = v ? strtoul(v, &end, 10) : 0;
    return v && !*end && c >= FIRST_CID && c < 0xffffffffu ? (uint32_t)c : 0;
}

int instance_vsock_uds(struct daemon *d, const char *name, char *uds, size_t n)
{
    instance_path(d, name, "vsock.sock", uds, n);
    return strlen(uds) < UDS_MAX && strlen(uds) < n - 1 ? 0 : -1;
}

/* The daemon marks the stateful snapshots it takes of a VM with a vsock
 * device (the marker travels with copies and templates), so it need not
 * link the snapshot reader, and with it the whole VMM, to find out. */
#define VSOCK_MARK "vesseld-vsock"

/* A marker file in a snapshot directory: there, and made. */
static bool has_mark(const char *dir, const char *mark)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, mark);
    return access(path, F_OK) == 0;
}

static void make_mark(const char *dir, const char *mark)
{
    char path[4400];
    snprintf(path, sizeof(path), "%s/%s", dir, mark);
    int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
}

bool instance_snapshot_has_vsock(const char *dir)
{
    return has_mark(dir, VSOCK_MARK);
}

void instance_snapshot_mark_vsock(const char *dir)
{
    make_mark(dir, VSOCK_MARK);
}

/* The same for a VM whose first NIC is a tap on the managed bridge: a clone
 * of it needs a tap of its own (and a new address inside the guest). */
#define NET_MARK "vesseld-net"

bool instance_snapshot_has_net(const char *dir)
{
    return has_mark(dir, NET_MARK);
}

void instance_snapshot_mark_net(const char *dir)
{
    make_mark(dir, NET_MARK);
}

/* Does another instance hold cid with a better claim: created before this
 * one (a copy gives way to its source, not the other way round)? */
static bool claimed_before(json_t *other, json_t *inst)
{
    json_int_t a = json_integer_value(json_object_get(other, "created_at"));
    json_int_t b = json_integer_value(json_object_get(inst, "created_at"));
    const char *an = json_string_value(json_object_get(other, "name"));
    const char *bn = json_string_value(json_object_get(inst, "name"));
    return a < b || (a == b && strcmp(an, bn) < 0);
}

int instance_vsock(struct daemon *d, json_t *inst, char *uds, size_t n, uint32_t *cid, vs_err *err)
{
    const char *name = json_string_value(json_object_get(inst, "name"));
    if (instance_vsock_uds(d, name, uds, n) < 0)
        return vs_error(err, ENAMETOOLONG, "instance %s: its vsock socket path '%s' is too long",
                        name, uds);
    pthread_mutex_lock(&cid_lock);
    json_t *all = store_instance_list(d->store, err);
    if (!all) {
        pthread_mutex_unlock(&cid_lock);
        return -1;
    }
    uint32_t *used = calloc(json_array_size(all) + 1, sizeof(*used));
    if (!used) {
        json_decref(all);
        pthread_mutex_unlock(&cid_lock);
        return vs_error(err, ENOMEM, "out of memory");
    }
    uint32_t c = cid_of(inst);
    bool keep = c != 0;
    size_t nused = 0, i;
    json_t *o;
    json_array_foreach(all, i, o)
    {
        const char *other = json_string_value(json_object_get(o, "name"));
        uint32_t oc = cid_of(o);
        if (!other || !strcmp(other, name) || !oc)
            continue;
        used[nused++] = oc;
        if (oc == c && claimed_before(o, inst))
            keep = false;
    }
    json_decref(all);
    if (!keep) {
        /* the lowest CID nobody else holds */
        for (c = FIRST_CID;; c++) {
            bool taken = false;
            for (size_t k = 0; k < nused && !taken; k++)
                taken = used[k] == c;
            if (!taken)
                break;
        }
    }
    free(used);
    int rc = 0;
    if (c != cid_of(inst)) {
        char buf[16];
        snprintf(buf, sizeof(buf), "%u", c);
        json_object_set_new(json_object_get(inst, "config"), CID_KEY, json_string(buf));
        /* recorded before the lock goes, so a launch beside this one sees it */
        rc = store_instance_update(d->store, inst, err);
    }
    pthread_mutex_unlock(&cid_lock);
    *cid = c;
    return rc;
}
