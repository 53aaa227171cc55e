/* Parsers for configuration values (command-line options, environment variables): integers and
 * durations, strict about trailing text and range. */
#ifndef HL_CONFIG_H
#define HL_CONFIG_H

#include <stdint.h>

/* Parses s as a decimal integer within [min, max] (strtoll syntax: leading blanks and a sign are
 * allowed, trailing text is not). Returns 0 and sets *out, or HL_EINVAL (empty, not a number,
 * trailing text, overflow, out of range) and leaves *out alone. */
int hl_parse_int(const char *s, long long min, long long max, long long *out);

/* Parses a duration such as "250ms", "30s", "5m", "2h" or "5d" into milliseconds; a bare number is
 * seconds. The number must be present, non-negative and decimal, the unit one of those five.
 * Returns 0 and sets *ms, or HL_EINVAL (also when the result would not fit in an int64_t) and
 * leaves *ms alone. */
int hl_parse_duration(const char *s, int64_t *ms);

#endif
