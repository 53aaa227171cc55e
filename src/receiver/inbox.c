/* `hookline listen`'s state file: de-duplication and the hand-off queue in one SQLite table.
 * See inbox.h for the invariants. */
#include "receiver/inbox.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/err.h"

#define SCHEMA_VERSION 2
#define BUSY_TIMEOUT_MS 10000

_Static_assert(HL_INBOX_PENDING == 0 && HL_INBOX_DONE == 1 && HL_INBOX_FAILED == 2,
               "the states are the values of the state column");

static const char SCHEMA[] =
    "CREATE TABLE IF NOT EXISTS events(id INTEGER PRIMARY KEY,"
    " event_id TEXT NOT NULL UNIQUE, event TEXT NOT NULL, tenant TEXT NOT NULL,"
    " received_at INTEGER NOT NULL, state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
    " next_at INTEGER NOT NULL, body BLOB, headers TEXT, last_error TEXT);"
    "CREATE INDEX IF NOT EXISTS events_due ON events(next_at, id) WHERE state = 0;"
    /* version 2: pruning finds the old handed-on rows without a scan */
    "CREATE INDEX IF NOT EXISTS events_done ON events(received_at) WHERE state = 1;"
    "PRAGMA user_version = 2;";

enum q {
    Q_ADD,
    Q_NEXT,
    Q_DONE,
    Q_RETRY,
    Q_FAIL,
    Q_RESUME,
    Q_COUNT,
    Q_PRUNE,
    Q_REQUEUE,
    Q_STATE,
    Q_REQUEUE_FAILED,
    NQ
};

static const char *const SQL[NQ] = {
    [Q_ADD] = "INSERT INTO events(event_id, event, tenant, received_at, state, next_at, body,"
              " headers) VALUES(?1, ?2, ?3, ?4, 0, ?4, ?5, ?6)"
              " ON CONFLICT(event_id) DO NOTHING",
    [Q_NEXT] = "SELECT id, event_id, event, tenant, received_at, attempts, next_at, body, headers"
               " FROM events WHERE state = 0 ORDER BY next_at, id LIMIT 1",
    [Q_DONE] = "UPDATE events SET state = 1, attempts = attempts + 1, body = NULL,"
               " headers = NULL, last_error = NULL WHERE id = ?1",
    [Q_RETRY] = "UPDATE events SET attempts = attempts + 1, next_at = ?2, last_error = ?3"
                " WHERE id = ?1",
    [Q_FAIL] = "UPDATE events SET state = 2, attempts = attempts + 1, last_error = ?2"
               " WHERE id = ?1",
    [Q_RESUME] = "UPDATE events SET next_at = ?1 WHERE state = 0 AND next_at > ?1",
    [Q_COUNT] = "SELECT count(*) FROM events WHERE state = 0",
    [Q_PRUNE] = "DELETE FROM events WHERE id IN (SELECT id FROM events WHERE state = 1"
                " AND received_at < ?1 ORDER BY received_at LIMIT ?2)",
    [Q_REQUEUE] = "UPDATE events SET state = 0, attempts = 0, next_at = ?2"
                  " WHERE event_id = ?1 AND state = 2",
    [Q_STATE] = "SELECT state FROM events WHERE event_id = ?1",
    [Q_REQUEUE_FAILED] = "UPDATE events SET state = 0, attempts = 0, next_at = ?1 WHERE state = 2",
};

struct hl_inbox {
    sqlite3 *db;
    sqlite3_stmt *q[NQ];
    pthread_mutex_t mu;
};

/* Runs one statement that returns no rows, then resets it. */
static int step_done(sqlite3_stmt *st)
{
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    if (rc == SQLITE_DONE)
        return HL_OK;
    return rc == SQLITE_NOMEM ? HL_ENOMEM : HL_ESTORE;
}

/* Reads the text of column col into dst (HOOKLINE_FIELD_MAX bytes), truncating what cannot
 * be there: every such field was checked to fit when it was recorded. */
static void column_field(sqlite3_stmt *st, int col, char dst[HOOKLINE_FIELD_MAX])
{
    const unsigned char *t = sqlite3_column_text(st, col);
    snprintf(dst, HOOKLINE_FIELD_MAX, "%s", t ? (const char *)t : "");
}

/* Copies column col (a blob or text, possibly NULL) into a new NUL-terminated allocation. */
static int column_copy(sqlite3_stmt *st, int col, char **out, size_t *len)
{
    const void *p = sqlite3_column_blob(st, col);
    size_t n = (size_t)sqlite3_column_bytes(st, col);
    char *s = malloc(n + 1);
    if (!s)
        return HL_ENOMEM;
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    *out = s;
    if (len)
        *len = n;
    return HL_OK;
}

