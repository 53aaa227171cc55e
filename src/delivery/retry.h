/* The retry and outcome policy: when each attempt of a delivery is due, what a Retry-After header
 * asks for, and what a finished attempt means for its delivery and its webhook.
 *
 * The schedule itself (struct hl_retry, its parser and default) is configuration, kept in
 * common/schedule.h so that the option table can read it.
 */
#ifndef HL_DELIVERY_RETRY_H
#define HL_DELIVERY_RETRY_H

#include <stddef.h>
#include <stdint.h>

#include "common/schedule.h"
#include "store/store.h"

/* Bounds hl_retry_clamp_after puts on a receiver's Retry-After: 1 s .. 1 h. */
#define HL_RETRY_AFTER_MIN_MS 1000LL
#define HL_RETRY_AFTER_MAX_MS (3600LL * 1000)

/* The wait in ms before the next attempt once attempts_done attempts were made (0 for the first
 * attempt), spread uniformly over [d - d*jitter_pct/100, d + d*jitter_pct/100] by rnd: 0 gives the
 * low end, UINT32_MAX the high end. Returns -1 when no attempt is left. */
int64_t hl_retry_delay(const struct hl_retry *r, int attempts_done, uint32_t rnd);

/* Parses a Retry-After header value value[0..len) (no NUL needed; surrounding spaces and tabs are
 * ignored): delta-seconds or an HTTP-date (IMF-fixdate "Sun, 06 Nov 1994 08:49:37 GMT", or the
 * obsolete RFC 850 and asctime forms), relative to now_ms (wall clock, ms since the epoch).
 * Returns 0 and sets *delay_ms (>= 0: a date in the past gives 0; huge values saturate at
 * INT32_MAX seconds), or HL_EINVAL. */
int hl_retry_after(const char *value, size_t len, int64_t now_ms, int64_t *delay_ms);

/* Bounds a Retry-After delay to [HL_RETRY_AFTER_MIN_MS, HL_RETRY_AFTER_MAX_MS], so that a receiver
 * can neither make hookline hammer it nor park a delivery for days. */
int64_t hl_retry_clamp_after(int64_t delay_ms);

/* The outcome policy, the one copy of it: what the attempt a ended in (a->status_code: the HTTP
 * status, 0 when no answer came), as the dispatcher records it and the store backends apply it.
 * - A 2xx is HL_OUT_SUCCESS.
 * - A 410 is HL_OUT_GONE: the webhook is disabled, with the reason "endpoint answered 410 Gone".
 * - Anything else is HL_OUT_RETRY at now + hl_retry_delay(r, attempts, rnd), or later when a 429
 *   or 503 carries a Retry-After (retry_after: its value, NUL-terminated; NULL or "" when absent)
 *   asking for more, bounded by hl_retry_clamp_after; HL_OUT_FAILED when no attempt is left.
 * - A failure (retry or failed) with disable_after_ms > 0 disables the webhook when its run of
 *   failures began at or before now - disable_after_ms, with the reason "failing continuously for
 *   N s" (N = disable_after_ms in seconds).
 * attempts: the attempts made of the delivery, this one included; now: wall clock, ms. Sets
 * a->outcome, a->next_attempt_at (0 unless retried), a->disable_failing_since and
 * a->disable_reason ("" when the attempt disables nothing); reads nothing else of a. */
void hl_retry_outcome(const struct hl_retry *r, int64_t disable_after_ms, int attempts,
                      const char *retry_after, int64_t now, uint32_t rnd, struct hl_attempt *a);

/* The circuit breaker's word on the attempt a of job j, the one copy of that policy, for the
 * store to apply as it records a (struct hl_attempt's breaker_* fields): after breaker_after
 * consecutive failed attempts of a webhook (0: never) its breaker opens, and its other pending
 * deliveries wait while one probe at a time is tried, at the retry schedule's pace: the first
 * probe the schedule's second wait after the attempt that opened it, the next after its third
 * wait, and so on, the last wait repeating. A success closes it, and what waited is claimed
 * at once. The webhook's run of failures (disable_after_ms) goes on while it is open: probes
 * that keep failing disable it in the end. Call after hl_retry_outcome; now: wall clock, ms. */
void hl_breaker_outcome(const struct hl_retry *r, int breaker_after, const struct hl_job *j,
                        int64_t now, uint32_t rnd, struct hl_attempt *a);

#endif
