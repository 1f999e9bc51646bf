/* vessel-runc exec [OPTIONS] ID [COMMAND...] */
#include <stdio.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_exec(int argc, char **argv)
{
    const char *process = NULL, *console = NULL, *pidfile = NULL, *cwd = NULL, *user = NULL;
    const char *label = NULL, *apparmor = NULL, *cgroup = NULL;
    bool tty = false, detach = false, nnp = false;
    int preserve = 0;
    struct cmd_strlist env = {0}, caps = {0}, gids = {0};
    const struct cmd_opt opts[] = {
        {"process", 'p', CMD_OPT_STR, &process},
        {"console-socket", 0, CMD_OPT_STR, &console},
        {"pid-file", 0, CMD_OPT_STR, &pidfile},
        {"cwd", 0, CMD_OPT_STR, &cwd},
        {"user", 'u', CMD_OPT_STR, &user},
        {"tty", 't', CMD_OPT_FLAG, &tty},
        {"detach", 'd', CMD_OPT_FLAG, &detach},
        {"no-new-privs", 0, CMD_OPT_FLAG, &nnp},
        {"env", 'e', CMD_OPT_LIST, &env},
        {"cap", 'c', CMD_OPT_LIST, &caps},
        {"additional-gids", 'g', CMD_OPT_LIST, &gids},
        {"preserve-fds", 0, CMD_OPT_INT, &preserve},
        {"process-label", 0, CMD_OPT_STR, &label},
        {"apparmor", 0, CMD_OPT_STR, &apparmor},
        {"cgroup", 0, CMD_OPT_STR, &cgroup},
    };
    char *pos[256];
    int npos;
    /* everything after the id is the command */
    if (oci_cmd_parse_id(argc, argv, opts, ARRAY_SIZE(opts), pos, 255, true, &npos))
        return 1;
    pos[npos] = NULL;
    if (apparmor && *apparmor)
        return oci_cmd_fail("exec: --apparmor: this host has no AppArmor");
    struct oci_exec_opts o = {.root = oci_g.root,
                              .id = pos[0],
                              .process_file = process,
                              .args = pos + 1,
                              .tty = tty,
                              .detach = detach,
                              .no_new_privs = nnp,
                              .console_socket = console,
                              .pid_file = pidfile,
                              .cwd = cwd,
                              .user = user,
                              .env = env.v,
                              .n_env = env.n,
                              .caps = caps.v,
                              .n_caps = caps.n,
                              .preserve_fds = preserve};
    vs_err err = {0};
    int status = 0;
    if (oci_exec(&o, &status, &err) < 0)
        return oci_cmd_done(-1, &err);
    return status;
}