int hl_inbox_open(const char *path, struct hl_inbox **out, char *err, size_t errlen)
{
    int rc = HL_ENOMEM;
    char *msg = NULL;
    *out = NULL;
    struct hl_inbox *ib = calloc(1, sizeof(*ib));
    if (!ib) {
        snprintf(err, errlen, "out of memory");
        return HL_ENOMEM;
    }
    pthread_mutex_init(&ib->mu, NULL);
    if (sqlite3_open_v2(path, &ib->db,
                        SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                        NULL) != SQLITE_OK) {
        snprintf(err, errlen, "cannot open %s: %s", path,
                 ib->db ? sqlite3_errmsg(ib->db) : "out of memory");
        rc = HL_ESTORE;
        goto out;
    }
    sqlite3_busy_timeout(ib->db, BUSY_TIMEOUT_MS);
    sqlite3_stmt *st = NULL;
    if (sqlite3_prepare_v2(ib->db, "PRAGMA journal_mode=WAL", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW || !sqlite3_column_text(st, 0) ||
        strcmp((const char *)sqlite3_column_text(st, 0), "wal") != 0) {
        snprintf(err, errlen, "%s: cannot switch to WAL: %s", path, sqlite3_errmsg(ib->db));
        sqlite3_finalize(st);
        rc = HL_ESTORE;
        goto out;
    }
    sqlite3_finalize(st);
    st = NULL;
    int version = -1;
    if (sqlite3_prepare_v2(ib->db, "PRAGMA user_version", -1, &st, NULL) == SQLITE_OK &&
        sqlite3_step(st) == SQLITE_ROW)
        version = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (version < 0 || version > SCHEMA_VERSION) {
        snprintf(err, errlen, "%s: %s", path,
                 version < 0 ? sqlite3_errmsg(ib->db)
                             : "written by a newer hookline; use another --state file");
        rc = HL_ESTORE;
        goto out;
    }
    /* FULL: an acknowledged event must survive a power cut, not just a crash. */
    if (sqlite3_exec(ib->db, "PRAGMA synchronous=FULL", NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(ib->db, "BEGIN IMMEDIATE", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: %s", path, msg ? msg : "cannot set up");
        rc = HL_ESTORE;
        goto out;
    }
    if (sqlite3_exec(ib->db, SCHEMA, NULL, NULL, &msg) != SQLITE_OK ||
        sqlite3_exec(ib->db, "COMMIT", NULL, NULL, &msg) != SQLITE_OK) {
        snprintf(err, errlen, "%s: cannot create the schema: %s", path, msg ? msg : "");
        sqlite3_exec(ib->db, "ROLLBACK", NULL, NULL, NULL);
        rc = HL_ESTORE;
        goto out;
    }
    for (int i = 0; i < NQ; i++) {
        if (sqlite3_prepare_v3(ib->db, SQL[i], -1, SQLITE_PREPARE_PERSISTENT, &ib->q[i], NULL) !=
            SQLITE_OK) {
            snprintf(err, errlen, "%s: %s", path, sqlite3_errmsg(ib->db));
            rc = HL_ESTORE;
            goto out;
        }
    }
    *out = ib;
    ib = NULL;
    rc = HL_OK;
out:
    sqlite3_free(msg);
    hl_inbox_close(ib);
    return rc;
}

void hl_inbox_close(struct hl_inbox *ib)
{
    if (!ib)
        return;
    for (int i = 0; i < NQ; i++)
        sqlite3_finalize(ib->q[i]);
    sqlite3_close(ib->db);
    pthread_mutex_destroy(&ib->mu);
    free(ib);
}

int hl_inbox_add(struct hl_inbox *ib, const struct hl_inbox_event *ev, int64_t now_ms,
                 int *duplicate)
{
    if (!ev->event_id || !*ev->event_id || !ev->event || !ev->tenant || (!ev->body && ev->body_len))
        return HL_EINVAL;
    pthread_mutex_lock(&ib->mu);
    sqlite3_stmt *st = ib->q[Q_ADD];
    sqlite3_bind_text(st, 1, ev->event_id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, ev->event, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, ev->tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, now_ms);
    sqlite3_bind_blob64(st, 5, ev->body ? ev->body : "", ev->body_len, SQLITE_STATIC);
    sqlite3_bind_text(st, 6, ev->headers ? ev->headers : "", -1, SQLITE_STATIC);
    int rc = step_done(st);
    if (rc == HL_OK)
        *duplicate = sqlite3_changes(ib->db) == 0;
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

int hl_inbox_next(struct hl_inbox *ib, int64_t now_ms, struct hl_inbox_item *it, int64_t *next_at)
{
    memset(it, 0, sizeof(*it));
    *next_at = 0;
    pthread_mutex_lock(&ib->mu);
    sqlite3_stmt *st = ib->q[Q_NEXT];
    int rc = sqlite3_step(st);
    if (rc == SQLITE_DONE) {
        rc = HL_ENOTFOUND;
        goto out;
    }
    if (rc != SQLITE_ROW) {
        rc = rc == SQLITE_NOMEM ? HL_ENOMEM : HL_ESTORE;
        goto out;
    }
    int64_t due = sqlite3_column_int64(st, 6);
    if (due > now_ms) {
        *next_at = due;
        rc = HL_ENOTFOUND;
        goto out;
    }
    it->id = sqlite3_column_int64(st, 0);
    column_field(st, 1, it->event_id);
    column_field(st, 2, it->event);
    column_field(st, 3, it->tenant);
    it->received_at = sqlite3_column_int64(st, 4);
    it->attempts = sqlite3_column_int(st, 5);
    rc = column_copy(st, 7, &it->body, &it->body_len);
    if (rc == HL_OK)
        rc = column_copy(st, 8, &it->headers, NULL);
    if (rc != HL_OK)
        hl_inbox_item_clear(it);
out:
    sqlite3_reset(st);
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

/* Runs one of the update statements on item id with an optional second and third value. */
static int update(struct hl_inbox *ib, enum q which, int64_t id, const int64_t *at,
                  const char *error)
{
    pthread_mutex_lock(&ib->mu);
    sqlite3_stmt *st = ib->q[which];
    sqlite3_bind_int64(st, 1, id);
    int col = 2;
    if (at)
        sqlite3_bind_int64(st, col++, *at);
    if (which != Q_DONE) {
        if (error)
            sqlite3_bind_text(st, col, error, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, col);
    }
    int rc = step_done(st);
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

int hl_inbox_done(struct hl_inbox *ib, int64_t id)
{
    return update(ib, Q_DONE, id, NULL, NULL);
}

int hl_inbox_retry(struct hl_inbox *ib, int64_t id, int64_t next_at, const char *error)
{
    return update(ib, Q_RETRY, id, &next_at, error);
}

int hl_inbox_fail(struct hl_inbox *ib, int64_t id, const char *error)
{
    return update(ib, Q_FAIL, id, NULL, error);
}

int hl_inbox_resume(struct hl_inbox *ib, int64_t now_ms, int64_t *pending)
{
    *pending = 0;
    pthread_mutex_lock(&ib->mu);
    sqlite3_bind_int64(ib->q[Q_RESUME], 1, now_ms);
    int rc = step_done(ib->q[Q_RESUME]);
    if (rc == HL_OK) {
        sqlite3_stmt *st = ib->q[Q_COUNT];
        if (sqlite3_step(st) == SQLITE_ROW)
            *pending = sqlite3_column_int64(st, 0);
        else
            rc = HL_ESTORE;
        sqlite3_reset(st);
    }
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

void hl_inbox_item_clear(struct hl_inbox_item *it)
{
    free(it->body);
    free(it->headers);
    memset(it, 0, sizeof(*it));
}

int hl_inbox_prune(struct hl_inbox *ib, int64_t before_ms, int limit, int *deleted)
{
    *deleted = 0;
    pthread_mutex_lock(&ib->mu);
    sqlite3_stmt *st = ib->q[Q_PRUNE];
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int(st, 2, limit);
    int rc = step_done(st);
    if (rc == HL_OK)
        *deleted = sqlite3_changes(ib->db);
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

int hl_inbox_requeue(struct hl_inbox *ib, const char *event_id, int64_t now_ms, int *was)
{
    *was = -1;
    pthread_mutex_lock(&ib->mu);
    sqlite3_stmt *st = ib->q[Q_STATE];
    sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *was = sqlite3_column_int(st, 0);
    rc = rc == SQLITE_ROW ? HL_OK : rc == SQLITE_DONE ? HL_ENOTFOUND : HL_ESTORE;
    sqlite3_reset(st);
    sqlite3_clear_bindings(st);
    /* Only this call moves a row out of FAILED, and calls on one connection are serialised;
     * the state check in the statement covers another process doing the same at once. */
    if (rc == HL_OK && *was == HL_INBOX_FAILED) {
        st = ib->q[Q_REQUEUE];
        sqlite3_bind_text(st, 1, event_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, now_ms);
        rc = step_done(st);
        if (rc == HL_OK && sqlite3_changes(ib->db) == 0)
            *was = HL_INBOX_PENDING;
    }
    pthread_mutex_unlock(&ib->mu);
    return rc;
}

int hl_inbox_requeue_failed(struct hl_inbox *ib, int64_t now_ms, int64_t *n)
{
    *n = 0;
    pthread_mutex_lock(&ib->mu);
    sqlite3_bind_int64(ib->q[Q_REQUEUE_FAILED], 1, now_ms);
    int rc = step_done(ib->q[Q_REQUEUE_FAILED]);
    if (rc == HL_OK)
        *n = sqlite3_changes(ib->db);
    pthread_mutex_unlock(&ib->mu);
    return rc;
}
