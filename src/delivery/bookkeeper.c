/* The bookkeeper (see dispatch.h): every store call the dispatcher makes. It claims due
 * deliveries for the transfer thread, records what their attempts ended in, and keeps track of
 * when the next delivery falls due. Everything here but the hand-over (b->ho, under its mutex)
 * belongs to this thread alone, except the commit claim's fields: on SQLite each group commit
 * claims the deliveries it made in its own transaction (hl_store_claim_hook), on the thread that
 * leads it, within the same room and shares (ho->claiming keeps the two claims' rooms apart). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "delivery/dispatch.h"

struct hl_bookkeeper {
    struct hl_store *st;
    const struct hl_dispatcher_config *cfg;
    struct hl_handover *ho;
    struct hl_transfer *net; /* woken when jobs are handed over */
    uint64_t seen_seq;       /* the store's wake sequence at the last claim */
    int64_t next_due;        /* wall ms of the next due delivery we know of; 0: ask the store */
    int claim_full;          /* the last claim filled its batch: more may be due */
    struct hl_claim_cursor fresh; /* where the claims of new deliveries (claim_fresh) are */
    int fresh_full;               /* the last claim of new deliveries filled its batch */
    int more_due;             /* the last claim left due deliveries behind (a webhook's share of a
                               * claim is bounded, and busy webhooks are skipped) */
    int64_t last_claim_ms;    /* monotonic time of the last claim */
    struct hl_result **batch; /* results being recorded */
    struct hl_shares shares;  /* the shares as the last claim saw them */
    struct hl_attempt *attempts;
    int64_t silence_at; /* monotonic ms of the last silence sweep (issue 21) */
    /* Under ho->mu: every delivery up to this id was seen by a claim of new ones, this thread's
     * or a commit's that saw all its batch made; the cursor may skip to it. */
    int64_t fresh_seen;
    int64_t commit_claimed_ms; /* under ho->mu: monotonic time a commit last asked to claim */
    /* The commit claim's (commit_claim_begin to _end; one batch at a time): */
    struct hl_shares commit_sh;       /* the shares it claims within */
    size_t commit_room;               /* the room it took (ho->claiming) */
    int64_t commit_lease;             /* its leases' end */
    int64_t fold_at;                  /* monotonic ms of the last fold of the store's counters */
    int64_t defer_at, defer_enter_at; /* monotonic ms of the last defer step, and the last that
                                       * looked for webhooks to begin deferring */
    int64_t defer_cursor;             /* where the next defer step goes on */
    int deferring;  /* webhooks may defer (the last step said so; at start, until a step looks) */
    int defer_full; /* the last defer step did all it may */
};

/* Gives claimed jobs (and the array) to the transfer thread, each with its lease, and gives
 * back the room the claim took (ho->claiming). Until the transfer thread counts them, they are
 * taken off the shares it published: the next claim must not hand out the same room again.
 * (Two claims under way at once, the bookkeeper's and a commit's, each claim within half of
 * every room: see hl_bookkeeper_run and commit_claim_begin. The first commit after a second
 * without any commit may find a turn under way that took whole rooms: then a webhook may hold
 * half its room again, once, until the transfer thread's next count.) */
static void hand_over(struct hl_bookkeeper *b, struct hl_job *jobs, size_t n, int64_t lease_until,
                      size_t took)
{
    for (size_t i = 0; i < n; i++)
        jobs[i].lease_until = lease_until;
    pthread_mutex_lock(&b->ho->mu);
    /* ready_since: the records counted when the oldest ready job was claimed. A claim on this
     * thread runs between records; a commit's claim runs inside its batch, before any record of
     * that batch or a later one is counted: either way every record counted so far was in the
     * store when the job was claimed. */
    if (n) {
        if (b->ho->nready == 0)
            b->ho->ready_since = b->ho->recorded;
        memcpy(b->ho->ready + b->ho->nready, jobs, n * sizeof(*jobs));
        b->ho->nready += n;
        hl_shares_spend(&b->ho->shares, jobs, n);
    }
    b->ho->claiming -= took;
    if (took > n) /* room given back: the bookkeeper may be waiting for some */
        pthread_cond_signal(&b->ho->cv);
    pthread_mutex_unlock(&b->ho->mu);
    if (n)
        hl_transfer_wake(b->net);
    free(jobs);
}

