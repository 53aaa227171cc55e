/* SQLite backend: one file, WAL, foreign keys, versioned migrations.
 *
 * One connection guarded by one mutex: SQLite serialises writers anyway, and a single connection
 * lets every statement be prepared once. Transactions are short and never wait on the network.
 */
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "store/store.h"

static const char *const MIGRATIONS[] = {
    /* 1: the foundation */
    "CREATE TABLE apps(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE api_keys(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id INTEGER NOT NULL REFERENCES apps(id), hash BLOB NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);"
    "CREATE TABLE webhooks(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id INTEGER NOT NULL REFERENCES apps(id), url TEXT NOT NULL, description TEXT,"
    " entities INTEGER NOT NULL, event_types INTEGER NOT NULL DEFAULT 0,"
    " active INTEGER NOT NULL, secret TEXT NOT NULL, prev_secret TEXT,"
    " prev_secret_until INTEGER NOT NULL DEFAULT 0, created_at INTEGER NOT NULL,"
    " updated_at INTEGER NOT NULL, last_triggered_at INTEGER NOT NULL DEFAULT 0,"
    " last_success_at INTEGER NOT NULL DEFAULT 0, last_failure_at INTEGER NOT NULL DEFAULT 0,"
    " failing_since INTEGER NOT NULL DEFAULT 0, disabled_at INTEGER NOT NULL DEFAULT 0,"
    " disabled_reason TEXT, deleted_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX webhooks_app ON webhooks(app_id, id);"
    "CREATE TABLE resources(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id INTEGER NOT NULL REFERENCES apps(id), kind INTEGER NOT NULL, parent_uid TEXT NOT NULL,"
    " tenant TEXT NOT NULL, body TEXT NOT NULL, version INTEGER NOT NULL,"
    " created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL);"
    "CREATE INDEX resources_list ON resources(app_id, kind, id);"
    "CREATE TABLE events(id INTEGER PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id INTEGER NOT NULL REFERENCES apps(id), type INTEGER NOT NULL, tenant TEXT NOT NULL,"
    " resource_uid TEXT NOT NULL, created_at INTEGER NOT NULL, payload BLOB NOT NULL);"
    "CREATE INDEX events_app ON events(app_id, id);"
    "CREATE TABLE deliveries(id INTEGER PRIMARY KEY,"
    " event_id INTEGER NOT NULL REFERENCES events(id),"
    " webhook_id INTEGER NOT NULL REFERENCES webhooks(id), status INTEGER NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0, next_attempt_at INTEGER NOT NULL,"
    " lease_until INTEGER NOT NULL DEFAULT 0, last_status INTEGER NOT NULL DEFAULT 0,"
    " last_error TEXT, created_at INTEGER NOT NULL, delivered_at INTEGER NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 0;"
    "CREATE INDEX deliveries_webhook ON deliveries(webhook_id, status, id);"
    "CREATE INDEX deliveries_event ON deliveries(event_id);"
    "CREATE TABLE attempts(id INTEGER PRIMARY KEY,"
    " delivery_id INTEGER NOT NULL REFERENCES deliveries(id), started_at INTEGER NOT NULL,"
    " duration_us INTEGER NOT NULL, status_code INTEGER NOT NULL, error TEXT, response BLOB);"
    "CREATE INDEX attempts_delivery ON attempts(delivery_id, id);"
    "CREATE TABLE idempotency(app_id INTEGER NOT NULL REFERENCES apps(id), key TEXT NOT NULL,"
    " request_hash BLOB NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL,"
    " created_at INTEGER NOT NULL, PRIMARY KEY(app_id, key));",
    /* 2: context-file ingestion */
    "CREATE TABLE files(uid TEXT PRIMARY KEY, app_id INTEGER NOT NULL REFERENCES apps(id),"
    " path TEXT NOT NULL, size INTEGER NOT NULL, sha256 TEXT NOT NULL,"
    " state INTEGER NOT NULL DEFAULT 0, lease_until INTEGER NOT NULL DEFAULT 0,"
    " created_at INTEGER NOT NULL);"
    "CREATE INDEX files_queue ON files(state, created_at);"
    "CREATE TABLE chunks(file_uid TEXT NOT NULL, idx INTEGER NOT NULL, offset INTEGER NOT NULL,"
    " text TEXT NOT NULL, PRIMARY KEY(file_uid, idx));",
    /* 3: claims webhook by webhook */
    "CREATE INDEX deliveries_wh_due ON deliveries(webhook_id, next_attempt_at) WHERE status = 0;",
};
#define HL_STR_OF2(x) #x
#define HL_STR_OF(x) HL_STR_OF2(x)
#define NMIGRATIONS (sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]))

#define WEBHOOK_COLS                                                                               \
    "id, uid, app_id, url, description, entities, event_types, active, secret,"                    \
    " coalesce(prev_secret, ''), prev_secret_until, created_at, updated_at, last_triggered_at,"    \
    " last_success_at, last_failure_at, failing_since, disabled_at, disabled_reason"
#define RESOURCE_COLS                                                                              \
    "id, kind, uid, app_id, parent_uid, tenant, body, version, created_at, updated_at"
#define RESOURCE_COLS_R                                                                            \
    "r.id, r.kind, r.uid, r.app_id, r.parent_uid, r.tenant, r.body, r.version, r.created_at,"      \
    " r.updated_at"
#define EVENT_COLS "id, uid, type, app_id, tenant, resource_uid, created_at, payload"
#define DELIVERY_SELECT                                                                            \
    "SELECT d.id, d.webhook_id, w.uid, e.uid, e.type, d.status, d.attempts, d.last_status,"        \
    " d.last_error, d.next_attempt_at, d.created_at, d.delivered_at FROM deliveries d"             \
    " JOIN webhooks w ON w.id = d.webhook_id JOIN events e ON e.id = d.event_id"

