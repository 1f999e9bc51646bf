/* Snapshot save/open/map against a fake machine: full and diff round trips,
 * atomicity of a failed snapshot, and every kind of bad snapshot refused by
 * snapshot_image_open with a clear message. */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>
#include <cmocka.h>

#include <pthread.h>
#include <sys/socket.h>

#include "block/qcow2.h"
#include "snapshot/sink.h"
#include "snapshot/snapshot.h"
#include "util/cleanup.h"

#include "fake_machine.h"

static char dir[] = "/tmp/vessel-snapfmt-XXXXXX";
static struct fake fk;
static struct vm_control ctl;

static char *p(const char *name)
{
    static char bufs[4][512];
    static int i;
    char *b = bufs[i++ % 4];
    snprintf(b, 512, "%s/%s", dir, name);
    return b;
}

static int setup(void **state)
{
    if (!mkdtemp(dir))
        return -1;
    return 0;
}

static int teardown(void **state)
{
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static int fake_setup(void **state)
{
    fake_machine_init(&fk, &ctl);
    return 0;
}

static int fake_teardown(void **state)
{
    fake_machine_free(&fk);
    return 0;
}

static void assert_memory_matches(struct snapshot_image *img)
{
    assert_int_equal(guest_mem_nregions(&img->mem), guest_mem_nregions(&fk.mem));
    for (unsigned i = 0; i < guest_mem_nregions(&fk.mem); i++) {
        const struct guest_mem_region *a = guest_mem_region(&img->mem, i);
        const struct guest_mem_region *b = guest_mem_region(&fk.mem, i);
        assert_int_equal(a->gpa, b->gpa);
        assert_int_equal(a->size, b->size);
        assert_memory_equal(a->hva, b->hva, b->size);
    }
}

static void full_and_diff_round_trip(void **state)
{
    struct snapshot_session s = {0};
    struct snapshot_stats st;
    vs_err err;
    assert_int_equal(snapshot_save(&ctl, &s, p("full"), false, &st, &err), 0);
    assert_false(fk.paused);        /* it was running, so it runs again */
    assert_int_equal(fk.pauses, 2); /* a brief one to start the pre-copy, then the real one */
    /* zero pages are not written: 2 single pages + 10000 bytes (3 pages) */
    assert_int_equal(st.memory_bytes, 5 * 4096);
    struct stat sb;
    assert_int_equal(stat(p("full/memory"), &sb), 0);
    assert_true((uint64_t)sb.st_blocks * 512 < 1 * MiB); /* sparse */

    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("full"), -1, &img, &err), 0);
    assert_int_equal(img.cfg.cpus, 2);
    assert_string_equal(img.cfg.kernel, "/boot/vmlinuz-test");
    assert_int_equal(snapshot_image_map(&img, &err), 0);
    assert_memory_matches(&img);
    uint32_t ver, counter;
    assert_int_equal(state_find(&img.state, "fake", 0, &ver, &err), 1);
    assert_int_equal(state_get_u32(&img.state, &counter, &err), 0);
    assert_int_equal(counter, 41);
    /* the mapping is private: writes do not reach the file */
    guest_mem_region(&img.mem, 0)->hva[8192] = 0x99;
    snapshot_image_close(&img);
    assert_int_equal(snapshot_image_open(p("full"), -1, &img, &err), 0);
    assert_int_equal(snapshot_image_map(&img, &err), 0);
    assert_int_equal(guest_mem_region(&img.mem, 0)->hva[8192], 0x11);
    snapshot_image_close(&img);

    /* the guest writes two pages (one back to zero); a diff holds just those */
    memset(guest_mem_ptr_w(&fk.mem, 20 * 4096, 4096), 0x44, 4096);
    memset(guest_mem_ptr_w(&fk.mem, 8192, 4096), 0, 4096);
    fk.counter = 42;
    assert_int_equal(snapshot_save(&ctl, &s, p("diff1"), true, &st, &err), 0);
    assert_int_equal(st.memory_bytes, 2 * 4096);
    memset(guest_mem_ptr_w(&fk.mem, (1ULL << 30) + 8192, 4096), 0x55, 4096);
    assert_int_equal(snapshot_save(&ctl, &s, p("diff2"), true, &st, &err), 0);
    assert_int_equal(st.memory_bytes, 4096);
    assert_int_equal(snapshot_image_open(p("diff2"), -1, &img, &err), 0);
    assert_int_equal(snapshot_image_map(&img, &err), 0);
    assert_memory_matches(&img);
    assert_int_equal(state_find(&img.state, "fake", 0, &ver, &err), 1);
    assert_int_equal(state_get_u32(&img.state, &counter, &err), 0);
    assert_int_equal(counter, 42);
    snapshot_image_close(&img);

    /* a diff whose parent was replaced is refused */
    assert_int_equal(rename(p("diff1"), p("diff1.moved")), 0);
    assert_int_equal(snapshot_image_open(p("diff2"), -1, &img, &err), -1);
    assert_non_null(strstr(err.msg, "diff1"));
    assert_int_equal(rename(p("diff1.moved"), p("diff1")), 0);
    snapshot_session_free(&s);
}

