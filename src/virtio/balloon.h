/* virtio-balloon (virtio 1.2, 5.5): the guest gives pages back to the host
 * (inflate), takes them again (deflate), reports its memory statistics and,
 * with free page reporting, hands over ranges it has freed without anyone
 * setting a target. The request parsing is separate from the device so it
 * can be unit-tested and fuzzed on its own: every page frame number and
 * range comes from the guest and is checked against guest RAM before the
 * host touches (madvises) anything. */
#ifndef VESSEL_VIRTIO_BALLOON_H
#define VESSEL_VIRTIO_BALLOON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include "mem/guest_mem.h"
#include "util/err.h"
#include "virtio/virtq.h"

#define VIRTIO_ID_BALLOON 5

#define VIRTIO_BALLOON_F_MUST_TELL_HOST 0
#define VIRTIO_BALLOON_F_STATS_VQ 1
#define VIRTIO_BALLOON_F_DEFLATE_ON_OOM 2
#define VIRTIO_BALLOON_F_REPORTING 5

/* Page frame numbers in the inflate and deflate queues are always in 4 KiB
 * units, whatever the guest's page size. */
#define VIRTIO_BALLOON_PFN_SHIFT 12
#define VIRTIO_BALLOON_PAGE (1ULL << VIRTIO_BALLOON_PFN_SHIFT)

/* Config space: le32 num_pages (device: the target), le32 actual (driver:
 * pages it holds now). */
#define VIRTIO_BALLOON_CFG_NUM_PAGES 0
#define VIRTIO_BALLOON_CFG_ACTUAL 4
#define VIRTIO_BALLOON_CFG_SIZE 8

/* Statistics tags (virtio 1.2, 5.5.6.3; 8 and 9 are Linux's). */
#define VIRTIO_BALLOON_S_NR 10

struct balloon_stats {
    uint64_t val[VIRTIO_BALLOON_S_NR];
    uint32_t valid; /* bit t: val[t] was reported */
};

/* The name of statistic t ("free_memory", ...), NULL if unknown. */
const char *balloon_stat_name(unsigned tag);

/* A statistics buffer: packed {le16 tag; le64 val} entries. Unknown tags
 * are skipped, a trailing partial entry ignored. Returns the number of
 * known entries stored in st (merged over what st held). */
int balloon_parse_stats(const uint8_t *buf, size_t len, struct balloon_stats *st);

/* A run of guest pages named by an inflate or deflate request. */
struct balloon_range {
    uint64_t gpa, len;
};

/* The driver->device bytes of an inflate/deflate chain as le32 pfns,
 * sorted and merged into runs of consecutive pages (a pfn given twice
 * counts once). Reads at most max_pfns (at most 256) pfns starting at pfn
 * index *pos (bytes past the last whole pfn are ignored) and advances *pos;
 * returns the number of ranges written to out (room for max_pfns), 0 when
 * the chain is used up. */
size_t balloon_parse_pfns(const struct iovec *iov, unsigned n, size_t *pos, size_t max_pfns,
                          struct balloon_range *out);

/* Page-align [gpa, gpa+len) inward (a reported range may be unaligned):
 * false if no whole page is left. */
bool balloon_align_range(uint64_t *gpa, uint64_t *len);

/* What one request hands back to the host, after bound checks: every page
 * of r inside guest RAM is given to release(); pages outside RAM (or
 * straddling two regions) are counted in *refused and left alone. */
void balloon_release_range(struct guest_mem *mem, struct balloon_range r,
                           void (*release)(void *opaque, uint8_t *hva, uint64_t gpa, uint64_t len),
                           void *opaque, uint64_t *refused);

struct virtio_dev;

/* What `vessel vm info` shows. */
struct virtio_balloon_info {
    uint64_t target_bytes, actual_bytes;
    uint64_t max_target_bytes; /* the largest target accepted */
    unsigned stats_interval_s; /* 0: no statistics */
    bool deflate_on_oom, free_page_reporting;
    bool stats_valid;
    struct balloon_stats stats;
    uint64_t stats_age_ms;   /* since the guest last reported them */
    uint64_t inflated_bytes; /* given back to the host by inflate requests, in all */
    uint64_t deflated_bytes; /* taken again by deflate requests */
    uint64_t reported_bytes; /* given back by free page reporting */
    uint64_t refused_pages;  /* pfns outside guest RAM, ignored */
};

/* A virtio-balloon device (NULL d from virtio_balloon_find: not one). */
bool virtio_is_balloon(const struct virtio_dev *d);
/* Set the balloon's size: bytes the guest should give up (rounded down to
 * 4 KiB). Refused (EINVAL, a one-line message) above
 * max_target_bytes: the guest keeps at least max(16 MiB, RAM / 16). */
int virtio_balloon_set_target(struct virtio_dev *d, uint64_t bytes, vs_err *err);
/* How often the guest is asked for fresh statistics (0: never; at most an
 * hour). Refused if the device has no statistics queue. */
int virtio_balloon_set_stats_interval(struct virtio_dev *d, unsigned secs, vs_err *err);
void virtio_balloon_get_info(struct virtio_dev *d, struct virtio_balloon_info *out);

#endif
