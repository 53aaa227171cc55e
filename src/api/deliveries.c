/* /deliveries, /deliveries/{id} and /deliveries/{id}/resend: the app's deliveries, one with its
 * attempt log, and replay. */
#include "api/deliveries.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "common/clock.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/ids.h"
#include "events/timestamp.h"

/* By enum hl_delivery_status. */
static const char *const STATUS_NAMES[] = {"pending",   "succeeded", "failed",
                                           "cancelled", "paused",    "failing"};
#define NSTATUS (sizeof(STATUS_NAMES) / sizeof(STATUS_NAMES[0]))

static json_t *delivery_id_json(int64_t id)
{
    char s[HL_ID_MAX];
    hl_delivery_uid(id, s);
    return json_string(s);
}

/* The rule a delivery id follows, as a refusal states it. */
#define ID_RULE                                                                                    \
    "a delivery id is dlv_ followed by a positive decimal number with no sign, leading zero or "   \
    "space, at most 19 digits (e.g. dlv_42)"

int hl_delivery_id_parse(const char *s, size_t len, int64_t *id)
{
    static const char prefix[] = "dlv_";
    size_t p = sizeof(prefix) - 1;
    if (len <= p || len > p + 19 || memcmp(s, prefix, p) != 0 || s[p] < '1' || s[p] > '9')
        return HL_EINVAL;
    int64_t v = 0;
    for (size_t i = p; i < len; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (INT64_MAX - (s[i] - '0')) / 10)
            return HL_EINVAL;
        v = v * 10 + (s[i] - '0');
    }
    *id = v;
    return HL_OK;
}

/* Text for JSON: a string when the bytes are UTF-8, else base64 (and says so). */
static void put_bytes(json_t *o, const char *key, const char *p, size_t len)
{
    json_t *s = p ? json_stringn(p, len) : json_null();
    if (!s) {
        char *b = malloc(HL_B64_LEN(len) + 1);
        if (b) {
            hl_b64_encode((const uint8_t *)p, len, b, 0);
            s = json_string(b);
            free(b);
            char enc[64];
            snprintf(enc, sizeof(enc), "%sEncoding", key);
            json_object_set_new(o, enc, json_string("base64"));
        } else {
            s = json_null();
        }
    }
    json_object_set_new(o, key, s);
}

json_t *hl_delivery_json(const struct hl_delivery *d, const struct hl_attempt_rec *att, size_t n)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", delivery_id_json(d->id));
    json_object_set_new(o, "webhookUid", json_string(d->webhook_uid));
    json_object_set_new(o, "eventId", json_string(d->event_uid));
    json_object_set_new(o, "event", json_string(hl_event_name(d->event_type)));
    json_object_set_new(
        o, "status",
        json_string((unsigned)d->status < NSTATUS ? STATUS_NAMES[d->status] : "unknown"));
    json_object_set_new(o, "attempts", json_integer(d->attempts));
    json_object_set_new(o, "lastStatusCode",
                        d->attempts && d->last_status ? json_integer(d->last_status) : json_null());
    json_object_set_new(o, "lastError", d->last_error ? json_string(d->last_error) : json_null());
    /* While it waits, its next attempt is never in the past: a due one held back (an open
     * breaker, a resend moved to its webhook's front) goes at the earliest now. */
    int waiting = d->status == HL_DS_PENDING || d->status == HL_DS_FAILING;
    int64_t now = waiting ? hl_now_ms() : 0;
    int64_t next = d->next_attempt_at > now ? d->next_attempt_at : now;
    json_object_set_new(o, "nextAttemptAt", hl_json_time(waiting ? next : 0));
    json_object_set_new(o, "createdAt", hl_json_time(d->created_at));
    json_object_set_new(o, "deliveredAt", hl_json_time(d->delivered_at));
    if (att) {
        json_t *arr = json_array();
        for (size_t i = 0; i < n; i++) {
            json_t *a = json_object();
            json_object_set_new(a, "startedAt", hl_json_time(att[i].started_at));
            json_object_set_new(a, "durationMs",
                                json_real((double)(att[i].duration_us / 10) / 100.0));
            json_object_set_new(a, "statusCode",
                                att[i].status_code ? json_integer(att[i].status_code)
                                                   : json_null());
            json_object_set_new(a, "error", att[i].error ? json_string(att[i].error) : json_null());
            put_bytes(a, "response", att[i].response, att[i].response_len);
            json_array_append_new(arr, a);
        }
        json_object_set_new(o, "attemptLog", arr);
    }
    return o;
}

