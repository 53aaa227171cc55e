/* hl_json_write must produce exactly what JavaScript's JSON.stringify(JSON.parse(x)) produces.
 * The expected texts in the tables were produced by node v20, not by this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/json.h"
#include "need.h"

#define OUT_MAX (1u << 20)

/* JSON text in, JSON.stringify(JSON.parse(text)) out (from node). */
static const struct {
    const char *in;
    const char *want;
} roundtrip_cases[] = {
    {"0.1", "0.1"},
    {"0.7", "0.7"},
    {"0.3333333333333333", "0.3333333333333333"},
    {"123456789012345680000", "123456789012345680000"},
    {"1e21", "1e+21"},
    {"1e-7", "1e-7"},
    {"1.5e-7", "1.5e-7"},
    {"5e-324", "5e-324"},
    {"1.7976931348623157e308", "1.7976931348623157e+308"},
    {"-0.0", "0"},
    {"-0", "0"},
    {"0", "0"},
    {"100", "100"},
    {"1e2", "100"},
    {"2.5e-3", "0.0025"},
    {"1.0", "1"},
    {"-1.5", "-1.5"},
    {"1e20", "100000000000000000000"},
    {"123e18", "123000000000000000000"},
    {"0.000001", "0.000001"},
    {"0.0000001", "1e-7"},
    {"1e-6", "0.000001"},
    {"-1e-7", "-1e-7"},
    {"9007199254740993", "9007199254740992"},
    {"9007199254740992", "9007199254740992"},
    {"-9007199254740993", "-9007199254740992"},
    {"-9007199254740992", "-9007199254740992"},
    {"9223372036854775807", "9223372036854776000"},
    {"-9223372036854775808", "-9223372036854776000"},
    {"18014398509481985", "18014398509481984"},
    {"123456789012345678", "123456789012345680"},
    {"1e300", "1e+300"},
    {"2.2250738585072014e-308", "2.2250738585072014e-308"},
    {"4.9e-324", "5e-324"},
    {"1e-400", "0"},
    {"0.1e1", "1"},
    {"12345678901234567890e-10", "1234567890.1234567"},
    {"1E+2", "100"},
    {"1e+21", "1e+21"},
    {"1.5e300", "1.5e+300"},
    {"3.14159", "3.14159"},
    {"0.30000000000000004", "0.30000000000000004"},
    {"4294967295.0", "4294967295"},
    {"1e16", "10000000000000000"},
    {"1.25e-5", "0.0000125"},
    {"999999999999999999999.0", "1e+21"},
    {"0.00001234", "0.00001234"},
    {"-5e-324", "-5e-324"},
    {"1e-323", "1e-323"},
    {"2e-7", "2e-7"},
    {"100000000000000000000.0", "100000000000000000000"},
    {"1.7976931348623157e+308", "1.7976931348623157e+308"},
    {"0.1e-6", "1e-7"},
    {"1e0", "1"},
    {"-1e21", "-1e+21"},
    {"8.98846567431158e307", "8.98846567431158e+307"},
    {"2.9802322387695312e-8", "2.9802322387695312e-8"},
    {"1.1920928955078125e-7", "1.1920928955078125e-7"},
    {"\"abc\"", "\"abc\""},
    {"\"\"", "\"\""},
    {"\"a\\\"b\\\\c\"", "\"a\\\"b\\\\c\""},
    {"\"\\/\"", "\"/\""},
    {"\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\u0008\\u0009\\u000a\\u000b\\u000c\\u000d"
     "\\u000e\\u000f\\u0010\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\"
     "u001b\\u001c\\u001d\\u001e\\u001f\"",
     "\"\\u0001\\u0002\\u0003\\u0004\\u0005\\u0006\\u0007\\b\\t\\n\\u000b\\f\\r\\u000e\\u000f\\u001"
     "0\\u0011\\u0012\\u0013\\u0014\\u0015\\u0016\\u0017\\u0018\\u0019\\u001a\\u001b\\u001c\\u001d"
     "\\u001e\\u001f\""},
    {"\"\\b\\f\\n\\r\\t\"", "\"\\b\\f\\n\\r\\t\""},
    {"\"\\u007f\\u0080\"", "\"\177\302\200\""},
    {"\"\\u2028\\u2029\"", "\"\342\200\250\342\200\251\""},
    {"\"\303\251\303\274\344\270\255\346\226\207\"",
     "\"\303\251\303\274\344\270\255\346\226\207\""},
    {"\"\\ud83d\\ude00\"", "\"\360\237\230\200\""},
    {"\"\360\237\230\200\360\237\221\250\342\200\215\360\237\221\251\"",
     "\"\360\237\230\200\360\237\221\250\342\200\215\360\237\221\251\""},
    {"\"\\u00E9\\u00e9\"", "\"\303\251\303\251\""},
    {"\"\\uFEFF\357\273\277\"", "\"\357\273\277\357\273\277\""},
    {"\"\\uffff\\udbff\\udfff\"", "\"\357\277\277\364\217\277\277\""},
    {"\"tab\\there\"", "\"tab\\there\""},
    {"\"<script>&'\"", "\"<script>&'\""},
    {"{\"b\":1,\"a\":2}", "{\"b\":1,\"a\":2}"},
    {"{\"10\":1,\"2\":2,\"01\":3,\"-1\":4,\"4294967295\":5,\"4294967294\":6,\"a\":7,\"0\":8,\"1."
     "5\":9,\"\":10,\" 1\":11,\"1 \":12,\"+1\":13,\"1e1\":14}",
     "{\"0\":8,\"2\":2,\"10\":1,\"4294967294\":6,\"01\":3,\"-1\":4,\"4294967295\":5,\"a\":7,\"1."
     "5\":9,\"\":10,\" 1\":11,\"1 \":12,\"+1\":13,\"1e1\":14}"},
    {"{\"x\":{\"3\":1,\"1\":{\"z\":1,\"0\":2}},\"arr\":[{\"2\":1,\"1\":2}]}",
     "{\"x\":{\"1\":{\"0\":2,\"z\":1},\"3\":1},\"arr\":[{\"1\":2,\"2\":1}]}"},
    {"{\"00\":1,\"0\":2}", "{\"0\":2,\"00\":1}"},
    {"{\"4294967296\":1,\"99999999999\":2,\"4294967294\":3,\"12\":4}",
     "{\"12\":4,\"4294967294\":3,\"4294967296\":1,\"99999999999\":2}"},
    {"{\"\\n\":1,\"\\u0001\":2,\"\\u2028\":3,\"\360\237\230\200\":4,\"\\\"\":5}",
     "{\"\\n\":1,\"\\u0001\":2,\"\342\200\250\":3,\"\360\237\230\200\":4,\"\\\"\":5}"},
    {"[]", "[]"},
    {"{}", "{}"},
    {"[[]]", "[[]]"},
    {"[{}]", "[{}]"},
    {"[1,[2,[3,[]]]]", "[1,[2,[3,[]]]]"},
    {"[true,false,null]", "[true,false,null]"},
    {" { \"a\" : [ 1 , 2.50 , -0 ] , \"b\" : { } }\012", "{\"a\":[1,2.5,0],\"b\":{}}"},
    {"{\"name\":\"agent "
     "\\\"007\\\"\",\"config\":{\"temperature\":0.7,\"max\":1e21,\"tiny\":1.5e-7,\"list\":[1.0,2,"
     "3e0],\"9\":\"nine\",\"1\":\"one\"},\"id\":9007199254740993}",
     "{\"name\":\"agent "
     "\\\"007\\\"\",\"config\":{\"1\":\"one\",\"9\":\"nine\",\"temperature\":0.7,\"max\":1e+21,"
     "\"tiny\":1.5e-7,\"list\":[1,2,3]},\"id\":9007199254740992}"},
    {"\"str\"", "\"str\""},
    {"true", "true"},
    {"false", "false"},
    {"null", "null"},
    {"42", "42"},
};