/* Memory the guest changes while the snapshot pre-copies is caught by the
 * final pause (written, or zeroed). */
static void precopy_catches_late_writes(void **state)
{
    struct snapshot_session s = {0};
    vs_err err;
    fk.write_before_pause = 2;
    assert_int_equal(snapshot_save(&ctl, &s, p("late"), 0, NULL, &err), 0);
    assert_int_equal(guest_mem_region(&fk.mem, 0)->hva[30 * 4096], 0x77);
    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("late"), -1, &img, &err), 0);
    assert_int_equal(snapshot_image_map(&img, &err), 0);
    assert_memory_matches(&img);
    snapshot_image_close(&img);
    snapshot_session_free(&s);
}

static void failed_snapshot_leaves_nothing(void **state)
{
    struct snapshot_session s = {0};
    vs_err err;
    /* a diff needs a full snapshot first */
    assert_int_equal(snapshot_save(&ctl, &s, p("d0"), true, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "full snapshot"));
    fk.fail_save = true;
    assert_int_equal(snapshot_save(&ctl, &s, p("bad"), false, NULL, &err), -1);
    assert_non_null(strstr(err.msg, "fake device refuses"));
    assert_false(fk.paused);
    assert_int_equal(fk.resumes, fk.pauses);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q bad", dir);
    assert_int_not_equal(system(cmd), 0); /* no directory, no temp left */
    fk.fail_save = false;
    /* an existing directory is never overwritten */
    assert_int_equal(mkdir(p("exists"), 0755), 0);
    assert_int_equal(snapshot_save(&ctl, &s, p("exists"), false, NULL, &err), -1);
    assert_int_equal(err.code, EEXIST);
    rmdir(p("exists"));
    /* a paused VM stays paused */
    fk.paused = true;
    assert_int_equal(snapshot_save(&ctl, &s, p("ok"), false, NULL, &err), 0);
    assert_true(fk.paused);
    snapshot_session_free(&s);
}

static uint8_t *slurp(const char *path, size_t *n)
{
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *b = malloc(*n);
    assert_int_equal(fread(b, 1, *n, f), *n);
    fclose(f);
    return b;
}

static void spit(const char *path, const uint8_t *b, size_t n)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(b, 1, n, f), n);
    fclose(f);
}

static void expect_refused(const char *what, int arch, const char *needle)
{
    struct snapshot_image img;
    vs_err err = {0};
    assert_int_equal(snapshot_image_open(p("c"), arch, &img, &err), -1);
    if (!strstr(err.msg, needle))
        fail_msg("%s: '%s' lacks '%s'", what, err.msg, needle);
}

