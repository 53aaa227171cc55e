/* Operating deliveries: attempt logs, resend, recover, test events, secret rotation. */
#include "api/deliveries.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api/validate.h"
#include "common/clock.h"
#include "common/encode.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/json.h"
#include "events/envelope.h"
#include "events/timestamp.h"

#define DEFAULT_OVERLAP_S (24 * 3600)
#define MAX_OVERLAP_S (30LL * 24 * 3600)

static const char *const STATUS_NAMES[] = {"pending", "succeeded", "failed", "cancelled", "paused"};

static json_t *delivery_id_json(int64_t id)
{
    char s[32];
    snprintf(s, sizeof(s), "dlv_%" PRId64, id);
    return json_string(s);
}

/* Parses "dlv_<digits>". */
static int parse_delivery_id(struct hl_req *rq, int seg, int64_t *id)
{
    char s[HL_ID_MAX];
    if (hl_req_seg(rq, seg, s, sizeof(s)) || strncmp(s, "dlv_", 4) != 0 || !s[4])
        return HL_EINVAL;
    char *end;
    errno = 0;
    long long v = strtoll(s + 4, &end, 10);
    if (*end || errno || v < 1)
        return HL_EINVAL;
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
        o, "status", json_string(d->status <= HL_DS_PAUSED ? STATUS_NAMES[d->status] : "unknown"));
    json_object_set_new(o, "attempts", json_integer(d->attempts));
    json_object_set_new(o, "lastStatusCode",
                        d->attempts && d->last_status ? json_integer(d->last_status) : json_null());
    json_object_set_new(o, "lastError", d->last_error ? json_string(d->last_error) : json_null());
    json_object_set_new(o, "nextAttemptAt",
                        hl_json_time(d->status == HL_DS_PENDING ? d->next_attempt_at : 0));
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

static int delivery_error(struct hl_resp *rs, int rc)
{
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 404, "not_found", "no such delivery");
    return hl_resp_store_error(rs, rc);
}

static int list_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                           const struct hl_webhook *w)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return 0;
    struct hl_delivery_filter f = {.status = -1, .type = -1};
    const char *v = hl_req_query(rq, "status");
    if (v) {
        for (int i = 0; i <= HL_DS_PAUSED; i++)
            if (strcmp(v, STATUS_NAMES[i]) == 0)
                f.status = i;
        if (f.status < 0)
            return hl_resp_error(rs, 422, "invalid_status",
                                 "status must be pending, succeeded, failed, cancelled or paused");
    }
    if ((v = hl_req_query(rq, "event"))) {
        f.type = hl_event_parse(v, strlen(v));
        if (f.type < 0)
            return hl_resp_error(rs, 422, "invalid_event", "event must be an event name");
    }
    static const char *const times[] = {"since", "until"};
    for (int i = 0; i < 2; i++) {
        if ((v = hl_req_query(rq, times[i])) &&
            hl_time_parse(v, strlen(v), i == 0 ? &f.since : &f.until))
            return hl_resp_error(rs, 422, "invalid_time", "%s must be an ISO 8601 time", times[i]);
    }
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_list(api->store, rq->app.id, w->id, &f, after, limit, &dl, &n);
    if (rc)
        return hl_resp_store_error(rs, rc);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, hl_delivery_json(&dl[i], NULL, 0));
    int64_t last = n ? dl[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    return hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

static int answer_delivery(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int64_t id,
                           int status)
{
    struct hl_delivery d;
    struct hl_attempt_rec *att = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_get(api->store, rq->app.id, id, &d, &att, &n);
    if (rc)
        return delivery_error(rs, rc);
    hl_resp_json(rs, status, hl_delivery_json(&d, att, n));
    hl_delivery_clear(&d);
    hl_attempts_free(att, n);
    return 0;
}

static int read_window(json_t *body, struct hl_resp *rs, int64_t *since, int64_t *until)
{
    static const char *const known[] = {"since", "until", NULL};
    if (hl_reject_unknown(body, known, rs))
        return HL_EINVAL;
    const char *names[] = {"since", "until"};
    int64_t *outs[] = {since, until};
    *until = 0;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(body, names[i]);
        if (!v && i == 0)
            return hl_resp_error(rs, 422, "since_required", "since is required: an ISO 8601 time"),
                   HL_EINVAL;
        if (v && (!json_is_string(v) ||
                  hl_time_parse(json_string_value(v), json_string_length(v), outs[i])))
            return hl_resp_error(rs, 422, "invalid_time", "%s must be an ISO 8601 time", names[i]),
                   HL_EINVAL;
    }
    if (*until && *until <= *since)
        return hl_resp_error(rs, 422, "invalid_window", "until must be later than since"),
               HL_EINVAL;
    return HL_OK;
}

