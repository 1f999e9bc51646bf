/* /init of vessel's riscv64 test guest: a small static program instead of a
 * shell, so the guest builds from Debian packages without a riscv64 busybox.
 * It mounts the pseudo file systems, prints the marker the tests wait for,
 * does what the kernel command line asks (vessel.blk: mount /dev/vda and read
 * a file back; vessel.run: run a program from /dev/vda, then power off;
 * vessel.poweroff: power off), and otherwise runs a tiny
 * line-oriented shell on the console (echo, cat, ls, write, mount, read,
 * uname, nproc, blk, net, netsend, netrecv, tcp, alloc, readdev, poke,
 * peek, ticker, dirty, poweroff, reboot). The guest agent (/sbin/vessel-agent,
 * docs/guest-agent.md) runs beside it so `vessel exec` reaches the guest
 * over vsock. */
#define _GNU_SOURCE /* O_DIRECT */
#include <arpa/inet.h>
#include <dirent.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/mount.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char cmdline[4096];

static int has_arg(const char *name)
{
    size_t n = strlen(name);
    for (char *p = cmdline; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == cmdline || p[-1] == ' ') && (p[n] == ' ' || p[n] == '\n' || p[n] == '=' ||
                                               p[n] == 0))
            return 1;
    }
    return 0;
}

static void cat_file(const char *path)
{
    char buf[512];
    int fd = open(path, O_RDONLY);
    if (fd < 0) {
        printf("cat: %s: %s\n", path, strerror(errno));
        return;
    }
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0)
        fwrite(buf, 1, (size_t)n, stdout);
    if (n < 0)
        printf("cat: %s: %s\n", path, strerror(errno));
    close(fd);
    fflush(stdout);
}

static int online_cpus(void)
{
    return (int)sysconf(_SC_NPROCESSORS_ONLN);
}

static void power(int how)
{
    sync();
    reboot(how);
    printf("init: reboot(): %s\n", strerror(errno));
}

static void mount_blk(void)
{
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", MS_RDONLY, NULL) < 0) {
        printf("VESSEL-BLK-FAIL: mount /dev/vda: %s\n", strerror(errno));
        return;
    }
    char buf[256] = "";
    int fd = open("/mnt/hello.txt", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n > 0) {
        buf[n] = 0;
        printf("VESSEL-BLK-OK %s", buf);
    } else {
        printf("VESSEL-BLK-FAIL: read /mnt/hello.txt: %s\n", strerror(errno));
    }
    if (fd >= 0)
        close(fd);
    umount("/mnt");
}

static void eth0_config(const char *addr, const char *mask);

/* Give eth0 ADDR/24 and bring it up (there is no DHCP client). */
static void eth0_up(const char *addr)
{
    eth0_config(addr, "255.255.255.0");
}

/* vessel.ip=ADDR/PREFIX,GATEWAY (the management daemon's network): the
 * address, the route to the rest of the world through the gateway. */
static void net_from_cmdline(void)
{
    const char *p = strstr(cmdline, "vessel.ip=");
    if (!p || (p != cmdline && p[-1] != ' '))
        return;
    char addr[32] = "", gw[32] = "";
    int prefix = 24;
    if (sscanf(p + 10, "%31[0-9.]/%d,%31[0-9.]", addr, &prefix, gw) < 2 || prefix < 1 ||
        prefix > 32) {
        printf("net: cannot read %s\n", p);
        return;
    }
    struct in_addr m = {htonl(prefix == 32 ? 0xffffffffu : ~(0xffffffffu >> prefix))};
    char mask[32];
    inet_ntop(AF_INET, &m, mask, sizeof(mask));
    eth0_config(addr, mask);
    if (!gw[0])
        return;
    struct rtentry rt = {0};
    struct sockaddr_in *dst = (struct sockaddr_in *)&rt.rt_dst;
    struct sockaddr_in *via = (struct sockaddr_in *)&rt.rt_gateway;
    struct sockaddr_in *msk = (struct sockaddr_in *)&rt.rt_genmask;
    dst->sin_family = via->sin_family = msk->sin_family = AF_INET;
    inet_pton(AF_INET, gw, &via->sin_addr);
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    if (ioctl(s, SIOCADDRT, &rt) < 0)
        printf("net: default route via %s: %s\n", gw, strerror(errno));
    close(s);
}

