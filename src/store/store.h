/* The store: everything hookline keeps, behind one table of functions.
 *
 * Two backends, sqlite.c and postgres.c, behind the functions below (struct hl_backend in
 * store/sql.h is how they plug in; callers never see SQL or the backend). Invariants every
 * backend keeps:
 * - hl_store_commit() writes resource changes, their events (exact payload bytes) and one delivery
 *   per matching webhook in ONE transaction: nothing acknowledged is lost, nothing is delivered
 * that did not commit.
 * - Times are milliseconds since the Unix epoch; 0 means "none" (JSON null).
 * - Functions return 0 or a negative HL_E code (HL_ENOTFOUND, HL_ECONFLICT, HL_ESTORE, ...).
 * - Every function is safe to call from several threads at once.
 */
#ifndef HL_STORE_H
#define HL_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "common/events.h"
#include "common/err.h"
#include "common/ids.h"

#define HL_SECRET_SIZE 64
/* Most deliveries of one webhook a single claim returns: a backlog on one endpoint never fills a
 * claim. */
#define HL_CLAIM_PER_WEBHOOK 32
#define HL_NAME_MAX 256
/* How long an Idempotency-Key's answer is kept and replayed; a key older than this may be used
 * again for a new request. */
#define HL_IDEM_WINDOW_MS (24LL * 3600 * 1000)

/* An open store (opaque). */
struct hl_store;

struct hl_app {
    int64_t id;
    char uid[HL_ID_MAX];
    char name[HL_NAME_MAX];
    int64_t created_at;
};

struct hl_api_key {
    char uid[HL_ID_MAX]; /* "key_…", what `keys revoke` takes */
    int64_t app_id;
    char app_uid[HL_ID_MAX];
    char prefix[16]; /* the first characters of the key, to recognise it in lists */
    int64_t created_at;
    int64_t revoked_at;
};

struct hl_webhook {
    int64_t id;
    char uid[HL_ID_MAX];
    int64_t app_id;
    char *url;
    char *description;    /* NULL when not set */
    unsigned entities;    /* HL_ENT_* bits */
    unsigned event_types; /* (1 << hl_event_type) bits; 0 means every event of `entities` */
    int active;
    char secret[HL_SECRET_SIZE];
    char prev_secret[HL_SECRET_SIZE]; /* "" unless a rotation overlap is running */
    int64_t prev_secret_until;
    int64_t created_at, updated_at;
    int64_t last_triggered_at, last_success_at, last_failure_at;
    int64_t failing_since; /* first failure of the current run of failures */
    int64_t disabled_at;
    char *disabled_reason; /* NULL unless disabled by hookline */
};

/* Frees what a struct hl_webhook filled by the store owns; leaves it zeroed. */
void hl_webhook_clear(struct hl_webhook *w);

/* Which fields of a webhook a PATCH sets. */
enum {
    HL_WP_URL = 1,
    HL_WP_DESCRIPTION = 2,
    HL_WP_ENTITIES = 4,
    HL_WP_EVENT_TYPES = 8,
    HL_WP_ACTIVE = 16,
};

struct hl_webhook_patch {
    unsigned set; /* HL_WP_* bits */
    const char *url;
    const char *description; /* NULL clears it */
    unsigned entities;
    unsigned event_types;
    int active;
};

/* A resource (agent, context, context file): its whole JSON object is kept as canonical text. */
struct hl_resource {
    int64_t id;
    enum hl_entity kind;
    char uid[HL_ID_MAX];
    int64_t app_id;
    char parent_uid[HL_ID_MAX]; /* a context file's context; "" otherwise */
    char *tenant;               /* externalTenantId */
    char *body;                 /* canonical JSON of the whole object */
    size_t body_len;
    int64_t version; /* bumped by every update; updates name the version they read */
    int64_t created_at, updated_at;
};

/* Frees what a struct hl_resource filled by the store owns; leaves it zeroed. */
void hl_resource_clear(struct hl_resource *r);

