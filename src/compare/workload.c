/* The built-in workloads of `vessel compare`: one C source, compiled at run
 * time for the host (x86-64) and for riscv64, so every kind of
 * virtualization runs the same code. Not part of the vessel binary's build
 * (it is embedded as text and compiled by `vessel compare`).
 *
 * usage: workload cpu|memory|syscall|startup [SCALE]
 *        workload disk SCALE PATH       (a file or a block device to overwrite)
 *        workload net SCALE [ADDR:PORT] (stream to a sink there, else to one
 *                                        it starts on 127.0.0.1)
 *
 * The first thing main() does is print "VESSEL-COMPARE-START <ns>" (the
 * CLOCK_REALTIME of the first instruction of the workload, so the caller can
 * measure start-up across a container or an emulator); the last line is
 * "VESSEL-COMPARE-RESULT <workload> ns=<time of the kernel> ops=<units>
 * check=<checksum>". Only libc and syscalls: it runs in an empty container
 * and under user-mode emulation. With VESSEL_BARE (the KVM row's guest,
 * bare_libc.c) there are no files or sockets: disk and net are left out. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#ifndef VESSEL_BARE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/wait.h>
#endif

/* when the timed part began: a workload may move it past its set-up */
static uint64_t t_begin;

static uint64_t now_ns(clockid_t clk)
{
    struct timespec ts;
    clock_gettime(clk, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* --- cpu: a CoreMark-style integer kernel (list, matrix, state machine,
 * CRC), sized to stay in the L1/L2 caches. */
static uint16_t crc16(uint16_t crc, uint32_t v)
{
    for (int i = 0; i < 32; i++) {
        int bit = ((crc ^ v) & 1);
        v >>= 1;
        crc >>= 1;
        if (bit)
            crc ^= 0xa001;
    }
    return crc;
}

struct node {
    struct node *next;
    int16_t data, idx;
};

static struct node *list_sort(struct node *list)
{
    /* bottom-up merge sort by data, as CoreMark's core_list_mergesort */
    for (int insize = 1;; insize *= 2) {
        struct node *p = list, *tail = NULL;
        list = NULL;
        int merges = 0;
        while (p) {
            merges++;
            struct node *q = p;
            int psize = 0;
            for (int i = 0; i < insize && q; i++, q = q->next)
                psize++;
            int qsize = insize;
            while (psize > 0 || (qsize > 0 && q)) {
                struct node *e;
                if (!psize) {
                    e = q, q = q->next, qsize--;
                } else if (!qsize || !q || p->data <= q->data) {
                    e = p, p = p->next, psize--;
                } else {
                    e = q, q = q->next, qsize--;
                }
                if (tail)
                    tail->next = e;
                else
                    list = e;
                tail = e;
            }
            p = q;
        }
        tail->next = NULL;
        if (merges <= 1)
            return list;
    }
}

static struct node *list_reverse(struct node *l)
{
    struct node *r = NULL;
    while (l) {
        struct node *n = l->next;
        l->next = r;
        r = l;
        l = n;
    }
    return r;
}

#define LIST_N 128
#define MAT_N 16

static uint16_t cpu_iteration(uint32_t seed, struct node *pool, int32_t *ma, int32_t *mb,
                              int32_t *mc)
{
    uint16_t crc = 0;
    /* list: fill with pseudo-random data, sort, reverse, search */
    for (int i = 0; i < LIST_N; i++) {
        seed = seed * 1103515245u + 12345u;
        pool[i].data = (int16_t)(seed >> 16);
        pool[i].idx = (int16_t)i;
        pool[i].next = i + 1 < LIST_N ? &pool[i + 1] : NULL;
    }
    struct node *l = list_reverse(list_sort(pool));
    for (struct node *n = l; n; n = n->next)
        if ((n->idx & 7) == 0)
            crc = crc16(crc, (uint32_t)n->data);
    /* matrix: C = A * B, then add a constant and fold */
    for (int i = 0; i < MAT_N * MAT_N; i++) {
        ma[i] = (int32_t)((seed >> (i & 15)) & 0xff) - 128 + i;
        mb[i] = (int32_t)((seed >> ((i + 3) & 15)) & 0xff) - 64;
    }
    for (int i = 0; i < MAT_N; i++)
        for (int j = 0; j < MAT_N; j++) {
            int32_t s = 0;
            for (int k = 0; k < MAT_N; k++)
                s += ma[i * MAT_N + k] * mb[k * MAT_N + j];
            mc[i * MAT_N + j] = s + (int32_t)seed;
        }
    for (int i = 0; i < MAT_N * MAT_N; i += 5)
        crc = crc16(crc, (uint32_t)mc[i]);
    /* state machine: classify comma-separated tokens as int, float,
     * scientific or invalid, as CoreMark's core_state */
    static const char *const toks[] = {"5012",     "1234",     "-874",     "+122",
                                       "35.54400", ".1234500", "-110.700", "+0.64400",
                                       "5.500e+3", "-.123e-2", "-87e+832", "+0.6e-12",
                                       "T0.3e-1F", "-T.T++Tq", "1T3.4e4z", "34.0e-T^"};
    unsigned counts[4] = {0};
    for (unsigned t = 0; t < 16; t++) {
        const char *s = toks[(t + seed) & 15];
        int state = 0; /* 0 start, 1 int, 2 float, 3 sci, 4 invalid */
        for (; *s && state != 4; s++) {
            char c = *s;
            int digit = c >= '0' && c <= '9';
            switch (state) {
            case 0:
                state = digit || c == '+' || c == '-' ? 1 : c == '.' ? 2 : 4;
                break;
            case 1:
                state = digit ? 1 : c == '.' ? 2 : c == 'e' ? 3 : 4;
                break;
            case 2:
                state = digit ? 2 : c == 'e' ? 3 : 4;
                break;
            case 3:
                state = digit || c == '+' || c == '-' ? 3 : 4;
                break;
            }
        }
        counts[state == 0 ? 3 : state - 1]++;
    }
    for (int i = 0; i < 4; i++)
        crc = crc16(crc, counts[i]);
    return crc;
}

static uint64_t work_cpu(unsigned long scale, uint64_t *ops)
{
    static struct node pool[LIST_N];
    static int32_t ma[MAT_N * MAT_N], mb[MAT_N * MAT_N], mc[MAT_N * MAT_N];
    unsigned long iters = scale * 1000;
    uint16_t crc = 0;
    for (unsigned long i = 0; i < iters; i++)
        crc = crc16(crc, cpu_iteration((uint32_t)i * 2654435761u, pool, ma, mb, mc));
    *ops = iters;
    return crc;
}

/* --- memory: fill, copy and read two buffers larger than a server's L3
 * slice together (64 MiB) */
#define MEM_BYTES (32u << 20)

static uint64_t work_memory(unsigned long scale, uint64_t *ops)
{
    uint64_t *a = malloc(MEM_BYTES), *b = malloc(MEM_BYTES);
    if (!a || !b) {
        fprintf(stderr, "workload: out of memory\n");
        exit(1);
    }
    /* first touch (page faults) is set-up, not bandwidth; not with zeros,
     * which the compiler turns into calloc (and calloc into nothing) */
    memset(a, 0x5a, MEM_BYTES);
    memset(b, 0xa5, MEM_BYTES);
    t_begin = now_ns(CLOCK_MONOTONIC);
    uint64_t sum = 0;
    unsigned long passes = scale;
    for (unsigned long p = 0; p < passes; p++) {
        memset(a, (int)(p + 1), MEM_BYTES);
        memcpy(b, a, MEM_BYTES);
        for (size_t i = 0; i < MEM_BYTES / 8; i += 4)
            sum += b[i] + b[i + 1] + b[i + 2] + b[i + 3];
    }
    free(a);
    free(b);
    /* bytes moved: memset writes, memcpy reads and writes, the sum reads */
    *ops = (uint64_t)passes * 4 * MEM_BYTES;
    return sum;
}

/* --- syscall: the cheapest real system call, in a loop (glibc does not cache
 * getppid), so the cost of entering the kernel (or the emulator's syscall
 * layer) dominates */
static uint64_t work_syscall(unsigned long scale, uint64_t *ops)
{
    unsigned long n = scale * 5000;
    uint64_t sum = 0;
    for (unsigned long i = 0; i < n; i++)
        sum += syscall(SYS_getppid) >= 0; /* 0 in a container: its parent is outside */
    *ops = n;
    return sum;
}

#ifndef VESSEL_BARE
static void die(const char *what)
{
    fprintf(stderr, "workload: %s: %s\n", what, strerror(errno));
    exit(1);
}

/* --- disk: fio-like, on a file or a block device, with O_DIRECT where the
 * file system allows it (so the page cache of whoever runs the workload is
 * out of the way): a sequential write and read in 1 MiB blocks, then 4 KiB
 * writes and reads at pseudo-random offsets; synced before the clock stops */
#define DISK_BLOCK (1u << 20)
#define DISK_PAGE 4096u

static void pattern(unsigned char *buf, size_t n, uint64_t off)
{
    for (size_t i = 0; i < n; i += 8) {
        uint64_t v = (off + i) * 0x9e3779b97f4a7c15ull;
        memcpy(buf + i, &v, 8);
    }
}

static void pio(int fd, unsigned char *buf, size_t n, uint64_t off, int write)
{
    ssize_t r = write ? pwrite(fd, buf, n, (off_t)off) : pread(fd, buf, n, (off_t)off);
    if (r != (ssize_t)n)
        die(write ? "pwrite" : "pread");
}

static uint64_t work_disk(unsigned long scale, const char *path, uint64_t *ops)
{
    uint64_t size = (uint64_t)scale * 8 * DISK_BLOCK;
    int fd = open(path, O_RDWR | O_CREAT | O_DIRECT, 0600);
    if (fd < 0 && errno == EINVAL) /* tmpfs and friends: no O_DIRECT */
        fd = open(path, O_RDWR | O_CREAT, 0600);
    if (fd < 0)
        die(path);
    unsigned char *buf;
    if (posix_memalign((void **)&buf, DISK_PAGE, DISK_BLOCK))
        die("posix_memalign");
    t_begin = now_ns(CLOCK_MONOTONIC);
    uint64_t sum = 0;
    for (uint64_t off = 0; off < size; off += DISK_BLOCK) {
        pattern(buf, DISK_BLOCK, off);
        pio(fd, buf, DISK_BLOCK, off, 1);
    }
    if (fdatasync(fd) < 0)
        die("fdatasync");
    for (uint64_t off = 0; off < size; off += DISK_BLOCK) {
        pio(fd, buf, DISK_BLOCK, off, 0);
        sum += buf[off / DISK_BLOCK % DISK_BLOCK] + buf[DISK_BLOCK - 1];
    }
    unsigned long n = scale * 256;
    uint32_t seed = 1;
    for (unsigned long i = 0; i < 2 * n; i++) {
        seed = seed * 1103515245u + 12345u;
        uint64_t off = (uint64_t)(seed >> 8) % (size / DISK_PAGE) * DISK_PAGE;
        if (i < n) {
            pattern(buf, DISK_PAGE, off ^ 1);
            pio(fd, buf, DISK_PAGE, off, 1);
        } else {
            pio(fd, buf, DISK_PAGE, off, 0);
            sum += buf[i % DISK_PAGE];
        }
    }
    if (fdatasync(fd) < 0)
        die("fdatasync");
    close(fd);
    *ops = 2 * size + 2 * n * DISK_PAGE; /* bytes moved */
    return sum;
}

/* --- net: a TCP stream of scale * 32 MiB in 64 KiB writes; the sink acks
 * with the byte count it read, which stops the clock */
#define NET_CHUNK (64u << 10)

static void sink(int lfd)
{
    int c = accept(lfd, NULL, NULL);
    if (c < 0)
        die("accept");
    static char buf[NET_CHUNK];
    uint64_t total = 0;
    ssize_t r;
    while ((r = read(c, buf, sizeof(buf))) > 0)
        total += (uint64_t)r;
    if (write(c, &total, 8) != 8)
        die("write");
    close(c);
}

static uint64_t work_net(unsigned long scale, const char *target, uint64_t *ops)
{
    struct sockaddr_in sin = {.sin_family = AF_INET};
    pid_t child = -1;
    if (target) {
        char host[64];
        unsigned port;
        if (sscanf(target, "%63[^:]:%u", host, &port) != 2 ||
            inet_pton(AF_INET, host, &sin.sin_addr) != 1) {
            fprintf(stderr, "workload: net: bad target '%s'\n", target);
            exit(2);
        }
        sin.sin_port = htons((uint16_t)port);
    } else {
        int lfd = socket(AF_INET, SOCK_STREAM, 0);
        socklen_t len = sizeof(sin);
        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(lfd, 1) < 0 ||
            getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
            die("loopback sink");
        child = fork();
        if (child == 0) {
            sink(lfd);
            _exit(0);
        }
        close(lfd);
    }
    static char buf[NET_CHUNK];
    memset(buf, 0x5a, sizeof(buf));
    uint64_t want = (uint64_t)scale * 32 * (1u << 20);
    t_begin = now_ns(CLOCK_MONOTONIC);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof(sin)) < 0)
        die("connect");
    for (uint64_t sent = 0; sent < want;) {
        ssize_t r = write(fd, buf, sizeof(buf));
        if (r <= 0)
            die("write");
        sent += (uint64_t)r;
    }
    shutdown(fd, SHUT_WR);
    uint64_t got = 0;
    if (read(fd, &got, 8) != 8)
        die("read the sink's count");
    close(fd);
    if (child > 0)
        waitpid(child, NULL, 0);
    *ops = want;
    return got;
}
#endif

