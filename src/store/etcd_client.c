/* etcd's v3 JSON gateway over HTTP/1.0 (etcd.h). */
#include "store/etcd.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <stdatomic.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "util/log.h"

#define ETCD_MAX_ENDPOINTS 16
#define ETCD_MAX_REPLY (64u << 20)
/* A read or write waits this long for an answer before the cluster is
 * taken for one without quorum (etcd itself waits ~7 s before it gives up). */
#define ETCD_TIMEOUT_MS 2500
#define ETCD_CONNECT_MS 1000
/* After a read without quorum, reads are served stale this long before a
 * linearizable one is tried again. */
#define ETCD_DEGRADED_MS 3000

struct etcd {
    char *spec;
    /* until then (monotonic ms) reads go straight to a serializable read:
     * a linearizable one just timed out, and each would wait as long */
    _Atomic long long degraded_until;
    unsigned n;
    struct {
        char host[256], port[16];
        bool tls; /* https:// */
    } ep[ETCD_MAX_ENDPOINTS];
    gnutls_certificate_credentials_t cred; /* the CA, and our certificate if any */
};

static const char b64chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static char *b64_encode(const char *in, size_t n)
{
    char *out = malloc(4 * ((n + 2) / 3) + 1), *o = out;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n; i += 3) {
        unsigned v = (unsigned char)in[i] << 16;
        if (i + 1 < n)
            v |= (unsigned char)in[i + 1] << 8;
        if (i + 2 < n)
            v |= (unsigned char)in[i + 2];
        *o++ = b64chars[(v >> 18) & 63];
        *o++ = b64chars[(v >> 12) & 63];
        *o++ = i + 1 < n ? b64chars[(v >> 6) & 63] : '=';
        *o++ = i + 2 < n ? b64chars[v & 63] : '=';
    }
    *o = 0;
    return out;
}

/* NUL-terminated; NULL on bad input */
static char *b64_decode(const char *in)
{
    size_t n = strlen(in);
    char *out = malloc(n / 4 * 3 + 4), *o = out;
    unsigned v = 0, bits = 0;
    if (!out)
        return NULL;
    for (size_t i = 0; i < n && in[i] != '='; i++) {
        const char *p = strchr(b64chars, in[i]);
        if (!p || !in[i]) {
            free(out);
            return NULL;
        }
        v = (v << 6) | (unsigned)(p - b64chars);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            *o++ = (char)((v >> bits) & 0xff);
        }
    }
    *o = 0;
    return out;
}

/* The key's prefix range end: the key with its last byte incremented. */
static char *prefix_end(const char *key)
{
    size_t n = strlen(key);
    char *end = strdup(key);
    while (end && n > 0) {
        if ((unsigned char)end[n - 1] < 0xff) {
            end[n - 1]++;
            end[n] = 0;
            return end;
        }
        n--;
    }
    if (end)
        strcpy(end, "\\0"); /* never reached for our keys */
    return end;
}

static json_t *b64_json(const char *s)
{
    char *b = b64_encode(s, strlen(s));
    json_t *j = json_string(b ? b : "");
    free(b);
    return j;
}

int etcd_open(const char *endpoints, struct etcd **out, vs_err *err)
{
    struct etcd *e = calloc(1, sizeof(*e));
    if (!e || !(e->spec = strdup(endpoints))) {
        free(e);
        return vs_error(err, ENOMEM, "out of memory");
    }
    char *copy = strdup(endpoints), *save = NULL;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        bool tls = !strncmp(tok, "https://", 8);
        if (tls)
            tok += 8;
        else if (!strncmp(tok, "http://", 7))
            tok += 7;
        char *slash = strchr(tok, '/');
        if (slash)
            *slash = 0;
        char *colon = strrchr(tok, ':');
        if (e->n == ETCD_MAX_ENDPOINTS || !colon || colon == tok ||
            snprintf(e->ep[e->n].host, sizeof(e->ep[0].host), "%.*s", (int)(colon - tok), tok) >=
                (int)sizeof(e->ep[0].host) ||
            snprintf(e->ep[e->n].port, sizeof(e->ep[0].port), "%s", colon + 1) >=
                (int)sizeof(e->ep[0].port)) {
            free(copy);
            etcd_close(e);
            return vs_error(err, EINVAL, "etcd endpoint '%s': expected http[s]://HOST:PORT", tok);
        }
        e->ep[e->n].tls = tls;
        e->n++;
    }
    free(copy);
    if (!e->n) {
        etcd_close(e);
        return vs_error(err, EINVAL, "no etcd endpoint in '%s'", endpoints);
    }
    *out = e;
    return 0;
}

