/* The daemon's HTTP layer: socket, routing, JSON bodies and errors. The
 * handlers only translate between HTTP and the calls of daemon.h. */
#include "daemon/http.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <netdb.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/log.h"

#define MAX_BODY (1024 * 1024)
/* a container moved from another cluster host: its changes as a tar */
#define MAX_RECEIVE (1024L * 1024 * 1024)
#define API_VERSION "1.0"

struct http_server {
    struct daemon *d;
    struct MHD_Daemon *mhd;
    int fd;
    bool tls; /* HTTPS: the client's certificate must be enrolled */
    char *key_pem, *cert_pem, *trust_pem;
};

struct request {
    char *body;
    size_t len;
    bool too_big;
    bool trusted, member; /* HTTPS: an enrolled client or a member's daemon; a member's */
};

/* What a handler gets: the matched path parameter (an instance name, an
 * image reference, an operation id), the body and the query. */
struct call {
    struct daemon *d;
    struct MHD_Connection *c;
    const char *param, *param2; /* {name}, then {snap} */
    json_t *body;               /* NULL for GET/DELETE */
    const char *raw;            /* the body as it came (routes without a JSON body) */
    size_t raw_len;
    bool tls;    /* over HTTPS: another cluster host's daemon or an enrolled client */
    bool member; /* over HTTPS from another cluster host's daemon */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
    json_decref(j);
    if (!text)
        return MHD_NO;
    size_t n = strlen(text);
    char *body = realloc(text, n + 2);
    if (!body) {
        free(text);
        return MHD_NO;
    }
    body[n] = '\n';
    body[n + 1] = 0;
    struct MHD_Response *r = MHD_create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply(c, status, json_pack("{s:s, s:i}", "error", msg, "error_code", status));
}

/* err.code -> HTTP status: the daemon's calls say what kind of failure. */
static enum MHD_Result reply_err(struct MHD_Connection *c, const vs_err *err)
{
    unsigned status;
    switch (err->code) {
    case ENOENT:
        status = MHD_HTTP_NOT_FOUND;
        break;
    case EEXIST:
    case EBUSY:
        status = MHD_HTTP_CONFLICT;
        break;
    case EINVAL:
    case ERANGE:
    case ENAMETOOLONG:
        status = MHD_HTTP_BAD_REQUEST;
        break;
    case ENOSPC:
        status = MHD_HTTP_INSUFFICIENT_STORAGE;
        break;
    case EREMOTE: /* another cluster host's instance */
        status = 421;
        break;
    case EHOSTUNREACH: /* the cluster store: unreachable, or no quorum */
        status = MHD_HTTP_SERVICE_UNAVAILABLE;
        break;
    default:
        status = MHD_HTTP_INTERNAL_SERVER_ERROR;
        break;
    }
    return reply_error(c, status, err->msg[0] ? err->msg : "internal error");
}

static enum MHD_Result reply_result(struct call *k, json_t *j, const vs_err *err)
{
    return j ? reply(k->c, MHD_HTTP_OK, j) : reply_err(k->c, err);
}

static bool query_true(struct call *k, const char *key)
{
    const char *v = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, key);
    return v && (!strcmp(v, "1") || !strcmp(v, "true") || !v[0]);
}

/* ---- another cluster host's requests ---- */

struct query {
    char buf[1024];
    size_t n;
};

static enum MHD_Result add_arg(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value)
{
    struct query *q = cls;
    const char *parts[2] = {key, value};
    for (int p = 0; p < 2 && parts[p]; p++) {
        if (q->n + 2 < sizeof(q->buf)) {
            char sep = p ? '=' : q->n == 0 ? '?' : '&';
            q->buf[q->n++] = sep;
        }
        for (const unsigned char *c = (const unsigned char *)parts[p]; *c; c++) {
            if (q->n + 4 >= sizeof(q->buf))
                break;
            if ((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                *c == '-' || *c == '.' || *c == '_')
                q->buf[q->n++] = (char)*c;
            else
                q->n += (size_t)snprintf(q->buf + q->n, 4, "%%%02X", *c);
        }
    }
    q->buf[q->n] = 0;
    return MHD_YES;
}

/* The request, as it came, to host's daemon; its answer, as it came. */
static enum MHD_Result forward(struct MHD_Connection *c, struct daemon *d, const char *host,
                               const char *method, const char *url, const char *body, size_t len)
{
    struct query q = {.n = 0};
    q.buf[0] = 0;
    MHD_get_connection_values(c, MHD_GET_ARGUMENT_KIND, add_arg, &q);
    char full[2200];
    snprintf(full, sizeof(full), "%s%s", url, q.buf);
    unsigned status = 0;
    char *text = NULL;
    vs_err err = {0};
    if (cluster_forward(d, host, method, full, body, len, &status, &text, &err) < 0)
        return reply_err(c, &err);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(text), text, MHD_RESPMEM_MUST_FREE);
    MHD_add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = MHD_queue_response(c, status, r);
    MHD_destroy_response(r);
    return ret;
}

