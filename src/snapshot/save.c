/* Saving a VM's snapshot through a sink (sink.h: a directory, or a stream
 * on an fd that live migration sends), in steps: a pre-copy of memory while
 * the VM runs (full snapshots), then with the VM paused dirty tracking,
 * device state, memory, disk layers and the vmstate file; the sink commits
 * after the VM runs again. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "block/disk.h"
#include "vm/config_json.h"
#include "snapshot/disk_identity.h"
#include "snapshot/sink.h"
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

/* Where a region's pages go: the sink, at the region's offset in the
 * memory image, counting the bytes. From a memfd the sink copies from the
 * fd (sendfile moves page cache to page cache without touching the guest
 * mapping, much faster under KVM, which tracks that mapping). */
struct region_out {
    struct snapshot_sink *sink;
    const struct guest_mem_region *r;
    bool from_fd;
    uint64_t file_off;
    uint64_t *written;
};

/* Pages [first, end) of the region, skipping zero pages unless keep_zero;
 * kept zero pages go as zero records where the sink has them (a migration
 * stream), as data otherwise. */
static int write_pages(const struct region_out *o, uint64_t first, uint64_t end, bool keep_zero,
                       vs_err *err)
{
    const struct guest_mem_region *r = o->r;
    bool zero_records = keep_zero && o->sink->ops->zero_memory;
    uint64_t run = UINT64_MAX, zrun = UINT64_MAX;
    for (uint64_t pg = first; pg <= end; pg++) {
        bool zero =
            pg < end && (!keep_zero || zero_records) && page_is_zero(r->hva + pg * GUEST_PAGE_SIZE);
        bool data = pg < end && !zero;
        bool zdata = pg < end && zero && zero_records;
        if (zdata && zrun == UINT64_MAX)
            zrun = pg;
        if (!zdata && zrun != UINT64_MAX) {
            if (o->sink->ops->zero_memory(o->sink, o->file_off + zrun * GUEST_PAGE_SIZE,
                                          (pg - zrun) * GUEST_PAGE_SIZE, err) < 0)
                return -1;
            zrun = UINT64_MAX;
        }
        if (data && run == UINT64_MAX)
            run = pg;
        if (!data && run != UINT64_MAX) {
            uint64_t at = run * GUEST_PAGE_SIZE, len = (pg - run) * GUEST_PAGE_SIZE;
            if (o->sink->ops->write_memory(o->sink, o->file_off + at,
                                           o->from_fd ? NULL : r->hva + at, r->fd,
                                           r->fd_offset + at, len, err) < 0)
                return -1;
            *o->written += len;
            run = UINT64_MAX;
        }
    }
    return 0;
}

static int write_region_full(struct region_out *o, vs_err *err)
{
    const struct guest_mem_region *r = o->r;
    uint64_t pages = r->size / GUEST_PAGE_SIZE;
    if (!(r->fd >= 0 && fd_is_memfd(r->fd)))
        return write_pages(o, 0, pages, false, err);
    /* Pages the guest never touched are holes in the memfd: skip them
     * without reading (and so without allocating) them. */
    o->from_fd = true;
    off_t pos = (off_t)r->fd_offset, end = (off_t)(r->fd_offset + r->size);
    while (pos < end) {
        off_t d = lseek(r->fd, pos, SEEK_DATA);
        if (d < 0 || d >= end)
            break;
        off_t h = lseek(r->fd, d, SEEK_HOLE);
        if (h < 0 || h > end)
            h = end;
        uint64_t a = (uint64_t)(d - (off_t)r->fd_offset) / GUEST_PAGE_SIZE;
        uint64_t b = ((uint64_t)(h - (off_t)r->fd_offset) + GUEST_PAGE_SIZE - 1) / GUEST_PAGE_SIZE;
        if (write_pages(o, a, MIN(b, pages), false, err) < 0)
            return -1;
        pos = h;
    }
    return 0;
}

