/* /init of the virtio integration-test guest (riscv64, static): does what
 * `vt=<task>` on the kernel command line asks with the real Linux virtio
 * drivers, prints "VT-..." result lines on the console, and powers off.
 * Tasks: blkwrite, blkread, blkro, blkflush, ioloop, rng, net, netlist, vcon,
 * vsock. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <net/route.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/reboot.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct sockaddr_vm_compat {
    unsigned short svm_family;
    unsigned short svm_reserved1;
    unsigned int svm_port;
    unsigned int svm_cid;
    unsigned char svm_zero[4];
};

static char cmdline[4096];

static const char *arg(const char *name)
{
    static char val[256];
    size_t n = strlen(name);
    for (char *p = cmdline; (p = strstr(p, name)) != NULL; p += n) {
        if ((p == cmdline || p[-1] == ' ') && p[n] == '=') {
            size_t l = strcspn(p + n + 1, " \n");
            if (l >= sizeof(val))
                l = sizeof(val) - 1;
            memcpy(val, p + n + 1, l);
            val[l] = 0;
            return val;
        }
    }
    return NULL;
}

static void out(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void out(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    fflush(stdout);
}

/* ---- block ------------------------------------------------------------ */

static void blkwrite(void)
{
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", 0, NULL) < 0) {
        out("VT-FAIL mount rw: %s\n", strerror(errno));
        return;
    }
    const char *token = arg("vt.token");
    int fd = open("/mnt/from-guest.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    char buf[128];
    int n = snprintf(buf, sizeof(buf), "written by the guest %s\n", token ? token : "?");
    if (fd < 0 || write(fd, buf, (size_t)n) != n || fsync(fd) < 0) {
        out("VT-FAIL write: %s\n", strerror(errno));
        return;
    }
    close(fd);
    /* a bigger file exercises multi-descriptor requests */
    fd = open("/mnt/big.bin", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    static uint8_t big[256 * 1024];
    for (unsigned i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 7);
    if (fd < 0 || write(fd, big, sizeof(big)) != (ssize_t)sizeof(big) || fsync(fd) < 0) {
        out("VT-FAIL write big: %s\n", strerror(errno));
        return;
    }
    close(fd);
    if (umount("/mnt") < 0) {
        out("VT-FAIL umount: %s\n", strerror(errno));
        return;
    }
    out("VT-OK blkwrite\n");
}

/* Write and fsync a file, say so, then hang: the host kills vessel with
 * SIGKILL and checks that the flushed data is in the image. */
static void blkflush(void)
{
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", 0, NULL) < 0) {
        out("VT-FAIL mount rw: %s\n", strerror(errno));
        return;
    }
    int fd = open("/mnt/flushed.txt", O_WRONLY | O_CREAT | O_TRUNC, 0644);
    const char *msg = "flushed before the kill\n";
    if (fd < 0 || write(fd, msg, strlen(msg)) < 0 || fsync(fd) < 0) {
        out("VT-FAIL write: %s\n", strerror(errno));
        return;
    }
    /* the directory entry too */
    int dfd = open("/mnt", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    out("VT-FLUSHED\n");
    for (;;)
        pause();
}

static void blkread(void)
{
    mkdir("/mnt", 0755);
    if (mount("/dev/vda", "/mnt", "ext4", MS_RDONLY, NULL) < 0) {
        out("VT-FAIL mount ro: %s\n", strerror(errno));
        return;
    }
    char buf[256] = "";
    int fd = open("/mnt/from-guest.txt", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
    if (n < 0) {
        out("VT-FAIL read: %s\n", strerror(errno));
    } else {
        buf[n] = 0;
        out("VT-READ %s", buf);
    }
    if (fd >= 0)
        close(fd);
    DIR *mq = opendir("/sys/block/vda/mq");
    int nq = 0;
    struct dirent *de;
    while (mq && (de = readdir(mq)))
        nq += de->d_name[0] != '.';
    if (mq)
        closedir(mq);
    out("VT-MQ %d\n", nq);
    fd = open("/mnt/big.bin", O_RDONLY);
    static uint8_t big[256 * 1024];
    if (fd >= 0 && read(fd, big, sizeof(big)) == (ssize_t)sizeof(big)) {
        unsigned bad = 0;
        for (unsigned i = 0; i < sizeof(big); i++)
            bad += big[i] != (uint8_t)(i * 7);
        out("VT-BIG %s\n", bad ? "corrupt" : "intact");
    }
    if (fd >= 0)
        close(fd);
    umount("/mnt");
}

static void blkro(void)
{
    mkdir("/mnt", 0755);
    /* Linux lets a read-only disk be opened for writing; writes then fail */
    int fd = open("/dev/vda", O_RDWR);
    if (fd >= 0) {
        char zero[512] = {0};
        ssize_t w = pwrite(fd, zero, sizeof(zero), 0);
        int e = errno;
        if (w >= 0 && fsync(fd) < 0) {
            w = -1;
            e = errno;
        }
        out("VT-RO write=%s\n", w < 0 ? strerror(e) : "ok");
        close(fd);
    } else {
        out("VT-RO write=%s\n", strerror(errno));
    }
    int r = mount("/dev/vda", "/mnt", "ext4", 0, NULL);
    out("VT-RO mount-rw=%s\n", r < 0 ? strerror(errno) : "ok");
    if (r == 0) {
        int f = open("/mnt/intruder.txt", O_WRONLY | O_CREAT, 0644);
        out("VT-RO create=%s\n", f < 0 ? strerror(errno) : "ok");
        if (f >= 0)
            close(f);
        umount("/mnt");
    }
    blkread();
}

/* Read the disk (O_DIRECT, a different block each time) and the hwrng in a
 * loop, printing a counter: a snapshot taken mid-loop must restore into a
 * guest whose virtqueues keep working. */
static void ioloop(void)
{
    int fd = open("/dev/vda", O_RDONLY | O_DIRECT);
    int rng = open("/dev/hwrng", O_RDONLY);
    static uint8_t buf[4096] __attribute__((aligned(4096)));
    for (int i = 1; i <= 60; i++) {
        ssize_t n = pread(fd, buf, sizeof(buf), (off_t)(i % 64) * 4096);
        uint8_t r[8];
        ssize_t m = read(rng, r, sizeof(r));
        out("VT-LOOP %d %s\n", i,
            n == (ssize_t)sizeof(buf) && m == (ssize_t)sizeof(r) ? "ok" : "bad");
        usleep(100000);
    }
    close(fd);
    close(rng);
}

/* ---- rng -------------------------------------------------------------- */

static void rng(void)
{
    char cur[64] = "";
    int fd = open("/sys/class/misc/hw_random/rng_current", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cur, sizeof(cur) - 1);
        cur[n > 0 ? n : 0] = 0;
        cur[strcspn(cur, "\n")] = 0;
        close(fd);
    }
    uint8_t b[32];
    fd = open("/dev/hwrng", O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, b, sizeof(b)) : -1;
    if (n != (ssize_t)sizeof(b)) {
        out("VT-FAIL hwrng (%s): %s\n", cur, strerror(errno));
        return;
    }
    out("VT-RNG %s ", cur);
    for (unsigned i = 0; i < sizeof(b); i++)
        out("%02x", b[i]);
    out("\n");
}

/* ---- net -------------------------------------------------------------- */

static int ifreq_ioctl(int s, unsigned long req, struct ifreq *ifr, const char *what)
{
    if (ioctl(s, req, ifr) < 0) {
        out("VT-FAIL %s: %s\n", what, strerror(errno));
        return -1;
    }
    return 0;
}

static void set_addr(struct sockaddr *sa, uint32_t a)
{
    struct sockaddr_in *in = (struct sockaddr_in *)sa;
    memset(in, 0, sizeof(*in));
    in->sin_family = AF_INET;
    in->sin_addr.s_addr = a;
}

/* A minimal DHCP client over a UDP socket bound to the interface (slirp
 * broadcasts its replies). Returns the address (network order) or 0. */
static uint32_t dhcp(const char *ifname, const uint8_t mac[6], uint32_t *mask, uint32_t *router)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_BROADCAST, &one, sizeof(one));
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    setsockopt(s, SOL_SOCKET, SO_BINDTODEVICE, ifname, (socklen_t)strlen(ifname) + 1);
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons(68)};
    if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0) {
        out("VT-FAIL dhcp bind: %s\n", strerror(errno));
        return 0;
    }
    struct timeval tv = {1, 0};
    setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    uint32_t xid = 0x56455353, offered = 0, server = 0;
    for (int step = 0; step < 2; step++) {
        for (int attempt = 0; attempt < 5; attempt++) {
            uint8_t p[300] = {1, 1, 6, 0};
            memcpy(p + 4, &xid, 4);
            memcpy(p + 28, mac, 6);
            uint8_t *o = p + 236;
            memcpy(o, "\x63\x82\x53\x63", 4);
            o += 4;
            *o++ = 53;
            *o++ = 1;
            *o++ = step == 0 ? 1 : 3; /* DISCOVER / REQUEST */
            if (step == 1) {
                *o++ = 50;
                *o++ = 4;
                memcpy(o, &offered, 4);
                o += 4;
                *o++ = 54;
                *o++ = 4;
                memcpy(o, &server, 4);
                o += 4;
            }
            *o++ = 255;
            struct sockaddr_in to = {
                .sin_family = AF_INET, .sin_port = htons(67), .sin_addr.s_addr = INADDR_BROADCAST};
            sendto(s, p, sizeof(p), 0, (struct sockaddr *)&to, sizeof(to));
            uint8_t r[1500];
            ssize_t n = recv(s, r, sizeof(r), 0);
            if (n < 240 || r[0] != 2 || memcmp(r + 4, &xid, 4))
                continue;
            uint32_t yiaddr;
            memcpy(&yiaddr, r + 16, 4);
            int type = 0;
            for (ssize_t i = 240; i + 1 < n && r[i] != 255;) {
                if (r[i] == 0) {
                    i++;
                    continue;
                }
                uint8_t code = r[i], len = r[i + 1];
                if (i + 2 + len > n)
                    break;
                if (code == 53)
                    type = r[i + 2];
                if (code == 54 && len == 4)
                    memcpy(&server, r + i + 2, 4);
                if (code == 1 && len == 4)
                    memcpy(mask, r + i + 2, 4);
                if (code == 3 && len >= 4)
                    memcpy(router, r + i + 2, 4);
                i += 2 + len;
            }
            if (step == 0 && type == 2) {
                offered = yiaddr;
                break;
            }
            if (step == 1 && type == 5) {
                close(s);
                return yiaddr;
            }
        }
        if (step == 0 && !offered)
            break;
    }
    close(s);
    return 0;
}

