/* libFuzzer target for src/ingest/extract.c, src/ingest/chunk.c and the decoder of helper.c.
 *
 * The first byte picks the hints (declared type and file name), the second and third the chunk
 * size and overlap; the rest is the file. Whatever hl_extract_buffer returns must keep its
 * promises: on success valid UTF-8 without NUL or control characters (tab and newline aside), a
 * word count that matches and is not 0; on failure a reason and no text. The text, and the raw
 * input, are then chunked and every chunk checked. The same bytes are then read as what a
 * helper process sent (hl_helper_decode): an answer it accepts keeps the same promises.
 *
 * Seeds help it reach the PDF, CSV and HTML paths quickly, e.g. the files extract_test writes:
 *   ./extract_fuzz -max_total_time=60 corpus/ */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "ingest/chunk.h"
#include "ingest/extract.h"
#include "ingest/helper.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const types[] = {
    NULL,
    "text/plain",
    "text/markdown",
    "text/csv",
    "text/html",
    "application/json",
    "application/pdf",
    "text/tab-separated-values",
    "text/plain; charset=iso-8859-1",
    "text/plain; charset=utf-8",
    "application/octet-stream",
    "application/x+json",
};

static const char *const names[] = {NULL,    "a.txt", "a.md",  "a.csv",  "a.html", "a.json",
                                    "a.pdf", "a.tsv", "noext", "a.docx", ".csv",   "dir/a.HTM"};

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* Length of the valid UTF-8 sequence at s[0..n), or 0. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need = c < 0x80                 ? 1
                  : c >= 0xC2 && c <= 0xDF ? 2
                  : c >= 0xE0 && c <= 0xEF ? 3
                  : c >= 0xF0 && c <= 0xF4 ? 4
                                           : 0;
    if (need == 0 || n < need)
        return 0;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    }
    if ((c == 0xE0 && s[1] < 0xA0) || (c == 0xED && s[1] > 0x9F) || (c == 0xF0 && s[1] < 0x90) ||
        (c == 0xF4 && s[1] > 0x8F))
        return 0;
    return need;
}

static void check_text(const char *text, size_t len)
{
    const unsigned char *s = (const unsigned char *)text;
    if (text[len] != '\0' || strlen(text) != len)
        abort();
    for (size_t i = 0; i < len;) {
        size_t l = utf8_len(s + i, len - i);
        if (l == 0)
            abort();
        if (l == 1 && ((s[i] < 0x20 && s[i] != '\t' && s[i] != '\n') || s[i] == 0x7F))
            abort();
        if (l == 2 && s[i] == 0xC2 && s[i + 1] <= 0x9F)
            abort(); /* C1 control */
        i += l;
    }
}

static void check_chunks(const char *text, size_t len, size_t size, size_t overlap)
{
    struct hl_chunks c;
    int rc = hl_chunk_text(text, len, size, overlap, &c);
    if (rc == HL_ETOOBIG)
        return;
    if (rc != HL_OK)
        abort();
    size_t prev_off = 0;
    for (size_t i = 0; i < c.n; i++) {
        const struct hl_chunk *k = &c.items[i];
        if (k->index != i || k->len == 0 || k->offset > len || k->len > len - k->offset)
            abort();
        if (k->chars == 0 || k->chars > size || k->chars > k->len)
            abort();
        if (i > 0 && k->offset <= prev_off)
            abort();
        /* never inside a valid sequence: neither end is a continuation byte of one */
        if (k->offset > 0 && ((unsigned char)text[k->offset] & 0xC0) == 0x80) {
            for (size_t b = 1; b <= 3 && b <= k->offset; b++) {
                size_t l =
                    utf8_len((const unsigned char *)text + k->offset - b, len - k->offset + b);
                if (l > b)
                    abort();
            }
        }
        prev_off = k->offset;
    }
    hl_chunks_free(&c);
}

/* data as a helper's output: an answer that decodes keeps extract.h's promises. */
static void check_decode(const uint8_t *data, size_t size)
{
    struct hl_helper_output o;
    if (hl_helper_decode(data, size, 1u << 20, &o) != HL_OK || !o.answered)
        return;
    if (o.rc != HL_OK) {
        if (o.rc > 0 || o.why_len == 0 || o.text_len || o.kind != HL_EXTRACT_NONE)
            abort();
        return;
    }
    char *t = malloc(o.text_len + 1);
    if (!t)
        return;
    memcpy(t, o.text, o.text_len);
    t[o.text_len] = '\0';
    check_text(t, o.text_len);
    if (hl_extract_count_words(t, o.text_len) == 0 || o.kind == HL_EXTRACT_NONE ||
        o.kind > HL_EXTRACT_PDF || (o.kind == HL_EXTRACT_PDF) != (o.page_count > 0) ||
        !o.encoding || (const uint8_t *)o.text < data || o.text_len > size)
        abort();
    free(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    const char *type = types[(data[0] & 0x0F) % N(types)];
    const char *name = names[(data[0] >> 4) % N(names)];
    size_t chunk = 1 + data[1] % 64;
    size_t overlap = data[2] % chunk;
    data += 3;
    size -= 3;

    struct hl_extract x = {.max_text = 4u << 20};
    char why[256] = "";
    int rc = hl_extract_buffer(data, size, type, name, &x, why, sizeof(why));
    if (rc == HL_OK) {
        if (!x.text || x.kind == HL_EXTRACT_NONE || x.word_count == 0 || !x.encoding || why[0])
            abort();
        if (x.word_count != hl_extract_count_words(x.text, x.len))
            abort();
        if ((x.kind == HL_EXTRACT_PDF) != (x.page_count > 0))
            abort();
        check_text(x.text, x.len);
        check_chunks(x.text, x.len, chunk, overlap);
    } else {
        if (x.text || x.len || x.kind != HL_EXTRACT_NONE || !why[0] || rc >= 0)
            abort();
    }
    hl_extract_free(&x);
    check_chunks((const char *)data, size, chunk, overlap);
    check_decode(data, size);
    return 0;
}