enum q {
    Q_BEGIN,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_ROLLBACK_TO,
    Q_RELEASE_SP,
    Q_APP_INSERT,
    Q_APP_GET,
    Q_APP_LIST,
    Q_KEY_INSERT,
    Q_KEY_LOOKUP,
    Q_KEY_REVOKE,
    Q_KEY_LIST,
    Q_WH_INSERT,
    Q_WH_GET,
    Q_WH_LIST,
    Q_WH_UPDATE,
    Q_WH_PAUSE_DELIVERIES,
    Q_WH_RESUME_DELIVERIES,
    Q_WH_DELETE,
    Q_WH_CANCEL_DELIVERIES,
    Q_RES_GET,
    Q_RES_LIST,
    Q_RES_INSERT,
    Q_RES_UPDATE,
    Q_RES_DELETE,
    Q_EV_INSERT,
    Q_DELIV_FANOUT,
    Q_DELIV_ONE,
    Q_IDEM_INSERT,
    Q_IDEM_GET,
    Q_EV_LIST,
    Q_CLAIM_SELECT,
    Q_CLAIM_NEW,
    Q_MAX_DELIVERY,
    Q_CLAIM_LEASE,
    Q_ATTEMPT_INSERT,
    Q_DELIV_SUCCESS,
    Q_DELIV_RETRY,
    Q_DELIV_FAILED,
    Q_WH_ATTEMPTS,
    Q_WH_GONE,
    Q_WH_AUTODISABLE,
    Q_NEXT_DUE,
    Q_RELEASE,
    Q_RELEASE_FILES,
    Q_EV_GET,
    Q_DL_BY_EVENT,
    Q_DL_LIST,
    Q_DL_GET,
    Q_ATT_LIST,
    Q_DL_RESEND,
    Q_RECOVER,
    Q_ROTATE,
    Q_WH_STATS,
    Q_QUEUE_STATS,
    Q_FILE_INSERT,
    Q_FILE_DELETE,
    Q_CHUNKS_DELETE,
    Q_CHUNK_INSERT,
    Q_FILE_DONE,
    Q_INGEST_SELECT,
    Q_INGEST_LEASE,
    Q_CHUNK_LIST,
    Q_FILE_PATH,
    Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT req",
    [Q_ROLLBACK_TO] = "ROLLBACK TO req",
    [Q_RELEASE_SP] = "RELEASE req",
    [Q_APP_INSERT] = "INSERT INTO apps(uid, name, created_at) VALUES(?1, ?2, ?3)",
    [Q_APP_GET] = "SELECT id, uid, name, created_at FROM apps WHERE uid = ?1",
    [Q_APP_LIST] = "SELECT id, uid, name, created_at FROM apps ORDER BY id",
    [Q_KEY_INSERT] = "INSERT INTO api_keys(uid, app_id, hash, prefix, created_at)"
                     " VALUES(?1, ?2, ?3, ?4, ?5)",
    [Q_KEY_LOOKUP] = "SELECT a.id, a.uid, a.name, a.created_at, k.hash FROM api_keys k"
                     " JOIN apps a ON a.id = k.app_id WHERE k.hash = ?1 AND k.revoked_at IS NULL",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?2 WHERE uid = ?1 AND revoked_at IS NULL",
    [Q_KEY_LIST] = "SELECT k.uid, k.app_id, a.uid, k.prefix, k.created_at,"
                   " coalesce(k.revoked_at, 0) FROM api_keys k JOIN apps a ON a.id = k.app_id"
                   " WHERE ?1 = 0 OR k.app_id = ?1 ORDER BY k.id",
    [Q_WH_INSERT] = "INSERT INTO webhooks(uid, app_id, url, description, entities, event_types,"
                    " active, secret, created_at, updated_at)"
                    " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9)",
    [Q_WH_GET] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1 AND uid = ?2"
                 " AND deleted_at = 0",
    [Q_WH_LIST] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1 AND id > ?2"
                  " AND deleted_at = 0 ORDER BY id LIMIT ?3",
    [Q_WH_UPDATE] = "UPDATE webhooks SET url = ?3, description = ?4, entities = ?5,"
                    " event_types = ?6, active = ?7, updated_at = ?8,"
                    " disabled_at = CASE WHEN ?7 THEN 0 ELSE disabled_at END,"
                    " disabled_reason = CASE WHEN ?7 THEN NULL ELSE disabled_reason END,"
                    " failing_since = CASE WHEN ?7 AND NOT active THEN 0 ELSE failing_since END"
                    " WHERE app_id = ?1 AND uid = ?2 AND deleted_at = 0",
    [Q_WH_PAUSE_DELIVERIES] = "UPDATE deliveries SET status = 4 WHERE webhook_id = ?1"
                              " AND status = 0",
    [Q_WH_RESUME_DELIVERIES] = "UPDATE deliveries SET status = 0, next_attempt_at = ?2"
                               " WHERE webhook_id = ?1 AND status = 4",
    [Q_WH_DELETE] = "UPDATE webhooks SET deleted_at = ?3, active = 0"
                    " WHERE app_id = ?1 AND uid = ?2 AND deleted_at = 0",
    [Q_WH_CANCEL_DELIVERIES] = "UPDATE deliveries SET status = 3, lease_until = 0"
                               " WHERE webhook_id = (SELECT id FROM webhooks WHERE uid = ?1)"
                               " AND status IN (0, 4)",
    [Q_RES_GET] = "SELECT " RESOURCE_COLS " FROM resources WHERE app_id = ?1 AND kind = ?2"
                  " AND uid = ?3",
    [Q_RES_LIST] = "SELECT " RESOURCE_COLS " FROM resources WHERE app_id = ?1 AND kind = ?2"
                   " AND (?3 IS NULL OR parent_uid = ?3) AND (?4 IS NULL OR tenant = ?4)"
                   " AND id > ?5 ORDER BY id LIMIT ?6",
    [Q_RES_INSERT] = "INSERT INTO resources(uid, app_id, kind, parent_uid, tenant, body, version,"
                     " created_at, updated_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
    [Q_RES_UPDATE] = "UPDATE resources SET tenant = ?4, body = ?5, version = version + 1,"
                     " updated_at = ?6 WHERE app_id = ?1 AND uid = ?2 AND version = ?3",
    [Q_RES_DELETE] = "DELETE FROM resources WHERE app_id = ?1 AND uid = ?2 AND version = ?3",
    [Q_EV_INSERT] = "INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at,"
                    " payload) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    [Q_DELIV_FANOUT] = "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
                       " created_at) SELECT ?1, id, 0, ?2, ?2 FROM webhooks"
                       " WHERE app_id = ?3 AND active = 1 AND deleted_at = 0"
                       " AND (entities & ?4) != 0 AND (event_types = 0 OR (event_types & ?5) != 0)",
    [Q_DELIV_ONE] = "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
                    " created_at) VALUES(?1, ?2, 0, ?3, ?3)",
    [Q_IDEM_INSERT] = "INSERT INTO idempotency(app_id, key, request_hash, status, response,"
                      " created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(app_id, key)"
                      " DO UPDATE SET request_hash = excluded.request_hash,"
                      " status = excluded.status, response = excluded.response,"
                      " created_at = excluded.created_at WHERE idempotency.created_at < ?7",
    [Q_IDEM_GET] = "SELECT request_hash, status, response FROM idempotency WHERE app_id = ?1"
                   " AND key = ?2 AND created_at >= ?3",
    [Q_EV_LIST] = "SELECT " EVENT_COLS " FROM events WHERE app_id = ?1"
                  " AND (?2 < 0 OR type = ?2) AND (?3 IS NULL OR tenant = ?3)"
                  " AND (?4 = 0 OR created_at >= ?4) AND (?5 = 0 OR created_at < ?5)"
                  " AND (?6 = 0 OR id < ?6) ORDER BY id DESC LIMIT ?7",
    /* Webhook by webhook, at most HL_CLAIM_PER_WEBHOOK apiece: a backlog on one endpoint costs
     * one index probe, not a scan of its rows, and cannot crowd out the rest. The webhooks are
     * those with pending deliveries, found by skipping through the partial index (one seek
     * each), so idle webhooks cost nothing however many there are. */
    [Q_CLAIM_SELECT] =
        "WITH RECURSIVE wh(id) AS (SELECT (SELECT min(webhook_id) FROM deliveries"
        " INDEXED BY deliveries_wh_due WHERE status = 0) UNION ALL"
        " SELECT (SELECT min(webhook_id) FROM deliveries INDEXED BY deliveries_wh_due"
        " WHERE status = 0 AND webhook_id > wh.id) FROM wh WHERE wh.id IS NOT NULL)"
        " SELECT d.id, d.webhook_id, d.event_id, e.uid, e.created_at, d.attempts, d.created_at,"
        " w.url, w.secret, CASE WHEN w.prev_secret_until > ?1 THEN coalesce(w.prev_secret, '')"
        " ELSE '' END, e.payload FROM wh CROSS JOIN webhooks w CROSS JOIN deliveries d"
        " CROSS JOIN events e WHERE w.id = wh.id AND w.active = 1 AND w.deleted_at = 0"
        " AND w.id NOT IN (SELECT value FROM json_each(?2))"
        " AND d.id IN (SELECT d2.id FROM deliveries d2 WHERE d2.webhook_id = w.id"
        " AND d2.status = 0 AND d2.next_attempt_at <= ?1 AND d2.lease_until <= ?1"
        " ORDER BY d2.next_attempt_at LIMIT " HL_STR_OF(
            HL_CLAIM_PER_WEBHOOK) ")"
                                  " AND e.id = d.event_id ORDER BY d.next_attempt_at LIMIT ?3",
    /* The deliveries made since the last claim of this kind, in id order (a rowid range). */
    [Q_CLAIM_NEW] =
        "SELECT d.id, d.webhook_id, d.event_id, e.uid, e.created_at, d.attempts, d.created_at,"
        " w.url, w.secret, CASE WHEN w.prev_secret_until > ?1 THEN coalesce(w.prev_secret, '')"
        " ELSE '' END, e.payload FROM deliveries d CROSS JOIN webhooks w CROSS JOIN events e"
        " WHERE d.id > ?4 AND d.status = 0 AND d.next_attempt_at <= ?1 AND d.lease_until <= ?1"
        " AND w.id = d.webhook_id AND w.active = 1 AND w.deleted_at = 0"
        " AND w.id NOT IN (SELECT value FROM json_each(?2)) AND e.id = d.event_id"
        " ORDER BY d.id LIMIT ?3",
    [Q_MAX_DELIVERY] = "SELECT coalesce(max(id), 0) FROM deliveries",
    [Q_CLAIM_LEASE] = "UPDATE deliveries SET lease_until = ?2"
                      " WHERE id IN (SELECT value FROM json_each(?1))",
    [Q_ATTEMPT_INSERT] = "INSERT INTO attempts(delivery_id, started_at, duration_us, status_code,"
                         " error, response) VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_DELIV_SUCCESS] = "UPDATE deliveries SET status = 1, attempts = attempts + 1,"
                        " last_status = ?2, last_error = NULL, delivered_at = ?3, lease_until = 0"
                        " WHERE id = ?1 AND status IN (0, 2, 4)",
    [Q_DELIV_RETRY] = "UPDATE deliveries SET attempts = attempts + 1, last_status = ?2,"
                      " last_error = ?3, next_attempt_at = ?4, lease_until = 0"
                      " WHERE id = ?1 AND status IN (0, 4)",
    [Q_DELIV_FAILED] = "UPDATE deliveries SET status = 2, attempts = attempts + 1,"
                       " last_status = ?2, last_error = ?3, lease_until = 0"
                       " WHERE id = ?1 AND status IN (0, 2, 4)",
    /* One update per webhook and batch (see record_webhooks): ?5 says how the batch ended: 1 in
     * success, 2 in failures after a success (a new run began at ?6), 0 in failures only. */
    [Q_WH_ATTEMPTS] = "UPDATE webhooks SET last_triggered_at = max(last_triggered_at, ?2),"
                      " last_success_at = max(last_success_at, ?3),"
                      " last_failure_at = max(last_failure_at, ?4),"
                      " failing_since = CASE WHEN ?5 = 1 THEN 0 WHEN ?5 = 2 THEN ?6"
                      " WHEN failing_since = 0 THEN ?6 ELSE failing_since END WHERE id = ?1",
    [Q_WH_GONE] = "UPDATE webhooks SET active = 0, disabled_at = ?2, disabled_reason = ?3"
                  " WHERE id = ?1 AND active = 1",
    [Q_WH_AUTODISABLE] = "UPDATE webhooks SET active = 0, disabled_at = ?2, disabled_reason = ?3"
                         " WHERE id = ?1 AND active = 1 AND failing_since > 0"
                         " AND failing_since <= ?4",
    [Q_NEXT_DUE] = "SELECT min(d.next_attempt_at) FROM deliveries d WHERE d.status = 0"
                   " AND d.lease_until <= ?1",
    [Q_RELEASE] = "UPDATE deliveries SET lease_until = 0 WHERE lease_until != 0",
    [Q_RELEASE_FILES] = "UPDATE files SET lease_until = 0 WHERE lease_until != 0",
    [Q_EV_GET] = "SELECT " EVENT_COLS " FROM events WHERE app_id = ?1 AND uid = ?2",
    [Q_DL_BY_EVENT] = DELIVERY_SELECT " WHERE d.event_id = ?1 ORDER BY d.id",
    [Q_DL_LIST] =
        DELIVERY_SELECT " WHERE d.webhook_id = ?1 AND w.app_id = ?2"
                        " AND (?3 < 0 OR d.status = ?3) AND (?4 < 0 OR e.type = ?4)"
                        " AND (?5 = 0 OR d.created_at >= ?5) AND (?6 = 0 OR d.created_at < ?6)"
                        " AND (?7 = 0 OR d.id < ?7) ORDER BY d.id DESC LIMIT ?8",
    [Q_DL_GET] = DELIVERY_SELECT " WHERE d.id = ?1 AND w.app_id = ?2",
    [Q_ATT_LIST] = "SELECT started_at, duration_us, status_code, error, response FROM attempts"
                   " WHERE delivery_id = ?1 ORDER BY id",
    [Q_DL_RESEND] = "UPDATE deliveries SET status = 0, next_attempt_at = ?3, lease_until = 0"
                    " WHERE id = ?1 AND lease_until <= ?3 AND webhook_id IN"
                    " (SELECT id FROM webhooks WHERE app_id = ?2 AND deleted_at = 0)",
    [Q_RECOVER] = "UPDATE deliveries SET status = 0, next_attempt_at = ?4, lease_until = 0"
                  " WHERE webhook_id = ?1 AND status = 2 AND created_at >= ?2"
                  " AND (?3 = 0 OR created_at < ?3)",
    [Q_ROTATE] = "UPDATE webhooks SET prev_secret = CASE WHEN ?4 > ?5 THEN secret END,"
                 " prev_secret_until = CASE WHEN ?4 > ?5 THEN ?4 ELSE 0 END, secret = ?3,"
                 " updated_at = ?5 WHERE app_id = ?1 AND uid = ?2 AND deleted_at = 0",
    [Q_WH_STATS] = "SELECT count(*) FILTER (WHERE status IN (0, 4)),"
                   " count(*) FILTER (WHERE status = 1), count(*) FILTER (WHERE status = 2)"
                   " FROM deliveries WHERE webhook_id = ?1",
    [Q_FILE_INSERT] = "INSERT INTO files(uid, app_id, path, size, sha256, created_at)"
                      " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [Q_FILE_DELETE] = "DELETE FROM files WHERE uid = ?1",
    [Q_CHUNKS_DELETE] = "DELETE FROM chunks WHERE file_uid = ?1",
    [Q_CHUNK_INSERT] = "INSERT INTO chunks(file_uid, idx, offset, text) VALUES(?1, ?2, ?3, ?4)",
    [Q_FILE_DONE] = "UPDATE files SET state = 2, lease_until = 0 WHERE uid = ?1",
    [Q_INGEST_SELECT] = "SELECT f.uid, f.app_id, a.uid, f.path, " RESOURCE_COLS_R
                        " FROM files f JOIN apps a ON a.id = f.app_id"
                        " JOIN resources r ON r.uid = f.uid"
                        " WHERE f.state < 2 AND f.lease_until <= ?1 ORDER BY f.created_at LIMIT 1",
    [Q_INGEST_LEASE] = "UPDATE files SET state = 1, lease_until = ?2 WHERE uid = ?1",
    [Q_CHUNK_LIST] = "SELECT c.idx, c.offset, c.text FROM chunks c JOIN files f"
                     " ON f.uid = c.file_uid WHERE f.app_id = ?1 AND c.file_uid = ?2"
                     " AND c.idx > ?3 ORDER BY c.idx LIMIT ?4",
    [Q_FILE_PATH] = "SELECT path FROM files WHERE app_id = ?1 AND uid = ?2",
    [Q_QUEUE_STATS] = "SELECT count(*), coalesce(min(created_at), 0) FROM deliveries"
                      " WHERE status = 0",
};

