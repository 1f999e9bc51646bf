/* Container images in the formats people have: an OCI image layout
 * (`podman save --format oci-archive`, skopeo's oci: directories) and a
 * docker-archive (`podman save`, `docker save`). The layers are applied in
 * order with their whiteouts honoured (image_extract), OCI blobs are
 * checked against their digests, and the image's entrypoint and cmd
 * become the default command of the containers launched from it. */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/archive_lib.h"
#include "daemon/daemon.h"
#include "daemon/image.h"

/* A regular file of the layout (never through a symlink, never outside). */
static int open_layout_file(const char *dir, const char *rel, vs_err *err)
{
    int fd = image_open_beneath(dir, rel, O_RDONLY);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
        if (fd >= 0)
            close(fd);
        return vs_error(err, EINVAL, "image %s: missing or not a regular file inside the image",
                        rel);
    }
    return fd;
}

static json_t *load_json(const char *dir, const char *rel, vs_err *err)
{
    int fd = open_layout_file(dir, rel, err);
    if (fd < 0)
        return NULL;
    json_error_t jerr;
    json_t *j = json_loadfd(fd, 0, &jerr);
    close(fd);
    if (!j)
        vs_error(err, EINVAL, "image %s: %s", rel, jerr.text);
    return j;
}

/* "sha256:<64 hex>" into "blobs/sha256/<hex>", or NULL for anything else
 * (so a digest cannot name a path outside the layout). */
static bool blob_path(const char *digest, char *out, size_t n)
{
    if (!digest || strncmp(digest, "sha256:", 7) || strlen(digest + 7) != 64 ||
        strspn(digest + 7, "0123456789abcdef") != 64)
        return false;
    snprintf(out, n, "blobs/sha256/%s", digest + 7);
    return true;
}

static int check_digest(const char *dir, const char *rel, const char *digest, vs_err *err)
{
    char path[64], hex[65];
    int fd = open_layout_file(dir, rel, err);
    if (fd < 0)
        return -1;
    snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
    int rc = daemon_sha256_file(path, hex, err);
    close(fd);
    if (rc < 0)
        return vs_error_prefix(err, "image blob %s: ", digest);
    if (strcmp(hex, digest + 7))
        return vs_error(err, EINVAL, "image blob %s does not match its digest (corrupt image)",
                        digest);
    return 0;
}

static int apply_layer(const char *dir, const char *rel, const char *rootfs, vs_err *err)
{
    int fd = open_layout_file(dir, rel, err);
    if (fd < 0)
        return -1;
    struct archive *in = archive_read_new();
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    int rc = -1;
    if (archive_read_open_fd(in, fd, 65536) != ARCHIVE_OK)
        vs_error(err, EINVAL, "image layer %s: %s", rel, archive_error_string(in));
    else if (image_extract(in, rootfs, rel, true, err) >= 0)
        rc = 0;
    archive_read_free(in);
    close(fd);
    return rc;
}

/* The image config's entrypoint + cmd, env and working directory. */
static void take_config(json_t *config, json_t *props)
{
    json_t *c = json_object_get(config, "config");
    if (!c)
        c = json_object_get(config, "container_config");
    json_t *cmd = json_array(), *v;
    size_t i;
    json_array_foreach(json_object_get(c, "Entrypoint"), i, v) json_array_append(cmd, v);
    json_array_foreach(json_object_get(c, "Cmd"), i, v) json_array_append(cmd, v);
    if (json_array_size(cmd))
        json_object_set_new(props, "command", cmd);
    else
        json_decref(cmd);
    if (json_is_array(json_object_get(c, "Env")))
        json_object_set(props, "env", json_object_get(c, "Env"));
    if (json_is_string(json_object_get(c, "WorkingDir")))
        json_object_set(props, "workdir", json_object_get(c, "WorkingDir"));
    if (json_is_string(json_object_get(config, "architecture")))
        json_object_set(props, "image_arch", json_object_get(config, "architecture"));
}

static bool safe_rel(const char *p)
{
    if (!p || !p[0] || p[0] == '/')
        return false;
    for (const char *c = p; *c;) {
        size_t n = strcspn(c, "/");
        if (n == 2 && !strncmp(c, "..", 2))
            return false;
        c += n + (c[n] == '/');
    }
    return true;
}