/* ---- handlers ---- */

static enum MHD_Result get_server(struct call *k);

static enum MHD_Result get_instances(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, instance_list(k->d, &err), &err);
}

static enum MHD_Result post_instances(struct call *k)
{
    vs_err err = {0};
    /* --target HOST: made by that host's daemon */
    const char *target = json_string_value(json_object_get(k->body, "target"));
    char placed[256];
    if (target && !strcmp(target, "auto")) {
        if (cluster_place(k->d, json_string_value(json_object_get(k->body, "image")), NULL, placed,
                          sizeof(placed), &err) < 0)
            return reply_err(k->c, &err);
        target = placed;
    }
    if (target && !k->d->cluster)
        return reply_error(k->c, MHD_HTTP_BAD_REQUEST,
                           "\"target\" names a cluster host, and this host is in no cluster");
    if (target && !cluster_is_self(k->d, target)) {
        json_t *fwd = json_deep_copy(k->body);
        json_object_del(fwd, "target");
        /* the image goes along where the target has none by that name */
        const char *ref = json_string_value(json_object_get(k->body, "image"));
        char fp[65] = "";
        if (ref && cluster_ensure_image(k->d, target, ref, fp, &err) < 0) {
            json_decref(fwd);
            return reply_err(k->c, &err);
        }
        if (fp[0]) /* this host's image, by its fingerprint: not another of that alias */
            json_object_set_new(fwd, "image", json_string(fp));
        char *text = json_dumps(fwd, JSON_COMPACT);
        json_decref(fwd);
        if (!text)
            return reply_error(k->c, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory");
        enum MHD_Result r =
            forward(k->c, k->d, target, "POST", "/1.0/instances", text, strlen(text));
        free(text);
        return r;
    }
    json_object_del(k->body, "target");
    json_t *j = instance_create(k->d, k->body, &err);
    return j ? reply(k->c, MHD_HTTP_CREATED, j) : reply_err(k->c, &err);
}

static enum MHD_Result get_instance(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, instance_info(k->d, k->param, &err), &err);
}

static enum MHD_Result delete_instance(struct call *k)
{
    vs_err err = {0};
    if (instance_delete(k->d, k->param, query_true(k, "force"), &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "deleted", k->param));
}

static enum MHD_Result put_instance_state(struct call *k)
{
    const char *action = json_string_value(json_object_get(k->body, "action"));
    if (!action)
        return reply_error(k->c, MHD_HTTP_BAD_REQUEST,
                           "body must be {\"action\": start|stop|restart|pause|resume}");
    json_t *t = json_object_get(k->body, "timeout");
    if (t && (!json_is_integer(t) || json_integer_value(t) < 0 || json_integer_value(t) > 3600))
        return reply_error(k->c, MHD_HTTP_BAD_REQUEST, "\"timeout\" is seconds, 0..3600");
    vs_err err = {0};
    if (instance_change_state(k->d, k->param, action,
                              json_is_true(json_object_get(k->body, "force")),
                              t ? (int)json_integer_value(t) : 30, &err) < 0)
        return reply_err(k->c, &err);
    return reply_result(k, instance_info(k->d, k->param, &err), &err);
}

/* The uid and gid of the local caller (the unix socket's peer), or false
 * for a TCP/TLS client. */
static bool peer_cred(struct MHD_Connection *c, uid_t *uid, gid_t *gid)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct ucred cred;
    socklen_t len = sizeof(cred);
    if (!ci || getsockopt(ci->connect_fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 ||
        len != sizeof(cred) || cred.pid == 0) /* pid 0: not a unix-socket peer */
        return false;
    *uid = cred.uid;
    *gid = cred.gid;
    return true;
}

/* Who asked decides who may use the one-shot socket a request makes, not
 * its body: caller_uid/caller_gid come from the connection only. */
static void stamp_caller(struct call *k)
{
    json_object_del(k->body, "caller_uid");
    json_object_del(k->body, "caller_gid");
    uid_t uid;
    gid_t gid;
    if (peer_cred(k->c, &uid, &gid)) {
        json_object_set_new(k->body, "caller_uid", json_integer(uid));
        json_object_set_new(k->body, "caller_gid", json_integer(gid));
    }
}

static enum MHD_Result post_instance_exec(struct call *k)
{
    vs_err err = {0};
    stamp_caller(k);
    json_t *j = instance_exec(k->d, k->param, k->body, &err);
    return j ? reply(k->c, json_object_get(j, "socket") ? MHD_HTTP_CREATED : MHD_HTTP_OK, j)
             : reply_err(k->c, &err);
}