/* One connection and its prepared statements, used under its mutex. */
struct sq {
    sqlite3 *db;
    pthread_mutex_t mu;
    sqlite3_stmt *stmts[Q_COUNT];
};

/* A change set waiting for the group commit. */
struct commit_req {
    const struct hl_change *ch;
    size_t n;
    const struct hl_idem *idem;
    const struct hl_attempt *att; /* or the dispatcher's finished attempts */
    size_t natt;
    int64_t made;
    int rc;
    int done;
    pthread_cond_t cv; /* its caller waits here: for its result, or to lead the next batch */
    struct commit_req *next;
};

#define NREAD 4

/* The store: one writer connection, a few readers (WAL lets them read while the writer
 * commits), and the queue of the group commit. */
struct sqdb {
    struct hl_store base;
    struct sq w;
    struct sq r[NREAD];
    unsigned next_read;
    pthread_mutex_t q_mu;
    struct commit_req *q_head, *q_tail;
    int committing;
};

static struct sqdb *DB(struct hl_store *base)
{
    return (struct sqdb *)base;
}

/* The writer connection. */
static struct sq *SQ(struct hl_store *base)
{
    return &DB(base)->w;
}

/* A reader connection (round robin). */
static struct sq *RD(struct hl_store *base)
{
    struct sqdb *db = DB(base);
    unsigned i = __atomic_fetch_add(&db->next_read, 1, __ATOMIC_RELAXED);
    return &db->r[i % NREAD];
}

/* Ends a use of the connection: resets every statement left mid-result (a statement that is not
 * reset keeps its read transaction open and would pin an old snapshot), then unlocks. */
static void unlock(struct sq *s)
{
    for (int i = 0; i < Q_COUNT; i++)
        if (s->stmts[i] && sqlite3_stmt_busy(s->stmts[i]))
            sqlite3_reset(s->stmts[i]);
    pthread_mutex_unlock(&s->mu);
}

static int fail(struct sq *s, const char *what)
{
    hl_error("sqlite: %s: %s", what, sqlite3_errmsg(s->db));
    return HL_ESTORE;
}

/* The prepared statement for q, reset and with its bindings cleared. Called under s->mu. */
static sqlite3_stmt *Q(struct sq *s, enum q q)
{
    sqlite3_stmt *st = s->stmts[q];
    if (!st) {
        if (sqlite3_prepare_v3(s->db, SQL[q], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            hl_error("sqlite: prepare %d: %s", (int)q, sqlite3_errmsg(s->db));
            return NULL;
        }
        s->stmts[q] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

static void bind_text(sqlite3_stmt *st, int i, const char *v)
{
    if (v)
        sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, i);
}

static char *col_dup(sqlite3_stmt *st, int i)
{
    if (sqlite3_column_type(st, i) == SQLITE_NULL)
        return NULL;
    const char *p = (const char *)sqlite3_column_text(st, i);
    return strdup(p ? p : "");
}

static void col_copy(sqlite3_stmt *st, int i, char *out, size_t cap)
{
    const char *p = (const char *)sqlite3_column_text(st, i);
    snprintf(out, cap, "%s", p ? p : "");
}

/* Runs a statement that returns no rows. Returns 0, HL_ECONFLICT on a constraint, or
 * HL_ESTORE. */
static int run(struct sq *s, sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return HL_OK;
    if ((rc & 0xff) == SQLITE_CONSTRAINT)
        return HL_ECONFLICT;
    return fail(s, sqlite3_sql(st));
}

static int simple(struct sq *s, enum q q)
{
    sqlite3_stmt *st = Q(s, q);
    return st ? run(s, st) : HL_ESTORE;
}

static int begin(struct sq *s)
{
    return simple(s, Q_BEGIN);
}

static int finish(struct sq *s, int rc)
{
    if (rc == HL_OK) {
        rc = simple(s, Q_COMMIT);
        if (rc == HL_OK)
            return HL_OK;
    }
    simple(s, Q_ROLLBACK);
    return rc;
}

static int exec_sql(struct sq *s, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(s->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        hl_error("sqlite: %s", msg ? msg : "exec failed");
        sqlite3_free(msg);
        return HL_ESTORE;
    }
    return HL_OK;
}

static int migrate(struct sq *s, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
        goto bad;
    if (sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version > (int)NMIGRATIONS) {
        snprintf(err, errlen, "database schema %d is newer than this hookline (%d)", version,
                 (int)NMIGRATIONS);
        return HL_ESTORE;
    }
    for (int v = version; v < (int)NMIGRATIONS; v++) {
        char pragma[64];
        snprintf(pragma, sizeof(pragma), "PRAGMA user_version = %d", v + 1);
        if (exec_sql(s, "BEGIN IMMEDIATE") || exec_sql(s, MIGRATIONS[v]) || exec_sql(s, pragma) ||
            exec_sql(s, "COMMIT")) {
            exec_sql(s, "ROLLBACK");
            goto bad;
        }
        hl_info("sqlite: migrated schema to version %d", v + 1);
    }
    return HL_OK;
bad:
    snprintf(err, errlen, "migration failed: %s", sqlite3_errmsg(s->db));
    return HL_ESTORE;
}

/* ---- apps and keys ---- */

static void read_app(sqlite3_stmt *st, struct hl_app *a)
{
    a->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, a->uid, sizeof(a->uid));
    col_copy(st, 2, a->name, sizeof(a->name));
    a->created_at = sqlite3_column_int64(st, 3);
}

static int sq_app_create(struct hl_store *base, const char *uid, const char *name,
                         struct hl_app *out)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    int64_t now = hl_now_ms();
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_APP_INSERT);
    if (st) {
        bind_text(st, 1, uid);
        bind_text(st, 2, name);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st);
    }
    if (rc == HL_OK && out) {
        out->id = sqlite3_last_insert_rowid(s->db);
        snprintf(out->uid, sizeof(out->uid), "%s", uid);
        snprintf(out->name, sizeof(out->name), "%s", name);
        out->created_at = now;
    }
    unlock(s);
    return rc;
}

static int sq_app_get(struct hl_store *base, const char *uid, struct hl_app *out)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_APP_GET);
    if (st) {
        bind_text(st, 1, uid);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            read_app(st, out);
            rc = HL_OK;
        } else if (r == SQLITE_DONE) {
            rc = HL_ENOTFOUND;
        } else {
            rc = fail(s, "app get");
        }
    }
    unlock(s);
    return rc;
}

/* Grows *arr (of *cap elements of size sz) so that it holds at least n+1. */
static int grow(void **arr, size_t *cap, size_t n, size_t sz)
{
    if (n < *cap)
        return HL_OK;
    size_t c = *cap ? *cap * 2 : 16;
    void *p = realloc(*arr, c * sz);
    if (!p)
        return HL_ENOMEM;
    memset((char *)p + *cap * sz, 0, (c - *cap) * sz);
    *arr = p;
    *cap = c;
    return HL_OK;
}

static int sq_app_list(struct hl_store *base, struct hl_app **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_app *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_APP_LIST);
    if (st) {
        int r;
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc == HL_OK)
                read_app(st, &arr[len++]);
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "app list");
    }
    unlock(s);
    if (rc) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_key_create(struct hl_store *base, int64_t app_id, const char *uid,
                         const uint8_t hash[32], const char *prefix)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_KEY_INSERT);
    if (st) {
        bind_text(st, 1, uid);
        sqlite3_bind_int64(st, 2, app_id);
        sqlite3_bind_blob(st, 3, hash, 32, SQLITE_STATIC);
        bind_text(st, 4, prefix);
        sqlite3_bind_int64(st, 5, hl_now_ms());
        rc = run(s, st);
    }
    unlock(s);
    return rc;
}

