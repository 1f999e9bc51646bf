/* A few commands for the riscv64 guest, which has no busybox (Debian 12 has
 * no riscv64 packages to take one from): enough for `vessel exec` to be
 * useful and testable there. One static binary; /bin/NAME links to it and
 * it runs the command its name says (or `toolbox NAME ARGS...`).
 *
 *   cat [FILE...]   echo [-n] ARGS   env   false   true   sleep SECONDS
 *   uname [-asnrvm]   hostname   ls [DIR...]   id   tty
 *   set-cpus N      online CPUs 0..N-1 and offline the rest (what `vessel vm
 *                   update --cpus N` asks the guest agent to run, as
 *                   qemu-ga's guest-set-vcpus)
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int cat(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc || i == 1; i++) {
        const char *path = i < argc ? argv[i] : "-";
        int fd = strcmp(path, "-") ? open(path, O_RDONLY) : 0;
        if (fd < 0) {
            fprintf(stderr, "cat: %s: %s\n", path, strerror(errno));
            rc = 1;
            continue;
        }
        char buf[65536];
        ssize_t n;
        while ((n = read(fd, buf, sizeof(buf))) > 0)
            for (ssize_t off = 0; off < n;) {
                ssize_t w = write(1, buf + off, (size_t)(n - off));
                if (w < 0)
                    return 1;
                off += w;
            }
        if (n < 0) {
            fprintf(stderr, "cat: %s: %s\n", path, strerror(errno));
            rc = 1;
        }
        if (fd)
            close(fd);
    }
    return rc;
}

static int echo(int argc, char **argv)
{
    int i = 1, nl = 1;
    if (argc > 1 && !strcmp(argv[1], "-n"))
        nl = 0, i++;
    for (; i < argc; i++)
        printf("%s%s", argv[i], i + 1 < argc ? " " : "");
    if (nl)
        putchar('\n');
    return fflush(stdout) ? 1 : 0;
}

static int uname_cmd(int argc, char **argv)
{
    struct utsname u;
    uname(&u);
    const char *f[] = {u.sysname, u.nodename, u.release, u.version, u.machine};
    const char *letters = "snrvm";
    int want[5] = {0};
    int any = 0;
    for (int i = 1; i < argc; i++) {
        if (argv[i][0] != '-' || !argv[i][1]) {
            fprintf(stderr, "uname: extra operand '%s'\n", argv[i]);
            return 1;
        }
        for (const char *c = argv[i] + 1; *c; c++) {
            const char *k = strchr(letters, *c);
            if (*c == 'a')
                for (int j = 0; j < 5; j++)
                    want[j] = 1;
            else if (k)
                want[k - letters] = 1;
            else {
                fprintf(stderr, "uname: invalid option -- '%c'\n", *c);
                return 1;
            }
            any = 1;
        }
    }
    if (!any)
        want[0] = 1;
    const char *sep = "";
    for (int j = 0; j < 5; j++)
        if (want[j]) {
            printf("%s%s", sep, f[j]);
            sep = " ";
        }
    putchar('\n');
    return 0;
}

static int ls(int argc, char **argv)
{
    int rc = 0;
    for (int i = 1; i < argc || i == 1; i++) {
        const char *path = i < argc ? argv[i] : ".";
        DIR *d = opendir(path);
        if (!d) {
            fprintf(stderr, "ls: %s: %s\n", path, strerror(errno));
            rc = 2;
            continue;
        }
        struct dirent *e;
        while ((e = readdir(d)))
            if (e->d_name[0] != '.')
                printf("%s\n", e->d_name);
        closedir(d);
    }
    return rc;
}

/* Write "0" or "1" to cpu's online file; 0 or an errno. */
static int cpu_online(int cpu, int on)
{
    char path[96];
    snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
    int fd = open(path, O_WRONLY);
    if (fd < 0)
        return errno;
    int rc = write(fd, on ? "1" : "0", 1) == 1 ? 0 : errno;
    close(fd);
    return rc;
}

static int set_cpus(int argc, char **argv)
{
    int want = argc == 2 ? atoi(argv[1]) : 0, present = 1, rc = 0;
    if (want < 1) {
        fprintf(stderr, "usage: set-cpus N (N >= 1)\n");
        return 2;
    }
    char path[96];
    struct stat st;
    for (;; present++) {
        snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d", present);
        if (stat(path, &st) < 0)
            break;
    }
    if (want > present) {
        fprintf(stderr, "set-cpus: %d CPUs asked for, %d present\n", want, present);
        rc = 1;
    }
    /* cpu0 has no online file: it stays */
    for (int cpu = present - 1; cpu >= want && cpu > 0; cpu--) {
        int e = cpu_online(cpu, 0);
        if (e && e != ENOENT) {
            fprintf(stderr, "set-cpus: cpu%d offline: %s\n", cpu, strerror(e));
            rc = 1;
        }
    }
    for (int cpu = 1; cpu < want && cpu < present; cpu++) {
        int e = cpu_online(cpu, 1);
        if (e) {
            fprintf(stderr, "set-cpus: cpu%d online: %s\n", cpu, strerror(e));
            rc = 1;
        }
    }
    printf("set-cpus: %ld online\n", sysconf(_SC_NPROCESSORS_ONLN));
    return rc;
}

int main(int argc, char **argv)
{
    const char *name = strrchr(argv[0], '/') ? strrchr(argv[0], '/') + 1 : argv[0];
    if (!strcmp(name, "toolbox") && argc > 1) {
        argv++;
        argc--;
        name = argv[0];
    }
    if (!strcmp(name, "cat"))
        return cat(argc, argv);
    if (!strcmp(name, "echo"))
        return echo(argc, argv);
    if (!strcmp(name, "true"))
        return 0;
    if (!strcmp(name, "false"))
        return 1;
    if (!strcmp(name, "uname"))
        return uname_cmd(argc, argv);
    if (!strcmp(name, "ls"))
        return ls(argc, argv);
    if (!strcmp(name, "set-cpus"))
        return set_cpus(argc, argv);
    if (!strcmp(name, "env")) {
        for (char **e = environ; *e; e++)
            printf("%s\n", *e);
        return 0;
    }
    if (!strcmp(name, "hostname")) {
        char h[256] = "";
        gethostname(h, sizeof(h) - 1);
        printf("%s\n", h);
        return 0;
    }
    if (!strcmp(name, "tty")) {
        const char *t = ttyname(0);
        printf("%s\n", t ? t : "not a tty");
        return t ? 0 : 1;
    }
    if (!strcmp(name, "pwd")) {
        char cwd[4096];
        if (!getcwd(cwd, sizeof(cwd)))
            return 1;
        printf("%s\n", cwd);
        return 0;
    }
    if (!strcmp(name, "id")) {
        printf("uid=%u gid=%u\n", (unsigned)getuid(), (unsigned)getgid());
        return 0;
    }
    if (!strcmp(name, "sleep") && argc == 2) {
        double s = strtod(argv[1], NULL);
        struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
            ;
        return 0;
    }
    fprintf(stderr,
            "toolbox: %s: unknown command (cat echo env false hostname id ls set-cpus sleep "
            "true tty uname)\n",
            name);
    return 127;
}
