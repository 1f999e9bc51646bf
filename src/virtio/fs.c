/* virtio-fs (virtio 1.2, 5.11): a host directory shared with the guest,
 * which mounts it by tag (`mount -t virtiofs TAG /mnt`). The FUSE requests
 * are served by Debian's virtiofsd (/usr/lib/qemu/virtiofsd), started per
 * share and reached over vhost-user (virtio/vhost_user.h); vessel keeps
 * the transport and the config space (tag, number of request queues).
 *
 * virtiofsd runs with one request queue and no thread pool, so it
 * completes each queue's requests in order: when it dies, the requests
 * the guest queued past the used ring's index are exactly those without an
 * answer, and vessel answers them (and every later one) with EIO, so the
 * guest's file operations fail instead of hanging.
 *
 * Snapshots: refused. The backend's state (open files, FUSE inodes, its
 * ring positions) is in virtiofsd, outside what vessel can save. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "util/cleanup.h"
#include "util/log.h"
#include "util/unix_socket.h"
#include "virtio/devices.h"
#include "virtio/vhost_user.h"

#define VIRTIO_FS_TAG_LEN 36
#define VIRTIO_FS_NQUEUES 2 /* hiprio + one request queue */

/* FUSE (include/uapi/linux/fuse.h): what an error answer needs. */
#define FUSE_FORGET 2
#define FUSE_BATCH_FORGET 42
struct fuse_in_header {
    uint32_t len, opcode;
    uint64_t unique, nodeid;
    uint32_t uid, gid, pid, padding;
};
struct fuse_out_header {
    uint32_t len;
    int32_t error;
    uint64_t unique;
};

struct virtio_fs {
    struct virtio_dev dev;
    char name[32];
    char what[80];
    char tag[VIRTIO_FS_TAG_LEN + 1];
    struct vhost_user_frontend fe;
    pid_t daemon;
    char rundir[64], sock_path[80], log_path[96];
    int log_fd; /* virtiofsd's log, kept open once its path is gone */
    struct virtq_elem elem;
};

static struct virtio_fs *to_fs(struct virtio_dev *d)
{
    return (struct virtio_fs *)d;
}

/* The last line virtiofsd wrote to its log, for a failure's message. */
static void last_log_line(struct virtio_fs *f, char *out, size_t len)
{
    out[0] = 0;
    int fd = f->log_fd;
    char buf[512];
    off_t end = fd >= 0 ? lseek(fd, 0, SEEK_END) : -1;
    if (end <= 0)
        return;
    off_t from = end > (off_t)sizeof(buf) - 1 ? end - (off_t)sizeof(buf) + 1 : 0;
    ssize_t n = pread(fd, buf, sizeof(buf) - 1, from);
    if (n <= 0)
        return;
    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
        n--;
    buf[n] = 0;
    char *line = strrchr(buf, '\n');
    const char *src = line ? line + 1 : buf;
    size_t k = strlen(src) < len ? strlen(src) : len - 1;
    memcpy(out, src, k);
    out[k] = 0;
}

/* Answer everything queued on q with EIO (the backend is gone). Lock held. */
static void fail_queue_locked(struct virtio_fs *f, unsigned q)
{
    struct virtio_dev *d = &f->dev;
    struct virtq *vq = &d->vqs[q];
    if (!vq->ready || vq->error)
        return;
    bool pushed = false;
    for (;;) {
        int r = virtq_pop(vq, &f->elem);
        if (r < 0) {
            virtio_dev_set_broken_locked(d, vq->error);
            return;
        }
        if (r == 0)
            break;
        struct fuse_in_header in = {0};
        size_t got = iov_to_buf(f->elem.iov, f->elem.nout, 0, &in, sizeof(in));
        uint32_t len = 0;
        if (got == sizeof(in) && in.opcode != FUSE_FORGET && in.opcode != FUSE_BATCH_FORGET) {
            struct fuse_out_header out = {.len = sizeof(out), .error = -EIO, .unique = in.unique};
            len = (uint32_t)iov_from_buf(f->elem.iov + f->elem.nout, f->elem.nin, 0, &out,
                                         sizeof(out));
        }
        virtq_push(vq, &f->elem, len);
        pushed = true;
    }
    if (pushed)
        virtio_queue_notify_locked(d, q);
}