static int sq_key_lookup(struct hl_store *base, const uint8_t hash[32], struct hl_app *app)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_KEY_LOOKUP);
    if (st) {
        sqlite3_bind_blob(st, 1, hash, 32, SQLITE_STATIC);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            const void *h = sqlite3_column_blob(st, 4);
            /* The index found the row; the final word is a constant-time comparison. */
            if (h && sqlite3_column_bytes(st, 4) == 32 && CRYPTO_memcmp(h, hash, 32) == 0) {
                read_app(st, app);
                rc = HL_OK;
            } else {
                rc = HL_ENOTFOUND;
            }
        } else if (r == SQLITE_DONE) {
            rc = HL_ENOTFOUND;
        } else {
            rc = fail(s, "key lookup");
        }
    }
    unlock(s);
    return rc;
}

static int sq_key_revoke(struct hl_store *base, const char *uid)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_KEY_REVOKE);
    if (st) {
        bind_text(st, 1, uid);
        sqlite3_bind_int64(st, 2, hl_now_ms());
        rc = run(s, st);
        if (rc == HL_OK && sqlite3_changes(s->db) == 0)
            rc = HL_ENOTFOUND;
    }
    unlock(s);
    return rc;
}

static int sq_key_list(struct hl_store *base, int64_t app_id, struct hl_api_key **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_api_key *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_KEY_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        int r;
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc)
                break;
            struct hl_api_key *k = &arr[len++];
            col_copy(st, 0, k->uid, sizeof(k->uid));
            k->app_id = sqlite3_column_int64(st, 1);
            col_copy(st, 2, k->app_uid, sizeof(k->app_uid));
            col_copy(st, 3, k->prefix, sizeof(k->prefix));
            k->created_at = sqlite3_column_int64(st, 4);
            k->revoked_at = sqlite3_column_int64(st, 5);
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "key list");
    }
    unlock(s);
    if (rc) {
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

/* ---- webhooks ---- */

static int read_webhook(sqlite3_stmt *st, struct hl_webhook *w)
{
    memset(w, 0, sizeof(*w));
    w->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, w->uid, sizeof(w->uid));
    w->app_id = sqlite3_column_int64(st, 2);
    w->url = col_dup(st, 3);
    w->description = col_dup(st, 4);
    w->entities = (unsigned)sqlite3_column_int(st, 5);
    w->event_types = (unsigned)sqlite3_column_int(st, 6);
    w->active = sqlite3_column_int(st, 7);
    col_copy(st, 8, w->secret, sizeof(w->secret));
    col_copy(st, 9, w->prev_secret, sizeof(w->prev_secret));
    w->prev_secret_until = sqlite3_column_int64(st, 10);
    w->created_at = sqlite3_column_int64(st, 11);
    w->updated_at = sqlite3_column_int64(st, 12);
    w->last_triggered_at = sqlite3_column_int64(st, 13);
    w->last_success_at = sqlite3_column_int64(st, 14);
    w->last_failure_at = sqlite3_column_int64(st, 15);
    w->failing_since = sqlite3_column_int64(st, 16);
    w->disabled_at = sqlite3_column_int64(st, 17);
    w->disabled_reason = col_dup(st, 18);
    if (!w->url || (sqlite3_column_type(st, 4) != SQLITE_NULL && !w->description)) {
        hl_webhook_clear(w);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int sq_webhook_create(struct hl_store *base, struct hl_webhook *w)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_WH_INSERT);
    if (st) {
        bind_text(st, 1, w->uid);
        sqlite3_bind_int64(st, 2, w->app_id);
        bind_text(st, 3, w->url);
        bind_text(st, 4, w->description);
        sqlite3_bind_int(st, 5, (int)w->entities);
        sqlite3_bind_int(st, 6, (int)w->event_types);
        sqlite3_bind_int(st, 7, w->active ? 1 : 0);
        bind_text(st, 8, w->secret);
        sqlite3_bind_int64(st, 9, w->created_at);
        rc = run(s, st);
        if (rc == HL_OK)
            w->id = sqlite3_last_insert_rowid(s->db);
    }
    unlock(s);
    return rc;
}

/* Reads one webhook by app and uid. Called under s->mu. */
static int webhook_get_locked(struct sq *s, int64_t app_id, const char *uid, struct hl_webhook *out)
{
    sqlite3_stmt *st = Q(s, Q_WH_GET);
    if (!st)
        return HL_ESTORE;
    sqlite3_bind_int64(st, 1, app_id);
    bind_text(st, 2, uid);
    int r = sqlite3_step(st);
    if (r == SQLITE_ROW)
        return read_webhook(st, out);
    if (r == SQLITE_DONE)
        return HL_ENOTFOUND;
    return fail(s, "webhook get");
}

static int sq_webhook_get(struct hl_store *base, int64_t app_id, const char *uid,
                          struct hl_webhook *out)
{
    struct sq *s = RD(base);
    pthread_mutex_lock(&s->mu);
    int rc = webhook_get_locked(s, app_id, uid, out);
    unlock(s);
    return rc;
}

static int sq_webhook_list(struct hl_store *base, int64_t app_id, int64_t after_id, size_t limit,
                           struct hl_webhook **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_webhook *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE, r = SQLITE_DONE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_WH_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        sqlite3_bind_int64(st, 2, after_id);
        sqlite3_bind_int64(st, 3, (int64_t)limit);
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc == HL_OK)
                rc = read_webhook(st, &arr[len]);
            if (rc == HL_OK)
                len++;
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "webhook list");
    }
    unlock(s);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            hl_webhook_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_webhook_update(struct hl_store *base, int64_t app_id, const char *uid,
                             const struct hl_webhook_patch *p, int64_t now, struct hl_webhook *out)
{
    struct sq *s = SQ(base);
    struct hl_webhook cur = {0};
    int active = 0;
    pthread_mutex_lock(&s->mu);
    int rc = begin(s);
    if (rc)
        goto out;
    rc = webhook_get_locked(s, app_id, uid, &cur);
    if (rc)
        goto done;
    active = p->set & HL_WP_ACTIVE ? p->active : cur.active;
    sqlite3_stmt *st = Q(s, Q_WH_UPDATE);
    if (!st) {
        rc = HL_ESTORE;
        goto done;
    }
    sqlite3_bind_int64(st, 1, app_id);
    bind_text(st, 2, uid);
    bind_text(st, 3, p->set & HL_WP_URL ? p->url : cur.url);
    bind_text(st, 4, p->set & HL_WP_DESCRIPTION ? p->description : cur.description);
    sqlite3_bind_int(st, 5, (int)(p->set & HL_WP_ENTITIES ? p->entities : cur.entities));
    sqlite3_bind_int(st, 6, (int)(p->set & HL_WP_EVENT_TYPES ? p->event_types : cur.event_types));
    sqlite3_bind_int(st, 7, active ? 1 : 0);
    sqlite3_bind_int64(st, 8, now);
    rc = run(s, st);
    if (rc == HL_OK && active != cur.active) {
        st = Q(s, active ? Q_WH_RESUME_DELIVERIES : Q_WH_PAUSE_DELIVERIES);
        if (!st) {
            rc = HL_ESTORE;
            goto done;
        }
        sqlite3_bind_int64(st, 1, cur.id);
        if (active)
            sqlite3_bind_int64(st, 2, now);
        rc = run(s, st);
    }
    if (rc == HL_OK && out)
        rc = webhook_get_locked(s, app_id, uid, out);
done:
    rc = finish(s, rc);
out:
    unlock(s);
    hl_webhook_clear(&cur);
    if (rc == HL_OK && active)
        hl_store_notify(base);
    return rc;
}

static int sq_webhook_delete(struct hl_store *base, int64_t app_id, const char *uid, int64_t now)
{
    struct sq *s = SQ(base);
    pthread_mutex_lock(&s->mu);
    int rc = begin(s);
    if (rc)
        goto out;
    sqlite3_stmt *st = Q(s, Q_WH_DELETE);
    if (!st) {
        rc = HL_ESTORE;
        goto done;
    }
    sqlite3_bind_int64(st, 1, app_id);
    bind_text(st, 2, uid);
    sqlite3_bind_int64(st, 3, now);
    rc = run(s, st);
    if (rc == HL_OK && sqlite3_changes(s->db) == 0)
        rc = HL_ENOTFOUND;
    if (rc == HL_OK) {
        st = Q(s, Q_WH_CANCEL_DELIVERIES);
        if (!st) {
            rc = HL_ESTORE;
            goto done;
        }
        bind_text(st, 1, uid);
        rc = run(s, st);
    }
done:
    rc = finish(s, rc);
out:
    unlock(s);
    return rc;
}

/* ---- resources, events, the outbox ---- */

static int read_resource(sqlite3_stmt *st, struct hl_resource *r)
{
    memset(r, 0, sizeof(*r));
    r->id = sqlite3_column_int64(st, 0);
    r->kind = (enum hl_entity)sqlite3_column_int(st, 1);
    col_copy(st, 2, r->uid, sizeof(r->uid));
    r->app_id = sqlite3_column_int64(st, 3);
    col_copy(st, 4, r->parent_uid, sizeof(r->parent_uid));
    r->tenant = col_dup(st, 5);
    r->body = col_dup(st, 6);
    r->body_len = (size_t)sqlite3_column_bytes(st, 6);
    r->version = sqlite3_column_int64(st, 7);
    r->created_at = sqlite3_column_int64(st, 8);
    r->updated_at = sqlite3_column_int64(st, 9);
    if (!r->tenant || !r->body) {
        hl_resource_clear(r);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int sq_resource_get(struct hl_store *base, int64_t app_id, enum hl_entity kind,
                           const char *uid, struct hl_resource *out)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_RES_GET);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        sqlite3_bind_int(st, 2, (int)kind);
        bind_text(st, 3, uid);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW)
            rc = read_resource(st, out);
        else if (r == SQLITE_DONE)
            rc = HL_ENOTFOUND;
        else
            rc = fail(s, "resource get");
    }
    unlock(s);
    return rc;
}

static int sq_resource_list(struct hl_store *base, int64_t app_id, enum hl_entity kind,
                            const char *parent_uid, const char *tenant, int64_t after_id,
                            size_t limit, struct hl_resource **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_resource *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE, r = SQLITE_DONE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_RES_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        sqlite3_bind_int(st, 2, (int)kind);
        bind_text(st, 3, parent_uid);
        bind_text(st, 4, tenant);
        sqlite3_bind_int64(st, 5, after_id);
        sqlite3_bind_int64(st, 6, (int64_t)limit);
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc == HL_OK)
                rc = read_resource(st, &arr[len]);
            if (rc == HL_OK)
                len++;
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "resource list");
    }
    unlock(s);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            hl_resource_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

