/* SQLite backend: one file, WAL, foreign keys, versioned migrations.
 *
 * Connections: one writer and NREAD readers (WAL lets the readers read while the writer
 * commits), each with its own mutex and its statements prepared once. Reads go to a reader, round
 * robin; every write goes to the writer, one at a time, and never waits on the network.
 *
 * Group commit: resource changes (hl_store_commit, hl_store_commit_start) and the dispatcher's
 * attempt records (hl_store_record) queue up; once no batch runs, the request at the head of the
 * queue leads: its waiting caller, or the commit thread for a started request (whose caller, an
 * API request parked meanwhile, does not wait). The leader takes the whole queue and commits it
 * in one transaction, each request under its own savepoint, so one fsync serves everything that
 * arrived during the previous one; then it tells each request its outcome. A request that
 * fails alone is undone alone; an error that ends the whole transaction (a full disk, an I/O error)
 * fails every request of the batch.
 *
 * Checkpoints (copying the WAL back into the database file) run on a thread and connection of
 * their own, never inside a commit (see "checkpoints" below).
 *
 * Claims lease deliveries with synchronous off: a single node drops every lease when it starts,
 * so losing the last ones in a crash changes nothing. If synchronous cannot be turned back on,
 * the writer refuses every write until it can: nothing is committed without fsync.
 *
 * One serving process per file: hl_store_lock takes an flock on "<path>.lock" (sq_lock).
 */
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "common/clock.h"
#include "common/err.h"
#include "common/log.h"
#include "common/thread.h"
#include "store/sql.h"

/* Migration 16: a webhook's delivery counts are counters (sql.h, SQL_CNT_TABLE), kept by a
 * trigger per change of a delivery: its insert, a change of its class as shown, its removal. */
/* clang-format off */
#define MIGRATION_COUNTERS                                                                         \
    SQL_CNT_TABLE("INTEGER", " WITHOUT ROWID")                                                     \
    SQL_CNT_TRIGGER("deliveries_count_insert", "AFTER INSERT ON deliveries",                       \
                    "NEW.webhook_id, 0, " SQL_CNT_EACH(CNT_VAL, "NEW.", ""))                       \
    SQL_CNT_TRIGGER("deliveries_count_update",                                                     \
                    "AFTER UPDATE OF status, attempts, last_status ON deliveries WHEN "            \
                    DL_SHOWN("OLD") " <> " DL_SHOWN("NEW"),                                        \
                    "NEW.webhook_id, 0, " SQL_CNT_EACH(CNT_DIFF, "NEW.", "OLD."))                  \
    SQL_CNT_TRIGGER("deliveries_count_delete", "AFTER DELETE ON deliveries",                       \
                    "OLD.webhook_id, 0, " SQL_CNT_EACH(CNT_VAL, "OLD.", "-"))
/* Migration 17: a delivery's update counts its change of webhook too: its old class leaves
 * the old webhook and its new class joins the new one. */
#define MIGRATION_COUNT_MOVES                                                                      \
    "DROP TRIGGER deliveries_count_update;"                                                        \
    "CREATE TRIGGER deliveries_count_update AFTER UPDATE OF status, attempts, last_status,"        \
    " webhook_id ON deliveries WHEN OLD.webhook_id <> NEW.webhook_id OR "                          \
    DL_SHOWN("OLD") " <> " DL_SHOWN("NEW") " BEGIN "                                               \
    SQL_CNT_UPSERT_INTO "VALUES(OLD.webhook_id, 0, " SQL_CNT_EACH(CNT_VAL, "OLD.", "-") ")"        \
    SQL_CNT_UPSERT_SET "; "                                                                        \
    SQL_CNT_UPSERT_INTO "VALUES(NEW.webhook_id, 0, " SQL_CNT_EACH(CNT_VAL, "NEW.", "") ")"         \
    SQL_CNT_UPSERT_SET "; END;"
/* clang-format on */

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
    "CREATE INDEX deliveries_due ON deliveries(next_attempt_at) WHERE status = " SQL_PENDING ";"
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
    "CREATE INDEX deliveries_wh_due ON deliveries(webhook_id, next_attempt_at) WHERE status "
    "= " SQL_PENDING ";",
    /* 4: every earlier secret whose overlap has not ended signs (store.h, hl_store_rotate_secret);
     * prev_secret_until is now when the last of them stops signing */
    "ALTER TABLE webhooks ADD COLUMN prev_secrets TEXT NOT NULL DEFAULT '';"
    "UPDATE webhooks SET prev_secrets = prev_secret_until || ' ' || prev_secret"
    " WHERE prev_secret IS NOT NULL AND prev_secret_until > 0;"
    "ALTER TABLE webhooks DROP COLUMN prev_secret;",
    /* 5: retention: old events and expired idempotency keys are found without a scan */
    "CREATE INDEX events_created ON events(created_at);"
    "CREATE INDEX idempotency_created ON idempotency(created_at);",
    /* 6: an app's stored bytes (--max-app-storage) */
    "CREATE INDEX files_app ON files(app_id);",
    /* 7: ingestion: claims counted per file, files being processed counted per app */
    "ALTER TABLE files ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX files_app_state ON files(app_id, state, lease_until);",
    /* 8: the console. Attempts carry their webhook, so a webhook's chart reads its attempts of
     * an hour or a day from one index (which holds what the chart needs); a webhook's deliveries
     * page newest first from an index; the event log searched by tenant from an index; the key
     * that signs portal links, and the links used. */
    "ALTER TABLE attempts ADD COLUMN webhook_id INTEGER;"
    "UPDATE attempts SET webhook_id = (SELECT d.webhook_id FROM deliveries d"
    " WHERE d.id = attempts.delivery_id);"
    "CREATE INDEX attempts_webhook_time ON attempts(webhook_id, started_at, status_code,"
    " duration_us);"
    "CREATE INDEX deliveries_webhook_id ON deliveries(webhook_id, id);"
    "CREATE TABLE console_key(id INTEGER PRIMARY KEY CHECK (id = 1), secret BLOB NOT NULL,"
    " created_at INTEGER NOT NULL);"
    "CREATE TABLE portal_used(token_id TEXT PRIMARY KEY, expires_at INTEGER NOT NULL);"
    "CREATE INDEX portal_used_expiry ON portal_used(expires_at);"
    "CREATE INDEX events_tenant ON events(app_id, tenant, id);",
    /* 9: /metrics' gauges read the queue and webhooks by state from indexes (sql.h) */
    SQL_GAUGE_INDEXES,
    /* 10: delivery policy (issue 19): a webhook's filter on events and its static headers, as
     * compact JSON text; NULL when none */
    "ALTER TABLE webhooks ADD COLUMN filter TEXT;"
    "ALTER TABLE webhooks ADD COLUMN headers TEXT;"
    "CREATE INDEX webhooks_filtered ON webhooks(app_id) WHERE filter IS NOT NULL;",
    /* 11: alerting (issue 21): operational webhooks, their alert state, silence alerts */
    "ALTER TABLE webhooks ADD COLUMN kind INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN alert_state INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN alert_since INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN silence_ms INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN expect_events INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN silent_at INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX webhooks_silence ON webhooks(id) WHERE silence_ms > 0;",
    /* 12: the circuit breaker (issue 19): consecutive failed attempts, when it opened (0:
     * closed), when its next probe may go and how many probes failed since it opened */
    "ALTER TABLE webhooks ADD COLUMN breaker_fails INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN breaker_opened_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN breaker_probe_at INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN breaker_probes INTEGER NOT NULL DEFAULT 0;",
    /* 13: rateLimit (issue 19): the limit (0: none) and its theoretical next time in
     * microseconds (SQL_RATE_ALLOW); the webhooks that may hold deliveries back are found
     * without a scan */
    "ALTER TABLE webhooks ADD COLUMN rate_limit INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN rate_tat INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX webhooks_held ON webhooks(id) WHERE breaker_opened_at <> 0 OR rate_limit > 0;",
    /* 14: ordering (issue 19): a webhook's (0 none, 1 per resource) and the resource a delivery
     * waits its turn on; the deliveries that may hold others back are found by one seek */
    "ALTER TABLE webhooks ADD COLUMN ordering INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE deliveries ADD COLUMN order_key TEXT;"
    "CREATE INDEX deliveries_order ON deliveries(webhook_id, order_key, id)"
    " WHERE order_key IS NOT NULL AND status IN (" SQL_PENDING ", " SQL_PAUSED ");",
    /* 15: every list reads from an index that serves its filter and its order (issue 20).
     * Deliveries carry their event's type, so that a webhook's deliveries of one type are
     * found without reading every event; the event log by type and by tenant, a webhook's
     * deliveries by id, type and time, the resources of a tenant. (The event log by time uses
     * events_created.) */
    "ALTER TABLE deliveries ADD COLUMN event_type INTEGER NOT NULL DEFAULT -1;"
    "UPDATE deliveries SET event_type = (SELECT e.type FROM events e WHERE e.id = event_id);"
    "CREATE INDEX events_type ON events(app_id, type, id);"
    "CREATE INDEX deliveries_webhook_type ON deliveries(webhook_id, event_type, id);"
    "CREATE INDEX deliveries_webhook_time ON deliveries(webhook_id, created_at, id);"
    "CREATE INDEX resources_tenant ON resources(app_id, kind, tenant, id);"
    /* a list by status checks "failing" on the index, not on each row: pending ones are
     * listed past any number of failing ones */
    "DROP INDEX deliveries_webhook;"
    "CREATE INDEX deliveries_webhook ON deliveries(webhook_id, status, id, attempts, last_status);"
    /* The failing: few, unless an endpoint is down; with the columns of their condition, so that
     * SQLite counts them from the index alone. */
    "CREATE INDEX deliveries_failing ON deliveries(webhook_id, id, status, attempts, last_status)"
    " WHERE " SQL_FAILING_ROWS("") ";",
    /* 16: a webhook's delivery counts are counters (MIGRATION_COUNTERS) */
    MIGRATION_COUNTERS,
    /* 17: a delivery's change of webhook counted (MIGRATION_COUNT_MOVES) */
    MIGRATION_COUNT_MOVES,
    /* 18: deferred fan-out (store/defer.c): a deferring webhook's deliveries are owed rows,
     * keyed by the event first so that a change's rows for every such webhook land on one
     * page; owed counts them, and every one of them has an event id above owed_after. */
    "ALTER TABLE webhooks ADD COLUMN deferring INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN owed INTEGER NOT NULL DEFAULT 0;"
    "ALTER TABLE webhooks ADD COLUMN owed_after INTEGER NOT NULL DEFAULT 0;"
    "CREATE INDEX webhooks_deferring ON webhooks(id) WHERE deferring <> 0;"
    "CREATE TABLE owed(event_id INTEGER NOT NULL REFERENCES events(id),"
    " webhook_id INTEGER NOT NULL REFERENCES webhooks(id), PRIMARY KEY(event_id, webhook_id))"
    " WITHOUT ROWID;"
    "CREATE TRIGGER owed_count_insert AFTER INSERT ON owed BEGIN"
    " UPDATE webhooks SET owed = owed + 1, owed_after = min(owed_after, NEW.event_id - 1)"
    " WHERE id = NEW.webhook_id; END;"
    "CREATE TRIGGER owed_count_delete AFTER DELETE ON owed BEGIN"
    " UPDATE webhooks SET owed = owed - 1 WHERE id = OLD.webhook_id; END;",
};
#define NMIGRATIONS (sizeof(MIGRATIONS) / sizeof(MIGRATIONS[0]))

/* This backend's own queries, after the shared ones. */
enum {
    Q_BEGIN = HL_Q_SHARED,
    Q_BEGIN_READ,
    Q_COMMIT,
    Q_ROLLBACK,
    Q_SAVEPOINT,
    Q_ROLLBACK_TO,
    Q_RELEASE_SP,
    Q_EV_INSERT,
    Q_DELIV_FANOUT,
    Q_OWE_FANOUT,
    Q_CLAIM_SELECT,
    Q_CLAIM_NEW,
    Q_CLAIM_PICK,
    Q_MAX_DELIVERY,
    Q_FRESH_HOLD,
    Q_CLAIM_LEASE,
    Q_CLAIM_HELD,
    Q_WH_ATTEMPTS,
    Q_RELEASE,
    Q_RELEASE_FILES,
    Q_INGEST_SELECT,
    Q_INGEST_LEASE,
    Q_COUNT
};

/* What the fair shares of a claim allow of candidates cand(id, due, wid, app, rw, allow), rw
 * being a row's rank within its webhook and allow how many its rate limit lets it have: fit
 * holds the rows within their webhook's room (?9, ?10, and ?11 for the others: struct hl_claim)
 * and its allowance; ranked(id, due, app, ra) ranks them within their app (each
 * statement says in which order); turn leaves out those beyond their app's room (?6, ?7, and ?8
 * for the others). */
