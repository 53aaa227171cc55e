/* Time: wall clock in milliseconds since the Unix epoch, ISO 8601 text, a monotonic clock. */
#ifndef HL_CLOCK_H
#define HL_CLOCK_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Room for "2025-01-20T14:35:22.123Z" and its NUL. */
#define HL_ISO_MAX 32

/* Wall-clock milliseconds since the epoch. */
int64_t hl_now_ms(void);
/* Monotonic milliseconds (for timeouts and durations). */
int64_t hl_mono_ms(void);
/* The monotonic instant mono_ms (hl_mono_ms's clock) as a timespec: the deadline of a
 * pthread_cond_timedwait on a condition whose clock is CLOCK_MONOTONIC. */
struct timespec hl_mono_ts(int64_t mono_ms);
/* Monotonic microseconds. */
int64_t hl_mono_us(void);
/* Formats ms as "YYYY-MM-DDTHH:MM:SS.mmmZ" into out (HL_ISO_MAX bytes). */
void hl_time_iso(int64_t ms, char *out);
/* Parses an instant in ISO 8601 / RFC 3339 ("2025-01-20T14:35:22Z", fractional seconds and
 * "+01:00" offsets allowed) from s[0..len). Returns 0 and sets *ms, or HL_EINVAL. */
int hl_time_parse(const char *s, size_t len, int64_t *ms);
/* As hl_time_parse, and a calendar date alone ("2025-01-20": its midnight, UTC), which ISO 8601
 * allows too: for the bounds of a time window (since, until), not for a signed instant. */
int hl_time_or_date_parse(const char *s, size_t len, int64_t *ms);

#endif
