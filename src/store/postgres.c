/* PostgreSQL backend: several hookline nodes on one database.
 *
 * Same tables and the same semantics as sqlite.c, with integers as BIGINT and blobs as BYTEA.
 * Invariants worth knowing before changing anything here:
 *
 * - Operations. What is the same as on SQLite is written once in ops.c over this file's
 *   sessions (sess_open/sess_run/sess_close: a connection held for one operation, perhaps in a
 *   transaction); this file keeps the SQL text, the connections and what really differs: the
 *   commit's event statement, claims, records, the ingestion claim.
 * - Connections. A pool of POOL_SIZE connections for the API and the ingest worker, each used by
 *   one thread at a time, and one more of the dispatcher's own, so that deliveries never queue
 *   behind HTTP requests for a connection. Opened lazily; statements prepared once per connection
 *   on first use. The dispatcher's connection commits without waiting for the WAL flush
 *   (synchronous_commit off): a lease lost in a server crash only lets a delivery be claimed
 *   again, which at-least-once allows; so does a record of successes only (the deliveries stay
 *   pending under a lapsing lease and go once more). Its records with any failure in them turn
 *   the flush back on. The API's commits always wait for it. Parameters
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
 *   takes a dead node's work over without being woken. A claim of new deliveries
 *   (hl_claim.fresh) takes the ids this node's commits made (their inserts return them), in
 *   the order made, without visiting any webhook; an id cursor could not be trusted, since
 *   sequence ids are handed out at insert, not at commit. Records go as one statement per
 *   batch (Q_RECORD: arrays of the attempts) plus one webhook update per webhook and run.
 * - Wake-ups. A transaction that makes deliveries runs pg_notify(CHANNEL, node id), delivered at
 *   COMMIT, only when this node will not claim them itself (fresh_local: its dispatcher is not
 *   claiming, or is FRESH_HELP behind); a listener thread on its own connection LISTENs and
 *   wakes the local dispatcher (its own node's notifications are skipped: commit already woke
 *   it). It reconnects by itself with backoff and wakes the dispatcher once it is back, for
 *   whatever it missed. A node that dies between its commit and its claim leaves the deliveries
 *   unleased and due: the other nodes' sweeps (--sweep) claim them.
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
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/ids.h"
#include "common/log.h"
#include "common/thread.h"
#include "store/sql.h"

#define POOL_SIZE 16
#define MAX_PARAMS 12
#define CHANNEL "hookline_deliveries"
/* "hookline" in ASCII: the advisory lock held while migrating. */
#define MIGRATION_LOCK "7525356009530420837"
/* "hl_prune": the advisory lock a pruning transaction holds, so that one node prunes at a time. */
#define PRUNE_LOCK "7524494013990530661"
/* "hl_fold": the advisory lock of the fold of the counters, so that one node folds at a time. */
#define FOLD_LOCK "29392554574179428"
#define CONNECT_TIMEOUT_MS 5000
#define STATEMENT_TIMEOUT_MS 15000
#define IDLE_TX_TIMEOUT_MS 60000
#define MIGRATION_TIMEOUT_MS 300000
/* How long a migration waits for a lock a running node holds (a backfill locks deliveries against
 * writes; an ALTER TABLE takes it whole) before it gives up: while it waits, every writer queues
 * behind it, so on a busy database the upgrade fails fast and says so instead of stalling the
 * service (MIGRATION_BUSY). */
#define MIGRATION_LOCK_WAIT "5s"
#define MIGRATION_BUSY                                                                             \
    "it waited " MIGRATION_LOCK_WAIT " for a table lock that running hookline nodes hold; "        \
    "it was not applied (the migrations before it were, each on its own): run the upgrade when "   \
    "the database is quiet (stop the other nodes, or pick a time with few changes) or retry it"
#define ACQUIRE_WAIT_MS 10000
#define RECONNECT_PAUSE_MS 200
#define LISTEN_BACKOFF_MIN_MS 100
#define LISTEN_BACKOFF_MAX_MS 5000
/* Threads committing the API's changes (hl_store_commit_start): each holds a pool connection
 * while it commits, and PostgreSQL flushes the WAL of commits that arrive together once, so a
 * few HTTP threads keep this many commits going. */
#define COMMITTERS 12
/* Most ids of new deliveries waiting for this node's claims by id. */
#define FRESH_MAX 8192
/* Past this many waiting, this node is behind: commits wake the other nodes to help. */
#define FRESH_HELP 512
/* A claim by id this recent says this node's dispatcher is running and claims its commits'
 * deliveries itself (its bookkeeper claims at once when a commit wakes it). */
#define FRESH_LIVE_MS 2000

/* A claimed job's columns (HL_JOB_COLS) at the claim's time $1. */
#define CLAIM_COLS HL_JOB_COLS("$1")
/* The claim's rate allowance (sql.h) of webhook w, and the rate step of b. */
#define RATE_ALLOW SQL_RATE_ALLOW("w.", "$1 * 1000")
#define RATE_STEP SQL_RATE_STEP("b.")
#define ORDER_FREE SQL_ORDER_FREE("d2.")
#define ORDER_FREE_D SQL_ORDER_FREE("d.")
#define ORDER_RESOURCE HL_XSTR(HL_ORDER_RESOURCE)
/* What the fair shares of a claim allow of candidates cand(id, due, wid, app, rw, allow) (as
 * sqlite.c's SHARES_FIT and SHARES_TURN): fit keeps the rows within their webhook's room ($9,
 * $10, and $11 for the others) and rate allowance, ranked ranks them within their app, pick
 * takes at most $4 of those within their app's room ($6, $7, and $8 for the others). */
#define SHARES_PICK                                                                                \
    " fit AS (SELECT c.id, c.due, c.app, c.rw FROM cand c"                                         \
    " LEFT JOIN unnest($9::bigint[], $10::bigint[]) AS wroom(wid, n) ON wroom.wid = c.wid"         \
    " WHERE ($11 = 0 OR c.rw <= coalesce(wroom.n, $11)) AND c.rw <= c.allow),"                     \
    " ranked AS (SELECT id, due, app,"                                                             \
    " row_number() OVER (PARTITION BY app ORDER BY rw, due, id) AS ra FROM fit),"                  \
    " pick AS (SELECT k.id FROM ranked k"                                                          \
    " LEFT JOIN unnest($6::bigint[], $7::bigint[]) AS room(app, n) ON room.app = k.app"            \
    " WHERE $8 = 0 OR k.ra <= coalesce(room.n, $8) ORDER BY k.ra, k.due, k.id LIMIT $4),"
#define PER_WEBHOOK HL_XSTR(HL_CLAIM_PER_WEBHOOK)
/* An attempt's outcome as Q_RECORD takes it. */
#define REC_SUCCESS 1
#define REC_RETRY 2
#define REC_FAILED 3
#define REC_OK HL_XSTR(REC_SUCCESS)
#define REC_AGAIN HL_XSTR(REC_RETRY)

/* Type OIDs of the parameters we send (pg_type.dat). */
#define OID_BYTEA 17
#define OID_INT8 20
#define OID_TEXT 25
#define OID_INT8_ARRAY 1016
#define OID_TEXT_ARRAY 1009
#define OID_BYTEA_ARRAY 1001

/* The trigger function of the counters (sql.h, SQL_CNT_TABLE): each statement's changes,
 * grouped by webhook, go to the session's stripe. */
/* clang-format off */
#define COUNT_FN(stripe)                                                                           \
    " FUNCTION deliveries_count() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN"                    \
    " IF TG_OP = 'INSERT' THEN "                                                                   \
    SQL_CNT_APPLY(stripe, "SELECT webhook_id, " SQL_CNT_EACH(CNT_VAL, "", "") " FROM n")           \
    " ELSIF TG_OP = 'DELETE' THEN "                                                                \
    SQL_CNT_APPLY(stripe, "SELECT webhook_id, " SQL_CNT_EACH(CNT_VAL, "", "-") " FROM o")          \
    " ELSE "                                                                                       \
    SQL_CNT_APPLY(stripe, "SELECT webhook_id, " SQL_CNT_EACH(CNT_VAL, "", "") " FROM n UNION ALL"  \
                  " SELECT webhook_id, " SQL_CNT_EACH(CNT_VAL, "", "-") " FROM o")                 \
    " END IF; RETURN NULL; END $$;"
/* Migration 16: a webhook's delivery counts are counters kept by statement triggers, on 16
 * stripes shared by sessions. Writers wait while the stored deliveries are counted, so that
 * none is missed. */
#define MIGRATION_COUNTERS                                                                         \
    "LOCK TABLE deliveries IN SHARE ROW EXCLUSIVE MODE;" SQL_CNT_TABLE("BIGINT", "")              \
    "CREATE" COUNT_FN("pg_backend_pid() % 16")                                                     \
    "CREATE TRIGGER deliveries_count_insert AFTER INSERT ON deliveries"                            \
    " REFERENCING NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count();"          \
    "CREATE TRIGGER deliveries_count_update AFTER UPDATE ON deliveries"                            \
    " REFERENCING OLD TABLE AS o NEW TABLE AS n FOR EACH STATEMENT"                                \
    " EXECUTE FUNCTION deliveries_count();"                                                        \
    "CREATE TRIGGER deliveries_count_delete AFTER DELETE ON deliveries"                            \
    " REFERENCING OLD TABLE AS o FOR EACH STATEMENT EXECUTE FUNCTION deliveries_count();"
/* Migration 17: a stripe per session (sql.h, SQL_CNT_STRIPE), so that two sessions never wait
 * for each other's counters; the shared stripes folded into stripe 0. */
#define MIGRATION_COUNT_SESSIONS                                                                   \
    "LOCK TABLE webhook_counts IN EXCLUSIVE MODE;"                                                 \
    "CREATE OR REPLACE" COUNT_FN(SQL_CNT_STRIPE) SQL_CNT_FOLD("c.stripe <> 0")
