/* The daemon's client verbs, shaped like LXD's: launch, list, info,
 * start|stop|restart|pause|resume, delete, image import|list|delete|alias. They
 * only talk to vesseld's REST API (docs/daemon-api.md). */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "api/client.h"
#include "cmd/commands.h"
#include "util/unix_socket.h"

static const char *socket_path(void)
{
    const char *s = getenv("VESSEL_SOCKET");
    return s && s[0] ? s : "/run/vessel/vessel.sock";
}

/* One request to the daemon; prints the one-line error itself. */
static json_t *call(const char *method, const char *path, json_t *body)
{
    json_t *resp = NULL;
    vs_err err = {0};
    const char *sock = socket_path();
    if (api_client_request(sock, method, path, body, &resp, &err) < 0) {
        if (err.code == ECONNREFUSED || err.code == ENOENT) {
            fprintf(stderr,
                    "vessel: cannot reach vesseld at %s: is the daemon running? start it with "
                    "'vesseld &' (or scripts/quickstart.sh), or set VESSEL_SOCKET\n",
                    sock);
        } else {
            cmd_print_error(err.msg);
        }
        return NULL;
    }
    return resp;
}

static void split_ref(const char *ref, char *name, size_t n, const char **snap);

/* A path segment percent-encoded (RFC 3986 unreserved characters kept), so
 * a name can never add a query or another segment to the request. Returns
 * a static buffer per slot (two names may be needed in one URL). */
static const char *seg(const char *s, int slot)
{
    static char buf[2][3 * 256 + 1];
    char *o = buf[slot & 1];
    size_t n = 0;
    for (; *s && n + 3 < sizeof(buf[0]); s++) {
        unsigned char c = (unsigned char)*s;
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
            c == '-' || c == '.' || c == '_' || c == '~')
            o[n++] = (char)c;
        else
            n += (size_t)sprintf(o + n, "%%%02X", c);
    }
    o[n] = 0;
    return o;
}

enum format { FMT_TABLE, FMT_JSON, FMT_CSV, FMT_YAML };

static int parse_format(const char *s, enum format *f)
{
    static const char *const names[] = {"table", "json", "csv", "yaml"};
    for (int i = 0; i < 4; i++)
        if (!strcmp(s, names[i])) {
            *f = (enum format)i;
            return 0;
        }
    fprintf(stderr, "vessel: unknown --format '%s' (table, json, csv, yaml)\n", s);
    return -1;
}

static const char *field(json_t *o, const char *key, char *buf, size_t n)
{
    json_t *v = json_object_get(o, key);
    if (json_is_string(v))
        return json_string_value(v);
    if (json_is_integer(v)) {
        snprintf(buf, n, "%lld", (long long)json_integer_value(v));
        return buf;
    }
    return "";
}

/* Rows of objects as a table (for people), CSV, YAML or JSON (for scripts). */
static void print_rows(json_t *rows, const char *const *cols, const char *const *heads,
                       size_t ncols, enum format f)
{
    if (f == FMT_JSON) {
        json_dumpf(rows, stdout, JSON_INDENT(2));
        putchar('\n');
        return;
    }
    size_t width[16] = {0}, i;
    json_t *r;
    char buf[64];
    for (size_t c = 0; c < ncols; c++)
        width[c] = strlen(heads[c]);
    json_array_foreach(rows, i, r) for (size_t c = 0; c < ncols; c++)
    {
        size_t w = strlen(field(r, cols[c], buf, sizeof(buf)));
        if (w > width[c])
            width[c] = w;
    }
    if (f == FMT_TABLE) {
        for (size_t c = 0; c < ncols; c++)
            printf("%-*s%s", (int)width[c], heads[c], c + 1 < ncols ? "  " : "\n");
    } else if (f == FMT_CSV) {
        for (size_t c = 0; c < ncols; c++)
            printf("%s%s", cols[c], c + 1 < ncols ? "," : "\n");
    }
    json_array_foreach(rows, i, r)
    {
        for (size_t c = 0; c < ncols; c++) {
            const char *v = field(r, cols[c], buf, sizeof(buf));
            if (f == FMT_TABLE)
                printf("%-*s%s", (int)width[c], v, c + 1 < ncols ? "  " : "\n");
            else if (f == FMT_CSV)
                printf("%s%s", v, c + 1 < ncols ? "," : "\n");
            else
                printf("%s%s: \"%s\"\n", c ? "  " : "- ", cols[c], v);
        }
    }
}

static int need_args(int argc, int want, const char *usage)
{
    if (argc < want) {
        fprintf(stderr, "usage: vessel %s\n", usage);
        return -1;
    }
    return 0;
}

