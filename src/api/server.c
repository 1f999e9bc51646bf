/* The per-VM control API: HTTP/1.1 + JSON on a unix socket, served by
 * libmicrohttpd on its own thread (requests are handled one at a time, so a
 * snapshot never races a pause). Resources (docs/api.md, docs/api.yaml):
 *   GET  /vm             state, config, memory, last snapshot
 *   PUT  /vm/pause       stop every vCPU
 *   PUT  /vm/resume
 *   PUT  /vm/stop        power off
 *   PATCH /vm            {"balloon": {...}}: change resources (api/resources.c)
 *   PUT  /snapshot       {"path": DIR, "type": "full"|"diff"}
 *   PUT  /migrate        {"uri": "tcp:HOST:PORT", ...}: start a live migration
 *   GET  /migrate        its progress
 *   PUT  /migrate/cancel stop it; the VM runs on here */
#include "api/server.h"

#include <errno.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <stdint.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "api/resources.h"
#include "migrate/source.h"
#include "vm/config_json.h"
#include "snapshot/snapshot.h"
#include "util/dynlib.h"
#include "util/log.h"
#include "util/cleanup.h"
#include "util/thread_role.h"

/* libmicrohttpd is loaded when the API is first used, not linked: a VM that
 * is never asked anything then does not map it and its TLS dependency tree
 * (gnutls, p11-kit, nettle, gmp...), about 2 MiB of the VMM's memory, and a
 * restore does not load it on its way to running (starter_thread). */
static struct {
    __typeof__(MHD_start_daemon) *start_daemon;
    __typeof__(MHD_stop_daemon) *stop_daemon;
    __typeof__(MHD_create_response_from_buffer) *create_response_from_buffer;
    __typeof__(MHD_add_response_header) *add_response_header;
    __typeof__(MHD_queue_response) *queue_response;
    __typeof__(MHD_destroy_response) *destroy_response;
    char error[256];
} mhd;
static pthread_once_t mhd_once = PTHREAD_ONCE_INIT;
static bool mhd_loaded; /* set once mhd_load has run (under mhd_once) */

static void mhd_load(void)
{
    const struct vs_dynsym syms[] = {
        {(void **)&mhd.start_daemon, "MHD_start_daemon"},
        {(void **)&mhd.stop_daemon, "MHD_stop_daemon"},
        {(void **)&mhd.create_response_from_buffer, "MHD_create_response_from_buffer"},
        {(void **)&mhd.add_response_header, "MHD_add_response_header"},
        {(void **)&mhd.queue_response, "MHD_queue_response"},
        {(void **)&mhd.destroy_response, "MHD_destroy_response"},
    };
    vs_dynlib_load("libmicrohttpd.so.12", "libmicrohttpd12", syms, ARRAY_SIZE(syms), mhd.error,
                   sizeof(mhd.error));
    __atomic_store_n(&mhd_loaded, true, __ATOMIC_RELEASE);
}

#define MAX_BODY (64 * 1024)

struct api_server {
    struct MHD_Daemon *mhd;
    pthread_t starter; /* loads libmicrohttpd and starts it (first server) */
    bool starter_running;
    int wake_fd; /* tells the starter to give up (stop) */
    int fd;
    char *path;
    struct vm_control *ctl;
    struct snapshot_session session;
    struct snapshot_stats last_stats;
    struct migration *migration; /* the last one started, or NULL */
};

struct request {
    struct api_server *s;
    char *body;
    size_t len;
    bool too_big;
    bool stop_after;         /* power off once the reply went out */
    bool told_migration_end; /* the reply holds a migration's final state */
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, json_t *j)
{
    char *text = json_dumps(j, JSON_COMPACT);
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
    struct MHD_Response *r = mhd.create_response_from_buffer(n + 1, body, MHD_RESPMEM_MUST_FREE);
    mhd.add_response_header(r, "Content-Type", "application/json");
    enum MHD_Result ret = mhd.queue_response(c, status, r);
    mhd.destroy_response(r);
    return ret;
}

static enum MHD_Result reply_error(struct MHD_Connection *c, unsigned status, const char *msg)
{
    return reply(c, status, json_pack("{s:s}", "error", msg));
}