static void bad_snapshots_refused(void **state)
{
    struct snapshot_session s = {0};
    vs_err err;
    /* a disk whose identity is recorded */
    FILE *f = fopen(p("disk.raw"), "w");
    fputs("filesystem", f);
    fclose(f);
    assert_int_equal(vm_config_add_disk(&fk.cfg, p("disk.raw"), &err), 0);
    assert_int_equal(snapshot_save(&ctl, &s, p("c"), false, NULL, &err), 0);
    snapshot_session_free(&s);
    size_t n;
    uint8_t *good = slurp(p("c/vmstate"), &n);
    uint8_t *b = malloc(n);

    memcpy(b, good, n);
    b[n - 3] ^= 0x40;
    spit(p("c/vmstate"), b, n);
    expect_refused("flipped bit", -1, "CRC mismatch");

    spit(p("c/vmstate"), good, n - 100);
    expect_refused("truncated", -1, "truncated");
    spit(p("c/vmstate"), good, 60);
    expect_refused("truncated header", -1, "truncated");

    /* a newer format version, with a valid header CRC */
    struct snap_header h;
    assert_int_equal(snap_header_decode(good, n, n, &h, &err), 0);
    h.version = SNAP_VERSION + 1;
    memcpy(b, good, n);
    snap_header_encode(&h, b);
    spit(p("c/vmstate"), b, n);
    expect_refused("newer", -1, "newer than this vessel supports");

    spit(p("c/vmstate"), good, n);
    expect_refused("other machine", VM_ARCH_RISCV64, "cannot be restored on a riscv64");

    assert_int_equal(truncate(p("c/memory"), 4096), 0);
    expect_refused("short memory", -1, "memory file");
    assert_int_equal(truncate(p("c/memory"), 0), 0);

    /* memory restored to size: only the disk is wrong now */
    assert_int_equal(truncate(p("c/memory"), 1ULL << 31), 0);
    f = fopen(p("disk.raw"), "a");
    fputs("!", f);
    fclose(f);
    expect_refused("disk changed", -1, "changed since the snapshot");

    free(b);
    free(good);
}

static void cpu_feature_missing(void **state)
{
    if (access("/dev/kvm", R_OK | W_OK) != 0) {
        fprintf(stderr, "*** SKIPPING cpu_feature_missing: /dev/kvm unusable\n");
        skip();
    }
    vs_err err;
    /* leaves 1.0 and 7.0: leaf 7 EBX with every bit set */
    uint8_t rec[32] = {0};
    memset(rec + 16 + 4, 0xff, 4);
    assert_int_equal(snapshot_check_cpu_features(VM_ARCH_X86_64, rec, 32, &err), -1);
    assert_non_null(strstr(err.msg, "snapshot needs CPU feature"));
    uint8_t ok[16] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0};
    assert_int_equal(snapshot_check_cpu_features(VM_ARCH_X86_64, ok, 16, &err), 0); /* fpu */
    assert_int_equal(snapshot_check_cpu_features(VM_ARCH_X86_64, rec, 23, &err), -1);
    /* end to end: a snapshot recording it is refused */
    struct snapshot_session s = {0};
    memcpy(fk.cpu, rec, 32);
    fk.cpu_len = 32;
    assert_int_equal(snapshot_save(&ctl, &s, p("cpu"), false, NULL, &err), 0);
    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("cpu"), -1, &img, &err), -1);
    assert_non_null(strstr(err.msg, "CPUID 0x7.0 ebx"));
    snapshot_session_free(&s);
}

/* A disk written between a full snapshot and a diff: the diff (which
 * records the disk as it is now) restores, the full one no longer does. */
static void diff_after_disk_write(void **state)
{
    vs_err err;
    FILE *f = fopen(p("d2.raw"), "w");
    fputs("v1", f);
    fclose(f);
    assert_int_equal(vm_config_add_disk(&fk.cfg, p("d2.raw"), &err), 0);
    struct snapshot_session s = {0};
    assert_int_equal(snapshot_save(&ctl, &s, p("dfull"), 0, NULL, &err), 0);
    usleep(20000);
    f = fopen(p("d2.raw"), "a");
    fputs("v2", f);
    fclose(f);
    assert_int_equal(snapshot_save(&ctl, &s, p("ddiff"), SNAPSHOT_DIFF, NULL, &err), 0);
    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("ddiff"), -1, &img, &err), 0);
    snapshot_image_close(&img);
    assert_int_equal(snapshot_image_open(p("dfull"), -1, &img, &err), -1);
    assert_non_null(strstr(err.msg, "changed since"));
    snapshot_session_free(&s);
}

/* With SNAPSHOT_DISKS the disk is frozen inside the snapshot: the VM's
 * later writes go to a new overlay and the snapshot stays restorable. */
