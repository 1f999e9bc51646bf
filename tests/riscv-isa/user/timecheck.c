/* clocks and sleeping; prints only what is deterministic */
#include <stdio.h>
#include <sys/time.h>
#include <time.h>

int main(void)
{
    struct timespec a, b, rt;
    clock_gettime(CLOCK_MONOTONIC, &a);
    struct timespec d = {0, 20 * 1000 * 1000};
    nanosleep(&d, NULL);
    clock_gettime(CLOCK_MONOTONIC, &b);
    long ms = (b.tv_sec - a.tv_sec) * 1000 + (b.tv_nsec - a.tv_nsec) / 1000000;
    printf("slept at least 20ms: %s\n", ms >= 20 ? "yes" : "no");
    clock_gettime(CLOCK_REALTIME, &rt);
    struct timeval tv;
    gettimeofday(&tv, NULL);
    time_t t = time(NULL);
    printf("clocks agree: %s\n", (t - rt.tv_sec <= 2 && tv.tv_sec - rt.tv_sec <= 2) ? "yes" : "no");
    printf("after 2020: %s\n", t > 1577836800 ? "yes" : "no");
    unsigned long c1, c2;
    __asm__ volatile("rdtime %0" : "=r"(c1));
    for (volatile int i = 0; i < 100000; i++)
        ;
    __asm__ volatile("rdtime %0" : "=r"(c2));
    printf("rdtime advances: %s\n", c2 > c1 ? "yes" : "no");
    return 0;
}
