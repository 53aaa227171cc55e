/* One line per message on stderr, with time and level. Never pass secrets to it. */
#ifndef HL_LOG_H
#define HL_LOG_H

#include <stdarg.h>

enum hl_log_level { HL_LOG_DEBUG, HL_LOG_INFO, HL_LOG_WARN, HL_LOG_ERROR };

/* Sets the lowest level that is printed (default HL_LOG_INFO). */
void hl_log_set_level(enum hl_log_level level);
/* True when messages at level are printed (so callers can skip building them). */
int hl_log_enabled(enum hl_log_level level);
/* Prints one line. */
void hl_log(enum hl_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
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
