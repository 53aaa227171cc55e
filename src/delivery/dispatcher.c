/* The dispatcher as a whole (see dispatcher.h and dispatch.h): the hand-over the two threads meet
 * in, their start and stop, and the store's wake-ups routed to the bookkeeper. */
#include "delivery/dispatcher.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/thread.h"
#include "delivery/dispatch.h"

struct hl_dispatcher {
    struct hl_store *st;
    struct hl_dispatcher_config cfg;
    struct hl_handover ho;
    struct hl_transfer *net;
    struct hl_bookkeeper *book;
    pthread_t net_thread, book_thread;
};

/* ---- fair shares ---- */

size_t hl_share(size_t total, size_t n)
{
    size_t s = (total - total / 8) / (n ? n : 1);
    return s < HL_SHARE_FLOOR ? HL_SHARE_FLOOR : s;
}

size_t hl_share_first(size_t total, size_t napps)
{
    return hl_share(hl_share(total, napps + 1), 1);
}

int hl_shares_init(struct hl_shares *sh, size_t cap)
{
    memset(sh, 0, sizeof(*sh));
    int64_t **arrays[] = {&sh->skip,  &sh->skip_apps,     &sh->room_apps,
                          &sh->rooms, &sh->room_webhooks, &sh->wrooms};
    for (size_t i = 0; i < sizeof(arrays) / sizeof(arrays[0]); i++) {
        if (!(*arrays[i] = calloc(cap, sizeof(int64_t)))) {
            hl_shares_free(sh);
            return HL_ENOMEM;
        }
    }
    return HL_OK;
}

static void copy_ids(int64_t *dst, size_t *ndst, const int64_t *src, size_t n)
{
    memcpy(dst, src, n * sizeof(*src));
    *ndst = n;
}

void hl_shares_copy(struct hl_shares *dst, const struct hl_shares *src)
{
    copy_ids(dst->skip, &dst->nskip, src->skip, src->nskip);
    copy_ids(dst->skip_apps, &dst->nskip_apps, src->skip_apps, src->nskip_apps);
    copy_ids(dst->room_apps, &dst->nrooms, src->room_apps, src->nrooms);
    copy_ids(dst->rooms, &dst->nrooms, src->rooms, src->nrooms);
    copy_ids(dst->room_webhooks, &dst->nwrooms, src->room_webhooks, src->nwrooms);
    copy_ids(dst->wrooms, &dst->nwrooms, src->wrooms, src->nwrooms);
    dst->room_new = src->room_new;
    dst->wroom_new = src->wroom_new;
}

/* Takes one job off the room of id in (ids, rooms) (one not there had fresh, and is added);
 * when that room is used up, id moves to the skip list. Nothing when id is in the skip list. */
static void spend_one(int64_t id, int64_t *skip, size_t *nskip, int64_t *ids, int64_t *rooms,
                      size_t *n, int64_t fresh)
{
    size_t i = 0;
    while (i < *nskip && skip[i] != id)
        i++;
    if (i < *nskip)
        return;
    i = 0;
    while (i < *n && ids[i] != id)
        i++;
    if (i == *n) {
        ids[i] = id;
        rooms[i] = fresh;
        (*n)++;
    }
    if (--rooms[i] > 0)
        return;
    skip[(*nskip)++] = id;
    ids[i] = ids[--*n];
    rooms[i] = rooms[*n];
}

void hl_shares_spend(struct hl_shares *sh, const struct hl_job *jobs, size_t n)
{
    if (sh->room_new <= 0)
        return; /* no shares */
    for (size_t k = 0; k < n; k++) {
        spend_one(jobs[k].app_id, sh->skip_apps, &sh->nskip_apps, sh->room_apps, sh->rooms,
                  &sh->nrooms, sh->room_new);
        spend_one(jobs[k].webhook_id, sh->skip, &sh->nskip, sh->room_webhooks, sh->wrooms,
                  &sh->nwrooms, sh->wroom_new);
    }
}

static int64_t half(int64_t room, int up)
{
    return up ? (room + 1) / 2 : room / 2;
}

void hl_shares_halve(struct hl_shares *sh, int up)
{
    for (size_t i = 0; i < sh->nrooms; i++)
        sh->rooms[i] = half(sh->rooms[i], up);
    for (size_t i = 0; i < sh->nwrooms; i++)
        sh->wrooms[i] = half(sh->wrooms[i], up);
    /* 0 there means no bound at all */
    if (sh->room_new > 1)
        sh->room_new = half(sh->room_new, up);
    if (sh->wroom_new > 1)
        sh->wroom_new = half(sh->wroom_new, up);
}

void hl_shares_free(struct hl_shares *sh)
{
    free(sh->skip);
    free(sh->skip_apps);
    free(sh->room_apps);
    free(sh->rooms);
    free(sh->room_webhooks);
    free(sh->wrooms);
    memset(sh, 0, sizeof(*sh));
}

/* ---- the hand-over ---- */

