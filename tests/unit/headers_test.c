/* Tests for src/common/headers.c, the rules of a webhook's static headers: a table of JSON text in,
 * decision out. The expected answers follow RFC 9110 (token names) and the reserved names of
 * headers.h, not this code. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "common/err.h"
#include "common/headers.h"
#include "common/json.h"

struct check_case {
    const char *json;
    const char *code; /* NULL: accepted */
    const char *path; /* the header named, or NULL */
};

static json_t *parse(const char *text)
{
    json_t *v = hl_json_parse(text, strlen(text), NULL, 0);
    assert_non_null(v);
    return v;
}

static const struct check_case header_checks[] = {
    {"{\"Authorization\":\"Bearer x\",\"X-Empty\":\"\",\"X-Tab\":\"a\\tb\"}", NULL, NULL},
    {"{\"!#$%&'*+-.^_`|~09azAZ\":\"v\"}", NULL, NULL},
    {"[]", "headers_not_object", NULL},
    {"{\"Host\":\"x\"}", "header_reserved", "Host"},
    {"{\"content-TYPE\":\"x\"}", "header_reserved", "content-TYPE"},
    {"{\"TE\":\"x\"}", "header_reserved", "TE"},
    {"{\"Proxy-Anything\":\"x\"}", "header_reserved", "Proxy-Anything"},
    {"{\"Webhook-Id\":\"x\"}", "header_reserved", "Webhook-Id"},
    {"{\"X-Webhook-Signature\":\"x\"}", "header_reserved", "X-Webhook-Signature"},
    {"{\"svix-id\":\"x\"}", "header_reserved", "svix-id"},
    {"{\"X-Hookline-Node\":\"x\"}", "header_reserved", "X-Hookline-Node"},
    {"{\"Webhooks\":\"x\"}", NULL, NULL}, /* a prefix needs its dash */
    {"{\"X Y\":\"x\"}", "header_name_invalid", "X Y"},
    {"{\"X:Y\":\"x\"}", "header_name_invalid", "X:Y"},
    {"{\"\":\"x\"}", "header_name_invalid", ""},
    {"{\"X-A\":\"a\\r\\nB: c\"}", "header_value_invalid", "X-A"},
    {"{\"X-A\":\" a\"}", "header_value_invalid", "X-A"},
    {"{\"X-A\":\"a \"}", "header_value_invalid", "X-A"},
    {"{\"X-A\":1}", "header_value_invalid", "X-A"},
    {"{\"X-A\":\"1\",\"x-a\":\"2\"}", "header_duplicate", "x-a"},
};

static void test_headers_check_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(header_checks) / sizeof(header_checks[0]); i++) {
        const struct check_case *c = &header_checks[i];
        json_t *h = parse(c->json);
        struct hl_fault ft = {0};
        int rc = hl_headers_check(h, &ft);
        if (!c->code) {
            if (rc != HL_OK)
                fail_msg("refused %s: %s", c->json, ft.code);
        } else {
            if (rc != HL_EINVAL || strcmp(ft.code, c->code) != 0)
                fail_msg("%s: got %s, want %s", c->json, rc ? ft.code : "ok", c->code);
            if (c->path) {
                assert_int_equal(ft.key_len, strlen(c->path));
                assert_memory_equal(ft.key, c->path, ft.key_len);
            }
        }
        json_decref(h);
    }
}

/* 20 headers are fine, 21 are not. */
static void test_headers_limit(void **state)
{
    (void)state;
    json_t *h = json_object();
    char name[32];
    for (int i = 0; i < HL_HEADERS_MAX; i++) {
        snprintf(name, sizeof(name), "X-H%d", i);
        json_object_set_new(h, name, json_string("v"));
    }
    struct hl_fault ft;
    assert_int_equal(hl_headers_check(h, &ft), HL_OK);
    json_object_set_new(h, "X-One-More", json_string("v"));
    assert_int_equal(hl_headers_check(h, &ft), HL_EINVAL);
    assert_string_equal(ft.code, "headers_too_many");
    json_decref(h);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_headers_check_table),
        cmocka_unit_test(test_headers_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
