/* The files one VM process needs, as landlock rules and as the bind mounts
 * of its jail: one list, so both always agree. */
#ifndef VESSEL_JAIL_FILES_H
#define VESSEL_JAIL_FILES_H

#include "util/err.h"
#include "vm/config.h"

enum jail_access {
    JAIL_SYSTEM,     /* read (and map executable): shared libraries, resolver files */
    JAIL_READ,       /* read: kernel, initrd, firmware, read-only disks, backing files */
    JAIL_READ_WRITE, /* read and write a file: writable disks, console files */
    JAIL_DEVICE,     /* a device node to read, write and ioctl: /dev/kvm, /dev/net/tun */
    JAIL_SOCKETS,    /* a directory the VM binds unix sockets in */
    JAIL_CREATE,     /* a directory the VM creates files beneath (snapshots) */
};

typedef int (*jail_file_fn)(void *opaque, const char *path, enum jail_access access, vs_err *err);

/* Calls fn for each file cfg's VM opens after it starts (see landlock.h for
 * the list). Console files are made if missing, so they can be named. */
int jail_vm_files(const struct vm_config *cfg, const char *origin_dir, jail_file_fn fn,
                  void *opaque, vs_err *err);

#endif
