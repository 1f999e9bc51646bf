/* The image store's internals shared by image.c (import) and
 * oci_image.c (OCI layouts and docker-archives). */
#ifndef VESSEL_DAEMON_IMAGE_H
#define VESSEL_DAEMON_IMAGE_H

#include <archive.h>
#include <jansson.h>
#include <stdbool.h>

#include "util/err.h"

/* Extract every entry of in under dest (refusing "..", writes through
 * symlinks and names outside dest); with whiteouts, ".wh.NAME" removes
 * NAME and ".wh..wh..opq" empties its directory, as image layers mean.
 * what names the source in errors. Returns the number of entries, or -1. */
int image_extract(struct archive *in, const char *dest, const char *what, bool whiteouts,
                  vs_err *err);

/* Open rel under dir without following symlinks or leaving dir
 * (openat2 RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS); an fd or -1 with errno. */
int image_open_beneath(const char *dir, const char *rel, int flags);

enum image_layout { IMAGE_ROOTFS, IMAGE_OCI_LAYOUT, IMAGE_DOCKER_ARCHIVE };
/* What an unpacked archive (or a directory) is. */
int image_layout_kind(const char *dir);
/* Apply an OCI layout's or docker-archive's layers in order into rootfs;
 * props gets "command" (entrypoint + cmd), "env", "workdir". */
int image_from_layout(const char *dir, const char *rootfs, json_t *props, vs_err *err);

#endif