static void eth0_config(const char *addr, const char *mask)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "eth0");
    struct sockaddr_in *sin = (struct sockaddr_in *)&ifr.ifr_addr;
    sin->sin_family = AF_INET;
    inet_pton(AF_INET, addr, &sin->sin_addr);
    if (ioctl(s, SIOCSIFADDR, &ifr) < 0)
        printf("net: SIOCSIFADDR: %s\n", strerror(errno));
    inet_pton(AF_INET, mask, &sin->sin_addr);
    if (ioctl(s, SIOCSIFNETMASK, &ifr) < 0)
        printf("net: SIOCSIFNETMASK: %s\n", strerror(errno));
    ioctl(s, SIOCGIFFLAGS, &ifr);
    ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
    if (ioctl(s, SIOCSIFFLAGS, &ifr) < 0)
        printf("net: SIOCSIFFLAGS: %s\n", strerror(errno));
    close(s);
}

/* net ADDR HOST PORT TEXT: give eth0 ADDR/24, bring it up, connect to
 * HOST:PORT over TCP, send TEXT and print what comes back. Enough to show
 * virtio-net and user networking without a DHCP client. */
/* Bring eth0 up as addr, then a TCP connection to host:port (-1 with the
 * reason printed, prefixed by what). */
static int tcp_connect(const char *what, const char *addr, const char *host, unsigned port)
{
    eth0_up(addr);
    struct sockaddr_in dst = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &dst.sin_addr);
    int s = socket(AF_INET, SOCK_STREAM, 0);
    if (connect(s, (struct sockaddr *)&dst, sizeof(dst)) < 0) {
        printf("%s: connect %s:%u: %s\n", what, host, port, strerror(errno));
        close(s);
        return -1;
    }
    return s;
}

static void net_cmd(char *arg)
{
    char addr[32], host[32], text[128];
    unsigned port;
    if (sscanf(arg, "%31s %31s %u %127s", addr, host, &port, text) != 4) {
        printf("usage: net ADDR HOST PORT TEXT\n");
        return;
    }
    int s = tcp_connect("net", addr, host, port);
    if (s < 0)
        return;
    char buf[256];
    ssize_t n;
    if (write(s, text, strlen(text)) < 0 || (n = read(s, buf, sizeof(buf) - 1)) < 0) {
        printf("net: %s\n", strerror(errno));
    } else {
        buf[n] = 0;
        printf("net reply: %s\n", buf);
    }
    close(s);
}

/* netsend ADDR HOST PORT KIB: send KIB KiB over TCP to HOST:PORT, then wait
 * for the peer to close (the NIC rate-limit tests time it on the host). */
static void netsend_cmd(char *arg)
{
    char addr[32], host[32];
    unsigned port, kib;
    if (sscanf(arg, "%31s %31s %u %u", addr, host, &port, &kib) != 4) {
        printf("usage: netsend ADDR HOST PORT KIB\n");
        return;
    }
    int s = tcp_connect("netsend", addr, host, port);
    if (s < 0)
        return;
    static char buf[16384];
    memset(buf, 'v', sizeof(buf));
    long long left = (long long)kib << 10, sent = 0;
    while (left > 0) {
        ssize_t n = write(s, buf, left < (long long)sizeof(buf) ? (size_t)left : sizeof(buf));
        if (n <= 0)
            break;
        left -= n;
        sent += n;
    }
    shutdown(s, SHUT_WR);
    while (read(s, buf, sizeof(buf)) > 0)
        ;
    close(s);
    printf("netsend: %lld bytes sent\n", sent);
}

/* netrecv ADDR HOST PORT: connect, read until the peer closes, print how
 * many bytes in how long (the receive rate-limit test). */
