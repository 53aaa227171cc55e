/* The silence alert's state machine; see alert.h. */
#include "receiver/alert.h"

#include <string.h>

void hl_alert_init(struct hl_alert *a, int64_t after_ms, int64_t now_ms)
{
    memset(a, 0, sizeof(*a));
    pthread_mutex_init(&a->mu, NULL);
    a->after_ms = after_ms > 0 ? after_ms : 1;
    a->last_ms = now_ms;
}

void hl_alert_destroy(struct hl_alert *a)
{
    pthread_mutex_destroy(&a->mu);
}

int hl_alert_seen(struct hl_alert *a, int64_t now_ms)
{
    int ends = 0;
    pthread_mutex_lock(&a->mu);
    a->last_ms = now_ms;
    a->any = 1;
    if (a->silent && !a->ended_ms) {
        a->ended_ms = now_ms;
        ends = 1;
    }
    pthread_mutex_unlock(&a->mu);
    return ends;
}

void hl_alert_check(struct hl_alert *a, int64_t now_ms, struct hl_alert_report *r, int64_t *next_ms)
{
    memset(r, 0, sizeof(*r));
    pthread_mutex_lock(&a->mu);
    if (a->silent && a->ended_ms) {
        r->kind = HL_ALERT_RECOVERED;
        r->silence_ms = a->ended_ms - a->quiet_ms;
        r->last_ms = a->quiet_any ? a->quiet_ms : -1;
        a->silent = 0;
        a->ended_ms = 0;
    } else if (!a->silent && now_ms - a->last_ms >= a->after_ms) {
        r->kind = HL_ALERT_SILENT;
        r->silence_ms = now_ms - a->last_ms;
        r->last_ms = a->any ? a->last_ms : -1;
        a->silent = 1;
        a->quiet_ms = a->last_ms;
        a->quiet_any = a->any;
    }
    *next_ms = a->silent ? INT64_MAX : a->last_ms + a->after_ms;
    pthread_mutex_unlock(&a->mu);
}
