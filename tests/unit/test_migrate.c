/* Live migration's pieces: addresses, the API's parameters, the record
 * format, the destination's checks of a hostile stream, and whole
 * migrations of a fake machine to an in-process destination: completed
 * (memory and state arrive, the source stops), refused and cancelled (the
 * source runs on, resumed, not stopped). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "fake_machine.h"
#include "migrate/disks.h"
#include "migrate/incoming.h"
#include "migrate/source.h"
#include "migrate/uri.h"
#include "migrate/wire.h"
#include "util/io.h"
#include "vm/config_json.h"

static void test_uri(void **state)
{
    vs_err err;
    assert_int_equal(mig_uri_check("tcp:10.0.0.1:4444", &err), 0);
    assert_int_equal(mig_uri_check("tcp:[fd00::1]:4444", &err), 0);
    assert_int_equal(mig_uri_check("tcp::4444", &err), 0);
    assert_int_equal(mig_uri_check("unix:/tmp/x.sock", &err), 0);
    assert_int_equal(mig_uri_check("tcp:host", &err), -1);
    assert_int_equal(mig_uri_check("tcp:host:0", &err), -1);
    assert_int_equal(mig_uri_check("tcp:host:99999", &err), -1);
    assert_int_equal(mig_uri_check("tcp:[fd00::1:44", &err), -1);
    assert_int_equal(mig_uri_check("udp:host:1", &err), -1);
    assert_non_null(strstr(err.msg, "tcp:HOST:PORT"));
    assert_int_equal(mig_uri_check("unix:", &err), -1);
}

static void test_params(void **state)
{
    struct migrate_params p;
    vs_err err;
    json_t *j = json_pack("{s:s}", "uri", "tcp:1.2.3.4:5");
    assert_int_equal(migrate_params_from_json(j, &p, &err), 0);
    assert_int_equal(p.downtime_limit_us, 20000);
    assert_int_equal(p.bandwidth, 0);
    json_decref(j);
    j = json_pack("{s:s, s:f, s:s, s:b}", "uri", "unix:/x", "downtime_limit_ms", 2.5, "bandwidth",
                  "100M", "auto_converge", 1);
    assert_int_equal(migrate_params_from_json(j, &p, &err), 0);
    assert_int_equal(p.downtime_limit_us, 2500);
    assert_int_equal(p.bandwidth, 100 << 20);
    assert_true(p.auto_converge);
    json_decref(j);
    const char *bad[] = {
        "{}",
        "{\"uri\": 5}",
        "{\"uri\": \"ftp:x\"}",
        "{\"uri\": \"tcp:a:1\", \"downtime_limit_ms\": -1}",
        "{\"uri\": \"tcp:a:1\", \"downtime_limit_ms\": \"x\"}",
        "{\"uri\": \"tcp:a:1\", \"bandwidth\": \"fast\"}",
        "{\"uri\": \"tcp:a:1\", \"bandwidth\": 100}",
        "{\"uri\": \"tcp:a:1\", \"auto_converge\": \"yes\"}",
        "{\"uri\": \"tcp:a:1\", \"max_throttle_pct\": 100}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        j = json_loads(bad[i], 0, NULL);
        assert_int_equal(migrate_params_from_json(j, &p, &err), -1);
        assert_true(err.msg[0]);
        json_decref(j);
    }
    j = json_pack("{s:s, s:b}", "uri", "tcp:a:1", "postcopy", 1);
    assert_int_equal(migrate_params_from_json(j, &p, &err), 0);
    assert_true(p.postcopy);
    json_decref(j);
}

static void test_record_format(void **state)
{
    uint8_t h[MIG_HEADER_SIZE], r[MIG_RECORD_SIZE];
    vs_err err;
    mig_header_encode(h);
    assert_int_equal(mig_header_decode(h, &err), 0);
    h[8] = 2;
    assert_int_equal(mig_header_decode(h, &err), -1);
    assert_non_null(strstr(err.msg, "version"));
    uint8_t page[4096];
    memset(page, 7, sizeof(page));
    mig_record_encode(r, MIG_MEMORY, 0x123456789aULL, 4096, page);
    struct mig_record rec;
    assert_int_equal(mig_record_decode(r, &rec, &err), 0);
    assert_int_equal(rec.type, MIG_MEMORY);
    assert_int_equal(rec.off, 0x123456789aULL);
    assert_int_equal(rec.len, 4096);
    assert_int_equal(mig_record_check(&rec, page, &err), 0);
    /* one bit changed anywhere: in the payload, in the header */
    page[1000] ^= 0x10;
    assert_int_equal(mig_record_check(&rec, page, &err), -1);
    assert_non_null(strstr(err.msg, "corrupted"));
    page[1000] ^= 0x10;
    r[9] ^= 1;
    assert_int_equal(mig_record_decode(r, &rec, &err), 0);
    assert_int_equal(mig_record_check(&rec, page, &err), -1);
}

