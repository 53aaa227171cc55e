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

struct hl_buf;

#define HL_SECRET_SIZE 64
/* Most earlier secrets that keep signing after rotations; a rotation beyond them drops the
 * oldest. */
#define HL_PREV_SECRETS_MAX 5
/* Most deliveries of one webhook that one walk over webhooks with due deliveries returns (a
 * claim without a cursor): a backlog on one endpoint never fills it. Claims through a cursor
 * are bounded per webhook by its share instead (struct hl_claim). */
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

/* An earlier secret of a webhook that signs until its rotation overlap ends. */
struct hl_prev_secret {
    char secret[HL_SECRET_SIZE];
    int64_t until; /* it signs while now < until */
};

/* The earlier secrets of a webhook, newest first (the one the latest rotation replaced first). */
struct hl_prev_secrets {
    int n;
    struct hl_prev_secret v[HL_PREV_SECRETS_MAX];
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
    struct hl_prev_secrets prev; /* as stored: some may have expired since */
    int64_t created_at, updated_at;
    int64_t last_triggered_at, last_success_at, last_failure_at;
    int64_t failing_since; /* first failure of the current run of failures */
    int64_t disabled_at;
    char *disabled_reason; /* NULL unless disabled by hookline */
    int64_t deleted_at;    /* 0 unless deleted (hl_store_webhook_get_any) */
    /* Delivery policy (issue 19): compact JSON text as the API accepted it, NULL when none.
     * filter: which events get deliveries (common/filter.h); headers: sent with every attempt
     * (common/headers.h). */
    char *filter;
    char *headers;
    /* Alerting (issue 21). An operational webhook (kind HL_WK_OPERATIONAL) receives the app's
     * operational events: its entities are 0 (no resource event reaches it) and its
     * event_types hold the (1 << HL_OPEV_*) bits it wants. */
    int kind;           /* HL_WK_ORDINARY or HL_WK_OPERATIONAL; set at create, never changed */
    int64_t silence_ms; /* silenceAlertSeconds in ms; 0: no silence alert */
    int expect_events;  /* expectEvents: silence counts even when no event was owed */
    /* The circuit breaker: when it opened, 0 while closed (struct hl_attempt's breaker_*). */
    int64_t breaker_opened_at;
    /* Delivery policy (issue 19) */
    int rate_limit;   /* most deliveries a second, HL_RATE_LIMIT_MIN..MAX; 0: no limit */
    int ordering;     /* HL_ORDER_* */
    int64_t deferred; /* deliveries owed, not yet made (hl_store_defer_step) */
};

/* Webhook kinds (struct hl_webhook's kind). */
enum { HL_WK_ORDINARY = 0, HL_WK_OPERATIONAL = 1 };

/* ordering: with HL_ORDER_RESOURCE a webhook's deliveries that concern one resource (the
 * event's resource uid, data.uid) are claimed one at a time in the order they were made; the
 * next waits until the one before succeeds or fails for good. webhook.test is not ordered. */
#define HL_ORDER_NONE 0
#define HL_ORDER_RESOURCE 1

/* rateLimit's bounds. A webhook's deliveries are claimed no faster than its limit allows, all
 * nodes together (a claim takes a webhook's tokens in the store); a burst is at most one
 * delivery and a second's worth. */
#define HL_RATE_LIMIT_MIN 1
#define HL_RATE_LIMIT_MAX 10000

/* Frees what a struct hl_webhook filled by the store owns; leaves it zeroed. */
void hl_webhook_clear(struct hl_webhook *w);

/* Which fields of a webhook a PATCH sets. */
enum {
    HL_WP_URL = 1,
    HL_WP_DESCRIPTION = 2,
    HL_WP_ENTITIES = 4,
    HL_WP_EVENT_TYPES = 8,
    HL_WP_ACTIVE = 16,
    /* Delivery policy (issue 19): rateLimit and ordering; filter and headers. */
    HL_WP_RATE_LIMIT = 1 << 8,
    HL_WP_ORDERING = 1 << 9,
    HL_WP_FILTER = 1 << 12,
    HL_WP_HEADERS = 1 << 13,
    /* alerting (issue 21) */
    HL_WP_SILENCE = 1 << 14,
    HL_WP_EXPECT_EVENTS = 1 << 15,
};

