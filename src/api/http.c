/* libmicrohttpd glue, authentication and the router. */
#include "api/http.h"

#include "api/limits.h"
#include "api/session.h"
#include "api/upload.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "common/log.h"
#include "common/ids.h"
#include "common/net.h"
#include "common/throttle.h"
#include "common/thread.h"
#include "common/utf8.h"

/* Parked requests (see http.h). Every field is read and written under mu. */
#define LOT_BUCKETS 256

struct ctx;

struct lot {
    pthread_mutex_t mu;
    pthread_cond_t timer_cv;         /* the timer waits here (monotonic clock) */
    pthread_cond_t idle_cv;          /* hl_http_stop waits here for parked requests to end */
    struct ctx *head;                /* every parked request, in no order */
    struct ctx *bucket[LOT_BUCKETS]; /* the same, by key */
    int64_t timer_at;                /* when the timer wakes next (INT64_MAX: when told) */
    size_t live;                     /* requests that parked and have not ended */
    size_t key_only;                 /* parked requests that wake by their key alone */
    int stopping;
    int timer_running;
    pthread_t timer;
};

struct hl_http {
    struct MHD_Daemon *d;
    struct hl_api *api;
    unsigned serves; /* enum hl_serve */
    uint16_t port;
    struct lot lot;
    struct hl_throttle *failures; /* failed credentials per client (hl_req_failed) */
    /* 1 once hl_http_quiesce ran: on_accept closes every new connection. (Not
     * MHD_quiesce_daemon: on an epoll thread pool it takes the listening socket out of each
     * thread's epoll set while that thread may be doing the same, and libmicrohttpd aborts the
     * process when it finds the socket gone: "Failed to remove listen FD from epoll set".) */
    atomic_int refusing;
};

enum park_state {
    P_IDLE,   /* not parked */
    P_PARKED, /* in the lot: suspended, or about to be when its handler returns */
    P_WOKEN,  /* out of the lot: its park function runs next */
};

