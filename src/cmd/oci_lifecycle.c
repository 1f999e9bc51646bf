/* vessel-runc start|state|delete|pause|resume|kill ID */
#include <stdio.h>
#include <string.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_simple(int argc, char **argv)
{
    const char *verb = argv[0];
    bool force = false;
    const struct cmd_opt del_opts[] = {{"force", 'f', CMD_OPT_FLAG, &force}};
    bool del = !strcmp(verb, "delete");
    char *pos[1];
    int npos;
    if (oci_cmd_parse_id(argc, argv, del_opts, del ? 1 : 0, pos, 1, false, &npos))
        return 1;
    const char *root = oci_g.root, *id = pos[0];
    vs_err err = {0};
    if (!strcmp(verb, "start"))
        return oci_cmd_done(oci_start(root, id, &err), &err);
    if (!strcmp(verb, "state"))
        return oci_cmd_done(oci_print_state(root, id, stdout, &err), &err);
    if (del)
        return oci_cmd_done(oci_delete(root, id, force, &err), &err);
    return oci_cmd_done(oci_pause(root, id, verb[0] == 'p', &err), &err);
}

int oci_cmd_kill(int argc, char **argv)
{
    bool all = false;
    const struct cmd_opt opts[] = {{"all", 'a', CMD_OPT_FLAG, &all}};
    char *pos[2];
    int npos;
    if (oci_cmd_parse_id(argc, argv, opts, ARRAY_SIZE(opts), pos, 2, false, &npos))
        return 1;
    int sig = oci_parse_signal(npos > 1 ? pos[1] : "TERM");
    if (sig < 0)
        return oci_cmd_fail("kill: unknown signal '%s'", pos[1]);
    vs_err err = {0};
    return oci_cmd_done(oci_kill(oci_g.root, pos[0], sig, all, &err), &err);
}