struct hl_webhook_patch {
    unsigned set; /* HL_WP_* bits */
    const char *url;
    const char *description; /* NULL clears it */
    unsigned entities;
    unsigned event_types;
    int active;
    /* Delivery policy (issue 19): checked compact JSON text; NULL clears it. */
    const char *filter;
    const char *headers;
    /* alerting (issue 21) */
    int64_t silence_ms; /* HL_WP_SILENCE; 0 clears it */
    int expect_events;  /* HL_WP_EXPECT_EVENTS */
    /* Delivery policy (issue 19) */
    int rate_limit; /* HL_WP_RATE_LIMIT; 0: none */
    int ordering;   /* HL_WP_ORDERING: HL_ORDER_* */
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

/* A context file's stored bytes, kept with its create or, for a file registered without them,
 * with the update that brings them (a file takes bytes once: a second time is HL_ECONFLICT). */
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
    int64_t attempts;       /* claims of the file so far, this one included (1, 2, ...) */
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
    const struct hl_file_rec *file;     /* a context file's bytes, queued for ingestion */
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
    char webhook_uid[HL_ID_MAX]; /* for the logs: public ids only */
    int64_t app_id;              /* the webhook's app: in-flight slots are shared between apps */
    int64_t event_id;
    char event_uid[HL_ID_MAX];
    int64_t event_ts;
    int attempts; /* attempts made before this one */
    int64_t created_at;
    char *url;
    char secret[HL_SECRET_SIZE];
    /* Earlier secrets, newest first, as of the claim; the signer skips those whose until has
     * passed when it signs. */
    struct hl_prev_secrets prev;
    char *payload;
    size_t payload_len;
    int64_t lease_until; /* set by the claimer: when another claim may take the delivery */
    char *headers;       /* the webhook's static headers (JSON object text), NULL when none */
    /* The webhook's circuit breaker as of the claim: a job claimed while it is open is its
     * probe (a claim takes no other delivery of an open breaker's webhook); breaker_probes:
     * its probes that failed since it opened. */
    int64_t breaker_opened_at;
    int breaker_probes;
    int rate_limit; /* the webhook's, as of the claim (0: none) */
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
    /* The circuit breaker's word (hl_breaker_outcome in delivery/retry.h), which the store
     * applies in the transaction that records the attempt: a success closes the webhook's
     * breaker; a failure counts one more consecutive failure, and opens the breaker when they
     * reach breaker_after (0: never), with its first probe at breaker_probe_at; a failed probe
     * (breaker_probe) sets the next probe at breaker_probe_at. */
    int breaker_after;
    int breaker_probe;
    int64_t breaker_probe_at;
};

/* Delivery states as the API names them, and the numbers both backends keep them as: their SQL
 * spells a state with HL_XSTR (e.g. "status = " HL_XSTR(HL_DS_PENDING_N)), so each number is
 * written here only. FAILING is never stored: it is how a pending delivery whose last attempt
 * failed is shown and filtered (it has failed at least once and is still being retried). */
#define HL_DS_PENDING_N 0
#define HL_DS_SUCCEEDED_N 1
#define HL_DS_FAILED_N 2
#define HL_DS_CANCELLED_N 3
#define HL_DS_PAUSED_N 4
#define HL_DS_FAILING_N 5
#define HL_XSTR_(x) #x
#define HL_XSTR(x) HL_XSTR_(x)
enum hl_delivery_status {
    HL_DS_PENDING = HL_DS_PENDING_N,
    HL_DS_SUCCEEDED = HL_DS_SUCCEEDED_N,
    HL_DS_FAILED = HL_DS_FAILED_N,
    HL_DS_CANCELLED = HL_DS_CANCELLED_N,
    HL_DS_PAUSED = HL_DS_PAUSED_N,
    HL_DS_FAILING = HL_DS_FAILING_N,
};

/* A delivery as operators see it. */
struct hl_delivery {
    int64_t id;
    int64_t webhook_id;
    char webhook_uid[HL_ID_MAX];
    int64_t webhook_deleted_at; /* 0 unless its webhook was deleted */
    char event_uid[HL_ID_MAX];
    int event_type;
    enum hl_delivery_status status; /* HL_DS_FAILING for a pending one whose last attempt failed */
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
    int status;           /* -1: any; else enum hl_delivery_status as shown (FAILING included) */
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
    int left;      /* the last claim passed over due deliveries beyond a share (struct hl_claim):
                    * the claim without a cursor takes them once there is room */
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
     * over a transaction that commits late), the deliveries this node's commits made, by the
     * ids their inserts returned, in the order they were made (other nodes' are found by the
     * claim without a cursor, when their NOTIFY asks for help). Both: a webhook's part is
     * bounded by its shares (rooms, wrooms), not by HL_CLAIM_PER_WEBHOOK. */
    struct hl_claim_cursor *fresh;
    /* Fair shares (all zero: none). Apps in skip_apps are left alone. App room_apps[i] gets at
     * most rooms[i] jobs of the claim and any other app at most room_new (0: no bound); webhook
     * room_webhooks[i] at most wrooms[i], any other at most wroom_new (0: no bound). Without a
     * cursor, the claim takes the apps in turn, and each app's webhooks in turn, oldest due
     * first within a webhook; through a cursor, in id order. */
    const int64_t *skip_apps;
    size_t nskip_apps;
    const int64_t *room_apps;
    const int64_t *rooms;
    size_t nrooms;
    int64_t room_new;
    const int64_t *room_webhooks;
    const int64_t *wrooms;
    size_t nwrooms;
    int64_t wroom_new;
};