/* Doubles and String(x) from node. */
static const struct {
    double d;
    const char *want;
} num_cases[] = {
    {0.1, "0.1"},
    {0.7, "0.7"},
    {1.0 / 3, "0.3333333333333333"},
    {2.0 / 3, "0.6666666666666666"},
    {123456789012345680000.0, "123456789012345680000"},
    {1e21, "1e+21"},
    {1e-7, "1e-7"},
    {1.5e-7, "1.5e-7"},
    {5e-324, "5e-324"},
    {1.7976931348623157e308, "1.7976931348623157e+308"},
    {-0.0, "0"},
    {0.0, "0"},
    {100.0, "100"},
    {1e2, "100"},
    {2.5e-3, "0.0025"},
    {1.0, "1"},
    {-1.0, "-1"},
    {0.1 + 0.2, "0.30000000000000004"},
    {999999999999999900000.0, "999999999999999900000"},
    {9.9999999999999987e+20, "999999999999999900000"},
    {1.0000000000000001e+21, "1.0000000000000001e+21"},
    {9.9999999999999982e-8, "9.999999999999998e-8"},
    {1.0000000000000001e-7, "1.0000000000000001e-7"},
    {0.000001, "0.000001"},
    {9.9999999999999974e-7, "9.999999999999997e-7"},
    {4503599627370496.5, "4503599627370496"},
    {9007199254740993.0, "9007199254740992"},
    {1.2345678901234567e-300, "1.2345678901234568e-300"},
    {-1.5e-7, "-1.5e-7"},
    {-123.456, "-123.456"},
    {3.0e10, "30000000000"},
    {2.2250738585072014e-308, "2.2250738585072014e-308"},
    {2.225073858507201e-308, "2.225073858507201e-308"},
    {0x1p-1022, "2.2250738585072014e-308"},
    {0x1p-1074, "5e-324"},
    {0x1p-1017, "7.120236347223045e-307"},
    {0x1p-140, "7.174648137343064e-43"},
    {0x1p-1007, "7.291122019556398e-304"},
    {0x1p-496, "4.887898181599368e-150"},
    {0x1p1023, "8.98846567431158e+307"},
    {0x1p63, "9223372036854776000"},
    {0x1p70, "1.1805916207174113e+21"},
    {0x1.fffffffffffffp1023, "1.7976931348623157e+308"},
    {0x0.fffffffffffffp-1022, "2.225073858507201e-308"},
    {299792458.0, "299792458"},
    {0.000123, "0.000123"},
    {1.7e-6, "0.0000017"},
};

