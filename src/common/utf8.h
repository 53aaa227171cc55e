/* UTF-8 decoding: one strict decoder (RFC 3629) shared by the ingest text paths and the API's
 * error messages. */
#ifndef HL_UTF8_H
#define HL_UTF8_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Decodes the UTF-8 sequence at s[0..n). Returns its length in bytes (1 to 4) and sets *cp to its
 * code point, or returns 0 and leaves *cp alone when s does not start with a valid sequence:
 * n == 0, a stray continuation byte, a sequence cut short by n, an overlong form, a surrogate
 * (U+D800..U+DFFF) or a value past U+10FFFF. Reads no byte at or past s + n. */
size_t hl_utf8_seq(const unsigned char *s, size_t n, uint32_t *cp);

/* Decodes one character at s[0..n), n >= 1, for text that must go on past bad bytes: returns the
 * length of a valid sequence and its code point, or 1 with *cp = U+FFFD when the first byte does
 * not start one (the invalid byte counts as one character). */
size_t hl_utf8_next(const unsigned char *s, size_t n, uint32_t *cp);

/* True for the Unicode White_Space code points (ASCII spaces, NEL, NBSP, U+2000..U+200A, the
 * line and paragraph separators, ideographic space ...): where words break. */
bool hl_utf8_is_space(uint32_t c);

#endif
