/* PostgreSQL backend: several hookline nodes on one database.
 *
 * Same tables and the same semantics as sqlite.c, with integers as BIGINT and blobs as BYTEA.
 * Invariants worth knowing before changing anything here:
 *
 * - Connections. A pool of POOL_SIZE connections for the API and the ingest worker, each used by
 *   one thread at a time, and one more of the dispatcher's own, so that deliveries never queue
 *   behind HTTP requests for a connection. Opened lazily; statements prepared once per connection
 *   on first use. The dispatcher's connection commits without waiting for the WAL flush
 *   (synchronous_commit off): a lease lost in a server crash only lets a delivery be claimed
 *   again, which at-least-once allows; its record transactions turn the flush back on. Parameters
 * go in binary (integers as int8, strings and blobs with their lengths, so payloads are
 * byte-exact); results come back in binary.
 * - Failures. An op that finds its connection broken drops it and returns HL_EUNAVAIL (the API
 *   answers 503); the next use reconnects, at most once per RECONNECT_PAUSE_MS while the server
 *   is away. A connection that died while idle (a server restart) is noticed before use, or by a
 *   first statement that is safe to repeat, and replaced transparently. connect_timeout, TCP
 *   keepalives, tcp_user_timeout, statement_timeout and idle_in_transaction_session_timeout bound
 *   every wait on the server: nothing hangs for good.
 * - Claims. Due deliveries are taken with FOR UPDATE SKIP LOCKED and leased until lease_until:
 *   two nodes never hold the same delivery, and the deliveries of a node that died are claimed
 *   again once its leases lapse. Leases compare the wall clocks of different nodes: keep them in
 *   sync (NTP) and leases far longer than the skew. release_leases does nothing here, because the
 *   other nodes' leases are live; next_due also reports when the earliest lease lapses, so a node
 *   takes a dead node's work over without being woken.
 * - Wake-ups. A transaction that makes deliveries runs pg_notify(CHANNEL, node id), delivered at
 *   COMMIT; a listener thread on its own connection LISTENs and wakes the local dispatcher (its
 *   own node's notifications are skipped: commit already woke it). It reconnects by itself with
 *   backoff and wakes the dispatcher once it is back, for whatever it missed.
 * - Ingestion. Files are claimed the same way (one node processes a file; a dead node's file is
 *   taken over when its lease lapses).
 * - Lock order. Transactions lock webhook rows before delivery rows (record sorts its batch by
 *   webhook, then by delivery), as webhook updates and deletes do, so nodes do not deadlock.
 * - An update or delete that changes no row is HL_ECONFLICT when the resource is there at another
 *   version and HL_ENOTFOUND when it is gone, as store.h says.
 * - Migrations run at open under a session advisory lock, recorded in schema_version, so nodes
 *   starting together migrate once.
 */
#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <openssl/crypto.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "store/store.h"

#define POOL_SIZE 16
#define MAX_PARAMS 12
#define CHANNEL "hookline_deliveries"
/* "hookline" in ASCII: the advisory lock held while migrating. */
#define MIGRATION_LOCK "7525356009530420837"
#define CONNECT_TIMEOUT_MS 5000
#define STATEMENT_TIMEOUT_MS 15000
#define IDLE_TX_TIMEOUT_MS 60000
#define MIGRATION_TIMEOUT_MS 300000
#define ACQUIRE_WAIT_MS 10000
#define RECONNECT_PAUSE_MS 200
#define LISTEN_BACKOFF_MIN_MS 100
#define LISTEN_BACKOFF_MAX_MS 5000

