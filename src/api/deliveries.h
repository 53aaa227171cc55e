/* Deliveries as the API shows them. deliveries.c serves /deliveries, /deliveries/{id} and its
 * resend; the webhook's own delivery list and test (webhooks.c) answer with the same JSON. */
#ifndef HL_DELIVERIES_H
#define HL_DELIVERIES_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "api/http.h"

/* Reads a delivery id, the only way the API accepts one: "dlv_" and a canonical positive decimal
 * (no sign, no leading zero, no space, at most 19 digits, at most INT64_MAX) that fills all len
 * bytes of s. Returns 0 and sets *id, or HL_EINVAL. */
int hl_delivery_id_parse(const char *s, size_t len, int64_t *id);
/* A delivery as the API shows it; with its attempt log when att is not NULL (n attempts).
 * Returns a new reference. */
json_t *hl_delivery_json(const struct hl_delivery *d, const struct hl_attempt_rec *att, size_t n);
/* The delivery status named name ("pending", "failing", "succeeded", "failed", "cancelled",
 * "paused"), or -1 when it names none. */
int hl_delivery_status_parse(const char *name);
/* Answers GET /deliveries (webhook_id 0) or GET /webhooks/{uid}/deliveries: a page of the
 * deliveries, newest first, filtered by ?status=, ?event=, ?since= and ?until=; a 422 naming a
 * wrong filter. */
void hl_delivery_list_answer(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                             int64_t webhook_id);
/* Answers with delivery id of rq's app and its attempt log, with HTTP status; a 404 when the app
 * has no such delivery, a store error otherwise. */
void hl_delivery_answer(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs, int64_t id,
                        int status);

#endif
