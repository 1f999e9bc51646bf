#include <stdio.h>
#include <string.h>

#include "cmd/commands.h"

int cmd_vm(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr,
                "vessel: 'vm' needs a verb: run, pause, resume, info, snapshot, restore, clone\n");
        return 2;
    }
    if (!strcmp(argv[1], "run"))
        return cmd_vm_run(argc - 1, argv + 1);
    return cmd_vm_control(argc - 1, argv + 1);
}
