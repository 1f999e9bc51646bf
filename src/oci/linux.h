/* Pieces of container setup that run inside the new namespaces: hooks,
 * capabilities, seccomp, the root filesystem and the console. Each returns
 * -1 with a message in err. */
#ifndef VESSEL_OCI_LINUX_H
#define VESSEL_OCI_LINUX_H

#include <stdbool.h>
#include <sys/types.h>

#include "oci/spec.h"
#include "util/err.h"

/* Run hooks in order with the state JSON on stdin; the first failure stops. */
int oci_hooks_run(const char *kind, const struct oci_hook *hooks, size_t n, const char *state,
                  vs_err *err);
/* Run every hook even when some fail (poststart, poststop); each failure is
 * logged as a warning. Returns the number of hooks that failed. */
int oci_hooks_run_all(const char *kind, const struct oci_hook *hooks, size_t n, const char *state);

/* Drop what is not in the bounding set (needs CAP_SETPCAP: call it before
 * switching to the container's user). */
int oci_caps_drop_bounding(const struct oci_caps *caps, vs_err *err);
/* Set effective/permitted/inheritable, then ambient. */
int oci_caps_apply(const struct oci_caps *caps, vs_err *err);
/* Load the filter; *notify_fd gets the listener fd when SCMP_ACT_NOTIFY is
 * used. no_new_privs is process.noNewPrivileges: without it the filter is
 * loaded with no_new_privs left off (this needs CAP_SYS_ADMIN). */
int oci_seccomp_load(const struct oci_seccomp *sc, bool no_new_privs, int *notify_fd, vs_err *err);

struct oci_rootfs_opts {
    const struct oci_spec *spec;
    const char *rootfs;           /* absolute host path */
    bool userns;                  /* running in a new user namespace: bind devices, not mknod */
    const char *console_slave;    /* pty slave to bind on /dev/console, or NULL */
    const char *cgroup_dirs[16];  /* host dirs of the container's cgroups (for cgroup mounts) */
    const char *cgroup_names[16]; /* their controller lists ("" for v2) */
    size_t n_cgroups;
    bool cgroupns;
    bool no_pivot;
};
/* Mount everything below rootfs (still outside it). */
int oci_rootfs_prepare(const struct oci_rootfs_opts *o, vs_err *err);
/* pivot_root into rootfs, then masked/readonly paths and the readonly root. */
int oci_rootfs_pivot(const struct oci_rootfs_opts *o, vs_err *err);
int oci_rootfs_finish(const struct oci_rootfs_opts *o, vs_err *err);
/* linux.sysctl through /proc/sys of the current root. */
int oci_sysctl_apply(const struct oci_spec *s, vs_err *err);

/* SCM_RIGHTS helpers. */
int oci_send_fd(int sock, int fd, const char *data, size_t len);
int oci_recv_fd(int sock, char *data, size_t len);
/* recvmsg of up to len bytes; *fd is a descriptor that came with them
 * (SCM_RIGHTS) or -1. Returns what recvmsg returned. */
ssize_t oci_recv_with_fd(int sock, void *data, size_t len, int *fd);

/* A stream socket connected to the unix socket at path, or -1. */

/* The console channel of a process with a terminal: *console is connected to
 * console_socket when one is given; otherwise *console and *console_peer are
 * the two ends of a socketpair (the pty master comes back on the peer). */
int oci_console_open(const char *console_socket, int *console, int *console_peer, vs_err *err);

/* A new pty: *master from ptmx (falling back to /dev/ptmx when ptmx is NULL
 * or cannot be opened) and *slave opened through it. */
int oci_pty_open(const char *ptmx, int *master, int *slave, vs_err *err);

/* Resolve argv0 through PATH from env (inside the container). */
int oci_find_exec(const char *argv0, const char **env, char *out, size_t len, vs_err *err);

#endif
