/* Load an optional shared library and its symbols on first use. Used for
 * libraries that only some commands need (libcurl for the API client,
 * libmicrohttpd for the API server), so a plain `vessel vm run` does not map
 * their dependency trees (TLS stacks and the like) into every VMM process. */
#ifndef VESSEL_UTIL_DYNLIB_H
#define VESSEL_UTIL_DYNLIB_H

#include <stddef.h>

struct vs_dynsym {
    void **slot; /* where to store the address */
    const char *name;
};

/* dlopen soname and resolve every symbol; 0 on success, else -1 with a
 * one-line reason in errbuf (the slots are then all NULL). */
int vs_dynlib_load(const char *soname, const char *package, const struct vs_dynsym *syms, size_t n,
                   char *errbuf, size_t errlen);

#endif
