/* Writing a snapshot directory from a paused VM. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "block/disk.h"
#include "vm/config_json.h"
#include "snapshot/disk_identity.h"
#include "snapshot/snapshot.h"
#include "util/cleanup.h"
#include "util/io.h"
#include "util/log.h"
#include "virtio/devices.h"
#include "virtio/machine_glue.h"

#define REGION_ALIGN (2ULL << 20)

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void snapshot_session_free(struct snapshot_session *s)
{
    free(s->last_dir);
    memset(s, 0, sizeof(*s));
}

void snapshot_session_init(struct snapshot_session *s, const char *origin_dir,
                           const char *origin_id)
{
    memset(s, 0, sizeof(*s));
    if (origin_dir && origin_id) {
        s->last_dir = strdup(origin_dir);
        snprintf(s->last_id, sizeof(s->last_id), "%s", origin_id);
        s->since_restore = s->last_dir != NULL;
    }
}

bool snapshot_session_diff_possible(const struct snapshot_session *s)
{
    return s->last_dir && (s->dirty_log || s->since_restore);
}

/* The pages of a region written since the restore: its mapping is
 * MAP_PRIVATE of the snapshot's memory file, so a written page has become
 * anonymous (present and not file-backed, or swapped out), while pages only
 * read are page-cache pages and untouched ones are not mapped. Read from
 * /proc/self/pagemap: no dirty logging is needed until the first snapshot
 * after the restore. */
static int pagemap_dirty(const struct guest_mem_region *r, uint64_t *bitmap, vs_err *err)
{
    cleanup_close int fd = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "/proc/self/pagemap");
    enum { CHUNK = 8192 };
    /* on the heap: a static __thread array would cost every thread of the
     * VM 64 KiB of TLS */
    cleanup_free uint64_t *ent = malloc(CHUNK * sizeof(*ent));
    if (!ent)
        return vs_error(err, ENOMEM, "pagemap buffer");
    uint64_t pages = r->size / GUEST_PAGE_SIZE, first = (uintptr_t)r->hva / GUEST_PAGE_SIZE;
    for (uint64_t p = 0; p < pages; p += CHUNK) {
        size_t n = pages - p < CHUNK ? (size_t)(pages - p) : CHUNK;
        ssize_t got = pread(fd, ent, n * 8, (off_t)((first + p) * 8));
        if (got != (ssize_t)(n * 8))
            return vs_error(err, EIO, "/proc/self/pagemap: short read");
        for (size_t k = 0; k < n; k++) {
            bool present = ent[k] >> 63 & 1, swapped = ent[k] >> 62 & 1, file = ent[k] >> 61 & 1;
            if ((present && !file) || swapped)
                bitmap[(p + k) / 64] |= 1ULL << ((p + k) % 64);
        }
    }
    return 0;
}

static void remove_tree(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d))) {
            if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
                continue;
            char p[PATH_MAX];
            snprintf(p, sizeof(p), "%s/%s", dir, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(dir);
}

static bool page_is_zero(const uint8_t *p)
{
    const uint64_t *w = (const uint64_t *)p;
    for (size_t i = 0; i < GUEST_PAGE_SIZE / 8; i += 8)
        if (w[i] | w[i + 1] | w[i + 2] | w[i + 3] | w[i + 4] | w[i + 5] | w[i + 6] | w[i + 7])
            return false;
    return true;
}

static bool fd_is_memfd(int fd)
{
    char link[64], target[256];
    snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, target, sizeof(target) - 1);
    return n > 7 && !memcmp(target, "/memfd:", 7);
}

/* Pages [first, end) of region r, skipping zero pages unless keep_zero. */
/* Copy len bytes of region r at offset at into the snapshot file. From a
 * memfd, sendfile() moves page cache to page cache without touching the
 * guest mapping (much faster under KVM, which tracks that mapping). */
