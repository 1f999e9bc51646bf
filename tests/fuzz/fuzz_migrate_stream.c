/* A live migration's destination reads a stream from the network: any
 * bytes go through mig_receive (the header, HELLO, memory and zero records,
 * the vmstate), which must refuse what is malformed without reading or
 * writing outside the memory image it accepted; a stream it accepts has its
 * vmstate checked as the destination checks it. Most inputs get a valid
 * header and HELLO in front and their records' CRCs made right, so the
 * fuzzer spends its time on what the records say. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "migrate/incoming.h"
#include "migrate/wire.h"
#include "snapshot/snapshot.h"
#include "vm/config_json.h"

struct feed {
    const uint8_t *p;
    size_t left;
};

static int feed_read(void *opaque, void *buf, size_t len)
{
    struct feed *f = opaque;
    if (len > f->left)
        return -1;
    memcpy(buf, f->p, len);
    f->p += len;
    f->left -= len;
    return 0;
}

static int sink_write(void *opaque, const void *buf, size_t len)
{
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char hello[4096];
    if (!hello[0]) {
        struct vm_config cfg;
        vm_config_init(&cfg);
        cfg.arch = VM_ARCH_RISCV64;
        json_t *j = json_pack("{s:s, s:{s:i, s:[{s:I, s:i, s:i}, {s:I, s:i, s:i}]}, s:o}", "arch",
                              "riscv64", "memory", "size", 2 << 20, "regions", "gpa",
                              (json_int_t)0x80000000LL, "size", 1 << 20, "offset", 0, "gpa",
                              (json_int_t)0x80400000LL, "size", 1 << 20, "offset", 1 << 20,
                              "config", vm_config_to_json(&cfg));
        char *t = json_dumps(j, JSON_COMPACT);
        snprintf(hello, sizeof(hello), "%s", t);
        free(t);
        json_decref(j);
        vm_config_free(&cfg);
    }
    uint8_t *buf = malloc(size + 128 + sizeof(hello));
    if (!buf)
        return 0;
    size_t n = 0;
    if (size && data[0] & 1) {
        data++;
        size--;
        mig_header_encode(buf);
        mig_record_encode(buf + MIG_HEADER_SIZE, MIG_HELLO, 0, strlen(hello), hello);
        n = MIG_HEADER_SIZE + MIG_RECORD_SIZE;
        memcpy(buf + n, hello, strlen(hello));
        n += strlen(hello);
    }
    bool fix_crc = size && !(data[0] & 2);
    if (!fix_crc) {
        memcpy(buf + n, data, size);
        n += size;
    }
    /* the records that follow, with each CRC recomputed */
    while (fix_crc && size) {
        if (size < MIG_RECORD_SIZE) {
            memcpy(buf + n, data, size);
            n += size;
            break;
        }
        struct mig_record r;
        vs_err e;
        mig_record_decode(data, &r, &e);
        bool payload = r.type == MIG_HELLO || r.type == MIG_MEMORY || r.type == MIG_VMSTATE ||
                       r.type == MIG_POSTCOPY;
        size_t plen = payload ? (size_t)r.len : 0;
        if (payload && r.len > size - MIG_RECORD_SIZE) {
            memcpy(buf + n, data, size);
            n += size;
            break;
        }
        mig_record_encode(buf + n, r.type, r.off, r.len, payload ? data + MIG_RECORD_SIZE : NULL);
        memcpy(buf + n + MIG_RECORD_SIZE, data + MIG_RECORD_SIZE, plen);
        n += MIG_RECORD_SIZE + plen;
        data += MIG_RECORD_SIZE + plen;
        size -= MIG_RECORD_SIZE + plen;
    }
    struct feed f = {.p = buf, .left = n};
    struct mig_io io = {.read = feed_read, .write = sink_write, .opaque = &f};
    struct mig_incoming in;
    mig_incoming_init(&in, -1, 4u << 20);
    vs_err err;
    if (mig_receive(&in, &io, &err) == 0) {
        struct snapshot_image img;
        uint8_t *state = in.vmstate;
        in.vmstate = NULL;
        if (snapshot_image_from_vmstate(state, in.vmstate_len, (int)in.arch, 0, &img, &err) == 0)
            snapshot_image_close(&img);
    }
    mig_incoming_free(&in);
    free(buf);
    return 0;
}
