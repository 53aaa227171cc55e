/* Every list and count of the API reads from an index that serves its filter and its order.
 *
 * Each case calls a store operation (hl_store_event_list, hl_store_delivery_list, ...) with one
 * filter, with hl_store_explain on: the store hands back the plan of every statement the
 * operation would run (SQLite's EXPLAIN QUERY PLAN, PostgreSQL's EXPLAIN, with the operation's
 * own parameters) and runs none. A plan passes when
 *   - it reads no events, deliveries, attempts or resources by a full scan (SQLite "SCAN x" of
 *     anything but the app's webhooks; PostgreSQL "Seq Scan"),
 *   - it sorts nothing (the index gives the order; the app-wide delivery list alone may sort
 *     its webhooks' pages, a bounded number of rows), and
 *   - each column the filter names is a condition of an index search (SQLite "SEARCH ... (col=?"
 *     or "col>?", PostgreSQL "Index Cond: ... (col ..."), the id among them where the list pages
 *     by id (keyset: the page starts where the index says, however deep), and
 *   - a count (the webhook's stats) reads no deliveries at all: counters answer it.
 * SQLite is planned as the service leaves it, without ANALYZE statistics; PostgreSQL with
 * enable_seqscan off, so that on these empty tables its choice says which index it can use, not
 * which is cheapest for no rows. Run on a fresh SQLite file and, when HOOKLINE_TEST_PG_URL is set
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
#include "store/store.h"
#include "need.h"

#define MAXCOLS 4

static struct hl_store *st;
static int pg;
static struct hl_buf plan;

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
    int64_t webhook; /* the delivery lists: 0 for the app's */
    int64_t after;
    const char *avoid; /* a table the plan must not read at all (counts kept elsewhere) */
};

static void ev_list(const struct pcase *c)
{
    struct hl_event *ev = NULL;
    size_t n = 0;
    struct hl_event_filter f = {c->type - 1, c->tenant, c->since, c->until};
    assert_int_equal(hl_store_event_list(st, 1, &f, c->after, 50, &ev, &n), HL_OK);
    free(ev);
}

static void dl_list(const struct pcase *c)
{
    struct hl_delivery *d = NULL;
    size_t n = 0;
    struct hl_delivery_filter f = {
        .status = c->status - 1, .type = c->type - 1, .since = c->since, .until = c->until};
    assert_int_equal(hl_store_delivery_list(st, 1, c->webhook, &f, c->after, 50, &d, &n), HL_OK);
    free(d);
}

static void res_list(const struct pcase *c)
{
    struct hl_resource *r = NULL;
    size_t n = 0;
    assert_int_equal(
        hl_store_resource_list(st, 1, HL_ENT_AGENT, NULL, c->tenant, c->after, 50, &r, &n), HL_OK);
    free(r);
}

static void wh_stats(const struct pcase *c)
{
    (void)c;
    struct hl_webhook_stats s;
    assert_int_equal(hl_store_webhook_stats(st, 7, &s), HL_OK);
}

static void dl_get(const struct pcase *c)
{
    (void)c;
    struct hl_delivery d;
    struct hl_attempt_rec *a = NULL;
    size_t n = 0;
    int rc = hl_store_delivery_get(st, 1, 42, &d, &a, &n);
    assert_true(rc == HL_OK || rc == HL_ENOTFOUND);
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
    if (c->avoid && strstr(p, c->avoid)) {
        snprintf(why, cap, "it reads %s (a count of rows, where a counter should answer)",
                 c->avoid);
        return why;
    }
    for (size_t i = 0; i < MAXCOLS && c->cols[i]; i++)
        if (!searched(p, c->cols[i])) {
            snprintf(why, cap, "%s is not a condition of an index search", c->cols[i]);
            return why;
        }
    return NULL;
}

#define HOUR_MS 3600000LL
#define T0 1800000000000LL

/* clang-format off */
static const struct pcase CASES[] = {
    {"events", ev_list, {"app_id", "id"}, 0, .after = 0},
    {"events, cursor", ev_list, {"app_id", "id"}, 0, .after = 1000},
    {"events, event", ev_list, {"type", "id"}, 0, .type = HL_EV_AGENT_UPDATED + 1},
    {"events, externalTenantId", ev_list, {"tenant", "id"}, 0, .tenant = "tenant-7"},
    {"events, since+until", ev_list, {"created_at"}, 0, .since = T0, .until = T0 + 1000},
    {"events, since", ev_list, {"created_at"}, 0, .since = T0},
    {"events, until, cursor", ev_list, {"created_at"}, 0, .until = T0, .after = 1000},
    {"webhook deliveries", dl_list, {"webhook_id", "id"}, 0, .webhook = 7},
    {"webhook deliveries, cursor", dl_list, {"webhook_id", "id"}, 0, .webhook = 7, .after = 1000},
    {"webhook deliveries, status", dl_list, {"webhook_id", "status", "id"}, 0,
     .status = HL_DS_FAILED + 1, .webhook = 7},
    {"webhook deliveries, failing", dl_list, {"webhook_id", "status", "id"}, 0,
     .status = HL_DS_FAILING + 1, .webhook = 7},
    {"webhook deliveries, event", dl_list, {"webhook_id", "event_type", "id"}, 0,
     .type = HL_EV_CONTEXTFILE_UPDATED + 1, .webhook = 7},
    {"webhook deliveries, since+until", dl_list, {"webhook_id", "created_at"}, 0,
     .since = T0, .until = T0 + HOUR_MS, .webhook = 7},
    {"app deliveries", dl_list, {"webhook_id", "id"}, 1, .after = 0},
    {"app deliveries, cursor", dl_list, {"webhook_id", "id"}, 1, .after = 1000},
    {"app deliveries, status", dl_list, {"webhook_id", "status", "id"}, 1,
     .status = HL_DS_FAILED + 1},
    {"app deliveries, failing", dl_list, {"webhook_id", "status", "id"}, 1,
     .status = HL_DS_FAILING + 1},
    {"app deliveries, event", dl_list, {"webhook_id", "event_type", "id"}, 1,
     .type = HL_EV_AGENT_DELETED + 1},
    {"app deliveries, since+until", dl_list, {"webhook_id", "created_at"}, 1,
     .since = T0, .until = T0 + HOUR_MS},
    {"delivery with its attempts", dl_get, {NULL}, 0, .after = 0},
    {"agents", res_list, {"app_id", "kind", "id"}, 0, .after = 0},
    {"agents, cursor", res_list, {"app_id", "kind", "id"}, 0, .after = 1000},
    {"agents, externalTenantId", res_list, {"kind", "tenant", "id"}, 0, .tenant = "tenant-8"},
    {"webhook stats", wh_stats, {NULL}, 0, .avoid = "deliveries"},
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
