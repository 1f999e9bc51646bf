#include <stdio.h>

#include "cmd/commands.h"

/* Placeholder until the OCI runtime lands. */
int cmd_oci(int argc, char **argv)
{
    fprintf(stderr, "vessel: the OCI runtime is not available in this build yet\n");
    return 2;
}
