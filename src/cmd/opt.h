/* The one option parser of vessel's verbs: runc-style long options
 * (--name VALUE, --name=VALUE), short ones (-b VALUE, combined flags -tf)
 * and positional arguments, described by a table. */
#ifndef VESSEL_CMD_OPT_H
#define VESSEL_CMD_OPT_H

#include <stdbool.h>
#include <stddef.h>

#include "util/err.h"

enum cmd_opt_kind {
    CMD_OPT_FLAG, /* bool *; also --name=true|false */
    CMD_OPT_STR,  /* const char **; the last one given wins */
    CMD_OPT_INT,  /* int *, 0 .. 1 << 20 */
    CMD_OPT_LIST, /* struct cmd_strlist *: every one given, in order */
};

struct cmd_opt {
    const char *name; /* long name without dashes */
    char short_name;  /* 0: none */
    enum cmd_opt_kind kind;
    void *ptr;
};

struct cmd_strlist {
    char *v[64];
    size_t n;
};

struct cmd_optparse {
    const char *verb; /* error messages start "<verb>: " */
    const struct cmd_opt *opts;
    size_t nopts;
    char **pos; /* positional arguments out; room for maxpos */
    int maxpos;
    /* After the first positional argument everything is positional (exec's
     * and ps's command, emu's program arguments, the verb after runc's
     * global options). */
    bool rest_after_first;
    /* "-name" is the long option "name" too (runc's global options). */
    bool single_dash_long;
    const char *hint; /* appended to "unknown option" errors, e.g. " (see '... --help')" */
    int npos;         /* out */
};

/* Parses argv[0..argc). Returns 0, CMD_OPT_HELP when --help or -h was given
 * and the table does not define it, or -1 with err set. */
#define CMD_OPT_HELP 1
int cmd_opt_parse(struct cmd_optparse *p, int argc, char **argv, vs_err *err);

#endif
