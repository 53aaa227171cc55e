/* GET /metrics: the Prometheus text operators scrape, and the HTTP request counters behind it.
 *
 * Two kinds of figures, each cheap where it is paid for:
 * - Counters of this process, in memory (common/metric.h: relaxed atomics, no lock): the
 *   dispatcher's attempts by outcome with their duration and lag, which reach the API through
 *   the delivery_counters hook (struct hl_api_hooks) that main wires in; and the HTTP requests
 *   by route template, method and status with their duration (struct hl_http_metrics, counted
 *   by http.c as each answer goes out).
 * - Gauges of the database, read at scrape time from indexes that hold only what they count
 *   (hl_store_gauges): the queue and the context files by state, webhooks by state.
 *
 * No label takes a value a client or an app chooses: routes are templates from a fixed table
 * (anything else is "unmatched"), statuses come from a fixed list, outcomes and states are enums.
 */
#ifndef HL_METRICS_H
#define HL_METRICS_H

#include <stddef.h>
#include <stdint.h>

#include "common/metric.h"

/* This node's dispatcher figures, as /metrics shows them. */
struct hl_delivery_counters {
    const struct hl_attempt_metrics *attempts; /* NULL: no dispatcher (all zero) */
    size_t inflight;                           /* attempts in flight now */
};

/* Room for the route table (metrics.c), method slots (GET, POST, PATCH, DELETE, PUT, other) and
 * status slots (the listed codes, then one per class, then "other"). */
#define HL_ROUTES_MAX 48
#define HL_METHOD_SLOTS 6
#define HL_STATUS_SLOTS 40

/* The API's requests since the process started; zeroed memory is a fresh set. */
struct hl_http_metrics {
    _Atomic uint64_t requests[HL_ROUTES_MAX][HL_METHOD_SLOTS][HL_STATUS_SLOTS];
    struct hl_histo duration[HL_ROUTES_MAX];
};

/* The route a path (without its query) is answered by: the index of its template in the route
 * table ("/api/v1/appuid/{appUid}/webhooks/{webhookUid}"), or 0, "unmatched", when no route
 * takes it. */
size_t hl_route_of(const char *path);
/* The template of route i (hl_route_of); "unmatched" for 0 or an index past the table. */
const char *hl_route_name(size_t i);
/* How many routes the table holds, "unmatched" included. */
size_t hl_route_count(void);

/* Counts one answered request: route (hl_route_of), method (an enum hl_method bit from
 * api/http.h, 0 when unknown), status and how long it took. Any thread; no lock. */
void hl_http_metrics_count(struct hl_http_metrics *m, size_t route, unsigned method, int status,
                           int64_t duration_us);

#endif
