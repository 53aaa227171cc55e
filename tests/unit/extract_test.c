/* Tests for src/ingest/extract.c: real files in a temporary folder, one table row per file.
 *
 * The PDFs are written here, byte by byte, with correct xref offsets (and, for the encrypted
 * ones, the standard security handler's RC4/MD5 revision 2), so the test needs no tool. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <poppler.h>

#include "common/buf.h"
#include "common/err.h"
#include "ingest/extract.h"

#define MAXB (1u << 20)

/* ---------------------------------------------------------------------------------------------
 * PDF writer
 * ------------------------------------------------------------------------------------------ */

static const unsigned char pdf_pad[32] = {
    0x28, 0xBF, 0x4E, 0x5E, 0x4E, 0x75, 0x8A, 0x41, 0x64, 0x00, 0x4E, 0x56, 0xFF, 0xFA, 0x01, 0x08,
    0x2E, 0x2E, 0x00, 0xB6, 0xD0, 0x68, 0x3E, 0x80, 0x2F, 0x0C, 0xA9, 0xFE, 0x64, 0x53, 0x69, 0x7A,
};

static void rc4(const unsigned char *key, size_t klen, unsigned char *data, size_t n)
{
    unsigned char s[256];
    for (int i = 0; i < 256; i++)
        s[i] = (unsigned char)i;
    for (int i = 0, j = 0; i < 256; i++) {
        j = (j + s[i] + key[(size_t)i % klen]) & 0xFF;
        unsigned char t = s[i];
        s[i] = s[j];
        s[j] = t;
    }
    for (size_t k = 0, i = 0, j = 0; k < n; k++) {
        i = (i + 1) & 0xFF;
        j = (j + s[i]) & 0xFF;
        unsigned char t = s[i];
        s[i] = s[j];
        s[j] = t;
        data[k] ^= s[(s[i] + s[j]) & 0xFF];
    }
}

static void md5(const void *data, size_t n, unsigned char out[16])
{
    unsigned int len = 16;
    assert_int_equal(EVP_Digest(data, n, out, &len, EVP_md5(), NULL), 1);
}

static void pad_password(const char *pw, unsigned char out[32])
{
    size_t n = strlen(pw) < 32 ? strlen(pw) : 32;
    memcpy(out, pw, n);
    memcpy(out + n, pdf_pad, 32 - n);
}

static void put_hex(struct hl_buf *b, const unsigned char *p, size_t n)
{
    hl_buf_putc(b, '<');
    for (size_t i = 0; i < n; i++)
        hl_buf_printf(b, "%02X", p[i]);
    hl_buf_putc(b, '>');
}

struct pdf_crypt {
    const char *user, *owner;
    unsigned char key[5];
    unsigned char o[32], u[32];
    unsigned char id[16];
};

/* Standard security handler, revision 2 (algorithms 3.2-3.4 of the PDF 1.7 reference). */
static void pdf_crypt_init(struct pdf_crypt *c)
{
    unsigned char up[32], op[32], h[16], buf[32 + 32 + 4 + 16];
    static const unsigned char perms[4] = {0xFC, 0xFF, 0xFF, 0xFF}; /* P = -4 */
    memset(c->id, 0x42, sizeof(c->id));
    pad_password(c->user, up);
    pad_password(c->owner, op);
    md5(op, 32, h);
    memcpy(c->o, up, 32);
    rc4(h, 5, c->o, 32);
    memcpy(buf, up, 32);
    memcpy(buf + 32, c->o, 32);
    memcpy(buf + 64, perms, 4);
    memcpy(buf + 68, c->id, 16);
    md5(buf, sizeof(buf), h);
    memcpy(c->key, h, 5);
    memcpy(c->u, pdf_pad, 32);
    rc4(c->key, 5, c->u, 32);
}

/* Algorithm 3.1: the key of one object's strings and streams. */
static void pdf_crypt_object(const struct pdf_crypt *c, int num, unsigned char *data, size_t n)
{
    unsigned char buf[10], h[16];
    memcpy(buf, c->key, 5);
    buf[5] = (unsigned char)num;
    buf[6] = (unsigned char)(num >> 8);
    buf[7] = (unsigned char)(num >> 16);
    buf[8] = 0;
    buf[9] = 0;
    md5(buf, sizeof(buf), h);
    rc4(h, 10, data, n);
}

/* Writes a PDF with one page per entry of pages (each a line of Helvetica text; "" gives a page
 * without text), encrypted when crypt is given. */
