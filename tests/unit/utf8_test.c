/* Tests for src/common/utf8.c: the strict UTF-8 decoder.
 *
 * Expected code points are from the Unicode tables (and Python's bytes.decode("utf-8")), not from
 * this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "common/utf8.h"

struct seq_case {
    const char *what;
    const char *bytes;
    size_t n;    /* bytes given to the decoder */
    size_t len;  /* expected length, 0 for invalid */
    uint32_t cp; /* expected code point when valid */
};

static const struct seq_case seq_cases[] = {
    /* valid, 1 to 4 bytes, at the edges of each length */
    {"NUL", "\x00", 1, 1, 0x00},
    {"ASCII A", "A", 1, 1, 0x41},
    {"DEL", "\x7F", 1, 1, 0x7F},
    {"U+0080", "\xC2\x80", 2, 2, 0x80},
    {"U+00E9", "\xC3\xA9", 2, 2, 0xE9},
    {"U+07FF", "\xDF\xBF", 2, 2, 0x7FF},
    {"U+0800", "\xE0\xA0\x80", 3, 3, 0x800},
    {"U+20AC", "\xE2\x82\xAC", 3, 3, 0x20AC},
    {"U+D7FF", "\xED\x9F\xBF", 3, 3, 0xD7FF},
    {"U+E000", "\xEE\x80\x80", 3, 3, 0xE000},
    {"U+FFFD", "\xEF\xBF\xBD", 3, 3, 0xFFFD},
    {"U+FFFF", "\xEF\xBF\xBF", 3, 3, 0xFFFF},
    {"U+10000", "\xF0\x90\x80\x80", 4, 4, 0x10000},
    {"U+1F600", "\xF0\x9F\x98\x80", 4, 4, 0x1F600},
    {"U+10FFFF", "\xF4\x8F\xBF\xBF", 4, 4, 0x10FFFF},
    /* only the first sequence is decoded */
    {"followed by more", "\xC3\xA9xyz", 5, 2, 0xE9},
    {"ASCII then more", "ab", 2, 1, 0x61},
    /* overlong forms */
    {"overlong NUL C0 80", "\xC0\x80", 2, 0, 0},
    {"overlong / C0 AF", "\xC0\xAF", 2, 0, 0},
    {"overlong C1 BF", "\xC1\xBF", 2, 0, 0},
    {"overlong 3-byte E0 80 80", "\xE0\x80\x80", 3, 0, 0},
    {"overlong U+07FF E0 9F BF", "\xE0\x9F\xBF", 3, 0, 0},
    {"overlong 4-byte F0 80 80 80", "\xF0\x80\x80\x80", 4, 0, 0},
    {"overlong U+FFFF F0 8F BF BF", "\xF0\x8F\xBF\xBF", 4, 0, 0},
    /* surrogates */
    {"U+D800", "\xED\xA0\x80", 3, 0, 0},
    {"U+DBFF", "\xED\xAF\xBF", 3, 0, 0},
    {"U+DC00", "\xED\xB0\x80", 3, 0, 0},
    {"U+DFFF", "\xED\xBF\xBF", 3, 0, 0},
    /* past U+10FFFF */
    {"U+110000", "\xF4\x90\x80\x80", 4, 0, 0},
    {"F5 lead", "\xF5\x80\x80\x80", 4, 0, 0},
    {"F7 lead", "\xF7\xBF\xBF\xBF", 4, 0, 0},
    {"F8 lead (5 bytes)", "\xF8\x88\x80\x80\x80", 5, 0, 0},
    {"FC lead (6 bytes)", "\xFC\x84\x80\x80\x80\x80", 6, 0, 0},
    {"FE", "\xFE", 1, 0, 0},
    {"FF", "\xFF", 1, 0, 0},
    /* stray continuation bytes and bad continuations */
    {"lone 80", "\x80", 1, 0, 0},
    {"lone BF", "\xBF", 1, 0, 0},
    {"2-byte, ASCII second", "\xC3\x41", 2, 0, 0},
    {"3-byte, lead second", "\xE2\xC2\xAC", 3, 0, 0},
    {"4-byte, ASCII last", "\xF0\x9F\x98\x41", 4, 0, 0},
    /* truncated: by n, or by a NUL in place of a continuation */
    {"empty", "", 0, 0, 0},
    {"2-byte cut to 1", "\xC3\xA9", 1, 0, 0},
    {"3-byte cut to 1", "\xE2\x82\xAC", 1, 0, 0},
    {"3-byte cut to 2", "\xE2\x82\xAC", 2, 0, 0},
    {"4-byte cut to 1", "\xF0\x9F\x98\x80", 1, 0, 0},
    {"4-byte cut to 2", "\xF0\x9F\x98\x80", 2, 0, 0},
    {"4-byte cut to 3", "\xF0\x9F\x98\x80", 3, 0, 0},
    {"3-byte ended by NUL", "\xE2\x82", 3, 0, 0},
};

static void test_seq_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(seq_cases) / sizeof(seq_cases[0]); i++) {
        const struct seq_case *c = &seq_cases[i];
        print_message("%s\n", c->what);
        /* a copy of exactly n bytes, so ASan reports any read past them */
        unsigned char *buf = malloc(c->n ? c->n : 1);
        assert_non_null(buf);
        memcpy(buf, c->bytes, c->n);
        uint32_t cp = 0xDEADBEEF;
        size_t len = hl_utf8_seq(buf, c->n, &cp);
        assert_int_equal(len, c->len);
        if (c->len)
            assert_int_equal(cp, c->cp);
        else
            assert_int_equal(cp, 0xDEADBEEF); /* left alone */

        /* hl_utf8_next: the same, or one byte as U+FFFD */
        if (c->n) {
            cp = 0;
            len = hl_utf8_next(buf, c->n, &cp);
            assert_int_equal(len, c->len ? c->len : 1);
            assert_int_equal(cp, c->len ? c->cp : 0xFFFD);
        }
        free(buf);
    }
}

/* Walking a mixed string with hl_utf8_next yields one character per valid sequence and one
 * U+FFFD per bad byte. */
static void test_next_walk(void **state)
{
    (void)state;
    static const unsigned char s[] =
        "a\xC3\xA9\xFF\xE2\x82\xAC\xED\xA0\x80\xF0\x9F\x98\x80\xE2\x82";
    static const uint32_t want[] = {0x61,   0xE9,   0xFFFD,  0x20AC, 0xFFFD,
                                    0xFFFD, 0xFFFD, 0x1F600, 0xFFFD, 0xFFFD};
    size_t n = sizeof(s) - 1, k = 0;
    for (size_t i = 0; i < n; k++) {
        uint32_t cp;
        assert_true(k < sizeof(want) / sizeof(want[0]));
        i += hl_utf8_next(s + i, n - i, &cp);
        assert_int_equal(cp, want[k]);
    }
    assert_int_equal(k, sizeof(want) / sizeof(want[0]));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seq_table),
        cmocka_unit_test(test_next_walk),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
