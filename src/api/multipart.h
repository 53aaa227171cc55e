/* A streaming multipart/form-data parser (RFC 7578 on RFC 2046 boundaries).
 *
 * The body may arrive in chunks of any size, and the outcome never depends on where it was cut:
 * the same parts, the same bytes, the same error. Memory is fixed when the parser is made (no
 * allocation): a part's header block, the number of parts, a field name's length, and the bytes
 * skipped outside the parts (preamble, padding, epilogue) are all bounded below.
 *
 * It is strict where a lenient reading would silently change the data: a body that ends before
 * its closing boundary, a boundary line followed by anything but padding and CRLF (or "--"), bare
 * CR or LF in part headers, folded header lines, repeated headers or parameters, a part without a
 * name, and transfer encodings other than 7bit/8bit/binary are all errors.
 */
#ifndef HL_MULTIPART_H
#define HL_MULTIPART_H

#include <stdbool.h>
#include <stddef.h>

#include "common/str.h"

#define HL_MULTIPART_MAX_BOUNDARY 70 /* RFC 2046 */
#define HL_MULTIPART_MAX_HEADER 8192 /* one part's header block, blank line included */
#define HL_MULTIPART_MAX_PARTS 64
#define HL_MULTIPART_MAX_NAME 256  /* a field name, in bytes */
#define HL_MULTIPART_MAX_SKIP 4096 /* preamble, and epilogue after the closing boundary */

/* A part as its headers describe it. The strings point into the parser and are valid during the
 * part callback only; quoted values are unescaped. */
struct hl_part {
    struct hl_str name; /* never empty */
    struct hl_str filename;
    bool has_filename;
    struct hl_str content_type;
    bool has_content_type;
};

/* What the parser reports. Each returns 0 to go on, or a negative HL_E code that stops the parse
 * and comes back from hl_multipart_feed (and every later call). part_end may be NULL. */
struct hl_multipart_cb {
    int (*part)(void *ud, const struct hl_part *part); /* a part begins */
    int (*data)(void *ud, const char *p, size_t n);    /* bytes of the current part, n > 0 */
    int (*part_end)(void *ud);                         /* its closing boundary was seen */
};

struct hl_multipart {
    const struct hl_multipart_cb *cb;
    void *ud;
    char delim[4 + HL_MULTIPART_MAX_BOUNDARY]; /* CR LF "--" boundary */
    size_t dlen;
    int state;
    size_t match;   /* bytes of delim matched so far */
    size_t skipped; /* preamble or epilogue bytes so far */
    size_t parts;
    int rc;        /* the error that stopped the parse, or 0 */
    char why[160]; /* what was wrong with the body, when rc is HL_EPARSE */
    size_t hlen;
    char hdr[HL_MULTIPART_MAX_HEADER];
};

/* Prepares mp for a body sent with content_type (a Content-Type header value, which must be
 * multipart/form-data with a valid boundary parameter). Returns 0, or HL_EPARSE with the reason
 * in hl_multipart_error(mp). */
int hl_multipart_init(struct hl_multipart *mp, const char *content_type,
                      const struct hl_multipart_cb *cb, void *ud);

/* Parses the next n bytes of the body, calling the callbacks on the way. Returns 0; HL_EPARSE
 * when the body is malformed (reason in hl_multipart_error); or a callback's error. Once it has
 * failed, every later call returns the same error. */
int hl_multipart_feed(struct hl_multipart *mp, const char *p, size_t n);

/* Says the body has ended. Returns 0 when it ended after its closing boundary, otherwise
 * HL_EPARSE (the body was cut short) or the error that stopped the parse before. */
int hl_multipart_finish(struct hl_multipart *mp);

/* What was wrong with the body (for a 400 answer), or NULL when the parser has not failed on
 * the body itself. */
const char *hl_multipart_error(const struct hl_multipart *mp);

#endif