#define SHARES_FIT                                                                                 \
    "wroom(wid, n) AS (SELECT a.value, r.value FROM json_each(?9) a"                               \
    " JOIN json_each(?10) r ON r.key = a.key),"                                                    \
    " fit AS (SELECT c.id, c.due, c.app, c.rw FROM cand c LEFT JOIN wroom ON wroom.wid = c.wid"    \
    " WHERE (?11 = 0 OR c.rw <= coalesce(wroom.n, ?11)) AND c.rw <= c.allow),"
#define SHARES_TURN                                                                                \
    " room(app, n) AS (SELECT a.value, r.value FROM json_each(?6) a"                               \
    " JOIN json_each(?7) r ON r.key = a.key),"                                                     \
    " turn AS (SELECT k.id, k.due, k.ra FROM ranked k LEFT JOIN room ON room.app = k.app"          \
    " WHERE ?8 = 0 OR k.ra <= coalesce(room.n, ?8))"
/* The webhooks without a filter that get an event: its app ?3, entity bit ?4, type bit ?5. */
#define FANOUT_MATCH                                                                               \
    "app_id = ?3 AND active = 1 AND deleted_at = 0 AND (entities & ?4) != 0"                       \
    " AND (event_types = 0 OR (event_types & ?5) != 0) AND filter IS NULL"
#define ORDER_RESOURCE HL_XSTR(HL_ORDER_RESOURCE)
/* Whether event ev is still owed to a deferring webhook: retention keeps it and its rows. */
#define OWED(ev) "EXISTS (SELECT 1 FROM owed ow WHERE ow.event_id = " ev ")"
#define OWED_E OWED("e.id")
/* owed_after while nothing is owed: the first owed row sets it below itself. */
#define OWED_NONE "9223372036854775807"
/* A claimed job's columns (HL_JOB_COLS) at the claim's time ?1. */
#define CLAIM_COLS HL_JOB_COLS("?1")
/* The claim's breaker gate and rate allowance (sql.h) of webhook w. */
#define BREAKER_GATE SQL_BREAKER_GATE("w.", "?1")
#define RATE_ALLOW SQL_RATE_ALLOW("w.", "?1 * 1000")
#define ORDER_FREE SQL_ORDER_FREE("d.")
#define ORDER_FREE2 SQL_ORDER_FREE("d2.")
#define ORDER_FREE_P SQL_ORDER_FREE("p.")
#define PER_WEBHOOK HL_XSTR(HL_CLAIM_PER_WEBHOOK)

