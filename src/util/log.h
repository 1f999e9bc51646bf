/* Diagnostics to stderr (or a log file), one line each, with a level. */
#ifndef VESSEL_UTIL_LOG_H
#define VESSEL_UTIL_LOG_H

#include <stdio.h>

enum vs_log_level { VS_LOG_ERROR, VS_LOG_WARN, VS_LOG_INFO, VS_LOG_DEBUG };

void vs_log_set_level(enum vs_log_level level);
enum vs_log_level vs_log_get_level(void);
/* Send log lines to f (default stderr); json selects runc-style JSON lines. */
void vs_log_set_file(FILE *f, int json);
void vs_log(enum vs_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define vs_err_log(...) vs_log(VS_LOG_ERROR, __VA_ARGS__)
#define vs_warn(...) vs_log(VS_LOG_WARN, __VA_ARGS__)
#define vs_info(...) vs_log(VS_LOG_INFO, __VA_ARGS__)
#define vs_debug(...) vs_log(VS_LOG_DEBUG, __VA_ARGS__)

#endif