/* int64 and JSON.stringify(Number(BigInt(v))) from node. */
static const struct {
    int64_t v;
    const char *want;
} int_cases[] = {
    {INT64_C(0), "0"},
    {INT64_C(1), "1"},
    {INT64_C(-1), "-1"},
    {INT64_C(42), "42"},
    {INT64_C(-42), "-42"},
    {INT64_C(9007199254740991), "9007199254740991"},
    {INT64_C(9007199254740992), "9007199254740992"},
    {INT64_C(9007199254740993), "9007199254740992"},
    {INT64_C(-9007199254740992), "-9007199254740992"},
    {INT64_C(-9007199254740993), "-9007199254740992"},
    {INT64_C(9007199254740995), "9007199254740996"},
    {INT64_C(18014398509481985), "18014398509481984"},
    {INT64_C(123456789012345678), "123456789012345680"},
    {INT64_C(9223372036854775807), "9223372036854776000"},
    {INT64_C(-9223372036854775807), "-9223372036854776000"},
    {INT64_MIN, "-9223372036854776000"},
    {INT64_C(1000000000000000000), "1000000000000000000"},
};

static void test_roundtrip_table(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    for (size_t i = 0; i < sizeof(roundtrip_cases) / sizeof(roundtrip_cases[0]); i++) {
        const char *in = roundtrip_cases[i].in;
        char err[160] = "";
        json_t *v = hl_json_parse(in, strlen(in), err, sizeof(err));
        if (!v)
            fail_msg("case %zu: %s: parse failed: %s", i, in, err);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write(&b, v), HL_OK);
        if (strcmp(b.p, roundtrip_cases[i].want) != 0)
            fail_msg("case %zu: %s\n got  %s\n want %s", i, in, b.p, roundtrip_cases[i].want);
        json_decref(v);
    }
    hl_buf_free(&b);
}

static void test_write_num(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    for (size_t i = 0; i < sizeof(num_cases) / sizeof(num_cases[0]); i++) {
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_num(&b, num_cases[i].d), HL_OK);
        if (strcmp(b.p, num_cases[i].want) != 0)
            fail_msg("case %zu (%a): got %s want %s", i, num_cases[i].d, b.p, num_cases[i].want);
        /* The same double as a jansson real goes through hl_json_write identically. */
        json_t *r = json_real(num_cases[i].d);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write(&b, r), HL_OK);
        assert_string_equal(b.p, num_cases[i].want);
        json_decref(r);
    }
    hl_buf_reset(&b);
    assert_int_equal(hl_json_write_num(&b, NAN), HL_EINVAL);
    assert_int_equal(hl_json_write_num(&b, INFINITY), HL_EINVAL);
    assert_int_equal(hl_json_write_num(&b, -INFINITY), HL_EINVAL);
    assert_int_equal(b.len, 0);
    hl_buf_free(&b);
}

static void test_write_int(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    for (size_t i = 0; i < sizeof(int_cases) / sizeof(int_cases[0]); i++) {
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_int(&b, int_cases[i].v), HL_OK);
        if (strcmp(b.p, int_cases[i].want) != 0)
            fail_msg("case %zu: got %s want %s", i, b.p, int_cases[i].want);
        json_t *n = json_integer((json_int_t)int_cases[i].v);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write(&b, n), HL_OK);
        assert_string_equal(b.p, int_cases[i].want);
        json_decref(n);
    }
    hl_buf_free(&b);
}

/* Raw bytes (with NUL) and what node's JSON.stringify makes of the same string. */
static const struct {
    const char *in;
    size_t len;
    const char *want; /* NULL: invalid UTF-8, HL_EINVAL */
} str_cases[] = {
    {"", 0, "\"\""},
    {"a\0b", 3, "\"a\\u0000b\""},
    {"\0", 1, "\"\\u0000\""},
    {"\x1f\x7f", 2, "\"\\u001f\x7f\""},
    {"\"\\/", 3, "\"\\\"\\\\/\""},
    {"\xe2\x80\xa8\xe2\x80\xa9", 6, "\"\xe2\x80\xa8\xe2\x80\xa9\""},
    {"\xf0\x9f\x98\x80", 4, "\"\xf0\x9f\x98\x80\""},
    {"\xf4\x8f\xbf\xbf", 4, "\"\xf4\x8f\xbf\xbf\""},
    {"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80", 14,
     "\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf0\x90\x80\x80\""},
    {"\xff", 1, NULL},
    {"\x80", 1, NULL},
    {"\xc0\x80", 2, NULL},         /* overlong NUL */
    {"\xc1\xbf", 2, NULL},         /* overlong */
    {"\xe0\x80\x80", 3, NULL},     /* overlong */
    {"\xe0\x9f\xbf", 3, NULL},     /* overlong */
    {"\xf0\x80\x80\x80", 4, NULL}, /* overlong */
    {"\xed\xa0\x80", 3, NULL},     /* U+D800 */
    {"\xed\xbf\xbf", 3, NULL},     /* U+DFFF */
    {"\xf4\x90\x80\x80", 4, NULL}, /* above U+10FFFF */
    {"\xf8\x88\x80\x80\x80", 5, NULL},
    {"\xe2\x80", 2, NULL}, /* truncated */
    {"abc\xc3", 4, NULL},  /* truncated at the end */
    {"\xc3(", 2, NULL},    /* bad continuation */
    {"ok\xe2\x28\xa1", 5, NULL},
};