int etcd_set_tls(struct etcd *e, const char *ca, const char *cert, const char *key, vs_err *err)
{
    if (!ca && !cert)
        return 0;
    if (!ca || (!cert) != (!key))
        return vs_error(err, EINVAL,
                        "TLS to etcd needs its CA (and a certificate with its key, or neither)");
    int r;
    if (gnutls_certificate_allocate_credentials(&e->cred) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    if ((r = gnutls_certificate_set_x509_trust_file(e->cred, ca, GNUTLS_X509_FMT_PEM)) <= 0)
        return vs_error(err, EINVAL, "etcd CA %s: %s", ca,
                        r == 0 ? "no certificate in it" : gnutls_strerror(r));
    if (cert &&
        (r = gnutls_certificate_set_x509_key_file(e->cred, cert, key, GNUTLS_X509_FMT_PEM)) < 0)
        return vs_error(err, EINVAL, "etcd client certificate %s / key %s: %s", cert, key,
                        gnutls_strerror(r));
    return 0;
}

void etcd_close(struct etcd *e)
{
    if (!e)
        return;
    if (e->cred)
        gnutls_certificate_free_credentials(e->cred);
    free(e->spec);
    free(e);
}

const char *etcd_endpoints(struct etcd *e)
{
    return e->spec;
}

static long long now_ms(void);

bool etcd_degraded(struct etcd *e)
{
    return now_ms() < atomic_load(&e->degraded_until);
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int wait_fd(int fd, short ev, long long deadline)
{
    for (;;) {
        long long left = deadline - now_ms();
        if (left <= 0)
            return -ETIMEDOUT;
        struct pollfd p = {.fd = fd, .events = ev};
        int r = poll(&p, 1, (int)left);
        if (r > 0)
            return 0;
        if (r < 0 && errno != EINTR)
            return -errno;
    }
}

/* The request over TLS (blocking, with the socket's timeouts): the whole
 * reply in *out. */
static int tls_exchange(struct etcd *e, unsigned i, int fd, const char *req, size_t n,
                        long long deadline, char **out, size_t *len, vs_err *err)
{
    long long left = deadline - now_ms();
    struct timeval tv = {.tv_sec = left / 1000, .tv_usec = (left % 1000) * 1000};
    int fl = fcntl(fd, F_GETFL);
    if (left <= 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0 ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv)) < 0)
        return vs_error(err, ETIMEDOUT, "etcd %s:%s: no answer in time", e->ep[i].host,
                        e->ep[i].port);
    if (!e->cred)
        return vs_error(err, EINVAL,
                        "etcd %s:%s: https needs the CA of etcd's certificate (--etcd-ca)",
                        e->ep[i].host, e->ep[i].port);
    gnutls_session_t sess;
    if (gnutls_init(&sess, GNUTLS_CLIENT) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    unsigned char ipbuf[16];
    bool is_ip = inet_pton(AF_INET, e->ep[i].host, ipbuf) == 1 ||
                 inet_pton(AF_INET6, e->ep[i].host, ipbuf) == 1;
    int rc = -1, r;
    char *buf = NULL;
    size_t cap = 0, got = 0;
    if (gnutls_set_default_priority(sess) < 0 ||
        gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, e->cred) < 0 ||
        (!is_ip &&
         gnutls_server_name_set(sess, GNUTLS_NAME_DNS, e->ep[i].host, strlen(e->ep[i].host)) < 0)) {
        vs_error(err, EIO, "etcd %s:%s: TLS setup failed", e->ep[i].host, e->ep[i].port);
        goto out;
    }
    /* the server's certificate must chain to the CA and name the host */
    gnutls_session_set_verify_cert(sess, e->ep[i].host, 0);
    gnutls_transport_set_int(sess, fd);
    gnutls_handshake_set_timeout(sess, (unsigned)left);
    do
        r = gnutls_handshake(sess);
    while (r < 0 && !gnutls_error_is_fatal(r) && now_ms() < deadline);
    if (r < 0) {
        int code = r == GNUTLS_E_TIMEDOUT || r == GNUTLS_E_PULL_ERROR ? ETIMEDOUT : EIO;
        if (r == GNUTLS_E_CERTIFICATE_VERIFICATION_ERROR) {
            gnutls_datum_t why = {0};
            gnutls_certificate_verification_status_print(
                gnutls_session_get_verify_cert_status(sess), GNUTLS_CRT_X509, &why, 0);
            vs_error(err, EIO, "etcd %s:%s: its certificate is not trusted: %s", e->ep[i].host,
                     e->ep[i].port, why.data ? (const char *)why.data : "?");
            gnutls_free(why.data);
        } else {
            vs_error(err, code, "etcd %s:%s: TLS: %s", e->ep[i].host, e->ep[i].port,
                     gnutls_strerror(r));
        }
        goto out;
    }
    for (size_t off = 0; off < n;) {
        ssize_t w = gnutls_record_send(sess, req + off, n - off);
        if ((w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) && now_ms() < deadline)
            continue;
        if (w < 0) {
            vs_error(err, ETIMEDOUT, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port,
                     gnutls_strerror((int)w));
            goto out;
        }
        off += (size_t)w;
    }
    for (;;) {
        if (got + 4097 > cap) {
            char *nb = cap + 65536 > ETCD_MAX_REPLY ? NULL : realloc(buf, cap + 65536);
            if (!nb) {
                vs_error(err, EIO, "etcd %s:%s: reply too large", e->ep[i].host, e->ep[i].port);
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        ssize_t k = gnutls_record_recv(sess, buf + got, cap - got - 1);
        /* AGAIN: the socket's timeout, or a TLS 1.3 message that was not
         * data (a session ticket) */
        if ((k == GNUTLS_E_INTERRUPTED || k == GNUTLS_E_AGAIN) && now_ms() < deadline)
            continue;
        if (k == 0 || k == GNUTLS_E_PREMATURE_TERMINATION)
            break;
        if (k < 0) {
            vs_error(err, ETIMEDOUT, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port,
                     gnutls_strerror((int)k));
            goto out;
        }
        got += (size_t)k;
    }
    *out = buf;
    *len = got;
    buf = NULL;
    rc = 0;
out:
    gnutls_bye(sess, GNUTLS_SHUT_WR);
    gnutls_deinit(sess);
    free(buf);
    return rc;
}

/* The request in the clear, non-blocking with poll against the deadline. */
static int plain_exchange(struct etcd *e, unsigned i, int fd, const char *req, size_t n,
                          long long deadline, int timeout_ms, char **out, size_t *len, vs_err *err)
{
    char *reply = NULL;
    size_t got = 0, cap = 0;
    int r;
    for (size_t off = 0; off < n;) {
        ssize_t w = send(fd, req + off, n - off, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
        } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            return vs_error(err, ECONNREFUSED, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port,
                            strerror(errno));
        } else if ((r = wait_fd(fd, POLLOUT, deadline)) < 0) {
            return vs_error(err, -r, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port, strerror(-r));
        }
    }
    for (;;) {
        if (got + 4096 > cap) {
            char *nb = cap + 65536 > ETCD_MAX_REPLY ? NULL : realloc(reply, cap + 65536);
            if (!nb) {
                free(reply);
                return vs_error(err, EIO, "etcd %s:%s: reply too large", e->ep[i].host,
                                e->ep[i].port);
            }
            reply = nb;
            cap += 65536;
        }
        ssize_t k = recv(fd, reply + got, cap - got - 1, 0);
        if (k > 0) {
            got += (size_t)k;
        } else if (k == 0) {
            break;
        } else if (errno != EAGAIN && errno != EINTR) {
            free(reply);
            return vs_error(err, EIO, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port,
                            strerror(errno));
        } else if (wait_fd(fd, POLLIN, deadline) < 0) {
            free(reply);
            return vs_error(err, ETIMEDOUT, "etcd %s:%s: no answer in %d ms", e->ep[i].host,
                            e->ep[i].port, timeout_ms);
        }
    }
    *out = reply;
    *len = got;
    return 0;
}

/* One POST to endpoint i. -1 with ECONNREFUSED (try another endpoint),
 * ETIMEDOUT, or EIO for an HTTP error (the gateway's message). */
static json_t *post(struct etcd *e, unsigned i, const char *path, const char *body, int timeout_ms,
                    vs_err *err)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai = NULL;
    if (getaddrinfo(e->ep[i].host, e->ep[i].port, &hints, &ai) != 0 || !ai) {
        vs_error(err, ECONNREFUSED, "etcd %s:%s: cannot resolve", e->ep[i].host, e->ep[i].port);
        return NULL;
    }
    long long start = now_ms(), deadline = start + timeout_ms;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0), r = 0;
    char *reply = NULL, *req = NULL;
    size_t len = 0;
    json_t *out = NULL;
    if (fd < 0) {
        vs_error_errno(err, "socket");
        goto done;
    }
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        int soerr = errno;
        socklen_t sl = sizeof(soerr);
        if (errno != EINPROGRESS || (r = wait_fd(fd, POLLOUT, start + ETCD_CONNECT_MS)) < 0 ||
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) < 0 || soerr) {
            vs_error(err, ECONNREFUSED, "etcd %s:%s: %s", e->ep[i].host, e->ep[i].port,
                     strerror(r < 0 ? -r : soerr));
            goto done;
        }
    }
    int n = asprintf(&req,
                     "POST %s HTTP/1.0\r\nHost: %s:%s\r\nContent-Type: application/json\r\n"
                     "Content-Length: %zu\r\n\r\n%s",
                     path, e->ep[i].host, e->ep[i].port, strlen(body), body);
    if (n < 0) {
        req = NULL;
        vs_error(err, ENOMEM, "out of memory");
        goto done;
    }
    if ((e->ep[i].tls ? tls_exchange(e, i, fd, req, (size_t)n, deadline, &reply, &len, err)
                      : plain_exchange(e, i, fd, req, (size_t)n, deadline, timeout_ms, &reply, &len,
                                       err)) < 0)
        goto done;
    reply[len] = 0;
    int status = 0;
    char *hdr_end = strstr(reply, "\r\n\r\n");
    if (sscanf(reply, "HTTP/%*d.%*d %d", &status) != 1 || !hdr_end) {
        vs_error(err, EIO, "etcd %s:%s: not an HTTP reply", e->ep[i].host, e->ep[i].port);
        goto done;
    }
    json_error_t jerr;
    json_t *j = json_loads(hdr_end + 4, 0, &jerr);
    if (status != 200) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "message"));
        int code = (int)json_integer_value(json_object_get(j, "code"));
        /* gRPC UNAVAILABLE and DEADLINE_EXCEEDED: no leader, no quorum */
        vs_error(err, code == 14 || code == 4 ? ETIMEDOUT : EIO, "etcd %s:%s: %s", e->ep[i].host,
                 e->ep[i].port, msg ? msg : "HTTP error");
        json_decref(j);
        goto done;
    }
    if (!j) {
        vs_error(err, EIO, "etcd %s:%s: bad JSON: %s", e->ep[i].host, e->ep[i].port, jerr.text);
        goto done;
    }
    out = j;
