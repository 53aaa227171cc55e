/* Every list and count of the API reads from an index that serves its filter and its order.
 *
 * Each case calls a store operation (hl_store_event_list, hl_store_delivery_list, ...) with one
 * filter, with hl_store_explain on: the store hands back the plan of every statement the
 * operation runs (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN, with the operation's own
 * parameters), on an app with one webhook and no other rows. A plan passes when
 *   - it reads no events, deliveries, attempts or resources by a full scan (SQLite "SCAN x" of
 *     anything but the app's webhooks; PostgreSQL "Seq Scan"),
 *   - it sorts nothing (the index gives the order; the app-wide delivery list alone may sort
 *     its webhooks' pages, a bounded number of rows), and
 *   - each column the filter names is a condition of an index search (SQLite "SEARCH ... (col=?"
 *     or "col>?", PostgreSQL "Index Cond: ... (col ..."), the id among them where the list pages
 *     by id (keyset: the page starts where the index says, however deep), and
 *   - a count (the webhook's stats) reads its counters (webhook_counts), never deliveries, and
 *   - on PostgreSQL a delivery list by status or event type seeks its page's ids by an index-only
 *     scan (DL_LIST_IDS_SQL): a plain index scan reads from the heap every row its filter drops,
 *     and lets the planner prefer another index it filters (issue 20: 1.5 s at 1,000,000).
 * SQLite is planned as the service leaves it, without ANALYZE statistics, on empty tables (its
 * plans do not depend on the rows); PostgreSQL, which plans by statistics, on 10,000 rows like a
 * busy app's after ANALYZE, and with enable_seqscan off, so that its choice says which index it
 * would use in service. Run on a fresh SQLite file and, when HOOKLINE_TEST_PG_URL is set
 * (scripts/with-postgres.sh; ctest's unit-pg/plans_test), on PostgreSQL; HOOKLINE_TEST_BACKEND=
 * postgres runs PostgreSQL alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/buf.h"
#include "common/err.h"
#include "common/events.h"
#include "common/ids.h"
#include "store/store.h"
#include "need.h"

#include <libpq-fe.h>

#define MAXCOLS 4
#define HOUR_MS 3600000LL
#define T0 1800000000000LL /* the cases' time windows */

static struct hl_store *st;
static int pg;
static struct hl_buf plan;
static int64_t app_id, webhook_id; /* the app and webhook the cases read */

/* One case: a store call, the columns its filter must find through an index, and whether it
 * may sort (a bounded merge of pages). */
struct pcase {
    const char *name;
    void (*call)(const struct pcase *c);
    const char *cols[MAXCOLS];
    int may_sort;
    int type;   /* the event type + 1; 0: any */
    int status; /* the delivery status + 1; 0: any */
    const char *tenant;
    int64_t since, until;
    int webhook; /* the delivery lists: 1 for the webhook's, 0 for the app's */
    int64_t after;
    int counted;  /* a count: from counters, never from deliveries */
    int ids_only; /* on PostgreSQL: the deliveries' seek is an index-only scan */
};

static void ev_list(const struct pcase *c)
{
    struct hl_event *ev = NULL;
    size_t n = 0;
    struct hl_event_filter f = {c->type - 1, c->tenant, c->since, c->until};
    assert_int_equal(hl_store_event_list(st, app_id, &f, c->after, 50, &ev, &n), HL_OK);
    for (size_t i = 0; i < n; i++)
        hl_event_clear(&ev[i]);
    free(ev);
}

static void dl_list(const struct pcase *c)
{
    struct hl_delivery *d = NULL;
    size_t n = 0;
    struct hl_delivery_filter f = {
        .status = c->status - 1, .type = c->type - 1, .since = c->since, .until = c->until};
    assert_int_equal(
        hl_store_delivery_list(st, app_id, c->webhook ? webhook_id : 0, &f, c->after, 50, &d, &n),
        HL_OK);
    for (size_t i = 0; i < n; i++)
        hl_delivery_clear(&d[i]);
    free(d);
}

static void res_list(const struct pcase *c)
{
    struct hl_resource *r = NULL;
    size_t n = 0;
    assert_int_equal(
        hl_store_resource_list(st, app_id, HL_ENT_AGENT, NULL, c->tenant, c->after, 50, &r, &n),
        HL_OK);
    for (size_t i = 0; i < n; i++)
        hl_resource_clear(&r[i]);
    free(r);
}