/* POST /1.0/instances/{name}/console: a one-shot socket that hands the
 * caller a connection to the instance's console (console.c). */
static enum MHD_Result post_instance_console(struct call *k)
{
    vs_err err = {0};
    stamp_caller(k);
    json_t *j = instance_console_attach(k->d, k->param, k->body, &err);
    return j ? reply(k->c, MHD_HTTP_CREATED, j) : reply_err(k->c, &err);
}

/* Start an operation on instance k->param: claimed here (a second request
 * gets 409 at once), released by the operation. */
static enum MHD_Result start_instance_op(struct call *k, const char *kind, operation_fn fn)
{
    vs_err err = {0};
    json_t *inst = store_instance_get(k->d->store, k->param, &err);
    if (!inst)
        return reply_err(k->c, &err);
    json_decref(inst);
    if (!daemon_claim(k->d, k->param, &err))
        return reply_err(k->c, &err);
    json_object_set_new(k->body, "instance", json_string(k->param));
    json_t *op = operation_start(k->d, kind, k->param, fn, k->body, &err);
    if (!op) {
        daemon_release(k->d, k->param);
        return reply_err(k->c, &err);
    }
    return reply(k->c, MHD_HTTP_ACCEPTED, op);
}

/* How much of buf[0..n) ends on a character boundary (a UTF-8 sequence
 * cut by the end of the read is left out). */
static size_t utf8_complete(const char *buf, size_t n)
{
    size_t i = n, back = 0;
    while (i > 0 && back < 3 && ((unsigned char)buf[i - 1] & 0xc0) == 0x80) {
        i--;
        back++;
    }
    if (i == 0)
        return n;
    unsigned char lead = (unsigned char)buf[i - 1];
    size_t need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : lead >= 0xc0 ? 2 : 1;
    return need > back + 1 ? i - 1 : n;
}

/* A copy of buf with every invalid UTF-8 sequence replaced by U+FFFD. */
static char *utf8_sanitize(const char *buf, size_t n)
{
    char *out = malloc(n * 3 + 1);
    size_t o = 0;
    for (size_t i = 0; out && buf && i < n;) {
        unsigned char c = (unsigned char)buf[i];
        size_t len = c < 0x80             ? 1
                     : (c & 0xe0) == 0xc0 ? 2
                     : (c & 0xf0) == 0xe0 ? 3
                     : (c & 0xf8) == 0xf0 ? 4
                                          : 0;
        bool ok = len > 0 && i + len <= n && !(len == 2 && c < 0xc2);
        for (size_t k = 1; ok && k < len; k++)
            ok = ((unsigned char)buf[i + k] & 0xc0) == 0x80;
        if (ok && c != 0) {
            memcpy(out + o, buf + i, len);
            o += len;
            i += len;
        } else {
            memcpy(out + o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    if (out)
        out[o] = 0;
    return out;
}

/* GET /1.0/instances/{name}/console?offset=N: the console log from byte N
 * (at most 1 MiB), and where it ends, so a client can follow it. */
static enum MHD_Result get_instance_console(struct call *k)
{
    vs_err err = {0};
    json_t *inst = store_instance_get(k->d->store, k->param, &err);
    if (!inst)
        return reply_err(k->c, &err);
    json_decref(inst);
    char path[4300];
    instance_path(k->d, k->param, "console.log", path, sizeof(path));
    const char *o = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "offset");
    long long off = o ? atoll(o) : 0;
    FILE *f = fopen(path, "re");
    long long size = 0;
    char *buf = NULL;
    size_t n = 0;
    if (f) {
        fseeko(f, 0, SEEK_END);
        size = ftello(f);
        if (off < 0 || off > size)
            off = size;
        size_t want = (size_t)(size - off) > (1u << 20) ? (1u << 20) : (size_t)(size - off);
        buf = malloc(want + 1);
        if (buf && fseeko(f, off, SEEK_SET) == 0)
            n = fread(buf, 1, want, f);
        fclose(f);
    }
    /* JSON wants UTF-8: a character cut at the end is left for the next
     * read, and bytes that are not UTF-8 become U+FFFD */
    size_t keep = utf8_complete(buf, n);
    char *text = utf8_sanitize(buf, keep);
    json_t *j = json_pack("{s:s, s:I}", "log", text ? text : "", "end", (json_int_t)(off + keep));
    if (!j) /* what jansson still refuses (a surrogate, an overlong form) */
        j = json_pack("{s:s, s:I}", "log", "\xef\xbf\xbd", "end", (json_int_t)(off + keep));
    free(text);
    free(buf);
    return reply(k->c, MHD_HTTP_OK, j);
}

static enum MHD_Result put_instance_config(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, instance_config_set(k->d, k->param, k->body, &err), &err);
}

static enum MHD_Result get_snapshots(struct call *k)
{
    vs_err err = {0};
    json_t *inst = store_instance_get(k->d->store, k->param, &err);
    if (!inst)
        return reply_err(k->c, &err);
    json_decref(inst);
    return reply_result(k, store_snapshot_list(k->d->store, k->param, &err), &err);
}

static enum MHD_Result post_snapshots(struct call *k)
{
    return start_instance_op(k, "snapshot", snapshot_create_op);
}

static enum MHD_Result get_snapshot(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, store_snapshot_get(k->d->store, k->param, k->param2, &err), &err);
}