static int copy_run(int out, const struct guest_mem_region *r, bool from_fd, uint64_t at,
                    uint64_t len, uint64_t file_off)
{
    if (!from_fd)
        return vs_pwrite_full(out, r->hva + at, len, file_off + at);
    if (lseek(out, (off_t)(file_off + at), SEEK_SET) < 0)
        return -1;
    off_t in = (off_t)(r->fd_offset + at);
    while (len) {
        ssize_t n = sendfile(out, r->fd, &in, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        len -= (uint64_t)n;
    }
    return 0;
}

static int write_pages(int out, const struct guest_mem_region *r, bool from_fd, uint64_t file_off,
                       uint64_t first, uint64_t end, bool keep_zero, uint64_t *written)
{
    uint64_t run = UINT64_MAX;
    for (uint64_t pg = first; pg <= end; pg++) {
        bool data = pg < end && (keep_zero || !page_is_zero(r->hva + pg * GUEST_PAGE_SIZE));
        if (data && run == UINT64_MAX)
            run = pg;
        if (!data && run != UINT64_MAX) {
            uint64_t len = (pg - run) * GUEST_PAGE_SIZE;
            if (copy_run(out, r, from_fd, run * GUEST_PAGE_SIZE, len, file_off) < 0)
                return -1;
            *written += len;
            run = UINT64_MAX;
        }
    }
    return 0;
}

static int write_region_full(int out, const struct guest_mem_region *r, uint64_t file_off,
                             uint64_t *written)
{
    uint64_t pages = r->size / GUEST_PAGE_SIZE;
    if (r->fd >= 0 && fd_is_memfd(r->fd)) {
        /* Pages the guest never touched are holes in the memfd: skip them
         * without reading (and so without allocating) them. */
        off_t pos = (off_t)r->fd_offset, end = (off_t)(r->fd_offset + r->size);
        while (pos < end) {
            off_t d = lseek(r->fd, pos, SEEK_DATA);
            if (d < 0 || d >= end)
                break;
            off_t h = lseek(r->fd, d, SEEK_HOLE);
            if (h < 0 || h > end)
                h = end;
            uint64_t a = (uint64_t)(d - (off_t)r->fd_offset) / GUEST_PAGE_SIZE;
            uint64_t b =
                ((uint64_t)(h - (off_t)r->fd_offset) + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE;
            if (write_pages(out, r, true, file_off, a, MIN(b, pages), false, written) < 0)
                return -1;
            pos = h;
        }
        return 0;
    }
    return write_pages(out, r, false, file_off, 0, pages, false, written);
}

static int write_region_dirty(int out, const struct guest_mem_region *r, uint64_t file_off,
                              const uint64_t *bitmap, uint64_t *written)
{
    uint64_t pages = r->size / GUEST_PAGE_SIZE;
    bool from_fd = r->fd >= 0 && fd_is_memfd(r->fd);
    for (uint64_t pg = 0; pg < pages;) {
        if (!(bitmap[pg / 64] >> (pg % 64) & 1)) {
            pg++;
            continue;
        }
        uint64_t e = pg;
        while (e < pages && (bitmap[e / 64] >> (e % 64) & 1))
            e++;
        if (write_pages(out, r, from_fd, file_off, pg, e, true, written) < 0)
            return -1;
        pg = e;
    }
    return 0;
}

static void random_id(char out[33])
{
    uint8_t b[16];
    if (getrandom(b, sizeof(b), 0) != sizeof(b)) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        for (size_t i = 0; i < sizeof(b); i++)
            b[i] = (uint8_t)((ts.tv_nsec >> (i % 8)) ^ getpid() ^ i);
    }
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", b[i]);
}

struct save_ctx {
    struct vm_control *ctl;
    struct snapshot_session *s;
    bool diff, disks;
    const char *tmp;
    char id[33];
    struct snapshot_stats *st;
    char *frozen[VM_MAX_DISKS]; /* disk images frozen by this snapshot */
    bool precopied;             /* memory file written while the VM ran */
};

/* Disk layer: each writable disk, found in the machine's device list, is
 * frozen as it is now and the VM goes on writing into a new overlay next to
 * it, so the snapshot's disks never change again. */
static int freeze_disk(struct virtio_dev *d, void *opaque, vs_err *err)
{
    struct save_ctx *c = opaque;
    struct vm_config *cfg = (struct vm_config *)c->ctl->cfg;
    unsigned i;
    struct disk *disk = virtio_blk_disk(d, &i);
    if (!disk || i >= cfg->ndisks || cfg->disks[i].readonly || c->frozen[i])
        return 0;
    struct vm_disk_config *dc = &cfg->disks[i];
    char *next = NULL;
    if (asprintf(&next, "%s.after-%.8s.qcow2", dc->path, c->id) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    if (disk_push_overlay(disk, next, err) < 0) {
        free(next);
        return -1;
    }
    c->frozen[i] = dc->path;
    dc->path = next;
    free(dc->format);
    dc->format = strdup("qcow2");
    return 0;
}

static int freeze_disks(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    struct virtio_set *devs = ctl->devices ? ctl->devices(ctl->machine) : NULL;
    if (virtio_set_foreach(devs, freeze_disk, c, err) < 0)
        return -1;
    for (unsigned i = 0; i < ctl->cfg->ndisks; i++)
        if (!ctl->cfg->disks[i].readonly && !c->frozen[i])
            return vs_error(err, ENOENT, "disk %s: the machine has no device serving it",
                            ctl->cfg->disks[i].path);
    return 0;
}

static uint64_t region_file_offset(const struct guest_mem *mem, unsigned i)
{
    uint64_t off = 0;
    for (unsigned k = 0; k < i; k++)
        off = ALIGN_UP(off + mem->regions[k].size, REGION_ALIGN);
    return off;
}

/* Full snapshot of a running VM: copy all memory while it runs, with dirty
 * logging on, so the pause only has to copy what changed meanwhile. */
static int precopy(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    void *m = ctl->machine;
    struct guest_mem *mem = ctl->memory(m);
    if (ctl->pause(m, err) < 0)
        return -1;
    /* Draining the log ends the previous interval: until this snapshot
     * exists no diff may be taken. */
    int rc = c->s->dirty_log ? 0 : ctl->enable_dirty_log(m, err);
    c->s->dirty_log = false;
    for (unsigned i = 0; rc == 0 && i < mem->nregions; i++) {
        uint64_t *scratch = calloc((mem->regions[i].size / GUEST_PAGE_SIZE + 63) / 64, 8);
        rc = scratch ? ctl->fetch_dirty_log(m, i, scratch, err)
                     : vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
        free(scratch);
    }
    vs_err rerr = {0};
    if (ctl->resume(m, &rerr) < 0)
        vs_warn("snapshot: resuming the VM failed: %s", rerr.msg);
    if (rc < 0)
        return -1;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/memory", c->tmp);
    int out = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return vs_error_errno(err, "%s", path);
    for (unsigned i = 0; rc == 0 && i < mem->nregions; i++)
        if (write_region_full(out, &mem->regions[i], region_file_offset(mem, i),
                              &c->st->memory_bytes) < 0)
            rc = vs_error_errno(err, "writing guest memory to %s", path);
    close(out);
    c->precopied = rc == 0;
    return rc;
}

/* Everything that needs the VM paused: state, features, memory. */
static int save_paused(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    void *m = ctl->machine;
    struct guest_mem *mem = ctl->memory(m);
    char path[PATH_MAX];

    /* Dirty tracking: a full snapshot starts a fresh interval (the first
     * fetch after enabling reports everything, so drain it now); a diff
     * takes the pages of the interval that ends here. */
    uint64_t *bitmaps[GUEST_MEM_MAX_REGIONS] = {0};
    int rc = -1, memfd = -1;
    struct state_writer w;
    struct vs_buf cpu;
    json_t *man = NULL;
    char *mtext = NULL;
    state_writer_init(&w);
    vs_buf_init(&cpu);
    bool want_log = ctl->enable_dirty_log && ctl->fetch_dirty_log;
    /* Right after a restore the pages written since are known without a
     * dirty log (pagemap_dirty); after that, from the log. */
    bool from_pagemap = c->diff && !c->s->dirty_log && c->s->since_restore;
    if (c->diff && !(snapshot_session_diff_possible(c->s) && want_log)) {
        vs_error(err, EINVAL,
                 "a diff snapshot needs a full snapshot of this VM first (taken by this "
                 "process, or the one it was restored from)");
        goto out;
    }
    if (want_log && !c->s->dirty_log && !c->precopied && ctl->enable_dirty_log(m, err) < 0)
        goto out;
    for (unsigned i = 0; want_log && i < mem->nregions; i++) {
        size_t words = (mem->regions[i].size / GUEST_PAGE_SIZE + 63) / 64;
        bitmaps[i] = calloc(words, 8);
        if (!bitmaps[i]) {
            vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
            goto out;
        }
        if (ctl->fetch_dirty_log(m, i, bitmaps[i], err) < 0)
            goto out;
        /* that fetch only drained the log for the next interval */
        if (from_pagemap) {
            memset(bitmaps[i], 0, words * 8);
            if (pagemap_dirty(&mem->regions[i], bitmaps[i], err) < 0)
                goto out;
        }
    }

    if (ctl->save_state(m, &w, err) < 0 || state_writer_status(&w, err) < 0)
        goto out_w;
    if (ctl->cpu_features && ctl->cpu_features(m, &cpu, err) < 0)
        goto out_w;
    if (cpu.oom) {
        vs_error(err, ENOMEM, "out of memory");
        goto out_w;
    }

    snprintf(path, sizeof(path), "%s/memory", c->tmp);
    memfd = open(
        path, c->precopied ? O_WRONLY | O_CLOEXEC : O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (memfd < 0) {
        vs_error_errno(err, "%s", path);
        goto out_w;
    }
    json_t *regions = json_array();
    uint64_t off = 0;
    for (unsigned i = 0; i < mem->nregions; i++) {
        const struct guest_mem_region *r = &mem->regions[i];
        int wr = c->diff || c->precopied
                     ? write_region_dirty(memfd, r, off, bitmaps[i], &c->st->memory_bytes)
                     : write_region_full(memfd, r, off, &c->st->memory_bytes);
        if (wr < 0) {
            vs_error_errno(err, "writing guest memory to %s", path);
            json_decref(regions);
            goto out_w;
        }
        json_array_append_new(regions,
                              json_pack("{s:I, s:I, s:I}", "gpa", (json_int_t)r->gpa, "size",
                                        (json_int_t)r->size, "offset", (json_int_t)off));
        off = ALIGN_UP(off + r->size, REGION_ALIGN);
    }
    if (ftruncate(memfd, (off_t)off) < 0) {
        vs_error_errno(err, "%s", path);
        json_decref(regions);
        goto out_w;
    }

    /* Manifest */
    man = json_object();
    char created[64];
    time_t t = time(NULL);
    strftime(created, sizeof(created), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
    json_object_set_new(man, "format_version", json_integer(SNAP_VERSION));
    json_object_set_new(man, "id", json_string(c->id));
    json_object_set_new(man, "arch", json_string(vm_arch_name(ctl->arch)));
    json_object_set_new(man, "kind", json_string(c->diff ? "diff" : "full"));
    json_object_set_new(man, "created", json_string(created));
    json_object_set_new(man, "vessel_version", json_string("0.1.0"));
    if (c->diff)
        json_object_set_new(man, "parent",
                            json_pack("{s:s, s:s}", "path", c->s->last_dir, "id", c->s->last_id));
    json_t *cj = vm_config_to_json(ctl->cfg);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (c->frozen[i])
            json_object_set_new(json_array_get(json_object_get(cj, "disks"), i), "path",
                                json_string(c->frozen[i]));
    json_object_set_new(man, "config", cj);
    json_object_set_new(man, "memory",
                        json_pack("{s:s, s:o, s:I}", "file", "memory", "regions", regions,
                                  "file_size", (json_int_t)off));
    if (c->disks && freeze_disks(c, err) < 0)
        goto out_w;
    json_t *disks = json_array();
    for (unsigned i = 0; i < ctl->cfg->ndisks; i++) {
        const char *dpath = c->frozen[i] ? c->frozen[i] : ctl->cfg->disks[i].path;
        json_t *d =
            disk_identity_record(dpath, c->frozen[i] ? "qcow2" : ctl->cfg->disks[i].format, err);
        if (!d) {
            json_decref(disks);
            goto out_w;
        }
        json_array_append_new(disks, d);
        /* A restored VM's overlays live in a temporary directory: this
         * snapshot needs them kept. */
        const char *abs = json_string_value(json_object_get(d, "path"));
        if (!strncmp(abs, SNAPSHOT_RESTORE_TMP, strlen(SNAPSHOT_RESTORE_TMP))) {
            char keep[PATH_MAX + 16];
            snprintf(keep, sizeof(keep), "%.*s/%s", (int)(strrchr(abs, '/') - abs), abs,
                     SNAPSHOT_KEEP_FILE);
            int kfd = open(keep, O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
            if (kfd >= 0)
                close(kfd);
        }
    }
    json_object_set_new(man, "disks", disks);
    mtext = json_dumps(man, JSON_INDENT(1) | JSON_SORT_KEYS);
    if (!mtext) {
        vs_error(err, ENOMEM, "out of memory");
        goto out_w;
    }

    /* vmstate: header, then each blob 8-aligned. */
    struct vs_buf f;
    vs_buf_init(&f);
    vs_buf_reserve(&f, SNAP_HEADER_SIZE);
    struct snap_header h = {.version = SNAP_VERSION,
                            .arch =
                                ctl->arch == VM_ARCH_RISCV64 ? SNAP_ARCH_RISCV64 : SNAP_ARCH_X86_64,
                            .flags = c->diff ? SNAP_FLAG_DIFF : 0};
    const void *blob[SNAP_NBLOBS] = {mtext, cpu.data, w.buf.data, NULL};
    size_t blen[SNAP_NBLOBS] = {strlen(mtext), cpu.len, w.buf.len, 0};
    for (int b = 0; b < SNAP_NBLOBS; b++) {
        vs_buf_reserve(&f, ALIGN_UP(f.len, 8) - f.len);
        h.blob_off[b] = f.len;
        if (b == SNAP_BLOB_DIRTY && c->diff) {
            for (unsigned i = 0; i < mem->nregions; i++) {
                size_t words = (mem->regions[i].size / GUEST_PAGE_SIZE + 63) / 64;
                for (size_t k = 0; k < words; k++)
                    vs_buf_put_u64(&f, bitmaps[i][k]);
            }
            h.blob_len[b] = f.len - h.blob_off[b];
            continue;
        }
        if (blen[b])
            vs_buf_append(&f, blob[b], blen[b]);
        h.blob_len[b] = blen[b];
    }
    if (f.oom) {
        vs_buf_free(&f);
        vs_error(err, ENOMEM, "out of memory");
        goto out_w;
    }
    h.file_size = f.len;
    h.payload_crc = (uint32_t)crc32(0, f.data + SNAP_HEADER_SIZE, (uInt)(f.len - SNAP_HEADER_SIZE));
    snap_header_encode(&h, f.data);
    snprintf(path, sizeof(path), "%s/vmstate", c->tmp);
    int sfd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (sfd < 0 || vs_pwrite_full(sfd, f.data, f.len, 0) < 0) {
        vs_error_errno(err, "%s", path);
        if (sfd >= 0)
            close(sfd);
        vs_buf_free(&f);
        goto out_w;
    }
    close(sfd);
    c->st->state_bytes = f.len;
    vs_buf_free(&f);
    rc = 0;
out_w:
out:
    if (memfd >= 0)
        close(memfd);
    free(mtext);
    json_decref(man);
    state_writer_free(&w);
    vs_buf_free(&cpu);
    for (unsigned i = 0; i < GUEST_MEM_MAX_REGIONS; i++)
        free(bitmaps[i]);
    /* A failed snapshot consumed the dirty interval: the next diff would
     * miss pages, so only a full snapshot may follow. */
    c->s->dirty_log = want_log && rc == 0;
    return rc;
}

int snapshot_save(struct vm_control *ctl, struct snapshot_session *s, const char *dir,
                  unsigned flags, struct snapshot_stats *st, vs_err *err)
{
    struct snapshot_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof(*st));
    double t0 = now_ms();
    if (!dir || !*dir)
        return vs_error(err, EINVAL, "snapshot: no directory given");
    struct stat sb;
    if (lstat(dir, &sb) == 0)
        return vs_error(err, EEXIST, "snapshot directory %s already exists", dir);
    cleanup_free char *d1 = strdup(dir), *d2 = strdup(dir);
    if (!d1 || !d2)
        return vs_error(err, ENOMEM, "out of memory");
    char parent[PATH_MAX], abs[PATH_MAX + 256], tmp[PATH_MAX + 256];
    if (!realpath(dirname(d1), parent))
        return vs_error_errno(err, "snapshot directory %s", dir);
    const char *base = basename(d2);
    snprintf(abs, sizeof(abs), "%s/%s", parent, base);
    snprintf(tmp, sizeof(tmp), "%s/.%s.tmp-XXXXXX", parent, base);
    if (!mkdtemp(tmp))
        return vs_error_errno(err, "snapshot: cannot create a directory in %s", parent);

    void *m = ctl->machine;
    bool was_paused = ctl->is_paused(m);
    struct save_ctx c = {.ctl = ctl,
                         .s = s,
                         .diff = flags & SNAPSHOT_DIFF,
                         .disks = flags & SNAPSHOT_DISKS,
                         .tmp = tmp,
                         .st = st};
    random_id(c.id);
    if (!c.diff && !was_paused && ctl->enable_dirty_log && ctl->fetch_dirty_log &&
        precopy(&c, err) < 0) {
        remove_tree(tmp);
        return vs_error_prefix(err, "snapshot: ");
    }
    if (!was_paused && ctl->pause(m, err) < 0) {
        remove_tree(tmp);
        return vs_error_prefix(err, "snapshot: ");
    }
    double tp = now_ms();
    int rc = save_paused(&c, err);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        free(c.frozen[i]);
    st->pause_ms = now_ms() - tp;
    vs_err rerr = {0};
    if (!was_paused && ctl->resume(m, &rerr) < 0)
        vs_warn("snapshot: resuming the VM failed: %s", rerr.msg);
    /* Memory was copied while paused; making it durable need not be. */
    double ts = now_ms();
    static const char *const files[] = {"memory", "vmstate"};
    for (size_t i = 0; rc == 0 && i < ARRAY_SIZE(files); i++) {
        char fp[PATH_MAX + 300];
        snprintf(fp, sizeof(fp), "%s/%s", tmp, files[i]);
        int fd = open(fp, O_RDONLY | O_CLOEXEC);
        if (fd < 0 || fsync(fd) < 0)
            rc = vs_error_errno(err, "snapshot: fsync of %s", fp);
        if (fd >= 0)
            close(fd);
    }
    if (rc == 0 && chmod(tmp, 0755) < 0)
        rc = vs_error_errno(err, "snapshot: chmod %s", tmp);
    if (rc == 0) {
        int pfd = open(parent, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        int tfd = open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (tfd >= 0)
            fsync(tfd);
        if (rename(tmp, abs) < 0)
            rc = vs_error_errno(err, "snapshot: rename to %s", abs);
        else if (pfd >= 0)
            fsync(pfd);
        if (pfd >= 0)
            close(pfd);
        if (tfd >= 0)
            close(tfd);
    }
    st->sync_ms = now_ms() - ts;
    if (rc < 0) {
        remove_tree(tmp);
        s->dirty_log = false; /* the dirty interval is gone: next must be full */
        return -1;
    }
    free(s->last_dir);
    s->last_dir = strdup(abs);
    memcpy(s->last_id, c.id, sizeof(c.id));
    s->since_restore = false;
    st->total_ms = now_ms() - t0;
    return 0;
}
