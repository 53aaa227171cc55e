/* GET /metrics: the Prometheus text operators scrape. The queue figures come from the store; the
 * attempt counters belong to this node's dispatcher and reach the API through the
 * delivery_counters hook (struct hl_api_hooks) that main wires in. */
#ifndef HL_METRICS_H
#define HL_METRICS_H

#include <stddef.h>
#include <stdint.h>

/* This node's attempt counters since it started, as /metrics shows them. */
struct hl_delivery_counters {
    uint64_t succeeded, failed; /* attempts by outcome */
    size_t inflight;            /* attempts in flight now */
};

#endif