/* One event as the event log keeps it. */
struct hl_event {
    int64_t id;
    char uid[HL_ID_MAX]; /* "evt_…" */
    int type;
    int64_t app_id;
    char *tenant;
    char resource_uid[HL_ID_MAX];
    int64_t created_at;
    char *payload; /* the exact bytes every receiver gets */
    size_t payload_len;
};

/* Frees what a struct hl_event filled by the store owns; leaves it zeroed. */
void hl_event_clear(struct hl_event *e);

/* A context file's stored bytes, kept with its create. */
struct hl_file_rec {
    const char *path; /* where the bytes are, under the data folder */
    int64_t size;
    const char *sha256; /* hex */
};

/* One passage of a processed file. */
struct hl_text_chunk {
    int64_t index;
    int64_t offset; /* byte offset in the extracted text */
    const char *text;
    size_t len;
};

/* A claimed ingestion job: a context file whose bytes wait to be processed. */
struct hl_ingest_job {
    char file_uid[HL_ID_MAX];
    int64_t app_id;
    char app_uid[HL_ID_MAX];
    char *path;
    struct hl_resource res; /* the file's resource as it is now */
};

/* Frees what a claimed ingestion job owns. */
void hl_ingest_job_clear(struct hl_ingest_job *j);

/* One change for hl_store_commit: an optional resource write and the event it fires. Borrowed:
 * the store copies what it keeps. */
struct hl_change {
    enum hl_op op;                      /* HL_OP_NONE publishes the event only */
    const struct hl_resource *res;      /* new state (create/update) or the resource (delete) */
    int64_t expect_version;             /* update/delete: the version read; else 0 */
    const struct hl_event *ev;          /* NULL writes no event */
    int64_t only_webhook;               /* non-zero: deliver to this webhook only (webhook.test) */
    const struct hl_file_rec *file;     /* a context file's bytes, queued for ingestion (create) */
    const struct hl_text_chunk *chunks; /* passages replacing the file's (with done_file) */
    size_t nchunks;
    int done_file; /* the ingestion job of res is finished */
};

/* An Idempotency-Key answer kept with the change it made. */
struct hl_idem {
    const char *key;
    uint8_t request_hash[32];
    int status;
    const char *response;
};

struct hl_idem_hit {
    uint8_t request_hash[32];
    int status;
    char *response; /* caller frees */
};

/* A filter for the event log. */
struct hl_event_filter {
    int type;             /* -1: any */
    const char *tenant;   /* NULL: any */
    int64_t since, until; /* 0: unbounded */
};

/* A due delivery, claimed by a dispatcher under a lease. */
struct hl_job {
    int64_t delivery_id;
    int64_t webhook_id;
    int64_t event_id;
    char event_uid[HL_ID_MAX];
    int64_t event_ts;
    int attempts; /* attempts made before this one */
    int64_t created_at;
    char *url;
    char secret[HL_SECRET_SIZE];
    char prev_secret[HL_SECRET_SIZE]; /* "" outside a rotation overlap */
    char *payload;
    size_t payload_len;
    int64_t lease_until; /* set by the claimer: when another claim may take the delivery */
};

/* Frees what a claimed job owns. */
void hl_job_clear(struct hl_job *j);

/* Longest reason, with its NUL, that an attempt gives for disabling its webhook. */
#define HL_DISABLE_REASON_MAX 64

enum hl_outcome {
    HL_OUT_SUCCESS = 1, /* 2xx: the delivery is done */
    HL_OUT_RETRY,       /* failed; try again at next_attempt_at */
    HL_OUT_FAILED,      /* failed for good: no attempt left */
    HL_OUT_GONE,        /* 410: failed for good and the webhook is disabled */
};

