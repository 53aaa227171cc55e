/* What the two store backends share, inside src/store only.
 *
 * - Queries both backends answer are named by enum hl_q; each backend keeps its own SQL text for
 *   them (the dialects differ) in a table indexed by it, with the same parameters in the same
 *   places, and numbers its own further queries from HL_Q_SHARED.
 * - The columns a struct is read from are listed once here (HL_*_COLS), beside the reader that
 *   reads them (rows.c), so a SELECT and its reader cannot drift apart.
 * - A backend implements struct hl_backend: sessions (one connection, perhaps a transaction,
 *   held for one operation) and run(), which binds an array of struct hl_arg, runs one
 *   statement and hands each result row to hl_rows_put() through the two column accessors of
 *   struct hl_cols; and the few operations that really differ (the commit, claims, records).
 * - Every other operation of store.h is written once over the sessions (ops.c).
 */
#ifndef HL_STORE_SQL_H
#define HL_STORE_SQL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "common/buf.h"
#include "store/store.h"

/* Delivery states inside SQL text. */
#define SQL_PENDING HL_XSTR(HL_DS_PENDING_N)
#define SQL_SUCCEEDED HL_XSTR(HL_DS_SUCCEEDED_N)
#define SQL_FAILED HL_XSTR(HL_DS_FAILED_N)
#define SQL_CANCELLED HL_XSTR(HL_DS_CANCELLED_N)
#define SQL_PAUSED HL_XSTR(HL_DS_PAUSED_N)

/* The column lists, in the order the readers in rows.c take them. */
#define HL_APP_COLS "id, uid, name, created_at"
#define HL_WEBHOOK_COLS                                                                            \
    "id, uid, app_id, url, description, entities, event_types, active, secret,"                    \
    " coalesce(prev_secret, ''), prev_secret_until, created_at, updated_at, last_triggered_at,"    \
    " last_success_at, last_failure_at, failing_since, disabled_at, disabled_reason"
#define HL_RESOURCE_COLS                                                                           \
    "id, kind, uid, app_id, parent_uid, tenant, body, version, created_at, updated_at"
#define HL_RESOURCE_COLS_R                                                                         \
    "r.id, r.kind, r.uid, r.app_id, r.parent_uid, r.tenant, r.body, r.version, r.created_at,"      \
    " r.updated_at"
#define HL_EVENT_COLS "id, uid, type, app_id, tenant, resource_uid, created_at, payload"
#define HL_DELIVERY_COLS                                                                           \
    "d.id, d.webhook_id, w.uid, e.uid, e.type, d.status, d.attempts, d.last_status,"               \
    " d.last_error, d.next_attempt_at, d.created_at, d.delivered_at"
#define HL_DELIVERY_SELECT                                                                         \
    "SELECT " HL_DELIVERY_COLS " FROM deliveries d"                                                \
    " JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"
/* Pieces of the delivery lists (HL_Q_DL_*LIST*), spelled once for both dialects: a is the alias
 * of the deliveries table, m the parameter mark ("?" or "$"). Every list names the failing
 * parameter (9), its last: SQLite binds no parameter past the last one a statement names. */
#define DL_FILTERS(a, m)                                                                           \
    " AND (" m "4 < 0 OR (SELECT ef.type FROM events ef WHERE ef.id = " a ".event_id) = " m "4)"   \
    " AND (" m "5 = 0 OR " a ".created_at >= " m "5) AND (" m "6 = 0 OR " a ".created_at < " m     \
    "6)"
#define DL_FAILING(a, m) " AND (" m "9 = 0 OR " a ".last_error IS NOT NULL)"
#define DL_PAGE_OF(a, m) " ORDER BY " a ".id DESC LIMIT " m "8"
#define DL_PAGE(m) DL_PAGE_OF("d", m)

/* A webhook's attempts in [since, until), one row each (parameters w, since, until, step):
 * its bucket ((started_at - since) / step), 1 when it succeeded (2xx: an attempt with an error
 * has status 0 or a non-2xx), its duration. Read from the attempts' (webhook_id, started_at,
 * status_code, duration_us) index alone; ops.c folds them into buckets with the nearest-rank
 * p50 and p95, which a window function over the same rows took ten times longer to find. */
