/* The guest agent's protocol: the frame codec and its checks (each side
 * refuses what the other may not send), and the two ends of a session,
 * agent_serve (the guest) and agent_client_session (the host), joined by a
 * socketpair instead of vsock, running commands on this host. A fake guest
 * then sends the host what a hostile guest would. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/protocol.h"
#include "agent/session.h"
#include "daemon/agent_client.h"

/* ---- codec ---- */

static uint8_t *frame(uint8_t type, uint32_t len, const void *payload, size_t *n)
{
    uint8_t *b = calloc(1, AGENT_HDR_LEN + len + 1);
    agent_frame_header(b, type, len);
    if (payload)
        memcpy(b + AGENT_HDR_LEN, payload, len);
    *n = AGENT_HDR_LEN + len;
    return b;
}

static void request_round_trip(void **state)
{
    char *argv[] = {"uname", "-m", "", NULL};
    char *envp[] = {"PATH=/bin", "TERM=xterm", NULL};
    size_t len;
    const char *why = NULL;
    uint8_t *b = agent_request_build(AGENT_FLAG_TTY, 40, 120, argv, envp, &len, &why);
    assert_non_null(b);
    struct agent_frame f;
    assert_int_equal(agent_frame_parse(b, len, AGENT_FROM_HOST, &f, &why), (long)len);
    assert_int_equal(f.type, AGENT_REQUEST);
    /* one byte short: not yet a frame */
    assert_int_equal(agent_frame_parse(b, len - 1, AGENT_FROM_HOST, &f, &why), 0);
    /* the guest may not send a request */
    assert_int_equal(agent_frame_parse(b, len, AGENT_FROM_GUEST, &f, &why), -1);
    assert_int_equal(agent_frame_parse(b, len, AGENT_FROM_HOST, &f, &why), (long)len);
    struct agent_request r;
    assert_int_equal(agent_request_decode(f.payload, f.len, &r, &why), 0);
    assert_int_equal(r.flags, AGENT_FLAG_TTY);
    assert_int_equal(r.rows, 40);
    assert_int_equal(r.cols, 120);
    assert_int_equal(r.argc, 3);
    assert_string_equal(r.argv[0], "uname");
    assert_string_equal(r.argv[1], "-m");
    assert_string_equal(r.argv[2], "");
    assert_null(r.argv[3]);
    assert_int_equal(r.envc, 2);
    assert_string_equal(r.envp[1], "TERM=xterm");
    assert_null(r.envp[2]);
    agent_request_free(&r);
    free(b);

    /* no environment: the agent's default */
    b = agent_request_build(0, 0, 0, argv, NULL, &len, &why);
    assert_int_equal(
        agent_request_decode(b + AGENT_HDR_LEN, (uint32_t)(len - AGENT_HDR_LEN), &r, &why), 0);
    assert_null(r.envp);
    agent_request_free(&r);
    free(b);

    char *none[] = {NULL};
    assert_null(agent_request_build(0, 0, 0, none, NULL, &len, &why));
    assert_null(agent_request_build(2, 0, 0, argv, NULL, &len, &why));
}

/* The extensions: a working directory and a user, each optional. */
static void request_cwd_and_user(void **state)
{
    (void)state;
    char *argv[] = {"pwd", NULL};
    char *envp[] = {"A=1", NULL};
    size_t len;
    const char *why = NULL;
    uint8_t *b =
        agent_request_build_ex(AGENT_FLAG_USER, 0, 0, argv, envp, "/tmp", 1000, 1001, &len, &why);
    assert_non_null(b);
    struct agent_request r;
    assert_int_equal(
        agent_request_decode(b + AGENT_HDR_LEN, (uint32_t)(len - AGENT_HDR_LEN), &r, &why), 0);
    assert_int_equal(r.flags, AGENT_FLAG_USER | AGENT_FLAG_CWD);
    assert_string_equal(r.cwd, "/tmp");
    assert_int_equal(r.uid, 1000);
    assert_int_equal(r.gid, 1001);
    assert_int_equal(r.envc, 1);
    assert_string_equal(r.envp[0], "A=1");
    assert_string_equal(r.argv[0], "pwd");
    agent_request_free(&r);
    /* the cwd flag without its string, and a string without the flag */
    uint8_t *p = b + AGENT_HDR_LEN;
    uint32_t plen = (uint32_t)(len - AGENT_HDR_LEN);
    agent_put_u32(p + 4, AGENT_FLAG_USER);
    assert_int_equal(agent_request_decode(p, plen, &r, &why), -1);
    agent_put_u32(p + 4, AGENT_FLAG_CWD | AGENT_FLAG_USER | 8);
    assert_int_equal(agent_request_decode(p, plen, &r, &why), -1);
    free(b);
    /* only a cwd; a relative one is refused at both ends */
    b = agent_request_build_ex(0, 0, 0, argv, NULL, "/", 0, 0, &len, &why);
    assert_int_equal(
        agent_request_decode(b + AGENT_HDR_LEN, (uint32_t)(len - AGENT_HDR_LEN), &r, &why), 0);
    assert_string_equal(r.cwd, "/");
    assert_int_equal(r.flags, AGENT_FLAG_CWD);
    agent_request_free(&r);
    /* ...the decoder sees "/" turned into "x" */
    p = b + len - 2;
    *p = 'x';
    assert_int_equal(
        agent_request_decode(b + AGENT_HDR_LEN, (uint32_t)(len - AGENT_HDR_LEN), &r, &why), -1);
    free(b);
    assert_null(agent_request_build_ex(0, 0, 0, argv, NULL, "tmp", 0, 0, &len, &why));
}