static const char *const SQL[Q_COUNT] = {
    [HL_Q_APP_INSERT] = "INSERT INTO apps(uid, name, created_at) VALUES(?1, ?2, ?3) RETURNING id",
    [HL_Q_APP_GET] = "SELECT " HL_APP_COLS " FROM apps WHERE uid = ?1",
    [HL_Q_APP_LIST] = "SELECT " HL_APP_COLS " FROM apps ORDER BY id",
    [HL_Q_KEY_INSERT] = "INSERT INTO api_keys(uid, app_id, hash, prefix, created_at)"
                        " VALUES(?1, ?2, ?3, ?4, ?5)",
    [HL_Q_KEY_LOOKUP] = "SELECT a.id, a.uid, a.name, a.created_at, k.hash, k.uid FROM api_keys k"
                        " JOIN apps a ON a.id = k.app_id WHERE k.hash = ?1"
                        " AND k.revoked_at IS NULL",
    [HL_Q_KEY_REVOKE] = "UPDATE api_keys SET revoked_at = ?2 WHERE uid = ?1"
                        " AND revoked_at IS NULL",
    [HL_Q_KEY_LIST] = "SELECT k.uid, k.app_id, a.uid, k.prefix, k.created_at,"
                      " coalesce(k.revoked_at, 0) FROM api_keys k JOIN apps a ON a.id = k.app_id"
                      " WHERE ?1 = 0 OR k.app_id = ?1 ORDER BY k.id",
    [HL_Q_WH_INSERT] = "INSERT INTO webhooks(uid, app_id, url, description, entities, event_types,"
                       " active, secret, created_at, updated_at, filter, headers)"
                       " VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?9, ?10, ?11) RETURNING id",
    [HL_Q_WH_GET] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1 AND uid = ?2"
                    " AND deleted_at = 0",
    /* The writer's transaction (BEGIN IMMEDIATE) already keeps every other writer out. */
    [HL_Q_WH_GET_LOCKED] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1"
                           " AND uid = ?2 AND deleted_at = 0",
    [HL_Q_WH_GET_ANY] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1 AND uid = ?2",
    [HL_Q_WH_LIST] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE app_id = ?1 AND id > ?2"
                     " AND deleted_at = 0 AND kind = ?4 ORDER BY id LIMIT ?3",
    [HL_Q_WH_UPDATE] =
        "UPDATE webhooks SET url = ?3, description = ?4, entities = ?5,"
        " event_types = ?6, active = ?7, updated_at = ?8, filter = ?9, headers = ?10,"
        " disabled_at = CASE WHEN ?7 THEN 0 ELSE disabled_at END,"
        " disabled_reason = CASE WHEN ?7 THEN NULL ELSE disabled_reason END,"
        " failing_since = CASE WHEN ?7 AND NOT active THEN 0 ELSE failing_since "
        "END," SQL_BREAKER_RESET("(?7 AND NOT active) OR url <> ?3") " WHERE app_id = ?1 AND uid = "
                                                                     "?2 AND deleted_at = 0",
    [HL_Q_WH_PAUSE_DELIVERIES] = "UPDATE deliveries SET status = " SQL_PAUSED
                                 " WHERE webhook_id = ?1 AND status = " SQL_PENDING,
    [HL_Q_WH_RESUME_DELIVERIES] =
        "UPDATE deliveries SET status = " SQL_PENDING ", next_attempt_at = ?2 WHERE webhook_id = ?1"
        " AND status = " SQL_PAUSED,
    [HL_Q_WH_DELETE] = "UPDATE webhooks SET deleted_at = ?3, active = 0"
                       " WHERE app_id = ?1 AND uid = ?2 AND deleted_at = 0",
    [HL_Q_WH_CANCEL_DELIVERIES] =
        "UPDATE deliveries SET status = " SQL_CANCELLED ", lease_until = 0"
        " WHERE webhook_id = (SELECT id FROM webhooks WHERE uid = ?1)"
        " AND status IN (" SQL_PENDING ", " SQL_PAUSED ")",
    [HL_Q_WH_GONE] = "UPDATE webhooks SET active = 0, disabled_at = ?2, disabled_reason = ?3"
                     " WHERE id = ?1 AND active = 1",
    /* ?2: the attempt succeeded, ?3 now, ?4 failures that open the breaker (0: never), ?5
     * the next probe, ?6 the attempt was a probe (struct hl_attempt's breaker_* fields) */
    [HL_Q_WH_BREAKER] =
        "UPDATE webhooks SET breaker_fails = CASE WHEN ?2 THEN 0 ELSE breaker_fails + 1 END,"
        " breaker_opened_at = CASE WHEN ?2 THEN 0 WHEN breaker_opened_at = 0 AND ?4 > 0"
        " AND breaker_fails + 1 >= ?4 THEN ?3 ELSE breaker_opened_at END,"
        " breaker_probe_at = CASE WHEN ?2 THEN 0 WHEN breaker_opened_at = 0 OR ?6 THEN ?5"
        " ELSE breaker_probe_at END,"
        " breaker_probes = CASE WHEN ?2 OR breaker_opened_at = 0 THEN 0"
        " WHEN ?6 THEN breaker_probes + 1 ELSE breaker_probes END"
        " WHERE id = ?1 AND (NOT ?2 OR breaker_fails <> 0 OR breaker_opened_at <> 0)",
    [HL_Q_WH_POLICY] = "UPDATE webhooks SET rate_limit = ?2, ordering = ?3 WHERE id = ?1",
    [HL_Q_NEXT_RELEASE] = SQL_NEXT_RELEASE("?"),
    [HL_Q_WH_AUTODISABLE] = "UPDATE webhooks SET active = 0, disabled_at = ?2,"
                            " disabled_reason = ?3 WHERE id = ?1 AND active = 1"
                            " AND failing_since > 0 AND failing_since <= ?4",
    [HL_Q_RES_GET] = "SELECT " HL_RESOURCE_COLS " FROM resources WHERE app_id = ?1 AND kind = ?2"
                     " AND uid = ?3",
    [HL_Q_RES_LIST] = RES_LIST_SQL("?", "", ""),
    [HL_Q_RES_LIST_TENANT] = RES_LIST_SQL("?", "", " AND tenant = ?4"),
    [HL_Q_RES_INSERT] = "INSERT INTO resources(uid, app_id, kind, parent_uid, tenant, body,"
                        " version, created_at, updated_at)"
                        " VALUES(?1, ?2, ?3, ?4, ?5, ?6, 1, ?7, ?8)",
    [HL_Q_RES_UPDATE] = "UPDATE resources SET tenant = ?4, body = ?5, version = version + 1,"
                        " updated_at = ?6 WHERE app_id = ?1 AND uid = ?2 AND version = ?3",
    [HL_Q_RES_DELETE] = "DELETE FROM resources WHERE app_id = ?1 AND uid = ?2 AND version = ?3",
    [HL_Q_RES_EXISTS] = "SELECT 1 FROM resources WHERE app_id = ?1 AND uid = ?2",
    [HL_Q_FILE_INSERT] = "INSERT INTO files(uid, app_id, path, size, sha256, created_at)"
                         " VALUES(?1, ?2, ?3, ?4, ?5, ?6)",
    [HL_Q_FILE_DELETE] = "DELETE FROM files WHERE uid = ?1",
    [HL_Q_CHUNKS_DELETE] = "DELETE FROM chunks WHERE file_uid = ?1",
    [HL_Q_CHUNK_INSERT] = "INSERT INTO chunks(file_uid, idx, offset, text)"
                          " VALUES(?1, ?2, ?3, ?4)",
    [HL_Q_FILE_DONE] = "UPDATE files SET state = 2, lease_until = 0 WHERE uid = ?1",
    [HL_Q_FILE_RENEW] = "UPDATE files SET lease_until = ?3 WHERE uid = ?1 AND attempts = ?2"
                        " AND state = 1",
    [HL_Q_FILE_RELEASE] = "UPDATE files SET lease_until = 0, attempts = attempts - ?3"
                          " WHERE uid = ?1 AND attempts = ?2 AND state = 1",
    [HL_Q_IDEM_INSERT] = "INSERT INTO idempotency(app_id, key, request_hash, status, response,"
                         " created_at) VALUES(?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(app_id, key)"
                         " DO UPDATE SET request_hash = excluded.request_hash,"
                         " status = excluded.status, response = excluded.response,"
                         " created_at = excluded.created_at WHERE idempotency.created_at < ?7",
    [HL_Q_IDEM_GET] = "SELECT request_hash, status, response FROM idempotency WHERE app_id = ?1"
                      " AND key = ?2 AND created_at >= ?3",
    [HL_Q_EV_LIST] = EV_LIST_SQL("?", "", ""),
    [HL_Q_EV_LIST_TYPE] = EV_LIST_SQL("?", "", " AND type = ?2"),
    [HL_Q_EV_LIST_TENANT] = EV_LIST_SQL("?", "", " AND tenant = ?3"),
    /* Without statistics SQLite would take the app's index and sort the window. */
    [HL_Q_EV_LIST_TIME] = EV_LIST_TIME_SQL("?", "", " INDEXED BY events_created"),
    [HL_Q_EV_AT] = "SELECT created_at FROM events WHERE id = ?2 AND app_id = ?1",
    [HL_Q_EV_GET] = "SELECT " HL_EVENT_COLS " FROM events WHERE app_id = ?1 AND uid = ?2",
    [HL_Q_ATTEMPT_INSERT] = "INSERT INTO attempts(delivery_id, started_at, duration_us,"
                            " status_code, error, response, webhook_id) VALUES(?1, ?2, ?3, ?4,"
                            " ?5, ?6, (SELECT webhook_id FROM deliveries WHERE id = ?1))",
    [HL_Q_DELIV_SUCCESS] = "UPDATE deliveries SET status = " SQL_SUCCEEDED
                           ", attempts = attempts + 1, last_status = ?2, last_error = NULL,"
                           " delivered_at = ?3, lease_until = 0 WHERE id = ?1 AND status IN"
                           " (" SQL_PENDING ", " SQL_FAILED ", " SQL_PAUSED ")",
    [HL_Q_DELIV_RETRY] = "UPDATE deliveries SET attempts = attempts + 1, last_status = ?2,"
                         " last_error = ?3, next_attempt_at = ?4, lease_until = 0"
                         " WHERE id = ?1 AND status IN (" SQL_PENDING ", " SQL_PAUSED ")",
    [HL_Q_DELIV_FAILED] = "UPDATE deliveries SET status = " SQL_FAILED
                          ", attempts = attempts + 1, last_status = ?2, last_error = ?3,"
                          " lease_until = 0 WHERE id = ?1 AND status IN"
                          " (" SQL_PENDING ", " SQL_FAILED ", " SQL_PAUSED ")",
    [HL_Q_NEXT_DUE] =
        "SELECT min(d.next_attempt_at) FROM deliveries d WHERE d.status = " SQL_PENDING
        " AND d.lease_until <= ?1",
    [HL_Q_DL_BY_EVENT] = HL_DELIVERY_SELECT " WHERE d.event_id = ?1 ORDER BY d.id",
    [HL_Q_DL_LIST] = DL_LIST_SQL("?", "", ""),
    [HL_Q_DL_LIST_STATUS] = DL_LIST_SQL("?", "", DL_STATUS_SEEK("?")),
    [HL_Q_DL_LIST_FAILING] =
        DL_LIST_SQL("?", " INDEXED BY deliveries_failing", " AND " SQL_FAILING_ROWS("d.")),
    [HL_Q_DL_LIST_TYPE] = DL_LIST_SQL("?", "", " AND d.event_type = ?4"),
    [HL_Q_DL_LIST_TIME] = DL_LIST_TIME_SQL("?"),
    [HL_Q_DL_AT] = "SELECT created_at FROM deliveries WHERE id = ?1",
    [HL_Q_WH_IDS] = "SELECT id FROM webhooks WHERE app_id = ?1 ORDER BY id",
    [HL_Q_DL_GET] = HL_DELIVERY_SELECT " WHERE d.id = ?1 AND w.app_id = ?2",
    [HL_Q_ATT_LIST] = "SELECT started_at, duration_us, status_code, error, response FROM attempts"
                      " WHERE delivery_id = ?1 ORDER BY id",
    [HL_Q_DL_RESEND] =
        "UPDATE deliveries SET status = " SQL_PENDING ", next_attempt_at = ?3, lease_until = 0"
        " WHERE id = ?1 AND lease_until <= ?3 AND webhook_id IN"
        " (SELECT id FROM webhooks WHERE app_id = ?2 AND deleted_at = 0)",
    [HL_Q_RECOVER] = "UPDATE deliveries SET status = " SQL_PENDING
                     ", next_attempt_at = ?4, lease_until = 0 WHERE webhook_id = ?1"
                     " AND status = " SQL_FAILED " AND created_at >= ?2"
                     " AND (?3 = 0 OR created_at < ?3)",
    [HL_Q_RECOVER_FAILING] = SQL_RECOVER_FAILING("?1", "?2", "?3", "?4"),
    [HL_Q_ROTATE] = "UPDATE webhooks SET secret = ?3, prev_secrets = ?4,"
                    " prev_secret_until = ?5, updated_at = ?6 WHERE app_id = ?1 AND uid = ?2"
                    " AND deleted_at = 0",
    [HL_Q_WH_STATS] = SQL_WH_STATS("?"),
    [HL_Q_GAUGE_DELIVERIES] = SQL_GAUGE_DELIVERIES,
    [HL_Q_GAUGE_WEBHOOKS] = SQL_GAUGE_WEBHOOKS,
    [HL_Q_GAUGE_FILES] = SQL_GAUGE_FILES,
    [HL_Q_CHUNK_LIST] = "SELECT c.idx, c.offset, c.text FROM chunks c JOIN files f"
                        " ON f.uid = c.file_uid WHERE f.app_id = ?1 AND c.file_uid = ?2"
                        " AND c.idx > ?3 ORDER BY c.idx LIMIT ?4",
    [HL_Q_FILE_PATH] = "SELECT path FROM files WHERE app_id = ?1 AND uid = ?2",
    [HL_Q_PRUNE_SCAN] = "SELECT e.id, e.created_at, EXISTS (SELECT 1 FROM deliveries d"
                        " WHERE d.event_id = e.id AND d.status IN (" SQL_PENDING ", " SQL_PAUSED
                        ")) OR " OWED_E " FROM events e INDEXED BY events_created"
                        " WHERE e.created_at < ?1 AND (e.created_at, e.id) > (?2, ?3)"
                        " ORDER BY e.created_at, e.id LIMIT ?4",
    /* The writer's transaction (BEGIN IMMEDIATE) already keeps every other writer out. */
    [HL_Q_CNT_FOLD] = "SELECT 1", /* one stripe */
    [HL_Q_PRUNE_GUARD] = "SELECT 1",
    [HL_Q_PRUNE_LOCK] = "SELECT 1 WHERE ?1 IS NOT NULL",
    [HL_Q_PRUNE_ATTEMPTS] =
        "DELETE FROM attempts WHERE delivery_id IN (SELECT d.id FROM deliveries d"
        " WHERE d.event_id IN (SELECT value FROM json_each(?1))"
        " AND NOT EXISTS (SELECT 1 FROM deliveries o WHERE o.event_id = d.event_id"
        " AND o.status IN (" SQL_PENDING ", " SQL_PAUSED "))"
        " AND NOT " OWED("d.event_id") ")",
    [HL_Q_PRUNE_DELIVERIES] =
        "DELETE FROM deliveries WHERE event_id IN (SELECT value FROM json_each(?1))"
        " AND NOT EXISTS (SELECT 1 FROM deliveries o"
        " WHERE o.event_id = deliveries.event_id"
        " AND o.status IN (" SQL_PENDING ", " SQL_PAUSED "))"
        " AND NOT " OWED("deliveries.event_id"),
    [HL_Q_PRUNE_EVENTS] =
        "DELETE FROM events WHERE id IN (SELECT value FROM json_each(?1))"
        " AND NOT EXISTS (SELECT 1 FROM deliveries d WHERE d.event_id = events.id)"
        " AND NOT " OWED("events.id"),
    [HL_Q_PRUNE_COUNT] =
        "SELECT (SELECT count(*) FROM deliveries"
        " WHERE event_id IN (SELECT value FROM json_each(?1))),"
        " (SELECT count(*) FROM attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.event_id IN (SELECT value FROM json_each(?1)))",
    [HL_Q_IDEM_EXPIRE] = "DELETE FROM idempotency WHERE rowid IN (SELECT rowid FROM idempotency"
                         " WHERE created_at < ?1 LIMIT ?2)",
    [HL_Q_IDEM_COUNT] = "SELECT count(*) FROM idempotency WHERE created_at < ?1",
    [HL_Q_OLDEST_EVENT] = "SELECT min(created_at) FROM events",
    [HL_Q_APP_LOCK] = "SELECT id FROM apps WHERE id = ?1",
    [HL_Q_WH_COUNT] = "SELECT count(*) FROM webhooks WHERE app_id = ?1 AND deleted_at = 0",
    [HL_Q_APP_STORAGE] = "SELECT coalesce(sum(size), 0) FROM files WHERE app_id = ?1",
    SQL_CONSOLE_QUERIES("?"),
    SQL_BREAKER_QUERIES("?"),
    [HL_Q_WH_FILTERED] = "SELECT id, filter, deferring FROM webhooks WHERE app_id = ?1"
                         " AND active = 1 AND deleted_at = 0 AND filter IS NOT NULL"
                         " AND (entities & ?2) != 0"
                         " AND (event_types = 0 OR (event_types & ?3) != 0) ORDER BY id",
    [HL_Q_DELIV_INSERT] =
        "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
        " created_at, order_key, event_type) SELECT ?1, id, " SQL_PENDING ", ?3, ?3,"
        " CASE WHEN ordering = " HL_XSTR(HL_ORDER_RESOURCE) " THEN ?4 END, ?5"
                                                            " FROM webhooks WHERE id = ?2",
    [HL_Q_OWE_INSERT] = "INSERT INTO owed(event_id, webhook_id) VALUES(?1, ?2)",

    /* deferred fan-out (store/defer.c) */
    [HL_Q_DEFER_ENTER] =
        "UPDATE webhooks SET deferring = 1, owed_after = " OWED_NONE " WHERE deferring = 0"
        " AND kind = 0 AND active = 1 AND deleted_at = 0 AND id IN"
        " (SELECT webhook_id FROM webhook_counts WHERE pending > ?1)",
    [HL_Q_DEFER_LIST] =
        "SELECT w.id, w.active, w.deleted_at, w.owed, w.owed_after,"
        " coalesce((SELECT sum(c.pending) FROM webhook_counts c"
        " WHERE c.webhook_id = w.id), 0) FROM webhooks w INDEXED BY webhooks_deferring"
        " WHERE w.deferring <> 0 AND w.id > ?1 ORDER BY w.id LIMIT ?2",
    /* In event order, so in the order their changes committed: ordering holds. */
    [HL_Q_DEFER_MOVE] =
        "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at, created_at,"
        " order_key, event_type) SELECT o.event_id, o.webhook_id, " SQL_PENDING ", ?4,"
        " e.created_at, CASE WHEN w.ordering = " ORDER_RESOURCE " THEN e.resource_uid END,"
        " e.type FROM owed o JOIN events e ON e.id = o.event_id JOIN webhooks w"
        " ON w.id = o.webhook_id WHERE o.event_id > ?2 AND o.webhook_id = ?1"
        " ORDER BY o.event_id LIMIT ?3 RETURNING event_id",
    [HL_Q_DEFER_FORGET] =
        "DELETE FROM owed WHERE event_id > ?2 AND event_id <= ?3 AND webhook_id = ?1",
    [HL_Q_DEFER_MARK] = "UPDATE webhooks SET owed_after = ?2 WHERE id = ?1",
    [HL_Q_DEFER_DROP] = "DELETE FROM owed WHERE (event_id, webhook_id) IN (SELECT event_id,"
                        " webhook_id FROM owed WHERE event_id > ?2 AND webhook_id = ?1"
                        " ORDER BY event_id LIMIT ?3)",
    [HL_Q_DEFER_LEAVE] =
        "UPDATE webhooks SET deferring = 0, owed_after = " OWED_NONE " WHERE id = ?1 AND owed = 0",

    /* alerting (issue 21, store/alerts.c) */
    HL_ALERTING_SQL("?", "(SELECT value FROM json_each(?1))", "max")

        [Q_BEGIN] = "BEGIN IMMEDIATE",
    [Q_BEGIN_READ] = "BEGIN DEFERRED", /* its snapshot is taken by the first SELECT */
    [Q_COMMIT] = "COMMIT",
    [Q_ROLLBACK] = "ROLLBACK",
    [Q_SAVEPOINT] = "SAVEPOINT req",
    [Q_ROLLBACK_TO] = "ROLLBACK TO req",
    [Q_RELEASE_SP] = "RELEASE req",
    [Q_EV_INSERT] = "INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at,"
                    " payload) VALUES(?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
    /* order_key: the resource (?6) for webhooks with ordering (SQL_ORDER_FREE) */
    [Q_DELIV_FANOUT] = "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"
                       " created_at, order_key, event_type) SELECT ?1, id, " SQL_PENDING ", ?2,"
                       " ?2, CASE WHEN ordering = " ORDER_RESOURCE " THEN ?6 END, ?7"
                       " FROM webhooks WHERE " FANOUT_MATCH " AND deferring = 0",
    /* The same event owed to the deferring webhooks (store/defer.c); ?2 is not used. */
    [Q_OWE_FANOUT] = "INSERT INTO owed(event_id, webhook_id) SELECT ?1, id FROM webhooks"
                     " INDEXED BY webhooks_deferring WHERE " FANOUT_MATCH " AND deferring <> 0",
    /* Webhook by webhook, at most HL_CLAIM_PER_WEBHOOK apiece: a backlog on one endpoint costs
     * one index probe, not a scan of its rows, and cannot crowd out the rest. The webhooks are
     * those with pending deliveries, found by skipping through the partial index (one seek
     * each), so idle webhooks cost nothing however many there are. Their due deliveries are
     * then taken in turns, no webhook and no app beyond its room (SHARES): the first of every
     * app, then the second, ..., and within an app one of each of its webhooks in turn. */
    [Q_CLAIM_SELECT] =
        "WITH RECURSIVE wh(id) AS (SELECT (SELECT min(webhook_id) FROM deliveries"
        " INDEXED BY deliveries_wh_due WHERE status = " SQL_PENDING ") UNION ALL"
        " SELECT (SELECT min(webhook_id) FROM deliveries INDEXED BY deliveries_wh_due"
        " WHERE status = " SQL_PENDING " AND webhook_id > wh.id) FROM wh"
        " WHERE wh.id IS NOT NULL),"
        " cand AS (SELECT d.id AS id, d.next_attempt_at AS due, w.id AS wid, w.app_id AS app,"
        " row_number() OVER (PARTITION BY w.id ORDER BY d.next_attempt_at, d.id) AS rw,"
        " " RATE_ALLOW " AS allow"
        " FROM wh CROSS JOIN webhooks w CROSS JOIN deliveries d"
        " WHERE w.id = wh.id AND w.active = 1 AND w.deleted_at = 0 AND " BREAKER_GATE
        " AND w.id NOT IN (SELECT value FROM json_each(?2))"
        " AND w.app_id NOT IN (SELECT value FROM json_each(?5))"
        " AND d.id IN (SELECT d2.id FROM deliveries d2 WHERE d2.webhook_id = w.id"
        " AND d2.status = " SQL_PENDING " AND d2.next_attempt_at <= ?1 AND d2.lease_until <= ?1"
        " AND " ORDER_FREE2 " ORDER BY d2.next_attempt_at LIMIT " PER_WEBHOOK ")"
        " AND (w.breaker_opened_at = 0 OR d.id = (SELECT p.id FROM deliveries p"
        " WHERE p.webhook_id = w.id AND p.status = " SQL_PENDING " AND p.next_attempt_at <= ?1"
        " AND p.lease_until <= ?1 AND " ORDER_FREE_P
        " ORDER BY p.next_attempt_at LIMIT 1))), " SHARES_FIT " ranked AS (SELECT id, due, app,"
        " row_number() OVER (PARTITION BY app ORDER BY rw, due, id) AS ra FROM fit)," SHARES_TURN
        " SELECT " CLAIM_COLS " FROM turn t CROSS JOIN deliveries d CROSS JOIN webhooks w"
        " CROSS JOIN events e WHERE d.id = t.id AND w.id = d.webhook_id AND e.id = d.event_id"
        " ORDER BY t.ra, t.due, t.id LIMIT ?3",
    /* The ids of the deliveries made since the last claim of this kind, in id order (a rowid
     * range above the cursor ?4); Q_CLAIM_PICK takes what the shares allow of them. */
    [Q_CLAIM_NEW] = "SELECT d.id FROM deliveries d CROSS JOIN webhooks w"
                    " WHERE d.id > ?4 AND d.status = " SQL_PENDING " AND " ORDER_FREE
                    " AND d.next_attempt_at <= ?1 AND d.lease_until <= ?1"
                    " AND w.id = d.webhook_id AND w.active = 1 AND w.deleted_at = 0"
                    " AND w.breaker_opened_at = 0" /* probes: Q_CLAIM_SELECT */
                    " AND w.id NOT IN (SELECT value FROM json_each(?2))"
                    " AND w.app_id NOT IN (SELECT value FROM json_each(?5))"
                    " ORDER BY d.id LIMIT ?3",
    [Q_CLAIM_PICK] =
        "WITH cand AS (SELECT d.id AS id, d.id AS due, w.id AS wid, w.app_id AS app,"
        " row_number() OVER (PARTITION BY w.id ORDER BY d.id) AS rw,"
        /* rate-limited webhooks' are left to Q_CLAIM_SELECT, which takes their allowance; the
         * others' are bounded by their shares (fit), not by HL_CLAIM_PER_WEBHOOK: that bounds
         * the walk over webhooks, and here would leave a busy webhook's rest to it */
        " CASE WHEN w.rate_limit = 0 THEN ?3 ELSE 0 END AS allow"
        " FROM json_each(?12) j CROSS JOIN deliveries d CROSS JOIN webhooks w"
        " WHERE d.id = j.value AND w.id = d.webhook_id), " SHARES_FIT
        " ranked AS (SELECT id, due, app,"
        " row_number() OVER (PARTITION BY app ORDER BY id) AS ra FROM fit)," SHARES_TURN
        " SELECT " CLAIM_COLS " FROM turn t CROSS JOIN deliveries d CROSS JOIN webhooks w"
        " CROSS JOIN events e WHERE d.id = t.id AND w.id = d.webhook_id AND e.id = d.event_id"
        " ORDER BY t.id",
    [Q_MAX_DELIVERY] = "SELECT coalesce(max(id), 0) FROM deliveries",
    /* ?1 now, ?4 the cursor (Q_CLAIM_NEW's arguments): the first delivery made since that is not
     * due yet at now and was never tried (a retry's later time must not hold the cursor back),
     * due within 10 s of now (a commit racing the claim, not a clock stepped back) */
    [Q_FRESH_HOLD] = "SELECT coalesce(min(id), 0) FROM deliveries WHERE id > ?4"
                     " AND status = " SQL_PENDING " AND attempts = 0"
                     " AND next_attempt_at > ?1 AND next_attempt_at <= ?1 + 10000",
    [Q_CLAIM_LEASE] = "UPDATE deliveries SET lease_until = ?2"
                      " WHERE id IN (SELECT value FROM json_each(?1))",
    /* The webhooks ?1 (one entry per delivery claimed) that a claim at ?3 holds back: an open
     * breaker's probe was claimed, so no other until its lease ?2 ends (SQL_BREAKER_GATE); a
     * rate limit's tokens were taken (SQL_RATE_ALLOW). */
    [Q_CLAIM_HELD] = "UPDATE webhooks SET breaker_probe_at = CASE WHEN breaker_opened_at <> 0"
                     " THEN ?2 ELSE breaker_probe_at END,"
                     " rate_tat = CASE WHEN rate_limit > 0 THEN max(rate_tat, ?3 * 1000)"
                     " + (SELECT count(*) FROM json_each(?1) j WHERE j.value = webhooks.id)"
                     " * " SQL_RATE_STEP("") " ELSE rate_tat END"
                                             " WHERE id IN (SELECT value FROM json_each(?1))",
    /* One update per webhook and batch (see record_webhooks): ?5 says how the batch ended: 1 in
     * success, 2 in failures after a success (a new run began at ?6), 0 in failures only. */
    [Q_WH_ATTEMPTS] = "UPDATE webhooks SET last_triggered_at = max(last_triggered_at, ?2),"
                      " last_success_at = max(last_success_at, ?3),"
                      " last_failure_at = max(last_failure_at, ?4),"
                      " failing_since = CASE WHEN ?5 = 1 THEN 0 WHEN ?5 = 2 THEN ?6"
                      " WHEN failing_since = 0 THEN ?6 ELSE failing_since END WHERE id = ?1",
    [Q_RELEASE] = "UPDATE deliveries SET lease_until = 0 WHERE lease_until != 0",
    [Q_RELEASE_FILES] = "UPDATE files SET lease_until = 0 WHERE lease_until != 0",
    [Q_INGEST_SELECT] = "SELECT " HL_INGEST_COLS(
        "f.attempts + 1") " FROM files f"
                          " JOIN apps a ON a.id = f.app_id JOIN resources r ON r.uid = f.uid"
                          " WHERE f.state < 2 AND f.lease_until <= ?1"
                          " ORDER BY " HL_INGEST_ORDER("?1") " LIMIT 1",
    [Q_INGEST_LEASE] = "UPDATE files SET state = 1, lease_until = ?2, attempts = attempts + 1"
                       " WHERE uid = ?1",
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
    /* Started (hl_store_commit_start): the commit thread calls done and frees the request. */
    hl_commit_done_fn done_fn;
    void *done_arg;
    /* Else its caller waits on cv (under q_mu) until done is set. */
    int done;
    pthread_cond_t cv;
    struct commit_req *next;
};

