/* Tests for src/common/ids.c: random ids, webhook secrets, id validation.
 *
 * Secrets are decoded with OpenSSL's EVP_DecodeBlock, not with hookline's own decoder, so a bug
 * shared by the encoder and decoder in encode.c cannot hide here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "common/ids.h"

static int is_url_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

static int is_std_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '+' ||
           c == '/';
}

struct new_case {
    const char *prefix;
    size_t nbytes;
    size_t cap; /* 0: HL_ID_MAX */
    int rc;     /* expected return */
    size_t len; /* expected strlen on success */
};

/* URL-safe base64 without padding: ceil(4n/3) characters. */
static const struct new_case new_cases[] = {
    {"webhook-", 16, 0, HL_OK, 8 + 22},
    {"evt_", 16, 0, HL_OK, 4 + 22},
    {"agent-", 12, 0, HL_OK, 6 + 16},
    {"", 16, 0, HL_OK, 22},
    {"x", 1, 0, HL_OK, 1 + 2},
    {"x", 2, 0, HL_OK, 1 + 3},
    {"x", 3, 0, HL_OK, 1 + 4},
    {"key_", 24, 0, HL_OK, 4 + 32},
    {"", 45, 0, HL_OK, 60},
    {"", 48, 65, HL_OK, 64},
    {"", 0, 0, HL_OK, 0},
    /* room for prefix + the padded base64 length + NUL, exactly */
    {"webhook-", 16, 8 + 24 + 1, HL_OK, 8 + 22},
    /* one byte short */
    {"webhook-", 16, 8 + 24, HL_EINVAL, 0},
    {"webhook-", 16, 8, HL_EINVAL, 0},
    {"webhook-", 16, 1, HL_EINVAL, 0},
    /* more random bytes than the function keeps */
    {"", 49, 200, HL_EINVAL, 0},
    {"", 1000, 2000, HL_EINVAL, 0},
};

