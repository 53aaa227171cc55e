/* libhookline: the receiving side of both signature schemes, their replay checks, and the
 * envelope parser.
 *
 * Everything read from the request is bounded before it is looked at (strnlen with the limit + 1),
 * signatures are compared with CRYPTO_memcmp, and the Standard Webhooks timestamp is checked
 * before any MAC is computed so that stale replays cost no hashing. The guide's scheme signs only
 * the body, so its signed time (the body's "timestamp") is read after the signature matched: an
 * unsigned body is never parsed. */
#include "hookline/verify.h"

#include <stdbool.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "common/clock.h"
#include "common/encode.h"
#include "common/err.h"
#include "crypto/sign.h"

#define SHA256_PREFIX "sha256="
#define TS_DIGITS_MAX 18
#define STD_SIG_B64_LEN HL_B64_LEN(HL_SHA256_LEN)

_Static_assert(HOOKLINE_SECRET_MAX == HL_SECRET_MAX, "secret limits must agree");

struct span {
    const char *p;
    size_t len;
};

const char *hookline_strerror(int err)
{
    switch (err) {
    case HOOKLINE_OK:
        return "success";
    case HOOKLINE_ERR_SIGNATURE:
        return "signature mismatch";
    case HOOKLINE_ERR_FORMAT:
        return "missing or malformed signature header";
    case HOOKLINE_ERR_TIMESTAMP:
        return "timestamp outside tolerance";
    case HOOKLINE_ERR_PARSE:
        return "invalid event body";
    case HOOKLINE_ERR_NOMEM:
        return "out of memory";
    case HOOKLINE_ERR_SECRET:
        return "missing or invalid secret";
    case HOOKLINE_ERR_INVALID:
        return "invalid argument";
    case HOOKLINE_ERR_TOOBIG:
        return "body too large";
    }
    return "unknown error";
}

/* Maps a failure of the signing code to a public code. */
static int sign_err(int rc)
{
    switch (rc) {
    case HL_OK:
        return HOOKLINE_OK;
    case HL_ENOMEM:
        return HOOKLINE_ERR_NOMEM;
    default:
        return HOOKLINE_ERR_SECRET;
    }
}

/* Length of a usable secret, or 0 when it is NULL, empty or too long. */
static size_t secret_len(const char *secret)
{
    if (secret == NULL)
        return 0;
    size_t n = strnlen(secret, HOOKLINE_SECRET_MAX + 1);
    return n > HOOKLINE_SECRET_MAX ? 0 : n;
}

int hookline_verify_signature(const char *secret, const void *body, size_t body_len,
                              const char *signature_header)
{
    const size_t plen = sizeof(SHA256_PREFIX) - 1;
    uint8_t given[HL_SHA256_LEN], mac[HL_SHA256_LEN];

    size_t slen = secret_len(secret);
    if (slen == 0)
        return HOOKLINE_ERR_SECRET;
    if (body == NULL && body_len != 0)
        return HOOKLINE_ERR_INVALID;
    if (signature_header == NULL)
        return HOOKLINE_ERR_FORMAT;
    const char *hex = signature_header;
    size_t n = strnlen(hex, plen + 2 * HL_SHA256_LEN + 1);
    if (n >= plen && memcmp(hex, SHA256_PREFIX, plen) == 0) {
        hex += plen;
        n -= plen;
    }
    if (n != 2 * HL_SHA256_LEN || hl_hex_decode(hex, n, given, sizeof(given)) != HL_OK)
        return HOOKLINE_ERR_FORMAT;

    int rc = hl_hmac_sha256(secret, slen, body, body_len, mac);
    if (rc != HL_OK)
        return sign_err(rc);
    return CRYPTO_memcmp(given, mac, sizeof(mac)) == 0 ? HOOKLINE_OK : HOOKLINE_ERR_SIGNATURE;
}