#define NREAD 4

/* The store: one writer connection, a few readers, and the queue of the group commit. */
struct sqdb {
    struct hl_store base;
    struct sq w;
    struct sq r[NREAD];
    unsigned next_read;
    int sync_lost; /* the writer could not turn synchronous back on (guarded by w.mu) */
    /* The writer is handed out in turn, first come first served (writer_take): the commit
     * thread, which asks for it again as soon as it lets it go, never starves a claim. */
    pthread_mutex_t turn_mu;
    pthread_cond_t turn_cv;
    uint64_t turn_next, turn_now;
    pthread_mutex_t q_mu;
    pthread_cond_t q_cv; /* the commit thread waits here for a started request to lead */
    struct commit_req *q_head, *q_tail;
    int committing; /* a batch runs */
    /* hl_store_claim_hook's: held by a batch from its start until its claim is handed over. */
    pthread_mutex_t hook_mu;
    struct hl_claim_hook hook; /* begin NULL: none */
    int q_stop;                /* the commit thread ends once the queue is empty */
    int q_running;             /* the commit thread was started */
    pthread_t q_thread;
    /* The checkpointer (ck_run) and what the writer's WAL hook tells it, under ck_mu. */
    struct sq ck;
    pthread_mutex_t ck_mu;
    pthread_cond_t ck_cv;
    pthread_mutex_t ck_turn; /* held by whoever uses ck or checkpoints; after w.mu if both */
    int ck_want;             /* CK_PAGES frames were written since the last pass */
    int ck_pages, ck_seen;   /* frames in the WAL at the last commit; at the last pass */
    uint64_t ck_gen;         /* WAL restarts seen: ck_seen counts in the current one */
    int ck_compacting;       /* sq_compact holds ck_turn (set and read under w.mu) */
    int ck_stop;             /* the checkpointer ends */
    int ck_running;          /* the checkpointer was started */
    pthread_t ck_thread;
    char *path;
    int lock_fd; /* hl_store_lock's, or -1 */
    int refused; /* hl_store_lock found another holder: leave the file to it at close */
};

static struct sqdb *DB(struct hl_store *base)
{
    return (struct sqdb *)base;
}

static int fail(struct sq *c, const char *what)
{
    hl_error("sqlite: %s: %s", what, sqlite3_errmsg(c->db));
    return HL_ESTORE;
}

static int exec_sql(struct sq *c, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(c->db, sql, NULL, NULL, &msg) != SQLITE_OK) {
        hl_error("sqlite: %s: %s", sql, msg ? msg : "exec failed");
        sqlite3_free(msg);
        return HL_ESTORE;
    }
    return HL_OK;
}

/* ---- statements ---- */

static int64_t col_i64(const struct hl_row *r, int col)
{
    return sqlite3_column_int64((sqlite3_stmt *)r->res, col);
}

static const void *col_bytes(const struct hl_row *r, int col, size_t *len)
{
    sqlite3_stmt *st = (sqlite3_stmt *)r->res;
    if (sqlite3_column_type(st, col) == SQLITE_NULL)
        return NULL;
    const void *p = sqlite3_column_blob(st, col);
    *len = (size_t)sqlite3_column_bytes(st, col);
    return p ? p : "";
}

static const struct hl_cols COLS = {col_i64, col_bytes};

/* The prepared statement for q, reset and with its bindings cleared. Called under c->mu. */
static sqlite3_stmt *prepared(struct sq *c, int q)
{
    sqlite3_stmt *st = c->stmts[q];
    if (!st) {
        if (sqlite3_prepare_v3(c->db, SQL[q], -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) !=
            SQLITE_OK) {
            hl_error("sqlite: prepare %d: %s", q, sqlite3_errmsg(c->db));
            return NULL;
        }
        c->stmts[q] = st;
    }
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    return st;
}

/* Binds a[0..n) to ?1..?n; each list of ids goes as a JSON array, written into ids and copied
 * by SQLite. */
static int bind(sqlite3_stmt *st, const struct hl_arg *a, size_t n, struct hl_buf *ids)
{
    for (size_t i = 0; i < n; i++) {
        int col = (int)i + 1, r = SQLITE_OK;
        if (a[i].type == HL_ARG_INT) {
            r = sqlite3_bind_int64(st, col, a[i].i);
        } else if (!a[i].p) {
            r = sqlite3_bind_null(st, col);
        } else if (a[i].type == HL_ARG_TEXT) {
            r = sqlite3_bind_text(st, col, a[i].p, (int)a[i].len, SQLITE_STATIC);
        } else if (a[i].type == HL_ARG_BLOB) {
            r = sqlite3_bind_blob(st, col, a[i].p, (int)a[i].len, SQLITE_STATIC);
        } else {
            hl_buf_reset(ids);
            if (hl_ids_text(ids, a[i].p, a[i].len, '[', ']'))
                return HL_EINVAL;
            r = sqlite3_bind_text(st, col, ids->p, (int)ids->len, SQLITE_TRANSIENT);
        }
        if (r != SQLITE_OK)
            return HL_ESTORE;
    }
    return HL_OK;
}

/* Runs query q on connection c (held): the one row fetch of this backend. */
static int conn_run(struct sq *c, int q, const struct hl_arg *a, size_t n, struct hl_rows *rows)
{
    sqlite3_stmt *st = prepared(c, q);
    if (!st)
        return HL_ESTORE;
    struct hl_buf ids;
    hl_buf_init(&ids, 1 << 20);
    struct hl_row row = {.cols = &COLS, .res = st};
    int rc = bind(st, a, n, &ids), r = SQLITE_DONE;
    while (rc == HL_OK && (r = sqlite3_step(st)) == SQLITE_ROW)
        rc = rows ? hl_rows_put(rows, &row) : HL_OK;
    if (rc == HL_OK && r != SQLITE_DONE)
        rc = (r & 0xff) == SQLITE_CONSTRAINT ? HL_ECONFLICT : fail(c, sqlite3_sql(st));
    if (rc == HL_OK && rows)
        rows->changed = sqlite3_changes(c->db);
    /* A statement left mid-result would keep its read transaction, and an old snapshot, open. */
    sqlite3_reset(st);
    hl_buf_free(&ids);
    return rc;
}

