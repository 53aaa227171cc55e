/* Rate-limited log lines for `hookline listen`: a flood of bad requests (131,000 unsigned ones in
 * 90 s) must not become a flood of log lines.
 *
 * Lines are grouped in kinds chosen by the caller (e.g. "401, signature mismatch"). The first line
 * of a kind is written at once; the ones that follow within the interval are counted, and
 * hl_ratelog_flush writes one summary per kind per interval saying how many were left out. A kind
 * that stayed quiet for a whole interval starts over: its next line is written at once.
 *
 * Safe to use from several threads. */
#ifndef HL_RATELOG_H
#define HL_RATELOG_H

#include <pthread.h>
#include <stdint.h>

#include "common/log.h"

/* Kinds are 0 .. HL_RATELOG_KINDS - 1. */
#define HL_RATELOG_KINDS 32
/* Bytes of a line kept to repeat in its kind's summary (longer lines are cut there). */
#define HL_RATELOG_LINE_MAX 256

struct hl_ratelog_kind {
    int64_t until;     /* lines before this time (ms) are counted, not written */
    long long dropped; /* lines counted since the last one written */
    enum hl_log_level level;
    char line[HL_RATELOG_LINE_MAX]; /* the last line written, for the summary */
};

struct hl_ratelog {
    pthread_mutex_t mu;
    int64_t interval_ms;
    struct hl_ratelog_kind kinds[HL_RATELOG_KINDS];
};

/* What a summary says: `dropped` more lines like `line` were left out in the last interval. */
typedef void (*hl_ratelog_emit)(void *ud, enum hl_log_level level, const char *line,
                                long long dropped, int64_t interval_ms);

/* Sets rl up with an interval (ms, > 0). Release with hl_ratelog_destroy. */
void hl_ratelog_init(struct hl_ratelog *rl, int64_t interval_ms);

void hl_ratelog_destroy(struct hl_ratelog *rl);

/* Writes the line (printf-style) at level through hl_log when it is the first of its kind in
 * the interval, else counts it. now_ms is any monotonic clock, the same for every call. Returns
 * 1 when written, 0 when counted (kind out of range: written). */
int hl_ratelog(struct hl_ratelog *rl, unsigned kind, enum hl_log_level level, int64_t now_ms,
               const char *fmt, ...) __attribute__((format(printf, 5, 6)));

/* Calls emit (or, when emit is NULL, writes a summary line through hl_log) for every kind with
 * lines counted whose interval is over at now_ms, or for all of them when force is set (at the
 * end). A kind that emitted a summary goes on counting for one more interval, so a steady flood
 * gives one summary per interval. */
void hl_ratelog_flush(struct hl_ratelog *rl, int64_t now_ms, int force, hl_ratelog_emit emit,
                      void *ud);

#endif