/* ---- the destination's parser on crafted streams ---- */

struct feed {
    uint8_t buf[1 << 16];
    size_t len, pos;
    uint8_t out[4096];
    size_t outlen;
};

static int feed_read(void *o, void *b, size_t n)
{
    struct feed *f = o;
    if (n > f->len - f->pos)
        return -1;
    memcpy(b, f->buf + f->pos, n);
    f->pos += n;
    return 0;
}

static int feed_write(void *o, const void *b, size_t n)
{
    struct feed *f = o;
    if (n <= sizeof(f->out) - f->outlen) {
        memcpy(f->out + f->outlen, b, n);
        f->outlen += n;
    }
    return 0;
}

static void put(struct feed *f, uint32_t type, uint64_t off, const void *p, uint64_t len,
                uint64_t paylen)
{
    mig_record_encode(f->buf + f->len, type, off, len, paylen == len ? p : NULL);
    f->len += MIG_RECORD_SIZE;
    if (paylen)
        memcpy(f->buf + f->len, p, paylen);
    f->len += paylen;
}

/* a HELLO for a riscv64 machine with 64 KiB of RAM, with a configuration */
static char HELLO[4096];

static void make_hello(void)
{
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.arch = VM_ARCH_RISCV64;
    json_t *j = json_pack("{s:s, s:{s:i, s:[{s:I, s:i, s:i}]}, s:o}", "arch", "riscv64", "memory",
                          "size", 65536, "regions", "gpa", (json_int_t)0x80000000LL, "size", 65536,
                          "offset", 0, "config", vm_config_to_json(&cfg));
    char *t = json_dumps(j, JSON_COMPACT);
    snprintf(HELLO, sizeof(HELLO), "%s", t);
    free(t);
    json_decref(j);
    vm_config_free(&cfg);
}

static void start(struct feed *f, const char *hello)
{
    memset(f, 0, sizeof(*f));
    mig_header_encode(f->buf);
    f->len = MIG_HEADER_SIZE;
    put(f, MIG_HELLO, 0, hello, strlen(hello), strlen(hello));
}

static int receive(struct feed *f, struct mig_incoming *in, vs_err *err)
{
    struct mig_io io = {.read = feed_read, .write = feed_write, .opaque = f};
    mig_incoming_init(in, -1, 1 << 20);
    return mig_receive(in, &io, err);
}

