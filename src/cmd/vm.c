/* vessel vm VERB: the table of vm verbs. */
#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"
#include "util/cleanup.h"

static int vm_help(int argc, char **argv);

static const struct cmd_verb vm_verbs[] = {
    {"run", cmd_vm_run, "[FLAGS]", "boot a microVM: KVM, or emulated riscv64 ('vm run --help')"},
    {"pause", cmd_vm_api, "--api-sock PATH", "pause a running VM's vCPUs"},
    {"resume", cmd_vm_api, "--api-sock PATH", "resume a paused VM"},
    {"stop", cmd_vm_api, "--api-sock PATH", "stop a running VM"},
    {"info", cmd_vm_api, "--api-sock PATH", "a running VM's state and config as JSON"},
    {"update", cmd_vm_update, "--api-sock PATH [--balloon SIZE] ...",
     "change a running VM's resources ('vm update --help')"},
    {"snapshot", cmd_vm_api, "--api-sock PATH [--diff] [--disk] DIR", "save a running VM to DIR"},
    {"migrate", cmd_vm_migrate, "--api-sock PATH --to tcp:HOST:PORT [FLAGS]",
     "move a running VM to another host ('vm migrate --help')"},
    {"restore", cmd_vm_restore, "DIR [FLAGS]", "continue a snapshot ('vm restore --help')"},
    {"clone", cmd_vm_clone, "DIR --count N [--dir OUTDIR]", "N VMs sharing a snapshot's pages"},
    {"help", vm_help, "", "this list"},
    {"--help", vm_help, "", NULL},
    {"-h", vm_help, "", NULL},
};

static void vm_usage(FILE *f)
{
    fprintf(f, "usage: vessel vm VERB [ARGS]\n\n");
    cmd_print_verbs(f, "vm ", vm_verbs, ARRAY_SIZE(vm_verbs));
}

static int vm_help(int argc, char **argv)
{
    vm_usage(stdout);
    return 0;
}

int cmd_vm(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "vessel: 'vm' needs a verb: ");
        cmd_print_names(stderr, vm_verbs, ARRAY_SIZE(vm_verbs));
        fprintf(stderr, "\n");
        return 2;
    }
    const struct cmd_verb *v = cmd_find(vm_verbs, ARRAY_SIZE(vm_verbs), argv[1]);
    if (!v) {
        fprintf(stderr, "vessel: 'vm %s' is not a vm verb\n", argv[1]);
        vm_usage(stderr);
        return 2;
    }
    return v->run(argc - 1, argv + 1);
}