static enum MHD_Result delete_snapshot(struct call *k)
{
    vs_err err = {0};
    if (!daemon_claim(k->d, k->param, &err))
        return reply_err(k->c, &err);
    int rc = snapshot_delete(k->d, k->param, k->param2, &err);
    daemon_release(k->d, k->param);
    if (rc < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "deleted", k->param2));
}

static enum MHD_Result post_snapshot_restore(struct call *k)
{
    vs_err err = {0};
    if (snapshot_restore(k->d, k->param, k->param2, &err) < 0)
        return reply_err(k->c, &err);
    return reply_result(k, instance_info(k->d, k->param, &err), &err);
}

static enum MHD_Result post_instance_copy(struct call *k)
{
    vs_err err = {0};
    const char *dst = json_string_value(json_object_get(k->body, "name"));
    if (instance_validate_name(dst, &err) < 0)
        return reply_err(k->c, &err);
    json_t *taken = store_instance_get(k->d->store, dst, NULL);
    if (taken) {
        json_decref(taken);
        vs_error(&err, EEXIST, "instance '%s' already exists", dst);
        return reply_err(k->c, &err);
    }
    return start_instance_op(k, "copy", instance_copy_op);
}

static enum MHD_Result post_instance_publish(struct call *k)
{
    return start_instance_op(k, "publish", instance_publish_op);
}

/* GET /1.0/events: JSON lines as they happen (a blank line every 10 s
 * while idle, so a client that went away is noticed). */
struct event_reader {
    uint64_t seq;
    char *types; /* comma-separated filter, or NULL */
    char *pending;
    size_t off;
};

static bool event_wanted(const struct event_reader *r, const char *line)
{
    if (!r->types)
        return true;
    char *save = NULL, *copy = strdup(r->types);
    bool want = false;
    for (char *t = strtok_r(copy, ",", &save); t && !want; t = strtok_r(NULL, ",", &save)) {
        char pat[96];
        snprintf(pat, sizeof(pat), "\"type\":\"%.64s\"", t);
        want = strstr(line, pat) != NULL;
    }
    free(copy);
    return want || !strncmp(line, "{\"type\":\"lost\"", 15);
}

static ssize_t event_read(void *cls, uint64_t pos, char *buf, size_t max)
{
    struct event_reader *r = cls;
    while (!r->pending) {
        char *line = daemon_events_wait(&r->seq, 10000);
        if (!line) {
            buf[0] = '\n';
            return 1;
        }
        if (event_wanted(r, line)) {
            r->pending = line;
            r->off = 0;
        } else {
            free(line);
        }
    }
    size_t n = strlen(r->pending + r->off);
    if (n > max)
        n = max;
    memcpy(buf, r->pending + r->off, n);
    r->off += n;
    if (!r->pending[r->off]) {
        free(r->pending);
        r->pending = NULL;
    }
    return (ssize_t)n;
}

static void event_free(void *cls)
{
    struct event_reader *r = cls;
    free(r->pending);
    free(r->types);
    free(r);
}

static enum MHD_Result get_events(struct call *k)
{
    struct event_reader *r = calloc(1, sizeof(*r));
    if (!r)
        return MHD_NO;
    r->seq = daemon_events_next();
    const char *types = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "type");
    if (types && types[0])
        r->types = strdup(types);
    struct MHD_Response *resp =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, event_read, r, event_free);
    if (!resp) {
        event_free(r);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", "application/x-ndjson");
    enum MHD_Result ret = MHD_queue_response(k->c, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

static enum MHD_Result get_certificates(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, trust_list(k->d, &err), &err);
}

static enum MHD_Result post_certificates(struct call *k)
{
    vs_err err = {0};
    json_t *j = trust_add(k->d, json_string_value(json_object_get(k->body, "certificate")),
                          json_string_value(json_object_get(k->body, "name")), &err);
    return j ? reply(k->c, MHD_HTTP_CREATED, j) : reply_err(k->c, &err);
}

static enum MHD_Result delete_certificate(struct call *k)
{
    vs_err err = {0};
    if (trust_remove(k->d, k->param, &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "deleted", k->param));
}

static enum MHD_Result get_images(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, image_list(k->d, &err), &err);
}

