#include "util/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>

int vs_dynlib_load(const char *soname, const char *package, const struct vs_dynsym *syms, size_t n,
                   char *errbuf, size_t errlen)
{
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(errbuf, errlen, "cannot load %s (install %s): %s", soname, package, dlerror());
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        *syms[i].slot = dlsym(h, syms[i].name);
        if (!*syms[i].slot) {
            snprintf(errbuf, errlen, "%s has no symbol %s", soname, syms[i].name);
            for (size_t j = 0; j < n; j++)
                *syms[j].slot = NULL;
            dlclose(h);
            return -1;
        }
    }
    return 0; /* the handle stays open for the life of the process */
}
