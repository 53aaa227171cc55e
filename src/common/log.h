/* One line per message on stderr: time, level, message and fields, as text or JSON. Never pass
 * secrets, API keys or request bodies to it; name things by their public ids (dlv_…, webhook-…,
 * evt_…, app-…), never by row numbers.
 *
 * Text:  2026-11-27T07:18:52.741Z info attempt delivered delivery=dlv_42 status=200
 * JSON:  {"time":"2026-11-27T07:18:52.741Z","level":"info","message":"attempt delivered",
 *         "fields":{"delivery":"dlv_42","status":200}}
 * A line is at most HL_LOG_LINE_MAX bytes: longer messages and values are cut, and a JSON line
 * stays valid JSON. Control characters never reach the output raw (text: a space or an escape
 * in a quoted value; JSON: escaped), nor do bytes that are not UTF-8 ('?').
 */
#ifndef HL_LOG_H
#define HL_LOG_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

enum hl_log_level { HL_LOG_DEBUG, HL_LOG_INFO, HL_LOG_WARN, HL_LOG_ERROR };
enum hl_log_format { HL_LOG_TEXT, HL_LOG_JSON };

/* Longest line written, with its newline. */
#define HL_LOG_LINE_MAX 4096
/* Smallest buffer hl_log_format_line writes a line into. */
#define HL_LOG_LINE_MIN 128

/* One field of a line: key, then a string (s), or a number (n) when is_num. A string field whose
 * s is NULL is left out of the line. Keys are plain words chosen by the code, not input. */
struct hl_log_field {
    const char *key;
    const char *s;
    double n;
    int is_num;
};
#define HL_LOG_STR(k, v) ((struct hl_log_field){.key = (k), .s = (v)})
#define HL_LOG_NUM(k, v) ((struct hl_log_field){.key = (k), .n = (double)(v), .is_num = 1})

/* Sets the lowest level that is printed (default HL_LOG_INFO). */
void hl_log_set_level(enum hl_log_level level);
/* Sets how lines are written (default HL_LOG_TEXT). Call before other threads log. */
void hl_log_set_format(enum hl_log_format format);
/* True when messages at level are printed (so callers can skip building them). */
int hl_log_enabled(enum hl_log_level level);
/* Prints one line with a message and no fields. */
void hl_log(enum hl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints one line with a message and the n fields f. */
void hl_log_fields(enum hl_log_level level, const struct hl_log_field *f, size_t n, const char *fmt,
                   ...) __attribute__((format(printf, 4, 5)));
/* Writes into out (cap bytes, at least HL_LOG_LINE_MIN) the line hl_log_fields would print at the
 * current format, with its newline and a NUL, for time_ms (ms since the epoch). Returns its
 * length; 0 (and an empty string) when cap is too small. */
size_t hl_log_format_line(char *out, size_t cap, int64_t time_ms, enum hl_log_level level,
                          const struct hl_log_field *f, size_t n, const char *message);
/* Prints one debug line "prefix: message" for a library's printf-style log callback (such as
 * libmicrohttpd's), dropping the line breaks the library ends its messages with. Messages longer
 * than 511 bytes are cut. */
void hl_debug_va(const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

#define hl_debug(...) hl_log(HL_LOG_DEBUG, __VA_ARGS__)
#define hl_info(...) hl_log(HL_LOG_INFO, __VA_ARGS__)
#define hl_warn(...) hl_log(HL_LOG_WARN, __VA_ARGS__)
#define hl_error(...) hl_log(HL_LOG_ERROR, __VA_ARGS__)

#endif
