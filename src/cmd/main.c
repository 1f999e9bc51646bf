/* vessel: one command for KVM microVMs, the RISC-V emulator and the OCI
 * runtime. Invoked as `vessel-runc` (a symlink) it is a runc-compatible
 * runtime, so podman --runtime and containerd can use it by path. */
#include <stdio.h>
#include <string.h>
#include <libgen.h>

#include "cmd/commands.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "dev"
#endif

void cmd_print_error(const char *msg)
{
    fprintf(stderr, "vessel: %s\n", msg);
}

static void usage(FILE *f)
{
    fprintf(
        f, "usage: vessel COMMAND [ARGS]\n\n"
           "commands:\n"
           "  vm run [FLAGS]         boot a microVM (KVM on x86_64, emulated with --arch riscv64)\n"
           "  vm pause|resume|info|snapshot --api-sock PATH\n"
           "  vm restore DIR | vm clone DIR --count N\n"
           "  oci VERB [ARGS]        OCI runtime with runc's command line (also as vessel-runc)\n"
           "  emu PROGRAM [ARGS]     run a riscv64 Linux program (user-mode emulation)\n\n"
           "instances (through the daemon, vesseld):\n"
           "  launch IMAGE NAME [--vm|--container] [--arch A] [-c KEY=VALUE]...\n"
           "  list [--format table|json|csv|yaml]\n"
           "  info NAME\n"
           "  start|stop|restart|pause|resume NAME... [--force] [--timeout S]\n"
           "  delete NAME... [--force]\n"
           "  image import|list|delete ...\n\n"
           "  version                print the version\n\n"
           "'vessel vm run --help' lists the VM flags.\n");
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
    const char *verb = argv[1];
    if (!strcmp(verb, "vm"))
        return cmd_vm(argc - 1, argv + 1);
    if (!strcmp(verb, "oci"))
        return cmd_oci(argc - 1, argv + 1);
    if (!strcmp(verb, "emu"))
        return cmd_emu(argc - 1, argv + 1);
    if (!strcmp(verb, "launch"))
        return cmd_launch(argc - 1, argv + 1);
    if (!strcmp(verb, "list") || !strcmp(verb, "ls"))
        return cmd_list(argc - 1, argv + 1);
    if (!strcmp(verb, "info"))
        return cmd_info(argc - 1, argv + 1);
    if (!strcmp(verb, "start") || !strcmp(verb, "stop") || !strcmp(verb, "restart") ||
        !strcmp(verb, "pause") || !strcmp(verb, "resume"))
        return cmd_instance_state(argc - 1, argv + 1);
    if (!strcmp(verb, "delete") || !strcmp(verb, "rm"))
        return cmd_delete(argc - 1, argv + 1);
    if (!strcmp(verb, "image"))
        return cmd_image(argc - 1, argv + 1);
    if (!strcmp(verb, "version") || !strcmp(verb, "--version")) {
        printf("vessel %s\n", VESSEL_VERSION);
        return 0;
    }
    if (!strcmp(verb, "help") || !strcmp(verb, "--help") || !strcmp(verb, "-h")) {
        usage(stdout);
        return 0;
    }
    fprintf(stderr, "vessel: unknown command '%s' (see 'vessel help')\n", verb);
    return 2;
}
