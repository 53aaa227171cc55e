/* Tests for src/receiver/verify.c (the public libhookline API).
 *
 * The signatures are literals produced outside this code base (see sign_test.c for how):
 * openssl dgst -hmac for the hex scheme, openssl -macopt hexkey: and node's crypto for Standard
 * Webhooks, cross-checked with the npm standardwebhooks and svix packages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/err.h"
#include "crypto/sign.h"
#include "hookline/verify.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define LIT(s) s, sizeof(s) - 1

#define GUIDE_BODY                                                                                 \
    "{\"eventId\":\"evt_A1b2C3d4E5f6\",\"event\":\"agent.created\",\"timestamp\":\"2025-01-"       \
    "20T14:35:22.123Z\",\"appUid\":\"your-app-uid\",\"version\":1,\"data\":{\"uid\":\"agent-"      \
    "abc123\",\"appUid\":\"app-123\",\"agentName\":\"Customer Support "                            \
    "Agent\",\"externalTenantId\":\"tenant-xyz789\",\"live\":true,\"createdAt\":\"2025-01-"        \
    "20T14:35:22Z\"}}"
/* GUIDE_BODY with "live":true changed to "live":false. */
#define TAMPERED_BODY                                                                              \
    "{\"eventId\":\"evt_A1b2C3d4E5f6\",\"event\":\"agent.created\",\"timestamp\":\"2025-01-"       \
    "20T14:35:22.123Z\",\"appUid\":\"your-app-uid\",\"version\":1,\"data\":{\"uid\":\"agent-"      \
    "abc123\",\"appUid\":\"app-123\",\"agentName\":\"Customer Support "                            \
    "Agent\",\"externalTenantId\":\"tenant-xyz789\",\"live\":false,\"createdAt\":\"2025-01-"       \
    "20T14:35:22Z\"}}"
#define UTF8_BODY "{\"agentName\":\"Café ☕ 🚀 Ünïcödé\",\"externalTenantId\":\"tenant-日本\"}"
#define GUIDE_SECRET "whsec_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6"
#define NEW_SECRET "whsec_bmV3LXNlY3JldC1ieXRlcy0wMTIzNDU2"

/* X-Webhook-Signature values. */
#define HEX_GUIDE "55199eff7b48fba7b04ae8c2cfa089907093a37beebaced63b7a3ec3fb24db93"
#define HEX_GUIDE_UPPER "55199EFF7B48FBA7B04AE8C2CFA089907093A37BEEBACED63B7A3EC3FB24DB93"
#define HEX_EMPTY "85d6e0ec84d8f115f746f11f4fad38133ad5aa88d8dc2808d84371fe6a87bf94"
#define HEX_UTF8 "5effcee95403f6d1b59a1034186be95df0a56a99f2ade04853282c580b5ab96b"
#define HEX_NUL "b3c5c68c70de114108298cb8c00d86664c3d9052256a0a81ef2f4a719cbb5785"

/* webhook-signature values; all but the first at TS over GUIDE_BODY unless noted. */
#define SPEC_SIG "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
#define SIG_GUIDE "v1,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A=" /* id evt_A1b2C3d4E5f6 */
#define SIG_EMPTY "v1,iAXSVwwaAVE5v+YGLgiCUQ2OpZJ3yxv2Yjzbg+kRCsA=" /* same id, empty body */
#define SIG_UTF8 "v1,3gps35rIpsjZ50xc66EEkE5j5n+r25cN+n6luGSCzww="  /* id evt_emoji */
#define SIG_ROT_OLD                                                                                \
    "v1,nDPX0nEsFdzLeIg9+DXgP7IlNbrAU/QQ/KhXEXOS/is="                 /* msg_rotate, GUIDE_SECRET  \
                                                                       */
#define SIG_ROT_NEW "v1,cb/OjT6FJBfA5qINsJp3DcIjVLscaScmU680Q4SzvOg=" /* msg_rotate, NEW_SECRET */
#define SIG_OTHER "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc="
#define TS 1737383722
#define TS_S "1737383722"
#define ID "evt_A1b2C3d4E5f6"

struct hex_case {
    const char *name;
    const char *secret;
    const char *body;
    size_t body_len;
    const char *header;
    int want;
};

