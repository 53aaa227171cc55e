/* libFuzzer target for the console's tokens (crypto/token.c): arbitrary text is never accepted
 * unless it carries the MAC, and a payload that carries it (the input, signed here) verifies
 * only as what re-signing its fields gives back. */
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "crypto/token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t KEY[HL_TOKEN_KEY_LEN] = "fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzz";

static void check(int ok)
{
    if (!ok)
        abort();
}

/* Signs data as a payload, the way the format says, into out. */
static size_t sign_raw(const uint8_t *data, size_t size, char *out)
{
    uint8_t mac[32];
    unsigned int n = 0;
    check(HMAC(EVP_sha256(), KEY, sizeof(KEY), data, size, mac, &n) != NULL);
    size_t at = hl_b64_encode(data, size, out, 1);
    out[at++] = '.';
    return at + hl_b64_encode(mac, sizeof(mac), out + at, 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct hl_token t;
    /* the input as token text: no MAC, so never valid */
    int rc = hl_token_verify(KEY, (const char *)data, size, HL_TOKEN_PORTAL, 0, &t);
    check(rc == HL_EINVAL || rc == HL_EBADSIG);

    /* the input as a signed payload */
    if (size > 280)
        return 0;
    char text[HL_B64_LEN(280) + 1 + HL_B64_LEN(32) + 1];
    size_t n = sign_raw(data, size, text);
    for (int k = 0; k < 2; k++) {
        enum hl_token_kind kind = k ? HL_TOKEN_SESSION : HL_TOKEN_PORTAL;
        rc = hl_token_verify(KEY, text, n, kind, 0, &t);
        check(rc == HL_OK || rc == HL_EINVAL || rc == HL_ESTALE);
        if (rc != HL_OK)
            continue;
        check(t.kind == kind && t.expires_at > 0 && strlen(t.app_uid) > 0 && strlen(t.id) > 0);
        char again[HL_TOKEN_MAX + 1];
        check(hl_token_sign(KEY, &t, again, sizeof(again)) == HL_OK);
        struct hl_token u;
        check(hl_token_verify(KEY, again, strlen(again), kind, 0, &u) == HL_OK);
        check(strcmp(t.app_uid, u.app_uid) == 0 && strcmp(t.id, u.id) == 0 &&
              strcmp(t.key_uid, u.key_uid) == 0 && t.expires_at == u.expires_at &&
              t.read_only == u.read_only);
        /* the canonical payload is the input itself */
        check(strcmp(again, text) == 0);
    }
    return 0;
}
