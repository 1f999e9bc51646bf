/* The host side of the guest agent: connect through the VM's vsock bridge
 * (virtio/vsock.c: "CONNECT <port>\n" on the unix socket, "OK <n>\n" back),
 * send the REQUEST and relay frames until the command's exit status.
 *
 * The guest is hostile: its frames are checked by the same code the agent
 * uses (agent/protocol.c) with the guest as sender, so it can only send
 * the four frame types it may, each within its limit, and the reader never
 * holds more than one output frame. Its output goes to the caller's fds as
 * bytes and nowhere else; its error text is printed with control
 * characters replaced. */
#include "daemon/agent_client.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>
#include <fcntl.h>

#include "agent/protocol.h"
#include "util/io.h"
#include "util/unix_socket.h"

#define LINE_MAX_LEN 32
#define RETRY_MS 100
#define OUT_CAP (2 * (AGENT_HDR_LEN + AGENT_DATA_MAX))

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void sleep_ms(long long ms)
{
    struct timespec ts = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

/* "CONNECT <port>\n" and the bridge's answer: 0 connected, 1 refused (the
 * bridge closed: nothing listens on the port in the guest yet), -1 with err
 * (timed out, or an answer that is not "OK <n>"). */
static int handshake(int fd, uint32_t port, long long end, vs_err *err)
{
    char line[LINE_MAX_LEN];
    int n = snprintf(line, sizeof(line), "CONNECT %u\n", port);
    if (vs_send_full(fd, line, (size_t)n, MSG_NOSIGNAL) < 0)
        return 1;
    size_t len = 0;
    for (;;) {
        int left = (int)(end - now_ms());
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int r = left > 0 ? poll(&p, 1, left) : 0;
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return vs_error(err, ETIMEDOUT,
                            "the guest did not answer on vsock port %u (no vsock driver in "
                            "the guest?)",
                            port);
        char c;
        /* one byte at a time: what follows the line is the agent's */
        ssize_t got = read(fd, &c, 1);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return 1;
        if (c == '\n')
            break;
        if (len + 1 >= sizeof(line))
            return vs_error(err, EPROTO, "the vsock bridge answered with an over-long line");
        line[len++] = c;
    }
    line[len] = 0;
    unsigned host_port;
    char extra;
    if (sscanf(line, "OK %u%c", &host_port, &extra) != 1)
        return vs_error(err, EPROTO, "the vsock bridge answered something other than OK");
    return 0;
}

int agent_client_connect(const char *uds, uint32_t port, int timeout_ms, vs_err *err)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        vs_err e = {0};
        const char *why;
        int fd = vs_unix_connect(uds, &e);
        if (fd >= 0) {
            int r = handshake(fd, port, end, err);
            if (r == 0)
                return fd;
            close(fd);
            if (r < 0)
                return -1;
            why = "nothing listens on it in the guest (is vessel-agent running there?)";
        } else if (e.code == ENOENT || e.code == ECONNREFUSED) {
            why = "the VM's vsock bridge is not listening (is the VM running with --vsock?)";
        } else {
            return vs_error(err, e.code, "%s", e.msg);
        }
        long long left = end - now_ms();
        if (left <= 0)
            return vs_error(err, ETIMEDOUT, "guest agent on vsock port %u: %s", port, why);
        sleep_ms(left < RETRY_MS ? left : RETRY_MS);
    }
}

struct client {
    int conn, in, out, err_fd;
    bool tty, in_eof, out_broken;
    struct agent_reader rd;
    uint8_t *obuf; /* frames for the guest */
    size_t olen;
    struct winsize ws;
};

static bool room(struct client *c)
{
    return OUT_CAP - c->olen >= AGENT_HDR_LEN + AGENT_DATA_MAX;
}

static void queue(struct client *c, uint8_t type, const void *data, uint32_t len)
{
    agent_frame_header(c->obuf + c->olen, type, len);
    if (len)
        memcpy(c->obuf + c->olen + AGENT_HDR_LEN, data, len);
    c->olen += AGENT_HDR_LEN + len;
}

