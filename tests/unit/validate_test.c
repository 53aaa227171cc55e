/* Tests for src/api/validate.c (field checks) and the JSON error answers they write through
 * hl_resp_error (src/api/http.c).
 *
 * Every refusal must be a 422 whose body is exactly {"error":{"code":...,"message":...}}, with the
 * code the API documents and a message that names the field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "api/http.h"
#include "api/validate.h"
#include "common/err.h"
#include "common/events.h"

/* Event mask bits, spelled out. */
#define EV(t) (1u << (t))
#define AC EV(HL_EV_AGENT_CREATED)
#define AU EV(HL_EV_AGENT_UPDATED)
#define AD EV(HL_EV_AGENT_DELETED)
#define CC EV(HL_EV_CONTEXT_CREATED)
#define CD EV(HL_EV_CONTEXT_DELETED)
#define FC EV(HL_EV_CONTEXTFILE_CREATED)
#define FD EV(HL_EV_CONTEXTFILE_DELETED)
#define ALL9 ((1u << HL_EV_RESOURCE_COUNT) - 1)

#define SENTINEL 0xdeadbeefu
/* a JSON text standing for "the field is absent" */
#define MISSING NULL

enum fn { ENTITIES, EVENT_TYPES, UNKNOWN, STRING };

struct vcase {
    const char *name;
    enum fn fn;
    /* ENTITIES / EVENT_TYPES: the field's value (MISSING: absent); UNKNOWN / STRING: the body */
    const char *json;
    unsigned entities; /* EVENT_TYPES: the webhook's entities */
    const char *field; /* STRING: the field read */
    int required;      /* STRING */
    size_t max;        /* STRING */
    int ok;            /* 1: accepted */
    unsigned mask;     /* ENTITIES / EVENT_TYPES, when accepted */
    const char *str;   /* STRING, when accepted (NULL: *out is NULL) */
    const char *code;  /* when refused */
    const char *names; /* when refused: text the message must hold (the field) */
};