/* The outcome of one attempt, for hl_store_record. Borrowed. */
struct hl_attempt {
    int64_t delivery_id;
    int64_t webhook_id;
    int64_t started_at;
    int64_t duration_us;
    int status_code;      /* 0 when no HTTP answer */
    const char *error;    /* NULL on success */
    const char *response; /* the first bytes of the answer (bounded by the caller) */
    size_t response_len;
    enum hl_outcome outcome;
    int64_t next_attempt_at; /* HL_OUT_RETRY */
    /* The outcome policy's word on the webhook (hl_retry_outcome in delivery/retry.h): HL_OUT_GONE
     * disables it; a failure does when its run of failures began at or before
     * disable_failing_since (0: not by this attempt). disable_reason is its disabledReason. */
    int64_t disable_failing_since;
    char disable_reason[HL_DISABLE_REASON_MAX];
};

/* Delivery states as the API names them, and the numbers both backends keep them as: their SQL
 * spells a state with HL_XSTR (e.g. "status = " HL_XSTR(HL_DS_PENDING_N)), so each number is
 * written here only. */
#define HL_DS_PENDING_N 0
#define HL_DS_SUCCEEDED_N 1
#define HL_DS_FAILED_N 2
#define HL_DS_CANCELLED_N 3
#define HL_DS_PAUSED_N 4
#define HL_XSTR_(x) #x
#define HL_XSTR(x) HL_XSTR_(x)
enum hl_delivery_status {
    HL_DS_PENDING = HL_DS_PENDING_N,
    HL_DS_SUCCEEDED = HL_DS_SUCCEEDED_N,
    HL_DS_FAILED = HL_DS_FAILED_N,
    HL_DS_CANCELLED = HL_DS_CANCELLED_N,
    HL_DS_PAUSED = HL_DS_PAUSED_N,
};

/* A delivery as operators see it. */
struct hl_delivery {
    int64_t id;
    int64_t webhook_id;
    char webhook_uid[HL_ID_MAX];
    char event_uid[HL_ID_MAX];
    int event_type;
    enum hl_delivery_status status;
    int attempts;
    int last_status;
    char *last_error; /* NULL when none */
    int64_t next_attempt_at;
    int64_t created_at;
    int64_t delivered_at;
};

/* Frees what a struct hl_delivery filled by the store owns; leaves it zeroed. */
void hl_delivery_clear(struct hl_delivery *d);

/* One recorded attempt. */
struct hl_attempt_rec {
    int64_t started_at;
    int64_t duration_us;
    int status_code;
    char *error;    /* NULL on success */
    char *response; /* the first bytes of the answer; NULL when none */
    size_t response_len;
};

/* Frees an array of attempts and what they own. */
void hl_attempts_free(struct hl_attempt_rec *a, size_t n);

/* A filter for deliveries. */
struct hl_delivery_filter {
    int status;           /* -1: any; else enum hl_delivery_status */
    int failing;          /* with status pending: only those whose last attempt failed */
    int type;             /* -1: any event */
    int64_t since, until; /* created_at window; 0: unbounded */
};

/* One time bucket of a webhook's attempts (hl_store_webhook_series). */
struct hl_series_point {
    int64_t bucket;    /* (started_at - since) / step */
    int64_t attempts;  /* attempts that started in the bucket */
    int64_t successes; /* of which answered 2xx in time */
    int64_t p50_us;    /* durations, nearest rank: the ceil(n/2)-th shortest */
    int64_t p95_us;    /* the ceil(0.95 n)-th shortest */
};

/* Where the claims of new deliveries have got to. The caller zeroes it once and passes the same
 * one to each claim of new deliveries; its fields are the store's. */
struct hl_claim_cursor {
    int64_t after; /* deliveries with higher ids are new */
    int started;   /* after is set */
};

/* One claim of due deliveries (hl_store_claim). */
struct hl_claim {
    int64_t now;         /* due at or before now and not leased at now */
    int64_t lease_until; /* the claimed deliveries are leased until then */
    size_t max;          /* most jobs returned */
    const int64_t *skip; /* webhooks to leave alone (busy ones) */
    size_t nskip;
    /* NULL: every due delivery, webhook by webhook (at most HL_CLAIM_PER_WEBHOOK of one webhook
     * in a claim), visiting each webhook with pending work. Else a claim for what commits just
     * made: on SQLite, the deliveries made since this cursor's last claim, in the order they
     * were made, without visiting any webhook (a backlog costs it nothing); the first claim
     * through a zeroed cursor only marks where "new" begins and returns none. On PostgreSQL,
     * whose sequence ids are handed out at insert and not at commit (an id cursor would step
     * over a transaction that commits late), the same as a claim without a cursor. */
    struct hl_claim_cursor *fresh;
};

