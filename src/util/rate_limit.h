/* I/O rate limits as two token buckets, one for bytes and one for
 * operations (as Firecracker's rate limiter): each refills continuously at
 * its rate up to its burst size; a request goes when both buckets hold what
 * it costs (or are full, for a request bigger than the burst, which then
 * leaves the bucket in debt), otherwise the caller waits the time returned.
 * A rate of 0 is no limit. Not thread-safe: the caller serialises. */
#ifndef VESSEL_UTIL_RATE_LIMIT_H
#define VESSEL_UTIL_RATE_LIMIT_H

#include <stdbool.h>
#include <stdint.h>

struct vs_rate_config {
    uint64_t bytes_per_s, bytes_burst; /* burst 0: a tenth of a second's worth */
    uint64_t ops_per_s, ops_burst;
};

struct vs_bucket {
    uint64_t rate, burst;
    double tokens;
};

struct vs_rate_limit {
    struct vs_rate_config cfg;
    struct vs_bucket bytes, ops;
    uint64_t last_ns;
    uint64_t throttled; /* requests that had to wait */
};

static inline bool vs_rate_config_active(const struct vs_rate_config *c)
{
    return c->bytes_per_s || c->ops_per_s;
}

/* (Re)configure; buckets start full. now_ns: CLOCK_MONOTONIC. */
void vs_rate_limit_set(struct vs_rate_limit *rl, const struct vs_rate_config *c, uint64_t now_ns);
/* Take bytes and one operation if they are there: 0. Otherwise nothing is
 * taken and the nanoseconds to wait before trying again are returned. */
uint64_t vs_rate_limit_take(struct vs_rate_limit *rl, uint64_t bytes, uint64_t now_ns);
uint64_t vs_now_ns(void);

#endif
