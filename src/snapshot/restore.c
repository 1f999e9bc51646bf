/* Opening, validating and mapping a snapshot, and running it. Everything
 * that can be wrong with a snapshot is found in snapshot_image_open, before
 * a machine or a vCPU exists. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "block/qcow2.h"
#include "vm/config_json.h"
#include "snapshot/disk_identity.h"
#include "snapshot/snapshot.h"
#include "util/cleanup.h"
#include "util/io.h"
#include "util/log.h"
#include "vm/machine.h"

#define MAX_CHAIN 64
#define MAX_VMSTATE (256u << 20)
#define MAX_OVERLAY_MAPPINGS 16384

static int read_file(const char *path, uint8_t **out, size_t *len, vs_err *err)
{
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) < 0)
        return vs_error_errno(err, "%s", path);
    if ((uint64_t)st.st_size > MAX_VMSTATE)
        return vs_error(err, EFBIG, "%s is too large to be a snapshot state file", path);
    uint8_t *b = malloc(st.st_size ? (size_t)st.st_size : 1);
    if (!b)
        return vs_error(err, ENOMEM, "out of memory");
    if (vs_read_full(fd, b, (size_t)st.st_size) < 0) {
        free(b);
        return vs_error_errno(err, "%s", path);
    }
    *out = b;
    *len = (size_t)st.st_size;
    return 0;
}

static int open_depth(const char *dir, int expect_arch, int depth, struct snapshot_image *img,
                      vs_err *err);

static const json_t *regions_of(const json_t *man)
{
    return json_object_get(json_object_get(man, "memory"), "regions");
}

static int check_memory(struct snapshot_image *img, vs_err *err)
{
    const json_t *regions = regions_of(img->manifest);
    if (!json_is_array(regions) || json_array_size(regions) == 0 ||
        json_array_size(regions) > GUEST_MEM_MAX_REGIONS)
        return vs_error(err, EINVAL, "snapshot manifest: bad memory region list");
    json_int_t fsize =
        json_integer_value(json_object_get(json_object_get(img->manifest, "memory"), "file_size"));
    size_t i;
    json_t *r;
    uint64_t bitmap_bytes = 0;
    json_array_foreach(regions, i, r)
    {
        uint64_t gpa, size, off;
        if (fsize < 0 || !snapshot_region_parse(r, (uint64_t)fsize, &gpa, &size, &off))
            return vs_error(err, EINVAL, "snapshot manifest: memory region %zu is invalid", i);
        bitmap_bytes += (size / GUEST_PAGE_SIZE + 63) / 64 * 8;
    }
    if ((img->hdr.flags & SNAP_FLAG_DIFF) && img->hdr.blob_len[SNAP_BLOB_DIRTY] != bitmap_bytes)
        return vs_error(err, EINVAL, "snapshot dirty bitmap does not match its memory regions");
    if (!img->dir)
        return 0; /* a stream: the receiver holds the memory */
    char path[PATH_MAX];
    snprintf(path, sizeof(path), "%s/memory", img->dir);
    struct stat st;
    if (stat(path, &st) < 0)
        return vs_error_errno(err, "snapshot memory file %s", path);
    if (st.st_size < fsize)
        return vs_error(err, EINVAL, "snapshot memory file %s is truncated (%lld of %lld bytes)",
                        path, (long long)st.st_size, (long long)fsize);
    return 0;
}

/* Everything in img->vmstate, checked: header and CRC, machine type,
 * manifest, configuration, CPU features, memory regions, device state and
 * disks (the newest snapshot's are verified). Returns -2 when err should
 * name the snapshot. */
