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
#define SQL_FAILING HL_XSTR(HL_DS_FAILING_N)
/* A delivery (columns prefixed by p: "d." or "") that is failing: pending, and its last attempt
 * did not succeed. A resent success is pending again with a 2xx as its last status. */
#define SQL_IS_FAILING(p)                                                                          \
    "(" p "status = " SQL_PENDING " AND " p "attempts > 0 AND " p "last_status NOT BETWEEN 200"    \
    " AND 299)"
/* The failing ones, spelled as the partial index deliveries_failing says (both backends use a
 * partial index only for a query that repeats its condition). */
#define SQL_FAILING_ROWS(p)                                                                        \
    p "status = " SQL_PENDING " AND " p "attempts > 0 AND " p "last_status NOT BETWEEN 200 AND "   \
      "299"
/* The state of delivery a (a table alias: "d") as the API shows it. */
#define DL_SHOWN(a) "CASE WHEN " SQL_IS_FAILING(a ".") " THEN " SQL_FAILING " ELSE " a ".status END"
#define SQL_SHOWN_STATUS DL_SHOWN("d")

/* A webhook's delivery counts are counters (issue 20), kept by triggers on deliveries in the
 * statement that changes a delivery, so in its transaction: webhook_counts holds, per webhook
 * and stripe, how many of its deliveries are in each class below, and a webhook's count is the
 * sum of its stripes. SQLite (one writer) keeps stripe 0 alone, by row triggers; PostgreSQL's
 * statement triggers add each statement's changes, grouped by webhook, to the stripe of their
 * session (its pg_backend_pid(), SQL_CNT_STRIPE), so that two live sessions never write the
 * same row and never wait for each other's counters (a shared stripe let two transactions that
 * change two webhooks' deliveries in opposite orders deadlock). Stripe 0 is written only by
 * SQL_CNT_FOLD, which moves the rows of sessions gone into it, so a webhook keeps a row per
 * live session and one more. Migration 16 kept pg_backend_pid() % 16. A deleted delivery
 * (retention) leaves its class: the counts are those of the deliveries stored, as COUNT(*) gave
 * them. A webhook is never removed (deletion marks it), and neither are its counters.
 *
 * A delivery's class, one column each, as 0 or 1 (r: the row's prefix, "NEW.", "OLD." or ""):
 * pending (status pending, not failing), paused, failing (SQL_IS_FAILING), succeeded, failed;
 * a cancelled one is in none. */
#define SQL_CNT_STRIPE "pg_backend_pid()"
#define CNT_FAILING(r) "(CASE WHEN " SQL_IS_FAILING(r) " THEN 1 ELSE 0 END)"
#define CNT_STATUS(r, st) "(CASE WHEN " r "status = " st " THEN 1 ELSE 0 END)"
#define CNT_PENDING(r) "(" CNT_STATUS(r, SQL_PENDING) " - " CNT_FAILING(r) ")"
#define CNT_PAUSED(r) CNT_STATUS(r, SQL_PAUSED)
#define CNT_SUCCEEDED(r) CNT_STATUS(r, SQL_SUCCEEDED)
#define CNT_FAILED(r) CNT_STATUS(r, SQL_FAILED)
/* clang-format off */
/* F(class, its column, a, b) for each class in the order of SQL_CNT_COLS, comma separated. */
#define SQL_CNT_EACH(F, a, b)                                                                      \
    F(CNT_PENDING, pending, a, b) ", " F(CNT_PAUSED, paused, a, b) ", "                            \
    F(CNT_FAILING, failing, a, b) ", " F(CNT_SUCCEEDED, succeeded, a, b) ", "                      \
    F(CNT_FAILED, failed, a, b)
#define SQL_CNT_COLS "pending, paused, failing, succeeded, failed"
#define CNT_VAL(E, col, r, sign) sign E(r)      /* a row's class, signed */
#define CNT_DIFF(E, col, n, o) E(n) " - " E(o)  /* its change from row o to row n */
#define CNT_SUM(E, col, r, u) "sum(" E(r) ")"   /* the classes of rows */
#define CNT_TOTAL(E, col, r, u) "sum(" #col ")" /* the sum of a subquery's class columns */
#define CNT_ADD(E, col, r, u) #col " = webhook_counts." #col " + excluded." #col
/* The table, and the counts of the deliveries already stored (both backends' migrations). */
#define SQL_CNT_TABLE(id, suffix)                                                                  \
    "CREATE TABLE webhook_counts(webhook_id " id " NOT NULL, stripe INTEGER NOT NULL,"             \
    " pending " id " NOT NULL, paused " id " NOT NULL, failing " id " NOT NULL,"                   \
    " succeeded " id " NOT NULL, failed " id " NOT NULL, PRIMARY KEY(webhook_id, stripe))"         \
    suffix ";"                                                                                     \
    "INSERT INTO webhook_counts(webhook_id, stripe, " SQL_CNT_COLS ") SELECT webhook_id, 0, "      \
    SQL_CNT_EACH(CNT_SUM, "", 0) " FROM deliveries GROUP BY webhook_id;"
/* Adds the counts of the VALUES or SELECT that follows to webhook_counts. */
#define SQL_CNT_UPSERT_INTO "INSERT INTO webhook_counts(webhook_id, stripe, " SQL_CNT_COLS ") "
#define SQL_CNT_UPSERT_SET                                                                         \
    " ON CONFLICT(webhook_id, stripe) DO UPDATE SET " SQL_CNT_EACH(CNT_ADD, 0, 0)
/* SQLite: a trigger that adds the counts of one row's VALUES (webhook_id, stripe, classes). */
#define SQL_CNT_TRIGGER(name, when, values)                                                        \
    "CREATE TRIGGER " name " " when " BEGIN " SQL_CNT_UPSERT_INTO "VALUES(" values ")"            \
    SQL_CNT_UPSERT_SET "; END;"
/* PostgreSQL: adds the rows of src (a SELECT of webhook_id and the classes, signed) to the
 * stripe given, one row per webhook whose counts change, in the order of the webhook ids. */
#define SQL_CNT_APPLY(stripe, src)                                                                 \
    SQL_CNT_UPSERT_INTO "SELECT webhook_id, " stripe ", "                                          \
    SQL_CNT_EACH(CNT_TOTAL, 0, 0) " FROM (" src ") t(webhook_id, " SQL_CNT_COLS ")"                \
    " GROUP BY webhook_id HAVING (" SQL_CNT_EACH(CNT_TOTAL, 0, 0) ") <> (0, 0, 0, 0, 0)"          \
    " ORDER BY webhook_id" SQL_CNT_UPSERT_SET ";"
/* PostgreSQL: moves the rows of webhook_counts c that match cond into stripe 0, in one
 * statement (sums unchanged). */
#define SQL_CNT_FOLD(cond)                                                                         \
    "WITH d AS (DELETE FROM webhook_counts c WHERE " cond " RETURNING c.*) "                       \
    SQL_CNT_APPLY("0", "SELECT webhook_id, " SQL_CNT_COLS " FROM d")