int cmd_launch(int argc, char **argv)
{
    static const struct option opts[] = {
        {"vm", no_argument, 0, 'v'},         {"container", no_argument, 0, 'C'},
        {"arch", required_argument, 0, 'a'}, {"config", required_argument, 0, 'c'},
        {"no-start", no_argument, 0, 'n'},   {"target", required_argument, 0, 't'},
        {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    const char *usage = "launch IMAGE NAME [--vm|--container] [--arch x86_64|riscv64] "
                        "[-c KEY=VALUE]... [--no-start] [--target HOST|auto]";
    json_t *req = json_object(), *config = json_object();
    json_object_set_new(req, "config", config);
    int c, rc = 1;
    optind = 1;
    while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
        switch (c) {
        case 'v':
            json_object_set_new(req, "type", json_string("vm"));
            break;
        case 'C':
            json_object_set_new(req, "type", json_string("container"));
            break;
        case 'a':
            json_object_set_new(req, "arch", json_string(optarg));
            break;
        case 'n':
            json_object_set_new(req, "start", json_false());
            break;
        case 't': /* a cluster host (docs/cluster.md) */
            json_object_set_new(req, "target", json_string(optarg));
            break;
        case 'c': {
            char *eq = strchr(optarg, '=');
            if (!eq || eq == optarg) {
                fprintf(stderr, "vessel: -c %s: expected KEY=VALUE\n", optarg);
                goto out;
            }
            *eq = 0;
            json_object_set_new(config, optarg, json_string(eq + 1));
            break;
        }
        case 'h':
            printf("usage: vessel %s\n", usage);
            rc = 0;
            goto out;
        default:
            goto out;
        }
    }
    if (argc - optind != 2) {
        fprintf(stderr, "usage: vessel %s\n", usage);
        goto out;
    }
    json_object_set_new(req, "image", json_string(argv[optind]));
    json_object_set_new(req, "name", json_string(argv[optind + 1]));
    json_t *resp = call("POST", "/1.0/instances", req);
    if (resp) {
        printf("%s %s: %s\n", json_string_value(json_object_get(resp, "type")), argv[optind + 1],
               json_string_value(json_object_get(resp, "state")));
        json_decref(resp);
        rc = 0;
    }
out:
    json_decref(req);
    return rc;
}

static int format_option(int argc, char **argv, enum format *f)
{
    static const struct option opts[] = {{"format", required_argument, 0, 'f'}, {0, 0, 0, 0}};
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f:", opts, NULL)) != -1) {
        if (c != 'f' || parse_format(optarg, f) < 0)
            return -1;
    }
    return 0;
}

int cmd_list(int argc, char **argv)
{
    enum format f = FMT_TABLE;
    if (format_option(argc, argv, &f) < 0)
        return 2;
    json_t *list = call("GET", "/1.0/instances", NULL);
    if (!list)
        return 1;
    static const char *const cols[] = {"name", "state", "type",  "arch",
                                       "ipv4", "pid",   "image", "location"};
    static const char *const heads[] = {"NAME", "STATE", "TYPE",  "ARCH",
                                        "IPV4", "PID",   "IMAGE", "LOCATION"};
    /* a short fingerprint reads better in a table */
    size_t i;
    json_t *r;
    bool clustered = false, stale = false;
    json_array_foreach(list, i, r)
    {
        const char *loc = json_string_value(json_object_get(r, "location"));
        clustered |= loc && strcmp(loc, "local");
        stale |= json_is_true(json_object_get(r, "stale"));
    }
    json_array_foreach(list, i, r)
    {
        /* the address on the managed network, while it is in use */
        const char *ip =
            json_string_value(json_object_get(json_object_get(r, "config"), "volatile.ipv4"));
        const char *st = json_string_value(json_object_get(r, "state"));
        if (f != FMT_JSON)
            json_object_set_new(r, "ipv4",
                                json_string(ip && st && strcmp(st, "stopped") ? ip : ""));
        const char *img = json_string_value(json_object_get(r, "image"));
        if (f == FMT_TABLE && img && strlen(img) > 12) {
            json_object_set_new(r, "image", json_stringn(img, 12));
        }
    }
    /* the hosts of a cluster: a LOCATION column */
    print_rows(list, cols, heads, clustered ? 8 : 7, f);
    if (stale)
        fprintf(stderr, "vessel: warning: the cluster store (etcd) has no quorum: this list may "
                        "be stale\n");
    json_decref(list);
    return 0;
}

int cmd_info(int argc, char **argv)
{
    if (need_args(argc, 2, "info NAME") < 0)
        return 2;
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s", seg(argv[1], 0));
    json_t *j = call("GET", path, NULL);
    if (!j)
        return 1;
    json_dumpf(j, stdout, JSON_INDENT(2));
    putchar('\n');
    json_decref(j);
    return 0;
}

/* start|stop|restart|pause|resume NAME [--force] [--timeout S] */
int cmd_instance_state(int argc, char **argv)
{
    static const struct option opts[] = {
        {"force", no_argument, 0, 'f'}, {"timeout", required_argument, 0, 't'}, {0, 0, 0, 0}};
    const char *action = argv[0];
    json_t *req = json_pack("{s:s}", "action", action);
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "f", opts, NULL)) != -1) {
        if (c == 'f') {
            json_object_set_new(req, "force", json_true());
        } else if (c == 't') {
            char *end;
            long t = strtol(optarg, &end, 10);
            if (*end || t < 0 || t > 3600) {
                fprintf(stderr, "vessel: --timeout %s: seconds, 0..3600\n", optarg);
                json_decref(req);
                return 2;
            }
            json_object_set_new(req, "timeout", json_integer(t));
        } else {
            json_decref(req);
            return 2;
        }
    }
    if (argc - optind < 1) {
        fprintf(stderr, "usage: vessel %s NAME... [--force] [--timeout SECONDS]\n", action);
        json_decref(req);
        return 2;
    }
    int rc = 0;
    for (int i = optind; i < argc; i++) {
        char path[512];
        snprintf(path, sizeof(path), "/1.0/instances/%s/state", seg(argv[i], 0));
        json_t *resp = call("PUT", path, req);
        if (!resp)
            rc = 1;
        json_decref(resp);
    }
    json_decref(req);
    return rc;
}

