/* Per-app limits of the API (see limits.h): request-rate buckets and the storage lock. */
#include "api/limits.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"

/* Locks for the storage check, by app: uploads of different apps rarely wait for each other. */
#define STORAGE_LOCKS 64

/* Tokens are counted in thousandths, so that a refill of rate tokens a second is rate of them a
 * millisecond: integers, no rounding. */
#define MILLI 1000

/* One app's bucket: its tokens (in thousandths) as of at_ms. */
struct bucket {
    int64_t app; /* 0: free slot */
    int64_t tokens;
    int64_t at_ms;
};

struct hl_limits {
    int64_t rate, burst; /* tokens a second, most tokens (thousandths); rate 0: no limit */
    pthread_mutex_t mu;  /* the buckets */
    struct bucket *b;
    size_t n, used;     /* slots (a power of two), slots taken */
    int64_t next_purge; /* full at its largest: no new bucket (nor purge) before then */
    int warned;         /* "too many apps" logged once */
    pthread_mutex_t storage[STORAGE_LOCKS];
};

int hl_limits_new(const struct hl_api_config *cfg, struct hl_limits **out)
{
    *out = NULL;
    struct hl_limits *l = calloc(1, sizeof(*l));
    if (!l)
        return HL_ENOMEM;
    l->rate = cfg->api_rate > 0 ? cfg->api_rate : 0;
    l->burst = (cfg->api_burst > 0 ? cfg->api_burst : 1) * MILLI;
    l->n = 64;
    l->b = calloc(l->n, sizeof(*l->b));
    if (!l->b) {
        free(l);
        return HL_ENOMEM;
    }
    pthread_mutex_init(&l->mu, NULL);
    for (size_t i = 0; i < STORAGE_LOCKS; i++)
        pthread_mutex_init(&l->storage[i], NULL);
    *out = l;
    return HL_OK;
}

void hl_limits_free(struct hl_limits *l)
{
    if (!l)
        return;
    pthread_mutex_destroy(&l->mu);
    for (size_t i = 0; i < STORAGE_LOCKS; i++)
        pthread_mutex_destroy(&l->storage[i]);
    free(l->b);
    free(l);
}

/* ---- the buckets: open addressing on the app id ---- */

static size_t slot_of(size_t n, int64_t app)
{
    return (size_t)((uint64_t)app * 0x9E3779B97F4A7C15ull >> 20) & (n - 1);
}

/* The bucket's tokens at now, refilled at the rate up to the burst. */
static int64_t refill(const struct hl_limits *l, const struct bucket *b, int64_t now)
{
    int64_t elapsed = now > b->at_ms ? now - b->at_ms : 0;
    if (elapsed >= (l->burst - b->tokens) / l->rate + 1) /* also: no overflow below */
        return l->burst;
    int64_t t = b->tokens + elapsed * l->rate;
    return t < l->burst ? t : l->burst;
}

/* Moves the buckets into a table of n slots, leaving out those that have refilled (the same as
 * no bucket). Returns 0 or HL_ENOMEM (the table is unchanged). */
static int rebuild(struct hl_limits *l, size_t n, int64_t now)
{
    struct bucket *nb = calloc(n, sizeof(*nb));
    if (!nb)
        return HL_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < l->n; i++) {
        const struct bucket *b = &l->b[i];
        if (!b->app || refill(l, b, now) >= l->burst)
            continue;
        size_t k = slot_of(n, b->app);
        while (nb[k].app)
            k = (k + 1) & (n - 1);
        nb[k] = *b;
        used++;
    }
    free(l->b);
    l->b = nb;
    l->n = n;
    l->used = used;
    return HL_OK;
}

/* The bucket of app (mu held), made full when new; NULL when there is no room for it. */
static struct bucket *bucket_of(struct hl_limits *l, int64_t app, int64_t now)
{
    for (int tries = 0; tries < 2; tries++) {
        size_t k = slot_of(l->n, app);
        while (l->b[k].app && l->b[k].app != app)
            k = (k + 1) & (l->n - 1);
        if (l->b[k].app == app)
            return &l->b[k];
        if ((l->used + 1) * 4 <= l->n * 3) {
            l->b[k] = (struct bucket){.app = app, .tokens = l->burst, .at_ms = now};
            l->used++;
            return &l->b[k];
        }
        /* Three quarters full: drop the refilled buckets, and grow while that is allowed; at
         * the largest size, purge at most once a second (each purge reads every bucket). */
        if (l->n >= HL_RATE_APPS_MAX && now < l->next_purge)
            return NULL;
        size_t n = l->n < HL_RATE_APPS_MAX ? l->n * 2 : l->n;
        if (rebuild(l, n, now))
            return NULL;
        if (l->n >= HL_RATE_APPS_MAX)
            l->next_purge = now + 1000;
    }
    return NULL;
}

int64_t hl_limits_take(struct hl_limits *l, int64_t app_id, int64_t now_ms)
{
    if (!l || l->rate <= 0)
        return 0;
    int64_t wait = 0;
    pthread_mutex_lock(&l->mu);
    struct bucket *b = bucket_of(l, app_id, now_ms);
    if (b) {
        b->tokens = refill(l, b, now_ms);
        b->at_ms = now_ms;
        if (b->tokens >= MILLI)
            b->tokens -= MILLI;
        else
            wait = (MILLI - b->tokens + l->rate - 1) / l->rate;
    } else if (!l->warned) {
        l->warned = 1;
        hl_warn("api: more than %d apps are using their request rate at once: the next ones go "
                "unlimited",
                HL_RATE_APPS_MAX * 3 / 4);
    }
    pthread_mutex_unlock(&l->mu);
    return wait;
}

int hl_limits_admit(struct hl_api *api, struct hl_req *rq, struct hl_resp *rs)
{
    int64_t wait = hl_limits_take(api->limits, rq->app.id, hl_mono_ms());
    if (wait == 0)
        return HL_OK;
    int secs = (int)((wait + 999) / 1000);
    char header[16];
    snprintf(header, sizeof(header), "%d", secs);
    hl_resp_error(rs, 429, "rate_limited",
                  "this app made more than %lld API requests per second (--api-rate, bursts of "
                  "%lld: --api-burst) on this node; retry after %d s",
                  (long long)api->cfg.api_rate, (long long)api->cfg.api_burst, secs);
    hl_resp_header(rs, "Retry-After", header);
    return HL_EREFUSED;
}

/* ---- storage ---- */

void hl_limits_storage_lock(struct hl_limits *l, int64_t app_id)
{
    if (l)
        pthread_mutex_lock(&l->storage[(uint64_t)app_id % STORAGE_LOCKS]);
}

void hl_limits_storage_unlock(struct hl_limits *l, int64_t app_id)
{
    if (l)
        pthread_mutex_unlock(&l->storage[(uint64_t)app_id % STORAGE_LOCKS]);
}

int hl_limits_storage_check(struct hl_api *api, int64_t app_id, int64_t adding, struct hl_resp *rs)
{
    int64_t max = api->cfg.max_app_storage, used = 0;
    if (max <= 0)
        return HL_OK;
    int rc = hl_store_app_storage(api->store, app_id, &used);
    if (rc) {
        hl_resp_store_error(rs, rc);
        return rc;
    }
    if (used + adding <= max)
        return HL_OK;
    hl_resp_error(rs, 413, "app_storage_full",
                  "this app's context files would take %lld bytes, more than the %lld that "
                  "--max-app-storage allows (%lld in use); delete files to make room",
                  (long long)(used + adding), (long long)max, (long long)used);
    return HL_ETOOBIG;
}