static int flush(struct client *c, vs_err *err)
{
    size_t off = 0;
    while (off < c->olen) {
        ssize_t n = send(c->conn, c->obuf + off, c->olen - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            break;
        return vs_error_errno(err, "guest agent: connection lost");
    }
    memmove(c->obuf, c->obuf + off, c->olen - off);
    c->olen -= off;
    return 0;
}

/* All of buf to fd, whose flags are the caller's (it may be non-blocking). */
static int write_out(int fd, const uint8_t *buf, size_t n)
{
    while (n) {
        ssize_t w = write(fd, buf, n);
        if (w > 0) {
            buf += w;
            n -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            poll(&p, 1, -1);
            continue;
        }
        return -1;
    }
    return 0;
}

static void queue_u32(struct client *c, uint8_t type, uint32_t v)
{
    uint8_t p[4];
    agent_put_u32(p, v);
    queue(c, type, p, 4);
}

/* The terminal changed size: tell the guest (checked when poll wakes). */
static void check_resize(struct client *c)
{
    struct winsize ws;
    if (!c->tty || ioctl(c->out, TIOCGWINSZ, &ws) < 0 || !room(c))
        return;
    if (ws.ws_row == c->ws.ws_row && ws.ws_col == c->ws.ws_col)
        return;
    c->ws = ws;
    uint8_t p[4] = {(uint8_t)ws.ws_row, (uint8_t)(ws.ws_row >> 8), (uint8_t)ws.ws_col,
                    (uint8_t)(ws.ws_col >> 8)};
    queue(c, AGENT_RESIZE, p, 4);
}

/* One checked guest frame: 1 with *status at EXIT, 0 to go on, -1. */
static int handle(struct client *c, const struct agent_frame *f, int *status, vs_err *err)
{
    const char *why = NULL;
    switch (f->type) {
    case AGENT_STDOUT:
        if (!c->out_broken && write_out(c->out, f->payload, f->len) < 0) {
            /* the reader went away: the command gets SIGPIPE as it would
             * writing to a closed pipe at home */
            c->out_broken = true;
            if (room(c))
                queue_u32(c, AGENT_SIGNAL, SIGPIPE);
        }
        return 0;
    case AGENT_STDERR:
        write_out(c->err_fd, f->payload, f->len);
        return 0;
    case AGENT_EXIT:
        if (agent_exit_decode(f, status, &why) < 0)
            return vs_error(err, EPROTO, "guest agent: %s", why);
        return 1;
    default: { /* AGENT_ERROR */
        char msg[AGENT_ERROR_MAX + 1];
        for (uint32_t i = 0; i < f->len; i++)
            msg[i] = f->payload[i] >= 0x20 && f->payload[i] < 0x7f ? (char)f->payload[i] : '?';
        msg[f->len] = 0;
        return vs_error(err, EPROTO, "guest agent: %s", msg);
    }
    }
}

static int relay(struct client *c, int *status, vs_err *err)
{
    for (;;) {
        struct pollfd p[2];
        int n = 0;
        p[n++] =
            (struct pollfd){.fd = c->conn, .events = (short)(POLLIN | (c->olen ? POLLOUT : 0))};
        bool want_in = !c->in_eof && room(c);
        if (want_in)
            p[n++] = (struct pollfd){.fd = c->in, .events = POLLIN};
        if (poll(p, (nfds_t)n, c->tty ? 500 : -1) < 0 && errno != EINTR)
            return vs_error_errno(err, "poll");
        if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
            size_t space;
            uint8_t *buf = agent_reader_space(&c->rd, &space);
            ssize_t got = recv(c->conn, buf, space, MSG_DONTWAIT);
            if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR))
                return vs_error(err, ECONNRESET,
                                "guest agent: the connection ended before the command's exit "
                                "status");
            if (got > 0)
                agent_reader_commit(&c->rd, (size_t)got);
            for (;;) {
                struct agent_frame f;
                const char *why = NULL;
                int r = agent_reader_next(&c->rd, AGENT_FROM_GUEST, &f, &why);
                if (r < 0)
                    return vs_error(err, EPROTO, "guest agent broke the protocol: %s", why);
                if (r == 0)
                    break;
                r = handle(c, &f, status, err);
                if (r)
                    return r < 0 ? -1 : 0;
            }
        }
        if (want_in && (p[1].revents & (POLLIN | POLLHUP | POLLERR))) {
            uint8_t *buf = c->obuf + c->olen + AGENT_HDR_LEN;
            ssize_t got = read(c->in, buf, AGENT_DATA_MAX);
            if (got > 0) {
                agent_frame_header(c->obuf + c->olen, AGENT_STDIN, (uint32_t)got);
                c->olen += AGENT_HDR_LEN + (size_t)got;
            } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
                queue(c, AGENT_STDIN_EOF, NULL, 0);
                c->in_eof = true;
            }
        }
        check_resize(c);
        if (c->olen && flush(c, err) < 0)
            return -1;
    }
}

