#include "hw/serial_console.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/thread_role.h"
#include "util/unix_socket.h"

#define ESCAPE_CHAR 0x01 /* Ctrl-A */
#define INPUT_CHUNK 256
#define OUT_BUF 4096
#define OUT_DELAY_MS 3

struct serial_console {
    int out_fd;   /* -1: discard */
    bool own_out; /* out_fd was opened by us */
    int in_fd;    /* -1: no input */
    int wake_fd;  /* eventfd: rx room or stop */
    /* socket mode: a listening unix socket; one attached client at a time
     * (a new one takes over) gets the output and gives the input */
    int listen_fd;
    int client_fd; /* changed under out_lock */
    char *sock_path;
    bool tty; /* in_fd is a terminal we put in raw mode */
    struct termios saved;
    pthread_t thread;
    bool thread_started;
    volatile bool stopping;
    serial_console_sink_fn sink;
    serial_console_quit_fn quit;
    void *opaque;
    bool escape; /* saw Ctrl-A, waiting for the command key */
    /* Output is buffered: a UART sends one byte per guest exit, and a
     * write() per byte is what a nested guest's console output costs most.
     * A line, a full buffer or OUT_DELAY_MS of quiet flushes it. */
    pthread_mutex_t out_lock;
    pthread_cond_t out_cond;
    uint8_t out_buf[OUT_BUF];
    size_t out_len;
    pthread_t out_thread;
    bool out_thread_started, out_stopping;
};

/* atexit() backstop: a terminal left raw is unusable, whatever path ends
 * the process. */
static struct termios g_saved_termios;
static int g_raw_fd = -1;

static void *output_thread(void *arg);

/* The console's threads take no signals: the process's owner (the VM's
 * main thread) decides what SIGTERM or SIGINT mean. */
static int start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int e = pthread_create(t, NULL, fn, arg);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return e;
}

static void restore_terminal_atexit(void)
{
    if (g_raw_fd >= 0)
        tcsetattr(g_raw_fd, TCSANOW, &g_saved_termios);
}

