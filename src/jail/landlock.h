/* Landlock for a VM process: after jail_landlock_apply the process (every
 * thread it starts from then on) opens only its own files. */
#ifndef VESSEL_JAIL_LANDLOCK_H
#define VESSEL_JAIL_LANDLOCK_H

#include "util/err.h"
#include "vm/config.h"

/* The highest landlock ABI the kernel offers; 0 without landlock. */
int jail_landlock_abi(void);

/* Restrict the calling thread (and the threads it starts) to cfg's files:
 *   read        kernel, initrd, firmware, read-only disks and every disk's
 *               backing chain, restore->origin_dir (a restored VM's snapshot),
 *               the shared libraries (libmicrohttpd is loaded on the first API
 *               request), /etc/resolv.conf and /etc/hosts (user networking),
 *               /dev/urandom, /proc/self, /sys/devices/system/cpu
 *   read/write  writable disks, the console and virtio-console files
 *               (made now if missing, so the rule names the file),
 *               /dev/kvm (x86_64), /dev/net/tun (tap), /dev/null
 *   sockets     in the vsock and virtio-console sockets' directories
 *   create      beneath the API socket's directory (its socket, the
 *               snapshots a daemon keeps next to it) and every
 *               cfg->landlock_rw directory (--landlock-rw: where snapshots
 *               may be written)
 * Call before the VM process starts any thread (landlock ABI 7 cannot
 * restrict threads that exist). Nothing is done unless cfg->landlock. */
int jail_landlock_apply(const struct vm_config *cfg, const char *origin_dir, vs_err *err);

#endif
