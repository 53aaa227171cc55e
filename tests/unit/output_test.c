/* Tests for src/cli/output.c: text from a server made safe for a terminal and cut to a width,
 * spans and times for people, colours of states, and aligned tables. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/output.h"

struct clean_case {
    const char *in;
    size_t max_width;
    size_t cap;
    const char *want;
};

static const struct clean_case clean_cases[] = {
    {"plain", 0, 64, "plain"},
    {NULL, 0, 64, "-"},
    {"", 0, 64, ""},
    /* C0, DEL and C1 controls, and the escape that would drive a terminal */
    {"a\x1b[2Jb", 0, 64, "a?[2Jb"},
    {"tab\there\nnl\r", 0, 64, "tab?here?nl?"},
    {"del\x7f", 0, 64, "del?"},
    {"c1\xc2\x9b"
     "31m",
     0, 64, "c1?31m"},
    /* invalid UTF-8: each bad byte is one '?' */
    {"\xff\xfe", 0, 64, "??"},
    {"cut\xe2\x82", 0, 64, "cut??"},
    {"\xed\xa0\x80", 0, 64, "???"},
    /* valid UTF-8 stays */
    {"t\xc3\xa9l\xc3\xa9 \xe6\x97\xa5\xf0\x9f\xa4\x96", 0, 64,
     "t\xc3\xa9l\xc3\xa9 \xe6\x97\xa5\xf0\x9f\xa4\x96"},
    /* widths: fits exactly, one too many, multibyte counted as one column */
    {"abcdef", 6, 64, "abcdef"},
    {"abcdefg", 6, 64, "abcde\xe2\x80\xa6"},
    {"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9", 3, 64, "\xc3\xa9\xc3\xa9\xe2\x80\xa6"},
    {"ab\x1b"
     "cdefgh",
     4, 64, "ab?\xe2\x80\xa6"},
    /* the buffer, not the width, is the limit: still NUL-terminated, with the ellipsis */
    {"abcdefghij", 0, 8, "abcd\xe2\x80\xa6"},
    {"abcdefghij", 0, 4, "\xe2\x80\xa6"},
    {"abcdefghij", 0, 3, ""},
};

static void test_clean(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(clean_cases) / sizeof(clean_cases[0]); i++) {
        const struct clean_case *c = &clean_cases[i];
        char out[80];
        memset(out, '#', sizeof(out));
        char *got = hl_out_clean(c->in, c->max_width, out, c->cap);
        assert_ptr_equal(got, out);
        if (strcmp(out, c->want) != 0)
            fail_msg("case %zu: got '%s', want '%s'", i, out, c->want);
        assert_true(strlen(out) < c->cap);
        for (size_t k = c->cap; k < sizeof(out); k++)
            assert_int_equal(out[k], '#');
    }
}

static void test_width(void **state)
{
    (void)state;
    assert_int_equal(hl_out_width(""), 0);
    assert_int_equal(hl_out_width("abc"), 3);
    assert_int_equal(hl_out_width("t\xc3\xa9l\xc3\xa9"), 4);
    assert_int_equal(hl_out_width("\xf0\x9f\xa4\x96!"), 2);
}

