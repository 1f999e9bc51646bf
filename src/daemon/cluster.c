/* Clusters (docs/cluster.md): the daemons of several hosts share one store
 * on etcd. A host that formed or joined a cluster keeps STATE/cluster.json
 * and opens the etcd store instead of SQLite at every start.
 *
 * Keys next to the store's records (store/etcd.c), under its prefix:
 *   cluster          the cluster's record, made once by 'cluster init'
 *   hosts/HOST       each member: {"name","address","etcd","joined_at"}
 *   alive/HOST       bound to the host daemon's lease, which it keeps
 *                    alive every second: gone a few seconds after the
 *                    daemon (or its host) stops, so the host is offline
 *
 * A host acts only on its own instances (record "location" = its name);
 * the others' are listed as their records say, "unknown" while their host
 * is offline. Requests that change another host's instance are refused
 * with the host to ask (forwarding is further work). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/http.h"
#include "store/etcd.h"
#include "util/log.h"

#define LEASE_TTL_S 3
#define DEFAULT_PREFIX "/vessel/"

struct cluster {
    char *host, *endpoints, *prefix, *address;
    char *ca, *cert, *key; /* TLS to etcd, or NULL */
    struct etcd *etcd;     /* the store's client */
    pthread_t thread;
    long long lease;
    atomic_bool online, removed;
    pthread_mutex_t alive_lock;
    json_t *alive; /* {host: alive/ value} of the last look, and when */
    long long alive_at;
    json_t *hosts; /* {host: record} of the last look, and when */
    long long hosts_at;
    struct http_server *api; /* HTTPS for the other members (address given) */
    unsigned beats;
};

static char *key(struct cluster *c, char *buf, const char *a, const char *b)
{
    snprintf(buf, 1024, "%s%s%s%s", c->prefix, a, b ? "/" : "", b ? b : "");
    return buf;
}

const char *daemon_location(struct daemon *d)
{
    return d->cluster ? d->cluster->host : "local";
}

bool daemon_instance_local(struct daemon *d, json_t *inst)
{
    const char *loc = json_string_value(json_object_get(inst, "location"));
    if (!d->cluster)
        return true;
    return !loc || !strcmp(loc, d->cluster->host);
}

static void cluster_path(struct daemon *d, char *out, size_t n)
{
    snprintf(out, n, "%s/cluster.json", d->state_dir);
}

static struct cluster *cluster_new(const char *host, const char *endpoints, const char *prefix,
                                   const char *address)
{
    struct cluster *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->host = strdup(host);
    c->endpoints = strdup(endpoints);
    c->prefix = strdup(prefix && prefix[0] ? prefix : DEFAULT_PREFIX);
    c->address = strdup(address ? address : "");
    pthread_mutex_init(&c->alive_lock, NULL);
    if (!c->host || !c->endpoints || !c->prefix || !c->address) {
        free(c->host);
        free(c->endpoints);
        free(c->prefix);
        free(c->address);
        free(c);
        return NULL;
    }
    return c;
}

/* "etcd_ca", "etcd_cert", "etcd_key" of a request or cluster.json */
static void tls_from(struct cluster *c, json_t *j)
{
    const char *v;
    if ((v = json_string_value(json_object_get(j, "etcd_ca"))))
        c->ca = strdup(v);
    if ((v = json_string_value(json_object_get(j, "etcd_cert"))))
        c->cert = strdup(v);
    if ((v = json_string_value(json_object_get(j, "etcd_key"))))
        c->key = strdup(v);
}

static struct store *open_store(struct cluster *c, vs_err *err)
{
    struct store *s = NULL;
    struct store_etcd_config cfg = {.endpoints = c->endpoints,
                                    .prefix = c->prefix,
                                    .host = c->host,
                                    .ca = c->ca,
                                    .cert = c->cert,
                                    .key = c->key};
    if (store_open_etcd(&cfg, &s, err) < 0)
        return NULL;
    c->etcd = store_etcd(s);
    return s;
}

