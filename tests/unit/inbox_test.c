/* Tests for src/receiver/inbox.c: `hookline listen`'s de-duplication record and hand-off queue
 * in one SQLite file. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/err.h"
#include "receiver/inbox.h"

/* A fresh state file in a fresh directory; removed by cleanup(). */
struct tmp {
    char dir[64];
    char path[128];
};

static void make_tmp(struct tmp *t)
{
    snprintf(t->dir, sizeof(t->dir), "/tmp/hl-inbox-XXXXXX");
    assert_non_null(mkdtemp(t->dir));
    snprintf(t->path, sizeof(t->path), "%s/state.db", t->dir);
}

static void cleanup(struct tmp *t)
{
    static const char *const suffix[] = {"", "-wal", "-shm"};
    char p[160];
    for (size_t i = 0; i < 3; i++) {
        snprintf(p, sizeof(p), "%s%s", t->path, suffix[i]);
        unlink(p);
    }
    rmdir(t->dir);
}

static struct hl_inbox *open_ok(const char *path)
{
    struct hl_inbox *ib = NULL;
    char err[256] = "";
    int rc = hl_inbox_open(path, &ib, err, sizeof(err));
    if (rc != HL_OK)
        fail_msg("open %s: %s", path, err);
    return ib;
}

enum op { ADD, NEXT, DONE, RETRY, FAIL, REOPEN, RESUME };

/* One step: for ADD, id/event/tenant/body are the event and want is the duplicate flag; for
 * NEXT, id is the expected eventId (NULL: none due), want the expected attempts, and at the
 * expected next_at when none is due; DONE/RETRY/FAIL act on the item NEXT returned last. */
struct step {
    enum op op;
    int64_t now;
    const char *id;
    const char *body;
    int want;
    int64_t at;
};

struct inbox_case {
    const char *name;
    struct step steps[16];
};

#define T0 1700000000000LL

static const struct inbox_case cases[] = {
    {"first in, first out; duplicates change nothing",
     {{ADD, T0, "evt_1", "{\"a\":1}", 0, 0},
      {ADD, T0 + 1, "evt_2", "{\"b\":2}", 0, 0},
      {ADD, T0 + 2, "evt_1", "{\"other\":true}", 1, 0},
      {NEXT, T0 + 3, "evt_1", "{\"a\":1}", 0, 0},
      {DONE, T0 + 3, NULL, NULL, 0, 0},
      {NEXT, T0 + 3, "evt_2", "{\"b\":2}", 0, 0},
      {DONE, T0 + 3, NULL, NULL, 0, 0},
      {NEXT, T0 + 3, NULL, NULL, 0, 0},
      {ADD, T0 + 4, "evt_1", "{\"a\":1}", 1, 0},
      {ADD, T0 + 4, "evt_2", "{\"b\":2}", 1, 0}}},
    {"a retry waits; others go first",
     {{ADD, T0, "evt_a", "a", 0, 0},
      {ADD, T0, "evt_b", "b", 0, 0},
      {NEXT, T0, "evt_a", "a", 0, 0},
      {RETRY, T0, NULL, NULL, 0, T0 + 1000},
      {NEXT, T0 + 1, "evt_b", "b", 0, 0},
      {DONE, T0 + 1, NULL, NULL, 0, 0},
      {NEXT, T0 + 999, NULL, NULL, 0, T0 + 1000},
      {NEXT, T0 + 1000, "evt_a", "a", 1, 0},
      {RETRY, T0 + 1000, NULL, NULL, 0, T0 + 3000},
      {NEXT, T0 + 3000, "evt_a", "a", 2, 0},
      {FAIL, T0 + 3000, NULL, NULL, 0, 0},
      {NEXT, T0 + 9999999, NULL, NULL, 0, 0},
      {ADD, T0, "evt_a", "a", 1, 0}}},
    {"kept across a reopen; a restart makes waiting retries due",
     {{ADD, T0, "evt_x", "x", 0, 0},
      {ADD, T0, "evt_y", "y", 0, 0},
      {ADD, T0, "evt_z", "z", 0, 0},
      {NEXT, T0, "evt_x", "x", 0, 0},
      {DONE, T0, NULL, NULL, 0, 0},
      {NEXT, T0, "evt_y", "y", 0, 0},
      {RETRY, T0, NULL, NULL, 0, T0 + 60000},
      {REOPEN, T0, NULL, NULL, 0, 0},
      {ADD, T0 + 5, "evt_x", "x", 1, 0},
      {NEXT, T0 + 5, "evt_z", "z", 0, 0},
      {RESUME, T0 + 10, NULL, NULL, 2, 0},
      {NEXT, T0 + 10, "evt_z", "z", 0, 0},
      {DONE, T0 + 10, NULL, NULL, 0, 0},
      {NEXT, T0 + 10, "evt_y", "y", 1, 0},
      {DONE, T0 + 10, NULL, NULL, 0, 0},
      {RESUME, T0 + 10, NULL, NULL, 0, 0}}},
};

