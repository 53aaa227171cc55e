/* POST /portal: a signed, expiring link to the console for one app, which an app can hand to
 * its customer (the Svix App Portal's and Hookdeck Outpost's idea, served by hookline itself).
 *
 * The link is /console/#token=<portal token> (crypto/token.h) under --public-url, or without it
 * on the host the request named, over http (X-Forwarded-Proto is not trusted): the token is in
 * the fragment, so it never reaches a server log or a Referer. The console exchanges it once
 * for a session cookie (src/console); the token names the app, its end and whether the session
 * may change anything. */
#include <stdio.h>
#include <string.h>

#include "api/http.h"
#include "api/session.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/json.h"
#include "crypto/token.h"
#include "events/timestamp.h"

#define DEFAULT_EXPIRES_S 3600
#define MAX_EXPIRES_S (24 * 3600)
#define HOST_MAX 255

/* The Host header when it is a host name or address with an optional port, and nothing else. */
static const char *host_of(struct hl_req *rq)
{
    const char *h = hl_req_header(rq, "Host");
    size_t n = h ? strlen(h) : 0;
    if (n == 0 || n > HOST_MAX)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        char c = h[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '-' || c == ':' || c == '[' || c == ']'))
            return NULL;
    }
    return h;
}

/* Reads {expiresIn, readOnly} (both optional). Sets a 422 naming the field on a bad one. */
static int read_body(json_t *body, int64_t *expires_s, int *read_only, struct hl_resp *rs)
{
    static const char *const known[] = {"expiresIn", "readOnly", NULL};
    if (hl_reject_unknown(body, known, rs))
        return HL_EINVAL;
    json_t *v = json_object_get(body, "expiresIn");
    *expires_s = DEFAULT_EXPIRES_S;
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 1 ||
            json_integer_value(v) > MAX_EXPIRES_S)
            return hl_resp_error(rs, 422, "invalid_expires_in",
                                 "expiresIn must be a whole number of seconds from 1 to %d (24 h)",
                                 MAX_EXPIRES_S),
                   HL_EINVAL;
        *expires_s = json_integer_value(v);
    }
    v = json_object_get(body, "readOnly");
    *read_only = 0;
    if (v) {
        if (!json_is_boolean(v))
            return hl_resp_error(rs, 422, "read_only_not_boolean",
                                 "readOnly must be true or false"),
                   HL_EINVAL;
        *read_only = json_is_true(v);
    }
    return HL_OK;
}

static void make_link(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    json_t *body = hl_req_json(rq, rs, 1);
    if (!body)
        return;
    int64_t expires_s;
    int read_only;
    if (read_body(body, &expires_s, &read_only, rs))
        goto out;
    const char *host = host_of(rq), *base = api->cfg.public_url;
    if (!base && !host) {
        hl_resp_error(rs, 400, "invalid_host",
                      "the request needs a Host header (a host name or address, and a port) to "
                      "make the link with");
        goto out;
    }
    struct hl_token t = {.kind = HL_TOKEN_PORTAL,
                         .expires_at = hl_now_ms() + expires_s * 1000,
                         .read_only = read_only};
    snprintf(t.app_uid, sizeof(t.app_uid), "%s", rq->app.uid);
    /* The key that made it: revoking that key invalidates the link and the session it opens. */
    snprintf(t.key_uid, sizeof(t.key_uid), "%s", rq->auth.key_uid);
    char token[HL_TOKEN_MAX + 1], url[HL_TOKEN_MAX + HOST_MAX + 64];
    if (hl_id_new("plk_", 16, t.id, sizeof(t.id)) ||
        hl_token_sign(api->token_key, &t, token, sizeof(token))) {
        hl_resp_error(rs, 500, "internal", "could not sign the link");
        goto out;
    }
    if (base) /* --public-url, without a slash at its end */
        snprintf(url, sizeof(url), "%.*s/console/#token=%s",
                 (int)(strlen(base) - (base[strlen(base) - 1] == '/')), base, token);
    else
        snprintf(url, sizeof(url), "http://%s/console/#token=%s", host, token);
    hl_resp_json(rs, 201,
                 json_pack("{s:s,s:o,s:b}", "url", url, "expiresAt", hl_json_time(t.expires_at),
                           "readOnly", read_only));
out:
    json_decref(body);
}

void hl_api_portal(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (rq->nseg != 1)
        return;
    if (rq->method != HL_POST)
        hl_method_not_allowed(rs, "POST");
    else if (rq->auth.session)
        /* A link outlives nothing it was given: only the app, with its key, makes them. */
        hl_resp_error(rs, 403, "api_key_required",
                      "portal links are made with the app's API key, not from a console session");
    else
        make_link(api, rq, rs);
}
