/* The daemon's TLS identity and its trust store (GnuTLS).
 *
 * The HTTPS listener (off by default) trusts only enrolled client
 * certificates, as LXD does: a certificate is enrolled by its SHA-256
 * fingerprint through the local unix socket (`vessel trust add`), and a
 * TLS client whose certificate is not enrolled gets 403. The server's own
 * key and self-signed certificate are made on first use and kept in the
 * state directory. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <gnutls/gnutls.h>
#include <gnutls/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/log.h"

static char *read_text(const char *path, size_t *len)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return NULL;
    char *buf = NULL;
    size_t cap = 0, n = 0, r;
    char chunk[4096];
    while ((r = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        if (n + r + 1 > cap) {
            cap = (n + r + 1) * 2;
            char *b = realloc(buf, cap);
            if (!b) {
                free(buf);
                fclose(f);
                return NULL;
            }
            buf = b;
        }
        memcpy(buf + n, chunk, r);
        n += r;
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    if (len)
        *len = n;
    return buf;
}

static int write_file(const char *path, const void *data, size_t len, mode_t mode, vs_err *err)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    ssize_t w = write(fd, data, len);
    int rc = (w == (ssize_t)len && fsync(fd) == 0) ? 0 : vs_error_errno(err, "%s", path);
    close(fd);
    return rc;
}

int trust_fingerprint_der(const void *der, size_t len, char out[65])
{
    unsigned char digest[32];
    if (gnutls_hash_fast(GNUTLS_DIG_SHA256, der, len, digest) < 0)
        return -1;
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", digest[i]);
    return 0;
}

/* The server's key and certificate in PEM, made when missing. */
int trust_server_identity(struct daemon *d, char **key_pem, char **cert_pem, vs_err *err)
{
    char kpath[4200], cpath[4200];
    snprintf(kpath, sizeof(kpath), "%s/server.key", d->state_dir);
    snprintf(cpath, sizeof(cpath), "%s/server.crt", d->state_dir);
    *key_pem = read_text(kpath, NULL);
    *cert_pem = read_text(cpath, NULL);
    if (*key_pem && *cert_pem)
        return 0;
    free(*key_pem);
    free(*cert_pem);
    *key_pem = *cert_pem = NULL;
    gnutls_x509_privkey_t key = NULL;
    gnutls_x509_crt_t crt = NULL;
    int rc = -1;
    char kbuf[16384], cbuf[16384];
    size_t klen = sizeof(kbuf), clen = sizeof(cbuf);
    unsigned char serial[16];
    gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial));
    serial[0] &= 0x7f;
    char host[256] = "vesseld";
    gethostname(host, sizeof(host) - 1);
    if (gnutls_x509_privkey_init(&key) < 0 ||
        gnutls_x509_privkey_generate(key, GNUTLS_PK_ECDSA,
                                     GNUTLS_CURVE_TO_BITS(GNUTLS_ECC_CURVE_SECP256R1), 0) < 0 ||
        gnutls_x509_crt_init(&crt) < 0 || gnutls_x509_crt_set_version(crt, 3) < 0 ||
        gnutls_x509_crt_set_serial(crt, serial, sizeof(serial)) < 0 ||
        gnutls_x509_crt_set_activation_time(crt, time(NULL) - 3600) < 0 ||
        gnutls_x509_crt_set_expiration_time(crt, time(NULL) + 10 * 365 * 86400L) < 0 ||
        gnutls_x509_crt_set_dn_by_oid(crt, GNUTLS_OID_X520_COMMON_NAME, 0, host, strlen(host)) <
            0 ||
        gnutls_x509_crt_set_key(crt, key) < 0 ||
        gnutls_x509_crt_set_key_usage(crt, GNUTLS_KEY_DIGITAL_SIGNATURE) < 0 ||
        gnutls_x509_crt_set_key_purpose_oid(crt, GNUTLS_KP_TLS_WWW_SERVER, 0) < 0 ||
        gnutls_x509_crt_sign2(crt, crt, key, GNUTLS_DIG_SHA256, 0) < 0 ||
        gnutls_x509_privkey_export(key, GNUTLS_X509_FMT_PEM, kbuf, &klen) < 0 ||
        gnutls_x509_crt_export(crt, GNUTLS_X509_FMT_PEM, cbuf, &clen) < 0) {
        vs_error(err, EIO, "cannot make the daemon's TLS certificate");
        goto out;
    }
    if (write_file(kpath, kbuf, klen, 0600, err) < 0 ||
        write_file(cpath, cbuf, clen, 0644, err) < 0)
        goto out;
    *key_pem = strndup(kbuf, klen);
    *cert_pem = strndup(cbuf, clen);
    rc = *key_pem && *cert_pem ? 0 : vs_error(err, ENOMEM, "out of memory");