static void test_write_str(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    for (size_t i = 0; i < sizeof(str_cases) / sizeof(str_cases[0]); i++) {
        hl_buf_reset(&b);
        assert_int_equal(hl_buf_puts(&b, "x"), HL_OK);
        int rc = hl_json_write_str(&b, str_cases[i].in, str_cases[i].len);
        if (!str_cases[i].want) {
            if (rc != HL_EINVAL)
                fail_msg("case %zu: want HL_EINVAL, got %d", i, rc);
            assert_string_equal(b.p, "x"); /* nothing appended */
            continue;
        }
        if (rc != HL_OK)
            fail_msg("case %zu: got %d", i, rc);
        assert_string_equal(b.p + 1, str_cases[i].want);

        /* A jansson string holding the same bytes writes the same. */
        json_t *s = json_stringn(str_cases[i].in, str_cases[i].len);
        assert_non_null(s);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write(&b, s), HL_OK);
        assert_string_equal(b.p, str_cases[i].want);
        json_decref(s);
    }
    hl_buf_free(&b);
}

/* Every code point below 0x20, one at a time, against the rule node follows. */
static void test_each_control(void **state)
{
    (void)state;
    static const char *const want[32] = {
        "\\u0000", "\\u0001", "\\u0002", "\\u0003", "\\u0004", "\\u0005", "\\u0006", "\\u0007",
        "\\b",     "\\t",     "\\n",     "\\u000b", "\\f",     "\\r",     "\\u000e", "\\u000f",
        "\\u0010", "\\u0011", "\\u0012", "\\u0013", "\\u0014", "\\u0015", "\\u0016", "\\u0017",
        "\\u0018", "\\u0019", "\\u001a", "\\u001b", "\\u001c", "\\u001d", "\\u001e", "\\u001f",
    };
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    for (int c = 0; c < 32; c++) {
        char in[3] = {'a', (char)c, 'z'};
        char expect[16];
        snprintf(expect, sizeof(expect), "\"a%sz\"", want[c]);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_str(&b, in, 3), HL_OK);
        assert_string_equal(b.p, expect);
    }
    hl_buf_free(&b);
}

/* Input JSON.parse accepts but hookline refuses (jansson's limits and ours), and plain garbage. */
static const char *const bad_inputs[] = {
    "",
    "   ",
    "[1,]",
    "{\"a\":1,}",
    "{\"a\":1,\"a\":2}", /* duplicate keys: JS keeps the last, we refuse */
    "[1] x",
    "{} {}",
    "\"\\u0000\"",
    "{\"a\\u0000b\":1}",
    "1e400",
    "-1e400",
    "[1e999]",
    "\"\\ud800\"",
    "\"\\udc00x\"",
    "\"\xff\"",
    "\"\xed\xa0\x80\"",
    "'single'",
    "{a:1}",
    "NaN",
    "Infinity",
    "01",
    "1.",
    ".5",
    "+1",
    "0x10",
    "\"tab\there\"",
    "[\"a\"\"b\"]",
    "tru",
    "nul",
};

static void test_parse_rejects(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_inputs) / sizeof(bad_inputs[0]); i++) {
        char err[128] = "";
        json_t *v = hl_json_parse(bad_inputs[i], strlen(bad_inputs[i]), err, sizeof(err));
        if (v)
            fail_msg("case %zu: %s: accepted", i, bad_inputs[i]);
        assert_true(strlen(err) > 0);
        for (const char *c = err; *c; c++)
            assert_true(*c >= 0x20 && *c < 0x7f);
    }
    /* Bytes after a valid document, NUL included, are garbage too. */
    assert_null(hl_json_parse("{}\0", 3, NULL, 0));
    /* A short error buffer is truncated, never overrun. */
    char small[8];
    memset(small, 'x', sizeof(small));
    assert_null(hl_json_parse("[", 1, small, 4));
    assert_int_equal(strlen(small), 3);
    assert_int_equal(small[4], 'x');
    assert_null(hl_json_parse(NULL, 0, NULL, 0));

    char err[128];
    assert_null(hl_json_parse("{\n  \"a\": tru\n}", 15, err, sizeof(err)));
    assert_non_null(strstr(err, "line 2"));
}

