/* A migration connection, plain or over TLS (GnuTLS, loaded when first
 * used so a VM that never migrates over TLS does not map it): a pre-shared
 * key (a psktool file, "identity:hexkey"), or X.509 certificates (the
 * destination presents one that the source's CA must have signed for the
 * host it dialled; with a CA on the destination too, the source must
 * present one as well). */
#ifndef VESSEL_MIGRATE_TLS_H
#define VESSEL_MIGRATE_TLS_H

#include <stdbool.h>
#include <stddef.h>
#include "util/err.h"

struct mig_tls_opts {
    const char *psk_file;        /* "identity:hexkey" lines (GnuTLS psktool) */
    const char *ca, *cert, *key; /* X.509, PEM */
    const char *hostname;        /* the name the destination's certificate must carry */
};

static inline bool mig_tls_wanted(const struct mig_tls_opts *o)
{
    return o && (o->psk_file || o->ca || o->cert);
}

struct mig_conn {
    int fd;
    void *tls; /* gnutls_session_t, or NULL: plain */
    void *cred;
    bool psk, server;
};

void mig_conn_plain(struct mig_conn *c, int fd);
/* Make fd's connection TLS, as the source (client) or destination. On
 * failure fd stays open, the caller's. */
int mig_tls_client(struct mig_conn *c, int fd, const struct mig_tls_opts *o, vs_err *err);
int mig_tls_server(struct mig_conn *c, int fd, const struct mig_tls_opts *o, vs_err *err);
/* Move exactly n bytes; 0, or -1 with errno (EIO: the peer closed). */
int mig_conn_read(struct mig_conn *c, void *buf, size_t n);
int mig_conn_write(struct mig_conn *c, const void *buf, size_t n);
/* Bytes TLS has already decrypted and holds (poll on fd would miss them). */
bool mig_conn_pending(const struct mig_conn *c);
/* End TLS and free it; the fd is not closed. */
void mig_conn_end(struct mig_conn *c);

#endif
