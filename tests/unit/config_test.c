/* Tests for src/common/config.c: integer and duration options. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <limits.h>

#include "common/config.h"
#include "common/err.h"

#define BAD INT64_MIN

struct int_case {
    const char *text;
    long long min, max;
    long long want; /* BAD: HL_EINVAL */
};

static const struct int_case int_cases[] = {
    {"0", 0, 10, 0},
    {"10", 0, 10, 10},
    {"7", 1, 256, 7},
    {"-5", -10, 10, -5},
    {"+5", 0, 10, 5},
    {"007", 0, 10, 7},
    {"65535", 0, 65535, 65535},
    {"9223372036854775807", 0, LLONG_MAX, LLONG_MAX},
    /* out of range */
    {"11", 0, 10, BAD},
    {"-1", 0, 10, BAD},
    {"0", 1, 256, BAD},
    {"65536", 0, 65535, BAD},
    /* overflow */
    {"9223372036854775808", 0, LLONG_MAX, BAD},
    {"-9223372036854775809", LLONG_MIN, 0, BAD},
    {"99999999999999999999", 0, LLONG_MAX, BAD},
    /* not a number, or trailing text */
    {"", 0, 10, BAD},
    {"abc", 0, 10, BAD},
    {"5x", 0, 10, BAD},
    {"5 ", 0, 10, BAD},
    {"5.0", 0, 10, BAD},
    {"0x5", 0, 10, BAD},
    {"1e3", 0, 10000, BAD},
    {"-", -10, 10, BAD},
};

/* LLONG_MIN is the table's BAD marker, so it gets a test of its own */
static void test_int_min(void **state)
{
    (void)state;
    long long v = 0;
    assert_int_equal(hl_parse_int("-9223372036854775808", LLONG_MIN, 0, &v), HL_OK);
    assert_true(v == LLONG_MIN);
}

static void test_int_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        const struct int_case *c = &int_cases[i];
        print_message("'%s' in [%lld, %lld]\n", c->text, c->min, c->max);
        long long v = 12345;
        int rc = hl_parse_int(c->text, c->min, c->max, &v);
        if (c->want == BAD) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(v, 12345); /* left alone */
        } else {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(v, c->want);
        }
    }
}

struct duration_case {
    const char *text;
    int64_t want; /* BAD: HL_EINVAL */
};

static const struct duration_case duration_cases[] = {
    {"0", 0},
    {"30", 30000},
    {"0ms", 0},
    {"250ms", 250},
    {"1s", 1000},
    {"30s", 30000},
    {"2m", 120000},
    {"1h", 3600000},
    {"24h", 86400000},
    {"5d", 432000000},
    {"106751991167d", 9223372036828800000},
    {"9223372036854775807ms", INT64_MAX},
    {"9223372036854775s", 9223372036854775000},
    /* would overflow int64 milliseconds */
    {"9223372036854776s", BAD},
    {"106751991168d", BAD},
    {"9223372036854775808ms", BAD},
    /* negative */
    {"-1s", BAD},
    {"-1", BAD},
    /* no number: a bare unit is not zero */
    {"", BAD},
    {"ms", BAD},
    {"s", BAD},
    {"d", BAD},
    {"abc", BAD},
    /* unknown or malformed unit */
    {"5x", BAD},
    {"5 s", BAD},
    {"5sec", BAD},
    {"5S", BAD},
    {"5w", BAD},
    {"5us", BAD},
    {"1.5s", BAD},
    {"5ms ", BAD},
};

static void test_duration_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(duration_cases) / sizeof(duration_cases[0]); i++) {
        const struct duration_case *c = &duration_cases[i];
        print_message("'%s'\n", c->text);
        int64_t ms = 12345;
        int rc = hl_parse_duration(c->text, &ms);
        if (c->want == BAD) {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(ms, 12345); /* left alone */
        } else {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(ms, c->want);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_int_table),
        cmocka_unit_test(test_int_min),
        cmocka_unit_test(test_duration_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