/* clang-format on */
/* What is owed to webhook m1 besides its deliveries (store/defer.c): pending too. */
#define SQL_WH_OWED(m) "coalesce((SELECT owed FROM webhooks WHERE id = " m "1), 0)"
/* A webhook's counts as struct hl_webhook_stats reads them (pending, succeeded, failed,
 * failing: pending counts the paused and the owed ones too), and its deliveries waiting with
 * status pending, owed ones included (alerting: the failing among them). */
/* clang-format off */
#define SQL_WH_STATS(m)                                                                            \
    "SELECT CAST(coalesce(sum(pending + paused), 0) + "                                            \
    SQL_WH_OWED(m)                                                                                 \
    " AS BIGINT), CAST(coalesce(sum(succeeded), 0) AS BIGINT),"                                    \
    " CAST(coalesce(sum(failed), 0) AS BIGINT), CAST(coalesce(sum(failing), 0) AS BIGINT)"         \
    " FROM webhook_counts WHERE webhook_id = " m "1"
#define SQL_WH_WAITING(m)                                                                          \
    "SELECT CAST(coalesce(sum(pending + failing), 0) + "                                           \
    SQL_WH_OWED(m)                                                                                 \
    " AS BIGINT) FROM webhook_counts WHERE webhook_id = " m "1"
/* clang-format on */
/* /metrics' gauges (hl_store_gauges), the same text on both backends. Each row holds a state, a
 * sub-state, a count and the oldest created_at of the group. A queued delivery's sub-state is
 * 1 when it is failing (SQL_IS_FAILING, its status aside): the index deliveries_queue holds
 * exactly the queued rows, keyed by (status, this expression, created_at) and with the columns
 * of the expression (so that both SQLite and PostgreSQL see it as covering), so the count is an
 * index-only scan of the queue alone, in group order, and each group's oldest is its first
 * entry. */
#define SQL_QUEUE_FAILING                                                                          \
    "CASE WHEN attempts > 0 AND last_status NOT BETWEEN 200 AND 299 THEN 1 ELSE 0 END"
#define SQL_QUEUED "status IN (" SQL_PENDING ", " SQL_PAUSED ")"
/* The state (one no delivery has) of the deliveries owed to deferring webhooks (store/defer.c),
 * over the partial index webhooks_deferring where there is one; a paused or disabled webhook's
 * count as paused, as its deliveries do. */
#define SQL_GAUGE_OWED_N 99
#define SQL_GAUGE_OWED HL_XSTR(SQL_GAUGE_OWED_N)
#define SQL_GAUGE_DELIVERIES                                                                       \
    "SELECT status, " SQL_QUEUE_FAILING                                                            \
    ", count(*), min(created_at) FROM deliveries WHERE " SQL_QUEUED " GROUP BY 1, 2"               \
    " UNION ALL SELECT CASE WHEN active = 1 THEN " SQL_GAUGE_OWED " ELSE " SQL_PAUSED " END, 0,"   \
    " CAST(sum(owed) AS BIGINT), 0 FROM webhooks WHERE deferring <> 0 AND deleted_at = 0"          \
    " GROUP BY 1"
/* Webhooks by (active, disabled): over the covering index webhooks_state; then those with an
 * open circuit breaker, as state SQL_GAUGE_BREAKER_N, over the partial index webhooks_held. */
#define SQL_GAUGE_BREAKER_N 2
#define SQL_GAUGE_WEBHOOKS                                                                         \
    "SELECT active, CASE WHEN disabled_at > 0 THEN 1 ELSE 0 END, count(*), 0 FROM webhooks"        \
    " WHERE deleted_at = 0 GROUP BY 1, 2"                                                          \
    " UNION ALL SELECT " HL_XSTR(                                                                  \
        SQL_GAUGE_BREAKER_N) ", 0, count(*), 0 FROM webhooks"                                      \
                             " WHERE breaker_opened_at <> 0 AND deleted_at = 0"
/* Files not done (state 0 waiting, 1 processing) over files_queue(state, created_at). */
#define SQL_GAUGE_FILES                                                                            \
    "SELECT state, 0, count(*), min(created_at) FROM files WHERE state < 2 GROUP BY state"
/* The indexes they need (both backends' migrations). */
#define SQL_GAUGE_INDEXES                                                                          \
    "CREATE INDEX deliveries_queue ON deliveries(status, (" SQL_QUEUE_FAILING "), created_at,"     \
    " attempts, last_status)"                                                                      \
    " WHERE " SQL_QUEUED ";"                                                                       \
    "CREATE INDEX webhooks_state ON webhooks(deleted_at, active, disabled_at);"

/* recover's failing deliveries not in flight get their next attempt now: the placeholders of the
 * webhook id, since, until (0: none) and now. */
#define SQL_RECOVER_FAILING(wh, since, until, now)                                                 \
    "UPDATE deliveries SET next_attempt_at = " now " WHERE webhook_id = " wh                       \
    " AND " SQL_IS_FAILING("") " AND lease_until <= " now " AND created_at >= " since              \
                               " AND (" until " = 0 OR created_at < " until ")"

/* ---- the lists (issue 20) ----
 * Each list seeks one index by the filter it was built for (ops.c picks it from the filters
 * given) and checks the other filters on the rows it reads; m is the parameter mark ("?" or
 * "$"), c the cast a text parameter compared with NULL needs ("" or "::text").
 *
 * The event log's parameters: 1 app, 2 type (-1: any), 3 tenant (NULL: any), 4 since, 5 until
 * (0: none), 6 below this id (keyset; INT64_MAX for the first page), 7 limit; by time also
 * 8 the highest created_at wanted and 9 the cursor's created_at (INT64_MAX: none). */
#define EV_REST(m, c)                                                                              \
    " AND (" m "2 < 0 OR type = " m "2) AND (" m "3" c " IS NULL OR tenant = " m "3)"              \
    " AND (" m "4 = 0 OR created_at >= " m "4) AND (" m "5 = 0 OR created_at < " m "5)"
/* Newest first by id from an index (app_id, [seek column,] id). */
#define EV_LIST_SQL(m, c, seek)                                                                    \
    "SELECT " HL_EVENT_COLS " FROM events WHERE app_id = " m "1" seek " AND id < " m               \
    "6" EV_REST(m, c) " ORDER BY id DESC LIMIT " m "7"
/* Within since/until: newest first by creation time (then id) from the index (created_at, id),
 * the cursor's row found by its created_at, so that a narrow window costs its own rows and no
 * more, wherever it lies. ix: how SQLite is told the index ("" on PostgreSQL). */
#define EV_LIST_TIME_SQL(m, c, ix)                                                                 \
    "SELECT " HL_EVENT_COLS " FROM events" ix " WHERE created_at >= " m "4 AND created_at <= " m   \
    "8 AND (created_at < " m "9 OR id < " m "6) AND app_id = " m                                   \
    "1" EV_REST(m, c) " ORDER BY created_at DESC, id DESC LIMIT " m "7"