int main(int argc, char **argv)
{
    /* first: the start-up marker */
    uint64_t start = now_ns(CLOCK_REALTIME);
    printf("VESSEL-COMPARE-START %llu\n", (unsigned long long)start);
    fflush(stdout);
    if (argc < 2) {
        fprintf(stderr, "usage: workload cpu|memory|syscall|disk|net|startup [SCALE] [ARG]\n");
        return 2;
    }
    unsigned long scale = argc > 2 ? strtoul(argv[2], NULL, 10) : 4;
    if (!scale)
        scale = 1;
    uint64_t ops = 1, check = 0;
    t_begin = now_ns(CLOCK_MONOTONIC);
    if (!strcmp(argv[1], "cpu")) {
        check = work_cpu(scale, &ops);
    } else if (!strcmp(argv[1], "memory")) {
        check = work_memory(scale, &ops);
    } else if (!strcmp(argv[1], "syscall")) {
        check = work_syscall(scale, &ops);
#ifndef VESSEL_BARE
    } else if (!strcmp(argv[1], "disk") && argc > 3) {
        check = work_disk(scale, argv[3], &ops);
    } else if (!strcmp(argv[1], "net")) {
        check = work_net(scale, argc > 3 ? argv[3] : NULL, &ops);
#endif
    } else if (strcmp(argv[1], "startup")) {
        fprintf(stderr, "workload: unknown workload '%s'\n", argv[1]);
        return 2;
    }
    uint64_t t1 = now_ns(CLOCK_MONOTONIC);
    /* peak RSS of this process image: VmHWM restarts at exec (getrusage's
     * maxrss would carry a vfork-ing parent's); under user-mode emulation
     * /proc/self is the emulator's, so it counts the emulator too */
    long rss = -1;
    FILE *st = fopen("/proc/self/status", "r");
    char line[256];
    while (st && fgets(line, sizeof(line), st))
        if (sscanf(line, "VmHWM: %ld", &rss) == 1)
            break;
    if (st)
        fclose(st);
    printf("VESSEL-COMPARE-RESULT %s ns=%llu ops=%llu check=%llx rss_kb=%ld\n", argv[1],
           (unsigned long long)(t1 - t_begin), (unsigned long long)ops, (unsigned long long)check,
           rss);
    return 0;
}