int hl_delivery_status_parse(const char *name)
{
    for (size_t i = 0; i < NSTATUS; i++)
        if (strcmp(name, STATUS_NAMES[i]) == 0)
            return (int)i;
    return -1;
}

void hl_delivery_answer(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int64_t id,
                        int status)
{
    struct hl_delivery d;
    struct hl_attempt_rec *att = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_get(api->store, rq->app.id, id, &d, &att, &n);
    if (rc == HL_ENOTFOUND) {
        hl_resp_error(rs, 404, "not_found", "no such delivery");
        return;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    /* The log is always there, empty before the first attempt. */
    static const struct hl_attempt_rec no_attempts[1];
    hl_resp_json(rs, status, hl_delivery_json(&d, att ? att : no_attempts, n));
    hl_delivery_clear(&d);
    hl_attempts_free(att, n);
}

void hl_delivery_list_answer(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                             int64_t webhook_id)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return;
    struct hl_delivery_filter f = {.status = -1, .type = -1};
    const char *v = hl_req_query(rq, "status");
    if (v && (f.status = hl_delivery_status_parse(v)) < 0) {
        hl_resp_error(rs, 422, "invalid_status",
                      "status must be pending, failing, succeeded, failed, cancelled or paused");
        return;
    }
    if ((v = hl_req_query(rq, "event")) && (f.type = hl_event_parse(v, strlen(v))) < 0 &&
        (f.type = hl_op_event_parse(v, strlen(v))) < 0) {
        hl_resp_error(rs, 422, "invalid_event", "event must be an event name");
        return;
    }
    static const char *const times[] = {"since", "until"};
    for (int i = 0; i < 2; i++) {
        if ((v = hl_req_query(rq, times[i])) &&
            hl_time_or_date_parse(v, strlen(v), i == 0 ? &f.since : &f.until)) {
            hl_resp_error(rs, 422, "invalid_time",
                          "%s must be an ISO 8601 time (2026-11-27T07:00:00Z) or date (2026-11-27)",
                          times[i]);
            return;
        }
    }
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_list(api->store, rq->app.id, webhook_id, &f, after, limit, &dl, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, hl_delivery_json(&dl[i], NULL, 0));
    int64_t last = n ? dl[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

/* POST /deliveries/{id}/resend: queued again now, answered with its state. */
static void resend(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int64_t id)
{
    int rc = hl_store_delivery_resend(api->store, rq->app.id, id, hl_now_ms());
    if (rc == HL_ECONFLICT)
        hl_resp_error(rs, 409, "attempt_in_flight",
                      "an attempt of this delivery is in flight; try again shortly");
    else if (rc == HL_ENOTFOUND)
        hl_resp_error(rs, 404, "not_found", "no such delivery");
    else if (rc == HL_EREFUSED)
        hl_resp_error(rs, 409, "webhook_deleted",
                      "the webhook of this delivery was deleted: its deliveries can be read, not"
                      " sent again");
    else if (rc)
        hl_resp_store_error(rs, rc);
    else
        hl_delivery_answer(api, rq, rs, id, 202);
}

void hl_api_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    int64_t id;
    if (rq->nseg == 1) {
        /* GET /deliveries: the app's deliveries, every webhook's */
        if (rq->method != HL_GET)
            hl_method_not_allowed(rs, "GET");
        else
            hl_delivery_list_answer(api, rq, rs, 0);
        return;
    }
    if (rq->nseg > 3)
        return;
    if (hl_delivery_id_parse(rq->seg[1].p, rq->seg[1].len, &id)) {
        hl_resp_error(rs, 404, "not_found", "no such delivery: " ID_RULE);
        return;
    }
    if (rq->nseg == 2) {
        if (rq->method != HL_GET)
            hl_method_not_allowed(rs, "GET");
        else
            hl_delivery_answer(api, rq, rs, id, 200);
        return;
    }
    if (!hl_str_eqc(rq->seg[2], "resend"))
        return;
    if (rq->method != HL_POST)
        hl_method_not_allowed(rs, "POST");
    else
        resend(api, rq, rs, id);
}
