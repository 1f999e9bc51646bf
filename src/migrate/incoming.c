/* The destination side of live migration. The stream is hostile input:
 * every length, offset and field is checked before it is used, memory
 * lands only inside the image the HELLO announced (and this host accepted),
 * and nothing runs until snapshot_image_from_vmstate has validated the
 * state the way a restore validates a snapshot. */
#include "migrate/incoming.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <jansson.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "migrate/postcopy.h"
#include "migrate/uri.h"
#include "migrate/wire.h"
#include "snapshot/snapshot.h"
#include "util/io.h"
#include "vm/config_json.h"
#include "util/log.h"
#include "vm/machine.h"

void mig_incoming_init(struct mig_incoming *in, int expect_arch, uint64_t max_memory)
{
    memset(in, 0, sizeof(*in));
    in->expect_arch = expect_arch;
    in->max_memory = max_memory;
    in->memfd = -1;
    vm_config_init(&in->cfg);
}

void mig_incoming_free(struct mig_incoming *in)
{
    if (in->image)
        munmap(in->image, in->image_size);
    if (in->memfd >= 0)
        close(in->memfd);
    free(in->vmstate);
    free(in->missing);
    in->missing = NULL;
    mig_disks_in_free(&in->disks, false);
    in->image = NULL;
    in->memfd = -1;
    in->vmstate = NULL;
    vm_config_free(&in->cfg);
    vm_config_init(&in->cfg);
    json_decref(in->config);
    in->config = NULL;
}

static int io_read(const struct mig_io *io, void *buf, size_t len, vs_err *err)
{
    if (io->read(io->opaque, buf, len) < 0)
        return vs_error(err, ECONNRESET, "migration stream ended before its END record");
    return 0;
}

static void refuse(const struct mig_io *io, const char *why)
{
    uint8_t h[MIG_RECORD_SIZE];
    size_t n = strnlen(why, MIG_MAX_MESSAGE);
    mig_record_encode(h, MIG_REFUSE, 0, n, why);
    if (io->write(io->opaque, h, sizeof(h)) == 0)
        io->write(io->opaque, why, n);
}

/* After a REFUSE: close only once the source has read it. Closing with its
 * stream still unread here would send a reset, which can throw the REFUSE
 * away before the source reads it; so say we are done (FIN) and drop what
 * still arrives until the source closes, for at most 3 s. */
static void linger_for_source(int fd)
{
    shutdown(fd, SHUT_WR);
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    char buf[65536];
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long left = 3000 - ((now.tv_sec - t0.tv_sec) * 1000 + (now.tv_nsec - t0.tv_nsec) / 1000000);
        struct pollfd p = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&p, 1, (int)left) != 1 || read(fd, buf, sizeof(buf)) <= 0)
            break;
    }
}

static int hex_decode(const char *s, uint8_t **out, size_t *len, vs_err *err)
{
    size_t n = strlen(s);
    if (n % 2)
        return vs_error(err, EPROTO, "migration HELLO: bad cpu_features");
    uint8_t *b = malloc(n / 2 + 1);
    if (!b)
        return vs_error(err, ENOMEM, "out of memory");
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(s + 2 * i, "%2x", &v) != 1) {
            free(b);
            return vs_error(err, EPROTO, "migration HELLO: bad cpu_features");
        }
        b[i] = (uint8_t)v;
    }
    *out = b;
    *len = n / 2;
    return 0;
}

/* The HELLO: which machine, how much memory, laid out how, needing which
 * CPU features. Everything that can be refused before a byte of memory
 * moves is refused here. */