static void test_id_new_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(new_cases) / sizeof(new_cases[0]); i++) {
        const struct new_case *c = &new_cases[i];
        char out[2048];
        size_t cap = c->cap ? c->cap : HL_ID_MAX;
        memset(out, '#', sizeof(out));
        print_message("case %zu: prefix \"%s\" nbytes %zu cap %zu\n", i, c->prefix, c->nbytes, cap);
        int rc = hl_id_new(c->prefix, c->nbytes, out, cap);
        assert_int_equal(rc, c->rc);
        if (rc != HL_OK) {
            /* nothing written on refusal */
            for (size_t k = 0; k < sizeof(out); k++)
                assert_int_equal(out[k], '#');
            continue;
        }
        assert_int_equal(strlen(out), c->len);
        assert_true(c->len < cap);
        size_t plen = strlen(c->prefix);
        assert_memory_equal(out, c->prefix, plen);
        for (size_t k = plen; k < c->len; k++)
            assert_true(is_url_char(out[k]));
        /* nothing past the NUL */
        for (size_t k = c->len + 1; k < sizeof(out); k++)
            assert_int_equal(out[k], '#');
        if (c->nbytes > 0 && c->len < HL_ID_MAX)
            assert_true(hl_id_valid(c->prefix, out, c->len));
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

static void test_id_new_unique(void **state)
{
    (void)state;
    enum { N = 10000 };
    char(*ids)[HL_ID_MAX] = calloc(N, HL_ID_MAX);
    assert_non_null(ids);
    int seen[128] = {0};
    for (int i = 0; i < N; i++) {
        assert_int_equal(hl_id_new("webhook-", 16, ids[i], HL_ID_MAX), HL_OK);
        assert_int_equal(strlen(ids[i]), 30);
        assert_true(hl_id_valid("webhook-", ids[i], strlen(ids[i])));
        for (const char *p = ids[i] + 8; *p; p++)
            seen[(unsigned char)*p]++;
    }
    qsort(ids, N, HL_ID_MAX, cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(ids[i - 1], ids[i]);
    /* 220,000 random characters: every one of the 64 shows up, and none dominates (each is
     * expected ~3,400 times; a stuck or biased generator fails this). */
    const char *alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    for (const char *a = alphabet; *a; a++) {
        assert_true(seen[(unsigned char)*a] > 1000);
        assert_true(seen[(unsigned char)*a] < 8000);
    }
    free(ids);
}

static void test_secret(void **state)
{
    (void)state;
    enum { N = 1000 };
    char(*secrets)[HL_ID_MAX] = calloc(N, HL_ID_MAX);
    assert_non_null(secrets);
    for (int i = 0; i < N; i++) {
        char *s = secrets[i];
        assert_int_equal(hl_secret_new(s, HL_ID_MAX), HL_OK);
        assert_int_equal(strlen(s), 6 + 32);
        assert_memory_equal(s, "whsec_", 6);
        for (const char *p = s + 6; *p; p++)
            assert_true(is_std_char(*p));
        /* standard base64 of exactly 24 bytes: 32 characters, no padding needed */
        unsigned char raw[64];
        int n = EVP_DecodeBlock(raw, (const unsigned char *)s + 6, 32);
        assert_int_equal(n, 24);
        /* hookline's own decoder agrees, and re-encoding gives the same text */
        uint8_t raw2[32];
        size_t n2 = 0;
        assert_int_equal(hl_b64_decode(s + 6, 32, raw2, sizeof(raw2), &n2), HL_OK);
        assert_int_equal(n2, 24);
        assert_memory_equal(raw, raw2, 24);
        char again[64];
        hl_b64_encode(raw2, 24, again, 0);
        assert_string_equal(again, s + 6);
    }
    qsort(secrets, N, HL_ID_MAX, cmp_str);
    for (int i = 1; i < N; i++)
        assert_string_not_equal(secrets[i - 1], secrets[i]);
    free(secrets);
}

static void test_secret_cap(void **state)
{
    (void)state;
    static const struct {
        size_t cap;
        int rc;
    } cases[] = {
        {0, HL_EINVAL}, {1, HL_EINVAL}, {6, HL_EINVAL}, {38, HL_EINVAL}, {39, HL_OK}, {64, HL_OK},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char out[80];
        memset(out, '#', sizeof(out));
        assert_int_equal(hl_secret_new(out, cases[i].cap), cases[i].rc);
        if (cases[i].rc == HL_OK) {
            assert_int_equal(strlen(out), 38);
        } else {
            for (size_t k = 0; k < sizeof(out); k++)
                assert_int_equal(out[k], '#');
        }
    }
}

struct valid_case {
    const char *prefix;
    const char *s;
    size_t len; /* (size_t)-1: strlen(s) */
    int valid;
};

#define ALL ((size_t)-1)
/* 63 characters in all: the longest id HL_ID_MAX leaves room for */
#define ID63 "webhook-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_0"
#define ID64 ID63 "1"
_Static_assert(sizeof(ID63) - 1 == HL_ID_MAX - 1, "ID63 is the longest valid id");

static const struct valid_case valid_cases[] = {
    {"webhook-", "webhook-AbC123-_xyz", ALL, 1},
    {"webhook-", "webhook-a", ALL, 1},
    {"evt_", "evt_A1b2C3d4E5f6", ALL, 1},
    {"webhook-", ID63, ALL, 1},
    {"webhook-", ID64, ALL, 0},
    /* the prefix alone, or less */
    {"webhook-", "webhook-", ALL, 0},
    {"webhook-", "webhook", ALL, 0},
    {"webhook-", "", ALL, 0},
    /* wrong prefix */
    {"webhook-", "webhooK-abc", ALL, 0},
    {"webhook-", "evt_abc", ALL, 0},
    {"evt_", "webhook-abc", ALL, 0},
    {"webhook-", "xwebhook-abc", ALL, 0},
    /* characters outside the URL-safe alphabet */
    {"webhook-", "webhook-ab+c", ALL, 0},
    {"webhook-", "webhook-ab/c", ALL, 0},
    {"webhook-", "webhook-abc=", ALL, 0},
    {"webhook-", "webhook-ab c", ALL, 0},
    {"webhook-", "webhook-ab.c", ALL, 0},
    {"webhook-", "webhook-ab%2F", ALL, 0},
    {"webhook-", "webhook-..", ALL, 0},
    {"webhook-", "webhook-\xc3\xa9", ALL, 0},
    {"webhook-", "webhook-ab\nc", ALL, 0},
    /* the length bounds what is looked at: a NUL inside it is refused ... */
    {"webhook-", "webhook-ab\0cd", 13, 0},
    /* ... and what lies past it is ignored */
    {"webhook-", "webhook-abc!!!", 11, 1},
    {"webhook-", "webhook-abc", 8, 0},
    {"webhook-", "webhook-abc", 3, 0},
};

static void test_id_valid_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(valid_cases) / sizeof(valid_cases[0]); i++) {
        const struct valid_case *c = &valid_cases[i];
        size_t len = c->len == ALL ? strlen(c->s) : c->len;
        print_message("case %zu: \"%s\" len %zu\n", i, c->s, len);
        /* copy into a buffer of exactly len bytes so ASan catches reads past the length */
        char *copy = malloc(len ? len : 1);
        assert_non_null(copy);
        memcpy(copy, c->s, len);
        assert_int_equal(hl_id_valid(c->prefix, copy, len) ? 1 : 0, c->valid);
        free(copy);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_id_new_table),   cmocka_unit_test(test_id_new_unique),
        cmocka_unit_test(test_secret),         cmocka_unit_test(test_secret_cap),
        cmocka_unit_test(test_id_valid_table),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