/* A webhook's deliveries. Parameters: 1 webhook, 2 app, 3 status as shown (-1: any), 4 event
 * type (-1: any), 5 since, 6 until (0: none), 7 below this id, 8 limit; by status also 9 the
 * status stored; by time 10 the highest created_at wanted and 11 the cursor's created_at.
 * The status as shown is the seek's alone (DL_STATUS_SEEK, SQL_FAILING_ROWS), spelled on the
 * columns: PostgreSQL cannot estimate a condition on the CASE of SQL_SHOWN_STATUS (it takes
 * 0.5 % of the rows), and a status list that thinks its 20,000 matches are 100 reads and sorts
 * them all instead of reading the first 50 in index order. */
#define DL_REST(m)                                                                                 \
    " AND (" m "4 < 0 OR d.event_type = " m "4) AND (" m "5 = 0 OR d.created_at >= " m "5)"        \
    " AND (" m "6 = 0 OR d.created_at < " m "6)"
/* The deliveries shown with status 3, stored with status 9: pending shows the pending ones that
 * are not failing; every other stored status is shown as it is. */
#define DL_STATUS_SEEK(m)                                                                          \
    " AND d.status = " m "9 AND (" m "9 <> " SQL_PENDING " OR d.attempts = 0"                      \
    " OR d.last_status BETWEEN 200 AND 299)"
#define DL_LIST_SQL(m, ix, seek)                                                                   \
    HL_DELIVERY_SELECT_IX(ix)                                                                      \
    " WHERE d.webhook_id = " m "1" seek " AND d.id < " m "7 AND w.app_id = " m                     \
    "2" DL_REST(m) " ORDER BY d.id DESC LIMIT " m "8"
/* DL_LIST_SQL as PostgreSQL runs a filtered list (issue 20): the page's ids first, from an
 * index-only scan that tests the filter in the index (deliveries_webhook INCLUDEs attempts and
 * last_status; deliveries_webhook_type holds the type), then those rows. A plain index scan
 * reads every row it drops from the heap: at 1,000,000 deliveries a pending list read a
 * webhook's 10,000 failing rows (60-600 ms), and an app-wide ?event= list, whose webhooks
 * mostly never get that type, chose the primary key backwards and filtered every delivery (the
 * planner multiplies the webhook's and the type's shares: 1.5 s a webhook). The index-only seek
 * is also the cheapest plan it sees, so it keeps it; the nested loop keeps its order (no sort). */
#define DL_LIST_IDS_SQL(m, seek)                                                                   \
    "SELECT " HL_DELIVERY_COLS " FROM (SELECT d.id FROM deliveries d WHERE d.webhook_id = " m      \
    "1" seek " AND d.id < " m                                                                      \
    "7" DL_REST(m) " ORDER BY d.id DESC LIMIT " m "8) k"                                           \
                   " JOIN deliveries d ON d.id = k.id JOIN webhooks w ON w.id = d.webhook_id"      \
                   " JOIN events e ON e.id = d.event_id WHERE w.app_id = " m                       \
                   "2 ORDER BY k.id DESC"
#define DL_LIST_TIME_SQL(m)                                                                        \
    HL_DELIVERY_SELECT " WHERE d.webhook_id = " m "1 AND d.created_at >= " m "5"                   \
                       " AND d.created_at <= " m "10 AND (d.created_at < " m "11 OR d.id < " m     \
                       "7) AND w.app_id = " m                                                      \
                       "2" DL_REST(m) " ORDER BY d.created_at DESC, d.id DESC LIMIT " m "8"
/* The resources of a kind, oldest first by id from an index (app_id, kind, [tenant,] id):
 * parameters 1 app, 2 kind, 3 parent (NULL: any), 4 tenant (NULL: any), 5 above this id,
 * 6 limit. */
#define RES_LIST_SQL(m, c, seek)                                                                   \
    "SELECT " HL_RESOURCE_COLS " FROM resources WHERE app_id = " m "1 AND kind = " m "2" seek      \
    " AND id > " m "5 AND (" m "3" c " IS NULL OR parent_uid = " m "3) AND (" m "4" c              \
    " IS NULL OR tenant = " m "4) ORDER BY id LIMIT " m "6"

/* One row: the deliveries recover would pick (SQL_RECOVER_FAILING and HL_Q_RECOVER), failed and
 * failing, picking none: the same placeholders. */
#define SQL_RECOVER_COUNT(wh, since, until, now)                                                   \
    "SELECT count(*) FILTER (WHERE status = " SQL_FAILED                                           \
    "), count(*) FILTER (WHERE " SQL_IS_FAILING("") " AND lease_until <= " now                     \
                                                    ") FROM deliveries WHERE webhook_id = " wh     \
                                                    " AND created_at >= " since " AND (" until     \
                                                    " = 0 OR created_at < " until ")"

/* A person's word on a webhook's circuit breaker, the same in both dialects (m: the parameter
 * mark). A recover closes it (HL_Q_BREAKER_CLOSE): whoever recovers has usually just fixed the
 * endpoint, and should it still fail, the breaker opens again after breaker_after failures. A
 * resend is its probe, at once: the delivery goes to the front of its webhook's due ones
 * (HL_Q_BREAKER_FIRST: a claim takes an open breaker's earliest due delivery as its probe) and
 * the probe's time comes now (HL_Q_BREAKER_PROBE); its success closes the breaker, its failure
 * keeps it open (hl_breaker_outcome). With ordering "resource", a resent delivery that waits on
 * an earlier one of its resource keeps its place: the probe, now, is the earliest due delivery
 * whose resource is free (SQL_ORDER_FREE). Still one probe at a time: while an attempt of the
 * webhook is in flight (a probe leased), the probe's time stays where that attempt's record puts
 * it, and the resent delivery, first in line, is the probe then. Both change nothing while the
 * breaker is closed. */
#define SQL_BREAKER_QUERIES(m)                                                                     \
    [HL_Q_BREAKER_CLOSE] = "UPDATE webhooks SET breaker_fails = 0, breaker_opened_at = 0,"         \
                           " breaker_probes = 0, breaker_probe_at = 0 WHERE id = " m "1"           \
                           " AND (breaker_fails <> 0 OR breaker_opened_at <> 0)",                  \
    [HL_Q_BREAKER_FIRST] =                                                                         \
        "UPDATE deliveries SET next_attempt_at = (SELECT min(p.next_attempt_at)"                   \
        " - 1 FROM deliveries p WHERE p.webhook_id = deliveries.webhook_id"                        \
        " AND p.status = " SQL_PENDING ") WHERE id = " m "1"                                       \
        " AND status = " SQL_PENDING                                                               \
        " AND " SQL_ORDER_FREE("deliveries.") " AND EXISTS (SELECT 1 FROM webhooks w WHERE w.id "  \
                                              "= deliveries.webhook_id"                            \
                                              " AND w.breaker_opened_at <> 0)",                    \
    [HL_Q_BREAKER_PROBE] = "UPDATE webhooks SET breaker_probe_at = " m "2 WHERE id ="              \
                           " (SELECT webhook_id FROM deliveries WHERE id = " m "1)"                \
                           " AND breaker_opened_at <> 0 AND NOT EXISTS (SELECT 1 FROM"             \
                           " deliveries q WHERE q.webhook_id = webhooks.id"                        \
                           " AND q.lease_until > " m "2)"