done:
    if (fd >= 0)
        close(fd);
    freeaddrinfo(ai);
    free(req);
    free(reply);
    return out;
}

/* Every endpoint in turn while they refuse. */
static json_t *call(struct etcd *e, const char *path, json_t *body, int timeout_ms, vs_err *err)
{
    char *text = json_dumps(body, JSON_COMPACT);
    json_t *out = NULL;
    vs_err last = {0};
    if (!text) {
        vs_error(err, ENOMEM, "out of memory");
        return NULL;
    }
    for (unsigned i = 0; i < e->n && !out; i++) {
        out = post(e, i, path, text, timeout_ms, &last);
        if (!out && last.code != ECONNREFUSED)
            break;
    }
    free(text);
    if (!out)
        vs_error(err, last.code == EIO ? EIO : ETCD_UNAVAILABLE, "%s", last.msg);
    return out;
}

static long long num(json_t *j, const char *key)
{
    json_t *v = json_object_get(j, key);
    return json_is_string(v) ? strtoll(json_string_value(v), NULL, 10) : json_integer_value(v);
}

json_t *etcd_range(struct etcd *e, const char *key, bool prefix, bool *stale, vs_err *err)
{
    json_t *req = json_pack("{s:o}", "key", b64_json(key));
    if (prefix) {
        char *end = prefix_end(key);
        json_object_set_new(req, "range_end", b64_json(end ? end : key));
        free(end);
    }
    if (stale)
        *stale = false;
    vs_err e1 = {0};
    json_t *reply = NULL;
    if (now_ms() >= atomic_load(&e->degraded_until))
        reply = call(e, "/v3/kv/range", req, ETCD_TIMEOUT_MS, &e1);
    else
        vs_error(&e1, ETCD_UNAVAILABLE, "no quorum a moment ago");
    if (!reply && e1.code == ETCD_UNAVAILABLE) {
        if (now_ms() >= atomic_load(&e->degraded_until))
            atomic_store(&e->degraded_until, now_ms() + ETCD_DEGRADED_MS);
        /* no quorum (or no leader): what any member has, marked stale */
        json_object_set_new(req, "serializable", json_true());
        reply = call(e, "/v3/kv/range", req, ETCD_TIMEOUT_MS, NULL);
        if (reply && stale)
            *stale = true;
        if (reply)
            vs_debug("etcd: %s; serving a stale read", e1.msg);
    }
    json_decref(req);
    if (!reply) {
        vs_error(err, ETCD_UNAVAILABLE, "the cluster store (etcd) is unreachable: %s", e1.msg);
        return NULL;
    }
    json_t *out = json_array(), *kv;
    size_t i;
    json_array_foreach(json_object_get(reply, "kvs"), i, kv)
    {
        char *k = b64_decode(json_string_value(json_object_get(kv, "key")) ?: "");
        const char *v64 = json_string_value(json_object_get(kv, "value"));
        char *v = b64_decode(v64 ? v64 : "");
        json_array_append_new(out, json_pack("{s:s, s:s, s:I, s:I, s:I}", "key", k ? k : "",
                                             "value", v ? v : "", "create_revision",
                                             (json_int_t)num(kv, "create_revision"), "mod_revision",
                                             (json_int_t)num(kv, "mod_revision"), "lease",
                                             (json_int_t)num(kv, "lease")));
        free(k);
        free(v);
    }
    json_decref(reply);
    return out;
}

