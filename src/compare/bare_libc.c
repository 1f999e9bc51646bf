/* The little C library the workload needs in the KVM row's guest (ring 3
 * over bare_start.S's kernel): stdio to the console through write(2),
 * a bump allocator over the RAM after the image, the string functions,
 * clock_gettime from the TSC, and _ustart, which turns the kernel command
 * line ("[ring=0] tsc_khz=N -- ARGS") into main's argv. Compiled with workload.c
 * against the host's glibc headers (-ffreestanding -nostdlib), so only what
 * workload.c calls exists. */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv);

long bare_kcall(long nr, long a, long b, long c);
static int ring0; /* the workload runs in the kernel (ring=0): calls, not SYSCALL */

static long sys3(long nr, long a, long b, long c)
{
    if (ring0)
        return bare_kcall(nr, a, b, c);
    long r;
    __asm__ volatile("syscall"
                     : "=a"(r)
                     : "a"(nr), "D"(a), "S"(b), "d"(c)
                     : "rcx", "r11", "r8", "r9", "memory");
    return r;
}

long syscall(long nr, ...)
{
    va_list ap;
    va_start(ap, nr);
    long a = va_arg(ap, long), b = va_arg(ap, long), c = va_arg(ap, long);
    va_end(ap);
    return sys3(nr, a, b, c);
}

void exit(int status)
{
    fflush(stdout);
    for (;;)
        sys3(231, status, 0, 0);
}

/* ---- string ---- */

void *memset(void *d, int c, size_t n)
{
    void *r = d;
    __asm__ volatile("rep stosb" : "+D"(d), "+c"(n) : "a"(c) : "memory");
    return r;
}

void *memcpy(void *d, const void *s, size_t n)
{
    void *r = d;
    __asm__ volatile("rep movsb" : "+D"(d), "+S"(s), "+c"(n) : : "memory");
    return r;
}

void *memmove(void *d, const void *s, size_t n)
{
    unsigned char *dd = d;
    const unsigned char *ss = s;
    if (dd <= ss || dd >= ss + n)
        return memcpy(d, s, n);
    while (n--)
        dd[n] = ss[n];
    return d;
}

int memcmp(const void *a, const void *b, size_t n)
{
    const unsigned char *x = a, *y = b;
    for (size_t i = 0; i < n; i++)
        if (x[i] != y[i])
            return x[i] - y[i];
    return 0;
}

size_t strlen(const char *s)
{
    size_t n = 0;
    while (s[n])
        n++;
    return n;
}

int strcmp(const char *a, const char *b)
{
    while (*a && *a == *b)
        a++, b++;
    return (unsigned char)*a - (unsigned char)*b;
}

int strncmp(const char *a, const char *b, size_t n)
{
    for (; n && *a && *a == *b; n--)
        a++, b++;
    return n ? (unsigned char)*a - (unsigned char)*b : 0;
}

unsigned long strtoul(const char *s, char **end, int base)
{
    unsigned long v = 0;
    while (*s >= '0' && *s <= '9')
        v = v * 10 + (unsigned long)(*s++ - '0');
    if (end)
        *end = (char *)s;
    return v;
}

/* ---- memory: a bump allocator; free gives nothing back ---- */

extern char _end[];
static uintptr_t brk_at;

void *malloc(size_t n)
{
    if (!brk_at)
        brk_at = ((uintptr_t)_end + (2u << 20) - 1) & ~(uintptr_t)((2u << 20) - 1);
    void *p = (void *)brk_at;
    brk_at += (n + 4095) & ~(size_t)4095;
    return p;
}

void free(void *p) {}

/* ---- time: the TSC, at the rate the host measured (tsc_khz=) ---- */

static uint64_t tsc_khz = 1000000;

int clock_gettime(clockid_t clk, struct timespec *ts)
{
    uint32_t lo, hi;
    __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
    uint64_t t = (uint64_t)hi << 32 | lo;
    uint64_t ns = t / tsc_khz * 1000000u + t % tsc_khz * 1000000u / tsc_khz;
    ts->tv_sec = (time_t)(ns / 1000000000u);
    ts->tv_nsec = (long)(ns % 1000000000u);
    return 0;
}

/* ---- stdio: everything goes to the console ---- */

