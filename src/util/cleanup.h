/* Scope-bound cleanup (GCC/clang `cleanup` attribute), as crun does, so early
 * error returns do not leak. */
#ifndef VESSEL_UTIL_CLEANUP_H
#define VESSEL_UTIL_CLEANUP_H

#include <stdlib.h>
#include <unistd.h>
#include <stdio.h>

static inline void vs_freep(void *p)
{
    free(*(void **)p);
}
static inline void vs_closep(int *fd)
{
    if (*fd >= 0)
        close(*fd);
}
static inline void vs_fclosep(FILE **f)
{
    if (*f)
        fclose(*f);
}

#define cleanup_free __attribute__((cleanup(vs_freep)))
#define cleanup_close __attribute__((cleanup(vs_closep)))
#define cleanup_fclose __attribute__((cleanup(vs_fclosep)))

/* Hand ownership out of a cleanup variable. */
#define steal_ptr(p)                                                                               \
    ({                                                                                             \
        __typeof__(p) _t = (p);                                                                    \
        (p) = NULL;                                                                                \
        _t;                                                                                        \
    })
#define steal_fd(fd)                                                                               \
    ({                                                                                             \
        int _t = (fd);                                                                             \
        (fd) = -1;                                                                                 \
        _t;                                                                                        \
    })

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define ALIGN_UP(x, a) (((x) + ((a)-1)) & ~((__typeof__(x))(a)-1))
#define MIN(a, b) ((a) < (b) ? (a) : (b))
#define MAX(a, b) ((a) > (b) ? (a) : (b))

#endif
