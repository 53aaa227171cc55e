/* GET /metrics (metrics.h): this process's counters, the database's gauges and what retention
 * keeps (database size, pruned rows, oldest event), as Prometheus text. */
#include "api/metrics.h"

#include <inttypes.h>
#include <string.h>

#include "api/http.h"
#include "common/clock.h"
#include "common/err.h"

/* ---- routes ---- */

/* Every route the servers answer, as openapi/hookline.yaml names its path (tests/e2e checks
 * that the two agree); [0] is what no route takes. The first template a path matches is its
 * route, so a literal segment goes before a {name} in the same place. */
static const char *const ROUTES[] = {
    "unmatched",
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/docs",
    "/docs/reference.js",
    "/docs/reference.css",
    "/console",
    "/console/session", /* before /console/{file}, which would take it */
    "/console/{file}",
    "/console/js/{file}",
    "/console/js/pages/{file}",
    "/api/v1/appuid/{appUid}/webhooks",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/deliveries",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/recover",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/rotate-secret",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/test",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/stats",
    "/api/v1/appuid/{appUid}/webhooks/{webhookUid}/stats/series",
    "/api/v1/appuid/{appUid}/portal",
    /* alerting (issue 21): the same operations for operational webhooks */
    "/api/v1/appuid/{appUid}/operational-webhooks",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}/deliveries",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}/recover",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}/rotate-secret",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}/test",
    "/api/v1/appuid/{appUid}/operational-webhooks/{webhookUid}/stats",
    "/api/v1/appuid/{appUid}/deliveries",
    "/api/v1/appuid/{appUid}/deliveries/{deliveryId}",
    "/api/v1/appuid/{appUid}/deliveries/{deliveryId}/resend",
    "/api/v1/appuid/{appUid}/events",
    "/api/v1/appuid/{appUid}/events/{eventId}",
    "/api/v1/appuid/{appUid}/agents",
    "/api/v1/appuid/{appUid}/agents/{agentUid}",
    "/api/v1/appuid/{appUid}/contexts",
    "/api/v1/appuid/{appUid}/contexts/{contextUid}",
    "/api/v1/appuid/{appUid}/contexts/{contextUid}/files",
    "/api/v1/appuid/{appUid}/contexts/{contextUid}/files/{fileUid}",
    "/api/v1/appuid/{appUid}/contexts/{contextUid}/files/{fileUid}/chunks",
    "/api/v1/appuid/{appUid}/contexts/{contextUid}/files/{fileUid}/content",
};
#define NROUTES (sizeof(ROUTES) / sizeof(ROUTES[0]))
_Static_assert(NROUTES <= HL_ROUTES_MAX, "HL_ROUTES_MAX holds the route table");

/* The next segment of a path from *p (slashes skipped): its start and length, or 0 at the end. */
static size_t next_seg(const char **p, const char **seg)
{
    while (**p == '/')
        (*p)++;
    *seg = *p;
    while (**p && **p != '/')
        (*p)++;
    return (size_t)(*p - *seg);
}

/* Whether path matches template t: equal segments, a "{name}" taking any one segment. */
static int route_matches(const char *t, const char *path)
{
    const char *ts, *ps;
    for (;;) {
        size_t tn = next_seg(&t, &ts), pn = next_seg(&path, &ps);
        if (!tn || !pn)
            return tn == pn;
        if (ts[0] == '{' ? 0 : tn != pn || memcmp(ts, ps, tn) != 0)
            return 0;
    }
}

size_t hl_route_of(const char *path)
{
    for (size_t i = 1; i < NROUTES; i++)
        if (route_matches(ROUTES[i], path))
            return i;
    return 0;
}

const char *hl_route_name(size_t i)
{
    return ROUTES[i < NROUTES ? i : 0];
}

size_t hl_route_count(void)
{
    return NROUTES;
}

/* ---- the HTTP requests' counters ---- */