/* The room below max_inflight for a claim (mu held). */
static size_t room_left(const struct hl_bookkeeper *b)
{
    const struct hl_handover *ho = b->ho;
    size_t busy = ho->net_busy + ho->nready + ho->nresults + ho->recording + ho->claiming;
    return busy < b->cfg->max_inflight ? b->cfg->max_inflight - busy : 0;
}

/* ---- claims: every claim call to the store, in one place ---- */

/* Most jobs one claim asks for: a claim holds the writer while it runs. */
#define CLAIM_BATCH_MAX 128
/* Commits claim what they make (hl_store_claim_hook) if one did within this time. */
#define COMMITS_FLOW_MS 1000

/* A claim of up to room jobs within the shares sh (fresh: the cursor of a claim of new ones). */
static struct hl_claim claim_of(const struct hl_bookkeeper *b, int64_t now, size_t room,
                                const struct hl_shares *sh, struct hl_claim_cursor *fresh)
{
    return (struct hl_claim){.now = now,
                             .lease_until = now + b->cfg->lease_ms,
                             .max = room < CLAIM_BATCH_MAX ? room : CLAIM_BATCH_MAX,
                             .skip = sh->skip,
                             .nskip = sh->nskip,
                             .fresh = fresh,
                             .skip_apps = sh->skip_apps,
                             .nskip_apps = sh->nskip_apps,
                             .room_apps = sh->room_apps,
                             .rooms = sh->rooms,
                             .nrooms = sh->nrooms,
                             .room_new = sh->room_new,
                             .room_webhooks = sh->room_webhooks,
                             .wrooms = sh->wrooms,
                             .nwrooms = sh->nwrooms,
                             .wroom_new = sh->wroom_new};
}

/* Claims up to room of the deliveries made since the last such claim, in the order they were
 * made: what a commit's wake-up is for, found without visiting every webhook with pending work
 * (a backlog elsewhere costs it nothing). What it claimed is taken off sh. Returns how many it
 * claimed. */
static size_t claim_fresh(struct hl_bookkeeper *b, size_t room, struct hl_shares *sh)
{
    int64_t now = hl_now_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    struct hl_claim c = claim_of(b, now, room, sh, &b->fresh);
    room = c.max;
    int rc = hl_store_claim(b->st, &c, &jobs, &n);
    b->fresh_full = 0;
    if (rc) {
        hl_error("dispatcher: claim of new deliveries failed: %s", hl_strerror(rc));
        b->claim_full = 1; /* the full claim finds them */
        return 0;
    }
    /* Some left behind beyond a share: the claim without a cursor takes them after a record;
     * and there may be more above the cursor. */
    b->fresh_full = n == room || b->fresh.left;
    if (b->fresh.left)
        b->more_due = 1;
    hl_shares_spend(sh, jobs, n); /* for the claim that may follow on the same shares */
    hand_over(b, jobs, n, now + b->cfg->lease_ms, 0);
    return n;
}

/* Claims up to room due deliveries for the transfer thread, the apps (and each app's webhooks)
 * in turn, each within its share. */
static void claim(struct hl_bookkeeper *b, size_t room, const struct hl_shares *sh)
{
    int64_t now = hl_now_ms();
    b->last_claim_ms = hl_mono_ms();
    struct hl_job *jobs = NULL;
    size_t n = 0;
    struct hl_claim c = claim_of(b, now, room, sh, NULL);
    room = c.max;
    int rc = hl_store_claim(b->st, &c, &jobs, &n);
    if (rc) {
        hl_error("dispatcher: claim failed: %s", hl_strerror(rc));
        b->next_due = now + 1000; /* try again in a second, not at once */
        b->claim_full = 0;
        b->more_due = 0;
        return;
    }
    /* Full: the batch, or some webhook's part of it (HL_CLAIM_PER_WEBHOOK): more may be due. */
    b->claim_full = n == room;
    for (size_t i = 0; i < n && !b->claim_full; i++) {
        size_t same = 0;
        for (size_t k = 0; k < n; k++)
            same += jobs[k].webhook_id == jobs[i].webhook_id;
        b->claim_full = same >= HL_CLAIM_PER_WEBHOOK;
    }
    hand_over(b, jobs, n, now + b->cfg->lease_ms, 0);
    b->more_due = 0;
    if (!b->claim_full) {
        int64_t at = 0;
        if (hl_store_next_due(b->st, now, &at) == HL_OK) {
            /* Due but not claimed: held back behind a busy webhook or an app at its share, or
             * beyond a webhook's part of one claim. Claiming again is worth it once attempts
             * have finished (record) or a webhook or an app left the skip lists (room_freed);
             * until then, no busy loop. A claim that took nothing had every due delivery
             * behind the skip lists: then only room_freed is worth a look. */
            b->next_due = at > now ? at : 0;
            b->more_due = at != 0 && at <= now && n > 0;
        }
        /* Due deliveries held back by a webhook's open breaker or spent rate limit: claim again
         * when the first of them may go. */
        if (hl_store_next_release(b->st, now, &at) == HL_OK && at > now &&
            (b->next_due == 0 || at < b->next_due))
            b->next_due = at;
    }
}

