/* vessel cluster init|join|list|remove: the daemons of several hosts as one
 * (docs/cluster.md). Arguments only; the daemon does the work. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/client.h"
#include "cmd/commands.h"

static json_t *call(const char *method, const char *path, json_t *body)
{
    const char *sock = getenv("VESSEL_SOCKET");
    if (!sock || !sock[0])
        sock = "/run/vessel/vessel.sock";
    json_t *resp = NULL;
    vs_err err = {0};
    if (api_client_request(sock, method, path, body, &resp, &err) < 0) {
        if (err.code == ECONNREFUSED || err.code == ENOENT)
            fprintf(stderr, "vessel: cannot reach vesseld at %s: is the daemon running?\n", sock);
        else
            cmd_print_error(err.msg);
        return NULL;
    }
    return resp;
}

/* init [--name HOST] [--etcd ADDR[,ADDR]] [--address ADDR]
 * join ETCD-ADDR[,ADDR...] [--name HOST] [--address ADDR] */
static int form(int argc, char **argv)
{
    static const struct option opts[] = {{"name", required_argument, 0, 'n'},
                                         {"etcd", required_argument, 0, 'e'},
                                         {"address", required_argument, 0, 'a'},
                                         {"etcd-ca", required_argument, 0, 'A'},
                                         {"etcd-cert", required_argument, 0, 'C'},
                                         {"etcd-key", required_argument, 0, 'K'},
                                         {0, 0, 0, 0}};
    bool init = !strcmp(argv[0], "init");
    const char *name = NULL, *etcd = NULL, *address = NULL, *ca = NULL, *cert = NULL, *key = NULL;
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "n:e:a:", opts, NULL)) != -1) {
        switch (c) {
        case 'n':
            name = optarg;
            break;
        case 'e':
            etcd = optarg;
            break;
        case 'a':
            address = optarg;
            break;
        case 'A': /* TLS to etcd: paths on the daemon's host */
            ca = realpath(optarg, NULL);
            if (!ca) {
                fprintf(stderr, "vessel: --etcd-ca %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        case 'C':
            cert = realpath(optarg, NULL);
            if (!cert) {
                fprintf(stderr, "vessel: --etcd-cert %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        case 'K':
            key = realpath(optarg, NULL);
            if (!key) {
                fprintf(stderr, "vessel: --etcd-key %s: %s\n", optarg, strerror(errno));
                return 2;
            }
            break;
        default:
            return 2;
        }
    }
    if (!init && optind < argc)
        etcd = argv[optind++];
    if (optind != argc || (!init && !etcd)) {
        fprintf(stderr, "usage: vessel cluster %s\n",
                init ? "init [--name HOST] [--etcd ADDR[,ADDR]] [--address ADDR] [TLS]"
                     : "join ETCD-ADDR[,ADDR...] [--name HOST] [--address ADDR] [TLS]\n"
                       "  TLS: --etcd-ca CA.pem [--etcd-cert CERT.pem --etcd-key KEY.pem] "
                       "(https:// addresses)");
        return 2;
    }
    json_t *req = json_pack("{s:s, s:s?, s:s?, s:s?, s:s?, s:s?, s:s?}", "action", argv[0], "name",
                            name, "etcd", etcd, "address", address, "etcd_ca", ca, "etcd_cert",
                            cert, "etcd_key", key);
    json_t *r = call("POST", "/1.0/cluster", req);
    json_decref(req);
    if (!r)
        return 1;
    printf("%s cluster on %s as host %s\n", init ? "formed the" : "joined the",
           json_string_value(json_object_get(r, "etcd")),
           json_string_value(json_object_get(r, "name")));
    json_decref(r);
    return 0;
}

static int list(int argc, char **argv)
{
    bool as_json = argc == 3 && !strcmp(argv[1], "--format") && !strcmp(argv[2], "json");
    if (argc != 1 && !as_json) {
        fprintf(stderr, "usage: vessel cluster list [--format json]\n");
        return 2;
    }
    json_t *hosts = call("GET", "/1.0/cluster/members", NULL), *h;
    if (!hosts)
        return 1;
    size_t i;
    bool stale = false;
    if (as_json) {
        json_dumpf(hosts, stdout, JSON_INDENT(2));
        putchar('\n');
    } else {
        printf("%-20s  %-8s  %-9s  %-4s  %-9s  %-16s  %s\n", "NAME", "STATUS", "INSTANCES", "CPUS",
               "AVAIL-MEM", "ADDRESS", "ETCD");
        json_array_foreach(hosts, i, h)
        {
            const char *addr = json_string_value(json_object_get(h, "address"));
            char cpus[16] = "-", mem[24] = "-";
            if (json_object_get(h, "cpus"))
                snprintf(cpus, sizeof(cpus), "%lld",
                         (long long)json_integer_value(json_object_get(h, "cpus")));
            if (json_object_get(h, "mem_available"))
                snprintf(mem, sizeof(mem), "%lldMiB",
                         (long long)json_integer_value(json_object_get(h, "mem_available")) >> 20);
            printf("%-20s  %-8s  %-9lld  %-4s  %-9s  %-16s  %s%s\n",
                   json_string_value(json_object_get(h, "name")),
                   json_string_value(json_object_get(h, "status")),
                   (long long)json_integer_value(json_object_get(h, "instances")), cpus, mem,
                   addr && addr[0] ? addr : "-", json_string_value(json_object_get(h, "etcd")),
                   json_is_true(json_object_get(h, "self")) ? "  (this host)" : "");
        }
    }
    json_array_foreach(hosts, i, h) stale |= json_is_true(json_object_get(h, "stale"));
    if (stale)
        fprintf(stderr, "vessel: warning: the cluster store (etcd) has no quorum: this list may "
                        "be stale\n");
    json_decref(hosts);
    return 0;
}

static int remove_host(int argc, char **argv)
{
    bool force = false;
    const char *host = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            force = true;
        else if (!host)
            host = argv[i];
        else
            host = NULL, argc = 0;
    }
    if (!host) {
        fprintf(stderr, "usage: vessel cluster remove HOST [--force]\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/cluster/members/%s%s", host, force ? "?force=1" : "");
    if (strchr(host, '/') || strchr(host, '?')) {
        fprintf(stderr, "vessel: bad host name '%s'\n", host);
        return 2;
    }
    json_t *r = call("DELETE", path, NULL);
    json_decref(r);
    return r ? 0 : 1;
}

/* move NAME --target HOST: a container to another cluster host */
int cmd_move(int argc, char **argv)
{
    const char *name = NULL, *target = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--target") && i + 1 < argc)
            target = argv[++i];
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else
            name = NULL, argc = 0;
    }
    if (!name || !target || strchr(name, '/') || strchr(name, '?')) {
        fprintf(stderr, "usage: vessel move NAME --target HOST\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s/move", name);
    json_t *req = json_pack("{s:s}", "target", target);
    json_t *r = call("POST", path, req);
    json_decref(req);
    if (!r)
        return 1;
    printf("%s: on host %s, %s\n", name, json_string_value(json_object_get(r, "location")),
           json_string_value(json_object_get(r, "state")));
    json_decref(r);
    return 0;
}

static int evacuate(int argc, char **argv)
{
    if (argc != 2 || strchr(argv[1], '/') || strchr(argv[1], '?')) {
        fprintf(stderr, "usage: vessel cluster evacuate HOST\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/cluster/members/%s/evacuate", argv[1]);
    json_t *r = call("POST", path, NULL), *v;
    if (!r)
        return 1;
    const char *name;
    json_object_foreach(json_object_get(r, "moved"), name, v)
        printf("%s: moved to host %s\n", name, json_string_value(v));
    json_object_foreach(json_object_get(r, "stayed"), name, v)
        printf("%s: stays: %s\n", name, json_string_value(v));
    int rc = json_object_size(json_object_get(r, "stayed")) ? 1 : 0;
    json_decref(r);
    return rc;
}

static const struct cmd_verb verbs[] = {
    {"init", form,
     "[--name HOST] [--etcd ADDR[,ADDR]] [--address ADDR] [--etcd-ca CA --etcd-cert C "
     "--etcd-key K]",
     "make this host the first of a cluster whose state is on etcd"},
    {"join", form, "ETCD-ADDR[,ADDR...] [--name HOST] [--address ADDR] [--etcd-ca ...]",
     "join the cluster on that etcd (this host's instances and images go with it)"},
    {"list", list, "[--format json]", "the hosts, online or offline"},
    {"remove", remove_host, "HOST [--force]", "forget a host (one that is offline)"},
    {"evacuate", evacuate, "HOST", "move the host's containers to the other hosts"},
};

int cmd_cluster(int argc, char **argv)
{
    const struct cmd_verb *v =
        argc > 1 ? cmd_find(verbs, sizeof(verbs) / sizeof(verbs[0]), argv[1]) : NULL;
    if (!v) {
        fprintf(stderr, "usage: vessel cluster VERB\n\n");
        cmd_print_verbs(stderr, "cluster ", verbs, sizeof(verbs) / sizeof(verbs[0]));
        return 2;
    }
    return v->run(argc - 1, argv + 1);
}
