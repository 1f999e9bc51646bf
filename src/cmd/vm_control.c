#include <stdio.h>

#include "cmd/commands.h"

/* Placeholder until the control API lands (issue: snapshots). */
int cmd_vm_control(int argc, char **argv)
{
    fprintf(stderr, "vessel: 'vm %s' is not available in this build yet\n", argv[0]);
    return 2;
}