static void netrecv_cmd(char *arg)
{
    char addr[32], host[32];
    unsigned port;
    if (sscanf(arg, "%31s %31s %u", addr, host, &port) != 3) {
        printf("usage: netrecv ADDR HOST PORT\n");
        return;
    }
    int s = tcp_connect("netrecv", addr, host, port);
    if (s < 0)
        return;
    static char buf[16384];
    long long got = 0;
    ssize_t n;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while ((n = read(s, buf, sizeof(buf))) > 0)
        got += n;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    close(s);
    printf("netrecv: %lld bytes in %ld ms\n", got,
           (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
}

/* tcp up ADDR | connect HOST PORT | listen PORT | accept FD | send FD TEXT |
 * recv FD SECONDS | close FD: TCP sockets that stay open between commands
 * (and across a snapshot), so tests can see what a restored guest's open
 * connections do. recv prints what arrived, "tcp: eof", "tcp: error: ..."
 * or "tcp: timeout". */
static void tcp_cmd(char *arg)
{
    char op[16], a[64] = "", b[128] = "";
    if (sscanf(arg, "%15s %63s %127s", op, a, b) < 2) {
        printf("usage: tcp up|connect|listen|accept|send|recv|close ...\n");
        return;
    }
    int fd = atoi(a), s;
    struct sockaddr_in sin = {.sin_family = AF_INET};
    if (!strcmp(op, "up")) {
        eth0_up(a);
        printf("tcp: eth0 up\n");
    } else if (!strcmp(op, "connect")) {
        sin.sin_port = htons((uint16_t)atoi(b));
        inet_pton(AF_INET, a, &sin.sin_addr);
        s = socket(AF_INET, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&sin, sizeof(sin)) < 0) {
            printf("tcp: error: %s\n", strerror(errno));
            close(s);
        } else
            printf("tcp: connected fd %d\n", s);
    } else if (!strcmp(op, "listen")) {
        sin.sin_port = htons((uint16_t)atoi(a));
        s = socket(AF_INET, SOCK_STREAM, 0);
        int one = 1;
        setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
        if (bind(s, (struct sockaddr *)&sin, sizeof(sin)) < 0 || listen(s, 4) < 0)
            printf("tcp: error: %s\n", strerror(errno));
        else
            printf("tcp: listening fd %d\n", s);
    } else if (!strcmp(op, "accept")) {
        s = accept(fd, NULL, NULL);
        if (s < 0)
            printf("tcp: error: %s\n", strerror(errno));
        else
            printf("tcp: accepted fd %d\n", s);
    } else if (!strcmp(op, "send")) {
        if (write(fd, b, strlen(b)) < 0)
            printf("tcp: error: %s\n", strerror(errno));
        else
            printf("tcp: sent\n");
    } else if (!strcmp(op, "recv")) {
        struct pollfd p = {.fd = fd, .events = POLLIN};
        char buf[256];
        ssize_t n;
        if (poll(&p, 1, atoi(b) * 1000) == 0)
            printf("tcp: timeout\n");
        else if ((n = read(fd, buf, sizeof(buf) - 1)) < 0)
            printf("tcp: error: %s\n", strerror(errno));
        else if (n == 0)
            printf("tcp: eof\n");
        else {
            buf[n] = 0;
            printf("tcp recv: %s\n", buf);
        }
    } else if (!strcmp(op, "close")) {
        close(fd);
        printf("tcp: closed\n");
    } else
        printf("tcp: unknown operation %s\n", op);
}

/* vessel.run=ARG,ARG,...: run /mnt/run from the ext4 disk /dev/vda (read
 * only) with those arguments, its output on the console, then power off
 * (`vessel compare` runs its workload, or a user's program, this way). */
static void run_from_disk(void)
{
    const char *p = strstr(cmdline, "vessel.run=");
    if (!p || (p != cmdline && p[-1] != ' '))
        return;
    static char args[1024];
    snprintf(args, sizeof(args), "%s", p + 11);
    args[strcspn(args, " \n")] = 0;
    char *argv[32] = {"/mnt/run"};
    int argc = 1;
    for (char *a = strtok(args, ","); a && argc < 31; a = strtok(NULL, ","))
        argv[argc++] = a;
    argv[argc] = NULL;
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", MS_RDONLY, NULL) < 0) {
        printf("VESSEL-RUN-FAIL: mount /dev/vda: %s\n", strerror(errno));
        power(RB_POWER_OFF);
    }
    fflush(stdout);
    pid_t pid = fork();
    if (pid == 0) {
        char *envp[] = {"PATH=/mnt:/bin:/sbin", "HOME=/", NULL};
        execve(argv[0], argv, envp);
        printf("VESSEL-RUN-FAIL: %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
    int st = 0;
    while (pid > 0 && waitpid(pid, &st, 0) < 0 && errno == EINTR)
        ;
    printf("VESSEL-RUN-EXIT %d\n", WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st));
    fflush(stdout);
    umount("/mnt");
    power(RB_POWER_OFF);
}

/* The guest agent, in a session of its own; it reaps what it starts. */
static void start_agent(void)
{
    struct stat st;
    if (stat("/sbin/vessel-agent", &st) < 0)
        return;
    pid_t pid = fork();
    if (pid == 0) {
        setsid();
        char *argv[] = {"/sbin/vessel-agent", NULL};
        char *envp[] = {"PATH=/sbin:/bin", "HOME=/", NULL};
        execve(argv[0], argv, envp);
        printf("init: cannot start %s: %s\n", argv[0], strerror(errno));
        _exit(127);
    }
}

/* Background work for the migration tests, each in a child of its own:
 * ticker counts in a tight loop and keeps "COUNT MAX_GAP_US" in /ticker
 * (the largest gap of the guest's own clock between two iterations). */
static void ticker(void)
{
    if (fork() != 0)
        return;
    unsigned long long count = 0, max_gap = 0;
    struct timespec last, now, written;
    clock_gettime(CLOCK_MONOTONIC, &last);
    written = last;
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        unsigned long long gap = (unsigned long long)(now.tv_sec - last.tv_sec) * 1000000ull +
                                 (unsigned long long)(now.tv_nsec - last.tv_nsec) / 1000;
        if (count > 0 && gap > max_gap)
            max_gap = gap;
        last = now;
        count++;
        if ((now.tv_sec - written.tv_sec) * 1000 + (now.tv_nsec - written.tv_nsec) / 1000000 >= 20) {
            char buf[64];
            int n = snprintf(buf, sizeof(buf), "%llu %llu\n", count, max_gap);
            int fd = open("/ticker", O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd >= 0) {
                if (write(fd, buf, (size_t)n) < 0)
                    _exit(1);
                close(fd);
            }
            clock_gettime(CLOCK_MONOTONIC, &written);
            last = written;
        }
    }
}