/* Request-scoped state, freed in on_completed. rq comes first: a struct hl_req * is its ctx. */
struct ctx {
    struct hl_req rq;
    const char *method; /* libmicrohttpd's, for the request log */
    int64_t started_us;
    struct hl_resp err; /* a refusal, answered once the body has been read (and dropped) */
    int failed;
    size_t discarded;
    /* Parking, under the lot's mu. */
    enum park_state pstate;
    int suspended;    /* the connection is suspended: a wake resumes it */
    int counted;      /* counted in lot.live */
    int64_t wake_at;  /* monotonic ms: the next recheck or the deadline */
    enum hl_wake why; /* P_WOKEN: why, and the waker's code */
    int rc;
    /* hl_req_commit's: what answers once the commit is over. */
    void (*then)(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int rc);
    struct ctx *prev, *next;   /* lot.head */
    struct ctx *bprev, *bnext; /* lot.bucket */
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

int hl_resp_header(struct hl_resp *rs, const char *name, const char *value)
{
    if (rs->headers.max == 0)
        hl_buf_init(&rs->headers, 4096);
    /* "name\0value\0", as send_resp reads them */
    size_t before = rs->headers.len;
    int rc = hl_buf_append(&rs->headers, name, strlen(name) + 1);
    if (rc == HL_OK)
        rc = hl_buf_append(&rs->headers, value, strlen(value) + 1);
    if (rc)
        rs->headers.len = before;
    return rc;
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

const char *hl_req_cookie(struct hl_req *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_COOKIE_KIND, name);
}

/* ---- failed credentials, per client ---- */

#define FAILURE_BURST 10
#define FAILURE_INTERVAL_MS 6000

static struct hl_client client_of(struct hl_req *rq)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(rq->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    return hl_client_of(ci ? ci->client_addr : NULL);
}

int hl_req_failed(struct hl_req *rq, struct hl_resp *rs)
{
    struct hl_client c = client_of(rq);
    int64_t now = hl_mono_ms(), wait = hl_throttle_wait(rq->http->failures, &c, now);
    if (wait <= 0) {
        hl_throttle_fail(rq->http->failures, &c, now);
        return 0;
    }
    char secs[32];
    snprintf(secs, sizeof(secs), "%lld", (long long)(wait + 999) / 1000);
    hl_resp_error(rs, 429, "too_many_failures",
                  "too many bad links, sessions or keys from this address; try again in %s s",
                  secs);
    hl_resp_header(rs, "Retry-After", secs);
    return 1;
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
    if (!auth && hl_req_cookie(rq, HL_SESSION_COOKIE)) {
        /* The console's session cookie, and what a session may do (api/session.h). */
        int rc = hl_session_authenticate(api, rq, rs);
        if (rc == HL_OK && !hl_str_eqc(app_uid, rq->app.uid))
            return hl_resp_error(rs, 404, "not_found", "no such app"), HL_ENOTFOUND;
        return rc ? rc : hl_session_allows(rq, rs);
    }
    if (!auth || strncasecmp(auth, "Bearer ", 7) != 0 || !auth[7])
        return hl_resp_error(rs, 401, "unauthorized",
                             "send your API key as Authorization: Bearer <key>"),
               HL_EINVAL;
    const char *key = auth + 7;
    while (*key == ' ')
        key++;
    uint8_t hash[32];
    SHA256((const unsigned char *)key, strlen(key), hash);
    int rc = hl_store_key_find(api->store, hash, &rq->app, rq->auth.key_uid);
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
    struct hl_str all[HL_MAX_SEGS + 4];
    int n = split(url, all, HL_MAX_SEGS + 4);
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
    {"webhooks", hl_api_webhooks},
    {"deliveries", hl_api_deliveries},
    {"events", hl_api_events},
    {"agents", hl_api_resources},
    {"contexts", hl_api_resources},
    {"portal", hl_api_portal},
    {"operational-webhooks", hl_api_webhooks}, /* issue 21: webhooks.c serves both kinds */
};

/* GET /healthz: liveness. The process answers; nothing else is asked. */
static void healthz(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    (void)api;
    (void)rq;
    hl_resp_json(rs, 200, json_pack("{s:s}", "status", "ok"));
}

/* GET /readyz: readiness. 200 when the database answers (its schema was migrated before this
 * server started) and the dispatcher runs; 503 naming what is not, otherwise. */
static void readyz(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    (void)rq;
    /* One indexed read of an app that cannot exist: it reaches the database and costs nothing. */
    struct hl_app app;
    int rc = hl_store_app_get(api->store, "", &app);
    int db_ok = rc == HL_OK || rc == HL_ENOTFOUND;
    char db[128], disp[160] = "no dispatcher";
    snprintf(db, sizeof(db), "%s%s", db_ok ? "ok" : "unreachable: ", db_ok ? "" : hl_strerror(rc));
    int disp_ok =
        api->hooks.dispatcher_running &&
        api->hooks.dispatcher_running(api->hooks.dispatcher_running_arg, disp, sizeof(disp));
    int ready = db_ok && disp_ok;
    hl_resp_json(rs, ready ? 200 : 503,
                 json_pack("{s:s,s:{s:s,s:s,s:s}}", "status", ready ? "ready" : "unavailable",
                           "checks", "database", db, "migrations", "ok", "dispatcher",
                           disp_ok ? "ok" : disp));
}

/* The paths outside the app prefix, without a key. */
static const struct {
    const char *name;
    unsigned serves; /* the enum hl_serve that answers it */
    void (*handler)(struct hl_api *, struct hl_req *, struct hl_resp *);
} OUTSIDE[] = {
    {"healthz", HL_SERVE_API, healthz},
    {"readyz", HL_SERVE_API, readyz},
    {"metrics", HL_SERVE_METRICS, hl_api_metrics},
};

static enum park_state park_state(struct hl_req *rq);

static void route(struct hl_http *h, struct hl_req *rq, struct hl_resp *rs, const char *url)
{
    struct hl_api *api = h->api;
    struct hl_str all[HL_MAX_SEGS + 4];
    int n = split(url, all, HL_MAX_SEGS + 4);
    /* The web console (src/console, through its hook): its pages, assets and sign-in. */
    if (n >= 1 && n - 1 <= HL_MAX_SEGS && hl_str_eqc(all[0], "console") &&
        (h->serves & HL_SERVE_API) && api->hooks.console) {
        rq->nseg = n - 1;
        memcpy(rq->seg, all + 1, sizeof(struct hl_str) * (size_t)rq->nseg);
        api->hooks.console(api, rq, rs);
        if (rs->status == 0)
            hl_resp_error(rs, 404, "not_found", "no such path");
        return;
    }
    for (size_t i = 0; n == 1 && i < sizeof(OUTSIDE) / sizeof(OUTSIDE[0]); i++) {
        if (!hl_str_eqc(all[0], OUTSIDE[i].name) || !(h->serves & OUTSIDE[i].serves))
            continue;
        if (rq->method != HL_GET) {
            rs->allow = "GET";
            hl_resp_error(rs, 405, "method_not_allowed", "%s takes GET", OUTSIDE[i].name);
        } else {
            OUTSIDE[i].handler(api, rq, rs);
        }
        return;
    }
    if ((h->serves & HL_SERVE_API) && n >= 0 && hl_api_asset(rq, rs, all, n))
        return;
    if (!(h->serves & HL_SERVE_API) || n < 5 || !hl_str_eqc(all[0], "api") ||
        !hl_str_eqc(all[1], "v1") || !hl_str_eqc(all[2], "appuid")) {
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
    if (rs->status == 0 && park_state(rq) == P_IDLE)
        hl_resp_error(rs, 404, "not_found", "no such path");
}

/* Counts an answered request in the API's metrics and logs it in one line, never with its key,
 * secrets or body: info for the API, debug for the probes (/healthz, /readyz, /metrics), which a
 * monitor calls every few seconds. The route is its template (api/metrics.h), so no text a
 * client made up reaches the logs or the metrics. */
static void count_request(struct ctx *c, const char *url, int status)
{
    size_t ri = hl_route_of(url);
    const char *route = hl_route_name(ri);
    int64_t us = hl_mono_us() - c->started_us;
    hl_http_metrics_count(&c->rq.http->api->http_metrics, ri, (unsigned)c->rq.method, status, us);
    enum hl_log_level level =
        strncmp(route, "/api/v1/appuid/", 15) == 0 || ri == 0 ? HL_LOG_INFO : HL_LOG_DEBUG;
    if (!hl_log_enabled(level))
        return;
    struct hl_log_field f[] = {
        HL_LOG_STR("method", c->method),
        HL_LOG_STR("route", route),
        HL_LOG_NUM("status", status),
        HL_LOG_NUM("duration_ms", (double)(us / 100) / 10.0),
        HL_LOG_STR("app", c->rq.app.uid[0] ? c->rq.app.uid : NULL),
    };
    hl_log_fields(level, f, sizeof(f) / sizeof(f[0]), "request");
}

/* ---- parking ---- */

static struct ctx *ctx_of(struct hl_req *rq)
{
    return (struct ctx *)rq;
}

static enum park_state park_state(struct hl_req *rq)
{
    struct lot *l = &rq->http->lot;
    pthread_mutex_lock(&l->mu);
    enum park_state s = ctx_of(rq)->pstate;
    pthread_mutex_unlock(&l->mu);
    return s;
}

static size_t bucket_of(uint64_t key)
{
    return (size_t)((key * UINT64_C(0x9E3779B97F4A7C15)) >> 56) % LOT_BUCKETS;
}

/* The next time c wakes by itself: its deadline, or its next recheck before that. */
static int64_t next_wake(const struct ctx *c, int64_t now)
{
    const struct hl_park *p = &c->rq.park;
    if (p->recheck_ms > 0 && now + p->recheck_ms < p->deadline)
        return now + p->recheck_ms;
    return p->deadline;
}

/* Takes c out of the lot and wakes it (l->mu held). */
static void wake_locked(struct lot *l, struct ctx *c, enum hl_wake why, int rc)
{
    if (c->prev)
        c->prev->next = c->next;
    else
        l->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->bprev)
        c->bprev->bnext = c->bnext;
    else
        l->bucket[bucket_of(c->rq.park.key)] = c->bnext;
    if (c->bnext)
        c->bnext->bprev = c->bprev;
    c->prev = c->next = c->bprev = c->bnext = NULL;
    if (c->rq.park.key_only && --l->key_only == 0 && l->stopping)
        pthread_cond_broadcast(&l->idle_cv);
    c->pstate = P_WOKEN;
    c->why = why;
    c->rc = rc;
    if (c->suspended) {
        c->suspended = 0;
        MHD_resume_connection(c->rq.conn);
    }
}

int hl_req_park(struct hl_req *rq, const struct hl_park *p)
{
    struct ctx *c = ctx_of(rq);
    struct lot *l = &rq->http->lot;
    pthread_mutex_lock(&l->mu);
    if (p->key_only && l->stopping) {
        /* hl_http_stop may no longer wait for it. */
        pthread_mutex_unlock(&l->mu);
        return HL_EUNAVAIL;
    }
    if (p != &rq->park) /* a park function may park again as it was */
        rq->park = *p;
    if (!c->counted) {
        c->counted = 1;
        l->live++;
    }
    if (l->stopping) {
        c->pstate = P_WOKEN;
        c->why = HL_WAKE_STOP;
        c->rc = 0;
    } else {
        c->pstate = P_PARKED;
        c->wake_at = next_wake(c, hl_mono_ms());
        c->next = l->head;
        if (l->head)
            l->head->prev = c;
        l->head = c;
        struct ctx **b = &l->bucket[bucket_of(p->key)];
        c->bnext = *b;
        if (*b)
            (*b)->bprev = c;
        *b = c;
        l->key_only += p->key_only ? 1 : 0;
        if (c->wake_at < l->timer_at)
            pthread_cond_signal(&l->timer_cv);
    }
    pthread_mutex_unlock(&l->mu);
    return HL_OK;
}

void hl_req_hold(struct hl_req *rq, void *held, void (*free_fn)(void *held))
{
    if (rq->held && rq->held_free)
        rq->held_free(rq->held);
    rq->held = held;
    rq->held_free = free_fn;
}

/* The store's word on a commit (on its commit thread, or in hl_store_commit_start): wakes the
 * request that waits for it. The request lives until then: its park is key_only. */
static void commit_done(void *arg, int rc, int64_t deliveries)
{
    struct hl_req *rq = arg;
    (void)deliveries;
    hl_http_wake(rq->http, rq->park.key, rc);
}

/* A request parked by hl_req_commit woke: its commit is over. */
static void committed(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_wake why,
                      int rc)
{
    if (why != HL_WAKE_KEY) /* a key_only park wakes by its key alone */
        hl_resp_error(rs, 500, "internal", "the outcome of the change is unknown");
    else
        ctx_of(rq)->then(api, rq, rs, rc);
}

void hl_req_commit(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                   const struct hl_change *ch, size_t n, const struct hl_idem *idem,
                   void (*then)(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int rc))
{
    struct ctx *c = ctx_of(rq);
    c->then = then;
    /* A request waits for one commit at a time: its address is the ticket. */
    struct hl_park p = {.key = HL_PARK_KEY(HL_PARK_COMMIT, (uintptr_t)c),
                        .deadline = INT64_MAX,
                        .fn = committed,
                        .key_only = 1};
    if (hl_req_park(rq, &p) == HL_OK) {
        int rc = hl_store_commit_start(api->store, ch, n, idem, commit_done, rq);
        if (rc)
            hl_http_wake(rq->http, p.key, rc);
        return;
    }
    /* The server is stopping: the commit runs on this thread. */
    then(api, rq, rs, hl_store_commit(api->store, ch, n, idem, NULL));
}

size_t hl_http_wake(struct hl_http *h, uint64_t key, int rc)
{
    struct lot *l = &h->lot;
    size_t n = 0;
    pthread_mutex_lock(&l->mu);
    struct ctx *c = l->bucket[bucket_of(key)];
    while (c) {
        struct ctx *next = c->bnext;
        if (c->rq.park.key == key) {
            wake_locked(l, c, HL_WAKE_KEY, rc);
            n++;
        }
        c = next;
    }
    pthread_mutex_unlock(&l->mu);
    return n;
}

void hl_http_attempts_recorded(struct hl_http *h, const struct hl_attempt *a, size_t n)
{
    for (size_t i = 0; i < n; i++)
        hl_http_wake(h, HL_PARK_KEY(HL_PARK_DELIVERY, a[i].delivery_id), HL_OK);
}

/* The timer: wakes parked requests at their rechecks and deadlines. */
static void *timer_run(void *arg)
{
    struct lot *l = arg;
    pthread_mutex_lock(&l->mu);
    while (!l->stopping) {
        int64_t now = hl_mono_ms(), next = INT64_MAX;
        for (struct ctx *c = l->head, *after; c; c = after) {
            after = c->next;
            if (c->wake_at <= now)
                wake_locked(l, c, now >= c->rq.park.deadline ? HL_WAKE_DEADLINE : HL_WAKE_RECHECK,
                            0);
            else if (c->wake_at < next)
                next = c->wake_at;
        }
        l->timer_at = next;
        if (next == INT64_MAX) {
            pthread_cond_wait(&l->timer_cv, &l->mu);
        } else {
            struct timespec ts = hl_mono_ts(next);
            pthread_cond_timedwait(&l->timer_cv, &l->mu, &ts);
        }
    }
    pthread_mutex_unlock(&l->mu);
    return NULL;
}

static int lot_init(struct lot *l)
{
    memset(l, 0, sizeof(*l));
    l->timer_at = INT64_MAX;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->timer_cv, &ca);
    pthread_cond_init(&l->idle_cv, &ca);
    pthread_condattr_destroy(&ca);
    if (hl_thread_start(&l->timer, timer_run, l, "hl-parked") != 0)
        return HL_ENOMEM;
    l->timer_running = 1;
    return HL_OK;
}