#define HL_SERIES_SQL(w, since, until, step)                                                       \
    "SELECT (started_at - " since ") / " step ", CASE WHEN status_code BETWEEN 200 AND 299"        \
    " THEN 1 ELSE 0 END, duration_us FROM attempts WHERE webhook_id = " w                          \
    " AND started_at >= " since " AND started_at < " until

/* A claimed job from deliveries d, webhooks w and events e; now is the parameter holding the
 * claim's time (a rotation's old secret signs until then). */
#define HL_JOB_COLS(now)                                                                           \
    "d.id, d.webhook_id, d.event_id, e.uid, e.created_at, d.attempts, d.created_at, w.url,"        \
    " w.secret, CASE WHEN w.prev_secret_until > " now " THEN coalesce(w.prev_secret, '')"          \
    " ELSE '' END, e.payload"
/* An ingestion job: the file, its app and its resource (files f, apps a, resources r). */
#define HL_INGEST_COLS "f.uid, f.app_id, a.uid, f.path, " HL_RESOURCE_COLS_R

/* The queries both backends answer. */
enum hl_q {
    HL_Q_APP_INSERT, /* RETURNING id */
    HL_Q_APP_GET,
    HL_Q_APP_LIST,
    HL_Q_KEY_INSERT,
    HL_Q_KEY_LOOKUP,
    HL_Q_KEY_REVOKE,
    HL_Q_KEY_LIST,
    HL_Q_WH_INSERT, /* RETURNING id */
    HL_Q_WH_GET,
    HL_Q_WH_GET_LOCKED, /* as HL_Q_WH_GET, locking the row until the transaction ends */
    HL_Q_WH_LIST,
    HL_Q_WH_UPDATE,
    HL_Q_WH_PAUSE_DELIVERIES,
    HL_Q_WH_RESUME_DELIVERIES,
    HL_Q_WH_DELETE,
    HL_Q_WH_CANCEL_DELIVERIES,
    HL_Q_WH_GONE,
    HL_Q_WH_AUTODISABLE,
    HL_Q_RES_GET,
    HL_Q_RES_LIST,
    HL_Q_RES_INSERT,
    HL_Q_RES_UPDATE,
    HL_Q_RES_DELETE,
    HL_Q_RES_EXISTS,
    HL_Q_FILE_INSERT,
    HL_Q_FILE_DELETE,
    HL_Q_CHUNKS_DELETE,
    HL_Q_CHUNK_INSERT,
    HL_Q_FILE_DONE,
    HL_Q_IDEM_INSERT,
    HL_Q_IDEM_GET,
    HL_Q_EV_LIST,
    HL_Q_EV_GET,
    HL_Q_ATTEMPT_INSERT,
    HL_Q_DELIV_SUCCESS,
    HL_Q_DELIV_RETRY,
    HL_Q_DELIV_FAILED,
    HL_Q_NEXT_DUE,
    HL_Q_DL_BY_EVENT,
    HL_Q_DL_LIST,
    HL_Q_DL_GET,
    HL_Q_ATT_LIST,
    HL_Q_DL_RESEND,
    HL_Q_RECOVER,
    HL_Q_ROTATE,
    HL_Q_WH_STATS,
    HL_Q_QUEUE_STATS,
    HL_Q_CHUNK_LIST,
    HL_Q_FILE_PATH,
    /* The console (issue 15). The delivery lists take the same nine parameters: webhook, app,
     * status, event type, since, until, before id (keyset: INT64_MAX for the first page), limit,
     * failing (1: only those whose last attempt failed); each query ignores those it does not
     * need, and a list by status is its own query so that its index is used. */
    HL_Q_DL_LIST_STATUS,     /* a webhook's deliveries in one status */
    HL_Q_DL_APP_LIST,        /* the app's deliveries, every webhook */
    HL_Q_DL_APP_LIST_STATUS, /* the app's deliveries in one status */
    HL_Q_RECOVER_COUNT,      /* what HL_Q_RECOVER would queue */
    HL_Q_WH_SERIES,          /* a webhook's attempts grouped by time bucket */
    HL_Q_KEY_APP,            /* the app of an unrevoked key, by the key's uid */
    HL_Q_CONSOLE_KEY_INSERT, /* the console's signing key, unless there is one */
    HL_Q_CONSOLE_KEY_GET,
    HL_Q_PORTAL_PRUNE,   /* used portal links past their expiry, forgotten */
    HL_Q_PORTAL_USE,     /* a portal link marked used, unless it was */
    HL_Q_EV_LIST_TENANT, /* HL_Q_EV_LIST for one externalTenantId, from its own index */
    HL_Q_SHARED          /* a backend's own queries are numbered from here */
};