static int write_call(struct etcd *e, const char *path, json_t *req, json_t **reply, vs_err *err)
{
    vs_err e1 = {0};
    *reply = call(e, path, req, ETCD_TIMEOUT_MS, &e1);
    if (*reply)
        return 0;
    if (e1.code == ETCD_UNAVAILABLE) {
        atomic_store(&e->degraded_until, now_ms() + ETCD_DEGRADED_MS);
        return vs_error(err, ETCD_UNAVAILABLE, ETCD_NO_QUORUM_MSG " [%s]", e1.msg);
    }
    return vs_error(err, e1.code, "%s", e1.msg);
}

int etcd_txn(struct etcd *e, json_t *compare, json_t *success, json_t *failure, bool *succeeded,
             vs_err *err)
{
    json_t *req = json_pack("{s:O, s:O}", "compare", compare, "success", success), *reply;
    if (failure)
        json_object_set(req, "failure", failure);
    int rc = write_call(e, "/v3/kv/txn", req, &reply, err);
    json_decref(req);
    if (rc == 0) {
        *succeeded = json_is_true(json_object_get(reply, "succeeded"));
        json_decref(reply);
    }
    return rc;
}

int etcd_put(struct etcd *e, const char *key, const char *value, long long lease, vs_err *err)
{
    json_t *req = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value)), *reply;
    if (lease > 0)
        json_object_set_new(req, "lease", json_integer(lease));
    int rc = write_call(e, "/v3/kv/put", req, &reply, err);
    json_decref(req);
    json_decref(reply);
    return rc;
}