/* dirty MIB [SPIN]: write a word in each page of MIB MiB, over and over,
 * counting SPIN iterations between pages, so how fast it dirties memory
 * follows the CPU time the guest gets (what auto-converge throttles). */
static void dirty(const char *arg)
{
    long mib = arg ? atol(arg) : 0;
    const char *sp = arg ? strchr(arg, ' ') : NULL;
    long spin = sp ? atol(sp + 1) : 0;
    if (mib <= 0 || mib > 4096 || spin < 0) {
        printf("dirty: MIB (1..4096) [SPIN] expected\n");
        return;
    }
    if (fork() != 0)
        return;
    volatile unsigned char *p = malloc((size_t)mib << 20);
    if (!p)
        _exit(1);
    for (unsigned char v = 1;; v++)
        for (size_t i = 0; i < ((size_t)mib << 20); i += 4096) {
            p[i] = v;
            for (volatile long k = 0; k < spin; k++)
                ;
        }
}

/* alloc MIB: touch MIB MiB of fresh memory, then free it (the balloon's
 * free page reporting tests: the host sees the pages come and go). */
static void alloc_cmd(const char *arg)
{
    long mib = atol(arg);
    size_t len = (size_t)mib << 20;
    char *p = mib > 0 ? mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
                             -1, 0)
                      : MAP_FAILED;
    if (p == MAP_FAILED) {
        printf("alloc: %ld MiB: %s\n", mib, strerror(errno));
        return;
    }
    for (size_t off = 0; off < len; off += 4096)
        p[off] = (char)(off >> 12 | 1);
    munmap(p, len);
    printf("alloc: %ld MiB touched and freed\n", mib);
}

