#include "common/json.h"

#include <inttypes.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/utf8.h"

/* Largest integer magnitude a double holds exactly: JSON.parse keeps such integers as they are. */
#define SAFE_INT_LIMIT (INT64_C(1) << 53)
/* Array indices are 0 .. 2^32 - 2 (ECMAScript: an index is below 2^32 - 1). */
#define MAX_ARRAY_INDEX UINT32_C(4294967294)

/* Reads digits[0..k) * 10^exp10 back with strtod. The text has no radix character, so the
 * current locale cannot change how it is read. */
static double read_back(const char *digits, int k, int exp10)
{
    char txt[48];
    snprintf(txt, sizeof(txt), "%.*se%d", k, digits, exp10);
    return strtod(txt, NULL);
}

/* digits[0..k) * 10^(e - k + 1) plus one unit in the last place. */
static void digits_inc(char *digits, int k, int *e)
{
    int i = k - 1;
    while (i >= 0 && digits[i] == '9')
        digits[i--] = '0';
    if (i >= 0) {
        digits[i]++;
    } else {
        digits[0] = '1';
        (*e)++;
    }
}

/* digits[0..k) * 10^(e - k + 1) minus one unit in the last place, keeping k digits: the
 * predecessor of 10^e among k-digit numbers is 99..9 * 10^(e - k). */
static void digits_dec(char *digits, int k, int *e)
{
    int i = k - 1;
    while (digits[i] == '0')
        digits[i--] = '9';
    digits[i]--;
    if (digits[0] == '0') {
        memset(digits, '9', (size_t)k);
        (*e)--;
    }
}

/* The shortest digits of finite x > 0 that read back as x, and among those of that length the
 * closest to x (ECMAScript Number::toString, step 5). Fills digits[0..*k) without trailing zeros
 * and *n such that x = 0.d1d2..dk * 10^n.
 *
 * For each length, the correctly rounded digits are the closest candidate. When they do not read
 * back, the neighbour on the other side of x still may: the range of decimals that read back as
 * x is lopsided at powers of two (the gap below is half the gap above). */
static void shortest_digits(double x, char digits[18], int *k, int *n)
{
    int bin_exp;
    bool lopsided = frexp(x, &bin_exp) == 0.5;

    for (int p = 1; p <= 17; p++) {
        char txt[48];
        snprintf(txt, sizeof(txt), "%.*e", p - 1, x);
        int cnt = 0;
        const char *c = txt;
        for (; *c && *c != 'e'; c++)
            if (*c >= '0' && *c <= '9' && cnt < 17)
                digits[cnt++] = *c;
        int e = *c == 'e' ? (int)strtol(c + 1, NULL, 10) : 0;

        double back = read_back(digits, cnt, e - cnt + 1);
        bool ok = back == x;
        if (!ok && lopsided) {
            if (back < x)
                digits_inc(digits, cnt, &e);
            else
                digits_dec(digits, cnt, &e);
            ok = read_back(digits, cnt, e - cnt + 1) == x;
        }
        if (ok || p == 17) {
            while (cnt > 1 && digits[cnt - 1] == '0')
                cnt--;
            *k = cnt;
            *n = e + 1;
            return;
        }
    }
}

int hl_json_write_num(struct hl_buf *out, double d)
{
    if (!isfinite(d))
        return HL_EINVAL;
    if (d == 0)
        return hl_buf_putc(out, '0');

    char s[64];
    size_t o = 0;
    if (d < 0) {
        s[o++] = '-';
        d = -d;
    }
    char dig[18];
    int k, n;
    shortest_digits(d, dig, &k, &n);

    if (k <= n && n <= 21) {
        memcpy(s + o, dig, (size_t)k);
        o += (size_t)k;
        memset(s + o, '0', (size_t)(n - k));
        o += (size_t)(n - k);
    } else if (0 < n && n <= 21) {
        memcpy(s + o, dig, (size_t)n);
        o += (size_t)n;
        s[o++] = '.';
        memcpy(s + o, dig + n, (size_t)(k - n));
        o += (size_t)(k - n);
    } else if (-6 < n && n <= 0) {
        s[o++] = '0';
        s[o++] = '.';
        memset(s + o, '0', (size_t)-n);
        o += (size_t)-n;
        memcpy(s + o, dig, (size_t)k);
        o += (size_t)k;
    } else {
        s[o++] = dig[0];
        if (k > 1) {
            s[o++] = '.';
            memcpy(s + o, dig + 1, (size_t)(k - 1));
            o += (size_t)(k - 1);
        }
        int e = n - 1;
        o += (size_t)snprintf(s + o, sizeof(s) - o, "e%c%d", e < 0 ? '-' : '+', e < 0 ? -e : e);
    }
    return hl_buf_append(out, s, o);
}

int hl_json_write_int(struct hl_buf *out, int64_t v)
{
    if (v < -SAFE_INT_LIMIT || v > SAFE_INT_LIMIT)
        return hl_json_write_num(out, (double)v);
    return hl_buf_printf(out, "%" PRId64, v);
}

