/* rtnetlink for the managed network (rtnl.h): one request at a time on a
 * socket of its own, each acknowledged (NLM_F_ACK) and its error returned. */
#include "daemon/rtnl.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/veth.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

unsigned int if_nametoindex(const char *ifname); /* <net/if.h> clashes with <linux/if.h> */

struct req {
    struct nlmsghdr *n;
    char buf[1024] __attribute__((aligned(NLMSG_ALIGNTO)));
    size_t cap;
    int overflow;
};

static void req_init(struct req *r, uint16_t type, uint16_t flags, size_t body)
{
    memset(r->buf, 0, sizeof(r->buf));
    r->n = (struct nlmsghdr *)r->buf;
    r->n->nlmsg_len = NLMSG_LENGTH(body);
    r->n->nlmsg_type = type;
    r->n->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
    r->n->nlmsg_seq = 1;
    r->cap = sizeof(r->buf);
    r->overflow = 0;
}

static void *req_body(struct req *r)
{
    return NLMSG_DATA(r->n);
}

static struct rtattr *attr(struct req *r, uint16_t type, const void *data, size_t len)
{
    size_t at = NLMSG_ALIGN(r->n->nlmsg_len), need = RTA_SPACE(len);
    if (at + need > r->cap) {
        r->overflow = 1;
        return NULL;
    }
    struct rtattr *a = (struct rtattr *)(r->buf + at);
    a->rta_type = type;
    a->rta_len = (unsigned short)RTA_LENGTH(len);
    if (len)
        memcpy(RTA_DATA(a), data, len);
    r->n->nlmsg_len = (uint32_t)(at + need);
    return a;
}

static struct rtattr *nest_begin(struct req *r, uint16_t type)
{
    return attr(r, type, NULL, 0);
}

static void nest_end(struct req *r, struct rtattr *a)
{
    if (a)
        a->rta_len = (unsigned short)(r->buf + r->n->nlmsg_len - (char *)a);
}