static enum MHD_Result post_images(struct call *k)
{
    vs_err err = {0};
    const char *alias = json_string_value(json_object_get(k->body, "alias"));
    if (image_import_check(k->d, k->body, &err) < 0)
        return reply_err(k->c, &err);
    json_t *op = operation_start(k->d, "image_import", alias, image_import, k->body, &err);
    return op ? reply(k->c, MHD_HTTP_ACCEPTED, op) : reply_err(k->c, &err);
}

static enum MHD_Result get_image(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, store_image_get(k->d->store, k->param, &err), &err);
}

static enum MHD_Result delete_image(struct call *k)
{
    vs_err err = {0};
    if (image_delete(k->d, k->param, &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "deleted", k->param));
}

static enum MHD_Result patch_image(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, image_set_alias(k->d, k->param, k->body, &err), &err);
}

static enum MHD_Result get_operations(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, store_op_list(k->d->store, &err), &err);
}

static enum MHD_Result get_operation(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, store_op_get(k->d->store, k->param, &err), &err);
}

static enum MHD_Result delete_operation(struct call *k)
{
    vs_err err = {0};
    if (operation_cancel(k->d, k->param, &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_ACCEPTED, json_pack("{s:s}", "status", "cancelling"));
}

static enum MHD_Result get_operation_wait(struct call *k)
{
    const char *t = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "timeout");
    int timeout = t ? atoi(t) : 60;
    if (timeout < 0 || timeout > 3600)
        return reply_error(k->c, MHD_HTTP_BAD_REQUEST, "timeout is seconds, 0..3600");
    vs_err err = {0};
    return reply_result(k, operation_wait(k->d, k->param, timeout, &err), &err);
}

static enum MHD_Result get_cluster(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, cluster_info(k->d, &err), &err);
}

static enum MHD_Result post_cluster(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, cluster_form(k->d, k->body, &err), &err);
}

static enum MHD_Result post_instance_move(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, cluster_move(k->d, k->param, k->body, &err), &err);
}

/* Only another member's daemon sends one (over HTTPS, with its certificate). */
static enum MHD_Result post_cluster_receive(struct call *k)
{
    const char *name = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "name");
    const char *image = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "image");
    if (!k->member)
        return reply_error(k->c, MHD_HTTP_FORBIDDEN,
                           "instances and images are received from another cluster host's daemon "
                           "only");
    vs_err err = {0};
    if (image) {
        const char *meta = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "meta");
        if (cluster_receive_image(k->d, image, meta, k->raw, k->raw_len, &err) < 0)
            return reply_err(k->c, &err);
        return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "received", image));
    }
    if (!name)
        return reply_error(k->c, MHD_HTTP_BAD_REQUEST, "?name=INSTANCE is required");
    /* a VM moving here live: ?incoming=1 starts its destination, ?drop=PID:START
     * removes it again after a failed move */
    const char *incoming = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "incoming");
    const char *drop = MHD_lookup_connection_value(k->c, MHD_GET_ARGUMENT_KIND, "drop");
    if (incoming) {
        json_t *self = cluster_host_record(k->d, cluster_host_name(k->d), &err);
        const char *addr = json_string_value(json_object_get(self, "address"));
        json_t *r = addr ? instance_incoming(k->d, name, addr, &err) : NULL;
        if (self && !addr)
            vs_error(&err, EINVAL, "this host has no cluster address for a VM to move to");
        json_decref(self);
        return reply_result(k, r, &err);
    }
    if (drop) {
        long long pid = 0;
        unsigned long long start = 0;
        if (sscanf(drop, "%lld:%llu", &pid, &start) != 2 || pid <= 0)
            return reply_error(k->c, MHD_HTTP_BAD_REQUEST, "?drop=PID:START");
        if (instance_incoming_drop(k->d, name, (pid_t)pid, start, &err) < 0)
            return reply_err(k->c, &err);
        return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "dropped", name));
    }
    if (cluster_receive(k->d, name, k->raw, k->raw_len, &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "received", name));
}

/* Done by the host itself: asked elsewhere, forwarded there. */
static enum MHD_Result post_cluster_evacuate(struct call *k)
{
    vs_err err = {0};
    if (!k->d->cluster)
        return reply_error(k->c, MHD_HTTP_NOT_FOUND, "this host is not in a cluster");
    if (!cluster_is_self(k->d, k->param)) {
        char url[400];
        snprintf(url, sizeof(url), "/1.0/cluster/members/%s/evacuate", k->param);
        return forward(k->c, k->d, k->param, "POST", url, NULL, 0);
    }
    return reply_result(k, cluster_evacuate(k->d, &err), &err);
}

static enum MHD_Result get_cluster_members(struct call *k)
{
    vs_err err = {0};
    return reply_result(k, cluster_members(k->d, &err), &err);
}

