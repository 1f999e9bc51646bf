/* The local image store. A container image is a root filesystem unpacked
 * once (from a rootfs tarball, with libarchive) and shared read-only by its
 * instances through overlayfs; a VM image is a kernel, an initrd and an
 * optional root disk that instances use through their own qcow2 overlays.
 *
 * An import unpacks into a temporary directory named after its operation
 * and is renamed into place only when complete, so a failed, cancelled or
 * cut-off import leaves nothing behind (image_reconcile removes what a
 * killed daemon left). The fingerprint is the SHA-256 of the source. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <gnutls/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>
#include <linux/openat2.h>
#include <sys/syscall.h>

#include "daemon/archive_lib.h"
#include "daemon/daemon.h"
#include "daemon/image.h"
#include "util/cleanup.h"
#include "util/log.h"
#include "vm/config.h"

#define READ_BLOCK (256 * 1024)

/* Reads the source for libarchive while hashing it and reporting progress. */
struct source {
    struct daemon *d;
    const char *op_id;
    int fd;
    off_t size, done, reported;
    gnutls_hash_hd_t hash;
    char buf[READ_BLOCK];
};

static la_ssize_t source_read(struct archive *a, void *opaque, const void **out)
{
    struct source *s = opaque;
    ssize_t n;
    do
        n = read(s->fd, s->buf, sizeof(s->buf));
    while (n < 0 && errno == EINTR);
    if (n < 0) {
        archive_set_error(a, errno, "read: %s", strerror(errno));
        return -1;
    }
    if (operation_cancelled(s->op_id)) {
        archive_set_error(a, ECANCELED, "cancelled");
        return -1;
    }
    gnutls_hash(s->hash, s->buf, (size_t)n);
    s->done += n;
    if (s->done - s->reported >= 4 * 1024 * 1024 || (n == 0 && s->done != s->reported)) {
        s->reported = s->done;
        operation_progress(s->d, s->op_id,
                           json_pack("{s:I, s:I, s:i}", "bytes", (json_int_t)s->done, "total",
                                     (json_int_t)s->size, "percent",
                                     s->size ? (int)(s->done * 100 / s->size) : 100));
    }
    *out = s->buf;
    return n;
}

static void hex(const unsigned char *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* libarchive's message with the system's reason where there is one (a full
 * disk is only "Write failed" otherwise). */
static const char *write_failure(struct archive *a, char *buf, size_t n)
{
    int e = archive_errno(a);
    const char *s = archive_error_string(a);
    if (e > 0 && (!s || !strstr(s, strerror(e))))
        snprintf(buf, n, "%s: %s", s ? s : "write failed", strerror(e));
    else
        snprintf(buf, n, "%s", s ? s : "write failed");
    return buf;
}

static int copy_archive(struct archive *in, struct archive *out, vs_err *err)
{
    char why[512];
    const void *buf;
    size_t len;
    la_int64_t off;
    int r;
    while ((r = archive_read_data_block(in, &buf, &len, &off)) == ARCHIVE_OK) {
        if (archive_write_data_block(out, buf, len, off) != ARCHIVE_OK)
            return vs_error(err, archive_errno(out) == ENOSPC ? ENOSPC : EIO, "%s",
                            write_failure(out, why, sizeof(why)));
    }
    if (r != ARCHIVE_EOF)
        return vs_error(err, archive_errno(in) == ECANCELED ? ECANCELED : EINVAL, "%s",
                        archive_errno(in) == ECANCELED ? "the import was cancelled"
                                                       : archive_error_string(in));
    return 0;
}

int image_open_beneath(const char *dir, const char *rel, int flags)
{
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd < 0)
        return -1;
    struct open_how how = {.flags = (uint64_t)(flags | O_CLOEXEC | O_NOFOLLOW),
                           .resolve =
                               RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS};
    int fd = (int)syscall(SYS_openat2, dfd, rel[0] ? rel : ".", &how, sizeof(how));
    int saved = errno;
    close(dfd);
    errno = saved;
    return fd;
}