/* Whether a resource is still there (to tell a stale version from a deleted resource). */
static int resource_exists(struct sq *s, const struct hl_resource *r)
{
    sqlite3_stmt *st = Q(s, Q_RES_GET);
    if (!st)
        return 1;
    sqlite3_bind_int64(st, 1, r->app_id);
    sqlite3_bind_int(st, 2, (int)r->kind);
    bind_text(st, 3, r->uid);
    int found = sqlite3_step(st) == SQLITE_ROW;
    sqlite3_reset(st);
    return found;
}

/* The ingestion side of a change: a new file's bytes queued, a finished job's passages stored, a
 * deleted file's rows gone. Called under s->mu. */
static int apply_file(struct sq *s, const struct hl_change *c)
{
    sqlite3_stmt *st;
    int rc;
    const struct hl_resource *r = c->res;
    if (!r || r->kind != HL_ENT_CONTEXTFILE)
        return HL_OK;
    if (c->op == HL_OP_CREATE && c->file) {
        if (!(st = Q(s, Q_FILE_INSERT)))
            return HL_ESTORE;
        bind_text(st, 1, r->uid);
        sqlite3_bind_int64(st, 2, r->app_id);
        bind_text(st, 3, c->file->path);
        sqlite3_bind_int64(st, 4, c->file->size);
        bind_text(st, 5, c->file->sha256);
        sqlite3_bind_int64(st, 6, r->created_at);
        return run(s, st);
    }
    if (c->op == HL_OP_DELETE || c->done_file) {
        if (!(st = Q(s, Q_CHUNKS_DELETE)))
            return HL_ESTORE;
        bind_text(st, 1, r->uid);
        if ((rc = run(s, st)))
            return rc;
    }
    if (c->op == HL_OP_DELETE) {
        if (!(st = Q(s, Q_FILE_DELETE)))
            return HL_ESTORE;
        bind_text(st, 1, r->uid);
        return run(s, st);
    }
    if (c->done_file) {
        for (size_t i = 0; i < c->nchunks; i++) {
            if (!(st = Q(s, Q_CHUNK_INSERT)))
                return HL_ESTORE;
            bind_text(st, 1, r->uid);
            sqlite3_bind_int64(st, 2, c->chunks[i].index);
            sqlite3_bind_int64(st, 3, c->chunks[i].offset);
            sqlite3_bind_text(st, 4, c->chunks[i].text, (int)c->chunks[i].len, SQLITE_STATIC);
            if ((rc = run(s, st)))
                return rc;
        }
        if (!(st = Q(s, Q_FILE_DONE)))
            return HL_ESTORE;
        bind_text(st, 1, r->uid);
        return run(s, st);
    }
    return HL_OK;
}

/* Writes one change inside the open transaction. Called under s->mu. */
static int apply_change(struct sq *s, const struct hl_change *c, int64_t *made)
{
    sqlite3_stmt *st;
    const struct hl_resource *r = c->res;
    if (c->op == HL_OP_CREATE) {
        if (!(st = Q(s, Q_RES_INSERT)))
            return HL_ESTORE;
        bind_text(st, 1, r->uid);
        sqlite3_bind_int64(st, 2, r->app_id);
        sqlite3_bind_int(st, 3, (int)r->kind);
        bind_text(st, 4, r->parent_uid);
        bind_text(st, 5, r->tenant);
        sqlite3_bind_text(st, 6, r->body, (int)r->body_len, SQLITE_STATIC);
        sqlite3_bind_int64(st, 7, r->created_at);
        sqlite3_bind_int64(st, 8, r->updated_at);
        int rc = run(s, st);
        if (rc)
            return rc;
    } else if (c->op == HL_OP_UPDATE || c->op == HL_OP_DELETE) {
        if (!(st = Q(s, c->op == HL_OP_UPDATE ? Q_RES_UPDATE : Q_RES_DELETE)))
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, r->app_id);
        bind_text(st, 2, r->uid);
        sqlite3_bind_int64(st, 3, c->expect_version);
        if (c->op == HL_OP_UPDATE) {
            bind_text(st, 4, r->tenant);
            sqlite3_bind_text(st, 5, r->body, (int)r->body_len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 6, r->updated_at);
        }
        int rc = run(s, st);
        if (rc)
            return rc;
        if (sqlite3_changes(s->db) == 0)
            return resource_exists(s, r) ? HL_ECONFLICT : HL_ENOTFOUND;
    }
    int rc0 = apply_file(s, c);
    if (rc0)
        return rc0;
    const struct hl_event *e = c->ev;
    if (!e)
        return HL_OK;
    if (!(st = Q(s, Q_EV_INSERT)))
        return HL_ESTORE;
    bind_text(st, 1, e->uid);
    sqlite3_bind_int64(st, 2, e->app_id);
    sqlite3_bind_int(st, 3, e->type);
    bind_text(st, 4, e->tenant);
    bind_text(st, 5, e->resource_uid);
    sqlite3_bind_int64(st, 6, e->created_at);
    sqlite3_bind_blob(st, 7, e->payload, (int)e->payload_len, SQLITE_STATIC);
    int rc = run(s, st);
    if (rc)
        return rc;
    int64_t event_id = sqlite3_last_insert_rowid(s->db);
    int64_t now = hl_now_ms();
    if (c->only_webhook) {
        if (!(st = Q(s, Q_DELIV_ONE)))
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, event_id);
        sqlite3_bind_int64(st, 2, c->only_webhook);
        sqlite3_bind_int64(st, 3, now);
    } else {
        if (!(st = Q(s, Q_DELIV_FANOUT)))
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, event_id);
        sqlite3_bind_int64(st, 2, now);
        sqlite3_bind_int64(st, 3, e->app_id);
        sqlite3_bind_int(st, 4, (int)hl_event_entity(e->type));
        sqlite3_bind_int(st, 5, 1 << e->type);
    }
    rc = run(s, st);
    if (rc == HL_OK)
        *made += sqlite3_changes(s->db);
    return rc;
}

/* Applies one change set inside the batch's transaction, under a savepoint so that its failure
 * undoes it alone. */
static int record_attempts(struct sq *s, const struct hl_attempt *a, size_t n);

static void apply_request(struct sq *s, struct commit_req *r)
{
    int64_t made = 0;
    int rc = simple(s, Q_SAVEPOINT);
    if (rc == HL_OK && r->att)
        rc = record_attempts(s, r->att, r->natt);
    for (size_t i = 0; i < r->n && rc == HL_OK; i++)
        rc = apply_change(s, &r->ch[i], &made);
    if (rc == HL_OK && r->idem) {
        const struct hl_idem *idem = r->idem;
        sqlite3_stmt *st = Q(s, Q_IDEM_INSERT);
        if (!st) {
            rc = HL_ESTORE;
        } else {
            int64_t now = hl_now_ms();
            sqlite3_bind_int64(st, 1, r->ch[0].ev ? r->ch[0].ev->app_id : r->ch[0].res->app_id);
            bind_text(st, 2, idem->key);
            sqlite3_bind_blob(st, 3, idem->request_hash, 32, SQLITE_STATIC);
            sqlite3_bind_int(st, 4, idem->status);
            bind_text(st, 5, idem->response);
            sqlite3_bind_int64(st, 6, now);
            sqlite3_bind_int64(st, 7, now - 24 * 3600 * 1000LL);
            rc = run(s, st);
            if (rc == HL_OK && sqlite3_changes(s->db) == 0)
                rc = HL_ECONFLICT;
        }
    }
    if (rc) {
        simple(s, Q_ROLLBACK_TO);
        made = 0;
    }
    simple(s, Q_RELEASE_SP);
    r->rc = rc;
    r->made = made;
}

/* Commits a batch of change sets in one transaction: one fsync for all of them. */
static void run_batch(struct sqdb *db, struct commit_req *batch)
{
    struct sq *s = &db->w;
    int64_t made = 0;
    pthread_mutex_lock(&s->mu);
    int rc = begin(s);
    for (struct commit_req *r = batch; r; r = r->next) {
        if (rc == HL_OK) {
            apply_request(s, r);
            /* Some errors (full disk, I/O, memory) roll back the whole transaction, not just
             * the savepoint: what came before is gone, and what follows must not commit on
             * its own. */
            if (r->rc && sqlite3_get_autocommit(s->db)) {
                rc = r->rc;
                for (struct commit_req *q = batch; q != r; q = q->next) {
                    q->rc = rc;
                    q->made = 0;
                }
            }
        } else {
            r->rc = rc;
        }
    }
    if (rc == HL_OK) {
        rc = finish(s, HL_OK);
        for (struct commit_req *r = batch; r; r = r->next) {
            if (rc) {
                r->rc = rc;
                r->made = 0;
            }
            made += r->made;
        }
    }
    unlock(s);
    if (made)
        hl_store_notify(&db->base);
}

/* Group commit: callers queue their requests (change sets, or the dispatcher's finished
 * attempts); whoever finds no commit running takes the whole queue and commits it in one
 * transaction while the others wait for their own result. Under load, one fsync serves every
 * request that arrived during the previous one. */
static void group_commit(struct sqdb *db, struct commit_req *me)
{
    pthread_cond_init(&me->cv, NULL);
    pthread_mutex_lock(&db->q_mu);
    if (db->q_tail)
        db->q_tail->next = me;
    else
        db->q_head = me;
    db->q_tail = me;
    while (!me->done) {
        /* The head of the queue leads once no batch is running; everyone else sleeps on their
         * own condition variable, so a commit wakes its batch and the next leader, nobody else. */
        if (db->committing || db->q_head != me) {
            pthread_cond_wait(&me->cv, &db->q_mu);
            continue;
        }
        db->committing = 1;
        struct commit_req *batch = db->q_head;
        db->q_head = db->q_tail = NULL;
        pthread_mutex_unlock(&db->q_mu);
        run_batch(db, batch);
        pthread_mutex_lock(&db->q_mu);
        for (struct commit_req *r = batch, *next; r; r = next) {
            next = r->next; /* r may be gone as soon as it is done and signalled */
            r->done = 1;
            if (r != me)
                pthread_cond_signal(&r->cv);
        }
        db->committing = 0;
        if (db->q_head)
            pthread_cond_signal(&db->q_head->cv);
    }
    pthread_mutex_unlock(&db->q_mu);
    pthread_cond_destroy(&me->cv);
}