/* Send r on a new NETLINK_ROUTE socket and read its acknowledgement. */
static int talk(struct req *r, const char *what, vs_err *err)
{
    if (r->overflow)
        return vs_error(err, E2BIG, "netlink: %s: request too large", what);
    int s = socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
    if (s < 0)
        return vs_error_errno(err, "netlink socket");
    struct sockaddr_nl sa = {.nl_family = AF_NETLINK};
    int rc = 0;
    if (sendto(s, r->buf, r->n->nlmsg_len, 0, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        rc = vs_error_errno(err, "netlink: %s", what);
        goto out;
    }
    for (;;) {
        char buf[4096] __attribute__((aligned(NLMSG_ALIGNTO)));
        ssize_t n = recv(s, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            rc = vs_error_errno(err, "netlink: %s", what);
            goto out;
        }
        for (struct nlmsghdr *h = (struct nlmsghdr *)buf; NLMSG_OK(h, (size_t)n);
             h = NLMSG_NEXT(h, n)) {
            if (h->nlmsg_type != NLMSG_ERROR)
                continue;
            const struct nlmsgerr *e = NLMSG_DATA(h);
            if (e->error) {
                errno = -e->error;
                rc = vs_error_errno(err, "netlink: %s", what);
            }
            goto out;
        }
    }
out:
    close(s);
    return rc;
}

int rtnl_link_del(const char *name, vs_err *err)
{
    unsigned idx = if_nametoindex(name);
    if (!idx)
        return 0;
    struct req r;
    req_init(&r, RTM_DELLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *i = req_body(&r);
    i->ifi_family = AF_UNSPEC;
    i->ifi_index = (int)idx;
    char what[64];
    snprintf(what, sizeof(what), "deleting %s", name);
    vs_err e = {0};
    if (talk(&r, what, &e) < 0 && e.code != ENODEV)
        return vs_error(err, e.code, "%s", e.msg);
    return 0;
}

int rtnl_veth_add(const char *host, const char *peer, const uint8_t mac[6], int peer_pid,
                  vs_err *err)
{
    struct req r;
    req_init(&r, RTM_NEWLINK, NLM_F_CREATE | NLM_F_EXCL, sizeof(struct ifinfomsg));
    ((struct ifinfomsg *)req_body(&r))->ifi_family = AF_UNSPEC;
    attr(&r, IFLA_IFNAME, host, strlen(host) + 1);
    struct rtattr *info = nest_begin(&r, IFLA_LINKINFO);
    attr(&r, IFLA_INFO_KIND, "veth", 4);
    struct rtattr *data = nest_begin(&r, IFLA_INFO_DATA);
    struct rtattr *p = nest_begin(&r, VETH_INFO_PEER);
    /* the peer's attributes follow an ifinfomsg of its own */
    struct ifinfomsg pi = {.ifi_family = AF_UNSPEC};
    size_t at = NLMSG_ALIGN(r.n->nlmsg_len);
    if (at + NLMSG_ALIGN(sizeof(pi)) <= r.cap) {
        memcpy(r.buf + at, &pi, sizeof(pi));
        r.n->nlmsg_len = (uint32_t)(at + NLMSG_ALIGN(sizeof(pi)));
    } else {
        r.overflow = 1;
    }
    attr(&r, IFLA_IFNAME, peer, strlen(peer) + 1);
    attr(&r, IFLA_ADDRESS, mac, 6);
    uint32_t pid = (uint32_t)peer_pid;
    attr(&r, IFLA_NET_NS_PID, &pid, sizeof(pid));
    nest_end(&r, p);
    nest_end(&r, data);
    nest_end(&r, info);
    char what[64];
    snprintf(what, sizeof(what), "adding the veth pair %s", host);
    return talk(&r, what, err);
}

static int link_up_idx(unsigned idx, const char *name, unsigned master, vs_err *err)
{
    struct req r;
    req_init(&r, RTM_NEWLINK, 0, sizeof(struct ifinfomsg));
    struct ifinfomsg *i = req_body(&r);
    i->ifi_family = AF_UNSPEC;
    i->ifi_index = (int)idx;
    i->ifi_flags = IFF_UP;
    i->ifi_change = IFF_UP;
    if (master)
        attr(&r, IFLA_MASTER, &master, sizeof(master));
    char what[64];
    snprintf(what, sizeof(what), "setting %s up", name);
    return talk(&r, what, err);
}

int rtnl_link_up(const char *name, const char *bridge, vs_err *err)
{
    unsigned idx = if_nametoindex(name), master = bridge ? if_nametoindex(bridge) : 0;
    if (!idx)
        return vs_error(err, ENODEV, "netlink: no link %s", name);
    if (bridge && !master)
        return vs_error(err, ENODEV, "netlink: no bridge %s", bridge);
    return link_up_idx(idx, name, master, err);
}

int rtnl_tap_add(const char *name, vs_err *err)
{
    int fd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "/dev/net/tun");
    struct ifreq ifr;
    memset(&ifr, 0, sizeof(ifr));
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI;
    int rc = 0;
    if (ioctl(fd, TUNSETIFF, &ifr) < 0 || ioctl(fd, TUNSETPERSIST, 1) < 0)
        rc = vs_error_errno(err, "tap %s", name);
    close(fd);
    return rc;
}

static int addr_add(unsigned idx, const char *dev, uint32_t addr, int prefix, vs_err *err)
{
    struct req r;
    req_init(&r, RTM_NEWADDR, NLM_F_CREATE | NLM_F_REPLACE, sizeof(struct ifaddrmsg));
    struct ifaddrmsg *a = req_body(&r);
    a->ifa_family = AF_INET;
    a->ifa_prefixlen = (unsigned char)prefix;
    a->ifa_scope = RT_SCOPE_UNIVERSE;
    a->ifa_index = idx;
    attr(&r, IFA_LOCAL, &addr, 4);
    attr(&r, IFA_ADDRESS, &addr, 4);
    uint32_t host_mask = prefix >= 32 ? 0 : (0xffffffffu >> prefix);
    uint32_t bcast = addr | __builtin_bswap32(host_mask);
    if (prefix < 31)
        attr(&r, IFA_BROADCAST, &bcast, 4);
    char what[64];
    snprintf(what, sizeof(what), "an address on %s", dev);
    return talk(&r, what, err);
}

static int default_route(unsigned idx, uint32_t gw, vs_err *err)
{
    struct req r;
    req_init(&r, RTM_NEWROUTE, NLM_F_CREATE | NLM_F_REPLACE, sizeof(struct rtmsg));
    struct rtmsg *m = req_body(&r);
    m->rtm_family = AF_INET;
    m->rtm_table = RT_TABLE_MAIN;
    m->rtm_protocol = RTPROT_BOOT;
    m->rtm_scope = RT_SCOPE_UNIVERSE;
    m->rtm_type = RTN_UNICAST;
    attr(&r, RTA_GATEWAY, &gw, 4);
    attr(&r, RTA_OIF, &idx, sizeof(idx));
    return talk(&r, "the default route", err);
}

int rtnl_netns_configure(int pid, const char *dev, uint32_t addr, int prefix, uint32_t gateway,
                         vs_err *err)
{
    char path[64];
    snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
    int target = open(path, O_RDONLY | O_CLOEXEC);
    if (target < 0)
        return vs_error_errno(err, "%s", path);
    int self = open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (self < 0) {
        close(target);
        return vs_error_errno(err, "/proc/thread-self/ns/net");
    }
    int rc = 0;
    if (setns(target, CLONE_NEWNET) < 0) {
        rc = vs_error_errno(err, "entering %s", path);
        goto out;
    }
    unsigned lo = if_nametoindex("lo"), idx = if_nametoindex(dev);
    if (!idx)
        rc = vs_error(err, ENODEV, "netlink: no link %s in the container", dev);
    else if ((lo && link_up_idx(lo, "lo", 0, err) < 0) ||
             addr_add(idx, dev, addr, prefix, err) < 0 || link_up_idx(idx, dev, 0, err) < 0 ||
             (gateway && default_route(idx, gateway, err) < 0))
        rc = -1;
    /* back where this thread was, whatever happened */
    if (setns(self, CLONE_NEWNET) < 0 && rc == 0)
        rc = vs_error_errno(err, "leaving %s", path);
out:
    close(self);
    close(target);
    return rc;
}
