/* Length-carrying strings: data off the wire is never assumed to end in NUL. */
#ifndef HL_STR_H
#define HL_STR_H

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

struct hl_str {
    const char *p;
    size_t len;
};

#define HL_STR(lit) ((struct hl_str){(lit), sizeof(lit) - 1})

/* Wraps a NUL-terminated string (NULL gives the empty string). */
static inline struct hl_str hl_str_c(const char *s)
{
    return (struct hl_str){s ? s : "", s ? strlen(s) : 0};
}

/* True when a and b hold the same bytes (not constant time). */
static inline bool hl_str_eq(struct hl_str a, struct hl_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

/* True when s equals the NUL-terminated c. */
static inline bool hl_str_eqc(struct hl_str s, const char *c)
{
    return hl_str_eq(s, hl_str_c(c));
}

#endif