/* hl_store_explain: appends the plan of query q with parameters a[0..n) to out. */
static int conn_explain(struct sq *c, int q, const struct hl_arg *a, size_t n, struct hl_buf *out)
{
    struct hl_buf sql, ids;
    hl_buf_init(&sql, 1 << 20);
    hl_buf_init(&ids, 1 << 20);
    sqlite3_stmt *st = NULL;
    int rc = hl_buf_printf(&sql, "EXPLAIN QUERY PLAN %s", SQL[q]);
    if (rc == HL_OK && sqlite3_prepare_v2(c->db, sql.p, -1, &st, NULL) != SQLITE_OK)
        rc = fail(c, SQL[q]);
    if (rc == HL_OK)
        rc = bind(st, a, n, &ids);
    if (rc == HL_OK)
        rc = hl_buf_printf(out, "-- query %d\n", q);
    while (rc == HL_OK && sqlite3_step(st) == SQLITE_ROW)
        rc = hl_buf_printf(out, "%s\n", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
    hl_buf_free(&sql);
    hl_buf_free(&ids);
    return rc;
}

static int conn_exec(struct sq *c, int q)
{
    return conn_run(c, q, NULL, 0, NULL);
}

/* Commits when rc is 0, else rolls back (unless SQLite already did); returns the outcome. */
static int finish(struct sq *c, int rc)
{
    if (rc == HL_OK && (rc = conn_exec(c, Q_COMMIT)) == HL_OK)
        return HL_OK;
    if (!sqlite3_get_autocommit(c->db))
        conn_exec(c, Q_ROLLBACK);
    return rc;
}

/* ---- sessions ---- */

/* The writer commits with fsync only: once a claim could not turn synchronous back on, each use
 * of the writer tries again first, and is refused until it works. Called under w.mu. */
static int writer_ready(struct sqdb *db)
{
    if (!db->sync_lost)
        return HL_OK;
    if (!sqlite3_get_autocommit(db->w.db))
        conn_exec(&db->w, Q_ROLLBACK);
    if (exec_sql(&db->w, "PRAGMA synchronous = FULL")) {
        hl_error("sqlite: synchronous is still off: refusing to write without fsync");
        return HL_ESTORE;
    }
    db->sync_lost = 0;
    hl_warn("sqlite: synchronous is on again; writes resume");
    return HL_OK;
}

/* Turns synchronous back on after writes that needed no fsync; if it cannot, every write is
 * refused until it can (writer_ready). Called under w.mu. */
static int sync_back(struct sqdb *db, const char *after)
{
    if (exec_sql(&db->w, "PRAGMA synchronous = FULL") == HL_OK)
        return HL_OK;
    db->sync_lost = 1;
    hl_error("sqlite: cannot turn synchronous back on after %s: every write is refused until it is",
             after);
    return HL_ESTORE;
}

/* Takes connection c; the writer in turn (see turn_mu). */
static void conn_take(struct sqdb *db, struct sq *c)
{
    if (c == &db->w) {
        pthread_mutex_lock(&db->turn_mu);
        uint64_t mine = db->turn_next++;
        while (db->turn_now != mine)
            pthread_cond_wait(&db->turn_cv, &db->turn_mu);
        pthread_mutex_unlock(&db->turn_mu);
    }
    pthread_mutex_lock(&c->mu);
}

static void conn_give(struct sqdb *db, struct sq *c)
{
    pthread_mutex_unlock(&c->mu);
    if (c == &db->w) {
        pthread_mutex_lock(&db->turn_mu);
        db->turn_now++;
        pthread_cond_broadcast(&db->turn_cv);
        pthread_mutex_unlock(&db->turn_mu);
    }
}

static int sess_open(struct hl_store *base, enum hl_sess_kind kind, struct hl_sess *s)
{
    struct sqdb *db = DB(base);
    struct sq *c = &db->w;
    if (kind == HL_SESS_READ || kind == HL_SESS_DISPATCH || kind == HL_SESS_SNAPSHOT)
        c = &db->r[__atomic_fetch_add(&db->next_read, 1, __ATOMIC_RELAXED) % NREAD];
    conn_take(db, c);
    *s = (struct hl_sess){.st = base, .conn = c};
    int rc = c == &db->w ? writer_ready(db) : HL_OK;
    /* A lazy transaction commits without fsync: the next synced commit syncs the WAL up to and
     * past it. */
    if (rc == HL_OK && kind == HL_SESS_TX_LAZY)
        s->lazy = exec_sql(c, "PRAGMA synchronous = OFF") == HL_OK;
    if (rc == HL_OK && (kind == HL_SESS_TX || kind == HL_SESS_TX_LAZY)) {
        rc = conn_exec(c, Q_BEGIN);
        s->tx = rc == HL_OK;
    } else if (rc == HL_OK && kind == HL_SESS_SNAPSHOT) {
        rc = conn_exec(c, Q_BEGIN_READ);
        s->tx = rc == HL_OK;
    }
    if (rc && s->lazy)
        sync_back(db, "a lazy transaction");
    if (rc)
        conn_give(db, c);
    return rc;
}

static int sess_run(struct hl_sess *s, int q, const struct hl_arg *a, size_t n,
                    struct hl_rows *rows)
{
    int rc = s->st->explain ? conn_explain(s->conn, q, a, n, s->st->explain) : HL_OK;
    return rc ? rc : conn_run(s->conn, q, a, n, rows);
}

static int sess_close(struct hl_sess *s, int rc)
{
    struct sq *c = s->conn;
    if (s->tx)
        rc = finish(c, rc);
    if (s->lazy && sync_back(DB(s->st), "a lazy transaction"))
        rc = rc ? rc : HL_ESTORE;
    conn_give(DB(s->st), c);
    return rc;
}

/* The event, then one delivery per matching webhook (or for the one webhook of a test), or
 * one owed row for a deferring webhook (store/defer.c). */
static int put_event(struct hl_sess *s, const struct hl_change *ch, int64_t *made,
                     int64_t *filter_event)
{
    const struct hl_event *e = ch->ev;
    struct hl_arg a[HL_EVENT_ARGS];
    hl_event_args(e, a);
    int64_t id = 0, now = hl_now_ms();
    struct hl_rows ev = {.rd = &hl_read_int, .one = &id}, dl = {0};
    int rc = sess_run(s, Q_EV_INSERT, a, HL_EVENT_ARGS, &ev);
    if (rc)
        return rc;
    if (ch->only_webhook) {
        /* webhook.test is not ordered: no resource */
        struct hl_arg b[] = {hl_arg_int(id), hl_arg_int(ch->only_webhook), hl_arg_int(now),
                             hl_arg_text(NULL), hl_arg_int(e->type)};
        rc = sess_run(s, HL_Q_DELIV_INSERT, b, HL_NARGS(b), &dl);
    } else {
        struct hl_arg b[] = {hl_arg_int(id),
                             hl_arg_int(now),
                             hl_arg_int(e->app_id),
                             hl_arg_int(hl_event_entity(e->type)),
                             hl_arg_int((int64_t)1 << e->type),
                             hl_arg_text(e->resource_uid),
                             hl_arg_int(e->type)};
        rc = sess_run(s, Q_DELIV_FANOUT, b, HL_NARGS(b), &dl);
        if (rc == HL_OK) /* owed rows are not deliveries: not counted in *made */
            rc = sess_run(s, Q_OWE_FANOUT, b, 5, NULL);
        *filter_event = id; /* asking which filters want it costs no round trip here */
    }
    if (rc == HL_OK)
        *made += dl.changed;
    return rc;
}

/* ---- the dispatcher's records ---- */

/* Disables an attempt's webhook as the attempt says (see hl_sql_disable) and parks its pending
 * deliveries. */
static int disable(struct hl_sess *s, const struct hl_attempt *at, int64_t now)
{
    int disabled = 0;
    int rc = hl_sql_disable(s, at, now, &disabled);
    return rc == HL_OK && disabled ? hl_sql_park(s, at->webhook_id) : rc;
}

/* One webhook's attempts of a batch: their word on its circuit breaker in the order they ended,
 * then folded into one update of its last*At fields and its run of failures, then the
 * auto-disable check, as the batch's last attempt for it says, when it ended
 * in failure. first: the webhook's first attempt in a. */
static int record_webhook(struct hl_sess *s, const struct hl_attempt *a, size_t first, size_t n,
                          int64_t now)
{
    int64_t wid = a[first].webhook_id;
    int64_t trig = 0, succ = 0, failed = 0, run_start = 0;
    int seen_success = 0, last_ok = 0;
    const struct hl_attempt *last = &a[first];
    const struct hl_attempt *prev = NULL;
    int rc = HL_OK;
    for (size_t j = first; j < n && rc == HL_OK; j++) {
        if (a[j].webhook_id != wid)
            continue;
        rc = hl_sql_breaker(s, &a[j], prev, now);
        prev = last = &a[j];
        int64_t t = a[j].started_at;
        trig = t > trig ? t : trig;
        last_ok = a[j].outcome == HL_OUT_SUCCESS;
        if (last_ok) {
            succ = t > succ ? t : succ;
            seen_success = 1;
            run_start = 0;
        } else {
            failed = t > failed ? t : failed;
            if (!run_start)
                run_start = t;
        }
    }
    struct hl_arg b[] = {hl_arg_int(wid),
                         hl_arg_int(trig),
                         hl_arg_int(succ),
                         hl_arg_int(failed),
                         hl_arg_int(last_ok        ? 1
                                    : seen_success ? 2
                                                   : 0),
                         hl_arg_int(run_start)};
    if (rc == HL_OK)
        rc = sess_run(s, Q_WH_ATTEMPTS, b, HL_NARGS(b), NULL);
    if (rc || last_ok)
        return rc;
    return disable(s, last, now);
}

/* Attempt rows and delivery states, then each webhook once. Inside the group commit. */
static int record_attempts(struct hl_sess *s, const struct hl_attempt *a, size_t n)
{
    int64_t now = hl_now_ms();
    int rc = HL_OK;
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        rc = hl_sql_record_delivery(s, &a[i], now);
        if (rc == HL_OK && a[i].outcome == HL_OUT_GONE)
            rc = disable(s, &a[i], now);
    }
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        size_t k = 0;
        while (k < i && a[k].webhook_id != a[i].webhook_id)
            k++;
        if (k == i) /* its first attempt of the batch */
            rc = record_webhook(s, a, i, n, now);
    }
    /* Operational events (issue 21), attempt by attempt in the order they ended. */
    for (size_t i = 0; i < n && rc == HL_OK; i++) {
        struct hl_alert_mark m;
        rc = hl_sql_alert_mark(s, &a[i], &m);
        if (rc == HL_OK)
            rc = hl_sql_alert_emit(s, a, n, i, &m, now);
    }
    return rc;
}

/* ---- the group commit ---- */

/* Applies one request inside the batch's transaction, under a savepoint so that its failure
 * undoes it alone. */
static void apply_request(struct hl_sess *s, struct commit_req *r)
{
    struct sq *c = s->conn;
    int64_t made = 0;
    int rc = conn_exec(c, Q_SAVEPOINT);
    if (rc == HL_OK && r->att)
        rc = record_attempts(s, r->att, r->natt);
    if (rc == HL_OK)
        rc = hl_sql_apply(s, r->ch, r->n, r->idem, &made);
    if (rc && !sqlite3_get_autocommit(c->db))
        conn_exec(c, Q_ROLLBACK_TO);
    if (!sqlite3_get_autocommit(c->db))
        conn_exec(c, Q_RELEASE_SP);
    r->rc = rc;
    r->made = rc ? 0 : made;
}

static int claim_in(struct hl_sess *s, const struct hl_claim *c, struct hl_rows *jobs,
                    int64_t *next);

/* A batch's claim for the dispatcher (hl_store_claim_hook), from its start to its hand-over. */
struct batch_claim {
    int on;                      /* a hook is set and the batch makes changes: hook_mu is held */
    int asked;                   /* the hook's begin asked for a claim: its end is owed */
    int rc;                      /* the claim's own outcome */
    struct hl_claim_cursor made; /* made.after: the newest delivery before the batch */
    int64_t from;
    int64_t upto; /* the claim saw every delivery the batch made, up to this id (0: not) */
    struct hl_rows jobs;
};

/* At the start of a batch (inside its transaction): with a hook set and changes in the batch,
 * holds hook_mu and notes where the batch's deliveries will begin. */
static void batch_claim_start(struct sqdb *db, struct hl_sess *s, const struct commit_req *batch,
                              struct batch_claim *bc)
{
    *bc = (struct batch_claim){.jobs = {.rd = &hl_read_job}};
    const struct commit_req *r = batch;
    while (r && !r->n)
        r = r->next;
    if (!r)
        return; /* attempt records alone make no deliveries of a change */
    pthread_mutex_lock(&db->hook_mu);
    struct hl_rows top = {.rd = &hl_read_int, .one = &bc->from};
    if (db->hook.begin && sess_run(s, Q_MAX_DELIVERY, NULL, 0, &top) == HL_OK) {
        bc->on = 1;
        bc->made = (struct hl_claim_cursor){.after = bc->from, .started = 1};
        return;
    }
    pthread_mutex_unlock(&db->hook_mu);
}