/* poke PATH OFFSET TEXT / peek PATH OFFSET: write TEXT as one 4 KiB block
 * at OFFSET (a multiple of 4096) of a block device, or read that block back
 * and print its text, both with O_DIRECT: straight to and from the disk, not
 * the guest's page cache (the disk-migration tests). */
static void poke_peek_cmd(char *arg, bool poke)
{
    char path[128];
    long long off = -1;
    int n = 0;
    if (sscanf(arg, "%127s %lld %n", path, &off, &n) < 2 || off < 0 || off % 4096 ||
        (poke && !arg[n])) {
        printf(poke ? "usage: poke PATH OFFSET TEXT\n" : "usage: peek PATH OFFSET\n");
        return;
    }
    char *buf = NULL;
    int fd = open(path, (poke ? O_RDWR | O_SYNC : O_RDONLY) | O_DIRECT);
    if (fd < 0 || posix_memalign((void **)&buf, 4096, 4096)) {
        printf("%s: %s: %s\n", poke ? "poke" : "peek", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    memset(buf, 0, 4096);
    if (poke) {
        strncpy(buf, arg + n, 4095);
        if (pwrite(fd, buf, 4096, off) != 4096)
            printf("poke: %s: %s\n", path, strerror(errno));
        else
            printf("poke: ok\n");
    } else if (pread(fd, buf, 4096, off) != 4096) {
        printf("peek: %s: %s\n", path, strerror(errno));
    } else {
        buf[4095] = 0;
        for (char *c = buf; *c; c++)
            if (*c < ' ' || *c > '~')
                *c = '.';
        printf("peek: [%s]\n", buf);
    }
    free(buf);
    close(fd);
}

/* readdev PATH MIB [BLOCK]: read MIB MiB of a block device with O_DIRECT
 * (no page cache) in BLOCK-byte reads (default 64 KiB) and print how long
 * it took (the rate-limit tests). */
static void readdev_cmd(char *arg)
{
    char path[128];
    long mib = 0, block = 65536;
    if (sscanf(arg, "%127s %ld %ld", path, &mib, &block) < 2 || mib <= 0 || block < 512 ||
        block > (1 << 20) || block % 512) {
        printf("usage: readdev PATH MIB [BLOCK]\n");
        return;
    }
    int fd = open(path, O_RDONLY | O_DIRECT);
    void *buf = NULL;
    if (fd < 0 || posix_memalign(&buf, 4096, (size_t)block)) {
        printf("readdev: %s: %s\n", path, strerror(errno));
        if (fd >= 0)
            close(fd);
        return;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    long long total = 0, want = (long long)mib << 20;
    while (total < want) {
        ssize_t n = pread(fd, buf, (size_t)block, total);
        if (n <= 0)
            break;
        total += n;
    }
    clock_gettime(CLOCK_MONOTONIC, &t1);
    long ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000;
    printf("readdev: %lld bytes in %ld ms\n", total, ms);
    free(buf);
    close(fd);
}

static void shell(void)
{
    char line[512];
    for (;;) {
        printf("vessel-rv# ");
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin)) {
            sleep(1);
            clearerr(stdin);
            continue;
        }
        line[strcspn(line, "\r\n")] = 0;
        char *arg = strchr(line, ' ');
        if (arg)
            *arg++ = 0;
        if (!strcmp(line, ""))
            continue;
        else if (!strcmp(line, "echo"))
            printf("%s\n", arg ? arg : "");
        else if (!strcmp(line, "cat") && arg)
            cat_file(arg);
        else if (!strcmp(line, "write") && arg && strchr(arg, ' ')) {
            /* write PATH TEXT: TEXT and a newline into PATH (e.g. /dev/hvc0) */
            char *text = strchr(arg, ' ');
            *text++ = 0;
            int fd = open(arg, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (fd < 0 || write(fd, text, strlen(text)) < 0 || write(fd, "\n", 1) < 0)
                printf("write: %s: %s\n", arg, strerror(errno));
            if (fd >= 0)
                close(fd);
        }
        else if (!strcmp(line, "ls")) {
            DIR *d = opendir(arg ? arg : "/");
            struct dirent *e;
            while (d && (e = readdir(d)))
                printf("%s\n", e->d_name);
            if (d)
                closedir(d);
        } else if (!strcmp(line, "uname")) {
            struct utsname u;
            uname(&u);
            printf("%s %s %s\n", u.sysname, u.release, u.machine);
        } else if (!strcmp(line, "nproc"))
            printf("%d\n", online_cpus());
        else if (!strcmp(line, "net") && arg)
            net_cmd(arg);
        else if (!strcmp(line, "tcp") && arg)
            tcp_cmd(arg);
        else if (!strcmp(line, "blk"))
            mount_blk();
        else if (!strcmp(line, "alloc") && arg)
            alloc_cmd(arg);
        else if (!strcmp(line, "readdev") && arg)
            readdev_cmd(arg);
        else if (!strcmp(line, "poke") && arg)
            poke_peek_cmd(arg, true);
        else if (!strcmp(line, "peek") && arg)
            poke_peek_cmd(arg, false);
        else if (!strcmp(line, "netrecv") && arg)
            netrecv_cmd(arg);
        else if (!strcmp(line, "netsend") && arg)
            netsend_cmd(arg);
        else if (!strcmp(line, "ticker"))
            ticker();
        else if (!strcmp(line, "dirty"))
            dirty(arg);
        else if (!strcmp(line, "mount") && arg) {
            /* mount TYPE SOURCE DIR (e.g. virtiofs TAG /mnt) */
            char type[32], src[128], dir[128];
            if (sscanf(arg, "%31s %127s %127s", type, src, dir) != 3)
                printf("usage: mount TYPE SOURCE DIR\n");
            else if (mount(src, dir, type, 0, NULL) < 0)
                printf("mount: %s on %s: %s\n", src, dir, strerror(errno));
            else
                printf("mount: %s on %s ok\n", src, dir);
        } else if (!strcmp(line, "read") && arg) {
            /* read PATH: read it all, say how many bytes and how long */
            static char buf[65536];
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            int fd = open(arg, O_RDONLY);
            long long total = 0;
            ssize_t n = fd < 0 ? -1 : 0;
            while (fd >= 0 && (n = read(fd, buf, sizeof(buf))) > 0)
                total += n;
            clock_gettime(CLOCK_MONOTONIC, &t1);
            if (n < 0)
                printf("read: %s: %s\n", arg, strerror(errno));
            else
                printf(
                    "read: %lld bytes in %ld ms\n", total,
                    (long)((t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_nsec - t0.tv_nsec) / 1000000));
            if (fd >= 0)
                close(fd);
        } else if (!strcmp(line, "poweroff"))
            power(RB_POWER_OFF);
        else if (!strcmp(line, "reboot"))
            power(RB_AUTOBOOT);
        else
            printf("%s: unknown command\n", line);
    }
}

int main(void)
{
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL); /* EBUSY when already mounted */
    mkdir("/dev/pts", 0755);                        /* terminals for `vessel exec -t` */
    mount("devpts", "/dev/pts", "devpts", 0, "ptmxmode=0666");
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
        cmdline[n > 0 ? n : 0] = 0;
        close(fd);
    }
    struct timespec up;
    clock_gettime(CLOCK_BOOTTIME, &up);
    struct stat st;
    const char *root = stat("/hello.txt", &st) == 0 ? "disk" : "initramfs";
    printf("VESSEL-RISCV-READY cpus=%d root=%s uptime=%ld.%03lds\n", online_cpus(), root,
           (long)up.tv_sec, up.tv_nsec / 1000000);
    fflush(stdout);
    net_from_cmdline();
    run_from_disk();
    if (has_arg("vessel.blk"))
        mount_blk();
    if (has_arg("vessel.poweroff"))
        power(RB_POWER_OFF);
    if (has_arg("vessel.reboot"))
        power(RB_AUTOBOOT);
    start_agent();
    shell();
    return 0;
}
