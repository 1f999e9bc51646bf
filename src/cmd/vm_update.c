/* vessel vm update --api-sock PATH [--balloon SIZE] [--balloon-stats SECONDS]:
 * change a running VM's resources (PATCH /vm) and print what it reports. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "cmd/opt.h"
#include "util/cleanup.h"
#include "util/parse.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel vm update --api-sock PATH [--balloon SIZE] "
               "[--balloon-stats SECONDS]\n\n"
               "  --balloon SIZE          the balloon's size: memory the guest gives back\n"
               "                          (0 gives it all back), e.g. 512M\n"
               "  --balloon-stats SECONDS how often the guest reports its memory statistics\n"
               "                          (0: never)\n");
}

static int build_body(const char *balloon, const char *stats, json_t **out, vs_err *err)
{
    json_t *body = json_object();
    uint64_t v;
    if (balloon || stats) {
        json_t *b = json_object();
        json_object_set_new(body, "balloon", b);
        if (balloon) {
            if (vs_parse_size(balloon, 1ULL << 20, &v, err) < 0) {
                json_decref(body);
                return vs_error_prefix(err, "--balloon: ");
            }
            json_object_set_new(b, "target_bytes", json_integer((json_int_t)v));
        }
        if (stats) {
            if (vs_parse_u64(stats, 0, 3600, &v, err) < 0) {
                json_decref(body);
                return vs_error_prefix(err, "--balloon-stats: ");
            }
            json_object_set_new(b, "stats_interval_s", json_integer((json_int_t)v));
        }
    }
    *out = body;
    return 0;
}

int cmd_vm_update(int argc, char **argv)
{
    const char *api_sock = NULL, *balloon = NULL, *stats = NULL;
    const struct cmd_opt opts[] = {
        {"api-sock", 0, CMD_OPT_STR, &api_sock},
        {"balloon", 0, CMD_OPT_STR, &balloon},
        {"balloon-stats", 0, CMD_OPT_STR, &stats},
    };
    char *pos[1];
    struct cmd_optparse p = {
        .verb = "vm update", .opts = opts, .nopts = ARRAY_SIZE(opts), .pos = pos, .maxpos = 0};
    vs_err err = {0};
    int r = cmd_opt_parse(&p, argc - 1, argv + 1, &err);
    if (r == CMD_OPT_HELP) {
        usage(stdout);
        return 0;
    }
    if (r < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (!api_sock) {
        cmd_print_error("vm update: --api-sock PATH is required");
        return 2;
    }
    json_t *body = NULL, *resp = NULL;
    if (build_body(balloon, stats, &body, &err) < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    if (json_object_size(body) == 0) {
        json_decref(body);
        cmd_print_error("vm update: nothing to change (see 'vessel vm update --help')");
        return 2;
    }
    r = api_client_request(api_sock, "PATCH", "/vm", body, &resp, &err);
    json_decref(body);
    if (r < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    char *s = json_dumps(resp, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(resp);
    return 0;
}