static int image_parse(struct snapshot_image *img, int expect_arch, int depth, vs_err *err)
{
    if (snap_vmstate_check(img->vmstate, img->vmstate_len, &img->hdr, err) < 0)
        return -1;
    img->arch = img->hdr.arch == SNAP_ARCH_RISCV64 ? VM_ARCH_RISCV64 : VM_ARCH_X86_64;
    if (expect_arch >= 0 && (enum vm_arch)expect_arch != img->arch) {
        enum vm_arch want = (enum vm_arch)expect_arch;
        vs_error(err, EINVAL,
                 "snapshot was taken on %s %s machine%s and cannot be restored on %s %s machine",
                 img->arch == VM_ARCH_X86_64 ? "an" : "a", vm_arch_name(img->arch),
                 img->arch == VM_ARCH_X86_64 ? " (KVM)" : " (emulated)",
                 want == VM_ARCH_X86_64 ? "an" : "a", vm_arch_name(want));
        return -1;
    }
    json_error_t jerr;
    img->manifest = json_loadb((const char *)img->vmstate + img->hdr.blob_off[SNAP_BLOB_MANIFEST],
                               img->hdr.blob_len[SNAP_BLOB_MANIFEST], 0, &jerr);
    if (!img->manifest) {
        vs_error(err, EINVAL, "snapshot manifest is not valid JSON: %s", jerr.text);
        return -1;
    }
    const char *id = json_string_value(json_object_get(img->manifest, "id"));
    const char *march = json_string_value(json_object_get(img->manifest, "arch"));
    if (!id || strlen(id) >= sizeof(img->id) || !march || strcmp(march, vm_arch_name(img->arch))) {
        vs_error(err, EINVAL, "snapshot manifest: missing id or wrong machine type");
        return -1;
    }
    strcpy(img->id, id);
    if (vm_config_from_json(json_object_get(img->manifest, "config"), &img->cfg, err) < 0)
        return -2;
    if (img->cfg.arch != img->arch) {
        vs_error(err, EINVAL, "configuration is for another machine type than the state");
        return -2;
    }
    if (snapshot_check_cpu_features(img->arch, img->vmstate + img->hdr.blob_off[SNAP_BLOB_CPU],
                                    img->hdr.blob_len[SNAP_BLOB_CPU], err) < 0)
        return -1;
    if (check_memory(img, err) < 0)
        return -1;
    if (state_reader_init(&img->state, img->vmstate + img->hdr.blob_off[SNAP_BLOB_STATE],
                          img->hdr.blob_len[SNAP_BLOB_STATE], err) < 0)
        return -2;
    json_t *disks = json_object_get(img->manifest, "disks");
    if (json_array_size(disks) != img->cfg.ndisks) {
        vs_error(err, EINVAL, "snapshot manifest: disk list does not match the configuration");
        return -1;
    }
    size_t i;
    json_t *d;
    /* Only the newest snapshot's disk records count: a diff's parent saw
     * the disks as they were earlier. */
    json_array_foreach(disks, i, d)
    {
        if (depth == 0 && !(i < 64 && (img->moved_disks >> i & 1)) &&
            disk_identity_verify(d, err) < 0)
            return -1;
    }
    return 0;
}

int snapshot_image_open(const char *dir, int expect_arch, struct snapshot_image *img, vs_err *err)
{
    return open_depth(dir, expect_arch, 0, img, err);
}

static int open_depth(const char *dir, int expect_arch, int depth, struct snapshot_image *img,
                      vs_err *err)
{
    memset(img, 0, sizeof(*img));
    vm_config_init(&img->cfg);
    guest_mem_init(&img->mem);
    if (depth > MAX_CHAIN)
        return vs_error(err, ELOOP, "snapshot %s: chain of diff snapshots is too long", dir);
    char abs[PATH_MAX];
    if (!realpath(dir, abs))
        return vs_error_errno(err, "snapshot %s", dir);
    img->dir = strdup(abs);
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/vmstate", abs);
    if (read_file(path, &img->vmstate, &img->vmstate_len, err) < 0)
        goto fail;
    int rc = image_parse(img, expect_arch, depth, err);
    if (rc < 0) {
        if (rc == -2)
            vs_error_prefix(err, "snapshot %s: ", abs);
        goto fail;
    }
    if (img->hdr.flags & SNAP_FLAG_DIFF) {
        json_t *par = json_object_get(img->manifest, "parent");
        const char *ppath = json_string_value(json_object_get(par, "path"));
        const char *pid = json_string_value(json_object_get(par, "id"));
        if (!ppath || !pid) {
            vs_error(err, EINVAL, "diff snapshot names no parent");
            goto fail;
        }
        img->parent = calloc(1, sizeof(*img->parent));
        if (!img->parent || open_depth(ppath, (int)img->arch, depth + 1, img->parent, err) < 0) {
            vs_error_prefix(err, "parent of diff snapshot %s: ", abs);
            goto fail;
        }
        if (strcmp(img->parent->id, pid)) {
            vs_error(err, EINVAL,
                     "diff snapshot %s: its parent %s was replaced by another snapshot", abs,
                     ppath);
            goto fail;
        }
        if (!json_equal((json_t *)regions_of(img->manifest),
                        (json_t *)regions_of(img->parent->manifest))) {
            vs_error(err, EINVAL, "diff snapshot %s: memory layout differs from its parent", abs);
            goto fail;
        }
    }
    return 0;
fail:
    snapshot_image_close(img);
    return -1;
}

