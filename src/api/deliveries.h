/* Operating deliveries: the handlers under /webhooks/{uid}/… and /deliveries/…. */
#ifndef HL_DELIVERIES_H
#define HL_DELIVERIES_H

#include <jansson.h>

#include "api/http.h"

/* A delivery as the API shows it; with its attempt log when att is not NULL. */
json_t *hl_delivery_json(const struct hl_delivery *d, const struct hl_attempt_rec *att, size_t n);
/* /webhooks/{uid}/deliveries, /recover, /rotate-secret, /test, /stats for webhook w. */
int hl_api_webhook_ops(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct hl_webhook *w);
/* /deliveries/{id} and /deliveries/{id}/resend. */
int hl_api_deliveries(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);

#endif