/* Delivery counts of one webhook, by state as shown: pending (waiting, paused ones included)
 * and failing do not overlap. */
struct hl_webhook_stats {
    int64_t pending, failing, succeeded, failed;
};

/* What hl_store_recover queued. */
struct hl_recovered {
    int64_t failed;  /* failed deliveries queued for one more attempt */
    int64_t failing; /* failing deliveries whose next attempt was moved to now */
};

/* States of what /metrics counts in the database (hl_store_gauges). Deliveries queued, as the
 * API shows them: pending (not yet failed; waiting or in flight), failing (pending, its last
 * attempt failed) and paused (held while its webhook is paused); and deferred, owed to a
 * deferring webhook and not yet made (hl_store_defer_step; no oldest). */
enum hl_queue_state { HL_QS_PENDING, HL_QS_FAILING, HL_QS_PAUSED, HL_QS_DEFERRED, HL_QS_COUNT };
/* Webhooks (deleted ones are not counted): active, paused (active false, by the app) and
 * disabled (by hookline: 410 or failing too long); apart from those, the ones whose circuit
 * breaker is open (any of the three). */
enum hl_webhook_state {
    HL_WS_ACTIVE,
    HL_WS_PAUSED,
    HL_WS_DISABLED,
    HL_WS_BREAKER_OPEN,
    HL_WS_COUNT
};
/* Context files not yet processed: waiting for a claim, or being processed under a lease. */
enum hl_file_state { HL_FS_WAITING, HL_FS_PROCESSING, HL_FS_COUNT };

/* The database's gauges, for operators. Each oldest_* is the created_at of the oldest of its
 * state (0 when there is none). */
struct hl_store_gauges {
    int64_t deliveries[HL_QS_COUNT];
    int64_t oldest_delivery[HL_QS_COUNT];
    int64_t webhooks[HL_WS_COUNT];
    int64_t files[HL_FS_COUNT];
    int64_t oldest_file[HL_FS_COUNT];
};

/* Opens the store named by url: "postgres://…" or "postgresql://…" selects PostgreSQL, anything
 * else is a SQLite file path ("sqlite:" prefix optional). Runs migrations. Returns 0 or an error;
 * on error *out is NULL and a reason is in err. */
int hl_store_open(const char *url, struct hl_store **out, char *err, size_t errlen);
/* Whether url (as hl_store_open takes it) names a database hookline has set up: a SQLite file
 * with hookline's schema, or a PostgreSQL database holding hookline's schema_version table.
 * Creates and changes nothing, so commands that only use a database (apps, keys) can refuse one
 * that is not there instead of making an empty one. Returns 0 when it exists; HL_ENOTFOUND when
 * it does not, with err saying what is missing; another error when it cannot tell (err says
 * why: a file it may not read, a server it cannot reach). */
int hl_store_exists(const char *url, char *err, size_t errlen);
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

/* Webhooks. Create fills w->id; the caller has set uid, secret and the rest. HL_ETOOBIG when
 * the app has max_per_app webhooks already (0: no limit), checked and inserted under the app's
 * lock so that concurrent creates do not pass it together. */
int hl_store_webhook_create(struct hl_store *st, struct hl_webhook *w, int64_t max_per_app);
int hl_store_webhook_get(struct hl_store *st, int64_t app_id, const char *uid,
                         struct hl_webhook *out);
/* As hl_store_webhook_get, and a deleted webhook too (out->deleted_at says when it went). */
int hl_store_webhook_get_any(struct hl_store *st, int64_t app_id, const char *uid,
                             struct hl_webhook *out);
/* Up to limit webhooks with id > after_id, by id; the caller frees each (hl_webhook_clear) and
 * the array. */
int hl_store_webhook_list(struct hl_store *st, int64_t app_id, int64_t after_id, size_t limit,
                          struct hl_webhook **out, size_t *n);