static enum MHD_Result delete_cluster_member(struct call *k)
{
    vs_err err = {0};
    if (cluster_remove(k->d, k->param, query_true(k, "force"), &err) < 0)
        return reply_err(k->c, &err);
    return reply(k->c, MHD_HTTP_OK, json_pack("{s:s}", "removed", k->param));
}

/* The routes: a path is literal segments and at most one {param}. */
static const struct route {
    const char *method, *path;
    enum MHD_Result (*fn)(struct call *k);
    bool body; /* expects a JSON object */
} routes[] = {
    {"GET", "/1.0", get_server, false},
    {"GET", "/1.0/instances", get_instances, false},
    {"POST", "/1.0/instances", post_instances, true},
    {"GET", "/1.0/instances/{name}", get_instance, false},
    {"DELETE", "/1.0/instances/{name}", delete_instance, false},
    {"PUT", "/1.0/instances/{name}/state", put_instance_state, true},
    {"PUT", "/1.0/instances/{name}/config", put_instance_config, true},
    {"GET", "/1.0/instances/{name}/console", get_instance_console, false},
    {"POST", "/1.0/instances/{name}/console", post_instance_console, true},
    {"POST", "/1.0/instances/{name}/exec", post_instance_exec, true},
    {"GET", "/1.0/instances/{name}/snapshots", get_snapshots, false},
    {"POST", "/1.0/instances/{name}/snapshots", post_snapshots, true},
    {"GET", "/1.0/instances/{name}/snapshots/{snap}", get_snapshot, false},
    {"DELETE", "/1.0/instances/{name}/snapshots/{snap}", delete_snapshot, false},
    {"POST", "/1.0/instances/{name}/snapshots/{snap}/restore", post_snapshot_restore, false},
    {"POST", "/1.0/instances/{name}/copy", post_instance_copy, true},
    {"POST", "/1.0/instances/{name}/publish", post_instance_publish, true},
    {"POST", "/1.0/instances/{name}/move", post_instance_move, true},
    {"GET", "/1.0/images", get_images, false},
    {"POST", "/1.0/images", post_images, true},
    {"GET", "/1.0/images/{ref}", get_image, false},
    {"DELETE", "/1.0/images/{ref}", delete_image, false},
    {"PATCH", "/1.0/images/{ref}", patch_image, true},
    {"GET", "/1.0/events", get_events, false},
    {"GET", "/1.0/certificates", get_certificates, false},
    {"POST", "/1.0/certificates", post_certificates, true},
    {"DELETE", "/1.0/certificates/{fp}", delete_certificate, false},
    {"GET", "/1.0/operations", get_operations, false},
    {"GET", "/1.0/operations/{id}", get_operation, false},
    {"DELETE", "/1.0/operations/{id}", delete_operation, false},
    {"GET", "/1.0/operations/{id}/wait", get_operation_wait, false},
    {"GET", "/1.0/cluster", get_cluster, false},
    {"POST", "/1.0/cluster", post_cluster, true},
    {"GET", "/1.0/cluster/members", get_cluster_members, false},
    {"DELETE", "/1.0/cluster/members/{host}", delete_cluster_member, false},
    {"POST", "/1.0/cluster/receive", post_cluster_receive, false},
    {"POST", "/1.0/cluster/members/{host}/evacuate", post_cluster_evacuate, false},
};

static enum MHD_Result get_server(struct call *k)
{
    json_t *r = json_array();
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
        json_array_append_new(
            r, json_pack("{s:s, s:s}", "method", routes[i].method, "path", routes[i].path));
    return reply(k->c, MHD_HTTP_OK,
                 json_pack("{s:s, s:s, s:s, s:i, s:o}", "api_version", API_VERSION, "server",
                           "vesseld", "state_dir", k->d->state_dir, "schema_version",
                           store_schema_version(k->d->store), "routes", r));
}

bool http_route_match(const char *pattern, const char *url, struct route_params *p)
{
    p->n = 0;
    while (*pattern) {
        if (*pattern == '{') {
            const char *end = strchr(pattern, '}');
            size_t n = strcspn(url, "/");
            if (!end || n == 0 || n >= sizeof(p->v[0]) || p->n >= ROUTE_MAX_PARAMS)
                return false;
            memcpy(p->v[p->n], url, n);
            p->v[p->n++][n] = 0;
            pattern = end + 1;
            url += n;
            continue;
        }
        if (*pattern++ != *url++)
            return false;
    }
    return *url == 0;
}