int cmd_delete(int argc, char **argv)
{
    bool force = false;
    int n = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--force") || !strcmp(argv[i], "-f"))
            force = true;
        else
            argv[++n] = argv[i];
    }
    if (n == 0) {
        fprintf(stderr, "usage: vessel delete NAME... [--force]\n");
        return 2;
    }
    int rc = 0;
    for (int i = 1; i <= n; i++) {
        char path[512];
        char name[256];
        const char *snap;
        split_ref(argv[i], name, sizeof(name), &snap);
        if (snap)
            snprintf(path, sizeof(path), "/1.0/instances/%s/snapshots/%s", seg(name, 0),
                     seg(snap, 1));
        else
            snprintf(path, sizeof(path), "/1.0/instances/%s%s", seg(argv[i], 0),
                     force ? "?force=1" : "");
        json_t *resp = call("DELETE", path, NULL);
        if (!resp)
            rc = 1;
        json_decref(resp);
    }
    return rc;
}

/* Follow an operation to its end, with a progress line on a terminal. */
static json_t *wait_operation(json_t *op)
{
    const char *id = json_string_value(json_object_get(op, "id"));
    char path[256];
    bool tty = isatty(1);
    for (;;) {
        snprintf(path, sizeof(path), "/1.0/operations/%s/wait?timeout=%d", id, tty ? 1 : 600);
        json_t *now = call("GET", path, NULL);
        if (!now)
            return NULL;
        const char *status = json_string_value(json_object_get(now, "status"));
        if (tty) {
            json_t *p = json_object_get(now, "progress");
            json_t *pct = json_object_get(p, "percent");
            if (pct)
                fprintf(stderr, "\r%s: %3lld%% (%lld MiB)",
                        json_string_value(json_object_get(now, "kind")),
                        (long long)json_integer_value(pct),
                        (long long)json_integer_value(json_object_get(p, "bytes")) >> 20);
        }
        if (status && strcmp(status, "running")) {
            if (tty)
                fputc('\n', stderr);
            return now;
        }
        json_decref(now);
    }
}

static int image_import(int argc, char **argv)
{
    static const struct option opts[] = {
        {"alias", required_argument, 0, 'a'},  {"vm", no_argument, 0, 'v'},
        {"arch", required_argument, 0, 'A'},   {"kernel", required_argument, 0, 'k'},
        {"initrd", required_argument, 0, 'i'}, {"disk", required_argument, 0, 'D'},
        {"default", no_argument, 0, 'd'},      {0, 0, 0, 0}};
    json_t *req = json_pack("{s:s}", "type", "container");
    int c;
    optind = 1;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'a':
            json_object_set_new(req, "alias", json_string(optarg));
            break;
        case 'v':
            json_object_set_new(req, "type", json_string("vm"));
            break;
        case 'A':
            json_object_set_new(req, "arch", json_string(optarg));
            break;
        case 'k':
        case 'i':
        case 'D': {
            char *abs = realpath(optarg, NULL);
            json_object_set_new(req,
                                c == 'k'   ? "kernel"
                                : c == 'i' ? "initrd"
                                           : "disk",
                                json_string(abs ? abs : optarg));
            json_object_set_new(req, "type", json_string("vm"));
            free(abs);
            break;
        }
        case 'd':
            json_object_set_new(req, "type", json_string("vm"));
            json_object_set_new(req, "source", json_string("default"));
            break;
        default:
            json_decref(req);
            return 2;
        }
    }
    if (optind < argc) {
        char *abs = realpath(argv[optind], NULL);
        json_object_set_new(req, "source", json_string(abs ? abs : argv[optind]));
        free(abs);
    }
    if (!json_object_get(req, "source") && !json_object_get(req, "kernel")) {
        fprintf(stderr,
                "usage: vessel image import TARBALL [--alias A]\n"
                "       vessel image import --vm --kernel K [--initrd I] [--disk D] [--arch A] "
                "[--alias A]\n"
                "       vessel image import --default [--arch x86_64|riscv64] "
                "[--alias A]\n");
        json_decref(req);
        return 2;
    }
    json_t *op = call("POST", "/1.0/images", req);
    json_decref(req);
    if (!op)
        return 1;
    json_t *done = wait_operation(op);
    json_decref(op);
    if (!done)
        return 1;
    int rc = 0;
    if (strcmp(json_string_value(json_object_get(done, "status")), "success")) {
        const char *e = json_string_value(json_object_get(done, "error"));
        cmd_print_error(e ? e : "the import failed");
        rc = 1;
    } else {
        json_t *img = json_object_get(done, "result");
        const char *alias = json_string_value(json_object_get(img, "alias"));
        printf("image %.12s imported%s%s\n", json_string_value(json_object_get(img, "fingerprint")),
               alias ? " as " : "", alias ? alias : "");
    }
    json_decref(done);
    return rc;
}