/* For backends at open: whether every query of a SQL table has its text (err says which not). */
int hl_sql_check(const char *const *sql, int n, char *err, size_t errlen);

/* ---- parameters ---- */

enum hl_arg_type { HL_ARG_INT, HL_ARG_TEXT, HL_ARG_BLOB, HL_ARG_IDS };

/* One statement parameter. Borrowed: it points at the caller's data until run() returns. */
struct hl_arg {
    enum hl_arg_type type;
    int64_t i;     /* HL_ARG_INT */
    const void *p; /* TEXT, BLOB: the bytes (NULL binds SQL NULL); IDS: the int64_t ids */
    size_t len;    /* TEXT, BLOB: bytes; IDS: how many */
};

static inline struct hl_arg hl_arg_int(int64_t v)
{
    return (struct hl_arg){.type = HL_ARG_INT, .i = v};
}

/* A string of len bytes (no NUL needed), or SQL NULL when s is NULL. */
static inline struct hl_arg hl_arg_textn(const char *s, size_t len)
{
    return (struct hl_arg){.type = HL_ARG_TEXT, .p = s, .len = s ? len : 0};
}

/* A NUL-terminated string, or SQL NULL when s is NULL. */
static inline struct hl_arg hl_arg_text(const char *s)
{
    return hl_arg_textn(s, s ? strlen(s) : 0);
}

/* Bytes, or SQL NULL when p is NULL. */
static inline struct hl_arg hl_arg_blob(const void *p, size_t len)
{
    return (struct hl_arg){.type = HL_ARG_BLOB, .p = p, .len = p ? len : 0};
}

/* A list of ids (SQLite binds it as a JSON array for json_each, PostgreSQL as a bigint[]). */
static inline struct hl_arg hl_arg_ids(const int64_t *ids, size_t n)
{
    return (struct hl_arg){.type = HL_ARG_IDS, .p = ids, .len = n};
}

#define HL_NARGS(a) (sizeof(a) / sizeof((a)[0]))

/* Writes ids as text between open and close ("[1,2]" or "{1,2}") into b. */
int hl_ids_text(struct hl_buf *b, const int64_t *ids, size_t n, char open, char close);

/* ---- rows ---- */

struct hl_row;

/* How a backend reads a column of its current result row. */
struct hl_cols {
    /* An integer column; SQL NULL reads as 0. */
    int64_t (*i64)(const struct hl_row *r, int col);
    /* The bytes of a text or blob column and their count (not NUL-terminated); NULL for SQL
     * NULL. Valid until the backend moves to the next row. */
    const void *(*bytes)(const struct hl_row *r, int col, size_t *len);
};

/* The current row of a result, as a reader sees it. */
struct hl_row {
    const struct hl_cols *cols;
    const void *res; /* the backend's result: sqlite3_stmt *, PGresult * */
    int index;       /* the row in res, where the backend needs it */
    int oom;         /* set when a copy of a column could not be allocated */
};

/* Reads one row into a struct of its kind. */
struct hl_reader {
    size_t size;
    /* Fills item (zeroed) from r. Returns 0, or HL_ENOMEM with r->oom set. */
    int (*read)(struct hl_row *r, void *item);
    /* Frees what an item owns; NULL when it owns nothing. */
    void (*clear)(void *item);
};

