/* The web console's handlers: its files and its sign-in (console.h). */
#include "console/console.h"

#include <openssl/sha.h>
#include <stdio.h>
#include <string.h>

#include "api/limits.h"
#include "api/session.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "crypto/token.h"
#include "events/timestamp.h"

#define API_KEY_MAX 256

/* The session as the page sees it: the app, whether it may change anything, and until when. */
static json_t *session_json(const struct hl_app *app, const struct hl_auth *auth)
{
    return json_pack("{s:b,s:s,s:s,s:b,s:o,s:s}", "signedIn", 1, "appUid", app->uid, "appName",
                     app->name, "readOnly", auth->read_only, "expiresAt",
                     hl_json_time(auth->expires_at), "version", HL_VERSION);
}

/* Answers a portal link that was refused (rc: why) or could not be checked (a store error). A
 * refusal counts as a failed credential (429 once the client has spent its budget). */
static int refuse_link(struct hl_req *rq, struct hl_resp *rs, const struct hl_token *t, int rc)
{
    int refused = rc == HL_ESTALE || rc == HL_ECONFLICT || rc == HL_EINVAL || rc == HL_EBADSIG ||
                  rc == HL_ENOTFOUND;
    if (!refused) {
        hl_resp_store_error(rs, rc);
    } else if (hl_req_failed(rq, rs)) {
        /* the 429 is set */
    } else if (rc == HL_ESTALE) {
        char iso[HL_ISO_MAX];
        hl_time_iso(t->expires_at, iso);
        hl_resp_error(rs, 401, "link_expired",
                      "this link expired at %s; ask whoever gave it to you for a new one", iso);
    } else if (rc == HL_ECONFLICT) {
        hl_resp_error(rs, 401, "link_used",
                      "this link was used already (a link opens one session); ask for a new one");
    } else {
        hl_resp_error(rs, 401, "link_invalid",
                      "this link is not valid (cut short, changed, made by another server, or its "
                      "API key was revoked)");
    }
    return rc;
}

/* Signs in with a portal link: once, before it expires. Everything that can refuse the exchange
 * (the signature, the app and the key, the app's rate) comes before the link is marked used, so
 * a refused exchange leaves it to try again; marking it used is one insert that only one of two
 * exchanges of a link can make. */
static int sign_in_link(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *text,
                        size_t len)
{
    struct hl_token t = {0};
    int64_t now = hl_now_ms();
    int rc = hl_token_verify(api->token_key, text, len, HL_TOKEN_PORTAL, now, &t);
    struct hl_app app;
    if (rc == HL_OK) /* by the key that made it, while that key is not revoked */
        rc = hl_session_token_app(api, &t, &app);
    if (rc)
        return refuse_link(rq, rs, &t, rc);
    rq->auth = (struct hl_auth){.session = 1, .read_only = t.read_only, .expires_at = t.expires_at};
    rq->app = app;
    if ((rc = hl_limits_admit(api, rq, rs)))
        return rc;
    if ((rc = hl_store_portal_use(api->store, t.id, t.expires_at, now)))
        return refuse_link(rq, rs, &t, rc);
    return hl_session_open(api, rs, &app, t.read_only, t.expires_at,
                           t.key_uid[0] ? t.key_uid : NULL);
}

/* Signs in with an API key, for HL_SESSION_KEY_MS or until the key is revoked. */
static int sign_in_key(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, json_t *key,
                       int read_only)
{
    uint8_t hash[32];
    SHA256((const unsigned char *)json_string_value(key), json_string_length(key), hash);
    char key_uid[HL_ID_MAX];
    int rc = hl_store_key_find(api->store, hash, &rq->app, key_uid);
    if (rc == HL_ENOTFOUND) {
        if (!hl_req_failed(rq, rs))
            hl_resp_error(rs, 401, "key_invalid", "this API key is unknown or revoked");
        return rc;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        return rc;
    }
    int64_t until = hl_now_ms() + HL_SESSION_KEY_MS;
    rq->auth = (struct hl_auth){.session = 1, .read_only = read_only, .expires_at = until};
    if ((rc = hl_limits_admit(api, rq, rs)))
        return rc;
    return hl_session_open(api, rs, &rq->app, read_only, until, key_uid);
}