static int check_hello(struct mig_incoming *in, const char *text, size_t len, vs_err *err)
{
    json_error_t jerr;
    json_t *j = json_loadb(text, len, 0, &jerr);
    int rc = -1;
    if (!json_is_object(j)) {
        vs_error(err, EPROTO, "migration HELLO is not a JSON object");
        goto out;
    }
    const char *arch = json_string_value(json_object_get(j, "arch"));
    if (!arch || (strcmp(arch, "x86_64") && strcmp(arch, "riscv64"))) {
        vs_error(err, EPROTO, "migration HELLO: unknown machine type");
        goto out;
    }
    in->arch = strcmp(arch, "riscv64") ? VM_ARCH_X86_64 : VM_ARCH_RISCV64;
    if (in->expect_arch >= 0 && (enum vm_arch)in->expect_arch != in->arch) {
        vs_error(err, EINVAL, "the source runs %s %s machine; this destination takes only %s",
                 in->arch == VM_ARCH_X86_64 ? "an" : "a", arch,
                 vm_arch_name((enum vm_arch)in->expect_arch));
        goto out;
    }
    json_t *mem = json_object_get(j, "memory");
    json_t *regions = json_object_get(mem, "regions");
    json_int_t size = json_integer_value(json_object_get(mem, "size"));
    if (size <= 0 || (uint64_t)size % GUEST_PAGE_SIZE || !json_is_array(regions) ||
        json_array_size(regions) == 0 || json_array_size(regions) > GUEST_MEM_MAX_REGIONS) {
        vs_error(err, EPROTO, "migration HELLO: bad memory description");
        goto out;
    }
    if ((uint64_t)size > in->max_memory) {
        vs_error(err, EFBIG,
                 "the guest's memory (%lld MiB) is more than this host takes (%llu MiB)",
                 (long long)size >> 20, (unsigned long long)in->max_memory >> 20);
        goto out;
    }
    in->image_size = (uint64_t)size;
    size_t i;
    json_t *r;
    uint64_t next = 0;
    json_array_foreach(regions, i, r)
    {
        struct mig_image_region *reg = &in->regions[i];
        if (!snapshot_region_parse(r, in->image_size, &reg->gpa, &reg->size, &reg->offset) ||
            reg->offset < next) {
            vs_error(err, EPROTO, "migration HELLO: memory region %zu is invalid", i);
            goto out;
        }
        next = reg->offset + reg->size;
    }
    in->nregions = (unsigned)json_array_size(regions);
    json_t *cfg = json_object_get(j, "config");
    if (!json_is_object(cfg)) {
        vs_error(err, EPROTO, "migration HELLO: no configuration");
        goto out;
    }
    if (vm_config_from_json(cfg, &in->cfg, err) < 0) {
        vs_error_prefix(err, "migration HELLO: ");
        goto out;
    }
    if (in->cfg.arch != in->arch) {
        vs_error(err, EPROTO, "migration HELLO: the configuration is for another machine type");
        goto out;
    }
    if (mig_disks_in_parse(&in->disks, json_object_get(j, "disks"), &in->cfg, err) < 0)
        goto out;
    in->config = json_incref(cfg);
    const char *cpu = json_string_value(json_object_get(j, "cpu_features"));
    if (cpu && *cpu) {
        uint8_t *blob = NULL;
        size_t blen = 0;
        if (hex_decode(cpu, &blob, &blen, err) < 0)
            goto out;
        int c = vm_machine_check_cpu_features(in->arch, blob, blen, err);
        free(blob);
        if (c < 0)
            goto out;
    }
    rc = 0;
out:
    json_decref(j);
    return rc;
}

static int make_image(struct mig_incoming *in, vs_err *err)
{
    in->memfd = memfd_create("vessel-guest-ram", MFD_CLOEXEC);
    if (in->memfd < 0)
        return vs_error_errno(err, "migration: memfd");
    if (ftruncate(in->memfd, (off_t)in->image_size) < 0)
        return vs_error_errno(err, "migration: sizing guest memory");
    void *p = mmap(NULL, in->image_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                   in->memfd, 0);
    if (p == MAP_FAILED)
        return vs_error_errno(err, "migration: mapping guest memory");
    in->image = p;
    return 0;
}

static int zero_range(struct mig_incoming *in, uint64_t off, uint64_t len)
{
    if (off % GUEST_PAGE_SIZE == 0 && len % GUEST_PAGE_SIZE == 0 &&
        fallocate(in->memfd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, (off_t)off, (off_t)len) ==
            0)
        return 0;
    memset(in->image + off, 0, len);
    return 0;
}

