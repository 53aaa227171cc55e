/* Console sessions (session.h). */
#include "api/session.h"

#include <stdio.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "crypto/token.h"

int hl_api_https(const struct hl_api *api)
{
    return api->cfg.public_url && strncmp(api->cfg.public_url, "https://", 8) == 0;
}

int hl_session_token_app(struct hl_api *api, const struct hl_token *t, struct hl_app *app)
{
    int rc = t->key_uid[0] ? hl_store_key_app(api->store, t->key_uid, app)
                           : hl_store_app_get(api->store, t->app_uid, app);
    return rc == HL_OK && strcmp(app->uid, t->app_uid) != 0 ? HL_ENOTFOUND : rc;
}

/* The app a valid session token names (hl_session_token_app). Sets the answer on failure. */
static int session_app(struct hl_api *api, const struct hl_token *t, struct hl_app *app,
                       struct hl_resp *rs)
{
    int rc = hl_session_token_app(api, t, app);
    if (rc == HL_ENOTFOUND)
        hl_resp_error(rs, 401, "session_revoked",
                      "this console session has ended: %s; sign in again",
                      t->key_uid[0] ? "the API key that opened it was revoked" : "its app is gone");
    else if (rc)
        hl_resp_store_error(rs, rc);
    return rc;
}

int hl_session_authenticate(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    const char *cookie = hl_req_cookie(rq, HL_SESSION_COOKIE);
    if (!cookie) {
        hl_resp_error(
            rs, 401, "unauthorized",
            "send your API key as Authorization: Bearer <key>, or sign in to the console");
        return HL_EINVAL;
    }
    struct hl_token t;
    int rc =
        hl_token_verify(api->token_key, cookie, strlen(cookie), HL_TOKEN_SESSION, hl_now_ms(), &t);
    if (rc == HL_ESTALE) {
        hl_resp_error(rs, 401, "session_expired",
                      "this console session has expired; sign in again");
        return rc;
    }
    if (rc) {
        if (!hl_req_failed(rq, rs))
            hl_resp_error(rs, 401, "session_invalid", "the console session cookie is not valid");
        return rc;
    }
    int ended = 0;
    if ((rc = hl_store_session_ended(api->store, t.id, &ended))) {
        hl_resp_store_error(rs, rc);
        return rc;
    }
    if (ended) {
        hl_resp_error(rs, 401, "session_revoked",
                      "this console session was signed out; sign in again");
        return HL_ENOTFOUND;
    }
    if ((rc = session_app(api, &t, &rq->app, rs)))
        return rc;
    rq->auth = (struct hl_auth){.session = 1, .read_only = t.read_only, .expires_at = t.expires_at};
    return HL_OK;
}

int hl_session_allows(struct hl_req *rq, struct hl_resp *rs)
{
    if (!rq->auth.session || rq->method == HL_GET)
        return HL_OK;
    if (rq->auth.read_only) {
        hl_resp_error(rs, 403, "read_only",
                      "this console session is read-only: it changes nothing");
        return HL_EREFUSED;
    }
    const char *h = hl_req_header(rq, HL_CONSOLE_HEADER);
    if (!h || strcmp(h, "1") != 0) {
        hl_resp_error(rs, 403, "console_header_required",
                      "a change made with a console session needs the header " HL_CONSOLE_HEADER
                      ": 1");
        return HL_EREFUSED;
    }
    return HL_OK;
}

/* Sets the session cookie's header: value for max_age seconds (0: gone). */
static int set_cookie(struct hl_api *api, struct hl_resp *rs, const char *value, int64_t max_age)
{
    char h[HL_TOKEN_MAX + 160];
    int n = snprintf(h, sizeof(h),
                     HL_SESSION_COOKIE "=%s; Path=/; Max-Age=%lld; HttpOnly; "
                                       "SameSite=Strict%s",
                     value, (long long)max_age, hl_api_https(api) ? "; Secure" : "");
    if (n < 0 || (size_t)n >= sizeof(h))
        return HL_ETOOBIG;
    return hl_resp_header(rs, "Set-Cookie", h);
}

int hl_session_open(struct hl_api *api, struct hl_resp *rs, const struct hl_app *app, int read_only,
                    int64_t expires_at, const char *key_uid)
{
    struct hl_token t = {
        .kind = HL_TOKEN_SESSION, .expires_at = expires_at, .read_only = read_only};
    snprintf(t.app_uid, sizeof(t.app_uid), "%s", app->uid);
    snprintf(t.key_uid, sizeof(t.key_uid), "%s", key_uid ? key_uid : "");
    char text[HL_TOKEN_MAX + 1];
    int rc = hl_id_new("ses_", 16, t.id, sizeof(t.id));
    if (rc == HL_OK)
        rc = hl_token_sign(api->token_key, &t, text, sizeof(text));
    int64_t left = (expires_at - hl_now_ms()) / 1000;
    if (rc == HL_OK)
        rc = set_cookie(api, rs, text, left > 0 ? left : 1);
    if (rc)
        hl_resp_error(rs, 500, "internal", "could not open the session");
    return rc;
}

int hl_session_close(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    const char *cookie = hl_req_cookie(rq, HL_SESSION_COOKIE);
    struct hl_token t;
    int64_t now = hl_now_ms();
    int rc = HL_OK;
    if (cookie &&
        hl_token_verify(api->token_key, cookie, strlen(cookie), HL_TOKEN_SESSION, now, &t) == HL_OK)
        rc = hl_store_session_end(api->store, t.id, t.expires_at, now);
    if (rc) { /* the cookie stays: clearing it would hide a session still valid elsewhere */
        hl_resp_store_error(rs, rc);
        return rc;
    }
    return set_cookie(api, rs, "", 0);
}