static void test_receive_good(void **state)
{
    struct feed f;
    start(&f, HELLO);
    uint8_t page[4096];
    memset(page, 0xab, sizeof(page));
    put(&f, MIG_MEMORY, 8192, page, 4096, 4096);
    put(&f, MIG_MEMORY, 4096, page, 4096, 4096);
    put(&f, MIG_ZERO, 4096, NULL, 4096, 0);
    put(&f, MIG_VMSTATE, 0, "state", 5, 5);
    put(&f, MIG_END, 0, NULL, 0, 0);
    struct mig_incoming in;
    vs_err err;
    assert_int_equal(receive(&f, &in, &err), 0);
    assert_int_equal(in.arch, VM_ARCH_RISCV64);
    assert_int_equal(in.image_size, 65536);
    assert_int_equal(in.image[8192], 0xab);
    assert_int_equal(in.image[4096], 0);
    assert_int_equal(in.memory_bytes, 8192);
    assert_int_equal(in.vmstate_len, 5);
    struct mig_record r;
    assert_int_equal(mig_record_decode(f.out, &r, &err), 0);
    assert_int_equal(r.type, MIG_ACCEPT);
    struct guest_mem mem;
    guest_mem_init(&mem);
    assert_int_equal(mig_incoming_map(&in, &mem, &err), 0);
    mig_incoming_free(&in);
    assert_int_equal(*(uint8_t *)guest_mem_ptr(&mem, 0x80000000ULL + 8192, 1), 0xab);
    guest_mem_destroy(&mem);
}

static void expect_refused(struct feed *f, const char *needle)
{
    struct mig_incoming in;
    vs_err err = {0};
    assert_int_equal(receive(f, &in, &err), -1);
    if (!strstr(err.msg, needle))
        fail_msg("error '%s' does not say '%s'", err.msg, needle);
    mig_incoming_free(&in);
}

static void test_receive_hostile(void **state)
{
    struct feed f;
    uint8_t page[4096] = {0};
    /* memory beyond the image the HELLO announced */
    start(&f, HELLO);
    put(&f, MIG_MEMORY, 65536 - 100, page, 4096, 4096);
    expect_refused(&f, "outside");
    start(&f, HELLO);
    put(&f, MIG_MEMORY, UINT64_MAX - 10, page, 4096, 0);
    expect_refused(&f, "outside");
    start(&f, HELLO);
    put(&f, MIG_ZERO, 4096, NULL, UINT64_MAX, 0);
    expect_refused(&f, "outside");
    /* a record before HELLO */
    memset(&f, 0, sizeof(f));
    mig_header_encode(f.buf);
    f.len = MIG_HEADER_SIZE;
    put(&f, MIG_MEMORY, 0, page, 4096, 4096);
    expect_refused(&f, "before HELLO");
    /* END before the state; two states; a reply type from the source */
    start(&f, HELLO);
    put(&f, MIG_END, 0, NULL, 0, 0);
    expect_refused(&f, "END before");
    start(&f, HELLO);
    put(&f, MIG_VMSTATE, 0, "a", 1, 1);
    put(&f, MIG_VMSTATE, 0, "a", 1, 1);
    expect_refused(&f, "VMSTATE");
    start(&f, HELLO);
    put(&f, MIG_READY, 0, NULL, 0, 0);
    expect_refused(&f, "unexpected");
    start(&f, HELLO);
    put(&f, MIG_VMSTATE, 0, "a", 1ULL << 40, 0);
    expect_refused(&f, "VMSTATE");
    /* a flipped byte */
    start(&f, HELLO);
    memset(page, 0x42, sizeof(page));
    put(&f, MIG_MEMORY, 0, page, 4096, 4096);
    f.buf[f.len - 77] ^= 4;
    expect_refused(&f, "corrupted");
    /* cut short */
    start(&f, HELLO);
    put(&f, MIG_MEMORY, 0, page, 4096, 100);
    expect_refused(&f, "ended before");
    /* HELLOs a destination must refuse, answering REFUSE */
    const char *hellos[] = {
        "not json",
        "{\"arch\":\"mips\",\"memory\":{\"size\":4096,\"regions\":[{\"gpa\":0,\"size\":4096,"
        "\"offset\":0}]}}",
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":1073741824000,\"regions\":[{\"gpa\":0,"
        "\"size\":4096,\"offset\":0}]}}",
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":8192,\"regions\":[{\"gpa\":0,\"size\":8192,"
        "\"offset\":4096}]}}",
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":8192,\"regions\":[{\"gpa\":0,\"size\":4096,"
        "\"offset\":4096},{\"gpa\":0,\"size\":4096,\"offset\":0}]}}",
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":8192,\"regions\":[]}}",
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":8192,\"regions\":[{\"gpa\":1,\"size\":4096,"
        "\"offset\":0}]}}",
        /* no configuration */
        "{\"arch\":\"riscv64\",\"memory\":{\"size\":8192,\"regions\":[{\"gpa\":0,\"size\":4096,"
        "\"offset\":0}]}}",
    };
    for (size_t i = 0; i < sizeof(hellos) / sizeof(hellos[0]); i++) {
        start(&f, hellos[i]);
        struct mig_incoming in;
        vs_err err;
        assert_int_equal(receive(&f, &in, &err), -1);
        struct mig_record r;
        assert_int_equal(mig_record_decode(f.out, &r, &err), 0);
        assert_int_equal(r.type, MIG_REFUSE);
        assert_true(r.len > 0);
        mig_incoming_free(&in);
    }
    /* a destination that takes only x86_64 */
    start(&f, HELLO);
    struct mig_incoming in;
    vs_err err;
    struct mig_io io = {.read = feed_read, .write = feed_write, .opaque = &f};
    mig_incoming_init(&in, VM_ARCH_X86_64, 1 << 20);
    assert_int_equal(mig_receive(&in, &io, &err), -1);
    assert_non_null(strstr(err.msg, "riscv64"));
    mig_incoming_free(&in);
}