/* ---- records ---- */

/* Records a batch of results in one transaction and frees them. */
static void record(struct hl_bookkeeper *b, struct hl_result **batch, size_t n)
{
    for (size_t i = 0; i < n; i++)
        b->attempts[i] = batch[i]->a;
    int rc = hl_store_record(b->st, b->attempts, n);
    if (rc)
        hl_error("dispatcher: could not record %zu attempts: %s (their leases will lapse and "
                 "they will be tried again)",
                 n, hl_strerror(rc));
    pthread_mutex_lock(&b->ho->hook_mu);
    if (rc == HL_OK && b->ho->on_recorded)
        b->ho->on_recorded(b->ho->on_recorded_arg, b->attempts, n);
    pthread_mutex_unlock(&b->ho->hook_mu);
    uint64_t ok = 0;
    for (size_t i = 0; i < n; i++) {
        const struct hl_attempt *a = &b->attempts[i];
        ok += a->outcome == HL_OUT_SUCCESS;
        if (a->outcome == HL_OUT_RETRY && a->next_attempt_at &&
            (b->next_due == 0 || a->next_attempt_at < b->next_due))
            b->next_due = a->next_attempt_at;
        free(batch[i]);
    }
    struct hl_handover *ho = b->ho;
    pthread_mutex_lock(&ho->mu);
    ho->stats.attempts += n;
    ho->stats.succeeded += ok;
    ho->stats.failed += n - ok;
    ho->recording = 0;
    ho->recorded += n; /* every claim made before this record is in ho->ready by now */
    pthread_mutex_unlock(&ho->mu);
}

/* ---- silence alerts (issue 21) ---- */

/* Whether a silence sweep is due (any thread state; reads only the bookkeeper's own fields). */
static int silence_due(const struct hl_bookkeeper *b)
{
    return b->cfg->silence_sweep_ms > 0 && hl_mono_ms() - b->silence_at >= b->cfg->silence_sweep_ms;
}

/* One sweep: the store claims each alert, so nodes sweeping together fire it once. */
static void silence_sweep(struct hl_bookkeeper *b)
{
    b->silence_at = hl_mono_ms();
    int64_t fired = 0;
    int rc = hl_store_silence_sweep(b->st, hl_now_ms(), &fired);
    if (rc)
        hl_error("dispatcher: silence sweep failed: %s", hl_strerror(rc));
    else if (fired)
        hl_info("dispatcher: %lld webhook(s) silent for their silenceAlertSeconds",
                (long long)fired);
}

/* How often the store's counters of sessions gone are folded (hl_store_fold_counts). */
#define FOLD_EVERY_MS 60000

/* Folds the store's counters when due: a failed fold is only done at the next turn. */
static void fold_counts(struct hl_bookkeeper *b)
{
    if (hl_mono_ms() - b->fold_at < FOLD_EVERY_MS)
        return;
    b->fold_at = hl_mono_ms();
    int rc = hl_store_fold_counts(b->st);
    if (rc)
        hl_error("dispatcher: folding the delivery counters failed: %s", hl_strerror(rc));
}

/* Deferred fan-out (store.h, hl_store_defer_step): webhooks that should begin deferring are
 * looked for this often; while some defer, a step makes their owed deliveries this often, or
 * sooner after a step that did all it may (so that a drained backlog refills at up to 50,000 a
 * second, the writer free between steps). */
