/* vessel vm pause|resume|stop|info|snapshot: clients of a running VM's
 * control API. */
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "cmd/opt.h"
#include "util/cleanup.h"

static int print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
    return 0;
}

static json_t *snapshot_body(const char *dir, bool diff, bool disks)
{
    /* The VM resolves relative paths against its own directory: send an
     * absolute one. */
    char cwd[PATH_MAX], path[PATH_MAX * 2];
    if (dir[0] != '/' && getcwd(cwd, sizeof(cwd)))
        snprintf(path, sizeof(path), "%s/%s", cwd, dir);
    else
        snprintf(path, sizeof(path), "%s", dir);
    return json_pack("{s:s, s:s, s:b}", "path", path, "type", diff ? "diff" : "full", "disks",
                     disks);
}

int cmd_vm_api(int argc, char **argv)
{
    const char *verb = argv[0], *api_sock = NULL;
    bool diff = false, disks = false;
    bool snapshot = !strcmp(verb, "snapshot");
    const struct cmd_opt opts[] = {
        {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"diff", 0, CMD_OPT_FLAG, &diff},
        {"disk", 0, CMD_OPT_FLAG, &disks},
    };
    char vname[32], *pos[1];
    snprintf(vname, sizeof(vname), "vm %s", verb);
    struct cmd_optparse p = {.verb = vname,
                             .opts = opts,
                             .nopts = snapshot ? ARRAY_SIZE(opts) : 1,
                             .pos = pos,
                             .maxpos = snapshot ? 1 : 0};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        printf("usage: vessel vm %s --api-sock PATH%s\n", verb,
               snapshot ? " [--diff] [--disk] DIR" : "");
        return 0;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (!api_sock) {
        fprintf(stderr, "vessel: vm %s: --api-sock PATH is required\n", verb);
        return 1;
    }
    json_t *resp = NULL, *body = NULL;
    if (!strcmp(verb, "info")) {
        r = api_client_request(api_sock, "GET", "/vm", NULL, &resp, &err);
    } else if (snapshot) {
        if (!p.npos) {
            cmd_print_error("vm snapshot: a directory to write is required");
            return 1;
        }
        body = snapshot_body(pos[0], diff, disks);
        r = api_client_request(api_sock, "PUT", "/snapshot", body, &resp, &err);
        json_decref(body);
    } else {
        char path[32];
        snprintf(path, sizeof(path), "/vm/%s", verb);
        r = api_client_request(api_sock, "PUT", path, NULL, &resp, &err);
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    return print_json(resp);
}