/* clang-format on */

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
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = " SQL_PENDING ";"
    "CREATE INDEX deliveries_leased ON deliveries(lease_until)"
    " WHERE status = " SQL_PENDING " AND lease_until > 0;"
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
    /* 3: every earlier secret whose overlap has not ended signs (sqlite.c's migration 4) */
    "ALTER TABLE webhooks ADD COLUMN prev_secrets TEXT NOT NULL DEFAULT '';"
    "UPDATE webhooks SET prev_secrets = prev_secret_until::text || ' ' || prev_secret"
    " WHERE prev_secret IS NOT NULL AND prev_secret_until > 0;"
    "ALTER TABLE webhooks DROP COLUMN prev_secret;",
    /* 4: retention (sqlite.c's migration 5). Pruning deletes from these tables all the time:
     * autovacuum visits them once 5 % of their rows are dead instead of 20 % (the server's
     * default), so the space of pruned rows is reused by new ones before the tables grow. */
    "CREATE INDEX events_created ON events(created_at, id);"
    "CREATE INDEX idempotency_created ON idempotency(created_at);"
    "ALTER TABLE events SET (autovacuum_vacuum_scale_factor = 0.05);"
    "ALTER TABLE deliveries SET (autovacuum_vacuum_scale_factor = 0.05);"
    "ALTER TABLE attempts SET (autovacuum_vacuum_scale_factor = 0.05);"
    "ALTER TABLE idempotency SET (autovacuum_vacuum_scale_factor = 0.05);",
    /* 5: claims webhook by webhook (sqlite.c's migration 3) */
    "CREATE INDEX deliveries_wh_due ON deliveries(webhook_id, next_attempt_at)"
    " WHERE status = " SQL_PENDING ";",
    /* 6: an app's stored bytes, --max-app-storage (sqlite.c's migration 6) */
    "CREATE INDEX files_app ON files(app_id);",
    /* 7: ingestion: claims counted per file, files being processed counted per app (sqlite.c's
     * migration 7) */
    "ALTER TABLE files ADD COLUMN attempts BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX files_app_state ON files(app_id, state, lease_until);",
    /* 8: the console (sqlite.c's migration 8) */
    "ALTER TABLE attempts ADD COLUMN webhook_id BIGINT;"
    "UPDATE attempts a SET webhook_id = d.webhook_id FROM deliveries d WHERE d.id = a.delivery_id;"
    "CREATE INDEX attempts_webhook_time ON attempts(webhook_id, started_at)"
    " INCLUDE (status_code, duration_us);"
    "CREATE INDEX deliveries_webhook_id ON deliveries(webhook_id, id);"
    "CREATE TABLE console_key(id BIGINT PRIMARY KEY CHECK (id = 1), secret BYTEA NOT NULL,"
    " created_at BIGINT NOT NULL);"
    "CREATE TABLE portal_used(token_id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);"
    "CREATE INDEX portal_used_expiry ON portal_used(expires_at);"
    "CREATE INDEX events_tenant ON events(app_id, tenant, id);",
    /* 9: /metrics' gauges read the queue and webhooks by state from indexes (sqlite.c's
     * migration 9) */
    SQL_GAUGE_INDEXES,
    /* 10: delivery policy, issue 19 (sqlite.c's migration 10) */
    "ALTER TABLE webhooks ADD COLUMN filter TEXT;"
    "ALTER TABLE webhooks ADD COLUMN headers TEXT;"
    "CREATE INDEX webhooks_filtered ON webhooks(app_id) WHERE filter IS NOT NULL;",
    /* 11: alerting (issue 21; sqlite.c's migration 11) */
    "ALTER TABLE webhooks ADD COLUMN kind BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN alert_state BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN alert_since BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN silence_ms BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN expect_events BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN silent_at BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX webhooks_silence ON webhooks(id) WHERE silence_ms > 0;",
    /* 12: the circuit breaker (sqlite.c's migration 12) */
    "ALTER TABLE webhooks ADD COLUMN breaker_fails BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN breaker_opened_at BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN breaker_probe_at BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN breaker_probes BIGINT NOT NULL DEFAULT 0;",
    /* 13: rateLimit (sqlite.c's migration 13) */
    "ALTER TABLE webhooks ADD COLUMN rate_limit BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN rate_tat BIGINT NOT NULL DEFAULT 0;"
    "CREATE INDEX webhooks_held ON webhooks(id) WHERE breaker_opened_at <> 0 OR rate_limit > 0;",
    /* 14: ordering (sqlite.c's migration 14) */
    "ALTER TABLE webhooks ADD COLUMN ordering BIGINT NOT NULL DEFAULT 0;"
    "ALTER TABLE deliveries ADD COLUMN order_key TEXT;"
    "CREATE INDEX deliveries_order ON deliveries(webhook_id, order_key, id)"
    " WHERE order_key IS NOT NULL AND status IN (" SQL_PENDING ", " SQL_PAUSED ");",
    /* 15: every list reads from an index that serves its filter and its order (sqlite.c's
     * migration 15) */
    "ALTER TABLE deliveries ADD COLUMN event_type BIGINT NOT NULL DEFAULT -1;"
    "UPDATE deliveries d SET event_type = e.type FROM events e WHERE e.id = d.event_id;"
    "CREATE INDEX events_type ON events(app_id, type, id);"
    "CREATE INDEX deliveries_webhook_type ON deliveries(webhook_id, event_type, id);"
    "CREATE INDEX deliveries_webhook_time ON deliveries(webhook_id, created_at, id);"
    "CREATE INDEX resources_tenant ON resources(app_id, kind, tenant, id);"
    "DROP INDEX deliveries_webhook;"
    "CREATE INDEX deliveries_webhook ON deliveries(webhook_id, status, id)"
    " INCLUDE (attempts, last_status);"
    "CREATE INDEX deliveries_failing ON deliveries(webhook_id, id) WHERE " SQL_FAILING_ROWS(
        "") ";"
            /* statistics for the new column at once (autovacuum also visits the rewritten table) */
            "ANALYZE deliveries;",
    /* 16: a webhook's delivery counts are counters (MIGRATION_COUNTERS) */
    MIGRATION_COUNTERS,
    /* 17: a counter stripe per session (MIGRATION_COUNT_SESSIONS) */
    MIGRATION_COUNT_SESSIONS,
    /* 18: sqlite.c's migration 18 (deferred fan-out), whose columns the shared queries read:
     * never set here, since PostgreSQL does not defer (struct hl_backend's defers). */
    "ALTER TABLE webhooks ADD COLUMN deferring BIGINT NOT NULL DEFAULT 0,"
    " ADD COLUMN owed BIGINT NOT NULL DEFAULT 0, ADD COLUMN owed_after BIGINT NOT NULL DEFAULT 0;",
};
#define NMIGRATIONS (sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]))

/* This backend's own queries, after the shared ones. */
enum {
    Q_BEGIN = HL_Q_SHARED,
    Q_BEGIN_SNAPSHOT,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_EV_FANOUT,
    Q_EV_ONE,
    Q_NOTIFY,
    Q_CLAIM,
    Q_WH_SUCCESS,
    Q_WH_FAILURE,
    Q_SYNC_ON,
    Q_INGEST_CLAIM,
    Q_DB_SIZE,
    Q_SYNC_OFF,
    Q_RECORD,
    Q_CLAIM_IDS,
    Q_COUNT
};