/* As hl_store_webhook_list, for the webhooks of one kind (HL_WK_*); hl_store_webhook_list lists
 * the ordinary ones. */
int hl_store_webhook_list_kind(struct hl_store *st, int64_t app_id, int kind, int64_t after_id,
                               size_t limit, struct hl_webhook **out, size_t *n);
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
 * number of deliveries made to *deliveries when not NULL. Wakes the dispatcher (unless its claim
 * hook, hl_store_claim_hook, took every delivery the commit made). */
int hl_store_commit(struct hl_store *st, const struct hl_change *ch, size_t n,
                    const struct hl_idem *idem, int64_t *deliveries);
/* Called exactly once when a commit handed to hl_store_commit_start is over: rc as
 * hl_store_commit returns it (0 only once the change set is durably committed), deliveries the
 * number it made. It runs on the store's commit thread (SQLite) or one of its committer threads
 * (PostgreSQL), or inside hl_store_commit_start when none could start; it must be short, must not
 * call the store, and may be the last use of arg. */
typedef void (*hl_commit_done_fn)(void *arg, int rc, int64_t deliveries);
/* hl_store_commit without waiting: queues the change set for the group commit and returns; done
 * reports the outcome. ch, idem and everything they point to stay the caller's and must live
 * until done is called. Returns 0 when done will be called (perhaps already was), or an error
 * (nothing queued, done never called). */
int hl_store_commit_start(struct hl_store *st, const struct hl_change *ch, size_t n,
                          const struct hl_idem *idem, hl_commit_done_fn done, void *arg);
/* The answer kept for an Idempotency-Key newer than not_before, or HL_ENOTFOUND. */
int hl_store_idem_get(struct hl_store *st, int64_t app_id, const char *key, int64_t not_before,
                      struct hl_idem_hit *out);
/* The event log, newest first, ids below after_id (0: from the newest). */
int hl_store_event_list(struct hl_store *st, int64_t app_id, const struct hl_event_filter *f,
                        int64_t after_id, size_t limit, struct hl_event **out, size_t *n);

/* Dispatcher side. Claims up to c->max due deliveries of active webhooks (not those in c->skip,
 * nor those of apps in c->skip_apps), leasing them until c->lease_until; struct hl_claim says
 * which ones. The caller frees each job
 * (hl_job_clear) and the array. */
int hl_store_claim(struct hl_store *st, const struct hl_claim *c, struct hl_job **out, size_t *n);
/* A claim that a group commit makes for this process's dispatcher (hl_store_claim_hook): the
 * deliveries a batch of changes made are claimed inside the batch's own transaction, so that they
 * are handed over the moment it commits (just before its callers are told), instead of after a
 * claim of their own has waited for the writer behind the next batch (under load, a whole
 * batch's time). Both functions run on the
 * thread that leads the batch, one batch at a time; they must be short and must not call the
 * store. */
struct hl_claim_hook {
    /* Fills c as for hl_store_claim (its now, lease, max and shares; the store sets c->fresh to
     * what the batch made) and returns nonzero to claim; 0 leaves the new deliveries to the
     * dispatcher's own claims (no room, stopping). */
    int (*begin)(void *arg, struct hl_claim *c);
    /* Called once after each begin that returned nonzero, when the batch's transaction is over
     * and before its callers are told (and another batch begins): rc 0 and the jobs claimed
     * (jobs[0..n), payloads unpacked; the callee owns them and the array; n may be 0), or rc the
     * error (jobs NULL, n 0: nothing was claimed, or the transaction is gone). from: the newest
     * delivery id before the batch. upto: nonzero when the claim saw every delivery the batch made,
     * up to that id, and passed over none that a claim of new deliveries takes (none beyond its max
     * or a share, nor one not yet due): such a claim may start after it. Like any claim of new
     * deliveries, it leaves those of webhooks in c->skip (taken once they leave it), held by
     * an open breaker (their probe goes at the breaker's next release, or the next sweep) or
     * by their resource's order. Returns nonzero when the dispatcher needs no wake-up for the
     * batch: the store then does not call hl_store_notify for it. */
    int (*end)(void *arg, int rc, struct hl_job *jobs, size_t n, int64_t from, int64_t upto);
    void *arg;
};
/* Has the group commit claim for h (copied), or with h NULL stops it, returning once no batch
 * uses the one set before. On SQLite only; elsewhere (PostgreSQL's nodes claim a commit's
 * deliveries by id right after it) nothing is set. */
