/* The delivery-policy fields of a webhook (issue 19): `filter` (which events it gets,
 * common/filter.h) and `headers` (static request headers, common/headers.h), read from a create
 * or PATCH body and shown in the webhook's JSON. */
#ifndef HL_API_POLICY_H
#define HL_API_POLICY_H

#include <jansson.h>

#include "api/http.h"
#include "store/store.h"

/* The checked fields as the text the store keeps (compact JSON), owned here. */
struct hl_policy_text {
    char *filter;
    char *headers;
};

/* Reads `filter` and `headers` of body into p (HL_WP_FILTER/HL_WP_HEADERS and their text,
 * which keep owns: free it with hl_policy_text_free after the store call). Absent leaves a field
 * unset; null sets it to none. A bad field sets a 422 whose message starts with the field and
 * names the path or header ("filter[\"data.x\"] ...", "headers[\"Host\"] ...") and returns
 * HL_EINVAL; HL_ENOMEM sets a 500. */
int hl_read_policy(json_t *body, struct hl_webhook_patch *p, struct hl_policy_text *keep,
                   struct hl_resp *rs);

/* Frees what hl_read_policy kept; leaves it zeroed. */
void hl_policy_text_free(struct hl_policy_text *keep);

/* Adds "filter" and "headers" (null when none) of w to its JSON object o. */
void hl_policy_json(json_t *o, const struct hl_webhook *w);

#endif