/* Delivery counts of one webhook. */
struct hl_webhook_stats {
    int64_t pending, succeeded, failed;
};

/* The whole queue, for operators. */
struct hl_queue_stats {
    int64_t pending;           /* deliveries waiting or in flight */
    int64_t oldest_pending_at; /* created_at of the oldest pending delivery; 0 when none */
};

/* Opens the store named by url: "postgres://…" or "postgresql://…" selects PostgreSQL, anything
 * else is a SQLite file path ("sqlite:" prefix optional). Runs migrations. Returns 0 or an error;
 * on error *out is NULL and a reason is in err. */
int hl_store_open(const char *url, struct hl_store **out, char *err, size_t errlen);
/* Closes the store and frees it (and with it any hl_store_lock). NULL is fine. */
void hl_store_close(struct hl_store *st);
/* Takes the database for this process alone, until the store is closed: what a serving process
 * (or an offline maintenance command) asks for before it acts on the database as its only user.
 * On SQLite, an flock on a file beside the database ("<path>.lock", which stays behind): a
 * second process asking for it gets HL_ECONFLICT and err names the file and the holder's pid;
 * short commands that do not ask (apps, keys) keep working beside the holder. On PostgreSQL,
 * several nodes share the database by design: 0 and nothing held. */
int hl_store_lock(struct hl_store *st, char *err, size_t errlen);

/* Apps and API keys. Keys are stored as SHA-256 hashes; lookups name the hash. */
int hl_store_app_create(struct hl_store *st, const char *uid, const char *name, struct hl_app *out);
int hl_store_app_get(struct hl_store *st, const char *uid, struct hl_app *out);
/* Every app, oldest first; *out is one malloc'd array the caller frees. */
int hl_store_app_list(struct hl_store *st, struct hl_app **out, size_t *n);
int hl_store_key_create(struct hl_store *st, int64_t app_id, const char *uid,
                        const uint8_t hash[32], const char *prefix);
/* Finds the app of an unrevoked key by the key's hash (compared in constant time). */
int hl_store_key_lookup(struct hl_store *st, const uint8_t hash[32], struct hl_app *app);
/* As hl_store_key_lookup, and also gives the key's uid (key_uid: HL_ID_MAX bytes). */
int hl_store_key_find(struct hl_store *st, const uint8_t hash[32], struct hl_app *app,
                      char *key_uid);
/* The app of the unrevoked key key_uid; HL_ENOTFOUND when the key is unknown or revoked. */
int hl_store_key_app(struct hl_store *st, const char *key_uid, struct hl_app *app);
int hl_store_key_revoke(struct hl_store *st, const char *uid);
/* An app's keys (app_id 0: every app's); *out is one malloc'd array the caller frees. */
int hl_store_key_list(struct hl_store *st, int64_t app_id, struct hl_api_key **out, size_t *n);

/* Webhooks. Create fills w->id; the caller has set uid, secret and the rest. */
int hl_store_webhook_create(struct hl_store *st, struct hl_webhook *w);
int hl_store_webhook_get(struct hl_store *st, int64_t app_id, const char *uid,
                         struct hl_webhook *out);
/* Up to limit webhooks with id > after_id, by id; the caller frees each (hl_webhook_clear) and
 * the array. */
int hl_store_webhook_list(struct hl_store *st, int64_t app_id, int64_t after_id, size_t limit,
                          struct hl_webhook **out, size_t *n);
/* Applies a patch. Pausing parks pending deliveries, resuming releases them; re-enabling clears
 * disabledAt/disabledReason. Fills out with the result. */
