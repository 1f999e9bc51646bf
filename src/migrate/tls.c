#include "migrate/tls.h"

#include <errno.h>
#include <gnutls/gnutls.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/dynlib.h"
#include "util/io.h"

static struct {
    __typeof__(gnutls_init) *init;
    __typeof__(gnutls_deinit) *deinit;
    __typeof__(gnutls_priority_set_direct) *priority_set_direct;
    __typeof__(gnutls_set_default_priority) *set_default_priority;
    __typeof__(gnutls_credentials_set) *credentials_set;
    __typeof__(gnutls_psk_allocate_client_credentials) *psk_alloc_client;
    __typeof__(gnutls_psk_allocate_server_credentials) *psk_alloc_server;
    __typeof__(gnutls_psk_set_client_credentials) *psk_set_client;
    __typeof__(gnutls_psk_set_server_credentials_file) *psk_set_server_file;
    __typeof__(gnutls_psk_free_client_credentials) *psk_free_client;
    __typeof__(gnutls_psk_free_server_credentials) *psk_free_server;
    __typeof__(gnutls_certificate_allocate_credentials) *cert_alloc;
    __typeof__(gnutls_certificate_free_credentials) *cert_free;
    __typeof__(gnutls_certificate_set_x509_trust_file) *cert_trust_file;
    __typeof__(gnutls_certificate_set_x509_key_file) *cert_key_file;
    __typeof__(gnutls_certificate_server_set_request) *cert_server_request;
    __typeof__(gnutls_session_set_verify_cert) *verify_cert;
    __typeof__(gnutls_server_name_set) *server_name_set;
    __typeof__(gnutls_transport_set_int2) *transport_set_int2;
    __typeof__(gnutls_handshake) *handshake;
    __typeof__(gnutls_handshake_set_timeout) *handshake_set_timeout;
    __typeof__(gnutls_record_send) *record_send;
    __typeof__(gnutls_record_recv) *record_recv;
    __typeof__(gnutls_record_check_pending) *record_check_pending;
    __typeof__(gnutls_bye) *bye;
    __typeof__(gnutls_strerror) *strerror;
    char error[256];
    bool ok;
} tls;
static pthread_once_t tls_once = PTHREAD_ONCE_INIT;

static void tls_load(void)
{
    const struct vs_dynsym syms[] = {
        {(void **)&tls.init, "gnutls_init"},
        {(void **)&tls.deinit, "gnutls_deinit"},
        {(void **)&tls.priority_set_direct, "gnutls_priority_set_direct"},
        {(void **)&tls.set_default_priority, "gnutls_set_default_priority"},
        {(void **)&tls.credentials_set, "gnutls_credentials_set"},
        {(void **)&tls.psk_alloc_client, "gnutls_psk_allocate_client_credentials"},
        {(void **)&tls.psk_alloc_server, "gnutls_psk_allocate_server_credentials"},
        {(void **)&tls.psk_set_client, "gnutls_psk_set_client_credentials"},
        {(void **)&tls.psk_set_server_file, "gnutls_psk_set_server_credentials_file"},
        {(void **)&tls.psk_free_client, "gnutls_psk_free_client_credentials"},
        {(void **)&tls.psk_free_server, "gnutls_psk_free_server_credentials"},
        {(void **)&tls.cert_alloc, "gnutls_certificate_allocate_credentials"},
        {(void **)&tls.cert_free, "gnutls_certificate_free_credentials"},
        {(void **)&tls.cert_trust_file, "gnutls_certificate_set_x509_trust_file"},
        {(void **)&tls.cert_key_file, "gnutls_certificate_set_x509_key_file"},
        {(void **)&tls.cert_server_request, "gnutls_certificate_server_set_request"},
        {(void **)&tls.verify_cert, "gnutls_session_set_verify_cert"},
        {(void **)&tls.server_name_set, "gnutls_server_name_set"},
        {(void **)&tls.transport_set_int2, "gnutls_transport_set_int2"},
        {(void **)&tls.handshake, "gnutls_handshake"},
        {(void **)&tls.handshake_set_timeout, "gnutls_handshake_set_timeout"},
        {(void **)&tls.record_send, "gnutls_record_send"},
        {(void **)&tls.record_recv, "gnutls_record_recv"},
        {(void **)&tls.record_check_pending, "gnutls_record_check_pending"},
        {(void **)&tls.bye, "gnutls_bye"},
        {(void **)&tls.strerror, "gnutls_strerror"},
    };
    tls.ok = vs_dynlib_load("libgnutls.so.30", "libgnutls30", syms, sizeof(syms) / sizeof(syms[0]),
                            tls.error, sizeof(tls.error)) == 0;
}

