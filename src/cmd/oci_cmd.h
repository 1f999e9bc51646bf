/* The runc-compatible verbs of vessel-runc / `vessel oci`, one file per verb
 * or verb group over cmd/opt.h; only argument parsing, src/oci does the
 * work. */
#ifndef VESSEL_CMD_OCI_CMD_H
#define VESSEL_CMD_OCI_CMD_H

#include <stdbool.h>

#include "cmd/opt.h"
#include "util/err.h"

/* runc's global options, given before the verb */
struct oci_globals {
    const char *root, *log, *log_format, *rootless, *criu;
    bool debug, systemd_cgroup, version, help;
};
extern struct oci_globals oci_g;

/* Each verb: argv[0] is the verb, the exit status is returned. */
int oci_cmd_create(int argc, char **argv); /* oci_create.c: create, run */
int oci_cmd_simple(int argc,
                   char **argv);         /* oci_lifecycle.c: start, state, delete, pause, resume */
int oci_cmd_kill(int argc, char **argv); /* oci_lifecycle.c */
int oci_cmd_events(int argc, char **argv); /* oci_events.c */
int oci_cmd_exec(int argc, char **argv);   /* oci_exec.c */
int oci_cmd_list(int argc, char **argv);   /* oci_list.c: list */
int oci_cmd_ps(int argc, char **argv);     /* oci_list.c */
int oci_cmd_update(int argc, char **argv); /* oci_update.c */
int oci_cmd_spec(int argc, char **argv);   /* oci_spec.c: spec */
int oci_cmd_features(int argc, char **argv);

/* The verb's options (argv[1..]) into opts; positional arguments into pos
 * (room for maxpos). 0, or 1 after reporting a problem. */
int oci_cmd_parse(int argc, char **argv, const struct cmd_opt *opts, size_t nopts, char **pos,
                  int maxpos, bool rest_after_id, int *npos);
/* As above, and pos[0] must be there: the container id. */
int oci_cmd_parse_id(int argc, char **argv, const struct cmd_opt *opts, size_t nopts, char **pos,
                     int maxpos, bool rest_after_id, int *npos);
/* Report on stderr (and in --log): exit status 1. */
int oci_cmd_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* 0, or report err and 1 when rc < 0. */
int oci_cmd_done(int rc, const vs_err *err);

#endif
