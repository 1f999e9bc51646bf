/* vessel-agent: the guest agent. Started by the guest's init, it listens on
 * virtio-vsock port 1024 (AGENT_VSOCK_PORT) and runs one command per
 * connection for the host (`vessel exec` on a VM); docs/guest-agent.md.
 * Static, libc only, so one binary fits any guest of its architecture.
 *
 *   vessel-agent [--port N]
 *   vessel-agent --set-identity [--mac MAC] [--ip ADDR/PREFIX[,GW]] [--hostname NAME]
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* built outside meson too (guest/build-*.sh) */
#endif
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#include "agent/identity.h"
#include "agent/protocol.h"
#include "agent/session.h"

/* vsock may come up after us (a module still loading): retry quietly, and
 * say so once. */
static int listen_vsock(unsigned port)
{
    bool told = false;
    for (;;) {
        int fd = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
        struct sockaddr_vm a = {
            .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY, .svm_port = port};
        if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof(a)) == 0 && listen(fd, 16) == 0)
            return fd;
        if (!told) {
            fprintf(stderr, "vessel-agent: vsock port %u: %s (retrying)\n", port, strerror(errno));
            told = true;
        }
        if (fd >= 0)
            close(fd);
        sleep(1);
    }
}

int main(int argc, char **argv)
{
    unsigned long port = AGENT_VSOCK_PORT;
    if (argc > 1 && !strcmp(argv[1], "--set-identity"))
        return agent_set_identity(argc - 2, argv + 2);
    for (int i = 1; i < argc; i++) {
        char *end;
        if (!strcmp(argv[i], "--port") && i + 1 < argc) {
            port = strtoul(argv[++i], &end, 10);
            if (*end || port == 0 || port > 0xfffffffeul) {
                fprintf(stderr, "vessel-agent: bad port '%s'\n", argv[i]);
                return 2;
            }
        } else {
            fprintf(stderr, "usage: vessel-agent [--port N]   (default %u)\n", AGENT_VSOCK_PORT);
            return 2;
        }
    }
    /* Sessions are reaped by the kernel, and so are the orphans a command
     * leaves behind (they come to us, not to a PID 1 that may not reap). */
    signal(SIGCHLD, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    int lfd = listen_vsock((unsigned)port);
    for (;;) {
        int conn = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
        if (conn < 0) {
            if (errno != EINTR && errno != ECONNABORTED)
                sleep(1); /* out of memory or fds: do not spin */
            continue;
        }
        pid_t pid = fork();
        if (pid == 0) {
            close(lfd);
            signal(SIGCHLD, SIG_DFL);
            _exit(agent_serve(conn) == 0 ? 0 : 1);
        }
        close(conn);
    }
}
