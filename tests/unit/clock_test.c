/* Tests for src/common/clock.c: ISO 8601 formatting and parsing, the clocks.
 *
 * Expected epoch milliseconds come from Python's datetime.fromisoformat(...).timestamp(), not from
 * this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/rand.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"

struct iso_case {
    int64_t ms;
    const char *text;
};

static const struct iso_case iso_cases[] = {
    {0, "1970-01-01T00:00:00.000Z"},
    {1, "1970-01-01T00:00:00.001Z"},
    {999, "1970-01-01T00:00:00.999Z"},
    {1000, "1970-01-01T00:00:01.000Z"},
    {-1, "1969-12-31T23:59:59.999Z"},
    {-1000, "1969-12-31T23:59:59.000Z"},
    {-1001, "1969-12-31T23:59:58.999Z"},
    {1737383722123, "2025-01-20T14:35:22.123Z"},
    {1709164800000, "2024-02-29T00:00:00.000Z"},
    {951868799999, "2000-02-29T23:59:59.999Z"},
    {1483228799000, "2016-12-31T23:59:59.000Z"},
    {2147483648000, "2038-01-19T03:14:08.000Z"},
    {1740787200000, "2025-03-01T00:00:00.000Z"},
    {1735689599000, "2024-12-31T23:59:59.000Z"},
    {253402300799999, "9999-12-31T23:59:59.999Z"},
    {-62135596800000, "0001-01-01T00:00:00.000Z"},
};

static void test_iso(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(iso_cases) / sizeof(iso_cases[0]); i++) {
        char out[HL_ISO_MAX + 8];
        memset(out, '#', sizeof(out));
        hl_time_iso(iso_cases[i].ms, out);
        assert_string_equal(out, iso_cases[i].text);
        /* HL_ISO_MAX is enough and nothing is written past the NUL */
        assert_true(strlen(out) < HL_ISO_MAX);
        for (size_t k = strlen(out) + 1; k < sizeof(out); k++)
            assert_int_equal(out[k], '#');
    }
}

#define BAD INT64_MIN

struct parse_case {
    const char *text;
    int64_t ms; /* BAD: HL_EINVAL */
};