static const char *const SQL[Q_COUNT] = {
    [HL_Q_APP_INSERT] = "INSERT INTO apps(uid, name, created_at) VALUES($1, $2, $3) RETURNING id",
    [HL_Q_APP_GET] = "SELECT " HL_APP_COLS " FROM apps WHERE uid = $1",
    [HL_Q_APP_LIST] = "SELECT " HL_APP_COLS " FROM apps ORDER BY id",
    [HL_Q_KEY_INSERT] = "INSERT INTO api_keys(uid, app_id, hash, prefix, created_at)"
                        " VALUES($1, $2, $3, $4, $5)",
    [HL_Q_KEY_LOOKUP] = "SELECT a.id, a.uid, a.name, a.created_at, k.hash, k.uid FROM api_keys k"
                        " JOIN apps a ON a.id = k.app_id WHERE k.hash = $1"
                        " AND k.revoked_at IS NULL",
    [HL_Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = $2 WHERE uid = $1"
                        " AND revoked_at IS NULL",
    [HL_Q_KEY_LIST] = "SELECT k.uid, k.app_id, a.uid, k.prefix, k.created_at,"
                      " coalesce(k.revoked_at, 0) FROM api_keys k JOIN apps a ON a.id = k.app_id"
                      " WHERE $1 = 0 OR k.app_id = $1 ORDER BY k.id",
    [HL_Q_WH_INSERT] = "INSERT INTO webhooks(uid, app_id, url, description, entities, event_types,"
                       " active, secret, created_at, updated_at, filter, headers)"
                       " VALUES($1, $2, $3, $4, $5, $6, $7, $8, $9, $9, $10, $11) RETURNING id",
    [HL_Q_WH_GET] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND uid = $2"
                    " AND deleted_at = 0",
    [HL_Q_WH_GET_LOCKED] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = $1"
                           " AND uid = $2 AND deleted_at = 0 FOR NO KEY UPDATE",
    [HL_Q_WH_GET_ANY] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND uid = $2",
    [HL_Q_WH_LIST] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = $1 AND id > $2"
                     " AND deleted_at = 0 AND kind = $4 ORDER BY id LIMIT $3",
    [HL_Q_WH_UPDATE] =
        "UPDATE webhooks SET url = $3, description = $4, entities = $5,"
        " event_types = $6, active = $7, updated_at = $8, filter = $9,"
        " headers = $10, disabled_at = CASE WHEN $7 <> 0 THEN 0 ELSE disabled_at END,"
        " disabled_reason = CASE WHEN $7 <> 0 THEN NULL ELSE disabled_reason END,"
        " failing_since = CASE WHEN $7 <> 0 AND active = 0 THEN 0"
        " ELSE failing_since END," SQL_BREAKER_RESET(
            "($7 <> 0 AND active = 0) OR url <> $3") " WHERE app_id = $1 AND uid = "
                                                     "$2 AND deleted_at = 0",
    [HL_Q_WH_PAUSE_DELIVERIES] = "UPDATE deliveries SET status = " SQL_PAUSED
                                 " WHERE webhook_id = $1 AND status = " SQL_PENDING,
    [HL_Q_WH_RESUME_DELIVERIES] =
        "UPDATE deliveries SET status = " SQL_PENDING ", next_attempt_at = $2 WHERE webhook_id = $1"
        " AND status = " SQL_PAUSED,
    [HL_Q_WH_DELETE] = "UPDATE webhooks SET deleted_at = $3, active = 0"
                       " WHERE app_id = $1 AND uid = $2 AND deleted_at = 0",
    [HL_Q_WH_CANCEL_DELIVERIES] =
        "UPDATE deliveries SET status = " SQL_CANCELLED ", lease_until = 0"
        " WHERE webhook_id = (SELECT id FROM webhooks WHERE uid = $1)"
        " AND status IN (" SQL_PENDING ", " SQL_PAUSED ")",
    [HL_Q_WH_GONE] = "UPDATE webhooks SET active = 0, disabled_at = $2, disabled_reason = $3"
                     " WHERE id = $1 AND active = 1",
    /* As sqlite.c's */
    [HL_Q_WH_BREAKER] =
        "UPDATE webhooks SET breaker_fails = CASE WHEN $2 = 1 THEN 0 ELSE breaker_fails + 1 END,"
        " breaker_opened_at = CASE WHEN $2 = 1 THEN 0 WHEN breaker_opened_at = 0 AND $4 > 0"
        " AND breaker_fails + 1 >= $4 THEN $3 ELSE breaker_opened_at END,"
        " breaker_probe_at = CASE WHEN $2 = 1 THEN 0 WHEN breaker_opened_at = 0 OR $6 = 1"
        " THEN $5 ELSE breaker_probe_at END,"
        " breaker_probes = CASE WHEN $2 = 1 OR breaker_opened_at = 0 THEN 0"
        " WHEN $6 = 1 THEN breaker_probes + 1 ELSE breaker_probes END"
        " WHERE id = $1 AND ($2 = 0 OR breaker_fails <> 0 OR breaker_opened_at <> 0)",
    [HL_Q_WH_POLICY] = "UPDATE webhooks SET rate_limit = $2, ordering = $3 WHERE id = $1",
    [HL_Q_NEXT_RELEASE] = SQL_NEXT_RELEASE("$"),
    [HL_Q_WH_AUTODISABLE] = "UPDATE webhooks SET active = 0, disabled_at = $2,"
                            " disabled_reason = $3 WHERE id = $1 AND active = 1"
                            " AND failing_since > 0 AND failing_since <= $4",
    [HL_Q_RES_GET] = "SELECT " HL_RESOURCE_COLS " FROM resources WHERE app_id = $1 AND kind = $2"
                     " AND uid = $3",
    [HL_Q_RES_LIST] = RES_LIST_SQL("$", "::text", ""),
    [HL_Q_RES_LIST_TENANT] = RES_LIST_SQL("$", "::text", " AND tenant = $4"),
    [HL_Q_RES_INSERT] = "INSERT INTO resources(uid, app_id, kind, parent_uid, tenant, body,"
                        " version, created_at, updated_at)"
                        " VALUES($1, $2, $3, $4, $5, $6, 1, $7, $8)",
    [HL_Q_RES_UPDATE] = "UPDATE resources SET tenant = $4, body = $5, version = version + 1,"
                        " updated_at = $6 WHERE app_id = $1 AND uid = $2 AND version = $3",
    [HL_Q_RES_DELETE] = "DELETE FROM resources WHERE app_id = $1 AND uid = $2 AND version = $3",
    [HL_Q_RES_EXISTS] = "SELECT 1 FROM resources WHERE app_id = $1 AND uid = $2",
    [HL_Q_FILE_INSERT] = "INSERT INTO files(uid, app_id, path, size, sha256, created_at)"
                         " VALUES($1, $2, $3, $4, $5, $6)",
    [HL_Q_FILE_DELETE] = "DELETE FROM files WHERE uid = $1",
    [HL_Q_CHUNKS_DELETE] = "DELETE FROM chunks WHERE file_uid = $1",
    [HL_Q_CHUNK_INSERT] = "INSERT INTO chunks(file_uid, idx, \"offset\", text)"
                          " VALUES($1, $2, $3, $4)",
    [HL_Q_FILE_DONE] = "UPDATE files SET state = 2, lease_until = 0 WHERE uid = $1",
    [HL_Q_FILE_RENEW] = "UPDATE files SET lease_until = $3 WHERE uid = $1 AND attempts = $2"
                        " AND state = 1",
    [HL_Q_FILE_RELEASE] = "UPDATE files SET lease_until = 0, attempts = attempts - $3"
                          " WHERE uid = $1 AND attempts = $2 AND state = 1",
    [HL_Q_IDEM_INSERT] = "INSERT INTO idempotency(app_id, key, request_hash, status, response,"
                         " created_at) VALUES($1, $2, $3, $4, $5, $6) ON CONFLICT(app_id, key)"
                         " DO UPDATE SET request_hash = excluded.request_hash,"
                         " status = excluded.status, response = excluded.response,"
                         " created_at = excluded.created_at WHERE idempotency.created_at < $7",
    [HL_Q_IDEM_GET] = "SELECT request_hash, status, response FROM idempotency WHERE app_id = $1"
                      " AND key = $2 AND created_at >= $3",
    [HL_Q_EV_LIST] = EV_LIST_SQL("$", "::text", ""),
    [HL_Q_EV_LIST_TYPE] = EV_LIST_SQL("$", "::text", " AND type = $2"),
    [HL_Q_EV_LIST_TENANT] = EV_LIST_SQL("$", "::text", " AND tenant = $3"),
    [HL_Q_EV_LIST_TIME] = EV_LIST_TIME_SQL("$", "::text", ""),
    [HL_Q_EV_AT] = "SELECT created_at FROM events WHERE id = $2 AND app_id = $1",
    [HL_Q_EV_GET] = "SELECT " HL_EVENT_COLS " FROM events WHERE app_id = $1 AND uid = $2",
    [HL_Q_ATTEMPT_INSERT] = "INSERT INTO attempts(delivery_id, started_at, duration_us,"
                            " status_code, error, response, webhook_id) VALUES($1, $2, $3, $4,"
                            " $5, $6, (SELECT webhook_id FROM deliveries WHERE id = $1))",
    [HL_Q_DELIV_SUCCESS] = "UPDATE deliveries SET status = " SQL_SUCCEEDED
                           ", attempts = attempts + 1, last_status = $2, last_error = NULL,"
                           " delivered_at = $3, lease_until = 0 WHERE id = $1 AND status IN"
                           " (" SQL_PENDING ", " SQL_FAILED ", " SQL_PAUSED ")",
    [HL_Q_DELIV_RETRY] = "UPDATE deliveries SET attempts = attempts + 1, last_status = $2,"
                         " last_error = $3, next_attempt_at = $4, lease_until = 0"
                         " WHERE id = $1 AND status IN (" SQL_PENDING ", " SQL_PAUSED ")",
    [HL_Q_DELIV_FAILED] = "UPDATE deliveries SET status = " SQL_FAILED
                          ", attempts = attempts + 1, last_status = $2, last_error = $3,"
                          " lease_until = 0 WHERE id = $1 AND status IN"
                          " (" SQL_PENDING ", " SQL_FAILED ", " SQL_PAUSED ")",
    /* The earliest due delivery not leased now, or the earliest lease to lapse (0: none). */
    [HL_Q_NEXT_DUE] = "SELECT coalesce(least((SELECT min(next_attempt_at) FROM deliveries"
                      " WHERE status = " SQL_PENDING " AND lease_until <= $1),"
                      " (SELECT min(lease_until) FROM deliveries WHERE status = " SQL_PENDING
                      " AND lease_until > $1)), 0)",
    [HL_Q_DL_BY_EVENT] = HL_DELIVERY_SELECT " WHERE d.event_id = $1 ORDER BY d.id",
    [HL_Q_DL_LIST] = DL_LIST_SQL("$", "", ""),
    [HL_Q_DL_LIST_STATUS] = DL_LIST_IDS_SQL("$", DL_STATUS_SEEK("$")),
    [HL_Q_DL_LIST_FAILING] = DL_LIST_SQL("$", "", " AND " SQL_FAILING_ROWS("d.")),
    [HL_Q_DL_LIST_TYPE] = DL_LIST_IDS_SQL("$", " AND d.event_type = $4"),
    [HL_Q_DL_LIST_TIME] = DL_LIST_TIME_SQL("$"),
    [HL_Q_DL_AT] = "SELECT created_at FROM deliveries WHERE id = $1",
    [HL_Q_WH_IDS] = "SELECT id FROM webhooks WHERE app_id = $1 ORDER BY id",
    [HL_Q_DL_GET] = HL_DELIVERY_SELECT " WHERE d.id = $1 AND w.app_id = $2",
    [HL_Q_ATT_LIST] = "SELECT started_at, duration_us, status_code, error, response FROM attempts"
                      " WHERE delivery_id = $1 ORDER BY id",
    [HL_Q_DL_RESEND] =
        "UPDATE deliveries SET status = " SQL_PENDING ", next_attempt_at = $3, lease_until = 0"
        " WHERE id = $1 AND lease_until <= $3 AND webhook_id IN"
        " (SELECT id FROM webhooks WHERE app_id = $2 AND deleted_at = 0)",
    [HL_Q_RECOVER] = "UPDATE deliveries SET status = " SQL_PENDING
                     ", next_attempt_at = $4, lease_until = 0 WHERE webhook_id = $1"
                     " AND status = " SQL_FAILED " AND created_at >= $2"
                     " AND ($3 = 0 OR created_at < $3)",
    [HL_Q_RECOVER_FAILING] = SQL_RECOVER_FAILING("$1", "$2", "$3", "$4"),
    [HL_Q_ROTATE] = "UPDATE webhooks SET secret = $3, prev_secrets = $4,"
                    " prev_secret_until = $5, updated_at = $6 WHERE app_id = $1 AND uid = $2"
                    " AND deleted_at = 0",
    [HL_Q_WH_STATS] = SQL_WH_STATS("$"),
    [HL_Q_GAUGE_DELIVERIES] = SQL_GAUGE_DELIVERIES,
    [HL_Q_GAUGE_WEBHOOKS] = SQL_GAUGE_WEBHOOKS,
    [HL_Q_GAUGE_FILES] = SQL_GAUGE_FILES,
    [HL_Q_CHUNK_LIST] = "SELECT c.idx, c.\"offset\", c.text FROM chunks c JOIN files f"
                        " ON f.uid = c.file_uid WHERE f.app_id = $1 AND c.file_uid = $2"
                        " AND c.idx > $3 ORDER BY c.idx LIMIT $4",
    [HL_Q_FILE_PATH] = "SELECT path FROM files WHERE app_id = $1 AND uid = $2",
    [HL_Q_PRUNE_SCAN] = "SELECT e.id, e.created_at, EXISTS (SELECT 1 FROM deliveries d"
                        " WHERE d.event_id = e.id AND d.status IN (" SQL_PENDING ", " SQL_PAUSED
                        "))::int FROM events e WHERE e.created_at < $1"
                        " AND (e.created_at, e.id) > ($2, $3) ORDER BY e.created_at, e.id LIMIT $4",
    /* One node folds at a time; a stripe whose session is gone moves to stripe 0. A new
     * session's stripe (missing from this statement's view of pg_stat_activity) may move too:
     * the sums stay the same, and a row its session holds is skipped, not waited for. */
    [HL_Q_CNT_FOLD] = SQL_CNT_FOLD(
        "(SELECT pg_try_advisory_xact_lock(" FOLD_LOCK ")) AND (c.webhook_id, c.stripe) IN"
        " (SELECT webhook_id, stripe FROM webhook_counts k WHERE k.stripe <> 0 AND NOT EXISTS"
        " (SELECT 1 FROM pg_stat_activity a WHERE a.pid = k.stripe) FOR UPDATE SKIP LOCKED)"),
    /* One node prunes at a time; another node's step skips its turn rather than wait. */
    [HL_Q_PRUNE_GUARD] = "SELECT pg_try_advisory_xact_lock(" PRUNE_LOCK ")::int",
    /* A resend or a recovery on another connection waits for this transaction, or (having
     * committed first) leaves its delivery pending, which keeps the event. */
    [HL_Q_PRUNE_LOCK] = "SELECT id FROM deliveries WHERE event_id = ANY($1) AND status IN"
                        " (" SQL_SUCCEEDED ", " SQL_FAILED ", " SQL_CANCELLED ") ORDER BY id"
                        " FOR UPDATE",
    [HL_Q_PRUNE_ATTEMPTS] =
        "DELETE FROM attempts WHERE delivery_id IN (SELECT d.id FROM deliveries d"
        " WHERE d.event_id = ANY($1) AND NOT EXISTS (SELECT 1 FROM deliveries o"
        " WHERE o.event_id = d.event_id"
        " AND o.status IN (" SQL_PENDING ", " SQL_PAUSED ")))",
    [HL_Q_PRUNE_DELIVERIES] = "DELETE FROM deliveries d WHERE d.event_id = ANY($1)"
                              " AND NOT EXISTS (SELECT 1 FROM deliveries o"
                              " WHERE o.event_id = d.event_id"
                              " AND o.status IN (" SQL_PENDING ", " SQL_PAUSED "))",
    [HL_Q_PRUNE_EVENTS] = "DELETE FROM events e WHERE e.id = ANY($1)"
                          " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = e.id)",
    [HL_Q_PRUNE_COUNT] =
        "SELECT (SELECT count(*) FROM deliveries WHERE event_id = ANY($1)),"
        " (SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.event_id = ANY($1))",
    [HL_Q_IDEM_EXPIRE] = "DELETE FROM idempotency i USING (SELECT app_id, key FROM idempotency"
                         " WHERE created_at < $1 LIMIT $2 FOR UPDATE SKIP LOCKED) x"
                         " WHERE i.app_id = x.app_id AND i.key = x.key",
    [HL_Q_IDEM_COUNT] = "SELECT count(*) FROM idempotency WHERE created_at < $1",
    [HL_Q_OLDEST_EVENT] = "SELECT coalesce(min(created_at), 0) FROM events",
    [HL_Q_APP_LOCK] = "SELECT id FROM apps WHERE id = $1 FOR NO KEY UPDATE",
    [HL_Q_WH_COUNT] = "SELECT count(*) FROM webhooks WHERE app_id = $1 AND deleted_at = 0",
    [HL_Q_APP_STORAGE] = "SELECT coalesce(sum(size), 0)::bigint FROM files WHERE app_id = $1",
    SQL_CONSOLE_QUERIES("$"),
    SQL_BREAKER_QUERIES("$"),
    [HL_Q_WH_FILTERED] =
        "SELECT id, filter, deferring FROM webhooks WHERE app_id = $1 AND active = 1"
        " AND deleted_at = 0 AND filter IS NOT NULL AND (entities & $2) <> 0"
        " AND (event_types = 0 OR (event_types & $3) <> 0) ORDER BY id",
    [HL_Q_DELIV_INSERT] =
        "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
        " created_at, order_key, event_type) SELECT $1, id, " SQL_PENDING ", $3, $3,"
        " CASE WHEN ordering = " HL_XSTR(HL_ORDER_RESOURCE) " THEN $4::text END, $5"
                                                            " FROM webhooks WHERE id = $2",
    /* Never run: no webhook defers here (struct hl_backend's defers), nor the DEFER ones. */
    [HL_Q_OWE_INSERT] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_ENTER] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_LIST] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_MOVE] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_FORGET] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_MARK] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_DROP] = "SELECT 1 WHERE false",
    [HL_Q_DEFER_LEAVE] = "SELECT 1 WHERE false",

    /* alerting (issue 21, store/alerts.c) */
    HL_ALERTING_SQL("$", "(SELECT unnest($1::bigint[]))", "greatest")

        [Q_BEGIN] = "BEGIN",
    [Q_BEGIN_SNAPSHOT] = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY",
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    /* The event, its deliveries and the wake-up of the other nodes in one round trip. The
     * data-modifying CTEs always run to completion; the NOTIFY goes out at COMMIT, only when
     * deliveries were made and $11 (the channel) is not NULL: when this node will not claim them
     * by id itself (fresh_local). The last column is the ids of the deliveries made.
     * $1-$7 are the event (hl_event_args). Webhooks with a filter are left to hl_sql_apply: the
     * second column is the event's id when one of them may want it, else 0. */
    [Q_EV_FANOUT] =
        "WITH ev AS (INSERT INTO events(uid, app_id, type, tenant, resource_uid,"
        " created_at, payload) VALUES($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
        " d AS (INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
        " created_at, order_key, event_type) SELECT ev.id, w.id, " SQL_PENDING ", $8, $8,"
        " CASE WHEN w.ordering = " ORDER_RESOURCE " THEN $5 END, $3 FROM ev, webhooks w"
        " WHERE w.app_id = $2 AND w.active = 1 AND w.deleted_at = 0 AND (w.entities & $9) <> 0"
        " AND (w.event_types = 0 OR (w.event_types & $10) <> 0) AND w.filter IS NULL"
        " RETURNING id), n AS (SELECT count(*) AS made, array_agg(id) AS ids FROM d)"
        " SELECT made, CASE WHEN EXISTS (SELECT 1 FROM webhooks w WHERE w.app_id = $2"
        " AND w.filter IS NOT NULL AND w.active = 1 AND w.deleted_at = 0"
        " AND (w.entities & $9) <> 0 AND (w.event_types = 0 OR (w.event_types & $10) <> 0))"
        " THEN (SELECT id FROM ev) ELSE 0 END,"
        " CASE WHEN made > 0 AND $11::text IS NOT NULL THEN pg_notify($11, $12) END, ids FROM n",
    /* The same for one webhook (webhook.test). */
    [Q_EV_ONE] = "WITH ev AS (INSERT INTO events(uid, app_id, type, tenant, resource_uid,"
                 " created_at, payload) VALUES($1, $2, $3, $4, $5, $6, $7) RETURNING id),"
                 " d AS (INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
                 " created_at, event_type) SELECT ev.id, $9, " SQL_PENDING ", $8, $8, $3"
                 " FROM ev RETURNING id),"
                 " n AS (SELECT count(*) AS made, array_agg(id) AS ids FROM d)"
                 " SELECT made, 0, CASE WHEN made > 0 AND $10::text IS NOT NULL"
                 " THEN pg_notify($10, $11) END, ids FROM n",
    [Q_NOTIFY] = "SELECT pg_notify($1, $2)",
    /* As sqlite.c's Q_CLAIM_SELECT: webhook by webhook (those with pending deliveries, found
     * by skipping through the partial index), at most HL_CLAIM_PER_WEBHOOK apiece, then in
     * turns within the shares. The per-webhook SELECT locks what it takes and skips rows another
     * node is claiming right now; rows another node leased since our snapshot fail the re-check
     * of lease_until. $1 now, $2 lease, $3 busy webhooks, $4 most jobs, $5 apps left alone,
     * $6-$8 the apps' rooms and any other app's, $9-$11 the webhooks' (struct hl_claim). */
    [Q_CLAIM] =
        "WITH RECURSIVE wh(id) AS ((SELECT webhook_id FROM deliveries"
        " WHERE status = " SQL_PENDING " ORDER BY webhook_id LIMIT 1) UNION ALL"
        " SELECT (SELECT d.webhook_id FROM deliveries d WHERE d.status = " SQL_PENDING
        " AND d.webhook_id > wh.id ORDER BY d.webhook_id LIMIT 1) FROM wh"
        " WHERE wh.id IS NOT NULL),"
        " cand AS (SELECT c.id, c.next_attempt_at AS due, w.id AS wid, w.app_id AS app,"
        " row_number() OVER (PARTITION BY w.id ORDER BY c.next_attempt_at, c.id) AS rw,"
        " " RATE_ALLOW " AS allow"
        " FROM wh JOIN webhooks w ON w.id = wh.id"
        /* an open breaker's probe: its webhook's row locked, so that another node's claim
         * skips it (or sees the probe's time moved on) and one probe goes at a time */
        " LEFT JOIN LATERAL (SELECT 1 AS ok FROM webhooks g WHERE g.id = w.id"
        " AND w.breaker_opened_at <> 0 AND g.breaker_probe_at <= $1 FOR UPDATE SKIP LOCKED) gate"
        " ON true CROSS JOIN LATERAL"
        " (SELECT d2.id, d2.next_attempt_at FROM deliveries d2 WHERE d2.webhook_id = w.id"
        " AND d2.status = " SQL_PENDING " AND d2.next_attempt_at <= $1 AND d2.lease_until <= $1"
        " AND (w.breaker_opened_at = 0 OR gate.ok IS NOT NULL) AND " ORDER_FREE
        " ORDER BY d2.next_attempt_at"
        " LIMIT CASE WHEN w.breaker_opened_at = 0 THEN " PER_WEBHOOK " ELSE 1 END"
        " FOR UPDATE SKIP LOCKED) c"
        " WHERE w.active = 1 AND w.deleted_at = 0 AND w.id <> ALL($3::bigint[])"
        " AND w.app_id <> ALL($5::bigint[]))," SHARES_PICK
        " held AS (UPDATE webhooks b SET breaker_probe_at = CASE WHEN b.breaker_opened_at <> 0"
        " THEN $2 ELSE b.breaker_probe_at END, rate_tat = CASE WHEN b.rate_limit > 0"
        " THEN greatest(b.rate_tat, $1 * 1000) + x.k * " RATE_STEP " ELSE b.rate_tat END"
        " FROM (SELECT pd.webhook_id AS wid, count(*) AS k FROM pick JOIN deliveries pd"
        " ON pd.id = pick.id GROUP BY pd.webhook_id) x"
        " WHERE b.id = x.wid AND (b.breaker_opened_at <> 0 OR b.rate_limit > 0))"
        " UPDATE deliveries d SET lease_until = $2 FROM pick, webhooks w, events e"
        " WHERE d.id = pick.id AND w.id = d.webhook_id AND e.id = d.event_id"
        " RETURNING " CLAIM_COLS,
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
    /* Attempt records are kept durable even on the dispatcher's asynchronous session. */
    [Q_SYNC_ON] = "SELECT set_config('synchronous_commit', 'on', true)",
    /* A lazy transaction (HL_SESS_TX_LAZY) does not wait for the WAL flush. */
    [Q_SYNC_OFF] = "SELECT set_config('synchronous_commit', 'off', true)",
    /* As Q_CLAIM: one node takes a file, and a dead node's file once its lease lapses. */
    [Q_INGEST_CLAIM] = "UPDATE files f SET state = 1, lease_until = $2, attempts = f.attempts + 1"
                       " FROM (SELECT f.uid FROM files f JOIN resources r2 ON r2.uid = f.uid"
                       " WHERE f.state < 2 AND f.lease_until <= $1"
                       " ORDER BY " HL_INGEST_ORDER(
                           "$1") " LIMIT 1 FOR UPDATE OF f SKIP LOCKED) c,"
                                 " apps a, resources r WHERE f.uid = c.uid AND a.id = f.app_id"
                                 " AND r.uid = f.uid RETURNING " HL_INGEST_COLS("f.attempts"),
    [Q_DB_SIZE] = "SELECT pg_database_size(current_database())",
    /* A claim of the deliveries this node's commits just made (pg_claim through a cursor): the
     * ids $12, in id order, as sqlite.c's Q_CLAIM_NEW and Q_CLAIM_PICK take them, without
     * visiting any webhook (a backlog elsewhere costs it nothing). Left to Q_CLAIM: an open
     * breaker's probe and a rate-limited webhook's (it takes their tokens), what ordering holds
     * back, and what does not fit the shares. Rows another node is claiming are skipped, and
     * those it leased since fail the re-check of lease_until. $1-$11 as Q_CLAIM's. */
    [Q_CLAIM_IDS] =
        "WITH cand AS (SELECT d.id, d.id AS due, w.id AS wid, w.app_id AS app,"
        " row_number() OVER (PARTITION BY w.id ORDER BY d.id) AS rw,"
        /* a webhook's part is bounded by its share (fit), not by HL_CLAIM_PER_WEBHOOK (the
         * walk's bound): capped, a busy webhook's rest went to the walk, a second claim a turn */
        " CASE WHEN w.rate_limit = 0 THEN $4 ELSE 0 END AS allow"
        " FROM deliveries d JOIN webhooks w ON w.id = d.webhook_id"
        " WHERE d.id = ANY($12::bigint[]) AND d.status = " SQL_PENDING
        " AND d.next_attempt_at <= $1 AND d.lease_until <= $1 AND " ORDER_FREE_D
        " AND w.active = 1 AND w.deleted_at = 0 AND w.breaker_opened_at = 0"
        " AND w.id <> ALL($3::bigint[]) AND w.app_id <> ALL($5::bigint[]))," SHARES_PICK
        " got AS (SELECT d.id FROM deliveries d JOIN pick ON pick.id = d.id"
        " WHERE d.status = " SQL_PENDING " AND d.lease_until <= $1 FOR UPDATE OF d SKIP LOCKED)"
        " UPDATE deliveries d SET lease_until = $2 FROM got, webhooks w, events e"
        " WHERE d.id = got.id AND w.id = d.webhook_id AND e.id = d.event_id"
        " RETURNING " CLAIM_COLS,
    /* A batch's attempt rows and delivery updates in one round trip (pg_record): $1-$9 are
     * arrays of one entry per attempt (delivery, started_at, duration_us, status code, error,
     * response, REC_* outcome, next_attempt_at, webhook), $10 the time a success is delivered
     * at. The same rules as HL_Q_ATTEMPT_INSERT and HL_Q_DELIV_SUCCESS/RETRY/FAILED. */
    [Q_RECORD] =
        "WITH a AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::bigint[],"
        " $5::text[], $6::bytea[], $7::bigint[], $8::bigint[], $9::bigint[])"
        " AS a(did, started, dur, code, err, resp, outcome, nxt, wid)),"
        " ins AS (INSERT INTO attempts(delivery_id, started_at, duration_us, status_code, error,"
        " response, webhook_id) SELECT a.did, a.started, a.dur, a.code, a.err, a.resp,"
        /* the webhook the attempt was claimed for; looked up only where a caller left it 0 */
        " coalesce(nullif(a.wid, 0), (SELECT d.webhook_id FROM deliveries d WHERE d.id = a.did))"
        " FROM a)"
        " UPDATE deliveries d SET status = CASE a.outcome WHEN " REC_OK " THEN " SQL_SUCCEEDED
        " WHEN " REC_AGAIN " THEN d.status ELSE " SQL_FAILED " END, attempts = d.attempts + 1,"
        " last_status = a.code, last_error = CASE WHEN a.outcome = " REC_OK " THEN NULL"
        " ELSE a.err END, delivered_at = CASE WHEN a.outcome = " REC_OK " THEN $10"
        " ELSE d.delivered_at END, next_attempt_at = CASE WHEN a.outcome = " REC_AGAIN
        " THEN a.nxt ELSE d.next_attempt_at END, lease_until = 0 FROM a WHERE d.id = a.did"
        " AND (d.status IN (" SQL_PENDING ", " SQL_PAUSED ") OR (a.outcome <> " REC_AGAIN
        " AND d.status = " SQL_FAILED "))",
};