/* Records until HELLO has been answered (hello_only) or until END. */
static int receive_records(struct mig_incoming *in, const struct mig_io *io, bool hello_only,
                           vs_err *err)
{
    bool hello = in->image != NULL;
    for (;;) {
        uint8_t rh[MIG_RECORD_SIZE];
        struct mig_record r;
        if (io_read(io, rh, sizeof(rh), err) < 0 || mig_record_decode(rh, &r, err) < 0)
            return -1;
        in->records++;
        if (!hello && r.type != MIG_HELLO)
            return vs_error(err, EPROTO, "migration stream: %s record before HELLO",
                            mig_type_name(r.type));
        switch (r.type) {
        case MIG_HELLO: {
            if (hello || r.off || !r.len || r.len > MIG_MAX_HELLO)
                return vs_error(err, EPROTO, "migration stream: bad HELLO record");
            char *text = malloc((size_t)r.len);
            if (!text)
                return vs_error(err, ENOMEM, "out of memory");
            int rc = io_read(io, text, (size_t)r.len, err);
            if (rc == 0)
                rc = mig_record_check(&r, text, err);
            if (rc == 0)
                rc = check_hello(in, text, (size_t)r.len, err);
            free(text);
            if (rc == 0)
                rc = make_image(in, err);
            if (rc < 0) {
                refuse(io, err->msg);
                return -1;
            }
            uint8_t ok[MIG_RECORD_SIZE];
            mig_record_encode(ok, MIG_ACCEPT, 0, 0, NULL);
            if (io->write(io->opaque, ok, sizeof(ok)) < 0)
                return vs_error(err, ECONNRESET, "migration: the source went away");
            hello = true;
            if (hello_only)
                return 0;
            break;
        }
        case MIG_MEMORY:
            if (r.off > in->image_size || r.len > in->image_size - r.off)
                return vs_error(err, EPROTO,
                                "migration stream: memory record [%#llx, +%#llx) outside the "
                                "%llu-byte memory image",
                                (unsigned long long)r.off, (unsigned long long)r.len,
                                (unsigned long long)in->image_size);
            if (io_read(io, in->image + r.off, (size_t)r.len, err) < 0 ||
                mig_record_check(&r, in->image + r.off, err) < 0)
                return -1;
            in->memory_bytes += r.len;
            break;
        case MIG_ZERO:
            if (r.off > in->image_size || r.len > in->image_size - r.off)
                return vs_error(err, EPROTO, "migration stream: zero record outside the image");
            if (mig_record_check(&r, NULL, err) < 0)
                return -1;
            zero_range(in, r.off, r.len);
            in->zero_bytes += r.len;
            break;
        case MIG_DISK:
        case MIG_DISK_ZERO: {
            struct mig_disk_in *d;
            uint64_t at;
            if (mig_disks_in_check(&in->disks, r.off, r.len, &d, &at, err) < 0)
                return -1;
            int wr;
            if (r.type == MIG_DISK_ZERO) {
                if (mig_record_check(&r, NULL, err) < 0)
                    return -1;
            } else if (io_read(io, in->disks.buf, (size_t)r.len, err) < 0 ||
                       mig_record_check(&r, in->disks.buf, err) < 0) {
                return -1;
            }
            if (r.type == MIG_DISK_ZERO && d->disk->ops->write_zeroes) {
                wr = d->disk->ops->write_zeroes(d->disk, at, r.len, true);
            } else {
                if (r.type == MIG_DISK_ZERO) /* a backend without write_zeroes */
                    memset(in->disks.buf, 0, (size_t)r.len);
                struct iovec iov = {.iov_base = in->disks.buf, .iov_len = (size_t)r.len};
                wr = disk_write(d->disk, at, &iov, 1);
            }
            if (wr < 0)
                return vs_error(err, -wr, "migration: writing disk %s: %s", d->path, strerror(-wr));
            in->disk_bytes += r.len;
            break;
        }
        case MIG_VMSTATE:
            if (in->vmstate || r.off || !r.len || r.len > MIG_MAX_VMSTATE)
                return vs_error(err, EPROTO, "migration stream: bad VMSTATE record");
            in->vmstate = malloc((size_t)r.len);
            if (!in->vmstate)
                return vs_error(err, ENOMEM, "out of memory for the VM state");
            in->vmstate_len = (size_t)r.len;
            if (io_read(io, in->vmstate, in->vmstate_len, err) < 0 ||
                mig_record_check(&r, in->vmstate, err) < 0)
                return -1;
            break;
        case MIG_POSTCOPY: {
            size_t words = 0;
            for (unsigned i = 0; i < in->nregions; i++)
                words += (in->regions[i].size / GUEST_PAGE_SIZE + 63) / 64;
            if (in->missing || r.off || r.len != words * 8)
                return vs_error(err, EPROTO, "migration stream: bad POSTCOPY record");
            in->missing = malloc(words * 8 + 8);
            if (!in->missing)
                return vs_error(err, ENOMEM, "out of memory for the post-copy bitmap");
            in->missing_words = words;
            if (io_read(io, in->missing, words * 8, err) < 0 ||
                mig_record_check(&r, in->missing, err) < 0)
                return -1;
            break;
        }
        case MIG_SYNC: {
            if (r.off || r.len || mig_record_check(&r, NULL, err) < 0)
                return vs_error(err, EPROTO, "migration stream: bad SYNC record");
            uint8_t ok[MIG_RECORD_SIZE];
            mig_record_encode(ok, MIG_SYNCED, 0, 0, NULL);
            if (io->write(io->opaque, ok, sizeof(ok)) < 0)
                return vs_error(err, ECONNRESET, "migration: the source went away");
            break;
        }
        case MIG_END:
            if (r.off || r.len || !in->vmstate)
                return vs_error(err, EPROTO, "migration stream: END before the VM state");
            return mig_record_check(&r, NULL, err);
        default:
            return vs_error(err, EPROTO, "migration stream: unexpected %s record (type %u)",
                            mig_type_name(r.type), r.type);
        }
    }
}

