#include "common/config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

int hl_parse_int(const char *s, long long min, long long max, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (!*s || *end || errno || v < min || v > max)
        return HL_EINVAL;
    *out = v;
    return HL_OK;
}

int hl_parse_duration(const char *s, int64_t *ms)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    /* end == s: no digits at all, so a bare unit such as "ms" is not a zero duration */
    if (!*s || end == s || errno || v < 0)
        return HL_EINVAL;
    long long mul;
    if (strcmp(end, "ms") == 0)
        mul = 1;
    else if (*end == '\0' || strcmp(end, "s") == 0)
        mul = 1000;
    else if (strcmp(end, "m") == 0)
        mul = 60000;
    else if (strcmp(end, "h") == 0)
        mul = 3600000;
    else if (strcmp(end, "d") == 0)
        mul = 86400000;
    else
        return HL_EINVAL;
    if (v > INT64_MAX / mul)
        return HL_EINVAL;
    *ms = v * mul;
    return HL_OK;
}