long long etcd_delete(struct etcd *e, const char *key, bool prefix, vs_err *err)
{
    json_t *req = json_pack("{s:o}", "key", b64_json(key)), *reply;
    if (prefix) {
        char *end = prefix_end(key);
        json_object_set_new(req, "range_end", b64_json(end ? end : key));
        free(end);
    }
    int rc = write_call(e, "/v3/kv/deleterange", req, &reply, err);
    json_decref(req);
    if (rc < 0)
        return -1;
    long long n = num(reply, "deleted");
    json_decref(reply);
    return n;
}

long long etcd_lease_grant(struct etcd *e, int ttl, vs_err *err)
{
    json_t *req = json_pack("{s:i}", "TTL", ttl), *reply;
    int rc = write_call(e, "/v3/lease/grant", req, &reply, err);
    json_decref(req);
    if (rc < 0)
        return -1;
    long long id = num(reply, "ID");
    json_decref(reply);
    return id > 0 ? id : vs_error(err, EIO, "etcd granted no lease");
}

int etcd_lease_keepalive(struct etcd *e, long long id, vs_err *err)
{
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *reply;
    int rc = write_call(e, "/v3/lease/keepalive", req, &reply, err);
    json_decref(req);
    if (rc < 0)
        return -1;
    long long ttl = num(json_object_get(reply, "result"), "TTL");
    json_decref(reply);
    return ttl > 0 ? 0 : vs_error(err, ENOENT, "etcd lease %llx has expired", id);
}

