/* vesseld's life cycle: state directory, store, reconciliation with the
 * host after a restart, the HTTP server, and shutdown on SIGTERM (which
 * leaves every instance running). */
#include "daemon/daemon.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <poll.h>

#include "daemon/http.h"
#include "util/log.h"

long long daemon_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (flag == FTW_DP ? rmdir : unlink)(path);
    return 0;
}

void daemon_rm_rf(const char *path)
{
    nftw(path, rm_entry, 32, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
}

void daemon_sweep_dir(struct daemon *d, const char *sub,
                      bool (*known)(struct daemon *d, const char *name))
{
    char dir[4200];
    snprintf(dir, sizeof(dir), "%s/%s", d->state_dir, sub);
    DIR *dp = opendir(dir);
    struct dirent *de;
    while (dp && (de = readdir(dp))) {
        if (de->d_name[0] == '.' || known(d, de->d_name))
            continue;
        char path[4500], root[4600];
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        snprintf(root, sizeof(root), "%s/rootfs", path);
        vs_info("removing %s: no record names it", path);
        umount2(root, MNT_DETACH); /* a container's overlay, if one is left */
        daemon_rm_rf(path);
    }
    if (dp)
        closedir(dp);
}

static int mkdir_p(const char *path, mode_t mode, vs_err *err)
{
    char tmp[4096];
    if (snprintf(tmp, sizeof(tmp), "%s", path) >= (int)sizeof(tmp))
        return vs_error(err, ENAMETOOLONG, "%s: path too long", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = 0;
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            return vs_error_errno(err, "mkdir %s", tmp);
        *p = '/';
    }
    if (mkdir(tmp, mode) < 0 && errno != EEXIST)
        return vs_error_errno(err, "mkdir %s", tmp);
    return 0;
}

bool daemon_claim(struct daemon *d, const char *name, vs_err *err)
{
    pthread_mutex_lock(&d->lock);
    int free_slot = -1;
    for (int i = 0; i < DAEMON_MAX_BUSY; i++) {
        if (d->busy[i] && !strcmp(d->busy[i], name)) {
            pthread_mutex_unlock(&d->lock);
            vs_error(err, EBUSY, "'%s' is busy with another request; try again when it ends", name);
            return false;
        }
        if (!d->busy[i] && free_slot < 0)
            free_slot = i;
    }
    if (free_slot < 0) {
        pthread_mutex_unlock(&d->lock);
        vs_error(err, EBUSY, "too many requests in progress");
        return false;
    }
    d->busy[free_slot] = strdup(name);
    pthread_mutex_unlock(&d->lock);
    return d->busy[free_slot] != NULL;
}

void daemon_release(struct daemon *d, const char *name)
{
    pthread_mutex_lock(&d->lock);
    for (int i = 0; i < DAEMON_MAX_BUSY; i++) {
        if (d->busy[i] && !strcmp(d->busy[i], name)) {
            free(d->busy[i]);
            d->busy[i] = NULL;
            break;
        }
    }
    pthread_mutex_unlock(&d->lock);
}

int daemon_start(struct daemon *d, const struct daemon_config *cfg, vs_err *err)
{
    memset(d, 0, sizeof(*d));
    d->stop_fd = -1;
    d->lock_fd = -1;
    pthread_mutex_init(&d->alloc_lock, NULL);
    pthread_mutex_init(&d->lock, NULL);
    d->cfg.no_vm_jail = cfg->no_vm_jail;
    d->state_dir = strdup(cfg->state_dir ? cfg->state_dir : "/var/lib/vessel");
    d->socket_path = strdup(cfg->socket_path ? cfg->socket_path : "/run/vessel/vessel.sock");
    d->vessel_bin = strdup(cfg->vessel_bin ? cfg->vessel_bin : "vessel");
    if (!d->state_dir || !d->socket_path || !d->vessel_bin ||
        asprintf(&d->oci_root, "%s/containers", d->state_dir) < 0)
        return vs_error(err, ENOMEM, "out of memory");
    char sub[4200];
    if (mkdir_p(d->state_dir, 0700, err) < 0)
        return -1;
    const char *dirs[] = {"images", "instances", "containers"};
    for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++) {
        snprintf(sub, sizeof(sub), "%s/%s", d->state_dir, dirs[i]);
        if (mkdir_p(sub, 0700, err) < 0)
            return -1;
    }
    char *sockdir = strdup(d->socket_path), *slash = sockdir ? strrchr(sockdir, '/') : NULL;
    if (slash && slash != sockdir) {
        *slash = 0;
        if (mkdir_p(sockdir, 0755, err) < 0) {
            free(sockdir);
            return -1;
        }
    }
    free(sockdir);
    /* one daemon per state directory, and one per socket: a second one
     * fails here, before it touches anything the first one is doing */
    snprintf(sub, sizeof(sub), "%s/vesseld.lock", d->state_dir);
    d->lock_fd = open(sub, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (d->lock_fd < 0)
        return vs_error_errno(err, "%s", sub);
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) < 0)
        return vs_error(err, EADDRINUSE, "%s: another vesseld is using this state directory",
                        d->state_dir);
    if (http_socket_in_use(d->socket_path))
        return vs_error(err, EADDRINUSE, "%s: another vesseld is serving it", d->socket_path);
    snprintf(sub, sizeof(sub), "%s/vessel.db", d->state_dir);
    if (cluster_open(d, err) < 0 || (!d->store && store_open(sub, &d->store, err) < 0))
        return -1;
    /* what a previous daemon left: finish or roll back, then look at what runs */
    operation_reconcile(d);
    image_reconcile(d);
    instance_reconcile(d);
    cluster_start(d);
    /* the managed network; where none can be made, instances go without
     * (VMs can still use user-mode networking) */
    const char *net = cfg->network ? cfg->network : "vessel0:10.87.0.1/24";
    if (strcmp(net, "none")) {
        if (network_parse(net, &d->net, err) < 0)
            return -1;
        vs_err nerr = {0};
        if (network_start(d, &nerr) < 0) {
            if (cfg->network)
                return vs_error(err, nerr.code, "%s", nerr.msg);
            vs_warn("vesseld: no managed network (%s); instances get none", nerr.msg);
            memset(&d->net, 0, sizeof(d->net));
        }
    }

    if (http_server_start(d, &d->http, err) < 0)
        return -1;
    if (cfg->https_addr && https_server_start(d, cfg->https_addr, &d->https, err) < 0)
        return -1;
    return 0;
}

int daemon_run(struct daemon *d, vs_err *err)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    int fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (fd < 0)
        return vs_error_errno(err, "signalfd");
    vs_log(VS_LOG_INFO, "vesseld: serving %s (state in %s)", d->socket_path, d->state_dir);
    for (;;) {
        struct signalfd_siginfo si;
        ssize_t n = read(fd, &si, sizeof(si));
        if (n < 0 && errno == EINTR)
            continue;
        if (n != sizeof(si) || si.ssi_signo != SIGHUP)
            break;
    }
    close(fd);
    vs_log(VS_LOG_INFO, "vesseld: stopping; instances keep running");
    return 0;
}

void daemon_free(struct daemon *d)
{
    /* Threads may still be in requests or operations (a stop waiting for
     * its timeout, an import): the store and the servers stay up for them
     * until the process exits; only the socket goes now. */
    if (d->http)
        unlink(d->socket_path);
    if (d->store)
        return;
    http_server_stop(d->https);
    http_server_stop(d->http);
    for (int i = 0; i < DAEMON_MAX_BUSY; i++)
        free(d->busy[i]);
    free(d->state_dir);
    free(d->socket_path);
    free(d->vessel_bin);
    free(d->oci_root);
    pthread_mutex_destroy(&d->lock);
}
