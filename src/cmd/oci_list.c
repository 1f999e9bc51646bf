/* vessel-runc list, ps ID */
#include <stdio.h>
#include <string.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_list(int argc, char **argv)
{
    const char *format = "table";
    bool quiet = false;
    const struct cmd_opt opts[] = {{"format", 'f', CMD_OPT_STR, &format},
                                   {"quiet", 'q', CMD_OPT_FLAG, &quiet}};
    char *pos[1];
    int npos;
    if (oci_cmd_parse(argc, argv, opts, ARRAY_SIZE(opts), pos, 0, false, &npos))
        return 1;
    if (strcmp(format, "table") && strcmp(format, "json"))
        return oci_cmd_fail("list: --format must be table or json");
    vs_err err = {0};
    return oci_cmd_done(oci_list(oci_g.root, !strcmp(format, "json"), quiet, stdout, &err), &err);
}

int oci_cmd_ps(int argc, char **argv)
{
    const char *format = "table";
    const struct cmd_opt opts[] = {{"format", 'f', CMD_OPT_STR, &format}};
    char *pos[64];
    int npos;
    /* everything after the id goes to ps(1) */
    if (oci_cmd_parse_id(argc, argv, opts, ARRAY_SIZE(opts), pos, 63, true, &npos))
        return 1;
    pos[npos] = NULL;
    vs_err err = {0};
    return oci_cmd_done(oci_ps(oci_g.root, pos[0], !strcmp(format, "json"), pos + 1, stdout, &err),
                        &err);
}
