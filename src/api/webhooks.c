/* /webhooks and everything under it: register, list, read, change and delete the endpoints that
 * receive events; and, per webhook, its deliveries, recover, rotate-secret, test and stats. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/deliveries.h"
#include "api/http.h"
#include "api/policy.h"
#include "api/series.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/json.h"
#include "delivery/target.h"
#include "events/envelope.h"
#include "events/timestamp.h"

#define DESCRIPTION_MAX 1024
#define DEFAULT_OVERLAP_S (24 * 3600)
#define MAX_OVERLAP_S (30LL * 24 * 3600)

/* ---- operational webhooks and silence alerts (issue 21) ----
 * /operational-webhooks is /webhooks for webhooks of kind HL_WK_OPERATIONAL: the same handlers,
 * store calls and rules, with `events` (operational event names) in place of entities and
 * eventTypes. Each family sees its own kind only. */

#define MAX_SILENCE_S (30LL * 24 * 3600)
#define DEFAULT_SILENCE_FLOOR_MS (60LL * 1000)

/* The kind of webhook the request's family serves. */
static int kind_of(const struct hl_req *rq)
{
    return hl_str_eqc(rq->seg[0], "operational-webhooks") ? HL_WK_OPERATIONAL : HL_WK_ORDINARY;
}

/* The operational event names of a mask. */
static json_t *op_events_json(unsigned mask)
{
    json_t *a = json_array();
    for (int t = HL_OPEV_FIRST; t < HL_OPEV_END; t++)
        if (mask & (1u << t))
            json_array_append_new(a, json_string(hl_event_name(t)));
    return a;
}

/* The fields of a webhook's kind in its JSON (after url and secret). */
static void kind_json(json_t *o, const struct hl_webhook *w)
{
    if (w->kind == HL_WK_OPERATIONAL) {
        json_object_set_new(o, "events", op_events_json(w->event_types));
        return;
    }
    json_object_set_new(o, "silenceAlertSeconds",
                        w->silence_ms ? json_integer(w->silence_ms / 1000) : json_null());
    json_object_set_new(o, "expectEvents", json_boolean(w->expect_events));
    hl_policy_json(o, w); /* filter, headers (issue 19) */
    /* The circuit breaker (delivery/retry.h, hl_breaker_outcome) */
    json_object_set_new(o, "breaker", json_string(w->breaker_opened_at ? "open" : "closed"));
    json_object_set_new(o, "breakerOpenedAt", hl_json_time(w->breaker_opened_at));
    /* owed to it and not yet made deliveries (store.h, hl_store_defer_step) */
    json_object_set_new(o, "deferred", json_integer(w->deferred));
    /* Delivery policy (issue 19) */
    json_object_set_new(o, "rateLimit", w->rate_limit ? json_integer(w->rate_limit) : json_null());
    json_object_set_new(o, "ordering",
                        json_string(w->ordering == HL_ORDER_RESOURCE ? "resource" : "none"));
}

/* Reads `events` of an operational webhook: a non-empty list of operational event names. */
static int read_op_events(json_t *v, unsigned *mask, struct hl_resp *rs)
{
    *mask = 0;
    size_t i;
    json_t *e;
    if (!json_is_array(v) || json_array_size(v) == 0)
        goto bad;
    json_array_foreach(v, i, e)
    {
        int t =
            json_is_string(e) ? hl_op_event_parse(json_string_value(e), json_string_length(e)) : -1;
        if (t < 0)
            goto bad;
        *mask |= 1u << t;
    }
    return HL_OK;
bad:
    hl_resp_error(rs, 422, "invalid_events",
                  "events must be a non-empty list of \"endpoint.failing\", "
                  "\"endpoint.recovered\", \"endpoint.disabled\", \"endpoint.silent\", "
                  "\"delivery.exhausted\"");
    return HL_EINVAL;
}

