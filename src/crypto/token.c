/* Signed, expiring tokens (token.h). */
#include "crypto/token.h"

#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>

#include "common/encode.h"
#include "common/err.h"
#include "crypto/sign.h"

#define VERSION "hl1"
#define FIELDS 7
/* The longest payload: the version, kind, three ids, 19 digits and a flag, six separators. */
#define PAYLOAD_MAX (3 + 1 + 3 * (HL_ID_MAX - 1) + 19 + 1 + 6)

/* True when s is 1 to HL_ID_MAX - 1 characters of the URL-safe alphabet (empty when may_be_empty).
 */
static int id_ok(const char *s, size_t len, int may_be_empty)
{
    if (len >= HL_ID_MAX || (len == 0 && !may_be_empty))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return 0;
    }
    return 1;
}

int hl_token_sign(const uint8_t key[HL_TOKEN_KEY_LEN], const struct hl_token *t, char *out,
                  size_t cap)
{
    if ((t->kind != HL_TOKEN_PORTAL && t->kind != HL_TOKEN_SESSION) || t->expires_at <= 0 ||
        !id_ok(t->app_uid, strnlen(t->app_uid, HL_ID_MAX), 0) ||
        !id_ok(t->id, strnlen(t->id, HL_ID_MAX), 0) ||
        !id_ok(t->key_uid, strnlen(t->key_uid, HL_ID_MAX), 1))
        return HL_EINVAL;
    char payload[PAYLOAD_MAX + 1];
    int n = snprintf(payload, sizeof(payload), VERSION "|%c|%s|%lld|%d|%s|%s", (char)t->kind,
                     t->app_uid, (long long)t->expires_at, t->read_only ? 1 : 0, t->id, t->key_uid);
    if (n < 0 || (size_t)n >= sizeof(payload))
        return HL_EINVAL;
    uint8_t mac[HL_SHA256_LEN];
    int rc = hl_hmac_sha256(key, HL_TOKEN_KEY_LEN, payload, (size_t)n, mac);
    if (rc)
        return rc;
    size_t need = HL_B64_LEN((size_t)n) + 1 + HL_B64_LEN(sizeof(mac)) + 1;
    if (cap < need)
        return HL_ETOOBIG;
    size_t at = hl_b64_encode((const uint8_t *)payload, (size_t)n, out, 1);
    out[at++] = '.';
    hl_b64_encode(mac, sizeof(mac), out + at, 1);
    return HL_OK;
}

/* Reads a canonical decimal of 1 to 19 digits (no sign, no leading zero) below INT64_MAX. */
static int read_ms(const char *s, size_t len, int64_t *out)
{
    if (len == 0 || len > 19 || (s[0] == '0' && len > 1))
        return HL_EINVAL;
    int64_t v = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return HL_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return HL_OK;
}

/* Copies an id field into out (HL_ID_MAX bytes) after checking it. */
static int read_id(const char *s, size_t len, int may_be_empty, char *out)
{
    if (!id_ok(s, len, may_be_empty))
        return HL_EINVAL;
    memcpy(out, s, len);
    out[len] = '\0';
    return HL_OK;
}

/* Splits an authenticated payload into its fields and reads them into t. */
static int parse_payload(const char *p, size_t len, struct hl_token *t)
{
    const char *f[FIELDS];
    size_t flen[FIELDS];
    size_t nf = 0, start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && p[i] != '|')
            continue;
        if (nf == FIELDS)
            return HL_EINVAL;
        f[nf] = p + start;
        flen[nf++] = i - start;
        start = i + 1;
    }
    if (nf != FIELDS || flen[0] != 3 || memcmp(f[0], VERSION, 3) != 0 || flen[1] != 1 ||
        (f[1][0] != HL_TOKEN_PORTAL && f[1][0] != HL_TOKEN_SESSION) || flen[4] != 1 ||
        (f[4][0] != '0' && f[4][0] != '1'))
        return HL_EINVAL;
    memset(t, 0, sizeof(*t));
    t->kind = (enum hl_token_kind)f[1][0];
    t->read_only = f[4][0] == '1';
    if (read_id(f[2], flen[2], 0, t->app_uid) || read_ms(f[3], flen[3], &t->expires_at) ||
        t->expires_at == 0 || read_id(f[5], flen[5], 0, t->id) ||
        read_id(f[6], flen[6], 1, t->key_uid))
        return HL_EINVAL;
    return HL_OK;
}

int hl_token_verify(const uint8_t key[HL_TOKEN_KEY_LEN], const char *s, size_t len,
                    enum hl_token_kind kind, int64_t now, struct hl_token *out)
{
    memset(out, 0, sizeof(*out));
    if (!s || len == 0 || len > HL_TOKEN_MAX)
        return HL_EINVAL;
    const char *dot = memchr(s, '.', len);
    if (!dot)
        return HL_EINVAL;
    uint8_t payload[HL_TOKEN_MAX], mac[HL_SHA256_LEN + 3], want[HL_SHA256_LEN];
    size_t plen = 0, mlen = 0;
    size_t head = (size_t)(dot - s);
    if (hl_b64_decode(s, head, payload, sizeof(payload), &plen) ||
        hl_b64_decode(dot + 1, len - head - 1, mac, sizeof(mac), &mlen) || plen == 0 ||
        plen > PAYLOAD_MAX || mlen != HL_SHA256_LEN)
        return HL_EINVAL;
    if (hl_hmac_sha256(key, HL_TOKEN_KEY_LEN, payload, plen, want))
        return HL_ENOMEM;
    if (CRYPTO_memcmp(want, mac, HL_SHA256_LEN) != 0)
        return HL_EBADSIG;
    struct hl_token t;
    if (parse_payload((const char *)payload, plen, &t) || t.kind != kind)
        return HL_EINVAL;
    *out = t;
    return t.expires_at <= now ? HL_ESTALE : HL_OK;
}