/* Remove name under the directory dirfd, never following a symlink (a
 * symlink is removed, not what it points to). */
static void rm_rf_at(int parent, const char *name)
{
    struct stat st;
    if (fstatat(parent, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
        return;
    if (S_ISDIR(st.st_mode)) {
        int fd = openat(parent, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        DIR *dp = fd >= 0 ? fdopendir(fd) : NULL;
        struct dirent *de;
        while (dp && (de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                rm_rf_at(dirfd(dp), de->d_name);
        if (dp)
            closedir(dp);
        else if (fd >= 0)
            close(fd);
        unlinkat(parent, name, AT_REMOVEDIR);
    } else {
        unlinkat(parent, name, 0);
    }
}

/* An image layer's whiteout (".wh.NAME": NAME goes; ".wh..wh..opq": what
 * lower layers put in the directory goes), applied under dest. The
 * directory is reached without following any symlink an earlier layer may
 * have planted, so a whiteout never reaches outside the rootfs. */
static int apply_whiteout(const char *dest, const char *rel, vs_err *err)
{
    const char *base = strrchr(rel, '/');
    char dir[8192];
    snprintf(dir, sizeof(dir), "%.*s", base ? (int)(base - rel) : 0, rel);
    base = base ? base + 1 : rel;
    int dfd = image_open_beneath(dest, dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) {
        if (errno == ENOENT)
            return 0; /* nothing below to hide */
        return vs_error(err, EINVAL,
                        "whiteout %s: its directory is not a plain directory of "
                        "the image (%s)",
                        rel, strerror(errno));
    }
    if (!strcmp(base, ".wh..wh..opq")) {
        DIR *dp = fdopendir(dup(dfd));
        struct dirent *de;
        while (dp && (de = readdir(dp)))
            if (strcmp(de->d_name, ".") && strcmp(de->d_name, ".."))
                rm_rf_at(dfd, de->d_name);
        if (dp)
            closedir(dp);
    } else if (base[4] && strcmp(base + 4, ".") && strcmp(base + 4, "..")) {
        rm_rf_at(dfd, base + 4);
    }
    close(dfd);
    return 0;
}

int image_extract(struct archive *in, const char *dest, const char *what, bool whiteouts,
                  vs_err *err)
{
    struct archive *out = archive_write_disk_new();
    archive_write_disk_set_options(out, ARCHIVE_EXTRACT_SECURE_NODOTDOT |
                                            ARCHIVE_EXTRACT_SECURE_SYMLINKS | ARCHIVE_EXTRACT_PERM |
                                            ARCHIVE_EXTRACT_OWNER | ARCHIVE_EXTRACT_TIME |
                                            ARCHIVE_EXTRACT_XATTR | ARCHIVE_EXTRACT_UNLINK);
    int entries = 0, rc = -1;
    for (;;) {
        struct archive_entry *e;
        int r = archive_read_next_header(in, &e);
        if (r == ARCHIVE_EOF)
            break;
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            if (archive_errno(in) == ECANCELED)
                vs_error(err, ECANCELED, "%s: the import was cancelled", what);
            else
                vs_error(err, EINVAL, "%s: %s (truncated or corrupt?)", what,
                         archive_error_string(in));
            goto out;
        }
        /* a copy: setting the entry's path below frees the name */
        char rel_buf[4096], why[512];
        const char *name = archive_entry_pathname(e);
        snprintf(rel_buf, sizeof(rel_buf), "%s", name ? name : "");
        const char *rel = rel_buf + strspn(rel_buf, "/");
        while (!strncmp(rel, "./", 2))
            rel += 2;
        const char *base = strrchr(rel, '/');
        if (whiteouts && !strncmp(base ? base + 1 : rel, ".wh.", 4)) {
            if (apply_whiteout(dest, rel, err) < 0) {
                vs_error_prefix(err, "%s: ", what);
                goto out;
            }
            entries++;
            continue;
        }
        /* entries land under dest (an absolute name is taken as relative to
         * the rootfs; ".." is refused by SECURE_NODOTDOT); hard links too */
        char full[8192];
        snprintf(full, sizeof(full), "%s/%s", dest, rel);
        archive_entry_set_pathname(e, full);
        const char *link = archive_entry_hardlink(e);
        if (link) {
            char lfull[8192];
            snprintf(lfull, sizeof(lfull), "%s/%s", dest, link + strspn(link, "/"));
            archive_entry_set_hardlink(e, lfull);
        }
        r = archive_write_header(out, e);
        if (r != ARCHIVE_OK && r != ARCHIVE_WARN) {
            vs_error(err, archive_errno(out) == ENOSPC ? ENOSPC : EINVAL, "%s: %s: %s", what, rel,
                     write_failure(out, why, sizeof(why)));
            goto out;
        }
        if (archive_entry_size(e) > 0 && copy_archive(in, out, err) < 0) {
            vs_error_prefix(err, "%s: %s: ", what, rel);
            goto out;
        }
        if (archive_write_finish_entry(out) != ARCHIVE_OK) {
            vs_error(err, archive_errno(out) == ENOSPC ? ENOSPC : EIO, "%s: %s: %s", what, rel,
                     write_failure(out, why, sizeof(why)));
            goto out;
        }
        entries++;
    }
    rc = entries;
out:
    archive_write_free(out);
    return rc;
}

/* Unpack a rootfs tarball (any compression libarchive knows) into dest,
 * refusing entries that climb out of it. fingerprint gets the hex SHA-256. */
static int unpack_rootfs(struct daemon *d, const char *op_id, const char *path, const char *dest,
                         char fingerprint[65], vs_err *err)
{
    struct source *s = calloc(1, sizeof(*s));
    if (!s)
        return vs_error(err, ENOMEM, "out of memory");
    s->d = d;
    s->op_id = op_id;
    s->fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (s->fd < 0 || fstat(s->fd, &st) < 0) {
        vs_error_errno(err, "%s", path);
        if (s->fd >= 0)
            close(s->fd);
        free(s);
        return -1;
    }
    s->size = st.st_size;
    gnutls_hash_init(&s->hash, GNUTLS_DIG_SHA256);
    struct archive *in = archive_read_new();
    archive_read_support_filter_all(in);
    archive_read_support_format_tar(in);
    archive_read_support_format_gnutar(in);
    int rc = -1, entries = 0;
    if (archive_read_open(in, s, NULL, source_read, NULL) != ARCHIVE_OK) {
        vs_error(err, EINVAL, "%s: not a tarball: %s", path, archive_error_string(in));
        goto out;
    }
    entries = image_extract(in, dest, path, false, err);
    if (entries < 0)
        goto out;
    if (entries == 0) {
        vs_error(err, EINVAL, "%s: the tarball is empty", path);
        goto out;
    }
    /* hash what libarchive did not need to read (padding after the end) */
    const void *dummy;
    while (source_read(in, s, &dummy) > 0)
        ;
    unsigned char digest[32];
    gnutls_hash_deinit(s->hash, digest);
    s->hash = NULL;
    hex(digest, sizeof(digest), fingerprint);
    rc = 0;
out:
    archive_read_free(in);
    if (s->hash)
        gnutls_hash_deinit(s->hash, NULL);
    close(s->fd);
    free(s);
    return rc;
}

/* Copy src into dest (sparse-unaware, fine for kernels and initrds), and
 * fold its bytes into hash. */
static int copy_file(const char *src, const char *dest, gnutls_hash_hd_t hash, off_t *size,
                     vs_err *err)
{
    cleanup_close int in = open(src, O_RDONLY | O_CLOEXEC);
    if (in < 0)
        return vs_error_errno(err, "%s", src);
    cleanup_close int out = open(dest, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (out < 0)
        return vs_error_errno(err, "%s", dest);
    static __thread char buf[READ_BLOCK];
    ssize_t n;
    while ((n = read(in, buf, sizeof(buf))) > 0) {
        gnutls_hash(hash, buf, (size_t)n);
        for (ssize_t w = 0; w < n;) {
            ssize_t k = write(out, buf + w, (size_t)(n - w));
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return vs_error(err, errno, "%s: %s", dest, strerror(errno));
            w += k;
        }
        *size += n;
    }
    if (n < 0)
        return vs_error_errno(err, "%s", src);
    if (fsync(out) < 0)
        return vs_error_errno(err, "%s", dest);
    return 0;
}

/* A disk image's format by its magic: qcow2 or raw. */
static const char *disk_format(const char *path)
{
    unsigned char m[4] = {0};
    FILE *f = fopen(path, "re");
    if (f) {
        if (fread(m, 1, 4, f) != 4)
            memset(m, 0, 4);
        fclose(f);
    }
    return !memcmp(m, "QFI\xfb", 4) ? "qcow2" : "raw";
}

static int import_vm_files(json_t *req, const char *dest, char fingerprint[65], off_t *size,
                           const char **arch, json_t *props, vs_err *err)
{
    const char *kernel = json_string_value(json_object_get(req, "kernel"));
    const char *initrd = json_string_value(json_object_get(req, "initrd"));
    const char *source = json_string_value(json_object_get(req, "source"));
    const char *disk = json_string_value(json_object_get(req, "disk"));
    char *kbuf = NULL, *ibuf = NULL, *dbuf = NULL;
    if (source && !strcmp(source, "default")) {
        enum vm_arch a = *arch && !strcmp(*arch, "riscv64") ? VM_ARCH_RISCV64 : VM_ARCH_X86_64;
        char *dir = vm_default_guest_dir(a);
        if (!dir || asprintf(&kbuf, "%s/vmlinuz", dir) < 0 ||
            asprintf(&ibuf, "%s/initrd.img", dir) < 0 || asprintf(&dbuf, "%s/disk.img", dir) < 0) {
            free(dir);
            return vs_error(err, ENOMEM, "out of memory");
        }
        if (access(kbuf, R_OK) < 0) {
            vs_error(err, ENOENT, "no default %s guest in %s: run guest/build-%s.sh first",
                     vm_arch_name(a), dir, vm_arch_name(a));
            free(dir);
            free(kbuf);
            free(ibuf);
            free(dbuf);
            return -1;
        }
        free(dir);
        kernel = kbuf;
        initrd = access(ibuf, R_OK) == 0 ? ibuf : NULL;
        if (!disk && access(dbuf, R_OK) == 0)
            disk = dbuf; /* the guest's root disk, where its builder makes one */
    } else if (source) {
        return vs_error(err, EINVAL,
                        "a VM image comes from \"kernel\" (+ \"initrd\") or \"source\": "
                        "\"default\"");
    }
    int rc = -1;
    if (!kernel) {
        vs_error(err, EINVAL, "a VM image needs \"kernel\"");
        goto out;
    }
    gnutls_hash_hd_t hash;
    gnutls_hash_init(&hash, GNUTLS_DIG_SHA256);
    char path[4300];
    snprintf(path, sizeof(path), "%s/vmlinuz", dest);
    if (copy_file(kernel, path, hash, size, err) < 0) {
        gnutls_hash_deinit(hash, NULL);
        goto out;
    }
    if (initrd) {
        snprintf(path, sizeof(path), "%s/initrd.img", dest);
        if (copy_file(initrd, path, hash, size, err) < 0) {
            gnutls_hash_deinit(hash, NULL);
            goto out;
        }
    }
    if (disk) {
        /* the read-only base of every instance's own qcow2 overlay */
        const char *fmt = disk_format(disk);
        const char *name = strcmp(fmt, "qcow2") ? "disk.img" : "disk.qcow2";
        snprintf(path, sizeof(path), "%s/%s", dest, name);
        if (copy_file(disk, path, hash, size, err) < 0) {
            gnutls_hash_deinit(hash, NULL);
            goto out;
        }
        chmod(path, 0444);
        json_object_set_new(props, "disk", json_string(name));
        json_object_set_new(props, "disk_format", json_string(fmt));
    }
    unsigned char digest[32];
    gnutls_hash_deinit(hash, digest);
    hex(digest, sizeof(digest), fingerprint);
    rc = 0;
out:
    free(kbuf);
    free(ibuf);
    free(dbuf);
    return rc;
}

int daemon_sha256_file(const char *path, char out[65], vs_err *err)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "%s", path);
    gnutls_hash_hd_t h;
    gnutls_hash_init(&h, GNUTLS_DIG_SHA256);
    char buf[65536];
    ssize_t r;
    while ((r = read(fd, buf, sizeof(buf))) > 0)
        gnutls_hash(h, buf, (size_t)r);
    close(fd);
    unsigned char dg[32];
    gnutls_hash_deinit(h, dg);
    for (int i = 0; i < 32; i++)
        sprintf(out + 2 * i, "%02x", dg[i]);
    return r < 0 ? vs_error_errno(err, "%s", path) : 0;
}

static bool valid_alias(const char *a)
{
    size_t n = strlen(a);
    if (n == 0 || n > 63 || a[0] == '-' || a[0] == '.')
        return false;
    return strspn(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.:") == n;
}

int image_import_check(struct daemon *d, json_t *req, vs_err *err)
{
    const char *type = json_string_value(json_object_get(req, "type"));
    const char *alias = json_string_value(json_object_get(req, "alias"));
    const char *arch = json_string_value(json_object_get(req, "arch"));
    if (!type || (strcmp(type, "container") && strcmp(type, "vm")))
        return vs_error(err, EINVAL, "image \"type\" must be \"container\" or \"vm\"");
    if (arch && strcmp(arch, "x86_64") && strcmp(arch, "riscv64"))
        return vs_error(err, EINVAL, "image \"arch\" must be x86_64 or riscv64, not '%s'", arch);
    if (alias && !valid_alias(alias))
        return vs_error(err, EINVAL, "invalid image alias '%s' (letters, digits, - _ . :)", alias);
    json_t *have = alias ? store_image_get(d->store, alias, NULL) : NULL;
    if (have) {
        json_decref(have);
        return vs_error(err, EEXIST, "an image with alias '%s' exists already", alias);
    }
    /* files the daemon reads as root: regular files (or a pipe being
     * written), never a device */
    static const char *const files[] = {"source", "kernel", "initrd", "disk"};
    for (size_t i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        const char *path = json_string_value(json_object_get(req, files[i]));
        struct stat st;
        if (!path || (!strcmp(files[i], "source") && !strcmp(path, "default")))
            continue;
        if (path[0] != '/')
            return vs_error(err, EINVAL, "%s: give an absolute path", path);
        if (stat(path, &st) < 0)
            return vs_error(err, ENOENT, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode))
            return vs_error(err, EINVAL, "%s: not a regular file", path);
    }
    return 0;
}

static json_t *import(struct daemon *d, json_t *req, const char *op_id, vs_err *err);

json_t *image_import(struct daemon *d, json_t *req, const char *op_id, vs_err *err)
{
    if (archive_lib_acquire(err) < 0)
        return NULL;
    json_t *img = import(d, req, op_id, err);
    archive_lib_release();
    return img;
}

static json_t *import(struct daemon *d, json_t *req, const char *op_id, vs_err *err)
{
    const char *type = json_string_value(json_object_get(req, "type"));
    const char *alias = json_string_value(json_object_get(req, "alias"));
    const char *arch = json_string_value(json_object_get(req, "arch"));
    if (!type || (strcmp(type, "container") && strcmp(type, "vm"))) {
        vs_error(err, EINVAL, "image \"type\" must be \"container\" or \"vm\"");
        return NULL;
    }
    if (arch && strcmp(arch, "x86_64") && strcmp(arch, "riscv64")) {
        vs_error(err, EINVAL, "image \"arch\" must be x86_64 or riscv64, not '%s'", arch);
        return NULL;
    }
    if (alias && !valid_alias(alias)) {
        vs_error(err, EINVAL, "invalid image alias '%s'", alias);
        return NULL;
    }
    if (alias) {
        json_t *have = store_image_get(d->store, alias, NULL);
        if (have) {
            json_decref(have);
            vs_error(err, EEXIST, "an image with alias '%s' exists already", alias);
            return NULL;
        }
    }
    if (!arch)
        arch = "x86_64";
    /* the record exists while importing, so a restart finds and removes it */
    char tmp[4200], tmpfp[80];
    snprintf(tmpfp, sizeof(tmpfp), "importing-%s", op_id);
    snprintf(tmp, sizeof(tmp), "%s/images/%s", d->state_dir, tmpfp);
    json_t *img = json_pack("{s:s, s:n, s:s, s:s, s:i, s:s, s:s, s:{}, s:I}", "fingerprint", tmpfp,
                            "alias", "type", type, "arch", arch, "size", 0, "path", tmp, "state",
                            "importing", "properties", "created_at", (json_int_t)daemon_now_ms());
    if (store_image_insert(d->store, img, err) < 0) {
        json_decref(img);
        return NULL;
    }
    char fp[65] = "";
    off_t size = 0;
    int rc;
    if (mkdir(tmp, 0755) < 0) {
        rc = vs_error_errno(err, "%s", tmp);
    } else if (!strcmp(type, "container")) {
        const char *src = json_string_value(json_object_get(req, "source"));
        char rootfs[4300];
        snprintf(rootfs, sizeof(rootfs), "%s/rootfs", tmp);
        if (!src)
            rc = vs_error(err, EINVAL, "a container image needs \"source\": a rootfs tarball");
        else if (mkdir(rootfs, 0755) < 0)
            rc = vs_error_errno(err, "%s", rootfs);
        else
            rc = unpack_rootfs(d, op_id, src, rootfs, fp, err);
        struct stat st;
        if (rc == 0 && src && stat(src, &st) == 0)
            size = st.st_size;
        json_t *props = json_object_get(img, "properties");
        /* an OCI layout or a docker-archive: its layers make the rootfs */
        const char *format = json_string_value(json_object_get(req, "format"));
        if (rc == 0 && !(format && !strcmp(format, "rootfs")) &&
            image_layout_kind(rootfs) != IMAGE_ROOTFS) {
            char layout[4300];
            snprintf(layout, sizeof(layout), "%s/layout", tmp);
            if (rename(rootfs, layout) < 0 || mkdir(rootfs, 0755) < 0)
                rc = vs_error_errno(err, "%s", rootfs);
            else
                rc = image_from_layout(layout, rootfs, props, err);
            if (rc < 0)
                vs_error_prefix(err, "%s: ", src);
            json_object_set_new(props, "format",
                                json_string(image_layout_kind(layout) == IMAGE_OCI_LAYOUT
                                                ? "oci"
                                                : "docker-archive"));
            daemon_rm_rf(layout);
        }
        /* the command a container runs when none is configured: the
         * image's, else its init, else a shell */
        char init[4400];
        snprintf(init, sizeof(init), "%s/sbin/init", rootfs);
        if (rc == 0 && !json_object_get(props, "command"))
            json_object_set_new(props, "command",
                                access(init, X_OK) == 0 ? json_pack("[s]", "/sbin/init")
                                                        : json_pack("[s]", "/bin/sh"));
    } else {
        rc = import_vm_files(req, tmp, fp, &size, &arch, json_object_get(img, "properties"), err);
        json_t *props = json_object_get(img, "properties");
        json_object_set_new(props, "kernel", json_string("vmlinuz"));
        char initrd[4300];
        snprintf(initrd, sizeof(initrd), "%s/initrd.img", tmp);
        if (access(initrd, R_OK) == 0)
            json_object_set_new(props, "initrd", json_string("initrd.img"));
    }
    char final[4200];
    snprintf(final, sizeof(final), "%s/images/%s", d->state_dir, fp);
    if (rc == 0) {
        json_t *same = store_image_get(d->store, fp, NULL);
        if (same) {
            const char *a = json_string_value(json_object_get(same, "alias"));
            rc = vs_error(err, EEXIST, "this image is imported already (%.12s%s%s)", fp,
                          a ? " as " : "", a ? a : "");
            json_decref(same);
        }
    }
    if (rc == 0 && rename(tmp, final) < 0)
        rc = vs_error_errno(err, "%s", final);
    if (rc < 0) {
        /* a cancel shows in the reader as whatever its decompressor says */
        if (operation_cancelled(op_id))
            vs_error(err, ECANCELED, "the import was cancelled");
        daemon_rm_rf(tmp);
        store_image_delete(d->store, tmpfp, NULL);
        json_decref(img);
        return NULL;
    }
    /* the row is replaced by the final one; a crash in between leaves a
     * directory no row names, which image_reconcile removes */
    store_image_delete(d->store, tmpfp, NULL);
    json_object_set_new(img, "fingerprint", json_string(fp));
    json_object_set_new(img, "alias", alias ? json_string(alias) : json_null());
    json_object_set_new(img, "path", json_string(final));
    json_object_set_new(img, "size", json_integer(size));
    json_object_set_new(img, "arch", json_string(arch));
    json_object_set_new(img, "state", json_string("ready"));
    if (store_image_insert(d->store, img, err) < 0) {
        daemon_rm_rf(final);
        json_decref(img);
        return NULL;
    }
    daemon_event(d, "image", "imported", fp, json_pack("{s:s?}", "alias", alias));
    return img;
}

json_t *image_adopt(struct daemon *d, const char *dir, const char *type, const char *arch,
                    const char *alias, json_t *props, const char *fp, long long size, vs_err *err)
{
    if (alias && !valid_alias(alias)) {
        vs_error(err, EINVAL, "invalid image alias '%s'", alias);
        return NULL;
    }
    json_t *same = alias ? store_image_get(d->store, alias, NULL) : NULL;
    if (!same)
        same = store_image_get(d->store, fp, NULL);
    if (same) {
        json_decref(same);
        vs_error(err, EEXIST, "an image %s%s exists already", alias ? "with alias " : fp,
                 alias ? alias : "");
        return NULL;
    }
    char final[4200];
    snprintf(final, sizeof(final), "%s/images/%s", d->state_dir, fp);
    if (rename(dir, final) < 0) {
        vs_error_errno(err, "%s", final);
        return NULL;
    }
    json_t *img =
        json_pack("{s:s, s:s?, s:s, s:s, s:I, s:s, s:s, s:O, s:I}", "fingerprint", fp, "alias",
                  alias, "type", type, "arch", arch, "size", (json_int_t)size, "path", final,
                  "state", "ready", "properties", props, "created_at", (json_int_t)daemon_now_ms());
    if (!img || store_image_insert(d->store, img, err) < 0) {
        daemon_rm_rf(final);
        json_decref(img);
        return NULL;
    }
    daemon_event(d, "image", "imported", fp, json_pack("{s:s?}", "alias", alias));
    return img;
}

json_t *image_list(struct daemon *d, vs_err *err)
{
    return store_image_list(d->store, err);
}

int image_delete(struct daemon *d, const char *ref, vs_err *err)
{
    json_t *img = store_image_get(d->store, ref, err);
    if (!img)
        return -1;
    const char *fp = json_string_value(json_object_get(img, "fingerprint"));
    /* an instance still on it keeps it (under the lock instance creation
     * takes, so none is being made on it meanwhile) */
    pthread_mutex_lock(&d->alloc_lock);
    json_t *list = store_instance_list(d->store, err), *inst;
    size_t i;
    int rc = 0;
    json_array_foreach(list, i, inst)
    {
        const char *uses = json_string_value(json_object_get(inst, "image"));
        if (uses && !strcmp(uses, fp)) {
            rc = vs_error(err, EBUSY, "image '%s' is used by instance '%s'", ref,
                          json_string_value(json_object_get(inst, "name")));
            break;
        }
    }
    json_decref(list);
    if (rc == 0)
        rc = store_image_delete(d->store, fp, err);
    pthread_mutex_unlock(&d->alloc_lock);
    if (rc == 0) {
        daemon_rm_rf(json_string_value(json_object_get(img, "path")));
        daemon_event(d, "image", "deleted", fp, NULL);
    }
    json_decref(img);
    return rc;
}

json_t *image_set_alias(struct daemon *d, const char *ref, json_t *req, vs_err *err)
{
    json_t *a = json_object_get(req, "alias");
    if (!json_is_object(req) || !a || (!json_is_string(a) && !json_is_null(a))) {
        vs_error(err, EINVAL, "body must be {\"alias\": NAME} or {\"alias\": null}");
        return NULL;
    }
    const char *alias = json_string_value(a);
    if (alias && !valid_alias(alias)) {
        vs_error(err, EINVAL, "invalid image alias '%s' (letters, digits, - _ . :)", alias);
        return NULL;
    }
    /* one alias names one image: checked and set under the lock imports take */
    pthread_mutex_lock(&d->alloc_lock);
    json_t *img = store_image_get(d->store, ref, err), *out = NULL;
    json_t *other = img && alias ? store_image_get(d->store, alias, NULL) : NULL;
    const char *fp = json_string_value(json_object_get(img, "fingerprint"));
    if (!img) {
        /* err says why */
    } else if (!strcmp(json_string_value(json_object_get(img, "state")) ?: "", "importing")) {
        vs_error(err, EBUSY, "image '%s' is still being imported", ref);
    } else if (other && strcmp(json_string_value(json_object_get(other, "fingerprint")), fp)) {
        vs_error(err, EEXIST, "alias '%s' names image %.12s already", alias,
                 json_string_value(json_object_get(other, "fingerprint")));
    } else {
        json_object_set_new(img, "alias", alias ? json_string(alias) : json_null());
        if (store_image_update(d->store, img, err) == 0) {
            daemon_event(d, "image", "updated", fp, json_pack("{s:o}", "alias", json_incref(a)));
            out = json_incref(img);
        }
    }
    pthread_mutex_unlock(&d->alloc_lock);
    json_decref(other);
    json_decref(img);
    return out;
}

static bool image_known(struct daemon *d, const char *name)
{
    vs_err e = {0};
    json_t *img = store_image_get(d->store, name, &e);
    json_decref(img);
    return img != NULL || e.code != ENOENT; /* a store that cannot answer */
}

void image_reconcile(struct daemon *d)
{
    vs_err err = {0};
    json_t *list = store_image_list(d->store, &err), *img;
    size_t i;
    json_array_foreach(list, i, img)
    {
        if (strcmp(json_string_value(json_object_get(img, "state")), "importing"))
            continue;
        const char *fp = json_string_value(json_object_get(img, "fingerprint"));
        vs_info("image import %s was cut off: removing it", fp);
        daemon_rm_rf(json_string_value(json_object_get(img, "path")));
        store_image_delete(d->store, fp, &err);
    }
    json_decref(list);
    /* directories no record names (a crash between rename and insert) */
    daemon_sweep_dir(d, "images", image_known);
}
