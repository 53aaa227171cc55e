/* /webhooks: register, list, read, change and delete the endpoints that receive events. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api/deliveries.h"
#include "api/http.h"
#include "api/validate.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "delivery/target.h"
#include "events/timestamp.h"

#define DESCRIPTION_MAX 1024

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

/* The webhook as the API shows it; the secret only when show_secret (on create). */
static json_t *webhook_json(const struct hl_webhook *w, int show_secret)
{
    json_t *o = json_object();
    json_object_set_new(o, "uid", json_string(w->uid));
    json_object_set_new(o, "url", json_string(w->url));
    if (show_secret)
        json_object_set_new(o, "secret", json_string(w->secret));
    json_object_set_new(o, "entities", mask_list(w->entities, 0));
    json_object_set_new(o, "active", json_boolean(w->active));
    json_object_set_new(o, "createdAt", hl_json_time(w->created_at));
    json_object_set_new(o, "updatedAt", hl_json_time(w->updated_at));
    json_object_set_new(o, "lastTriggeredAt", hl_json_time(w->last_triggered_at));
    json_object_set_new(o, "lastSuccessAt", hl_json_time(w->last_success_at));
    json_object_set_new(o, "lastFailureAt", hl_json_time(w->last_failure_at));
    json_object_set_new(o, "description",
                        w->description ? json_string(w->description) : json_null());
    json_object_set_new(o, "eventTypes",
                        w->event_types ? mask_list(w->event_types, 1) : json_null());
    json_object_set_new(o, "disabledAt", hl_json_time(w->disabled_at));
    json_object_set_new(o, "disabledReason",
                        w->disabled_reason ? json_string(w->disabled_reason) : json_null());
    return o;
}

/* Reads and checks the fields of a create (creating=1) or a PATCH. cur is the webhook a PATCH
 * changes (its entities bound eventTypes). Sets a 422 answer and returns HL_EINVAL on a bad
 * field. */
static int read_fields(struct hl_api *api, json_t *body, int creating, const struct hl_webhook *cur,
                       struct hl_webhook_patch *p, struct hl_resp *rs)
{
    static const char *const known[] = {"url",         "entities",   "active",
                                        "description", "eventTypes", NULL};
    if (hl_reject_unknown(body, known, rs))
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
        p->url = json_string_value(v);
        p->set |= HL_WP_URL;
    } else if (creating) {
        hl_resp_error(rs, 422, "url_required", "url is required");
        return HL_EINVAL;
    }
    if ((v = json_object_get(body, "entities"))) {
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
    unsigned entities = p->set & HL_WP_ENTITIES ? p->entities : cur ? cur->entities : 0;
    if ((v = json_object_get(body, "eventTypes"))) {
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
    return HL_OK;
}

static int create(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return 0;
    struct hl_webhook_patch p;
    struct hl_webhook w = {0};
    if (read_fields(api, body, 1, NULL, &p, rs))
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
    w.created_at = w.updated_at = hl_now_ms();
    if (!w.url || (p.description && !w.description)) {
        hl_resp_error(rs, 500, "internal", "out of memory");
        goto out;
    }
    int rc = hl_store_webhook_create(api->store, &w);
    if (rc) {
        hl_resp_store_error(rs, rc);
        goto out;
    }
    hl_resp_json(rs, 201, webhook_json(&w, 1));
out:
    hl_webhook_clear(&w);
    json_decref(body);
    return 0;
}

static int list(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    size_t limit;
    int64_t after;
    if (hl_req_page(rq, rs, &limit, &after))
        return 0;
    struct hl_webhook *ws = NULL;
    size_t n = 0;
    int rc = hl_store_webhook_list(api->store, rq->app.id, after, limit, &ws, &n);
    if (rc)
        return hl_resp_store_error(rs, rc);
    json_t *data = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(data, webhook_json(&ws[i], 0));
    int64_t last = n ? ws[n - 1].id : 0;
    for (size_t i = 0; i < n; i++)
        hl_webhook_clear(&ws[i]);
    free(ws);
    return hl_resp_json(rs, 200, hl_page_answer(data, limit, last));
}

static int get_one(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    struct hl_webhook w;
    int rc = hl_store_webhook_get(api->store, rq->app.id, uid, &w);
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
    if (rc)
        return hl_resp_store_error(rs, rc);
    hl_resp_json(rs, 200, webhook_json(&w, 0));
    hl_webhook_clear(&w);
    return 0;
}

static int patch(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    json_t *body = hl_req_json(rq, rs, 0);
    if (!body)
        return 0;
    struct hl_webhook cur, upd = {0};
    struct hl_webhook_patch p;
    int rc = hl_store_webhook_get(api->store, rq->app.id, uid, &cur);
    if (rc == HL_ENOTFOUND) {
        hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
        goto out_body;
    }
    if (rc) {
        hl_resp_store_error(rs, rc);
        goto out_body;
    }
    if (read_fields(api, body, 0, &cur, &p, rs))
        goto out;
    rc = hl_store_webhook_update(api->store, rq->app.id, uid, &p, hl_now_ms(), &upd);
    if (rc == HL_ENOTFOUND)
        hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
    else if (rc)
        hl_resp_store_error(rs, rc);
    else
        hl_resp_json(rs, 200, webhook_json(&upd, 0));
    hl_webhook_clear(&upd);
out:
    hl_webhook_clear(&cur);
out_body:
    json_decref(body);
    return 0;
}

static int del(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, const char *uid)
{
    int rc = hl_store_webhook_delete(api->store, rq->app.id, uid, hl_now_ms());
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
    if (rc)
        return hl_resp_store_error(rs, rc);
    rs->status = 204;
    return 0;
}

int hl_api_webhooks(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    if (rq->nseg == 1) {
        if (rq->method == HL_POST)
            return create(api, rq, rs);
        if (rq->method == HL_GET)
            return list(api, rq, rs);
        return hl_method_not_allowed(rs, "GET, POST");
    }
    char uid[HL_ID_MAX];
    if (hl_req_seg(rq, 1, uid, sizeof(uid)))
        return hl_resp_error(rs, 404, "not_found", "no such webhook");
    if (rq->nseg == 2) {
        switch (rq->method) {
        case HL_GET:
            return get_one(api, rq, rs, uid);
        case HL_PATCH:
            return patch(api, rq, rs, uid);
        case HL_DELETE:
            return del(api, rq, rs, uid);
        default:
            return hl_method_not_allowed(rs, "GET, PATCH, DELETE");
        }
    }
    struct hl_webhook w;
    int rc = hl_store_webhook_get(api->store, rq->app.id, uid, &w);
    if (rc == HL_ENOTFOUND)
        return hl_resp_error(rs, 404, "not_found", "no webhook %s", uid);
    if (rc)
        return hl_resp_store_error(rs, rc);
    hl_api_webhook_ops(api, rq, rs, &w);
    hl_webhook_clear(&w);
    return 0;
}
