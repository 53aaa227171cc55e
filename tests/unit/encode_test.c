/* Tests for src/common/encode.c: hex and base64 (standard and URL-safe).
 *
 * The vectors are RFC 4648 section 10 (BASE16 and BASE64 of "", "f", ... "foobar"), plus bytes
 * whose encodings differ between the two alphabets (checked with `printf '\xfb\xff' | base64`
 * and `basenc --base64url`). Random round trips are compared against OpenSSL's EVP_EncodeBlock,
 * an encoder that shares no code with this one. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"

#define LIT(s) s, sizeof(s) - 1

struct vec {
    const char *raw;
    size_t raw_len;
    const char *hex;
    const char *b64;    /* standard, padded */
    const char *b64url; /* URL-safe, unpadded */
};

static const struct vec vectors[] = {
    /* RFC 4648, section 10 */
    {LIT(""), "", "", ""},
    {LIT("f"), "66", "Zg==", "Zg"},
    {LIT("fo"), "666f", "Zm8=", "Zm8"},
    {LIT("foo"), "666f6f", "Zm9v", "Zm9v"},
    {LIT("foob"), "666f6f62", "Zm9vYg==", "Zm9vYg"},
    {LIT("fooba"), "666f6f6261", "Zm9vYmE=", "Zm9vYmE"},
    {LIT("foobar"), "666f6f626172", "Zm9vYmFy", "Zm9vYmFy"},
    /* the two alphabets part at values 62 and 63 */
    {LIT("\xfb\xff"), "fbff", "+/8=", "-_8"},
    {LIT("\xfb\xff\xbf"), "fbffbf", "+/+/", "-_-_"},
    {LIT("\xff\xff\xff"), "ffffff", "////", "____"},
    {LIT("\x00"), "00", "AA==", "AA"},
    {LIT("\x00\x00\x00"), "000000", "AAAA", "AAAA"},
    {LIT("\x14\xfb\x9c\x03\xd9\x7e"), "14fb9c03d97e", "FPucA9l+", "FPucA9l-"},
    {LIT("\x14\xfb\x9c\x03\xd9"), "14fb9c03d9", "FPucA9k=", "FPucA9k"},
    {LIT("\x14\xfb\x9c\x03"), "14fb9c03", "FPucAw==", "FPucAw"},
};
#define NVEC (sizeof(vectors) / sizeof(vectors[0]))

static void test_vectors_encode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        const struct vec *v = &vectors[i];
        const uint8_t *raw = (const uint8_t *)v->raw;
        char out[64];
        print_message("vector %zu: %s\n", i, v->b64);

        memset(out, '#', sizeof(out));
        hl_hex_encode(raw, v->raw_len, out);
        assert_string_equal(out, v->hex);
        assert_int_equal(out[2 * v->raw_len + 1], '#');

        memset(out, '#', sizeof(out));
        size_t n = hl_b64_encode(raw, v->raw_len, out, 0);
        assert_string_equal(out, v->b64);
        assert_int_equal(n, strlen(v->b64));
        assert_int_equal(n, HL_B64_LEN(v->raw_len));
        assert_int_equal(out[n + 1], '#');

        memset(out, '#', sizeof(out));
        n = hl_b64_encode(raw, v->raw_len, out, 1);
        assert_string_equal(out, v->b64url);
        assert_int_equal(n, strlen(v->b64url));
        assert_int_equal(out[n + 1], '#');
    }
}

/* Decodes text and checks the bytes; the output buffer is exactly as large as needed. */
static void expect_b64(const char *text, const char *raw, size_t raw_len)
{
    uint8_t out[64];
    size_t n = 12345;
    memset(out, 0xAA, sizeof(out));
    print_message("decode \"%s\"\n", text);
    assert_int_equal(hl_b64_decode(text, strlen(text), out, raw_len, &n), HL_OK);
    assert_int_equal(n, raw_len);
    assert_memory_equal(out, raw, raw_len);
    assert_int_equal(out[raw_len], 0xAA);
}

