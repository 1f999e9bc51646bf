/* A snapshot stream is what a migration receives from another host: any
 * bytes go through snapshot_stream_receive, which must refuse what is
 * malformed (and leave no directory) without reading or writing out of
 * bounds. Inputs start with the stream header most of the time so the
 * fuzzer reaches the records. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "snapshot/format.h"
#include "snapshot/sink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char dir[64], out[96];
    if (!dir[0]) {
        snprintf(dir, sizeof(dir), "/tmp/vessel-fuzz-stream-%d", getpid());
        mkdir(dir, 0700);
        snprintf(out, sizeof(out), "%s/snap", dir);
    }
    int fd = memfd_create("stream", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    /* the header, unless the input's first byte says otherwise */
    static const uint8_t hdr[16] = {'V', 'E', 'S', 'S', 'T', 'R', 'M', '1', 1, 0, 0, 0, 0, 0, 0, 0};
    if (size && data[0] & 1) {
        data++;
        size--;
        if (write(fd, hdr, sizeof(hdr)) != (ssize_t)sizeof(hdr))
            goto out;
    }
    if (size && write(fd, data, size) != (ssize_t)size)
        goto out;
    lseek(fd, 0, SEEK_SET);
    vs_err err;
    if (snapshot_stream_receive(fd, out, NULL, &err) == 0)
        snap_remove_dir(out);
out:
    close(fd);
    return 0;
}
