/* Tests for src/crypto/token.c: portal links and console session cookies.
 *
 * The MAC is recomputed here with OpenSSL's HMAC directly, so a bug shared by signing and
 * verifying in token.c cannot hide. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "crypto/token.h"

static const uint8_t KEY[HL_TOKEN_KEY_LEN] = "0123456789abcdef0123456789abcdef";
#define NOW 1764500000000LL

static struct hl_token sample(void)
{
    struct hl_token t = {.kind = HL_TOKEN_PORTAL, .expires_at = NOW + 3600000, .read_only = 1};
    snprintf(t.app_uid, sizeof(t.app_uid), "app-4es5HC6mO3G5");
    snprintf(t.id, sizeof(t.id), "tok_Zm9vYmFyYmF6cXV4");
    return t;
}

/* Signs payload text with KEY the way the format says, into out. */
static void forge(const char *payload, const uint8_t *key, char *out, size_t cap)
{
    uint8_t mac[32];
    unsigned int n = 0;
    assert_non_null(HMAC(EVP_sha256(), key, HL_TOKEN_KEY_LEN, (const uint8_t *)payload,
                         strlen(payload), mac, &n));
    assert_true(cap > HL_B64_LEN(strlen(payload)) + 1 + HL_B64_LEN(32));
    size_t at = hl_b64_encode((const uint8_t *)payload, strlen(payload), out, 1);
    out[at++] = '.';
    hl_b64_encode(mac, 32, out + at, 1);
}

static void round_trip(void **state)
{
    (void)state;
    struct hl_token t = sample(), got;
    char text[HL_TOKEN_MAX + 1];
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_OK);
    /* the text is what the format says, MAC included */
    char want[HL_TOKEN_MAX + 1];
    forge("hl1|p|app-4es5HC6mO3G5|1764503600000|1|tok_Zm9vYmFyYmF6cXV4|", KEY, want, sizeof(want));
    assert_string_equal(text, want);
    assert_int_equal(hl_token_verify(KEY, text, strlen(text), HL_TOKEN_PORTAL, NOW, &got), HL_OK);
    assert_int_equal(got.kind, HL_TOKEN_PORTAL);
    assert_string_equal(got.app_uid, t.app_uid);
    assert_int_equal(got.expires_at, t.expires_at);
    assert_int_equal(got.read_only, 1);
    assert_string_equal(got.id, t.id);
    assert_string_equal(got.key_uid, "");
    /* URL-safe: fits a fragment and a cookie as it is */
    for (const char *p = text; *p; p++)
        assert_non_null(
            strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.", *p));

    /* a session with its key */
    t.kind = HL_TOKEN_SESSION;
    t.read_only = 0;
    snprintf(t.key_uid, sizeof(t.key_uid), "key_xoLrZOuQkA1d");
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_OK);
    assert_int_equal(hl_token_verify(KEY, text, strlen(text), HL_TOKEN_SESSION, NOW, &got), HL_OK);
    assert_string_equal(got.key_uid, "key_xoLrZOuQkA1d");
    assert_int_equal(got.read_only, 0);
    /* a session is not a portal link */
    assert_int_equal(hl_token_verify(KEY, text, strlen(text), HL_TOKEN_PORTAL, NOW, &got),
                     HL_EINVAL);
}

static void expiry(void **state)
{
    (void)state;
    struct hl_token t = sample(), got;
    char text[HL_TOKEN_MAX + 1];
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_OK);
    size_t n = strlen(text);
    assert_int_equal(hl_token_verify(KEY, text, n, HL_TOKEN_PORTAL, t.expires_at - 1, &got), HL_OK);
    assert_int_equal(hl_token_verify(KEY, text, n, HL_TOKEN_PORTAL, t.expires_at, &got), HL_ESTALE);
    assert_int_equal(got.expires_at, t.expires_at); /* filled: the caller says when */
    assert_int_equal(hl_token_verify(KEY, text, n, HL_TOKEN_PORTAL, t.expires_at + 1, &got),
                     HL_ESTALE);
}

static void forged(void **state)
{
    (void)state;
    struct hl_token t = sample(), got;
    char text[HL_TOKEN_MAX + 1];
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_OK);
    size_t n = strlen(text);
    /* another key */
    uint8_t other[HL_TOKEN_KEY_LEN];
    memcpy(other, KEY, sizeof(other));
    other[0] ^= 1;
    assert_int_equal(hl_token_verify(other, text, n, HL_TOKEN_PORTAL, NOW, &got), HL_EBADSIG);
    /* every single character changed, one at a time: never accepted */
    for (size_t i = 0; i < n; i++) {
        char copy[HL_TOKEN_MAX + 1];
        memcpy(copy, text, n + 1);
        copy[i] = copy[i] == 'A' ? 'B' : 'A';
        int rc = hl_token_verify(KEY, copy, n, HL_TOKEN_PORTAL, NOW, &got);
        /* base64 may ignore the last character's spare bits: then it is the same token */
        if (rc == HL_OK)
            assert_true(i == n - 1 || text[i] == '.' ||
                        i + 1 == (size_t)(strchr(text, '.') - text));
        else
            assert_true(rc == HL_EBADSIG || rc == HL_EINVAL);
    }
    /* a payload signed properly but for the other kind, or read-write, is what it says */
    char raised[HL_TOKEN_MAX + 1];
    forge("hl1|p|app-4es5HC6mO3G5|1764503600000|0|tok_Zm9vYmFyYmF6cXV4|", other, raised,
          sizeof(raised));
    assert_int_equal(hl_token_verify(KEY, raised, strlen(raised), HL_TOKEN_PORTAL, NOW, &got),
                     HL_EBADSIG);
}

