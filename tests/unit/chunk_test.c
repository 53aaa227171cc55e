/* Tests for src/ingest/chunk.c: exact splits from a table, then invariants over generated text. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"
#include "ingest/chunk.h"

#define MAXC 8

struct ccase {
    const char *text;
    size_t chunk, overlap;
    int rc;
    const char *want[MAXC]; /* the chunks' text, in order; NULL ends */
};

static const struct ccase cases[] = {
    /* arguments */
    {"abc", 0, 0, HL_EINVAL, {NULL}},
    {"abc", 3, 3, HL_EINVAL, {NULL}},
    {"abc", 3, 7, HL_EINVAL, {NULL}},
    /* nothing to chunk */
    {"", 10, 0, HL_OK, {NULL}},
    {" \n\t\n  \xE3\x80\x80", 10, 2, HL_OK, {NULL}},
    /* fits */
    {"hi", 10, 0, HL_OK, {"hi"}},
    {"  hi there \n", 10, 9, HL_OK, {"hi there"}},
    {"abcd", 4, 0, HL_OK, {"abcd"}},
    {"abcd ", 4, 0, HL_OK, {"abcd"}},
    /* hard cuts when there is no break */
    {"abcdefghij", 4, 0, HL_OK, {"abcd", "efgh", "ij"}},
    {"abcdefghij", 4, 2, HL_OK, {"abcd", "cdef", "efgh", "ghij"}},
    {"abcdefghij", 4, 3, HL_OK, {"abcd", "bcde", "cdef", "defg", "efgh", "fghi", "ghij"}},
    {"abcdefg", 1, 0, HL_OK, {"a", "b", "c", "d", "e", "f", "g"}},
    /* words */
    {"aaa bbb ccc ddd", 8, 0, HL_OK, {"aaa bbb", "ccc ddd"}},
    {"aaa bbb ccc ddd", 7, 0, HL_OK, {"aaa bbb", "ccc ddd"}},
    {"aaa bbb ccc ddd", 9, 4, HL_OK, {"aaa bbb", "bbb ccc", "ccc ddd"}},
    /* the overlap moves to the next word start instead of cutting one */
    {"alpha beta gamma delta", 12, 3, HL_OK, {"alpha beta", "gamma delta"}},
    {"alpha beta gamma delta", 12, 6, HL_OK, {"alpha beta", "beta gamma", "gamma delta"}},
    /* sentence ends beat word breaks, paragraphs beat both, lines fall between */
    {"One two. Three four five six", 16, 0, HL_OK, {"One two.", "Three four five", "six"}},
    {"He said \"stop.\" Then left now", 20, 0, HL_OK, {"He said \"stop.\"", "Then left now"}},
    {"Para one\n\nPara two. More words here",
     20,
     0,
     HL_OK,
     {"Para one", "Para two.", "More words here"}},
    {"Aa bb cc. Dd ee\n\nFf gg hh ii jj", 24, 0, HL_OK, {"Aa bb cc. Dd ee", "Ff gg hh ii jj"}},
    {"aa bb. cc\ndd ee ff gg hh", 16, 0, HL_OK, {"aa bb. cc", "dd ee ff gg hh"}},
    {"first line\nsecond line here", 20, 0, HL_OK, {"first line", "second line here"}},
    {"x1 x3. x4 x5 x6 x7 x8 x9 xa xb xc",
     20,
     0,
     HL_OK,
     {"x1 x3. x4 x5 x6 x7", "x8 x9 xa xb xc"}}, /* "x3." is too early (half the size) */
    /* "e.g." inside a word is no sentence end */
    {"use e.g.this one now please", 14, 0, HL_OK, {"use e.g.this", "one now please"}},
    /* UTF-8: counted in code points, never split */
    {"\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9",
     2,
     0,
     HL_OK,
     {"\xC3\xA9\xC3\xA9", "\xC3\xA9\xC3\xA9", "\xC3\xA9"}},
    {"\xE6\x97\xA5\xE6\x9C\xAC\xE8\xAA\x9E\xF0\x9F\x98\x80x",
     2,
     1,
     HL_OK,
     {"\xE6\x97\xA5\xE6\x9C\xAC", "\xE6\x9C\xAC\xE8\xAA\x9E", "\xE8\xAA\x9E\xF0\x9F\x98\x80",
      "\xF0\x9F\x98\x80x"}},
    /* CJK full stops end sentences without a space */
    {"\xE4\xB8\x80\xE3\x80\x82\xE4\xBA\x8C\xE4\xB8\x89\xE5\x9B\x9B",
     4,
     0,
     HL_OK,
     {"\xE4\xB8\x80\xE3\x80\x82", "\xE4\xBA\x8C\xE4\xB8\x89\xE5\x9B\x9B"}},
    /* Unicode spaces are spaces */
    {"ab\xC2\xA0"
     "cd\xE3\x80\x80"
     "ef",
     4,
     0,
     HL_OK,
     {"ab", "cd", "ef"}},
    /* invalid bytes count as one character each */
    {"\xFF\xFE"
     "ab\xC3",
     2,
     0,
     HL_OK,
     {"\xFF\xFE", "ab", "\xC3"}},
    {"\xE2\x82"
     "x",
     2,
     0,
     HL_OK,
     {"\xE2\x82", "x"}},
};

