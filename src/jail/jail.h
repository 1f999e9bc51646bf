/* The jail of a VM process (vessel vm run --jail DIR, docs/security.md):
 * the process forks into new PID, mount, IPC, UTS, cgroup and (without
 * host networking) network namespaces; its root becomes DIR, a small
 * tmpfs holding only the VM's own files bind-mounted at their usual paths
 * (src/jail/files.c), a /proc of its own and the few devices it uses; it
 * runs in cgroups of its own (cpu, memory, pids), with inherited fds
 * closed, no core dumps, at most 4096 open files and, with --jail-fsize,
 * no file larger than that; after its setup it drops to an unprivileged
 * uid and gid. The process that called jail_enter stays outside, waits for
 * it and forwards SIGINT, SIGTERM, SIGHUP and SIGUSR1. A caller that is not
 * root (rootless) first enters a user namespace that maps it to root
 * inside; its jail has no cgroups of its own and drops every capability
 * once built instead of changing uid. */
#ifndef VESSEL_JAIL_JAIL_H
#define VESSEL_JAIL_JAIL_H

#include "util/err.h"
#include "vm/config.h"

/* Default --jail-uid and --jail-gid: nobody and nogroup. */
#define JAIL_DEFAULT_ID 65534u

/* Returns 0 in the jailed child, which goes on to run the VM; in the
 * caller, once the child has ended, 1 with *status its exit status (128+N
 * for a signal N); -1 with err if no jail could be made. Nothing is done
 * (0) without cfg->jail. Call before the process starts any thread. */
int jail_enter(const struct vm_config *cfg, const char *origin_dir, int *status, vs_err *err);

/* In the jailed child, after the machine and its API are set up (files
 * opened, sockets bound) and before the guest runs: every thread takes the
 * jail's uid and gid, and with them loses every capability. */
int jail_drop_privileges(const struct vm_config *cfg, vs_err *err);

#endif