int etcd_lease_revoke(struct etcd *e, long long id, vs_err *err)
{
    json_t *req = json_pack("{s:I}", "ID", (json_int_t)id), *reply;
    int rc = write_call(e, "/v3/lease/revoke", req, &reply, err);
    json_decref(req);
    json_decref(reply);
    return rc;
}

json_t *etcd_cmp_exists(const char *key, bool exists)
{
    return json_pack("{s:o, s:s, s:s, s:s}", "key", b64_json(key), "result",
                     exists ? "GREATER" : "EQUAL", "target", "CREATE", "create_revision", "0");
}

json_t *etcd_cmp_mod_revision(const char *key, long long rev)
{
    return json_pack("{s:o, s:s, s:s, s:I}", "key", b64_json(key), "result", "EQUAL", "target",
                     "MOD", "mod_revision", (json_int_t)rev);
}

json_t *etcd_op_put(const char *key, const char *value, long long lease)
{
    json_t *put = json_pack("{s:o, s:o}", "key", b64_json(key), "value", b64_json(value));
    if (lease > 0)
        json_object_set_new(put, "lease", json_integer(lease));
    return json_pack("{s:o}", "request_put", put);
}

json_t *etcd_op_delete(const char *key, bool prefix)
{
    json_t *del = json_pack("{s:o}", "key", b64_json(key));
    if (prefix) {
        char *end = prefix_end(key);
        json_object_set_new(del, "range_end", b64_json(end ? end : key));
        free(end);
    }
    return json_pack("{s:o}", "request_delete_range", del);
}
