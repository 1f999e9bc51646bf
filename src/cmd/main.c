/* vessel: one command for KVM microVMs, the RISC-V emulator and the OCI
 * runtime. Invoked as `vessel-runc` (a symlink) it is a runc-compatible
 * runtime, so podman --runtime and containerd can use it by path. */
#include <stdio.h>
#include <string.h>
#include <libgen.h>

#include "cmd/commands.h"
#include "util/cleanup.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "dev"
#endif

void cmd_print_error(const char *msg)
{
    fprintf(stderr, "vessel: %s\n", msg);
}

static int cmd_version(int argc, char **argv)
{
    printf("vessel %s\n", VESSEL_VERSION);
    return 0;
}

static int cmd_help(int argc, char **argv);

static const struct cmd_verb commands[] = {
    {"vm", cmd_vm, "VERB [ARGS]", "microVMs: KVM on x86_64, emulated riscv64 ('vessel vm help')"},
    {"oci", cmd_oci, "VERB [ARGS]", "OCI runtime with runc's command line (also as vessel-runc)"},
    {"emu", cmd_emu, "PROGRAM [ARGS]", "run a riscv64 Linux program (user-mode emulation)"},
    {"compare", cmd_compare, "[--workloads L] [--runs N] [--out DIR] [--format table|json]",
     "what each kind of virtualization costs here: a table and a chart"},
    /* instances, through the daemon (vesseld); instance.c */
    {"launch", cmd_launch,
     "IMAGE NAME [--vm|--container] [--arch A] [-c KEY=VALUE]... [--target HOST|auto]",
     "create and start an instance"},
    {"list", cmd_list, "[--format table|json|csv|yaml]", "the daemon's instances"},
    {"ls", cmd_list, "", NULL},
    {"info", cmd_info, "NAME", "one instance"},
    {"start", cmd_instance_state, "NAME... [--force] [--timeout S]", "start instances"},
    {"stop", cmd_instance_state, "NAME... [--force] [--timeout S]", "stop instances"},
    {"restart", cmd_instance_state, "NAME... [--force] [--timeout S]", "restart instances"},
    {"pause", cmd_instance_state, "NAME...", "pause instances"},
    {"resume", cmd_instance_state, "NAME...", "resume instances"},
    {"delete", cmd_delete, "NAME[/SNAPSHOT]... [--force]", "delete instances or snapshots"},
    {"rm", cmd_delete, "", NULL},
    {"image", cmd_image, "import|list|delete|alias ...", "the daemon's images"},
    {"config", cmd_config, "set|unset|get|show NAME [KEY[=VALUE]]...",
     "an instance's settings (live where the kind allows)"},
    {"operation", cmd_operation, "list | show ID | cancel ID", "the daemon's long-running work"},
    {"monitor", cmd_monitor, "[--type T[,T]] [--format json|pretty]", "the daemon's events"},
    {"trust", cmd_trust, "add CERT [--name N] | list | remove FINGERPRINT",
     "client certificates the daemon's HTTPS listener accepts"},
    {"console", cmd_console, "NAME [--follow]", "an instance's console output"},
    {"exec", cmd_exec, "NAME [-t] [--] COMMAND [ARGS...]", "run a command in an instance"},
    {"snapshot", cmd_snapshot, "NAME [SNAPSHOT]",
     "snapshot an instance (a VM's running state too)"},
    {"restore", cmd_restore, "NAME SNAPSHOT", "go back to a snapshot"},
    {"copy", cmd_copy, "SOURCE[/SNAPSHOT] NAME", "a copy with its own identity"},
    {"publish", cmd_publish, "NAME[/SNAPSHOT] [--alias ALIAS]", "make an image of a container"},
    {"move", cmd_move, "NAME --target HOST", "a container to another cluster host"},
    {"cluster", cmd_cluster, "init|join|list|remove ...",
     "several hosts' daemons as one, their state on etcd"},
    {"version", cmd_version, "", "print the version"},
    {"help", cmd_help, "", "this list"},
    {"--version", cmd_version, "", NULL},
    {"--help", cmd_help, "", NULL},
    {"-h", cmd_help, "", NULL},
};

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel COMMAND [ARGS]\n\ncommands:\n");
    cmd_print_verbs(f, "", commands, ARRAY_SIZE(commands));
    fprintf(f, "\n'vessel vm run --help' lists the VM flags.\n");
}

static int cmd_help(int argc, char **argv)
{
    usage(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    char *prog = basename(argv[0]);
    if (!strcmp(prog, "vessel-runc"))
        return cmd_oci(argc, argv);
    if (argc < 2) {
        usage(stderr);
        return 2;
    }
    const struct cmd_verb *c = cmd_find(commands, ARRAY_SIZE(commands), argv[1]);
    if (!c) {
        fprintf(stderr, "vessel: unknown command '%s' (see 'vessel help')\n", argv[1]);
        return 2;
    }
    return c->run(argc - 1, argv + 1);
}
