#include "common/buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

void hl_buf_init(struct hl_buf *b, size_t max)
{
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

static int reserve(struct hl_buf *b, size_t extra)
{
    if (extra > b->max - b->len)
        return HL_ETOOBIG;
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return HL_OK;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap = cap > SIZE_MAX / 2 ? need : cap * 2;
    if (cap > b->max + 1)
        cap = b->max + 1;
    char *p = realloc(b->p, cap);
    if (!p)
        return HL_ENOMEM;
    b->p = p;
    b->cap = cap;
    return HL_OK;
}

int hl_buf_append(struct hl_buf *b, const void *data, size_t n)
{
    int rc = reserve(b, n);
    if (rc)
        return rc;
    if (n)
        memcpy(b->p + b->len, data, n);
    b->len += n;
    b->p[b->len] = '\0';
    return HL_OK;
}

int hl_buf_puts(struct hl_buf *b, const char *s)
{
    return hl_buf_append(b, s, strlen(s));
}

int hl_buf_putc(struct hl_buf *b, char c)
{
    return hl_buf_append(b, &c, 1);
}

int hl_buf_printf(struct hl_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return HL_EINVAL;
    int rc = reserve(b, (size_t)n);
    if (rc)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return HL_OK;
}

void hl_buf_reset(struct hl_buf *b)
{
    b->len = 0;
    if (b->p)
        b->p[0] = '\0';
}

char *hl_buf_steal(struct hl_buf *b)
{
    char *p = b->p;
    if (!p)
        p = calloc(1, 1);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
    return p;
}

void hl_buf_free(struct hl_buf *b)
{
    free(b->p);
    b->p = NULL;
    b->len = 0;
    b->cap = 0;
}
