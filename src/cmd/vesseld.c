/* vesseld: the management daemon (src/daemon). Arguments only. */
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/daemon.h"
#include "util/log.h"

#ifndef VESSEL_VERSION
#define VESSEL_VERSION "dev"
#endif

static void usage(FILE *f)
{
    fprintf(f,
            "usage: vesseld [--socket PATH] [--state-dir DIR] [--vessel PATH] [--https ADDR:PORT]\n"
            "               [--vm-jail on|off] [--debug]\n\n"
            "  --socket PATH     REST API socket (default /run/vessel/vessel.sock, mode 0660,\n"
            "                    group vessel when it exists)\n"
            "  --state-dir DIR   database, images and instances (default /var/lib/vessel)\n"
            "  --vessel PATH     the vessel binary that runs VMs (default: beside vesseld)\n"
            "  --network BRIDGE:ADDR/PREFIX | none\n"
            "                    the managed bridge with NAT and DHCP (default\n"
            "                    vessel0:10.87.0.1/24; none: no network)\n"
            "  --https ADDR:PORT also serve HTTPS on TCP, to enrolled client certificates only\n"
            "                    ('vessel trust add CERT'); off by default\n"
            "  --vm-jail on|off  start every VM in a jail of its own (default on; VMs are\n"
            "                    landlocked to their own files either way; off is for\n"
            "                    debugging)\n");
}

/* The `vessel` binary next to this one (the build tree, or /usr/bin). */
static char *sibling_vessel(void)
{
    char self[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0)
        return NULL;
    self[n] = 0;
    char *out = NULL;
    if (asprintf(&out, "%s/vessel", dirname(self)) < 0)
        return NULL;
    return out;
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"socket", required_argument, 0, 's'},  {"state-dir", required_argument, 0, 'd'},
        {"vessel", required_argument, 0, 'v'},  {"https", required_argument, 0, 'H'},
        {"network", required_argument, 0, 'N'}, {"vm-jail", required_argument, 0, 'J'},
        {"debug", no_argument, 0, 'D'},         {"help", no_argument, 0, 'h'},
        {"version", no_argument, 0, 'V'},       {0, 0, 0, 0}};
    struct daemon_config cfg = {.socket_path = getenv("VESSEL_SOCKET")};
    int c;
    while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
        switch (c) {
        case 's':
            cfg.socket_path = optarg;
            break;
        case 'd':
            cfg.state_dir = optarg;
            break;
        case 'v':
            cfg.vessel_bin = optarg;
            break;
        case 'N':
            cfg.network = optarg;
            break;
        case 'H':
            cfg.https_addr = optarg;
            break;
        case 'J':
            if (strcmp(optarg, "on") && strcmp(optarg, "off")) {
                fprintf(stderr, "vesseld: --vm-jail %s: on or off\n", optarg);
                return 2;
            }
            cfg.no_vm_jail = !strcmp(optarg, "off");
            break;
        case 'D':
            vs_log_set_level(VS_LOG_DEBUG);
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("vesseld %s\n", VESSEL_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "vesseld: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    char *sibling = cfg.vessel_bin ? NULL : sibling_vessel();
    if (!cfg.vessel_bin)
        cfg.vessel_bin = sibling;
    /* Signals go to daemon_run's signalfd; every thread inherits the mask. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    struct daemon d;
    vs_err err = {0};
    int rc = 0;
    if (daemon_start(&d, &cfg, &err) < 0 || daemon_run(&d, &err) < 0) {
        fprintf(stderr, "vesseld: %s\n", err.msg);
        rc = 1;
    }
    daemon_free(&d);
    free(sibling);
    return rc;
}
