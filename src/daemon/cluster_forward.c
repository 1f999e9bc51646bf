/* Requests for another cluster host, forwarded to its daemon over the
 * daemons' own HTTPS API (docs/cluster.md). A host given an address when
 * it formed or joined the cluster serves HTTPS there (port
 * CLUSTER_API_PORT) and records its certificate's SHA-256 in its hosts/
 * record; the daemons present their own certificates to each other and
 * each accepts those of the cluster's members (besides enrolled clients).
 * The forwarding side checks the answering daemon's certificate against
 * the record too, so neither end trusts an address alone. */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "store/etcd.h"
#include "util/log.h"

#define FORWARD_TIMEOUT_MS 120000
#define FORWARD_MAX_REPLY (16u << 20)

int cluster_cert_fingerprint(const char *pem, char out[65])
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t in = {(unsigned char *)pem, (unsigned)strlen(pem)}, der = {0};
    if (gnutls_x509_crt_init(&crt) < 0)
        return -1;
    int rc = gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) < 0 ||
                     gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0 ||
                     trust_fingerprint_der(der.data, der.size, out) < 0
                 ? -1
                 : 0;
    gnutls_free(der.data);
    gnutls_x509_crt_deinit(crt);
    return rc;
}

static int connect_to(const char *api, int *fd_out, vs_err *err)
{
    char host[256];
    const char *colon = strrchr(api, ':');
    if (!colon || colon == api || (size_t)(colon - api) >= sizeof(host))
        return vs_error(err, EINVAL, "bad cluster API address '%s'", api);
    memcpy(host, api, (size_t)(colon - api));
    host[colon - api] = 0;
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV}, *ai;
    if (getaddrinfo(host, colon + 1, &hints, &ai) != 0)
        return vs_error(err, EHOSTUNREACH, "cannot resolve %s", api);
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct timeval tv = {.tv_sec = FORWARD_TIMEOUT_MS / 1000};
    if (fd >= 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    }
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) < 0) {
        vs_error(err, EHOSTUNREACH, "cannot reach the daemon at %s: %s", api, strerror(errno));
        if (fd >= 0)
            close(fd);
        freeaddrinfo(ai);
        return -1;
    }
    freeaddrinfo(ai);
    *fd_out = fd;
    return 0;
}

/* gnutls_record_send takes at most one record's worth at a time */
static int send_all(gnutls_session_t sess, const char *p, size_t n, long long deadline)
{
    while (n > 0) {
        ssize_t w = gnutls_record_send(sess, p, n);
        if ((w == GNUTLS_E_AGAIN || w == GNUTLS_E_INTERRUPTED) && daemon_now_ms() < deadline)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int cluster_forward(struct daemon *d, const char *host, const char *method, const char *url,
                    const char *body, size_t body_len, unsigned *status, char **reply, vs_err *err)
{
    json_t *rec = cluster_host_record(d, host, err);
    if (!rec)
        return -1;
    const char *api = json_string_value(json_object_get(rec, "api"));
    const char *want_fp = json_string_value(json_object_get(rec, "certificate"));
    if (!api || !api[0] || !want_fp) {
        json_decref(rec);
        return vs_error(err, EREMOTE,
                        "host %s has no cluster API address (it joined without --address): run "
                        "this on %s",
                        host, host);
    }
    char *key_pem = NULL, *cert_pem = NULL, *req = NULL, *buf = NULL;
    gnutls_certificate_credentials_t cred = NULL;
    gnutls_session_t sess = NULL;
    int fd = -1, rc = -1;
    size_t len = 0, cap = 0;
    long long deadline = daemon_now_ms() + FORWARD_TIMEOUT_MS;
    if (trust_server_identity(d, &key_pem, &cert_pem, err) < 0 || connect_to(api, &fd, err) < 0)
        goto out;
    gnutls_datum_t k = {(unsigned char *)key_pem, (unsigned)strlen(key_pem)};
    gnutls_datum_t c = {(unsigned char *)cert_pem, (unsigned)strlen(cert_pem)};
    if (gnutls_certificate_allocate_credentials(&cred) < 0 ||
        gnutls_certificate_set_x509_key_mem(cred, &c, &k, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_init(&sess, GNUTLS_CLIENT) < 0 || gnutls_set_default_priority(sess) < 0 ||
        gnutls_credentials_set(sess, GNUTLS_CRD_CERTIFICATE, cred) < 0) {
        vs_error(err, EIO, "TLS setup for host %s failed", host);
        goto out;
    }
    gnutls_transport_set_int(sess, fd);
    gnutls_handshake_set_timeout(sess, 10000);
    int r;
    do
        r = gnutls_handshake(sess);
    while (r < 0 && !gnutls_error_is_fatal(r) && daemon_now_ms() < deadline);
    if (r < 0) {
        vs_error(err, EHOSTUNREACH, "TLS with host %s (%s): %s", host, api, gnutls_strerror(r));
        goto out;
    }
    /* the daemon that answers must be the member the record names */
    unsigned n = 0;
    const gnutls_datum_t *peer = gnutls_certificate_get_peers(sess, &n);
    char fp[65];
    if (!peer || n == 0 || trust_fingerprint_der(peer[0].data, peer[0].size, fp) < 0 ||
        strcmp(fp, want_fp)) {
        vs_error(err, EPERM, "the daemon at %s is not host %s (its certificate differs)", api,
                 host);
        goto out;
    }
    int rl = asprintf(&req,
                      "%s %s HTTP/1.0\r\nHost: %s\r\nContent-Type: application/json\r\n"
                      "Content-Length: %zu\r\n\r\n",
                      method, url, host, body_len);
    if (rl < 0) {
        req = NULL;
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    if (send_all(sess, req, (size_t)rl, deadline) < 0 ||
        send_all(sess, body, body_len, deadline) < 0) {
        vs_error(err, EIO, "sending to host %s failed", host);
        goto out;
    }
    for (;;) {
        if (len + 4097 > cap) {
            char *nb = cap + 65536 > FORWARD_MAX_REPLY ? NULL : realloc(buf, cap + 65536);
            if (!nb) {
                vs_error(err, EIO, "the answer of host %s is too large", host);
                goto out;
            }
            buf = nb;
            cap += 65536;
        }
        ssize_t got = gnutls_record_recv(sess, buf + len, cap - len - 1);
        /* AGAIN: the socket's timeout (then give up), or a TLS 1.3 message
         * that was not data */
        if ((got == GNUTLS_E_AGAIN || got == GNUTLS_E_INTERRUPTED) && daemon_now_ms() < deadline)
            continue;
        if (got == 0 || got == GNUTLS_E_PREMATURE_TERMINATION)
            break;
        if (got < 0) {
            vs_error(err, EIO, "reading from host %s: %s", host, gnutls_strerror((int)got));
            goto out;
        }
        len += (size_t)got;
    }
    buf[len] = 0;
    char *hdr_end = strstr(buf, "\r\n\r\n");
    if (sscanf(buf, "HTTP/%*d.%*d %u", status) != 1 || !hdr_end) {
        vs_error(err, EIO, "host %s sent no HTTP answer", host);
        goto out;
    }
    *reply = strdup(hdr_end + 4);
    rc = *reply ? 0 : vs_error(err, ENOMEM, "out of memory");
out:
    if (sess) {
        gnutls_bye(sess, GNUTLS_SHUT_WR);
        gnutls_deinit(sess);
    }
    if (cred)
        gnutls_certificate_free_credentials(cred);
    if (fd >= 0)
        close(fd);
    free(key_pem);
    free(cert_pem);
    free(req);
    free(buf);
    json_decref(rec);
    return rc;
}
