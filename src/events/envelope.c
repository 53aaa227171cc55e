#include "events/envelope.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/events.h"
#include "common/ids.h"
#include "common/json.h"

int hl_payload_build(struct hl_buf *out, const char *event_uid, int type, int64_t ts,
                     const char *app_uid, const char *data, size_t data_len, int64_t deleted_at)
{
    char iso[HL_ISO_MAX];
    hl_time_iso(ts, iso);
    int rc = hl_buf_puts(out, "{\"eventId\":");
    if (!rc)
        rc = hl_json_write_str(out, event_uid, strlen(event_uid));
    if (!rc)
        rc = hl_buf_puts(out, ",\"event\":");
    if (!rc)
        rc = hl_json_write_str(out, hl_event_name(type), strlen(hl_event_name(type)));
    if (!rc)
        rc = hl_buf_printf(out, ",\"timestamp\":\"%s\",\"appUid\":", iso);
    if (!rc)
        rc = hl_json_write_str(out, app_uid, strlen(app_uid));
    if (!rc)
        rc = hl_buf_puts(out, ",\"version\":1,\"data\":");
    if (deleted_at && data_len >= 2 && data[data_len - 1] == '}') {
        /* The stored object is canonical: a key appended before its brace stays last. */
        hl_time_iso(deleted_at, iso);
        if (!rc)
            rc = hl_buf_append(out, data, data_len - 1);
        if (!rc)
            rc = hl_buf_printf(out, "%s\"deletedAt\":\"%s\"}", data_len > 2 ? "," : "", iso);
    } else if (!rc) {
        rc = hl_buf_append(out, data, data_len);
    }
    if (!rc)
        rc = hl_buf_putc(out, '}');
    return rc;
}

int hl_event_make(int64_t app_id, const char *app_uid, int type, const char *tenant,
                  const char *resource_uid, const char *data, size_t data_len, int64_t ts,
                  int64_t deleted_at, struct hl_event *ev)
{
    memset(ev, 0, sizeof(*ev));
    if (hl_id_new("evt_", 12, ev->uid, sizeof(ev->uid)))
        return HL_EIO;
    ev->type = type;
    ev->app_id = app_id;
    ev->tenant = strdup(tenant);
    snprintf(ev->resource_uid, sizeof(ev->resource_uid), "%s", resource_uid);
    ev->created_at = ts;
    struct hl_buf b;
    hl_buf_init(&b, HL_ENVELOPE_MAX);
    int rc = ev->tenant
                 ? hl_payload_build(&b, ev->uid, type, ts, app_uid, data, data_len, deleted_at)
                 : HL_ENOMEM;
    if (rc) {
        hl_buf_free(&b);
        hl_event_clear(ev);
        return rc;
    }
    ev->payload_len = b.len;
    ev->payload = hl_buf_steal(&b);
    return HL_OK;
}
