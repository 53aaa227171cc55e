/* The dispatcher: a transfer thread driving a libcurl multi handle (transfer.c), and a
 * bookkeeper thread doing all of its store work (bookkeeper.c). What each owns, and the one place
 * they meet, is written down in dispatch.h.
 *
 * Invariants:
 * - The bookkeeper is woken by every commit that made deliveries (hl_store_notify), by finished
 *   attempts, and by the transfer thread when a busy webhook has room; otherwise it sleeps until
 *   the next due retry (and looks every --sweep, 1 s by default, for lapsed leases). It never
 * sleep-polls.
 * - A commit's new deliveries are claimed by id, in the order they were made (when the store
 *   can: hl_claim.fresh), so a backlog elsewhere does not slow them; the claim that visits
 *   every webhook with pending work runs for due retries, for webhooks no longer busy, and in
 *   the sweep.
 * - A delivery is claimed under a lease before its attempt and recorded after it; attempt rows
 *   and delivery states are written in batches (one transaction per bookkeeper turn, shared with
 *   the API's group commit on SQLite). While the bookkeeper writes, transfers go on: claims run
 *   ahead of the transfers by a bounded queue.
 * - Claimed, in flight and unrecorded together never exceed max_inflight.
 * - max_inflight is shared fairly: an app holding jobs (claimed, held back or in flight) holds at
 *   most its share (hl_share in dispatch.h: an even split of seven eighths between the apps
 *   holding jobs; the last eighth stays free for an app whose deliveries fall due meanwhile),
 *   and each of its webhooks at most its share of the app's. Claims take the apps in turn, and
 *   each app's webhooks in turn (not the oldest due first), each within its room; jobs claimed
 *   and not yet counted by the transfer thread are taken off the shares at once. So an app whose
 *   endpoints hang until the timeout cannot stall the others' deliveries, nor can one webhook
 *   stall the rest of its app's; and no app has more attempts in flight than its share.
 * - A webhook, and a host, never has more than per_host attempts in flight: jobs over the cap are
 *   held back here (libcurl never queues a handle), and a webhook with a full queue of them is
 *   not claimed for, so one slow or dead endpoint never delays the others.
 * - Success is a 2xx within timeout_ms, connect and answer together; redirects are not followed.
 *   What any other answer means (retry, fail, disable the webhook) is hl_retry_outcome's word
 *   (retry.h); the store applies it as it records.
 * - The per-host cap counts hosts as libcurl pools connections (hl_url_host_key, target.h).
 */
#ifndef HL_DISPATCHER_H
#define HL_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "common/metric.h"
#include "delivery/retry.h"
#include "delivery/target.h"
#include "store/store.h"

/* The first bytes of a receiver's answer kept with each attempt. */
#define HL_RESPONSE_KEEP 4096

/* Filled from serve's options; their defaults are in the option table (common/config.c). */
struct hl_dispatcher_config {
    struct hl_retry retry;    /* --retry-schedule */
    int64_t timeout_ms;       /* per attempt, connect and answer (--timeout) */
    size_t max_inflight;      /* concurrent attempts (--max-inflight) */
    long per_host;            /* concurrent attempts per webhook and per host (= connections) */
    int production;           /* refuse private addresses at connect time */
    struct hl_netlist allow;  /* ranges allowed even so */
    int64_t disable_after_ms; /* disable a webhook failing this long (0: never) */
    int64_t lease_ms;         /* how long a claim holds a delivery (--lease) */
    int64_t sweep_ms;         /* how often to claim with no wake-up (--sweep): lapsed leases */
    int64_t silence_sweep_ms; /* how often to look for silent webhooks (issue 21); 0: never */
    int breaker_after;        /* failed attempts in a row that open a webhook's breaker */
    int64_t defer_after;      /* deliveries waiting for a first attempt that make a webhook
                               * defer (store.h, hl_store_defer_step); 0: never */
};

struct hl_dispatcher;

/* Starts the dispatcher's two threads on st (borrowed; it must outlive the dispatcher). */
int hl_dispatcher_start(struct hl_store *st, const struct hl_dispatcher_config *c,
                        struct hl_dispatcher **out);
/* Stops claiming, lets attempts in flight finish (bounded by the timeout), records them, and
 * frees the dispatcher. NULL is fine. */
void hl_dispatcher_stop(struct hl_dispatcher *d);

/* Counters for operators. */
struct hl_dispatcher_stats {
    uint64_t attempts, succeeded, failed;
    size_t inflight;
    int64_t turned_at; /* monotonic ms of the bookkeeper's last turn (at least once a second) */
    int stopping;      /* hl_dispatcher_stop was called */
};
/* Copies the counters. */
void hl_dispatcher_stats(struct hl_dispatcher *d, struct hl_dispatcher_stats *out);
/* This dispatcher's attempt counters and histograms (common/metric.h), which live as long as d:
 * read them with relaxed atomic loads while they move. */
const struct hl_attempt_metrics *hl_dispatcher_metrics(const struct hl_dispatcher *d);

/* Sets the function the bookkeeper calls after each batch of attempts it recorded (a, n
 * borrowed for the call; NULL: none). Returns once no call of the previous function is under
 * way, so that its argument may then be freed. */
void hl_dispatcher_on_recorded(struct hl_dispatcher *d,
                               void (*fn)(void *arg, const struct hl_attempt *a, size_t n),
                               void *arg);

#endif
