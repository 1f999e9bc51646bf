/* What a snapshot records about each disk so a restore can tell whether the
 * image changed since: absolute path, format, size, mtime and a CRC32 of the
 * first 64 KiB (the qcow2 header and tables, or a file system's superblock). */
#ifndef VESSEL_SNAPSHOT_DISK_IDENTITY_H
#define VESSEL_SNAPSHOT_DISK_IDENTITY_H

#include <jansson.h>
#include "util/err.h"

json_t *disk_identity_record(const char *path, const char *format, vs_err *err);
/* -1 with "disk PATH changed since the snapshot was taken (...)" */
int disk_identity_verify(const json_t *rec, vs_err *err);

#endif