/* Once the batch's changes are in (and its transaction still open): claims what they made, as
 * the hook's begin says, under a savepoint of its own (a failed claim undoes only itself). */
static void batch_claim_run(struct sqdb *db, struct hl_sess *s, struct batch_claim *bc,
                            int64_t made)
{
    struct hl_claim c = {0};
    if (!bc->on || !made || !db->hook.begin(db->hook.arg, &c))
        return;
    bc->asked = 1;
    c.fresh = &bc->made;
    int64_t next = 0, top = 0;
    struct hl_rows last = {.rd = &hl_read_int, .one = &top};
    struct sq *w = &db->w;
    int rc = conn_exec(w, Q_SAVEPOINT);
    if (rc == HL_OK)
        rc = claim_in(s, &c, &bc->jobs, &next);
    if (rc == HL_OK)
        rc = sess_run(s, Q_MAX_DELIVERY, NULL, 0, &last);
    if (rc && !sqlite3_get_autocommit(w->db))
        conn_exec(w, Q_ROLLBACK_TO);
    if (!sqlite3_get_autocommit(w->db))
        conn_exec(w, Q_RELEASE_SP);
    bc->rc = rc;
    /* Seen to the end: nothing beyond the claim's max, nothing held back for a share, and no
     * delivery not yet due holding the cursor (claim_new). */
    if (rc == HL_OK && !bc->made.left && next >= top)
        bc->upto = top;
}

/* After the transaction (rc its outcome): hands the claim over and lets hook_mu go. Returns
 * nonzero when the hook needs no wake-up for the batch. */
static int batch_claim_end(struct sqdb *db, struct batch_claim *bc, int rc)
{
    if (!bc->on)
        return 0;
    int quiet = 0;
    if (bc->asked) {
        rc = rc ? rc : bc->rc;
        if (rc)
            hl_rows_clear(&bc->jobs); /* claimed in a transaction that is gone, or failed */
        struct hl_job *jobs = bc->jobs.arr;
        size_t n = bc->jobs.n;
        /* Should a payload not unpack, the batch's claimed deliveries stay leased until their
         * lease ends and are claimed again then (as after any failed claim). */
        rc = hl_jobs_unpack(rc, &jobs, &n);
        quiet = db->hook.end(db->hook.arg, rc, jobs, n, bc->from, rc ? 0 : bc->upto);
    }
    pthread_mutex_unlock(&db->hook_mu);
    return quiet;
}

static void sq_claim_hook(struct hl_store *base, const struct hl_claim_hook *h)
{
    struct sqdb *db = DB(base);
    pthread_mutex_lock(&db->hook_mu); /* waits for a batch using the hook set before */
    db->hook = h ? *h : (struct hl_claim_hook){0};
    pthread_mutex_unlock(&db->hook_mu);
}

/* Commits a batch of requests in one transaction: one fsync for all of them. With a claim hook
 * set, the deliveries the batch made are claimed in the same transaction (bc; handed over by
 * lead before the requests are told). Returns the transaction's outcome; *made: the deliveries the
 * batch made, when it committed. */
static int run_batch(struct sqdb *db, struct commit_req *batch, struct batch_claim *bc,
                     int64_t *made_out)
{
    struct hl_sess s;
    int opened = sess_open(&db->base, HL_SESS_TX, &s);
    int rc = opened;
    if (opened == HL_OK)
        batch_claim_start(db, &s, batch, bc);
    int64_t made = 0;
    for (struct commit_req *r = batch; r; r = r->next) {
        if (rc) {
            r->rc = rc;
            continue;
        }
        apply_request(&s, r);
        made += r->made;
        /* Some errors (full disk, I/O, memory) roll back the whole transaction, not just the
         * savepoint: what came before is gone, and what follows must not commit on its own. */
        if (r->rc && sqlite3_get_autocommit(db->w.db))
            rc = r->rc;
    }
    if (rc == HL_OK)
        batch_claim_run(db, &s, bc, made);
    if (bc->asked && bc->rc && sqlite3_get_autocommit(db->w.db))
        rc = bc->rc; /* the claim's error ended the transaction */
    if (opened == HL_OK)
        rc = sess_close(&s, rc);
    made = 0;
    for (struct commit_req *r = batch; r; r = r->next) {
        if (rc) {
            r->rc = rc; /* the transaction is gone: nothing of the batch was stored */
            r->made = 0;
        }
        made += r->made;
    }
    *made_out = made;
    return rc;
}

/* Tells each request of a committed batch its outcome: a started one through its done function
 * (and it is freed), a waiting one by its condition variable. */
static void finish_batch(struct sqdb *db, struct commit_req *batch)
{
    for (struct commit_req *r = batch, *next; r; r = next) {
        next = r->next; /* r may be gone as soon as it is told */
        if (r->done_fn) {
            r->done_fn(r->done_arg, r->rc, r->made);
            free(r);
            continue;
        }
        pthread_mutex_lock(&db->q_mu);
        r->done = 1;
        pthread_cond_signal(&r->cv);
        pthread_mutex_unlock(&db->q_mu);
    }
}

/* Wakes whoever leads next, now that no batch runs: the caller at the head of the queue, or the
 * commit thread when that request was started (nobody waits for it). Called under q_mu. */
static void wake_next(struct sqdb *db)
{
    if (!db->q_head || db->committing)
        return;
    if (db->q_head->done_fn)
        pthread_cond_signal(&db->q_cv);
    else
        pthread_cond_signal(&db->q_head->cv);
}

/* Takes the whole queue and commits it in one transaction, then tells each request. Called
 * under q_mu with no batch running; returns with q_mu held. */
static void lead(struct sqdb *db)
{
    db->committing = 1;
    struct commit_req *batch = db->q_head;
    db->q_head = db->q_tail = NULL;
    pthread_mutex_unlock(&db->q_mu);
    struct batch_claim bc = {0};
    int64_t made = 0;
    int rc = run_batch(db, batch, &bc, &made);
    /* The deliveries the batch claimed first, then its callers, before another batch may
     * begin: the hand-over only queues the jobs and wakes the transfer thread, which then gets a
     * core before the callers' answers take both (delivery p99 at 1,000 changes/s 1.7-1.9 ms
     * against 2.3-2.8 ms the other way round, API answers no slower; BENCHMARKS.md). */
    int quiet = batch_claim_end(db, &bc, rc);
    finish_batch(db, batch);
    if (!quiet && made)
        hl_store_notify(&db->base);
    pthread_mutex_lock(&db->q_mu);
    db->committing = 0;
    wake_next(db);
    if (db->q_stop) /* the commit thread may be waiting for the last batch to end */
        pthread_cond_signal(&db->q_cv);
}

/* The commit thread leads the batches that start with a started request (its caller does not
 * wait, so cannot lead). Ends once told to, nothing is queued and no batch runs. */
static void *commit_run(void *arg)
{
    struct sqdb *db = arg;
    pthread_mutex_lock(&db->q_mu);
    for (;;) {
        if (!db->committing && db->q_head && db->q_head->done_fn)
            lead(db);
        else if (db->q_stop && !db->q_head && !db->committing)
            break;
        else
            pthread_cond_wait(&db->q_cv, &db->q_mu);
    }
    pthread_mutex_unlock(&db->q_mu);
    return NULL;
}

/* Queues r, and wakes the commit thread when r is a started request that may lead at once.
 * HL_EUNAVAIL once the store is closing. Called under q_mu. */
static int enqueue(struct sqdb *db, struct commit_req *r)
{
    if (db->q_stop || !db->q_running)
        return HL_EUNAVAIL;
    r->next = NULL;
    if (db->q_tail)
        db->q_tail->next = r;
    else
        db->q_head = r;
    db->q_tail = r;
    if (r == db->q_head)
        wake_next(db);
    return HL_OK;
}

/* Group commit: callers queue their requests (change sets, or the dispatcher's finished
 * attempts); a waiting caller at the head of the queue leads once no batch runs, taking the whole
 * queue into one transaction, while the others wait for their own result (or, for a started
 * request, its done function). Under load, one fsync serves every request that arrived during
 * the previous one. Started requests at the head are led by the commit thread. */
static void group_commit(struct sqdb *db, struct commit_req *me)
{
    pthread_cond_init(&me->cv, NULL);
    pthread_mutex_lock(&db->q_mu);
    int rc = enqueue(db, me);
    while (rc == HL_OK && !me->done) {
        if (db->committing || db->q_head != me)
            pthread_cond_wait(&me->cv, &db->q_mu);
        else
            lead(db);
    }
    pthread_mutex_unlock(&db->q_mu);
    pthread_cond_destroy(&me->cv);
    if (rc)
        me->rc = rc;
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

static int sq_commit_start(struct hl_store *base, const struct hl_change *ch, size_t n,
                           const struct hl_idem *idem, hl_commit_done_fn done, void *arg)
{
    struct sqdb *db = DB(base);
    struct commit_req *r = calloc(1, sizeof(*r));
    if (!r)
        return HL_ENOMEM;
    *r = (struct commit_req){.ch = ch, .n = n, .idem = idem, .done_fn = done, .done_arg = arg};
    pthread_mutex_lock(&db->q_mu);
    int rc = enqueue(db, r);
    pthread_mutex_unlock(&db->q_mu);
    if (rc)
        free(r);
    return rc;
}

/* Attempts ride the group commit: under load they share the API's fsync. */
static int sq_record(struct hl_store *base, const struct hl_attempt *a, size_t n)
{
    struct commit_req me = {.att = a, .natt = n};
    group_commit(DB(base), &me);
    return me.rc;
}

/* ---- claims ---- */

/* Inside the claim's transaction, for a claim through a cursor: the ids of the deliveries made
 * since, then what the shares allow of them into jobs; *next is where the next claim starts. */
static int claim_new(struct hl_sess *s, const struct hl_claim *c, struct hl_arg *a, size_t n,
                     struct hl_rows *jobs, int64_t *next)
{
    struct hl_claim_cursor *cur = c->fresh;
    struct hl_rows ids = {.rd = &hl_read_int}, top = {.rd = &hl_read_int, .one = next};
    int rc = sess_run(s, Q_CLAIM_NEW, a, 5, &ids); /* ?1 to ?5 */
    if (rc == HL_OK && ids.n)
        a[n - 1] = hl_arg_ids(ids.arr, ids.n);
    if (rc == HL_OK && ids.n)
        rc = sess_run(s, Q_CLAIM_PICK, a, n, jobs);
    /* Short of max: every due delivery above the cursor was seen, so the next claim starts at
     * the newest delivery; full: right after the last one seen. Those seen and not taken are
     * the claim without a cursor's. */
    if (rc == HL_OK && ids.n == c->max && ids.n)
        *next = ((int64_t *)ids.arr)[ids.n - 1];
    else if (rc == HL_OK)
        rc = sess_run(s, Q_MAX_DELIVERY, NULL, 0, &top);
    /* A delivery made since and not due at c->now (its change committed after the claim took
     * its now, while the claim waited for the writer) stays ahead of the cursor: passed over, no
     * wake-up would find it again before the next sweep. */
    int64_t hold = 0;
    struct hl_rows first = {.rd = &hl_read_int, .one = &hold};
    if (rc == HL_OK)
        rc = sess_run(s, Q_FRESH_HOLD, a, 4, &first);
    if (rc == HL_OK && hold > 0 && hold - 1 < *next)
        *next = hold - 1;
    cur->left = rc == HL_OK && jobs->n < ids.n;
    hl_rows_clear(&ids);
    return rc;
}

/* Inside the claim's transaction: the due deliveries into jobs, leased; for a claim of new ones,
 * where the next starts (*next). */
static int claim_in(struct hl_sess *s, const struct hl_claim *c, struct hl_rows *jobs,
                    int64_t *next)
{
    struct hl_claim_cursor *cur = c->fresh;
    if (cur && !cur->started) { /* the first claim of new ones marks where "new" begins */
        struct hl_rows top = {.rd = &hl_read_int, .one = next};
        return sess_run(s, Q_MAX_DELIVERY, NULL, 0, &top);
    }
    struct hl_arg a[] = {hl_arg_int(c->now),
                         hl_arg_ids(c->skip, c->nskip),
                         hl_arg_int((int64_t)c->max),
                         hl_arg_int(cur ? cur->after : 0),
                         hl_arg_ids(c->skip_apps, c->nskip_apps),
                         hl_arg_ids(c->room_apps, c->nrooms),
                         hl_arg_ids(c->rooms, c->nrooms),
                         hl_arg_int(c->room_new),
                         hl_arg_ids(c->room_webhooks, c->nwrooms),
                         hl_arg_ids(c->wrooms, c->nwrooms),
                         hl_arg_int(c->wroom_new),
                         hl_arg_ids(NULL, 0)}; /* Q_CLAIM_PICK's ids */
    int rc = cur ? claim_new(s, c, a, HL_NARGS(a), jobs, next)
                 : sess_run(s, Q_CLAIM_SELECT, a, HL_NARGS(a) - 1, jobs);
    if (rc || jobs->n == 0)
        return rc;
    /* One statement leases the whole batch, another moves on the webhooks it holds back. */
    int64_t *ids = malloc(jobs->n * sizeof(*ids));
    int64_t *held = malloc(jobs->n * sizeof(*held));
    size_t nheld = 0;
    rc = ids && held ? HL_OK : HL_ENOMEM;
    for (size_t i = 0; i < jobs->n && rc == HL_OK; i++) {
        const struct hl_job *j = &((struct hl_job *)jobs->arr)[i];
        ids[i] = j->delivery_id;
        if (j->breaker_opened_at || j->rate_limit)
            held[nheld++] = j->webhook_id;
    }
    struct hl_arg b[] = {hl_arg_ids(ids, jobs->n), hl_arg_int(c->lease_until), hl_arg_int(c->now)};
    if (rc == HL_OK)
        rc = sess_run(s, Q_CLAIM_LEASE, b, 2, NULL);
    b[0] = hl_arg_ids(held, nheld);
    if (rc == HL_OK && nheld)
        rc = sess_run(s, Q_CLAIM_HELD, b, HL_NARGS(b), NULL);
    free(ids);
    free(held);
    return rc;
}

static int sq_claim(struct hl_store *base, const struct hl_claim *c, struct hl_job **out, size_t *n)
{
    struct sqdb *db = DB(base);
    struct hl_rows jobs = {.rd = &hl_read_job};
    int64_t next = 0;
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_WRITE, &s);
    if (rc)
        return rc;
    /* Leases need no fsync: a single node drops them all when it starts, so losing the last
     * ones in a crash changes nothing; later commits sync the WAL up to and past them. Should
     * synchronous not go off, the claim is synced, which is only slower. */
    int unsynced = exec_sql(&db->w, "PRAGMA synchronous = OFF") == HL_OK;
    rc = conn_exec(&db->w, Q_BEGIN);
    if (rc == HL_OK)
        rc = finish(&db->w, claim_in(&s, c, &jobs, &next));
    if (unsynced && sync_back(db, "a claim"))
        rc = HL_ESTORE;
    sess_close(&s, HL_OK);
    if (rc) {
        hl_rows_clear(&jobs);
        return rc;
    }
    if (c->fresh) {
        c->fresh->after = next;
        c->fresh->started = 1;
    }
    *out = jobs.arr;
    *n = jobs.n;
    return HL_OK;
}

