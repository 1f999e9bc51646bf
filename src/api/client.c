#include "api/client.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

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
    CURL *c = curl_easy_init();
    if (!c)
        return vs_error(err, ENOMEM, "cannot initialise libcurl");
    char url[512];
    snprintf(url, sizeof(url), "http://localhost%s", path);
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    struct vs_buf out;
    vs_buf_init(&out);
    struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/json");
    hdrs = curl_slist_append(hdrs, "Expect:");
    curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, hdrs);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, &out);
    curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c, CURLOPT_TIMEOUT, 600L);
    if (text) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, text);
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)strlen(text));
    }
    int rc = 0;
    CURLcode cr = curl_easy_perform(c);
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    if (cr != CURLE_OK) {
        rc = vs_error(err, ECONNREFUSED, "--api-sock %s: %s (is the VM running?)", sock,
                      curl_easy_strerror(cr));
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
    curl_slist_free_all(hdrs);
    curl_easy_cleanup(c);
    vs_buf_free(&out);
    free(text);
    return rc;
}
