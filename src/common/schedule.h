/* A retry schedule: a list of waits. delays_ms[i] is the wait before attempt i + 1, counted from
 * the end of the previous attempt (from the event for attempt 1, usually 0 = immediately). After
 * attempt n the delivery has failed for good. Each wait is spread by +-jitter_pct percent so that
 * deliveries failing together do not retry together. The policy that applies it is
 * delivery/retry.h; this is the value the option table (--retry-schedule) reads.
 */
#ifndef HL_SCHEDULE_H
#define HL_SCHEDULE_H

#include <stdint.h>

/* Most waits (= attempts) in a schedule. */
#define HL_RETRY_MAX 32
/* Longest single wait in a schedule: 7 days. */
#define HL_RETRY_MAX_DELAY_MS (7LL * 24 * 3600 * 1000)
/* Default spread of every wait, in percent. */
#define HL_RETRY_JITTER_PCT 20
/* The default schedule, as hl_retry_parse reads it: 8 attempts over about 33 hours. */
#define HL_RETRY_DEFAULT_SPEC "0,5s,5m,30m,2h,5h,10h,10h"
struct hl_retry {
    int n;                           /* attempts in all, 1..HL_RETRY_MAX */
    int64_t delays_ms[HL_RETRY_MAX]; /* wait before attempt i + 1 */
    int jitter_pct;                  /* 0..100 */
};

/* Fills r with the default schedule (HL_RETRY_DEFAULT_SPEC, HL_RETRY_JITTER_PCT). */
void hl_retry_default(struct hl_retry *r);

/* Parses a comma-separated schedule such as "0,5s,5m,30m,2h,5h,10h,10h" or "0, 50ms, 100ms":
 * each entry is a decimal integer with an optional unit ms, s, m, h or d (none = seconds), at
 * most HL_RETRY_MAX_DELAY_MS; spaces and tabs may surround entries; 1..HL_RETRY_MAX entries.
 * Returns 0 and fills *out (jitter_pct = HL_RETRY_JITTER_PCT), or HL_EINVAL leaving *out alone. */
int hl_retry_parse(const char *spec, struct hl_retry *out);

#endif