/* Is the TLS client's certificate an enrolled one? */
static bool client_trusted(struct http_server *s, struct MHD_Connection *c, bool *member)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(c, MHD_CONNECTION_INFO_GNUTLS_SESSION);
    *member = false;
    if (!ci || !ci->tls_session)
        return false;
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(ci->tls_session, &n);
    char fp[65];
    if (!certs || n == 0 || trust_fingerprint_der(certs[0].data, certs[0].size, fp) < 0)
        return false;
    *member = cluster_trusts(s->d, fp); /* another cluster host's daemon */
    return *member || trust_is_enrolled(s->d, fp);
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct http_server *s = cls;
    struct request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        /* who is calling, before any body is taken in */
        rq->trusted = !s->tls || client_trusted(s, c, &rq->member);
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        long max = rq->member && !strcmp(url, "/1.0/cluster/receive") ? MAX_RECEIVE : MAX_BODY;
        if (rq->len + *upload_size > (size_t)max) {
            rq->too_big = true;
        } else {
            char *b = realloc(rq->body, rq->len + *upload_size + 1);
            if (!b)
                return MHD_NO;
            memcpy(b + rq->len, upload, *upload_size);
            rq->body = b;
            rq->len += *upload_size;
            rq->body[rq->len] = 0;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (rq->too_big)
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large (1 MiB max)");
    bool member = rq->member;
    if (!rq->trusted)
        return reply_error(c, MHD_HTTP_FORBIDDEN,
                           "client certificate not trusted (enroll it with 'vessel trust add' on "
                           "the daemon's host)");

    struct route_params params;
    bool path_known = false;
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        const struct route *r = &routes[i];
        if (!http_route_match(r->path, url, &params))
            continue;
        path_known = true;
        if (strcmp(r->method, method))
            continue;
        if (s->tls && !strncmp(r->path, "/1.0/certificates", 17))
            return reply_error(c, MHD_HTTP_FORBIDDEN,
                               "certificates are managed on the daemon's unix socket only");
        struct call k = {.d = s->d,
                         .c = c,
                         .param = params.v[0],
                         .param2 = params.v[1],
                         .raw = rq->body,
                         .raw_len = rq->len,
                         .tls = s->tls,
                         .member = member};
        /* in a cluster: no changes without an etcd quorum (exec changes
         * nothing), and only an instance's own host acts on it */
        vs_err remote = {0};
        char owner[256];
        if (strcmp(r->method, "GET") && !strstr(r->path, "/exec") && !strstr(r->path, "/console") &&
            strncmp(r->path, "/1.0/cluster", 12) && cluster_check_writable(s->d, &remote) < 0)
            return reply_err(c, &remote);
        if (!strncmp(r->path, "/1.0/instances/{name}", 21) &&
            (strcmp(r->method, "GET") || strstr(r->path, "/console")) &&
            cluster_check_local(s->d, k.param, owner, sizeof(owner), &remote) < 0) {
            if (remote.code != EREMOTE)
                return reply_err(c, &remote);
            if (!strstr(r->path, "/exec"))
                return forward(c, s->d, owner, method, url, rq->body, rq->len);
            /* an exec streams through a socket on the caller's host: on
             * another host it runs with its output recorded (no stdin, no
             * terminal), and the caller prints that */
            json_t *body = json_loadb(rq->body ? rq->body : "", rq->len, 0, NULL);
            json_object_set_new(body, "record_output", json_true());
            char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
            json_decref(body);
            if (!text)
                return reply_error(c, MHD_HTTP_BAD_REQUEST, "the body must be a JSON object");
            enum MHD_Result ret = forward(c, s->d, owner, method, url, text, strlen(text));
            free(text);
            return ret;
        }
        if (r->body) {
            json_error_t jerr;
            k.body = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
            if (!json_is_object(k.body)) {
                json_decref(k.body);
                char msg[300];
                snprintf(msg, sizeof(msg), "the body must be a JSON object (%s)",
                         rq->len ? jerr.text : "empty body");
                return reply_error(c, MHD_HTTP_BAD_REQUEST, msg);
            }
        }
        enum MHD_Result ret = r->fn(&k);
        json_decref(k.body);
        return ret;
    }
    char msg[512];
    snprintf(msg, sizeof(msg), "%s %.400s: %s", method, url,
             path_known ? "method not allowed" : "no such route (see docs/daemon-api.md)");
    return reply_error(c, path_known ? MHD_HTTP_METHOD_NOT_ALLOWED : MHD_HTTP_NOT_FOUND, msg);
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    struct request *rq = *con_cls;
    if (rq) {
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[256];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = 0;
    vs_debug("http: %s", buf);
}

bool http_socket_in_use(const char *path)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return false;
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    bool used = fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
    if (fd >= 0)
        close(fd);
    return used;
}

/* The socket: a live daemon's is refused, a dead one's replaced; mode 0660
 * with the `vessel` group when the host has one, so its members (and root)
 * may manage instances and nobody else may. */