/* The console's queries, the same in both dialects (m: the parameter mark, "?" or "$"), as
 * designated initializers of a backend's SQL table. */
#define SQL_CONSOLE_QUERIES(m)                                                                     \
    [HL_Q_RECOVER_COUNT] = SQL_RECOVER_COUNT(m "1", m "2", m "3", m "4"),                          \
    [HL_Q_WH_SERIES] = HL_SERIES_SQL(m "1", m "2", m "3", m "4"),                                  \
    [HL_Q_KEY_APP] = "SELECT a.id, a.uid, a.name, a.created_at FROM api_keys k"                    \
                     " JOIN apps a ON a.id = k.app_id WHERE k.uid = " m "1"                        \
                     " AND k.revoked_at IS NULL",                                                  \
    [HL_Q_CONSOLE_KEY_INSERT] = "INSERT INTO console_key(id, secret, created_at)"                  \
                                " VALUES(1, " m "1, " m "2) ON CONFLICT(id) DO NOTHING",           \
    [HL_Q_CONSOLE_KEY_GET] = "SELECT secret FROM console_key WHERE id = 1",                        \
    [HL_Q_PORTAL_PRUNE] = "DELETE FROM portal_used WHERE token_id IN (SELECT token_id"             \
                          " FROM portal_used WHERE expires_at <= " m "1 LIMIT 100)",               \
    [HL_Q_PORTAL_USE] = "INSERT INTO portal_used(token_id, expires_at) VALUES(" m "1, " m "2)"     \
                        " ON CONFLICT(token_id) DO NOTHING",                                       \
    [HL_Q_TOKEN_SPENT] = "SELECT 1 FROM portal_used WHERE token_id = " m "1"
/* While a webhook's circuit breaker is open, claims take only its probe: one of its due
 * deliveries, once breaker_probe_at has come; the claim that takes it moves breaker_probe_at to
 * the end of its lease, so one probe goes at a time, across nodes. SQL_BREAKER_GATE: whether
 * webhook w (its alias with the dot) may have any delivery claimed at now; each backend then
 * takes at most one of an open one's. */
#define SQL_BREAKER_GATE(w, now) "(" w "breaker_opened_at = 0 OR " w "breaker_probe_at <= " now ")"
/* A webhook's rate limit (w: its alias with the dot) in the claims: rate_tat is the theoretical
 * time, in microseconds, at which its next delivery is due (a GCRA): each delivery claimed moves
 * it on by SQL_RATE_STEP, from now when it lies in the past; a claim at now (microseconds) may
 * take SQL_RATE_ALLOW of it: what fits before now + SQL_RATE_BURST. The burst is one step and
 * HL_RATE_SLACK_US more, so that a claim that comes up to that late (a busy node) does not lose
 * the time it missed: over any window the deliveries are at most rate * (window + slack) + 1. */
#define HL_RATE_SLACK_US 1000000
#define SQL_RATE_STEP(w) "(1000000 / " w "rate_limit)"
#define SQL_RATE_BURST(w) "(1000000 / " w "rate_limit + " HL_XSTR(HL_RATE_SLACK_US) ")"
#define SQL_RATE_ALLOW(w, now_us)                                                                  \
    "(CASE WHEN " w "rate_limit = 0 THEN " HL_XSTR(                                                \
        HL_CLAIM_PER_WEBHOOK) " WHEN " w "rate_tat > " now_us " THEN (" now_us                     \
                              " + " SQL_RATE_BURST(w) " - " w "rate_tat) / " SQL_RATE_STEP(        \
                                  w) " ELSE " SQL_RATE_BURST(w) " / " SQL_RATE_STEP(w) " END)"

/* When the first due delivery held back by an open breaker (its next probe) or a spent rate
 * limit may go, after now (placeholder mark m: m1 is now). */
#define SQL_NEXT_RELEASE(m)                                                                        \
    "SELECT min(CASE WHEN w.breaker_opened_at <> 0 THEN w.breaker_probe_at ELSE"                   \
    " (w.rate_tat + " SQL_RATE_STEP("w.") " - " SQL_RATE_BURST(                                    \
        "w.") ") / 1000 + 1 END)"                                                                  \
              " FROM webhooks w WHERE (w.breaker_opened_at <> 0 OR w.rate_limit > 0)"              \
              " AND w.active = 1 AND w.deleted_at = 0"                                             \
              " AND CASE WHEN w.breaker_opened_at <> 0 THEN w.breaker_probe_at ELSE"               \
              " (w.rate_tat + " SQL_RATE_STEP("w.") " - " SQL_RATE_BURST(                          \
                  "w.") ") / 1000 + 1 END > " m "1"                                                \
                        " AND EXISTS (SELECT 1 FROM deliveries d WHERE d.webhook_id = w.id"        \
                        " AND d.status = " SQL_PENDING " AND d.next_attempt_at <= " m "1)"

/* Whether delivery d (its alias with the dot) may be claimed as far as ordering goes: it has no
 * resource to wait on (order_key NULL: its webhook's ordering is "none", or a webhook.test), or
 * no earlier delivery of its webhook and resource is still owed (pending, being retried, or
 * parked). Earlier is lower id: ids follow the commits that make them for one resource (a
 * resource's changes take its row's lock in turn). Served by the index deliveries_order. */
#define SQL_ORDER_FREE(d)                                                                          \
    "(" d "order_key IS NULL OR NOT EXISTS (SELECT 1 FROM deliveries o"                            \
    " WHERE o.webhook_id = " d "webhook_id AND o.order_key = " d "order_key AND o.id < " d "id"    \
    " AND o.status IN (" SQL_PENDING ", " SQL_PAUSED ")))"

/* In a webhook update (cond: when the endpoint changes or is enabled again), SET items that
 * close its circuit breaker: the next attempt tells anew. */
#define SQL_BREAKER_RESET(cond)                                                                    \
    " breaker_fails = CASE WHEN " cond " THEN 0 ELSE breaker_fails END,"                           \
    " breaker_opened_at = CASE WHEN " cond " THEN 0 ELSE breaker_opened_at END,"                   \
    " breaker_probes = CASE WHEN " cond " THEN 0 ELSE breaker_probes END"

/* The column lists, in the order the readers in rows.c take them. */
#define HL_APP_COLS "id, uid, name, created_at"
#define HL_WEBHOOK_COLS                                                                            \
    "id, uid, app_id, url, description, entities, event_types, active, secret, prev_secrets,"      \
    " created_at, updated_at, last_triggered_at, last_success_at, last_failure_at,"                \
    " failing_since, disabled_at, disabled_reason, deleted_at, filter, headers"                    \
    ", kind, silence_ms, expect_events"         /* alerting (issue 21) */                          \
    ", breaker_opened_at, rate_limit, ordering" /* breaker, rateLimit, ordering (issue 19) */      \
    ", owed"                                    /* deferred fan-out (store/defer.c) */
