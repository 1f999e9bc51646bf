/* A compression workload for bench/riscv-cpu: an LZ77 compressor with a
 * hash chain match finder (the core of deflate-style compressors) and its
 * decompressor, round-tripping generated text; built from source for both
 * architectures. Prints sizes and a checksum; exits 1 if the round trip
 * fails. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WINDOW 32768
#define MIN_MATCH 4
#define MAX_MATCH 258
#define HASH_BITS 15
#define MAX_CHAIN 64

static uint32_t hash4(const uint8_t *p)
{
    uint32_t v;
    memcpy(&v, p, 4);
    return (v * 2654435761u) >> (32 - HASH_BITS);
}

/* Output: a literal is 0x00-0x7f as one byte after a 0 flag bit; a match
 * is (length, distance). Tokens are bytes: flag byte per 8 tokens. */
static size_t compress(const uint8_t *in, size_t n, uint8_t *out)
{
    static int32_t head[1 << HASH_BITS];
    static int32_t prev[WINDOW];
    memset(head, -1, sizeof(head));
    size_t o = 0, i = 0;
    while (i < n) {
        size_t flag_at = o++;
        uint8_t flags = 0;
        for (int t = 0; t < 8 && i < n; t++) {
            size_t best_len = 0, best_dist = 0;
            if (i + MIN_MATCH <= n) {
                uint32_t h = hash4(in + i);
                int32_t cand = head[h];
                for (int chain = 0; cand >= 0 && chain < MAX_CHAIN; chain++) {
                    size_t dist = i - (size_t)cand;
                    if (dist > WINDOW - 1)
                        break;
                    size_t len = 0, max = n - i < MAX_MATCH ? n - i : MAX_MATCH;
                    while (len < max && in[cand + len] == in[i + len])
                        len++;
                    if (len > best_len) {
                        best_len = len;
                        best_dist = dist;
                        if (len == max)
                            break;
                    }
                    cand = prev[cand % WINDOW];
                }
                prev[i % WINDOW] = head[h];
                head[h] = (int32_t)i;
            }
            if (best_len >= MIN_MATCH) {
                flags |= (uint8_t)(1u << t);
                out[o++] = (uint8_t)(best_len - MIN_MATCH);
                out[o++] = (uint8_t)(best_dist >> 8);
                out[o++] = (uint8_t)best_dist;
                for (size_t k = 1; k < best_len; k++) {
                    size_t j = i + k;
                    if (j + MIN_MATCH <= n) {
                        uint32_t h2 = hash4(in + j);
                        prev[j % WINDOW] = head[h2];
                        head[h2] = (int32_t)j;
                    }
                }
                i += best_len;
            } else {
                out[o++] = in[i++];
            }
        }
        out[flag_at] = flags;
    }
    return o;
}

static size_t decompress(const uint8_t *in, size_t n, uint8_t *out)
{
    size_t i = 0, o = 0;
    while (i < n) {
        uint8_t flags = in[i++];
        for (int t = 0; t < 8 && i < n; t++) {
            if (flags & (1u << t)) {
                size_t len = (size_t)in[i] + MIN_MATCH;
                size_t dist = ((size_t)in[i + 1] << 8) | in[i + 2];
                i += 3;
                for (size_t k = 0; k < len; k++, o++)
                    out[o] = out[o - dist];
            } else {
                out[o++] = in[i++];
            }
        }
    }
    return o;
}

int main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 4;
    size_t n = 1 << 20;
    uint8_t *text = malloc(n), *packed = malloc(n + n / 8 + 16), *back = malloc(n);
    static const char *const words[] = {"the ",     "quick ",   "brown ",  "fox ",   "jumps ",
                                        "over ",    "lazy ",    "dog ",    "and ",   "emulator ",
                                        "virtual ", "machine ", "vessel ", "riscv ", "\n"};
    uint32_t x = 12345;
    size_t pos = 0;
    while (pos < n) {
        x = x * 1103515245u + 12345u;
        const char *w = words[(x >> 16) % 15];
        while (*w && pos < n)
            text[pos++] = (uint8_t)*w++;
    }
    uint32_t sum = 0;
    size_t packed_len = 0;
    for (int r = 0; r < rounds; r++) {
        packed_len = compress(text, n, packed);
        size_t m = decompress(packed, packed_len, back);
        if (m != n || memcmp(text, back, n)) {
            printf("round trip failed\n");
            return 1;
        }
        for (size_t i = 0; i < packed_len; i += 64)
            sum = sum * 31 + packed[i];
    }
    printf("compress rounds %d in %zu out %zu sum %08x\n", rounds, n, packed_len, sum);
    return 0;
}