int snapshot_image_from_vmstate(uint8_t *vmstate, size_t len, int expect_arch, uint64_t moved_disks,
                                struct snapshot_image *img, vs_err *err)
{
    memset(img, 0, sizeof(*img));
    img->moved_disks = moved_disks;
    vm_config_init(&img->cfg);
    guest_mem_init(&img->mem);
    img->vmstate = vmstate;
    img->vmstate_len = len;
    if (image_parse(img, expect_arch, 0, err) < 0 ||
        ((img->hdr.flags & SNAP_FLAG_DIFF) &&
         vs_error(err, EINVAL, "a diff snapshot cannot arrive as a stream") < 0)) {
        snapshot_image_close(img);
        return -1;
    }
    return 0;
}

void snapshot_image_close(struct snapshot_image *img)
{
    if (img->parent) {
        snapshot_image_close(img->parent);
        free(img->parent);
    }
    guest_mem_destroy(&img->mem);
    vm_config_free(&img->cfg);
    json_decref(img->manifest);
    free(img->vmstate);
    free(img->dir);
    memset(img, 0, sizeof(*img));
    guest_mem_init(&img->mem);
}

/* Lay the pages a diff snapshot holds over the mapping below it. */
static int overlay_diff(struct snapshot_image *img, uint8_t **hva, unsigned nregions,
                        unsigned *nmaps, vs_err *err)
{
    if (img->parent && overlay_diff(img->parent, hva, nregions, nmaps, err) < 0)
        return -1;
    if (!(img->hdr.flags & SNAP_FLAG_DIFF))
        return 0;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/memory", img->dir);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    const uint8_t *bm = img->vmstate + img->hdr.blob_off[SNAP_BLOB_DIRTY];
    const json_t *regions = regions_of(img->manifest);
    for (unsigned i = 0; i < nregions; i++) {
        const json_t *r = json_array_get(regions, i);
        uint64_t size = (uint64_t)json_integer_value(json_object_get(r, "size"));
        uint64_t off = (uint64_t)json_integer_value(json_object_get(r, "offset"));
        uint64_t pages = size / GUEST_PAGE_SIZE;
#define BIT(pg) ((bm[(pg) / 8] >> ((pg) % 8)) & 1)
        for (uint64_t pg = 0; pg < pages;) {
            if (!BIT(pg)) {
                pg++;
                continue;
            }
            uint64_t e = pg;
            while (e < pages && BIT(e))
                e++;
            uint64_t len = (e - pg) * GUEST_PAGE_SIZE, at = pg * GUEST_PAGE_SIZE;
            if (++*nmaps < MAX_OVERLAY_MAPPINGS) {
                if (mmap(hva[i] + at, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_FIXED, fd,
                         (off_t)(off + at)) == MAP_FAILED)
                    return vs_error_errno(err, "mapping %s", path);
            } else if (pread(fd, hva[i] + at, len, (off_t)(off + at)) != (ssize_t)len) {
                return vs_error_errno(err, "reading %s", path);
            }
            pg = e;
        }
#undef BIT
        bm += (pages + 63) / 64 * 8;
    }
    return 0;
}