/* Type OIDs of the parameters we send (pg_type.dat). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_INT8_ARRAY 1016

static const char *const MIGRATIONS[] = {
    /* 1: the foundation (sqlite.c's migration 1) */
    "CREATE TABLE apps(id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE, name TEXT NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE api_keys(id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id BIGINT NOT NULL REFERENCES apps(id), hash BYTEA NOT NULL UNIQUE,"
    " prefix TEXT NOT NULL, created_at BIGINT NOT NULL, revoked_at BIGINT);"
    "CREATE TABLE webhooks(id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id BIGINT NOT NULL REFERENCES apps(id), url TEXT NOT NULL, description TEXT,"
    " entities BIGINT NOT NULL, event_types BIGINT NOT NULL DEFAULT 0,"
    " active BIGINT NOT NULL, secret TEXT NOT NULL, prev_secret TEXT,"
    " prev_secret_until BIGINT NOT NULL DEFAULT 0, created_at BIGINT NOT NULL,"
    " updated_at BIGINT NOT NULL, last_triggered_at BIGINT NOT NULL DEFAULT 0,"
    " last_success_at BIGINT NOT NULL DEFAULT 0, last_failure_at BIGINT NOT NULL DEFAULT 0,"
    " failing_since BIGINT NOT NULL DEFAULT 0, disabled_at BIGINT NOT NULL DEFAULT 0,"
    " disabled_reason TEXT, deleted_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX webhooks_app ON webhooks(app_id, id);"
    "CREATE TABLE resources(id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id BIGINT NOT NULL REFERENCES apps(id), kind BIGINT NOT NULL,"
    " parent_uid TEXT NOT NULL, tenant TEXT NOT NULL, body TEXT NOT NULL,"
    " version BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL);"
    "CREATE INDEX resources_list ON resources(app_id, kind, id);"
    "CREATE TABLE events(id BIGSERIAL PRIMARY KEY, uid TEXT NOT NULL UNIQUE,"
    " app_id BIGINT NOT NULL REFERENCES apps(id), type BIGINT NOT NULL, tenant TEXT NOT NULL,"
    " resource_uid TEXT NOT NULL, created_at BIGINT NOT NULL, payload BYTEA NOT NULL);"
    "CREATE INDEX events_app ON events(app_id, id);"
    "CREATE TABLE deliveries(id BIGSERIAL PRIMARY KEY,"
    " event_id BIGINT NOT NULL REFERENCES events(id),"
    " webhook_id BIGINT NOT NULL REFERENCES webhooks(id), status BIGINT NOT NULL,"
    " attempts BIGINT NOT NULL DEFAULT 0, next_attempt_at BIGINT NOT NULL,"
    " lease_until BIGINT NOT NULL DEFAULT 0, last_status BIGINT NOT NULL DEFAULT 0,"
    " last_error TEXT, created_at BIGINT NOT NULL, delivered_at BIGINT NOT NULL DEFAULT 0);"
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = 0;"
    "CREATE INDEX deliveries_leased ON deliveries(lease_until)"
    " WHERE status = 0 AND lease_until > 0;"
    "CREATE INDEX deliveries_webhook ON deliveries(webhook_id, status, id);"
    "CREATE INDEX deliveries_event ON deliveries(event_id);"
    "CREATE TABLE attempts(id BIGSERIAL PRIMARY KEY,"
    " delivery_id BIGINT NOT NULL REFERENCES deliveries(id), started_at BIGINT NOT NULL,"
    " duration_us BIGINT NOT NULL, status_code BIGINT NOT NULL, error TEXT, response BYTEA);"
    "CREATE INDEX attempts_delivery ON attempts(delivery_id, id);"
    "CREATE TABLE idempotency(app_id BIGINT NOT NULL REFERENCES apps(id), key TEXT NOT NULL,"
    " request_hash BYTEA NOT NULL, status BIGINT NOT NULL, response TEXT NOT NULL,"
    " created_at BIGINT NOT NULL, PRIMARY KEY(app_id, key));",
    /* 2: context-file ingestion (sqlite.c's migration 2) */
    "CREATE TABLE files(uid TEXT PRIMARY KEY, app_id BIGINT NOT NULL REFERENCES apps(id),"
    " path TEXT NOT NULL, size BIGINT NOT NULL, sha256 TEXT NOT NULL,"
    " state BIGINT NOT NULL DEFAULT 0, lease_until BIGINT NOT NULL DEFAULT 0,"
    " created_at BIGINT NOT NULL);"
    "CREATE INDEX files_queue ON files(state, created_at);"
    "CREATE TABLE chunks(file_uid TEXT NOT NULL, idx BIGINT NOT NULL, \"offset\" BIGINT NOT NULL,"
    " text TEXT NOT NULL, PRIMARY KEY(file_uid, idx));",
};
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
    Q_APP_INSERT,
    Q_APP_GET,
    Q_APP_LIST,
    Q_KEY_INSERT,
    Q_KEY_LOOKUP,
    Q_KEY_REVOKE,
    Q_KEY_LIST,
    Q_WH_INSERT,
    Q_WH_GET,
    Q_WH_GET_LOCKED,
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
    Q_RES_EXISTS,
    Q_EV_FANOUT,
    Q_EV_ONE,
    Q_IDEM_INSERT,
    Q_IDEM_GET,
    Q_EV_LIST,
    Q_NOTIFY,
    Q_CLAIM,
    Q_ATTEMPT_INSERT,
    Q_DELIV_SUCCESS,
    Q_DELIV_RETRY,
    Q_DELIV_FAILED,
    Q_WH_SUCCESS,
    Q_WH_FAILURE,
    Q_WH_GONE,
    Q_WH_AUTODISABLE,
    Q_NEXT_DUE,
    Q_SYNC_ON,
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
    Q_INGEST_CLAIM,
    Q_CHUNK_LIST,
    Q_FILE_PATH,
    Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
    [Q_BEGIN] = "BEGIN",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_APP_INSERT] = "INSERT INTO apps(uid, name, created_at) VALUES($1, $2, $3) RETURNING id",
    [Q_APP_GET] = "SELECT id, uid, name, created_at FROM apps WHERE uid = $1",
    [Q_APP_LIST] = "SELECT id, uid, name, created_at FROM apps ORDER BY id",
    [Q_KEY_INSERT] = "INSERT INTO api_keys(uid, app_id, hash, prefix, created_at)"
                     " VALUES($1, $2, $3, $4, $5)",
    [Q_KEY_LOOKUP] = "SELECT a.id, a.uid, a.name, a.created_at, k.hash FROM api_keys k"
                     " JOIN apps a ON a.id = k.app_id WHERE k.hash = $1 AND k.revoked_at IS NULL",
    [Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = $2 WHERE uid = $1 AND revoked_at IS NULL",
    [Q_KEY_LIST] = "SELECT k.uid, k.app_id, a.uid, k.prefix, k.created_at,"
                   " coalesce(k.revoked_at, 0) FROM api_keys k JOIN apps a ON a.id = k.app_id"
                   " WHERE $1 = 0 OR k.app_id = $1 ORDER BY k.id",
    [Q_WH_INSERT] = "INSERT INTO webhooks(uid, app_id, url, description, entities, event_types,"
                    " active, secret, created_at, updated_at)"
                    " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $9) RETURNING id",
    [Q_WH_GET] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND uid = $2"
                 " AND deleted_at = 0",
    [Q_WH_GET_LOCKED] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND uid = $2"
                        " AND deleted_at = 0 FOR NO KEY UPDATE",
    [Q_WH_LIST] = "SELECT " WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND id > $2"
                  " AND deleted_at = 0 ORDER BY id LIMIT $3",
    [Q_WH_UPDATE] = "UPDATE webhooks SET url = $3, description = $4, entities = $5,"
                    " event_types = $6, active = $7, updated_at = $8,"
                    " disabled_at = CASE WHEN $7 <> 0 THEN 0 ELSE disabled_at END,"
                    " disabled_reason = CASE WHEN $7 <> 0 THEN NULL ELSE disabled_reason END,"
                    " failing_since = CASE WHEN $7 <> 0 AND active = 0 THEN 0"
                    " ELSE failing_since END"
                    " WHERE app_id = $1 AND uid = $2 AND deleted_at = 0",
    [Q_WH_PAUSE_DELIVERIES] = "UPDATE deliveries SET status = 4 WHERE webhook_id = $1"
                              " AND status = 0",
    [Q_WH_RESUME_DELIVERIES] = "UPDATE deliveries SET status = 0, next_attempt_at = $2"
                               " WHERE webhook_id = $1 AND status = 4",
    [Q_WH_DELETE] = "UPDATE webhooks SET deleted_at = $3, active = 0"
                    " WHERE app_id = $1 AND uid = $2 AND deleted_at = 0",
    [Q_WH_CANCEL_DELIVERIES] = "UPDATE deliveries SET status = 3, lease_until = 0"
                               " WHERE webhook_id = (SELECT id FROM webhooks WHERE uid = $1)"
                               " AND status IN (0, 4)",
    [Q_RES_GET] = "SELECT " RESOURCE_COLS " FROM resources WHERE app_id = $1 AND kind = $2"
                  " AND uid = $3",
    [Q_RES_LIST] = "SELECT " RESOURCE_COLS " FROM resources WHERE app_id = $1 AND kind = $2"
                   " AND ($3::text IS NULL OR parent_uid = $3)"
                   " AND ($4::text IS NULL OR tenant = $4) AND id > $5 ORDER BY id LIMIT $6",
    [Q_RES_INSERT] = "INSERT INTO resources(uid, app_id, kind, parent_uid, tenant, body, version,"
                     " created_at, updated_at) VALUES($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    [Q_RES_UPDATE] = "UPDATE resources SET tenant = $4, body = $5, version = version + 1,"
                     " updated_at = $6 WHERE app_id = $1 AND uid = $2 AND version = $3",
    [Q_RES_DELETE] = "DELETE FROM resources WHERE app_id = $1 AND uid = $2 AND version = $3",
    [Q_RES_EXISTS] = "SELECT 1 FROM resources WHERE app_id = $1 AND uid = $2",
    /* The event, its deliveries and the wake-up of every node in one round trip. The data-modifying
     * CTEs always run to completion; the NOTIFY goes out at COMMIT, only when deliveries were made.
     */
    [Q_EV_FANOUT] =
        "WITH ev AS (INSERT INTO events(uid, app_id, type, tenant, resource_uid,"
        " created_at, payload) VALUES($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
        " d AS (INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
        " created_at) SELECT ev.id, w.id, 0, $8, $8 FROM ev, webhooks w"
        " WHERE w.app_id = $2 AND w.active = 1 AND w.deleted_at = 0"
        " AND (w.entities & $9) <> 0 AND (w.event_types = 0 OR (w.event_types & $10) <> 0)"
        " RETURNING 1), n AS (SELECT count(*) AS made FROM d)"
        " SELECT made, CASE WHEN made > 0 THEN pg_notify($11, $12) END FROM n",
    /* The same for one webhook (webhook.test). */
    [Q_EV_ONE] = "WITH ev AS (INSERT INTO events(uid, app_id, type, tenant, resource_uid,"
                 " created_at, payload) VALUES($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
                 " d AS (INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
                 " created_at) SELECT ev.id, $9, 0, $8, $8 FROM ev RETURNING 1),"
                 " n AS (SELECT count(*) AS made FROM d)"
                 " SELECT made, CASE WHEN made > 0 THEN pg_notify($10, $11) END FROM n",
    [Q_IDEM_INSERT] = "INSERT INTO idempotency(app_id, key, request_hash, status, response,"
                      " created_at) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(app_id, key)"
                      " DO UPDATE SET request_hash = excluded.request_hash,"
                      " status = excluded.status, response = excluded.response,"
                      " created_at = excluded.created_at WHERE idempotency.created_at < $7",
    [Q_IDEM_GET] = "SELECT request_hash, status, response FROM idempotency WHERE app_id = $1"
                   " AND key = $2 AND created_at >= $3",
    [Q_EV_LIST] = "SELECT " EVENT_COLS " FROM events WHERE app_id = $1"
                  " AND ($2 < 0 OR type = $2) AND ($3::text IS NULL OR tenant = $3)"
                  " AND ($4 = 0 OR created_at >= $4) AND ($5 = 0 OR created_at < $5)"
                  " AND ($6 = 0 OR id < $6) ORDER BY id DESC LIMIT $7",
    [Q_NOTIFY] = "SELECT pg_notify($1, $2)",
    /* The inner SELECT locks what it takes and skips rows another node is claiming right now;
     * rows another node leased since our snapshot fail the re-check of lease_until. */
    [Q_CLAIM] = "UPDATE deliveries d SET lease_until = $2"
                " FROM (SELECT d2.id FROM deliveries d2 JOIN webhooks w2 ON w2.id = d2.webhook_id"
                " WHERE d2.status = 0 AND d2.next_attempt_at <= $1 AND d2.lease_until <= $1"
                " AND w2.active = 1 AND d2.webhook_id <> ALL($3::bigint[])"
                " ORDER BY d2.next_attempt_at LIMIT $4 FOR UPDATE OF d2 SKIP LOCKED) c,"
                " webhooks w, events e"
                " WHERE d.id = c.id AND w.id = d.webhook_id AND e.id = d.event_id"
                " RETURNING d.id, d.webhook_id, d.event_id, e.uid, e.created_at, d.attempts,"
                " d.created_at, w.url, w.secret, CASE WHEN w.prev_secret_until > $1"
                " THEN coalesce(w.prev_secret, '') ELSE '' END, e.payload",
    [Q_ATTEMPT_INSERT] = "INSERT INTO attempts(delivery_id, started_at, duration_us, status_code,"
                         " error, response) VALUES($1, $2, $3, $4, $5, $6)",
    [Q_DELIV_SUCCESS] = "UPDATE deliveries SET status = 1, attempts = attempts + 1,"
                        " last_status = $2, last_error = NULL, delivered_at = $3, lease_until = 0"
                        " WHERE id = $1 AND status IN (0, 2, 4)",
    [Q_DELIV_RETRY] = "UPDATE deliveries SET attempts = attempts + 1, last_status = $2,"
                      " last_error = $3, next_attempt_at = $4, lease_until = 0"
                      " WHERE id = $1 AND status IN (0, 4)",
    [Q_DELIV_FAILED] = "UPDATE deliveries SET status = 2, attempts = attempts + 1,"
                       " last_status = $2, last_error = $3, lease_until = 0"
                       " WHERE id = $1 AND status IN (0, 2, 4)",
    /* Every node records successes of a busy webhook: touching its row for each would serialise
     * the nodes on that row's lock. A success changes the row only when it ends a run of
     * failures or moves lastSuccessAt/lastTriggeredAt by a second or more (a non-matching row is
     * skipped without taking its lock). */
    [Q_WH_SUCCESS] = "UPDATE webhooks SET last_triggered_at = greatest(last_triggered_at, $2),"
                     " last_success_at = greatest(last_success_at, $2), failing_since = 0"
                     " WHERE id = $1 AND (failing_since <> 0 OR last_success_at < $2 - 1000"
                     " OR last_triggered_at < $2 - 1000)",
    [Q_WH_FAILURE] = "UPDATE webhooks SET last_triggered_at = greatest(last_triggered_at, $2),"
                     " last_failure_at = greatest(last_failure_at, $2),"
                     " failing_since = CASE WHEN failing_since = 0 THEN $2 ELSE failing_since END"
                     " WHERE id = $1",
    [Q_WH_GONE] = "UPDATE webhooks SET active = 0, disabled_at = $2, disabled_reason = $3"
                  " WHERE id = $1 AND active = 1",
    [Q_WH_AUTODISABLE] = "UPDATE webhooks SET active = 0, disabled_at = $2, disabled_reason = $3"
                         " WHERE id = $1 AND active = 1 AND failing_since > 0"
                         " AND failing_since <= $4",
    /* The earliest due delivery not leased now, or the earliest lease to lapse (0: none). */
    [Q_NEXT_DUE] = "SELECT coalesce(least((SELECT min(next_attempt_at) FROM deliveries"
                   " WHERE status = 0 AND lease_until <= $1), (SELECT min(lease_until)"
                   " FROM deliveries WHERE status = 0 AND lease_until > $1)), 0)",
    /* Attempt records are kept durable even on the dispatcher's asynchronous session. */
    [Q_SYNC_ON] = "SELECT set_config('synchronous_commit', 'on', true)",
    [Q_EV_GET] = "SELECT " EVENT_COLS " FROM events WHERE app_id = $1 AND uid = $2",
    [Q_DL_BY_EVENT] = DELIVERY_SELECT " WHERE d.event_id = $1 ORDER BY d.id",
    [Q_DL_LIST] =
        DELIVERY_SELECT " WHERE d.webhook_id = $1 AND w.app_id = $2"
                        " AND ($3 < 0 OR d.status = $3) AND ($4 < 0 OR e.type = $4)"
                        " AND ($5 = 0 OR d.created_at >= $5) AND ($6 = 0 OR d.created_at < $6)"
                        " AND ($7 = 0 OR d.id < $7) ORDER BY d.id DESC LIMIT $8",
    [Q_DL_GET] = DELIVERY_SELECT " WHERE d.id = $1 AND w.app_id = $2",
    [Q_ATT_LIST] = "SELECT started_at, duration_us, status_code, error, response FROM attempts"
                   " WHERE delivery_id = $1 ORDER BY id",
    [Q_DL_RESEND] = "UPDATE deliveries SET status = 0, next_attempt_at = $3, lease_until = 0"
                    " WHERE id = $1 AND lease_until <= $3 AND webhook_id IN"
                    " (SELECT id FROM webhooks WHERE app_id = $2 AND deleted_at = 0)",
    [Q_RECOVER] = "UPDATE deliveries SET status = 0, next_attempt_at = $4, lease_until = 0"
                  " WHERE webhook_id = $1 AND status = 2 AND created_at >= $2"
                  " AND ($3 = 0 OR created_at < $3)",
    [Q_ROTATE] = "UPDATE webhooks SET prev_secret = CASE WHEN $4 > $5 THEN secret END,"
                 " prev_secret_until = CASE WHEN $4 > $5 THEN $4 ELSE 0 END, secret = $3,"
                 " updated_at = $5 WHERE app_id = $1 AND uid = $2 AND deleted_at = 0",
    [Q_WH_STATS] = "SELECT count(*) FILTER (WHERE status IN (0, 4)),"
                   " count(*) FILTER (WHERE status = 1), count(*) FILTER (WHERE status = 2)"
                   " FROM deliveries WHERE webhook_id = $1",
    [Q_QUEUE_STATS] = "SELECT count(*), coalesce(min(created_at), 0) FROM deliveries"
                      " WHERE status = 0",
    [Q_FILE_INSERT] = "INSERT INTO files(uid, app_id, path, size, sha256, created_at)"
                      " VALUES($1, $2, $3, $4, $5, $6)",
    [Q_FILE_DELETE] = "DELETE FROM files WHERE uid = $1",
    [Q_CHUNKS_DELETE] = "DELETE FROM chunks WHERE file_uid = $1",
    [Q_CHUNK_INSERT] = "INSERT INTO chunks(file_uid, idx, \"offset\", text) VALUES($1, $2, $3, $4)",
    [Q_FILE_DONE] = "UPDATE files SET state = 2, lease_until = 0 WHERE uid = $1",
    /* As Q_CLAIM: one node takes a file, and a dead node's file once its lease lapses. */
    [Q_INGEST_CLAIM] = "UPDATE files f SET state = 1, lease_until = $2"
                       " FROM (SELECT f2.uid FROM files f2 JOIN resources r2 ON r2.uid = f2.uid"
                       " WHERE f2.state < 2 AND f2.lease_until <= $1 ORDER BY f2.created_at"
                       " LIMIT 1 FOR UPDATE OF f2 SKIP LOCKED) c, apps a, resources r"
                       " WHERE f.uid = c.uid AND a.id = f.app_id AND r.uid = f.uid"
                       " RETURNING f.uid, f.app_id, a.uid, f.path, " RESOURCE_COLS_R,
    [Q_CHUNK_LIST] = "SELECT c.idx, c.\"offset\", c.text FROM chunks c JOIN files f"
                     " ON f.uid = c.file_uid WHERE f.app_id = $1 AND c.file_uid = $2"
                     " AND c.idx > $3 ORDER BY c.idx LIMIT $4",
    [Q_FILE_PATH] = "SELECT path FROM files WHERE app_id = $1 AND uid = $2",
};