extern const struct hl_reader hl_read_app;      /* struct hl_app: HL_APP_COLS */
extern const struct hl_reader hl_read_key;      /* struct hl_api_key */
extern const struct hl_reader hl_read_key_hit;  /* struct hl_key_hit: HL_APP_COLS, hash */
extern const struct hl_reader hl_read_webhook;  /* struct hl_webhook: HL_WEBHOOK_COLS */
extern const struct hl_reader hl_read_resource; /* struct hl_resource: HL_RESOURCE_COLS */
extern const struct hl_reader hl_read_event;    /* struct hl_event: HL_EVENT_COLS */
extern const struct hl_reader hl_read_idem_hit; /* struct hl_idem_hit */
extern const struct hl_reader hl_read_job;      /* struct hl_job: HL_JOB_COLS */
extern const struct hl_reader hl_read_delivery; /* struct hl_delivery: HL_DELIVERY_SELECT */
extern const struct hl_reader hl_read_attempt;  /* struct hl_attempt_rec */
extern const struct hl_reader hl_read_wh_stats; /* struct hl_webhook_stats */
extern const struct hl_reader hl_read_queue;    /* struct hl_queue_stats */
extern const struct hl_reader hl_read_ingest;   /* struct hl_ingest_job: HL_INGEST_COLS */
extern const struct hl_reader hl_read_chunk;    /* struct hl_text_chunk */
extern const struct hl_reader hl_read_series;   /* struct hl_series_point: one attempt */
extern const struct hl_reader hl_read_key32;    /* struct hl_key32: the first column */
extern const struct hl_reader hl_read_int;      /* int64_t: the first column */
extern const struct hl_reader hl_read_str;      /* char *: the first column, malloc'd */

/* An API key's app with the stored hash, for the constant-time comparison, and the key's uid. */
struct hl_key_hit {
    struct hl_app app;
    uint8_t hash[32];
    int hash_ok; /* the stored hash has 32 bytes */
    char key_uid[HL_ID_MAX];
};

/* A 32-byte secret read from a blob column. */
struct hl_key32 {
    uint8_t b[32];
    int ok; /* the column held exactly 32 bytes */
};

/* Where the rows of one statement go. */
struct hl_rows {
    const struct hl_reader *rd; /* NULL: rows are counted, not read */
    void *one;                  /* non-NULL: the first row is read into it, the rest counted */
    void *arr;                  /* else: every row, in one growing malloc'd array */
    size_t n, cap;              /* rows seen; the array's room */
    int64_t changed;            /* set by run: rows an INSERT, UPDATE or DELETE changed */
};

/* For backends: takes the current row. Returns 0, or HL_ENOMEM (the row is not kept). */
int hl_rows_put(struct hl_rows *rows, struct hl_row *r);
/* Frees what was read (each item, and the array) and empties rows. */
void hl_rows_clear(struct hl_rows *rows);

/* ---- sessions ---- */

enum hl_sess_kind {
    HL_SESS_READ,     /* reads (SQLite: a reader connection) */
    HL_SESS_WRITE,    /* statements that commit one by one (SQLite: the writer) */
    HL_SESS_TX,       /* one transaction, committed by close */
    HL_SESS_DISPATCH, /* the dispatcher's reads (PostgreSQL: its own connection) */
};

/* One connection held for one operation. */
struct hl_sess {
    struct hl_store *st;
    void *conn; /* the backend's */
    int tx;     /* a transaction is open */
};

/* What a backend implements: sessions for the operations written once (ops.c), and the
 * operations that really differ. */
