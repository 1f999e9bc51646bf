/* The few rtnetlink requests the managed network makes for each instance
 * (rtnl.c), in C on a raw NETLINK_ROUTE socket instead of spawning ip(8)
 * and nsenter(1) for each: a container's veth pair, its address and routes
 * inside its network namespace, a VM's tap on the bridge. Each call opens
 * its own socket, so any thread may call them. */
#ifndef VESSEL_DAEMON_RTNL_H
#define VESSEL_DAEMON_RTNL_H

#include <stdint.h>

#include "util/err.h"

/* Delete the link called name; 0 also when there is none. */
int rtnl_link_del(const char *name, vs_err *err);
/* A veth pair: host in this namespace, peer (with mac) in the network
 * namespace of process peer_pid. */
int rtnl_veth_add(const char *host, const char *peer, const uint8_t mac[6], int peer_pid,
                  vs_err *err);
/* Link name up, enslaved to bridge (NULL: no master). */
int rtnl_link_up(const char *name, const char *bridge, vs_err *err);
/* A persistent tap device (IFF_TAP | IFF_NO_PI, as `ip tuntap add mode tap`). */
int rtnl_tap_add(const char *name, vs_err *err);
/* In the network namespace of process pid: lo up, dev up with addr/prefix,
 * and the default route via gateway (addresses in network byte order). The
 * caller must be single-threaded (it enters the namespace and comes back). */
int rtnl_netns_configure(int pid, const char *dev, uint32_t addr, int prefix, uint32_t gateway,
                         vs_err *err);

#endif