static int handover_init(struct hl_handover *ho, size_t cap)
{
    memset(ho, 0, sizeof(*ho));
    ho->ready = calloc(cap, sizeof(*ho->ready));
    ho->results = calloc(cap, sizeof(*ho->results));
    if (!ho->ready || !ho->results || hl_shares_init(&ho->shares, cap))
        goto fail;
    ho->shares.room_new = (int64_t)hl_share_first(cap - 1, 0);
    if (pthread_mutex_init(&ho->mu, NULL) != 0)
        goto fail;
    if (pthread_mutex_init(&ho->hook_mu, NULL) != 0) {
        pthread_mutex_destroy(&ho->mu);
        goto fail;
    }
    ho->stats.turned_at = hl_mono_ms();
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the bookkeeper's timed waits */
    int rc = pthread_cond_init(&ho->cv, &ca);
    pthread_condattr_destroy(&ca);
    if (rc == 0)
        return HL_OK;
    pthread_mutex_destroy(&ho->hook_mu);
    pthread_mutex_destroy(&ho->mu);
fail:
    free(ho->ready);
    free(ho->results);
    hl_shares_free(&ho->shares);
    return HL_ENOMEM;
}

/* Frees the hand-over once both threads have ended; jobs never taken lose their leases. */
static void handover_free(struct hl_handover *ho)
{
    for (size_t i = 0; i < ho->nready; i++)
        hl_job_clear(&ho->ready[i]);
    for (size_t i = 0; i < ho->nresults; i++)
        free(ho->results[i]);
    free(ho->ready);
    free(ho->results);
    hl_shares_free(&ho->shares);
    pthread_cond_destroy(&ho->cv);
    pthread_mutex_destroy(&ho->hook_mu);
    pthread_mutex_destroy(&ho->mu);
}

/* The store's wake-up: a commit made deliveries. */
static void wakeup(void *arg)
{
    struct hl_handover *ho = arg;
    pthread_mutex_lock(&ho->mu);
    pthread_cond_signal(&ho->cv);
    pthread_mutex_unlock(&ho->mu);
}

/* Asks both threads to end (each finishes as hl_dispatcher_stop says). */
static void ask_stop(struct hl_dispatcher *d)
{
    pthread_mutex_lock(&d->ho.mu);
    d->ho.stop = 1;
    d->ho.stats.stopping = 1;
    pthread_cond_signal(&d->ho.cv);
    pthread_mutex_unlock(&d->ho.mu);
    hl_transfer_wake(d->net);
}

/* ---- start and stop ---- */

static void curl_init_once(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void dispatcher_free(struct hl_dispatcher *d)
{
    hl_bookkeeper_free(d->book);
    hl_transfer_free(d->net);
    handover_free(&d->ho);
    free(d);
}

int hl_dispatcher_start(struct hl_store *st, const struct hl_dispatcher_config *c,
                        struct hl_dispatcher **out)
{
    *out = NULL;
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, curl_init_once);
    struct hl_dispatcher *d = calloc(1, sizeof(*d));
    if (!d)
        return HL_ENOMEM;
    d->st = st;
    d->cfg = *c;
    if (handover_init(&d->ho, d->cfg.max_inflight + 1)) {
        free(d);
        return HL_ENOMEM;
    }
    /* Until the transfer thread has counted anything: one app, one webhook, its queue's depth. */
    int64_t deep = 2 * (int64_t)d->cfg.per_host;
    d->ho.shares.wroom_new = d->ho.shares.room_new < deep ? d->ho.shares.room_new : deep;
    hl_store_release_leases(st);
    if (hl_transfer_new(&d->cfg, &d->ho, &d->net) ||
        hl_bookkeeper_new(st, &d->cfg, &d->ho, d->net, &d->book)) {
        dispatcher_free(d);
        return HL_ENOMEM;
    }
    hl_store_on_notify(st, wakeup, &d->ho);
    if (hl_thread_start(&d->net_thread, hl_transfer_run, d->net, "hl-transfer") != 0)
        goto bad;
    if (hl_thread_start(&d->book_thread, hl_bookkeeper_run, d->book, "hl-bookkeeper") != 0) {
        ask_stop(d);
        pthread_join(d->net_thread, NULL);
        goto bad;
    }
    /* Commits claim what they make for us (SQLite): out the moment they commit. */
    struct hl_claim_hook hook = hl_bookkeeper_commit_claim(d->book);
    hl_store_claim_hook(st, &hook);
    *out = d;
    return HL_OK;
bad:
    hl_store_on_notify(st, NULL, NULL);
    dispatcher_free(d);
    return HL_ENOMEM;
}

void hl_dispatcher_stop(struct hl_dispatcher *d)
{
    if (!d)
        return;
    /* No commit claims for us any more (it returns once a batch using it is over); the
     * transfer thread lets attempts in flight finish (bounded by the timeout); the bookkeeper
     * records what it hands over, then both end. */
    hl_store_claim_hook(d->st, NULL);
    ask_stop(d);
    pthread_join(d->net_thread, NULL);
    pthread_join(d->book_thread, NULL);
    hl_store_on_notify(d->st, NULL, NULL);
    /* Abandoned transfers and held-back jobs: their leases lapse and they are tried again. */
    dispatcher_free(d);
}

void hl_dispatcher_on_recorded(struct hl_dispatcher *d,
                               void (*fn)(void *arg, const struct hl_attempt *a, size_t n),
                               void *arg)
{
    pthread_mutex_lock(&d->ho.hook_mu);
    d->ho.on_recorded = fn;
    d->ho.on_recorded_arg = arg;
    pthread_mutex_unlock(&d->ho.hook_mu);
}

const struct hl_attempt_metrics *hl_dispatcher_metrics(const struct hl_dispatcher *d)
{
    return &d->ho.metrics;
}

void hl_dispatcher_stats(struct hl_dispatcher *d, struct hl_dispatcher_stats *out)
{
    pthread_mutex_lock(&d->ho.mu);
    *out = d->ho.stats;
    pthread_mutex_unlock(&d->ho.mu);
}
