#include "delivery/retry.h"

#include <stdio.h>
#include <string.h>

#include "common/err.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int is_space(char c)
{
    return c == ' ' || c == '\t';
}

int64_t hl_retry_delay(const struct hl_retry *r, int attempts_done, uint32_t rnd)
{
    if (attempts_done < 0)
        attempts_done = 0;
    if (attempts_done >= r->n || attempts_done >= HL_RETRY_MAX)
        return -1;
    int64_t d = r->delays_ms[attempts_done];
    if (d < 0)
        d = 0;
    if (d > HL_RETRY_MAX_DELAY_MS)
        d = HL_RETRY_MAX_DELAY_MS;
    int pct = r->jitter_pct < 0 ? 0 : r->jitter_pct > 100 ? 100 : r->jitter_pct;
    /* d <= 2^30 and span <= 2^31, so rnd * span stays below 2^63. */
    uint64_t span = (uint64_t)(d * pct / 100) * 2;
    uint64_t off = ((uint64_t)rnd * span) / UINT32_MAX;
    return d - (int64_t)(span / 2) + (int64_t)off;
}

/* ---- Retry-After ---- */

static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* A small cursor over the header value. */
struct cur {
    const char *s;
    size_t len, i;
};

static int lit(struct cur *c, const char *w)
{
    size_t n = strlen(w);
    if (c->len - c->i < n || memcmp(c->s + c->i, w, n) != 0)
        return 0;
    c->i += n;
    return 1;
}

/* Exactly n digits (or, with n_max > n, n..n_max digits). */
static int num(struct cur *c, int n, int n_max, int *out)
{
    int v = 0, k = 0;
    while (k < n_max && c->i < c->len && is_digit(c->s[c->i])) {
        v = v * 10 + (c->s[c->i++] - '0');
        k++;
    }
    *out = v;
    return k >= n;
}

/* One of the words, returning its index or -1. */
static int word(struct cur *c, const char *const *words, int count)
{
    for (int k = 0; k < count; k++) {
        if (lit(c, words[k]))
            return k;
    }
    return -1;
}

static const char *const wkday[] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
static const char *const weekday[] = {"Monday", "Tuesday",  "Wednesday", "Thursday",
                                      "Friday", "Saturday", "Sunday"};