/* image alias create ALIAS IMAGE | delete ALIAS | list (as lxc image alias) */
static int image_alias(int argc, char **argv)
{
    const char *usage = "image alias create ALIAS IMAGE | delete ALIAS | list";
    if (argc == 2 && !strcmp(argv[1], "list")) {
        json_t *list = call("GET", "/1.0/images", NULL), *img, *rows = json_array();
        if (!list)
            return 1;
        size_t i;
        json_array_foreach(list, i, img) if (json_is_string(json_object_get(img, "alias")))
            json_array_append(rows, img);
        static const char *const cols[] = {"alias", "fingerprint", "type"};
        static const char *const heads[] = {"ALIAS", "FINGERPRINT", "TYPE"};
        print_rows(rows, cols, heads, 3, FMT_TABLE);
        json_decref(rows);
        json_decref(list);
        return 0;
    }
    bool create = argc == 4 && !strcmp(argv[1], "create");
    if (!create && !(argc == 3 && !strcmp(argv[1], "delete"))) {
        fprintf(stderr, "usage: vessel %s\n", usage);
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/images/%s", seg(create ? argv[3] : argv[2], 0));
    json_t *body = json_pack("{s:o}", "alias", create ? json_string(argv[2]) : json_null());
    json_t *resp = call("PATCH", path, body);
    json_decref(body);
    json_decref(resp);
    return resp ? 0 : 1;
}

int cmd_image(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: vessel image import|list|delete|alias ...\n");
        return 2;
    }
    if (!strcmp(argv[1], "import"))
        return image_import(argc - 1, argv + 1);
    if (!strcmp(argv[1], "list")) {
        enum format f = FMT_TABLE;
        if (format_option(argc - 1, argv + 1, &f) < 0)
            return 2;
        json_t *list = call("GET", "/1.0/images", NULL);
        if (!list)
            return 1;
        static const char *const cols[] = {"alias", "fingerprint", "type", "arch", "size", "state"};
        static const char *const heads[] = {"ALIAS", "FINGERPRINT", "TYPE",
                                            "ARCH",  "SIZE",        "STATE"};
        print_rows(list, cols, heads, 6, f);
        json_decref(list);
        return 0;
    }
    if (!strcmp(argv[1], "delete")) {
        if (need_args(argc, 3, "image delete ALIAS|FINGERPRINT") < 0)
            return 2;
        char path[512];
        snprintf(path, sizeof(path), "/1.0/images/%s", seg(argv[2], 0));
        json_t *resp = call("DELETE", path, NULL);
        json_decref(resp);
        return resp ? 0 : 1;
    }
    if (!strcmp(argv[1], "alias"))
        return image_alias(argc - 1, argv + 1);
    fprintf(stderr, "vessel: unknown image verb '%s' (import, list, delete, alias)\n", argv[1]);
    return 2;
}

/* Hand our stdin/stdout/stderr to the daemon's exec socket and wait for the
 * command's exit status; a terminal is put in raw mode while -t runs. */
static int exec_over_socket(const char *path, bool tty)
{
    vs_err err = {0};
    int s = vs_unix_connect(path, &err);
    if (s < 0) {
        cmd_print_error(err.msg);
        return 1;
    }
    char byte = tty ? 't' : '-';
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } u;
    memset(&u, 0, sizeof(u));
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    struct cmsghdr *c = CMSG_FIRSTHDR(&m);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    int fds[3] = {0, 1, 2};
    memcpy(CMSG_DATA(c), fds, sizeof(fds));
    struct termios saved;
    bool raw = tty && tcgetattr(0, &saved) == 0;
    if (sendmsg(s, &m, MSG_NOSIGNAL) != 1) {
        fprintf(stderr, "vessel: exec: %s\n", strerror(errno));
        close(s);
        return 1;
    }
    if (raw) {
        struct termios r = saved;
        cfmakeraw(&r);
        tcsetattr(0, TCSANOW, &r);
    }
    int32_t status;
    ssize_t n;
    do
        n = read(s, &status, sizeof(status));
    while (n < 0 && errno == EINTR);
    if (raw)
        tcsetattr(0, TCSANOW, &saved);
    close(s);
    if (n != sizeof(status)) {
        fprintf(stderr, "vessel: exec: the daemon ended the command without an exit status\n");
        return 1;
    }
    return status;
}

/* One of exec's flags at argv[*i] (taking its value): 1 taken, 0 not a
 * flag of exec's, -1 a bad one (said). */