static void run_case(const struct inbox_case *c)
{
    struct tmp t;
    make_tmp(&t);
    struct hl_inbox *ib = open_ok(t.path);
    struct hl_inbox_item it = {0};
    for (size_t i = 0; i < sizeof(c->steps) / sizeof(c->steps[0]); i++) {
        const struct step *s = &c->steps[i];
        if (s->now == 0)
            break;
        int rc = HL_OK, dup = -1;
        int64_t at = -1, pending = -1;
        switch (s->op) {
        case ADD: {
            struct hl_inbox_event ev = {s->id,   "agent.created", "tenant-1",
                                        s->body, strlen(s->body), "X-A: 1\r\n"};
            rc = hl_inbox_add(ib, &ev, s->now, &dup);
            assert_int_equal(rc, HL_OK);
            if (dup != s->want)
                fail_msg("%s, step %zu: duplicate %d, want %d", c->name, i, dup, s->want);
            break;
        }
        case NEXT:
            hl_inbox_item_clear(&it);
            rc = hl_inbox_next(ib, s->now, &it, &at);
            if (!s->id) {
                if (rc != HL_ENOTFOUND || at != s->at)
                    fail_msg("%s, step %zu: rc %d next_at %lld, want none until %lld", c->name, i,
                             rc, (long long)at, (long long)s->at);
                break;
            }
            if (rc != HL_OK || strcmp(it.event_id, s->id) != 0)
                fail_msg("%s, step %zu: rc %d got '%s', want %s", c->name, i, rc, it.event_id,
                         s->id);
            assert_int_equal(it.attempts, s->want);
            assert_int_equal(it.body_len, strlen(s->body));
            assert_memory_equal(it.body, s->body, it.body_len);
            assert_string_equal(it.headers, "X-A: 1\r\n");
            assert_string_equal(it.event, "agent.created");
            assert_string_equal(it.tenant, "tenant-1");
            break;
        case DONE:
            assert_int_equal(hl_inbox_done(ib, it.id), HL_OK);
            break;
        case RETRY:
            assert_int_equal(hl_inbox_retry(ib, it.id, s->at, "exit 1"), HL_OK);
            break;
        case FAIL:
            assert_int_equal(hl_inbox_fail(ib, it.id, NULL), HL_OK);
            break;
        case REOPEN:
            hl_inbox_close(ib);
            ib = open_ok(t.path);
            break;
        case RESUME:
            assert_int_equal(hl_inbox_resume(ib, s->now, &pending), HL_OK);
            if (pending != s->want)
                fail_msg("%s, step %zu: %lld pending, want %d", c->name, i, (long long)pending,
                         s->want);
            break;
        }
    }
    hl_inbox_item_clear(&it);
    hl_inbox_close(ib);
    cleanup(&t);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        run_case(&cases[i]);
}

/* Bodies are bytes: NULs and invalid UTF-8 come back unchanged; an empty body is allowed. */
static void test_binary_body_and_two_connections(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t);
    struct hl_inbox *a = open_ok(t.path), *b = open_ok(t.path);
    static const char bin[] = {'{', '\0', '\xff', '\n', '}'};
    struct hl_inbox_event ev = {"evt_bin", "context.deleted", "", bin, sizeof(bin), NULL};
    int dup = -1;
    assert_int_equal(hl_inbox_add(a, &ev, T0, &dup), HL_OK);
    assert_int_equal(dup, 0);
    struct hl_inbox_event empty = {"evt_empty", "x", "t", NULL, 0, ""};
    assert_int_equal(hl_inbox_add(a, &empty, T0 + 1, &dup), HL_OK);
    /* the other connection sees both, and the duplicate */
    assert_int_equal(hl_inbox_add(b, &ev, T0 + 2, &dup), HL_OK);
    assert_int_equal(dup, 1);
    struct hl_inbox_item it;
    int64_t at;
    assert_int_equal(hl_inbox_next(b, T0 + 2, &it, &at), HL_OK);
    assert_string_equal(it.event_id, "evt_bin");
    assert_int_equal(it.body_len, sizeof(bin));
    assert_memory_equal(it.body, bin, sizeof(bin));
    assert_string_equal(it.headers, "");
    assert_string_equal(it.tenant, "");
    assert_int_equal(it.received_at, T0);
    assert_int_equal(hl_inbox_done(b, it.id), HL_OK);
    hl_inbox_item_clear(&it);
    assert_null(it.body);
    assert_int_equal(hl_inbox_next(a, T0 + 2, &it, &at), HL_OK);
    assert_string_equal(it.event_id, "evt_empty");
    assert_int_equal(it.body_len, 0);
    assert_string_equal(it.body, "");
    hl_inbox_item_clear(&it);
    hl_inbox_close(a);
    hl_inbox_close(b);
    cleanup(&t);
}