static int recover(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                   const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return 0;
    int64_t since, until, queued = 0;
    if (read_window(body, rs, &since, &until) == HL_OK) {
        int rc = hl_store_recover(api->store, w->id, since, until, hl_now_ms(), &queued);
        if (rc)
            hl_resp_store_error(rs, rc);
        else
            hl_resp_json(rs, 202, json_pack("{s:I}", "queued", (json_int_t)queued));
    }
    json_decref(body);
    return 0;
}

static int rotate(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                  const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 1);
    if (!body)
        return 0;
    static const char *const known[] = {"overlapSeconds", NULL};
    if (hl_reject_unknown(body, known, rs))
        goto out;
    int64_t overlap = DEFAULT_OVERLAP_S;
    json_t *v = json_object_get(body, "overlapSeconds");
    if (v) {
        if (!json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > MAX_OVERLAP_S) {
            hl_resp_error(rs, 422, "invalid_overlap",
                          "overlapSeconds must be an integer from 0 to %lld", MAX_OVERLAP_S);
            goto out;
        }
        overlap = json_integer_value(v);
    }
    char secret[HL_SECRET_SIZE];
    if (hl_secret_new(secret, sizeof(secret))) {
        hl_resp_error(rs, 500, "internal", "no randomness available");
        goto out;
    }
    int64_t now = hl_now_ms();
    int64_t until = overlap ? now + overlap * 1000 : 0;
    int rc = hl_store_rotate_secret(api->store, rq->app.id, w->uid, secret, until, now);
    if (rc == HL_ENOTFOUND) {
        hl_resp_error(rs, 404, "not_found", "no webhook %s", w->uid);
        goto out;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        goto out;
    }
    hl_resp_json(rs, 200,
                 json_pack("{s:s,s:s,s:o}", "uid", w->uid, "secret", secret,
                           "previousSecretExpiresAt", hl_json_time(until)));
out:
    json_decref(body);
    return 0;
}

static int send_test(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                     const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 1);
    if (!body)
        return 0;
    static const char *const none[] = {NULL};
    if (hl_reject_unknown(body, none, rs))
        goto out_body;
    if (!w->active) {
        hl_resp_error(rs, 409, "webhook_inactive",
                      "webhook %s is not active; enable it (PATCH active: true) to test it",
                      w->uid);
        goto out_body;
    }
    int64_t now = hl_now_ms();
    json_t *data = json_pack("{s:s,s:n,s:s,s:s}", "uid", w->uid, "externalTenantId", "url", w->url,
                             "message", "This is a test event from hookline.");
    struct hl_buf text;
    hl_buf_init(&text, 1 << 16);
    struct hl_event ev = {0};
    int rc = hl_json_write(&text, data);
    json_decref(data);
    if (rc == HL_OK)
        rc = hl_event_make(rq->app.id, rq->app.uid, HL_EV_WEBHOOK_TEST, "", w->uid, text.p,
                           text.len, now, 0, &ev);
    hl_buf_free(&text);
    if (rc) {
        hl_resp_error(rs, 500, "internal", "could not build the test event");
        goto out_body;
    }
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &ev, .only_webhook = w->id};
    rc = hl_store_commit(api->store, &ch, 1, NULL, NULL);
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    struct hl_event got = {0};
    if (rc == HL_OK)
        rc = hl_store_event_get(api->store, rq->app.id, ev.uid, &got, &dl, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        goto out;
    }
    int64_t id = n ? dl[0].id : 0;
    /* Wait for the attempt's outcome, bounded by the attempt timeout. */
    int64_t deadline = hl_mono_ms() + api->cfg.test_wait_ms;
    struct hl_delivery d = {0};
    while (id) {
        rc = hl_store_delivery_get(api->store, rq->app.id, id, &d, NULL, NULL);
        int done = rc != HL_OK || d.attempts > 0 || d.status != HL_DS_PENDING;
        hl_delivery_clear(&d);
        if (done || hl_mono_ms() > deadline)
            break;
        usleep(5000);
    }
    if (!id)
        hl_resp_error(rs, 500, "internal", "the test event made no delivery");
    else
        answer_delivery(api, rq, rs, id, 200);
