/* /events: the event log, and publishing events from other services. */
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/deliveries.h"
#include "api/http.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/json.h"
#include "events/envelope.h"

#define IDEM_KEY_MAX 255

static int parse_time_arg(struct hl_req *rq, struct hl_resp *rs, const char *name, int64_t *out)
{
    const char *v = hl_req_query(rq, name);
    *out = 0;
    if (!v)
        return HL_OK;
    if (hl_time_or_date_parse(v, strlen(v), out))
        return hl_resp_error(rs, 422, "invalid_time",
                             "%s must be an ISO 8601 time (2025-01-20T14:30:00Z) or date"
                             " (2025-01-20)",
                             name),
               HL_EINVAL;
    return HL_OK;
}

static void list(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return;
    struct hl_event_filter f = {.type = -1};
    const char *ev = hl_req_query(rq, "event");
    if (ev && (f.type = hl_event_parse(ev, strlen(ev))) < 0) {
        hl_resp_error(rs, 422, "invalid_event",
                      "event must be one of the event names (agent.created, ...)");
        return;
    }
    f.tenant = hl_req_query(rq, "externalTenantId");
    if (parse_time_arg(rq, rs, "since", &f.since) || parse_time_arg(rq, rs, "until", &f.until))
        return;
    struct hl_event *evs = NULL;
    size_t n = 0;
    int rc = hl_store_event_list(api->store, rq->app.id, &f, after, limit, &evs, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, hl_json_parse(evs[i].payload, evs[i].payload_len, NULL, 0));
    int64_t last = n ? evs[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_event_clear(&evs[i]);
    free(evs);
    hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

/* Checks {event, data} of a publish; data must be an object with string uid and
 * externalTenantId. */
static int check_publish(json_t *body, struct hl_resp *rs, int *type)
{
    static const char *const known[] = {"event", "data", NULL};
    if (hl_reject_unknown(body, known, rs))
        return HL_EINVAL;
    json_t *e = json_object_get(body, "event");
    if (!e)
        return hl_resp_error(rs, 422, "event_required", "event is required"), HL_EINVAL;
    *type = json_is_string(e) ? hl_event_parse(json_string_value(e), json_string_length(e)) : -1;
    if (*type < 0 || *type >= HL_EV_RESOURCE_COUNT)
        return hl_resp_error(rs, 422, "event_unknown",
                             "event must be one of the nine events (agent.created, ...)"),
               HL_EINVAL;
    json_t *d = json_object_get(body, "data");
    if (!d)
        return hl_resp_error(rs, 422, "data_required", "data is required"), HL_EINVAL;
    if (!json_is_object(d))
        return hl_resp_error(rs, 422, "data_not_object", "data must be an object"), HL_EINVAL;
    /* The same rule as every other path that takes these fields (validate.h). */
    static const struct hl_text_rule need[] = {{"data.uid", HL_MAX_TENANT},
                                               {"data.externalTenantId", HL_MAX_TENANT}};
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(d, need[i].field + 5);
        if (!v || !json_is_string(v) || json_string_length(v) == 0)
            return hl_resp_error(rs, 422, "data_field_required",
                                 "%s is required: a non-empty string of at most %zu bytes",
                                 need[i].field, need[i].max),
                   HL_EINVAL;
        if (hl_check_text(&need[i], json_string_value(v), json_string_length(v), rs))
            return HL_EINVAL;
    }
    return HL_OK;
}

/* Answers a repeat of an Idempotency-Key with the first answer. */
static void replay(struct hl_resp *rs, struct hl_idem_hit *hit, const uint8_t hash[32])
{
    if (memcmp(hit->request_hash, hash, 32) != 0)
        hl_resp_error(rs, 422, "idempotency_key_reused",
                      "this Idempotency-Key was used with a different request");
    else
        hl_resp_json(rs, hit->status, hl_json_parse(hit->response, strlen(hit->response), NULL, 0));
    free(hit->response);
}

/* A published event kept by its request until the commit is over. */
struct pending {
    struct hl_event ev;
    struct hl_change ch;
    struct hl_idem idem; /* its key is the request's header */
    struct hl_buf answer;
    int64_t now;
};

static void pending_free(void *arg)
{
    struct pending *p = arg;
    hl_event_clear(&p->ev);
    hl_buf_free(&p->answer);
    free(p);
}

static void published(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int rc)
{
    struct pending *p = rq->held;
    struct hl_idem_hit hit;
    if (rc == HL_ECONFLICT && p->idem.key &&
        hl_store_idem_get(api->store, rq->app.id, p->idem.key, p->now - HL_IDEM_WINDOW_MS, &hit) ==
            HL_OK) {
        /* Another request with the same key committed first: answer as it did. */
        replay(rs, &hit, p->idem.request_hash);
    } else if (rc) {
        hl_resp_store_error(rs, rc);
    } else {
        hl_resp_json(rs, 202, hl_json_parse(p->answer.p, p->answer.len, NULL, 0));
    }
}

/* Builds the event of body (hash: the body's) into p with its answer. Sets the error answer on
 * failure. */
static int pending_make(struct hl_req *rq, struct hl_resp *rs, json_t *body, struct pending *p)
{
    int type;
    if (check_publish(body, rs, &type))
        return HL_EINVAL;
    struct hl_buf data;
    hl_buf_init(&data, 2 * HL_MAX_BODY);
    json_t *d = json_object_get(body, "data");
    int rc = hl_json_write(&data, d);
    if (rc) {
        hl_buf_free(&data);
        return hl_resp_error(rs, 422, "data_invalid", "data nests too deeply"), rc;
    }
    const char *tenant = json_string_value(json_object_get(d, "externalTenantId"));
    const char *uid = json_string_value(json_object_get(d, "uid"));
    rc = hl_event_make(rq->app.id, rq->app.uid, type, tenant, uid, data.p, data.len, p->now, 0,
                       &p->ev);
    hl_buf_free(&data);
    if (rc)
        return hl_resp_error(rs, 500, "internal", "could not build the event"), rc;
    p->ch = (struct hl_change){.op = HL_OP_NONE, .ev = &p->ev};
    char iso[HL_ISO_MAX];
    hl_time_iso(p->now, iso);
    json_t *ans = json_pack("{s:s,s:s,s:s}", "eventId", p->ev.uid, "event", hl_event_name(type),
                            "timestamp", iso);
    rc = hl_json_write(&p->answer, ans);
    json_decref(ans);
    if (rc)
        return hl_resp_error(rs, 500, "internal", "could not build the answer"), rc;
    p->idem.status = 202;
    p->idem.response = p->answer.p;
    return HL_OK;
}

/* POST /events: commits the event while the request waits parked; an Idempotency-Key's first
 * answer is replayed to its repeats. */
static void publish(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    const char *key = hl_req_header(rq, "Idempotency-Key");
    if (key && (strlen(key) == 0 || strlen(key) > IDEM_KEY_MAX)) {
        hl_resp_error(rs, 422, "invalid_idempotency_key",
                      "Idempotency-Key must be 1 to %d characters", IDEM_KEY_MAX);
        return;
    }
    uint8_t hash[32];
    SHA256((const unsigned char *)(rq->body.p ? rq->body.p : ""), rq->body.len, hash);
    int64_t now = hl_now_ms();
    struct hl_idem_hit hit;
    if (key) {
        int rc = hl_store_idem_get(api->store, rq->app.id, key, now - HL_IDEM_WINDOW_MS, &hit);
        if (rc == HL_OK) {
            replay(rs, &hit, hash);
            return;
        }
        if (rc != HL_ENOTFOUND) {
            hl_resp_store_error(rs, rc);
            return;
        }
    }
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    struct pending *p = calloc(1, sizeof(*p));
    if (!p) {
        json_decref(body);
        hl_resp_store_error(rs, HL_ENOMEM);
        return;
    }
    hl_req_hold(rq, p, pending_free);
    hl_buf_init(&p->answer, 4096);
    p->now = now;
    p->idem.key = key;
    memcpy(p->idem.request_hash, hash, 32);
    int rc = pending_make(rq, rs, body, p);
    json_decref(body);
    if (rc == HL_OK)
        hl_req_commit(api, rq, rs, &p->ch, 1, key ? &p->idem : NULL, published);
}

/* GET /events/{eventId}: the event as sent, with the deliveries it fanned out to. */
static void get_one(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    char uid[HL_ID_MAX];
    if (hl_req_seg(rq, 1, uid, sizeof(uid))) {
        hl_resp_error(rs, 404, "not_found", "no such event");
        return;
    }
    struct hl_event ev;
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    int rc = hl_store_event_get(api->store, rq->app.id, uid, &ev, &dl, &n);
    if (rc == HL_ENOTFOUND) {
        hl_resp_error(rs, 404, "not_found", "no event %s", uid);
        return;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *o = hl_json_parse(ev.payload, ev.payload_len, NULL, 0);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(arr, hl_delivery_json(&dl[i], NULL, 0));
        hl_delivery_clear(&dl[i]);
    }
    free(dl);
    hl_event_clear(&ev);
    if (o)
        json_object_set_new(o, "deliveries", arr);
    else
        json_decref(arr);
    hl_resp_json(rs, 200, o);
}

void hl_api_events(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (rq->nseg == 1) {
        if (rq->method == HL_GET)
            list(api, rq, rs);
        else if (rq->method == HL_POST)
            publish(api, rq, rs);
        else
            hl_method_not_allowed(rs, "GET, POST");
    } else if (rq->nseg == 2) {
        if (rq->method != HL_GET)
            hl_method_not_allowed(rs, "GET");
        else
            get_one(api, rq, rs);
    }
}