static void make_pdf(struct hl_buf *b, const char *const *pages, int np, struct pdf_crypt *crypt)
{
    size_t off[64];
    int nobj = 3 + 2 * np + (crypt ? 1 : 0);
    assert_true(nobj < 64);
    hl_buf_init(b, MAXB);
    hl_buf_puts(b, "%PDF-1.4\n%\xE2\xE3\xCF\xD3\n");
    off[1] = b->len;
    hl_buf_puts(b, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
    off[2] = b->len;
    hl_buf_puts(b, "2 0 obj\n<< /Type /Pages /Kids [");
    for (int i = 0; i < np; i++)
        hl_buf_printf(b, " %d 0 R", 4 + 2 * i);
    hl_buf_printf(b, " ] /Count %d >>\nendobj\n", np);
    off[3] = b->len;
    hl_buf_puts(b, "3 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica "
                   "/Encoding /WinAnsiEncoding >>\nendobj\n");
    for (int i = 0; i < np; i++) {
        int page = 4 + 2 * i, content = page + 1;
        off[page] = b->len;
        hl_buf_printf(b,
                      "%d 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                      "/Resources << /Font << /F1 3 0 R >> >> /Contents %d 0 R >>\nendobj\n",
                      page, content);
        char stream[512];
        int n = pages[i][0] ? snprintf(stream, sizeof(stream),
                                       "BT /F1 18 Tf 72 700 Td (%s) Tj ET\n", pages[i])
                            : snprintf(stream, sizeof(stream), "0 0 m 100 100 l S\n");
        assert_true(n > 0 && (size_t)n < sizeof(stream));
        if (crypt)
            pdf_crypt_object(crypt, content, (unsigned char *)stream, (size_t)n);
        off[content] = b->len;
        hl_buf_printf(b, "%d 0 obj\n<< /Length %d >>\nstream\n", content, n);
        hl_buf_append(b, stream, (size_t)n);
        hl_buf_puts(b, "\nendstream\nendobj\n");
    }
    if (crypt) {
        off[nobj] = b->len;
        hl_buf_printf(b, "%d 0 obj\n<< /Filter /Standard /V 1 /R 2 /O ", nobj);
        put_hex(b, crypt->o, 32);
        hl_buf_puts(b, " /U ");
        put_hex(b, crypt->u, 32);
        hl_buf_puts(b, " /P -4 >>\nendobj\n");
    }
    size_t xref = b->len;
    hl_buf_printf(b, "xref\n0 %d\n0000000000 65535 f \n", nobj + 1);
    for (int i = 1; i <= nobj; i++)
        hl_buf_printf(b, "%010zu 00000 n \n", off[i]);
    hl_buf_printf(b, "trailer\n<< /Size %d /Root 1 0 R", nobj + 1);
    if (crypt) {
        hl_buf_printf(b, " /Encrypt %d 0 R /ID [", nobj);
        put_hex(b, crypt->id, 16);
        put_hex(b, crypt->id, 16);
        hl_buf_puts(b, "]");
    }
    hl_buf_printf(b, " >>\nstartxref\n%zu\n%%%%EOF\n", xref);
}

static const char *const three_pages[] = {
    "First page alpha beta",
    "Second page gamma",
    "Third page delta epsilon",
};

static void pdf_three(struct hl_buf *b)
{
    make_pdf(b, three_pages, 3, NULL);
}

static void pdf_truncated(struct hl_buf *b)
{
    make_pdf(b, three_pages, 3, NULL);
    b->len /= 2;
}

/* Valid header and trailer, garbage between: nothing for poppler to rebuild. */
static void pdf_garbage(struct hl_buf *b)
{
    hl_buf_init(b, MAXB);
    hl_buf_puts(b, "%PDF-1.7\n");
    for (unsigned i = 0; i < 3000; i++)
        hl_buf_putc(b, (char)(((i * 7919u) >> 3) ^ (i * 31u)));
    hl_buf_puts(b, "\nstartxref\n999999\n%%EOF\n");
}

/* Garbage right after the header and no end: an interrupted or mangled download. */
static void pdf_garbage_short(struct hl_buf *b)
{
    hl_buf_init(b, MAXB);
    hl_buf_puts(b, "%PDF-\x01\xFF\xFE garbage \x80\x81");
}

/* A valid PDF whose xref offsets all point at the wrong bytes: poppler rebuilds the table by
 * scanning, as every reader does, and the text comes out. */
static void pdf_bad_xref(struct hl_buf *b)
{
    make_pdf(b, three_pages, 3, NULL);
    char *x = strstr(b->p, "xref\n0 ");
    assert_non_null(x);
    for (char *p = strstr(x, "65535 f \n") + 9; *p && p < strstr(x, "trailer"); p += 20)
        memcpy(p, "0000000001", 10);
}

static void pdf_no_pages(struct hl_buf *b)
{
    make_pdf(b, NULL, 0, NULL);
}

static void pdf_no_text(struct hl_buf *b)
{
    static const char *const blank[] = {"", ""};
    make_pdf(b, blank, 2, NULL);
}

static void pdf_user_password(struct hl_buf *b)
{
    struct pdf_crypt c = {.user = "secret", .owner = "owner"};
    pdf_crypt_init(&c);
    make_pdf(b, three_pages, 3, &c);
}

/* Only an owner password (printing/copying restrictions): opens without one, as in any viewer. */
static void pdf_owner_password(struct hl_buf *b)
{
    struct pdf_crypt c = {.user = "", .owner = "owner"};
    pdf_crypt_init(&c);
    make_pdf(b, three_pages, 2, &c);
}

/* 129 nested arrays: one more than the JSON reader takes. */
static void deep_json(struct hl_buf *b)
{
    hl_buf_init(b, MAXB);
    for (int i = 0; i < 129; i++)
        hl_buf_putc(b, '[');
    for (int i = 0; i < 129; i++)
        hl_buf_putc(b, ']');
}

/* Half a million numbers: read without a document tree. */
static void huge_json(struct hl_buf *b)
{
    hl_buf_init(b, 2 * MAXB);
    hl_buf_putc(b, '[');
    for (int i = 0; i < 500000; i++)
        hl_buf_puts(b, i ? ",7" : "7");
    hl_buf_putc(b, ']');
}

static void big_text(struct hl_buf *b)
{
    hl_buf_init(b, MAXB);
    for (int i = 0; i < 5000; i++)
        hl_buf_printf(b, "word%d ", i);
}

static void utf16le(struct hl_buf *b)
{
    /* "Hi é 😀\r\n" */
    static const unsigned char d[] = {0xFF, 0xFE, 'H',  0,    'i',  0,    ' ',  0, 0xE9, 0,
                                      ' ',  0,    0x3D, 0xD8, 0x00, 0xDE, '\r', 0, '\n', 0};
    hl_buf_init(b, MAXB);
    hl_buf_append(b, d, sizeof(d));
}

static void utf16be_lone_surrogate(struct hl_buf *b)
{
    static const unsigned char d[] = {0xFE, 0xFF, 0, 'o', 0, 'k', 0xD8, 0x3D, 0, 'x'};
    hl_buf_init(b, MAXB);
    hl_buf_append(b, d, sizeof(d));
}

/* ---------------------------------------------------------------------------------------------
 * The table
 * ------------------------------------------------------------------------------------------ */

struct ecase {
    const char *file;     /* file name on disk and the file_name hint */
    const char *declared; /* declared Content-Type */
    const char *data;     /* contents (strlen), unless make or len */
    size_t len;
    void (*make)(struct hl_buf *);
    int rc;
    enum hl_extract_kind kind;
    size_t pages;
    size_t words;
    const char *text;     /* exact text, or NULL */
    const char *has[6];   /* substrings of the text */
    const char *lacks[4]; /* not in the text */
    const char *why;      /* substring of the reason on failure */
    const char *encoding; /* on success, when not NULL */
    size_t max_input;
    size_t max_text;
};

#define HTML_DOC                                                                                   \
    "<!DOCTYPE html>\n<html><head><title>T&amp;C</title>\n"                                        \
    "<style>body { color: red; } p::after { content: 'styled' }</style>\n"                         \
    "<script>var x = \"<p>scripted</p>\"; if (a < b && c > d) {}</script></head>\n"                \
    "<body><h1>Caf&eacute; &#233; &#xE9; &lt;tag&gt;</h1><p>First&nbsp;para   with\n"              \
    "  spaces.</p><!-- hidden <p>comment</p> --><div>Line<br>break</div>\n"                        \
    "<ul><li>one</li><li>two</li></ul><table><tr><td>c1</td><td>c2</td></tr></table>\n"            \
    "<p title=\"a > b\">Quote &quot;x&quot; &apos;y&apos; &euro;5 &#128; &unknown; AT&T</p>\n"     \
    "<pre>  keep\n    this</pre><SCRIPT type=x>hidden()</SCRIPT >end</body></html>\n"

#define CSV_DOC                                                                                    \
    "name,quote,notes\r\n"                                                                         \
    "\"Smith, John\",\"He said \"\"hi\"\"\",\"line one\r\nline two\"\r\n"                          \
    "plain,,  spaced  \r\n"                                                                        \
    ",,\r\n"                                                                                       \
    "caf\xC3\xA9,\"a,b\",last"

static const struct ecase cases[] = {
    /* text */
    {.file = "plain.txt",
     .declared = "text/plain",
     .data = "Hello, world.\r\nSecond line\there\rthird\n",
     .kind = HL_EXTRACT_TEXT,
     .words = 6,
     .text = "Hello, world.\nSecond line\there\nthird\n",
     .encoding = "UTF-8"},
    {.file = "bom.txt",
     .data = "\xEF\xBB\xBF"
             "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC",
     .kind = HL_EXTRACT_TEXT,
     .words = 3,
     .text = "caf\xC3\xA9 na\xC3\xAFve \xE6\x97\xA5\xE6\x9C\xAC",
     .encoding = "UTF-8"},
    {.file = "controls.txt",
     .data = "a\x01"
             "b\x7F"
             "c\fd\x1B[1m e\xC2\x85"
             "f and enough ordinary words to keep them very rare",
     .kind = HL_EXTRACT_TEXT,
     .words = 12,
     .text = "abc\nd[1m ef and enough ordinary words to keep them very rare"},
    {.file = "noext",
     .data = "just words here",
     .kind = HL_EXTRACT_TEXT,
     .words = 3,
     .text = "just words here"},
    {.file = "big.txt",
     .make = big_text,
     .kind = HL_EXTRACT_TEXT,
     .words = 5000,
     .has = {"word0 word1 ", "word4999 "}},
    /* Markdown: by extension, by type, by content; HTML-looking Markdown stays Markdown */
    {.file = "readme.md",
     .data = "# Title\n\nSome *bold* text.\n",
     .kind = HL_EXTRACT_MARKDOWN,
     .words = 5,
     .text = "# Title\n\nSome *bold* text.\n"},
    {.file = "upload",
     .declared = "text/markdown; charset=utf-8",
     .data = "plain words",
     .kind = HL_EXTRACT_MARKDOWN,
     .words = 2},
    {.file = "notes",
     .declared = "application/octet-stream",
     .data = "intro\n## Usage\nrun it\n",
     .kind = HL_EXTRACT_MARKDOWN,
     .words = 5},
    {.file = "links",
     .data = "[the docs](https://example.com) say so",
     .kind = HL_EXTRACT_MARKDOWN,
     .words = 4},
    {.file = "inline.md",
     .data = "<p>kept as <b>is</b></p>",
     .kind = HL_EXTRACT_MARKDOWN,
     .words = 3,
     .text = "<p>kept as <b>is</b></p>"},
    /* CSV */
    {.file = "people.csv",
     .data = CSV_DOC,
     .kind = HL_EXTRACT_CSV,
     .words = 17,
     .text = "name quote notes\nSmith, John He said \"hi\" line one line two\nplain spaced\n"
             "caf\xC3\xA9 a,b last"},
    {.file = "semi",
     .declared = "text/csv",
     .data = "a;b;\"c;d\"\n1;2;3\n",
     .kind = HL_EXTRACT_CSV,
     .words = 6,
     .text = "a b c;d\n1 2 3\n"},
    {.file = "data.tsv",
     .data = "x\ty, z\n1\t2\n",
     .kind = HL_EXTRACT_CSV,
     .words = 5,
     .text = "x y, z\n1 2\n"},
    {.file = "open.csv",
     .data = "a,\"never closed\nb",
     .kind = HL_EXTRACT_CSV,
     .words = 4,
     .text = "a never closed b"},
    {.file = "odd.csv",
     .data = "say \"x\" now,\"q\"tail\n",
     .kind = HL_EXTRACT_CSV,
     .words = 4,
     .text = "say \"x\" now qtail\n"},
    /* JSON */
    {.file = "doc.json",
     .data = "{\"title\":\"Guide\",\"tags\":[\"x\",\"y\"],\"n\":3,\"r\":1.5,\"ok\":true,"
             "\"nothing\":null,\"nested\":{\"k\":\"v\\u00e9\\n2\"},\"empty\":[],\"blank\":\"\"}",
     .kind = HL_EXTRACT_JSON,
     .words = 15,
     .text = "title: Guide\ntags:\nx\ny\nn: 3\nr: 1.5\nok: true\nnested:\nk: v\xC3\xA9\n2\n"},
    {.file = "list.txt",
     .declared = "text/plain",
     .data = "  [{\"a\": \"b\"}, \"c\"]\n",
     .kind = HL_EXTRACT_JSON,
     .words = 3,
     .text = "a: b\nc\n"},
    {.file = "scalar.json",
     .data = "\"just a string\"",
     .kind = HL_EXTRACT_JSON,
     .words = 3,
     .text = "just a string\n"},
    {.file = "broken.json",
     .data = "{\"a\": [1, 2,}",
     .rc = HL_EPARSE,
     .why = "invalid JSON at line 1, column 13: unexpected character"},
    {.file = "x",
     .declared = "application/ld+json",
     .data = "{oops",
     .rc = HL_EPARSE,
     .why = "invalid JSON"},
    {.file = "bracket.txt", .data = "[not json] at all", .kind = HL_EXTRACT_TEXT, .words = 4},
    {.file = "empty.json",
     .data = "{\"a\": null, \"b\": []}",
     .rc = HL_EREFUSED,
     .why = "the file contains no text"},
    {.file = "numbers.json",
     .data = "{\"a\": 0.1, \"b\": -2E+10, \"c\": [0, 1e5]}",
     .kind = HL_EXTRACT_JSON,
     .words = 7,
     .text = "a: 0.1\nb: -2E+10\nc:\n0\n1e5\n"},
    {.file = "escapes.json",
     .data = "[\"\\ud83d\\ude00 \\ud800x\", \"a\\r\\nb\\tc\\/\\\"\\\\\", \"\\u0000\\u0007\"]",
     .kind = HL_EXTRACT_JSON,
     .words = 5,
     .text = "\xF0\x9F\x98\x80 \xEF\xBF\xBDx\na\nb\tc/\"\\\n"},
    {.file = "empties.json",
     .data = "{\"a\": {\"b\": [], \"c\": {\"d\": null}}, \"e\": \"x\", \"f\": [[], {}, \"\"]}",
     .kind = HL_EXTRACT_JSON,
     .words = 2,
     .text = "e: x\n"},
    {.file = "tail.json",
     .data = "{} x",
     .rc = HL_EPARSE,
     .why = "invalid JSON at line 1, column 4: unexpected data after the JSON value"},
    {.file = "tru.json",
     .data = "{\n  \"\xC3\xA9\": tru\n}",
     .rc = HL_EPARSE,
     .why = "invalid JSON at line 2, column 8: unexpected character"},
    {.file = "raw.json",
     .data = "[\"two\nlines\"]",
     .rc = HL_EPARSE,
     .why = "invalid JSON at line 1, column 6: control character in a string"},
    {.file = "deep.json", .make = deep_json, .rc = HL_EPARSE, .why = "nested too deeply"},
    {.file = "deep.txt", .make = deep_json, .kind = HL_EXTRACT_TEXT, .words = 1},
    {.file = "huge.json", .make = huge_json, .kind = HL_EXTRACT_JSON, .words = 500000},
    /* HTML */
    {.file = "page.html",
     .data = HTML_DOC,
     .kind = HL_EXTRACT_HTML,
     .words = 25,
     .text =
         "T&C\n\nCaf\xC3\xA9 \xC3\xA9 \xC3\xA9 <tag>\n\nFirst para with spaces.\n\nLine\nbreak\n\n"
         "one\ntwo\n\nc1 c2\n\nQuote \"x\" 'y' \xE2\x82\xAC"
         "5 \xE2\x82\xAC &unknown; AT&T\n\n"
         "  keep\n    this\n\nend",
     .lacks = {"styled", "scripted", "hidden", "comment"}},
    {.file = "sniffed.txt",
     .declared = "application/octet-stream",
     .data = "  <html><body>x &lt; y</body></html>",
     .kind = HL_EXTRACT_HTML,
     .words = 3,
     .text = "x < y"},
    {.file = "frag",
     .data = "<p>one</p><p>two",
     .kind = HL_EXTRACT_HTML,
     .words = 2,
     .text = "one\n\ntwo"},
    {.file = "unclosed.html",
     .data = "<p>a</p><script>never closed <p>b</p>",
     .kind = HL_EXTRACT_HTML,
     .words = 1,
     .text = "a"},
    {.file = "refs.htm",
     .data = "&#0;&#x110000;&#xD800;&#65&#x42;&#9731;&amp&AMP;&",
     .kind = HL_EXTRACT_HTML,
     .words = 1,
     .text = "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD"
             "AB\xE2\x98\x83&amp&AMP;&"},
    {.file = "ents.html",
     .data = "&AElig;&zwnj;&zwj;&hellip;&euro;&yuml;&Yuml;&thetasym;&frac34;&sup;&sup2;&supe;&lang;"
             "&empty;&not;&notin;&hArr;&harr;",
     .kind = HL_EXTRACT_HTML,
     .words = 1,
     .text = "\xC3\x86\xE2\x80\x8C\xE2\x80\x8D\xE2\x80\xA6\xE2\x82\xAC\xC3\xBF\xC5\xB8\xCF\x91"
             "\xC2\xBE\xE2\x8A\x83\xC2\xB2\xE2\x8A\x87\xE2\x9F\xA8\xE2\x88\x85\xC2\xAC\xE2\x88\x89"
             "\xE2\x87\x94\xE2\x86\x94"},
    {.file = "scripts.html",
     .data = "<script>only()</script><style>x{}</style>",
     .rc = HL_EREFUSED,
     .why = "the file contains no text"},
    /* PDF */
    {.file = "three.pdf",
     .declared = "application/pdf",
     .make = pdf_three,
     .kind = HL_EXTRACT_PDF,
     .pages = 3,
     .words = 11,
     .has = {"First page alpha beta", "Second page gamma", "Third page delta epsilon"},
     .encoding = "binary"},
    {.file = "named.bin", .make = pdf_three, .kind = HL_EXTRACT_PDF, .pages = 3, .words = 11},
    {.file = "bad-xref.pdf",
     .make = pdf_bad_xref,
     .kind = HL_EXTRACT_PDF,
     .pages = 3,
     .words = 11,
     .has = {"delta epsilon"}},
    {.file = "owner-only.pdf",
     .make = pdf_owner_password,
     .kind = HL_EXTRACT_PDF,
     .pages = 2,
     .words = 7,
     .has = {"First page alpha beta", "Second page gamma"}},
    {.file = "truncated.pdf",
     .make = pdf_truncated,
     .rc = HL_EPARSE,
     .why = "the PDF is truncated: it does not end with %%EOF; upload the complete file"},
    {.file = "corrupt.pdf",
     .make = pdf_garbage,
     .rc = HL_EPARSE,
     .why = "the PDF is damaged or truncated: "},
    {.file = "corrupt2.pdf",
     .make = pdf_garbage_short,
     .rc = HL_EPARSE,
     .why = "the PDF is truncated"},
    {.file = "nopages.pdf", .make = pdf_no_pages, .rc = HL_EPARSE, .why = "the PDF is damaged"},
    {.file = "scan.pdf",
     .make = pdf_no_text,
     .rc = HL_EREFUSED,
     .why = "the PDF has no extractable text"},
    {.file = "locked.pdf",
     .make = pdf_user_password,
     .rc = HL_EREFUSED,
     .why = "the PDF is password-protected: remove the password and upload it again"},
    {.file = "big.pdf",
     .make = pdf_three,
     .rc = HL_ETOOBIG,
     .why = "the extracted text is larger than the limit of 40 bytes",
     .max_text = 40},
    /* empty and binary */
    {.file = "empty.txt",
     .declared = "text/plain",
     .data = "",
     .rc = HL_EREFUSED,
     .why = "the file is empty"},
    {.file = "blank.txt",
     .data = " \r\n\t\n  ",
     .rc = HL_EREFUSED,
     .why = "the file contains no text"},
    {.file = "junk.bin",
     .data = "\x13\x37\x00\xC0\xDE\x01\x02\x03 text?",
     .len = 14,
     .rc = HL_EREFUSED,
     .why = "binary data: not a supported document type (text, Markdown, CSV, JSON, HTML, PDF)"},
    {.file = "ctl.txt",
     .data = "\x01\x02\x03\x04\x05\x06\x07\x08 mostly control",
     .rc = HL_EREFUSED,
     .why = "binary data"},
    {.file = "report.docx",
     .data = "PK\x03\x04\x14\x00\x06\x00",
     .len = 8,
     .rc = HL_EREFUSED,
     .why = "a ZIP archive (Word .docx"},
    {.file = "photo.pdf",
     .declared = "application/pdf",
     .data = "\x89PNG\r\n\x1A\n\x00\x00\x00\rIHDR",
     .len = 16,
     .rc = HL_EREFUSED,
     .why = "not a PDF: the file is named or declared as one but does not start with %PDF- "
            "(it is a PNG image)"},
    {.file = "words.txt", .data = "MZ is a word, ID3 too", .kind = HL_EXTRACT_TEXT, .words = 6},
    /* encodings */
    {.file = "mixed.txt",
     .data = "caf\xC3\xA9 ok \xFF bad",
     .rc = HL_EPARSE,
     .why = "invalid UTF-8 at byte 9: save the file as UTF-8 and upload it again"},
    {.file = "cut.txt",
     .data = "\xE2\x82\xAC 5 \xE2\x82",
     .rc = HL_EPARSE,
     .why = "invalid UTF-8 at byte 6"},
    {.file = "strict.txt",
     .declared = "text/plain; charset=UTF-8",
     .data = "caf\xE9",
     .rc = HL_EPARSE,
     .why = "invalid UTF-8 at byte 3"},
    {.file = "latin1.txt",
     .data = "Caf\xE9 na\xEFve \x80"
             "5 \x93q\x94\r\n",
     .kind = HL_EXTRACT_TEXT,
     .words = 4,
     .text = "Caf\xC3\xA9 na\xC3\xAFve \xE2\x82\xAC"
             "5 \xE2\x80\x9Cq\xE2\x80\x9D\n",
     .encoding = "windows-1252"},
    {.file = "declared",
     .declared = "text/plain; charset=\"ISO-8859-1\"",
     .data = "\xC3\xA9t\xC3\xA9",
     .kind = HL_EXTRACT_TEXT,
     .words = 1,
     .text = "\xC3\x83\xC2\xA9t\xC3\x83\xC2\xA9",
     .encoding = "windows-1252"},
    {.file = "latin1.html",
     .data = "<p>Gr\xFC\xDF"
             "e &amp; more</p>",
     .kind = HL_EXTRACT_HTML,
     .words = 3,
     .text = "Gr\xC3\xBC\xC3\x9F"
             "e & more",
     .encoding = "windows-1252"},
    {.file = "undef.txt",
     .data = "abc\x81"
             "def",
     .rc = HL_EPARSE,
     .why = "invalid UTF-8 at byte 3, and not Windows-1252/Latin-1 text either (byte 0x81 at 3)"},
    {.file = "utf16.txt",
     .make = utf16le,
     .kind = HL_EXTRACT_TEXT,
     .words = 3,
     .text = "Hi \xC3\xA9 \xF0\x9F\x98\x80\n",
     .encoding = "UTF-16LE"},
    {.file = "utf16bad.txt",
     .make = utf16be_lone_surrogate,
     .rc = HL_EPARSE,
     .why = "invalid UTF-16 at byte 6"},
    /* limits */
    {.file = "eleven.txt",
     .data = "eleven byte",
     .rc = HL_ETOOBIG,
     .why = "the file is too large: 11 bytes, the limit is 10 bytes",
     .max_input = 10},
    {.file = "ten.txt",
     .data = "ten bytes!",
     .kind = HL_EXTRACT_TEXT,
     .words = 2,
     .text = "ten bytes!",
     .max_input = 10},
    {.file = "grows.txt",
     .data = "\xE9\xE9\xE9\xE9",
     .rc = HL_ETOOBIG,
     .why = "the extracted text is larger than the limit of 6 bytes",
     .max_text = 6},
};

/* ---------------------------------------------------------------------------------------------
 * Running it
 * ------------------------------------------------------------------------------------------ */

struct fixture {
    char dir[64];
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    if (!f)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/hl-extract-XXXXXX");
    if (!mkdtemp(f->dir)) {
        free(f);
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    rmdir(f->dir);
    free(f);
    return 0;
}

static void write_file(const char *path, const void *data, size_t n)
{
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, n, fp), n);
    assert_int_equal(fclose(fp), 0);
}

