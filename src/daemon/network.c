/* The managed network: a Linux bridge (vessel0 by default) with the
 * gateway address, NAT to the outside (iptables MASQUERADE) and Debian's
 * dnsmasq for DHCP and DNS, so instances of every kind get an address and
 * reach each other by address or by name.
 *
 * Addresses are the daemon's to give (recorded in each instance's
 * volatile.ipv4 and volatile.hwaddr): a container's end of its veth pair is
 * configured directly in its network namespace; a VM gets a tap on the
 * bridge, its MAC, a dnsmasq dhcp-host entry (for guests with a DHCP
 * client) and the address on its kernel command line as vessel.ip= (for
 * vessel's own guests). dnsmasq and the bridge outlive the daemon, as the
 * instances do; a restarted daemon adopts them. Per instance the links and
 * addresses are made with rtnetlink (rtnl.c); setting up the bridge once,
 * NAT and dnsmasq run iproute2's `ip` and `iptables` with posix_spawn. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "daemon/rtnl.h"
#include "util/log.h"

extern char **environ;

/* Run argv quietly; 0 when it exits 0. */
static int run(const char *const *argv, vs_err *err)
{
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    /* the daemon blocks SIGTERM & co. for its signalfd; dnsmasq must not */
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    sigset_t none;
    sigemptyset(&none);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
    pid_t pid;
    int rc = posix_spawnp(&pid, argv[0], &fa, &attr, (char **)argv, environ);
    posix_spawnattr_destroy(&attr);
    posix_spawn_file_actions_destroy(&fa);
    if (rc)
        return vs_error(err, rc, "cannot run %s: %s", argv[0], strerror(rc));
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    if (!WIFEXITED(status) || WEXITSTATUS(status)) {
        char cmd[512] = "";
        for (int i = 0; argv[i]; i++)
            snprintf(cmd + strlen(cmd), sizeof(cmd) - strlen(cmd), "%s%s", i ? " " : "", argv[i]);
        return vs_error(err, EIO, "network: '%s' failed", cmd);
    }
    return 0;
}

/* "10.87.0.1/24" into gateway and prefix. */
int network_parse(const char *spec, struct daemon_network *n, vs_err *err)
{
    memset(n, 0, sizeof(*n));
    const char *colon = strchr(spec, ':');
    if (!colon || colon == spec || (size_t)(colon - spec) >= sizeof(n->bridge))
        return vs_error(err, EINVAL,
                        "--network %s: expected BRIDGE:ADDRESS/PREFIX, e.g. "
                        "vessel0:10.87.0.1/24",
                        spec);
    memcpy(n->bridge, spec, (size_t)(colon - spec));
    char addr[64];
    snprintf(addr, sizeof(addr), "%s", colon + 1);
    char *slash = strchr(addr, '/');
    int prefix = slash ? atoi(slash + 1) : -1;
    if (slash)
        *slash = 0;
    struct in_addr a;
    if (!slash || prefix < 16 || prefix > 29 || inet_pton(AF_INET, addr, &a) != 1)
        return vs_error(err, EINVAL,
                        "--network %s: the address must be IPv4 with a prefix of "
                        "16 to 29 bits",
                        spec);
    n->gateway = ntohl(a.s_addr);
    n->prefix = prefix;
    uint32_t mask = prefix ? ~0u << (32 - prefix) : 0;
    n->first = (n->gateway & mask) + 2;
    n->last = (n->gateway | ~mask) - 1;
    n->enabled = true;
    return 0;
}

static void ip_str(uint32_t ip, char *out, size_t n)
{
    struct in_addr a = {htonl(ip)};
    inet_ntop(AF_INET, &a, out, (socklen_t)n);
}

static void net_dir(struct daemon *d, const char *file, char *out, size_t n)
{
    snprintf(out, n, "%s/network%s%s", d->state_dir, file ? "/" : "", file ? file : "");
}

static bool dnsmasq_running(struct daemon *d)
{
    char pidfile[4300];
    net_dir(d, "dnsmasq.pid", pidfile, sizeof(pidfile));
    FILE *f = fopen(pidfile, "re");
    int pid = 0;
    if (f) {
        if (fscanf(f, "%d", &pid) != 1)
            pid = 0;
        fclose(f);
    }
    if (pid <= 0 || kill(pid, 0) < 0)
        return false;
    char exe[64], link[256] = "";
    snprintf(exe, sizeof(exe), "/proc/%d/exe", pid);
    ssize_t l = readlink(exe, link, sizeof(link) - 1);
    return l > 0 && strstr(link, "dnsmasq");
}