/* Reads an ordinary webhook's silenceAlertSeconds and expectEvents. */
static int read_silence(struct hl_api *api, json_t *body, struct hl_webhook_patch *p,
                        struct hl_resp *rs)
{
    int64_t floor_ms =
        api->cfg.silence_floor_ms ? api->cfg.silence_floor_ms : DEFAULT_SILENCE_FLOOR_MS;
    int64_t min_s = floor_ms < 1000 ? 1 : floor_ms / 1000;
    json_t *v;
    if ((v = json_object_get(body, "silenceAlertSeconds"))) {
        if (!json_is_null(v) && (!json_is_integer(v) || json_integer_value(v) < min_s ||
                                 json_integer_value(v) > MAX_SILENCE_S)) {
            hl_resp_error(rs, 422, "invalid_silence",
                          "silenceAlertSeconds must be an integer from %lld to %lld (30 days), "
                          "or null for no silence alert",
                          (long long)min_s, MAX_SILENCE_S);
            return HL_EINVAL;
        }
        p->silence_ms = json_is_null(v) ? 0 : (int64_t)json_integer_value(v) * 1000;
        p->set |= HL_WP_SILENCE;
    }
    if ((v = json_object_get(body, "expectEvents"))) {
        if (!json_is_boolean(v)) {
            hl_resp_error(rs, 422, "expect_events_not_boolean",
                          "expectEvents must be true or false");
            return HL_EINVAL;
        }
        p->expect_events = json_is_true(v);
        p->set |= HL_WP_EXPECT_EVENTS;
    }
    return HL_OK;
}

static json_t *mask_list(unsigned mask, int events)
{
    json_t *a = json_array();
    if (events) {
        for (int t = 0; t < HL_EV_RESOURCE_COUNT; t++)
            if (mask & (1u << t))
                json_array_append_new(a, json_string(hl_event_name(t)));
    } else {
        for (unsigned e = 1; e <= HL_ENT_CONTEXTFILE; e <<= 1)
            if (mask & e)
                json_array_append_new(a, json_string(hl_entity_name(e)));
    }
    return a;
}

/* What a read-only console session sees instead of a static header's value. */
#define HIDDEN_VALUE "(hidden)"

/* The webhook as the API shows it; the secret only when show_secret (on create). */
static json_t *webhook_json(const struct hl_webhook *w, int show_secret)
{
    json_t *o = json_object();
    json_object_set_new(o, "uid", json_string(w->uid));
    json_object_set_new(o, "url", json_string(w->url));
    if (show_secret)
        json_object_set_new(o, "secret", json_string(w->secret));
    if (w->kind == HL_WK_ORDINARY)
        json_object_set_new(o, "entities", mask_list(w->entities, 0));
    json_object_set_new(o, "active", json_boolean(w->active));
    json_object_set_new(o, "createdAt", hl_json_time(w->created_at));
    json_object_set_new(o, "updatedAt", hl_json_time(w->updated_at));
    json_object_set_new(o, "lastTriggeredAt", hl_json_time(w->last_triggered_at));
    json_object_set_new(o, "lastSuccessAt", hl_json_time(w->last_success_at));
    json_object_set_new(o, "lastFailureAt", hl_json_time(w->last_failure_at));
    json_object_set_new(o, "description",
                        w->description ? json_string(w->description) : json_null());
    if (w->kind == HL_WK_ORDINARY)
        json_object_set_new(o, "eventTypes",
                            w->event_types ? mask_list(w->event_types, 1) : json_null());
    json_object_set_new(o, "disabledAt", hl_json_time(w->disabled_at));
    json_object_set_new(o, "disabledReason",
                        w->disabled_reason ? json_string(w->disabled_reason) : json_null());
    kind_json(o, w);
    return o;
}

/* The webhook as rq may see it, the secret too when show_secret (on create); every webhook
 * answer goes through here. A read-only console session (a portal link handed to a customer,
 * say) gets the names of the static headers but not their values, which may carry a token for
 * the receiver. */
