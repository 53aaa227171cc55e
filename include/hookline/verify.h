/* libhookline: verify and parse webhook deliveries on the receiving side.
 *
 * Every function is safe to call from several threads at once and on any input (NULL, empty,
 * huge or garbage): it returns an error code instead of crashing. Nothing returned needs to be
 * freed by the caller. Link with -lhookline (pkg-config hookline).
 *
 * Typical use, with the raw request body as it came off the wire:
 *
 *     struct hookline_headers h = {.signature = <X-Webhook-Signature>, .webhook_id = ...};
 *     int rc = hookline_verify_request(secret, &h, body, len, 0, 0);
 *     if (rc == HOOKLINE_OK)
 *         rc = hookline_parse_envelope(body, len, &env);
 *     if (rc != HOOKLINE_OK)
 *         answer 401 (or 400), log hookline_strerror(rc);
 *
 * Replay protection: a captured request must not be accepted again later. Each scheme has one
 * signed time to check against the clock. The Standard Webhooks signature covers
 * webhook-timestamp, the time of sending, so a retry of an old event carries a fresh one. The
 * X-Webhook-Signature covers only the body: X-Webhook-Timestamp is not signed (anyone replaying
 * a request can write any value there), so the time it can honestly be checked against is the
 * body's own "timestamp", when the event happened. hookline_verify_request checks the first when
 * those headers verify and the second otherwise; within the tolerance, de-duplicating on eventId
 * is what stops a replay.
 */
#ifndef HOOKLINE_VERIFY_H
#define HOOKLINE_VERIFY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__) || defined(__clang__)
#define HOOKLINE_API __attribute__((visibility("default")))
#else
#define HOOKLINE_API
#endif

/* Results: 0 on success, a negative value otherwise. */
enum hookline_err {
    HOOKLINE_OK = 0,
    HOOKLINE_ERR_SIGNATURE = -1, /* well-formed, but no signature matches: reject the request */
    HOOKLINE_ERR_FORMAT = -2,    /* a signature header is missing, too long or malformed */
    HOOKLINE_ERR_TIMESTAMP = -3, /* the timestamp is outside the tolerance (stale or future) */
    HOOKLINE_ERR_PARSE = -4,     /* the body is not a valid event envelope */
    HOOKLINE_ERR_NOMEM = -5,     /* out of memory */
    HOOKLINE_ERR_SECRET = -6,    /* the secret is missing, empty, too long or not valid base64 */
    HOOKLINE_ERR_INVALID = -7,   /* a required pointer argument is NULL */
    HOOKLINE_ERR_TOOBIG = -8,    /* the body is larger than HOOKLINE_BODY_MAX */
};

/* Limits. Longer inputs are rejected, never truncated. */
#define HOOKLINE_SECRET_MAX 1024           /* bytes of a secret string */
#define HOOKLINE_ID_HEADER_MAX 256         /* bytes of webhook-id */
#define HOOKLINE_SIGNATURE_HEADER_MAX 4096 /* bytes of webhook-signature */
#define HOOKLINE_SIGNATURES_MAX 16         /* space-separated entries in webhook-signature */
#define HOOKLINE_DEFAULT_TOLERANCE 300     /* seconds, used when tolerance_seconds <= 0 */
#define HOOKLINE_BODY_MAX (16u << 20)      /* bytes of a body hookline_parse_envelope accepts */
#define HOOKLINE_FIELD_MAX 256 /* size of each string field in the envelope, NUL included */

/* Returns a static, human-readable text for a code above ("unknown error" for others).
 * Never NULL; the caller does not free it. */
HOOKLINE_API const char *hookline_strerror(int err);

/* Verifies X-Webhook-Signature: the hex HMAC-SHA256 of the raw body, keyed with the whole
 * secret string as the webhook's registration returned it ("whsec_..." included).
 *
 * secret: NUL-terminated, not empty. body: the raw request bytes (may be NULL when body_len is
 * 0). signature_header: the header value, "sha256=" followed by exactly 64 hex digits (either
 * case); the prefix may be left out. NULL means the header was missing. Nothing is retained.
 *
 * Returns HOOKLINE_OK when it matches (compared in constant time), HOOKLINE_ERR_SIGNATURE when
 * it does not, HOOKLINE_ERR_FORMAT for a missing or malformed header, HOOKLINE_ERR_SECRET,
 * HOOKLINE_ERR_INVALID (body NULL with a length) or HOOKLINE_ERR_NOMEM. */
HOOKLINE_API int hookline_verify_signature(const char *secret, const void *body, size_t body_len,
                                           const char *signature_header);

/* Verifies a Standard Webhooks delivery (interoperable with the standardwebhooks and svix
 * packages): the webhook-signature header holds space-separated "v1,<base64>" entries (several
 * while a secret is being rotated; other versions are skipped), and one of them must be the
 * HMAC-SHA256 of webhook_id + "." + webhook_timestamp + "." + body, keyed with the base64 after
 * "whsec_" in the secret (or the whole secret when it has no prefix).
 *
 * The header arguments are the NUL-terminated header values (NULL when missing): webhook_id is
 * 1..HOOKLINE_ID_HEADER_MAX bytes; webhook_timestamp is decimal Unix seconds (digits only, at
 * most 18); webhook_signature is at most HOOKLINE_SIGNATURE_HEADER_MAX bytes and
 * HOOKLINE_SIGNATURES_MAX entries, each "<version>,<signature>". The timestamp must lie within
 * tolerance_seconds of now_seconds, both ways (tolerance_seconds <= 0 means
 * HOOKLINE_DEFAULT_TOLERANCE; now_seconds 0 means time(NULL)). Nothing is retained.
 *
 * Returns HOOKLINE_OK when an entry matches (compared in constant time), HOOKLINE_ERR_FORMAT,
 * HOOKLINE_ERR_TIMESTAMP (checked before the signature), HOOKLINE_ERR_SIGNATURE,
 * HOOKLINE_ERR_SECRET, HOOKLINE_ERR_INVALID or HOOKLINE_ERR_NOMEM. Replay protection beyond the
 * tolerance window is the caller's: remember the webhook_id (or the envelope's eventId). */