#define DEFER_ENTER_MS 1000
#define DEFER_STEP_MS 100
#define DEFER_FULL_MS 10

/* Milliseconds until the next defer step is due (<= 0: due); INT64_MAX when there is none.
 * With deferral off, steps go on while webhooks defer: they make what is owed. */
static int64_t defer_wait(const struct hl_bookkeeper *b)
{
    int64_t next = INT64_MAX;
    if (b->cfg->defer_after > 0)
        next = b->defer_enter_at + DEFER_ENTER_MS;
    if (b->deferring) {
        int64_t step = b->defer_at + (b->defer_full ? DEFER_FULL_MS : DEFER_STEP_MS);
        if (step < next)
            next = step;
    }
    return next == INT64_MAX ? INT64_MAX : next - hl_mono_ms();
}

/* One defer step when due: a failed one is done again at the next. */
static void defer_step(struct hl_bookkeeper *b)
{
    if (defer_wait(b) > 0)
        return;
    int64_t mono = hl_mono_ms();
    int enter = b->cfg->defer_after > 0 && mono - b->defer_enter_at >= DEFER_ENTER_MS;
    b->defer_at = mono;
    if (enter)
        b->defer_enter_at = mono;
    struct hl_defer_result r;
    int rc =
        hl_store_defer_step(b->st, hl_now_ms(), b->cfg->defer_after, enter, &b->defer_cursor, &r);
    if (rc) {
        hl_error("dispatcher: deferred fan-out step failed: %s", hl_strerror(rc));
        return;
    }
    b->deferring = r.more;
    b->defer_full = r.full;
    if (r.entered)
        hl_info("dispatcher: %lld webhook(s) began deferring (more than %lld deliveries waiting "
                "for a first attempt)",
                (long long)r.entered, (long long)b->cfg->defer_after);
    if (r.left)
        hl_info("dispatcher: %lld webhook(s) stopped deferring: nothing owed", (long long)r.left);
}

/* ---- when to claim ---- */

/* Retries falling due, and deliveries left behind a busy webhook, are claimed at most this
 * often: retry schedules are seconds apart, and the claim that finds them visits every webhook
 * with pending work, so a backlog's trickle of due retries must not claim at its own pace. */
#define RETRY_CLAIM_GAP_MS 50

/* Whether to claim now, and how much (mu held): *fresh for the deliveries commits made, *full
 * for the walk over every webhook with pending work, *due when that walk is for retries
 * falling due. recorded: results just recorded (progress makes deliveries left behind a busy
 * webhook worth another look). */
static size_t claim_reasons(struct hl_bookkeeper *b, size_t recorded, int *fresh, int *full,
                            int *due)
{
    const struct hl_handover *ho = b->ho;
    int64_t since = hl_mono_ms() - b->last_claim_ms;
    int gap_ok = since >= RETRY_CLAIM_GAP_MS;
    *due = b->next_due && b->next_due <= hl_now_ms() && gap_ok;
    /* Besides commits and due retries, look every sweep_ms: leases lapse (an attempt lost with
     * a node, a claim that outlived a pause) without anyone committing. */
    int sweep = since >= b->cfg->sweep_ms;
    *fresh = hl_store_wake_seq(b->st) != b->seen_seq || b->fresh_full;
    *full = *due || b->claim_full || sweep || ho->room_freed || (recorded && b->more_due && gap_ok);
    return room_left(b);
}

/* How long to sleep (mu held) when nothing is to be done: until the next due retry (no sooner
 * than the gap between claims allows) or the next sweep; with no room, until results free some
 * (they wake us). */
static int64_t idle_ms(const struct hl_bookkeeper *b, size_t room)
{
    if (room == 0)
        return 1000;
    int64_t now = hl_now_ms();
    int64_t since = hl_mono_ms() - b->last_claim_ms;
    int64_t gap = RETRY_CLAIM_GAP_MS - since;
    int64_t wait_ms = b->cfg->sweep_ms - since;
    if (b->next_due && b->next_due - now < wait_ms)
        wait_ms = b->next_due - now;
    if (b->next_due && wait_ms < gap)
        wait_ms = gap;
    /* A turn at least every second, whatever the sweep: turned_at is the dispatcher's
     * heartbeat (/readyz). */
    if (wait_ms > 1000)
        wait_ms = 1000;
    if (b->cfg->silence_sweep_ms > 0) {
        int64_t to_sweep = b->cfg->silence_sweep_ms - (hl_mono_ms() - b->silence_at);
        if (to_sweep < wait_ms)
            wait_ms = to_sweep;
    }
    int64_t to_defer = defer_wait(b);
    if (to_defer < wait_ms)
        wait_ms = to_defer;
    return wait_ms < 1 ? 1 : wait_ms;
}

