/* The files compiled into the binary (api/assets.h), served without a key: /api/v1/openapi.json,
 * the API reference at /docs and the web console's files under /console. The pages are
 * hand-written HTML, script and style; nothing is fetched from anywhere but this server, and the
 * policy below holds the browser to that. */
#include <string.h>

#include "api/assets.h"
#include "api/http.h"
#include "common/err.h"

/* Scripts and styles from this server only (no inline script, no eval, no inline style), data
 * from this server only, no frames, no forms, no plugins. */
#define PAGE_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

void hl_resp_page_headers(struct hl_resp *rs)
{
    hl_resp_header(rs, "Content-Security-Policy", PAGE_CSP);
    hl_resp_header(rs, "X-Frame-Options", "DENY");
    hl_resp_header(rs, "Referrer-Policy", "no-referrer");
    hl_resp_header(rs, "Cross-Origin-Opener-Policy", "same-origin");
}

/* True when the segments seg[0..n) spell path ("/docs/reference.js"). */
static int same_path(const struct hl_str *seg, int n, const char *path)
{
    const char *p = path;
    for (int i = 0; i < n; i++) {
        if (*p++ != '/' || strncmp(p, seg[i].p, seg[i].len) != 0)
            return 0;
        p += seg[i].len;
    }
    return *p == '\0' && n > 0;
}

/* Answers the asset a (never NULL). */
static void serve(struct hl_req *rq, struct hl_resp *rs, const struct hl_asset *a)
{
    if (rq->method != HL_GET) {
        rs->allow = "GET";
        hl_resp_error(rs, 405, "method_not_allowed", "%s takes GET", a->path);
        return;
    }
    hl_buf_reset(&rs->body);
    if (hl_buf_append(&rs->body, a->data, a->len) != HL_OK) {
        hl_resp_error(rs, 500, "internal", "out of memory");
        return;
    }
    rs->status = 200;
    rs->content_type = a->type;
    hl_resp_page_headers(rs);
}

int hl_api_asset(struct hl_req *rq, struct hl_resp *rs, const struct hl_str *seg, int n)
{
    const struct hl_asset *a = hl_assets;
    while (a->path && !same_path(seg, n, a->path))
        a++;
    if (!a->path)
        return 0;
    serve(rq, rs, a);
    return 1;
}

int hl_api_asset_at(struct hl_req *rq, struct hl_resp *rs, const char *path)
{
    const struct hl_asset *a = hl_assets;
    while (a->path && strcmp(a->path, path) != 0)
        a++;
    if (!a->path)
        return 0;
    serve(rq, rs, a);
    return 1;
}
