#include "common/log.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/utf8.h"

static enum hl_log_level min_level = HL_LOG_INFO;
static enum hl_log_format format = HL_LOG_TEXT;

static const char *const LEVEL_NAMES[] = {"debug", "info", "warn", "error"};

void hl_log_set_level(enum hl_log_level level)
{
    min_level = level;
}

void hl_log_set_format(enum hl_log_format f)
{
    format = f;
}

int hl_log_enabled(enum hl_log_level level)
{
    return level >= min_level;
}

/* ---- building a line ---- */

/* Bytes kept free for closing the line: "\"}}\n" and the NUL, with room to spare. */
#define RESERVE 8

/* A line being built in a fixed buffer; what does not fit is left out. */
struct line {
    char *p;
    size_t len, cap;
};

static int room(const struct line *l, size_t n)
{
    return l->len + n + RESERVE <= l->cap;
}

/* Appends s[0..n) if it fits before the reserve. Returns 1 when it did. */
static int add(struct line *l, const char *s, size_t n)
{
    if (!room(l, n))
        return 0;
    memcpy(l->p + l->len, s, n);
    l->len += n;
    return 1;
}

/* How one byte sequence of s is written: the bytes of esc (n of them). quoted: inside a JSON
 * string or a quoted text value, where '"' and '\\' are escaped and control characters spelled;
 * otherwise (text messages) a control character becomes a space. Bytes that are not UTF-8
 * become '?'. Returns how many bytes of s it consumed. */
static size_t escape(const char *s, size_t len, int quoted, char esc[8], size_t *n)
{
    unsigned char c = (unsigned char)s[0];
    uint32_t cp;
    size_t seq = c >= 0x80 ? hl_utf8_seq((const unsigned char *)s, len, &cp) : 1;
    if (c >= 0x80 && seq) {
        memcpy(esc, s, seq);
        *n = seq;
        return seq;
    }
    if (c >= 0x80) {
        *n = (size_t)snprintf(esc, 8, "?");
        return 1;
    }
    if (!quoted)
        *n = (size_t)snprintf(esc, 8, "%c", c < 0x20 || c == 0x7f ? ' ' : c);
    else if (c == '"' || c == '\\')
        *n = (size_t)snprintf(esc, 8, "\\%c", c);
    else if (c == '\n')
        *n = (size_t)snprintf(esc, 8, "\\n");
    else if (c < 0x20 || c == 0x7f)
        *n = (size_t)snprintf(esc, 8, "\\u%04x", c);
    else
        *n = (size_t)snprintf(esc, 8, "%c", c);
    return 1;
}

/* Appends s escaped (see escape), as much of it as fits, keeping room for close (0 or 1 byte,
 * the closing quote). */
static void add_escaped(struct line *l, const char *s, int quoted, size_t close)
{
    size_t len = strlen(s);
    for (size_t i = 0; i < len;) {
        char esc[8];
        size_t n;
        size_t used = escape(s + i, len - i, quoted, esc, &n);
        if (!room(l, n + close))
            return;
        add(l, esc, n);
        i += used;
    }
}

/* Appends s as a quoted string ("…" with JSON escapes). Returns 0 when not even "" fits. */
static int add_quoted(struct line *l, const char *s)
{
    if (!add(l, "\"", 1))
        return 0;
    add_escaped(l, s, 1, 1);
    l->p[l->len++] = '"'; /* room() kept a byte for it */
    return 1;
}

/* A text value needs quotes when it is empty or holds a space, a quote, '=', '\\' or a control
 * character. */
static int needs_quotes(const char *s)
{
    if (!*s)
        return 1;
    for (; *s; s++)
        if ((unsigned char)*s <= 0x20 || *s == '"' || *s == '=' || *s == '\\' || *s == 0x7f)
            return 1;
    return 0;
}

static int add_number(struct line *l, double v)
{
    char num[40];
    int n = snprintf(num, sizeof(num), isfinite(v) ? "%.15g" : "null", v);
    return add(l, num, (size_t)n);
}

static void add_field(struct line *l, const struct hl_log_field *f, int first)
{
    if (!f->is_num && !f->s)
        return;
    if (format == HL_LOG_JSON) {
        size_t mark = l->len;
        if (!(add(l, first ? "" : ",", first ? 0 : 1) && add_quoted(l, f->key) && add(l, ":", 1) &&
              (f->is_num ? add_number(l, f->n) : add_quoted(l, f->s))))
            l->len = mark; /* no room: the whole field is left out */
        return;
    }
    size_t mark = l->len;
    if (!(add(l, " ", 1) && add(l, f->key, strlen(f->key)) && add(l, "=", 1)))
        l->len = mark;
    else if (f->is_num)
        add_number(l, f->n);
    else if (needs_quotes(f->s))
        add_quoted(l, f->s);
    else
        add_escaped(l, f->s, 0, 0);
}

size_t hl_log_format_line(char *out, size_t cap, int64_t time_ms, enum hl_log_level level,
                          const struct hl_log_field *f, size_t n, const char *message)
{
    if (cap < HL_LOG_LINE_MIN) {
        if (cap)
            out[0] = '\0';
        return 0;
    }
    struct line l = {out, 0, cap};
    char ts[HL_ISO_MAX];
    hl_time_iso(time_ms, ts);
    const char *lv = LEVEL_NAMES[level];
    if (format == HL_LOG_JSON) {
        add(&l, "{\"time\":\"", 9);
        add(&l, ts, strlen(ts));
        add(&l, "\",\"level\":\"", 11);
        add(&l, lv, strlen(lv));
        add(&l, "\",\"message\":", 12);
        /* the message is cut to leave room for what follows it */
        l.cap -= 16;
        add_quoted(&l, message);
        l.cap += 16;
        add(&l, ",\"fields\":{", 11);
        int first = 1;
        for (size_t i = 0; i < n; i++) {
            size_t before = l.len;
            add_field(&l, &f[i], first);
            first = first && l.len == before;
        }
        memcpy(l.p + l.len, "}}\n", 4);
        return l.len + 3;
    }
    add(&l, ts, strlen(ts));
    add(&l, " ", 1);
    add(&l, lv, strlen(lv));
    add(&l, " ", 1);
    add_escaped(&l, message, 0, 0);
    for (size_t i = 0; i < n; i++)
        add_field(&l, &f[i], 1);
    memcpy(l.p + l.len, "\n", 2);
    return l.len + 1;
}

static void emit(enum hl_log_level level, const struct hl_log_field *f, size_t n, const char *fmt,
                 va_list ap)
{
    char message[1024], line[HL_LOG_LINE_MAX];
    vsnprintf(message, sizeof(message), fmt, ap);
    size_t len = hl_log_format_line(line, sizeof(line), hl_now_ms(), level, f, n, message);
    /* One write per line keeps lines from different threads whole. */
    fwrite(line, 1, len, stderr);
}

void hl_log(enum hl_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, 0, fmt, ap);
    va_end(ap);
}

void hl_log_fields(enum hl_log_level level, const struct hl_log_field *f, size_t n, const char *fmt,
                   ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, f, n, fmt, ap);
    va_end(ap);
}

void hl_debug_va(const char *prefix, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof(line), fmt, ap);
    size_t n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    hl_debug("%s: %s", prefix, line);
}
