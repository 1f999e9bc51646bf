#include "util/err.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

int vs_error(vs_err *err, int code, const char *fmt, ...)
{
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    err->code = code;
    return -1;
}

int vs_error_errno(vs_err *err, const char *fmt, ...)
{
    int saved = errno;
    if (!err)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n < sizeof(err->msg))
        snprintf(err->msg + n, sizeof(err->msg) - n, ": %s", strerror(saved));
    err->code = saved;
    errno = saved;
    return -1;
}

int vs_error_prefix(vs_err *err, const char *fmt, ...)
{
    if (!err)
        return -1;
    char prefix[256], old[sizeof(err->msg)];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    memcpy(old, err->msg, sizeof(old));
    size_t pl = strnlen(prefix, sizeof(prefix));
    size_t room = sizeof(err->msg) - 1;
    if (pl > room)
        pl = room;
    memcpy(err->msg, prefix, pl);
    size_t ol = strnlen(old, sizeof(old));
    if (ol > room - pl)
        ol = room - pl;
    memcpy(err->msg + pl, old, ol);
    err->msg[pl + ol] = 0;
    return -1;
}
