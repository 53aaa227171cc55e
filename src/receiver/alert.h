/* `hookline listen --alert-after`: notices when no verified event has arrived for a while, and
 * when they come back. The guide's advice "alert on extended periods without webhooks", on the
 * receiving side.
 *
 * A pure state machine on a monotonic clock: the HTTP threads report each verified event
 * (hl_alert_seen), the keeper thread asks what to announce (hl_alert_check) and runs the
 * command. The timer starts at hl_alert_init (listen's start). A silence is announced once when
 * it reaches after_ms, its end once at the first event after it; then the timer restarts from
 * that event.
 *
 * Safe to use from several threads (a mutex; one short critical section per event). */
#ifndef HL_ALERT_H
#define HL_ALERT_H

#include <pthread.h>
#include <stdint.h>

enum hl_alert_kind { HL_ALERT_NONE, HL_ALERT_SILENT, HL_ALERT_RECOVERED };

struct hl_alert {
    pthread_mutex_t mu;
    int64_t after_ms;
    int64_t last_ms;  /* the last verified event, or the start */
    int any;          /* an event arrived since the start */
    int silent;       /* a silence was announced and has not ended */
    int64_t quiet_ms; /* while silent: last_ms when the silence was announced */
    int quiet_any;    /* while silent: whether that was an event (not the start) */
    int64_t ended_ms; /* while silent: the first event after it, or 0 */
};

/* What to announce. */
struct hl_alert_report {
    enum hl_alert_kind kind;
    int64_t silence_ms; /* SILENT: how long it has been quiet; RECOVERED: how long it lasted */
    int64_t last_ms;    /* the last event before the silence (monotonic ms), or -1: none since
                           the start */
};

/* Starts the timer at now_ms; after_ms > 0. Release with hl_alert_destroy. */
void hl_alert_init(struct hl_alert *a, int64_t after_ms, int64_t now_ms);

void hl_alert_destroy(struct hl_alert *a);

/* Records a verified event at now_ms. Returns 1 when it ends an announced silence (the caller
 * then wakes whoever calls hl_alert_check), else 0. */
int hl_alert_seen(struct hl_alert *a, int64_t now_ms);

/* Moves the state on to now_ms and fills *r with what to announce (kind HL_ALERT_NONE: nothing).
 * Sets *next_ms to when to call again at the latest (INT64_MAX: only after hl_alert_seen
 * returned 1). */
void hl_alert_check(struct hl_alert *a, int64_t now_ms, struct hl_alert_report *r,
                    int64_t *next_ms);

#endif