static void wh_stats(const struct pcase *c)
{
    (void)c;
    struct hl_webhook_stats s;
    assert_int_equal(hl_store_webhook_stats(st, webhook_id, &s), HL_OK);
}

static void dl_get(const struct pcase *c)
{
    (void)c;
    struct hl_delivery d;
    struct hl_attempt_rec *a = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_get(st, app_id, 42, &d, &a, &n);
    assert_true(rc == HL_OK || rc == HL_ENOTFOUND);
    if (rc == HL_OK)
        hl_delivery_clear(&d);
    for (size_t i = 0; i < n; i++) {
        free(a[i].error);
        free(a[i].response);
    }
    free(a);
}

/* The tables no list may scan, as SQLite names them in a plan (tables and the aliases the
 * statements give them). */
static const char *const BIG[] = {"events", "deliveries", "attempts", "resources", "e",
                                  "d",      "d2",         "ef",       "a",         "r",
                                  "de",     "x",          "ev",       "dl",        NULL};

static int big_table(const char *name, size_t len)
{
    for (size_t i = 0; BIG[i]; i++)
        if (strlen(BIG[i]) == len && memcmp(BIG[i], name, len) == 0)
            return 1;
    return 0;
}

/* Whether line (one plan row) reads a big table in full. */
static int full_scan(const char *line)
{
    if (pg) {
        static const char *const tables[] = {"events", "deliveries", "attempts", "resources"};
        const char *s = strstr(line, "Seq Scan on ");
        if (!s)
            return 0;
        s += strlen("Seq Scan on ");
        for (size_t i = 0; i < 4; i++)
            if (strncmp(s, tables[i], strlen(tables[i])) == 0)
                return 1;
        return 0;
    }
    const char *s = strstr(line, "SCAN ");
    if (!s || (s != line && s[-1] != ' '))
        return 0;
    s += 5;
    size_t len = strcspn(s, " \n");
    return big_table(s, len);
}

static int sorts(const char *line)
{
    return pg ? strstr(line, "Sort Key:") != NULL : strstr(line, "TEMP B-TREE") != NULL;
}

/* Whether column col is a condition of some index search in the plan p. */
static int searched(const char *p, const char *col)
{
    char pat[6][64];
    size_t n = 0;
    if (pg) {
        snprintf(pat[n++], sizeof(pat[0]), "(%s ", col);
        snprintf(pat[n++], sizeof(pat[0]), ".%s ", col);
    } else {
        static const char ops[] = "=><";
        for (size_t i = 0; i < 3; i++) {
            snprintf(pat[n++], sizeof(pat[0]), "(%s%c", col, ops[i]);
            snprintf(pat[n++], sizeof(pat[0]), " %s%c", col, ops[i]);
        }
    }
    const char *key = pg ? "Index Cond:" : "SEARCH ";
    for (const char *line = p; line && *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), line);
        const char *k = strstr(buf, key);
        for (size_t i = 0; k && i < n; i++)
            if (strstr(k, pat[i]))
                return 1;
        line = end ? end + 1 : NULL;
    }
    return 0;
}

/* Whether plan p reads deliveries by an index-only scan (PostgreSQL: "Index Only Scan [Backward]
 * using x on deliveries d_1" on one line). */
static int ids_only_scan(const char *p)
{
    for (const char *s = strstr(p, "Index Only Scan"); s; s = strstr(s + 1, "Index Only Scan")) {
        const char *end = strchr(s, '\n');
        const char *on = strstr(s, " on deliveries ");
        if (on && (!end || on < end))
            return 1;
    }
    return 0;
}