static void test_invalid(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t);
    struct hl_inbox *ib = open_ok(t.path);
    int dup = -1;
    struct hl_inbox_event bad[] = {
        {"", "e", "t", "b", 1, NULL},    {NULL, "e", "t", "b", 1, NULL},
        {"id", NULL, "t", "b", 1, NULL}, {"id", "e", NULL, "b", 1, NULL},
        {"id", "e", "t", NULL, 1, NULL},
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(hl_inbox_add(ib, &bad[i], T0, &dup), HL_EINVAL);
    assert_int_equal(dup, -1);
    hl_inbox_close(ib);
    hl_inbox_close(NULL);

    /* a file from a newer hookline is refused, not rewritten */
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 3", NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
    char err[256] = "";
    ib = (struct hl_inbox *)1;
    assert_int_equal(hl_inbox_open(t.path, &ib, err, sizeof(err)), HL_ESTORE);
    assert_null(ib);
    assert_non_null(strstr(err, "newer"));

    char missing[200];
    snprintf(missing, sizeof(missing), "%s/no/such/dir/state.db", t.dir);
    assert_int_equal(hl_inbox_open(missing, &ib, err, sizeof(err)), HL_ESTORE);
    assert_non_null(strstr(err, "cannot open"));
    cleanup(&t);
}

/* Adds event_id received at `at`, takes it, and leaves it handed on (DONE), given up (FAIL) or
 * pending (ADD). */
static void add_in_state(struct hl_inbox *ib, const char *event_id, int64_t at, enum op state)
{
    struct hl_inbox_event ev = {event_id, "agent.created", "t", "{}", 2, ""};
    int dup = -1;
    assert_int_equal(hl_inbox_add(ib, &ev, at, &dup), HL_OK);
    assert_int_equal(dup, 0);
    if (state == ADD)
        return;
    struct hl_inbox_item it;
    int64_t next;
    assert_int_equal(hl_inbox_next(ib, at, &it, &next), HL_OK);
    assert_string_equal(it.event_id, event_id);
    if (state == DONE)
        assert_int_equal(hl_inbox_done(ib, it.id), HL_OK);
    else
        assert_int_equal(hl_inbox_fail(ib, it.id, "exit 1"), HL_OK);
    hl_inbox_item_clear(&it);
}

/* Pruning forgets only eventIds handed on before the cut-off, oldest first, a batch at a time. */
static void test_prune(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t);
    struct hl_inbox *ib = open_ok(t.path);
    static const struct {
        const char *id;
        int64_t at;
        enum op state;
        int kept; /* still a duplicate after pruning before T0 + 100 */
    } rows[] = {
        {"evt_old2", T0 + 2, DONE, 0},   {"evt_old1", T0 + 1, DONE, 0},
        {"evt_old3", T0 + 3, DONE, 0},   {"evt_failed", T0 + 4, FAIL, 1},
        {"evt_edge", T0 + 100, DONE, 1}, {"evt_recent", T0 + 200, DONE, 1},
        {"evt_pending", T0 + 5, ADD, 1}, /* last: the others are taken before it */
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
        add_in_state(ib, rows[i].id, rows[i].at, rows[i].state);
    int deleted = -1;
    assert_int_equal(hl_inbox_prune(ib, T0 + 100, 2, &deleted), HL_OK);
    assert_int_equal(deleted, 2); /* a full batch: there may be more */
    assert_int_equal(hl_inbox_prune(ib, T0 + 100, 2, &deleted), HL_OK);
    assert_int_equal(deleted, 1);
    assert_int_equal(hl_inbox_prune(ib, T0 + 100, 2, &deleted), HL_OK);
    assert_int_equal(deleted, 0);
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        struct hl_inbox_event ev = {rows[i].id, "agent.created", "t", "{}", 2, ""};
        int dup = -1;
        assert_int_equal(hl_inbox_add(ib, &ev, T0 + 300, &dup), HL_OK);
        if (dup != rows[i].kept)
            fail_msg("%s: duplicate %d, want %d", rows[i].id, dup, rows[i].kept);
    }
    hl_inbox_close(ib);
    cleanup(&t);
}