/* ---- whole migrations of the fake machine ---- */

enum dest_mode { DEST_OK, DEST_REFUSE_STATE, DEST_STALL };

struct dest {
    char uri[128];
    int lfd;
    enum dest_mode mode;
    struct mig_incoming in;
    int rc;
    vs_err err;
    bool got_go;
    const struct mig_tls_opts *tls; /* the destination's, or NULL */
};

static int conn_read(void *o, void *b, size_t n)
{
    return mig_conn_read(o, b, n);
}
static int conn_write(void *o, const void *b, size_t n)
{
    return mig_conn_write(o, b, n);
}

static void *dest_thread(void *arg)
{
    struct dest *d = arg;
    int fd = accept(d->lfd, NULL, NULL);
    if (fd < 0)
        return NULL;
    if (d->mode == DEST_STALL) {
        /* takes the connection and reads nothing for a second: the source
         * blocks on a full socket until it is cancelled; then drain */
        sleep(1);
        char buf[65536];
        while (read(fd, buf, sizeof(buf)) > 0)
            ;
        close(fd);
        return NULL;
    }
    struct mig_conn conn;
    if (d->tls) {
        d->rc = mig_tls_server(&conn, fd, d->tls, &d->err);
        if (d->rc < 0) {
            close(fd);
            return NULL;
        }
    } else {
        mig_conn_plain(&conn, fd);
    }
    struct mig_io io = {.read = conn_read, .write = conn_write, .opaque = &conn};
    mig_incoming_init(&d->in, -1, 1 << 30);
    d->rc = mig_receive(&d->in, &io, &d->err);
    if (d->rc == 0 && d->mode == DEST_REFUSE_STATE) {
        mig_send(&conn, MIG_REFUSE, 0, "no room for this guest", 22, &d->err);
    } else if (d->rc == 0) {
        struct mig_record r;
        if (mig_send(&conn, MIG_READY, 0, NULL, 0, &d->err) == 0 &&
            mig_recv_record(&conn, 5000, &r, &d->err) == 0 && r.type == MIG_GO) {
            d->got_go = true;
            mig_send(&conn, MIG_RUNNING, 0, NULL, 0, &d->err);
        }
    }
    mig_conn_end(&conn);
    close(fd);
    return NULL;
}