static int sq_commit(struct hl_store *base, const struct hl_change *ch, size_t n,
                     const struct hl_idem *idem, int64_t *deliveries)
{
    struct commit_req me = {.ch = ch, .n = n, .idem = idem};
    group_commit(DB(base), &me);
    if (me.rc == HL_OK && deliveries)
        *deliveries += me.made;
    return me.rc;
}

static int sq_idem_get(struct hl_store *base, int64_t app_id, const char *key, int64_t not_before,
                       struct hl_idem_hit *out)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_IDEM_GET);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        bind_text(st, 2, key);
        sqlite3_bind_int64(st, 3, not_before);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            memset(out, 0, sizeof(*out));
            if (sqlite3_column_bytes(st, 0) == 32)
                memcpy(out->request_hash, sqlite3_column_blob(st, 0), 32);
            out->status = sqlite3_column_int(st, 1);
            out->response = col_dup(st, 2);
            rc = out->response ? HL_OK : HL_ENOMEM;
        } else if (r == SQLITE_DONE) {
            rc = HL_ENOTFOUND;
        } else {
            rc = fail(s, "idempotency get");
        }
    }
    unlock(s);
    return rc;
}

static int read_event(sqlite3_stmt *st, struct hl_event *e)
{
    memset(e, 0, sizeof(*e));
    e->id = sqlite3_column_int64(st, 0);
    col_copy(st, 1, e->uid, sizeof(e->uid));
    e->type = sqlite3_column_int(st, 2);
    e->app_id = sqlite3_column_int64(st, 3);
    e->tenant = col_dup(st, 4);
    col_copy(st, 5, e->resource_uid, sizeof(e->resource_uid));
    e->created_at = sqlite3_column_int64(st, 6);
    e->payload_len = (size_t)sqlite3_column_bytes(st, 7);
    e->payload = malloc(e->payload_len + 1);
    if (!e->tenant || !e->payload) {
        hl_event_clear(e);
        return HL_ENOMEM;
    }
    if (e->payload_len)
        memcpy(e->payload, sqlite3_column_blob(st, 7), e->payload_len);
    e->payload[e->payload_len] = '\0';
    return HL_OK;
}

static int sq_event_list(struct hl_store *base, int64_t app_id, const struct hl_event_filter *f,
                         int64_t after_id, size_t limit, struct hl_event **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_event *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE, r = SQLITE_DONE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_EV_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        sqlite3_bind_int(st, 2, f->type);
        bind_text(st, 3, f->tenant);
        sqlite3_bind_int64(st, 4, f->since);
        sqlite3_bind_int64(st, 5, f->until);
        sqlite3_bind_int64(st, 6, after_id);
        sqlite3_bind_int64(st, 7, (int64_t)limit);
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc == HL_OK)
                rc = read_event(st, &arr[len]);
            if (rc == HL_OK)
                len++;
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "event list");
    }
    unlock(s);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            hl_event_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

/* ---- the dispatcher's side ---- */

/* Both claims: runs the select `which` (?1 now, ?2 the skip list, ?3 max, ?4 after_id), leases
 * what it returns in the same transaction, and, for Q_CLAIM_NEW, says where the next one
 * starts. */
static int claim_rows(struct sq *s, enum q which, int64_t now, int64_t lease_until,
                      int64_t after_id, size_t max, const int64_t *skip, size_t nskip,
                      struct hl_job **out, size_t *n, int64_t *next_after)
{
    struct hl_job *arr = NULL;
    size_t cap = 0, len = 0;
    struct hl_buf skipjson;
    hl_buf_init(&skipjson, 1 << 20);
    int rc = hl_buf_putc(&skipjson, '[');
    for (size_t i = 0; i < nskip && rc == HL_OK; i++)
        rc = hl_buf_printf(&skipjson, "%s%lld", i ? "," : "", (long long)skip[i]);
    if (rc == HL_OK)
        rc = hl_buf_putc(&skipjson, ']');
    if (rc) {
        hl_buf_free(&skipjson);
        return rc;
    }
    pthread_mutex_lock(&s->mu);
    /* Leases need no fsync: a single node drops them all when it starts, so losing the last
     * ones in a crash changes nothing. Later commits sync the WAL up to and past them. */
    exec_sql(s, "PRAGMA synchronous = OFF");
    rc = begin(s);
    if (rc)
        goto out;
    sqlite3_stmt *st = Q(s, which);
    if (!st) {
        rc = HL_ESTORE;
        goto done;
    }
    sqlite3_bind_int64(st, 1, now);
    sqlite3_bind_text(st, 2, skipjson.p, (int)skipjson.len, SQLITE_STATIC);
    sqlite3_bind_int64(st, 3, (int64_t)max);
    if (which == Q_CLAIM_NEW)
        sqlite3_bind_int64(st, 4, after_id);
    int r;
    while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, len, sizeof(*arr));
        if (rc)
            break;
        struct hl_job *j = &arr[len];
        j->delivery_id = sqlite3_column_int64(st, 0);
        j->webhook_id = sqlite3_column_int64(st, 1);
        j->event_id = sqlite3_column_int64(st, 2);
        col_copy(st, 3, j->event_uid, sizeof(j->event_uid));
        j->event_ts = sqlite3_column_int64(st, 4);
        j->attempts = sqlite3_column_int(st, 5);
        j->created_at = sqlite3_column_int64(st, 6);
        j->url = col_dup(st, 7);
        col_copy(st, 8, j->secret, sizeof(j->secret));
        col_copy(st, 9, j->prev_secret, sizeof(j->prev_secret));
        j->payload_len = (size_t)sqlite3_column_bytes(st, 10);
        j->payload = malloc(j->payload_len + 1);
        if (!j->url || !j->payload) {
            hl_job_clear(j);
            rc = HL_ENOMEM;
            break;
        }
        memcpy(j->payload, sqlite3_column_blob(st, 10), j->payload_len);
        j->payload[j->payload_len] = '\0';
        len++;
    }
    if (rc == HL_OK && r != SQLITE_DONE)
        rc = fail(s, "claim");
    /* Short of max: every due delivery above after_id was seen, so the next claim of new ones
     * starts at the newest delivery; full: right after the last one returned. */
    if (rc == HL_OK && next_after) {
        if (len == max && len) {
            *next_after = arr[len - 1].delivery_id;
        } else if (!(st = Q(s, Q_MAX_DELIVERY))) {
            rc = HL_ESTORE;
        } else if (sqlite3_step(st) == SQLITE_ROW) {
            *next_after = sqlite3_column_int64(st, 0);
            sqlite3_reset(st);
        } else {
            rc = fail(s, "claim");
        }
    }
    /* One statement leases the whole batch. */
    if (rc == HL_OK && len) {
        hl_buf_reset(&skipjson);
        rc = hl_buf_putc(&skipjson, '[');
        for (size_t i = 0; i < len && rc == HL_OK; i++)
            rc = hl_buf_printf(&skipjson, "%s%lld", i ? "," : "", (long long)arr[i].delivery_id);
        if (rc == HL_OK)
            rc = hl_buf_putc(&skipjson, ']');
        if (rc == HL_OK && !(st = Q(s, Q_CLAIM_LEASE)))
            rc = HL_ESTORE;
        if (rc == HL_OK) {
            sqlite3_bind_text(st, 1, skipjson.p, (int)skipjson.len, SQLITE_STATIC);
            sqlite3_bind_int64(st, 2, lease_until);
            rc = run(s, st);
        }
    }
done:
    rc = finish(s, rc);
out:
    exec_sql(s, "PRAGMA synchronous = FULL");
    unlock(s);
    hl_buf_free(&skipjson);
    if (rc) {
        for (size_t i = 0; i < len; i++)
            hl_job_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_claim(struct hl_store *base, int64_t now, int64_t lease_until, size_t max,
                    const int64_t *skip, size_t nskip, struct hl_job **out, size_t *n)
{
    return claim_rows(SQ(base), Q_CLAIM_SELECT, now, lease_until, 0, max, skip, nskip, out, n,
                      NULL);
}

static int sq_claim_new(struct hl_store *base, int64_t now, int64_t lease_until, int64_t after_id,
                        size_t max, const int64_t *skip, size_t nskip, struct hl_job **out,
                        size_t *n, int64_t *next_after)
{
    return claim_rows(SQ(base), Q_CLAIM_NEW, now, lease_until, after_id, max, skip, nskip, out, n,
                      next_after);
}

/* A disabled webhook's pending deliveries wait, parked, until it is enabled again. */
static int park_deliveries(struct sq *s, int64_t webhook_id)
{
    sqlite3_stmt *st = Q(s, Q_WH_PAUSE_DELIVERIES);
    if (!st)
        return HL_ESTORE;
    sqlite3_bind_int64(st, 1, webhook_id);
    return run(s, st);
}

static int record_one(struct sq *s, const struct hl_attempt *a, int64_t now)
{
    sqlite3_stmt *st = Q(s, Q_ATTEMPT_INSERT);
    if (!st)
        return HL_ESTORE;
    sqlite3_bind_int64(st, 1, a->delivery_id);
    sqlite3_bind_int64(st, 2, a->started_at);
    sqlite3_bind_int64(st, 3, a->duration_us);
    sqlite3_bind_int(st, 4, a->status_code);
    bind_text(st, 5, a->error);
    if (a->response)
        sqlite3_bind_blob(st, 6, a->response, (int)a->response_len, SQLITE_STATIC);
    int rc = run(s, st);
    if (rc)
        return rc;
    enum q dq = a->outcome == HL_OUT_SUCCESS ? Q_DELIV_SUCCESS
                : a->outcome == HL_OUT_RETRY ? Q_DELIV_RETRY
                                             : Q_DELIV_FAILED;
    if (!(st = Q(s, dq)))
        return HL_ESTORE;
    sqlite3_bind_int64(st, 1, a->delivery_id);
    sqlite3_bind_int(st, 2, a->status_code);
    if (dq == Q_DELIV_SUCCESS) {
        sqlite3_bind_int64(st, 3, now);
    } else {
        bind_text(st, 3, a->error);
        if (dq == Q_DELIV_RETRY)
            sqlite3_bind_int64(st, 4, a->next_attempt_at);
    }
    if ((rc = run(s, st)))
        return rc;
    if (a->outcome == HL_OUT_GONE) {
        if (!(st = Q(s, Q_WH_GONE)))
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, a->webhook_id);
        sqlite3_bind_int64(st, 2, now);
        bind_text(st, 3, a->disable_reason);
        rc = run(s, st);
        if (rc == HL_OK && sqlite3_changes(s->db))
            rc = park_deliveries(s, a->webhook_id);
    }
    return rc;
}

