/* The runner: one VM in this process. It holds the process policy the
 * machines used to carry themselves (the console, signals, thread stacks,
 * the control API server) and drives a machine only through its
 * vm_machine_ops and vm_control, so a machine knows nothing of the API and
 * the API nothing of a machine's architecture. */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "api/server.h"
#include "hw/serial_console.h"
#include "jail/jail.h"
#include "jail/landlock.h"
#include "jail/seccomp_vm.h"
#include "util/log.h"
#include "vm/limits.h"
#include "vm/machine.h"

struct runner {
    pthread_mutex_t lock;
    struct vm_control *ctl; /* NULL while no machine takes input */
    int sigfd, stopfd;
    pthread_t sig_thread;
    bool sig_thread_started;
};

/* Console input goes to whichever machine is attached; none is attached
 * before it holds its final (booted or restored) state, nor while it is torn
 * down. */
static size_t console_sink(void *opaque, const uint8_t *buf, size_t len)
{
    struct runner *r = opaque;
    size_t n = 0;
    pthread_mutex_lock(&r->lock);
    if (r->ctl && r->ctl->console_input)
        n = r->ctl->console_input(r->ctl->machine, buf, len);
    pthread_mutex_unlock(&r->lock);
    return n;
}

static void console_quit(void *opaque)
{
    struct runner *r = opaque;
    pthread_mutex_lock(&r->lock);
    if (r->ctl && r->ctl->request_stop)
        r->ctl->request_stop(r->ctl->machine);
    pthread_mutex_unlock(&r->lock);
}

/* Signals that end the VM (and SIGUSR1) are taken synchronously here and
 * handed to the machine; signals that arrive before it runs wait in the
 * signalfd. */
static void *signal_thread(void *arg)
{
    struct runner *r = arg;
    pthread_setname_np(pthread_self(), "vessel-signals");
    vs_thread_role_enter(VS_THREAD_IO, "vessel-signals");
    for (;;) {
        struct pollfd p[2] = {{.fd = r->stopfd, .events = POLLIN},
                              {.fd = r->sigfd, .events = POLLIN}};
        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (p[0].revents & POLLIN)
            break;
        struct signalfd_siginfo si;
        if (!(p[1].revents & POLLIN) || read(r->sigfd, &si, sizeof(si)) != sizeof(si))
            continue;
        pthread_mutex_lock(&r->lock);
        if (r->ctl && r->ctl->host_signal)
            r->ctl->host_signal(r->ctl->machine, (int)si.ssi_signo);
        pthread_mutex_unlock(&r->lock);
    }
    return NULL;
}

static void attach(struct runner *r, struct vm_control *ctl)
{
    pthread_mutex_lock(&r->lock);
    r->ctl = ctl;
    pthread_mutex_unlock(&r->lock);
}