static const struct vcase cases[] = {
    /* entities */
    {"entities one", ENTITIES, "[\"agent\"]", 0, 0, 0, 0, 1, HL_ENT_AGENT, 0, 0, 0},
    {"entities all", ENTITIES, "[\"agent\",\"context\",\"contextfile\"]", 0, 0, 0, 0, 1, HL_ENT_ALL,
     0, 0, 0},
    {"entities any order", ENTITIES, "[\"contextfile\",\"agent\"]", 0, 0, 0, 0, 1,
     HL_ENT_CONTEXTFILE | HL_ENT_AGENT, 0, 0, 0},
    {"entities empty", ENTITIES, "[]", 0, 0, 0, 0, 0, 0, 0, "entities_empty", "entities"},
    {"entities string", ENTITIES, "\"agent\"", 0, 0, 0, 0, 0, 0, 0, "entities_not_list",
     "entities"},
    {"entities object", ENTITIES, "{\"agent\":true}", 0, 0, 0, 0, 0, 0, 0, "entities_not_list",
     "entities"},
    {"entities null", ENTITIES, "null", 0, 0, 0, 0, 0, 0, 0, "entities_not_list", "entities"},
    {"entities number", ENTITIES, "7", 0, 0, 0, 0, 0, 0, 0, "entities_not_list", "entities"},
    {"entities missing", ENTITIES, MISSING, 0, 0, 0, 0, 0, 0, 0, "entities_not_list", "entities"},
    {"entities unknown", ENTITIES, "[\"agents\"]", 0, 0, 0, 0, 0, 0, 0, "entities_unknown",
     "entities[0]"},
    {"entities unknown second", ENTITIES, "[\"agent\",\"webhook\"]", 0, 0, 0, 0, 0, 0, 0,
     "entities_unknown", "entities[1]"},
    {"entities wrong case", ENTITIES, "[\"Agent\"]", 0, 0, 0, 0, 0, 0, 0, "entities_unknown",
     "entities[0]"},
    {"entities not a string", ENTITIES, "[\"agent\",1]", 0, 0, 0, 0, 0, 0, 0, "entities_unknown",
     "entities[1]"},
    {"entities nested list", ENTITIES, "[[\"agent\"]]", 0, 0, 0, 0, 0, 0, 0, "entities_unknown",
     "entities[0]"},
    {"entities with NUL", ENTITIES, "[\"agent\\u0000\"]", 0, 0, 0, 0, 0, 0, 0, "entities_unknown",
     "entities[0]"},
    {"entities repeat", ENTITIES, "[\"agent\",\"context\",\"agent\"]", 0, 0, 0, 0, 0, 0, 0,
     "entities_repeated", "entities[2]"},

    /* eventTypes */
    {"eventTypes null is every event", EVENT_TYPES, "null", HL_ENT_AGENT, 0, 0, 0, 1, 0, 0, 0, 0},
    {"eventTypes one", EVENT_TYPES, "[\"agent.created\"]", HL_ENT_AGENT, 0, 0, 0, 1, AC, 0, 0, 0},
    {"eventTypes two entities", EVENT_TYPES, "[\"context.deleted\",\"agent.updated\"]",
     HL_ENT_AGENT | HL_ENT_CONTEXT, 0, 0, 0, 1, CD | AU, 0, 0, 0},
    {"eventTypes all nine", EVENT_TYPES,
     "[\"agent.created\",\"agent.updated\",\"agent.deleted\",\"context.created\","
     "\"context.updated\",\"context.deleted\",\"contextfile.created\",\"contextfile.updated\","
     "\"contextfile.deleted\"]",
     HL_ENT_ALL, 0, 0, 0, 1, ALL9, 0, 0, 0},
    {"eventTypes files", EVENT_TYPES, "[\"contextfile.deleted\",\"contextfile.created\"]",
     HL_ENT_CONTEXTFILE, 0, 0, 0, 1, FD | FC, 0, 0, 0},
    {"eventTypes empty", EVENT_TYPES, "[]", HL_ENT_ALL, 0, 0, 0, 0, 0, 0, "event_types_empty",
     "eventTypes"},
    {"eventTypes string", EVENT_TYPES, "\"agent.created\"", HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_not_list", "eventTypes"},
    {"eventTypes object", EVENT_TYPES, "{}", HL_ENT_ALL, 0, 0, 0, 0, 0, 0, "event_types_not_list",
     "eventTypes"},
    {"eventTypes false", EVENT_TYPES, "false", HL_ENT_ALL, 0, 0, 0, 0, 0, 0, "event_types_not_list",
     "eventTypes"},
    {"eventTypes unknown", EVENT_TYPES, "[\"agent.exploded\"]", HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_unknown", "eventTypes[0]"},
    {"eventTypes webhook.test is not one of the nine", EVENT_TYPES, "[\"webhook.test\"]",
     HL_ENT_ALL, 0, 0, 0, 0, 0, 0, "event_types_unknown", "eventTypes[0]"},
    {"eventTypes wildcard", EVENT_TYPES, "[\"agent.*\"]", HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_unknown", "eventTypes[0]"},
    {"eventTypes number", EVENT_TYPES, "[\"agent.created\",0]", HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_unknown", "eventTypes[1]"},
    {"eventTypes null element", EVENT_TYPES, "[null]", HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_unknown", "eventTypes[0]"},
    {"eventTypes outside entities", EVENT_TYPES, "[\"context.created\"]", HL_ENT_AGENT, 0, 0, 0, 0,
     0, 0, "event_types_outside_entities", "eventTypes[0]"},
    {"eventTypes second outside entities", EVENT_TYPES,
     "[\"agent.created\",\"contextfile.created\"]", HL_ENT_AGENT | HL_ENT_CONTEXT, 0, 0, 0, 0, 0, 0,
     "event_types_outside_entities", "eventTypes[1]"},
    {"eventTypes outside no entities", EVENT_TYPES, "[\"agent.created\"]", 0, 0, 0, 0, 0, 0, 0,
     "event_types_outside_entities", "eventTypes[0]"},
    {"eventTypes repeat", EVENT_TYPES, "[\"agent.created\",\"agent.deleted\",\"agent.created\"]",
     HL_ENT_AGENT, 0, 0, 0, 0, 0, 0, "event_types_repeated", "eventTypes[2]"},
    {"eventTypes missing", EVENT_TYPES, MISSING, HL_ENT_ALL, 0, 0, 0, 0, 0, 0,
     "event_types_not_list", "eventTypes"},

    /* unknown fields (known: url, entities, active, description, eventTypes) */
    {"no fields", UNKNOWN, "{}", 0, 0, 0, 0, 1, 0, 0, 0, 0},
    {"every known field", UNKNOWN,
     "{\"url\":\"https://x\",\"entities\":[],\"active\":true,\"description\":null,"
     "\"eventTypes\":null}",
     0, 0, 0, 0, 1, 0, 0, 0, 0},
    {"unknown field", UNKNOWN, "{\"url\":\"https://x\",\"colour\":\"red\"}", 0, 0, 0, 0, 0, 0, 0,
     "unknown_field", "\"colour\""},
    {"unknown field alone", UNKNOWN, "{\"secret\":\"whsec_x\"}", 0, 0, 0, 0, 0, 0, 0,
     "unknown_field", "\"secret\""},
    {"names are case-sensitive", UNKNOWN, "{\"URL\":\"https://x\"}", 0, 0, 0, 0, 0, 0, 0,
     "unknown_field", "\"URL\""},
    {"snake case is not camel case", UNKNOWN, "{\"event_types\":null}", 0, 0, 0, 0, 0, 0, 0,
     "unknown_field", "\"event_types\""},
    {"empty name", UNKNOWN, "{\"\":1}", 0, 0, 0, 0, 0, 0, 0, "unknown_field", "\"\""},
    {"control characters are not echoed", UNKNOWN, "{\"a\\nb\\u001b[31m\":1}", 0, 0, 0, 0, 0, 0, 0,
     "unknown_field", "\"a?b?[31m\""},
    {"non-ASCII is not echoed", UNKNOWN, "{\"caf\\u00e9\":1}", 0, 0, 0, 0, 0, 0, 0, "unknown_field",
     "\"caf??\""},

    /* strings */
    {"string", STRING, "{\"name\":\"abc\"}", 0, "name", 1, 10, 1, 0, "abc", 0, 0},
    {"string at max", STRING, "{\"name\":\"abc\"}", 0, "name", 1, 3, 1, 0, "abc", 0, 0},
    {"string over max", STRING, "{\"name\":\"abcd\"}", 0, "name", 1, 3, 0, 0, 0, "field_too_long",
     "name"},
    {"max counts bytes", STRING, "{\"name\":\"\\u00e9\"}", 0, "name", 1, 1, 0, 0, 0,
     "field_too_long", "name"},
    {"required missing", STRING, "{\"other\":\"x\"}", 0, "name", 1, 10, 0, 0, 0, "field_required",
     "name"},
    {"optional missing", STRING, "{}", 0, "name", 0, 10, 1, 0, NULL, 0, 0},
    {"not a string", STRING, "{\"name\":5}", 0, "name", 1, 10, 0, 0, 0, "field_not_string", "name"},
    {"list is not a string", STRING, "{\"name\":[\"a\"]}", 0, "name", 0, 10, 0, 0, 0,
     "field_not_string", "name"},
    {"null is not a string", STRING, "{\"name\":null}", 0, "name", 1, 10, 0, 0, 0,
     "field_not_string", "name"},
    {"required empty", STRING, "{\"name\":\"\"}", 0, "name", 1, 10, 0, 0, 0, "field_empty", "name"},
    {"optional empty", STRING, "{\"name\":\"\"}", 0, "name", 0, 10, 1, 0, "", 0, 0},
    {"NUL inside", STRING, "{\"name\":\"a\\u0000b\"}", 0, "name", 1, 10, 0, 0, 0, "field_invalid",
     "name"},
    {"field named in the message", STRING, "{\"externalTenantId\":7}", 0, "externalTenantId", 1, 10,
     0, 0, 0, "field_not_string", "externalTenantId"},
};

/* Checks that body is exactly {"error":{"code":code,"message":...}} and returns the message. */
static const char *check_error_body(const struct hl_buf *body, const char *code, json_t **root)
{
    json_error_t jerr;
    assert_non_null(body->p);
    *root = json_loadb(body->p, body->len, JSON_REJECT_DUPLICATES, &jerr);
    if (!*root)
        fail_msg("error body is not JSON (%s): %s", jerr.text, body->p);
    assert_true(json_is_object(*root));
    assert_int_equal(json_object_size(*root), 1);
    json_t *e = json_object_get(*root, "error");
    assert_true(json_is_object(e));
    assert_int_equal(json_object_size(e), 2);
    json_t *c = json_object_get(e, "code"), *m = json_object_get(e, "message");
    assert_true(json_is_string(c));
    assert_true(json_is_string(m));
    if (code)
        assert_string_equal(json_string_value(c), code);
    assert_true(json_string_length(m) > 0);
    return json_string_value(m);
}

static void run_case(const struct vcase *c)
{
    static const char *const known[] = {"url",         "entities",   "active",
                                        "description", "eventTypes", NULL};
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    json_t *v = NULL;
    if (c->json) {
        json_error_t jerr;
        v = json_loads(c->json, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
        if (!v)
            fail_msg("case %s: bad test JSON: %s", c->name, jerr.text);
    }
    unsigned mask = SENTINEL;
    const char *str = "untouched";
    int rc = -999;
    switch (c->fn) {
    case ENTITIES:
        rc = hl_read_entities(v, &mask, &rs);
        break;
    case EVENT_TYPES:
        rc = hl_read_event_types(v, c->entities, &mask, &rs);
        break;
    case UNKNOWN:
        rc = hl_reject_unknown(v, known, &rs);
        break;
    case STRING:
        rc = hl_read_string(v, c->field, c->required, c->max, &str, &rs);
        break;
    }
    if (c->ok) {
        assert_int_equal(rc, HL_OK);
        /* no answer written */
        assert_int_equal(rs.status, 0);
        assert_int_equal(rs.body.len, 0);
        if (c->fn == ENTITIES || c->fn == EVENT_TYPES)
            assert_int_equal(mask, c->mask);
        if (c->fn == STRING) {
            if (c->str)
                assert_string_equal(str, c->str);
            else
                assert_null(str);
        }
    } else {
        assert_int_equal(rc, HL_EINVAL);
        assert_int_equal(rs.status, 422);
        /* a refusal leaves the result alone */
        if (c->fn == ENTITIES || c->fn == EVENT_TYPES)
            assert_int_equal(mask, SENTINEL);
        json_t *root;
        const char *msg = check_error_body(&rs.body, c->code, &root);
        if (!strstr(msg, c->names))
            fail_msg("case %s: message \"%s\" does not name %s", c->name, msg, c->names);
        json_decref(root);
    }
    json_decref(v);
    hl_buf_free(&rs.body);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("case %zu: %s\n", i, cases[i].name);
        run_case(&cases[i]);
    }
}

/* A very long unknown name is echoed, but bounded. */
static void test_unknown_long_name(void **state)
{
    (void)state;
    static const char *const known[] = {"url", NULL};
    char name[5000];
    memset(name, 'k', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    json_t *body = json_object();
    json_object_set_new(body, "url", json_string("https://x"));
    json_object_set_new(body, name, json_true());
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    assert_int_equal(hl_reject_unknown(body, known, &rs), HL_EINVAL);
    assert_int_equal(rs.status, 422);
    json_t *root;
    const char *msg = check_error_body(&rs.body, "unknown_field", &root);
    assert_non_null(strstr(msg, "kkkkkkkkkk"));
    assert_true(strlen(msg) < 200);
    json_decref(root);
    json_decref(body);
    hl_buf_free(&rs.body);
}

static void test_method_not_allowed(void **state)
{
    (void)state;
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    hl_method_not_allowed(&rs, "GET, POST");
    assert_int_equal(rs.status, 405);
    assert_string_equal(rs.allow, "GET, POST");
    json_t *root;
    const char *msg = check_error_body(&rs.body, "method_not_allowed", &root);
    assert_non_null(strstr(msg, "GET, POST"));
    json_decref(root);
    hl_buf_free(&rs.body);
}

struct err_case {
    int status;
    const char *code;
    const char *message; /* formatted with "%s" */
};

static const struct err_case err_cases[] = {
    {422, "url_required", "url is required"},
    {400, "invalid_json", "quote \" backslash \\ slash / newline \n tab \t cr \r"},
    {404, "not_found", "control \x01\x1f del \x7f"},
    {409, "conflict", "caf\xc3\xa9 \xe2\x98\x95 \xf0\x9f\x9a\x80 \xe2\x80\xa8"},
    {413, "too_large", "</script><!-- {\"error\":1} -->"},
    {500, "internal", "x"},
};

/* "JSON errors": hl_resp_error writes valid JSON with exactly error.code and error.message,
 * whatever the message holds, and replaces what the answer held before. */
static void test_error_bodies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(err_cases) / sizeof(err_cases[0]); i++) {
        const struct err_case *c = &err_cases[i];
        struct hl_resp rs = {0};
        hl_buf_init(&rs.body, 4096);
        rs.status = 200;
        assert_int_equal(hl_buf_puts(&rs.body, "{\"data\":[1,2,3]}"), HL_OK);
        print_message("error case %zu: %s\n", i, c->code);
        hl_resp_error(&rs, c->status, c->code, "%s", c->message);
        assert_int_equal(rs.status, c->status);
        json_t *root;
        const char *msg = check_error_body(&rs.body, c->code, &root);
        assert_string_equal(msg, c->message);
        /* compact: one line, no spaces between tokens */
        assert_memory_equal(rs.body.p, "{\"error\":{\"code\":\"", 18);
        assert_null(memchr(rs.body.p, '\n', rs.body.len));
        json_decref(root);
        hl_buf_free(&rs.body);
    }
    /* a message past the internal limit is cut, and still valid JSON */
    char longmsg[2000];
    memset(longmsg, 'm', sizeof(longmsg) - 1);
    longmsg[sizeof(longmsg) - 1] = '\0';
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    hl_resp_error(&rs, 422, "field_too_long", "%s", longmsg);
    assert_int_equal(rs.status, 422);
    json_t *root;
    const char *msg = check_error_body(&rs.body, "field_too_long", &root);
    assert_true(strlen(msg) >= 100);
    assert_true(strlen(msg) < sizeof(longmsg) - 1);
    json_decref(root);
    hl_buf_free(&rs.body);
}

/* Regression (was a bug in src/api/http.c, hl_resp_error): the message is handed to json_pack as
 * is, and json_pack refuses text that is not valid UTF-8, so the answer becomes a 500 "internal"
 * instead of the intended status and code. It happens with caller text that is not UTF-8 (the 404s
 * format the uid from the path, and libmicrohttpd percent-decodes the path: GET /webhooks/%FF
 * answers 500 instead of 404) and with a long UTF-8 message cut at 511 bytes in the middle of a
 * character. hl_resp_error should replace invalid bytes (e.g. with '?') and cut on a character
 * boundary.
 * */
static void test_error_bodies_not_utf8(void **state)
{
    (void)state;
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    hl_resp_error(&rs, 404, "not_found", "no webhook %s", "webhook-\xff\xfe");
    assert_int_equal(rs.status, 404);
    json_t *root;
    check_error_body(&rs.body, "not_found", &root);
    json_decref(root);

    /* 600 two-byte characters: the 511-byte cut falls inside one */
    char longmsg[1201];
    for (int i = 0; i < 600; i++)
        memcpy(longmsg + 2 * i, "\xc3\xa9", 2);
    longmsg[1200] = '\0';
    hl_resp_error(&rs, 422, "field_invalid", "x%s", longmsg);
    assert_int_equal(rs.status, 422);
    check_error_body(&rs.body, "field_invalid", &root);
    json_decref(root);
    hl_buf_free(&rs.body);
}

struct text_case {
    const char *name;
    const struct hl_text_rule *rule;
    const char *value;
    size_t len;       /* 0: strlen(value) */
    size_t repeat;    /* value is repeated this many times (0: once) */
    const char *code; /* NULL: accepted */
    const char *says; /* text the message must hold besides the field */
};

static const struct text_case text_cases[] = {
    {"plain name", &HL_RULE_FILE_NAME, "report.pdf", 0, 0, NULL, NULL},
    {"empty (emptiness is the caller's rule)", &HL_RULE_FILE_NAME, "", 0, 0, NULL, NULL},
    {"UTF-8 of every length", &HL_RULE_FILE_NAME, "\xc3\xa9\xe6\x97\xa5\xf0\x9f\x98\x80", 0, 0,
     NULL, NULL},
    {"1024 bytes", &HL_RULE_FILE_NAME, "n", 0, 1024, NULL, NULL},
    {"1025 bytes", &HL_RULE_FILE_NAME, "n", 0, 1025, "field_too_long", "1024"},
    {"512 two-byte characters", &HL_RULE_FILE_NAME, "\xc3\xa9", 0, 512, NULL, NULL},
    {"513 two-byte characters: too long, not a UTF-8 error", &HL_RULE_FILE_NAME, "\xc3\xa9", 0, 513,
     "field_too_long", "1024"},
    {"NUL", &HL_RULE_FILE_NAME, "a\0b", 3, 0, "field_has_nul", "byte 1"},
    {"CR", &HL_RULE_FILE_NAME, "a\rb", 0, 0, "field_has_control", "U+000D"},
    {"LF", &HL_RULE_FILE_NAME, "a\nb", 0, 0, "field_has_control", "U+000A"},
    {"tab", &HL_RULE_FILE_NAME, "a\tb", 0, 0, "field_has_control", "U+0009"},
    {"ESC", &HL_RULE_FILE_NAME, "a\x1b[31m", 0, 0, "field_has_control", "U+001B"},
    {"DEL", &HL_RULE_FILE_NAME, "a\x7f", 0, 0, "field_has_control", "U+007F"},
    {"C1 control (NEL)", &HL_RULE_FILE_NAME, "a\xc2\x85", 0, 0, "field_has_control", "U+0085"},
    {"first non-control after C1", &HL_RULE_FILE_NAME, "a\xc2\xa0", 0, 0, NULL, NULL},
    {"stray continuation byte", &HL_RULE_FILE_NAME, "a\x80", 0, 0, "field_not_utf8", "byte 1"},
    {"cut sequence", &HL_RULE_FILE_NAME, "ab\xc3", 0, 0, "field_not_utf8", "byte 2"},
    {"overlong", &HL_RULE_FILE_NAME, "\xc0\xaf", 0, 0, "field_not_utf8", "byte 0"},
    {"surrogate", &HL_RULE_FILE_NAME, "\xed\xa0\x80", 0, 0, "field_not_utf8", "byte 0"},
    {"past U+10FFFF", &HL_RULE_FILE_NAME, "\xf4\x90\x80\x80", 0, 0, "field_not_utf8", NULL},
    {"tenant of 256 bytes", &HL_RULE_TENANT, "t", 0, 256, NULL, NULL},
    {"tenant of 257 bytes", &HL_RULE_TENANT, "t", 0, 257, "field_too_long", "256"},
    {"tenant with LF", &HL_RULE_TENANT, "t\n", 0, 0, "field_has_control", NULL},
    {"content type with parameters", &HL_RULE_CONTENT_TYPE, "text/plain; charset=\"utf-8\"", 0, 0,
     NULL, NULL},
    {"content type of 257 bytes", &HL_RULE_CONTENT_TYPE, "c", 0, 257, "field_too_long", "256"},
    {"content type with ESC", &HL_RULE_CONTENT_TYPE, "text/\x1b", 0, 0, "field_has_control", NULL},
};

/* One rule per free-text field (api/validate.h), whichever path carries it. */
static void test_text_rules(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(text_cases) / sizeof(text_cases[0]); i++) {
        const struct text_case *c = &text_cases[i];
        print_message("text case %zu: %s\n", i, c->name);
        size_t one = c->len ? c->len : strlen(c->value), n = one * (c->repeat ? c->repeat : 1);
        char *v = malloc(n + 1);
        assert_non_null(v);
        for (size_t k = 0; k < n; k += one)
            memcpy(v + k, c->value, one);
        struct hl_resp rs = {0};
        hl_buf_init(&rs.body, 4096);
        int rc = hl_check_text(c->rule, v, n, &rs);
        if (!c->code) {
            assert_int_equal(rc, HL_OK);
            assert_int_equal(rs.status, 0);
        } else {
            assert_int_equal(rc, HL_EINVAL);
            assert_int_equal(rs.status, 422);
            json_t *root;
            const char *msg = check_error_body(&rs.body, c->code, &root);
            assert_non_null(strstr(msg, c->rule->field));
            if (c->says)
                assert_non_null(strstr(msg, c->says));
            json_decref(root);
        }
        hl_buf_free(&rs.body);
        free(v);
    }
    assert_ptr_equal(hl_text_rule_find("fileName"), &HL_RULE_FILE_NAME);
    assert_ptr_equal(hl_text_rule_find("externalTenantId"), &HL_RULE_TENANT);
    assert_ptr_equal(hl_text_rule_find("contentType"), &HL_RULE_CONTENT_TYPE);
    assert_null(hl_text_rule_find("description"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_unknown_long_name),
        cmocka_unit_test(test_method_not_allowed),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_error_bodies_not_utf8),
        cmocka_unit_test(test_text_rules),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