static int write_region_dirty(struct region_out *o, const uint64_t *bitmap, vs_err *err)
{
    uint64_t pages = o->r->size / GUEST_PAGE_SIZE;
    o->from_fd = o->r->fd >= 0 && fd_is_memfd(o->r->fd);
    for (uint64_t pg = 0; pg < pages;) {
        if (!(bitmap[pg / 64] >> (pg % 64) & 1)) {
            pg++;
            continue;
        }
        uint64_t e = pg;
        while (e < pages && (bitmap[e / 64] >> (e % 64) & 1))
            e++;
        if (write_pages(o, pg, e, true, err) < 0)
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
    struct snapshot_sink *sink;
    bool diff, disks;
    char id[33];
    struct snapshot_stats *st;
    char *frozen[VM_MAX_DISKS]; /* disk images frozen by this snapshot */
    bool precopied;             /* memory written while the VM ran */
    bool no_pages;              /* post-copy: the pages follow after the switch */
    /* guest memory as the pre-copy saw it, and as the pause does (both
     * stay readable: guest_mem.h) */
    const struct guest_mem_layout *pre, *mem;
    /* what the steps gather for the vmstate file */
    uint64_t **bitmaps;        /* dirty pages per region of mem */
    struct state_writer state; /* device state */
    struct vs_buf cpu;         /* CPU features */
    json_t *regions;           /* memory layout */
    uint64_t memory_size;      /* of the memory image */
};

static uint64_t region_file_offset(const struct guest_mem_layout *mem, unsigned i)
{
    uint64_t off = 0;
    for (unsigned k = 0; k < i; k++)
        off = ALIGN_UP(off + mem->r[k].size, REGION_ALIGN);
    return off;
}

static bool same_regions(const struct guest_mem_layout *a, const struct guest_mem_layout *b)
{
    if (a->n != b->n)
        return false;
    for (unsigned i = 0; i < a->n; i++)
        if (a->r[i].gpa != b->r[i].gpa || a->r[i].size != b->r[i].size)
            return false;
    return true;
}

static size_t bitmap_words(const struct guest_mem_region *r)
{
    return (r->size / GUEST_PAGE_SIZE + 63) / 64;
}

/* Full snapshot of a running VM: copy all memory while it runs, with dirty
 * logging on, so the pause only has to copy what changed meanwhile. */
static int precopy(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    void *m = ctl->machine;
    if (ctl->pause(m, err) < 0)
        return -1;
    /* Draining the log ends the previous interval: until this snapshot
     * exists no diff may be taken. */
    int rc = c->s->dirty_log ? 0 : ctl->enable_dirty_log(m, err);
    c->s->dirty_log = false;
    const struct guest_mem_layout *mem = c->pre = guest_mem_layout(ctl->memory(m));
    for (unsigned i = 0; rc == 0 && i < mem->n; i++) {
        uint64_t *scratch = calloc(bitmap_words(&mem->r[i]), 8);
        rc = scratch ? ctl->fetch_dirty_log(m, i, scratch, err)
                     : vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
        free(scratch);
    }
    vs_err rerr = {0};
    if (ctl->resume(m, &rerr) < 0)
        vs_warn("snapshot: resuming the VM failed: %s", rerr.msg);
    for (unsigned i = 0; rc == 0 && i < mem->n; i++) {
        struct region_out o = {.sink = c->sink,
                               .r = &mem->r[i],
                               .file_off = region_file_offset(mem, i),
                               .written = &c->st->memory_bytes};
        rc = write_region_full(&o, err);
    }
    c->precopied = rc == 0;
    return rc;
}

/* Step 1, dirty tracking: a full snapshot starts a fresh interval (the
 * first fetch after enabling reports everything, so drain it now); a diff
 * takes the pages of the interval that ends here. Right after a restore the
 * pages written since are known without a dirty log (pagemap_dirty); after
 * that, from the log. */
static int track_dirty(struct save_ctx *c, bool want_log, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    void *m = ctl->machine;
    bool from_pagemap = c->diff && !c->s->dirty_log && c->s->since_restore;
    if (c->diff && !(snapshot_session_diff_possible(c->s) && want_log))
        return vs_error(err, EINVAL,
                        "a diff snapshot needs a full snapshot of this VM first (taken by this "
                        "process, or the one it was restored from)");
    if (want_log && !c->s->dirty_log && !c->precopied && ctl->enable_dirty_log(m, err) < 0)
        return -1;
    /* The layout is the VM's while it is paused: memory is added and
     * removed through the same control API that takes snapshots, one
     * request at a time. */
    const struct guest_mem_layout *mem = c->mem = guest_mem_layout(ctl->memory(m));
    if (c->precopied && !same_regions(c->pre, mem))
        return vs_error(err, EBUSY, "guest memory changed while the snapshot was taken");
    c->bitmaps = calloc(mem->n ? mem->n : 1, sizeof(*c->bitmaps));
    if (!c->bitmaps)
        return vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
    for (unsigned i = 0; want_log && i < mem->n; i++) {
        size_t words = bitmap_words(&mem->r[i]);
        c->bitmaps[i] = calloc(words, 8);
        if (!c->bitmaps[i])
            return vs_error(err, ENOMEM, "out of memory for the dirty bitmap");
        if (ctl->fetch_dirty_log(m, i, c->bitmaps[i], err) < 0)
            return -1;
        /* that fetch only drained the log for the next interval */
        if (from_pagemap) {
            memset(c->bitmaps[i], 0, words * 8);
            if (pagemap_dirty(&mem->r[i], c->bitmaps[i], err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Step 2, device state: every vCPU and device as state sections (each
 * device with its backend's), and the host CPU features they depend on. */
static int save_devices(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    if (ctl->save_state(ctl->machine, &c->state, err) < 0 ||
        state_writer_status(&c->state, err) < 0)
        return -1;
    if (ctl->cpu_features && ctl->cpu_features(ctl->machine, &c->cpu, err) < 0)
        return -1;
    if (c->cpu.oom)
        return vs_error(err, ENOMEM, "out of memory");
    return 0;
}

/* Step 3, memory: every non-zero page (a full snapshot not pre-copied), or
 * the dirty ones (a diff, or what changed since the pre-copy), at each
 * region's 2 MiB aligned offset of the memory image. */
static int save_memory(struct save_ctx *c, vs_err *err)
{
    const struct guest_mem_layout *mem = c->mem;
    c->regions = json_array();
    if (!c->regions)
        return vs_error(err, ENOMEM, "out of memory");
    uint64_t off = 0;
    for (unsigned i = 0; i < mem->n; i++) {
        const struct guest_mem_region *r = &mem->r[i];
        struct region_out o = {
            .sink = c->sink, .r = r, .file_off = off, .written = &c->st->memory_bytes};
        int wr = c->no_pages               ? 0
                 : c->diff || c->precopied ? write_region_dirty(&o, c->bitmaps[i], err)
                                           : write_region_full(&o, err);
        if (wr < 0)
            return -1;
        json_array_append_new(c->regions, snapshot_region_json(r->gpa, r->size, off));
        off = ALIGN_UP(off + r->size, REGION_ALIGN);
    }
    c->memory_size = off;
    return c->sink->ops->memory_size(c->sink, off, err);
}

/* Step 4, disk layers: each writable disk, found in the machine's device
 * list, is frozen as it is now and the VM goes on writing into a new
 * overlay next to it, so the snapshot's disks never change again. */
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

/* The identity of each disk as the snapshot leaves it (the frozen image
 * for a frozen one), checked again at restore. */
static json_t *disk_records(struct save_ctx *c, vs_err *err)
{
    const struct vm_config *cfg = c->ctl->cfg;
    json_t *disks = json_array();
    for (unsigned i = 0; disks && i < cfg->ndisks; i++) {
        const char *dpath = c->frozen[i] ? c->frozen[i] : cfg->disks[i].path;
        json_t *d = disk_identity_record(dpath, c->frozen[i] ? "qcow2" : cfg->disks[i].format, err);
        if (!d) {
            json_decref(disks);
            return NULL;
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
    if (!disks)
        vs_error(err, ENOMEM, "out of memory");
    return disks;
}

static json_t *manifest(struct save_ctx *c, json_t *disks)
{
    struct vm_control *ctl = c->ctl;
    json_t *man = json_object();
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
    /* the configuration names the frozen images, not the overlays the VM
     * went on with */
    json_t *cj = vm_config_to_json(ctl->cfg);
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        if (c->frozen[i])
            json_object_set_new(json_array_get(json_object_get(cj, "disks"), i), "path",
                                json_string(c->frozen[i]));
    json_object_set_new(man, "config", cj);
    json_object_set_new(man, "memory",
                        json_pack("{s:s, s:O, s:I}", "file", "memory", "regions", c->regions,
                                  "file_size", (json_int_t)c->memory_size));
    json_object_set_new(man, "disks", disks);
    return man;
}

/* Step 5, vmstate: the header, then each blob 8-aligned (manifest, CPU
 * features, device state, a diff's dirty bitmap). */
static int save_vmstate(struct save_ctx *c, json_t *disks, vs_err *err)
{
    const struct guest_mem_layout *mem = c->mem;
    json_t *man = manifest(c, disks);
    cleanup_free char *mtext = json_dumps(man, JSON_INDENT(1) | JSON_SORT_KEYS);
    json_decref(man);
    if (!mtext)
        return vs_error(err, ENOMEM, "out of memory");
    struct vs_buf f;
    vs_buf_init(&f);
    vs_buf_reserve(&f, SNAP_HEADER_SIZE);
    struct snap_header h = {.version = SNAP_VERSION,
                            .arch = c->ctl->arch == VM_ARCH_RISCV64 ? SNAP_ARCH_RISCV64
                                                                    : SNAP_ARCH_X86_64,
                            .flags = c->diff ? SNAP_FLAG_DIFF : 0};
    const void *blob[SNAP_NBLOBS] = {mtext, c->cpu.data, c->state.buf.data, NULL};
    size_t blen[SNAP_NBLOBS] = {strlen(mtext), c->cpu.len, c->state.buf.len, 0};
    for (int b = 0; b < SNAP_NBLOBS; b++) {
        vs_buf_reserve(&f, ALIGN_UP(f.len, 8) - f.len);
        h.blob_off[b] = f.len;
        if (b == SNAP_BLOB_DIRTY && c->diff) {
            for (unsigned i = 0; i < mem->n; i++)
                for (size_t k = 0; k < bitmap_words(&mem->r[i]); k++)
                    vs_buf_put_u64(&f, c->bitmaps[i][k]);
            h.blob_len[b] = f.len - h.blob_off[b];
            continue;
        }
        if (blen[b])
            vs_buf_append(&f, blob[b], blen[b]);
        h.blob_len[b] = blen[b];
    }
    int rc = -1;
    if (f.oom) {
        vs_error(err, ENOMEM, "out of memory");
        goto out;
    }
    h.file_size = f.len;
    h.payload_crc = (uint32_t)crc32(0, f.data + SNAP_HEADER_SIZE, (uInt)(f.len - SNAP_HEADER_SIZE));
    snap_header_encode(&h, f.data);
    rc = c->sink->ops->write_vmstate(c->sink, f.data, f.len, err);
    c->st->state_bytes = f.len;
out:
    vs_buf_free(&f);
    return rc;
}

/* Everything that needs the VM paused, step by step. */
static int save_paused(struct save_ctx *c, vs_err *err)
{
    struct vm_control *ctl = c->ctl;
    bool want_log = ctl->enable_dirty_log && ctl->fetch_dirty_log;
    json_t *disks = NULL;
    int rc = -1;
    if (track_dirty(c, want_log, err) == 0 && save_devices(c, err) == 0 &&
        save_memory(c, err) == 0 && (!c->disks || freeze_disks(c, err) == 0) &&
        (disks = disk_records(c, err)) != NULL)
        rc = save_vmstate(c, disks, err);
    /* A failed snapshot consumed the dirty interval: the next diff would
     * miss pages, so only a full snapshot may follow. */
    c->s->dirty_log = want_log && rc == 0;
    return rc;
}

static void save_ctx_free(struct save_ctx *c)
{
    for (unsigned i = 0; i < VM_MAX_DISKS; i++)
        free(c->frozen[i]);
    for (unsigned i = 0; c->bitmaps && i < c->mem->n; i++)
        free(c->bitmaps[i]);
    free(c->bitmaps);
    state_writer_free(&c->state);
    vs_buf_free(&c->cpu);
    json_decref(c->regions);
}

int snapshot_save_to(struct vm_control *ctl, struct snapshot_session *s, struct snapshot_sink *sink,
                     unsigned flags, struct snapshot_stats *st, vs_err *err)
{
    struct snapshot_stats dummy;
    if (!st)
        st = &dummy;
    memset(st, 0, sizeof(*st));
    double t0 = now_ms();
    void *m = ctl->machine;
    bool was_paused = ctl->is_paused(m);
    struct save_ctx c = {.ctl = ctl,
                         .s = s,
                         .sink = sink,
                         .diff = flags & SNAPSHOT_DIFF,
                         .disks = flags & SNAPSHOT_DISKS,
                         .st = st};
    state_writer_init(&c.state);
    vs_buf_init(&c.cpu);
    random_id(c.id);
    if ((!c.diff && !was_paused && ctl->enable_dirty_log && ctl->fetch_dirty_log &&
         precopy(&c, err) < 0) ||
        (!was_paused && ctl->pause(m, err) < 0)) {
        save_ctx_free(&c);
        return vs_error_prefix(err, "snapshot: ");
    }
    double tp = now_ms();
    int rc = save_paused(&c, err);
    save_ctx_free(&c);
    st->pause_ms = now_ms() - tp;
    vs_err rerr = {0};
    if (!was_paused && ctl->resume(m, &rerr) < 0)
        vs_warn("snapshot: resuming the VM failed: %s", rerr.msg);
    /* Memory was copied while paused; making it durable need not be. */
    double ts = now_ms();
    if (rc == 0)
        rc = sink->ops->commit(sink, err);
    st->sync_ms = now_ms() - ts;
    if (rc < 0) {
        s->dirty_log = false; /* the dirty interval is gone: next must be full */
        return -1;
    }
    if (sink->path) {
        free(s->last_dir);
        s->last_dir = strdup(sink->path);
        memcpy(s->last_id, c.id, sizeof(c.id));
        s->since_restore = false;
    } else {
        /* a stream's snapshot is nothing a later diff can name as its
         * parent: the next diff of this session needs a full first */
        s->dirty_log = false;
    }
    st->total_ms = now_ms() - t0;
    return 0;
}

int snapshot_save(struct vm_control *ctl, struct snapshot_session *s, const char *dir,
                  unsigned flags, struct snapshot_stats *st, vs_err *err)
{
    struct snapshot_sink *sink;
    if (snapshot_sink_dir(dir, &sink, err) < 0) {
        if (st)
            memset(st, 0, sizeof(*st));
        return -1;
    }
    int rc = snapshot_save_to(ctl, s, sink, flags, st, err);
    snapshot_sink_close(sink);
    return rc;
}

/* ---- live migration (migrate/source.c) ---- */

uint64_t snapshot_region_offset(const struct guest_mem_layout *mem, unsigned i)
{
    return region_file_offset(mem, i);
}

json_t *snapshot_region_json(uint64_t gpa, uint64_t size, uint64_t offset)
{
    return json_pack("{s:I, s:I, s:I}", "gpa", (json_int_t)gpa, "size", (json_int_t)size, "offset",
                     (json_int_t)offset);
}

bool snapshot_region_parse(const json_t *r, uint64_t image_size, uint64_t *gpa, uint64_t *size,
                           uint64_t *offset)
{
    json_int_t g = json_integer_value(json_object_get(r, "gpa"));
    json_int_t sz = json_integer_value(json_object_get(r, "size"));
    json_int_t off = json_integer_value(json_object_get(r, "offset"));
    if (g < 0 || sz <= 0 || off < 0 || (uint64_t)g % GUEST_PAGE_SIZE ||
        (uint64_t)sz % GUEST_PAGE_SIZE || (uint64_t)off % GUEST_PAGE_SIZE ||
        (uint64_t)sz > image_size || (uint64_t)off > image_size - (uint64_t)sz ||
        (uint64_t)g > UINT64_MAX - (uint64_t)sz)
        return false;
    *gpa = (uint64_t)g;
    *size = (uint64_t)sz;
    *offset = (uint64_t)off;
    return true;
}

int snapshot_send_region(struct snapshot_sink *sink, const struct guest_mem_layout *mem, unsigned i,
                         const uint64_t *bitmap, uint64_t *written, vs_err *err)
{
    struct region_out o = {
        .sink = sink, .r = &mem->r[i], .file_off = region_file_offset(mem, i), .written = written};
    return bitmap ? write_region_dirty(&o, bitmap, err) : write_region_full(&o, err);
}

static int flush_disk(struct virtio_dev *d, void *opaque, vs_err *err)
{
    unsigned i;
    struct disk *disk = virtio_blk_disk(d, &i);
    if (!disk || disk->readonly)
        return 0;
    int rc = disk_flush(disk);
    if (rc < 0)
        return vs_error(err, -rc, "disk %s: flush failed: %s", disk->path, strerror(-rc));
    return 0;
}

int snapshot_save_final(struct vm_control *ctl, struct snapshot_sink *sink,
                        const struct guest_mem_layout *pre, uint64_t **pending, bool postcopy,
                        struct snapshot_stats *st, vs_err *err)
{
    memset(st, 0, sizeof(*st));
    if (!ctl->is_paused(ctl->machine))
        return vs_error(err, EINVAL, "migration: the VM must be paused for its last round");
    if (!ctl->enable_dirty_log || !ctl->fetch_dirty_log)
        return vs_error(err, ENOTSUP, "migration: this machine cannot track dirty pages");
    /* a throwaway session: rounds of a migration are no snapshot parent */
    struct snapshot_session session = {.dirty_log = true};
    struct save_ctx c = {
        .ctl = ctl, .s = &session, .sink = sink, .st = st, .precopied = true, .pre = pre};
    state_writer_init(&c.state);
    vs_buf_init(&c.cpu);
    random_id(c.id);
    double t0 = now_ms();
    struct virtio_set *devs = ctl->devices ? ctl->devices(ctl->machine) : NULL;
    json_t *disks = NULL;
    int rc = -1;
    /* The destination opens shared disks after this: every write the
     * guest completed must be in the image first. */
    if (virtio_set_foreach(devs, flush_disk, NULL, err) == 0 && track_dirty(&c, true, err) == 0) {
        for (unsigned i = 0; pending && i < c.mem->n; i++)
            for (size_t k = 0; pending[i] && k < bitmap_words(&c.mem->r[i]); k++) {
                c.bitmaps[i][k] |= pending[i][k];
                if (postcopy)
                    pending[i][k] = c.bitmaps[i][k];
            }
        c.no_pages = postcopy && pending;
        if (save_devices(&c, err) == 0 && save_memory(&c, err) == 0 &&
            (disks = disk_records(&c, err)) != NULL)
            rc = save_vmstate(&c, disks, err);
    }
    save_ctx_free(&c);
    snapshot_session_free(&session);
    st->pause_ms = st->total_ms = now_ms() - t0;
    return rc;
}
