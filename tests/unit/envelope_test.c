/* Tests for src/events/envelope.c and src/events/timestamp.c: the envelope receivers get, the
 * event a change commits with, and times as events show them.
 *
 * The expected envelopes are what JavaScript's JSON.stringify writes for the same object (typed
 * in from node), because receivers verify the re-serialized body. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/events.h"
#include "events/envelope.h"
#include "events/timestamp.h"
#include "store/store.h"

#define TS 1737383400123LL /* 2025-01-20T14:30:00.123Z */
#define DEL 1737383401000LL

struct payload_case {
    const char *event_uid;
    int type;
    const char *app_uid;
    const char *data;
    int64_t deleted_at;
    const char *want;
};

static const struct payload_case payload_cases[] = {
    {"evt_abc", HL_EV_AGENT_CREATED, "app-1", "{\"uid\":\"agent-1\",\"externalTenantId\":\"t\"}", 0,
     "{\"eventId\":\"evt_abc\",\"event\":\"agent.created\",\"timestamp\":\"2025-01-20T14:30:00."
     "123Z\","
     "\"appUid\":\"app-1\",\"version\":1,\"data\":{\"uid\":\"agent-1\",\"externalTenantId\":\"t\"}"
     "}"},
    /* deletedAt goes last in data */
    {"evt_abc", HL_EV_CONTEXT_DELETED, "app-1",
     "{\"uid\":\"context-1\",\"externalTenantId\":\"t\"}", DEL,
     "{\"eventId\":\"evt_abc\",\"event\":\"context.deleted\",\"timestamp\":\"2025-01-20T14:30:00."
     "123Z\",\"appUid\":\"app-1\",\"version\":1,\"data\":{\"uid\":\"context-1\","
     "\"externalTenantId\":\"t\",\"deletedAt\":\"2025-01-20T14:30:01.000Z\"}}"},
    /* an empty object gets no comma before deletedAt */
    {"evt_abc", HL_EV_CONTEXTFILE_DELETED, "app-1", "{}", DEL,
     "{\"eventId\":\"evt_abc\",\"event\":\"contextfile.deleted\",\"timestamp\":\"2025-01-20T14:30:"
     "00.123Z\",\"appUid\":\"app-1\",\"version\":1,\"data\":{\"deletedAt\":\"2025-01-20T14:30:01."
     "000Z\"}}"},
    /* strings escaped as JSON.stringify does: quote, backslash, controls; UTF-8 and / as is */
    {"evt_\"q\\", HL_EV_WEBHOOK_TEST, "caf\xc3\xa9 \x01 </x> \xe2\x80\xa8", "{}", 0,
     "{\"eventId\":\"evt_\\\"q\\\\\",\"event\":\"webhook.test\",\"timestamp\":\"2025-01-20T14:30:"
     "00."
     "123Z\",\"appUid\":\"caf\xc3\xa9 \\u0001 </x> \xe2\x80\xa8\",\"version\":1,\"data\":{}}"},
};

static void test_payload_build(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(payload_cases) / sizeof(payload_cases[0]); i++) {
        const struct payload_case *c = &payload_cases[i];
        print_message("payload case %zu\n", i);
        struct hl_buf b;
        hl_buf_init(&b, 1 << 16);
        assert_int_equal(hl_payload_build(&b, c->event_uid, c->type, TS, c->app_uid, c->data,
                                          strlen(c->data), c->deleted_at),
                         HL_OK);
        assert_int_equal(b.len, strlen(c->want));
        assert_memory_equal(b.p, c->want, b.len);
        hl_buf_free(&b);
    }
}

/* The output buffer's own limit holds: an envelope that does not fit is an error. */
static void test_payload_build_limit(void **state)
{
    (void)state;
    const struct payload_case *c = &payload_cases[0];
    struct hl_buf b;
    hl_buf_init(&b, strlen(c->want) - 1);
    assert_int_not_equal(hl_payload_build(&b, c->event_uid, c->type, TS, c->app_uid, c->data,
                                          strlen(c->data), c->deleted_at),
                         HL_OK);
    hl_buf_free(&b);
}

static int id_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '-' || ch == '_';
}

static void test_event_make(void **state)
{
    (void)state;
    const char *data = "{\"uid\":\"agent-1\",\"externalTenantId\":\"tenant-9\"}";
    struct hl_event a, b;
    assert_int_equal(hl_event_make(7, "app-1", HL_EV_AGENT_UPDATED, "tenant-9", "agent-1", data,
                                   strlen(data), TS, 0, &a),
                     HL_OK);
    assert_int_equal(hl_event_make(7, "app-1", HL_EV_AGENT_UPDATED, "tenant-9", "agent-1", data,
                                   strlen(data), TS, 0, &b),
                     HL_OK);
    /* "evt_" and 12 random bytes in URL-safe base64: 16 characters, fresh each time */
    assert_int_equal(strncmp(a.uid, "evt_", 4), 0);
    assert_int_equal(strlen(a.uid), 20);
    for (size_t i = 4; i < 20; i++)
        assert_true(id_char(a.uid[i]));
    assert_string_not_equal(a.uid, b.uid);
    assert_int_equal(a.type, HL_EV_AGENT_UPDATED);
    assert_int_equal(a.app_id, 7);
    assert_string_equal(a.tenant, "tenant-9");
    assert_string_equal(a.resource_uid, "agent-1");
    assert_int_equal(a.created_at, TS);
    /* the payload is the envelope under the event's own uid */
    struct hl_buf want;
    hl_buf_init(&want, 1 << 16);
    assert_int_equal(
        hl_payload_build(&want, a.uid, HL_EV_AGENT_UPDATED, TS, "app-1", data, strlen(data), 0),
        HL_OK);
    assert_int_equal(a.payload_len, want.len);
    assert_memory_equal(a.payload, want.p, want.len);
    hl_buf_free(&want);
    hl_event_clear(&a);
    hl_event_clear(&b);
}

/* Data that cannot fit HL_ENVELOPE_MAX fails and leaves the event empty. */
static void test_event_make_too_big(void **state)
{
    (void)state;
    size_t n = HL_ENVELOPE_MAX;
    char *data = malloc(n);
    assert_non_null(data);
    memset(data, ' ', n);
    data[0] = '{';
    data[n - 1] = '}';
    struct hl_event ev;
    assert_int_not_equal(
        hl_event_make(1, "app-1", HL_EV_AGENT_CREATED, "t", "agent-1", data, n, TS, 0, &ev), HL_OK);
    assert_null(ev.payload);
    assert_null(ev.tenant);
    hl_event_clear(&ev);
    free(data);
}

static void test_json_time(void **state)
{
    (void)state;
    json_t *v = hl_json_time(0);
    assert_true(json_is_null(v));
    json_decref(v);
    v = hl_json_time(TS);
    assert_true(json_is_string(v));
    assert_string_equal(json_string_value(v), "2025-01-20T14:30:00.123Z");
    json_decref(v);
    v = hl_json_time(-1);
    assert_string_equal(json_string_value(v), "1969-12-31T23:59:59.999Z");
    json_decref(v);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_payload_build), cmocka_unit_test(test_payload_build_limit),
        cmocka_unit_test(test_event_make),    cmocka_unit_test(test_event_make_too_big),
        cmocka_unit_test(test_json_time),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