int vm_runner_run(const struct vm_machine_ops *type, const struct vm_config *cfg,
                  struct vm_restore_source *restore, vs_err *err)
{
    struct guest_mem *adopt = restore ? restore->mem : NULL;
    /* Before the first thread starts: landlock covers only the threads a
     * thread starts after it restricts itself; each thread loads its role's
     * seccomp filter when it starts (src/jail/seccomp_vm.c), this one
     * before run. */
    const char *origin = restore ? restore->origin_dir : NULL;
    int jailed_status = 0, j = jail_enter(cfg, origin, &jailed_status, err);
    if (j != 0) {
        /* -1: no jail; 1: the jailed child ran the VM and has ended */
        if (adopt)
            guest_mem_destroy(adopt);
        return j < 0 ? -1 : jailed_status;
    }
    if (jail_landlock_apply(cfg, origin, err) < 0 || jail_seccomp_prepare(cfg, err) < 0) {
        if (adopt)
            guest_mem_destroy(adopt);
        return -1;
    }
    /* Every thread of the VM process (console, I/O loop, virtio workers,
     * vCPUs) gets a 1 MiB stack instead of glibc's 8 MiB: a mapping smaller
     * than 2 MiB can never be backed by a transparent huge page, which on a
     * THP=always host costs 2 MiB of VMM memory per thread for a few KiB of
     * stack. */
    pthread_attr_t def;
    if (pthread_attr_init(&def) == 0) {
        pthread_attr_setstacksize(&def, 1u << 20);
        pthread_setattr_default_np(&def);
        pthread_attr_destroy(&def);
    }
    struct runner r = {.sigfd = -1, .stopfd = -1};
    pthread_mutex_init(&r.lock, NULL);
    struct serial_console *console = NULL;
    if (serial_console_open(cfg->console, &console, err) < 0) {
        if (adopt)
            guest_mem_destroy(adopt);
        pthread_mutex_destroy(&r.lock);
        return -1;
    }
    /* Every thread started from here inherits the mask. */
    sigset_t set, old;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGHUP);
    sigaddset(&set, SIGUSR1);
    pthread_sigmask(SIG_BLOCK, &set, &old);
    r.sigfd = signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
    r.stopfd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct sigaction ign = {.sa_handler = SIG_IGN}, old_pipe;
    sigaction(SIGPIPE, &ign, &old_pipe);

    int status = -1;
    struct api_server *api = NULL;
    struct vm_control *ctl = NULL;
    struct vm_host host = {.console = console};
    struct vm_limits *limits = NULL;
    /* into its own cgroup before guest RAM is touched, so it is charged there */
    if (vm_limits_start(cfg, &limits, err) < 0 || type->create(cfg, adopt, &host, &ctl, err) < 0)
        goto out;
    ctl->limits = limits;
    if (restore)
        restore->ctl = ctl;
    struct state_reader *state = restore ? restore->state : NULL;
    if (restore && !state &&
        (!restore->fetch_state || restore->fetch_state(restore->ready_opaque, &state, err) < 0)) {
        if (!restore->fetch_state)
            vs_error(err, EINVAL, "a restore with no state to load");
        goto out;
    }
    if (restore && ctl->load_state(ctl->machine, state, err) < 0)
        goto out;
    if (cfg->api_sock && api_server_start(cfg->api_sock, ctl, restore, &api, err) < 0)
        goto out;
    if (restore && restore->ready && restore->ready(restore->ready_opaque, err) < 0)
        goto out;
    attach(&r, ctl);
    if (r.sigfd >= 0 && r.stopfd >= 0 &&
        pthread_create(&r.sig_thread, NULL, signal_thread, &r) == 0)
        r.sig_thread_started = true;
    /* Input starts only now that the machine holds its final (booted or
     * restored) state: nothing typed ahead is pushed into a UART that is
     * about to be overwritten. */
    if (serial_console_start(console, console_sink, console_quit, &r, err) < 0)
        goto out;
    serial_console_rx_ready(console);
    /* set up (files open, sockets bound): the jail's uid from here on */
    if (jail_drop_privileges(cfg, err) < 0)
        goto out;
    vs_thread_role_enter(VS_THREAD_MAIN, "vessel-main");
    status = type->run(ctl, err);
out:
    if (r.sig_thread_started) {
        uint64_t one = 1;
        ssize_t n = write(r.stopfd, &one, sizeof(one));
        (void)n;
        pthread_join(r.sig_thread, NULL);
    }
    if (api)
        api_server_stop(api);
    attach(&r, NULL);
    if (ctl)
        type->destroy(ctl);
    vm_limits_stop(limits);
    serial_console_close(console);
    if (r.sigfd >= 0)
        close(r.sigfd);
    if (r.stopfd >= 0)
        close(r.stopfd);
    sigaction(SIGPIPE, &old_pipe, NULL);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    pthread_mutex_destroy(&r.lock);
    jail_seccomp_finish();
    return status;
}

int vm_machine_run(const struct vm_config *cfg, vs_err *err)
{
    const struct vm_machine_ops *t = vm_machine_find(cfg->arch, err);
    return t ? vm_runner_run(t, cfg, NULL, err) : -1;
}

int vm_machine_restore(const struct vm_config *cfg, struct vm_restore_source *src, vs_err *err)
{
    const struct vm_machine_ops *t = vm_machine_find(cfg->arch, err);
    if (!t) {
        guest_mem_destroy(src->mem);
        return -1;
    }
    return vm_runner_run(t, cfg, src, err);
}