void hl_store_claim_hook(struct hl_store *st, const struct hl_claim_hook *h);
/* Records a batch of attempts in one transaction: attempt rows, delivery states, the webhooks'
 * last*At fields (on PostgreSQL a success moves them in steps of a second at least, so that
 * nodes do not queue on a busy webhook's row); disables a webhook, and parks its pending
 * deliveries, as each attempt's disable_failing_since and disable_reason say (the store applies
 * the outcome policy's decision; it makes none of its own). */
int hl_store_record(struct hl_store *st, const struct hl_attempt *a, size_t n);
/* The earliest time after now at which a webhook holding due deliveries back (its circuit
 * breaker open, or its rate limit spent) may have one claimed again (0 when none). */
int hl_store_next_release(struct hl_store *st, int64_t now, int64_t *at);
/* The earliest next_attempt_at of a pending delivery not leased at now (0 when none). */
int hl_store_next_due(struct hl_store *st, int64_t now, int64_t *at);
/* Drops every lease: a single SQLite node starting up holds none. PostgreSQL keeps them (other
 * nodes' leases are live; a dead node's lapse by themselves). */
int hl_store_release_leases(struct hl_store *st);

/* ---- operational events (issue 21) ----
 *
 * The store writes an operational event in the same transaction as the change of state that
 * causes it (an attempt's record, a silence sweep's claim), so that a crash loses none and
 * repeats none: the change and its event commit together or not at all. Events describe
 * ordinary webhooks only (an operational webhook's own failures make none), and go to the app's
 * active operational webhooks subscribed to them, except any at the URL of the webhook described.
 * - endpoint.failing: the first failed attempt (not a 410) while the webhook counts as healthy
 *   (as every new one does); it then counts as failing until a success: one event per spell.
 * - endpoint.recovered: that success.
 * - endpoint.disabled: the record that disabled it (410 or failing too long).
 * - delivery.exhausted: an attempt that failed with no attempt left (HL_OUT_FAILED).
 * - endpoint.silent: hl_store_silence_sweep. */

/* The facts of one operational event, for the function that builds its payload. Borrowed. */
struct hl_op_facts {
    int type; /* enum hl_op_event_type (common/events.h) */
    const char *app_uid;
    const struct hl_webhook *webhook; /* the webhook described */
    int64_t at;                       /* when it happened */
    const char *error;                /* failing: the attempt's error (NULL when none) */
    int status_code;                  /* failing: the attempt's HTTP status (0: none) */
    int64_t waiting;                  /* failing, recovered, silent: deliveries pending now */
    int64_t since;      /* recovered: failing since; silent: the last success (or creation) */
    int64_t recovered;  /* recovered: deliveries that had failed and went through with it */
    const char *reason; /* disabled: disabledReason */
    const struct hl_delivery *delivery; /* exhausted: the delivery */
};

/* Builds the event of f into ev (as events/envelope.h's hl_event_make: a new uid, the payload
 * bytes; ev->app_id and ev->type are set by the store). Returns 0 or an HL_E code. */
typedef int (*hl_op_event_fn)(const struct hl_op_facts *f, struct hl_event *ev);

/* Sets the function that builds operational events' payloads (main wires events/'s). Until it
 * is set, the store makes no operational event. Call it before the dispatcher starts. */
void hl_store_on_op_event(struct hl_store *st, hl_op_event_fn fn);

/* One silence sweep at now: a webhook with silence_ms whose silence alert fired and that has
 * succeeded since becomes eligible again; then each active ordinary webhook with silence_ms,
 * not alerted yet, whose last success (or creation, when none) is silence_ms or more before now
 * while events for it were expected (expect_events, or a delivery owed to it, pending or
 * failed, made after its last success and silence_ms or more ago), is claimed and gets its
 * endpoint.silent, in one transaction: on PostgreSQL, nodes sweeping together fire each alert
 * once. *fired (may be NULL) gets the number of alerts fired. */
int hl_store_silence_sweep(struct hl_store *st, int64_t now, int64_t *fired);

/* Sets the function hl_store_notify calls besides signalling waiters (NULL for none). Returns
 * once no call of the previous function is under way, so its argument may then be freed. */
void hl_store_on_notify(struct hl_store *st, void (*fn)(void *), void *arg);
/* Operations on deliveries (the operations issue). */

/* An event of the app by uid, with the deliveries it fanned out to (dl may be NULL). */
int hl_store_event_get(struct hl_store *st, int64_t app_id, const char *uid, struct hl_event *ev,
                       struct hl_delivery **dl, size_t *n);
