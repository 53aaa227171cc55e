/* The dispatcher's insides, private to src/delivery: the two threads of dispatcher.h and the one
 * place where they meet.
 *
 * - The transfer thread (transfer.c) owns the curl multi handle, the transfers, the jobs held
 *   back by a cap and the per-webhook and per-host counts. It never calls the store.
 * - The bookkeeper (bookkeeper.c) owns every store call: claims, records, the next due time.
 * - They meet only in struct hl_handover, under its mutex, in three places: claimed jobs
 *   (`ready`, bookkeeper → transfers), finished attempts (`results`, transfers → bookkeeper) and
 *   what the transfer thread has taken on (`net_busy`, `skip`), which bounds the next claim.
 * - dispatcher.c makes the hand-over, starts and stops both threads and hands the store's
 *   wake-ups to the bookkeeper.
 */
#ifndef HL_DELIVERY_DISPATCH_H
#define HL_DELIVERY_DISPATCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "delivery/dispatcher.h"
#include "store/store.h"

/* A finished attempt on its way to the bookkeeper; its error text and response bytes follow it
 * in the same allocation (one free). */
struct hl_result {
    struct hl_attempt a;
};

/* The hand-over between the two threads. Every field is read and written under mu. Each array
 * holds cap = max_inflight + 1 entries: claims are bounded by the room left below max_inflight,
 * so none of them can overflow. */
struct hl_handover {
    pthread_mutex_t mu;
    pthread_cond_t cv;    /* the bookkeeper waits here: results, commits, room, stop */
    int stop;             /* set by hl_dispatcher_stop */
    int net_done;         /* the transfer thread has published its last results */
    struct hl_job *ready; /* claimed, not yet taken by the transfer thread (owned here) */
    size_t nready;
    struct hl_result **results; /* finished attempts waiting to be recorded (owned here) */
    size_t nresults;
    size_t recording; /* results the bookkeeper has taken and not yet recorded */
    size_t net_busy;  /* jobs the transfer thread holds: in flight or held back */
    int64_t *skip;    /* webhooks not to claim for: saturated, or with jobs held back */
    size_t nskip;
    int room_freed; /* the skip list lost a webhook since the last claim */
    struct hl_dispatcher_stats stats;

    /* What to tell after a batch is recorded (hl_dispatcher_on_recorded): under hook_mu, not
     * mu, so that a slow listener never holds up the transfer thread. */
    pthread_mutex_t hook_mu;
    void (*on_recorded)(void *arg, const struct hl_attempt *a, size_t n);
    void *on_recorded_arg;
};

/* ---- the transfer thread (transfer.c) ---- */

struct hl_transfer;

/* Makes the transfer thread's state for c and h (both borrowed; they outlive it). Returns 0 or
 * HL_ENOMEM. */
int hl_transfer_new(const struct hl_dispatcher_config *c, struct hl_handover *h,
                    struct hl_transfer **out);
/* The thread: takes ready jobs, runs their transfers and publishes results and room until
 * h->stop; then lets transfers in flight finish (bounded by the timeout), publishes them and sets
 * h->net_done. arg is the struct hl_transfer. */
void *hl_transfer_run(void *arg);
/* Wakes the transfer thread from its poll (ready jobs, stop). Any thread may call it. */
void hl_transfer_wake(struct hl_transfer *t);
/* Frees t once its thread has ended (or never ran). Transfers still in flight are abandoned and
 * held-back jobs dropped: their leases lapse and they are tried again. NULL is fine. */
void hl_transfer_free(struct hl_transfer *t);

/* ---- the bookkeeper (bookkeeper.c) ---- */

struct hl_bookkeeper;

/* Makes the bookkeeper's state for st, c and h, waking t when it hands jobs over (all
 * borrowed; they outlive it). Call it before the store's wake-ups are routed to h. Returns 0 or
 * HL_ENOMEM. */
int hl_bookkeeper_new(struct hl_store *st, const struct hl_dispatcher_config *c,
                      struct hl_handover *h, struct hl_transfer *t, struct hl_bookkeeper **out);
/* The thread: claims for the transfer thread and records its results until h->stop and
 * h->net_done, recording whatever was published before. arg is the struct hl_bookkeeper. */
void *hl_bookkeeper_run(void *arg);
/* Frees b once its thread has ended (or never ran). NULL is fine. */
void hl_bookkeeper_free(struct hl_bookkeeper *b);

#endif