static void test_span(void **state)
{
    (void)state;
    static const struct {
        int64_t ms;
        const char *want;
    } cases[] = {
        {0, "0s"},
        {999, "0s"},
        {1000, "1s"},
        {59999, "59s"},
        {60000, "1m"},
        {3599999, "59m"},
        {3600000, "1h"},
        {47 * 3600000LL, "47h"},
        {48 * 3600000LL, "2d"},
        {-90000, "1m"},
        {400LL * 86400000, "400d"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[16];
        hl_out_span(cases[i].ms, out, sizeof(out));
        assert_string_equal(out, cases[i].want);
    }
}

static void test_when(void **state)
{
    (void)state;
    setenv("TZ", "UTC", 1);
    tzset();
    char out[96];
    int64_t at = 1796049145000; /* 2026-11-30T14:32:25Z */
    hl_out_when(at, at + 120000, out, sizeof(out));
    assert_string_equal(out, "2026-11-30 14:32:25 (2m ago)");
    hl_out_when(at, at - 5000, out, sizeof(out));
    assert_string_equal(out, "2026-11-30 14:32:25 (in 5s)");
    hl_out_when(at, at + 500, out, sizeof(out));
    assert_string_equal(out, "2026-11-30 14:32:25 (0s ago)");
    hl_out_when(0, at, out, sizeof(out));
    assert_string_equal(out, "-");
    /* local time: UTC+9 is nine hours on */
    setenv("TZ", "XYZ-9", 1);
    tzset();
    hl_out_when(at, at + 3 * 86400000LL, out, sizeof(out));
    assert_string_equal(out, "2026-11-30 23:32:25 (3d ago)");
    hl_out_when_iso("2026-11-30T14:32:25.000Z", at, out, sizeof(out));
    assert_string_equal(out, "2026-11-30 23:32:25 (0s ago)");
    setenv("TZ", "UTC", 1);
    tzset();
    hl_out_when_iso(NULL, at, out, sizeof(out));
    assert_string_equal(out, "-");
    hl_out_when_iso("soon\x1b", at, out, sizeof(out));
    assert_string_equal(out, "soon?");
}

static void test_state_color(void **state)
{
    (void)state;
    assert_string_equal(hl_out_state_color("succeeded"), "\033[32m");
    assert_string_equal(hl_out_state_color("failed"), "\033[31m");
    assert_string_equal(hl_out_state_color("pending"), "\033[33m");
    assert_string_equal(hl_out_state_color("whatever"), "");
    assert_string_equal(hl_out_state_color(NULL), "");
}

/* Prints t into a string (caller frees). */
static char *printed(const struct hl_table *t, int color)
{
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    assert_non_null(f);
    hl_table_print(t, f, color);
    fclose(f);
    return s;
}

static void test_table(void **state)
{
    (void)state;
    static const char *const head[] = {"ID", "STATUS", "NOTE"};
    struct hl_table *t = hl_table_new(3, head);
    assert_non_null(t);
    static const char *const r1[] = {"dlv_1", "succeeded", "ok"};
    static const char *const r2[] = {"dlv_1234", "failed", "t\xc3\xa9l\xc3\xa9\x1b[0m"};
    static const char *const r3[] = {"dlv_2", NULL, "x"};
    static const char *const colors[] = {NULL, "\033[31m", NULL};
    assert_int_equal(hl_table_add(t, r1, NULL), 0);
    assert_int_equal(hl_table_add(t, r2, colors), 0);
    assert_int_equal(hl_table_add(t, r3, NULL), 0);
    char *s = printed(t, 0);
    /* columns as wide as their widest cell plus two; multibyte text counted by columns; the
     * escape made clean; the last column not padded */
    assert_string_equal(s, "ID        STATUS     NOTE\n"
                           "dlv_1     succeeded  ok\n"
                           "dlv_1234  failed     t\xc3\xa9l\xc3\xa9?[0m\n"
                           "dlv_2     -          x\n");
    free(s);
    s = printed(t, 1);
    assert_non_null(strstr(s, "\033[1mID\033[0m"));
    assert_non_null(strstr(s, "\033[31mfailed\033[0m     "));
    assert_null(strstr(s, "\033[31msucceeded"));
    free(s);
    hl_table_free(t);
    hl_table_free(NULL);
}

static void test_field(void **state)
{
    (void)state;
    char *s = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&s, &n);
    hl_out_field(f, 16, "status", "failed", "\033[31m", 0);
    hl_out_field(f, 16, "status", "failed", "\033[31m", 1);
    hl_out_field(f, 16, "description",
                 "a\x07"
                 "b",
                 NULL, 1);
    hl_out_field(f, 4, "a long label", NULL, NULL, 0);
    fclose(f);
    assert_string_equal(s, "status:         failed\n"
                           "status:         \033[31mfailed\033[0m\n"
                           "description:    a?b\n"
                           "a long label: -\n");
    free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_clean),       cmocka_unit_test(test_width),
        cmocka_unit_test(test_span),        cmocka_unit_test(test_when),
        cmocka_unit_test(test_state_color), cmocka_unit_test(test_table),
        cmocka_unit_test(test_field),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