static int exec_flag(int argc, char **argv, int *i, bool *tty, json_t *req)
{
    const char *a = argv[*i];
    if (!strcmp(a, "-t") || !strcmp(a, "--tty")) {
        *tty = true;
        return 1;
    }
    const char *flags[] = {"--cwd", "--user", "--env"};
    for (size_t f = 0; f < 3; f++) {
        size_t l = strlen(flags[f]);
        const char *v;
        if (!strncmp(a, flags[f], l) && a[l] == '=')
            v = a + l + 1;
        else if (!strcmp(a, flags[f]) && *i + 1 < argc)
            v = argv[++*i];
        else
            continue;
        if (f == 0) {
            json_object_set_new(req, "cwd", json_string(v));
        } else if (f == 1) {
            /* UID[:GID], numeric as LXD's --user and --group */
            char *end;
            errno = 0;
            unsigned long long uid = strtoull(v, &end, 10), gid = 0;
            bool ok = end != v && errno == 0 && uid < 0xffffffffULL;
            if (ok && *end == ':') {
                const char *g = end + 1;
                gid = strtoull(g, &end, 10);
                ok = end != g && errno == 0 && gid < 0xffffffffULL;
            }
            if (!ok || *end) {
                fprintf(stderr, "vessel: exec: --user '%s': expected UID[:GID] (numbers)\n", v);
                return -1;
            }
            json_object_set_new(req, "user", json_integer((json_int_t)uid));
            json_object_set_new(req, "group", json_integer((json_int_t)gid));
        } else {
            const char *eq = strchr(v, '=');
            if (!eq || eq == v) {
                fprintf(stderr, "vessel: exec: --env '%s': expected NAME=VALUE\n", v);
                return -1;
            }
            json_t *env = json_object_get(req, "environment");
            if (!env)
                json_object_set_new(req, "environment", env = json_object());
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)(eq - v), v);
            json_object_set_new(env, name, json_string(eq + 1));
        }
        return 1;
    }
    return 0;
}

int cmd_exec(int argc, char **argv)
{
    static const char usage[] = "usage: vessel exec NAME [-t] [--cwd DIR] [--user UID[:GID]] "
                                "[--env NAME=VALUE]... [--] COMMAND [ARGS...]\n";
    bool tty = false;
    json_t *req = json_object();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--"))
            break;
        int r = exec_flag(argc, argv, &i, &tty, req);
        if (r <= 0) {
            if (r == 0)
                fprintf(stderr, "vessel: exec: unknown flag '%s'\n", argv[i]);
            json_decref(req);
            return 2;
        }
    }
    /* NAME [--] CMD... (flags may also come after the name) */
    if (i >= argc || !strcmp(argv[i], "--")) {
        fputs(usage, stderr);
        json_decref(req);
        return 2;
    }
    const char *name = argv[i++];
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "--")) {
            i++;
            break;
        }
        int r = exec_flag(argc, argv, &i, &tty, req);
        if (r < 0) {
            json_decref(req);
            return 2;
        }
        if (r == 0)
            break;
    }
    if (i >= argc) {
        fputs(usage, stderr);
        json_decref(req);
        return 2;
    }
    json_t *cmd = json_array();
    for (; i < argc; i++)
        json_array_append_new(cmd, json_string(argv[i]));
    json_object_set_new(req, "command", cmd);
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s/exec", seg(name, 0));
    json_t *resp = call("POST", path, req);
    json_decref(req);
    if (!resp)
        return 1;
    const char *sock = json_string_value(json_object_get(resp, "socket"));
    int rc = sock ? exec_over_socket(sock, tty && isatty(0)) : 1;
    if (!sock && json_is_integer(json_object_get(resp, "exit_code"))) {
        /* another cluster host's instance: its output came recorded */
        const char *out = json_string_value(json_object_get(resp, "stdout"));
        const char *errs = json_string_value(json_object_get(resp, "stderr"));
        fputs(out ? out : "", stdout);
        fputs(errs ? errs : "", stderr);
        rc = (int)json_integer_value(json_object_get(resp, "exit_code"));
    }
    json_decref(resp);
    return rc;
}

/* An operation's end: its result, or its error printed once. */
static json_t *operation_result(json_t *op)
{
    if (!op)
        return NULL;
    json_t *done = wait_operation(op);
    json_decref(op);
    if (!done)
        return NULL;
    if (strcmp(json_string_value(json_object_get(done, "status")), "success")) {
        const char *e = json_string_value(json_object_get(done, "error"));
        cmd_print_error(e ? e : "the operation failed");
        json_decref(done);
        return NULL;
    }
    json_t *r = json_incref(json_object_get(done, "result"));
    json_decref(done);
    return r;
}

/* "NAME/SNAP" into its parts (snap NULL without a '/'). */
static void split_ref(const char *ref, char *name, size_t n, const char **snap)
{
    snprintf(name, n, "%s", ref);
    char *slash = strchr(name, '/');
    *snap = NULL;
    if (slash) {
        *slash = 0;
        *snap = ref + (slash - name) + 1;
    }
}

int cmd_snapshot(int argc, char **argv)
{
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: vessel snapshot NAME [SNAPSHOT]\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s/snapshots", seg(argv[1], 0));
    json_t *req = argc == 3 ? json_pack("{s:s}", "name", argv[2]) : json_object();
    json_t *snap = operation_result(call("POST", path, req));
    json_decref(req);
    if (!snap)
        return 1;
    printf("snapshot %s/%s%s\n", argv[1], json_string_value(json_object_get(snap, "name")),
           json_integer_value(json_object_get(snap, "stateful")) ? " (with the running state)"
                                                                 : "");
    json_decref(snap);
    return 0;
}

int cmd_restore(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vessel restore NAME SNAPSHOT\n");
        return 2;
    }
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s/snapshots/%s/restore", seg(argv[1], 0),
             seg(argv[2], 1));
    json_t *resp = call("POST", path, NULL);
    json_decref(resp);
    return resp ? 0 : 1;
}