/* How long hl_http_stop lets woken requests send their answers. */
#define STOP_DRAIN_MS 10000

/* Wakes every parked request but those that wake by their key alone (a commit in progress, bound
 * to report), and waits until each has ended: bounded, except for those, whose commits must be
 * answered before the server may go. Stops the timer. */
static void lot_stop(struct lot *l)
{
    pthread_mutex_lock(&l->mu);
    l->stopping = 1;
    for (struct ctx *c = l->head, *after; c; c = after) {
        after = c->next;
        if (!c->rq.park.key_only)
            wake_locked(l, c, HL_WAKE_STOP, 0);
    }
    pthread_cond_signal(&l->timer_cv);
    struct timespec ts = hl_mono_ts(hl_mono_ms() + STOP_DRAIN_MS);
    int late = 0;
    while (l->live > 0 && (!late || l->key_only > 0)) {
        if (late)
            pthread_cond_wait(&l->idle_cv, &l->mu);
        else
            late = pthread_cond_timedwait(&l->idle_cv, &l->mu, &ts) != 0;
    }
    pthread_mutex_unlock(&l->mu);
    if (l->timer_running)
        pthread_join(l->timer, NULL);
    l->timer_running = 0;
}

static void lot_destroy(struct lot *l)
{
    pthread_cond_destroy(&l->timer_cv);
    pthread_cond_destroy(&l->idle_cv);
    pthread_mutex_destroy(&l->mu);
}