int mig_receive_hello(struct mig_incoming *in, const struct mig_io *io, vs_err *err)
{
    uint8_t h[MIG_HEADER_SIZE];
    if (io_read(io, h, sizeof(h), err) < 0 || mig_header_decode(h, err) < 0)
        return -1;
    return receive_records(in, io, true, err);
}

int mig_receive_rest(struct mig_incoming *in, const struct mig_io *io, vs_err *err)
{
    if (!in->image)
        return vs_error(err, EINVAL, "migration: no HELLO yet");
    return receive_records(in, io, false, err);
}

int mig_receive(struct mig_incoming *in, const struct mig_io *io, vs_err *err)
{
    if (mig_receive_hello(in, io, err) < 0)
        return -1;
    return mig_receive_rest(in, io, err);
}

int mig_incoming_map(struct mig_incoming *in, struct guest_mem *mem, vs_err *err)
{
    for (unsigned i = 0; i < in->nregions; i++) {
        const struct mig_image_region *r = &in->regions[i];
        void *hva = mmap(NULL, r->size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE,
                         in->memfd, (off_t)r->offset);
        if (hva == MAP_FAILED)
            return vs_error_errno(err, "migration: mapping guest memory");
        in->regions[i].hva = hva;
        int fd = fcntl(in->memfd, F_DUPFD_CLOEXEC, 0);
        if (guest_mem_add_region(mem, r->gpa, r->size, hva, fd, r->offset, err) < 0) {
            munmap(hva, r->size);
            if (fd >= 0)
                close(fd);
            return -1;
        }
    }
    return 0;
}

/* ---- the destination process ---- */

static int conn_read(void *opaque, void *buf, size_t len)
{
    return mig_conn_read(opaque, buf, len);
}

static int conn_write(void *opaque, const void *buf, size_t len)
{
    return mig_conn_write(opaque, buf, len);
}

/* The state's memory layout must be the one the HELLO announced and the
 * memory arrived in. */