/* An event that gave up is queued again with a fresh count; others are reported, unchanged. */
static void test_requeue(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t);
    struct hl_inbox *ib = open_ok(t.path), *other = open_ok(t.path);
    add_in_state(ib, "evt_done", T0, DONE);
    add_in_state(ib, "evt_f1", T0 + 1, FAIL);
    add_in_state(ib, "evt_f2", T0 + 2, FAIL);
    add_in_state(ib, "evt_f3", T0 + 3, FAIL);
    int was = -1;
    assert_int_equal(hl_inbox_requeue(ib, "evt_nope", T0 + 10, &was), HL_ENOTFOUND);
    assert_int_equal(hl_inbox_requeue(ib, "evt_done", T0 + 10, &was), HL_OK);
    assert_int_equal(was, HL_INBOX_DONE);
    /* another connection (hookline listen replay) queues one; this one's worker takes it */
    assert_int_equal(hl_inbox_requeue(other, "evt_f2", T0 + 10, &was), HL_OK);
    assert_int_equal(was, HL_INBOX_FAILED);
    assert_int_equal(hl_inbox_requeue(other, "evt_f2", T0 + 10, &was), HL_OK);
    assert_int_equal(was, HL_INBOX_PENDING);
    struct hl_inbox_item it;
    int64_t next;
    assert_int_equal(hl_inbox_next(ib, T0 + 10, &it, &next), HL_OK);
    assert_string_equal(it.event_id, "evt_f2");
    assert_int_equal(it.attempts, 0);
    assert_memory_equal(it.body, "{}", 2); /* the body was kept */
    assert_int_equal(hl_inbox_done(ib, it.id), HL_OK);
    hl_inbox_item_clear(&it);
    int64_t n = -1;
    assert_int_equal(hl_inbox_requeue_failed(other, T0 + 20, &n), HL_OK);
    assert_int_equal(n, 2);
    assert_int_equal(hl_inbox_requeue_failed(other, T0 + 20, &n), HL_OK);
    assert_int_equal(n, 0);
    assert_int_equal(hl_inbox_resume(ib, T0 + 20, &n), HL_OK);
    assert_int_equal(n, 2);
    hl_inbox_close(ib);
    hl_inbox_close(other);
    cleanup(&t);
}

/* A state file written by the first version is migrated in place: rows kept, index added. */
static void test_migrate_v1(void **state)
{
    (void)state;
    struct tmp t;
    make_tmp(&t);
    sqlite3 *db;
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    assert_int_equal(
        sqlite3_exec(db,
                     "CREATE TABLE events(id INTEGER PRIMARY KEY, event_id TEXT NOT NULL UNIQUE,"
                     " event TEXT NOT NULL, tenant TEXT NOT NULL, received_at INTEGER NOT NULL,"
                     " state INTEGER NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
                     " next_at INTEGER NOT NULL, body BLOB, headers TEXT, last_error TEXT);"
                     "CREATE INDEX events_due ON events(next_at, id) WHERE state = 0;"
                     "INSERT INTO events(event_id, event, tenant, received_at, state, next_at)"
                     " VALUES('evt_v1', 'agent.created', 't', 1, 1, 1);"
                     "PRAGMA user_version = 1;",
                     NULL, NULL, NULL),
        SQLITE_OK);
    sqlite3_close(db);
    struct hl_inbox *ib = open_ok(t.path);
    int deleted = -1;
    assert_int_equal(hl_inbox_prune(ib, 2, 10, &deleted), HL_OK);
    assert_int_equal(deleted, 1);
    hl_inbox_close(ib);
    assert_int_equal(sqlite3_open(t.path, &db), SQLITE_OK);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db,
                                        "SELECT (SELECT user_version FROM pragma_user_version),"
                                        " (SELECT count(*) FROM sqlite_master WHERE name ="
                                        " 'events_done')",
                                        -1, &st, NULL),
                     SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(st, 0), 2);
    assert_int_equal(sqlite3_column_int(st, 1), 1);
    sqlite3_finalize(st);
    sqlite3_close(db);
    cleanup(&t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),   cmocka_unit_test(test_binary_body_and_two_connections),
        cmocka_unit_test(test_invalid), cmocka_unit_test(test_prune),
        cmocka_unit_test(test_requeue), cmocka_unit_test(test_migrate_v1),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
