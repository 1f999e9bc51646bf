/* Parsers for command-line values: sizes ("256M", "2G"), bounded integers,
 * and "key=value,flag" option lists as used by --disk and --net. */
#ifndef VESSEL_UTIL_PARSE_H
#define VESSEL_UTIL_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/err.h"

/* "4096", "64K", "256M", "2G", "1T" (binary units; a bare number is bytes
 * unless default_unit is given, e.g. 1<<20 for MiB). */
int vs_parse_size(const char *s, uint64_t default_unit, uint64_t *out, vs_err *err);
int vs_parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *out, vs_err *err);

#define VS_MAX_OPTS 16
struct vs_opt {
    char *key;
    char *value; /* NULL for a bare flag such as "ro" */
};
struct vs_optlist {
    char *buf; /* owned copy of the input, keys and values point into it */
    size_t n;
    struct vs_opt opts[VS_MAX_OPTS];
};
/* Split "path,ro,cache=none" into options; the first item may be a bare value. */
int vs_optlist_parse(const char *s, struct vs_optlist *out, vs_err *err);
void vs_optlist_free(struct vs_optlist *l);
/* Value of key, or NULL; *present tells whether the key appeared at all. */
const char *vs_optlist_get(const struct vs_optlist *l, const char *key, bool *present);

#endif