/* Mutate one good request payload into each way a host could get it wrong. */
static void bad_requests(void **state)
{
    char *argv[] = {"echo", "hi", NULL};
    char *envp[] = {"A=1", NULL};
    size_t len;
    const char *why = NULL;
    uint8_t *b = agent_request_build(0, 0, 0, argv, envp, &len, &why);
    uint8_t *p = b + AGENT_HDR_LEN;
    uint32_t plen = (uint32_t)(len - AGENT_HDR_LEN);
    struct agent_request r;
    uint8_t *m = malloc(plen + 8);

#define MUTATE(stmt, newlen, what)                                                                 \
    do {                                                                                           \
        memcpy(m, p, plen);                                                                        \
        stmt;                                                                                      \
        why = NULL;                                                                                \
        assert_int_equal(agent_request_decode(m, (newlen), &r, &why), -1);                         \
        assert_non_null(why);                                                                      \
        assert_non_null(strstr(why, what));                                                        \
    } while (0)

    MUTATE(agent_put_u32(m, 2), plen, "version");
    MUTATE(agent_put_u32(m + 4, 0x80), plen, "flags");
    MUTATE(agent_put_u32(m + 12, 0), plen, "no command");
    MUTATE(agent_put_u32(m + 12, AGENT_MAX_ARGS + 1), plen, "too many");
    MUTATE(agent_put_u32(m + 12, 3), plen, "counts"); /* one string missing */
    MUTATE(agent_put_u32(m + 16, 0), plen, "counts"); /* one string extra */
    MUTATE((void)0, plen - 1, "counts");              /* last string unterminated */
    MUTATE(m[plen] = 'x', plen + 1, "counts");        /* trailing garbage */
    MUTATE(m[plen - 3] = '-', plen, "NAME=VALUE");    /* "A-1" */
    MUTATE(m[20] = 0, plen, "counts");                /* an extra NUL */
    MUTATE(memmove(m + 20, m + 25, plen - 25), plen - 5, "counts");
    MUTATE((void)0, 10, "size");
#undef MUTATE
    /* an empty command name */
    char *empty[] = {"", NULL};
    uint8_t *e = agent_request_build(0, 0, 0, empty, NULL, &len, &why);
    assert_int_equal(
        agent_request_decode(e + AGENT_HDR_LEN, (uint32_t)(len - AGENT_HDR_LEN), &r, &why), -1);
    free(e);
    free(m);
    free(b);
}