HOOKLINE_API int hookline_verify_standard(const char *secret, const char *webhook_id,
                                          const char *webhook_timestamp,
                                          const char *webhook_signature, const void *body,
                                          size_t body_len, int64_t now_seconds,
                                          int64_t tolerance_seconds);

/* hookline_verify_signature, then that the event is recent: the body's "timestamp" (ISO 8601,
 * e.g. "2026-11-27T07:18:52.740Z", covered by the signature) must lie within tolerance_seconds
 * of now_seconds, both ways (tolerance_seconds <= 0 means HOOKLINE_DEFAULT_TOLERANCE;
 * now_seconds 0 means time(NULL)). This is the replay check of the guide's scheme; see the top
 * of this file for why it reads the body and not X-Webhook-Timestamp. hookline sends the
 * Standard Webhooks headers too, and a retry of an event older than the tolerance verifies
 * through those (hookline_verify_request tries both). Nothing is retained.
 *
 * Returns HOOKLINE_OK; any error of hookline_verify_signature (the signature is checked first,
 * so an unsigned body is never parsed); HOOKLINE_ERR_PARSE when the signed body is not a JSON
 * object with a valid "timestamp"; HOOKLINE_ERR_TOOBIG past HOOKLINE_BODY_MAX;
 * HOOKLINE_ERR_TIMESTAMP when it is outside the tolerance. */
HOOKLINE_API int hookline_verify_signature_fresh(const char *secret, const void *body,
                                                 size_t body_len, const char *signature_header,
                                                 int64_t now_seconds, int64_t tolerance_seconds);

/* The signature headers of one request, as NUL-terminated values; NULL for a missing one. */
struct hookline_headers {
    const char *signature;          /* X-Webhook-Signature */
    const char *signature_previous; /* X-Webhook-Signature-Previous (sent during a rotation) */
    const char *webhook_id;         /* webhook-id */
    const char *webhook_timestamp;  /* webhook-timestamp */
    const char *webhook_signature;  /* webhook-signature */
};

/* Verifies one request under one secret the way hookline listen does, replay check included:
 * accepted when the Standard Webhooks headers verify (hookline_verify_standard), or else when
 * X-Webhook-Signature, or X-Webhook-Signature-Previous, verifies and the event is recent
 * (hookline_verify_signature_fresh). now_seconds and tolerance_seconds are as there. With
 * several secrets (a rotation on the receiving side), call it once per secret.
 *
 * Returns HOOKLINE_OK, or the most telling failure: HOOKLINE_ERR_NOMEM or HOOKLINE_ERR_INVALID
 * first, then HOOKLINE_ERR_TIMESTAMP (a signed time is outside the tolerance),
 * HOOKLINE_ERR_PARSE (a signed body without a valid "timestamp"), HOOKLINE_ERR_SIGNATURE,
 * HOOKLINE_ERR_SECRET, HOOKLINE_ERR_TOOBIG, and HOOKLINE_ERR_FORMAT (no usable signature header
 * at all). */
HOOKLINE_API int hookline_verify_request(const char *secret, const struct hookline_headers *headers,
                                         const void *body, size_t body_len, int64_t now_seconds,
                                         int64_t tolerance_seconds);

/* The fields of a hookline event body that a receiver routes and de-duplicates on. Every string
 * is NUL-terminated, at most HOOKLINE_FIELD_MAX - 1 bytes, and "" when the field is optional and
 * absent. The struct owns its storage: there is nothing to free. */
struct hookline_envelope {
    char event_id[HOOKLINE_FIELD_MAX];           /* "eventId", required: the idempotency key */
    char event[HOOKLINE_FIELD_MAX];              /* "event", required, e.g. "agent.created" */
    char timestamp[HOOKLINE_FIELD_MAX];          /* "timestamp", required, ISO 8601 as sent */
    char app_uid[HOOKLINE_FIELD_MAX];            /* "appUid", optional */
    char external_tenant_id[HOOKLINE_FIELD_MAX]; /* "data.externalTenantId", optional */
    char data_uid[HOOKLINE_FIELD_MAX];           /* "data.uid", optional */
    int64_t version;                             /* "version", optional integer, 0 if absent */
};

/* Parses an event body (a JSON object) into *out. Required: "eventId", "event" and "timestamp"
 * as non-empty strings and "data" as an object. The other fields are optional but must have the
 * right type when present. Duplicate keys, NUL characters in strings and invalid UTF-8 are
 * rejected. Call it only after the signature has been verified. The body is not retained.
 *
 * Returns HOOKLINE_OK; HOOKLINE_ERR_PARSE for invalid JSON, a missing or mistyped field or a
 * string that does not fit its field; HOOKLINE_ERR_TOOBIG past HOOKLINE_BODY_MAX;
 * HOOKLINE_ERR_INVALID for NULL arguments; HOOKLINE_ERR_NOMEM. On error *out is zeroed. */
HOOKLINE_API int hookline_parse_envelope(const void *body, size_t len,
                                         struct hookline_envelope *out);

#ifdef __cplusplus
}
#endif

#endif