static char outbuf[4096];
static size_t outlen;
static struct {
    int dummy;
} files[2];
FILE *stdout = (FILE *)&files[0], *stderr = (FILE *)&files[1];

int fflush(FILE *f)
{
    if (outlen)
        sys3(1, 1, (long)outbuf, (long)outlen);
    outlen = 0;
    return 0;
}

static void out(char c)
{
    if (outlen == sizeof(outbuf))
        fflush(stdout);
    outbuf[outlen++] = c;
}

static void out_u(unsigned long long v, unsigned base)
{
    char b[24];
    int i = 0;
    do {
        b[i++] = "0123456789abcdef"[v % base];
        v /= base;
    } while (v);
    while (i)
        out(b[--i]);
}

/* %s %c %d %u %x with l, ll and z: what workload.c prints */
int vfprintf(FILE *f, const char *fmt, va_list ap)
{
    for (; *fmt; fmt++) {
        if (*fmt != '%') {
            out(*fmt);
            continue;
        }
        int longs = 0;
        for (fmt++; *fmt == 'l' || *fmt == 'z'; fmt++)
            longs++;
        switch (*fmt) {
        case 's':
            for (const char *s = va_arg(ap, const char *); *s; s++)
                out(*s);
            break;
        case 'c':
            out((char)va_arg(ap, int));
            break;
        case 'd': {
            long long v = longs ? va_arg(ap, long long) : va_arg(ap, int);
            if (v < 0) {
                out('-');
                v = -v;
            }
            out_u((unsigned long long)v, 10);
            break;
        }
        case 'u':
        case 'x':
            out_u(longs ? va_arg(ap, unsigned long long) : va_arg(ap, unsigned),
                  *fmt == 'u' ? 10 : 16);
            break;
        default:
            out(*fmt);
        }
    }
    if (f == stderr)
        fflush(f);
    return 0;
}

int fprintf(FILE *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(f, fmt, ap);
    va_end(ap);
    return 0;
}

int printf(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stdout, fmt, ap);
    va_end(ap);
    return 0;
}

int puts(const char *s)
{
    printf("%s\n", s);
    return 0;
}

int putchar(int c)
{
    out((char)c);
    return c;
}

int fputs(const char *s, FILE *f)
{
    return fprintf(f, "%s", s);
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f)
{
    for (size_t i = 0; i < size * n; i++)
        out(((const char *)p)[i]);
    return n;
}

/* no files in this guest: /proc/self/status is not there */
FILE *fopen(const char *path, const char *mode)
{
    return NULL;
}
char *fgets(char *s, int n, FILE *f)
{
    return NULL;
}
int fclose(FILE *f)
{
    return 0;
}
int sscanf(const char *s, const char *fmt, ...)
{
    return 0;
}

/* ---- start: the command line into argv ---- */

static const char *boot_cmdline(const uint8_t *boot_params)
{
    uint64_t ptr = *(const uint32_t *)(boot_params + 0x228) |
                   (uint64_t) * (const uint32_t *)(boot_params + 0xc8) << 32;
    return ptr ? (const char *)(uintptr_t)ptr : "";
}

/* called by the kernel before it drops to ring 3 */
int bare_wants_ring0(const uint8_t *boot_params)
{
    const char *c = boot_cmdline(boot_params);
    return !strncmp(c, "ring=0", 6);
}

void _ustart(uint8_t *boot_params, int in_ring0)
{
    static char line[1024];
    static char *argv[16];
    ring0 = in_ring0;
    const char *cmd = boot_cmdline(boot_params);
    size_t n = strlen(cmd);
    if (n >= sizeof(line))
        n = sizeof(line) - 1;
    memcpy(line, cmd, n);
    int argc = 0;
    argv[argc++] = "workload";
    int after = 0;
    for (char *p = line; *p;) {
        while (*p == ' ')
            *p++ = 0;
        if (!*p)
            break;
        char *tok = p;
        while (*p && *p != ' ')
            p++;
        if (*p)
            *p++ = 0;
        if (after && argc < 15)
            argv[argc++] = tok;
        else if (!strcmp(tok, "--"))
            after = 1;
        else if (!strncmp(tok, "tsc_khz=", 8))
            tsc_khz = strtoul(tok + 8, NULL, 10) ?: 1;
    }
    argv[argc] = NULL;
    exit(main(argc, argv));
}