int agent_client_session(int conn, char *const argv[], char *const envp[], bool tty, int in,
                         int out, int err_fd, vs_err *err)
{
    struct agent_exec_opts x = {.envp = envp};
    return agent_client_session_ex(conn, argv, &x, tty, in, out, err_fd, err);
}

/* The agent's default environment with the caller's entries on top (a name
 * given replaces the default's): the guest gets one complete environment,
 * which any agent version takes. NULL when there is nothing to add. */
static char **merged_env(char *const add[], bool tty)
{
    static const char *const defaults[] = {
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root",
        "TERM=xterm"};
    size_t n_add = 0;
    while (add && add[n_add])
        n_add++;
    if (!n_add)
        return NULL;
    char **env = calloc(n_add + 4, sizeof(char *));
    if (!env)
        return NULL;
    size_t k = 0;
    for (size_t i = 0; i < (tty ? 3u : 2u); i++) {
        size_t kl = strcspn(defaults[i], "=");
        bool replaced = false;
        for (size_t j = 0; j < n_add && !replaced; j++)
            replaced = !strncmp(add[j], defaults[i], kl) && add[j][kl] == '=';
        if (!replaced)
            env[k++] = (char *)defaults[i];
    }
    for (size_t j = 0; j < n_add; j++)
        env[k++] = add[j];
    return env;
}

int agent_client_session_ex(int conn, char *const argv[], const struct agent_exec_opts *x, bool tty,
                            int in, int out, int err_fd, vs_err *err)
{
    struct client c = {.conn = conn, .in = in, .out = out, .err_fd = err_fd, .tty = tty};
    int status = -1;
    if (tty)
        ioctl(out, TIOCGWINSZ, &c.ws);
    const char *why = NULL;
    size_t len;
    char **env = x->add_env ? merged_env(x->envp, tty) : NULL;
    uint32_t flags = (tty ? AGENT_FLAG_TTY : 0) | (x->has_user ? AGENT_FLAG_USER : 0);
    uint8_t *req = agent_request_build_ex(flags, c.ws.ws_row, c.ws.ws_col, argv,
                                          env          ? env
                                          : x->add_env ? NULL
                                                       : x->envp,
                                          x->cwd, x->uid, x->gid, &len, &why);
    free(env);
    if (!req) {
        vs_error(err, EINVAL, "exec: %s", why);
        goto out;
    }
    int rc = vs_send_full(conn, req, len, MSG_NOSIGNAL);
    free(req);
    if (rc < 0) {
        vs_error_errno(err, "guest agent: sending the request");
        goto out;
    }
    c.obuf = malloc(OUT_CAP);
    if (!c.obuf || agent_reader_init(&c.rd, AGENT_DATA_MAX) < 0) {
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    int fl = fcntl(conn, F_GETFL);
    fcntl(conn, F_SETFL, fl | O_NONBLOCK);
    if (relay(&c, &status, err) < 0)
        status = -1;
out:
    agent_reader_free(&c.rd);
    free(c.obuf);
    close(conn);
    return status;
}

int agent_client_run(const char *uds, char *const argv[], bool tty, int in, int out, int err_fd,
                     vs_err *err)
{
    struct agent_exec_opts x = {0};
    return agent_client_run_ex(uds, argv, &x, tty, in, out, err_fd, err);
}

int agent_set_cpus(const char *uds, unsigned n, int out_fd, vs_err *err)
{
    char arg[16];
    snprintf(arg, sizeof(arg), "%u", n);
    char *argv[] = {"set-cpus", arg, NULL};
    int null = open("/dev/null", O_RDWR | O_CLOEXEC);
    int out = out_fd >= 0 ? out_fd : null;
    int st = agent_client_run(uds, argv, false, null, out, out, err);
    if (null >= 0)
        close(null);
    return st;
}

int agent_client_run_ex(const char *uds, char *const argv[], const struct agent_exec_opts *x,
                        bool tty, int in, int out, int err_fd, vs_err *err)
{
    int conn = agent_client_connect(uds, AGENT_VSOCK_PORT, AGENT_CONNECT_TIMEOUT_MS, err);
    if (conn < 0)
        return -1;
    return agent_client_session_ex(conn, argv, x, tty, in, out, err_fd, err);
}