static json_t *webhook_answer(const struct hl_req *rq, const struct hl_webhook *w, int show_secret)
{
    json_t *o = webhook_json(w, show_secret);
    json_t *headers = json_object_get(o, "headers");
    const char *name;
    json_t *v;
    if (rq->auth.session && rq->auth.read_only && json_is_object(headers))
        json_object_foreach(headers, name, v)
        {
            if (json_object_set_new(headers, name, json_string(HIDDEN_VALUE))) {
                json_object_clear(headers); /* out of memory: no value rather than the real one */
                break;
            }
        }
    return o;
}

/* Reads and checks rateLimit and ordering (issue 19) into p. Sets a 422 answer and returns
 * HL_EINVAL on a bad one. */
static int read_pacing(json_t *body, struct hl_webhook_patch *p, struct hl_resp *rs)
{
    json_t *v = json_object_get(body, "rateLimit");
    if (v) {
        json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
        if (!json_is_null(v) && (n < HL_RATE_LIMIT_MIN || n > HL_RATE_LIMIT_MAX)) {
            hl_resp_error(rs, 422, "rate_limit_invalid",
                          "rateLimit must be a whole number of deliveries a second from %d to "
                          "%d, or null for no limit",
                          HL_RATE_LIMIT_MIN, HL_RATE_LIMIT_MAX);
            return HL_EINVAL;
        }
        p->rate_limit = (int)n;
        p->set |= HL_WP_RATE_LIMIT;
    }
    if ((v = json_object_get(body, "ordering"))) {
        const char *s = json_is_string(v) && strlen(json_string_value(v)) == json_string_length(v)
                            ? json_string_value(v)
                            : "";
        if (strcmp(s, "none") != 0 && strcmp(s, "resource") != 0) {
            hl_resp_error(rs, 422, "ordering_invalid",
                          "ordering must be \"none\" or \"resource\" (one delivery at a time "
                          "per resource, in commit order)");
            return HL_EINVAL;
        }
        p->ordering = strcmp(s, "resource") == 0 ? HL_ORDER_RESOURCE : HL_ORDER_NONE;
        p->set |= HL_WP_ORDERING;
    }
    return HL_OK;
}

/* Reads and checks the fields of a create (creating=1) or a PATCH. cur is the webhook a PATCH
 * changes (its entities bound eventTypes). keep owns the text of the policy fields p points at.
 * Sets a 422 answer and returns HL_EINVAL on a bad field. */
