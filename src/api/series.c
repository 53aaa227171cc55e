/* GET /webhooks/{uid}/stats/series (series.h). */
#include "api/series.h"

#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "events/timestamp.h"

#define MIN_MS (60LL * 1000)
#define HOUR_MS (60 * MIN_MS)

static const struct span {
    const char *name;
    int64_t ms;
} WINDOWS[] = {{"1h", HOUR_MS}, {"24h", 24 * HOUR_MS}},
  STEPS[] = {{"1m", MIN_MS}, {"5m", 5 * MIN_MS}, {"1h", HOUR_MS}};

/* The span named by query argument arg (def when absent); NULL when it names none of spans. */
static const struct span *span_of(struct hl_req *rq, const char *arg, const struct span *spans,
                                  size_t n, const struct span *def)
{
    const char *v = hl_req_query(rq, arg);
    if (!v)
        return def;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v, spans[i].name) == 0)
            return &spans[i];
    return NULL;
}

/* A share as JSON: null when there is nothing to share. */
static json_t *rate(int64_t part, int64_t whole)
{
    return whole ? json_real((double)part / (double)whole) : json_null();
}

/* Microseconds as milliseconds with two decimals, or null when there were no attempts. */
static json_t *ms(int64_t us, int64_t attempts)
{
    return attempts ? json_real((double)(us / 10) / 100.0) : json_null();
}

static json_t *bucket_json(int64_t start, const struct hl_series_point *p)
{
    int64_t att = p ? p->attempts : 0, ok = p ? p->successes : 0;
    return json_pack("{s:o,s:I,s:I,s:I,s:o,s:o,s:o}", "start", hl_json_time(start), "attempts",
                     (json_int_t)att, "successes", (json_int_t)ok, "failures",
                     (json_int_t)(att - ok), "successRate", rate(ok, att), "p50Ms",
                     ms(p ? p->p50_us : 0, att), "p95Ms", ms(p ? p->p95_us : 0, att));
}

void hl_webhook_series(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct hl_webhook *w)
{
    const struct span *win = span_of(rq, "window", WINDOWS, 2, &WINDOWS[0]);
    if (!win) {
        hl_resp_error(rs, 422, "invalid_window", "window must be 1h or 24h");
        return;
    }
    const struct span *step =
        span_of(rq, "step", STEPS, 3, win->ms == HOUR_MS ? &STEPS[0] : &STEPS[2]);
    if (!step || step->ms >= win->ms) {
        hl_resp_error(rs, 422, "invalid_step",
                      "step must be 1m, 5m or 1h, and shorter than the "
                      "window");
        return;
    }
    /* Buckets on whole steps, the last one holding now: charts drawn a moment apart agree. */
    int64_t until = (hl_now_ms() / step->ms + 1) * step->ms, since = until - win->ms;
    struct hl_series_point *pts = NULL;
    size_t n = 0;
    int rc = hl_store_webhook_series(api->store, w->id, since, until, step->ms, &pts, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *buckets = json_array();
    int64_t total = 0, ok = 0, nb = win->ms / step->ms;
    size_t k = 0;
    for (int64_t b = 0; b < nb; b++) {
        const struct hl_series_point *p = k < n && pts[k].bucket == b ? &pts[k++] : NULL;
        total += p ? p->attempts : 0;
        ok += p ? p->successes : 0;
        json_array_append_new(buckets, bucket_json(since + b * step->ms, p));
    }
    free(pts);
    hl_resp_json(rs, 200,
                 json_pack("{s:s,s:s,s:s,s:I,s:o,s:o,s:{s:I,s:I,s:I,s:o},s:o}", "webhookUid",
                           w->uid, "window", win->name, "step", step->name, "stepSeconds",
                           (json_int_t)(step->ms / 1000), "since", hl_json_time(since), "until",
                           hl_json_time(until), "totals", "attempts", (json_int_t)total,
                           "successes", (json_int_t)ok, "failures", (json_int_t)(total - ok),
                           "successRate", rate(ok, total), "buckets", buckets));
}