struct conn {
    PGconn *pg;                      /* NULL: not connected (yet, or since it broke) */
    unsigned char prepared[Q_COUNT]; /* statement q is prepared on pg */
    int busy;  /* held by a thread (a pool connection's guarded by pg.mu, the dispatcher's by
                * pg.disp_mu) */
    int used;  /* statements run since it was acquired */
    int async; /* the dispatcher's: synchronous_commit off for the session */
    /* The ids of the deliveries the open transaction made (put_event), for pg_commit to hand to
     * this node's claims by id once it commits; emptied when a session opens. */
    int64_t *made;
    size_t nmade, capmade;
    /* The open transaction made deliveries whose ids made lacks (a filtered webhook's, or ids
     * with no room): pg_commit sends this node's next claim by id to the claim without one. */
    int unlisted;
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
    /* Deliveries this node's commits made, oldest first, for its claims by id (pg_claim through
     * a cursor). Bounded: past FRESH_MAX the ids are dropped and the claim without a cursor
     * finds those deliveries. Guarded by fresh_mu. */
    pthread_mutex_t fresh_mu;
    int64_t *fresh;
    size_t nfresh;
    int fresh_dropped;     /* ids were dropped since the last claim by id */
    int64_t fresh_claimed; /* monotonic ms of the last claim by id (0: none yet) */
    /* Commits handed over by hl_store_commit_start, oldest first, for the committer threads
     * (started at the first); guarded by cq_mu. */
    pthread_mutex_t cq_mu;
    pthread_cond_t cq_cv;
    struct started *cq_head, *cq_tail;
    int cq_stop;
    pthread_t committers[COMMITTERS];
    int ncommitters;
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
static int64_t col_i64(const struct hl_row *row, int col)
{
    const PGresult *r = row->res;
    int at = row->index;
    if (PQgetisnull(r, at, col))
        return 0;
    const unsigned char *v = (const unsigned char *)PQgetvalue(r, at, col);
    int len = PQgetlength(r, at, col);
    uint64_t x = 0;
    for (int i = 0; i < len && i < 8; i++)
        x = x << 8 | v[i];
    if (len == 4)
        return (int32_t)(uint32_t)x;
    if (len == 2)
        return (int16_t)(uint16_t)x;
    return (int64_t)x;
}

/* A text or bytea column in binary: its bytes as they are; NULL for SQL NULL. */
static const void *col_bytes(const struct hl_row *row, int col, size_t *len)
{
    const PGresult *r = row->res;
    if (PQgetisnull(r, row->index, col))
        return NULL;
    *len = (size_t)PQgetlength(r, row->index, col);
    return PQgetvalue(r, row->index, col);
}

static const struct hl_cols COLS = {col_i64, col_bytes};

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
    struct timespec ts = hl_mono_ts(hl_mono_ms() + ACQUIRE_WAIT_MS);
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
static int failure(struct pg *p, struct conn *c, const PGresult *r, int q)
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
static int repeatable(int q)
{
    return q == Q_BEGIN || q == Q_BEGIN_SNAPSHOT || strncmp(SQL[q], "SELECT", 6) == 0;
}

/* The lists, planned for each call's own values (an unnamed statement) instead of prepared
 * once: which index serves a filter depends on how many rows its value matches (a rare status,
 * a tenant with no events), and the generic plan a prepared statement settles on after a few
 * calls picks one for every value. Planning costs a fraction of a millisecond. */
static int custom_plan(int q)
{
    switch (q) {
    case HL_Q_EV_LIST:
    case HL_Q_EV_LIST_TYPE:
    case HL_Q_EV_LIST_TENANT:
    case HL_Q_EV_LIST_TIME:
    case HL_Q_DL_LIST:
    case HL_Q_DL_LIST_STATUS:
    case HL_Q_DL_LIST_FAILING:
    case HL_Q_DL_LIST_TYPE:
    case HL_Q_DL_LIST_TIME:
    case HL_Q_RES_LIST:
    case HL_Q_RES_LIST_TENANT:
        return 1;
    default:
        return 0;
    }
}

/* Runs statement q on c, preparing it on first use (unless custom_plan). On success *out holds
 * the result (the caller PQclears it). */
static int run(struct pg *p, struct conn *c, int q, const struct params *a, PGresult **out)
{
    *out = NULL;
    if (a->overflow)
        return HL_EINVAL;
    char name[16];
    snprintf(name, sizeof(name), "hl%d", (int)q);
    for (int attempt = 0;; attempt++) {
        int rc = HL_EUNAVAIL;
        int custom = custom_plan(q);
        if (c->pg && !custom && !c->prepared[q]) {
            PGresult *r = PQprepare(c->pg, name, SQL[q], a->n, a->types);
            if (PQresultStatus(r) == PGRES_COMMAND_OK)
                c->prepared[q] = 1;
            else
                rc = failure(p, c, r, q);
            PQclear(r);
        }
        if (c->pg && (custom || c->prepared[q])) {
            PGresult *r =
                custom ? PQexecParams(c->pg, SQL[q], a->n, a->types, a->values, a->lengths,
                                      a->formats, 1)
                       : PQexecPrepared(c->pg, name, a->n, a->values, a->lengths, a->formats, 1);
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
static int run0(struct pg *p, struct conn *c, int q, const struct params *a, int64_t *n)
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

/* Runs sql; HL_EUNAVAIL when it gave up waiting for a lock (lock_timeout), else HL_ESTORE. */
static int exec_simple(PGconn *pg, const char *sql, char *err, size_t errlen)
{
    PGresult *r = PQexec(pg, sql);
    ExecStatusType s = PQresultStatus(r);
    int rc = s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK ? HL_OK : HL_ESTORE;
    if (rc) {
        const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        if (state && strcmp(state, "55P03") == 0) /* lock_not_available */
            rc = HL_EUNAVAIL;
        snprintf(err, errlen, "%s", PQresultErrorMessage(r));
    }
    PQclear(r);
    return rc;
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
    long long target = version; /* the schema being migrated to */
    for (long long v = version; rc == HL_OK && v < (long long)NMIGRATIONS; v++) {
        target = v + 1;
        char record[128];
        snprintf(record, sizeof(record),
                 "INSERT INTO schema_version(version, applied_at) VALUES(%lld, %lld)", v + 1,
                 (long long)hl_now_ms());
        rc = exec_simple(pg, "BEGIN; SET LOCAL lock_timeout = '" MIGRATION_LOCK_WAIT "'", why,
                         sizeof(why));
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
        if (rc == HL_EUNAVAIL)
            snprintf(err, errlen, "migration to schema %lld failed: %s (%s)", target,
                     MIGRATION_BUSY, why);
        else
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

/* ---- sessions: what ops.c runs the shared operations on ---- */

/* The parameters of a statement in libpq's form; each list of ids goes as an int8[] in text
 * form, written into ids (all of them first: the buffer may move while it grows). */
static int to_params(const struct hl_arg *a, size_t n, struct params *p, struct hl_buf *ids)
{
    size_t at[MAX_PARAMS];
    if (n > MAX_PARAMS)
        return HL_EINVAL;
    for (size_t i = 0; i < n; i++) {
        if (a[i].type != HL_ARG_IDS)
            continue;
        at[i] = ids->len;
        if (hl_ids_text(ids, a[i].p, a[i].len, '{', '}') || hl_buf_putc(ids, '\0'))
            return HL_EINVAL;
    }
    for (size_t i = 0; i < n; i++) {
        if (a[i].type == HL_ARG_INT)
            p_i64(p, a[i].i);
        else if (a[i].type == HL_ARG_TEXT)
            p_textn(p, a[i].p, a[i].len);
        else if (a[i].type == HL_ARG_BLOB)
            p_bytea(p, a[i].p, a[i].len);
        else
            p_int_array(p, ids->p + at[i]);
    }
    return HL_OK;
}

static int sess_open(struct hl_store *base, enum hl_sess_kind kind, struct hl_sess *s)
{
    struct pg *p = PG(base);
    struct conn *c;
    int rc = kind == HL_SESS_DISPATCH ? acquire_dispatcher(p, &c) : acquire(p, &c);
    if (rc)
        return rc;
    *s = (struct hl_sess){.st = base, .conn = c};
    c->nmade = 0; /* what an earlier session made and did not commit through pg_commit */
    c->unlisted = 0;
    int tx = kind == HL_SESS_TX || kind == HL_SESS_TX_LAZY || kind == HL_SESS_SNAPSHOT;
    struct params none = {0};
    if (kind == HL_SESS_SNAPSHOT)
        rc = run0(p, c, Q_BEGIN_SNAPSHOT, &none, NULL);
    else if (tx && (rc = begin(p, c)) == HL_OK && kind == HL_SESS_TX_LAZY)
        rc = run0(p, c, Q_SYNC_OFF, &none, NULL);
    if (rc) {
        release(p, c); /* rolls an open transaction back */
        return rc;
    }
    s->tx = tx;
    s->lazy = kind == HL_SESS_TX_LAZY;
    return HL_OK;
}

/* hl_store_explain: appends the plan of query q with parameters pa to out. */
static int explain(struct conn *c, int q, const struct params *pa, struct hl_buf *out)
{
    struct hl_buf sql;
    hl_buf_init(&sql, 1 << 20);
    PGresult *r = NULL;
    int rc = hl_buf_printf(&sql, "EXPLAIN %s", SQL[q]);
    if (rc == HL_OK && !c->pg)
        rc = HL_EUNAVAIL;
    if (rc == HL_OK) {
        r = PQexecParams(c->pg, sql.p, pa->n, pa->types, pa->values, pa->lengths, pa->formats, 0);
        if (PQresultStatus(r) != PGRES_TUPLES_OK) {
            hl_error("postgres: EXPLAIN %.60s: %s", SQL[q], PQresultErrorMessage(r));
            rc = HL_ESTORE;
        }
    }
    if (rc == HL_OK)
        rc = hl_buf_printf(out, "-- query %d\n", q);
    for (int i = 0; rc == HL_OK && i < PQntuples(r); i++)
        rc = hl_buf_printf(out, "%s\n", PQgetvalue(r, i, 0));
    PQclear(r);
    hl_buf_free(&sql);
    return rc;
}

/* Runs query q in the session: the one row fetch of this backend. */
static int sess_run(struct hl_sess *s, int q, const struct hl_arg *a, size_t n,
                    struct hl_rows *rows)
{
    struct params pa = {0};
    struct hl_buf ids;
    hl_buf_init(&ids, 1 << 20);
    PGresult *r = NULL;
    int rc = to_params(a, n, &pa, &ids);
    if (rc == HL_OK && s->st->explain)
        rc = explain(s->conn, q, &pa, s->st->explain);
    if (rc == HL_OK)
        rc = run(PG(s->st), s->conn, q, &pa, &r);
    struct hl_row row = {.cols = &COLS, .res = r};
    for (int i = 0; rc == HL_OK && rows && i < PQntuples(r); i++) {
        row.index = i;
        rc = hl_rows_put(rows, &row);
    }
    if (rc == HL_OK && rows)
        rows->changed = changes(r);
    PQclear(r);
    hl_buf_free(&ids);
    return rc;
}

static int sess_close(struct hl_sess *s, int rc)
{
    struct pg *p = PG(s->st);
    if (s->tx)
        rc = finish(p, s->conn, rc);
    release(p, s->conn);
    return rc;
}

/* Other nodes hear the NOTIFY; this node's own claims (which skip it) are told by pg_commit
 * through unlisted. */
static int wake_all(struct hl_sess *s)
{
    struct conn *c = s->conn;
    c->unlisted = 1;
    return notify_all(PG(s->st), c);
}

/* ---- new deliveries, claimed by id where they were made ---- */

/* Whether this node claims its commits' new deliveries itself: its dispatcher claimed by id
 * lately and is not behind. Else the commit wakes every node. */
static int fresh_local(struct pg *p)
{
    pthread_mutex_lock(&p->fresh_mu);
    int local = p->fresh_claimed && hl_mono_ms() - p->fresh_claimed < FRESH_LIVE_MS &&
                p->nfresh < FRESH_HELP && !p->fresh_dropped;
    pthread_mutex_unlock(&p->fresh_mu);
    return local;
}

/* Queues the ids of a commit's new deliveries for this node's claims by id. */
static void fresh_push(struct pg *p, const int64_t *ids, size_t n)
{
    pthread_mutex_lock(&p->fresh_mu);
    size_t take = FRESH_MAX - p->nfresh < n ? FRESH_MAX - p->nfresh : n;
    if (p->fresh)
        memcpy(p->fresh + p->nfresh, ids, take * sizeof(*ids));
    p->nfresh += p->fresh ? take : 0;
    p->fresh_dropped |= !p->fresh || take < n;
    pthread_mutex_unlock(&p->fresh_mu);
}

/* Marks ids as dropped: the next claim by id leaves the rest to the claim without a cursor. */
static void fresh_drop(struct pg *p)
{
    pthread_mutex_lock(&p->fresh_mu);
    p->fresh_dropped = 1;
    pthread_mutex_unlock(&p->fresh_mu);
}

/* Takes up to max of the queued ids into out (their number in *n); *dropped says whether ids
 * were dropped since the last take. */
static void fresh_take(struct pg *p, size_t max, int64_t *out, size_t *n, int *dropped)
{
    pthread_mutex_lock(&p->fresh_mu);
    size_t k = p->nfresh < max ? p->nfresh : max;
    if (k)
        memcpy(out, p->fresh, k * sizeof(*out));
    if (p->nfresh > k)
        memmove(p->fresh, p->fresh + k, (p->nfresh - k) * sizeof(*out));
    p->nfresh -= k;
    *dropped = p->fresh_dropped;
    p->fresh_dropped = 0;
    p->fresh_claimed = hl_mono_ms();
    pthread_mutex_unlock(&p->fresh_mu);
    *n = k;
}

/* What Q_EV_FANOUT and Q_EV_ONE answer: deliveries made, the filter's event, and the ids. */
struct made_row {
    int64_t made, filter_event;
    int64_t *ids;
    size_t n;
    int bad; /* the ids did not read: they are left to the claim without a cursor */
};

static uint32_t be32_at(const unsigned char *b)
{
    uint32_t v;
    memcpy(&v, b, sizeof(v));
    return be32toh(v);
}

/* Reads a binary int8[] (array_recv's form; empty: none). Anything else reads as none and sets
 * *bad: the claim without a cursor finds those deliveries anyway. */
static int read_ids(const unsigned char *b, size_t len, int64_t **out, size_t *n, int *bad)
{
    *out = NULL;
    *n = 0;
    if (len >= 12 && be32_at(b) == 0)
        return HL_OK; /* no dimension: empty */
    *bad = 1;
    if (len < 20 || be32_at(b) != 1 || be32_at(b + 8) != OID_INT8)
        return HL_OK;
    size_t count = be32_at(b + 12);
    if (count == 0 || count > (len - 20) / 12)
        return HL_OK;
    int64_t *ids = malloc(count * sizeof(*ids));
    if (!ids)
        return HL_ENOMEM;
    for (size_t i = 0; i < count; i++) {
        const unsigned char *e = b + 20 + i * 12;
        uint64_t v;
        memcpy(&v, e + 4, sizeof(v));
        if (be32_at(e) != 8) {
            free(ids);
            return HL_OK;
        }
        ids[i] = (int64_t)be64toh(v);
    }
    *bad = 0;
    *out = ids;
    *n = count;
    return HL_OK;
}

static int read_made(struct hl_row *r, void *item)
{
    struct made_row *m = item;
    m->made = col_i64(r, 0);
    m->filter_event = col_i64(r, 1);
    size_t len = 0;
    const void *b = col_bytes(r, 3, &len);
    int rc = b ? read_ids(b, len, &m->ids, &m->n, &m->bad) : HL_OK;
    r->oom = rc != HL_OK;
    return rc;
}

static void clear_made(void *item)
{
    free(((struct made_row *)item)->ids);
}

static const struct hl_reader READ_MADE = {sizeof(struct made_row), read_made, clear_made};

/* Appends the ids a statement made to the connection's list for the commit. */
static int keep_made(struct conn *c, const int64_t *ids, size_t n)
{
    if (n == 0)
        return HL_OK;
    if (c->nmade + n > c->capmade) {
        size_t cap = c->capmade ? c->capmade : 64;
        while (cap < c->nmade + n)
            cap *= 2;
        int64_t *grown = realloc(c->made, cap * sizeof(*grown));
        if (!grown)
            return HL_ENOMEM;
        c->made = grown;
        c->capmade = cap;
    }
    memcpy(c->made + c->nmade, ids, n * sizeof(*ids));
    c->nmade += n;
    return HL_OK;
}

/* The event, its deliveries and the NOTIFY for them in one statement (Q_EV_FANOUT). */
static int put_event(struct hl_sess *s, const struct hl_change *ch, int64_t *made,
                     int64_t *filter_event)
{
    const struct hl_event *e = ch->ev;
    struct pg *p = PG(s->st);
    struct hl_arg a[HL_EVENT_ARGS + 5];
    size_t n = HL_EVENT_ARGS;
    hl_event_args(e, a);
    a[n++] = hl_arg_int(hl_now_ms());
    if (ch->only_webhook) {
        a[n++] = hl_arg_int(ch->only_webhook);
    } else {
        a[n++] = hl_arg_int(hl_event_entity(e->type));
        a[n++] = hl_arg_int((int64_t)1 << e->type);
    }
    a[n++] = hl_arg_text(fresh_local(p) ? NULL : CHANNEL); /* NULL: no NOTIFY */
    a[n++] = hl_arg_text(p->node);
    struct made_row got = {0};
    struct hl_rows rows = {.rd = &READ_MADE, .one = &got};
    int rc = sess_run(s, ch->only_webhook ? Q_EV_ONE : Q_EV_FANOUT, a, n, &rows);
    if (rc == HL_OK) {
        *made += got.made;
        *filter_event = got.filter_event;
        /* Out of memory here only leaves these deliveries to the claim without a cursor. */
        struct conn *c = s->conn;
        if (keep_made(c, got.ids, got.n)) {
            hl_warn("postgres: no room to note %zu new deliveries for a claim by id", got.n);
            c->unlisted = 1;
        }
        c->unlisted |= got.bad;
    }
    clear_made(&got);
    return rc;
}

/* ---- the outbox ---- */

static int pg_commit(struct hl_store *base, const struct hl_change *ch, size_t n,
                     const struct hl_idem *idem, int64_t *deliveries)
{
    int64_t made = 0;
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_TX, &s);
    if (rc)
        return rc;
    /* The event statements queued the NOTIFY when they made deliveries for other nodes too;
     * another request (maybe on another node) that took the idempotency key meanwhile makes
     * this one a conflict. The ids made go to this node's claims by id once committed (taken
     * off the connection first: closing the session gives it to another thread). */
    rc = hl_sql_apply(&s, ch, n, idem, &made);
    struct conn *c = s.conn;
    int64_t *ids = c->made;
    size_t nids = c->nmade;
    int unlisted = c->unlisted;
    c->made = NULL;
    c->nmade = c->capmade = 0;
    c->unlisted = 0;
    rc = sess_close(&s, rc);
    if (rc == HL_OK && nids)
        fresh_push(PG(base), ids, nids);
    if (rc == HL_OK && unlisted)
        fresh_drop(PG(base));
    free(ids);
    if (rc == HL_OK) {
        if (deliveries)
            *deliveries += made;
        if (made)
            hl_store_notify(base);
    }
    return rc;
}

/* A commit handed over by hl_store_commit_start (struct hl_backend.commit_start). */
struct started {
    struct started *next;
    const struct hl_change *ch;
    size_t n;
    const struct hl_idem *idem;
    hl_commit_done_fn done;
    void *arg;
};

/* A committer thread: commits what is handed over, oldest first, until the store closes and
 * nothing is left. */
static void *committer_main(void *arg)
{
    struct pg *p = arg;
    pthread_mutex_lock(&p->cq_mu);
    for (;;) {
        while (!p->cq_head && !p->cq_stop)
            pthread_cond_wait(&p->cq_cv, &p->cq_mu);
        struct started *j = p->cq_head;
        if (!j)
            break;
        p->cq_head = j->next;
        if (!p->cq_head)
            p->cq_tail = NULL;
        pthread_mutex_unlock(&p->cq_mu);
        int64_t made = 0;
        int rc = pg_commit(&p->base, j->ch, j->n, j->idem, &made);
        j->done(j->arg, rc, rc ? 0 : made);
        free(j);
        pthread_mutex_lock(&p->cq_mu);
    }
    pthread_mutex_unlock(&p->cq_mu);
    return NULL;
}

/* Hands a commit to the committer threads (started here the first time): the HTTP thread that
 * asked is free at once (the API parks its request until done). Where no committer could start,
 * commits in the caller's thread. */
static int pg_commit_start(struct hl_store *base, const struct hl_change *ch, size_t n,
                           const struct hl_idem *idem, hl_commit_done_fn done, void *arg)
{
    struct pg *p = PG(base);
    struct started *j = calloc(1, sizeof(*j));
    if (!j)
        return HL_ENOMEM;
    *j = (struct started){.ch = ch, .n = n, .idem = idem, .done = done, .arg = arg};
    pthread_mutex_lock(&p->cq_mu);
    while (p->ncommitters < COMMITTERS && !p->cq_stop &&
           hl_thread_start(&p->committers[p->ncommitters], committer_main, p, "hl-pg-commit") == 0)
        p->ncommitters++;
    int queued = p->ncommitters > 0 && !p->cq_stop;
    if (queued) {
        if (p->cq_tail)
            p->cq_tail->next = j;
        else
            p->cq_head = j;
        p->cq_tail = j;
        pthread_cond_signal(&p->cq_cv);
    }
    pthread_mutex_unlock(&p->cq_mu);
    if (!queued) {
        free(j);
        int64_t made = 0;
        int rc = pg_commit(base, ch, n, idem, &made);
        done(arg, rc, rc ? 0 : made);
    }
    return HL_OK;
}

/* Lets the committers finish what was handed over, and stops them. */
static void committers_stop(struct pg *p)
{
    pthread_mutex_lock(&p->cq_mu);
    p->cq_stop = 1;
    pthread_cond_broadcast(&p->cq_cv);
    pthread_mutex_unlock(&p->cq_mu);
    for (int i = 0; i < p->ncommitters; i++)
        pthread_join(p->committers[i], NULL);
    p->ncommitters = 0;
}

/* ---- the dispatcher's side ---- */

/* The claim's parameters in Q_CLAIM's order ($1-$11), and $12 for Q_CLAIM_IDS. */
#define CLAIM_ARGS(c, ids, nids)                                                                   \
    {                                                                                              \
        hl_arg_int((c)->now), hl_arg_int((c)->lease_until), hl_arg_ids((c)->skip, (c)->nskip),     \
            hl_arg_int((int64_t)(c)->max), hl_arg_ids((c)->skip_apps, (c)->nskip_apps),            \
            hl_arg_ids((c)->room_apps, (c)->nrooms), hl_arg_ids((c)->rooms, (c)->nrooms),          \
            hl_arg_int((c)->room_new), hl_arg_ids((c)->room_webhooks, (c)->nwrooms),               \
            hl_arg_ids((c)->wrooms, (c)->nwrooms), hl_arg_int((c)->wroom_new),                     \
            hl_arg_ids(ids, nids)                                                                  \
    }

/* A claim through a cursor: the deliveries this node's commits made, by id (Q_CLAIM_IDS), up
 * to c->max of them in the order they were made. The cursor's left says that some were passed
 * over (a share, a busy webhook, a breaker, a rate limit, ordering, or ids dropped from a full
 * queue): the claim without a cursor takes them. Each id is offered once: sequence ids are
 * handed out at insert, not at commit, so no "above the last id" cursor could be trusted; the
 * queue holds exactly what committed. */
static int claim_ids(struct hl_store *base, const struct hl_claim *c, struct hl_rows *jobs)
{
    struct pg *p = PG(base);
    int64_t *ids = malloc((c->max ? c->max : 1) * sizeof(*ids));
    if (!ids)
        return HL_ENOMEM;
    size_t nids = 0;
    int dropped = 0;
    fresh_take(p, c->max, ids, &nids, &dropped);
    c->fresh->started = 1;
    int rc = HL_OK;
    if (nids) {
        struct hl_arg a[] = CLAIM_ARGS(c, ids, nids);
        rc = hl_sql_once(base, HL_SESS_DISPATCH, Q_CLAIM_IDS, a, HL_NARGS(a), jobs);
    }
    /* A failed claim by id leaves its deliveries to the claim without a cursor, as dropped ids */
    c->fresh->left = dropped || jobs->n < nids || rc != HL_OK;
    free(ids);
    return rc;
}

static int pg_claim(struct hl_store *base, const struct hl_claim *c, struct hl_job **out, size_t *n)
{
    struct hl_rows jobs = {.rd = &hl_read_job};
    /* One statement: its own transaction, on the dispatcher's connection, which commits without
     * waiting for the WAL flush: a lease lost in a server crash only lets the delivery be
     * claimed again (docs/operations.md, "PostgreSQL"). Should reading its rows fail, the
     * leases taken lapse and the deliveries are claimed again. */
    int rc;
    if (c->fresh) {
        rc = claim_ids(base, c, &jobs);
    } else {
        struct hl_arg a[] = CLAIM_ARGS(c, NULL, 0);
        rc = hl_sql_once(base, HL_SESS_DISPATCH, Q_CLAIM, a, HL_NARGS(a) - 1, &jobs);
    }
    if (rc) {
        hl_rows_clear(&jobs);
        return rc;
    }
    *out = jobs.arr;
    *n = jobs.n;
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

/* The webhook's last*At fields, failure run and circuit breaker for one attempt (prev: the
 * webhook's attempt before it in the batch, or NULL); disables the webhook as the
 * attempt says (on 410, or after failing long enough). Sets *disabled when this attempt disabled
 * it. */
static int record_webhook(struct hl_sess *s, const struct hl_attempt *at,
                          const struct hl_attempt *prev, int64_t now, int *disabled,
                          struct hl_alert_mark *m)
{
    struct hl_arg a[] = {hl_arg_int(at->webhook_id), hl_arg_int(at->started_at)};
    int ok = at->outcome == HL_OUT_SUCCESS;
    struct hl_rows rows = {0};
    int rc = sess_run(s, ok ? Q_WH_SUCCESS : Q_WH_FAILURE, a, HL_NARGS(a), &rows);
    /* The alert state is the webhook row's: moved here, in webhook order. A success that left
     * the row alone (no run of failures to end, lastSuccessAt moved within the second) ends no
     * failing spell either: no statement more for the busy webhook's common case. */
    if (rc == HL_OK && (!ok || rows.changed))
        rc = hl_sql_alert_mark(s, at, m);
    if (rc == HL_OK)
        rc = hl_sql_breaker(s, at, prev, now);
    if (rc || ok)
        return rc;
    return hl_sql_disable(s, at, now, disabled);
}

/* The webhooks' side of a batch sorted by webhook (wh): one record_webhook per failure, and one
 * per run of successes of a webhook (the run's latest start standing for all of it: successes
 * after a success change nothing else on the row, and hl_sql_breaker skips them too). */
static int record_webhooks(struct hl_sess *s, const struct hl_attempt *at, size_t n,
                           const struct order *wh, int64_t now, int *disabled,
                           struct hl_alert_mark *marks)
{
    int rc = HL_OK;
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        const struct hl_attempt *cur = &at[wh[i].idx];
        const struct hl_attempt *prev =
            i > 0 && wh[i - 1].key == wh[i].key ? &at[wh[i - 1].idx] : NULL;
        int ok = cur->outcome == HL_OUT_SUCCESS;
        if (ok && prev && prev->outcome == HL_OUT_SUCCESS)
            continue;
        struct hl_attempt one = *cur;
        for (size_t j = i + 1; ok && j < n && wh[j].key == wh[i].key; j++) {
            const struct hl_attempt *next = &at[wh[j].idx];
            if (next->outcome != HL_OUT_SUCCESS)
                break;
            if (next->started_at > one.started_at)
                one.started_at = next->started_at;
        }
        rc = record_webhook(s, &one, prev, now, &disabled[wh[i].idx], &marks[wh[i].idx]);
    }
    return rc;
}

/* ---- arrays in binary (array_recv's form): a batch as one statement's parameters ---- */

/* Most bytes of one batch's arrays (the responses kept are bounded by the dispatcher). */
#define REC_MAX_BYTES (64u << 20)
/* Q_RECORD's arrays and their types. */
#define REC_ARRAYS 9
static const Oid REC_TYPES[REC_ARRAYS] = {OID_INT8,  OID_INT8, OID_INT8, OID_INT8, OID_TEXT,
                                          OID_BYTEA, OID_INT8, OID_INT8, OID_INT8};

/* Starts a one-dimensional array of n elements of type elem. */
static int arr_start(struct hl_buf *b, Oid elem, size_t n)
{
    uint32_t h[5] = {htobe32(1), htobe32(1), htobe32(elem), htobe32((uint32_t)n), htobe32(1)};
    return hl_buf_append(b, h, sizeof(h));
}

/* One element of len bytes, or SQL NULL when data is NULL. */
static int arr_put(struct hl_buf *b, const void *data, size_t len)
{
    uint32_t l = htobe32(data ? (uint32_t)len : UINT32_MAX);
    int rc = hl_buf_append(b, &l, sizeof(l));
    return rc == HL_OK && data && len ? hl_buf_append(b, data, len) : rc;
}

static int arr_i64(struct hl_buf *b, int64_t v)
{
    uint64_t be = htobe64((uint64_t)v);
    return arr_put(b, &be, sizeof(be));
}

/* Field k of Q_RECORD for attempt a. */
static int rec_field(struct hl_buf *b, const struct hl_attempt *a, int k)
{
    switch (k) {
    case 0:
        return arr_i64(b, a->delivery_id);
    case 1:
        return arr_i64(b, a->started_at);
    case 2:
        return arr_i64(b, a->duration_us);
    case 3:
        return arr_i64(b, a->status_code);
    case 4:
        return arr_put(b, a->error, a->error ? strlen(a->error) : 0);
    case 5:
        return arr_put(b, a->response, hl_sql_response_keep(a));
    case 6:
        return arr_i64(b, a->outcome == HL_OUT_SUCCESS ? REC_SUCCESS
                          : a->outcome == HL_OUT_RETRY ? REC_RETRY
                                                       : REC_FAILED);
    case 7:
        return arr_i64(b, a->next_attempt_at);
    default: /* the attempt's webhook, as claimed: no lookup per row */
        return arr_i64(b, a->webhook_id);
    }
}

/* The attempt rows and delivery updates of a batch (in delivery order, dl) in one statement
 * (Q_RECORD), then delivery.exhausted for those that failed for good: what
 * hl_sql_record_delivery does for one attempt, without a round trip per attempt. */
static int record_deliveries(struct hl_sess *s, const struct hl_attempt *at, size_t n,
                             const struct order *dl, int64_t now)
{
    struct hl_buf b;
    hl_buf_init(&b, REC_MAX_BYTES);
    size_t off[REC_ARRAYS + 1];
    int rc = HL_OK;
    for (int k = 0; k < REC_ARRAYS && rc == HL_OK; k++) {
        off[k] = b.len;
        rc = arr_start(&b, REC_TYPES[k], n);
        for (size_t i = 0; i < n && rc == HL_OK; i++)
            rc = rec_field(&b, &at[dl[i].idx], k);
    }
    off[REC_ARRAYS] = b.len;
    struct params pa = {0};
    for (int k = 0; k < REC_ARRAYS && rc == HL_OK; k++) {
        int i = p_next(&pa);
        pa.types[i] = REC_TYPES[k] == OID_INT8   ? OID_INT8_ARRAY
                      : REC_TYPES[k] == OID_TEXT ? OID_TEXT_ARRAY
                                                 : OID_BYTEA_ARRAY;
        pa.values[i] = b.p + off[k];
        pa.lengths[i] = (int)(off[k + 1] - off[k]);
        pa.formats[i] = 1;
    }
    p_i64(&pa, now);
    PGresult *r = NULL;
    if (rc == HL_OK)
        rc = run(PG(s->st), s->conn, Q_RECORD, &pa, &r);
    PQclear(r);
    hl_buf_free(&b);
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        if (at[dl[i].idx].outcome == HL_OUT_FAILED)
            rc = hl_sql_alert_exhausted(s, &at[dl[i].idx], now);
    return rc;
}

/* Records in the sorted order: webhooks, then deliveries, then the parking of what got
 * disabled. On the dispatcher's connection, whose transactions commit without waiting for the
 * WAL flush (synchronous_commit off): a batch of successes only stays that way, because losing
 * it in a server crash leaves its deliveries pending under a lease that lapses, so each is
 * delivered once more and none is lost (docs/operations.md, "PostgreSQL"). A batch with any
 * failure turns the flush back on: a failure's record moves retries, breakers, disables and
 * operational events, which must not be replayed differently. */
static int record_sorted(struct hl_store *base, const struct hl_attempt *at, size_t n,
                         const struct order *wh, const struct order *dl, int *disabled,
                         struct hl_alert_mark *marks)
{
    int64_t now = hl_now_ms();
    int durable = 0;
    for (size_t i = 0; i < n; i++)
        durable |= at[i].outcome != HL_OUT_SUCCESS;
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_DISPATCH, &s);
    if (rc)
        return rc;
    rc = begin(PG(base), s.conn);
    s.tx = rc == HL_OK;
    if (rc == HL_OK && durable)
        rc = sess_run(&s, Q_SYNC_ON, NULL, 0, NULL);
    if (rc == HL_OK)
        rc = record_webhooks(&s, at, n, wh, now, disabled, marks);
    if (rc == HL_OK)
        rc = record_deliveries(&s, at, n, dl, now);
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        if (disabled[wh[i].idx])
            rc = hl_sql_park(&s, at[wh[i].idx].webhook_id);
    /* Operational events (issue 21) of the alert states changed above: inserts only. */
    for (size_t i = 0; i < n && rc == HL_OK; i++)
        rc = hl_sql_alert_emit(&s, at, n, wh[i].idx, &marks[wh[i].idx], now);
    return sess_close(&s, rc);
}

static int pg_record(struct hl_store *base, const struct hl_attempt *at, size_t n)
{
    if (n == 0)
        return HL_OK;
    struct order *wh = calloc(n, sizeof(*wh));
    struct order *dl = calloc(n, sizeof(*dl));
    int *disabled = calloc(n, sizeof(*disabled));
    struct hl_alert_mark *marks = calloc(n, sizeof(*marks));
    int rc = HL_ENOMEM;
    if (wh && dl && disabled && marks) {
        for (size_t i = 0; i < n; i++) {
            wh[i] = (struct order){at[i].webhook_id, i};
            dl[i] = (struct order){at[i].delivery_id, i};
        }
        /* Webhooks, then deliveries, each in id order: the lock order of every transaction
         * here. */
        qsort(wh, n, sizeof(*wh), by_key);
        qsort(dl, n, sizeof(*dl), by_key);
        rc = record_sorted(base, at, n, wh, dl, disabled, marks);
    }
    free(marks);
    free(wh);
    free(dl);
    free(disabled);
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

/* Several nodes share the database by design: there is nothing to hold alone. */
static int pg_lock(struct hl_store *base, char *err, size_t errlen)
{
    (void)base;
    (void)err;
    (void)errlen;
    return HL_OK;
}

/* ---- context-file ingestion ---- */

static int pg_ingest_claim(struct hl_store *base, int64_t now, int64_t lease_until,
                           struct hl_ingest_job *out)
{
    memset(out, 0, sizeof(*out));
    struct hl_arg a[] = {hl_arg_int(now), hl_arg_int(lease_until)};
    struct hl_rows job = {.rd = &hl_read_ingest, .one = out};
    /* One statement: its own transaction (should reading it fail, the lease lapses). */
    int rc = hl_sql_once(base, HL_SESS_WRITE, Q_INGEST_CLAIM, a, HL_NARGS(a), &job);
    return rc == HL_OK && job.n == 0 ? HL_ENOTFOUND : rc;
}

/* ---- space ---- */

static int pg_space(struct hl_store *base, struct hl_store_space *out)
{
    struct hl_rows rows = {.rd = &hl_read_int, .one = &out->bytes};
    int rc = hl_sql_once(base, HL_SESS_READ, Q_DB_SIZE, NULL, 0, &rows);
    out->reclaims = 1; /* autovacuum */
    return rc;
}

/* The tables pruning empties: VACUUM marks their dead rows' space for reuse and ANALYZE keeps
 * the planner's row counts true as they shrink. */
static const char *const PRUNED_TABLES[] = {"events", "deliveries", "attempts", "idempotency"};

/* VACUUM cannot run in a transaction or a prepared statement, and takes as long as the table
 * needs: a connection of its own without the statement timeout. */
static int pg_compact(struct hl_store *base, hl_compact_progress_fn progress, void *arg, char *err,
                      size_t errlen)
{
    struct pg *p = PG(base);
    char why[256] = "";
    PGconn *pg = open_conn(p->conninfo, 0, why, sizeof(why));
    if (!pg) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", why);
        return HL_EUNAVAIL;
    }
    int64_t start = hl_mono_ms();
    int n = (int)(sizeof(PRUNED_TABLES) / sizeof(PRUNED_TABLES[0])), rc = HL_OK;
    for (int i = 0; i < n && rc == HL_OK; i++) {
        char sql[64], phase[64];
        snprintf(sql, sizeof(sql), "VACUUM (ANALYZE) %s", PRUNED_TABLES[i]);
        snprintf(phase, sizeof(phase), "VACUUM %s", PRUNED_TABLES[i]);
        if (progress) {
            struct hl_compact_progress pr = {hl_mono_ms() - start, phase, i, n};
            progress(arg, &pr);
        }
        rc = exec_simple(pg, sql, why, sizeof(why));
    }
    if (rc)
        snprintf(err, errlen, "%s", why);
    PQfinish(pg);
    return rc;
}

/* ---- opening and closing ---- */

static void pg_close(struct hl_store *base)
{
    struct pg *p = PG(base);
    committers_stop(p);
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
    /* Ids this node queued for its own claims and will not claim: another node's claim takes
     * them now rather than at its next sweep. */
    int orphans = p->nfresh > 0 || p->fresh_dropped;
    for (int i = 0; orphans && i < POOL_SIZE; i++) {
        if (p->conns[i].pg && PQstatus(p->conns[i].pg) == CONNECTION_OK) {
            if (notify_all(p, &p->conns[i]))
                hl_warn("postgres: could not wake other nodes for this node's new deliveries");
            orphans = 0;
        }
    }
    for (int i = 0; i < POOL_SIZE; i++) {
        PQfinish(p->conns[i].pg);
        free(p->conns[i].made);
    }
    PQfinish(p->disp.pg);
    free(p->disp.made);
    free(p->fresh);
    pthread_mutex_destroy(&p->fresh_mu);
    pthread_cond_destroy(&p->cq_cv);
    pthread_mutex_destroy(&p->cq_mu);
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

static const struct hl_backend POSTGRES = {
    .open = sess_open,
    .run = sess_run,
    .close = sess_close,
    .wake_all = wake_all,
    .event = put_event,
    .destroy = pg_close,
    .lock = pg_lock,
    .commit = pg_commit,
    .commit_start = pg_commit_start,
    .claim = pg_claim,
    .record = pg_record,
    .release_leases = pg_release_leases,
    .ingest_claim = pg_ingest_claim,
    .space = pg_space,
    .release = NULL, /* autovacuum gives the space of pruned rows to new ones */
    .compact = pg_compact,
    .one_writer = 0,
};

int hl_postgres_exists(const char *conninfo, char *err, size_t errlen)
{
    char why[256] = "";
    PGconn *pg = open_conn(conninfo, STATEMENT_TIMEOUT_MS, why, sizeof(why));
    if (!pg) {
        snprintf(err, errlen, "cannot connect to PostgreSQL: %s", why);
        return HL_EUNAVAIL;
    }
    /* to_regclass: NULL, not an error, when the table is not there */
    PGresult *r = PQexec(pg, "SELECT to_regclass('schema_version') IS NOT NULL");
    int rc = HL_ESTORE;
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1)
        rc = strcmp(PQgetvalue(r, 0, 0), "t") == 0 ? HL_OK : HL_ENOTFOUND;
    if (rc == HL_ENOTFOUND)
        snprintf(err, errlen, "the PostgreSQL database has no hookline schema");
    else if (rc != HL_OK)
        snprintf(err, errlen, "cannot read the PostgreSQL database: %s", PQresultErrorMessage(r));
    PQclear(r);
    PQfinish(pg);
    return rc;
}

int hl_postgres_open(const char *conninfo, struct hl_store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (hl_sql_check(SQL, Q_COUNT, err, errlen))
        return HL_EINVAL;
    struct pg *p = calloc(1, sizeof(*p));
    if (!p) {
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    hl_store_base_init(&p->base, &POSTGRES);
    pthread_mutex_init(&p->mu, NULL);
    pthread_mutex_init(&p->disp_mu, NULL);
    pthread_mutex_init(&p->fresh_mu, NULL);
    pthread_mutex_init(&p->cq_mu, NULL);
    pthread_cond_init(&p->cq_cv, NULL);
    p->fresh = malloc(FRESH_MAX * sizeof(*p->fresh)); /* NULL: every claim by id finds none */
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
    if (hl_thread_start(&p->listener, listen_main, p, "hl-pg-listen") != 0) {
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