/* A webhook's deliveries (webhook_id 0: every webhook's of the app, deleted ones included),
 * newest first, ids below after_id (0: from the newest). Keyset pages: each page costs the same
 * however deep it is, and a list by status reads that status's rows only. */
int hl_store_delivery_list(struct hl_store *st, int64_t app_id, int64_t webhook_id,
                           const struct hl_delivery_filter *f, int64_t after_id, size_t limit,
                           struct hl_delivery **out, size_t *n);
/* One delivery of the app with its attempts, oldest first (attempts may be NULL). */
int hl_store_delivery_get(struct hl_store *st, int64_t app_id, int64_t id, struct hl_delivery *out,
                          struct hl_attempt_rec **attempts, size_t *n);
/* Queues one more attempt of a delivery now, whatever its state. HL_ENOTFOUND when the app has
 * no such delivery, HL_EREFUSED when its webhook was deleted, HL_ECONFLICT while an attempt of it
 * is in flight. Wakes the dispatcher. */
int hl_store_delivery_resend(struct hl_store *st, int64_t app_id, int64_t id, int64_t now);
/* Of the deliveries of a webhook created in [since, until) (until 0: unbounded): queues every
 * failed one for one more attempt now, and moves the next attempt of every failing one (pending
 * after a failed attempt) that is not in flight to now. *out says how many of each. Wakes the
 * dispatcher. */
int hl_store_recover(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                     int64_t now, struct hl_recovered *out);
/* What hl_store_recover would pick now (the same window and rule), picking nothing. */
int hl_store_recover_count(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                           int64_t now, struct hl_recovered *out);
/* A webhook's attempts that started in [since, until), in buckets of step ms, read from the
 * attempts' (webhook, time) index: only buckets with attempts, in order, each with its
 * nearest-rank p50 and p95. *out is one malloc'd array the caller frees. */
int hl_store_webhook_series(struct hl_store *st, int64_t webhook_id, int64_t since, int64_t until,
                            int64_t step, struct hl_series_point **out, size_t *n);
/* Replaces a webhook's secret. With prev_until > now the replaced secret keeps signing until
 * prev_until, and so does every earlier one whose own time has not come, newest first, at most
 * HL_PREV_SECRETS_MAX (the oldest drops first); with prev_until <= now no earlier secret signs
 * any more. */
int hl_store_rotate_secret(struct hl_store *st, int64_t app_id, const char *uid, const char *secret,
                           int64_t prev_until, int64_t now);
/* For the tests of query plans: while plans is not NULL, the plan of each statement this store
 * runs (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN, with the statement's parameters) is
 * appended to plans before it runs, one line per plan row after a line "-- query N". Only for
 * a store no other thread uses meanwhile. */
void hl_store_explain(struct hl_store *st, struct hl_buf *plans);
/* Counts a webhook's deliveries by state. */
int hl_store_webhook_stats(struct hl_store *st, int64_t webhook_id, struct hl_webhook_stats *out);
/* Reads the gauges /metrics shows: deliveries queued and context files unprocessed by state
 * (with the oldest of each), webhooks by state. Three grouped reads in one session, each served
 * by an index that holds only what it counts (the queued deliveries; the files not yet done) or
 * by a covering one (webhooks): a scrape never touches the history of delivered events, and
 * finds each oldest at the head of its group. */
int hl_store_gauges(struct hl_store *st, struct hl_store_gauges *out);

/* The console's portal links (issue 15). */

/* The key that signs portal links and console sessions, the same on every node: made once
 * (fresh, from the caller's randomness, is stored unless a key is there already) and read back. */
int hl_store_console_key(struct hl_store *st, const uint8_t fresh[32], uint8_t out[32]);
/* How long a used portal link (and a signed-out session) is remembered past its expiry. Each node
 * checks a token's expiry by its own clock, and forgets old rows by its own clock too: a node
 * whose clock runs ahead must not forget a link that a node with a clock behind still takes for
 * unexpired (and would let be used again). Clocks that disagree by less than this are safe. */
#define HL_STORE_EXPIRY_MARGIN_MS (24LL * 3600 * 1000)

/* Marks the portal link token_id used until it expires (expires_at, ms), forgetting links
 * HL_STORE_EXPIRY_MARGIN_MS past their expiry at now as it goes. HL_ECONFLICT when it was used
 * already: a link is single use. */
int hl_store_portal_use(struct hl_store *st, const char *token_id, int64_t expires_at, int64_t now);
/* Ends the console session token_id (signed out) until it expires (expires_at, ms), on every
 * node: it is kept with the used links (its id cannot be one of theirs) and forgotten as they
 * are. Returns 0, also when it had ended already, or the store's error. */