int cmd_copy(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: vessel copy SOURCE[/SNAPSHOT] NAME\n");
        return 2;
    }
    char src[256], path[512];
    const char *snap;
    split_ref(argv[1], src, sizeof(src), &snap);
    snprintf(path, sizeof(path), "/1.0/instances/%s/copy", seg(src, 0));
    json_t *req = json_pack("{s:s, s:s?}", "name", argv[2], "snapshot", snap);
    json_t *inst = operation_result(call("POST", path, req));
    json_decref(req);
    if (!inst)
        return 1;
    printf("%s %s: copied from %s\n", json_string_value(json_object_get(inst, "type")), argv[2],
           argv[1]);
    json_decref(inst);
    return 0;
}

int cmd_publish(int argc, char **argv)
{
    const char *alias = NULL, *ref = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--alias") && i + 1 < argc)
            alias = argv[++i];
        else if (!strncmp(argv[i], "--alias=", 8))
            alias = argv[i] + 8;
        else if (!ref && argv[i][0] != '-')
            ref = argv[i];
        else {
            fprintf(stderr, "vessel: publish: unexpected '%s'\n", argv[i]);
            return 2;
        }
    }
    if (!ref) {
        fprintf(stderr, "usage: vessel publish NAME[/SNAPSHOT] [--alias ALIAS]\n");
        return 2;
    }
    char name[256], path[512];
    const char *snap;
    split_ref(ref, name, sizeof(name), &snap);
    snprintf(path, sizeof(path), "/1.0/instances/%s/publish", seg(name, 0));
    json_t *req = json_pack("{s:s?, s:s?}", "alias", alias, "snapshot", snap);
    json_t *img = operation_result(call("POST", path, req));
    json_decref(req);
    if (!img)
        return 1;
    printf("image %.12s published from %s%s%s\n",
           json_string_value(json_object_get(img, "fingerprint")), ref, alias ? " as " : "",
           alias ? alias : "");
    json_decref(img);
    return 0;
}

/* config set NAME KEY=VALUE... | unset NAME KEY... | get NAME KEY | show NAME */
int cmd_config(int argc, char **argv)
{
    const char *usage = "usage: vessel config set NAME KEY=VALUE... | unset NAME KEY... | "
                        "get NAME KEY | show NAME\n";
    if (argc < 3) {
        fputs(usage, stderr);
        return 2;
    }
    const char *verb = argv[1], *name = argv[2];
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s", seg(name, 0));
    if (!strcmp(verb, "show") || !strcmp(verb, "get")) {
        if ((!strcmp(verb, "get") && argc != 4) || (!strcmp(verb, "show") && argc != 3)) {
            fputs(usage, stderr);
            return 2;
        }
        json_t *inst = call("GET", path, NULL);
        if (!inst)
            return 1;
        json_t *config = json_object_get(inst, "config");
        int rc = 0;
        if (!strcmp(verb, "get")) {
            const char *v = json_string_value(json_object_get(config, argv[3]));
            if (v)
                printf("%s\n", v);
        } else {
            const char *k;
            json_t *v;
            json_t *when = json_object_get(inst, "config_applies");
            json_object_foreach(config, k, v)
            {
                if (strncmp(k, "volatile.", 9))
                    printf("%s=%s\t(%s)\n", k, json_string_value(v),
                           json_string_value(json_object_get(when, k)));
            }
        }
        json_decref(inst);
        return rc;
    }
    bool set = !strcmp(verb, "set");
    if (!set && strcmp(verb, "unset")) {
        fprintf(stderr, "vessel: config: unknown verb '%s'\n%s", verb, usage);
        return 2;
    }
    if (argc < 4) {
        fputs(usage, stderr);
        return 2;
    }
    json_t *changes = json_object();
    for (int i = 3; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (set && (!eq || eq == argv[i])) {
            fprintf(stderr, "vessel: config set: '%s' is not KEY=VALUE\n", argv[i]);
            json_decref(changes);
            return 2;
        }
        if (set) {
            *eq = 0;
            json_object_set_new(changes, argv[i], json_string(eq + 1));
        } else {
            json_object_set_new(changes, argv[i], json_null());
        }
    }
    snprintf(path, sizeof(path), "/1.0/instances/%s/config", seg(name, 0));
    json_t *resp = call("PUT", path, changes);
    json_decref(changes);
    if (!resp)
        return 1;
    const char *k;
    json_t *v;
    json_object_foreach(json_object_get(resp, "applied"), k, v)
        printf("%s: %s\n", k,
               strcmp(json_string_value(v), "live") ? "applies at the next start" : "applied now");
    json_decref(resp);
    return 0;
}

/* monitor [--type T[,T]] [--format json|pretty]: the daemon's events as they
 * happen. A plain HTTP/1.0 GET, so the body is the stream until either side
 * closes (libcurl's easy interface would want the whole body first). */