static const char *const METHODS[HL_METHOD_SLOTS] = {"GET",    "POST", "PATCH",
                                                     "DELETE", "PUT",  "other"};

/* The status codes counted one by one (what the API answers, and their neighbours); any other
 * counts as its class ("4xx"), or "other" outside 100-599. */
static const int CODES[] = {200, 201, 202, 204, 206, 301, 302, 304, 307, 308, 400,
                            401, 403, 404, 405, 406, 408, 409, 410, 411, 413, 414,
                            415, 416, 422, 429, 431, 500, 501, 502, 503, 504};
#define NCODES (sizeof(CODES) / sizeof(CODES[0]))
_Static_assert(NCODES + 6 <= HL_STATUS_SLOTS, "HL_STATUS_SLOTS holds the codes and classes");

static size_t status_slot(int status)
{
    for (size_t i = 0; i < NCODES; i++)
        if (CODES[i] == status)
            return i;
    return status >= 100 && status <= 599 ? NCODES + (size_t)(status / 100 - 1) : NCODES + 5;
}

/* The status label of slot i into buf (cap >= 8). */
static const char *status_label(size_t i, char *buf, size_t cap)
{
    if (i < NCODES)
        snprintf(buf, cap, "%d", CODES[i]);
    else if (i < NCODES + 5)
        snprintf(buf, cap, "%zuxx", i - NCODES + 1);
    else
        snprintf(buf, cap, "other");
    return buf;
}

_Static_assert(HL_GET == 1 && HL_POST == 2 && HL_PATCH == 4 && HL_DELETE == 8 && HL_PUT == 16,
               "METHODS[i] is the enum hl_method of bit i");

static size_t method_slot(unsigned method)
{
    for (size_t i = 0; i + 1 < HL_METHOD_SLOTS; i++)
        if (method == 1u << i)
            return i;
    return HL_METHOD_SLOTS - 1;
}

/* How long an API request takes: microseconds to a few seconds (a test send waits). */
static const int64_t HTTP_LE[] = {250,     500,     1000,     2500,    5000,   10000,
                                  25000,   50000,   100000,   250000,  500000, 1000000,
                                  2500000, 5000000, 10000000, 30000000};
static const struct hl_histo_bounds HTTP_BOUNDS = {HTTP_LE, sizeof(HTTP_LE) / sizeof(HTTP_LE[0])};

void hl_http_metrics_count(struct hl_http_metrics *m, size_t route, unsigned method, int status,
                           int64_t duration_us)
{
    if (route >= NROUTES)
        route = 0;
    atomic_fetch_add_explicit(&m->requests[route][method_slot(method)][status_slot(status)], 1,
                              memory_order_relaxed);
    hl_histo_observe(&m->duration[route], &HTTP_BOUNDS, duration_us);
}

/* ---- the text ---- */

static double age_s(int64_t at, int64_t now)
{
    return at && at < now ? (double)(now - at) / 1000.0 : 0.0;
}