/* A request ends: out of the lot if it is still there, no longer live. */
static void lot_leave(struct lot *l, struct ctx *c)
{
    pthread_mutex_lock(&l->mu);
    if (c->pstate == P_PARKED) {
        c->suspended = 0;
        wake_locked(l, c, HL_WAKE_STOP, 0);
    }
    if (c->counted && --l->live == 0)
        pthread_cond_broadcast(&l->idle_cv);
    pthread_mutex_unlock(&l->mu);
}

/* ---- libmicrohttpd callbacks ---- */

/* Queues rs as the answer to c's request (for url), and logs the request. */
static enum MHD_Result send_resp(struct ctx *c, const char *url, struct hl_resp *rs)
{
    struct MHD_Connection *conn = c->rq.conn;
    count_request(c, url, rs->status);
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
    MHD_add_response_header(r, "Cache-Control", "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    for (size_t at = 0; at < rs->headers.len;) {
        const char *name = rs->headers.p + at, *value = name + strlen(name) + 1;
        MHD_add_response_header(r, name, value);
        at = (size_t)(value - rs->headers.p) + strlen(value) + 1;
    }
    hl_buf_free(&rs->headers);
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)rs->status, r);
    MHD_destroy_response(r);
    return ret;
}

/* The most of a refused request's body that is read (and dropped) before its answer. */
static size_t drain_max(const struct hl_api *api)
{
    size_t floor = 64u << 20;
    return api->cfg.max_upload > floor ? api->cfg.max_upload : floor;
}