/* The backend is gone: take the rings over where it left them. */
static void fs_on_failed(struct vhost_user_frontend *fe)
{
    struct virtio_fs *f = to_fs(fe->dev);
    struct virtio_dev *d = &f->dev;
    char said[256];
    last_log_line(f, said, sizeof(said));
    if (said[0])
        vs_warn("(virtiofsd's last words: %s)", said);
    pthread_mutex_lock(&d->lock);
    for (unsigned q = 0; q < d->nvqs; q++) {
        struct virtq *vq = &d->vqs[q];
        uint16_t used;
        if (!vq->ready || guest_mem_read(d->mem, vq->used_gpa + 2, &used, 2) < 0)
            continue;
        vq->last_avail = vq->used_idx = used;
        vq->signalled_used_valid = false;
        fail_queue_locked(f, q);
    }
    pthread_mutex_unlock(&d->lock);
}

static void fs_notify(struct virtio_dev *d, unsigned q)
{
    struct virtio_fs *f = to_fs(d);
    if (!f->fe.failed) {
        vhost_user_frontend_kick(&f->fe, q);
        return;
    }
    pthread_mutex_lock(&d->lock);
    if (virtio_dev_running(d))
        fail_queue_locked(f, q);
    pthread_mutex_unlock(&d->lock);
}

static void fs_driver_ok(struct virtio_dev *d)
{
    struct virtio_fs *f = to_fs(d);
    vs_err err = {0};
    if (f->fe.failed) {
        fs_on_failed(&f->fe);
        return;
    }
    if (vhost_user_frontend_start(&f->fe, &err) < 0)
        vhost_user_frontend_fail(&f->fe, err.msg);
}

static void fs_reset(struct virtio_dev *d)
{
    vhost_user_frontend_stop(&to_fs(d)->fe);
}

static int fs_queue_eventfd(struct virtio_dev *d, unsigned q)
{
    return vhost_user_frontend_kickfd(&to_fs(d)->fe, q);
}

static int fs_save(struct virtio_dev *d, struct state_writer *w, vs_err *err)
{
    struct virtio_fs *f = to_fs(d);
    return vs_error(err, ENOTSUP,
                    "%s: a VM with a virtio-fs share (vhost-user, served by virtiofsd) cannot be "
                    "snapshotted or migrated: the share's state is in virtiofsd",
                    f->what);
}

