/* The background pruner of `hookline serve --retention`: one thread that keeps the database to
 * the retention, without pausing the API.
 *
 * It runs passes over the old events (store.h's hl_store_prune has the rule of what may go) in
 * small steps: each step removes what one scan found in one short write transaction, sized so
 * that it takes about 2 ms where every write waits for it (SQLite's one writer,
 * hl_store_one_writer) and about 50 ms on PostgreSQL, where nothing else waits for the rows it
 * deletes; the thread waits three times as long between steps. A pass resumes where the last one
 * ended (what is before that was removed, or is owed); every half retention (at most every
 * 10 minutes) a pass starts from the beginning again, for owed deliveries that have become final
 * since (a dispatcher more than a retention behind leaves many). A pruner that falls
 * seconds behind (a machine so busy that its clock-timed steps shrink) keeps larger steps and
 * shorter waits until it has caught up (hl_prune_pace_done). After a pass it drops expired
 * idempotency keys and gives freed space back (hl_store_release_space), then sleeps a
 * fiftieth of the retention (1 s to 60 s), so the database holds about the retention plus
 * that much. On PostgreSQL every node runs one; they take turns (a step that finds another
 * node's under way ends the pass). */
#ifndef HL_PRUNE_H
#define HL_PRUNE_H

#include <stdint.h>

#include "store/store.h"

/* How big a prune step is and how long to wait after it: the one rule for the server's pruner
 * and `hookline prune`. The number of events a step removes follows how long the last steps
 * held the writer, aiming at target_us; the wait after a step is three times what it took. */
struct hl_prune_pace {
    size_t step;       /* most events the next step removes */
    int64_t target_us; /* how long a step may take on this backend */
};

/* Starts a pace for st's backend (hl_store_one_writer). */
void hl_prune_pace_init(struct hl_prune_pace *pc, struct hl_store *st);
/* Sets q's max_events and scan for the next step. */
void hl_prune_pace_step(const struct hl_prune_pace *pc, struct hl_prune *q);
/* After a step: adapts the step to what r took; returns how long to wait (ms) before the
 * next one. lag_ms: how much of the old events is still to go (the prune's before minus
 * r->last_at; 0 when done, or for a one-off run that need not keep up with anything): a
 * pruner seconds behind keeps its steps and waits to a size that catches up. */
int64_t hl_prune_pace_done(struct hl_prune_pace *pc, const struct hl_prune_result *r,
                           int64_t lag_ms);

struct hl_pruner_config {
    int64_t retention_ms; /* events older than this go (> 0) */
};

struct hl_pruner;

/* Starts the pruner on st (which must outlive it). Returns 0 or HL_ENOMEM/HL_EINVAL. */
int hl_pruner_start(struct hl_store *st, const struct hl_pruner_config *cfg,
                    struct hl_pruner **out);
/* Stops it (the step under way finishes first) and frees it. NULL is fine. */
void hl_pruner_stop(struct hl_pruner *p);

#endif