static int sq_release_leases(struct hl_store *base)
{
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_WRITE, &s);
    if (rc)
        return rc;
    rc = conn_exec(s.conn, Q_RELEASE);
    if (rc == HL_OK)
        rc = conn_exec(s.conn, Q_RELEASE_FILES);
    return sess_close(&s, rc);
}

/* ---- context-file ingestion ---- */

static int sq_ingest_claim(struct hl_store *base, int64_t now, int64_t lease_until,
                           struct hl_ingest_job *out)
{
    memset(out, 0, sizeof(*out));
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_TX, &s);
    if (rc)
        return rc;
    struct hl_arg a[] = {hl_arg_int(now)};
    struct hl_rows job = {.rd = &hl_read_ingest, .one = out};
    rc = sess_run(&s, Q_INGEST_SELECT, a, HL_NARGS(a), &job);
    if (rc == HL_OK && job.n == 0)
        rc = HL_ENOTFOUND;
    if (rc == HL_OK) {
        struct hl_arg b[] = {hl_arg_text(out->file_uid), hl_arg_int(lease_until)};
        rc = sess_run(&s, Q_INGEST_LEASE, b, HL_NARGS(b), NULL);
    }
    rc = sess_close(&s, rc);
    if (rc)
        hl_rows_clear(&job);
    return rc;
}

/* ---- one serving process per file ---- */

static int sq_lock(struct hl_store *base, char *err, size_t errlen)
{
    struct sqdb *db = DB(base);
    if (db->lock_fd >= 0)
        return HL_OK;
    char path[4096];
    if ((size_t)snprintf(path, sizeof(path), "%s.lock", db->path) >= sizeof(path)) {
        snprintf(err, errlen, "database path too long");
        return HL_EINVAL;
    }
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return HL_EIO;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        int busy = errno == EWOULDBLOCK;
        char pid[32] = "";
        ssize_t got = busy ? pread(fd, pid, sizeof(pid) - 1, 0) : -1;
        pid[got > 0 ? strcspn(pid, "\n") : 0] = '\0';
        if (busy)
            snprintf(err, errlen,
                     "database %s is in use by another hookline serve (pid %s, holding %s):"
                     " stop it first, or give this one another --database",
                     db->path, *pid ? pid : "unknown", path);
        else
            snprintf(err, errlen, "cannot lock %s: %s", path, strerror(errno));
        close(fd);
        db->refused = busy;
        return busy ? HL_ECONFLICT : HL_EIO;
    }
    /* Who holds it, for the message a second process prints. */
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)len, 0) != len)
        hl_warn("sqlite: cannot write the pid into %s: %s", path, strerror(errno));
    db->lock_fd = fd;
    return HL_OK;
}

/* ---- space ---- */

/* Free pages kept for reuse before any is given back: a tenth of the file. Pruning frees pages
 * that new rows take again; giving them all back would only grow the file again. */
#define RESERVE_DIVISOR 10
/* Most pages one step of hl_store_release_space gives back (512 KiB at 4 KiB pages): each is
 * moved or dropped while the writer is held. */
#define RELEASE_STEP 128

/* The integer a PRAGMA (or any one-value query) answers on connection c (held); -1 on error. */
static int64_t pragma_int(struct sq *c, const char *sql)
{
    sqlite3_stmt *st;
    int64_t v = -1;
    if (sqlite3_prepare_v2(c->db, sql, -1, &st, NULL) != SQLITE_OK)
        return -1;
    if (sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

/* The size of a file, 0 when it is not there. */
static int64_t file_size(const char *path, const char *suffix)
{
    char p[4096];
    struct stat sb;
    if ((size_t)snprintf(p, sizeof(p), "%s%s", path, suffix) >= sizeof(p) || stat(p, &sb) != 0)
        return 0;
    return (int64_t)sb.st_size;
}

static int sq_space(struct hl_store *base, struct hl_store_space *out)
{
    struct sqdb *db = DB(base);
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_READ, &s);
    if (rc)
        return rc;
    int64_t free_pages = pragma_int(s.conn, "PRAGMA freelist_count");
    int64_t page = pragma_int(s.conn, "PRAGMA page_size");
    int64_t mode = pragma_int(s.conn, "PRAGMA auto_vacuum");
    sess_close(&s, HL_OK);
    if (free_pages < 0 || page < 0 || mode < 0)
        return HL_ESTORE;
    out->bytes = file_size(db->path, "") + file_size(db->path, "-wal");
    out->free_bytes = free_pages * page;
    out->reclaims = mode == 2; /* incremental */
    return HL_OK;
}

static int sq_release(struct hl_store *base, int64_t *released)
{
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_WRITE, &s);
    if (rc)
        return rc;
    struct sq *c = s.conn;
    int64_t pages = pragma_int(c, "PRAGMA page_count");
    int64_t free_before = pragma_int(c, "PRAGMA freelist_count");
    int64_t page = pragma_int(c, "PRAGMA page_size");
    int64_t mode = pragma_int(c, "PRAGMA auto_vacuum");
    int64_t over = free_before - pages / RESERVE_DIVISOR;
    if (pages < 0 || free_before < 0 || page < 0 || mode != 2 || over <= 0)
        return sess_close(&s, pages < 0 || free_before < 0 || page < 0 ? HL_ESTORE : HL_OK);
    char sql[64];
    snprintf(sql, sizeof(sql), "PRAGMA incremental_vacuum(%lld)",
             (long long)(over < RELEASE_STEP ? over : RELEASE_STEP));
    rc = exec_sql(c, sql);
    int64_t free_after = pragma_int(c, "PRAGMA freelist_count");
    if (rc == HL_OK && free_after >= 0 && free_after < free_before)
        *released = (free_before - free_after) * page;
    return sess_close(&s, rc);
}

/* The compaction's progress handler: every second, where VACUUM has got to. */
struct compact_watch {
    struct sqdb *db;
    hl_compact_progress_fn fn;
    void *arg;
    int64_t start, last, total;
};

static int compact_tick(void *arg)
{
    struct compact_watch *w = arg;
    int64_t now = hl_mono_ms();
    if (now - w->last < 1000)
        return 0;
    w->last = now;
    /* VACUUM builds the compacted copy in a temporary file first, then writes it back through
     * the WAL: that second half is what can be measured. */
    int64_t wal = file_size(w->db->path, "-wal");
    struct hl_compact_progress p = {now - w->start,
                                    wal ? "writing the compacted file" : "copying the rows",
                                    wal < w->total ? wal : w->total, w->total};
    w->fn(w->arg, &p);
    return 0;
}

static int sq_compact(struct hl_store *base, hl_compact_progress_fn progress, void *arg, char *err,
                      size_t errlen)
{
    struct sqdb *db = DB(base);
    struct hl_sess s;
    int rc = sess_open(base, HL_SESS_WRITE, &s);
    if (rc) {
        snprintf(err, errlen, "the database is not writable: %s", hl_strerror(rc));
        return rc;
    }
    struct sq *c = s.conn;
    int64_t pages = pragma_int(c, "PRAGMA page_count");
    int64_t free_pages = pragma_int(c, "PRAGMA freelist_count");
    int64_t page = pragma_int(c, "PRAGMA page_size");
    struct compact_watch w = {db,           progress,     arg,
                              hl_mono_ms(), hl_mono_ms(), (pages - free_pages) * page};
    if (progress)
        sqlite3_progress_handler(c->db, 100000, compact_tick, &w);
    /* Incremental auto-vacuum takes effect with the VACUUM that follows. The checkpointer waits:
     * a checkpoint of its under way would leave the WAL untruncated. */
    pthread_mutex_lock(&db->ck_turn);
    db->ck_compacting = 1; /* the VACUUM's commit must not checkpoint in the hook: it has ck_turn */
    if (exec_sql(c, "PRAGMA wal_checkpoint(TRUNCATE)") ||
        exec_sql(c, "PRAGMA auto_vacuum = INCREMENTAL") || exec_sql(c, "VACUUM") ||
        exec_sql(c, "PRAGMA wal_checkpoint(TRUNCATE)")) {
        snprintf(err, errlen, "%s", sqlite3_errmsg(c->db));
        rc = HL_ESTORE;
    }
    db->ck_compacting = 0;
    pthread_mutex_unlock(&db->ck_turn);
    sqlite3_progress_handler(c->db, 0, NULL, NULL);
    return sess_close(&s, rc);
}

/* ---- checkpoints ----
 *
 * SQLite's automatic checkpoint runs inside the COMMIT of the transaction that crossed its
 * threshold: that batch's callers, and the deliveries it claimed, would wait for the copy of
 * ~1,000 pages and an fsync of the database file (4-7 ms, ten times a second, at 1,000 changes/s;
 * 10-16 ms in a closed loop; BENCHMARKS.md). Instead the writer's WAL hook only counts, and a
 * thread of the store's own copies the frames with a passive checkpoint on its own connection,
 * which neither waits for nor blocks the writer and the readers. A WAL only starts over from its
 * beginning when a write begins with every frame copied and no reader in it, which a writer that
 * never pauses does not allow: once the WAL is CK_RESTART frames long and at most CK_PAGES are left
 * to copy, the checkpointer holds the writer's turn for a second pass (only those) that waits up to
 * CK_WAIT_MS for the readers, and the next write starts the WAL over. Should the checkpointer still
 * fall behind by CK_HARD frames (a starved thread, a reader that stays), the commit checkpoints
 * itself, as SQLite's own would: the file stays bounded, and a writer that outruns the disk waits
 * for it. */
#define CK_PAGES 1000   /* frames written since the last pass that start the next (SQLite's) */
#define CK_RESTART 4096 /* frames (16 MiB of 4 KiB pages) after which the WAL should start over */
#define CK_HARD 8192    /* frames after which the writer's commit checkpoints itself */
#define CK_WAIT_MS 10   /* how long the restarting pass waits for readers to leave the WAL */

