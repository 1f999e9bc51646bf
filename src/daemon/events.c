/* The event stream (`vessel monitor`, GET /1.0/events): what happens to
 * instances, images and operations, as JSON lines. The daemon keeps the
 * latest EVENT_RING events; a reader that falls behind by more than that
 * is told how many it missed. */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/daemon.h"

#define EVENT_RING 1024

static struct {
    pthread_mutex_t lock;
    pthread_cond_t cond;
    char *lines[EVENT_RING]; /* JSON text + '\n', by seq % EVENT_RING */
    uint64_t next;           /* seq of the next event */
} ev = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER};

void daemon_event(struct daemon *d, const char *type, const char *action, const char *target,
                  json_t *extra)
{
    json_t *e = json_pack("{s:s, s:s, s:s?, s:I}", "type", type, "action", action, "target", target,
                          "timestamp", (json_int_t)daemon_now_ms());
    if (!e) {
        json_decref(extra);
        return;
    }
    if (extra)
        json_object_set_new(e, "metadata", extra);
    pthread_mutex_lock(&ev.lock);
    json_object_set_new(e, "seq", json_integer((json_int_t)ev.next));
    char *text = json_dumps(e, JSON_COMPACT);
    json_decref(e);
    if (text) {
        size_t n = strlen(text);
        char *line = realloc(text, n + 2);
        if (line) {
            line[n] = '\n';
            line[n + 1] = 0;
            free(ev.lines[ev.next % EVENT_RING]);
            ev.lines[ev.next % EVENT_RING] = line;
            ev.next++;
            pthread_cond_broadcast(&ev.cond);
        } else {
            free(text);
        }
    }
    pthread_mutex_unlock(&ev.lock);
}

uint64_t daemon_events_next(void)
{
    pthread_mutex_lock(&ev.lock);
    uint64_t n = ev.next;
    pthread_mutex_unlock(&ev.lock);
    return n;
}

char *daemon_events_wait(uint64_t *seq, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&ev.lock);
    while (*seq >= ev.next) {
        if (pthread_cond_timedwait(&ev.cond, &ev.lock, &until) == ETIMEDOUT) {
            pthread_mutex_unlock(&ev.lock);
            return NULL;
        }
    }
    char *out;
    if (ev.next - *seq > EVENT_RING) {
        /* overrun: say so and go on from the oldest kept */
        uint64_t lost = ev.next - EVENT_RING - *seq;
        *seq = ev.next - EVENT_RING;
        if (asprintf(&out, "{\"type\":\"lost\",\"count\":%llu}\n", (unsigned long long)lost) < 0)
            out = NULL;
    } else {
        out = strdup(ev.lines[*seq % EVENT_RING]);
        (*seq)++;
    }
    pthread_mutex_unlock(&ev.lock);
    return out;
}