static void frame_checks(void **state)
{
    struct agent_frame f;
    const char *why;
    size_t n;
    uint8_t *b;
    /* a header alone is enough to refuse an over-long frame */
    b = frame(AGENT_STDOUT, AGENT_DATA_MAX + 1, NULL, &n);
    assert_int_equal(agent_frame_parse(b, AGENT_HDR_LEN, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
    b = frame(AGENT_STDOUT, 0, NULL, &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
    b = frame(AGENT_STDOUT, 3, "abc", &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), (long)n);
    assert_memory_equal(f.payload, "abc", 3);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_HOST, &f, &why), -1);
    b[2] = 1; /* reserved */
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
    b = frame(0x7f, 0, NULL, &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), -1);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_HOST, &f, &why), -1);
    free(b);
    /* exit statuses: 0..255 in exactly four bytes */
    uint8_t v[4];
    int st;
    agent_put_u32(v, 255);
    b = frame(AGENT_EXIT, 4, v, &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), (long)n);
    assert_int_equal(agent_exit_decode(&f, &st, &why), 0);
    assert_int_equal(st, 255);
    agent_put_u32(b + AGENT_HDR_LEN, 256);
    assert_int_equal(agent_exit_decode(&f, &st, &why), -1);
    free(b);
    b = frame(AGENT_EXIT, 5, "\0\0\0\0\0", &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
    /* signals 1..64, host to guest only */
    agent_put_u32(v, 0);
    b = frame(AGENT_SIGNAL, 4, v, &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_HOST, &f, &why), (long)n);
    assert_int_equal(agent_signal_decode(&f, &st, &why), -1);
    agent_put_u32(b + AGENT_HDR_LEN, 9);
    assert_int_equal(agent_signal_decode(&f, &st, &why), 0);
    assert_int_equal(st, 9);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
    b = frame(AGENT_STDIN_EOF, 1, "x", &n);
    assert_int_equal(agent_frame_parse(b, n, AGENT_FROM_HOST, &f, &why), -1);
    free(b);
    b = frame(AGENT_ERROR, AGENT_ERROR_MAX + 1, NULL, &n);
    assert_int_equal(agent_frame_parse(b, AGENT_HDR_LEN, AGENT_FROM_GUEST, &f, &why), -1);
    free(b);
}

/* Frames arriving a byte at a time come out whole, in order. */
static void reader_chunks(void **state)
{
    struct agent_reader r;
    assert_int_equal(agent_reader_init(&r, AGENT_DATA_MAX), 0);
    size_t n1, n2, n3;
    uint8_t st[4];
    agent_put_u32(st, 7);
    uint8_t *a = frame(AGENT_STDOUT, 5, "hello", &n1);
    uint8_t *b = frame(AGENT_STDERR, 3, "err", &n2);
    uint8_t *c = frame(AGENT_EXIT, 4, st, &n3);
    uint8_t all[64];
    memcpy(all, a, n1);
    memcpy(all + n1, b, n2);
    memcpy(all + n1 + n2, c, n3);
    int got = 0;
    const char *why;
    for (size_t i = 0; i < n1 + n2 + n3; i++) {
        size_t room;
        uint8_t *p = agent_reader_space(&r, &room);
        assert_true(room > 0);
        *p = all[i];
        agent_reader_commit(&r, 1);
        struct agent_frame f;
        int k;
        while ((k = agent_reader_next(&r, AGENT_FROM_GUEST, &f, &why)) == 1) {
            if (got == 0)
                assert_true(f.type == AGENT_STDOUT && f.len == 5 && !memcmp(f.payload, "hello", 5));
            if (got == 1)
                assert_true(f.type == AGENT_STDERR && f.len == 3);
            if (got == 2) {
                int s;
                assert_int_equal(agent_exit_decode(&f, &s, &why), 0);
                assert_int_equal(s, 7);
            }
            got++;
        }
        assert_int_equal(k, 0);
    }
    assert_int_equal(got, 3);
    /* a whole largest frame fits; the buffer never needs to grow */
    uint8_t *big = frame(AGENT_STDOUT, AGENT_DATA_MAX, NULL, &n1);
    size_t room;
    uint8_t *p = agent_reader_space(&r, &room);
    assert_int_equal(room, n1);
    memcpy(p, big, n1);
    agent_reader_commit(&r, n1);
    struct agent_frame f;
    assert_int_equal(agent_reader_next(&r, AGENT_FROM_GUEST, &f, &why), 1);
    assert_int_equal(f.len, AGENT_DATA_MAX);
    /* a request-sized frame is more than the host's reader takes */
    uint8_t hdr[AGENT_HDR_LEN];
    agent_frame_header(hdr, AGENT_REQUEST, AGENT_REQUEST_MAX);
    p = agent_reader_space(&r, &room);
    memcpy(p, hdr, sizeof(hdr));
    agent_reader_commit(&r, sizeof(hdr));
    assert_int_equal(agent_reader_next(&r, AGENT_FROM_HOST, &f, &why), -1);
    free(a);
    free(b);
    free(c);
    free(big);
    agent_reader_free(&r);
}

/* ---- sessions over a socketpair ---- */

struct run {
    int status;
    char *out, *err;
    size_t out_len, err_len;
    vs_err e;
};

static char *slurp(int fd, size_t *len)
{
    off_t end = lseek(fd, 0, SEEK_END);
    char *b = calloc(1, (size_t)end + 1);
    assert_int_equal(pread(fd, b, (size_t)end, 0), end);
    *len = (size_t)end;
    close(fd);
    return b;
}

/* Run argv through agent_serve in a child, with stdin from a file holding
 * in[0..in_len), and stdout and stderr into files (or out_fd). */
