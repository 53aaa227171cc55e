#include "events/operational.h"

#include <jansson.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/events.h"
#include "common/ids.h"
#include "common/json.h"
#include "events/envelope.h"
#include "events/timestamp.h"

/* A string, or null for NULL. */
static json_t *str_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

/* An integer, or null for 0. */
static json_t *int_or_null(int64_t v)
{
    return v ? json_integer((json_int_t)v) : json_null();
}

/* The facts of each type after the uid, url and externalTenantId every one starts with. */
static int add_facts(json_t *o, const struct hl_op_facts *f)
{
    const struct hl_webhook *w = f->webhook;
    switch (f->type) {
    case HL_OPEV_ENDPOINT_FAILING:
        json_object_set_new(o, "failingSince", hl_json_time(f->at));
        json_object_set_new(o, "error", str_or_null(f->error));
        json_object_set_new(o, "statusCode", int_or_null(f->status_code));
        json_object_set_new(o, "waiting", json_integer((json_int_t)f->waiting));
        return HL_OK;
    case HL_OPEV_ENDPOINT_RECOVERED:
        json_object_set_new(o, "failingSince", hl_json_time(f->since));
        json_object_set_new(o, "recoveredAt", hl_json_time(f->at));
        json_object_set_new(o, "failedForMs",
                            json_integer((json_int_t)(f->at > f->since ? f->at - f->since : 0)));
        json_object_set_new(o, "recoveredDeliveries", json_integer((json_int_t)f->recovered));
        json_object_set_new(o, "waiting", json_integer((json_int_t)f->waiting));
        return HL_OK;
    case HL_OPEV_ENDPOINT_DISABLED:
        json_object_set_new(o, "disabledAt", hl_json_time(f->at));
        json_object_set_new(o, "reason", str_or_null(f->reason));
        json_object_set_new(o, "waiting", json_integer((json_int_t)f->waiting));
        return HL_OK;
    case HL_OPEV_ENDPOINT_SILENT:
        json_object_set_new(o, "silenceAlertSeconds",
                            json_integer((json_int_t)(w->silence_ms / 1000)));
        json_object_set_new(o, "expectEvents", json_boolean(w->expect_events));
        json_object_set_new(o, "lastSuccessAt", hl_json_time(w->last_success_at));
        json_object_set_new(o, "silentSince", hl_json_time(f->since));
        json_object_set_new(o, "waiting", json_integer((json_int_t)f->waiting));
        return HL_OK;
    case HL_OPEV_DELIVERY_EXHAUSTED: {
        char id[HL_ID_MAX];
        hl_delivery_uid(f->delivery->id, id);
        json_object_set_new(o, "deliveryId", json_string(id));
        json_object_set_new(o, "eventId", json_string(f->delivery->event_uid));
        json_object_set_new(o, "event", str_or_null(hl_event_name(f->delivery->event_type)));
        json_object_set_new(o, "attempts", json_integer(f->delivery->attempts));
        json_object_set_new(o, "error", str_or_null(f->error));
        json_object_set_new(o, "statusCode", int_or_null(f->status_code));
        return HL_OK;
    }
    }
    return HL_EINVAL;
}

int hl_op_event_make(const struct hl_op_facts *f, struct hl_event *ev)
{
    const struct hl_webhook *w = f->webhook;
    json_t *o = json_object();
    if (!o)
        return HL_ENOMEM;
    json_object_set_new(o, "uid", json_string(w->uid));
    json_object_set_new(o, "url", json_string(w->url));
    json_object_set_new(o, "externalTenantId", json_null());
    int rc = add_facts(o, f);
    struct hl_buf text;
    hl_buf_init(&text, HL_ENVELOPE_MAX);
    if (rc == HL_OK)
        rc = hl_json_write(&text, o);
    json_decref(o);
    if (rc == HL_OK)
        rc = hl_event_make(w->app_id, f->app_uid, f->type, "", w->uid, text.p, text.len, f->at, 0,
                           ev);
    hl_buf_free(&text);
    return rc;
}