static void disk_layer_snapshot(void **state)
{
    vs_err err;
    assert_int_equal(qcow2_create(p("vm.qcow2"), 1 * MiB, NULL, NULL, &err), 0);
    assert_int_equal(vm_config_add_disk(&fk.cfg, p("vm.qcow2"), &err), 0);
    /* the machine's virtio-blk device holds the disk: the snapshot finds it
     * in the machine's device list */
    struct disk *d = fake_machine_plug_disks(&fk);
    uint8_t buf[4096];
    memset(buf, 1, sizeof(buf));
    struct iovec v = {buf, sizeof(buf)};
    assert_int_equal(disk_write(d, 0, &v, 1), 0);
    struct snapshot_session s = {0};
    assert_int_equal(snapshot_save(&ctl, &s, p("withdisk"), SNAPSHOT_DISKS, NULL, &err), 0);
    assert_non_null(strstr(fk.cfg.disks[0].path, "vm.qcow2.after-"));
    memset(buf, 2, sizeof(buf));
    assert_int_equal(disk_write(d, 0, &v, 1), 0); /* the guest goes on writing */
    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("withdisk"), -1, &img, &err), 0);
    assert_non_null(strstr(img.cfg.disks[0].path, "/vm.qcow2"));
    assert_null(strstr(img.cfg.disks[0].path, "after"));
    snapshot_image_close(&img);
    /* without it, the same writes make the snapshot unrestorable */
    assert_int_equal(snapshot_save(&ctl, &s, p("nodisk"), 0, NULL, &err), 0);
    usleep(20000); /* file systems keep mtime in clock ticks */
    assert_int_equal(disk_write(d, 8192, &v, 1), 0);
    assert_int_equal(snapshot_image_open(p("nodisk"), -1, &img, &err), -1);
    assert_non_null(strstr(err.msg, "changed since the snapshot"));
    snapshot_session_free(&s);
}

/* A restore's two halves: prepare opens, overrides the configuration,
 * makes disk overlays and maps memory; the caller runs the machine from
 * rs.src; finish removes a temporary overlay directory nobody kept. */
static void restore_prepare_and_finish(void **state)
{
    vs_err err;
    FILE *f = fopen(p("r.raw"), "w");
    fputs("root", f);
    fclose(f);
    assert_int_equal(vm_config_add_disk(&fk.cfg, p("r.raw"), &err), 0);
    struct snapshot_session s = {0};
    assert_int_equal(snapshot_save(&ctl, &s, p("rs"), 0, NULL, &err), 0);
    snapshot_session_free(&s);

    struct snapshot_restore_opts o = {.console = "none",
                                      .overlay_dir = p("rs-ov"),
                                      .expect_arch = VM_ARCH_X86_64,
                                      .clone_index = -1,
                                      .vsock_cid = 7};
    struct snapshot_restore rs;
    assert_int_equal(snapshot_restore_prepare(p("rs"), &o, &rs, &err), 0);
    assert_string_equal(rs.img.cfg.console, "none");
    assert_int_equal(rs.img.cfg.vsock_cid, 7);
    assert_string_equal(rs.img.cfg.disks[0].path, p("rs-ov/disk0.qcow2"));
    assert_string_equal(rs.img.cfg.disks[0].format, "qcow2");
    assert_int_equal(access(p("rs-ov/disk0.qcow2"), F_OK), 0);
    assert_ptr_equal(rs.src.mem, &rs.img.mem);
    assert_memory_matches(&rs.img);
    uint32_t ver, counter;
    assert_int_equal(state_find(rs.src.state, "fake", 0, &ver, &err), 1);
    assert_int_equal(state_get_u32(rs.src.state, &counter, &err), 0);
    assert_int_equal(counter, 41);
    assert_int_equal(rs.tmpdir[0], 0);
    snapshot_restore_finish(&rs);
    assert_int_equal(access(p("rs-ov/disk0.qcow2"), F_OK), 0); /* --overlay-dir stays */

    /* without --overlay-dir the overlays go to a temporary directory,
     * removed at the end unless a snapshot of the restored VM keeps it */
    o.overlay_dir = NULL;
    assert_int_equal(snapshot_restore_prepare(p("rs"), &o, &rs, &err), 0);
    char tmp[sizeof(rs.tmpdir)];
    memcpy(tmp, rs.tmpdir, sizeof(tmp));
    assert_int_equal(strncmp(tmp, SNAPSHOT_RESTORE_TMP, strlen(SNAPSHOT_RESTORE_TMP)), 0);
    assert_int_equal(access(rs.img.cfg.disks[0].path, F_OK), 0);
    snapshot_restore_finish(&rs);
    assert_int_not_equal(access(tmp, F_OK), 0);

    assert_int_equal(snapshot_restore_prepare(p("rs"), &o, &rs, &err), 0);
    memcpy(tmp, rs.tmpdir, sizeof(tmp));
    char keep[sizeof(tmp) + 16];
    snprintf(keep, sizeof(keep), "%s/%s", tmp, SNAPSHOT_KEEP_FILE);
    close(open(keep, O_WRONLY | O_CREAT, 0644));
    snapshot_restore_finish(&rs);
    assert_int_equal(access(keep, F_OK), 0);
    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", tmp);
    assert_int_equal(system(cmd), 0);

    /* the wrong machine type is refused before anything is made */
    o.expect_arch = VM_ARCH_RISCV64;
    o.overlay_dir = p("rs-ov2");
    assert_int_equal(snapshot_restore_prepare(p("rs"), &o, &rs, &err), -1);
    assert_non_null(strstr(err.msg, "riscv64"));
    assert_int_not_equal(access(p("rs-ov2"), F_OK), 0);
}

