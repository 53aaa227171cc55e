/* JSON in and out. Output is byte-identical to JavaScript's JSON.stringify of the same value after
 * JSON.parse, because receivers re-serialize the parsed body before checking its signature
 * (DESIGN.md, "What a receiver gets"). jansson's own json_dumps does not do that (reals, escapes),
 * so nothing that is sent or signed may use it.
 *
 * The rules of V8's JSON.stringify that matter here:
 * - strings: \" \\ \b \f \n \r \t, other code points below 0x20 as \u00xx (lowercase hex),
 *   everything else (DEL, U+2028/2029, non-ASCII) as raw UTF-8;
 * - numbers: Number::toString, i.e. the shortest digits that read back as the same double, plain
 *   decimal for 1e-7 <= |x| < 1e21 and exponent form (1e+21, 1.5e-7) otherwise; -0 is "0";
 *   integers beyond 2^53 become the nearest double, as JSON.parse makes them;
 * - objects: keys that are array indices ("0", "7", "4294967294"; no leading zero) first in
 *   ascending numeric order, then the other keys in insertion order. */
#ifndef HL_JSON_H
#define HL_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

struct hl_buf;

/* Deepest nesting of arrays and objects that hl_json_parse accepts and hl_json_write writes
 * (the top-level container is depth 1). */
#define HL_JSON_MAX_DEPTH 64

/* Appends the compact JSON text of v to out, exactly as JSON.stringify would write it.
 * Returns 0; HL_EINVAL for NaN/infinite reals, invalid UTF-8 in a string or key, or nesting
 * deeper than HL_JSON_MAX_DEPTH; HL_ETOOBIG past out's maximum; HL_ENOMEM. On error out holds
 * a partial text and should be reset by the caller. */
int hl_json_write(struct hl_buf *out, const json_t *v);

/* Appends s[0..len) as one quoted JSON string (may contain NUL bytes). s must be valid UTF-8
 * without surrogate code points. Returns 0, HL_EINVAL for invalid UTF-8 (nothing appended),
 * HL_ETOOBIG or HL_ENOMEM. */
int hl_json_write_str(struct hl_buf *out, const char *s, size_t len);

/* Appends a double as JavaScript's Number::toString writes it ("0.7", "1e+21", "-0" as "0").
 * Returns 0, HL_EINVAL for NaN or infinity (nothing appended), HL_ETOOBIG or HL_ENOMEM. */
int hl_json_write_num(struct hl_buf *out, double d);

/* Appends an integer: plain digits when |v| <= 2^53, otherwise the nearest double as
 * hl_json_write_num writes it (9007199254740993 gives "9007199254740992").
 * Returns 0, HL_ETOOBIG or HL_ENOMEM. */
int hl_json_write_int(struct hl_buf *out, int64_t v);

/* Parses p[0..len) as one JSON value of any type (callers check the type they expect).
 * Numbers follow JavaScript: a number with a whole value within +-2^53 (7, 7.0, 7e0) comes back
 * as a json integer, any other as a real (integers beyond int64 are read as the nearest double;
 * those beyond 2^53 may come back as either). Rejected: duplicate object keys, trailing
 * non-whitespace, "\u0000" in strings, reals that overflow (1e400) and nesting deeper than
 * HL_JSON_MAX_DEPTH. Returns a new reference the caller releases with json_decref, or NULL with a
 * short printable-ASCII message ("line 1, column 5: ...") in err (errlen bytes, may be 0). */
json_t *hl_json_parse(const char *p, size_t len, char *err, size_t errlen);

#endif