/* The database's gauges: the queue, webhooks and context files by state. */
static void write_store(struct hl_buf *b, const struct hl_store_gauges *g, int64_t now)
{
    static const char *const QS[HL_QS_COUNT] = {"pending", "failing", "paused", "deferred"};
    static const char *const FS[HL_FS_COUNT] = {"waiting", "processing"};
    int64_t depth =
        g->deliveries[HL_QS_PENDING] + g->deliveries[HL_QS_FAILING] + g->deliveries[HL_QS_DEFERRED];
    int64_t oldest = g->oldest_delivery[HL_QS_PENDING];
    if (!oldest ||
        (g->oldest_delivery[HL_QS_FAILING] && g->oldest_delivery[HL_QS_FAILING] < oldest))
        oldest = g->oldest_delivery[HL_QS_FAILING];
    hl_metric_head(b, "hookline_queue_depth", "gauge",
                   "Deliveries to be made (pending and failing, waiting or in flight, and "
                   "deferred).");
    hl_buf_printf(b, "hookline_queue_depth %" PRId64 "\n", depth);
    hl_metric_head(b, "hookline_oldest_pending_age_seconds", "gauge",
                   "Age of the oldest delivery to be made (pending or failing).");
    hl_buf_printf(b, "hookline_oldest_pending_age_seconds %.3f\n", age_s(oldest, now));
    hl_metric_head(b, "hookline_queue_deliveries", "gauge",
                   "Deliveries queued, by state as the API shows them.");
    for (int i = 0; i < HL_QS_COUNT; i++)
        hl_buf_printf(b, "hookline_queue_deliveries{state=\"%s\"} %" PRId64 "\n", QS[i],
                      g->deliveries[i]);
    hl_metric_head(b, "hookline_queue_oldest_age_seconds", "gauge",
                   "Age of the oldest queued delivery, by state (0: none).");
    for (int i = 0; i < HL_QS_DEFERRED; i++) /* deferred: not known without a scan */
        hl_buf_printf(b, "hookline_queue_oldest_age_seconds{state=\"%s\"} %.3f\n", QS[i],
                      age_s(g->oldest_delivery[i], now));
    hl_metric_head(b, "hookline_webhooks", "gauge", "Webhooks by state (deleted ones aside).");
    hl_buf_printf(b,
                  "hookline_webhooks{state=\"active\"} %" PRId64 "\n"
                  "hookline_webhooks{state=\"paused\"} %" PRId64 "\n"
                  "hookline_webhooks{state=\"disabled\"} %" PRId64 "\n"
                  "hookline_webhooks{state=\"breaker_open\"} %" PRId64 "\n",
                  g->webhooks[HL_WS_ACTIVE], g->webhooks[HL_WS_PAUSED], g->webhooks[HL_WS_DISABLED],
                  g->webhooks[HL_WS_BREAKER_OPEN]);
    hl_metric_head(b, "hookline_ingest_files", "gauge",
                   "Context files not yet processed, by state.");
    for (int i = 0; i < HL_FS_COUNT; i++)
        hl_buf_printf(b, "hookline_ingest_files{state=\"%s\"} %" PRId64 "\n", FS[i], g->files[i]);
    hl_metric_head(b, "hookline_ingest_oldest_age_seconds", "gauge",
                   "Age of the oldest context file not yet processed, by state (0: none).");
    for (int i = 0; i < HL_FS_COUNT; i++)
        hl_buf_printf(b, "hookline_ingest_oldest_age_seconds{state=\"%s\"} %.3f\n", FS[i],
                      age_s(g->oldest_file[i], now));
}

/* This node's attempts: by outcome, their duration, and the lag of the successful ones. */
static void write_attempts(struct hl_buf *b, const struct hl_delivery_counters *d)
{
    static const struct hl_attempt_metrics none;
    const struct hl_attempt_metrics *m = d->attempts ? d->attempts : &none;
    hl_metric_head(b, "hookline_inflight", "gauge", "Attempts in flight on this node.");
    hl_buf_printf(b, "hookline_inflight %zu\n", d->inflight);
    hl_metric_head(b, "hookline_attempts_total", "counter",
                   "Attempts made by this node since it started, by outcome.");
    for (int i = 0; i < HL_AC_COUNT; i++)
        hl_buf_printf(b, "hookline_attempts_total{outcome=\"%s\"} %" PRIu64 "\n",
                      hl_attempt_class_names[i],
                      atomic_load_explicit(&m->by_class[i], memory_order_relaxed));
    hl_metric_head(b, "hookline_delivery_attempt_duration_seconds", "histogram",
                   "How long this node's attempts took, connect to the end of the answer.");
    hl_metric_histo(b, "hookline_delivery_attempt_duration_seconds", "", &m->duration,
                    &hl_attempt_duration_bounds);
    hl_metric_head(b, "hookline_delivery_lag_seconds", "histogram",
                   "From a delivery's creation (the commit of its event) to its success, "
                   "for the successes of this node's attempts.");
    hl_metric_histo(b, "hookline_delivery_lag_seconds", "", &m->lag, &hl_delivery_lag_bounds);
}