#define HL_RESOURCE_COLS                                                                           \
    "id, kind, uid, app_id, parent_uid, tenant, body, version, created_at, updated_at"
#define HL_RESOURCE_COLS_R                                                                         \
    "r.id, r.kind, r.uid, r.app_id, r.parent_uid, r.tenant, r.body, r.version, r.created_at,"      \
    " r.updated_at"
#define HL_EVENT_COLS "id, uid, type, app_id, tenant, resource_uid, created_at, payload"
#define HL_DELIVERY_COLS                                                                           \
    "d.id, d.webhook_id, w.uid, w.deleted_at, e.uid, e.type, " SQL_SHOWN_STATUS ", d.attempts,"    \
    " d.last_status, d.last_error, d.next_attempt_at, d.created_at, d.delivered_at"
/* ix: an index SQLite is told to use for deliveries d ("INDEXED BY x"), or "". */
#define HL_DELIVERY_SELECT_IX(ix)                                                                  \
    "SELECT " HL_DELIVERY_COLS " FROM deliveries d" ix " JOIN webhooks w ON w.id = d.webhook_id"   \
    " JOIN events e ON e.id = d.event_id"
#define HL_DELIVERY_SELECT HL_DELIVERY_SELECT_IX("")

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
 * claim's time. prev_secret_until is when the last earlier secret stops signing: until then the
 * job carries the list, and the signer skips the ones that have expired. */
#define HL_JOB_COLS(now)                                                                           \
    "d.id, d.webhook_id, w.app_id, d.event_id, e.uid, e.created_at, d.attempts, d.created_at,"     \
    " w.url, w.secret, CASE WHEN w.prev_secret_until > " now " THEN w.prev_secrets ELSE '' END,"   \
    " e.payload, w.uid, w.headers, w.breaker_opened_at, w.breaker_probes, w.rate_limit"
/* An ingestion job: the file, its app, the claim's attempt number (attempts: the expression that
 * gives it) and its resource (files f, apps a, resources r). */
#define HL_INGEST_COLS(attempts) "f.uid, f.app_id, a.uid, f.path, " attempts ", " HL_RESOURCE_COLS_R
/* The order in which files wait (files f, at time now): the app with the fewest files being
 * processed first, then the oldest file, so that no app's backlog or slow file keeps another
 * app's files waiting. */
#define HL_INGEST_ORDER(now)                                                                       \
    "(SELECT count(*) FROM files p WHERE p.app_id = f.app_id AND p.state = 1"                      \
    " AND p.lease_until > " now "), f.created_at, f.uid"

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
    HL_Q_WH_GET_ANY,    /* as HL_Q_WH_GET, deleted ones too */
    HL_Q_WH_LIST,
    HL_Q_WH_UPDATE,
    HL_Q_WH_PAUSE_DELIVERIES,
    HL_Q_WH_RESUME_DELIVERIES,
    HL_Q_WH_DELETE,
    HL_Q_WH_CANCEL_DELIVERIES,
    HL_Q_WH_GONE,
    HL_Q_WH_AUTODISABLE,
    HL_Q_WH_BREAKER,   /* an attempt's word on its webhook's circuit breaker (hl_sql_breaker) */
    HL_Q_WH_POLICY,    /* id, rate_limit: a webhook's delivery policy */
    HL_Q_NEXT_RELEASE, /* one row: when a webhook held by its breaker or rate may claim next */
    HL_Q_RES_GET,
    HL_Q_RES_LIST,        /* RES_LIST_SQL: a kind's resources... */
    HL_Q_RES_LIST_TENANT, /* ... of one tenant */
    HL_Q_RES_INSERT,
    HL_Q_RES_UPDATE,
    HL_Q_RES_DELETE,
    HL_Q_RES_EXISTS,
    HL_Q_FILE_INSERT,
    HL_Q_FILE_DELETE,
    HL_Q_CHUNKS_DELETE,
    HL_Q_CHUNK_INSERT,
    HL_Q_FILE_DONE,
    HL_Q_FILE_RENEW,   /* uid, attempts (the claim's), lease_until */
    HL_Q_FILE_RELEASE, /* uid, attempts (the claim's), attempts to give back */
    HL_Q_IDEM_INSERT,
    HL_Q_IDEM_GET,
    HL_Q_EV_LIST,        /* EV_LIST_SQL: the event log, no filter or only since/until... */
    HL_Q_EV_LIST_TYPE,   /* ... one event type */
    HL_Q_EV_LIST_TENANT, /* ... one tenant */
    HL_Q_EV_LIST_TIME,   /* ... within since/until alone (EV_LIST_TIME_SQL) */
    HL_Q_EV_AT,          /* an event's created_at by app and id (a time list's cursor) */
    HL_Q_EV_GET,
    HL_Q_ATTEMPT_INSERT,
    HL_Q_DELIV_SUCCESS,
    HL_Q_DELIV_RETRY,
    HL_Q_DELIV_FAILED,
    HL_Q_NEXT_DUE,
    HL_Q_DL_BY_EVENT,
    HL_Q_DL_LIST,         /* DL_LIST_SQL: a webhook's deliveries, no filter... */
    HL_Q_DL_LIST_STATUS,  /* ... in one status */
    HL_Q_DL_LIST_FAILING, /* ... failing (pending after a failed attempt) */
    HL_Q_DL_LIST_TYPE,    /* ... of one event type */
    HL_Q_DL_LIST_TIME,    /* ... within since/until (DL_LIST_TIME_SQL) */
    HL_Q_DL_AT,           /* a delivery's created_at by id (a time list's cursor) */
    HL_Q_WH_IDS,          /* the ids of the app's webhooks, deleted ones too */
    HL_Q_DL_GET,
    HL_Q_ATT_LIST,
    HL_Q_DL_RESEND,
    HL_Q_RECOVER,
    HL_Q_RECOVER_FAILING,
    HL_Q_ROTATE,
    HL_Q_WH_STATS,
    HL_Q_GAUGE_DELIVERIES,
    HL_Q_GAUGE_WEBHOOKS,
    HL_Q_GAUGE_FILES,
    HL_Q_CHUNK_LIST,
    HL_Q_FILE_PATH,
    /* retention (hl_store_prune and friends) */
    HL_Q_PRUNE_SCAN,       /* old events after a cursor: id, created_at, owed (one is owed) */
    HL_Q_CNT_FOLD,         /* moves the counter stripes of sessions gone into stripe 0 */
    HL_Q_PRUNE_GUARD,      /* one row: 1 when this transaction may prune (one node at a time) */
    HL_Q_PRUNE_LOCK,       /* holds the final deliveries of the events named until commit */
    HL_Q_PRUNE_ATTEMPTS,   /* DELETE: the attempts of those deliveries */
    HL_Q_PRUNE_DELIVERIES, /* DELETE: the final deliveries of events none of whose is owed */
    HL_Q_PRUNE_EVENTS,     /* DELETE: the events named that have no delivery left */
    HL_Q_PRUNE_COUNT,      /* one row: the deliveries and attempts of the events named */
    HL_Q_IDEM_EXPIRE,      /* DELETE: at most n idempotency keys created before a time */
    HL_Q_IDEM_COUNT,       /* one row: the idempotency keys created before a time */
    HL_Q_OLDEST_EVENT,     /* one row: the oldest created_at (NULL or 0 when none) */
    /* per-app limits */
    HL_Q_APP_LOCK,    /* locks the app's row until the transaction ends (webhook creates) */
    HL_Q_WH_COUNT,    /* the app's webhooks */
    HL_Q_APP_STORAGE, /* the bytes of the app's stored context files */
    /* The console (issue 15). */
    HL_Q_RECOVER_COUNT,      /* one row: what HL_Q_RECOVER and HL_Q_RECOVER_FAILING would pick */
    HL_Q_WH_SERIES,          /* a webhook's attempts grouped by time bucket */
    HL_Q_KEY_APP,            /* the app of an unrevoked key, by the key's uid */
    HL_Q_CONSOLE_KEY_INSERT, /* the console's signing key, unless there is one */
    HL_Q_CONSOLE_KEY_GET,
    HL_Q_PORTAL_PRUNE, /* used portal links that expired before a time, forgotten */
    HL_Q_PORTAL_USE,   /* a portal link marked used, unless it was */
    HL_Q_TOKEN_SPENT,  /* one row (1) when a token id is in portal_used */
    /* delivery policy (issue 19) */
    HL_Q_WH_FILTERED,   /* the webhooks with a filter that would get an event were it not for the
                         * filter (app, entity bit, type bit): id, filter, deferring */
    HL_Q_DELIV_INSERT,  /* one pending delivery: event id, webhook id, now, the resource that
                         * orders it when the webhook has ordering (NULL: not ordered), the
                         * event's type */
    HL_Q_OWE_INSERT,    /* as HL_Q_DELIV_INSERT for a deferring webhook (store/defer.c) */
    HL_Q_BREAKER_CLOSE, /* UPDATE: webhook id: its circuit breaker closed (a recover) */
    HL_Q_BREAKER_FIRST, /* UPDATE: delivery id: first in its open-breaker webhook's queue */
    HL_Q_BREAKER_PROBE, /* UPDATE: delivery id, now: its open-breaker webhook probes now */
    /* alerting (issue 21, store/alerts.c) */
    HL_Q_WH_ALERTING,     /* UPDATE: id, kind, silence_ms, expect_events */
    HL_Q_WH_BY_ID,        /* HL_WEBHOOK_COLS of a webhook by id, deleted or not */
    HL_Q_APP_UID,         /* the uid of an app by id */
    HL_Q_OP_COUNT,        /* app, event bit, url: operational webhooks that want it */
    HL_Q_OP_EVENT,        /* INSERT an event (hl_event_args) RETURNING id */
    HL_Q_OP_FANOUT,       /* event id, now, app, event bit, url, event type: its deliveries */
    HL_Q_ALERT_FAILING,   /* UPDATE: id, since: healthy -> failing (changes a row or none) */
    HL_Q_ALERT_RECOVERED, /* UPDATE: id: failing -> healthy RETURNING the spell's start */
    HL_Q_WAITING,         /* a webhook's pending deliveries */
    HL_Q_RECOVERED_COUNT, /* ids: of those deliveries, the succeeded ones with attempts > 1 */
    HL_Q_SILENT_RESET,    /* UPDATE: alerted webhooks that succeeded since become eligible */
    HL_Q_SILENT_DUE,      /* now, limit: ids of webhooks whose silence alert is due */
    HL_Q_SILENT_CLAIM,    /* UPDATE: id, now: claims its alert (changes a row or none) */
    /* deferred fan-out (store/defer.c); placeholders where the backend does not defer */
    HL_Q_DEFER_ENTER,  /* UPDATE: after: webhooks with more than that queued begin */
    HL_Q_DEFER_LIST,   /* after id, limit: the deferring webhooks (struct hl_deferring) */
    HL_Q_DEFER_MOVE,   /* INSERT: webhook, after event id, limit, now: its first owed deliveries
                        * made, RETURNING their event ids */
    HL_Q_DEFER_FORGET, /* DELETE: webhook, after event id, up to event id: owed rows made */
    HL_Q_DEFER_MARK,   /* UPDATE: webhook, event id: where its owed rows are looked for */
    HL_Q_DEFER_DROP,   /* DELETE: webhook, after event id, limit: owed rows of a deleted one */
    HL_Q_DEFER_LEAVE,  /* UPDATE: webhook: stops deferring, unless something is still owed */
    HL_Q_SHARED        /* a backend's own queries are numbered from here */
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

