/* The control API client: one HTTP/1.0 request on a unix socket.
 *
 * Written out rather than through libcurl: loading libcurl and its ~30
 * dependencies (TLS, Kerberos, LDAP) cost every `vessel` verb 15-20 ms
 * (bench/daemon), while the request itself takes under a millisecond. The
 * client only ever talks to vessel's own servers on a local socket, sends
 * HTTP/1.0 with Connection: close, and reads the status line, the headers'
 * end and a bounded body. */
#include "api/client.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/cleanup.h"
#include "util/io.h"
#include "util/unix_socket.h"

#define REPLY_MAX (64u << 20)
#define TIMEOUT_MS (600 * 1000)

/* Read until the server closes (or the reply grows past REPLY_MAX). */
static int read_reply(int fd, struct vs_buf *out, const char *sock, vs_err *err)
{
    char chunk[16384];
    for (;;) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = poll(&p, 1, TIMEOUT_MS);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return vs_error(err, ETIMEDOUT, "%s: no reply in %d s", sock, TIMEOUT_MS / 1000);
        ssize_t n = read(fd, chunk, sizeof(chunk));
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return vs_error_errno(err, "%s: read", sock);
        if (n == 0)
            return 0;
        if (out->len + (size_t)n > REPLY_MAX)
            return vs_error(err, EPROTO, "%s: the reply is larger than %u MiB", sock,
                            REPLY_MAX >> 20);
        vs_buf_append(out, chunk, (size_t)n);
        if (out->oom)
            return vs_error(err, ENOMEM, "out of memory");
    }
}

int api_client_request(const char *sock, const char *method, const char *path, const json_t *body,
                       json_t **resp, vs_err *err)
{
    *resp = NULL;
    vs_err cerr = {0};
    cleanup_close int fd = vs_unix_connect(sock, &cerr);
    if (fd < 0)
        return vs_error(err, cerr.code == ENOENT ? ENOENT : ECONNREFUSED,
                        "--api-sock %s: %s (is the VM running?)", sock, strerror(cerr.code));
    cleanup_free char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    cleanup_free char *head = NULL;
    size_t blen = text ? strlen(text) : 0;
    int hlen = asprintf(&head,
                        "%s %s HTTP/1.0\r\nHost: localhost\r\nConnection: close\r\n"
                        "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n",
                        method, path, blen);
    if (hlen < 0)
        return vs_error(err, ENOMEM, "out of memory");
    if (vs_send_full(fd, head, (size_t)hlen, MSG_NOSIGNAL) < 0 ||
        (blen && vs_send_full(fd, text, blen, MSG_NOSIGNAL) < 0))
        return vs_error_errno(err, "--api-sock %s: write", sock);
    struct vs_buf out;
    vs_buf_init(&out);
    int rc = read_reply(fd, &out, sock, err);
    if (rc < 0) {
        vs_buf_free(&out);
        return -1;
    }
    vs_buf_append(&out, "", 1); /* a terminator for the header search */
    const char *data = (const char *)out.data;
    int status = 0;
    const char *end = data ? strstr(data, "\r\n\r\n") : NULL;
    if (!data || sscanf(data, "HTTP/1.%*d %d", &status) != 1 || !end) {
        vs_buf_free(&out);
        return vs_error(err, EPROTO, "--api-sock %s: not an HTTP reply", sock);
    }
    const char *b = end + 4;
    size_t bl = out.len - 1 - (size_t)(b - data);
    json_error_t jerr;
    json_t *j = bl ? json_loadb(b, bl, 0, &jerr) : NULL;
    if (status >= 400) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        rc = vs_error(err, EIO, "%s", msg ? msg : "request failed");
        json_decref(j);
    } else if (!j) {
        rc = vs_error(err, EPROTO, "--api-sock %s: the reply is not JSON", sock);
    } else {
        *resp = j;
    }
    vs_buf_free(&out);
    return rc;
}