/* Checks one case's plan; returns a reason it fails, or NULL. */
static const char *judge(const struct pcase *c, char *why, size_t cap)
{
    const char *p = plan.p ? plan.p : "";
    for (const char *line = p; *line;) {
        const char *end = strchr(line, '\n');
        size_t len = end ? (size_t)(end - line) : strlen(line);
        char buf[1024];
        snprintf(buf, sizeof(buf), "%.*s", (int)(len < sizeof(buf) ? len : sizeof(buf) - 1), line);
        if (full_scan(buf)) {
            snprintf(why, cap, "a full scan: %s", buf);
            return why;
        }
        if (!c->may_sort && sorts(buf)) {
            snprintf(why, cap, "a sort of every match: %s", buf);
            return why;
        }
        line = end ? end + 1 : line + len;
    }
    if (c->counted && (strstr(p, "deliveries") || !strstr(p, "webhook_counts"))) {
        snprintf(why, cap, "a count reads deliveries, not the counters");
        return why;
    }
    if (pg && c->ids_only && !ids_only_scan(p)) {
        snprintf(why, cap, "the ids are not sought by an index-only scan");
        return why;
    }
    for (size_t i = 0; i < MAXCOLS && c->cols[i]; i++)
        if (!searched(p, c->cols[i])) {
            snprintf(why, cap, "%s is not a condition of an index search", c->cols[i]);
            return why;
        }
    return NULL;
}

/* clang-format off */
static const struct pcase CASES[] = {
    {"events", ev_list, {"app_id", "id"}, 0, .after = 0},
    {"events, cursor", ev_list, {"app_id", "id"}, 0, .after = 60000},
    {"events, event", ev_list, {"type", "id"}, 0, .type = HL_EV_AGENT_UPDATED + 1},
    {"events, externalTenantId", ev_list, {"tenant", "id"}, 0, .tenant = "tenant-7"},
    {"events, since+until", ev_list, {"created_at"}, 0, .since = T0, .until = T0 + 1000},
    {"events, since", ev_list, {"created_at"}, 0, .since = T0},
    {"events, until, cursor", ev_list, {"created_at"}, 0, .until = T0, .after = 60000},
    {"webhook deliveries", dl_list, {"webhook_id", "id"}, 0, .webhook = 1},
    {"webhook deliveries, cursor", dl_list, {"webhook_id", "id"}, 0, .webhook = 1, .after = 60000},
    {"webhook deliveries, status", dl_list, {"webhook_id", "status", "id"}, 0,
     .status = HL_DS_FAILED + 1, .webhook = 1, .ids_only = 1},
    {"webhook deliveries, pending", dl_list, {"webhook_id", "status", "id"}, 0,
     .status = HL_DS_PENDING + 1, .webhook = 1, .ids_only = 1},
    {"webhook deliveries, failing", dl_list, {"webhook_id", "id"}, 0,
     .status = HL_DS_FAILING + 1, .webhook = 1},
    {"webhook deliveries, event", dl_list, {"webhook_id", "event_type", "id"}, 0,
     .type = HL_EV_CONTEXTFILE_UPDATED + 1, .webhook = 1, .ids_only = 1},
    {"webhook deliveries, since+until", dl_list, {"webhook_id", "created_at"}, 0,
     .since = T0, .until = T0 + HOUR_MS, .webhook = 1},
    {"app deliveries", dl_list, {"webhook_id", "id"}, 1, .after = 0},
    {"app deliveries, cursor", dl_list, {"webhook_id", "id"}, 1, .after = 60000},
    {"app deliveries, status", dl_list, {"webhook_id", "status", "id"}, 1,
     .status = HL_DS_FAILED + 1, .ids_only = 1},
    {"app deliveries, failing", dl_list, {"webhook_id", "id"}, 1,
     .status = HL_DS_FAILING + 1},
    {"app deliveries, event", dl_list, {"webhook_id", "event_type", "id"}, 1,
     .type = HL_EV_AGENT_DELETED + 1, .ids_only = 1},
    {"app deliveries, since+until", dl_list, {"webhook_id", "created_at"}, 1,
     .since = T0, .until = T0 + HOUR_MS},
    {"delivery with its attempts", dl_get, {NULL}, 0, .after = 0},
    {"agents", res_list, {"app_id", "kind", "id"}, 0, .after = 0},
    {"agents, cursor", res_list, {"app_id", "kind", "id"}, 0, .after = 60000},
    {"agents, externalTenantId", res_list, {"kind", "tenant", "id"}, 0, .tenant = "tenant-8"},
    {"webhook stats", wh_stats, {"webhook_id"}, 0, .counted = 1},
};
/* clang-format on */
#define NCASES (sizeof(CASES) / sizeof(CASES[0]))