int cmd_monitor(int argc, char **argv)
{
    const char *types = NULL;
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--type") && i + 1 < argc)
            types = argv[++i];
        else if (!strcmp(argv[i], "--format") && i + 1 < argc)
            json = !strcmp(argv[++i], "json");
        else {
            fprintf(stderr, "usage: vessel monitor [--type instance,image,operation,snapshot] "
                            "[--format json|pretty]\n");
            return 2;
        }
    }
    vs_err err = {0};
    int s = vs_unix_connect(socket_path(), &err);
    if (s < 0) {
        fprintf(stderr,
                "vessel: cannot reach vesseld at %s: is the daemon running? start it with "
                "'vesseld &' (or scripts/quickstart.sh), or set VESSEL_SOCKET\n",
                socket_path());
        return 1;
    }
    FILE *f = fdopen(s, "r+");
    if (!f) {
        close(s);
        return 1;
    }
    fprintf(f, "GET /1.0/events%s%s HTTP/1.0\r\nHost: vessel\r\n\r\n", types ? "?type=" : "",
            types ? types : "");
    fflush(f);
    char line[65536];
    bool body = false;
    setvbuf(stdout, NULL, _IOLBF, 0);
    while (fgets(line, sizeof(line), f)) {
        if (!body) {
            if (!strncmp(line, "HTTP/", 5) && !strstr(line, " 200 ")) {
                fprintf(stderr, "vessel: monitor: %s", line);
                fclose(f);
                return 1;
            }
            body = !strcmp(line, "\r\n");
            continue;
        }
        if (line[0] == '\n')
            continue; /* the daemon's keep-alive */
        if (json) {
            fputs(line, stdout);
            continue;
        }
        json_t *e = json_loads(line, 0, NULL);
        if (!e)
            continue;
        time_t t = (time_t)(json_integer_value(json_object_get(e, "timestamp")) / 1000);
        char when[32];
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&t));
        char *meta = json_object_get(e, "metadata")
                         ? json_dumps(json_object_get(e, "metadata"), JSON_COMPACT)
                         : NULL;
        printf("%s  %-9s %-14s %s%s%s\n", when, json_string_value(json_object_get(e, "type")),
               json_string_value(json_object_get(e, "action"))
                   ? json_string_value(json_object_get(e, "action"))
                   : "",
               json_string_value(json_object_get(e, "target"))
                   ? json_string_value(json_object_get(e, "target"))
                   : "",
               meta ? "  " : "", meta ? meta : "");
        free(meta);
        json_decref(e);
    }
    fclose(f);
    return 0;
}

/* trust add CERT.pem [--name N] | list | remove FINGERPRINT */
int cmd_trust(int argc, char **argv)
{
    const char *usage =
        "usage: vessel trust add CERT.pem [--name NAME] | list | remove FINGERPRINT\n";
    if (argc < 2) {
        fputs(usage, stderr);
        return 2;
    }
    if (!strcmp(argv[1], "list") && argc == 2) {
        json_t *list = call("GET", "/1.0/certificates", NULL);
        if (!list)
            return 1;
        size_t i;
        json_t *v;
        json_array_foreach(list, i, v) printf("%s\n", json_string_value(v));
        json_decref(list);
        return 0;
    }
    if (!strcmp(argv[1], "remove") && argc == 3) {
        char path[256];
        snprintf(path, sizeof(path), "/1.0/certificates/%s", seg(argv[2], 0));
        json_t *r = call("DELETE", path, NULL);
        json_decref(r);
        return r ? 0 : 1;
    }
    if (!strcmp(argv[1], "add") && (argc == 3 || (argc == 5 && !strcmp(argv[3], "--name")))) {
        FILE *f = fopen(argv[2], "re");
        if (!f) {
            fprintf(stderr, "vessel: trust add: %s: %s\n", argv[2], strerror(errno));
            return 1;
        }
        char pem[65536];
        size_t n = fread(pem, 1, sizeof(pem) - 1, f);
        fclose(f);
        pem[n] = 0;
        json_t *req =
            json_pack("{s:s, s:s?}", "certificate", pem, "name", argc == 5 ? argv[4] : NULL);
        json_t *r = call("POST", "/1.0/certificates", req);
        json_decref(req);
        if (!r)
            return 1;
        printf("trusted %s\n", json_string_value(json_object_get(r, "fingerprint")));
        json_decref(r);
        return 0;
    }
    fputs(usage, stderr);
    return 2;
}

/* The console log from the start: everything, or followed as it grows. */
static int console_show_log(const char *name, bool follow)
{
    long long off = 0;
    for (;;) {
        char path[512];
        snprintf(path, sizeof(path), "/1.0/instances/%s/console?offset=%lld", seg(name, 0), off);
        json_t *r = call("GET", path, NULL);
        if (!r)
            return 1;
        fputs(json_string_value(json_object_get(r, "log")), stdout);
        fflush(stdout);
        long long end = json_integer_value(json_object_get(r, "end"));
        json_decref(r);
        if (!follow)
            return 0;
        if (end == off) {
            struct timespec ts = {0, 200 * 1000000L};
            nanosleep(&ts, NULL);
        }
        off = end;
    }
}

/* The console connection the daemon hands over on its one-shot socket. */
static int console_receive(const char *path)
{
    vs_err err = {0};
    int s = vs_unix_connect(path, &err);
    if (s < 0) {
        cmd_print_error(err.msg);
        return -1;
    }
    char byte;
    struct iovec iov = {&byte, 1};
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct msghdr m = {
        .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof(u.buf)};
    ssize_t n;
    do
        n = recvmsg(s, &m, MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    close(s);
    struct cmsghdr *c = n == 1 ? CMSG_FIRSTHDR(&m) : NULL;
    if (!c || c->cmsg_type != SCM_RIGHTS || c->cmsg_len != CMSG_LEN(sizeof(int))) {
        cmd_print_error("console: the daemon did not hand over the console");
        return -1;
    }
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(fd));
    return fd;
}

