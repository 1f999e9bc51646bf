/* Loading and unloading libarchive around image operations (archive_lib.h). */
#define ARCHIVE_LIB_NO_MACROS
#include "daemon/archive_lib.h"

#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stddef.h>

struct archive_lib archive_lib;
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static void *handle;
static unsigned users;

int archive_lib_acquire(vs_err *err)
{
    pthread_mutex_lock(&lock);
    if (users == 0) {
        handle = dlopen("libarchive.so.13", RTLD_NOW | RTLD_LOCAL);
        if (!handle) {
            pthread_mutex_unlock(&lock);
            return vs_error(err, ENOSYS, "cannot load libarchive.so.13 (install libarchive13): %s",
                            dlerror());
        }
#define ARCHIVE_LIB_LOAD(f)                                                                        \
    if (!(archive_lib.f = (__typeof__(f) *)dlsym(handle, #f))) {                                   \
        dlclose(handle);                                                                           \
        handle = NULL;                                                                             \
        pthread_mutex_unlock(&lock);                                                               \
        return vs_error(err, ENOSYS, "libarchive.so.13 has no %s", #f);                            \
    }
        ARCHIVE_LIB_FUNCS(ARCHIVE_LIB_LOAD)
#undef ARCHIVE_LIB_LOAD
    }
    users++;
    pthread_mutex_unlock(&lock);
    return 0;
}

void archive_lib_release(void)
{
    pthread_mutex_lock(&lock);
    if (users && --users == 0) {
        dlclose(handle);
        handle = NULL;
    }
    pthread_mutex_unlock(&lock);
}