struct receiver {
    int fd;
    const char *dir;
    int rc;
    uint64_t bytes;
    vs_err err;
};

static void *receive_thread(void *arg)
{
    struct receiver *r = arg;
    r->rc = snapshot_stream_receive(r->fd, r->dir, &r->bytes, &r->err);
    return NULL;
}

static bool same_file(const char *a, const char *b)
{
    char cmd[1200];
    snprintf(cmd, sizeof(cmd), "cmp -s %s %s", a, b);
    return system(cmd) == 0;
}

/* The same save through a stream (what live migration sends over a
 * socket): the receiving end rebuilds a snapshot directory that opens,
 * maps and holds the same memory, byte for byte, as a directory save. */
static void save_through_a_stream(void **state)
{
    struct snapshot_session s = {0};
    struct snapshot_stats st;
    vs_err err;
    assert_int_equal(snapshot_save(&ctl, &s, p("bydir"), 0, &st, &err), 0);
    uint64_t dir_bytes = st.memory_bytes;
    snapshot_session_free(&s);

    int sv[2];
    assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    struct receiver r = {.fd = sv[1], .dir = p("bystream")};
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, receive_thread, &r), 0);
    struct snapshot_sink *sink;
    assert_int_equal(snapshot_sink_fd(sv[0], &sink, &err), 0);
    assert_null(sink->path);
    assert_int_equal(snapshot_save_to(&ctl, &s, sink, 0, &st, &err), 0);
    snapshot_sink_close(sink);
    pthread_join(t, NULL);
    close(sv[0]);
    close(sv[1]);
    assert_int_equal(r.rc, 0);
    assert_int_equal(st.memory_bytes, dir_bytes);
    assert_int_equal(r.bytes, dir_bytes);
    assert_false(fk.paused);
    assert_int_equal(fk.resumes, fk.pauses);
    /* nothing a diff can name as its parent */
    assert_null(s.last_dir);
    assert_false(snapshot_session_diff_possible(&s));
    assert_true(same_file(p("bydir/memory"), p("bystream/memory")));
    struct snapshot_image img;
    assert_int_equal(snapshot_image_open(p("bystream"), -1, &img, &err), 0);
    assert_int_equal(snapshot_image_map(&img, &err), 0);
    assert_memory_matches(&img);
    uint32_t ver, counter;
    assert_int_equal(state_find(&img.state, "fake", 0, &ver, &err), 1);
    assert_int_equal(state_get_u32(&img.state, &counter, &err), 0);
    assert_int_equal(counter, 41);
    snapshot_image_close(&img);
    snapshot_session_free(&s);
}

