/* What is wrong with a client's value, as a checker of common/ reports it for the API's 422. */
#ifndef HL_FAULT_H
#define HL_FAULT_H

#include <stddef.h>

#include "common/err.h"

struct hl_fault {
    const char *code; /* "filter_path_invalid", "header_reserved", ... (static) */
    const char *what; /* the rule broken, to follow the key: "must be ..." (static) */
    const char *key;  /* the key at fault in the client's object (key_len bytes, not
                       * printable-safe); NULL when the fault is the whole value's */
    size_t key_len;
};

/* Fills *f and returns HL_EINVAL, for a checker's "return hl_fault_set(...)". */
static inline int hl_fault_set(struct hl_fault *f, const char *code, const char *what,
                               const char *key, size_t key_len)
{
    *f = (struct hl_fault){code, what, key, key_len};
    return HL_EINVAL;
}

#endif
