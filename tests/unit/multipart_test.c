/* Tests for src/api/multipart.c, the streaming multipart/form-data parser.
 *
 * Each case is a Content-Type and a body, and what the parser must report: a transcript of its
 * callbacks (<name;f=filename;t=type> for a part, the data bytes, | when the part ends) and the
 * result of the parse, with a word the reason must hold. Every case is fed whole, a byte at a
 * time, split in two at every point (every 7th for long bodies) and in random chunks: the
 * transcript, the result and the reason must be the same each time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/multipart.h"
#include "common/err.h"

#define FORM "multipart/form-data; boundary=XyZ"
#define CD "Content-Disposition: form-data; "
#define FILE_PART                                                                                  \
    "--XyZ\r\n" CD "name=\"file\"; filename=\"a.txt\"\r\nContent-Type: text/plain\r\n\r\n"
#define CB_REFUSED (-100) /* what the test's part callback returns for a part named "stop" */

struct mcase {
    const char *name;
    const char *ct;   /* the Content-Type; '@' stands for fill */
    const char *body; /* '@' stands for fill */
    size_t len;       /* of body, when it holds NUL bytes (0: strlen) */
    const char *fill; /* repeated fill_n times where the '@' is */
    size_t fill_n;
    int init_rc;       /* hl_multipart_init's result */
    int rc;            /* the result of feeding the whole body and finishing */
    const char *why;   /* text the reason must hold (failures on the body itself) */
    const char *trans; /* the transcript (NULL: not checked) */
    size_t trans_len;  /* when it holds NUL bytes (0: strlen) */
};