static void test_vectors_decode(void **state)
{
    (void)state;
    for (size_t i = 0; i < NVEC; i++) {
        const struct vec *v = &vectors[i];
        /* padded standard, unpadded URL-safe */
        expect_b64(v->b64, v->raw, v->raw_len);
        expect_b64(v->b64url, v->raw, v->raw_len);
        /* padding is optional: standard without it, URL-safe with it */
        char buf[64];
        size_t len = strlen(v->b64);
        while (len && v->b64[len - 1] == '=')
            len--;
        snprintf(buf, sizeof(buf), "%.*s", (int)len, v->b64);
        expect_b64(buf, v->raw, v->raw_len);
        snprintf(buf, sizeof(buf), "%s%s", v->b64url, v->b64 + len);
        expect_b64(buf, v->raw, v->raw_len);

        uint8_t out[32];
        memset(out, 0xAA, sizeof(out));
        print_message("hex \"%s\"\n", v->hex);
        assert_int_equal(hl_hex_decode(v->hex, strlen(v->hex), out, v->raw_len), HL_OK);
        assert_memory_equal(out, v->raw, v->raw_len);
        assert_int_equal(out[v->raw_len], 0xAA);
    }
}

struct bad_b64 {
    const char *text;
    size_t cap;
    int rc;
};

static const struct bad_b64 bad_b64[] = {
    /* characters outside both alphabets */
    {"Zm9v!", 16, HL_EINVAL},
    {"Zm9v Zm9v", 16, HL_EINVAL},
    {"Zm9v\n", 16, HL_EINVAL},
    {"Zm9v.", 16, HL_EINVAL},
    {"Zm\xc3\xa9", 16, HL_EINVAL},
    {"*m9v", 16, HL_EINVAL},
    /* padding in the middle */
    {"Zg==Zm8=", 16, HL_EINVAL},
    {"Z=g=", 16, HL_EINVAL},
    {"=Zg", 16, HL_EINVAL},
    /* a length no encoding has: one character left over */
    {"Z", 16, HL_EINVAL},
    {"Zm9vY", 16, HL_EINVAL},
    {"Z===", 16, HL_EINVAL},
    {"Zm9vY===", 16, HL_EINVAL},
    /* the output does not fit */
    {"Zm9vYmFy", 5, HL_ETOOBIG},
    {"Zm9vYmE=", 4, HL_ETOOBIG},
    {"Zm9vYmE", 4, HL_ETOOBIG},
    {"Zg==", 0, HL_ETOOBIG},
};

static void test_b64_decode_bad(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_b64) / sizeof(bad_b64[0]); i++) {
        const struct bad_b64 *c = &bad_b64[i];
        uint8_t out[16];
        size_t n = 12345;
        memset(out, 0xAA, sizeof(out));
        print_message("case %zu: \"%s\" cap %zu\n", i, c->text, c->cap);
        assert_int_equal(hl_b64_decode(c->text, strlen(c->text), out, c->cap, &n), c->rc);
        /* never writes past cap */
        for (size_t k = c->cap; k < sizeof(out); k++)
            assert_int_equal(out[k], 0xAA);
    }
    /* the exact size fits */
    uint8_t out[6];
    size_t n = 0;
    assert_int_equal(hl_b64_decode(LIT("Zm9vYmFy"), out, 6, &n), HL_OK);
    assert_int_equal(n, 6);
    /* the length bounds the input: bad bytes past it are not looked at */
    assert_int_equal(hl_b64_decode("Zm9v!!!!", 4, out, 6, &n), HL_OK);
    assert_int_equal(n, 3);
    assert_memory_equal(out, "foo", 3);
    /* the empty text is zero bytes */
    n = 99;
    assert_int_equal(hl_b64_decode("", 0, out, 0, &n), HL_OK);
    assert_int_equal(n, 0);
}

struct bad_hex {
    const char *text;
    size_t outlen;
};