/* The statements of alerting (store/alerts.c), spelled once for both backends: m marks a
 * placeholder ("?" or "$"), ids1 an IN list of the id array bound to the first parameter (see
 * hl_arg_ids), greatest the larger of two values (SQLite: max; PostgreSQL: greatest).
 * HL_Q_SILENT_DUE: the webhooks (through the partial index of those with silence_ms) quiet for
 * their silence while events were expected: expectEvents, or a delivery owed to them (pending,
 * or failed for good) made after their last success and at least the silence ago. */
#define HL_ALERTING_SQL(m, ids1, greatest)                                                         \
    [HL_Q_WH_ALERTING] =                                                                           \
        "UPDATE webhooks SET kind = " m "2, silence_ms = " m "3, expect_events = " m "4"           \
        " WHERE id = " m "1",                                                                      \
    [HL_Q_WH_BY_ID] = "SELECT " HL_WEBHOOK_COLS " FROM webhooks WHERE id = " m "1",                \
    [HL_Q_APP_UID] = "SELECT uid FROM apps WHERE id = " m "1",                                     \
    [HL_Q_OP_COUNT] =                                                                              \
        "SELECT count(*) FROM webhooks WHERE app_id = " m "1 AND kind = 1 AND active = 1"          \
        " AND deleted_at = 0 AND (event_types & " m "2) <> 0 AND url <> " m "3",                   \
    [HL_Q_OP_EVENT] =                                                                              \
        "INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at,"                  \
        " payload) VALUES(" m "1, " m "2, " m "3, " m "4, " m "5, " m "6, " m "7) RETURNING id",   \
    [HL_Q_OP_FANOUT] =                                                                             \
        "INSERT INTO deliveries(event_id, webhook_id, status, next_attempt_at,"                    \
        " created_at, event_type) SELECT " m "1, id, " SQL_PENDING ", " m "2, " m "2, " m "6"      \
        " FROM webhooks"                                                                           \
        " WHERE app_id = " m "3 AND kind = 1 AND active = 1 AND deleted_at = 0"                    \
        " AND (event_types & " m "4) <> 0 AND url <> " m "5",                                      \
    [HL_Q_ALERT_FAILING] = "UPDATE webhooks SET alert_state = 1, alert_since = " m "2"             \
                           " WHERE id = " m "1 AND kind = 0 AND alert_state = 0",                  \
    [HL_Q_ALERT_RECOVERED] = "UPDATE webhooks SET alert_state = 0 WHERE id = " m "1"               \
                             " AND alert_state = 1 RETURNING alert_since",                         \
    [HL_Q_WAITING] = SQL_WH_WAITING(m),                                                            \
    [HL_Q_RECOVERED_COUNT] = "SELECT count(*) FROM deliveries WHERE id IN " ids1                   \
                             " AND status = " SQL_SUCCEEDED " AND attempts > 1",                   \
    [HL_Q_SILENT_RESET] = "UPDATE webhooks SET silent_at = 0 WHERE silence_ms > 0"                 \
                          " AND silent_at <> 0 AND last_success_at > silent_at",                   \
    [HL_Q_SILENT_DUE] =                                                                            \
        "SELECT w.id FROM webhooks w WHERE w.silence_ms > 0 AND w.kind = 0"                        \
        " AND w.active = 1 AND w.deleted_at = 0 AND w.silent_at = 0"                               \
        " AND " greatest "(w.last_success_at, w.created_at) <= " m "1 - w.silence_ms"              \
        " AND (w.expect_events = 1 OR EXISTS (SELECT 1 FROM deliveries d"                          \
        " WHERE d.webhook_id = w.id AND d.status IN (" SQL_PENDING ", " SQL_FAILED ")"             \
        " AND d.created_at > w.last_success_at"                                                    \
        " AND d.created_at <= " m "1 - w.silence_ms))"                                             \
        " ORDER BY w.id LIMIT " m "2",                                                             \
    [HL_Q_SILENT_CLAIM] =                                                                          \
        "UPDATE webhooks SET silent_at = " m "2 WHERE id = " m "1 AND silent_at = 0",

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
extern const struct hl_reader hl_read_gauge;    /* struct hl_gauge_row */
extern const struct hl_reader hl_read_ingest;   /* struct hl_ingest_job: HL_INGEST_COLS() */
extern const struct hl_reader hl_read_chunk;    /* struct hl_text_chunk */
extern const struct hl_reader hl_read_series;   /* struct hl_series_point: one attempt */
extern const struct hl_reader hl_read_key32;    /* struct hl_key32: the first column */
extern const struct hl_reader hl_read_int;      /* int64_t: the first column */
extern const struct hl_reader hl_read_str;      /* char *: the first column, malloc'd */
extern const struct hl_reader hl_read_prune;    /* struct hl_prune_row: HL_Q_PRUNE_SCAN */
extern const struct hl_reader hl_read_pair;     /* int64_t[2]: the first two columns */
extern const struct hl_reader hl_read_filter;   /* struct hl_wh_filter: HL_Q_WH_FILTERED */