struct conn {
    PGconn *pg;                      /* NULL: not connected (yet, or since it broke) */
    unsigned char prepared[Q_COUNT]; /* statement q is prepared on pg */
    int busy;                        /* held by a thread (guarded by pg.mu) */
    int used;                        /* statements run since it was acquired */
    int async;                       /* the dispatcher's: synchronous_commit off for the session */
};

struct pg {
    struct hl_store base;
    char *conninfo;
    char node[HL_ID_MAX]; /* this process, in NOTIFY payloads */
    pthread_mutex_t mu;   /* guards the fields below and conns[].busy */
    pthread_cond_t cv;    /* a connection was released */
    struct conn conns[POOL_SIZE];
    pthread_mutex_t disp_mu; /* held while the dispatcher's connection is in use */
    struct conn disp;
    int64_t retry_at; /* monotonic ms: no new connection attempt before this */
    int healthy;      /* the last connection attempt or statement reached the server */
    int closing;
    pthread_t listener;
    int listener_started;
    int stop_pipe[2]; /* written at close to wake the listener */
};

static struct pg *PG(struct hl_store *st)
{
    return (struct pg *)st;
}

/* ---- parameters and results ---- */

/* Query parameters, all but arrays in binary. */
struct params {
    int n;
    int overflow;
    Oid types[MAX_PARAMS];
    const char *values[MAX_PARAMS];
    int lengths[MAX_PARAMS];
    int formats[MAX_PARAMS];
    uint64_t ints[MAX_PARAMS];
};

static int p_next(struct params *p)
{
    if (p->n >= MAX_PARAMS) {
        p->overflow = 1;
        return -1;
    }
    return p->n++;
}

static void p_i64(struct params *p, int64_t v)
{
    int i = p_next(p);
    if (i < 0)
        return;
    p->ints[i] = htobe64((uint64_t)v);
    p->types[i] = OID_INT8;
    p->values[i] = (const char *)&p->ints[i];
    p->lengths[i] = 8;
    p->formats[i] = 1;
}

/* A string of len bytes (binary: no NUL needed), or SQL NULL when s is NULL. */
static void p_textn(struct params *p, const char *s, size_t len)
{
    int i = p_next(p);
    if (i < 0)
        return;
    p->types[i] = OID_TEXT;
    p->values[i] = s;
    p->lengths[i] = s ? (int)len : 0;
    p->formats[i] = 1;
}

static void p_text(struct params *p, const char *s)
{
    p_textn(p, s, s ? strlen(s) : 0);
}

/* Bytes, or SQL NULL when data is NULL. */
static void p_bytea(struct params *p, const void *data, size_t len)
{
    int i = p_next(p);
    if (i < 0)
        return;
    p->types[i] = OID_BYTEA;
    p->values[i] = data ? (len ? data : "") : NULL;
    p->lengths[i] = (int)len;
    p->formats[i] = 1;
}

/* An int8[] in text form ("{1,2}"), NUL-terminated. */
static void p_int_array(struct params *p, const char *text)
{
    int i = p_next(p);
    if (i < 0)
        return;
    p->types[i] = OID_INT8_ARRAY;
    p->values[i] = text;
    p->lengths[i] = 0;
    p->formats[i] = 0;
}

/* An integer column in binary (int2, int4 or int8); NULL reads as 0. */
static int64_t col_i64(const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, row, col);
    int len = PQgetlength(r, row, col);
    uint64_t x = 0;
    for (int i = 0; i < len && i < 8; i++)
        x = x << 8 | v[i];
    if (len == 4)
        return (int32_t)(uint32_t)x;
    if (len == 2)
        return (int16_t)(uint16_t)x;
    return (int64_t)x;
}

static void col_copy(const PGresult *r, int row, int col, char *out, size_t cap)
{
    size_t len = (size_t)PQgetlength(r, row, col);
    if (len >= cap)
        len = cap - 1;
    memcpy(out, PQgetvalue(r, row, col), len);
    out[len] = '\0';
}

/* A malloc'd, NUL-terminated copy of a column (its length in *len when not NULL); NULL for SQL
 * NULL or when out of memory (tell them apart with PQgetisnull). */
static char *col_dup(const PGresult *r, int row, int col, size_t *len)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    size_t n = (size_t)PQgetlength(r, row, col);
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    memcpy(s, PQgetvalue(r, row, col), n);
    s[n] = '\0';
    if (len)
        *len = n;
    return s;
}

/* The row count of an INSERT/UPDATE/DELETE. */
static int64_t changes(const PGresult *r)
{
    const char *s = PQcmdTuples((PGresult *)r);
    char *end;
    long long v = strtoll(s, &end, 10);
    return end == s ? 0 : (int64_t)v;
}

/* ---- connections ---- */

static void on_notice(void *arg, const char *message)
{
    (void)arg;
    size_t len = strlen(message);
    while (len && message[len - 1] == '\n')
        len--;
    hl_debug("postgres: %.*s", (int)len, message);
}

/* Copies libpq's last error for pg into out, without the trailing newline. */
static void conn_error(PGconn *pg, char *out, size_t cap)
{
    snprintf(out, cap, "%s", pg ? PQerrorMessage(pg) : "out of memory");
    size_t len = strlen(out);
    while (len && (out[len - 1] == '\n' || out[len - 1] == ' '))
        out[--len] = '\0';
}

/* Connection options; the URL comes last so that what it says wins. */
#define CONNECT_KEYS                                                                               \
    {                                                                                              \
        "connect_timeout", "keepalives", "keepalives_idle", "keepalives_interval",                 \
            "keepalives_count", "tcp_user_timeout", "application_name", "client_encoding",         \
            "dbname", NULL                                                                         \
    }
#define CONNECT_VALUES(url)                                                                        \
    {                                                                                              \
        "5", "1", "10", "5", "3", "15000", "hookline", "UTF8", url, NULL                           \
    }

/* Sets the session limits that keep a statement or a forgotten transaction from holding on. */
static int session_setup(PGconn *pg, int statement_timeout_ms, char *err, size_t errlen)
{
    char sql[200];
    snprintf(sql, sizeof(sql),
             "SET statement_timeout = %d; SET idle_in_transaction_session_timeout = %d",
             statement_timeout_ms, IDLE_TX_TIMEOUT_MS);
    PGresult *r = PQexec(pg, sql);
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        conn_error(pg, err, errlen);
    PQclear(r);
    return ok ? HL_OK : HL_EUNAVAIL;
}

/* Lets the session's commits return before their WAL is flushed. */
static int session_async(PGconn *pg, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, "SET synchronous_commit = off");
    int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    if (!ok)
        conn_error(pg, err, errlen);
    PQclear(r);
    return ok ? HL_OK : HL_EUNAVAIL;
}

/* Opens a connection (blocking, bounded by connect_timeout). NULL on failure, reason in err. */
static PGconn *open_conn(const char *conninfo, int statement_timeout_ms, char *err, size_t errlen)
{
    const char *const keys[] = CONNECT_KEYS;
    const char *const values[] = CONNECT_VALUES(conninfo);
    PGconn *pg = PQconnectdbParams(keys, values, 1);
    if (!pg || PQstatus(pg) != CONNECTION_OK) {
        conn_error(pg, err, errlen);
        PQfinish(pg);
        return NULL;
    }
    PQsetNoticeProcessor(pg, on_notice, NULL);
    if (session_setup(pg, statement_timeout_ms, err, errlen)) {
        PQfinish(pg);
        return NULL;
    }
    return pg;
}

/* Marks the server reachable again, logging the change once. */
static void set_healthy(struct pg *p, int healthy, const char *why)
{
    pthread_mutex_lock(&p->mu);
    int was = p->healthy;
    p->healthy = healthy;
    if (!healthy)
        p->retry_at = hl_mono_ms() + RECONNECT_PAUSE_MS;
    pthread_mutex_unlock(&p->mu);
    if (was && !healthy)
        hl_warn("postgres: the database is unavailable: %s", why);
    else if (!was && healthy)
        hl_info("postgres: connected to the database again");
}

/* Drops a broken connection; the next use opens a new one. */
static void drop(struct pg *p, struct conn *c, const char *why)
{
    set_healthy(p, 0, why);
    PQfinish(c->pg);
    c->pg = NULL;
    memset(c->prepared, 0, sizeof(c->prepared));
}

/* Connects c (held by the caller). HL_EUNAVAIL while the server cannot be reached. */
static int reconnect(struct pg *p, struct conn *c)
{
    pthread_mutex_lock(&p->mu);
    int wait = hl_mono_ms() < p->retry_at;
    pthread_mutex_unlock(&p->mu);
    if (wait)
        return HL_EUNAVAIL;
    char err[256];
    c->pg = open_conn(p->conninfo, STATEMENT_TIMEOUT_MS, err, sizeof(err));
    memset(c->prepared, 0, sizeof(c->prepared));
    if (c->pg && c->async && session_async(c->pg, err, sizeof(err))) {
        PQfinish(c->pg);
        c->pg = NULL;
    }
    if (!c->pg) {
        set_healthy(p, 0, err);
        return HL_EUNAVAIL;
    }
    set_healthy(p, 1, NULL);
    return HL_OK;
}

/* Notices a connection the server closed while it sat idle (a restart, an idle timeout): the
 * closing message is already in the socket. Cheap: one poll() that does not wait. */
static void check_idle(struct pg *p, struct conn *c)
{
    struct pollfd pfd = {.fd = PQsocket(c->pg), .events = POLLIN};
    if (pfd.fd < 0) {
        drop(p, c, "no socket");
        return;
    }
    if (poll(&pfd, 1, 0) <= 0)
        return;
    if (!PQconsumeInput(c->pg) || PQstatus(c->pg) != CONNECTION_OK) {
        char err[256];
        conn_error(c->pg, err, sizeof(err));
        drop(p, c, err);
        return;
    }
    PGnotify *n;
    while ((n = PQnotifies(c->pg)))
        PQfreemem(n);
}

static void release(struct pg *p, struct conn *c);
static int ready(struct pg *p, struct conn *c, struct conn **out);

/* Takes a connection from the pool, connected. HL_EUNAVAIL when the server is away or no
 * connection frees up within ACQUIRE_WAIT_MS. */
