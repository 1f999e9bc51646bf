/* vessel-runc events [--stats] [--interval D] ID */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/oci_cmd.h"
#include "oci/container.h"
#include "util/cleanup.h"

int oci_cmd_events(int argc, char **argv)
{
    bool stats = false;
    const char *interval = "5s";
    const struct cmd_opt opts[] = {{"stats", 0, CMD_OPT_FLAG, &stats},
                                   {"interval", 0, CMD_OPT_STR, &interval}};
    char *pos[1];
    int npos;
    if (oci_cmd_parse_id(argc, argv, opts, ARRAY_SIZE(opts), pos, 1, false, &npos))
        return 1;
    /* Go-style durations ("5s", "1m"; a bare number is seconds) */
    char *unit;
    double secs_f = strtod(interval, &unit);
    if (!strcmp(unit, "ms"))
        secs_f /= 1000;
    else if (!strcmp(unit, "m"))
        secs_f *= 60;
    else if (*unit && strcmp(unit, "s"))
        return oci_cmd_fail("events: --interval '%s': use e.g. 5s, 500ms or 1m", interval);
    int secs = secs_f < 1 ? 1 : (int)secs_f;
    vs_err err = {0};
    return oci_cmd_done(oci_events(oci_g.root, pos[0], stats, secs, stdout, &err), &err);
}
