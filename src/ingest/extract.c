#include "ingest/extract.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <poppler.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/str.h"
#include "common/utf8.h"

#define SUPPORTED "text, Markdown, CSV, JSON, HTML, PDF"

/* ---------------------------------------------------------------------------------------------
 * Small helpers: reasons, sizes, UTF-8
 * ------------------------------------------------------------------------------------------ */

static void say(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void say(char *why, size_t whylen, const char *fmt, ...)
{
    if (!why || whylen == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

void hl_extract_size_text(char *dst, size_t n, size_t bytes)
{
    const char *unit = "MiB";
    double v = (double)bytes / (1024.0 * 1024.0);
    if (bytes < 10 * 1024) {
        snprintf(dst, n, "%zu bytes", bytes);
        return;
    }
    if (bytes < 1024 * 1024) {
        unit = "KiB";
        v = (double)bytes / 1024.0;
    }
    if (v == (double)(size_t)v)
        snprintf(dst, n, "%zu %s", (size_t)v, unit);
    else
        snprintf(dst, n, "%.1f %s", v, unit);
}

static bool is_ascii_space(int c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* True when s[0..n) starts with the ASCII prefix pre, ignoring case. */
static bool starts_icase(const char *s, size_t n, const char *pre)
{
    size_t m = strlen(pre);
    if (n < m)
        return false;
    for (size_t i = 0; i < m; i++) {
        if (lower((unsigned char)s[i]) != lower((unsigned char)pre[i]))
            return false;
    }
    return true;
}

static bool is_alpha(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool is_alnum(int c)
{
    return is_alpha(c) || (c >= '0' && c <= '9');
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

size_t hl_extract_count_words(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    size_t words = 0, i = 0;
    bool in_word = false;
    while (i < len) {
        uint32_t c;
        size_t l = hl_utf8_next(s + i, len - i, &c);
        i += l;
        if (hl_utf8_is_space(c)) {
            in_word = false;
        } else if (!in_word) {
            in_word = true;
            words++;
        }
    }
    return words;
}

bool hl_extract_text_ok(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    for (size_t i = 0; i < len;) {
        uint32_t c = s[i];
        size_t l = c < 0x80 ? 1 : hl_utf8_seq(s + i, len - i, &c);
        if (l == 0 || (c < 0x20 && c != '\t' && c != '\n') || (c >= 0x7F && c <= 0x9F) ||
            c == 0x2028 || c == 0x2029)
            return false;
        i += l;
    }
    return true;
}

/* ---------------------------------------------------------------------------------------------
 * Output: every byte of extracted text goes through put_text or put_cp, which keep the promise
 * of the header: valid UTF-8, "\n" line ends, no control characters but tab and newline.
 * ------------------------------------------------------------------------------------------ */

static int put_cp(struct hl_buf *o, uint32_t c)
{
    char u[4];
    size_t n;
    if (c == '\r' || c == '\f' || c == '\v' || c == 0x2028 || c == 0x2029)
        c = '\n';
    if ((c < 0x20 && c != '\t' && c != '\n') || (c >= 0x7F && c <= 0x9F))
        return HL_OK;
    if (c >= 0xD800 && c <= 0xDFFF)
        c = 0xFFFD;
    if (c < 0x80) {
        u[0] = (char)c;
        n = 1;
    } else if (c < 0x800) {
        u[0] = (char)(0xC0 | (c >> 6));
        u[1] = (char)(0x80 | (c & 0x3F));
        n = 2;
    } else if (c < 0x10000) {
        u[0] = (char)(0xE0 | (c >> 12));
        u[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[2] = (char)(0x80 | (c & 0x3F));
        n = 3;
    } else if (c <= 0x10FFFF) {
        u[0] = (char)(0xF0 | (c >> 18));
        u[1] = (char)(0x80 | ((c >> 12) & 0x3F));
        u[2] = (char)(0x80 | ((c >> 6) & 0x3F));
        u[3] = (char)(0x80 | (c & 0x3F));
        n = 4;
    } else {
        return put_cp(o, 0xFFFD);
    }
    return hl_buf_append(o, u, n);
}

/* Appends s[0..n): valid UTF-8 is copied in runs, "\r\n" and lone "\r" become "\n", control
 * characters are dropped and invalid sequences become U+FFFD. */
static int put_text(struct hl_buf *o, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t run = 0, i = 0;
    int rc = HL_OK;
    while (i < n) {
        unsigned char c = u[i];
        if ((c >= 0x20 && c < 0x7F) || c == '\t' || c == '\n') {
            i++;
            continue;
        }
        uint32_t cp = c;
        size_t l = c < 0x80 ? 1 : hl_utf8_seq(u + i, n - i, &cp);
        if (l > 1 && cp > 0x9F && cp != 0x2028 && cp != 0x2029) {
            i += l;
            continue;
        }
        /* something to rewrite at i: flush the clean run before it */
        if (i > run && (rc = hl_buf_append(o, s + run, i - run)))
            return rc;
        if (c == '\r' && i + 1 < n && u[i + 1] == '\n') {
            i++; /* the "\n" starts the next run */
        } else if (l == 0) {
            rc = put_cp(o, 0xFFFD);
            i++;
        } else {
            rc = put_cp(o, cp);
            i += l;
        }
        if (rc)
            return rc;
        run = i;
    }
    if (i > run)
        rc = hl_buf_append(o, s + run, i - run);
    return rc;
}

static int put_str(struct hl_buf *o, const char *s)
{
    return put_text(o, s, strlen(s));
}

/* Windows-1252 0x80..0x9F (0 = undefined); 0xA0..0xFF are Latin-1 = the same code points. */
static const uint16_t cp1252_c1[32] = {
    0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
    0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
    0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178,
};

/* ---------------------------------------------------------------------------------------------
 * Hints: declared media type, charset and file name
 * ------------------------------------------------------------------------------------------ */

enum hint { H_NONE, H_TEXT, H_MARKDOWN, H_CSV, H_TSV, H_JSON, H_HTML, H_PDF };
enum charset { CS_AUTO, CS_UTF8, CS_1252 };

struct hints {
    enum hint type;
    enum charset cs;
};

struct name_hint {
    const char *name;
    enum hint hint;
};

static const struct name_hint media_types[] = {
    {"text/markdown", H_MARKDOWN},
    {"text/x-markdown", H_MARKDOWN},
    {"text/csv", H_CSV},
    {"text/x-csv", H_CSV},
    {"application/csv", H_CSV},
    {"application/vnd.ms-excel", H_CSV}, /* what Windows browsers send for .csv */
    {"text/tab-separated-values", H_TSV},
    {"application/json", H_JSON},
    {"text/json", H_JSON},
    {"text/html", H_HTML},
    {"application/xhtml+xml", H_HTML},
    {"application/pdf", H_PDF},
    {"application/x-pdf", H_PDF},
};

static const struct name_hint extensions[] = {
    {"txt", H_TEXT},     {"text", H_TEXT},      {"log", H_TEXT},          {"md", H_MARKDOWN},
    {"mkd", H_MARKDOWN}, {"mdown", H_MARKDOWN}, {"markdown", H_MARKDOWN}, {"csv", H_CSV},
    {"tsv", H_TSV},      {"tab", H_TSV},        {"json", H_JSON},         {"html", H_HTML},
    {"htm", H_HTML},     {"xhtml", H_HTML},     {"pdf", H_PDF},
};

static const char *const latin1_names[] = {
    "iso-8859-1", "iso8859-1",    "iso_8859-1", "latin1",   "latin-1",  "l1",
    "cp819",      "windows-1252", "cp1252",     "x-cp1252", "us-ascii", "ascii",
};

static bool eq_icase(const char *s, size_t n, const char *word)
{
    return strlen(word) == n && starts_icase(s, n, word);
}

static void trim(const char **s, size_t *n)
{
    while (*n && is_ascii_space((unsigned char)**s)) {
        (*s)++;
        (*n)--;
    }
    while (*n && is_ascii_space((unsigned char)(*s)[*n - 1]))
        (*n)--;
}

static void parse_hints(const char *declared, const char *file_name, struct hints *h)
{
    enum hint declared_hint = H_NONE, ext_hint = H_NONE;
    bool plain = false;
    h->type = H_NONE;
    h->cs = CS_AUTO;
    if (declared) {
        const char *semi = strchr(declared, ';');
        const char *t = declared;
        size_t tn = semi ? (size_t)(semi - declared) : strlen(declared);
        trim(&t, &tn);
        plain = eq_icase(t, tn, "text/plain");
        for (size_t i = 0; i < sizeof(media_types) / sizeof(media_types[0]); i++) {
            if (eq_icase(t, tn, media_types[i].name))
                declared_hint = media_types[i].hint;
        }
        if (declared_hint == H_NONE && tn > 5 && starts_icase(t + tn - 5, 5, "+json"))
            declared_hint = H_JSON;
        /* parameters: ; charset=latin1 ; charset="utf-8" */
        while (semi) {
            const char *p = semi + 1;
            semi = strchr(p, ';');
            size_t pn = semi ? (size_t)(semi - p) : strlen(p);
            trim(&p, &pn);
            if (!starts_icase(p, pn, "charset="))
                continue;
            p += 8;
            pn -= 8;
            trim(&p, &pn);
            if (pn >= 2 && p[0] == '"' && p[pn - 1] == '"') {
                p++;
                pn -= 2;
            }
            if (eq_icase(p, pn, "utf-8") || eq_icase(p, pn, "utf8"))
                h->cs = CS_UTF8;
            for (size_t i = 0; i < sizeof(latin1_names) / sizeof(latin1_names[0]); i++) {
                if (eq_icase(p, pn, latin1_names[i]))
                    h->cs = CS_1252;
            }
        }
    }
    if (file_name) {
        const char *base = file_name;
        for (const char *p = file_name; *p; p++) {
            if (*p == '/' || *p == '\\')
                base = p + 1;
        }
        const char *dot = strrchr(base, '.');
        if (dot && dot != base) {
            for (size_t i = 0; i < sizeof(extensions) / sizeof(extensions[0]); i++) {
                if (eq_icase(dot + 1, strlen(dot + 1), extensions[i].name))
                    ext_hint = extensions[i].hint;
            }
        }
    }
    if (declared_hint != H_NONE)
        h->type = declared_hint;
    else if (ext_hint != H_NONE)
        h->type = ext_hint;
    else if (plain)
        h->type = H_TEXT;
}

/* ---------------------------------------------------------------------------------------------
 * Binary data and decoding to UTF-8
 * ------------------------------------------------------------------------------------------ */

struct signature {
    const char *magic;
    size_t len;
    const char *what;
};

#define SIG(m, w)                                                                                  \
    {                                                                                              \
        (m), sizeof(m) - 1, (w)                                                                    \
    }

static const struct signature signatures[] = {
    SIG("PK\x03\x04", "a ZIP archive (Word .docx, Excel .xlsx, PowerPoint .pptx, OpenDocument and "
                      "EPUB files are ZIP archives)"),
    SIG("PK\x05\x06", "an empty ZIP archive"),
    SIG("\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
        "a Microsoft Office 97-2003 document (.doc, .xls, .ppt)"),
    SIG("{\\rtf", "an RTF document"),
    SIG("%!PS", "a PostScript document"),
    SIG("\x1F\x8B", "gzip-compressed data"),
    SIG("BZh91AY&SY", "bzip2-compressed data"),
    SIG("\xFD"
        "7zXZ\x00",
        "xz-compressed data"),
    SIG("\x28\xB5\x2F\xFD", "zstd-compressed data"),
    SIG("7z\xBC\xAF\x27\x1C", "a 7-Zip archive"),
    SIG("Rar!\x1A\x07", "a RAR archive"),
    SIG("\x89PNG\r\n\x1A\n", "a PNG image"),
    SIG("\xFF\xD8\xFF", "a JPEG image"),
    SIG("GIF87a", "a GIF image"),
    SIG("GIF89a", "a GIF image"),
    SIG("II*\x00", "a TIFF image"),
    SIG("MM\x00*", "a TIFF image"),
    SIG("RIFF", "a RIFF media file (WebP, WAV, AVI)"),
    SIG("\x7F"
        "ELF",
        "an executable program"),
    SIG("MZ", "a Windows executable"),
    SIG("SQLite format 3\x00", "an SQLite database"),
    SIG("OggS", "an Ogg media file"),
    SIG("ID3", "an MP3 audio file"),
    SIG("\x1A\x45\xDF\xA3", "a Matroska/WebM video"),
};

/* Refuses known binary formats and anything with NUL bytes or many control characters (more than
 * one in 32 bytes, escape aside: text files have next to none; random bytes about one in ten). */
static int refuse_binary(const unsigned char *d, size_t n, const struct hints *h, char *why,
                         size_t whylen)
{
    const char *what = NULL;
    for (size_t i = 0; i < sizeof(signatures) / sizeof(signatures[0]); i++) {
        const struct signature *s = &signatures[i];
        if (n >= s->len && memcmp(d, s->magic, s->len) == 0) {
            /* "MZ", "ID3" and "RIFF" also begin ordinary words; believe them only in binary */
            if (s->len < 4 && s->magic[0] != '\xFF' && s->magic[0] != '\x1F' &&
                !memchr(d, 0, n < 4096 ? n : 4096))
                continue;
            what = s->what;
            break;
        }
    }
    if (!what) {
        size_t ctl = 0;
        for (size_t i = 0; i < n; i++) {
            unsigned char c = d[i];
            if (c == 0) {
                ctl = n; /* one NUL settles it */
                break;
            }
            if ((c < 0x20 && !is_ascii_space(c) && c != 0x1B) || c == 0x7F)
                ctl++;
        }
        if (ctl <= n / 32)
            return HL_OK;
        what = "binary data";
    }
    if (h->type == H_PDF)
        say(why, whylen,
            "not a PDF: the file is named or declared as one but does not start with %%PDF- "
            "(it is %s)",
            what);
    else
        say(why, whylen, "%s: not a supported document type (" SUPPORTED ")", what);
    return HL_EREFUSED;
}

static int decode_utf16(const unsigned char *d, size_t n, bool le, size_t base, struct hl_buf *o,
                        char *why, size_t whylen)
{
    if (n % 2) {
        say(why, whylen, "the UTF-16 text is truncated (an odd number of bytes)");
        return HL_EPARSE;
    }
    for (size_t i = 0; i < n; i += 2) {
        uint32_t u = le ? (uint32_t)(d[i] | d[i + 1] << 8) : (uint32_t)(d[i] << 8 | d[i + 1]);
        if (u >= 0xD800 && u <= 0xDBFF && i + 3 < n) {
            uint32_t lo =
                le ? (uint32_t)(d[i + 2] | d[i + 3] << 8) : (uint32_t)(d[i + 2] << 8 | d[i + 3]);
            if (lo >= 0xDC00 && lo <= 0xDFFF) {
                u = 0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00);
                i += 2;
            }
        }
        if (u >= 0xD800 && u <= 0xDFFF) {
            say(why, whylen, "invalid UTF-16 at byte %zu (an unpaired surrogate)", base + i);
            return HL_EPARSE;
        }
        if (u == '\r' && i + 3 < n &&
            (le ? d[i + 2] == '\n' && d[i + 3] == 0 : d[i + 2] == 0 && d[i + 3] == '\n'))
            continue; /* "\r\n": the "\n" follows */
        int rc = put_cp(o, u);
        if (rc)
            return rc;
    }
    return HL_OK;
}

static int decode_1252(const unsigned char *d, size_t n, struct hl_buf *o)
{
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        if (d[i] < 0x80 && d[i] != '\r' && (d[i] >= 0x20 || d[i] == '\t' || d[i] == '\n'))
            continue;
        int rc = put_text(o, (const char *)d + run, i - run);
        if (rc)
            return rc;
        uint32_t c = d[i];
        if (c >= 0x80 && c <= 0x9F)
            c = cp1252_c1[c - 0x80] ? cp1252_c1[c - 0x80] : 0xFFFD;
        if (c == '\r' && i + 1 < n && d[i + 1] == '\n')
            c = 0; /* the "\n" follows */
        if ((rc = put_cp(o, c)))
            return rc;
        run = i + 1;
    }
    return put_text(o, (const char *)d + run, n - run);
}

/* Decodes the (non-binary) file to clean UTF-8 in o, as the header describes. */
static int decode_text(const unsigned char *d, size_t n, const struct hints *h, struct hl_buf *o,
                       const char **encoding, char *why, size_t whylen)
{
    if (n >= 2 && (d[0] == 0xFF || d[0] == 0xFE) && d[1] == (d[0] ^ 0x01)) {
        bool le = d[0] == 0xFF;
        *encoding = le ? "UTF-16LE" : "UTF-16BE";
        return decode_utf16(d + 2, n - 2, le, 2, o, why, whylen);
    }
    size_t start = 0;
    if (n >= 3 && d[0] == 0xEF && d[1] == 0xBB && d[2] == 0xBF)
        start = 3;
    if (h->cs == CS_1252 && start == 0) {
        *encoding = "windows-1252";
        return decode_1252(d, n, o);
    }
    size_t bad = SIZE_MAX, undefined = SIZE_MAX;
    bool multibyte = false;
    for (size_t i = start; i < n;) {
        if (d[i] < 0x80) {
            i++;
            continue;
        }
        uint32_t cp;
        size_t l = hl_utf8_seq(d + i, n - i, &cp);
        if (l) {
            multibyte = true;
            i += l;
            continue;
        }
        if (bad == SIZE_MAX)
            bad = i;
        if (undefined == SIZE_MAX && d[i] <= 0x9F && !cp1252_c1[d[i] - 0x80])
            undefined = i;
        i++;
    }
    if (bad == SIZE_MAX) {
        *encoding = "UTF-8";
        return put_text(o, (const char *)d + start, n - start);
    }
    if (!multibyte && start == 0 && h->cs != CS_UTF8 && undefined == SIZE_MAX) {
        *encoding = "windows-1252";
        return decode_1252(d, n, o);
    }
    if (multibyte || start || h->cs == CS_UTF8)
        say(why, whylen, "invalid UTF-8 at byte %zu: save the file as UTF-8 and upload it again",
            bad);
    else
        say(why, whylen,
            "invalid UTF-8 at byte %zu, and not Windows-1252/Latin-1 text either (byte 0x%02X at "
            "%zu): save the file as UTF-8 and upload it again",
            bad, d[undefined], undefined);
    return HL_EPARSE;
}

/* ---------------------------------------------------------------------------------------------
 * Kind detection on decoded text
 * ------------------------------------------------------------------------------------------ */

/* WHATWG MIME sniffing's HTML patterns: the tag, then a space or '>'. */
static const char *const html_tags[] = {
    "<!doctype html", "<html", "<head",  "<script", "<iframe", "<h1",   "<div", "<font",
    "<table",         "<a",    "<style", "<title",  "<b",      "<body", "<br",  "<p",
    "<!--",
};

/* 2: starts like an HTML document (<!DOCTYPE html, <html); 1: starts with another HTML tag. */
static int sniff_html(const char *t, size_t n)
{
    for (size_t i = 0; i < sizeof(html_tags) / sizeof(html_tags[0]); i++) {
        size_t m = strlen(html_tags[i]);
        if (!starts_icase(t, n, html_tags[i]))
            continue;
        if (i == 16) /* <!-- */
            return 1;
        if (n > m && (is_ascii_space((unsigned char)t[m]) || t[m] == '>' || (i > 0 && t[m] == '/')))
            return i <= 1 ? 2 : 1;
        if (n == m)
            return i <= 1 ? 2 : 1;
    }
    return 0;
}

/* Markdown without a hint: an ATX heading or a code fence at a line start, or a [link](url) on
 * one line, in the first 64 KiB. One pass: a "](" that finds no ')' before the line ends lets the
 * scan skip to that line end. */
static bool sniff_markdown(const char *t, size_t n)
{
    if (n > 65536)
        n = 65536;
    bool open = false; /* a '[' earlier on this line */
    for (size_t i = 0; i < n; i++) {
        if (i == 0 || t[i - 1] == '\n') {
            size_t h = 0;
            open = false;
            while (i + h < n && t[i + h] == '#' && h < 7)
                h++;
            if (h >= 1 && h <= 6 && i + h < n && t[i + h] == ' ')
                return true;
            if (n - i >= 3 && memcmp(t + i, "```", 3) == 0)
                return true;
        }
        if (t[i] == '[') {
            open = true;
        } else if (open && t[i] == ']' && i + 1 < n && t[i + 1] == '(') {
            size_t j = i + 2;
            while (j < n && t[j] != ')' && t[j] != '\n')
                j++;
            if (j < n && t[j] == ')')
                return true;
            i = j - 1; /* the next round sees the '\n' (or the end) */
        }
    }
    return false;
}

/* ---------------------------------------------------------------------------------------------
 * CSV
 * ------------------------------------------------------------------------------------------ */

/* The delimiter among ',', ';' and tab that occurs most often in the first record. */
static char sniff_delim(const char *t, size_t n)
{
    size_t comma = 0, semi = 0, tab = 0;
    bool quoted = false;
    for (size_t i = 0; i < n; i++) {
        char c = t[i];
        if (c == '"')
            quoted = !quoted;
        else if (quoted)
            continue;
        else if (c == '\n')
            break;
        else if (c == ',')
            comma++;
        else if (c == ';')
            semi++;
        else if (c == '\t')
            tab++;
    }
    if (semi > comma && semi >= tab)
        return ';';
    if (tab > comma && tab > semi)
        return '\t';
    return ',';
}

/* Appends one field: trimmed, line breaks inside it turned to spaces, after a space when the row
 * already has text. */
static int put_field(struct hl_buf *o, struct hl_buf *field, bool *row_has)
{
    const char *s = field->p ? field->p : "";
    size_t n = field->len;
    trim(&s, &n);
    int rc = HL_OK;
    if (n == 0)
        goto out;
    if (*row_has && (rc = hl_buf_putc(o, ' ')))
        goto out;
    *row_has = true;
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = hl_buf_putc(o, s[i] == '\n' || s[i] == '\t' ? ' ' : s[i]);
out:
    hl_buf_reset(field);
    return rc;
}

/* RFC 4180, leniently: a quote inside an unquoted field is kept, text after a closing quote is
 * kept, and a quoted field left open at the end runs to the end. The input is clean UTF-8 and
 * the delimiters are ASCII, so fields are valid UTF-8 too. */
static int extract_csv(const char *t, size_t n, char delim, size_t max, struct hl_buf *o)
{
    struct hl_buf field;
    hl_buf_init(&field, max);
    bool row_has = false, quoted = false, at_start = true;
    int rc = HL_OK;
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        char c = t[i];
        if (quoted) {
            if (c != '"') {
                rc = hl_buf_putc(&field, c);
            } else if (i + 1 < n && t[i + 1] == '"') {
                rc = hl_buf_putc(&field, '"');
                i++;
            } else {
                quoted = false;
            }
        } else if (c == delim) {
            rc = put_field(o, &field, &row_has);
            at_start = true;
        } else if (c == '\n') {
            if ((rc = put_field(o, &field, &row_has)) == HL_OK && row_has)
                rc = hl_buf_putc(o, '\n');
            row_has = false;
            at_start = true;
        } else if (c == '"' && at_start) {
            quoted = true;
            at_start = false;
        } else {
            if (!(at_start && (c == ' ' || c == '\t')))
                at_start = false;
            rc = hl_buf_putc(&field, c);
        }
    }
    if (rc == HL_OK)
        rc = put_field(o, &field, &row_has);
    hl_buf_free(&field);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * JSON: one pass that validates (RFC 8259) and writes the text at once, with no document tree,
 * so memory stays within the output's limit whatever the input holds. A member's key is written
 * before its value is known and taken back (the output truncated to a mark) when the value turns
 * out null, empty or an empty container.
 * ------------------------------------------------------------------------------------------ */

/* Deepest nesting of arrays and objects read; more is refused as invalid JSON. */
#define JSON_MAX_DEPTH 128

struct jp {
    const char *s;
    size_t n, i;
    struct hl_buf *o;
    int depth;
    const char *err; /* static syntax error message, or NULL */
    int rc;          /* output error: HL_ETOOBIG or HL_ENOMEM */
};

static bool jfail(struct jp *p, const char *msg)
{
    if (!p->err && !p->rc)
        p->err = msg;
    return false;
}

static bool jput(struct jp *p, int rc)
{
    if (rc && !p->rc)
        p->rc = rc;
    return rc == HL_OK;
}

static void jtruncate(struct jp *p, size_t mark)
{
    p->o->len = mark;
    if (p->o->p)
        p->o->p[mark] = '\0';
}

static void jws(struct jp *p)
{
    while (p->i < p->n &&
           (p->s[p->i] == ' ' || p->s[p->i] == '\t' || p->s[p->i] == '\n' || p->s[p->i] == '\r'))
        p->i++;
}

static bool jhex4(struct jp *p, uint32_t *v)
{
    *v = 0;
    if (p->n - p->i < 4)
        return jfail(p, "incomplete \\u escape");
    for (int k = 0; k < 4; k++) {
        int d = hexval((unsigned char)p->s[p->i++]);
        if (d < 0)
            return jfail(p, "invalid \\u escape");
        *v = *v << 4 | (uint32_t)d;
    }
    return true;
}

/* A string at p->s[p->i] == '"', written to the output. Lone surrogates become U+FFFD. */
static bool jstring(struct jp *p)
{
    p->i++;
    for (;;) {
        size_t run = p->i;
        while (p->i < p->n && p->s[p->i] != '"' && p->s[p->i] != '\\' &&
               (unsigned char)p->s[p->i] >= 0x20)
            p->i++;
        if (p->i > run && !jput(p, put_text(p->o, p->s + run, p->i - run)))
            return false;
        if (p->i >= p->n)
            return jfail(p, "unterminated string");
        char c = p->s[p->i++];
        if (c == '"')
            return true;
        if (c != '\\') {
            p->i--;
            return jfail(p, "control character in a string");
        }
        if (p->i >= p->n)
            return jfail(p, "unterminated string");
        uint32_t cp;
        switch (p->s[p->i++]) {
        case '"':
            cp = '"';
            break;
        case '\\':
            cp = '\\';
            break;
        case '/':
            cp = '/';
            break;
        case 'b':
            cp = '\b';
            break;
        case 'f':
            cp = '\f';
            break;
        case 'n':
            cp = '\n';
            break;
        case 'r':
            /* "\r\n" is one line break */
            cp = p->n - p->i >= 2 && p->s[p->i] == '\\' && p->s[p->i + 1] == 'n' ? 0 : '\r';
            break;
        case 't':
            cp = '\t';
            break;
        case 'u':
            if (!jhex4(p, &cp))
                return false;
            if (cp >= 0xD800 && cp <= 0xDBFF && p->n - p->i >= 6 && p->s[p->i] == '\\' &&
                p->s[p->i + 1] == 'u') {
                size_t save = p->i;
                uint32_t lo;
                p->i += 2;
                if (!jhex4(p, &lo))
                    return false;
                if (lo >= 0xDC00 && lo <= 0xDFFF)
                    cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
                else
                    p->i = save; /* the next escape stands alone */
            }
            break;
        default:
            p->i--;
            return jfail(p, "invalid escape in a string");
        }
        if (!jput(p, put_cp(p->o, cp)))
            return false;
    }
}

static bool jdigits(struct jp *p)
{
    size_t start = p->i;
    while (p->i < p->n && p->s[p->i] >= '0' && p->s[p->i] <= '9')
        p->i++;
    return p->i > start;
}

/* A number, written as it stands in the file. */
static bool jnumber(struct jp *p)
{
    size_t start = p->i;
    if (p->s[p->i] == '-')
        p->i++;
    if (p->i < p->n && p->s[p->i] == '0')
        p->i++;
    else if (!jdigits(p))
        return jfail(p, "invalid number");
    if (p->i < p->n && p->s[p->i] == '.') {
        p->i++;
        if (!jdigits(p))
            return jfail(p, "invalid number");
    }
    if (p->i < p->n && (p->s[p->i] == 'e' || p->s[p->i] == 'E')) {
        p->i++;
        if (p->i < p->n && (p->s[p->i] == '+' || p->s[p->i] == '-'))
            p->i++;
        if (!jdigits(p))
            return jfail(p, "invalid number");
    }
    return jput(p, hl_buf_append(p->o, p->s + start, p->i - start));
}

static bool jvalue(struct jp *p, size_t key_mark, bool keyed);

/* An object or array at p->s[p->i] ('{' or '['). */
static bool jcontainer(struct jp *p)
{
    bool object = p->s[p->i] == '{';
    char close = object ? '}' : ']';
    if (++p->depth > JSON_MAX_DEPTH)
        return jfail(p, "nested too deeply");
    p->i++;
    jws(p);
    if (p->i < p->n && p->s[p->i] == close) {
        p->i++;
        p->depth--;
        return true;
    }
    for (;;) {
        size_t mark = p->o->len;
        if (object) {
            if (p->i >= p->n || p->s[p->i] != '"')
                return jfail(p, "expected a string key");
            if (!jstring(p))
                return false;
            jws(p);
            if (p->i >= p->n || p->s[p->i] != ':')
                return jfail(p, "expected ':'");
            p->i++;
            jws(p);
        }
        if (!jvalue(p, mark, object))
            return false;
        jws(p);
        if (p->i < p->n && p->s[p->i] == ',') {
            p->i++;
            jws(p);
            continue;
        }
        if (p->i < p->n && p->s[p->i] == close) {
            p->i++;
            p->depth--;
            return true;
        }
        return jfail(p, object ? "expected ',' or '}'" : "expected ',' or ']'");
    }
}

/* A value at p->s[p->i]. keyed: the member's key was written from key_mark on, and goes again
 * when the value brings no text. */
static bool jvalue(struct jp *p, size_t key_mark, bool keyed)
{
    if (p->i >= p->n)
        return jfail(p, "unexpected end of data");
    char c = p->s[p->i];
    size_t after;
    if (c == '{' || c == '[') {
        if (keyed && !jput(p, hl_buf_puts(p->o, ":\n")))
            return false;
        after = p->o->len;
        if (!jcontainer(p))
            return false;
        if (keyed && p->o->len == after)
            jtruncate(p, key_mark);
        return true;
    }
    if (keyed && !jput(p, hl_buf_puts(p->o, ": ")))
        return false;
    after = p->o->len;
    bool ok;
    if (c == '"') {
        ok = jstring(p);
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        ok = jnumber(p);
    } else {
        static const char *const words[] = {"true", "false", "null"};
        ok = false;
        for (int k = 0; k < 3 && !ok; k++) {
            size_t m = strlen(words[k]);
            if (p->n - p->i >= m && memcmp(p->s + p->i, words[k], m) == 0) {
                p->i += m;
                ok = k == 2 || jput(p, hl_buf_append(p->o, words[k], m));
            }
        }
        if (!ok)
            return jfail(p, "unexpected character");
    }
    if (!ok)
        return false;
    if (p->o->len == after) {
        if (keyed)
            jtruncate(p, key_mark);
        return true;
    }
    return jput(p, hl_buf_putc(p->o, '\n'));
}

/* Writes the text of the JSON document t[0..n) to o. Returns 0, HL_EPARSE with the position in
 * why when it is not JSON (o is then reset), or HL_ETOOBIG/HL_ENOMEM. */
static int extract_json(const char *t, size_t n, struct hl_buf *o, char *why, size_t whylen)
{
    struct jp p = {t, n, 0, o, 0, NULL, HL_OK};
    jws(&p);
    if (jvalue(&p, 0, false)) {
        jws(&p);
        if (p.i < n)
            jfail(&p, "unexpected data after the JSON value");
    }
    if (p.rc)
        return p.rc;
    if (!p.err)
        return HL_OK;
    size_t line = 1, col = 1;
    for (size_t k = 0; k < p.i && k < n; k++) {
        if (t[k] == '\n') {
            line++;
            col = 1;
        } else if (((unsigned char)t[k] & 0xC0) != 0x80) {
            col++;
        }
    }
    say(why, whylen, "invalid JSON at line %zu, column %zu: %s", line, col, p.err);
    hl_buf_reset(o);
    return HL_EPARSE;
}

/* ---------------------------------------------------------------------------------------------
 * HTML
 * ------------------------------------------------------------------------------------------ */

struct entity {
    const char *name;
    uint32_t cp;
};

/* HTML 4's 252 entities, &apos; and a few of HTML5's punctuation names, sorted by strcmp for
 * bsearch. */
static const struct entity entities[] = {
    {"AElig", 198},   {"Aacute", 193},   {"Acirc", 194},    {"Agrave", 192},  {"Alpha", 913},
    {"Aring", 197},   {"Atilde", 195},   {"Auml", 196},     {"Beta", 914},    {"Ccedil", 199},
    {"Chi", 935},     {"Dagger", 8225},  {"Delta", 916},    {"ETH", 208},     {"Eacute", 201},
    {"Ecirc", 202},   {"Egrave", 200},   {"Epsilon", 917},  {"Eta", 919},     {"Euml", 203},
    {"Gamma", 915},   {"Iacute", 205},   {"Icirc", 206},    {"Igrave", 204},  {"Iota", 921},
    {"Iuml", 207},    {"Kappa", 922},    {"Lambda", 923},   {"Mu", 924},      {"NewLine", 10},
    {"Ntilde", 209},  {"Nu", 925},       {"OElig", 338},    {"Oacute", 211},  {"Ocirc", 212},
    {"Ograve", 210},  {"Omega", 937},    {"Omicron", 927},  {"Oslash", 216},  {"Otilde", 213},
    {"Ouml", 214},    {"Phi", 934},      {"Pi", 928},       {"Prime", 8243},  {"Psi", 936},
    {"Rho", 929},     {"Scaron", 352},   {"Sigma", 931},    {"THORN", 222},   {"Tab", 9},
    {"Tau", 932},     {"Theta", 920},    {"Uacute", 218},   {"Ucirc", 219},   {"Ugrave", 217},
    {"Upsilon", 933}, {"Uuml", 220},     {"Xi", 926},       {"Yacute", 221},  {"Yuml", 376},
    {"Zeta", 918},    {"aacute", 225},   {"acirc", 226},    {"acute", 180},   {"aelig", 230},
    {"agrave", 224},  {"alefsym", 8501}, {"alpha", 945},    {"amp", 38},      {"and", 8743},
    {"ang", 8736},    {"apos", 39},      {"aring", 229},    {"ast", 42},      {"asymp", 8776},
    {"atilde", 227},  {"auml", 228},     {"bdquo", 8222},   {"beta", 946},    {"brvbar", 166},
    {"bsol", 92},     {"bull", 8226},    {"cap", 8745},     {"ccedil", 231},  {"cedil", 184},
    {"cent", 162},    {"chi", 967},      {"circ", 710},     {"clubs", 9827},  {"colon", 58},
    {"comma", 44},    {"commat", 64},    {"cong", 8773},    {"copy", 169},    {"crarr", 8629},
    {"cup", 8746},    {"curren", 164},   {"dArr", 8659},    {"dagger", 8224}, {"darr", 8595},
    {"dash", 8208},   {"deg", 176},      {"delta", 948},    {"diams", 9830},  {"divide", 247},
    {"dollar", 36},   {"eacute", 233},   {"ecirc", 234},    {"egrave", 232},  {"empty", 8709},
    {"emsp", 8195},   {"ensp", 8194},    {"epsilon", 949},  {"equals", 61},   {"equiv", 8801},
    {"eta", 951},     {"eth", 240},      {"euml", 235},     {"euro", 8364},   {"excl", 33},
    {"exist", 8707},  {"fnof", 402},     {"forall", 8704},  {"frac12", 189},  {"frac14", 188},
    {"frac34", 190},  {"frasl", 8260},   {"gamma", 947},    {"ge", 8805},     {"grave", 96},
    {"gt", 62},       {"hArr", 8660},    {"harr", 8596},    {"hearts", 9829}, {"hellip", 8230},
    {"hyphen", 8208}, {"iacute", 237},   {"icirc", 238},    {"iexcl", 161},   {"igrave", 236},
    {"image", 8465},  {"infin", 8734},   {"int", 8747},     {"iota", 953},    {"iquest", 191},
    {"isin", 8712},   {"iuml", 239},     {"kappa", 954},    {"lArr", 8656},   {"lambda", 955},
    {"lang", 10216},  {"laquo", 171},    {"larr", 8592},    {"lceil", 8968},  {"lcub", 123},
    {"ldquo", 8220},  {"le", 8804},      {"lfloor", 8970},  {"lowast", 8727}, {"lowbar", 95},
    {"loz", 9674},    {"lpar", 40},      {"lrm", 8206},     {"lsaquo", 8249}, {"lsqb", 91},
    {"lsquo", 8216},  {"lt", 60},        {"macr", 175},     {"mdash", 8212},  {"micro", 181},
    {"middot", 183},  {"minus", 8722},   {"mu", 956},       {"nabla", 8711},  {"nbsp", 160},
    {"ndash", 8211},  {"ne", 8800},      {"ni", 8715},      {"not", 172},     {"notin", 8713},
    {"nsub", 8836},   {"ntilde", 241},   {"nu", 957},       {"num", 35},      {"oacute", 243},
    {"ocirc", 244},   {"oelig", 339},    {"ograve", 242},   {"oline", 8254},  {"omega", 969},
    {"omicron", 959}, {"oplus", 8853},   {"or", 8744},      {"ordf", 170},    {"ordm", 186},
    {"oslash", 248},  {"otilde", 245},   {"otimes", 8855},  {"ouml", 246},    {"para", 182},
    {"part", 8706},   {"percnt", 37},    {"period", 46},    {"permil", 8240}, {"perp", 8869},
    {"phi", 966},     {"pi", 960},       {"piv", 982},      {"plus", 43},     {"plusmn", 177},
    {"pound", 163},   {"prime", 8242},   {"prod", 8719},    {"prop", 8733},   {"psi", 968},
    {"quest", 63},    {"quot", 34},      {"rArr", 8658},    {"radic", 8730},  {"rang", 10217},
    {"raquo", 187},   {"rarr", 8594},    {"rceil", 8969},   {"rcub", 125},    {"rdquo", 8221},
    {"real", 8476},   {"reg", 174},      {"rfloor", 8971},  {"rho", 961},     {"rlm", 8207},
    {"rpar", 41},     {"rsaquo", 8250},  {"rsqb", 93},      {"rsquo", 8217},  {"sbquo", 8218},
    {"scaron", 353},  {"sdot", 8901},    {"sect", 167},     {"semi", 59},     {"shy", 173},
    {"sigma", 963},   {"sigmaf", 962},   {"sim", 8764},     {"sol", 47},      {"spades", 9824},
    {"sub", 8834},    {"sube", 8838},    {"sum", 8721},     {"sup", 8835},    {"sup1", 185},
    {"sup2", 178},    {"sup3", 179},     {"supe", 8839},    {"szlig", 223},   {"tau", 964},
    {"there4", 8756}, {"theta", 952},    {"thetasym", 977}, {"thinsp", 8201}, {"thorn", 254},
    {"tilde", 732},   {"times", 215},    {"trade", 8482},   {"uArr", 8657},   {"uacute", 250},
    {"uarr", 8593},   {"ucirc", 251},    {"ugrave", 249},   {"uml", 168},     {"upsih", 978},
    {"upsilon", 965}, {"uuml", 252},     {"verbar", 124},   {"weierp", 8472}, {"xi", 958},
    {"yacute", 253},  {"yen", 165},      {"yuml", 255},     {"zeta", 950},    {"zwj", 8205},
    {"zwnj", 8204},
};

static int entity_cmp(const void *key, const void *elem)
{
    const struct hl_str *k = key;
    const char *name = ((const struct entity *)elem)->name;
    size_t n = strlen(name);
    int c = memcmp(k->p, name, k->len < n ? k->len : n);
    if (c)
        return c;
    return k->len < n ? -1 : k->len > n;
}

/* The code point of the named reference s[0..n) (without & and ;), or 0 when unknown. */
static uint32_t entity_cp(const char *s, size_t n)
{
    struct hl_str key = {s, n};
    const struct entity *e = bsearch(&key, entities, sizeof(entities) / sizeof(entities[0]),
                                     sizeof(entities[0]), entity_cmp);
    return e ? e->cp : 0;
}

/* Decodes the character reference at t[i] == '&'. Returns the bytes it spans and its code point,
 * or 0 when it is not one (the '&' is then literal). Numeric references follow HTML5: the ';' may
 * be missing, 0, surrogates and values past U+10FFFF give U+FFFD, 0x80..0x9F are Windows-1252. */
static size_t char_ref(const char *t, size_t n, size_t i, uint32_t *cp)
{
    size_t j = i + 1;
    if (j < n && t[j] == '#') {
        bool hex = j + 1 < n && (t[j + 1] == 'x' || t[j + 1] == 'X');
        j += hex ? 2 : 1;
        size_t digits = 0;
        uint32_t v = 0;
        for (; j < n; j++, digits++) {
            int d =
                hex ? hexval((unsigned char)t[j]) : (t[j] >= '0' && t[j] <= '9' ? t[j] - '0' : -1);
            if (d < 0)
                break;
            if (v <= 0x10FFFF)
                v = v * (hex ? 16 : 10) + (uint32_t)d;
        }
        if (digits == 0)
            return 0;
        if (j < n && t[j] == ';')
            j++;
        if (v == 0 || v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF))
            v = 0xFFFD;
        else if (v >= 0x80 && v <= 0x9F && cp1252_c1[v - 0x80])
            v = cp1252_c1[v - 0x80];
        *cp = v;
        return j - i;
    }
    while (j < n && j - i <= 32 && is_alnum((unsigned char)t[j]))
        j++;
    if (j == i + 1 || j >= n || t[j] != ';')
        return 0;
    uint32_t v = entity_cp(t + i + 1, j - i - 1);
    if (!v)
        return 0;
    *cp = v;
    return j + 1 - i;
}

/* Writes HTML text with whitespace collapsed as a browser lays it out: runs of spaces become
 * one, block boundaries become line breaks (at most one blank line), inside <pre> nothing
 * changes. */
struct html_out {
    struct hl_buf *o;
    int pre;      /* depth of <pre>, <textarea>, <listing> and <plaintext> */
    bool space;   /* a space is due before the next character */
    int newlines; /* line breaks due before the next character (0..2) */
};

static int html_char(struct html_out *h, uint32_t c)
{
    int rc;
    if (c == 0xA0)
        c = ' ';
    if (!h->pre && (c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f')) {
        h->space = true;
        return HL_OK;
    }
    if (h->o->len > 0) {
        if (h->newlines) {
            for (int i = 0; i < h->newlines; i++) {
                if ((rc = hl_buf_putc(h->o, '\n')))
                    return rc;
            }
        } else if (h->space && h->o->p[h->o->len - 1] != '\n') {
            if ((rc = hl_buf_putc(h->o, ' ')))
                return rc;
        }
    }
    h->newlines = 0;
    h->space = false;
    return put_cp(h->o, c);
}

static void html_break(struct html_out *h, int lines)
{
    if (h->newlines < lines)
        h->newlines = lines;
}

static int html_text(struct html_out *h, const char *t, size_t n)
{
    for (size_t i = 0; i < n;) {
        uint32_t c;
        size_t l = 0;
        if (t[i] == '&')
            l = char_ref(t, n, i, &c);
        if (l == 0) {
            l = hl_utf8_next((const unsigned char *)t + i, n - i, &c);
        }
        int rc = html_char(h, c);
        if (rc)
            return rc;
        i += l;
    }
    return HL_OK;
}

struct block_tag {
    const char *name;
    int lines;
};

static const struct block_tag block_tags[] = {
    {"p", 2},        {"h1", 2},      {"h2", 2},     {"h3", 2},         {"h4", 2},
    {"h5", 2},       {"h6", 2},      {"pre", 2},    {"blockquote", 2}, {"table", 2},
    {"ul", 2},       {"ol", 2},      {"dl", 2},     {"hr", 2},         {"section", 2},
    {"article", 2},  {"header", 2},  {"footer", 2}, {"figure", 2},     {"form", 2},
    {"fieldset", 2}, {"address", 2}, {"main", 2},   {"nav", 2},        {"aside", 2},
    {"details", 2},  {"title", 2},   {"div", 1},    {"li", 1},         {"tr", 1},
    {"dt", 1},       {"dd", 1},      {"option", 1}, {"caption", 1},    {"figcaption", 1},
    {"legend", 1},   {"summary", 1}, {"body", 1},   {"head", 1},       {"html", 1},
    {"textarea", 1}, {"center", 1},  {"menu", 1},   {"listing", 2},    {"plaintext", 2},
};

static bool is_pre_tag(const char *name, size_t n)
{
    return eq_icase(name, n, "pre") || eq_icase(name, n, "textarea") ||
           eq_icase(name, n, "listing") || eq_icase(name, n, "plaintext");
}

/* Where the tag starting at t[i] == '<' ends (just past '>'), or n when it never does. Quotes
 * count only around attribute values (after '='), as in the HTML tokenizer. */
static size_t tag_end(const char *t, size_t n, size_t i)
{
    for (size_t j = i + 1; j < n; j++) {
        if (t[j] == '>')
            return j + 1;
        if (t[j] != '=')
            continue;
        size_t k = j + 1;
        while (k < n && is_ascii_space((unsigned char)t[k]))
            k++;
        if (k < n && (t[k] == '"' || t[k] == '\'')) {
            const char *q = memchr(t + k + 1, t[k], n - k - 1);
            if (!q)
                return n;
            j = (size_t)(q - t);
        }
    }
    return n;
}

/* Finds "</name" followed by a space, '/' or '>' from i, case-insensitively; n when absent. */
static size_t find_end_tag(const char *t, size_t n, size_t i, const char *name)
{
    size_t m = strlen(name);
    while (i < n) {
        const char *lt = memchr(t + i, '<', n - i);
        if (!lt)
            return n;
        size_t j = (size_t)(lt - t);
        if (j + 2 + m <= n && t[j + 1] == '/' && starts_icase(t + j + 2, n - j - 2, name) &&
            (j + 2 + m == n || is_ascii_space((unsigned char)t[j + 2 + m]) || t[j + 2 + m] == '/' ||
             t[j + 2 + m] == '>'))
            return j;
        i = j + 1;
    }
    return n;
}

static int extract_html(const char *t, size_t n, struct hl_buf *o)
{
    struct html_out h = {o, 0, false, 0};
    size_t i = 0;
    int rc = HL_OK;
    while (i < n && rc == HL_OK) {
        const char *lt = memchr(t + i, '<', n - i);
        size_t j = lt ? (size_t)(lt - t) : n;
        if (j > i && (rc = html_text(&h, t + i, j - i)))
            break;
        i = j;
        if (i >= n)
            break;
        /* t[i] == '<' */
        if (n - i >= 4 && memcmp(t + i, "<!--", 4) == 0) {
            const char *end = memmem(t + i + 4, n - i - 4, "-->", 3);
            i = end ? (size_t)(end - t) + 3 : n;
            continue;
        }
        if (i + 1 < n && (t[i + 1] == '!' || t[i + 1] == '?')) {
            const char *gt = memchr(t + i, '>', n - i);
            i = gt ? (size_t)(gt - t) + 1 : n;
            continue;
        }
        bool closing = i + 1 < n && t[i + 1] == '/';
        size_t ns = i + (closing ? 2 : 1), ne = ns;
        if (ns >= n || !is_alpha((unsigned char)t[ns])) {
            rc = html_char(&h, '<');
            i++;
            continue;
        }
        while (ne < n && (is_alnum((unsigned char)t[ne]) || t[ne] == '-' || t[ne] == ':'))
            ne++;
        const char *name = t + ns;
        size_t nn = ne - ns;
        i = tag_end(t, n, i);
        if (!closing && (eq_icase(name, nn, "script") || eq_icase(name, nn, "style") ||
                         eq_icase(name, nn, "template"))) {
            char lname[16];
            snprintf(lname, sizeof(lname), "%.*s", (int)nn, name);
            size_t end = find_end_tag(t, n, i, lname);
            i = end < n ? tag_end(t, n, end) : n;
            continue;
        }
        if (eq_icase(name, nn, "br")) {
            if (h.newlines < 2)
                h.newlines++;
            continue;
        }
        if (eq_icase(name, nn, "td") || eq_icase(name, nn, "th")) {
            h.space = true;
            continue;
        }
        if (is_pre_tag(name, nn)) {
            if (closing && h.pre > 0)
                h.pre--;
            else if (!closing)
                h.pre++;
        }
        for (size_t k = 0; k < sizeof(block_tags) / sizeof(block_tags[0]); k++) {
            if (eq_icase(name, nn, block_tags[k].name)) {
                html_break(&h, block_tags[k].lines);
                break;
            }
        }
    }
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * PDF
 * ------------------------------------------------------------------------------------------ */

static int extract_pdf(const unsigned char *d, size_t n, struct hl_buf *o, size_t *pages, char *why,
                       size_t whylen)
{
    /* A reader looks for %%EOF in the last 1024 bytes; without it the upload was cut short and
     * poppler would quietly rebuild what it can from the first part. */
    size_t tail = n < 1024 ? n : 1024;
    if (!memmem(d + n - tail, tail, "%%EOF", 5)) {
        say(why, whylen,
            "the PDF is truncated: it does not end with %%%%EOF; upload the complete file");
        return HL_EPARSE;
    }
    if (n > INT32_MAX) {
        say(why, whylen, "the PDF is too large to read");
        return HL_ETOOBIG;
    }
    int rc = HL_OK;
    GError *err = NULL;
    GBytes *bytes = g_bytes_new_static(d, n);
    PopplerDocument *doc = poppler_document_new_from_bytes(bytes, NULL, &err);
    if (!doc) {
        if (err && g_error_matches(err, POPPLER_ERROR, POPPLER_ERROR_ENCRYPTED)) {
            say(why, whylen,
                "the PDF is password-protected: remove the password and upload it again");
            rc = HL_EREFUSED;
        } else {
            say(why, whylen, "the PDF is damaged or truncated: %s",
                err && err->message ? err->message : "it cannot be opened");
            rc = HL_EPARSE;
        }
        goto out;
    }
    int np = poppler_document_get_n_pages(doc);
    if (np <= 0) {
        say(why, whylen, "the PDF is damaged: it has no pages");
        rc = HL_EPARSE;
        goto out;
    }
    for (int i = 0; i < np; i++) {
        PopplerPage *page = poppler_document_get_page(doc, i);
        if (!page) {
            say(why, whylen, "the PDF is damaged: page %d of %d cannot be read", i + 1, np);
            rc = HL_EPARSE;
            goto out;
        }
        char *text = poppler_page_get_text(page);
        if (text && text[0]) {
            if (o->len)
                rc = hl_buf_puts(o, "\n\n");
            if (rc == HL_OK)
                rc = put_str(o, text);
        }
        g_free(text);
        g_object_unref(page);
        if (rc)
            goto out;
    }
    *pages = (size_t)np;
out:
    if (doc)
        g_object_unref(doc);
    g_bytes_unref(bytes);
    g_clear_error(&err);
    return rc;
}

/* ---------------------------------------------------------------------------------------------
 * The pipeline
 * ------------------------------------------------------------------------------------------ */

static void reset_results(struct hl_extract *x)
{
    x->kind = HL_EXTRACT_NONE;
    x->text = NULL;
    x->len = 0;
    x->page_count = 0;
    x->word_count = 0;
    x->encoding = NULL;
}

/* Picks the kind of decoded text. JSON is recognised by reading it, so for JSON the text is
 * already in res on return. */
static int detect(const char *t, size_t n, const struct hints *h, struct hl_buf *res,
                  enum hl_extract_kind *kind, char *why, size_t whylen)
{
    const char *s = t;
    size_t sn = n;
    trim(&s, &sn);
    if (h->type == H_JSON || (sn && (s[0] == '{' || s[0] == '['))) {
        char jwhy[160];
        int rc = extract_json(t, n, res, jwhy, sizeof(jwhy));
        if (rc == HL_OK)
            *kind = HL_EXTRACT_JSON;
        if (rc != HL_EPARSE || h->type == H_JSON) {
            if (rc == HL_EPARSE)
                say(why, whylen, "%s", jwhy);
            return rc;
        }
    }
    int html = sniff_html(s, sn);
    if (h->type == H_HTML || html == 2 || (html == 1 && (h->type == H_NONE || h->type == H_PDF)))
        *kind = HL_EXTRACT_HTML;
    else if (h->type == H_CSV || h->type == H_TSV)
        *kind = HL_EXTRACT_CSV;
    else if (h->type == H_MARKDOWN)
        *kind = HL_EXTRACT_MARKDOWN;
    else if (h->type == H_TEXT)
        *kind = HL_EXTRACT_TEXT;
    else
        *kind = sniff_markdown(t, n) ? HL_EXTRACT_MARKDOWN : HL_EXTRACT_TEXT;
    return HL_OK;
}

int hl_extract_buffer(const void *data, size_t len, const char *declared_type,
                      const char *file_name, struct hl_extract *out, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!out)
        return HL_EINVAL;
    reset_results(out);
    if (!data && len) {
        say(why, whylen, "invalid arguments");
        return HL_EINVAL;
    }
    const unsigned char *d = data;
    size_t max_input = out->max_input ? out->max_input : HL_EXTRACT_MAX_INPUT;
    size_t max_text = out->max_text ? out->max_text : HL_EXTRACT_MAX_TEXT;
    char b[32];
    struct hints h;
    struct hl_buf text, res;
    enum hl_extract_kind kind = HL_EXTRACT_NONE;
    const char *encoding = "binary";
    size_t pages = 0;
    int rc = HL_OK;
    hl_buf_init(&text, max_text);
    hl_buf_init(&res, max_text);

    if (len > max_input) {
        hl_extract_size_text(b, sizeof(b), max_input);
        say(why, whylen, "the file is too large: %zu bytes, the limit is %s", len, b);
        rc = HL_ETOOBIG;
        goto out;
    }
    if (len == 0) {
        say(why, whylen, "the file is empty");
        rc = HL_EREFUSED;
        goto out;
    }
    parse_hints(declared_type, file_name, &h);

    if (len >= 5 && memcmp(d, "%PDF-", 5) == 0) {
        kind = HL_EXTRACT_PDF;
        rc = extract_pdf(d, len, &res, &pages, why, whylen);
        goto counted;
    }
    bool utf16 = len >= 2 && (d[0] == 0xFF || d[0] == 0xFE) && d[1] == (d[0] ^ 0x01);
    if (!utf16 && (rc = refuse_binary(d, len, &h, why, whylen)))
        goto out;
    if ((rc = decode_text(d, len, &h, &text, &encoding, why, whylen)))
        goto counted;
    const char *tp = text.p ? text.p : "";
    if ((rc = detect(tp, text.len, &h, &res, &kind, why, whylen)))
        goto counted;
    switch (kind) {
    case HL_EXTRACT_CSV:
        rc = extract_csv(tp, text.len, h.type == H_TSV ? '\t' : sniff_delim(tp, text.len), max_text,
                         &res);
        break;
    case HL_EXTRACT_JSON:
        break; /* detect wrote it */
    case HL_EXTRACT_HTML:
        rc = extract_html(tp, text.len, &res);
        break;
    default:
        hl_buf_free(&res);
        res = text;
        hl_buf_init(&text, max_text);
        break;
    }

counted:
    if (rc == HL_ETOOBIG) {
        hl_extract_size_text(b, sizeof(b), max_text);
        say(why, whylen, "the extracted text is larger than the limit of %s", b);
        goto out;
    }
    if (rc == HL_ENOMEM)
        say(why, whylen, "out of memory while extracting the text");
    if (rc)
        goto out;
    out->word_count = hl_extract_count_words(res.p, res.len);
    if (out->word_count == 0) {
        if (kind == HL_EXTRACT_PDF)
            say(why, whylen,
                "the PDF has no extractable text (scanned pages need OCR before upload)");
        else
            say(why, whylen, "the file contains no text");
        rc = HL_EREFUSED;
        goto out;
    }
    out->kind = kind;
    out->page_count = pages;
    out->encoding = encoding;
    out->len = res.len;
    out->text = hl_buf_steal(&res);
    if (!out->text) {
        say(why, whylen, "out of memory while extracting the text");
        rc = HL_ENOMEM;
    }
out:
    if (rc)
        reset_results(out);
    hl_buf_free(&text);
    hl_buf_free(&res);
    return rc;
}

int hl_extract_file(const char *path, const char *declared_type, const char *file_name,
                    struct hl_extract *out, char *why, size_t whylen)
{
    if (why && whylen)
        why[0] = '\0';
    if (!out)
        return HL_EINVAL;
    reset_results(out);
    if (!path) {
        say(why, whylen, "invalid arguments");
        return HL_EINVAL;
    }
    size_t max = out->max_input ? out->max_input : HL_EXTRACT_MAX_INPUT;
    char b[32];
    unsigned char *data = NULL;
    size_t got = 0, cap;
    int rc = HL_EIO;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        say(why, whylen, "cannot open the stored file: %s", strerror(errno));
        goto out;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        say(why, whylen, "the stored file is not a regular file");
        goto out;
    }
    if ((uintmax_t)st.st_size > max) {
        hl_extract_size_text(b, sizeof(b), max);
        say(why, whylen, "the file is too large: %jd bytes, the limit is %s", (intmax_t)st.st_size,
            b);
        rc = HL_ETOOBIG;
        goto out;
    }
    /* Room for one byte more than fstat saw, to notice a file that grew; it may grow up to one
     * byte past the limit, which then refuses it. */
    cap = 0;
    for (;;) {
        if (got == cap) {
            if (cap > max) {
                hl_extract_size_text(b, sizeof(b), max);
                say(why, whylen, "the file is too large: the limit is %s", b);
                rc = HL_ETOOBIG;
                goto out;
            }
            size_t ncap = cap == 0 ? (size_t)st.st_size + 1 : cap > max / 2 ? max + 1 : cap * 2;
            unsigned char *p = realloc(data, ncap);
            if (!p) {
                say(why, whylen, "out of memory while reading the file");
                rc = HL_ENOMEM;
                goto out;
            }
            data = p;
            cap = ncap;
        }
        ssize_t r = read(fd, data + got, cap - got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            say(why, whylen, "cannot read the stored file: %s", strerror(errno));
            goto out;
        }
        if (r == 0)
            break;
        got += (size_t)r;
    }
    rc = hl_extract_buffer(data, got, declared_type, file_name, out, why, whylen);
out:
    if (fd >= 0)
        close(fd);
    free(data);
    return rc;
}

void hl_extract_free(struct hl_extract *x)
{
    if (!x)
        return;
    free(x->text);
    reset_results(x);
}

const char *hl_extract_kind_name(enum hl_extract_kind kind)
{
    switch (kind) {
    case HL_EXTRACT_TEXT:
        return "text";
    case HL_EXTRACT_MARKDOWN:
        return "markdown";
    case HL_EXTRACT_CSV:
        return "csv";
    case HL_EXTRACT_JSON:
        return "json";
    case HL_EXTRACT_HTML:
        return "html";
    case HL_EXTRACT_PDF:
        return "pdf";
    case HL_EXTRACT_NONE:
        break;
    }
    return "none";
}