static const struct hex_case hex_cases[] = {
    {"prefixed", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, HOOKLINE_OK},
    {"bare hex", GUIDE_SECRET, LIT(GUIDE_BODY), HEX_GUIDE, HOOKLINE_OK},
    {"uppercase hex", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE_UPPER, HOOKLINE_OK},
    {"empty body", GUIDE_SECRET, LIT(""), "sha256=" HEX_EMPTY, HOOKLINE_OK},
    {"NULL empty body", GUIDE_SECRET, NULL, 0, "sha256=" HEX_EMPTY, HOOKLINE_OK},
    {"utf8 body", GUIDE_SECRET, LIT(UTF8_BODY), "sha256=" HEX_UTF8, HOOKLINE_OK},
    {"NUL in body", GUIDE_SECRET, LIT("a\0b"), "sha256=" HEX_NUL, HOOKLINE_OK},
    {"secret without prefix", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", LIT("{\"test\": 2432232314}"),
     "sha256=5ee0e8e3d564cf9cbeea807e97cecc6cccf0b0e20aa28073cc267a2881a839fc", HOOKLINE_OK},
    {"tampered body", GUIDE_SECRET, LIT(TAMPERED_BODY), "sha256=" HEX_GUIDE,
     HOOKLINE_ERR_SIGNATURE},
    {"body one byte short", GUIDE_SECRET, GUIDE_BODY, sizeof(GUIDE_BODY) - 2, HEX_GUIDE,
     HOOKLINE_ERR_SIGNATURE},
    {"wrong secret", "whsec_A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p7", LIT(GUIDE_BODY), HEX_GUIDE,
     HOOKLINE_ERR_SIGNATURE},
    {"secret without its prefix", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", LIT(GUIDE_BODY), HEX_GUIDE,
     HOOKLINE_ERR_SIGNATURE},
    {"other digest", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_EMPTY, HOOKLINE_ERR_SIGNATURE},
    {"63 digits", GUIDE_SECRET, LIT(GUIDE_BODY),
     "sha256=55199eff7b48fba7b04ae8c2cfa089907093a37beebaced63b7a3ec3fb24db9", HOOKLINE_ERR_FORMAT},
    {"65 digits", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE "0", HOOKLINE_ERR_FORMAT},
    {"128 digits", GUIDE_SECRET, LIT(GUIDE_BODY), HEX_GUIDE HEX_GUIDE, HOOKLINE_ERR_FORMAT},
    {"non-hex", GUIDE_SECRET, LIT(GUIDE_BODY),
     "sha256=g5199eff7b48fba7b04ae8c2cfa089907093a37beebaced63b7a3ec3fb24db93",
     HOOKLINE_ERR_FORMAT},
    {"trailing space", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE " ", HOOKLINE_ERR_FORMAT},
    {"leading space", GUIDE_SECRET, LIT(GUIDE_BODY), " sha256=" HEX_GUIDE, HOOKLINE_ERR_FORMAT},
    {"uppercase prefix", GUIDE_SECRET, LIT(GUIDE_BODY), "SHA256=" HEX_GUIDE, HOOKLINE_ERR_FORMAT},
    {"other algorithm", GUIDE_SECRET, LIT(GUIDE_BODY), "sha1=" HEX_GUIDE, HOOKLINE_ERR_FORMAT},
    {"prefix twice", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=sha256=" HEX_GUIDE,
     HOOKLINE_ERR_FORMAT},
    {"prefix only", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=", HOOKLINE_ERR_FORMAT},
    {"empty header", GUIDE_SECRET, LIT(GUIDE_BODY), "", HOOKLINE_ERR_FORMAT},
    {"missing header", GUIDE_SECRET, LIT(GUIDE_BODY), NULL, HOOKLINE_ERR_FORMAT},
    {"base64 instead of hex", GUIDE_SECRET, LIT(GUIDE_BODY), SIG_GUIDE, HOOKLINE_ERR_FORMAT},
    {"missing secret", NULL, LIT(GUIDE_BODY), HEX_GUIDE, HOOKLINE_ERR_SECRET},
    {"empty secret", "", LIT(GUIDE_BODY), HEX_GUIDE, HOOKLINE_ERR_SECRET},
    {"NULL body with length", GUIDE_SECRET, NULL, 5, HEX_GUIDE, HOOKLINE_ERR_INVALID},
};

static void test_verify_signature_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(hex_cases); i++) {
        const struct hex_case *c = &hex_cases[i];
        int rc = hookline_verify_signature(c->secret, c->body, c->body_len, c->header);
        if (rc != c->want)
            fail_msg("case \"%s\": got %d (%s), want %d", c->name, rc, hookline_strerror(rc),
                     c->want);
    }
}

static void test_verify_signature_huge(void **state)
{
    (void)state;
    size_t n = 1 << 20;
    char *header = malloc(n + 1), *secret = malloc(n + 1);
    assert_non_null(header);
    assert_non_null(secret);
    memset(header, 'a', n);
    header[n] = '\0';
    memset(secret, 'a', n);
    secret[n] = '\0';
    assert_int_equal(hookline_verify_signature(GUIDE_SECRET, LIT(GUIDE_BODY), header),
                     HOOKLINE_ERR_FORMAT);
    assert_int_equal(hookline_verify_signature(secret, LIT(GUIDE_BODY), HEX_GUIDE),
                     HOOKLINE_ERR_SECRET);
    free(header);
    free(secret);
}

struct std_case {
    const char *name;
    const char *secret;
    const char *id;
    const char *ts;
    const char *sig;
    const char *body;
    size_t body_len;
    int64_t now;
    int64_t tolerance;
    int want;
};

#define TOO_MANY                                                                                   \
    SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER  \
              " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER  \
              " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_GUIDE
#define SIXTEEN                                                                                    \
    SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER  \
              " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER " " SIG_OTHER  \
              " " SIG_OTHER " " SIG_OTHER " " SIG_GUIDE

