#include "api/multipart.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "common/err.h"

enum {
    S_PREAMBLE,    /* before the first boundary line */
    S_AFTER_DELIM, /* right after "--boundary" */
    S_PADDING,     /* transport padding (spaces, tabs) before the line's CRLF */
    S_DELIM_LF,    /* the CR that ends a boundary line was seen */
    S_CLOSE_DASH,  /* "--boundary-" */
    S_HEADERS,     /* a part's header block */
    S_BODY,        /* a part's data */
    S_EPILOGUE,    /* after "--boundary--": the body is complete */
    S_FAILED,
};

__attribute__((format(printf, 2, 3))) static int fail(struct hl_multipart *mp, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(mp->why, sizeof(mp->why), fmt, ap);
    va_end(ap);
    mp->rc = HL_EPARSE;
    mp->state = S_FAILED;
    return HL_EPARSE;
}

/* A callback refused: its error stands, and the body itself is not blamed. */
static int stop(struct hl_multipart *mp, int rc)
{
    mp->why[0] = '\0';
    mp->rc = rc;
    mp->state = S_FAILED;
    return rc;
}

/* RFC 7230 tchar: the bytes of a header name, a parameter name or an unquoted value. */
static bool is_tchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 2046 bchars: what a boundary is made of (a space, but not at the end). */
static bool is_bchar(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("'()+_,-./:=? ", c));
}

static size_t skip_ows(const char *s, size_t n, size_t i)
{
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    return i;
}

static bool str_ieq(struct hl_str s, const char *c)
{
    return s.len == strlen(c) && strncasecmp(s.p, c, s.len) == 0;
}

/* Reads a token at s[*i..n) into out. False when there is none. */
static bool token(const char *s, size_t n, size_t *i, struct hl_str *out)
{
    size_t k = *i;
    while (k < n && is_tchar(s[k]))
        k++;
    *out = (struct hl_str){s + *i, k - *i};
    *i = k;
    return out->len > 0;
}

/* Reads the next `; name=value` of a header value at s[*i..n); a quoted value is unescaped in
 * place. Returns 1 with name and value set, 0 at the end of the value, HL_EPARSE when malformed. */
static int next_param(char *s, size_t n, size_t *i, struct hl_str *name, struct hl_str *value)
{
    size_t k = skip_ows(s, n, *i);
    if (k == n)
        return *i = k, 0;
    if (s[k] != ';')
        return HL_EPARSE;
    k = skip_ows(s, n, k + 1);
    if (!token(s, n, &k, name) || k == n || s[k] != '=')
        return HL_EPARSE;
    k++;
    if (k < n && s[k] == '"') {
        char *out = s + ++k;
        size_t o = 0;
        for (;;) {
            if (k == n)
                return HL_EPARSE;
            char c = s[k++];
            if (c == '"')
                break;
            if (c == '\\') {
                if (k == n)
                    return HL_EPARSE;
                c = s[k++];
            }
            out[o++] = c;
        }
        *value = (struct hl_str){out, o};
    } else if (!token(s, n, &k, value)) {
        return HL_EPARSE;
    }
    *i = k;
    return 1;
}

int hl_multipart_init(struct hl_multipart *mp, const char *content_type,
                      const struct hl_multipart_cb *cb, void *ud)
{
    memset(mp, 0, sizeof(*mp));
    mp->cb = cb;
    mp->ud = ud;
    mp->state = S_PREAMBLE;
    /* The header value is parsed in the (still unused) header buffer: quoted values unescape in
     * place. */
    size_t n = content_type ? strlen(content_type) : 0;
    if (n >= sizeof(mp->hdr))
        return fail(mp, "the Content-Type is longer than %zu bytes", sizeof(mp->hdr) - 1);
    memcpy(mp->hdr, content_type ? content_type : "", n);
    char *s = mp->hdr;
    struct hl_str type, sub, name, value, boundary = {NULL, 0};
    size_t i = skip_ows(s, n, 0);
    if (!token(s, n, &i, &type) || i == n || s[i] != '/' || (i++, !token(s, n, &i, &sub)) ||
        !str_ieq(type, "multipart") || !str_ieq(sub, "form-data"))
        return fail(mp, "the Content-Type is not multipart/form-data");
    int rc;
    while ((rc = next_param(s, n, &i, &name, &value)) == 1) {
        if (!str_ieq(name, "boundary"))
            continue;
        if (boundary.p)
            return fail(mp, "the Content-Type has two boundary parameters");
        boundary = value;
    }
    if (rc)
        return fail(mp, "the Content-Type's parameters are malformed");
    if (!boundary.p || boundary.len == 0)
        return fail(mp, "the Content-Type has no boundary parameter");
    if (boundary.len > HL_MULTIPART_MAX_BOUNDARY)
        return fail(mp, "the boundary is longer than %d characters", HL_MULTIPART_MAX_BOUNDARY);
    for (size_t k = 0; k < boundary.len; k++)
        if (!is_bchar(boundary.p[k]))
            return fail(mp, "the boundary holds a character RFC 2046 does not allow");
    if (boundary.p[boundary.len - 1] == ' ')
        return fail(mp, "the boundary ends in a space");
    memcpy(mp->delim, "\r\n--", 4);
    memcpy(mp->delim + 4, boundary.p, boundary.len);
    mp->dlen = 4 + boundary.len;
    /* The first boundary line may open the body: act as if a CRLF came before it. */
    mp->match = 2;
    return HL_OK;
}