/* Wait up to ms for the daemon to exit; true if it did. */
static bool reaped(struct virtio_fs *f, int ms)
{
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i <= ms / 5; i++) {
        if (waitpid(f->daemon, NULL, WNOHANG) != 0)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* virtiofsd exits when its frontend hangs up (the socket closed before);
 * SIGTERM, then SIGKILL, if it does not. */
static void stop_daemon(struct virtio_fs *f)
{
    if (f->daemon > 0 && !reaped(f, 1000)) {
        kill(f->daemon, SIGTERM);
        if (!reaped(f, 1000)) {
            kill(f->daemon, SIGKILL);
            waitpid(f->daemon, NULL, 0);
        }
    }
    f->daemon = 0;
    if (f->sock_path[0])
        unlink(f->sock_path);
    if (f->log_path[0])
        unlink(f->log_path);
    if (f->rundir[0])
        rmdir(f->rundir);
    if (f->log_fd >= 0)
        close(f->log_fd);
    f->log_fd = -1;
}

static void fs_destroy(struct virtio_dev *d)
{
    struct virtio_fs *f = to_fs(d);
    vhost_user_frontend_unwatch(&f->fe);
    vhost_user_frontend_destroy(&f->fe);
    stop_daemon(f);
    virtio_dev_fini(d);
    free(f);
}

static const struct virtio_dev_ops fs_ops = {
    .queue_notify = fs_notify,
    .queue_eventfd = fs_queue_eventfd,
    .driver_ok = fs_driver_ok,
    .reset = fs_reset,
    .save = fs_save,
    .destroy = fs_destroy,
};

/* Start virtiofsd on a socket of its own and connect to it. */
static int start_daemon(struct virtio_fs *f, const struct vm_share_config *sc, vs_err *err)
{
    const char *tmp = getenv("TMPDIR");
    snprintf(f->rundir, sizeof(f->rundir), "%s/vessel-fs-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (strlen(f->rundir) + 6 >= sizeof(f->sock_path) || !mkdtemp(f->rundir)) {
        f->rundir[0] = 0;
        return vs_error_errno(err, "%s: cannot make a directory for virtiofsd's socket", f->what);
    }
    snprintf(f->sock_path, sizeof(f->sock_path), "%s/sock", f->rundir);
    cleanup_free char *sock_arg = NULL, *src_arg = NULL;
    if (asprintf(&sock_arg, "--socket-path=%s", f->sock_path) < 0 ||
        asprintf(&src_arg, "source=%s", sc->dir) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    const char *bin = vm_virtiofsd_path();
    /* namespace sandbox (mount, pid and net namespaces, pivot_root into the
     * share) as root; one request queue served in order (see above) */
    char *argv[] = {(char *)bin,
                    sock_arg,
                    "-o",
                    src_arg,
                    "-o",
                    "cache=auto",
                    "-o",
                    geteuid() == 0 ? "sandbox=namespace" : "sandbox=chroot",
                    "-o",
                    "log_level=warn",
                    "--thread-pool-size=0",
                    NULL};
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    /* its messages in a log next to its socket: quoted when it fails (it
     * also complains there when vessel hangs up at the end) */
    snprintf(f->log_path, sizeof(f->log_path), "%s/virtiofsd.log", f->rundir);
    posix_spawn_file_actions_addopen(&fa, 2, f->log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    f->log_fd = open(f->log_path, O_RDONLY | O_CREAT | O_CLOEXEC, 0600);
    extern char **environ;
    int rc = posix_spawn(&f->daemon, bin, &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        f->daemon = 0;
        return vs_error(err, rc, "%s: cannot start %s: %s", f->what, bin, strerror(rc));
    }
    /* its socket appears once it is ready */
    struct timespec ts = {0, 5 * 1000 * 1000};
    for (int i = 0; i < 2000; i++) {
        int status;
        if (waitpid(f->daemon, &status, WNOHANG) == f->daemon) {
            f->daemon = 0;
            char said[256];
            last_log_line(f, said, sizeof(said));
            return vs_error(err, ECHILD, "%s: %s exited (status %d) before it was ready%s%s",
                            f->what, bin,
                            WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status),
                            said[0] ? ": " : "", said);
        }
        int fd = vs_unix_connect(f->sock_path, NULL);
        if (fd >= 0) {
            /* connected: nothing needs the paths any more, so a vessel
             * killed with SIGKILL leaves nothing behind */
            unlink(f->sock_path);
            unlink(f->log_path);
            rmdir(f->rundir);
            f->sock_path[0] = f->log_path[0] = f->rundir[0] = 0;
            return fd;
        }
        nanosleep(&ts, NULL);
    }
    return vs_error(err, ETIMEDOUT, "%s: %s did not open %s within 10 s", f->what, bin,
                    f->sock_path);
}

struct virtio_dev *virtio_fs_new(struct guest_mem *mem, const struct vm_share_config *sc,
                                 unsigned index, struct vs_event_loop *loop, vs_err *err)
{
    struct virtio_fs *f = calloc(1, sizeof(*f));
    if (!f) {
        vs_error(err, ENOMEM, "virtio-fs: out of memory");
        return NULL;
    }
    snprintf(f->name, sizeof(f->name), "virtio-fs%u", index);
    snprintf(f->tag, sizeof(f->tag), "%s", sc->tag);
    snprintf(f->what, sizeof(f->what), "virtio-fs share '%s'", f->tag);
    virtio_dev_init(&f->dev, f->name, VIRTIO_ID_FS, 0, VIRTIO_FS_NQUEUES, VIRTQ_MAX_SIZE, &fs_ops,
                    mem);
    f->fe.sock = -1;
    f->log_fd = -1;
    f->fe.on_failed = fs_on_failed;
    /* config: tag[36] (NUL-padded), le32 num_request_queues */
    f->dev.config_len = VIRTIO_FS_TAG_LEN + 4;
    memcpy(f->dev.config, f->tag, strlen(f->tag));
    virtio_config_put_u32(&f->dev, VIRTIO_FS_TAG_LEN, VIRTIO_FS_NQUEUES - 1);
    int sock = start_daemon(f, sc, err);
    if (sock < 0 || vhost_user_frontend_init(&f->fe, &f->dev, f->what, sock, loop, err) < 0) {
        fs_destroy(&f->dev);
        return NULL;
    }
    /* what the driver may see: the ring features both sides know */
    uint64_t ring = (1ULL << VIRTIO_F_VERSION_1) | (1ULL << VIRTIO_F_RING_INDIRECT_DESC) |
                    (1ULL << VIRTIO_F_RING_EVENT_IDX);
    f->dev.host_features &= f->fe.backend_features & ring;
    if (!(f->dev.host_features & (1ULL << VIRTIO_F_VERSION_1))) {
        vs_error(err, EPROTO, "%s: virtiofsd does not offer VIRTIO_F_VERSION_1", f->what);
        fs_destroy(&f->dev);
        return NULL;
    }
    vs_debug("%s: %s pid %d, features 0x%llx", f->what, vm_virtiofsd_path(), (int)f->daemon,
             (unsigned long long)f->dev.host_features);
    return &f->dev;
}