static void run_case(const char *dir, const struct ecase *c)
{
    struct hl_buf made;
    const char *data = c->data;
    size_t n = c->len ? c->len : data ? strlen(data) : 0;
    hl_buf_init(&made, MAXB);
    if (c->make) {
        c->make(&made);
        data = made.p;
        n = made.len;
    }
    char path[256];
    snprintf(path, sizeof(path), "%s/%s", dir, c->file);
    write_file(path, data, n);

    struct hl_extract x = {.max_input = c->max_input, .max_text = c->max_text};
    char why[512] = "untouched";
    int rc = hl_extract_file(path, c->declared, c->file, &x, why, sizeof(why));
    if (rc != c->rc || x.kind != c->kind)
        print_error("%s: rc %d kind %s, why \"%s\"\n", c->file, rc, hl_extract_kind_name(x.kind),
                    why);
    assert_int_equal(rc, c->rc);
    assert_int_equal(x.kind, c->kind);
    if (rc == HL_OK) {
        assert_string_equal(why, "");
        assert_non_null(x.text);
        assert_int_equal(strlen(x.text), x.len);
        if (x.word_count != c->words || x.page_count != c->pages ||
            (c->text && strcmp(x.text, c->text) != 0))
            print_error("%s: %zu words, %zu pages: \"%s\"\n", c->file, x.word_count, x.page_count,
                        x.text);
        if (c->text)
            assert_string_equal(x.text, c->text);
        for (int i = 0; i < 6 && c->has[i]; i++) {
            if (!strstr(x.text, c->has[i]))
                print_error("%s: \"%s\" not in \"%s\"\n", c->file, c->has[i], x.text);
            assert_non_null(strstr(x.text, c->has[i]));
        }
        for (int i = 0; i < 4 && c->lacks[i]; i++)
            assert_null(strstr(x.text, c->lacks[i]));
        assert_int_equal(x.page_count, c->pages);
        assert_int_equal(x.word_count, c->words);
        assert_int_equal(x.word_count, hl_extract_count_words(x.text, x.len));
        if (c->encoding)
            assert_string_equal(x.encoding, c->encoding);
        /* the same bytes from memory give the same result */
        struct hl_extract y = {.max_input = c->max_input, .max_text = c->max_text};
        assert_int_equal(hl_extract_buffer(data, n, c->declared, c->file, &y, NULL, 0), HL_OK);
        assert_int_equal(y.len, x.len);
        assert_memory_equal(y.text, x.text, x.len);
        hl_extract_free(&y);
    } else {
        if (!strstr(why, c->why))
            print_error("%s: reason \"%s\" lacks \"%s\"\n", c->file, why, c->why);
        assert_non_null(strstr(why, c->why));
        assert_null(x.text);
        assert_int_equal(x.len, 0);
        assert_int_equal(x.word_count, 0);
    }
    hl_extract_free(&x);
    assert_null(x.text);
    assert_int_equal(x.max_input, c->max_input); /* limits survive */
    hl_buf_free(&made);
    unlink(path);
}

