/* Per-app limits of the API, so that one app cannot take a node for itself:
 *
 * - requests per second (serve --api-rate, --api-burst): a token bucket per app, kept by each
 *   node for itself (N nodes let an app make up to N times the rate); a request over it gets 429
 *   with Retry-After and nothing is done;
 * - webhooks per app (--max-webhooks): the store checks the count as it inserts (409);
 * - bytes of context files per app (--max-app-storage): checked, and the file committed, under a
 *   lock of the app's on this node, so concurrent uploads of one app cannot pass the limit
 *   together (across several nodes each may let one upload through at the limit) (413).
 *
 * The buckets are bounded: a bucket that has refilled is the same as none and is dropped when
 * room is needed; should HL_RATE_APPS_MAX apps all be mid-bucket, a new one goes unlimited.
 */
#ifndef HL_LIMITS_H
#define HL_LIMITS_H

#include <stdint.h>

#include "api/http.h"

/* Most apps whose buckets are kept at once. */
#define HL_RATE_APPS_MAX (1 << 17)

struct hl_limits;

/* Makes the state of the limits cfg sets (read now). Returns 0 or HL_ENOMEM. */
int hl_limits_new(const struct hl_api_config *cfg, struct hl_limits **out);
/* Frees l. NULL is fine. */
void hl_limits_free(struct hl_limits *l);

/* Takes one token of app_id's bucket at now_ms (a monotonic clock). Returns 0 when there was one,
 * else the ms until there is (the request is refused). Always 0 with --api-rate 0. */
int64_t hl_limits_take(struct hl_limits *l, int64_t app_id, int64_t now_ms);

/* Admits an authenticated request of rq->app: 0 to go on, or HL_EREFUSED with a 429 answer
 * (Retry-After, the limit named) in rs. Admits everything when api->limits is NULL. */
int hl_limits_admit(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs);

/* Serialises the storage check and the commit of one app's uploads on this node: lock, check
 * with hl_limits_storage_check, commit, unlock. NULL limits: no lock. */
void hl_limits_storage_lock(struct hl_limits *l, int64_t app_id);
void hl_limits_storage_unlock(struct hl_limits *l, int64_t app_id);
/* Whether app_id may keep adding more bytes of context files: 0, or an error with the answer
 * (413 naming --max-app-storage, or the store's error) in rs. */
int hl_limits_storage_check(struct hl_api *api, int64_t app_id, int64_t adding, struct hl_resp *rs);

#endif