int cluster_open(struct daemon *d, vs_err *err)
{
    char path[4200];
    cluster_path(d, path, sizeof(path));
    if (access(path, F_OK) != 0)
        return 0; /* one host, SQLite */
    json_error_t jerr;
    json_t *cfg = json_load_file(path, 0, &jerr);
    const char *host = json_string_value(json_object_get(cfg, "name"));
    const char *eps = json_string_value(json_object_get(cfg, "etcd"));
    if (!host || !eps) {
        json_decref(cfg);
        return vs_error(err, EINVAL, "%s: not a cluster configuration (%s)", path,
                        cfg ? "no name or etcd" : jerr.text);
    }
    d->cluster = cluster_new(host, eps, json_string_value(json_object_get(cfg, "prefix")),
                             json_string_value(json_object_get(cfg, "address")));
    if (d->cluster)
        tls_from(d->cluster, cfg);
    json_decref(cfg);
    if (!d->cluster)
        return vs_error(err, ENOMEM, "out of memory");
    if (!(d->store = open_store(d->cluster, err)))
        return vs_error_prefix(err, "%s: ", path);
    /* A host removed from the cluster (cluster remove --force) has no
     * records there any more: started anyway, it would take its running
     * instances' directories for leftovers and sweep them. An etcd that
     * cannot answer now says nothing either way. */
    char k[1024];
    vs_err e = {0};
    json_t *me = etcd_range(d->cluster->etcd, key(d->cluster, k, "hosts", d->cluster->host), false,
                            NULL, &e);
    size_t found = me ? json_array_size(me) : 1;
    json_decref(me);
    if (found == 0)
        return vs_error(err, ENOENT,
                        "host %s was removed from the cluster on %s: its instances there were "
                        "forgotten; move %s away to run this host alone again (its SQLite state "
                        "is from before it joined)",
                        d->cluster->host, d->cluster->endpoints, path);
    vs_info("vesseld: host %s of the cluster on %s", d->cluster->host, d->cluster->endpoints);
    return 0;
}

/* What placement weighs (cluster_place): this host's CPUs and available
 * memory, as the value of alive/HOST. */
static void host_stats(char *out, size_t n, long long since)
{
    long long avail_kb = 0;
    FILE *f = fopen("/proc/meminfo", "re");
    char line[256];
    while (f && fgets(line, sizeof(line), f))
        if (sscanf(line, "MemAvailable: %lld kB", &avail_kb) == 1)
            break;
    if (f)
        fclose(f);
    snprintf(out, n, "{\"since\":%lld,\"cpus\":%ld,\"mem_available\":%lld}", since,
             sysconf(_SC_NPROCESSORS_ONLN), avail_kb * 1024);
}

/* Put alive/HOST on lease id, only while hosts/HOST exists (a removed
 * host does not come back as a member): 1 put, 0 removed, -1 error. */
static int put_alive(struct cluster *c, long long id)
{
    vs_err err = {0};
    char k_host[1024], k_alive[1024], val[256];
    host_stats(val, sizeof(val), daemon_now_ms());
    json_t *cmp = json_pack("[o]", etcd_cmp_exists(key(c, k_host, "hosts", c->host), true));
    json_t *ops = json_pack("[o]", etcd_op_put(key(c, k_alive, "alive", c->host), val, id));
    bool ok = false;
    int rc = etcd_txn(c->etcd, cmp, ops, NULL, &ok, &err) < 0 ? -1 : ok;
    json_decref(cmp);
    json_decref(ops);
    if (rc == 0 && !atomic_exchange(&c->removed, true))
        vs_warn("cluster: host %s was removed from the cluster; it stays out until it joins again",
                c->host);
    if (rc == 1 && atomic_exchange(&c->removed, false))
        vs_info("cluster: host %s is a member again", c->host);
    return rc;
}

