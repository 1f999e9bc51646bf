/* vessel-runc spec, features */
#include <stdio.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_spec(int argc, char **argv)
{
    const char *bundle = ".";
    bool rootless = false;
    const struct cmd_opt opts[] = {{"bundle", 'b', CMD_OPT_STR, &bundle},
                                   {"rootless", 0, CMD_OPT_FLAG, &rootless}};
    char *pos[1];
    int npos;
    if (oci_cmd_parse(argc, argv, opts, ARRAY_SIZE(opts), pos, 0, false, &npos))
        return 1;
    vs_err err = {0};
    return oci_cmd_done(oci_write_spec(bundle, rootless, &err), &err);
}

int oci_cmd_features(int argc, char **argv)
{
    vs_err err = {0};
    return oci_cmd_done(oci_features(stdout, &err), &err);
}