static const struct mcase cases[] = {
    /* forms that are fine */
    {"one file", FORM, FILE_PART "hello\r\n--XyZ--\r\n", 0, 0, 0, 0, 0, 0,
     "<file;f=a.txt;t=text/plain>hello|", 0},
    {"field and file", FORM,
     "--XyZ\r\n" CD "name=\"externalTenantId\"\r\n\r\nt-1\r\n" FILE_PART "hi\r\n--XyZ--", 0, 0, 0,
     0, 0, 0, "<externalTenantId>t-1|<file;f=a.txt;t=text/plain>hi|", 0},
    {"no CRLF after the close", FORM, FILE_PART "x\r\n--XyZ--", 0, 0, 0, 0, 0, 0,
     "<file;f=a.txt;t=text/plain>x|", 0},
    {"empty data", FORM, "--XyZ\r\n" CD "name=a\r\n\r\n\r\n--XyZ--\r\n", 0, 0, 0, 0, 0, 0, "<a>|",
     0},
    {"no parts", FORM, "--XyZ--\r\n", 0, 0, 0, 0, 0, 0, "", 0},
    {"preamble and epilogue", FORM,
     "This is a preamble.\r\n--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--\r\nand an epilogue\r\n", 0,
     0, 0, 0, 0, 0, "<a>v|", 0},
    {"CRLF before the first boundary", FORM, "\r\n--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, 0,
     0, 0, 0, 0, "<a>v|", 0},
    {"transport padding", FORM,
     "--XyZ \t \r\n" CD "name=a\r\n\r\nv\r\n--XyZ\t\r\n" CD "name=b\r\n\r\nw\r\n--XyZ--", 0, 0, 0,
     0, 0, 0, "<a>v|<b>w|", 0},
    {"boundary look-alikes are data", FORM,
     "--XyZ\r\n" CD "name=a\r\n\r\n\r\n--Xy\r\r\n-\r\n--XYZ\r\r\r\na--XyZ\r\n\r\r\n--XyZ--", 0, 0,
     0, 0, 0, 0, "<a>\r\n--Xy\r\r\n-\r\n--XYZ\r\r\r\na--XyZ\r\n\r|", 0},
    {"CR right before the delimiter", FORM, "--XyZ\r\n" CD "name=a\r\n\r\n\r\r\n--XyZ--", 0, 0, 0,
     0, 0, 0, "<a>\r|", 0},
    {"data with NUL and high bytes", FORM, "--XyZ\r\n" CD "name=a\r\n\r\n\0\xff\xfe\0\r\n--XyZ--",
     sizeof("--XyZ\r\n" CD "name=a\r\n\r\n\0\xff\xfe\0\r\n"
            "--XyZ--") -
         1,
     0, 0, 0, 0, 0, "<a>\0\xff\xfe\0|", 8},
    {"quoted boundary, other parameters", "Multipart/Form-Data; charset=utf-8; BOUNDARY=\"XyZ\"",
     FILE_PART "q\r\n--XyZ--", 0, 0, 0, 0, 0, 0, "<file;f=a.txt;t=text/plain>q|", 0},
    {"boundary with every allowed character", "multipart/form-data; boundary=\"a'()+_,-./:=? b\"",
     "--a'()+_,-./:=? b\r\n" CD "name=a\r\n\r\nv\r\n--a'()+_,-./:=? b--", 0, 0, 0, 0, 0, 0, "<a>v|",
     0},
    {"boundary of 70 characters", "multipart/form-data; boundary=@",
     "--@\r\n" CD "name=a\r\n\r\nv\r\n--@--", 0, "b", 70, 0, 0, 0, "<a>v|", 0},
    {"header names in any case, other headers ignored", FORM,
     "--XyZ\r\ncontent-disposition:form-data;name=a;FILENAME=\"f\"\r\nX-Extra: 1\r\n"
     "CONTENT-TYPE:   text/x  \r\ncontent-transfer-encoding: Binary\r\n\r\nv\r\n--XyZ--",
     0, 0, 0, 0, 0, 0, "<a;f=f;t=text/x>v|", 0},
    {"escaped quote in a filename", FORM,
     "--XyZ\r\n" CD "name=\"file\"; filename=\"a\\\"b\\\\c.txt\"\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     0, 0, "<file;f=a\"b\\c.txt>v|", 0},
    {"empty filename, filename* ignored", FORM,
     "--XyZ\r\n" CD "name=file; filename=\"\"; filename*=UTF-8''x\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     0, 0, "<file;f=>v|", 0},
    {"filename bytes passed as they are", FORM,
     "--XyZ\r\n" CD "name=file; filename=\"\xc3\xa9\x1b\0.txt\"\r\n\r\nv\r\n--XyZ--",
     sizeof("--XyZ\r\n" CD "name=file; filename=\"\xc3\xa9\x1b\0.txt\"\r\n\r\nv\r\n--XyZ--") - 1, 0,
     0, 0, 0, 0, "<file;f=\xc3\xa9\x1b\0.txt>v|", 19},
    {"name of 256 bytes", FORM, "--XyZ\r\n" CD "name=\"@\"\r\n\r\nv\r\n--XyZ--", 0, "n", 256, 0, 0,
     0, NULL, 0},
    {"headers of exactly the maximum", FORM, "--XyZ\r\n" CD "name=a\r\nX: @\r\n\r\nv\r\n--XyZ--", 0,
     "h", HL_MULTIPART_MAX_HEADER - 47, 0, 0, 0, "<a>v|", 0},
    {"as many parts as allowed", FORM, "@--XyZ--", 0, "--XyZ\r\n" CD "name=a\r\n\r\n\r\n",
     HL_MULTIPART_MAX_PARTS, 0, 0, 0, NULL, 0},
    {"preamble of the maximum", FORM, "@\r\n--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, "p",
     HL_MULTIPART_MAX_SKIP, 0, 0, 0, "<a>v|", 0},
    {"epilogue of the maximum", FORM, "--XyZ--@", 0, "e", HL_MULTIPART_MAX_SKIP, 0, 0, 0, "", 0},

    /* Content-Types that cannot be parsed */
    {"no Content-Type", NULL, "", 0, 0, 0, HL_EPARSE, HL_EPARSE, "not multipart/form-data", 0, 0},
    {"not a form", "text/plain", "", 0, 0, 0, HL_EPARSE, HL_EPARSE, "not multipart/form-data", 0,
     0},
    {"another multipart", "multipart/mixed; boundary=XyZ", "", 0, 0, 0, HL_EPARSE, HL_EPARSE,
     "not multipart/form-data", 0, 0},
    {"form-data with a suffix", "multipart/form-datax; boundary=XyZ", "", 0, 0, 0, HL_EPARSE,
     HL_EPARSE, "not multipart/form-data", 0, 0},
    {"no boundary", "multipart/form-data", "", 0, 0, 0, HL_EPARSE, HL_EPARSE, "no boundary", 0, 0},
    {"empty boundary", "multipart/form-data; boundary=\"\"", "", 0, 0, 0, HL_EPARSE, HL_EPARSE,
     "no boundary", 0, 0},
    {"boundary without a value", "multipart/form-data; boundary=", "", 0, 0, 0, HL_EPARSE,
     HL_EPARSE, "malformed", 0, 0},
    {"boundary of 71 characters", "multipart/form-data; boundary=@", "", 0, "b", 71, HL_EPARSE,
     HL_EPARSE, "longer than 70", 0, 0},
    {"boundary ending in a space", "multipart/form-data; boundary=\"ab \"", "", 0, 0, 0, HL_EPARSE,
     HL_EPARSE, "space", 0, 0},
    {"boundary with a forbidden character", "multipart/form-data; boundary=\"a@b\"", "", 0, 0, 0,
     HL_EPARSE, HL_EPARSE, "RFC 2046", 0, 0},
    {"two boundaries", "multipart/form-data; boundary=a; boundary=b", "", 0, 0, 0, HL_EPARSE,
     HL_EPARSE, "two boundary", 0, 0},
    {"unterminated quoted boundary", "multipart/form-data; boundary=\"XyZ", "", 0, 0, 0, HL_EPARSE,
     HL_EPARSE, "malformed", 0, 0},

    /* bodies cut short */
    {"empty body", FORM, "", 0, 0, 0, 0, HL_EPARSE, "empty", "", 0},
    {"no boundary line at all", FORM, "just the file", 0, 0, 0, 0, HL_EPARSE, "no boundary line",
     "", 0},
    {"no closing boundary", FORM, FILE_PART "hello\r\n", 0, 0, 0, 0, HL_EPARSE, "inside a part",
     "<file;f=a.txt;t=text/plain>hello", 0},
    {"cut mid-part", FORM, FILE_PART "hel", 0, 0, 0, 0, HL_EPARSE, "inside a part",
     "<file;f=a.txt;t=text/plain>hel", 0},
    {"cut inside the delimiter", FORM, FILE_PART "hello\r\n--Xy", 0, 0, 0, 0, HL_EPARSE,
     "inside a part", "<file;f=a.txt;t=text/plain>hello", 0},
    {"cut after the delimiter", FORM, FILE_PART "hello\r\n--XyZ", 0, 0, 0, 0, HL_EPARSE,
     "inside a boundary line", "<file;f=a.txt;t=text/plain>hello|", 0},
    {"cut after one closing dash", FORM, FILE_PART "hello\r\n--XyZ-", 0, 0, 0, 0, HL_EPARSE,
     "inside a boundary line", "<file;f=a.txt;t=text/plain>hello|", 0},
    {"cut inside a part's headers", FORM, "--XyZ\r\n" CD "name=\"fi", 0, 0, 0, 0, HL_EPARSE,
     "inside a part's headers", "", 0},
    {"cut right after a boundary line", FORM, "--XyZ\r\n", 0, 0, 0, 0, HL_EPARSE,
     "inside a part's headers", "", 0},
    {"cut after the first boundary", FORM, "--XyZ", 0, 0, 0, 0, HL_EPARSE, "inside a boundary line",
     "", 0},

    /* malformed bodies */
    {"boundary line followed by junk", FORM, "--XyZjunk\r\n", 0, 0, 0, 0, HL_EPARSE,
     "goes on after the boundary", "", 0},
    {"delimiter inside data followed by junk", FORM, FILE_PART "a\r\n--XyZ_b\r\n--XyZ--", 0, 0, 0,
     0, HL_EPARSE, "goes on after the boundary", "<file;f=a.txt;t=text/plain>a|", 0},
    {"close followed by junk", FORM, "--XyZ-x", 0, 0, 0, 0, HL_EPARSE, "goes on after the boundary",
     "", 0},
    {"boundary line with a bare CR", FORM, "--XyZ\rX", 0, 0, 0, 0, HL_EPARSE, "CR without LF", "",
     0},
    {"padding then junk", FORM, "--XyZ  x\r\n", 0, 0, 0, 0, HL_EPARSE, "goes on after", "", 0},
    {"bare LF in headers", FORM, "--XyZ\r\n" CD "name=a\n\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "LF that is not preceded by CR", "", 0},
    {"bare CR in headers", FORM, "--XyZ\r\n" CD "name=\"a\rb\"\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "CR that is not followed by LF", "", 0},
    {"LF-only line ends", FORM, "--XyZ\n" CD "name=a\n\nv\n--XyZ--\n", 0, 0, 0, 0, HL_EPARSE,
     "goes on after the boundary", "", 0},
    {"folded header", FORM, "--XyZ\r\nX-A: 1\r\n 2\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "folded", "", 0},
    {"header without a colon", FORM, "--XyZ\r\n" CD "name=a\r\nJunk\r\n\r\nv\r\n--XyZ--", 0, 0, 0,
     0, HL_EPARSE, "Name: value", "", 0},
    {"header with an empty name", FORM, "--XyZ\r\n: x\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, 0, 0,
     0, HL_EPARSE, "Name: value", "", 0},
    {"header name with a space", FORM,
     "--XyZ\r\nContent-Disposition : form-data; name=a\r\n\r\n"
     "v\r\n--XyZ--",
     0, 0, 0, 0, HL_EPARSE, "Name: value", "", 0},
    {"no headers", FORM, "--XyZ\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0, HL_EPARSE, "no name", "", 0},
    {"no Content-Disposition", FORM, "--XyZ\r\nContent-Type: text/plain\r\n\r\nv\r\n--XyZ--", 0, 0,
     0, 0, HL_EPARSE, "no name", "", 0},
    {"no name parameter", FORM, "--XyZ\r\nContent-Disposition: form-data\r\n\r\nv\r\n--XyZ--", 0, 0,
     0, 0, HL_EPARSE, "no name", "", 0},
    {"empty name", FORM, "--XyZ\r\n" CD "name=\"\"\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0, HL_EPARSE,
     "no name", "", 0},
    {"name after a good part", FORM,
     "--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ\r\nContent-Disposition: form-data\r\n\r\nw\r\n"
     "--XyZ--",
     0, 0, 0, 0, HL_EPARSE, "no name", "<a>v|", 0},
    {"name of 257 bytes", FORM, "--XyZ\r\n" CD "name=\"@\"\r\n\r\nv\r\n--XyZ--", 0, "n", 257, 0,
     HL_EPARSE, "longer than 256", "", 0},
    {"not form-data", FORM, "--XyZ\r\nContent-Disposition: attachment; name=a\r\n\r\nv\r\n--XyZ--",
     0, 0, 0, 0, HL_EPARSE, "not form-data", "", 0},
    {"two Content-Dispositions", FORM, "--XyZ\r\n" CD "name=a\r\n" CD "name=b\r\n\r\nv\r\n--XyZ--",
     0, 0, 0, 0, HL_EPARSE, "two Content-Disposition", "", 0},
    {"two Content-Types", FORM,
     "--XyZ\r\n" CD "name=a\r\nContent-Type: a/b\r\nContent-Type: c/d\r\n\r\nv\r\n--XyZ--", 0, 0, 0,
     0, HL_EPARSE, "two Content-Type", "", 0},
    {"two names", FORM, "--XyZ\r\n" CD "name=a; name=b\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0, HL_EPARSE,
     "repeats name", "", 0},
    {"two filenames", FORM, "--XyZ\r\n" CD "name=a; filename=x; FileName=y\r\n\r\nv\r\n--XyZ--", 0,
     0, 0, 0, HL_EPARSE, "repeats FileName", "", 0},
    {"parameter without a value", FORM, "--XyZ\r\n" CD "name\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "parameters are malformed", "", 0},
    {"unterminated quoted name", FORM, "--XyZ\r\n" CD "name=\"a\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "parameters are malformed", "", 0},
    {"junk after a parameter", FORM, "--XyZ\r\n" CD "name=\"a\"x\r\n\r\nv\r\n--XyZ--", 0, 0, 0, 0,
     HL_EPARSE, "parameters are malformed", "", 0},
    {"base64 transfer encoding", FORM,
     "--XyZ\r\n" CD "name=a\r\nContent-Transfer-Encoding: base64\r\n\r\ndg==\r\n--XyZ--", 0, 0, 0,
     0, HL_EPARSE, "Content-Transfer-Encoding", "", 0},
    {"headers one byte over the maximum", FORM, "--XyZ\r\n" CD "name=a\r\nX: @\r\n\r\nv\r\n--XyZ--",
     0, "h", HL_MULTIPART_MAX_HEADER - 46, 0, HL_EPARSE, "headers are longer than", "", 0},
    {"endless headers", FORM, "--XyZ\r\n@", 0, "X: y\r\n", HL_MULTIPART_MAX_HEADER, 0, HL_EPARSE,
     "headers are longer than", "", 0},
    {"one part too many", FORM, "@--XyZ--", 0, "--XyZ\r\n" CD "name=a\r\n\r\n\r\n",
     HL_MULTIPART_MAX_PARTS + 1, 0, HL_EPARSE, "more than 64 parts", NULL, 0},
    {"preamble too long", FORM, "@\r\n--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, "p",
     HL_MULTIPART_MAX_SKIP + 1, 0, HL_EPARSE, "before the first boundary", "", 0},
    {"epilogue too long", FORM, "--XyZ--@", 0, "e", HL_MULTIPART_MAX_SKIP + 1, 0, HL_EPARSE,
     "follow the closing boundary", "", 0},
    {"padding too long", FORM, "--XyZ@\r\n" CD "name=a\r\n\r\nv\r\n--XyZ--", 0, " ",
     HL_MULTIPART_MAX_SKIP + 1, 0, HL_EPARSE, "padded", "", 0},

    /* a callback refuses: its error stands, the body is not blamed */
    {"callback refuses a part", FORM,
     "--XyZ\r\n" CD "name=a\r\n\r\nv\r\n--XyZ\r\n" CD "name=stop\r\n\r\nw\r\n--XyZ--", 0, 0, 0, 0,
     CB_REFUSED, NULL, "<a>v|", 0},
};

#define N_CASES (sizeof(cases) / sizeof(cases[0]))

/* What the callbacks saw. */
struct trace {
    char p[80000];
    size_t len;
};

static void add(struct trace *t, const char *p, size_t n)
{
    assert_true(t->len + n <= sizeof(t->p));
    memcpy(t->p + t->len, p, n);
    t->len += n;
}

static void add_s(struct trace *t, const char *s)
{
    add(t, s, strlen(s));
}

static int on_part(void *ud, const struct hl_part *part)
{
    struct trace *t = ud;
    assert_true(part->name.len > 0 && part->name.len <= HL_MULTIPART_MAX_NAME);
    if (part->name.len == 4 && memcmp(part->name.p, "stop", 4) == 0)
        return CB_REFUSED;
    add_s(t, "<");
    add(t, part->name.p, part->name.len);
    if (part->has_filename) {
        add_s(t, ";f=");
        add(t, part->filename.p, part->filename.len);
    }
    if (part->has_content_type) {
        add_s(t, ";t=");
        add(t, part->content_type.p, part->content_type.len);
    }
    add_s(t, ">");
    return 0;
}

static int on_data(void *ud, const char *p, size_t n)
{
    assert_true(n > 0);
    add(ud, p, n);
    return 0;
}

static int on_end(void *ud)
{
    add_s(ud, "|");
    return 0;
}

static const struct hl_multipart_cb CB = {on_part, on_data, on_end};

/* Expands the '@' of s (len bytes) into fill_n copies of fill. The caller frees. */
static char *expand(const char *s, size_t len, const char *fill, size_t fill_n, size_t *out_len)
{
    size_t fl = fill ? strlen(fill) : 0, at = 0, marks = 0;
    for (size_t i = 0; i < len; i++)
        marks += s[i] == '@' && fill;
    char *out = malloc(len + marks * fl * fill_n + 1);
    assert_non_null(out);
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '@' && fill) {
            for (size_t k = 0; k < fill_n; k++, at += fl)
                memcpy(out + at, fill, fl);
        } else {
            out[at++] = s[i];
        }
    }
    out[at] = '\0';
    *out_len = at;
    return out;
}

struct outcome {
    int rc;
    char why[160];
    struct trace t;
};

/* Parses body (cut at the cuts, ascending offsets, n_cuts of them) and records the outcome. */
static void run(const char *ct, const char *body, size_t len, const size_t *cuts, size_t n_cuts,
                struct outcome *o)
{
    static struct hl_multipart mp;
    memset(o, 0, sizeof(*o));
    int rc = hl_multipart_init(&mp, ct, &CB, &o->t);
    assert_int_equal(rc, 0);
    size_t at = 0;
    for (size_t i = 0; i <= n_cuts && rc == 0; i++) {
        size_t end = i < n_cuts ? cuts[i] : len;
        rc = hl_multipart_feed(&mp, body + at, end - at);
        if (rc) /* and it stays failed */
            assert_int_equal(hl_multipart_feed(&mp, "x", 1), rc);
        at = end;
    }
    o->rc = rc ? rc : hl_multipart_finish(&mp);
    if (o->rc)
        assert_int_equal(hl_multipart_finish(&mp), o->rc);
    const char *why = hl_multipart_error(&mp);
    if (o->rc == HL_EPARSE)
        assert_non_null(why);
    else
        assert_null(why);
    snprintf(o->why, sizeof(o->why), "%s", why ? why : "");
}

static void same(const struct mcase *c, const struct outcome *want, const struct outcome *got,
                 const char *how)
{
    if (want->rc != got->rc || strcmp(want->why, got->why) != 0 || want->t.len != got->t.len ||
        memcmp(want->t.p, got->t.p, want->t.len) != 0)
        fail_msg("%s: fed %s: rc %d \"%s\" (%zu bytes seen), whole: rc %d \"%s\" (%zu)", c->name,
                 how, got->rc, got->why, got->t.len, want->rc, want->why, want->t.len);
}

static void test_table(void **state)
{
    (void)state;
    static struct outcome whole, other;
    srand(7);
    for (size_t i = 0; i < N_CASES; i++) {
        const struct mcase *c = &cases[i];
        size_t len, ct_len;
        char *body = expand(c->body, c->len ? c->len : strlen(c->body), c->fill, c->fill_n, &len);
        char *ct = c->ct ? expand(c->ct, strlen(c->ct), c->fill, c->fill_n, &ct_len) : NULL;
        static struct hl_multipart mp;
        int init = hl_multipart_init(&mp, ct, &CB, NULL);
        if (init != c->init_rc)
            fail_msg("%s: init gives %d, want %d (%s)", c->name, init, c->init_rc,
                     hl_multipart_error(&mp) ? hl_multipart_error(&mp) : "");
        if (init) {
            if (!strstr(hl_multipart_error(&mp), c->why))
                fail_msg("%s: \"%s\" does not say \"%s\"", c->name, hl_multipart_error(&mp),
                         c->why);
            assert_int_equal(hl_multipart_feed(&mp, "x", 1), init);
            assert_int_equal(hl_multipart_finish(&mp), init);
            free(body);
            free(ct);
            continue;
        }
        run(ct, body, len, NULL, 0, &whole);
        if (whole.rc != c->rc)
            fail_msg("%s: rc %d (%s), want %d", c->name, whole.rc, whole.why, c->rc);
        if (c->why && !strstr(whole.why, c->why))
            fail_msg("%s: \"%s\" does not say \"%s\"", c->name, whole.why, c->why);
        size_t tl = c->trans_len ? c->trans_len : c->trans ? strlen(c->trans) : 0;
        if (c->trans && (whole.t.len != tl || memcmp(whole.t.p, c->trans, tl) != 0))
            fail_msg("%s: saw \"%.*s\", want \"%s\"", c->name, (int)whole.t.len, whole.t.p,
                     c->trans);
        /* The same outcome however the body is cut. */
        size_t *cuts = malloc((len + 1) * sizeof(size_t));
        assert_non_null(cuts);
        for (size_t k = 0; k + 1 < len; k++)
            cuts[k] = k + 1;
        run(ct, body, len, cuts, len ? len - 1 : 0, &other);
        same(c, &whole, &other, "a byte at a time");
        for (size_t k = 1; k<len; k += len> 512 ? 7 : 1) {
            run(ct, body, len, &k, 1, &other);
            char how[64];
            snprintf(how, sizeof(how), "in two at %zu", k);
            same(c, &whole, &other, how);
        }
        for (int r = 0; r < 20 && len > 1; r++) {
            size_t n = 0;
            for (size_t at = (size_t)rand() % 8; at < len; at += 1 + (size_t)rand() % 80)
                if (at > 0)
                    cuts[n++] = at;
            run(ct, body, len, cuts, n, &other);
            same(c, &whole, &other, "in random chunks");
        }
        free(cuts);
        free(body);
        free(ct);
    }
}

/* The part callback's strings are unescaped in place, and still right in the next part. */
static void test_fields_of_several_parts(void **state)
{
    (void)state;
    static struct outcome o;
    const char body[] = "--XyZ\r\n" CD "name=\"a\\\"\"; filename=\"x\"\r\nContent-Type: t/1\r\n"
                        "\r\n1\r\n--XyZ\r\n" CD "name=b\r\n\r\n2\r\n--XyZ--";
    run(FORM, body, sizeof(body) - 1, NULL, 0, &o);
    assert_int_equal(o.rc, 0);
    assert_int_equal(o.t.len, strlen("<a\";f=x;t=t/1>1|<b>2|"));
    assert_memory_equal(o.t.p, "<a\";f=x;t=t/1>1|<b>2|", o.t.len);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_fields_of_several_parts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
