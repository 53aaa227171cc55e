/* Signed, expiring tokens: the console's portal links and its session cookies.
 *
 * A token is text safe in a URL fragment and a cookie: base64url(payload) "." base64url(mac),
 * where mac is HMAC-SHA256 of the payload under a server key (kept in the database, so that
 * every node verifies what any node signed) and the payload is
 *
 *     hl1|<kind>|<app uid>|<expires at, ms>|<read-only 0/1>|<random id>|<API key uid or empty>
 *
 * The kind is signed too, so a session cookie is never accepted as a portal link or the other
 * way round. Verification checks the MAC in constant time before it reads any field; a token is
 * refused when it is malformed, forged, of another kind or expired. Whether a portal link was
 * used already is the store's business (hl_store_portal_use), not this module's.
 */
#ifndef HL_TOKEN_H
#define HL_TOKEN_H

#include <stddef.h>
#include <stdint.h>

#include "common/ids.h"

/* Bytes of the server key. */
#define HL_TOKEN_KEY_LEN 32
/* Longest token text, without its NUL; a longer input is refused unread. */
#define HL_TOKEN_MAX 400

enum hl_token_kind {
    HL_TOKEN_PORTAL = 'p',  /* a portal link: exchanged once for a session */
    HL_TOKEN_SESSION = 's', /* a console session cookie */
};

struct hl_token {
    enum hl_token_kind kind;
    char app_uid[HL_ID_MAX];
    int64_t expires_at; /* ms since the epoch */
    int read_only;
    char id[HL_ID_MAX];      /* random: what makes a portal link single use */
    char key_uid[HL_ID_MAX]; /* a session opened with an API key: that key's uid; else "" */
};

/* Writes the signed text of t and a NUL into out (cap bytes). The uids and the id must be 1 to
 * HL_ID_MAX - 1 characters of [A-Za-z0-9_-] (key_uid may be empty) and expires_at positive.
 * Returns 0, HL_EINVAL for a field that breaks that rule, HL_ETOOBIG when out is too small, or
 * HL_ENOMEM. */
int hl_token_sign(const uint8_t key[HL_TOKEN_KEY_LEN], const struct hl_token *t, char *out,
                  size_t cap);

/* Checks s[0..len) as a token of the given kind signed with key, still valid at now (ms), and
 * fills *out. Returns 0; HL_EINVAL when it is not token text or not of that kind; HL_EBADSIG when
 * the MAC does not match (nothing of the payload is read then); HL_ESTALE when it expired at or
 * before now (out is filled: the caller may say when). */
int hl_token_verify(const uint8_t key[HL_TOKEN_KEY_LEN], const char *s, size_t len,
                    enum hl_token_kind kind, int64_t now, struct hl_token *out);

#endif