/* Take a lease and put alive/HOST on it. */
static void lease_take(struct cluster *c)
{
    vs_err err = {0};
    long long id = etcd_lease_grant(c->etcd, LEASE_TTL_S, &err);
    if (id < 0) {
        vs_debug("cluster: no lease: %s", err.msg);
        return;
    }
    int rc = put_alive(c, id);
    if (rc == 1) {
        c->lease = id;
        atomic_store(&c->online, true);
    } else {
        etcd_lease_revoke(c->etcd, id, NULL);
    }
}

static void *lease_loop(void *arg)
{
    struct daemon *d = arg;
    struct cluster *c = d->cluster;
    for (;;) {
        if (c->lease <= 0) {
            lease_take(c);
        } else {
            vs_err err = {0};
            if (etcd_lease_keepalive(c->etcd, c->lease, &err) < 0) {
                vs_debug("cluster: keepalive: %s", err.msg);
                if (err.code == ENOENT) {
                    c->lease = 0; /* lapsed (a long partition): a new one at once */
                    continue;
                }
                atomic_store(&c->online, false);
            } else {
                atomic_store(&c->online, true);
                /* what placement weighs, fresh; and out if it was removed */
                if (++c->beats % 5 == 0 && put_alive(c, c->lease) == 0) {
                    etcd_lease_revoke(c->etcd, c->lease, NULL);
                    c->lease = 0;
                }
                if (c->lease > 0)
                    cluster_ha_tick(d);
            }
        }
        if (c->lease <= 0)
            atomic_store(&c->online, false);
        /* a removed host looks again now and then, for a join */
        usleep(atomic_load(&c->removed) ? 10 * 1000 * 1000 : 1000 * 1000);
    }
    return NULL;
}

void cluster_start(struct daemon *d)
{
    struct cluster *c = d->cluster;
    if (!c || c->thread)
        return;
    lease_take(c); /* online before the first request, when etcd answers */
    if (c->address[0] && !c->api) {
        char addr[300];
        vs_err err = {0};
        snprintf(addr, sizeof(addr), "%s:%d", c->address, CLUSTER_API_PORT);
        if (https_server_start(d, addr, &c->api, &err) < 0)
            vs_warn("cluster: no API for the other hosts on %s: %s", addr, err.msg);
    }
    pthread_attr_t a;
    pthread_attr_init(&a);
    pthread_attr_setdetachstate(&a, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&c->thread, &a, lease_loop, d);
    if (rc != 0)
        vs_warn("cluster: cannot start the lease thread: %s", strerror(rc));
    pthread_attr_destroy(&a);
}

/* {host: its alive/ value} of the members whose lease is alive, at most
 * 1 s old. */
static json_t *alive_hosts(struct cluster *c)
{
    pthread_mutex_lock(&c->alive_lock);
    long long now = daemon_now_ms();
    if (!c->alive || now - c->alive_at > 1000) {
        char k[1024];
        vs_err err = {0};
        json_t *kvs = etcd_range(c->etcd, key(c, k, "alive/", NULL), true, NULL, &err), *kv;
        if (kvs) {
            json_decref(c->alive);
            c->alive = json_object();
            size_t i, n = strlen(k);
            json_array_foreach(kvs, i, kv)
            {
                const char *name = json_string_value(json_object_get(kv, "key"));
                json_t *v = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
                if (name && strlen(name) > n)
                    json_object_set_new(c->alive, name + n, v ? v : json_object());
                else
                    json_decref(v);
            }
            json_decref(kvs);
            c->alive_at = now;
        }
    }
    json_t *out = c->alive ? json_incref(c->alive) : json_object();
    pthread_mutex_unlock(&c->alive_lock);
    return out;
}

bool cluster_host_online(struct daemon *d, const char *host)
{
    if (!d->cluster)
        return true;
    if (host && !strcmp(host, d->cluster->host))
        return true;
    json_t *alive = alive_hosts(d->cluster);
    bool on = host && json_object_get(alive, host) != NULL;
    json_decref(alive);
    return on;
}

