/* GET /metrics: queue depth, oldest pending age, attempt counters, and what retention keeps
 * (database size, pruned rows, oldest event) as Prometheus text. */
#include "api/metrics.h"

#include <inttypes.h>

#include "api/http.h"
#include "common/clock.h"

void hl_api_metrics(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    (void)rq; /* the router lets only GET through */
    struct hl_queue_stats q = {0};
    struct hl_store_space sp = {0};
    struct hl_pruned pruned;
    int64_t oldest = 0;
    int rc = hl_store_queue_stats(api->store, &q);
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
    double age = q.oldest_pending_at ? (double)(now - q.oldest_pending_at) / 1000.0 : 0.0;
    double event_age = oldest && oldest < now ? (double)(now - oldest) / 1000.0 : 0.0;
    hl_buf_reset(&rs->body);
    hl_buf_printf(&rs->body,
                  "# HELP hookline_queue_depth Deliveries pending (waiting or in flight).\n"
                  "# TYPE hookline_queue_depth gauge\n"
                  "hookline_queue_depth %" PRId64 "\n"
                  "# HELP hookline_oldest_pending_age_seconds Age of the oldest pending delivery.\n"
                  "# TYPE hookline_oldest_pending_age_seconds gauge\n"
                  "hookline_oldest_pending_age_seconds %.3f\n"
                  "# HELP hookline_inflight Attempts in flight on this node.\n"
                  "# TYPE hookline_inflight gauge\n"
                  "hookline_inflight %zu\n"
                  "# HELP hookline_attempts_total Attempts made by this node since it started.\n"
                  "# TYPE hookline_attempts_total counter\n"
                  "hookline_attempts_total{outcome=\"succeeded\"} %" PRIu64 "\n"
                  "hookline_attempts_total{outcome=\"failed\"} %" PRIu64 "\n"
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
                  q.pending, age, d.inflight, d.succeeded, d.failed, sp.bytes, pruned.events,
                  pruned.deliveries, pruned.attempts, event_age);
    rs->status = 200;
    rs->content_type = "text/plain; version=0.0.4";
}
