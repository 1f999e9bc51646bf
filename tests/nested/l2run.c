/*
 * l2run: run a VMM inside the nested lab's L1 and observe it from outside.
 *
 *   l2run [-m MARKER] [-i INPUT] [-p PROMPT] [-t SECONDS] [-q] [-T] -- CMD [ARGS...]
 *
 * CMD runs with its stdin on a pipe (kept open, so it never sees EOF) and its
 * stdout+stderr on another pipe that l2run copies to its own stdout. l2run
 * notes when MARKER first appears in the output and when CMD exits. With
 * -i, the lines of INPUT are written to CMD's stdin after the marker: one line
 * per appearance of PROMPT if -p is given (so a guest shell is ready for
 * each), else all at once. After -t SECONDS CMD gets SIGUSR1 (vessel then
 * prints every vCPU's registers) and a second later SIGKILL. -T prefixes each
 * output line with "+MS " (milliseconds since CMD started, when l2run read
 * it): where a boot spends its time, also before the guest has a clock.
 *
 * At the end l2run prints one line to stderr (the lab's tests and bench/boot
 * parse it):
 *   L2RUN marker_ms=N exit_ms=N status=N maxrss_kb=N own_kb=N timeout=0|1
 * marker_ms is -1 if the marker never appeared; status is CMD's exit status or
 * 128+signal. maxrss_kb is the peak resident set size of CMD (wait4's
 * ru_maxrss, the same number as VmHWM). own_kb is the largest RSS seen (sampled
 * from /proc/PID/smaps while CMD runs) outside CMD's largest mapping, which is
 * the guest's RAM: the VMM's own memory. l2run exits with CMD's status.
 *
 * It is built statically by tests/nested/lab.sh and carried into L1, where
 * busybox has no sub-second clock.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap + 1);
    size_t r;
    while (buf && (r = fread(buf + n, 1, cap - n, f)) > 0) {
        n += r;
        if (n == cap) {
            cap *= 2;
            char *nb = realloc(buf, cap + 1);
            if (!nb) {
                free(buf);
                buf = NULL;
            }
            buf = nb;
        }
    }
    fclose(f);
    if (buf)
        buf[n] = 0;
    *len = n;
    return buf;
}

/* Counts occurrences of a needle in a stream that arrives in chunks. */
struct matcher {
    const char *needle;
    size_t len;
    char *tail; /* the last len-1 bytes seen, so matches across chunks count */
    size_t ntail;
};

static void matcher_init(struct matcher *m, const char *needle)
{
    m->needle = needle;
    m->len = needle ? strlen(needle) : 0;
    m->tail = m->len ? calloc(1, 2 * m->len + 8192) : NULL;
    m->ntail = 0;
}

/* Returns how many new matches the chunk completes. */
static int matcher_feed(struct matcher *m, const char *data, size_t n)
{
    if (!m->len || !m->tail)
        return 0;
    int hits = 0;
    while (n > 0) {
        size_t take = n > 4096 ? 4096 : n;
        memcpy(m->tail + m->ntail, data, take);
        size_t total = m->ntail + take;
        size_t i = 0;
        while (i + m->len <= total) {
            if (!memcmp(m->tail + i, m->needle, m->len)) {
                hits++;
                i += m->len;
            } else {
                i++;
            }
        }
        /* keep what could still begin a match, but never a matched part */
        size_t start = total >= m->len - 1 ? total - (m->len - 1) : 0;
        if (start < i)
            start = i;
        size_t keep = total - start;
        memmove(m->tail, m->tail + start, keep);
        m->ntail = keep;
        data += take;
        n -= take;
    }
    return hits;
}

/*
 * The RSS of a process outside its largest mapping (in kB), or -1. A VMM maps
 * guest RAM as one big region; everything else is the VMM's own.
 */
static long own_rss_kb(pid_t pid)
{
    char path[64], line[512];
    snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    unsigned long long start, end, size = 0, big_size = 0;
    long total = 0, rss, big_rss = 0;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%llx-%llx ", &start, &end) == 2 &&
            strchr(line, '-') < strchr(line, ' ')) {
            size = end - start;
        } else if (sscanf(line, "Rss: %ld kB", &rss) == 1) {
            total += rss;
            if (size > big_size) {
                big_size = size;
                big_rss = rss;
            }
        }
    }
    fclose(f);
    return total - big_rss;
}

static void usage(void)
{
    fprintf(stderr, "usage: l2run [-m MARKER] [-i INPUT] [-p PROMPT] [-t SECONDS] [-q] [-T] -- CMD "
                    "[ARGS...]\n");
    exit(2);
}

