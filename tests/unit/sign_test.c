/* Tests for src/crypto/sign.c.
 *
 * Every expected value below was produced outside this code base and pasted in:
 * - hex scheme: printf %s "$body" | openssl dgst -sha256 -hmac "$secret", cross-checked with
 *   node's crypto.createHmac('sha256', secret).update(body, 'utf8').digest('hex');
 *   "Jefe" is RFC 4231 test case 2.
 * - Standard Webhooks: printf %s "$id.$ts.$body" | openssl dgst -sha256 -mac HMAC
 *   -macopt hexkey:<base64-decoded secret> -binary | base64, cross-checked with node
 *   (key = Buffer.from(secret.slice(6), 'base64')) and with the sign() of the npm packages
 *   standardwebhooks and svix. The first case is the standard-webhooks repository's own vector. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <pthread.h>
#include <string.h>

#include "common/err.h"
#include "crypto/sign.h"

#define LIT(s) s, sizeof(s) - 1

/* The guide's payload example, compact, as the dispatcher sends it. */
#define GUIDE_BODY                                                                                 \
    "{\"eventId\":\"evt_A1b2C3d4E5f6\",\"event\":\"agent.created\",\"timestamp\":\"2025-01-"       \
    "20T14:35:22.123Z\",\"appUid\":\"your-app-uid\",\"version\":1,\"data\":{\"uid\":\"agent-"      \
    "abc123\",\"appUid\":\"app-123\",\"agentName\":\"Customer Support "                            \
    "Agent\",\"externalTenantId\":\"tenant-xyz789\",\"live\":true,\"createdAt\":\"2025-01-"        \
    "20T14:35:22Z\"}}"
#define UTF8_BODY "{\"agentName\":\"Café ☕ 🚀 Ünïcödé\",\"externalTenantId\":\"tenant-日本\"}"
#define GUIDE_SECRET "whsec_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
#define K10 "kkkkkkkkkk"
/* Longer than SHA-256's 64-byte block, so HMAC hashes the key first. */
#define LONG_SECRET "whsec_" K10 K10 K10 K10 K10 K10 K10 K10

struct hex_case {
    const char *secret;
    size_t secret_len;
    const char *body;
    size_t body_len;
    const char *hex;
};

