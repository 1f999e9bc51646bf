/* Asynchronous operations: long work (image import now; copy, publish and
 * migration later) runs on a thread of its own and is recorded in the store
 * with its progress, so a client can poll it, wait for it, and find out
 * after a daemon restart that it was cut off. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/log.h"

static pthread_mutex_t done_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t done_cond = PTHREAD_COND_INITIALIZER;

struct op_job {
    struct daemon *d;
    operation_fn fn;
    json_t *req;
    char id[40];
    bool cancel;
    struct op_job *next; /* the running ones, for cancel */
};
static struct op_job *running;

static void new_id(char *out, size_t n)
{
    unsigned char b[16];
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd < 0 || read(fd, b, sizeof(b)) != sizeof(b)) {
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (unsigned char)(rand() ^ (daemon_now_ms() >> (i % 8)));
    }
    if (fd >= 0)
        close(fd);
    b[6] = (b[6] & 0x0f) | 0x40; /* a version 4 UUID */
    b[8] = (b[8] & 0x3f) | 0x80;
    snprintf(out, n, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
}

static void finish(struct daemon *d, const char *id, json_t *result, const vs_err *err)
{
    vs_err e2 = {0};
    json_t *op = store_op_get(d->store, id, &e2);
    if (!op)
        return;
    json_object_set_new(op, "status",
                        json_string(result                   ? "success"
                                    : err->code == ECANCELED ? "cancelled"
                                                             : "failure"));
    json_object_set_new(op, "result", result ? result : json_object());
    if (!result)
        json_object_set_new(op, "error", json_string(err->msg[0] ? err->msg : "failed"));
    json_object_set_new(op, "updated_at", json_integer(daemon_now_ms()));
    if (store_op_update(d->store, op, &e2) < 0)
        vs_warn("operation %s: %s", id, e2.msg);
    daemon_event(d, "operation", result ? "success" : "failure", id,
                 json_pack("{s:O, s:O}", "kind", json_object_get(op, "kind"), "target",
                           json_object_get(op, "target")));
    json_decref(op);
    pthread_mutex_lock(&done_lock);
    pthread_cond_broadcast(&done_cond);
    pthread_mutex_unlock(&done_lock);
}

static void *op_thread(void *opaque)
{
    struct op_job *j = opaque;
    vs_err err = {0};
    json_t *result = j->fn(j->d, j->req, j->id, &err);
    finish(j->d, j->id, result, &err);
    pthread_mutex_lock(&done_lock);
    for (struct op_job **p = &running; *p; p = &(*p)->next)
        if (*p == j) {
            *p = j->next;
            break;
        }
    pthread_mutex_unlock(&done_lock);
    json_decref(j->req);
    free(j);
    return NULL;
}

json_t *operation_start(struct daemon *d, const char *kind, const char *target, operation_fn fn,
                        json_t *req, vs_err *err)
{
    struct op_job *j = calloc(1, sizeof(*j));
    if (!j) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    new_id(j->id, sizeof(j->id));
    long long now = daemon_now_ms();
    json_t *op = json_pack("{s:s, s:s, s:s?, s:s, s:{}, s:{}, s:n, s:I, s:I}", "id", j->id, "kind",
                           kind, "target", target, "status", "running", "progress", "result",
                           "error", "created_at", (json_int_t)now, "updated_at", (json_int_t)now);
    if (!op || store_op_insert(d->store, op, err) < 0) {
        json_decref(op);
        free(j);
        return NULL;
    }
    daemon_event(d, "operation", "created", j->id,
                 json_pack("{s:s, s:s?}", "kind", kind, "target", target));
    j->d = d;
    j->fn = fn;
    j->req = json_deep_copy(req);
    pthread_mutex_lock(&done_lock);
    j->next = running;
    running = j;
    pthread_mutex_unlock(&done_lock);
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    int rc = pthread_create(&t, &attr, op_thread, j);
    pthread_attr_destroy(&attr);
    if (rc) {
        vs_error(err, rc, "cannot start the operation: %s", strerror(rc));
        finish(d, j->id, NULL, err);
        pthread_mutex_lock(&done_lock);
        running = j->next;
        pthread_mutex_unlock(&done_lock);
        json_decref(j->req);
        free(j);
        json_decref(op);
        return NULL;
    }
    return op;
}

void operation_progress(struct daemon *d, const char *op_id, json_t *progress)
{
    vs_err err = {0};
    json_t *op = op_id ? store_op_get(d->store, op_id, &err) : NULL;
    if (op) {
        json_object_set(op, "progress", progress);
        json_object_set_new(op, "updated_at", json_integer(daemon_now_ms()));
        store_op_update(d->store, op, &err);
        json_decref(op);
    }
    json_decref(progress);
}

json_t *operation_wait(struct daemon *d, const char *id, int timeout_s, vs_err *err)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_s;
    for (;;) {
        json_t *op = store_op_get(d->store, id, err);
        if (!op || strcmp(json_string_value(json_object_get(op, "status")), "running"))
            return op;
        json_decref(op);
        pthread_mutex_lock(&done_lock);
        /* a short wait too: an operation may end between the check and here */
        struct timespec now, step;
        clock_gettime(CLOCK_REALTIME, &now);
        step = now;
        step.tv_nsec += 200 * 1000000L;
        if (step.tv_nsec >= 1000000000L) {
            step.tv_sec++;
            step.tv_nsec -= 1000000000L;
        }
        int rc = pthread_cond_timedwait(&done_cond, &done_lock, &step);
        pthread_mutex_unlock(&done_lock);
        if (rc == ETIMEDOUT && (now.tv_sec > until.tv_sec ||
                                (now.tv_sec == until.tv_sec && now.tv_nsec >= until.tv_nsec)))
            return store_op_get(d->store, id, err);
    }
}

/* A running operation in the store at start-up belonged to a daemon that
 * died: it is marked failed (its partial work is undone by the owners'
 * reconcile, e.g. image_reconcile). */
void operation_reconcile(struct daemon *d)
{
    vs_err err = {0};
    json_t *ops = store_op_list(d->store, &err), *op;
    size_t i;
    json_array_foreach(ops, i, op)
    {
        if (strcmp(json_string_value(json_object_get(op, "status")), "running"))
            continue;
        json_object_set_new(op, "status", json_string("failure"));
        json_object_set_new(op, "error",
                            json_string("cut off by a daemon restart; its partial work was "
                                        "rolled back"));
        json_object_set_new(op, "updated_at", json_integer(daemon_now_ms()));
        store_op_update(d->store, op, &err);
    }
    json_decref(ops);
}

bool operation_cancelled(const char *op_id)
{
    bool c = false;
    pthread_mutex_lock(&done_lock);
    for (struct op_job *j = running; j && op_id; j = j->next)
        if (!strcmp(j->id, op_id))
            c = j->cancel;
    pthread_mutex_unlock(&done_lock);
    return c;
}

int operation_cancel(struct daemon *d, const char *id, vs_err *err)
{
    bool found = false;
    pthread_mutex_lock(&done_lock);
    for (struct op_job *j = running; j; j = j->next)
        if (!strcmp(j->id, id)) {
            j->cancel = true;
            found = true;
        }
    pthread_mutex_unlock(&done_lock);
    if (found)
        return 0;
    json_t *op = store_op_get(d->store, id, err);
    if (!op)
        return -1;
    json_decref(op);
    return vs_error(err, EEXIST, "operation %s has ended", id);
}
