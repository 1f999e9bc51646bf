/* The verbs of the `vessel` command, as tables: each verb lives in its own
 * file and only parses arguments before calling into the library, so a new
 * verb is a new file and one table line. Return value is the process exit
 * status. */
#ifndef VESSEL_CMD_COMMANDS_H
#define VESSEL_CMD_COMMANDS_H

#include <stddef.h>
#include <stdio.h>

#include "util/err.h"

struct cmd_verb {
    const char *name;
    int (*run)(int argc, char **argv); /* argv[0] is the verb */
    const char *args;                  /* synopsis of the arguments, for usage */
    const char *help;                  /* one line; NULL: an alias, left out of usage */
};

const struct cmd_verb *cmd_find(const struct cmd_verb *t, size_t n, const char *name);
/* "  NAME ARGS   HELP" for each listed verb, prefix before NAME ("vm "). */
void cmd_print_verbs(FILE *f, const char *prefix, const struct cmd_verb *t, size_t n);
/* "a, b, c": the listed verbs' names, for "needs a verb" messages */
void cmd_print_names(FILE *f, const struct cmd_verb *t, size_t n);

/* main.c */
int cmd_vm(int argc, char **argv);  /* vm.c: the vm verbs' table */
int cmd_oci(int argc, char **argv); /* oci.c: runc-compatible verbs (also vessel-runc) */
int cmd_emu(int argc, char **argv); /* emu.c: riscv64 user-mode emulation */
/* compare.c: the kinds side by side (src/compare) */
int cmd_compare(int argc, char **argv);
/* instance.c: the daemon's client (vesseld's REST API) */
int cmd_launch(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_instance_state(int argc, char **argv); /* start|stop|restart|pause|resume */
int cmd_delete(int argc, char **argv);
int cmd_image(int argc, char **argv);
int cmd_exec(int argc, char **argv);
int cmd_snapshot(int argc, char **argv);
int cmd_restore(int argc, char **argv);
int cmd_copy(int argc, char **argv);
int cmd_publish(int argc, char **argv);
int cmd_config(int argc, char **argv);
int cmd_monitor(int argc, char **argv);
int cmd_trust(int argc, char **argv);
int cmd_console(int argc, char **argv);
int cmd_operation(int argc, char **argv);
int cmd_cluster(int argc, char **argv); /* cluster.c: init|join|list|remove */
int cmd_move(int argc, char **argv);    /* cluster.c: a container to another host */

/* vm verbs */
int cmd_vm_run(int argc, char **argv);      /* vm_run.c */
int cmd_vm_api(int argc, char **argv);      /* vm_api.c: pause, resume, stop, info, snapshot */
int cmd_vm_update(int argc, char **argv);   /* vm_update.c: change a running VM's resources */
int cmd_vm_restore(int argc, char **argv);  /* vm_restore.c */
int cmd_vm_migrate(int argc, char **argv);  /* vm_migrate.c: the source */
int cmd_vm_incoming(int argc, char **argv); /* vm_migrate.c: vm run --incoming */
int cmd_vm_clone(int argc, char **argv);    /* vm_restore.c */

/* `vm run` flags into a config (argv[0] is "run"), vm_run_args.c */
struct vm_config;
int cmd_vm_run_args(struct vm_config *c, int argc, char **argv, vs_err *err);

/* Print "vessel: <msg>" once on stderr. */
void cmd_print_error(const char *msg);

#endif