static const char *const month[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                    "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static int hms(struct cur *c, int *h, int *mi, int *s)
{
    return num(c, 2, 2, h) && lit(c, ":") && num(c, 2, 2, mi) && lit(c, ":") && num(c, 2, 2, s);
}

/* An HTTP-date (RFC 9110 section 5.6.7) into ms since the epoch. */
static int http_date(const char *s, size_t len, int64_t *ms)
{
    struct cur c = {s, len, 0};
    int y, mo, d, h, mi, sec;
    if (word(&c, weekday, 7) >= 0) {
        /* RFC 850: "Sunday, 06-Nov-94 08:49:37 GMT" */
        if (!lit(&c, ", ") || !num(&c, 2, 2, &d) || !lit(&c, "-") ||
            (mo = word(&c, month, 12)) < 0 || !lit(&c, "-") || !num(&c, 2, 2, &y) ||
            !lit(&c, " ") || !hms(&c, &h, &mi, &sec) || !lit(&c, " GMT"))
            return HL_EINVAL;
        y += y < 70 ? 2000 : 1900;
    } else {
        if (word(&c, wkday, 7) < 0)
            return HL_EINVAL;
        if (lit(&c, ", ")) {
            /* IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT" */
            if (!num(&c, 2, 2, &d) || !lit(&c, " ") || (mo = word(&c, month, 12)) < 0 ||
                !lit(&c, " ") || !num(&c, 4, 4, &y) || !lit(&c, " ") || !hms(&c, &h, &mi, &sec) ||
                !lit(&c, " GMT"))
                return HL_EINVAL;
        } else {
            /* asctime: "Sun Nov  6 08:49:37 1994" */
            if (!lit(&c, " ") || (mo = word(&c, month, 12)) < 0 || !lit(&c, " "))
                return HL_EINVAL;
            if (lit(&c, " ") ? !num(&c, 1, 1, &d) : !num(&c, 2, 2, &d))
                return HL_EINVAL;
            if (!lit(&c, " ") || !hms(&c, &h, &mi, &sec) || !lit(&c, " ") || !num(&c, 4, 4, &y))
                return HL_EINVAL;
        }
    }
    if (c.i != c.len)
        return HL_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (d < 1 || d > mdays[mo] || h > 23 || mi > 59 || sec > 60)
        return HL_EINVAL;
    if (mo == 1 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return HL_EINVAL;
    if (sec == 60)
        sec = 59;
    *ms = (days_from_civil(y, mo + 1, d) * 86400 + h * 3600 + mi * 60 + sec) * 1000;
    return HL_OK;
}

int hl_retry_after(const char *value, size_t len, int64_t now_ms, int64_t *delay_ms)
{
    if (!value)
        return HL_EINVAL;
    size_t b = 0, e = len;
    while (b < e && is_space(value[b]))
        b++;
    while (e > b && is_space(value[e - 1]))
        e--;
    if (b == e)
        return HL_EINVAL;
    const char *s = value + b;
    size_t n = e - b;
    if (is_digit(s[0])) {
        int64_t secs = 0;
        for (size_t i = 0; i < n; i++) {
            if (!is_digit(s[i]))
                return HL_EINVAL;
            if (secs < INT32_MAX)
                secs = secs * 10 + (s[i] - '0');
        }
        if (secs > INT32_MAX)
            secs = INT32_MAX;
        *delay_ms = secs * 1000;
        return HL_OK;
    }
    int64_t at;
    if (http_date(s, n, &at) != HL_OK)
        return HL_EINVAL;
    int64_t d;
    if (__builtin_sub_overflow(at, now_ms, &d))
        d = now_ms < 0 ? INT64_MAX : 0;
    *delay_ms = d < 0 ? 0 : d;
    return HL_OK;
}

int64_t hl_retry_clamp_after(int64_t delay_ms)
{
    if (delay_ms < HL_RETRY_AFTER_MIN_MS)
        return HL_RETRY_AFTER_MIN_MS;
    if (delay_ms > HL_RETRY_AFTER_MAX_MS)
        return HL_RETRY_AFTER_MAX_MS;
    return delay_ms;
}

/* ---- the outcome of an attempt ---- */

/* The wait before the next attempt: the schedule's, or a 429's or 503's Retry-After when that is
 * longer (within bounds). -1 when the schedule has no attempt left: a receiver cannot extend it. */
static int64_t next_wait(const struct hl_retry *r, int attempts, int status,
                         const char *retry_after, int64_t now, uint32_t rnd)
{
    int64_t delay = hl_retry_delay(r, attempts, rnd);
    int64_t after;
    if (delay >= 0 && (status == 429 || status == 503) && retry_after && retry_after[0] &&
        hl_retry_after(retry_after, strlen(retry_after), now, &after) == HL_OK &&
        hl_retry_clamp_after(after) > delay)
        delay = hl_retry_clamp_after(after);
    return delay;
}

void hl_breaker_outcome(const struct hl_retry *r, int breaker_after, const struct hl_job *j,
                        int64_t now, uint32_t rnd, struct hl_attempt *a)
{
    a->breaker_after = breaker_after;
    a->breaker_probe = j->breaker_opened_at != 0;
    a->breaker_probe_at = 0;
    if (a->outcome == HL_OUT_SUCCESS)
        return;
    int n = r->n < HL_RETRY_MAX ? r->n : HL_RETRY_MAX;
    int step = a->breaker_probe ? j->breaker_probes + 2 : 1; /* the probe about to be set */
    if (step > n - 1)
        step = n - 1;
    int64_t wait = hl_retry_delay(r, step < 0 ? 0 : step, rnd);
    a->breaker_probe_at = now + (wait > 0 ? wait : 0);
}

void hl_retry_outcome(const struct hl_retry *r, int64_t disable_after_ms, int attempts,
                      const char *retry_after, int64_t now, uint32_t rnd, struct hl_attempt *a)
{
    int status = a->status_code;
    a->next_attempt_at = 0;
    a->disable_failing_since = 0;
    a->disable_reason[0] = '\0';
    if (status >= 200 && status < 300) {
        a->outcome = HL_OUT_SUCCESS;
        return;
    }
    if (status == 410) {
        a->outcome = HL_OUT_GONE;
        snprintf(a->disable_reason, sizeof(a->disable_reason), "endpoint answered 410 Gone");
        return;
    }
    int64_t delay = next_wait(r, attempts, status, retry_after, now, rnd);
    if (delay < 0) {
        a->outcome = HL_OUT_FAILED;
    } else {
        a->outcome = HL_OUT_RETRY;
        a->next_attempt_at = now + delay;
    }
    if (disable_after_ms > 0) {
        a->disable_failing_since = now - disable_after_ms;
        snprintf(a->disable_reason, sizeof(a->disable_reason), "failing continuously for %lld s",
                 (long long)(disable_after_ms / 1000));
    }
}