static json_t *info(struct api_server *s)
{
    struct vm_control *ctl = s->ctl;
    json_t *j = json_object();
    json_object_set_new(j, "state",
                        json_string(ctl->is_paused(ctl->machine) ? "paused" : "running"));
    json_object_set_new(j, "arch", json_string(vm_arch_name(ctl->arch)));
    json_object_set_new(j, "pid", json_integer(getpid()));
    if (ctl->cfg)
        json_object_set_new(j, "config", vm_config_to_json(ctl->cfg));
    struct guest_mem *mem = ctl->memory ? ctl->memory(ctl->machine) : NULL;
    if (mem) {
        json_t *regions = json_array();
        const struct guest_mem_layout *l = guest_mem_layout(mem);
        for (unsigned i = 0; i < l->n; i++)
            json_array_append_new(regions, json_pack("{s:I, s:I}", "gpa", (json_int_t)l->r[i].gpa,
                                                     "size", (json_int_t)l->r[i].size));
        json_object_set_new(
            j, "memory",
            json_pack("{s:I, s:o}", "total", (json_int_t)mem->total, "regions", regions));
    }
    if (s->session.last_dir)
        json_object_set_new(j, "last_snapshot",
                            json_pack("{s:s, s:s, s:b}", "path", s->session.last_dir, "id",
                                      s->session.last_id, "diff_possible",
                                      snapshot_session_diff_possible(&s->session)));
    api_resources_info(ctl, j);
    return j;
}

static enum MHD_Result do_snapshot(struct api_server *s, struct MHD_Connection *c,
                                   struct request *rq)
{
    json_error_t jerr;
    json_t *body = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
    if (!json_is_object(body)) {
        json_decref(body);
        return reply_error(c, MHD_HTTP_BAD_REQUEST, "body must be a JSON object with \"path\"");
    }
    const char *path = json_string_value(json_object_get(body, "path"));
    const char *type = json_string_value(json_object_get(body, "type"));
    if (!path || (type && strcmp(type, "full") && strcmp(type, "diff"))) {
        json_decref(body);
        return reply_error(c, MHD_HTTP_BAD_REQUEST,
                           "\"path\" (string) is required; \"type\" is \"full\" or \"diff\"");
    }
    bool diff = type && !strcmp(type, "diff");
    unsigned flags = (diff ? SNAPSHOT_DIFF : 0) |
                     (json_is_true(json_object_get(body, "disks")) ? SNAPSHOT_DISKS : 0);
    vs_err err = {0};
    struct snapshot_stats st;
    int rc = snapshot_save(s->ctl, &s->session, path, flags, &st, &err);
    json_decref(body);
    if (rc < 0)
        return reply_error(c, err.code == EEXIST ? MHD_HTTP_CONFLICT : MHD_HTTP_BAD_REQUEST,
                           err.msg);
    s->last_stats = st;
    return reply(c, MHD_HTTP_OK,
                 json_pack("{s:s, s:s, s:s, s:f, s:f, s:f, s:I, s:I}", "path", s->session.last_dir,
                           "id", s->session.last_id, "type", diff ? "diff" : "full", "pause_ms",
                           st.pause_ms, "total_ms", st.total_ms, "sync_ms", st.sync_ms,
                           "memory_bytes", (json_int_t)st.memory_bytes, "state_bytes",
                           (json_int_t)st.state_bytes));
}

/* The guest runs on the destination now: this VM stops (exit status 0). */
static void migration_done(void *opaque)
{
    struct api_server *s = opaque;
    if (s->ctl->request_stop)
        s->ctl->request_stop(s->ctl->machine);
}

static enum MHD_Result progress_reply(struct api_server *s, struct MHD_Connection *c,
                                      struct request *rq, unsigned status)
{
    struct migrate_progress p;
    migration_progress(s->migration, &p);
    rq->told_migration_end = p.state >= MIGRATE_COMPLETED;
    return reply(c, status, migrate_progress_json(&p));
}

static enum MHD_Result do_migrate(struct api_server *s, struct MHD_Connection *c,
                                  struct request *rq, const char *url, bool get, bool put)
{
    vs_err err = {0};
    if (!strcmp(url, "/migrate/cancel")) {
        if (!put)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use PUT");
        if (!s->migration)
            return reply_error(c, MHD_HTTP_CONFLICT, "no migration was started");
        if (migration_cancel(s->migration, &err) < 0)
            return reply_error(c, MHD_HTTP_CONFLICT, err.msg);
        return progress_reply(s, c, rq, MHD_HTTP_OK);
    }
    if (get) {
        if (!s->migration)
            return reply(c, MHD_HTTP_OK, json_pack("{s:s}", "state", "none"));
        return progress_reply(s, c, rq, MHD_HTTP_OK);
    }
    if (!put)
        return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or PUT");
    if (s->migration && migration_active(s->migration))
        return reply_error(c, MHD_HTTP_CONFLICT, "a migration is already in progress");
    json_error_t jerr;
    json_t *body = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
    struct migrate_params p;
    int rc = migrate_params_from_json(body, &p, &err);
    json_decref(body);
    if (rc < 0)
        return reply_error(c, err.code == ENOTSUP ? MHD_HTTP_NOT_IMPLEMENTED : MHD_HTTP_BAD_REQUEST,
                           err.msg);
    migration_free(s->migration);
    s->migration = NULL;
    /* the rounds consume the dirty log: the next diff snapshot needs a full */
    s->session.dirty_log = false;
    if (migration_start(s->ctl, &p, migration_done, s, &s->migration, &err) < 0)
        return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
    return progress_reply(s, c, rq, MHD_HTTP_ACCEPTED);
}