int hl_store_webhook_update(struct hl_store *st, int64_t app_id, const char *uid,
                            const struct hl_webhook_patch *p, int64_t now, struct hl_webhook *out);
/* Deletes a webhook and cancels its pending deliveries. */
int hl_store_webhook_delete(struct hl_store *st, int64_t app_id, const char *uid, int64_t now);

/* Resources. */
int hl_store_resource_get(struct hl_store *st, int64_t app_id, enum hl_entity kind, const char *uid,
                          struct hl_resource *out);
/* Up to limit resources of a kind with id > after_id (parent_uid/tenant NULL: any). */
int hl_store_resource_list(struct hl_store *st, int64_t app_id, enum hl_entity kind,
                           const char *parent_uid, const char *tenant, int64_t after_id,
                           size_t limit, struct hl_resource **out, size_t *n);
/* Commits n changes, their events and their deliveries in one transaction (and the idempotency
 * answer when idem is not NULL). HL_ECONFLICT when an expected version no longer matches or the
 * idempotency key was taken meanwhile; HL_ENOTFOUND when a resource to update is gone. Adds the
 * number of deliveries made to *deliveries when not NULL. Wakes the dispatcher. */
int hl_store_commit(struct hl_store *st, const struct hl_change *ch, size_t n,
                    const struct hl_idem *idem, int64_t *deliveries);
/* The answer kept for an Idempotency-Key newer than not_before, or HL_ENOTFOUND. */
int hl_store_idem_get(struct hl_store *st, int64_t app_id, const char *key, int64_t not_before,
                      struct hl_idem_hit *out);
/* The event log, newest first, ids below after_id (0: from the newest). */
int hl_store_event_list(struct hl_store *st, int64_t app_id, const struct hl_event_filter *f,
                        int64_t after_id, size_t limit, struct hl_event **out, size_t *n);

/* Dispatcher side. Claims up to c->max due deliveries of active webhooks (not those in c->skip),
 * leasing them until c->lease_until; struct hl_claim says which ones. The caller frees each job
 * (hl_job_clear) and the array. */
int hl_store_claim(struct hl_store *st, const struct hl_claim *c, struct hl_job **out, size_t *n);
/* Records a batch of attempts in one transaction: attempt rows, delivery states, the webhooks'
 * last*At fields (on PostgreSQL a success moves them in steps of a second at least, so that
 * nodes do not queue on a busy webhook's row); disables a webhook, and parks its pending
 * deliveries, as each attempt's disable_failing_since and disable_reason say (the store applies
 * the outcome policy's decision; it makes none of its own). */
int hl_store_record(struct hl_store *st, const struct hl_attempt *a, size_t n);
/* The earliest next_attempt_at of a pending delivery not leased at now (0 when none). */
int hl_store_next_due(struct hl_store *st, int64_t now, int64_t *at);
/* Drops every lease: a single SQLite node starting up holds none. PostgreSQL keeps them (other
 * nodes' leases are live; a dead node's lapse by themselves). */
int hl_store_release_leases(struct hl_store *st);

/* Sets the function hl_store_notify calls besides signalling waiters (NULL for none). Returns
 * once no call of the previous function is under way, so its argument may then be freed. */
void hl_store_on_notify(struct hl_store *st, void (*fn)(void *), void *arg);
/* Operations on deliveries (the operations issue). */

/* An event of the app by uid, with the deliveries it fanned out to (dl may be NULL). */
int hl_store_event_get(struct hl_store *st, int64_t app_id, const char *uid, struct hl_event *ev,
                       struct hl_delivery **dl, size_t *n);
/* A webhook's deliveries (webhook_id 0: every webhook of the app, deleted ones included),
 * newest first, ids below after_id (0: from the newest). Keyset pages: each page costs the same
 * however deep it is, and a list by status reads that status's rows only. */
int hl_store_delivery_list(struct hl_store *st, int64_t app_id, int64_t webhook_id,
                           const struct hl_delivery_filter *f, int64_t after_id, size_t limit,
                           struct hl_delivery **out, size_t *n);