static void test_case(void **state)
{
    const struct pcase *c = *state;
    hl_buf_reset(&plan);
    hl_store_explain(st, &plan);
    c->call(c);
    hl_store_explain(st, NULL);
    char why[1200];
    if (judge(c, why, sizeof(why)))
        fail_msg("%s (%s): %s\nplan:\n%s", c->name, pg ? "postgres" : "sqlite", why,
                 plan.p ? plan.p : "(none)");
}

/* PostgreSQL plans by statistics: rows like a busy app's (a day of events of every type and a
 * thousand tenants, one delivery each, nearly all succeeded; agents of those tenants), then
 * ANALYZE, so that its choice between two usable indexes is the one it makes in service. */
#define NAPPS 40 /* on PostgreSQL: the app the cases read is one of them */

/* Writes ids as a PostgreSQL array literal ("{1,2,3}") into out. */
static void pg_array(const int64_t *ids, size_t n, char *out, size_t cap)
{
    size_t len = 0;
    for (size_t i = 0; i < n && len < cap; i++)
        len += (size_t)snprintf(out + len, cap - len, "%c%lld", i ? ',' : '{', (long long)ids[i]);
    if (len < cap)
        snprintf(out + len, cap - len, "}");
}

static int pg_seed(const char *url, const int64_t *apps, const int64_t *hooks)
{
    char a[NAPPS * 24], h[NAPPS * 24], sql[4096];
    pg_array(apps, NAPPS, a, sizeof(a));
    pg_array(hooks, NAPPS, h, sizeof(h));
    snprintf(sql, sizeof(sql),
             "BEGIN; CREATE TEMP TABLE o(app, hook, k) AS SELECT * FROM unnest('%s'::bigint[],"
             " '%s'::bigint[]) WITH ORDINALITY AS t(app, hook, k);"
             "INSERT INTO events(uid, app_id, type, tenant, resource_uid, created_at, payload)"
             " SELECT 'evt_p' || i || '_%lld', o.app, i %% 9, 'tenant-' || (i %% 1000), 'r',"
             " %lld + i * 864, convert_to('{}', 'UTF8') FROM generate_series(1, 100000) i"
             " JOIN o ON o.k = 1 + i %% %d;"
             "INSERT INTO deliveries(event_id, webhook_id, status, attempts, next_attempt_at,"
             " last_status, created_at, event_type) SELECT e.id, o.hook,"
             " CASE WHEN e.id %% 50 IN (1, 2) THEN 0 WHEN e.id %% 50 < 6 THEN 2 ELSE 1 END, 1,"
             " 0, CASE WHEN e.id %% 50 = 1 THEN 500 ELSE 200 END, e.created_at, e.type"
             " FROM events e JOIN o ON o.app = e.app_id;"
             "INSERT INTO resources(uid, app_id, kind, parent_uid, tenant, body, version,"
             " created_at, updated_at) SELECT 'res-p' || i || '_%lld', o.app, 1 + i %% 2, '',"
             " 'tenant-' || (i %% 1000), '{}', 1, i, i FROM generate_series(1, 100000) i"
             " JOIN o ON o.k = 1 + i %% %d;"
             "COMMIT;",
             a, h, (long long)apps[0], (long long)(T0 - 86400000LL), NAPPS, (long long)apps[0],
             NAPPS);
    PGconn *c = PQconnectdb(url);
    PGresult *r = PQstatus(c) == CONNECTION_OK ? PQexec(c, sql) : NULL;
    int ok = r && PQresultStatus(r) == PGRES_COMMAND_OK;
    /* as autovacuum leaves them: statistics, and the visibility map index-only scans need */
    if (ok) {
        PQclear(r);
        r = PQexec(c, "VACUUM ANALYZE");
        ok = PQresultStatus(r) == PGRES_COMMAND_OK;
    }
    if (!ok)
        fprintf(stderr, "cannot seed PostgreSQL: %s\n", PQerrorMessage(c));
    PQclear(r);
    PQfinish(c);
    return ok ? 0 : 1;
}