extern const struct hl_reader hl_read_deferring; /* struct hl_deferring: HL_Q_DEFER_LIST */

/* A webhook whose filter decides whether an event is delivered to it (issue 19). */
struct hl_wh_filter {
    int64_t id;
    char *filter; /* JSON object text */
    size_t len;
    int deferring; /* its deliveries are owed (HL_Q_OWE_INSERT), not made (store/defer.c) */
};

/* A deferring webhook as a defer step sees it (store/defer.c). */
struct hl_deferring {
    int64_t id;
    int active;
    int64_t deleted_at;
    int64_t owed;       /* its owed rows */
    int64_t owed_after; /* every owed row of it has a higher event id */
    int64_t pending;    /* its deliveries pending and not failing (webhook_counts) */
};

/* An event as a prune step sees it. */
struct hl_prune_row {
    int64_t id, created_at;
    int owed; /* one of its deliveries is pending or paused */
};

/* A row of a gauge query (SQL_GAUGE_*): a group's state and sub-state, its count and oldest. */
struct hl_gauge_row {
    int64_t state, sub, n, oldest;
};

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
    HL_SESS_TX_LAZY,  /* a transaction whose loss in a crash costs nothing (it is done again):
                       * committed without waiting for the disk */
    HL_SESS_DISPATCH, /* the dispatcher's reads (PostgreSQL: its own connection) */
    HL_SESS_SNAPSHOT, /* reads that all see one moment, so a row and its list agree (SQLite: a
                       * read transaction on a reader; PostgreSQL: REPEATABLE READ, READ ONLY) */
};

/* One connection held for one operation. */
struct hl_sess {
    struct hl_store *st;
    void *conn; /* the backend's */
    int tx;     /* a transaction is open */
    int lazy;   /* HL_SESS_TX_LAZY: the commit does not wait for the disk */
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
     * the deliveries made to *made. Webhooks with a filter get none: *filter_event is set to
     * the event's id when such webhooks may want it (0: none can), for hl_sql_apply to decide
     * (the filter is matched in C, once for both backends). */
    int (*event)(struct hl_sess *s, const struct hl_change *ch, int64_t *made,
                 int64_t *filter_event);

    /* The operations of store.h that differ, with its contracts. */
    void (*destroy)(struct hl_store *st); /* hl_store_close */
    int (*lock)(struct hl_store *st, char *err, size_t errlen);
    int (*commit)(struct hl_store *st, const struct hl_change *ch, size_t n,
                  const struct hl_idem *idem, int64_t *deliveries);
    /* hl_store_commit_start (ch already packed); NULL where commits run in the caller's thread:
     * then commit runs there and done is called before hl_store_commit_start returns. */
    int (*commit_start)(struct hl_store *st, const struct hl_change *ch, size_t n,
                        const struct hl_idem *idem, hl_commit_done_fn done, void *arg);
    int (*claim)(struct hl_store *st, const struct hl_claim *c, struct hl_job **out, size_t *n);
    int (*record)(struct hl_store *st, const struct hl_attempt *a, size_t n);
    /* hl_store_claim_hook; NULL where commits claim nothing themselves. */
    void (*claim_hook)(struct hl_store *st, const struct hl_claim_hook *h);
    int (*release_leases)(struct hl_store *st);
    int (*ingest_claim)(struct hl_store *st, int64_t now, int64_t lease_until,
                        struct hl_ingest_job *out);
    int (*space)(struct hl_store *st, struct hl_store_space *out);
    /* hl_store_release_space; NULL where the database gives space back by itself. */
    int (*release)(struct hl_store *st, int64_t *released);
    int (*compact)(struct hl_store *st, hl_compact_progress_fn progress, void *arg, char *err,
                   size_t errlen);
    int one_writer; /* hl_store_one_writer */
    /* A webhook with a backlog gets owed rows instead of deliveries (store/defer.c): where a
     * delivery costs the commit a page per webhook-first index (SQLite's WAL writes whole
     * pages); PostgreSQL logs the rows alone and does not defer. */
    int defers;
};

/* The part every backend's store starts with. */
struct hl_store {
    const struct hl_backend *be;
    pthread_mutex_t wake_mu;
    pthread_cond_t wake_cv;
    uint64_t wake_seq;
    void (*on_notify)(void *arg); /* called by hl_store_notify, e.g. to wake a poll loop */
    void *on_notify_arg;
    int notifying;          /* calls of on_notify under way */
    uint64_t pruned[3];     /* events, deliveries, attempts removed through this store (atomics) */
    struct hl_buf *explain; /* hl_store_explain: statements are explained into it, not run */
    /* alerting (issue 21) */
    hl_op_event_fn op_event; /* builds operational events; NULL: none are made */
    uint64_t op_made;        /* operational deliveries written (atomic; may count rollbacks) */
};