static enum MHD_Result do_patch(struct api_server *s, struct MHD_Connection *c, struct request *rq)
{
    json_error_t jerr;
    json_t *body = json_loadb(rq->body ? rq->body : "", rq->len, 0, &jerr);
    vs_err err = {0};
    int rc = body ? api_resources_patch(s->ctl, body, &err)
                  : vs_error(&err, EINVAL, "body is not JSON: %s", jerr.text);
    json_decref(body);
    if (rc < 0)
        return reply_error(c, err.code == ENOTSUP ? MHD_HTTP_NOT_IMPLEMENTED : MHD_HTTP_BAD_REQUEST,
                           err.msg);
    return reply(c, MHD_HTTP_OK, info(s));
}

static enum MHD_Result handle(void *cls, struct MHD_Connection *c, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_size, void **con_cls)
{
    struct api_server *s = cls;
    /* the server's thread, whoever started it (a no-op once it has its filter) */
    vs_thread_role_enter(VS_THREAD_API, "vessel-api");
    struct request *rq = *con_cls;
    if (!rq) {
        rq = calloc(1, sizeof(*rq));
        if (!rq)
            return MHD_NO;
        rq->s = s;
        *con_cls = rq;
        return MHD_YES;
    }
    if (*upload_size) {
        if (rq->len + *upload_size > MAX_BODY) {
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
        return reply_error(c, MHD_HTTP_CONTENT_TOO_LARGE, "request body too large");

    struct vm_control *ctl = s->ctl;
    bool get = !strcmp(method, "GET"), put = !strcmp(method, "PUT") || !strcmp(method, "POST");
    vs_err err = {0};
    if (!strcmp(url, "/vm") && !strcmp(method, "PATCH"))
        return do_patch(s, c, rq);
    if (!strcmp(url, "/vm") || !strcmp(url, "/")) {
        if (!get)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use GET or PATCH /vm");
        return reply(c, MHD_HTTP_OK, info(s));
    }
    if (!strcmp(url, "/vm/pause") || !strcmp(url, "/vm/resume")) {
        if (!put)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use PUT");
        bool pause = !strcmp(url, "/vm/pause");
        if ((pause ? ctl->pause : ctl->resume)(ctl->machine, &err) < 0)
            return reply_error(c, MHD_HTTP_INTERNAL_SERVER_ERROR, err.msg);
        return reply(
            c, MHD_HTTP_OK,
            json_pack("{s:s}", "state", ctl->is_paused(ctl->machine) ? "paused" : "running"));
    }
    if (!strcmp(url, "/vm/stop")) {
        if (!put)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use PUT");
        if (!ctl->request_stop)
            return reply_error(c, MHD_HTTP_NOT_IMPLEMENTED, "this machine cannot be stopped");
        rq->stop_after = true;
        return reply(c, MHD_HTTP_OK, json_pack("{s:s}", "state", "stopping"));
    }
    if (!strcmp(url, "/snapshot")) {
        if (!put)
            return reply_error(c, MHD_HTTP_METHOD_NOT_ALLOWED, "use PUT");
        if (s->migration && migration_active(s->migration))
            return reply_error(c, MHD_HTTP_CONFLICT, "a migration is in progress");
        return do_snapshot(s, c, rq);
    }
    if (!strcmp(url, "/migrate") || !strcmp(url, "/migrate/cancel"))
        return do_migrate(s, c, rq, url, get, put);
    return reply_error(c, MHD_HTTP_NOT_FOUND, "no such resource (see docs/api.md)");
}

static void request_done(void *cls, struct MHD_Connection *c, void **con_cls,
                         enum MHD_RequestTerminationCode code)
{
    struct request *rq = *con_cls;
    if (rq) {
        if (rq->stop_after)
            rq->s->ctl->request_stop(rq->s->ctl->machine);
        /* only now is the reply out: a migrated VM may stop after it */
        if (rq->told_migration_end && code == MHD_REQUEST_TERMINATED_COMPLETED_OK)
            migration_reported(rq->s->migration);
        free(rq->body);
        free(rq);
    }
    *con_cls = NULL;
}

/* A socket file left by a VM that died is removed; one that answers is in
 * use by a live VM and refused. */
static int prepare_path(const char *path, struct sockaddr_un *sa, vs_err *err)
{
    memset(sa, 0, sizeof(*sa));
    sa->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa->sun_path))
        return vs_error(err, ENAMETOOLONG, "--api-sock %s: path longer than %zu bytes", path,
                        sizeof(sa->sun_path) - 1);
    strcpy(sa->sun_path, path);
    struct stat st;
    if (lstat(path, &st) < 0)
        return 0;
    if (!S_ISSOCK(st.st_mode))
        return vs_error(err, EEXIST, "--api-sock %s: exists and is not a socket", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && connect(fd, (struct sockaddr *)sa, sizeof(*sa)) == 0) {
        close(fd);
        return vs_error(err, EADDRINUSE, "--api-sock %s: another VM is serving it", path);
    }
    if (fd >= 0)
        close(fd);
    unlink(path);
    return 0;
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    char buf[256];
    vsnprintf(buf, sizeof(buf), fmt, ap);
    buf[strcspn(buf, "\n")] = 0;
    vs_debug("api: %s", buf);
}