static int acquire(struct pg *p, struct conn **out)
{
    int64_t deadline = hl_mono_ms() + ACQUIRE_WAIT_MS;
    struct timespec ts = {.tv_sec = deadline / 1000, .tv_nsec = (deadline % 1000) * 1000000};
    struct conn *c = NULL;
    pthread_mutex_lock(&p->mu);
    for (;;) {
        struct conn *idle = NULL;
        for (int i = 0; i < POOL_SIZE; i++) {
            if (p->conns[i].busy)
                continue;
            if (p->conns[i].pg) {
                c = &p->conns[i];
                break;
            }
            if (!idle)
                idle = &p->conns[i];
        }
        if (!c)
            c = idle;
        if (c || p->closing)
            break;
        if (pthread_cond_timedwait(&p->cv, &p->mu, &ts) == ETIMEDOUT)
            break;
    }
    if (c)
        c->busy = 1;
    pthread_mutex_unlock(&p->mu);
    if (!c) {
        hl_warn("postgres: no connection free within %d ms", ACQUIRE_WAIT_MS);
        return HL_EUNAVAIL;
    }
    return ready(p, c, out);
}

/* Makes sure a connection just taken is connected; releases it when it cannot be. */
static int ready(struct pg *p, struct conn *c, struct conn **out)
{
    c->used = 0;
    if (c->pg)
        check_idle(p, c);
    if (!c->pg) {
        int rc = reconnect(p, c);
        if (rc) {
            release(p, c);
            return rc;
        }
    }
    *out = c;
    return HL_OK;
}

/* Takes the dispatcher's own connection (claims, records, next_due). */
static int acquire_dispatcher(struct pg *p, struct conn **out)
{
    pthread_mutex_lock(&p->disp_mu);
    p->disp.busy = 1;
    return ready(p, &p->disp, out);
}

/* Gives a connection back (to the pool, or the dispatcher's), never inside a transaction. */
static void release(struct pg *p, struct conn *c)
{
    if (c->pg) {
        PGTransactionStatusType ts = PQtransactionStatus(c->pg);
        if (ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR) {
            PGresult *r = PQexec(c->pg, "ROLLBACK");
            if (PQresultStatus(r) != PGRES_COMMAND_OK)
                drop(p, c, "rollback failed");
            PQclear(r);
        } else if (ts != PQTRANS_IDLE) {
            drop(p, c, "connection left busy");
        }
    }
    if (c == &p->disp) {
        c->busy = 0;
        pthread_mutex_unlock(&p->disp_mu);
        return;
    }
    pthread_mutex_lock(&p->mu);
    c->busy = 0;
    pthread_cond_signal(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* SQLSTATEs that say "try again later" rather than "this is wrong". */
static int transient(const char *state)
{
    static const char *const codes[] = {"40001", "40P01", "55P03", "57014", "57P01",
                                        "57P02", "57P03", "25P03", "57P05"};
    if (strncmp(state, "08", 2) == 0 || strncmp(state, "53", 2) == 0)
        return 1;
    for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
        if (strcmp(state, codes[i]) == 0)
            return 1;
    return 0;
}

/* Turns a failed statement into an error code; drops the connection when it is broken. */
static int failure(struct pg *p, struct conn *c, const PGresult *r, enum q q)
{
    const char *state = r ? PQresultErrorField(r, PG_DIAG_SQLSTATE) : NULL;
    char err[256];
    if (!state || PQstatus(c->pg) != CONNECTION_OK) {
        conn_error(c->pg, err, sizeof(err));
        drop(p, c, err);
        return HL_EUNAVAIL;
    }
    if (strncmp(state, "23", 2) == 0)
        return HL_ECONFLICT; /* a constraint: a unique key taken, a reference gone */
    snprintf(err, sizeof(err), "%s", PQresultErrorMessage(r));
    size_t len = strlen(err);
    while (len && err[len - 1] == '\n')
        err[--len] = '\0';
    if (transient(state)) {
        hl_warn("postgres: %.60s: %s", SQL[q], err);
        if (strncmp(state, "57P", 3) == 0 || strncmp(state, "08", 2) == 0)
            drop(p, c, err); /* the server is going away: this session is done */
        return HL_EUNAVAIL;
    }
    hl_error("postgres: %.60s: %s", SQL[q], err);
    return HL_ESTORE;
}

/* Statements that change nothing, so running them again after a lost connection is safe. */
static int repeatable(enum q q)
{
    return q == Q_BEGIN || strncmp(SQL[q], "SELECT", 6) == 0;
}

/* Runs statement q on c, preparing it on first use. On success *out holds the result (the
 * caller PQclears it). */
static int run(struct pg *p, struct conn *c, enum q q, const struct params *a, PGresult **out)
{
    *out = NULL;
    if (a->overflow)
        return HL_EINVAL;
    char name[16];
    snprintf(name, sizeof(name), "hl%d", (int)q);
    for (int attempt = 0;; attempt++) {
        int rc = HL_EUNAVAIL;
        if (c->pg && !c->prepared[q]) {
            PGresult *r = PQprepare(c->pg, name, SQL[q], a->n, a->types);
            if (PQresultStatus(r) == PGRES_COMMAND_OK)
                c->prepared[q] = 1;
            else
                rc = failure(p, c, r, q);
            PQclear(r);
        }
        if (c->pg && c->prepared[q]) {
            PGresult *r = PQexecPrepared(c->pg, name, a->n, a->values, a->lengths, a->formats, 1);
            ExecStatusType s = PQresultStatus(r);
            if (s == PGRES_TUPLES_OK || s == PGRES_COMMAND_OK) {
                c->used++;
                *out = r;
                return HL_OK;
            }
            rc = failure(p, c, r, q);
            PQclear(r);
        }
        /* A connection that died while idle shows it at the first statement: when nothing ran
         * on it yet and the statement changes nothing, go again on a fresh connection. */
        if (rc != HL_EUNAVAIL || c->pg || c->used || attempt || !repeatable(q))
            return rc;
        if ((rc = reconnect(p, c)))
            return rc;
    }
}

/* Runs a statement whose result is not needed. */
static int run0(struct pg *p, struct conn *c, enum q q, const struct params *a, int64_t *n)
{
    PGresult *r;
    int rc = run(p, c, q, a, &r);
    if (rc == HL_OK && n)
        *n = changes(r);
    PQclear(r);
    return rc;
}

static int begin(struct pg *p, struct conn *c)
{
    struct params a = {0};
    return run0(p, c, Q_BEGIN, &a, NULL);
}

/* Commits when rc is 0, else rolls back; returns the outcome. */
static int finish(struct pg *p, struct conn *c, int rc)
{
    struct params a = {0};
    if (rc == HL_OK) {
        rc = run0(p, c, Q_COMMIT, &a, NULL);
        if (rc == HL_OK)
            return HL_OK;
    }
    if (c->pg)
        run0(p, c, Q_ROLLBACK, &a, NULL);
    return rc;
}

/* Queues a wake-up for every node's dispatcher, sent when the transaction commits. */
static int notify_all(struct pg *p, struct conn *c)
{
    struct params a = {0};
    p_text(&a, CHANNEL);
    p_text(&a, p->node);
    return run0(p, c, Q_NOTIFY, &a, NULL);
}

/* ---- migrations ---- */

static int exec_simple(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(r);
    int ok = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK;
    if (!ok)
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    PQclear(r);
    return ok ? HL_OK : HL_ESTORE;
}

/* Brings the schema up to date. Nodes starting together queue on the advisory lock; the first
 * migrates, the others find nothing left to do. */
static int migrate(struct pg *p, char *err, size_t errlen)
{
    char why[256] = "";
    PGconn *pg = open_conn(p->conninfo, MIGRATION_TIMEOUT_MS, why, sizeof(why));
    if (!pg) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", why);
        return HL_EUNAVAIL;
    }
    int rc = exec_simple(pg, "SELECT pg_advisory_lock(" MIGRATION_LOCK ")", why, sizeof(why));
    if (rc == HL_OK)
        rc = exec_simple(pg,
                         "CREATE TABLE IF NOT EXISTS schema_version(version BIGINT PRIMARY KEY,"
                         " applied_at BIGINT NOT NULL)",
                         why, sizeof(why));
    long long version = 0;
    if (rc == HL_OK) {
        PGresult *r = PQexec(pg, "SELECT coalesce(max(version), 0) FROM schema_version");
        if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
            char *end;
            version = strtoll(PQgetvalue(r, 0, 0), &end, 10);
        } else {
            snprintf(why, sizeof(why), "%s", PQresultErrorMessage(r));
            rc = HL_ESTORE;
        }
        PQclear(r);
    }
    if (rc == HL_OK && version > (long long)NMIGRATIONS) {
        snprintf(err, errlen, "database schema %lld is newer than this hookline (%d)", version,
                 (int)NMIGRATIONS);
        PQfinish(pg);
        return HL_ESTORE;
    }
    for (long long v = version; rc == HL_OK && v < (long long)NMIGRATIONS; v++) {
        char record[128];
        snprintf(record, sizeof(record),
                 "INSERT INTO schema_version(version, applied_at) VALUES(%lld, %lld)", v + 1,
                 (long long)hl_now_ms());
        rc = exec_simple(pg, "BEGIN", why, sizeof(why));
        if (rc == HL_OK)
            rc = exec_simple(pg, MIGRATIONS[v], why, sizeof(why));
        if (rc == HL_OK)
            rc = exec_simple(pg, record, why, sizeof(why));
        if (rc == HL_OK)
            rc = exec_simple(pg, "COMMIT", why, sizeof(why));
        if (rc) {
            char ignore[8];
            exec_simple(pg, "ROLLBACK", ignore, sizeof(ignore));
        } else {
            hl_info("postgres: migrated schema to version %lld", v + 1);
        }
    }
    if (rc) {
        size_t len = strlen(why);
        while (len && why[len - 1] == '\n')
            why[--len] = '\0';
        snprintf(err, errlen, "migration failed: %s", why);
    }
    PQfinish(pg); /* ends the session, and with it the advisory lock */
    return rc;
}

/* ---- LISTEN/NOTIFY ---- */

static int closing(struct pg *p)
{
    pthread_mutex_lock(&p->mu);
    int c = p->closing;
    pthread_mutex_unlock(&p->mu);
    return c;
}

/* Waits up to ms for close; returns 1 when closing. */
static int pause_or_close(struct pg *p, int ms)
{
    struct pollfd pfd = {.fd = p->stop_pipe[0], .events = POLLIN};
    poll(&pfd, 1, ms);
    return closing(p);
}

/* Waits until fd is ready for events, close is asked for (returns 1) or the monotonic deadline
 * passes (returns -1). Returns 0 when ready. */
static int wait_fd(struct pg *p, int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - hl_mono_ms();
        if (left <= 0)
            return -1;
        struct pollfd pfd[2] = {{.fd = fd, .events = events},
                                {.fd = p->stop_pipe[0], .events = POLLIN}};
        int n = poll(pfd, 2, (int)(left > 1000 ? 1000 : left));
        if (closing(p))
            return 1;
        if (n > 0 && pfd[0].revents)
            return 0;
    }
}

