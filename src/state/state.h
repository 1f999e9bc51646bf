/* Device and vCPU state as named, versioned sections. Every device model
 * has save(dev, struct state_writer*) and load(dev, struct state_reader*)
 * from its first line; snapshot, restore and live migration only gather and
 * scatter these sections. Format of a section (little-endian):
 *   u32 magic 'VSEC' | u16 name_len | name | u32 instance | u32 version |
 *   u64 payload_len | payload
 * The writer appends into a vs_buf; the file format (docs/snapshot-format.md)
 * wraps the buffer with a header and a CRC. */
#ifndef VESSEL_STATE_STATE_H
#define VESSEL_STATE_STATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "util/buf.h"
#include "util/err.h"

struct state_writer {
    struct vs_buf buf;
    size_t open_len_off; /* offset of the open section's payload_len, or 0 */
    size_t open_start;
};

void state_writer_init(struct state_writer *w);
void state_writer_free(struct state_writer *w);
void state_begin(struct state_writer *w, const char *name, uint32_t instance, uint32_t version);
void state_put(struct state_writer *w, const void *data, size_t len);
void state_put_u32(struct state_writer *w, uint32_t v);
void state_put_u64(struct state_writer *w, uint64_t v);
void state_end(struct state_writer *w);
/* -1 if the writer ran out of memory at any point. */
int state_writer_status(struct state_writer *w, vs_err *err);

struct state_reader {
    const uint8_t *data;
    size_t len;
    /* current section payload, set by state_find() */
    const uint8_t *cur;
    size_t cur_len, cur_pos;
    const char *cur_name;
    uint32_t cur_version;
};

/* Validates the framing of every section; -1 with a message if malformed. */
int state_reader_init(struct state_reader *r, const void *data, size_t len, vs_err *err);
/* Position on section (name, instance); returns its version, or -1 (message
 * in err) if absent. */
int state_find(struct state_reader *r, const char *name, uint32_t instance, uint32_t *version,
               vs_err *err);
/* Read from the current section; -1 with a message if it is too short. */
int state_get(struct state_reader *r, void *data, size_t len, vs_err *err);
int state_get_u32(struct state_reader *r, uint32_t *v, vs_err *err);
int state_get_u64(struct state_reader *r, uint64_t *v, vs_err *err);

#endif
