/* Tests for src/store/payload.c: event payloads packed for storage come back byte for byte;
 * values stored as they are read as they are; damaged packed values are errors, never other
 * bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/err.h"
#include "store/sql.h"

#define AGENT_CREATED                                                                              \
    "{\"eventId\":\"evt_0z_G7JrLGflg9qIr\",\"event\":\"agent.created\",\"timestamp\":"             \
    "\"2026-11-30T14:09:16.528Z\",\"appUid\":\"app-5hPO7w2597VF\",\"version\":1,\"data\":{"        \
    "\"uid\":\"agent-OCnYaEo4ncfmtHfv\",\"appUid\":\"app-5hPO7w2597VF\",\"agentName\":"            \
    "\"bench-x-0\",\"externalTenantId\":\"tenant-bench\",\"live\":true,\"description\":null,"      \
    "\"instructions\":null,\"model\":\"gpt-4o\",\"temperature\":0.7,\"maxTokens\":null,"           \
    "\"metadata\":null,\"createdAt\":\"2026-11-30T14:09:16.528Z\",\"updatedAt\":"                  \
    "\"2026-11-30T14:09:16.528Z\"}}"

/* Packs p, checks what is stored, unpacks it and checks the bytes. Returns the stored size. */
static size_t round_trip(const char *p, size_t n)
{
    struct hl_buf b;
    hl_buf_init(&b, HL_PAYLOAD_MAX);
    assert_int_equal(hl_payload_pack(p, n, &b), HL_OK);
    const char *stored = b.len ? b.p : p;
    size_t stored_len = b.len ? b.len : n;
    assert_int_equal(hl_payload_packed(stored, stored_len), b.len > 0);
    if (b.len)
        assert_true(b.len < n || (n > 0 && (unsigned char)p[0] == 0x01));
    char *out = NULL;
    size_t len = 0;
    assert_int_equal(hl_payload_unpack(stored, stored_len, &out, &len), HL_OK);
    assert_int_equal(len, n);
    if (n)
        assert_memory_equal(out, p, n);
    assert_int_equal(out[len], '\0');
    free(out);
    hl_buf_free(&b);
    return stored_len;
}

static void test_round_trips(void **state)
{
    (void)state;
    static const struct {
        const char *name;
        const char *p;
        size_t n;
    } cases[] = {
        {"empty", "", 0},
        {"short object", "{}", 2},
        {"agent.created", AGENT_CREATED, sizeof(AGENT_CREATED) - 1},
        {"escapes and non-ASCII",
         "{\"a\":\"caf\xc3\xa9 \\\"q\\\" \\u0001\",\"b\":[1,2,3],"
         "\"c\":\"0123456789012345678901234567890123456789\"}",
         0},
        {"NUL bytes inside",
         "{\"a\":\"\0\0\0\",\"padding\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}", 58},
        {"starts with the marker", "\x01{\"not\":\"json\"}", 0},
        {"starts with the marker, long",
         "\x01xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx", 0},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        print_message("%s\n", cases[i].name);
        round_trip(cases[i].p, cases[i].n ? cases[i].n : strlen(cases[i].p));
    }
}

/* The point of packing: a typical event takes a fraction of its bytes. */
static void test_typical_event_is_small(void **state)
{
    (void)state;
    size_t n = sizeof(AGENT_CREATED) - 1;
    size_t stored = round_trip(AGENT_CREATED, n);
    assert_true(stored * 3 < n);
}

/* Large and random payloads, packed or kept, come back exactly. */
static void test_large_and_random(void **state)
{
    (void)state;
    size_t sizes[] = {63, 64, 65, 1000, 4096, 65536, 1u << 20};
    for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *p = malloc(sizes[i]);
        assert_non_null(p);
        assert_int_equal(RAND_bytes((unsigned char *)p, (int)sizes[i]), 1);
        p[0] = '{';
        round_trip(p, sizes[i]); /* random: kept as it is */
        for (size_t k = 0; k < sizes[i]; k++)
            p[k] = (char)"{\"agentName\":\"x\",\"externalTenantId\":\"t\"}"[k % 40];
        size_t stored = round_trip(p, sizes[i]); /* repetitive: packed small */
        if (sizes[i] >= 1000)
            assert_true(stored * 10 < sizes[i]);
        free(p);
    }
}

/* A packed value that is damaged anywhere is refused. */
static void test_damaged(void **state)
{
    (void)state;
    struct hl_buf b;
    hl_buf_init(&b, HL_PAYLOAD_MAX);
    assert_int_equal(hl_payload_pack(AGENT_CREATED, sizeof(AGENT_CREATED) - 1, &b), HL_OK);
    assert_true(b.len > 4);
    char *out = (char *)"untouched";
    size_t len = 7;
    /* cut anywhere */
    for (size_t cut = 1; cut < b.len; cut++) {
        assert_int_equal(hl_payload_unpack(b.p, cut, &out, &len), HL_ESTORE);
        assert_null(out);
        assert_int_equal(len, 0);
    }
    /* bytes after the stream */
    char *more = malloc(b.len + 1);
    assert_non_null(more);
    memcpy(more, b.p, b.len);
    more[b.len] = 'x';
    assert_int_equal(hl_payload_unpack(more, b.len + 1, &out, &len), HL_ESTORE);
    /* a recorded length that does not match */
    memcpy(more, b.p, b.len);
    more[1] = (char)(more[1] + 1);
    assert_int_equal(hl_payload_unpack(more, b.len, &out, &len), HL_ESTORE);
    more[1] = 0; /* zero length */
    assert_int_equal(hl_payload_unpack(more, b.len, &out, &len), HL_ESTORE);
    /* a length that never ends, or is absurd */
    static const unsigned char endless[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                            0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    assert_int_equal(hl_payload_unpack(endless, sizeof(endless), &out, &len), HL_ESTORE);
    static const unsigned char huge[] = {0x01, 0xff, 0xff, 0xff, 0xff, 0x7f, 0x00};
    assert_int_equal(hl_payload_unpack(huge, sizeof(huge), &out, &len), HL_ESTORE);
    /* flipped bits in the stream: an error or (rarely) other bytes of the same length, never a
     * crash; deflate has no checksum, so the length check is what a flip usually trips */
    for (size_t at = 3; at < b.len; at++) {
        memcpy(more, b.p, b.len);
        more[at] ^= 0x5a;
        int rc = hl_payload_unpack(more, b.len, &out, &len);
        assert_true(rc == HL_ESTORE || rc == HL_OK);
        if (rc == HL_OK) {
            assert_int_equal(len, sizeof(AGENT_CREATED) - 1);
            free(out);
        }
    }
    free(more);
    hl_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trips),
        cmocka_unit_test(test_typical_event_is_small),
        cmocka_unit_test(test_large_and_random),
        cmocka_unit_test(test_damaged),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
