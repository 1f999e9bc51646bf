/* vessel-agent --set-identity: give a running guest a new network identity
 * and name. A clone of a VM (a copy, a launch from a VM template) resumes
 * with its source's MAC, address and hostname inside the guest; the host
 * runs this through the agent right after the clone starts, so the copy
 * answers on its own address with its own MAC (docs/guest-agent.md).
 * ioctls only, so it works in any guest without ip(8) or ifconfig. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "agent/identity.h"

#include <arpa/inet.h>
#include <errno.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <net/route.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

static int set_mac(int s, const char *ifname, const char *mac)
{
    unsigned b[6];
    char tail;
    if (sscanf(mac, "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5], &tail) != 6) {
        fprintf(stderr, "vessel-agent: --mac %s: not a MAC address\n", mac);
        return -1;
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    ifr.ifr_hwaddr.sa_family = ARPHRD_ETHER;
    for (int i = 0; i < 6; i++) {
        if (b[i] > 255) {
            fprintf(stderr, "vessel-agent: --mac %s: not a MAC address\n", mac);
            return -1;
        }
        ifr.ifr_hwaddr.sa_data[i] = (char)b[i];
    }
    if (ioctl(s, SIOCSIFHWADDR, &ifr) < 0) {
        fprintf(stderr, "vessel-agent: %s: setting the MAC: %s\n", ifname, strerror(errno));
        return -1;
    }
    return 0;
}

static int set_ipv4(int s, const char *ifname, const char *spec)
{
    char addr[32] = "", gw[32] = "";
    int prefix = 24;
    if (sscanf(spec, "%31[0-9.]/%d,%31[0-9.]", addr, &prefix, gw) < 2 || prefix < 1 ||
        prefix > 32) {
        fprintf(stderr, "vessel-agent: --ip %s: expected ADDR/PREFIX[,GATEWAY]\n", spec);
        return -1;
    }
    struct ifreq ifr = {0};
    snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "%s", ifname);
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    if (inet_pton(AF_INET, addr, &sin->sin_addr) != 1) {
        fprintf(stderr, "vessel-agent: --ip %s: bad address\n", spec);
        return -1;
    }
    /* replaces the primary address; its routes go with it */
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0) {
        fprintf(stderr, "vessel-agent: %s: setting the address: %s\n", ifname, strerror(errno));
        return -1;
    }
    sin->sin_addr.s_addr = htonl(prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix));
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0) {
        fprintf(stderr, "vessel-agent: %s: setting the netmask: %s\n", ifname, strerror(errno));
        return -1;
    }
    if (ioctl(s, SIOCGIFFLAGS, &ifr) == 0) {
        ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
        ioctl(s, SIOCSIFFLAGS, &ifr);
    }
    if (!gw[0])
        return 0;
    struct rtentry rt = {0};
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
    struct sockaddr_in *via = (struct sockaddr_in *)&rt.rt_gateway;
    struct sockaddr_in *msk = (struct sockaddr_in *)&rt.rt_genmask;
    dst->sin_family = via->sin_family = msk->sin_family = AF_INET;
    if (inet_pton(AF_INET, gw, &via->sin_addr) != 1) {
        fprintf(stderr, "vessel-agent: --ip %s: bad gateway\n", spec);
        return -1;
    }
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    if (ioctl(s, SIOCADDRT, &rt) < 0 && errno != EEXIST) {
        fprintf(stderr, "vessel-agent: default route via %s: %s\n", gw, strerror(errno));
        return -1;
    }
    return 0;
}

int agent_set_identity(int argc, char **argv)
{
    const char *ifname = "eth0", *mac = NULL, *ip = NULL, *host = NULL;
    for (int i = 0; i < argc; i++) {
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(argv[i], "--if") && v)
            ifname = v;
        else if (!strcmp(argv[i], "--mac") && v)
            mac = v;
        else if (!strcmp(argv[i], "--ip") && v)
            ip = v;
        else if (!strcmp(argv[i], "--hostname") && v)
            host = v;
        else {
            fprintf(stderr, "usage: vessel-agent --set-identity [--if NAME] [--mac MAC] "
                            "[--ip ADDR/PREFIX[,GATEWAY]] [--hostname NAME]\n");
            return 2;
        }
        i++;
    }
    int rc = 0;
    if (host && sethostname(host, strlen(host)) < 0) {
        fprintf(stderr, "vessel-agent: hostname %s: %s\n", host, strerror(errno));
        rc = 1;
    }
    if (!mac && !ip)
        return rc;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (s < 0) {
        fprintf(stderr, "vessel-agent: socket: %s\n", strerror(errno));
        return 1;
    }
    /* the MAC first: nothing leaves with the new address and the old MAC */
    if ((mac && set_mac(s, ifname, mac) < 0) || (ip && set_ipv4(s, ifname, ip) < 0))
        rc = 1;
    close(s);
    return rc;
}