static int from_docker_archive(const char *dir, const char *rootfs, json_t *props, vs_err *err)
{
    json_t *m = load_json(dir, "manifest.json", err);
    if (!m)
        return -1;
    json_t *first = json_array_get(m, 0);
    json_t *layers = json_object_get(first, "Layers");
    const char *cfg = json_string_value(json_object_get(first, "Config"));
    int rc = -1;
    if (!json_is_array(layers) || !safe_rel(cfg)) {
        vs_error(err, EINVAL, "image manifest.json: no image with Config and Layers");
        goto out;
    }
    json_t *config = load_json(dir, cfg, err);
    if (!config)
        goto out;
    take_config(config, props);
    json_decref(config);
    size_t i;
    json_t *l;
    json_array_foreach(layers, i, l)
    {
        const char *rel = json_string_value(l);
        if (!safe_rel(rel)) {
            vs_error(err, EINVAL, "image manifest.json: a layer path is not inside the archive");
            goto out;
        }
        if (apply_layer(dir, rel, rootfs, err) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(m);
    return rc;
}

static int from_oci_layout(const char *dir, const char *rootfs, json_t *props, vs_err *err)
{
    json_t *index = load_json(dir, "index.json", err), *manifest = NULL, *config = NULL;
    if (!index)
        return -1;
    int rc = -1;
    char rel[128];
    json_t *desc = json_array_get(json_object_get(index, "manifests"), 0);
    /* an index may point at a further index (multi-platform): follow one */
    for (int depth = 0; depth < 3; depth++) {
        const char *digest = json_string_value(json_object_get(desc, "digest"));
        if (!blob_path(digest, rel, sizeof(rel))) {
            vs_error(err, EINVAL, "image index.json: no manifest with a sha256 digest");
            goto out;
        }
        if (check_digest(dir, rel, digest, err) < 0)
            goto out;
        json_decref(manifest);
        if (!(manifest = load_json(dir, rel, err)))
            goto out;
        if (!json_object_get(manifest, "manifests"))
            break;
        desc = json_array_get(json_object_get(manifest, "manifests"), 0);
    }
    const char *cdigest =
        json_string_value(json_object_get(json_object_get(manifest, "config"), "digest"));
    if (!blob_path(cdigest, rel, sizeof(rel)) || check_digest(dir, rel, cdigest, err) < 0 ||
        !(config = load_json(dir, rel, err))) {
        if (!err->msg[0])
            vs_error(err, EINVAL, "image manifest: no config blob");
        goto out;
    }
    take_config(config, props);
    size_t i;
    json_t *l;
    json_array_foreach(json_object_get(manifest, "layers"), i, l)
    {
        const char *digest = json_string_value(json_object_get(l, "digest"));
        if (!blob_path(digest, rel, sizeof(rel))) {
            vs_error(err, EINVAL, "image manifest: a layer without a sha256 digest");
            goto out;
        }
        if (check_digest(dir, rel, digest, err) < 0 || apply_layer(dir, rel, rootfs, err) < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(config);
    json_decref(manifest);
    json_decref(index);
    return rc;
}

int image_layout_kind(const char *dir)
{
    /* a root filesystem that happens to hold a manifest.json stays one */
    static const char *const rootfs_dirs[] = {"bin", "etc", "usr", "sbin", "lib"};
    char path[8192];
    for (size_t i = 0; i < sizeof(rootfs_dirs) / sizeof(rootfs_dirs[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, rootfs_dirs[i]);
        if (access(path, F_OK) == 0)
            return IMAGE_ROOTFS;
    }
    struct stat st;
    snprintf(path, sizeof(path), "%s/oci-layout", dir);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        return IMAGE_OCI_LAYOUT;
    snprintf(path, sizeof(path), "%s/manifest.json", dir);
    if (lstat(path, &st) == 0 && S_ISREG(st.st_mode))
        return IMAGE_DOCKER_ARCHIVE;
    return IMAGE_ROOTFS;
}

int image_from_layout(const char *dir, const char *rootfs, json_t *props, vs_err *err)
{
    switch (image_layout_kind(dir)) {
    case IMAGE_OCI_LAYOUT:
        return from_oci_layout(dir, rootfs, props, err);
    case IMAGE_DOCKER_ARCHIVE:
        return from_docker_archive(dir, rootfs, props, err);
    default:
        return vs_error(err, EINVAL, "not an OCI image layout or a docker-archive");
    }
}
