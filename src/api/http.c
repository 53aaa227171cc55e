/* libmicrohttpd glue, authentication and the router. */
#include "api/http.h"

#include "api/limits.h"
#include "api/upload.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/net.h"
#include "common/utf8.h"

struct hl_http {
    struct MHD_Daemon *d;
    struct hl_api *api;
    uint16_t port;
};

/* Request-scoped state, freed in request_completed. */
struct ctx {
    struct hl_req rq;
    struct hl_resp err; /* an upload refused mid-body, answered when the body ends */
    int failed;
    size_t discarded;
};

/* Makes s valid UTF-8 in place: bytes that do not form a valid sequence (from a percent-decoded
 * path, or a cut at the end of the buffer) become '?'. */
static void sanitize_utf8(char *s)
{
    unsigned char *p = (unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = hl_utf8_seq(p + i, n - i, &cp);
        if (l == 0) {
            p[i] = '?';
            l = 1;
        }
        i += l;
    }
}

void hl_resp_error(struct hl_resp *rs, int status, const char *code, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    sanitize_utf8(msg);
    json_t *v = json_pack("{s:{s:s,s:s}}", "error", "code", code, "message", msg);
    hl_resp_json(rs, status, v);
}

void hl_resp_json(struct hl_resp *rs, int status, json_t *v)
{
    hl_buf_reset(&rs->body);
    rs->status = status;
    if (!v || hl_json_write(&rs->body, v) != HL_OK) {
        hl_buf_reset(&rs->body);
        hl_buf_puts(&rs->body, "{\"error\":{\"code\":\"internal\",\"message\":\"could not "
                               "build the answer\"}}");
        rs->status = 500;
    }
    json_decref(v);
}

void hl_resp_store_error(struct hl_resp *rs, int err)
{
    if (err == HL_EUNAVAIL)
        hl_resp_error(rs, 503, "unavailable", "the database is unavailable; try again");
    else if (err == HL_ENOMEM)
        hl_resp_error(rs, 500, "internal", "out of memory");
    else
        hl_resp_error(rs, 500, "internal", "storage error");
}

const char *hl_req_query(struct hl_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_GET_ARGUMENT_KIND, name);
}

const char *hl_req_header(struct hl_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

int hl_req_seg(struct hl_req *rq, int i, char *out, size_t cap)
{
    if (i >= rq->nseg || rq->seg[i].len >= cap || memchr(rq->seg[i].p, '\0', rq->seg[i].len))
        return HL_EINVAL;
    memcpy(out, rq->seg[i].p, rq->seg[i].len);
    out[rq->seg[i].len] = '\0';
    return HL_OK;
}

static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    size_t n = strlen("application/json");
    if (strncasecmp(ct, "application/json", n) != 0)
        return 0;
    return ct[n] == '\0' || ct[n] == ';' || ct[n] == ' ';
}

json_t *hl_req_json(struct hl_req *rq, struct hl_resp *rs, int allow_empty)
{
    if (rq->body.len == 0 && allow_empty)
        return json_object();
    if (!is_json_type(hl_req_header(rq, "Content-Type"))) {
        hl_resp_error(rs, 415, "unsupported_media_type",
                      "the body must be JSON, sent with Content-Type: application/json");
        return NULL;
    }
    char err[200];
    json_t *v = hl_json_parse(rq->body.p ? rq->body.p : "", rq->body.len, err, sizeof(err));
    if (!v) {
        hl_resp_error(rs, 400, "invalid_json", "the body is not valid JSON: %s", err);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        hl_resp_error(rs, 400, "invalid_json", "the body must be a JSON object");
        return NULL;
    }
    return v;
}

int hl_req_page(struct hl_req *rq, struct hl_resp *rs, size_t *limit, int64_t *after)
{
    const char *l = hl_req_query(rq, "limit"), *c = hl_req_query(rq, "cursor");
    *limit = 20;
    *after = 0;
    if (l) {
        char *end;
        long long v = strtoll(l, &end, 10);
        if (!*l || *end || v < 1 || v > 100) {
            hl_resp_error(rs, 422, "invalid_limit", "limit must be an integer from 1 to 100");
            return HL_EINVAL;
        }
        *limit = (size_t)v;
    }
    if (c && *c) {
        char *end;
        long long v = strtoll(c, &end, 10);
        if (*end || v < 1) {
            hl_resp_error(rs, 422, "invalid_cursor", "cursor is not one this API gave out");
            return HL_EINVAL;
        }
        *after = v;
    }
    return HL_OK;
}

json_t *hl_page_answer(json_t *data, size_t limit, int64_t last_id)
{
    json_t *next = json_null();
    if (json_array_size(data) == limit && last_id > 0) {
        char cur[32];
        snprintf(cur, sizeof(cur), "%lld", (long long)last_id);
        next = json_string(cur);
    }
    return json_pack("{s:o,s:o}", "data", data, "nextCursor", next);
}

