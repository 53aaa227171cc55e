/* Webhook signatures (HMAC-SHA256), shared by the dispatcher and the receiver library.
 *
 * Two schemes are produced for every delivery:
 * - X-Webhook-Signature: "sha256=" + hex HMAC of the raw body, keyed with the whole secret
 *   string ("whsec_..." included), as in the guide's Node example.
 * - Standard Webhooks (webhook-signature): "v1," + base64 HMAC of "id.timestamp.body", keyed with
 *   the base64-decoded part of the secret after "whsec_".
 *
 * Nothing here allocates on the caller's behalf: the message parts are streamed into a MAC
 * context that is kept per thread (freed when the thread exits), so the hot path does not build a
 * concatenated copy of the body. */
#ifndef HL_SIGN_H
#define HL_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

#define HL_SHA256_LEN 32
/* Bytes for hl_sign_hex's output: 64 hex digits and a NUL. */
#define HL_SIGN_HEX_SIZE 65
/* Bytes for hl_sign_std's output: "v1," + 44 base64 characters and a NUL. */
#define HL_SIGN_STD_SIZE 48
/* Longest decoded Standard Webhooks key, in bytes (hookline's own are 24). */
#define HL_STD_KEY_MAX 256
/* The Standard Webhooks secret prefix. */
#define HL_SECRET_PREFIX "whsec_"

/* Computes HMAC-SHA256 of body[0..body_len) keyed with key[0..key_len) into out.
 * body may be NULL when body_len is 0. Returns 0, HL_EINVAL for a NULL argument or an empty or
 * oversized key, or HL_ENOMEM when OpenSSL cannot set up its context. */
int hl_hmac_sha256(const void *key, size_t key_len, const void *body, size_t body_len,
                   uint8_t out[HL_SHA256_LEN]);

/* Writes the lowercase hex HMAC-SHA256 of the raw body keyed with the whole secret string
 * (prefix included) and a NUL to out; the header value is "sha256=" + out.
 * Returns 0 or a negative HL_E code (see hl_hmac_sha256). */
int hl_sign_hex(const char *secret, size_t secret_len, const char *body, size_t body_len,
                char out[HL_SIGN_HEX_SIZE]);

/* Derives the Standard Webhooks key: the base64 (standard or URL-safe, padding optional) after
 * "whsec_", or of the whole secret when it has no such prefix. Writes at most cap bytes to key and
 * sets *key_len. Returns 0, HL_EINVAL when the secret is NULL, empty, too long or not base64 or
 * decodes to nothing, or HL_ETOOBIG when the key does not fit in cap. */
int hl_std_key(const char *secret, size_t secret_len, uint8_t *key, size_t cap, size_t *key_len);

/* Computes the Standard Webhooks MAC, HMAC-SHA256 over msg_id + "." + ts_seconds (decimal) +
 * "." + body, with an already derived key, streaming the three parts without concatenating them.
 * Returns 0, HL_EINVAL (NULL argument, empty key, negative timestamp) or HL_ENOMEM. */
int hl_std_mac(const uint8_t *key, size_t key_len, const char *msg_id, size_t id_len,
               int64_t ts_seconds, const char *body, size_t body_len, uint8_t out[HL_SHA256_LEN]);

/* Writes the Standard Webhooks signature "v1,<base64 HMAC>" and a NUL to out (cap bytes, at
 * least HL_SIGN_STD_SIZE); the secret is decoded as in hl_std_key. Returns 0, HL_ETOOBIG when
 * cap is too small, or another negative HL_E code from hl_std_key or hl_std_mac. */
int hl_sign_std(const char *secret, size_t secret_len, const char *msg_id, size_t id_len,
                int64_t ts_seconds, const char *body, size_t body_len, char *out, size_t cap);

#endif