static int write_escape(struct hl_buf *out, unsigned char c)
{
    static const char hex[] = "0123456789abcdef";
    char e[6] = {'\\', 0, 0, 0, 0, 0};
    switch (c) {
    case '"':
    case '\\':
        e[1] = (char)c;
        break;
    case '\b':
        e[1] = 'b';
        break;
    case '\f':
        e[1] = 'f';
        break;
    case '\n':
        e[1] = 'n';
        break;
    case '\r':
        e[1] = 'r';
        break;
    case '\t':
        e[1] = 't';
        break;
    default:
        e[1] = 'u';
        e[2] = '0';
        e[3] = '0';
        e[4] = hex[c >> 4];
        e[5] = hex[c & 0xf];
        return hl_buf_append(out, e, 6);
    }
    return hl_buf_append(out, e, 2);
}

int hl_json_write_str(struct hl_buf *out, const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t start = out->len;
    int rc = hl_buf_putc(out, '"');
    size_t run = 0; /* start of the bytes not yet appended */
    size_t i = 0;
    while (rc == HL_OK && i < len) {
        unsigned char c = u[i];
        if (c >= 0x80) {
            uint32_t cp;
            size_t n = hl_utf8_seq(u + i, len - i, &cp);
            if (!n) {
                rc = HL_EINVAL;
                break;
            }
            i += n;
        } else if (c < 0x20 || c == '"' || c == '\\') {
            rc = hl_buf_append(out, s + run, i - run);
            if (rc == HL_OK)
                rc = write_escape(out, c);
            run = ++i;
        } else {
            i++;
        }
    }
    if (rc == HL_OK)
        rc = hl_buf_append(out, s + run, len - run);
    if (rc == HL_OK)
        rc = hl_buf_putc(out, '"');
    if (rc != HL_OK && out->p) {
        out->len = start;
        out->p[start] = '\0';
    }
    return rc;
}

/* True when key[0..len) is a canonical array index ("0", "17"; not "01", "-1", "4294967295"),
 * which JavaScript objects list first, in ascending order. */
static bool array_index(const char *key, size_t len, uint32_t *idx)
{
    if (len == 0 || len > 10 || (len > 1 && key[0] == '0'))
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (key[i] < '0' || key[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(key[i] - '0');
    }
    if (v > MAX_ARRAY_INDEX)
        return false;
    *idx = (uint32_t)v;
    return true;
}

struct member {
    uint32_t idx;
    const char *key;
    size_t klen;
    const json_t *val;
};

static int member_cmp(const void *a, const void *b)
{
    uint32_t x = ((const struct member *)a)->idx, y = ((const struct member *)b)->idx;
    return (x > y) - (x < y);
}

static int write_value(struct hl_buf *out, const json_t *v, int depth);

static int write_member(struct hl_buf *out, bool first, const char *key, size_t klen,
                        const json_t *val, int depth)
{
    int rc = first ? HL_OK : hl_buf_putc(out, ',');
    if (rc == HL_OK)
        rc = hl_json_write_str(out, key, klen);
    if (rc == HL_OK)
        rc = hl_buf_putc(out, ':');
    if (rc == HL_OK)
        rc = write_value(out, val, depth);
    return rc;
}

static int write_object(struct hl_buf *out, const json_t *obj, int depth)
{
    json_t *o = (json_t *)obj; /* jansson's iterators take non-const objects; nothing changes */
    struct member *idx = NULL;
    size_t nidx = 0;
    uint32_t ix;

    for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it))
        if (array_index(json_object_iter_key(it), json_object_iter_key_len(it), &ix))
            nidx++;
    if (nidx) {
        idx = malloc(nidx * sizeof(*idx));
        if (!idx)
            return HL_ENOMEM;
        size_t i = 0;
        for (void *it = json_object_iter(o); it; it = json_object_iter_next(o, it)) {
            const char *key = json_object_iter_key(it);
            size_t klen = json_object_iter_key_len(it);
            if (array_index(key, klen, &ix))
                idx[i++] = (struct member){ix, key, klen, json_object_iter_value(it)};
        }
        qsort(idx, nidx, sizeof(*idx), member_cmp);
    }

    int rc = hl_buf_putc(out, '{');
    bool first = true;
    for (size_t i = 0; rc == HL_OK && i < nidx; i++, first = false)
        rc = write_member(out, first, idx[i].key, idx[i].klen, idx[i].val, depth);
    for (void *it = json_object_iter(o); rc == HL_OK && it; it = json_object_iter_next(o, it)) {
        const char *key = json_object_iter_key(it);
        size_t klen = json_object_iter_key_len(it);
        if (nidx && array_index(key, klen, &ix))
            continue;
        rc = write_member(out, first, key, klen, json_object_iter_value(it), depth);
        first = false;
    }
    if (rc == HL_OK)
        rc = hl_buf_putc(out, '}');
    free(idx);
    return rc;
}