static int stream_into(const char *dir, const void *bytes, size_t n, vs_err *err)
{
    int pfd[2];
    assert_int_equal(pipe(pfd), 0);
    assert_int_equal(write(pfd[1], bytes, n), (ssize_t)n);
    close(pfd[1]);
    int rc = snapshot_stream_receive(pfd[0], dir, NULL, err);
    close(pfd[0]);
    return rc;
}

/* A stream is input from another host: anything malformed, or cut short
 * before its end record, leaves no directory. */
static void bad_streams_refused(void **state)
{
    struct snapshot_session s = {0};
    vs_err err;
    char path[600];
    snprintf(path, sizeof(path), "%s/good.stream", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    assert_true(fd >= 0);
    struct snapshot_sink *sink;
    assert_int_equal(snapshot_sink_fd(fd, &sink, &err), 0);
    assert_int_equal(snapshot_save_to(&ctl, &s, sink, 0, NULL, &err), 0);
    snapshot_sink_close(sink);
    close(fd);
    snapshot_session_free(&s);
    size_t n;
    uint8_t *good = slurp(path, &n);
    assert_int_equal(stream_into(p("s-ok"), good, n, &err), 0);
    assert_int_equal(access(p("s-ok/vmstate"), F_OK), 0);

    const struct {
        const char *what;
        size_t len; /* bytes of the good stream */
        size_t at;  /* flip a byte here (0: none) */
        const char *msg;
    } cases[] = {
        {"cut short", n - 24, 0, "ended before its end record"},
        {"empty", 0, 0, "ended before"},
        {"bad magic", n, 1, "not a vessel snapshot stream"},
        {"bad version", n, 8, "version"},
        {"bad record type", n, 16, "unknown record type"},
        {"reserved field", n, 20, "reserved"},
    };
    uint8_t *b = malloc(n);
    for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
        memcpy(b, good, n);
        if (cases[i].at)
            b[cases[i].at] ^= 0x5a;
        assert_int_equal(stream_into(p("s-bad"), b, cases[i].len, &err), -1);
        if (!strstr(err.msg, cases[i].msg))
            fail_msg("%s: '%s' lacks '%s'", cases[i].what, err.msg, cases[i].msg);
        assert_int_not_equal(access(p("s-bad"), F_OK), 0);
    }
    /* a memory record reaching past any memory image */
    memcpy(b, good, n);
    b[16 + 8 + 7] = 0x7f; /* the first record's offset */
    assert_int_equal(stream_into(p("s-bad"), b, n, &err), -1);
    assert_non_null(strstr(err.msg, "out of range"));
    char cmd[700];
    snprintf(cmd, sizeof(cmd), "ls -A %s | grep -q s-bad", dir);
    assert_int_not_equal(system(cmd), 0); /* no temporary directory left either */
    free(b);
    free(good);
}

/* vm restore --net I,tap=NAME[,mac=MAC] */
static void net_override_parse(void **state)
{
    (void)state;
    struct snapshot_net_override o;
    vs_err err;
    char a[] = "0,tap=vt-copy1,mac=52:54:00:12:34:56";
    assert_int_equal(snapshot_parse_net_override(a, &o, &err), 0);
    assert_int_equal(o.index, 0);
    assert_string_equal(o.tap, "vt-copy1");
    assert_true(o.mac_set);
    assert_int_equal(o.mac[5], 0x56);
    char b[] = "1,mac=52:54:00:00:00:01";
    assert_int_equal(snapshot_parse_net_override(b, &o, &err), 0);
    assert_null(o.tap);
    assert_int_equal(o.index, 1);
    const char *bad[] = {
        "", "x,tap=a", "0", "0,tap=", "0,mac=zz", "0,foo=1", "0,tap=a-name-of-sixteen", "99,tap=a"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", bad[i]);
        assert_int_equal(snapshot_parse_net_override(buf, &o, &err), -1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(full_and_diff_round_trip, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(precopy_catches_late_writes, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(failed_snapshot_leaves_nothing, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(bad_snapshots_refused, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(cpu_feature_missing, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(disk_layer_snapshot, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(diff_after_disk_write, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(restore_prepare_and_finish, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(save_through_a_stream, fake_setup, fake_teardown),
        cmocka_unit_test_setup_teardown(bad_streams_refused, fake_setup, fake_teardown),
        cmocka_unit_test(net_override_parse),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
