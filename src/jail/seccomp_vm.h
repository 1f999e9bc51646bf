/* Per-thread seccomp filters for a VM process: one allow-list per thread
 * role (util/thread_role.h), compiled with libseccomp before any thread
 * starts and installed by each thread itself when it announces its role, so
 * a vCPU thread runs guest code under the vCPU list, a device worker under
 * the I/O list, the API server under the API list. */
#ifndef VESSEL_JAIL_SECCOMP_VM_H
#define VESSEL_JAIL_SECCOMP_VM_H

#include "util/err.h"
#include "util/thread_role.h"
#include "vm/config.h"

/* Compile the lists for cfg->arch (x86_64 adds the KVM ioctls), install the
 * SIGSYS reporter, set no_new_privs on the calling thread (inherited by
 * every thread it starts) and register the thread-role hook. Call in the
 * VM process's main thread before it starts any thread. Nothing is done
 * for VM_SECCOMP_OFF. */
int jail_seccomp_prepare(const struct vm_config *cfg, vs_err *err);
/* Unregister the hook (the filters already installed stay: they cannot be
 * removed). */
void jail_seccomp_finish(void);

/* The compiled filter of a role, for tests: installs it on the calling
 * thread as the hook would (after jail_seccomp_prepare). */
void jail_seccomp_enter(enum vs_thread_role role, const char *name);

#endif
