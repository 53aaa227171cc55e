/* A growable byte buffer with a hard maximum fixed when it is created. */
#ifndef HL_BUF_H
#define HL_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct hl_buf {
    char *p;    /* always NUL-terminated when non-NULL */
    size_t len; /* bytes used, without the NUL */
    size_t cap; /* bytes allocated */
    size_t max; /* len never exceeds this */
};

/* Starts an empty buffer that may grow to max bytes. Allocates nothing yet. */
void hl_buf_init(struct hl_buf *b, size_t max);
/* Appends n bytes. Returns 0, HL_ETOOBIG past the maximum (buffer unchanged) or HL_ENOMEM. */
int hl_buf_append(struct hl_buf *b, const void *data, size_t n);
/* Appends a NUL-terminated string. Same returns as hl_buf_append. */
int hl_buf_puts(struct hl_buf *b, const char *s);
/* Appends one byte. */
int hl_buf_putc(struct hl_buf *b, char c);
/* Appends printf-formatted text. */
int hl_buf_printf(struct hl_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Empties the buffer, keeping its memory. */
void hl_buf_reset(struct hl_buf *b);
/* Takes the bytes out: the caller owns and frees the returned string; the buffer is emptied. */
char *hl_buf_steal(struct hl_buf *b);
/* Frees the memory. The buffer can be used again after hl_buf_init. */
void hl_buf_free(struct hl_buf *b);

#endif
