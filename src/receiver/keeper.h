/* `hookline listen`'s housekeeping thread, beside the HTTP threads and the hand-off worker:
 * - forgets the eventIds handed on longer ago than the de-duplication window, a small batch at
 *   a time, so that the receiving side is never held up for more than one short transaction;
 * - announces silences and their end (alert.h), running --alert-exec without waiting for it: one
 *   command at a time, killed at its timeout, while requests go on being answered;
 * - writes the summaries of rate-limited log lines (ratelog.h) once per interval, and the rest at
 *   the stop.
 */
#ifndef HL_KEEPER_H
#define HL_KEEPER_H

#include <stdint.h>

#include "receiver/alert.h"
#include "receiver/ratelog.h"

struct hl_keeper;

struct hl_keeper_config {
    const char *state_path;   /* the state file (its own connection when pruning) */
    int64_t dedupe_window_ms; /* forget eventIds handed on longer ago than this; 0: never */
    struct hl_alert *alert;   /* the silence alert, or NULL */
    const char *alert_cmd;    /* run `sh -c alert_cmd` on each announcement, or NULL: log only */
    int64_t alert_timeout_ms; /* longest the command may run */
    struct hl_ratelog *log;   /* whose summaries to write, or NULL */
};

/* Starts the thread. cfg's pointers must outlive it. Returns 0 or a negative HL_E code (reason
 * logged). */
int hl_keeper_start(const struct hl_keeper_config *cfg, struct hl_keeper **out);

/* Makes the thread look at once (an event ended a silence). Safe from any thread. */
void hl_keeper_wake(struct hl_keeper *k);

/* Stops the thread: writes the pending log summaries, gives a running alert command a short
 * grace period and then kills it, joins, and frees k (NULL is fine). */
void hl_keeper_stop(struct hl_keeper *k);

#endif
