#include "common/schedule.h"

#include <string.h>

#include "common/config.h"
#include "common/err.h"

void hl_retry_default(struct hl_retry *r)
{
    static const int64_t def[] = {
        0,
        5 * 1000LL,
        5 * 60 * 1000LL,
        30 * 60 * 1000LL,
        2 * 3600 * 1000LL,
        5 * 3600 * 1000LL,
        10 * 3600 * 1000LL,
        10 * 3600 * 1000LL,
    };
    memset(r, 0, sizeof(*r));
    r->n = (int)(sizeof(def) / sizeof(def[0]));
    memcpy(r->delays_ms, def, sizeof(def));
    r->jitter_pct = HL_RETRY_JITTER_PCT;
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

/* One entry s[0..n), spaces already trimmed, into *ms: a duration as every option reads one
 * (hl_parse_duration), starting with a digit and at most HL_RETRY_MAX_DELAY_MS. */
static int parse_delay(const char *s, size_t n, int64_t *ms)
{
    char one[32];
    if (n == 0 || n >= sizeof(one) || s[0] < '0' || s[0] > '9')
        return HL_EINVAL;
    memcpy(one, s, n);
    one[n] = '\0';
    int64_t v;
    if (hl_parse_duration(one, &v) != HL_OK || v > HL_RETRY_MAX_DELAY_MS)
        return HL_EINVAL;
    *ms = v;
    return HL_OK;
}

int hl_retry_parse(const char *spec, struct hl_retry *out)
{
    struct hl_retry r;
    memset(&r, 0, sizeof(r));
    r.jitter_pct = HL_RETRY_JITTER_PCT;
    if (!spec)
        return HL_EINVAL;
    const char *s = spec;
    for (;;) {
        size_t n = strcspn(s, ",");
        size_t b = 0, e = n;
        while (b < e && is_space(s[b]))
            b++;
        while (e > b && is_space(s[e - 1]))
            e--;
        if (r.n >= HL_RETRY_MAX || parse_delay(s + b, e - b, &r.delays_ms[r.n]) != HL_OK)
            return HL_EINVAL;
        r.n++;
        if (s[n] == '\0')
            break;
        s += n + 1;
    }
    *out = r;
    return HL_OK;
}
