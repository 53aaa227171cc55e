/* GET /api/v1/openapi.json and the API reference at /docs: files compiled into the binary
 * (api/assets.h), served without a key. The page is hand-written HTML, script and style that
 * render the same document; nothing is fetched from anywhere but this server, and the policy
 * below holds the browser to that. */
#include <string.h>

#include "api/assets.h"
#include "api/http.h"
#include "common/err.h"

/* Scripts and styles from this server only (no inline script), data from this server only, no
 * frames, no forms, no plugins. */
#define DOCS_CSP                                                                                   \
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "                \
    "img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

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

int hl_api_asset(struct hl_req *rq, struct hl_resp *rs, const struct hl_str *seg, int n)
{
    const struct hl_asset *a = hl_assets;
    while (a->path && !same_path(seg, n, a->path))
        a++;
    if (!a->path)
        return 0;
    if (rq->method != HL_GET) {
        rs->allow = "GET";
        hl_resp_error(rs, 405, "method_not_allowed", "%s takes GET", a->path);
        return 1;
    }
    hl_buf_reset(&rs->body);
    if (hl_buf_append(&rs->body, a->data, a->len) != HL_OK) {
        hl_resp_error(rs, 500, "internal", "out of memory");
        return 1;
    }
    rs->status = 200;
    rs->content_type = a->type;
    rs->csp = DOCS_CSP;
    return 1;
}
