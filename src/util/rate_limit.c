#include "util/rate_limit.h"

#include <string.h>
#include <time.h>

uint64_t vs_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void bucket_set(struct vs_bucket *b, uint64_t rate, uint64_t burst)
{
    b->rate = rate;
    /* the default burst is 100 ms of the rate (as QEMU's throttling), so
     * a long transfer measures the rate and not the burst */
    b->burst = rate ? (burst ? burst : (rate / 10 ? rate / 10 : 1)) : 0;
    b->tokens = (double)b->burst;
}

void vs_rate_limit_set(struct vs_rate_limit *rl, const struct vs_rate_config *c, uint64_t now_ns)
{
    memset(rl, 0, sizeof(*rl));
    rl->cfg = *c;
    bucket_set(&rl->bytes, c->bytes_per_s, c->bytes_burst);
    bucket_set(&rl->ops, c->ops_per_s, c->ops_burst);
    rl->last_ns = now_ns;
}

static void refill(struct vs_bucket *b, uint64_t dt_ns)
{
    if (!b->rate)
        return;
    b->tokens += (double)b->rate * (double)dt_ns / 1e9;
    if (b->tokens > (double)b->burst)
        b->tokens = (double)b->burst;
}

/* Nanoseconds until b can pay cost (0: now). A cost above the burst is
 * paid from a full bucket. */
static uint64_t wait_for(const struct vs_bucket *b, uint64_t cost)
{
    if (!b->rate)
        return 0;
    double need = (double)(cost < b->burst ? cost : b->burst);
    if (b->tokens >= need)
        return 0;
    double ns = (need - b->tokens) * 1e9 / (double)b->rate;
    return ns < 1 ? 1 : (uint64_t)ns + 1;
}

uint64_t vs_rate_limit_take(struct vs_rate_limit *rl, uint64_t bytes, uint64_t now_ns)
{
    if (now_ns > rl->last_ns) {
        refill(&rl->bytes, now_ns - rl->last_ns);
        refill(&rl->ops, now_ns - rl->last_ns);
        rl->last_ns = now_ns;
    }
    uint64_t wb = wait_for(&rl->bytes, bytes), wo = wait_for(&rl->ops, 1);
    if (wb || wo) {
        rl->throttled++;
        return wb > wo ? wb : wo;
    }
    if (rl->bytes.rate)
        rl->bytes.tokens -= (double)bytes;
    if (rl->ops.rate)
        rl->ops.tokens -= 1;
    return 0;
}
