/* Tests for src/common/log.c: the text and JSON forms of a line, escaping, and cutting long lines
 * so that a JSON line is still one valid JSON object. JSON lines are read back with jansson. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "common/log.h"

#define T0 1795763932741LL /* 2026-11-27T07:18:52.741Z */

struct text_case {
    const char *message;
    struct hl_log_field f[4];
    size_t n;
    const char *want;
};

static const struct text_case text_cases[] = {
    {"request",
     {HL_LOG_STR("method", "GET"), HL_LOG_NUM("status", 200), HL_LOG_NUM("duration_ms", 0.5)},
     3,
     "2026-11-27T07:18:52.741Z info request method=GET status=200 duration_ms=0.5\n"},
    /* values a reader could split wrongly are quoted, with JSON escapes */
    {"attempt will retry",
     {HL_LOG_STR("error", "connection refused"), HL_LOG_STR("q", "say \"hi\"\\"),
      HL_LOG_STR("empty", ""), HL_LOG_STR("eq", "a=b")},
     4,
     "2026-11-27T07:18:52.741Z info attempt will retry error=\"connection refused\" "
     "q=\"say \\\"hi\\\"\\\\\" empty=\"\" eq=\"a=b\"\n"},
    /* a NULL string leaves its field out; a control character in a message is a space */
    {"two\nlines\x1b[31m",
     {HL_LOG_STR("app", NULL), HL_LOG_STR("x", "1\n2")},
     2,
     "2026-11-27T07:18:52.741Z info two lines [31m x=\"1\\n2\"\n"},
    /* bytes that are not UTF-8 become '?'; valid UTF-8 stays */
    {"caf\xc3\xa9 \xff\xfe",
     {HL_LOG_STR("v", "\xc3\x28")},
     1,
     "2026-11-27T07:18:52.741Z info caf\xc3\xa9 ?? v=?(\n"},
};

static void test_text(void **state)
{
    (void)state;
    hl_log_set_format(HL_LOG_TEXT);
    for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
        const struct text_case *c = &text_cases[i];
        char line[HL_LOG_LINE_MAX];
        size_t len =
            hl_log_format_line(line, sizeof(line), T0, HL_LOG_INFO, c->f, c->n, c->message);
        assert_string_equal(line, c->want);
        assert_int_equal(len, strlen(c->want));
    }
}

/* Reads a JSON line back; checks its shape and returns the object (caller decrefs). */
static json_t *parse_line(const char *line, size_t len)
{
    assert_true(len > 0);
    assert_int_equal(line[len - 1], '\n');
    assert_int_equal(strlen(line), len);
    assert_null(memchr(line, '\n', len - 1));
    json_error_t e;
    json_t *v = json_loadb(line, len, 0, &e);
    if (!v)
        fail_msg("not JSON (%s): %s", e.text, line);
    assert_true(json_is_object(v));
    assert_int_equal(json_object_size(v), 4);
    assert_true(json_is_string(json_object_get(v, "time")));
    assert_true(json_is_string(json_object_get(v, "level")));
    assert_true(json_is_string(json_object_get(v, "message")));
    assert_true(json_is_object(json_object_get(v, "fields")));
    return v;
}

static void test_json(void **state)
{
    (void)state;
    hl_log_set_format(HL_LOG_JSON);
    struct hl_log_field f[] = {HL_LOG_STR("delivery", "dlv_42"), HL_LOG_STR("app", NULL),
                               HL_LOG_NUM("status", 200), HL_LOG_NUM("duration_ms", 1.5),
                               HL_LOG_STR("error", "say \"no\"\n")};
    char line[HL_LOG_LINE_MAX];
    size_t len = hl_log_format_line(line, sizeof(line), T0, HL_LOG_WARN, f, 5, "attempt \"x\"");
    assert_string_equal(line, "{\"time\":\"2026-11-27T07:18:52.741Z\",\"level\":\"warn\","
                              "\"message\":\"attempt \\\"x\\\"\",\"fields\":{\"delivery\":"
                              "\"dlv_42\",\"status\":200,\"duration_ms\":1.5,\"error\":"
                              "\"say \\\"no\\\"\\n\"}}\n");
    json_decref(parse_line(line, len));

    /* control characters, invalid UTF-8, NaN: still JSON */
    struct hl_log_field g[] = {HL_LOG_NUM("nan", NAN), HL_LOG_STR("bin", "\x01\x7f\xff")};
    len = hl_log_format_line(line, sizeof(line), T0, HL_LOG_ERROR, g, 2, "\x1b[2J\xc0\xaf");
    json_t *v = parse_line(line, len);
    assert_string_equal(json_string_value(json_object_get(v, "message")), "\x1b[2J??");
    assert_true(json_is_null(json_object_get(json_object_get(v, "fields"), "nan")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(v, "fields"), "bin")),
                        "\x01\x7f?");
    json_decref(v);
}

/* Long messages and values, worst-case escaping, in every buffer size from the smallest: the
 * line is cut, never overflows, and stays one JSON object. */
static void test_cut_lines_stay_json(void **state)
{
    (void)state;
    static char big[6000], quotes[3000];
    memset(big, 'x', sizeof(big) - 1);
    for (size_t i = 0; i + 1 < sizeof(quotes); i++)
        quotes[i] = i % 3 == 0 ? '"' : i % 3 == 1 ? '\x01' : '\\';
    struct hl_log_field f[] = {HL_LOG_STR("a", quotes), HL_LOG_NUM("n", 12345),
                               HL_LOG_STR("b", big), HL_LOG_STR("c", "short")};
    const char *messages[] = {big, quotes, "m"};
    char line[HL_LOG_LINE_MAX + 16];
    for (int fmt = 0; fmt < 2; fmt++) {
        hl_log_set_format(fmt ? HL_LOG_JSON : HL_LOG_TEXT);
        for (size_t m = 0; m < 3; m++) {
            for (size_t cap = HL_LOG_LINE_MIN; cap <= HL_LOG_LINE_MAX; cap += cap < 700 ? 1 : 97) {
                memset(line, '#', sizeof(line));
                size_t len = hl_log_format_line(line, cap, T0, HL_LOG_INFO, f, 4, messages[m]);
                assert_true(len < cap);
                assert_int_equal(line[len], '\0');
                assert_int_equal(line[cap], '#'); /* nothing written past cap */
                if (fmt)
                    json_decref(parse_line(line, len));
                else
                    assert_int_equal(line[len - 1], '\n');
            }
        }
    }
    char small[HL_LOG_LINE_MIN - 1];
    assert_int_equal(hl_log_format_line(small, sizeof(small), T0, HL_LOG_INFO, f, 4, "m"), 0);
    assert_string_equal(small, "");
    hl_log_set_format(HL_LOG_TEXT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_json),
        cmocka_unit_test(test_cut_lines_stay_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