/* Answers a request refused from its headers alone (rs). The answer waits until the body has
 * been read and dropped, so that a client that writes its whole body before it reads gets the
 * answer, not a reset connection. A body announced larger than drain_max, or one the client
 * holds back until it hears 100 Continue, is answered at once (and the connection closed). */
static enum MHD_Result refuse(struct hl_http *h, struct ctx *c, const char *url, struct hl_resp *rs)
{
    struct MHD_Connection *conn = c->rq.conn;
    const char *expect = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Expect");
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    char *end = NULL;
    unsigned long long announced = cl ? strtoull(cl, &end, 10) : 0;
    if ((expect && strcasecmp(expect, "100-continue") == 0) ||
        (cl && (*end != '\0' || announced > drain_max(h->api))))
        return send_resp(c, url, rs);
    c->err = *rs;
    c->failed = 1;
    return MHD_YES;
}

/* What is decided from the headers alone: an announced body over the limit, and an upload's
 * key and fields (so that nobody unknown writes to disk). Returns MHD_YES to read the body. */
static enum MHD_Result begin(struct hl_http *h, struct ctx *c, const char *url)
{
    struct hl_api *api = h->api;
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 4096);
    int upload = (h->serves & HL_SERVE_API) && hl_upload_wanted(&c->rq, url);
    const char *cl = MHD_lookup_connection_value(c->rq.conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && !upload) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (*end == '\0' && v > api->cfg.max_body) {
            hl_resp_error(&rs, 413, "payload_too_large", "the body is larger than %zu bytes",
                          api->cfg.max_body);
            return refuse(h, c, url, &rs);
        }
    }
    if (upload && (check_upload_auth(api, &c->rq, &rs, url) || hl_upload_begin(api, &c->rq, &rs)))
        return refuse(h, c, url, &rs);
    hl_buf_free(&rs.body);
    hl_buf_free(&rs.headers);
    return MHD_YES;
}

