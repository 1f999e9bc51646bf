/* Shared pieces of create/run and exec: the parent<->child sync channel,
 * applying a process's identity (user, rlimits, caps, seccomp) and the
 * foreground wait loop that forwards signals and relays a terminal. */
#ifndef VESSEL_OCI_PROCESS_H
#define VESSEL_OCI_PROCESS_H

#include <stdbool.h>
#include <sys/types.h>

#include "oci/spec.h"
#include "util/err.h"

enum oci_sync_type {
    OCI_SYNC_GO = 1, /* parent -> child: maps and cgroups done; value = host pid */
    OCI_SYNC_HOOKS,  /* child -> parent: run prestart/createRuntime now */
    OCI_SYNC_HOOKS_DONE,
    OCI_SYNC_READY,   /* child -> parent: blocked before exec */
    OCI_SYNC_ERROR,   /* child -> parent: msg holds the error */
    OCI_SYNC_PID,     /* exec helper -> parent: value = pid of the exec'd process */
    OCI_SYNC_SECCOMP, /* child -> parent: seccomp notify fd attached */
    OCI_SYNC_USERNS,  /* child -> parent: user namespace made, write its id maps */
    OCI_SYNC_MAPS_DONE,
    /* parent -> child (run): go on to exec; the child's end closes at exec */
    OCI_SYNC_START,
    /* child -> parent: a createContainer hook failed (msg); the lifecycle
     * goes on with destroy and the poststop hooks */
    OCI_SYNC_HOOK_FAILED,
};

struct oci_sync_msg {
    int type;
    int value;
    char msg[500];
    int passed_fd; /* set by oci_sync_recv: fd sent with SCM_RIGHTS, or -1 */
};

/* In a forked child: only the preserved fds (3 .. 3 + n - 1) survive exec. */
void oci_child_keep_fds(int n);
/* The parent's and the child's ends of a new sync channel (close-on-exec). */
int oci_sync_pair(int *parent, int *child, vs_err *err);
int oci_sync_send(int fd, int type, int value, const char *msg);
/* Wait for a message; returns 0, or -1 on EOF/error. */
int oci_sync_recv(int fd, struct oci_sync_msg *m);
/* Child side: report err and exit. */
__attribute__((noreturn)) void oci_sync_fail(int fd, const vs_err *err);

/* rlimits, oom_score_adj, groups/gid/uid, umask. */
int oci_process_set_identity(const struct oci_process *p, bool userns, vs_err *err);
/* Terminal in the child: make slave the controlling tty and stdio. */
int oci_process_setup_tty(int slave, const struct oci_process *p, vs_err *err);

/* Block the signals a foreground run/exec forwards, from the start, so one
 * that arrives during setup waits for oci_wait_forward instead of killing
 * us; children unblock everything again and put every signal back to its
 * default action. */
void oci_block_forwarded_signals(void);
void oci_unblock_all_signals(void);

/* Wait for pid, forwarding signals; relay between our stdio and master when
 * master >= 0. Returns the exit status in shell convention (128+signal). */
int oci_wait_forward(pid_t pid, int master);

/* Write pid to path atomically. */
int oci_write_pid_file(const char *path, pid_t pid, vs_err *err);

#endif
