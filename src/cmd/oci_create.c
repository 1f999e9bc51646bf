/* vessel-runc create|run ID */
#include <stdlib.h>
#include <string.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_create(int argc, char **argv)
{
    const char *verb = argv[0];
    const char *bundle = ".", *console = NULL, *pidfile = NULL, *notify = NULL;
    bool no_pivot = false, no_keyring = false, detach = false, keep = false, no_subreaper = false,
         secure = false;
    int preserve = 0;
    const struct cmd_opt opts[] = {
        {"bundle", 'b', CMD_OPT_STR, &bundle},
        {"console-socket", 0, CMD_OPT_STR, &console},
        {"pid-file", 0, CMD_OPT_STR, &pidfile},
        {"no-pivot", 0, CMD_OPT_FLAG, &no_pivot},
        {"no-new-keyring", 0, CMD_OPT_FLAG, &no_keyring},
        {"preserve-fds", 0, CMD_OPT_INT, &preserve},
        {"secure-defaults", 0, CMD_OPT_FLAG, &secure},
        /* run only */
        {"detach", 'd', CMD_OPT_FLAG, &detach},
        {"keep", 0, CMD_OPT_FLAG, &keep},
        {"notify-socket", 0, CMD_OPT_STR, &notify},
        {"no-subreaper", 0, CMD_OPT_FLAG, &no_subreaper},
    };
    bool run = !strcmp(verb, "run");
    char *pos[1];
    int npos;
    if (oci_cmd_parse_id(argc, argv, opts, run ? ARRAY_SIZE(opts) : ARRAY_SIZE(opts) - 4, pos, 1,
                         false, &npos))
        return 1;
    const char *env_pf = getenv("LISTEN_FDS");
    if (env_pf && !preserve)
        preserve = atoi(env_pf);
    struct oci_create_opts o = {.root = oci_g.root,
                                .id = pos[0],
                                .bundle = bundle,
                                .pid_file = pidfile,
                                .console_socket = console,
                                .preserve_fds = preserve,
                                .no_pivot = no_pivot,
                                .keep = keep,
                                .detach = detach,
                                .secure_defaults = secure};
    vs_err err = {0};
    if (!run)
        return oci_cmd_done(oci_create(&o, &err), &err);
    int status = 0;
    if (oci_run(&o, &status, &err) < 0)
        return oci_cmd_done(-1, &err);
    return status;
}
