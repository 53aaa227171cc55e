/* libFuzzer target for the receiver library (include/hookline/verify.h) against the signing code
 * the dispatcher uses (src/crypto/sign.c).
 *
 * What it proves, for any secret, id and body:
 * - round trip: what hl_sign_hex and hl_sign_std sign, hookline_verify_signature and
 *   hookline_verify_standard accept (the hex one with or without "sha256=", in either case);
 * - tamper: one byte changed in the body, the signature, the webhook-id or the timestamp makes
 *   the same call fail (a hex digit turned into the same digit in the other case is no change);
 * - every result is one of the codes the header documents, a failed envelope parse leaves the
 *   struct zeroed and a successful one fills the required fields.
 * Any broken promise aborts, which libFuzzer reports as a crash.
 *
 * Input: two bytes of tamper position and one XOR mask, then secret, webhook-id,
 * webhook-timestamp and webhook-signature separated by '\n', then the body (the rest, newlines
 * and NULs included). A field of exactly "\x01" stands for a missing header (NULL). Each field
 * is copied into its own exactly sized allocation so that ASan catches any read past the end. */
#include <ctype.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypto/sign.h"
#include "hookline/verify.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NFIELDS 5
#define NOW 1737383722
#define NOW_TEXT "1737383722"

static void check(int ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "verify_fuzz: broken promise: %s\n", what);
        abort();
    }
}

static int documented(int rc)
{
    return rc <= HOOKLINE_OK && rc >= HOOKLINE_ERR_TOOBIG;
}