static int check_layout(const struct mig_incoming *in, const struct snapshot_image *img,
                        vs_err *err)
{
    json_t *mem = json_object_get(img->manifest, "memory");
    json_t *regions = json_object_get(mem, "regions");
    if ((uint64_t)json_integer_value(json_object_get(mem, "file_size")) != in->image_size ||
        json_array_size(regions) != in->nregions)
        return vs_error(err, EPROTO, "migration: the state's memory layout is not the HELLO's");
    for (unsigned i = 0; i < in->nregions; i++) {
        json_t *r = json_array_get(regions, i);
        if ((uint64_t)json_integer_value(json_object_get(r, "gpa")) != in->regions[i].gpa ||
            (uint64_t)json_integer_value(json_object_get(r, "size")) != in->regions[i].size ||
            (uint64_t)json_integer_value(json_object_get(r, "offset")) != in->regions[i].offset)
            return vs_error(err, EPROTO,
                            "migration: the state's memory region %u is not the "
                            "HELLO's",
                            i);
    }
    return 0;
}

struct dest_ctx {
    int fd; /* the connection, until post-copy or the end takes it */
    struct mig_conn *conn;
    struct postcopy *pc;
    const struct mig_io *io;
    struct mig_incoming *in;
    struct vm_restore_source *src;
    struct snapshot_image img;
    bool have_img, readied, running;
};

/* The machine is built (while memory streamed in): receive the rest, up to
 * END, and check the state the way a restore checks a snapshot. */
static int on_fetch_state(void *opaque, struct state_reader **state, vs_err *err)
{
    struct dest_ctx *c = opaque;
    struct mig_incoming *in = c->in;
    /* disks moving along are written through the machine's own */
    if (mig_disks_in_attach(&in->disks, c->src->ctl, err) < 0 ||
        mig_receive_rest(in, c->io, err) < 0 || mig_disks_in_flush(&in->disks, err) < 0)
        return -1;
    uint8_t *vmstate = in->vmstate;
    in->vmstate = NULL;
    uint64_t moved = 0;
    for (unsigned i = 0; i < in->disks.n; i++)
        moved |= 1ull << in->disks.d[i].index;
    if (snapshot_image_from_vmstate(vmstate, in->vmstate_len, (int)in->arch, moved, &c->img, err) <
        0)
        return vs_error_prefix(err, "migrated state: ");
    c->have_img = true;
    if (check_layout(in, &c->img, err) < 0)
        return -1;
    if (!json_equal(json_object_get(c->img.manifest, "config"), in->config))
        return vs_error(err, EPROTO, "migration: the configuration changed during the migration");
    /* post-copy: from here on whatever touches a page still on the source
     * (loading the devices included) waits for it */
    if (in->missing && postcopy_start(c->conn, in, &c->pc, err) < 0)
        return -1;
    *state = &c->img.state;
    return 0;
}

/* The machine holds the migrated state: tell the source, and start only on
 * its GO (until then the source may still take the guest back). */
static int on_ready(void *opaque, vs_err *err)
{
    struct dest_ctx *c = opaque;
    if (c->pc) {
        /* post-copy owns the connection: the handover goes through it */
        if (postcopy_send(c->pc, MIG_READY, err) < 0)
            return -1;
        c->readied = true;
        if (postcopy_wait_go(c->pc, 30000, err) < 0)
            return -1;
        vs_err werr = {0};
        if (postcopy_send(c->pc, MIG_RUNNING, &werr) < 0)
            vs_warn("%s (the guest runs here anyway: the source gave it up)", werr.msg);
        c->running = true;
        return 0;
    }
    if (mig_send(c->conn, MIG_READY, 0, NULL, 0, err) < 0)
        return -1;
    c->readied = true;
    struct mig_record r;
    if (mig_recv_record(c->conn, 30000, &r, err) < 0)
        return vs_error_prefix(err, "waiting for the source's go-ahead: ");
    if (r.type != MIG_GO || r.off || r.len)
        return vs_error(err, EPROTO, "migration: expected GO from the source, got %s",
                        mig_type_name(r.type));
    vs_err werr = {0};
    if (mig_send(c->conn, MIG_RUNNING, 0, NULL, 0, &werr) < 0)
        vs_warn("%s (the guest runs here anyway: the source gave it up)", werr.msg);
    c->running = true;
    mig_conn_end(c->conn);
    close(c->fd);
    c->fd = -1;
    return 0;
}