/* depth: how many containers enclose v. */
static int write_value(struct hl_buf *out, const json_t *v, int depth)
{
    if (!v)
        return HL_EINVAL;
    switch (json_typeof(v)) {
    case JSON_OBJECT:
        if (depth >= HL_JSON_MAX_DEPTH)
            return HL_EINVAL;
        return write_object(out, v, depth + 1);
    case JSON_ARRAY: {
        if (depth >= HL_JSON_MAX_DEPTH)
            return HL_EINVAL;
        int rc = hl_buf_putc(out, '[');
        size_t n = json_array_size(v);
        for (size_t i = 0; rc == HL_OK && i < n; i++) {
            if (i)
                rc = hl_buf_putc(out, ',');
            if (rc == HL_OK)
                rc = write_value(out, json_array_get(v, i), depth + 1);
        }
        if (rc == HL_OK)
            rc = hl_buf_putc(out, ']');
        return rc;
    }
    case JSON_STRING:
        return hl_json_write_str(out, json_string_value(v), json_string_length(v));
    case JSON_INTEGER:
        return hl_json_write_int(out, (int64_t)json_integer_value(v));
    case JSON_REAL:
        return hl_json_write_num(out, json_real_value(v));
    case JSON_TRUE:
        return hl_buf_puts(out, "true");
    case JSON_FALSE:
        return hl_buf_puts(out, "false");
    case JSON_NULL:
        return hl_buf_puts(out, "null");
    }
    return HL_EINVAL;
}

int hl_json_write(struct hl_buf *out, const json_t *v)
{
    return write_value(out, v, 0);
}

/* True for a real whose value is a whole number within +-2^53. */
static bool whole_real(const json_t *v)
{
    if (!json_is_real(v))
        return false;
    double d = json_real_value(v);
    return d >= -(double)SAFE_INT_LIMIT && d <= (double)SAFE_INT_LIMIT && d == floor(d);
}

/* Walks a parsed document: fails with HL_EINVAL when containers nest deeper than
 * HL_JSON_MAX_DEPTH, and turns reals with a whole value within +-2^53 (1.0, 1e2) into integers,
 * so that json_is_integer means what Number.isSafeInteger means to the JavaScript side.
 * jansson's parser stops at 2048 levels, which bounds this recursion. */
static int finish(json_t *v, int depth);

/* Finishes one element or member value e; *repl is the integer that must replace it, or NULL. */
static int finish_child(json_t *e, int depth, json_t **repl)
{
    *repl = NULL;
    if (!whole_real(e))
        return finish(e, depth);
    *repl = json_integer((json_int_t)json_real_value(e));
    return *repl ? HL_OK : HL_ENOMEM;
}

static int finish(json_t *v, int depth)
{
    int rc = HL_OK;
    json_t *repl;
    if (json_is_array(v)) {
        if (depth >= HL_JSON_MAX_DEPTH)
            return HL_EINVAL;
        for (size_t i = 0; rc == HL_OK && i < json_array_size(v); i++) {
            rc = finish_child(json_array_get(v, i), depth + 1, &repl);
            if (rc == HL_OK && repl && json_array_set_new(v, i, repl))
                rc = HL_ENOMEM;
        }
    } else if (json_is_object(v)) {
        if (depth >= HL_JSON_MAX_DEPTH)
            return HL_EINVAL;
        for (void *it = json_object_iter(v); rc == HL_OK && it; it = json_object_iter_next(v, it)) {
            rc = finish_child(json_object_iter_value(it), depth + 1, &repl);
            if (rc == HL_OK && repl && json_object_iter_set_new(v, it, repl))
                rc = HL_ENOMEM;
        }
    }
    return rc;
}

/* Keeps err printable ASCII: jansson quotes input bytes in its messages, and the message may go
 * back to the client inside a JSON error body. */
static void sanitize(char *s)
{
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
            *s = '?';
}

json_t *hl_json_parse(const char *p, size_t len, char *err, size_t errlen)
{
    const size_t flags = JSON_REJECT_DUPLICATES | JSON_DECODE_ANY;
    json_error_t jerr;
    if (!p) {
        p = "";
        len = 0;
    }
    json_t *v = json_loadb(p, len, flags, &jerr);
    /* JSON.parse reads 123456789012345680000 as a double; jansson refuses integers beyond int64
     * unless every integer is read as a real. Real overflow (1e400) still fails on this retry. */
    if (!v && json_error_code(&jerr) == json_error_numeric_overflow)
        v = json_loadb(p, len, flags | JSON_DECODE_INT_AS_REAL, &jerr);
    if (!v) {
        if (err && errlen) {
            snprintf(err, errlen, "line %d, column %d: %s", jerr.line, jerr.column, jerr.text);
            sanitize(err);
        }
        return NULL;
    }
    json_t *repl;
    int rc = finish_child(v, 0, &repl);
    if (repl) {
        json_decref(v);
        v = repl;
    }
    if (rc != HL_OK) {
        json_decref(v);
        if (err && errlen) {
            if (rc == HL_EINVAL)
                snprintf(err, errlen, "nesting deeper than %d levels", HL_JSON_MAX_DEPTH);
            else
                snprintf(err, errlen, "%s", hl_strerror(rc));
        }
        return NULL;
    }
    return v;
}