static void check_case(const struct ccase *c)
{
    struct hl_chunks out = {(struct hl_chunk *)1, 99};
    int rc = hl_chunk_text(c->text, strlen(c->text), c->chunk, c->overlap, &out);
    assert_int_equal(rc, c->rc);
    size_t want = 0;
    while (want < MAXC && c->want[want])
        want++;
    if (out.n != want) {
        for (size_t i = 0; i < out.n; i++)
            print_error("  [%zu] \"%.*s\"\n", i, (int)out.items[i].len,
                        c->text + out.items[i].offset);
        print_error("\"%s\" %zu/%zu: %zu chunks, want %zu\n", c->text, c->chunk, c->overlap, out.n,
                    want);
    }
    assert_int_equal(out.n, want);
    for (size_t i = 0; i < out.n; i++) {
        const struct hl_chunk *k = &out.items[i];
        assert_int_equal(k->index, i);
        if (k->len != strlen(c->want[i]) || memcmp(c->text + k->offset, c->want[i], k->len))
            print_error("\"%s\" chunk %zu: \"%.*s\", want \"%s\"\n", c->text, i, (int)k->len,
                        c->text + k->offset, c->want[i]);
        assert_int_equal(k->len, strlen(c->want[i]));
        assert_memory_equal(c->text + k->offset, c->want[i], k->len);
    }
    if (rc != HL_OK || out.n == 0)
        assert_null(out.items);
    hl_chunks_free(&out);
    assert_null(out.items);
    assert_int_equal(out.n, 0);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        check_case(&cases[i]);
}

static void test_null(void **state)
{
    (void)state;
    struct hl_chunks out;
    assert_int_equal(hl_chunk_text(NULL, 0, 10, 0, &out), HL_OK);
    assert_int_equal(out.n, 0);
    assert_int_equal(hl_chunk_text(NULL, 1, 10, 0, &out), HL_EINVAL);
    /* no NUL needed: only len bytes are read */
    char buf[4] = {'a', 'b', 'c', 'd'};
    assert_int_equal(hl_chunk_text(buf, 3, 2, 0, &out), HL_OK);
    assert_int_equal(out.n, 2);
    assert_int_equal(out.items[1].len, 1);
    hl_chunks_free(&out);
}

/* ---------------------------------------------------------------------------------------------
 * Invariants on generated text
 * ------------------------------------------------------------------------------------------ */

static uint32_t rng = 12345;

static uint32_t rnd(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 17;
    rng ^= rng << 5;
    return rng;
}

static const char *const pieces[] = {
    "word",
    "a",
    "longerword",
    "\xC3\xA9t\xC3\xA9",
    "\xE6\x97\xA5\xE6\x9C\xAC",
    "\xF0\x9F\x98\x80",
    " ",
    " ",
    "  ",
    "\n",
    "\n\n",
    ". ",
    "! ",
    "? ",
    "\xE3\x80\x82",
    "\xC2\xA0",
    "\t",
    "x.",
    "\"q.\" ",
};

static size_t count_chars(const char *p, size_t n)
{
    size_t c = 0;
    for (size_t i = 0; i < n; i++)
        c += ((unsigned char)p[i] & 0xC0) != 0x80;
    return c;
}

static bool ascii_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t';
}

static bool char_start(const char *t, size_t len, size_t off)
{
    return off == len || ((unsigned char)t[off] & 0xC0) != 0x80;
}