/* Numbers come back typed as JavaScript sees them. */
static void test_parse_numbers(void **state)
{
    (void)state;
    const char *in = "[1.0, 7e0, -0.0, 1.5, 9007199254740993, 9007199254740992.0, "
                     "9007199254740994.0, -1e2, 1e-400]";
    json_t *v = hl_json_parse(in, strlen(in), NULL, 0);
    assert_non_null(v);
    assert_true(json_is_integer(json_array_get(v, 0)));
    assert_int_equal(json_integer_value(json_array_get(v, 0)), 1);
    assert_true(json_is_integer(json_array_get(v, 1)));
    assert_int_equal(json_integer_value(json_array_get(v, 1)), 7);
    assert_true(json_is_integer(json_array_get(v, 2)));
    assert_true(json_is_real(json_array_get(v, 3)));
    assert_true(json_is_integer(json_array_get(v, 4)));
    assert_int_equal(json_integer_value(json_array_get(v, 4)), INT64_C(9007199254740993));
    assert_true(json_is_integer(json_array_get(v, 5)));
    assert_true(json_is_real(json_array_get(v, 6)));
    assert_int_equal(json_integer_value(json_array_get(v, 7)), -100);
    assert_true(json_is_integer(json_array_get(v, 8)));
    json_decref(v);

    /* An integer beyond int64 makes jansson read every number as a real; whole values within
     * 2^53 still come back as integers, larger ones as the nearest double. */
    in = "{\"big\":123456789012345680000,\"n\":[3,-4.0],\"x\":9007199254740993,\"f\":0.5}";
    v = hl_json_parse(in, strlen(in), NULL, 0);
    assert_non_null(v);
    assert_true(json_is_real(json_object_get(v, "big")));
    assert_true(json_real_value(json_object_get(v, "big")) == 123456789012345680000.0);
    assert_true(json_is_integer(json_array_get(json_object_get(v, "n"), 0)));
    assert_int_equal(json_integer_value(json_array_get(json_object_get(v, "n"), 1)), -4);
    assert_true(json_number_value(json_object_get(v, "x")) == 9007199254740992.0);
    assert_true(json_real_value(json_object_get(v, "f")) == 0.5);
    json_decref(v);

    /* A whole top-level number and one inside an object. */
    v = hl_json_parse("2.0", 3, NULL, 0);
    assert_true(json_is_integer(v));
    json_decref(v);
    v = hl_json_parse("{\"a\":{\"b\":3.0}}", 15, NULL, 0);
    assert_true(json_is_integer(json_object_get(json_object_get(v, "a"), "b")));
    json_decref(v);
}

static json_t *nest(int levels, bool objects)
{
    json_t *v = json_integer(1);
    for (int i = 0; i < levels; i++) {
        json_t *c = objects ? json_object() : json_array();
        if (objects)
            json_object_set_new(c, "k", v);
        else
            json_array_append_new(c, v);
        v = c;
    }
    return v;
}

static void test_depth(void **state)
{
    (void)state;
    struct hl_buf b, text;
    hl_buf_init(&b, OUT_MAX);
    hl_buf_init(&text, OUT_MAX);
    for (int objects = 0; objects <= 1; objects++) {
        for (int levels = HL_JSON_MAX_DEPTH - 1; levels <= HL_JSON_MAX_DEPTH + 1; levels++) {
            bool ok = levels <= HL_JSON_MAX_DEPTH;
            json_t *v = nest(levels, objects);
            hl_buf_reset(&b);
            assert_int_equal(hl_json_write(&b, v), ok ? HL_OK : HL_EINVAL);
            json_decref(v);

            hl_buf_reset(&text);
            for (int i = 0; i < levels; i++)
                assert_int_equal(hl_buf_puts(&text, objects ? "{\"k\":" : "["), HL_OK);
            assert_int_equal(hl_buf_putc(&text, '1'), HL_OK);
            for (int i = 0; i < levels; i++)
                assert_int_equal(hl_buf_putc(&text, objects ? '}' : ']'), HL_OK);
            char err[128] = "";
            v = hl_json_parse(text.p, text.len, err, sizeof(err));
            if (ok) {
                assert_non_null(v);
                hl_buf_reset(&b);
                assert_int_equal(hl_json_write(&b, v), HL_OK);
                assert_string_equal(b.p, text.p);
                json_decref(v);
            } else {
                assert_null(v);
                assert_non_null(strstr(err, "nesting"));
            }
        }
    }
    /* Far beyond jansson's own limit. */
    hl_buf_reset(&text);
    for (int i = 0; i < 5000; i++)
        assert_int_equal(hl_buf_putc(&text, '['), HL_OK);
    assert_null(hl_json_parse(text.p, text.len, NULL, 0));
    hl_buf_free(&b);
    hl_buf_free(&text);
}

