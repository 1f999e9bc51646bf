/* allocator-heavy: many small and large blocks, realloc, qsort */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(void)
{
    enum { N = 20000 };
    static char *blocks[N];
    uint64_t seed = 12345, sum = 0;
    for (int round = 0; round < 5; round++) {
        for (int i = 0; i < N; i++) {
            seed = seed * 6364136223846793005ull + 1442695040888963407ull;
            size_t sz = (seed >> 33) % 512 + 1;
            if (i % 997 == 0)
                sz = 300000 + (seed >> 40) % 100000; /* mmap-sized */
            blocks[i] = malloc(sz);
            memset(blocks[i], (int)(i & 0xff), sz);
            sum += sz;
        }
        for (int i = 0; i < N; i += 2) {
            blocks[i] = realloc(blocks[i], 64);
            sum += (unsigned char)blocks[i][0];
        }
        for (int i = 0; i < N; i++)
            free(blocks[i]);
    }
    uint64_t *arr = malloc(sizeof(uint64_t) * 100000);
    for (int i = 0; i < 100000; i++) {
        seed = seed * 6364136223846793005ull + 1442695040888963407ull;
        arr[i] = seed >> 11;
    }
    qsort(arr, 100000, sizeof(uint64_t), cmp);
    int sorted = 1;
    for (int i = 1; i < 100000; i++)
        sorted &= arr[i - 1] <= arr[i];
    printf("sum %llu sorted %d median %llu\n", (unsigned long long)sum, sorted,
           (unsigned long long)arr[50000]);
    return 0;
}