int network_start(struct daemon *d, vs_err *err)
{
    struct daemon_network *n = &d->net;
    if (!n->enabled)
        return 0;
    char dir[4200], gw[32], cidr[48], sub[48], lo[32], hi[32];
    net_dir(d, NULL, dir, sizeof(dir));
    mkdir(dir, 0700);
    ip_str(n->gateway, gw, sizeof(gw));
    snprintf(cidr, sizeof(cidr), "%s/%d", gw, n->prefix);
    uint32_t mask = ~0u << (32 - n->prefix);
    ip_str(n->gateway & mask, sub, sizeof(sub));
    snprintf(sub + strlen(sub), sizeof(sub) - strlen(sub), "/%d", n->prefix);
    ip_str(n->first, lo, sizeof(lo));
    ip_str(n->last, hi, sizeof(hi));
    /* the bridge (kept if it is there: instances may be on it) */
    char sys[300];
    snprintf(sys, sizeof(sys), "/sys/class/net/%s", n->bridge);
    if (access(sys, F_OK) < 0) {
        const char *add[] = {"ip", "link", "add", n->bridge, "type", "bridge", NULL};
        if (run(add, err) < 0)
            return vs_error_prefix(err, "cannot make the bridge %s: ", n->bridge);
    }
    const char *addr[] = {"ip", "addr", "replace", cidr, "dev", n->bridge, NULL};
    const char *up[] = {"ip", "link", "set", n->bridge, "up", NULL};
    if (run(addr, err) < 0 || run(up, err) < 0)
        return -1;
    /* NAT out, and forwarding; the rule is added once */
    int fd = open("/proc/sys/net/ipv4/ip_forward", O_WRONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, "1", 1) != 1)
            vs_warn("network: cannot enable IPv4 forwarding");
        close(fd);
    }
    const char *check[] = {"iptables", "-t", "nat", "-C", "POSTROUTING", "-s", sub,
                           "!",        "-d", sub,   "-j", "MASQUERADE",  NULL};
    const char *nat[] = {"iptables", "-t", "nat", "-A", "POSTROUTING", "-s", sub,
                         "!",        "-d", sub,   "-j", "MASQUERADE",  NULL};
    vs_err e = {0};
    if (run(check, &e) < 0 && run(nat, &e) < 0)
        vs_warn("network: no NAT for %s (%s); instances reach each other but not beyond", sub,
                e.msg);
    if (dnsmasq_running(d))
        return 0;
    char range[96], leases[4300], pid[4300], hosts[4300], lease_opt[4400], pid_opt[4400],
        hosts_opt[4400], iface[64], listen[64];
    snprintf(range, sizeof(range), "--dhcp-range=%s,%s,1h", lo, hi);
    net_dir(d, "dnsmasq.leases", leases, sizeof(leases));
    net_dir(d, "dnsmasq.pid", pid, sizeof(pid));
    net_dir(d, "hosts", hosts, sizeof(hosts));
    mkdir(hosts, 0700);
    snprintf(lease_opt, sizeof(lease_opt), "--dhcp-leasefile=%s", leases);
    snprintf(pid_opt, sizeof(pid_opt), "--pid-file=%s", pid);
    snprintf(hosts_opt, sizeof(hosts_opt), "--dhcp-hostsdir=%s", hosts);
    snprintf(iface, sizeof(iface), "--interface=%s", n->bridge);
    snprintf(listen, sizeof(listen), "--listen-address=%s", gw);
    /* dnsmasq daemonizes itself, so it is nobody's child here */
    const char *dm[] = {"dnsmasq",
                        "--conf-file=/dev/null",
                        "--strict-order",
                        "--bind-interfaces",
                        "--except-interface=lo",
                        iface,
                        listen,
                        range,
                        "--dhcp-no-override",
                        "--dhcp-authoritative",
                        lease_opt,
                        pid_opt,
                        hosts_opt,
                        "--domain=vessel",
                        "--local=/vessel/",
                        "--expand-hosts",
                        NULL};
    if (run(dm, err) < 0)
        return vs_error_prefix(err, "cannot start dnsmasq on %s: ", n->bridge);
    return 0;
}

/* The next free address (not the gateway, not another instance's). */
static int allocate_ip(struct daemon *d, const char *self, uint32_t *out, vs_err *err)
{
    json_t *list = store_instance_list(d->store, err), *inst;
    if (!list)
        return -1;
    for (uint32_t ip = d->net.first; ip <= d->net.last; ip++) {
        char s[32];
        ip_str(ip, s, sizeof(s));
        bool used = ip == d->net.gateway;
        size_t i;
        json_array_foreach(list, i, inst)
        {
            const char *have = json_string_value(
                json_object_get(json_object_get(inst, "config"), "volatile.ipv4"));
            const char *name = json_string_value(json_object_get(inst, "name"));
            used |= have && !strcmp(have, s) && strcmp(name, self);
        }
        if (!used) {
            json_decref(list);
            *out = ip;
            return 0;
        }
    }
    json_decref(list);
    return vs_error(err, ENOSPC, "network %s: no free address left", d->net.bridge);
}

