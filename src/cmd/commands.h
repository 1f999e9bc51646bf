/* Top-level verbs of the `vessel` command; each lives in its own file and
 * only parses arguments before calling into the library. Return value is the
 * process exit status. */
#ifndef VESSEL_CMD_COMMANDS_H
#define VESSEL_CMD_COMMANDS_H

int cmd_vm(int argc, char **argv);     /* vm.c: dispatches vm verbs */
int cmd_vm_run(int argc, char **argv); /* vm_run.c */
int cmd_vm_control(int argc,
                   char **argv); /* vm_control.c: pause, resume, snapshot, info, restore, clone */
int cmd_oci(int argc, char **argv); /* oci.c: runc-compatible verbs */
int cmd_emu(int argc, char **argv); /* emu.c: riscv64 user-mode emulation */
/* instance.c: the daemon's client (vesseld's REST API) */
int cmd_launch(int argc, char **argv);
int cmd_list(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_instance_state(int argc, char **argv); /* start|stop|restart|pause|resume */
int cmd_delete(int argc, char **argv);
int cmd_image(int argc, char **argv);

/* Print "vessel: <msg>" once on stderr. */
void cmd_print_error(const char *msg);

#endif