/* Waits (mu held) for results to record, or for a reason to claim and room to claim for.
 * Returns 0 once stopped and the transfer thread has published its last results. */
static int wait_for_work(struct hl_bookkeeper *b)
{
    struct hl_handover *ho = b->ho;
    for (;;) {
        ho->stats.turned_at = hl_mono_ms();
        if (ho->nresults)
            return 1;
        if (ho->stop) {
            if (ho->net_done)
                return 0;
            pthread_cond_wait(&ho->cv, &ho->mu);
            continue;
        }
        int fresh, full, due;
        size_t room = claim_reasons(b, 0, &fresh, &full, &due);
        if (((fresh || full) && room > 0) || silence_due(b) || defer_wait(b) <= 0)
            return 1;
        struct timespec ts = hl_mono_ts(hl_mono_ms() + idle_ms(b, room));
        pthread_cond_timedwait(&ho->cv, &ho->mu, &ts);
    }
}

void *hl_bookkeeper_run(void *arg)
{
    struct hl_bookkeeper *b = arg;
    struct hl_handover *ho = b->ho;
    struct hl_shares *sh = &b->shares;
    pthread_mutex_lock(&ho->mu);
    while (wait_for_work(b)) {
        size_t n = ho->nresults;
        struct hl_result **tmp = b->batch;
        b->batch = ho->results;
        ho->results = tmp;
        ho->nresults = 0;
        ho->recording = n;
        pthread_mutex_unlock(&ho->mu);

        if (n)
            record(b, b->batch, n);
        if (silence_due(b))
            silence_sweep(b);
        fold_counts(b);
        defer_step(b);

        pthread_mutex_lock(&ho->mu);
        /* A commit's claim under way holds a copy of the shares: the claims here copy them once
         * it has handed over (it will soon: its batch holds the writer they need anyway). */
        while (ho->commit_claim && !ho->stop)
            pthread_cond_wait(&ho->cv, &ho->mu);
        if (ho->stop)
            continue;
        int fresh, full, due;
        size_t room = claim_reasons(b, n, &fresh, &full, &due);
        if (room == 0 || !(fresh || full))
            continue;
        hl_shares_copy(sh, &ho->shares);
        int freed = ho->room_freed;
        ho->room_freed = 0;
        /* While commits claim what they make, this turn takes one batch's worth and half of
         * every room (a commit's claim while it runs takes the other half): its claims wait
         * for the writer, perhaps behind a batch whose own claim is due now. */
        if (hl_mono_ms() - b->commit_claimed_ms < COMMITS_FLOW_MS) {
            if (room > CLAIM_BATCH_MAX)
                room = CLAIM_BATCH_MAX;
            room = room > 1 ? room / 2 : room;
            hl_shares_halve(sh, 0);
        }
        ho->claiming += room;
        ho->turn = 1;
        b->seen_seq = hl_store_wake_seq(b->st);
        int64_t was_due = b->next_due;
        if (due)
            b->next_due = 0;
        if (b->fresh.started && b->fresh_seen > b->fresh.after)
            b->fresh.after = b->fresh_seen; /* commits claimed all they made up to there */
        pthread_mutex_unlock(&ho->mu);
        /* A commit's new deliveries first, by id; the walk over every webhook with pending work
         * only when something else is due (then with half the room at least), or when the
         * wake-up brought nothing new (a resend, a recovery, a webhook enabled again). */
        size_t got = fresh ? claim_fresh(b, full && room > 1 ? room / 2 : room, sh) : 0;
        int walked = (full || got == 0) && got < room;
        if (walked)
            claim(b, room - got, sh);
        pthread_mutex_lock(&ho->mu);
        ho->claiming -= room;
        ho->turn = 0;
        if (full && !walked) { /* its reasons stand for the next turn */
            ho->room_freed |= freed;
            if (due)
                b->next_due = was_due;
        }
        if (b->fresh.after > b->fresh_seen)
            b->fresh_seen = b->fresh.after;
    }
    pthread_mutex_unlock(&ho->mu);
    return NULL;
}