/* Per webhook of a batch: its last*At fields and its run of failures, folded into one update,
 * then the auto-disable check, as the batch's last attempt for it says, when it ended in
 * failure. */
static int record_webhooks(struct sq *s, const struct hl_attempt *a, size_t n, int64_t now)
{
    for (size_t i = 0; i < n; i++) {
        int64_t wid = a[i].webhook_id;
        size_t k;
        for (k = 0; k < i && a[k].webhook_id != wid; k++)
            ;
        if (k < i)
            continue; /* folded in with its first attempt of the batch */
        int64_t trig = 0, succ = 0, fail = 0, run_start = 0;
        int seen_success = 0, last_ok = 0;
        const struct hl_attempt *last = &a[i];
        for (size_t j = i; j < n; j++) {
            if (a[j].webhook_id != wid)
                continue;
            last = &a[j];
            int64_t t = a[j].started_at;
            trig = t > trig ? t : trig;
            last_ok = a[j].outcome == HL_OUT_SUCCESS;
            if (last_ok) {
                succ = t > succ ? t : succ;
                seen_success = 1;
                run_start = 0;
            } else {
                fail = t > fail ? t : fail;
                if (!run_start)
                    run_start = t;
            }
        }
        sqlite3_stmt *st = Q(s, Q_WH_ATTEMPTS);
        if (!st)
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, wid);
        sqlite3_bind_int64(st, 2, trig);
        sqlite3_bind_int64(st, 3, succ);
        sqlite3_bind_int64(st, 4, fail);
        sqlite3_bind_int(st, 5, last_ok ? 1 : seen_success ? 2 : 0);
        sqlite3_bind_int64(st, 6, run_start);
        int rc = run(s, st);
        if (rc)
            return rc;
        if (last_ok || !last->disable_failing_since)
            continue;
        if (!(st = Q(s, Q_WH_AUTODISABLE)))
            return HL_ESTORE;
        sqlite3_bind_int64(st, 1, wid);
        sqlite3_bind_int64(st, 2, now);
        bind_text(st, 3, last->disable_reason);
        sqlite3_bind_int64(st, 4, last->disable_failing_since);
        rc = run(s, st);
        if (rc == HL_OK && sqlite3_changes(s->db))
            rc = park_deliveries(s, wid);
        if (rc)
            return rc;
    }
    return HL_OK;
}

static int record_attempts(struct sq *s, const struct hl_attempt *a, size_t n)
{
    int64_t now = hl_now_ms();
    int rc = HL_OK;
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = record_one(s, &a[i], now);
    if (rc == HL_OK)
        rc = record_webhooks(s, a, n, now);
    return rc;
}

/* Attempts ride the group commit: under load they share the API's fsync. */
static int sq_record(struct hl_store *base, const struct hl_attempt *a, size_t n)
{
    struct commit_req me = {.att = a, .natt = n};
    group_commit(DB(base), &me);
    return me.rc;
}

static int sq_next_due(struct hl_store *base, int64_t now, int64_t *at)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_NEXT_DUE);
    if (st) {
        sqlite3_bind_int64(st, 1, now);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            *at = sqlite3_column_int64(st, 0);
            rc = HL_OK;
        } else {
            rc = fail(s, "next due");
        }
    }
    unlock(s);
    return rc;
}

static int sq_release_leases(struct hl_store *base)
{
    struct sq *s = SQ(base);
    pthread_mutex_lock(&s->mu);
    int rc = simple(s, Q_RELEASE);
    if (rc == HL_OK)
        rc = simple(s, Q_RELEASE_FILES);
    unlock(s);
    return rc;
}

/* ---- operating deliveries ---- */

static int read_delivery(sqlite3_stmt *st, struct hl_delivery *d)
{
    memset(d, 0, sizeof(*d));
    d->id = sqlite3_column_int64(st, 0);
    d->webhook_id = sqlite3_column_int64(st, 1);
    col_copy(st, 2, d->webhook_uid, sizeof(d->webhook_uid));
    col_copy(st, 3, d->event_uid, sizeof(d->event_uid));
    d->event_type = sqlite3_column_int(st, 4);
    d->status = (enum hl_delivery_status)sqlite3_column_int(st, 5);
    d->attempts = sqlite3_column_int(st, 6);
    d->last_status = sqlite3_column_int(st, 7);
    d->last_error = col_dup(st, 8);
    d->next_attempt_at = sqlite3_column_int64(st, 9);
    d->created_at = sqlite3_column_int64(st, 10);
    d->delivered_at = sqlite3_column_int64(st, 11);
    if (sqlite3_column_type(st, 8) != SQLITE_NULL && !d->last_error)
        return HL_ENOMEM;
    return HL_OK;
}

/* Reads every row of a prepared delivery query. Called under s->mu. */
static int read_deliveries(struct sq *s, sqlite3_stmt *st, struct hl_delivery **out, size_t *n)
{
    struct hl_delivery *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_OK, r = SQLITE_DONE;
    while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, len, sizeof(*arr));
        if (rc == HL_OK)
            rc = read_delivery(st, &arr[len]);
        if (rc == HL_OK)
            len++;
    }
    if (rc == HL_OK && r != SQLITE_DONE)
        rc = fail(s, "deliveries");
    if (rc) {
        for (size_t i = 0; i < len; i++)
            hl_delivery_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_event_get(struct hl_store *base, int64_t app_id, const char *uid, struct hl_event *ev,
                        struct hl_delivery **dl, size_t *n)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_EV_GET);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        bind_text(st, 2, uid);
        int r = sqlite3_step(st);
        rc = r == SQLITE_ROW    ? read_event(st, ev)
             : r == SQLITE_DONE ? HL_ENOTFOUND
                                : fail(s, "event get");
    }
    if (rc == HL_OK && dl) {
        st = Q(s, Q_DL_BY_EVENT);
        if (!st) {
            rc = HL_ESTORE;
        } else {
            sqlite3_bind_int64(st, 1, ev->id);
            rc = read_deliveries(s, st, dl, n);
        }
        if (rc)
            hl_event_clear(ev);
    }
    unlock(s);
    return rc;
}

static int sq_delivery_list(struct hl_store *base, int64_t app_id, int64_t webhook_id,
                            const struct hl_delivery_filter *f, int64_t after_id, size_t limit,
                            struct hl_delivery **out, size_t *n)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_DL_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, webhook_id);
        sqlite3_bind_int64(st, 2, app_id);
        sqlite3_bind_int(st, 3, f->status);
        sqlite3_bind_int(st, 4, f->type);
        sqlite3_bind_int64(st, 5, f->since);
        sqlite3_bind_int64(st, 6, f->until);
        sqlite3_bind_int64(st, 7, after_id);
        sqlite3_bind_int64(st, 8, (int64_t)limit);
        rc = read_deliveries(s, st, out, n);
    }
    unlock(s);
    return rc;
}

static int read_attempts(struct sq *s, int64_t delivery_id, struct hl_attempt_rec **out, size_t *n)
{
    sqlite3_stmt *st = Q(s, Q_ATT_LIST);
    if (!st)
        return HL_ESTORE;
    sqlite3_bind_int64(st, 1, delivery_id);
    struct hl_attempt_rec *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_OK, r = SQLITE_DONE;
    while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
        rc = grow((void **)&arr, &cap, len, sizeof(*arr));
        if (rc)
            break;
        struct hl_attempt_rec *a = &arr[len++];
        a->started_at = sqlite3_column_int64(st, 0);
        a->duration_us = sqlite3_column_int64(st, 1);
        a->status_code = sqlite3_column_int(st, 2);
        a->error = col_dup(st, 3);
        if (sqlite3_column_type(st, 4) != SQLITE_NULL) {
            a->response_len = (size_t)sqlite3_column_bytes(st, 4);
            a->response = malloc(a->response_len + 1);
            if (!a->response) {
                rc = HL_ENOMEM;
                break;
            }
            if (a->response_len)
                memcpy(a->response, sqlite3_column_blob(st, 4), a->response_len);
            a->response[a->response_len] = '\0';
        }
    }
    if (rc == HL_OK && r != SQLITE_DONE)
        rc = fail(s, "attempts");
    if (rc) {
        hl_attempts_free(arr, len);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_delivery_get(struct hl_store *base, int64_t app_id, int64_t id,
                           struct hl_delivery *out, struct hl_attempt_rec **attempts, size_t *n)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_DL_GET);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, app_id);
        int r = sqlite3_step(st);
        rc = r == SQLITE_ROW    ? read_delivery(st, out)
             : r == SQLITE_DONE ? HL_ENOTFOUND
                                : fail(s, "delivery");
        if (rc == HL_OK && attempts) {
            rc = read_attempts(s, id, attempts, n);
            if (rc)
                hl_delivery_clear(out);
        }
    }
    unlock(s);
    return rc;
}

static int sq_delivery_resend(struct hl_store *base, int64_t app_id, int64_t id, int64_t now)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_DL_RESEND);
    if (st) {
        sqlite3_bind_int64(st, 1, id);
        sqlite3_bind_int64(st, 2, app_id);
        sqlite3_bind_int64(st, 3, now);
        rc = run(s, st);
        if (rc == HL_OK && sqlite3_changes(s->db) == 0) {
            /* Either not this app's (or its webhook is deleted), or an attempt is in flight. */
            st = Q(s, Q_DL_GET);
            rc = HL_ENOTFOUND;
            if (st) {
                sqlite3_bind_int64(st, 1, id);
                sqlite3_bind_int64(st, 2, app_id);
                if (sqlite3_step(st) == SQLITE_ROW)
                    rc = HL_ECONFLICT;
            }
        }
    }
    unlock(s);
    if (rc == HL_OK)
        hl_store_notify(base);
    return rc;
}