out:
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    hl_event_clear(&got);
    hl_event_clear(&ev);
out_body:
    json_decref(body);
    return 0;
}

static int stats(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                 const struct hl_webhook *w)
{
    (void)rq;
    struct hl_webhook_stats st;
    int rc = hl_store_webhook_stats(api->store, w->id, &st);
    if (rc)
        return hl_resp_store_error(rs, rc);
    return hl_resp_json(rs, 200,
                        json_pack("{s:s,s:I,s:I,s:I,s:o,s:o,s:o}", "uid", w->uid, "pending",
                                  (json_int_t)st.pending, "succeeded", (json_int_t)st.succeeded,
                                  "failed", (json_int_t)st.failed, "lastTriggeredAt",
                                  hl_json_time(w->last_triggered_at), "lastSuccessAt",
                                  hl_json_time(w->last_success_at), "lastFailureAt",
                                  hl_json_time(w->last_failure_at)));
}

int hl_api_webhook_ops(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct hl_webhook *w)
{
    if (rq->nseg != 3)
        return 0;
    struct hl_str op = rq->seg[2];
    static const struct {
        const char *name;
        enum hl_method method;
        int (*fn)(struct hl_api *, struct hl_req *, struct hl_resp *, const struct hl_webhook *);
    } OPS[] = {
        {"deliveries", HL_GET, list_deliveries},
        {"recover", HL_POST, recover},
        {"rotate-secret", HL_POST, rotate},
        {"test", HL_POST, send_test},
        {"stats", HL_GET, stats},
    };
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        if (!hl_str_eqc(op, OPS[i].name))
            continue;
        if (rq->method != OPS[i].method)
            return hl_method_not_allowed(rs, OPS[i].method == HL_GET ? "GET" : "POST");
        return OPS[i].fn(api, rq, rs, w);
    }
    return 0;
}

int hl_api_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    int64_t id;
    if (rq->nseg < 2 || rq->nseg > 3)
        return 0;
    if (parse_delivery_id(rq, 1, &id))
        return hl_resp_error(rs, 404, "not_found", "no such delivery");
    if (rq->nseg == 2) {
        if (rq->method != HL_GET)
            return hl_method_not_allowed(rs, "GET");
        return answer_delivery(api, rq, rs, id, 200);
    }
    if (!hl_str_eqc(rq->seg[2], "resend"))
        return 0;
    if (rq->method != HL_POST)
        return hl_method_not_allowed(rs, "POST");
    int rc = hl_store_delivery_resend(api->store, rq->app.id, id, hl_now_ms());
    if (rc == HL_ECONFLICT)
        return hl_resp_error(rs, 409, "attempt_in_flight",
                             "an attempt of this delivery is in flight; try again shortly");
    if (rc)
        return delivery_error(rs, rc);
    return answer_delivery(api, rq, rs, id, 202);
}