static int read_fields(struct hl_api *api, json_t *body, int kind, int creating,
                       const struct hl_webhook *cur, struct hl_webhook_patch *p,
                       struct hl_policy_text *keep, struct hl_resp *rs)
{
    static const char *const known[] = {
        "url",          "entities",  "active",   "description",
        "eventTypes",   "filter",    "headers",  "silenceAlertSeconds",
        "expectEvents", "rateLimit", "ordering", NULL};
    static const char *const known_op[] = {"url", "events", "active", "description", NULL};
    if (hl_reject_unknown(body, kind == HL_WK_OPERATIONAL ? known_op : known, rs))
        return HL_EINVAL;
    memset(p, 0, sizeof(*p));
    json_t *v;
    if ((v = json_object_get(body, "url"))) {
        if (!json_is_string(v)) {
            hl_resp_error(rs, 422, "url_not_string", "url must be a string");
            return HL_EINVAL;
        }
        const char *code, *msg;
        if (hl_url_check(json_string_value(v), json_string_length(v), api->cfg.production, &code,
                         &msg)) {
            hl_resp_error(rs, 422, code, "%s", msg);
            return HL_EINVAL;
        }
        if (api->cfg.production &&
            hl_check_url_address(json_string_value(v), json_string_length(v), api->cfg.allow, rs))
            return HL_EINVAL;
        p->url = json_string_value(v);
        p->set |= HL_WP_URL;
    } else if (creating) {
        hl_resp_error(rs, 422, "url_required", "url is required");
        return HL_EINVAL;
    }
    if (kind == HL_WK_OPERATIONAL) {
        if ((v = json_object_get(body, "events"))) {
            if (read_op_events(v, &p->event_types, rs))
                return HL_EINVAL;
            p->set |= HL_WP_EVENT_TYPES;
        } else if (creating) {
            hl_resp_error(rs, 422, "events_required",
                          "events is required: a list of operational event names");
            return HL_EINVAL;
        }
    } else if (read_silence(api, body, p, rs)) {
        return HL_EINVAL;
    }
    if (kind == HL_WK_OPERATIONAL) {
        /* no entities: no resource event reaches it */
    } else if ((v = json_object_get(body, "entities"))) {
        if (hl_read_entities(v, &p->entities, rs))
            return HL_EINVAL;
        p->set |= HL_WP_ENTITIES;
    } else if (creating) {
        hl_resp_error(rs, 422, "entities_required",
                      "entities is required: a list of \"agent\", \"context\", \"contextfile\"");
        return HL_EINVAL;
    }
    if ((v = json_object_get(body, "active"))) {
        if (!json_is_boolean(v)) {
            hl_resp_error(rs, 422, "active_not_boolean", "active must be true or false");
            return HL_EINVAL;
        }
        p->active = json_is_true(v);
        p->set |= HL_WP_ACTIVE;
    } else if (creating) {
        p->active = 1;
        p->set |= HL_WP_ACTIVE;
    }
    if ((v = json_object_get(body, "description"))) {
        if (!json_is_string(v) && !json_is_null(v)) {
            hl_resp_error(rs, 422, "description_not_string",
                          "description must be a string or null");
            return HL_EINVAL;
        }
        if (json_is_string(v) && json_string_length(v) > DESCRIPTION_MAX) {
            hl_resp_error(rs, 422, "description_too_long", "description must be at most %d bytes",
                          DESCRIPTION_MAX);
            return HL_EINVAL;
        }
        if (json_is_string(v) && strlen(json_string_value(v)) != json_string_length(v)) {
            hl_resp_error(rs, 422, "description_invalid", "description must not hold NUL");
            return HL_EINVAL;
        }
        p->description = json_is_string(v) ? json_string_value(v) : NULL;
        p->set |= HL_WP_DESCRIPTION;
    }
    if (read_pacing(body, p, rs))
        return HL_EINVAL;
    unsigned entities = p->set & HL_WP_ENTITIES ? p->entities : cur ? cur->entities : 0;
    if (kind == HL_WK_OPERATIONAL) {
        /* events, read above */
    } else if ((v = json_object_get(body, "eventTypes"))) {
        if (hl_read_event_types(v, entities, &p->event_types, rs))
            return HL_EINVAL;
        p->set |= HL_WP_EVENT_TYPES;
    } else if (cur && (p->set & HL_WP_ENTITIES) && cur->event_types) {
        /* Narrowing entities must not leave eventTypes naming events outside them. */
        for (int t = 0; t < HL_EV_RESOURCE_COUNT; t++) {
            if ((cur->event_types & (1u << t)) && !(hl_event_entity(t) & entities)) {
                hl_resp_error(rs, 422, "event_types_outside_entities",
                              "eventTypes holds %s, which is outside the new entities; change "
                              "eventTypes in the same request",
                              hl_event_name(t));
                return HL_EINVAL;
            }
        }
    }
    if (hl_read_policy(body, p, keep, rs))
        return HL_EINVAL;
    return HL_OK;
}

