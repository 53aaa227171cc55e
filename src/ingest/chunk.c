#include "ingest/chunk.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "common/err.h"
#include "common/utf8.h"

/* One character at text[pos..len): its byte length (an invalid byte counts as one character,
 * decoded as U+FFFD). */
static size_t next_char(const char *text, size_t len, size_t pos, uint32_t *cp)
{
    return hl_utf8_next((const unsigned char *)text + pos, len - pos, cp);
}

/* Scripts written without spaces between words (Han, kana, Hangul, full-width forms), where a
 * break between any two characters is a word break. */
static bool is_wide(uint32_t c)
{
    return (c >= 0x2E80 && c <= 0x9FFF) || (c >= 0xAC00 && c <= 0xD7AF) ||
           (c >= 0xF900 && c <= 0xFAFF) || (c >= 0xFF00 && c <= 0xFFEF) ||
           (c >= 0x20000 && c <= 0x3FFFF);
}

/* Closing punctuation that may follow a sentence's full stop: ." .) .' .] .” .’ .» */
static bool is_closer(uint32_t c)
{
    return c == '"' || c == '\'' || c == ')' || c == ']' || c == 0x201D || c == 0x2019 || c == 0xBB;
}

static size_t skip_space(const char *text, size_t len, size_t pos)
{
    while (pos < len) {
        uint32_t c;
        size_t l = next_char(text, len, pos, &c);
        if (!hl_utf8_is_space(c))
            break;
        pos += l;
    }
    return pos;
}

/* Break classes, best first. */
enum { BRK_PARAGRAPH, BRK_SENTENCE, BRK_LINE, BRK_WORD, BRK_N };

struct brk {
    size_t end;   /* chunk end, trailing whitespace trimmed; 0 = no break of this class */
    size_t chars; /* characters in [start, end) */
};

static int push(struct hl_chunks *out, size_t *cap, size_t offset, size_t len, size_t chars)
{
    if (out->n == *cap) {
        if (*cap >= HL_CHUNK_MAX_COUNT)
            return HL_ETOOBIG;
        size_t ncap = *cap ? *cap * 2 : 16;
        if (ncap > HL_CHUNK_MAX_COUNT)
            ncap = HL_CHUNK_MAX_COUNT;
        struct hl_chunk *p = realloc(out->items, ncap * sizeof(*p));
        if (!p)
            return HL_ENOMEM;
        out->items = p;
        *cap = ncap;
    }
    out->items[out->n] = (struct hl_chunk){out->n, offset, len, chars};
    out->n++;
    return HL_OK;
}

/* Where the chunk [start, end) with `chars` characters hands over to the next one: `overlap`
 * characters before end; when that is inside a word, the next word start in the chunk, or else
 * end (no overlap) for a chunk that ended between words and the cut as it is for one cut inside
 * a word. end itself when the chunk is not longer than the overlap. */
static size_t overlap_start(const char *text, size_t len, size_t start, size_t end, size_t chars,
                            size_t overlap, bool cut)
{
    if (overlap == 0 || chars <= overlap)
        return end;
    size_t q = start;
    uint32_t before = 0, c;
    for (size_t i = 0; i < chars - overlap; i++)
        q += next_char(text, len, q, &before);
    next_char(text, len, q, &c); /* q < end <= len */
    if (hl_utf8_is_space(before) || hl_utf8_is_space(c) || is_wide(before) || is_wide(c))
        return q;
    for (size_t r = q; r < end;) {
        size_t l = next_char(text, len, r, &c);
        if (hl_utf8_is_space(c))
            return r;
        r += l;
    }
    return cut ? q : end;
}

int hl_chunk_text(const char *text, size_t len, size_t chunk_size, size_t overlap,
                  struct hl_chunks *out)
{
    out->items = NULL;
    out->n = 0;
    if (chunk_size == 0 || overlap >= chunk_size || (!text && len))
        return HL_EINVAL;
    size_t min_chars = chunk_size / 2;
    if (min_chars < overlap + 1)
        min_chars = overlap + 1;

    int rc = HL_OK;
    size_t cap = 0;
    size_t pos = skip_space(text, len, 0);
    while (pos < len) {
        struct brk brk[BRK_N] = {{0, 0}};
        size_t p = pos, n = 0;
        size_t ns_end = pos, ns_chars = 0; /* after the last non-space character */
        bool line_blank = false;           /* the current line holds only whitespace so far */
        bool sentence = false;             /* the last non-space characters end a sentence */
        while (p < len && n < chunk_size) {
            uint32_t c;
            p += next_char(text, len, p, &c);
            n++;
            int cls = -1;
            if (!hl_utf8_is_space(c)) {
                ns_end = p;
                ns_chars = n;
                line_blank = false;
                if (c == '.' || c == '!' || c == '?') {
                    sentence = true;
                } else if (c == 0x3002 || c == 0xFF01 || c == 0xFF1F) {
                    sentence = false;
                    cls = BRK_SENTENCE; /* CJK full stops need no space after them */
                } else if (!is_closer(c)) {
                    sentence = false;
                }
            } else if (c == '\n') {
                cls = line_blank ? BRK_PARAGRAPH : sentence ? BRK_SENTENCE : BRK_LINE;
                line_blank = true;
            } else {
                cls = sentence ? BRK_SENTENCE : BRK_WORD;
            }
            if (cls >= 0 && n >= min_chars && p < len)
                brk[cls] = (struct brk){ns_end, ns_chars};
        }
        if (p < len) {
            /* a chunk that fills up just before a space ends between words too */
            uint32_t c;
            next_char(text, len, p, &c);
            if (hl_utf8_is_space(c)) {
                int cls = c == '\n' && line_blank ? BRK_PARAGRAPH
                          : sentence              ? BRK_SENTENCE
                          : c == '\n'             ? BRK_LINE
                                                  : BRK_WORD;
                brk[cls] = (struct brk){ns_end, ns_chars};
            }
        }
        /* Without a break the cut is at p, where the last character is not a space (a space
         * there would have been a word break). */
        size_t end = ns_end, chars = ns_chars;
        bool cut = true;
        for (int i = 0; p < len && i < BRK_N; i++) {
            if (brk[i].end) {
                end = brk[i].end;
                chars = brk[i].chars;
                cut = false;
                break;
            }
        }
        rc = push(out, &cap, pos, end - pos, chars);
        if (rc)
            goto out;
        if (p >= len)
            break;
        pos = skip_space(text, len, overlap_start(text, len, pos, end, chars, overlap, cut));
    }
out:
    if (rc)
        hl_chunks_free(out);
    return rc;
}

void hl_chunks_free(struct hl_chunks *c)
{
    free(c->items);
    c->items = NULL;
    c->n = 0;
}