/* Looks for the delimiter in p[0..n). Sets *used to the bytes consumed and *found when the
 * delimiter ended there. With emit, the bytes that turned out not to be the delimiter go to the
 * data callback. A partial match at the end of p is carried to the next call without copying:
 * its bytes are delim[0..match). The boundary holds no CR, so a failed match can never hide the
 * start of another one inside the bytes it matched. */
static int scan(struct hl_multipart *mp, const char *p, size_t n, bool emit, size_t *used,
                bool *found)
{
    const size_t before = SIZE_MAX; /* the partial match began in an earlier call */
    size_t i = 0, run = 0, mstart = before;
    int rc = HL_OK;
    *found = false;
    while (i < n) {
        if (mp->match == 0) {
            const char *cr = memchr(p + i, '\r', n - i);
            if (!cr) {
                i = n;
                break;
            }
            i = (size_t)(cr - p);
            mstart = i++;
            mp->match = 1;
            continue;
        }
        if (p[i] == mp->delim[mp->match]) {
            i++;
            if (++mp->match < mp->dlen)
                continue;
            mp->match = 0;
            *found = true;
            *used = i;
            if (emit && mstart != before && mstart > run)
                rc = mp->cb->data(mp->ud, p + run, mstart - run);
            return rc;
        }
        /* Not the delimiter after all: what it matched is data. p[i] is looked at again. */
        if (mstart == before) {
            if (emit && (rc = mp->cb->data(mp->ud, mp->delim, mp->match)))
                return rc;
            run = i;
        }
        mp->match = 0;
        mstart = before;
    }
    *used = n;
    size_t end = mp->match == 0 ? n : mstart != before ? mstart : run;
    if (emit && end > run)
        rc = mp->cb->data(mp->ud, p + run, end - run);
    return rc;
}

/* Parses a complete header block (hdr[0..hlen), ending in an empty line) and announces the
 * part. */
static int part_begins(struct hl_multipart *mp)
{
    struct hl_part part = {0};
    bool disposition = false, encoding = false;
    char *s = mp->hdr;
    size_t n = mp->hlen - 2, i = 0;
    while (i < n) {
        size_t end = (size_t)((char *)memchr(s + i, '\r', n - i) - s);
        char *line = s + i;
        size_t len = end - i, k = 0;
        i = end + 2;
        struct hl_str name, value;
        if (line[0] == ' ' || line[0] == '\t')
            return fail(mp, "a part's header line is folded (starts with a space)");
        if (!token(line, len, &k, &name) || k == len || line[k] != ':')
            return fail(mp, "a part's header line is not \"Name: value\"");
        k = skip_ows(line, len, k + 1);
        while (len > k && (line[len - 1] == ' ' || line[len - 1] == '\t'))
            len--;
        value = (struct hl_str){line + k, len - k};
        if (str_ieq(name, "Content-Type")) {
            if (part.has_content_type)
                return fail(mp, "a part has two Content-Type headers");
            part.has_content_type = true;
            part.content_type = value;
        } else if (str_ieq(name, "Content-Transfer-Encoding")) {
            if (encoding)
                return fail(mp, "a part has two Content-Transfer-Encoding headers");
            encoding = true;
            if (!str_ieq(value, "binary") && !str_ieq(value, "8bit") && !str_ieq(value, "7bit"))
                return fail(mp, "a part's Content-Transfer-Encoding is not binary, 8bit or 7bit "
                                "(nothing is decoded)");
        } else if (str_ieq(name, "Content-Disposition")) {
            if (disposition)
                return fail(mp, "a part has two Content-Disposition headers");
            disposition = true;
            size_t j = 0;
            struct hl_str type, pname, pvalue;
            if (!token(value.p, value.len, &j, &type) || !str_ieq(type, "form-data"))
                return fail(mp, "a part's Content-Disposition is not form-data");
            int rc;
            bool named = false;
            while ((rc = next_param(line + k, value.len, &j, &pname, &pvalue)) == 1) {
                bool *seen = str_ieq(pname, "name")       ? &named
                             : str_ieq(pname, "filename") ? &part.has_filename
                                                          : NULL;
                if (!seen)
                    continue;
                if (*seen)
                    return fail(mp, "a part's Content-Disposition repeats %.*s", (int)pname.len,
                                pname.p);
                *seen = true;
                *(seen == &named ? &part.name : &part.filename) = pvalue;
            }
            if (rc)
                return fail(mp, "a part's Content-Disposition parameters are malformed");
        }
    }
    if (part.name.len == 0)
        return fail(mp, "a form part has no name (Content-Disposition: form-data; name=\"...\")");
    if (part.name.len > HL_MULTIPART_MAX_NAME)
        return fail(mp, "a form part's name is longer than %d bytes", HL_MULTIPART_MAX_NAME);
    int rc = mp->cb->part(mp->ud, &part);
    if (rc)
        return stop(mp, rc);
    mp->state = S_BODY;
    mp->match = 0;
    return HL_OK;
}