void mig_conn_plain(struct mig_conn *c, int fd)
{
    memset(c, 0, sizeof(*c));
    c->fd = fd;
}

/* The first "identity:hexkey" line of a psktool file. */
static int read_psk(const char *path, char *id, size_t idlen, char *key, size_t keylen, vs_err *err)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return vs_error_errno(err, "TLS key file %s", path);
    char line[1024];
    int rc = -1;
    if (fgets(line, sizeof(line), f)) {
        line[strcspn(line, "\r\n")] = 0;
        char *colon = strchr(line, ':');
        if (colon && colon > line && strlen(colon + 1) >= 32 && (size_t)(colon - line) < idlen &&
            strlen(colon + 1) < keylen) {
            *colon = 0;
            memcpy(id, line, strlen(line) + 1);
            memcpy(key, colon + 1, strlen(colon + 1) + 1);
            rc = 0;
        }
    }
    fclose(f);
    explicit_bzero(line, sizeof(line));
    if (rc < 0)
        vs_error(err, EINVAL,
                 "TLS key file %s: expected a line IDENTITY:HEXKEY (at least 128 bits), as "
                 "psktool writes",
                 path);
    return rc;
}

static int setup(struct mig_conn *c, int fd, const struct mig_tls_opts *o, bool server, vs_err *err)
{
    pthread_once(&tls_once, tls_load);
    if (!tls.ok)
        return vs_error(err, ENOSYS, "migration over TLS: %s", tls.error);
    memset(c, 0, sizeof(*c));
    c->fd = fd;
    gnutls_session_t s;
    int r = tls.init(&s, (server ? GNUTLS_SERVER : GNUTLS_CLIENT) | GNUTLS_NO_SIGNAL);
    if (r < 0)
        return vs_error(err, EIO, "TLS: %s", tls.strerror(r));
    c->tls = s;
    c->server = server;
    c->psk = o->psk_file != NULL;
    if (c->psk) {
        /* TLS 1.3 with an ephemeral key exchange on top of the key */
        r = tls.priority_set_direct(
            s, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2:-KX-ALL:+ECDHE-PSK:+DHE-PSK", NULL);
        if (server) {
            gnutls_psk_server_credentials_t cr;
            if (r >= 0)
                r = tls.psk_alloc_server(&cr);
            if (r >= 0) {
                c->cred = cr;
                r = tls.psk_set_server_file(cr, o->psk_file);
            }
            if (r >= 0)
                r = tls.credentials_set(s, GNUTLS_CRD_PSK, cr);
        } else {
            char id[256], key[512];
            if (r >= 0 && read_psk(o->psk_file, id, sizeof(id), key, sizeof(key), err) < 0)
                return -1;
            gnutls_psk_client_credentials_t cr;
            if (r >= 0)
                r = tls.psk_alloc_client(&cr);
            if (r >= 0) {
                c->cred = cr;
                gnutls_datum_t k = {(unsigned char *)key, (unsigned)strlen(key)};
                r = tls.psk_set_client(cr, id, &k, GNUTLS_PSK_KEY_HEX);
            }
            explicit_bzero(key, sizeof(key));
            if (r >= 0)
                r = tls.credentials_set(s, GNUTLS_CRD_PSK, cr);
        }
    } else {
        gnutls_certificate_credentials_t cr;
        r = tls.set_default_priority(s);
        if (r >= 0)
            r = tls.cert_alloc(&cr);
        if (r >= 0) {
            c->cred = cr;
            if (o->ca && (r = tls.cert_trust_file(cr, o->ca, GNUTLS_X509_FMT_PEM)) <= 0 && r >= 0)
                return vs_error(err, EINVAL, "TLS CA file %s holds no certificate", o->ca);
        }
        if (r >= 0 && o->cert)
            r = tls.cert_key_file(cr, o->cert, o->key ? o->key : o->cert, GNUTLS_X509_FMT_PEM);
        if (r >= 0)
            r = tls.credentials_set(s, GNUTLS_CRD_CERTIFICATE, cr);
        if (r >= 0 && server && o->ca)
            tls.cert_server_request(s, GNUTLS_CERT_REQUIRE);
        if (r >= 0 && (!server || o->ca))
            tls.verify_cert(s, server ? NULL : o->hostname, 0);
        if (r >= 0 && !server && o->hostname)
            r = tls.server_name_set(s, GNUTLS_NAME_DNS, o->hostname, strlen(o->hostname));
    }
    if (r < 0)
        return vs_error(err, EINVAL, "TLS setup: %s", tls.strerror(r));
    tls.transport_set_int2(s, fd, fd);
    tls.handshake_set_timeout(s, 10000);
    do {
        r = tls.handshake(s);
    } while (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED);
    if (r < 0)
        return vs_error(err, EACCES, "TLS handshake with the %s failed: %s",
                        server ? "source" : "destination", tls.strerror(r));
    return 0;
}

int mig_tls_client(struct mig_conn *c, int fd, const struct mig_tls_opts *o, vs_err *err)
{
    if (o->cert && !o->ca && !o->psk_file)
        return vs_error(err, EINVAL, "TLS: the source needs a CA to check the destination");
    int rc = setup(c, fd, o, false, err);
    if (rc < 0)
        mig_conn_end(c);
    return rc;
}

int mig_tls_server(struct mig_conn *c, int fd, const struct mig_tls_opts *o, vs_err *err)
{
    if (!o->psk_file && !o->cert)
        return vs_error(err, EINVAL, "TLS: the destination needs a certificate or a key file");
    int rc = setup(c, fd, o, true, err);
    if (rc < 0)
        mig_conn_end(c);
    return rc;
}

int mig_conn_read(struct mig_conn *c, void *buf, size_t n)
{
    if (!c->tls)
        return vs_read_full(c->fd, buf, n);
    uint8_t *p = buf;
    while (n) {
        ssize_t r = tls.record_recv(c->tls, p, n);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0) {
            errno = r == 0 ? EIO : ECONNRESET;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

int mig_conn_write(struct mig_conn *c, const void *buf, size_t n)
{
    if (!c->tls)
        return vs_send_full(c->fd, buf, n, MSG_NOSIGNAL);
    const uint8_t *p = buf;
    while (n) {
        ssize_t r = tls.record_send(c->tls, p, n);
        if (r == GNUTLS_E_AGAIN || r == GNUTLS_E_INTERRUPTED)
            continue;
        if (r <= 0) {
            errno = ECONNRESET;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

bool mig_conn_pending(const struct mig_conn *c)
{
    return c->tls && tls.record_check_pending(c->tls) > 0;
}

void mig_conn_end(struct mig_conn *c)
{
    if (c->tls)
        tls.deinit(c->tls);
    if (c->cred && c->psk && c->server)
        tls.psk_free_server(c->cred);
    else if (c->cred && c->psk)
        tls.psk_free_client(c->cred);
    else if (c->cred)
        tls.cert_free(c->cred);
    c->tls = c->cred = NULL;
}