static void create(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    struct hl_webhook_patch p;
    struct hl_webhook w = {0};
    struct hl_policy_text keep = {0};
    if (read_fields(api, body, kind_of(rq), 1, NULL, &p, &keep, rs))
        goto out;
    if (hl_id_new("webhook-", 12, w.uid, sizeof(w.uid)) ||
        hl_secret_new(w.secret, sizeof(w.secret))) {
        hl_resp_error(rs, 500, "internal", "no randomness available");
        goto out;
    }
    w.app_id = rq->app.id;
    w.url = strdup(p.url);
    w.description = p.description ? strdup(p.description) : NULL;
    w.entities = p.entities;
    w.event_types = p.event_types;
    w.active = p.active;
    w.filter = keep.filter; /* issue 19: w owns the text now */
    w.headers = keep.headers;
    keep.filter = keep.headers = NULL;
    w.kind = kind_of(rq);
    w.silence_ms = p.silence_ms;
    w.expect_events = p.expect_events;
    w.rate_limit = p.rate_limit;
    w.ordering = p.ordering;
    w.created_at = w.updated_at = hl_now_ms();
    if (!w.url || (p.description && !w.description)) {
        hl_resp_error(rs, 500, "internal", "out of memory");
        goto out;
    }
    int rc = hl_store_webhook_create(api->store, &w, api->cfg.max_webhooks);
    if (rc == HL_ETOOBIG) {
        hl_resp_error(rs, 409, "webhook_limit_reached",
                      "this app has %lld webhooks, the most that --max-webhooks allows; delete "
                      "one to make another",
                      (long long)api->cfg.max_webhooks);
        goto out;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        goto out;
    }
    hl_resp_json(rs, 201, webhook_answer(rq, &w, 1));
out:
    hl_webhook_clear(&w);
    hl_policy_text_free(&keep);
    json_decref(body);
}

static void list(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return;
    struct hl_webhook *ws = NULL;
    size_t n = 0;
    int rc = hl_store_webhook_list_kind(api->store, rq->app.id, kind_of(rq), after, limit, &ws, &n);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, webhook_answer(rq, &ws[i], 0));
    int64_t last = n ? ws[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_webhook_clear(&ws[i]);
    free(ws);
    hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

/* Reads webhook uid (a deleted one too when any) when it is of the request's family's kind:
 * HL_ENOTFOUND otherwise, so that neither family shows the other's. */
static int get_of_kind(struct hl_api *api, struct hl_req *rq, const char *uid, int any,
                       struct hl_webhook *out)
{
    int rc = any ? hl_store_webhook_get_any(api->store, rq->app.id, uid, out)
                 : hl_store_webhook_get(api->store, rq->app.id, uid, out);
    if (rc == HL_OK && out->kind != kind_of(rq)) {
        hl_webhook_clear(out);
        rc = HL_ENOTFOUND;
    }
    return rc;
}

/* Answers a failed read or change of webhook uid. */
static void webhook_error(struct hl_resp *rs, int rc, const char *uid)
{
    if (rc == HL_ENOTFOUND)
        hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
    else
        hl_resp_store_error(rs, rc);
}

static void patch(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    struct hl_webhook cur, upd = {0};
    struct hl_webhook_patch p;
    struct hl_policy_text keep = {0};
    int rc = get_of_kind(api, rq, uid, 0, &cur);
    if (rc) {
        webhook_error(rs, rc, uid);
        goto out_body;
    }
    if (read_fields(api, body, cur.kind, 0, &cur, &p, &keep, rs))
        goto out;
    rc = hl_store_webhook_update(api->store, rq->app.id, uid, &p, hl_now_ms(), &upd);
    if (rc)
        webhook_error(rs, rc, uid);
    else
        hl_resp_json(rs, 200, webhook_answer(rq, &upd, 0));
    hl_webhook_clear(&upd);
out:
    hl_webhook_clear(&cur);
    hl_policy_text_free(&keep);
out_body:
    json_decref(body);
}

static void del(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    struct hl_webhook cur;
    int rc = get_of_kind(api, rq, uid, 0, &cur);
    if (rc == HL_OK) {
        hl_webhook_clear(&cur);
        rc = hl_store_webhook_delete(api->store, rq->app.id, uid, hl_now_ms());
    }
    if (rc)
        webhook_error(rs, rc, uid);
    else
        rs->status = 204;
}

/* ---- /webhooks/{uid}/…: operating one webhook's deliveries ---- */

/* GET /webhooks/{uid}/deliveries, filtered by status, event and time; a deleted webhook's too. */
static void list_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                            const struct hl_webhook *w)
{
    hl_delivery_list_answer(api, rq, rs, w->id);
}