static const struct std_case std_cases[] = {
    {"spec vector", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_p5jXN8AQM9LWM0D4loKWxJek",
     "1614265330", SPEC_SIG, LIT("{\"test\": 2432232314}"), 1614265330, 0, HOOKLINE_OK},
    {"spec vector, unprefixed secret", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
     "msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", SPEC_SIG, LIT("{\"test\": 2432232314}"),
     1614265330, 0, HOOKLINE_OK},
    {"guide body", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"unprefixed secret", "A1b2C3d4E5f6G7h8I9j0K1l2M3n4O5p6", ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY),
     TS, 0, HOOKLINE_OK},
    {"empty body", GUIDE_SECRET, ID, TS_S, SIG_EMPTY, LIT(""), TS, 0, HOOKLINE_OK},
    {"NULL empty body", GUIDE_SECRET, ID, TS_S, SIG_EMPTY, NULL, 0, TS, 0, HOOKLINE_OK},
    {"utf8 body", GUIDE_SECRET, "evt_emoji", TS_S, SIG_UTF8, LIT(UTF8_BODY), TS, 0, HOOKLINE_OK},
    {"padded secret", "whsec_AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", "msg_padded", TS_S,
     "v1,A0uHT3JPLlwew32ArHRW5peRgyy1T2mtLlS8VIIoA4A=", LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"+/ secret", "whsec_+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7", "msg_plus", TS_S,
     "v1,Omr6k8Q1t15vyD330UsfCBcat4EJRxM+uTL6KNl9GCc=", LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"timestamp 0", GUIDE_SECRET, "msg_zero", "0",
     "v1,5ndGEee7WKq6g0Eqfafm7BAOpo38p3blB9MuuR+kwvM=", LIT("{}"), 100, 0, HOOKLINE_OK},
    /* Leading zeros are read as the number, as the reference libraries do (parseInt). */
    {"leading zeros", GUIDE_SECRET, ID, "0" TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},

    /* Several signatures: any v1 match verifies; other versions are skipped. */
    {"match last of three", GUIDE_SECRET, ID, TS_S,
     SIG_OTHER " v2,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A= " SIG_GUIDE, LIT(GUIDE_BODY), TS,
     0, HOOKLINE_OK},
    {"match first", GUIDE_SECRET, ID, TS_S, SIG_GUIDE " " SIG_OTHER, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_OK},
    {"extra spaces", GUIDE_SECRET, ID, TS_S, "  " SIG_OTHER "   " SIG_GUIDE "  ", LIT(GUIDE_BODY),
     TS, 0, HOOKLINE_OK},
    {"sixteen entries", GUIDE_SECRET, ID, TS_S, SIXTEEN, LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"rotation, old secret", GUIDE_SECRET, "msg_rotate", TS_S, SIG_ROT_OLD " " SIG_ROT_NEW,
     LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"rotation, new secret", NEW_SECRET, "msg_rotate", TS_S, SIG_ROT_OLD " " SIG_ROT_NEW,
     LIT(GUIDE_BODY), TS, 0, HOOKLINE_OK},
    {"rotation, unrelated secret", "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_rotate", TS_S,
     SIG_ROT_OLD " " SIG_ROT_NEW, LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_SIGNATURE},
    {"only v2", GUIDE_SECRET, ID, TS_S, "v2,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A=",
     LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_SIGNATURE},
    {"v1a", GUIDE_SECRET, ID, TS_S, "v1a,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A=",
     LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_SIGNATURE},

    /* Tampering. */
    {"tampered body", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(TAMPERED_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"other id", GUIDE_SECRET, "evt_A1b2C3d4E5f7", TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"other timestamp", GUIDE_SECRET, ID, "1737383723", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"wrong secret", NEW_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"hex-scheme key", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS,
     0, HOOKLINE_ERR_SIGNATURE},
    {"truncated signature", GUIDE_SECRET, ID, TS_S,
     "v1,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"short signature", GUIDE_SECRET, ID, TS_S, "v1,dawfeoifkpqwoekfpqoekf", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"signature with a tail", GUIDE_SECRET, ID, TS_S, SIG_GUIDE ",x", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"tab after signature", GUIDE_SECRET, ID, TS_S, SIG_GUIDE "\t", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SIGNATURE},

    /* Time window: +-300 s by default, inclusive. */
    {"300 s old", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS + 300, 0, HOOKLINE_OK},
    {"301 s old", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS + 301, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"300 s ahead", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS - 300, 0, HOOKLINE_OK},
    {"301 s ahead", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS - 301, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"negative tolerance is default", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS + 301,
     -5, HOOKLINE_ERR_TIMESTAMP},
    {"tolerance 10, 10 s", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS + 10, 10,
     HOOKLINE_OK},
    {"tolerance 10, 11 s", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS - 11, 10,
     HOOKLINE_ERR_TIMESTAMP},
    {"tolerance 1 day", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS + 86400, 86400,
     HOOKLINE_OK},
    {"now INT64_MAX", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), INT64_MAX, INT64_MAX,
     HOOKLINE_OK},
    {"now INT64_MIN", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), INT64_MIN, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"stale and forged", GUIDE_SECRET, ID, TS_S, SIG_OTHER, LIT(GUIDE_BODY), TS + 1000, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"real clock", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), 0, 0,
     HOOKLINE_ERR_TIMESTAMP},

    /* Malformed timestamps. */
    {"missing timestamp", GUIDE_SECRET, ID, NULL, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"empty timestamp", GUIDE_SECRET, ID, "", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"word timestamp", GUIDE_SECRET, ID, "hello", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"trailing junk", GUIDE_SECRET, ID, TS_S "abc", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"fraction", GUIDE_SECRET, ID, TS_S ".5", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"negative", GUIDE_SECRET, ID, "-" TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"plus sign", GUIDE_SECRET, ID, "+" TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"leading space", GUIDE_SECRET, ID, " " TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"ISO 8601", GUIDE_SECRET, ID, "2025-01-20T14:35:22Z", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"19 digits", GUIDE_SECRET, ID, "9223372036854775807", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"18 digits", GUIDE_SECRET, ID, "999999999999999999", SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_TIMESTAMP},

    /* Malformed signature headers. */
    {"missing signature", GUIDE_SECRET, ID, TS_S, NULL, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"empty signature", GUIDE_SECRET, ID, TS_S, "", LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_FORMAT},
    {"spaces only", GUIDE_SECRET, ID, TS_S, "   ", LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_FORMAT},
    {"no comma", GUIDE_SECRET, ID, TS_S, "v1", LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_FORMAT},
    {"empty signature part", GUIDE_SECRET, ID, TS_S, "v1,", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"empty version", GUIDE_SECRET, ID, TS_S,
     ",4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A=", LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_FORMAT},
    {"space after version", GUIDE_SECRET, ID, TS_S,
     "v1 ,4KROFeecT8O9NV2wQpUkV9B+IFJd33dpUzAHQT4JT3A=", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"one good, one broken", GUIDE_SECRET, ID, TS_S, SIG_GUIDE " junk", LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"seventeen entries", GUIDE_SECRET, ID, TS_S, TOO_MANY, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"hex scheme header", GUIDE_SECRET, ID, TS_S, "sha256=" HEX_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},

    /* Malformed ids and secrets, bad arguments. */
    {"missing id", GUIDE_SECRET, NULL, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_FORMAT},
    {"empty id", GUIDE_SECRET, "", TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_FORMAT},
    {"missing secret", NULL, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_SECRET},
    {"empty secret", "", ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0, HOOKLINE_ERR_SECRET},
    {"prefix-only secret", "whsec_", ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SECRET},
    {"non-base64 secret", "whsec_not base64!", ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0,
     HOOKLINE_ERR_SECRET},
    {"NULL body with length", GUIDE_SECRET, ID, TS_S, SIG_GUIDE, NULL, 3, TS, 0,
     HOOKLINE_ERR_INVALID},
};