/* ---- routing ---- */

static enum hl_method method_of(const char *m)
{
    if (strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0)
        return HL_GET;
    if (strcmp(m, "POST") == 0)
        return HL_POST;
    if (strcmp(m, "PATCH") == 0)
        return HL_PATCH;
    if (strcmp(m, "DELETE") == 0)
        return HL_DELETE;
    if (strcmp(m, "PUT") == 0)
        return HL_PUT;
    return 0;
}

/* Splits url after the prefix into segments. Returns the count or -1 when there are too many. */
static int split(const char *url, struct hl_str *seg, int max)
{
    int n = 0;
    const char *p = url;
    while (*p) {
        while (*p == '/')
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && *p != '/')
            p++;
        if (n == max)
            return -1;
        seg[n++] = (struct hl_str){s, (size_t)(p - s)};
    }
    return n;
}

static int authenticate(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                        struct hl_str app_uid)
{
    const char *auth = hl_req_header(rq, "Authorization");
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return hl_resp_error(rs, 401, "unauthorized",
                             "send your API key as Authorization: Bearer <key>"),
               HL_EINVAL;
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    uint8_t hash[32];
    SHA256((const unsigned char *)key, strlen(key), hash);
    int rc = hl_store_key_lookup(api->store, hash, &rq->app);
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 401, "unauthorized", "the API key is unknown or revoked"),
               HL_EINVAL;
    if (rc)
        return hl_resp_store_error(rs, rc), rc;
    if (!hl_str_eqc(app_uid, rq->app.uid))
        return hl_resp_error(rs, 404, "not_found", "no such app"), HL_ENOTFOUND;
    return HL_OK;
}

/* Uploads are authenticated before their body is read, so nobody unknown writes to disk. */
static int check_upload_auth(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                             const char *url)
{
    struct hl_str all[8];
    int n = split(url, all, 8);
    if (n < 4)
        return hl_resp_error(rs, 404, "not_found", "no such path"), HL_ENOTFOUND;
    int rc = authenticate(api, rq, rs, all[3]);
    return rc ? rc : hl_limits_admit(api, rq, rs);
}

/* The URL families under /api/v1/appuid/{appUid}/, by their first segment. */
static const struct {
    const char *top;
    void (*handler)(struct hl_api *, struct hl_req *, struct hl_resp *);
} FAMILIES[] = {
    {"webhooks", hl_api_webhooks}, {"deliveries", hl_api_deliveries}, {"events", hl_api_events},
    {"agents", hl_api_resources},  {"contexts", hl_api_resources},
};

