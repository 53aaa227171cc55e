/* GET /webhooks/{uid}/stats/series: a webhook's attempts over the last hour or day, by minute
 * or hour, folded by the store from one index of the attempts, for the console's charts. */
#ifndef HL_SERIES_H
#define HL_SERIES_H

#include "api/http.h"

/* Answers the series of webhook w: ?window=1h|24h (default 1h) and ?step=1m|5m|1h (default 1m
 * for 1h, 1h for 24h; shorter than the window). Every bucket is in the answer, empty ones too,
 * the last one being the step that holds now. */
void hl_webhook_series(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs,
                       const struct hl_webhook *w);

#endif