int hl_store_session_end(struct hl_store *st, const char *token_id, int64_t expires_at,
                         int64_t now);
/* Sets *ended to whether the console session token_id was ended by hl_store_session_end.
 * Returns 0 or the store's error. */
int hl_store_session_ended(struct hl_store *st, const char *token_id, int *ended);

/* Context-file ingestion. */

/* Claims a context file waiting for processing (or whose processing lease ran out), leasing it
 * until lease_until and counting the claim in its attempts (out->attempts), in one transaction.
 * Apps share the queue: the file comes from the app with the fewest files being processed (under
 * a live lease, on any node), and is that app's oldest waiting file. HL_ENOTFOUND when there is
 * none. */
int hl_store_ingest_claim(struct hl_store *st, int64_t now, int64_t lease_until,
                          struct hl_ingest_job *out);
/* Extends the lease of a file claimed as attempt number attempts to lease_until. HL_ENOTFOUND
 * when that claim is no longer held (finished, or claimed again after its lease lapsed). */
int hl_store_ingest_renew(struct hl_store *st, const char *file_uid, int64_t attempts,
                          int64_t lease_until);
/* Gives the file claimed as attempt number attempts back to the queue at once, taking refund
 * (0 or 1) claims off its count: 1 when the attempt was stopped and does not count. HL_ENOTFOUND
 * when that claim is no longer held. */
int hl_store_ingest_release(struct hl_store *st, const char *file_uid, int64_t attempts,
                            int64_t refund);
/* A processed file's passages in order, index > after. Each text is malloc'd with the array;
 * free with hl_chunks_list_free. */
int hl_store_chunk_list(struct hl_store *st, int64_t app_id, const char *file_uid, int64_t after,
                        size_t limit, struct hl_text_chunk **out, size_t *n);
/* The bytes of every context file of the app that the store keeps. */
int hl_store_app_storage(struct hl_store *st, int64_t app_id, int64_t *bytes);
/* Where a context file's bytes are stored (*path malloc'd; HL_ENOTFOUND when it has none). */
int hl_store_file_path(struct hl_store *st, int64_t app_id, const char *file_uid, char **path);
/* Frees what hl_store_chunk_list returned. */
void hl_chunks_list_free(struct hl_text_chunk *c, size_t n);

/* ---- retention: pruning what is final and old, and the space it frees ----
 *
 * The rule, kept once here: an event is pruned, with its deliveries and their attempts, when it
 * was created before the cutoff and none of its deliveries is owed (pending, retrying, paused,
 * or held by a disabled webhook); an owed delivery and its event stay, whatever their age.
 * Idempotency keys go when their window (HL_IDEM_WINDOW_MS) ends. Apps, keys, webhooks and the
 * current state of resources are never pruned. */

/* How much of a successful attempt's answer is kept: an operator needs the status code and the
 * start of the body, not a copy of every receiver's page. Failures keep what the dispatcher
 * captured. */
#define HL_SUCCESS_RESPONSE_KEEP 256

/* One step of pruning: a scan of at most `scan` old events in creation order (created_at, then
 * id) after the cursor (after_at, after_id), and one short write transaction removing the
 * prunable ones among them, at most max_events of them (the step ends at the last one). */
struct hl_prune {
    int64_t before;             /* cutoff: events created before this (ms) are old */
    int64_t after_at, after_id; /* the cursor: where the last step ended (0, 0: the start) */
    size_t scan;                /* most events looked at (1..HL_PRUNE_SCAN_MAX) */
    size_t max_events;          /* most events removed (0: no other limit than scan) */
    int dry_run;                /* count what would go; remove nothing */
};

#define HL_PRUNE_SCAN_MAX 4096

struct hl_prune_result {
    int64_t events, deliveries, attempts; /* removed (dry run: that would be) */
    int64_t kept_owed;        /* old events seen and kept: a delivery of theirs is owed */
    int64_t last_at, last_id; /* the last event looked at: the cursor of the next step */
    int done;                 /* no old event is left after the cursor */
    int busy;                 /* another node holds the pruning turn: nothing was removed */
    int64_t write_us;         /* how long the write transaction held the writer */
};

/* Runs one step of pruning (see struct hl_prune). On PostgreSQL, one node prunes at a time:
 * a step that finds another node's step under way removes nothing and sets busy. Counts what
 * it removed in the store's totals (hl_store_pruned). */