static void test_limits(void **state)
{
    (void)state;
    const char *in = "{\"name\":\"a fairly long agent name\",\"n\":[1,2,3,0.7]}";
    json_t *v = hl_json_parse(in, strlen(in), NULL, 0);
    assert_non_null(v);
    struct hl_buf full;
    hl_buf_init(&full, OUT_MAX);
    assert_int_equal(hl_json_write(&full, v), HL_OK);
    /* Every maximum short of the full text fails with HL_ETOOBIG, never overruns. */
    for (size_t max = 0; max < full.len; max++) {
        struct hl_buf b;
        hl_buf_init(&b, max);
        assert_int_equal(hl_json_write(&b, v), HL_ETOOBIG);
        assert_true(b.len <= max);
        hl_buf_free(&b);
    }
    struct hl_buf b;
    hl_buf_init(&b, full.len);
    assert_int_equal(hl_json_write(&b, v), HL_OK);
    assert_string_equal(b.p, full.p);
    hl_buf_free(&b);
    hl_buf_free(&full);
    json_decref(v);

    /* A string that does not fit leaves the buffer as it was. */
    hl_buf_init(&b, 8);
    assert_int_equal(hl_buf_puts(&b, "ab"), HL_OK);
    assert_int_equal(hl_json_write_str(&b, "\n\n\n", 3), HL_ETOOBIG);
    assert_string_equal(b.p, "ab");
    hl_buf_free(&b);

    assert_int_equal(hl_json_write(&b, NULL), HL_EINVAL);
}

/* Objects built in code: index-like keys first in numeric order, then insertion order; keys with
 * NUL and escapes. */
static void test_object_order(void **state)
{
    (void)state;
    json_t *o = json_object();
    json_object_set_new(o, "z", json_integer(1));
    json_object_set_new(o, "4294967294", json_integer(2));
    json_object_set_new(o, "a", json_integer(3));
    json_object_set_new(o, "3", json_integer(4));
    json_object_set_new(o, "0", json_integer(5));
    json_object_setn_new(o, "k\0v", 3, json_integer(6));
    json_object_set_new(o, "10", json_integer(7));
    json_object_set_new(o, "4294967295", json_integer(8));
    json_object_set_new(o, "a", json_integer(9)); /* replacing keeps the place */
    struct hl_buf b;
    hl_buf_init(&b, OUT_MAX);
    assert_int_equal(hl_json_write(&b, o), HL_OK);
    /* node: JSON.stringify({z:1,"4294967294":2,a:3,"3":4,"0":5,"k\0v":6,"10":7,
     *                       "4294967295":8,a:9}) */
    assert_string_equal(b.p, "{\"0\":5,\"3\":4,\"10\":7,\"4294967294\":2,\"z\":1,\"a\":9,"
                             "\"k\\u0000v\":6,\"4294967295\":8}");
    hl_buf_free(&b);
    json_decref(o);
}

/* The random test: a few thousand values written by hl_json_write, checked by node in one run. */

static uint64_t rng_state = UINT64_C(0x9e3779b97f4a7c15);

static uint64_t rnd(void)
{
    /* xorshift64*: deterministic, so a failure can be reproduced */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * UINT64_C(2685821657736338717);
}

static uint32_t rnd_below(uint32_t n)
{
    return (uint32_t)(rnd() % n);
}

static double rnd_double(void)
{
    for (;;) {
        double d;
        switch (rnd_below(4)) {
        case 0: { /* any finite bit pattern */
            uint64_t bits = rnd();
            memcpy(&d, &bits, sizeof(d));
            break;
        }
        case 1: { /* a short decimal, as people type them */
            char txt[64];
            snprintf(txt, sizeof(txt), "%s%llue%d", rnd_below(2) ? "-" : "",
                     (unsigned long long)(rnd() % 1000000), (int)rnd_below(60) - 30);
            d = strtod(txt, NULL);
            break;
        }
        case 2: { /* up to 17 random digits at any exponent */
            char txt[64];
            int nd = 1 + (int)rnd_below(17);
            size_t o = 0;
            for (int i = 0; i < nd; i++)
                txt[o++] = (char)('0' + rnd_below(10));
            snprintf(txt + o, sizeof(txt) - o, "e%d", (int)rnd_below(640) - 330);
            d = strtod(txt, NULL);
            break;
        }
        default: /* near the edges of the plain-decimal range */
            d = ldexp(1.0, (int)rnd_below(40) - 30) * (rnd_below(2) ? 1e21 : 1e-7);
            break;
        }
        if (isfinite(d))
            return d;
    }
}

