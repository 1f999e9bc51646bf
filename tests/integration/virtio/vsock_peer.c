/* Both ends of the vsock round-trip test, as one static program (the x86
 * guest image has no vsock tool; this one is carried in on a raw disk):
 *   guest-connect PORT MSG   AF_VSOCK to the host (CID 2), send, print reply
 *   guest-listen PORT        accept one AF_VSOCK connection, answer it
 *   host-serve PATH          accept one unix connection (vessel's <uds>_PORT), answer it
 *   host-connect UDS PORT MSG  Firecracker-style "CONNECT PORT" through vessel's uds */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#ifndef AF_VSOCK
#define AF_VSOCK 40
#endif
struct vm_addr {
    unsigned short family, reserved;
    unsigned int port, cid;
    unsigned char zero[4];
};

static int read_line(int fd, char *buf, size_t cap)
{
    size_t n = 0;
    while (n + 1 < cap) {
        ssize_t r = read(fd, buf + n, 1);
        if (r <= 0)
            break;
        if (buf[n] == '\n')
            break;
        n++;
    }
    buf[n] = 0;
    return (int)n;
}

static void answer(int c, const char *who)
{
    char line[256], reply[300];
    read_line(c, line, sizeof(line));
    int n = snprintf(reply, sizeof(reply), "%s got: %s\n", who, line);
    if (write(c, reply, (size_t)n) != n)
        perror("write");
    /* wait for the peer to close, so the reply is not lost to a power-off */
    shutdown(c, SHUT_WR);
    while (read(c, line, sizeof(line)) > 0)
        ;
}

int main(int argc, char **argv)
{
    setvbuf(stdout, NULL, _IONBF, 0);
    if (argc == 4 && !strcmp(argv[1], "guest-connect")) {
        int s = socket(AF_VSOCK, SOCK_STREAM, 0);
        struct vm_addr a = {.family = AF_VSOCK, .port = (unsigned)atoi(argv[2]), .cid = 2};
        if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
            printf("VT-VSOCK-FAIL connect: %s\n", strerror(errno));
            return 1;
        }
        dprintf(s, "%s\n", argv[3]);
        char line[256];
        read_line(s, line, sizeof(line));
        printf("VT-VSOCK-RX %s\n", line);
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "guest-listen")) {
        int s = socket(AF_VSOCK, SOCK_STREAM, 0);
        struct vm_addr a = {.family = AF_VSOCK, .port = (unsigned)atoi(argv[2]), .cid = -1U};
        if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
            printf("VT-VSOCK-FAIL listen: %s\n", strerror(errno));
            return 1;
        }
        printf("VT-VSOCK-LISTENING\n");
        int c = accept(s, NULL, NULL);
        answer(c, "guest");
        close(c);
        printf("VT-VSOCK-SERVED\n");
        return 0;
    }
    if (argc == 3 && !strcmp(argv[1], "host-serve")) {
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        struct sockaddr_un a = {.sun_family = AF_UNIX};
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[2]);
        unlink(argv[2]);
        if (bind(s, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(s, 1) < 0) {
            printf("VT-HOST-FAIL listen: %s\n", strerror(errno));
            return 1;
        }
        int c = accept(s, NULL, NULL);
        answer(c, "host");
        close(c);
        return 0;
    }
    if (argc == 5 && !strcmp(argv[1], "host-connect")) {
        /* retry until the guest listens: until then the guest resets us */
        for (int attempt = 0; attempt < 120; attempt++) {
            int s = socket(AF_UNIX, SOCK_STREAM, 0);
            struct sockaddr_un a = {.sun_family = AF_UNIX};
            snprintf(a.sun_path, sizeof(a.sun_path), "%s", argv[2]);
            if (connect(s, (struct sockaddr *)&a, sizeof(a)) == 0) {
                dprintf(s, "CONNECT %s\n", argv[3]);
                char line[256];
                read_line(s, line, sizeof(line));
                if (!strncmp(line, "OK ", 3)) {
                    dprintf(s, "%s\n", argv[4]);
                    read_line(s, line, sizeof(line));
                    printf("VT-HOST-RX %s\n", line);
                    return 0;
                }
            }
            close(s);
            usleep(500000);
        }
        printf("VT-HOST-FAIL the guest never accepted\n");
        return 1;
    }
    fprintf(stderr, "usage: see the comment at the top of vsock_peer.c\n");
    return 2;
}
