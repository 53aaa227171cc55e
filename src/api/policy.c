/* The delivery-policy fields of a webhook: filter and headers (policy.h). */
#include "api/policy.h"

#include <stdlib.h>
#include <string.h>

#include "api/validate.h"
#include "common/buf.h"
#include "common/err.h"
#include "common/filter.h"
#include "common/headers.h"
#include "common/json.h"

/* The most bytes a checked field's text can take: 20 headers of 128 + 1024 bytes, or 20 paths
 * and 100 values of at most 1024 bytes, each escaped up to 6 bytes a byte, with room to spare. */
#define POLICY_TEXT_MAX (1u << 20)

/* The compact text of a checked field into *out (malloc'd). */
static int text_of(const json_t *v, char **out)
{
    struct hl_buf b;
    hl_buf_init(&b, POLICY_TEXT_MAX);
    int rc = hl_json_write(&b, v);
    if (rc == HL_OK && !(*out = hl_buf_steal(&b)))
        rc = HL_ENOMEM;
    hl_buf_free(&b);
    return rc;
}

/* Sets the 422 of a fault: "<field> <what>" or "<field>[\"<key>\"] <what>". */
static void fault_answer(struct hl_resp *rs, const char *field, const struct hl_fault *f)
{
    if (!f->key) {
        hl_resp_error(rs, 422, f->code, "%s %s", field, f->what);
        return;
    }
    char shown[80];
    hl_printable(shown, sizeof(shown), f->key, f->key_len);
    hl_resp_error(rs, 422, f->code, "%s[\"%s\"] %s", field, shown, f->what);
}

int hl_read_policy(json_t *body, struct hl_webhook_patch *p, struct hl_policy_text *keep,
                   struct hl_resp *rs)
{
    json_t *v;
    int rc = HL_OK;
    if ((v = json_object_get(body, "filter"))) {
        struct hl_fault f;
        if (!json_is_null(v) && hl_filter_check(v, &f)) {
            fault_answer(rs, "filter", &f);
            return HL_EINVAL;
        }
        if (!json_is_null(v))
            rc = text_of(v, &keep->filter);
        p->filter = keep->filter;
        p->set |= HL_WP_FILTER;
    }
    if (rc == HL_OK && (v = json_object_get(body, "headers"))) {
        struct hl_fault f;
        if (!json_is_null(v) && hl_headers_check(v, &f)) {
            fault_answer(rs, "headers", &f);
            return HL_EINVAL;
        }
        /* {} is no headers, as null is: one way to store "none". */
        if (!json_is_null(v) && json_object_size(v))
            rc = text_of(v, &keep->headers);
        p->headers = keep->headers;
        p->set |= HL_WP_HEADERS;
    }
    if (rc) {
        /* Checked values always write (jansson read them as UTF-8, and POLICY_TEXT_MAX is
         * above what the limits let through): only memory fails. */
        hl_resp_error(rs, 500, "internal", "filter and headers could not be kept: %s",
                      hl_strerror(rc));
        return rc;
    }
    return HL_OK;
}

void hl_policy_text_free(struct hl_policy_text *keep)
{
    free(keep->filter);
    free(keep->headers);
    keep->filter = keep->headers = NULL;
}

/* A stored field as JSON (null when none or, never expected, unreadable). */
static json_t *stored(const char *text)
{
    json_t *v = text ? hl_json_parse(text, strlen(text), NULL, 0) : NULL;
    return v ? v : json_null();
}

void hl_policy_json(json_t *o, const struct hl_webhook *w)
{
    json_object_set_new(o, "filter", stored(w->filter));
    json_object_set_new(o, "headers", stored(w->headers));
}