/* Takes a part of the body. Returns MHD_NO to close the connection. */
static enum MHD_Result body_part(struct hl_http *h, struct ctx *c, const char *data, size_t n)
{
    struct hl_api *api = h->api;
    if (c->failed) {
        /* Refused: drop the rest (bounded), answer at the end. */
        c->discarded += n;
        return c->discarded > drain_max(api) ? MHD_NO : MHD_YES;
    }
    if (c->rq.upload) {
        hl_buf_init(&c->err.body, 4096);
        if (hl_upload_data(api, &c->rq, data, n, &c->err)) {
            /* The temporary file goes now; the answer waits for the end of the body. */
            hl_upload_free(c->rq.upload);
            c->rq.upload = NULL;
            c->failed = 1;
            return MHD_YES;
        }
        hl_buf_free(&c->err.body);
        return MHD_YES;
    }
    if (hl_buf_append(&c->rq.body, data, n) != HL_OK) {
        /* Too large, announced by no Content-Length: the answer comes once the body ends. */
        hl_buf_free(&c->rq.body);
        hl_buf_init(&c->err.body, 4096);
        hl_resp_error(&c->err, 413, "payload_too_large", "the body is larger than %zu bytes",
                      api->cfg.max_body);
        c->failed = 1;
    }
    return MHD_YES;
}

/* The request is whole: routes it, or runs the park function of a request that woke. A parked
 * request's connection is suspended here, once its handler has returned. */
