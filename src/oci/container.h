/* The runtime's verbs (runc's command line), one call each. src/cmd only
 * parses arguments and calls these. */
#ifndef VESSEL_OCI_CONTAINER_H
#define VESSEL_OCI_CONTAINER_H

#include <stdbool.h>
#include <stdio.h>

#include "oci/spec.h"
#include "util/err.h"

struct oci_create_opts {
    const char *root, *id, *bundle;
    const char *pid_file, *console_socket;
    int preserve_fds;
    bool no_pivot; /* move the rootfs onto / and chroot, for ramfs roots */
    bool keep;     /* run: keep the stopped container's state (delete later) */
    /* run: keep the init as our child and relay its terminal */
    bool foreground, detach;
    /* hardening where the config asks for none (oci_spec_secure_defaults) */
    bool secure_defaults;
};

int oci_create(const struct oci_create_opts *o, vs_err *err);
int oci_start(const char *root, const char *id, vs_err *err);
/* create + start (+ wait unless detach); *exit_status is the container's. */
int oci_run(const struct oci_create_opts *o, int *exit_status, vs_err *err);
int oci_kill(const char *root, const char *id, int sig, bool all, vs_err *err);
int oci_delete(const char *root, const char *id, bool force, vs_err *err);
int oci_print_state(const char *root, const char *id, FILE *out, vs_err *err);
int oci_list(const char *root, bool json, bool quiet, FILE *out, vs_err *err);
/* ps: json prints the PID array; otherwise runs ps(1) with ps_args and filters. */
int oci_ps(const char *root, const char *id, bool json, char **ps_args, FILE *out, vs_err *err);
int oci_pause(const char *root, const char *id, bool pause, vs_err *err);
int oci_update(const char *root, const char *id, const struct oci_resources *r, vs_err *err);
int oci_events(const char *root, const char *id, bool stats_once, int interval, FILE *out,
               vs_err *err);
int oci_features(FILE *out, vs_err *err);
int oci_write_spec(const char *bundle, bool rootless, vs_err *err);

struct oci_exec_opts {
    const char *root, *id;
    const char *process_file; /* --process */
    char **args;              /* used when no process file */
    bool tty, detach, no_new_privs;
    const char *console_socket, *pid_file, *cwd, *user;
    char **env;
    size_t n_env;
    char **caps;
    size_t n_caps;
    int preserve_fds;
};
int oci_exec(const struct oci_exec_opts *o, int *exit_status, vs_err *err);

/* Parse "KILL", "SIGKILL", "9". */
int oci_parse_signal(const char *s);

#endif