/* Reads {since, until} of a recover: since is required, until (0 when absent) after it. */
static int read_window(json_t *body, struct hl_resp *rs, int64_t *since, int64_t *until)
{
    static const char *const known[] = {"since", "until", "dryRun", NULL};
    if (hl_reject_unknown(body, known, rs))
        return HL_EINVAL;
    const char *names[] = {"since", "until"};
    int64_t *outs[] = {since, until};
    *until = 0;
    for (int i = 0; i < 2; i++) {
        json_t *v = json_object_get(body, names[i]);
        if (!v && i == 0)
            return hl_resp_error(rs, 422, "since_required",
                                 "since is required: an ISO 8601 time or date"),
                   HL_EINVAL;
        if (v && (!json_is_string(v) ||
                  hl_time_or_date_parse(json_string_value(v), json_string_length(v), outs[i])))
            return hl_resp_error(rs, 422, "invalid_time",
                                 "%s must be an ISO 8601 time (2026-11-27T07:00:00Z) or date"
                                 " (2026-11-27, midnight UTC)",
                                 names[i]),
                   HL_EINVAL;
    }
    if (*until && *until <= *since)
        return hl_resp_error(rs, 422, "invalid_window", "until must be later than since"),
               HL_EINVAL;
    return HL_OK;
}

/* POST /webhooks/{uid}/recover: of the webhook's deliveries made in a time window, the failed
 * ones get one more attempt and the failing ones their next attempt, both now. */
static void recover(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                    const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return;
    int64_t since, until;
    struct hl_recovered got;
    json_t *dry = json_object_get(body, "dryRun");
    if (dry && !json_is_boolean(dry)) {
        hl_resp_error(rs, 422, "dry_run_not_boolean", "dryRun must be true or false");
    } else if (read_window(body, rs, &since, &until) == HL_OK) {
        /* a dry run counts what it would pick, picking nothing (the console asks first) */
        int dry_run = json_is_true(dry), rc;
        if (dry_run)
            rc = hl_store_recover_count(api->store, w->id, since, until, hl_now_ms(), &got);
        else
            rc = hl_store_recover(api->store, w->id, since, until, hl_now_ms(), &got);
        if (rc)
            hl_resp_store_error(rs, rc);
        else
            hl_resp_json(rs, dry_run ? 200 : 202,
                         json_pack("{s:I,s:I,s:I}", dry_run ? "wouldQueue" : "queued",
                                   (json_int_t)(got.failed + got.failing), "failed",
                                   (json_int_t)got.failed, "failing", (json_int_t)got.failing));
    }
    json_decref(body);
}

/* The expiry times of the earlier secrets of w still signing at now, newest first. */
static json_t *prev_expiries(const struct hl_webhook *w, int64_t now)
{
    json_t *a = json_array();
    for (int i = 0; i < w->prev.n; i++)
        if (w->prev.v[i].until > now)
            json_array_append_new(a, hl_json_time(w->prev.v[i].until));
    return a;
}

/* POST /webhooks/{uid}/rotate-secret: a new secret; the old one signs on for overlapSeconds, and
 * so do the earlier ones whose overlap has not ended (store.h). */
static void rotate(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                   const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 1);
    if (!body)
        return;
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
    struct hl_webhook got = {0};
    int rc = hl_store_rotate_secret(api->store, rq->app.id, w->uid, secret, until, now);
    if (rc == HL_OK)
        rc = hl_store_webhook_get(api->store, rq->app.id, w->uid, &got);
    if (rc) {
        webhook_error(rs, rc, w->uid);
        goto out;
    }
    hl_resp_json(rs, 200,
                 json_pack("{s:s,s:s,s:o,s:o}", "uid", w->uid, "secret", secret,
                           "previousSecretExpiresAt", hl_json_time(until),
                           "previousSecretsExpireAt", prev_expiries(&got, now)));
    hl_webhook_clear(&got);
out:
    json_decref(body);
}

/* Commits a webhook.test event for w alone. Returns the delivery it made, or 0 with the answer
 * set. */