static bool write_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = write(fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return false;
        buf += n;
        len -= (size_t)n;
    }
    return true;
}

#define CONSOLE_ESCAPE 0x01 /* Ctrl-A */

/* Relay the terminal and the console until the detach key (Ctrl-A q), the
 * end of stdin or the console's end. Ctrl-A Ctrl-A sends one Ctrl-A. */
static int console_relay(int con)
{
    struct termios saved;
    bool raw = isatty(0) && tcgetattr(0, &saved) == 0;
    if (raw) {
        struct termios r = saved;
        cfmakeraw(&r);
        tcsetattr(0, TCSANOW, &r);
        fprintf(stderr, "To detach from the console, press: <ctrl>+a q\r\n");
    }
    bool escape = false, stdin_open = true;
    int rc = 0;
    char buf[4096], out[8192];
    for (;;) {
        struct pollfd p[2] = {{.fd = stdin_open ? 0 : -1, .events = POLLIN},
                              {.fd = con, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents) {
            ssize_t n = read(con, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                /* the VM or the container ended, or another client took over */
                if (raw)
                    tcsetattr(0, TCSANOW, &saved);
                raw = false;
                fprintf(stderr, "\nvessel: console: the console was closed\n");
                rc = 1;
                break;
            }
            if (!write_all(1, buf, (size_t)n))
                break;
        }
        if (p[0].revents) {
            ssize_t n = read(0, buf, sizeof(buf));
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                /* end of input: what was typed goes, nothing more comes */
                stdin_open = false;
                shutdown(con, SHUT_WR);
                break;
            }
            size_t o = 0;
            bool detach = false;
            for (ssize_t i = 0; i < n && !detach; i++) {
                char ch = buf[i];
                if (!escape && ch == CONSOLE_ESCAPE) {
                    escape = true;
                    continue;
                }
                if (escape) {
                    escape = false;
                    if (ch == 'q' || ch == 'Q') {
                        detach = true;
                        continue;
                    }
                    if (ch != CONSOLE_ESCAPE)
                        out[o++] = CONSOLE_ESCAPE; /* not a command: both keys go */
                }
                out[o++] = ch;
            }
            if (o && !write_all(con, out, o))
                break;
            if (detach)
                break;
        }
    }
    if (raw) {
        tcsetattr(0, TCSANOW, &saved);
        fputc('\n', stderr);
    }
    close(con);
    return rc;
}

/* console NAME [--show-log [--follow]]: attach to the instance's console, or
 * what it wrote there */
int cmd_console(int argc, char **argv)
{
    static const char usage[] = "usage: vessel console NAME [--show-log [--follow]]\n"
                                "  attached: type to the console; <ctrl>+a q detaches, "
                                "<ctrl>+a <ctrl>+a sends <ctrl>+a\n";
    bool follow = false, show_log = false;
    const char *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-f") || !strcmp(argv[i], "--follow"))
            follow = true;
        else if (!strcmp(argv[i], "--show-log"))
            show_log = true;
        else if (!name && argv[i][0] != '-')
            name = argv[i];
        else {
            fputs(usage, stderr);
            return 2;
        }
    }
    if (!name) {
        fputs(usage, stderr);
        return 2;
    }
    /* --follow alone is the log too (what `console` did before attaching) */
    if (show_log || follow)
        return console_show_log(name, follow);
    char path[512];
    snprintf(path, sizeof(path), "/1.0/instances/%s/console", seg(name, 0));
    json_t *req = json_object();
    json_t *resp = call("POST", path, req);
    json_decref(req);
    if (!resp)
        return 1;
    const char *sock = json_string_value(json_object_get(resp, "socket"));
    int con = sock ? console_receive(sock) : -1;
    json_decref(resp);
    return con < 0 ? 1 : console_relay(con);
}

/* operation list | show ID | cancel ID */
int cmd_operation(int argc, char **argv)
{
    if (argc == 2 && !strcmp(argv[1], "list")) {
        json_t *list = call("GET", "/1.0/operations", NULL);
        if (!list)
            return 1;
        static const char *const cols[] = {"id", "kind", "target", "status", "error"};
        static const char *const heads[] = {"ID", "KIND", "TARGET", "STATUS", "ERROR"};
        print_rows(list, cols, heads, 5, FMT_TABLE);
        json_decref(list);
        return 0;
    }
    if (argc == 3 && (!strcmp(argv[1], "show") || !strcmp(argv[1], "cancel"))) {
        char path[256];
        snprintf(path, sizeof(path), "/1.0/operations/%s", seg(argv[2], 0));
        json_t *r = call(!strcmp(argv[1], "show") ? "GET" : "DELETE", path, NULL);
        if (!r)
            return 1;
        json_dumpf(r, stdout, JSON_INDENT(2));
        putchar('\n');
        json_decref(r);
        return 0;
    }
    fprintf(stderr, "usage: vessel operation list | show ID | cancel ID\n");
    return 2;
}