void cluster_annotate(struct daemon *d, json_t *inst)
{
    if (!cluster_host_online(d, json_string_value(json_object_get(inst, "location"))))
        json_object_set_new(inst, "state", json_string("unknown"));
}

/* {host: record} of the members, at most 2 s old */
static json_t *host_records(struct cluster *c, vs_err *err)
{
    pthread_mutex_lock(&c->alive_lock);
    long long now = daemon_now_ms();
    if (!c->hosts || now - c->hosts_at > 2000) {
        char k[1024];
        json_t *kvs = etcd_range(c->etcd, key(c, k, "hosts/", NULL), true, NULL, err), *kv;
        if (!kvs) {
            pthread_mutex_unlock(&c->alive_lock);
            return NULL;
        }
        json_decref(c->hosts);
        c->hosts = json_object();
        size_t i;
        json_array_foreach(kvs, i, kv)
        {
            json_t *h = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
            const char *name = json_string_value(json_object_get(h, "name"));
            if (name)
                json_object_set(c->hosts, name, h);
            json_decref(h);
        }
        json_decref(kvs);
        c->hosts_at = now;
    }
    json_t *out = json_incref(c->hosts);
    pthread_mutex_unlock(&c->alive_lock);
    return out;
}

json_t *cluster_host_record(struct daemon *d, const char *host, vs_err *err)
{
    if (!d->cluster) {
        vs_error(err, EINVAL, "this host is not in a cluster");
        return NULL;
    }
    json_t *all = host_records(d->cluster, err);
    if (!all)
        return NULL;
    json_t *h = json_incref(json_object_get(all, host));
    json_decref(all);
    if (!h)
        vs_error(err, ENOENT, "no host %s in the cluster", host);
    return h;
}

bool cluster_trusts(struct daemon *d, const char *fingerprint)
{
    if (!d->cluster)
        return false;
    json_t *all = host_records(d->cluster, NULL), *h;
    const char *name;
    bool ok = false;
    json_object_foreach(all, name, h)
    {
        const char *fp = json_string_value(json_object_get(h, "certificate"));
        ok |= fp && !strcmp(fp, fingerprint);
    }
    json_decref(all);
    return ok;
}

bool cluster_is_self(struct daemon *d, const char *host)
{
    return d->cluster && !strcmp(d->cluster->host, host);
}

int cluster_check_local(struct daemon *d, const char *name, char *host, size_t n, vs_err *err)
{
    if (!d->cluster)
        return 0;
    vs_err e = {0};
    json_t *inst = store_instance_get(d->store, name, &e);
    if (!inst)
        return e.code == ENOENT ? 0 : vs_error(err, e.code, "%s", e.msg);
    int rc = 0;
    if (!daemon_instance_local(d, inst)) {
        const char *loc = json_string_value(json_object_get(inst, "location"));
        snprintf(host, n, "%s", loc);
        rc = vs_error(err, EREMOTE, "instance %s is on host %s: run this on %s", name, loc, loc);
    }
    json_decref(inst);
    return rc;
}

int cluster_check_writable(struct daemon *d, vs_err *err)
{
    /* A change made on the host that cannot be recorded would leave the
     * two apart (a stop that stops, then fails to say so): it is refused
     * unless a quorum confirms a read now. The lease's keepalive and the
     * store's recent reads and writes say so at once when it did not. */
    struct cluster *c = d->cluster;
    if (!c)
        return 0;
    if (!atomic_load(&c->online) || etcd_degraded(c->etcd))
        return vs_error(err, ETCD_UNAVAILABLE, ETCD_NO_QUORUM_MSG);
    char k[1024];
    bool stale = false;
    vs_err e = {0};
    json_t *probe = etcd_range(c->etcd, key(c, k, "cluster", NULL), false, &stale, &e);
    json_decref(probe);
    if (!probe || stale)
        return vs_error(err, ETCD_UNAVAILABLE, ETCD_NO_QUORUM_MSG);
    return 0;
}

