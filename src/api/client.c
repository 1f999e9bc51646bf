#include "api/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/dynlib.h"
#include "util/cleanup.h"

/* libcurl is loaded on first use, not linked: `vessel vm run` shares this
 * binary and would otherwise map libcurl's whole dependency tree (TLS, krb5,
 * LDAP, ssh...) for nothing, several MiB of the VMM's resident memory. Only
 * the header is used at build time. */
static struct {
    CURL *(*easy_init)(void);
    CURLcode (*easy_setopt)(CURL *, CURLoption, ...);
    CURLcode (*easy_perform)(CURL *);
    CURLcode (*easy_getinfo)(CURL *, CURLINFO, ...);
    const char *(*easy_strerror)(CURLcode);
    void (*easy_cleanup)(CURL *);
    struct curl_slist *(*slist_append)(struct curl_slist *, const char *);
    void (*slist_free_all)(struct curl_slist *);
    char error[256];
} curl;
static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_load(void)
{
    const struct vs_dynsym syms[] = {
        {(void **)&curl.easy_init, "curl_easy_init"},
        {(void **)&curl.easy_setopt, "curl_easy_setopt"},
        {(void **)&curl.easy_perform, "curl_easy_perform"},
        {(void **)&curl.easy_getinfo, "curl_easy_getinfo"},
        {(void **)&curl.easy_strerror, "curl_easy_strerror"},
        {(void **)&curl.easy_cleanup, "curl_easy_cleanup"},
        {(void **)&curl.slist_append, "curl_slist_append"},
        {(void **)&curl.slist_free_all, "curl_slist_free_all"},
    };
    vs_dynlib_load("libcurl.so.4", "libcurl4", syms, ARRAY_SIZE(syms), curl.error,
                   sizeof(curl.error));
}

static size_t collect(char *data, size_t size, size_t n, void *userdata)
{
    struct vs_buf *b = userdata;
    vs_buf_append(b, data, size * n);
    return b->oom ? 0 : size * n;
}

int api_client_request(const char *sock, const char *method, const char *path, const json_t *body,
                       json_t **resp, vs_err *err)
{
    *resp = NULL;
    pthread_once(&curl_once, curl_load);
    if (!curl.easy_init)
        return vs_error(err, ENOSYS, "%s", curl.error);
    CURL *c = curl.easy_init();
    if (!c)
        return vs_error(err, ENOMEM, "cannot initialise libcurl");
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct vs_buf out;
    vs_buf_init(&out);
    struct curl_slist *hdrs = curl.slist_append(NULL, "Content-Type: application/json");
    hdrs = curl.slist_append(hdrs, "Expect:");
    curl.easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl.easy_setopt(c, CURLOPT_URL, url);
    curl.easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl.easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl.easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl.easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    if (text) {
        curl.easy_setopt(c, CURLOPT_POSTFIELDS, text);
        curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    }
    int rc = 0;
    CURLcode cr = curl.easy_perform(c);
    long status = 0;
    curl.easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cr != CURLE_OK) {
        rc = vs_error(err, ECONNREFUSED, "--api-sock %s: %s (is the VM running?)", sock,
                      curl.easy_strerror(cr));
        goto out;
    }
    json_error_t jerr;
    json_t *j = out.len ? json_loadb((const char *)out.data, out.len, 0, &jerr) : NULL;
    if (status >= 400) {
        const char *msg = json_string_value(json_object_get(j, "error"));
        rc = vs_error(err, EIO, "%s", msg ? msg : "request failed");
        json_decref(j);
        goto out;
    }
    if (!j) {
        rc = vs_error(err, EPROTO, "--api-sock %s: the reply is not JSON", sock);
        goto out;
    }
    *resp = j;
out:
    curl.slist_free_all(hdrs);
    curl.easy_cleanup(c);
    vs_buf_free(&out);
    free(text);
    return rc;
}
