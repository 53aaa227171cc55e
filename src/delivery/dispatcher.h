/* The dispatcher: one thread driving a libcurl multi handle.
 *
 * Invariants:
 * - It is woken by every commit that made deliveries (hl_store_notify → curl_multi_wakeup), and
 *   otherwise sleeps until the next due retry or a transfer event; it never sleep-polls.
 * - A delivery is claimed under a lease before its attempt and recorded after it; attempt rows
 *   and delivery states are written in batches (one transaction per loop turn).
 * - A webhook never has more than per_host attempts in flight, and its other due deliveries are
 *   not claimed meanwhile, so one slow or dead endpoint never delays the others.
 * - Success is a 2xx within timeout_ms, connect and answer together; redirects are not followed.
 */
#ifndef HL_DISPATCHER_H
#define HL_DISPATCHER_H

#include <stddef.h>
#include <stdint.h>

#include "delivery/retry.h"
#include "delivery/target.h"
#include "store/store.h"

/* The first bytes of a receiver's answer kept with each attempt. */
#define HL_RESPONSE_KEEP 4096

struct hl_dispatcher_config {
    struct hl_retry retry;
    int64_t timeout_ms;       /* per attempt, connect and answer (default 5000) */
    size_t max_inflight;      /* concurrent attempts (default 256) */
    long per_host;            /* concurrent attempts per webhook and connections per host */
    int production;           /* refuse private addresses at connect time */
    struct hl_netlist allow;  /* ranges allowed even so */
    int64_t disable_after_ms; /* disable a webhook failing this long (0: never) */
    int64_t lease_ms;         /* how long a claim holds a delivery (default 60 s) */
};

struct hl_dispatcher;

/* Fills c with the defaults above. */
void hl_dispatcher_config_default(struct hl_dispatcher_config *c);
/* Starts the dispatcher thread on st (borrowed; it must outlive the dispatcher). */
int hl_dispatcher_start(struct hl_store *st, const struct hl_dispatcher_config *c,
                        struct hl_dispatcher **out);
/* Stops claiming, lets attempts in flight finish (bounded by the timeout), records them, and
 * frees the dispatcher. NULL is fine. */
void hl_dispatcher_stop(struct hl_dispatcher *d);

/* Counters for operators. */
struct hl_dispatcher_stats {
    uint64_t attempts, succeeded, failed;
    size_t inflight;
};
/* Copies the counters. */
void hl_dispatcher_stats(struct hl_dispatcher *d, struct hl_dispatcher_stats *out);

#endif