static int sq_recover(struct hl_store *base, int64_t webhook_id, int64_t since, int64_t until,
                      int64_t now, int64_t *queued)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    *queued = 0;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_RECOVER);
    if (st) {
        sqlite3_bind_int64(st, 1, webhook_id);
        sqlite3_bind_int64(st, 2, since);
        sqlite3_bind_int64(st, 3, until);
        sqlite3_bind_int64(st, 4, now);
        rc = run(s, st);
        if (rc == HL_OK)
            *queued = sqlite3_changes(s->db);
    }
    unlock(s);
    if (rc == HL_OK && *queued)
        hl_store_notify(base);
    return rc;
}

static int sq_rotate_secret(struct hl_store *base, int64_t app_id, const char *uid,
                            const char *secret, int64_t prev_until, int64_t now)
{
    struct sq *s = SQ(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_ROTATE);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        bind_text(st, 2, uid);
        bind_text(st, 3, secret);
        sqlite3_bind_int64(st, 4, prev_until);
        sqlite3_bind_int64(st, 5, now);
        rc = run(s, st);
        if (rc == HL_OK && sqlite3_changes(s->db) == 0)
            rc = HL_ENOTFOUND;
    }
    unlock(s);
    return rc;
}

static int sq_webhook_stats(struct hl_store *base, int64_t webhook_id, struct hl_webhook_stats *out)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_WH_STATS);
    if (st) {
        sqlite3_bind_int64(st, 1, webhook_id);
        if (sqlite3_step(st) == SQLITE_ROW) {
            out->pending = sqlite3_column_int64(st, 0);
            out->succeeded = sqlite3_column_int64(st, 1);
            out->failed = sqlite3_column_int64(st, 2);
            rc = HL_OK;
        } else {
            rc = fail(s, "webhook stats");
        }
    }
    unlock(s);
    return rc;
}

static int sq_queue_stats(struct hl_store *base, struct hl_queue_stats *out)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_QUEUE_STATS);
    if (st) {
        if (sqlite3_step(st) == SQLITE_ROW) {
            out->pending = sqlite3_column_int64(st, 0);
            out->oldest_pending_at = sqlite3_column_int64(st, 1);
            rc = HL_OK;
        } else {
            rc = fail(s, "queue stats");
        }
    }
    unlock(s);
    return rc;
}

/* ---- context-file ingestion ---- */

static int sq_ingest_claim(struct hl_store *base, int64_t now, int64_t lease_until,
                           struct hl_ingest_job *out)
{
    struct sq *s = SQ(base);
    memset(out, 0, sizeof(*out));
    pthread_mutex_lock(&s->mu);
    int rc = begin(s);
    if (rc)
        goto out;
    sqlite3_stmt *st = Q(s, Q_INGEST_SELECT);
    if (!st) {
        rc = HL_ESTORE;
        goto done;
    }
    sqlite3_bind_int64(st, 1, now);
    int r = sqlite3_step(st);
    if (r == SQLITE_DONE) {
        rc = HL_ENOTFOUND;
        goto done;
    }
    if (r != SQLITE_ROW) {
        rc = fail(s, "ingest claim");
        goto done;
    }
    col_copy(st, 0, out->file_uid, sizeof(out->file_uid));
    out->app_id = sqlite3_column_int64(st, 1);
    col_copy(st, 2, out->app_uid, sizeof(out->app_uid));
    out->path = col_dup(st, 3);
    /* The resource columns follow the four above. */
    memset(&out->res, 0, sizeof(out->res));
    out->res.id = sqlite3_column_int64(st, 4);
    out->res.kind = (enum hl_entity)sqlite3_column_int(st, 5);
    col_copy(st, 6, out->res.uid, sizeof(out->res.uid));
    out->res.app_id = sqlite3_column_int64(st, 7);
    col_copy(st, 8, out->res.parent_uid, sizeof(out->res.parent_uid));
    out->res.tenant = col_dup(st, 9);
    out->res.body = col_dup(st, 10);
    out->res.body_len = (size_t)sqlite3_column_bytes(st, 10);
    out->res.version = sqlite3_column_int64(st, 11);
    out->res.created_at = sqlite3_column_int64(st, 12);
    out->res.updated_at = sqlite3_column_int64(st, 13);
    if (!out->path || !out->res.tenant || !out->res.body) {
        rc = HL_ENOMEM;
        goto done;
    }
    if (!(st = Q(s, Q_INGEST_LEASE))) {
        rc = HL_ESTORE;
        goto done;
    }
    bind_text(st, 1, out->file_uid);
    sqlite3_bind_int64(st, 2, lease_until);
    rc = run(s, st);
done:
    rc = finish(s, rc);
out:
    unlock(s);
    if (rc)
        hl_ingest_job_clear(out);
    return rc;
}

static int sq_chunk_list(struct hl_store *base, int64_t app_id, const char *file_uid, int64_t after,
                         size_t limit, struct hl_text_chunk **out, size_t *n)
{
    struct sq *s = RD(base);
    struct hl_text_chunk *arr = NULL;
    size_t cap = 0, len = 0;
    int rc = HL_ESTORE, r = SQLITE_DONE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_CHUNK_LIST);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        bind_text(st, 2, file_uid);
        sqlite3_bind_int64(st, 3, after);
        sqlite3_bind_int64(st, 4, (int64_t)limit);
        rc = HL_OK;
        while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW) {
            rc = grow((void **)&arr, &cap, len, sizeof(*arr));
            if (rc)
                break;
            arr[len].index = sqlite3_column_int64(st, 0);
            arr[len].offset = sqlite3_column_int64(st, 1);
            arr[len].len = (size_t)sqlite3_column_bytes(st, 2);
            arr[len].text = col_dup(st, 2);
            if (!arr[len].text)
                rc = HL_ENOMEM;
            else
                len++;
        }
        if (rc == HL_OK && r != SQLITE_DONE)
            rc = fail(s, "chunk list");
    }
    unlock(s);
    if (rc) {
        hl_chunks_list_free(arr, len);
        return rc;
    }
    *out = arr;
    *n = len;
    return HL_OK;
}

static int sq_file_path(struct hl_store *base, int64_t app_id, const char *file_uid, char **path)
{
    struct sq *s = RD(base);
    int rc = HL_ESTORE;
    pthread_mutex_lock(&s->mu);
    sqlite3_stmt *st = Q(s, Q_FILE_PATH);
    if (st) {
        sqlite3_bind_int64(st, 1, app_id);
        bind_text(st, 2, file_uid);
        int r = sqlite3_step(st);
        if (r == SQLITE_ROW) {
            *path = col_dup(st, 0);
            rc = *path ? HL_OK : HL_ENOMEM;
        } else {
            rc = r == SQLITE_DONE ? HL_ENOTFOUND : fail(s, "file path");
        }
    }
    unlock(s);
    return rc;
}

static void conn_close(struct sq *s, int checkpoint)
{
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(s->stmts[i]);
    if (s->db) {
        /* Leave a checkpointed file behind so a copy of the .db alone is complete. */
        if (checkpoint)
            sqlite3_exec(s->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        sqlite3_close(s->db);
    }
    pthread_mutex_destroy(&s->mu);
}

static void sq_close(struct hl_store *base)
{
    struct sqdb *db = DB(base);
    for (int i = 0; i < NREAD; i++)
        conn_close(&db->r[i], 0);
    conn_close(&db->w, 1);
    pthread_mutex_destroy(&db->q_mu);
    hl_store_base_destroy(&db->base);
    free(db);
}

/* Opens one connection to path. */
static int conn_open(struct sq *s, const char *path, int reader, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &s->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 s->db ? sqlite3_errmsg(s->db) : "out of memory");
        return HL_ESTORE;
    }
    sqlite3_busy_timeout(s->db, 5000);
    sqlite3_extended_result_codes(s->db, 1);
    if (exec_sql(s, "PRAGMA journal_mode = WAL") || exec_sql(s, "PRAGMA synchronous = FULL") ||
        exec_sql(s, "PRAGMA foreign_keys = ON") ||
        (reader && exec_sql(s, "PRAGMA query_only = ON"))) {
        snprintf(err, errlen, "cannot configure %s: %s", path, sqlite3_errmsg(s->db));
        return HL_ESTORE;
    }
    return HL_OK;
}

static const struct hl_store_ops SQLITE_OPS = {
    .close = sq_close,
    .app_create = sq_app_create,
    .app_get = sq_app_get,
    .app_list = sq_app_list,
    .key_create = sq_key_create,
    .key_lookup = sq_key_lookup,
    .key_revoke = sq_key_revoke,
    .key_list = sq_key_list,
    .webhook_create = sq_webhook_create,
    .webhook_get = sq_webhook_get,
    .webhook_list = sq_webhook_list,
    .webhook_update = sq_webhook_update,
    .webhook_delete = sq_webhook_delete,
    .resource_get = sq_resource_get,
    .resource_list = sq_resource_list,
    .commit = sq_commit,
    .idem_get = sq_idem_get,
    .event_list = sq_event_list,
    .claim = sq_claim,
    .claim_new = sq_claim_new,
    .record = sq_record,
    .next_due = sq_next_due,
    .release_leases = sq_release_leases,
    .event_get = sq_event_get,
    .delivery_list = sq_delivery_list,
    .delivery_get = sq_delivery_get,
    .delivery_resend = sq_delivery_resend,
    .recover = sq_recover,
    .rotate_secret = sq_rotate_secret,
    .webhook_stats = sq_webhook_stats,
    .queue_stats = sq_queue_stats,
    .ingest_claim = sq_ingest_claim,
    .chunk_list = sq_chunk_list,
    .file_paths = sq_file_path,
};

int hl_sqlite_open(const char *path, struct hl_store **out, char *err, size_t errlen)
{
    *out = NULL;
    struct sqdb *db = calloc(1, sizeof(*db));
    if (!db) {
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    hl_store_base_init(&db->base, &SQLITE_OPS);
    pthread_mutex_init(&db->q_mu, NULL);
    pthread_mutex_init(&db->w.mu, NULL);
    for (int i = 0; i < NREAD; i++)
        pthread_mutex_init(&db->r[i].mu, NULL);
    if (conn_open(&db->w, path, 0, err, errlen) || migrate(&db->w, err, errlen))
        goto bad;
    for (int i = 0; i < NREAD; i++)
        if (conn_open(&db->r[i], path, 1, err, errlen))
            goto bad;
    *out = &db->base;
    return HL_OK;
bad:
    sq_close(&db->base);
    return HL_ESTORE;
}