static uint64_t host_memory(void)
{
    long pages = sysconf(_SC_PHYS_PAGES), psz = sysconf(_SC_PAGESIZE);
    return pages > 0 && psz > 0 ? (uint64_t)pages * (uint64_t)psz : 1ULL << 40;
}

static char *xstrdup(const char *s)
{
    return s ? strdup(s) : NULL;
}

int mig_incoming_run(const struct mig_incoming_opts *o, vs_err *err)
{
    int lfd = mig_listen(o->uri, err);
    if (lfd < 0)
        return -1;
    vs_info("waiting for a migration on %s", o->uri);
    int fd;
    while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) < 0 && errno == EINTR)
        ;
    int aerr = errno;
    close(lfd);
    if (!strncmp(o->uri, "unix:", 5))
        unlink(o->uri + 5);
    if (fd < 0)
        return vs_error(err, aerr, "migration: accept: %s", strerror(aerr));
    mig_socket_tune(fd);
    struct mig_conn conn;
    if (mig_tls_wanted(&o->tls) ? mig_tls_server(&conn, fd, &o->tls, err) < 0
                                : (mig_conn_plain(&conn, fd), 0)) {
        close(fd);
        return vs_error_prefix(err, "incoming migration refused: ");
    }

    struct mig_incoming in;
    mig_incoming_init(&in, o->expect_arch, host_memory());
    struct mig_io io = {.read = conn_read, .write = conn_write, .opaque = &conn};
    struct dest_ctx c = {.fd = fd, .conn = &conn, .io = &io, .in = &in};
    struct guest_mem mem;
    guest_mem_init(&mem);
    int status = -1;
    if (mig_receive_hello(&in, &io, err) < 0 ||
        mig_disks_in_create(&in.disks, o->storage, o->allow_backing, o->nallow_backing, &in.cfg,
                            err) < 0)
        goto refuse;
    /* Host-side choices are this command line's, not the source's. */
    free(in.cfg.api_sock);
    in.cfg.api_sock = xstrdup(o->api_sock);
    free(in.cfg.console);
    in.cfg.console = xstrdup(o->console ? o->console : "stdio");
    if (snapshot_apply_net_overrides(&in.cfg, o->nets, o->nnets, err) < 0)
        goto refuse;
    if (o->vsock_uds && in.cfg.vsock_cid) {
        free(in.cfg.vsock_uds);
        in.cfg.vsock_uds = xstrdup(o->vsock_uds);
    }
    if (mig_incoming_map(&in, &mem, err) < 0) {
        guest_mem_destroy(&mem);
        goto refuse;
    }
    /* The machine is built now, while memory streams in; the state is
     * loaded when it arrives (on_fetch_state), the vCPUs start on GO. */
    struct vm_restore_source src = {
        .mem = &mem, .fetch_state = on_fetch_state, .ready = on_ready, .ready_opaque = &c};
    c.src = &src;
    status = vm_machine_restore(&in.cfg, &src, err);
    if (status < 0 && !c.readied)
        goto refuse;
    postcopy_stop(c.pc);
    goto out;
refuse:
    if (!c.readied && c.fd >= 0) {
        refuse(&io, err->msg);
        linger_for_source(c.fd);
    }
    postcopy_stop(c.pc);
    vs_error_prefix(err, "incoming migration refused: ");
    status = -1;
out:
    if (c.fd >= 0) {
        mig_conn_end(&conn);
        close(c.fd);
    }
    if (c.have_img)
        snapshot_image_close(&c.img);
    /* disks created for a guest that never ran here go again */
    mig_disks_in_free(&in.disks, !c.running);
    mig_incoming_free(&in);
    return status;
}
