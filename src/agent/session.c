/* One command per connection, in the guest. The connection carries frames
 * both ways (agent/protocol.h); this side checks every host frame before
 * acting on it and never lets the host make it buffer more than one frame
 * of stdin: while the command has not taken the last STDIN frame, the
 * connection is not read. Output is read only while a whole frame fits in
 * the outgoing buffer, so a host that stops reading stalls the command's
 * output, never the agent's memory. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* built outside meson too (guest/build-*.sh) */
#endif
#include "agent/session.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <grp.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "agent/protocol.h"

#define OUT_CAP (2 * (AGENT_HDR_LEN + AGENT_DATA_MAX))
#define REQUEST_TIMEOUT_MS 30000
#define ERROR_FLUSH_MS 2000
#define DRAIN_TTY_MS 200

extern char **environ;

static const char *const default_env[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", NULL};
static const char *const default_env_tty[] = {
    "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=xterm",
    NULL};

struct session {
    int conn;
    struct agent_reader rd;
    uint8_t *out; /* frames waiting to be sent */
    size_t out_len;
    bool tty;
    int master;    /* tty: the pty master (stdin and output) */
    int in_w;      /* the command's stdin (pipe, or the master) */
    int src[2];    /* stdout, stderr (tty: the master, -1) */
    uint8_t *pend; /* stdin bytes the command has not taken yet */
    size_t pend_off, pend_len;
    bool eof_asked;  /* STDIN_EOF arrived */
    bool stdin_gone; /* stdin closed (after STDIN_EOF, or the command closed it) */
    pid_t pid;
    int pidfd;
    bool exited;
    int status;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void set_nonblock(int fd)
{
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

static bool out_room(struct session *s)
{
    return OUT_CAP - s->out_len >= AGENT_HDR_LEN + AGENT_DATA_MAX;
}

static void queue(struct session *s, uint8_t type, const void *data, uint32_t len)
{
    /* callers check room; frames are never larger than a data frame */
    agent_frame_header(s->out + s->out_len, type, len);
    if (len)
        memcpy(s->out + s->out_len + AGENT_HDR_LEN, data, len);
    s->out_len += AGENT_HDR_LEN + len;
}

/* Send what is queued; with a deadline (ms, -1 = none) wait for the host to
 * take all of it. -1 when the host is gone or too slow. */
static int flush(struct session *s, int wait_ms)
{
    long long end = wait_ms >= 0 ? now_ms() + wait_ms : 0;
    size_t off = 0;
    int rc = 0;
    while (off < s->out_len) {
        ssize_t n = send(s->conn, s->out + off, s->out_len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno != EAGAIN) {
            rc = -1;
            break;
        }
        if (wait_ms == 0)
            break;
        int left = wait_ms < 0 ? -1 : (int)(end - now_ms());
        if (wait_ms > 0 && left <= 0) {
            rc = -1;
            break;
        }
        struct pollfd p = {.fd = s->conn, .events = POLLOUT};
        if (poll(&p, 1, left) < 0 && errno != EINTR) {
            rc = -1;
            break;
        }
    }
    memmove(s->out, s->out + off, s->out_len - off);
    s->out_len -= off;
    return rc;
}

/* Tell the host why (best effort) and give up. */
static int protocol_error(struct session *s, const char *why)
{
    char msg[AGENT_ERROR_MAX];
    int n = snprintf(msg, sizeof(msg), "vessel-agent: %s", why);
    s->out_len = 0;
    queue(s, AGENT_ERROR, msg, (uint32_t)(n < (int)sizeof(msg) ? n : (int)sizeof(msg) - 1));
    flush(s, ERROR_FLUSH_MS);
    return -1;
}

static int exit_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

static void reap(struct session *s, bool block)
{
    if (s->exited)
        return;
    int st;
    pid_t r;
    do
        r = waitpid(s->pid, &st, block ? 0 : WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == s->pid) {
        s->exited = true;
        s->status = exit_code(st);
    } else if (r < 0) {
        s->exited = true; /* not ours to wait for any more */
        s->status = 255;
    }
}

static void kill_command(struct session *s)
{
    if (s->exited)
        return;
    if (kill(-s->pid, SIGKILL) < 0)
        kill(s->pid, SIGKILL);
    reap(s, true);
}

static void close_stdin(struct session *s)
{
    if (s->stdin_gone)
        return;
    s->stdin_gone = true;
    if (s->tty) {
        /* a terminal has no end of file: send its EOF character, as a
         * person typing ^D would */
        struct termios t;
        char eof = tcgetattr(s->master, &t) == 0 ? (char)t.c_cc[VEOF] : 4;
        if (write(s->master, &eof, 1) < 0) {
            /* nobody reads the terminal any more */
        }
        s->in_w = -1;
    } else {
        close_fd(&s->in_w);
    }
}

/* Move pending stdin into the command. */
static void write_stdin(struct session *s)
{
    while (s->pend_len) {
        ssize_t n = write(s->in_w, s->pend + s->pend_off, s->pend_len);
        if (n > 0) {
            s->pend_off += (size_t)n;
            s->pend_len -= (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN)
            return;
        /* the command closed its stdin: what it did not take is dropped */
        s->pend_len = 0;
        close_stdin(s);
    }
    if (s->eof_asked)
        close_stdin(s);
}

/* Act on one checked host frame: 0, or -1 for a protocol violation. */
static int handle(struct session *s, const struct agent_frame *f)
{
    const char *why = NULL;
    switch (f->type) {
    case AGENT_STDIN:
        if (s->eof_asked)
            return protocol_error(s, "stdin after the end of stdin");
        if (s->stdin_gone)
            return 0;
        memcpy(s->pend, f->payload, f->len);
        s->pend_off = 0;
        s->pend_len = f->len;
        write_stdin(s);
        return 0;
    case AGENT_STDIN_EOF:
        if (s->eof_asked)
            return protocol_error(s, "the end of stdin twice");
        s->eof_asked = true;
        if (!s->pend_len)
            close_stdin(s);
        return 0;
    case AGENT_RESIZE: {
        uint16_t rows, cols;
        if (agent_resize_decode(f, &rows, &cols, &why) < 0)
            return protocol_error(s, why);
        struct winsize ws = {.ws_row = rows, .ws_col = cols};
        if (s->tty)
            ioctl(s->master, TIOCSWINSZ, &ws);
        return 0;
    }
    case AGENT_SIGNAL: {
        int sig;
        if (agent_signal_decode(f, &sig, &why) < 0)
            return protocol_error(s, why);
        if (!s->exited && kill(-s->pid, sig) < 0)
            kill(s->pid, sig);
        return 0;
    }
    default: /* AGENT_REQUEST: a connection runs one command */
        return protocol_error(s, "a second request on one connection");
    }
}

/* Act on the whole frames that have arrived, until one leaves stdin
 * pending. -1 on a protocol violation. */
static int take_frames(struct session *s)
{
    while (!s->pend_len) {
        struct agent_frame f;
        const char *why = NULL;
        int r = agent_reader_next(&s->rd, AGENT_FROM_HOST, &f, &why);
        if (r < 0)
            return protocol_error(s, why);
        if (r == 0)
            break;
        if (handle(s, &f) < 0)
            return -1;
    }
    return 0;
}

/* Read the connection. 1 when the host closed it, 0 otherwise. */
static int read_conn(struct session *s)
{
    size_t room;
    uint8_t *p = agent_reader_space(&s->rd, &room);
    if (!room)
        return 0;
    ssize_t n = recv(s->conn, p, room, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
        return 1;
    if (n > 0)
        agent_reader_commit(&s->rd, (size_t)n);
    return 0;
}

/* Read output source i into a frame; false at its end. */
static bool read_source(struct session *s, int i)
{
    uint8_t *p = s->out + s->out_len + AGENT_HDR_LEN;
    ssize_t n;
    do
        n = read(s->src[i], p, AGENT_DATA_MAX);
    while (n < 0 && errno == EINTR);
    if (n > 0) {
        agent_frame_header(s->out + s->out_len, i ? AGENT_STDERR : AGENT_STDOUT, (uint32_t)n);
        s->out_len += AGENT_HDR_LEN + (size_t)n;
        return true;
    }
    if (n < 0 && errno == EAGAIN)
        return true;
    /* end of file, or EIO from a pty master whose terminal is closed */
    if (s->tty)
        s->src[i] = -1; /* the master stays open until the end */
    else
        close_fd(&s->src[i]);
    return false;
}

/* The command has exited: send what it wrote before it did. A pipe holds
 * all of it already; a pty's output may still be on its way through the
 * tty layer, so wait a little for it (a process left holding the terminal
 * would otherwise keep us here). */
static int drain(struct session *s)
{
    for (int i = 0; i < 2; i++) {
        while (s->src[i] >= 0) {
            if (!out_room(s) && flush(s, -1) < 0)
                return -1;
            if (s->tty) {
                struct pollfd p = {.fd = s->src[i], .events = POLLIN};
                if (poll(&p, 1, DRAIN_TTY_MS) <= 0)
                    break;
            }
            size_t before = s->out_len;
            if (!read_source(s, i) || s->out_len == before)
                break; /* end, or nothing more right now */
        }
    }
    return 0;
}

static void child_exec(struct agent_request *r, int fds[3], const char *slave)
{
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    signal(SIGPIPE, SIG_DFL);
    signal(SIGCHLD, SIG_DFL);
    setsid();
    if (slave) {
        int t = open(slave, O_RDWR);
        if (t < 0) {
            dprintf(fds[2], "vessel-agent: %s: %s\n", slave, strerror(errno));
            _exit(126);
        }
        ioctl(t, TIOCSCTTY, 0);
        fds[0] = fds[1] = fds[2] = t;
    }
    for (int i = 0; i < 3; i++)
        if (dup2(fds[i], i) < 0)
            _exit(126);
    if (slave && fds[0] > 2)
        close(fds[0]);
    /* the host's user and working directory (AGENT_FLAG_USER, _CWD): the
     * user first, so the directory is entered with its rights */
    if (r->flags & AGENT_FLAG_USER) {
        gid_t g = (gid_t)r->gid;
        if (setgroups(1, &g) < 0 || setgid(g) < 0 || setuid((uid_t)r->uid) < 0) {
            dprintf(2, "vessel-agent: user %u:%u: %s\n", r->uid, r->gid, strerror(errno));
            _exit(126);
        }
    }
    if (chdir(r->cwd ? r->cwd : "/") < 0) {
        dprintf(2, "vessel-agent: cd %s: %s\n", r->cwd ? r->cwd : "/", strerror(errno));
        _exit(126);
    }
    environ = r->envp ? r->envp : (char **)(slave ? default_env_tty : default_env);
    execvp(r->argv[0], r->argv);
    int e = errno;
    dprintf(2, "vessel-agent: %s: %s\n", r->argv[0], strerror(e));
    _exit(e == ENOENT ? 127 : 126);
}

/* Pipes or a pty, then the command. 0, or -1 with *why. */
static int start(struct session *s, struct agent_request *r, const char **why)
{
    int in[2] = {-1, -1}, out[2] = {-1, -1}, err[2] = {-1, -1};
    char slave[64];
    s->tty = r->flags & AGENT_FLAG_TTY;
    if (s->tty) {
        s->master = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
        if (s->master < 0 || grantpt(s->master) < 0 || unlockpt(s->master) < 0 ||
            ptsname_r(s->master, slave, sizeof(slave)) != 0) {
            *why = "no pseudo-terminal in the guest (is devpts mounted on /dev/pts?)";
            return -1;
        }
        struct winsize ws = {.ws_row = r->rows ? r->rows : 24, .ws_col = r->cols ? r->cols : 80};
        ioctl(s->master, TIOCSWINSZ, &ws);
    } else if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
        for (int i = 0; i < 2; i++) {
            close_fd(&in[i]);
            close_fd(&out[i]);
        }
        *why = "cannot make pipes for the command";
        return -1;
    }
    s->pid = fork();
    if (s->pid == 0) {
        int fds[3] = {in[0], out[1], err[1]};
        child_exec(r, fds, s->tty ? slave : NULL);
    }
    close_fd(&in[0]);
    close_fd(&out[1]);
    close_fd(&err[1]);
    if (s->pid < 0) {
        close_fd(&in[1]);
        close_fd(&out[0]);
        close_fd(&err[0]);
        *why = "cannot fork the command";
        return -1;
    }
    if (s->tty) {
        s->in_w = s->src[0] = s->master;
        s->src[1] = -1;
    } else {
        s->in_w = in[1];
        s->src[0] = out[0];
        s->src[1] = err[0];
    }
    for (int i = 0; i < 2; i++)
        if (s->src[i] >= 0)
            set_nonblock(s->src[i]);
    set_nonblock(s->in_w);
    s->pidfd = (int)syscall(SYS_pidfd_open, s->pid, 0);
    return 0;
}

/* Wait for the REQUEST (the first frame). */
static int read_request(struct session *s, struct agent_request *r)
{
    long long end = now_ms() + REQUEST_TIMEOUT_MS;
    for (;;) {
        struct agent_frame f;
        const char *why = NULL;
        int got = agent_reader_next(&s->rd, AGENT_FROM_HOST, &f, &why);
        if (got < 0)
            return protocol_error(s, why);
        if (got > 0) {
            if (f.type != AGENT_REQUEST)
                return protocol_error(s, "the first frame is not a request");
            if (agent_request_decode(f.payload, f.len, r, &why) < 0)
                return protocol_error(s, why);
            return 0;
        }
        int left = (int)(end - now_ms());
        struct pollfd p = {.fd = s->conn, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, left) == 0)
            return protocol_error(s, "no request within 30 seconds");
        size_t room;
        uint8_t *buf = agent_reader_space(&s->rd, &room);
        ssize_t n = recv(s->conn, buf, room, MSG_DONTWAIT);
        if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
            return -1;
        if (n > 0)
            agent_reader_commit(&s->rd, (size_t)n);
    }
}

static int relay(struct session *s)
{
    while (!s->exited) {
        /* frames that came with the request, or after stdin was pending */
        if (take_frames(s) < 0)
            return -1;
        struct pollfd p[5];
        int idx[5], n = 0;
        short ce = (short)((s->pend_len ? 0 : POLLIN) | (s->out_len ? POLLOUT : 0));
        p[n] = (struct pollfd){.fd = s->conn, .events = ce};
        idx[n++] = 0;
        if (s->pend_len && s->in_w >= 0) {
            p[n] = (struct pollfd){.fd = s->in_w, .events = POLLOUT};
            idx[n++] = 1;
        }
        for (int i = 0; i < 2; i++)
            if (s->src[i] >= 0 && out_room(s)) {
                p[n] = (struct pollfd){.fd = s->src[i], .events = POLLIN};
                idx[n++] = 2 + i;
            }
        if (s->pidfd >= 0) {
            p[n] = (struct pollfd){.fd = s->pidfd, .events = POLLIN};
            idx[n++] = 4;
        }
        if (poll(p, (nfds_t)n, s->pidfd >= 0 ? -1 : 100) < 0 && errno != EINTR)
            return -1;
        for (int k = 0; k < n; k++) {
            if (!p[k].revents)
                continue;
            switch (idx[k]) {
            case 0:
                if ((p[k].revents & POLLOUT) && flush(s, 0) < 0)
                    return -1;
                /* a hung-up host reads no exit status: stop the command */
                if (p[k].revents & (POLLHUP | POLLERR))
                    return -1;
                if ((p[k].revents & POLLIN) && read_conn(s))
                    return -1; /* the host is gone */
                break;
            case 1:
                write_stdin(s);
                break;
            case 2:
            case 3:
                if (out_room(s))
                    read_source(s, idx[k] - 2);
                break;
            case 4:
                reap(s, false);
                break;
            }
        }
        if (s->pidfd < 0)
            reap(s, false);
        if (s->out_len && flush(s, 0) < 0)
            return -1;
    }
    if (drain(s) < 0)
        return -1;
    uint8_t st[4];
    agent_put_u32(st, (uint32_t)s->status);
    if (!out_room(s) && flush(s, -1) < 0)
        return -1;
    queue(s, AGENT_EXIT, st, 4);
    return flush(s, -1);
}

int agent_serve(int conn)
{
    struct session s = {.conn = conn, .master = -1, .in_w = -1, .src = {-1, -1}, .pidfd = -1};
    struct agent_request r = {0};
    int rc = -1;
    s.out = malloc(OUT_CAP);
    s.pend = malloc(AGENT_DATA_MAX);
    if (!s.out || !s.pend || agent_reader_init(&s.rd, AGENT_REQUEST_MAX) < 0)
        goto out;
    if (read_request(&s, &r) < 0)
        goto out;
    const char *why = NULL;
    if (start(&s, &r, &why) < 0) {
        protocol_error(&s, why);
        goto out;
    }
    agent_request_free(&r);
    set_nonblock(conn);
    rc = relay(&s);
    if (rc < 0)
        kill_command(&s);
out:
    agent_request_free(&r);
    if (s.tty)
        close_fd(&s.master);
    else {
        close_fd(&s.in_w);
        close_fd(&s.src[0]);
        close_fd(&s.src[1]);
    }
    close_fd(&s.pidfd);
    agent_reader_free(&s.rd);
    free(s.out);
    free(s.pend);
    close(conn);
    return rc;
}