static int64_t commit_test(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                           const struct hl_webhook *w)
{
    json_t *data = json_pack("{s:s,s:n,s:s,s:s}", "uid", w->uid, "externalTenantId", "url", w->url,
                             "message", "This is a test event from hookline.");
    struct hl_buf text;
    hl_buf_init(&text, 1 << 16);
    struct hl_event ev = {0}, got = {0};
    int rc = hl_json_write(&text, data);
    json_decref(data);
    if (rc == HL_OK)
        rc = hl_event_make(rq->app.id, rq->app.uid, HL_EV_WEBHOOK_TEST, "", w->uid, text.p,
                           text.len, hl_now_ms(), 0, &ev);
    hl_buf_free(&text);
    if (rc) {
        hl_resp_error(rs, 500, "internal", "could not build the test event");
        return 0;
    }
    struct hl_change ch = {.op = HL_OP_NONE, .ev = &ev, .only_webhook = w->id};
    struct hl_delivery *dl = NULL;
    size_t n = 0;
    rc = hl_store_commit(api->store, &ch, 1, NULL, NULL);
    if (rc == HL_OK)
        rc = hl_store_event_get(api->store, rq->app.id, ev.uid, &got, &dl, &n);
    int64_t id = rc == HL_OK && n ? dl[0].id : 0;
    if (rc)
        hl_resp_store_error(rs, rc);
    else if (!id)
        hl_resp_error(rs, 500, "internal", "the test event made no delivery");
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&dl[i]);
    free(dl);
    hl_event_clear(&got);
    hl_event_clear(&ev);
    return id;
}

/* How often a parked test looks at its delivery when no wake-up came: the attempt may be made and
 * recorded by another node's dispatcher, which does not wake this one. */
#define TEST_RECHECK_MS 1000

/* True when the test delivery id has its first attempt recorded (or cannot get one). */
static int test_settled(struct hl_api *api, struct hl_req *rq, int64_t id)
{
    struct hl_delivery d = {0};
    int rc = hl_store_delivery_get(api->store, rq->app.id, id, &d, NULL, NULL);
    int done = rc != HL_OK || d.attempts > 0 || d.status != HL_DS_PENDING;
    hl_delivery_clear(&d);
    return done;
}

/* A parked test woke: answers once the attempt is recorded, or with the delivery as it stands at
 * the deadline (or when the server stops); parks again otherwise. */
static void test_woke(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, enum hl_wake why,
                      int rc)
{
    (void)rc;
    int64_t id = HL_PARK_ID(rq->park.key);
    if (why == HL_WAKE_DEADLINE || why == HL_WAKE_STOP || test_settled(api, rq, id))
        hl_delivery_answer(api, rq, rs, id, 200);
    else
        hl_req_park(rq, &rq->park);
}

/* POST /webhooks/{uid}/test: sends a webhook.test event to w only and answers with the delivery
 * once its first attempt is recorded (or test_wait_ms has passed). The request waits parked, so
 * it holds no HTTP thread; the dispatcher wakes it when it records the attempt. */
static void send_test(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                      const struct hl_webhook *w)
{
    json_t *body = hl_req_json(rq, rs, 1);
    if (!body)
        return;
    static const char *const none[] = {NULL};
    int bad = hl_reject_unknown(body, none, rs);
    json_decref(body);
    if (bad)
        return;
    if (!w->active) {
        hl_resp_error(rs, 409, "webhook_inactive",
                      "webhook %s is not active; enable it (PATCH active: true) to test it",
                      w->uid);
        return;
    }
    int64_t id = commit_test(api, rq, rs, w);
    if (!id)
        return;
    struct hl_park p = {.key = HL_PARK_KEY(HL_PARK_DELIVERY, id),
                        .deadline = hl_mono_ms() + api->cfg.test_wait_ms,
                        .recheck_ms = TEST_RECHECK_MS,
                        .fn = test_woke};
    hl_req_park(rq, &p);
    /* The attempt may have been recorded before the park: then it wakes at once. */
    if (test_settled(api, rq, id))
        hl_http_wake(rq->http, p.key, HL_OK);
}