/* Payloads that verify (they carry the right MAC) but break the format: refused. */
static void malformed(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",
        "hl1",
        "hl2|p|app-x|1764503600000|0|tok_1|",
        "hl1|x|app-x|1764503600000|0|tok_1|",
        "hl1|pp|app-x|1764503600000|0|tok_1|",
        "hl1|p||1764503600000|0|tok_1|",
        "hl1|p|app x|1764503600000|0|tok_1|",
        "hl1|p|app-x|01764503600000|0|tok_1|",
        "hl1|p|app-x|+1764503600000|0|tok_1|",
        "hl1|p|app-x|0|0|tok_1|",
        "hl1|p|app-x|99999999999999999999|0|tok_1|",
        "hl1|p|app-x|1764503600000|2|tok_1|",
        "hl1|p|app-x|1764503600000||tok_1|",
        "hl1|p|app-x|1764503600000|0||",
        "hl1|p|app-x|1764503600000|0|tok_1",
        "hl1|p|app-x|1764503600000|0|tok_1||",
        "hl1|p|app-x|1764503600000|0|tok_1|key|x",
        "hl1|p|app-x|1764503600000|0|tok_1|k\xc3\xa9y",
        "hl1|p|app-x|1764503600000|0|tok/1|",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[HL_TOKEN_MAX + 1];
        struct hl_token got;
        forge(bad[i], KEY, text, sizeof(text));
        int rc = hl_token_verify(KEY, text, strlen(text), HL_TOKEN_PORTAL, NOW, &got);
        if (rc != HL_EINVAL)
            fail_msg("payload '%s' gave %d, want HL_EINVAL", bad[i], rc);
    }
    /* texts that are not tokens */
    static const char *const junk[] = {"abc", ".", "abc.", ".abc", "a.b.c", "!!!!.????"};
    for (size_t i = 0; i < sizeof(junk) / sizeof(junk[0]); i++) {
        struct hl_token got;
        assert_int_equal(hl_token_verify(KEY, junk[i], strlen(junk[i]), HL_TOKEN_PORTAL, NOW, &got),
                         HL_EINVAL);
    }
    char big[HL_TOKEN_MAX + 2];
    memset(big, 'A', sizeof(big) - 1);
    big[HL_TOKEN_MAX + 1] = '\0';
    big[10] = '.';
    struct hl_token got;
    assert_int_equal(hl_token_verify(KEY, big, HL_TOKEN_MAX + 1, HL_TOKEN_PORTAL, NOW, &got),
                     HL_EINVAL);
}

/* What sign refuses: fields that would break the format. */
static void sign_refuses(void **state)
{
    (void)state;
    char text[HL_TOKEN_MAX + 1];
    struct hl_token t = sample();
    snprintf(t.app_uid, sizeof(t.app_uid), "app|x");
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_EINVAL);
    t = sample();
    t.app_uid[0] = '\0';
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_EINVAL);
    t = sample();
    snprintf(t.key_uid, sizeof(t.key_uid), "key x");
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_EINVAL);
    t = sample();
    t.expires_at = 0;
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_EINVAL);
    t = sample();
    t.kind = (enum hl_token_kind)'x';
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_EINVAL);
    t = sample();
    assert_int_equal(hl_token_sign(KEY, &t, text, 20), HL_ETOOBIG);
    /* the longest fields fit HL_TOKEN_MAX */
    memset(t.app_uid, 'a', HL_ID_MAX - 1);
    t.app_uid[HL_ID_MAX - 1] = '\0';
    memcpy(t.id, t.app_uid, HL_ID_MAX);
    memcpy(t.key_uid, t.app_uid, HL_ID_MAX);
    t.expires_at = INT64_MAX;
    assert_int_equal(hl_token_sign(KEY, &t, text, sizeof(text)), HL_OK);
    assert_true(strlen(text) <= HL_TOKEN_MAX);
    struct hl_token got;
    assert_int_equal(hl_token_verify(KEY, text, strlen(text), HL_TOKEN_PORTAL, NOW, &got), HL_OK);
    assert_int_equal(got.expires_at, INT64_MAX);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(round_trip), cmocka_unit_test(expiry),       cmocka_unit_test(forged),
        cmocka_unit_test(malformed),  cmocka_unit_test(sign_refuses),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
