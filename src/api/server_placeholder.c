#include <errno.h>
#include "api/server.h"

/* Placeholder until the control API lands (replaced by src/api/server.c). */
int api_server_start(const char *path, struct vm_control *ctl, struct api_server **out, vs_err *err)
{
    *out = NULL;
    return vs_error(err, ENOSYS, "--api-sock: the control API is not built yet");
}

void api_server_stop(struct api_server *s) {}