int serial_console_open(const char *spec, struct serial_console **out, vs_err *err)
{
    struct serial_console *c = calloc(1, sizeof(*c));
    if (!c)
        return vs_error(err, ENOMEM, "out of memory");
    c->out_fd = c->in_fd = c->wake_fd = c->listen_fd = c->client_fd = -1;
    /* "[file:PATH,]socket:SOCK": output to the file and the attached client */
    cleanup_free char *file_spec = NULL;
    const char *sock = spec ? strstr(spec, "socket:") : NULL;
    if (sock && (sock == spec || (sock > spec && sock[-1] == ','))) {
        if (!sock[7]) {
            free(c);
            return vs_error(err, EINVAL, "--console %s: socket: needs a path", spec);
        }
        c->listen_fd = vs_unix_listen(sock + 7, 1, err);
        if (c->listen_fd < 0) {
            free(c);
            return vs_error_prefix(err, "console socket: ");
        }
        c->sock_path = strdup(sock + 7);
        if (sock == spec) {
            spec = "none";
        } else {
            file_spec = strndup(spec, (size_t)(sock - 1 - spec));
            spec = file_spec;
        }
    }
    if (!spec || !strcmp(spec, "stdio")) {
        c->out_fd = STDOUT_FILENO;
        c->in_fd = STDIN_FILENO;
    } else if (!strcmp(spec, "none")) {
        /* nothing */
    } else if (!strncmp(spec, "file:", 5) && spec[5]) {
        c->out_fd = open(spec + 5, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (c->out_fd < 0) {
            vs_error_errno(err, "console file %s", spec + 5);
            if (c->listen_fd >= 0)
                close(c->listen_fd);
            free(c->sock_path);
            free(c);
            return -1;
        }
        c->own_out = true;
    } else {
        if (c->listen_fd >= 0)
            close(c->listen_fd);
        free(c->sock_path);
        free(c);
        return vs_error(err, EINVAL,
                        "--console %s: expected stdio, none, file:PATH or [file:PATH,]socket:PATH",
                        spec);
    }
    pthread_mutex_init(&c->out_lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&c->out_cond, &ca);
    pthread_condattr_destroy(&ca);
    if ((c->out_fd >= 0 || c->listen_fd >= 0) &&
        start_thread(&c->out_thread, output_thread, c) == 0)
        c->out_thread_started = true;
    *out = c;
    return 0;
}

/* Called with out_lock held: the attached client gets the output if it keeps
 * up; one that stalls for a second is dropped (the guest never waits on it). */
static void write_client(struct serial_console *c, const uint8_t *buf, size_t len)
{
    while (c->client_fd >= 0 && len) {
        ssize_t n = send(c->client_fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c->client_fd, .events = POLLOUT};
            if (poll(&p, 1, 1000) == 1)
                continue;
        }
        if (n <= 0) {
            /* the input thread closes it (this may be a vCPU thread, whose
             * seccomp list has no shutdown or close of a socket) */
            c->client_fd = -1;
            serial_console_rx_ready(c);
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

static void write_out(struct serial_console *c, const uint8_t *buf, size_t len)
{
    write_client(c, buf, len);
    if (c->out_fd < 0)
        return;
    while (len) {
        ssize_t n = write(c->out_fd, buf, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            struct pollfd p = {.fd = c->out_fd, .events = POLLOUT};
            poll(&p, 1, 1000);
            continue;
        }
        if (n <= 0) {
            /* The reader is gone (EPIPE) or the disk is full: the guest keeps
             * running, its output is dropped from now on. */
            if (c->own_out)
                close(c->out_fd);
            c->out_fd = -1;
            return;
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Called with out_lock held. */
static void flush_locked(struct serial_console *c)
{
    if (c->out_len) {
        write_out(c, c->out_buf, c->out_len);
        c->out_len = 0;
    }
}

void serial_console_flush(struct serial_console *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&c->out_lock);
    flush_locked(c);
    pthread_mutex_unlock(&c->out_lock);
}

static void *output_thread(void *arg)
{
    struct serial_console *c = arg;
    vs_thread_role_enter(VS_THREAD_IO, "console-out");
    pthread_mutex_lock(&c->out_lock);
    while (!c->out_stopping) {
        if (!c->out_len) {
            pthread_cond_wait(&c->out_cond, &c->out_lock);
            continue;
        }
        /* Give the rest of a line a moment to arrive, then flush. */
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        ts.tv_nsec += OUT_DELAY_MS * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        while (c->out_len && !c->out_stopping &&
               pthread_cond_timedwait(&c->out_cond, &c->out_lock, &ts) == 0)
            ;
        flush_locked(c);
    }
    flush_locked(c);
    pthread_mutex_unlock(&c->out_lock);
    return NULL;
}

void serial_console_write(struct serial_console *c, const uint8_t *buf, size_t len)
{
    if (!c || (c->out_fd < 0 && c->listen_fd < 0))
        return;
    pthread_mutex_lock(&c->out_lock);
    if (!c->out_thread_started) {
        /* No thread (it could not be created): write through. */
        flush_locked(c);
        write_out(c, buf, len);
        pthread_mutex_unlock(&c->out_lock);
        return;
    }
    bool line = false, was_empty = c->out_len == 0;
    while (len) {
        size_t n = MIN(len, OUT_BUF - c->out_len);
        memcpy(c->out_buf + c->out_len, buf, n);
        line = line || memchr(buf, '\n', n);
        c->out_len += n;
        buf += n;
        len -= n;
        if (c->out_len == OUT_BUF)
            flush_locked(c);
    }
    if (line)
        flush_locked(c);
    else if (c->out_len && was_empty)
        /* once per batch, not per byte: the thread waits out OUT_DELAY_MS by
         * itself, and a wake-up per byte costs a syscall and a context switch
         * per console byte (a nested exit each in the lab) */
        pthread_cond_signal(&c->out_cond);
    pthread_mutex_unlock(&c->out_lock);
}

void serial_console_rx_ready(struct serial_console *c)
{
    if (c && c->wake_fd >= 0) {
        uint64_t one = 1;
        ssize_t r = write(c->wake_fd, &one, sizeof(one));
        (void)r;
    }
}

void serial_console_uart_tx(void *console, const uint8_t *buf, size_t len)
{
    serial_console_write(console, buf, len);
}

void serial_console_uart_rx_ready(void *console)
{
    serial_console_rx_ready(console);
}

static void drain_wake(struct serial_console *c)
{
    uint64_t v;
    ssize_t r = read(c->wake_fd, &v, sizeof(v));
    (void)r;
}

/* Hand buf to the device, waiting for room as needed; false when stopping. */
static bool push_all(struct serial_console *c, const uint8_t *buf, size_t len)
{
    while (len && !c->stopping) {
        size_t n = c->sink(c->opaque, buf, len);
        buf += n;
        len -= n;
        if (!len)
            break;
        /* The timeout covers a guest that enlarges its FIFO without reading. */
        struct pollfd p = {.fd = c->wake_fd, .events = POLLIN};
        if (poll(&p, 1, 100) > 0)
            drain_wake(c);
    }
    return !c->stopping;
}

/* Apply the Ctrl-A escape to a chunk read from a terminal, in place. Returns
 * the bytes left to forward; *quit is set when Ctrl-A x was typed. */
static size_t filter_escape(struct serial_console *c, uint8_t *buf, size_t len, bool *quit)
{
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        uint8_t ch = buf[i];
        if (!c->escape) {
            if (ch == ESCAPE_CHAR)
                c->escape = true;
            else
                buf[o++] = ch;
            continue;
        }
        c->escape = false;
        if (ch == 'x' || ch == 'X') {
            *quit = true;
            return o;
        }
        if (ch == ESCAPE_CHAR) {
            buf[o++] = ESCAPE_CHAR;
        } else if (ch == 'h' || ch == '?') {
            static const char help[] = "\r\nC-a x    exit vessel\r\nC-a C-a  send C-a\r\n";
            serial_console_write(c, (const uint8_t *)help, sizeof(help) - 1);
        } else {
            /* Not a command: both keys go to the guest. */
            buf[o++] = ESCAPE_CHAR;
            buf[o++] = ch;
        }
    }
    return o;
}

/* Socket mode: accept clients (the newest takes over) and push what the
 * attached one sends, as is (the client does its own detach key). */
static void *socket_input_thread(void *arg)
{
    struct serial_console *c = arg;
    vs_thread_role_enter(VS_THREAD_IO, "console-sock");
    uint8_t buf[INPUT_CHUNK];
    int conn = -1; /* the input side of the attached client */
    while (!c->stopping) {
        struct pollfd p[3] = {{.fd = c->listen_fd, .events = POLLIN},
                              {.fd = c->wake_fd, .events = POLLIN},
                              {.fd = conn, .events = POLLIN}};
        int r = poll(p, 3, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN)
            drain_wake(c);
        if (c->stopping)
            break;
        pthread_mutex_lock(&c->out_lock);
        bool dropped = conn >= 0 && c->client_fd != conn;
        pthread_mutex_unlock(&c->out_lock);
        if (dropped) {
            /* the output side gave up on this client */
            close(conn);
            conn = -1;
            continue;
        }
        if (p[0].revents & POLLIN) {
            int nc = accept4(c->listen_fd, NULL, NULL, SOCK_CLOEXEC);
            if (nc >= 0) {
                pthread_mutex_lock(&c->out_lock);
                c->client_fd = nc;
                pthread_mutex_unlock(&c->out_lock);
                if (conn >= 0)
                    close(conn); /* the previous client is detached */
                conn = nc;
            }
            continue;
        }
        if (conn < 0 || !(p[2].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(conn, buf, sizeof(buf));
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0) {
            pthread_mutex_lock(&c->out_lock);
            if (c->client_fd == conn)
                c->client_fd = -1;
            pthread_mutex_unlock(&c->out_lock);
            close(conn);
            conn = -1;
            continue;
        }
        if (!push_all(c, buf, (size_t)n))
            break;
    }
    pthread_mutex_lock(&c->out_lock);
    c->client_fd = -1;
    pthread_mutex_unlock(&c->out_lock);
    if (conn >= 0)
        close(conn);
    return NULL;
}

static void *input_thread(void *arg)
{
    struct serial_console *c = arg;
    vs_thread_role_enter(VS_THREAD_IO, "console-in");
    /* Room for a Ctrl-A the escape filter may re-insert. */
    uint8_t buf[INPUT_CHUNK * 2];
    while (!c->stopping) {
        struct pollfd p[2] = {{.fd = c->in_fd, .events = POLLIN},
                              {.fd = c->wake_fd, .events = POLLIN}};
        int r = poll(p, 2, -1);
        if (r < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[1].revents & POLLIN)
            drain_wake(c);
        if (c->stopping)
            break;
        if (!(p[0].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        ssize_t n = read(c->in_fd, buf, INPUT_CHUNK);
        if (n < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        if (n <= 0)
            break; /* end of input: the guest simply gets no more */
        size_t len = (size_t)n;
        bool quit = false;
        if (c->tty)
            len = filter_escape(c, buf, len, &quit);
        if (!push_all(c, buf, len))
            break;
        if (quit) {
            if (c->quit)
                c->quit(c->opaque);
            break;
        }
    }
    return NULL;
}

int serial_console_start(struct serial_console *c, serial_console_sink_fn sink,
                         serial_console_quit_fn quit, void *opaque, vs_err *err)
{
    if (c->thread_started)
        return 0;
    if (c->listen_fd >= 0) {
        c->sink = sink;
        c->quit = quit;
        c->opaque = opaque;
        c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (c->wake_fd < 0)
            return vs_error_errno(err, "console eventfd");
        int e = start_thread(&c->thread, socket_input_thread, c);
        if (e) {
            errno = e;
            return vs_error_errno(err, "console socket thread");
        }
        c->thread_started = true;
        return 0;
    }
    if (c->in_fd < 0)
        return 0;
    /* A closed stdin (vessel ... <&-) means no input rather than an error. */
    if (fcntl(c->in_fd, F_GETFD) < 0) {
        c->in_fd = -1;
        return 0;
    }
    c->sink = sink;
    c->quit = quit;
    c->opaque = opaque;
    c->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (c->wake_fd < 0)
        return vs_error_errno(err, "console eventfd");
    if (isatty(c->in_fd) && tcgetattr(c->in_fd, &c->saved) == 0) {
        struct termios raw = c->saved;
        cfmakeraw(&raw);
        /* Keep output post-processing so host-side messages stay readable;
         * the guest sends CR LF itself, which ONLCR leaves alone. */
        raw.c_oflag |= OPOST;
        if (tcsetattr(c->in_fd, TCSANOW, &raw) == 0) {
            c->tty = true;
            g_saved_termios = c->saved;
            if (g_raw_fd < 0) {
                g_raw_fd = c->in_fd;
                atexit(restore_terminal_atexit);
            }
            g_raw_fd = c->in_fd;
        }
    }
    int e = start_thread(&c->thread, input_thread, c);
    if (e) {
        serial_console_close(c);
        errno = e;
        return vs_error_errno(err, "console input thread");
    }
    c->thread_started = true;
    return 0;
}

void serial_console_close(struct serial_console *c)
{
    if (!c)
        return;
    if (c->thread_started) {
        c->stopping = true;
        serial_console_rx_ready(c);
        pthread_join(c->thread, NULL);
        c->thread_started = false;
    }
    if (c->out_thread_started) {
        pthread_mutex_lock(&c->out_lock);
        c->out_stopping = true;
        pthread_cond_signal(&c->out_cond);
        pthread_mutex_unlock(&c->out_lock);
        pthread_join(c->out_thread, NULL);
        c->out_thread_started = false;
    }
    serial_console_flush(c);
    if (c->tty) {
        tcsetattr(c->in_fd, TCSANOW, &c->saved);
        c->tty = false;
        g_raw_fd = -1;
    }
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    if (c->own_out && c->out_fd >= 0)
        close(c->out_fd);
    if (c->listen_fd >= 0) {
        close(c->listen_fd);
        unlink(c->sock_path);
    }
    free(c->sock_path);
    free(c);
}
