/* Command-line numbers for the bench tools: the whole string, in range, or an error. */
#ifndef HL_BENCH_ARGS_H
#define HL_BENCH_ARGS_H

#include <errno.h>
#include <stdlib.h>

static inline int parse_ll(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

static inline int parse_dbl(const char *s, double min, double max, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (!*s || *end || errno || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

#endif