static const struct bad_hex bad_hex[] = {
    {"6", 1},  {"666", 1},  {"66", 2},   {"", 1},   {"6g", 1},   {"g6", 1},       {"6 ", 1},
    {" 6", 1}, {"0x66", 2}, {"66\n", 1}, {"-1", 1}, {"fF0G", 2}, {"\xc3\xa9", 1},
};

static void test_hex(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(bad_hex) / sizeof(bad_hex[0]); i++) {
        uint8_t out[8];
        print_message("bad hex %zu: \"%s\"\n", i, bad_hex[i].text);
        assert_int_equal(
            hl_hex_decode(bad_hex[i].text, strlen(bad_hex[i].text), out, bad_hex[i].outlen),
            HL_EINVAL);
    }
    /* either case decodes; output is always lowercase */
    uint8_t out[4];
    assert_int_equal(hl_hex_decode(LIT("DeadBEEF"), out, 4), HL_OK);
    assert_memory_equal(out, "\xde\xad\xbe\xef", 4);
    char text[9];
    hl_hex_encode(out, 4, text);
    assert_string_equal(text, "deadbeef");
    /* every byte value, against snprintf */
    for (int b = 0; b < 256; b++) {
        uint8_t in = (uint8_t)b, back = 0;
        char want[3], got[3];
        snprintf(want, sizeof(want), "%02x", b);
        hl_hex_encode(&in, 1, got);
        assert_string_equal(got, want);
        assert_int_equal(hl_hex_decode(got, 2, &back, 1), HL_OK);
        assert_int_equal(back, b);
    }
    assert_int_equal(hl_hex_decode("", 0, out, 0), HL_OK);
}

static void test_b64_len(void **state)
{
    (void)state;
    static const size_t want[] = {0, 4, 4, 4, 8, 8, 8, 12, 12, 12, 16};
    for (size_t n = 0; n < sizeof(want) / sizeof(want[0]); n++)
        assert_int_equal(HL_B64_LEN(n), want[n]);
    assert_int_equal(HL_B64_LEN(24), 32);
    assert_int_equal(HL_B64_LEN(32), 44);
}

/* Every length from 0 to 200 with random bytes: the standard encoding equals OpenSSL's, the
 * URL-safe one is the same text with -_ for +/ and no padding, and both decode back. */
static void test_roundtrip_random(void **state)
{
    (void)state;
    for (int round = 0; round < 20; round++) {
        for (size_t n = 0; n <= 200; n++) {
            uint8_t raw[200], back[200];
            char std[300], url[300], ossl[300];
            assert_int_equal(RAND_bytes(raw, (int)sizeof(raw)), 1);
            size_t sl = hl_b64_encode(raw, n, std, 0);
            size_t ul = hl_b64_encode(raw, n, url, 1);
            int ol = EVP_EncodeBlock((unsigned char *)ossl, raw, (int)n);
            assert_int_equal(sl, (size_t)ol);
            assert_string_equal(std, ossl);
            assert_int_equal(ul, (4 * n + 2) / 3);
            for (size_t k = 0; k < ul; k++) {
                char want = std[k] == '+' ? '-' : std[k] == '/' ? '_' : std[k];
                assert_int_equal(url[k], want);
            }
            size_t got = 0;
            assert_int_equal(hl_b64_decode(std, sl, back, n, &got), HL_OK);
            assert_int_equal(got, n);
            assert_memory_equal(back, raw, n);
            got = 0;
            assert_int_equal(hl_b64_decode(url, ul, back, n, &got), HL_OK);
            assert_int_equal(got, n);
            assert_memory_equal(back, raw, n);

            char hex[401];
            hl_hex_encode(raw, n, hex);
            assert_int_equal(strlen(hex), 2 * n);
            memset(back, 0, sizeof(back));
            assert_int_equal(hl_hex_decode(hex, 2 * n, back, n), HL_OK);
            assert_memory_equal(back, raw, n);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_vectors_encode), cmocka_unit_test(test_vectors_decode),
        cmocka_unit_test(test_b64_decode_bad), cmocka_unit_test(test_hex),
        cmocka_unit_test(test_b64_len),        cmocka_unit_test(test_roundtrip_random),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