static int http_get(uint32_t addr, int port, char *buf, size_t len)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in to = {
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = addr};
    if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
        out("VT-FAIL connect: %s\n", strerror(errno));
        close(s);
        return -1;
    }
    const char *req = "GET / HTTP/1.0\r\nHost: host\r\n\r\n";
    if (write(s, req, strlen(req)) < 0)
        return -1;
    size_t got = 0;
    ssize_t n;
    while (got + 1 < len && (n = read(s, buf + got, len - 1 - got)) > 0)
        got += (size_t)n;
    buf[got] = 0;
    close(s);
    return 0;
}

static void serve_once(int port, const char *msg)
{
    int s = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in me = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(s, 1) < 0) {
        out("VT-FAIL listen: %s\n", strerror(errno));
        return;
    }
    out("VT-LISTENING %d\n", port);
    struct pollfd p = {.fd = s, .events = POLLIN};
    if (poll(&p, 1, 30000) <= 0) {
        out("VT-FAIL nobody connected\n");
        return;
    }
    int c = accept(s, NULL, NULL);
    char req[256];
    ssize_t n = read(c, req, sizeof(req));
    (void)n;
    if (write(c, msg, strlen(msg)) < 0)
        out("VT-FAIL write: %s\n", strerror(errno));
    /* Linger until the peer has it all and closes: powering off right after
     * close() could leave the reply in a queue nobody drains any more. */
    shutdown(c, SHUT_WR);
    struct pollfd pc = {.fd = c, .events = POLLIN};
    char sink[64];
    while (poll(&pc, 1, 20000) > 0 && read(c, sink, sizeof(sink)) > 0)
        ;
    close(c);
    close(s);
    out("VT-SERVED\n");
}