/* For backends: initialises the common part. */
void hl_store_base_init(struct hl_store *st, const struct hl_backend *be);
/* For backends: releases the common part. */
void hl_store_base_destroy(struct hl_store *st);

/* For backends and hl_store_claim: unpacks the payloads of claimed jobs out[0..n) when rc is 0;
 * when rc is an error, or an unpacking fails, frees them all (*out NULL, *n 0). Returns rc, or
 * the unpacking's error. */
int hl_jobs_unpack(int rc, struct hl_job **out, size_t *n);

/* The backends' hl_store_open. */
int hl_sqlite_open(const char *path, struct hl_store **out, char *err, size_t errlen);
int hl_postgres_open(const char *conninfo, struct hl_store **out, char *err, size_t errlen);
/* The backends' hl_store_exists. */
int hl_sqlite_exists(const char *path, char *err, size_t errlen);
int hl_postgres_exists(const char *conninfo, char *err, size_t errlen);

/* Earlier secrets as a webhook row keeps them (prev_secrets): "<until> <secret>" pairs, newest
 * first, separated by spaces (secrets are "whsec_" and base64: no spaces). Longest text: */
#define HL_PREV_SECRETS_TEXT_MAX (HL_PREV_SECRETS_MAX * (20 + 1 + HL_SECRET_SIZE + 1))
/* Reads the text p[0..len) (NULL: none) into *out; a malformed pair and what follows it are
 * left out, as are pairs beyond HL_PREV_SECRETS_MAX. */
void hl_prev_secrets_read(const char *p, size_t len, struct hl_prev_secrets *out);
/* Writes in as text into out (HL_PREV_SECRETS_TEXT_MAX bytes, NUL-terminated); returns the
 * latest until of them (0 when in is empty). */
int64_t hl_prev_secrets_write(const struct hl_prev_secrets *in, char *out);

/* The seven parameters of an event's insert, in the order of both backends' statements: uid,
 * app_id, type, tenant, resource_uid, created_at, payload. */
#define HL_EVENT_ARGS 7
void hl_event_args(const struct hl_event *e, struct hl_arg a[HL_EVENT_ARGS]);

/* ---- event payloads as stored (payload.c) ---- */

/* The largest payload the store packs or unpacks. */
#define HL_PAYLOAD_MAX (64u << 20)

/* Packs a payload for storage into out (reset first; its max must allow n bytes). Leaves out
 * empty when the payload is better kept as it is; the bytes stored are then p itself. Returns 0
 * or HL_ENOMEM. */
int hl_payload_pack(const char *p, size_t n, struct hl_buf *out);
/* The exact payload bytes of a stored value (packed or kept as it was): *out is malloc'd and
 * NUL-terminated, *out_len its length. Returns 0, HL_ENOMEM, or HL_ESTORE when a packed value is
 * damaged (nothing is returned then). */
int hl_payload_unpack(const void *stored, size_t n, char **out, size_t *out_len);
/* Whether a stored value is packed. */
int hl_payload_packed(const void *stored, size_t n);

/* ---- helpers of the operations written once (ops.c), for the backends' own ---- */

/* Runs one statement on a session of its own; on error, rows holds nothing. */
int hl_sql_once(struct hl_store *st, enum hl_sess_kind kind, int q, const struct hl_arg *a,
                size_t n, struct hl_rows *rows);

/* In a transaction: writes n changes (their resources, files, events and deliveries) and the
 * idempotency answer; adds the deliveries made to *made. */
int hl_sql_apply(struct hl_sess *s, const struct hl_change *ch, size_t n,
                 const struct hl_idem *idem, int64_t *made);
/* How many bytes of an attempt's answer its row keeps (HL_SUCCESS_RESPONSE_KEEP of a success). */
static inline size_t hl_sql_response_keep(const struct hl_attempt *at)
{
    size_t keep = at->response_len;
    return at->outcome == HL_OUT_SUCCESS && keep > HL_SUCCESS_RESPONSE_KEEP
               ? HL_SUCCESS_RESPONSE_KEEP
               : keep;
}
/* In a transaction: an attempt's row and its delivery's new state. now: when it is recorded. */
int hl_sql_record_delivery(struct hl_sess *s, const struct hl_attempt *a, int64_t now);
/* In a transaction: disables the attempt's webhook as the outcome policy decided (hl_retry_outcome
 * in delivery/retry.h): on HL_OUT_GONE, or when its run of failures began at or before
 * at->disable_failing_since (0: not by this attempt), with at->disable_reason as the reason; the
 * store makes no decision of its own. *disabled says whether this call disabled it; its pending
 * deliveries are then for hl_sql_park. */
int hl_sql_disable(struct hl_sess *s, const struct hl_attempt *at, int64_t now, int *disabled);
/* In a transaction: applies an attempt's word on its webhook's circuit breaker (struct
 * hl_attempt's breaker_* fields); a success changes the row only when the breaker counted
 * failures. Call it for a batch's attempts of one webhook in the order they ended; prev: the
 * webhook's attempt before at in the batch, or NULL (a success after a success changes
 * nothing, and is not looked up). */
int hl_sql_breaker(struct hl_sess *s, const struct hl_attempt *at, const struct hl_attempt *prev,
                   int64_t now);
/* In a transaction: parks a webhook's pending deliveries until it is enabled again. */
int hl_sql_park(struct hl_sess *s, int64_t webhook_id);

/* ---- operational events inside the record transaction (store/alerts.c, issue 21) ---- */

/* What an attempt changed in its webhook's alert state. */
struct hl_alert_mark {
    int what;      /* 0: nothing; HL_OPEV_ENDPOINT_FAILING or HL_OPEV_ENDPOINT_RECOVERED */
    int64_t since; /* recovered: when the spell began */
};

/* In a transaction: moves the attempt's webhook between healthy and failing as the attempt
 * says (a failure other than a 410 makes a healthy ordinary webhook failing; a success makes a
 * failing one healthy), saying in *m what changed. Writes webhook rows only: on PostgreSQL, call
 * it where the transaction locks its webhooks. */
int hl_sql_alert_mark(struct hl_sess *s, const struct hl_attempt *at, struct hl_alert_mark *m);
/* In a transaction, once the attempts a[0..n) are recorded: the event of a[i]'s mark m. */
int hl_sql_alert_emit(struct hl_sess *s, const struct hl_attempt *a, size_t n, size_t i,
                      const struct hl_alert_mark *m, int64_t now);
/* In a transaction: endpoint.disabled for webhook_id, disabled at now for reason. */
int hl_sql_alert_disabled(struct hl_sess *s, int64_t webhook_id, const char *reason, int64_t now);
/* In a transaction: delivery.exhausted for the attempt's delivery. */
int hl_sql_alert_exhausted(struct hl_sess *s, const struct hl_attempt *at, int64_t now);

#endif