static void healthz(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    (void)api;
    if (rq->method != HL_GET) {
        rs->allow = "GET";
        hl_resp_error(rs, 405, "method_not_allowed", "healthz takes GET");
        return;
    }
    hl_resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

static void route(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *url)
{
    struct hl_str all[HL_MAX_SEGS + 4];
    int n = split(url, all, HL_MAX_SEGS + 4);
    if (n == 1 && hl_str_eqc(all[0], "healthz")) {
        healthz(api, rq, rs);
        return;
    }
    if (n == 1 && hl_str_eqc(all[0], "metrics")) {
        hl_api_metrics(api, rq, rs);
        return;
    }
    if (n < 5 || !hl_str_eqc(all[0], "api") || !hl_str_eqc(all[1], "v1") ||
        !hl_str_eqc(all[2], "appuid")) {
        hl_resp_error(rs, 404, "not_found", "no such path");
        return;
    }
    if (!rq->method) {
        hl_resp_error(rs, 405, "method_not_allowed", "method not allowed");
        return;
    }
    /* An upload was admitted before its body was read. */
    if (authenticate(api, rq, rs, all[3]) || (!rq->upload && hl_limits_admit(api, rq, rs)))
        return;
    rq->nseg = n - 4;
    memcpy(rq->seg, all + 4, sizeof(struct hl_str) * (size_t)rq->nseg);
    for (size_t i = 0; i < sizeof(FAMILIES) / sizeof(FAMILIES[0]); i++) {
        if (hl_str_eqc(rq->seg[0], FAMILIES[i].top)) {
            FAMILIES[i].handler(api, rq, rs);
            break;
        }
    }
    if (rs->status == 0)
        hl_resp_error(rs, 404, "not_found", "no such path");
}

/* ---- libmicrohttpd callbacks ---- */

static enum MHD_Result send_resp(struct MHD_Connection *conn, struct hl_resp *rs)
{
    size_t len = rs->body.len;
    char *body = hl_buf_steal(&rs->body);
    struct MHD_Response *r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!r) {
        free(body);
        return MHD_NO;
    }
    if (len)
        MHD_add_response_header(r, "Content-Type",
                                rs->content_type ? rs->content_type : "application/json");
    if (rs->allow)
        MHD_add_response_header(r, "Allow", rs->allow);
    if (rs->retry_after_s > 0) {
        char secs[16];
        snprintf(secs, sizeof(secs), "%d", rs->retry_after_s);
        MHD_add_response_header(r, "Retry-After", secs);
    }
    MHD_add_response_header(r, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct hl_api *api = cls;
    struct ctx *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        c->rq.conn = conn;
        c->rq.method = method_of(method);
        hl_buf_init(&c->rq.body, api->cfg.max_body);
        *con_cls = c;
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
        if (cl && !hl_upload_wanted(&c->rq, url)) {
            char *end;
            unsigned long long v = strtoull(cl, &end, 10);
            if (*end == '\0' && v > api->cfg.max_body) {
                /* Refused before reading: libmicrohttpd closes the connection after this. */
                struct hl_resp rs = {0};
                hl_buf_init(&rs.body, 4096);
                hl_resp_error(&rs, 413, "payload_too_large", "the body is larger than %zu bytes",
                              api->cfg.max_body);
                return send_resp(conn, &rs);
            }
        }
        if (hl_upload_wanted(&c->rq, url)) {
            struct hl_resp rs = {0};
            hl_buf_init(&rs.body, 4096);
            if (check_upload_auth(api, &c->rq, &rs, url) || hl_upload_begin(api, &c->rq, &rs))
                return send_resp(conn, &rs);
            hl_buf_free(&rs.body);
        }
        return MHD_YES;
    }
    if (*upload_size && c->failed) {
        /* Refused mid-body: drop the rest (bounded), answer at the end. */
        c->discarded += *upload_size;
        *upload_size = 0;
        return c->discarded > (c->rq.upload ? api->cfg.max_upload : 16 * api->cfg.max_body)
                   ? MHD_NO
                   : MHD_YES;
    }
    if (*upload_size && c->rq.upload) {
        hl_buf_init(&c->err.body, 4096);
        int rc = hl_upload_data(api, &c->rq, upload_data, *upload_size, &c->err);
        *upload_size = 0;
        if (rc) {
            /* The temporary file goes now; the answer waits for the end of the body. */
            hl_upload_free(c->rq.upload);
            c->rq.upload = NULL;
            c->failed = 1;
            return MHD_YES;
        }
        hl_buf_free(&c->err.body);
        return MHD_YES;
    }
    if (c->failed) {
        struct hl_resp rs = c->err;
        memset(&c->err, 0, sizeof(c->err));
        return send_resp(conn, &rs);
    }
    if (*upload_size) {
        if (hl_buf_append(&c->rq.body, upload_data, *upload_size) != HL_OK) {
            /* Too large, announced by no Content-Length: libmicrohttpd cannot answer before the
             * body ends, so the rest is dropped (bounded) and the 413 comes then. */
            hl_buf_free(&c->rq.body);
            hl_buf_init(&c->err.body, 4096);
            hl_resp_error(&c->err, 413, "payload_too_large", "the body is larger than %zu bytes",
                          api->cfg.max_body);
            c->failed = 1;
        }
        *upload_size = 0;
        return MHD_YES;
    }
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 64u << 20);
    route(api, &c->rq, &rs, url);
    return send_resp(conn, &rs);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    struct ctx *c = *con_cls;
    if (!c)
        return;
    hl_buf_free(&c->rq.body);
    hl_buf_free(&c->err.body);
    hl_upload_free(c->rq.upload);
    free(c);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    hl_debug_va("http", fmt, ap);
}

int hl_http_start(struct hl_api *api, const char *addr, struct hl_http **out)
{
    struct sockaddr_storage ss;
    socklen_t sslen;
    *out = NULL;
    if (hl_parse_listen_addr(addr, &ss, &sslen)) {
        hl_error("http: cannot read listen address '%s' (want HOST:PORT)", addr);
        return HL_EINVAL;
    }
    struct hl_http *h = calloc(1, sizeof(*h));
    if (!h)
        return HL_ENOMEM;
    h->api = api;
    unsigned flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG | MHD_USE_ITC;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    h->d = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, api, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, api->cfg.threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
        NULL, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)60, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)4096, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        hl_error("http: cannot listen on %s", addr);
        free(h);
        return HL_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return HL_OK;
}

void hl_http_quiesce(struct hl_http *h)
{
    if (h && h->d) {
        MHD_socket s = MHD_quiesce_daemon(h->d);
        if (s != MHD_INVALID_SOCKET)
            close(s);
    }
}

void hl_http_stop(struct hl_http *h)
{
    if (!h)
        return;
    if (h->d)
        MHD_stop_daemon(h->d);
    free(h);
}

uint16_t hl_http_port(const struct hl_http *h)
{
    return h->port;
}