static void put_utf8(char *s, size_t *o, uint32_t cp)
{
    if (cp < 0x80) {
        s[(*o)++] = (char)cp;
    } else if (cp < 0x800) {
        s[(*o)++] = (char)(0xc0 | (cp >> 6));
        s[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else if (cp < 0x10000) {
        s[(*o)++] = (char)(0xe0 | (cp >> 12));
        s[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[(*o)++] = (char)(0x80 | (cp & 0x3f));
    } else {
        s[(*o)++] = (char)(0xf0 | (cp >> 18));
        s[(*o)++] = (char)(0x80 | ((cp >> 12) & 0x3f));
        s[(*o)++] = (char)(0x80 | ((cp >> 6) & 0x3f));
        s[(*o)++] = (char)(0x80 | (cp & 0x3f));
    }
}

static uint32_t rnd_codepoint(bool allow_nul)
{
    static const uint32_t special[] = {'"',    '\\',   '/',      0x7f,    0x2028, 0x2029, 0xfeff,
                                       0xfffd, 0xffff, 0x10ffff, 0x1f600, 0xe9,   0x200d};
    for (;;) {
        uint32_t cp;
        switch (rnd_below(7)) {
        case 0:
            cp = rnd_below(0x20);
            break;
        case 1:
        case 2:
            cp = 0x20 + rnd_below(0x5f);
            break;
        case 3:
            cp = special[rnd_below(sizeof(special) / sizeof(special[0]))];
            break;
        case 4:
            cp = 0x80 + rnd_below(0x780);
            break;
        case 5:
            cp = 0x800 + rnd_below(0x10000 - 0x800);
            break;
        default:
            cp = 0x10000 + rnd_below(0x100000);
            break;
        }
        if ((cp >= 0xd800 && cp <= 0xdfff) || (cp == 0 && !allow_nul))
            continue;
        return cp;
    }
}

/* Random valid UTF-8 of up to 24 code points into s (at least 97 bytes); returns the length. */
static size_t rnd_string(char *s, bool allow_nul)
{
    size_t o = 0;
    uint32_t n = rnd_below(25);
    for (uint32_t i = 0; i < n; i++)
        put_utf8(s, &o, rnd_codepoint(allow_nul));
    return o;
}

static json_t *rnd_value(int depth)
{
    static const char *const keys[] = {
        "0",  "1",   "2",   "7",          "10",         "01",         "00",     "-1",
        "-0", "1.5", "1e3", "4294967294", "4294967295", "4294967296", "+3",     " 4",
        "5 ", "",    "a",   "b",          "name",       "__proto__",  "length", "\xe2\x80\xa8",
        "\"", "\\",  "\n",  "99",         "123456",     "1000000000", "0x1",    "\xf0\x9f\x98\x80",
    };
    uint32_t kind = depth == 0 ? 7 + rnd_below(3) : rnd_below(depth < 5 ? 10 : 7);
    char s[128];
    switch (kind) {
    case 0:
        return json_true();
    case 1:
        return rnd_below(2) ? json_false() : json_null();
    case 2:
        return json_real(rnd_double());
    case 3: {
        int64_t v = (int64_t)rnd();
        if (rnd_below(2))
            v >>= rnd_below(63);
        return json_integer((json_int_t)v);
    }
    case 4:
    case 5:
    case 6:
        return json_stringn(s, rnd_string(s, false));
    case 7: {
        json_t *a = json_array();
        for (uint32_t n = rnd_below(5); n; n--)
            json_array_append_new(a, rnd_value(depth + 1));
        return a;
    }
    default: {
        json_t *o = json_object();
        for (uint32_t n = rnd_below(7); n; n--) {
            json_t *m = rnd_value(depth + 1);
            if (rnd_below(4)) {
                json_object_set_new(o, keys[rnd_below(sizeof(keys) / sizeof(keys[0]))], m);
            } else {
                size_t len = rnd_string(s, false);
                json_object_setn_new(o, s, len, m);
            }
        }
        return o;
    }
    }
}

/* Same value as JavaScript compares after parsing: numbers by their double value. */
static bool same_value(const json_t *a, const json_t *b)
{
    if (json_is_number(a) || json_is_number(b))
        return json_is_number(a) && json_is_number(b) &&
               json_number_value(a) == json_number_value(b);
    if (json_typeof(a) != json_typeof(b))
        return false;
    switch (json_typeof(a)) {
    case JSON_STRING:
        return json_string_length(a) == json_string_length(b) &&
               memcmp(json_string_value(a), json_string_value(b), json_string_length(a)) == 0;
    case JSON_ARRAY:
        if (json_array_size(a) != json_array_size(b))
            return false;
        for (size_t i = 0; i < json_array_size(a); i++)
            if (!same_value(json_array_get(a, i), json_array_get(b, i)))
                return false;
        return true;
    case JSON_OBJECT: {
        if (json_object_size(a) != json_object_size(b))
            return false;
        const char *key;
        size_t klen;
        json_t *va;
        json_object_keylen_foreach((json_t *)a, key, klen, va)
        {
            json_t *vb = json_object_getn(b, key, klen);
            if (!vb || !same_value(va, vb))
                return false;
        }
        return true;
    }
    default:
        return true;
    }
}

static const char node_check[] =
    "'use strict';\n"
    "const lines = require('fs').readFileSync(process.argv[2], 'utf8').split('\\n');\n"
    "lines.pop();\n"
    "let bad = 0;\n"
    "lines.forEach((line, i) => {\n"
    "  let js;\n"
    "  try { js = JSON.stringify(JSON.parse(line)); } catch (e) { js = 'THROWS ' + e.message; }\n"
    "  if (js !== line && ++bad <= 10) console.log(`line ${i + 1}\\n  c:  ${line}\\n  js: "
    "${js}`);\n"
    "});\n"
    "console.log(`${lines.length} lines, ${bad} differ`);\n"
    "process.exit(bad ? 1 : 0);\n";

static bool have_node(void)
{
    return system("command -v node >/dev/null 2>&1") == 0;
}

/* Appends one line: the written value, checked on the C side as far as C can. */
static void add_line(struct hl_buf *all, const struct hl_buf *line)
{
    assert_int_equal(hl_buf_append(all, line->p, line->len), HL_OK);
    assert_int_equal(hl_buf_putc(all, '\n'), HL_OK);
}

static void test_random_against_node(void **state)
{
    (void)state;
    hl_test_need(have_node(), "node on PATH (for the comparison with JSON.stringify)");
    struct hl_buf all, b, b2;
    hl_buf_init(&all, 64u << 20);
    hl_buf_init(&b, OUT_MAX);
    hl_buf_init(&b2, OUT_MAX);
    size_t lines = 0;

    /* Every power of two: where the shortest digits are hardest to get right. */
    for (int e = -1074; e <= 1023; e++, lines++) {
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_num(&b, ldexp(rnd_below(2) ? 1.0 : -1.0, e)), HL_OK);
        add_line(&all, &b);
    }
    for (int i = 0; i < 3000; i++, lines++) {
        double d = rnd_double();
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_num(&b, d), HL_OK);
        if (strtod(b.p, NULL) != d)
            fail_msg("%a written as %s", d, b.p);
        add_line(&all, &b);
    }
    for (int i = 0; i < 500; i++, lines++) {
        int64_t v = (int64_t)rnd() >> rnd_below(64);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_int(&b, v), HL_OK);
        if (strtod(b.p, NULL) != (double)v)
            fail_msg("%lld written as %s", (long long)v, b.p);
        add_line(&all, &b);
    }
    for (int i = 0; i < 1000; i++, lines++) {
        char s[128];
        size_t len = rnd_string(s, true);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write_str(&b, s, len), HL_OK);
        json_t *back = json_loadb(b.p, b.len, JSON_DECODE_ANY | JSON_ALLOW_NUL, NULL);
        assert_non_null(back);
        assert_int_equal(json_string_length(back), len);
        assert_memory_equal(json_string_value(back), s, len);
        json_decref(back);
        add_line(&all, &b);
    }
    for (int i = 0; i < 1500; i++, lines++) {
        json_t *v = rnd_value(0);
        hl_buf_reset(&b);
        assert_int_equal(hl_json_write(&b, v), HL_OK);
        /* Reading our own output back gives the same value and the same text. */
        char err[160];
        json_t *back = hl_json_parse(b.p, b.len, err, sizeof(err));
        if (!back)
            fail_msg("%s: %s", b.p, err);
        if (!same_value(v, back))
            fail_msg("value changed: %s", b.p);
        hl_buf_reset(&b2);
        assert_int_equal(hl_json_write(&b2, back), HL_OK);
        assert_string_equal(b2.p, b.p);
        json_decref(back);
        json_decref(v);
        add_line(&all, &b);
    }

    const char *tmp = getenv("TMPDIR");
    char dir[512], data[600], script[600], cmd[1400];
    snprintf(dir, sizeof(dir), "%s/hl-json-test-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    assert_non_null(mkdtemp(dir));
    snprintf(data, sizeof(data), "%s/values.txt", dir);
    snprintf(script, sizeof(script), "%s/check.js", dir);
    FILE *f = fopen(data, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(all.p, 1, all.len, f), all.len);
    assert_int_equal(fclose(f), 0);
    f = fopen(script, "wb");
    assert_non_null(f);
    assert_int_equal(fputs(node_check, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);

    snprintf(cmd, sizeof(cmd), "node '%s' '%s' 2>&1", script, data);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char report[8192];
    size_t n = fread(report, 1, sizeof(report) - 1, p);
    report[n] = '\0';
    int status = pclose(p);
    unlink(data);
    unlink(script);
    rmdir(dir);
    print_message("%zu values checked by node: %s", lines, report);
    if (status != 0)
        fail_msg("JSON.stringify(JSON.parse(x)) !== x:\n%s", report);

    hl_buf_free(&all);
    hl_buf_free(&b);
    hl_buf_free(&b2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_table),
        cmocka_unit_test(test_write_num),
        cmocka_unit_test(test_write_int),
        cmocka_unit_test(test_write_str),
        cmocka_unit_test(test_each_control),
        cmocka_unit_test(test_parse_rejects),
        cmocka_unit_test(test_parse_numbers),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_object_order),
        cmocka_unit_test(test_random_against_node),
    };
    return hl_test_exit(cmocka_run_group_tests(tests, NULL, NULL));
}