static void dest_start_tls(struct dest *d, pthread_t *t, enum dest_mode mode,
                           const struct mig_tls_opts *tls)
{
    memset(d, 0, sizeof(*d));
    d->mode = mode;
    d->tls = tls;
    snprintf(d->uri, sizeof(d->uri), "unix:/tmp/vessel-test-mig-%d.sock", getpid());
    vs_err err;
    d->lfd = mig_listen(d->uri, &err);
    assert_true(d->lfd >= 0);
    assert_int_equal(pthread_create(t, NULL, dest_thread, d), 0);
}

static void dest_start(struct dest *d, pthread_t *t, enum dest_mode mode)
{
    dest_start_tls(d, t, mode, NULL);
}

static bool done_called;
static void on_done(void *o)
{
    done_called = true;
}

static struct migrate_progress wait_end(struct migration *m)
{
    struct migrate_progress p;
    for (int i = 0; i < 1000; i++) {
        migration_progress(m, &p);
        if (p.state >= MIGRATE_COMPLETED)
            return p;
        usleep(10000);
    }
    fail_msg("migration did not end");
    return p;
}

static void test_migrate_fake_machine(void **state)
{
    struct fake f;
    struct vm_control ctl;
    fake_machine_init(&f, &ctl);
    struct dest d;
    pthread_t t;
    dest_start(&d, &t, DEST_OK);
    struct migrate_params p = {.downtime_limit_us = 20000, .max_throttle = 99};
    snprintf(p.uri, sizeof(p.uri), "%s", d.uri);
    struct migration *m;
    vs_err err;
    done_called = false;
    assert_int_equal(migration_start(&ctl, &p, on_done, NULL, &m, &err), 0);
    struct migrate_progress pr = wait_end(m);
    pthread_join(t, NULL);
    migration_free(m); /* waits for on_done */
    if (pr.state != MIGRATE_COMPLETED)
        fail_msg("state %s: %s", migrate_state_name(pr.state), pr.error);
    assert_int_equal(d.rc, 0);
    assert_true(d.got_go);
    assert_true(done_called);
    /* the source stays paused, for good */
    assert_true(f.paused);
    /* every written page arrived; zero pages were not sent as data */
    assert_int_equal(d.in.image[8192], 0x11);
    assert_int_equal(d.in.image[3 * MiB + 100], 0x22);
    uint64_t r1 = d.in.regions[1].offset;
    assert_int_equal(d.in.image[r1 + 4096], 0x33);
    assert_true(pr.pages_sent < 16);
    struct snap_header h;
    assert_int_equal(snap_vmstate_check(d.in.vmstate, d.in.vmstate_len, &h, &err), 0);
    mig_incoming_free(&d.in);
    close(d.lfd);
    unlink(d.uri + 5);
    fake_machine_free(&f);
}

/* The same over TLS with a pre-shared key; a source with another key is
 * refused at the handshake and runs on. */
