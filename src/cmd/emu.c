#include <stdio.h>

#include "cmd/commands.h"

/* Placeholder until user-mode emulation lands. */
int cmd_emu(int argc, char **argv)
{
    fprintf(stderr, "vessel: user-mode emulation is not available in this build yet\n");
    return 2;
}
