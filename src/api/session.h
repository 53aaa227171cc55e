/* Console sessions: a signed cookie that stands in for an API key on the console's requests.
 *
 * The console (src/console) opens a session by exchanging a portal link or an API key for it;
 * the cookie holds a token (crypto/token.h) of kind HL_TOKEN_SESSION: the app, the end of the
 * session, whether it is read-only and, when an API key opened it, that key. It is HttpOnly,
 * SameSite=Strict, Path=/ and, when --public-url is https (hl_api_https), Secure. Every node checks
 * the signature with the key kept in the database; a session opened with an API key ends when that
 * key is revoked, and a session signed out ends at once: its id is kept in the database until it
 * expires, and every request with a session cookie looks for it there.
 *
 * The rules of a session (http.c's authenticate applies them to every handler): it reaches only
 * its own app; a request that changes anything (not GET or HEAD) must carry the header
 * HL_CONSOLE_HEADER: 1, which a cross-site form cannot send (CSRF); a read-only session changes
 * nothing (403 read_only).
 */
#ifndef HL_SESSION_H
#define HL_SESSION_H

#include <stdint.h>

#include "api/http.h"
#include "crypto/token.h"

#define HL_SESSION_COOKIE "hookline_console"
#define HL_CONSOLE_HEADER "X-Hookline-Console"
/* How long a session opened with an API key lasts. */
#define HL_SESSION_KEY_MS (12LL * 3600 * 1000)

/* Authenticates rq by its session cookie: 0 with rq->app and rq->auth set; otherwise sets the
 * answer (401 for a cookie that is forged, expired or whose key was revoked, 429 for a forged one
 * while the client is throttled, 503) and returns an error. A forged cookie counts as a failed
 * credential; a valid one is never throttled. */
int hl_session_authenticate(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* Checks what an authenticated session may do with rq: nothing but GET when read-only, and any
 * change only with the console's header. Sets a 403 and returns HL_EREFUSED when it may not. */
int hl_session_allows(struct hl_req *rq, struct hl_resp *rs);
/* Opens a session for app: sets its cookie on rs (read_only, until expires_at; key_uid: the API
 * key that opened it, or NULL). Returns 0, or sets a 500 and returns an error. */
int hl_session_open(struct hl_api *api, struct hl_resp *rs, const struct hl_app *app, int read_only,
                    int64_t expires_at, const char *key_uid);
/* Signs out: ends the session of rq's cookie, when it is a valid one, on every node until it
 * expires (hl_store_session_end: a copy of the cookie opens nothing any more), and sets a cookie
 * on rs that replaces it with nothing, expired. Returns 0, or the store's error with its answer
 * set and the cookie left as it is (the session is still valid). */
int hl_session_close(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);
/* Reads into *app the app that the valid token t (a portal link or a session) names: by its
 * key while that key is not revoked, else by its uid. Returns 0, HL_ENOTFOUND when the key was
 * revoked or the app is gone (each caller answers its own 401), or the store's error. */
int hl_session_token_app(struct hl_api *api, const struct hl_token *t, struct hl_app *app);
/* True when clients reach the server over https: --public-url is https. X-Forwarded-Proto is
 * not trusted (any client can send it); a server behind a proxy that ends TLS says so with
 * --public-url. */
int hl_api_https(const struct hl_api *api);

#endif
