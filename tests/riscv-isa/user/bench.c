/* CPU-bound work for bench/riscv-cpu: integer hashing, a sieve, a small
 * matrix multiply in double, and a CRC; prints a checksum. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

static uint32_t crc32(const uint8_t *p, size_t n)
{
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xedb88320u & -(c & 1));
    }
    return ~c;
}

int main(int argc, char **argv)
{
    int scale = argc > 1 ? atoi(argv[1]) : 10;
    uint64_t sum = 0;
    /* sieve */
    int n = 200000;
    char *s = calloc(n, 1);
    for (int r = 0; r < scale; r++) {
        for (int i = 2; i < n; i++)
            s[i] = 0;
        for (int i = 2; (long)i * i < n; i++)
            if (!s[i])
                for (int j = i * i; j < n; j += i)
                    s[j] = 1;
        for (int i = 2; i < n; i++)
            sum += !s[i];
    }
    /* matrix multiply */
    int m = 48;
    double *a = malloc(sizeof(double) * m * m), *b = malloc(sizeof(double) * m * m),
           *c = malloc(sizeof(double) * m * m);
    for (int i = 0; i < m * m; i++) {
        a[i] = (i % 7) * 0.5 + 1.0;
        b[i] = (i % 5) * 0.25 - 0.3;
    }
    double tr = 0;
    for (int r = 0; r < scale; r++) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < m; j++) {
                double acc = 0;
                for (int k = 0; k < m; k++)
                    acc += a[i * m + k] * b[k * m + j];
                c[i * m + j] = acc;
            }
        for (int i = 0; i < m; i++)
            tr += c[i * m + i];
        a[r % (m * m)] += 0.001;
    }
    /* crc over a buffer */
    size_t len = 64 * 1024;
    uint8_t *buf = malloc(len);
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i * 2654435761u >> 24);
    uint32_t crc = 0;
    for (int r = 0; r < scale; r++) {
        buf[r] ^= 0x5a;
        crc ^= crc32(buf, len);
    }
    printf("primes %llu trace %.6f crc %08x\n", (unsigned long long)sum, tr, crc);
    return 0;
}