struct hl_backend {
    /* Takes a connection of the kind (and opens the transaction of HL_SESS_TX). */
    int (*open)(struct hl_store *st, enum hl_sess_kind kind, struct hl_sess *s);
    /* Runs query q (an enum hl_q, or the backend's own) with parameters a[0..n): each result
     * row goes to hl_rows_put(rows) (rows may be NULL), rows->changed gets the rows changed.
     * Returns 0, HL_ECONFLICT on a constraint, HL_EUNAVAIL, HL_ESTORE or HL_ENOMEM; after an
     * error, rows may hold rows read before it. */
    int (*run)(struct hl_sess *s, int q, const struct hl_arg *a, size_t n, struct hl_rows *rows);
    /* Ends a session: in a transaction, commits when rc is 0 and rolls back otherwise. Gives the
     * connection back. Returns rc, or the commit's error. */
    int (*close)(struct hl_sess *s, int rc);
    /* In a transaction: has every node's dispatcher woken when it commits (PostgreSQL's
     * NOTIFY). NULL where the commit's own hl_store_notify reaches every dispatcher. */
    int (*wake_all)(struct hl_sess *s);
    /* In a transaction: writes a change's event and its deliveries (ch->ev is set), adding
     * the deliveries made to *made. */
    int (*event)(struct hl_sess *s, const struct hl_change *ch, int64_t *made);

    /* The operations of store.h that differ, with its contracts. */
    void (*destroy)(struct hl_store *st); /* hl_store_close */
    int (*lock)(struct hl_store *st, char *err, size_t errlen);
    int (*commit)(struct hl_store *st, const struct hl_change *ch, size_t n,
                  const struct hl_idem *idem, int64_t *deliveries);
    int (*claim)(struct hl_store *st, const struct hl_claim *c, struct hl_job **out, size_t *n);
    int (*record)(struct hl_store *st, const struct hl_attempt *a, size_t n);
    int (*release_leases)(struct hl_store *st);
    int (*ingest_claim)(struct hl_store *st, int64_t now, int64_t lease_until,
                        struct hl_ingest_job *out);
};

/* The part every backend's store starts with. */
struct hl_store {
    const struct hl_backend *be;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    uint64_t wake_seq;
    void (*on_notify)(void *arg); /* called by hl_store_notify, e.g. to wake a poll loop */
    void *on_notify_arg;
    int notifying; /* calls of on_notify under way */
};

/* For backends: initialises the common part. */
void hl_store_base_init(struct hl_store *st, const struct hl_backend *be);
/* For backends: releases the common part. */
void hl_store_base_destroy(struct hl_store *st);

/* The backends' hl_store_open. */
int hl_sqlite_open(const char *path, struct hl_store **out, char *err, size_t errlen);
int hl_postgres_open(const char *conninfo, struct hl_store **out, char *err, size_t errlen);

/* The seven parameters of an event's insert, in the order of both backends' statements: uid,
 * app_id, type, tenant, resource_uid, created_at, payload. */
#define HL_EVENT_ARGS 7
void hl_event_args(const struct hl_event *e, struct hl_arg a[HL_EVENT_ARGS]);

/* ---- helpers of the operations written once (ops.c), for the backends' own ---- */

/* Runs one statement on a session of its own; on error, rows holds nothing. */
int hl_sql_once(struct hl_store *st, enum hl_sess_kind kind, int q, const struct hl_arg *a,
                size_t n, struct hl_rows *rows);

/* In a transaction: writes n changes (their resources, files, events and deliveries) and the
 * idempotency answer; adds the deliveries made to *made. */
int hl_sql_apply(struct hl_sess *s, const struct hl_change *ch, size_t n,
                 const struct hl_idem *idem, int64_t *made);
/* In a transaction: an attempt's row and its delivery's new state. now: when it is recorded. */
int hl_sql_record_delivery(struct hl_sess *s, const struct hl_attempt *a, int64_t now);
/* In a transaction: disables the attempt's webhook as the outcome policy decided (hl_retry_outcome
 * in delivery/retry.h): on HL_OUT_GONE, or when its run of failures began at or before
 * at->disable_failing_since (0: not by this attempt), with at->disable_reason as the reason; the
 * store makes no decision of its own. *disabled says whether this call disabled it; its pending
 * deliveries are then for hl_sql_park. */
int hl_sql_disable(struct hl_sess *s, const struct hl_attempt *at, int64_t now, int *disabled);
/* In a transaction: parks a webhook's pending deliveries until it is enabled again. */
int hl_sql_park(struct hl_sess *s, int64_t webhook_id);

#endif