json_t *cluster_info(struct daemon *d, vs_err *err)
{
    (void)err;
    struct cluster *c = d->cluster;
    if (!c)
        return json_pack("{s:b}", "enabled", false);
    return json_pack("{s:b, s:s, s:s, s:s, s:s, s:b, s:b, s:b}", "enabled", true, "name", c->host,
                     "etcd", c->endpoints, "prefix", c->prefix, "address", c->address, "online",
                     atomic_load(&c->online), "removed", atomic_load(&c->removed), "etcd_tls",
                     c->ca != NULL);
}

static int write_config(struct daemon *d, struct cluster *c, vs_err *err)
{
    char path[4200], tmp[4300];
    cluster_path(d, path, sizeof(path));
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s?, s:s?, s:s?}", "name", c->host, "etcd",
                          c->endpoints, "prefix", c->prefix, "address", c->address, "etcd_ca",
                          c->ca, "etcd_cert", c->cert, "etcd_key", c->key);
    int rc = json_dump_file(j, tmp, JSON_INDENT(2));
    json_decref(j);
    if (rc < 0 || rename(tmp, path) < 0) {
        unlink(tmp);
        return vs_error_errno(err, "%s", path);
    }
    return 0;
}

/* "ADDR[:PORT][,...]" or URLs -> "http://ADDR:PORT,..." (port 2379) */
static char *endpoints_of(const char *spec, vs_err *err)
{
    char *out = calloc(1, strlen(spec) * 2 + 64), *copy = strdup(spec), *save = NULL;
    if (!out || !copy) {
        free(out);
        free(copy);
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        bool url = strstr(t, "://") != NULL;
        const char *hostpart = url ? strstr(t, "://") + 3 : t;
        bool has_port = strrchr(hostpart, ':') != NULL;
        sprintf(out + strlen(out), "%s%s%s%s", out[0] ? "," : "", url ? "" : "http://", t,
                has_port ? "" : ":2379");
    }
    free(copy);
    if (!out[0]) {
        free(out);
        vs_error(err, EINVAL, "no etcd address given");
        return NULL;
    }
    return out;
}