static void test_files(void **state)
{
    struct fixture *f = *state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(f->dir, &cases[i]);
}

/* The encrypted PDF is a real one: poppler opens it with the user password. */
static void test_encrypted_pdf_is_real(void **state)
{
    (void)state;
    struct hl_buf b;
    pdf_user_password(&b);
    GError *err = NULL;
    GBytes *bytes = g_bytes_new_static(b.p, b.len);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, "secret", &err);
    assert_non_null(doc);
    PopplerPage *page = poppler_document_get_page(doc, 2);
    char *text = poppler_page_get_text(page);
    assert_non_null(strstr(text, "Third page delta epsilon"));
    g_free(text);
    g_object_unref(page);
    g_object_unref(doc);
    g_bytes_unref(bytes);
    hl_buf_free(&b);
}

static void test_file_errors(void **state)
{
    struct fixture *f = *state;
    struct hl_extract x = {0};
    char why[256], path[128];
    snprintf(path, sizeof(path), "%s/missing.txt", f->dir);
    assert_int_equal(hl_extract_file(path, NULL, NULL, &x, why, sizeof(why)), HL_EIO);
    assert_non_null(strstr(why, "cannot open the stored file: No such file or directory"));
    assert_int_equal(hl_extract_file(f->dir, NULL, NULL, &x, why, sizeof(why)), HL_EIO);
    assert_string_equal(why, "the stored file is not a regular file");
    assert_int_equal(hl_extract_file(NULL, NULL, NULL, &x, why, sizeof(why)), HL_EINVAL);
    assert_int_equal(hl_extract_file(path, NULL, NULL, NULL, why, sizeof(why)), HL_EINVAL);
    assert_int_equal(hl_extract_buffer(NULL, 3, NULL, NULL, &x, NULL, 0), HL_EINVAL);
    /* a reason is cut to whylen, not overrun */
    char tiny[8];
    assert_int_equal(hl_extract_buffer("", 0, NULL, NULL, &x, tiny, sizeof(tiny)), HL_EREFUSED);
    assert_string_equal(tiny, "the fil");
    /* a file over the default limit is refused before it is read */
    snprintf(path, sizeof(path), "%s/huge.txt", f->dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, (off_t)HL_EXTRACT_MAX_INPUT + 1), 0);
    close(fd);
    assert_int_equal(hl_extract_file(path, NULL, NULL, &x, why, sizeof(why)), HL_ETOOBIG);
    assert_string_equal(why, "the file is too large: 52428801 bytes, the limit is 50 MiB");
    unlink(path);
}