static int listen_socket(const char *path, vs_err *err)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof(sa.sun_path))
        return vs_error(err, ENAMETOOLONG, "%s: socket path too long", path);
    strcpy(sa.sun_path, path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return vs_error_errno(err, "socket");
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        close(fd);
        return vs_error(err, EADDRINUSE, "%s: another vesseld is serving it", path);
    }
    close(fd);
    struct stat st;
    if (lstat(path, &st) == 0 && !S_ISSOCK(st.st_mode))
        return vs_error(err, EEXIST, "%s exists and is not a socket", path);
    unlink(path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    mode_t old = umask(0117);
    int rc = fd < 0 ? -1 : bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || listen(fd, 128) < 0) {
        vs_error_errno(err, "%s", path);
        if (fd >= 0)
            close(fd);
        return -1;
    }
    /* /etc/group read directly: getgrnam would map NSS's modules for good */
    long gid = -1;
    FILE *gf = fopen("/etc/group", "re");
    char line[1024];
    while (gf && gid < 0 && fgets(line, sizeof(line), gf))
        if (!strncmp(line, "vessel:", 7) && sscanf(line, "vessel:%*[^:]:%ld:", &gid) != 1)
            gid = -1;
    if (gf)
        fclose(gf);
    if (gid >= 0 && chown(path, 0, (gid_t)gid) < 0)
        vs_warn("%s: cannot give it to group vessel: %s", path, strerror(errno));
    chmod(path, 0660);
    return fd;
}

int http_server_start(struct daemon *d, struct http_server **out, vs_err *err)
{
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "out of memory");
    s->d = d;
    s->fd = listen_socket(d->socket_path, err);
    if (s->fd < 0) {
        free(s);
        return -1;
    }
    s->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0,
        NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_NOTIFY_COMPLETED,
        request_done, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!s->mhd) {
        close(s->fd);
        unlink(d->socket_path);
        free(s);
        return vs_error(err, EIO, "%s: cannot start the HTTP server", d->socket_path);
    }
    *out = s;
    return 0;
}

int https_server_start(struct daemon *d, const char *addr, struct http_server **out, vs_err *err)
{
    char host[256];
    const char *colon = strrchr(addr, ':');
    if (!colon || colon == addr || (size_t)(colon - addr) >= sizeof(host))
        return vs_error(err, EINVAL, "--https %s: expected ADDR:PORT", addr);
    memcpy(host, addr, (size_t)(colon - addr));
    host[colon - addr] = 0;
    if (host[0] == '[') {
        memmove(host, host + 1, strlen(host));
        host[strcspn(host, "]")] = 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return vs_error(err, EINVAL, "--https %s: not a numeric address and port", addr);
    struct http_server *s = calloc(1, sizeof(*s));
    if (!s) {
        freeaddrinfo(ai);
        return vs_error(err, ENOMEM, "out of memory");
    }
    s->d = d;
    s->tls = true;
    s->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    int one = 1;
    if (s->fd >= 0)
        setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (s->fd < 0 || bind(s->fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(s->fd, 128) < 0) {
        vs_error_errno(err, "--https %s", addr);
        freeaddrinfo(ai);
        http_server_stop(s);
        return -1;
    }
    freeaddrinfo(ai);
    if (trust_server_identity(d, &s->key_pem, &s->cert_pem, err) < 0) {
        http_server_stop(s);
        return -1;
    }
    /* a trust list makes libmicrohttpd ask for the client's certificate;
     * which ones are accepted is decided per request (client_trusted) */
    s->trust_pem = strdup(s->cert_pem);
    s->mhd = MHD_start_daemon(
        MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG |
            MHD_USE_TLS,
        0, NULL, NULL, handle, s, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_HTTPS_MEM_KEY,
        s->key_pem, MHD_OPTION_HTTPS_MEM_CERT, s->cert_pem, MHD_OPTION_HTTPS_MEM_TRUST,
        s->trust_pem, MHD_OPTION_NOTIFY_COMPLETED, request_done, NULL, MHD_OPTION_EXTERNAL_LOGGER,
        mhd_log, NULL, MHD_OPTION_CONNECTION_TIMEOUT, 600u, MHD_OPTION_END);
    if (!s->mhd) {
        vs_error(err, EIO, "--https %s: cannot start the HTTPS server", addr);
        http_server_stop(s);
        return -1;
    }
    s->fd = -1; /* libmicrohttpd's now */
    *out = s;
    return 0;
}

void http_server_stop(struct http_server *s)
{
    if (!s)
        return;
    if (s->mhd)
        MHD_stop_daemon(s->mhd);
    else if (s->fd >= 0)
        close(s->fd);
    if (!s->tls)
        unlink(s->d->socket_path);
    free(s->key_pem);
    free(s->cert_pem);
    free(s->trust_pem);
    free(s);
}