static void test_verify_standard_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(std_cases); i++) {
        const struct std_case *c = &std_cases[i];
        int rc = hookline_verify_standard(c->secret, c->id, c->ts, c->sig, c->body, c->body_len,
                                          c->now, c->tolerance);
        if (rc != c->want)
            fail_msg("case \"%s\": got %d (%s), want %d", c->name, rc, hookline_strerror(rc),
                     c->want);
    }
}

/* now_seconds 0 reads the clock: a message signed just now verifies. */
static void test_verify_standard_now(void **state)
{
    (void)state;
    char sig[HL_SIGN_STD_SIZE], ts[32];
    int64_t now = (int64_t)time(NULL);
    snprintf(ts, sizeof(ts), "%lld", (long long)now);
    assert_int_equal(
        hl_sign_std(LIT(GUIDE_SECRET), LIT("msg_now"), now, LIT(GUIDE_BODY), sig, sizeof(sig)),
        HL_OK);
    assert_int_equal(
        hookline_verify_standard(GUIDE_SECRET, "msg_now", ts, sig, LIT(GUIDE_BODY), 0, 0),
        HOOKLINE_OK);
}

static void test_verify_standard_limits(void **state)
{
    (void)state;
    char id[HOOKLINE_ID_HEADER_MAX + 2], sig[HL_SIGN_STD_SIZE];
    memset(id, 'i', sizeof(id));
    /* An id of exactly the maximum length is accepted... */
    id[HOOKLINE_ID_HEADER_MAX] = '\0';
    assert_int_equal(
        hl_sign_std(LIT(GUIDE_SECRET), id, HOOKLINE_ID_HEADER_MAX, TS, LIT("{}"), sig, sizeof(sig)),
        HL_OK);
    assert_int_equal(hookline_verify_standard(GUIDE_SECRET, id, TS_S, sig, LIT("{}"), TS, 0),
                     HOOKLINE_OK);
    /* ...one byte more is not. */
    id[HOOKLINE_ID_HEADER_MAX] = 'i';
    id[HOOKLINE_ID_HEADER_MAX + 1] = '\0';
    assert_int_equal(hookline_verify_standard(GUIDE_SECRET, id, TS_S, sig, LIT("{}"), TS, 0),
                     HOOKLINE_ERR_FORMAT);

    /* A header over the limit, even if it holds a valid signature. */
    size_t n = HOOKLINE_SIGNATURE_HEADER_MAX + 1;
    char *header = malloc(n + 1);
    assert_non_null(header);
    memset(header, ' ', n);
    memcpy(header, SIG_GUIDE, sizeof(SIG_GUIDE) - 1);
    header[n] = '\0';
    assert_int_equal(
        hookline_verify_standard(GUIDE_SECRET, ID, TS_S, header, LIT(GUIDE_BODY), TS, 0),
        HOOKLINE_ERR_FORMAT);
    header[n - 1] = '\0';
    assert_int_equal(
        hookline_verify_standard(GUIDE_SECRET, ID, TS_S, header, LIT(GUIDE_BODY), TS, 0),
        HOOKLINE_OK);
    free(header);

    char secret[HOOKLINE_SECRET_MAX + 2];
    memset(secret, 'A', sizeof(secret) - 1);
    secret[sizeof(secret) - 1] = '\0';
    assert_int_equal(hookline_verify_standard(secret, ID, TS_S, SIG_GUIDE, LIT(GUIDE_BODY), TS, 0),
                     HOOKLINE_ERR_SECRET);
}

