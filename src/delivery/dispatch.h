/* The dispatcher's insides, private to src/delivery: the two threads of dispatcher.h and the one
 * place where they meet.
 *
 * - The transfer thread (transfer.c) owns the curl multi handle, the transfers, the jobs held
 *   back by a cap and the per-webhook and per-host counts. It never calls the store.
 * - The bookkeeper (bookkeeper.c) owns every store call: claims, records, the next due time.
 *   On SQLite a group commit also claims the deliveries it made, on the thread leading it,
 *   through the bookkeeper's hook (hl_bookkeeper_commit_claim), and hands them over likewise.
 * - They meet only in struct hl_handover, under its mutex, in three places: claimed jobs
 *   (`ready`, claims → transfers), finished attempts (`results`, transfers → bookkeeper) and
 *   what the transfer thread has taken on (`net_busy`, `shares`), which bounds the next claim:
 *   in all, by the room below max_inflight; per app, by its fair share (hl_share over the apps
 *   holding jobs); per webhook, by its share of its app's and by the depth of its queue.
 * - dispatcher.c makes the hand-over, starts and stops both threads and hands the store's
 *   wake-ups to the bookkeeper.
 */
#ifndef HL_DELIVERY_DISPATCH_H
#define HL_DELIVERY_DISPATCH_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "common/metric.h"
#include "delivery/dispatcher.h"
#include "store/store.h"

/* A finished attempt on its way to the bookkeeper; its error text and response bytes follow it
 * in the same allocation (one free). */
struct hl_result {
    struct hl_attempt a;
};

/* The fair shares of max_inflight, as the transfer thread last counted them: what the next
 * claim may take, and for whom (struct hl_claim's fields of the same names). Each array holds
 * max_inflight + 1 entries: no more apps or webhooks than jobs can hold jobs. */
struct hl_shares {
    int64_t *skip; /* webhooks not to claim for: at their share, or with a full queue */
    size_t nskip;
    int64_t *skip_apps; /* apps at their share */
    size_t nskip_apps;
    int64_t *room_apps; /* apps holding jobs below their share, */
    int64_t *rooms;     /* and how many more jobs each may hold */
    size_t nrooms;
    int64_t room_new;       /* how many an app holding none may take */
    int64_t *room_webhooks; /* the same for webhooks */
    int64_t *wrooms;
    size_t nwrooms;
    int64_t wroom_new;
};

/* The share of total that each of n holders may have: an eighth of it is kept for holders
 * yet to come (an app whose first deliveries fall due while the others hold the rest, which may
 * hang for a whole timeout), the rest is split evenly; never below HL_SHARE_FLOOR. */
size_t hl_share(size_t total, size_t n);
#define HL_SHARE_FLOOR 2
/* What claims may give an app holding none, napps others holding some, until the transfer thread
 * has counted what it took: its share of total, less an eighth. Until that count, every webhook
 * of the app is new to the claims, and those that come first (a backlog on slow endpoints) could
 * take the whole share, leaving the app's later ones nothing until their attempts end. */
size_t hl_share_first(size_t total, size_t napps);

/* Allocates the arrays of sh for cap entries each. Returns 0 or HL_ENOMEM (sh then holds
 * nothing to free). */
int hl_shares_init(struct hl_shares *sh, size_t cap);
/* Copies src into dst, whose arrays are as large. */
void hl_shares_copy(struct hl_shares *dst, const struct hl_shares *src);
/* Halves every room in sh, rounding up or down (a room for newcomers stays at least 1): the
 * part of one of two claims that may run with copies of the same shares. */
void hl_shares_halve(struct hl_shares *sh, int up);
/* Takes jobs[0..n), claimed and not yet counted by the transfer thread, off the rooms of their
 * apps and webhooks in sh (one that held none had room_new, wroom_new); one whose room is used
 * up goes into skip_apps, skip. The arrays cannot overflow: apps and webhooks holding or claiming
 * jobs are no more than the jobs, and those are at most max_inflight. */
void hl_shares_spend(struct hl_shares *sh, const struct hl_job *jobs, size_t n);
/* Frees what sh holds. */
void hl_shares_free(struct hl_shares *sh);

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
    size_t recording;        /* results the bookkeeper has taken and not yet recorded */
    uint64_t recorded;       /* results the bookkeeper has recorded (or failed to), in order */
    uint64_t ready_since;    /* recorded when the oldest of ready was claimed */
    size_t net_busy;         /* jobs the transfer thread holds: in flight or held back */
    size_t claiming;         /* room taken by claims under way (the bookkeeper's, a commit's) */
    int turn;                /* the bookkeeper's claims are under way (with a copy of shares) */
    int commit_claim;        /* a commit's claim is under way (with a copy of shares) */
    struct hl_shares shares; /* what the next claim may take, and for whom */
    int room_freed;          /* a webhook or an app left the skip lists since the last claim */
    struct hl_dispatcher_stats stats;
    /* The transfer thread counts every attempt here as it decides its outcome: atomics, not
     * under mu (common/metric.h); /metrics reads them (hl_dispatcher_metrics). */
    struct hl_attempt_metrics metrics;

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
/* The claim a group commit makes for b (hl_store_claim_hook), within the room and the shares
 * b's own claims use. */
struct hl_claim_hook hl_bookkeeper_commit_claim(struct hl_bookkeeper *b);
/* Frees b once its thread has ended (or never ran) and its commit claim is no longer set. NULL is
 * fine. */
void hl_bookkeeper_free(struct hl_bookkeeper *b);

#endif