static void net(void)
{
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    struct ifreq ifr = {0};
    strcpy(ifr.ifr_name, "eth0");
    if (ifreq_ioctl(s, SIOCGIFHWADDR, &ifr, "eth0 hwaddr") < 0)
        return;
    uint8_t mac[6];
    memcpy(mac, ifr.ifr_hwaddr.sa_data, 6);
    out("VT-MAC %02x:%02x:%02x:%02x:%02x:%02x\n", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
    ifr.ifr_flags = IFF_UP | IFF_RUNNING;
    if (ifreq_ioctl(s, SIOCSIFFLAGS, &ifr, "eth0 up") < 0)
        return;
    /* loopback for completeness */
    struct ifreq lo = {0};
    strcpy(lo.ifr_name, "lo");
    lo.ifr_flags = IFF_UP | IFF_RUNNING;
    ioctl(s, SIOCSIFFLAGS, &lo);
    uint32_t mask = htonl(0xffffff00), router = 0, a = 0;
    const char *fixed = arg("vt.ip");
    if (fixed) {
        /* tap tests: a static address, no gateway */
        struct in_addr ia;
        if (inet_aton(fixed, &ia))
            a = ia.s_addr;
    } else {
        a = dhcp("eth0", mac, &mask, &router);
    }
    if (!a) {
        out("VT-FAIL dhcp: no lease\n");
        return;
    }
    out("VT-ADDR %s\n", inet_ntoa((struct in_addr){a}));
    set_addr(&ifr.ifr_addr, a);
    if (ifreq_ioctl(s, SIOCSIFADDR, &ifr, "set address") < 0)
        return;
    set_addr(&ifr.ifr_netmask, mask);
    if (ifreq_ioctl(s, SIOCSIFNETMASK, &ifr, "set netmask") < 0)
        return;
    const char *peer = arg("vt.peer");
    struct in_addr server = {htonl(0x0a000202)};
    if (peer)
        inet_aton(peer, &server);
    struct rtentry rt = {0};
    set_addr(&rt.rt_dst, 0);
    set_addr(&rt.rt_genmask, 0);
    set_addr(&rt.rt_gateway, router ? router : htonl(0x0a000202));
    rt.rt_flags = RTF_UP | RTF_GATEWAY;
    rt.rt_dev = "eth0";
    if (!fixed && ioctl(s, SIOCADDRT, &rt) < 0)
        out("VT-FAIL route: %s\n", strerror(errno));
    close(s);
    const char *port = arg("vt.port");
    if (port) {
        static char page[4096];
        if (http_get(server.s_addr, atoi(port), page, sizeof(page)) == 0) {
            char *body = strstr(page, "\r\n\r\n");
            out("VT-HTTP %s\n", body ? body + 4 : page);
        }
    }
    const char *serve = arg("vt.serve");
    if (serve)
        serve_once(atoi(serve), "hello from the guest over hostfwd\n");
}

static void netlist(void)
{
    static const char *names[] = {"eth0", "eth1", "eth2", "eth3"};
    for (unsigned i = 0; i < 4; i++) {
        char path[64], mac[32] = "";
        snprintf(path, sizeof(path), "/sys/class/net/%s/address", names[i]);
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            continue;
        ssize_t n = read(fd, mac, sizeof(mac) - 1);
        mac[n > 0 ? n : 0] = 0;
        mac[strcspn(mac, "\n")] = 0;
        close(fd);
        out("VT-IF %s %s\n", names[i], mac);
    }
}

/* ---- virtio-console ---------------------------------------------------- */

static void vcon(void)
{
    /* hvc0 is the SBI console; the virtio port is the next hvc */
    for (int i = 1; i < 8; i++) {
        char path[32];
        snprintf(path, sizeof(path), "/dev/hvc%d", i);
        int fd = open(path, O_RDWR | O_NOCTTY);
        if (fd < 0)
            continue;
        const char *msg = "VT-VCON hello from the guest\n";
        if (write(fd, msg, strlen(msg)) < 0)
            out("VT-FAIL hvc write: %s\n", strerror(errno));
        out("VT-VCON-DEV %s\n", path);
        /* collect one line, however the tty layer splits it */
        char buf[64];
        size_t got = 0;
        time_t end = time(NULL) + 20;
        while (got + 1 < sizeof(buf) && time(NULL) < end) {
            struct pollfd p = {.fd = fd, .events = POLLIN};
            if (poll(&p, 1, 1000) <= 0)
                continue;
            ssize_t n = read(fd, buf + got, sizeof(buf) - 1 - got);
            if (n <= 0)
                continue;
            got += (size_t)n;
            buf[got] = 0;
            if (strchr(buf, '\n') && buf[strspn(buf, "\r\n")])
                break;
        }
        buf[got] = 0;
        char *line = buf + strspn(buf, "\r\n");
        line[strcspn(line, "\r\n")] = 0;
        out("VT-VCON-RX %s\n", line);
        close(fd);
        return;
    }
    out("VT-FAIL no virtio console port\n");
}

/* ---- vsock ------------------------------------------------------------- */

static void vsock(void)
{
    int s = socket(AF_VSOCK, SOCK_STREAM, 0);
    if (s < 0) {
        out("VT-NOVSOCK %s\n", strerror(errno));
        return;
    }
    const char *port = arg("vt.port");
    struct sockaddr_vm_compat to = {
        .svm_family = AF_VSOCK, .svm_cid = 2, .svm_port = port ? (unsigned)atoi(port) : 1234};
    if (connect(s, (struct sockaddr *)&to, sizeof(to)) < 0) {
        out("VT-FAIL vsock connect: %s\n", strerror(errno));
        return;
    }
    const char *msg = "ping from the guest\n";
    if (write(s, msg, strlen(msg)) < 0)
        out("VT-FAIL vsock write: %s\n", strerror(errno));
    char buf[128];
    ssize_t n = read(s, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    out("VT-VSOCK-RX %s\n", buf);
    close(s);
    /* and a host-initiated connection */
    const char *listen_port = arg("vt.listen");
    if (!listen_port)
        return;
    s = socket(AF_VSOCK, SOCK_STREAM, 0);
    struct sockaddr_vm_compat me = {
        .svm_family = AF_VSOCK, .svm_cid = 0xffffffffu, .svm_port = (unsigned)atoi(listen_port)};
    if (bind(s, (struct sockaddr *)&me, sizeof(me)) < 0 || listen(s, 1) < 0) {
        out("VT-FAIL vsock listen: %s\n", strerror(errno));
        return;
    }
    out("VT-VSOCK-LISTENING\n");
    int c = accept(s, NULL, NULL);
    n = read(c, buf, sizeof(buf) - 1);
    buf[n > 0 ? n : 0] = 0;
    buf[strcspn(buf, "\n")] = 0;
    char reply[160];
    snprintf(reply, sizeof(reply), "guest got: %s\n", buf);
    if (write(c, reply, strlen(reply)) < 0)
        out("VT-FAIL vsock reply: %s\n", strerror(errno));
    shutdown(c, SHUT_WR);
    while (read(c, buf, sizeof(buf)) > 0)
        ;
    close(c);
    out("VT-VSOCK-SERVED\n");
}

int main(void)
{
    mount("proc", "/proc", "proc", 0, NULL);
    mount("sysfs", "/sys", "sysfs", 0, NULL);
    mount("devtmpfs", "/dev", "devtmpfs", 0, NULL);
    int fd = open("/proc/cmdline", O_RDONLY);
    if (fd >= 0) {
        ssize_t n = read(fd, cmdline, sizeof(cmdline) - 1);
        cmdline[n > 0 ? n : 0] = 0;
        close(fd);
    }
    const char *task = arg("vt");
    out("VT-START %s\n", task ? task : "(none)");
    if (!task)
        ;
    else if (!strcmp(task, "blkwrite"))
        blkwrite();
    else if (!strcmp(task, "blkread"))
        blkread();
    else if (!strcmp(task, "blkflush"))
        blkflush();
    else if (!strcmp(task, "blkro"))
        blkro();
    else if (!strcmp(task, "ioloop"))
        ioloop();
    else if (!strcmp(task, "rng"))
        rng();
    else if (!strcmp(task, "net"))
        net();
    else if (!strcmp(task, "netlist"))
        netlist();
    else if (!strcmp(task, "vcon"))
        vcon();
    else if (!strcmp(task, "vsock"))
        vsock();
    out("VT-DONE\n");
    sync();
    reboot(RB_POWER_OFF);
    return 0;
}
