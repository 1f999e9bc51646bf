#include "util/log.h"

#include <stdarg.h>
#include <string.h>
#include <time.h>
#include <jansson.h>

static enum vs_log_level cur_level = VS_LOG_WARN;
static FILE *log_file;
static int log_json;

void vs_log_set_level(enum vs_log_level level)
{
    cur_level = level;
}

enum vs_log_level vs_log_get_level(void)
{
    return cur_level;
}

void vs_log_set_file(FILE *f, int json)
{
    log_file = f;
    log_json = json;
}

void vs_log(enum vs_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"error", "warning", "info", "debug"};
    if (level > cur_level)
        return;
    FILE *out = log_file ? log_file : stderr;
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (log_json) {
        char ts[64];
        struct timespec now;
        struct tm tm;
        clock_gettime(CLOCK_REALTIME, &now);
        gmtime_r(&now.tv_sec, &tm);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tm);
        json_t *o = json_pack("{s:s,s:s,s:s}", "level", names[level], "msg", msg, "time", ts);
        char *line = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (line)
            fprintf(out, "%s\n", line);
        free(line);
        json_decref(o);
    } else {
        fprintf(out, "vessel: %s%s%s\n", level == VS_LOG_ERROR ? "" : names[level],
                level == VS_LOG_ERROR ? "" : ": ", msg);
    }
    fflush(out);
}