int hl_bookkeeper_new(struct hl_store *st, const struct hl_dispatcher_config *c,
                      struct hl_handover *h, struct hl_transfer *t, struct hl_bookkeeper **out)
{
    *out = NULL;
    struct hl_bookkeeper *b = calloc(1, sizeof(*b));
    if (!b)
        return HL_ENOMEM;
    b->st = st;
    b->cfg = c;
    b->deferring = 1; /* the first step looks (deferral may have been turned off since) */
    b->ho = h;
    b->net = t;
    size_t cap = c->max_inflight + 1;
    b->batch = calloc(cap, sizeof(*b->batch));
    b->attempts = calloc(cap, sizeof(*b->attempts));
    if (!b->batch || !b->attempts || hl_shares_init(&b->shares, cap) ||
        hl_shares_init(&b->commit_sh, cap)) {
        hl_bookkeeper_free(b);
        return HL_ENOMEM;
    }
    b->seen_seq = hl_store_wake_seq(st) - 1; /* claim once at start: pending work resumes */
    b->commit_claimed_ms = hl_mono_ms() - COMMITS_FLOW_MS;
    *out = b;
    return HL_OK;
}

/* ---- the commit claim (hl_store_claim_hook) ---- */

/* A commit's claim, from the thread leading the batch: the room and shares left now. */
static int commit_claim_begin(void *arg, struct hl_claim *c)
{
    struct hl_bookkeeper *b = arg;
    struct hl_handover *ho = b->ho;
    pthread_mutex_lock(&ho->mu);
    size_t room = ho->stop ? 0 : room_left(b);
    if (room > CLAIM_BATCH_MAX)
        room = CLAIM_BATCH_MAX;
    ho->claiming += room;
    /* Commits are claiming, even one that finds no room: a turn from now on takes half. */
    b->commit_claimed_ms = hl_mono_ms();
    if (room) {
        ho->commit_claim = 1;
        hl_shares_copy(&b->commit_sh, &ho->shares);
        if (ho->turn) /* the bookkeeper's claims run with the other half */
            hl_shares_halve(&b->commit_sh, 1);
    }
    pthread_mutex_unlock(&ho->mu);
    if (!room)
        return 0; /* the bookkeeper's claim takes them once there is room */
    int64_t now = hl_now_ms();
    b->commit_room = room;
    b->commit_lease = now + b->cfg->lease_ms;
    *c = claim_of(b, now, room, &b->commit_sh, NULL);
    return 1;
}

/* Hands the commit's claim over. The bookkeeper needs no wake-up when the claim saw everything
 * the batch made and, before the batch, the claims of new ones had seen everything too. */
static int commit_claim_end(void *arg, int rc, struct hl_job *jobs, size_t n, int64_t from,
                            int64_t upto)
{
    struct hl_bookkeeper *b = arg;
    if (rc)
        hl_error("dispatcher: a commit's claim of its deliveries failed: %s", hl_strerror(rc));
    hand_over(b, jobs, n, b->commit_lease, b->commit_room);
    pthread_mutex_lock(&b->ho->mu);
    b->ho->commit_claim = 0;
    pthread_cond_signal(&b->ho->cv); /* a turn of the bookkeeper's may wait for it */
    int quiet = upto && b->fresh_seen >= from;
    if (quiet)
        b->fresh_seen = upto;
    pthread_mutex_unlock(&b->ho->mu);
    return quiet;
}

struct hl_claim_hook hl_bookkeeper_commit_claim(struct hl_bookkeeper *b)
{
    return (struct hl_claim_hook){.begin = commit_claim_begin, .end = commit_claim_end, .arg = b};
}

void hl_bookkeeper_free(struct hl_bookkeeper *b)
{
    if (!b)
        return;
    free(b->batch);
    hl_shares_free(&b->shares);
    hl_shares_free(&b->commit_sh);
    free(b->attempts);
    free(b);
}