json_t *cluster_form(struct daemon *d, json_t *req, vs_err *err)
{
    const char *action = json_string_value(json_object_get(req, "action"));
    const char *name = json_string_value(json_object_get(req, "name"));
    const char *etcd = json_string_value(json_object_get(req, "etcd"));
    const char *address = json_string_value(json_object_get(req, "address"));
    bool init = action && !strcmp(action, "init");
    if (!action || (!init && strcmp(action, "join"))) {
        vs_error(err, EINVAL, "\"action\" must be \"init\" or \"join\"");
        return NULL;
    }
    if (d->cluster) {
        vs_error(err, EEXIST, "this host is already host %s of the cluster on %s", d->cluster->host,
                 d->cluster->endpoints);
        return NULL;
    }
    char hostname[256] = "";
    if (!name) {
        gethostname(hostname, sizeof(hostname) - 1);
        hostname[strcspn(hostname, ".")] = 0;
        name = hostname;
    }
    if (instance_validate_name(name, err) < 0) {
        vs_error_prefix(err, "host name: ");
        return NULL;
    }
    if (!etcd) {
        if (!init) {
            vs_error(err, EINVAL, "join needs the address of the cluster's etcd (\"etcd\")");
            return NULL;
        }
        etcd = "127.0.0.1:2379";
    }
    char *eps = endpoints_of(etcd, err);
    if (!eps)
        return NULL;
    struct cluster *c =
        cluster_new(name, eps, json_string_value(json_object_get(req, "prefix")), address);
    free(eps);
    if (!c) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    tls_from(c, req);
    struct store *s = open_store(c, err);
    json_t *out = NULL;
    char k_cluster[1024], k_host[1024], val[512];
    key(c, k_cluster, "cluster", NULL);
    key(c, k_host, "hosts", c->host);
    bool ok = false;
    if (!s)
        goto fail;
    /* the cluster's record and this host's, in one transaction */
    json_t *hostrec = json_pack("{s:s, s:s, s:s, s:I}", "name", c->host, "address", c->address,
                                "etcd", c->endpoints, "joined_at", (json_int_t)daemon_now_ms());
    /* where the other daemons reach this one, and how they know it */
    char *key_pem = NULL, *cert_pem = NULL, fp[65], api[300];
    if (c->address[0]) {
        if (trust_server_identity(d, &key_pem, &cert_pem, err) < 0 ||
            cluster_cert_fingerprint(cert_pem, fp) < 0) {
            free(key_pem);
            free(cert_pem);
            json_decref(hostrec);
            goto fail;
        }
        snprintf(api, sizeof(api), "%s:%d", c->address, CLUSTER_API_PORT);
        json_object_set_new(hostrec, "api", json_string(api));
        json_object_set_new(hostrec, "certificate", json_string(fp));
        free(key_pem);
        free(cert_pem);
    }
    char *hosttext = json_dumps(hostrec, JSON_COMPACT);
    json_decref(hostrec);
    snprintf(val, sizeof(val), "{\"created_at\":%lld,\"created_by\":\"%s\"}", daemon_now_ms(),
             c->host);
    json_t *cmp =
        json_pack("[o, o]", etcd_cmp_exists(k_cluster, !init), etcd_cmp_exists(k_host, false));
    json_t *ops = json_pack("[o]", etcd_op_put(k_host, hosttext, 0));
    if (init)
        json_array_append_new(ops, etcd_op_put(k_cluster, val, 0));
    int rc = etcd_txn(c->etcd, cmp, ops, NULL, &ok, err);
    free(hosttext);
    json_decref(cmp);
    json_decref(ops);
    if (rc < 0)
        goto fail;
    if (!ok) {
        bool stale;
        json_t *have = etcd_range(c->etcd, k_cluster, false, &stale, err);
        bool exists = have && json_array_size(have) > 0;
        json_decref(have);
        if (init && exists)
            vs_error(err, EEXIST,
                     "etcd at %s holds a vessel cluster already: use 'vessel cluster join'",
                     c->endpoints);
        else if (!init && !exists)
            vs_error(err, ENOENT,
                     "no vessel cluster at %s: run 'vessel cluster init' on its first host",
                     c->endpoints);
        else
            vs_error(err, EEXIST, "the cluster has a host named %s already: pick another --name",
                     c->host);
        goto fail;
    }
    /* what this host had goes into the cluster; a name taken there stops
     * the join before anything is copied */
    if (store_copy(d->store, s, c->host, err) < 0) {
        vs_err e = {0};
        json_t *undo = json_pack("[o]", etcd_op_delete(k_host, false));
        if (init)
            json_array_append_new(undo, etcd_op_delete(k_cluster, false));
        json_t *none = json_array();
        etcd_txn(c->etcd, none, undo, NULL, &ok, &e);
        json_decref(undo);
        json_decref(none);
        vs_error_prefix(err, "cannot %s: ", init ? "form the cluster" : "join");
        goto fail;
    }
    if (write_config(d, c, err) < 0)
        goto fail;
    /* requests already in flight may finish on the SQLite store; it stays
     * open (and on disk) for them */
    __atomic_store_n(&d->store, s, __ATOMIC_SEQ_CST);
    d->cluster = c;
    cluster_start(d);
    vs_info("vesseld: %s the cluster on %s as host %s", init ? "formed" : "joined", c->endpoints,
            c->host);
    daemon_event(d, "cluster", init ? "created" : "joined", c->host, NULL);
    out = cluster_info(d, err);
    return out;
fail:
    store_close(s);
    free(c->host);
    free(c->endpoints);
    free(c->prefix);
    free(c->address);
    free(c->ca);
    free(c->cert);
    free(c->key);
    free(c);
    return NULL;
}