static const struct hex_case hex_cases[] = {
    {LIT(GUIDE_SECRET), LIT(GUIDE_BODY),
     "55199eff7b48fba7b04ae8c2cfa089907093a37beebaced63b7a3ec3fb24db93"},
    {LIT(GUIDE_SECRET), LIT(""),
     "85d6e0ec84d8f115f746f11f4fad38133ad5aa88d8dc2808d84371fe6a87bf94"},
    {LIT(GUIDE_SECRET), LIT(UTF8_BODY),
     "5effcee95403f6d1b59a1034186be95df0a56a99f2ade04853282c580b5ab96b"},
    {LIT("Jefe"), LIT("what do ya want for nothing?"),
     "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"},
    /* No prefix: the string itself is the key, it is not base64-decoded. */
    {LIT("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), LIT("{\"test\": 2432232314}"),
     "5ee0e8e3d564cf9cbeea807e97cecc6cccf0b0e20aa28073cc267a2881a839fc"},
    {LIT(LONG_SECRET), LIT(GUIDE_BODY),
     "d9966e33e5d1462be9a0a04a401d6984df641227664fba7e92684fd1173e80c8"},
    /* A NUL inside the body is signed like any other byte. */
    {LIT(GUIDE_SECRET), LIT("a\0b"),
     "b3c5c68c70de114108298cb8c00d86664c3d9052256a0a81ef2f4a719cbb5785"},
};

struct std_case {
    const char *secret;
    const char *id;
    int64_t ts;
    const char *body;
    size_t body_len;
    const char *sig;
};

static const struct std_case std_cases[] = {
    {"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330,
     LIT("{\"test\": 2432232314}"), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="},
    {GUIDE_SECRET, "evt_A1b2C3d4E5f6", 1737383722, LIT(GUIDE_BODY),
     "v1,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A="},
    /* Without the prefix the whole secret is the base64 key: same signature. */
    {"A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", "evt_A1b2C3d4E5f6", 1737383722, LIT(GUIDE_BODY),
     "v1,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A="},
    {GUIDE_SECRET, "evt_A1b2C3d4E5f6", 1737383722, LIT(""),
     "v1,iAXSVwwaAVE5v+YGLgiCUQ2OpZJ3yxv2Yjzbg+kRCsA="},
    {GUIDE_SECRET, "evt_emoji", 1737383722, LIT(UTF8_BODY),
     "v1,3gps35rIpsjZ50xc66EEkE5j5n+r25cN+n6luGSCzww="},
    {GUIDE_SECRET, "msg_zero", 0, LIT("{}"), "v1,5ndGEee7WKq6g0Eqfafm7BAOpo38p3blB9MuuR+kwvM="},
    /* A 32-byte key whose base64 ends in padding. */
    {"whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "msg_padded", 1737383722,
     LIT(GUIDE_BODY), "v1,A0uHT3JPLlwew32ArHRW5peRgyy1T2mtLlS8VIIoA4A="},
    /* '+' and '/' in the secret (standard alphabet). */
    {"whsec_+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7", "msg_plus", 1737383722, LIT(GUIDE_BODY),
     "v1,Omr6k8Q1t15vyD330UsfCBcat4EJRxM+uTL6KNl9GCc="},
    /* A rotation: the old and the new secret over the same message. */
    {GUIDE_SECRET, "msg_rotate", 1737383722, LIT(GUIDE_BODY),
     "v1,nDPX0nEsFdzLeIg9+DXgP7IlNbrAU/QQ/KhXEXOS/is="},
    {"whsec_bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2", "msg_rotate", 1737383722, LIT(GUIDE_BODY),
     "v1,cb/OjT6FJBfA5qINsJp3DcIjVLscaScmU680Q4SzvOg="},
};

#define N(a) (sizeof(a) / sizeof((a)[0]))

static void test_hex_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(hex_cases); i++) {
        const struct hex_case *c = &hex_cases[i];
        char out[HL_SIGN_HEX_SIZE];
        memset(out, 'x', sizeof(out));
        assert_int_equal(hl_sign_hex(c->secret, c->secret_len, c->body, c->body_len, out), HL_OK);
        assert_string_equal(out, c->hex);
    }
}

static void test_hex_errors(void **state)
{
    (void)state;
    char out[HL_SIGN_HEX_SIZE];
    assert_int_equal(hl_sign_hex(NULL, 0, "x", 1, out), HL_EINVAL);
    assert_int_equal(hl_sign_hex(NULL, 5, "x", 1, out), HL_EINVAL);
    assert_int_equal(hl_sign_hex("", 0, "x", 1, out), HL_EINVAL);
    assert_int_equal(hl_sign_hex(LIT(GUIDE_SECRET), "x", 1, NULL), HL_EINVAL);
    assert_int_equal(hl_sign_hex(LIT(GUIDE_SECRET), NULL, 1, out), HL_EINVAL);
    /* A NULL body of length 0 is the empty body. */
    assert_int_equal(hl_sign_hex(LIT(GUIDE_SECRET), NULL, 0, out), HL_OK);
    assert_string_equal(out, "85d6e0ec84d8f115f746f11f4fad38133ad5aa88d8dc2808d84371fe6a87bf94");
}

static void test_hmac_raw(void **state)
{
    (void)state;
    static const uint8_t want[HL_SHA256_LEN] = {
        0x5b, 0xdc, 0xc1, 0x46, 0xbf, 0x60, 0x75, 0x4e, 0x6a, 0x04, 0x24,
        0x26, 0x08, 0x95, 0x75, 0xc7, 0x5a, 0x00, 0x3f, 0x08, 0x9d, 0x27,
        0x39, 0x83, 0x9d, 0xec, 0x58, 0xb9, 0x64, 0xec, 0x38, 0x43,
    };
    uint8_t mac[HL_SHA256_LEN];
    assert_int_equal(hl_hmac_sha256(LIT("Jefe"), LIT("what do ya want for nothing?"), mac), HL_OK);
    assert_memory_equal(mac, want, sizeof(want));
}

static void test_std_vectors(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(std_cases); i++) {
        const struct std_case *c = &std_cases[i];
        char out[HL_SIGN_STD_SIZE];
        memset(out, 'x', sizeof(out));
        assert_int_equal(hl_sign_std(c->secret, strlen(c->secret), c->id, strlen(c->id), c->ts,
                                     c->body, c->body_len, out, sizeof(out)),
                         HL_OK);
        assert_string_equal(out, c->sig);
    }
}