out:
    if (crt)
        gnutls_x509_crt_deinit(crt);
    if (key)
        gnutls_x509_privkey_deinit(key);
    return rc;
}

static void trust_dir(struct daemon *d, char *out, size_t n)
{
    snprintf(out, n, "%s/trust", d->state_dir);
}

bool trust_is_enrolled(struct daemon *d, const char *fingerprint)
{
    char path[4300], dir[4200];
    trust_dir(d, dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/%.64s.crt", dir, fingerprint);
    return strlen(fingerprint) == 64 && access(path, R_OK) == 0;
}

json_t *trust_add(struct daemon *d, const char *pem, const char *name, vs_err *err)
{
    gnutls_x509_crt_t crt;
    gnutls_datum_t in = {(unsigned char *)pem, pem ? (unsigned)strlen(pem) : 0};
    if (!pem || gnutls_x509_crt_init(&crt) < 0) {
        vs_error(err, EINVAL, "\"certificate\" must be a PEM certificate");
        return NULL;
    }
    json_t *out = NULL;
    gnutls_datum_t der = {0};
    char fp[65];
    if (gnutls_x509_crt_import(crt, &in, GNUTLS_X509_FMT_PEM) < 0 ||
        gnutls_x509_crt_export2(crt, GNUTLS_X509_FMT_DER, &der) < 0 ||
        trust_fingerprint_der(der.data, der.size, fp) < 0) {
        vs_error(err, EINVAL, "\"certificate\" is not a valid PEM certificate");
        goto done;
    }
    char dir[4200], path[4300];
    trust_dir(d, dir, sizeof(dir));
    mkdir(dir, 0700);
    snprintf(path, sizeof(path), "%s/%s.crt", dir, fp);
    if (write_file(path, pem, strlen(pem), 0600, err) < 0)
        goto done;
    out = json_pack("{s:s, s:s?}", "fingerprint", fp, "name", name);
    daemon_event(d, "certificate", "added", fp, NULL);
done:
    gnutls_free(der.data);
    gnutls_x509_crt_deinit(crt);
    return out;
}

json_t *trust_list(struct daemon *d, vs_err *err)
{
    char dir[4200];
    trust_dir(d, dir, sizeof(dir));
    json_t *list = json_array();
    /* the fingerprints are the file names */
    DIR *dp = opendir(dir);
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        size_t n = strlen(de->d_name);
        if (n == 68 && !strcmp(de->d_name + 64, ".crt"))
            json_array_append_new(list, json_stringn(de->d_name, 64));
    }
    if (dp)
        closedir(dp);
    return list;
}

int trust_remove(struct daemon *d, const char *fingerprint, vs_err *err)
{
    char dir[4200], path[4300];
    trust_dir(d, dir, sizeof(dir));
    if (strlen(fingerprint) != 64 || strspn(fingerprint, "0123456789abcdef") != 64)
        return vs_error(err, ENOENT, "certificate '%s' not found", fingerprint);
    snprintf(path, sizeof(path), "%s/%s.crt", dir, fingerprint);
    if (unlink(path) < 0)
        return vs_error(err, ENOENT, "certificate '%s' not found", fingerprint);
    daemon_event(d, "certificate", "removed", fingerprint, NULL);
    return 0;
}