static void test_migrate_over_tls_psk(void **state)
{
    char good[64], bad[64];
    snprintf(good, sizeof(good), "/tmp/vessel-test-psk-%d", getpid());
    snprintf(bad, sizeof(bad), "/tmp/vessel-test-psk-bad-%d", getpid());
    FILE *f = fopen(good, "w");
    fprintf(f, "vessel:000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    fclose(f);
    f = fopen(bad, "w");
    fprintf(f, "vessel:ff0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f\n");
    fclose(f);
    struct mig_tls_opts dtls = {.psk_file = good};
    for (int round = 0; round < 2; round++) {
        struct fake f2;
        struct vm_control ctl;
        fake_machine_init(&f2, &ctl);
        struct dest d;
        pthread_t t;
        dest_start_tls(&d, &t, DEST_OK, &dtls);
        char body[512];
        snprintf(body, sizeof(body), "{\"uri\": \"%s\", \"tls\": {\"psk_file\": \"%s\"}}", d.uri,
                 round ? bad : good);
        json_t *j = json_loads(body, 0, NULL);
        struct migrate_params p;
        vs_err err;
        assert_int_equal(migrate_params_from_json(j, &p, &err), 0);
        json_decref(j);
        struct migration *m;
        done_called = false;
        assert_int_equal(migration_start(&ctl, &p, on_done, NULL, &m, &err), 0);
        struct migrate_progress pr = wait_end(m);
        pthread_join(t, NULL);
        migration_free(m);
        if (round == 0) {
            if (pr.state != MIGRATE_COMPLETED)
                fail_msg("state %s: %s", migrate_state_name(pr.state), pr.error);
            assert_true(d.got_go);
            assert_int_equal(d.in.image[8192], 0x11);
        } else {
            assert_int_equal(pr.state, MIGRATE_FAILED);
            assert_non_null(strstr(pr.error, "TLS"));
            assert_false(f2.paused);
        }
        mig_incoming_free(&d.in);
        close(d.lfd);
        unlink(d.uri + 5);
        fake_machine_free(&f2);
    }
    unlink(good);
    unlink(bad);
}

static void test_migrate_refused_source_runs_on(void **state)
{
    struct fake f;
    struct vm_control ctl;
    fake_machine_init(&f, &ctl);
    struct dest d;
    pthread_t t;
    dest_start(&d, &t, DEST_REFUSE_STATE);
    struct migrate_params p = {.downtime_limit_us = 20000, .max_throttle = 99};
    snprintf(p.uri, sizeof(p.uri), "%s", d.uri);
    struct migration *m;
    vs_err err;
    done_called = false;
    assert_int_equal(migration_start(&ctl, &p, on_done, NULL, &m, &err), 0);
    struct migrate_progress pr = wait_end(m);
    pthread_join(t, NULL);
    migration_free(m);
    assert_int_equal(pr.state, MIGRATE_FAILED);
    assert_non_null(strstr(pr.error, "no room for this guest"));
    assert_false(f.paused);
    assert_false(f.stopped);
    assert_false(done_called);
    mig_incoming_free(&d.in);
    close(d.lfd);
    unlink(d.uri + 5);
    /* nobody listening: a clear error, still running */
    struct migration *m2;
    assert_int_equal(migration_start(&ctl, &p, on_done, NULL, &m2, &err), 0);
    pr = wait_end(m2);
    migration_free(m2);
    assert_int_equal(pr.state, MIGRATE_FAILED);
    assert_non_null(strstr(pr.error, "connecting to"));
    assert_false(f.paused);
    fake_machine_free(&f);
}

static void test_migrate_cancel(void **state)
{
    struct fake f;
    struct vm_control ctl;
    fake_machine_init(&f, &ctl);
    /* enough non-zero memory to fill the socket buffers */
    memset(guest_mem_region(&f.mem, 0)->hva, 0x5a, 4 * MiB);
    struct dest d;
    pthread_t t;
    dest_start(&d, &t, DEST_STALL);
    struct migrate_params p = {.downtime_limit_us = 20000, .max_throttle = 99};
    snprintf(p.uri, sizeof(p.uri), "%s", d.uri);
    struct migration *m;
    vs_err err;
    assert_int_equal(migration_start(&ctl, &p, on_done, NULL, &m, &err), 0);
    usleep(200000);
    assert_true(migration_active(m));
    assert_int_equal(migration_cancel(m, &err), 0);
    struct migrate_progress pr = wait_end(m);
    assert_int_equal(pr.state, MIGRATE_CANCELLED);
    assert_int_equal(migration_cancel(m, &err), -1);
    migration_free(m);
    pthread_join(t, NULL);
    close(d.lfd);
    unlink(d.uri + 5);
    assert_false(f.paused);
    assert_false(f.stopped);
    fake_machine_free(&f);
}

/* --copy-disks, destination side: the HELLO's disk list is checked against
 * the configuration, records against the disks announced. */
static void test_disks_in_parse_and_check(void **state)
{
    struct vm_config cfg;
    vm_config_init(&cfg);
    cfg.ndisks = 2;
    cfg.disks[0].path = strdup("/src/a.img");
    cfg.disks[1].path = strdup("/src/ro.img");
    cfg.disks[1].readonly = true;
    struct mig_disks_in di;
    vs_err err;
    const char *bad[] = {
        "{}",
        "[{\"index\": 1, \"size\": 65536, \"format\": \"raw\"}]",  /* read-only: shared */
        "[{\"index\": 2, \"size\": 65536, \"format\": \"raw\"}]",  /* no such disk */
        "[{\"index\": 0, \"size\": 0, \"format\": \"raw\"}]",      /* empty */
        "[{\"index\": 0, \"size\": 65536, \"format\": \"vmdk\"}]", /* unknown format */
        "[{\"index\": 0, \"size\": 65536, \"format\": \"raw\", \"backing\": \"/b\", "
        "\"backing_format\": \"raw\"}]", /* a raw image has no backing file */
        "[{\"index\": 0, \"size\": 65536, \"format\": \"qcow2\", \"backing\": \"rel\", "
        "\"backing_format\": \"raw\"}]", /* relative backing path */
        "[{\"index\": 0, \"size\": 65536, \"format\": \"raw\"}, "
        "{\"index\": 0, \"size\": 65536, \"format\": \"raw\"}]",              /* twice */
        "[{\"index\": 0, \"size\": 72057594037927937, \"format\": \"raw\"}]", /* 2^56 + 1 */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *j = json_loads(bad[i], 0, NULL);
        assert_non_null(j);
        assert_int_equal(mig_disks_in_parse(&di, j, &cfg, &err), -1);
        assert_int_equal(err.code, EPROTO);
        mig_disks_in_free(&di, false);
        json_decref(j);
    }
    json_t *j = json_loads("[{\"index\": 0, \"size\": 1048576, \"format\": \"raw\"}]", 0, NULL);
    assert_int_equal(mig_disks_in_parse(&di, j, &cfg, &err), 0);
    json_decref(j);
    assert_int_equal(di.n, 1);
    struct mig_disk_in *d;
    uint64_t at;
    /* the machine is not built yet: nothing may be written */
    assert_int_equal(mig_disks_in_check(&di, 0, 4096, &d, &at, &err), -1);
    assert_non_null(strstr(err.msg, "before the machine"));
    struct disk fake = {.size = 1048576};
    di.d[0].disk = &fake;
    assert_int_equal(mig_disks_in_check(&di, 65536, 65536, &d, &at, &err), 0);
    assert_int_equal(at, 65536);
    /* outside the disk, too long, empty, another disk */
    assert_int_equal(mig_disks_in_check(&di, 1048576 - 4096, 8192, &d, &at, &err), -1);
    assert_int_equal(mig_disks_in_check(&di, 0, MIG_DISK_CHUNK + 1, &d, &at, &err), -1);
    assert_int_equal(mig_disks_in_check(&di, 0, 0, &d, &at, &err), -1);
    assert_int_equal(mig_disks_in_check(&di, 1ull << MIG_DISK_INDEX_SHIFT, 4096, &d, &at, &err),
                     -1);
    assert_non_null(strstr(err.msg, "not moving"));
    assert_int_equal(
        mig_disks_in_check(&di, UINT64_MAX & ~(MIG_DISK_MAX_SIZE - 1), 4096, &d, &at, &err), -1);
    /* no --storage: a clear refusal */
    assert_int_equal(mig_disks_in_create(&di, NULL, NULL, 0, &cfg, &err), -1);
    assert_non_null(strstr(err.msg, "--storage"));
    mig_disks_in_free(&di, false);
    vm_config_free(&cfg);
}

int main(void)
{
    make_hello();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_params),
        cmocka_unit_test(test_record_format),
        cmocka_unit_test(test_receive_good),
        cmocka_unit_test(test_receive_hostile),
        cmocka_unit_test(test_migrate_fake_machine),
        cmocka_unit_test(test_migrate_over_tls_psk),
        cmocka_unit_test(test_migrate_refused_source_runs_on),
        cmocka_unit_test(test_migrate_cancel),
        cmocka_unit_test(test_disks_in_parse_and_check),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
