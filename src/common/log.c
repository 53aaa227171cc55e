#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"

static enum hl_log_level min_level = HL_LOG_INFO;

void hl_log_set_level(enum hl_log_level level)
{
    min_level = level;
}

int hl_log_enabled(enum hl_log_level level)
{
    return level >= min_level;
}

void hl_log(enum hl_log_level level, const char *fmt, ...)
{
    static const char *names[] = {"debug", "info", "warn", "error"};
    if (level < min_level)
        return;
    char ts[HL_ISO_MAX], line[2048];
    hl_time_iso(hl_now_ms(), ts);
    int n = snprintf(line, sizeof(line), "%s %s ", ts, names[level]);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
    va_end(ap);
    /* One fputs per line keeps lines from different threads whole. */
    fprintf(stderr, "%s\n", line);
}

void hl_debug_va(const char *prefix, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    hl_debug("%s: %s", prefix, line);
}