/* One delivery of the app with its attempts, oldest first (attempts may be NULL). */
int hl_store_delivery_get(struct hl_store *st, int64_t app_id, int64_t id, struct hl_delivery *out,
                          struct hl_attempt_rec **attempts, size_t *n);
/* Queues one more attempt of a delivery now, whatever its state (not for a deleted webhook:
 * HL_ENOTFOUND). Wakes the dispatcher. */
int hl_store_delivery_resend(struct hl_store *st, int64_t app_id, int64_t id, int64_t now);
/* Queues again every failed delivery of a webhook created in [since, until) (until 0: now);
 * *queued says how many. Wakes the dispatcher. */
int hl_store_recover(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                     int64_t now, int64_t *queued);
/* How many deliveries hl_store_recover would queue now (the same window and rule). */
int hl_store_recover_count(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                           int64_t *count);
/* A webhook's attempts that started in [since, until), grouped into buckets of step ms, in one
 * grouped query over the attempts' (webhook, time) index: only buckets with attempts, in order.
 * *out is one malloc'd array the caller frees. */
int hl_store_webhook_series(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                            int64_t step, struct hl_series_point **out, size_t *n);
/* Replaces a webhook's secret; the old one keeps signing until prev_until (<= now: not at
 * all). */
int hl_store_rotate_secret(struct hl_store *st, int64_t app_id, const char *uid, const char *secret,
                           int64_t prev_until, int64_t now);
/* Counts a webhook's deliveries by state. */
int hl_store_webhook_stats(struct hl_store *st, int64_t webhook_id, struct hl_webhook_stats *out);
/* The size and age of the whole queue. */
int hl_store_queue_stats(struct hl_store *st, struct hl_queue_stats *out);

/* The console's portal links (issue 15). */

/* The key that signs portal links and console sessions, the same on every node: made once
 * (fresh, from the caller's randomness, is stored unless a key is there already) and read back. */
int hl_store_console_key(struct hl_store *st, const uint8_t fresh[32], uint8_t out[32]);
/* Marks the portal link token_id used until it expires (expires_at, ms), forgetting links
 * past their expiry as it goes. HL_ECONFLICT when it was used already: a link is single use. */
int hl_store_portal_use(struct hl_store *st, const char *token_id, int64_t expires_at, int64_t now);

/* Context-file ingestion. */

/* Claims the oldest context file waiting for processing (or whose processing lease ran out),
 * leasing it until lease_until. HL_ENOTFOUND when there is none. */
int hl_store_ingest_claim(struct hl_store *st, int64_t now, int64_t lease_until,
                          struct hl_ingest_job *out);
/* A processed file's passages in order, index > after. Each text is malloc'd with the array;
 * free with hl_chunks_list_free. */
int hl_store_chunk_list(struct hl_store *st, int64_t app_id, const char *file_uid, int64_t after,
                        size_t limit, struct hl_text_chunk **out, size_t *n);
/* Where a context file's bytes are stored (*path malloc'd; HL_ENOTFOUND when it has none). */
int hl_store_file_path(struct hl_store *st, int64_t app_id, const char *file_uid, char **path);
/* Frees what hl_store_chunk_list returned. */
void hl_chunks_list_free(struct hl_text_chunk *c, size_t n);

/* Wake-ups: the backend calls hl_store_notify() after each change that made deliveries due (a
 * commit that made some, a webhook resumed, a resend, a recovery; on PostgreSQL also another
 * node's); it counts them and calls the on_notify function. A waiter samples the count
 * (hl_store_wake_seq) and compares it later or sleeps in hl_store_wait_since. */
void hl_store_notify(struct hl_store *st);
/* The notification count, for callers that wait from a point they sampled. */
uint64_t hl_store_wake_seq(struct hl_store *st);
/* Waits until the count differs from seen or the monotonic deadline (ms) passes. Returns 1 when
 * it differs. */
int hl_store_wait_since(struct hl_store *st, uint64_t seen, int64_t deadline_mono_ms);

#endif