/* The writer's WAL hook, after each commit: pages frames are in the WAL. */
static int wal_hook(void *arg, sqlite3 *conn, const char *name, int pages)
{
    (void)conn;
    (void)name;
    struct sqdb *db = arg;
    pthread_mutex_lock(&db->ck_mu);
    if (pages < db->ck_pages) { /* started over (a restart missed here only delays the next) */
        db->ck_gen++;
        db->ck_seen = 0;
    }
    db->ck_pages = pages;
    if (pages - db->ck_seen >= CK_PAGES && !db->ck_want) {
        db->ck_want = 1;
        pthread_cond_signal(&db->ck_cv);
    }
    pthread_mutex_unlock(&db->ck_mu);
    /* On the checkpointer's connection (ck_turn is its mutex too), which syncs: the writer's may
     * be in a lazy transaction, without fsync. */
    if (pages >= CK_HARD && !db->ck_compacting) {
        pthread_mutex_lock(&db->ck_turn);
        sqlite3_wal_checkpoint_v2(db->ck.db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
        pthread_mutex_unlock(&db->ck_turn);
    }
    return SQLITE_OK;
}

/* The checkpointer's busy handler: readers leave the WAL within a read, so it looks again every
 * 100 µs (SQLite's own handler sleeps 1, 2, 5, 10 ms... while the writer's turn is held), up to
 * CK_WAIT_MS from the first try (arg: the deadline, in monotonic µs). */
static int ck_busy(void *arg, int tries)
{
    int64_t *until = arg;
    if (tries == 0)
        *until = hl_mono_us() + CK_WAIT_MS * 1000;
    else if (hl_mono_us() >= *until)
        return 0;
    usleep(100);
    return 1;
}

/* One pass on the checkpointer's connection: passive, or, to start the WAL over, with the
 * writer's turn held and up to CK_WAIT_MS for the readers (what it cannot wait for stays for the
 * next pass). Returns the frames the WAL held, or -1 on an error; *copied: how many of them are
 * in the database file (-1 when unknown). */
static int ck_pass(struct sqdb *db, int restart, int *copied_out)
{
    if (restart)
        conn_take(db, &db->w);
    pthread_mutex_lock(&db->ck_turn);
    int frames = -1, copied = -1;
    int64_t until = 0;
    sqlite3_busy_handler(db->ck.db, ck_busy, &until);
    int rc = sqlite3_wal_checkpoint_v2(
        db->ck.db, NULL, restart ? SQLITE_CHECKPOINT_RESTART : SQLITE_CHECKPOINT_PASSIVE, &frames,
        &copied);
    /* Busy: readers stayed, or another process checkpoints; frames are known or -1. */
    if (rc != SQLITE_OK && rc != SQLITE_BUSY) {
        hl_error("sqlite: checkpoint: %s", sqlite3_errmsg(db->ck.db));
        frames = -1;
    }
    sqlite3_busy_handler(db->ck.db, NULL, NULL); /* until is about to go */
    pthread_mutex_unlock(&db->ck_turn);
    if (restart)
        conn_give(db, &db->w);
    *copied_out = copied;
    return frames;
}

/* The checkpointer: a pass whenever the hook says CK_PAGES frames were written since the last
 * (copied or not: frames a reader holds back are tried again after as many more, never in a
 * loop); after an error, tries again a second later. Ends at ck_stop. */
static void *ck_run(void *arg)
{
    struct sqdb *db = arg;
    pthread_mutex_lock(&db->ck_mu);
    while (!db->ck_stop) {
        if (!db->ck_want) {
            pthread_cond_wait(&db->ck_cv, &db->ck_mu);
            continue;
        }
        uint64_t gen = db->ck_gen;
        int pages = db->ck_pages;
        pthread_mutex_unlock(&db->ck_mu);
        /* The restarting pass only when little is left to copy: it holds the writer. */
        int copied;
        int frames = ck_pass(db, 0, &copied);
        if (frames >= CK_RESTART && copied >= 0 && frames - copied <= CK_PAGES)
            frames = ck_pass(db, 1, &copied);
        pthread_mutex_lock(&db->ck_mu);
        if (gen == db->ck_gen) /* what the pass saw, or at least what the hook had */
            db->ck_seen = frames > pages ? frames : pages;
        db->ck_want = db->ck_pages - db->ck_seen >= CK_PAGES;
        if (frames < 0 && !db->ck_stop) {
            struct timespec until = hl_mono_ts(hl_mono_ms() + 1000);
            pthread_cond_timedwait(&db->ck_cv, &db->ck_mu, &until);
        }
    }
    pthread_mutex_unlock(&db->ck_mu);
    return NULL;
}

/* ---- opening and closing ---- */

static int migrate(struct sq *c, char *err, size_t errlen)
{
    sqlite3_stmt *st;
    int version = 0;
    if (sqlite3_prepare_v2(c->db, "PRAGMA user_version", -1, &st, NULL) != SQLITE_OK)
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
        if (exec_sql(c, "BEGIN IMMEDIATE") || exec_sql(c, MIGRATIONS[v]) || exec_sql(c, pragma) ||
            exec_sql(c, "COMMIT")) {
            exec_sql(c, "ROLLBACK");
            goto bad;
        }
        hl_info("sqlite: migrated schema to version %d", v + 1);
    }
    return HL_OK;
bad:
    snprintf(err, errlen, "migration failed: %s", sqlite3_errmsg(c->db));
    return HL_ESTORE;
}

static void conn_close(struct sq *c, int checkpoint)
{
    for (int i = 0; i < Q_COUNT; i++)
        sqlite3_finalize(c->stmts[i]);
    if (c->db) {
        /* Leave a checkpointed file behind so a copy of the .db alone is complete. */
        if (checkpoint)
            sqlite3_exec(c->db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL);
        sqlite3_close(c->db);
    }
    pthread_mutex_destroy(&c->mu);
}

/* Tells a thread of the store's to end (*stop under mu, cv signalled) and waits for it, when it
 * was started. */
static void thread_end(pthread_mutex_t *mu, pthread_cond_t *cv, int *stop, int running,
                       pthread_t th)
{
    pthread_mutex_lock(mu);
    *stop = 1;
    pthread_cond_signal(cv);
    pthread_mutex_unlock(mu);
    if (running)
        pthread_join(th, NULL);
}

static void sq_close(struct hl_store *base)
{
    struct sqdb *db = DB(base);
    /* What is queued still commits, and each request hears its outcome. */
    thread_end(&db->q_mu, &db->q_cv, &db->q_stop, db->q_running, db->q_thread);
    thread_end(&db->ck_mu, &db->ck_cv, &db->ck_stop, db->ck_running, db->ck_thread);
    if (db->w.db)
        sqlite3_wal_hook(db->w.db, NULL, NULL); /* the hook may use ck */
    conn_close(&db->ck, 0);
    for (int i = 0; i < NREAD; i++)
        conn_close(&db->r[i], 0);
    /* The writer closes last and checkpoints the WAL into the database (SQLite's own close would
     * too), which syncs only with synchronous on: should it still be off (sync_lost), the WAL is
     * left as it is, for the next open to replay, rather than copied and truncated unsynced. */
    int checkpoint = !db->refused;
    if (db->w.db) {
        pthread_mutex_lock(&db->w.mu);
        if (writer_ready(db) != HL_OK) {
            checkpoint = 0;
            sqlite3_db_config(db->w.db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, NULL);
            hl_warn("sqlite: closing without a checkpoint: the WAL is replayed at the next open");
        }
        pthread_mutex_unlock(&db->w.mu);
    }
    conn_close(&db->w, checkpoint);
    if (db->lock_fd >= 0)
        close(db->lock_fd); /* and with it the lock */
    pthread_mutex_destroy(&db->q_mu);
    pthread_cond_destroy(&db->q_cv);
    pthread_mutex_destroy(&db->turn_mu);
    pthread_cond_destroy(&db->turn_cv);
    pthread_mutex_destroy(&db->hook_mu);
    pthread_mutex_destroy(&db->ck_mu);
    pthread_cond_destroy(&db->ck_cv);
    pthread_mutex_destroy(&db->ck_turn);
    hl_store_base_destroy(&db->base);
    free(db->path);
    free(db);
}

enum conn_role { CONN_WRITER, CONN_READER, CONN_CHECKPOINT };

/* Opens one connection to path, for role. */
static int conn_open(struct sq *c, const char *path, enum conn_role role, char *err, size_t errlen)
{
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    if (sqlite3_open_v2(path, &c->db, flags, NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 c->db ? sqlite3_errmsg(c->db) : "out of memory");
        return HL_ESTORE;
    }
    if (role != CONN_CHECKPOINT) /* ck_pass sets the checkpointer's */
        sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 1);
    /* A new file gets incremental auto-vacuum (it can only be chosen before the first table, and
     * before WAL mode writes the header); on an existing file this changes nothing until `db
     * compact` runs VACUUM. */
    if (role == CONN_WRITER && exec_sql(c, "PRAGMA auto_vacuum = INCREMENTAL")) {
        snprintf(err, errlen, "cannot configure %s: %s", path, sqlite3_errmsg(c->db));
        return HL_ESTORE;
    }
    if (exec_sql(c, "PRAGMA journal_mode = WAL") || exec_sql(c, "PRAGMA synchronous = FULL") ||
        exec_sql(c, "PRAGMA foreign_keys = ON") ||
        (role == CONN_READER && exec_sql(c, "PRAGMA query_only = ON"))) {
        snprintf(err, errlen, "cannot configure %s: %s", path, sqlite3_errmsg(c->db));
        return HL_ESTORE;
    }
    return HL_OK;
}

static const struct hl_backend SQLITE = {
    .open = sess_open,
    .run = sess_run,
    .close = sess_close,
    .wake_all = NULL, /* one process: the commit's own hl_store_notify wakes its dispatcher */
    .event = put_event,
    .destroy = sq_close,
    .lock = sq_lock,
    .commit = sq_commit,
    .commit_start = sq_commit_start,
    .claim = sq_claim,
    .record = sq_record,
    .claim_hook = sq_claim_hook,
    .release_leases = sq_release_leases,
    .ingest_claim = sq_ingest_claim,
    .space = sq_space,
    .release = sq_release,
    .compact = sq_compact,
    .one_writer = 1,
    .defers = 1,
};

int hl_sqlite_exists(const char *path, char *err, size_t errlen)
{
    struct stat sb;
    if (stat(path, &sb) != 0) {
        snprintf(err, errlen, "no database at %s: %s", path, strerror(errno));
        return errno == ENOENT ? HL_ENOTFOUND : HL_EIO;
    }
    if (!S_ISREG(sb.st_mode)) {
        snprintf(err, errlen, "%s is not a database file", path);
        return HL_EINVAL;
    }
    /* Read-only: looking creates nothing, not even the WAL beside it. */
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int version = -1;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) == SQLITE_OK &&
        sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    if (version < 0)
        snprintf(err, errlen, "cannot read %s: %s", path,
                 db ? sqlite3_errmsg(db) : "out of memory");
    else if (version == 0)
        snprintf(err, errlen, "%s is not a hookline database (it has no hookline schema)", path);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return version > 0 ? HL_OK : version == 0 ? HL_ENOTFOUND : HL_ESTORE;
}

int hl_sqlite_open(const char *path, struct hl_store **out, char *err, size_t errlen)
{
    *out = NULL;
    if (hl_sql_check(SQL, Q_COUNT, err, errlen))
        return HL_EINVAL;
    struct sqdb *db = calloc(1, sizeof(*db));
    if (!db || !(db->path = strdup(path))) {
        free(db);
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    db->lock_fd = -1;
    hl_store_base_init(&db->base, &SQLITE);
    pthread_mutex_init(&db->q_mu, NULL);
    pthread_cond_init(&db->q_cv, NULL);
    pthread_mutex_init(&db->turn_mu, NULL);
    pthread_cond_init(&db->turn_cv, NULL);
    pthread_mutex_init(&db->hook_mu, NULL);
    pthread_mutex_init(&db->ck_mu, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC); /* the checkpointer's retry */
    pthread_cond_init(&db->ck_cv, &ca);
    pthread_condattr_destroy(&ca);
    pthread_mutex_init(&db->ck_turn, NULL);
    pthread_mutex_init(&db->ck.mu, NULL);
    pthread_mutex_init(&db->w.mu, NULL);
    for (int i = 0; i < NREAD; i++)
        pthread_mutex_init(&db->r[i].mu, NULL);
    if (conn_open(&db->w, path, CONN_WRITER, err, errlen) || migrate(&db->w, err, errlen))
        goto bad;
    for (int i = 0; i < NREAD; i++)
        if (conn_open(&db->r[i], path, CONN_READER, err, errlen))
            goto bad;
    if (conn_open(&db->ck, path, CONN_CHECKPOINT, err, errlen))
        goto bad;
    if (hl_thread_start(&db->ck_thread, ck_run, db, "hl-checkpoint") != 0) {
        snprintf(err, errlen, "cannot start the checkpoint thread");
        goto bad;
    }
    db->ck_running = 1;
    /* From here on the writer's commits no longer checkpoint (the hook replaces SQLite's). */
    sqlite3_wal_hook(db->w.db, wal_hook, db);
    if (hl_thread_start(&db->q_thread, commit_run, db, "hl-commit") != 0) {
        snprintf(err, errlen, "cannot start the commit thread");
        goto bad;
    }
    db->q_running = 1;
    *out = &db->base;
    return HL_OK;
bad:
    sq_close(&db->base);
    return HL_ESTORE;
}