static void check_invariants(const char *t, size_t len, size_t size, size_t overlap)
{
    struct hl_chunks out;
    assert_int_equal(hl_chunk_text(t, len, size, overlap, &out), HL_OK);
    /* every non-space byte is inside a chunk */
    unsigned char *covered = calloc(len + 1, 1);
    assert_non_null(covered);
    for (size_t i = 0; i < out.n; i++) {
        const struct hl_chunk *k = &out.items[i];
        assert_int_equal(k->index, i);
        assert_true(k->len > 0);
        assert_true(k->offset + k->len <= len);
        assert_true(k->chars >= 1 && k->chars <= size);
        assert_int_equal(k->chars, count_chars(t + k->offset, k->len));
        assert_true(char_start(t, len, k->offset));
        assert_true(char_start(t, len, k->offset + k->len));
        /* trimmed (the generated spaces are ASCII, U+00A0 and U+3000's cousins aside) */
        assert_false(ascii_space(t[k->offset]));
        assert_false(ascii_space(t[k->offset + k->len - 1]));
        if (i > 0) {
            const struct hl_chunk *prev = &out.items[i - 1];
            assert_true(k->offset > prev->offset);
            if (overlap == 0)
                assert_true(k->offset >= prev->offset + prev->len);
            /* never more shared than asked for */
            if (k->offset < prev->offset + prev->len)
                assert_true(count_chars(t + k->offset, prev->offset + prev->len - k->offset) <=
                            overlap);
        }
        memset(covered + k->offset, 1, k->len);
    }
    for (size_t i = 0; i < len; i++) {
        if (!covered[i] && !ascii_space(t[i]) &&
            !((unsigned char)t[i] == 0xC2 && (unsigned char)t[i + 1] == 0xA0) &&
            !((unsigned char)t[i] == 0xA0 && i > 0 && (unsigned char)t[i - 1] == 0xC2))
            fail_msg("byte %zu (0x%02X) of %zu is in no chunk (size %zu, overlap %zu)", i,
                     (unsigned char)t[i], len, size, overlap);
    }
    free(covered);
    hl_chunks_free(&out);
}

static void test_invariants(void **state)
{
    (void)state;
    static const size_t sizes[][2] = {{1, 0},   {2, 1},   {3, 0},    {5, 2},    {8, 7},     {16, 4},
                                      {50, 10}, {100, 0}, {100, 99}, {257, 64}, {1000, 200}};
    char *t = malloc(1 << 16);
    assert_non_null(t);
    for (int round = 0; round < 40; round++) {
        size_t len = 0, target = rnd() % 4000;
        while (len < target) {
            const char *p = pieces[rnd() % (sizeof(pieces) / sizeof(pieces[0]))];
            memcpy(t + len, p, strlen(p));
            len += strlen(p);
        }
        for (size_t s = 0; s < sizeof(sizes) / sizeof(sizes[0]); s++)
            check_invariants(t, len, sizes[s][0], sizes[s][1]);
    }
    free(t);
}

/* 8 MiB of prose in 1000-character chunks with 200 shared: sizes stay close to the target. */
static void test_huge(void **state)
{
    (void)state;
    size_t len = 8u << 20;
    char *t = malloc(len);
    assert_non_null(t);
    static const char sentence[] = "The quick brown fox jumps over the lazy dog again. ";
    for (size_t i = 0; i < len; i++)
        t[i] = sentence[i % (sizeof(sentence) - 1)];
    struct hl_chunks out;
    assert_int_equal(hl_chunk_text(t, len, 1000, 200, &out), HL_OK);
    assert_true(out.n > len / 800 && out.n < len / 700);
    for (size_t i = 0; i + 1 < out.n; i++) {
        const struct hl_chunk *k = &out.items[i];
        assert_true(k->chars > 800 && k->chars <= 1000);
        assert_true(k->offset == 0 || t[k->offset - 1] == ' '); /* starts at a word */
        assert_int_equal(t[k->offset + k->len - 1], '.');       /* ends a sentence */
        if (i > 0) /* shares up to 200 characters, the rest of a word less */
            assert_true(out.items[i - 1].offset + out.items[i - 1].len - k->offset > 190);
    }
    hl_chunks_free(&out);
    free(t);
}

static void test_too_many(void **state)
{
    (void)state;
    size_t len = HL_CHUNK_MAX_COUNT + 1;
    char *t = malloc(len);
    assert_non_null(t);
    memset(t, 'x', len);
    struct hl_chunks out;
    assert_int_equal(hl_chunk_text(t, len, 1, 0, &out), HL_ETOOBIG);
    assert_null(out.items);
    assert_int_equal(out.n, 0);
    assert_int_equal(hl_chunk_text(t, len - 1, 1, 0, &out), HL_OK);
    assert_int_equal(out.n, HL_CHUNK_MAX_COUNT);
    hl_chunks_free(&out);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),      cmocka_unit_test(test_null),
        cmocka_unit_test(test_invariants), cmocka_unit_test(test_huge),
        cmocka_unit_test(test_too_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