static void session(char **argv, bool tty, const void *in, size_t in_len, int out_fd, struct run *r)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    pid_t guest = fork();
    if (guest == 0) {
        close(sv[0]);
        signal(SIGPIPE, SIG_IGN);
        _exit(agent_serve(sv[1]) == 0 ? 0 : 1);
    }
    close(sv[1]);
    int infd = memfd_create("in", MFD_CLOEXEC);
    assert_true(write(infd, in, in_len) == (ssize_t)in_len);
    lseek(infd, 0, SEEK_SET);
    int out = out_fd >= 0 ? out_fd : memfd_create("out", MFD_CLOEXEC);
    int err = memfd_create("err", MFD_CLOEXEC);
    memset(r, 0, sizeof(*r));
    r->status = agent_client_session(sv[0], argv, NULL, tty, infd, out, err, &r->e);
    int ws;
    assert_int_equal(waitpid(guest, &ws, 0), guest);
    close(infd);
    if (out_fd < 0)
        r->out = slurp(out, &r->out_len);
    r->err = slurp(err, &r->err_len);
}

static void run_free(struct run *r)
{
    free(r->out);
    free(r->err);
}

static void streams_and_status(void **state)
{
    char *argv[] = {"sh", "-c", "cat; echo oops >&2; exit 3", NULL};
    struct run r;
    session(argv, false, "hello through stdin\n", 20, -1, &r);
    assert_int_equal(r.status, 3);
    assert_string_equal(r.out, "hello through stdin\n");
    assert_string_equal(r.err, "oops\n");
    run_free(&r);
}

static void not_found_and_signals(void **state)
{
    char *nf[] = {"/nonexistent/program", NULL};
    struct run r;
    session(nf, false, "", 0, -1, &r);
    assert_int_equal(r.status, 127);
    assert_non_null(strstr(r.err, "vessel-agent: /nonexistent/program: No such file"));
    run_free(&r);
    char *sig[] = {"sh", "-c", "kill -TERM $$", NULL};
    session(sig, false, "", 0, -1, &r);
    assert_int_equal(r.status, 128 + SIGTERM);
    run_free(&r);
}

/* A megabyte each way: flow control holds, nothing is lost or reordered. */
static void large_streams(void **state)
{
    size_t n = 1 << 20;
    char *data = malloc(n);
    for (size_t i = 0; i < n; i++)
        data[i] = (char)('a' + (i * 7 + i / 4096) % 26);
    char *argv[] = {"cat", NULL};
    struct run r;
    session(argv, false, data, n, -1, &r);
    assert_int_equal(r.status, 0);
    assert_int_equal(r.out_len, n);
    assert_memory_equal(r.out, data, n);
    run_free(&r);
    free(data);
}

/* stdout closed under the command: it gets SIGPIPE, as at home. */
static void closed_stdout(void **state)
{
    int p[2];
    assert_int_equal(pipe2(p, O_CLOEXEC), 0);
    close(p[0]);
    signal(SIGPIPE, SIG_IGN);
    char *argv[] = {"sh", "-c", "while :; do echo y; done", NULL};
    struct run r;
    session(argv, false, "", 0, p[1], &r);
    close(p[1]);
    assert_int_equal(r.status, 128 + SIGPIPE);
    run_free(&r);
}

static void tty_session(void **state)
{
    if (access("/dev/ptmx", R_OK | W_OK) < 0)
        skip();
    char *argv[] = {"sh", "-c", "test -t 0 && test -t 1 && echo on-a-tty; stty size", NULL};
    struct run r;
    session(argv, true, "", 0, -1, &r);
    if (r.status < 0 && strstr(r.e.msg, "pseudo-terminal"))
        skip(); /* a container without devpts */
    assert_int_equal(r.status, 0);
    assert_non_null(strstr(r.out, "on-a-tty\r\n"));
    assert_non_null(strstr(r.out, "24 80")); /* the size when the host has no terminal */
    assert_int_equal(r.err_len, 0);          /* a terminal has one output stream */
    run_free(&r);
}

/* ---- a hostile guest ---- */

/* The host's verdict on what a fake guest sends after the request. */
static int from_fake_guest(const void *bytes, size_t n, bool close_after, vs_err *e, char **out)
{
    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    assert_true(write(sv[1], bytes, n) == (ssize_t)n);
    if (close_after)
        shutdown(sv[1], SHUT_WR);
    int in = open("/dev/null", O_RDONLY | O_CLOEXEC);
    int o = memfd_create("out", MFD_CLOEXEC);
    char *argv[] = {"true", NULL};
    int st = agent_client_session(sv[0], argv, NULL, false, in, o, o, e);
    close(sv[1]);
    close(in);
    size_t len;
    *out = slurp(o, &len);
    return st;
}

