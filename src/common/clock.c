#include "common/clock.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "common/err.h"

int64_t hl_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t hl_mono_ms(void)
{
    return hl_mono_us() / 1000;
}

struct timespec hl_mono_ts(int64_t mono_ms)
{
    return (struct timespec){.tv_sec = (time_t)(mono_ms / 1000),
                             .tv_nsec = (long)(mono_ms % 1000) * 1000000L};
}

int64_t hl_mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void hl_time_iso(int64_t ms, char *out)
{
    time_t secs = (time_t)(ms / 1000);
    int frac = (int)(ms % 1000);
    if (frac < 0) {
        frac += 1000;
        secs -= 1;
    }
    struct tm tm;
    gmtime_r(&secs, &tm);
    /* Years beyond 9999 would not fit: hookline's clock never gets there. */
    if (tm.tm_year > 9999 - 1900 || tm.tm_year < -1900)
        tm.tm_year = 9999 - 1900;
    char tmp[96];
    int n = snprintf(tmp, sizeof(tmp), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, frac);
    size_t len = n > 0 && (size_t)n < HL_ISO_MAX ? (size_t)n : 0;
    memcpy(out, tmp, len);
    out[len] = '\0';
}

static int digits(const char *s, size_t len, size_t *i, int n, int *out)
{
    int v = 0;
    for (int k = 0; k < n; k++) {
        if (*i >= len || s[*i] < '0' || s[*i] > '9')
            return HL_EINVAL;
        v = v * 10 + (s[(*i)++] - '0');
    }
    *out = v;
    return HL_OK;
}

static int expect(const char *s, size_t len, size_t *i, char c)
{
    if (*i >= len || (s[*i] != c && !(c == 'T' && (s[*i] == 't' || s[*i] == ' '))))
        return HL_EINVAL;
    (*i)++;
    return HL_OK;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian), after Howard Hinnant. */
static int64_t days_from_civil(int y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* An instant, or with date_ok a calendar date alone (its midnight, UTC). */
static int parse(const char *s, size_t len, int date_ok, int64_t *ms)
{
    size_t i = 0;
    int y, mo, d, h = 0, mi = 0, sec = 0, frac = 0;
    if (digits(s, len, &i, 4, &y) || expect(s, len, &i, '-') || digits(s, len, &i, 2, &mo) ||
        expect(s, len, &i, '-') || digits(s, len, &i, 2, &d))
        return HL_EINVAL;
    int date_only = i == len;
    if (date_only && !date_ok)
        return HL_EINVAL;
    if (!date_only &&
        (expect(s, len, &i, 'T') || digits(s, len, &i, 2, &h) || expect(s, len, &i, ':') ||
         digits(s, len, &i, 2, &mi) || expect(s, len, &i, ':') || digits(s, len, &i, 2, &sec)))
        return HL_EINVAL;
    static const int mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] || h > 23 || mi > 59 || sec > 60)
        return HL_EINVAL;
    if (mo == 2 && d == 29 && !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return HL_EINVAL;
    if (date_only) {
        *ms = days_from_civil(y, mo, d) * 86400 * 1000;
        return HL_OK;
    }
    if (i < len && s[i] == '.') {
        i++;
        int n = 0, scale = 100;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            frac += (s[i] - '0') * scale;
            scale /= 10;
            i++;
            if (++n > 9)
                return HL_EINVAL;
        }
        if (n == 0)
            return HL_EINVAL;
    }
    int offset = 0;
    if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i < len && (s[i] == '+' || s[i] == '-')) {
        int sign = s[i++] == '-' ? -1 : 1, oh, om;
        if (digits(s, len, &i, 2, &oh) || expect(s, len, &i, ':') || digits(s, len, &i, 2, &om) ||
            oh > 23 || om > 59)
            return HL_EINVAL;
        offset = sign * (oh * 60 + om);
    } else {
        return HL_EINVAL;
    }
    if (i != len)
        return HL_EINVAL;
    if (sec == 60)
        sec = 59;
    int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset * 60;
    *ms = t * 1000 + frac;
    return HL_OK;
}

int hl_time_parse(const char *s, size_t len, int64_t *ms)
{
    return parse(s, len, 0, ms);
}

int hl_time_or_date_parse(const char *s, size_t len, int64_t *ms)
{
    return parse(s, len, 1, ms);
}