/* Reads {"token"} or {"apiKey", "readOnly"?}. Returns the credential or NULL with a 422 set. */
static json_t *read_sign_in(json_t *body, int *read_only, struct hl_resp *rs)
{
    static const char *const known[] = {"token", "apiKey", "readOnly", NULL};
    if (hl_reject_unknown(body, known, rs))
        return NULL;
    json_t *token = json_object_get(body, "token"), *key = json_object_get(body, "apiKey");
    json_t *ro = json_object_get(body, "readOnly");
    if (!token == !key) {
        hl_resp_error(rs, 422, "credential_required",
                      "token or apiKey: give one of them (a portal link's token, or an API key)");
        return NULL;
    }
    json_t *v = token ? token : key;
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        json_string_length(v) > (token ? HL_TOKEN_MAX : API_KEY_MAX) ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        hl_resp_error(rs, 422, "credential_invalid", "%s must be a string of 1 to %d characters",
                      token ? "token" : "apiKey", token ? HL_TOKEN_MAX : API_KEY_MAX);
        return NULL;
    }
    if (ro && (!key || !json_is_boolean(ro))) {
        hl_resp_error(rs, 422, "read_only_invalid",
                      "readOnly goes with apiKey only (a link says it itself), as true or false");
        return NULL;
    }
    *read_only = json_is_true(ro);
    return v;
}

static void sign_in(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    int read_only = 0;
    json_t *cred = read_sign_in(body, &read_only, rs);
    int rc = HL_EINVAL;
    if (cred && json_object_get(body, "token"))
        rc = sign_in_link(api, rq, rs, json_string_value(cred), json_string_length(cred));
    else if (cred)
        rc = sign_in_key(api, rq, rs, cred, read_only);
    if (rc == HL_OK)
        hl_resp_json(rs, 200, session_json(&rq->app, &rq->auth));
    json_decref(body);
}

/* /console/session: who is signed in, sign in, sign out. */
static void session(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (rq->method == HL_GET) {
        if (!hl_req_cookie(rq, HL_SESSION_COOKIE))
            hl_resp_json(rs, 200, json_pack("{s:b,s:s}", "signedIn", 0, "version", HL_VERSION));
        else if (hl_session_authenticate(api, rq, rs) == HL_OK && !hl_limits_admit(api, rq, rs))
            hl_resp_json(rs, 200, session_json(&rq->app, &rq->auth));
        return;
    }
    if (rq->method != HL_POST && rq->method != HL_DELETE) {
        hl_method_not_allowed(rs, "GET, POST, DELETE");
        return;
    }
    /* A cross-site form can neither sign someone in nor out: it cannot send this header. */
    const char *h = hl_req_header(rq, HL_CONSOLE_HEADER);
    if (!h || strcmp(h, "1") != 0) {
        hl_resp_error(rs, 403, "console_header_required",
                      "signing in or out needs the header " HL_CONSOLE_HEADER ": 1");
        return;
    }
    if (rq->method == HL_POST) {
        sign_in(api, rq, rs);
    } else {
        if (hl_session_close(api, rq, rs) == HL_OK)
            rs->status = 204;
    }
}

void hl_console_serve(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    char path[256];
    if (rq->nseg == 0) {
        size_t n = strlen(rq->url);
        if (rq->method != HL_GET) {
            hl_resp_page_headers(rs);
            hl_method_not_allowed(rs, "GET");
            return;
        }
        if (n > 0 && rq->url[n - 1] == '/' && hl_api_asset_at(rq, rs, "/console/"))
            return;
        /* relative paths in the page resolve against /console/ */
        hl_resp_page_headers(rs);
        hl_resp_header(rs, "Location", "/console/");
        hl_resp_json(rs, 302, json_pack("{s:s}", "location", "/console/"));
        return;
    }
    if (rq->nseg == 1 && hl_str_eqc(rq->seg[0], "session")) {
        hl_resp_page_headers(rs);
        session(api, rq, rs);
        return;
    }
    /* a file (api/assets.h): the segments joined back with '/' (they are slices of one path) */
    const char *first = rq->seg[0].p, *last = rq->seg[rq->nseg - 1].p + rq->seg[rq->nseg - 1].len;
    int len = (int)(last - first);
    if (snprintf(path, sizeof(path), "/console/%.*s", len, first) >= (int)sizeof(path) ||
        !hl_api_asset_at(rq, rs, path))
        hl_resp_page_headers(rs); /* the router answers 404 */
}