static void test_std_key(void **state)
{
    (void)state;
    uint8_t key[HL_STD_KEY_MAX];
    size_t n = 0;
    assert_int_equal(
        hl_std_key(LIT("whsec_bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2"), key, sizeof(key), &n), HL_OK);
    assert_int_equal(n, 24);
    assert_memory_equal(key, "new-secret-bytes-0123456", 24);
    assert_int_equal(hl_std_key(LIT("bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2"), key, sizeof(key), &n),
                     HL_OK);
    assert_memory_equal(key, "new-secret-bytes-0123456", 24);
    /* A cap smaller than the key. */
    assert_int_equal(hl_std_key(LIT("whsec_bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2"), key, 23, &n),
                     HL_ETOOBIG);
}

static void test_std_errors(void **state)
{
    (void)state;
    char out[HL_SIGN_STD_SIZE];
    char big[HL_SECRET_MAX + 2];
    const char *body = "{}";
    assert_int_equal(hl_sign_std(LIT(GUIDE_SECRET), LIT("id"), 1, body, 2, out, sizeof(out) - 1),
                     HL_ETOOBIG);
    assert_int_equal(hl_sign_std(LIT(GUIDE_SECRET), LIT("id"), 1, body, 2, NULL, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(NULL, 0, LIT("id"), 1, body, 2, out, sizeof(out)), HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT("whsec_"), LIT("id"), 1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT(""), LIT("id"), 1, body, 2, out, sizeof(out)), HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT("whsec_!!!!"), LIT("id"), 1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT("whsec_A"), LIT("id"), 1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT(GUIDE_SECRET), LIT("id"), -1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT(GUIDE_SECRET), NULL, 2, 1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
    assert_int_equal(hl_sign_std(LIT(GUIDE_SECRET), LIT("id"), 1, NULL, 2, out, sizeof(out)),
                     HL_EINVAL);
    /* A key longer than HL_STD_KEY_MAX, and a secret longer than HL_SECRET_MAX. */
    memset(big, 'A', sizeof(big));
    assert_int_equal(hl_sign_std(big, 400, LIT("id"), 1, body, 2, out, sizeof(out)), HL_ETOOBIG);
    assert_int_equal(hl_sign_std(big, sizeof(big), LIT("id"), 1, body, 2, out, sizeof(out)),
                     HL_EINVAL);
}

/* The MAC context is cached per thread: several threads signing at once must each get the
 * right answers (and the contexts must be freed when they exit, which ASan checks). */
static void *sign_many(void *arg)
{
    (void)arg;
    for (int i = 0; i < 500; i++) {
        char hex[HL_SIGN_HEX_SIZE], std[HL_SIGN_STD_SIZE];
        const struct hex_case *h = &hex_cases[(size_t)i % N(hex_cases)];
        const struct std_case *s = &std_cases[(size_t)i % N(std_cases)];
        if (hl_sign_hex(h->secret, h->secret_len, h->body, h->body_len, hex) != HL_OK ||
            strcmp(hex, h->hex) != 0)
            return (void *)1;
        if (hl_sign_std(s->secret, strlen(s->secret), s->id, strlen(s->id), s->ts, s->body,
                        s->body_len, std, sizeof(std)) != HL_OK ||
            strcmp(std, s->sig) != 0)
            return (void *)1;
    }
    return NULL;
}

static void test_threads(void **state)
{
    (void)state;
    pthread_t t[4];
    for (size_t i = 0; i < N(t); i++)
        assert_int_equal(pthread_create(&t[i], NULL, sign_many, NULL), 0);
    for (size_t i = 0; i < N(t); i++) {
        void *ret = (void *)1;
        assert_int_equal(pthread_join(t[i], &ret), 0);
        assert_null(ret);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hex_vectors), cmocka_unit_test(test_hex_errors),
        cmocka_unit_test(test_hmac_raw),    cmocka_unit_test(test_std_vectors),
        cmocka_unit_test(test_std_key),     cmocka_unit_test(test_std_errors),
        cmocka_unit_test(test_threads),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