/* Parses decimal Unix seconds: 1..TS_DIGITS_MAX digits and nothing else. */
static int parse_timestamp(const char *s, int64_t *out)
{
    if (s == NULL)
        return HOOKLINE_ERR_FORMAT;
    size_t n = strnlen(s, TS_DIGITS_MAX + 1);
    if (n == 0 || n > TS_DIGITS_MAX)
        return HOOKLINE_ERR_FORMAT;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return HOOKLINE_ERR_FORMAT;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return HOOKLINE_OK;
}

/* True when ts is within tolerance of now. The distance is taken in unsigned arithmetic so that
 * no pair of int64 values can overflow. */
static bool within(int64_t ts, int64_t now, int64_t tolerance)
{
    uint64_t d = now >= ts ? (uint64_t)now - (uint64_t)ts : (uint64_t)ts - (uint64_t)now;
    return d <= (uint64_t)tolerance;
}

/* Fills in the defaults of now_seconds (0: the clock) and tolerance_seconds (<= 0: 5 minutes). */
static void time_defaults(int64_t *now_seconds, int64_t *tolerance_seconds)
{
    if (*now_seconds == 0)
        *now_seconds = (int64_t)time(NULL);
    if (*tolerance_seconds <= 0)
        *tolerance_seconds = HOOKLINE_DEFAULT_TOLERANCE;
}

/* Splits webhook-signature on spaces into "<version>,<signature>" entries, keeping the
 * signatures of the "v1" ones in sigs (at most HOOKLINE_SIGNATURES_MAX). */
static int split_signatures(const char *header, struct span *sigs, size_t *nsigs)
{
    if (header == NULL)
        return HOOKLINE_ERR_FORMAT;
    size_t n = strnlen(header, HOOKLINE_SIGNATURE_HEADER_MAX + 1);
    if (n > HOOKLINE_SIGNATURE_HEADER_MAX)
        return HOOKLINE_ERR_FORMAT;
    size_t entries = 0, kept = 0;
    for (size_t i = 0; i < n;) {
        if (header[i] == ' ') {
            i++;
            continue;
        }
        size_t start = i;
        while (i < n && header[i] != ' ')
            i++;
        const char *e = header + start;
        size_t elen = i - start;
        const char *comma = memchr(e, ',', elen);
        if (comma == NULL || comma == e || comma == e + elen - 1)
            return HOOKLINE_ERR_FORMAT;
        if (++entries > HOOKLINE_SIGNATURES_MAX)
            return HOOKLINE_ERR_FORMAT;
        size_t vlen = (size_t)(comma - e);
        if (vlen == 2 && memcmp(e, "v1", 2) == 0)
            sigs[kept++] = (struct span){comma + 1, elen - vlen - 1};
    }
    if (entries == 0)
        return HOOKLINE_ERR_FORMAT;
    *nsigs = kept;
    return HOOKLINE_OK;
}

int hookline_verify_standard(const char *secret, const char *webhook_id,
                             const char *webhook_timestamp, const char *webhook_signature,
                             const void *body, size_t body_len, int64_t now_seconds,
                             int64_t tolerance_seconds)
{
    uint8_t key[HL_STD_KEY_MAX], mac[HL_SHA256_LEN];
    char expected[STD_SIG_B64_LEN + 1];
    struct span sigs[HOOKLINE_SIGNATURES_MAX];
    size_t key_len = 0, nsigs = 0;
    int64_t ts = 0;
    int matched = 0;

    size_t slen = secret_len(secret);
    if (slen == 0)
        return HOOKLINE_ERR_SECRET;
    if (body == NULL && body_len != 0)
        return HOOKLINE_ERR_INVALID;
    if (webhook_id == NULL)
        return HOOKLINE_ERR_FORMAT;
    size_t id_len = strnlen(webhook_id, HOOKLINE_ID_HEADER_MAX + 1);
    if (id_len == 0 || id_len > HOOKLINE_ID_HEADER_MAX)
        return HOOKLINE_ERR_FORMAT;
    int rc = parse_timestamp(webhook_timestamp, &ts);
    if (rc == HOOKLINE_OK)
        rc = split_signatures(webhook_signature, sigs, &nsigs);
    if (rc != HOOKLINE_OK)
        return rc;

    rc = hl_std_key(secret, slen, key, sizeof(key), &key_len);
    if (rc != HL_OK) {
        rc = sign_err(rc);
        goto out;
    }
    time_defaults(&now_seconds, &tolerance_seconds);
    if (!within(ts, now_seconds, tolerance_seconds)) {
        rc = HOOKLINE_ERR_TIMESTAMP;
        goto out;
    }
    rc = hl_std_mac(key, key_len, webhook_id, id_len, ts, body, body_len, mac);
    if (rc != HL_OK) {
        rc = sign_err(rc);
        goto out;
    }
    hl_b64_encode(mac, sizeof(mac), expected, 0);

    /* Every v1 entry is compared, so the time taken does not depend on which one matched. */
    for (size_t i = 0; i < nsigs; i++)
        matched |= sigs[i].len == STD_SIG_B64_LEN &&
                   CRYPTO_memcmp(sigs[i].p, expected, STD_SIG_B64_LEN) == 0;
    rc = matched ? HOOKLINE_OK : HOOKLINE_ERR_SIGNATURE;
out:
    OPENSSL_cleanse(key, sizeof(key));
    return rc;
}