/* Connects without blocking close for longer than a poll. NULL on failure or close. */
static PGconn *listen_connect(struct pg *p, char *err, size_t errlen)
{
    const char *const keys[] = CONNECT_KEYS;
    const char *const values[] = CONNECT_VALUES(p->conninfo);
    PGconn *pg = PQconnectStartParams(keys, values, 1);
    if (!pg || PQstatus(pg) == CONNECTION_BAD) {
        conn_error(pg, err, errlen);
        PQfinish(pg);
        return NULL;
    }
    int64_t deadline = hl_mono_ms() + CONNECT_TIMEOUT_MS;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) {
            conn_error(pg, err, errlen);
            PQfinish(pg);
            return NULL;
        }
        int w = wait_fd(p, PQsocket(pg), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, deadline);
        if (w) {
            snprintf(err, errlen, "%s", w > 0 ? "closing" : "connect timeout");
            PQfinish(pg);
            return NULL;
        }
        st = PQconnectPoll(pg);
    }
    PQsetNoticeProcessor(pg, on_notice, NULL);
    PGresult *r = PQexec(pg, "LISTEN " CHANNEL);
    if (PQresultStatus(r) != PGRES_COMMAND_OK) {
        conn_error(pg, err, errlen);
        PQclear(r);
        PQfinish(pg);
        return NULL;
    }
    PQclear(r);
    return pg;
}

/* The listener thread: LISTEN on a connection of its own and wake the dispatcher on every
 * other node's commit; reconnect with backoff when the server goes away. */
static void *listen_main(void *arg)
{
    struct pg *p = arg;
    int backoff = LISTEN_BACKOFF_MIN_MS;
    int lost = 0;
    while (!closing(p)) {
        char err[256] = "";
        PGconn *pg = listen_connect(p, err, sizeof(err));
        if (!pg) {
            if (!lost && !closing(p))
                hl_warn("postgres: listener: %s; retrying", err);
            lost = 1;
            if (pause_or_close(p, backoff))
                break;
            backoff = backoff * 2 > LISTEN_BACKOFF_MAX_MS ? LISTEN_BACKOFF_MAX_MS : backoff * 2;
            continue;
        }
        if (lost)
            hl_info("postgres: listener connected again");
        lost = 0;
        backoff = LISTEN_BACKOFF_MIN_MS;
        /* Commits made while nobody listened sent no wake-up that reached us. */
        hl_store_notify(&p->base);
        for (;;) {
            struct pollfd pfd[2] = {{.fd = PQsocket(pg), .events = POLLIN},
                                    {.fd = p->stop_pipe[0], .events = POLLIN}};
            poll(pfd, 2, 1000);
            if (closing(p))
                break;
            if (!pfd[0].revents)
                continue;
            if (!PQconsumeInput(pg) || PQstatus(pg) != CONNECTION_OK) {
                conn_error(pg, err, sizeof(err));
                hl_warn("postgres: listener: connection lost: %s", err);
                lost = 1;
                break;
            }
            int wake = 0;
            PGnotify *n;
            while ((n = PQnotifies(pg))) {
                if (!n->extra || strcmp(n->extra, p->node) != 0)
                    wake = 1;
                PQfreemem(n);
            }
            if (wake)
                hl_store_notify(&p->base);
        }
        PQfinish(pg);
    }
    return NULL;
}

/* ---- apps and keys ---- */

static void read_app(const PGresult *r, int row, struct hl_app *a)
{
    a->id = col_i64(r, row, 0);
    col_copy(r, row, 1, a->uid, sizeof(a->uid));
    col_copy(r, row, 2, a->name, sizeof(a->name));
    a->created_at = col_i64(r, row, 3);
}

