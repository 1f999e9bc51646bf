/* Errors travel up as a return code plus a message filled in where the
 * problem was found; main() prints it once. No exit() inside the library. */
#ifndef VESSEL_UTIL_ERR_H
#define VESSEL_UTIL_ERR_H

#include <stdarg.h>

typedef struct vs_err {
    int code;      /* errno-style cause when there is one, else 0 */
    char msg[512]; /* one line, no trailing newline */
} vs_err;

/* Fill err (if non-NULL) and return -1, so callers can `return vs_error(...)`. */
int vs_error(vs_err *err, int code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* Like vs_error, appending ": strerror(errno)" and storing errno. */
int vs_error_errno(vs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prefix context to an error already set: "disk a.img: " + msg. */
int vs_error_prefix(vs_err *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