json_t *cluster_members(struct daemon *d, vs_err *err)
{
    struct cluster *c = d->cluster;
    if (!c) {
        vs_error(err, ENOENT, "this host is not in a cluster ('vessel cluster init' makes one)");
        return NULL;
    }
    char k[1024];
    bool stale = false;
    json_t *kvs = etcd_range(c->etcd, key(c, k, "hosts/", NULL), true, &stale, err), *kv;
    if (!kvs)
        return NULL;
    json_t *insts = store_instance_list(d->store, NULL), *inst;
    json_t *alive = alive_hosts(c), *out = json_array();
    size_t i, j;
    json_array_foreach(kvs, i, kv)
    {
        json_t *h = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
        const char *name = json_string_value(json_object_get(h, "name"));
        if (!name) {
            json_decref(h);
            continue;
        }
        int n = 0;
        json_array_foreach(insts, j, inst)
        {
            const char *loc = json_string_value(json_object_get(inst, "location"));
            n += loc && !strcmp(loc, name);
        }
        bool self = !strcmp(name, c->host);
        bool on = json_object_get(alive, name) || (self && atomic_load(&c->online));
        json_object_set_new(h, "status", json_string(on ? "online" : "offline"));
        json_object_set_new(h, "instances", json_integer(n));
        json_object_set_new(h, "self", json_boolean(self));
        /* what placement weighs, as the host last said */
        json_t *st = json_object_get(alive, name);
        if (json_object_get(st, "cpus"))
            json_object_set(h, "cpus", json_object_get(st, "cpus"));
        if (json_object_get(st, "mem_available"))
            json_object_set(h, "mem_available", json_object_get(st, "mem_available"));
        if (stale)
            json_object_set_new(h, "stale", json_true());
        json_array_append_new(out, h);
    }
    json_decref(kvs);
    json_decref(insts);
    json_decref(alive);
    return out;
}

int cluster_remove(struct daemon *d, const char *host, bool force, vs_err *err)
{
    struct cluster *c = d->cluster;
    if (!c)
        return vs_error(err, ENOENT, "this host is not in a cluster");
    if (!strcmp(host, c->host))
        return vs_error(err, EINVAL,
                        "host %s is this host: remove it from another member of the cluster", host);
    char k_host[1024], k_alive[1024];
    key(c, k_host, "hosts", host);
    key(c, k_alive, "alive", host);
    json_t *have = etcd_range(c->etcd, k_host, false, NULL, err);
    if (!have)
        return -1;
    bool exists = json_array_size(have) > 0;
    json_decref(have);
    if (!exists)
        return vs_error(err, ENOENT, "no host %s in the cluster", host);
    if (!force && cluster_host_online(d, host))
        return vs_error(err, EBUSY, "host %s is online: stop its daemon first, or remove --force",
                        host);
    json_t *insts = store_instance_list(d->store, err), *inst;
    if (!insts)
        return -1;
    json_t *ops =
        json_pack("[o, o]", etcd_op_delete(k_host, false), etcd_op_delete(k_alive, false));
    size_t i;
    int n = 0;
    json_array_foreach(insts, i, inst)
    {
        const char *loc = json_string_value(json_object_get(inst, "location"));
        const char *name = json_string_value(json_object_get(inst, "name"));
        if (!loc || strcmp(loc, host) || !name)
            continue;
        n++;
        char k[1024];
        snprintf(k, sizeof(k), "%sinstances/%s", c->prefix, name);
        json_array_append_new(ops, etcd_op_delete(k, false));
        snprintf(k, sizeof(k), "%ssnapshots/%s/", c->prefix, name);
        json_array_append_new(ops, etcd_op_delete(k, true));
    }
    json_decref(insts);
    if (n && !force) {
        json_decref(ops);
        return vs_error(err, EBUSY,
                        "host %s still has %d instance%s: delete them first, or remove --force "
                        "(their records go with it)",
                        host, n, n == 1 ? "" : "s");
    }
    char k[1024];
    snprintf(k, sizeof(k), "%simages/%s/", c->prefix, host);
    json_array_append_new(ops, etcd_op_delete(k, true));
    snprintf(k, sizeof(k), "%soperations/%s/", c->prefix, host);
    json_array_append_new(ops, etcd_op_delete(k, true));
    json_t *none = json_array();
    bool ok = false;
    int rc = etcd_txn(c->etcd, none, ops, NULL, &ok, err);
    json_decref(none);
    json_decref(ops);
    if (rc == 0) {
        pthread_mutex_lock(&c->alive_lock);
        c->alive_at = 0;
        c->hosts_at = 0;
        pthread_mutex_unlock(&c->alive_lock);
        daemon_event(d, "cluster", "removed", host, NULL);
    }
    return rc;
}