int hl_store_prune(struct hl_store *st, const struct hl_prune *p, struct hl_prune_result *out);
/* Whether the database runs one write transaction at a time (SQLite): every write then waits
 * for a prune step, so the pruner keeps its steps to a few milliseconds. PostgreSQL's writes
 * wait only on the rows a step deletes, which nothing else writes. */
int hl_store_one_writer(struct hl_store *st);
/* Removes up to max idempotency keys created before `before` (dry run: counts every one,
 * removes none); *n says how many. */
int hl_store_idem_expire(struct hl_store *st, int64_t before, size_t max, int dry_run, int64_t *n);
/* created_at of the oldest event kept (0 when there is none). */
int hl_store_oldest_event(struct hl_store *st, int64_t *created_at);

/* What this store has pruned since it was opened. */
struct hl_pruned {
    uint64_t events, deliveries, attempts;
};
void hl_store_pruned(struct hl_store *st, struct hl_pruned *out);

/* Folds the delivery counters of database sessions that are gone (PostgreSQL keeps a stripe
 * per session, sql.h) into one row per webhook, so their rows stay bounded; counts unchanged.
 * One node folds at a time (another's call does nothing); SQLite has nothing to fold. */
int hl_store_fold_counts(struct hl_store *st);

/* Deferred fan-out (issue 19, store/defer.c). A webhook with more than `after` deliveries waiting
 * for their first attempt (pending, not failing: a dead endpoint's behind its open breaker, a
 * slow one's) defers: each change then owes it a row instead of making it a delivery, which
 * costs a commit far less when many webhooks are backed up. What is owed is made into
 * deliveries, oldest event first (ordering holds), whenever fewer than after / 2 wait; with
 * nothing owed and fewer than that waiting, it stops deferring. after <= 0 (deferral off) makes
 * everything owed and stops every deferral. Owed deliveries count as pending in its stats and its
 * JSON's `deferred`, keep their events from retention, are dropped when the webhook is deleted and
 * wait while it is disabled; they are not in the delivery lists until made. A step (one short
 * transaction) with enter set also marks the webhooks that begin deferring; it visits the
 * deferring webhooks from *cursor on (0: the first) and sets *cursor where the next step goes on
 * (0: from the first). Stores that do not defer (PostgreSQL, whose commits log rows rather than
 * pages) do nothing. */
struct hl_defer_result {
    int64_t entered; /* webhooks that began deferring */
    int64_t made;    /* owed deliveries made */
    int64_t dropped; /* owed rows of deleted webhooks dropped */
    int64_t left;    /* webhooks that stopped deferring */
    int more;        /* a webhook may still defer: one visited did, or the step did not visit all */
    int full;        /* the step did all it may: more is owed where there is room for it */
};
int hl_store_defer_step(struct hl_store *st, int64_t now, int64_t after, int enter, int64_t *cursor,
                        struct hl_defer_result *out);

/* The database on disk. */
struct hl_store_space {
    int64_t bytes;      /* SQLite: the file and its WAL; PostgreSQL: pg_database_size */
    int64_t free_bytes; /* SQLite: free pages inside the file; PostgreSQL: 0 (not measured) */
    /* Freed space goes back by itself: SQLite incremental auto-vacuum (hl_store_release_space
     * gives pages back to the file system), PostgreSQL autovacuum. 0: an SQLite file made
     * before hookline turned auto-vacuum on, which `hookline db compact` converts. */
    int reclaims;
};
int hl_store_space(struct hl_store *st, struct hl_store_space *out);
/* One short step of giving freed space back: on SQLite with incremental auto-vacuum, when the
 * free pages pass a reserve kept for reuse (a tenth of the file), releases a bounded number of
 * them to the file system; *released says how many bytes (0: nothing to do). PostgreSQL: 0. */
int hl_store_release_space(struct hl_store *st, int64_t *released);

/* Where a compaction has got to, for a progress line. */
struct hl_compact_progress {
    int64_t elapsed_ms;
    const char *phase;   /* what it is doing now */
    int64_t done, total; /* bytes (or tables) done and to do; total 0: unknown */
};
typedef void (*hl_compact_progress_fn)(void *arg, const struct hl_compact_progress *p);
/* Compacts the database once: SQLite rewrites the file without its free pages and turns
 * incremental auto-vacuum on (VACUUM); the caller holds hl_store_lock. PostgreSQL runs VACUUM
 * (ANALYZE) on the tables pruning empties, beside the serving nodes. progress is called now and
 * then (may be NULL). Returns 0, or an error with a reason in err. */
int hl_store_compact(struct hl_store *st, hl_compact_progress_fn progress, void *arg, char *err,
                     size_t errlen);

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