/* A name for the host side of an instance's link (IFNAMSIZ is 16). */
static void link_name(const char *prefix, const char *name, char out[16])
{
    uint32_t h = 2166136261u; /* FNV-1a */
    for (const char *p = name; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, 16, "%s%08x", prefix, h);
}

int network_assign(struct daemon *d, json_t *inst, vs_err *err)
{
    if (!d->net.enabled)
        return 0;
    json_t *config = json_object_get(inst, "config");
    const char *name = json_string_value(json_object_get(inst, "name"));
    if (!json_object_get(config, "volatile.ipv4")) {
        /* chosen and recorded under one lock: two launches never share one */
        pthread_mutex_lock(&d->alloc_lock);
        uint32_t ip = 0;
        int rc = allocate_ip(d, name, &ip, err);
        if (rc == 0) {
            char s[32];
            ip_str(ip, s, sizeof(s));
            json_object_set_new(config, "volatile.ipv4", json_string(s));
            rc = store_instance_update(d->store, inst, err);
        }
        pthread_mutex_unlock(&d->alloc_lock);
        if (rc < 0)
            return -1;
    }
    if (!json_object_get(config, "volatile.hwaddr")) {
        unsigned char b[3];
        int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || read(fd, b, 3) != 3)
            memset(b, 0x42, 3);
        if (fd >= 0)
            close(fd);
        char mac[32];
        snprintf(mac, sizeof(mac), "52:54:00:%02x:%02x:%02x", b[0], b[1], b[2]);
        json_object_set_new(config, "volatile.hwaddr", json_string(mac));
    }
    /* dnsmasq: this MAC gets this address and name */
    char hosts[4300], path[4400], line[256];
    net_dir(d, "hosts", hosts, sizeof(hosts));
    snprintf(path, sizeof(path), "%s/%s", hosts, name);
    snprintf(line, sizeof(line), "%s,%s,%s\n",
             json_string_value(json_object_get(config, "volatile.hwaddr")),
             json_string_value(json_object_get(config, "volatile.ipv4")), name);
    FILE *f = fopen(path, "we");
    if (f) {
        fputs(line, f);
        fclose(f);
    }
    return 0;
}

void network_release(struct daemon *d, const char *name)
{
    if (!d->net.enabled)
        return;
    char hosts[4300], path[4400];
    net_dir(d, "hosts", hosts, sizeof(hosts));
    snprintf(path, sizeof(path), "%s/%s", hosts, name);
    unlink(path);
    char tap[16];
    link_name("vt", name, tap);
    vs_err e = {0};
    rtnl_link_del(tap, &e);
}

int network_container_attach(struct daemon *d, json_t *inst, int pid, vs_err *err)
{
    if (!d->net.enabled)
        return 0;
    json_t *config = json_object_get(inst, "config");
    const char *name = json_string_value(json_object_get(inst, "name"));
    const char *ip = json_string_value(json_object_get(config, "volatile.ipv4"));
    const char *mac = json_string_value(json_object_get(config, "volatile.hwaddr"));
    char host[16];
    link_name("vh", name, host);
    unsigned m[6];
    uint8_t hw[6];
    struct in_addr a;
    if (!ip || !mac || inet_pton(AF_INET, ip, &a) != 1 ||
        sscanf(mac, "%x:%x:%x:%x:%x:%x", &m[0], &m[1], &m[2], &m[3], &m[4], &m[5]) != 6)
        return vs_error(err, EINVAL, "instance %s: no valid volatile.ipv4/hwaddr", name);
    for (int i = 0; i < 6; i++)
        hw[i] = (uint8_t)m[i];
    /* rtnetlink, not ip(8) and nsenter(1): five spawned programs less per
     * start (rtnl.c); a stale pair from a previous run goes first */
    vs_err e = {0};
    rtnl_link_del(host, &e);
    if (rtnl_veth_add(host, "eth0", hw, pid, err) < 0 ||
        rtnl_link_up(host, d->net.bridge, err) < 0 ||
        rtnl_netns_configure(pid, "eth0", a.s_addr, d->net.prefix, htonl(d->net.gateway), err) < 0)
        return vs_error_prefix(err, "instance %s: ", name);
    return 0;
}

int network_vm_tap(struct daemon *d, json_t *inst, char tap[16], vs_err *err)
{
    tap[0] = 0;
    if (!d->net.enabled)
        return 0;
    const char *name = json_string_value(json_object_get(inst, "name"));
    link_name("vt", name, tap);
    vs_err e = {0};
    rtnl_link_del(tap, &e);
    if (rtnl_tap_add(tap, err) < 0 || rtnl_link_up(tap, d->net.bridge, err) < 0)
        return vs_error_prefix(err, "instance %s: ", name);
    return 0;
}

void network_gateway(struct daemon *d, char *out, size_t n)
{
    ip_str(d->net.gateway, out, n);
}