/* An app and its webhook, made afresh (a PostgreSQL database may be shared). */
static int make_app(int64_t *app_out, int64_t *hook_out)
{
    struct hl_app app;
    char uid[HL_ID_MAX], url_hook[] = "https://receiver.example/in";
    struct hl_webhook w = {0};
    int rc = hl_id_new("app-", 12, uid, sizeof(uid));
    if (rc == HL_OK)
        rc = hl_store_app_create(st, uid, "plans", &app);
    if (rc == HL_OK)
        rc = hl_id_new("webhook-", 12, w.uid, sizeof(w.uid));
    if (rc == HL_OK)
        rc = hl_secret_new(w.secret, sizeof(w.secret));
    if (rc == HL_OK) {
        w.app_id = app.id;
        w.url = url_hook;
        w.entities = HL_ENT_ALL;
        w.active = 1;
        w.created_at = w.updated_at = 1;
        rc = hl_store_webhook_create(st, &w, 0);
    }
    *app_out = app.id;
    *hook_out = w.id;
    return rc;
}

/* The PostgreSQL URL with enable_seqscan off for the sessions it opens. */
static void pg_url(char *out, size_t cap)
{
    const char *u = getenv("HOOKLINE_TEST_PG_URL");
    snprintf(out, cap, "%s%coptions=-c%%20enable_seqscan%%3Doff", u, strchr(u, '?') ? '&' : '?');
}

static int run_backend(const char *url, int is_pg)
{
    char err[512];
    pg = is_pg;
    if (hl_store_open(url, &st, err, sizeof(err)) != HL_OK) {
        fprintf(stderr, "cannot open %s: %s\n", url, err);
        return 1;
    }
    /* the app the cases read, and on PostgreSQL others beside it */
    int64_t apps[NAPPS], hooks[NAPPS];
    int rc = HL_OK;
    for (size_t i = 0; rc == HL_OK && i < (is_pg ? NAPPS : 1u); i++)
        rc = make_app(&apps[i], &hooks[i]);
    if (rc == HL_OK && is_pg)
        rc = pg_seed(getenv("HOOKLINE_TEST_PG_URL"), apps, hooks) ? HL_ESTORE : HL_OK;
    if (rc != HL_OK) {
        fprintf(stderr, "cannot make the apps and their rows: %d\n", rc);
        hl_store_close(st);
        return 1;
    }
    app_id = apps[0];
    webhook_id = hooks[0];
    struct CMUnitTest tests[NCASES];
    for (size_t i = 0; i < NCASES; i++)
        tests[i] = (struct CMUnitTest){CASES[i].name, test_case, NULL, NULL, (void *)&CASES[i]};
    int failed = _cmocka_run_group_tests(is_pg ? "plans (postgres)" : "plans (sqlite)", tests,
                                         NCASES, NULL, NULL);
    hl_store_close(st);
    st = NULL;
    return failed;
}

static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)))
            if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
                unlinkat(dirfd(d), e->d_name, 0);
        closedir(d);
    }
    rmdir(dir);
}

int main(void)
{
    hl_buf_init(&plan, 1 << 20);
    const char *only = getenv("HOOKLINE_TEST_BACKEND");
    int pg_only = only && strcmp(only, "postgres") == 0;
    const char *pgu = getenv("HOOKLINE_TEST_PG_URL");
    int failed = 0;
    if (!pg_only) {
        const char *base = getenv("TMPDIR");
        char dir[PATH_MAX], url[PATH_MAX + 32];
        snprintf(dir, sizeof(dir), "%s/hookline-plans-XXXXXX", base && *base ? base : "/tmp");
        if (!mkdtemp(dir)) {
            perror("mkdtemp");
            return 1;
        }
        snprintf(url, sizeof(url), "%s/plans.db", dir);
        failed += run_backend(url, 0);
        remove_dir(dir);
    }
    if (pgu && *pgu) {
        char url[2048];
        pg_url(url, sizeof(url));
        failed += run_backend(url, 1);
    } else if (pg_only) {
        fprintf(stderr, "missing: HOOKLINE_TEST_PG_URL (run under scripts/with-postgres.sh)\n");
        if (hl_test_require_all())
            failed++;
        hl_test_missing++;
    }
    hl_buf_free(&plan);
    return hl_test_exit(failed);
}