static const struct parse_case parse_cases[] = {
    /* Z, with and without fractions */
    {"2025-01-20T14:35:22Z", 1737383722000},
    {"2025-01-20T14:35:22.123Z", 1737383722123},
    {"2025-01-20T14:35:22.1Z", 1737383722100},
    {"2025-01-20T14:35:22.12Z", 1737383722120},
    {"2025-01-20T14:35:22.05Z", 1737383722050},
    {"2025-01-20T14:35:22.000Z", 1737383722000},
    /* more digits than milliseconds: cut, not rounded */
    {"2025-01-20T14:35:22.123456Z", 1737383722123},
    {"2025-01-20T14:35:22.999999999Z", 1737383722999},
    {"2025-01-20T14:35:22.1234567891Z", BAD},
    {"2025-01-20T14:35:22.Z", BAD},
    {"2025-01-20T14:35:22,123Z", BAD},
    /* RFC 3339 lets the separators be lowercase or a space */
    {"2025-01-20t14:35:22z", 1737383722000},
    {"2025-01-20 14:35:22Z", 1737383722000},
    {"1970-01-01T00:00:00Z", 0},
    {"1969-12-31T23:59:59.999Z", -1},
    /* offsets */
    {"2025-01-20T14:35:22+00:00", 1737383722000},
    {"2025-01-20T14:35:22-00:00", 1737383722000},
    {"2025-01-20T14:35:22+01:00", 1737380122000},
    {"2025-01-20T14:35:22-05:30", 1737403522000},
    {"2025-01-01T00:30:00+01:00", 1735687800000},
    {"2025-01-20T14:35:22.123+01:00", 1737380122123},
    {"2025-01-20T14:35:22+23:59", 1737383722000 - (23 * 60 + 59) * 60000LL},
    {"2025-01-20T14:35:22+24:00", BAD},
    {"2025-01-20T14:35:22+01:60", BAD},
    {"2025-01-20T14:35:22+0100", BAD},
    {"2025-01-20T14:35:22+01", BAD},
    {"2025-01-20T14:35:22+1:00", BAD},
    {"2025-01-20T14:35:22 +01:00", BAD},
    /* leap days */
    {"2024-02-29T00:00:00Z", 1709164800000},
    {"2000-02-29T23:59:59.999Z", 951868799999},
    {"2400-02-29T00:00:00Z", 13574563200000},
    {"2023-02-29T00:00:00Z", BAD},
    {"1900-02-29T00:00:00Z", BAD},
    {"2100-02-29T00:00:00Z", BAD},
    {"2024-02-30T00:00:00Z", BAD},
    /* month lengths and ranges */
    {"2025-01-31T00:00:00Z", 1738281600000},
    {"2025-04-31T00:00:00Z", BAD},
    {"2025-06-31T00:00:00Z", BAD},
    {"2025-09-31T00:00:00Z", BAD},
    {"2025-11-31T00:00:00Z", BAD},
    {"2025-12-32T00:00:00Z", BAD},
    {"2025-13-01T00:00:00Z", BAD},
    {"2025-00-01T00:00:00Z", BAD},
    {"2025-01-00T00:00:00Z", BAD},
    {"2025-01-20T24:00:00Z", BAD},
    {"2025-01-20T23:60:00Z", BAD},
    /* a leap second reads as the second before it */
    {"2016-12-31T23:59:60Z", 1483228799000},
    {"2016-12-31T23:59:61Z", BAD},
    /* garbage and near misses */
    {"", BAD},
    {"Z", BAD},
    {"2025", BAD},
    {"2025-01-20", BAD}, /* a date is no instant (hl_time_or_date_parse takes it) */
    {"2025-01-20T14:35Z", BAD},
    {"2025-01-20T14:35:22", BAD},
    {"2025-01-20T14:35:22ZZ", BAD},
    {"2025-01-20T14:35:22Z ", BAD},
    {" 2025-01-20T14:35:22Z", BAD},
    {"2025-1-20T14:35:22Z", BAD},
    {"2025-01-20T4:35:22Z", BAD},
    {"20250120T143522Z", BAD},
    {"2025/01/20T14:35:22Z", BAD},
    {"2025-01-20X14:35:22Z", BAD},
    {"+2025-01-20T14:35:22Z", BAD},
    {"-2025-01-20T14:35:22Z", BAD},
    {"2025-0a-20T14:35:22Z", BAD},
    {"Mon, 20 Jan 2025 14:35:22 GMT", BAD},
    {"1737383722", BAD},
    {"2025-01-20T14:35:22.12a3Z", BAD},
};

/* Runs a table of cases through parse (hl_time_parse or hl_time_or_date_parse). */
static void run_parse_cases(const struct parse_case *cases, size_t n,
                            int (*parse)(const char *, size_t, int64_t *))
{
    for (size_t i = 0; i < n; i++) {
        const struct parse_case *c = &cases[i];
        int64_t ms = 42;
        size_t len = strlen(c->text);
        /* an exact-size copy: ASan catches a read past len */
        char *copy = test_malloc(len ? len : 1);
        memcpy(copy, c->text, len);
        print_message("case %zu: \"%s\"\n", i, c->text);
        int rc = parse(copy, len, &ms);
        test_free(copy);
        if (c->ms == BAD) {
            assert_int_equal(rc, HL_EINVAL);
        } else {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(ms, c->ms);
        }
    }
}

static void test_parse_table(void **state)
{
    (void)state;
    run_parse_cases(parse_cases, sizeof(parse_cases) / sizeof(parse_cases[0]), hl_time_parse);
}