static void hostile_guest(void **state)
{
    vs_err e;
    char *out;
    size_t n;
    uint8_t buf[256];

    /* output, then a valid exit */
    uint8_t st[4];
    agent_put_u32(st, 42);
    uint8_t *a = frame(AGENT_STDOUT, 2, "ok", &n);
    memcpy(buf, a, n);
    size_t m = n;
    free(a);
    a = frame(AGENT_EXIT, 4, st, &n);
    memcpy(buf + m, a, n);
    m += n;
    free(a);
    assert_int_equal(from_fake_guest(buf, m, false, &e, &out), 42);
    assert_string_equal(out, "ok");
    free(out);

    /* a host-only frame type */
    a = frame(AGENT_STDIN, 1, "x", &n);
    assert_int_equal(from_fake_guest(a, n, false, &e, &out), -1);
    assert_non_null(strstr(e.msg, "protocol"));
    free(a);
    free(out);

    /* a length over the limit is refused from the header alone: the client
     * does not wait for 4 GiB that never come */
    uint8_t hdr[AGENT_HDR_LEN];
    agent_frame_header(hdr, AGENT_STDOUT, 0xffffffffu);
    assert_int_equal(from_fake_guest(hdr, sizeof(hdr), false, &e, &out), -1);
    free(out);

    /* an exit status out of range */
    agent_put_u32(st, 1000);
    a = frame(AGENT_EXIT, 4, st, &n);
    assert_int_equal(from_fake_guest(a, n, false, &e, &out), -1);
    free(a);
    free(out);

    /* the connection ends without a status */
    a = frame(AGENT_STDERR, 1, "x", &n);
    assert_int_equal(from_fake_guest(a, n, true, &e, &out), -1);
    assert_non_null(strstr(e.msg, "before the command's exit status"));
    free(a);
    free(out);

    /* an ERROR's text reaches the caller with control characters defused */
    a = frame(AGENT_ERROR, 9, "bad\x1b[2Jx\n!", &n);
    assert_int_equal(from_fake_guest(a, n, false, &e, &out), -1);
    assert_non_null(strstr(e.msg, "bad?[2Jx?"));
    free(a);
    free(out);
}

/* ---- a hostile host ---- */

static void hostile_host(void **state)
{
    const uint8_t *cases[3];
    size_t lens[3];
    uint8_t stdin_first[AGENT_HDR_LEN + 1];
    agent_frame_header(stdin_first, AGENT_STDIN, 1);
    stdin_first[AGENT_HDR_LEN] = 'x';
    cases[0] = stdin_first;
    lens[0] = sizeof(stdin_first);
    uint8_t huge[AGENT_HDR_LEN];
    agent_frame_header(huge, AGENT_REQUEST, AGENT_REQUEST_MAX + 1);
    cases[1] = huge;
    lens[1] = sizeof(huge);
    uint8_t guest_type[AGENT_HDR_LEN + 4] = {0};
    agent_frame_header(guest_type, AGENT_EXIT, 4);
    cases[2] = guest_type;
    lens[2] = sizeof(guest_type);
    for (int i = 0; i < 3; i++) {
        int sv[2];
        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
        assert_true(write(sv[0], cases[i], lens[i]) == (ssize_t)lens[i]);
        assert_int_equal(agent_serve(sv[1]), -1);
        /* the agent explains with an ERROR frame, then hangs up */
        uint8_t b[AGENT_HDR_LEN + AGENT_ERROR_MAX];
        ssize_t n = read(sv[0], b, sizeof(b));
        assert_true(n > (ssize_t)AGENT_HDR_LEN);
        struct agent_frame f;
        const char *why;
        assert_true(agent_frame_parse(b, (size_t)n, AGENT_FROM_GUEST, &f, &why) > 0);
        assert_int_equal(f.type, AGENT_ERROR);
        close(sv[0]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(request_round_trip),    cmocka_unit_test(request_cwd_and_user),
        cmocka_unit_test(bad_requests),          cmocka_unit_test(frame_checks),
        cmocka_unit_test(reader_chunks),         cmocka_unit_test(streams_and_status),
        cmocka_unit_test(not_found_and_signals), cmocka_unit_test(large_streams),
        cmocka_unit_test(closed_stdout),         cmocka_unit_test(tty_session),
        cmocka_unit_test(hostile_guest),         cmocka_unit_test(hostile_host),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