/* Parses a body of at most HOOKLINE_BODY_MAX bytes into *root (the caller releases it). */
static int load_body(const void *body, size_t len, json_t **root)
{
    if (len > HOOKLINE_BODY_MAX)
        return HOOKLINE_ERR_TOOBIG;
    if (len == 0)
        return HOOKLINE_ERR_PARSE;
    json_error_t jerr;
    /* Duplicate keys are refused: two parsers picking different copies is how a signed body
     * gets read differently from what was signed. */
    *root = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
    if (*root == NULL)
        return json_error_code(&jerr) == json_error_out_of_memory ? HOOKLINE_ERR_NOMEM
                                                                  : HOOKLINE_ERR_PARSE;
    return HOOKLINE_OK;
}

/* Reads the body's "timestamp" (ISO 8601) in whole seconds, rounded down. */
static int body_time(const void *body, size_t len, int64_t *seconds)
{
    json_t *root = NULL;
    int rc = load_body(body, len, &root);
    if (rc != HOOKLINE_OK)
        return rc;
    json_t *ts = json_object_get(root, "timestamp");
    int64_t ms = 0;
    rc = HOOKLINE_ERR_PARSE;
    if (json_is_string(ts) &&
        hl_time_parse(json_string_value(ts), json_string_length(ts), &ms) == HL_OK) {
        *seconds = ms >= 0 ? ms / 1000 : -((-ms + 999) / 1000);
        rc = HOOKLINE_OK;
    }
    json_decref(root);
    return rc;
}

int hookline_verify_signature_fresh(const char *secret, const void *body, size_t body_len,
                                    const char *signature_header, int64_t now_seconds,
                                    int64_t tolerance_seconds)
{
    int rc = hookline_verify_signature(secret, body, body_len, signature_header);
    if (rc != HOOKLINE_OK)
        return rc;
    int64_t ts = 0;
    if ((rc = body_time(body, body_len, &ts)) != HOOKLINE_OK)
        return rc;
    time_defaults(&now_seconds, &tolerance_seconds);
    return within(ts, now_seconds, tolerance_seconds) ? HOOKLINE_OK : HOOKLINE_ERR_TIMESTAMP;
}

/* How much a failure says about a request, for picking the one to report: a signed time out of
 * tolerance says the most, a missing header the least. */
static int telling(int rc)
{
    switch (rc) {
    case HOOKLINE_ERR_NOMEM:
    case HOOKLINE_ERR_INVALID:
        return 6;
    case HOOKLINE_ERR_TIMESTAMP:
        return 5;
    case HOOKLINE_ERR_PARSE:
    case HOOKLINE_ERR_TOOBIG:
        return 4;
    case HOOKLINE_ERR_SIGNATURE:
        return 3;
    case HOOKLINE_ERR_SECRET:
        return 2;
    default:
        return 1;
    }
}

