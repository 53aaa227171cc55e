/* Rate-limited log lines; see ratelog.h. */
#include "receiver/ratelog.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void hl_ratelog_init(struct hl_ratelog *rl, int64_t interval_ms)
{
    memset(rl, 0, sizeof(*rl));
    pthread_mutex_init(&rl->mu, NULL);
    rl->interval_ms = interval_ms > 0 ? interval_ms : 1;
    for (size_t i = 0; i < HL_RATELOG_KINDS; i++)
        rl->kinds[i].until = INT64_MIN;
}

void hl_ratelog_destroy(struct hl_ratelog *rl)
{
    pthread_mutex_destroy(&rl->mu);
}

int hl_ratelog(struct hl_ratelog *rl, unsigned kind, enum hl_log_level level, int64_t now_ms,
               const char *fmt, ...)
{
    if (!hl_log_enabled(level))
        return 0;
    char line[HL_RATELOG_LINE_MAX * 2];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);
    int write = 1;
    if (kind < HL_RATELOG_KINDS) {
        struct hl_ratelog_kind *k = &rl->kinds[kind];
        pthread_mutex_lock(&rl->mu);
        if (now_ms < k->until || k->dropped > 0) {
            k->dropped++;
            write = 0;
        } else {
            k->until = now_ms + rl->interval_ms;
            k->level = level;
            size_t n = strnlen(line, sizeof(k->line) - 1); /* the summary repeats its start */
            memcpy(k->line, line, n);
            k->line[n] = '\0';
        }
        pthread_mutex_unlock(&rl->mu);
    }
    if (write)
        hl_log(level, "%s", line);
    return write;
}

static void log_summary(void *ud, enum hl_log_level level, const char *line, long long dropped,
                        int64_t interval_ms)
{
    (void)ud;
    hl_log(level, "%lld more like this not shown (one line per %" PRId64 " s at most): %s", dropped,
           (interval_ms + 999) / 1000, line);
}

void hl_ratelog_flush(struct hl_ratelog *rl, int64_t now_ms, int force, hl_ratelog_emit emit,
                      void *ud)
{
    if (!emit)
        emit = log_summary;
    for (size_t i = 0; i < HL_RATELOG_KINDS; i++) {
        struct hl_ratelog_kind *k = &rl->kinds[i];
        char line[HL_RATELOG_LINE_MAX];
        long long dropped = 0;
        enum hl_log_level level = HL_LOG_INFO;
        pthread_mutex_lock(&rl->mu);
        if (k->dropped > 0 && (force || now_ms >= k->until)) {
            dropped = k->dropped;
            level = k->level;
            memcpy(line, k->line, sizeof(line));
            k->dropped = 0;
            k->until = now_ms + rl->interval_ms;
        }
        pthread_mutex_unlock(&rl->mu);
        /* outside the lock: writing to a slow stderr must not hold up the HTTP threads */
        if (dropped)
            emit(ud, level, line, dropped, rl->interval_ms);
    }
}