/* Bounds of a time window: an instant as above, or a calendar date alone, its midnight UTC. */
static const struct parse_case window_cases[] = {
    {"2025-01-20", 1737331200000},
    {"1970-01-01", 0},
    {"2024-02-29", 1709164800000},
    {"2025-01-20T14:35:22Z", 1737383722000},
    {"2025-01-20T14:35:22.5+01:00", 1737380122500},
    {"2023-02-29", BAD},
    {"2025-04-31", BAD},
    {"2025-13-01", BAD},
    {"2025-01-20T", BAD},
    {"2025-01-20Z", BAD},
    {"2025-01-20+01:00", BAD},
    {"2025-01-20 ", BAD},
    {"2025-01-20T14:35:22", BAD},
    {"2025-01", BAD},
    {"2025-01-2", BAD},
    {"20250120", BAD},
    {"", BAD},
};

static void test_parse_window_table(void **state)
{
    (void)state;
    run_parse_cases(window_cases, sizeof(window_cases) / sizeof(window_cases[0]),
                    hl_time_or_date_parse);
}

static void test_parse_bounded(void **state)
{
    (void)state;
    const char *s = "2025-01-20T14:35:22Zjunk";
    int64_t ms = 0;
    /* the length says where the text ends */
    assert_int_equal(hl_time_parse(s, 20, &ms), HL_OK);
    assert_int_equal(ms, 1737383722000);
    assert_int_equal(hl_time_parse(s, 19, &ms), HL_EINVAL);
    assert_int_equal(hl_time_parse(s, 21, &ms), HL_EINVAL);
    assert_int_equal(hl_time_parse(s, 0, &ms), HL_EINVAL);
    /* a NUL inside the length is not the end */
    assert_int_equal(hl_time_parse("2025-01-20T14:35:22Z\0", 21, &ms), HL_EINVAL);
}

static void test_roundtrip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(iso_cases) / sizeof(iso_cases[0]); i++) {
        int64_t ms = 0;
        const char *t = iso_cases[i].text;
        assert_int_equal(hl_time_parse(t, strlen(t), &ms), HL_OK);
        assert_int_equal(ms, iso_cases[i].ms);
    }
    /* random instants from year 1 to 9999 */
    const int64_t lo = -62135596800000, hi = 253402300799999;
    for (int i = 0; i < 20000; i++) {
        uint64_t r;
        assert_int_equal(RAND_bytes((unsigned char *)&r, sizeof(r)), 1);
        int64_t ms = lo + (int64_t)(r % (uint64_t)(hi - lo + 1)), back = 0;
        char text[HL_ISO_MAX];
        hl_time_iso(ms, text);
        assert_int_equal(strlen(text), 24);
        assert_int_equal(hl_time_parse(text, strlen(text), &back), HL_OK);
        if (back != ms)
            fail_msg("%s read back as %lld, not %lld", text, (long long)back, (long long)ms);
    }
}

static void test_clocks(void **state)
{
    (void)state;
    int64_t now = hl_now_ms();
    /* after 2024-01-01 and before 2100-01-01 */
    assert_true(now > 1704067200000);
    assert_true(now < 4102444800000);
    int64_t m0 = hl_mono_ms(), u0 = hl_mono_us();
    for (int i = 0; i < 1000; i++) {
        int64_t m1 = hl_mono_ms(), u1 = hl_mono_us();
        assert_true(m1 >= m0);
        assert_true(u1 >= u0);
        m0 = m1;
        u0 = u1;
    }
    /* the two monotonic clocks agree */
    int64_t ms = hl_mono_ms(), us = hl_mono_us();
    assert_true(us / 1000 - ms >= 0);
    assert_true(us / 1000 - ms <= 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_iso),
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_parse_window_table),
        cmocka_unit_test(test_parse_bounded),
        cmocka_unit_test(test_roundtrip),
        cmocka_unit_test(test_clocks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
