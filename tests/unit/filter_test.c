/* Tests for src/common/filter.c, a webhook's filter on events: tables of JSON text in, decision
 * out. The expected answers follow the contract in filter.h (JSON values compared by value, as
 * JSON.parse reads them), not this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/filter.h"
#include "common/json.h"

static json_t *parse(const char *text)
{
    json_t *v = hl_json_parse(text, strlen(text), NULL, 0);
    assert_non_null(v);
    return v;
}

#define ENV                                                                                        \
    "{\"eventId\":\"evt_1\",\"event\":\"agent.updated\",\"version\":1,\"data\":{\"uid\":\"a\","    \
    "\"externalTenantId\":\"tenant-a\",\"live\":true,\"n\":1,\"r\":2.5,\"x\":null,\"s\":\"caf"     \
    "\xc3\xa9\",\"tags\":[\"a\",\"b\"],\"m\":{\"k\":{\"z\":0}},\"big\":9007199254740993}}"

struct match_case {
    const char *filter;
    int want;
};

static const struct match_case match_cases[] = {
    {"{\"data.externalTenantId\":[\"tenant-a\",\"tenant-b\"],\"data.live\":[true]}", 1},
    {"{\"data.externalTenantId\":[\"tenant-b\"],\"data.live\":[true]}", 0}, /* AND */
    {"{\"data.externalTenantId\":[\"tenant-b\",\"tenant-a\"]}", 1},         /* OR */
    {"{\"data.live\":[\"true\"]}", 0}, /* a string is not a boolean */
    {"{\"data.live\":[1]}", 0},        /* nor a number */
    {"{\"data.n\":[1.0]}", 1},         /* 1 = 1.0 */
    {"{\"data.n\":[1e0]}", 1},
    {"{\"data.n\":[\"1\"]}", 0},
    {"{\"data.n\":[true]}", 0},
    {"{\"data.r\":[2.5]}", 1},
    {"{\"data.r\":[25e-1]}", 1},
    {"{\"data.r\":[2]}", 0},
    {"{\"data.x\":[null]}", 1},
    {"{\"data.x\":[0]}", 0},
    {"{\"data.x\":[false]}", 0},
    {"{\"data.x\":[\"\"]}", 0},
    {"{\"data.missing\":[null]}", 0}, /* missing is not null */
    {"{\"data.s\":[\"caf\\u00e9\"]}", 1},
    {"{\"data.s\":[\"cafe\"]}", 0},
    {"{\"data.tags.1\":[\"b\"]}", 1},
    {"{\"data.tags.01\":[\"b\"]}", 0}, /* no leading zeros */
    {"{\"data.tags.2\":[\"b\"]}", 0},
    {"{\"data.m.k.z\":[0]}", 1},
    {"{\"data.m.k\":[0]}", 0},     /* an object is no scalar */
    {"{\"data.s.x\":[\"c\"]}", 0}, /* no step into a string */
    {"{\"data.uid.0\":[\"a\"]}", 0},
    {"{\"event\":[\"agent.updated\"],\"version\":[1]}", 1},
    {"{\"eventId\":[\"evt_2\"]}", 0},
    {"{\"data.big\":[9007199254740992]}", 1}, /* beyond 2^53, as JSON.parse reads it */
};

static void test_match_table(void **state)
{
    (void)state;
    json_t *env = parse(ENV);
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        json_t *f = parse(match_cases[i].filter);
        struct hl_fault ft;
        if (hl_filter_check(f, &ft) != HL_OK)
            fail_msg("refused %s: %s %s", match_cases[i].filter, ft.code, ft.what);
        if (hl_filter_match(f, env) != match_cases[i].want)
            fail_msg("%s: want %d", match_cases[i].filter, match_cases[i].want);
        json_decref(f);
    }
    json_decref(env);
}

struct check_case {
    const char *json;
    const char *code; /* NULL: accepted */
    const char *path; /* the path named, or NULL */
};

static const struct check_case filter_checks[] = {
    {"{\"data.a\":[1]}", NULL, NULL},
    {"[1]", "filter_not_object", NULL},
    {"\"data.a\"", "filter_not_object", NULL},
    {"{}", "filter_empty", NULL},
    {"{\"data.a\":[]}", "filter_values_invalid", "data.a"},
    {"{\"data.a\":1}", "filter_values_invalid", "data.a"},
    {"{\"data.a\":[[1]]}", "filter_values_invalid", "data.a"},
    {"{\"data.a\":[{}]}", "filter_values_invalid", "data.a"},
    {"{\"tenant\":[1]}", "filter_path_invalid", "tenant"},
    {"{\"data..a\":[1]}", "filter_path_invalid", "data..a"},
    {"{\"data.\":[1]}", "filter_path_invalid", "data."},
    {"{\".data\":[1]}", "filter_path_invalid", ".data"},
    {"{\"\":[1]}", "filter_path_invalid", ""},
    {"{\"datax\":[1]}", "filter_path_invalid", "datax"},
    {"{\"data\":[1]}", NULL, NULL},
};

static void test_filter_check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(filter_checks) / sizeof(filter_checks[0]); i++) {
        const struct check_case *c = &filter_checks[i];
        json_t *f = parse(c->json);
        struct hl_fault ft = {0};
        int rc = hl_filter_check(f, &ft);
        if (!c->code) {
            assert_int_equal(rc, HL_OK);
        } else {
            assert_int_equal(rc, HL_EINVAL);
            assert_string_equal(ft.code, c->code);
            if (c->path) {
                assert_non_null(ft.key);
                assert_int_equal(ft.key_len, strlen(c->path));
                assert_memory_equal(ft.key, c->path, ft.key_len);
            } else {
                assert_null(ft.key);
            }
        }
        json_decref(f);
    }
}

/* The limits: 20 paths and 100 values in all are fine; one more of either is not. */
static void test_filter_limits(void **state)
{
    (void)state;
    json_t *f = json_object();
    char path[32];
    for (int i = 0; i < HL_FILTER_PATHS_MAX; i++) {
        snprintf(path, sizeof(path), "data.p%d", i);
        json_object_set_new(f, path, json_pack("[iiiii]", 1, 2, 3, 4, 5));
    }
    struct hl_fault ft;
    assert_int_equal(hl_filter_check(f, &ft), HL_OK); /* 20 paths, 100 values */
    json_array_append_new(json_object_get(f, "data.p7"), json_integer(6));
    assert_int_equal(hl_filter_check(f, &ft), HL_EINVAL);
    assert_string_equal(ft.code, "filter_too_many_values");
    json_array_remove(json_object_get(f, "data.p7"), 5);
    json_object_set_new(f, "data.extra", json_pack("[i]", 1));
    assert_int_equal(hl_filter_check(f, &ft), HL_EINVAL);
    assert_string_equal(ft.code, "filter_too_many_paths");
    json_decref(f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table),
        cmocka_unit_test(test_filter_check_table),
        cmocka_unit_test(test_filter_limits),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