static int start_daemon(struct api_server *s, vs_err *err)
{
    if (!mhd.start_daemon)
        return vs_error(err, ENOSYS, "--api-sock: %s", mhd.error);
    s->mhd =
        mhd.start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, handle,
                         s, MHD_OPTION_LISTEN_SOCKET, s->fd, MHD_OPTION_NOTIFY_COMPLETED,
                         request_done, NULL, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, 30u, MHD_OPTION_END);
    if (!s->mhd)
        return vs_error(err, EIO, "--api-sock %s: cannot start the HTTP server", s->path);
    return 0;
}

/* Loading libmicrohttpd and its TLS dependencies takes one to a few
 * milliseconds, which a restore would otherwise spend before its vCPUs
 * start; and a dlopen() in progress holds the loader's TLS lock, so even a
 * load on another thread would stall the vCPU threads' pthread_create. So
 * the listening socket exists at once (connections wait in its backlog) and
 * the server is loaded and started when the first client connects. */
static void *starter_thread(void *opaque)
{
    struct api_server *s = opaque;
    /* libmicrohttpd's thread, started from here, inherits the filter */
    vs_thread_role_enter(VS_THREAD_API, "vessel-api");
    struct pollfd p[2] = {{.fd = s->fd, .events = POLLIN}, {.fd = s->wake_fd, .events = POLLIN}};
    while (poll(p, 2, -1) < 0 && errno == EINTR)
        ;
    if (p[1].revents)
        return NULL; /* stopped before anyone connected */
    pthread_once(&mhd_once, mhd_load);
    vs_err err = {0};
    if (start_daemon(s, &err) < 0) {
        vs_err_log("%s; the control API is not served", err.msg);
        close(s->fd);
        s->fd = -1;
        unlink(s->path);
    }
    return NULL;
}

int api_server_start(const char *path, struct vm_control *ctl, const struct vm_restore_source *from,
                     struct api_server **out, vs_err *err)
{
    *out = NULL;
    struct sockaddr_un sa;
    if (prepare_path(path, &sa, err) < 0)
        return -1;
    struct api_server *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "out of memory");
    s->ctl = ctl;
    snapshot_session_init(&s->session, from ? from->origin_dir : NULL,
                          from ? from->origin_id : NULL);
    s->path = strdup(path);
    s->wake_fd = -1;
    s->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (!s->path || s->fd < 0 || bind(s->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        listen(s->fd, 64) < 0) {
        vs_error_errno(err, "--api-sock %s", path);
        goto fail;
    }
    if (__atomic_load_n(&mhd_loaded, __ATOMIC_ACQUIRE)) {
        if (start_daemon(s, err) < 0)
            goto fail;
    } else {
        s->wake_fd = eventfd(0, EFD_CLOEXEC);
        if (s->wake_fd < 0) {
            vs_error_errno(err, "--api-sock: eventfd");
            goto fail;
        }
        int ret = pthread_create(&s->starter, NULL, starter_thread, s);
        if (ret) {
            vs_error(err, ret, "--api-sock: cannot start a thread: %s", strerror(ret));
            goto fail;
        }
        s->starter_running = true;
    }
    *out = s;
    return 0;
fail:
    if (s->fd >= 0) {
        close(s->fd);
        unlink(path);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    snapshot_session_free(&s->session);
    free(s->path);
    free(s);
    return -1;
}

void api_server_stop(struct api_server *s)
{
    if (!s)
        return;
    if (s->starter_running) {
        uint64_t one = 1;
        if (write(s->wake_fd, &one, sizeof(one)) < 0)
            vs_warn("api: waking the server starter: %s", strerror(errno));
        pthread_join(s->starter, NULL);
    }
    if (s->wake_fd >= 0)
        close(s->wake_fd);
    if (s->mhd)
        mhd.stop_daemon(s->mhd); /* also closes the listening socket it was given */
    else if (s->fd >= 0)
        close(s->fd);
    unlink(s->path);
    migration_free(s->migration);
    snapshot_session_free(&s->session);
    free(s->path);
    free(s);
}