/* Copies n bytes into a new NUL-terminated string, or NULL when the field is "\x01" (absent). */
static char *field(const uint8_t *p, size_t n)
{
    if (n == 1 && p[0] == 1)
        return NULL;
    char *s = malloc(n + 1);
    check(s != NULL, "malloc");
    if (n > 0)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/* An exactly sized copy of p[0..n) with byte pos XORed with mask (non-zero). */
static char *tampered(const char *p, size_t n, size_t pos, uint8_t mask)
{
    char *t = malloc(n + 1);
    check(t != NULL, "malloc");
    memcpy(t, p, n);
    t[n] = '\0';
    t[pos] = (char)(t[pos] ^ mask);
    return t;
}

static int hexval(int c)
{
    return isdigit(c) ? c - '0' : isxdigit(c) ? tolower(c) - 'a' + 10 : -1;
}

/* X-Webhook-Signature: sign, verify, then change one byte of body and of signature. */
static void hex_round_trip(const char *secret, const char *body, size_t body_len, size_t pos,
                           uint8_t mask)
{
    char hex[HL_SIGN_HEX_SIZE], header[sizeof("sha256=") + HL_SIGN_HEX_SIZE];
    if (hl_sign_hex(secret, strlen(secret), body, body_len, hex) != 0)
        return;
    snprintf(header, sizeof(header), "sha256=%s", hex);
    check(hookline_verify_signature(secret, body, body_len, header) == HOOKLINE_OK,
          "hex round trip");
    check(hookline_verify_signature(secret, body, body_len, hex) == HOOKLINE_OK,
          "hex round trip without the prefix");
    char upper[HL_SIGN_HEX_SIZE];
    for (size_t i = 0; i < sizeof(upper); i++)
        upper[i] = (char)toupper((unsigned char)hex[i]);
    check(hookline_verify_signature(secret, body, body_len, upper) == HOOKLINE_OK,
          "hex round trip in upper case");

    if (body_len > 0) {
        char *b = tampered(body, body_len, pos % body_len, mask);
        check(hookline_verify_signature(secret, b, body_len, header) == HOOKLINE_ERR_SIGNATURE,
              "hex: a changed body byte must not verify");
        free(b);
    }
    size_t i = 7 + pos % (HL_SIGN_HEX_SIZE - 1);
    char *s = tampered(header, strlen(header), i, mask);
    int same = hexval((unsigned char)s[i]) == hexval((unsigned char)header[i]);
    if (!same)
        check(hookline_verify_signature(secret, body, body_len, s) != HOOKLINE_OK,
              "hex: a changed signature byte must not verify");
    free(s);
}

/* Standard Webhooks: sign, verify, then change one byte of body, signature, id and timestamp. */
static void std_round_trip(const char *secret, const char *id, const char *body, size_t body_len,
                           size_t pos, uint8_t mask)
{
    size_t id_len = strlen(id);
    char sig[HL_SIGN_STD_SIZE];
    int signed_ok =
        hl_sign_std(secret, strlen(secret), id, id_len, NOW, body, body_len, sig, sizeof(sig));
    /* The key derivation is shared: a secret the signer refuses, the verifier refuses too. */
    int rc = hookline_verify_standard(secret, "x", NOW_TEXT, "v1,x", body, body_len, NOW, 0);
    check(signed_ok == 0 ? rc != HOOKLINE_ERR_SECRET : rc == HOOKLINE_ERR_SECRET,
          "signer and verifier agree on the secret");
    if (signed_ok != 0 || id_len == 0 || id_len > HOOKLINE_ID_HEADER_MAX)
        return;
    check(hookline_verify_standard(secret, id, NOW_TEXT, sig, body, body_len, NOW, 0) ==
              HOOKLINE_OK,
          "standard round trip");
    /* Among other entries, as during a rotation. */
    char several[3 * HL_SIGN_STD_SIZE + 16];
    snprintf(several, sizeof(several), "v2,abc v1,%s %s", "AAAA", sig);
    check(hookline_verify_standard(secret, id, NOW_TEXT, several, body, body_len, NOW, 0) ==
              HOOKLINE_OK,
          "standard round trip among several signatures");

    if (body_len > 0) {
        char *b = tampered(body, body_len, pos % body_len, mask);
        check(hookline_verify_standard(secret, id, NOW_TEXT, sig, b, body_len, NOW, 0) ==
                  HOOKLINE_ERR_SIGNATURE,
              "standard: a changed body byte must not verify");
        free(b);
    }
    char *s = tampered(sig, strlen(sig), 3 + pos % (strlen(sig) - 3), mask);
    check(hookline_verify_standard(secret, id, NOW_TEXT, s, body, body_len, NOW, 0) != HOOKLINE_OK,
          "standard: a changed signature byte must not verify");
    free(s);
    char *i = tampered(id, id_len, pos % id_len, mask);
    check(hookline_verify_standard(secret, i, NOW_TEXT, sig, body, body_len, NOW, 0) != HOOKLINE_OK,
          "standard: a changed webhook-id byte must not verify");
    free(i);
    /* A changed timestamp, inside any window: the signature covers it. */
    char *t = tampered(NOW_TEXT, sizeof(NOW_TEXT) - 1, pos % (sizeof(NOW_TEXT) - 1), mask);
    check(hookline_verify_standard(secret, id, t, sig, body, body_len, NOW, INT64_MAX) !=
              HOOKLINE_OK,
          "standard: a changed timestamp must not verify");
    free(t);
}

static void check_envelope(const void *body, size_t len)
{
    struct hookline_envelope env, zero;
    memset(&zero, 0, sizeof(zero));
    memset(&env, 0x5a, sizeof(env));
    int rc = hookline_parse_envelope(body, len, &env);
    check(documented(rc), "parse_envelope returns a documented code");
    if (rc != HOOKLINE_OK) {
        check(memcmp(&env, &zero, sizeof(env)) == 0, "a failed parse leaves the struct zeroed");
        return;
    }
    check(env.event_id[0] && env.event[0] && env.timestamp[0], "required fields filled");
    check(memchr(env.event_id, 0, sizeof(env.event_id)) &&
              memchr(env.event, 0, sizeof(env.event)) &&
              memchr(env.timestamp, 0, sizeof(env.timestamp)) &&
              memchr(env.app_uid, 0, sizeof(env.app_uid)) &&
              memchr(env.external_tenant_id, 0, sizeof(env.external_tenant_id)) &&
              memchr(env.data_uid, 0, sizeof(env.data_uid)),
          "every field NUL-terminated");
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 3)
        return 0;
    size_t pos = (size_t)data[0] << 8 | data[1];
    uint8_t mask = data[2] ? data[2] : 0x01;
    data += 3;
    size -= 3;

    char *f[NFIELDS] = {0};
    size_t len[NFIELDS] = {0};
    size_t start = 0;
    for (int i = 0; i < NFIELDS; i++) {
        size_t end = start;
        if (i < NFIELDS - 1)
            while (end < size && data[end] != '\n')
                end++;
        else
            end = size;
        f[i] = field(data + start, end - start);
        len[i] = end - start;
        start = end < size ? end + 1 : size;
    }
    const char *secret = f[0], *id = f[1], *ts = f[2], *sig = f[3];
    /* The body keeps any NUL bytes; only its copy's length counts. */
    const char *body = f[4];
    size_t body_len = body != NULL ? len[4] : 0;

    /* Whatever comes in, the answer is a documented code. */
    check(documented(hookline_verify_signature(secret, body, body_len, sig)), "documented code");
    check(documented(hookline_verify_standard(secret, id, ts, sig, body, body_len, NOW, 0)),
          "documented code");
    check(documented(hookline_verify_standard(secret, id, ts, sig, body, body_len, NOW, INT64_MAX)),
          "documented code");
    check_envelope(body, body_len);
    check_envelope(data, size);
    /* The guide's replay check reads the body only once its signature matched: sign it here so
     * that the fuzzer reaches the timestamp parsing. */
    char hex[HL_SIGN_HEX_SIZE], prefixed[8 + HL_SIGN_HEX_SIZE];
    if (secret != NULL && body != NULL && hl_sign_hex(secret, len[0], body, body_len, hex) == 0) {
        memcpy(prefixed, "sha256=", 7);
        memcpy(prefixed + 7, hex, sizeof(hex));
        check(documented(hookline_verify_signature_fresh(secret, body, body_len, prefixed, NOW, 0)),
              "documented code");
        struct hookline_headers h = {.signature = sig,
                                     .signature_previous = prefixed,
                                     .webhook_id = id,
                                     .webhook_timestamp = ts,
                                     .webhook_signature = sig};
        check(documented(hookline_verify_request(secret, &h, body, body_len, NOW, 0)),
              "documented code");
    }

    if (secret != NULL) {
        hex_round_trip(secret, body, body_len, pos, mask);
        if (id != NULL)
            std_round_trip(secret, id, body, body_len, pos, mask);
    }

    for (int i = 0; i < NFIELDS; i++)
        free(f[i]);
    return 0;
}