int hookline_verify_request(const char *secret, const struct hookline_headers *headers,
                            const void *body, size_t body_len, int64_t now_seconds,
                            int64_t tolerance_seconds)
{
    if (headers == NULL)
        return HOOKLINE_ERR_INVALID;
    const struct hookline_headers *h = headers;
    int best = HOOKLINE_ERR_FORMAT;
    if (h->webhook_id || h->webhook_timestamp || h->webhook_signature) {
        int rc = hookline_verify_standard(secret, h->webhook_id, h->webhook_timestamp,
                                          h->webhook_signature, body, body_len, now_seconds,
                                          tolerance_seconds);
        if (rc == HOOKLINE_OK)
            return rc;
        best = rc;
    }
    /* During a rotation X-Webhook-Signature holds the new secret's signature and -Previous the
     * old secret's, so a receiver not yet switched over still verifies. */
    const char *guide[] = {h->signature, h->signature_previous};
    for (size_t i = 0; i < sizeof(guide) / sizeof(guide[0]); i++) {
        if (guide[i] == NULL)
            continue;
        int rc = hookline_verify_signature_fresh(secret, body, body_len, guide[i], now_seconds,
                                                 tolerance_seconds);
        if (rc == HOOKLINE_OK)
            return rc;
        if (telling(rc) > telling(best))
            best = rc;
    }
    return best;
}

/* Copies the string member name of obj into dst (HOOKLINE_FIELD_MAX bytes). An absent member
 * is "" when optional; anything but a fitting string (non-empty when required) is an error. */
static int copy_field(json_t *obj, const char *name, char dst[HOOKLINE_FIELD_MAX], bool required)
{
    json_t *v = json_object_get(obj, name);
    /* An optional field may be null (webhook.test carries "externalTenantId": null). */
    if (v == NULL || (!required && json_is_null(v)))
        return required ? HOOKLINE_ERR_PARSE : HOOKLINE_OK;
    if (!json_is_string(v))
        return HOOKLINE_ERR_PARSE;
    size_t n = json_string_length(v);
    if (n >= HOOKLINE_FIELD_MAX || (required && n == 0))
        return HOOKLINE_ERR_PARSE;
    memcpy(dst, json_string_value(v), n);
    dst[n] = '\0';
    return HOOKLINE_OK;
}

static int read_envelope(json_t *root, struct hookline_envelope *out)
{
    if (!json_is_object(root))
        return HOOKLINE_ERR_PARSE;
    json_t *data = json_object_get(root, "data");
    if (!json_is_object(data))
        return HOOKLINE_ERR_PARSE;
    json_t *version = json_object_get(root, "version");
    if (version != NULL && !json_is_null(version)) {
        if (!json_is_integer(version))
            return HOOKLINE_ERR_PARSE;
        out->version = (int64_t)json_integer_value(version);
    }
    int rc = copy_field(root, "eventId", out->event_id, true);
    if (rc == HOOKLINE_OK)
        rc = copy_field(root, "event", out->event, true);
    if (rc == HOOKLINE_OK)
        rc = copy_field(root, "timestamp", out->timestamp, true);
    if (rc == HOOKLINE_OK)
        rc = copy_field(root, "appUid", out->app_uid, false);
    if (rc == HOOKLINE_OK)
        rc = copy_field(data, "externalTenantId", out->external_tenant_id, false);
    if (rc == HOOKLINE_OK)
        rc = copy_field(data, "uid", out->data_uid, false);
    return rc;
}

int hookline_parse_envelope(const void *body, size_t len, struct hookline_envelope *out)
{
    if (out == NULL)
        return HOOKLINE_ERR_INVALID;
    memset(out, 0, sizeof(*out));
    if (body == NULL && len != 0)
        return HOOKLINE_ERR_INVALID;
    json_t *root = NULL;
    int rc = load_body(body, len, &root);
    if (rc != HOOKLINE_OK)
        return rc;
    rc = read_envelope(root, out);
    json_decref(root);
    if (rc != HOOKLINE_OK)
        memset(out, 0, sizeof(*out));
    return rc;
}