/* Takes one byte of a part's header block. */
static int header_byte(struct hl_multipart *mp, char c)
{
    char prev = mp->hlen ? mp->hdr[mp->hlen - 1] : '\0';
    if (mp->hlen == sizeof(mp->hdr))
        return fail(mp, "a part's headers are longer than %zu bytes", sizeof(mp->hdr));
    if (prev == '\r' && c != '\n')
        return fail(mp, "a part's headers hold a CR that is not followed by LF");
    if (c == '\n' && prev != '\r')
        return fail(mp, "a part's headers hold an LF that is not preceded by CR");
    mp->hdr[mp->hlen++] = c;
    if (c == '\n' &&
        (mp->hlen == 2 || (mp->hlen >= 4 && memcmp(mp->hdr + mp->hlen - 4, "\r\n\r\n", 4) == 0)))
        return part_begins(mp);
    return HL_OK;
}

/* Takes one byte of the states between parts. */
static int step(struct hl_multipart *mp, char c)
{
    switch (mp->state) {
    case S_AFTER_DELIM:
    case S_PADDING:
        if (c == '-' && mp->state == S_AFTER_DELIM)
            mp->state = S_CLOSE_DASH;
        else if (c == ' ' || c == '\t') {
            mp->state = S_PADDING;
            if (++mp->skipped > HL_MULTIPART_MAX_SKIP)
                return fail(mp, "a boundary line is padded with more than %d spaces",
                            HL_MULTIPART_MAX_SKIP);
        } else if (c == '\r')
            mp->state = S_DELIM_LF;
        else
            return fail(mp, "a boundary line goes on after the boundary");
        return HL_OK;
    case S_DELIM_LF:
        if (c != '\n')
            return fail(mp, "a boundary line ends in a CR without LF");
        if (++mp->parts > HL_MULTIPART_MAX_PARTS)
            return fail(mp, "the form has more than %d parts", HL_MULTIPART_MAX_PARTS);
        mp->hlen = 0;
        mp->state = S_HEADERS;
        return HL_OK;
    case S_CLOSE_DASH:
        if (c != '-')
            return fail(mp, "a boundary line goes on after the boundary");
        mp->state = S_EPILOGUE;
        mp->skipped = 0;
        return HL_OK;
    case S_HEADERS:
        return header_byte(mp, c);
    case S_EPILOGUE:
        if (++mp->skipped > HL_MULTIPART_MAX_SKIP)
            return fail(mp, "more than %d bytes follow the closing boundary",
                        HL_MULTIPART_MAX_SKIP);
        return HL_OK;
    default:
        return fail(mp, "internal parser state");
    }
}

int hl_multipart_feed(struct hl_multipart *mp, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && mp->state != S_FAILED) {
        if (mp->state != S_PREAMBLE && mp->state != S_BODY) {
            int rc = step(mp, p[i++]);
            if (rc)
                return rc;
            continue;
        }
        bool body = mp->state == S_BODY, found;
        size_t used;
        int rc = scan(mp, p + i, n - i, body, &used, &found);
        if (rc)
            return stop(mp, rc);
        i += used;
        /* The preamble is thrown away, but only so much of it. */
        if (!body && (mp->skipped += used) > HL_MULTIPART_MAX_SKIP + mp->dlen)
            return fail(mp, "more than %d bytes come before the first boundary line",
                        HL_MULTIPART_MAX_SKIP);
        if (!found)
            continue;
        if (body && mp->cb->part_end && (rc = mp->cb->part_end(mp->ud)))
            return stop(mp, rc);
        mp->state = S_AFTER_DELIM;
        mp->skipped = 0;
    }
    return mp->state == S_FAILED ? mp->rc : HL_OK;
}

int hl_multipart_finish(struct hl_multipart *mp)
{
    switch (mp->state) {
    case S_EPILOGUE:
        return HL_OK;
    case S_FAILED:
        return mp->rc;
    case S_PREAMBLE:
        return mp->skipped ? fail(mp, "the body has no boundary line (--boundary)")
                           : fail(mp, "the body is empty");
    case S_HEADERS:
        return fail(mp, "the body ends inside a part's headers");
    case S_BODY:
        return fail(mp, "the body ends inside a part, before its closing boundary");
    default:
        return fail(mp, "the body ends inside a boundary line, before the closing boundary");
    }
}

const char *hl_multipart_error(const struct hl_multipart *mp)
{
    return mp->rc == HL_EPARSE && mp->why[0] ? mp->why : NULL;
}