const char *cluster_host_name(struct daemon *d)
{
    return d->cluster ? d->cluster->host : NULL;
}

const char *cluster_prefix(struct daemon *d)
{
    return d->cluster ? d->cluster->prefix : "";
}

bool cluster_host_has_image(struct daemon *d, const char *host, const char *ref)
{
    struct cluster *c = d->cluster;
    char k[1024];
    snprintf(k, sizeof(k), "%simages/%s/", c->prefix, host);
    json_t *kvs = etcd_range(c->etcd, k, true, NULL, NULL), *kv;
    size_t i;
    bool has = false;
    json_array_foreach(kvs, i, kv)
    {
        json_t *img = json_loads(json_string_value(json_object_get(kv, "value")), 0, NULL);
        const char *alias = json_string_value(json_object_get(img, "alias"));
        const char *fp = json_string_value(json_object_get(img, "fingerprint"));
        const char *state = json_string_value(json_object_get(img, "state"));
        has |= state && !strcmp(state, "ready") &&
               ((alias && !strcmp(alias, ref)) || (fp && ref[0] && !strncmp(fp, ref, strlen(ref))));
        json_decref(img);
    }
    json_decref(kvs);
    return has;
}

int cluster_place(struct daemon *d, const char *image, const char *exclude, char *host, size_t n,
                  vs_err *err)
{
    struct cluster *c = d->cluster;
    if (!c)
        return vs_error(err, EINVAL,
                        "\"target\": \"auto\" places in a cluster, and this host "
                        "is in no cluster");
    json_t *alive = alive_hosts(c), *insts = store_instance_list(d->store, err), *v, *inst;
    if (!insts) {
        json_decref(alive);
        return -1;
    }
    const char *name, *best = NULL;
    double best_load = 0;
    long long best_mem = 0;
    json_object_foreach(alive, name, v)
    {
        if (!image || (exclude && !strcmp(name, exclude)) ||
            !cluster_host_has_image(d, name, image))
            continue;
        size_t i;
        int count = 0;
        json_array_foreach(insts, i, inst)
        {
            const char *loc = json_string_value(json_object_get(inst, "location"));
            count += loc && !strcmp(loc, name);
        }
        long long cpus = json_integer_value(json_object_get(v, "cpus"));
        long long mem = json_integer_value(json_object_get(v, "mem_available"));
        double load = (double)count / (double)(cpus > 0 ? cpus : 1);
        /* the fewest instances per CPU; then the most available memory */
        if (!best || load < best_load || (load == best_load && mem > best_mem)) {
            best = name;
            best_load = load;
            best_mem = mem;
        }
    }
    int rc = best ? (snprintf(host, n, "%s", best), 0)
                  : vs_error(err, ENOENT, "no online host of the cluster has image '%s'",
                             image ? image : "");
    json_decref(alive);
    json_decref(insts);
    return rc;
}