/* GET /webhooks/{uid}/stats: delivery counts and the last attempt times. */
static void stats(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                  const struct hl_webhook *w)
{
    (void)rq;
    struct hl_webhook_stats st;
    int rc = hl_store_webhook_stats(api->store, w->id, &st);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return;
    }
    hl_resp_json(rs, 200,
                 json_pack("{s:s,s:I,s:I,s:I,s:I,s:o,s:o,s:o}", "uid", w->uid, "pending",
                           (json_int_t)st.pending, "failing", (json_int_t)st.failing, "succeeded",
                           (json_int_t)st.succeeded, "failed", (json_int_t)st.failed,
                           "lastTriggeredAt", hl_json_time(w->last_triggered_at), "lastSuccessAt",
                           hl_json_time(w->last_success_at), "lastFailureAt",
                           hl_json_time(w->last_failure_at)));
}

/* /webhooks/{uid}/{op} for webhook w. */
static void serve_op(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                     const struct hl_webhook *w)
{
    if (rq->nseg == 4 && hl_str_eqc(rq->seg[2], "stats") && hl_str_eqc(rq->seg[3], "series")) {
        if (rq->method != HL_GET)
            hl_method_not_allowed(rs, "GET");
        else
            hl_webhook_series(api, rq, rs, w);
        return;
    }
    if (rq->nseg != 3)
        return;
    static const struct {
        const char *name;
        enum hl_method method;
        void (*fn)(struct hl_api *, struct hl_req *, struct hl_resp *, const struct hl_webhook *);
    } OPS[] = {
        {"deliveries", HL_GET, list_deliveries},
        {"recover", HL_POST, recover},
        {"rotate-secret", HL_POST, rotate},
        {"test", HL_POST, send_test},
        {"stats", HL_GET, stats},
    };
    for (size_t i = 0; i < sizeof(OPS) / sizeof(OPS[0]); i++) {
        if (!hl_str_eqc(rq->seg[2], OPS[i].name))
            continue;
        if (rq->method != OPS[i].method)
            hl_method_not_allowed(rs, OPS[i].method == HL_GET ? "GET" : "POST");
        else
            OPS[i].fn(api, rq, rs, w);
        return;
    }
}

/* /webhooks/{uid} and /webhooks/{uid}/{op}. */
static void serve_one(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    if (rq->nseg == 2 && rq->method == HL_PATCH) {
        patch(api, rq, rs, uid);
        return;
    }
    if (rq->nseg == 2 && rq->method == HL_DELETE) {
        del(api, rq, rs, uid);
        return;
    }
    if (rq->nseg == 2 && rq->method != HL_GET) {
        hl_method_not_allowed(rs, "GET, PATCH, DELETE");
        return;
    }
    /* A deleted webhook's deliveries stay viewable; nothing else of it answers. */
    int any = rq->nseg == 3 && rq->method == HL_GET && hl_str_eqc(rq->seg[2], "deliveries");
    struct hl_webhook w;
    int rc = get_of_kind(api, rq, uid, any, &w);
    if (rc) {
        webhook_error(rs, rc, uid);
        return;
    }
    if (rq->nseg == 2)
        hl_resp_json(rs, 200, webhook_answer(rq, &w, 0));
    else
        serve_op(api, rq, rs, &w);
    hl_webhook_clear(&w);
}

void hl_api_webhooks(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (rq->nseg == 1) {
        if (rq->method == HL_POST)
            create(api, rq, rs);
        else if (rq->method == HL_GET)
            list(api, rq, rs);
        else
            hl_method_not_allowed(rs, "GET, POST");
        return;
    }
    char uid[HL_ID_MAX];
    if (hl_req_seg(rq, 1, uid, sizeof(uid)))
        hl_resp_error(rs, 404, "not_found", "no such webhook");
    else
        serve_one(api, rq, rs, uid);
}