int snapshot_image_map(struct snapshot_image *img, vs_err *err)
{
    struct snapshot_image *base = img;
    while (base->parent)
        base = base->parent;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof(path), "%s/memory", base->dir);
    cleanup_close int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    const json_t *regions = regions_of(img->manifest);
    uint8_t *hva[GUEST_MEM_MAX_REGIONS];
    unsigned n = (unsigned)json_array_size(regions);
    for (unsigned i = 0; i < n; i++) {
        const json_t *r = json_array_get(regions, i);
        uint64_t gpa = (uint64_t)json_integer_value(json_object_get(r, "gpa"));
        uint64_t size = (uint64_t)json_integer_value(json_object_get(r, "size"));
        uint64_t off = (uint64_t)json_integer_value(json_object_get(r, "offset"));
        /* Copy-on-write from the page cache: clones of one snapshot share
         * every page none of them has written. */
        hva[i] =
            mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_NORESERVE, fd, (off_t)off);
        if (hva[i] == MAP_FAILED)
            return vs_error_errno(err, "mapping %s", path);
        int rfd = dup(fd);
        if (guest_mem_add_region(&img->mem, gpa, size, hva[i], rfd, off, err) < 0) {
            munmap(hva[i], size);
            if (rfd >= 0)
                close(rfd);
            return -1;
        }
    }
    unsigned nmaps = 0;
    return overlay_diff(img, hva, n, &nmaps, err);
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int snapshot_apply_net_overrides(struct vm_config *cfg, const struct snapshot_net_override *nets,
                                 unsigned nnets, vs_err *err)
{
    for (unsigned i = 0; i < nnets; i++) {
        const struct snapshot_net_override *n = &nets[i];
        if (n->index >= cfg->nnets)
            return vs_error(err, EINVAL, "--net %u: the VM has %u network device(s)", n->index,
                            cfg->nnets);
        struct vm_net_config *nc = &cfg->nets[n->index];
        if (n->tap) {
            if (nc->kind != VM_NET_TAP)
                return vs_error(err, EINVAL,
                                "--net %u,tap=: the VM's network device %u is not on a tap",
                                n->index, n->index);
            free(nc->tap);
            nc->tap = xstrdup(n->tap);
            if (!nc->tap)
                return vs_error(err, ENOMEM, "out of memory");
        }
        if (n->mac_set) {
            memcpy(nc->mac, n->mac, 6);
            nc->mac_set = true;
        }
    }
    return 0;
}

int snapshot_parse_net_override(char *spec, struct snapshot_net_override *o, vs_err *err)
{
    memset(o, 0, sizeof(*o));
    char *save = NULL, *tok = strtok_r(spec, ",", &save);
    char *end;
    unsigned long idx = tok ? strtoul(tok, &end, 10) : 0;
    if (!tok || end == tok || *end || idx >= VM_MAX_NETS)
        return vs_error(err, EINVAL, "--net: expected I,tap=NAME[,mac=MAC] (I: 0..%d)",
                        VM_MAX_NETS - 1);
    o->index = (unsigned)idx;
    while ((tok = strtok_r(NULL, ",", &save))) {
        if (!strncmp(tok, "tap=", 4) && tok[4] && strlen(tok + 4) < 16)
            o->tap = tok + 4;
        else if (!strncmp(tok, "mac=", 4) && vm_parse_mac(tok + 4, o->mac) == 0)
            o->mac_set = true;
        else
            return vs_error(err, EINVAL, "--net: '%s' is not tap=NAME (under 16 bytes) or mac=MAC",
                            tok);
    }
    if (!o->tap && !o->mac_set)
        return vs_error(err, EINVAL, "--net %u: nothing to change (tap=, mac=)", o->index);
    return 0;
}

/* The restored VM gets the snapshot's configuration with what the command
 * line overrides; a clone its own MAC, vsock CID and no host ports. */
static int apply_opts(struct vm_config *cfg, const struct snapshot_restore_opts *o, vs_err *err)
{
    if (o->api_sock) {
        free(cfg->api_sock);
        cfg->api_sock = xstrdup(o->api_sock);
    }
    if (o->console) {
        free(cfg->console);
        cfg->console = xstrdup(o->console);
    }
    if (o->clone_index >= 0) {
        for (unsigned i = 0; i < cfg->nnets; i++) {
            uint8_t mac[6] = {0x52,
                              0x54,
                              0x00,
                              (uint8_t)(0xc0 + i),
                              (uint8_t)(o->clone_index >> 8),
                              (uint8_t)o->clone_index};
            memcpy(cfg->nets[i].mac, mac, 6);
            cfg->nets[i].mac_set = true;
            /* The host ports stay with the snapshotted VM: N clones cannot
             * all listen on them. */
            for (unsigned j = 0; j < cfg->nets[i].nhostfwd; j++) {
                free(cfg->nets[i].hostfwd[j]);
                cfg->nets[i].hostfwd[j] = NULL;
            }
            cfg->nets[i].nhostfwd = 0;
        }
        if (cfg->vsock_cid)
            cfg->vsock_cid += 1 + (uint32_t)o->clone_index;
        /* Each clone its own vsock socket path next to its overlays. */
        if (cfg->vsock_uds && o->overlay_dir) {
            free(cfg->vsock_uds);
            if (asprintf(&cfg->vsock_uds, "%s/vsock.sock", o->overlay_dir) < 0)
                cfg->vsock_uds = NULL;
        }
    }
    if (o->vsock_cid)
        cfg->vsock_cid = o->vsock_cid;
    if (snapshot_apply_net_overrides(cfg, o->nets, o->nnets, err) < 0)
        return -1;
    if ((o->api_sock && !cfg->api_sock) || (o->console && !cfg->console))
        return vs_error(err, ENOMEM, "out of memory");
    return 0;
}

