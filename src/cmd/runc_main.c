/* vessel-runc: the OCI runtime alone (runc's command line), built as its
 * own small executable so podman and containerd start a lean process: it
 * links only the OCI library, jansson, libseccomp and libcap, not the VMM.
 * `vessel oci ...` runs the same code from the full binary. */
#include <stdio.h>

#include "cmd/commands.h"

void cmd_print_error(const char *msg)
{
    fprintf(stderr, "vessel: %s\n", msg);
}

int main(int argc, char **argv)
{
    return cmd_oci(argc, argv);
}