struct wcase {
    const char *text;
    size_t words;
};

static void test_count_words(void **state)
{
    (void)state;
    static const struct wcase wc[] = {
        {"", 0},
        {" \n\t ", 0},
        {"a", 1},
        {"a b", 2},
        {"  a  \n\n b  ", 2},
        {"a\xC2\xA0"
         "b",
         2}, /* no-break space */
        {"a\xE3\x80\x80"
         "b",
         2},                                         /* ideographic space */
        {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E", 1}, /* 日本語 */
        {"don't stop-me now.", 3},
        {"\xFF\xFE x", 2}, /* invalid bytes are not spaces */
    };
    for (size_t i = 0; i < sizeof(wc) / sizeof(wc[0]); i++)
        assert_int_equal(hl_extract_count_words(wc[i].text, strlen(wc[i].text)), wc[i].words);
    assert_string_equal(hl_extract_kind_name(HL_EXTRACT_PDF), "pdf");
    assert_string_equal(hl_extract_kind_name(HL_EXTRACT_NONE), "none");
    assert_string_equal(hl_extract_kind_name((enum hl_extract_kind)99), "none");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_files, setup, teardown),
        cmocka_unit_test_setup_teardown(test_file_errors, setup, teardown),
        cmocka_unit_test(test_encrypted_pdf_is_real),
        cmocka_unit_test(test_count_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