struct env_case {
    const char *name;
    const char *body;
    int want;
};

static const struct env_case env_cases[] = {
    {"minimal", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}", HOOKLINE_OK},
    {"missing eventId", "{\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}", HOOKLINE_ERR_PARSE},
    {"missing event", "{\"eventId\":\"e\",\"timestamp\":\"t\",\"data\":{}}", HOOKLINE_ERR_PARSE},
    {"missing timestamp", "{\"eventId\":\"e\",\"event\":\"x\",\"data\":{}}", HOOKLINE_ERR_PARSE},
    {"missing data", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\"}", HOOKLINE_ERR_PARSE},
    {"empty eventId", "{\"eventId\":\"\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"numeric eventId", "{\"eventId\":7,\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"null event", "{\"eventId\":\"e\",\"event\":null,\"timestamp\":\"t\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"data string", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":\"d\"}",
     HOOKLINE_ERR_PARSE},
    {"data array", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":[]}",
     HOOKLINE_ERR_PARSE},
    {"data null", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":null}",
     HOOKLINE_ERR_PARSE},
    {"numeric tenant",
     "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{\"externalTenantId\":1}}",
     HOOKLINE_ERR_PARSE},
    /* webhook.test carries "externalTenantId": null: optional fields may be null. */
    {"null optional fields",
     "{\"eventId\":\"e\",\"event\":\"webhook.test\",\"timestamp\":\"t\",\"appUid\":null,"
     "\"version\":null,\"data\":{\"uid\":null,\"externalTenantId\":null}}",
     HOOKLINE_OK},
    {"object uid", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{\"uid\":{}}}",
     HOOKLINE_ERR_PARSE},
    {"array appUid",
     "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"appUid\":[],\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"fractional version",
     "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"version\":1.5,\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"string version",
     "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"version\":\"1\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"duplicate key",
     "{\"eventId\":\"e\",\"eventId\":\"f\",\"event\":\"x\",\"timestamp\":\"t\","
     "\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"NUL escape", "{\"eventId\":\"e\\u0000f\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"invalid UTF-8", "{\"eventId\":\"e\xff\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}",
     HOOKLINE_ERR_PARSE},
    {"trailing garbage", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{}}x",
     HOOKLINE_ERR_PARSE},
    {"truncated", "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{",
     HOOKLINE_ERR_PARSE},
    {"array", "[1,2]", HOOKLINE_ERR_PARSE},
    {"string", "\"s\"", HOOKLINE_ERR_PARSE},
    {"null", "null", HOOKLINE_ERR_PARSE},
    {"empty", "", HOOKLINE_ERR_PARSE},
    {"whitespace", "  \n", HOOKLINE_ERR_PARSE},
    {"garbage", "\x01\x02\x03", HOOKLINE_ERR_PARSE},
};

static void test_envelope_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(env_cases); i++) {
        const struct env_case *c = &env_cases[i];
        struct hookline_envelope env;
        memset(&env, 'x', sizeof(env));
        int rc = hookline_parse_envelope(c->body, strlen(c->body), &env);
        if (rc != c->want)
            fail_msg("case \"%s\": got %d (%s), want %d", c->name, rc, hookline_strerror(rc),
                     c->want);
        if (rc != HOOKLINE_OK)
            assert_string_equal(env.event_id, ""); /* zeroed on error */
    }
}

static void test_envelope_guide(void **state)
{
    (void)state;
    struct hookline_envelope env;
    assert_int_equal(hookline_parse_envelope(LIT(GUIDE_BODY), &env), HOOKLINE_OK);
    assert_string_equal(env.event_id, "evt_A1b2C3d4E5f6");
    assert_string_equal(env.event, "agent.created");
    assert_string_equal(env.timestamp, "2025-01-20T14:35:22.123Z");
    assert_string_equal(env.app_uid, "your-app-uid");
    assert_string_equal(env.external_tenant_id, "tenant-xyz789");
    assert_string_equal(env.data_uid, "agent-abc123");
    assert_int_equal(env.version, 1);

    /* Optional fields absent: empty strings and version 0. */
    static const char minimal[] =
        "{\"eventId\":\"e\",\"event\":\"webhook.test\",\"timestamp\":\"t\",\"data\":{}}";
    assert_int_equal(hookline_parse_envelope(LIT(minimal), &env), HOOKLINE_OK);
    assert_string_equal(env.event, "webhook.test");
    assert_string_equal(env.app_uid, "");
    assert_string_equal(env.external_tenant_id, "");
    assert_string_equal(env.data_uid, "");
    assert_int_equal(env.version, 0);

    /* Escapes are decoded and UTF-8 passes through. */
    static const char utf8[] = "{\"eventId\":\"e\\\"q\",\"event\":\"x\",\"timestamp\":\"t\","
                               "\"data\":{\"externalTenantId\":\"tenant-日本-🚀\"}}";
    assert_int_equal(hookline_parse_envelope(LIT(utf8), &env), HOOKLINE_OK);
    assert_string_equal(env.event_id, "e\"q");
    assert_string_equal(env.external_tenant_id, "tenant-日本-🚀");
}

/* Field lengths: HOOKLINE_FIELD_MAX - 1 bytes fit, one more is an error. */
static void test_envelope_field_limits(void **state)
{
    (void)state;
    static const char *const fields[] = {"eventId",          "event", "timestamp", "appUid",
                                         "externalTenantId", "uid"};
    struct hookline_envelope env;
    char value[HOOKLINE_FIELD_MAX + 1], body[2048];
    for (size_t f = 0; f < N(fields); f++) {
        for (size_t len = HOOKLINE_FIELD_MAX - 1; len <= HOOKLINE_FIELD_MAX; len++) {
            memset(value, 'v', len);
            value[len] = '\0';
            const char *v = value;
            int n = snprintf(body, sizeof(body),
                             "{\"eventId\":\"%s\",\"event\":\"%s\",\"timestamp\":\"%s\","
                             "\"appUid\":\"%s\",\"data\":{\"externalTenantId\":\"%s\","
                             "\"uid\":\"%s\"}}",
                             f == 0 ? v : "e", f == 1 ? v : "x", f == 2 ? v : "t", f == 3 ? v : "a",
                             f == 4 ? v : "tn", f == 5 ? v : "u");
            assert_true(n > 0 && (size_t)n < sizeof(body));
            int want = len < HOOKLINE_FIELD_MAX ? HOOKLINE_OK : HOOKLINE_ERR_PARSE;
            if (hookline_parse_envelope(body, (size_t)n, &env) != want)
                fail_msg("field %s, length %zu", fields[f], len);
        }
    }
    assert_int_equal(hookline_parse_envelope(body, 0, &env), HOOKLINE_ERR_PARSE);
}

static void test_envelope_bad_args(void **state)
{
    (void)state;
    struct hookline_envelope env;
    assert_int_equal(hookline_parse_envelope(LIT(GUIDE_BODY), NULL), HOOKLINE_ERR_INVALID);
    assert_int_equal(hookline_parse_envelope(NULL, 10, &env), HOOKLINE_ERR_INVALID);
    assert_int_equal(hookline_parse_envelope(NULL, 0, &env), HOOKLINE_ERR_PARSE);

    /* Larger than the limit: refused before parsing. */
    size_t n = (size_t)HOOKLINE_BODY_MAX + 1;
    char *big = malloc(n);
    assert_non_null(big);
    memset(big, ' ', n);
    assert_int_equal(hookline_parse_envelope(big, n, &env), HOOKLINE_ERR_TOOBIG);

    /* Deep nesting inside data is bounded by the parser, not the stack. */
    size_t depth = 100000, o = 0;
    static const char head[] =
        "{\"eventId\":\"e\",\"event\":\"x\",\"timestamp\":\"t\",\"data\":{\"d\":";
    memcpy(big, head, sizeof(head) - 1);
    o = sizeof(head) - 1;
    memset(big + o, '[', depth);
    o += depth;
    memset(big + o, ']', depth);
    o += depth;
    memcpy(big + o, "}}", 2);
    o += 2;
    assert_int_equal(hookline_parse_envelope(big, o, &env), HOOKLINE_ERR_PARSE);
    free(big);
}

/* ---- the replay check of the guide's scheme: the signed body's own timestamp ---- */

/* GUIDE_BODY's "timestamp" is 2025-01-20T14:35:22.123Z, which is TS (and 123 ms). */
struct fresh_case {
    const char *name;
    const char *secret;
    const char *body;
    size_t body_len;
    const char *header;
    int64_t now, tolerance;
    int want;
};

static const struct fresh_case fresh_cases[] = {
    {"recent", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS, 0, HOOKLINE_OK},
    {"5 minutes late", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS + 300, 0,
     HOOKLINE_OK},
    {"5 minutes early", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS - 300, 0,
     HOOKLINE_OK},
    {"stale", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS + 301, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"a month old", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS + 30 * 86400, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"future", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS - 301, 0,
     HOOKLINE_ERR_TIMESTAMP},
    {"wider tolerance", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS + 86400, 86400,
     HOOKLINE_OK},
    {"signature before time", GUIDE_SECRET, LIT(TAMPERED_BODY), "sha256=" HEX_GUIDE,
     TS + 30 * 86400, 0, HOOKLINE_ERR_SIGNATURE},
    {"wrong secret", NEW_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS, 0,
     HOOKLINE_ERR_SIGNATURE},
    {"malformed header", GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=zz", TS, 0, HOOKLINE_ERR_FORMAT},
    {"missing header", GUIDE_SECRET, LIT(GUIDE_BODY), NULL, TS, 0, HOOKLINE_ERR_FORMAT},
    {"missing secret", NULL, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, TS, 0, HOOKLINE_ERR_SECRET},
    {"signed, no timestamp", GUIDE_SECRET, LIT(UTF8_BODY), "sha256=" HEX_UTF8, TS, 0,
     HOOKLINE_ERR_PARSE},
    {"signed, not JSON", GUIDE_SECRET, LIT("a\0b"), "sha256=" HEX_NUL, TS, 0, HOOKLINE_ERR_PARSE},
    {"signed, empty", GUIDE_SECRET, LIT(""), "sha256=" HEX_EMPTY, TS, 0, HOOKLINE_ERR_PARSE},
    {"NULL body with length", GUIDE_SECRET, NULL, 3, "sha256=" HEX_GUIDE, TS, 0,
     HOOKLINE_ERR_INVALID},
};

static void test_verify_fresh_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(fresh_cases); i++) {
        const struct fresh_case *c = &fresh_cases[i];
        int rc = hookline_verify_signature_fresh(c->secret, c->body, c->body_len, c->header, c->now,
                                                 c->tolerance);
        if (rc != c->want)
            fail_msg("case \"%s\": got %d (%s), want %d", c->name, rc, hookline_strerror(rc),
                     c->want);
    }
}

/* Timestamps as other senders may write them, signed here so that only the time is tested. */
static void test_verify_fresh_forms(void **state)
{
    (void)state;
    static const struct {
        const char *body;
        int want; /* at now = TS */
    } cases[] = {
        {"{\"timestamp\":\"2025-01-20T14:35:22Z\"}", HOOKLINE_OK},
        {"{\"timestamp\":\"2025-01-20T15:35:22.5+01:00\"}", HOOKLINE_OK},
        {"{\"timestamp\":\"2025-01-20t14:35:22.123z\"}", HOOKLINE_OK},
        {"{\"timestamp\":\"2025-01-20T14:45:22Z\"}", HOOKLINE_ERR_TIMESTAMP},
        {"{\"timestamp\":\"1969-12-31T23:59:59.999Z\"}", HOOKLINE_ERR_TIMESTAMP},
        {"{\"timestamp\":1737383722}", HOOKLINE_ERR_PARSE},
        {"{\"timestamp\":\"2025-01-20\"}", HOOKLINE_ERR_PARSE},
        {"{\"timestamp\":\"2025-01-20T14:35:22\"}", HOOKLINE_ERR_PARSE}, /* no zone */
        {"{\"timestamp\":\"2025-02-30T14:35:22Z\"}", HOOKLINE_ERR_PARSE},
        {"{\"timestamp\":null}", HOOKLINE_ERR_PARSE},
        {"[\"timestamp\"]", HOOKLINE_ERR_PARSE},
        /* two readers could pick different copies */
        {"{\"timestamp\":\"2020-01-01T00:00:00Z\",\"timestamp\":\"2025-01-20T14:35:22Z\"}",
         HOOKLINE_ERR_PARSE},
    };
    for (size_t i = 0; i < N(cases); i++) {
        char hex[HL_SIGN_HEX_SIZE], header[8 + HL_SIGN_HEX_SIZE];
        size_t len = strlen(cases[i].body);
        assert_int_equal(hl_sign_hex(LIT(GUIDE_SECRET), cases[i].body, len, hex), HL_OK);
        snprintf(header, sizeof(header), "sha256=%s", hex);
        int rc = hookline_verify_signature_fresh(GUIDE_SECRET, cases[i].body, len, header, TS, 0);
        if (rc != cases[i].want)
            fail_msg("%s: got %d (%s), want %d", cases[i].body, rc, hookline_strerror(rc),
                     cases[i].want);
    }
    /* now_seconds 0 reads the clock: GUIDE_BODY is from 2025 */
    assert_int_equal(
        hookline_verify_signature_fresh(GUIDE_SECRET, LIT(GUIDE_BODY), "sha256=" HEX_GUIDE, 0, 0),
        HOOKLINE_ERR_TIMESTAMP);
}

/* ---- one request, both schemes ---- */

#define ZEROS "sha256=0000000000000000000000000000000000000000000000000000000000000000"

struct request_case {
    const char *name;
    struct hookline_headers h;
    const char *body;
    size_t body_len;
    int64_t now;
    int want;
};

static const struct request_case request_cases[] = {
    {"guide, recent", {.signature = "sha256=" HEX_GUIDE}, LIT(GUIDE_BODY), TS, HOOKLINE_OK},
    {"guide, replayed an hour later",
     {.signature = "sha256=" HEX_GUIDE},
     LIT(GUIDE_BODY),
     TS + 3600,
     HOOKLINE_ERR_TIMESTAMP},
    {"previous secret during a rotation",
     {.signature = ZEROS, .signature_previous = "sha256=" HEX_GUIDE},
     LIT(GUIDE_BODY),
     TS,
     HOOKLINE_OK},
    {"previous secret, replayed",
     {.signature = ZEROS, .signature_previous = "sha256=" HEX_GUIDE},
     LIT(GUIDE_BODY),
     TS + 3600,
     HOOKLINE_ERR_TIMESTAMP},
    {"standard, recent",
     {.webhook_id = ID, .webhook_timestamp = TS_S, .webhook_signature = SIG_GUIDE},
     LIT(GUIDE_BODY),
     TS,
     HOOKLINE_OK},
    {"both, replayed",
     {.signature = "sha256=" HEX_GUIDE,
      .webhook_id = ID,
      .webhook_timestamp = TS_S,
      .webhook_signature = SIG_GUIDE},
     LIT(GUIDE_BODY),
     TS + 3600,
     HOOKLINE_ERR_TIMESTAMP},
    {"standard wrong, guide recent",
     {.signature = "sha256=" HEX_GUIDE,
      .webhook_id = ID,
      .webhook_timestamp = TS_S,
      .webhook_signature = SIG_OTHER},
     LIT(GUIDE_BODY),
     TS,
     HOOKLINE_OK},
    {"guide mismatch", {.signature = ZEROS}, LIT(GUIDE_BODY), TS, HOOKLINE_ERR_SIGNATURE},
    {"guide, body without a timestamp",
     {.signature = "sha256=" HEX_UTF8},
     LIT(UTF8_BODY),
     TS,
     HOOKLINE_ERR_PARSE},
    {"standard partial", {.webhook_id = ID}, LIT(GUIDE_BODY), TS, HOOKLINE_ERR_FORMAT},
    {"no header", {0}, LIT(GUIDE_BODY), TS, HOOKLINE_ERR_FORMAT},
};

static void test_verify_request_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < N(request_cases); i++) {
        const struct request_case *c = &request_cases[i];
        int rc = hookline_verify_request(GUIDE_SECRET, &c->h, c->body, c->body_len, c->now, 0);
        if (rc != c->want)
            fail_msg("case \"%s\": got %d (%s), want %d", c->name, rc, hookline_strerror(rc),
                     c->want);
    }
    struct hookline_headers h = {0};
    assert_int_equal(hookline_verify_request(GUIDE_SECRET, NULL, LIT(GUIDE_BODY), TS, 0),
                     HOOKLINE_ERR_INVALID);
    assert_int_equal(hookline_verify_request(NULL, &h, LIT(GUIDE_BODY), TS, 0),
                     HOOKLINE_ERR_FORMAT);
}