int main(int argc, char **argv)
{
    const char *marker = NULL, *input_path = NULL, *prompt = NULL;
    int timeout_s = 0, quiet = 0, stamp = 0, opt;
    while ((opt = getopt(argc, argv, "+m:i:p:t:qT")) != -1) {
        switch (opt) {
        case 'm':
            marker = optarg;
            break;
        case 'i':
            input_path = optarg;
            break;
        case 'p':
            prompt = optarg;
            break;
        case 't':
            timeout_s = atoi(optarg);
            break;
        case 'q':
            quiet = 1;
            break;
        case 'T':
            stamp = 1;
            break;
        default:
            usage();
        }
    }
    if (optind >= argc)
        usage();

    size_t input_len = 0;
    char *input = NULL;
    if (input_path) {
        input = read_file(input_path, &input_len);
        if (!input) {
            fprintf(stderr, "l2run: %s: %s\n", input_path, strerror(errno));
            return 2;
        }
    }

    int in_pipe[2], out_pipe[2];
    if (pipe2(in_pipe, O_CLOEXEC) < 0 || pipe2(out_pipe, O_CLOEXEC) < 0) {
        perror("l2run: pipe");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    long long t0 = now_ms();
    pid_t pid = fork();
    if (pid < 0) {
        perror("l2run: fork");
        return 2;
    }
    if (pid == 0) {
        dup2(in_pipe[0], 0);
        dup2(out_pipe[1], 1);
        dup2(out_pipe[1], 2);
        execvp(argv[optind], argv + optind);
        fprintf(stderr, "l2run: cannot run %s: %s\n", argv[optind], strerror(errno));
        _exit(127);
    }
    close(in_pipe[0]);
    close(out_pipe[1]);

    struct matcher mm, pm;
    matcher_init(&mm, marker);
    matcher_init(&pm, prompt);
    long long marker_ms = -1;
    size_t sent = 0; /* bytes of input written */
    int prompts = 0; /* prompts seen after the marker, not yet answered */
    int timed_out = 0;
    int out_open = 1;
    char buf[4096];
    int line_start = 1; /* -T: the next byte begins a line */

    long own_kb = 0;
    while (out_open) {
        long own = own_rss_kb(pid);
        if (own > own_kb)
            own_kb = own;
        int wait_ms = 100;
        if (timeout_s > 0) {
            long long left = t0 + (long long)timeout_s * 1000 - now_ms();
            /* First SIGUSR1 (vessel prints every vCPU's registers: where a
             * silent guest hangs), a second's grace to read that, then kill. */
            if (left <= 0 && !timed_out) {
                timed_out = 1;
                kill(pid, SIGUSR1);
            }
            if (timed_out && left <= -1000) {
                kill(pid, SIGKILL);
                break;
            }
            if (timed_out)
                left += 1000;
            if (left < wait_ms)
                wait_ms = (int)left;
        }
        struct pollfd p = {.fd = out_pipe[0], .events = POLLIN};
        int r = poll(&p, 1, wait_ms);
        if (r < 0 && errno != EINTR)
            break;
        if (r > 0) {
            ssize_t n = read(out_pipe[0], buf, sizeof(buf));
            if (n <= 0) {
                out_open = 0;
            } else {
                if (!quiet && !stamp) {
                    fwrite(buf, 1, (size_t)n, stdout);
                } else if (!quiet) {
                    long long at = now_ms() - t0;
                    for (ssize_t i = 0; i < n; i++) {
                        if (line_start)
                            printf("+%lld ", at);
                        putchar(buf[i]);
                        line_start = buf[i] == '\n';
                    }
                }
                fflush(stdout);
                if (marker_ms < 0 && matcher_feed(&mm, buf, (size_t)n) > 0)
                    marker_ms = now_ms() - t0;
                if (marker_ms >= 0 && prompt)
                    prompts += matcher_feed(&pm, buf, (size_t)n);
            }
        }
        /* feed input once the guest is ready for it */
        if (input && marker_ms >= 0 && sent < input_len) {
            if (!prompt) {
                if (write(in_pipe[1], input + sent, input_len - sent) > 0)
                    sent = input_len;
            } else {
                while (prompts > 0 && sent < input_len) {
                    char *nl = memchr(input + sent, '\n', input_len - sent);
                    size_t len = nl ? (size_t)(nl - (input + sent)) + 1 : input_len - sent;
                    if (write(in_pipe[1], input + sent, len) < 0)
                        break;
                    sent += len;
                    prompts--;
                }
            }
        }
    }

    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof(ru));
    /* After a kill, a VMM stuck in the kernel (uninterruptible) might never be
     * reaped: give it 10 s, then report it as killed rather than hang L1's script. */
    long long reap_deadline = now_ms() + 10000;
    int reaped = 0;
    for (;;) {
        pid_t r = wait4(pid, &status, timed_out ? WNOHANG : 0, &ru);
        if (r == pid) {
            reaped = 1;
            break;
        }
        if (r < 0 && errno != EINTR)
            break;
        if (timed_out) {
            if (now_ms() > reap_deadline)
                break;
            usleep(100 * 1000);
        }
    }
    if (!reaped) {
        fprintf(stderr, "\nl2run: %s did not die after SIGKILL\n", argv[optind]);
        status = SIGKILL; /* reported as 128+9 below */
    }
    long long exit_ms = now_ms() - t0;
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    fflush(stdout);
    fprintf(stderr,
            "\nL2RUN marker_ms=%lld exit_ms=%lld status=%d maxrss_kb=%ld own_kb=%ld timeout=%d\n",
            marker_ms, exit_ms, code, ru.ru_maxrss, own_kb, timed_out);
    return code;
}
