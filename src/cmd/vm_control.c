/* vessel vm pause|resume|stop|info|snapshot (clients of a running VM's
 * control API) and vm restore|clone (start VMs from a snapshot). */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "snapshot/snapshot.h"
#include "util/parse.h"

static void usage(FILE *f)
{
    fprintf(f, "usage: vessel vm pause|resume|stop|info --api-sock PATH\n"
               "       vessel vm snapshot --api-sock PATH [--diff] [--disk] DIR\n"
               "       vessel vm restore DIR [--api-sock PATH] [--console stdio|none|file:PATH]\n"
               "                            [--overlay-dir DIR] [--arch x86_64|riscv64]\n"
               "                            [--vsock CID] [--clone-index N]\n"
               "       vessel vm clone DIR --count N [--dir OUTDIR]\n");
}

enum {
    O_API = 1,
    O_DIFF,
    O_DISKS,
    O_CONSOLE,
    O_OVERLAY,
    O_ARCH,
    O_VSOCK,
    O_CLONE_INDEX,
    O_COUNT,
    O_DIR
};

static const struct option opts[] = {
    {"api-sock", required_argument, 0, O_API},
    {"diff", no_argument, 0, O_DIFF},
    {"disk", no_argument, 0, O_DISKS},
    {"console", required_argument, 0, O_CONSOLE},
    {"overlay-dir", required_argument, 0, O_OVERLAY},
    {"arch", required_argument, 0, O_ARCH},
    {"vsock", required_argument, 0, O_VSOCK},
    {"clone-index", required_argument, 0, O_CLONE_INDEX},
    {"count", required_argument, 0, O_COUNT},
    {"dir", required_argument, 0, O_DIR},
    {"help", no_argument, 0, 'h'},
    {0, 0, 0, 0},
};

struct args {
    const char *api_sock, *console, *overlay_dir, *outdir, *target;
    bool diff, disks;
    int arch, clone_index;
    uint64_t count, vsock;
};

static int parse(int argc, char **argv, struct args *a, vs_err *err)
{
    memset(a, 0, sizeof(*a));
    a->arch = -1;
    a->clone_index = -1;
    optind = 1;
    opterr = 0;
    int c;
    uint64_t v;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case O_API:
            a->api_sock = optarg;
            break;
        case O_DIFF:
            a->diff = true;
            break;
        case O_DISKS:
            a->disks = true;
            break;
        case O_CONSOLE:
            a->console = optarg;
            break;
        case O_OVERLAY:
            a->overlay_dir = optarg;
            break;
        case O_DIR:
            a->outdir = optarg;
            break;
        case O_ARCH:
            if (strcmp(optarg, "x86_64") && strcmp(optarg, "riscv64"))
                return vs_error(err, EINVAL, "--arch: '%s' is not x86_64 or riscv64", optarg);
            a->arch = strcmp(optarg, "riscv64") ? VM_ARCH_X86_64 : VM_ARCH_RISCV64;
            break;
        case O_VSOCK:
            if (vs_parse_u64(optarg, 3, UINT32_MAX - 1, &a->vsock, err) < 0)
                return vs_error_prefix(err, "--vsock: ");
            break;
        case O_CLONE_INDEX:
            if (vs_parse_u64(optarg, 0, 65535, &v, err) < 0)
                return vs_error_prefix(err, "--clone-index: ");
            a->clone_index = (int)v;
            break;
        case O_COUNT:
            if (vs_parse_u64(optarg, 1, 4096, &a->count, err) < 0)
                return vs_error_prefix(err, "--count: ");
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            return vs_error(err, EINVAL, "vm %s: unknown or incomplete option '%s'", argv[0],
                            argv[optind - 1]);
        }
    }
    if (optind < argc)
        a->target = argv[optind++];
    if (optind < argc)
        return vs_error(err, EINVAL, "vm %s: unexpected argument '%s'", argv[0], argv[optind]);
    return 0;
}

static int print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);
    if (s)
        printf("%s\n", s);
    free(s);
    json_decref(j);
    return 0;
}

static int api_verb(const char *verb, struct args *a, vs_err *err)
{
    if (!a->api_sock)
        return vs_error(err, EINVAL, "vm %s: --api-sock PATH is required", verb);
    json_t *resp = NULL, *body = NULL;
    int rc;
    if (!strcmp(verb, "info")) {
        rc = api_client_request(a->api_sock, "GET", "/vm", NULL, &resp, err);
    } else if (!strcmp(verb, "snapshot")) {
        if (!a->target)
            return vs_error(err, EINVAL, "vm snapshot: a directory to write is required");
        /* The VM resolves relative paths against its own directory: send an
         * absolute one. */
        char cwd[PATH_MAX], path[PATH_MAX * 2];
        if (a->target[0] != '/' && getcwd(cwd, sizeof(cwd)))
            snprintf(path, sizeof(path), "%s/%s", cwd, a->target);
        else
            snprintf(path, sizeof(path), "%s", a->target);
        body = json_pack("{s:s, s:s, s:b}", "path", path, "type", a->diff ? "diff" : "full",
                         "disks", a->disks);
        rc = api_client_request(a->api_sock, "PUT", "/snapshot", body, &resp, err);
        json_decref(body);
    } else {
        char path[32];
        snprintf(path, sizeof(path), "/vm/%s", verb);
        rc = api_client_request(a->api_sock, "PUT", path, NULL, &resp, err);
    }
    if (rc < 0)
        return -1;
    return print_json(resp);
}

int cmd_vm_control(int argc, char **argv)
{
    const char *verb = argv[0];
    struct args a;
    vs_err err = {0};
    int p = parse(argc, argv, &a, &err);
    if (p > 0)
        return 0;
    if (p < 0) {
        cmd_print_error(err.msg);
        return 2;
    }
    int rc;
    if (!strcmp(verb, "pause") || !strcmp(verb, "resume") || !strcmp(verb, "stop") ||
        !strcmp(verb, "info") || !strcmp(verb, "snapshot")) {
        rc = api_verb(verb, &a, &err);
    } else if (!strcmp(verb, "restore")) {
        if (!a.target) {
            cmd_print_error("vm restore: a snapshot directory is required");
            return 2;
        }
        struct snapshot_restore_opts o = {.api_sock = a.api_sock,
                                          .console = a.console,
                                          .overlay_dir = a.overlay_dir,
                                          .expect_arch = a.arch,
                                          .clone_index = a.clone_index,
                                          .vsock_cid = (uint32_t)a.vsock};
        rc = snapshot_restore(a.target, &o, &err);
    } else if (!strcmp(verb, "clone")) {
        if (!a.target || !a.count) {
            cmd_print_error("vm clone: DIR and --count N are required");
            return 2;
        }
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (n <= 0) {
            cmd_print_error("vm clone: cannot find the vessel executable");
            return 1;
        }
        self[n] = 0;
        char outdir[PATH_MAX];
        snprintf(outdir, sizeof(outdir), "%s", a.outdir ? a.outdir : a.target);
        if (!a.outdir)
            strncat(outdir, "-clones", sizeof(outdir) - strlen(outdir) - 1);
        rc = snapshot_clone(a.target, (unsigned)a.count, outdir, self, &err);
    } else {
        fprintf(stderr, "vessel: 'vm %s' is not a vm verb\n", verb);
        usage(stderr);
        return 2;
    }
    if (rc < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    return rc;
}