/* Disks: the snapshot's images stay untouched; the restored VM writes into
 * its own qcow2 overlay on top of each writable one. */
static int make_overlays(struct snapshot_restore *rs, const char *odir, vs_err *err)
{
    struct vm_config *cfg = &rs->img.cfg;
    for (unsigned i = 0; i < cfg->ndisks; i++) {
        struct vm_disk_config *d = &cfg->disks[i];
        if (d->readonly)
            continue;
        if (!odir) {
            snprintf(rs->tmpdir, sizeof(rs->tmpdir), "%sXXXXXX", SNAPSHOT_RESTORE_TMP);
            if (!mkdtemp(rs->tmpdir)) {
                rs->tmpdir[0] = 0;
                return vs_error_errno(err, "creating a directory for disk overlays");
            }
            odir = rs->tmpdir;
        } else if (mkdir(odir, 0755) < 0 && errno != EEXIST) {
            return vs_error_errno(err, "overlay directory %s", odir);
        }
        json_t *rec = json_array_get(json_object_get(rs->img.manifest, "disks"), i);
        const char *base = json_string_value(json_object_get(rec, "path"));
        const char *fmt = json_string_value(json_object_get(rec, "format"));
        char *ov = NULL;
        if (asprintf(&ov, "%s/disk%u.qcow2", odir, i) < 0)
            return vs_error(err, ENOMEM, "out of memory");
        unlink(ov);
        if (qcow2_create(ov, 0, base, fmt, err) < 0) {
            free(ov);
            return -1;
        }
        free(d->path);
        free(d->format);
        d->path = ov;
        d->format = strdup("qcow2");
    }
    return 0;
}

int snapshot_restore_prepare(const char *dir, const struct snapshot_restore_opts *o,
                             struct snapshot_restore *rs, vs_err *err)
{
    memset(rs, 0, sizeof(*rs));
    if (snapshot_image_open(dir, o->expect_arch, &rs->img, err) < 0)
        return -1;
    if (apply_opts(&rs->img.cfg, o, err) < 0 || make_overlays(rs, o->overlay_dir, err) < 0)
        goto fail;
    if (snapshot_image_map(&rs->img, err) < 0)
        goto fail;
    /* The machine adopts the mapped regions (and unmaps them at exit); a
     * diff snapshot of the restored VM may name this one as its parent. */
    rs->src = (struct vm_restore_source){.mem = &rs->img.mem,
                                         .state = &rs->img.state,
                                         .origin_dir = rs->img.dir,
                                         .origin_id = rs->img.id};
    return 0;
fail:
    snapshot_restore_finish(rs);
    return -1;
}

void snapshot_restore_finish(struct snapshot_restore *rs)
{
    if (rs->tmpdir[0]) {
        char keep[sizeof(rs->tmpdir) + 16];
        snprintf(keep, sizeof(keep), "%s/%s", rs->tmpdir, SNAPSHOT_KEEP_FILE);
        if (access(keep, F_OK) == 0)
            vs_info("disk overlays kept in %s: a snapshot refers to them", rs->tmpdir);
        else
            snap_remove_dir(rs->tmpdir);
        rs->tmpdir[0] = 0;
    }
    snapshot_image_close(&rs->img);
    rs->src = (struct vm_restore_source){0};
}

int snapshot_check_cpu_features(enum vm_arch arch, const uint8_t *blob, size_t len, vs_err *err)
{
    return vm_machine_check_cpu_features(arch, blob, len, err);
}