/* hookline's retry of an old event: the event's time is old, the send time is fresh. */
static void test_verify_request_retry_of_an_old_event(void **state)
{
    (void)state;
    char sig[HL_SIGN_STD_SIZE], ts[32];
    int64_t later = TS + 86400;
    snprintf(ts, sizeof(ts), "%lld", (long long)later);
    assert_int_equal(
        hl_sign_std(LIT(GUIDE_SECRET), LIT(ID), later, LIT(GUIDE_BODY), sig, sizeof(sig)), HL_OK);
    struct hookline_headers h = {.signature = "sha256=" HEX_GUIDE,
                                 .webhook_id = ID,
                                 .webhook_timestamp = ts,
                                 .webhook_signature = sig};
    assert_int_equal(hookline_verify_request(GUIDE_SECRET, &h, LIT(GUIDE_BODY), later, 0),
                     HOOKLINE_OK);
    /* the same headers replayed past the tolerance */
    assert_int_equal(hookline_verify_request(GUIDE_SECRET, &h, LIT(GUIDE_BODY), later + 301, 0),
                     HOOKLINE_ERR_TIMESTAMP);
}

static void test_strerror(void **state)
{
    (void)state;
    static const int codes[] = {
        HOOKLINE_OK,         HOOKLINE_ERR_SIGNATURE, HOOKLINE_ERR_FORMAT, HOOKLINE_ERR_TIMESTAMP,
        HOOKLINE_ERR_PARSE,  HOOKLINE_ERR_NOMEM,     HOOKLINE_ERR_SECRET, HOOKLINE_ERR_INVALID,
        HOOKLINE_ERR_TOOBIG,
    };
    for (size_t i = 0; i < N(codes); i++) {
        const char *s = hookline_strerror(codes[i]);
        assert_non_null(s);
        assert_string_not_equal(s, "unknown error");
        for (size_t j = 0; j < i; j++)
            assert_string_not_equal(s, hookline_strerror(codes[j]));
    }
    assert_string_equal(hookline_strerror(12345), "unknown error");
    assert_string_equal(hookline_strerror(-12345), "unknown error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_verify_signature_table),
        cmocka_unit_test(test_verify_signature_huge),
        cmocka_unit_test(test_verify_standard_table),
        cmocka_unit_test(test_verify_standard_now),
        cmocka_unit_test(test_verify_standard_limits),
        cmocka_unit_test(test_envelope_table),
        cmocka_unit_test(test_envelope_guide),
        cmocka_unit_test(test_envelope_field_limits),
        cmocka_unit_test(test_envelope_bad_args),
        cmocka_unit_test(test_strerror),
        cmocka_unit_test(test_verify_fresh_table),
        cmocka_unit_test(test_verify_fresh_forms),
        cmocka_unit_test(test_verify_request_table),
        cmocka_unit_test(test_verify_request_retry_of_an_old_event),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