/* The API's requests since this process started: only the series that have counted one. */
static void write_http(struct hl_buf *b, const struct hl_http_metrics *m)
{
    char status[8];
    hl_metric_head(b, "hookline_http_requests_total", "counter",
                   "Requests answered by this process, by route template, method and status.");
    for (size_t r = 0; r < NROUTES; r++)
        for (size_t me = 0; me < HL_METHOD_SLOTS; me++)
            for (size_t s = 0; s < HL_STATUS_SLOTS; s++) {
                uint64_t n = atomic_load_explicit(&m->requests[r][me][s], memory_order_relaxed);
                if (n)
                    hl_buf_printf(b,
                                  "hookline_http_requests_total{route=\"%s\",method=\"%s\","
                                  "status=\"%s\"} %" PRIu64 "\n",
                                  ROUTES[r], METHODS[me], status_label(s, status, sizeof(status)),
                                  n);
            }
    hl_metric_head(b, "hookline_http_request_duration_seconds", "histogram",
                   "How long answering a request took, by route template.");
    for (size_t r = 0; r < NROUTES; r++) {
        if (!hl_histo_count(&m->duration[r], &HTTP_BOUNDS))
            continue;
        char labels[160];
        snprintf(labels, sizeof(labels), "route=\"%s\"", ROUTES[r]);
        hl_metric_histo(b, "hookline_http_request_duration_seconds", labels, &m->duration[r],
                        &HTTP_BOUNDS);
    }
}

/* What the retention keeps. */
static void write_retention(struct hl_buf *b, const struct hl_store_space *sp,
                            const struct hl_pruned *pruned, double event_age)
{
    hl_buf_printf(b,
                  "# HELP hookline_db_bytes The database on disk (SQLite: the file and its WAL).\n"
                  "# TYPE hookline_db_bytes gauge\n"
                  "hookline_db_bytes %" PRId64 "\n"
                  "# HELP hookline_pruned_total Rows the retention removed on this node since it "
                  "started.\n"
                  "# TYPE hookline_pruned_total counter\n"
                  "hookline_pruned_total{kind=\"events\"} %" PRIu64 "\n"
                  "hookline_pruned_total{kind=\"deliveries\"} %" PRIu64 "\n"
                  "hookline_pruned_total{kind=\"attempts\"} %" PRIu64 "\n"
                  "# HELP hookline_oldest_event_age_seconds Age of the oldest event kept.\n"
                  "# TYPE hookline_oldest_event_age_seconds gauge\n"
                  "hookline_oldest_event_age_seconds %.3f\n",
                  sp->bytes, pruned->events, pruned->deliveries, pruned->attempts, event_age);
}

void hl_api_metrics(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    (void)rq; /* the router lets only GET through */
    struct hl_store_gauges g;
    struct hl_store_space sp = {0};
    struct hl_pruned pruned;
    int64_t oldest = 0;
    int rc = hl_store_gauges(api->store, &g);
    if (rc == HL_OK)
        rc = hl_store_space(api->store, &sp);
    if (rc == HL_OK)
        rc = hl_store_oldest_event(api->store, &oldest);
    hl_store_pruned(api->store, &pruned);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    struct hl_delivery_counters d = {0};
    if (api->hooks.delivery_counters)
        api->hooks.delivery_counters(api->hooks.delivery_counters_arg, &d);
    int64_t now = hl_now_ms();
    hl_buf_reset(&rs->body);
    write_store(&rs->body, &g, now);
    write_attempts(&rs->body, &d);
    write_http(&rs->body, &api->http_metrics);
    write_retention(&rs->body, &sp, &pruned, age_s(oldest, now));
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4";
}