static int pg_app_create(struct hl_store *base, const char *uid, const char *name,
                         struct hl_app *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int64_t now = hl_now_ms();
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_text(&a, uid);
    p_text(&a, name);
    p_i64(&a, now);
    PGresult *r;
    rc = run(p, c, Q_APP_INSERT, &a, &r);
    if (rc == HL_OK && out) {
        out->id = PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
        snprintf(out->uid, sizeof(out->uid), "%s", uid);
        snprintf(out->name, sizeof(out->name), "%s", name);
        out->created_at = now;
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static int pg_app_get(struct hl_store *base, const char *uid, struct hl_app *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_text(&a, uid);
    PGresult *r;
    rc = run(p, c, Q_APP_GET, &a, &r);
    if (rc == HL_OK) {
        if (PQntuples(r) > 0)
            read_app(r, 0, out);
        else
            rc = HL_ENOTFOUND;
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static int pg_app_list(struct hl_store *base, struct hl_app **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    PGresult *r;
    rc = run(p, c, Q_APP_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    struct hl_app *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    if (!arr) {
        PQclear(r);
        return HL_ENOMEM;
    }
    for (int i = 0; i < rows; i++)
        read_app(r, i, &arr[i]);
    PQclear(r);
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

static int pg_key_create(struct hl_store *base, int64_t app_id, const char *uid,
                         const uint8_t hash[32], const char *prefix)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_text(&a, uid);
    p_i64(&a, app_id);
    p_bytea(&a, hash, 32);
    p_text(&a, prefix);
    p_i64(&a, hl_now_ms());
    rc = run0(p, c, Q_KEY_INSERT, &a, NULL);
    release(p, c);
    return rc;
}

static int pg_key_lookup(struct hl_store *base, const uint8_t hash[32], struct hl_app *app)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_bytea(&a, hash, 32);
    PGresult *r;
    rc = run(p, c, Q_KEY_LOOKUP, &a, &r);
    if (rc == HL_OK) {
        rc = HL_ENOTFOUND;
        /* The index found the row; the final word is a constant-time comparison. */
        if (PQntuples(r) > 0 && PQgetlength(r, 0, 4) == 32 &&
            CRYPTO_memcmp(PQgetvalue(r, 0, 4), hash, 32) == 0) {
            read_app(r, 0, app);
            rc = HL_OK;
        }
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static int pg_key_revoke(struct hl_store *base, const char *uid)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_text(&a, uid);
    p_i64(&a, hl_now_ms());
    int64_t n = 0;
    rc = run0(p, c, Q_KEY_REVOKE, &a, &n);
    if (rc == HL_OK && n == 0)
        rc = HL_ENOTFOUND;
    release(p, c);
    return rc;
}

static int pg_key_list(struct hl_store *base, int64_t app_id, struct hl_api_key **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    PGresult *r;
    rc = run(p, c, Q_KEY_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r);
    struct hl_api_key *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    if (!arr) {
        PQclear(r);
        return HL_ENOMEM;
    }
    for (int i = 0; i < rows; i++) {
        struct hl_api_key *k = &arr[i];
        col_copy(r, i, 0, k->uid, sizeof(k->uid));
        k->app_id = col_i64(r, i, 1);
        col_copy(r, i, 2, k->app_uid, sizeof(k->app_uid));
        col_copy(r, i, 3, k->prefix, sizeof(k->prefix));
        k->created_at = col_i64(r, i, 4);
        k->revoked_at = col_i64(r, i, 5);
    }
    PQclear(r);
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

/* ---- webhooks ---- */

static int read_webhook(const PGresult *r, int row, struct hl_webhook *w)
{
    memset(w, 0, sizeof(*w));
    w->id = col_i64(r, row, 0);
    col_copy(r, row, 1, w->uid, sizeof(w->uid));
    w->app_id = col_i64(r, row, 2);
    w->url = col_dup(r, row, 3, NULL);
    w->description = col_dup(r, row, 4, NULL);
    w->entities = (unsigned)col_i64(r, row, 5);
    w->event_types = (unsigned)col_i64(r, row, 6);
    w->active = (int)col_i64(r, row, 7);
    col_copy(r, row, 8, w->secret, sizeof(w->secret));
    col_copy(r, row, 9, w->prev_secret, sizeof(w->prev_secret));
    w->prev_secret_until = col_i64(r, row, 10);
    w->created_at = col_i64(r, row, 11);
    w->updated_at = col_i64(r, row, 12);
    w->last_triggered_at = col_i64(r, row, 13);
    w->last_success_at = col_i64(r, row, 14);
    w->last_failure_at = col_i64(r, row, 15);
    w->failing_since = col_i64(r, row, 16);
    w->disabled_at = col_i64(r, row, 17);
    w->disabled_reason = col_dup(r, row, 18, NULL);
    if (!w->url || (!PQgetisnull(r, row, 4) && !w->description) ||
        (!PQgetisnull(r, row, 18) && !w->disabled_reason)) {
        hl_webhook_clear(w);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int pg_webhook_create(struct hl_store *base, struct hl_webhook *w)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_text(&a, w->uid);
    p_i64(&a, w->app_id);
    p_text(&a, w->url);
    p_text(&a, w->description);
    p_i64(&a, (int64_t)w->entities);
    p_i64(&a, (int64_t)w->event_types);
    p_i64(&a, w->active ? 1 : 0);
    p_text(&a, w->secret);
    p_i64(&a, w->created_at);
    PGresult *r;
    rc = run(p, c, Q_WH_INSERT, &a, &r);
    if (rc == HL_OK && PQntuples(r) == 1)
        w->id = col_i64(r, 0, 0);
    PQclear(r);
    release(p, c);
    return rc;
}

/* Reads one webhook by app and uid on c (locking its row when q is Q_WH_GET_LOCKED). */
static int webhook_get_on(struct pg *p, struct conn *c, enum q q, int64_t app_id, const char *uid,
                          struct hl_webhook *out)
{
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, uid);
    PGresult *r;
    int rc = run(p, c, q, &a, &r);
    if (rc == HL_OK)
        rc = PQntuples(r) > 0 ? read_webhook(r, 0, out) : HL_ENOTFOUND;
    PQclear(r);
    return rc;
}

static int pg_webhook_get(struct hl_store *base, int64_t app_id, const char *uid,
                          struct hl_webhook *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    rc = webhook_get_on(p, c, Q_WH_GET, app_id, uid, out);
    release(p, c);
    return rc;
}

static int pg_webhook_list(struct hl_store *base, int64_t app_id, int64_t after_id, size_t limit,
                           struct hl_webhook **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_i64(&a, after_id);
    p_i64(&a, (int64_t)limit);
    PGresult *r;
    rc = run(p, c, Q_WH_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_webhook *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++)
        if ((rc = read_webhook(r, len, &arr[len])))
            break;
    PQclear(r);
    if (rc) {
        for (int i = 0; i < len; i++)
            hl_webhook_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

static int pg_webhook_update(struct hl_store *base, int64_t app_id, const char *uid,
                             const struct hl_webhook_patch *pt, int64_t now, struct hl_webhook *out)
{
    struct pg *p = PG(base);
    struct hl_webhook cur = {0}, got = {0};
    int active = 0;
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    if ((rc = begin(p, c)))
        goto out;
    /* Locked: a PATCH on another node waits, so active != cur.active is decided on fresh data. */
    rc = webhook_get_on(p, c, Q_WH_GET_LOCKED, app_id, uid, &cur);
    if (rc)
        goto done;
    active = pt->set & HL_WP_ACTIVE ? pt->active : cur.active;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, uid);
    p_text(&a, pt->set & HL_WP_URL ? pt->url : cur.url);
    p_text(&a, pt->set & HL_WP_DESCRIPTION ? pt->description : cur.description);
    p_i64(&a, (int64_t)(pt->set & HL_WP_ENTITIES ? pt->entities : cur.entities));
    p_i64(&a, (int64_t)(pt->set & HL_WP_EVENT_TYPES ? pt->event_types : cur.event_types));
    p_i64(&a, active ? 1 : 0);
    p_i64(&a, now);
    rc = run0(p, c, Q_WH_UPDATE, &a, NULL);
    if (rc == HL_OK && active != cur.active) {
        struct params b = {0};
        p_i64(&b, cur.id);
        if (active)
            p_i64(&b, now);
        rc = run0(p, c, active ? Q_WH_RESUME_DELIVERIES : Q_WH_PAUSE_DELIVERIES, &b, NULL);
    }
    if (rc == HL_OK && active)
        rc = notify_all(p, c);
    if (rc == HL_OK && out)
        rc = webhook_get_on(p, c, Q_WH_GET, app_id, uid, &got);
done:
    rc = finish(p, c, rc);
out:
    release(p, c);
    hl_webhook_clear(&cur);
    if (rc) {
        hl_webhook_clear(&got);
        return rc;
    }
    if (out)
        *out = got;
    if (active)
        hl_store_notify(base);
    return HL_OK;
}

static int pg_webhook_delete(struct hl_store *base, int64_t app_id, const char *uid, int64_t now)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    if ((rc = begin(p, c)))
        goto out;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, uid);
    p_i64(&a, now);
    int64_t n = 0;
    rc = run0(p, c, Q_WH_DELETE, &a, &n);
    if (rc == HL_OK && n == 0)
        rc = HL_ENOTFOUND;
    if (rc == HL_OK) {
        struct params b = {0};
        p_text(&b, uid);
        rc = run0(p, c, Q_WH_CANCEL_DELIVERIES, &b, NULL);
    }
    rc = finish(p, c, rc);
out:
    release(p, c);
    return rc;
}

/* ---- resources, events, the outbox ---- */

/* Reads RESOURCE_COLS starting at column c0. */
static int read_resource_at(const PGresult *r, int row, int c0, struct hl_resource *res)
{
    memset(res, 0, sizeof(*res));
    res->id = col_i64(r, row, c0);
    res->kind = (enum hl_entity)col_i64(r, row, c0 + 1);
    col_copy(r, row, c0 + 2, res->uid, sizeof(res->uid));
    res->app_id = col_i64(r, row, c0 + 3);
    col_copy(r, row, c0 + 4, res->parent_uid, sizeof(res->parent_uid));
    res->tenant = col_dup(r, row, c0 + 5, NULL);
    res->body = col_dup(r, row, c0 + 6, &res->body_len);
    res->version = col_i64(r, row, c0 + 7);
    res->created_at = col_i64(r, row, c0 + 8);
    res->updated_at = col_i64(r, row, c0 + 9);
    if (!res->tenant || !res->body) {
        hl_resource_clear(res);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int read_resource(const PGresult *r, int row, struct hl_resource *res)
{
    return read_resource_at(r, row, 0, res);
}

static int pg_resource_get(struct hl_store *base, int64_t app_id, enum hl_entity kind,
                           const char *uid, struct hl_resource *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_i64(&a, (int64_t)kind);
    p_text(&a, uid);
    PGresult *r;
    rc = run(p, c, Q_RES_GET, &a, &r);
    if (rc == HL_OK)
        rc = PQntuples(r) > 0 ? read_resource(r, 0, out) : HL_ENOTFOUND;
    PQclear(r);
    release(p, c);
    return rc;
}

static int pg_resource_list(struct hl_store *base, int64_t app_id, enum hl_entity kind,
                            const char *parent_uid, const char *tenant, int64_t after_id,
                            size_t limit, struct hl_resource **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_i64(&a, (int64_t)kind);
    p_text(&a, parent_uid);
    p_text(&a, tenant);
    p_i64(&a, after_id);
    p_i64(&a, (int64_t)limit);
    PGresult *r;
    rc = run(p, c, Q_RES_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_resource *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++)
        if ((rc = read_resource(r, len, &arr[len])))
            break;
    PQclear(r);
    if (rc) {
        for (int i = 0; i < len; i++)
            hl_resource_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

/* The ingestion side of a change: a new file's bytes queued, a finished job's passages stored, a
 * deleted file's rows gone. */
static int apply_file(struct pg *p, struct conn *c, const struct hl_change *ch)
{
    const struct hl_resource *res = ch->res;
    int rc;
    if (!res || res->kind != HL_ENT_CONTEXTFILE)
        return HL_OK;
    if (ch->op == HL_OP_CREATE && ch->file) {
        struct params a = {0};
        p_text(&a, res->uid);
        p_i64(&a, res->app_id);
        p_text(&a, ch->file->path);
        p_i64(&a, ch->file->size);
        p_text(&a, ch->file->sha256);
        p_i64(&a, res->created_at);
        return run0(p, c, Q_FILE_INSERT, &a, NULL);
    }
    if (ch->op != HL_OP_DELETE && !ch->done_file)
        return HL_OK;
    struct params a = {0};
    p_text(&a, res->uid);
    if ((rc = run0(p, c, Q_CHUNKS_DELETE, &a, NULL)))
        return rc;
    if (ch->op == HL_OP_DELETE)
        return run0(p, c, Q_FILE_DELETE, &a, NULL);
    for (size_t i = 0; i < ch->nchunks; i++) {
        struct params b = {0};
        p_text(&b, res->uid);
        p_i64(&b, ch->chunks[i].index);
        p_i64(&b, ch->chunks[i].offset);
        p_textn(&b, ch->chunks[i].text, ch->chunks[i].len);
        if ((rc = run0(p, c, Q_CHUNK_INSERT, &b, NULL)))
            return rc;
    }
    return run0(p, c, Q_FILE_DONE, &a, NULL);
}

/* Why an update or delete changed no row: HL_ECONFLICT when the resource is there at another
 * version, HL_ENOTFOUND when it is gone (store.h's contract). */
static int resource_gone_or_moved(struct pg *p, struct conn *c, const struct hl_resource *res)
{
    struct params a = {0};
    p_i64(&a, res->app_id);
    p_text(&a, res->uid);
    PGresult *r;
    int rc = run(p, c, Q_RES_EXISTS, &a, &r);
    if (rc == HL_OK)
        rc = PQntuples(r) > 0 ? HL_ECONFLICT : HL_ENOTFOUND;
    PQclear(r);
    return rc;
}

/* Writes one change inside the open transaction. */
static int apply_change(struct pg *p, struct conn *c, const struct hl_change *ch, int64_t *made)
{
    const struct hl_resource *res = ch->res;
    int rc = HL_OK;
    if (ch->op == HL_OP_CREATE) {
        struct params a = {0};
        p_text(&a, res->uid);
        p_i64(&a, res->app_id);
        p_i64(&a, (int64_t)res->kind);
        p_text(&a, res->parent_uid);
        p_text(&a, res->tenant);
        p_textn(&a, res->body, res->body_len);
        p_i64(&a, res->created_at);
        p_i64(&a, res->updated_at);
        if ((rc = run0(p, c, Q_RES_INSERT, &a, NULL)))
            return rc;
    } else if (ch->op == HL_OP_UPDATE || ch->op == HL_OP_DELETE) {
        struct params a = {0};
        p_i64(&a, res->app_id);
        p_text(&a, res->uid);
        p_i64(&a, ch->expect_version);
        if (ch->op == HL_OP_UPDATE) {
            p_text(&a, res->tenant);
            p_textn(&a, res->body, res->body_len);
            p_i64(&a, res->updated_at);
        }
        int64_t n = 0;
        rc = run0(p, c, ch->op == HL_OP_UPDATE ? Q_RES_UPDATE : Q_RES_DELETE, &a, &n);
        if (rc)
            return rc;
        if (n == 0)
            return resource_gone_or_moved(p, c, res);
    }
    if ((rc = apply_file(p, c, ch)))
        return rc;
    const struct hl_event *e = ch->ev;
    if (!e)
        return HL_OK;
    struct params a = {0};
    p_text(&a, e->uid);
    p_i64(&a, e->app_id);
    p_i64(&a, e->type);
    p_text(&a, e->tenant);
    p_text(&a, e->resource_uid);
    p_i64(&a, e->created_at);
    p_bytea(&a, e->payload, e->payload_len);
    p_i64(&a, hl_now_ms());
    if (ch->only_webhook) {
        p_i64(&a, ch->only_webhook);
    } else {
        p_i64(&a, (int64_t)hl_event_entity(e->type));
        p_i64(&a, (int64_t)1 << e->type);
    }
    p_text(&a, CHANNEL);
    p_text(&a, p->node);
    PGresult *r;
    rc = run(p, c, ch->only_webhook ? Q_EV_ONE : Q_EV_FANOUT, &a, &r);
    if (rc == HL_OK)
        *made += PQntuples(r) == 1 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    return rc;
}

static int pg_commit(struct hl_store *base, const struct hl_change *ch, size_t n,
                     const struct hl_idem *idem, int64_t *deliveries)
{
    struct pg *p = PG(base);
    int64_t made = 0;
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    if ((rc = begin(p, c)))
        goto out;
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = apply_change(p, c, &ch[i], &made);
    if (rc == HL_OK && idem && n > 0) {
        int64_t now = hl_now_ms(), changed = 0;
        struct params a = {0};
        p_i64(&a, ch[0].ev ? ch[0].ev->app_id : ch[0].res->app_id);
        p_text(&a, idem->key);
        p_bytea(&a, idem->request_hash, 32);
        p_i64(&a, idem->status);
        p_text(&a, idem->response);
        p_i64(&a, now);
        p_i64(&a, now - 24 * 3600 * 1000LL);
        rc = run0(p, c, Q_IDEM_INSERT, &a, &changed);
        if (rc == HL_OK && changed == 0)
            rc = HL_ECONFLICT; /* another request (maybe on another node) took the key */
    }
    rc = finish(p, c, rc); /* the event statements queued the NOTIFY when they made deliveries */
out:
    release(p, c);
    if (rc == HL_OK) {
        if (deliveries)
            *deliveries += made;
        if (made)
            hl_store_notify(base);
    }
    return rc;
}

static int pg_idem_get(struct hl_store *base, int64_t app_id, const char *key, int64_t not_before,
                       struct hl_idem_hit *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, key);
    p_i64(&a, not_before);
    PGresult *r;
    rc = run(p, c, Q_IDEM_GET, &a, &r);
    if (rc == HL_OK) {
        if (PQntuples(r) > 0) {
            memset(out, 0, sizeof(*out));
            if (PQgetlength(r, 0, 0) == 32)
                memcpy(out->request_hash, PQgetvalue(r, 0, 0), 32);
            out->status = (int)col_i64(r, 0, 1);
            out->response = col_dup(r, 0, 2, NULL);
            rc = out->response ? HL_OK : HL_ENOMEM;
        } else {
            rc = HL_ENOTFOUND;
        }
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static int read_event(const PGresult *r, int row, struct hl_event *e)
{
    memset(e, 0, sizeof(*e));
    e->id = col_i64(r, row, 0);
    col_copy(r, row, 1, e->uid, sizeof(e->uid));
    e->type = (int)col_i64(r, row, 2);
    e->app_id = col_i64(r, row, 3);
    e->tenant = col_dup(r, row, 4, NULL);
    col_copy(r, row, 5, e->resource_uid, sizeof(e->resource_uid));
    e->created_at = col_i64(r, row, 6);
    e->payload = col_dup(r, row, 7, &e->payload_len);
    if (!e->tenant || !e->payload) {
        hl_event_clear(e);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int pg_event_list(struct hl_store *base, int64_t app_id, const struct hl_event_filter *f,
                         int64_t after_id, size_t limit, struct hl_event **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_i64(&a, f->type);
    p_text(&a, f->tenant);
    p_i64(&a, f->since);
    p_i64(&a, f->until);
    p_i64(&a, after_id);
    p_i64(&a, (int64_t)limit);
    PGresult *r;
    rc = run(p, c, Q_EV_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_event *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++)
        if ((rc = read_event(r, len, &arr[len])))
            break;
    PQclear(r);
    if (rc) {
        for (int i = 0; i < len; i++)
            hl_event_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

/* ---- the dispatcher's side ---- */

static int read_job(const PGresult *r, int row, struct hl_job *j)
{
    memset(j, 0, sizeof(*j));
    j->delivery_id = col_i64(r, row, 0);
    j->webhook_id = col_i64(r, row, 1);
    j->event_id = col_i64(r, row, 2);
    col_copy(r, row, 3, j->event_uid, sizeof(j->event_uid));
    j->event_ts = col_i64(r, row, 4);
    j->attempts = (int)col_i64(r, row, 5);
    j->created_at = col_i64(r, row, 6);
    j->url = col_dup(r, row, 7, NULL);
    col_copy(r, row, 8, j->secret, sizeof(j->secret));
    col_copy(r, row, 9, j->prev_secret, sizeof(j->prev_secret));
    j->payload = col_dup(r, row, 10, &j->payload_len);
    if (!j->url || !j->payload) {
        hl_job_clear(j);
        return HL_ENOMEM;
    }
    return HL_OK;
}

static int pg_claim(struct hl_store *base, int64_t now, int64_t lease_until, size_t max,
                    const int64_t *skip, size_t nskip, struct hl_job **out, size_t *n)
{
    struct pg *p = PG(base);
    struct hl_buf skiplist;
    hl_buf_init(&skiplist, 1 << 20);
    int rc = hl_buf_putc(&skiplist, '{');
    for (size_t i = 0; i < nskip && rc == HL_OK; i++)
        rc = hl_buf_printf(&skiplist, "%s%lld", i ? "," : "", (long long)skip[i]);
    if (rc == HL_OK)
        rc = hl_buf_putc(&skiplist, '}');
    if (rc) {
        hl_buf_free(&skiplist);
        return rc;
    }
    struct conn *c;
    rc = acquire_dispatcher(p, &c);
    if (rc) {
        hl_buf_free(&skiplist);
        return rc;
    }
    struct params a = {0};
    p_i64(&a, now);
    p_i64(&a, lease_until);
    p_int_array(&a, skiplist.p);
    p_i64(&a, (int64_t)max);
    PGresult *r;
    rc = run(p, c, Q_CLAIM, &a, &r); /* one statement: its own transaction */
    release(p, c);
    hl_buf_free(&skiplist);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_job *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++)
        if ((rc = read_job(r, len, &arr[len])))
            break;
    PQclear(r);
    if (rc) {
        /* The leases taken lapse and the deliveries are claimed again. */
        for (int i = 0; i < len; i++)
            hl_job_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

/* An attempt's place in the batch, sorted by a key and then by its position. */
struct order {
    int64_t key;
    size_t idx;
};

static int by_key(const void *x, const void *y)
{
    const struct order *a = x, *b = y;
    if (a->key != b->key)
        return a->key < b->key ? -1 : 1;
    return a->idx < b->idx ? -1 : a->idx > b->idx;
}

/* The webhook's last*At fields and failure run for one attempt; disables the webhook as the
 * attempt says (on 410, or after failing long enough). Sets *disabled when this attempt disabled
 * it. */
static int record_webhook(struct pg *p, struct conn *c, const struct hl_attempt *at, int64_t now,
                          int *disabled)
{
    struct params a = {0};
    p_i64(&a, at->webhook_id);
    p_i64(&a, at->started_at);
    int rc = run0(p, c, at->outcome == HL_OUT_SUCCESS ? Q_WH_SUCCESS : Q_WH_FAILURE, &a, NULL);
    if (rc || at->outcome == HL_OUT_SUCCESS)
        return rc;
    if (at->outcome != HL_OUT_GONE && !at->disable_failing_since)
        return HL_OK;
    struct params b = {0};
    p_i64(&b, at->webhook_id);
    p_i64(&b, now);
    p_text(&b, at->disable_reason);
    if (at->outcome != HL_OUT_GONE)
        p_i64(&b, at->disable_failing_since);
    int64_t n = 0;
    rc = run0(p, c, at->outcome == HL_OUT_GONE ? Q_WH_GONE : Q_WH_AUTODISABLE, &b, &n);
    if (rc == HL_OK && n)
        *disabled = 1;
    return rc;
}

/* The attempt row and the delivery's new state. */
static int record_delivery(struct pg *p, struct conn *c, const struct hl_attempt *at, int64_t now)
{
    struct params a = {0};
    p_i64(&a, at->delivery_id);
    p_i64(&a, at->started_at);
    p_i64(&a, at->duration_us);
    p_i64(&a, at->status_code);
    p_text(&a, at->error);
    p_bytea(&a, at->response, at->response ? at->response_len : 0);
    int rc = run0(p, c, Q_ATTEMPT_INSERT, &a, NULL);
    if (rc)
        return rc;
    enum q dq = at->outcome == HL_OUT_SUCCESS ? Q_DELIV_SUCCESS
                : at->outcome == HL_OUT_RETRY ? Q_DELIV_RETRY
                                              : Q_DELIV_FAILED;
    struct params b = {0};
    p_i64(&b, at->delivery_id);
    p_i64(&b, at->status_code);
    if (dq == Q_DELIV_SUCCESS) {
        p_i64(&b, now);
    } else {
        p_text(&b, at->error);
        if (dq == Q_DELIV_RETRY)
            p_i64(&b, at->next_attempt_at);
    }
    return run0(p, c, dq, &b, NULL);
}

static int pg_record(struct hl_store *base, const struct hl_attempt *at, size_t n)
{
    struct pg *p = PG(base);
    if (n == 0)
        return HL_OK;
    int64_t now = hl_now_ms();
    struct order *wh = calloc(n, sizeof(*wh));
    struct order *dl = calloc(n, sizeof(*dl));
    int *disabled = calloc(n, sizeof(*disabled));
    struct conn *c = NULL;
    int rc = HL_ENOMEM;
    if (!wh || !dl || !disabled)
        goto out;
    for (size_t i = 0; i < n; i++) {
        wh[i] = (struct order){at[i].webhook_id, i};
        dl[i] = (struct order){at[i].delivery_id, i};
    }
    /* Webhooks, then deliveries, each in id order: the lock order of every transaction here. */
    qsort(wh, n, sizeof(*wh), by_key);
    qsort(dl, n, sizeof(*dl), by_key);
    if ((rc = acquire_dispatcher(p, &c)))
        goto out;
    if ((rc = begin(p, c)))
        goto out;
    struct params none = {0};
    rc = run0(p, c, Q_SYNC_ON, &none, NULL);
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = record_webhook(p, c, &at[wh[i].idx], now, &disabled[wh[i].idx]);
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = record_delivery(p, c, &at[dl[i].idx], now);
    /* A disabled webhook's pending deliveries wait, parked, until it is enabled again. */
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        if (!disabled[wh[i].idx])
            continue;
        struct params a = {0};
        p_i64(&a, at[wh[i].idx].webhook_id);
        rc = run0(p, c, Q_WH_PAUSE_DELIVERIES, &a, NULL);
    }
    rc = finish(p, c, rc);
out:
    if (c)
        release(p, c);
    free(wh);
    free(dl);
    free(disabled);
    return rc;
}

static int pg_next_due(struct hl_store *base, int64_t now, int64_t *at)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire_dispatcher(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, now);
    PGresult *r;
    rc = run(p, c, Q_NEXT_DUE, &a, &r);
    if (rc == HL_OK)
        *at = PQntuples(r) > 0 ? col_i64(r, 0, 0) : 0;
    PQclear(r);
    release(p, c);
    return rc;
}

/* Nothing to do: with several nodes on one database, the leases held (on deliveries and on
 * files being ingested) are other nodes' live work. A node that restarts finds its own old
 * leases lapsing after their lease time, and claims that work again then (next_due reports when
 * for deliveries). */
static int pg_release_leases(struct hl_store *base)
{
    (void)base;
    return HL_OK;
}

/* ---- operating deliveries ---- */

static int read_delivery(const PGresult *r, int row, struct hl_delivery *d)
{
    memset(d, 0, sizeof(*d));
    d->id = col_i64(r, row, 0);
    d->webhook_id = col_i64(r, row, 1);
    col_copy(r, row, 2, d->webhook_uid, sizeof(d->webhook_uid));
    col_copy(r, row, 3, d->event_uid, sizeof(d->event_uid));
    d->event_type = (int)col_i64(r, row, 4);
    d->status = (enum hl_delivery_status)col_i64(r, row, 5);
    d->attempts = (int)col_i64(r, row, 6);
    d->last_status = (int)col_i64(r, row, 7);
    d->last_error = col_dup(r, row, 8, NULL);
    d->next_attempt_at = col_i64(r, row, 9);
    d->created_at = col_i64(r, row, 10);
    d->delivered_at = col_i64(r, row, 11);
    if (!PQgetisnull(r, row, 8) && !d->last_error)
        return HL_ENOMEM;
    return HL_OK;
}

/* Every row of a delivery query, as one malloc'd array. */
static int read_deliveries(const PGresult *r, struct hl_delivery **out, size_t *n)
{
    int rows = PQntuples(r), len = 0;
    struct hl_delivery *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    int rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++)
        if ((rc = read_delivery(r, len, &arr[len])))
            break;
    if (rc) {
        for (int i = 0; i <= len && i < rows; i++)
            hl_delivery_clear(&arr[i]);
        free(arr);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

static int pg_event_get(struct hl_store *base, int64_t app_id, const char *uid, struct hl_event *ev,
                        struct hl_delivery **dl, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, uid);
    PGresult *r;
    rc = run(p, c, Q_EV_GET, &a, &r);
    if (rc == HL_OK)
        rc = PQntuples(r) > 0 ? read_event(r, 0, ev) : HL_ENOTFOUND;
    PQclear(r);
    if (rc == HL_OK && dl) {
        struct params b = {0};
        p_i64(&b, ev->id);
        rc = run(p, c, Q_DL_BY_EVENT, &b, &r);
        if (rc == HL_OK)
            rc = read_deliveries(r, dl, n);
        PQclear(r);
        if (rc)
            hl_event_clear(ev);
    }
    release(p, c);
    return rc;
}

static int pg_delivery_list(struct hl_store *base, int64_t app_id, int64_t webhook_id,
                            const struct hl_delivery_filter *f, int64_t after_id, size_t limit,
                            struct hl_delivery **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, webhook_id);
    p_i64(&a, app_id);
    p_i64(&a, f->status);
    p_i64(&a, f->type);
    p_i64(&a, f->since);
    p_i64(&a, f->until);
    p_i64(&a, after_id);
    p_i64(&a, (int64_t)limit);
    PGresult *r;
    rc = run(p, c, Q_DL_LIST, &a, &r);
    release(p, c);
    if (rc == HL_OK)
        rc = read_deliveries(r, out, n);
    PQclear(r);
    return rc;
}

/* A delivery's attempts, oldest first. */
static int read_attempts(struct pg *p, struct conn *c, int64_t delivery_id,
                         struct hl_attempt_rec **out, size_t *n)
{
    struct params a = {0};
    p_i64(&a, delivery_id);
    PGresult *r;
    int rc = run(p, c, Q_ATT_LIST, &a, &r);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_attempt_rec *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++) {
        struct hl_attempt_rec *at = &arr[len];
        at->started_at = col_i64(r, len, 0);
        at->duration_us = col_i64(r, len, 1);
        at->status_code = (int)col_i64(r, len, 2);
        at->error = col_dup(r, len, 3, NULL);
        at->response = col_dup(r, len, 4, &at->response_len);
        if ((!PQgetisnull(r, len, 3) && !at->error) || (!PQgetisnull(r, len, 4) && !at->response))
            rc = HL_ENOMEM;
    }
    PQclear(r);
    if (rc) {
        hl_attempts_free(arr, (size_t)len);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

static int pg_delivery_get(struct hl_store *base, int64_t app_id, int64_t id,
                           struct hl_delivery *out, struct hl_attempt_rec **attempts, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, id);
    p_i64(&a, app_id);
    PGresult *r;
    rc = run(p, c, Q_DL_GET, &a, &r);
    if (rc == HL_OK)
        rc = PQntuples(r) > 0 ? read_delivery(r, 0, out) : HL_ENOTFOUND;
    PQclear(r);
    if (rc == HL_OK && attempts) {
        rc = read_attempts(p, c, id, attempts, n);
        if (rc)
            hl_delivery_clear(out);
    }
    release(p, c);
    return rc;
}

static int pg_delivery_resend(struct hl_store *base, int64_t app_id, int64_t id, int64_t now)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    if ((rc = begin(p, c)))
        goto out;
    struct params a = {0};
    p_i64(&a, id);
    p_i64(&a, app_id);
    p_i64(&a, now);
    int64_t changed = 0;
    rc = run0(p, c, Q_DL_RESEND, &a, &changed);
    if (rc == HL_OK && changed == 0) {
        /* Either not this app's (or its webhook is deleted), or an attempt is in flight on some
         * node. */
        struct params b = {0};
        p_i64(&b, id);
        p_i64(&b, app_id);
        PGresult *r;
        rc = run(p, c, Q_DL_GET, &b, &r);
        if (rc == HL_OK)
            rc = PQntuples(r) > 0 ? HL_ECONFLICT : HL_ENOTFOUND;
        PQclear(r);
    }
    if (rc == HL_OK)
        rc = notify_all(p, c);
    rc = finish(p, c, rc);
out:
    release(p, c);
    if (rc == HL_OK)
        hl_store_notify(base);
    return rc;
}

static int pg_recover(struct hl_store *base, int64_t webhook_id, int64_t since, int64_t until,
                      int64_t now, int64_t *queued)
{
    struct pg *p = PG(base);
    *queued = 0;
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    int64_t n = 0;
    if ((rc = begin(p, c)))
        goto out;
    struct params a = {0};
    p_i64(&a, webhook_id);
    p_i64(&a, since);
    p_i64(&a, until);
    p_i64(&a, now);
    rc = run0(p, c, Q_RECOVER, &a, &n);
    if (rc == HL_OK && n)
        rc = notify_all(p, c);
    rc = finish(p, c, rc);
out:
    release(p, c);
    if (rc == HL_OK) {
        *queued = n;
        if (n)
            hl_store_notify(base);
    }
    return rc;
}

static int pg_rotate_secret(struct hl_store *base, int64_t app_id, const char *uid,
                            const char *secret, int64_t prev_until, int64_t now)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, uid);
    p_text(&a, secret);
    p_i64(&a, prev_until);
    p_i64(&a, now);
    int64_t n = 0;
    rc = run0(p, c, Q_ROTATE, &a, &n);
    if (rc == HL_OK && n == 0)
        rc = HL_ENOTFOUND;
    release(p, c);
    return rc;
}

static int pg_webhook_stats(struct hl_store *base, int64_t webhook_id, struct hl_webhook_stats *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, webhook_id);
    PGresult *r;
    rc = run(p, c, Q_WH_STATS, &a, &r);
    if (rc == HL_OK && PQntuples(r) == 1) {
        out->pending = col_i64(r, 0, 0);
        out->succeeded = col_i64(r, 0, 1);
        out->failed = col_i64(r, 0, 2);
    } else if (rc == HL_OK) {
        rc = HL_ESTORE;
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static int pg_queue_stats(struct hl_store *base, struct hl_queue_stats *out)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    PGresult *r;
    rc = run(p, c, Q_QUEUE_STATS, &a, &r);
    if (rc == HL_OK && PQntuples(r) == 1) {
        out->pending = col_i64(r, 0, 0);
        out->oldest_pending_at = col_i64(r, 0, 1);
    } else if (rc == HL_OK) {
        rc = HL_ESTORE;
    }
    PQclear(r);
    release(p, c);
    return rc;
}

/* ---- context-file ingestion ---- */

static int pg_ingest_claim(struct hl_store *base, int64_t now, int64_t lease_until,
                           struct hl_ingest_job *out)
{
    struct pg *p = PG(base);
    memset(out, 0, sizeof(*out));
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, now);
    p_i64(&a, lease_until);
    PGresult *r;
    rc = run(p, c, Q_INGEST_CLAIM, &a, &r); /* one statement: its own transaction */
    release(p, c);
    if (rc)
        return rc;
    if (PQntuples(r) == 0) {
        PQclear(r);
        return HL_ENOTFOUND;
    }
    col_copy(r, 0, 0, out->file_uid, sizeof(out->file_uid));
    out->app_id = col_i64(r, 0, 1);
    col_copy(r, 0, 2, out->app_uid, sizeof(out->app_uid));
    out->path = col_dup(r, 0, 3, NULL);
    rc = out->path ? read_resource_at(r, 0, 4, &out->res) : HL_ENOMEM;
    PQclear(r);
    if (rc)
        hl_ingest_job_clear(out); /* the lease lapses and the file is claimed again */
    return rc;
}

static int pg_chunk_list(struct hl_store *base, int64_t app_id, const char *file_uid, int64_t after,
                         size_t limit, struct hl_text_chunk **out, size_t *n)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, file_uid);
    p_i64(&a, after);
    p_i64(&a, (int64_t)limit);
    PGresult *r;
    rc = run(p, c, Q_CHUNK_LIST, &a, &r);
    release(p, c);
    if (rc)
        return rc;
    int rows = PQntuples(r), len = 0;
    struct hl_text_chunk *arr = calloc(rows ? (size_t)rows : 1, sizeof(*arr));
    rc = arr ? HL_OK : HL_ENOMEM;
    for (; rc == HL_OK && len < rows; len++) {
        arr[len].index = col_i64(r, len, 0);
        arr[len].offset = col_i64(r, len, 1);
        arr[len].text = col_dup(r, len, 2, &arr[len].len);
        if (!arr[len].text)
            rc = HL_ENOMEM;
    }
    PQclear(r);
    if (rc) {
        hl_chunks_list_free(arr, (size_t)len);
        return rc;
    }
    *out = arr;
    *n = (size_t)rows;
    return HL_OK;
}

static int pg_file_path(struct hl_store *base, int64_t app_id, const char *file_uid, char **path)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = acquire(p, &c);
    if (rc)
        return rc;
    struct params a = {0};
    p_i64(&a, app_id);
    p_text(&a, file_uid);
    PGresult *r;
    rc = run(p, c, Q_FILE_PATH, &a, &r);
    if (rc == HL_OK) {
        if (PQntuples(r) > 0) {
            *path = col_dup(r, 0, 0, NULL);
            rc = *path ? HL_OK : HL_ENOMEM;
        } else {
            rc = HL_ENOTFOUND;
        }
    }
    PQclear(r);
    release(p, c);
    return rc;
}

static void pg_close(struct hl_store *base)
{
    struct pg *p = PG(base);
    pthread_mutex_lock(&p->mu);
    p->closing = 1;
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
    if (p->listener_started) {
        ssize_t w;
        do
            w = write(p->stop_pipe[1], "x", 1);
        while (w < 0 && errno == EINTR);
        pthread_join(p->listener, NULL);
    }
    for (int i = 0; i < POOL_SIZE; i++)
        PQfinish(p->conns[i].pg);
    PQfinish(p->disp.pg);
    for (int i = 0; i < 2; i++)
        if (p->stop_pipe[i] >= 0)
            close(p->stop_pipe[i]);
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->disp_mu);
    pthread_mutex_destroy(&p->mu);
    hl_store_base_destroy(&p->base);
    free(p->conninfo);
    free(p);
}

static const struct hl_store_ops POSTGRES_OPS = {
    .close = pg_close,
    .app_create = pg_app_create,
    .app_get = pg_app_get,
    .app_list = pg_app_list,
    .key_create = pg_key_create,
    .key_lookup = pg_key_lookup,
    .key_revoke = pg_key_revoke,
    .key_list = pg_key_list,
    .webhook_create = pg_webhook_create,
    .webhook_get = pg_webhook_get,
    .webhook_list = pg_webhook_list,
    .webhook_update = pg_webhook_update,
    .webhook_delete = pg_webhook_delete,
    .resource_get = pg_resource_get,
    .resource_list = pg_resource_list,
    .commit = pg_commit,
    .idem_get = pg_idem_get,
    .event_list = pg_event_list,
    .claim = pg_claim,
    .record = pg_record,
    .next_due = pg_next_due,
    .release_leases = pg_release_leases,
    .event_get = pg_event_get,
    .delivery_list = pg_delivery_list,
    .delivery_get = pg_delivery_get,
    .delivery_resend = pg_delivery_resend,
    .recover = pg_recover,
    .rotate_secret = pg_rotate_secret,
    .webhook_stats = pg_webhook_stats,
    .queue_stats = pg_queue_stats,
    .ingest_claim = pg_ingest_claim,
    .chunk_list = pg_chunk_list,
    .file_paths = pg_file_path,
};

int hl_postgres_open(const char *conninfo, struct hl_store **out, char *err, size_t errlen)
{
    *out = NULL;
    struct pg *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    hl_store_base_init(&p->base, &POSTGRES_OPS);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->disp_mu, NULL);
    p->disp.async = 1;
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&p->cv, &attr);
    pthread_condattr_destroy(&attr);
    p->stop_pipe[0] = p->stop_pipe[1] = -1;
    p->healthy = 1;
    int rc = HL_ENOMEM;
    p->conninfo = strdup(conninfo);
    if (!p->conninfo) {
        snprintf(err, errlen, "out of memory");
        goto bad;
    }
    if (pipe2(p->stop_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
        hl_id_new("node_", 12, p->node, sizeof(p->node))) {
        snprintf(err, errlen, "cannot set up the PostgreSQL store");
        rc = HL_EIO;
        goto bad;
    }
    if ((rc = migrate(p, err, errlen)))
        goto bad;
    /* One connection now, so that a wrong URL or a server that is away shows at start. */
    char why[256];
    p->conns[0].pg = open_conn(p->conninfo, STATEMENT_TIMEOUT_MS, why, sizeof(why));
    if (!p->conns[0].pg) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", why);
        rc = HL_EUNAVAIL;
        goto bad;
    }
    if (pthread_create(&p->listener, NULL, listen_main, p) != 0) {
        snprintf(err, errlen, "cannot start the PostgreSQL listener");
        rc = HL_ENOMEM;
        goto bad;
    }
    p->listener_started = 1;
    *out = &p->base;
    return HL_OK;
bad:
    pg_close(&p->base);
    return rc;
}