static enum MHD_Result answer(struct hl_http *h, struct ctx *c, const char *url)
{
    struct lot *l = &h->lot;
    struct hl_resp rs = {0};
    hl_buf_init(&rs.body, 64u << 20);
    if (park_state(&c->rq) == P_IDLE)
        route(h, &c->rq, &rs, url);
    for (;;) {
        pthread_mutex_lock(&l->mu);
        enum park_state s = c->pstate;
        if (s == P_PARKED && rs.status == 0) {
            c->suspended = 1;
            MHD_suspend_connection(c->rq.conn);
            pthread_mutex_unlock(&l->mu);
            hl_buf_free(&rs.body);
            hl_buf_free(&rs.headers);
            return MHD_YES;
        }
        enum hl_wake why = c->why;
        int rc = c->rc;
        if (s == P_WOKEN)
            c->pstate = P_IDLE;
        pthread_mutex_unlock(&l->mu);
        if (s != P_WOKEN || rs.status != 0)
            break;
        c->rq.park.fn(h->api, &c->rq, &rs, why, rc);
    }
    if (rs.status == 0)
        hl_resp_error(&rs, 500, "internal", "the request was parked and never answered");
    return send_resp(c, url, &rs);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_size, void **con_cls)
{
    (void)version;
    struct hl_http *h = cls;
    struct ctx *c = *con_cls;
    if (!c) {
        c = calloc(1, sizeof(*c));
        if (!c)
            return MHD_NO;
        c->rq.conn = conn;
        c->rq.http = h;
        c->rq.url = url;
        c->rq.method = method_of(method);
        c->method = method;
        c->started_us = hl_mono_us();
        hl_buf_init(&c->rq.body, h->api->cfg.max_body);
        *con_cls = c;
        return begin(h, c, url);
    }
    if (*upload_size) {
        enum MHD_Result r = body_part(h, c, upload_data, *upload_size);
        *upload_size = 0;
        return r;
    }
    if (c->failed) {
        struct hl_resp rs = c->err;
        memset(&c->err, 0, sizeof(c->err));
        return send_resp(c, url, &rs);
    }
    return answer(h, c, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    struct hl_http *h = cls;
    (void)conn;
    (void)toe;
    struct ctx *c = *con_cls;
    if (!c)
        return;
    lot_leave(&h->lot, c);
    hl_req_hold(&c->rq, NULL, NULL);
    hl_buf_free(&c->rq.body);
    hl_buf_free(&c->err.body);
    hl_buf_free(&c->err.headers);
    hl_upload_free(c->rq.upload);
    free(c);
    *con_cls = NULL;
}

__attribute__((format(printf, 2, 0))) static void on_mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    hl_debug_va("http", fmt, ap);
}

/* libmicrohttpd's accept policy: a new connection is closed at once, unanswered, once
 * hl_http_quiesce ran. */
static enum MHD_Result on_accept(void *cls, const struct sockaddr *addr, socklen_t len)
{
    struct hl_http *h = cls;
    (void)addr;
    (void)len;
    return atomic_load(&h->refusing) ? MHD_NO : MHD_YES;
}

int hl_http_start(struct hl_api *api, const char *addr, unsigned serves, struct hl_http **out)
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
    h->serves = serves;
    if (hl_throttle_new(FAILURE_BURST, FAILURE_INTERVAL_MS, &h->failures)) {
        free(h);
        return HL_ENOMEM;
    }
    /* The console's signing key: made once in the database, the same on every node. */
    uint8_t fresh[32];
    if ((serves & HL_SERVE_API) && (hl_random(fresh, sizeof(fresh)) ||
                                    hl_store_console_key(api->store, fresh, api->token_key))) {
        hl_error("http: cannot read or make the console's signing key in the database");
        hl_throttle_free(h->failures);
        free(h);
        return HL_ESTORE;
    }
    if (lot_init(&h->lot)) {
        lot_destroy(&h->lot);
        hl_throttle_free(h->failures);
        free(h);
        return HL_ENOMEM;
    }
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG |
                     MHD_USE_ITC | MHD_ALLOW_SUSPEND_RESUME;
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* /metrics alone needs no pool. */
    unsigned threads = serves & HL_SERVE_API ? api->cfg.threads : 1;
    h->d = MHD_start_daemon(
        flags, 0, on_accept, h, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)HL_HTTP_IDLE_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)4096, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, NULL, MHD_OPTION_END);
    if (!h->d) {
        int e = errno; /* libmicrohttpd leaves bind's */
        hl_error("http: cannot listen on %s: %s", addr,
                 e ? strerror(e) : "the server did not start (--log-level debug says why)");
        lot_stop(&h->lot);
        lot_destroy(&h->lot);
        hl_throttle_free(h->failures);
        free(h);
        return e == EADDRINUSE ? HL_ECONFLICT : HL_EIO;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->d, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : 0;
    *out = h;
    return HL_OK;
}

void hl_http_quiesce(struct hl_http *h)
{
    if (h)
        atomic_store(&h->refusing, 1);
}

void hl_http_stop(struct hl_http *h)
{
    if (!h)
        return;
    /* libmicrohttpd must not stop with a connection suspended: every parked request wakes and
     * answers first. */
    lot_stop(&h->lot);
    if (h->d)
        MHD_stop_daemon(h->d);
    lot_destroy(&h->lot);
    hl_throttle_free(h->failures);
    free(h);
}

uint16_t hl_http_port(const struct hl_http *h)
{
    return h->port;
}
