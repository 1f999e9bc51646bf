/* Container state kept under --root/<id>/ so separate invocations agree:
 * state.json (the OCI state plus what vessel needs later), config.json (a
 * copy of the spec, for exec and poststop hooks) and exec.fifo while the
 * container is "created". Every verb that changes a container holds an
 * exclusive flock on the container's directory. */
#ifndef VESSEL_OCI_STATE_H
#define VESSEL_OCI_STATE_H

#include <stdbool.h>
#include <sys/types.h>
#include <jansson.h>

#include "oci/cgroup.h"
#include "util/err.h"

enum oci_status { OCI_CREATING, OCI_CREATED, OCI_RUNNING, OCI_PAUSED, OCI_STOPPED };

struct oci_state {
    char id[256];
    char dir[4096]; /* root/id */
    char bundle[4096], rootfs[4200];
    char created[64];
    char owner[64];
    pid_t pid;
    unsigned long long start_time; /* /proc/pid/stat field 22, to detect pid reuse */
    bool userns;
    struct oci_cgroup cgroup;
    json_t *annotations; /* owned, may be NULL */
    int lock_fd;
};

const char *oci_status_name(enum oci_status s);
/* Default --root: /run/vessel-runc for root, $XDG_RUNTIME_DIR/vessel-runc otherwise. */
const char *oci_default_root(void);
int oci_validate_id(const char *id, vs_err *err);

/* Make root/id (failing if it exists) and lock it. */
int oci_state_init(struct oci_state *st, const char *root, const char *id, vs_err *err);
/* Lock and load root/id/state.json. */
int oci_state_load(struct oci_state *st, const char *root, const char *id, bool lock, vs_err *err);
int oci_state_save(const struct oci_state *st, vs_err *err);
/* Remove root/id and everything in it. */
void oci_state_remove_dir(const struct oci_state *st);
void oci_state_release(struct oci_state *st);

enum oci_status oci_state_status(const struct oci_state *st);
/* The OCI state object (what `state` prints and hooks read on stdin). */
json_t *oci_state_json(const struct oci_state *st, enum oci_status status);

unsigned long long oci_proc_start_time(pid_t pid);
/* Process exists and is not a zombie. */
bool oci_pid_alive(pid_t pid, unsigned long long start_time);

#endif
