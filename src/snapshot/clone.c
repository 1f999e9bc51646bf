/* Many VMs from one snapshot: each clone is `vessel vm restore` in its own
 * process (one VM per process), with its own directory for its API socket,
 * console log and disk overlays. Guest memory is shared through the page
 * cache until a clone writes a page. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "snapshot/snapshot.h"

#define READY_TIMEOUT_MS 30000

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

static void last_line(const char *path, char *out, size_t n)
{
    out[0] = 0;
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof(line), f))
        if (line[0] != '\n')
            snprintf(out, n, "%s", line);
    fclose(f);
    out[strcspn(out, "\n")] = 0;
}

int snapshot_clone(const char *dir, unsigned count, const char *outdir, const char *self_exe,
                   vs_err *err)
{
    /* Validate once, up front: every clone would fail the same way. */
    struct snapshot_image img;
    if (snapshot_image_open(dir, -1, &img, err) < 0)
        return -1;
    snapshot_image_close(&img);
    if (mkdir(outdir, 0755) < 0 && errno != EEXIST)
        return vs_error_errno(err, "clone directory %s", outdir);
    pid_t *pids = calloc(count, sizeof(pid_t));
    if (!pids)
        return vs_error(err, ENOMEM, "out of memory");
    int rc = 0;
    for (unsigned i = 0; i < count; i++) {
        char cdir[PATH_MAX], sock[PATH_MAX + 16], con[PATH_MAX + 32], log[PATH_MAX + 16], idx[16];
        snprintf(cdir, sizeof(cdir), "%s/clone-%u", outdir, i);
        snprintf(sock, sizeof(sock), "%s/api.sock", cdir);
        snprintf(con, sizeof(con), "file:%s/console.log", cdir);
        snprintf(log, sizeof(log), "%s/vessel.log", cdir);
        snprintf(idx, sizeof(idx), "%u", i);
        if (mkdir(cdir, 0755) < 0 && errno != EEXIST) {
            rc = vs_error_errno(err, "clone directory %s", cdir);
            break;
        }
        unlink(sock);
        pid_t pid = fork();
        if (pid < 0) {
            rc = vs_error_errno(err, "fork");
            break;
        }
        if (pid == 0) {
            setsid();
            int null = open("/dev/null", O_RDONLY);
            int lfd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
            if (null >= 0)
                dup2(null, 0);
            if (lfd >= 0) {
                dup2(lfd, 1);
                dup2(lfd, 2);
            }
            execl(self_exe, "vessel", "vm", "restore", dir, "--clone-index", idx, "--overlay-dir",
                  cdir, "--api-sock", sock, "--console", con, (char *)NULL);
            _exit(127);
        }
        pids[i] = pid;
        char pf[PATH_MAX + 16];
        snprintf(pf, sizeof(pf), "%s/pid", cdir);
        FILE *f = fopen(pf, "w");
        if (f) {
            fprintf(f, "%d\n", pid);
            fclose(f);
        }
    }
    /* Wait until every clone serves its API (it is running) or has died. */
    for (unsigned i = 0; i < count && pids[i] && rc == 0; i++) {
        char sock[PATH_MAX + 32], log[PATH_MAX + 32];
        snprintf(sock, sizeof(sock), "%s/clone-%u/api.sock", outdir, i);
        snprintf(log, sizeof(log), "%s/clone-%u/vessel.log", outdir, i);
        for (int t = 0;; t += 2) {
            struct stat st;
            if (stat(sock, &st) == 0)
                break;
            int status;
            if (waitpid(pids[i], &status, WNOHANG) == pids[i]) {
                char why[512];
                last_line(log, why, sizeof(why));
                rc = vs_error(err, ECHILD, "clone %u exited: %s", i, why[0] ? why : "no message");
                pids[i] = 0;
                break;
            }
            if (t > READY_TIMEOUT_MS) {
                rc = vs_error(err, ETIMEDOUT, "clone %u did not start within %d s", i,
                              READY_TIMEOUT_MS / 1000);
                break;
            }
            sleep_ms(2);
        }
    }
    if (rc < 0) {
        for (unsigned i = 0; i < count; i++)
            if (pids[i] > 0)
                kill(pids[i], SIGKILL);
    } else {
        for (unsigned i = 0; i < count; i++)
            printf("clone %u pid %d api %s/clone-%u/api.sock\n", i, pids[i], outdir, i);
        fflush(stdout);
    }
    free(pids);
    return rc;
}
