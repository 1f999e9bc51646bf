/* qcow2 images are hostile input: parse the header, then open the bytes as an
 * image and read through every L1/L2 path (backing files disabled: a fuzzed
 * name must not open host files). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "block/disk.h"
#include "block/qcow2.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct qcow2_header h;
    vs_err err;
    if (qcow2_header_parse(data, size, size, &h, &err) < 0 || h.backing_file[0] ||
        h.size > (64u << 20))
        return 0;
    int fd = memfd_create("fuzz-qcow2", MFD_CLOEXEC);
    if (fd < 0)
        return 0;
    if (write(fd, data, size) == (ssize_t)size) {
        char path[64];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        struct disk *d;
        if (qcow2_open(path, true, VM_CACHE_WRITEBACK, &d, &err) == 0) {
            static uint8_t buf[65536];
            for (uint64_t off = 0; off < d->size && off < (8u << 20); off += sizeof(buf)) {
                struct iovec v = {
                    buf, (size_t)(d->size - off < sizeof(buf) ? d->size - off : sizeof(buf))};
                disk_read(d, off, &v, 1);
            }
            disk_close(d);
        }
    }
    close(fd);
    return 0;
}
